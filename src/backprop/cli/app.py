"""The ``backprop`` command group, its entry point :func:`main`, and how errors are reported.

:func:`main` runs the command line in-process and returns the exit status:

- 0: success;
- 1: the command ran but failed (``gradcheck`` over tolerance, training diverged);
- 2: a user error (missing file, bad option value, unknown dataset, a file that is not a
  model...), reported as ONE line on stderr, never a traceback;
- 130: interrupted with Ctrl-C (training keeps the last completed epoch's model).

An error that is none of these (a bug) is one line too, ``Error: internal error: ...``,
with exit status 1.

Set ``BACKPROP_DEBUG=1`` to see the traceback behind a one-line error.
"""

from __future__ import annotations

import codecs
import io
import os
import select
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import click

from .._interrupts import EXIT_INTERRUPTED, raise_if_swallowed, was_interrupted
from .._version import __version__
from ..io import WriteError
from ..training.mpi import RankFailure, abort_if_others_wait, is_main_process
from ..training.progress import raise_broken_pipe, stdout_console

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "UserError",
    "cli",
    "make_console",
    "main",
    "one_line",
    "print_error",
]

EXIT_FAILED = 1
EXIT_USAGE = 2


class UserError(click.ClickException):
    """A mistake in what the user asked for: one line on stderr, exit status 2."""

    exit_code = EXIT_USAGE


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80})
@click.version_option(
    __version__, "--version", "-V", prog_name="backprop", message="%(prog)s %(version)s"
)
def cli() -> None:
    """Neural networks trained by backpropagation, from the terminal.

    \b
    Start here:
      backprop train            # the tutorial's 2-3-2 network on the toy data
      backprop explain          # one backprop step, every number shown
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    The error boundary: whatever goes wrong ends as ONE ``Error: ...`` line on stderr.
    Warnings raised while a command runs are held back: a command that fails prints only
    its error line; one that succeeds prints them afterwards. A Ctrl-C anywhere (before the
    command starts, while it reads its data, while it writes) is ``Error: interrupted``.
    """
    # (1, true, yes or on: 'false', 'no' and 'off' turned tracebacks on, status 1 for 2)
    debug = os.environ.get("BACKPROP_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    args = list(argv) if argv is not None else sys.argv[1:]
    restore_errors = _escaping_what_the_console_cannot_encode()
    try:  # (until the held-back warnings are written too: they may name a file)
        return _main(args, debug)
    finally:
        restore_errors()


#: The commands that run in one process: under ``mpirun`` rank 0 runs them, the other ranks
#: end at once (each rank printed every table, wrote predict's file and printed its line).
ONE_PROCESS_COMMANDS = ("evaluate", "predict", "export", "explain", "gradcheck", "playground")


def _main(args: list[str], debug: bool) -> int:
    """:func:`main`'s body, the console's encoding errors escaped."""
    if args and args[0] in ONE_PROCESS_COMMANDS and not is_main_process():
        return 0
    restore_sigterm = _sigterm_as_ctrl_c()
    stdout = sys.stdout
    if stdout is not None:
        sys.stdout = _NamedStdout(stdout)
    with warnings.catch_warnings(record=True) as caught:
        try:
            rv = _run(args)
            if rv in (0, None):  # a Ctrl-C that Python dropped inside a callback
                raise_if_swallowed()
            if sys.stdout is not None:  # what is still buffered fails here, not in Python's
                sys.stdout.flush()  # exit (where a full disk went unreported)
        except BaseException as e:
            if debug or not isinstance(e, Exception | KeyboardInterrupt):
                raise  # SystemExit, or BACKPROP_DEBUG=1: the traceback
            message, status = _report(e)
            if message:
                print_error(message)
            abort_if_others_wait(e, status)  # under mpirun: ranks that would wait for this one
            return status
        finally:
            restore_sigterm()
            sys.stdout = stdout
    for w in caught:  # the command succeeded: its warnings, as Python would have shown them
        sys.stderr.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    return rv if isinstance(rv, int) else 0


def _escaping_what_the_console_cannot_encode() -> Any:
    """While a command runs, a character the console's encoding lacks (a file ``ïris.csv``
    under ``LC_ALL=C`` or ``PYTHONIOENCODING=ascii``) is written as an escape (``\\xef``):
    encoded strictly, the header's file name ended ``train`` before its first epoch with
    "'ascii' codec can't encode character". Data goes to the byte buffer (predict's CSV is
    UTF-8 whatever the console's encoding), not through this. Returns what undoes it."""
    changed = [
        stream
        for stream in (sys.stdout, sys.stderr)
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict"
    ]
    for stream in changed:
        stream.reconfigure(errors="backslashreplace")

    def undo() -> None:
        for stream in changed:
            if not stream.closed:
                stream.reconfigure(errors="strict")

    return undo


def _sigterm_as_ctrl_c() -> Any:
    """In the process that is the command line, SIGTERM (a job scheduler's time limit,
    ``kill``, ``timeout``) and SIGHUP (the terminal closed, an SSH connection dropped) stop
    as Ctrl-C does: the last completed epoch saved, the run resumable, no temporary file
    left; by default they killed the process on the spot. A handler someone else installed
    (``nohup``'s ignoring of SIGHUP among them) is left alone. Returns what undoes it."""
    import threading

    from .._interrupts import is_ours, is_the_command_line, on_interrupt

    if not (is_the_command_line() and threading.current_thread() is threading.main_thread()):
        return lambda: None
    taken = []
    for signum in _STOPPING_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is signal.SIG_DFL or is_ours(handler):  # (ours: the imports')
            signal.signal(signum, on_interrupt)
            taken.append(signum)

    def undo() -> None:
        for signum in taken:
            signal.signal(signum, signal.SIG_DFL)

    return undo


#: The signals that stop a command as Ctrl-C does (beside SIGINT itself).
_STOPPING_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _run(args: list[str]) -> Any:
    """The command's return value; click's own errors and exits are left to the caller
    (click's ``main`` would print a blank line before a Ctrl-C's message)."""
    instruction = os.environ.get(COMPLETE_VARIABLE, "").strip()
    if instruction:  # shell completion: click's own main answers it
        return _complete(args, instruction)
    try:
        with cli.make_context("backprop", args) as ctx:
            return cli.invoke(ctx)
    except click.exceptions.Exit as e:  # --help, --version
        return e.exit_code
    except click.exceptions.NoArgsIsHelpError as e:  # `backprop` alone: its help, as --help
        click.echo(e.ctx.get_help() if e.ctx is not None else e.format_message())
        return 0


def _report(e: BaseException) -> tuple[str, int]:
    """The one line (empty: none) and the exit status for an error that reached the
    boundary."""
    if isinstance(e, click.exceptions.Abort) or was_interrupted(e):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(e, click.ClickException):
        return e.format_message(), EXIT_USAGE
    if isinstance(e, BrokenPipeError):  # the reader of stdout went away (| head): it took
        silence_stdout()  # what it wanted; quietly, status 0, as predict's (click's) write
        return "", 0  # ended (explain and gradcheck's ended 1, with no line saying why)
    if isinstance(e, WriteError) and e.filename == STDOUT_NAME:
        silence_stdout()  # (Python's own flush at exit would fail again, with a traceback)
        return one_line(e), EXIT_USAGE
    if isinstance(e, RankFailure):  # another rank died or hung: no bug of this process
        return one_line(e), EXIT_FAILED
    if isinstance(e, MemoryError):
        detail = one_line(e) if str(e) else "an allocation failed"
        return f"not enough memory: {detail}", EXIT_USAGE
    if isinstance(e, RecursionError):
        return "the input is nested too deeply (maximum recursion depth exceeded)", EXIT_USAGE
    if isinstance(e, ValueError | OSError | ImportError | ArithmeticError):
        # DatasetError, ModelFileError, ExplainError and the engine's checks are ValueErrors
        # that name the offending value; OSError: unreadable or unwritable files (WriteError
        # names the file); ImportError: an extra that is not installed (the message names
        # the pip command); ArithmeticError: an overflow no check caught first.
        return one_line(e), EXIT_USAGE
    return (
        f"internal error: {type(e).__name__}: {one_line(e)} (a bug in backprop; "
        "BACKPROP_DEBUG=1 shows the traceback)",
        EXIT_FAILED,
    )


#: The variable a shell's completion script sets (``eval "$(_BACKPROP_COMPLETE=bash_source
#: backprop)"``: click's shell completion).
COMPLETE_VARIABLE = "_BACKPROP_COMPLETE"


def _complete(args: list[str], instruction: str) -> Any:
    """Click's shell completion, for an instruction it answers (``bash_source``,
    ``zsh_complete``...); any other value ended every command with status 1 and no word,
    and ``bash_complete`` outside a shell with "internal error: KeyError: 'COMP_WORDS'"."""
    from click import shell_completion

    known = getattr(shell_completion, "_available_shells", None) or ("bash", "fish", "zsh")
    shell, _, verb = instruction.partition("_")
    if shell not in known or verb not in ("source", "complete"):
        shells = ", ".join(sorted(known))
        raise UserError(
            f"{COMPLETE_VARIABLE}={instruction!r} is not a shell completion instruction; "
            f"expected SHELL_source or SHELL_complete for a shell among {shells} (or unset it)"
        )
    os.environ[COMPLETE_VARIABLE] = instruction  # (click reads it as it is: 'bash_source ')
    try:
        return cli.main(args, prog_name="backprop")
    except KeyError as e:
        raise UserError(
            f"{COMPLETE_VARIABLE}={instruction} needs the variable {e.args[0]}, which the "
            f"shell's completion script sets; expected {COMPLETE_VARIABLE}={shell}_source"
        ) from None


class _NamedStdout:
    """``sys.stdout`` while a command runs, its write errors naming it: on ``>/dev/full``
    the error line said '[Errno 28] No space left on device', naming nothing. A closed pipe
    (``| head``) stays a BrokenPipeError, which ends the command quietly. Everything else
    is the stream's own; its ``buffer`` (click.echo writes bytes there, and wraps it in a
    text stream of its own where the encoding is ASCII) is a :class:`_NamedBuffer`.

    Unbuffered (``PYTHONUNBUFFERED=1``, ``python -u``: common in containers and CI) the
    text stream writes straight to the file, and a write that the disk or a size limit cut
    short was dropped without a word: ``predict > out.csv`` ended with status 0 and 4,096
    of 52,943 bytes. Then text is encoded here, by one encoder (one byte-order mark in
    all), and written through the buffer, which writes every byte."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        buffer = getattr(stream, "buffer", None)
        self._buffer = None if buffer is None else _NamedBuffer(buffer)
        self._encoder = None
        if isinstance(buffer, io.RawIOBase):
            self._encoder = codecs.getincrementalencoder(stream.encoding)(stream.errors or "strict")

    @property
    def buffer(self) -> Any:
        if self._buffer is None:
            raise AttributeError("buffer")
        return self._buffer

    def write(self, text: str) -> int:
        try:
            if self._encoder is None:
                return self._stream.write(text)
            if not isinstance(text, str):  # (click.echo's probe for a binary stream)
                raise TypeError(f"write() argument must be str, not {type(text).__name__}")
            self._stream.flush()
            self._buffer.write(self._encoder.encode(text))
            return len(text)
        except OSError as e:
            raise _named(e) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            raise _named(e) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _NamedBuffer:
    """Standard output's binary buffer, its write errors naming it; a raw (unbuffered)
    file's ``write`` writes every byte it is given or raises: the next write after a short
    one says what stopped it."""

    def __init__(self, buffer: Any) -> None:
        self._buffer = buffer
        self._raw = isinstance(buffer, io.RawIOBase)

    def write(self, data: Any) -> int:
        try:
            if not self._raw:
                return self._buffer.write(data)
            view = memoryview(data).cast("B")
            while view:
                written = self._buffer.write(view)
                if written is None:  # (a non-blocking stream that is full for now)
                    select.select([], [self._buffer], [])
                    continue
                view = view[written:]
            return len(data)
        except OSError as e:
            raise _named(e) from None

    def flush(self) -> None:
        try:
            self._buffer.flush()
        except OSError as e:
            raise _named(e) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._buffer, name)


def _named(e: OSError) -> OSError:
    """No side effect here: click.echo tries an empty write first and ignores what it
    raises (silencing stdout then sent the real output to /dev/null, with status 0)."""
    if isinstance(e, BrokenPipeError):
        return e
    return WriteError(e.errno, e.strerror or str(e), STDOUT_NAME)


#: How a failing standard output is named in the error line.
STDOUT_NAME = "standard output"


def require_stdout(what: str) -> None:
    """Refuse to run a command whose result is printed when standard output is closed
    (``>&-``: Python sets ``sys.stdout`` to None, and every print is dropped without a
    word). ``what``: the result, in words, and where else it can go."""
    if sys.stdout is None:
        raise UserError(f"standard output is closed: {what}")


def silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def one_line(e: BaseException) -> str:
    if isinstance(e, FileNotFoundError) and e.filename:
        return f"no such file or folder: {e.filename}"
    if isinstance(e, OSError) and type(e).__str__ is not OSError.__str__:
        return " ".join(str(e).split())  # an OSError that words itself (WriteError)
    if isinstance(e, OSError) and e.strerror and e.filename:
        return f"{e.filename}: {e.strerror}"
    return " ".join(str(e).split()) or type(e).__name__


#: The longest error line printed: a library's own message can run to pages (PyTorch's
#: dispatcher listed 7,314 characters for device='mps').
MAX_ERROR_CHARS = 1000


def print_error(message: str) -> None:
    """``Error: message`` on one line of stderr. A line longer than
    :data:`MAX_ERROR_CHARS` keeps its start and its end, which says what is wrong (a path
    of 5,000 characters hid 'File name too long'). Nothing is raised if stderr itself
    cannot be written to (``2>/dev/full``): the exit status still tells."""
    line = " ".join(message.split())
    if len(line) > MAX_ERROR_CHARS:
        keep = (MAX_ERROR_CHARS - 40) // 2  # (the marker between fits in the remaining 40)
        line = f"{line[:keep]} ... ({len(line) - 2 * keep} characters cut) ... {line[-keep:]}"
    try:
        click.echo(f"Error: {line}", err=True)
    except OSError:
        pass


def make_console() -> Any:
    """The console commands print through: long lines are not broken mid-path; a pipe or a
    log file gets 80 columns whatever ``COLUMNS`` says (60 cut explain's table cells), and so
    does a terminal that says it has 0. Text is printed as it is, never read as rich markup
    or emoji codes: class names and paths are the user's (a class ``[red]`` printed as a
    blank header, ``[/]`` ended evaluate with a MarkupError, ``:cat:`` became an emoji)."""
    console = stdout_console(highlight=False, soft_wrap=True, markup=False, emoji=False)
    console.on_broken_pipe = raise_broken_pipe  # (the commands end a closed pipe their way)
    if not console.is_terminal or console.width < 1:  # COLUMNS=0 at a terminal: no output
        console.width = 80
    return console
