"""BackpropClassifier and BackpropRegressor as drop-ins for MLPClassifier and MLPRegressor:
every constructor parameter under scikit-learn's name, default and meaning; one clear error
where a feature is absent; scikit-learn's fitted attributes; and scikit-learn's own
examples run with only the class swapped."""

from __future__ import annotations

import doctest
import inspect
import math
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is an optional extra: backprop[sklearn]")

from sklearn.datasets import load_iris, make_moons  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402

from backprop.sklearn import BackpropClassifier, BackpropRegressor  # noqa: E402

PAIRS = [(MLPClassifier, BackpropClassifier), (MLPRegressor, BackpropRegressor)]


@pytest.mark.parametrize("theirs, ours", PAIRS, ids=lambda c: c.__name__)
def test_every_scikit_learn_parameter_with_its_default_and_kind(theirs, ours):
    sk = inspect.signature(theirs).parameters
    bp = inspect.signature(ours).parameters
    assert list(bp)[: len(sk)] == list(sk)  # the same order, ours after
    for name, p in sk.items():
        assert bp[name].default == p.default, name
        assert bp[name].kind == p.kind, name


def _record_optimizer(seen: list):
    return lambda state: seen.append((repr(state.optimizer), state.optimizer.lr))


def test_adam_settings_reach_the_optimizer_and_fitted_attributes_have_sklearns_shapes():
    """The acceptance: BackpropClassifier(solver="adam", beta_1=..., ...) fits, and coefs_,
    intercepts_, n_layers_, n_outputs_, out_activation_, t_ are scikit-learn's."""
    X, y = load_iris(return_X_y=True)
    seen: list = []
    kw = dict(solver="adam", beta_1=0.8, beta_2=0.99, epsilon=1e-7, hidden_layer_sizes=(5, 3),
              max_iter=7, learning_rate_init=0.01, random_state=0)  # fmt: skip
    ours = BackpropClassifier(**kw, callbacks=[_record_optimizer(seen)])
    theirs = MLPClassifier(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert (
        seen[0][0].startswith("Adam(lr=0.01, weight_decay=")
        and "beta1=0.8, beta2=0.99" in (seen[0][0])
    )
    assert "eps=1e-07" in seen[0][0]
    assert [c.shape for c in ours.coefs_] == [c.shape for c in theirs.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in theirs.intercepts_]
    for name in ("n_layers_", "n_outputs_", "out_activation_", "t_", "n_iter_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.t_ == 7 * 150
    # on the NumPy backend coefs_ are the network's own arrays: a write changes predictions
    before = ours.predict_proba(X[:3])
    ours.coefs_[0][:] = 0.0
    assert not np.array_equal(ours.predict_proba(X[:3]), before)
    ours.coefs_ = theirs.coefs_
    ours.intercepts_ = theirs.intercepts_
    # the same weights: scikit-learn's network and ours compute the same probabilities
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10)
    assert not hasattr(BackpropClassifier(), "coefs_")


def test_item_assignment_into_coefs_and_intercepts_writes_into_the_network():
    """c.coefs_[0] = W was lost without a word (the property built a new list on each read),
    where MLPClassifier's list keeps it; an item, or a slice, now goes through the checks of
    assigning the whole list, and a change of the list's length is refused."""
    import copy
    import pickle

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    ours.coefs_[0] = np.zeros((4, 5))
    ours.intercepts_[-1] = np.ones(3)
    assert not ours.coefs_[0].any() and (ours.intercepts_[-1] == 1).all()
    assert not ours.model_.state_dict()["layers.0.W"].any()
    # no input reaches the hidden layer: every row gets the same probabilities
    np.testing.assert_array_equal(ours.predict_proba(X), ours.predict_proba(X[:1]).repeat(150, 0))
    coefs = ours.coefs_
    coefs[:] = [np.full((4, 5), 0.5), np.full((5, 3), 2.0)]
    assert coefs[1][0, 0] == 2.0 and ours.coefs_[1][0, 0] == 2.0  # the list and the network
    with pytest.raises(ValueError, match=r"^coefs_\[0\] must have shape \(4, 5\); got \(2, 2\)"):
        ours.coefs_[0] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"^coefs_ holds 2 arrays, one per layer; the slice "):
        ours.coefs_[1:] = []
    for change in (lambda c: c.append(c[0]), lambda c: c.pop(), lambda c: c.__delitem__(0)):
        with pytest.raises(TypeError, match=r"^coefs_ holds one array per layer of the network"):
            change(ours.coefs_)
    # copies are plain lists, detached from the network
    for detached in (copy.deepcopy(ours.coefs_), pickle.loads(pickle.dumps(ours.coefs_))):
        assert type(detached) is list
        detached[0] = np.zeros((4, 5))
    assert ours.coefs_[0][0, 0] == 0.5


@pytest.mark.parametrize(
    "kw, optimizer",
    [
        ({"momentum": 0.0}, "SGD(lr=0.2"),
        ({"momentum": 0.9, "nesterovs_momentum": False}, "Momentum(lr=0.2"),
        ({"momentum": 0.9}, "Nesterov(lr=0.2"),  # scikit-learn's default: Nesterov
    ],
)
def test_sgd_momentum_and_nesterov_as_scikit_learn_means_them(kw, optimizer):
    X, y = make_moons(60, noise=0.2, random_state=0)
    seen: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        BackpropClassifier(solver="sgd", learning_rate_init=0.2, max_iter=1, random_state=0,
                           callbacks=[_record_optimizer(seen)], **kw).fit(X, y)  # fmt: skip
    assert seen[0][0].startswith(optimizer)
    if kw["momentum"]:
        assert "momentum=0.9" in seen[0][0]


def test_invscaling_and_adaptive_learning_rates():
    X, y = make_moons(100, noise=0.2, random_state=0)
    seen: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        BackpropClassifier(solver="sgd", learning_rate="invscaling", power_t=0.25,
                           learning_rate_init=0.2, max_iter=4, random_state=0,
                           callbacks=[_record_optimizer(seen)]).fit(X, y)  # fmt: skip
    # after epoch k (t_ = 100 k rows seen) the next epoch's rate is 0.2 / (t_ + 1) ** 0.25
    assert [lr for _, lr in seen][:3] == pytest.approx(
        [0.2 / (100 * k + 1) ** 0.25 for k in (1, 2, 3)]
    )
    # adaptive: a loss that never improves by tol (1e9) counts one epoch without
    # improvement after another; past n_iter_no_change=1 the rate is divided by 5 and the
    # count starts again, until the rate is at most 1e-6: then training stops, after as
    # many epochs as scikit-learn's
    seen.clear()
    kw = dict(learning_rate="adaptive", learning_rate_init=0.1, tol=1e9, n_iter_no_change=1,
              max_iter=100, random_state=0)  # fmt: skip
    clf = BackpropClassifier(solver="sgd", callbacks=[_record_optimizer(seen)], **kw).fit(X, y)
    rates = [lr for _, lr in seen]  # the rate for the next epoch, after each epoch
    assert rates[:6] == pytest.approx([0.1, 0.1, 0.02, 0.02, 0.004, 0.004])
    assert rates[-1] == pytest.approx(0.1 / 5**8) and 0.1 / 5**8 < 1e-6 < rates[-4]
    assert clf.n_iter_ == MLPClassifier(solver="sgd", **kw).fit(X, y).n_iter_
    # with adam the rate stays and the first plateau stops training, as in scikit-learn
    seen.clear()
    clf = BackpropClassifier(callbacks=[_record_optimizer(seen)], **kw).fit(X, y)
    assert len({lr for _, lr in seen}) == 1
    assert clf.n_iter_ == MLPClassifier(**kw).fit(X, y).n_iter_ == 3


def test_squared_error_is_scikit_learns_half_mean_over_outputs():
    """One full batch, one epoch: loss_curve_[0] is the loss at the initial weights, the same
    network for every loss; squared_error = (1/2) mean over the two outputs = mse / 2."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(40, 2))
    curves = {}
    for loss in ("squared_error", "mse", "l2"):
        est = BackpropRegressor(loss, hidden_layer_sizes=(4,), batch_size=40, max_iter=1,
                                random_state=0)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, Y)
        curves[loss] = est.loss_curve_[0]
    assert curves["squared_error"] == pytest.approx(curves["mse"] / 2, rel=1e-12)
    assert curves["squared_error"] == pytest.approx(curves["l2"] / 2, rel=1e-12)


def test_several_outputs_train_as_mlpregressor_from_its_own_weights():
    """scikit-learn reports squared_error as (1/2) mean over the outputs but trains on the
    gradient of (1/2) their sum; ours trained on the mean's, m times smaller (4 outputs: R^2
    0.43 where MLPRegressor reached 0.93). From MLPRegressor's weights, without shuffles,
    three epochs of SGD: the same weights, and the same loss_curve_."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    Y = np.c_[X[:, 0] * 2, X[:, 1] - X[:, 2], X[:, 3], -X[:, 0]]
    kw = dict(hidden_layer_sizes=(5,), random_state=0, shuffle=False, warm_start=True,
              activation="tanh", batch_size=200, solver="sgd", momentum=0.0,
              learning_rate_init=0.02, alpha=0.0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = MLPRegressor(max_iter=1, **kw).fit(X, Y)
        ours = BackpropRegressor(max_iter=1, **kw).fit(X, Y)
        start = [w.copy() for w in theirs.coefs_], [b.copy() for b in theirs.intercepts_]
        for est in (theirs, ours):
            est.coefs_ = [w.copy() for w in start[0]]
            est.intercepts_ = [b.copy() for b in start[1]]
            est.set_params(max_iter=3).fit(X, Y)
    for a, b in zip(theirs.coefs_ + theirs.intercepts_, ours.coefs_ + ours.intercepts_,
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-13)
    # (the first epoch of each started from its own initial weights)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-12)


@pytest.mark.parametrize("ours", [BackpropClassifier, BackpropRegressor])
def test_partial_fit_takes_its_arguments_in_scikit_learns_order(ours):
    # (X, y, classes, sample_weight): partial_fit(X, y, w) read 0/1 weights as the classes
    theirs = {BackpropClassifier: MLPClassifier, BackpropRegressor: MLPRegressor}[ours]
    assert list(inspect.signature(ours.partial_fit).parameters) == list(
        inspect.signature(theirs.partial_fit).parameters
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BackpropClassifier(solver="lbfgs"), "solver='lbfgs' is not available"),
        (lambda: BackpropRegressor(solver="lbfgs"), "solver='lbfgs' is not available"),
        (lambda: BackpropRegressor(loss="poisson"), "loss='poisson' is not available"),
    ],
)
def test_an_absent_feature_is_one_clear_error(make, message):
    X, y = make_moons(30, random_state=0)
    with pytest.raises(ValueError) as e:
        make().fit(X, y)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).count("not available") == 1


@pytest.mark.parametrize("ours", [BackpropClassifier, BackpropRegressor], ids=lambda c: c.__name__)
def test_a_sparse_X_trains_as_its_dense_array(ours):
    """Sparse X (a TfidfVectorizer's) was refused with scikit-learn's generic "Sparse data
    was passed for X, but dense data is required"; MLPClassifier takes it. It is made dense
    and trains and predicts exactly as the dense array."""
    import scipy.sparse

    rng = np.random.default_rng(0)
    dense = rng.random((60, 5)) * (rng.random((60, 5)) < 0.4)
    y = dense[:, 0] > dense[:, 1] if ours is BackpropClassifier else dense @ [1.0, 2, 3, 4, 5]
    kw = dict(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = ours(**kw).fit(dense, y).predict(dense)
        for sparse in (scipy.sparse.csr_matrix(dense), scipy.sparse.coo_array(dense)):
            np.testing.assert_array_equal(ours(**kw).fit(sparse, y).predict(sparse), expected)
    assert ours().__sklearn_tags__().input_tags.sparse


def test_a_sparse_X_too_large_to_make_dense_is_one_clear_error():
    """4e6 x 1e7 sparse rows of nothing: made dense, 320 TB; said before allocating."""
    import scipy.sparse

    from backprop._limits import memory_limit

    if memory_limit() is None:
        pytest.skip("this machine does not say how much memory it has")
    X = scipy.sparse.csr_matrix((4 * 10**6, 10**7))
    with pytest.raises(MemoryError, match=r"a sparse X of 4000000 x 10000000, made dense, needs"):
        BackpropRegressor(max_iter=1).fit(X, np.zeros(4 * 10**6))


def test_a_text_pipeline_swaps_mlpclassifier_for_backpropclassifier():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    texts = ["good film", "great film", "bad film", "awful film", "good plot", "awful plot"] * 5
    labels = ["pos", "pos", "neg", "neg", "pos", "neg"] * 5
    kw = dict(hidden_layer_sizes=(8,), max_iter=200, learning_rate_init=0.05, random_state=0)
    for cls in (MLPClassifier, BackpropClassifier):
        model = make_pipeline(TfidfVectorizer(), cls(**kw)).fit(texts, labels)
        assert model.score(texts, labels) == 1.0, cls.__name__


# --------------------------------------------------------- scikit-learn's own examples
def _examples(cls: type) -> list[doctest.Example]:
    return doctest.DocTestParser().get_examples(cls.__doc__)


def _run(examples: list[doctest.Example], swap: tuple[str, str] | None) -> list:
    """Run scikit-learn's docstring examples (with ``swap``'s class name replaced), and
    return each displayed value."""
    namespace: dict = {}
    shown = []
    for ex in examples:
        source = ex.source
        if swap is not None:
            source = source.replace("from sklearn.neural_network import " + swap[0],
                                    "from backprop.sklearn import " + swap[1])  # fmt: skip
            source = source.replace(swap[0] + "(", swap[1] + "(")
        if ex.want:
            shown.append(eval(compile(source, "<example>", "eval"), namespace))
        else:
            exec(compile(source, "<example>", "exec"), namespace)
    return shown


@pytest.mark.parametrize("theirs, ours", PAIRS, ids=lambda c: c.__name__)
def test_scikit_learns_docstring_examples_with_only_the_class_swapped(theirs, ours):
    """The Examples section of MLPClassifier's and MLPRegressor's own docstrings, from the
    installed scikit-learn, run once as written and once with only the class swapped:
    estimator reprs are identical (same defaults), and the numbers agree."""
    examples = _examples(theirs)
    assert len(examples) >= 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = _run(examples, None)
        got = _run(examples, (theirs.__name__, ours.__name__))
    assert len(got) == len(expected)
    for mine, reference in zip(got, expected, strict=True):
        if isinstance(reference, theirs):  # `regr.fit(...)` displays the estimator
            assert repr(mine) == repr(reference).replace(theirs.__name__, ours.__name__)
        elif np.ndim(reference) == 0:  # a score
            assert abs(float(mine) - float(reference)) <= 0.06, (mine, reference)
        elif np.asarray(reference).dtype.kind in "iu":  # predicted labels
            assert np.mean(np.asarray(mine) == reference) >= 0.8, (mine, reference)
        else:  # probabilities or regression outputs
            scale = max(1.0, float(np.max(np.abs(reference))))
            assert np.max(np.abs(np.asarray(mine) - reference)) <= 0.2 * scale, (mine, reference)


#: The learning strategies scikit-learn's gallery compares ("Compare Stochastic learning
#: strategies for MLPClassifier"), its parameters exactly.
STRATEGIES = [
    {"solver": "sgd", "learning_rate": "constant", "momentum": 0, "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "constant", "momentum": 0.9,
     "nesterovs_momentum": False, "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "constant", "momentum": 0.9,
     "nesterovs_momentum": True, "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0, "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0.9,
     "nesterovs_momentum": True, "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0.9,
     "nesterovs_momentum": False, "learning_rate_init": 0.2},
    {"solver": "adam", "learning_rate_init": 0.01},
]  # fmt: skip


def test_the_gallerys_learning_strategies_learn_as_scikit_learns_do():
    """Each strategy of the gallery example, on its iris and moons data (MinMax-scaled,
    random_state=0): ours reaches scikit-learn's training score within 0.1 (0.15 for the
    slow inverse-scaling ones), and its loss curve falls."""
    data = {"iris": load_iris(return_X_y=True), "moons": make_moons(noise=0.3, random_state=0)}
    for name, (X, y) in data.items():
        X = MinMaxScaler().fit_transform(X)
        for params in STRATEGIES:
            scores = []
            for cls in (MLPClassifier, BackpropClassifier):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    mlp = cls(random_state=0, max_iter=150, **params).fit(X, y)
                scores.append(mlp.score(X, y))
                assert mlp.loss_curve_[-1] < mlp.loss_curve_[0] and math.isfinite(mlp.loss_)
            margin = 0.15 if params.get("learning_rate") == "invscaling" else 0.1
            assert scores[1] >= scores[0] - margin, (name, params, scores)


@pytest.mark.parametrize(
    "settings",
    [
        dict(solver="sgd", learning_rate="adaptive", n_iter_no_change=1, learning_rate_init=1e-2),
        dict(solver="sgd", learning_rate="adaptive", n_iter_no_change=1, learning_rate_init=1e-5),
        dict(solver="adam", n_iter_no_change=2, early_stopping=True),
    ],
    ids=["adaptive", "adaptive-to-1e-6", "early-stopping"],
)
def test_verbose_prints_what_mlpclassifier_prints(settings, capsys):
    """verbose=True printed the loss line alone; MLPClassifier also prints "Validation score:
    ..." each epoch under early stopping, and a line when a plateau divides the adaptive rate
    ("Setting learning rate to ...") or stops training. The lines, numbers aside, are now
    its lines (tol=1e9: every epoch after the first is a plateau, for both)."""
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(8,), random_state=0, verbose=True, tol=1e9, max_iter=50)
    lines = []
    for cls in (MLPClassifier, BackpropClassifier):
        capsys.readouterr()
        cls(**kw, **settings).fit(X, y)
        out = capsys.readouterr().out
        lines.append(re.sub(r"(loss = |Validation score: )[\d.]+", r"\1#", out).splitlines())
    assert lines[1] == lines[0]
    assert any("Stopping." in line for line in lines[1])


def test_a_file_saved_with_the_engines_optimizer_name_loads(tmp_path):
    """Files written before the estimators took scikit-learn's names hold
    ``optimizer="momentum"``: they load as solver="sgd" with heavy-ball momentum."""
    import json

    from backprop.io import encode_safetensors, read_header

    X, y = make_moons(40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = BackpropClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    clf.save(tmp_path / "new.safetensors")
    metadata = dict(read_header(tmp_path / "new.safetensors").metadata)
    record = json.loads(metadata["sklearn"])
    for name in ("solver", "nesterovs_momentum", "learning_rate", "power_t", "beta_1",
                 "beta_2", "epsilon", "max_fun"):  # fmt: skip
        del record["params"][name]
    record["params"]["optimizer"] = "momentum"
    metadata["sklearn"] = json.dumps(record)
    old = tmp_path / "old.safetensors"
    old.write_bytes(encode_safetensors(clf.model_.state_dict(), metadata))
    loaded = BackpropClassifier.load(old)
    assert (loaded.solver, loaded.nesterovs_momentum, loaded.momentum) == ("sgd", False, 0.9)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_assigning_coefs_is_all_or_none_and_one_array_a_layer():
    """A bad second array left the first written (coefs_ = [ok, bad], coefs_[:] = ...), and
    a list one layer short, or empty, was taken without a word."""
    X = np.random.default_rng(0).normal(size=(20, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = BackpropClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
        est.fit(X, np.arange(20) % 2)
    before = [c.copy() for c in est.coefs_]

    def unchanged() -> bool:
        return all(np.array_equal(a, b) for a, b in zip(est.coefs_, before, strict=True))

    with pytest.raises(ValueError, match=r"coefs_\[1\] must have shape \(4, 1\)"):
        est.coefs_ = [np.full((3, 4), 5.0), np.zeros((2, 2))]
    assert unchanged()
    with pytest.raises(ValueError, match=r"coefs_\[1\] must have shape"):
        est.coefs_[:] = [np.full((3, 4), 5.0), np.zeros((2, 2))]
    assert unchanged()
    for short in ([before[0]], []):
        with pytest.raises(ValueError, match="one array per layer, 2; got"):
            est.coefs_ = short
        assert unchanged()
    with pytest.raises(ValueError, match=r"intercepts_\[0\] must have shape"):
        est.intercepts_ = [np.zeros(3), np.zeros(1)]


def test_a_coefs_list_kept_from_an_earlier_fit_writes_nothing_stale():
    """A coefs_ list read before a new fit wrote that fit's other layers into the new
    network with its one assigned item; after a partial_fit it wrote its stale copies."""
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = BackpropClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
        kept = est.coefs_
        est.set_params(random_state=1).fit(X, y)
        layer1 = est.coefs_[1].copy()
        with pytest.raises(ValueError, match="read coefs_ anew"):
            kept[0] = np.zeros((3, 4))
        assert np.array_equal(est.coefs_[1], layer1)
        kept = est.coefs_
        est.partial_fit(X, y)  # the same network, trained on: kept's arrays are old copies
        layer1 = est.coefs_[1].copy()
        kept[0] = np.zeros((3, 4))
    assert np.array_equal(est.coefs_[1], layer1) and not est.coefs_[0].any()
