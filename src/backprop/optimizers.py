"""Optimizers and learning-rate schedules.

An optimizer holds its own state (velocities, moment estimates, the step count) keyed by
parameter name and never owns the parameters: :meth:`Optimizer.step` receives the live
parameter arrays and their gradients and updates the parameters in place. The base class
runs the loop over parameters; each subclass writes only its update formula.

Weight decay is L2 on the weights, never on biases, as in Nielsen's ``network2.py`` and
scikit-learn's ``alpha``: it adds ``weight_decay * W`` to the gradient (AdamW instead shrinks
the weights directly, decoupled from the moments). Which parameters are weights, each layer
says (``model.decaying``); the optimizer is told, and never reads it from a name.
"""

from __future__ import annotations

import inspect
import math
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._registry import lookup
from ._validation import is_finite_number, short_repr

__all__ = [
    "Optimizer",
    "SGD",
    "Momentum",
    "Nesterov",
    "Adam",
    "AdamW",
    "RMSprop",
    "OPTIMIZERS",
    "get_optimizer",
    "optimizers_taking",
    "Schedule",
    "ConstantLR",
    "StepLR",
    "ExponentialLR",
    "CosineLR",
    "SCHEDULES",
    "get_schedule",
]


# ------------------------------------------------------------------------ schedules
class Schedule(ABC):
    """A learning rate as a function of the epoch (0-based): ``lr(epoch)``."""

    name = "constant"

    @abstractmethod
    def __call__(self, base_lr: float, epoch: int) -> float:
        """The learning rate for ``epoch``."""

    def to_dict(self) -> dict[str, Any]:
        """The name and settings (what a checkpoint stores to build it again)."""
        return {"name": self.name, **{k: v for k, v in vars(self).items() if k[0] != "_"}}

    def start_run(self, epochs: int) -> None:
        """Told by :func:`backprop.training.fit`, before it trains, how many epochs the run
        has: a schedule whose length is the run's (cosine without ``t_max``) takes it; the
        others need nothing."""
        return None

    def check_base_lr(self, base_lr: float) -> None:
        """Refuse a base learning rate this schedule cannot decay from (ValueError); every
        base rate suits the schedules other than cosine."""
        return None


@dataclass
class ConstantLR(Schedule):
    """``lr = base_lr``."""

    name = "constant"

    def __call__(self, base_lr: float, epoch: int) -> float:
        return base_lr


@dataclass
class StepLR(Schedule):
    """``lr = base_lr * gamma ** (epoch // step_size)`` (torch.optim.lr_scheduler.StepLR)."""

    step_size: int = 10
    gamma: float = 0.1
    name = "step"

    def __post_init__(self) -> None:
        _check_count("step_size", self.step_size)
        _check_decay("gamma", self.gamma)
        # Python numbers (a NumPy float32 gamma gave a float64 model float32 rates, and a
        # checkpoint 'float32 is not JSON serializable')
        self.step_size, self.gamma = int(self.step_size), float(self.gamma)

    def __call__(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


@dataclass
class ExponentialLR(Schedule):
    """``lr = base_lr * gamma ** epoch``."""

    gamma: float = 0.95
    name = "exponential"

    def __post_init__(self) -> None:
        _check_decay("gamma", self.gamma)
        self.gamma = float(self.gamma)  # a Python number (StepLR's settings say why)

    def __call__(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma**epoch


@dataclass
class CosineLR(Schedule):
    """``lr = min_lr + (base_lr - min_lr) (1 + cos(pi * epoch / t_max)) / 2`` for
    ``epoch <= t_max``, then ``min_lr`` (Loshchilov & Hutter 2017, without restarts).

    ``t_max``, the epochs the decay takes: None (the default) is the length of each
    :func:`backprop.training.fit` run the schedule serves, its ``epochs`` (a fixed default
    of 10 decayed a 30-epoch run's rate to 0 by epoch 10, and it trained on at 0 without a
    word). Steps taken without ``fit`` need it given."""

    t_max: int | None = None
    min_lr: float = 0.0
    # the length of the run fit is training (start_run), for t_max None; not a setting
    _run_epochs: int | None = field(default=None, init=False, repr=False, compare=False)
    name = "cosine"

    def __post_init__(self) -> None:
        if self.t_max is not None:
            _check_count("t_max", self.t_max)
        if not (is_finite_number(self.min_lr) and self.min_lr >= 0):
            raise ValueError(f"min_lr must be a finite number >= 0; got {self.min_lr!r}")
        self.min_lr = float(self.min_lr)  # Python numbers (StepLR's settings say why)
        self.t_max = None if self.t_max is None else int(self.t_max)

    def check_base_lr(self, base_lr: float) -> None:
        if self.min_lr > base_lr:  # the "decay" would raise the rate, to min_lr at t_max
            raise ValueError(
                f"the cosine schedule's min_lr={self.min_lr:g} is above the learning rate "
                f"{base_lr:g}; expected min_lr <= lr"
            )

    def start_run(self, epochs: int) -> None:
        if self.t_max is None:
            self._run_epochs = max(int(epochs), 1)  # (fit(epochs=0) trains nothing)

    def __call__(self, base_lr: float, epoch: int) -> float:
        t_max = self.t_max if self.t_max is not None else self._run_epochs
        if t_max is None:
            raise ValueError(
                "the cosine schedule's length t_max (in epochs) is not set: fit takes its "
                "epochs; for steps of your own, give get_schedule('cosine', t_max=EPOCHS)"
            )
        e = min(epoch, t_max)
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * e / t_max))


def _is_real(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def _check_count(name: str, value: Any) -> None:
    """A schedule's period: a positive integer (0 would divide by zero)."""
    if not (isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


def _check_fraction(name: str, value: Any) -> None:
    """A moving average's coefficient (momentum, beta1, beta2, rho): a number in [0, 1)."""
    if not (_is_real(value) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} must be in [0, 1); got {short_repr(value)}")


def _check_decay(name: str, value: Any) -> None:
    """A schedule's decay factor: in (0, 1], so that ``gamma ** k`` never overflows."""
    if not (_is_real(value) and 0.0 < value <= 1.0):
        raise ValueError(f"{name} must be in (0, 1]; got {value!r}")


SCHEDULES: dict[str, type[Schedule]] = {
    "constant": ConstantLR,
    "step": StepLR,
    "exponential": ExponentialLR,
    "cosine": CosineLR,
}


def get_schedule(name: str | Schedule | None, **kwargs: Any) -> Schedule:
    """A schedule by name with its settings (``get_schedule("step", step_size=5)``); a
    setting it does not take is an error listing those it does."""
    if name is None:
        return ConstantLR()
    if isinstance(name, Schedule):
        return name
    cls = lookup(SCHEDULES, name, "schedule")
    _check_settings("schedule", name, kwargs, list(cls.__dataclass_fields__))
    return cls(**kwargs)


def _check_settings(kind: str, name: str, given: dict[str, Any], accepted: list[str]) -> None:
    unknown = [k for k in given if k not in accepted]
    if unknown:
        raise ValueError(
            f"{kind} {name!r} does not take {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(accepted) if accepted else 'no settings'}"
        )


# ----------------------------------------------------------------------- optimizers
class Optimizer(ABC):
    """Base class: the loop over parameters, weight decay, schedules and state.

    Parameters
    ----------
    lr : float
        The base learning rate ``eta``, kept as :attr:`base_lr` (a callback may set it);
        :attr:`lr` is the rate the schedule gives for this epoch.
    weight_decay : float
        L2 coefficient ``lambda`` on weights: the gradient used is ``g + lambda W``.
    schedule : Schedule or str or None
        How the learning rate changes with the epoch (set :attr:`epoch` each epoch: ``fit``
        does; a loop of your own calling ``train_step`` sets it itself).
    """

    name = "sgd"
    slots: tuple[str, ...] = ()
    decoupled_decay = False
    takes_scaled_gradients = False  # see gradient_scale
    uses_step_count = False  # whether the update reads t (see step_count_array)
    _t_array_backend: Any = None

    def __init__(self, lr: float = 0.1, weight_decay: float = 0.0, schedule: Any = None) -> None:
        if not (is_finite_number(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number; got {short_repr(lr)}")
        if not (is_finite_number(weight_decay) and weight_decay >= 0):
            raise ValueError(
                f"weight_decay must be a finite number >= 0; got {short_repr(weight_decay)}"
            )
        self.base_lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.schedule = get_schedule(schedule)
        self.schedule.check_base_lr(self.base_lr)
        self.epoch = 0
        self.t = 0  # number of steps taken
        self.state: dict[str, dict[str, Any]] = {}
        self._state_is_flat = False
        self._flat_cache: tuple[Any, dict[str, Any]] | None = None
        self._fits_checked: tuple = ()  # the parameters _check_state_fits last passed
        self._scratch: _Scratch | None = None
        # the step count as a 0-d float64 array beside the parameters (see step_count_array)
        self._t_array: Any = None
        self._t_array_value = -1  # the value of `t` the array was last known to hold

    @classmethod
    def settings(cls) -> dict[str, Any]:
        """The keyword settings this optimizer takes and their defaults (``lr``,
        ``weight_decay``, ``schedule``, ``momentum``...), read from the constructors'
        signatures along the class hierarchy: what the CLI offers for it."""
        out: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            for param in inspect.signature(init).parameters.values():
                named = param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
                if named and param.name != "self":
                    out[param.name] = param.default
        return out

    def __getstate__(self) -> dict[str, Any]:
        # scratch vectors and the flat-vector cache are rebuilt on the next step
        d = dict(self.__dict__)
        d.update(_scratch=None, _flat_cache=None, _state_is_flat=False)
        d.update(_t_array=None, _t_array_value=-1, _t_array_backend=None)
        return d

    @property
    def lr(self) -> float:
        """The learning rate for the current :attr:`epoch`: the schedule's, from
        :attr:`base_lr` (set that to change the rate, in a callback too). A Python float,
        whatever number types the settings are: a NumPy float64 rate made float32 steps
        compute in float64, and a NumPy float32 one lowered a float64 model's rate."""
        return float(self.schedule(float(self.base_lr), int(self.epoch)))

    @lr.setter
    def lr(self, value: float) -> None:  # (it raised "property 'lr' ... has no setter")
        raise AttributeError(
            "lr is the schedule's rate for this epoch, computed from base_lr: set "
            "optimizer.base_lr to change the rate the schedule starts from"
        )

    def gradient_scale(self) -> float:
        """The factor this optimizer would like the gradients pre-multiplied by (1: none).

        Plain SGD without weight decay asks for its learning rate: its update
        ``p <- p - eta g`` is then one subtraction (see ``step(..., scaled=True)``)."""
        return 1.0

    def step(
        self,
        params: dict[str, Any],
        grads: dict[str, Any],
        flat: Any = None,
        scaled: bool = False,
        decays: Collection[str] | None = None,
    ) -> None:
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        params, grads : dict name -> array
            The live parameters (updated in place) and their gradients.
        flat : backprop.network.FlatParameters, optional
            When the parameters are views into one vector (``model.flat``), the update runs
            once on the whole vector; the result is identical, entry for entry. Weight decay
            then applies where ``flat.decaying`` says.
        scaled : bool
            The gradients are already multiplied by :meth:`gradient_scale`.
        decays : collection of str, optional
            The names of the parameters weight decay applies to (``model.decaying``). By
            default the matrices (``ndim >= 2``): an MLP's weights ``layers.<k>.W``.
        """
        steady = flat is not None and self._flat_slots_fit(flat)
        if not steady:  # (the flat path's steady state: its slots were made for these)
            self._check_state_fits(params, whole=flat is not None)
        if scaled and not self.takes_scaled_gradients:  # (refused before t counts the step)
            raise ValueError(f"{self.name} does not take pre-scaled gradients")
        self.t += 1
        lr = None if scaled else self.lr  # scaled: eta is in the gradients already
        if flat is not None:
            self._step_flat(flat, lr, steady)
            return
        for name, p in params.items():
            g = grads[name]
            decay = self.weight_decay > 0 and (p.ndim >= 2 if decays is None else name in decays)
            if decay and not self.decoupled_decay:
                g = g + self.weight_decay * p  # L2: d/dW (lambda/2 ||W||^2) = lambda W
            state = self.state.get(name)
            if state is None:
                state = self.state[name] = {s: p * 0.0 for s in self.slots}
                self._state_is_flat = False
            if decay and self.decoupled_decay:
                p -= (lr * self.weight_decay) * p
            self._update(p, g, state, lr, None, self.t)

    def _flat_slots_fit(self, flat: Any) -> bool:
        """Whether the flat slots are the ones made for ``flat``'s parameter vector."""
        cached = self._flat_cache
        return cached is not None and cached[0] is flat.params and self._state_is_flat

    def _check_state_fits(self, params: dict[str, Any], whole: bool = False) -> None:
        """Refuse, before anything changes, parameters this optimizer holds other state
        for (another shape), or none while it holds some (a deeper model whose first layers
        have the same shapes): it stepped another model, and one optimizer steps one. A
        step of some of its parameters only (a frozen layer, stepped by hand) is fine; a
        ``whole`` model's step (``fit``, ``train_step``) must name every parameter it holds
        state for (a shallower model took a deeper one's moments). Checked once per set of
        names and shapes (the per-array path asks every step)."""
        held = {name: slots for name, slots in self.state.items() if slots}
        if not held:
            return
        if whole and (missing := sorted(set(held) - set(params))):
            raise ValueError(
                f"this {self.name} optimizer holds state for {missing[0]}, which the model "
                "does not have: it stepped another model; give each model its own optimizer"
            )
        key = tuple((name, tuple(p.shape)) for name, p in params.items())
        if key == getattr(self, "_fits_checked", ()):  # (an optimizer pickled before it)
            return
        for name, p in params.items():
            slots = held.get(name)
            shape = None if slots is None else tuple(next(iter(slots.values())).shape)
            if shape != tuple(p.shape):
                held_here = f"no state for {name}" if shape is None else (
                    f"state for {name} of shape {shape}"
                )  # fmt: skip
                raise ValueError(
                    f"this {self.name} optimizer holds {held_here}, but the model's {name} "
                    f"has shape {tuple(p.shape)}: it stepped another model; give each model "
                    "its own optimizer"
                )
            for s, slot in slots.items():  # loaded from a float64 state into a float32
                if _dtype_name(slot) != _dtype_name(p):  # model's optimizer: the moments in
                    slots[s] = _in_dtype(slot, _dtype_name(p))  # its dtype, as the flat path
        self._fits_checked = key

    def _step_flat(self, flat: Any, lr: float, steady: bool) -> None:
        p, g = flat.params, flat.grads
        scratch = self._scratch
        if (
            scratch is None
            or scratch.shape != tuple(p.shape)
            or scratch.backend is not flat.backend
        ):
            scratch = self._scratch = _Scratch(flat.backend, p)
        if self.weight_decay > 0:
            # W on the decaying parameters, 0 elsewhere
            decay = scratch.mul("decay", flat.decay_mask, p)
            if self.decoupled_decay:
                decay *= lr * self.weight_decay
                p -= decay
            else:
                decay *= self.weight_decay
                decay += g  # g + lambda W, weights only
                g = decay
        slots = self._flat_cache[1] if steady else self._flat_slots(flat)
        t = self.step_count_array(flat.backend) if self.uses_step_count else self.t
        self._update(p, g, slots, lr, scratch, t)

    def step_count_array(self, backend: Any) -> Any:
        """The step count ``t`` as a 0-d float64 array on ``backend``, advanced in place.

        An update that reads ``t`` (Adam's bias corrections) reads it from this array, so
        that a CUDA graph of the step replays with the right count: a Python number would
        be frozen into the graph (:mod:`backprop.training.cuda_graph`). The array is advanced by one
        (a kernel, which a graph records) when it holds ``t - 1``, and written afresh, in
        place, only when ``t`` was changed from outside (a loaded state, replayed graphs).
        """
        arr = self._t_array
        if arr is None or self._t_array_backend is not backend:
            arr = self._t_array = backend.zeros((), "float64")
            arr[...] = float(self.t)
            self._t_array_backend = backend
        elif self._t_array_value == self.t - 1:
            arr += 1.0
        elif self._t_array_value != self.t:
            arr[...] = float(self.t)
        self._t_array_value = self.t
        return arr

    def rewind_step_count(self, t: int) -> None:
        """Set the step count back to ``t`` after a step whose kernels were recorded but not
        run (a CUDA graph's capture): the step-count array is rewritten before its next use."""
        self.t = t
        self._t_array_value = -1

    def device_arrays(self) -> list[Any]:
        """Every array the flat update reads or writes besides the parameters and the
        gradients: the slot vectors and the step-count array (what a CUDA graph addresses)."""
        slots = [a for entry in self.state.values() for a in entry.values()]
        return slots if self._t_array is None else [*slots, self._t_array]

    def _flat_slots(self, flat: Any) -> dict[str, Any]:
        """Slot vectors matching ``flat``; the per-name state entries become views of them,
        so :meth:`state_dict` and the per-array path see the same numbers."""
        slots = {s: flat.params * 0.0 for s in self.slots}
        for name, (lo, hi, shape) in flat.layout.items():
            old = self.state.get(name, {})
            entry = {}
            for s_name, vec in slots.items():
                if s_name in old:
                    vec[lo:hi] = flat.backend.asarray(old[s_name]).reshape(-1)
                entry[s_name] = vec[lo:hi].reshape(shape)
            self.state[name] = entry
        self._flat_cache = (flat.params, slots)
        self._state_is_flat = True
        return slots

    @abstractmethod
    def _update(
        self, p: Any, g: Any, state: dict[str, Any], lr: float, scratch: _Scratch | None, t: Any
    ) -> None:
        """Update ``p`` in place from ``g`` (weight decay already applied) and ``state``.

        ``t`` is the step count: a Python int on the per-array path, the 0-d float64 array
        of :meth:`step_count_array` on the flat path of an optimizer that reads it.

        Temporaries go through ``_mul``/``_sqrt`` into ``scratch`` (the flat path's reused
        vectors) or are fresh arrays (``scratch`` None): the same operations in the same
        order either way, so both paths give the same bits."""

    def hyperparameters(self) -> dict[str, Any]:
        """The settings by name (``lr`` is the base rate, before any schedule): what the
        repr shows and a checkpoint records, and what ``train --resume`` compares."""
        return {"lr": self.base_lr, "weight_decay": self.weight_decay}

    def __repr__(self) -> str:
        """``Adam(lr=0.001, weight_decay=0.0, beta1=0.9, beta2=0.999, eps=1e-08)``, with the
        schedule when it is not constant and the step count once steps were taken."""
        parts = [f"{k}={v!r}" for k, v in self.hyperparameters().items()]
        if not isinstance(self.schedule, ConstantLR):
            parts.append(f"schedule={self.schedule!r}")
        if self.t:
            parts.append(f"t={self.t}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def state_arrays(self) -> list[Any]:
        """Every moment array this optimizer holds (the flat slot vectors, on the flat
        path, of which the per-name entries are views)."""
        if self._state_is_flat and self._flat_cache is not None:
            return list(self._flat_cache[1].values())
        return [a for slots in self.state.values() for a in slots.values()]

    def snapshot(self, copy: Callable[[Any, Any], Any], into: Any = None) -> Any:
        """The step count, the epoch and a copy of every moment, made by ``copy(array,
        buffer)`` (on the arrays' device, into ``into``'s buffers when they fit), for
        :meth:`restore` to put back: a training loop undoes a diverged epoch's steps with
        it, as it undoes their weights. On the flat path the slot vectors are copied whole;
        else each parameter's slots, by name (state just loaded from a checkpoint or a
        pickle is per parameter, and the epoch's first step makes it flat)."""
        if self._state_is_flat and self._flat_cache is not None:
            arrays = {("", slot): vec for slot, vec in self._flat_cache[1].items()}
        else:
            arrays = {(n, slot): a for n, slots in self.state.items() for slot, a in slots.items()}
        old = into[2] if into is not None else {}
        copies = {}
        for key, a in arrays.items():
            b = old.get(key)
            fits = b is not None and b.shape == a.shape and b.dtype == a.dtype
            copies[key] = copy(a, b if fits else None)
        return (self.t, self.epoch, copies, copy)

    def restore(self, snapshot: Any) -> None:
        """Put back a :meth:`snapshot`: its step count, epoch and moments, into the arrays
        held now where they are the same ones (flat vectors, or each parameter's, or its
        views into the flat vectors), else as the per-parameter state it was."""
        t, epoch, copies, copy = snapshot
        flat = self._flat_cache[1] if self._state_is_flat and self._flat_cache else {}
        if flat and copies and all(name == "" for name, _ in copies):  # flat, as taken
            held = {("", slot): vec for slot, vec in flat.items()}
        else:  # each parameter's (views into the flat vectors once the first step made them)
            held = {(n, slot): a for n, slots in self.state.items() for slot, a in slots.items()}
        if set(held) == set(copies) and all(
            tuple(held[k].shape) == tuple(c.shape) for k, c in copies.items()
        ):
            for key, c in copies.items():
                held[key][...] = c
        else:  # none then (before the first step), or per parameter (loaded): as they were
            self.state = {}
            for (name, slot), c in copies.items():
                self.state.setdefault(name, {})[slot] = copy(c, None)
            self._state_is_flat, self._flat_cache, self._fits_checked = False, None, ()
        self.t, self.epoch = t, epoch
        self._t_array_value = -1  # (the device's step count is written afresh; its array,
        # which a captured CUDA graph reads, stays)

    def state_dict(self) -> dict[str, Any]:
        """``{"name", "t", "epoch", "slots"}``: the optimizer's name, step count and epoch, and
        under ``"slots"`` every moment as a host NumPy array, keyed ``"<param>.<slot>"``."""
        slots = {}
        for name, state in self.state.items():
            for slot, value in state.items():
                slots[f"{name}.{slot}"] = _to_host(value)
        return {"name": self.name, "t": self.t, "epoch": self.epoch, "slots": slots}

    def load_state_dict(self, d: dict[str, Any], backend: Any = None) -> None:
        """Restore what :meth:`state_dict` returned (``backend`` moves arrays to a device)."""
        if d.get("name") != self.name:
            raise ValueError(f"optimizer state is for {d.get('name')!r}, not {self.name!r}")
        self.t = int(d["t"])
        self.epoch = int(d["epoch"])
        self._t_array, self._t_array_value = None, -1
        self.state = {}
        self._state_is_flat = False
        self._fits_checked = ()
        for key, value in d["slots"].items():
            name, slot = key.rsplit(".", 1)
            if slot not in self.slots:
                raise ValueError(f"optimizer state has unknown slot {key!r} for {self.name!r}")
            arr = np.array(value, copy=True)
            self.state.setdefault(name, {})[slot] = (
                arr if backend is None else backend.asarray(arr, arr.dtype.name)
            )


class _Scratch:
    """Reused vectors for an update's temporaries on the flat path, by what they hold:
    ``"work"`` (a term added into a moment, ``g^2``, then the step: each is dead before
    the next is written), ``"denom"`` (``sqrt(v_hat) + eps``) and ``"decay"`` (``lambda W``).

    A fresh parameter-sized temporary per step (``p -= lr * g`` on the MNIST MLP) costs a
    page-faulting allocation each step, and with two BLAS threads the unmapping's cross-core
    TLB flush made the update several times slower than its arithmetic (benchmarks/bench.py,
    config "mlp-b128", 2 threads).
    """

    def __init__(self, backend: Any, like: Any) -> None:
        self.backend = backend
        self.shape, self.dtype = tuple(like.shape), like.dtype
        self.vectors: dict[str, Any] = {}  # allocated on first use: SGD needs only "work"

    def _vector(self, name: str) -> Any:
        v = self.vectors.get(name)
        if v is None:
            v = self.vectors[name] = self.backend.empty(self.shape, self.dtype)
        return v

    def mul(self, name: str, a: Any, b: Any) -> Any:
        return self.backend.multiply(a, b, out=self._vector(name))

    def sqrt(self, name: str, a: Any) -> Any:
        return self.backend.sqrt(a, out=self._vector(name))


def _check_eps(eps: Any) -> None:
    """The denominators' ``eps``: > 0, so that ``sqrt(v) + eps`` is never 0."""
    if not (is_finite_number(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0; got {short_repr(eps)}")


def _mul(scratch: _Scratch | None, name: str, a: Any, b: Any) -> Any:
    """``a * b``, into the scratch vector ``name`` when there is one."""
    return a * b if scratch is None else scratch.mul(name, a, b)


def _sqrt(scratch: _Scratch | None, name: str, a: Any) -> Any:
    """``sqrt(a)``, into the scratch vector ``name`` when there is one."""
    return a**0.5 if scratch is None else scratch.sqrt(name, a)


def _dtype_name(a: Any) -> str:
    """``"float32"`` for a NumPy, torch (``torch.float32``) or standard array of float32."""
    return str(a.dtype).rsplit(".", 1)[-1]


def _in_dtype(a: Any, name: str) -> Any:
    """The array ``a``, of whichever library, in the dtype called ``name``."""
    if hasattr(a, "astype"):  # NumPy, CuPy
        return a.astype(name)
    xp = getattr(a, "__array_namespace__", None)
    if xp is not None:  # a standard array (array_api_strict)
        return xp().astype(a, getattr(xp(), name))
    torch = sys.modules[type(a).__module__.split(".")[0]]  # a torch tensor's own library
    return a.to(getattr(torch, name))


def _like(c: Any, x: Any) -> Any:
    """The scalar ``c`` in ``x``'s dtype: a Python number as it is (NumPy and torch cast it
    to the array's dtype), a 0-d array or NumPy scalar cast, so that ``x * c`` is computed in
    ``x``'s dtype exactly as with a Python number. A NumPy scalar becomes a Python number:
    a ``float64`` one is a Python ``float`` too, but NumPy computed a float32 array times it
    in float64, and torch cannot cast it to its dtype."""
    if isinstance(c, np.generic):
        c = c.item()
    if isinstance(c, float | int):
        return c
    if hasattr(c, "astype"):  # NumPy, CuPy
        return c.astype(x.dtype)
    if hasattr(c, "__array_namespace__"):  # a standard array (array_api_strict)
        return c.__array_namespace__().astype(c, x.dtype)
    return c.to(x.dtype)  # a torch tensor


def _to_host(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy().copy()
    if hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        return x.get()
    return np.array(x, copy=True)


class SGD(Optimizer):
    """Gradient descent: ``p <- p - eta g`` (the seed's ``u_ij <- u_ij - eta delta_j h_i``)."""

    name = "sgd"

    takes_scaled_gradients = True

    def gradient_scale(self) -> float:
        return self.lr if self.weight_decay == 0 else 1.0

    def _update(self, p, g, state, lr, scratch, t):
        p -= g if lr is None else _mul(scratch, "work", g, lr)  # lr None: g is eta * gradient


class Momentum(Optimizer):
    """Heavy-ball momentum (Polyak 1964), torch.optim.SGD's form:
    ``v <- mu v + g``, ``p <- p - eta v``."""

    name = "momentum"
    slots = ("v",)
    needs_momentum = False  # whether momentum 0 is refused (Nesterov's look-ahead needs one)

    def __init__(
        self,
        lr: float = 0.1,
        momentum: float = 0.9,
        *,
        weight_decay: float = 0.0,
        schedule: Any = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, schedule=schedule)
        _check_fraction("momentum", momentum)
        if self.needs_momentum and momentum == 0:
            raise ValueError(f"{self.name} needs a momentum in (0, 1); got 0 (use sgd for none)")
        self.momentum = float(momentum)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "momentum": self.momentum}

    def _update(self, p, g, state, lr, scratch, t):
        v = state["v"]
        v *= self.momentum
        v += g
        p -= _mul(scratch, "work", v, lr)


class Nesterov(Momentum):
    """Nesterov momentum (Sutskever et al. 2013), torch.optim.SGD(nesterov=True)'s form:
    ``v <- mu v + g``, ``p <- p - eta (g + mu v)``."""

    name = "nesterov"
    needs_momentum = True  # as torch.optim.SGD(nesterov=True)

    def _update(self, p, g, state, lr, scratch, t):
        v = state["v"]
        v *= self.momentum
        v += g
        step = _mul(scratch, "work", v, self.momentum)
        step += g
        step *= lr  # eta (g + mu v)
        p -= step


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1):
    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``p <- p - eta m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``,
    ``v_hat = v / (1 - b2^t)``."""

    name = "adam"
    slots = ("m", "v")
    uses_step_count = True

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        schedule: Any = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, schedule=schedule)
        _check_fraction("beta1", beta1)
        _check_fraction("beta2", beta2)
        _check_eps(eps)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def hyperparameters(self) -> dict[str, Any]:
        return {
            **super().hyperparameters(),
            "beta1": self.beta1,
            "beta2": self.beta2,
            "eps": self.eps,
        }

    def _update(self, p, g, state, lr, scratch, t):
        m, v = state["m"], state["v"]
        m *= self.beta1
        m += _mul(scratch, "work", g, 1.0 - self.beta1)
        g2 = _mul(scratch, "work", g, g)
        g2 *= 1.0 - self.beta2
        v *= self.beta2
        v += g2
        # beta^t from t, not a Python number: on the flat path t is a 0-d array, so a
        # CUDA graph of this step replays with each step's own bias corrections
        m_hat_scale = 1.0 / (1.0 - self.beta1**t)  # m_hat = m / (1 - b1^t)
        v_hat_scale = 1.0 / (1.0 - self.beta2**t)  # v_hat = v / (1 - b2^t)
        denom = _sqrt(scratch, "denom", _mul(scratch, "denom", v, _like(v_hat_scale, v)))
        denom += self.eps  # sqrt(v_hat) + eps
        step = _mul(scratch, "work", m, _like(lr * m_hat_scale, m))
        step /= denom  # eta m_hat / (sqrt(v_hat) + eps)
        p -= step


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay,
    ``W <- W - eta lambda W`` before the Adam step. Default ``weight_decay=0.01``."""

    name = "adamw"
    decoupled_decay = True

    def __init__(
        self,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        schedule: Any = None,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay=weight_decay, schedule=schedule)


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012, lecture 6e):
    ``v <- rho v + (1 - rho) g^2``; ``p <- p - eta g / (sqrt(v) + eps)``."""

    name = "rmsprop"
    slots = ("v",)

    def __init__(
        self,
        lr: float = 1e-3,
        rho: float = 0.9,
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        schedule: Any = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, schedule=schedule)
        _check_fraction("rho", rho)
        _check_eps(eps)
        self.rho, self.eps = float(rho), float(eps)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "rho": self.rho, "eps": self.eps}

    def _update(self, p, g, state, lr, scratch, t):
        v = state["v"]
        v *= self.rho
        g2 = _mul(scratch, "work", g, g)
        g2 *= 1.0 - self.rho
        v += g2
        denom = _sqrt(scratch, "denom", v)
        denom += self.eps  # sqrt(v) + eps
        step = _mul(scratch, "work", g, lr)
        step /= denom
        p -= step


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
}


def optimizers_taking(setting: str) -> list[str]:
    """The optimizers whose constructor takes ``setting`` (``momentum``: momentum, nesterov),
    as they declare them (:meth:`Optimizer.settings`)."""
    return [name for name, cls in OPTIMIZERS.items() if setting in cls.settings()]


def get_optimizer(name: str | Optimizer, **kwargs: Any) -> Optimizer:
    """An optimizer by name with its settings (``lr``, ``momentum``, ``weight_decay``...);
    an :class:`Optimizer` object as it is (settings beside one are refused: they were
    silently dropped, ``fit(optimizer=SGD(lr=0.1), lr=5.0)`` training at 0.1)."""
    if isinstance(name, Optimizer):
        if kwargs:
            given = ", ".join(f"{k}={short_repr(v)}" for k, v in kwargs.items())
            raise ValueError(
                f"{given} given with the optimizer object {type(name).__name__}, which has its "
                "own settings; set them on it, or pass the optimizer's name"
            )
        return name
    cls = lookup(OPTIMIZERS, name, "optimizer")
    _check_settings("optimizer", name, kwargs, list(cls.settings()))
    return cls(**kwargs)
