"""The training loop: mini-batches, seeded shuffles, validation, early stopping, callbacks.

:func:`fit` trains a model and returns its :class:`History`. Everything that training needs
to continue exactly where it stopped lives in one :class:`TrainState` (model, optimizer,
shuffle generator, epoch count, history, early-stopping record), which is what a callback
receives at each epoch's end and what a checkpoint saves.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import check_inputs, check_sample_weight, check_targets
from .initializers import as_generator
from .layers import batch_buffer
from .network import MLP
from .optimizers import Optimizer, get_optimizer

__all__ = [
    "History",
    "TrainState",
    "Callback",
    "EarlyStopping",
    "TrainingDiverged",
    "fit",
    "class_sample_weights",
    "is_classification",
]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the model holds the last good weights.

    Attributes: ``history`` (the epochs completed before), ``epoch`` (0-based).
    """

    def __init__(self, message: str, history: History, epoch: int) -> None:
        super().__init__(message)
        self.history = history
        self.epoch = epoch


@dataclass
class History:
    """One dict per epoch: ``epoch`` (1-based), ``loss``, ``accuracy`` (classifiers),
    ``val_loss`` and ``val_accuracy`` (with validation data), ``lr``, ``time`` (s)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str = ""
    best_epoch: int | None = None

    def __getitem__(self, key: str) -> list[float]:
        """The column ``key`` over epochs, e.g. ``history["val_loss"]``."""
        return [row[key] for row in self.epochs if key in row]

    def __len__(self) -> int:
        return len(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "stop_reason": self.stop_reason,
            "best_epoch": self.best_epoch,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(list(d["epochs"]), d.get("stop_reason", ""), d.get("best_epoch"))


@dataclass
class TrainState:
    """Everything a run needs to continue exactly: handed to callbacks, saved by checkpoints.

    ``epoch`` counts completed epochs; ``best_score``/``best_params`` are early stopping's
    record (lower is better).
    """

    model: MLP
    optimizer: Optimizer
    rng: np.random.Generator
    epoch: int = 0
    history: History = field(default_factory=History)
    best_score: float = math.inf
    best_params: dict[str, np.ndarray] | None = None
    stop: bool = False


class Callback:
    """Called by :func:`fit` at each epoch's end; return True (or set ``state.stop``) to stop."""

    def on_epoch_end(self, state: TrainState) -> bool | None:
        return None


CallbackLike = Callback | Callable[[TrainState], Any]


@dataclass
class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    :func:`fit` then restores the weights of the best epoch."""

    patience: int = 5
    monitor: str = "val_loss"
    min_delta: float = 0.0

    def on_epoch_end(self, state: TrainState) -> bool:
        row = state.history.epochs[-1]
        key = self.monitor if self.monitor in row else "loss"
        score = row[key]
        if score < state.best_score - self.min_delta:
            state.best_score = score
            state.best_params = state.model.state_dict()
            state.history.best_epoch = state.epoch
        elif (
            state.history.best_epoch is not None
            and state.epoch - state.history.best_epoch >= self.patience
        ):
            state.history.stop_reason = (
                f"early stopping: {key} did not improve for {self.patience} epochs "
                f"(best {state.best_score:.6g} at epoch {state.history.best_epoch})"
            )
            return True
        return False


def is_classification(T: np.ndarray, loss: str) -> bool:
    """Whether accuracy makes sense: a cross-entropy loss, or one-hot / 0-1 targets."""
    if loss in ("cross_entropy", "binary_cross_entropy"):
        return True
    if T.shape[1] == 1:
        return bool(np.isin(T, (0.0, 1.0)).all())
    return bool(np.isin(T, (0.0, 1.0)).all() and (T.sum(axis=1) == 1).all())


def class_sample_weights(T: np.ndarray, class_weight: dict[int, float] | str) -> np.ndarray:
    """Per-sample weights ``s_i = class_weight[class of row i]`` from one-hot (or 0/1) targets.

    ``"balanced"`` gives ``n_samples / (n_classes * count(class))``, as in scikit-learn.
    """
    labels = (T[:, 0] > 0.5).astype(np.intp) if T.shape[1] == 1 else np.argmax(T, axis=1)
    n_classes = max(T.shape[1], 2)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be a dict or 'balanced'; got {class_weight!r}")
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        table = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)
    else:
        bad = [k for k in class_weight if not (0 <= int(k) < n_classes)]
        if bad:
            raise ValueError(
                f"class_weight names classes {bad}; expected classes 0..{n_classes - 1}"
            )
        table = np.ones(n_classes)
        for k, v in class_weight.items():
            table[int(k)] = float(v)
    return table[labels]


def fit(
    model: MLP,
    X: Any,
    T: Any,
    *,
    optimizer: str | Optimizer = "sgd",
    lr: float | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    seed: int | np.random.Generator | None = 0,
    shuffle: bool = True,
    validation_data: tuple[Any, Any] | None = None,
    validation_fraction: float = 0.0,
    early_stopping: int | EarlyStopping | None = None,
    callbacks: Sequence[CallbackLike] = (),
    sample_weight: Any = None,
    class_weight: dict[int, float] | str | None = None,
    progress: bool = False,
    state: TrainState | None = None,
    distributed: Any = None,
    cuda_graph: bool | None = None,
    tf32: bool | None = None,
) -> History:
    """Train ``model`` on ``(X, T)`` by mini-batch gradient descent.

    Parameters
    ----------
    X : array (n_samples, n_inputs)
    T : array (n_samples, n_outputs), or 1-D integer labels (one-hot encoded)
    optimizer : name or Optimizer
        A name (``"sgd"``, ``"adam"``...) is built with ``lr`` if given.
    epochs : int
        Total epochs; a resumed ``state`` continues up to this number.
    batch_size : int
        Rows per step; the last batch of an epoch may be smaller.
    seed : int or Generator
        Drives the per-epoch shuffles and the validation split.
    validation_data : (X_val, T_val), optional
    validation_fraction : float
        Hold out this fraction of (X, T), chosen by the seeded shuffle, when no
        ``validation_data`` is given.
    early_stopping : int (patience) or EarlyStopping, optional
        Monitors ``val_loss`` (``loss`` without validation) and restores the best weights.
    callbacks : sequence of Callback or callables ``f(state)``
        Called at each epoch's end; returning True stops training.
    sample_weight : array (n_samples,), optional;  class_weight : dict or "balanced"
        Multiply each row's loss (and so its gradient) by ``s_i``; see :mod:`backprop.losses`.
    progress : bool
        Show a progress bar (rich) with epoch, loss, accuracy and time left.
    state : TrainState, optional
        Continue a run (from a checkpoint); ``model``/``optimizer`` are taken from it.
    distributed : mpi4py communicator, backprop.distributed.World, False or None
        Data-parallel training over MPI (:mod:`backprop.distributed`). None: automatic,
        under ``mpirun`` with more than one rank, and for inputs memory-mapped from a
        ``.npy`` file. False: always this single-process loop.
    cuda_graph : bool or None
        Capture one whole full-batch step in a CUDA graph and replay it
        (:mod:`backprop.cuda_graph`; torch backend on CUDA). None: wherever that is exact
        (not for Adam/AdamW or dropout). True: required (a ``ValueError`` says why not).
    tf32 : bool or None
        TF32 matrix products on CUDA (torch backend); None leaves PyTorch's setting.

    Returns
    -------
    History

    Raises
    ------
    TrainingDiverged
        When an epoch's loss is NaN or inf; the model is left with the weights it had at
        the start of that epoch (the last good ones).
    """
    check_fit_arguments(epochs, batch_size, validation_fraction)
    if distributed is not False:
        from .distributed import fit_data_parallel, wants_data_parallel

        if wants_data_parallel(distributed, X):
            return fit_data_parallel(
                model, X, T, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size,
                seed=seed, shuffle=shuffle, validation_data=validation_data,
                validation_fraction=validation_fraction, early_stopping=early_stopping,
                callbacks=callbacks, sample_weight=sample_weight, class_weight=class_weight,
                progress=progress, state=state, distributed=distributed,
            )  # fmt: skip

    Xh = check_inputs(X, model.n_inputs)
    Th = check_targets(T, Xh.shape[0], model.n_outputs, dtype=model.dtype)
    sw = combined_sample_weights(Th, sample_weight, class_weight)
    classify = is_classification(Th, model.config.loss)
    state = state if state is not None else new_state(model, optimizer, lr, seed)
    model, opt = state.model, state.optimizer

    if validation_data is None and validation_fraction > 0:
        # The split is drawn from its own generator seeded from `seed`, so that a resumed
        # run (whose state.rng has moved on) holds out the same rows.
        perm = as_generator(_split_seed(seed)).permutation(Xh.shape[0])
        n_val = max(1, int(round(validation_fraction * Xh.shape[0])))
        val_idx, tr_idx = perm[:n_val], perm[n_val:]
        validation_data = (Xh[val_idx], Th[val_idx])
        Xh, Th = Xh[tr_idx], Th[tr_idx]
        sw = None if sw is None else sw[tr_idx]
    val = None
    if validation_data is not None:
        Xv = check_inputs(validation_data[0], model.n_inputs, "X_val")
        Tv = check_targets(validation_data[1], Xv.shape[0], model.n_outputs, "T_val")
        val = (model.backend.asarray(Xv, model.dtype), model.backend.asarray(Tv, model.dtype))

    be = model.backend
    x_all = be.asarray(Xh, model.dtype)  # uploaded once: batches are gathered on the device
    t_all = be.asarray(Th, model.dtype)
    # each row's target class, once per fit (accuracy compares predictions with it each
    # epoch), in the smallest integer type that holds it: 1 byte a row instead of 8 at MNIST
    t_classes = _class_indices(model.xp, t_all) if classify else None
    w_all = None if sw is None else be.asarray(sw, model.dtype)
    n = Xh.shape[0]
    from .cuda_graph import StepGraph, set_tf32, use_cuda_graph

    graph = None
    if use_cuda_graph(cuda_graph, model, opt):  # torch on CUDA only
        graph = StepGraph(model, opt, x_all, t_all, w_all, batch_size, strict=bool(cuda_graph))
    restore_tf32 = set_tf32(tf32, be)

    orders = EpochOrders(state, n, shuffle)

    def ahead() -> None:
        # on a device the host waits while an epoch's queued steps run: it draws the next
        # epoch's order meanwhile (and a CUDA graph starts uploading it)
        orders.draw_ahead()
        if graph is not None and orders.ahead_order is not None:
            graph.stage_order(orders.ahead_order)

    def run_epoch(order: np.ndarray) -> dict[str, float]:
        return _run_epoch(
            model, opt, x_all, t_all, w_all, order, batch_size, t_classes, bar, graph,
            None if be.name == "numpy" else ahead,
        )  # fmt: skip

    def evaluate() -> dict[str, float]:
        return {} if val is None else _evaluate(model, val[0], val[1], classify, prefix="val_")

    bar = _ProgressBar(epochs, n, batch_size, enabled=progress)
    try:
        return train_epochs(
            state, epochs, n, shuffle, run_epoch, evaluate, bar,
            epoch_callbacks(callbacks, early_stopping), early_stopping is not None,
            orders=orders,
        )  # fmt: skip
    finally:
        restore_tf32()


# ------------------------------------------------------------ shared by fit and MPI's fit
def check_fit_arguments(epochs: Any, batch_size: Any, validation_fraction: Any) -> None:
    """One clear error for a bad ``epochs``, ``batch_size`` or ``validation_fraction``."""
    if not (isinstance(epochs, int) and epochs >= 0):
        raise ValueError(f"epochs must be a non-negative integer; got {epochs!r}")
    if not (isinstance(batch_size, int | np.integer) and batch_size >= 1):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1); got {validation_fraction!r}")


def combined_sample_weights(
    Th: np.ndarray, sample_weight: Any, class_weight: dict[int, float] | str | None
) -> np.ndarray | None:
    """``s_i`` = sample weight x class weight of row i (None when neither is given)."""
    sw = check_sample_weight(sample_weight, Th.shape[0])
    if class_weight is not None:
        cw = class_sample_weights(Th, class_weight)
        sw = cw if sw is None else sw * cw
    return sw


def new_state(model: MLP, optimizer: str | Optimizer, lr: float | None, seed: Any) -> TrainState:
    """A fresh run's state: the optimizer (built from its name with ``lr``) and the shuffles'
    generator from ``seed``."""
    opt = get_optimizer(optimizer, **({} if lr is None else {"lr": lr}))
    return TrainState(model=model, optimizer=opt, rng=as_generator(seed))


def epoch_callbacks(
    callbacks: Sequence[CallbackLike], early_stopping: int | EarlyStopping | None
) -> list[CallbackLike]:
    """The callbacks to call at each epoch's end, early stopping first (so that a
    Checkpoint sees this epoch's early-stopping record)."""
    cbs: list[CallbackLike] = list(callbacks)
    if early_stopping is not None:
        es = (
            early_stopping
            if isinstance(early_stopping, EarlyStopping)
            else EarlyStopping(int(early_stopping))
        )
        cbs.insert(0, es)
    return cbs


def train_epochs(
    state: TrainState,
    epochs: int,
    n: int,
    shuffle: bool,
    run_epoch: Callable[[np.ndarray], dict[str, float]],
    evaluate: Callable[[], dict[str, float]],
    bar: _ProgressBar,
    callbacks: Sequence[CallbackLike],
    restore_best: bool,
    agree: Callable[[bool], bool] = bool,
    orders: EpochOrders | None = None,
) -> History:
    """The epoch loop, once for every way of running a step.

    Each epoch: draw the order of the ``n`` training rows from ``state.rng``; ``run_epoch``
    (one pass, returning the mean loss and accuracy); stop with the last good weights if the
    loss is NaN or inf; ``evaluate`` (validation metrics); append the history row; call the
    callbacks. ``agree`` turns this process's stop decision into everyone's (MPI ranks stop
    together). Afterwards, early stopping's best weights are restored if ``restore_best``.
    ``orders`` draws the epochs' orders (one made here by default; ``fit`` passes its own
    so that an epoch on a GPU can draw the next epoch's order while the device computes).
    """
    model, opt = state.model, state.optimizer
    if state.epoch < epochs and not state.stop:
        state.history.stop_reason = ""  # a resumed run says why *it* stopped
    snapshot = None
    orders = orders if orders is not None else EpochOrders(state, n, shuffle)
    try:
        while state.epoch < epochs and not state.stop:
            opt.epoch = state.epoch
            start = time.perf_counter()
            # the last good weights, should this epoch diverge (an array reused each epoch)
            snapshot = _snapshot(model, snapshot)
            orders.ahead_wanted = state.epoch + 1 < epochs
            order = orders.next()
            # A diverging epoch overflows; that is reported below as TrainingDiverged with
            # the last good weights restored. NumPy's overflow warnings would otherwise
            # escape first (as exceptions under -W error) mid-epoch, leaving inf/NaN weights
            # in the model (tests/test_training.py, divergence tests).
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                row = run_epoch(order)
            if not math.isfinite(row["loss"]):
                _restore(model, snapshot)
                state.history.stop_reason = (
                    f"diverged: the loss became {row['loss']} in epoch {state.epoch + 1}"
                )
                raise TrainingDiverged(
                    f"training diverged: the loss became {row['loss']} in epoch {state.epoch + 1}; "
                    f"the weights from the end of epoch {state.epoch} were kept "
                    "(try a smaller learning rate)",
                    state.history,
                    state.epoch,
                )
            row.update(evaluate())
            row["lr"] = opt.lr
            row["time"] = time.perf_counter() - start
            state.epoch += 1
            row = {"epoch": state.epoch, **row}
            state.history.epochs.append(row)
            bar.epoch_done(row)
            for cb in callbacks:
                fn = cb.on_epoch_end if isinstance(cb, Callback) else cb
                if fn(state):
                    state.stop = True
            state.stop = agree(state.stop)
            if state.stop and not state.history.stop_reason:
                state.history.stop_reason = f"stopped by a callback after epoch {state.epoch}"
    finally:
        bar.close()
    if state.best_params is not None and restore_best:
        model.load_state_dict(state.best_params)
    if not state.history.stop_reason:
        state.history.stop_reason = f"completed {state.epoch} epochs"
    return state.history


def epoch_order(rng: np.random.Generator, n: int, shuffle: bool) -> np.ndarray:
    """The epoch's order of the ``n`` rows: ``rng.permutation(n)``'s draws and permutation
    (NumPy makes it the same way: ``arange``, then ``shuffle``), held as int32 where ``n``
    allows: half of int64's 0.46 MiB at MNIST (benchmarks/memory.py)."""
    order = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    if shuffle:
        rng.shuffle(order)
    return order


class EpochOrders:
    """Each epoch's order of the rows, drawn from ``state.rng`` by :func:`epoch_order`.

    :meth:`draw_ahead` draws the next epoch's order early, from a copy of the generator:
    on a GPU the host is idle while the device runs an epoch's queued steps, and drawing a
    permutation takes milliseconds at 10^5-10^6 rows (``scripts/gpu_check.py``, batch 8192).
    :meth:`next` uses that order only if ``state.rng`` is still in the state it was drawn
    from, and then moves ``state.rng`` on exactly as drawing it now would have: the orders,
    the generator's state after each epoch (what a checkpoint saves) and so every bit of
    training are the same either way.
    """

    def __init__(self, state: TrainState, n: int, shuffle: bool) -> None:
        self.state, self.n, self.shuffle = state, n, shuffle
        self.ahead_wanted = False  # set per epoch: whether another epoch follows this one
        self._ahead: tuple[dict[str, Any], np.ndarray, dict[str, Any]] | None = None

    def draw_ahead(self) -> None:
        """Draw the next epoch's order now (if another epoch follows), without moving
        ``state.rng``."""
        if not self.ahead_wanted or self._ahead is not None:
            return
        rng = copy.deepcopy(self.state.rng)
        before = rng.bit_generator.state
        order = epoch_order(rng, self.n, self.shuffle)
        self._ahead = (before, order, rng.bit_generator.state)

    @property
    def ahead_order(self) -> np.ndarray | None:
        """The order :meth:`draw_ahead` drew, which :meth:`next` will give if it still can."""
        return None if self._ahead is None else self._ahead[1]

    def next(self) -> np.ndarray:
        """This epoch's order; ``state.rng`` moves on by one epoch's draws."""
        ahead, self._ahead = self._ahead, None
        rng = self.state.rng
        if ahead is not None and _same_state(rng.bit_generator.state, ahead[0]):
            rng.bit_generator.state = ahead[2]
            return ahead[1]
        return epoch_order(rng, self.n, self.shuffle)


def _same_state(a: Any, b: Any) -> bool:
    """Equality of two bit-generator states (nested dicts of ints, strings and arrays)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return type(a) is type(b) and a == b


def _snapshot(model: MLP, into: Any) -> Any:
    """A copy of the parameters: of the flat vector, on the model's device, into ``into``
    when given (no device-to-host copy per epoch); host arrays without a flat vector."""
    flat = model.flat
    if flat is None:
        return model.state_dict()
    return model.backend.copy(flat.params, out=into)


def _restore(model: MLP, snapshot: Any) -> None:
    """Put the parameters of a :func:`_snapshot` back."""
    if isinstance(snapshot, dict):
        model.load_state_dict(snapshot)
    else:
        model.flat.params[...] = snapshot


def _split_seed(seed: Any) -> int:
    if isinstance(seed, np.random.Generator):
        return int(np.random.default_rng(seed.bit_generator.seed_seq.entropy).integers(2**63))
    return int(np.random.default_rng([0x5EED, 0 if seed is None else int(seed)]).integers(2**63))


def _run_epoch(
    model, opt, x_all, t_all, w_all, order, batch_size, t_classes, bar, graph=None, ahead=None
) -> dict[str, float]:
    """One pass over the data in the order given; returns the mean loss (and accuracy).

    ``t_classes`` holds each row's target class (for accuracy), or None for regression;
    with it, ``order`` is overwritten by the predicted classes as the epoch goes.

    Each batch is gathered from the (uploaded-once) data into a buffer reused across steps,
    so an epoch costs no copy of the data set and no per-step allocation (docs/performance.md).
    ``graph`` (a :class:`backprop.cuda_graph.StepGraph`) replays the full batches it can.
    ``ahead`` is called once every step is queued, before the first result is read back
    (:meth:`EpochOrders.draw_ahead`).
    """
    be, xp = model.backend, model.xp
    n = order.shape[0]
    n_steps = -(-n // batch_size)
    one_output, logits = model.n_outputs == 1, model.loss_fn.from_logits
    classify = t_classes is not None
    if graph is not None:  # the graph's own arrays, which its replays write into
        idx_all, step_losses = graph.begin_epoch(
            order, (lambda y: _predicted_class(xp, y, logits)) if classify else None
        )
    else:
        # uploaded as drawn (int32 where n allows: half the bytes), widened on the device
        idx_all = order if be.name == "numpy" else xp.astype(be.asarray(order), xp.int64)
        # each step's mean loss, summed (weighted by batch size) once at the end: one store
        # per step instead of arithmetic on a scalar, and no device-to-host copy on a GPU
        step_losses = be.zeros((n_steps,), model.dtype)
    params, flat = model.params, model.flat
    buffers: dict[int, tuple[Any, Any]] = {}  # the batch's inputs and targets, by size

    def allocate(nb: int) -> tuple[Any, Any]:
        return be.empty((nb, x_all.shape[1]), x_all.dtype), be.empty(
            (nb, t_all.shape[1]), t_all.dtype
        )

    # Predicted classes of every row, written batch by batch over the batch's own indices
    # (an index is dead once its batch is gathered), compared once at the end with the
    # labels taken in the same order now: no second n-long array (60,000 int32 = 0.23 MiB
    # at MNIST, benchmarks/memory.py).
    labels = xp.take(t_classes, idx_all, axis=0) if classify else None
    predicted = idx_all
    # bound once: at Nielsen's batch 10 a step is ~50 us, and each attribute lookup counts
    take, forward_backward, step = be.take_rows, model.forward_backward, opt.step
    # plain SGD takes gradients pre-multiplied by eta (one subtraction per step instead of
    # a multiply and a subtraction over every parameter; the lr is constant within an epoch)
    scale = opt.gradient_scale()
    scaled = scale != 1.0
    argmax_rows = be.argmax_rows
    for k, lo in enumerate(range(0, n, batch_size)):
        nb = min(batch_size, n - lo)
        if graph is None or not graph.step(k):  # not replayed from a CUDA graph: the step
            idx = idx_all[lo : lo + nb]
            bufs = buffers.get(nb)
            if bufs is None:
                bufs = (
                    batch_buffer(
                        buffers, nb, allocate, lambda full, nb: (full[0][:nb], full[1][:nb])
                    )
                    if be.supports_out
                    else (None, None)
                )
            xb = take(x_all, idx, bufs[0])
            tb = take(t_all, idx, bufs[1])
            wb = None if w_all is None else take(w_all, idx)
            loss = forward_backward(xb, tb, wb, scale)
            step(params, None if flat is not None else model.grads, flat, scaled)
            step_losses[k] = loss
            if classify:
                y, rows = model.outputs, predicted[lo : lo + nb]
                if one_output:
                    predicted[lo : lo + nb] = _predicted_class(xp, y, logits)
                else:
                    classes = argmax_rows(y, rows)
                    if classes is not rows:  # backends without out=
                        predicted[lo : lo + nb] = classes
        if bar.enabled:
            bar.step(lo + nb, lambda k=k: float(xp.mean(step_losses[: k + 1])))
    if ahead is not None:
        ahead()
    sizes = _step_sizes(be, n, batch_size, model.dtype)
    sums = [xp.sum(step_losses * sizes)]  # the loss summed over rows
    if classify:  # and the rows classified right
        sums.append(xp.sum(xp.astype(predicted == labels, be.dtype(model.dtype))))
    sums = be.to_numpy(xp.stack(sums)).tolist()  # one read-back from the device
    row = {"loss": sums[0] / n}
    if classify:
        row["accuracy"] = sums[1] / n
    return row


@functools.lru_cache(maxsize=16)
def _step_sizes(be: Any, n: int, batch_size: int, dtype: str) -> Any:
    """The rows in each step of an epoch of ``n`` rows, on the backend: made once per shape
    (on a GPU an upload each epoch would wait for the device)."""
    return be.asarray(
        np.diff(np.minimum(np.arange(-(-n // batch_size) + 1) * batch_size, n)), dtype
    )


def _predicted_class(xp: Any, y: Any, logits: bool) -> Any:
    """The class of each row of outputs (or targets): argmax, or a threshold for one column."""
    if y.shape[1] == 1:
        return xp.astype(y[:, 0] > (0.0 if logits else 0.5), xp.int64)
    return xp.argmax(y, axis=1)


def _class_indices(xp: Any, t: Any) -> Any:
    """Each row's target class (``_predicted_class`` of targets) as int8, int16 or int32."""
    n_classes = max(2, t.shape[1])
    small = xp.int8 if n_classes <= 127 else xp.int16 if n_classes <= 32767 else xp.int32
    return xp.astype(_predicted_class(xp, t, False), small)


def _correct(xp: Any, y: Any, t: Any, logits: bool) -> Any:
    """How many rows the outputs ``y`` classify as the targets ``t`` do."""
    same = _predicted_class(xp, y, logits) == _predicted_class(xp, t, False)
    return xp.sum(xp.astype(same, y.dtype))


def _evaluate(model: MLP, x: Any, t: Any, classify: bool, prefix: str = "") -> dict[str, float]:
    y = model._forward(x, False)
    out = {f"{prefix}loss": float(model.loss_fn.value(model.xp, y, t))}
    if classify:
        out[f"{prefix}accuracy"] = (
            float(_correct(model.xp, y, t, model.loss_fn.from_logits)) / x.shape[0]
        )
    return out


class _ProgressBar:
    """A rich progress bar over all epochs' samples; a no-op when disabled.

    It redraws at most ~20 times per epoch so that it costs nothing measurable per step.
    """

    def __init__(self, epochs: int, n: int, batch_size: int, enabled: bool) -> None:
        self.enabled = enabled and epochs > 0
        self.n = n
        self.every = max(1, (n // batch_size) // 20)
        self._count = 0
        self._done = 0  # rows of the completed epochs
        self._desc = ""
        if not self.enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("epoch 1", total=epochs * n, metrics="")
        self.epochs = epochs

    def step(self, seen: int, running_loss: Callable[[], float]) -> None:
        """After a step, ``seen`` rows into the epoch; every ``self.every`` steps, redraw with
        ``running_loss()`` (the only value read back from the device)."""
        if not self.enabled:
            return
        self._count += 1
        if self._count % self.every == 0:
            self.progress.update(
                self.task, completed=self._done + seen, metrics=f"loss {running_loss():.4f}"
            )

    def epoch_done(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        self._done += self.n
        parts = [f"loss {row['loss']:.4f}"]
        for key in ("accuracy", "val_loss", "val_accuracy"):
            if key in row:
                parts.append(f"{key.replace('_', ' ')} {row[key]:.4f}")
        self.progress.update(
            self.task,
            completed=self._done,
            description=f"epoch {row['epoch']}/{self.epochs}",
            metrics="  ".join(parts),
        )

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
