"""Files: model files, checkpoints, ONNX export and PyTorch state dicts, all safe to load.

=====================  ==================================================================
module                 holds
=====================  ==================================================================
``safetensors``        the safetensors format read and written safely (no model imports)
``metadata``           a model's config and preprocessing <-> the file's ``__metadata__``
``model_file``         :func:`save_model`, :func:`load_model`
``checkpoint``         crash-safe checkpoints and exact resume (old path ``backprop.checkpoint``)
``onnx_export``        :func:`export_onnx` (old path ``backprop.onnx_export``)
``torch_state``        PyTorch-style state dicts (old path ``backprop.interop``)
=====================  ==================================================================

A model file is one ``.safetensors`` file (the format of Hugging Face's ``safetensors``)::

    [8 bytes: header length n, little-endian u64][n bytes: JSON header][raw tensor data]

The tensors are the model's parameters by name (``layers.0.W`` with shape ``(fan_in,
fan_out)``, ``layers.0.b``, ...); the header's ``__metadata__`` describes the model
(:mod:`.metadata`). Loading never trusts the file: the header is checked before any tensor
is allocated, the tensors must be exactly those the config implies, and the model is
rebuilt through explicit tables: no pickle, no ``eval``, no import of a name read from the
file. Every problem raises one :class:`ModelFileError` naming what is wrong.
"""

from .metadata import (
    CHECKPOINT_FORMAT,
    DTYPE_CODES,
    ESTIMATOR_RECORD,
    FORMAT_VERSION,
    MODEL_FORMAT,
    build_model,
    check_format,
    config_from_metadata,
    model_metadata,
    parameter_shapes,
    parse_estimator_record,
    preprocessing_from_metadata,
)
from .model_file import load_model, save_model
from .safetensors import (
    DTYPES,
    MAX_HEADER_BYTES,
    ExpectedTensors,
    ModelFileError,
    SafetensorsHeader,
    WriteError,
    encode_safetensors,
    parse_json,
    read_header,
    read_tensors,
    write_atomic,
)

__all__ = [
    "ModelFileError",
    "FORMAT_VERSION",
    "MODEL_FORMAT",
    "save_model",
    "load_model",
    "read_header",
    "read_tensors",
    "write_atomic",
    "WriteError",
    # the pieces the checkpoint, ONNX, state-dict and scikit-learn writers share
    "CHECKPOINT_FORMAT",
    "DTYPES",
    "DTYPE_CODES",
    "ESTIMATOR_RECORD",
    "MAX_HEADER_BYTES",
    "ExpectedTensors",
    "SafetensorsHeader",
    "build_model",
    "check_format",
    "config_from_metadata",
    "encode_safetensors",
    "model_metadata",
    "parameter_shapes",
    "parse_estimator_record",
    "parse_json",
    "preprocessing_from_metadata",
]
