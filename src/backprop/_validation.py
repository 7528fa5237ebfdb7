"""Checks at the boundary where a user's arrays enter the engine.

Each raises one ``ValueError`` (or ``TypeError`` for a wrong kind of object) that names
what is wrong and what was expected. Inside the engine nothing is checked again.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np

__all__ = [
    "MAX_COUNT",
    "as_path",
    "check_finite",
    "check_inputs",
    "check_targets",
    "check_sample_weight",
    "cut",
    "host_array",
    "is_count",
    "is_flag",
    "is_finite_number",
    "require_model",
    "short_repr",
    "unique_keys",
]


#: The largest count (epoch, step, batch size, seed...) a run takes: NumPy's int64 holds it,
#: and so does a float64 exactly (a checkpoint's JSON, read back).
MAX_COUNT = 2**53


def as_path(path: Any, name: str = "path") -> str:
    """A user's file path as a ``str``: a str, a path-like or bytes (decoded as the file
    system does); anything else is a TypeError, an empty path a ValueError (it would be
    the current folder)."""
    if not isinstance(path, str | bytes | os.PathLike):
        raise TypeError(f"{name} must be a file path (str or path-like); got {short_repr(path)}")
    text = os.fsdecode(os.fspath(path))
    if not text:
        raise ValueError(f"{name} is empty; expected a file path")
    return text


def is_count(x: Any, minimum: int = 0) -> bool:
    """An integer (Python's or NumPy's, not a bool) from ``minimum`` to :data:`MAX_COUNT`."""
    return isinstance(x, int | np.integer) and not isinstance(x, bool) and minimum <= x <= MAX_COUNT


def is_flag(x: Any) -> bool:
    """True or False (Python's or NumPy's): not ``"no"``, ``0`` or ``None``, which ``if``
    would read as a flag without a word."""
    return isinstance(x, bool | np.bool_)


def is_finite_number(x: Any) -> bool:
    """A real number (int or float, or NumPy's; not a bool) that is a finite float64: not
    NaN, not inf, not one of JSON's integers of hundreds of digits (``math.isfinite`` raises
    OverflowError on those)."""
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.integer | np.floating):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def cut(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters (``...`` marks the cut): for error lines."""
    return text if len(text) <= limit else text[:limit] + "..."


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: a user's value quoted in an error line."""
    return cut(repr(value), limit)


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, refusing a key given twice with ValueError (an
    ``object_pairs_hook``: ``json.loads`` alone keeps the last one silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {short_repr(key)}")
        out[key] = value
    return out


def require_model(obj: Any, what: str = "model") -> None:
    """Refuse with ``TypeError`` anything but a :class:`backprop.MLP` (or a subclass) where
    one is expected: ``what`` names the argument, e.g. ``"save_model's model"``.

    A path (arguments swapped) and a scikit-learn estimator (whose network is its
    ``model_``) are named as such. The class is recognised by its module and name: the
    engine's network imports this module, not the other way round.
    """
    if any(
        c.__module__ == "backprop.network" and c.__qualname__ == "MLP" for c in type(obj).__mro__
    ):
        return
    hint = ""
    if isinstance(obj, str | bytes | os.PathLike):
        hint = " (it is a file path: are the arguments swapped?)"
    elif callable(getattr(obj, "get_params", None)) and callable(getattr(obj, "fit", None)):
        hint = (  # a scikit-learn estimator
            f" (a {type(obj).__name__} is a scikit-learn estimator: est.save(path) saves "
            "one; its fitted network is est.model_)"
        )
    got = "None" if obj is None else f"{short_repr(obj)} (type {type(obj).__name__})"
    raise TypeError(f"{what} is {got}; expected a backprop.MLP{hint}")


def host_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a NumPy array of real numbers (device arrays are copied to the host; a data
    frame's nullable columns without a missing value are read as float64). A sparse matrix
    is refused (``x.toarray()`` makes it dense), and so is a frame's column of text or with
    a missing value, by its name."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = _torch_values(x, name)
    elif hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        x = x.get()
    elif type(x).__module__.startswith("array_api_strict"):
        x = np.from_dlpack(x)  # the array API's own exchange (it has no __array__ to rely on)
    elif isinstance(x, str | os.PathLike):  # not a .npy file's path, which fit reads itself
        raise TypeError(
            f"{name} is {os.fspath(x)!r}, a path or text; expected an array of numbers "
            "(fit, unless given distributed=False, also takes the path of a .npy file, as "
            "np.save writes it)"
        )
    elif hasattr(x, "toarray") and hasattr(x, "nnz"):  # scipy.sparse, not imported here
        raise TypeError(
            f"{name} is a sparse matrix ({type(x).__name__}, shape {tuple(x.shape)}); expected "
            f"a dense array of numbers, e.g. {name}.toarray()"
        )
    elif _is_pandas_frame(x):  # other libraries' frames (polars) go to np.asarray
        x = _frame_values(x, name)
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} could not be read as an array of numbers: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {arr.dtype}; expected real numbers (int or float), "
            "which are cast to the model's dtype"
        )
    return arr


def _is_pandas_frame(x: Any) -> bool:
    """Whether ``x`` is a pandas DataFrame, a subclass's (geopandas') too; pandas is not
    imported for it (a program that passes one has imported it)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(x, pd.DataFrame)


def _torch_values(x: Any, name: str) -> np.ndarray:
    """A torch tensor's values as NumPy's: a float type NumPy lacks (bfloat16, float8) as
    float32, exactly; a tensor with no data (the 'meta' device) or a sparse one refused by
    name, where torch's own words named neither."""
    if getattr(x, "is_meta", False):
        raise TypeError(f"{name} is a tensor on the 'meta' device, which holds no values")
    if str(getattr(x, "layout", "torch.strided")) != "torch.strided":
        raise TypeError(
            f"{name} is a sparse tensor ({x.layout}); expected a dense one, e.g. {name}.to_dense()"
        )
    x = x.detach().cpu().resolve_conj()
    if x.dtype.is_floating_point and str(x.dtype) not in _NUMPY_FLOATS:
        x = x.float()
    return x.numpy()


#: The torch float types NumPy reads as they are.
_NUMPY_FLOATS = ("torch.float16", "torch.float32", "torch.float64")


def _frame_values(frame: Any, name: str) -> Any:
    """A data frame's values for :func:`host_array`: refused column by column, by name,
    where a column does not hold real numbers or misses a value; a frame of NumPy's own
    number columns as it is (what ``np.asarray`` makes of it); one with pandas' nullable
    columns (``Int64``, ``Float64``, ``boolean``, whose values NumPy reads as objects) as a
    float64 array."""
    nullable = False
    for column, dtype in zip(frame.columns, frame.dtypes, strict=True):
        if getattr(dtype, "kind", "O") not in "biuf":
            raise TypeError(
                f"{name}'s column {column!r} has dtype {dtype}; expected real numbers (int or "
                "float): encode or drop it"
            )
        if not isinstance(dtype, np.dtype):  # an extension type: may hold pd.NA
            missing = np.flatnonzero(np.asarray(frame[column].isna()))
            if missing.size:
                raise ValueError(
                    f"{name}'s column {column!r} has a missing value (row {missing[0]}); "
                    "expected numbers in every row: fill or drop the missing values"
                )
            nullable = True
    return frame.to_numpy(dtype=np.float64) if nullable else frame


def _first(mask: np.ndarray) -> tuple[tuple[int, ...], str]:
    """The first True entry of ``mask``: its index, and that index as text (``2, 0``)."""
    index = tuple(int(i) for i in np.argwhere(mask)[0])
    return index, ", ".join(map(str, index))


def check_finite(arr: np.ndarray, name: str, dtype: Any = None) -> None:
    """Every entry finite, and within ``dtype``'s range when the model computes in a
    narrower type than ``arr`` (1e39 becomes inf in float32: NaN outputs, a 'diverged' run).
    """
    # A NaN or inf anywhere makes the sum NaN or inf, so a finite sum proves every entry
    # finite in one pass without a boolean temporary (the full check on MNIST's 47M values
    # took a noticeable share of a training epoch); only a non-finite sum needs the
    # entry-by-entry look (a sum of finite values can overflow too: no warning for that).
    if arr.dtype.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.add.reduce(arr, axis=None)
        if not np.isfinite(total) and not np.isfinite(arr).all():
            _, where = _first(~np.isfinite(arr))
            raise ValueError(
                f"{name} contains NaN or inf (first at index [{where}]); expected finite numbers"
            )
    if dtype is None or arr.size == 0:
        return
    target = np.dtype(dtype)
    if target.kind == "f" and target.itemsize < arr.dtype.itemsize:
        top = float(np.finfo(target).max)
        if arr.max() > top or arr.min() < -top:
            with np.errstate(over="ignore"):
                index, where = _first(np.abs(arr.astype(np.float64)) > top)
            raise ValueError(
                f"{name} has values beyond {target}'s range (first at index [{where}]: "
                f"{float(arr[index]):g}); expected magnitudes up to {top:.3g}, or a float64 model"
            )


def check_inputs(x: Any, n_features: int, name: str = "X", dtype: Any = None) -> np.ndarray:
    """Validate inputs: 2-D ``(n_samples, n_features)``, at least one row, finite (and
    within ``dtype``'s range, the model's, when given)."""
    arr = host_array(x, name)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, {n_features}); got shape {arr.shape}"
            + (" (reshape a single sample with x.reshape(1, -1))" if arr.ndim == 1 else "")
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has 0 rows; expected at least one sample (an empty batch)")
    if arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} columns but the model expects {n_features}")
    check_finite(arr, name, dtype)
    return arr


def check_targets(
    t: Any,
    n_samples: int,
    n_outputs: int,
    name: str = "T",
    dtype: Any = np.float64,
    loss: str | None = None,
) -> np.ndarray:
    """Validate targets: ``(n_samples, n_outputs)``, finite; for the cross-entropy losses
    (``loss``), probabilities in [0, 1], and for ``cross_entropy`` (a softmax over the
    outputs) rows that sum to 1.

    A 1-D array is accepted for one output (reshaped to a column), or as integer class
    labels in ``[0, n_outputs)``, which are one-hot encoded (for the cross-entropy losses
    also as whole floats, ``0.0, 1.0, 2.0``).
    """
    arr = host_array(t, name)
    # 0.0, 1.0, 2.0 (labels as pandas reads a column with a gap) are labels where the loss
    # takes probabilities; a regression's 1-D floats for several outputs are a mistake
    float_labels = arr.dtype.kind == "f" and loss in ("cross_entropy", "binary_cross_entropy")
    one_hot = False  # built here from labels: a distribution by construction
    if arr.ndim == 1 and arr.shape[0] == n_samples:
        if n_outputs == 1:
            arr = arr.reshape(-1, 1)
        elif arr.dtype.kind in "iub" or (float_labels and _not_whole(arr) is None):
            if arr.size and (arr.min() < 0 or arr.max() >= n_outputs):
                raise ValueError(
                    f"{name} holds class labels from {arr.min()} to {arr.max()}, but the model "
                    f"has {n_outputs} outputs; expected labels in [0, {n_outputs - 1}]"
                )
            onehot = np.zeros((n_samples, n_outputs), dtype)  # in the model's dtype: no recast
            onehot[np.arange(n_samples), arr.astype(np.intp)] = 1.0
            arr, one_hot = onehot, True
    if arr.shape != (n_samples, n_outputs):
        labels = "1-D integer class labels"
        if arr.ndim == 1 and arr.shape[0] == n_samples and float_labels:
            labels += f"; its values are not whole numbers, e.g. {_not_whole(arr):g}"
        raise ValueError(
            f"{name} has shape {arr.shape}; expected ({n_samples}, {n_outputs}): one row per "
            f"sample of X and one column per model output (or {labels})"
        )
    check_finite(arr, name, dtype)
    if loss in ("cross_entropy", "binary_cross_entropy") and not one_hot:
        _check_probabilities(arr, name, loss)
        if loss == "cross_entropy":
            _check_distributions(arr, name)
    return arr


def _not_whole(arr: np.ndarray) -> float | None:
    """The first entry of a 1-D float array that is not a finite whole number, or None
    when every entry is one (class labels read as floats)."""
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~(np.isfinite(arr) & (arr == np.round(arr))))
    return float(arr[bad[0]]) if bad.size else None


def _check_probabilities(arr: np.ndarray, name: str, loss: str) -> None:
    """Targets of a cross-entropy loss are probabilities (labels 0/1, one-hot rows, or soft
    labels): a label 2 or a row [2, -2] trained to a negative loss."""
    outside = (arr < 0) | (arr > 1)
    if outside.any():
        index, where = _first(outside)
        raise ValueError(
            f"{name} holds {float(arr[index]):g} (first at index [{where}]); loss {loss!r} "
            "takes probabilities in [0, 1] (0/1 labels or one-hot rows)"
        )


#: How far from 1 a softmax cross-entropy target row may sum: a mistake is far off (a
#: multi-hot row sums to 2 or more, an empty one to 0); real distributions are near
#: (softmax outputs in bfloat16 were 2.7e-3 off, 4-decimal CSV probabilities 1e-4).
ROW_SUM_TOLERANCE = 0.01


def _check_distributions(arr: np.ndarray, name: str) -> None:
    """Each row of a softmax cross-entropy's targets is a distribution over the classes: it
    sums to 1 within :data:`ROW_SUM_TOLERANCE`, or 5e-5 a class where more (soft and
    label-smoothed rows pass, however they were rounded). A multi-hot row (several
    labels), one summing to 0.2, or one of zeros (loss 0) trained without a word."""
    sums = arr.sum(axis=1, dtype=np.float64)
    # and 5e-5 a class: rows of probabilities rounded to 4 decimals, over many classes
    tolerance = max(ROW_SUM_TOLERANCE, 5e-5 * arr.shape[1])
    bad = np.flatnonzero(np.abs(sums - 1.0) > tolerance)
    if bad.size:
        row = int(bad[0])
        raise ValueError(
            f"{name}'s row {row} sums to {sums[row]:.9g}; loss 'cross_entropy' takes one "
            "distribution over the classes per row (one-hot, or soft labels summing to 1); "
            "for several labels per row use loss='binary_cross_entropy'"
        )


def check_sample_weight(
    w: Any, n_samples: int, name: str = "sample_weight", dtype: Any = None
) -> np.ndarray | None:
    """Validate sample weights: ``None`` or ``(n_samples,)``, finite (within ``dtype``'s
    range, the model's, when given), non-negative and not all zero."""
    if w is None:
        return None
    arr = host_array(w, name)
    if arr.shape != (n_samples,):
        raise ValueError(f"{name} has shape {arr.shape}; expected ({n_samples},), one per sample")
    check_finite(arr, name, dtype)
    if (arr < 0).any():
        raise ValueError(f"{name} has negative entries; expected weights >= 0")
    if arr.size and not arr.any():  # every row weighs 0: loss 0, nothing learned
        raise ValueError(f"{name} is all zeros; expected at least one weight > 0")
    return arr
