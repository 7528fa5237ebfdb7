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

__all__ = ["GradCheckResult", "finite_difference", "finite_differences", "gradcheck"]


@dataclass(frozen=True)
class GradCheckResult:
    """Per parameter array: the largest relative error, and the worst absolute one."""

    name: str
    shape: tuple[int, ...]
    max_rel_error: float
    max_abs_error: float


class _Perturber:
    """Evaluates ``model``'s loss on one batch with one parameter entry nudged.

    The dropout generator is restored before every evaluation, so every loss (and the
    analytic gradient of the first) sees the same masks."""

    def __init__(self, model: MLP, X: Any, T: Any, sample_weight: Any, eps: float | None):
        self.model = model
        self.x = model.as_inputs(X)
        n = self.x.shape[0]
        self.t = model.as_targets(T, n)
        self.w = model.as_sample_weight(sample_weight, n)
        if eps is None:
            eps = 1e-6 if model.dtype == "float64" else 1e-2
        self.eps = eps
        self.rng_state = copy.deepcopy(model.dropout_rng.bit_generator.state)
        self.original = model.state_dict()

    def loss(self) -> float:
        self.model.dropout_rng.bit_generator.state = copy.deepcopy(self.rng_state)
        return float(self.model.forward_backward(self.x, self.t, self.w))

    def central(self, name: str, p: np.ndarray, k: tuple[int, ...]) -> float:
        """``(L(p_k + eps) - L(p_k - eps)) / (2 eps)``; ``p`` (a copy of parameter ``name``)
        is left as it was."""
        saved = p[k]
        p[k] = saved + self.eps
        self.model.load_state_dict({**self.original, name: p})
        up = self.loss()
        p[k] = saved - self.eps
        self.model.load_state_dict({**self.original, name: p})
        down = self.loss()
        p[k] = saved
        return (up - down) / (2.0 * self.eps)

    def restore(self) -> None:
        self.model.load_state_dict(self.original)
        self.model.dropout_rng.bit_generator.state = self.rng_state


def finite_differences(
    model: MLP, X: Any, T: Any, sample_weight: Any = None, eps: float | None = None
) -> dict[str, np.ndarray]:
    """Central-difference estimates of ``dL/dp`` for every entry of every parameter.

    Parameters
    ----------
    model : MLP
        Its parameters and dropout generator are restored exactly afterwards.
    X : array (n_samples, n_inputs);  T : array (n_samples, n_outputs) or labels
    sample_weight : array (n_samples,), optional
    eps : float, optional
        Step; default ``1e-6`` for float64 and ``1e-2`` for float32.

    Returns
    -------
    dict name -> float64 array shaped like the parameter (``layers.<i>.W``, ``layers.<i>.b``)
        Two loss evaluations per entry: meant for small networks (a few hundred entries).
    """
    run = _Perturber(model, X, T, sample_weight, eps)
    out = {}
    try:
        for name in model.parameter_names():
            p = run.original[name].copy()
            numeric = np.zeros_like(p, dtype=np.float64)
            for k in np.ndindex(p.shape):
                numeric[k] = run.central(name, p, k)
            out[name] = numeric
    finally:
        run.restore()
    return out


def finite_difference(
    model: MLP,
    X: Any,
    T: Any,
    name: str,
    index: tuple[int, ...],
    sample_weight: Any = None,
    eps: float | None = None,
) -> float:
    """The central-difference estimate of ``dL/dp`` for one entry ``index`` of parameter
    ``name`` (as :func:`finite_differences`, two loss evaluations)."""
    run = _Perturber(model, X, T, sample_weight, eps)
    if name not in run.original:
        raise ValueError(f"no parameter {name!r}; expected one of {model.parameter_names()}")
    p = run.original[name].copy()
    index = tuple(int(i) for i in index)
    if len(index) != p.ndim or not all(0 <= i < d for i, d in zip(index, p.shape, strict=True)):
        raise ValueError(f"index {index} is outside {name}'s shape {p.shape}")
    try:
        return run.central(name, p, index)
    finally:
        run.restore()


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
    run = _Perturber(model, X, T, sample_weight, eps)
    run.loss()
    analytic = {k: be.to_numpy(v).copy() for k, v in model.grads.items()}
    run.restore()  # the finite differences start from the same dropout generator state
    numerics = finite_differences(model, X, T, sample_weight, eps)
    results = []
    for name in model.parameter_names():
        a = analytic[name].astype(np.float64)
        numeric = numerics[name]
        diff = np.abs(a - numeric)
        scale = max(np.abs(a).max(), np.abs(numeric).max())
        rel = float(diff.max() / scale) if scale > 0 else float(diff.max())
        results.append(GradCheckResult(name, tuple(numeric.shape), rel, float(diff.max())))
    return results
