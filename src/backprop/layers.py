"""Layers: a dense layer ``y = f(x W + b)`` and inverted dropout.

A layer's ``forward`` caches exactly what its ``backward`` needs. ``backward`` receives
``g = dL/dy`` (the delta flowing down from the layer above), stores the gradients of its
own parameters, and returns ``dL/dx`` for the layer below. Layers never call each other:
:class:`backprop.network.MLP` walks them (the generalized delta rule, written once).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .activations import Activation
from .backend import Backend

__all__ = ["Dense", "Dropout"]


class Dense:
    """A fully connected layer ``a = x W + b``, ``y = f(a)``.

    Parameters
    ----------
    W : array, shape (fan_in, fan_out)
        ``W[i, j]`` connects input i to unit j (the seed's ``w_ij``).
    b : array, shape (fan_out,), or None
        The bias (the seed's ``b(1)``, ``b(2)``); None for a layer without bias.
    activation : Activation
    backend : Backend
    """

    def __init__(self, W: Any, b: Any, activation: Activation, backend: Backend) -> None:
        self.W = W
        self.b = b
        self.activation = activation
        self.backend = backend
        self.grad_W: Any = None
        self.grad_b: Any = None
        self._x: Any = None
        self._a: Any = None
        self._y: Any = None

    def forward(self, x: Any, training: bool = False) -> Any:
        """``y = f(x W + b)`` for a batch ``x`` of shape ``(n, fan_in)``; returns ``(n, fan_out)``."""
        xp = self.backend.xp
        a = x @ self.W  # a = x W + b   (the seed's a(1) = x w + b(1))
        if self.b is not None:
            a = a + self.b
        y = self.activation.forward(xp, a)
        if training:
            keeps = self.activation.keeps
            self._x = x
            self._a = a if keeps == "a" else None
            self._y = y if keeps == "y" else None
        return y

    def backward(self, g: Any, need_input_grad: bool = True) -> Any:
        """Turn ``g = dL/dy`` into this layer's gradients and ``dL/dx``.

        ``delta = g * f'(a)``              (the seed's delta_j)
        ``dL/dW = x^T delta``              (dL/dw_ij = delta_j x_i, summed over the batch)
        ``dL/db = sum over rows of delta`` (dL/db_j = delta_j)
        ``dL/dx = delta W^T``              (dL/dh_j = sum_k delta_k w_jk)
        """
        xp = self.backend.xp
        delta = self.activation.backward(xp, g, self._a, self._y)
        self.grad_W = self._x.T @ delta
        if self.b is not None:
            self.grad_b = xp.sum(delta, axis=0)
        return delta @ self.W.T if need_input_grad else None


class Dropout:
    """Inverted dropout: in training, zero each unit with probability ``p`` and scale the
    survivors by ``1 / (1 - p)``; at inference, the identity.

    The mask comes from an explicit ``numpy.random.Generator`` (drawn on the host and
    moved to the backend), so the same seed gives the same masks.
    """

    def __init__(self, p: float, rng: np.random.Generator, backend: Backend, dtype: str) -> None:
        self.p = p
        self.rng = rng
        self.backend = backend
        self.dtype = dtype
        self._mask: Any = None

    def forward(self, x: Any, training: bool = False) -> Any:
        if not training or self.p == 0.0:
            self._mask = None
            return x
        keep = self.rng.random(tuple(x.shape)) >= self.p
        mask = keep.astype(self.dtype) * (1.0 / (1.0 - self.p))
        self._mask = self.backend.asarray(mask, self.dtype)
        return x * self._mask

    def backward(self, g: Any, need_input_grad: bool = True) -> Any:
        # y = x * mask  =>  dL/dx = dL/dy * mask
        return g if self._mask is None else g * self._mask
