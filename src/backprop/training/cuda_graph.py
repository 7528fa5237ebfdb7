"""One whole training step captured in a CUDA graph and replayed (torch backend on CUDA).

At small batches a GPU training step is bound by the CPU time it takes to launch its ~30
kernels, not by arithmetic. ``torch.cuda.graph`` records the kernels of one step (batch
gather, forward, backward, optimizer update) once; a replay launches them all with one
call. :func:`backprop.training.fit` uses a :class:`StepGraph` when ``cuda_graph`` is on.

The rules, all for exactness (a replayed step gives the same bits as the uncaptured one):

* A graph replays the kernels it recorded with the same arguments: every number Python
  computed while it was captured is frozen into it. The learning rate is such a number,
  so the graph is keyed by it and captured again when it changes (a schedule changes it
  at most once per epoch). Adam's and AdamW's bias corrections ``1 / (1 - beta^t)`` change
  every step: they are computed from the step count held in a 0-d array on the device
  (:meth:`backprop.optimizers.Optimizer.step_count_array`), which the graph advances.
* Dropout draws its masks on the host every step: a model with dropout is never captured.
* Only full batches (``batch_size`` rows) replay; the epoch's last, smaller batch, and any
  other shape, runs the ordinary uncaptured step.
* The first ``warmup`` full batches run uncaptured. They create every buffer, and the
  optimizer's slot vectors, outside the graph, so the graph reads and writes the same
  arrays the uncaptured step does.
* Python side effects of the captured step (the optimizer's step count ``t``) happen once,
  during capture; they are undone there and redone once per replay.
* The graph is checked at each epoch's start: if the learning rate, the parameter vector
  or the optimizer's slot arrays are no longer the ones it recorded (a callback loaded a
  checkpoint, say), it is dropped and captured afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..network import MLP
from ..optimizers import SGD, Adam, AdamW, Momentum, Nesterov, Optimizer, RMSprop

__all__ = [
    "CAPTURABLE_OPTIMIZERS",
    "GraphStats",
    "StepGraph",
    "TorchCudaGraph",
    "capture_blocker",
    "use_cuda_graph",
    "set_tf32",
]

# Optimizers whose update reads no per-step Python number but the learning rate (Adam's
# step count is a device array); exact types: a subclass may add one.
CAPTURABLE_OPTIMIZERS: tuple[type[Optimizer], ...] = (SGD, Momentum, Nesterov, RMSprop, Adam, AdamW)


def capture_blocker(model: MLP, optimizer: Optimizer) -> str | None:
    """Why a training step of ``model`` with ``optimizer`` cannot be captured exactly, or None.

    Returns
    -------
    str or None
        A sentence naming the obstacle (the wrong backend or device, an optimizer with
        per-step constants, dropout), or None when the step can be captured.
    """
    be = model.backend
    if be.name != "torch":
        return f"CUDA graphs need the torch backend; this model uses {be.name!r}"
    device_type = getattr(be.device, "type", str(be.device))
    if device_type != "cuda":
        return f"CUDA graphs need a CUDA device; this model is on {str(be.device)!r}"
    if model.flat is None:
        return "CUDA graphs need the parameters in one flat vector (model.flat is None)"
    if type(optimizer) not in CAPTURABLE_OPTIMIZERS:
        names = ", ".join(c.name for c in CAPTURABLE_OPTIMIZERS)
        return (
            f"optimizer {optimizer.name!r} is not one whose update is known to read no "
            f"per-step Python number (a graph would freeze it); capturable: {names}"
        )
    if model.config.dropout > 0:
        return "dropout draws its masks on the host every step, which a graph cannot replay"
    return None


def use_cuda_graph(requested: bool | None, model: MLP, optimizer: Optimizer) -> bool:
    """Resolve ``fit``'s ``cuda_graph`` option.

    ``None`` (the default) means "where it is exact": True exactly when
    :func:`capture_blocker` finds no obstacle. ``True`` asks for it and raises a
    ``ValueError`` naming the obstacle when there is one. ``False`` turns it off.
    """
    if requested is not None and not isinstance(requested, bool):
        raise ValueError(f"cuda_graph must be True, False or None; got {requested!r}")
    reason = capture_blocker(model, optimizer)
    if requested is None:
        return reason is None
    if requested and reason is not None:
        raise ValueError(f"cuda_graph=True cannot be honoured: {reason}")
    return requested


def set_tf32(enabled: bool | None, backend: Any) -> Callable[[], None]:
    """Set ``torch.backends.cuda.matmul.allow_tf32`` for a run; returns the undo.

    ``None`` leaves PyTorch's setting alone (its default is off). TF32 keeps float32's range
    but rounds the matrix-product inputs to a 10-bit mantissa (about 1e-3 relative), for
    up to 8x the float32 matmul rate on Ampere and later GPUs. It exists only for the torch
    backend on CUDA: asking for it elsewhere is a ``ValueError``.
    """
    if enabled is None:
        return lambda: None
    if not isinstance(enabled, bool):
        raise ValueError(f"tf32 must be True, False or None; got {enabled!r}")
    device_type = getattr(backend.device, "type", str(backend.device))
    if backend.name != "torch" or device_type != "cuda":
        raise ValueError(
            f"tf32 applies to the torch backend on a CUDA device; this model uses "
            f"{backend.name!r} on {str(backend.device)!r}"
        )
    import torch

    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled

    def restore() -> None:
        torch.backends.cuda.matmul.allow_tf32 = before

    return restore


class TorchCudaGraph:
    """``torch.cuda.CUDAGraph``: :meth:`capture` records ``fn``'s kernels (running none of
    them) and returns its outputs, whose contents each :meth:`replay` refreshes."""

    def __init__(self) -> None:
        import torch

        self._torch = torch
        self.graph = torch.cuda.CUDAGraph()

    def capture(self, fn: Callable[[], Any]) -> Any:
        with self._torch.cuda.graph(self.graph):
            return fn()

    def replay(self) -> None:
        self.graph.replay()


@dataclass
class GraphStats:
    """What a :class:`StepGraph` did: steps replayed, captures made, full batches left to
    the uncaptured step (warm-up), and why capture stopped, if it did."""

    replays: int = 0
    captures: int = 0
    warmup_steps: int = 0
    disabled_reason: str | None = None


class StepGraph:
    """Captures one full-batch training step of ``model`` and replays it.

    Parameters
    ----------
    model : MLP
        On the torch backend (CUDA, unless ``graph_factory`` says otherwise).
    optimizer : Optimizer
    x_all : tensor (n_samples, n_inputs);  t_all : tensor (n_samples, n_outputs)
    w_all : tensor (n_samples,) or None
        The uploaded training data and sample weights, gathered from on the device.
    batch_size : int
        Only batches of exactly this many rows are captured.
    warmup : int
        Full batches run uncaptured before the capture (at least 1: the optimizer's
        slot vectors must exist before it).
    graph_factory : callable () -> graph, optional
        Makes the graph object (``capture(fn)``, ``replay()``); :class:`TorchCudaGraph` by
        default. Tests pass a CPU stand-in to check the bookkeeping without a GPU.
    strict : bool
        Raise when a capture fails instead of falling back to the uncaptured step.

    Notes
    -----
    Use: :meth:`begin_epoch` with the epoch's order gives the epoch's arrays (the order on
    the device, which becomes the predicted classes, and the per-step losses); then for
    step ``k`` :meth:`step`, which returns False when the caller must run the step itself
    (a partial batch, a warm-up step, capture off).

    The replayed step does its own bookkeeping on the device, so that the host launches
    nothing but the replay: it reads its batch's row indices from the order at a position
    kept in a 0-d device counter, writes the batch loss and predicted classes into the
    epoch's arrays at that position, and advances the counter.
    """

    def __init__(
        self,
        model: MLP,
        optimizer: Optimizer,
        x_all: Any,
        t_all: Any,
        w_all: Any,
        batch_size: int,
        *,
        warmup: int = 2,
        graph_factory: Callable[[], Any] | None = None,
        strict: bool = False,
    ) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be at least 1 (the optimizer's slots); got {warmup}")
        import torch

        be = model.backend
        self._torch = torch
        self.model, self.optimizer = model, optimizer
        self.x_all, self.t_all, self.w_all = x_all, t_all, w_all
        self.batch_size = int(batch_size)
        self.warmup = warmup
        self.graph_factory = graph_factory or TorchCudaGraph
        self.strict = strict
        self.stats = GraphStats()
        n = x_all.shape[0]
        self.n_steps = -(-n // self.batch_size)
        # the epoch's arrays, at fixed addresses (the graph reads and writes them)
        self.order = be.empty((n,), "int64")  # row order; then the predicted classes
        self.losses = be.zeros((self.n_steps,), model.dtype)  # each step's batch loss
        self._k = be.zeros((), "int64")  # the replayed step's number, on the device
        self._k_next: int | None = None  # what the host knows _k holds
        self._offsets = torch.arange(self.batch_size, device=be.device)
        self._rows = be.empty((self.batch_size,), "int64")  # positions k*B ... k*B + B - 1
        self._idx = be.empty((self.batch_size,), "int64")  # their row indices
        self._xb = be.empty((self.batch_size, x_all.shape[1]), model.dtype)
        self._tb = be.empty((self.batch_size, t_all.shape[1]), model.dtype)
        self._classes: Callable[[Any], Any] | None = None
        self._staged: tuple[Any, Any, Any] | None = None  # (host order, host copy, device copy)
        self._graph: Any = None
        self._key: tuple[Any, ...] | None = None
        self._warm = 0  # uncaptured full batches since the last (re)start

    # ------------------------------------------------------------------ the graph's key
    def _current_key(self) -> tuple[Any, ...]:
        """What the captured kernels froze: the learning rate, and the arrays they address."""
        opt, flat = self.optimizer, self.model.flat
        return (opt.lr, flat.params, flat.grads, *opt.device_arrays())

    def _key_matches(self, key: tuple[Any, ...] | None) -> bool:
        now = self._current_key()
        return (
            key is not None
            and len(key) == len(now)
            and key[0] == now[0]
            and all(a is b for a, b in zip(key[1:], now[1:], strict=True))
        )

    def begin_epoch(self, order: Any, classes: Callable[[Any], Any] | None) -> tuple[Any, Any]:
        """Start an epoch: ``order`` (host or device integers, every row once) is copied into
        :attr:`order`; ``classes(y)`` gives the predicted class of each row of outputs (None:
        no accuracy). Returns ``(order, losses)``, the epoch's arrays on the device.

        The graph is dropped if the learning rate or the arrays it addresses have changed;
        the next capture then waits for ``warmup`` uncaptured steps again, so that an
        optimizer whose state was replaced rebuilds its slot vectors outside the graph.
        """
        if self._graph is not None and (
            not self._key_matches(self._key) or (classes is None) != (self._classes is None)
        ):
            self._graph = None
            self._key = None
            self._warm = 0
        torch = self._torch
        staged, self._staged = self._staged, None
        if staged is not None and staged[0] is order:
            self.order.copy_(staged[2])  # uploaded already: widened on the device
        else:
            self.order.copy_(order if isinstance(order, torch.Tensor) else torch.from_numpy(order))
        self.losses.zero_()
        self._classes = classes
        self._k_next = None
        return self.order, self.losses

    def stage_order(self, order: np.ndarray) -> None:
        """Upload the next epoch's ``order`` now, while the running epoch's steps are still
        queued: from page-locked host memory, asynchronously, queued behind them (at batch
        8192 the upload at the epoch's start left the device idle for about a millisecond
        an epoch; scripts/gpu_check.py). :meth:`begin_epoch` with the same ``order`` then
        only widens it to int64 on the device."""
        torch, device = self._torch, self.order.device
        src = torch.from_numpy(order)
        staged = self._staged
        if staged is None or staged[1].shape != src.shape or staged[1].dtype != src.dtype:
            host = torch.empty(src.shape, dtype=src.dtype, pin_memory=device.type == "cuda")
            staged = (None, host, torch.empty(src.shape, dtype=src.dtype, device=device))
        staged[1].copy_(src)
        staged[2].copy_(staged[1], non_blocking=True)
        self._staged = (order, staged[1], staged[2])

    # ------------------------------------------------------------------------- a step
    def _captured_step(self) -> None:
        """The step the graph records: gather, forward, backward, update (as in fit), and
        the bookkeeping of step ``k`` (its loss and predicted classes), then ``k += 1``."""
        torch, model, be = self._torch, self.model, self.model.backend
        rows = torch.add(self._offsets, self._k, alpha=self.batch_size, out=self._rows)
        idx = torch.index_select(self.order, 0, rows, out=self._idx)
        xb = be.take_rows(self.x_all, idx, out=self._xb)
        tb = be.take_rows(self.t_all, idx, out=self._tb)
        wb = None if self.w_all is None else be.take_rows(self.w_all, idx)
        scale = self.optimizer.gradient_scale()  # as in fit: SGD takes eta-scaled gradients
        loss = model.forward_backward(xb, tb, wb, scale)
        self.optimizer.step(model.params, model.grads, flat=model.flat, scaled=scale != 1.0)
        self.losses.index_copy_(0, self._k.reshape(1), loss.reshape(1))
        if self._classes is not None:  # predicted classes over the positions just read
            self.order.index_copy_(0, rows, self._classes(model.last_output))
        self._k += 1

    def _capture(self) -> bool:
        opt = self.optimizer
        t_before, key_before = opt.t, self._current_key()
        try:
            graph = self.graph_factory()
            graph.capture(self._captured_step)
            if not self._key_matches(key_before):
                # state allocated inside the capture would be re-initialised by every replay
                raise RuntimeError("the optimizer created or replaced its state during capture")
        except Exception as e:  # a kernel that cannot be captured: run uncaptured from now on
            if self.strict:
                raise RuntimeError(f"capturing the training step failed: {e}") from e
            self.stats.disabled_reason = f"capture failed: {type(e).__name__}: {e}"
            return False
        finally:
            opt.rewind_step_count(t_before)  # the capture ran no update: undo its count
        self._graph = graph
        self._key = self._current_key()
        self.stats.captures += 1
        return True

    def step(self, k: int) -> bool:
        """Run step ``k`` of the epoch (rows ``k*B ... k*B + B - 1`` of the order) by
        replaying the graph; False when it was not replayed (a partial batch, a warm-up
        step, capture off): the caller then runs the step and its bookkeeping itself."""
        lo = k * self.batch_size
        if self.stats.disabled_reason is not None or lo + self.batch_size > self.order.shape[0]:
            return False
        if self._graph is None:
            if self._warm < self.warmup:
                self._warm += 1
                self.stats.warmup_steps += 1
                return False
            self._k.fill_(k)
            self._k_next = k
            if not self._capture():
                return False
        elif self._k_next != k:
            self._k.fill_(k)
        self._graph.replay()
        self._k_next = k + 1
        self.optimizer.t += 1
        self.stats.replays += 1
        return True
