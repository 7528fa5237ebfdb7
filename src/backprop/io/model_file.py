"""Model files: save a model, load a model (from a model file or a checkpoint).

A model file is a safetensors file (:mod:`.safetensors`) whose tensors are the model's
parameters by name (``layers.0.W`` with shape ``(fan_in, fan_out)``, ``layers.0.b``, ...)
and whose metadata describe the model (:mod:`.metadata`).
"""

from __future__ import annotations

import os
from typing import Any

from .._validation import require_model
from ..network import MLP
from .checkpoint import load_checkpoint
from .metadata import (
    CHECKPOINT_FORMAT,
    MODEL_FORMAT,
    build_model,
    check_format,
    config_from_metadata,
    model_metadata,
    parameter_shapes,
    preprocessing_from_metadata,
)
from .safetensors import encode_safetensors, read_header, read_tensors, write_atomic

__all__ = ["save_model", "load_model"]


def save_model(path: str | os.PathLike, model: MLP) -> None:
    """Write ``model`` (config, parameters, preprocessing) to the safetensors file ``path``.

    The write is atomic (see :func:`write_atomic`). Parameters are stored as host arrays in
    the model's dtype, so a file saved from any backend loads on any other.

    Parameters
    ----------
    path : str or path-like
        Conventionally ending in ``.safetensors``.
    model : MLP

    Raises
    ------
    TypeError
        When ``model`` is not an :class:`MLP` (a path: the arguments swapped; a
        scikit-learn estimator saves itself with ``est.save(path)``).
    """
    require_model(model, "save_model's model")
    write_atomic(path, encode_safetensors(model.state_dict(), model_metadata(model)))


def load_model(
    path: str | os.PathLike, backend: str | Any = "numpy", device: str | None = None
) -> MLP:
    """Load a model saved by :func:`save_model` (or the model inside a checkpoint).

    Parameters
    ----------
    path : str or path-like
    backend, device
        Where the loaded model's arrays live; any backend reads any file.

    Returns
    -------
    MLP
        With ``model.preprocessing`` as saved (None if the saved model had none); it
        predicts bit-identically to the saved model
        (on rows scaled by ``model.preprocessing.transform``, as :meth:`MLP.predict` says).

    Raises
    ------
    ModelFileError
        For a missing, truncated, malformed, inconsistent or unsupported file.
    """
    header = read_header(path)
    fmt = check_format(header.metadata, path, (MODEL_FORMAT, CHECKPOINT_FORMAT))
    if fmt == CHECKPOINT_FORMAT:
        return load_checkpoint(path, backend=backend, device=device)[0].model
    config = config_from_metadata(header.metadata, path)
    preprocessing = preprocessing_from_metadata(header.metadata, path, config)
    tensors = read_tensors(header, parameter_shapes(config))
    model = build_model(config, tensors, backend, device)
    model.preprocessing = preprocessing
    return model
