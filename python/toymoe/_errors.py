"""The one exception type of the package."""

from __future__ import annotations


class ToyMoEError(Exception):
    """A toymoe run failed, or an output directory cannot be read as what it claims to be.

    For a failed run, ``returncode`` is the tool's exit status (negative: killed by that signal), ``stderr`` the
    tail of what it wrote to standard error (the Lua error with ``file:line:`` and its traceback is there) and
    ``command`` the command line. For a loading problem all three are None.
    """

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str | None = None,
                 command: list[str] | None = None):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr
        self.command = command
