"""Layers: a dense layer ``y = f(x W + b)`` and inverted dropout.

Each layer names its own parameters and says which of them weight decay applies to
(:meth:`Dense.parameters`, :attr:`Dense.decays`); the model gives them their dotted names
``layers.<k>.<name>`` (:func:`backprop.network.parameter_name`). A layer's ``forward``
caches exactly what its ``backward`` needs. ``backward`` receives
``g = dL/dy`` (the gradient flowing down from the layer above; times the activation's
derivative it is the seed's ``delta``), stores the gradients of its own parameters, and
returns ``dL/dx`` for the layer below (its ``dL/dy``). Layers never call each other:
:class:`backprop.network.MLP` walks them (the generalized delta rule, written once).

In training mode (``training=True``) a layer writes into buffers it keeps from step to
step (one set per batch size: the full batch and the epoch's last, partial one) and may
overwrite the ``g`` it receives; in inference mode it writes no buffer (a dense layer's
result is a fresh array, dropout returns its input) and keeps nothing for a backward. On
backends without ``out=`` the buffers are ``None`` and the kernels allocate, with the same
code (see :mod:`backprop.backend`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .activations import Activation
from .backend import Backend

__all__ = ["Dense", "Dropout", "batch_buffer"]


def batch_buffer(
    cache: dict[int, Any], n: int, allocate: Callable[[int], Any], view: Callable[[Any, int], Any]
) -> Any:
    """The buffer for a batch of ``n`` rows, kept in ``cache`` (keyed by row count).

    A smaller batch than one already cached (the epoch's last) gets ``view(larger, n)``, the
    larger one's first rows: contiguous views, no memory of their own (benchmarks/memory.py).
    Otherwise ``allocate(n)``. At most 4 sizes are kept: when batch sizes keep changing,
    memory stays bounded.
    """
    buf = cache.get(n)
    if buf is None:
        if len(cache) >= 4:
            cache.clear()
        larger = max((k for k in cache if k > n), default=None)
        buf = cache[n] = allocate(n) if larger is None else view(cache[larger], n)
    return buf


class _Buffers:
    """One layer's scratch arrays for one batch size: ``a`` (pre-activations, then outputs),
    ``tmp`` (the activation's in-place backward: values, a boolean mask, or None, as its
    ``scratch`` says) and ``dx`` (``dL/dx``, the layer below's ``dL/dy``, allocated on first
    use: the first layer never needs it). All None on backends without ``out=``.

    With ``parent`` (a set for a larger batch) the arrays are the parent's first ``n`` rows,
    contiguous views: the epoch's last, partial batch needs no memory of its own."""

    __slots__ = ("n", "a", "tmp", "dx", "_backend", "_dtype", "_fan_in", "_parent")

    def __init__(
        self,
        backend: Backend,
        dtype: str,
        n: int,
        fan_in: int,
        fan_out: int,
        scratch: str,
        parent: _Buffers | None = None,
    ) -> None:
        self.n = n
        self._backend, self._dtype, self._fan_in, self._parent = backend, dtype, fan_in, parent
        self.dx = self.a = self.tmp = None
        if parent is not None:
            self.a = None if parent.a is None else parent.a[:n]
            self.tmp = None if parent.tmp is None else parent.tmp[:n]
        elif backend.supports_out:
            self.a = backend.empty((n, fan_out), dtype)
            if scratch != "none":
                self.tmp = backend.empty((n, fan_out), "bool" if scratch == "mask" else dtype)

    def get_dx(self) -> Any:
        if self.dx is None and self._backend.supports_out:
            if self._parent is not None:
                self.dx = self._parent.get_dx()[: self.n]
            else:
                self.dx = self._backend.empty((self.n, self._fan_in), self._dtype)
        return self.dx


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
    dtype : {"float32", "float64"}
    grad_W : array, shape (fan_in, fan_out), or None
        Where :meth:`backward` writes ``dL/dW``, overwritten by every backward (in place on
        a backend that writes into ``out``): the model passes views of its flat gradient
        vector where it has one. None: a zero array is allocated here.
    grad_b : array, shape (fan_out,), or None
        The same for ``dL/db``; ignored when ``b`` is None.
    """

    #: The parameters weight decay applies to: the weights, never the bias.
    decays: tuple[str, ...] = ("W",)

    @staticmethod
    def parameter_shapes(fan_in: int, fan_out: int, bias: bool) -> dict[str, tuple[int, ...]]:
        """The parameters a dense layer has, by name: ``W`` of shape ``(fan_in, fan_out)``
        and, with ``bias``, ``b`` of shape ``(fan_out,)``."""
        shapes: dict[str, tuple[int, ...]] = {"W": (fan_in, fan_out)}
        if bias:
            shapes["b"] = (fan_out,)
        return shapes

    def __init__(
        self,
        W: Any,
        b: Any,
        activation: Activation,
        backend: Backend,
        dtype: str,
        grad_W: Any = None,
        grad_b: Any = None,
    ) -> None:
        self.W = W
        self.b = b
        self.backend = backend
        self.dtype = dtype
        self.activation = activation  # after W, backend and dtype: it sets up the buffers
        fan_in, fan_out = W.shape
        # Gradient arrays (given, as views of the model's flat vector, or allocated here)
        # are overwritten by every backward.
        self.grad_W: Any = backend.zeros((fan_in, fan_out), dtype) if grad_W is None else grad_W
        self.grad_b: Any = None
        if b is not None:
            self.grad_b = backend.zeros((fan_out,), dtype) if grad_b is None else grad_b
        self._x: Any = None
        self._a: Any = None
        self._y: Any = None

    def parameters(self) -> dict[str, Any]:
        """The live parameter arrays by name (``W``, and ``b`` when the layer has a bias)."""
        return {"W": self.W} if self.b is None else {"W": self.W, "b": self.b}

    def gradients(self) -> dict[str, Any]:
        """The gradients of the last :meth:`backward`, by the same names."""
        return {"W": self.grad_W} if self.b is None else {"W": self.grad_W, "b": self.grad_b}

    @property
    def activation(self) -> Activation:
        return self._activation

    @activation.setter
    def activation(self, act: Activation) -> None:
        # what forward caches for backward, decided once rather than on every step
        self._activation = act
        self._keeps_a, self._keeps_y = act.keeps == "a", act.keeps == "y"
        # scratch for the full batch and the epoch's last one (keyed by batch size), made
        # anew: the scratch kind depends on the activation. Reused buffers, in-place
        # activations and the fused losses together took a 1-thread batch-128 step from 0.64
        # to 0.75 of the GEMM-only epoch (benchmarks/NOTES.md, 'Engine choices'; bench.py
        # config mlp-b128)
        self._buffer_sets: dict[int, _Buffers] = {}
        self._bufs = _Buffers(self.backend, self.dtype, 0, *self.W.shape, "none")

    def forward(self, x: Any, training: bool = False) -> Any:
        """``y = f(x W + b)`` for a batch ``x`` of shape ``(n, fan_in)``; returns ``(n, fan_out)``.

        In training mode the result lives in this layer's buffer until the next step.
        """
        be, act = self.backend, self.activation
        if not training:
            self._x = self._a = self._y = None  # nothing for a backward: it would use stale rows
            a = x @ self.W
            if self.b is not None:
                a = a + self.b
            return act.forward(be.xp, a)
        n = x.shape[0]
        bufs = self._bufs if n == self._bufs.n else self._buffers_for(n)
        a = be.affine(x, self.W, self.b, out=bufs.a)  # a = x W + b  (the seed's a(1) = x w + b(1))
        if act.forward_inplace is not None:
            y = act.forward_inplace(be, a, bufs.tmp)  # overwrites a: the backward needs only y
        else:
            y = act.forward(be.xp, a)
        self._x = x
        self._a = a if self._keeps_a else None
        self._y = y if self._keeps_y else None
        return y

    def _buffers_for(self, n: int) -> _Buffers:
        def make(n: int, parent: _Buffers | None = None) -> _Buffers:
            scratch = self.activation.scratch
            return _Buffers(self.backend, self.dtype, n, *self.W.shape, scratch, parent)

        self._bufs = batch_buffer(self._buffer_sets, n, make, lambda parent, n: make(n, parent))
        return self._bufs

    def backward(self, g: Any, need_input_grad: bool = True) -> Any:
        """Turn ``g = dL/dy`` into this layer's gradients and ``dL/dx`` (``g`` may be overwritten).

        ``g`` has the shape of the last training forward's ``y``, ``(n, fan_out)``; the
        gradients have their parameters' shapes and ``dL/dx`` is ``(n, fan_in)`` (None when
        ``need_input_grad`` is false: the first layer's), all in the layer's dtype.

        ``delta = g * f'(a)``              (the seed's delta_j)
        ``dL/dW = x^T delta``              (dL/dw_ij = delta_j x_i, summed over the batch)
        ``dL/db = sum over rows of delta`` (dL/db_j = delta_j)
        ``dL/dx = delta W^T``              (dL/dh_j = sum_k delta_k w_jk)
        """
        be, act = self.backend, self.activation
        if self._x is None:
            raise RuntimeError(
                "Dense.backward needs the batch of a forward(x, training=True) first; the last "
                "forward was in inference mode, which keeps nothing for a backward"
            )
        if act.backward_inplace is not None:  # delta = g * f'(a)
            delta = act.backward_inplace(be, g, self._y, self._bufs.tmp)
        else:
            delta = act.backward(be.xp, g, self._a, self._y)
        self.grad_W = be.matmul(self._x.T, delta, out=self.grad_W)  # dL/dW = x^T delta
        if self.b is not None:
            self.grad_b = be.sum_rows(delta, out=self.grad_b)  # dL/db = sum over rows of delta
        if not need_input_grad:
            return None
        return be.matmul(delta, self.W.T, out=self._bufs.get_dx())  # dL/dx = delta W^T


class Dropout:
    """Inverted dropout: in training, zero each unit with probability ``p`` and scale the
    survivors by ``1 / (1 - p)``; at inference, the identity.

    The mask comes from an explicit ``numpy.random.Generator`` (drawn on the host in the
    model's dtype and moved to the backend), so the same seed gives the same masks.
    """

    decays: tuple[str, ...] = ()

    def __init__(self, p: float, rng: np.random.Generator, backend: Backend, dtype: str) -> None:
        self.p = p
        self.rng = rng
        self.backend = backend
        self.dtype = dtype
        self._mask: Any = None
        #: A mask to use instead of drawing one (an array of the input's shape on the
        #: backend, in the layer's dtype), or None: gradcheck's float64 copy of a float32
        #: model replays the model's masks with it.
        self.fixed_mask: Any = None

    @property
    def mask(self) -> Any:
        """The mask of the last training-mode forward (kept units ``1 / (1 - p)``, dropped
        ones 0), or None."""
        return self._mask

    def parameters(self) -> dict[str, Any]:
        """An empty dict: dropout has no parameters."""
        return {}

    def gradients(self) -> dict[str, Any]:
        """An empty dict: dropout has no parameters."""
        return {}

    def forward(self, x: Any, training: bool = False) -> Any:
        """``y = x * mask`` for a batch ``x`` of any shape (a fresh mask each call, in ``x``'s
        shape and the layer's dtype); at inference (or ``p = 0``), ``x`` itself."""
        if not training or self.p == 0.0:
            self._mask = None
            return x
        if self.fixed_mask is not None:
            self._mask = self.fixed_mask
            return x * self._mask
        u = self.rng.random(tuple(x.shape), dtype=np.dtype(self.dtype))
        mask = (u >= self.p).astype(self.dtype) * np.asarray(1.0 / (1.0 - self.p), self.dtype)
        self._mask = self.backend.asarray(mask, self.dtype)
        return x * self._mask

    def backward(self, g: Any, need_input_grad: bool = True) -> Any:
        """``dL/dx = g * mask`` for ``g = dL/dy`` (``g``'s shape), the mask of the last
        training forward; ``g`` itself after one without a mask."""
        # y = x * mask  =>  dL/dx = dL/dy * mask
        return g if self._mask is None else g * self._mask
