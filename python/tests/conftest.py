"""Shared fixtures. The tests that run the real toymoe binary skip when there is none, except under CI (or with
TOYMOE_BIN set), where a missing binary is a failure: CI must never pass by skipping them."""

import os
import sys
from pathlib import Path

import pytest

import toymoe

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_pandas(monkeypatch):
    """Makes `import pandas` fail, as on a machine without it."""
    monkeypatch.setitem(sys.modules, "pandas", None)


@pytest.fixture
def toymoe_bin():
    try:
        return toymoe.find_binary()
    except toymoe.ToyMoEError as e:
        if os.environ.get("CI") or os.environ.get("TOYMOE_BIN"):
            pytest.fail(f"no toymoe binary under CI: {e}")
        pytest.skip(f"no toymoe binary: {e}")


@pytest.fixture
def bundled_scripts(monkeypatch):
    """Bundled names resolve against this checkout's scripts/, whichever binary runs."""
    monkeypatch.setenv("TOYMOE_SCRIPTS", str(REPO / "scripts"))
