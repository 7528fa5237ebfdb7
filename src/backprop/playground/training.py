"""Train mode: a small MLP learning a 2-D data set, one batch at a time, with every number
of the last step kept for the learner to inspect.

The engine does all the arithmetic (:class:`backprop.MLP`, its optimizers,
:func:`backprop.trace.trace_step`, :func:`backprop.gradcheck.finite_differences`); this
module chooses the batches, keeps the last step's numbers and turns them into frames.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import math
import os
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import is_finite_number, short_repr
from ..activations import ACTIVATIONS
from ..datasets import DatasetError, load_dataset
from ..datasets.tabular import read_csv_header, refuse_a_single_class
from ..formatting import number, numbers, packed, toml_string
from ..gradcheck import finite_difference, kinked_finite_differences
from ..initializers import INITIALIZERS, SCALED_INITIALIZERS
from ..io import encode_safetensors, model_metadata
from ..network import MLP
from ..optimizers import OPTIMIZERS, get_optimizer, optimizers_taking
from ..trace import layer_outputs, trace_step

__all__ = ["FIELDS", "DEFAULT_SETUP", "SetupError", "TrainRun", "check_setup"]

DATASETS = ("xor", "moons", "circles", "spirals", "blobs", "csv")
LOSS_OUTPUT = {  # loss -> the output activation it needs
    "cross_entropy": "identity",
    "binary_cross_entropy": "identity",
    "l2": "sigmoid",
    "mse": "sigmoid",
}
HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a not in ("softmax", "identity"))
MAX_HIDDEN_LAYERS, MAX_UNITS = 6, 32
MAX_PARAMETERS = 6000
FULL_FD_MAX_PARAMETERS = 600  # a full finite-difference table on pause/step up to this size
MAX_REPLAY_ROWS = 2_000_000  # rows a setup's "trail" may replay
#: The most classes the page tells apart (8 colours by 5 marker shapes), and so the most a
#: run may have: a 1 MiB CSV of 1,000 classes took a minute and 3.2 GB to set up.
MAX_CLASSES = 40
GRID, UNIT_GRID = 64, 16  # the decision map's and each unit map's resolution
MAX_CSV_BYTES = 1 << 20
#: Rows of a dropped CSV: an epoch is stepped in one command, and 174,759 rows of a 1 MiB
#: file at batch 1 held the tab (its pause too) for 40-70 s; 10,000 take a few seconds.
MAX_CSV_ROWS = 10_000
HISTORY_POINTS = 400
NO_TEST_ROWS = {"v": None, "s": "— (no test rows)", "state": "absent"}  # test share 0


class SetupError(ValueError):
    """A train-mode setup value is out of range; the message names it and what is allowed."""


#: Every setup field: kind and allowed values, declared once and checked by check_setup.
FIELDS: dict[str, tuple[Any, ...]] = {
    "dataset": ("choice", DATASETS),
    "n_samples": ("int", 20, 2000),
    "noise": ("float", 0.0, 2.0),
    "test_fraction": ("float", 0.0, 0.9),
    "hidden": ("sizes", MAX_HIDDEN_LAYERS, MAX_UNITS),
    "activation": ("choice", HIDDEN_ACTIVATIONS),
    "loss": ("choice", tuple(LOSS_OUTPUT)),
    "optimizer": ("choice", tuple(OPTIMIZERS)),
    "lr": ("float", 1e-6, 100.0),
    "momentum": ("float", 0.0, 0.999),
    "beta1": ("float", 0.0, 0.999),
    "beta2": ("float", 0.0, 0.99999),
    "weight_decay": ("float", 0.0, 10.0),
    "batch_size": ("int", 1, 2000),
    "dropout": ("float", 0.0, 0.9),
    "init": ("choice", tuple(INITIALIZERS)),
    "init_scale": ("float", 1e-4, 10.0),
    "seed": ("int", 0, 2**31 - 1),
    "speed": ("int", 1, 500),
    "csv_text": ("text", MAX_CSV_BYTES),
    "csv_name": ("text", 200),
    "csv_target": ("text", 200),
    "trail": ("trail",),
}

#: What the page's form calls a field, where that is not its key: errors use these names.
LABELS = {
    "n_samples": "samples", "test_fraction": "test share", "csv_target": "CSV target",
    "hidden": "hidden units", "init_scale": "init scale", "weight_decay": "L2 λ",
    "batch_size": "batch size", "lr": "learning rate η", "speed": "steps per frame",
}  # fmt: skip

#: The form's optimizer settings that only some optimizers take (as they declare them).
OPTIMIZER_FIELDS = ("momentum", "beta1", "beta2")


def _used_by(setting: str) -> tuple[str, list[str], str]:
    owners = optimizers_taking(setting)
    return "optimizer", owners, f"the {' and '.join(owners)} optimizers only"


#: The fields only some choices use: field -> (the choosing field, its choices that use it,
#: who they are in words). The page greys the field out under the others (init scale did
#: nothing under he_uniform, the default, and a learner changed it and saw nothing; samples
#: and noise stayed editable for a CSV file, which only the generators use them for, and
#: the CSV target for the generators).
USED_BY = {
    **{setting: (
        "dataset", [d for d in DATASETS if d != "csv"],
        "the generated data sets only (a CSV file brings its own rows)",
    ) for setting in ("n_samples", "noise")},
    "csv_target": ("dataset", ["csv"], "a CSV file only (it names the file's class column)"),
    "init_scale": (
        "init", list(SCALED_INITIALIZERS),
        "the normal initialiser only (the others take their scale from the layer sizes)",
    ),
    **{setting: _used_by(setting) for setting in OPTIMIZER_FIELDS},
}  # fmt: skip

DEFAULT_SETUP: dict[str, Any] = {
    "dataset": "spirals",
    "n_samples": 500,
    "noise": 0.02,
    "test_fraction": 0.25,
    "hidden": [16, 16],
    "activation": "relu",
    "loss": "cross_entropy",
    "optimizer": "adam",
    "lr": 0.01,
    "momentum": 0.9,
    "beta1": 0.9,
    "beta2": 0.999,
    "weight_decay": 0.0,
    "batch_size": 10,
    "dropout": 0.0,
    "init": "he_uniform",
    "init_scale": 0.1,
    "seed": 0,
    "speed": 10,
    "csv_text": "",
    "csv_name": "",
    "csv_target": "",
    "trail": [],
}


def check_setup(setup: Any) -> dict[str, Any]:
    """``DEFAULT_SETUP`` updated with ``setup``, every value checked against :data:`FIELDS`."""
    if not isinstance(setup, dict):
        raise SetupError("the setup must be a JSON object")
    unknown = sorted(set(setup) - set(FIELDS))
    if unknown:
        raise SetupError(f"unknown setup keys {unknown}; expected some of {sorted(FIELDS)}")
    out = copy.deepcopy(DEFAULT_SETUP)
    for key, value in setup.items():
        spec = FIELDS[key]
        kind = spec[0]
        name = LABELS.get(key, key)
        if kind == "choice":
            if value not in spec[1]:
                raise SetupError(
                    f"{name} must be one of {', '.join(spec[1])}; got {short_repr(value)}"
                )
        elif kind in ("int", "float"):
            is_num = is_finite_number(value)
            whole = is_num and float(value).is_integer() or type(value) is int  # 10**400 too
            ok = is_num and spec[1] <= value <= spec[2] and (kind == "float" or whole)
            if not ok:
                what, lo, hi = ("a whole number", spec[1], spec[2]) if kind == "int" else (
                    "a number", f"{spec[1]:g}", f"{spec[2]:g}"
                )  # fmt: skip
                got = short_repr(value)
                raise SetupError(f"{name} must be {what} from {lo} to {hi}; got {got}")
            value = int(value) if kind == "int" else float(value)
        elif kind == "sizes":
            ok = isinstance(value, list) and len(value) <= spec[1]
            ok = ok and all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= spec[2] for v in value
            )
            if not ok:
                raise SetupError(
                    f"hidden units must list up to {spec[1]} layer sizes from 1 to {spec[2]}, "
                    f"separated by commas (16,16); got {short_repr(value)}"
                )
        elif kind == "text":
            try:
                size = len(value.encode("utf-8")) if isinstance(value, str) else None
            except UnicodeEncodeError:  # (it failed in the server: a 500)
                raise SetupError(
                    f"{name} holds a lone UTF-16 surrogate, which is no text"
                ) from None
            if size is None or size > spec[1]:
                raise SetupError(f"{name} must be text of at most {spec[1]} bytes")
        elif kind == "trail":
            ok = isinstance(value, list) and len(value) <= 10_000
            ok = ok and all(
                isinstance(r, list) and len(r) == 2 and all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in r
                ) for r in value
            )  # fmt: skip
            if not ok:
                raise SetupError("trail must be a list of [rows per step, steps] pairs")
            rows = sum(a * b for a, b in value)
            if rows > MAX_REPLAY_ROWS:  # (it said the trail was not a list of pairs)
                raise SetupError(
                    f"this run trained on {rows:,} rows, more than a setup replays "
                    f"({MAX_REPLAY_ROWS:,}); its model.safetensors export keeps its weights"
                )
        out[key] = value
    if out["dataset"] == "csv" and not out["csv_text"]:
        if out["csv_name"]:  # a URL or setup.json: they leave the file out
            raise SetupError(
                f"this run trained on the CSV file {out['csv_name']}, which its URL does not "
                "carry: drop that file on the page (or choose it with the file picker under the "
                "setup form) to rebuild the run"
            )
        raise SetupError(
            "dataset csv needs a file: drop a 2-feature CSV file on the page, or choose one "
            "with the file picker under the setup form"
        )
    return out


def _cell_centres(x0: float, x1: float, y0: float, y1: float, n: int) -> np.ndarray:
    """The centres of an ``n`` x ``n`` map's cells over ``[x0, x1] x [y0, y1]``, top row
    first, as an image: the page draws cell ``j`` over ``[j, j + 1) / n`` of the map, so a
    cell's value is its centre's (sampled at x0..x1 inclusive, the map sat up to half a
    cell off the points and axes)."""
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y1 - (np.arange(n) + 0.5) * (y1 - y0) / n
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def _b64(values: np.ndarray) -> str:
    """Values in [0, 1] as bytes 0..255, base64: a 64x64 map is 5.5 kB of JSON. (A
    diverged step is undone before any frame, so the values are finite; 0 otherwise.)"""
    finite = np.where(np.isfinite(values), values, 0.0)
    q = np.clip(finite * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def _json_number(v: Any) -> float | None:
    """A number for a JSON export: the float, or None where it is not finite."""
    x = float(v)
    return x if math.isfinite(x) else None


def _fd_number(last: LastStep, name: str, idx: tuple[int, ...]) -> dict[str, Any]:
    """The table's finite difference of one entry, said to be on a kink where it is (a
    ReLU unit's input exactly 0: the estimate and the gradient then differ, both right)."""
    out = number(last.full_fd[name][idx], "sig")  # type: ignore[index]
    if last.fd_kinks is not None and last.fd_kinks[name][idx]:
        out = {**out, "s": f"{out['s']} (on a kink)", "state": "kink"}
    return out


def _finite(arrays: Any) -> bool:
    return all(bool(np.all(np.isfinite(a))) for a in arrays)


@dataclass
class LastStep:
    """Every number of the last optimizer step, kept for the learner to inspect."""

    number: int  # 1-based step count
    rows: np.ndarray  # training rows of the batch
    loss: float  # the batch loss before the update
    before: dict[str, np.ndarray]  # parameters the gradient was taken at
    grads: dict[str, np.ndarray]  # dL/dp on the batch, the gradient given to the optimizer
    delta: dict[str, np.ndarray]  # what the optimizer changed: after - before
    opt_before: dict[str, Any]  # optimizer state before the step (state_dict)
    opt_after: dict[str, Any]
    dropout_state: dict[str, Any]  # the dropout generator before the step (its masks)
    lr: float
    full_fd: dict[str, np.ndarray] | None = None
    fd_kinks: dict[str, np.ndarray] | None = None  # the table's entries on a kink


class TrainRun:
    """One training run of the playground: data, model, optimizer, batches, last step."""

    def __init__(self, setup: dict[str, Any], replay: bool = True) -> None:
        """A run built from ``setup``, its ``trail`` replayed; with ``replay`` False the run
        stands at step 0 with the trail in :attr:`pending`, for :meth:`replay` to take in
        slices (a trail of 2 million one-row steps takes minutes: the session replays it in
        the background and shows its progress)."""
        self.setup = check_setup(setup)
        s = self.setup
        self.data = self._load_data()
        if self.data.task != "classification":
            raise SetupError(
                "the playground draws classes; this CSV's target looks numeric (regression): "
                "use a column of class labels"
            )
        if self.data.n_features != 2:
            raise SetupError(
                f"the playground draws 2-D data; this data set has {self.data.n_features} "
                "feature columns besides the target"
            )
        k = self.data.n_classes
        if k > MAX_CLASSES:
            raise SetupError(
                f"this CSV's target has {k} classes; the playground tells apart at most "
                f"{MAX_CLASSES} (backprop train takes more)"
            )
        self.sizes = [2, *s["hidden"], k]
        self.model = MLP(
            self.sizes,
            s["activation"],
            LOSS_OUTPUT[s["loss"]],
            s["loss"],
            init=s["init"],
            init_scale=s["init_scale"],
            dropout=s["dropout"],
            seed=s["seed"],
        )
        if self.model.n_parameters > MAX_PARAMETERS:
            raise SetupError(
                f"the network has {self.model.n_parameters} parameters; the playground draws "
                f"at most {MAX_PARAMETERS}"
            )
        try:  # (nesterov with momentum 0, which the form allows for momentum: a 500)
            self.optimizer = get_optimizer(s["optimizer"], **self._optimizer_settings())
        except ValueError as e:
            raise SetupError(str(e)) from None
        # a CSV file's scaling and class names go with the model (its exported file read raw
        # rows as standardised ones: 48% where the page showed 96%)
        self.model.preprocessing = self.data.preprocessing
        self.X, self.T = self.data.X_train, self.data.targets("train")
        # every training row checked and converted once, as the model takes a batch: checking
        # each batch anew (as_inputs, as_targets) took a quarter of a step (the same bits:
        # the conversion is row by row)
        self.X_model = self.model.as_inputs(self.X)  # the rows as the model takes them
        self.T_model = self.model.as_targets(self.T, self.X.shape[0])
        self.X_test = self.data.X_test
        self.T_test = self.data.targets("test") if self.X_test is not None else None
        self.order_rng = np.random.default_rng([s["seed"], 7])
        self.order = self.order_rng.permutation(self.X.shape[0])
        self.pos = 0
        self.epoch = 0
        self.steps = 0
        self.samples = 0
        self.trail: list[list[int]] = []
        self.last: LastStep | None = None
        self.diverged: str | None = None
        self.history: list[list[float]] = []  # step, train loss, test loss, train acc, test acc
        self.selected_point: int | None = None
        self.selected_weight: tuple[str, tuple[int, ...]] | None = None
        self._grid = self._make_grid()
        self._record()
        #: The setup's trail still to replay, as ``[rows, steps]`` pairs; while any is left,
        #: the setup's ``trail`` stays the whole one (a frame's setup, so the URL, replays
        #: to its end, not to where the replay has got to).
        self.pending = [list(pair) for pair in s["trail"]]
        self.replay_total = sum(count for _, count in self.pending)
        if replay:
            self.replay()

    def replay(
        self, seconds: float = math.inf, stopped: Callable[[], bool] = lambda: False
    ) -> bool:
        """Take the :attr:`pending` steps for up to ``seconds``, or until ``stopped()``;
        True once none is left (or the replay diverged: only a setup edited by hand can).
        Each step is the one :meth:`step` takes, on the same rows, so the run ends on the
        same bits; only the last keeps its numbers for the inspector (copying them took a
        third of a replayed step)."""
        deadline = time.monotonic() + seconds
        while self.pending and not self.diverged:
            if stopped() or time.monotonic() > deadline:
                return False
            pair = self.pending[0]
            self.step(pair[0], keep=len(self.pending) == 1 and pair[1] == 1)
            pair[1] -= 1
            if pair[1] == 0:
                self.pending.pop(0)
        self.pending = []
        self.setup["trail"] = self.trail  # the live record: a frame's setup replays to here
        return True

    @property
    def replayed(self) -> int:
        """How many of the setup's trail's steps have been replayed so far."""
        return self.replay_total - sum(count for _, count in self.pending)

    # ---------------------------------------------------------------- setup
    def _load_data(self) -> Any:
        s = self.setup
        if s["dataset"] != "csv":
            return load_dataset(
                s["dataset"],
                seed=s["seed"],
                n_samples=s["n_samples"],
                noise=s["noise"],
                test_fraction=s["test_fraction"],
            )
        name = s["csv_name"] or "dropped.csv"
        with _file_holding(s["csv_text"], name) as path:
            if not s["csv_target"]:  # the last column, as the CSV reader takes the header
                try:  # (leading blank lines or '"a","b","c"' made it '' or '"c"')
                    s["csv_target"] = read_csv_header(path)[-1]
                except DatasetError:  # said by load_dataset below, as any bad file is
                    pass
            try:
                data = load_dataset(
                    path, seed=s["seed"], target=s["csv_target"], test_fraction=s["test_fraction"]
                )
            except ValueError as e:
                raise SetupError(str(e).replace(path, name)) from None
        rows = data.n_train + data.n_test
        if rows > MAX_CSV_ROWS:
            raise SetupError(
                f"{name} has {rows:,} rows; the playground trains at most {MAX_CSV_ROWS:,} "
                "(backprop train reads the whole file)"
            )
        try:  # (read, as evaluate scores such a file)
            refuse_a_single_class(data, name)
        except DatasetError as e:
            raise SetupError(str(e)) from None
        return data

    def _optimizer_settings(self) -> dict[str, Any]:
        """The setup's lr and weight decay, and the form's settings its optimizer takes."""
        s = self.setup
        kw: dict[str, Any] = {"lr": s["lr"], "weight_decay": s["weight_decay"]}
        taken = OPTIMIZERS[s["optimizer"]].settings()
        kw.update({k: s[k] for k in OPTIMIZER_FIELDS if k in taken})
        return kw

    def _make_grid(self) -> dict[str, Any]:
        X = self.data.X_train if self.data.X_test is None else np.vstack(
            [self.data.X_train, self.data.X_test]
        )  # fmt: skip
        lo, hi = X.min(axis=0), X.max(axis=0)
        centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.1, 1e-3)
        x0, x1 = centre[0] - half, centre[0] + half
        y0, y1 = centre[1] - half, centre[1] + half
        return {"points": _cell_centres(x0, x1, y0, y1, GRID),
                "unit_points": _cell_centres(x0, x1, y0, y1, UNIT_GRID),
                "extent": [x0, x1, y0, y1]}  # fmt: skip

    # ---------------------------------------------------------------- stepping
    def step(self, rows: int, keep: bool = True) -> None:
        """One optimizer step on the next ``rows`` rows of the epoch's order (fewer at the
        epoch's end); a new shuffled order starts each epoch. ``keep`` False: the step's
        numbers are not kept for the inspector (a replayed step before the last)."""
        if self.diverged:
            return
        take = self.order[self.pos : self.pos + rows]
        if not self._step_on(take, keep):
            return  # undone: the same batch comes again, so a replayed trail stays exact
        if self.trail and self.trail[-1][0] == rows:
            self.trail[-1][1] += 1
        else:
            self.trail.append([rows, 1])
        self.pos += len(take)
        self.samples += len(take)
        if self.pos >= len(self.order):
            self.epoch += 1
            self.pos = 0
            self.order = self.order_rng.permutation(self.X.shape[0])

    def step_epoch(self) -> None:
        """Batches of ``batch_size`` to the end of the current epoch."""
        start = self.epoch
        while self.epoch == start and not self.diverged:
            self.step(self.setup["batch_size"])

    def _step_on(self, rows: np.ndarray, keep: bool = True) -> bool:
        """One optimizer step on ``rows``; False when it diverged (and was undone). With
        ``keep`` False, the step's numbers are checked (and undone) as any step's but not
        copied into :attr:`last`."""
        m, opt = self.model, self.optimizer
        before = m.state_dict()
        opt_before = opt.state_dict()
        dropout_state = copy.deepcopy(m.dropout_rng.bit_generator.state)
        lr = opt.lr
        with np.errstate(all="ignore"):  # overflow is reported below, as divergence
            loss = float(m.forward_backward(self.X_model[rows], self.T_model[rows]))
            opt.step(m.params, m.grads, flat=m.flat)  # (it reads the gradients, never writes)
        self.steps += 1
        what = None
        if not math.isfinite(loss):
            what = "the loss"
        elif not _finite(self._live_arrays()):
            what = "a gradient or a weight"
        elif not _finite(opt.state_arrays()):  # (Adam's v overflowed: step.json failed)
            what = f"the {opt.name} optimizer's moments"
        elif not self._outputs_finite():
            what = "the network's output on the data"
        if what is not None:
            scale = " or the init scale" if self.setup["init"] == "normal" else ""
            self.diverged = (
                f"Diverged at step {self.steps}: {what} became infinite or not a number "
                f"(learning rate {lr:g}). That step is undone: the weights and the optimizer "
                f"are as after step {self.steps - 1}, and stepping again repeats it. Lower the "
                f"learning rate{scale} (the run then starts again from step 0 with it), or "
                "press Rewind."
            )
            m.load_state_dict(before)
            opt.load_state_dict(opt_before)
            m.dropout_rng.bit_generator.state = dropout_state
            self.steps -= 1
            return False
        if not keep:
            return True
        after = m.state_dict()
        self.last = LastStep(
            number=self.steps,
            rows=np.asarray(rows),
            loss=loss,
            before=before,
            grads={k: np.array(v, copy=True) for k, v in m.grads.items()},
            delta={k: after[k] - before[k] for k in after},
            opt_before=opt_before,
            opt_after=opt.state_dict(),
            dropout_state=dropout_state,
            lr=lr,
        )
        return True

    def _live_arrays(self) -> list[Any]:
        """The model's gradients and weights as they stand, in as few arrays as hold them
        (its flat vectors: checking each parameter's own arrays took a fifth of a replayed
        step)."""
        m = self.model
        if m.flat is not None:
            return [m.flat.grads, m.flat.params]
        return [*m.grads.values(), *m.params.values()]

    def _outputs_finite(self) -> bool:
        """Whether the network's outputs, and so the metrics and maps the page draws, are
        finite on every row and grid point. A bound first: with |input| <= B, a layer's
        output is at most B max_j sum_i |W_ij| + max |b| + 1 (every hidden activation has
        |f(a)| <= |a| + 1); below 1e150 nothing can overflow, even squared in a loss. Only
        past it (a diverging run) are the outputs computed: a forward pass over the data
        every step would double the step's time."""
        bound = float(np.max(np.abs(self._grid["extent"])))
        params = self.model.params
        for i in range(len(self.sizes) - 1):
            W, b = params[f"layers.{i}.W"], params[f"layers.{i}.b"]
            bound = bound * float(np.abs(W).sum(axis=0).max()) + float(np.abs(b).max()) + 1.0
        if bound < 1e150:
            return True
        with np.errstate(all="ignore"):
            m = self.metrics()
            grid = layer_outputs(self.model, self._grid["points"])[-1]
        test_ok = self.X_test is None or math.isfinite(m["test_loss"])
        return math.isfinite(m["train_loss"]) and test_ok and _finite([grid])

    def clear_divergence(self) -> None:
        self.diverged = None

    # ---------------------------------------------------------------- numbers
    def _model_at(self, params: dict[str, np.ndarray], dropout_state: dict) -> MLP:
        """A copy of the model with ``params`` and the dropout generator at ``dropout_state``."""
        clone = MLP.from_config(self.model.config, seed=0)
        clone.load_state_dict(params)
        clone.dropout_rng.bit_generator.state = copy.deepcopy(dropout_state)
        return clone

    def needs_table(self) -> bool:
        """Whether the last step's finite-difference table is still to be computed."""
        last = self.last
        return (
            last is not None
            and last.full_fd is None
            and self.model.n_parameters <= FULL_FD_MAX_PARAMETERS
        )

    def full_finite_differences(self) -> None:
        """The finite-difference table of every parameter for the last step (nets of up to
        FULL_FD_MAX_PARAMETERS: two loss evaluations per parameter)."""
        if self.needs_table():
            assert self.last is not None
            self.last.full_fd, self.last.fd_kinks = self.table_for(self.last)

    def table_for(self, last: LastStep) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The finite differences of ``last``'s batch at its weights, and which sit on a
        kink, on a copy of the model: safe to run while the run itself goes on."""
        clone = self._model_at(last.before, last.dropout_state)
        with np.errstate(all="ignore"):
            return kinked_finite_differences(clone, self.X[last.rows], self.T[last.rows])

    def record(self) -> None:
        self._record()

    def _record(self) -> None:
        with np.errstate(all="ignore"):
            m = self.metrics()
        row = [float(self.steps), m["train_loss"], m["test_loss"], m["train_acc"], m["test_acc"]]
        if self.history and self.history[-1][0] == row[0]:
            self.history[-1] = row
        else:
            self.history.append(row)
        if len(self.history) > HISTORY_POINTS:  # keep the first, then every other point
            self.history = self.history[:1] + self.history[2::2]

    def metrics(self, train_output: np.ndarray | None = None) -> dict[str, float]:
        """Loss and accuracy on the training and test rows (``train_output``: the network's
        output on the training rows, when the caller has it already)."""
        m = self.model
        with np.errstate(all="ignore"):  # a non-finite value is shown as such, not warned
            if train_output is None:
                train_output = layer_outputs(m, self.X)[-1]
            out = {
                "train_loss": float(m.loss_fn.value(np, train_output, self.T)),
                "train_acc": self._accuracy(train_output, self.data.y_train),
            }
            if self.X_test is not None:
                test_output = layer_outputs(m, self.X_test)[-1]
                out["test_loss"] = float(m.loss_fn.value(np, test_output, self.T_test))
                out["test_acc"] = self._accuracy(test_output, self.data.y_test)
            else:
                out["test_loss"] = out["test_acc"] = math.nan
        return out

    @staticmethod
    def _accuracy(output: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(np.argmax(output, axis=1) == labels))

    def _link(self, output: np.ndarray) -> np.ndarray:
        """Class probabilities from the network output (the loss's link: softmax, sigmoid)."""
        link = self.model.loss_fn.link
        return output if link == "identity" else ACTIVATIONS[link].forward(np, output)

    # ---------------------------------------------------------------- frames
    def frame(self, full: bool = False) -> dict[str, Any]:
        """What the page draws (see docs/playground.md for the fields). ``full``: with every
        parameter's gradient and change in the last step (paused frames); the finite-
        difference table comes whenever :meth:`full_finite_differences` has made it."""
        m = self.model
        with np.errstate(all="ignore"):
            grid_outs = layer_outputs(m, self._grid["points"])
            train_outs = layer_outputs(m, self.X)
            probs = self._link(grid_outs[-1])
            saturation = self._saturation(train_outs)
            unit_outs = layer_outputs(m, self._grid["unit_points"])
        k = self.data.n_classes
        unit_maps = []
        for out in unit_outs[:-1]:
            maps = []
            for j in range(out.shape[1]):
                v = out[:, j]
                scale = float(np.max(np.abs(v))) or 1.0
                maps.append({"map": _b64(0.5 + 0.5 * v / scale), "scale": number(scale, "fixed")})
            unit_maps.append(maps)
        params = m.state_dict()
        layers = []
        for i in range(len(self.sizes) - 1):
            layers.append(
                {
                    "W": packed(params[f"layers.{i}.W"], "fixed"),
                    "b": packed(params[f"layers.{i}.b"], "fixed"),
                }
            )
        metrics = self.metrics(train_outs[-1])
        frame: dict[str, Any] = {
            "sizes": self.sizes,
            "classes": k,
            "class_names": self.data.class_names,
            "activation": self.setup["activation"],
            "status": "diverged" if self.diverged else "ready",
            "message": self.diverged or "",
            "epoch": self.epoch,
            "step": self.steps,
            "samples": self.samples,
            "progress": self._progress(),
            # while the setup's trail is replayed (in slices, a frame after each)
            "replay": (
                {"done": self.replayed, "total": self.replay_total} if self.pending else None
            ),
            "metrics": {
                key: NO_TEST_ROWS
                if key.startswith("test") and self.X_test is None
                else number(v, "fixed")
                for key, v in metrics.items()
            },  # fmt: skip
            "heat": {
                "size": GRID,
                "extent": self._grid["extent"],
                "probs": [_b64(probs[:, c]) for c in range(k)],
            },
            "units": unit_maps,
            "unit_grid": UNIT_GRID,
            "saturation": saturation,
            "layers": layers,
            # for drawing only (the texts beside the curves come from history_text)
            "history": self._history_bytes(),
            "history_text": self._history_text(),
            "last": self._last_summary(arrays=full),
            "inspect": self._inspect(),
            "n_parameters": m.n_parameters,
            "table_max_parameters": FULL_FD_MAX_PARAMETERS,  # (past it, the page says so)
            "setup": {k2: v for k2, v in self.setup.items() if k2 != "csv_text"},
            "labels": LABELS,
            "used_by": USED_BY,
            "setup_text": self.setup_text(),
        }
        return frame

    def _progress(self) -> str:
        where = f"epoch {self.epoch}, step {self.steps}, {self.samples} samples"
        if not self.pending:
            return where
        return (
            f"{where}: replaying the setup's steps, {self.replayed:,} of {self.replay_total:,} done"
        )

    def setup_text(self) -> dict[str, str]:
        """The setup's values as the form shows them (Python's text, not the page's)."""
        out = {}
        for key, value in self.setup.items():
            if key in ("csv_text", "trail"):
                continue
            out[key] = ",".join(str(v) for v in value) if key == "hidden" else str(value)
        return out

    def points(self) -> dict[str, Any]:
        """The data's rows for drawing: ``[x1, x2, class]`` per row, train and test."""

        def rows(X: np.ndarray | None, y: np.ndarray | None) -> list[list[Any]]:
            if X is None or y is None:
                return []
            return [[float(a), float(b), int(c)] for (a, b), c in zip(X, y, strict=True)]

        return {
            "train": rows(self.data.X_train, self.data.y_train),
            "test": rows(self.data.X_test, self.data.y_test),
        }

    def _history_bytes(self) -> str:
        """The history as float32 rows, base64 (a loss past float32's range is inf there,
        which the page's curves skip)."""
        with np.errstate(over="ignore"):
            rows = np.asarray(self.history, np.float32)
        return base64.b64encode(rows.tobytes()).decode()

    def _history_text(self) -> dict[str, str]:
        h = np.array(self.history)
        with np.errstate(all="ignore"):
            losses = h[:, 1:3][np.isfinite(h[:, 1:3])]
        top = float(losses.max()) if losses.size else 1.0
        return {"loss_max": number(top, "fixed")["s"], "steps": str(int(h[-1, 0]))}

    def _saturation(self, outs: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        """Per hidden unit: the mean of f'(a) over the training rows relative to its largest
        value (sigmoid: y (1 - y) <= 1/4; tanh: 1 - y^2 <= 1), and whether a ReLU never fires."""
        act = self.setup["activation"]
        out = []
        for y in outs[:-1]:
            units = []
            for j in range(y.shape[1]):
                col = y[:, j]
                info: dict[str, Any] = {"state": "ok", "why": ""}
                if act in ("sigmoid", "tanh"):
                    d = col * (1 - col) / 0.25 if act == "sigmoid" else 1 - col * col
                    mean = float(np.mean(d))
                    formula = "y (1 - y)" if act == "sigmoid" else "1 - y²"
                    info["slope"] = number(mean, "fixed")
                    if mean < 0.1:
                        info["state"] = "saturated"
                        info["why"] = (
                            f"saturated: {formula} averages {number(mean, 'fixed')['s']} of its "
                            "largest value over the training rows, so almost no gradient passes "
                            "through this unit (its weights barely learn)"
                        )
                elif act in ("relu",) and not np.any(col > 0):
                    info["state"] = "dead"
                    info["why"] = (
                        "dead: this ReLU outputs 0 for every training row, so its gradient "
                        "is 0 and it cannot learn again"
                    )
                units.append(info)
            out.append(units)
        return out

    def _last_summary(self, arrays: bool) -> dict[str, Any] | None:
        """The last step; with ``arrays``, every parameter's gradient and change (frames
        while training runs leave them out: a third of the frame)."""
        last = self.last
        if last is None:
            return None
        if not arrays:
            return {"step": last.number, "loss": number(last.loss, "fixed"),
                    "n_rows": int(len(last.rows))}  # fmt: skip
        return {
            "step": last.number,
            "loss": number(last.loss, "fixed"),
            "rows": [int(r) for r in last.rows[:50]],
            "n_rows": int(len(last.rows)),
            "grads": {k: packed(v, "sig") for k, v in last.grads.items()},
            "delta": {k: packed(v, "sig") for k, v in last.delta.items()},
        }

    # ---------------------------------------------------------------- inspection
    def select(self, point: Any, weight: Any) -> None:
        if point is not None:
            if not (isinstance(point, int) and not isinstance(point, bool)):
                raise SetupError(f"point must be a training row index; got {short_repr(point)}")
            if not 0 <= point < self.X.shape[0]:
                raise SetupError(
                    f"point {short_repr(point)} is outside the {self.X.shape[0]} training rows"
                )
        if weight is not None:
            ok = isinstance(weight, list) and len(weight) == 2 and isinstance(weight[0], str)
            ok = ok and isinstance(weight[1], list)
            params = self.model.params
            if not ok or weight[0] not in params:
                raise SetupError(
                    f"weight must be [name, index] of a parameter; got {short_repr(weight)}"
                )
            shape = tuple(params[weight[0]].shape)
            idx = tuple(weight[1])
            if len(idx) != len(shape) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < d
                for i, d in zip(idx, shape, strict=True)
            ):  # (true, false was taken: a boolean mask, and every later frame failed)
                raise SetupError(f"index {list(idx)} is outside {weight[0]}'s shape {shape}")
            self.selected_weight = (weight[0], idx)
        else:
            self.selected_weight = None
        self.selected_point = point

    def follow_as(self, old: TrainRun) -> None:
        """Follow what ``old`` followed, where this run has it: the weight if its layer has
        that index, the point if the training rows are the same."""
        if old.selected_weight is not None:
            name, idx = old.selected_weight
            try:
                self.select(None, [name, list(idx)])
            except SetupError:
                self.selected_weight = None
        same_rows = old.X.shape == self.X.shape and bool(np.all(old.X == self.X))
        if old.selected_point is not None and same_rows:
            self.selected_point = old.selected_point

    def _inspect(self) -> dict[str, Any]:
        out: dict[str, Any] = {"point": None, "weight": None, "table": None}
        i = self.selected_point
        last = self.last
        if i is not None:
            with np.errstate(all="ignore"):
                tr = trace_step(self.model, self.X[i : i + 1], self.T[i : i + 1])
            out["point"] = {
                "index": i,
                "x": numbers(self.X[i], "short"),
                "label": int(self.data.y_train[i]),
                "loss": number(tr.sample_loss[0], "fixed"),
                "prediction": numbers(tr.prediction[0], "fixed"),
                "layers": [
                    {
                        "a": numbers(lt.a[0], "fixed"),
                        "y": numbers(lt.y[0], "fixed"),
                        "dl_dy": numbers(lt.dl_dy[0], "sig"),
                        "delta": numbers(lt.delta[0], "sig"),
                    }
                    for lt in tr.layers
                ],
                "in_last_batch": bool(last is not None and i in set(last.rows.tolist())),
            }
        if self.selected_weight is not None:
            out["weight"] = self._weight_detail(*self.selected_weight)
        if last is not None and last.full_fd is not None:
            rows = []
            for name, g in last.grads.items():
                for idx in np.ndindex(g.shape):
                    rows.append(
                        {
                            "name": name,
                            "index": list(idx),
                            "before": number(last.before[name][idx], "fixed"),
                            "grad": number(g[idx], "sig"),
                            "fd": _fd_number(last, name, idx),
                            "delta": number(last.delta[name][idx], "sig"),
                        }
                    )
            out["table"] = {"step": last.number, "rows": rows}
        return out

    def _weight_detail(self, name: str, idx: tuple[int, ...]) -> dict[str, Any]:
        value = float(self.model.state_dict()[name][idx])
        detail: dict[str, Any] = {"name": name, "index": list(idx), "value": number(value, "fixed")}
        last = self.last
        if last is None:
            return detail
        clone = self._model_at(last.before, last.dropout_state)
        with np.errstate(all="ignore"):
            fd = finite_difference(clone, self.X[last.rows], self.T[last.rows], name, idx)
        g = float(last.grads[name][idx])
        before = float(last.before[name][idx])
        detail.update(
            step=last.number,
            before=number(before, "fixed"),
            grad=number(g, "sig"),
            fd=number(fd, "sig"),
            delta=number(float(last.delta[name][idx]), "sig"),
            state=self._optimizer_state(name, idx),
            update=self._update_lines(name, idx, g, before),
        )
        i = self.selected_point
        if i is not None:
            own, share = self._point_gradient(last, i, name, idx)
            detail["point_grad"] = number(own, "sig")
            detail["point_share"] = number(share, "sig")
            # (the point's trace beside it is without dropout: say which this one is)
            detail["point_masked"] = bool(self.model.config.dropout and i in last.rows)
        return detail

    def _point_gradient(
        self, last: LastStep, i: int, name: str, idx: tuple[int, ...]
    ) -> tuple[float, float]:
        """Point ``i``'s own ``dl/dp`` and its share of the last batch's gradient. With
        dropout, a point in the batch is taken under that step's masks: its share is the
        batch's gradient with every other row weighted 0 (the loss is ``(1/n) sum s_j l_j``
        and the masks are drawn as in the step), its own gradient that share per row of
        it; a point outside the batch, or a run without dropout, is traced without dropout.
        So the shares of a batch's points add up to its gradient."""
        rows = last.rows.tolist()
        count = rows.count(i)
        if self.model.config.dropout and count:
            X, T = self.X[last.rows], self.T[last.rows]
            only = (last.rows == i).astype(np.float64)
            with np.errstate(all="ignore"):
                _, g = self._model_at(last.before, last.dropout_state).gradients(
                    X, T, sample_weight=only
                )
            share = float(g[name][idx])
            return share * len(rows) / count, share
        clone = self._model_at(last.before, last.dropout_state)
        with np.errstate(all="ignore"):
            tr = trace_step(clone, self.X[i : i + 1], self.T[i : i + 1])
        own = float(tr.sample_gradients(0)[name][idx])
        return own, own * count / len(rows)

    def _optimizer_state(self, name: str, idx: tuple[int, ...]) -> dict[str, Any]:
        slots = self.last.opt_after["slots"] if self.last else {}
        out = {}
        for key, arr in slots.items():
            pname, slot = key.rsplit(".", 1)
            if pname == name:
                out[slot] = number(float(np.asarray(arr)[idx]), "sig")
        return out

    def _update_lines(self, name: str, idx: tuple[int, ...], g: float, before: float) -> list[str]:
        """The optimizer's update of this one weight, with the numbers filled in."""
        last = self.last
        assert last is not None
        opt = self.optimizer
        fx = lambda v: number(v, "sig")["s"]  # noqa: E731
        lam = opt.weight_decay
        prev = {
            k.rsplit(".", 1)[1]: float(np.asarray(v)[idx])
            for k, v in last.opt_before["slots"].items()
            if k.rsplit(".", 1)[0] == name
        }
        now = self._optimizer_state(name, idx)
        lines = []
        decays = lam > 0 and name.endswith(".W")
        ge = g
        if decays and not opt.decoupled_decay:
            ge = g + lam * before
            lines.append(f"g = ∂L/∂p + λ p = {fx(g)} + ({fx(lam)})({fx(before)}) = {fx(ge)}")
        else:
            lines.append(f"g = ∂L/∂p = {fx(g)}")
        after = before + float(last.delta[name][idx])
        kind = opt.name
        eta = fx(last.lr)
        if kind == "sgd":
            lines.append(f"p ← p - η g = {fx(before)} - ({eta})({fx(ge)}) = {fx(after)}")
        elif kind in ("momentum", "nesterov"):
            mu = fx(opt.momentum)
            v_now = now["v"]["s"]
            lines.append(f"v ← μ v + g = ({mu})({fx(prev.get('v', 0.0))}) + {fx(ge)} = {v_now}")
            if kind == "momentum":
                lines.append(f"p ← p - η v = {fx(before)} - ({eta})({v_now}) = {fx(after)}")
            else:
                lines.append(f"p ← p - η (g + μ v) = {fx(before)} - ({eta})({fx(ge)} + ({mu})"
                             f"({now['v']['s']})) = {fx(after)}")  # fmt: skip
        elif kind in ("adam", "adamw"):
            b1, b2, t = opt.beta1, opt.beta2, last.opt_after["t"]
            lines.append(f"m ← β1 m + (1 - β1) g = ({fx(b1)})({fx(prev.get('m', 0.0))}) + "
                         f"({fx(1 - b1)})({fx(ge)}) = {now['m']['s']}")  # fmt: skip
            lines.append(f"v ← β2 v + (1 - β2) g² = ({fx(b2)})({fx(prev.get('v', 0.0))}) + "
                         f"({fx(1 - b2)})({fx(ge)})² = {now['v']['s']}")  # fmt: skip
            m_hat = now["m"]["v"] / (1 - b1**t) if now["m"]["v"] is not None else math.nan
            v_hat = now["v"]["v"] / (1 - b2**t) if now["v"]["v"] is not None else math.nan
            lines.append(f"m̂ = m / (1 - β1^{t}) = {fx(m_hat)},  v̂ = v / (1 - β2^{t}) = {fx(v_hat)}")
            # AdamW's decay first, as it does it, on a line of its own: each line then adds
            # up as printed (the update line substituted the p from before the decay)
            p = before
            if decays and opt.decoupled_decay:
                p = before - last.lr * lam * before
                lines.append(f"p ← p - η λ p = {fx(before)} - ({eta})({fx(lam)})"
                             f"({fx(before)}) = {fx(p)}")  # fmt: skip
            lines.append(f"p ← p - η m̂ / (√v̂ + ε) = {fx(p)} - ({eta})({fx(m_hat)}) / "
                         f"(√{fx(v_hat)} + {fx(opt.eps)}) = {fx(after)}")  # fmt: skip
        elif kind == "rmsprop":
            rho = fx(opt.rho)
            lines.append(f"v ← ρ v + (1 - ρ) g² = ({rho})({fx(prev.get('v', 0.0))}) + "
                         f"({fx(1 - opt.rho)})({fx(ge)})² = {now['v']['s']}")  # fmt: skip
            lines.append(f"p ← p - η g / (√v + ε) = {fx(before)} - ({eta})({fx(ge)}) / "
                         f"(√{now['v']['s']} + {fx(opt.eps)}) = {fx(after)}")  # fmt: skip
        lines.append(f"Δp = {fx(after - before)}")
        return lines

    # ---------------------------------------------------------------- exports
    def model_bytes(self) -> bytes:
        """The current model as the project's model file (``backprop.io.save_model``'s
        bytes, made in memory: through a temporary file, a full temporary folder failed
        the download with an internal error)."""
        return encode_safetensors(self.model.state_dict(), model_metadata(self.model))

    def step_numbers(self) -> dict[str, Any]:
        """The last step's numbers as plain JSON data (exact values; None where not finite)."""
        last = self.last
        if last is None:
            return {"step": 0, "parameters": []}
        self.full_finite_differences()
        rows = []
        slots = last.opt_after["slots"]
        for name, g in last.grads.items():
            for idx in np.ndindex(g.shape):
                row = {
                    "name": name,
                    "index": list(idx),
                    "before": _json_number(last.before[name][idx]),
                    "grad": _json_number(g[idx]),
                    "finite_difference": (
                        _json_number(last.full_fd[name][idx]) if last.full_fd is not None else None
                    ),
                    "delta": _json_number(last.delta[name][idx]),
                    "after": _json_number(last.before[name][idx] + last.delta[name][idx]),
                }
                for key, arr in slots.items():
                    pname, slot = key.rsplit(".", 1)
                    if pname == name:
                        row[f"optimizer_{slot}"] = _json_number(np.asarray(arr)[idx])
                rows.append(row)
        return {
            "step": last.number,
            "loss": _json_number(last.loss),
            "learning_rate": last.lr,
            "optimizer": self.optimizer.name,
            "batch_rows": [int(r) for r in last.rows],
            "parameters": rows,
        }

    def step_csv(self) -> str:
        data = self.step_numbers()
        rows = data["parameters"]
        if not rows:
            return "name,index,before,grad,finite_difference,delta,after\n"
        cols = list(rows[0])
        lines = [",".join(cols)]
        for r in rows:
            cells = []
            for c in cols:
                v = r[c]
                if c == "index":
                    cells.append(" ".join(str(i) for i in v))
                elif v is None:
                    cells.append("")
                else:
                    cells.append(repr(v) if isinstance(v, float) else str(v))
            lines.append(",".join(cells))
        return "\n".join(lines) + "\n"

    def initial_weights(self) -> dict[str, Any]:
        first = MLP.from_config(self.model.config, seed=self.setup["seed"])
        return {k: v.tolist() for k, v in first.state_dict().items()}

    def train_command(self) -> str:
        """The ``backprop train`` command with the same data, network and optimizer, each
        value quoted for a POSIX shell (a file 'my data.csv' was two arguments)."""
        return "backprop train " + " ".join(
            f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in self.train_config().items()
        )

    def train_config(self) -> dict[str, Any]:
        s = self.setup
        cfg: dict[str, Any] = {}
        if s["dataset"] == "csv":
            cfg["dataset"] = s["csv_name"] or "dropped.csv"
            cfg["target"] = s["csv_target"]
        else:
            cfg.update(dataset=s["dataset"], n_samples=s["n_samples"], noise=s["noise"])
        cfg.update(
            test_fraction=s["test_fraction"],
            layers=",".join(str(v) for v in self.sizes),
            activation=s["activation"],
            output_activation=LOSS_OUTPUT[s["loss"]],
            loss=s["loss"],
            init=s["init"],
            bias_init=self.model.config.bias_init,  # train's default for the data may differ
            dropout=s["dropout"],
            seed=s["seed"],
            optimizer=s["optimizer"],
            lr=s["lr"],
        )
        if s["init"] in SCALED_INITIALIZERS:  # (train refuses it for another initialiser:
            cfg["init_scale"] = s["init_scale"]  # the default setup's command failed)
        taken = OPTIMIZERS[s["optimizer"]].settings()
        cfg.update({k: s[k] for k in OPTIMIZER_FIELDS if k in taken})
        cfg.update(
            weight_decay=s["weight_decay"],
            batch_size=s["batch_size"],
            epochs=max(self.epoch, 1),
            validation_fraction=0.0,
            early_stopping=0,  # the playground trains every epoch it is asked for
        )
        return cfg

    def train_toml(self) -> str:
        lines = [
            "# backprop train --config this-file: the playground's data, network and optimizer",
            "# (the same setup, not the same bits: train orders its batches its own way)",
        ]
        for key, v in self.train_config().items():
            if key == "layers":
                lines.append(f"layers = [{v.replace(',', ', ')}]")
            elif isinstance(v, str):
                lines.append(f"{key} = {toml_string(v)}")
            else:
                lines.append(f"{key} = {v!r}")
        return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _file_holding(text: str, name: str) -> Iterator[str]:
    """The path of a temporary file holding ``text`` (the CSV reader reads files), removed
    after; a temporary folder that cannot hold it is a SetupError naming ``name`` (a full
    one was an internal error)."""
    try:
        tmp = tempfile.TemporaryDirectory()
    except OSError as e:
        raise SetupError(_no_room(name, e)) from None
    with tmp as folder:
        path = os.path.join(folder, "dropped.csv")
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise SetupError(_no_room(name, e)) from None
        yield path


def _no_room(name: str, e: OSError) -> str:
    return (
        f"the server cannot hold the dropped file {name} in its temporary folder "
        f"({e.strerror or e}); expected room for it there"
    )
