"""Training inputs read from ``.npy`` files a few rows at a time, never loaded whole.

:class:`NpyArray` is what :func:`backprop.training.fit` trains on when the inputs are a
``.npy`` path, an :class:`NpyArray` or ``np.load(path, mmap_mode="r")``: each step reads
only its own rows (each MPI rank only its share) straight into a batch buffer.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._limits import open_regular

__all__ = ["NpyArray", "open_npy"]


class NpyArray:
    """A ``.npy`` file's array (C order), read from disk a few rows at a time.

    Opening reads only the header. :meth:`rows` copies the requested rows straight from the
    file into a fresh batch buffer with positional reads (``os.preadv``, one per run of
    consecutive rows), so resident memory holds batch-sized buffers only, whatever the
    size of the file; the OS page cache keeps what it can.

    Why not fancy-index ``np.load(path, mmap_mode="r")``: on Linux kernels that map large
    folios, every page fault maps the memory around it and counts it in the resident set,
    so a memory map's resident set grows to much of the file within a few batches of
    random rows (tests/mpi_scripts/mmap_memory.py measures it). On platforms without
    ``os.preadv`` the rows are gathered through such a memory map.

    Parameters
    ----------
    source : path or numpy.memmap
        A ``.npy`` file, or the result of ``np.load(path, mmap_mode="r")``.

    Attributes
    ----------
    path : pathlib.Path
    shape : tuple of int
    dtype : numpy.dtype
    rows_read : int
        Rows copied out by :meth:`rows` so far.
    """

    _fd = -1  # no file open (yet)

    def __init__(self, source: str | os.PathLike | np.memmap) -> None:
        if isinstance(source, np.memmap):
            if source.filename is None or not source.flags.c_contiguous:
                raise ValueError(
                    "expected a C-order memory map of a .npy file, as opened by "
                    "np.load(path, mmap_mode='r')"
                )
            path, offset = Path(source.filename), int(source.offset)
            shape, dtype = source.shape, source.dtype
        else:
            path = Path(source)
            offset, shape, dtype = _npy_header(path)
        self.path = path
        self.shape: tuple[int, ...] = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.rows_read = 0
        self._offset = offset
        self._row_bytes = self.dtype.itemsize * math.prod(self.shape[1:])
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))  # closed by close()
        size = os.fstat(self._fd).st_size
        need = offset + self._row_bytes * (self.shape[0] if self.shape else 1)
        if size < need:
            self.close()
            raise ValueError(f"{path} is truncated: {size} bytes, but its header describes {need}")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of array data in the file."""
        return self._row_bytes * self.shape[0]

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, idx: Any) -> np.ndarray:
        """A copy of the rows ``idx``, shape ``(len(idx),) + shape[1:]``, in the order given.

        Ascending indices make runs of neighbours one read each (and read the file forwards).
        """
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        n = idx.shape[0]
        out = np.empty((n, *self.shape[1:]), self.dtype)
        if n == 0:
            return out
        if idx.min() < 0 or idx.max() >= self.shape[0]:
            raise IndexError(
                f"row indices must be in [0, {self.shape[0]}); got {idx.min()}..{idx.max()}"
            )
        self.rows_read += n
        if not hasattr(os, "preadv"):
            return np.array(np.load(self.path, mmap_mode="r")[idx])
        buf = memoryview(out).cast("B")
        fd, rb = self._fd, self._row_bytes
        breaks = (np.flatnonzero(np.diff(idx) != 1) + 1).tolist()
        for lo, hi in zip([0, *breaks], [*breaks, n], strict=True):
            _read_exactly(fd, buf[lo * rb : hi * rb], self._offset + int(idx[lo]) * rb, self.path)
        return out

    def close(self) -> None:
        """Close the file (also done when the object is garbage collected)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> NpyArray:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NpyArray({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


def _read_exactly(fd: int, buf: memoryview, offset: int, path: Path) -> None:
    """Fill ``buf`` from the file at ``offset`` (positional reads may return less)."""
    done = 0
    while done < len(buf):
        got = os.preadv(fd, [buf[done:]], offset + done)
        if got == 0:
            raise OSError(f"{path} ended early: it was truncated while being read")
        done += got


def _npy_header(path: Path) -> tuple[int, tuple[int, ...], np.dtype]:
    """Offset of the data, shape and dtype of a ``.npy`` file (object arrays refused)."""
    fmt = np.lib.format
    if not os.path.lexists(path):
        raise FileNotFoundError(f"no such .npy file: {path}")
    with open_regular(path, ".npy file") as f:  # a FIFO or a device is refused by its type
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            offset = f.tell()
        except ValueError as e:
            raise ValueError(f"{path} is not a readable .npy file: {e}") from None
    if dtype.hasobject:
        raise ValueError(f"{path} holds Python objects; expected an array of numbers")
    if fortran and len(shape) > 1:
        raise ValueError(
            f"{path} is stored in Fortran order; expected C order so that rows are contiguous "
            "(save it with np.save(path, np.ascontiguousarray(a)))"
        )
    return offset, tuple(shape), dtype


def open_npy(path: str | os.PathLike) -> NpyArray:
    """Open a ``.npy`` file to read its rows batch by batch; see :class:`NpyArray`."""
    return NpyArray(path)
