"""PyTorch tensors, on the CPU or a CUDA device."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._version import pip_extra
from ._base import Backend

if TYPE_CHECKING:
    import torch

__all__ = ["TorchBackend", "open_torch"]


@functools.lru_cache(maxsize=64)
def _ones(n: int, dtype: Any, device: Any) -> Any:
    """A vector of ``n`` ones, made once and kept (a CUDA graph reads the same one on every
    replay)."""
    import torch

    return torch.ones(n, dtype=dtype, device=device)


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

    def matmul(
        self, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        import torch

        return a @ b if out is None else torch.matmul(a, b, out=out)

    def affine(
        self,
        x: torch.Tensor,
        W: torch.Tensor,
        b: torch.Tensor | None,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        import torch

        if b is None:
            return self.matmul(x, W, out=out)
        # one addmm: the bias is the product's epilogue, not a second pass over a
        # (scripts/gpu_check.py, kernel profile)
        return torch.addmm(b, x, W) if out is None else torch.addmm(b, x, W, out=out)

    def sum_rows(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        import torch

        # a row of ones times x: one GEMV, where a column-sum reduction kernel took several
        # times as long on an H200 at batch 8192 (scripts/gpu_check.py, kernel profile)
        ones = _ones(x.shape[0], x.dtype, x.device)
        return torch.mv(x.T, ones) if out is None else torch.mv(x.T, ones, out=out)

    def multiply(
        self, a: torch.Tensor, b: torch.Tensor | float, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        import torch

        return a * b if out is None else torch.mul(a, b, out=out)

    def subtract(
        self, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        import torch

        return a - b if out is None else torch.sub(a, b, out=out)

    def sqrt(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        import torch

        return torch.sqrt(x) if out is None else torch.sqrt(x, out=out)

    def take_rows(
        self, x: torch.Tensor, idx: torch.Tensor | np.ndarray, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        import torch

        if not isinstance(idx, torch.Tensor):  # host indices: one upload as int64
            idx = torch.as_tensor(np.asarray(idx, dtype=np.int64), device=x.device)
        if out is None:
            return torch.index_select(x, 0, idx)
        return torch.index_select(x, 0, idx, out=out)

    def copy(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        return x.clone() if out is None else out.copy_(x)

    def vdot(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        import torch

        # one dot kernel (cuBLAS on CUDA) instead of a product and a sum
        return torch.dot(a.reshape(-1), b.reshape(-1))

    def tanh_(self, x: torch.Tensor) -> torch.Tensor:
        return x.tanh_()

    def exp_(self, x: torch.Tensor) -> torch.Tensor:
        return x.exp_()

    def sigmoid_(self, x: torch.Tensor, tmp: torch.Tensor | None = None) -> torch.Tensor:
        return x.sigmoid_()  # torch's own: 1 / (1 + e^-x), exact in relative terms

    def relu_(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp_(min=0)

    def relu_backward_(
        self, g: torch.Tensor, y: torch.Tensor, tmp: torch.Tensor | None = None
    ) -> torch.Tensor:
        import torch

        # one kernel (torch's own ReLU backward) instead of a comparison and a product
        return torch.ops.aten.threshold_backward.grad_input(g, y, 0.0, grad_input=g)

    def softmax_cross_entropy(
        self, z: torch.Tensor, t: torch.Tensor, out: torch.Tensor | None, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
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
        t_sum = torch.matmul(t, _ones(t.shape[1], t.dtype, t.device).reshape(-1, 1))  # GEMV
        g = torch.addcmul(t, p, t_sum, value=-1.0, out=p)  # t - p sum_j t_j
        g *= -scale / n
        return value, g


def open_torch(device: str | None = None) -> TorchBackend:
    """The torch backend on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:<index>"``)."""
    try:
        import array_api_compat.torch as xp
        import torch
    except ImportError as e:
        raise ImportError(
            f"backend='torch' needs PyTorch and array-api-compat: {pip_extra('torch')}"
        ) from e
    dev = device if isinstance(device, torch.device) else None
    if device is None or isinstance(device, str):  # not 0, which torch reads as cuda:0
        try:
            dev = torch.device(device or "cpu")
        except (RuntimeError, TypeError):
            pass
    if dev is None or dev.type not in ("cpu", "cuda"):  # mps, meta...: untested here
        raise ValueError(
            f"device must be 'cpu', 'cuda' or 'cuda:<index>' for the torch backend; got {device!r}"
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={device!r} was asked for, but PyTorch sees no CUDA GPU")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device={device!r} was asked for, but PyTorch sees "
                f"{torch.cuda.device_count()} CUDA GPU(s)"
            )
    return TorchBackend(name="torch", xp=xp, device=dev)
