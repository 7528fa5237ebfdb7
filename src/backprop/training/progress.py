"""The progress bar of a training run (rich), a no-op when disabled."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressBar"]


class ProgressBar:
    """A rich progress bar over all epochs' samples; a no-op when disabled.

    It redraws at most ~20 times per epoch so that it costs nothing measurable per step.
    """

    def __init__(self, epochs: int, n: int, batch_size: int, enabled: bool) -> None:
        self.enabled = enabled and epochs > 0
        self.n = n
        self.every = max(1, (n // batch_size) // 20)
        self._count = 0
        self._done = 0  # rows of the completed epochs
        self._desc = ""
        if not self.enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("epoch 1", total=epochs * n, metrics="")
        self.epochs = epochs

    def step(self, seen: int, running_loss: Callable[[], float]) -> None:
        """After a step, ``seen`` rows into the epoch; every ``self.every`` steps, redraw with
        ``running_loss()`` (the only value read back from the device)."""
        if not self.enabled:
            return
        self._count += 1
        if self._count % self.every == 0:
            self.progress.update(
                self.task, completed=self._done + seen, metrics=f"loss {running_loss():.4f}"
            )

    def epoch_done(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        self._done += self.n
        parts = [f"loss {row['loss']:.4f}"]
        for key in ("accuracy", "val_loss", "val_accuracy"):
            if key in row:
                parts.append(f"{key.replace('_', ' ')} {row[key]:.4f}")
        self.progress.update(
            self.task,
            completed=self._done,
            description=f"epoch {row['epoch']}/{self.epochs}",
            metrics="  ".join(parts),
        )

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
