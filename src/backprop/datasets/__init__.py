"""Data sets by short name: generated 2-D sets, MNIST, MNIST-1D, scikit-learn's, any CSV.

>>> from backprop.datasets import load_dataset
>>> ds = load_dataset("moons", seed=0)
>>> ds.X_train.shape, ds.y_train.dtype, ds.targets().shape
((376, 2), dtype('int64'), (376, 2))

Every loader returns a :class:`Dataset` and raises :class:`DatasetError` (a ValueError)
with one message naming what is wrong. See ``docs/datasets.md`` for shapes, dtypes and
where files are looked up.

:data:`DATASET_LOADERS` is the registry: a data set's name and the function that loads
it from a :class:`DatasetRequest` (what :func:`load_dataset` was asked for). A new data set
is its loader (a module here) and its line in the registry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .._limits import check_limit
from .._registry import lookup
from .._validation import is_finite_number, short_repr
from ._base import Dataset, DatasetError, one_hot, train_test_split
from .idx import read_idx, write_idx
from .mnist import (
    MIRRORS,
    MNIST_FILES,
    cache_dir,
    download_mnist,
    find_mnist_files,
    load_mnist_arrays,
)
from .mnist1d import load_mnist1d_arrays
from .sklearn_sets import SKLEARN_SETS, load_sklearn_set
from .synthetic import SYNTHETIC
from .tabular import MAX_CLASSES, load_csv, read_csv_columns, read_csv_features

__all__ = [
    "DATASETS",
    "DATASET_LOADERS",
    "DatasetRequest",
    "MAX_CLASSES",
    "MIRRORS",
    "MNIST_FILES",
    "SKLEARN_SETS",
    "Dataset",
    "DatasetError",
    "cache_dir",
    "download_mnist",
    "find_mnist_files",
    "load_csv",
    "load_dataset",
    "load_mnist_arrays",
    "names_a_csv_file",
    "one_hot",
    "read_csv_columns",
    "read_csv_features",
    "read_idx",
    "train_test_split",
    "write_idx",
]


@dataclass(frozen=True)
class DatasetRequest:
    """What :func:`load_dataset` was asked for, checked: the arguments every loader receives."""

    name: str
    data_dir: str | os.PathLike | None
    seed: int
    n_samples: int | None
    noise: float | None
    test_fraction: float
    download: bool


_DIGITS = [str(d) for d in range(10)]


def names_a_csv_file(name: str | os.PathLike) -> bool:
    """Whether :func:`load_dataset` reads ``name`` as a CSV file: a path ending in ``.csv``,
    or an existing file that is not a built-in set's name."""
    name = os.fspath(name)
    return name.lower().endswith(".csv") or (name not in DATASETS and os.path.isfile(name))


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    n_samples: int | None = None,
    noise: float | None = None,
    target: str | None = None,
    test_fraction: float = 0.25,
    download: bool = True,
    task: str | None = None,
    features: Sequence[str] | None = None,
) -> Dataset:
    """Load a data set by short name, or a CSV file by path.

    Parameters
    ----------
    name : str or path
        One of :data:`DATASETS`, or a CSV file: a path ending in ``.csv`` or any existing
        file whose name is not one of :data:`DATASETS`.
    data_dir : folder, optional
        mnist only: where its files are looked for first (then ``$BACKPROP_DATA``, then the
        cache).
    seed : int
        Generates the 2-D sets and draws the test split. Unused by mnist and mnist1d
        (fixed published data; mnist1d's generator always uses its own seed 42).
    n_samples : int, optional
        Generated sets: total rows (default per set, see :mod:`.synthetic`). mnist: keep
        the first ``n_samples`` training images (``50000`` for Nielsen's setup); the test
        set stays whole. mnist1d: the generator's ``num_samples`` (default 5000).
    noise : float, optional
        Generated sets only: the noise level (default per set).
    target : str, optional
        CSV files only (required there): the target column.
    test_fraction : float in [0, 1)
        Sets without an official test split: the seeded, stratified (classification)
        fraction held out; 0 gives ``X_test = None``. Ignored by mnist and mnist1d.
    download : bool
        mnist: download missing files (verified by SHA-256) instead of failing.
    task : {"classification", "regression"}, optional
        CSV files only: override the automatic choice (see :mod:`.tabular`).
    features : sequence of str, optional
        CSV files only: the feature columns, in this order (default: all but the target).

    Returns
    -------
    Dataset
    """
    if not isinstance(name, str | os.PathLike):
        raise DatasetError(f"name must be a data set's name or a CSV path; got {short_repr(name)}")
    name = os.fspath(name)
    is_csv = names_a_csv_file(name)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DatasetError(f"seed must be a non-negative integer; got {seed!r}")
    if not is_csv:
        loader = lookup(
            DATASET_LOADERS, name, "data set", alternatives=" or a .csv path", error=DatasetError
        )
    if not (is_finite_number(test_fraction) and 0.0 <= test_fraction < 1.0):
        raise DatasetError(f"test_fraction must be in [0, 1); got {short_repr(test_fraction)}")
    if n_samples is not None and (
        isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 1
    ):
        raise DatasetError(f"n_samples must be a positive integer; got {n_samples!r}")
    if noise is not None and name not in SYNTHETIC:
        raise DatasetError(f"noise applies to the generated sets {list(SYNTHETIC)}, not {name!r}")
    if target is not None and not is_csv:
        raise DatasetError(f"target applies to CSV files, not the built-in data set {name!r}")
    if task is not None and not is_csv:
        raise DatasetError(f"task applies to CSV files, not the built-in data set {name!r}")
    if features is not None and not is_csv:
        raise DatasetError(f"features applies to CSV files, not the built-in data set {name!r}")
    if data_dir is not None and name != "mnist":  # (it was ignored: a typo went unnoticed)
        raise DatasetError(
            f"data_dir applies to mnist (the folder its files are looked for in), not {name!r}"
        )

    if is_csv:
        if n_samples is not None:
            raise DatasetError("n_samples does not apply to CSV files")
        return load_csv(
            name, target, seed=seed, test_fraction=test_fraction, task=task, features=features
        )
    request = DatasetRequest(name, data_dir, seed, n_samples, noise, test_fraction, download)
    return loader(request)


def _load_synthetic(request: DatasetRequest) -> Dataset:
    name, seed, n_samples = request.name, request.seed, request.n_samples
    noise, test_fraction = request.noise, request.test_fraction
    generate, default_n, default_noise, k = SYNTHETIC[name]
    n = default_n if n_samples is None else int(n_samples)
    check_limit("samples", n, f"{name}: n_samples asks for", DatasetError)
    if n < 2 * k:
        raise DatasetError(f"{name} needs n_samples >= {2 * k} (two rows per class); got {n}")
    sigma = default_noise if noise is None else noise
    if not (is_finite_number(sigma) and sigma >= 0):  # 10**400 too: not OverflowError
        raise DatasetError(f"noise must be a finite number >= 0; got {short_repr(noise)}")
    # One stream for the points and an independent one for the split: the same seed gives
    # the same points whatever test_fraction is.
    data_rng, split_seed = (
        np.random.default_rng([seed, 0]),
        int(np.random.default_rng([seed, 1]).integers(2**63)),
    )
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, as one line
        X, y = generate(n, float(sigma), data_rng)
    if not np.isfinite(X).all():
        raise DatasetError(
            f"noise {sigma!r} makes {name} points beyond float64's range (inf); choose a "
            "smaller noise"
        )
    train_idx, test_idx = train_test_split(n, test_fraction, split_seed, labels=y)
    return Dataset.from_split(
        name,
        X,
        y,
        train_idx,
        test_idx,
        task="classification",
        n_classes=k,
        class_names=[str(c) for c in range(k)],
        feature_names=["x1", "x2"],
        image_shape=None,
        preprocessing=None,
    )


def _load_mnist(request: DatasetRequest) -> Dataset:
    n_samples = request.n_samples
    Xtr, ytr, Xte, yte = load_mnist_arrays(request.data_dir, request.download)
    if n_samples is not None:
        if n_samples > Xtr.shape[0]:
            raise DatasetError(
                f"mnist has {Xtr.shape[0]} training images; n_samples={n_samples} asks for more"
            )
        Xtr, ytr = Xtr[:n_samples], ytr[:n_samples]
    return Dataset(
        name="mnist",
        X_train=_pixels(Xtr),
        y_train=ytr.astype(np.int64),
        X_test=_pixels(Xte),
        y_test=yte.astype(np.int64),
        task="classification",
        n_classes=10,
        class_names=list(_DIGITS),
        feature_names=None,
        image_shape=(28, 28),
        preprocessing=None,
    )


def _load_mnist1d(request: DatasetRequest) -> Dataset:
    n = request.n_samples
    if n is not None:
        check_limit("samples", int(n), "mnist1d: n_samples asks for", DatasetError)
        if n < 20 or n % 10:  # (11 gave 10 rows; 5 failed inside the generator)
            raise DatasetError(
                "mnist1d makes n_samples / 10 signals of each digit: n_samples must be a "
                f"multiple of 10, at least 20 (two of each); got {n}"
            )
    X, y, Xt, yt = load_mnist1d_arrays(n)
    return Dataset("mnist1d", X, y, Xt, yt, "classification", 10, list(_DIGITS), None, None, None)


def _load_sklearn(request: DatasetRequest) -> Dataset:
    if request.n_samples is not None:
        raise DatasetError(f"n_samples does not apply to the fixed data set {request.name!r}")
    return load_sklearn_set(request.name, seed=request.seed, test_fraction=request.test_fraction)


def _pixels(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> float32 (n, 784) in [0, 1]."""
    X = images.reshape(images.shape[0], -1).astype(np.float32)
    X /= np.float32(255.0)
    return X


#: Every built-in data set by name, and the function that loads it.
DATASET_LOADERS: dict[str, Callable[[DatasetRequest], Dataset]] = {
    "toy": _load_synthetic,
    "xor": _load_synthetic,
    "moons": _load_synthetic,
    "circles": _load_synthetic,
    "spirals": _load_synthetic,
    "blobs": _load_synthetic,
    "mnist": _load_mnist,
    "mnist1d": _load_mnist1d,
    "digits": _load_sklearn,
    "iris": _load_sklearn,
    "wine": _load_sklearn,
    "breast_cancer": _load_sklearn,
}

#: The built-in data sets' names.
DATASETS: tuple[str, ...] = tuple(DATASET_LOADERS)
