"""A model's config and preprocessing <-> the strings of a safetensors ``__metadata__``.

================  ==============================================================
key               value
================  ==============================================================
format            ``"backprop.model"`` (``"backprop.checkpoint"`` for checkpoints)
format_version    ``"2"`` (:data:`FORMAT_VERSION`); version 1 files are read too
config            JSON of :meth:`backprop.MLPConfig.to_dict` (architecture, dtype)
preprocessing     JSON of ``model.preprocessing.to_dict()``, or ``null``
backprop_version  the package version that wrote the file
================  ==============================================================

Version 2 added ``bias_init`` to the config and the optional ``target_mean`` and
``target_scale`` (standardised regression targets) to the preprocessing. A version 1 file
has neither: its biases started at zero (``bias_init = "zeros"``) and its outputs are in
the target's units, which is how it is read. A backprop that reads version 1 only refuses a
version 2 file with "upgrade backprop" rather than misreading it.

Reading never trusts the file: the config is rebuilt through explicit tables
(``MLPConfig.from_dict`` and the activation, loss and initialiser registries), every field's
type checked first; no pickle, no ``eval``, no import of a name read from the file.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .._limits import check_limit
from .._validation import is_finite_number, short_repr
from .._version import __version__
from ..activations import ACTIVATIONS
from ..initializers import BIAS_INITIALIZERS, INITIALIZERS
from ..losses import LOSSES
from ..network import MLP, MLPConfig, parameter_layout
from ..preprocessing import Preprocessing
from .safetensors import (
    NUMBERS_PER_OBJECT,
    ExpectedTensors,
    ModelFileError,
    is_json_int,
    one_line,
    parse_json,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "DTYPE_CODES",
    "ESTIMATOR_RECORD",
    "FORMAT_VERSION",
    "MODEL_FORMAT",
    "build_model",
    "check_format",
    "config_from_metadata",
    "model_metadata",
    "parameter_shapes",
    "parse_estimator_record",
    "preprocessing_from_metadata",
    "READABLE_VERSIONS",
]

FORMAT_VERSION = 2
#: The versions this backprop reads: 1 (before bias_init and target scaling) and 2.
READABLE_VERSIONS = (1, 2)
#: What a version 1 file meant by a config key it could not have: biases started at zero.
V1_CONFIG = {"bias_init": "zeros"}
#: The metadata key of a scikit-learn estimator's record (backprop.sklearn.persistence
#: writes it; the command line reads its names without scikit-learn).
ESTIMATOR_RECORD = "sklearn"


def parse_estimator_record(text: str, path: Any) -> Any:
    """The scikit-learn record's JSON, within a budget of objects and numbers (its loss
    curve holds one number an epoch)."""
    return parse_json(text, "the scikit-learn record", path, "epochs", extra=16)


MODEL_FORMAT = "backprop.model"
CHECKPOINT_FORMAT = "backprop.checkpoint"
DTYPE_CODES = {"float32": "F32", "float64": "F64"}


def model_metadata(model: MLP, kind: str = MODEL_FORMAT) -> dict[str, str]:
    """The ``__metadata__`` strings that describe ``model``: format, config, preprocessing."""
    pre = model.preprocessing
    if pre is not None and not isinstance(pre, Preprocessing):  # (a dict: AttributeError)
        raise TypeError(
            "cannot save the model: model.preprocessing must be a "
            f"backprop.preprocessing.Preprocessing or None; got {type(pre).__name__}"
        )
    problem = None if pre is None else preprocessing_mismatch(pre, model.config)
    if problem:
        raise ValueError(f"cannot save the model: {problem}")
    return {
        "format": kind,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(model.config.to_dict(), allow_nan=False),
        "preprocessing": json.dumps(None if pre is None else pre.to_dict(), allow_nan=False),
        "backprop_version": __version__,
    }


# ------------------------------------------------------------------- config registry
_CONFIG_NAMES = {
    "activation": ACTIVATIONS,
    "output_activation": ACTIVATIONS,
    "loss": LOSSES,
    "init": INITIALIZERS,
    "bias_init": BIAS_INITIALIZERS,
}


def check_format(metadata: dict[str, str], path: Any, formats: tuple[str, ...]) -> str:
    """The file's ``format`` (one of ``formats``) after checking its version is readable."""
    fmt = metadata.get("format")
    if fmt not in formats:
        said = "has no format" if fmt is None else f"says format {short_repr(fmt)}"
        kinds = {MODEL_FORMAT: "model file", CHECKPOINT_FORMAT: "checkpoint"}
        what = " or ".join(kinds.get(f, f) for f in formats)
        raise ModelFileError(
            f"{path}: not a backprop {what} (its metadata {said}; expected format "
            f"{' or '.join(formats)})"
        )
    version = metadata.get("format_version")
    if version is None:
        raise ModelFileError(f"{path}: the metadata has no format_version")
    digits = version.isascii() and version.isdigit() and len(version) <= 30
    if not (digits and version == str(int(version))):  # "02" and "1.0" are not versions
        raise ModelFileError(
            f"{path}: format_version {short_repr(version)} is not a version number (1, 2, ...)"
        )
    if int(version) not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{path}: format version {int(version)} is not supported; this backprop "
            f"({__version__}) reads versions {', '.join(map(str, READABLE_VERSIONS))}"
            + (" (upgrade backprop)" if int(version) > FORMAT_VERSION else "")
        )
    return fmt


def config_from_metadata(metadata: dict[str, str], path: Any) -> MLPConfig:
    """Rebuild the :class:`MLPConfig` in a file's metadata, checking every field's type and
    every name against the registries before anything is constructed."""
    if "config" not in metadata:
        raise ModelFileError(f"{path}: the metadata has no 'config'")
    # (each of these records is parsed within a budget of objects and numbers, as the header
    # is: a 30 MiB config of [{},{},...] took 755 MiB before its first check failed)
    d = parse_json(metadata["config"], "the model config", path, "layers")
    if not isinstance(d, dict):
        raise ModelFileError(f"{path}: the model config is not a JSON object")
    if metadata.get("format_version") == "1":
        d = {**V1_CONFIG, **d}
    known = set(MLPConfig.__dataclass_fields__)
    unknown = sorted(set(d) - known)
    if unknown:
        raise ModelFileError(
            f"{path}: the model config has unknown keys {short_repr(unknown)}; "
            f"expected some of {sorted(known)}"
        )
    for key in ("sizes", "activation", "output_activation", "loss", "dtype"):
        if key not in d:
            raise ModelFileError(f"{path}: the model config has no {key!r}")
    sizes = d["sizes"]
    if isinstance(sizes, list):  # before anything is built from them
        check_limit("layers", len(sizes), f"{path}: config sizes lists", ModelFileError)
    if not (
        isinstance(sizes, list)
        and len(sizes) >= 2
        and all(is_json_int(s) and 1 <= s < 2**63 for s in sizes)
    ):  # (a size of 4000 digits was compared with the tensors' shapes, and printed whole)
        raise ModelFileError(
            f"{path}: config sizes is {short_repr(sizes)}; expected a list of at least two "
            "positive 64-bit integers"
        )
    for key, table in _CONFIG_NAMES.items():
        if key in d and not (isinstance(d[key], str) and d[key] in table):
            raise ModelFileError(
                f"{path}: config {key} {short_repr(d[key])} is unknown; expected one of "
                f"{', '.join(table)}"
            )
    if "bias" in d and not isinstance(d["bias"], bool):
        raise ModelFileError(f"{path}: config bias is {short_repr(d['bias'])}; expected true/false")
    for key in ("init_scale", "dropout"):
        if key in d and not is_finite_number(d[key]):  # a JSON integer of 400 digits is not
            raise ModelFileError(f"{path}: config {key} is {short_repr(d[key])}; expected a number")
    if not (isinstance(d["dtype"], str) and d["dtype"] in DTYPE_CODES):
        raise ModelFileError(
            f"{path}: config dtype is {short_repr(d['dtype'])}; expected float32 or float64"
        )
    try:
        return MLPConfig.from_dict(d)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: invalid model config: {one_line(e)}") from None


def parameter_shapes(config: MLPConfig) -> ExpectedTensors:
    """``{name: (dtype code, shape)}`` of the parameters an MLP with ``config`` has."""
    code = DTYPE_CODES[config.dtype]
    return {name: (code, shape) for name, shape, _ in parameter_layout(config)}


def preprocessing_from_metadata(metadata: dict[str, str], path: Any, config: MLPConfig) -> Any:
    """The ``Preprocessing`` stored in a file (or None), rebuilt by its ``from_dict`` and
    checked against the model's input count."""
    # its numbers: a mean and a scale per input and per output, and a few more
    extra = 2 * (config.sizes[0] + config.sizes[-1]) // NUMBERS_PER_OBJECT
    text = metadata.get("preprocessing", "null")
    d = parse_json(text, "the preprocessing record", path, "layers", extra=extra)
    if d is None:
        return None
    if not isinstance(d, dict):
        raise ModelFileError(f"{path}: the preprocessing record is not a JSON object")
    try:
        pre = Preprocessing.from_dict(d)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise ModelFileError(f"{path}: invalid preprocessing record: {one_line(e)}") from None
    problem = preprocessing_mismatch(pre, config)
    if problem:
        raise ModelFileError(f"{path}: {problem}")
    return pre


def preprocessing_mismatch(pre: Any, config: MLPConfig) -> str | None:
    """What makes ``pre`` not fit a model of ``config`` (None when it fits): checked when a
    file is read, and before one is written (a file that its reader refuses is never made)."""
    if pre.n_features != config.sizes[0]:
        return (
            f"the preprocessing scales {pre.n_features} features but the model has "
            f"{config.sizes[0]} inputs"
        )
    n_out, classes = config.sizes[-1], pre.classes
    if classes is not None and len(classes) != n_out and not (len(classes) == 2 and n_out == 1):
        return (
            f"the preprocessing names {len(classes)} classes but the model has {n_out} "
            "outputs (one per class, or one output for two classes)"
        )
    return None


def build_model(
    config: MLPConfig,
    params: dict[str, np.ndarray],
    backend: str | Any = "numpy",
    device: str | None = None,
) -> MLP:
    """An MLP with architecture ``config`` holding exactly the (already validated) ``params``."""
    # The seeded initial weights are overwritten at once; a file's (valid but extreme)
    # init_scale may overflow them in float32, which must not warn.
    with np.errstate(over="ignore", invalid="ignore"):
        model = MLP.from_config(config, seed=0, backend=backend, device=device)
    model.load_state_dict(params)
    return model
