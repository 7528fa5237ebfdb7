"""Activation functions and their derivatives, as small pure functions in one table.

Each activation maps the pre-activation ``a`` (shape ``(n_samples, n_units)``) to the
unit outputs ``y = f(a)``; its backward turns ``g = dL/dy`` into ``delta = dL/da``.
``keeps`` says which of ``a`` or ``y`` the backward needs, so a layer caches exactly that
(the sigmoid keeps its output, because ``sigma'(a) = y (1 - y)``, as in the seed).

Every function works on any array API namespace ``xp``, keeps the input dtype, and is
stable for pre-activations of +-1000: no overflow, no NaN, no warning.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Activation", "ACTIVATIONS", "get_activation"]

LEAKY_SLOPE = 0.01
ELU_ALPHA = 1.0
_GELU_C = math.sqrt(2.0 / math.pi)


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
    forward_inplace : callable ``(backend, a) -> y`` or None
        The same as ``forward`` but free to overwrite ``a`` (the training step's buffer);
        only for activations whose backward does not need ``a``.
    backward_inplace : callable ``(backend, g, y, tmp) -> delta`` or None
        The same as ``backward`` but free to overwrite ``g``; ``tmp`` is a scratch buffer
        of ``g``'s shape (or None), of the kind ``scratch`` names.
    scratch : {"none", "values", "mask"}
        What ``backward_inplace`` needs in ``tmp``: nothing, values in the layer's dtype,
        or a boolean mask (a quarter of the float32 buffer's memory).
    """

    name: str
    forward: Callable[[Any, Any], Any]
    backward: Callable[[Any, Any, Any, Any], Any]
    keeps: str
    forward_inplace: Callable[[Any, Any], Any] | None = None
    backward_inplace: Callable[[Any, Any, Any, Any], Any] | None = None
    scratch: str = "none"


def sigmoid(xp: Any, a: Any) -> Any:
    # sigma(a) = 1 / (1 + e^-a) = (1 + tanh(a / 2)) / 2: the tanh form never overflows.
    return 0.5 + 0.5 * xp.tanh(0.5 * a)


def _sigmoid_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # dy/da = y (1 - y)   (the seed's sigma'(a) = sigma(a)(1 - sigma(a)))
    return g * y * (1.0 - y)


def _sigmoid_(be: Any, a: Any) -> Any:
    half = be.scalar(0.5, a.dtype)
    a *= half
    a = be.tanh_(a)
    a *= half
    a += half
    return a


def _sigmoid_backward_(be: Any, g: Any, y: Any, tmp: Any) -> Any:
    # g y (1 - y) = g y - (g y) y, in g's own storage
    g = be.multiply(g, y, out=g)
    g = be.subtract(g, be.multiply(g, y, out=tmp), out=g)
    return g


def _tanh_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d tanh(a)/da = 1 - y^2
    return g * (1.0 - y * y)


def _tanh_backward_(be: Any, g: Any, y: Any, tmp: Any) -> Any:
    # g (1 - y^2) = g - (g y) y
    t = be.multiply(g, y, out=tmp)
    t = be.multiply(t, y, out=t)
    return be.subtract(g, t, out=g)


def _relu(xp: Any, a: Any) -> Any:
    return xp.maximum(a, 0.0)


def _relu_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d relu(a)/da = 1 if a > 0 else 0, and a > 0 exactly when y > 0
    return xp.where(y > 0, g, 0.0)


def _relu_backward_(be: Any, g: Any, y: Any, tmp: Any) -> Any:
    return be.relu_backward_(g, y, tmp)


def _leaky_relu(xp: Any, a: Any) -> Any:
    return xp.where(a > 0, a, LEAKY_SLOPE * a)


def _leaky_relu_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d/da = 1 if a > 0 else slope; y > 0 exactly when a > 0
    return xp.where(y > 0, g, LEAKY_SLOPE * g)


def _elu(xp: Any, a: Any) -> Any:
    # alpha (e^a - 1) for a <= 0; expm1 of min(a, 0) so the unused branch cannot overflow
    return xp.where(a > 0, a, ELU_ALPHA * xp.expm1(xp.minimum(a, 0.0)))


def _elu_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d/da = 1 if a > 0 else alpha e^a = y + alpha
    return xp.where(y > 0, g, g * (y + ELU_ALPHA))


def _gelu(xp: Any, a: Any) -> Any:
    # GELU, tanh form (Hendrycks & Gimpel 2016; torch's approximate="tanh"):
    # 0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3)))
    return 0.5 * a * (1.0 + xp.tanh(_GELU_C * (a + 0.044715 * a * a * a)))


def _gelu_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d/da = 0.5 (1 + th) + 0.5 a (1 - th^2) sqrt(2/pi) (1 + 3 * 0.044715 a^2)
    th = xp.tanh(_GELU_C * (a + 0.044715 * a * a * a))
    d = 0.5 * (1.0 + th) + 0.5 * a * (1.0 - th * th) * _GELU_C * (1.0 + 0.134145 * a * a)
    return g * d


def _softplus(xp: Any, a: Any) -> Any:
    # log(1 + e^a) = logaddexp(0, a), stable for any a
    return xp.logaddexp(xp.zeros_like(a), a)


def _softplus_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # d softplus(a)/da = sigma(a)
    return g * sigmoid(xp, a)


def _identity_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    return g


def softmax(xp: Any, a: Any) -> Any:
    # e^(a - max) / sum e^(a - max): shifting by the row maximum keeps every exponent <= 0
    e = xp.exp(a - xp.max(a, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def _softmax_backward(xp: Any, g: Any, a: Any, y: Any) -> Any:
    # dL/da_j = y_j (g_j - sum_k g_k y_k)   (the softmax Jacobian times g)
    return y * (g - xp.sum(g * y, axis=1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in (
        Activation(
            "sigmoid", sigmoid, _sigmoid_backward, "y", _sigmoid_, _sigmoid_backward_, "values"
        ),
        Activation(
            "tanh",
            lambda xp, a: xp.tanh(a),
            _tanh_backward,
            "y",
            lambda be, a: be.tanh_(a),
            _tanh_backward_,
            "values",
        ),
        Activation(
            "relu", _relu, _relu_backward, "y", lambda be, a: be.relu_(a), _relu_backward_, "mask"
        ),
        Activation("leaky_relu", _leaky_relu, _leaky_relu_backward, "y"),
        Activation("elu", _elu, _elu_backward, "y"),
        Activation("gelu", _gelu, _gelu_backward, "a"),
        Activation("softplus", _softplus, _softplus_backward, "a"),
        Activation(
            "identity",
            lambda xp, a: a,
            _identity_backward,
            "none",
            lambda be, a: a,
            lambda be, g, y, tmp: g,
        ),
        Activation("softmax", softmax, _softmax_backward, "y"),
    )
}


def get_activation(name: str) -> Activation:
    """The activation called ``name``; a clear error for an unknown one."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}"
        ) from None
