"""Array backends: the one module that knows which array library is underneath.

The engine is written against the Python array API standard: every formula calls
``xp.<function>`` on a namespace ``xp`` that this module supplies. NumPy is the
default and is used directly (NumPy 2 implements the standard). PyTorch tensors and
CuPy arrays go through ``array-api-compat``; any other standard namespace (such as
``array_api_strict``) can be passed as is.

Beyond the standard, the engine asks the backend for three things only:

- ``matmul(a, b, out)``: a matrix product written into a reused buffer where the
  library supports ``out=`` (NumPy, CuPy, PyTorch); a fresh array elsewhere;
- ``to_numpy(x)``: a host copy, for files, metrics and progress bars;
- ``allreduce`` hooks are layered on top by :mod:`backprop.distributed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Backend", "get_backend", "BACKENDS"]

BACKENDS = ("numpy", "torch", "cupy", "array_api_strict")


@dataclass(frozen=True)
class Backend:
    """An array library and a device.

    Attributes
    ----------
    name : str
        ``"numpy"``, ``"torch"``, ``"cupy"`` or the namespace's module name.
    xp : module
        An array API namespace.
    device : object or None
        The device arrays are created on (``None`` for the library default).
    supports_out : bool
        Whether ``xp.matmul`` and the elementwise functions accept ``out=``.
    """

    name: str
    xp: Any
    device: Any = None
    supports_out: bool = False

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Convert ``x`` (any array-like, on any device) to this backend."""
        if self.name not in ("numpy",) and isinstance(x, np.ndarray | np.generic | list | tuple):
            x = np.asarray(x)
        if dtype is not None:
            dtype = self.dtype(dtype)
        if self.device is None:
            return self.xp.asarray(x, dtype=dtype)
        return self.xp.asarray(x, dtype=dtype, device=self.device)

    def dtype(self, name: Any) -> Any:
        """The backend's dtype object for ``"float32"`` or ``"float64"``."""
        if not isinstance(name, str):
            name = np.dtype(name).name if isinstance(name, type | np.dtype) else str(name)
        name = name.rsplit(".", 1)[-1]
        if name not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {name!r}")
        return getattr(self.xp, name)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        if self.device is None:
            return self.xp.zeros(shape, dtype=self.dtype(dtype))
        return self.xp.zeros(shape, dtype=self.dtype(dtype), device=self.device)

    def matmul(self, a: Any, b: Any, out: Any = None) -> Any:
        """``a @ b``, written into ``out`` when the library can.

        NumPy with ``out=`` skips one allocation per product; on MNIST batch 128 that is
        measured in ``benchmarks/bench.py`` (see docs/performance.md).
        """
        if out is not None and self.supports_out:
            return self._native.matmul(a, b, out=out)
        return a @ b

    @property
    def _native(self) -> Any:
        if self.name == "numpy":
            return np
        if self.name == "torch":
            import torch

            return torch
        if self.name == "cupy":
            import cupy

            return cupy
        return self.xp

    def to_numpy(self, x: Any) -> np.ndarray:
        """A NumPy copy (or view, for NumPy) of ``x``, on the host."""
        if self.name == "numpy":
            return np.asarray(x)
        if self.name == "torch":
            return x.detach().cpu().numpy()
        if self.name == "cupy":
            return x.get()
        return np.asarray(x.__array__() if hasattr(x, "__array__") else np.from_dlpack(x))


def get_backend(backend: str | Any = "numpy", device: str | None = None) -> Backend:
    """Look up a backend by name, or wrap an array API namespace.

    Parameters
    ----------
    backend : {"numpy", "torch", "cupy", "array_api_strict"} or module
        The array library. A module is taken as an array API namespace.
    device : {"cpu", "cuda"} or None
        Where arrays live. NumPy accepts only ``"cpu"``/``None``.
    """
    if not isinstance(backend, str):
        name = getattr(backend, "__name__", type(backend).__name__)
        return Backend(name=name, xp=backend, device=device)
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend runs on the CPU only, got device={device!r}")
        return Backend(name="numpy", xp=np, device=None, supports_out=True)
    if backend == "torch":
        try:
            import array_api_compat.torch as xp
            import torch
        except ImportError as e:
            raise ImportError(
                "backend='torch' needs PyTorch and array-api-compat: "
                "pip install 'backprop[torch]'"
            ) from e
        dev = torch.device(device or "cpu")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device='cuda' was asked for, but PyTorch sees no CUDA GPU")
        return Backend(name="torch", xp=xp, device=dev, supports_out=True)
    if backend == "cupy":
        try:
            import array_api_compat.cupy as xp
        except ImportError as e:
            raise ImportError(
                "backend='cupy' needs CuPy and array-api-compat: pip install 'backprop[cupy]'"
            ) from e
        if device not in (None, "cuda"):
            raise ValueError(f"the cupy backend runs on CUDA only, got device={device!r}")
        return Backend(name="cupy", xp=xp, device=None, supports_out=True)
    if backend == "array_api_strict":
        try:
            import array_api_strict as xp
        except ImportError as e:
            raise ImportError(
                "backend='array_api_strict' needs array-api-strict: pip install array-api-strict"
            ) from e
        return Backend(name="array_api_strict", xp=xp, device=None)
    raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
