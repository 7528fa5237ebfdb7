"""The epoch logic every runner shares: the epoch loop, the order of the rows, the
arguments' checks, sample weights, and counting correct predictions.

The single-process runner (:mod:`.single_process`) and the MPI runner (:mod:`.distributed`)
differ only in how they run one epoch and evaluate; both hand those to :func:`train_epochs`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._validation import check_sample_weight, is_count, is_finite_number, is_flag, short_repr
from ..activations import sigmoid
from ..formatting import plural
from ..initializers import as_generator
from ..network import MLP
from ..optimizers import Optimizer, get_optimizer
from .progress import ProgressBar
from .state import Callback, CallbackLike, EarlyStopping, History, TrainingDiverged, TrainState

__all__ = [
    "check_fit_arguments",
    "check_training_rows",
    "class_indices",
    "class_sample_weights",
    "combined_sample_weights",
    "count_correct",
    "epoch_callbacks",
    "epoch_order",
    "EpochOrders",
    "is_classification",
    "new_state",
    "predicted_class",
    "reports_accuracy",
    "restore_best_weights",
    "split_seed",
    "train_epochs",
]


def is_classification(T: np.ndarray, loss: str) -> bool:
    """Whether the targets are classes: a cross-entropy loss, or one-hot / 0-1 targets."""
    if loss in ("cross_entropy", "binary_cross_entropy"):
        return True
    if T.shape[1] == 1:
        return bool(np.isin(T, (0.0, 1.0)).all())
    return bool(np.isin(T, (0.0, 1.0)).all() and (T.sum(axis=1) == 1).all())


def reports_accuracy(T: np.ndarray, loss: str, preprocessing: Any = None) -> bool:
    """Whether an epoch's accuracy means something: class targets with one class a row.
    Multi-label rows (several 1s under binary cross-entropy) have no one class: the argmax
    of the outputs was compared with the first label (0.63 where exact-match accuracy, the
    scikit-learn wrapper's, was 0.73), so they get no accuracy. A model whose preprocessing
    says it is a regression (a table's target, no classes) gets none either, whatever its
    targets look like (a constant target, centred to 0s, or 0/1 values under --task
    regression had accuracy columns and plot)."""
    if preprocessing is not None and preprocessing.target is not None:
        if preprocessing.classes is None:
            return False
    if not is_classification(T, loss):
        return False
    return loss != "binary_cross_entropy" or T.shape[1] == 1 or bool((T.sum(axis=1) == 1).all())


def _class_index(key: Any, n_classes: int) -> int | None:
    """A class_weight key as a class index (an int, or its digits as text: a checkpoint's
    JSON keys), or None when it names no class."""
    try:
        k = int(key)
    except (TypeError, ValueError):
        return None
    if isinstance(key, bool) or (isinstance(key, float) and key != k):
        return None
    return k if 0 <= k < n_classes else None


def class_sample_weights(T: np.ndarray, class_weight: dict[int, float] | str) -> np.ndarray:
    """Per-sample weights ``s_i = class_weight[class of row i]`` from one-hot (or 0/1) targets
    (or class probabilities: the most likely class); a ValueError for multi-label rows.

    ``"balanced"`` gives ``n_samples / (n_classes * count(class))``, as in scikit-learn
    (``n_classes`` counts the classes that occur in ``T``).
    """
    if T.shape[1] > 1:  # one class a row: a multi-label row has several, or none
        several = np.count_nonzero(T > 0.5, axis=1) > 1
        bad = np.flatnonzero(several | ~(T > 0).any(axis=1))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"class_weight weights each row by its class, but row {i} of the targets "
                f"has {'no class' if not several[i] else 'several classes'} "
                f"({short_repr(T[i].tolist())}: multi-label targets); weight rows with "
                "sample_weight instead"
            )
    labels = (T[:, 0] > 0.5).astype(np.intp) if T.shape[1] == 1 else np.argmax(T, axis=1)
    n_classes = max(T.shape[1], 2)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be a dict or 'balanced'; got {class_weight!r}")
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        present = int(np.count_nonzero(counts))  # scikit-learn counts the classes in y
        table = np.where(counts > 0, len(labels) / (present * np.maximum(counts, 1)), 0.0)
    else:
        bad = [k for k in class_weight if _class_index(k, n_classes) is None]
        if bad:
            raise ValueError(
                f"class_weight names classes {short_repr(bad)}; expected classes 0..{n_classes - 1}"
            )
        table = np.ones(n_classes)
        for k, v in class_weight.items():
            if not (is_finite_number(v) and v >= 0):
                raise ValueError(
                    f"class_weight[{k!r}] is {short_repr(v)}; expected a finite number >= 0"
                )
            table[_class_index(k, n_classes)] = float(v)
    return table[labels]


def check_fit_arguments(
    epochs: Any,
    batch_size: Any,
    validation_fraction: Any,
    *,
    validation_data: Any = None,
    shuffle: Any = True,
    state: Any = None,
) -> None:
    """One clear error for a bad ``epochs``, ``batch_size``, ``validation_fraction`` (counts
    up to :data:`~backprop._validation.MAX_COUNT`, 2**53, what a checkpoint holds),
    ``validation_data`` (a pair, not with a fraction), ``shuffle`` or ``state``."""
    if not is_count(epochs, 0):
        raise ValueError(
            f"epochs must be a non-negative integer (at most 2**53); got {short_repr(epochs)}"
        )
    if not is_count(batch_size, 1):
        raise ValueError(
            f"batch_size must be a positive integer (at most 2**53); got {short_repr(batch_size)}"
        )
    if not (is_finite_number(validation_fraction) and 0.0 <= validation_fraction < 1.0):
        raise ValueError(
            f"validation_fraction must be in [0, 1); got {short_repr(validation_fraction)}"
        )
    if validation_data is not None:
        if not (isinstance(validation_data, tuple | list) and len(validation_data) == 2):
            got = (
                f"a {type(validation_data).__name__} of {len(validation_data)}"
                if isinstance(validation_data, tuple | list)
                else f"a {type(validation_data).__name__}"
            )
            raise ValueError(  # a third element (weights, as Keras takes) would be ignored
                f"validation_data must be a pair (X_val, T_val); got {got}"
            )
        if validation_fraction:
            raise ValueError(
                f"validation_fraction={short_repr(validation_fraction)} given with "
                "validation_data: one names the validation rows; give one or the other"
            )
    if not is_flag(shuffle):  # "no" is truthy: it would shuffle
        raise ValueError(f"shuffle must be True or False; got {short_repr(shuffle)}")
    if state is not None and not isinstance(state, TrainState):
        raise TypeError(
            "state must be a TrainState (a checkpoint's, or a previous run's); got "
            f"{short_repr(state)}"
        )


def check_training_rows(n_train: int, n_all: int, validation_fraction: float) -> None:
    """Refuse a validation split that leaves no row to train on."""
    if n_train < 1:
        raise ValueError(
            f"validation_fraction={validation_fraction!r} of {n_all} rows leaves no training "
            "rows; use a smaller fraction or more data"
        )


def combined_sample_weights(
    Th: np.ndarray,
    sample_weight: Any,
    class_weight: dict[int, float] | str | None,
    loss: str,
    dtype: str = "float64",
) -> np.ndarray | None:
    """``s_i`` = sample weight x class weight of row i (None when neither is given);
    ``dtype`` is the model's, whose range the weights, and their products, must fit (a
    ValueError otherwise: 1e30 x 1e10 in float32 was inf, and training said it diverged)."""
    sw = check_sample_weight(sample_weight, Th.shape[0], dtype=dtype)
    if class_weight is not None:
        if not is_classification(Th, loss):  # a regression target has no classes to weigh
            raise ValueError(
                "class_weight applies to class targets (a cross-entropy loss, one-hot rows or "
                f"a 0/1 column); these targets hold other values under loss {loss!r}"
            )
        cw = class_sample_weights(Th, class_weight)
        if sw is not None:
            with np.errstate(over="ignore"):  # (said below, in the words of the options)
                sw = sw * cw
            limit = float(np.finfo(np.dtype(dtype)).max)
            if not (np.isfinite(sw).all() and np.abs(sw).max() <= limit):
                raise ValueError(
                    f"sample_weight times class_weight exceeds {dtype}'s range (largest "
                    f"{limit:.3g}); scale the weights down (only their ratios matter)"
                )
        else:
            sw = cw
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
    if isinstance(callbacks, Callback) or callable(callbacks) or isinstance(callbacks, str):
        raise ValueError(f"callbacks must be a list of callbacks; got {short_repr(callbacks)}")
    cbs: list[CallbackLike] = list(callbacks)
    for cb in cbs:
        if not (isinstance(cb, Callback) or callable(cb)):
            raise ValueError(
                "each callback must be a Callback or a function of the training state; got "
                f"{short_repr(cb)}"
            )
    if early_stopping is not None:
        if not isinstance(early_stopping, EarlyStopping):
            if not is_count(early_stopping, 1):  # not 2.5 nor True, which int() took
                raise ValueError(
                    "early_stopping must be a patience (an integer from 1 to 2**53) or an "
                    f"EarlyStopping; got {short_repr(early_stopping)}"
                )
            early_stopping = EarlyStopping(early_stopping)
        cbs.insert(0, early_stopping)
    if sum(isinstance(cb, EarlyStopping) for cb in cbs) > 1:
        raise ValueError(  # they would share one record (best score, epoch and weights)
            "more than one EarlyStopping (early_stopping and callbacks together): a run "
            "keeps one early-stopping record; give one"
        )
    return cbs


def train_epochs(
    state: TrainState,
    epochs: int,
    n: int,
    shuffle: bool,
    run_epoch: Callable[[np.ndarray], dict[str, float]],
    evaluate: Callable[[], dict[str, float]],
    bar: ProgressBar,
    callbacks: Sequence[CallbackLike],
    restore_best: bool,
    probe: Callable[[], bool],
    agree: Callable[[bool], bool] = bool,
    orders: EpochOrders | None = None,
) -> History:
    """The epoch loop, once for every way of running a step.

    Each epoch: draw the order of the ``n`` training rows from ``state.rng``; ``run_epoch``
    (one pass, returning the mean loss and accuracy); stop with the last good weights if the
    loss, the weights, the optimizer's moments or (``probe``: whether they are all finite,
    see :func:`backprop.training.epochs.finite_outputs`) the outputs on a batch of training
    rows are NaN or inf; ``evaluate`` (validation metrics); append the history row; call the
    callbacks.
    ``agree`` turns this process's stop decision into everyone's (MPI ranks stop together).
    Afterwards, early stopping's best weights are restored if ``restore_best`` or an
    :class:`EarlyStopping` is among the callbacks (and it kept them).
    ``orders`` draws the epochs' orders (one made here by default; ``fit`` passes its own
    so that an epoch on a GPU can draw the next epoch's order while the device computes).
    """
    model, opt = state.model, state.optimizer
    if state.epoch < epochs and not state.stop:
        if not _finite_parameters(model):
            raise ValueError(
                "the model's weights hold NaN or inf before training (initial weights that "
                "overflow: a smaller init_scale?); there are no good weights to train from"
            )
        if not probe():  # (it said 'try a smaller learning rate')
            raise ValueError(
                "the model's outputs on the training rows are NaN or inf before training "
                "(initial weights too large for the data: a smaller init_scale?); there are "
                "no good weights to train from"
            )
    if state.epoch < epochs and not state.stop:
        state.history.stop_reason = ""  # a resumed run says why *it* stopped
        if state.last_params is not None:  # go on from the last epoch, not the restored best
            model.load_state_dict(state.last_params)
            state.last_params = None
    snapshot = opt_snapshot = None
    stops_early = any(isinstance(cb, EarlyStopping) for cb in callbacks)
    bar.may_stop_early = stops_early
    orders = orders if orders is not None else EpochOrders(state, n, shuffle)
    try:
        while state.epoch < epochs and not state.stop:
            opt.epoch = state.epoch
            bar.epoch_start(state.epoch + 1)
            start = time.perf_counter()
            # the last good weights, should this epoch diverge (an array reused each epoch)
            snapshot = _snapshot(model, snapshot)
            opt_snapshot = opt.snapshot(_device_copy(model.backend), opt_snapshot)
            orders.ahead_wanted = state.epoch + 1 < epochs
            order = orders.next()
            # A diverging epoch overflows; that is reported below as TrainingDiverged with
            # the last good weights restored. NumPy's overflow warnings would otherwise
            # escape first (as exceptions under -W error) mid-epoch, leaving inf/NaN weights
            # in the model (tests/test_training.py, divergence tests).
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                row = run_epoch(order)
                # the loss is measured before each step: a last step that overflows the
                # weights leaves the loss finite, so the weights are checked too
                what, hint = None, "try a smaller learning rate"
                if not math.isfinite(row["loss"]):  # (targets of 1e18 in float32 overflow
                    what = f"the loss became {row['loss']}"  # the first loss: no rate helps)
                    hint = "try a smaller learning rate, or scale the data"
                elif not _finite_parameters(model):
                    what = "the weights became NaN or inf"
                elif not probe():
                    # finite weights of 1e150 whose outputs are inf - inf: kept, the model
                    # predicted NaN for every row (the loss is measured before each step,
                    # so the epoch's last weights had not been through one)
                    what = "the outputs became NaN or inf"
                elif not _finite(model.xp, opt.state_arrays()):
                    # Adam's v of float32 gradients past 1.8e19: their weights stopped moving
                    # (m / sqrt(inf) = 0), and no checkpoint can hold it
                    dtype = model.config.dtype
                    what = (
                        f"the {opt.name} optimizer's moments became NaN or inf "
                        f"(past {dtype}'s range)"
                    )
                    hint = "scale the data" + (", or use float64" if dtype == "float32" else "")
            if what is not None:  # the epoch undone: its weights, and its steps' moments
                _restore(model, snapshot)  # (an inf v kept made every later fit diverge)
                opt.restore(opt_snapshot)
                kept = (  # (not "the initial weights": a second fit starts from trained ones)
                    f"the weights from the end of epoch {state.epoch}"
                    if state.epoch
                    else "the weights it started from"
                )
                state.history.stop_reason = f"diverged: {what} in epoch {state.epoch + 1}"
                raise TrainingDiverged(
                    f"training diverged: {what} in epoch {state.epoch + 1}; "
                    f"{kept} were kept ({hint})",
                    state.history,
                    state.epoch,
                    hint,
                )
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                row.update(evaluate())  # a validation loss that overflows is recorded as inf
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
    # early stopping's best weights (it keeps them only with restore_best_weights), whether
    # it came as fit's early_stopping or among the callbacks
    restored = (restore_best or stops_early) and restore_best_weights(state)
    end_of_epochs(state, restored)
    return state.history


def end_of_epochs(state: TrainState, restored: bool) -> None:
    """The stop reason of a run that used every epoch it was given (none set by early
    stopping, a callback or a divergence), saying whose model it ends with when early
    stopping's best weights were ``restored``: not the last epoch's."""
    if state.history.stop_reason:
        return
    n, best = state.epoch, state.history.best_epoch
    reason = f"completed {plural(n, 'epoch')}"
    if restored and best is not None and best != n:
        reason += f"; the model is epoch {best}'s, early stopping's best"
    state.history.stop_reason = reason


def restore_best_weights(state: TrainState) -> bool:
    """Early stopping's best weights (when it kept some) into the model, the weights the
    last epoch ended with kept in ``state.last_params``: a run given more epochs goes on
    from those, exactly as if it had never stopped. Whether there were some to restore."""
    if state.best_params is None:
        return False
    if state.last_params is None:  # (still set when this call trained no epoch)
        state.last_params = state.model.state_dict()
    state.model.load_state_dict(state.best_params)
    return True


def epoch_order(rng: np.random.Generator, n: int, shuffle: bool) -> np.ndarray:
    """The epoch's order of the ``n`` rows: ``rng.permutation(n)``'s draws and permutation
    (NumPy makes it the same way: ``arange``, then ``shuffle``), held as int32 where ``n``
    allows: half of int64's memory (benchmarks/memory.py)."""
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


def _device_copy(backend: Any) -> Callable[[Any, Any], Any]:
    """``copy(array, into)`` on ``backend``'s device, for the optimizer's snapshot: its
    moments may still be host arrays (an optimizer given ``load_state_dict`` without a
    backend, until its first step moves them; torch's copy of one failed)."""
    return lambda a, into: backend.copy(backend.asarray(a), out=into)


def finite_outputs(model: MLP, x: Any) -> bool:
    """Whether the model's outputs (no dropout) on the rows ``x`` are all finite."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _finite(model.xp, [model.forward_batch(x, False)])


def _finite_parameters(model: MLP) -> bool:
    """Whether every parameter is finite."""
    arrays = [model.flat.params] if model.flat is not None else list(model.params.values())
    return _finite(model.xp, arrays)


def _finite(xp: Any, arrays: list[Any]) -> bool:
    """Whether every entry of ``arrays`` is finite: a NaN or inf makes a sum NaN or inf, so
    one sum per array decides, and only a non-finite sum (or one that overflowed from huge
    finite entries) needs the entry-by-entry look."""
    with np.errstate(over="ignore", invalid="ignore"):
        for p in arrays:
            if not math.isfinite(float(xp.sum(p))) and not bool(xp.all(xp.isfinite(p))):
                return False
    return True


def _restore(model: MLP, snapshot: Any) -> None:
    """Put the parameters of a :func:`_snapshot` back."""
    if isinstance(snapshot, dict):
        model.load_state_dict(snapshot)
    else:
        model.flat.params[...] = snapshot


def split_seed(seed: Any) -> int:
    """The seed of the validation split's own generator, derived from ``fit``'s ``seed``, so
    that a resumed run (whose shuffle generator has moved on) holds out the same rows. A
    Generator counts as the integer it was seeded with: a checkpoint stores that integer, and
    the run it resumes must split the same way (``default_rng(3)`` and ``3`` are one seed)."""
    if isinstance(seed, np.random.Generator):
        seed = seed.bit_generator.seed_seq.entropy
    key = list(seed) if isinstance(seed, list | tuple) else [0 if seed is None else int(seed)]
    return int(np.random.default_rng([0x5EED, *key]).integers(2**63))


def predicted_class(xp: Any, y: Any, logits: bool) -> Any:
    """The class of each row of outputs (or targets): argmax, or for one column ``p > 0.5``
    with ``p = sigmoid(z)`` for logits, as :meth:`MLP.predict_classes` decides (``z > 0``
    differed where a logit just above 0 rounds to p = 0.5: 1e-8 in float32)."""
    if y.shape[1] == 1:
        p = sigmoid(xp, y[:, 0]) if logits else y[:, 0]
        return xp.astype(p > 0.5, xp.int64)
    return xp.argmax(y, axis=1)


def class_indices(xp: Any, t: Any) -> Any:
    """Each row's target class (:func:`predicted_class` of targets) as int8, int16 or int32."""
    n_classes = max(2, t.shape[1])
    small = xp.int8 if n_classes <= 127 else xp.int16 if n_classes <= 32767 else xp.int32
    return xp.astype(predicted_class(xp, t, False), small)


def count_correct(xp: Any, y: Any, t: Any, logits: bool) -> Any:
    """How many rows the outputs ``y`` classify as the targets ``t`` do."""
    same = predicted_class(xp, y, logits) == predicted_class(xp, t, False)
    return xp.sum(xp.astype(same, xp.int64))  # (counted in float32, 2**24 + 3 rows made 2**24 + 4)
