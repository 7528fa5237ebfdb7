"""The limits on what a user's file or option may ask for, and reading a user's file within
them.

Every file a user names is read through :func:`open_regular` or :func:`read_user_file`:
directories, FIFOs, devices and sockets are refused by their type before anything is read
(and before opening could block on a FIFO), and a file larger than its kind's limit is
refused from its size before it is read. Sizes declared *inside* a file (a safetensors
header's length, an IDX file's dimensions, a model's layer sizes) are compared with these
limits before anything of that size is allocated.

Each limit can be raised (or lowered) for one run with an environment variable,
``BACKPROP_MAX_<NAME>``, e.g. ``BACKPROP_MAX_CSV_BYTES=4000000000``; every message that
refuses something names the size asked for, the limit, and that variable. The table is
:data:`LIMITS` (``docs/cli.md`` lists it).

One limit is the machine's own: the memory there is (:func:`memory_limit`), which
:func:`check_memory` compares an allocation's size with before it is made, so that a
network too large for the machine is one error instead of a process the OOM killer ends.
"""

from __future__ import annotations

import functools
import os
import stat
import sys
import threading
from dataclasses import dataclass
from typing import IO

__all__ = [
    "LIMITS",
    "MAX_LIMIT",
    "Limit",
    "check_limit",
    "check_memory",
    "describe_bytes",
    "limit",
    "memory_limit",
    "new_file_mode",
    "open_regular",
    "read_at_most",
    "read_user_file",
]


@dataclass(frozen=True)
class Limit:
    """One limit: its name, default and what it bounds.

    Attributes
    ----------
    name : str
        ``"csv_bytes"``; the environment variable is ``BACKPROP_MAX_CSV_BYTES``.
    default : int
    what : str
        What is counted, for messages: ``"bytes"``, ``"layer sizes"``...
    """

    name: str
    default: int
    what: str

    @property
    def env(self) -> str:
        """The environment variable that overrides the default."""
        return "BACKPROP_MAX_" + self.name.upper()

    def value(self) -> int:
        """The limit in force: the environment variable's value if set, else the default.

        At most :data:`MAX_LIMIT`: a limit is passed on as a size (``readline(cap + 1)``),
        and 10**30 was "Python int too large to convert to C ssize_t" instead of a word
        about the variable.
        """
        text = os.environ.get(self.env, "").strip()
        if not text:
            return self.default
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            value = 0
        if not 1 <= value <= MAX_LIMIT:
            raise ValueError(
                f"{self.env} is {text!r}; expected a positive integer up to {MAX_LIMIT}"
            )
        return value


#: The largest value a limit may be set to: what leaves room for ``cap + 1`` (and a sum of
#: two sizes) in a C ``ssize_t``, 2**62 - 1 on a 64-bit machine; far past any file there is.
MAX_LIMIT = sys.maxsize // 2


_MiB = 1 << 20

#: Every limit, by name. Sizes of files are bytes on disk; the others count what they say.
LIMITS: dict[str, Limit] = {
    limit.name: limit
    for limit in (
        Limit("config_bytes", _MiB, "bytes"),  # a --config file (TOML or JSON)
        Limit("weights_bytes", _MiB, "bytes"),  # explain's / playground's --weights JSON
        Limit("csv_bytes", 1 << 30, "bytes"),  # a CSV data set or predict's input
        Limit("csv_line_chars", 16 * _MiB, "characters"),  # one line of a CSV file
        Limit("header_bytes", 32 * _MiB, "bytes"),  # a model's or checkpoint's header
        Limit("idx_bytes", 256 * _MiB, "bytes"),  # an IDX file's content, decompressed
        Limit("download_bytes", 64 * _MiB, "bytes"),  # one downloaded MNIST file
        Limit("tensors", 10_000, "tensors"),  # tensors in a model or checkpoint file
        Limit("layers", 1_000, "layer sizes"),  # sizes in --layers, a config, a model file
        Limit("parameters", 100_000_000, "parameters"),  # weights and biases of --layers
        Limit("classes", 1_000, "classes"),  # distinct labels of a classification target
        Limit("epochs", 100_000, "epochs"),  # --epochs, and a checkpoint's history rows
        Limit("samples", 10_000_000, "samples"),  # --n-samples of a generated data set
    )
}


def limit(name: str) -> int:
    """The limit ``name`` in force (see :data:`LIMITS`)."""
    return LIMITS[name].value()


def describe_bytes(n: int) -> str:
    """``1234567`` -> ``"1234567 bytes (1.2 MB)"``: exact, and readable."""
    if n < 10_000:
        return f"{n} bytes"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n} bytes ({n / size:.1f} {unit})"
    return f"{n} bytes"  # pragma: no cover


def _amount(name: str, n: int) -> str:
    lim = LIMITS[name]
    return describe_bytes(n) if lim.what == "bytes" else f"{n} {lim.what}"


def check_limit(name: str, n: int, what: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` when ``n`` exceeds the limit ``name``.

    The message: ``"{what} is {n}; the limit is {limit} (set BACKPROP_MAX_... to raise
    it)"``, e.g. ``"data.csv: the file is 2000000000 bytes (2.0 GB); the limit is ..."``.
    """
    cap = limit(name)
    if n > cap:
        raise error(
            f"{what} {_amount(name, n)}; the limit is {_amount(name, cap)} "
            f"(set {LIMITS[name].env} to raise it)"
        )


#: Where a control group's memory limit is read (cgroup v2, then v1): a container's limit,
#: which the OOM killer enforces, may be far below the machine's physical memory.
_CGROUP_MEMORY_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


@functools.cache
def memory_limit() -> tuple[int, str] | None:
    """The memory this process may use, in bytes, and what says so: the machine's physical
    memory, or its control group's limit where that is lower; None where neither can be
    read (then nothing is refused for its size). Read once a process: every MLP built
    checks against it (a sysconf and a file read were a quarter of building a 2-3-2
    network, and the playground builds one a frame)."""
    found: tuple[int, str] | None = None
    try:
        found = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "physical memory"
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows), or no such name
        pass
    for path in _CGROUP_MEMORY_FILES:
        try:
            with open(path, encoding="ascii") as f:
                cap = int(f.read().strip())  # "max" (no limit) is a ValueError
        except (OSError, ValueError):
            continue
        if cap > 0 and (found is None or cap < found[0]):  # "no limit" in v1 is a huge number
            found = cap, "memory in this control group (its limit, from " + path + ")"
        break
    return found


def check_memory(n_bytes: int, what: str) -> None:
    """Raise ``MemoryError`` when ``n_bytes`` exceed the memory there is
    (:func:`memory_limit`): ``"{what} {n_bytes}; this machine has {memory} of physical
    memory"``. An allocation that fits may still fail (other processes hold memory too);
    one that does not fit cannot succeed, only swap or be killed."""
    found = memory_limit()
    if found is not None and n_bytes > found[0]:
        total, source = found
        raise MemoryError(
            f"{what} {describe_bytes(n_bytes)}; this machine has {describe_bytes(total)} of "
            f"{source}"
        )


def new_file_mode() -> int:
    """``0666`` less the process's umask: the mode ``open`` gives a new file (``mkstemp``'s
    own is 0600, whatever the umask)."""
    try:  # Linux says it without changing it
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set it and put it back, one thread at a time (two at once
        umask = os.umask(0o022)  # left it at 022 for good; the playground's server writes
        os.umask(umask)  # model files from several threads)
    return 0o666 & ~umask


_UMASK_LOCK = threading.Lock()


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(
    path: str | os.PathLike, kind: str, error: type[Exception] = ValueError
) -> IO[bytes]:
    """``path`` opened for reading in binary, if it is a regular file (symlinks followed).

    The type is checked before the file is opened, and again on the open file (which is
    opened non-blocking, so that a FIFO swapped in between cannot block): folders, FIFOs,
    devices and sockets raise ``error`` naming the path and what it is.

    Raises
    ------
    error
        ``"{kind} {path} does not exist"``, ``"{kind} {path} is a FIFO (named pipe), not a
        regular file"``, or ``"cannot read {kind} {path}: {reason}"``.
    """
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{kind} {path} is {_file_type(mode)}, not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise error(f"{kind} {path} does not exist") from None
    except OSError as e:
        raise error(f"cannot read {kind} {path}: {e.strerror or e}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{kind} {path} is {_file_type(mode)}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_user_file(
    path: str | os.PathLike, kind: str, limit_name: str, error: type[Exception] = ValueError
) -> bytes:
    """The bytes of the regular file ``path``, refused by type (:func:`open_regular`) or by
    size (over the limit ``limit_name``) before they are read.

    Raises
    ------
    error
        For a missing file, a file that is not regular, an unreadable file, or one larger
        than the limit.
    """
    with open_regular(path, kind, error) as f:
        size = os.fstat(f.fileno()).st_size
        cap = limit(limit_name)
        check_limit(limit_name, size, f"{kind} {path} is", error)
        try:
            data = read_at_most(f, cap + 1, size)
        except OSError as e:
            raise error(f"cannot read {kind} {path}: {e.strerror or e}") from None
    check_limit(limit_name, len(data), f"{kind} {path} grew while being read to", error)
    return data


def read_at_most(f: IO[bytes], n: int, size: int) -> bytes:
    """At most ``n`` bytes of ``f``, read in pieces as large as the file said it was (at
    least 64 KiB): ``f.read(n)`` allocates ``n`` bytes before it reads one, and a limit
    raised to 10**12 made a 2-byte config "not enough memory". A file that grows while
    it is read is read on, still only up to ``n``."""
    piece = max(size + 1, 1 << 16)
    chunks: list[bytes] = []
    got = 0
    while got < n and (chunk := f.read(min(piece, n - got))):
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)  # (one piece is returned as it is, not copied)
