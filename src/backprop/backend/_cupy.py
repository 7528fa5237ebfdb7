"""CuPy arrays on the current CUDA device."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._version import pip_extra
from ._base import Backend

if TYPE_CHECKING:
    import cupy

__all__ = ["CupyBackend", "open_cupy"]


@functools.lru_cache(maxsize=64)
def _ones(n: int, dtype: Any, device_id: int) -> Any:
    """A vector of ``n`` ones, made once and kept."""
    import cupy

    return cupy.ones(n, dtype=dtype)


_SOFTMAX_CE_CUDA = r"""
extern "C" __global__ void softmax_ce(const T* z, const T* t, T* g, T* rows, int n, int k, T c) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const T* zi = z + (long long)i * k;
    const T* ti = t + (long long)i * k;
    T* gi = g + (long long)i * k;
    T m = zi[0];
    for (int j = 1; j < k; ++j) m = zi[j] > m ? zi[j] : m;
    T e_sum = 0, t_sum = 0, t_dot_s = 0;
    for (int j = 0; j < k; ++j) {
        T s = zi[j] - m;
        T e = exp(s);
        gi[j] = e;
        e_sum += e;
        t_sum += ti[j];
        t_dot_s += ti[j] * s;
    }
    rows[i] = t_sum * log(e_sum) - t_dot_s;
    for (int j = 0; j < k; ++j) gi[j] = (gi[j] / e_sum * t_sum - ti[j]) * c;
}
"""


class _CupyKernels:
    """CuPy kernels compiled on first use (NVRTC) and kept."""

    def __init__(self) -> None:
        import cupy

        self.relu_backward = cupy.ElementwiseKernel(
            "T y", "T g", "g = y > 0 ? g : (T)0", "backprop_relu_backward"
        )
        self._ce: dict[Any, Any] = {}

    def softmax_ce(self, dtype: Any) -> Any:
        import cupy

        kernel = self._ce.get(dtype)
        if kernel is None:
            ctype = {np.dtype("float32"): "float", np.dtype("float64"): "double"}[np.dtype(dtype)]
            code = f"typedef {ctype} T;\n" + _SOFTMAX_CE_CUDA
            kernel = self._ce[dtype] = cupy.RawKernel(code, "softmax_ce")
        return kernel


@functools.lru_cache(maxsize=1)
def _cupy_kernels() -> _CupyKernels:
    return _CupyKernels()


@dataclass(frozen=True)
class CupyBackend(Backend):
    """CuPy arrays on the current CUDA device; the kernels are CuPy's NumPy-like functions."""

    supports_out = True

    def to_numpy(self, x: Any) -> np.ndarray:
        import cupy

        return cupy.asnumpy(x)

    def matmul(
        self, a: cupy.ndarray, b: cupy.ndarray, out: cupy.ndarray | None = None
    ) -> cupy.ndarray:
        import cupy

        return cupy.matmul(a, b, out=out)

    def sum_rows(self, x: cupy.ndarray, out: cupy.ndarray | None = None) -> cupy.ndarray:
        import cupy

        # one GEMV instead of CuPy's column reduction (scripts/gpu_check.py, batch 8192)
        return cupy.matmul(_ones(x.shape[0], x.dtype, x.device.id), x, out=out)

    def multiply(
        self, a: cupy.ndarray, b: cupy.ndarray | float, out: cupy.ndarray | None = None
    ) -> cupy.ndarray:
        import cupy

        return cupy.multiply(a, b, out=out)

    def subtract(
        self, a: cupy.ndarray, b: cupy.ndarray, out: cupy.ndarray | None = None
    ) -> cupy.ndarray:
        import cupy

        return cupy.subtract(a, b, out=out)

    def sqrt(self, x: cupy.ndarray, out: cupy.ndarray | None = None) -> cupy.ndarray:
        import cupy

        return cupy.sqrt(x, out=out)

    def take_rows(
        self, x: cupy.ndarray, idx: cupy.ndarray | np.ndarray, out: cupy.ndarray | None = None
    ) -> cupy.ndarray:
        import cupy

        if not isinstance(idx, cupy.ndarray):  # host indices: one upload as int64
            idx = cupy.asarray(np.asarray(idx, dtype=np.int64))
        return cupy.take(x, idx, axis=0, out=out)

    def copy(self, x: cupy.ndarray, out: cupy.ndarray | None = None) -> cupy.ndarray:
        import cupy

        if out is None:
            return x.copy()
        cupy.copyto(out, x)
        return out

    def vdot(self, a: cupy.ndarray, b: cupy.ndarray) -> cupy.ndarray:
        import cupy

        return cupy.vdot(a, b)  # flattens; one dot kernel, a 0-d array on the device

    def tanh_(self, x: cupy.ndarray) -> cupy.ndarray:
        import cupy

        return cupy.tanh(x, out=x)

    def exp_(self, x: cupy.ndarray) -> cupy.ndarray:
        import cupy

        return cupy.exp(x, out=x)

    def sigmoid_(self, x: cupy.ndarray, tmp: cupy.ndarray) -> cupy.ndarray:
        import cupy

        # as the NumPy backend: (1 if x >= 0 else e) / (1 + e), e = exp(-|x|) in tmp
        e = cupy.exp(cupy.negative(cupy.abs(x, out=tmp), out=tmp), out=tmp)
        numerator = cupy.maximum(cupy.greater_equal(x, 0, out=x), e, out=x)
        return cupy.divide(numerator, cupy.add(e, 1, out=e), out=x)

    def relu_(self, x: cupy.ndarray) -> cupy.ndarray:
        import cupy

        return cupy.maximum(x, 0, out=x)

    def relu_backward_(
        self, g: cupy.ndarray, y: cupy.ndarray, tmp: cupy.ndarray | None = None
    ) -> cupy.ndarray:
        _cupy_kernels().relu_backward(y, g)  # g = g where y > 0, else 0: one kernel
        return g

    def softmax_cross_entropy(
        self, z: cupy.ndarray, t: cupy.ndarray, out: cupy.ndarray | None, scale: float
    ) -> tuple[cupy.ndarray, cupy.ndarray]:
        """The fused softmax + cross-entropy of :mod:`backprop.losses` as one CUDA kernel
        (one thread per row) and a sum, instead of 14 CuPy calls: at small batches CuPy's
        per-call cost on the host bounds the step (scripts/gpu_check.py).

        Per row: ``s = z - max z``, ``l = (sum t) log sum e^s - sum t s``,
        ``dl/dz = e^s / sum e^s * sum t - t``; ``L = mean l``; the gradient times
        ``scale / n``.
        """
        import cupy

        n, k = z.shape
        z, t = cupy.ascontiguousarray(z), cupy.ascontiguousarray(t)
        g = cupy.empty_like(z) if out is None else out
        rows = cupy.empty((n,), dtype=z.dtype)
        c = z.dtype.type(scale / n)
        threads = 128
        blocks = (n + threads - 1) // threads
        kernel = _cupy_kernels().softmax_ce(z.dtype)
        kernel((blocks,), (threads,), (z, t, g, rows, np.int32(n), np.int32(k), c))
        return cupy.sum(rows) * z.dtype.type(1.0 / n), g


def open_cupy(device: str | None = None) -> CupyBackend:
    """The CuPy backend (CUDA only)."""
    try:
        import array_api_compat.cupy as xp
    except ImportError as e:
        raise ImportError(
            f"backend='cupy' needs CuPy and array-api-compat: {pip_extra('cupy')}"
        ) from e
    if device not in (None, "cuda"):
        raise ValueError(f"the cupy backend runs on CUDA only; got device={device!r}")
    return CupyBackend(name="cupy", xp=xp)
