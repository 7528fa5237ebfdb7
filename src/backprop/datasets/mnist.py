"""MNIST: finding, downloading (with SHA-256 verification) and reading the four IDX files.

Where the files are looked up: the first folder that holds any of the four is the one
they all come from (a folder missing some is an error naming them, but the cache's, where
they are downloaded), each folder tried as ``<folder>/mnist/`` and then ``<folder>/``
itself, each file as ``NAME.gz`` and then raw ``NAME``:

1. the ``data_dir`` argument;
2. the ``BACKPROP_DATA`` environment variable (the folder that holds ``mnist/``);
3. the per-user cache, ``$XDG_CACHE_HOME/backprop`` or ``~/.cache/backprop``.

Files missing everywhere are downloaded from :data:`MIRRORS` into ``<cache>/mnist/``. A
download is used only when the SHA-256 of its *decompressed* bytes equals the published
IDX file's (:data:`MNIST_FILES`); it is written under a temporary name and renamed into
place, so a failed or interrupted download never leaves a file that looks complete.
Without network the error says so in one line and names the folder to put the files in.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._limits import check_limit, limit, new_file_mode
from ._base import DatasetError
from .idx import decompress_gzip, read_idx, read_idx_bytes

__all__ = [
    "MIRRORS",
    "MNIST_FILES",
    "MnistFile",
    "cache_dir",
    "download_mnist",
    "fetch_url",
    "find_mnist_files",
    "load_mnist_arrays",
    "search_dirs",
]


@dataclass(frozen=True)
class MnistFile:
    """One of the four files: its name (without .gz), IDX magic and decompressed SHA-256."""

    name: str
    magic: int
    sha256: str


# SHA-256 of the original (decompressed) IDX files; see shared/data/README.md.
MNIST_FILES: dict[str, MnistFile] = {
    "train_images": MnistFile(
        "train-images-idx3-ubyte",
        0x00000803,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train_labels": MnistFile(
        "train-labels-idx1-ubyte",
        0x00000801,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "test_images": MnistFile(
        "t10k-images-idx3-ubyte",
        0x00000803,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "test_labels": MnistFile(
        "t10k-labels-idx1-ubyte",
        0x00000801,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}

# Canonical public mirrors serving NAME.gz (yann.lecun.com itself now asks for a login).
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def cache_dir() -> Path:
    """The per-user cache: ``$XDG_CACHE_HOME/backprop``, else ``~/.cache/backprop``.

    An ``XDG_CACHE_HOME`` that is not an absolute path is ignored, as the XDG Base
    Directory spec says (a relative one put the cache in whatever folder a run started in,
    ``./cachex/backprop/mnist1d/``); one of only whitespace counts as unset.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not (base.strip() and os.path.isabs(base)):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "backprop"


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for MNIST files, in order (see the module docstring)."""
    return [d for d, _, _ in _search_plan(data_dir)]


def _search_plan(data_dir: str | os.PathLike | None) -> list[tuple[Path, Path, str]]:
    """:func:`search_dirs` with, for each folder, its root and what named that root in a
    message (``"BACKPROP_DATA='/data'"``, ``"data_dir /data"`` or the cache's path)."""
    roots: list[tuple[Path, str]] = []
    if data_dir is not None:
        roots.append((Path(data_dir), f"data_dir {os.fspath(data_dir)}"))
    env = os.environ.get("BACKPROP_DATA")
    if env:
        roots.append((Path(env), f"BACKPROP_DATA={env!r}"))
    cache = cache_dir()
    roots.append((cache, str(cache)))
    plan: list[tuple[Path, Path, str]] = []
    for root, origin in roots:
        for d in (root / "mnist", root):
            if all(d != seen for seen, _, _ in plan):
                plan.append((d, root, origin))
    return plan


def find_mnist_files(data_dir: str | os.PathLike | None = None) -> dict[str, Path | None]:
    """Where each of the four files is, all in one folder: the first of
    :func:`backprop.datasets.mnist.search_dirs` that holds any of them (None for all when
    none does). A path there is it, whatever it is: a folder, a FIFO or a broken link is
    refused by name when read, not searched past into another folder's file.

    Raises
    ------
    DatasetError
        That folder lacks some of the files and is not the cache's (where they are
        downloaded): each file taken from the first folder that had it made one run of a
        folder's images and the cache's labels. Or a folder searched cannot be read: an
        unreadable ``BACKPROP_DATA`` was searched past on to the cache's files, silently.
    """
    cache = cache_dir() / "mnist"
    for d, root, origin in _search_plan(data_dir):
        found: dict[str, Path | None] = {}
        try:
            for key, f in MNIST_FILES.items():
                paths = (d / n for n in (f.name + ".gz", f.name))
                found[key] = next((p for p in paths if _present(p)), None)
        except OSError as e:
            reason = e.strerror or str(e)
            with contextlib.suppress(OSError):  # (raised again where the root is the one)
                if d != root and _present(d):  # the root can be searched, its mnist/ not
                    reason += f": {d}"
            raise DatasetError(
                f"{origin} cannot be read ({reason}); expected a folder this user can read"
            ) from None
        held = [k for k, p in found.items() if p is not None]
        if not held:
            continue
        missing = [MNIST_FILES[k].name for k, p in found.items() if p is None]
        if missing and not _same_folder(d, cache):
            raise DatasetError(
                f"{d} holds {len(held)} of MNIST's 4 files but not {', '.join(missing)} "
                "(.gz or raw); put all four there, or move those it holds away"
            )
        return found
    return dict.fromkeys(MNIST_FILES)


def _present(p: Path) -> bool:
    """Whether there is something at ``p`` (a link counts, broken or not). A folder on the
    way that this user may not search raises OSError: ``os.path.lexists`` said False for
    it, so a root-only BACKPROP_DATA was searched past on to the cache."""
    try:
        os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def _require_published(path: Path, key: str) -> None:
    """Refuse a file of the cache that is not the published MNIST file (its decompressed
    SHA-256): the files downloaded beside it would be MNIST's, and another data set's
    images (placed there by hand) would train with MNIST's labels."""
    if not (path.is_file() and path.stat().st_size <= limit("idx_bytes")):
        return  # (read_idx names what else it is, or its size)
    data = path.read_bytes()
    content = decompress_gzip(data, path, limit("idx_bytes")) if data[:2] == b"\x1f\x8b" else data
    if hashlib.sha256(content).hexdigest() != MNIST_FILES[key].sha256:
        raise DatasetError(
            f"{path} is not MNIST's {MNIST_FILES[key].name} (its SHA-256 differs), so the "
            "files missing beside it cannot be downloaded to go with it; put all four of its "
            "data set's files in one folder (--data-dir), or remove it"
        )


def _same_folder(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one folder, however spelt (relative, through a link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # (b not made yet)
        return False


#: A download that brings fewer bytes than this a second over a minute is given up: a
#: server trickling a byte every few seconds never reached the socket's timeout (which
#: times each wait alone), and the download went on for days.
MIN_BYTES_PER_S = 1024
RATE_WINDOW_S = 60.0


def fetch_url(
    url: str,
    timeout: float = 60.0,
    *,
    min_bytes_per_s: float = MIN_BYTES_PER_S,
    window_s: float = RATE_WINDOW_S,
) -> bytes:
    """The body of ``url``, at most the limit ``download_bytes`` (64 MiB) of it (tests
    replace this function to download without network).

    Raises
    ------
    DatasetError
        The body is longer than the limit (nothing more is read), or it came slower than
        ``min_bytes_per_s`` over ``window_s`` seconds.
    """
    cap = limit("download_bytes")
    with urllib.request.urlopen(url, timeout=timeout) as response:
        stated = response.headers.get("Content-Length", "")
        if stated.isascii() and stated.isdigit():  # a stated size past the limit: refused
            check_limit("download_bytes", int(stated), f"{url}: the download is", DatasetError)
        body = _read_briskly(response, cap + 1, url, min_bytes_per_s, window_s)
    check_limit("download_bytes", len(body), f"{url}: the download is more than", DatasetError)
    return body


def _read_briskly(
    response: Any, n: int, url: str, min_bytes_per_s: float, window_s: float
) -> bytes:
    """At most ``n`` bytes of ``response``, in pieces of up to 64 KiB whatever the header
    says (read(cap + 1) allocated the limit before reading a byte, and a piece of the
    stated size allocated what a server said), each piece what has arrived (``read1``: a
    ``read`` of 64 KiB waited for all of them); DatasetError once a window of
    ``window_s`` seconds brings fewer than ``min_bytes_per_s`` a second."""
    chunks: list[bytes] = []
    got = 0
    mark, got_at_mark = time.monotonic(), 0
    while got < n and (chunk := response.read1(min(1 << 16, n - got))):
        chunks.append(chunk)
        got += len(chunk)
        now = time.monotonic()
        if now - mark >= window_s:
            if got - got_at_mark < min_bytes_per_s * (now - mark):
                raise DatasetError(
                    f"{url}: the download stalled ({got - got_at_mark} bytes in the last "
                    f"{now - mark:.0f} s, under {min_bytes_per_s:g} bytes a second); given up"
                )
            mark, got_at_mark = now, got
    return b"".join(chunks)


def download_mnist(
    dest: str | os.PathLike | None = None,
    keys: Sequence[str] | None = None,
    mirrors: Sequence[str] = MIRRORS,
) -> dict[str, Path]:
    """Download MNIST files into ``dest`` (default ``<cache>/mnist``), verifying SHA-256.

    Parameters
    ----------
    dest : folder, optional
    keys : subset of ``MNIST_FILES`` keys, optional
        Default: all four.
    mirrors : sequence of base URLs
        Tried in order for each file until one gives bytes with the right hash.

    Returns
    -------
    dict key -> path written (``NAME.gz``, the mirror's gzip bytes as downloaded).

    Raises
    ------
    DatasetError
        No mirror reachable (one line naming the folder to put the files in), or no
        mirror served bytes with the expected hash.
    """
    folder = Path(dest) if dest is not None else cache_dir() / "mnist"
    written: dict[str, Path] = {}
    for key in MNIST_FILES if keys is None else keys:
        f = MNIST_FILES[key]
        # said, since it takes a while (a minute a mirror before one is given up), once
        print(f"Downloading MNIST's {f.name}.gz into {folder} ...", file=sys.stderr, flush=True)
        problems: list[str] = []
        network_down = True
        for base in mirrors:
            url = base + f.name + ".gz"
            try:
                body = fetch_url(url)
            except urllib.error.HTTPError as exc:  # the server answered: the network is up
                network_down = False
                problems.append(f"{url}: HTTP {exc.code} {exc.reason}")
                continue
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                problems.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                continue
            except DatasetError as exc:  # over the download limit
                network_down = False
                problems.append(str(exc))
                continue
            network_down = False
            try:
                gz = body[:2] == b"\x1f\x8b"
                content = decompress_gzip(body, url, limit("idx_bytes")) if gz else body
                check_limit("idx_bytes", len(content), f"{url}: decompresses to", DatasetError)
                digest = hashlib.sha256(content).hexdigest()
            except DatasetError as exc:
                problems.append(str(exc))
                continue
            if digest != f.sha256:
                problems.append(f"{url}: SHA-256 of the content is {digest}, expected {f.sha256}")
                continue
            read_idx_bytes(content, url, f.magic)  # also the structure, before anything is kept
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / (f.name + ".gz")
            _write_new(target, body if gz else _gzip(bytes(content)))
            written[key] = target
            break
        else:
            if network_down:  # no mirror answered at all
                raise DatasetError(
                    f"MNIST file {f.name}.gz is not on this machine and cannot be downloaded "
                    f"(no network: {problems[0] if problems else 'no mirrors'}); put the four "
                    f"MNIST .gz files in {folder} or set BACKPROP_DATA to a folder holding mnist/"
                )
            raise DatasetError(
                f"MNIST file {f.name}.gz: no mirror gave the expected content, nothing was "
                f"saved ({'; '.join(problems)})"
            )
    return written


def _write_new(target: Path, data: bytes) -> None:
    """Write ``target`` through a temporary file of a fresh, exclusively created name in
    the same folder, renamed into place: an interrupted download leaves no file that looks
    complete, and a file planted at a fixed temporary name is never written through."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, new_file_mode())  # (mkstemp's 0600 hid a shared data folder's files)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _gzip(content: bytes) -> bytes:
    return gzip.compress(content, mtime=0)


def load_mnist_arrays(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four MNIST arrays as stored: images uint8 (n, 28, 28), labels uint8 (n,).

    Returns
    -------
    X_train (60000, 28, 28), y_train (60000,), X_test (10000, 28, 28), y_test (10000,)
    for the published files (any counts are accepted when images and labels agree).
    """
    if data_dir is not None and not os.path.isdir(data_dir):  # else silently searched past
        what = " is not a folder" if os.path.exists(data_dir) else ": no such folder"
        raise DatasetError(f"data_dir {os.fspath(data_dir)}{what}")
    found = find_mnist_files(data_dir)
    missing = [k for k, p in found.items() if p is None]
    folder = next((p.parent for p in found.values() if p is not None), None)
    from_data_dir = data_dir is not None and folder in search_dirs(data_dir)[:2]
    env = os.environ.get("BACKPROP_DATA")
    if env and not from_data_dir and not os.path.isdir(env):
        # as data_dir: a mistyped BACKPROP_DATA is an error, not a way on to the cache
        what = "is not a folder" if os.path.exists(env) else "names no folder"
        raise DatasetError(  # (quoted: "/data " named no folder, and read as "/data")
            f"BACKPROP_DATA={env!r} {what}; expected the folder that holds mnist/ (or unset it)"
        )
    if missing:
        names = ", ".join(MNIST_FILES[k].name + ".gz" for k in missing)
        if not download:
            searched = ", ".join(str(d) for d in search_dirs(data_dir))
            raise DatasetError(
                f"MNIST files not found ({names}); searched {searched}; put them in "
                f"{cache_dir() / 'mnist'} or set BACKPROP_DATA, or allow the download"
            )
        for key, path in found.items():  # what the download completes must be MNIST
            if path is not None:
                _require_published(path, key)
        found.update(download_mnist(keys=missing))
    arrays = {}
    for key, path in found.items():
        assert path is not None
        arrays[key] = read_idx(path, MNIST_FILES[key].magic)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        img_path, lbl_path = found[f"{split}_images"], found[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DatasetError(f"{img_path}: images of shape {images.shape[1:]}; expected (28, 28)")
        if images.shape[0] == 0:
            raise DatasetError(f"{img_path}: the file holds no images; expected MNIST's")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DatasetError(
                f"{lbl_path}: {labels.shape[0]} labels for the {images.shape[0]} images of "
                f"{img_path}; expected one label per image"
            )
        if labels.size and labels.max() > 9:
            raise DatasetError(f"{lbl_path}: label {int(labels.max())} found; expected digits 0-9")
    return (
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
    )
