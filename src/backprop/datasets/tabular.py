"""CSV files: training sets with a named target column, and raw rows to predict on.

The format read (standard library :mod:`csv`, comma-separated, UTF-8 with or without a
byte-order mark): a header row naming the columns, then one row per sample with exactly as
many cells as the header. Blank lines are skipped. Every feature cell must be a finite
number; the target column may hold any strings.

The task, unless ``task`` is given:

* **regression** when every target cell is a number and either some value is not an
  integer (``2.5``) or there are more than :data:`MAX_CLASSES` distinct values;
* **classification** otherwise (labels such as ``setosa``, or a few integer codes).

Classification labels are mapped to ``0..k-1`` in sorted order (numeric order when all are
numbers, string order otherwise); regression targets become one float64 column.
Features are standardised with the mean and standard deviation of the training split; the
scaling and the label mapping are returned as a :class:`~backprop.preprocessing.Preprocessing`
that a model keeps, so :func:`read_csv_features` can turn raw rows into model inputs.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from ..preprocessing import Preprocessing, fit_standardizer
from ._base import Dataset, DatasetError, train_test_split

__all__ = ["MAX_CLASSES", "load_csv", "read_csv_features", "read_csv_table"]

MAX_CLASSES = 20  # a numeric target with more distinct values than this is a regression target


def read_csv_table(path: str | os.PathLike) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows of cells, and each row's line number in the file.

    Raises DatasetError for an unreadable or empty file, an empty or repeated column name,
    or a row whose number of cells differs from the header's (a ragged row).
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header: list[str] | None = None
            rows: list[list[str]] = []
            lines: list[int] = []
            for cells in reader:
                if not cells or all(not c.strip() for c in cells):
                    continue  # blank line
                if header is None:
                    header = [c.strip() for c in cells]
                    continue
                if len(cells) != len(header):
                    raise DatasetError(
                        f"{p}: line {reader.line_num} has {len(cells)} cells; expected "
                        f"{len(header)}, one per column of the header ({', '.join(header)})"
                    )
                rows.append(cells)
                lines.append(reader.line_num)
    except OSError as exc:
        raise DatasetError(f"{p}: cannot read CSV file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DatasetError(f"{p}: malformed CSV ({exc})") from None
    if header is None:
        raise DatasetError(f"{p}: the CSV file is empty; expected a header row and data rows")
    if any(not name for name in header):
        raise DatasetError(f"{p}: the header has an empty column name: {header}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DatasetError(f"{p}: the header repeats column names {repeated}; names must be unique")
    if not rows:
        raise DatasetError(f"{p}: the CSV file has a header but no data rows")
    return header, rows, lines


def _parse_number(cell: str) -> float | None:
    """The finite float in ``cell``, or None."""
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _numeric_columns(
    p: Path, header: list[str], rows: list[list[str]], lines: list[int], columns: list[str]
) -> np.ndarray:
    """The named columns as float64 (n_rows, len(columns)); DatasetError at the first bad cell."""
    index = [header.index(c) for c in columns]
    out = np.empty((len(rows), len(columns)), dtype=np.float64)
    for i, cells in enumerate(rows):
        for j, k in enumerate(index):
            v = _parse_number(cells[k])
            if v is None:
                what = (
                    "is empty" if not cells[k].strip() else f"{cells[k]!r} is not a finite number"
                )
                raise DatasetError(
                    f"{p}: line {lines[i]}, column {header[k]!r}: the cell {what}; "
                    "feature columns must hold numbers"
                )
            out[i, j] = v
    return out


def load_csv(
    path: str | os.PathLike,
    target: str | None,
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
    task: str | None = None,
) -> Dataset:
    """A CSV file as a :class:`Dataset` (see the module docstring for the rules).

    Parameters
    ----------
    path : str or path
    target : str
        The target column's name (required).
    seed, test_fraction
        The seeded split (stratified by class for classification); 0 gives no test split.
    task : {"classification", "regression"}, optional
        Overrides the automatic choice.

    Returns
    -------
    Dataset
        ``X_*`` float64 standardised (n, n_features); classification ``y_*`` int64 (n,),
        regression ``y_*`` float64 (n, 1); ``preprocessing`` set.
    """
    p = Path(path)
    header, rows, lines = read_csv_table(p)
    if target is None:
        raise DatasetError(
            f"{p}: name the target column (target=...); the columns are: {', '.join(header)}"
        )
    if target not in header:
        raise DatasetError(
            f"{p}: no target column {target!r}; the columns are: {', '.join(header)}"
        )
    if task not in (None, "classification", "regression"):
        raise DatasetError(f"task must be 'classification' or 'regression'; got {task!r}")
    features = [c for c in header if c != target]
    if not features:
        raise DatasetError(f"{p}: the only column is the target {target!r}; no features left")
    X = _numeric_columns(p, header, rows, lines, features)

    t = header.index(target)
    labels = [cells[t].strip() for cells in rows]
    for i, lab in enumerate(labels):
        if not lab:
            raise DatasetError(f"{p}: line {lines[i]}, target column {target!r}: the cell is empty")
    numbers = [_parse_number(lab) for lab in labels]
    numeric = all(v is not None for v in numbers)
    if task is None:
        values = [v for v in numbers if v is not None]
        many = numeric and len(set(values)) > MAX_CLASSES
        fractional = numeric and any(not float(v).is_integer() for v in values)
        task = "regression" if many or fractional else "classification"

    if task == "regression":
        if not numeric:
            i = next(i for i, v in enumerate(numbers) if v is None)
            raise DatasetError(
                f"{p}: line {lines[i]}, target column {target!r}: {labels[i]!r} is not a "
                "number; a regression target must be numeric"
            )
        y = np.asarray(numbers, dtype=np.float64).reshape(-1, 1)
        train_idx, test_idx = train_test_split(len(rows), test_fraction, seed)
        classes: list[str] | None = None
        n_classes = None
    else:
        distinct = set(labels)
        if numeric:
            classes = sorted(distinct, key=lambda s: (float(s), s))
        else:
            classes = sorted(distinct)
        if len(classes) < 2:
            raise DatasetError(
                f"{p}: target column {target!r} has a single class ({classes[0]!r}); "
                "classification needs at least two"
            )
        code = {c: k for k, c in enumerate(classes)}
        y = np.asarray([code[lab] for lab in labels], dtype=np.int64)
        train_idx, test_idx = train_test_split(len(rows), test_fraction, seed, labels=y)
        n_classes = len(classes)

    prep = fit_standardizer(X[train_idx], features, target=target, classes=classes)
    X_std = prep.transform(X)
    return Dataset.from_split(
        str(path),
        X_std,
        y,
        train_idx,
        test_idx,
        task=task,
        n_classes=n_classes,
        class_names=classes,
        feature_names=features,
        image_shape=None,
        preprocessing=prep,
    )


def read_csv_features(
    path: str | os.PathLike, preprocessing: Preprocessing | None = None, *, raw: bool = False
) -> np.ndarray:
    """Rows of a CSV file as model inputs (what ``backprop predict MODEL INPUT.csv`` feeds).

    Parameters
    ----------
    path : str or path
        A CSV file with a header row. With ``preprocessing``, it must have every column in
        ``preprocessing.feature_names`` (any order; other columns, such as the target,
        are ignored). Without, every column is a feature.
    preprocessing : Preprocessing, optional
        The training data's scaling (``model.preprocessing``).
    raw : bool
        Return the numbers as read, without standardising.

    Returns
    -------
    ndarray (n_rows, n_features), float64
        ``preprocessing.transform(raw rows)`` in the training column order, or the raw
        numbers when ``raw`` or without ``preprocessing``.

    Raises
    ------
    DatasetError
        Ragged rows, non-numeric or empty cells (naming line and column), missing columns.
    """
    p = Path(path)
    header, rows, lines = read_csv_table(p)
    if preprocessing is None:
        return _numeric_columns(p, header, rows, lines, header)
    missing = [c for c in preprocessing.feature_names if c not in header]
    if missing:
        raise DatasetError(
            f"{p}: missing the feature columns {missing} the model was trained on; "
            f"the file has columns: {', '.join(header)}"
        )
    X = _numeric_columns(p, header, rows, lines, list(preprocessing.feature_names))
    return X if raw else preprocessing.transform(X)
