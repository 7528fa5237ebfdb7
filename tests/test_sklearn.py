"""BackpropClassifier / BackpropRegressor: behaviour beyond scikit-learn's generic checks.

Pipelines and model selection, accuracy against MLPClassifier on digits, the objective and
its L2 term against finite differences, targets of every kind, stopping rules, warm start,
partial_fit, pickling and the safe model file.
"""

import contextlib
import io
import os
import pickle
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is an optional extra: backprop[sklearn]")

import joblib  # noqa: E402  (a scikit-learn dependency)
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, load_iris, make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from backprop.sklearn import BackpropClassifier, BackpropRegressor  # noqa: E402

SMALL = dict(hidden_layer_sizes=(16,), learning_rate_init=1e-2, random_state=0)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=120, n_features=5, n_targets=2, noise=0.1, random_state=0)
    return X, y / np.std(y, axis=0)


@contextlib.contextmanager
def quiet():
    """Around fits that stop at max_iter on purpose: their ConvergenceWarning is expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# ------------------------------------------------------------- pipelines and model selection
def test_pipeline_fits_and_scores(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), BackpropClassifier(max_iter=100, **SMALL))
    with quiet():
        pipe.fit(X, y)
    assert pipe.score(X, y) > 0.95
    assert pipe.predict_proba(X).shape == (150, 3)


def test_grid_search_picks_from_the_grid(iris):
    X, y = iris
    search = GridSearchCV(
        BackpropClassifier(max_iter=30, **SMALL),
        {"hidden_layer_sizes": [(4,), (16,)], "alpha": [1e-4, 1.0]},
        cv=3,
    )
    with quiet():
        search.fit(X, y)
    assert search.best_params_["hidden_layer_sizes"] in [(4,), (16,)]
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert (
        search.best_estimator_.model_.config.sizes[1:-1]
        == search.best_params_["hidden_layer_sizes"]
    )
    assert search.best_score_ > 0.8


def test_cross_val_score_regressor(regression):
    X, y = regression
    with quiet():
        scores = cross_val_score(BackpropRegressor(max_iter=150, **SMALL), X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.min() > 0.9  # R^2 on a near-linear problem


# ---------------------------------------------------------------------- against MLPClassifier
def test_digits_accuracy_within_one_point_of_mlpclassifier():
    # The same hidden layer, optimizer, learning rate, batch, L2 and epoch budget.
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X / 16.0, y, test_size=0.25, random_state=0, stratify=y
    )
    settings = dict(
        hidden_layer_sizes=(100,),
        learning_rate_init=1e-3,
        batch_size=200,
        max_iter=50,
        alpha=1e-4,
        random_state=0,
    )
    with quiet():
        theirs = MLPClassifier(solver="adam", **settings).fit(X_tr, y_tr).score(X_te, y_te)
        ours = BackpropClassifier(solver="adam", **settings).fit(X_tr, y_tr).score(X_te, y_te)
    assert ours >= theirs - 0.01, (ours, theirs)


# ------------------------------------------------------- the objective, against finite differences
@pytest.mark.parametrize("weighted", [False, True])
def test_one_sgd_step_follows_the_documented_objective(weighted):
    # J(W) = (1/S) sum_i s_i l_i + alpha / (2 S) ||W||^2, S = sum_i s_i, l_i = mean_j (y - t)^2:
    # one full-batch SGD step must move every parameter by -eta dJ/dp, with dJ/dp from
    # central differences of J written here independently of the engine.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    y = rng.normal(size=(12, 2))
    sw = rng.integers(1, 4, size=12).astype(float) if weighted else None
    alpha, eta = 0.7, 0.05
    est = BackpropRegressor(
        loss="mse",
        hidden_layer_sizes=(4,),
        activation="tanh",
        solver="sgd",
        momentum=0.0,
        learning_rate_init=eta,
        alpha=alpha,
        max_iter=1,
        shuffle=False,
        random_state=0,
        warm_start=True,
    )
    with quiet():
        est.fit(X, y, sample_weight=sw)
        before = est.model_.state_dict()
        est.fit(X, y, sample_weight=sw)  # warm start: one more step from `before`
    after = est.model_.state_dict()

    s = np.ones(12) if sw is None else sw

    def objective(p):
        h = np.tanh(X @ p["layers.0.W"] + p["layers.0.b"])
        out = h @ p["layers.1.W"] + p["layers.1.b"]
        per_sample = np.mean((out - y) ** 2, axis=1)
        l2 = np.sum(p["layers.0.W"] ** 2) + np.sum(p["layers.1.W"] ** 2)
        return (s @ per_sample + 0.5 * alpha * l2) / s.sum()

    for name, value in before.items():
        grad = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus = {k: v.copy() for k, v in before.items()}
            minus = {k: v.copy() for k, v in before.items()}
            plus[name][idx] += 1e-6
            minus[name][idx] -= 1e-6
            grad[idx] = (objective(plus) - objective(minus)) / 2e-6
        np.testing.assert_allclose(after[name], value - eta * grad, rtol=1e-7, atol=1e-9)


def test_integer_weights_equal_repeated_rows_with_strong_l2():
    # scikit-learn's own check uses alpha=1e-4, too small to notice a wrongly scaled L2 term.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(15, 4))
    y = rng.integers(0, 3, size=15)
    sw = rng.integers(0, 4, size=15)
    params = dict(hidden_layer_sizes=(6,), alpha=3.0, max_iter=20, **{"random_state": 0})
    with quiet():
        weighted = BackpropClassifier(**params).fit(X, y, sample_weight=sw)
        repeated = BackpropClassifier(**params).fit(np.repeat(X, sw, 0), np.repeat(y, sw))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-9)


def test_adamw_with_alpha_0_decays_nothing(iris):
    """solver="adamw" with alpha=0 decayed the weights by AdamW's own default: the optimizer's
    weight_decay was 0.01 after fit and after a first partial_fit, 0.0 after a second."""
    X, y = iris
    seen = []
    kw = dict(solver="adamw", callbacks=[lambda state: seen.append(state.optimizer.weight_decay)])
    with quiet():
        adamw = BackpropClassifier(max_iter=3, alpha=0.0, **kw, **SMALL).fit(X, y)
        adam = BackpropClassifier(max_iter=3, solver="adam", alpha=0.0, **SMALL).fit(X, y)
    online = BackpropClassifier(alpha=0.0, **kw, **SMALL)
    online.partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, y)
    assert seen == [0.0] * 5
    # AdamW without decay is Adam, step for step
    np.testing.assert_array_equal(adamw.predict_proba(X), adam.predict_proba(X))
    # with alpha > 0, AdamW's decoupled decay is alpha / batch_size (docs/sklearn.md)
    seen.clear()
    with quiet():
        BackpropClassifier(max_iter=1, alpha=0.3, batch_size=50, **kw, **SMALL).fit(X, y)
    assert seen == [0.3 / 50]


def test_loss_curve_with_sample_weight_is_the_epochs_weighted_mean(iris):
    # docs/sklearn.md, Differences: with sample weights and mini-batches, loss_curve_ is
    # sum_i s_i l_i / sum_i s_i over the epoch's rows (MLPClassifier's: the mean of each
    # batch's weighted mean, weighted by the batch's row count). A rate of 1e-300 leaves
    # the weights as they started, so the epoch's loss is that of the fitted network.
    X, y = iris
    sw = np.random.default_rng(0).uniform(0.1, 5.0, size=150)
    kw = dict(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, learning_rate_init=1e-300,
              batch_size=40, shuffle=False, max_iter=1, alpha=0.0, random_state=0)  # fmt: skip
    with quiet():
        clf = BackpropClassifier(**kw).fit(X, y, sample_weight=sw)
    losses = -np.log(clf.predict_proba(X)[np.arange(150), y])
    by_batch = [
        np.average(losses[i : i + 40], weights=sw[i : i + 40]) * len(losses[i : i + 40])
        for i in range(0, 150, 40)
    ]
    assert clf.loss_curve_[0] == pytest.approx(np.average(losses, weights=sw), rel=1e-12)
    assert clf.loss_curve_[0] != pytest.approx(sum(by_batch) / 150, rel=1e-3)


def test_class_weight_is_a_sample_weight_by_label():
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    labels = np.where(y == 1, "yes", "no")
    with quiet():
        by_class = BackpropClassifier(max_iter=10, class_weight={"yes": 3.0}, **SMALL).fit(
            X, labels
        )
        by_sample = BackpropClassifier(max_iter=10, **SMALL).fit(
            X, labels, sample_weight=np.where(y == 1, 3.0, 1.0)
        )
    np.testing.assert_array_equal(by_class.predict_proba(X), by_sample.predict_proba(X))


def test_balanced_class_weight_raises_minority_recall():
    X, y = make_classification(
        n_samples=300, n_features=5, weights=[0.9, 0.1], class_sep=0.5, random_state=3
    )
    with quiet():
        plain = BackpropClassifier(max_iter=40, **SMALL).fit(X, y)
        balanced = BackpropClassifier(max_iter=40, class_weight="balanced", **SMALL).fit(X, y)
    recall = [np.mean(m.predict(X)[y == 1] == 1) for m in (plain, balanced)]
    assert recall[1] > recall[0] + 0.1, recall


# ------------------------------------------------------------------------- kinds of target
def test_binary_outputs_are_consistent():
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    labels = np.array(["cat", "dog"])[y]
    clf = BackpropClassifier(max_iter=100, **SMALL)
    with quiet():
        clf.fit(X, labels)
    assert clf.n_outputs_ == 1 and clf.loss_function_ == "binary_cross_entropy"
    z = clf.decision_function(X)
    proba = clf.predict_proba(X)
    assert z.shape == (80,) and proba.shape == (80, 2)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), np.where(z > 0, "dog", "cat"))
    assert clf.score(X, labels) > 0.85


def test_multiclass_softmax_and_one_vs_rest(iris):
    X, y = iris
    with quiet():
        soft = BackpropClassifier(max_iter=200, **SMALL).fit(X, y)
        ovr = BackpropClassifier(max_iter=200, loss="binary_cross_entropy", **SMALL).fit(X, y)
    assert soft.out_activation_ == "softmax" and ovr.out_activation_ == "logistic"
    for clf in (soft, ovr):
        proba = clf.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        np.testing.assert_array_equal(clf.predict(X), np.argmax(clf.decision_function(X), 1))
        assert clf.score(X, y) > 0.9


def test_multilabel_thresholds_each_label_at_one_half():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < 0.5]).astype(int)
    with quiet():
        clf = BackpropClassifier(max_iter=200, **SMALL).fit(X, Y)
    assert clf.loss_function_ == "binary_cross_entropy" and clf.n_outputs_ == 3
    proba = clf.predict_proba(X)
    assert proba.shape == (200, 3)
    np.testing.assert_array_equal(clf.predict(X), (proba > 0.5).astype(int))
    assert clf.score(X, Y) > 0.85  # subset accuracy: all three labels right


def test_multi_output_regression(regression):
    X, y = regression
    reg = BackpropRegressor(max_iter=200, **SMALL).fit(X, y)
    assert reg.predict(X).shape == (120, 2) and reg.n_outputs_ == 2
    assert reg.score(X, y) > 0.95
    one = BackpropRegressor(max_iter=200, **SMALL).fit(X, y[:, 0])
    assert one.predict(X).shape == (120,)


@pytest.mark.parametrize("loss", ["l2", "mae", "huber"])
def test_regressor_losses_learn(regression, loss):
    X, y = regression
    with quiet():
        reg = BackpropRegressor(loss=loss, max_iter=100, **SMALL).fit(X, y)
    assert reg.model_.config.loss == loss
    assert reg.loss_curve_[-1] < reg.loss_curve_[0] / 5
    assert reg.score(X, y) > 0.8


# -------------------------------------------------------------------------- stopping rules
def test_max_iter_without_convergence_warns(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        clf = BackpropClassifier(max_iter=3, **SMALL).fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3


@pytest.mark.parametrize(
    "settings",
    [
        dict(solver="sgd", learning_rate="adaptive", n_iter_no_change=1, tol=10, max_iter=6),
        dict(max_iter=5),
    ],
)
def test_the_convergence_warning_claims_nothing_false(iris, settings):
    """The warning said "(the training loss still improved by more than tol=10 within the
    last 1 epochs)" for a fit in which no epoch improved by 10 (the adaptive rate had started
    the count again), and "within the last 10 epochs" after 5 epochs."""
    X, y = iris
    with pytest.warns(ConvergenceWarning) as record:
        BackpropClassifier(**settings, **SMALL).fit(X, y)
    assert [str(w.message) for w in record] == [
        f"BackpropClassifier: reached max_iter={settings['max_iter']} epochs and the "
        "optimization hasn't converged yet"
    ]


def test_loss_plateau_stops_after_n_iter_no_change(iris):
    X, y = iris
    # With tol larger than any fall of the loss, no epoch counts as an improvement after
    # the first, so training stops once n_iter_no_change + 1 epochs have failed.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = BackpropClassifier(max_iter=100, tol=1e9, n_iter_no_change=4, **SMALL).fit(X, y)
    assert clf.n_iter_ == 6


def test_early_stopping_restores_the_best_epoch(iris):
    X, y = iris
    seen = []

    def record(state):
        seen.append(state.model.state_dict())

    clf = BackpropClassifier(
        max_iter=300,
        early_stopping=True,
        validation_fraction=0.3,
        n_iter_no_change=5,
        callbacks=[record],
        **SMALL,
    )
    clf.fit(X, y)
    scores = clf.validation_scores_
    assert len(scores) == clf.n_iter_ == len(seen) < 300
    assert all(0.0 <= s <= 1.0 for s in scores)
    best = int(np.argmax(scores))  # the first epoch with the best validation accuracy
    assert clf.best_validation_score_ == scores[best]
    assert clf.best_loss_ is None  # scikit-learn's: it was the lowest training loss
    for name, value in clf.model_.state_dict().items():
        np.testing.assert_array_equal(value, seen[best][name])


def test_early_stopping_regressor_scores_r2(regression):
    X, y = regression
    reg = BackpropRegressor(max_iter=200, early_stopping=True, **SMALL).fit(X, y)
    assert len(reg.validation_scores_) == reg.n_iter_
    assert reg.best_validation_score_ > 0.9


# ------------------------------------------------------------ warm start and partial_fit
def test_partial_fit_equals_fit_epoch_by_epoch(iris):
    X, y = iris
    with quiet():
        full = BackpropClassifier(max_iter=3, **SMALL).fit(X, y)
    inc = BackpropClassifier(**SMALL)
    for _ in range(3):
        inc.partial_fit(X, y, classes=np.unique(y))
    assert inc.n_iter_ == 3
    np.testing.assert_array_equal(inc.loss_curve_, full.loss_curve_)
    np.testing.assert_array_equal(inc.predict_proba(X), full.predict_proba(X))


def test_partial_fit_needs_classes_first(iris):
    X, y = iris
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        BackpropClassifier(**SMALL).partial_fit(X, y)
    clf = BackpropClassifier(**SMALL).partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert list(clf.classes_) == [0, 1, 2] and clf.predict_proba(X).shape == (150, 3)
    with pytest.raises(
        ValueError, match=r"y has classes \[7\] that are not in classes_ \[0, 1, 2\]$"
    ):
        clf.partial_fit(X[:3], [0, 1, 7])
    with pytest.raises(ValueError, match=r"classes=\[0, 1\] differs .* first call, \[0, 1, 2\]$"):
        clf.partial_fit(X[:3], [0, 1, 1], classes=np.array([0, 1]))
    with pytest.raises(ValueError, match="early_stopping"):
        BackpropRegressor(early_stopping=True).partial_fit(X, y.astype(float))


def test_partial_fit_first_call_checks_y_against_classes(iris):
    """The first call trained labels missing from ``classes`` as class 0 (a and c with
    classes a, b) or built a network of the wrong width (a, b and c); a multi-label y,
    whose columns are its classes, was refused when ``classes`` was passed anyway."""
    X, y = iris
    with pytest.raises(ValueError, match=r"y has classes \[2\] that are not in classes_ \[0, 1\]$"):
        BackpropClassifier(**SMALL).partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"y has classes \['c'\] that are not in classes_"):
        BackpropClassifier(**SMALL).partial_fit(X[:2], ["a", "c"], classes=["a", "b"])
    Y = np.eye(3, dtype=int)[y]
    Y[::7, 0] = 1  # some rows hold two labels
    given = BackpropClassifier(**SMALL).partial_fit(X, Y, classes=[0, 1, 2])
    inferred = BackpropClassifier(**SMALL).partial_fit(X, Y)
    assert list(given.classes_) == [0, 1, 2]
    np.testing.assert_array_equal(given.predict_proba(X), inferred.predict_proba(X))


@pytest.mark.parametrize("regressor", [False, True])
def test_partial_fit_after_load_starts_a_new_optimizer(tmp_path, iris, regressor):
    """A loaded estimator has no optimizer (the file holds the network): partial_fit used
    to fail with AttributeError '_optimizer'; it trains on as a warm_start fit does."""
    X, y = iris
    cls, kwargs = (BackpropRegressor, {}) if regressor else (BackpropClassifier, {})
    target = y.astype(float) if regressor else y
    with quiet():
        cls(max_iter=5, **SMALL, **kwargs).fit(X, target).save(tmp_path / "m.safetensors")
        warm = cls.load(tmp_path / "m.safetensors").set_params(warm_start=True, max_iter=1)
        warm.fit(X, target)
    loaded = cls.load(tmp_path / "m.safetensors")
    loaded.partial_fit(X, target)
    assert loaded.n_iter_ == 6
    np.testing.assert_array_equal(loaded.predict(X), warm.predict(X))
    np.testing.assert_array_equal(loaded.model_.predict(X), warm.model_.predict(X))


def test_warm_start_continues_from_the_fitted_network(iris, tmp_path):
    X, y = iris
    clf = BackpropClassifier(max_iter=5, warm_start=True, **SMALL)
    with quiet():
        clf.fit(X, y)
        first = list(clf.loss_curve_)
        clf.fit(X, y)
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 10
    assert clf.loss_curve_[:5] == first
    assert clf.loss_curve_[5] < first[0]  # it did not start again from random weights
    with pytest.raises(ValueError, match=r"same classes .*: previously \[0, 1, 2\], now \[0, 1\]$"):
        clf.fit(X[y < 2], y[y < 2])
    # set_params of the architecture after a fit: warm_start (and partial_fit) went on with
    # the old network, and save() wrote a record that load() then refused; loss and dropout
    # too: they were kept as fitted with no word, and save() recorded the new values
    fitted = r" \(the fitted network's: "
    for change, mismatch in (
        ({"hidden_layer_sizes": (7,)}, r"hidden_layer_sizes=\[7\]" + fitted + r"\[16\]\)"),
        ({"loss": "binary_cross_entropy"}, "loss='binary_cross_entropy'" + fitted + "'cross_en"),
        ({"dropout": 0.5}, "dropout=0.5" + fitted + r"0.0\)"),
    ):
        kept = clf.get_params()
        clf.set_params(**change)
        for again in (lambda: clf.fit(X, y), lambda: clf.partial_fit(X, y)):
            with pytest.raises(ValueError, match=mismatch + r".*; fit with warm_start=False"):
                again()
        with pytest.raises(ValueError, match="cannot save: " + mismatch):
            clf.save(tmp_path / "c.safetensors")
        assert not (tmp_path / "c.safetensors").exists()
        clf.set_params(**kept)
    # an invalid value is named as such first (dropout=None failed inside float())
    clf.set_params(dropout=None)
    with pytest.raises(ValueError, match="dropout must be a number in"):
        clf.save(tmp_path / "c.safetensors")


@pytest.mark.parametrize("early_stopping", [False, True])
def test_warm_start_goes_on_with_the_plateau_count_and_scores_as_mlpclassifier(
    iris, tmp_path, early_stopping
):
    """A warm_start fit started its plateau count and validation_scores_ again (the docs said
    so, and that best_loss_ did, which it did not): after a fit that stopped at a plateau (4
    epochs, n_iter_no_change=2), the next ran 4 more epochs where MLPClassifier's stops after
    1, and validation_scores_ held the second fit's 4 scores where MLPClassifier's holds 5."""
    X, y = iris
    kw = dict(warm_start=True, tol=1e9, n_iter_no_change=2, max_iter=12,
              early_stopping=early_stopping, hidden_layer_sizes=(8,), random_state=0)  # fmt: skip
    ours, theirs = BackpropClassifier(**kw), MLPClassifier(**kw)
    with quiet():
        for est in (ours, theirs):
            est.fit(X, y)
            assert est.n_iter_ == 4
        ours.save(tmp_path / "m.safetensors")
        loaded = BackpropClassifier.load(tmp_path / "m.safetensors")
        for est in (ours, theirs, loaded):
            est.fit(X, y)
    for est in (ours, loaded):
        assert est.n_iter_ == theirs.n_iter_ == 1
        assert len(est.loss_curve_) == len(theirs.loss_curve_) == 5
        if early_stopping:
            assert len(est.validation_scores_) == len(theirs.validation_scores_) == 5
            assert est.best_validation_score_ == max(est.validation_scores_)
            assert est.best_loss_ is theirs.best_loss_ is None
        else:
            assert est.validation_scores_ is theirs.validation_scores_ is None
            assert est.best_loss_ == min(est.loss_curve_)
            assert theirs.best_loss_ == min(theirs.loss_curve_)


def test_early_stopping_with_a_rare_class_or_few_rows(iris, monkeypatch):
    # a class of one row, or fewer validation rows than classes, failed in train_test_split
    # ("The least populated classes in y have only 1 member"); MLPClassifier trains
    import backprop.sklearn.estimators as estimators

    stratified = []

    def split(*arrays, **kw):
        stratified.append(kw["stratify"] is not None)
        return train_test_split(*arrays, **kw)

    monkeypatch.setattr(estimators, "train_test_split", split)
    X, y = iris
    rare = np.r_[y[:99], 2]  # setosa, versicolor and one virginica
    for rows, labels in ((X[:100], rare), (X[::12], y[::12])):  # 100 rows; 13 rows, 3 classes
        with quiet():
            clf = BackpropClassifier(early_stopping=True, max_iter=3, **SMALL).fit(rows, labels)
        assert clf.n_iter_ == 3 and len(clf.validation_scores_) == 3
    with quiet():  # where it can, the split is stratified
        BackpropClassifier(early_stopping=True, max_iter=1, **SMALL).fit(X, y)
    assert stratified == [False, False, True]


@pytest.fixture
def held_out(monkeypatch):
    """What early stopping scores, each epoch: ``(X, y, sample_weight)`` of the held-out rows."""
    seen = []
    score = BackpropClassifier._validation_score

    def spy(self, X, y, sample_weight):
        seen.append((X, y, sample_weight))
        return score(self, X, y, sample_weight)

    monkeypatch.setattr(BackpropClassifier, "_validation_score", spy)
    return seen


def _rows_of(X, rows):
    """The indices in ``X`` of each of ``rows`` (X's rows are distinct)."""
    return np.array([np.flatnonzero((X == row).all(axis=1))[0] for row in rows])


def test_early_stopping_scores_the_held_out_rows_with_sample_weight_alone(held_out):
    """The held-out rows were scored with sample_weight times class_weight: with
    class_weight the early-stopping score was a class-weighted accuracy. Now it is
    SGDClassifier's: accuracy weighted by sample_weight only (unweighted without one)."""
    X, y = make_classification(n_samples=200, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=3, random_state=0)  # fmt: skip
    w = np.random.default_rng(0).uniform(1.0, 2.0, len(y))
    kw = dict(early_stopping=True, max_iter=1, class_weight={0: 5.0}, **SMALL)
    with quiet():
        clf = BackpropClassifier(**kw).fit(X, y)
    assert held_out[-1][2] is None  # class_weight alone: unweighted
    with quiet():
        clf.fit(X, y, sample_weight=w)
    X_val, y_val, w_val = held_out[-1]
    rows = _rows_of(X, X_val)
    np.testing.assert_array_equal(w_val, w[rows])  # not w * 5 for class 0
    # one epoch: the model kept is the one scored
    expected = accuracy_score(y[rows], clf.predict(X[rows]), sample_weight=w[rows])
    assert clf.validation_scores_ == [expected]


def test_early_stopping_refuses_a_split_leaving_a_part_without_weight(held_out):
    """Held-out rows all of weight 0 failed after the first epoch with "Sample weights must
    contain at least one non-zero number" (the user's weights had some); training rows all
    of weight 0 with "float division by zero". Now one error at the split, naming it."""
    X, y = make_classification(n_samples=100, n_features=4, n_informative=3, n_redundant=0,
                               random_state=0)  # fmt: skip
    kw = dict(early_stopping=True, validation_fraction=0.2, max_iter=1, **SMALL)
    with quiet():
        BackpropClassifier(**kw).fit(X, y)
    rows = _rows_of(X, held_out[-1][0])  # the same split, whatever the weights
    for part, n, weights in (("held-out", 20, np.isin(np.arange(100), rows, invert=True)),
                             ("training", 80, np.isin(np.arange(100), rows))):  # fmt: skip
        with pytest.raises(
            ValueError,
            match=rf"^early_stopping=True: all {n} {part} rows have weight 0 "
            r"\(validation_fraction=0.2\); the split needs rows of positive weight in both "
            "parts: change random_state or validation_fraction",
        ):
            BackpropClassifier(**kw).fit(X, y, sample_weight=weights * 1.0)


def test_most_rows_in_classes_of_their_own_warn_as_mlpclassifier_does():
    """check_classification_targets warned that y "could represent a regression problem" once
    most of over 20 rows had a class of their own; MLPClassifier never calls it, and is
    silent where that warning lives there (scikit-learn 1.8); at 1.7.1, where type_of_target
    gives it, both say it. A continuous y is still refused in that check's words."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 2)), np.arange(100) % 60
    for early_stopping in (False, True):
        said = []
        for est in (MLPClassifier, BackpropClassifier):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est(max_iter=2, early_stopping=early_stopping, random_state=0).fit(X, y)
            said.append(any("could represent a regression" in str(w.message) for w in caught))
        assert said[1] == said[0], (early_stopping, said)
    with pytest.raises(ValueError, match=r"^Unknown label type: continuous\. Maybe you"):
        BackpropClassifier(max_iter=2).fit(X, y + 0.5)


def test_a_float32_regressor_names_a_target_beyond_float32(regression):
    # y * 1e39 read "T contains NaN or inf (first at index [2, 0])", an internal name
    X, y = regression
    big = y[:, 0] * 1e39
    with pytest.raises(ValueError, match=r"^y holds .*e\+39 \(at flat index 0\), beyond float32's"):
        BackpropRegressor(dtype="float32", max_iter=1).fit(X, big)
    with quiet():
        BackpropRegressor(dtype="float64", max_iter=1).fit(X, big)


def test_a_float32_fit_refuses_an_X_beyond_float32_with_one_error(iris):
    """X holding 1e39 with dtype="float32" raised scikit-learn's "Input X contains infinity"
    together with a stray RuntimeWarning "overflow encountered in cast" (in fit and predict)."""
    X, y = iris
    big = X.copy()
    big[3, 1] = 1e39
    opposite = big.copy()  # (1e39 and -1e39 cast to inf and -inf: their sum is 'invalid')
    opposite[4, 1] = -1e39
    with quiet():
        clf = BackpropClassifier(dtype="float32", max_iter=1, **SMALL).fit(X, y)
    too_large = r"^Input X contains infinity or a value too large for dtype\('float32'\)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=too_large):
            BackpropClassifier(dtype="float32", max_iter=1, **SMALL).fit(big, y)
        with pytest.raises(ValueError, match=too_large):
            clf.predict(big)
        with np.errstate(over="ignore"):  # (the test's own cast: 1e39 is inf in float32)
            opposite32 = opposite.astype(np.float32)
        for bad in (opposite, opposite32):
            with pytest.raises(ValueError, match=too_large):
                BackpropClassifier(dtype="float32", max_iter=1, **SMALL).fit(bad, y)
            with pytest.raises(ValueError, match=too_large):
                clf.predict(bad)


def test_a_diverged_fit_leaves_attributes_that_agree(regression):
    # n_iter_ read 0 and loss_curve_ [] beside t_ of 216 epochs and model_ of epoch 216
    from backprop.training import TrainingDiverged

    X, y = regression
    reg = BackpropRegressor(hidden_layer_sizes=(), solver="sgd", momentum=0.0,
                            learning_rate_init=10.0, batch_size=len(y), max_iter=300,
                            random_state=0, n_iter_no_change=1000)  # fmt: skip
    with pytest.raises(TrainingDiverged) as excinfo:
        reg.fit(X, y[:, 0] * 100)
    done = excinfo.value.epoch
    assert done > 0 and reg.n_iter_ == len(reg.loss_curve_) == done
    assert reg.t_ == done * len(y) and reg.loss_ == reg.loss_curve_[-1]


def test_n_iter_no_change_inf_never_stops_at_a_plateau(iris, tmp_path):
    # scikit-learn's documented way to turn the plateau rule off was refused ("must be a
    # positive integer; got inf")
    X, y = iris
    stalls = dict(max_iter=12, tol=1e9, **SMALL)  # no epoch improves by 1e9: a plateau at once
    with quiet():
        assert BackpropClassifier(n_iter_no_change=2, **stalls).fit(X, y).n_iter_ == 4
        clf = BackpropClassifier(n_iter_no_change=np.inf, **stalls)
        with pytest.warns(ConvergenceWarning, match=r"hasn't converged yet$"):
            clf.fit(X, y)
    assert clf.n_iter_ == 12
    clf.save(tmp_path / "m.safetensors")
    assert BackpropClassifier.load(tmp_path / "m.safetensors").n_iter_no_change == np.inf
    with pytest.raises(ValueError, match=r"a positive integer or np.inf; got -inf"):
        BackpropClassifier(n_iter_no_change=-np.inf).fit(X, y)


# ------------------------------------------------------------------- params and determinism
def test_get_set_params_and_clone():
    clf = BackpropClassifier(hidden_layer_sizes=(5, 3), dropout=0.2, alpha=0.5)
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (5, 3) and params["dropout"] == 0.2
    clf.set_params(alpha=2.0, solver="sgd", nesterovs_momentum=False)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and twin is not clf


@pytest.mark.parametrize(
    "dtype", [np.float32, np.dtype("float32"), np.float64, np.dtype("float64"), float]
)
def test_dtype_takes_numpy_dtypes(iris, tmp_path, dtype):
    """dtype=np.float32 (and np.dtype("float32"), np.float64...) was refused: "dtype must be
    'float32' or 'float64'; got <class 'numpy.float32'>"."""
    X, y = iris
    name = np.dtype(dtype).name
    clf = BackpropClassifier(max_iter=2, dtype=dtype, warm_start=True, **SMALL)
    with quiet():
        clf.fit(X, y)
        # (outputs are float32 for a float32 X only: float64 for a float64 one)
        assert clf.model_.dtype == name and clf.predict_proba(X.astype(name)).dtype == name
        clf.fit(X, y)  # warm start: the network's "float32" is the estimator's np.float32
    assert clf.get_params()["dtype"] is dtype  # stored as given, which clone requires
    twin = clone(clf)
    assert twin.get_params()["dtype"] == dtype
    clf.save(tmp_path / "m.safetensors")
    assert BackpropClassifier.load(tmp_path / "m.safetensors").dtype == name


def test_random_state_takes_seeds_and_generators(iris):
    """-1 was refused without the estimator's name and without RandomState among the
    values expected. Seeds past scikit-learn's 2**32 - 1 are taken (default_rng takes any
    int >= 0, and files saved with them load)."""
    X, y = iris
    with quiet():
        for seed in (2**32 - 1, 2**64, np.random.RandomState(0), np.random.default_rng(0)):
            BackpropClassifier(max_iter=1, hidden_layer_sizes=(4,), random_state=seed).fit(X, y)
    expected = (
        r"^BackpropClassifier: random_state must be None, an int >= 0, a "
        r"numpy RandomState or a numpy Generator; got "
    )
    for bad in (-1, "seed", 1.5):
        with pytest.raises(ValueError, match=expected + re.escape(repr(bad)) + "$"):
            BackpropClassifier(random_state=bad).fit(X, y)


def test_random_state_none_follows_np_random_seed(iris):
    """random_state=None took fresh OS entropy on each fit, so np.random.seed(0) did not make
    a script reproducible; scikit-learn's None (check_random_state(None), MLPClassifier's)
    is NumPy's global RandomState, which np.random.seed seeds."""
    X, y = iris
    saved = np.random.get_state()  # noqa: NPY002 - the global state on purpose

    def proba():
        with quiet():
            clf = BackpropClassifier(max_iter=3, hidden_layer_sizes=(8,), dropout=0.2)
            return clf.fit(X, y).predict_proba(X)

    try:
        np.random.seed(0)  # noqa: NPY002 - the global state on purpose
        first, second = proba(), proba()
        np.random.seed(0)  # noqa: NPY002 - the global state on purpose
        again = proba()
    finally:
        np.random.set_state(saved)  # noqa: NPY002 - the global state on purpose
    np.testing.assert_array_equal(again, first)
    assert not np.array_equal(second, first)  # the global state moved on: another network


def test_same_seed_same_bits_and_seeds_differ(iris):
    X, y = iris
    fits = [
        BackpropClassifier(max_iter=20, dropout=0.3, random_state=s, **{"hidden_layer_sizes": (8,)})
        for s in (5, 5, 6)
    ]
    with quiet():
        probas = [f.fit(X, y).predict_proba(X) for f in fits]
    np.testing.assert_array_equal(probas[0], probas[1])
    assert not np.array_equal(probas[0], probas[2])


def test_float32(iris):
    X, y = iris
    with quiet():
        clf = BackpropClassifier(max_iter=100, dtype="float32", **SMALL).fit(X, y)
    assert clf.model_.dtype == "float32"
    assert clf.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize(
    "param, value, match",
    [
        ("hidden_layer_sizes", (4, 0), "hidden_layer_sizes must be a positive int"),
        ("activation", "softmax", "activation must be one of"),
        ("loss", "mse", "loss must be one of cross_entropy, binary_cross_entropy"),
        ("solver", "lbfgs", "solver=.lbfgs. is not available: backprop trains by mini-batch"),
        ("solver", "newton", "solver must be one of sgd, adam, adamw, rmsprop"),
        ("learning_rate", "optimal", "learning_rate must be one of constant, invscaling"),
        ("nesterovs_momentum", "yes", "nesterovs_momentum must be True or False"),
        ("learning_rate_init", 0.0, r"learning_rate_init must be a number in \(0"),
        ("alpha", 10**400, r"alpha must be a number in \[0.0, inf\); got 10{59}\.\.\.$"),
        ("batch_size", 0, "batch_size must be a positive integer or 'auto'"),
        ("max_iter", 2.5, "max_iter must be a positive integer"),
        ("dropout", 1.0, r"dropout must be a number in \[0.0, 1.0\)"),
        ("validation_fraction", 1.0, r"validation_fraction must be a number in \[0.0, 1.0\)"),
        ("dtype", "float16", "dtype must be 'float32' or 'float64'"),
        ("dtype", np.int64, r"dtype must be 'float32' or 'float64' \(or np.float32, np.float64\)"),
        ("random_state", "seed", "random_state must be None, an int"),
        # was accepted: "yes" and -1 printed as True does (scikit-learn: bool or int >= 0)
        ("verbose", "yes", r"^BackpropClassifier: verbose must be True, False or an int >= 0; "),
        ("verbose", -1, r"^BackpropClassifier: verbose must be True, False or an int >= 0; got"),
    ],
)
def test_bad_hyperparameters_raise_one_clear_error(iris, param, value, match):
    X, y = iris
    with pytest.raises(ValueError, match=match):
        BackpropClassifier(**{param: value}).fit(X, y)


@pytest.mark.parametrize("est", [BackpropClassifier(), BackpropRegressor()])
def test_scikit_learns_parameter_validation_does_not_misread_the_constraints(est):
    """The constraint table was named _parameter_constraints, scikit-learn's own name for a
    table in another format: est._validate_params() (which scikit-learn's machinery calls)
    raised "TypeError: 'OneOf' object is not iterable". The table has a name of its own, and
    declares nothing to scikit-learn, as most estimators outside it."""
    assert not hasattr(est, "_parameter_constraints")
    with pytest.raises(ValueError, match=r"^BackpropClassifier: alpha must be a number in"):
        BackpropClassifier(alpha=-1.0).fit(np.eye(2), [0, 1])  # the table is still checked


def test_a_validation_fraction_of_0_is_used_only_by_early_stopping(iris):
    # refused whatever early_stopping said, where MLPClassifier takes it (a drop-in broke)
    X, y = iris
    with quiet():
        BackpropClassifier(validation_fraction=0.0, max_iter=2, **SMALL).fit(X, y)
    with pytest.raises(ValueError, match=r"^validation_fraction=0.0 holds out no rows; "):
        BackpropClassifier(validation_fraction=0.0, early_stopping=True, **SMALL).fit(X, y)


def test_input_errors(iris):
    X, y = iris
    with pytest.raises(NotFittedError):
        BackpropClassifier().predict(X)
    clf = BackpropClassifier(max_iter=5, **SMALL)
    with quiet():
        clf.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but BackpropClassifier is expecting 4"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match=r"y has only one class \(0\.0\); a classifier needs"):
        BackpropClassifier().fit(X, np.zeros(150))  # the label as written, not np.float64(0.0)
    with pytest.raises(ValueError, match=r"only one class \('setosa'\)"):
        BackpropClassifier().fit(X, np.array(["setosa"] * 150))
    with pytest.raises(ValueError, match="non-zero"):
        BackpropClassifier().fit(X, y, sample_weight=np.zeros(150))
    # weights so small that alpha / (batch * mean) overflows: 'weight_decay ... got inf',
    # a parameter the user never set, before
    with pytest.raises(ValueError, match=r"sample_weight has a mean of \S+e-32\d, too small"):
        BackpropClassifier().fit(X, y, sample_weight=np.full(150, 1e-320))
    with pytest.raises(ValueError, match=r"only the class 2 has samples with positive"):
        BackpropClassifier().fit(X, y, sample_weight=(y == 2) * 1.0)
    with pytest.raises(ValueError, match="balanced.*partial_fit"):
        BackpropClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_verbose_prints_each_epoch(iris, capsys):
    X, y = iris
    with quiet():
        BackpropClassifier(max_iter=2, verbose=True, **SMALL).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2"]


def test_verbose_lines_come_from_the_main_process_alone(iris, capsys, monkeypatch):
    """Under mpirun every rank printed every 'Iteration N' line: K copies of each. A rank
    other than 0 (is_main_process False) prints none. (The ConvergenceWarning stays on every
    rank: one made an error must stop every rank, not rank 0 alone.)"""
    from backprop.sklearn import estimators

    X, y = iris
    monkeypatch.setattr(estimators, "is_main_process", lambda: False)
    with quiet():
        BackpropClassifier(max_iter=2, verbose=True, early_stopping=True, **SMALL).fit(X, y)
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------- pickle and files
def test_pickle_and_joblib_round_trip_then_keep_training(iris):
    X, y = iris
    clf = BackpropClassifier(dropout=0.1, **SMALL).partial_fit(X, y, classes=[0, 1, 2])
    copy = pickle.loads(pickle.dumps(clf))
    buf = io.BytesIO()
    joblib.dump(clf, buf)
    buf.seek(0)
    copy2 = joblib.load(buf)
    for c in (copy, copy2):
        np.testing.assert_array_equal(c.predict_proba(X), clf.predict_proba(X))
    # The optimizer, shuffle and dropout generators travel too: training continues identically.
    for c in (clf, copy, copy2):
        c.partial_fit(X, y)
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(copy2.predict_proba(X), clf.predict_proba(X))


def _rewritten(path, edit, out):
    """A copy of the model file ``path`` at ``out`` whose estimator record (a dict) ``edit``
    has changed in place."""
    import json

    from backprop.io import encode_safetensors, load_model, read_header

    meta = dict(read_header(path).metadata)
    record = json.loads(meta["sklearn"])
    edit(record)
    meta["sklearn"] = json.dumps(record)
    out.write_bytes(encode_safetensors(load_model(path).state_dict(), meta))
    return out


def _without_record_field(path, field, out):
    """A copy of the model file ``path`` at ``out`` whose record lacks ``fitted[field]``: a
    file as written before the field was saved."""
    return _rewritten(path, lambda record: record["fitted"].pop(field), out)


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.int32, np.uint64, np.int64, np.float16, np.float32, bool]
)
def test_save_and_load_keep_the_dtype_of_classes(tmp_path, iris, dtype):
    """classes_ of uint8 came back int64, of float32 float64 (and predict's labels with
    them), where the docs say the file keeps them "with their type", as pickle does."""
    X, y = iris
    labels = (y > 0) if dtype is bool else np.array([0, 7, 200])[y].astype(dtype)
    with quiet():
        clf = BackpropClassifier(max_iter=2, **SMALL).fit(X, labels)
    path = tmp_path / "m.safetensors"
    clf.save(path)
    back = BackpropClassifier.load(path)
    assert back.classes_.dtype == clf.classes_.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    assert back.predict(X).dtype == clf.predict(X).dtype == np.dtype(dtype)
    if dtype is np.uint8:  # a file written before the dtype was kept loads as before
        old = BackpropClassifier.load(
            _rewritten(path, lambda r: r["fitted"]["classes"].pop("dtype"), tmp_path / "o.st")
        )
        assert old.classes_.dtype == np.int64 and old.classes_.tolist() == [0, 7, 200]


@pytest.mark.parametrize(
    "classes, match",
    [
        ({"kind": "int", "dtype": "object", "values": [0, 1, 2]},
         r"labels of kind 'int' have dtype 'object'; expected one of int8, int16, "),
        ({"kind": "int", "dtype": "float32", "values": [0, 1, 2]}, "expected one of int8"),
        ({"kind": "int", "dtype": ["O"], "values": [0, 1, 2]}, r"have dtype \['O'\]; expected"),
        ({"kind": "str", "dtype": "<U3", "values": ["a", "b", "c"]},
         r"kind 'str' have dtype '<U3'; expected one of none \(the field is for bools and "),
        ({"kind": "int", "dtype": "uint8", "values": [0, 1, 300]},
         r"integer labels out of uint8's range"),
        ({"kind": "int", "dtype": "int64", "values": [0, 1, 2**63]}, "out of int64's range"),
        ({"kind": "float", "dtype": "float32", "values": [0.0, 0.5, 0.1]},
         r"labels not exactly representable as float32"),
        ({"kind": "float", "dtype": "float16", "values": [0.0, 1.0, 1e300]},
         r"labels not exactly representable as float16"),
    ],
)  # fmt: skip
def test_load_refuses_a_dtype_of_labels_that_is_not_allowed(tmp_path, iris, classes, match):
    # the record's dtype never reaches np.dtype unless it is one of the allowed names
    from backprop.io import ModelFileError

    X, y = iris
    path = tmp_path / "m.safetensors"
    with quiet():
        BackpropClassifier(max_iter=2, **SMALL).fit(X, y).save(path)
    bad = _rewritten(path, lambda r: r["fitted"].update(classes=classes), tmp_path / "bad.st")
    with pytest.raises(ModelFileError, match=match):
        BackpropClassifier.load(bad)


def test_a_sparse_multilabel_y_predicts_sparse_after_load(tmp_path):
    """With a sparse multi-label y, predict returned a sparse matrix after fit and after a
    pickle, but a dense array after save/load: the record did not keep that y was sparse.
    A file written before it was kept still loads, predicting dense arrays as it did."""
    import scipy.sparse

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    Y = scipy.sparse.csr_matrix(np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int))
    with quiet():
        clf = BackpropClassifier(max_iter=20, **SMALL).fit(X, Y)
    path = tmp_path / "m.safetensors"
    clf.save(path)
    expected = clf.predict(X)
    for copy in (pickle.loads(pickle.dumps(clf)), BackpropClassifier.load(path)):
        got = copy.predict(X)
        assert scipy.sparse.issparse(expected) and scipy.sparse.issparse(got)
        np.testing.assert_array_equal(got.toarray(), expected.toarray())
    old = BackpropClassifier.load(_without_record_field(path, "sparse_y", tmp_path / "o.st"))
    np.testing.assert_array_equal(old.predict(X), expected.toarray())
    with quiet():
        dense = BackpropClassifier(max_iter=2, **SMALL).fit(X, Y.toarray())
    dense.save(path)
    assert isinstance(BackpropClassifier.load(path).predict(X), np.ndarray)


def test_save_and_load_classifier(tmp_path, iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])
    clf = BackpropClassifier(max_iter=50, class_weight={"setosa": 2.0}, **SMALL)
    with quiet():
        clf.fit(X, names[y])
    path = tmp_path / "iris.safetensors"
    clf.save(path)
    back = BackpropClassifier.load(path)
    assert back.get_params() == clf.get_params()
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    assert back.classes_.dtype == clf.classes_.dtype == "<U10"  # not object, as it used to be
    assert back.predict(X).dtype == clf.predict(X).dtype
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    assert back.loss_curve_ == clf.loss_curve_ and back.n_iter_ == clf.n_iter_
    # the file is an ordinary model file too
    from backprop.io import load_model

    np.testing.assert_array_equal(load_model(path).predict(X), clf.model_.predict(X))


def test_a_label_that_is_not_unicode_text_is_refused_at_save(tmp_path, iris):
    # a lone surrogate saved (JSON escapes it), loaded, then every file written from it
    # failed: predict -o and export ended with "'utf-8' codec can't encode"
    X, y = iris
    clf = BackpropClassifier(max_iter=5, **SMALL)
    with quiet():
        clf.fit(X, np.array(["a", "b", "x\ud800"])[y])
    with pytest.raises(ValueError, match=r"a name or label is not Unicode text \(a lone surr"):
        clf.save(tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def test_save_refuses_what_load_would_refuse_and_keeps_the_old_file(tmp_path, iris):
    # classes_ changed after fit (2 labels on a 3-output network) was saved over a good
    # file, which load (and backprop predict) then refused
    X, y = iris
    clf = BackpropClassifier(max_iter=5, **SMALL)
    with quiet():
        clf.fit(X, y)
    path = tmp_path / "est.safetensors"
    clf.save(path)
    good = path.read_bytes()
    clf.classes_ = np.array(["a", "b"])
    with pytest.raises(ValueError, match=r"^cannot save .*est.safetensors: 2 multiclass classes "
                       "need a cross-entropy network with 2 outputs"):  # fmt: skip
        clf.save(path)
    assert path.read_bytes() == good


def test_save_and_load_regressor_with_feature_names(tmp_path, regression):
    pd = pytest.importorskip("pandas", reason="feature names come from a pandas DataFrame")
    X, y = regression
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    reg = BackpropRegressor(max_iter=20, early_stopping=True, **SMALL)
    with quiet():
        reg.fit(frame, y[:, 0])
    path = tmp_path / "reg.safetensors"
    reg.set_params(hidden_layer_sizes=16).save(path)  # an int, as get_params gives it
    back = BackpropRegressor.load(path)
    assert back.get_params()["hidden_layer_sizes"] == 16  # not (16,)
    np.testing.assert_array_equal(back.feature_names_in_, reg.feature_names_in_)
    np.testing.assert_array_equal(back.predict(frame), reg.predict(frame))
    assert back.predict(frame).shape == (120,)
    assert back.validation_scores_ == reg.validation_scores_
    assert back.best_loss_ is reg.best_loss_ is None  # early stopping: as scikit-learn's


def test_load_rejects_the_wrong_file(tmp_path, iris):
    from backprop import MLP
    from backprop.io import ModelFileError, save_model

    X, y = iris
    plain = tmp_path / "plain.safetensors"
    save_model(plain, MLP([4, 3, 3], seed=0))
    with pytest.raises(ModelFileError, match="without a scikit-learn record"):
        BackpropClassifier.load(plain)
    clf_path = tmp_path / "clf.safetensors"
    with quiet():
        BackpropClassifier(max_iter=2, **SMALL).fit(X, y).save(clf_path)
    with pytest.raises(ModelFileError, match="load it with that class, not BackpropRegressor"):
        BackpropRegressor.load(clf_path)
    with pytest.raises(ModelFileError):
        BackpropClassifier.load(tmp_path / "missing.safetensors")


def test_load_rejects_a_tampered_record(tmp_path, iris):
    import json

    from backprop.io import ModelFileError, encode_safetensors, load_model, read_header

    X, y = iris
    path = tmp_path / "clf.safetensors"
    with quiet():
        BackpropClassifier(max_iter=2, **SMALL).fit(X, y).save(path)
    header = read_header(path)
    tensors = load_model(path).state_dict()

    def rewrite(edit):
        meta = dict(header.metadata)
        record = json.loads(meta["sklearn"])
        edit(record)
        meta["sklearn"] = json.dumps(record)
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(encode_safetensors(tensors, meta))
        return bad

    cases = [
        (lambda r: r["params"].update(hidden_layer_sizes=[99]), r"\[99\] \(the fitted network's"),
        (
            lambda r: r["params"].update(loss="binary_cross_entropy"),
            r"the record's loss=.*the "
            "network itself is intact: backprop.io.load_model reads it",
        ),
        (lambda r: r["params"].update(evil="os.system"), r"unknown hyperparameters \['evil'\]"),
        (lambda r: r["fitted"].update(classes={"kind": "int", "values": ["a"]}), "other values"),
        (lambda r: r["fitted"].update(n_iter="3"), "n_iter is str"),
        (lambda r: r["fitted"].update(target_type="binary"), "binary targets have 2 classes"),
        (lambda r: r.update(format_version=2), "version 1"),
    ]
    for edit, match in cases:
        with pytest.raises(ModelFileError, match=match):
            BackpropClassifier.load(rewrite(edit))
    # a binary classifier (one output) whose record lists 3 classes loaded, with classes_
    # of 3 beside predict_proba's 2 columns
    with quiet():
        BackpropClassifier(max_iter=2, **SMALL).fit(X[y < 2], y[y < 2]).save(path)
    header, tensors = read_header(path), load_model(path).state_dict()
    record = json.loads(header.metadata["sklearn"])
    three = {**record["fitted"]["classes"], "values": [0, 1, 2]}
    with pytest.raises(ModelFileError, match="binary targets have 2 classes; the record holds 3"):
        BackpropClassifier.load(rewrite(lambda r: r["fitted"].update(classes=three)))


# ------------------------------------------------------------------------ optional extra
def test_importing_backprop_does_not_import_sklearn():
    code = "import sys, backprop, backprop.training; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_sklearn_gives_an_install_hint():
    # without scikit-learn, scipy is missing too: the message named scipy's import
    code = (
        "import sys; sys.modules['sklearn'] = sys.modules['scipy'] = None\n"
        "try:\n    import backprop.sklearn\nexcept ImportError as e:\n    print(e)\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.endswith("install it with: pip install 'scikit-learn>=1.7.1'\n")
    assert "needs scikit-learn >= 1.7.1" in out.stdout  # (it said 1.6)
    assert "(import of sklearn halted" in out.stdout and "scipy" not in out.stdout


def test_a_scikit_learn_older_than_the_declared_bound_gives_the_hint():
    """The estimators said they need scikit-learn >= 1.6 where pyproject.toml requires 1.7.1
    (1.6 to 1.7.0 fail the suite: .ci/minimums.txt), and imported with 1.7.0 without a word."""
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'\nsklearn = \["scikit-learn>=1\.7\.1"\]', pyproject)
    code = (
        "import sklearn; sklearn.__version__ = '1.7.0'\n"
        "try:\n    import backprop.sklearn\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("backprop.sklearn needs scikit-learn >= 1.7.1; 1.7.0 is installed")
    assert out.stdout.endswith("upgrade it with: pip install 'scikit-learn>=1.7.1'\n")


def test_torch_backend_matches_numpy(iris):
    pytest.importorskip("torch", reason="the torch backend is the optional extra backprop[torch]")
    X, y = iris
    with quiet():
        on_torch = BackpropClassifier(max_iter=20, backend="torch", **SMALL).fit(X, y)
        on_numpy = BackpropClassifier(max_iter=20, **SMALL).fit(X, y)
    proba = on_torch.predict_proba(X)
    assert isinstance(proba, np.ndarray) and on_torch.model_.backend.name == "torch"
    np.testing.assert_allclose(proba, on_numpy.predict_proba(X), rtol=1e-9, atol=1e-12)
    again = pickle.loads(pickle.dumps(on_torch))
    np.testing.assert_array_equal(again.predict_proba(X), proba)
