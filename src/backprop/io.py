"""Model files: safetensors weights with the model's JSON config, safe to load from anyone.

A model file is one ``.safetensors`` file (the format of Hugging Face's ``safetensors``)::

    [8 bytes: header length n, little-endian u64][n bytes: JSON header][raw tensor data]

The tensors are the model's parameters by name (``layers.0.W`` with shape ``(fan_in,
fan_out)``, ``layers.0.b``, ...). The header's ``__metadata__`` (strings only) holds:

================  ==============================================================
key               value
================  ==============================================================
format            ``"backprop.model"`` (``"backprop.checkpoint"`` for checkpoints)
format_version    ``"1"`` (:data:`FORMAT_VERSION`)
config            JSON of :meth:`backprop.MLPConfig.to_dict` (architecture, dtype)
preprocessing     JSON of ``model.preprocessing.to_dict()``, or ``null``
backprop_version  the package version that wrote the file
================  ==============================================================

Loading never trusts the file. :func:`read_header` parses the header itself and checks,
before any tensor is allocated, that the header length fits the file, that every tensor's
dtype, shape and byte range are consistent, inside the file, non-overlapping and cover the
data exactly, and that the tensors are exactly those the config implies. The model is then
rebuilt through explicit tables (``MLPConfig.from_dict`` and the activation, loss and
initialiser registries): no pickle, no ``eval``, no import of a name read from the file.
Every problem raises one :class:`ModelFileError` naming what is wrong.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .activations import ACTIVATIONS
from .initializers import INITIALIZERS
from .losses import LOSSES
from .network import MLP, MLPConfig

__all__ = [
    "ModelFileError",
    "FORMAT_VERSION",
    "MODEL_FORMAT",
    "save_model",
    "load_model",
    "read_header",
    "read_tensors",
    "write_atomic",
]

FORMAT_VERSION = 1
MODEL_FORMAT = "backprop.model"
CHECKPOINT_FORMAT = "backprop.checkpoint"

#: The largest JSON header read (bytes); safetensors itself allows 100 MB.
MAX_HEADER_BYTES = 100_000_000

#: safetensors dtype codes accepted, and their NumPy dtypes (little-endian, as the format says).
DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
DTYPE_CODES = {"float32": "F32", "float64": "F64"}

ExpectedTensors = dict[str, tuple[str, tuple[int, ...]]]


class ModelFileError(ValueError):
    """A model, checkpoint or weights file is unreadable, malformed or unsupported.

    The message is one line naming the file, what is wrong and what was expected.
    """


# --------------------------------------------------------------------------- writing
def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is always either the old or the new file.

    The bytes go to a temporary file in the same directory, which is flushed and fsynced,
    then renamed over ``path`` with :func:`os.replace` (atomic on POSIX and Windows), and
    the directory is fsynced so that the rename itself survives a power cut. A crash at any
    point leaves no half-written ``path``.
    """
    path = Path(path)
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def encode_safetensors(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """The bytes of a safetensors file holding ``tensors`` with ``metadata`` in its header."""
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)


def _version() -> str:
    from ._version import __version__

    return __version__


def model_metadata(model: MLP, kind: str = MODEL_FORMAT) -> dict[str, str]:
    """The ``__metadata__`` strings that describe ``model``: format, config, preprocessing."""
    pre = model.preprocessing
    return {
        "format": kind,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(model.config.to_dict(), allow_nan=False),
        "preprocessing": json.dumps(None if pre is None else pre.to_dict(), allow_nan=False),
        "backprop_version": _version(),
    }


def save_model(path: str | os.PathLike, model: MLP) -> None:
    """Write ``model`` (config, parameters, preprocessing) to the safetensors file ``path``.

    The write is atomic (see :func:`write_atomic`). Parameters are stored as host arrays in
    the model's dtype, so a file saved from any backend loads on any other.

    Parameters
    ----------
    path : str or path-like
        Conventionally ending in ``.safetensors``.
    model : MLP
    """
    write_atomic(path, encode_safetensors(model.state_dict(), model_metadata(model)))


# --------------------------------------------------------------------------- reading
def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json(text: str | bytes, what: str, path: Any) -> Any:
    """``json.loads`` that rejects duplicate keys and turns every failure into ModelFileError."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except RecursionError:
        raise ModelFileError(f"{path}: {what} is nested too deeply to be a backprop file") from None
    except (ValueError, TypeError) as e:  # JSONDecodeError, bad UTF-8, huge ints, duplicates
        raise ModelFileError(f"{path}: {what} is not valid JSON ({_short(e)})") from None


def _short(e: BaseException, limit: int = 200) -> str:
    text = str(e).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _describe(x: Any, limit: int = 60) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class SafetensorsHeader:
    """A checked safetensors header: the metadata and every tensor's dtype, shape, range.

    ``tensors[name] = (dtype code, shape, begin, end)`` with byte offsets relative to
    ``data_start``; the ranges are in the file, non-overlapping and cover the data exactly.
    """

    path: str
    metadata: dict[str, str]
    tensors: dict[str, tuple[str, tuple[int, ...], int, int]]
    data_start: int
    file_size: int


def read_header(path: str | os.PathLike, kind: str = "model file") -> SafetensorsHeader:
    """Parse and check a safetensors header without reading (or allocating) any tensor data.

    Checks the 8-byte header length against the file size and :data:`MAX_HEADER_BYTES`,
    that the header is a JSON object (no duplicate keys) with a ``__metadata__`` mapping of
    strings, and that each tensor's dtype, shape and ``data_offsets`` are consistent, in
    range, non-overlapping and cover the data exactly.

    Raises
    ------
    ModelFileError
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise ModelFileError(
                    f"{path}: the file is {size} bytes, too short to be a {kind} "
                    "(a safetensors file starts with an 8-byte header length)"
                )
            n = int.from_bytes(f.read(8), "little")
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise ModelFileError(
                    f"{path}: not a {kind}: its first 8 bytes declare a {n}-byte header but "
                    f"{size - 8} bytes follow (a truncated file, or not safetensors)"
                )
            header_bytes = f.read(n)
    except ModelFileError:
        raise
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a directory, not a {kind}") from None
    except OSError as e:
        raise ModelFileError(f"cannot read {kind} {path}: {e.strerror or e}") from None
    if len(header_bytes) != n:
        raise ModelFileError(f"{path}: the file changed size while being read")
    header = parse_json(header_bytes, "the safetensors header", path)
    infos = _check_header(header, size - 8 - n, path, kind)
    return SafetensorsHeader(str(path), header["__metadata__"], infos, 8 + n, size)


def read_tensors(
    header: SafetensorsHeader, expected: ExpectedTensors, kind: str = "model file"
) -> dict[str, np.ndarray]:
    """Read the tensors of a checked header, which must be exactly ``expected``.

    ``expected`` maps each name to ``(dtype code, shape)``; names, dtypes and shapes are
    compared with the header before any data is read, so absurd declared sizes are refused
    before they could be allocated.

    Returns
    -------
    dict of str to numpy.ndarray
        Fresh, writeable, native-endian, finite arrays with the declared shapes.

    Raises
    ------
    ModelFileError
    """
    path = header.path
    _check_expected(header.tensors, expected, path, kind)
    data_len = header.file_size - header.data_start
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size != header.file_size:
                raise ModelFileError(f"{path}: the file changed size while being read")
            f.seek(header.data_start)
            data = f.read(data_len)
    except ModelFileError:
        raise
    except OSError as e:
        raise ModelFileError(f"cannot read {kind} {path}: {e.strerror or e}") from None
    if len(data) != data_len:
        raise ModelFileError(f"{path}: the file changed size while being read")
    tensors = {}
    for name, (code, shape, begin, end) in header.tensors.items():
        dtype = DTYPES[code]
        count = (end - begin) // dtype.itemsize
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=begin).reshape(shape)
        arr = arr.astype(dtype.newbyteorder("="), copy=True)
        if not np.isfinite(arr).all():
            raise ModelFileError(
                f"{path}: tensor {name!r} holds NaN or inf; expected finite numbers"
            )
        tensors[name] = arr
    return tensors


def _check_header(
    header: Any, data_len: int, path: Any, kind: str
) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """Validate the parsed header; returns ``{name: (dtype code, shape, begin, end)}``."""
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the safetensors header is not a JSON object")
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
    ):
        raise ModelFileError(
            f"{path}: not a backprop {kind}: the header has no __metadata__ mapping of strings"
        )
    infos = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {_describe(name)}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ModelFileError(
                f"{where} must be described by exactly dtype, shape and data_offsets"
            )
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(code, str) or code not in DTYPES:
            raise ModelFileError(
                f"{where} has dtype {_describe(code)}; expected one of {', '.join(DTYPES)}"
            )
        if not (
            isinstance(shape, list)
            and len(shape) <= 8
            and all(_is_int(s) and s >= 0 for s in shape)
        ):
            raise ModelFileError(
                f"{where} has shape {_describe(shape)}; expected non-negative integers"
            )
        if not (
            isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
        ):
            raise ModelFileError(
                f"{where} has data_offsets {_describe(offsets)}; expected [begin, end]"
            )
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise ModelFileError(
                f"{where} claims bytes [{begin}, {end}) but the file holds {data_len} bytes of "
                "tensor data (a truncated file, or a header that lies about offsets)"
            )
        nbytes = math.prod(shape) * DTYPES[code].itemsize
        if end - begin != nbytes:
            raise ModelFileError(
                f"{where} has shape {shape} ({nbytes} bytes of {code}) but data_offsets span "
                f"{end - begin} bytes"
            )
        infos[name] = (code, tuple(shape), begin, end)
    cursor = 0
    for name, (_, _, begin, end) in sorted(infos.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if begin != cursor:
            problem = "overlaps the previous tensor" if begin < cursor else "leaves a gap before it"
            raise ModelFileError(f"{path}: tensor {_describe(name)} at byte {begin} {problem}")
        cursor = end
    if cursor != data_len:
        raise ModelFileError(
            f"{path}: the tensors cover {cursor} bytes but {data_len} bytes of data follow the "
            "header (trailing bytes, or a header that lies about offsets)"
        )
    return infos


def _check_expected(
    infos: dict[str, tuple], expected: ExpectedTensors, path: Any, kind: str
) -> None:
    missing = sorted(set(expected) - set(infos))
    extra = sorted(set(infos) - set(expected))
    if missing or extra:
        raise ModelFileError(
            f"{path}: the {kind}'s tensors do not match its config: "
            f"missing {_describe(missing, 120)}, unexpected {_describe(extra, 120)}"
        )
    for name, (code, shape) in expected.items():
        got_code, got_shape = infos[name][0], infos[name][1]
        if got_code != code or got_shape != shape:
            raise ModelFileError(
                f"{path}: tensor {name!r} is {got_code} with shape {list(got_shape)} but the "
                f"config implies {code} with shape {list(shape)}"
            )


# ------------------------------------------------------------------- config registry
_CONFIG_NAMES = {
    "activation": ACTIVATIONS,
    "output_activation": ACTIVATIONS,
    "loss": LOSSES,
    "init": INITIALIZERS,
}


def check_format(metadata: dict[str, str], path: Any, formats: tuple[str, ...]) -> str:
    """The file's ``format`` (one of ``formats``) after checking its version is readable."""
    fmt = metadata.get("format")
    if fmt not in formats:
        raise ModelFileError(
            f"{path}: not a backprop {' or '.join(formats)} file "
            f"(its metadata format is {_describe(fmt)})"
        )
    version = metadata.get("format_version", "")
    if not (version.isdigit() and len(version) < 10):
        raise ModelFileError(f"{path}: format_version {_describe(version)} is not an integer")
    if int(version) != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {int(version)} is not supported; this backprop "
            f"({_version()}) reads version {FORMAT_VERSION}"
            + (" (upgrade backprop)" if int(version) > FORMAT_VERSION else "")
        )
    return fmt


def config_from_metadata(metadata: dict[str, str], path: Any) -> MLPConfig:
    """Rebuild the :class:`MLPConfig` in a file's metadata, checking every field's type and
    every name against the registries before anything is constructed."""
    if "config" not in metadata:
        raise ModelFileError(f"{path}: the metadata has no 'config'")
    d = parse_json(metadata["config"], "the model config", path)
    if not isinstance(d, dict):
        raise ModelFileError(f"{path}: the model config is not a JSON object")
    known = set(MLPConfig.__dataclass_fields__)
    unknown = sorted(set(d) - known)
    if unknown:
        raise ModelFileError(
            f"{path}: the model config has unknown keys {_describe(unknown)}; "
            f"expected some of {sorted(known)}"
        )
    for key in ("sizes", "activation", "output_activation", "loss", "dtype"):
        if key not in d:
            raise ModelFileError(f"{path}: the model config has no {key!r}")
    sizes = d["sizes"]
    if not (
        isinstance(sizes, list) and len(sizes) >= 2 and all(_is_int(s) and s >= 1 for s in sizes)
    ):
        raise ModelFileError(
            f"{path}: config sizes is {_describe(sizes)}; expected a list of at least two "
            "positive integers"
        )
    for key, table in _CONFIG_NAMES.items():
        if key in d and not (isinstance(d[key], str) and d[key] in table):
            raise ModelFileError(
                f"{path}: config {key} {_describe(d[key])} is unknown; expected one of "
                f"{', '.join(table)}"
            )
    if "bias" in d and not isinstance(d["bias"], bool):
        raise ModelFileError(f"{path}: config bias is {_describe(d['bias'])}; expected true/false")
    for key in ("init_scale", "dropout"):
        if key in d and not (
            isinstance(d[key], int | float)
            and not isinstance(d[key], bool)
            and math.isfinite(d[key])
        ):
            raise ModelFileError(f"{path}: config {key} is {_describe(d[key])}; expected a number")
    if not (isinstance(d["dtype"], str) and d["dtype"] in DTYPE_CODES):
        raise ModelFileError(
            f"{path}: config dtype is {_describe(d['dtype'])}; expected float32 or float64"
        )
    try:
        return MLPConfig.from_dict(d)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: invalid model config: {_short(e)}") from None


def parameter_shapes(config: MLPConfig) -> ExpectedTensors:
    """``{name: (dtype code, shape)}`` of the parameters an MLP with ``config`` has."""
    code = DTYPE_CODES[config.dtype]
    out: ExpectedTensors = {}
    for i, (fan_in, fan_out) in enumerate(zip(config.sizes[:-1], config.sizes[1:], strict=True)):
        out[f"layers.{i}.W"] = (code, (fan_in, fan_out))
        if config.bias:
            out[f"layers.{i}.b"] = (code, (fan_out,))
    return out


def preprocessing_from_metadata(metadata: dict[str, str], path: Any, config: MLPConfig) -> Any:
    """The ``Preprocessing`` stored in a file (or None), rebuilt by its ``from_dict`` and
    checked against the model's input count."""
    d = parse_json(metadata.get("preprocessing", "null"), "the preprocessing record", path)
    if d is None:
        return None
    if not isinstance(d, dict):
        raise ModelFileError(f"{path}: the preprocessing record is not a JSON object")
    try:
        from .preprocessing import Preprocessing
    except ImportError as e:
        raise ModelFileError(
            f"{path}: the model carries preprocessing but backprop.preprocessing cannot be "
            f"imported ({e})"
        ) from None
    try:
        pre = Preprocessing.from_dict(d)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise ModelFileError(f"{path}: invalid preprocessing record: {_short(e)}") from None
    if pre.n_features != config.sizes[0]:
        raise ModelFileError(
            f"{path}: the preprocessing scales {pre.n_features} features but the model has "
            f"{config.sizes[0]} inputs"
        )
    return pre


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
        With ``model.preprocessing`` set; it predicts bit-identically to the saved model.

    Raises
    ------
    ModelFileError
        For a missing, truncated, malformed, inconsistent or unsupported file.
    """
    header = read_header(path)
    fmt = check_format(header.metadata, path, (MODEL_FORMAT, CHECKPOINT_FORMAT))
    if fmt == CHECKPOINT_FORMAT:
        from .checkpoint import load_checkpoint

        return load_checkpoint(path, backend=backend, device=device)[0].model
    config = config_from_metadata(header.metadata, path)
    preprocessing = preprocessing_from_metadata(header.metadata, path, config)
    tensors = read_tensors(header, parameter_shapes(config))
    model = build_model(config, tensors, backend, device)
    model.preprocessing = preprocessing
    return model
