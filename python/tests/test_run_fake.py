"""toymoe.run and the binary/script look-ups, with small shell scripts standing in for the binary: the command line
it builds, streaming, and how failures surface."""

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

import toymoe
from toymoe import ToyMoEError

# A stand-in for `toymoe`: writes its arguments (one per line) to ARGS_FILE, prints to both streams, and makes the
# --out directory a toymoe output directory.
RECORDER = """#!/bin/sh
printf '%s\\n' "$@" > "$ARGS_FILE"
echo "hello from the script"
printf 'cells 0/2\\rcells 2/2\\n' >&2
while [ $# -gt 0 ]; do
  if [ "$1" = --out ]; then mkdir -p "$2"; echo '{"seed": 0}' > "$2/provenance.json"; fi
  shift
done
"""


def fake_binary(directory, text, name="toymoe"):
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / name
    p.write_text(text)
    p.chmod(0o755)
    return p


def test_command_line_words(tmp_path, monkeypatch, capsys):
    exe = fake_binary(tmp_path / "bin", RECORDER)
    args_file = tmp_path / "args"
    monkeypatch.setenv("ARGS_FILE", str(args_file))
    monkeypatch.setenv("TOYMOE_BIN", str(exe))
    script = tmp_path / "my.lua"
    script.write_text("return {}")
    monkeypatch.chdir(tmp_path)
    res = toymoe.run(str(script), out="o", jobs=2, seed=5, quiet=True, resume=True, scale="quick", steps=300,
                     lr=1e-05, p=0.1, load_balancing=True, trace=False, params={"seed": 3, "out": "x"},
                     args=["--time-limit", 60])
    words = args_file.read_text().splitlines()
    assert words == ["run", str(script), "seed=3", "out=x", "scale=quick", "steps=300", "lr=1e-05", "p=0.1",
                     "load_balancing=true", "trace=false", "--out", "o", "--jobs", "2", "--seed", "5", "--quiet",
                     "--resume", "--time-limit", "60"]
    assert res.path == Path("o") and res.provenance == {"seed": 0}
    captured = capsys.readouterr()
    assert "hello from the script" in captured.out  # the script's prints and the progress stream through
    assert "cells 0/2\rcells 2/2" in captured.err
    # without out: results/<script name>, as the tool's own default
    toymoe.run(str(script))
    assert args_file.read_text().splitlines()[-2:] == ["--out", os.path.join("results", "my")]


def test_bad_parameters_are_refused_before_running(tmp_path, monkeypatch):
    monkeypatch.setenv("TOYMOE_BIN", str(fake_binary(tmp_path / "bin", "#!/bin/sh\nexit 99\n")))
    with pytest.raises(TypeError, match="parameter 'steps': expected a bool, number or string, got list"):
        toymoe.run("x.lua", steps=[1, 2])
    with pytest.raises(TypeError, match="'steps' given both"):
        toymoe.run("x.lua", steps=1, params={"steps": 2})
    with pytest.raises(ValueError, match="parameter name '-x'"):
        toymoe.run("x.lua", params={"-x": 1})


def test_failure_carries_exit_status_and_stderr_tail(tmp_path, monkeypatch, capsys):
    exe = fake_binary(tmp_path / "bin", "#!/bin/sh\n"
                      "i=1; while [ $i -le 100 ]; do echo \"traceback line $i\" >&2; i=$((i+1)); done\n"
                      "echo 'toymoe: bad.lua:2: boom' >&2\nexit 3\n")
    with pytest.raises(ToyMoEError) as info:
        toymoe.run("bad.lua", out=tmp_path / "o", binary=str(exe))
    e = info.value
    assert e.returncode == 3 and e.command[:3] == [str(exe), "run", "bad.lua"]
    assert "failed (exit status 3): toymoe: bad.lua:2: boom" in str(e)
    assert e.stderr.splitlines()[-1] == "toymoe: bad.lua:2: boom"
    assert "traceback line 100" in e.stderr and "traceback line 1\n" not in e.stderr  # the tail, bounded
    assert "traceback line 1\n" in capsys.readouterr().err  # while everything streamed through


def test_killed_binary_is_reported_by_signal_name(tmp_path):
    exe = fake_binary(tmp_path / "bin", "#!/bin/sh\nkill -9 $$\n")
    with pytest.raises(ToyMoEError, match="killed by SIGKILL") as info:
        toymoe.run("x.lua", out=tmp_path / "o", binary=str(exe))
    assert info.value.returncode == -9


def test_interrupt_is_passed_on_to_the_tool(tmp_path, capsys):
    started = tmp_path / "started"
    exe = fake_binary(tmp_path / "bin", "#!/bin/sh\n"
                      "trap 'echo \"toymoe: interrupted: finished cells are kept\" >&2; exit 130' INT\n"
                      f"touch {started}\n"
                      "while :; do sleep 0.05; done\n")

    def interrupt_when_started():
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C in a terminal or the notebook's stop button

    t0 = time.monotonic()
    threading.Thread(target=interrupt_when_started, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        toymoe.run("x.lua", out=tmp_path / "o", binary=str(exe))
    assert time.monotonic() - t0 < 15  # the tool got the signal and stopped; it was not killed after 30 s
    assert "interrupted: finished cells are kept" in capsys.readouterr().err


def test_find_binary_order(tmp_path, monkeypatch):
    monkeypatch.setattr(toymoe._run, "_package_checkout", lambda: [])  # as installed (not editable)
    monkeypatch.setenv("TOYMOE_BIN", str(tmp_path / "missing"))
    with pytest.raises(ToyMoEError, match="TOYMOE_BIN=.*missing is not an executable file"):
        toymoe.find_binary()
    monkeypatch.delenv("TOYMOE_BIN")
    on_path = fake_binary(tmp_path / "path", "#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert toymoe.find_binary() == str(on_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    built = fake_binary(tmp_path / "repo" / ".build" / "release", "#!/bin/sh\n")
    (tmp_path / "repo" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "repo" / "sub")
    assert Path(toymoe.find_binary()).resolve() == built.resolve()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ToyMoEError, match="cannot find the toymoe binary"):
        toymoe.find_binary()


def test_find_script_resolves_bundled_names(tmp_path, monkeypatch):
    monkeypatch.delenv("TOYMOE_SCRIPTS", raising=False)
    repo = tmp_path / "repo"
    (repo / "scripts" / "paper").mkdir(parents=True)
    (repo / "Package.swift").write_text("// swift-tools-version:6.1\n")
    fig = repo / "scripts" / "paper" / "fig3.lua"
    fig.write_text("return {}")
    # SwiftPM's .build/release is a symlink into .build/<triple>/release: both lead back to the checkout
    exe = fake_binary(repo / ".build" / "x86_64-unknown-linux-gnu" / "release", "#!/bin/sh\n")
    (repo / ".build" / "release").symlink_to("x86_64-unknown-linux-gnu/release")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert toymoe.find_script("paper/fig3", str(repo / ".build" / "release" / "toymoe")) == str(fig)
    assert toymoe.find_script("paper/fig3.lua", str(exe)) == str(fig)
    # unknown names pass through for the binary to report
    assert toymoe.find_script("paper/nope", str(exe)) == "paper/nope"
    # TOYMOE_SCRIPTS comes first; a file in the current directory before any of them
    mine = tmp_path / "mine" / "paper"
    mine.mkdir(parents=True)
    (mine / "fig3.lua").write_text("return {}")
    monkeypatch.setenv("TOYMOE_SCRIPTS", str(tmp_path / "mine"))
    assert toymoe.find_script("paper/fig3", str(exe)) == str(mine / "fig3.lua")
    (elsewhere / "paper").mkdir()
    (elsewhere / "paper" / "fig3.lua").write_text("return {}")
    assert toymoe.find_script("paper/fig3", str(exe)) == "paper/fig3.lua"
    # an installed layout: PREFIX/bin/toymoe with PREFIX/share/toymoe/scripts
    monkeypatch.delenv("TOYMOE_SCRIPTS")
    prefix = tmp_path / "prefix"
    (prefix / "share" / "toymoe" / "scripts" / "tms").mkdir(parents=True)
    (prefix / "share" / "toymoe" / "scripts" / "tms" / "intro.lua").write_text("return {}")
    installed = fake_binary(prefix / "bin", "#!/bin/sh\n")
    assert toymoe.find_script("tms/intro", str(installed)) == str(prefix / "share/toymoe/scripts/tms/intro.lua")
