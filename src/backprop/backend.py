"""Array backends: the one module that knows which array library is underneath.

The engine is written against the Python array API standard: every formula calls
``xp.<function>`` on a namespace ``xp`` that this module supplies. NumPy is the default and
is used directly (NumPy 2 implements the standard). PyTorch tensors and CuPy arrays go
through ``array-api-compat``; any other standard namespace (``array_api_strict``, say) can
be passed as is.

Beyond the standard, the engine's hot path asks the backend for a few kernels that write
into a reused buffer (``out``) and RETURN the result. Libraries with ``out=`` (NumPy, CuPy,
PyTorch) write into the buffer; the generic backend returns a fresh array and ignores
``out``. The engine always uses the returned array, so one code path serves both.
Reusing buffers instead of allocating temporaries each step is what
``benchmarks/bench.py`` measures (docs/performance.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Backend", "NumpyBackend", "TorchBackend", "CupyBackend", "get_backend", "BACKENDS"]

BACKENDS = ("numpy", "torch", "cupy", "array_api_strict")


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


def _np_relu_(x):
    return np.maximum(x, 0, out=x)


def _np_relu_backward_(g, y, tmp=None):
    # y > 0 into the layer's boolean scratch buffer (no fresh mask per step), then g *= mask:
    # 13 us at (128, 256) float32 against 21 us for the earlier sign(y) into a float buffer
    return np.multiply(g, np.greater(y, 0, out=tmp), out=g)


def _np_take_rows(x, idx, out=None):
    # mode="clip": with mode="raise" NumPy gathers into a temporary and copies it to `out`
    # (the indices come from a permutation of range(n), so they are always in range)
    return x.take(idx, 0, out, "clip")


_np_ones = functools.lru_cache(maxsize=64)(lambda n, dtype: np.ones(n, dtype))


def _np_sum_rows(x, out=None):
    n = x.shape[0]
    if n < 64:
        return np.add.reduce(x, 0, None, out)  # positional: ~0.2 us less per call than keywords
    # a row of ones times x, in BLAS: at 128 rows 2-3x faster than add.reduce (128x256
    # float32: 2.4-3.3 us against 4.6-5.9 us; at 512 rows 6-7 us against 15-18 us), while
    # at Nielsen's 10 rows add.reduce is ~0.1 us faster
    return np.matmul(_np_ones(n, x.dtype), x, out=out)


def _np_copy(x, out=None):
    if out is None:
        return x.copy()
    np.copyto(out, x)
    return out


def _np_argmax_rows(x, out=None):
    return x.argmax(1, out)


def _np_tanh_(x):
    return np.tanh(x, out=x)


def _np_exp_(x):
    return np.exp(x, out=x)


@dataclass(frozen=True)
class NumpyBackend(Backend):
    """NumPy: the kernels are NumPy's own functions, called with ``out=``.

    They are bound as static functions rather than wrapped in methods: at Nielsen's batch
    of 10 a step is ~40 kernel calls, and a Python wrapper per call cost ~10% of the step
    (measured with benchmarks/bench.py, config "nielsen").
    """

    supports_out = True
    matmul = staticmethod(np.matmul)
    sum_rows = staticmethod(_np_sum_rows)
    multiply = staticmethod(np.multiply)
    sqrt = staticmethod(np.sqrt)
    subtract = staticmethod(np.subtract)
    take_rows = staticmethod(_np_take_rows)
    # A 0-d array of the operand's dtype: NumPy converts a Python float on every operation,
    # which cost ~0.4 us per scalar multiply at Nielsen's batch 10 (about 10 per step).
    scalar = staticmethod(
        functools.lru_cache(maxsize=256)(lambda value, dtype: np.array(value, dtype))
    )
    vdot = staticmethod(np.vdot)
    copy = staticmethod(_np_copy)
    argmax_rows = staticmethod(
        _np_argmax_rows
    )  # flattens; one BLAS dot instead of a product and a sum
    tanh_ = staticmethod(_np_tanh_)
    exp_ = staticmethod(_np_exp_)
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


@functools.lru_cache(maxsize=64)
def _ones_cached(n: int, dtype: Any, device: Any, module: str) -> Any:
    if module == "torch":
        import torch

        return torch.ones(n, dtype=dtype, device=device)
    import cupy

    return cupy.ones(n, dtype=dtype)


def _ones_like_rows(x: Any, n: int) -> Any:
    """A vector of ``n`` ones of ``x``'s dtype on ``x``'s device, made once and kept (a
    CUDA graph reads the same one on every replay)."""
    module = type(x).__module__.split(".")[0]
    device = getattr(x, "device", None) if module == "torch" else x.device.id
    return _ones_cached(n, x.dtype, device, module)


@dataclass(frozen=True)
class TorchBackend(Backend):
    """PyTorch tensors (CPU or CUDA) through ``array_api_compat.torch``; no autograd.

    Host arrays are uploaded with one copy (``torch.from_numpy`` then ``as_tensor`` onto
    the device); the kernels call torch's ``out=`` and in-place (``*_``) functions.
    """

    supports_out = True

    def to_numpy(self, x: Any) -> np.ndarray:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
        return np.asarray(x)

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        import torch

        if isinstance(x, list | tuple):
            x = np.asarray(x)
        dt = None if dtype is None else self.dtype(dtype)
        if isinstance(x, np.ndarray):
            if not x.flags.writeable:  # from_numpy warns on read-only memory (a memory map)
                x = x.copy()
            x = torch.from_numpy(np.ascontiguousarray(x))
        return torch.as_tensor(x, dtype=dt, device=self.device)

    def dtype(self, name: Any) -> Any:
        import torch

        if isinstance(name, torch.dtype):
            return name
        return super().dtype(name)

    def matmul(self, a, b, out=None):
        import torch

        return a @ b if out is None else torch.matmul(a, b, out=out)

    def affine(self, x, W, b, out=None):
        import torch

        if b is None:
            return self.matmul(x, W, out=out)
        # one addmm: the bias is the product's epilogue, not a second pass over a
        # (scripts/gpu_check.py, kernel profile)
        return torch.addmm(b, x, W) if out is None else torch.addmm(b, x, W, out=out)

    def sum_rows(self, x, out=None):
        import torch

        # a row of ones times x: one GEMV, where a column-sum reduction kernel took several
        # times as long on an H200 at batch 8192 (scripts/gpu_check.py, kernel profile)
        ones = _ones_like_rows(x, x.shape[0])
        return torch.mv(x.T, ones) if out is None else torch.mv(x.T, ones, out=out)

    def multiply(self, a, b, out=None):
        import torch

        return a * b if out is None else torch.mul(a, b, out=out)

    def subtract(self, a, b, out=None):
        import torch

        return a - b if out is None else torch.sub(a, b, out=out)

    def sqrt(self, x, out=None):
        import torch

        return torch.sqrt(x) if out is None else torch.sqrt(x, out=out)

    def take_rows(self, x, idx, out=None):
        import torch

        if not isinstance(idx, torch.Tensor):  # host indices: one upload as int64
            idx = torch.as_tensor(np.asarray(idx, dtype=np.int64), device=x.device)
        if out is None:
            return torch.index_select(x, 0, idx)
        return torch.index_select(x, 0, idx, out=out)

    def copy(self, x, out=None):
        return x.clone() if out is None else out.copy_(x)

    def vdot(self, a, b):
        import torch

        # one dot kernel (cuBLAS on CUDA) instead of a product and a sum
        return torch.dot(a.reshape(-1), b.reshape(-1))

    def tanh_(self, x):
        return x.tanh_()

    def exp_(self, x):
        return x.exp_()

    def relu_(self, x):
        return x.clamp_(min=0)

    def relu_backward_(self, g, y, tmp=None):
        import torch

        # one kernel (torch's own ReLU backward) instead of a comparison and a product
        return torch.ops.aten.threshold_backward.grad_input(g, y, 0.0, grad_input=g)

    def softmax_cross_entropy(self, z, t, out, scale):
        """The fused softmax + cross-entropy of :mod:`backprop.losses` in 7 kernels instead
        of 14 (at batch 128 on a GPU a step is bound by its kernel count; scripts/gpu_check.py):

        ``log p = log_softmax(z)``; ``L = -(1/n) sum_ij t_ij log p_ij``;
        ``dL/dz = scale (p sum_j t_ij - t) / n``.
        """
        import torch

        n = z.shape[0]
        log_p = torch.log_softmax(z, 1) if out is None else torch.log_softmax(z, 1, out=out)
        value = torch.dot(t.reshape(-1), log_p.reshape(-1)) * (-1.0 / n)
        p = log_p.exp_()
        t_sum = torch.matmul(t, _ones_like_rows(t, t.shape[1]).reshape(-1, 1))  # GEMV
        g = torch.addcmul(t, p, t_sum, value=-1.0, out=p)  # t - p sum_j t_j
        g *= -scale / n
        return value, g


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

        # one GEMV instead of CuPy's column reduction (scripts/gpu_check.py, batch 8192)
        return cupy.matmul(_ones_like_rows(x, x.shape[0]), x, out=out)

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

    def copy(self, x, out=None):
        import cupy

        if out is None:
            return x.copy()
        cupy.copyto(out, x)
        return out

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
        _cupy_kernels().relu_backward(y, g)  # g = g where y > 0, else 0: one kernel
        return g

    def softmax_cross_entropy(self, z, t, out, scale):
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


def get_backend(backend: str | Any = "numpy", device: str | None = None) -> Backend:
    """Look up a backend by name, or wrap an array API namespace.

    Parameters
    ----------
    backend : {"numpy", "torch", "cupy", "array_api_strict"}, Backend, or module
        The array library. A module is taken as an array API namespace.
    device : {"cpu", "cuda"} or None
        Where arrays live. NumPy accepts only ``"cpu"``/``None``; CuPy only ``"cuda"``/``None``.
    """
    if isinstance(backend, Backend):
        return backend
    if not isinstance(backend, str):
        name = getattr(backend, "__name__", type(backend).__name__)
        return Backend(name=name, xp=backend, device=device)
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend runs on the CPU only; got device={device!r}")
        return NumpyBackend(name="numpy", xp=np)
    if backend == "torch":
        try:
            import array_api_compat.torch as xp
            import torch
        except ImportError as e:
            raise ImportError(
                "backend='torch' needs PyTorch and array-api-compat: pip install 'backprop[torch]'"
            ) from e
        try:
            dev = torch.device(device or "cpu")
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device must be 'cpu', 'cuda' or 'cuda:<index>' for the torch backend; "
                f"got {device!r}"
            ) from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device='cuda' was asked for, but PyTorch sees no CUDA GPU")
        return TorchBackend(name="torch", xp=xp, device=dev)
    if backend == "cupy":
        try:
            import array_api_compat.cupy as xp
        except ImportError as e:
            raise ImportError(
                "backend='cupy' needs CuPy and array-api-compat: pip install 'backprop[cupy]'"
            ) from e
        if device not in (None, "cuda"):
            raise ValueError(f"the cupy backend runs on CUDA only; got device={device!r}")
        return CupyBackend(name="cupy", xp=xp)
    if backend == "array_api_strict":
        try:
            import array_api_strict as xp
        except ImportError as e:
            raise ImportError(
                "backend='array_api_strict' needs array-api-strict: pip install array-api-strict"
            ) from e
        return Backend(name="array_api_strict", xp=xp)
    raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
