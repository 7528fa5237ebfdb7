"""CuPy arrays on the current CUDA device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._base import Backend

__all__ = ["CupyBackend", "open_cupy"]


@dataclass(frozen=True)
class CupyBackend(Backend):
    """CuPy arrays on the current CUDA device; the kernels are CuPy's NumPy-like functions."""

    supports_out = True

    def to_numpy(self, x: Any) -> np.ndarray:
        import cupy

        return cupy.asnumpy(x)

    def matmul(self, a, b, out=None):
        import cupy

        return cupy.matmul(a, b, out=out)

    def sum_rows(self, x, out=None):
        import cupy

        return cupy.sum(x, axis=0, out=out)

    def multiply(self, a, b, out=None):
        import cupy

        return cupy.multiply(a, b, out=out)

    def subtract(self, a, b, out=None):
        import cupy

        return cupy.subtract(a, b, out=out)

    def sqrt(self, x, out=None):
        import cupy

        return cupy.sqrt(x, out=out)

    def take_rows(self, x, idx, out=None):
        import cupy

        if not isinstance(idx, cupy.ndarray):  # host indices: one upload as int64
            idx = cupy.asarray(np.asarray(idx, dtype=np.int64))
        return cupy.take(x, idx, axis=0, out=out)

    def vdot(self, a, b):
        import cupy

        return cupy.vdot(a, b)  # flattens; one dot kernel, a 0-d array on the device

    def tanh_(self, x):
        import cupy

        return cupy.tanh(x, out=x)

    def exp_(self, x):
        import cupy

        return cupy.exp(x, out=x)

    def relu_(self, x):
        import cupy

        return cupy.maximum(x, 0, out=x)

    def relu_backward_(self, g, y, tmp=None):
        import cupy

        return cupy.multiply(g, cupy.greater(y, 0, out=tmp), out=g)


def open_cupy(device: str | None = None) -> CupyBackend:
    """The CuPy backend (CUDA only)."""
    try:
        import array_api_compat.cupy as xp
    except ImportError as e:
        raise ImportError(
            "backend='cupy' needs CuPy and array-api-compat: pip install 'backprop[cupy]'"
        ) from e
    if device not in (None, "cuda"):
        raise ValueError(f"the cupy backend runs on CUDA only; got device={device!r}")
    return CupyBackend(name="cupy", xp=xp)
