"""``backprop explain``: one backprop step of the seed's network, in the seed's notation.

The numbers come from :func:`backprop.reference.seed_step`, the loop-based network that
follows the seed line by line. Beside each gradient this module prints a finite-difference
estimate computed independently: every weight and bias is nudged by ``+-eps`` and the
reference network's loss ``L = 1/2 sum_j (y_j - t_j)^2`` is evaluated again,
``dL/dp ~ (L(p + eps) - L(p - eps)) / (2 eps)``. The two columns agree to about 1e-11 (the
estimate's own truncation and rounding errors, near 1e-12 for the seed's numbers) when the
chain rule in the reference is right.

Every number is printed from its exact value, rounded (:mod:`backprop.formatting`:
activations to 6 decimals, or 7 significant digits below 0.01; gradients and the weights
before and after the update to 8 significant digits, the loss to 10; given numbers to at
most 8): a product of printed factors agrees with the printed product to about 5
significant digits. ``--json`` holds every number of the tables exactly: the step's fields
(:class:`~backprop.reference.SeedStep`), the factors ``dL_dy`` (y_j - t_j), ``dy_da2``
(y_j (1 - y_j)) and ``dh_da1`` (h_j (1 - h_j)), and ``loss_after_update``.

Notation (as in the seed, indices 1-based on screen, 0-based in code):
``a(1) = x w + b(1)``, ``h = sigma(a(1))``, ``a(2) = h u + b(2)``, ``y = sigma(a(2))``;
``w_ij`` connects input i to hidden unit j, ``u_ij`` connects hidden unit i to output j.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ...formatting import fixed as _f
from ...formatting import index as _ij
from ...formatting import loss as _loss
from ...formatting import plural
from ...formatting import short as _s
from ...formatting import sig as _g
from ...reference import SEED_EXAMPLE, SeedStep, one_minus_sigmoid
from ...tutorial import (
    FD_EPS,
    MAX_STEPS,
    WEIGHT_KEYS,
    EstimateError,
    ExplainError,
    check_shapes,
    estimate_error,
    example_inputs,
    finite_difference_gradients,
    load_weights,
    losses_after_update,
    parse_vector,
    run_steps,
    step_json,
)
from ..app import UserError, cli, make_console, require_stdout
from ..options import FilePath, FiniteFloat, IntegerRange
from ..render import WIDTH, fits, paragraph

__all__ = [
    "explain",
    "FD_EPS",
    "check_shapes",
    "WEIGHT_KEYS",
    "ExplainError",
    "example_inputs",
    "finite_difference_gradients",
    "load_weights",
    "parse_vector",
    "run_steps",
    "render_step",
    "render_steps_table",
]


# ------------------------------------------------------------------------ rendering
def _table(title: str, *columns: str) -> Table:
    """A compact table; its title is printed above it by :func:`_spaced` so it never wraps
    into the table's width."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.caption = title  # carried to _spaced, which prints it as a heading
    for c in columns:
        table.add_column(c, justify="right", overflow="fold")  # wrapped, never cut with …
    return table


def _gradient_tables(
    grad_title: str, update_title: str, p: str, factors: Sequence[str], rows: Sequence[tuple]
) -> list[Table]:
    """Each parameter's gradient (its factors, the product, the finite difference) and its
    update (``p <- p - eta dL/dp``), as one table, or as two when one would not fit in
    :data:`WIDTH` columns (long numbers: ``-5.8019410e-05``): no cell is ever cut short.

    ``rows``: ``(label, factor texts, gradient, finite difference, old p, new p)``."""
    grad_cols = [p, *factors, f"∂L/∂{p}", "finite diff."]
    full = _table(f"{grad_title}   and {update_title}", *grad_cols, f"old {p}", f"new {p}")
    for label, values, g, fd, old, new in rows:
        full.add_row(label, *values, g, fd, old, new)
    if fits(full, WIDTH):
        return [full]
    grad = _table(grad_title, *grad_cols)
    update = _table(update_title, p, f"old {p}", f"∂L/∂{p}", f"new {p}")
    for label, values, g, fd, old, new in rows:
        grad.add_row(label, *values, g, fd)
        update.add_row(label, old, g, new)
    return [grad, update]


def _weight_tables(
    p: str,
    x: str,
    inputs: Sequence[str],
    deltas: Sequence[float],
    grad: Any,
    fd: Any,
    old: Any,
    new: Any,
    wide: bool,
) -> list[Table]:
    """``dL/dp_ij = delta_j x_i`` for a weight matrix ``p`` whose layer takes ``x`` (the
    printed ``inputs``), beside each finite difference, and the update of each weight (old
    and new in one style: ``-0.6204749`` stood beside ``-0.61997973``)."""
    rows = [
        (
            f"{p}{_ij(i, j, separated=wide)}",
            [inputs[i], _g(deltas[j])],
            _g(grad[i][j]),
            _g(fd[i][j]),
            _g(old[i][j]),
            _g(new[i][j]),
        )
        for i in range(len(inputs))
        for j in range(len(deltas))
    ]
    return _gradient_tables(
        f"∂L/∂{p}_ij = δ_j {x}_i",
        f"the update {p}_ij ← {p}_ij - η ∂L/∂{p}_ij",
        f"{p}_ij",
        (f"{x}_i", "δ_j"),
        rows,
    )


def _bias_tables(layer: int, grad: list, fd: list, old: list, new: list) -> list[Table]:
    """``dL/db(layer)_j = delta_j`` beside its finite difference, and the update of each bias."""
    b = f"b({layer})"
    rows = [(f"{b}{j + 1}", [], _g(grad[j]), _g(fd[j]), _g(old[j]), _g(new[j]))
            for j in range(len(grad))]  # fmt: skip
    return _gradient_tables(f"∂L/∂{b}_j = δ_j", f"{b}_j ← {b}_j - η ∂L/∂{b}_j", f"{b}_j", (),
                            rows)  # fmt: skip


def render_step(step: SeedStep, fd: dict[str, Any]) -> Group:
    """Every number of one step as rich renderables: forward pass, loss, output deltas,
    ``dL/du_ij = delta_j h_i``, ``dL/dh_j = sum_k delta_k u_jk``, hidden deltas,
    ``dL/dw_ij = delta_j x_i``, the bias gradients and every updated weight, with the
    finite-difference estimate ``fd`` (from :func:`finite_difference_gradients`) beside
    each gradient (and :func:`backprop.tutorial.estimate_error`, how far it is off itself)."""
    n_in, n_hidden, n_out = len(step.x), len(step.h), len(step.y)
    shape = f"{n_in}-{n_hidden}-{n_out}"
    wide = max(n_in, n_hidden, n_out) > 9  # indices past 9: w1,11 rather than w111
    network = (
        "the tutorial's 2-3-2 network"
        if all(getattr(step, k) == SEED_EXAMPLE[k] for k in ("w", "b1", "u", "b2"))
        else f"a {shape} network from --weights"
    )
    parts: list[Any] = [
        Text(
            paragraph(
                f"One backprop step of {network} (sigmoid units, L2 loss), "
                f"learning rate η = {_s(step.eta)}"
                + (
                    "; its formulas, with this project's numbers (the tutorial gives none)"
                    if network.startswith("the tutorial's")
                    else ""
                )
            ),
            style="bold",
        ),
        Text(
            paragraph(
                "x = (" + ", ".join(_s(v) for v in step.x) + ")    "
                "t = (" + ", ".join(_s(v) for v in step.t) + ")"
            )
        ),
        Text(
            paragraph(
                "Each number is its exact value rounded for print (activations to 6 decimals, "
                "or 7 digits below 0.01; gradients and the weights, old and new, to 8 "
                "significant digits, the loss to 10; given numbers to at most 8): products of "
                "printed factors agree with the printed products to about 5 digits; --json has "
                "every number of the tables exactly."
            )
        ),
        Text(""),
    ]

    hidden = _table("Forward, hidden layer: a(1)_j = Σ_i x_i w_ij + b(1)_j,  h_j = σ(a(1)_j)",
                    "j", "a(1)_j", "h_j")  # fmt: skip
    for j in range(n_hidden):
        hidden.add_row(str(j + 1), _f(step.a1[j]), _f(step.h[j]))
    output = _table("Forward, output layer: a(2)_j = Σ_i h_i u_ij + b(2)_j,  y_j = σ(a(2)_j)",
                    "j", "a(2)_j", "y_j", "t_j")  # fmt: skip
    for j in range(n_out):
        output.add_row(str(j + 1), _f(step.a2[j]), _f(step.y[j]), _s(step.t[j]))
    parts += [
        hidden,
        output,
        Text(f"L = 1/2 Σ_j (y_j - t_j)² = {_loss(step.loss)}", style="bold"),
        Text(""),
    ]

    delta = _table("Output deltas: δ_j = (y_j - t_j) y_j (1 - y_j)",
                   "j", "y_j - t_j", "y_j (1 - y_j)", "δ_j")  # fmt: skip
    for j, (dl_dy, slope) in enumerate(zip(step.dL_dy, step.dy_da2, strict=True)):
        delta.add_row(str(j + 1), _f(dl_dy), _f(slope), _g(step.delta_out[j]))
    parts += [delta, *_near_one("y", "a(2)", step.y, step.a2)]

    parts += _weight_tables("u", "h", [_f(v) for v in step.h], step.delta_out, step.grad_u,
                            fd["grad_u"], step.u, step.u_new, wide)  # fmt: skip
    parts += _bias_tables(2, step.grad_b2, fd["grad_b2"], step.b2, step.b2_new)

    dh = _table("Hidden units have no target: ∂L/∂h_j = Σ_k δ_k u_jk, over every output k, "
                "with the old u_jk", "j", "Σ_k δ_k u_jk", "∂L/∂h_j")  # fmt: skip
    for j in range(n_hidden):
        terms = " + ".join(f"({_g(step.delta_out[k])})({_s(step.u[j][k])})" for k in range(n_out))
        dh.add_row(str(j + 1), terms, _g(step.dL_dh[j]))
    parts.append(dh)

    dhid = _table("Hidden deltas: δ_j = ∂L/∂h_j h_j (1 - h_j)",
                  "j", "∂L/∂h_j", "h_j (1 - h_j)", "δ_j")  # fmt: skip
    for j, slope in enumerate(step.dh_da1):
        dhid.add_row(str(j + 1), _g(step.dL_dh[j]), _f(slope), _g(step.delta_hidden[j]))
    parts += [dhid, *_near_one("h", "a(1)", step.h, step.a1)]

    parts += _weight_tables("w", "x", [_s(v) for v in step.x], step.delta_hidden, step.grad_w,
                            fd["grad_w"], step.w, step.w_new, wide)  # fmt: skip
    parts += _bias_tables(1, step.grad_b1, fd["grad_b1"], step.b1, step.b1_new)
    error = estimate_error(step, fd)
    parts.append(
        Text(
            paragraph(
                f"Finite differences: central, ε = {_s(FD_EPS)}, on the reference network's "
                f"loss; largest |∂L/∂p - estimate| = {error.gap:.1e}. The "
                f"estimate is itself off by about ε_machine L / ε = {error.rounding:.1e} "
                f"from rounding, and by about {error.truncation:.1e} from its terms in ε² (a "
                f"third of its gap to the estimate with 2ε, whose rounding it holds too)"
                f"{_too_coarse(error)}."
            )
        )
    )
    return Group(*_spaced(parts))


#: Below this, ``1 - v`` from ``v`` printed to 6 decimals is off in its third digit or more.
NEAR_ONE = 5e-4


def _near_one(v: str, a: str, values: Sequence[float], a_values: Sequence[float]) -> list[Text]:
    """A note under a slope column ``v (1 - v)`` where a unit ``v`` is so near 1 that one
    minus its printed value loses the digits of ``1 - v`` (``h = 1.000000`` stood beside
    ``h (1 - h) = 1.77e-46``, which ``1 - 1.000000`` gives as 0 by hand): the code takes
    ``1 - v`` as ``sigma(-a)``, never from a rounded ``v``."""
    names = [f"{v}_{j + 1}" for j, a_j in enumerate(a_values)
             if 0 < one_minus_sigmoid(a_j) < NEAR_ONE]  # fmt: skip
    if not names:
        return []
    return [
        Text(
            paragraph(
                f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} near 1: 1 - {v}_j is "
                f"computed as σ(-{a}_j), not from the printed {v}_j (1 - 1.000000 = 0)."
            )
        ),
        Text(""),
    ]


def _spaced(parts: list[Any]) -> list[Any]:
    """Each table preceded by its title as a bold heading line."""
    out: list[Any] = []
    for p in parts:
        if isinstance(p, Table):
            out.append(Text(paragraph(str(p.caption)), style="bold"))
            p.caption = None
            out += [p, Text("")]
        else:
            out.append(p)
    return out


def _too_coarse(error: EstimateError) -> str:
    """A warning when the estimate's own error (rounding and ε² terms) is past 1% of the
    largest gradient (targets of 1000: L near 1e6): then the estimate, not the gradient,
    fails to match."""
    if error.can_check:
        return ""
    return ": here over 1% of the largest gradient, so the estimate cannot check these gradients"


def render_steps_table(steps: Sequence[SeedStep]) -> Table:
    """One row per step: the loss before the step's update and the outputs y_j; the title
    says whether the loss fell at every step (with η = 0, or too large, it does not)."""
    n_out = len(steps[0].y)
    rows, fell = [], True
    for k, (s, after) in enumerate(zip(steps, losses_after_update(steps), strict=True)):
        fell = fell and after < s.loss
        rows.append((str(k + 1), _loss(s.loss), *[_f(y) for y in s.y], _loss(after)))
    how = "the loss falls at every step" if fell else "the loss does not fall at every step"
    title = f"{len(steps)} successive steps on the same sample ({how})"
    table = _table(title, "step", "L", *[f"y_{j + 1}" for j in range(n_out)], "L after update")
    for row in rows:
        table.add_row(*row)
    if fits(table, WIDTH):
        return table
    # too many outputs for 80 columns (5 or more): the losses alone; the outputs in --json
    table = _table(f"{title}; the outputs y_j: --json", "step", "L", "L after update")
    for row in rows:
        table.add_row(row[0], row[1], row[-1])
    return table


#: The letters the step's text is written with (the seed's notation).
LETTERS = "ηδσΣ∂←²ε…"


def _check_the_letters_print() -> None:
    """One clear line where standard output cannot print the seed's letters (``LC_ALL=C``:
    an ASCII stream; the error was Python's ''ascii' codec can't encode character')."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        LETTERS.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        raise UserError(
            f"standard output's encoding is {encoding}, which cannot print the step's letters "
            "(eta, delta, sigma, the partial derivative sign...); set a UTF-8 locale or "
            "PYTHONIOENCODING=utf-8, or use --json"
        ) from None


def print_explanation(steps: Sequence[SeedStep], console: Console) -> None:
    """The first step in full (with finite differences), then one row per step if several."""
    first = steps[0]
    console.print(render_step(first, finite_difference_gradients(first)))
    if len(steps) > 1:
        console.print(Group(*_spaced([render_steps_table(steps)])))


# ------------------------------------------------------------------------ the command
class _NamedRange:
    """A range that help and errors write with the option's own name (``[eta >= 0]``,
    ``-1.0 is below 0 (eta >= 0)``), not click's ``x`` (``[x>=0.0]``, ``-1.0 is not in the
    range x>=0.0``), which read as the tutorial's input x. Mixed into a range type of
    :mod:`backprop.cli.options`: ``parse``, that type without bounds, reads the value, and
    the bounds are checked here."""

    def __init__(self, var: str, parse: click.ParamType, **bounds: Any) -> None:
        super().__init__(**bounds)
        self.var = var
        self.parse = parse

    def _describe_range(self) -> str:
        if self.max is None:
            return f"{self.var} >= {_s(self.min)}"
        return f"{_s(self.min)} <= {self.var} <= {_s(self.max)}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = self.parse.convert(value, param, ctx)
        if self.min is not None and rv < self.min:
            self.fail(f"{rv} is below {_s(self.min)} ({self._describe_range()})", param, ctx)
        if self.max is not None and rv > self.max:
            self.fail(f"{rv} is above {_s(self.max)} ({self._describe_range()})", param, ctx)
        return rv


class _EtaRange(_NamedRange, FiniteFloat):
    """``--eta``: a finite float, at least 0."""


class _StepsRange(_NamedRange, IntegerRange):
    """``--steps``: an integer from 1 to :data:`MAX_STEPS`."""


@cli.command(short_help="One backprop step of the tutorial's network, every number.")
@click.option("--x", "x_text", metavar="X1,X2", help="Inputs. [default: 0.05,0.10]")
@click.option("--t", "t_text", metavar="T1,T2", help="Targets. [default: 0.01,0.99]")
@click.option(
    "--eta", type=_EtaRange("eta", FiniteFloat(), min=0.0), help="Learning rate. [default: 0.5]"
)
@click.option(
    "--weights",
    type=FilePath(),
    metavar="FILE.json",
    help="JSON with keys w, b1, u, b2 (nested lists; w[i][j] joins input i to hidden unit j); "
    f"the default weights are {json.dumps({k: SEED_EXAMPLE[k] for k in WEIGHT_KEYS})}. Any "
    "sizes of one hidden layer (a 3-2-1 network too), with --x and --t of its sizes: the "
    "default x and t are the tutorial's, for its 2-3-2 network.",
)
@click.option(
    "--steps",
    type=_StepsRange("steps", IntegerRange(), min=1, max=MAX_STEPS),
    default=1,
    show_default=True,
    help=f"Successive steps to take (at most {MAX_STEPS}).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the step as one JSON object (a list for --steps > 1).",
)
def explain(
    x_text: str | None,
    t_text: str | None,
    eta: float | None,
    weights: Path | None,
    steps: int,
    as_json: bool,
) -> int:
    """Print one full backprop step of the tutorial's 2-3-2 network, every number shown.

    Forward pass a(1), h, a(2), y and the loss L; the output deltas; dL/du_ij = delta_j h_i;
    dL/dh_j as the sum over outputs; the hidden deltas; dL/dw_ij = delta_j x_i; the bias
    gradients; every updated weight; and beside each gradient its finite-difference
    estimate. Defaults: x = 0.05,0.10, t = 0.01,0.99, eta = 0.5 and the weights under
    --weights, this project's numbers (the tutorial gives formulas, not numbers). With
    --steps N, the first step in full, then one line per step (--json has every step's
    numbers, the final weights too).

    \b
    Examples:
      backprop explain
      backprop explain --x 0.05,0.10 --t 0.01,0.99 --eta 0.5 --steps 5
      backprop explain --weights my_weights.json --json
    """
    require_stdout("the step would be lost; leave it open, or send it to a file")
    p = example_inputs()
    if x_text is not None:
        p["x"] = parse_vector(x_text, "--x")
    if t_text is not None:
        p["t"] = parse_vector(t_text, "--t")
    if eta is not None:
        p["eta"] = eta
    if weights is not None:
        p.update(load_weights(weights))
    try:
        seed_steps = run_steps(p["x"], p["t"], p["w"], p["b1"], p["u"], p["b2"], p["eta"], steps)
    except ExplainError as e:
        raise ExplainError(f"{e}{_whose_sizes(p, x_text, t_text, weights)}") from None
    if as_json:
        after = losses_after_update(seed_steps)
        objs = [step_json(s, a) for s, a in zip(seed_steps, after, strict=True)]
        # the first step's finite differences, as the text shows them (every step's would
        # cost 2 x parameters forward passes each)
        objs[0]["finite_difference"] = finite_difference_gradients(seed_steps[0])
        click.echo(json.dumps(objs[0] if steps == 1 else objs))
        return 0
    _check_the_letters_print()
    console = make_console()
    # the tables are laid out for 80 columns everywhere (split where they would not fit);
    # a narrower terminal wraps the lines rather than rich cutting numbers with …
    console.width = WIDTH
    print_explanation(seed_steps, console)
    return 0


def _whose_sizes(
    p: dict[str, Any], x_text: str | None, t_text: str | None, weights: Path | None
) -> str:
    """What to add to a size mismatch where some numbers were defaults the learner never
    gave: '--x 1,2,3' said only 'x has 3 values but w has 2 rows', and a 3-2-1 network
    from --weights 'x has 2 values but w has 3 rows' of an x it was never given."""
    try:
        n_in, n_hidden, n_out = len(p["w"]), len(p["w"][0]), len(p["u"][0])
    except (TypeError, IndexError):  # w or u not a matrix: the error says so already
        return ""
    if weights is None:
        if len(p["x"]) == n_in and len(p["t"]) == n_out:
            return ""
        return (
            "; these are the tutorial's weights, of its 2-3-2 network: another network's "
            "come from --weights FILE.json (w, b1, u, b2)"
        )
    defaulted = [(name, n) for name, text, n in (("x", x_text, n_in), ("t", t_text, n_out))
                 if text is None and len(p[name]) != n]  # fmt: skip
    if not defaulted:
        return ""
    names = " and ".join(name for name, _ in defaulted)
    values = ", ".join(f"{name} = {','.join(_s(v) for v in SEED_EXAMPLE[name])}"
                       for name, _ in defaulted)  # fmt: skip
    needed = " and ".join(f"--{name} with {plural(n, 'value')}" for name, n in defaulted)
    return (
        f"; without {' and '.join('--' + name for name, _ in defaulted)}, {names} "
        f"{'is the default' if len(defaulted) == 1 else 'are the defaults'}, the tutorial's "
        f"({values}) for its 2-3-2 network: give this {n_in}-{n_hidden}-{n_out} network "
        f"{needed}"
    )
