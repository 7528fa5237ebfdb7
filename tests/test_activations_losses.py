"""Activations and losses: values against their formulas, stability at +-1000, dtypes.

pytest runs with ``filterwarnings = error``, and the extreme-value tests also run under
``np.errstate(over="raise", invalid="raise", divide="raise")``: an overflow, a NaN or a
division by zero anywhere fails them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop import ACTIVATIONS, LOSSES, MLP
from backprop.backend import get_backend
from backprop.losses import Loss
from backprop.optimizers import OPTIMIZERS, get_optimizer

DTYPES = ["float32", "float64"]
EXTREME = np.array([[-1000.0, -30.0, -1.0, -1e-3, 0.0], [1e-3, 1.0, 30.0, 1000.0, 0.5]])
LOGITS_OK = {"binary_cross_entropy", "cross_entropy"}

# What each activation gives at -1000 and at +1000, and its derivative there.
LIMITS = {
    "sigmoid": ((0.0, 1.0), (0.0, 0.0)),
    "tanh": ((-1.0, 1.0), (0.0, 0.0)),
    "relu": ((0.0, 1000.0), (0.0, 1.0)),
    "leaky_relu": ((-10.0, 1000.0), (0.01, 1.0)),
    "elu": ((-1.0, 1000.0), (0.0, 1.0)),
    "gelu": ((0.0, 1000.0), (0.0, 1.0)),
    "softplus": ((0.0, 1000.0), (0.0, 1.0)),
    "identity": ((-1000.0, 1000.0), (1.0, 1.0)),
}


def _raise_on_fp_errors():
    return np.errstate(over="raise", invalid="raise", divide="raise")


# Independent formulas, written here with the math module, one scalar at a time.
def _formula(name: str, a: float) -> float:
    if name == "sigmoid":
        return 1 / (1 + math.exp(-a)) if a > -700 else 0.0
    if name == "tanh":
        return math.tanh(a)
    if name == "relu":
        return max(a, 0.0)
    if name == "leaky_relu":
        return a if a > 0 else 0.01 * a
    if name == "elu":
        return a if a > 0 else math.exp(a) - 1
    if name == "gelu":
        return 0.5 * a * (1 + math.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a**3)))
    if name == "softplus":
        return a + math.log1p(math.exp(-a)) if a > 0 else math.log1p(math.exp(a))
    assert name == "identity"
    return a


@pytest.mark.parametrize("name", list(LIMITS))
def test_activation_values_match_formula(name):
    act = ACTIVATIONS[name]
    a = np.linspace(-6, 6, 49).reshape(7, 7)
    y = act.forward(np, a)
    expected = np.vectorize(lambda v: _formula(name, v))(a)
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-15)
    # derivative by central differences of the formula, at points away from kinks
    g = np.ones_like(a)
    d = act.backward(np, g, a, y)
    pts = a[np.abs(a) > 1e-3]
    num = np.array([(_formula(name, v + 1e-6) - _formula(name, v - 1e-6)) / 2e-6 for v in pts])
    np.testing.assert_allclose(d[np.abs(a) > 1e-3], num, rtol=1e-7, atol=1e-9)


def test_softmax_values_and_jacobian():
    act = ACTIVATIONS["softmax"]
    rng = np.random.default_rng(0)
    a = rng.normal(0, 2, (4, 5))
    y = act.forward(np, a)
    e = np.exp(a)
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=1e-14)
    g = rng.normal(size=(4, 5))
    d = act.backward(np, g, a, y)
    for i in range(4):
        jac = np.diag(y[i]) - np.outer(y[i], y[i])  # dy_j/da_k = y_j (delta_jk - y_k)
        np.testing.assert_allclose(d[i], jac.T @ g[i], rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_at_plus_minus_1000(name, dtype):
    act = ACTIVATIONS[name]
    a = EXTREME.astype(dtype)
    with _raise_on_fp_errors():
        y = act.forward(np, a)
        d = act.backward(np, np.ones_like(a), a, y)
    assert y.dtype == np.dtype(dtype) and d.dtype == np.dtype(dtype)
    assert np.isfinite(y).all() and np.isfinite(d).all()
    if name == "softmax":
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
        assert y[1, 3] == pytest.approx(1.0) and y[0, 0] == 0.0
        return
    (lo, hi), (dlo, dhi) = LIMITS[name]
    assert y[0, 0] == pytest.approx(lo, abs=1e-6) and y[1, 3] == pytest.approx(hi, rel=1e-6)
    assert d[0, 0] == pytest.approx(dlo, abs=1e-6) and d[1, 3] == pytest.approx(dhi, abs=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if n != "softmax"])
def test_activation_up_to_the_dtypes_largest_numbers(name, dtype):
    # GELU's a^3 overflowed beyond |a| ~ 1e102 (float64) or 7e12 (float32): a warning, and
    # a NaN derivative; the tanh term is +-1 long before, so the values are a and 0 there
    act, big = ACTIVATIONS[name], np.finfo(dtype).max
    a = np.array([[-big, -1e30, -8e12, 8e12, 1e30, big]], dtype=dtype)
    with _raise_on_fp_errors():
        y = act.forward(np, a)
        d = act.backward(np, np.ones_like(a), a, y)
    assert np.isfinite(y).all() and np.isfinite(d).all()
    if name == "gelu":
        np.testing.assert_array_equal(y, np.where(a > 0, a, 0.0))
        np.testing.assert_array_equal(d, np.where(a > 0, 1.0, 0.0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "slope"), [("relu", 0.0), ("leaky_relu", 0.01)])
def test_kinked_derivative_at_zero_is_the_negative_sides_slope_as_torch(name, slope, dtype):
    """At ``a = 0`` the docstrings' derivative is ``1 if a > 0 else slope``: the negative
    side's (0 for ReLU, 0.01 for leaky ReLU), as torch's autograd says. So is it at ``-0.0``
    and at the smallest negative subnormal, where ``0.01 a`` rounds to ``-0.0``: a backward
    that reads ``y >= 0`` off the output gave 1 at all three."""
    torch = pytest.importorskip("torch", reason="torch is the independent autograd reference")
    tiny = float(np.finfo(dtype).smallest_subnormal)  # 0.01 * -tiny rounds to -0.0
    a = np.array([[0.0, -0.0, -tiny, tiny, -1.0, 1.0]], dtype=dtype)
    expected = np.array([[slope, slope, slope, 1.0, slope, 1.0]], dtype=dtype)
    act = ACTIVATIONS[name]
    y = act.forward(np, a)
    np.testing.assert_array_equal(act.backward(np, np.ones_like(a), a, y), expected)
    if act.backward_inplace is not None:  # the training step's twin
        tmp = np.empty(a.shape, bool) if act.scratch == "mask" else np.empty_like(a)
        twin = act.backward_inplace(get_backend("numpy"), np.ones_like(a), y, tmp)
        np.testing.assert_array_equal(twin, expected)
    t = torch.tensor(a, requires_grad=True)
    F = torch.nn.functional
    out = torch.relu(t) if name == "relu" else F.leaky_relu(t, negative_slope=slope)
    out.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), expected)


# ------------------------------------------------- the in-place twins equal their formulas
TWINS = [name for name, act in ACTIVATIONS.items() if act.forward_inplace is not None]
TWIN_TOL = {"float32": 1e-5, "float64": 1e-11}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", TWINS)
def test_inplace_twins_equal_their_formulas(name, dtype):
    """The training step's in-place forward and backward give the formulas' values, written
    into the buffers they are handed."""
    be, act = get_backend("numpy"), ACTIVATIONS[name]
    rng = np.random.default_rng(len(name))
    a = rng.normal(0, 3, (6, 5)).astype(dtype)
    g = rng.normal(size=(6, 5)).astype(dtype)
    y = act.forward(np, a)
    kind = {"none": None, "mask": bool, "values": dtype}[act.scratch]
    tmp = None if kind is None else np.empty(a.shape, kind)
    buffer = a.copy()
    y_twin = act.forward_inplace(be, buffer, tmp)
    assert np.shares_memory(y_twin, buffer) and y_twin.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y_twin, y, rtol=TWIN_TOL[dtype], atol=TWIN_TOL[dtype])
    d = act.backward(np, g, a, y)
    g_buffer = g.copy()
    d_twin = act.backward_inplace(be, g_buffer, y, tmp)
    assert np.shares_memory(d_twin, g_buffer) and d_twin.dtype == np.dtype(dtype)
    scale = float(np.abs(d).max())
    np.testing.assert_allclose(d_twin, d, rtol=TWIN_TOL[dtype], atol=TWIN_TOL[dtype] * scale)


FUSED = [n for n, loss in LOSSES.items() if type(loss).value_and_grad is not Loss.value_and_grad]


def test_the_fused_losses_are_the_seeds_and_the_softmax_cross_entropy():
    assert FUSED == ["l2", "cross_entropy"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FUSED)
def test_fused_value_and_grad_equals_value_and_gradient(name, dtype):
    be, loss = get_backend("numpy"), LOSSES[name]
    rng = np.random.default_rng(len(name))
    y = rng.normal(0, 2, (7, 4)).astype(dtype)
    t = (rng.dirichlet(np.ones(4), 7) if loss.from_logits else rng.normal(size=(7, 4))).astype(
        dtype
    )
    out = np.empty_like(y)
    value, g = loss.value_and_grad(be, y, t, out=out, scale=0.25)
    assert g is out and g.dtype == np.dtype(dtype)
    tol = TWIN_TOL[dtype]
    assert float(value) == pytest.approx(float(loss.value(np, y, t)), rel=tol)
    np.testing.assert_allclose(g, 0.25 * loss.gradient(np, y, t), rtol=tol, atol=tol)
    # with sample weights the loss takes the general path, and gives the same as unfused
    w = rng.uniform(0.5, 2, 7).astype(dtype)
    value_w, g_w = loss.value_and_grad(be, y, t, w, out=out, scale=0.25)
    assert float(value_w) == pytest.approx(float(loss.value(np, y, t, w)), rel=tol)
    np.testing.assert_allclose(g_w, 0.25 * loss.gradient(np, y, t, w), rtol=tol, atol=tol)


def _identity_model(loss: str, m: int, dtype: str = "float64") -> MLP:
    """A one-layer network with W = I, b = 0 and identity output: forward(Y) = Y, so that
    model.loss(Y, T) is the loss of outputs Y, and dL/db is the batch sum of dL/dy."""
    model = MLP([m, m], "identity", "identity", loss, dtype=dtype, seed=0)
    model.load_state_dict(
        {"layers.0.W": np.eye(m, dtype=dtype), "layers.0.b": np.zeros(m, dtype=dtype)}
    )
    return model


LOSS_FORMULAS = ("l2", "mse", "mae", "huber", "binary_cross_entropy", "cross_entropy")


def _loss_formula(name: str, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-sample loss, element by element, written from the table in losses.py."""
    if name not in LOSS_FORMULAS:  # (a new loss got 0s, and a 'mismatch' that was not one)
        raise KeyError(f"no formula for the loss {name!r}: add it to _loss_formula")
    n, m = y.shape
    out = np.zeros(n)
    for i in range(n):
        for j in range(m):
            r = y[i, j] - t[i, j]
            if name == "l2":
                out[i] += 0.5 * r * r
            elif name == "mse":
                out[i] += r * r / m
            elif name == "mae":
                out[i] += abs(r) / m
            elif name == "huber":
                out[i] += (0.5 * r * r if abs(r) <= 1 else abs(r) - 0.5) / m
            elif name == "binary_cross_entropy":
                s = 1 / (1 + math.exp(-y[i, j]))
                out[i] += -(t[i, j] * math.log(s) + (1 - t[i, j]) * math.log(1 - s))
        if name == "cross_entropy":
            p = np.exp(y[i]) / np.exp(y[i]).sum()
            out[i] = -sum(t[i, j] * math.log(p[j]) for j in range(m))
    return out


def _loss_grad_formula(name: str, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    m = y.shape[1]
    r = y - t
    if name == "l2":
        return r
    if name == "mse":
        return 2 * r / m
    if name == "mae":
        return np.sign(r) / m
    if name == "huber":
        return np.where(np.abs(r) <= 1, r, np.sign(r)) / m
    if name == "binary_cross_entropy":
        return 1 / (1 + np.exp(-y)) - t
    p = np.exp(y) / np.exp(y).sum(axis=1, keepdims=True)
    return p - t


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_value_and_gradient_match_formula(name):
    rng = np.random.default_rng(len(name))
    n, m = 6, 3
    y = rng.normal(0, 2, (n, m))
    t = rng.dirichlet(np.ones(m), n) if name in LOGITS_OK else rng.normal(0, 2, (n, m))
    s = rng.uniform(0.1, 3, n)
    model = _identity_model(name, m)
    per = _loss_formula(name, y, t)
    assert model.loss(y, t) == pytest.approx(per.mean(), rel=1e-13)
    # sample weights: L = (1/n) sum_i s_i l_i
    assert model.loss(y, t, s) == pytest.approx((s * per).mean(), rel=1e-13)
    # dL/dy_i = (s_i / n) dl_i/dy_i; with W = I the bias gradient is its sum over the batch
    _, grads = model.gradients(y, t, s)
    expected = (s[:, None] / n * _loss_grad_formula(name, y, t)).sum(axis=0)
    np.testing.assert_allclose(grads["layers.0.b"], expected, rtol=1e-12, atol=1e-15)
    # ... and dL/dW = x^T dL/dy with x = y here
    expected_W = y.T @ (s[:, None] / n * _loss_grad_formula(name, y, t))
    np.testing.assert_allclose(grads["layers.0.W"], expected_W, rtol=1e-12, atol=1e-15)


def test_huber_is_quadratic_inside_and_linear_outside():
    model = _identity_model("huber", 1)
    for r in (0.3, -0.9, 1.0, 2.5, -40.0):
        expected = 0.5 * r * r if abs(r) <= 1 else abs(r) - 0.5
        assert model.loss([[r]], [[0.0]]) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_at_plus_minus_1000(name, dtype):
    y = np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [1000.0, 1000.0]])
    t = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])  # badly wrong, on purpose
    model = _identity_model(name, 2, dtype)
    with _raise_on_fp_errors():
        value = model.loss(y, t)
        loss, grads = model.gradients(y, t)
        out = model.predict(y)
    assert math.isfinite(value) and math.isfinite(loss)
    assert all(np.isfinite(g).all() and g.dtype == np.dtype(dtype) for g in grads.values())
    assert np.isfinite(out).all() and out.dtype == np.dtype(dtype)
    expected = _loss_formula(name, y, t).mean() if name not in LOGITS_OK else None
    if name == "binary_cross_entropy":
        # per element: max(z,0) - z t + log(1 + e^-|z|) = 1000 for the wrong ones, 500 for t=1/2
        expected = (2000 + 2000 + 1000) / 3
    if name == "cross_entropy":
        expected = (2000 + 2000 + math.log(2)) / 3
    assert value == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------- the model at +-1000, every pair
HIDDEN = list(ACTIVATIONS)
OUTPUT_PAIRS = [
    ("l2", "sigmoid"),
    ("mse", "softmax"),
    ("mae", "tanh"),
    ("huber", "identity"),
    ("l2", "relu"),
    ("mse", "leaky_relu"),
    ("mae", "elu"),
    ("huber", "gelu"),
    ("l2", "softplus"),
    ("binary_cross_entropy", "identity"),
    ("cross_entropy", "identity"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("loss", "out"), OUTPUT_PAIRS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_model_with_pre_activations_of_plus_minus_1000(hidden, loss, out, dtype):
    # hidden pre-activations x W(0) = +-1000; the output layer gets +-1000 too for bounded
    # hidden units and larger for unbounded ones. Nothing may overflow or become NaN.
    model = MLP([2, 4, 2], hidden, out, loss, dtype=dtype, seed=0)
    W0 = np.array([[1000.0, -1000.0, 1000.0, -1000.0], [0.0, 0.0, 1000.0, 1000.0]])
    W1 = np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [1.0, -1.0], [-1.0, 1.0]])
    model.load_state_dict(
        {
            "layers.0.W": W0.astype(dtype),
            "layers.0.b": np.zeros(4, dtype),
            "layers.1.W": W1.astype(dtype),
            "layers.1.b": np.zeros(2, dtype),
        }
    )
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    T = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    with _raise_on_fp_errors():
        y = model.forward(X)
        p = model.predict(X)
        loss_value, grads = model.gradients(X, T)
    assert y.dtype == np.dtype(dtype) and p.dtype == np.dtype(dtype)
    assert np.isfinite(y).all() and np.isfinite(p).all() and math.isfinite(loss_value)
    for g in grads.values():
        assert g.dtype == np.dtype(dtype) and np.isfinite(g).all()


# ------------------------------------------------------------------------- dtype end to end
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_dtype_preserved_end_to_end(dtype, optimizer):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))  # float64 data, cast to the model's dtype
    labels = rng.integers(0, 2, 20)
    model = MLP([3, 5, 2], "relu", "identity", "cross_entropy", dtype=dtype, dropout=0.1, seed=1)
    assert all(p.dtype == np.dtype(dtype) for p in model.params.values())
    opt = get_optimizer(optimizer, lr=0.01, weight_decay=1e-3)
    model.fit(X, labels, optimizer=opt, epochs=2, batch_size=7)
    assert all(p.dtype == np.dtype(dtype) for p in model.params.values())
    assert all(p.dtype == np.dtype(dtype) for p in model.state_dict().values())
    _, grads = model.gradients(X, labels)
    assert all(g.dtype == np.dtype(dtype) for g in grads.values())
    for slots in opt.state.values():
        assert all(v.dtype == np.dtype(dtype) for v in slots.values())
    assert model.forward(X).dtype == np.dtype(dtype)
    assert model.predict(X.astype(np.int64)).dtype == np.dtype(dtype)
    np.testing.assert_allclose(model.predict(X).sum(axis=1), 1.0, rtol=1e-6)
