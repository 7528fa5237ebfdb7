"""The estimators' hyperparameters: every valid value declared once, as data, and checked by
one function (in the manner of scikit-learn's ``_parameter_constraints``).

Each estimator class holds a ``_backprop_constraints`` table, hyperparameter name ->
constraint; :func:`check_parameters` checks every entry and raises one ``ValueError``
naming the estimator, the hyperparameter, what it must be and what it got. (The table is
not named ``_parameter_constraints``: scikit-learn's ``_validate_params`` reads that name
in its own format, and failed on this one.) Hyperparameters missing from the table are
checked where they are used (``backend``/``device`` by
:func:`backprop.backend.get_backend`); the table checks that ``callbacks`` is a list, and
:func:`backprop.training.epoch_callbacks`, the engine's own check, each callback in it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import is_finite_number, short_repr
from ..activations import ACTIVATIONS
from ..initializers import INITIALIZERS

__all__ = [
    "ABSENT_FEATURES",
    "ACTIVATION_ALIASES",
    "ENGINE_LOSS",
    "SOLVERS",
    "CLASSIFIER_LOSSES",
    "HIDDEN_ACTIVATIONS",
    "REGRESSOR_LOSSES",
    "CallbackList",
    "ClassWeight",
    "Flag",
    "FloatDtype",
    "Interval",
    "OneOf",
    "PositiveInt",
    "PositiveInts",
    "RandomSeed",
    "Verbose",
    "check_parameters",
    "float_dtype_name",
    "mlp_constraints",
]

#: scikit-learn's MLP calls the sigmoid "logistic"; both names are accepted.
ACTIVATION_ALIASES = {"logistic": "sigmoid"}
HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "softmax") + ("logistic",)
CLASSIFIER_LOSSES = ("cross_entropy", "binary_cross_entropy")
#: scikit-learn's squared_error first (the default), then the engine's regression losses.
REGRESSOR_LOSSES = ("squared_error", "mse", "l2", "mae", "huber")
#: The engine loss an estimator loss trains (squared_error: l2 over the number of outputs).
ENGINE_LOSS = {"squared_error": "l2"}
#: scikit-learn's solvers sgd and adam, and the engine's adamw and rmsprop.
SOLVERS = ("sgd", "adam", "adamw", "rmsprop")
#: scikit-learn values whose feature backprop does not have, each with its one error.
ABSENT_FEATURES = {
    "lbfgs": (
        "is not available: backprop trains by mini-batch gradient descent and has no "
        "L-BFGS; use solver='adam' (the default) or 'sgd' (or backprop's 'adamw', 'rmsprop')"
    ),
    "poisson": (
        "is not available: backprop has no Poisson loss (nor the exponential output it "
        "needs); use loss='squared_error' (the default), 'mae' or 'huber'"
    ),
}


@dataclass(frozen=True)
class OneOf:
    """One of the names ``options``."""

    options: tuple[str, ...]

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.options

    def expected(self) -> str:
        return f"one of {', '.join(self.options)}"


@dataclass(frozen=True)
class Interval:
    """A finite real number in ``[low, high)`` (``(low, ...`` when ``low_open``; no upper
    bound when ``high`` is None)."""

    low: float
    high: float | None = None
    low_open: bool = False

    def accepts(self, value: Any) -> bool:
        if not is_finite_number(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and (self.high is None or value < self.high)

    def expected(self) -> str:
        lo = "(" if self.low_open else "["
        hi = f"{self.high})" if self.high is not None else "inf)"
        return f"a number in {lo}{self.low}, {hi}"


@dataclass(frozen=True)
class PositiveInt:
    """An integer >= 1 (or the string ``"auto"`` when ``or_auto``; or infinity, ``np.inf``,
    when ``or_inf``)."""

    or_auto: bool = False
    or_inf: bool = False

    def accepts(self, value: Any) -> bool:
        if self.or_auto and value == "auto":
            return True
        if self.or_inf and isinstance(value, float | np.floating) and value == math.inf:
            return True
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1

    def expected(self) -> str:
        return (
            "a positive integer"
            + (" or 'auto'" if self.or_auto else "")
            + (" or np.inf" if self.or_inf else "")
        )


@dataclass(frozen=True)
class PositiveInts:
    """A positive integer or a sequence of them (``hidden_layer_sizes``)."""

    def accepts(self, value: Any) -> bool:
        sizes = tuple(value) if isinstance(value, Sequence | np.ndarray) else (value,)
        return all(
            isinstance(h, numbers.Integral) and not isinstance(h, bool) and h >= 1 for h in sizes
        )

    def expected(self) -> str:
        return "a positive int or a sequence of positive ints"


@dataclass(frozen=True)
class Flag:
    """True or False (a NumPy bool too)."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool | np.bool_)

    def expected(self) -> str:
        return "True or False"


@dataclass(frozen=True)
class ClassWeight:
    """The classifier's ``class_weight``: None, ``"balanced"`` or a dict of weights (finite
    numbers >= 0) by class label. Which labels are classes is known only once ``y`` is seen
    (``BackpropClassifier._class_weights`` checks the keys)."""

    def accepts(self, value: Any) -> bool:
        if value is None or (isinstance(value, str) and value == "balanced"):
            return True
        return isinstance(value, Mapping) and all(
            is_finite_number(w) and w >= 0 for w in value.values()
        )

    def expected(self) -> str:
        return "'balanced', a dict of weights >= 0 by class label, or None"


@dataclass(frozen=True)
class Verbose:
    """scikit-learn's ``verbose``: True, False or an integer >= 0 (any truthy value prints)."""

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_):
            return True
        return isinstance(value, numbers.Integral) and value >= 0

    def expected(self) -> str:
        return "True, False or an int >= 0"


@dataclass(frozen=True)
class RandomSeed:
    """``random_state``: None, an int >= 0 (any size: ``numpy.random.default_rng`` takes it,
    where scikit-learn's ``RandomState`` stops at ``2**32 - 1``; files saved with larger
    seeds load), a ``numpy.random.RandomState`` or a ``numpy.random.Generator``."""

    def accepts(self, value: Any) -> bool:
        if value is None or isinstance(value, np.random.RandomState | np.random.Generator):
            return True
        return isinstance(value, numbers.Integral) and value >= 0

    def expected(self) -> str:
        return "None, an int >= 0, a numpy RandomState or a numpy Generator"


@dataclass(frozen=True)
class CallbackList:
    """``callbacks``: None or a list (or tuple) of them; each one is the engine's to check
    (:func:`backprop.training.epoch_callbacks`). Any other value, a set, a dict, a string,
    an int, a single callback, is refused here, where the engine iterated it (``1`` read
    "'int' object is not iterable", a dict passed its keys as callbacks)."""

    def accepts(self, value: Any) -> bool:
        return value is None or isinstance(value, list | tuple)

    def expected(self) -> str:
        return "a list of callbacks"


def float_dtype_name(value: Any) -> str | None:
    """``"float32"`` or ``"float64"`` for a ``dtype`` hyperparameter that means one of them:
    that string, a NumPy dtype or a type NumPy reads as one (``np.float32``,
    ``np.dtype("float64")``, ``float``); None for anything else."""
    if isinstance(value, str):
        return value if value in ("float32", "float64") else None
    if not isinstance(value, np.dtype | type):
        return None
    try:
        dtype = np.dtype(value)
    except TypeError:  # a type NumPy has no dtype for
        return None
    return "float32" if dtype == np.float32 else "float64" if dtype == np.float64 else None


@dataclass(frozen=True)
class FloatDtype:
    """The network's ``dtype``: ``"float32"`` or ``"float64"``, or a NumPy dtype or type equal
    to one (see :func:`float_dtype_name`)."""

    def accepts(self, value: Any) -> bool:
        return float_dtype_name(value) is not None

    def expected(self) -> str:
        return "'float32' or 'float64' (or np.float32, np.float64)"


Constraint = (
    OneOf
    | Interval
    | PositiveInt
    | PositiveInts
    | Flag
    | ClassWeight
    | Verbose
    | RandomSeed
    | FloatDtype
    | CallbackList
)


def mlp_constraints(losses: tuple[str, ...]) -> dict[str, Constraint]:
    """The table both estimators share, with the losses each one takes."""
    return {
        "hidden_layer_sizes": PositiveInts(),
        "activation": OneOf(HIDDEN_ACTIVATIONS),
        "loss": OneOf(losses),
        "solver": OneOf(SOLVERS),
        "learning_rate": OneOf(("constant", "invscaling", "adaptive")),
        "power_t": Interval(0.0),
        "beta_1": Interval(0.0, 1.0),
        "beta_2": Interval(0.0, 1.0),
        "epsilon": Interval(0.0, low_open=True),
        "max_fun": PositiveInt(),
        "nesterovs_momentum": Flag(),
        "shuffle": Flag(),
        "early_stopping": Flag(),
        "warm_start": Flag(),
        "verbose": Verbose(),
        "random_state": RandomSeed(),
        "init": OneOf(tuple(INITIALIZERS)),
        "dtype": FloatDtype(),
        "learning_rate_init": Interval(0.0, low_open=True),
        "alpha": Interval(0.0),
        "tol": Interval(0.0),
        "momentum": Interval(0.0, 1.0),
        "dropout": Interval(0.0, 1.0),
        # 0 as scikit-learn takes it: unused without early stopping (refused with it)
        "validation_fraction": Interval(0.0, 1.0),
        "max_iter": PositiveInt(),
        "n_iter_no_change": PositiveInt(or_inf=True),  # inf: never stop at a plateau
        "batch_size": PositiveInt(or_auto=True),
        "callbacks": CallbackList(),
    }


def check_parameters(estimator: Any, constraints: Mapping[str, Constraint]) -> None:
    """Check every hyperparameter in ``constraints``; one ``ValueError`` for the first bad one:
    ``BackpropClassifier: alpha must be a number in [0.0, inf); got -1``."""
    name = type(estimator).__name__
    for param, constraint in constraints.items():
        value = getattr(estimator, param)
        if not constraint.accepts(value):
            raise ValueError(
                f"{name}: {param} must be {constraint.expected()}; got {short_repr(value)}"
            )
