"""Ctrl-C before the command line's :func:`backprop.cli.main` runs: one line, no traceback.

``backprop ...`` (and ``python -m backprop ...``) spend their first few tenths of a second
importing NumPy, Click and this package; :func:`backprop.cli.main` reports a Ctrl-C only
once it runs. Imported first by ``backprop/__init__.py``, this module makes the process
that *is* the command line print ``Error: interrupted`` for a Ctrl-C during those imports
(through :data:`sys.excepthook`, which Python calls for the uncaught KeyboardInterrupt;
the process still ends by SIGINT, status 130 in a shell). A program that merely imports
backprop is left alone.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType

__all__ = ["is_the_command_line"]


def is_the_command_line() -> bool:
    """Whether this process is ``backprop ...`` or ``python -m backprop ...``."""
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    if os.path.splitext(script)[0] == "backprop":
        return True
    argv = list(getattr(sys, "orig_argv", []))  # Python 3.10+: the interpreter's own argv
    return any(a == "-m" and b == "backprop" for a, b in zip(argv, argv[1:], strict=False))


def _one_line_for_interrupts(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.stderr.write("Error: interrupted\n")
        return
    _previous_hook(kind, value, tb)


_previous_hook = sys.excepthook
if is_the_command_line():
    sys.excepthook = _one_line_for_interrupts
