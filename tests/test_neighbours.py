"""The habits a PyTorch, Keras or scikit-learn user brings: pickling and deep copies,
``summary()``, ``History.history``, parameter assignment, readable reprs, and errors that
list the accepted names."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from backprop import MLP, get_optimizer
from backprop.optimizers import OPTIMIZERS, get_schedule

RNG = np.random.default_rng(3)
X = RNG.normal(size=(64, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


def _trained(**kw) -> MLP:
    args = {"activation": "tanh", "output_activation": "identity", "loss": "cross_entropy",
            "seed": 1, **kw}  # fmt: skip
    net = MLP([4, 6, 2], **args)
    net.fit(X, Y, optimizer="adam", lr=0.01, epochs=3, batch_size=16)
    return net


@pytest.mark.parametrize("kw", [{}, {"dtype": "float32"}, {"dropout": 0.25}])
def test_pickle_and_deepcopy_predict_identically(kw, same_params):
    net = _trained(**kw)
    net.preprocessing = None
    for make in (lambda: pickle.loads(pickle.dumps(net)), lambda: copy.deepcopy(net)):
        other = make()
        assert same_params(other, net)
        assert np.array_equal(other.predict(X), net.predict(X))
        assert other.config == net.config and other.backend.name == "numpy"
        # a separate model: its dropout stream continues where the original's was, and
        # training the copy leaves the original alone
        a, b = other.gradients(X, np.eye(2)[Y])[1], net.gradients(X, np.eye(2)[Y])[1]
        assert all(np.array_equal(a[k], b[k]) for k in a)
        other.params["layers.0.b"] = np.ones(6)
        assert not np.array_equal(net.params["layers.0.b"], np.ones(6))


def test_pickle_keeps_the_preprocessing_and_reattaches_other_backends():
    from backprop.preprocessing import fit_standardizer

    net = _trained()
    net.preprocessing = fit_standardizer(X, ["a", "b", "c", "d"], "y", ["no", "yes"])
    back = pickle.loads(pickle.dumps(net))
    assert back.preprocessing == net.preprocessing
    strict = pytest.importorskip("array_api_strict")
    on_strict = MLP([4, 6, 2], seed=1, backend=strict)
    again = pickle.loads(pickle.dumps(on_strict))
    assert again.backend.xp is strict
    np.testing.assert_array_equal(np.asarray(again.predict(X)), np.asarray(on_strict.predict(X)))


def test_summary_lists_layers_shapes_and_counts():
    lines: list[str] = []
    MLP([784, 30, 10], "relu", "identity", "cross_entropy", dropout=0.2).summary(lines.append)
    text = "\n".join(lines)
    assert "dense 0 (relu)" in text and "(n, 30)" in text and "23,550" in text  # 784*30 + 30
    assert "dropout (p=0.2)" in text and "dense 1 (identity)" in text and "310" in text
    assert lines[-1].startswith("23,860 parameters (float64, 186.4 KiB)")  # 23,860 * 8 B
    assert all(len(line) <= 80 for line in lines)


def test_history_has_keras_history_and_a_short_repr():
    net = MLP([4, 6, 2], "tanh", "identity", "cross_entropy", seed=1)
    h = net.fit(X, Y, optimizer="adam", lr=0.01, epochs=4, batch_size=16,
                validation_fraction=0.25)  # fmt: skip
    assert h.history["loss"] == h["loss"] and len(h.history["val_accuracy"]) == 4
    assert h.history["epoch"] == [1, 2, 3, 4]
    assert set(h.history) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr",
                              "time"}  # fmt: skip
    r = repr(h)
    assert r.startswith("History(4 epochs, last: loss=") and "completed 4 epochs" in r
    assert len(r) < 200


def test_params_assignment_writes_into_the_model():
    net = MLP([4, 6, 2], seed=0)
    W = np.arange(24.0).reshape(4, 6) / 100
    net.params["layers.0.W"] = W
    assert np.array_equal(net.state_dict()["layers.0.W"], W)
    assert np.array_equal(net.flat.params[:24].reshape(4, 6), W)  # the optimizer's vector
    fresh = MLP([4, 6, 2], seed=0)
    fresh.load_state_dict({**fresh.state_dict(), "layers.0.W": W})
    assert np.array_equal(net.predict(X), fresh.predict(X))
    with pytest.raises(ValueError, match=r"layers.0.W must have shape \(4, 6\); got \(6, 4\)"):
        net.params["layers.0.W"] = W.T
    with pytest.raises(KeyError, match="its parameters are layers.0.W, layers.0.b"):
        net.params["layers.9.W"] = W
    with pytest.raises(TypeError):
        del net.params["layers.0.W"]


def test_reprs_read_as_code():
    assert repr(get_optimizer("adam")) == (
        "Adam(lr=0.001, weight_decay=0.0, beta1=0.9, beta2=0.999, eps=1e-08)"
    )
    sgd = get_optimizer("sgd", lr=0.5, schedule=get_schedule("step", step_size=5))
    assert repr(sgd) == "SGD(lr=0.5, weight_decay=0.0, schedule=StepLR(step_size=5, gamma=0.1))"
    for name in OPTIMIZERS:
        assert " object at 0x" not in repr(get_optimizer(name))
    assert "dropout=0.5" in repr(MLP([2, 3, 2], dropout=0.5))
    assert repr(MLP([2, 3, 2]).params) == (
        "Parameters({'layers.0.W': (2, 3), 'layers.0.b': (3,), 'layers.1.W': (3, 2), "
        "'layers.1.b': (2,)})"
    )


def test_errors_list_the_accepted_names():
    with pytest.raises(ValueError) as e:
        get_optimizer("adam", betas=(0.9, 0.99))
    assert str(e.value) == (
        "optimizer 'adam' does not take 'betas'; it takes lr, weight_decay, schedule, beta1, "
        "beta2, eps"
    )
    with pytest.raises(ValueError, match="it takes step_size, gamma"):
        get_schedule("step", gama=0.5)
    with pytest.raises(ValueError, match="expected one of sgd, momentum, nesterov, adam"):
        get_optimizer("adagrad")
