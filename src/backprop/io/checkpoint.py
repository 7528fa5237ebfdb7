"""Crash-safe checkpoints and exact resume.

A checkpoint is a model file (see :mod:`backprop.io.model_file`) with everything
:func:`backprop.training.fit` needs to continue a run as if it had never stopped:

=====================================  ====================================================
where                                  what
=====================================  ====================================================
tensors ``layers.<i>.W``, ``.b``       the parameters at the end of the saved epoch
tensors ``optimizer.<param>.<slot>``   the optimizer's slots (velocities, moments)
tensors ``best.<param>``               early stopping's best weights, when it has some
metadata ``train_state`` (JSON)        epoch, history, best score, stop flag, the shuffle
                                       and dropout generators' ``bit_generator.state``, the
                                       optimizer's name, hyperparameters, schedule, step
metadata ``fit_config`` (JSON)         the fit settings to resume with (epochs,
                                       batch_size, seed, ...), plus anything the caller
                                       adds (the CLI's resolved options)
=====================================  ====================================================

Every write is atomic (:func:`backprop.io.safetensors.write_atomic`): a process killed at
any instant leaves the previous checkpoint or the new one, never a half-written file.
Resuming from a checkpoint reproduces the uninterrupted run bit for bit: same weights, same
shuffles, same dropout masks.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import MAX_COUNT, as_path, is_count
from .._validation import is_finite_number as _is_finite
from .._validation import short_repr as _short
from ..initializers import generator_state
from ..optimizers import OPTIMIZERS, SCHEDULES, Optimizer
from ..training import Callback, EarlyStopping, History, TrainState, fit
from ..training.mpi import is_main_process
from .metadata import (
    CHECKPOINT_FORMAT,
    build_model,
    check_format,
    config_from_metadata,
    model_metadata,
    parameter_shapes,
    preprocessing_from_metadata,
)
from .safetensors import (
    ExpectedTensors,
    ModelFileError,
    encode_safetensors,
    parse_json,
    read_header,
    read_tensors,
    write_atomic,
)

__all__ = [
    "CHECKPOINT_NAME",
    "FIT_KEYS",
    "MAX_COUNT",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "resume",
    "checkpoint_path",
]

#: The checkpoint's file name inside a run directory.
CHECKPOINT_NAME = "checkpoint.safetensors"

#: The :func:`~backprop.training.fit` settings a checkpoint stores and :func:`resume` replays.
#: (The optimizer and learning rate come from the checkpoint's optimizer state itself.)
FIT_KEYS = (
    "epochs",
    "batch_size",
    "seed",
    "shuffle",
    "validation_fraction",
    "early_stopping",
    "class_weight",
)

#: Bit generators a checkpoint may name; anything else is refused.
_BIT_GENERATORS: dict[str, type[np.random.BitGenerator]] = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "MT19937": np.random.MT19937,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
}


def checkpoint_path(run_dir_or_path: str | os.PathLike) -> Path:
    """``RUN_DIR/checkpoint.safetensors`` for a directory, the path itself for a file."""
    p = Path(as_path(run_dir_or_path))
    return p / CHECKPOINT_NAME if p.is_dir() else p


# --------------------------------------------------------------------------- fit settings
def normalize_fit_config(fit_config: dict[str, Any]) -> dict[str, Any]:
    """``fit_config`` as JSON-ready data: NumPy scalars become Python numbers, an
    EarlyStopping a dict, a Generator seed its integer entropy; anything not
    JSON-serialisable is refused with a ValueError."""
    out = {k: v.item() if isinstance(v, np.generic) else v for k, v in fit_config.items()}
    es = out.get("early_stopping")
    if isinstance(es, EarlyStopping):
        out["early_stopping"] = {
            "patience": es.patience,
            "monitor": es.monitor,
            "min_delta": es.min_delta,
            "mode": es.mode,
            "restore_best_weights": es.restore_best_weights,
        }
    seed = out.get("seed")
    if isinstance(seed, np.random.Generator):
        entropy = seed.bit_generator.seed_seq.entropy
        if not isinstance(entropy, int):
            raise ValueError("a checkpointed run needs an integer seed (or a default_rng(int))")
        out["seed"] = entropy
    cw = out.get("class_weight")
    if isinstance(cw, dict):
        out["class_weight"] = {str(int(k)): float(v) for k, v in cw.items()}
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"fit_config must hold JSON data (numbers, strings, lists, dicts): {e}"
        ) from None
    return out


def _fit_config_from_json(d: Any, path: Any) -> dict[str, Any]:
    """Check the stored fit settings' types; returns them with Python values restored."""
    if not isinstance(d, dict):
        raise ModelFileError(f"{path}: fit_config is not a JSON object")
    out = dict(d)

    def bad(key: str, expected: str) -> ModelFileError:
        return ModelFileError(f"{path}: fit_config {key} is {_short(d[key])}; expected {expected}")

    is_num = _is_finite

    if "epochs" in d and not is_count(d["epochs"]):
        raise bad("epochs", "an integer >= 0")
    for key in ("batch_size", "every"):
        if key in d and not is_count(d[key], 1):
            raise bad(key, "an integer >= 1")
    seed = d.get("seed")
    if "seed" in d and not (
        seed is None
        or (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**256)
    ):
        raise bad("seed", "a non-negative integer or null")
    if "shuffle" in d and not isinstance(d["shuffle"], bool):
        raise bad("shuffle", "true or false")
    if "validation_fraction" in d and not (
        is_num(d["validation_fraction"]) and 0 <= d["validation_fraction"] < 1
    ):
        raise bad("validation_fraction", "a number in [0, 1)")
    es = d.get("early_stopping")
    if es is not None:
        if is_count(es, 1):
            pass
        elif (
            isinstance(es, dict)
            # {patience, monitor, min_delta}, written before mode and restore_best_weights
            and set(es) - {"mode", "restore_best_weights"} == {"patience", "monitor", "min_delta"}
            and is_count(es["patience"], 1)
            and isinstance(es["monitor"], str)
            and es["monitor"]
            and is_num(es["min_delta"])
            and es["min_delta"] >= 0
            and es.get("mode", "min") in ("auto", "min", "max")
            and isinstance(es.get("restore_best_weights", True), bool)
        ):
            out["early_stopping"] = EarlyStopping(
                es["patience"],
                es["monitor"],
                float(es["min_delta"]),
                # before modes existed every monitor was minimised
                mode=es.get("mode", "min"),
                restore_best_weights=es.get("restore_best_weights", True),
            )
        else:
            raise bad(
                "early_stopping",
                "null, a patience >= 1, or {patience, monitor, min_delta[, mode, "
                "restore_best_weights]}",
            )
    cw = d.get("class_weight")
    if cw is not None and cw != "balanced":
        if not (
            isinstance(cw, dict)
            and all(
                k.isascii() and k.isdigit() and len(k) < 10 and is_num(v) for k, v in cw.items()
            )
        ):
            raise bad("class_weight", "null, 'balanced' or {class index: weight}")
        out["class_weight"] = {int(k): float(v) for k, v in cw.items()}
    return out


# ------------------------------------------------------------------------------ saving
def save_checkpoint(
    path: str | os.PathLike,
    state: TrainState,
    fit_config: dict[str, Any],
    *,
    _rows_text: _RowsText | None = None,
) -> None:
    """Write ``state`` and the fit settings to ``path``, atomically.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file (conventionally ``RUN_DIR/checkpoint.safetensors``).
    state : TrainState
        As handed to callbacks by :func:`backprop.training.fit`.
    fit_config : dict
        The fit keyword arguments to resume with (see :data:`FIT_KEYS`), plus any other
        JSON data the caller wants back from :func:`load_checkpoint`.
    _rows_text : optional
        A :class:`Checkpoint`'s encoder of the history's rows, kept across its saves so
        that each row is encoded once (internal).
    """
    write_atomic(path, _checkpoint_bytes(state, fit_config, _rows_text or _RowsText()))


def _checkpoint_bytes(state: TrainState, fit_config: dict[str, Any], rows_text: _RowsText) -> bytes:
    """The checkpoint file of ``state`` (see :func:`save_checkpoint`), the history's rows
    encoded by ``rows_text`` (a :class:`Checkpoint` keeps one across its saves)."""
    model, opt = state.model, state.optimizer
    if OPTIMIZERS.get(opt.name) is not type(opt):
        raise ValueError(
            f"cannot checkpoint optimizer {type(opt).__name__}: only the built-in optimizers "
            f"({', '.join(OPTIMIZERS)}) can be rebuilt from a file"
        )
    if opt.schedule.name not in SCHEDULES or type(opt.schedule) is not SCHEDULES[opt.schedule.name]:
        raise ValueError(f"cannot checkpoint schedule {type(opt.schedule).__name__}: not built in")
    opt_state = opt.state_dict()
    tensors = dict(model.state_dict())
    for key, value in opt_state["slots"].items():
        tensors[f"optimizer.{key}"] = value
    if state.best_params is not None:
        for key, value in state.best_params.items():
            tensors[f"best.{key}"] = np.asarray(value)
    if state.last_params is not None:
        for key, value in state.last_params.items():
            tensors[f"last.{key}"] = np.asarray(value)
    train_state = {
        "epoch": state.epoch,
        "stop": state.stop,
        "best_score": state.best_score if math.isfinite(state.best_score) else None,
        "has_best_params": state.best_params is not None,
        "has_last_params": state.last_params is not None,
        "shuffle_rng": generator_state(state.rng),
        "dropout_rng": generator_state(model.dropout_rng),
        "optimizer": {
            "name": opt.name,
            "hyperparameters": opt.hyperparameters(),
            "schedule": opt.schedule.to_dict(),
            "t": opt_state["t"],
            "epoch": opt_state["epoch"],
            "slots": sorted(opt_state["slots"]),
        },
    }
    # json.dumps of train_state with its "history" (last), the rows encoded by rows_text
    history = state.history.to_dict()
    rows = history.pop("epochs")
    history_text = f'{{"epochs": {rows_text(rows)}, {json.dumps(history)[1:]}'
    metadata = model_metadata(model, CHECKPOINT_FORMAT)
    metadata["train_state"] = f'{json.dumps(train_state)[:-1]}, "history": {history_text}}}'
    metadata["fit_config"] = json.dumps(normalize_fit_config(fit_config), allow_nan=False)
    return encode_safetensors(tensors, metadata)


class _RowsText:
    """The JSON text of a history's epoch rows (``json.dumps(rows)``), each row encoded once.

    A run checkpointed every few epochs re-encoded its whole history at each save: time
    quadratic in epochs (``benchmarks/checkpoint_cost.py``: 10,000 epochs of a 2-16-2
    network saved every 10 took 55 s, 22 s with rows encoded once, 2.2 s without
    checkpoints; what is left is mostly the fsyncs and renames of 1,000 atomic writes).
    Rows encoded before are reused while they equal the copies taken then (a comparison in
    C: 0.3 ms for 5,500 rows whose encoding took 17 ms); once one has changed, every row is
    encoded again. Rows hold numbers (a list inside a row, changed in place, would not be
    seen).
    """

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []
        self._texts: list[str] = []

    def __call__(self, rows: list[dict[str, Any]]) -> str:
        n = len(self._rows)
        if n > len(rows) or self._rows != rows[:n]:
            self._rows, self._texts = [], []
        for row in rows[len(self._rows) :]:
            self._texts.append(json.dumps(row))
            self._rows.append(dict(row))
        return f"[{', '.join(self._texts)}]"


class Checkpoint(Callback):
    """A :func:`~backprop.training.fit` callback that checkpoints every ``every`` epochs.

    Call :meth:`save` once more after ``fit`` returns, so that the end of the run (early
    stopping's restored weights, the stop reason) is saved too.

    Parameters
    ----------
    run_dir : str or path-like
        Created if missing; the checkpoint is ``run_dir / filename``.
    every : int
        Save after epochs ``every, 2 every, ...``.
    fit_config : dict, optional
        The keyword arguments given to ``fit`` (epochs, batch_size, seed, shuffle,
        validation_fraction, early_stopping, class_weight), so that :func:`resume` can
        replay them; extra JSON keys are kept for the caller.
    filename : str
        The checkpoint file's name in ``run_dir``, default ``"checkpoint.safetensors"``
        (:data:`backprop.io.checkpoint.CHECKPOINT_NAME`). :func:`resume` given the folder
        looks for that default name (give it the file's path for another); ``backprop
        train --resume`` takes a folder, so it finds only the default name.

    Examples
    --------
    >>> ckpt = Checkpoint("runs/a", every=1, fit_config={"epochs": 5, "seed": 0})  # doctest: +SKIP
    >>> fit(model, X, T, epochs=5, seed=0, callbacks=[ckpt]); ckpt.save()  # doctest: +SKIP
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        every: int = 1,
        *,
        fit_config: dict[str, Any] | None = None,
        filename: str = CHECKPOINT_NAME,
    ) -> None:
        if not (isinstance(every, int) and not isinstance(every, bool) and every >= 1):
            raise ValueError(f"every must be a positive integer; got {every!r}")
        self.run_dir = Path(as_path(run_dir, "run_dir"))
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise ValueError(
                f"run_dir {self.run_dir} is a file; expected a folder for the checkpoint"
            ) from None
        except NotADirectoryError:  # a folder on the way is a file (a bare '[Errno 20]'): name it
            blocker = next(
                (p for p in reversed(self.run_dir.parents) if p.exists() and not p.is_dir()),
                self.run_dir,
            )
            raise ValueError(
                f"run_dir {self.run_dir}: {blocker} is a file; expected folders on the way to "
                "the checkpoint's folder"
            ) from None
        self.path = self.run_dir / filename
        self.every = every
        self.fit_config = normalize_fit_config({**(fit_config or {}), "every": every})
        self.last_state: TrainState | None = None
        self._rows_text = _RowsText()

    def on_epoch_end(self, state: TrainState) -> None:
        self.last_state = state
        if state.epoch % self.every == 0:
            self.save(state)

    def save(self, state: TrainState | None = None) -> None:
        """Checkpoint ``state`` (by default the last one seen at an epoch's end).

        Under ``mpirun`` only rank 0 writes: every rank holds the same state.
        """
        state = state if state is not None else self.last_state
        if state is None:
            raise ValueError("no training state to save yet: no epoch has ended")
        if is_main_process():
            save_checkpoint(self.path, state, self.fit_config, _rows_text=self._rows_text)

    @property
    def saved_epoch(self) -> int | None:
        """The epoch the checkpoint file holds (None without a readable one), read from
        the file: what an interrupt at any moment of a write left there (a record kept
        beside the writes fell behind when a Ctrl-C came between the rename and it)."""
        try:
            meta = read_header(self.path, "checkpoint").metadata
            ts = parse_json(
                meta["train_state"], "the training state", self.path, "epochs", extra=16
            )
            epoch = ts["epoch"] if isinstance(ts, dict) else None
        except (OSError, ValueError, KeyError):
            return None
        return epoch if is_count(epoch) else None


# ----------------------------------------------------------------------------- loading
def _generator(d: Any, path: Any, what: str) -> np.random.Generator:
    """A Generator whose bit generator (from the fixed table) has the stored state."""
    name = d.get("bit_generator") if isinstance(d, dict) else None
    if not isinstance(name, str) or name not in _BIT_GENERATORS:
        raise ModelFileError(
            f"{path}: the {what} state names bit generator {_short(name)}; expected one of "
            f"{', '.join(_BIT_GENERATORS)}"
        )
    bit_generator = _BIT_GENERATORS[name](0)
    _set_state(bit_generator, d, path, what)
    return np.random.Generator(bit_generator)


def _words(x: Any, n: int | None, bits: int) -> bool:
    """Whether ``x`` is an integer in [0, 2**bits), or (``n``) a list of ``n`` of them."""
    if n is not None:
        return isinstance(x, list) and len(x) == n and all(_words(v, None, bits) for v in x)
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**bits


def _state_fits(d: dict[str, Any]) -> bool:
    """Whether a stored generator state holds what its bit generator's state holds, each
    field in range: NumPy takes MT19937's ``pos`` and Philox's ``buffer_pos`` unchecked,
    and read memory outside the generator with them (a crafted checkpoint's pos of 2**31
    ended the resume in a segmentation fault; 10**6 shuffled with whatever lay there)."""
    name, s = d.get("bit_generator"), d.get("state")
    if not isinstance(s, dict):
        return False
    if name == "MT19937":  # (no buffered 32-bit half)
        pos = s.get("pos")
        return _words(s.get("key"), 624, 32) and _words(pos, None, 32) and pos <= 624
    if not (d.get("has_uint32") in (0, 1) and _words(d.get("uinteger"), None, 32)):
        return False
    if name in ("PCG64", "PCG64DXSM"):
        return _words(s.get("state"), None, 128) and _words(s.get("inc"), None, 128)
    if name == "Philox":
        at = d.get("buffer_pos")
        return (
            _words(s.get("counter"), 4, 64)
            and _words(s.get("key"), 2, 64)
            and _words(d.get("buffer"), 4, 64)
            and _words(at, None, 32)
            and at <= 4
        )
    return name == "SFC64" and _words(s.get("state"), 4, 64)


def _set_state(bit_generator: np.random.BitGenerator, d: Any, path: Any, what: str) -> None:
    if not isinstance(d, dict) or not _state_fits(d):
        raise ModelFileError(
            f"{path}: the {what} state is invalid: expected {type(bit_generator).__name__}'s "
            "fields, each an integer in its range (as bit_generator.state holds them)"
        )
    try:
        bit_generator.state = d
    except (ValueError, TypeError, KeyError, OverflowError, IndexError) as e:
        raise ModelFileError(f"{path}: the {what} state is invalid: {e}") from None


def _history(d: Any, epoch: int, path: Any) -> History:
    def is_num(x: Any) -> bool:  # a float (inf stands for an overflowed metric) or a count
        return isinstance(x, float) or is_count(x, -MAX_COUNT)

    ok = (
        isinstance(d, dict)
        and set(d) == {"epochs", "stop_reason", "best_epoch"}
        and isinstance(d["epochs"], list)
        and all(
            isinstance(row, dict) and all(isinstance(k, str) and is_num(v) for k, v in row.items())
            for row in d["epochs"]
        )
        and isinstance(d["stop_reason"], str)
        and (
            d["best_epoch"] is None
            or (is_num(d["best_epoch"]) and isinstance(d["best_epoch"], int))
        )
    )
    if not ok:
        raise ModelFileError(f"{path}: the training history is malformed")
    if len(d["epochs"]) != epoch:
        raise ModelFileError(
            f"{path}: the history has {len(d['epochs'])} epochs but the checkpoint is at "
            f"epoch {epoch}"
        )
    return History.from_dict(d)


def _optimizer_spec(
    d: Any, params: ExpectedTensors, path: Any
) -> tuple[type[Optimizer], dict, ExpectedTensors]:
    """Check the stored optimizer record; returns its class, record, and slot tensors."""
    if not (
        isinstance(d, dict)
        and {"name", "hyperparameters", "schedule", "t", "epoch", "slots"} == set(d)
    ):
        raise ModelFileError(f"{path}: the optimizer record is malformed")
    name = d["name"]
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ModelFileError(
            f"{path}: unknown optimizer {_short(name)}; expected one of {', '.join(OPTIMIZERS)}"
        )
    cls = OPTIMIZERS[name]
    for key in ("t", "epoch"):
        if not is_count(d[key]):
            raise ModelFileError(
                f"{path}: optimizer {key} is {_short(d[key])}; expected an integer from 0 to "
                f"{MAX_COUNT}"
            )
    slots = d["slots"]
    if not (isinstance(slots, list) and all(isinstance(s, str) for s in slots)):
        raise ModelFileError(f"{path}: the optimizer's slot list is malformed")
    expected: ExpectedTensors = {}
    for key in slots:
        param, _, slot = key.rpartition(".")
        if param not in params or slot not in cls.slots:
            raise ModelFileError(
                f"{path}: optimizer slot {_short(key)} is not '<parameter>.<slot>' with a slot of "
                f"{name!r} ({', '.join(cls.slots) or 'none'})"
            )
        expected[f"optimizer.{key}"] = params[param]
    return cls, d, expected


def _build_optimizer(cls: type[Optimizer], d: dict, path: Any) -> Optimizer:
    hyper, schedule = d["hyperparameters"], d["schedule"]
    numbers_only = isinstance(hyper, dict) and all(_is_finite(v) for v in hyper.values())
    if not numbers_only:
        raise ModelFileError(f"{path}: the optimizer's hyperparameters must be finite numbers")
    sched_name = schedule.get("name") if isinstance(schedule, dict) else None
    if not isinstance(sched_name, str) or sched_name not in SCHEDULES:
        raise ModelFileError(
            f"{path}: unknown schedule {_short(sched_name)}; expected one of {', '.join(SCHEDULES)}"
        )
    sched_args = {k: v for k, v in schedule.items() if k != "name"}
    if not all(v is None or _is_finite(v) for v in sched_args.values()):  # (None: cosine's
        raise ModelFileError(f"{path}: the schedule's settings must be finite numbers")  # t_max)
    try:
        return cls(**hyper, schedule=SCHEDULES[sched_name](**sched_args))
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: the optimizer cannot be rebuilt: {e}") from None


def load_checkpoint(
    path: str | os.PathLike, backend: str | Any = "numpy", device: str | None = None
) -> tuple[TrainState, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint` (or a :class:`Checkpoint`).

    Parameters
    ----------
    path : str or path-like
        The checkpoint file, or a run directory holding ``checkpoint.safetensors``.
    backend, device
        Where the model and optimizer arrays live; a checkpoint from any backend loads on any.

    Returns
    -------
    state : TrainState
        Ready to pass as ``fit(..., state=state)``.
    fit_config : dict
        The stored fit settings (``early_stopping`` as an EarlyStopping, ``class_weight``
        keys as ints) and any extra keys the writer stored.

    Raises
    ------
    ModelFileError
        For every problem with the file.
    """
    path = checkpoint_path(path)
    header = read_header(path, kind="checkpoint")
    meta = header.metadata
    check_format(meta, path, (CHECKPOINT_FORMAT,))
    config = config_from_metadata(meta, path)
    preprocessing = preprocessing_from_metadata(meta, path, config)
    for key in ("train_state", "fit_config"):
        if key not in meta:
            raise ModelFileError(f"{path}: the checkpoint's metadata has no {key!r}")
    # one JSON object per epoch of history: parsing stops past the epochs limit (+ the
    # objects around the history: the state, its generators, the optimizer record)
    ts = parse_json(meta["train_state"], "the training state", path, "epochs", extra=16)
    fit_config = _fit_config_from_json(
        parse_json(meta["fit_config"], "fit_config", path, "epochs", extra=16), path
    )
    keys = {
        "epoch",
        "stop",
        "history",
        "best_score",
        "has_best_params",
        "shuffle_rng",
        "dropout_rng",
        "optimizer",
    }
    if isinstance(ts, dict):  # a checkpoint from before has_last_params existed: false
        ts = {"has_last_params": False, **ts}
    keys.add("has_last_params")
    if not (isinstance(ts, dict) and set(ts) == keys):
        raise ModelFileError(
            f"{path}: the training state must have exactly the keys {sorted(keys)}"
        )
    epoch = ts["epoch"]
    if not is_count(epoch):
        raise ModelFileError(f"{path}: epoch is {_short(epoch)}; expected an integer >= 0")
    for key in ("stop", "has_best_params", "has_last_params"):
        if not isinstance(ts[key], bool):
            raise ModelFileError(f"{path}: {key} is {_short(ts[key])}; expected true or false")
    best_score = ts["best_score"]
    if not (best_score is None or _is_finite(best_score)):
        raise ModelFileError(
            f"{path}: best_score is {_short(best_score)}; expected a number or null"
        )
    history = _history(ts["history"], epoch, path)
    rng = _generator(ts["shuffle_rng"], path, "shuffle generator")

    params = parameter_shapes(config)
    opt_cls, opt_record, slot_tensors = _optimizer_spec(ts["optimizer"], params, path)
    expected = {**params, **slot_tensors}
    for kept in ("best", "last"):
        if ts[f"has_{kept}_params"]:
            expected.update({f"{kept}.{k}": v for k, v in params.items()})
    tensors = read_tensors(header, expected, kind="checkpoint")

    model = build_model(config, {k: tensors[k] for k in params}, backend, device)
    model.preprocessing = preprocessing
    if not isinstance(ts["dropout_rng"], dict):
        raise ModelFileError(f"{path}: the dropout generator state is malformed")
    _set_state(model.dropout_rng.bit_generator, ts["dropout_rng"], path, "dropout generator")
    opt = _build_optimizer(opt_cls, opt_record, path)
    slots = {key: tensors[f"optimizer.{key}"] for key in opt_record["slots"]}
    opt.load_state_dict(
        {"name": opt.name, "t": opt_record["t"], "epoch": opt_record["epoch"], "slots": slots},
        backend=model.backend,
    )
    best = {k: tensors[f"best.{k}"] for k in params} if ts["has_best_params"] else None
    last = {k: tensors[f"last.{k}"] for k in params} if ts["has_last_params"] else None
    state = TrainState(
        model=model,
        optimizer=opt,
        rng=rng,
        epoch=epoch,
        history=history,
        best_score=math.inf if best_score is None else float(best_score),
        best_params=best,
        stop=ts["stop"],
        last_params=last,
    )
    return state, fit_config


# ------------------------------------------------------------------------------ resume
def resume(run_dir_or_path: str | os.PathLike, X: Any, T: Any, **fit_overrides: Any) -> History:
    """Continue a checkpointed run to its end: the Python form of ``backprop train --resume``.

    The run continues exactly: its final weights are bit-identical to those of the same run
    never interrupted, with the same BLAS thread count (docs/model-files.md, exact resume).
    It keeps checkpointing into the same file, every ``every`` epochs and once at the end.

    Parameters
    ----------
    run_dir_or_path : str or path-like
        A run directory holding ``checkpoint.safetensors``, or a checkpoint file.
    X : array (n_samples, n_inputs);  T : array (n_samples, n_outputs) or 1-D labels
        The same training data as the interrupted run.
    **fit_overrides
        Replace stored settings (e.g. ``epochs=20`` to train longer), or give what a
        checkpoint cannot store: ``validation_data``, ``sample_weight``, ``callbacks``,
        ``progress``; ``backend`` and ``device`` choose where to continue.

    Returns
    -------
    History
        All epochs of the run, the ones before the interruption included. The model is in
        the checkpoint: ``load_model(run_dir / "checkpoint.safetensors")``.
    """
    for key in ("optimizer", "lr", "state"):
        if key in fit_overrides:
            raise ValueError(f"resume() takes {key!r} from the checkpoint; it cannot be overridden")
    backend = fit_overrides.pop("backend", "numpy")
    device = fit_overrides.pop("device", None)
    path = checkpoint_path(run_dir_or_path)
    state, fit_config = load_checkpoint(path, backend=backend, device=device)
    stored = {k: fit_overrides.pop(k) for k in (*FIT_KEYS, "every") if k in fit_overrides}
    fit_config = {**fit_config, **stored}
    epochs = fit_config.get("epochs")
    if is_count(epochs) and epochs < state.epoch:  # it trained nothing, and said epochs=2
        raise ValueError(
            f"{path} has trained {state.epoch} epochs; epochs={epochs} ends before that "
            f"(expected epochs >= {state.epoch})"
        )
    callbacks = list(fit_overrides.pop("callbacks", ()))
    ckpt = Checkpoint(
        path.parent, fit_config.get("every", 1), fit_config=fit_config, filename=path.name
    )
    if not state.stop:
        state.history.stop_reason = ""  # the run goes on: fit writes the new reason
    kwargs = {k: fit_config[k] for k in FIT_KEYS if k in fit_config}
    history = fit(
        state.model, X, T, state=state, callbacks=[*callbacks, ckpt], **kwargs, **fit_overrides
    )
    ckpt.save(state)
    return history
