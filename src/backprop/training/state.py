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

from .._validation import is_count, is_finite_number, is_flag, short_repr
from ..network import MLP
from ..optimizers import Optimizer

__all__ = [
    "Callback",
    "CallbackLike",
    "EarlyStopping",
    "History",
    "MAXIMISED",
    "MINIMISED",
    "TrainState",
    "TrainingDiverged",
]


class TrainingDiverged(RuntimeError):
    """The loss, the weights or the optimizer's moments became NaN or inf; the model holds
    the last good weights.

    Attributes: ``history`` (the epochs completed before), ``epoch`` (0-based), ``hint``
    (what to try: a smaller learning rate, or scaling the data where the loss overflowed;
    for moments past the dtype's range, scaling the data or float64).
    """

    def __init__(
        self, message: str, history: History, epoch: int, hint: str = "try a smaller learning rate"
    ) -> None:
        super().__init__(message)
        self.history = history
        self.epoch = epoch
        self.hint = hint


@dataclass(repr=False)
class History:
    """One dict per epoch: ``epoch`` (1-based), ``loss``, ``accuracy`` (classifiers),
    ``val_loss`` and ``val_accuracy`` (with validation data), ``lr``, ``time`` (s); why the
    run ended (``stop_reason``); and under early stopping the best epoch so far
    (``best_epoch``, 1-based), whose weights the model holds at the end when it restores the
    best weights (the default): the last row's scores are not that model's.

    An epoch's ``loss`` and ``accuracy`` are means over its mini-batches as they trained
    (each batch scored before its step, dropout on), not the scores of the weights the
    epoch ended with; ``val_loss`` and ``val_accuracy`` are those weights' scores on the
    validation rows."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str = ""
    best_epoch: int | None = None

    def __getitem__(self, key: str) -> list[float]:
        """The column ``key`` over epochs, e.g. ``history["val_loss"]``; KeyError for a
        column the epochs do not have (as Keras' ``History.history``), naming those they
        have. Before the first epoch every column is ``[]``."""
        column = [row[key] for row in self.epochs if key in row]
        if not column and self.epochs:
            names = ", ".join(self.history)
            raise KeyError(f"the history has no column {key!r}; its columns are: {names}")
        return column

    def __len__(self) -> int:
        return len(self.epochs)

    def __contains__(self, key: object) -> bool:
        """Whether some epoch has the column ``key`` (``"val_loss" in history``; it looped
        forever through ``__getitem__`` with 0, 1, 2...)."""
        return any(key in row for row in self.epochs)

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
        """The epochs' rows, the stop reason and the best epoch, JSON-ready."""
        return {
            "epochs": self.epochs,
            "stop_reason": self.stop_reason,
            "best_epoch": self.best_epoch,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        """The history :meth:`to_dict` wrote."""
        return cls(list(d["epochs"]), d.get("stop_reason", ""), d.get("best_epoch"))


@dataclass
class TrainState:
    """Everything a run needs to continue exactly: handed to callbacks, saved by checkpoints.

    ``epoch`` counts completed epochs; ``best_score``/``best_params`` are early stopping's
    record (lower is better: a maximised monitor's value is stored negated; ``best_params``
    stays None when the best weights are not to be restored). ``last_params`` holds the
    weights the last epoch ended with once ``fit`` has restored the best ones over them: a
    run given more epochs goes on from these, exactly as if it had never stopped.
    """

    model: MLP
    optimizer: Optimizer
    rng: np.random.Generator
    epoch: int = 0
    history: History = field(default_factory=History)
    best_score: float = math.inf
    best_params: dict[str, np.ndarray] | None = None
    stop: bool = False
    last_params: dict[str, np.ndarray] | None = None


class Callback:
    """Called by :func:`fit` at each epoch's end; return True (or set ``state.stop``) to stop."""

    def on_epoch_end(self, state: TrainState) -> bool | None:
        """Called after each epoch's row is in ``state.history``; return True (or set
        ``state.stop``) to stop training after this epoch. The base class does nothing."""
        return None


CallbackLike = Callback | Callable[[TrainState], Any]


#: Monitors that ``mode="auto"`` maximises: any whose name contains one of these.
MAXIMISED = ("accuracy", "r2")
#: Monitors that ``mode="auto"`` minimises: any whose name contains one of these (and none
#: of :data:`MAXIMISED`). Others need a mode: ``val_f1`` was minimised, and the worst
#: epoch's weights kept.
MINIMISED = ("loss", "mse", "mae", "error")


@dataclass
class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs; with ``restore_best_weights``, :func:`fit` then restores the weights of the best
    epoch.

    Parameters
    ----------
    patience : int >= 1
    monitor : str
        A column of the history: ``val_loss`` (default), ``val_accuracy``, ``loss``,
        ``accuracy``, or any a callback adds to the epoch's row before this one runs (so
        among ``fit``'s ``callbacks`` after it: ``fit(early_stopping=...)`` runs first). A
        ``val_...`` monitor without validation data falls back to the training column
        (``val_loss`` -> ``loss``); a monitor in neither is a ValueError.
    min_delta : float >= 0
    mode : {"auto", "min", "max"}
        ``"auto"`` maximises a monitor whose name contains ``accuracy`` or ``r2``
        (:data:`backprop.training.state.MAXIMISED`) and minimises one that contains
        ``loss``, ``mse``, ``mae`` or ``error`` (:data:`backprop.training.state.MINIMISED`);
        any other monitor (``val_f1``) needs ``"min"`` or ``"max"`` (a ValueError says so).
    restore_best_weights : bool
        Restore the best epoch's weights at the end (default); False keeps the last
        epoch's.

    ``state.best_score`` holds the best value in the minimised form (a maximised
    monitor's value negated), so a checkpoint stores one kind of number.
    """

    patience: int = 5
    monitor: str = "val_loss"
    min_delta: float = 0.0
    mode: str = "auto"
    restore_best_weights: bool = True

    def __post_init__(self) -> None:
        if not is_count(self.patience, 1):  # at most 2**53: a checkpoint holds it
            raise ValueError(
                f"patience must be an integer from 1 to 2**53; got {short_repr(self.patience)}"
            )
        if self.mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {self.mode!r}")
        if not (is_finite_number(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"min_delta must be a number >= 0; got {short_repr(self.min_delta)}")
        self.min_delta = float(self.min_delta)
        if not is_flag(self.restore_best_weights):  # "no" is truthy
            raise ValueError(
                "restore_best_weights must be True or False; got "
                f"{short_repr(self.restore_best_weights)}"
            )
        if not isinstance(self.monitor, str) or not self.monitor:
            raise ValueError(f"monitor must be a history column's name; got {self.monitor!r}")
        if self.mode == "auto" and not any(w in self.monitor for w in MAXIMISED + MINIMISED):
            raise ValueError(
                f"mode 'auto' cannot tell whether a larger {self.monitor!r} is better: it "
                "maximises names with accuracy or r2 and minimises names with loss, mse, mae "
                "or error; set mode to 'max' or 'min'"
            )

    def maximises(self, key: str | None = None) -> bool:
        """Whether a larger value of ``key`` (default: the monitor) is better."""
        if self.mode != "auto":
            return self.mode == "max"
        key = self.monitor if key is None else key
        return any(word in key for word in MAXIMISED)

    def watched(self, row: dict[str, float]) -> str:
        """The column of ``row`` this callback watches: the monitor, or for a ``val_...``
        monitor without validation data, its training column."""
        if self.monitor in row:
            return self.monitor
        fallback = self.monitor.removeprefix("val_")
        if self.monitor.startswith("val_") and fallback in row:
            return fallback
        columns = ", ".join(k for k in row if k not in ("epoch", "lr", "time"))
        raise ValueError(
            f"EarlyStopping monitors {self.monitor!r}, which the history does not have; "
            f"its columns are: {columns}"
        )

    def on_epoch_end(self, state: TrainState) -> bool:
        row = state.history.epochs[-1]
        key = self.watched(row)
        sign = -1.0 if self.maximises(key) else 1.0
        score = sign * row[key]  # lower is better
        if score < state.best_score - self.min_delta:
            state.best_score = score
            state.best_params = state.model.state_dict() if self.restore_best_weights else None
            state.history.best_epoch = state.epoch
        elif (
            state.history.best_epoch is not None
            and state.epoch - state.history.best_epoch >= self.patience
        ):
            best, at = sign * state.best_score, state.history.best_epoch
            model = f"epoch {at}'s" if self.restore_best_weights else "the last epoch's"
            state.history.stop_reason = (
                f"early stopping: {key} did not improve for {self.patience} epochs "
                f"(best {best:.6g} at epoch {at}); the model is {model}"
            )
            return True
        return False
