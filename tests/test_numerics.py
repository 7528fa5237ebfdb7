"""Exact numerics where it is cheap to have them: the sigmoid in relative terms for every
input in both dtypes (and softplus' derivative, which is the sigmoid), probabilities that
are never NaN and log-probabilities that stay finite wherever they are representable.

The reference values are computed with :mod:`decimal` at 40 digits, independent of NumPy.
pytest turns warnings into errors, and the value checks also run under
``np.errstate(over=, invalid=, divide="raise")``: an overflow, a NaN or a division by zero
fails them (underflow to a subnormal or to 0 is the right answer far out, not an error).
"""

from __future__ import annotations

import decimal
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop import ACTIVATIONS, MLP, gradcheck
from backprop.activations import log_sigmoid, log_softmax, sigmoid
from backprop.backend import get_backend
from backprop.gradcheck import ROUNDING

decimal.getcontext().prec = 40
EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}
# The smallest input whose sigmoid is a normal number (below it the result is subnormal and
# only absolutely accurate), per dtype: log of the smallest normal.
NORMAL_FROM = {"float32": -87.0, "float64": -708.0}


def _exact_sigmoid(a: float) -> float:
    """1 / (1 + e^-a) at 40 digits, rounded once to float64."""
    return float(1 / (1 + decimal.Decimal(-a).exp()))


def _grid(dtype: str) -> np.ndarray:
    lo = NORMAL_FROM[dtype]
    a = np.concatenate([np.linspace(lo, 40.0, 4001), [-30.0, -20.0, -8.5, -1e-8, 0.0, 1e-8]])
    return a.astype(dtype)


def _max_rel_error(y: np.ndarray, a: np.ndarray) -> float:
    exact = np.array([_exact_sigmoid(float(v)) for v in a])
    return float(np.max(np.abs(y.astype(np.float64) - exact) / exact))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_is_exact_in_relative_terms(dtype):
    """Every sigmoid value, of the formula and of the training step's in-place twin, is
    within 3 units of the dtype's precision of the exact value, down to the smallest normal
    result (the issue: 1.7e-4 off at a = -30 in float64, 0 instead of 1e-9 at a = -20 in
    float32)."""
    a = _grid(dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = sigmoid(np, a)
        twin = ACTIVATIONS["sigmoid"].forward_inplace(
            get_backend("numpy"), a.copy(), np.empty_like(a)
        )
    assert y.dtype == np.dtype(dtype)
    assert _max_rel_error(y, a) <= 3 * EPS[dtype]
    assert _max_rel_error(twin, a) <= 3 * EPS[dtype]
    assert np.array_equal(twin, y)  # the same formula, bit for bit


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_far_out_is_quiet_and_ordered(dtype):
    """Beyond the normal range: no warning, no NaN, results in [0, 1], monotone, and
    subnormal where the exact value is (e^-720 is 1e-313 in float64)."""
    a = np.array([-1e308 if dtype == "float64" else -3e38, -1e4, -800, -745, -720, -100, -90,
                  0.0, 50, 800, 1e4], dtype=dtype)  # fmt: skip
    be = get_backend("numpy")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = sigmoid(np, a)
        twin = ACTIVATIONS["sigmoid"].forward_inplace(be, a.copy(), np.empty_like(a))
        softplus_d = ACTIVATIONS["softplus"].backward(np, np.ones_like(a), a, None)
    for values in (y, twin, softplus_d):
        assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
        assert (np.diff(values) >= 0).all()
    if dtype == "float64":
        assert 0 < y[4] < np.finfo(np.float64).tiny and y[4] == pytest.approx(
            _exact_sigmoid(-720.0), rel=1e-6
        )


def test_softplus_derivative_is_the_exact_sigmoid():
    act = ACTIVATIONS["softplus"]
    for dtype in ("float32", "float64"):
        a = _grid(dtype)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            d = act.backward(np, np.ones_like(a), a, act.forward(np, a))
        assert _max_rel_error(d, a) <= 3 * EPS[dtype]


def test_elu_derivative_is_exact_in_relative_terms():
    # it was y + alpha, which cancels as y nears -alpha: 44% high at a = -17 in float32,
    # 0 instead of 2e-9 at a = -20; 1.7e-4 off at a = -30 in float64
    act = ACTIVATIONS["elu"]
    for dtype in ("float32", "float64"):
        a = _grid(dtype)  # down to where e^a is the smallest normal number
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            d = act.backward(np, np.ones_like(a), a, act.forward(np, a))
        exact = np.array([float(decimal.Decimal(float(v)).exp()) if v <= 0 else 1.0 for v in a])
        assert d.dtype == np.dtype(dtype)
        assert np.max(np.abs(d - exact) / exact) <= 2 * EPS[dtype]


def test_torch_backend_sigmoid_twin_is_exact():
    torch = pytest.importorskip("torch")
    be = get_backend("torch")
    a = _grid("float64")
    y = ACTIVATIONS["sigmoid"].forward_inplace(be, torch.from_numpy(a.copy()), None)
    assert _max_rel_error(y.numpy(), a) <= 3 * EPS["float64"]


def test_bias_gradient_at_minus_30_matches_torch():
    """The issue's reproduction: MLP([1, 1]) (sigmoid output, L2) with b = -30; dL/db was
    3.3e-4 off PyTorch's autograd in relative terms."""
    torch = pytest.importorskip("torch")
    net = MLP([1, 1], seed=0)
    net.load_state_dict({"layers.0.W": np.array([[0.5]]), "layers.0.b": np.array([-30.0])})
    x, t = np.array([[0.2]]), np.array([[0.0]])
    _, grads = net.gradients(x, t)
    W = torch.tensor([[0.5]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([-30.0], dtype=torch.float64, requires_grad=True)
    y = torch.sigmoid(torch.from_numpy(x) @ W + b)
    (0.5 * ((y - torch.from_numpy(t)) ** 2).sum()).backward()
    for ours, theirs in ((grads["layers.0.b"], b.grad), (grads["layers.0.W"], W.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-14)


def test_log_sigmoid_and_log_softmax_are_finite_where_representable():
    z = np.array([[-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ls = log_sigmoid(np, z)
        lsm = log_softmax(np, z)
    np.testing.assert_allclose(ls[0, :3], [-1e4, -800.0, -30.0 - math.log1p(math.exp(-30))])
    assert ls[0, 3] == pytest.approx(-math.log(2)) and ls[0, -1] == 0.0
    assert np.isfinite(lsm).all() and lsm[0, -1] == 0.0 and lsm[0, 0] == -2e4


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_classifier_probabilities_never_nan(dtype):
    """The issue's reproduction: one-vs-rest sigmoids (binary_cross_entropy on 3 classes) in
    float32 gave rows of NaN once every logit was below about -20 (p / sum p, every p = 0),
    and predict_log_proba gave -inf. Here the last layer's biases push every logit to -1e3
    (float32: below the smallest subnormal probability; float64: below 1e-434)."""
    pytest.importorskip("sklearn")
    from backprop.sklearn import BackpropClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, 60)
    for loss in ("binary_cross_entropy", "cross_entropy"):
        clf = BackpropClassifier(
            hidden_layer_sizes=(8,), loss=loss, dtype=dtype, max_iter=5, random_state=0
        )
        with pytest.warns(Warning):  # ConvergenceWarning: 5 epochs on purpose
            clf.fit(X, y)
        state = clf.model_.state_dict()
        last = max(k for k in state if k.endswith(".b"))
        state[last] = state[last] - np.asarray(1e3, dtype) - np.arange(3, dtype=dtype)
        clf.model_.load_state_dict(state)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            p = clf.predict_proba(X)
            logp = clf.predict_log_proba(X)
        assert np.isfinite(p).all() and np.isfinite(logp).all()
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_allclose(np.exp(logp), p, rtol=1e-5, atol=1e-30)
        # the class with the largest logit (the first: its bias was lowered least) wins
        assert (clf.predict(X) == clf.classes_[np.argmax(logp, axis=1)]).all()


# ------------------------------------------------------------------- gradcheck in float64
def test_gradcheck_float32_relu_reproduction(run_cli):
    """The issue's reproduction: the float32 step of 1e-2 crossed ReLU kinks and reported
    ``layers.0.W 2.27e-01 FAIL`` (exit 1); the differences now run in float64."""
    rc, out, _ = run_cli("gradcheck", "--dtype", "float32", "--activation", "relu",
                         "--layers", "2,16,2")  # fmt: skip
    assert rc == 0 and "FAIL" not in out and "float64" in out


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_gradcheck_checks_a_float32_model_against_float64_differences(dropout):
    """A float32 model's own gradient, against differences of its float64 copy (the same
    dropout masks replayed): about float32's precision off, where float32 differences of
    step 1e-2 were off by 1e-3 even on a smooth network; a wrong gradient is still caught."""
    rng = np.random.default_rng(1)
    X, T = rng.normal(size=(8, 3)), rng.random((8, 2))
    net = MLP([3, 6, 6, 2], "tanh", "sigmoid", "l2", dtype="float32", dropout=dropout, seed=0)
    before = net.state_dict()
    results = gradcheck(net, X, T)
    assert max(r.max_rel_error for r in results) < 1e-5
    assert all(r.kinks == 0 for r in results)
    assert all(np.array_equal(v, net.state_dict()[k]) for k, v in before.items())

    class Wrong(type(net.dense[0])):
        def backward(self, g, need_input_grad=True):
            dx = super().backward(g, need_input_grad)
            self.grad_b *= np.float32(1.01)  # 1% off
            return dx

    net.dense[0].__class__ = Wrong
    errors = {r.name: r.max_rel_error for r in gradcheck(net, X, T)}
    assert errors["layers.0.b"] > 5e-3 and errors["layers.0.W"] < 1e-5


def test_gradcheck_does_not_fail_a_gradient_at_the_rounding_floor(run_cli, wrong_bias_gradients):
    """The tutorial's network on 150 rows of toy: the first layer's bias gradients are about
    2.6e-5 (its rows cancel), so the estimates' float64 rounding (8e-11 against a loss of
    0.24 at a step of 1e-6) is 3e-6 of them, over the 1e-6 tolerance; it failed ('FAIL',
    exit 1) with nothing wrong. It now passes as ok*, said to be at the rounding floor; a
    gradient 0.1% off in that same array is still caught."""
    rc, out, _ = run_cli("gradcheck", "--samples", "150")
    assert rc == 0 and "FAIL" not in out, out
    assert re.search(r"layers\.0\.b .* 3\.\d\de-06 .* ok\*", out), out
    assert "* layers.0.b: every deviation is within the float64 rounding" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    wrong_bias_gradients(1.001)
    rc, out, _ = run_cli("gradcheck", "--samples", "150")
    assert rc == 1 and re.search(r"layers\.0\.b .* FAIL", out) and "ok*" not in out, out


def test_gradcheck_result_says_whether_it_is_within_rounding(wrong_bias_gradients):
    rng = np.random.default_rng(3)
    X, T = rng.normal(size=(64, 3)), rng.random((64, 2))
    net = MLP([3, 5, 2], "tanh", "sigmoid", "l2", seed=0)
    results = gradcheck(net, X, T)
    for r in results:
        # the floor is 16 u |L| / eps: about 1e-10 here, and every deviation is below it
        assert 1e-11 < r.rounding < 1e-8 and r.within_rounding and r.passed(0.0)
        assert r.max_abs_error <= r.rounding
    wrong_bias_gradients(1.001)
    results = {r.name: r for r in gradcheck(net, X, T)}
    for name in ("layers.0.b", "layers.1.b"):
        assert not results[name].within_rounding and not results[name].passed(1e-6)
    assert results["layers.0.W"].passed(1e-6) and results["layers.1.W"].passed(1e-6)


def test_the_rounding_floor_keeps_its_measured_margin(monkeypatch):
    """gradcheck.ROUNDING (16 units of u |L| / eps) is twice the largest deviation that
    scripts/gradcheck_rounding.py measures on 603 arrays of 120 random correct networks
    (7.4 units; docs/engine.md): an engine change that moved gradients or losses further
    from their differences fails here before it makes the floor hide anything."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "scripts"))
    sys.modules.pop("gradcheck_rounding", None)
    import gradcheck_rounding

    units = list(gradcheck_rounding.rounding_units(120))
    assert len(units) == 603 and max(units) < ROUNDING / 2


def _one_relu_unit(a: float) -> MLP:
    """x -> relu(x w + b) -> v h: MLP([1, 1, 1]) whose hidden pre-activation is ``a`` at x = 1."""
    net = MLP([1, 1, 1], "relu", "identity", "mse", seed=0)
    W0, b0, W1, b1 = np.array([[0.5]]), np.array([a - 0.5]), np.array([[2.0]]), np.array([0.0])
    net.load_state_dict({"layers.0.W": W0, "layers.0.b": b0, "layers.1.W": W1, "layers.1.b": b1})
    return net


def test_gradcheck_shortens_a_step_that_straddles_a_kink(monkeypatch):
    """The hidden pre-activation is 4e-7: the default step of 1e-6 on the first layer's
    parameters crosses the ReLU's kink (the difference quotient is then 0.7 of the slope);
    a step of 1e-7 does not, and the check passes with nothing reported as a kink. (The
    output layer's weight has a gradient of 2e-6, so its relative error is 1e-4: round-off
    of a loss of 9 over a step of 1e-6, nothing to do with the kink.)"""
    X, T = np.array([[1.0]]), np.array([[3.0]])
    results = {r.name: r for r in gradcheck(_one_relu_unit(4e-7), X, T)}
    assert all(r.kinks == 0 for r in results.values())
    assert results["layers.0.W"].max_rel_error < 1e-8
    assert results["layers.0.b"].max_rel_error < 1e-8
    # without shorter steps, the same entries straddle the kink
    monkeypatch.setattr(sys.modules["backprop.gradcheck"], "KINK_RETRIES", 0)
    results = {r.name: r for r in gradcheck(_one_relu_unit(4e-7), X, T)}
    assert results["layers.0.W"].kinks == results["layers.0.b"].kinks == 1


def test_gradcheck_reports_an_entry_on_a_kink_as_such():
    """Pre-activation exactly 0: no step avoids the kink (the derivative there is a
    convention); the entries whose step moves it are reported as kinks, not failures."""
    X, T = np.array([[1.0]]), np.array([[3.0]])
    results = {r.name: r for r in gradcheck(_one_relu_unit(0.0), X, T)}
    assert results["layers.0.W"].kinks == 1 and results["layers.0.b"].kinks == 1
    # the output layer's parameters do not move the hidden pre-activation: checked as usual
    assert results["layers.1.W"].kinks == results["layers.1.b"].kinks == 0
    assert max(r.max_rel_error for r in results.values()) < 1e-6


def test_gradcheck_draws_entries_of_a_large_array(run_cli, wrong_bias_gradients):
    # every entry of MNIST's 784-256-10 network: minutes with nothing on the screen
    model = MLP([3, 40, 2], "tanh", seed=0)
    X = np.random.default_rng(0).normal(size=(5, 3))
    T = np.eye(2)[[0, 1, 0, 1, 1]]
    results = gradcheck(model, X, T, max_entries=30, seed=1)
    assert [r.estimated for r in results] == [30, 30, 30, None]  # b of 2: whole
    assert all(r.checked and r.passed(1e-6) for r in results)
    again = gradcheck(model, X, T, max_entries=30, seed=1)
    assert [r.max_abs_error for r in again] == [r.max_abs_error for r in results]  # seeded
    wrong_bias_gradients(1 + 1e-3)  # a wrong gradient is still found among the drawn ones
    assert not gradcheck(model, X, T, max_entries=30)[1].passed(1e-6)
    with pytest.raises(ValueError, match="max_entries must be a positive integer; got 0"):
        gradcheck(model, X, T, max_entries=0)
    rc, out, _ = run_cli("gradcheck", "--layers", "2,40,2", "--max-entries", "7")
    assert rc == 1 and "Entries checked, drawn at random (--max-entries): layers.0.W 7 of" in out
