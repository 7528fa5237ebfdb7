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

__all__ = ["MAX_CLASSES", "load_csv", "read_csv_features", "read_csv_header", "read_csv_table"]

MAX_CLASSES = 20  # a numeric target with more distinct values than this is a regression target


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
                if cells and not all(not c.strip() for c in cells):  # else a blank line
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
    for _, cells in _csv_rows(p):
        return [c.strip() for c in cells]
    raise DatasetError(f"{p}: the CSV file is empty; expected a header row and data rows")


def _header_and_rows(p: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The CSV file's header, checked (names without surrounding spaces: ``a, b`` names the
    columns a and b), and its data rows still to read (:func:`_csv_rows`)."""
    rows = _csv_rows(p)
    try:
        _, first = next(rows)
    except StopIteration:
        raise DatasetError(
            f"{p}: the CSV file is empty; expected a header row and data rows"
        ) from None
    header = [c.strip() for c in first]
    _check_header(p, header)
    return header, rows


def read_csv_columns(path: str | os.PathLike, names: Sequence[str]) -> list[list[str]]:
    """The cells of the columns ``names`` of the CSV file ``path``, one list per data row,
    in the file's order (the rows :func:`read_csv_features` reads), as written.

    Raises DatasetError for an unreadable or empty file, a ragged row, or a name that is no
    column of the header (naming the columns it has). Memory: only those columns' cells.
    """
    p = Path(path)
    header, rows = _header_and_rows(p)
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
    for line, cells in _csv_rows(p):
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
    p: Path, target: str, labels: list[str], col: _Target, lines: array.array
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
    (past it the column is a regression target, or has too many classes)."""

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
        code = self.labels.get(label)
        if code is None and not self.too_many:
            if len(self.labels) >= self.max_distinct:
                self.too_many = True
            else:
                code = self.labels[label] = len(self.labels)
        self.codes.append(-1 if code is None else code)


def _read_columns(
    p: Path,
    choose: Callable[[list[str]], tuple[list[str], str | None]],
    training: bool = True,
) -> tuple[list[str], np.ndarray, _Target | None, array.array]:
    """Read a CSV file row by row: the names of the feature columns ``choose(header)``
    picks, those columns as a float64 array ``(n_rows, n_features)`` (DatasetError at the
    first cell that is not a finite number), the target column it names (or None) as a
    :class:`_Target`, and each row's line number in the file.

    Memory: 8 bytes per feature cell and 24 per row, whatever the text.
    """
    header, rows = _header_and_rows(p)
    features, target_name = choose(header)
    _check_named(p, header, [*features, *([] if target_name is None else [target_name])], training)
    column = {name: k for k, name in enumerate(header)}  # unique but '' (unread): checked above
    index = [column[c] for c in features]
    t = None if target_name is None else column[target_name]
    target = None if t is None else _Target(max(limit("classes"), MAX_CLASSES) + 1)
    numbers = array.array("d")
    lines = array.array("q")
    for line, cells in rows:
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


def _standardise(p: Path, prep: Preprocessing, X: np.ndarray, lines: array.array) -> np.ndarray:
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
        if len(classes) < 2:
            raise DatasetError(
                f"{p}: target column {target!r} has a single class ({classes[0]!r}); "
                "classification needs at least two"
            )
        rank = {c: k for k, c in enumerate(classes)}
        code_to_class = np.array([rank[name[c]] for c in distinct], dtype=np.int64)
        y = code_to_class[np.frombuffer(col.codes, dtype=np.int64)]
        train_idx, test_idx = train_test_split(n, test_fraction, seed, labels=y)
        n_classes = len(classes)

    prep = fit_standardizer(X[train_idx], names, target=target, classes=classes)
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
