"""Running a script with the toymoe binary (the engine stays in Swift: this module only builds a command line)."""

from __future__ import annotations

import codecs
import collections
import numbers
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ._errors import ToyMoEError
from ._load import Result, load

_STDERR_TAIL_LINES = 40


def _executable(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def _checkout_roots(start: Path) -> list[Path]:
    """``start`` and its parents that look like a ToyMoE checkout (Package.swift and scripts/ side by side)."""
    return [d for d in [start, *start.parents] if (d / "Package.swift").is_file() and (d / "scripts").is_dir()]


def _package_checkout() -> list[Path]:
    """The checkout this package sits in, when it is imported from the source tree (``pip install -e ./python``)."""
    return _checkout_roots(Path(__file__).resolve().parent)[:1]


def find_binary() -> str:
    """The toymoe binary: ``$TOYMOE_BIN``, else ``toymoe`` on PATH, else ``.build/release/toymoe`` of the checkout
    this package was installed from in editable mode or of the current directory or one of its parents."""
    env = os.environ.get("TOYMOE_BIN")
    if env:
        if not _executable(Path(env)):
            raise ToyMoEError(f"TOYMOE_BIN={env} is not an executable file")
        return env
    on_path = shutil.which("toymoe")
    if on_path:
        return on_path
    cwd = Path.cwd()
    for root in [*_package_checkout(), cwd, *cwd.parents]:
        candidate = root / ".build" / "release" / "toymoe"
        if _executable(candidate):
            return str(candidate)
    raise ToyMoEError("cannot find the toymoe binary: set TOYMOE_BIN=/path/to/toymoe, put toymoe on PATH, or "
                      "build it in the repository (`swift build -c release`) and work inside that checkout")


def script_dirs(binary: str | None = None) -> list[Path]:
    """Where bundled script names are looked up, in order: each entry of ``$TOYMOE_SCRIPTS`` (os.pathsep-separated),
    ``scripts/`` of the checkout the binary was built in (found from the binary's real path, e.g.
    ``REPO/.build/x86_64-unknown-linux-gnu/release/toymoe``), of the checkout this package sits in (editable
    install), of the checkout holding the current directory, then ``share/toymoe/scripts`` beside the binary's
    ``bin/`` and under ``sys.prefix``. Only existing directories are listed."""
    dirs: list[Path] = [Path(p) for p in os.environ.get("TOYMOE_SCRIPTS", "").split(os.pathsep) if p]
    roots: list[Path] = []
    if binary:
        b = Path(binary)
        for start in (b.resolve().parent, b.absolute().parent):
            roots += _checkout_roots(start)[:1]
    roots += _package_checkout()
    roots += _checkout_roots(Path.cwd())[:1]
    dirs += [r / "scripts" for r in roots]
    if binary:
        dirs.append(Path(binary).resolve().parent.parent / "share" / "toymoe" / "scripts")
    dirs.append(Path(sys.prefix) / "share" / "toymoe" / "scripts")
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d not in unique:
            unique.append(d)
    return unique


def find_script(script: str | os.PathLike, binary: str | None = None) -> str:
    """A script path for the binary. An existing file (with or without ``.lua`` added) is used as it is; a bundled
    name such as ``"paper/fig3_features_per_dim"`` is looked up in ``script_dirs(binary)``; anything else is passed
    through unchanged, so the binary reports it (or, one day, resolves it itself)."""
    name = os.fspath(script)
    names = [name] if name.endswith(".lua") else [name, name + ".lua"]
    for n in names:
        if Path(n).is_file():
            return n
    if not Path(name).is_absolute():
        for d in script_dirs(binary):
            for n in names:
                if (d / n).is_file():
                    return str(d / n)
    return name


def _param_words(params: dict[str, Any]) -> list[str]:
    """KEY=VALUE words: bool as true/false, integers and floats in full precision, strings as they are."""
    words = []
    for key, value in params.items():
        if not isinstance(key, str) or not key or "=" in key or key.startswith("-"):
            raise ValueError(f"toymoe.run: parameter name {key!r}: expected a non-empty name without '=' "
                             "that does not start with '-'")
        if isinstance(value, (bool, np.bool_)):
            text = "true" if value else "false"
        elif isinstance(value, numbers.Integral):
            text = str(int(value))
        elif isinstance(value, numbers.Real):
            text = repr(float(value))  # shortest text that reads back as the same double
        elif isinstance(value, str):
            text = value
        else:
            raise TypeError(f"toymoe.run: parameter {key!r}: expected a bool, number or string, "
                            f"got {type(value).__name__}")
        words.append(f"{key}={text}")
    return words


def _pump(stream, sink, tail: collections.deque | None) -> None:
    """Copies a child's output to ``sink`` as it comes (progress lines end in \\r, so no line buffering),
    keeping the last lines in ``tail``."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    fd = stream.fileno()
    while True:
        chunk = os.read(fd, 65536)
        text = decoder.decode(chunk, final=not chunk)
        if text:
            try:
                sink.write(text)
                sink.flush()
            except Exception:  # a closed or missing sink must not stop the draining (the tool would block)
                pass
            if tail is not None:
                pending += text
                *lines, pending = pending.replace("\r", "\n").split("\n")
                tail.extend(line for line in lines if line)
        if not chunk:
            break
    if tail is not None and pending:
        tail.append(pending)


def _error_line(tail: collections.deque) -> str:
    """The line of the tool's error message: its last line that starts like one (a Lua error is followed by
    its traceback; an option error by the usage), else the last line."""
    for line in reversed(tail):
        if line.startswith(("toymoe", "Error:")):
            return line
    return tail[-1] if tail else "(no message on standard error)"


def run(script: str | os.PathLike, out: str | os.PathLike | None = None, *, jobs: int | None = None,
        seed: int | None = None, quiet: bool = False, resume: bool = False, params: dict[str, Any] | None = None,
        args: Iterable[str] = (), binary: str | None = None, **kwparams: Any) -> Result:
    """Runs ``toymoe run SCRIPT KEY=VALUE... --out OUT`` and returns ``load(OUT)``.

    ``script``: a path, or a bundled name like ``"paper/fig3_features_per_dim"`` (see ``find_script``).
    ``out``: the output directory (default ``results/<script name>``, as the tool's own default).
    ``jobs``, ``seed``, ``quiet``, ``resume``: the tool's ``--jobs``, ``--seed``, ``--quiet``, ``--resume``.
    Script parameters: keyword arguments (``scale="quick", steps=2000``), or ``params={...}`` for names that
    clash with this function's (``params={"seed": 3}``); True/False become true/false.
    ``args``: further command-line words (``["--time-limit", "600"]``). ``binary``: default ``find_binary()``.

    The tool's output (progress, the script's prints) streams to sys.stdout/sys.stderr while it runs. A non-zero
    exit raises ToyMoEError carrying the exit status and the tail of standard error. An interrupt (Ctrl-C, or
    the notebook's stop button) is passed on to the tool, which keeps finished sweep cells: ``resume=True``
    continues.
    """
    all_params = dict(params or {})
    for k, v in kwparams.items():
        if k in all_params:
            raise TypeError(f"toymoe.run: parameter {k!r} given both as a keyword and in params")
        all_params[k] = v
    exe = binary or find_binary()
    script_path = find_script(script, exe)
    if out is None:
        out = Path("results") / Path(script_path).name.removesuffix(".lua")
    command = [exe, "run", script_path, *_param_words(all_params), "--out", os.fspath(out)]
    if jobs is not None:
        command += ["--jobs", str(int(jobs))]
    if seed is not None:
        command += ["--seed", str(int(seed))]
    if quiet:
        command.append("--quiet")
    if resume:
        command.append("--resume")
    command += [str(a) for a in args]

    tail: collections.deque = collections.deque(maxlen=_STDERR_TAIL_LINES)
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise ToyMoEError(f"cannot start {exe}: {e}", command=command) from None
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, sys.stdout, None), daemon=True),
             threading.Thread(target=_pump, args=(proc.stderr, sys.stderr, tail), daemon=True)]
    for t in pumps:
        t.start()
    try:
        # Polling, not one blocking wait: a SIGINT handled on another thread, or while blocked in waitpid, would
        # otherwise reach us only when the tool ends by itself.
        while True:
            try:
                returncode = proc.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        # In a terminal the tool got the SIGINT too; in Jupyter only the kernel did. Either way it should stop
        # the way it stops on Ctrl-C (finished cells kept), and not outlive us.
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        for t in pumps:
            t.join()
        proc.stdout.close()
        proc.stderr.close()
    if returncode != 0:
        how = f"exit status {returncode}"
        if returncode < 0:
            try:
                how = f"killed by {signal.Signals(-returncode).name}"
            except ValueError:
                how = f"killed by signal {-returncode}"
        stderr = "\n".join(tail)
        raise ToyMoEError(f"toymoe run {script_path} failed ({how}): {_error_line(tail)}", returncode=returncode,
                          stderr=stderr, command=command)
    return load(out)
