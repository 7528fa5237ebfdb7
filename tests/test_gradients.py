"""Every analytic gradient against central finite differences and against torch.autograd.

Three independent witnesses for ``MLP.gradients``:

1. the public checker :func:`backprop.gradcheck`;
2. a central-difference loop written here, on ``model.loss`` (or, with dropout, on the
   training-mode loss with the dropout generator rewound) and ``load_state_dict``;
3. torch.autograd on the same weights, with torch's own activations and losses.

All in float64 on tiny networks, so the whole file runs in a few seconds.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from backprop import ACTIVATIONS, LOSSES, MLP, gradcheck

HIDDEN = list(ACTIVATIONS)  # all 9
# Output activations that make sense for each loss: the logits losses take identity only.
OUTPUTS = {
    "l2": ["sigmoid", "identity", "tanh", "softmax"],
    "mse": ["sigmoid", "identity", "tanh", "softmax"],
    "mae": ["identity", "sigmoid", "tanh"],
    "huber": ["identity", "tanh", "softmax"],
    "binary_cross_entropy": ["identity"],
    "cross_entropy": ["identity"],
}
PAIRS = [(loss, out) for loss, outs in OUTPUTS.items() for out in outs]
REL_TOL = 1e-6


def test_every_loss_and_activation_is_covered():
    assert set(OUTPUTS) == set(LOSSES)
    assert len(HIDDEN) == 9


def _targets(rng: np.random.Generator, loss: str, out: str, n: int, m: int) -> np.ndarray:
    if loss == "cross_entropy":
        return rng.dirichlet(np.ones(m), size=n)  # probability rows
    if loss == "binary_cross_entropy" or out in ("sigmoid", "softmax"):
        return rng.uniform(0, 1, (n, m))
    return rng.normal(0, 1, (n, m))


def _fd_grads(model: MLP, X, T, sw=None, eps: float = 1e-6) -> dict[str, np.ndarray]:
    """Central differences on the model's loss, written independently of gradcheck."""
    dropout = model.config.dropout > 0
    rng_state = copy.deepcopy(model.dropout_rng.bit_generator.state)

    def loss() -> float:
        if not dropout:
            return model.loss(X, T, sw)  # inference mode: no dropout
        model.dropout_rng.bit_generator.state = copy.deepcopy(rng_state)  # the same masks
        return model.gradients(X, T, sw)[0]

    base = model.state_dict()
    out = {}
    for name, p in base.items():
        num = np.zeros_like(p)
        for k in np.ndindex(p.shape):
            q = p.copy()
            q[k] = p[k] + eps
            model.load_state_dict({**base, name: q})
            up = loss()
            q[k] = p[k] - eps
            model.load_state_dict({**base, name: q})
            down = loss()
            num[k] = (up - down) / (2 * eps)
        out[name] = num
    model.load_state_dict(base)
    model.dropout_rng.bit_generator.state = rng_state
    return out


def _rel_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(np.abs(a).max(), np.abs(b).max())
    assert scale > 1e-7, "a gradient that is all but zero proves nothing"
    return float(np.abs(a - b).max() / scale)


def _check_all(model: MLP, X, T, sw=None) -> None:
    rng_state = copy.deepcopy(model.dropout_rng.bit_generator.state)
    before = model.state_dict()
    results = gradcheck(model, X, T, sample_weight=sw)
    # gradcheck restores the parameters and the dropout generator exactly
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert model.dropout_rng.bit_generator.state == rng_state
    assert [r.name for r in results] == model.parameter_names()
    for r in results:
        assert r.shape == before[r.name].shape
        assert r.max_rel_error < REL_TOL, r

    _, grads = model.gradients(X, T, sw)
    analytic = {k: np.array(v, copy=True) for k, v in grads.items()}
    model.dropout_rng.bit_generator.state = copy.deepcopy(rng_state)
    numeric = _fd_grads(model, X, T, sw)
    assert set(numeric) == set(analytic)
    for name in analytic:
        assert _rel_error(analytic[name], numeric[name]) < REL_TOL, name


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize(("loss", "out"), PAIRS)
def test_finite_differences_every_activation_and_loss(hidden, loss, out):
    seed = HIDDEN.index(hidden) * 100 + PAIRS.index((loss, out))
    rng = np.random.default_rng(seed)
    sizes = [3, 5, 3]
    model = MLP(sizes, hidden, out, loss, init="normal", init_scale=0.9, seed=seed)
    # an odd number of samples: mae's bias gradient, a mean of signs, cannot cancel to 0
    X = rng.normal(0, 1, (5, sizes[0]))
    T = _targets(rng, loss, out, 5, sizes[-1])
    _check_all(model, X, T)


ARCHS = [
    # (sizes, bias, dropout, sample weights)
    ([3, 1], True, 0.0, False),  # depth 1
    ([3, 1], False, 0.0, True),
    ([5, 3, 3], True, 0.0, True),  # depth 2
    ([5, 3, 3], False, 0.3, False),
    ([3, 7, 5, 3], True, 0.25, True),  # depth 3
    ([3, 7, 5, 3], False, 0.0, False),
    ([3, 5, 3, 5, 1], True, 0.2, True),  # depth 4
    ([3, 5, 3, 5, 1], False, 0.2, False),
]


@pytest.mark.parametrize(("sizes", "bias", "dropout", "weighted"), ARCHS)
@pytest.mark.parametrize(
    ("hidden", "out", "loss"),
    [
        ("sigmoid", "sigmoid", "l2"),
        ("tanh", "identity", "binary_cross_entropy"),
        ("elu", "identity", "huber"),
        ("gelu", "identity", "cross_entropy"),
    ],
)
def test_finite_differences_depth_bias_dropout_weights(
    sizes, bias, dropout, weighted, hidden, out, loss
):
    if loss == "cross_entropy" and sizes[-1] == 1:
        sizes = [*sizes[:-1], 3]
    seed = len(sizes) * 10 + int(bias) + int(10 * dropout)
    rng = np.random.default_rng(seed)
    model = MLP(sizes, hidden, out, loss, bias=bias, dropout=dropout, init_scale=0.9, seed=seed)
    assert len(model.params) == (len(sizes) - 1) * (2 if bias else 1)
    n = 5
    X = rng.normal(0, 1, (n, sizes[0]))
    T = _targets(rng, loss, out, n, sizes[-1])
    sw = rng.uniform(0.2, 3.0, n) if weighted else None
    if dropout > 0:
        # dropout is really on in gradients(): the training-mode loss differs from inference
        state = copy.deepcopy(model.dropout_rng.bit_generator.state)
        assert model.gradients(X, T, sw)[0] != model.loss(X, T, sw)
        model.dropout_rng.bit_generator.state = state
    _check_all(model, X, T, sw)


def test_gradcheck_detects_a_wrong_gradient():
    # The checker can fail: break the hidden activation's derivative and it must say so.
    rng = np.random.default_rng(0)
    model = MLP([3, 5, 2], "tanh", "identity", "mse", init_scale=0.9, seed=0)
    X, T = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    tanh = model.dense[0].activation
    model.dense[0].activation = dataclasses.replace(
        tanh, backward=lambda xp, g, a, y: g * (1.0 - y * y) * 1.01, backward_inplace=None
    )
    errors = {r.name: r.max_rel_error for r in gradcheck(model, X, T)}
    assert errors["layers.0.W"] > 1e-3
    assert errors["layers.1.W"] < REL_TOL  # the output layer is unaffected


def test_an_array_whose_every_entry_sits_on_a_kink_is_not_called_checked():
    """MAE with the targets equal to the outputs: every entry of the hidden layer is on the
    kink and left out, and its error read 0.00e+00 'ok': a wrong gradient there would pass
    unseen. ``checked`` says so (the CLI writes 'not checked')."""
    rng = np.random.default_rng(0)
    model = MLP([3, 4, 2], "tanh", "identity", "mae", seed=2)
    X = rng.normal(size=(6, 3))
    T = np.asarray(model.predict(X), dtype=np.float64)  # every residual exactly 0
    results = {r.name: r for r in gradcheck(model, X, T)}
    hidden = results["layers.0.W"]
    assert hidden.kinks == hidden.shape[0] * hidden.shape[1] and not hidden.checked
    smooth = MLP([3, 4, 2], "tanh", "identity", "mse", seed=2)
    assert all(r.checked for r in gradcheck(smooth, X, T + 1.0))
    for eps in (float("inf"), float("nan"), 0.0, -1e-5):  # inf gave NaN errors and a warning
        with pytest.raises(ValueError, match="eps must be a finite number > 0"):
            gradcheck(smooth, X, T, eps=eps)


U = float(np.finfo(np.float64).eps)  # the unit of gradcheck's rounding floor, u |L| / eps


def _first_weights_off_by(monkeypatch, model: MLP, offset: float) -> None:
    """From now on ``model``'s first layer reports ``dL/dW0 + offset``: a wrong gradient."""
    layer, right = model.dense[0], type(model.dense[0]).backward

    def wrong(self, g, need_input_grad=True):
        dx = right(self, g, need_input_grad)
        if self is layer:
            self.grad_W += offset
        return dx

    monkeypatch.setattr(type(layer), "backward", wrong)


def _zero_inputs_net(target_offset: float) -> tuple[MLP, np.ndarray, np.ndarray]:
    """A tanh net on all-zero inputs: ``a = 0 @ W0 + b0`` does not depend on W0, so
    ``dL/dW0`` is exactly 0 and so is every estimate of it (the two losses are the same
    bits); the targets are the output plus ``target_offset``, so MSE is its square."""
    model = MLP([2, 3, 1], "tanh", "identity", "mse", seed=0)
    model.load_state_dict({**model.state_dict(), "layers.0.b": np.array([0.3, -0.2, 0.5])})
    X = np.zeros((4, 2))
    T = np.asarray(model.predict(X), dtype=np.float64) + target_offset
    return model, X, T


def test_a_wrong_gradient_fails_in_an_array_that_also_has_kinks(wrong_bias_gradients):
    # a zero input row and b0[0] = 0: that row's first pre-activation is exactly 0, so
    # b0[0] sits on the ReLU's kink at every step; b0[1], b0[2] are away from it
    rng = np.random.default_rng(0)
    model = MLP([2, 3, 1], "relu", "identity", "mse", seed=1)
    W0 = np.array([[1.0, 0.8, -0.6], [0.5, -0.9, 0.7]])
    model.load_state_dict({**model.state_dict(), "layers.0.W": W0,
                           "layers.0.b": np.array([0.0, 2.0, 3.0])})  # fmt: skip
    X = np.vstack([np.zeros((1, 2)), rng.uniform(0.5, 1.0, (5, 2))])  # rows: a[:, 0] > 0
    T = rng.normal(size=(6, 1))
    right = {r.name: r for r in gradcheck(model, X, T)}["layers.0.b"]
    assert right.kinks == 1 and right.checked and right.passed(REL_TOL)
    wrong_bias_gradients(1.001)
    wrong = {r.name: r for r in gradcheck(model, X, T)}["layers.0.b"]
    assert wrong.kinks == 1 and wrong.max_rel_error > 1e-4  # (a kink does not pass an array)
    assert not wrong.within_rounding and not wrong.passed(REL_TOL)


def test_a_nonzero_gradient_where_the_true_one_is_zero_fails(monkeypatch):
    # dL/dW0 = 0 exactly and reported as 1e-7: relative to the array's largest gradient,
    # max(|analytic|, |numeric|) = 1e-7, the error is 1 (relative to the estimates' alone,
    # 0, it would read 1e-7 and pass); 1e-7 is far above the rounding floor, 16 u |L| / eps
    # = 16 * 2.2e-16 * 1 / 1e-6 = 3.6e-9
    model, X, T = _zero_inputs_net(1.0)  # L = 1
    _first_weights_off_by(monkeypatch, model, 1e-7)
    result = gradcheck(model, X, T)[0]
    assert result.name == "layers.0.W" and result.max_abs_error == pytest.approx(1e-7)
    assert result.max_rel_error == pytest.approx(1.0)
    assert not result.within_rounding and not result.passed(REL_TOL)


def test_the_rounding_floor_scales_with_a_small_loss(monkeypatch):
    # L = 0.01^2 = 1e-4: the floor is 16 u |L| / eps = 16 * 2.2e-16 * 1e-4 / 1e-6 = 3.6e-13
    # (with |L| taken as at least 1 it would be 3.6e-9); a deviation of 1e-10 where the true
    # gradient is 0 is then no rounding, and fails
    model, X, T = _zero_inputs_net(0.01)
    L = model.loss(X, T)
    assert L == pytest.approx(1e-4, rel=1e-9)
    _first_weights_off_by(monkeypatch, model, 1e-10)
    for r in gradcheck(model, X, T):
        assert r.rounding == pytest.approx(16 * U * L / 1e-6, rel=1e-9), r.name
    result = gradcheck(model, X, T)[0]
    assert result.max_abs_error == pytest.approx(1e-10)
    assert not result.within_rounding and not result.passed(REL_TOL)


def test_an_entry_estimated_at_a_shortened_step_reports_the_larger_floor():
    # x = 1 -> relu(0.5 x + b0) -> 2 h, T = 3, with b0 such that the hidden pre-activation
    # is 4e-7: a step of 1e-6 on W0 or b0 crosses the kink, 1e-7 does not. The floor of an
    # estimate is 16 u |L| / (its step): L = (8e-7 - 3)^2 ~ 9, so 3.2e-7 for the first
    # layer's two entries (step 1e-7) and 3.2e-8 for the output layer's (step 1e-6)
    net = MLP([1, 1, 1], "relu", "identity", "mse", seed=0)
    W0, b0, W1, b1 = np.array([[0.5]]), np.array([4e-7 - 0.5]), np.array([[2.0]]), np.array([0.0])
    net.load_state_dict({"layers.0.W": W0, "layers.0.b": b0, "layers.1.W": W1, "layers.1.b": b1})
    X, T = np.array([[1.0]]), np.array([[3.0]])
    L = net.loss(X, T)
    results = {r.name: r for r in gradcheck(net, X, T)}
    assert all(r.kinks == 0 for r in results.values())
    for name, step in (("layers.0.W", 1e-7), ("layers.0.b", 1e-7), ("layers.1.W", 1e-6),
                       ("layers.1.b", 1e-6)):  # fmt: skip
        assert results[name].rounding == pytest.approx(16 * U * L / step, rel=1e-9), name


# ------------------------------------------------------------------- torch.autograd reference
def _torch_forward_loss(torch, model: MLP, X, T, sw):
    F = torch.nn.functional
    act = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda a: F.leaky_relu(a, 0.01),
        "elu": lambda a: F.elu(a, alpha=1.0),
        "gelu": lambda a: F.gelu(a, approximate="tanh"),
        "softplus": F.softplus,
        "identity": lambda a: a,
        "softmax": lambda a: torch.softmax(a, dim=1),
    }
    cfg = model.config
    params = {k: torch.tensor(v, requires_grad=True) for k, v in model.state_dict().items()}
    h = torch.tensor(X)
    n_layers = len(cfg.sizes) - 1
    for i in range(n_layers):
        a = h @ params[f"layers.{i}.W"]
        if cfg.bias:
            a = a + params[f"layers.{i}.b"]
        h = act[cfg.output_activation if i == n_layers - 1 else cfg.activation](a)
    t = torch.tensor(T)
    if cfg.loss == "l2":
        per = 0.5 * ((h - t) ** 2).sum(dim=1)
    elif cfg.loss == "mse":
        per = F.mse_loss(h, t, reduction="none").mean(dim=1)
    elif cfg.loss == "mae":
        per = F.l1_loss(h, t, reduction="none").mean(dim=1)
    elif cfg.loss == "huber":
        per = F.huber_loss(h, t, reduction="none", delta=1.0).mean(dim=1)
    elif cfg.loss == "binary_cross_entropy":
        per = F.binary_cross_entropy_with_logits(h, t, reduction="none").sum(dim=1)
    elif cfg.loss == "cross_entropy":
        per = F.cross_entropy(h, t, reduction="none")  # probability targets
    else:  # (a new loss was compared with cross-entropy's gradient, a 'mismatch' of its own)
        raise KeyError(f"no torch reference for the loss {cfg.loss!r}: add it here")
    if sw is not None:
        per = per * torch.tensor(sw)
    loss = per.mean()
    loss.backward()
    return float(loss.detach()), {k: p.grad.numpy() for k, p in params.items()}


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize(("loss", "out"), [(loss, outs[0]) for loss, outs in OUTPUTS.items()])
def test_gradients_match_torch_autograd(hidden, loss, out):
    torch = pytest.importorskip("torch", reason="torch is the independent autograd reference")
    seed = 7 + HIDDEN.index(hidden)
    rng = np.random.default_rng(seed)
    model = MLP([4, 5, 3, 3], hidden, out, loss, init_scale=0.9, seed=seed)
    X = rng.normal(0, 1.5, (6, 4))
    T = _targets(rng, loss, out, 6, 3)
    sw = rng.uniform(0.1, 2.0, 6) if seed % 2 else None
    t_loss, t_grads = _torch_forward_loss(torch, model, X, T, sw)
    loss_value, grads = model.gradients(X, T, sw)
    assert loss_value == pytest.approx(t_loss, rel=1e-12, abs=1e-14)
    assert model.loss(X, T, sw) == pytest.approx(t_loss, rel=1e-12, abs=1e-14)
    for name, g in t_grads.items():
        assert np.abs(g).max() > 0
        np.testing.assert_allclose(grads[name], g, rtol=1e-10, atol=1e-13, err_msg=name)


@pytest.mark.parametrize(("loss", "out"), PAIRS)
def test_every_output_activation_matches_torch(loss, out):
    torch = pytest.importorskip("torch", reason="torch is the independent autograd reference")
    rng = np.random.default_rng(PAIRS.index((loss, out)))
    model = MLP([3, 5, 4], "tanh", out, loss, bias=False, init_scale=1.2, seed=3)
    X = rng.normal(0, 1, (5, 3))
    T = _targets(rng, loss, out, 5, 4)
    t_loss, t_grads = _torch_forward_loss(torch, model, X, T, None)
    loss_value, grads = model.gradients(X, T)
    assert loss_value == pytest.approx(t_loss, rel=1e-12)
    for name, g in t_grads.items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-10, atol=1e-13, err_msg=name)


def test_cross_entropy_one_hot_and_integer_labels_match_torch():
    torch = pytest.importorskip("torch", reason="torch is the independent autograd reference")
    rng = np.random.default_rng(11)
    model = MLP([4, 7, 3], "relu", "identity", "cross_entropy", init_scale=0.8, seed=11)
    X = rng.normal(size=(8, 4))
    labels = rng.integers(0, 3, 8)
    onehot = np.eye(3)[labels]
    t_loss, t_grads = _torch_forward_loss(torch, model, X, onehot, None)
    for T in (onehot, labels):
        loss_value, grads = model.gradients(X, T)
        assert loss_value == pytest.approx(t_loss, rel=1e-12)
        for name, g in t_grads.items():
            np.testing.assert_allclose(grads[name], g, rtol=1e-10, atol=1e-13)


def test_gradients_returns_copies_that_later_steps_do_not_overwrite():
    rng = np.random.default_rng(1)
    model = MLP([3, 4, 2], "relu", "identity", "cross_entropy", seed=1)
    X1, X2 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    labels = rng.integers(0, 2, 5)
    _, first = model.gradients(X1, labels)
    kept = {k: np.array(v, copy=True) for k, v in first.items()}
    model.gradients(X2, labels)
    model.fit(X2, labels, epochs=1)
    assert all(np.array_equal(first[k], kept[k]) for k in kept)


def test_dropout_is_inverted_and_drops_a_fraction_p():
    # x = 1 feeds 4000 identity hidden units (W0 = 1) averaged by the output (W1 = 1/4000).
    p, k = 0.3, 4000
    model = MLP([1, k, 1], "identity", "identity", "l2", bias=False, dropout=p, seed=0)
    model.load_state_dict({"layers.0.W": np.ones((1, k)), "layers.1.W": np.full((k, 1), 1 / k)})
    X, T = np.ones((1, 1)), np.zeros((1, 1))
    assert model.forward(X)[0, 0] == pytest.approx(1.0)  # inference: no dropout
    y = float(model.forward(X, training=True)[0, 0])
    # survivors are scaled by 1 / (1 - p): the expected output is unchanged
    assert y == pytest.approx(1.0, abs=4 * np.sqrt(p / (1 - p) / k))
    loss, grads = model.gradients(X, T)
    dropped = np.mean(grads["layers.0.W"] == 0.0)  # a dropped unit gets no gradient
    assert dropped == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / k))
    kept = grads["layers.0.W"][grads["layers.0.W"] != 0.0]
    # dL/dW0_j = (y - t) W1_j mask_j = y / k / (1 - p) for a kept unit, with y = sqrt(2 L)
    np.testing.assert_allclose(kept, np.sqrt(2 * loss) / k / (1 - p), rtol=1e-12)


@pytest.mark.parametrize("n", [63, 64, 130])
@pytest.mark.parametrize("hidden", ["relu", "sigmoid", "tanh"])
def test_batches_on_both_sides_of_the_blas_bias_sum(n, hidden):
    # From 64 rows the NumPy backend sums the bias gradient over the batch as a row of ones
    # times delta (BLAS), below that with add.reduce; ReLU's backward masks through a boolean
    # scratch buffer. Both paths against finite differences and torch.autograd.
    rng = np.random.default_rng(n)
    model = MLP([4, 6, 3], hidden, "identity", "cross_entropy", init_scale=0.9, seed=n)
    X = rng.normal(0, 1.5, (n, 4))
    T = _targets(rng, "cross_entropy", "identity", n, 3)
    _check_all(model, X, T)
    torch = pytest.importorskip("torch", reason="torch is the independent autograd reference")
    t_loss, t_grads = _torch_forward_loss(torch, model, X, T, None)
    loss_value, grads = model.gradients(X, T)
    assert loss_value == pytest.approx(t_loss, rel=1e-12)
    for name, g in t_grads.items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-10, atol=1e-13, err_msg=name)
