"""The loop-based reference (the seed's network, unit by unit) against the vectorised engine.

For random inputs, targets, weights, learning rates and layer sizes, the two agree on the
loss, every delta, every gradient and the updated weights to 1e-12 in float64. The engine's
deltas are read from its bias gradients: for a single sample ``dL/db_j = delta_j`` (the seed's
bias rule with input 1); its hidden outputs ``h`` come from a one-layer network holding the
first layer's weights.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from backprop import MLP
from backprop.optimizers import SGD
from backprop.reference import SEED_EXAMPLE, seed_step, sigmoid

TOL = 1e-12


def _random_case(seed: int, sizes: tuple[int, int, int] | None = None):
    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = sizes or tuple(int(v) for v in rng.integers(1, 7, size=3))
    return {
        "x": rng.normal(0, 1.5, n_in).tolist(),
        "t": rng.uniform(0, 1, n_out).tolist(),
        "w": rng.normal(0, 1.0, (n_in, n_hidden)).tolist(),
        "b1": rng.normal(0, 1.0, n_hidden).tolist(),
        "u": rng.normal(0, 1.0, (n_hidden, n_out)).tolist(),
        "b2": rng.normal(0, 1.0, n_out).tolist(),
        "eta": float(rng.uniform(0.01, 5.0)),
    }


def _engine(case) -> MLP:
    n_in, n_hidden, n_out = len(case["x"]), len(case["b1"]), len(case["b2"])
    net = MLP([n_in, n_hidden, n_out], "sigmoid", "sigmoid", "l2", seed=0)
    net.load_state_dict(
        {
            "layers.0.W": np.array(case["w"]).reshape(n_in, n_hidden),
            "layers.0.b": np.array(case["b1"]),
            "layers.1.W": np.array(case["u"]).reshape(n_hidden, n_out),
            "layers.1.b": np.array(case["b2"]),
        }
    )
    return net


def _close(actual, expected) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("seed", range(40))
def test_engine_equals_reference_on_random_networks(seed):
    sizes = (2, 3, 2) if seed < 10 else None  # the seed's Figure 1 first, then any sizes
    case = _random_case(seed, sizes)
    ref = seed_step(**case)
    net = _engine(case)
    X, T = np.array([case["x"]]), np.array([case["t"]])

    # forward: h from a one-layer network with the same w, b(1); y from the whole network
    hidden = MLP([len(case["x"]), len(case["b1"])], "sigmoid", "sigmoid", seed=0)
    hidden.load_state_dict({"layers.0.W": net.state_dict()["layers.0.W"], "layers.0.b": case["b1"]})
    h = hidden.forward(X)[0]
    _close(h, ref.h)
    _close(net.forward(X)[0], ref.y)
    _close(net.predict(X)[0], ref.y)
    assert abs(net.loss(X, T) - ref.loss) <= TOL

    loss, grads = net.gradients(X, T)
    assert abs(loss - ref.loss) <= TOL
    # deltas: for one sample dL/db(2)_j = delta_j (output) and dL/db(1)_j = delta_j (hidden)
    _close(grads["layers.1.b"], ref.delta_out)
    _close(grads["layers.0.b"], ref.delta_hidden)
    # dL/dh_j = delta_hidden_j / (h_j (1 - h_j)) recovered from the engine
    _close(grads["layers.0.b"] / (h * (1.0 - h)), ref.dL_dh)
    # weight gradients
    _close(grads["layers.1.W"], ref.grad_u)
    _close(grads["layers.0.W"], ref.grad_w)
    _close(grads["layers.1.b"], ref.grad_b2)
    _close(grads["layers.0.b"], ref.grad_b1)

    # the seed's update, u_ij <- u_ij - eta delta_j h_i, through the engine's SGD
    SGD(lr=case["eta"]).step(net.params, grads)
    after = net.state_dict()
    _close(after["layers.0.W"], ref.w_new)
    _close(after["layers.0.b"], ref.b1_new)
    _close(after["layers.1.W"], ref.u_new)
    _close(after["layers.1.b"], ref.b2_new)


@pytest.mark.parametrize("seed", range(5))
def test_batch_gradient_is_mean_of_reference_per_sample_gradients(seed):
    # L over a batch is the mean of the seed's per-sample L: the gradient is the mean too
    rng = np.random.default_rng(100 + seed)
    base = _random_case(1000 + seed)
    n_in, n_out = len(base["x"]), len(base["b2"])
    n = 7
    X = rng.normal(0, 1.5, (n, n_in))
    T = rng.uniform(0, 1, (n, n_out))
    refs = [seed_step(**{**base, "x": X[i].tolist(), "t": T[i].tolist()}) for i in range(n)]
    net = _engine(base)
    loss, grads = net.gradients(X, T)
    assert abs(loss - np.mean([r.loss for r in refs])) <= TOL
    _close(grads["layers.0.W"], np.mean([r.grad_w for r in refs], axis=0))
    _close(grads["layers.0.b"], np.mean([r.grad_b1 for r in refs], axis=0))
    _close(grads["layers.1.W"], np.mean([r.grad_u for r in refs], axis=0))
    _close(grads["layers.1.b"], np.mean([r.grad_b2 for r in refs], axis=0))


def test_train_step_is_the_seed_update():
    case = _random_case(7, (2, 3, 2))
    ref = seed_step(**case)
    net = _engine(case)
    loss = net.train_step(np.array([case["x"]]), np.array([case["t"]]), SGD(lr=case["eta"]))
    assert abs(loss - ref.loss) <= TOL  # the loss before the step
    after = net.state_dict()
    _close(after["layers.0.W"], ref.w_new)
    _close(after["layers.1.W"], ref.u_new)


def test_reference_is_the_seed_formula_for_every_weight():
    # the seed's general form:
    # dL/dw_ij = sum_k (y_k - t_k) y_k (1 - y_k) u_jk * h_j (1 - h_j) * x_i
    case = _random_case(3, (3, 4, 2))
    s = seed_step(**case)
    x, t, u, y, h = case["x"], case["t"], case["u"], s.y, s.h
    for i in range(3):
        for j in range(4):
            expected = (
                sum((y[k] - t[k]) * y[k] * (1 - y[k]) * u[j][k] for k in range(2))
                * h[j]
                * (1 - h[j])
                * x[i]
            )
            assert s.grad_w[i][j] == pytest.approx(expected, rel=1e-13, abs=1e-16)
    for i in range(4):
        for j in range(2):
            assert s.grad_u[i][j] == pytest.approx((y[j] - t[j]) * y[j] * (1 - y[j]) * h[i])


def test_reference_sigmoid_is_stable_and_exact():
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(-1000.0) == 0.0
    for a in (-30.0, -2.5, 0.0, 0.7, 30.0):
        assert sigmoid(a) == pytest.approx(1.0 / (1.0 + math.exp(-a)), rel=1e-15)
    case = _random_case(5, (2, 3, 2))
    case["x"] = [1000.0, -1000.0]
    s = seed_step(**case)
    assert all(math.isfinite(v) for v in [s.loss, *s.y, *s.h, *s.grad_b1])


def _decimal_deltas(s) -> tuple[list[float], list[float]]:
    """The deltas of step ``s`` in 600-digit decimal arithmetic from its own net inputs
    ``a(1)``, ``a(2)`` and ``dL/dh`` (a sum that may cancel, so taken as computed):
    delta_j = (y_j - t_j) y_j (1 - y_j) at the outputs, dL/dh_j h_j (1 - h_j) in the hidden
    layer, with y = sigma(a) = 1 / (1 + e^-a) as FORMULAS.md writes it (600 digits: 1 - y
    keeps its own for a up to about 1,300; these reach a few hundred)."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 600

        def sigma(a: float) -> Decimal:
            return 1 / (1 + (-Decimal(a)).exp())

        out = [
            (sigma(a) - Decimal(t)) * sigma(a) * (1 - sigma(a))
            for a, t in zip(s.a2, s.t, strict=True)
        ]
        hid = [Decimal(g) * sigma(a) * (1 - sigma(a)) for a, g in zip(s.a1, s.dL_dh, strict=True)]
        return [float(v) for v in out], [float(v) for v in hid]


@pytest.mark.parametrize("scale", [1.0, 20.0, 60.0])
def test_reference_deltas_are_exact_in_relative_terms_when_units_saturate(scale):
    """The slope y (1 - y) took 1 - y from a y already rounded: from about a = 37, where y
    rounds to 1, every delta behind that unit was 0 (8.5e-17 and less in truth), and at a = 30
    1e-3 off; ``explain --x 100,100`` printed hidden deltas of 0 beside 3.5e-26. 1 - y is now
    sigma(-a): each delta is the exact value of its formula to 1e-14 relative."""
    for seed in range(8):
        case = _random_case(seed, (2, 3, 2))
        for key in ("w", "u"):  # larger weights saturate the units, either way
            case[key] = (np.asarray(case[key]) * scale).tolist()
        s = seed_step(**case)
        out, hid = _decimal_deltas(s)
        np.testing.assert_allclose(s.delta_out, out, rtol=1e-14, atol=0)
        np.testing.assert_allclose(s.delta_hidden, hid, rtol=1e-14, atol=0)
    s = seed_step(**{**_random_case(0, (2, 3, 2)), "x": [100.0, 100.0]})
    assert all(d != 0 for d in s.delta_hidden)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"b1": [0.35, 0.35]}, "b1 has 2 values but w has 3 columns (hidden units)"),
        ({"x": [0.05]}, "x has 1 value but w has 2 rows (one per input)"),
        ({"b2": [0.6]}, "b2 has 1 value but u has 2 columns (outputs)"),
        ({"t": [0.01, 0.99, 0.5]}, "t has 3 values but the network has 2 outputs"),
        ({"w": [[0.15, 0.2], [0.25, 0.3], [0.35, 0.4]]}, "is w transposed?"),
        ({"u": [[0.4, 0.45, 0.5], [0.5, 0.55, 0.6]]}, "is u transposed?"),
        ({"u": [[0.4, 0.5], [0.45], [0.5, 0.6]]}, "u must be a rectangular nested list"),
    ],
)
def test_seed_step_refuses_sizes_that_make_no_network(change, message):
    """seed_step took its sizes from x, b1 and b2 alone: b1 of 2 values gave the loss of a
    2-hidden-unit network, x of 1 value ignored w's second row, t of 3 values its third, and
    a transposed w or u ended in a bare IndexError. It now says what disagrees, in one line."""
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        seed_step(**{**SEED_EXAMPLE, **change})
    assert "\n" not in str(caught.value)


def test_the_factors_are_the_deltas_factors():
    """dL_dy, dy_da2, dh_da1: the factors ``explain`` prints (and ``--json`` holds) beside
    each delta, computed as the deltas compute them."""
    s = seed_step(**_random_case(11, (3, 4, 2)))
    y, h = np.array(s.y), np.array(s.h)
    _close(s.dL_dy, y - np.array(s.t))
    _close(s.dy_da2, y * (1 - y))
    _close(s.dh_da1, h * (1 - h))
    _close(np.multiply(s.dL_dy, s.dy_da2), s.delta_out)
    _close(np.multiply(s.dL_dh, s.dh_da1), s.delta_hidden)
    assert "dL_dy" not in s.to_dict()  # the fields alone, as the playground shows them
