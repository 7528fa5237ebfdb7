"""What a training run shows while it trains: one line per finished epoch, and on a
terminal a live bar for the epoch in progress.

On a terminal (Keras' ``verbose=1`` habit)::

    epoch 1/3  loss    0.6931  acc  50.4%  val loss    0.6925  val acc  53.3%   0.31s
    epoch 2/3 ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ step  45/135  loss 0.5120
      epoch 0:01 elapsed, 0:02 left   run 0:05 elapsed, 0:10 left

The finished epochs' lines stay in the scrollback; the two live lines (the bar and its
clocks) are redrawn a few times a second and erased when training ends. Anywhere else (a
pipe, a file, a CI log, any rank under ``mpirun``) only the finished epochs' lines are
written, one plain line each.
Every line fits in 80 columns (or the terminal's width, when narrower).
"""

from __future__ import annotations

import errno
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .mpi import launched_world_size

__all__ = [
    "MAX_WIDTH", "ProgressBar", "clock", "epoch_line", "raise_broken_pipe", "stdout_console",
]  # fmt: skip


def raise_broken_pipe() -> None:
    """A rich ``Console``'s ``on_broken_pipe``: rich's own sends stdout to /dev/null and
    raises ``SystemExit(1)``, which ended a ``train --no-progress | head`` with status 1
    and no word, and would end a library user's program. Here the BrokenPipeError goes on
    to whoever handles it."""
    raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


#: The widest line progress output writes (columns).
MAX_WIDTH = 80


def stdout_console(**options: Any) -> Any:
    """A rich ``Console`` on standard output (``options`` are rich's) that is a terminal only
    where standard output is one: ``FORCE_COLOR``, which many CI systems set for colours,
    made rich take a pipe or a log file for a terminal, and the live bar's cursor moves went
    into the log (docs/cli.md: a pipe or a file gets the epoch lines alone). Under ``mpirun``
    it is never a terminal: the launcher gives each rank a pseudo-terminal."""
    from rich.console import Console

    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError, OSError):  # replaced, or closed
        tty = False
    if launched_world_size() > 1:  # mpirun gives every rank a pseudo-terminal, whatever
        tty = False  # its own output is (a log file got the bar's frames)
    return Console(force_terminal=None if tty else False, **options)


def clock(seconds: float | None) -> str:
    """``75.2`` -> ``"1:15"``; ``3725`` -> ``"1:02:05"``; None (not known yet) -> ``"-:--"``."""
    if seconds is None or not math.isfinite(seconds):
        return "-:--"
    s = int(round(max(seconds, 0.0)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _duration(seconds: float) -> str:
    """An epoch's time: ``4.2ms`` below a hundredth of a second (every epoch of a small
    table read ``0.00s``), ``0.31s``, ``12.4s``, then ``2:05`` (a clock) from 100 s on."""
    if seconds < 0.00995:  # (what would round to 0.01s is written so)
        return f"{seconds * 1000:.1f}ms"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 100:
        return f"{seconds:.1f}s"
    return clock(seconds)


def _metric(key: str, value: float) -> str:
    """A value in a fixed width, so that the epochs' lines stay aligned: accuracies as
    `` 81.3%``, losses with 4 significant digits in 9 columns (``   0.4127``, ``5.515e-05``)."""
    if key.endswith("accuracy"):
        return f"{100 * value:5.1f}%"
    return f"{value:#9.4g}"


#: The history columns an epoch line shows, and their labels, in order.
_SHOWN = (
    ("loss", "loss"),
    ("accuracy", "acc"),
    ("val_loss", "val loss"),
    ("val_accuracy", "val acc"),
)


def epoch_line(row: dict[str, float], epochs: int, width: int = MAX_WIDTH) -> str:
    """The line kept for a finished epoch: ``epoch 2/5  loss 0.4127  acc 81.33%  ...``.

    Parameters
    ----------
    row : dict
        The history row: ``epoch`` (1-based), ``loss``, and where present ``accuracy``,
        ``val_loss``, ``val_accuracy``, ``time`` (seconds).
    epochs : int
        The run's last epoch (the ``/N`` of the label).
    width : int
        The widest the line may be: the parts are separated by two spaces, by one when that
        does not fit; then the epoch's time is left out, then the accuracies, then the
        validation loss.
    """
    digits = len(str(epochs))
    label = f"epoch {int(row['epoch']):>{digits}}/{epochs}"
    shown = {key: f"{name} {_metric(key, row[key])}" for key, name in _SHOWN if key in row}
    parts = [label, *shown.values()]
    # narrower and narrower: without the time, without the accuracies, the losses alone
    # (every part has a fixed width, so every line of a run makes the same choice)
    timed = [*parts, f"{_duration(row['time']):>6}"] if "time" in row else parts
    candidates = [timed, parts]
    candidates.append([label, *(v for k, v in shown.items() if not k.endswith("accuracy"))])
    candidates.append([label, shown["loss"]] if "loss" in shown else [label])
    for candidate in candidates:
        for sep in ("  ", " "):
            line = sep.join(candidate)
            if len(line) <= width:
                return line
    return line  # the label and the loss alone are wider than ``width``


class ProgressBar:
    """Progress of a run: a line per finished epoch, and a live bar on a terminal.

    The training runners call :meth:`epoch_start`, :meth:`step` after each step (or after
    each batch of steps) and :meth:`epoch_done`; :meth:`close` at the end. Disabled, every
    method returns at once. The running loss is read from the device only when the bar is
    redrawn (at most ~20 times per epoch, and never without a terminal), so that the bar
    costs nothing measurable per step.

    Parameters
    ----------
    epochs : int
        The run's last epoch (a resumed run starts after 1).
    n : int
        Training rows per epoch.
    batch_size : int
    enabled : bool
    console : rich.console.Console, optional
        Where to write (default: a console on standard output). A terminal gets the live
        bar; anything else gets the epoch lines alone.
    """

    def __init__(
        self, epochs: int, n: int, batch_size: int, enabled: bool, console: Any = None
    ) -> None:
        self.enabled = enabled and epochs > 0
        self.epochs = epochs
        self.n = n
        self.steps = max(1, math.ceil(n / batch_size))
        self.batch_size = batch_size
        self.every = max(1, self.steps // 20)
        self.live: Any = None
        self.epoch = 0
        self.seen = 0
        self.loss: float | None = None
        self._count = 0
        self._epoch_t0 = 0.0
        self._run_t0: float | None = None
        self._durations: list[float] = []
        # set by the epoch loop when early stopping may end the run before its last epoch:
        # the run's time left is then a bound
        self.may_stop_early = False
        if not self.enabled:
            return
        if console is None:
            console = stdout_console(highlight=False)
            console.on_broken_pipe = raise_broken_pipe
            if console.width < 1:  # COLUMNS=0 at a terminal: rich printed no epoch line
                console.width = MAX_WIDTH
        self.console = console
        self.interactive = bool(console.is_terminal)
        # a terminal's width, down to 40; a pipe or a log file has none to fit (a COLUMNS
        # set in the environment dropped the accuracies from every line of a log)
        self.width = max(40, min(console.width, MAX_WIDTH)) if self.interactive else MAX_WIDTH

    # ------------------------------------------------------------------ the runners' calls
    def epoch_start(self, epoch: int) -> None:
        """Epoch ``epoch`` (1-based) begins."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self._run_t0 is None:
            self._run_t0 = now
        self.epoch, self.seen, self.loss, self._count = epoch, 0, None, 0
        self._epoch_t0 = now
        if self.interactive and self.live is None:
            from rich.live import Live

            self.live = Live(
                get_renderable=self._render,
                console=self.console,
                transient=True,
                refresh_per_second=4,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.start()

    def step(self, seen: int, running_loss: Callable[[], float]) -> None:
        """After a step, ``seen`` rows into the epoch; every ``self.every`` steps (on a
        terminal) the bar's loss becomes ``running_loss()``, the one value read back."""
        if not self.enabled:
            return
        self.seen = seen
        self._count += 1
        if self.interactive and (self._count % self.every == 0 or seen >= self.n):
            self.loss = running_loss()

    def epoch_done(self, row: dict[str, float]) -> None:
        """An epoch has finished with the history row ``row``: its line is written."""
        if not self.enabled:
            return
        if self._run_t0 is None:  # a runner that does not announce its epochs
            self._run_t0 = self._epoch_t0 = time.monotonic()
        self._durations.append(time.monotonic() - self._epoch_t0)
        line = epoch_line(row, self.epochs, self.width)
        if self.live is not None:
            from rich.text import Text

            # printing redraws the bar's last rendered frame below the line, up to 1/4 s old
            # (a short epoch's 'step 0'): render the present one first
            self.live.refresh()
            self.live.console.print(Text(line), soft_wrap=True)
        else:
            out = self.console.file if self.console is not None else sys.stdout
            out.write(line + "\n")
            out.flush()

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    # ------------------------------------------------------------------------ the bar
    def clocks(self, now: float | None = None) -> tuple[float, float | None, float, float | None]:
        """``(epoch elapsed, epoch left, run elapsed, run left)`` in seconds; a time left is
        None until the first step of the run gives a speed to extrapolate from."""
        now = time.monotonic() if now is None else now
        elapsed = now - self._epoch_t0
        run_elapsed = now - (self._run_t0 if self._run_t0 is not None else now)
        left = None if self.seen <= 0 else elapsed * (self.n - self.seen) / self.seen
        per_epoch = (
            sum(self._durations) / len(self._durations)
            if self._durations
            else (None if left is None else elapsed + left)
        )
        later = max(self.epochs - self.epoch, 0)
        run_left = None if left is None or per_epoch is None else left + later * per_epoch
        return elapsed, left, run_elapsed, run_left

    def bar_parts(self, now: float | None = None) -> tuple[str, str, int, str]:
        """What the live lines show: ``(label, step and loss, bar width, clocks line)``.

        The label is ``epoch 2/3``; the bar takes whatever the line's width leaves."""
        digits = len(str(self.epochs))
        label = f"epoch {self.epoch:>{digits}}/{self.epochs}"
        step = min(self.steps, math.ceil(self.seen / self.batch_size))
        right = f"step {step:>{len(str(self.steps))}}/{self.steps}"
        if self.loss is not None:
            right += f"  loss {self.loss:#.4g}"  # as the epoch lines: 2.517e+47, not 48 digits
        elapsed, left, run_elapsed, run_left = self.clocks(now)
        clocks = (
            f"  epoch {clock(elapsed)} elapsed, {clock(left)} left   "
            f"run {clock(run_elapsed)} elapsed, "
            f"{'at most ' if self.may_stop_early else ''}{clock(run_left)} left"
        )
        return label, right, max(self.width - len(label) - len(right) - 2, 1), clocks

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar as Bar
        from rich.table import Table
        from rich.text import Text

        label, right, bar_width, clocks = self.bar_parts()
        row = Table.grid(padding=(0, 1))
        row.add_column(no_wrap=True)
        row.add_column(no_wrap=True, width=bar_width)
        row.add_column(no_wrap=True)
        bar = Bar(total=self.n, completed=min(self.seen, self.n), width=bar_width)
        row.add_row(Text(label, style="bold"), bar, Text(right))
        return Group(row, Text(clocks, style="dim"))
