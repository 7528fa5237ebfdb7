"""PyTorch tensors, on the CPU or a CUDA device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._base import Backend

__all__ = ["TorchBackend", "open_torch"]


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

    def sum_rows(self, x, out=None):
        import torch

        return torch.sum(x, dim=0) if out is None else torch.sum(x, dim=0, out=out)

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

        return g.mul_(y > 0 if tmp is None else torch.gt(y, 0, out=tmp))


def open_torch(device: str | None = None) -> TorchBackend:
    """The torch backend on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:<index>"``)."""
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
            f"device must be 'cpu', 'cuda' or 'cuda:<index>' for the torch backend; got {device!r}"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for, but PyTorch sees no CUDA GPU")
    return TorchBackend(name="torch", xp=xp, device=dev)
