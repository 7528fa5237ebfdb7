"""The engine additions behind ``backprop playground``: the per-layer, per-sample trace of one
step, per-entry finite differences, and the number formatter shared with ``explain``.

Witnesses: the seed's loop-based reference (``seed_step``), the engine's own batched
gradients (``MLP.gradients``), central differences written here, and numbers by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from backprop import MLP
from backprop.formatting import fixed, loss, number, numbers, short, sig
from backprop.gradcheck import finite_difference, finite_differences
from backprop.reference import SEED_EXAMPLE, seed_step
from backprop.trace import trace_step

CASES = [
    ("sigmoid", "sigmoid", "l2", 2),
    ("tanh", "identity", "cross_entropy", 3),
    ("relu", "sigmoid", "mse", 2),
    ("gelu", "identity", "binary_cross_entropy", 2),
    ("elu", "softmax", "l2", 3),
]


def seed_model() -> MLP:
    net = MLP([2, 3, 2], seed=0)
    s = SEED_EXAMPLE
    net.load_state_dict(
        {
            "layers.0.W": np.array(s["w"]),
            "layers.0.b": np.array(s["b1"]),
            "layers.1.W": np.array(s["u"]),
            "layers.1.b": np.array(s["b2"]),
        }
    )
    return net


def test_trace_of_the_seed_network_is_the_reference_step():
    s = SEED_EXAMPLE
    step = seed_step(s["x"], s["t"], s["w"], s["b1"], s["u"], s["b2"], s["eta"])
    tr = trace_step(seed_model(), [s["x"]], [s["t"]])
    hidden, out = tr.layers
    np.testing.assert_allclose(hidden.a[0], step.a1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(hidden.y[0], step.h, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out.a[0], step.a2, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out.y[0], step.y, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out.delta[0], step.delta_out, rtol=0, atol=1e-15)
    np.testing.assert_allclose(hidden.dl_dy[0], step.dL_dh, rtol=0, atol=1e-15)
    np.testing.assert_allclose(hidden.delta[0], step.delta_hidden, rtol=0, atol=1e-15)
    assert tr.loss == pytest.approx(0.3273591340, abs=1e-10)
    g = tr.gradients()
    np.testing.assert_allclose(g["layers.0.W"], step.grad_w, rtol=0, atol=1e-15)
    np.testing.assert_allclose(g["layers.1.W"], step.grad_u, rtol=0, atol=1e-15)
    np.testing.assert_allclose(g["layers.1.b"], step.grad_b2, rtol=0, atol=1e-15)
    # one sample: its contribution is the whole gradient (c_1 = 1 / 1)
    np.testing.assert_array_equal(tr.contribution(0)["layers.0.W"], g["layers.0.W"])


@pytest.mark.parametrize(("hidden", "output", "loss_name", "k"), CASES)
def test_trace_sums_to_the_engine_gradients(hidden, output, loss_name, k):
    rng = np.random.default_rng(3)
    net = MLP([2, 5, 4, k], hidden, output, loss_name, seed=1)
    X = rng.normal(size=(7, 2))
    T = rng.integers(0, k, 7)
    s = rng.uniform(0.5, 2.0, 7)
    value, grads = net.gradients(X, T, s)
    tr = trace_step(net, X, T, s)
    assert tr.loss == pytest.approx(value, rel=1e-13)
    assert tr.sample_loss.shape == (7,) and tr.coefficient == pytest.approx(s / 7)
    summed = tr.gradients()
    for name, g in grads.items():
        np.testing.assert_allclose(summed[name], g, rtol=1e-12, atol=1e-15)
        per_sample = sum(tr.contribution(i)[name] for i in range(7))
        np.testing.assert_allclose(per_sample, g, rtol=1e-12, atol=1e-15)
    # a sample's own gradient, by central differences on its own loss l_i
    i, eps = 4, 1e-6
    own = tr.sample_gradients(i)["layers.1.W"]
    state = net.state_dict()
    W = state["layers.1.W"]
    for j, m in [(0, 0), (3, 2), (2, 1)]:
        losses = []
        for d in (eps, -eps):
            W2 = W.copy()
            W2[j, m] += d
            net.load_state_dict({**state, "layers.1.W": W2})
            losses.append(net.loss(X[i : i + 1], T[i : i + 1]))
        assert own[j, m] == pytest.approx((losses[0] - losses[1]) / (2 * eps), rel=1e-6, abs=1e-10)
    net.load_state_dict(state)
    if loss_name == "cross_entropy":
        np.testing.assert_allclose(tr.prediction.sum(axis=1), 1.0, rtol=1e-15)


def test_trace_leaves_the_model_alone():
    net = MLP([2, 4, 2], "tanh", dropout=0.5, seed=0)
    before = net.state_dict()
    rng_state = net.dropout_rng.bit_generator.state
    trace_step(net, np.ones((3, 2)), np.eye(2)[[0, 1, 0]])
    assert net.dropout_rng.bit_generator.state == rng_state
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_finite_differences_per_entry_match_the_gradients():
    net = MLP([2, 4, 3], "tanh", "identity", "cross_entropy", seed=2)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(5, 2)), rng.integers(0, 3, 5)
    before = net.state_dict()
    _, grads = net.gradients(X, T)
    fd = finite_differences(net, X, T)
    assert list(fd) == net.parameter_names()
    for name, g in grads.items():
        assert fd[name].shape == g.shape
        np.testing.assert_allclose(fd[name], g, rtol=1e-6, atol=1e-9)
    one = finite_difference(net, X, T, "layers.0.W", (1, 2))
    assert one == fd["layers.0.W"][1, 2]  # the same two evaluations, the same bits
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(ValueError, match="outside layers.0.W's shape"):
        finite_difference(net, X, T, "layers.0.W", (2, 0))
    with pytest.raises(ValueError, match="no parameter 'layers.9.W'"):
        finite_difference(net, X, T, "layers.9.W", (0, 0))


def test_finite_differences_hold_the_dropout_masks():
    net = MLP([2, 6, 2], "relu", dropout=0.4, seed=5)
    X, T = np.random.default_rng(1).normal(size=(4, 2)), np.eye(2)[[0, 1, 1, 0]]
    state = net.dropout_rng.bit_generator.state
    _, grads = net.gradients(X, T)  # draws masks from the state above
    net.dropout_rng.bit_generator.state = state
    fd = finite_differences(net, X, T)
    assert net.dropout_rng.bit_generator.state == state
    for name, g in grads.items():
        np.testing.assert_allclose(fd[name], g, rtol=1e-5, atol=1e-9)


def test_formatter_styles_by_hand():
    assert fixed(0.59326999) == "0.593270"
    assert fixed(0.000468878) == "4.688780e-04"
    assert fixed(0.0) == "0.000000"
    assert fixed(999999.25) == "999999.250000" and fixed(-1e6) == "-1.000000e+06"
    assert fixed(3.5e307) == "3.500000e+307"  # not 308 digits
    # at least 5 significant digits: 0.001540 had 4, and explain's product of two such
    # factors missed its printed value in the fourth digit
    assert fixed(0.0015401234) == "1.540123e-03" and fixed(0.0123456789) == "0.012346"
    assert sig(0.125394490) == "0.12539449"
    # eight significant digits, trailing zeros kept: '0.07439279' beside '0.00046887875'
    # read as two precisions
    assert sig(0.0743927900) == "0.074392790" and sig(0.000589475700) == "0.00058947570"
    # up to eight significant digits: 0.123456789 read 0.123457 (six)
    assert short(0.05) == "0.05" and short(0.1 + 0.2) == "0.3"
    assert short(0.123456789) == "0.12345679" and short(0.149765560625) == "0.14976556"
    # ten significant digits: ten decimals read a loss of 3.6e-14 as 0.0000000000
    assert loss(0.32735913402) == "0.3273591340" and loss(3.576154e-14) == "3.576154000e-14"
    assert loss(1.25e300) == "1.250000000e+300"
    # no bare point: 4999919685. and -69493684. read as truncated
    assert loss(4999919685.2) == "4999919685" and sig(-69493684.3) == "-69493684"
    assert sig(-0.0) == "0.0000000" and loss(-0.0) == "0.000000000"


def test_indices_past_nine_are_separated():
    """explain --weights with 11 hidden units labelled w1,11 and w11,1 both 'w111'."""
    from backprop.formatting import index

    assert index(0, 1) == "12" and index(0, 10, separated=True) == "1,11"


def test_number_carries_the_exact_value_and_an_explicit_state():
    v = 0.1 + 0.2
    msg = json.loads(json.dumps(number(v, "sig")))
    assert msg == {"v": v, "s": "0.30000000", "state": "finite"}
    assert msg["v"] == v  # the exact double survives JSON
    for bad, st in ((math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")):
        m = number(bad)
        assert m["v"] is None and m["state"] == st
        json.dumps(m, allow_nan=False)  # valid JSON: no bare NaN
    nested = numbers(np.array([[1.0, np.nan]]), "short")
    assert nested[0][0]["s"] == "1" and nested[0][1]["state"] == "nan"
