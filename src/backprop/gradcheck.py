"""Compare every analytic gradient with central finite differences.

``dL/dp_k ~ (L(p + eps e_k) - L(p - eps e_k)) / (2 eps)`` for every entry ``p_k`` of every
parameter array. Dropout masks are held fixed by restoring the model's dropout generator
before each evaluation, so the check also covers a network with dropout on.

The error of one array is ``max_k |analytic_k - numeric_k| / max(max_k |analytic_k|,
max_k |numeric_k|)``: the largest deviation relative to the array's largest gradient, which
stays meaningful where single entries are near zero.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from .network import MLP

__all__ = ["GradCheckResult", "gradcheck"]


@dataclass(frozen=True)
class GradCheckResult:
    """Per parameter array: the largest relative error, and the worst absolute one."""

    name: str
    shape: tuple[int, ...]
    max_rel_error: float
    max_abs_error: float


def gradcheck(
    model: MLP,
    X: Any,
    T: Any,
    sample_weight: Any = None,
    eps: float | None = None,
) -> list[GradCheckResult]:
    """Check ``model``'s gradients on ``(X, T)`` against central finite differences.

    Parameters
    ----------
    model : MLP
        Its parameters are restored exactly afterwards.
    X : array (n_samples, n_inputs);  T : array (n_samples, n_outputs) or labels
    eps : float, optional
        Step; default ``1e-6`` for float64 and ``1e-2`` for float32.

    Returns
    -------
    list of GradCheckResult, one per parameter array in layer order.
    """
    be = model.backend
    x = model.as_inputs(X)
    n = x.shape[0]
    t = model.as_targets(T, n)
    w = model.as_sample_weight(sample_weight, n)
    if eps is None:
        eps = 1e-6 if model.dtype == "float64" else 1e-2
    rng_state = copy.deepcopy(model.dropout_rng.bit_generator.state)

    def loss_now() -> float:
        model.dropout_rng.bit_generator.state = copy.deepcopy(rng_state)
        return float(model.forward_backward(x, t, w))

    loss_now()
    analytic = {k: be.to_numpy(v).copy() for k, v in model.grads.items()}
    original = model.state_dict()
    results = []
    try:
        for name in model.parameter_names():
            p = original[name].copy()
            numeric = np.zeros_like(p, dtype=np.float64)
            for k in np.ndindex(p.shape):
                saved = p[k]
                p[k] = saved + eps
                model.load_state_dict({**original, name: p})
                up = loss_now()
                p[k] = saved - eps
                model.load_state_dict({**original, name: p})
                down = loss_now()
                p[k] = saved
                numeric[k] = (up - down) / (2.0 * eps)
            a = analytic[name].astype(np.float64)
            diff = np.abs(a - numeric)
            scale = max(np.abs(a).max(), np.abs(numeric).max())
            rel = float(diff.max() / scale) if scale > 0 else float(diff.max())
            results.append(GradCheckResult(name, tuple(p.shape), rel, float(diff.max())))
    finally:
        model.load_state_dict(original)
        model.dropout_rng.bit_generator.state = rng_state
    return results
