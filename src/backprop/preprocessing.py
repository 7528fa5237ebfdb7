"""Input scaling, label mapping and target scaling of a training set, kept with the model.

A model trained on a CSV file sees standardised features and class indices (or
standardised regression targets); to predict on raw rows later it needs the same scaling
and the way back from an output to the original label (or to the target's units).
:class:`Preprocessing` holds exactly that, as plain numbers and strings, so a model file
stores it as JSON (:meth:`Preprocessing.to_dict`) and reads it back with validation
(:meth:`Preprocessing.from_dict`).

Standardisation: ``x_std = (x_raw - mean) / scale``, with ``mean`` and ``scale`` (the
population standard deviation, ``ddof=0``) measured on the training split; a constant
feature gets ``scale = 1`` so that it maps to 0 instead of dividing by zero. Regression
targets the same way (:meth:`Preprocessing.with_target_scaling`): the network is trained
on ``(t - target_mean) / target_scale`` and its outputs ``z`` mean
``z * target_scale + target_mean`` (:meth:`Preprocessing.unscale_targets`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Preprocessing", "fit_standardizer", "in_target_units"]


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
    target_mean, target_scale : tuple of float (one per output) or None
        Regression only: the network's outputs are standardised targets,
        ``t_std = (t - target_mean) / target_scale``; None when the targets are not scaled.
    """

    feature_names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    target: str | None = None
    classes: tuple[str, ...] | None = None
    target_mean: tuple[float, ...] | None = None
    target_scale: tuple[float, ...] | None = None

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
        if (self.target_mean is None) != (self.target_scale is None):
            raise ValueError("preprocessing target_mean and target_scale come together")
        if self.target_mean is not None:
            if self.classes is not None:
                raise ValueError("preprocessing target scaling applies to regression, not classes")
            tm, ts = self.target_mean, self.target_scale
            if not (0 < len(tm) == len(ts)):  # type: ignore[arg-type]
                raise ValueError(
                    "preprocessing target_mean and target_scale need one number per output; "
                    f"got {len(tm)} and {len(ts)}"  # type: ignore[arg-type]
                )
            for name, values in (("target_mean", tm), ("target_scale", ts)):
                for v in values:  # type: ignore[union-attr]
                    if (
                        isinstance(v, bool)
                        or not isinstance(v, int | float)
                        or not math.isfinite(v)
                    ):
                        raise ValueError(
                            f"preprocessing {name} values must be finite numbers; got {v!r}"
                        )
            if any(s <= 0 for s in ts):  # type: ignore[union-attr]
                raise ValueError(f"preprocessing target_scale values must be > 0; got {list(ts)}")

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
        return _standardised(X, np.asarray(self.mean), np.asarray(self.scale))

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Standardised features -> raw ones, ``X * scale + mean`` (float64; inf where a raw
        value is beyond float64), the inverse of :meth:`transform`.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        """
        X = np.asarray(X, dtype=np.float64)
        return _unstandardised(X, np.asarray(self.mean), np.asarray(self.scale))

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

    @property
    def scales_targets(self) -> bool:
        """Whether the network's outputs are standardised regression targets."""
        return self.target_mean is not None

    def scale_targets(self, T: Any) -> np.ndarray:
        """Targets in the target's units -> what the network is trained on.

        Parameters
        ----------
        T : array-like (n_samples, n_outputs)

        Returns
        -------
        ndarray (n_samples, n_outputs), float64
            ``(T - target_mean) / target_scale``, or ``T`` as float64 without target scaling.
        """
        T = np.asarray(T, dtype=np.float64)
        if self.target_mean is None:
            return T
        return _standardised(T, np.asarray(self.target_mean), np.asarray(self.target_scale))

    def unscale_targets(self, Z: Any) -> np.ndarray:
        """Network outputs -> predictions in the target's units.

        Parameters
        ----------
        Z : array-like (n_samples, n_outputs), host (NumPy) values

        Returns
        -------
        ndarray (n_samples, n_outputs), float64
            ``Z * target_scale + target_mean``, or ``Z`` as float64 without target scaling.
        """
        Z = np.asarray(Z, dtype=np.float64)
        if self.target_mean is None:
            return Z
        return _unstandardised(Z, np.asarray(self.target_mean), np.asarray(self.target_scale))

    def with_target_scaling(self, T_train: Any) -> Preprocessing:
        """This preprocessing plus the standardisation of the regression targets
        ``T_train`` (n_samples, n_outputs): their mean and population standard deviation (a
        constant target gets scale 1)."""
        T = np.asarray(T_train, dtype=np.float64)
        mean, std = _column_stats(T.reshape(T.shape[0], -1))
        return dataclasses.replace(
            self,
            target_mean=tuple(float(v) for v in mean),
            target_scale=tuple(float(v) for v in np.where(std > 0, std, 1.0)),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: lists of numbers and strings only (the target scaling's keys
        only when there is one, so a record without it is the same as before it existed)."""
        d: dict[str, Any] = {
            "feature_names": list(self.feature_names),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "target": self.target,
            "classes": None if self.classes is None else list(self.classes),
        }
        if self.target_mean is not None and self.target_scale is not None:
            d["target_mean"] = [float(v) for v in self.target_mean]
            d["target_scale"] = [float(v) for v in self.target_scale]
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Preprocessing:
        """Rebuild from :meth:`to_dict` output, validating every field (ValueError otherwise)."""
        if not isinstance(d, dict):
            raise ValueError(f"preprocessing must be a JSON object; got {type(d).__name__}")
        expected = {"feature_names", "mean", "scale", "target", "classes"}
        scaled = expected | {"target_mean", "target_scale"}
        if set(d) not in (expected, scaled):
            raise ValueError(
                f"preprocessing keys are {sorted(d)}; expected exactly {sorted(expected)}, "
                "or those and target_mean, target_scale"
            )
        for key in ("target_mean", "target_scale"):
            if key in d and not isinstance(d[key], list):
                raise ValueError(f"preprocessing {key} must be a list; got {d[key]!r}")
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
            target_mean=tuple(d["target_mean"]) if "target_mean" in d else None,
            target_scale=tuple(d["target_scale"]) if "target_scale" in d else None,
        )


#: Below this magnitude a column's squares underflow float64's normal range (1e-308).
_TINY = 1e-150


def _standardised(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(X - mean) / scale`` for ``X`` (n, k) and per-column ``mean`` and ``scale`` (k,),
    also where ``X - mean`` overflows float64 (a value and a mean of opposite signs beyond
    9e307: -1.5e308 was refused as too far from a mean of 7.5e307 with scale 1.3e308, one
    of its own training rows). There it is ``(X/2 - mean/2) / scale * 2``: halving numbers
    that large is exact, so every other value is as before, to the bit. A result beyond
    float64 is still inf (the callers name it)."""
    with np.errstate(over="ignore"):
        d = X - mean
    far = np.isinf(d) & np.isfinite(X)
    if not far.any():
        return d / scale
    half = X[far] / 2 - np.broadcast_to(mean, X.shape)[far] / 2
    d[far] = 0.0
    Z = d / scale
    Z[far] = half / np.broadcast_to(scale, X.shape)[far] * 2
    return Z


def _unstandardised(Z: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``Z * scale + mean`` (the inverse of :func:`_standardised`), also where ``Z * scale``
    overflows float64 and the sum does not (-1.5 standardised with scale 1.3e308 and mean
    7.5e307 is -1.2e308: it was -inf, with an overflow warning). There it is ``(Z * scale/2
    + mean/2) * 2``, exact for values that large; a sum beyond float64 is inf, silently."""
    with np.errstate(over="ignore"):
        Y = Z * scale + mean
        far = np.isinf(Y) & np.isfinite(Z)
        if far.any():
            half = Z[far] * np.broadcast_to(scale / 2, Y.shape)[far]
            Y[far] = (half + np.broadcast_to(mean / 2, Y.shape)[far]) * 2
    return Y


def _column_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and population standard deviation, also for columns whose sum or
    squares overflow float64 (values near 1e154 and beyond) or whose squares underflow
    (all below 1e-150, whose spread would read as 0): those are the statistics of the
    column divided by its largest magnitude m, times m. A column of one value has exactly
    that mean and a deviation of 0 (summed, 0.3 ten times has the mean 0.29999999999999993
    and a deviation of 5.6e-17, which as a scale made 0.31 read as 1.8e14 deviations); so
    has a column whose spread is within the rounding of its sums (nine 0.3 and one 0.1 +
    0.2; scikit-learn's bound for a constant feature, var <= n eps var + (n eps mean)^2)."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = X.mean(axis=0)
        std = X.std(axis=0)
    m = np.abs(X).max(axis=0) if X.shape[0] else np.zeros(X.shape[1])
    odd = ~(np.isfinite(mean) & np.isfinite(std)) | ((m > 0) & (m < _TINY))
    if odd.any():
        unit = X[:, odd] / m[odd]
        mean[odd] = unit.mean(axis=0) * m[odd]
        std[odd] = unit.std(axis=0) * m[odd]
    if X.shape[0]:
        exact = (X == X[0]).all(axis=0)
        mean[exact] = X[0, exact]
        n, eps = X.shape[0], np.finfo(np.float64).eps
        unit = np.where(m > 0, m, 1.0)  # the bound at unit scale: no square overflows
        var, mu = (std / unit) ** 2, mean / unit
        std[exact | (var <= n * eps * var + (n * eps * mu) ** 2)] = 0.0
    return mean, std


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
    mean, std = _column_stats(np.asarray(X_train, dtype=np.float64))
    scale = np.where(std > 0, std, 1.0)  # a constant feature maps to 0
    return Preprocessing(
        feature_names=tuple(feature_names),
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        target=target,
        classes=None if classes is None else tuple(classes),
    )


def in_target_units(preprocessing: Preprocessing | None, Z: Any) -> Any:
    """A model's outputs ``Z`` (host values) in the target's units: its preprocessing's
    :meth:`~Preprocessing.unscale_targets` (float64), or ``Z`` unchanged for a model without
    preprocessing."""
    return Z if preprocessing is None else preprocessing.unscale_targets(Z)
