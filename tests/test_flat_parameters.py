"""The flat parameter vector: views, and the whole-vector optimizer step equal to the
per-array one, entry for entry (bit-identical), for every optimizer and weight decay."""

import numpy as np
import pytest

from backprop import MLP
from backprop.optimizers import OPTIMIZERS, get_optimizer


def _model(bias: bool = True, dtype: str = "float64") -> MLP:
    return MLP([4, 6, 3], "tanh", "identity", "cross_entropy", bias=bias, dtype=dtype, seed=1)


def test_parameters_and_gradients_are_views_of_the_flat_vectors():
    model = _model()
    flat = model.flat
    assert flat is not None
    assert flat.params.shape == (model.n_parameters,)
    for name, p in model.params.items():
        lo, hi, shape = flat.layout[name]
        assert p.shape == shape
        p[...] = 7.0  # writing through the named array changes the flat vector
        assert np.all(flat.params[lo:hi] == 7.0)
    rng = np.random.default_rng(0)
    model.gradients(rng.normal(size=(5, 4)), rng.integers(0, 3, 5))
    for name, g in model.grads.items():
        lo, hi, _ = flat.layout[name]
        assert np.array_equal(g.reshape(-1), flat.grads[lo:hi])
    # the mask marks weights only
    for name, (lo, hi, _) in flat.layout.items():
        assert np.all(flat.decay_mask[lo:hi] == (1.0 if name.endswith(".W") else 0.0))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_flat_step_is_bit_identical_to_the_per_array_step(name, weight_decay, bias, dtype):
    """In float32 too: the flat path's Adam bias corrections, NumPy float64 scalars (from its
    0-d step count), multiplied float32 moments in float64, 4.6 times slower, other bits."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    a, b = _model(bias, dtype), _model(bias, dtype)
    kw = {"lr": 0.05, "weight_decay": weight_decay}
    opt_a, opt_b = get_optimizer(name, **kw), get_optimizer(name, **kw)
    for _ in range(4):
        _, ga = a.gradients(X, y)
        opt_a.step(a.params, ga)  # one array at a time
        b.gradients(X, y)
        opt_b.step(b.params, b.grads, flat=b.flat)  # the whole vector at once
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]), k
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sa["slots"].keys() == sb["slots"].keys()
    for k in sa["slots"]:
        assert np.array_equal(sa["slots"][k], sb["slots"][k]), k


def _two_adam_steps(seed: int):
    """Data, a model after two flat Adam steps on it, and that optimizer."""
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    a = _model()
    opt = get_optimizer("adam", lr=0.01)
    for _ in range(2):
        a.gradients(X, y)
        opt.step(a.params, a.grads, flat=a.flat)
    return X, y, a, opt


def test_state_loaded_into_a_flat_optimizer_continues_identically():
    X, y, a, opt = _two_adam_steps(seed=4)
    b = _model()
    b.load_state_dict(a.state_dict())
    opt_b = get_optimizer("adam", lr=0.01)
    opt_b.load_state_dict(opt.state_dict())
    for model, o in ((a, opt), (b, opt_b)):
        model.gradients(X, y)
        o.step(model.params, model.grads, flat=model.flat)
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]), k


def test_host_state_loads_into_a_torch_model_optimizer():
    torch = pytest.importorskip("torch")
    X, y, a, opt = _two_adam_steps(seed=5)
    t = MLP([4, 6, 3], "tanh", "identity", "cross_entropy", seed=1, backend="torch")
    t.load_state_dict(a.state_dict())
    opt_t = get_optimizer("adam", lr=0.01)
    opt_t.load_state_dict(opt.state_dict())  # NumPy slots, no backend given
    for model, o in ((a, opt), (t, opt_t)):
        model.gradients(X, y)
        o.step(model.params, model.grads, flat=model.flat)
    assert isinstance(opt_t.state["layers.0.W"]["m"], torch.Tensor)
    for k, v in a.state_dict().items():
        np.testing.assert_allclose(t.state_dict()[k], v, rtol=1e-12, atol=1e-15)


def test_sgd_with_eta_scaled_gradients_matches_the_plain_update():
    # fit's path: the loss's gradient carries eta, SGD subtracts (one pass instead of two)
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    a, b = _model(), _model()
    opt_a, opt_b = get_optimizer("sgd", lr=0.05), get_optimizer("sgd", lr=0.05)
    assert opt_b.gradient_scale() == 0.05
    for _ in range(3):
        a.gradients(X, y)
        opt_a.step(a.params, a.grads, flat=a.flat)
        x, t = b.as_inputs(X), b.as_targets(y, 8)
        b.forward_backward(x, t, None, opt_b.gradient_scale())
        opt_b.step(b.params, b.grads, flat=b.flat, scaled=True)
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(set(OPTIMIZERS) - {"sgd"}))
def test_only_sgd_takes_scaled_gradients(name):
    opt = get_optimizer(name, lr=0.05)
    assert opt.gradient_scale() == 1.0
    model = _model()
    for _ in range(2):  # a refused step is not counted (Adam's bias corrections use t)
        with pytest.raises(ValueError, match="does not take pre-scaled gradients"):
            opt.step(model.params, model.grads, flat=model.flat, scaled=True)
    assert opt.t == 0
    assert get_optimizer("sgd", lr=0.05, weight_decay=0.1).gradient_scale() == 1.0


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_numpy_scalar_rate_steps_as_the_python_number(name):
    """A rate that is a NumPy float64 scalar (a callback's, or an np.arange epoch's) made a
    float32 model's steps compute in float64, rounded back: other bits than the same rate
    as a Python float (15-51 of 67 parameters after 5 steps)."""
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    runs = []
    for lr in (0.05, np.float64(0.05)):
        model = _model(dtype="float32")
        opt = get_optimizer(name, lr=0.05, weight_decay=0.01)
        opt.base_lr = lr
        for _ in range(5):
            model.train_step(X, y, opt)
        assert type(opt.lr) is float
        runs.append(model.state_dict())
    for k in runs[0]:
        assert np.array_equal(runs[0][k], runs[1][k]), k


def test_numpy_scalar_schedule_settings_are_python_numbers():
    """ExponentialLR(gamma=np.float32(0.9)) gave a float64 model float32 rates (0.07289999
    for 0.0729), and a checkpoint's history 'float32 is not JSON serializable'."""
    import json

    from backprop.optimizers import get_schedule

    opt = get_optimizer("sgd", lr=0.1, schedule=get_schedule("exponential", gamma=np.float32(0.5)))
    opt.epoch = np.int64(2)
    assert type(opt.lr) is float and opt.lr == 0.1 * 0.5**2
    step = get_schedule("step", step_size=np.int64(2), gamma=np.float32(0.5))
    assert json.dumps(step.to_dict()) and type(step.step_size) is int


def test_a_float64_state_loaded_into_a_float32_models_optimizer_steps_in_float32():
    """The per-array path kept the loaded float64 moments, so every update of the float32
    model was computed in float64 (the flat path copies them into float32 slots)."""
    X, y, a64, opt64 = _two_adam_steps(seed=6)
    state = opt64.state_dict()
    stepped = []
    for flat in (True, False):
        model = _model(dtype="float32")
        opt = get_optimizer("adam", lr=0.01)
        opt.load_state_dict(state)
        for _ in range(3):
            if flat:
                model.train_step(X, y, opt)
            else:
                model.gradients(X, y)
                opt.step(model.params, model.grads)
        assert all(v.dtype == np.float32 for v in opt.state_dict()["slots"].values())
        stepped.append(model.state_dict())
    for k in stepped[0]:
        assert np.array_equal(stepped[0][k], stepped[1][k]), k


def test_a_numpy_scalar_rate_steps_a_torch_model():
    """Adam's scalars met torch as NumPy scalars: 'Cannot interpret torch.float32 as a data
    type' (the per-array path, a rate that is a NumPy float64)."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    model = MLP([4, 6, 3], "tanh", "identity", "cross_entropy", dtype="float32", backend="torch")
    opt = get_optimizer("adam", lr=0.01)
    opt.base_lr = np.float64(0.01)
    model.gradients(X, y)
    opt.step(model.params, model.grads)
    assert opt.t == 1
