"""The tutorial's network as data (the tutorial gives formulas, not numbers: the example's
inputs and weights are the project's, :data:`backprop.reference.SEED_EXAMPLE`), a weights
file, successive steps, and finite-difference estimates of every gradient, for
``backprop explain`` and the playground.

The numbers come from :func:`backprop.reference.seed_step`, the loop-based network that
follows the tutorial line by line. :func:`finite_difference_gradients` estimates each
gradient independently: every weight and bias is nudged by ``+-eps`` and the reference
network's loss ``L = 1/2 sum_j (y_j - t_j)^2`` is evaluated again,
``dL/dp ~ (L(p + eps) - L(p - eps)) / (2 eps)``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import reference
from ._limits import read_user_file
from ._validation import is_finite_number as _is_number
from ._validation import short_repr as _short
from ._validation import unique_keys
from .reference import SEED_EXAMPLE, SeedStep, seed_step

__all__ = [
    "WEIGHT_KEYS",
    "FD_EPS",
    "MAX_PARAMETERS",
    "MAX_STEPS",
    "MAX_STEP_PARAMETERS",
    "ExplainError",
    "EstimateError",
    "estimate_error",
    "example_inputs",
    "parse_vector",
    "as_vector",
    "as_matrix",
    "load_weights",
    "check_shapes",
    "run_steps",
    "losses_after_update",
    "step_json",
    "require_finite",
    "finite_difference_gradients",
]

#: The keys of a ``--weights`` file: the seed network's parameters.
WEIGHT_KEYS = ("w", "b1", "u", "b2")

#: Step of the central differences: the truncation error ~eps^2 |L'''| and the float64
#: rounding error ~1e-17 / eps are both near 1e-12 for the seed's numbers.
FD_EPS = 1e-5

#: The most weights and biases a ``--weights`` network may have: the finite differences
#: evaluate the loss twice per parameter, each time over every parameter, and every number
#: is printed (at 1000 parameters: about a second, and a thousand table rows).
MAX_PARAMETERS = 1000

#: The most successive steps ``explain --steps`` takes (one table row each).
MAX_STEPS = 10_000

#: The most weights and biases all the steps together keep (``steps`` x parameters): every
#: step's numbers are kept for its table and JSON (10000 steps of a 961-parameter network
#: took 3.0 GB and 93 s; the tutorial's 17 parameters take any number of steps).
MAX_STEP_PARAMETERS = 1_000_000


class ExplainError(ValueError):
    """The numbers given to ``explain`` are malformed (wrong lengths, not numbers, bad file)."""


# ------------------------------------------------------------------------ inputs
def example_inputs() -> dict[str, Any]:
    """A deep copy of :data:`backprop.reference.SEED_EXAMPLE` (x, t, eta, w, b1, u, b2)."""
    return json.loads(json.dumps(SEED_EXAMPLE))


def parse_vector(text: str, name: str) -> list[float]:
    """``"0.05,0.10"`` -> ``[0.05, 0.1]``; one clear error for anything else."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ExplainError(
            f"{name} must be comma-separated numbers such as 0.05,0.10; got {text!r}"
        ) from None
    if not all(math.isfinite(v) for v in values):
        raise ExplainError(f"{name} must be finite numbers; got {text!r}")
    return values


def as_vector(value: Any, name: str) -> list[float]:
    """``value`` (parsed JSON) as a list of floats; ExplainError naming the first entry that
    is not a finite number (``b2[1] is 'x'``)."""
    if not isinstance(value, list):
        raise ExplainError(f"{name} must be a list of numbers; got {_short(value)}")
    out = []
    for k, v in enumerate(value):
        if not _is_number(v):
            raise ExplainError(f"{name}[{k}] is {_short(v)}; expected a finite number")
        out.append(float(v))
    return out


def as_matrix(value: Any, name: str) -> list[list[float]]:
    """``value`` (parsed JSON) as a non-empty rectangular list of rows of floats."""
    if not isinstance(value, list) or not value:
        raise ExplainError(f"{name} must be a nested list of numbers; got {_short(value)}")
    rows = [as_vector(r, f"{name}[{i}]") for i, r in enumerate(value)]
    _check_rectangular(rows, name)
    return rows


def _check_rectangular(rows: Any, name: str) -> None:
    """:func:`backprop.reference.check_rectangular`, its error an :class:`ExplainError`."""
    try:
        reference.check_rectangular(rows, name)
    except ValueError as e:
        raise ExplainError(str(e)) from None


def load_weights(path: str | Path) -> dict[str, Any]:
    """Read ``w``, ``b1``, ``u``, ``b2`` from JSON (nested lists; ``w[i][j]`` joins input i
    to hidden unit j, as in the seed).

    The file must be a regular file of at most the limit ``weights_bytes`` (1 MiB, see
    :mod:`backprop._limits`), refused by type or size before it is read.
    """
    path = Path(path)
    raw = read_user_file(path, "weights file", "weights_bytes", ExplainError)
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_keys)  # "w" twice:
    except RecursionError:  # the last one won without a word
        raise ExplainError(f"weights file {path} is nested too deeply to be weights") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError, digits beyond int's limit
        raise ExplainError(f"weights file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ExplainError(
            f"weights file {path} must hold a JSON object with keys {', '.join(WEIGHT_KEYS)}"
        )
    missing = [k for k in WEIGHT_KEYS if k not in data]
    unknown = sorted(set(data) - set(WEIGHT_KEYS))
    if missing or unknown:
        wrong = [f"missing {', '.join(missing)}"] if missing else []
        wrong += [f"unknown {_short(unknown)}"] if unknown else []
        raise ExplainError(
            f"weights file {path} must have exactly the keys {', '.join(WEIGHT_KEYS)}; "
            + "; ".join(wrong)
        )
    try:
        out = {
            "w": as_matrix(data["w"], "w"),
            "b1": as_vector(data["b1"], "b1"),
            "u": as_matrix(data["u"], "u"),
            "b2": as_vector(data["b2"], "b2"),
        }
    except ExplainError as e:
        raise ExplainError(f"weights file {path}: {e}") from None
    n = sum(len(r) for r in out["w"]) + len(out["b1"]) + sum(len(r) for r in out["u"])
    n += len(out["b2"])
    if n > MAX_PARAMETERS:
        raise ExplainError(
            f"weights file {path} holds {n} weights and biases; explain shows at most "
            f"{MAX_PARAMETERS} (every one with its finite difference)"
        )
    return out


def check_shapes(x: Sequence[float], t: Sequence[float], w: Any, b1: Any, u: Any, b2: Any) -> None:
    """Raise :class:`ExplainError` unless the numbers make one 1-hidden-layer network: the
    check :func:`backprop.reference.seed_step` makes
    (:func:`backprop.reference.check_shapes`), its error an :class:`ExplainError`."""
    try:
        reference.check_shapes(x, t, w, b1, u, b2)
    except ValueError as e:
        raise ExplainError(str(e)) from None


# ------------------------------------------------------------------------ numbers
def run_steps(
    x: list[float], t: list[float], w: Any, b1: Any, u: Any, b2: Any, eta: float, steps: int = 1
) -> list[SeedStep]:
    """``steps`` successive gradient-descent steps on one sample, each from the last one's
    updated weights.

    Raises
    ------
    ExplainError
        For shapes that do not make one network, ``eta`` not a finite number >= 0,
        ``steps`` outside ``1..MAX_STEPS``, or numbers so large that a step overflows
        float64 (every number of every step is finite, or nothing is returned).
    """
    check_shapes(x, t, w, b1, u, b2)
    if not (_is_number(eta) and eta >= 0):
        raise ExplainError(f"eta must be a finite number >= 0; got {_short(eta)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ExplainError(f"steps must be an integer from 1 to {MAX_STEPS}; got {_short(steps)}")
    n = len(w) * len(w[0]) + len(b1) + len(u) * len(u[0]) + len(b2)
    if steps * n > MAX_STEP_PARAMETERS:
        raise ExplainError(
            f"{steps} steps of a network of {n} weights and biases keep {steps * n:,} of them "
            f"(every step's, for its table); at most {MAX_STEP_PARAMETERS:,}: take at most "
            f"{MAX_STEP_PARAMETERS // n} steps"
        )
    out = []
    for k in range(steps):
        try:
            step = seed_step(x, t, w, b1, u, b2, eta)
        except OverflowError:
            raise _overflow(k + 1, "L = 1/2 Σ (y_j - t_j)²") from None
        require_finite(step, k + 1)
        out.append(step)
        w, b1, u, b2 = step.w_new, step.b1_new, step.u_new, step.b2_new
    return out


def losses_after_update(steps: Sequence[SeedStep]) -> list[float]:
    """The loss ``L`` at each step's updated weights, on the step's own sample: the next
    step's ``loss`` where the next step starts from them (as :func:`run_steps` makes it: the
    same numbers, the same sums), one more forward pass otherwise (after the last step)."""
    out = []
    for k, s in enumerate(steps):
        nxt = steps[k + 1] if k + 1 < len(steps) else None
        starts_here = nxt is not None and (nxt.x, nxt.t, nxt.w, nxt.b1, nxt.u, nxt.b2) == (
            s.x, s.t, s.w_new, s.b1_new, s.u_new, s.b2_new)  # fmt: skip
        if starts_here:
            out.append(nxt.loss)
        else:
            out.append(seed_step(s.x, s.t, s.w_new, s.b1_new, s.u_new, s.b2_new, 0.0).loss)
    return out


def step_json(step: SeedStep, loss_after_update: float) -> dict[str, Any]:
    """``step`` as ``backprop explain --json`` gives it: its fields
    (:meth:`SeedStep.to_dict`), then the factors explain's tables print, ``dL_dy``
    (y_j - t_j), ``dy_da2`` (y_j (1 - y_j)) and ``dh_da1`` (h_j (1 - h_j)), and
    ``loss_after_update``, the steps table's "L after update" (from
    :func:`losses_after_update`)."""
    return {
        **step.to_dict(),
        "dL_dy": step.dL_dy,
        "dy_da2": step.dy_da2,
        "dh_da1": step.dh_da1,
        "loss_after_update": loss_after_update,
    }


def _overflow(step: int, what: str) -> ExplainError:
    return ExplainError(
        f"step {step} overflows float64 ({what} is not a finite number); use inputs, "
        "targets, weights and eta of smaller magnitude"
    )


def require_finite(step: SeedStep, number: int = 1) -> None:
    """Refuse (:class:`ExplainError`) a step, the ``number``-th, holding a NaN or an
    infinity: JSON has no such numbers, and the next step could not start from them."""
    bad = _first_non_finite(step)
    if bad is not None:
        raise _overflow(number, bad)


def _first_non_finite(step: SeedStep) -> str | None:
    """The name of the first number of ``step`` that is NaN or infinite, or None."""
    for key, value in step.to_dict().items():
        flat = value if isinstance(value, list) else [value]
        flat = [v for row in flat for v in (row if isinstance(row, list) else [row])]
        if not all(math.isfinite(v) for v in flat):
            return key
    return None


def finite_difference_gradients(step: SeedStep, eps: float = FD_EPS) -> dict[str, Any]:
    """Central-difference estimates of ``grad_w, grad_b1, grad_u, grad_b2`` for ``step``.

    Each parameter is perturbed by ``+-eps`` in a copy of the step's weights and the
    reference network's loss is evaluated; nothing from the step's backward pass is used.
    Returns nested lists shaped like the gradients.
    """
    params = {k: json.loads(json.dumps(getattr(step, k))) for k in WEIGHT_KEYS}

    def loss() -> float:
        try:
            return seed_step(
                step.x, step.t, params["w"], params["b1"], params["u"], params["b2"], 0.0
            ).loss
        except OverflowError:  # a nudged loss past float64: its estimate is not finite
            return math.inf

    def nudge(container: list, i: int) -> float:
        saved = container[i]
        container[i] = saved + eps
        up = loss()
        container[i] = saved - eps
        down = loss()
        container[i] = saved
        return (up - down) / (2.0 * eps)

    out: dict[str, Any] = {}
    for name in WEIGHT_KEYS:
        p = params[name]
        if isinstance(p[0], list):
            out[f"grad_{name}"] = [[nudge(row, j) for j in range(len(row))] for row in p]
        else:
            out[f"grad_{name}"] = [nudge(p, j) for j in range(len(p))]
    return out


@dataclass(frozen=True)
class EstimateError:
    """How far the finite-difference estimate of a step's gradients is off by itself.

    ``rounding``: about ``eps_machine L / eps``, each loss it subtracts being off by a few
    units in the last place of ``L``. ``truncation``: its error from the terms in
    ``eps^2``, estimated as a third of its gap to the estimate with ``2 eps``
    (``D(h) = f' + c h^2`` gives ``|D(2 eps) - D(eps)| = 3 |c| eps^2``, Richardson), a gap
    that holds their rounding too. ``largest``: the largest ``|dL/dp|`` of the step;
    ``gap``: the largest ``|dL/dp - estimate|``."""

    rounding: float
    truncation: float
    largest: float
    gap: float

    @property
    def can_check(self) -> bool:
        """Whether the estimate's own error is within 1% of the largest gradient: past it
        (targets of 1e150, or units so saturated that the gradients are 1e-87), a gap
        between the two says nothing about the chain rule."""
        return self.largest == 0 or self.rounding + self.truncation <= 0.01 * self.largest


def estimate_error(step: SeedStep, fd: dict[str, Any]) -> EstimateError:
    """The :class:`EstimateError` of ``fd``, :func:`finite_difference_gradients` of
    ``step`` at :data:`FD_EPS` (the estimate with ``2 eps`` is computed here)."""
    fd_2eps = finite_difference_gradients(step, 2 * FD_EPS)
    keys = ("grad_w", "grad_b1", "grad_u", "grad_b2")
    return EstimateError(
        rounding=sys.float_info.epsilon * abs(step.loss) / FD_EPS,
        truncation=max(
            abs(a - b) / 3.0
            for key in keys
            for a, b in zip(_flat(fd[key]), _flat(fd_2eps[key]), strict=True)
        ),
        largest=max(abs(v) for key in keys for v in _flat(getattr(step, key))),
        gap=max(
            abs(a - b)
            for key in keys
            for a, b in zip(_flat(getattr(step, key)), _flat(fd[key]), strict=True)
        ),
    )


def _flat(v: Any) -> list[float]:
    """A gradient's numbers in one list (a matrix's rows one after another)."""
    return [x for row in v for x in row] if v and isinstance(v[0], list) else list(v)
