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
  every step, so those optimizers are never captured (:func:`capture_blocker`).
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

from ..network import MLP
from ..optimizers import SGD, Momentum, Nesterov, Optimizer, RMSprop

__all__ = [
    "CAPTURABLE_OPTIMIZERS",
    "GraphStats",
    "StepGraph",
    "TorchCudaGraph",
    "capture_blocker",
    "use_cuda_graph",
    "set_tf32",
]

# Optimizers whose update reads no per-step number but the learning rate (exact types:
# a subclass may add one).
CAPTURABLE_OPTIMIZERS: tuple[type[Optimizer], ...] = (SGD, Momentum, Nesterov, RMSprop)


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
            f"optimizer {optimizer.name!r} computes per-step constants in Python (Adam's bias "
            f"corrections from the step count), which a graph would freeze; capturable: {names}"
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
    Use: call :meth:`start_epoch` before each epoch, then for each batch :meth:`step` with
    its row indices; ``None`` means "not replayed: run the uncaptured step".
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
        be = model.backend
        self.model, self.optimizer = model, optimizer
        self.x_all, self.t_all, self.w_all = x_all, t_all, w_all
        self.batch_size = int(batch_size)
        self.warmup = warmup
        self.graph_factory = graph_factory or TorchCudaGraph
        self.strict = strict
        self.stats = GraphStats()
        self._idx = be.empty((self.batch_size,), "int64")  # the replayed step's row indices
        self._xb = be.empty((self.batch_size, x_all.shape[1]), model.dtype)
        self._tb = be.empty((self.batch_size, t_all.shape[1]), model.dtype)
        self._graph: Any = None
        self._key: tuple[Any, ...] | None = None
        self._warm = 0  # uncaptured full batches since the last (re)start
        self._loss: Any = None
        self._y_out: Any = None

    # ------------------------------------------------------------------ the graph's key
    def _current_key(self) -> tuple[Any, ...]:
        """What the captured kernels froze: the learning rate, and the arrays they address."""
        opt, flat = self.optimizer, self.model.flat
        slots = tuple(a for entry in opt.state.values() for a in entry.values())
        return (opt.lr, flat.params, flat.grads, *slots)

    def _key_matches(self) -> bool:
        return self._key_matches_key(self._key)

    def _key_matches_key(self, key: tuple[Any, ...] | None) -> bool:
        now = self._current_key()
        return (
            key is not None
            and len(key) == len(now)
            and key[0] == now[0]
            and all(a is b for a, b in zip(key[1:], now[1:], strict=True))
        )

    def start_epoch(self) -> None:
        """Drop the graph if the learning rate or the arrays it addresses have changed.

        The next capture then waits for ``warmup`` uncaptured steps again, so that an
        optimizer whose state was replaced rebuilds its slot vectors outside the graph.
        """
        if self._graph is not None and not self._key_matches():
            self._graph = None
            self._key = None
            self._warm = 0

    # ------------------------------------------------------------------------- a step
    def _captured_step(self) -> tuple[Any, Any]:
        """The step the graph records: gather, forward, backward, update (as in fit)."""
        model, be = self.model, self.model.backend
        xb = be.take_rows(self.x_all, self._idx, out=self._xb)
        tb = be.take_rows(self.t_all, self._idx, out=self._tb)
        wb = None if self.w_all is None else be.take_rows(self.w_all, self._idx)
        scale = self.optimizer.gradient_scale()  # as in fit: SGD takes eta-scaled gradients
        loss = model.forward_backward(xb, tb, wb, scale)
        self.optimizer.step(model.params, model.grads, flat=model.flat, scaled=scale != 1.0)
        return loss, model.last_output

    def _capture(self) -> bool:
        opt = self.optimizer
        t_before, key_before = opt.t, self._current_key()
        try:
            graph = self.graph_factory()
            self._loss, self._y_out = graph.capture(self._captured_step)
            if not self._key_matches_key(key_before):
                # state allocated inside the capture would be re-initialised by every replay
                raise RuntimeError("the optimizer created or replaced its state during capture")
        except Exception as e:  # a kernel that cannot be captured: run uncaptured from now on
            if self.strict:
                raise RuntimeError(f"capturing the training step failed: {e}") from e
            self.stats.disabled_reason = f"capture failed: {type(e).__name__}: {e}"
            return False
        finally:
            opt.t = t_before  # the capture ran no update: undo its count
        self._graph = graph
        self._key = self._current_key()
        self.stats.captures += 1
        return True

    def step(self, idx: Any) -> Any:
        """Run one training step on the rows ``idx`` by replaying the graph.

        Parameters
        ----------
        idx : int64 tensor (n_batch,)
            Row indices into the data, on the model's device.

        Returns
        -------
        0-d tensor or None
            The batch loss (valid until the next replay), or None when the step was not
            replayed (a partial batch, a warm-up step, capture off): the caller then runs
            the uncaptured step.
        """
        if self.stats.disabled_reason is not None or idx.shape[0] != self.batch_size:
            return None
        if self._graph is None:
            if self._warm < self.warmup:
                self._warm += 1
                self.stats.warmup_steps += 1
                return None
            self._idx.copy_(idx)
            if not self._capture():
                return None
        else:
            self._idx.copy_(idx)
        self._graph.replay()
        self.optimizer.t += 1
        self.model.last_output = self._y_out  # what the caller's accuracy reads, as after a step
        self.stats.replays += 1
        return self._loss
