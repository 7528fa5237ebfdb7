"""Compare every analytic gradient with central finite differences.

``dL/dp_k ~ (L(p + eps e_k) - L(p - eps e_k)) / (2 eps)`` for every entry ``p_k`` of every
parameter array, with the loss always evaluated in float64: on the model itself when it is
float64, on a float64 copy of it otherwise (its parameters cast up exactly, its dropout
masks replayed). A float32 model's own gradient is then checked against an estimate whose
error is about ``eps^2`` and ``1e-16 / eps``, not float32 rounding divided by the step.

Kinks. Where the step makes a pre-activation of a ReLU or leaky ReLU unit (or a residual of
the MAE loss) cross 0, the difference quotient mixes two slopes and estimates neither. Every
evaluation therefore also records which side of 0 each such value is on; when the three
points ``p - eps``, ``p``, ``p + eps`` disagree, the step is divided by 10, up to three
times. An entry still straddling a kink at ``eps / 1000`` sits on it (within 1e-9 by
default): its estimate is reported as a kink and left out of the errors, never as a failure.

Dropout masks are held fixed by restoring the model's dropout generator before each
evaluation, so the check also covers a network with dropout on.

The error of one array is ``max_k |analytic_k - numeric_k| / max(max_k |analytic_k|,
max_k |numeric_k|)`` over its entries away from kinks: the largest deviation relative to the
array's largest gradient, which stays meaningful where single entries are near zero.

Rounding. An estimate cannot be trusted closer than the float64 rounding of the two losses
it subtracts, about ``u |L| / eps`` (``u`` = 2.2e-16): 1e-10 for a loss of 0.25 at the
default step. An array whose gradients are all small (a bias whose rows cancel, as the
tutorial's 2-3-2 network has over 150 rows of ``toy``: 2.6e-5) can then exceed a relative
tolerance with every deviation at that floor. Each result therefore also says whether every
deviation is within :data:`ROUNDING` ``u |L| / eps_k`` (``eps_k`` the entry's step), and
:meth:`GradCheckResult.passed` accepts such an array: finite differences can say no more.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import is_count, is_finite_number, short_repr
from .layers import Dense, Dropout
from .network import MLP, parameter_name

__all__ = [
    "GradCheckResult",
    "finite_difference",
    "finite_differences",
    "gradcheck",
    "kinked_finite_differences",
]

#: The default step. The loss is evaluated in float64 whatever the model's dtype.
DEFAULT_EPS = 1e-6
#: How many times a step that straddles a kink is divided by 10 before the entry is
#: reported as sitting on the kink.
KINK_RETRIES = 3
#: The rounding floor of an estimate, in units of ``u |L| / eps``. Measured by
#: scripts/gradcheck_rounding.py on 603 arrays of 120 random correct networks (every
#: activation and loss, 1 to 1000 rows): the largest deviation was 7.4 units, 99% were below
#: 1.8; 16 leaves a margin of 2 (tests/test_numerics.py holds it).
ROUNDING = 16.0


@dataclass(frozen=True)
class GradCheckResult:
    """Per parameter array: the largest relative error, the worst absolute one, the number
    of entries left out because they sit on a kink (ReLU, leaky ReLU, MAE), the largest
    rounding floor of its estimates, whether every deviation is within its floor (see
    the module docstring), and how many entries were estimated when not all of them
    (``max_entries``; None: every entry)."""

    name: str
    shape: tuple[int, ...]
    max_rel_error: float
    max_abs_error: float
    kinks: int = 0
    rounding: float = 0.0
    within_rounding: bool = False
    estimated: int | None = None  # entries estimated, when not all (``max_entries``)

    def passed(self, tolerance: float) -> bool:
        """``max_rel_error <= tolerance``, or every deviation within the rounding floor."""
        return self.max_rel_error <= tolerance or self.within_rounding

    @property
    def checked(self) -> bool:
        """Whether any entry was compared: an array whose every entry sits on a kink was
        not (its errors read 0, and a wrong gradient there would pass unseen)."""
        size = int(np.prod(self.shape)) if self.estimated is None else self.estimated
        return self.kinks < size


class _Perturber:
    """Evaluates the loss on one batch, in float64, with one parameter entry nudged.

    ``model`` runs once (its dropout generator restored afterwards) to give the analytic
    gradient and the dropout masks. The evaluations run on ``model`` when it is float64 (the
    generator restored before each, so every loss sees the same masks), else on a float64
    copy that replays the model's masks."""

    def __init__(self, model: MLP, X: Any, T: Any, sample_weight: Any, eps: float | None):
        self.model = model
        if eps is not None and not (is_finite_number(eps) and eps > 0):  # inf: NaN errors
            raise ValueError(f"eps must be a finite number > 0; got {short_repr(eps)}")
        self.eps = DEFAULT_EPS if eps is None else float(eps)
        self.rng_state = copy.deepcopy(model.dropout_rng.bit_generator.state)
        self.original = model.state_dict()
        # the model's own pass: its analytic gradient and its dropout masks
        x = model.as_inputs(X)
        n = x.shape[0]
        model.forward_backward(x, model.as_targets(T, n), model.as_sample_weight(sample_weight, n))
        be = model.backend
        self.analytic = {k: be.to_numpy(v).astype(np.float64) for k, v in model.grads.items()}
        self.masks = [
            None if layer.mask is None else be.to_numpy(layer.mask).astype(np.float64)
            for layer in model.layers
            if isinstance(layer, Dropout)
        ]
        model.dropout_rng.bit_generator.state = copy.deepcopy(self.rng_state)
        if model.dtype == "float64":
            self.evaluator = model
        else:
            twin = MLP.from_config(dataclasses.replace(model.config, dtype="float64"), seed=0)
            twin.load_state_dict({k: v.astype(np.float64) for k, v in self.original.items()})
            dropouts = [layer for layer in twin.layers if isinstance(layer, Dropout)]
            for layer, mask in zip(dropouts, self.masks, strict=True):
                layer.fixed_mask = mask
            self.evaluator = twin
        self.params = {k: v.astype(np.float64) for k, v in self.original.items()}
        ev = self.evaluator
        self.x = ev.as_inputs(X)
        self.t = ev.as_targets(T, n)
        self.w = ev.as_sample_weight(sample_weight, n)
        self.x_host = np.asarray(ev.backend.to_numpy(self.x), dtype=np.float64)
        self.t_host = np.asarray(ev.backend.to_numpy(self.t), dtype=np.float64)
        self.has_kinks = ev.loss_fn.kink_at_zero or any(
            layer.activation.kink_at_zero for layer in ev.dense
        )
        self.base_sides = self.sides(self.params) if self.has_kinks else None

    def loss(self) -> float:
        ev = self.evaluator
        ev.dropout_rng.bit_generator.state = copy.deepcopy(self.rng_state)
        return float(ev.forward_backward(self.x, self.t, self.w))

    def sides(self, params: dict[str, np.ndarray]) -> bytes:
        """Which side of 0 every pre-activation of a kinked unit (and every residual of a
        kinked loss) is on, for ``params``: the forward pass again, in NumPy float64."""
        h, masks, k, out = self.x_host, iter(self.masks), 0, []
        for layer in self.evaluator.layers:
            if isinstance(layer, Dense):
                a = h @ params[parameter_name(k, "W")]
                if layer.b is not None:
                    a = a + params[parameter_name(k, "b")]
                if layer.activation.kink_at_zero:
                    out.append(a > 0)
                h = layer.activation.forward(np, a)
                k += 1
            else:
                mask = next(masks)
                h = h if mask is None else h * mask
        if self.evaluator.loss_fn.kink_at_zero:
            out.append(h > self.t_host)
        return b"".join(np.packbits(s).tobytes() for s in out)

    def _at(self, name: str, p: np.ndarray, k: tuple[int, ...], value: float) -> tuple[float, Any]:
        """The loss with ``p[k] = value`` (``p``: parameter ``name``, float64), and the sides
        of the kinks there (None without kinks)."""
        p[k] = value
        # one entry of the live parameter (the others hold self.params' values already): a
        # whole load_state_dict per evaluation copied, and checked, every parameter
        self.evaluator.params[name][k] = value
        trial = {**self.params, name: p}
        return self.loss(), self.sides(trial) if self.has_kinks else None

    def central(self, name: str, p: np.ndarray, k: tuple[int, ...]) -> tuple[float, bool, float]:
        """``((L(p_k + eps) - L(p_k - eps)) / (2 eps), on a kink, eps)``, with the step
        divided by 10 while it straddles a kink; ``p`` (a float64 copy of parameter
        ``name``) is left as it was."""
        saved = float(p[k])
        eps = self.eps
        try:
            for attempt in range(KINK_RETRIES + 1):
                up, side_up = self._at(name, p, k, saved + eps)
                down, side_down = self._at(name, p, k, saved - eps)
                estimate = (up - down) / (2.0 * eps)
                if side_up == side_down == self.base_sides:  # all None without kinks
                    return estimate, False, eps
                if attempt < KINK_RETRIES:
                    eps /= 10.0
            return estimate, True, eps
        finally:
            p[k] = saved
            self.evaluator.params[name][k] = saved

    def restore(self) -> None:
        self.evaluator.load_state_dict(
            {k: v.astype(self.evaluator.dtype) for k, v in self.params.items()}
        )
        self.model.load_state_dict(self.original)
        self.model.dropout_rng.bit_generator.state = self.rng_state


def _estimates(
    run: _Perturber, max_entries: int | None = None, seed: int = 0
) -> tuple[dict[str, np.ndarray], ...]:
    """Per parameter: each entry's estimate, a boolean array marking the kinks, the step
    each estimate took and a boolean array marking the entries estimated: every one, or
    ``max_entries`` of a larger array, drawn at random (``seed``) without repeats."""
    numeric, kinks, steps, chosen = {}, {}, {}, {}
    rng = np.random.default_rng(seed)
    try:
        for name in run.model.parameter_names():
            p = run.params[name].copy()
            numeric[name] = np.zeros_like(p)
            kinks[name] = np.zeros(p.shape, dtype=bool)
            steps[name] = np.ones_like(p)
            chosen[name] = np.ones(p.shape, dtype=bool)
            if max_entries is not None and p.size > max_entries:
                chosen[name][...] = False
                picked = np.sort(rng.choice(p.size, size=max_entries, replace=False))
                chosen[name].flat[picked] = True
            for flat in np.flatnonzero(chosen[name]):
                k = np.unravel_index(flat, p.shape)
                numeric[name][k], kinks[name][k], steps[name][k] = run.central(name, p, k)
    finally:
        run.restore()
    return numeric, kinks, steps, chosen


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
        Step, default ``1e-6``; the loss is evaluated in float64 whatever the model's
        dtype. A step straddling a kink is made smaller (see the module docstring); an
        entry on a kink gets the estimate of the smallest step.

    Returns
    -------
    dict name -> float64 array shaped like the parameter (``layers.<i>.W``, ``layers.<i>.b``)
        Two loss evaluations per entry: meant for small networks (a few hundred entries).
    """
    return kinked_finite_differences(model, X, T, sample_weight, eps)[0]


def kinked_finite_differences(
    model: MLP, X: Any, T: Any, sample_weight: Any = None, eps: float | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`finite_differences`, and per parameter a boolean array marking the entries
    that sit on a kink (their estimate is the smallest step's, and need not equal the
    gradient there: shown beside it unmarked, the two read as a disagreement)."""
    numeric, kinks, _, _ = _estimates(_Perturber(model, X, T, sample_weight, eps))
    return numeric, kinks


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
    if name not in model.parameter_names():
        raise ValueError(f"no parameter {name!r}; expected one of {model.parameter_names()}")
    shape = model.state_dict()[name].shape
    index = tuple(int(i) for i in index)
    if len(index) != len(shape) or not all(0 <= i < d for i, d in zip(index, shape, strict=True)):
        raise ValueError(f"index {index} is outside {name}'s shape {shape}")
    run = _Perturber(model, X, T, sample_weight, eps)
    try:
        return run.central(name, run.params[name].copy(), index)[0]
    finally:
        run.restore()


def gradcheck(
    model: MLP,
    X: Any,
    T: Any,
    sample_weight: Any = None,
    eps: float | None = None,
    max_entries: int | None = None,
    seed: int = 0,
) -> list[GradCheckResult]:
    """Check ``model``'s gradients on ``(X, T)`` against central finite differences.

    Parameters
    ----------
    model : MLP
        Its parameters and dropout generator are restored exactly afterwards.
    X : array (n_samples, n_inputs);  T : array (n_samples, n_outputs) or labels
    sample_weight : array (n_samples,), optional
    eps : float, optional
        Step, default ``1e-6``; the loss is evaluated in float64 whatever the model's
        dtype (see the module docstring).
    max_entries : int, optional
        Estimate at most this many entries of each parameter array, drawn at random with
        ``seed`` (two loss evaluations an entry: MNIST's 784-256-10 network has 203,530,
        minutes of them). Default: every entry.
    seed : int
        The draw of the entries, with ``max_entries``.

    Returns
    -------
    list of GradCheckResult, one per parameter array in layer order. Entries on a kink are
    counted in ``kinks`` and left out of the errors; ``passed(tolerance)`` judges one.
    """
    if max_entries is not None and not is_count(max_entries, 1):
        raise ValueError(f"max_entries must be a positive integer; got {short_repr(max_entries)}")
    run = _Perturber(model, X, T, sample_weight, eps)
    analytic = run.analytic
    unit = float(np.finfo(np.float64).eps) * abs(run.loss())  # the rounding floor's scale
    numerics, kinks, steps, chosen = _estimates(run, max_entries, seed)
    results = []
    for name in model.parameter_names():
        smooth = chosen[name] & ~kinks[name]
        a, numeric = analytic[name][smooth], numerics[name][smooth]
        rel = err = floor_max = 0.0
        within = True
        if a.size:
            diff = np.abs(a - numeric)
            scale = max(np.abs(a).max(), np.abs(numeric).max())
            err = float(diff.max())
            rel = err / scale if scale > 0 else err
            floor = ROUNDING * unit / steps[name][smooth]
            floor_max = float(floor.max())
            within = bool(np.all(diff <= floor))
        shape = tuple(numerics[name].shape)
        n_kinks = int(kinks[name].sum())
        n = int(chosen[name].sum())
        estimated = None if n == numerics[name].size else n
        results.append(
            GradCheckResult(name, shape, float(rel), err, n_kinks, floor_max, within, estimated)
        )
    return results
