"""Data-parallel training over MPI, and training inputs read from memory-mapped ``.npy`` files.

Synchronous data-parallel SGD, as in Horovod or PyTorch DDP, on the engine every cluster
runs (MPI, through the optional ``mpi4py``)::

    mpirun -n 4 backprop train ...            # or any script that calls fit()

1. Rank 0's initial parameters are broadcast, so every rank starts from the same weights.
2. Every rank draws the same seeded permutation; each global batch of ``B`` rows is split
   into ``K`` contiguous slices (sizes differ by at most one) and rank ``r`` takes slice ``r``.
3. Each rank computes the gradient of the batch loss on its ``n_r`` rows. The engine's loss
   is a per-batch mean, so the local gradient is multiplied by ``n_r / B``; then

       sum_r (n_r / B) * (1/n_r) sum_{i in r} s_i dl_i/dtheta = (1/B) sum_i s_i dl_i/dtheta,

   the single-process gradient of the global batch. All gradients are packed into one
   contiguous buffer and summed by one all-reduce per step.
4. Every rank applies the same optimizer update to the same gradient, so parameters stay
   identical without further communication.

Only rank 0 prints the epoch lines (under a launcher there is no live bar);
:func:`is_main_process` tells a caller (the CLI, a
checkpoint callback) whether it is the process that writes files. Loss and accuracy are
summed across ranks at each epoch's end.

Inputs given as ``.npy`` files (a path, an :class:`NpyArray`, or ``np.load(path,
mmap_mode="r")``) are never loaded whole: each rank reads only its own rows of each batch
(in ascending order, for locality, then put back in the batch's order) into a batch
buffer, so resident memory is bounded by batch-sized buffers rather than by the size of
the file. Targets, sample weights and the permutation are ``n``-sized and held in memory.

Failure: every collective is non-blocking and polled against a deadline (``timeout``,
``BACKPROP_MPI_TIMEOUT``, default 300 s). Under Open MPI's ``mpirun`` a dead rank makes
``mpirun`` stop the whole job at once; under launchers that keep survivors running, the
deadline turns a hang into :class:`RankFailure`.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import check_inputs, check_targets
from ..datasets.npy import NpyArray, open_npy
from ..initializers import as_generator, generator_state
from ..network import MLP
from ..optimizers import Optimizer
from .epochs import (
    check_fit_arguments,
    check_training_rows,
    combined_sample_weights,
    count_correct,
    epoch_callbacks,
    finite_outputs,
    new_state,
    reports_accuracy,
    split_seed,
    train_epochs,
)
from .mpi import (
    DEFAULT_TIMEOUT,
    RankFailure,
    RanksDisagree,
    World,
    get_world,
    is_main_process,
    launched_rank,
    launched_world_size,
    split_batch,
)
from .progress import ProgressBar
from .state import TrainingDiverged

__all__ = [
    "World",
    "RankFailure",
    "RanksDisagree",
    "NpyArray",
    "open_npy",
    "get_world",
    "is_main_process",
    "launched_rank",
    "launched_world_size",
    "fit_data_parallel",
    "same_on_every_rank",
    "split_batch",
    "wants_data_parallel",
    "DEFAULT_TIMEOUT",
    "EVAL_CHUNK_ROWS",
]

EVAL_CHUNK_ROWS = 4096


def _as_npy(x: Any) -> NpyArray | None:
    """``x`` as a memory-mapped source when it names or maps a ``.npy`` file, else None."""
    if isinstance(x, NpyArray):
        return x
    if isinstance(x, np.memmap) and x.filename is not None and x.flags.c_contiguous:
        return NpyArray(x)
    if _is_npy_path(x):
        return NpyArray(x)
    return None


def same_on_every_rank(values: np.ndarray, world: World | None = None) -> np.ndarray:
    """``values`` (a NumPy array) as rank 0 has them, on every rank of ``world`` (default: a
    multi-rank launch, ``mpirun``); as they are in one process. For what each rank draws at
    random but all must share: the seeds of an unseeded scikit-learn estimator, or of an
    unseeded fit's shuffle (every rank trains one model, on one order of the rows)."""
    world = get_world(None) if world is None else world
    if world is None or world.size == 1:
        return values
    return world.broadcast(np.ascontiguousarray(values), "shared random seeds")


def _is_npy_path(x: Any) -> bool:
    return isinstance(x, str | os.PathLike) and os.fspath(x).lower().endswith(".npy")


def wants_data_parallel(distributed: Any, X: Any, *others: Any) -> bool:
    """Whether :func:`backprop.training.fit` should hand over to :func:`fit_data_parallel`:
    under MPI with several ranks, when a communicator is given, for memory-mapped inputs
    ``X``, or for ``others`` (targets, weights, validation arrays) given as ``.npy`` files
    (a memory-mapped one is an array the single-process loop reads as it is)."""
    if distributed is False:
        return False
    if distributed is not None or launched_world_size() > 1:
        return True
    return isinstance(X, NpyArray | np.memmap | str | os.PathLike) or any(
        isinstance(a, NpyArray | str | os.PathLike) for a in others
    )


class _Inputs:
    """The training inputs: an in-memory array uploaded once, or a memory-mapped file."""

    def __init__(self, X: Any, model: MLP, world: World, name: str = "X") -> None:
        self.model = model
        self.npy = _as_npy(X)
        if self.npy is None:
            checked = check_inputs(X, model.n_inputs, name, model.dtype)
            self.all = model.backend.asarray(checked, model.dtype)
            self.n = int(self.all.shape[0])
            # what the ranks compare (_arguments): ranks given different files trained on
            # a mix of them without a word (a file's rows are not all read, and not compared)
            self.checksum = _checksum(checked, model.dtype)
        else:
            self.n = _check_npy_inputs(self.npy, model.n_inputs, world, name)
            self.checksum = -1.0

    def rows(self, idx: np.ndarray) -> Any:
        """Rows ``idx`` on the model's backend and dtype, shape ``(len(idx), n_inputs)``, in
        the order given (a batch's order: the row a dropout mask's row meets is the one the
        single-process loop gives it, so one rank trains to the same bits as ``fit`` does
        on the same array in memory)."""
        be = self.model.backend
        if self.npy is None:
            return self.model.xp.take(
                self.all, idx if be.name == "numpy" else be.asarray(idx), axis=0
            )
        order = np.argsort(idx, kind="stable")  # read ascending: the file front to back
        block = self.npy.rows(idx[order])
        back = np.empty_like(order)
        back[order] = np.arange(order.size)
        return be.asarray(block[back], self.model.dtype)


def _check_npy_inputs(src: NpyArray, n_inputs: int, world: World, name: str) -> int:
    """Check a mapped input file's shape, and that its values are finite, chunk by chunk.

    Each rank checks a contiguous share of the rows; every rank raises the same error.
    """
    if src.ndim != 2 or src.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} ({src.path}) has shape {src.shape} and dtype {src.dtype}; "
            f"expected 2-D numbers (n_samples, {n_inputs})"
        )
    n, cols = src.shape
    if n == 0:
        raise ValueError(f"{name} ({src.path}) has 0 rows; expected at least one sample")
    if cols != n_inputs:
        raise ValueError(f"{name} ({src.path}) has {cols} columns but the model expects {n_inputs}")
    lo, hi = split_batch(n, world.size, world.rank)
    first_bad = -1
    if src.dtype.kind == "f":
        for start in range(lo, hi, EVAL_CHUNK_ROWS):
            chunk = src.rows(np.arange(start, min(start + EVAL_CHUNK_ROWS, hi)))
            bad = np.flatnonzero(~np.isfinite(chunk).all(axis=1))
            if bad.size:
                first_bad = start + int(bad[0])
                break
    # found[r] = 1 + the first bad row of rank r's share (0: none); shares are in row order
    found = np.zeros(world.size)
    found[world.rank] = first_bad + 1
    world.allreduce_sum(found, "input check")
    bad_rows = found[found > 0]
    if bad_rows.size:
        raise ValueError(
            f"{name} ({src.path}) contains NaN or inf in row {int(bad_rows[0]) - 1}; "
            "expected finite numbers"
        )
    return n


# --------------------------------------------------------------------------- training
class _GradientBuffer:
    """All parameter gradients packed into one contiguous host buffer, one view per name."""

    def __init__(self, model: MLP) -> None:
        params = model.params
        total = sum(math.prod(p.shape) for p in params.values())
        self.flat = np.zeros(total, dtype=model.dtype)
        self.views: dict[str, np.ndarray] = {}
        offset = 0
        for name, p in params.items():
            size = math.prod(p.shape)
            self.views[name] = self.flat[offset : offset + size].reshape(tuple(p.shape))
            offset += size

    def pack(self, grads: dict[str, Any], scale: float, backend: Any) -> None:
        """``flat = scale * grads`` (weighting this rank's share of the batch)."""
        for name, view in self.views.items():
            g = grads[name]
            np.multiply(g if backend.name == "numpy" else backend.to_numpy(g), scale, out=view)


def _broadcast_parameters(model: MLP, world: World) -> None:
    """Every rank takes rank 0's parameters."""
    if world.size == 1:
        return
    buf = _GradientBuffer(model)
    state = model.state_dict()
    for name, view in buf.views.items():
        view[...] = state[name]
    world.broadcast(buf.flat, "broadcast of the initial parameters")
    model.load_state_dict({name: np.array(view) for name, view in buf.views.items()})


def _decorrelate_dropout(model: MLP, world: World) -> None:
    """Give rank r the dropout stream of rank 0 jumped r times (independent masks)."""
    if world.rank > 0 and model.config.dropout > 0:
        bg = model.dropout_rng.bit_generator
        if hasattr(bg, "jumped"):
            bg.state = bg.jumped(world.rank).state


def fit_data_parallel(
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
    early_stopping: Any = None,
    callbacks: Sequence[Any] = (),
    sample_weight: Any = None,
    class_weight: dict[int, float] | str | None = None,
    progress: bool = False,
    state: Any = None,
    distributed: Any = None,
) -> Any:
    """:func:`backprop.training.fit`, data-parallel over MPI ranks and streaming ``.npy`` inputs.

    It is what ``fit`` calls under ``mpirun`` or for memory-mapped inputs. It takes the same
    arguments as :func:`backprop.training.fit` except ``cuda_graph`` and ``tf32``, which
    apply to the single-process loop only, and gives, up to rounding, the same parameters
    as single-process training with the same global ``batch_size`` and ``seed``.

    Parameters
    ----------
    X : array (n_samples, n_inputs), ``.npy`` path, numpy.memmap or NpyArray
        File-backed inputs are memory-mapped; each rank reads only its rows of each batch.
    T : array (n_samples, n_outputs) or 1-D integer labels (may be a ``.npy`` path)
        Held in memory on every rank.
    distributed : World, mpi4py communicator or None
        None uses ``MPI.COMM_WORLD`` under ``mpirun`` with more than one rank, otherwise a
        single process.

    Returns
    -------
    History
        The same on every rank: losses and accuracies are summed across ranks.

    Raises
    ------
    RankFailure
        When another rank stops answering for ``World.timeout`` seconds.
    TrainingDiverged
        As :func:`backprop.training.fit`, on every rank at once.
    """
    check_fit_arguments(
        epochs, batch_size, validation_fraction,
        validation_data=validation_data, shuffle=shuffle, state=state,
    )  # fmt: skip
    world = get_world(distributed) or World(None)
    with world.stop_all_on_error(agreed=(TrainingDiverged,)):
        if state is not None:
            model = state.model

        inputs = _Inputs(X, model, world)
        n_all = inputs.n
        Th = check_targets(
            _load_small(T), n_all, model.n_outputs, dtype=model.dtype, loss=model.config.loss
        )
        sw = combined_sample_weights(
            Th, _load_small(sample_weight), class_weight, model.config.loss, model.dtype
        )
        classify = reports_accuracy(Th, model.config.loss, model.preprocessing)
        resumed = state is not None
        state = state if state is not None else new_state(model, optimizer, lr, seed)
        model, opt = state.model, state.optimizer
        if seed is None and not resumed and world.size > 1:
            # an unseeded shuffle drew another order on each rank, while each rank takes its
            # slice of every batch of one shared order: rows trained twice, others never
            entropy = np.array([np.random.SeedSequence().entropy % 2**63], dtype=np.int64)
            state.rng = np.random.default_rng(int(same_on_every_rank(entropy, world)[0]))

        be = model.backend
        train_rows = np.arange(n_all)
        val = None
        if validation_data is None and validation_fraction > 0:
            # the same held-out rows as fit(): drawn from a generator seeded from `seed`
            perm = as_generator(split_seed(seed)).permutation(n_all)
            n_val = max(1, int(round(validation_fraction * n_all)))
            val = (inputs, be.asarray(Th, model.dtype), perm[:n_val])
            train_rows = perm[n_val:]
            check_training_rows(train_rows.size, n_all, validation_fraction)
        elif validation_data is not None:
            v_in = _Inputs(validation_data[0], model, world, "X_val")
            v_t = check_targets(
                _load_small(validation_data[1]), v_in.n, model.n_outputs, "T_val", model.dtype,
                model.config.loss,
            )  # fmt: skip
            val = (v_in, be.asarray(v_t, model.dtype), np.arange(v_in.n))

        t_all = be.asarray(Th, model.dtype)
        w_all = None if sw is None else be.asarray(sw, model.dtype)

        world.check_same(_arguments(state, inputs, Th, sw, val, batch_size, epochs, shuffle))
        _broadcast_parameters(model, world)
        _decorrelate_dropout(model, world)
        # NumPy all-reduces the model's flat gradient vector in place; others need a host copy
        grad_buf = None if model.flat is not None and be.name == "numpy" else _GradientBuffer(model)
        n = train_rows.shape[0]
        bar = ProgressBar(epochs, n, batch_size, enabled=progress and world.is_main)

        def run_epoch(order: np.ndarray) -> dict[str, float]:
            rows = train_rows[order]
            return _run_epoch(
                model, opt, inputs, t_all, w_all, rows, batch_size, classify, bar, world, grad_buf
            )

        def evaluate() -> dict[str, float]:
            return {} if val is None else _evaluate(model, *val, classify, world, prefix="val_")

        def probe() -> bool:  # the first batch's outputs finite: each rank reads its share
            share = train_rows[slice(*split_batch(min(batch_size, n), world.size, world.rank))]
            finite = finite_outputs(model, inputs.rows(np.sort(share))) if share.size else True
            return not agree(not finite)

        def agree(stop: bool) -> bool:
            # ranks stop together: a callback that stops on any rank stops all of them
            votes = world.allreduce_sum(np.array([1.0 if stop else 0.0]), "stop decision")
            return bool(votes[0] > 0)

        return train_epochs(
            state, epochs, n, shuffle, run_epoch, evaluate, bar,
            epoch_callbacks(callbacks, early_stopping), early_stopping is not None, probe,
            agree,
        )  # fmt: skip


def _crc(data: bytes | str) -> float:
    return float(zlib.crc32(data.encode() if isinstance(data, str) else data))


def _checksum(X: np.ndarray, dtype: str, rows: int = 4096) -> float:
    """CRC-32 of ``X``'s values in ``dtype`` (native byte order, C order), a block of
    ``rows`` at a time: the same numbers given as float32 or float64, or big-endian, train
    the same and agree; a copy of the whole of X (``tobytes``) doubled its memory."""
    crc = 0
    for lo in range(0, X.shape[0], rows):
        crc = zlib.crc32(np.ascontiguousarray(X[lo : lo + rows], dtype=dtype), crc)
    return float(crc)


def _arguments(
    state: Any,
    inputs: _Inputs,
    T: np.ndarray,
    w: Any,
    val: Any,
    batch_size: int,
    epochs: int,
    shuffle: bool,
) -> dict[str, float]:
    """What every rank must agree on, as numbers (:meth:`World.check_same`): the data's
    size, inputs and targets, the validation rows, the network, the optimizer, the shuffle
    generator's state (the seed) and the loop's settings. (Inputs in a file, possibly
    larger than memory, are compared by their shape alone: they are not all read.)"""
    opt = state.optimizer
    optimizer = (opt.name, opt.hyperparameters(), opt.schedule.to_dict(), opt.t)
    held_out = (-1.0, -1.0, -1.0)
    if val is not None:
        v_targets = state.model.backend.to_numpy(val[1])
        held_out = (float(len(val[2])), _crc(np.ascontiguousarray(v_targets).tobytes()),
                    val[0].checksum)  # fmt: skip
    return {
        "number of rows": float(inputs.n),
        "inputs": inputs.checksum,
        "targets": _crc(np.ascontiguousarray(T).tobytes()),
        "sample weights": -1.0 if w is None else _crc(np.ascontiguousarray(w).tobytes()),
        "validation rows": held_out[0],
        "validation targets": held_out[1],
        "validation inputs": held_out[2],
        "network": _crc(repr(sorted(state.model.config.to_dict().items()))),
        "optimizer": _crc(repr(optimizer)),
        "seed": _crc(json.dumps(generator_state(state.rng))),
        "epoch reached": float(state.epoch),
        "batch_size": float(batch_size),
        "epochs": float(epochs),
        "shuffle": float(shuffle),
    }


def _load_small(x: Any) -> Any:
    """Targets or weights given as a ``.npy`` path are read into memory (they are n-sized)."""
    if _is_npy_path(x):  # checked as the inputs are: a regular file, numbers, no lies
        with NpyArray(x) as array:
            return array.rows(np.arange(len(array)))
    if isinstance(x, NpyArray):
        return x.rows(np.arange(len(x)))
    return x


def _run_epoch(
    model, opt, inputs, t_all, w_all, rows, batch_size, classify, bar, world, grad_buf
) -> dict[str, float]:
    """One pass over ``rows`` (global row ids in batch order), this rank's share of each batch."""
    be, xp = model.backend, model.xp
    params, flat = model.params, model.flat
    # NumPy: the model's own flat gradient vector is the all-reduce buffer (no packing);
    # other backends go through a host buffer (grad_buf).
    host = flat.grads if grad_buf is None else grad_buf.flat
    scale = opt.gradient_scale()  # as in fit: plain SGD takes eta-scaled gradients
    scaled = scale != 1.0
    n = rows.shape[0]
    total_loss = 0.0
    correct = 0.0
    for lo in range(0, n, batch_size):
        batch = rows[lo : lo + batch_size]
        nb = batch.shape[0]
        a, b = split_batch(nb, world.size, world.rank)
        if b > a:
            idx = batch[a:b]
            xb = inputs.rows(idx)
            tb = xp.take(t_all, idx if be.name == "numpy" else be.asarray(idx), axis=0)
            wb = (
                None
                if w_all is None
                else xp.take(w_all, idx if be.name == "numpy" else be.asarray(idx), axis=0)
            )
            # the engine's loss is a mean over this rank's b - a rows: its gradient is
            # weighted by the rank's share of the batch, so the ranks' sum is the batch's
            share = scale if b - a == nb else scale * (b - a) / nb  # (one rank: the scale
            loss = model.forward_backward(xb, tb, wb, share)  # itself, 0.1*3/3 is not 0.1)
            if grad_buf is not None:
                grad_buf.pack(model.grads, 1.0, be)
            total_loss = total_loss + float(loss) * (b - a)
            if classify:
                correct = correct + float(
                    count_correct(xp, model.last_output, tb, model.loss_fn.from_logits)
                )
        else:
            host[...] = 0.0  # a batch smaller than the number of ranks
        world.allreduce_sum(host)
        if grad_buf is None:
            opt.step(params, None, flat, scaled)
        else:
            grads = {k: be.asarray(v, model.dtype) for k, v in grad_buf.views.items()}
            opt.step(params, grads, scaled=scaled, decays=model.decaying)
        bar.step(lo + nb, lambda t=total_loss, seen=lo + nb: t * world.size / seen)
    sums = world.allreduce_sum(np.array([total_loss, correct]), "metrics all-reduce")
    out = {"loss": float(sums[0]) / n}
    if classify:
        out["accuracy"] = float(sums[1]) / n
    return out


def _evaluate(model, inputs, t_all, rows, classify, world, prefix="") -> dict[str, float]:
    """Loss (and accuracy) on ``rows``, each rank evaluating a contiguous share in chunks."""
    be, xp = model.backend, model.xp
    lo, hi = split_batch(rows.shape[0], world.size, world.rank)
    sums = np.zeros(2)
    for start in range(lo, hi, EVAL_CHUNK_ROWS):
        idx = np.sort(rows[start : min(start + EVAL_CHUNK_ROWS, hi)])
        x = inputs.rows(idx)
        tb = xp.take(t_all, idx if be.name == "numpy" else be.asarray(idx), axis=0)
        y = model.forward_batch(x, False)
        sums[0] += float(model.loss_fn.value(xp, y, tb)) * idx.shape[0]
        if classify:
            sums[1] += float(count_correct(xp, y, tb, model.loss_fn.from_logits))
    world.allreduce_sum(sums, "validation all-reduce")
    out = {f"{prefix}loss": float(sums[0]) / rows.shape[0]}
    if classify:
        out[f"{prefix}accuracy"] = float(sums[1]) / rows.shape[0]
    return out
