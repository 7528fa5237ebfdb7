"""Ctrl-C before the command line's :func:`backprop.cli.main` runs: one line, no traceback.

``backprop ...`` (and ``python -m backprop ...``) spend their first few tenths of a second
importing NumPy, Click and this package; :func:`backprop.cli.main` reports a Ctrl-C only
once it runs. Imported first by ``backprop/__init__.py``, this module makes the process
that *is* the command line print ``Error: interrupted`` for a Ctrl-C during those imports
(through :data:`sys.excepthook`, which Python calls for the uncaught exception). A Ctrl-C
does not always arrive as a KeyboardInterrupt: raised inside a C extension's
initialisation it can come back as that library's ImportError (NumPy's), inside a class
body's ``__set_name__`` as a RuntimeError. So the SIGINT handler also notes that a Ctrl-C
came (:func:`was_interrupted`), and whatever then fails is reported as the interruption.
The process still ends by SIGINT (status 130 in a shell). SIGTERM (``kill``, ``timeout``, a
job scheduler) is taken as a Ctrl-C from here on too (it killed the command with status 143
and no word while it started); :func:`backprop.cli.main` takes it so during the command, and
gives it back its default action when the command is done (a KeyboardInterrupt in Python's
exit, an ``atexit`` callback, was a traceback). A program that merely imports backprop is
left alone.

A KeyboardInterrupt raised inside a garbage-collection or weakref callback (matplotlib's
transforms have them) is not raised at all: Python prints it as 'Exception ignored in ...'
with a traceback and drops it, and the command carried on to exit 0. Here such a drop is
quiet (:data:`sys.unraisablehook`), and :func:`raise_if_swallowed`, called at safe points
(each epoch's end, the command's end), raises it again.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # (importing typing took 7 ms of the very window this module is for, and
    # a Ctrl-C in it was a traceback)
    from types import FrameType, TracebackType
    from typing import Any

# (``signal`` is imported below, once the hook is in place: importing it takes a few
# milliseconds of the very window this module is for)

__all__ = [
    "EXIT_INTERRUPTED",
    "deferred",
    "is_the_command_line",
    "is_ours",
    "on_interrupt",
    "raise_if_swallowed",
    "was_interrupted",
]

#: The exit status of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130
_ctrl_c: list[bool] = []  # one entry once a Ctrl-C came (only where the handler is ours)
_dropped: list[bool] = []  # one entry once Python dropped a Ctrl-C's KeyboardInterrupt
_deferring: list[bool] = []  # one entry while a Ctrl-C must wait (see deferred)
_waiting: list[bool] = []  # one entry once a Ctrl-C came while deferred


def is_the_command_line() -> bool:
    """Whether this process is ``backprop ...`` or ``python -m backprop ...``."""
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    if os.path.splitext(script)[0] == "backprop":
        return True
    args = list(getattr(sys, "orig_argv", []))[1:]  # Python 3.10+: the interpreter's argv
    i = 0
    while i < len(args):  # the interpreter's own options, up to -m (a script's arguments
        a = args[i]  # after its path are its own: `python tool.py -m backprop` is not us)
        if a == "-m":
            return args[i + 1 : i + 2] == ["backprop"]
        if a.startswith("-m"):
            return a[2:] == "backprop"
        if a in ("-W", "-X", "--check-hash-based-pycs"):  # (options with a value)
            i += 2
            continue
        if a == "-c" or not a.startswith("-"):  # a command, a script or '-': not -m
            return False
        i += 1
    return False


def was_interrupted(e: BaseException | None = None) -> bool:
    """Whether a Ctrl-C came in this command-line process, or ``e`` is a KeyboardInterrupt
    or was caused by one (Python wraps an exception raised in some machinery, such as a
    class body's ``__set_name__``, in a RuntimeError)."""
    seen = 0
    while e is not None and seen < 50:
        if isinstance(e, KeyboardInterrupt):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return bool(_ctrl_c)


def is_ours(handler: object) -> bool:
    """Whether ``handler`` is the one this module installed."""
    return handler is on_interrupt


def on_interrupt(signum: int, frame: FrameType | None) -> None:
    """The signal handler for SIGINT (and SIGTERM) in the command-line process: notes the
    Ctrl-C, then raises KeyboardInterrupt as Python's own handler does (inside
    :func:`deferred`, once it ends)."""
    _ctrl_c.append(True)
    if _deferring:
        _waiting.append(True)
        return
    raise KeyboardInterrupt


class deferred:  # noqa: N801 - used as a context manager, as contextlib's are
    """``with deferred():`` code during which a Ctrl-C waits, raised as KeyboardInterrupt
    when the block ends: the import of a C extension whose initialisation cannot take a
    Python exception (onnx's protobuf: a Ctrl-C during ``import onnx`` ended the process
    with a segmentation fault, or 'terminate called after throwing nanobind::python_error',
    in 5 of ~420 tries)."""

    def __enter__(self) -> None:
        _deferring.append(True)

    def __exit__(self, *exc: object) -> None:
        _deferring.pop()
        if _waiting and not _deferring:
            _waiting.clear()
            if exc[0] is None:
                raise KeyboardInterrupt


def raise_if_swallowed() -> None:
    """Raise KeyboardInterrupt once for a Ctrl-C whose exception Python dropped inside a
    callback in this command-line process: called where the command would otherwise go on
    (or end with status 0). A Ctrl-C a command caught on purpose (the playground's server
    stops on it) is not one."""
    if _dropped:
        _dropped.clear()
        raise KeyboardInterrupt


def _quiet_about_interrupts(unraisable: Any) -> None:
    """``sys.unraisablehook``: a dropped KeyboardInterrupt is noted and not printed;
    anything else as before."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _dropped.append(True)
    else:
        _previous_unraisable_hook(unraisable)


def _one_line_for_interrupts(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    if not was_interrupted(value):
        _previous_hook(kind, value, tb)
        return
    sys.stderr.write("Error: interrupted\n")
    sys.stderr.flush()
    if not isinstance(value, KeyboardInterrupt):  # Python ends that one by SIGINT itself
        import signal

        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)


_previous_hook = sys.excepthook
_previous_unraisable_hook = sys.unraisablehook
if is_the_command_line():
    sys.excepthook = _one_line_for_interrupts
    sys.unraisablehook = _quiet_about_interrupts
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_interrupt)
    for _name in ("SIGTERM", "SIGHUP"):  # (SIGHUP: the terminal closed; not on Windows)
        _signum = getattr(signal, _name, None)
        if _signum is not None and signal.getsignal(_signum) == signal.SIG_DFL:
            signal.signal(_signum, on_interrupt)
