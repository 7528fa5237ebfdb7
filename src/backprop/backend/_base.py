"""The generic backend: any namespace that follows the Python array API standard.

:class:`Backend` is what every backend is: an array namespace ``xp`` that the engine's
formulas call, a device, and the few kernels of the training step's hot path, which write
into a reused buffer (``out``) where the library can and always RETURN the result. This
generic version allocates and ignores ``out``; the NumPy, PyTorch and CuPy backends
(:mod:`._numpy`, :mod:`._torch`, :mod:`._cupy`) override the kernels with their library's
``out=`` functions. The engine always uses the returned array, so one code path serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._version import pip_extra

__all__ = ["Backend", "open_array_api_strict"]


@dataclass(frozen=True)
class Backend:
    """An array library and a device; the generic (allocating) array API version.

    Attributes
    ----------
    name : str
        ``"numpy"``, ``"torch"``, ``"cupy"`` or the namespace's module name.
    xp : module
        An array API namespace.
    device : object or None
        The device arrays are created on (``None`` for the library default).
    supports_out : bool
        Whether the kernels below write into ``out`` (so buffers are worth keeping).
    """

    name: str
    xp: Any
    device: Any = None
    supports_out = False

    # ---- conversion ----------------------------------------------------------------
    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Convert ``x`` (any array-like) to this backend, optionally casting to ``dtype``."""
        if isinstance(x, list | tuple):
            x = np.asarray(x)
        dt = None if dtype is None else self.dtype(dtype)
        kw = {} if self.device is None else {"device": self.device}
        return self.xp.asarray(x, dtype=dt, **kw)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A host NumPy array with the values of ``x``."""
        try:
            return np.from_dlpack(x)
        except (TypeError, AttributeError, RuntimeError, BufferError):
            return np.asarray(x)

    def dtype(self, name: Any) -> Any:
        """The backend's dtype object for ``"float32"`` or ``"float64"``."""
        if not isinstance(name, str):
            name = str(getattr(name, "name", name))
        name = name.rsplit(".", 1)[-1]
        if name not in ("float32", "float64", "int64", "bool"):
            raise ValueError(
                f"dtype must be 'float32' or 'float64' (or int64 for indices, bool for masks), "
                f"got {name!r}"
            )
        return getattr(self.xp, name)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        kw = {} if self.device is None else {"device": self.device}
        return self.xp.zeros(shape, dtype=self.dtype(dtype), **kw)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """An uninitialised buffer (used only where every entry is written before read)."""
        kw = {} if self.device is None else {"device": self.device}
        return self.xp.empty(shape, dtype=self.dtype(dtype), **kw)

    # ---- kernels: write into `out` where supported, always return the result -----------
    def matmul(self, a: Any, b: Any, out: Any = None) -> Any:
        """``a @ b`` (``out`` must not alias ``a`` or ``b``)."""
        return a @ b

    def affine(self, x: Any, W: Any, b: Any, out: Any = None) -> Any:
        """``x @ W + b`` (``b`` may be None), a dense layer's pre-activation."""
        a = self.matmul(x, W, out=out)
        if b is not None:
            a += b
        return a

    def sum_rows(self, x: Any, out: Any = None) -> Any:
        """The sum over the rows (axis 0) of a 2-D array, shape ``(n_cols,)``."""
        return self.xp.sum(x, axis=0)

    def multiply(self, a: Any, b: Any, out: Any = None) -> Any:
        """``a * b`` (``out`` may be ``a``)."""
        return a * b

    def subtract(self, a: Any, b: Any, out: Any = None) -> Any:
        """``a - b`` (``out`` may be ``a``)."""
        return a - b

    def take_rows(self, x: Any, idx: Any, out: Any = None) -> Any:
        """``x[idx]`` for a 1-D integer index array: one batch gathered from the data."""
        return self.xp.take(x, idx, axis=0)

    def copy(self, x: Any, out: Any = None) -> Any:
        """A copy of ``x`` (into ``out``, an array of ``x``'s shape, where supported)."""
        return self.xp.asarray(x, copy=True)

    def vdot(self, a: Any, b: Any) -> Any:
        """``sum(a * b)`` over all entries of two arrays of one shape, as a 0-d array."""
        return self.xp.sum(a * b)

    def argmax_rows(self, x: Any, out: Any = None) -> Any:
        """The column of each row's largest entry (int64), into ``out`` where supported."""
        return self.xp.argmax(x, axis=1)

    def tanh_(self, x: Any) -> Any:
        """``tanh(x)``, overwriting ``x`` where supported."""
        return self.xp.tanh(x)

    def exp_(self, x: Any) -> Any:
        """``exp(x)``, overwriting ``x`` where supported."""
        return self.xp.exp(x)

    def relu_(self, x: Any) -> Any:
        """``max(x, 0)``, overwriting ``x`` where supported."""
        return self.xp.maximum(x, 0.0)

    def sqrt(self, x: Any, out: Any = None) -> Any:
        """``sqrt(x)`` (``out`` may be ``x``)."""
        return self.xp.sqrt(x)

    def scalar(self, value: float, dtype: Any) -> Any:
        """The constant ``value`` for arithmetic with arrays of ``dtype``."""
        return value

    def relu_backward_(self, g: Any, y: Any, tmp: Any = None) -> Any:
        """``g`` where ``y > 0``, else 0, overwriting ``g`` where supported (``tmp``: a
        boolean scratch buffer of ``g``'s shape, or None)."""
        return self.xp.where(y > 0, g, 0.0)

    # A backend may give a fused twin of a loss's value and gradient (fewer kernels);
    # None: the loss's own formula (backprop.losses) runs.
    softmax_cross_entropy = None
    # ... and an in-place sigmoid ``sigmoid_(x, tmp)`` (``tmp``: scratch of x's shape and
    # dtype); None: the formula of backprop.activations.sigmoid runs.
    sigmoid_ = None


def open_array_api_strict(device: str | None = None) -> Backend:
    """The generic backend on ``array_api_strict``, the standard's reference namespace."""
    try:
        import array_api_strict as xp
    except ImportError as e:
        raise ImportError(
            f"backend='array_api_strict' needs array-api-strict: {pip_extra('array-api')}"
        ) from e
    cpu = xp.__array_namespace_info__().default_device()  # Device('CPU_DEVICE')
    if device not in (None, "cpu", "CPU_DEVICE", cpu):  # another was ignored without a word
        raise ValueError(
            f"backend='array_api_strict' runs on its CPU device only ({cpu!r}, or 'cpu'); "
            f"got device={device!r}"
        )
    return Backend(name="array_api_strict", xp=xp)
