"""The tutorial's worked example as data: its inputs, a weights file, successive steps, and
finite-difference estimates of every gradient, for ``backprop explain`` and the playground.

The numbers come from :func:`backprop.reference.seed_step`, the loop-based network that
follows the tutorial line by line. :func:`finite_difference_gradients` estimates each
gradient independently: every weight and bias is nudged by ``+-eps`` and the reference
network's loss ``L = 1/2 sum_j (y_j - t_j)^2`` is evaluated again,
``dL/dp ~ (L(p + eps) - L(p - eps)) / (2 eps)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .reference import SEED_EXAMPLE, SeedStep, seed_step

__all__ = [
    "WEIGHT_KEYS",
    "FD_EPS",
    "ExplainError",
    "example_inputs",
    "parse_vector",
    "load_weights",
    "check_shapes",
    "run_steps",
    "finite_difference_gradients",
]

#: The keys of a ``--weights`` file: the seed network's parameters.
WEIGHT_KEYS = ("w", "b1", "u", "b2")

#: Step of the central differences: the truncation error ~eps^2 |L'''| and the float64
#: rounding error ~1e-17 / eps are both near 1e-12 for the seed's numbers.
FD_EPS = 1e-5


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


def _as_vector(value: Any, name: str) -> list[float]:
    if not isinstance(value, list) or not all(_is_number(v) for v in value):
        raise ExplainError(f"{name} must be a list of numbers; got {value!r}")
    return [float(v) for v in value]


def _as_matrix(value: Any, name: str) -> list[list[float]]:
    if not isinstance(value, list) or not value:
        raise ExplainError(f"{name} must be a nested list of numbers; got {value!r}")
    rows = [_as_vector(r, f"{name}[{i}]") for i, r in enumerate(value)]
    if len({len(r) for r in rows}) != 1 or not rows[0]:
        raise ExplainError(
            f"{name} must be a rectangular nested list; got row lengths {[len(r) for r in rows]}"
        )
    return rows


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def load_weights(path: str | Path) -> dict[str, Any]:
    """Read ``w``, ``b1``, ``u``, ``b2`` from JSON (nested lists; ``w[i][j]`` joins input i
    to hidden unit j, as in the seed)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExplainError(f"weights file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExplainError(f"weights file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ExplainError(
            f"weights file {path} must hold a JSON object with keys {', '.join(WEIGHT_KEYS)}"
        )
    missing = [k for k in WEIGHT_KEYS if k not in data]
    unknown = sorted(set(data) - set(WEIGHT_KEYS))
    if missing or unknown:
        raise ExplainError(
            f"weights file {path} must have exactly the keys {', '.join(WEIGHT_KEYS)}; "
            f"missing {missing}, unknown {unknown}"
        )
    return {
        "w": _as_matrix(data["w"], "w"),
        "b1": _as_vector(data["b1"], "b1"),
        "u": _as_matrix(data["u"], "u"),
        "b2": _as_vector(data["b2"], "b2"),
    }


def check_shapes(x: Sequence[float], t: Sequence[float], w: Any, b1: Any, u: Any, b2: Any) -> None:
    """Raise :class:`ExplainError` unless the numbers make one 1-hidden-layer network."""
    n_in, n_hidden, n_out = len(w), len(w[0]), len(u[0])
    problems = []
    if len(x) != n_in:
        problems.append(f"x has {len(x)} values but w has {n_in} rows (one per input)")
    if len(b1) != n_hidden:
        problems.append(f"b1 has {len(b1)} values but w has {n_hidden} columns (hidden units)")
    if len(u) != n_hidden:
        problems.append(f"u has {len(u)} rows but there are {n_hidden} hidden units")
    if len(b2) != n_out:
        problems.append(f"b2 has {len(b2)} values but u has {n_out} columns (outputs)")
    if len(t) != n_out:
        problems.append(f"t has {len(t)} values but the network has {n_out} outputs")
    if problems:
        raise ExplainError("; ".join(problems))


# ------------------------------------------------------------------------ numbers
def run_steps(
    x: list[float], t: list[float], w: Any, b1: Any, u: Any, b2: Any, eta: float, steps: int = 1
) -> list[SeedStep]:
    """``steps`` successive gradient-descent steps on one sample, each from the last one's
    updated weights."""
    check_shapes(x, t, w, b1, u, b2)
    out = []
    for _ in range(steps):
        step = seed_step(x, t, w, b1, u, b2, eta)
        out.append(step)
        w, b1, u, b2 = step.w_new, step.b1_new, step.u_new, step.b2_new
    return out


def finite_difference_gradients(step: SeedStep, eps: float = FD_EPS) -> dict[str, Any]:
    """Central-difference estimates of ``grad_w, grad_b1, grad_u, grad_b2`` for ``step``.

    Each parameter is perturbed by ``+-eps`` in a copy of the step's weights and the
    reference network's loss is evaluated; nothing from the step's backward pass is used.
    Returns nested lists shaped like the gradients.
    """
    params = {k: json.loads(json.dumps(getattr(step, k))) for k in WEIGHT_KEYS}

    def loss() -> float:
        return seed_step(
            step.x, step.t, params["w"], params["b1"], params["u"], params["b2"], 0.0
        ).loss

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
