"""PyTorch-style state dicts: our MLP's weights as a ``torch.nn.Sequential`` of ``Linear``
layers expects them, and back.

The Sequential this naming matches puts, after every ``Linear``, its activation module
(``Identity`` included) and, after each hidden activation when the model has dropout, a
``Dropout``::

    no dropout:    Sequential(Linear, act, Linear, act, ..., Linear, out_act)
                   Linear i is module 2 i:  "0.weight", "0.bias", "2.weight", ...
    with dropout:  Sequential(Linear, act, Dropout, Linear, act, Dropout, ..., Linear, out_act)
                   Linear i is module 3 i:  "0.weight", "3.weight", ...

``torch.nn.Linear`` stores ``weight`` with shape ``(out_features, in_features)`` and
computes ``x weight^T + bias``; our ``layers.<i>.W`` has shape ``(fan_in, fan_out)`` and we
compute ``x W + b``, so ``weight = W^T``. The activations correspond as ``sigmoid: Sigmoid``,
``tanh: Tanh``, ``relu: ReLU``, ``leaky_relu: LeakyReLU(0.01)``, ``elu: ELU(1.0)``,
``gelu: GELU(approximate="tanh")``, ``softplus: Softplus``, ``identity: Identity``,
``softmax: Softmax(dim=1)``. The cross-entropy losses take logits: a model trained with them
has an ``Identity`` output, as ``torch.nn.CrossEntropyLoss`` expects.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._validation import host_array
from .._version import pip_extra
from ..activations import ELU_ALPHA, LEAKY_SLOPE
from ..layers import Dense
from ..network import MLP, MLPConfig, parameter_name
from .metadata import build_model
from .safetensors import encode_safetensors, read_header, read_tensors, write_atomic

__all__ = [
    "to_torch_module",
    "to_torch_state_arrays",
    "to_torch_state_dict",
    "from_torch_state_dict",
    "save_torch_state_dict",
    "load_torch_state_dict",
    "torch_module_index",
]


def torch_module_index(config: MLPConfig, layer: int) -> int:
    """The position of dense layer ``layer`` in the matching ``torch.nn.Sequential``:
    ``2 * layer``, or ``3 * layer`` when the model has dropout."""
    return (3 if config.dropout > 0 else 2) * layer


#: A dense layer's parameters under ``torch.nn.Linear``'s names, and whether the array is
#: transposed (``weight = W^T``).
_LINEAR = {"W": ("weight", True), "b": ("bias", False)}


def _torch_names(config: MLPConfig) -> dict[str, tuple[str, tuple[int, ...], bool]]:
    """``{torch name: (our name, torch shape, transposed)}`` for every parameter of ``config``."""
    out: dict[str, Any] = {}
    for i, (fan_in, fan_out) in enumerate(zip(config.sizes[:-1], config.sizes[1:], strict=True)):
        k = torch_module_index(config, i)
        for name, shape in Dense.parameter_shapes(fan_in, fan_out, config.bias).items():
            torch_name, transposed = _LINEAR[name]
            torch_shape = shape[::-1] if transposed else shape
            out[f"{k}.{torch_name}"] = (parameter_name(i, name), torch_shape, transposed)
    return out


def to_torch_state_arrays(model: MLP) -> dict[str, np.ndarray]:
    """The model's parameters under ``torch.nn.Linear`` names and layout, as NumPy arrays
    (no torch needed): what :func:`to_torch_state_dict` gives as tensors.

    Returns
    -------
    dict of str to numpy.ndarray
        ``"<k>.weight"`` of shape ``(out_features, in_features)`` (our ``W`` transposed,
        C-contiguous) and ``"<k>.bias"`` of shape ``(out_features,)``, in the model's dtype;
        ``k`` as :func:`torch_module_index` gives.
    """
    params = model.state_dict()
    return {
        torch_name: np.ascontiguousarray(params[ours].T if transposed else params[ours])
        for torch_name, (ours, _, transposed) in _torch_names(model.config).items()
    }


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"this needs PyTorch ({e}): {pip_extra('torch')}") from e
    return torch


def to_torch_state_dict(model: MLP) -> dict[str, Any]:
    """The model's parameters as a PyTorch state dict: ``torch_module.load_state_dict(
    to_torch_state_dict(model))`` loads them into the matching ``torch.nn.Sequential``
    (:func:`to_torch_module` builds it).

    Returns
    -------
    dict of str to torch.Tensor
        :func:`to_torch_state_arrays` as CPU tensors (``"<k>.weight"`` of shape
        ``(out_features, in_features)``, ``"<k>.bias"``), in the model's dtype.

    Raises
    ------
    ImportError
        Without PyTorch (the ``torch`` extra).
    """
    torch = _import_torch()
    return {k: torch.from_numpy(v) for k, v in to_torch_state_arrays(model).items()}


#: Our activations as the ``torch.nn`` modules that compute the same function.
_TORCH_ACTIVATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "relu": ("ReLU", {}),
    "leaky_relu": ("LeakyReLU", {"negative_slope": LEAKY_SLOPE}),
    "elu": ("ELU", {"alpha": ELU_ALPHA}),
    "gelu": ("GELU", {"approximate": "tanh"}),
    "softplus": ("Softplus", {}),
    "identity": ("Identity", {}),
    "softmax": ("Softmax", {"dim": 1}),
}


def to_torch_module(model: MLP) -> Any:
    """A ``torch.nn.Sequential`` that computes what ``model.forward`` does, holding a copy
    of its weights: ``Linear`` layers, each followed by its activation module (and, with
    dropout, each hidden one by ``Dropout(p)``), in the model's dtype, on the model's torch
    device (the CPU for other backends), in eval mode (``.train()`` turns dropout on).

    Like ``model.forward``, its outputs are logits for the cross-entropy losses, which is
    what ``torch.nn.CrossEntropyLoss`` takes.

    Raises
    ------
    ImportError
        Without PyTorch (the ``torch`` extra).
    """
    torch = _import_torch()
    nn, config = torch.nn, model.config
    dtype = torch.float32 if config.dtype == "float32" else torch.float64
    device = model.backend.device if model.backend.name == "torch" else None
    n = len(config.sizes) - 1
    modules = []
    for i, (fan_in, fan_out) in enumerate(zip(config.sizes[:-1], config.sizes[1:], strict=True)):
        modules.append(nn.Linear(fan_in, fan_out, bias=config.bias, dtype=dtype))
        op, kwargs = _TORCH_ACTIVATIONS[
            config.output_activation if i == n - 1 else config.activation
        ]
        modules.append(getattr(nn, op)(**kwargs))
        if i < n - 1 and config.dropout > 0:
            modules.append(nn.Dropout(config.dropout))
    net = nn.Sequential(*modules)
    net.load_state_dict(to_torch_state_dict(model))  # strict: every name is used
    return net.to(device).eval() if device is not None else net.eval()


def from_torch_state_dict(
    state: dict[str, Any],
    config: MLPConfig,
    backend: str | Any = "numpy",
    device: str | None = None,
) -> MLP:
    """An MLP with architecture ``config`` holding the weights of a torch-style state dict.

    Parameters
    ----------
    state : dict of str to array or torch.Tensor
        Exactly the names :func:`to_torch_state_dict` gives for ``config``, with
        ``weight`` of shape ``(out_features, in_features)``. Float values of any precision are
        cast to ``config.dtype``.
    config : MLPConfig
    backend, device
        Where the new model's arrays live.

    Raises
    ------
    ValueError
        For missing or unexpected names, wrong shapes, non-float or non-finite values.
    """
    names = _torch_names(config)
    missing = sorted(set(names) - set(state))
    extra = sorted(set(state) - set(names))
    if missing or extra:
        linear = [torch_module_index(config, i) for i in range(len(config.sizes) - 1)]
        raise ValueError(
            f"the state dict does not match a Sequential for sizes {list(config.sizes)} "
            f"(Linear layers at modules {linear}): missing {missing}, unexpected {extra}"
        )
    params = {}
    for torch_name, (ours, shape, transposed) in names.items():
        arr = host_array(state[torch_name], torch_name)
        if arr.shape != shape:
            raise ValueError(f"{torch_name} has shape {list(arr.shape)}; expected {list(shape)}")
        if arr.dtype.kind != "f":
            raise ValueError(f"{torch_name} has dtype {arr.dtype}; expected floating point")
        if not np.isfinite(arr).all():
            raise ValueError(f"{torch_name} holds NaN or inf; expected finite numbers")
        value = arr.T if transposed else arr
        params[ours] = np.ascontiguousarray(value, dtype=config.dtype)
    return build_model(config, params, backend, device)


def save_torch_state_dict(path: str | os.PathLike, model: MLP) -> None:
    """Write :func:`to_torch_state_arrays` as a safetensors file (atomically); no torch
    needed.

    ``safetensors.torch.load_file(path)`` gives a dict that the matching
    ``torch.nn.Sequential`` accepts with ``load_state_dict``.
    """
    write_atomic(path, encode_safetensors(to_torch_state_arrays(model), {"format": "pt"}))


def load_torch_state_dict(
    path: str | os.PathLike,
    config: MLPConfig,
    backend: str | Any = "numpy",
    device: str | None = None,
) -> MLP:
    """Read a torch-style safetensors state dict (float32 or float64) into an MLP.

    The header is checked as for model files (:func:`backprop.io.safetensors.read_header`), and the
    tensors must be exactly those :func:`to_torch_state_dict` names for ``config``.

    Raises
    ------
    backprop.io.safetensors.ModelFileError
        For every problem with the file.
    """
    header = read_header(path, kind="state dict file", metadata=False)  # torch writes none
    expected = {}
    for torch_name, (_, shape, _) in _torch_names(config).items():
        code = header.tensors[torch_name][0] if torch_name in header.tensors else "F32"
        expected[torch_name] = (code, shape)
    tensors = read_tensors(header, expected, kind="state dict file")  # names, shapes checked
    return from_torch_state_dict(tensors, config, backend, device)
