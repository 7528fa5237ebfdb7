"""Evaluation metrics, NumPy only.

Classification metrics take class labels: 1-D integer arrays ``(n,)``. A 2-D array
``(n, k)`` of one-hot rows, probabilities or scores is turned into labels by ``argmax``
over its columns, so ``accuracy(T, model.predict(X))`` works directly.

=====================  ===============================================================
accuracy               ``(1/n) sum_i [y_i = p_i]``
confusion_matrix       ``C[a, b]`` = rows with true class ``a`` predicted as ``b``
precision (class c)    ``C[c, c] / sum_a C[a, c]`` (0 when class c is never predicted)
recall (class c)       ``C[c, c] / sum_b C[c, b]`` (0 when class c never occurs)
f1 (class c)           ``2 P R / (P + R)`` (0 when P + R = 0)
mse                    ``(1/(n m)) sum_ij (y_ij - p_ij)^2``
mae                    ``(1/(n m)) sum_ij |y_ij - p_ij|``
r2_score               ``1 - SS_res / SS_tot`` per output column, averaged over columns;
                       a constant column scores 1 when predicted exactly, else 0
=====================  ===============================================================

The zero conventions are scikit-learn's (``zero_division=0``, ``force_finite=True``), and
a column of one value is constant even where rounding leaves its ``SS_tot`` a tiny positive
number (ten 0.1s), where scikit-learn's R^2 runs to -5e27.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validation import is_count, short_repr

__all__ = [
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "mae",
    "mse",
    "precision_recall",
    "r2_score",
    "regression_report",
]


#: The largest class label a metric takes; and the most classes it counts unless told
#: ``n_classes`` (a label of 10**6 is more likely an identifier than a class index, and its
#: confusion matrix would hold 10**12 counts).
MAX_LABEL = 2**53
MAX_INFERRED_CLASSES = 10_000


def _labels(y: Any, name: str) -> np.ndarray:
    """Class labels (n,) int64 from labels, or argmax of (n, k) one-hot / scores."""
    a = np.asarray(y)
    if a.ndim == 2:
        if a.shape[1] < 2:
            # argmax of one column is always 0: a single output must be thresholded first
            raise ValueError(
                f"{name} has shape {a.shape}; expected (n,) labels or (n, k >= 2) scores "
                "(threshold a single output column into labels first)"
            )
        return np.argmax(a, axis=1).astype(np.int64)
    if a.ndim != 1:
        raise ValueError(f"{name} has shape {a.shape}; expected (n,) labels or (n, k) scores")
    if a.dtype == np.bool_:  # False/True: classes 0 and 1, as scikit-learn reads them
        a = a.astype(np.int64)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        given = a.dtype
        if np.issubdtype(a.dtype, np.floating):  # (float16's limit is below MAX_LABEL)
            a = a.astype(np.float64)
        whole = np.issubdtype(a.dtype, np.floating) and np.all(
            (np.abs(a) <= MAX_LABEL) & (a == np.round(a))  # NaN and inf are not labels
        )
        if not whole:
            raise ValueError(f"{name} must hold integer class labels; got dtype {given}")
    labels = a.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} holds the negative label {labels.min()}; expected labels >= 0")
    return labels


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(
            f"y_true has {t.shape[0]} rows but y_pred has {p.shape[0]}; expected equal"
        )
    if t.shape[0] == 0:
        raise ValueError("y_true and y_pred are empty; expected at least one row")
    return t, p


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of rows whose predicted class is the true class.

    Parameters
    ----------
    y_true, y_pred : array (n,) of int labels, or (n, k) one-hot / scores

    Returns
    -------
    float in [0, 1]
    """
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """Counts of (true, predicted) class pairs.

    Parameters
    ----------
    y_true, y_pred : array (n,) of int labels, or (n, k) one-hot / scores
    n_classes : int, optional
        k; default ``max(label) + 1`` over both arrays.

    Returns
    -------
    ndarray (k, k), int64
        ``C[a, b]`` = number of rows of true class ``a`` predicted as ``b`` (rows true,
        columns predicted).
    """
    return _confusion(*_pair(y_true, y_pred), n_classes)


def _confusion(
    t: np.ndarray, p: np.ndarray, n_classes: Any, given: str = "", more: str = "n_classes"
) -> np.ndarray:
    """The confusion matrix of labels ``t`` and ``p``; ``given`` says where ``n_classes``
    came from, for the error when a label is out of range, and ``more`` what names more
    than :data:`MAX_INFERRED_CLASSES` classes."""
    top = int(max(t.max(), p.max())) + 1
    if n_classes is None:
        if top > MAX_INFERRED_CLASSES:
            raise ValueError(
                f"the labels go up to {top - 1}; expected class indices 0..k-1 (give "
                f"{more} for more than {MAX_INFERRED_CLASSES:,} classes)"
            )
        k = top
    elif is_count(n_classes, 1):
        k = int(n_classes)
    else:
        raise ValueError(f"n_classes must be a positive integer; got {short_repr(n_classes)}")
    if k < top:
        given = given or f"n_classes={k}"
        raise ValueError(f"{given} but the labels go up to {top - 1}; expected at most {k - 1}")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def precision_recall(
    y_true: Any, y_pred: Any, n_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall.

    Returns
    -------
    precision, recall : ndarray (k,), float64
        ``precision[c] = C[c, c] / (column c's sum)``, ``recall[c] = C[c, c] / (row c's
        sum)``, 0 where the denominator is 0.
    """
    return _precision_recall(confusion_matrix(y_true, y_pred, n_classes))


def _precision_recall(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hits = np.diag(C).astype(np.float64)
    predicted, actual = C.sum(axis=0), C.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    return precision, recall


def _regression_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    t = t.reshape(-1, 1) if t.ndim == 1 else t
    p = p.reshape(-1, 1) if p.ndim == 1 else p
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(
            f"y_true has shape {np.shape(y_true)} and y_pred {np.shape(y_pred)}; expected the "
            "same shape, (n,) or (n, m)"
        )
    if t.shape[0] == 0:
        raise ValueError("y_true and y_pred are empty; expected at least one row")
    for name, a in (("y_true", t), ("y_pred", p)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} holds NaN or inf; expected finite numbers")
    return t, p


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error over all entries; arrays (n,) or (n, m) of the same shape."""
    t, p = _regression_pair(y_true, y_pred)
    with np.errstate(over="ignore"):  # errors beyond 1e154 square to inf, the right answer
        return float(np.mean((t - p) ** 2))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error over all entries; arrays (n,) or (n, m) of the same shape."""
    t, p = _regression_pair(y_true, y_pred)
    with np.errstate(over="ignore"):
        error = float(np.mean(np.abs(t - p)))
    if math.isinf(error):  # t - p, or the sum, beyond float64 where the mean need not be
        # (1.7e308 predicted as 0, in any number of rows): the mean at the scale of the
        # power of two at or below the largest magnitude, where every difference is under 4
        # and no sum overflows; inf if the mean itself is beyond float64. (A retry on the
        # overflow, not a second formula for every input: ordinary errors keep their bits.)
        top = max(float(np.abs(t).max()), float(np.abs(p).max()))
        scale = float(np.ldexp(1.0, int(np.frexp(top)[1]) - 1))
        with np.errstate(over="ignore"):
            error = float(np.mean(np.abs(t / scale - p / scale))) * scale
    return error


def r2_score(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination, averaged over output columns.

    Parameters
    ----------
    y_true, y_pred : array (n,) or (n, m)

    Returns
    -------
    float
        Per column ``1 - sum (y - p)^2 / sum (y - mean(y))^2``; a constant column gives
        1 when predicted exactly and 0 otherwise. 1 is perfect; it can be negative.
    """
    t, p = _regression_pair(y_true, y_pred)
    # R^2 does not change when t and p are divided by one number: by the power of two
    # at or below t's largest magnitude (exact: scikit-learn's value to the bit) the squares
    # neither overflow (1e200) nor underflow (1e-200) where t's spread is finite
    scale = np.ldexp(1.0, np.frexp(np.abs(t).max(axis=0))[1] - 1)  # <= max|t|: finite
    with np.errstate(over="ignore"):
        t, p = t / scale, p / scale
        ss_res = np.sum((t - p) ** 2, axis=0)  # inf where p is beyond t's scale by 1e154
    ss_tot = np.sum((t - t.mean(axis=0)) ** 2, axis=0)
    # a column of one value is constant even where its computed mean is not that value
    # (ten 0.1s: SS_tot 5.8e-34, and an R^2 of -5e27 for predictions off by 0.001)
    constant = (ss_tot == 0) | (t.max(axis=0) == t.min(axis=0))
    with np.errstate(over="ignore"):  # a finite ss_res of 1e300 over a small ss_tot: -inf
        ratio = np.divide(ss_res, ss_tot, out=np.zeros_like(ss_res), where=~constant)
    scores = np.where(constant, np.where(ss_res == 0, 1.0, 0.0), 1.0 - ratio)
    return float(np.mean(scores))


def classification_report(
    y_true: Any, y_pred: Any, class_names: list[str] | None = None
) -> dict[str, Any]:
    """All classification metrics as a JSON-ready dict.

    Parameters
    ----------
    y_true, y_pred : array (n,) of int labels, or (n, k) one-hot / scores
    class_names : list of str, optional
        Names of classes ``0..k-1``; its length fixes k. Default: ``"0"``, ``"1"``, ...

    Returns
    -------
    dict
        ``n_samples``, ``accuracy``, ``confusion_matrix`` (list of k lists, rows true),
        ``per_class`` (list of dicts ``class``, ``precision``, ``recall``, ``f1``,
        ``support``), ``macro_precision``, ``macro_recall``, ``macro_f1``: the unweighted
        means over the classes that occur in either array (scikit-learn's default
        ``labels``): a class neither in the split nor predicted has no precision or recall
        to average (counted as 0, a split without one of 3 rare rows read 0.65 beside an
        accuracy of 0.98). ``per_class`` still lists every named class (without
        ``class_names``, every index up to the largest).
    """
    t, p = _pair(y_true, y_pred)
    if class_names is None:
        C = _confusion(t, p, None, more="class_names, one per class,")
    else:
        k = len(class_names)
        C = _confusion(t, p, k, f"class_names lists {k} classes")
    averaged = (C.sum(axis=0) + C.sum(axis=1)) > 0  # the labels that occur, as sklearn's
    precision, recall = _precision_recall(C)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    names = [str(c) for c in range(C.shape[0])] if class_names is None else list(class_names)
    support = C.sum(axis=1)
    return {
        "n_samples": int(C.sum()),
        "accuracy": float(np.trace(C) / C.sum()),
        "confusion_matrix": C.tolist(),
        "per_class": [
            {
                "class": names[c],
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c in range(C.shape[0])
        ],
        "macro_precision": float(precision[averaged].mean()),
        "macro_recall": float(recall[averaged].mean()),
        "macro_f1": float(f1[averaged].mean()),
    }


def regression_report(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """``n_samples``, ``mse``, ``mae``, ``r2`` of (n,) or (n, m) arrays, as a dict of floats."""
    t, _ = _regression_pair(y_true, y_pred)
    return {
        "n_samples": int(t.shape[0]),
        "mse": mse(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "r2": r2_score(y_true, y_pred),
    }
