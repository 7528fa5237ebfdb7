"""What a training run is: its state, its history, and the callbacks that see it.

Everything that training needs to continue exactly where it stopped lives in one
:class:`TrainState` (model, optimizer, shuffle generator, epoch count, history,
early-stopping record), which is what a callback receives at each epoch's end and what a
checkpoint saves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..network import MLP
from ..optimizers import Optimizer

__all__ = [
    "Callback",
    "CallbackLike",
    "EarlyStopping",
    "History",
    "TrainState",
    "TrainingDiverged",
]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the model holds the last good weights.

    Attributes: ``history`` (the epochs completed before), ``epoch`` (0-based).
    """

    def __init__(self, message: str, history: History, epoch: int) -> None:
        super().__init__(message)
        self.history = history
        self.epoch = epoch


@dataclass(repr=False)
class History:
    """One dict per epoch: ``epoch`` (1-based), ``loss``, ``accuracy`` (classifiers),
    ``val_loss`` and ``val_accuracy`` (with validation data), ``lr``, ``time`` (s)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str = ""
    best_epoch: int | None = None

    def __getitem__(self, key: str) -> list[float]:
        """The column ``key`` over epochs, e.g. ``history["val_loss"]``."""
        return [row[key] for row in self.epochs if key in row]

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def history(self) -> dict[str, list[float]]:
        """Every column over the epochs, Keras' ``History.history``:
        ``{"loss": [...], "val_loss": [...], ...}`` (``epoch`` included)."""
        columns: list[str] = []
        for row in self.epochs:
            columns += [k for k in row if k not in columns]
        return {key: self[key] for key in columns}

    def __repr__(self) -> str:
        if not self.epochs:
            return "History(0 epochs)"
        last = self.epochs[-1]
        shown = ", ".join(
            f"{k}={last[k]:.4g}"
            for k in ("loss", "accuracy", "val_loss", "val_accuracy")
            if k in last
        )
        best = f", best_epoch={self.best_epoch}" if self.best_epoch is not None else ""
        return (
            f"History({len(self.epochs)} epochs, last: {shown}{best}, "
            f"stop_reason={self.stop_reason!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "stop_reason": self.stop_reason,
            "best_epoch": self.best_epoch,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(list(d["epochs"]), d.get("stop_reason", ""), d.get("best_epoch"))


@dataclass
class TrainState:
    """Everything a run needs to continue exactly: handed to callbacks, saved by checkpoints.

    ``epoch`` counts completed epochs; ``best_score``/``best_params`` are early stopping's
    record (lower is better).
    """

    model: MLP
    optimizer: Optimizer
    rng: np.random.Generator
    epoch: int = 0
    history: History = field(default_factory=History)
    best_score: float = math.inf
    best_params: dict[str, np.ndarray] | None = None
    stop: bool = False


class Callback:
    """Called by :func:`fit` at each epoch's end; return True (or set ``state.stop``) to stop."""

    def on_epoch_end(self, state: TrainState) -> bool | None:
        return None


CallbackLike = Callback | Callable[[TrainState], Any]


@dataclass
class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    :func:`fit` then restores the weights of the best epoch."""

    patience: int = 5
    monitor: str = "val_loss"
    min_delta: float = 0.0

    def on_epoch_end(self, state: TrainState) -> bool:
        row = state.history.epochs[-1]
        key = self.monitor if self.monitor in row else "loss"
        score = row[key]
        if score < state.best_score - self.min_delta:
            state.best_score = score
            state.best_params = state.model.state_dict()
            state.history.best_epoch = state.epoch
        elif (
            state.history.best_epoch is not None
            and state.epoch - state.history.best_epoch >= self.patience
        ):
            state.history.stop_reason = (
                f"early stopping: {key} did not improve for {self.patience} epochs "
                f"(best {state.best_score:.6g} at epoch {state.history.best_epoch})"
            )
            return True
        return False
