"""Input scaling and label mapping of a training set, kept with the model.

A model trained on a CSV file sees standardised features and class indices; to predict on
raw rows later it needs the same scaling and the way back from an output index to the
original label. :class:`Preprocessing` holds exactly that, as plain numbers and strings, so
a model file stores it as JSON (:meth:`Preprocessing.to_dict`) and reads it back with
validation (:meth:`Preprocessing.from_dict`).

Standardisation: ``x_std = (x_raw - mean) / scale``, with ``mean`` and ``scale`` (the
population standard deviation, ``ddof=0``) measured on the training split; a constant
feature gets ``scale = 1`` so that it maps to 0 instead of dividing by zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Preprocessing", "fit_standardizer"]


@dataclass(frozen=True)
class Preprocessing:
    """What turns raw rows into model inputs and output indices back into labels.

    Attributes
    ----------
    feature_names : tuple of str, length n_features
        The input columns, in the order the model expects them.
    mean, scale : tuple of float, length n_features
        ``x_std = (x_raw - mean) / scale``; every ``scale`` is finite and > 0.
    target : str or None
        The target column the model was trained on (None when not from a CSV file).
    classes : tuple of str or None
        ``classes[k]`` is the original label of output ``k`` (classification); None for
        regression.
    """

    feature_names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    target: str | None = None
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.feature_names)
        if n == 0:
            raise ValueError("preprocessing needs at least one feature name")
        if not all(isinstance(f, str) for f in self.feature_names):
            raise ValueError("preprocessing feature_names must all be strings")
        if len(set(self.feature_names)) != n:
            raise ValueError(
                f"preprocessing feature_names repeat a name: {list(self.feature_names)}"
            )
        if len(self.mean) != n or len(self.scale) != n:
            raise ValueError(
                f"preprocessing has {n} feature names but {len(self.mean)} means and "
                f"{len(self.scale)} scales; expected one of each per feature"
            )
        for name, values in (("mean", self.mean), ("scale", self.scale)):
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise ValueError(
                        f"preprocessing {name} values must be finite numbers; got {v!r}"
                    )
        if any(s <= 0 for s in self.scale):
            raise ValueError(f"preprocessing scale values must be > 0; got {list(self.scale)}")
        if self.target is not None and not isinstance(self.target, str):
            raise ValueError(f"preprocessing target must be a string or None; got {self.target!r}")
        if self.classes is not None:
            if len(self.classes) < 2 or not all(isinstance(c, str) for c in self.classes):
                raise ValueError(
                    f"preprocessing classes must be at least two strings; got {self.classes!r}"
                )
            if len(set(self.classes)) != len(self.classes):
                raise ValueError(f"preprocessing classes repeat a label: {list(self.classes)}")

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def transform(self, X_raw: Any) -> np.ndarray:
        """Standardise raw features.

        Parameters
        ----------
        X_raw : array-like (n_samples, n_features)

        Returns
        -------
        ndarray (n_samples, n_features), float64
            ``(X_raw - mean) / scale``.
        """
        X = np.asarray(X_raw, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"X has shape {X.shape}; expected (n_samples, {self.n_features}) with columns "
                f"{list(self.feature_names)}"
            )
        return (X - np.asarray(self.mean)) / np.asarray(self.scale)

    def decode(self, labels: Any) -> list[str]:
        """Original labels of class indices.

        Parameters
        ----------
        labels : array-like (n_samples,) of int in ``0..len(classes)-1``

        Returns
        -------
        list of str, length n_samples
        """
        if self.classes is None:
            raise ValueError("this preprocessing has no class labels (a regression target)")
        idx = np.asarray(labels)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise ValueError(f"labels must be a 1-D array of class indices; got shape {idx.shape}")
        k = len(self.classes)
        if idx.size and (idx.min() < 0 or idx.max() >= k):
            raise ValueError(f"class indices must be in 0..{k - 1}; got {idx.min()}..{idx.max()}")
        return [self.classes[i] for i in idx.tolist()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: lists of numbers and strings only."""
        return {
            "feature_names": list(self.feature_names),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "target": self.target,
            "classes": None if self.classes is None else list(self.classes),
        }

    @classmethod
    def from_dict(cls, d: Any) -> Preprocessing:
        """Rebuild from :meth:`to_dict` output, validating every field (ValueError otherwise)."""
        if not isinstance(d, dict):
            raise ValueError(f"preprocessing must be a JSON object; got {type(d).__name__}")
        expected = {"feature_names", "mean", "scale", "target", "classes"}
        if set(d) != expected:
            raise ValueError(
                f"preprocessing keys are {sorted(d)}; expected exactly {sorted(expected)}"
            )
        for key in ("feature_names", "mean", "scale"):
            if not isinstance(d[key], list):
                raise ValueError(f"preprocessing {key} must be a list; got {d[key]!r}")
        classes = d["classes"]
        if classes is not None and not isinstance(classes, list):
            raise ValueError(f"preprocessing classes must be a list or null; got {classes!r}")
        return cls(
            feature_names=tuple(d["feature_names"]),
            mean=tuple(d["mean"]),
            scale=tuple(d["scale"]),
            target=d["target"],
            classes=None if classes is None else tuple(classes),
        )


def fit_standardizer(
    X_train: np.ndarray,
    feature_names: Sequence[str],
    target: str | None = None,
    classes: Sequence[str] | None = None,
) -> Preprocessing:
    """A :class:`Preprocessing` whose mean and scale are those of ``X_train``.

    Parameters
    ----------
    X_train : ndarray (n_samples, n_features)
    feature_names : sequence of str, length n_features
    target, classes : see :class:`Preprocessing`
    """
    X = np.asarray(X_train, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = X.mean(axis=0)
        std = X.std(axis=0)
    huge = ~(np.isfinite(mean) & np.isfinite(std))
    if huge.any():
        # columns whose sum or squares overflow float64 (values near 1e154 and beyond): the
        # same statistics of the column divided by its largest magnitude m, times m
        m = np.abs(X[:, huge]).max(axis=0)
        unit = X[:, huge] / m
        mean[huge] = unit.mean(axis=0) * m
        std[huge] = unit.std(axis=0) * m
    scale = np.where(std > 0, std, 1.0)  # a constant feature maps to 0
    return Preprocessing(
        feature_names=tuple(feature_names),
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        target=target,
        classes=None if classes is None else tuple(classes),
    )
