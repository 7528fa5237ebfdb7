"""The seed's network (its Figure 1), written as loops over units in the seed's notation.

This is the readable truth: the vectorised engine is tested against it, and
``backprop explain`` prints it. Inputs ``x1, x2``; hidden units ``h1, h2, h3``; outputs
``y1, y2``; weights ``w`` (input -> hidden, ``w[i][j]`` connects input i to hidden unit j)
and ``u`` (hidden -> output, ``u[i][j]`` connects hidden unit i to output j); biases
``b1`` = b(1) and ``b2`` = b(2); sigmoid activations; L2 loss ``L = 1/2 sum_j (y_j - t_j)^2``.

It works for any numbers of inputs, hidden units and outputs (one hidden layer), with plain
Python floats and lists, one sample at a time, and is deliberately slow: every line below is
one line of the seed. Indices are 0-based in code (the seed's ``u11`` is ``u[0][0]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ._validation import short_repr
from .formatting import plural

__all__ = [
    "SeedStep", "sigmoid", "one_minus_sigmoid", "check_rectangular", "check_shapes", "seed_step",
    "SEED_EXAMPLE",
]  # fmt: skip

Vector = list[float]
Matrix = list[list[float]]


def sigmoid(a: float) -> float:
    """``sigma(a) = 1 / (1 + e^-a)``, evaluated without overflow for any ``a``."""
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)  # for a < 0, 1 / (1 + e^-a) = e^a / (1 + e^a)
    return e / (1.0 + e)


def one_minus_sigmoid(a: float) -> float:
    """``1 - sigma(a)``, evaluated as ``sigma(-a)``: the factor ``1 - y`` of the slope
    ``sigma'(a) = y (1 - y)``. Subtracted from a rounded ``y`` it keeps none of its digits
    once ``y`` rounds to 1 (``a`` from about 37: a slope of 0 where it is 8.5e-17; 1e-3
    off at ``a = 30``); ``sigma(-a)`` keeps them all."""
    return sigmoid(-a)


@dataclass(frozen=True)
class SeedStep:
    """Every number of one backprop step of the seed's network (one sample).

    The field names are keys of ``backprop explain --json``; so are the names of the
    factors ``dL_dy``, ``dy_da2`` and ``dh_da1`` below, which its tables print.
    """

    x: Vector
    t: Vector
    eta: float
    w: Matrix
    b1: Vector
    u: Matrix
    b2: Vector
    a1: Vector  # a(1) = x w + b(1)
    h: Vector  # h = sigma(a(1))
    a2: Vector  # a(2) = h u + b(2)
    y: Vector  # y = sigma(a(2))
    loss: float  # L = 1/2 sum_j (y_j - t_j)^2
    delta_out: Vector  # delta_j = (y_j - t_j) y_j (1 - y_j)
    grad_u: Matrix  # dL/du_ij = delta_j h_i
    grad_b2: Vector  # dL/db(2)_j = delta_j
    dL_dh: Vector  # dL/dh_j = sum_k delta_k u_jk
    delta_hidden: Vector  # delta_j = dL/dh_j h_j (1 - h_j)
    grad_w: Matrix  # dL/dw_ij = delta_j x_i
    grad_b1: Vector  # dL/db(1)_j = delta_j
    w_new: Matrix  # w_ij <- w_ij - eta dL/dw_ij
    b1_new: Vector
    u_new: Matrix  # u_ij <- u_ij - eta delta_j h_i
    b2_new: Vector

    def to_dict(self) -> dict:
        """The fields (not the factors below) as a dict of lists and floats."""
        return asdict(self)

    @property
    def dL_dy(self) -> Vector:
        """``dL/dy_j = y_j - t_j``, the first factor of the output delta."""
        return [y - t for y, t in zip(self.y, self.t, strict=True)]

    @property
    def dy_da2(self) -> Vector:
        """``dy_j/da(2)_j = y_j (1 - y_j)``, with ``1 - y_j`` as ``sigma(-a(2)_j)``."""
        return [y * one_minus_sigmoid(a) for y, a in zip(self.y, self.a2, strict=True)]

    @property
    def dh_da1(self) -> Vector:
        """``dh_j/da(1)_j = h_j (1 - h_j)``, with ``1 - h_j`` as ``sigma(-a(1)_j)``."""
        return [h * one_minus_sigmoid(a) for h, a in zip(self.h, self.a1, strict=True)]


def check_rectangular(rows: Any, name: str) -> None:
    """Raise ValueError unless ``rows`` is a non-empty list of rows of one non-zero length."""
    try:
        lengths = [len(r) for r in rows]
    except TypeError:
        raise ValueError(
            f"{name} must be a nested list of numbers; got {short_repr(rows)}"
        ) from None
    if len(set(lengths)) != 1 or not lengths[0]:
        raise ValueError(f"{name} must be a rectangular nested list; got row lengths {lengths}")


def check_shapes(x: Sequence[float], t: Sequence[float], w: Any, b1: Any, u: Any, b2: Any) -> None:
    """Raise ValueError, one line naming every mismatch, unless the numbers make one
    1-hidden-layer network: ``w`` of ``len(x)`` rows and ``len(b1)`` columns, ``u`` of
    ``len(b1)`` rows and ``len(b2)`` columns, ``len(t) == len(b2)``."""
    check_rectangular(w, "w")
    check_rectangular(u, "u")
    n_in, n_hidden, n_out = len(w), len(w[0]), len(u[0])
    problems = []
    if len(x) != n_in:
        problems.append(
            f"x has {plural(len(x), 'value')} but w has {plural(n_in, 'row')} (one per input)"
        )
    if len(b1) != n_hidden:
        problems.append(
            f"b1 has {plural(len(b1), 'value')} but w has {plural(n_hidden, 'column')} "
            "(hidden units)"
        )
    if len(u) != n_hidden:
        problems.append(
            f"u has {plural(len(u), 'row')} but there are {plural(n_hidden, 'hidden unit')}"
        )
    if len(b2) != n_out:
        problems.append(
            f"b2 has {plural(len(b2), 'value')} but u has {plural(n_out, 'column')} (outputs)"
        )
    if len(t) != n_out:
        problems.append(
            f"t has {plural(len(t), 'value')} but the network has {plural(n_out, 'output')}"
        )
    if problems:
        # rows and columns swapped: the shapes of b1, b2 and x say which way they should be
        if len(w) == len(b1) and len(w[0]) == len(x) and len(w) != len(x):
            problems.append("is w transposed? w[i][j] joins input i to hidden unit j")
        if len(u) == len(b2) and len(u[0]) == len(b1) and len(u) != len(b1):
            problems.append("is u transposed? u[i][j] joins hidden unit i to output j")
        raise ValueError("; ".join(problems))


def seed_step(
    x: Vector, t: Vector, w: Matrix, b1: Vector, u: Matrix, b2: Vector, eta: float
) -> SeedStep:
    """One forward pass, backward pass and gradient-descent update, unit by unit.

    Parameters
    ----------
    x : list of float, length n_in          the inputs x_i
    t : list of float, length n_out         the targets t_j
    w : n_in x n_hidden nested list          w[i][j]: input i -> hidden unit j
    b1 : list of float, length n_hidden      b(1)
    u : n_hidden x n_out nested list         u[i][j]: hidden unit i -> output j
    b2 : list of float, length n_out         b(2)
    eta : float                              the learning rate

    Raises
    ------
    ValueError
        When the sizes do not make one network (:func:`check_shapes`): the loops below take
        them from ``x``, ``b1`` and ``b2``, and would otherwise compute another network
        without a word, or fail with a bare IndexError.
    """
    check_shapes(x, t, w, b1, u, b2)
    n_in, n_hidden, n_out = len(x), len(b1), len(b2)

    # ---- forward: a(1) = x w + b(1), h = sigma(a(1)), a(2) = h u + b(2), y = sigma(a(2))
    a1 = [b1[j] + sum(x[i] * w[i][j] for i in range(n_in)) for j in range(n_hidden)]
    h = [sigmoid(a1[j]) for j in range(n_hidden)]
    a2 = [b2[j] + sum(h[i] * u[i][j] for i in range(n_hidden)) for j in range(n_out)]
    y = [sigmoid(a2[j]) for j in range(n_out)]

    # ---- L2-norm loss: L = 1/2 sum_j (y_j - t_j)^2
    loss = 0.5 * sum((y[j] - t[j]) ** 2 for j in range(n_out))

    # ---- output layer: delta_j = dL/dy_j * dy_j/da(2)_j = (y_j - t_j) y_j (1 - y_j)
    delta_out = [(y[j] - t[j]) * y[j] * one_minus_sigmoid(a2[j]) for j in range(n_out)]
    # dL/du_ij = delta_j h_i;  dL/db(2)_j = delta_j
    grad_u = [[delta_out[j] * h[i] for j in range(n_out)] for i in range(n_hidden)]
    grad_b2 = list(delta_out)

    # ---- hidden layer: no target, so dL/dh_j sums over every output k that h_j feeds:
    # dL/dh_j = sum_k (y_k - t_k) y_k (1 - y_k) u_jk = sum_k delta_k u_jk
    dL_dh = [sum(delta_out[k] * u[j][k] for k in range(n_out)) for j in range(n_hidden)]
    # delta_j = dL/dh_j * dh_j/da(1)_j = dL/dh_j h_j (1 - h_j)
    delta_hidden = [dL_dh[j] * h[j] * one_minus_sigmoid(a1[j]) for j in range(n_hidden)]
    # dL/dw_ij = dL/dh_j h_j (1 - h_j) x_i = delta_j x_i;  dL/db(1)_j = delta_j
    grad_w = [[delta_hidden[j] * x[i] for j in range(n_hidden)] for i in range(n_in)]
    grad_b1 = list(delta_hidden)

    # ---- update: u_ij <- u_ij - eta delta_j h_i, and likewise every weight and bias
    u_new = [[u[i][j] - eta * grad_u[i][j] for j in range(n_out)] for i in range(n_hidden)]
    b2_new = [b2[j] - eta * grad_b2[j] for j in range(n_out)]
    w_new = [[w[i][j] - eta * grad_w[i][j] for j in range(n_hidden)] for i in range(n_in)]
    b1_new = [b1[j] - eta * grad_b1[j] for j in range(n_hidden)]

    return SeedStep(
        x=list(x), t=list(t), eta=eta, w=[list(r) for r in w], b1=list(b1),
        u=[list(r) for r in u], b2=list(b2), a1=a1, h=h, a2=a2, y=y, loss=loss,
        delta_out=delta_out, grad_u=grad_u, grad_b2=grad_b2, dL_dh=dL_dh,
        delta_hidden=delta_hidden, grad_w=grad_w, grad_b1=grad_b1, w_new=w_new,
        b1_new=b1_new, u_new=u_new, b2_new=b2_new,
    )  # fmt: skip


#: The fixed example that ``backprop explain`` uses by default: small, round numbers that a
#: learner can follow by hand (inputs and targets in the style of the classic worked example).
SEED_EXAMPLE: dict = {
    "x": [0.05, 0.10],
    "t": [0.01, 0.99],
    "eta": 0.5,
    "w": [[0.15, 0.25, 0.35], [0.20, 0.30, 0.40]],
    "b1": [0.35, 0.35, 0.35],
    "u": [[0.40, 0.50], [0.45, 0.55], [0.50, 0.60]],
    "b2": [0.60, 0.60],
}
