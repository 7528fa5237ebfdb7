"""MNIST-1D (Greydanus 2020), generated on this machine by the ``mnist1d`` package.

The arrays come from the package's own generator, ``mnist1d.data.make_dataset`` with
``mnist1d.data.get_dataset_args()`` (5,000 signals of length 40, seed 42, 4,000 train /
1,000 test), never from its download path. The generator seeds NumPy's and Python's
*global* random state; that state is saved before and restored after, so loading this set
changes no one else's random numbers. Generation takes a second or two, so the arrays are
cached as a plain ``.npz`` (no pickle) under ``<cache>/mnist1d/``, keyed by a hash of the
generator's arguments and the package version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
import zipfile
from importlib import metadata

import numpy as np

from .._limits import new_file_mode
from .._version import pip_extra
from ._base import DatasetError
from .mnist import cache_dir

__all__ = ["load_mnist1d_arrays"]


def _generate(num_samples: int | None) -> dict[str, np.ndarray]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DatasetError(
            f"the 'mnist1d' data set needs the mnist1d package: {pip_extra('mnist1d')}"
        ) from None
    args = get_dataset_args()
    if num_samples is not None:
        args.num_samples = int(num_samples)
    # The generator uses the legacy global state; restore it for everyone else.
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    arrays = {
        "x": np.asarray(data["x"], dtype=np.float64),
        "y": np.asarray(data["y"], dtype=np.int64),
        "x_test": np.asarray(data["x_test"], dtype=np.float64),
        "y_test": np.asarray(data["y_test"], dtype=np.int64),
    }
    return arrays


def _cache_key(num_samples: int | None) -> str:
    try:
        version = metadata.version("mnist1d")
    except metadata.PackageNotFoundError:
        version = "absent"
    key = json.dumps({"version": version, "num_samples": num_samples}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def load_mnist1d_arrays(
    num_samples: int | None = None, use_cache: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-1D as generated with the default arguments (``num_samples`` may override).

    Returns
    -------
    X_train (4000, 40) float64, y_train (4000,) int64, X_test (1000, 40), y_test (1000,)
    with the defaults (the generator's own 80/20 split).
    """
    path = cache_dir() / "mnist1d" / f"mnist1d_{_cache_key(num_samples)}.npz"
    if use_cache and path.is_file():
        try:
            # an .npz is a zip: anything else (empty, an .npy) is not read as one; and
            # np.load(path) left the file open when it was not a zip after all
            with open(path, "rb") as f:
                if zipfile.is_zipfile(f):
                    f.seek(0)
                    with np.load(f, allow_pickle=False) as z:
                        arrays = {k: z[k] for k in ("x", "y", "x_test", "y_test")}
                    if _well_formed(arrays, num_samples):
                        return arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, MemoryError):
            pass  # a damaged cache file is regenerated and replaced below (one whose header
            # declared 1e11 rows was a MemoryError)
    arrays = _generate(num_samples)
    if use_cache:
        tmp = None
        try:  # under a fresh name (two processes may fill the cache at once), then renamed
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.chmod(tmp, new_file_mode())  # (mkstemp's own mode is 0600 whatever the umask)
            os.replace(tmp, path)
        except BaseException as e:  # no temporary left, whatever stopped the write (a Ctrl-C
            # left one for good, 1.6 MB); the cache is an optimisation: an unwritable folder
            # is not an error, anything else goes on up
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            if not isinstance(e, OSError):
                raise
    return arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"]


#: The generator's own number of signals (``get_dataset_args().num_samples``).
DEFAULT_SAMPLES = 5000


def _well_formed(arrays: dict[str, np.ndarray], num_samples: int | None) -> bool:
    """Whether cached arrays are MNIST-1D's shapes, kinds, labels and number of signals (a
    cache file that is a valid ``.npz`` of anything else is regenerated, not trained on)."""
    x, y, x_test, y_test = (arrays[k] for k in ("x", "y", "x_test", "y_test"))
    n = DEFAULT_SAMPLES if num_samples is None else num_samples
    return (
        x.ndim == x_test.ndim == 2 and x.shape[1] == x_test.shape[1] == 40
        and x.shape[0] + x_test.shape[0] == n
        and x.dtype == np.float64 and x_test.dtype == np.float64
        and y.dtype == np.int64 and y_test.dtype == np.int64
        and y.shape == x.shape[:1] and y_test.shape == x_test.shape[:1]
        and bool(np.isfinite(x).all() and np.isfinite(x_test).all())
        and all(v.size == 0 or (v.min() >= 0 and v.max() <= 9) for v in (y, y_test))
    )  # fmt: skip
