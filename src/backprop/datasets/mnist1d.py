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

import hashlib
import json
import os
import random
from importlib import metadata

import numpy as np

from ._base import DatasetError
from .mnist import cache_dir

__all__ = ["load_mnist1d_arrays"]


def _generate(num_samples: int | None) -> dict[str, np.ndarray]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DatasetError(
            "the 'mnist1d' data set needs the mnist1d package: pip install 'backprop[mnist1d]'"
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
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("x", "y", "x_test", "y_test")}
            return arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is regenerated and replaced below
    arrays = _generate(num_samples)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part.npz")
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        except OSError:
            pass  # the cache is an optimisation: an unwritable cache folder is not an error
    return arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"]
