"""Loss functions: each gives its value and its gradient with respect to the network output.

Every loss is a per-sample loss ``l_i`` averaged over the batch::

    L = (1/n) sum_i s_i l_i          (s_i = sample weight, 1 by default)
    dL/dy_i = (s_i / n) dl_i/dy_i

so sample weights scale each row's gradient exactly, and a class weight is a sample
weight looked up from the row's class.

=======================  =========================================  ==========================
name                     per-sample loss l_i                        takes
=======================  =========================================  ==========================
l2                       1/2 sum_j (y_j - t_j)^2   (the seed's L)   outputs
mse                      (1/m) sum_j (y_j - t_j)^2                  outputs
mae                      (1/m) sum_j |y_j - t_j|                    outputs
huber                    (1/m) sum_j huber_1(y_j - t_j)             outputs
binary_cross_entropy     sum_j -[t log s(z) + (1-t) log(1-s(z))]    logits z (sigmoid inside)
cross_entropy            -sum_j t_j log softmax(z)_j                logits z (softmax inside)
=======================  =========================================  ==========================

``l2`` per sample is the seed's ``L = 1/2 sum_i (y_i - t_i)^2``; averaged over a batch it is
the quadratic cost of Nielsen's book. ``binary_cross_entropy`` sums over outputs like
Nielsen's ``CrossEntropyCost``. The two cross-entropies take logits, so the network's output
activation must be ``identity``; the fused softmax + cross-entropy has gradient
``softmax(z) - t`` and never forms ``log(0)``.

Each loss is one small object, as Nielsen's cost classes are: its per-sample value
(:meth:`Loss.per_sample`) and gradient (:meth:`Loss.per_sample_grad`) side by side, and,
where the two share their intermediates, the fused :meth:`Loss.value_and_grad` that the
training step uses. The base class turns per-sample values into the batch's, with sample
weights. A new loss is a subclass and an entry in :data:`LOSSES`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from ._registry import lookup
from .activations import log_softmax, sigmoid, softmax

if TYPE_CHECKING:
    from .backend import Backend

__all__ = [
    "Loss",
    "L2Loss",
    "MSELoss",
    "MAELoss",
    "HuberLoss",
    "BinaryCrossEntropyLoss",
    "CrossEntropyLoss",
    "LOSSES",
    "get_loss",
]

HUBER_DELTA = 1.0


class Loss(ABC):
    """A loss: per-sample value and gradient, and how outputs become predictions.

    Subclasses write :meth:`per_sample` and :meth:`per_sample_grad`; this class averages
    them over the batch with sample weights. :meth:`value_and_grad` is what the training
    step calls; a loss whose value and gradient share their intermediates overrides it.

    Attributes
    ----------
    name : str
    from_logits : bool
        True when the loss applies its own sigmoid/softmax (the output activation
        must then be ``identity``).
    link : str
        The activation that turns the network output into a prediction
        (``"softmax"``, ``"sigmoid"`` or ``"identity"``).
    kink_at_zero : bool
        Whether the gradient jumps where a residual ``y - t`` crosses 0 (MAE), which
        :mod:`backprop.gradcheck` must know about.
    """

    name = ""
    from_logits = False
    link = "identity"
    kink_at_zero = False

    @abstractmethod
    def per_sample(self, xp: Any, y: Any, t: Any) -> Any:
        """``l_i`` for each row: shape ``(n,)``."""

    @abstractmethod
    def per_sample_grad(self, xp: Any, y: Any, t: Any) -> Any:
        """``dl_i/dy_i`` for each row: shape ``(n, m)``."""

    def value(self, xp: Any, y: Any, t: Any, weights: Any = None) -> Any:
        """``L = (1/n) sum_i s_i l_i`` as a 0-d backend array (a NumPy scalar on NumPy)."""
        per = self.per_sample(xp, y, t)
        if weights is not None:
            per = per * weights
        return xp.mean(per)

    def gradient(self, xp: Any, y: Any, t: Any, weights: Any = None) -> Any:
        """``dL/dy``, shape ``(n, m)``: the per-sample gradient times ``s_i / n``."""
        n = y.shape[0]
        g = self.per_sample_grad(xp, y, t)
        if weights is None:
            return g * (1.0 / n)
        return g * (weights[:, None] * (1.0 / n))

    def value_and_grad(
        self, be: Backend, y: Any, t: Any, weights: Any = None, out: Any = None, scale: float = 1.0
    ) -> tuple[Any, Any]:
        """``(L, scale * dL/dy)``: the training step's call.

        Here :meth:`value` and :meth:`gradient`; the losses with a fused pass override it
        and write the gradient into ``out`` (a buffer of ``y``'s shape, or None) where the
        backend can. ``scale`` rides on the ``1/n`` the gradient is multiplied by anyway.
        The fused passes are speed machinery: with the layers' reused buffers and in-place
        activations they took a 1-thread batch-128 step from 0.64 to 0.75 of the GEMM-only
        epoch (benchmarks/NOTES.md, 'Engine choices'; bench.py config mlp-b128).
        """
        g = self.gradient(be.xp, y, t, weights)
        return self.value(be.xp, y, t, weights), g if scale == 1.0 else g * scale

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class L2Loss(Loss):
    """``l = 1/2 sum_j (y_j - t_j)^2``: the seed's L (Nielsen's quadratic cost, averaged)."""

    name = "l2"

    def per_sample(self, xp: Any, y: Any, t: Any) -> Any:
        r = y - t
        return 0.5 * xp.sum(r * r, axis=1)

    def per_sample_grad(self, xp: Any, y: Any, t: Any) -> Any:
        # dL/dy_j = (y_j - t_j)   (the seed's output-layer derivative)
        return y - t

    def value_and_grad(
        self, be: Backend, y: Any, t: Any, weights: Any = None, out: Any = None, scale: float = 1.0
    ) -> tuple[Any, Any]:
        """One pass: the residual ``r = y - t`` gives both ``L`` and ``dL/dy = r / n``."""
        if weights is not None:
            return super().value_and_grad(be, y, t, weights, out, scale)
        n = y.shape[0]
        r = be.subtract(y, t, out=out)  # r = y - t
        value = be.vdot(r, r) * (0.5 / n)  # L = (1/n) sum_i 1/2 sum_j r_ij^2
        r *= be.scalar(scale / n, r.dtype)  # dL/dy = (y - t) / n, times scale
        return value, r


class MSELoss(Loss):
    """``l = (1/m) sum_j (y_j - t_j)^2``, the mean over the ``m`` outputs."""

    name = "mse"

    def per_sample(self, xp: Any, y: Any, t: Any) -> Any:
        r = y - t
        return xp.mean(r * r, axis=1)

    def per_sample_grad(self, xp: Any, y: Any, t: Any) -> Any:
        # dl/dy_j = (2/m) (y_j - t_j)
        return (2.0 / y.shape[1]) * (y - t)


class MAELoss(Loss):
    """``l = (1/m) sum_j |y_j - t_j|``."""

    name = "mae"
    kink_at_zero = True

    def per_sample(self, xp: Any, y: Any, t: Any) -> Any:
        return xp.mean(xp.abs(y - t), axis=1)

    def per_sample_grad(self, xp: Any, y: Any, t: Any) -> Any:
        # dl/dy_j = sign(y_j - t_j) / m   (0 at the kink, as torch's L1Loss)
        return xp.sign(y - t) * (1.0 / y.shape[1])


class HuberLoss(Loss):
    """``l = (1/m) sum_j huber(y_j - t_j)``: quadratic inside ``|r| <= 1``, linear outside."""

    name = "huber"

    def per_sample(self, xp: Any, y: Any, t: Any) -> Any:
        r = xp.abs(y - t)
        q = xp.minimum(r, HUBER_DELTA)
        # 1/2 r^2 inside |r| <= delta, delta (|r| - delta/2) outside: q (r - q/2) covers both
        return xp.mean(q * (r - 0.5 * q), axis=1)

    def per_sample_grad(self, xp: Any, y: Any, t: Any) -> Any:
        # dl/dy_j = clip(y_j - t_j, -delta, delta) / m   (r inside, delta sign(r) outside)
        return xp.clip(y - t, -HUBER_DELTA, HUBER_DELTA) * (1.0 / y.shape[1])


class BinaryCrossEntropyLoss(Loss):
    """``l = sum_j -[t_j log s(z_j) + (1 - t_j) log(1 - s(z_j))]`` from logits ``z``
    (Nielsen's ``CrossEntropyCost``, with the sigmoid inside)."""

    name = "binary_cross_entropy"
    from_logits = True
    link = "sigmoid"

    def per_sample(self, xp: Any, z: Any, t: Any) -> Any:
        # -[t log s(z) + (1 - t) log(1 - s(z))] = max(z, 0) - z t + log(1 + e^-|z|)
        per = xp.maximum(z, 0.0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
        return xp.sum(per, axis=1)

    def per_sample_grad(self, xp: Any, z: Any, t: Any) -> Any:
        # dl/dz = s(z) - t
        return sigmoid(xp, z) - t


class CrossEntropyLoss(Loss):
    """``l = -sum_j t_j log softmax(z)_j`` from logits ``z``: the fused softmax + cross-entropy."""

    name = "cross_entropy"
    from_logits = True
    link = "softmax"

    def per_sample(self, xp: Any, z: Any, t: Any) -> Any:
        # -sum_j t_j log softmax(z)_j, with log softmax = z - max - log sum e^(z - max)
        return -xp.sum(t * log_softmax(xp, z), axis=1)

    def per_sample_grad(self, xp: Any, z: Any, t: Any) -> Any:
        # dl/dz = softmax(z) sum_j t_j - t  (= softmax(z) - t for one-hot or probability targets)
        return softmax(xp, z) * xp.sum(t, axis=1, keepdims=True) - t

    def value_and_grad(
        self, be: Backend, z: Any, t: Any, weights: Any = None, out: Any = None, scale: float = 1.0
    ) -> tuple[Any, Any]:
        """One pass: ``e = exp(z - max)`` gives both the log-sum-exp of the value and the
        softmax of the gradient."""
        if weights is not None:
            return super().value_and_grad(be, z, t, weights, out, scale)
        if be.softmax_cross_entropy is not None:  # the backend's fused twin of these lines
            return be.softmax_cross_entropy(z, t, out, scale)
        xp = be.xp
        n = z.shape[0]
        s = be.subtract(z, xp.max(z, axis=1, keepdims=True), out=out)  # s = z - max_j z
        t_dot_s = be.vdot(t, s)
        t_sum = xp.sum(t, axis=1, keepdims=True)
        e = be.exp_(s)  # e = exp(s), every exponent <= 0
        e_sum = xp.sum(e, axis=1, keepdims=True)
        # l_i = -sum_j t_ij log softmax(z)_ij = (sum_j t_ij) log sum_j e_ij - sum_j t_ij s_ij
        value = (be.vdot(t_sum, xp.log(e_sum)) - t_dot_s) * (1.0 / n)
        e /= e_sum  # softmax(z)
        e *= t_sum
        e -= t  # dl_i/dz = softmax(z) sum_j t_ij - t_i
        e *= be.scalar(scale / n, e.dtype)  # times scale
        return value, e


#: Every loss by name.
LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        L2Loss(),
        MSELoss(),
        MAELoss(),
        HuberLoss(),
        BinaryCrossEntropyLoss(),
        CrossEntropyLoss(),
    )
}


def get_loss(name: str) -> Loss:
    """The loss called ``name``; a clear error for an unknown one."""
    return lookup(LOSSES, name, "loss")
