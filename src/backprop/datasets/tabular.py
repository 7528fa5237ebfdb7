"""CSV files: training sets with a named target column, and raw rows to predict on.

The format read (standard library :mod:`csv`, comma-separated, UTF-8 with or without a
byte-order mark): a header row naming the columns (a column that is not read may be
unnamed, as pandas' index is), then one row per sample with exactly as many cells as the
header. Blank lines are skipped; a quoted cell must be closed (a stray quote is an error
naming its line, not the rest of the file read as one cell). Every
feature cell must be a finite number in ASCII decimal notation (:data:`_NUMBER`: ``١٢``,
``２`` and ``1_000`` are text); the target column may hold any strings. Spaces around a
column name or a label are not part of it (``a, b`` names the columns ``a`` and ``b``), and
a name that looks a column up (``target``, ``features``, a model's feature names) is
compared without them too.

The task, unless ``task`` is given:

* **regression** when every target cell is a number and either some value is not an
  integer (``2.5``) or there are more than :data:`MAX_CLASSES` distinct values;
* **classification** otherwise (labels such as ``setosa``, or a few integer codes);
* an **error** when most target cells are numbers that would make a regression target and
  some are not (a missing value such as ``NA``), naming the first.

Classification labels are mapped to ``0..k-1`` in sorted order (numeric order when all are
numbers, string order otherwise; numbers are compared as numbers, exactly: ``1``, ``1.0``
and ``01`` are one class, named as the file first writes it); regression targets become one float64
column.
Features are standardised with the mean and standard deviation of the training split; the
scaling and the label mapping are returned as a :class:`~backprop.preprocessing.Preprocessing`
that a model keeps, so :func:`read_csv_features` can turn raw rows into model inputs.
"""

from __future__ import annotations

import array
import bisect
import codecs
import csv
import io
import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from .._limits import check_limit, limit, open_regular
from .._validation import cut
from ..preprocessing import Preprocessing, fit_standardizer
from ._base import Dataset, DatasetError, train_test_split

__all__ = [
    "MAX_CLASSES",
    "load_csv",
    "read_csv_features",
    "read_csv_header",
    "read_csv_table",
    "refuse_a_single_class",
]

MAX_CLASSES = 20  # a numeric target with more distinct values than this is a regression target


def _blank(cells: list[str]) -> bool:
    """Whether a line read as ``cells`` is blank: empty, or white space alone. A line of
    separators (``,,,``: pandas writes a row of NaN so) is a row of empty cells, refused as
    any empty cell is: skipped, it left predict's output a row short, and every row after it
    beside the wrong input row. (Above the header such lines are skipped: _from_header.)"""
    return not cells or (len(cells) == 1 and not cells[0].strip())


def _from_header(rows: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    """``rows`` from the header on: a spreadsheet's empty rows above it (``,,``) are no
    header (they read as its empty names) and hold no data."""
    try:
        for line, cells in rows:
            if any(c.strip() for c in cells):
                yield line, cells
                break
        yield from rows
    finally:  # (closed early, as the block reader closes it: the file with it)
        rows.close()  # type: ignore[attr-defined]


def _csv_rows(p: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of every non-blank row of the CSV file ``p``, header first.

    The file must be a regular file of at most the limit ``csv_bytes`` (refused by type or
    size before it is read); rows are read one at a time.
    """
    with open_regular(p, "CSV file", DatasetError) as raw:
        check_limit("csv_bytes", os.fstat(raw.fileno()).st_size, f"CSV file {p} is", DatasetError)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        # strict: a quote never closed is an error, not the rest of the file in one cell
        reader = csv.reader(_bounded_lines(p, text), strict=True)
        start = 1  # the line the row being read starts on
        try:
            for cells in reader:
                if not _blank(cells):
                    yield start, cells
                start = reader.line_num + 1
        except OSError as exc:
            raise DatasetError(f"{p}: cannot read CSV file ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            kind = _binary_kind(p)
            if kind is not None:  # (it read 'not UTF-8 text (invalid start byte at byte 1)')
                raise DatasetError(f"{p}: {kind}; expected a UTF-8 CSV file") from None
            raise DatasetError(f"{p}: not UTF-8 text ({_first_bad_utf8(p)})") from None
        except csv.Error as exc:
            if "line contains NUL" in str(exc):  # (Python 3.10's reader; 3.11 reads them)
                raise DatasetError(f"{p}: line {reader.line_num}: {_NUL}") from None
            if "unexpected end of data" in str(exc):
                raise DatasetError(
                    f"{p}: line {start}: a quoted cell opened on this line is never closed "
                    '(expected a closing ")'
                ) from None
            raise DatasetError(f"{p}: line {reader.line_num}: malformed CSV ({exc})") from None


#: The first bytes of files that are often handed in for a CSV file, and what they are.
_MAGIC = (
    (b"\x1f\x8b", "a gzip file, not CSV text (decompress it first: gunzip)"),
    (b"PK\x03\x04", "a zip archive, not CSV text (an .xlsx workbook is one: save it as CSV)"),
    (b"\x93NUMPY", "a NumPy .npy file, not CSV text (backprop.training.fit takes its path)"),
    (b"\xff\xfe", "UTF-16 text, not UTF-8 (save it as UTF-8)"),
    (b"\xfe\xff", "UTF-16 text, not UTF-8 (save it as UTF-8)"),
)


def _binary_kind(p: Path) -> str | None:
    """What a file that is not UTF-8 text is, from its first bytes (None: unknown)."""
    try:
        with open(p, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    kind = next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
    if kind is None and _utf16_nuls(head):
        kind = "UTF-16 text without a byte-order mark, not UTF-8 (save it as UTF-8)"
    return kind


def _utf16_nuls(head: bytes) -> bool:
    """Whether ``head`` has the NULs of UTF-16 text: the high byte of a Latin letter, a digit
    or a comma is 0, so NULs fill at least a quarter of the byte pairs, all on one side.
    (Without a byte-order mark, an ASCII file reads as UTF-8 with NULs, which the header
    check names; a letter such as é stopped it before, as 'not UTF-8 text'.)"""
    pairs = len(head) // 2
    even, odd = head[0 : 2 * pairs : 2].count(0), head[1 : 2 * pairs : 2].count(0)
    return min(even, odd) == 0 and 4 * max(even, odd) >= pairs > 0


def _bounded_lines(p: Path, text: io.TextIOWrapper) -> Iterator[str]:
    """The file's lines, each at most the limit ``csv_line_chars``: the reader makes a list
    of a line's cells before anything can look at it, and a 50 MB line of commas took
    500 MB (the 1 GiB file limit allowed 10 GB)."""
    cap = limit("csv_line_chars")
    number = 0
    while line := text.readline(cap + 1):
        number += 1
        if len(line) > cap and not (len(line) == cap + 1 and line.endswith("\n")):
            check_limit(
                "csv_line_chars", len(line), f"{p}: line {number} has at least", DatasetError
            )
        yield line


def _first_bad_utf8(p: Path) -> str:
    """Where the file ``p`` stops being UTF-8, as "<reason> at byte B (line L)": the error
    the CSV reader saw counts bytes from the start of its decoder's chunk, not of the file."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1  # of the chunk's first byte
    with open_regular(p, "CSV file", DatasetError) as raw:
        while chunk := raw.read(1 << 16):
            pending = len(decoder.getstate()[0])  # bytes of a character the last chunk began
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:  # exc.start counts the pending bytes too
                newlines = chunk.count(b"\n", 0, max(exc.start - pending, 0))
                return (
                    f"{exc.reason} at byte {offset - pending + exc.start}, line {line + newlines}"
                )
            offset, line = offset + len(chunk), line + chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return f"{exc.reason} at the end of the file"
    return "the file changed while it was read"


_NUL = (
    "NUL characters: UTF-16 text without a byte-order mark? expected a UTF-8 CSV file "
    "(save it as UTF-8)"
)


def _check_header(p: Path, header: list[str]) -> None:
    """NULs and repeated names in a header; an unnamed column is refused only where it is
    read (:func:`_check_named`)."""
    if any("\x00" in name for name in header):  # (UTF-16 without a byte-order mark is, for
        raise DatasetError(f"{p}: the header holds {_NUL}")  # ASCII, UTF-8 with NULs)
    repeated = sorted(name for name, k in Counter(header).items() if k > 1 and name)
    if repeated:
        raise DatasetError(f"{p}: the header repeats column names {repeated}; names must be unique")


def _check_named(p: Path, header: list[str], read: Sequence[str], training: bool) -> None:
    """DatasetError when a column to be read has no name. An unnamed column left unread is
    no error: pandas' ``to_csv`` writes its index first under an empty name, and such a file
    was refused even where ``features`` named the other columns. ``training``: the feature
    columns can still be named (else they are every column, or a model's)."""
    if "" not in read:
        return
    leave_out = ", or name the feature columns to leave it out (features=...)" if training else ""
    if header[0] == "":
        raise DatasetError(
            f"{p}: the header's first column has no name ({header}): a pandas index? "
            f"re-save the file with to_csv(index=False){leave_out}"
        )
    raise DatasetError(
        f"{p}: the header has an empty column name (column {header.index('') + 1} of "
        f"{len(header)}: {header}); expected a name for every column read: name it{leave_out}"
    )


def _feature_columns(
    p: Path, header: list[str], target: str | None, features: Sequence[str] | None
) -> list[str]:
    """The feature columns: ``features`` (each in the header, the target not among them),
    or every column but the target."""
    if features is None:
        return [c for c in header if c != target]
    if isinstance(features, str | bytes):  # ("ab" was read as the columns a and b)
        raise DatasetError(f"features must be a list of column names; got the string {features!r}")
    if not features:
        raise DatasetError(f"{p}: features names no column; expected at least one feature")
    features = [c.strip() if isinstance(c, str) else c for c in features]  # as the header's
    repeated = sorted(c for c, k in Counter(features).items() if k > 1)
    if repeated:
        raise DatasetError(f"{p}: features repeats the columns {repeated}")
    missing = [c for c in features if c not in header]
    if missing:
        raise DatasetError(
            f"{p}: missing the feature columns {missing}; the file has columns: "
            f"{', '.join(header)}" + _separator_hint(header) + normalisation_hint(missing, header)
        )
    if target in features:
        raise DatasetError(f"{p}: the target column {target!r} is among the features")
    return list(features)


def _check_not_data(p: Path, header: list[str]) -> None:
    """A first line of numbers only is a file without a header, whose first row would be
    lost as column names, unless it is pandas' default names ``0,1,...,n-1`` (what
    ``DataFrame(array).to_csv(index=False)`` writes). Where a model's column names are
    looked up in the header, they decide instead."""
    if all(_parse_number(name) is not None for name in header) and header != [
        str(k) for k in range(len(header))
    ]:
        raise DatasetError(
            f"{p}: the first line ({cut(','.join(header))}) is all numbers, a row of data; "
            "expected a header line naming the columns first (such as x1,x2,label)"
        )


def _separator_hint(header: list[str]) -> str:
    """For an error about a header without the expected columns: when the whole header is one
    column holding a semicolon or a tab, the file is separated by that character, not by
    commas; say so (empty otherwise)."""
    if len(header) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs")):
            if sep in header[0]:
                return (
                    f" (the header is one column: the file looks separated by {name}; "
                    "expected commas)"
                )
    return ""


def columns_named(names: Sequence[str], source: object) -> list[str]:
    """A model's feature names as the columns of a CSV file they name: without surrounding
    spaces, as the header's names are read (a DataFrame's column '幅 ' was missing from its
    own to_csv file). Names that are one column so are a DatasetError: the columns 'a' and
    'a ' of an estimator both read the file's 'a'."""
    wanted = [c.strip() for c in names]
    if len(set(wanted)) < len(wanted):
        raise DatasetError(
            f"{source}: the model's feature columns {list(names)} repeat a name once "
            "surrounding spaces are taken off, as a CSV header's are; expected names that "
            "differ in more than spaces"
        )
    return wanted


def normalisation_hint(shown: Iterable[object], present: Iterable[str]) -> str:
    """For an error listing names that were not found: when one of ``shown`` is not ASCII
    and is one of ``present`` in another Unicode normalisation form (NFC and NFD ``café``
    print alike), say so, or the message lists two names that look the same (empty
    otherwise)."""
    nfc = {unicodedata.normalize("NFC", name) for name in present}
    if any(
        isinstance(name, str) and not name.isascii() and unicodedata.normalize("NFC", name) in nfc
        for name in shown
    ):
        return (
            " (the same letters in another Unicode normalisation form; names are compared exactly)"
        )
    return ""


def _check_width(p: Path, line: int, cells: list[str], header: list[str]) -> None:
    if len(cells) != len(header):
        raise DatasetError(
            f"{p}: line {line} has {len(cells)} cells; expected "
            f"{len(header)}, one per column of the header ({', '.join(header)})"
        )


def read_csv_header(path: str | os.PathLike) -> list[str]:
    """The column names of a CSV file's header as :func:`load_csv` reads them (blank rows
    skipped, quotes, surrounding spaces and a byte-order mark taken off); DatasetError for
    an empty file."""
    p = Path(path)
    for _, cells in _from_header(_csv_rows(p)):
        return [c.strip() for c in cells]
    raise DatasetError(f"{p}: the CSV file is empty; expected a header row and data rows")


def _header_and_rows(p: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]], int | None]:
    """The CSV file's header, checked (names without surrounding spaces: ``a, b`` names the
    columns a and b), its data rows still to read (:func:`_csv_rows`), and the number of the
    line after the header (None where a quoted name holds a line break)."""
    rows = _from_header(_csv_rows(p))
    try:
        line, first = next(rows)
    except StopIteration:
        raise DatasetError(
            f"{p}: the CSV file is empty; expected a header row and data rows"
        ) from None
    header = [c.strip() for c in first]
    _check_header(p, header)
    one_line = not any("\n" in c or "\r" in c for c in first)
    return header, rows, line + 1 if one_line else None


def read_csv_columns(path: str | os.PathLike, names: Sequence[str]) -> list[list[str]]:
    """The cells of the columns ``names`` of the CSV file ``path``, one list per data row,
    in the file's order (the rows :func:`read_csv_features` reads), as written.

    Raises DatasetError for an unreadable or empty file, a ragged row, or a name that is no
    column of the header (naming the columns it has). Memory: only those columns' cells.
    """
    p = Path(path)
    header, rows, _ = _header_and_rows(p)
    missing = [n for n in names if n not in header]
    if missing:
        raise DatasetError(
            f"{p} has no column {missing[0]!r}; its columns are: {', '.join(header)}"
            + normalisation_hint(missing, header)
        )
    index = [header.index(n) for n in names]
    kept = []
    for line, cells in rows:
        _check_width(p, line, cells, header)
        kept.append([cells[k] for k in index])
    return kept


def read_csv_table(path: str | os.PathLike) -> tuple[list[str], list[list[str]], list[int]]:
    """Header (names without surrounding spaces), rows of cells, and each row's line
    number in the file.

    Raises DatasetError for an unreadable, empty or over-limit file, an empty or repeated
    column name, or a row whose number of cells differs from the header's (a ragged row).
    (Every cell is kept as a string; :func:`load_csv` and :func:`read_csv_features` read
    the numbers row by row instead, at 8 bytes a cell.)
    """
    p = Path(path)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    for line, cells in _from_header(_csv_rows(p)):
        if header is None:
            header = [c.strip() for c in cells]
            continue
        _check_width(p, line, cells, header)
        rows.append(cells)
        lines.append(line)
    if header is None:
        raise DatasetError(f"{p}: the CSV file is empty; expected a header row and data rows")
    _check_header(p, header)
    _check_named(p, header, header, training=False)
    if not rows:
        raise DatasetError(f"{p}: the CSV file has a header but no data rows")
    return header, rows, lines


#: Target cells that read as a missing value where the other labels are numbers: pandas'
#: default marks (``read_csv``'s ``na_values``) but ``None``, which names classes too, and
#: ``?``, the UCI data sets' mark.
MISSING_VALUES = frozenset(
    ["NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "#N/A", "#N/A N/A",
     "#NA", "<NA>", "?"]
)  # fmt: skip


def label_value(label: str) -> Decimal | None:
    """A class label's exact value when it is a finite number (``1``, ``1.0`` and ``01`` are
    one; ``9007199254740993`` is not ``9007199254740992``), else None (a name, ``١`` and
    ``1_0`` among them: Decimal alone read them as 1 and 10)."""
    if _parse_number(label) is None:
        return None
    try:
        return Decimal(label.strip())  # (every spelling _NUMBER lets through)
    except InvalidOperation:  # an exponent beyond any Decimal's (1e-99999999999999999999,
        return None  # 0.0 as a float): its text names it ('[<class InvalidOperation>]')


def _refuse_labels_beyond_decimal(
    p: Path, target: str, labels: list[str], col: _Target, lines: array.array | _LineRuns
) -> None:
    """DatasetError naming the line of the first numeric class label that has no exact
    value (an exponent of more than 18 digits, 1e-99999999999999999999: it was
    '[<class 'decimal.InvalidOperation'>]')."""
    bad = next((c for c in labels if label_value(c) is None), None)
    if bad is not None:
        row = col.codes.index(col.labels[bad])
        raise DatasetError(
            f"{p}: line {lines[row]}, target column {target!r}: the class label {bad!r} is "
            "a number whose exponent has more than 18 digits; classes are told apart by their "
            "exact values: write it with a smaller exponent, or name it"
        )


def _exact(label: str) -> Decimal:
    """A numeric label's exact value (the label is known to be a number)."""
    value = label_value(label)
    assert value is not None
    return value


#: A number as a CSV file holds one, once stripped: ASCII decimal notation (sign, digits,
#: point, exponent), or nan or inf as float() spells them (read, then refused as not
#: finite). float() and Decimal() alone also read other scripts' digits and underscores:
#: the labels 1, ١ and ２ were one class, the cell 1_000 was 1000.
_NUMBER = re.compile(
    r"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[-+]?[0-9]+)?|nan|inf|infinity)",
    re.ASCII | re.IGNORECASE,
)


def _parse_number(cell: str) -> float | None:
    """The finite float in ``cell`` (surrounding white space allowed), or None."""
    try:
        v = float(cell)
    except ValueError:
        return None
    # float() reads exactly _NUMBER in ASCII text without '_'; the match on every cell made
    # load_csv half as slow again (200,000 rows of 11 numbers: 1.5 s to 2.3 s)
    if not (cell.isascii() and "_" not in cell) and not _NUMBER.fullmatch(cell.strip()):
        return None
    return v if math.isfinite(v) else None


#: A number with commas between groups of three digits, as a thousands separator writes
#: it (``1,234``, ``12,345,678.9``); ``1,234`` is also ``1.234`` with a decimal comma.
_GROUPED = re.compile(r"[-+]?[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]*)?", re.ASCII)
#: A number with a decimal comma (``3,14``, ``-,5``).
_DECIMAL_COMMA = re.compile(r"[-+]?[0-9]*,[0-9]+", re.ASCII)
#: A time of day (``12:30``, ``9:05:00.5 pm``, ``23:59Z``), and a date with or without one
#: (``2021-07-07``, ``2021/7/7``, ``07.07.2021``, ``7/7/21``, ``2021-07-07T12:30:00+02:00``).
_CLOCK = (
    r"[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?: ?[ap]\.?m\.?)?"
    r"(?: ?(?:z|utc|[-+][0-9]{2}:?[0-9]{2}))?"
)
_TIME = re.compile(_CLOCK, re.ASCII | re.IGNORECASE)
_DATE = re.compile(
    r"(?:[0-9]{4}([-/.])[0-9]{1,2}\1[0-9]{1,2}|[0-9]{1,2}([-/.])[0-9]{1,2}\2(?:[0-9]{2}){1,2})"
    rf"(?:(?:t| +){_CLOCK})?",
    re.ASCII | re.IGNORECASE,
)
#: The words of a two-valued column, each with its pair as (the 1, the 0).
_BOOLEAN = {"true": ("true", "false"), "false": ("true", "false"), "yes": ("yes", "no"),
            "no": ("yes", "no")}  # fmt: skip


def _comma_readings(text: str) -> tuple[str | None, str | None]:
    """The numbers a cell written with commas is: (read with a thousands separator, read
    with a decimal comma), None where it cannot be read so. ``1,234`` has both readings,
    ``12,345.6`` the first only, ``3,14`` the second only."""
    thousands = text.replace(",", "") if _GROUPED.fullmatch(text) else None
    decimal = text.replace(",", ".") if _DECIMAL_COMMA.fullmatch(text) else None
    return thousands, decimal


def _without_currency(text: str) -> str | None:
    """The number a currency amount is, its sign kept (``-$2,204.34``: ``-2,204.34``;
    ``12,50 €``: ``12,50``), or None when ``text`` has no currency sign (Unicode's category
    Sc) at its start or end."""
    sign = text[:1] if text[:1] in ("+", "-") else ""
    body = text[len(sign) :]
    rest = body.strip("".join(c for c in body if unicodedata.category(c) == "Sc") + " \t")
    if rest == body:
        return None
    if rest[:1] in ("+", "-") and not sign:  # ($-5)
        sign, rest = rest[0], rest[1:]
    return sign + rest


def _why(cell: str, training: bool) -> str:
    """Why a feature cell is refused, and what to do (the text of a category, a date or a
    decimal comma said only 'not a finite number'; a thousands separator was taken for a
    decimal comma, and removing it as told made 54,446 into 54.446). ``training``: the
    columns are still to choose (else they are a model's, which needs every one)."""
    text = cell.strip()
    leave_out = ", or leave the column out (features=...)" if training else ""
    if not text or text in MISSING_VALUES:
        what = "is empty" if not text else f"{text!r} reads as a missing value"
        return (
            f"the cell {what}; feature columns must hold numbers: fill it in or remove that "
            f"row{leave_out}"
        )
    refused = f"the cell {text!r} is not a finite number"
    thousands, decimal = _comma_readings(text)
    if thousands and decimal:
        return (
            f"{refused}: {thousands} with a thousands separator, or {decimal} with a decimal "
            "comma? feature columns must hold numbers with a decimal point and no thousands "
            f"separators: write {thousands} or {decimal}, whichever it means"
        )
    if thousands:
        return (
            f"{refused}: a thousands separator? feature columns must hold numbers without "
            f"thousands separators: remove the commas ({thousands})"
        )
    if decimal:
        return (
            f"{refused}: a decimal comma? feature columns must hold numbers written with a "
            f"decimal point: write {decimal}"
        )
    amount = _without_currency(text)
    if amount is not None:
        thousands, decimal = _comma_readings(amount)
        if _parse_number(amount) is not None:
            fix = f"strip the currency sign: write {amount}"
        elif thousands and decimal:
            fix = f"strip the currency sign and write {thousands} or {decimal}, whichever it means"
        elif thousands:
            fix = f"strip the currency sign and any thousands separators: write {thousands}"
        elif decimal:
            fix = f"strip the currency sign, with a decimal point for the comma: write {decimal}"
        elif re.fullmatch(r"[-+]?[0-9][0-9., ']*", amount, re.ASCII):  # 1.234,56; 1'234.5
            fix = "strip the currency sign and write the amount as a plain number"
        else:
            fix = ""
        if fix:
            return f"{refused}: a currency amount? feature columns must hold plain numbers: {fix}"
    if _NUMBER.fullmatch(text):  # inf, 1e999: a number, not a finite one
        return f"{refused}; feature columns must hold finite numbers"
    if not training:
        return (
            f"{refused}; the model was trained on numbers in this column (encoded as its "
            "training file had them)"
        )
    if _DATE.fullmatch(text) or _TIME.fullmatch(text):
        since = "days since a fixed date" if _DATE.fullmatch(text) else "hours since midnight"
        return (
            f"{refused}: a date or time? feature columns must hold numbers: turn it into "
            f"numbers (such as {since}){leave_out}"
        )
    if text.lower() in _BOOLEAN:
        one, zero = _BOOLEAN[text.lower()]
        return (
            f"{refused}: a {one}/{zero} column? feature columns must hold numbers: write it "
            f"as one column of 0 and 1 (1 for {one}, 0 for {zero}){leave_out}"
        )
    return (
        f"{refused}; feature columns must hold numbers: encode a category as numbers (a 0/1 "
        f"column per value){leave_out}"
    )


#: How many other columns an error about a feature cell names (then a count).
_OTHER_COLUMNS = 5


def _other_non_numbers(
    header: list[str],
    index: list[int],
    bad: int,
    line: int,
    cells: list[str],
    rows: Iterator[tuple[int, list[str]]],
) -> str:
    """For the error on the cell of column ``bad`` at ``line``: the other feature columns
    (``index``) with a cell that is not a finite number (empty ones too), each with the
    first line where it has one, as ``'; also not numbers: 'b' (line 2), ...'`` (empty
    when there are none). Only the first refused cell was named: a table with six text
    columns took seven runs to clean.

    On this error path only, the rest of ``rows`` is read, row by row as before, until
    more than :data:`_OTHER_COLUMNS` columns are found (then 'and at least N more' where
    a column was left to search) or every column has a non-number; a row that is ragged is
    skipped and one that cannot be read ends the search (each is named once this error is
    fixed).
    """
    first: dict[int, int] = {}  # column -> the first line where its cell is not a number
    todo = [k for k in index if k != bad]
    complete = True  # every column that could be found was: the count of the rest is exact
    try:
        while todo:
            found = [k for k in todo if _parse_number(cells[k]) is None]
            for k in found:
                first[k] = line
            if found:
                todo = [k for k in todo if k not in first]
            if len(first) > _OTHER_COLUMNS:
                complete = not todo
                break
            while True:
                line, cells = next(rows)
                if len(cells) == len(header):
                    break
    except (StopIteration, DatasetError):  # the end of the file, or a row that cannot be read
        pass
    if not first:
        return ""
    names = [f"{header[k]!r} (line {n})" for k, n in list(first.items())[:_OTHER_COLUMNS]]
    more = len(first) - _OTHER_COLUMNS
    if more > 0:
        names.append(f"and {'' if complete else 'at least '}{more} more")
    return "; also not numbers: " + ", ".join(names)


class _Target:
    """A target column read row by row: each row's number (NaN when the cell is not one)
    and its label's index among the distinct labels, which are kept only up to a bound
    (past it the column is a regression target, or has too many classes). :meth:`add`
    takes a row; the fast reader adds a block of rows at once, to the same fields
    (:meth:`add_cells`, :meth:`add_numbers`)."""

    def __init__(self, max_distinct: int) -> None:
        self.values = array.array("d")
        self.codes = array.array("q")
        self.labels: dict[str, int] = {}
        self.max_distinct = max_distinct
        self.too_many = False
        self.first_text: tuple[int, str] | None = None  # (line, label) of the first non-number
        self.first_missing: tuple[int, str] | None = None  # ... of the first MISSING_VALUES mark
        self.n_text = 0  # cells that are not numbers
        self.fractional = False
        self.numbers: set[str] = set()  # distinct numeric labels, up to MAX_CLASSES + 1

    def add(self, line: int, label: str) -> None:
        v = _parse_number(label)
        if v is None:
            self.values.append(math.nan)
            self.n_text += 1
            if self.first_text is None:
                self.first_text = (line, label)
            if self.first_missing is None and label in MISSING_VALUES:
                self.first_missing = (line, label)
        else:
            self.values.append(v)
            self.fractional = self.fractional or not v.is_integer()
            if len(self.numbers) <= MAX_CLASSES:
                self.numbers.add(label)
        self.codes.append(self._code(label))

    def _code(self, label: str) -> int:
        """The index of ``label`` among the distinct labels, a new one while there is room;
        -1 for a new label once there is none (:attr:`too_many`)."""
        code = self.labels.get(label)
        if code is None and not self.too_many:
            if len(self.labels) >= self.max_distinct:
                self.too_many = True
            else:
                code = self.labels[label] = len(self.labels)
        return -1 if code is None else code

    def labels_settled(self) -> bool:
        """Whether the labels of the rows still to add change nothing but :attr:`values`
        and :attr:`fractional` where they are numbers: the column has more distinct labels
        than are kept (so its codes are never read: it is a regression target, or has too
        many classes), more than MAX_CLASSES numeric ones, and none that is not a number."""
        return self.too_many and len(self.numbers) > MAX_CLASSES and self.first_text is None

    def add_numbers(self, values: np.ndarray) -> None:
        """:meth:`add` for rows whose labels are the numbers ``values`` (n,) float64, once
        :meth:`labels_settled` (their codes: -1, as codes are not read)."""
        self.values.frombytes(values.tobytes())
        self.codes.frombytes(np.full(len(values), -1, dtype=np.int64).tobytes())
        self.fractional = self.fractional or bool(np.any(values != np.floor(values)))

    def add_cells(self, lines: np.ndarray, cells: list[bytes]) -> bool:
        """:meth:`add` for each row of a block at once: ``lines`` (n,) their line numbers,
        ``cells`` their target cells as ASCII bytes, not yet stripped. Each distinct label
        is read once, the labels taken in the order the rows first hold them, which leaves
        every field as :meth:`add` row by row would. False, adding nothing, where a cell is
        empty (the row-by-row loop names it)."""
        label_of = {cell: cell.decode("ascii").strip() for cell in dict.fromkeys(cells)}
        labels = list(dict.fromkeys(label_of.values()))  # distinct, first held first
        position = {label: k for k, label in enumerate(labels)}
        if "" in position:
            return False
        at = {cell: position[label] for cell, label in label_of.items()}
        which = np.fromiter(map(at.__getitem__, cells), np.int64, count=len(cells))  # row -> label
        values = _ascii_numbers(labels)  # NaN: not a number
        text = np.isnan(values)
        text_rows = text[which]
        if text_rows.any():
            self.n_text += int(np.count_nonzero(text_rows))
            first = int(np.argmax(text_rows))
            if self.first_text is None:
                self.first_text = (int(lines[first]), labels[which[first]])
            missing = text & np.array([label in MISSING_VALUES for label in labels])
            if self.first_missing is None and missing[which].any():
                first = int(np.argmax(missing[which]))
                self.first_missing = (int(lines[first]), labels[which[first]])
        held = values[~text]
        self.fractional = self.fractional or bool(np.any(held != np.floor(held)))
        for k in np.flatnonzero(~text).tolist():
            if len(self.numbers) > MAX_CLASSES:
                break
            self.numbers.add(labels[k])
        codes = [self._code(label) for label in labels]  # (in the order rows first hold them)
        self.values.frombytes(values[which].tobytes())
        self.codes.frombytes(np.array(codes, dtype=np.int64)[which].tobytes())
        return True


# ---------------------------------------------------------------- the fast numeric reader
# The loop of _read_columns reads a file row by row: csv.reader, then _parse_number on every
# cell. On large numeric files that took 13-18x as long as pandas.read_csv (200,000 rows of
# 20 floats: benchmarks/csv_load.py), so _read_fast reads a file a block of whole lines at a
# time with NumPy, to the same bits. It is sure of less than the loop, and gives the rest back:
#   1. _numbers_of_block vectorises a block of plain ASCII numbers (every line as wide as
#      the header or blank, no quotes, no spaces in a number);
#   2. any other block is read by rows with the loop's steps (_rows_of_block, then
#      _numbers_of_rows);
#   3. anything those steps would refuse (an error to name), or that changes how lines are
#      counted (a lone \r), makes _read_fast return None: the loop then reads the whole file
#      and raises its error.
# tests/test_csv.py compares the two bit for bit on random and adversarial files.

#: Bytes read at a time (then cut after the last whole line): large enough that NumPy's
#: per-call cost is small, small enough that the block's work arrays stay in the cache and
#: add little to the peak memory.
_BLOCK_BYTES = 1 << 17
#: 10.0**k for k = 0..22, each exact in float64 (5**22 < 2**53).
_EXACT_POWERS_OF_TEN = np.array([float(10**k) for k in range(23)])
#: Numbers rounded at a time by _decimal_to_float (its 30-odd work arrays then fit in L2).
_CHUNK = 4096


class _NotFast(Exception):
    """Something the fast reader leaves to the row-by-row loop."""


def _ascii_numbers(texts: list[str]) -> np.ndarray:
    """:func:`_parse_number` of each ASCII text in ``texts`` (NaN for None), float() on all
    of them at once where none has an underscore and each is a number."""
    if "_" not in "".join(texts):
        try:
            values = np.fromiter(map(float, texts), np.float64, count=len(texts))
        except ValueError:
            pass
        else:  # (float() reads ASCII text as _parse_number does, but not finite numbers)
            values[~np.isfinite(values)] = math.nan
            return values
    parsed = [_parse_number(text) for text in texts]
    return np.array([math.nan if v is None else v for v in parsed], dtype=np.float64)


def _line_blocks(raw: io.BufferedIOBase, skip: int, cap: int) -> Iterator[bytes]:
    """Blocks of whole lines of the open file ``raw``, from its line ``skip`` on, each
    ending in ``\n`` (added after a last line without one), with no other line ends than
    ``\n`` and ``\r\n``. _NotFast where a line ends in a lone ``\r`` (which _csv_rows counts
    as a line of its own) or may be longer than ``cap`` characters (an error the loop names).
    """
    pending = b""
    while True:
        chunk = raw.read(_BLOCK_BYTES)
        data = pending + chunk if chunk else pending + b"\n" if pending else b""
        cut = data.rfind(b"\n") + 1
        if not cut:
            if not chunk:
                return
            if len(data) > 4 * cap:  # (UTF-8: at most 4 bytes a character)
                raise _NotFast
            pending = data
            continue
        block, pending, data = data[:cut], data[cut:], b""
        if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
            raise _NotFast
        if len(block) > cap and max(map(len, block.split(b"\n"))) > cap:
            raise _NotFast  # (a line has at most as many characters as bytes)
        while skip > 1 and block:  # the header's lines
            block, skip = block[block.find(b"\n") + 1 :], skip - 1
        if block:
            yield block


def _rows_of_block(block: bytes, first: int) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of the non-blank rows of ``block`` (its first line is line
    ``first``), as :func:`_csv_rows` reads them; _NotFast where it raises (text that is not
    UTF-8, a quoted cell still open at the block's end)."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise _NotFast from None
    if "\x00" in text:  # (Python 3.10's reader refuses NULs, 3.11 reads them)
        raise _NotFast
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = first
    try:
        for cells in reader:
            if not _blank(cells):
                yield start, cells
            start = first + reader.line_num
    except csv.Error:
        raise _NotFast from None


def _numbers_of_rows(
    rows: Iterator[tuple[int, list[str]]], ncols: int, index: list[int], t: int | None,
    target: _Target | None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The steps of the loop in :func:`_read_columns` for ``rows``: ``(X (n, len(index))
    float64, line numbers (n,) int64)``, the target cells added to ``target``; _NotFast
    where the loop would raise."""
    numbers = array.array("d")
    lines = array.array("q")
    for line, cells in rows:
        if len(cells) != ncols:
            raise _NotFast
        for k in index:
            v = _parse_number(cells[k])
            if v is None:
                raise _NotFast
            numbers.append(v)
        if target is not None:
            label = cells[t].strip()  # type: ignore[index]
            if not label:
                raise _NotFast
            target.add(line, label)
        lines.append(line)
    X = np.frombuffer(numbers, dtype=np.float64).reshape(len(lines), len(index))
    return X, np.frombuffer(lines, dtype=np.int64)


#: The decimal exponents that :func:`_decimal_to_float` covers, and (made on first use)
#: the high 64 bits of the 128-bit mantissa of each power of ten, rounded down.
_Q_MIN, _Q_MAX = -348, 347
_POWERS_OF_TEN: list[np.ndarray] = []


def _powers_of_ten() -> np.ndarray:
    """(``_Q_MAX - _Q_MIN + 1``,) uint64: for q = _Q_MIN.., the top 64 bits of 10**q scaled
    into [2**127, 2**128) and rounded down (Go's ``detailedPowersOfTen[.][1]``)."""
    if not _POWERS_OF_TEN:
        top = []
        for q in range(_Q_MIN, _Q_MAX + 1):
            if q >= 0:
                shift = (10**q).bit_length() - 128
                m = 10**q >> shift if shift > 0 else 10**q << -shift
            else:
                m = (1 << (127 + (10**-q).bit_length())) // 10**-q
            top.append(m >> 64)
        _POWERS_OF_TEN.append(np.array(top, dtype=np.uint64))
    return _POWERS_OF_TEN[0]


def _decimal_to_float(
    w: np.ndarray, q: np.ndarray, negative: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The float64 nearest to ``(-1 if negative else 1) * w * 10**q`` (ties to even, as
    float() rounds), for ``w`` (n,) uint64 in [1, 2**63) (overwritten) and ``q`` (n,) int64
    in [_Q_MIN, _Q_MAX]: ``(values, ok)``, where ``ok`` is False for the numbers this cannot
    decide (about 1 in 1,000: a product too close to a rounding boundary, or a result that
    is subnormal or overflows), which float() must read instead.

    The Eisel-Lemire algorithm as Go's strconv writes it (``eiselLemire64``; Lemire,
    "Number Parsing at a Gigabyte per Second", 2021): ``w`` shifted left until its top bit
    is set, times the 128-bit mantissa of 10**q, of which the high 64 bits hold the answer's
    53 and the rounding bits. Where Go widens the product to 192 bits, float() reads the
    number instead.
    """
    u64 = np.uint64
    # w's bit length, from the exponent of w as a float64 (rounding can carry it to 2**k)
    length = (w.astype(np.float64).view(u64) >> u64(52)) - u64(1022)
    length -= (w >> (length - u64(1))) == 0
    clz = u64(64) - length
    w <<= clz
    y = _powers_of_ten()[q - _Q_MIN]
    # the 128-bit product w * y from 32-bit halves (NumPy has no 64 x 64 -> 128 multiply)
    half = u64(0xFFFFFFFF)
    w0, w1, y0, y1 = w & half, w >> u64(32), y & half, y >> u64(32)
    middle = w1 * y0
    middle += (w0 * y0) >> u64(32)
    middle2 = w0 * y1
    middle2 += middle & half
    hi = w1 * y1
    hi += middle >> u64(32)
    hi += middle2 >> u64(32)
    lo = w * y
    low9 = hi & u64(0x1FF)
    ok = (low9 != u64(0x1FF)) | (lo + w >= w)  # else Go widens the product
    top = hi >> u64(63)
    mantissa = hi >> (top + u64(9))  # 54 bits: 53 and a rounding bit
    ok &= (lo != 0) | (low9 != 0) | ((mantissa & u64(3)) != 1)  # else a tie Go leaves
    mantissa += mantissa & u64(1)
    mantissa >>= u64(1)
    carry = mantissa >> u64(53)
    mantissa >>= carry
    exp2 = (217706 * q) >> 16  # floor(q * log2(10))
    exp2 += 1086 + top.astype(np.int64) + carry.astype(np.int64) - clz.astype(np.int64)
    ok &= (exp2 >= 1) & (exp2 <= 0x7FE)  # else subnormal, or too large
    bits = np.clip(exp2, 0, 0x7FF).astype(u64) << u64(52)
    bits |= mantissa & u64((1 << 52) - 1)
    bits |= negative.astype(u64) << u64(63)
    return bits.view(np.float64), ok


#: What np.fromstring reads: each byte a feature cell may hold (digits, signs) as itself,
#: line ends and exponent marks as commas (points are deleted), the NULs that blank the
#: other cells as spaces, and every other byte as "!", which no number holds.
_TOKENS = bytes(
    c if c in b"0123456789+-," else b","[0] if c in b"\neE" else b" "[0] if c == 0 else b"!"[0]
    for c in range(256)
)
#: The white space that str.strip() takes off: a line of only these is blank (_blank).
_BLANK = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def _numbers_of_block(
    block: bytes, ncols: int, index: list[int], t: int | None
) -> tuple[np.ndarray, list[bytes] | None, np.ndarray, int] | None:
    """Vectorised: ``(X (n, len(index)) float64, the cells (bytes) of column ``t`` or None,
    the rows' lines counted from the block's first (n,) int64, the block's number of
    lines)`` for a block of :func:`_line_blocks` whose lines each have ``ncols`` cells or
    are blank and whose cells in the columns ``index`` are ASCII decimal notation without
    spaces (:data:`_NUMBER`); None for any other block (read by rows instead). _NotFast
    where such a number is not finite.

    How: every cell is located by its separator; the cells that are not read are blanked;
    the feature cells' shapes are checked from the positions of their points, signs and
    exponent marks; their mantissas (points removed) and exponents are read as integers by
    ``np.fromstring``; :func:`_decimal_to_float` rounds ``mantissa * 10**exponent`` as
    float() does, and float() reads the few it cannot decide.
    """
    if not block.isascii() or b'"' in block or b"\x00" in block:
        return None
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")  # (lone \r: _line_blocks gave up)
    u = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero((u == 44) | (u == 10))  # where each cell ends
    at_line_end = u[ends] == 10
    n_lines = int(np.count_nonzero(at_line_end))
    v = u  # the text to read the numbers from, once the cells not read are blanked
    if len(ends) == n_lines * ncols and at_line_end[ncols - 1 :: ncols].all():
        rows = np.arange(n_lines)  # (every line has ncols cells)
        starts = np.empty_like(ends)
        starts[0], starts[1:] = 0, ends[:-1] + 1
    else:  # blank lines are skipped; a ragged row is read by rows (whose error it is)
        line_ends = np.flatnonzero(at_line_end)
        width = np.diff(line_ends, prepend=-1)
        first = np.concatenate(([0], ends[line_ends[:-1]] + 1))
        odd = np.flatnonzero(width != ncols)
        if any(block[first[i] : ends[line_ends[i]]].strip(_BLANK) for i in odd.tolist()):
            return None
        kept = width == ncols
        v = u.copy()
        v[_ranges(first[odd], ends[line_ends[odd]] + 1)] = 0
        starts = np.concatenate(([0], ends[:-1] + 1))[np.repeat(kept, width)]
        ends, rows = ends[np.repeat(kept, width)], np.flatnonzero(kept)
    n = len(rows)
    if n == 0:
        return np.empty((0, len(index))), None if t is None else [], rows, n_lines
    ends, starts = ends.reshape(n, ncols), starts.reshape(n, ncols)
    read = sorted(set(index))
    # (looked up in the list, a file of 10,000 columns took 15 s: ncols^2 a block)
    others = sorted(set(range(ncols)) - set(read))
    if others:  # blank each with the separator before it (after it, for the first column)
        v = u.copy() if v is u else v
        lo = np.concatenate([ends[:, c - 1] if c else starts[:, 0] for c in others])
        hi = np.concatenate([ends[:, c] + (0 if c else 1) for c in others])
        v[_ranges(lo, hi)] = 0
    read_text = block if v is u else v.tobytes()
    # (spaces after the last separator would read as one more number: 0)
    text = read_text.translate(_TOKENS, b".").rstrip(b" ")
    if b"!" in text:  # a byte no number holds (a letter, a space) in a feature cell (which
        return None  # np.fromstring refuses too: NumPy 2.2 with a warning, later an error)
    s, e = starts[:, read].ravel(), ends[:, read].ravel()  # the feature cells, in file order
    # each cell's exponent mark (at most one) and point (at most one, before the mark)
    if b"e" in read_text or b"E" in read_text:
        marks = np.flatnonzero((v | 32) == 101)
    else:
        marks = np.empty(0, dtype=np.intp)
    del read_text
    mark_cell = np.searchsorted(e, marks)
    if len(marks) and (np.diff(mark_cell) == 0).any():
        return None
    mantissa_end = e.copy()
    mantissa_end[mark_cell] = marks
    dots = np.flatnonzero(v == 46)
    if len(dots) == len(s) and ((dots > s - 1) & (dots < mantissa_end)).all():
        point = dots  # (one in every cell: the common case, without a search)
    else:
        dot_cell = np.searchsorted(e, dots)
        if (np.diff(dot_cell) == 0).any() or (dots > mantissa_end[dot_cell]).any():
            return None
        point = np.full(len(s), -1)
        point[dot_cell] = dots
    # a sign only first in the cell or first after its exponent mark
    first_byte = u[s]
    negative = first_byte == 45
    signed = negative | (first_byte == 43)
    exponent_signed = (u[marks + 1] == 45) | (u[marks + 1] == 43)
    n_signs = np.count_nonzero(v == 45) + np.count_nonzero(v == 43)
    if np.count_nonzero(signed) + np.count_nonzero(exponent_signed) != n_signs:
        return None
    digits = mantissa_end - s - signed - (point >= 0)
    exponent_digits = e[mark_cell] - marks - 1 - exponent_signed
    if (digits < 1).any() or (exponent_digits < 1).any():
        return None
    del v, dots, digits, signed, exponent_digits  # (the block's peak memory: see _BLOCK_BYTES)
    try:
        tokens = np.fromstring(text, dtype=np.int64, sep=",")
    except (ValueError, DeprecationWarning):  # (cannot happen once the cells are checked)
        return None
    del text
    if len(tokens) != len(s) + len(marks):
        return None
    has_mark = np.zeros(len(s), dtype=bool)
    has_mark[mark_cell] = True
    at = np.arange(len(s))  # each mantissa's token: its cell's, after the earlier exponents
    at += np.cumsum(has_mark) - has_mark
    whole = tokens[at]
    q = np.where(point >= 0, point + 1 - mantissa_end, 0)
    q[mark_cell] += tokens[at[mark_cell] + 1]
    full = np.iinfo(np.int64)  # a saturated mantissa, an exponent out of the table's range:
    sure = (whole != full.max) & (whole != full.min) & (q >= _Q_MIN) & (q <= _Q_MAX)  # float()
    # Clinger's fast path: a mantissa below 2**53 and a power of ten up to 10**22 are both
    # exact float64s, so one multiplication or division rounds their product as float() does
    w = np.abs(whole).astype(np.float64)
    easy = sure & (w < 2.0**53) & (q >= -22) & (q <= 22)
    power = _EXACT_POWERS_OF_TEN[np.clip(np.abs(q), 0, 22)]
    values = np.where(q >= 0, w * power, w / power)
    np.negative(values, out=values, where=negative)  # (0.0 and -0.0 alike)
    hard = np.flatnonzero(sure & ~easy & (whole != 0))
    del w, easy, power, tokens, at
    for k in range(0, len(hard), _CHUNK):  # (in pieces whose work arrays stay in the cache)
        i = hard[k : k + _CHUNK]
        values[i], sure[i] = _decimal_to_float(
            np.abs(whole[i]).astype(np.uint64), q[i], negative[i]
        )
    sure |= whole == 0  # (0.0 or -0.0, whatever q)
    for i in np.flatnonzero(~sure).tolist():  # float() reads what the above cannot decide
        value = _parse_number(block[s[i] : e[i]].decode("ascii"))
        if value is None:
            raise _NotFast
        values[i] = value
    X = values.reshape(n, len(read))
    if read != index:
        X = X[:, [read.index(k) for k in index]]
    cells = None
    if t is not None:
        spans = map(slice, starts[:, t].tolist(), ends[:, t].tolist())
        cells = list(map(block.__getitem__, spans))
    return X, cells, rows, n_lines


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The indices of every range ``[lo[i], hi[i])``, one after the other."""
    sizes = hi - lo
    offsets = np.repeat(lo - np.cumsum(sizes) + sizes, sizes)
    return np.arange(int(sizes.sum())) + offsets


class _LineRuns:
    """Each row's line number, as :func:`_read_columns` keeps them in an array, but stored
    as runs of consecutive lines (16 bytes a run: one run for a file without blank lines,
    where the array took 8 bytes a row): ``len(runs)``, ``runs[row]``."""

    def __init__(self) -> None:
        self.first_row = array.array("q")  # each run's first row, and its line
        self.first_line = array.array("q")
        self.n = 0

    def extend(self, lines: np.ndarray) -> None:
        """Append the rows on ``lines`` (n,) int64, ascending."""
        if not len(lines):
            return
        breaks = np.flatnonzero(np.diff(lines) != 1) + 1  # where a new run starts
        starts = np.concatenate(([0], breaks))
        if self.n and self.first_line[-1] + self.n - self.first_row[-1] == lines[0]:
            starts = starts[1:]  # (the first rows continue the last run)
        self.first_row.frombytes((starts + self.n).tobytes())
        self.first_line.frombytes(lines[starts].tobytes())
        self.n += len(lines)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, row: int) -> int:
        run = bisect.bisect_right(self.first_row, row) - 1
        return self.first_line[run] + row - self.first_row[run]


def _read_fast(
    p: Path, data_line: int, ncols: int, index: list[int], t: int | None, max_distinct: int
) -> tuple[np.ndarray, _Target | None, _LineRuns] | None:
    """What the loop of :func:`_read_columns` returns (the feature columns ``index`` as
    ``(n, len(index))`` float64, the target column ``t`` as a :class:`_Target`, each row's
    line number) for the rows from line ``data_line`` on, read a block of lines at a time;
    None where the loop must read the file instead (see this section's comment)."""
    numbers = array.array("d")
    lines = _LineRuns()
    target = None if t is None else _Target(max_distinct)
    line = data_line  # the number of the block's first line
    try:
        with open_regular(p, "CSV file", DatasetError) as raw:
            if os.fstat(raw.fileno()).st_size > limit("csv_bytes"):
                return None
            for block in _line_blocks(raw, data_line, limit("csv_line_chars")):
                # a column of numbers whose labels no longer matter: read as a feature is
                numeric_target = target is not None and target.labels_settled()
                read = [*index, t] if numeric_target else index
                parsed = _numbers_of_block(block, ncols, read, None if numeric_target else t)
                if parsed is None:
                    X, at = _numbers_of_rows(_rows_of_block(block, line), ncols, index, t, target)
                    line += block.count(b"\n")
                else:
                    X, cells, rows, n_lines = parsed
                    at = rows + line
                    if numeric_target:
                        target.add_numbers(X[:, -1])  # type: ignore[union-attr]
                        X = X[:, :-1]
                    elif cells and not target.add_cells(at, cells):  # type: ignore[union-attr]
                        return None
                    line += n_lines
                numbers.frombytes(X.tobytes())
                lines.extend(at)
    except (_NotFast, DatasetError, OSError):
        return None
    if not lines:
        return None
    X = np.frombuffer(numbers, dtype=np.float64).reshape(len(lines), len(index))
    return X, target, lines


def _read_columns(
    p: Path,
    choose: Callable[[list[str]], tuple[list[str], str | None]],
    training: bool = True,
) -> tuple[list[str], np.ndarray, _Target | None, array.array | _LineRuns]:
    """Read a CSV file row by row: the names of the feature columns ``choose(header)``
    picks, those columns as a float64 array ``(n_rows, n_features)`` (DatasetError at the
    first cell that is not a finite number), the target column it names (or None) as a
    :class:`_Target`, and each row's line number in the file. :func:`_read_fast` reads the
    same, faster, wherever it can.

    Memory: 8 bytes per feature cell and 24 per row, whatever the text (16 where the fast
    reader reads the file, which keeps line numbers as runs, and works on a block of
    :data:`_BLOCK_BYTES` at a time).
    """
    header, rows, data_line = _header_and_rows(p)
    features, target_name = choose(header)
    _check_named(p, header, [*features, *([] if target_name is None else [target_name])], training)
    column = {name: k for k, name in enumerate(header)}  # unique but '' (unread): checked above
    index = [column[c] for c in features]
    t = None if target_name is None else column[target_name]
    max_distinct = max(limit("classes"), MAX_CLASSES) + 1
    fast = (
        None if data_line is None else _read_fast(p, data_line, len(header), index, t, max_distinct)
    )
    if fast is not None:  # (the same arrays; benchmarks/csv_load.py)
        rows.close()
        X, target, lines = fast
        return features, X, target, lines
    target = None if t is None else _Target(max_distinct)
    numbers = array.array("d")
    lines = array.array("q")
    for line, cells in rows:
        if not any(c.strip() for c in cells):  # (a line of separators alone: _blank)
            raise DatasetError(
                f"{p}: line {line}: every cell is empty (a row of missing values, as pandas "
                "writes a row of NaN); expected a value in each column: fill the row in or "
                "remove it"
            )
        _check_width(p, line, cells, header)
        for k in index:
            v = _parse_number(cells[k])
            if v is None:
                why = _why(cells[k], training)
                also = _other_non_numbers(header, index, k, line, cells, rows)
                raise DatasetError(f"{p}: line {line}, column {header[k]!r}: {why}{also}")
            numbers.append(v)
        if target is not None:
            label = cells[t].strip()  # (' a' and 'a' are one class, as in a header)
            if not label:
                raise DatasetError(
                    f"{p}: line {line}, target column {target_name!r}: the cell is empty"
                )
            target.add(line, label)
        lines.append(line)
    n = len(lines)
    if n == 0:
        raise DatasetError(f"{p}: the CSV file has a header but no data rows")
    X = np.frombuffer(numbers, dtype=np.float64).reshape(n, len(features))
    return features, X, target, lines


def _standardise(
    p: Path, prep: Preprocessing, X: np.ndarray, lines: array.array | _LineRuns
) -> np.ndarray:
    """``prep.transform(X)`` written over ``X`` (a fresh array read here) a block of rows at
    a time, so that standardising takes no second array of the data's size; DatasetError
    names the first cell whose standardised value is not a finite float64 (a value too far
    from the training data's range)."""
    block = 1 << 16
    for lo in range(0, X.shape[0], block):
        rows = X[lo : lo + block]
        with np.errstate(over="ignore", invalid="ignore"):
            out = prep.transform(rows)
        finite = np.isfinite(out)
        if not finite.all():
            i, j = (int(k) for k in np.argwhere(~finite)[0])
            raise DatasetError(
                f"{p}: line {lines[lo + i]}, column {prep.feature_names[j]!r}: {rows[i, j]:g} "
                f"is too far from the training data (mean {prep.mean[j]:g}, scale "
                f"{prep.scale[j]:g}) to standardise in float64"
            )
        rows[...] = out
    return X


def load_csv(
    path: str | os.PathLike,
    target: str | None,
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
    task: str | None = None,
    features: Sequence[str] | None = None,
) -> Dataset:
    """A CSV file as a :class:`Dataset` (see the module docstring for the rules).

    Parameters
    ----------
    path : str or path
        A regular file of at most the limit ``csv_bytes`` (1 GiB; docs/cli.md).
    target : str
        The target column's name (required).
    seed, test_fraction
        The seeded split (stratified by class for classification); 0 gives no test split.
    task : {"classification", "regression"}, optional
        Overrides the automatic choice.
    features : sequence of str, optional
        The feature columns, in this order; the file's other columns (an id, a comment,
        pandas' unnamed index) are not read. Default: every column but the target.

    Returns
    -------
    Dataset
        ``X_*`` float64 standardised (n, n_features); classification ``y_*`` int64 (n,),
        regression ``y_*`` float64 (n, 1); ``preprocessing`` set. A classification target
        has at most the limit ``classes`` (1000) distinct labels.
    """
    p = Path(path)
    if task not in (None, "classification", "regression"):
        raise DatasetError(f"task must be 'classification' or 'regression'; got {task!r}")
    if isinstance(target, str):
        target = target.strip()  # as the header's names are

    def choose(header: list[str]) -> tuple[list[str], str]:
        _check_not_data(p, header)
        if target is None:
            raise DatasetError(
                f"{p}: name the target column (target=...); the columns are: {', '.join(header)}"
            )
        if target not in header:
            raise DatasetError(
                f"{p}: no target column {target!r}; the columns are: {', '.join(header)}"
                + _separator_hint(header)
                + normalisation_hint([target], header)
            )
        chosen = _feature_columns(p, header, target, features)
        if not chosen:
            raise DatasetError(
                f"{p}: the only column is the target {target!r}; no features left"
                + _separator_hint(header)
            )
        return chosen, target

    names, X, col, lines = _read_columns(p, choose)
    assert col is not None
    n = X.shape[0]
    numeric = col.first_text is None
    numbers_regress = col.fractional or len(col.numbers) > MAX_CLASSES
    if task is None and not numeric and numbers_regress and 2 * col.n_text < n:
        line, label = col.first_text  # type: ignore[misc]
        raise DatasetError(  # a missing value ('NA', 'NaN', '?') in a numeric target
            f"{p}: line {line}, target column {target!r}: {label!r} is not a number, but "
            "most of the column's cells are numbers of a regression target; fill in or "
            "remove that row"
        )
    if task is None and col.first_missing is not None and set(col.labels) - MISSING_VALUES:
        # 0, 1 and NA, or malignant, benign and NA: not three classes (an empty NA class
        # pulled evaluate's macro F1 down)
        line, label = col.first_missing
        kind = "class labels that are numbers" if col.numbers else "the class labels"
        raise DatasetError(
            f"{p}: line {line}, target column {target!r}: {label!r} reads as a missing "
            f"value among {kind}; fill in or remove that row (a class of that name: give "
            "task='classification')"
        )
    if task is None:
        many = numeric and (col.too_many or len(col.labels) > MAX_CLASSES)
        task = "regression" if many or (numeric and col.fractional) else "classification"

    if task == "regression":
        if not numeric:
            line, label = col.first_text  # type: ignore[misc]
            raise DatasetError(
                f"{p}: line {line}, target column {target!r}: {label!r} is not a "
                "number; a regression target must be numeric"
            )
        y = np.frombuffer(col.values, dtype=np.float64).reshape(-1, 1)
        train_idx, test_idx = train_test_split(n, test_fraction, seed)
        classes: list[str] | None = None
        n_classes = None
    else:
        if col.too_many or len(col.labels) > limit("classes"):
            check_limit(
                "classes",
                max(len(col.labels), limit("classes") + 1),
                f"{p}: target column {target!r} has at least",
                DatasetError,
            )
        distinct = list(col.labels)  # in the order of their codes
        # numeric labels are numbers: '1', '1.0' and '01' are one class, named as first seen
        name = {c: c for c in distinct}
        if numeric:  # exactly: as floats, 9007199254740993 and ...992 were one class
            _refuse_labels_beyond_decimal(p, target, distinct, col, lines)
            first: dict[Decimal, str] = {}
            name = {c: first.setdefault(_exact(c), c) for c in distinct}
        classes = sorted(set(name.values()), key=_exact if numeric else None)
        rank = {c: k for k, c in enumerate(classes)}
        code_to_class = np.array([rank[name[c]] for c in distinct], dtype=np.int64)
        y = code_to_class[np.frombuffer(col.codes, dtype=np.int64)]
        train_idx, test_idx = train_test_split(n, test_fraction, seed, labels=y)
        n_classes = len(classes)

    # a single class is read (new rows to score may all be of one: backprop evaluate scores
    # them by the model's classes), without a model's class list, which needs two;
    # backprop train refuses it (cli.config.resolve)
    kept = classes if classes is None or len(classes) > 1 else None
    prep = fit_standardizer(X[train_idx], names, target=target, classes=kept)
    X_std = _standardise(p, prep, X, lines)
    return Dataset.from_split(
        str(path),
        X_std,
        y,
        train_idx,
        test_idx,
        task=task,
        n_classes=n_classes,
        class_names=classes,
        feature_names=names,
        image_shape=None,
        preprocessing=prep,
    )


def refuse_a_single_class(data: Dataset, source: str) -> None:
    """DatasetError for a CSV classification target of a single class, to be trained on:
    :func:`load_csv` reads one (new rows to score may all be of one class), and the front
    ends that train (``backprop train``, ``gradcheck``, the playground) refuse it with this.
    ``source`` names the file in the message."""
    if data.task == "classification" and data.n_classes < 2:
        raise DatasetError(
            f"{source}: target column {data.preprocessing.target!r} has a single class "
            f"({data.class_names[0]!r}); classification needs at least two"
        )


def read_csv_features(
    path: str | os.PathLike, preprocessing: Preprocessing | None = None, *, raw: bool = False
) -> np.ndarray:
    """Rows of a CSV file as model inputs (what ``backprop predict MODEL INPUT.csv`` feeds).

    Parameters
    ----------
    path : str or path
        A CSV file with a header row (a regular file of at most the limit ``csv_bytes``).
        With ``preprocessing``, it must have every column in
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
        Ragged rows, non-numeric or empty cells (naming line and column), missing columns,
        a value too far from the training data to standardise in float64.
    """
    p = Path(path)

    def choose(header: list[str]) -> tuple[list[str], None]:
        if preprocessing is None:
            _check_not_data(p, header)
            return header, None
        wanted = columns_named(preprocessing.feature_names, p)
        names = set(header)
        missing = [c for c in preprocessing.feature_names if c.strip() not in names]
        if missing:
            raise DatasetError(
                f"{p}: missing the feature columns {missing} the model was trained on; "
                f"the file has columns: {', '.join(header)}"
                + _separator_hint(header)
                + normalisation_hint([c.strip() for c in missing], header)
            )
        return wanted, None

    _, X, _, lines = _read_columns(p, choose, training=False)
    if raw or preprocessing is None:
        return X
    return _standardise(p, preprocessing, X, lines)
