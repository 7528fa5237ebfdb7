"""Bad input raises one clear error naming what is wrong and what was expected.

"One error": a single ValueError/TypeError raised at the boundary, without a chained
traceback from inside the engine (``__cause__`` is None and the context is suppressed or
absent), and nothing already in the model is changed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from backprop import MLP, EarlyStopping, MLPConfig, get_optimizer
from backprop.initializers import get_initializer
from backprop.optimizers import get_schedule
from backprop.training import fit


@pytest.fixture
def net() -> MLP:
    return MLP([2, 3, 2], seed=0)


GOOD_X = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
GOOD_T = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])


def _one_error(excinfo) -> None:
    e = excinfo.value
    assert e.__cause__ is None
    assert e.__context__ is None or e.__suppress_context__


def _raises(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match) as excinfo:
        fn(*args, **kwargs)
    _one_error(excinfo)


BAD_X = [
    (np.ones((3, 3)), r"X has 3 columns but the model expects 2"),
    (np.ones((3, 1)), r"X has 1 columns but the model expects 2"),
    (np.ones(2), r"X must be 2-D \(n_samples, 2\); got shape \(2,\).*reshape"),
    (np.ones((2, 2, 2)), r"X must be 2-D \(n_samples, 2\); got shape \(2, 2, 2\)"),
    (np.zeros((0, 2)), r"X has 0 rows; expected at least one sample"),
    (
        np.array([[0.1, np.nan], [0.0, 0.0], [1, 1]]),
        r"X contains NaN or inf \(first at index \[0, 1\]\); expected finite",
    ),
    (
        np.array([[0.1, 0.2], [np.inf, 0.0], [1, 1]]),
        r"X contains NaN or inf \(first at index \[1, 0\]\)",
    ),
    (np.array([[0.1, -np.inf], [0.0, 0.0], [1, 1]]), r"X contains NaN or inf"),
]


@pytest.mark.parametrize(("X", "match"), BAD_X)
@pytest.mark.parametrize("method", ["forward", "predict", "loss", "gradients", "fit"])
def test_bad_inputs(net, X, match, method):
    before = net.state_dict()
    if method in ("forward", "predict"):
        _raises(ValueError, match, getattr(net, method), X)
    else:
        T = np.zeros((len(X), 2)) if np.ndim(X) == 2 else GOOD_T
        _raises(ValueError, match, getattr(net, method), X, T)
    after = net.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


BAD_T = [
    (
        np.ones((3, 3)),
        r"T has shape \(3, 3\); expected \(3, 2\): "
        r"one row per sample of X and one column per model output",
    ),
    (np.ones((2, 2)), r"T has shape \(2, 2\); expected \(3, 2\)"),
    (np.ones((3,)), r"T has shape \(3,\); expected \(3, 2\)"),  # 1-D floats are not labels
    (
        np.array([[0, 1], [np.nan, 0], [0, 1.0]]),
        r"T contains NaN or inf \(first at index \[1, 0\]\); expected finite",
    ),
    (np.array([[0, 1], [1, 0], [0, np.inf]]), r"T contains NaN or inf \(first at index \[2, 1\]\)"),
    (
        np.array([0, 1, 2]),
        r"T holds class labels from 0 to 2, but the model has 2 outputs; "
        r"expected labels in \[0, 1\]",
    ),
    (
        np.array([-1, 0, 1]),
        r"T holds class labels from -1 to 1, but the model has 2 outputs; "
        r"expected labels in \[0, 1\]",
    ),
]


@pytest.mark.parametrize(("T", "match"), BAD_T)
@pytest.mark.parametrize("method", ["loss", "gradients", "fit"])
def test_bad_targets(net, T, match, method):
    _raises(ValueError, match, getattr(net, method), GOOD_X, T)


def test_integer_labels_are_accepted_and_one_hot_encoded(net):
    labels = np.array([1, 0, 1])
    assert net.loss(GOOD_X, labels) == net.loss(GOOD_X, GOOD_T)


def test_a_negative_seed_is_named():
    # NumPy's own 'expected non-negative integer' named no parameter
    _raises(ValueError, r"seed must be a non-negative integer; got -1", MLP, [2, 3, 2], seed=-1)
    _raises(ValueError, r"seed must be a non-negative integer; got -1", fit,
            MLP([2, 3, 2]), GOOD_X, GOOD_T, epochs=1, seed=-1)  # fmt: skip


def test_cross_entropy_targets_are_probabilities():
    """Labels 0, 1, 2 for a one-output binary_cross_entropy model, or a row [2, -2] for
    cross_entropy, trained (the latter to a negative loss) without a word."""
    X = np.ones((3, 2))
    bce = MLP([2, 3, 1], "tanh", "identity", "binary_cross_entropy", seed=0)
    match = r"T holds 2 \(first at index \[2, 0\]\); loss 'binary_cross_entropy' takes probab"
    _raises(ValueError, match, fit, bce, X, np.array([0, 1, 2]), epochs=1)
    ce = MLP([2, 3, 2], "tanh", "identity", "cross_entropy", seed=0)
    _raises(ValueError, r"T holds 2 .* loss 'cross_entropy'", ce.loss, X, [[2.0, -2.0]] * 3)
    assert ce.loss(X, [[0.25, 0.75]] * 3) > 0  # soft labels are probabilities: taken


@pytest.mark.parametrize(
    ("X", "exc", "match"),
    [
        (np.array([["a", "b"], ["c", "d"]]), TypeError, r"X has dtype <U1; expected real numbers"),
        (
            np.array([[1 + 2j, 0], [0, 0]]),
            TypeError,
            r"X has dtype complex128; expected real numbers",
        ),
        (
            np.array([[object(), 1]], dtype=object),
            TypeError,
            r"X has dtype object; expected real numbers",
        ),
        ([[0.1, 0.2], [0.3]], TypeError, r"X could not be read as an array of numbers"),
    ],
)
def test_non_numeric_inputs(net, X, exc, match):
    _raises(exc, match, net.forward, X)


def test_non_numeric_targets(net):
    _raises(
        TypeError, r"T has dtype <U1; expected real numbers", net.loss, GOOD_X, np.full((3, 2), "x")
    )


def test_mismatched_dtypes_in_state_dict_change_nothing(net):
    before = net.state_dict()
    bad = {k: v.astype(np.float32) for k, v in before.items()}
    _raises(
        ValueError,
        r"layers\.0\.W has dtype float32; the model's dtype is float64",
        net.load_state_dict,
        bad,
    )
    # a good array followed by a bad one: nothing is half-loaded
    mixed = {k: v + 1.0 for k, v in before.items()}
    mixed["layers.1.b"] = np.zeros(5)
    _raises(
        ValueError,
        r"layers\.1\.b has shape \(5,\); the model expects \(2,\)",
        net.load_state_dict,
        mixed,
    )
    after = net.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    missing = {k: v for k, v in before.items() if k != "layers.0.b"}
    _raises(
        ValueError,
        r"state does not match the model: missing \['layers\.0\.b'\]",
        net.load_state_dict,
        missing,
    )


def test_float32_model_accepts_float64_data():
    # not a mismatch: real numbers are cast to the model's dtype at the boundary
    model = MLP([2, 3, 2], dtype="float32", seed=0)
    assert model.forward(GOOD_X).dtype == np.float32


def test_float32_model_refuses_values_beyond_float32():
    """1e39 is finite in float64 and inf in float32: predict gave NaN (with only NumPy's
    overflow warning) and fit 'diverged, try a smaller learning rate'."""
    model = MLP([2, 3, 2], dtype="float32", seed=0)
    big = np.array([[0.5, 0.5], [0.5, -1e39]])
    beyond = r"has values beyond float32's range \(first at index \[1, 1\]: -1e\+39\)"
    _raises(ValueError, "X " + beyond, model.predict, big)
    _raises(ValueError, "T " + beyond, model.loss, GOOD_X[:2], big)
    _raises(ValueError, "X " + beyond, fit, model, big, GOOD_T[:2], epochs=1)
    assert model.as_inputs([[3e38, -3e38]]).dtype == np.float32  # within range: taken
    # a float64 model takes 1e308s, whose sum overflows, without a warning (warnings fail)
    assert np.isfinite(MLP([2, 3, 2], seed=0).forward(np.array([[1e308, 1e308]]))).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"activation": "sigmoidd"},
            r"unknown activation 'sigmoidd' \(did you mean 'sigmoid'\?\); expected one of "
            r"sigmoid, tanh, relu",
        ),
        (
            {"output_activation": "Softmax"},
            r"unknown activation 'Softmax' \(did you mean 'softmax'\?\); expected one of",
        ),
        (
            {"loss": "cross-entropy"},
            r"unknown loss 'cross-entropy' \(did you mean 'cross_entropy'\?\); expected one of "
            r"l2, mse, mae, huber",
        ),
        (
            {"init": "glorot"},
            r"unknown initializer 'glorot'; expected one of auto, normal, lecun_normal",
        ),
        (
            {"loss": "cross_entropy"},
            r"loss 'cross_entropy' takes logits and applies softmax itself; "
            r"set output_activation='identity'",
        ),
        (
            {"loss": "binary_cross_entropy", "output_activation": "sigmoid"},
            r"takes logits and applies sigmoid itself",
        ),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\); got 1.0"),
        ({"dtype": "float16"}, r"dtype must be 'float32' or 'float64'; got 'float16'"),
        ({"init_scale": 0.0}, r"init_scale must be a finite number > 0; got 0.0"),
        # a file was written that load_model then refused ("config bias is 'no'")
        ({"bias": "no"}, r"bias must be True or False; got 'no'"),
        ({"init_scale": math.inf}, r"init_scale must be a finite number > 0; got inf"),
        ({"init_scale": 10**400}, r"init_scale must be a finite number > 0; got 10{59}\.\.\.$"),
        ({"sizes": [2]}, r"sizes must list at least two positive integers"),
        ({"sizes": [2, 0, 1]}, r"sizes must list at least two positive integers"),
    ],
)
def test_bad_model_settings(kwargs, match):
    kw = {"sizes": [2, 3, 2], **kwargs}
    _raises(ValueError, match, MLP, **kw)
    _raises(ValueError, match, MLPConfig, **{**kw, "sizes": tuple(kw["sizes"])})


def test_unknown_names_elsewhere():
    _raises(
        ValueError,
        r"unknown optimizer 'adamm' \(did you mean 'adam'\?\); expected one of sgd, momentum, "
        r"nesterov, adam, adamw, rmsprop",
        get_optimizer,
        "adamm",
    )
    _raises(ValueError, r"unknown initializer 'he'; expected one of", get_initializer, "he")
    _raises(
        ValueError,
        r"unknown schedule 'linear'; expected one of constant, step, exponential, cosine",
        get_schedule,
        "linear",
    )
    _raises(ValueError, r"unknown MLP config keys \['hidden'\]", MLPConfig.from_dict, {"hidden": 3})
    _raises(
        ValueError,
        r"optimizer 'sgd' does not take 'momentum'; it takes lr, weight_decay, schedule",
        get_optimizer,
        "sgd",
        momentum=0.9,
    )
    _raises(ValueError, r"lr must be a positive number; got -1", get_optimizer, "adam", lr=-1)
    _raises(ValueError, r"lr must be a positive number; got 10{59}\.\.\.$", get_optimizer,
            "adam", lr=10**400)  # fmt: skip
    _raises(ValueError, r"weight_decay must be a finite number >= 0; got 10{59}\.\.\.$",
            get_optimizer, "adamw", lr=0.1, weight_decay=10**400)  # fmt: skip
    _raises(
        ValueError,
        r"momentum must be in \[0, 1\); got 1.5",
        get_optimizer,
        "momentum",
        momentum=1.5,
    )
    _raises(
        ValueError,
        r"unknown backend 'jax'; expected one of numpy, torch",
        MLP,
        [2, 2],
        backend="jax",
    )


def test_unknown_optimizer_in_fit_changes_nothing(net):
    before = net.state_dict()
    _raises(ValueError, r"unknown optimizer 'sgdd'", net.fit, GOOD_X, GOOD_T, optimizer="sgdd")
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": -1}, r"epochs must be a non-negative integer \(at most 2\*\*53\); got -1"),
        ({"batch_size": 0}, r"batch_size must be a positive integer \(at most 2\*\*53\); got 0"),
        # beyond what a checkpoint holds (OverflowError before), and wrong kinds (TypeError)
        ({"batch_size": 10**30}, r"batch_size must be a positive integer .*; got 10{30}$"),
        ({"validation_fraction": 1.0}, r"validation_fraction must be in \[0, 1\); got 1.0"),
        ({"validation_fraction": "0.2"}, r"validation_fraction must be in \[0, 1\); got '0.2'"),
        ({"validation_fraction": 0.9}, r"validation_fraction=0.9 of 3 rows leaves no training"),
        # int() took 2.5 as 2 and True as 1
        ({"early_stopping": 2.5}, r"early_stopping must be a patience .* or an EarlyStopping"),
        ({"early_stopping": True}, r"early_stopping must be a patience .*; got True$"),
        ({"callbacks": [1]}, r"each callback must be a Callback or a function .*; got 1$"),
        ({"callbacks": print}, r"callbacks must be a list of callbacks; got <built-in"),
        (
            {"sample_weight": np.ones(2)},
            r"sample_weight has shape \(2,\); expected \(3,\), one per sample",
        ),
        (
            {"sample_weight": np.array([1.0, -1.0, 1.0])},
            r"sample_weight has negative entries; expected weights >= 0",
        ),
        ({"sample_weight": np.array([1.0, np.nan, 1.0])}, r"sample_weight contains NaN or inf"),
        ({"class_weight": {5: 2.0}}, r"class_weight names classes \[5\]; expected classes 0..1"),
        ({"class_weight": {"x": 1}}, r"class_weight names classes \['x'\]; expected classes"),
        ({"class_weight": {True: 1}}, r"class_weight names classes \[True\]; expected classes"),
        ({"class_weight": {0: -1.0}}, r"class_weight\[0\] is -1.0; expected a finite number >= 0"),
        ({"class_weight": {1: math.nan}}, r"class_weight\[1\] is nan; expected a finite number"),
        ({"class_weight": {0: 10**400}}, r"class_weight\[0\] is 10{59}\.\.\.; expected a finite"),
        ({"class_weight": "even"}, r"class_weight must be a dict or 'balanced'; got 'even'"),
        # regression targets have no classes: rows were weighed by whether y > 0.5
        (
            {"T": np.array([[0.3, 2.0], [1.5, 0.2], [0.7, 0.1]]), "class_weight": {0: 1, 1: 9}},
            r"class_weight applies to class targets .* loss 'l2'",
        ),
        (
            {"validation_data": (np.ones((2, 3)), np.ones((2, 2)))},
            r"X_val has 3 columns but the model expects 2",
        ),
        (
            {"validation_data": (np.ones((2, 2)), np.ones((3, 2)))},
            r"T_val has shape \(3, 2\); expected \(2, 2\)",
        ),
    ],
)
def test_bad_fit_settings(net, kwargs, match):
    before = net.state_dict()
    T = kwargs.pop("T", GOOD_T)
    _raises(ValueError, match, fit, net, GOOD_X, T, epochs=kwargs.pop("epochs", 2), **kwargs)
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())


def test_sample_weight_checked_in_loss_and_gradients(net):
    _raises(
        ValueError,
        r"sample_weight has shape \(4,\); expected \(3,\)",
        net.loss,
        GOOD_X,
        GOOD_T,
        np.ones(4),
    )
    _raises(
        ValueError,
        r"sample_weight has negative entries",
        net.gradients,
        GOOD_X,
        GOOD_T,
        -np.ones(3),
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        # two EarlyStoppings wrote one record: the loss and the negated accuracy mixed
        (
            {"early_stopping": 3, "callbacks": [EarlyStopping(monitor="val_accuracy")]},
            r"more than one EarlyStopping .*: a run keeps one early-stopping record",
        ),
        # Keras' third element (validation weights) was ignored
        (
            {"validation_data": (GOOD_X, GOOD_T, np.ones(3))},
            r"validation_data must be a pair \(X_val, T_val\); got a tuple of 3$",
        ),
        ({"shuffle": "no"}, r"shuffle must be True or False; got 'no'"),  # "no" shuffled
    ],
)
def test_fit_options_that_were_taken_wrongly(net, kwargs, match):
    before = net.state_dict()
    kwargs.setdefault("validation_data", (GOOD_X, GOOD_T))
    _raises(ValueError, match, fit, net, GOOD_X, GOOD_T, epochs=2, **kwargs)
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())


def test_wrong_kinds_of_objects_are_named(net):
    # each was an AttributeError from inside the engine
    _raises(
        TypeError, r"state must be a TrainState .*; got \{\}", fit, net, GOOD_X, GOOD_T, state={}
    )
    _raises(
        TypeError,
        r"optimizer must be an Optimizer object, e.g. .*; got 'sgd'",
        net.train_step,
        GOOD_X,
        GOOD_T,
        "sgd",
    )
    _raises(ValueError, r"sizes must list at least two positive integers .*; got 5$", MLP, 5)
    _raises(
        ValueError,
        r"momentum must be in \[0, 1\); got '0.5'",
        get_optimizer,
        "momentum",
        momentum="0.5",
    )
    _raises(
        ValueError,
        r"restore_best_weights must be True or False; got 'no'",
        EarlyStopping,
        restore_best_weights="no",
    )


def _stepped(model: MLP, X: np.ndarray, T: np.ndarray) -> Any:
    """An Adam optimizer that has taken one epoch of steps on ``model``."""
    opt = get_optimizer("adam", lr=0.01)
    model.fit(X, T, optimizer=opt, epochs=1)
    return opt


def test_one_optimizer_refuses_a_second_model_of_other_shapes():
    X, T = np.ones((10, 3)), np.zeros(10, dtype=int)
    opt = get_optimizer("adam", lr=0.01)
    MLP([3, 8, 2], seed=0).fit(X, T, optimizer=opt, epochs=1)
    t = opt.t
    other = MLP([3, 5, 2], seed=0)
    before = other.state_dict()
    _raises(
        ValueError,
        r"this adam optimizer holds state for layers.0.W of shape \(3, 8\), but "
        r"the model's layers.0.W has shape \(3, 5\)",
        other.fit,
        X,
        T,
        optimizer=opt,
        epochs=1,
    )
    assert opt.t == t  # a broadcast error had counted the step
    assert all(np.array_equal(before[k], v) for k, v in other.state_dict().items())
    # a step of some of its parameters only (a frozen first layer) is fine
    first = MLP([3, 8, 2], seed=0)
    frozen = get_optimizer("adam", lr=0.01)
    first.fit(X, T, optimizer=frozen, epochs=1)
    grads = first.gradients(X, T)[1]
    top = {k: v for k, v in first.params.items() if k.startswith("layers.1.")}
    frozen.step(top, {k: grads[k] for k in top})
    # ... but a shallower model's fit took a deeper one's moments
    _raises(ValueError, r"holds state for layers.2.W, which the model does not have",
            MLP([3, 8, 2], seed=0).fit, X, T, optimizer=_stepped(MLP([3, 8, 2, 2], seed=0), X,
                                                                 T), epochs=1)  # fmt: skip
    # a deeper one whose first layers have the same shapes took their moments silently
    deeper = MLP([3, 8, 2, 2], seed=0)
    _raises(ValueError, r"holds no state for layers.2.W, but the model's layers.2.W has shape "
            r"\(2, 2\)", deeper.fit, X, T, optimizer=opt, epochs=1)  # fmt: skip


@pytest.mark.parametrize("sizes", [[2, 8, 1]])
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "cross_entropy", "output_activation": "identity"}, r"loss 'cross_entropy'"),
        ({"loss": "mse", "output_activation": "softmax"}, r"output_activation 'softmax'"),
    ],
)
def test_softmax_of_one_output_is_refused(sizes, kwargs, match):
    # its softmax is 1 whatever the weights: loss 0, gradients 0, a model that never learns
    _raises(
        ValueError,
        match + r" needs at least 2 outputs .*binary_cross_entropy",
        MLP,
        sizes,
        **kwargs,
    )


def test_a_file_saved_before_the_softmax_check_still_loads(tmp_path):
    # MLPConfig refused it, so load_model did too: such a model could not even be looked at
    from backprop.io import load_model, save_model

    config = MLPConfig(sizes=(2, 3, 1), output_activation="softmax", loss="mse")
    save_model(tmp_path / "old.safetensors", MLP.from_config(config, seed=0))
    assert load_model(tmp_path / "old.safetensors").config == config


def test_parameters_must_be_finite_numbers_of_the_models_range(net):
    before = net.state_dict()
    bad = {**before, "layers.0.W": before["layers.0.W"].copy()}
    bad["layers.0.W"][0, 0] = np.nan
    _raises(
        ValueError,
        r"layers.0.W contains NaN or inf \(first at index \[0, 0\]\)",
        net.load_state_dict,
        bad,
    )
    _raises(
        ValueError,
        r"layers.1.b contains NaN or inf",
        net.params.__setitem__,
        "layers.1.b",
        [np.inf, 0.0],
    )
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())
    small = MLP([2, 3, 2], dtype="float32", seed=0)
    _raises(
        ValueError,
        r"layers.0.W has values beyond float32's range",
        small.params.__setitem__,
        "layers.0.W",
        np.full((2, 3), 1e39),
    )
    _raises(
        ValueError,
        r"sample_weight has values beyond float32's range",
        small.fit,
        GOOD_X,
        GOOD_T,
        epochs=1,
        sample_weight=np.full(3, 1e39),
    )


def test_numpy_scalars_are_numbers_and_stored_as_python_floats():
    net = MLP([2, 3, 2], dropout=np.float32(0.5), init_scale=np.float64(0.2))
    assert type(net.config.dropout) is float and net.config.dropout == 0.5
    assert type(net.config.init_scale) is float
    es = EarlyStopping(min_delta=np.float32(0.25))
    assert type(es.min_delta) is float and es.min_delta == 0.25
    assert get_optimizer("momentum", momentum=np.float32(0.5)).momentum == 0.5


def test_a_cosine_schedule_cannot_rise_to_its_min_lr():
    _raises(
        ValueError,
        r"the cosine schedule's min_lr=5 is above the learning rate 0.1",
        get_optimizer,
        "sgd",
        lr=0.1,
        schedule=get_schedule("cosine", min_lr=5.0),
    )
    get_optimizer("sgd", lr=0.1, schedule=get_schedule("cosine", min_lr=0.1))  # equal: constant


def test_whole_float_labels_are_labels_for_cross_entropy():
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = (X[:, 0] > 0).astype(int)
    nets = [
        MLP([2, 3, 2], output_activation="identity", loss="cross_entropy", seed=1) for _ in range(2)
    ]
    nets[0].fit(X, y, epochs=2)
    nets[1].fit(X, y.astype(float), epochs=2)  # pandas reads labels with a gap as floats
    assert all(np.array_equal(nets[0].params[k], nets[1].params[k]) for k in nets[0].params)
    _raises(
        ValueError,
        r"1-D integer class labels; its values are not whole numbers, e.g. 1.5",
        nets[1].fit,
        X,
        y + 0.5,
        epochs=1,
    )


def test_a_column_the_history_lacks_is_a_key_error():
    history = MLP([2, 3, 2], seed=0).fit(GOOD_X, GOOD_T, epochs=1)
    assert history["loss"] and len(history["loss"]) == 1
    with pytest.raises(KeyError, match=r"the history has no column 'val_acc'; its columns are"):
        history["val_acc"]  # [] before: history["val_acc"][-1] was a bare IndexError
    # "val_loss" in history looped forever (__getitem__ tried 0, 1, 2...)
    assert "loss" in history and "val_loss" not in history


def test_balanced_class_weights_count_the_classes_present_as_sklearn():
    sk = pytest.importorskip("sklearn.utils.class_weight")
    from backprop.training.epochs import class_sample_weights

    labels = np.array([0, 0, 1, 2, 2, 2])
    T = np.eye(4)[labels]  # 4 outputs, class 3 absent: its weight divided every other by 4/3
    ref = sk.compute_class_weight("balanced", classes=np.unique(labels), y=labels)
    np.testing.assert_allclose(class_sample_weights(T, "balanced"), ref[labels], rtol=1e-15)
