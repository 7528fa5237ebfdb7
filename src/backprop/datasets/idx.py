"""The IDX file format of MNIST (LeCun et al.), raw or gzip-compressed.

Layout (all integers big-endian)::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    4 * d       the size of each dimension (uint32)
    the rest    prod(sizes) elements, row-major

:func:`read_idx` checks every part of that (magic number, dimensions, exact file length)
and raises one :class:`DatasetError` naming the file and what was expected.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .._limits import check_limit, open_regular
from ._base import DatasetError

__all__ = ["IDX_TYPES", "read_idx", "read_idx_bytes", "write_idx", "decompress_gzip"]

# element type code -> big-endian NumPy dtype
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def decompress_gzip(
    data: bytes, source: str | os.PathLike = "<bytes>", max_size: int | None = None
) -> bytearray:
    """The decompressed bytes of a gzip stream (one or more members), or DatasetError if it
    is damaged or cut short.

    With ``max_size``, decompression stops after ``max_size + 1`` bytes: a result longer
    than ``max_size`` means the stream holds more (a "zip bomb" is never inflated whole).
    One zlib call per member: MNIST's training images at zlib's speed.
    """
    budget = -1 if max_size is None else max_size + 1
    out = bytearray()
    rest = data
    while True:
        d = zlib.decompressobj(wbits=31)  # 31 = gzip header and trailer
        try:
            out += d.decompress(rest, 0 if budget < 0 else budget - len(out))
        except zlib.error as exc:
            raise DatasetError(f"{source}: not a valid gzip file ({exc})") from None
        if 0 <= budget <= len(out):
            return out
        if not d.eof:
            raise DatasetError(f"{source}: the gzip stream is truncated (file cut short?)")
        rest = d.unused_data
        if not rest.strip(b"\0"):  # the end, or zero padding after the last member
            return out
        if rest[:2] != _GZIP_MAGIC:
            raise DatasetError(
                f"{source}: not a valid gzip file ({len(rest)} bytes after the gzip stream)"
            )


def _declared_size(head: bytes | bytearray, source: Any, expected_magic: int | None) -> int:
    """The byte length the IDX header at the start of ``head`` declares, header included
    (:func:`read_idx_bytes` checks the header the same way)."""
    if len(head) < 4:
        return -1  # too short: read_idx_bytes says so
    magic = int.from_bytes(head[:4], "big")
    if (
        (expected_magic is not None and magic != expected_magic)
        or head[0] != 0  # (a non-IDX file read as one declared sizes past the limit)
        or head[1] != 0
        or head[2] not in IDX_TYPES
    ):
        return -1
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        return -1
    dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return 4 + 4 * ndim + math.prod(dims) * IDX_TYPES[head[2]].itemsize


def read_idx_bytes(
    data: bytes | bytearray,
    source: str | os.PathLike = "<bytes>",
    expected_magic: int | None = None,
) -> np.ndarray:
    """Parse IDX content (already decompressed).

    Parameters
    ----------
    data : bytes
    source : str or path
        Named in error messages.
    expected_magic : int, optional
        The whole 4-byte magic number required, e.g. ``0x00000803`` (2051) for MNIST images.

    Returns
    -------
    ndarray of shape ``sizes`` and the file's element type (native byte order).
    """
    if len(data) < 4:
        raise DatasetError(f"{source}: {len(data)} bytes is too short for an IDX header (4 bytes)")
    magic = int.from_bytes(data[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DatasetError(
            f"{source}: magic number 0x{magic:08X}; expected 0x{expected_magic:08X} "
            "(wrong file, or not an IDX file)"
        )
    type_code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or type_code not in IDX_TYPES:
        raise DatasetError(
            f"{source}: magic number 0x{magic:08X} is not an IDX header "
            f"(expected 0x0000TTDD with element type TT in {[f'{c:02X}' for c in IDX_TYPES]})"
        )
    if ndim == 0:
        raise DatasetError(f"{source}: IDX header declares 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"{source}: file has {len(data)} bytes, too short for the {ndim} dimension sizes "
            f"its header declares ({header} bytes of header)"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_TYPES[type_code]
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        shape = " x ".join(map(str, dims))
        what = "is truncated" if len(data) < expected else "has trailing bytes"
        raise DatasetError(
            f"{source}: file {what}: {len(data)} bytes, but dimensions {shape} of "
            f"{dtype.itemsize}-byte elements need exactly {expected} bytes"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    if isinstance(data, bytearray) and dtype.itemsize == 1:
        return arr  # already writable, and bytes have no byte order: no copy
    return arr.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed (recognised by its content, not its name).

    The size the header declares is checked against the limit ``idx_bytes`` (256 MiB,
    ``BACKPROP_MAX_IDX_BYTES``) before the data are read or decompressed, and a gzip stream
    is never inflated past it: a small file that would inflate to gigabytes is refused
    after at most the declared size.

    Parameters
    ----------
    path : str or path
        A regular file (folders, FIFOs and devices are refused by type).
    expected_magic : int, optional
        See :func:`backprop.datasets.idx.read_idx_bytes`.

    Returns
    -------
    ndarray of shape ``sizes`` from the header; uint8 for MNIST.

    Raises
    ------
    DatasetError
        Unreadable file, damaged gzip stream, wrong magic number, a length that disagrees
        with the dimensions, or a declared size over the limit.
    """
    p = Path(path)
    with open_regular(p, "IDX file", DatasetError) as f:
        size = os.fstat(f.fileno()).st_size
        check_limit("idx_bytes", size, f"IDX file {p} is", DatasetError)
        try:  # what the file holds (read(cap + 1) reserves cap bytes first, whatever the
            # file's size); a file that grew since is a length the header disagrees with
            data = f.read(size + 1)
        except OSError as exc:
            raise DatasetError(f"{p}: cannot read IDX file ({exc.strerror or exc})") from None
    gz = data[:2] == _GZIP_MAGIC
    head = decompress_gzip(data, p, 4 + 4 * 255) if gz else data[: 4 + 4 * 255]
    declared = _declared_size(head, p, expected_magic)
    check_limit("idx_bytes", declared, f"{p}: the IDX header declares", DatasetError)
    if gz:
        data = decompress_gzip(data, p, max(declared, len(head)))
        if declared >= 0 and len(data) > declared:
            raise DatasetError(
                f"{p}: the decompressed file has trailing bytes: more than {declared} bytes, "
                f"but its header's dimensions need exactly {declared} bytes"
            )
    return read_idx_bytes(data, p, expected_magic)


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``compress`` or the name ends in .gz).

    The element type must be one of :data:`backprop.datasets.idx.IDX_TYPES` (uint8, int8,
    int16, int32, float32, float64). Returns the path written.
    """
    p = Path(path)
    arr = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}
    native = arr.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(
            f"IDX cannot store dtype {arr.dtype}; expected one of {sorted(map(str, codes))}"
        )
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"IDX stores 1 to 255 dimensions; got {arr.ndim}")
    header = bytes([0, 0, codes[native], arr.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in arr.shape
    )
    body = header + np.ascontiguousarray(arr, dtype=native.newbyteorder(">")).tobytes()
    if compress or (compress is None and p.suffix == ".gz"):
        body = gzip.compress(body, mtime=0)
    p.write_bytes(body)
    return p
