"""Array backends: the one package that knows which array library is underneath.

The engine is written against the Python array API standard: every formula calls
``xp.<function>`` on a namespace ``xp`` that a backend supplies. NumPy is the default and
is used directly (NumPy 2 implements the standard). PyTorch tensors and CuPy arrays go
through ``array-api-compat``; any other standard namespace (``array_api_strict``, say) can
be passed as is and runs on the generic :class:`Backend`.

Beyond the standard, the engine's hot path asks the backend for a few kernels that write
into a reused buffer (``out``) and RETURN the result (see :mod:`._base`). Reusing buffers
instead of allocating temporaries each step is what ``benchmarks/bench.py`` measures.

One module per array library (``_numpy``, ``_torch``, ``_cupy``; ``_base`` is the generic
array API backend), each with the function that opens it; :data:`BACKENDS` is the registry
of names, :func:`get_backend` the look-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._registry import lookup
from ._base import Backend, open_array_api_strict
from ._cupy import CupyBackend, open_cupy
from ._numpy import NumpyBackend, open_numpy
from ._torch import TorchBackend, open_torch

__all__ = ["Backend", "NumpyBackend", "TorchBackend", "CupyBackend", "get_backend", "BACKENDS"]

#: Backend name -> the function that opens it on a device.
_OPENERS: dict[str, Callable[[str | None], Backend]] = {
    "numpy": open_numpy,
    "torch": open_torch,
    "cupy": open_cupy,
    "array_api_strict": open_array_api_strict,
}

#: The backends that :func:`get_backend` knows by name.
BACKENDS: tuple[str, ...] = tuple(_OPENERS)


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
        if not hasattr(backend, "astype") or not hasattr(backend, "matmul"):
            raise TypeError(  # torch itself is not one (array_api_compat.torch wraps it)
                f"backend must be one of {', '.join(BACKENDS)}, a Backend, or an array API "
                f"namespace (a module with astype, matmul...); got {name!r}"
            )
        return Backend(name=name, xp=backend, device=device)
    return lookup(_OPENERS, backend, "backend")(device)
