"""The single-process runner: one process, the data uploaded once to the model's backend,
each full batch replayed from a CUDA graph where that is exact (:mod:`.cuda_graph`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._validation import check_inputs, check_targets
from ..initializers import as_generator
from ..layers import batch_buffer
from ..network import MLP
from ..optimizers import Optimizer
from . import cuda_graph as cuda_graph_module
from .epochs import (
    EpochOrders,
    check_training_rows,
    class_indices,
    combined_sample_weights,
    count_correct,
    epoch_callbacks,
    finite_outputs,
    new_state,
    predicted_class,
    reports_accuracy,
    split_seed,
    train_epochs,
)
from .progress import ProgressBar
from .state import CallbackLike, EarlyStopping, History, TrainState

__all__ = ["fit_single_process", "run_epoch", "evaluate"]


def fit_single_process(
    model: MLP,
    X: Any,
    T: Any,
    *,
    optimizer: str | Optimizer,
    lr: float | None,
    epochs: int,
    batch_size: int,
    seed: int | np.random.Generator | None,
    shuffle: bool,
    validation_data: tuple[Any, Any] | None,
    validation_fraction: float,
    early_stopping: int | EarlyStopping | None,
    callbacks: Sequence[CallbackLike],
    sample_weight: Any,
    class_weight: dict[int, float] | str | None,
    progress: bool,
    state: TrainState | None,
    cuda_graph: bool | None,
    tf32: bool | None,
) -> History:
    """:func:`backprop.training.fit` in this process (its arguments, already checked)."""
    Xh = check_inputs(X, model.n_inputs, dtype=model.dtype)
    Th = check_targets(T, Xh.shape[0], model.n_outputs, dtype=model.dtype, loss=model.config.loss)
    sw = combined_sample_weights(Th, sample_weight, class_weight, model.config.loss, model.dtype)
    classify = reports_accuracy(Th, model.config.loss, model.preprocessing)
    state = state if state is not None else new_state(model, optimizer, lr, seed)
    model, opt = state.model, state.optimizer

    if validation_data is None and validation_fraction > 0:
        # The split is drawn from its own generator seeded from `seed`, so that a resumed
        # run (whose state.rng has moved on) holds out the same rows.
        perm = as_generator(split_seed(seed)).permutation(Xh.shape[0])
        n_val = max(1, int(round(validation_fraction * Xh.shape[0])))
        val_idx, tr_idx = perm[:n_val], perm[n_val:]
        check_training_rows(tr_idx.size, Xh.shape[0], validation_fraction)
        validation_data = (Xh[val_idx], Th[val_idx])
        Xh, Th = Xh[tr_idx], Th[tr_idx]
        sw = None if sw is None else sw[tr_idx]
    val = None
    if validation_data is not None:
        Xv = check_inputs(validation_data[0], model.n_inputs, "X_val", model.dtype)
        Tv = check_targets(
            validation_data[1], Xv.shape[0], model.n_outputs, "T_val", model.dtype,
            model.config.loss,
        )  # fmt: skip
        val = (model.backend.asarray(Xv, model.dtype), model.backend.asarray(Tv, model.dtype))

    be = model.backend
    x_all = be.asarray(Xh, model.dtype)  # uploaded once: batches are gathered on the device
    t_all = be.asarray(Th, model.dtype)
    # each row's target class, once per fit (accuracy compares predictions with it each
    # epoch), in the smallest integer type that holds it: 1 byte a row instead of 8 at MNIST
    t_classes = class_indices(model.xp, t_all) if classify else None
    w_all = None if sw is None else be.asarray(sw, model.dtype)
    n = Xh.shape[0]
    graph = None
    if cuda_graph_module.use_cuda_graph(cuda_graph, model, opt):  # torch on CUDA only
        graph = cuda_graph_module.StepGraph(
            model, opt, x_all, t_all, w_all, batch_size, strict=bool(cuda_graph)
        )
    restore_tf32 = cuda_graph_module.set_tf32(tf32, be)

    orders = EpochOrders(state, n, shuffle)

    def ahead() -> None:
        # on a device the host waits while an epoch's queued steps run: it draws the next
        # epoch's order meanwhile (and a CUDA graph starts uploading it)
        orders.draw_ahead()
        if graph is not None and orders.ahead_order is not None:
            graph.stage_order(orders.ahead_order)

    def one_epoch(order: np.ndarray) -> dict[str, float]:
        return run_epoch(
            model, opt, x_all, t_all, w_all, order, batch_size, t_classes, bar, graph,
            None if be.name == "numpy" else ahead,
        )  # fmt: skip

    def validate() -> dict[str, float]:
        return {} if val is None else evaluate(model, val[0], val[1], classify, prefix="val_")

    def probe() -> bool:  # outputs an epoch's weights must keep finite: the first batch's
        return finite_outputs(model, x_all[:batch_size, ...])

    bar = ProgressBar(epochs, n, batch_size, enabled=progress)
    try:
        return train_epochs(
            state, epochs, n, shuffle, one_epoch, validate, bar,
            epoch_callbacks(callbacks, early_stopping), early_stopping is not None, probe,
            orders=orders,
        )  # fmt: skip
    finally:
        restore_tf32()


def run_epoch(
    model: MLP,
    opt: Optimizer,
    x_all: Any,
    t_all: Any,
    w_all: Any,
    order: np.ndarray,
    batch_size: int,
    t_classes: Any,
    bar: ProgressBar,
    graph: cuda_graph_module.StepGraph | None = None,
    ahead: Callable[[], None] | None = None,
) -> dict[str, float]:
    """One pass over the data in the order given; returns the mean loss (and accuracy).

    ``t_classes`` holds each row's target class (for accuracy), or None for regression;
    with it, ``order`` is overwritten by the predicted classes as the epoch goes.

    Each batch is gathered from the (uploaded-once) data into a buffer reused across steps,
    so an epoch costs no copy of the data set and no per-step allocation (benchmarks/bench.py).
    ``graph`` (a :class:`backprop.training.cuda_graph.StepGraph`) replays the full batches it can.
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
            order, (lambda y: predicted_class(xp, y, logits)) if classify else None
        )
    else:
        # uploaded as drawn (int32 where n allows: half the bytes), widened on the device
        idx_all = order if be.name == "numpy" else xp.astype(be.asarray(order), xp.int64)
        # each step's mean loss, summed (weighted by batch size) once at the end: one store
        # per step instead of arithmetic on a scalar, and no device-to-host copy on a GPU
        step_losses = be.zeros((n_steps,), model.dtype)
    params, flat, decaying = model.params, model.flat, model.decaying
    buffers: dict[int, tuple[Any, Any]] = {}  # the batch's inputs and targets, by size

    def allocate(nb: int) -> tuple[Any, Any]:
        return be.empty((nb, x_all.shape[1]), x_all.dtype), be.empty(
            (nb, t_all.shape[1]), t_all.dtype
        )

    # Predicted classes of every row, written batch by batch over the batch's own indices
    # (an index is dead once its batch is gathered), compared once at the end with the
    # labels taken in the same order now: no second n-long array (benchmarks/memory.py).
    labels = xp.take(t_classes, idx_all, axis=0) if classify else None
    predicted = idx_all
    # bound once: at Nielsen's batch 10 a step is short enough that each attribute lookup
    # counts (benchmarks/bench.py, config nielsen-b10)
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
            step(params, None if flat is not None else model.grads, flat, scaled, decaying)
            step_losses[k] = loss
            if classify:
                y, rows = model.last_output, predicted[lo : lo + nb]
                if one_output:
                    predicted[lo : lo + nb] = predicted_class(xp, y, logits)
                else:
                    classes = argmax_rows(y, rows)
                    if classes is not rows:  # backends without out=
                        predicted[lo : lo + nb] = classes
        if bar.enabled:
            # the mean over the rows seen, as the epoch's line weighs it (the epoch's last
            # step may hold fewer rows than the others)
            bar.step(lo + nb, lambda k=k, nb=nb, seen=lo + nb: float(
                batch_size * xp.sum(step_losses[:k]) + nb * step_losses[k]
            ) / seen)  # fmt: skip
    if ahead is not None:
        ahead()
    sizes = _step_sizes(be, n, batch_size)
    # the loss summed over rows, and the rows classified right, in float64: a count is exact
    # to 2**53 rows (float32 miscounted past 2**24), and a float32 model's epoch loss was
    # 1e-7 from the same run's on .npy inputs (whose runner sums in Python floats)
    f64 = be.dtype("float64")
    sums = [xp.sum(xp.astype(step_losses, f64) * sizes)]
    if classify:
        sums.append(xp.sum(xp.astype(predicted == labels, f64)))
    sums = be.to_numpy(xp.stack(sums)).tolist()  # one read-back from the device
    row = {"loss": sums[0] / n}
    if classify:
        row["accuracy"] = sums[1] / n
    return row


@functools.lru_cache(maxsize=16)
def _step_sizes(be: Any, n: int, batch_size: int) -> Any:
    """The rows in each step of an epoch of ``n`` rows, in float64 on the backend: made once
    per shape (on a GPU an upload each epoch would wait for the device)."""
    steps = np.arange(-(-n // batch_size) + 1) * batch_size
    return be.asarray(np.diff(np.minimum(steps, n)), "float64")


def evaluate(model: MLP, x: Any, t: Any, classify: bool, prefix: str = "") -> dict[str, float]:
    y = model.forward_batch(x, False)
    out = {f"{prefix}loss": float(model.loss_fn.value(model.xp, y, t))}
    if classify:
        out[f"{prefix}accuracy"] = (
            float(count_correct(model.xp, y, t, model.loss_fn.from_logits)) / x.shape[0]
        )
    return out
