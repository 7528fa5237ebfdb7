"""The run folder ``backprop train`` writes: model, history, summary, config, plots and the
checkpoint that ``--resume`` continues from.

Every file of a run folder is written atomically (:func:`backprop.io.write_atomic`): the
bytes go to a temporary file of a fresh, exclusively created name, which is renamed over
the file, so a failed write (disk full, read-only folder, Ctrl-C) leaves the file as it
was, and a symlink planted at a file's name is replaced, never followed. A new run claims
its folder by creating ``config.toml`` exclusively (one step: of two runs started into one
``--out``, exactly one gets it), and every run holds a lock on its folder while it trains,
so that no second ``train`` or ``train --resume`` writes into it at the same time.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import errno
import io
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .._limits import read_user_file
from ..formatting import command
from ..io.checkpoint import CHECKPOINT_NAME, Checkpoint
from ..io.safetensors import write_atomic
from ..network import MLP
from . import config, plots
from .app import UserError

__all__ = [
    "CONFIG_FILE",
    "HISTORY_FILE",
    "MODEL_FILE",
    "SUMMARY_FILE",
    "RUN_FILES",
    "RUNS_DIR",
    "checkpoint_callback",
    "claim_run_dir",
    "holds_run",
    "in_use",
    "json_text",
    "lock_run_dir",
    "make_run_dir",
    "missing_folders",
    "read_summary",
    "release_unused_claim",
    "write_config",
    "write_history",
    "write_json",
    "write_plots",
    "run_config",
    "RESUME_MAY_CHANGE",
]

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.toml"
HISTORY_FILE = "history.csv"
SUMMARY_FILE = "summary.json"

#: The files whose presence (even as a dangling symlink) means a folder holds a run.
RUN_FILES = (MODEL_FILE, SUMMARY_FILE, HISTORY_FILE, CONFIG_FILE, CHECKPOINT_NAME)


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` holds a run: one of :data:`RUN_FILES` is there."""
    return any(os.path.lexists(folder / f) for f in RUN_FILES)


def _already_holds_a_run(folder: Path) -> UserError:
    if in_use(folder):  # (it said to resume it, or to delete the folder of a live run: a
        # new run into the deleted one's path then shared its folder with it)
        return UserError(
            f"run folder {folder} is in use by a backprop train running now; wait for it to "
            "end, or choose another --out"
        )
    if os.path.lexists(folder / CHECKPOINT_NAME):
        return UserError(
            f"run folder {folder} already holds a run; choose another --out, or continue it "
            f"with {command('backprop', 'train', '--resume', folder)}"
        )
    return UserError(
        f"run folder {folder} already holds a run that has no checkpoint to resume from (it "
        "is still starting, or it stopped before its first checkpoint); choose another "
        "--out, or delete that folder"
    )


def make_run_dir(
    out: Path | None, dataset_name: str, config_text: str, plots_too: bool = True
) -> Path:
    """Create the run folder and claim it: ``config.toml`` is created exclusively, holding
    ``config_text``, so that of two runs started into one folder exactly one gets it. A
    folder of the user's own may not hold a file the run would replace (a plot's name,
    when ``plots_too``).

    ``out`` None: ``runs/<timestamp>-<dataset>``, with ``-2``, ``-3``... when taken.

    Raises
    ------
    UserError
        ``out`` is a file, or already holds a run (one line saying whether it can be
        resumed), or cannot be written.
    """
    if out is not None:
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file; expected a folder for the run")
        if out.is_dir() and holds_run(out):
            raise _already_holds_a_run(out)
        if out.is_dir():  # a folder of the user's own: none of its files may be replaced
            names = plots.PLOT_FILES if plots_too else ()
            taken = [name for name in names if os.path.lexists(out / name)]
            if taken:
                raise UserError(
                    f"--out {out} holds {taken[0]}, which the run would replace with its "
                    "plot; choose another folder"
                )
        if not _make_and_claim(out, config_text, out_given=True):
            raise _already_holds_a_run(out)
        return out
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = RUNS_DIR / f"{stamp}-{Path(dataset_name).stem}"
    candidate, k = base, 2
    while True:
        if not (candidate.exists() and holds_run(candidate)):
            if _make_and_claim(candidate, config_text, out_given=False):
                return candidate
        candidate, k = base.with_name(f"{base.name}-{k}"), k + 1


#: Where runs go without --out: ``runs/<timestamp>-<dataset>``.
RUNS_DIR = Path("runs")


def missing_folders(folder: Path) -> list[Path]:
    """``folder`` and the folders on its way that do not exist (yet), deepest first: the
    ones that making it makes, as absolute paths with ``..`` resolved (``typo/../results``
    counted the user's own ``results`` as missing, since ``typo`` was, and a run that
    failed removed it)."""
    real = Path(os.path.realpath(folder))
    return [p for p in (real, *real.parents) if not os.path.lexists(p)]


def _make_and_claim(folder: Path, config_text: str, out_given: bool) -> bool:
    """:func:`_mkdir`, then :func:`claim_run_dir`. A claim that fails (disk full writing
    ``config.toml``, Ctrl-C) removes the folders this call created, while they are empty:
    :func:`release_unused_claim` is registered only once :func:`make_run_dir` returns, so
    the new run folder (and a ``runs/`` made for it) stayed behind, empty."""
    created = missing_folders(folder)
    _mkdir(folder, out_given)
    try:
        return claim_run_dir(folder, config_text)
    except BaseException:
        for made in created:
            with contextlib.suppress(OSError):  # (not empty: another run's now; kept)
                made.rmdir()
        raise


def _mkdir(folder: Path, out_given: bool) -> None:
    """``folder`` and the folders on the way made, or one UserError line; it names
    ``--out`` only when the user gave it (a file named ``runs`` blamed an --out never given)."""
    where = f"--out {folder}" if out_given else f"the run folder {folder}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        if folder.is_symlink():  # and names nothing: a link to a folder is a folder
            names = "a loop of links" if _is_link_loop(folder) else "which does not exist"
            raise UserError(
                f"{where} is a symlink to {os.readlink(folder)}, {names}; "
                "expected a folder for the run"
            ) from None
        raise UserError(f"{where} is a file; expected a folder for the run") from None
    except NotADirectoryError:  # a folder on the way is a file: name it
        blocker = next((p for p in reversed(folder.parents) if p.exists() and not p.is_dir()),
                       folder)  # fmt: skip
        raise UserError(
            f"{where}: {blocker} is a file; expected folders on the way to the run folder"
        ) from None
    except OSError as e:  # read-only, no permission: say that it was the folder's creation
        raise UserError(f"cannot create the run folder {folder}: {e.strerror or e}") from None


def _is_link_loop(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError as e:
        return e.errno == errno.ELOOP
    return False


def claim_run_dir(folder: Path, config_text: str) -> bool:
    """Create ``folder/config.toml`` holding ``config_text`` if nothing is there yet: True
    if this call created it, False if anything (a file, a symlink) was there first."""
    try:
        write_atomic(folder / CONFIG_FILE, config_text.encode("utf-8"), exclusive=True)
    except FileExistsError:
        return False
    return True


def release_unused_claim(folder: Path, config_text: str, created: Sequence[Path]) -> None:
    """Undo :func:`claim_run_dir` for a run that saved nothing (it failed or was stopped
    before its first checkpoint): its ``config.toml`` alone blocked the same ``--out`` ever
    after ('holds a run that has no checkpoint to resume from'). Only when ``config.toml``
    (still holding ``config_text``) is all the folder holds; the folders this run
    ``created`` go too while empty, deepest first (the folder, and ``deep/er`` of ``--out
    deep/er/run`` or a new ``runs/``: those stayed, empty, after a Ctrl-C)."""
    config = folder / CONFIG_FILE
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if os.listdir(folder) != [CONFIG_FILE] or config.read_text("utf-8") != config_text:
            return
        config.unlink()
        for made in created:
            made.rmdir()  # (not empty: another run's now; it and those above it are kept)


class _RunLock:
    """An exclusive lock on a run folder, held while this process trains into it and
    released when it ends (however it ends: the operating system drops the lock with the
    process). Where locks are not available (no ``fcntl``, or a file system without them)
    nothing is locked."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _locked(folder: Path, exclusive: bool) -> int | None:
    """A descriptor of ``folder`` holding its ``flock`` (exclusive, or shared), taken without
    waiting; None where locks cannot tell (no ``flock``, no folder, a file system without
    locks). BlockingIOError where another process holds a lock that conflicts."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise
    except OSError:  # a file system without locks
        os.close(fd)
        return None
    return fd


def in_use(folder: Path) -> bool:
    """Whether a ``backprop train`` (or ``--resume``) running now holds ``folder``'s lock
    (:func:`lock_run_dir`); False where locks cannot tell (no ``flock``, no folder). The
    test takes a shared lock for an instant: a run locking the folder in that instant is
    told it is in use, as two runs starting together are."""
    try:
        fd = _locked(folder, exclusive=False)
    except BlockingIOError:
        return True
    if fd is not None:
        os.close(fd)  # (closing releases the shared lock)
    return False


def lock_run_dir(folder: Path) -> _RunLock:
    """Lock ``folder`` for this run (``flock`` on the folder itself: no extra file).

    Raises
    ------
    UserError
        Another process (a ``backprop train`` or ``--resume``) holds it.
    """
    try:
        fd = _locked(folder, exclusive=True)
    except BlockingIOError:
        raise UserError(
            f"run folder {folder} is in use by another backprop train; wait for it to end"
        ) from None
    if fd is None:
        return _RunLock(None)
    _remove_stale_temporaries(folder)
    return _RunLock(fd)


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove what a process killed mid-write (SIGKILL, a power cut) left of its writes:
    ``write_atomic``'s ``.NAME.<random>.tmp`` files beside the run's files, each as large as
    the file it was becoming. Only under the folder's lock, when nobody else writes there;
    but a run claiming the folder writes config.toml's temporary without the lock (the
    claim comes first): one of those is removed only once it is a minute old (removing a
    live one failed the other run's claim with 'No such file or directory')."""
    names = (*RUN_FILES, *plots.PLOT_FILES)
    for entry in os.scandir(folder):
        stem = entry.name.removesuffix(".tmp")
        name = stem[1:].rsplit(".", 1)[0]
        if (
            entry.name.endswith(".tmp")
            and stem.startswith(".")
            and name in names
            and entry.is_file(follow_symlinks=False)
        ):
            with contextlib.suppress(OSError):
                if name != CONFIG_FILE or time.time() - entry.stat().st_mtime > CLAIM_SECONDS:
                    os.unlink(entry.path)


#: How long a claim's temporary config.toml may live (it is written in milliseconds).
CLAIM_SECONDS = 60.0


def write_config(path: Path, text: str) -> None:
    """``config.toml`` rewritten atomically (``--resume`` records its new ``--epochs``)."""
    write_atomic(path, text.encode("utf-8"))


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    """``history.csv``: one row per epoch, written atomically."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns or ["epoch"])
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue().encode("utf-8"))


def json_text(obj: Any, indent: int | None = None) -> str:
    """``obj`` as strict JSON: every non-finite float as null (``json.dumps`` wrote
    ``Infinity``, which JSON parsers refuse: ``evaluate --json`` of an MSE past 1e308)."""
    return json.dumps(_json_ready(obj), indent=indent, allow_nan=False)


def _json_ready(obj: Any) -> Any:
    """``obj`` with every non-finite float as None: JSON has no NaN or infinity."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_ready(v) for v in obj]
    return obj


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``summary.json`` as a dict, read as every user file is (a regular file of
    at most 1 MiB: a FIFO in its place must not hang); None when there is none, or it is
    not one ``train`` wrote."""
    try:
        summary = json.loads(read_user_file(run_dir / SUMMARY_FILE, "summary", "config_bytes"))
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as JSON (a metric that overflowed becomes null), written atomically."""
    text = json_text(obj, indent=2) + "\n"
    write_atomic(path, text.encode("utf-8"))


def checkpoint_callback(run_dir: Path, cfg: dict[str, Any], data_sha256: str) -> Checkpoint:
    """A :class:`backprop.checkpoint.Checkpoint` saving into ``run_dir`` every
    ``checkpoint_every`` epochs, so that ``--resume`` can continue exactly."""
    fit_config = {
        "epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"],
        "seed": cfg["seed"],
        "early_stopping": config.early_stopping_callback(cfg),
        "class_weight": cfg.get("class_weight"),
        "data_sha256": data_sha256,
        "run_config": run_config(cfg),
    }
    return Checkpoint(run_dir, every=cfg["checkpoint_every"], fit_config=fit_config)


#: Options a ``--resume`` may change: the epoch budget and where it trains (the data
#: folder too: the data are checked by their SHA-256).
RESUME_MAY_CHANGE = ("epochs", "backend", "device", "data_dir")


def run_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The resolved options a run is bound to (all but :data:`RESUME_MAY_CHANGE`), as JSON
    values: the checkpoint keeps them, so that ``--resume`` can tell an edited config.toml."""
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in cfg.items()
        if k in config.CONFIG_KEYS and k not in RESUME_MAY_CHANGE and v is not None
    }


def write_plots(
    run_dir: Path,
    model: MLP,
    data: Any,
    rows: list[dict[str, float]],
    enabled: bool,
    validation_rows: Any = None,
    model_epoch: int | None = None,
) -> list[str]:
    if not enabled:
        return []
    if not plots.available():
        click.echo(plots.MISSING_MESSAGE, err=True)
        return []
    return plots.plot_run(run_dir, model, data, rows, validation_rows, model_epoch)
