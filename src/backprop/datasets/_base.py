"""The :class:`Dataset` record every loader returns, its error type, and the seeded split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..preprocessing import Preprocessing

__all__ = ["Dataset", "DatasetError", "train_test_split"]


class DatasetError(ValueError):
    """A data set could not be loaded: a bad file, a bad argument, or missing data.

    The message names what is wrong (file, row, column) and what was expected.
    """


@dataclass(eq=False)  # (== by field raised ValueError on its arrays; compare sha256())
class Dataset:
    """A loaded data set: arrays plus what is needed to read them.

    Attributes
    ----------
    name : str
        The short name (``"mnist"``) or the CSV path.
    X_train : ndarray (n_train, n_features)
        float32 for image sets (mnist, digits), float64 otherwise.
    y_train : ndarray
        Classification: (n_train,) int64 labels in ``0..n_classes-1``.
        Regression: (n_train, n_outputs) float64.
    X_test, y_test : ndarray or None
        The same layout for the test split; None when there is none (``test_fraction=0``).
    task : {"classification", "regression"}
    n_classes : int or None
        Number of classes (classification); None for regression.
    class_names : list of str or None
        ``class_names[k]`` is the name of label ``k``.
    feature_names : list of str or None
        Column names of X (None for images and MNIST-1D).
    image_shape : tuple of int or None
        ``(28, 28)`` for mnist, ``(8, 8)`` for digits: a row reshaped to this is the image.
    preprocessing : Preprocessing or None
        The scaling and label mapping applied to the raw data (CSV files and the
        standardised scikit-learn tables); None where no fitted scaling was applied.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    task: str
    n_classes: int | None
    class_names: list[str] | None
    feature_names: list[str] | None
    image_shape: tuple[int, ...] | None = None
    preprocessing: Preprocessing | None = None

    @classmethod
    def from_split(
        cls,
        name: str,
        X: np.ndarray,
        y: np.ndarray,
        train_idx: np.ndarray,
        test_idx: np.ndarray,
        **fields: Any,
    ) -> Dataset:
        """The rows ``train_idx`` of ``(X, y)`` for training and ``test_idx`` for testing
        (no test split when ``test_idx`` is empty); ``fields`` are the other attributes."""
        has_test = test_idx.size > 0
        return cls(
            name=name,
            X_train=X[train_idx],
            y_train=y[train_idx],
            X_test=X[test_idx] if has_test else None,
            y_test=y[test_idx] if has_test else None,
            **fields,
        )

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Model outputs: one per class for classification, target columns for regression."""
        if self.task == "classification":
            assert self.n_classes is not None
            return self.n_classes
        return int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        return 0 if self.X_test is None else int(self.X_test.shape[0])

    def targets(self, split: str = "train") -> np.ndarray:
        """Training targets for a model.

        Parameters
        ----------
        split : {"train", "test"}

        Returns
        -------
        ndarray (n, n_outputs), float64
            One-hot rows for classification (one column per class, also for two classes);
            the regression targets as they are.
        """
        if split == "train":
            y = self.y_train
        elif split == "test":
            if self.y_test is None:
                raise DatasetError(f"data set {self.name!r} has no test split (test_fraction=0)")
            y = self.y_test
        else:
            raise DatasetError(f"split must be 'train' or 'test'; got {split!r}")
        if self.task == "classification":
            assert self.n_classes is not None
            return one_hot(y, self.n_classes)
        return np.asarray(y, dtype=np.float64)

    def sha256(self) -> str:
        """SHA-256 (hex) of the bytes of ``X_train`` then ``y_train`` (C order)."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.X_train).tobytes())
        h.update(np.ascontiguousarray(self.y_train).tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, task={self.task!r}, n_train={self.n_train}, "
            f"n_test={self.n_test}, n_features={self.n_features}, n_outputs={self.n_outputs})"
        )


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows of the identity: (n,) int labels -> (n, n_classes) float64."""
    out = np.zeros((labels.shape[0], n_classes), dtype=np.float64)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def train_test_split(
    n: int, test_fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded indices of a train/test split, stratified by ``labels`` when given.

    Each class ``c`` with ``n_c`` rows puts ``round(test_fraction * n_c)`` rows in the
    test split (at most ``n_c - 1``, so that every class is trained on). Both index arrays
    come back in a seeded random order.

    Returns
    -------
    train_idx, test_idx : ndarray of int64
    """
    if not 0.0 <= test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be in [0, 1); got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    if test_fraction == 0.0:
        return rng.permutation(n).astype(np.int64), np.empty(0, dtype=np.int64)
    groups = (
        [np.arange(n)]
        if labels is None
        else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    )
    train, test = [], []
    for rows in groups:
        rows = rng.permutation(rows)
        n_test = min(int(round(test_fraction * rows.size)), rows.size - 1)
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    train_idx = rng.permutation(np.concatenate(train)).astype(np.int64)
    test_idx = rng.permutation(np.concatenate(test)).astype(np.int64)
    return train_idx, test_idx
