"""The small real data sets scikit-learn ships: digits, iris, wine, breast cancer.

They are read from the files inside the scikit-learn package (no network). Layout:

* ``digits``: 1,797 images of 8x8 grey pixels (values 0-16) scaled to [0, 1], float32
  ``(n, 64)``, 10 classes;
* ``iris`` (150 x 4, 3 classes), ``wine`` (178 x 13, 3 classes), ``breast_cancer``
  (569 x 30, 2 classes): features standardised with the training split's mean and
  standard deviation (their raw scales differ by orders of magnitude, which a sigmoid
  network cannot train on), float64; the scaling is returned as ``Dataset.preprocessing``
  so raw measurements can be fed later.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._version import pip_extra
from ..preprocessing import fit_standardizer
from ._base import Dataset, DatasetError, train_test_split

__all__ = ["SKLEARN_SETS", "load_sklearn_set"]

SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer")


def _bunch(name: str) -> Any:
    try:
        from sklearn import datasets
    except ImportError:
        raise DatasetError(
            f"the {name!r} data set needs scikit-learn: {pip_extra('sklearn')}"
        ) from None
    loaders = {
        "digits": datasets.load_digits,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
    }
    return loaders[name]()


def load_sklearn_set(name: str, *, seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """One of :data:`SKLEARN_SETS` with a seeded stratified test split of ``test_fraction``."""
    if name not in SKLEARN_SETS:
        raise DatasetError(
            f"unknown scikit-learn data set {name!r}; expected one of {SKLEARN_SETS}"
        )
    bunch = _bunch(name)
    y = np.asarray(bunch.target, dtype=np.int64)
    class_names = [str(c) for c in bunch.target_names]
    train_idx, test_idx = train_test_split(y.shape[0], test_fraction, seed, labels=y)
    if name == "digits":
        X = (np.asarray(bunch.data, dtype=np.float32) / np.float32(16.0)).astype(np.float32)
        feature_names, image_shape, prep = None, (8, 8), None
    else:
        raw = np.asarray(bunch.data, dtype=np.float64)
        feature_names = [str(f) for f in bunch.feature_names]
        prep = fit_standardizer(raw[train_idx], feature_names, classes=class_names)
        X, image_shape = prep.transform(raw), None
    return Dataset.from_split(
        name,
        X,
        y,
        train_idx,
        test_idx,
        task="classification",
        n_classes=len(class_names),
        class_names=class_names,
        feature_names=feature_names,
        image_shape=image_shape,
        preprocessing=prep,
    )
