"""Tutorial mode: the seed's network, one phase of one step at a time.

Every number comes from :func:`backprop.reference.seed_step` and
:func:`backprop.tutorial.finite_difference_gradients`, the functions behind
``backprop explain``, so the page shows exactly ``backprop explain --json``; every text
comes from :mod:`backprop.formatting`, the formatter ``explain`` prints with.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .._validation import MAX_COUNT, is_count, is_finite_number, short_repr
from ..formatting import fixed, loss, number, numbers, short, sig
from ..reference import SeedStep, one_minus_sigmoid, seed_step
from ..tutorial import (
    EstimateError,
    ExplainError,
    as_matrix,
    as_vector,
    check_shapes,
    estimate_error,
    example_inputs,
    finite_difference_gradients,
)

__all__ = ["PHASES", "STYLE_OF", "Tutorial", "tutorial_values"]

#: The phases a learner steps through, in order.
PHASES = ("forward", "loss", "output deltas", "hidden deltas", "gradients", "update")

#: The keys of ``backprop explain --json`` each phase reveals (cumulative on the page).
PHASE_KEYS = (
    ("a1", "h", "a2", "y"),
    ("loss",),
    ("delta_out",),
    ("dL_dh", "delta_hidden"),
    ("grad_u", "grad_b2", "grad_w", "grad_b1"),
    ("w_new", "b1_new", "u_new", "b2_new"),
)

#: The display style of each key: the one ``backprop explain`` prints it in.
STYLE_OF = {
    "x": "short", "t": "short", "eta": "short", "w": "short", "b1": "short", "u": "short",
    "b2": "short", "a1": "fixed", "h": "fixed", "a2": "fixed", "y": "fixed", "loss": "loss",
    "delta_out": "sig", "grad_u": "sig", "grad_b2": "sig", "dL_dh": "sig",
    "delta_hidden": "sig", "grad_w": "sig", "grad_b1": "sig", "w_new": "sig",
    "b1_new": "sig", "u_new": "sig", "b2_new": "sig",
}  # fmt: skip

EDITABLE = ("x", "t", "eta", "w", "b1", "u", "b2")
MAX_UNITS = 8
MAX_BACK = 1000  # steps Back can return through (each keeps its starting numbers, ~1 kB)


def _p(v: float, style: Any = short) -> str:
    """A number inside a formula, in parentheses when negative."""
    text = style(v)
    return f"({text})" if text.startswith("-") else text


def tutorial_values(step: SeedStep) -> dict[str, Any]:
    """Every field of ``step`` (the keys of ``explain --json``) as exact value + text."""
    return {key: numbers(value, STYLE_OF[key]) for key, value in step.to_dict().items()}


def formulas(
    step: SeedStep, fd: dict[str, Any], error: EstimateError | None = None
) -> list[list[str]]:
    """For each phase, its formula lines with the numbers filled in; with ``error`` (of the
    estimate ``fd``), a last line under the gradients when the estimate cannot check them,
    as ``explain`` says. The deltas carry their layer as a(1) and a(2) do: δ(2) of the
    outputs, δ(1) of the hidden units (the seed writes δ_j for both; one phase shows both)."""
    s = step
    n_in, n_hid, n_out = len(s.x), len(s.h), len(s.y)
    forward = []
    for j in range(n_hid):
        terms = " + ".join(f"x_{i + 1} w_{i + 1}{j + 1}" for i in range(n_in))
        nums = " + ".join(f"({short(s.x[i])})({short(s.w[i][j])})" for i in range(n_in))
        forward.append(
            f"a(1)_{j + 1} = {terms} + b(1)_{j + 1} = {nums} + {_p(s.b1[j])} = {fixed(s.a1[j])}"
        )
        forward.append(f"h_{j + 1} = σ(a(1)_{j + 1}) = σ({fixed(s.a1[j])}) = {fixed(s.h[j])}")
    for j in range(n_out):
        terms = " + ".join(f"h_{i + 1} u_{i + 1}{j + 1}" for i in range(n_hid))
        nums = " + ".join(f"({fixed(s.h[i])})({short(s.u[i][j])})" for i in range(n_hid))
        forward.append(
            f"a(2)_{j + 1} = {terms} + b(2)_{j + 1} = {nums} + {_p(s.b2[j])} = {fixed(s.a2[j])}"
        )
        forward.append(f"y_{j + 1} = σ(a(2)_{j + 1}) = σ({fixed(s.a2[j])}) = {fixed(s.y[j])}")

    sq = " + ".join(f"(y_{j + 1} - t_{j + 1})²" for j in range(n_out))
    sq_nums = " + ".join(f"({fixed(s.y[j])} - {_p(s.t[j])})²" for j in range(n_out))
    loss_lines = [f"L = 1/2 [{sq}] = 1/2 [{sq_nums}] = {loss(s.loss)}"]

    out_deltas = [
        f"δ(2)_{j + 1} = (y_{j + 1} - t_{j + 1}) y_{j + 1} (1 - y_{j + 1}) = "
        f"({fixed(s.y[j] - s.t[j])})({fixed(s.y[j])})({_one_minus(s.y[j], s.a2[j])}) = "
        f"{sig(s.delta_out[j])}"
        for j in range(n_out)
    ]

    hidden = []
    for j in range(n_hid):
        terms = " + ".join(f"δ(2)_{k + 1} u_{j + 1}{k + 1}" for k in range(n_out))
        nums = " + ".join(f"({sig(s.delta_out[k])})({short(s.u[j][k])})" for k in range(n_out))
        hidden.append(f"∂L/∂h_{j + 1} = {terms} = {nums} = {sig(s.dL_dh[j])}")
    for j in range(n_hid):
        hidden.append(
            f"δ(1)_{j + 1} = ∂L/∂h_{j + 1} h_{j + 1} (1 - h_{j + 1}) = ({sig(s.dL_dh[j])})"
            f"({fixed(s.h[j])})({_one_minus(s.h[j], s.a1[j])}) = {sig(s.delta_hidden[j])}"
        )

    grads = []
    for i in range(n_hid):
        for j in range(n_out):
            grads.append(
                f"∂L/∂u_{i + 1}{j + 1} = δ(2)_{j + 1} h_{i + 1} = ({sig(s.delta_out[j])})"
                f"({fixed(s.h[i])}) = {sig(s.grad_u[i][j])}    "
                f"finite difference {sig(fd['grad_u'][i][j])}"
            )
    for j in range(n_out):
        grads.append(
            f"∂L/∂b(2)_{j + 1} = δ(2)_{j + 1} = {sig(s.grad_b2[j])}    "
            f"finite difference {sig(fd['grad_b2'][j])}"
        )
    for i in range(n_in):
        for j in range(n_hid):
            grads.append(
                f"∂L/∂w_{i + 1}{j + 1} = δ(1)_{j + 1} x_{i + 1} = ({sig(s.delta_hidden[j])})"
                f"({short(s.x[i])}) = {sig(s.grad_w[i][j])}    "
                f"finite difference {sig(fd['grad_w'][i][j])}"
            )
    for j in range(n_hid):
        grads.append(
            f"∂L/∂b(1)_{j + 1} = δ(1)_{j + 1} = {sig(s.grad_b1[j])}    "
            f"finite difference {sig(fd['grad_b1'][j])}"
        )
    off = math.inf if error is None else error.rounding + error.truncation
    if error is not None and not error.can_check and math.isfinite(off):  # (NaN: see update)
        grads.append(
            f"The finite differences are off by about {off:.1e} "
            "themselves (rounding, and their terms in ε²): over 1% of the largest gradient, so "
            "they cannot check these gradients"
        )

    update = []
    for name, grad, new in (("w", "grad_w", "w_new"), ("u", "grad_u", "u_new")):
        old = getattr(s, name)
        for i in range(len(old)):
            for j in range(len(old[0])):
                update.append(
                    f"{name}_{i + 1}{j + 1} ← {name}_{i + 1}{j + 1} - η ∂L/∂{name}_{i + 1}{j + 1}"
                    f" = {short(old[i][j])} - ({short(s.eta)})({sig(getattr(s, grad)[i][j])})"
                    f" = {sig(getattr(s, new)[i][j])}"
                )
    for layer, name, grad, new in ((1, "b1", "grad_b1", "b1_new"), (2, "b2", "grad_b2", "b2_new")):
        old = getattr(s, name)
        for j in range(len(old)):
            update.append(
                f"b({layer})_{j + 1} ← b({layer})_{j + 1} - η ∂L/∂b({layer})_{j + 1} = "
                f"{short(old[j])} - ({short(s.eta)})({sig(getattr(s, grad)[j])}) = "
                f"{sig(getattr(s, new)[j])}"
            )
    return [forward, loss_lines, out_deltas, hidden, grads, update]


class Tutorial:
    """The tutorial's state: the numbers the step starts from, the step number and the phase.

    Parameters
    ----------
    start : dict with ``x, t, eta, w, b1, u, b2`` (as :func:`backprop.tutorial.example_inputs`)
    """

    def __init__(self, start: dict[str, Any] | None = None) -> None:
        self.start = json.loads(json.dumps(start if start is not None else example_inputs()))
        self.reset()

    def reset(self) -> None:
        self.inputs = json.loads(json.dumps(self.start))
        self.step_number = 1
        self.phase = 0
        self.losses: list[float] = []
        self.earlier: list[dict[str, Any]] = []  # the inputs each earlier step started from
        self.set_inputs({k: self.start[k] for k in EDITABLE})  # checks sizes, computes

    def _compute(self) -> None:
        p = self.inputs
        try:
            step = seed_step(p["x"], p["t"], p["w"], p["b1"], p["u"], p["b2"], p["eta"])
        except OverflowError:  # Python's float power: (y - t)**2 of a target near 1e154
            raise ExplainError(
                "these numbers overflow float64 in L = 1/2 Σ (y_j - t_j)² (a target beyond "
                "about 1e154); use smaller ones"
            ) from None
        self.step, self.fd = step, finite_difference_gradients(step)
        self.error = estimate_error(step, self.fd)

    def set_inputs(self, values: dict[str, Any]) -> None:
        """Replace any of ``x, t, eta, w, b1, u, b2`` and recompute the step (same phase)."""
        if not isinstance(values, dict):
            raise ExplainError("values must be an object with some of x, t, eta, w, b1, u, b2")
        unknown = sorted(set(values) - set(EDITABLE))
        if unknown:
            raise ExplainError(f"unknown values {unknown}; expected some of {list(EDITABLE)}")
        new = {**self.inputs, **{key: _checked(key, v) for key, v in values.items()}}
        if not new["eta"] >= 0:
            raise ExplainError(
                f"η (the learning rate) must be 0 or more, a step down the loss; "
                f"got {short(new['eta'])}"
            )
        check_shapes(new["x"], new["t"], new["w"], new["b1"], new["u"], new["b2"])
        if max(len(new["x"]), len(new["b1"]), len(new["b2"])) > MAX_UNITS:
            raise ExplainError(f"the tutorial draws at most {MAX_UNITS} units per layer")
        kept = self.inputs
        self.inputs = json.loads(json.dumps(new))
        try:
            self._compute()
        except ExplainError:  # refused: the step goes on with the numbers it had
            self.inputs = kept
            raise

    def advance(self, delta: int) -> None:
        """Move ``delta`` phases (+1 or -1); past the update, the next step starts from the
        updated weights (as ``explain --steps``); back from a step's first phase, the
        previous step is recomputed from the numbers it started from, at its update."""
        if delta not in (-1, 1):
            raise ExplainError(f"a phase move is +1 or -1; got {short_repr(delta)}")
        if delta == 1 and self.phase == len(PHASES) - 1:
            s = self.step
            broken = _not_finite(s)
            if broken:  # the page cannot show, nor a next step start from, inf or NaN
                raise ExplainError(
                    f"the update made {broken}; a next step cannot start from it: lower η, "
                    "change the numbers, or Reset"
                )
            self.losses.append(s.loss)
            self.earlier.append(json.loads(json.dumps(self.inputs)))
            del self.earlier[:-MAX_BACK]
            del self.losses[:-MAX_BACK]  # (every frame carries them: 80 kB at step 1000)
            self.inputs.update(w=s.w_new, b1=s.b1_new, u=s.u_new, b2=s.b2_new)
            self.step_number += 1
            self.phase = 0
            self._compute()
            return
        if delta == -1 and self.phase == 0:
            if not self.earlier:
                raise ExplainError(
                    f"there is no earlier step to go back to (Back keeps the last {MAX_BACK} "
                    "steps, and none from before a URL or a file was opened)"
                )
            self.inputs = self.earlier.pop()
            self.losses.pop()
            self.step_number -= 1
            self.phase = len(PHASES) - 1
            self._compute()
            return
        self.phase += delta

    def can_go_back(self) -> bool:
        """Whether there is a phase before this one (a step restored from a URL keeps no
        earlier steps)."""
        return self.phase > 0 or bool(self.earlier)

    def frame(self) -> dict[str, Any]:
        """What the page draws: the phase, every value (exact + text), the finite
        differences, the formulas of each phase and the losses of the steps Back can return
        to (the last ``MAX_BACK``) and of this one."""
        return {
            "phase": self.phase,
            "phases": list(PHASES),
            "phase_keys": [list(k) for k in PHASE_KEYS],
            "step": self.step_number,
            "can_back": self.can_go_back(),
            "values": tutorial_values(self.step),
            "fd": {k: numbers(v, "sig") for k, v in self.fd.items()},
            "formulas": formulas(self.step, self.fd, self.error),
            "losses": [number(v, "loss") for v in [*self.losses, self.step.loss]],
            "inputs": self.inputs,
        }

    def setup(self) -> dict[str, Any]:
        """The tutorial's state as data (for the URL and the JSON export); the phase as the
        page numbers it, 1 to 6."""
        return {"inputs": self.inputs, "step": self.step_number, "phase": self.phase + 1}

    def restore(self, setup: dict[str, Any]) -> None:
        """Take the state :meth:`setup` gave (a URL's or a setup.json's), every value
        checked: a refused one raises :class:`ExplainError` naming it."""
        unknown = sorted(set(setup) - {"inputs", "step", "phase"})
        if unknown:
            raise ExplainError(
                f"unknown tutorial setup keys {unknown}; expected some of inputs, step, phase"
            )
        inputs = setup.get("inputs", {})
        if not isinstance(inputs, dict):
            raise ExplainError(
                f"inputs must be an object with some of {', '.join(EDITABLE)}; "
                f"got {short_repr(inputs)}"
            )
        self.set_inputs(inputs)
        self.phase = _phase_index(setup.get("phase", 1))
        step = setup.get("step", 1)
        # up to 2**53, the largest whole number the page's JavaScript holds exactly (a bound
        # of 10,000 refused the setups of the page's own steps past it)
        if not is_count(step, 1):
            raise ExplainError(f"step must be a whole number from 1 to {MAX_COUNT}; got "
                               f"{short_repr(step)}")  # fmt: skip
        self.step_number = step


def _phase_index(phase: Any) -> int:
    """The index of a setup's phase, numbered as the page numbers it ("Phase 1 of 6").
    Setups written before numbered them from 0: their 0, which is no phase now, is read
    as the first phase, and 1 to 5 as the phases of those numbers (docs/playground.md)."""
    if isinstance(phase, bool) or not isinstance(phase, int) or not 0 <= phase <= len(PHASES):
        raise ExplainError(
            f"phase must be a whole number from 1 to {len(PHASES)}, as the page numbers them "
            f'("Phase 1 of {len(PHASES)}"); got {short_repr(phase)}'
        )
    return max(phase - 1, 0)


def _one_minus(y: float, a: float) -> str:
    """The factor ``1 - y`` of a sigmoid's slope, ``y = sigma(a)``, as a formula shows it:
    ``1 - 0.750000``, or its value where ``y`` is within 0.01 of 1 (``1 - 1.000000`` made the
    shown factors of a saturated unit's δ multiply to 0 beside a δ of 9.1e-10), taken as
    ``sigma(-a)`` as the step takes it (``1 - y`` of a ``y`` rounded to 1 is 0)."""
    return f"1 - {fixed(y)}" if 1.0 - y >= 0.01 else sig(one_minus_sigmoid(a))


def _not_finite(s: Any) -> str:
    """The first updated weight or bias of step ``s`` that is not a finite number, as
    ``b(2)_1 = -inf`` (or ``""`` when all are finite)."""
    for name, new in (("w", s.w_new), ("u", s.u_new)):
        for i, row in enumerate(new):
            for j, v in enumerate(row):
                if not math.isfinite(v):
                    return f"{name}_{i + 1}{j + 1} = {short(v)}"
    for layer, new in ((1, s.b1_new), (2, s.b2_new)):
        for j, v in enumerate(new):
            if not math.isfinite(v):
                return f"b({layer})_{j + 1} = {short(v)}"
    return ""


def _checked(key: str, value: Any) -> Any:
    """One edited value as floats: ``eta`` a number, ``w`` and ``u`` rectangular nested
    lists, the others lists (the same checks as a ``--weights`` file's)."""
    if key == "eta":
        if not is_finite_number(value):
            raise ExplainError(
                f"η (the learning rate) must be a finite number; got {short_repr(value)}"
            )
        return float(value)
    return as_matrix(value, key) if key in ("w", "u") else as_vector(value, key)
