"""The ``backprop`` command group, its entry point :func:`main`, and how errors are reported.

:func:`main` runs the command line in-process and returns the exit status:

- 0: success;
- 1: the command ran but failed (``gradcheck`` over tolerance, training diverged);
- 2: a user error (missing file, bad option value, unknown dataset, a file that is not a
  model...), reported as ONE line on stderr, never a traceback;
- 130: interrupted with Ctrl-C (training keeps the last completed epoch's model).

Set ``BACKPROP_DEBUG=1`` to see the traceback behind a one-line error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click

from .._version import __version__

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
EXIT_INTERRUPTED = 130


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
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    debug = os.environ.get("BACKPROP_DEBUG", "") not in ("", "0")
    try:
        rv = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="backprop",
            standalone_mode=False,
        )
    except click.exceptions.Abort:
        print_error("interrupted")
        return EXIT_INTERRUPTED
    except click.ClickException as e:
        if debug:
            raise
        print_error(e.format_message())
        return EXIT_USAGE
    except (ValueError, OSError, ImportError) as e:
        # DatasetError, ModelFileError, ExplainError and the engine's checks are ValueErrors
        # that name the offending value; OSError: unreadable files; ImportError: an extra
        # that is not installed (the message names the pip command).
        if debug:
            raise
        print_error(one_line(e))
        return EXIT_USAGE
    return rv if isinstance(rv, int) else 0


def one_line(e: BaseException) -> str:
    if isinstance(e, FileNotFoundError) and e.filename:
        return f"no such file or folder: {e.filename}"
    if isinstance(e, OSError) and e.strerror and e.filename:
        return f"{e.filename}: {e.strerror}"
    return " ".join(str(e).split()) or type(e).__name__


def print_error(message: str) -> None:
    click.echo(f"Error: {' '.join(message.split())}", err=True)


def make_console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)  # long lines are not broken mid-path
