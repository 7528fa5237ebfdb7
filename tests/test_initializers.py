"""Weight and bias initialisers: shapes, seeded determinism, the sample spread of each
formula, ``init="auto"`` by activation, and the order in which an MLP draws them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop import INITIALIZERS, MLP
from backprop.initializers import (
    AUTO_INITIALIZERS,
    BIAS_INITIALIZERS,
    as_generator,
    get_bias_initializer,
    get_initializer,
    initializer_for,
)

FAN_IN, FAN_OUT = 300, 200  # 60,000 draws: the sample std is within ~0.6% of the true one

# name -> (expected std, bound of a uniform draw or None)
EXPECTED = {
    "normal": (0.1, None),  # scale = init_scale = 0.1
    "lecun_normal": (math.sqrt(1 / FAN_IN), None),
    "xavier_uniform": (
        math.sqrt(6 / (FAN_IN + FAN_OUT)) / math.sqrt(3),
        math.sqrt(6 / (FAN_IN + FAN_OUT)),
    ),
    "xavier_normal": (math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    "he_uniform": (math.sqrt(6 / FAN_IN) / math.sqrt(3), math.sqrt(6 / FAN_IN)),
    "he_normal": (math.sqrt(2 / FAN_IN), None),
}


DRAWN = [name for name in INITIALIZERS if name != "auto"]  # "auto" names one of these


def test_all_initializers_covered():
    assert set(EXPECTED) | {"auto"} == set(INITIALIZERS)


@pytest.mark.parametrize("name", DRAWN)
def test_shape_spread_and_bounds(name):
    W = get_initializer(name)(np.random.default_rng(0), FAN_IN, FAN_OUT, 0.1)
    assert W.shape == (FAN_IN, FAN_OUT) and W.dtype == np.float64
    std, bound = EXPECTED[name]
    assert W.std() == pytest.approx(std, rel=0.02)
    assert abs(W.mean()) < 4 * std / math.sqrt(W.size)
    if bound is not None:
        assert np.abs(W).max() <= bound
        assert np.abs(W).max() > 0.99 * bound  # really uniform up to the bound
        # a uniform draw: about half of the values lie within half of the bound
        assert np.mean(np.abs(W) < bound / 2) == pytest.approx(0.5, abs=0.02)
    else:
        # a normal draw: about 68.3% lie within one standard deviation
        assert np.mean(np.abs(W) < std) == pytest.approx(0.6827, abs=0.01)


@pytest.mark.parametrize("name", DRAWN)
def test_seeded_determinism(name):
    init = get_initializer(name)
    a = init(np.random.default_rng(42), 5, 7, 0.1)
    b = init(np.random.default_rng(42), 5, 7, 0.1)
    c = init(np.random.default_rng(43), 5, 7, 0.1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (5, 7)


def test_normal_scale_is_init_scale():
    z = get_initializer("normal")(np.random.default_rng(1), 40, 30, 1.0)
    w = get_initializer("normal")(np.random.default_rng(1), 40, 30, 0.25)
    np.testing.assert_allclose(w, 0.25 * z, rtol=1e-15)


@pytest.mark.parametrize("name", list(INITIALIZERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mlp_uses_the_initializer(name, dtype):
    sizes = [6, 9, 4]
    a = MLP(sizes, init=name, dtype=dtype, seed=3)
    b = MLP(sizes, init=name, dtype=dtype, seed=3)
    c = MLP(sizes, init=name, dtype=dtype, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    rng = np.random.default_rng(3)  # the weights are drawn layer by layer from the seed
    init = initializer_for(name, "sigmoid")  # MLP's default activations: sigmoid, sigmoid
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        W = sa[f"layers.{i}.W"]
        assert W.shape == (fan_in, fan_out) and W.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(W, init(rng, fan_in, fan_out, 0.1).astype(dtype))
        np.testing.assert_array_equal(W, sb[f"layers.{i}.W"])
        assert not np.array_equal(W, sc[f"layers.{i}.W"])
        np.testing.assert_array_equal(sa[f"layers.{i}.b"], np.zeros(fan_out, dtype))  # biases 0


def test_auto_picks_by_activation_layer_by_layer():
    """Glorot for the saturating activations and the outputs, He for the ReLU family: a
    relu network with an identity output gets He-normal hidden weights and a Glorot-uniform
    output layer."""
    assert {AUTO_INITIALIZERS[a] for a in ("sigmoid", "tanh", "identity")} == {"xavier_uniform"}
    assert {AUTO_INITIALIZERS[a] for a in ("relu", "leaky_relu", "elu", "gelu")} == {"he_normal"}
    sizes = [300, 200, 100]
    net = MLP(sizes, "relu", "identity", "mse", seed=5)
    assert net.config.init == "auto"  # the default
    rng = np.random.default_rng(5)
    hidden = get_initializer("he_normal")(rng, 300, 200, 0.1)
    output = get_initializer("xavier_uniform")(rng, 200, 100, 0.1)
    state = net.state_dict()
    np.testing.assert_array_equal(state["layers.0.W"], hidden)
    np.testing.assert_array_equal(state["layers.1.W"], output)
    assert state["layers.0.W"].std() == pytest.approx(math.sqrt(2 / 300), rel=0.02)
    with pytest.raises(ValueError, match="depends on the layer's activation"):
        get_initializer("auto")(rng, 2, 2, 0.1)


# name -> (expected std, bound of a uniform draw or None), for fan_in = FAN_IN
BIAS_EXPECTED = {
    "zeros": (0.0, 0.0),
    "uniform": (1 / math.sqrt(FAN_IN) / math.sqrt(3), 1 / math.sqrt(FAN_IN)),
    "normal": (1.0, None),
}


def test_all_bias_initializers_covered():
    assert set(BIAS_EXPECTED) == set(BIAS_INITIALIZERS)


@pytest.mark.parametrize("name", list(BIAS_INITIALIZERS))
def test_bias_spread_and_bounds(name):
    b = get_bias_initializer(name)(np.random.default_rng(0), FAN_IN, 60_000)
    assert b.shape == (60_000,) and b.dtype == np.float64
    std, bound = BIAS_EXPECTED[name]
    assert b.std() == pytest.approx(std, rel=0.02, abs=1e-300)
    if bound is not None:
        assert np.abs(b).max() <= bound
        if bound > 0:
            assert np.mean(np.abs(b) < bound / 2) == pytest.approx(0.5, abs=0.02)
    else:
        assert np.mean(np.abs(b) < std) == pytest.approx(0.6827, abs=0.01)


@pytest.mark.parametrize("bias_init", list(BIAS_INITIALIZERS))
def test_biases_are_drawn_last(bias_init):
    """Weights first, then the dropout generator's seed, then the biases: the weights and
    the dropout masks are those of bias_init="zeros", whatever the bias initialiser."""
    kw = dict(sizes=[4, 6, 3], activation="tanh", dropout=0.5, seed=11)
    zero, other = MLP(**kw), MLP(**kw, bias_init=bias_init)
    assert zero.config.bias_init == "zeros"  # the default
    sz, so = zero.state_dict(), other.state_dict()
    assert all(np.array_equal(sz[k], so[k]) for k in sz if k.endswith(".W"))
    assert zero.dropout_rng.random() == other.dropout_rng.random()
    rng = np.random.default_rng(11)
    for fan_in, fan_out in ((4, 6), (6, 3)):
        initializer_for("auto", "tanh")(rng, fan_in, fan_out, 0.1)
    rng.integers(0, 2**63)  # the dropout generator's seed
    for i, (fan_in, fan_out) in enumerate(((4, 6), (6, 3))):
        expected = get_bias_initializer(bias_init)(rng, fan_in, fan_out)
        np.testing.assert_array_equal(so[f"layers.{i}.b"], expected)


def test_initial_weights_do_not_depend_on_dropout():
    a = MLP([4, 5, 2], dropout=0.0, seed=9).state_dict()
    b = MLP([4, 5, 2], dropout=0.5, seed=9).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_as_generator():
    g = np.random.default_rng(0)
    assert as_generator(g) is g
    assert as_generator(5).random() == np.random.default_rng(5).random()
    with pytest.raises(TypeError, match="seed must be an int, None or numpy.random.Generator"):
        as_generator(1.5)
