"""``backprop predict``: predictions for the rows of a CSV file, as CSV."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import stat
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from ...datasets import read_csv_columns, read_csv_features
from ...formatting import printable
from ...io import WriteError, write_atomic
from ...io.safetensors import descriptor_of
from ...network import MLP
from ..app import UserError, cli, require_stdout
from ..config import (
    is_classifier,
    load_model_file,
    model_outputs,
    no_test_split,
    output_classes,
)
from ..handles import Handle, model_inputs, models_task, open_handle
from ..options import FilePath, NamesType, PathValue, device_options

__all__ = ["predict"]


@cli.command(short_help="Predictions for a CSV file's rows, or a run's test split.")
@click.argument("model_path", metavar="MODEL|RUN_DIR", type=PathValue())
@click.argument("input_path", metavar="[INPUT.csv]", required=False, type=PathValue())
@click.option(
    "--output",
    "-o",
    type=FilePath(),
    help="Write here instead of stdout ('-': stdout).",
)
@click.option(
    "--keep",
    type=NamesType(),
    metavar="COL,COL",
    help="INPUT.csv's columns to write first on each row, as they are (an id, for a "
    "submission file).",
)
@device_options
def predict(
    model_path: Path,
    input_path: Path | None,
    output: Path | None,
    keep: tuple[str, ...] | None,
    **options: Any,
) -> int:
    """Predict for the rows of a CSV file: labels with class probabilities, or values.

    INPUT.csv has a header row. A model trained on a CSV file picks its feature columns by
    name (others, such as the target, are ignored) and applies its own scaling; otherwise
    every column is an input, in order. Given a run folder and no INPUT.csv, the rows are
    the test split of the data the run was trained on, with their true value first;
    --keep writes INPUT.csv's columns it names first (an id).
    A classifier writes the label and a column p_<class> for each class; outputs that are
    not probabilities (the tutorial's sigmoid units under the L2 loss) are out_<class>.
    A scikit-learn multi-label classifier writes label_<k> (1 where p_<k> > 0.5, else 0)
    and p_<k> for each label k.

    \b
    Examples:
      backprop predict runs/iris new_flowers.csv
      backprop predict runs/iris new_flowers.csv --output predictions.csv
      backprop predict runs/iris flowers.csv --keep species
      backprop predict runs/iris
    """
    handle = open_handle(model_path)
    if output is not None and str(output) == "-":  # the usual name of stdout
        output = None
    if output is not None:
        handle.check_output(output, "--output", input_path)
    else:
        require_stdout("the predictions would be lost; give --output FILE")
    loaded = load_model_file(handle.model_path, options["backend"], options["device"])
    model = loaded.model
    # the columns written before the predictions: the test split's true values, or --keep's
    leading: tuple[list[str], list[list[str]]] | None = None  # (header, rows)
    if input_path is None:
        if handle.run_dir is None:
            raise UserError(
                f"give the INPUT.csv rows to predict for; only a run folder (not the model "
                f"file {model_path}) has a test split of its own"
            )
        if keep:
            raise UserError(
                "--keep names columns of INPUT.csv; the test split of a run folder is written "
                "with its true values first"
            )
        X, leading = _test_split(model, handle)
    else:
        X = read_csv_features(input_path, model.preprocessing)  # refuses a missing or special file
        if X.shape[1] != model.n_inputs:
            raise UserError(
                f"{input_path} has {X.shape[1]} columns but the model expects "
                f"{model.n_inputs} inputs"
            )
        if keep:  # (the rows read_csv_features read, in the file's order)
            leading = (list(keep), read_csv_columns(input_path, keep))
    source = str(input_path) if input_path is not None else f"the test split of {handle.run_dir}"
    out = model_outputs(model, X, source, handle.model_path)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    pre = model.preprocessing
    first, before = leading if leading is not None else ([], [[]] * out.shape[0])
    if loaded.multilabel:
        # a scikit-learn multi-label classifier: each output is a label of its own, present
        # (1) where its probability exceeds 0.5: est.predict's indicator matrix (which tests
        # the logit > 0) but for a positive logit so small its probability rounds to 0.5
        labels = [str(k) for k in range(out.shape[1])]
        writer.writerow(
            _header(first, [*[f"label_{k}" for k in labels], *[f"p_{k}" for k in labels]])
        )
        for cells, row in zip(before, out, strict=True):
            writer.writerow([*cells, *(row > 0.5).astype(int).tolist(), *[f"{v:.9g}" for v in row]])
    elif is_classifier(model):
        # one output is two classes: class 1 above 0.5 (its columns are both classes')
        names = loaded.classes or [str(k) for k in range(max(out.shape[1], 2))]
        labels = output_classes(out)
        # class probabilities only where the model makes them (a cross-entropy loss's link,
        # a softmax output); the tutorial's sigmoid outputs under L2 need not sum to 1
        probabilities = (
            model.loss_fn.link != "identity" or model.config.output_activation == "softmax"
        )
        if out.shape[1] == 1 and probabilities:
            out = np.hstack([1.0 - out, out])  # p(class 0), p(class 1)
        columns = names if out.shape[1] == len(names) else names[1:]  # out_<class 1>
        prefix = "p_" if probabilities else "out_"
        writer.writerow(_header(first, ["label", *[f"{prefix}{n}" for n in columns]]))
        for cells, k, row in zip(before, labels, out, strict=True):
            writer.writerow([*cells, names[k], *[f"{v:.9g}" for v in row]])
    else:
        if pre is not None and pre.target is not None and out.shape[1] == 1:
            columns = [pre.target]
        else:
            columns = [f"output_{j + 1}" for j in range(out.shape[1])]
        writer.writerow(_header(first, columns))
        # the network's own precision where no scaling made float64 numbers of its outputs
        scaled = pre is not None and pre.scales_targets
        values = out if scaled else out.astype(model.config.dtype)
        for cells, row in zip(before, values, strict=True):
            writer.writerow([*cells, *_exact_texts(row)])
    if output is None:
        text = buffer.getvalue()
        if sys.stdout.isatty():  # a label's control characters as escapes on a terminal (a
            # model file's class '\x1b]0;...\x07' set its title, or worse); a pipe gets them
            text = "\n".join(printable(line) for line in text.split("\n"))
        # color=True: as written (click took a label's colour codes out of a pipe's CSV)
        click.echo(text, nl=False, color=True)
    else:
        _write_output(output, buffer.getvalue().encode("utf-8"))
        click.echo(f"Wrote {out.shape[0]} predictions to {output}", err=True)
    return 0


def _header(kept: list[str], columns: list[str]) -> list[str]:
    """The header: the kept columns' names, then the predictions' ``columns``; a kept name
    that is also a prediction's is written with ``_input`` after it (``--keep label``, or a
    regression's own target, wrote ``label,label,...``, read back by pandas as ``label.1``)."""
    taken = set(columns) | set(kept)
    names = []
    for name in kept:
        if name in columns:
            while name in taken:
                name += "_input"
            taken.add(name)
        names.append(name)
    return [*names, *columns]


def _write_output(output: Path, data: bytes) -> None:
    """``data`` into ``output``: an open descriptor (``/dev/stdout``, ``/dev/fd/N``, a ``>>``
    appending), a FIFO or a device as it is; a file replaced whole once every byte is
    written (:func:`backprop.io.write_atomic`, through any symlink: a full disk or a Ctrl-C
    leaves the old file), with its mode and, where allowed, its owner kept (a new file
    gets the umask's mode). Where the folder cannot take a new file beside it (a writable
    file in a read-only folder, a bind-mounted file), the file is written in place, as a
    shell's ``>`` would."""
    try:
        descriptor = descriptor_of(output)
        if descriptor is not None:
            with os.fdopen(os.dup(descriptor), "wb") as f:
                f.write(data)
            return
        try:
            info = os.stat(output)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
            with open(output, "wb") as f:  # a FIFO or a device: written to, never replaced
                f.write(data)
            return
        target = Path(os.path.realpath(output)) if output.is_symlink() else output
        if info is not None and not os.access(target, os.W_OK):  # (a rename needs only the
            # folder's permission: a write-protected file was replaced where > refuses it)
            raise WriteError(errno.EACCES, os.strerror(errno.EACCES), str(output))
        try:
            write_atomic(target, data)
        except WriteError as e:
            # a file with other names (a hard link: it may be a run's file) is never written
            # in place: those names keep their bytes
            if info is None or info.st_nlink > 1 or e.errno not in _NO_NEW_FILE_HERE:
                raise
            _write_in_place(output, data)
            return
        if info is not None and (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
            try:
                os.chown(target, info.st_uid, info.st_gid)
            except OSError:  # only root may give a file away: it is this user's now, in
                with contextlib.suppress(OSError):  # its group still (one of this user's)
                    os.chown(target, -1, info.st_gid)
    except (WriteError, BrokenPipeError):  # a closed pipe: quietly, as stdout's
        raise
    except OSError as e:  # /dev/full: '[Errno 28] No space left on device', no file named
        raise WriteError(e.errno, e.strerror, str(output)) from None


#: Why a folder cannot take a new file beside the one to replace (read-only for this user,
#: a bind-mounted file, another file system at the path).
_NO_NEW_FILE_HERE = (errno.EACCES, errno.EPERM, errno.EBUSY, errno.EXDEV)


def _write_in_place(output: Path, data: bytes) -> None:
    """``data`` over the file at ``output``, in place (as a shell's ``>`` writes it), with
    the space for ``data`` reserved first (:func:`os.posix_fallocate`): truncating first, a
    full disk left a cut-off 4096 bytes where the old predictions were. A reservation that
    fails leaves the old file as it was. Where the file system cannot reserve space, the
    file is truncated and written as a shell would (a full disk then leaves it cut off, not
    a mix of new rows and old ones)."""
    # opened for writing only, untruncated (failing here, the file is as it was; "r+b"
    # wanted read permission too, which a shell's > does not)
    with os.fdopen(os.open(output, os.O_WRONLY), "wb") as f:
        try:
            reserved = _reserve(f.fileno(), len(data))
        except OSError as e:
            raise WriteError(e.errno, e.strerror or str(e), str(output)) from None
        try:
            if not reserved:
                f.truncate(0)
            f.write(data)  # (from offset 0: over the old bytes, the rest cut off after)
            f.truncate(len(data))
            f.flush()
        except OSError as e:
            raise WriteError(
                e.errno,
                f"{e.strerror} (written in place: the file is now incomplete)",
                str(output),
            ) from None


#: posix_fallocate's answers for a file system that cannot reserve space (EINVAL too, in
#: its manual page), not for a full disk.
_NO_FALLOCATE = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL}


def _reserve(fd: int, size: int) -> bool:
    """Whether the first ``size`` bytes of the file at ``fd`` are allocated now, its bytes
    unchanged: False where the system or file system has no way to; an OSError (ENOSPC)
    when the disk cannot hold them."""
    fallocate = getattr(os, "posix_fallocate", None)  # (not on macOS or Windows)
    if fallocate is None:
        return False
    if size == 0:
        return True  # (nothing to reserve; posix_fallocate refuses a length of 0)
    try:
        fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in _NO_FALLOCATE:
            raise
        return False
    return True


def _test_split(model: MLP, handle: Handle) -> tuple[np.ndarray, tuple[list[str], list[list[str]]]]:
    """The test rows of the run's data, as the model takes them, and their true values:
    ``(["true"], [[class name], ...])``, or the target columns' numbers for regression."""
    values = models_task(handle.data_values({}), model)
    data = handle.load_data(values)
    if data.X_test is None:
        raise UserError(
            f"the run in {handle.run_dir} kept no test split ({no_test_split(data, values)}); "
            "give INPUT.csv"
        )
    X, y = model_inputs(model, data, data.X_test, np.asarray(data.y_test))
    if data.task == "classification":
        pre = model.preprocessing
        names = (
            list(pre.classes) if pre is not None and pre.classes is not None else data.class_names
        )
        names = names if names is not None else [str(k) for k in range(model.n_outputs)]
        return X, (["true"], [[str(names[int(k)])] for k in y])
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    header = ["true"] if y.shape[1] == 1 else [f"true_{j + 1}" for j in range(y.shape[1])]
    return X, (header, [_exact_texts(row) for row in y])


def _exact_texts(values: np.ndarray) -> list[str]:
    """Each number as the shortest text that reads back as the same value of its dtype
    (float64: 9 digits moved a target near 1.7e9 by up to 4.6; float32: its 17 would be the
    double's noise)."""
    return [str(v) for v in values]
