"""Saving a fitted estimator in the project's safe model format, and loading it back.

The file is a model file (:mod:`backprop.io`): the network's weights and config as
:func:`backprop.io.save_model` writes them, plus one ``"sklearn"`` metadata entry, a JSON
record of the estimator's hyperparameters and fitted metadata::

    {"format": "backprop.sklearn", "format_version": 1, "estimator": "BackpropClassifier",
     "params": {...}, "fitted": {"n_features_in": 4, "classes": {...}, "loss_curve": [...]}}

Nothing is pickled; loading checks every field of the record and raises one
:class:`backprop.io.ModelFileError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..io import (
    ESTIMATOR_RECORD,
    ModelFileError,
    encode_safetensors,
    load_model,
    model_metadata,
    parse_estimator_record,
    read_header,
    write_atomic,
)
from ..network import MLP

__all__ = [
    "LABEL_DTYPES",
    "RECORD_FORMAT",
    "RECORD_KEY",
    "RECORD_VERSION",
    "class_weight_from_json",
    "estimator_from_record",
    "expect",
    "field",
    "is_real",
    "jsonable_params",
    "labels_from_json",
    "labels_to_json",
    "load_estimator",
    "save_estimator",
]

#: The metadata key of the estimator record (``backprop.io.ESTIMATOR_RECORD``, under the
#: name this module has always given it), its format name and version.
RECORD_KEY = ESTIMATOR_RECORD
RECORD_FORMAT = "backprop.sklearn"
RECORD_VERSION = 1


def save_estimator(est: Any, path: str | os.PathLike[str]) -> None:
    """Write the fitted ``est`` to ``path`` (atomically); see :meth:`BackpropClassifier.save`."""
    record = {
        "format": RECORD_FORMAT,
        "format_version": RECORD_VERSION,
        "estimator": type(est).__name__,
        "params": jsonable_params(est),
        "fitted": est._fitted_metadata(),
    }
    text = json.dumps(record, allow_nan=False)
    try:  # (JSON escapes it; a file written from it could not be: predict -o failed)
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"cannot save {path}: a name or label is not Unicode text (a lone surrogate, "
            f"{e.object[e.start]!r}, in {e.object[max(e.start - 40, 0) : e.end + 10]!r})"
        ) from None
    try:  # what load checks, before anything is written (a tampered classes_ was saved over
        # a good file, as one load then refused)
        estimator_from_record(type(est), json.loads(text), est.model_)
    except (ValueError, TypeError) as e:
        raise ValueError(f"cannot save {path}: {e}") from None
    metadata = model_metadata(est.model_)
    metadata[RECORD_KEY] = text
    write_atomic(path, encode_safetensors(est.model_.state_dict(), metadata))


def load_estimator(
    cls: type, path: str | os.PathLike[str], backend: str = "numpy", device: str | None = None
) -> Any:
    """An estimator of class ``cls`` read from ``path``; see :meth:`BackpropClassifier.load`."""
    text = read_header(path).metadata.get(RECORD_KEY)
    if text is None:
        raise ModelFileError(
            f"{path}: a backprop model file without a scikit-learn record; it was not "
            f"written by {cls.__name__}.save (read the network with backprop.io.load_model)"
        )
    record = parse_estimator_record(text, path)
    model = load_model(path, backend=backend, device=device)
    try:
        est = estimator_from_record(cls, record, model)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: {e}") from None
    est.backend, est.device = backend, device
    return est


def estimator_from_record(cls: type, record: Any, model: MLP) -> Any:
    """The estimator a checked record describes, holding ``model``."""
    expect(isinstance(record, dict), "the scikit-learn record is not a JSON object")
    expect(
        record.get("format") == RECORD_FORMAT and record.get("format_version") == RECORD_VERSION,
        f"the scikit-learn record is not format {RECORD_FORMAT!r} version {RECORD_VERSION}",
    )
    expect(
        record.get("estimator") == cls.__name__,
        f"it holds a {record.get('estimator')!r}; load it with that class, not {cls.__name__}",
    )
    params = _current_names(field(record, "params", dict))
    unknown = sorted(set(params) - set(cls._get_param_names()))
    expect(not unknown, f"unknown hyperparameters {unknown}")
    if isinstance(params.get("class_weight"), dict):
        params = {**params, "class_weight": class_weight_from_json(params["class_weight"])}
    if params.get("n_iter_no_change") == "inf":
        params = {**params, "n_iter_no_change": math.inf}
    if isinstance(params.get("hidden_layer_sizes"), list):
        params = {**params, "hidden_layer_sizes": tuple(params["hidden_layer_sizes"])}
    est = cls(**params)
    est._check_params()
    est._set_fitted_metadata(field(record, "fitted", dict), model)
    mismatch = est._network_mismatch(model.config)
    expect(
        mismatch is None,
        f"the record's {mismatch} (set_params after fit, before save; the network itself is "
        "intact: backprop.io.load_model reads it)",
    )
    est.model_ = model
    return est


#: What the engine optimizer names of the first records mean as scikit-learn's settings.
_OLD_OPTIMIZERS = {
    "sgd": {"solver": "sgd", "momentum": 0.0},
    "momentum": {"solver": "sgd", "nesterovs_momentum": False},
    "nesterov": {"solver": "sgd", "nesterovs_momentum": True},
}


def _current_names(params: dict[str, Any]) -> dict[str, Any]:
    """A record's hyperparameters under today's names: records written before the
    estimators took scikit-learn's ``solver`` hold the engine's ``optimizer``."""
    if "optimizer" not in params:
        return params
    params = dict(params)
    old = params.pop("optimizer")
    params.update(_OLD_OPTIMIZERS.get(old, {"solver": old}))
    return params


def expect(ok: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``ok`` (checks of a loaded record)."""
    if not ok:
        raise ValueError(message)


def is_real(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def field(d: dict[str, Any], key: str, kind: type) -> Any:
    """``d[key]``, checked to be a ``kind`` (a JSON int is not a bool)."""
    expect(key in d, f"the scikit-learn record has no {key!r}")
    v = d[key]
    expect(
        isinstance(v, kind) and not (kind is int and isinstance(v, bool)),
        f"{key} is {type(v).__name__} {v!r:.60}; expected {kind.__name__}",
    )
    return v


def jsonable_params(est: Any) -> dict[str, Any]:
    """The hyperparameters as JSON values; ``callbacks`` (code, not data) are left out."""
    out: dict[str, Any] = {}
    for key, value in est.get_params(deep=False).items():
        if key == "callbacks":
            continue
        if key == "random_state" and not (value is None or isinstance(value, numbers.Integral)):
            value = None  # a generator object is not data; the fitted weights are saved anyway
        if key == "hidden_layer_sizes":  # an int stays one, as get_params gave it
            hidden = [int(h) for h in est._hidden_sizes()]
            value = hidden[0] if isinstance(value, numbers.Integral) else hidden
        elif key == "class_weight" and isinstance(value, dict):
            value = {
                "labels": labels_to_json(np.asarray(list(value))),
                "weights": [float(w) for w in value.values()],
            }
        elif key == "dtype":  # np.float32 or np.dtype("float32") as given: the name
            value = est._dtype_name()
        elif isinstance(value, np.generic):
            value = value.item()
        if key == "n_iter_no_change" and value == math.inf:
            value = "inf"  # (JSON has no infinity)
        out[key] = value
    return out


#: The NumPy dtypes a record's labels may name, by kind (``labels_to_json``'s
#: ``"dtype"``): an allow-list, so that a file's text never reaches ``np.dtype`` unchecked.
LABEL_DTYPES: dict[str, tuple[str, ...]] = {
    "bool": ("bool",),
    "int": ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
    "float": ("float16", "float32", "float64"),
}

#: A NumPy dtype kind's name in the record, and the Python type of its values.
_KINDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "b": ("bool", bool),
    "i": ("int", int),
    "u": ("int", int),
    "f": ("float", float),
}


def labels_to_json(labels: np.ndarray) -> dict[str, Any]:
    """Class labels as ``{"kind": "int"|"float"|"bool"|"str", "dtype": ..., "values": [...]}``.

    ``"dtype"`` is the labels' NumPy dtype (``"uint8"``, ``"float32"``), for a bool, int or
    float dtype of :data:`LABEL_DTYPES` (others, such as ``longdouble``, and strings have
    none: they come back in their kind's default type)."""
    arr = np.asarray(labels)
    kind, python = _KINDS.get(arr.dtype.kind, (None, None))
    if kind is not None:
        record: dict[str, Any] = {"kind": kind}
        if arr.dtype.name in LABEL_DTYPES[kind]:
            record["dtype"] = arr.dtype.name
        record["values"] = [python(v) for v in arr.tolist()]  # (a longdouble's stay NumPy's)
        return record
    if all(isinstance(v, str) for v in arr.tolist()):
        return {"kind": "str", "values": [str(v) for v in arr]}
    raise ValueError(
        f"class labels of type {arr.dtype} cannot be saved; expected ints, floats, bools or strings"
    )


def labels_from_json(d: Any) -> np.ndarray:
    """Inverse of :func:`labels_to_json`, checking every value's type: the labels in their
    ``"dtype"`` (one of :data:`LABEL_DTYPES`, each value exactly representable in it), or,
    in records without one (written before it was kept), bool, int64 or float64. Strings
    come back as a NumPy string array, as scikit-learn's ``classes_`` hold them (even for
    pandas' object labels)."""
    kinds: dict[str, tuple[Callable[[Any], bool], Any]] = {
        "bool": (lambda v: isinstance(v, bool), bool),
        "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), np.int64),
        "float": (is_real, np.float64),
        "str": (lambda v: isinstance(v, str), str),
    }
    expect(
        isinstance(d, dict) and d.get("kind") in kinds and isinstance(d.get("values"), list),
        'labels must be {"kind": "bool"|"int"|"float"|"str", "values": [...]}',
    )
    kind, values = d["kind"], d["values"]
    is_kind, dtype = kinds[kind]
    expect(all(is_kind(v) for v in values), f"labels of kind {kind!r} hold other values")
    if "dtype" in d:
        allowed = LABEL_DTYPES.get(kind, ())
        expect(
            d["dtype"] in allowed,
            f"labels of kind {kind!r} have dtype {d['dtype']!r:.40}; expected one of "
            f"{', '.join(allowed) or 'none (the field is for bools and numbers)'}",
        )
        dtype = np.dtype(d["dtype"])
    if kind == "int":
        info = np.iinfo(dtype)
        expect(
            all(info.min <= v <= info.max for v in values),
            f"integer labels out of {np.dtype(dtype).name}'s range",
        )
    with np.errstate(over="ignore"):  # (a float beyond float16's or float32's: refused below)
        labels = np.asarray(values, dtype=dtype)
    expect(labels.tolist() == values, f"labels not exactly representable as {labels.dtype}")
    return labels


def class_weight_from_json(d: Any) -> dict[Any, float]:
    expect(isinstance(d, dict), "class_weight is malformed")
    labels = labels_from_json(d.get("labels")).tolist()
    weights = d.get("weights")
    expect(
        isinstance(weights, list) and len(weights) == len(labels) and all(map(is_real, weights)),
        "class_weight must give one number per label",
    )
    return {k: float(w) for k, w in zip(labels, weights, strict=True)}
