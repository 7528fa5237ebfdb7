"""Activation functions and their derivatives, as small pure functions in one table.

Each activation maps the pre-activation ``a`` (shape ``(n_samples, n_units)``) to the
unit outputs ``y = f(a)``; its backward turns ``g = dL/dy`` into ``delta = dL/da``.
``keeps`` says which of ``a`` or ``y`` the backward needs, so a layer caches exactly that
(the sigmoid keeps its output, because ``sigma'(a) = y (1 - y)``, as in the seed).

Every function works on any array API namespace ``xp``, keeps the input dtype, and is
stable for pre-activations of +-1000: no overflow, no NaN, no warning.

The file reads in three parts: the formulas (forward and backward side by side); their
in-place twins, which the training step uses where they exist and which
``tests/test_activations_losses.py`` checks against the formulas; and the table
:data:`ACTIVATIONS`, one :class:`Activation` per name, built with keyword arguments. A new
activation is a forward, a backward and an entry in the table (and, to be exportable, its
ONNX operator in :mod:`backprop.io.onnx_export`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._registry import lookup

__all__ = [
    "Activation",
    "ACTIVATIONS",
    "get_activation",
    "log_sigmoid",
    "log_softmax",
    "sigmoid",
    "softmax",
]

LEAKY_SLOPE = 0.01
ELU_ALPHA = 1.0
_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_SATURATED = 20.0


@dataclass(frozen=True)
class Activation:
    """One activation function.

    Attributes
    ----------
    name : str
    forward : callable ``(xp, a) -> y``
    backward : callable ``(xp, g, a, y) -> delta``
        ``delta = g * f'(a)`` (a Jacobian-vector product for softmax). Only the
        argument named by ``keeps`` is guaranteed to be an array; the other may be None.
    keeps : {"y", "a", "none"}
    forward_inplace : callable ``(backend, a, tmp) -> y`` or None
        The same as ``forward`` but free to overwrite ``a`` (the training step's buffer)
        and to use ``tmp``, the layer's scratch buffer of the kind ``scratch`` names (free
        until the backward), or None; only for activations whose backward does not need
        ``a``.
    backward_inplace : callable ``(backend, g, y, tmp) -> delta`` or None
        The same as ``backward`` but free to overwrite ``g``; ``tmp`` is a scratch buffer
        of ``g``'s shape (or None), of the kind ``scratch`` names.
    scratch : {"none", "values", "mask"}
        What ``backward_inplace`` needs in ``tmp``: nothing, values in the layer's dtype,
        or a boolean mask (a quarter of the float32 buffer's memory).
    kink_at_zero : bool
        Whether the derivative jumps where ``a`` crosses 0 (ReLU, leaky ReLU): a finite
        difference whose step makes some ``a`` cross 0 does not estimate the derivative,
        which :mod:`backprop.gradcheck` detects and reports.
    """

    name: str
    forward: Callable[[Any, Any], Any]
    backward: Callable[[Any, Any, Any, Any], Any]
    keeps: str
    forward_inplace: Callable[[Any, Any, Any], Any] | None = None
    backward_inplace: Callable[[Any, Any, Any, Any], Any] | None = None
    scratch: str = "none"
    kink_at_zero: bool = False


# ---------------------------------------------------------------------- the formulas
def sigmoid(xp: Any, a: Any) -> Any:
    """``sigma(a) = 1 / (1 + e^-a)`` elementwise, in ``a``'s shape and dtype (``xp`` is the
    array namespace: NumPy, torch, ...), to a few units in the last place wherever
    ``sigma(a)`` is a normal number (``a > -708`` in float64, ``a > -87`` in float32)."""
    # sigma(a) = 1 / (1 + e^-a) for a >= 0 and e^a / (1 + e^a) for a < 0; with e = e^-|a| <= 1
    # both are (1 if a >= 0 else e) / (1 + e): no exponent is positive, so nothing overflows,
    # and nothing cancels, so every value is exact to a few units in the last place down to
    # the subnormals (the form 1/2 + 1/2 tanh(a/2) cancels for a < 0: 1.7e-4 off at a = -30).
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1.0, e) / (1.0 + e)


def log_sigmoid(xp: Any, a: Any) -> Any:
    """``log sigma(a) = -log(1 + e^-a) = min(a, 0) - log(1 + e^-|a|)`` elementwise, in
    ``a``'s shape and dtype, finite wherever the true value is (``log(1 - sigma(a))`` is
    ``log_sigmoid(xp, -a)``)."""
    return xp.minimum(a, 0.0) - xp.log1p(xp.exp(-xp.abs(a)))


def log_softmax(xp: Any, a: Any) -> Any:
    """``log softmax(a)`` per row of ``a`` (shape ``(n, k)``, kept, as is the dtype):
    ``a - max - log sum e^(a - max)``, finite where each row's spread ``max(a) - a`` fits
    in the dtype."""
    shifted = a - xp.max(a, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def _sigmoid_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # dy/da = y (1 - y)   (the seed's sigma'(a) = sigma(a)(1 - sigma(a)))
    return g * y * (1.0 - y)


def _tanh(xp: Any, a: Any) -> Any:
    return xp.tanh(a)


def _tanh_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d tanh(a)/da = 1 - y^2
    return g * (1.0 - y * y)


def _relu(xp: Any, a: Any) -> Any:
    return xp.maximum(a, 0.0)


def _relu_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d relu(a)/da = 1 if a > 0 else 0, and a > 0 exactly when y > 0
    return xp.where(y > 0, g, 0.0)


def _leaky_relu(xp: Any, a: Any) -> Any:
    return xp.where(a > 0, a, LEAKY_SLOPE * a)


def _leaky_relu_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d/da = 1 if a > 0 else slope; y > 0 exactly when a > 0
    return xp.where(y > 0, g, LEAKY_SLOPE * g)


def _elu(xp: Any, a: Any) -> Any:
    # alpha (e^a - 1) for a <= 0; expm1 of min(a, 0) so the unused branch cannot overflow
    return xp.where(a > 0, a, ELU_ALPHA * xp.expm1(xp.minimum(a, 0.0)))


def _elu_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d/da = 1 if a > 0 else alpha e^a, from a: as y + alpha it cancelled for a << 0
    # (44% high at a = -17 in float32, 0 from -20 on where e^a is 2e-9)
    return xp.where(a > 0, g, g * (ELU_ALPHA * xp.exp(xp.minimum(a, 0.0))))


def _gelu_clipped(xp: Any, a: Any) -> Any:
    # a clipped to [-20, 20], where th = tanh(sqrt(2/pi) (a + 0.044715 a^3)) is already +-1
    # in both dtypes: the same values, without a^3 overflowing beyond |a| ~ 1e102 (a
    # warning, and a NaN derivative). Its cost, ~1.5 us a step a GELU layer on a 3-unit
    # layer, is the price of that (tests/test_activations_losses.py, the largest numbers)
    return xp.minimum(xp.maximum(a, -_GELU_SATURATED), _GELU_SATURATED)


def _gelu(xp: Any, a: Any) -> Any:
    # GELU, tanh form (Hendrycks & Gimpel 2016; torch's approximate="tanh"):
    # 0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3)))
    u = _gelu_clipped(xp, a)
    return 0.5 * a * (1.0 + xp.tanh(_GELU_C * (u + 0.044715 * u * u * u)))


def _gelu_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d/da = 0.5 (1 + th) + 0.5 a (1 - th^2) sqrt(2/pi) (1 + 3 * 0.044715 a^2)
    # (the second term is 0 where th = +-1, so it is computed with the clipped a)
    u = _gelu_clipped(xp, a)
    th = xp.tanh(_GELU_C * (u + 0.044715 * u * u * u))
    d = 0.5 * (1.0 + th) + 0.5 * u * (1.0 - th * th) * _GELU_C * (1.0 + 0.134145 * u * u)
    return g * d


def _softplus(xp: Any, a: Any) -> Any:
    # log(1 + e^a) = logaddexp(0, a), stable for any a
    return xp.logaddexp(xp.zeros_like(a), a)


def _softplus_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d softplus(a)/da = sigma(a)
    return g * sigmoid(xp, a)


def _identity(xp: Any, a: Any) -> Any:
    return a


def _identity_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    return g


def softmax(xp: Any, a: Any) -> Any:
    """``softmax(a)`` per row of ``a`` (shape ``(n, k)``, kept, as is the dtype): each row's
    ``e^a_j / sum_k e^a_k``, non-negative and summing to 1, without overflow."""
    # e^(a - max) / sum e^(a - max): shifting by the row maximum keeps every exponent <= 0
    e = xp.exp(a - xp.max(a, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def _softmax_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # dL/da_j = y_j (g_j - sum_k g_k y_k)   (the softmax Jacobian times g)
    return y * (g - xp.sum(g * y, axis=1, keepdims=True))


# ------------------------------------------------------------------ the in-place twins
# The training step's fast path (Dense.forward / Dense.backward in training mode): the same
# values as the formulas above, written into the layer's buffers instead of fresh arrays.
# ``be`` is a backend (backprop.backend): its kernels write into ``out`` where the library
# can. Each twin is checked against its formula in tests/test_activations_losses.py. With the
# layers' reused buffers and the fused losses they took a 1-thread batch-128 step from 0.64 to
# 0.75 of the GEMM-only epoch (benchmarks/NOTES.md, 'Engine choices'; bench.py mlp-b128).
def _sigmoid_(be: Any, a: Any, tmp: Any) -> Any:
    # sigma(a) as in sigmoid() above, overwriting a, with tmp for e^-|a| (the backend's kernel)
    if be.sigmoid_ is None or tmp is None:
        return sigmoid(be.xp, a)
    return be.sigmoid_(a, tmp)


def _sigmoid_backward_(be: Any, g: Any, y: Any, tmp: Any) -> Any:
    # g y (1 - y) = g y - (g y) y, in g's own storage
    g = be.multiply(g, y, out=g)
    g = be.subtract(g, be.multiply(g, y, out=tmp), out=g)
    return g


def _tanh_(be: Any, a: Any, tmp: Any) -> Any:
    return be.tanh_(a)


def _tanh_backward_(be: Any, g: Any, y: Any, tmp: Any) -> Any:
    # g (1 - y^2) = g - (g y) y
    t = be.multiply(g, y, out=tmp)
    t = be.multiply(t, y, out=t)
    return be.subtract(g, t, out=g)


def _relu_(be: Any, a: Any, tmp: Any) -> Any:
    return be.relu_(a)


def _relu_backward_(be: Any, g: Any, y: Any, tmp: Any) -> Any:
    return be.relu_backward_(g, y, tmp)


def _identity_(be: Any, a: Any, tmp: Any) -> Any:
    return a


def _identity_backward_(be: Any, g: Any, y: Any, tmp: Any) -> Any:
    return g


# --------------------------------------------------------------------------- the table
ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in (
        Activation(
            name="sigmoid",
            forward=sigmoid,
            backward=_sigmoid_backward,
            keeps="y",
            forward_inplace=_sigmoid_,
            backward_inplace=_sigmoid_backward_,
            scratch="values",
        ),
        Activation(
            name="tanh",
            forward=_tanh,
            backward=_tanh_backward,
            keeps="y",
            forward_inplace=_tanh_,
            backward_inplace=_tanh_backward_,
            scratch="values",
        ),
        Activation(
            name="relu",
            forward=_relu,
            backward=_relu_backward,
            keeps="y",
            forward_inplace=_relu_,
            backward_inplace=_relu_backward_,
            scratch="mask",
            kink_at_zero=True,
        ),
        Activation(
            name="leaky_relu",
            forward=_leaky_relu,
            backward=_leaky_relu_backward,
            keeps="y",
            kink_at_zero=True,
        ),
        Activation(name="elu", forward=_elu, backward=_elu_backward, keeps="a"),
        Activation(name="gelu", forward=_gelu, backward=_gelu_backward, keeps="a"),
        Activation(name="softplus", forward=_softplus, backward=_softplus_backward, keeps="a"),
        Activation(
            name="identity",
            forward=_identity,
            backward=_identity_backward,
            keeps="none",
            forward_inplace=_identity_,
            backward_inplace=_identity_backward_,
        ),
        Activation(name="softmax", forward=softmax, backward=_softmax_backward, keeps="y"),
    )
}


def get_activation(name: str) -> Activation:
    """The activation called ``name``; a clear error for an unknown one."""
    return lookup(ACTIVATIONS, name, "activation")
