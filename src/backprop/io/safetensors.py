"""safetensors files read and written safely, with no knowledge of models.

A safetensors file (the format of Hugging Face's ``safetensors``)::

    [8 bytes: header length n, little-endian u64][n bytes: JSON header][raw tensor data]

:func:`read_header` parses the header itself and checks, before any tensor is allocated,
that the header length fits the file, that every tensor's dtype, shape and byte range are
consistent, inside the file, non-overlapping and cover the data exactly; :func:`read_tensors`
then reads exactly the tensors a caller expects. Every problem raises one
:class:`ModelFileError` naming the file and what is wrong. :func:`write_atomic` writes any
file so that a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._limits import LIMITS, check_limit, limit, new_file_mode, open_regular
from .._validation import as_path, check_finite, cut, short_repr, unique_keys

__all__ = [
    "DTYPES",
    "MAX_HEADER_BYTES",
    "ExpectedTensors",
    "ModelFileError",
    "SafetensorsHeader",
    "WriteError",
    "descriptor_of",
    "encode_safetensors",
    "is_json_int",
    "one_line",
    "parse_json",
    "read_header",
    "read_tensors",
    "write_atomic",
]

#: The largest JSON header read by default (bytes): 32 MiB, which bounds what parsing it
#: may take (safetensors itself allows 100 MB; a checkpoint of 100000 epochs needs about
#: 20 MB). The limit in force is ``backprop._limits.limit("header_bytes")``, raised with
#: the environment variable BACKPROP_MAX_HEADER_BYTES.
MAX_HEADER_BYTES = LIMITS["header_bytes"].default

#: safetensors dtype codes accepted, and their NumPy dtypes (little-endian, as the format says).
DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
DTYPE_CODES = {"float32": "F32", "float64": "F64"}

ExpectedTensors = dict[str, tuple[str, tuple[int, ...]]]


class ModelFileError(ValueError):
    """A model, checkpoint or weights file is unreadable, malformed or unsupported.

    The message is one line naming the file, what is wrong and what was expected.
    """


# --------------------------------------------------------------------------- writing
class WriteError(OSError):
    """Writing a file failed (disk full, read-only, no permission...): names the file.

    ``str(e)`` is ``"cannot write runs/a/model.safetensors: No space left on device"``;
    ``e.errno`` and ``e.filename`` are those of the failure.
    """

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def write_atomic(path: str | os.PathLike, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` so that ``path`` is always either the old or the new file.

    The bytes go to a temporary file in the same directory, created exclusively under a
    fresh random name (``O_EXCL``: a planted file or symlink there is never followed),
    flushed and fsynced, then renamed over ``path`` with :func:`os.replace` (atomic on
    POSIX and Windows; a symlink at ``path`` is replaced, not followed), and the directory
    is fsynced so that the rename itself survives a power cut. A crash or a failed write at
    any point leaves no half-written ``path`` and no temporary file. A file replaced keeps
    its permission bits; a new one gets ``0666`` less the umask, as ``open`` would give it.
    A device, FIFO or socket at ``path``, or a
    symlink to one (``/dev/null``, ``/dev/stdout``), is refused: renaming over it would
    replace the device itself with a regular file.

    Parameters
    ----------
    path : str or path-like
    data : bytes
    exclusive : bool
        Claim ``path``: fail with :class:`FileExistsError` if anything (a file, a symlink)
        is there already. The complete file appears at once (a hard link of the temporary
        file), so two processes claiming one path cannot both succeed.

    Raises
    ------
    WriteError
        An OSError naming ``path`` (disk full, read-only folder, a device at ``path``...).
    FileExistsError
        ``exclusive`` and ``path`` exists.
    """
    path = Path(as_path(path))
    directory = path.parent
    mode = new_file_mode() if exclusive else _replaced_mode(path)
    tmp = fd = None
    try:
        # the name is chosen before the file is made, so that a Ctrl-C at any instant
        # leaves nothing behind (inside mkstemp, between its open and its return, the
        # name was lost with the exception, and the file stayed)
        stem = _temporary_stem(path)
        for _ in range(100):
            tmp = os.path.join(directory, f".{stem}.{secrets.token_hex(6)}.tmp")
            try:
                fd = _open_new(tmp)
                break
            except FileExistsError:
                tmp = None
        else:
            raise WriteError(errno.EEXIST, "no free temporary name beside it", str(path))
        f = os.fdopen(fd, "wb")
        fd = None  # (the file object closes it now)
        with f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if exclusive:
            _link_new(tmp, path)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException as e:
        if fd is not None:  # made, not yet handed to a file object (a Ctrl-C between)
            with contextlib.suppress(OSError):
                os.close(fd)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(e, OSError) and not isinstance(e, FileExistsError | WriteError):
            raise WriteError(e.errno, e.strerror or str(e), str(path)) from None
        raise
    _fsync_dir(directory)


#: What a temporary name adds to its file's name: ``.`` before, ``.<12 hex>.tmp`` after.
_TEMPORARY_EXTRA = len(".") + len(".0123456789ab.tmp")


def _temporary_stem(path: Path) -> str:
    """``path``'s name, cut (by whole characters) so that its temporary name fits the
    folder's limit on a name's bytes: a 251-byte name, which the folder takes, was refused
    as 'File name too long' for its 269-byte temporary. The random part alone keeps the
    temporary name unique."""
    try:
        name_max = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or no folder yet
        name_max = 255
    if name_max <= 0:  # (no limit reported)
        name_max = 255
    stem = path.name
    while stem and len(os.fsencode(stem)) > name_max - _TEMPORARY_EXTRA:
        stem = stem[:-1]
    return stem


#: A temporary file: created here and now, never through a link, binary on Windows.
_NEW_FILE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
)


def _open_new(path: str) -> int:
    """A new file at ``path`` (mode 0600 until written), open for writing; FileExistsError
    when anything, a file or a link, is there."""
    return os.open(path, _NEW_FILE_FLAGS, 0o600)


_DESCRIPTOR = re.compile(r"/(?:proc/(self|thread-self|\d+)(?:/task/\d+)?|dev)/fd/(\d+)")
_STANDARD = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def descriptor_of(path: str | os.PathLike) -> int | None:
    """The open file descriptor ``path`` names (``/dev/stdout``, ``/dev/fd/3``,
    ``/proc/self/fd/3``), also through symlinks to those, or None for a path of its own.
    (The file a descriptor is open on may be a regular file, which ``os.stat`` cannot tell
    from a path of its own: a rename over ``/dev/stdout`` replaced the link in /dev.)"""
    p = os.path.abspath(os.fspath(path))
    for _ in range(40):  # (the kernel's own bound on a chain of links)
        # its folder as the kernel finds it: through linked folders (a link to /dev), '//'
        # and '..' after a link (/proc/thread-self/fd/1 is /proc/<pid>/task/<tid>/fd/1)
        p = os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))
        if p in _STANDARD:
            return _STANDARD[p]
        match = _DESCRIPTOR.fullmatch(p)
        if match and match.group(1) in (None, "self", "thread-self", str(os.getpid())):
            return int(match.group(2))
        try:
            target = os.readlink(p)
        except OSError:  # not a link (or not there): a path of its own
            return None
        p = os.path.normpath(os.path.join(os.path.dirname(p), target))
    return None


def _replaced_mode(path: Path) -> int:
    """The permission bits the new file at ``path`` gets: those of the regular file it
    replaces, else :func:`new_file_mode`; WriteError for a special file there, a symlink to
    one, or a path that names an open descriptor (``/dev/stdout``)."""
    fd = descriptor_of(path)
    if fd is not None:
        raise WriteError(
            errno.EINVAL,
            f"it names the open file descriptor {fd}, not a file (expected a file's path)",
            str(path),
        )
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            info = os.stat(path)  # what it points to (a dangling link: just replaced)
            if stat.S_ISREG(info.st_mode):
                return new_file_mode()  # the link is replaced, its target left as it is
    except OSError:
        return new_file_mode()  # nothing there (or a loop): the rename says what is wrong
    if stat.S_ISREG(info.st_mode):
        return stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        return new_file_mode()  # os.replace: 'Is a directory'
    kind = (
        "a character device" if stat.S_ISCHR(info.st_mode)
        else "a block device" if stat.S_ISBLK(info.st_mode)
        else "a FIFO" if stat.S_ISFIFO(info.st_mode)
        else "a socket"
    )  # fmt: skip
    raise WriteError(
        errno.EINVAL, f"it is {kind}, not a regular file (expected a file's path)", str(path)
    )


def _link_new(tmp: str, path: Path) -> None:
    """``path`` made a new name of the complete file ``tmp``, or FileExistsError.

    Where the file system has no hard links (vfat), ``path`` is created exclusively and the
    bytes copied; a copy that fails (disk full) removes the ``path`` it created: a 0-byte
    ``config.toml`` left there refused that ``--out`` for good ('already holds a run that
    has no checkpoint')."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: create exclusively, then copy
        with open(tmp, "rb") as src:
            data = src.read()
        f = open(path, "xb")  # (FileExistsError: another claim was first; nothing to undo)
        try:
            with f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise


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
    """The bytes of a safetensors file holding ``tensors`` with ``metadata`` in its header.

    The bytes are a function of the arguments alone: the header lists ``__metadata__`` (its
    keys sorted) and then the tensors, float64 before float32 (so every tensor's data start
    at a multiple of its element size) and by name within each, the data follow in that
    order, and the header is padded with spaces to a multiple of 8 bytes, as the
    safetensors library pads it. (That library's own writer orders the metadata by a
    per-process hash: two runs with the same weights wrote different files.)

    Parameters
    ----------
    tensors : dict of str to float32 or float64 array
    metadata : dict of str to str
    """
    codes = {np.dtype(v): k for k, v in DTYPES.items()}
    header: dict[str, Any] = {"__metadata__": {k: metadata[k] for k in sorted(metadata)}}
    chunks, offset = [], 0
    arrays = {name: np.asarray(value) for name, value in tensors.items()}
    for name in sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n)):
        arr = arrays[name]
        code = codes.get(arr.dtype.newbyteorder("<"))
        if code is None:
            raise ValueError(f"tensor {name!r} has dtype {arr.dtype}; expected float32 or float64")
        check_finite(arr, f"tensor {name!r}")  # reading refuses such a file: never written
        data = np.ascontiguousarray(arr, dtype=DTYPES[code]).tobytes()
        header[name] = {
            "dtype": code,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


# --------------------------------------------------------------------------- reading
class _Objects:
    """An ``object_pairs_hook`` for :func:`json.loads` that refuses duplicate keys and
    stops the parse once more than ``limit`` objects are made (each inner object is handed
    to the hook as soon as it is complete, so the parse stops early)."""

    def __init__(self, limit: int | None) -> None:
        self.limit, self.count = limit, 0

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        self.count += 1
        if self.limit is not None and self.count > self.limit:
            raise _TooManyObjects
        return unique_keys(pairs)


class _TooManyObjects(Exception):
    pass


#: Per object of the limit, how many JSON arrays and numbers a header, training state or
#: fit config may hold: a tensor's entry has 2 arrays and at most 10 numbers (8 dimensions,
#: 2 offsets), an epoch's history row a few numbers per column. Arrays and numbers are not
#: objects, so without these a 32 MiB header of ``[1.5,1.5,...]`` or ``[],[],...`` took
#: 0.4-0.9 GB before its first check failed.
ARRAYS_PER_OBJECT, NUMBERS_PER_OBJECT = 4, 64
_MAX_DIGITS = 4000  # Python's int() refuses 4,300 digits, naming a setting of its own


class _Numbers:
    """``parse_int`` and ``parse_float`` hooks that count the numbers, stopping the parse
    past ``limit`` (every number of the text is handed to one of them)."""

    def __init__(self, limit: int | None) -> None:
        self.limit, self.count = limit, 0

    def _one(self) -> None:
        self.count += 1
        if self.limit is not None and self.count > self.limit:
            raise _TooManyObjects("JSON numbers")

    def int(self, text: str) -> int:
        self._one()
        if len(text) > _MAX_DIGITS:
            raise ValueError(f"an integer of {len(text)} digits")
        return int(text)

    def float(self, text: str) -> float:
        self._one()
        return float(text)


def parse_json(
    text: str | bytes, what: str, path: Any, limit_name: str | None = None, extra: int = 0
) -> Any:
    """``json.loads`` that rejects duplicate keys and turns every failure into ModelFileError.

    With ``limit_name`` (``"tensors"``, ``"epochs"``: a limit of
    :data:`backprop._limits.LIMITS` on things that are each one JSON object), the parse
    stops as soon as it has made more objects than that limit plus ``extra`` (the
    objects around them), before a text of a million tiny objects could take a gigabyte.
    """
    budget = None if limit_name is None else limit(limit_name) + extra
    numbers = _Numbers(None if budget is None else budget * NUMBERS_PER_OBJECT)
    # '[' inside strings counts too: a bound, never fewer than the arrays there are
    if budget is not None and text.count(b"[" if isinstance(text, bytes) else "[") > (
        budget * ARRAYS_PER_OBJECT
    ):
        raise _too_many(limit_name, what, path, "JSON arrays")
    try:
        return json.loads(
            text,
            object_pairs_hook=_Objects(budget),
            parse_int=numbers.int,
            parse_float=numbers.float,
        )
    except _TooManyObjects as e:
        raise _too_many(limit_name, what, path, e.args[0] if e.args else None) from None
    except RecursionError:
        raise ModelFileError(f"{path}: {what} is nested too deeply to be a backprop file") from None
    except (ValueError, TypeError) as e:  # JSONDecodeError, bad UTF-8, huge ints, duplicates
        raise ModelFileError(f"{path}: {what} is not valid JSON ({one_line(e)})") from None


def _too_many(limit_name: str | None, what: str, path: Any, things: str | None) -> ModelFileError:
    """The error for a text past its limit: of objects (``things`` None), or of the JSON
    arrays or numbers that many objects could need."""
    lim = LIMITS[str(limit_name)]
    n = lim.value()
    held = (
        f"more than {n} {lim.what}" if things is None else f"more {things} than {n} {lim.what} need"
    )
    return ModelFileError(
        f"{path}: {what} holds {held}; the limit is {n} {lim.what} (set {lim.env} to raise it)"
    )


def one_line(e: BaseException, limit: int = 200) -> str:
    """An exception's message on one line, cut at ``limit`` characters."""
    return cut(str(e).replace("\n", " "), limit)


def is_json_int(x: Any) -> bool:
    """Whether a parsed JSON value is an integer (``true`` is not)."""
    return isinstance(x, int) and not isinstance(x, bool)


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


def read_header(
    path: str | os.PathLike, kind: str = "model file", metadata: bool = True
) -> SafetensorsHeader:
    """Parse and check a safetensors header without reading (or allocating) any tensor data.

    Refuses a path that is not a regular file by its type; checks the 8-byte header length
    against the file size and the limit ``header_bytes`` (:mod:`backprop._limits`),
    that the header is a JSON object (no duplicate keys) with a ``__metadata__`` mapping of
    strings (optional, as in safetensors itself, where ``metadata`` is False), and that
    each tensor's dtype, shape and ``data_offsets`` are consistent, in range,
    non-overlapping and cover the data exactly.

    Raises
    ------
    ModelFileError
    """
    path = as_path(path)
    with open_regular(path, kind, ModelFileError) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise ModelFileError(
                    f"{path}: the file is {size} bytes, too short to be a {kind} "
                    "(a safetensors file starts with an 8-byte header length)"
                )
            head = f.read(8)
            n = int.from_bytes(head, "little")
            if n > size - 8 and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
                # (a CSV file given for the model: it said its first 8 bytes "declare a
                # 3184377195395165281-byte header")
                raise ModelFileError(
                    f"{path}: not a {kind}: it starts with text "
                    f"({head.decode('ascii')!r}), where a safetensors file starts with the "
                    "8-byte length of its header"
                )
            if n > size - 8:
                raise ModelFileError(
                    f"{path}: not a {kind}: its first 8 bytes declare a {n}-byte header but "
                    f"{size - 8} bytes follow (a truncated file, or not safetensors)"
                )
            check_limit(
                "header_bytes", n, f"{path}: the {kind}'s safetensors header is", ModelFileError
            )
            header_bytes = f.read(n)
        except OSError as e:
            raise ModelFileError(f"cannot read {kind} {path}: {e.strerror or e}") from None
    if len(header_bytes) != n:
        raise ModelFileError(f"{path}: the file changed size while being read")
    # every tensor is one JSON object: parsing stops past the limit, before a header of a
    # million tiny tensors could take a gigabyte
    # (+ 2: the header itself and its __metadata__)
    header = parse_json(header_bytes, "the safetensors header", path, "tensors", extra=2)
    if not metadata and isinstance(header, dict):
        header.setdefault("__metadata__", {})
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
    with open_regular(path, kind, ModelFileError) as f:
        try:
            if os.fstat(f.fileno()).st_size != header.file_size:
                raise ModelFileError(f"{path}: the file changed size while being read")
            f.seek(header.data_start)
            data = f.read(data_len)
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
        where = f"{path}: tensor {short_repr(name)}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ModelFileError(
                f"{where} must be described by exactly dtype, shape and data_offsets"
            )
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(code, str) or code not in DTYPES:
            raise ModelFileError(
                f"{where} has dtype {short_repr(code)}; expected one of {', '.join(DTYPES)}"
            )
        # sizes and offsets are safetensors' 64-bit integers: a dimension of 4000 digits made
        # the byte count too long for Python to print ('Exceeds the limit (4300 digits)')
        if not (
            isinstance(shape, list)
            and len(shape) <= 8
            and all(is_json_int(s) and 0 <= s < 2**64 for s in shape)
        ):
            raise ModelFileError(
                f"{where} has shape {short_repr(shape)}; expected non-negative 64-bit integers"
            )
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(is_json_int(o) and 0 <= o < 2**64 for o in offsets)
        ):
            raise ModelFileError(
                f"{where} has data_offsets {short_repr(offsets)}; expected [begin, end], "
                "non-negative 64-bit integers"
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
            raise ModelFileError(f"{path}: tensor {short_repr(name)} at byte {begin} {problem}")
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
            f"missing {short_repr(missing, 120)}, unexpected {short_repr(extra, 120)}"
        )
    for name, (code, shape) in expected.items():
        got_code, got_shape = infos[name][0], infos[name][1]
        if got_code != code or got_shape != shape:
            raise ModelFileError(
                f"{path}: tensor {name!r} is {got_code} with shape {short_repr(list(got_shape))} "
                f"but the config implies {code} with shape {short_repr(list(shape))}"
            )
