"""NumPy: the kernels are NumPy's own functions, called with ``out=``."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._base import Backend

__all__ = ["NumpyBackend", "open_numpy"]


def _np_relu_(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


def _np_relu_backward_(g: np.ndarray, y: np.ndarray, tmp: np.ndarray | None = None) -> np.ndarray:
    # y > 0 into the layer's boolean scratch buffer (no fresh mask per step), then g *= mask:
    # 13 us against 21 us at 128x256 (benchmarks/NOTES.md, 'Engine choices'; bench.py mlp-b128)
    return np.multiply(g, np.greater(y, 0, out=tmp), out=g)


def _np_take_rows(x: np.ndarray, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # mode="clip": with mode="raise" NumPy gathers into a temporary and copies it to `out`
    # (the indices come from a permutation of range(n), so they are always in range)
    return x.take(idx, 0, out, "clip")


_np_ones = functools.lru_cache(maxsize=64)(lambda n, dtype: np.ones(n, dtype))


def _np_sum_rows(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    n = x.shape[0]
    if n < 64:
        return np.add.reduce(x, 0, None, out)  # positional arguments: cheaper than keywords
    # a row of ones times x, in BLAS: faster than add.reduce from about 64 rows up (2.4-3.3 us
    # against 4.6-5.9 us at 128x256), slower at Nielsen's 10 rows (benchmarks/NOTES.md,
    # 'Engine choices'; bench.py configs mlp-b128 and nielsen-b10)
    return np.matmul(_np_ones(n, x.dtype), x, out=out)


def _np_copy(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        return x.copy()
    np.copyto(out, x)
    return out


def _np_argmax_rows(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return x.argmax(1, out)


def _np_tanh_(x: np.ndarray) -> np.ndarray:
    return np.tanh(x, out=x)


def _np_exp_(x: np.ndarray) -> np.ndarray:
    return np.exp(x, out=x)


def _np_sigmoid_(x: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    # sigma(x) = (1 if x >= 0 else e) / (1 + e) with e = exp(-|x|) in tmp, x overwritten:
    # backprop.activations.sigmoid with out= (no exponent is positive; nothing cancels);
    # in place for the step's speed (benchmarks/NOTES.md, 'Engine choices'; bench.py mlp-b128)
    e = np.exp(np.negative(np.abs(x, out=tmp), out=tmp), out=tmp)
    numerator = np.maximum(np.greater_equal(x, 0, out=x), e, out=x)  # 1 where x >= 0, else e
    return np.divide(numerator, np.add(e, 1, out=e), out=x)


@dataclass(frozen=True)
class NumpyBackend(Backend):
    """NumPy: the kernels are NumPy's own functions, called with ``out=``.

    They are bound as static functions rather than wrapped in methods: at Nielsen's batch
    of 10 a step is about 40 kernel calls, and a Python wrapper around each one shows in
    the step time: ~0.4 us a call (benchmarks/NOTES.md, 'Engine choices'; bench.py config
    nielsen-b10).
    """

    supports_out = True
    matmul = staticmethod(np.matmul)
    sum_rows = staticmethod(_np_sum_rows)
    multiply = staticmethod(np.multiply)
    sqrt = staticmethod(np.sqrt)
    subtract = staticmethod(np.subtract)
    take_rows = staticmethod(_np_take_rows)
    # A 0-d array of the operand's dtype: NumPy converts a Python float on every operation,
    # which shows at Nielsen's batch 10, about 10 scalar operations per step (benchmarks/bench.py).
    scalar = staticmethod(
        functools.lru_cache(maxsize=256)(lambda value, dtype: np.array(value, dtype))
    )
    vdot = staticmethod(np.vdot)  # flattens; one BLAS dot instead of a product and a sum
    copy = staticmethod(_np_copy)
    argmax_rows = staticmethod(_np_argmax_rows)
    tanh_ = staticmethod(_np_tanh_)
    exp_ = staticmethod(_np_exp_)
    sigmoid_ = staticmethod(_np_sigmoid_)
    relu_ = staticmethod(_np_relu_)
    relu_backward_ = staticmethod(_np_relu_backward_)

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        return np.asarray(x, dtype=dtype)

    def dtype(self, name: Any) -> Any:
        return np.dtype(name)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return np.zeros(shape, dtype=dtype)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return np.empty(shape, dtype=dtype)


def open_numpy(device: str | None = None) -> NumpyBackend:
    """The NumPy backend (host memory only)."""
    if device not in (None, "cpu"):
        raise ValueError(f"the numpy backend runs on the CPU only; got device={device!r}")
    return NumpyBackend(name="numpy", xp=np)
