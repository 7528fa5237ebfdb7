"""What a fit that fails, diverges or is interrupted leaves in an estimator; the messages for
mistakes in the estimators' arguments; the dtype predict reads X in.

The rule under test (docs in ``estimators._BackpropMLP._fit``): a ``fit`` or
``partial_fit`` that raises leaves the estimator exactly as it was before the call (every
fitted attribute, the network's weights, the optimizer and shuffle generator; an estimator
that was not fitted stays so), except that training stopped by ``TrainingDiverged`` or a
``KeyboardInterrupt`` after it completed epochs keeps those epochs, as ``backprop train``
does: the model of the last completed epoch, with the attributes of those epochs.
"""

import contextlib
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is an optional extra: backprop[sklearn]")

from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.preprocessing import LabelBinarizer  # noqa: E402

from backprop import MLP  # noqa: E402
from backprop.optimizers import Adam, Optimizer  # noqa: E402
from backprop.sklearn import BackpropClassifier, BackpropRegressor  # noqa: E402
from backprop.training import TrainingDiverged  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
Y2 = (X[:, 0] > 0).astype(int)  # two classes
Y3 = np.digitize(X[:, 0], [-0.5, 0.5])  # three classes
YR = X @ [1.0, 2.0, 3.0]  # a regression target
SMALL = dict(hidden_layer_sizes=(8,), random_state=0, learning_rate_init=0.05)


@contextlib.contextmanager
def quiet():
    """Around fits that stop at max_iter on purpose: their ConvergenceWarning is expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _plain(value):
    """A fitted attribute as data that compares with ==."""
    if isinstance(value, MLP):
        return ("MLP", value.config.to_dict(), _plain(value.state_dict()),
                value.dropout_rng.bit_generator.state)  # fmt: skip
    if isinstance(value, Optimizer):
        return ("Optimizer", _plain(value.state_dict()), value.base_lr, value.weight_decay)
    if isinstance(value, np.random.Generator):
        return value.bit_generator.state
    if isinstance(value, LabelBinarizer):
        return ("LabelBinarizer", _plain(value.classes_), value.y_type_)
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tolist())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def state(est):
    """Every attribute of ``est`` that is not a hyperparameter, as comparable data."""
    params = est.get_params(deep=False)
    return {k: _plain(v) for k, v in vars(est).items() if k not in params}


def fitted(cls=BackpropClassifier, y=Y2, **kw):
    with quiet():
        return cls(**{"max_iter": 20, **SMALL, **kw}).fit(X, y)


def interrupt_at_epoch(epoch):
    def callback(state):
        if state.epoch == epoch:
            raise KeyboardInterrupt

    return callback


# --------------------------------------------------------------- 1. a failed fit changes nothing
FAILED_REFITS = {
    # labels that sort the other way, then a check that fails: predict read them swapped
    "new labels, zero weights": lambda c: c.fit(X, np.where(Y2, "a", "b"),
                                                 sample_weight=np.zeros(60)),
    "three classes, negative weights": lambda c: c.fit(X, Y3, sample_weight=-np.ones(60)),
    "one class": lambda c: c.fit(X, np.zeros(60, int)),
    "five features, bad weights": lambda c: c.fit(np.hstack([X, X[:, :2]]), Y2,
                                                   sample_weight=np.ones(3)),
    "multi-label, negative weights": lambda c: c.fit(X, np.column_stack([Y2, 1 - Y2]),
                                                      sample_weight=-np.ones(60)),
    "a callback that fails at epoch 2": lambda c: c.set_params(
        callbacks=[lambda s: 1 / 0 if s.epoch == 2 else None]).fit(X, Y3),
}  # fmt: skip


@pytest.mark.parametrize("refit", list(FAILED_REFITS))
def test_a_failed_refit_leaves_the_fitted_classifier_as_it_was(refit, tmp_path):
    clf = fitted()
    before, proba = state(clf), clf.predict_proba(X)
    with pytest.raises((ValueError, ZeroDivisionError)):
        FAILED_REFITS[refit](clf)
    clf.set_params(callbacks=None)
    assert state(clf) == before
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    np.testing.assert_array_equal(clf.predict(X[:4]), Y2[:4])
    clf.save(tmp_path / "m.safetensors")


def test_a_failed_refit_leaves_the_regressor_as_it_was():
    # 1-D y, then a fit with 2-D y that fails: predict returned shape (n, 1)
    reg = fitted(BackpropRegressor, YR)
    before, pred = state(reg), reg.predict(X)
    with pytest.raises(ValueError, match="sample_weight"):
        reg.fit(X, np.column_stack([YR, YR]), sample_weight=np.ones(3))
    assert state(reg) == before and reg.n_features_in_ == 3
    np.testing.assert_array_equal(reg.predict(X), pred)


@pytest.mark.parametrize("cls, y", [(BackpropClassifier, Y2), (BackpropRegressor, YR)])
def test_a_failed_first_fit_leaves_the_estimator_unfitted(cls, y):
    est = cls(**SMALL)
    before = state(est)
    with pytest.raises(ValueError):
        est.fit(np.hstack([X, X]), y, sample_weight=np.ones(3))
    assert state(est) == before == {}
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_a_failed_continuation_puts_back_weights_and_optimizer(how):
    """warm_start and partial_fit train the fitted network in place: a call that fails after
    training changed it puts back the weights, the optimizer and the shuffle generator, and
    the next call goes on bit for bit as if the failed one had not been made."""

    def make():
        est = BackpropClassifier(warm_start=how == "warm_start", max_iter=3, **SMALL)
        with quiet():
            return est.partial_fit(X, Y3, classes=[0, 1, 2]) if how == "partial_fit" else (
                est.fit(X, Y3))  # fmt: skip

    def go_on(est):
        with quiet():
            return est.partial_fit(X, Y3) if how == "partial_fit" else est.fit(X, Y3)

    a, b = make(), make()
    before = state(a)
    a.set_params(callbacks=[lambda s: 1 / 0])  # after the first epoch trained the network
    with pytest.raises(ZeroDivisionError):
        go_on(a)
    a.set_params(callbacks=None)
    assert state(a) == before
    np.testing.assert_array_equal(go_on(a).predict_proba(X), go_on(b).predict_proba(X))
    assert state(a) == state(b)


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_the_loss_curve_grows_in_place_and_a_failed_fit_cuts_it_back(how, monkeypatch):
    # each call copied the curve and took its min: a stream of partial_fit calls was
    # quadratic (60,000 calls: 4.6 ms each, against 2.3 ms for the first); MLPClassifier
    # appends in place
    est = BackpropClassifier(warm_start=how == "warm_start", max_iter=2, **SMALL)

    def go_on():
        with quiet():
            if how == "partial_fit":
                return est.partial_fit(X, Y3, classes=[0, 1, 2])
            return est.fit(X, Y3)

    go_on()
    curve = est.loss_curve_
    for _ in range(3):
        go_on()
    assert est.loss_curve_ is curve and len(curve) == (4 if how == "partial_fit" else 8)
    assert est.best_loss_ == min(curve) and est.loss_ == curve[-1]
    before = state(est)
    record = type(est)._record

    def record_then_fail(self, *args, **kwargs):
        record(self, *args, **kwargs)
        raise KeyboardInterrupt  # after the curve grew

    monkeypatch.setattr(type(est), "_record", record_then_fail)
    with pytest.raises(KeyboardInterrupt):
        go_on()
    assert state(est) == before and est.loss_curve_ is curve


# ------------------------------------------------------------- 2. divergence in the first epoch
DIVERGING_FIRST_EPOCH = {
    "regressor, y * 1e200": (BackpropRegressor, {}, X, YR * 1e200),
    "classifier, X * 1e300": (BackpropClassifier, {}, X * 1e300, Y2),
    "classifier, alpha=1e300": (BackpropClassifier, {"alpha": 1e300}, X, Y2),
}


@pytest.mark.parametrize("case", list(DIVERGING_FIRST_EPOCH))
def test_divergence_in_the_first_epoch_raises_and_leaves_the_estimator_unfitted(case):
    # IndexError from an empty loss curve hid TrainingDiverged, and model_ held random weights
    cls, kw, X_bad, y_bad = DIVERGING_FIRST_EPOCH[case]
    est = cls(**{**SMALL, **kw})
    with pytest.raises(TrainingDiverged, match=r"in epoch 1; \w+ is left unfitted \("):
        est.fit(X_bad, y_bad)
    assert state(est) == {}
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.mark.parametrize("warm_start", [False, True])
def test_divergence_in_the_first_epoch_keeps_the_previous_fit(warm_start, tmp_path):
    reg = fitted(BackpropRegressor, YR, warm_start=warm_start)
    before, pred = state(reg), reg.predict(X)
    with pytest.raises(TrainingDiverged, match=r"keeps the model it had before this call"):
        reg.fit(X, YR * 1e200)
    assert state(reg) == before
    np.testing.assert_array_equal(reg.predict(X), pred)
    reg.save(tmp_path / "m.safetensors")


# ------------------------------------------------------------------- 3. KeyboardInterrupt
@pytest.mark.parametrize("already_fitted", [False, True])
def test_an_interrupted_fit_keeps_the_epochs_it_completed(already_fitted, tmp_path):
    """A Ctrl-C (a notebook's 'interrupt kernel') in a callback after epoch 3: the estimator
    holds the model of epoch 3 with attributes that agree (n_iter_ read 0, loss_curve_ [],
    t_ 180, and save() raised AttributeError), the same as a fit of 3 epochs."""
    clf = fitted() if already_fitted else BackpropClassifier(**SMALL)
    clf.set_params(max_iter=20, callbacks=[interrupt_at_epoch(3)])
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, Y3)
    three = fitted(y=Y3, max_iter=3)
    clf.set_params(max_iter=3, callbacks=None)
    assert state(clf) == state(three)
    assert clf.n_iter_ == len(clf.loss_curve_) == 3 and clf.t_ == 3 * len(X)
    clf.save(tmp_path / "m.safetensors")
    back = BackpropClassifier.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(back.predict_proba(X), three.predict_proba(X))


def test_an_interrupted_fit_under_early_stopping_keeps_its_best_epoch():
    """As a fit that ends: early stopping's best epoch's weights, which best_validation_score_
    names (the last completed epoch's were kept beside it)."""
    es = dict(SMALL, early_stopping=True, n_iter_no_change=50, validation_fraction=0.3)
    clf = BackpropClassifier(**es, max_iter=30, callbacks=[interrupt_at_epoch(12)])
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, Y3)
    with quiet():
        twelve = BackpropClassifier(**es, max_iter=12).fit(X, Y3)
    assert clf.best_validation_score_ == twelve.best_validation_score_
    best = int(np.argmax(twelve.validation_scores_)) + 1
    assert best < 12  # (else the best and the last epoch are one: the test would prove nothing)
    for a, b in zip(clf.coefs_ + clf.intercepts_, twelve.coefs_ + twelve.intercepts_,
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def interrupt_at_step(monkeypatch):
    """Ctrl-C inside an epoch: Adam's ``step`` raises KeyboardInterrupt at its n-th call."""

    def arm(n):
        calls = []
        real = Adam.step

        def step(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == n:
                raise KeyboardInterrupt
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Adam, "step", step)

    return arm


def test_an_interrupt_inside_an_epoch_keeps_the_epochs_before_it(interrupt_at_step):
    # batches of 20 rows: 3 steps an epoch; the 11th step is the second of epoch 4
    clf = BackpropClassifier(batch_size=20, max_iter=20, **SMALL)
    interrupt_at_step(11)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, Y3)
    three = fitted(y=Y3, batch_size=20, max_iter=3)
    kept, expected = state(clf), state(three)
    # the optimizer had taken a step of epoch 4, which is undone: the next partial_fit starts
    # a new one, as it does after load()
    for gone in ("_optimizer", "_shuffle_rng"):
        assert gone not in kept
        del expected[gone]
    clf.set_params(max_iter=3)
    assert kept == expected


def test_an_interrupt_before_the_first_epoch_ended_changes_nothing(interrupt_at_step):
    clf = fitted(y=Y3, batch_size=20)
    before = state(clf)
    interrupt_at_step(2)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, Y3)
    assert state(clf) == before
    interrupt_at_step(2)
    with pytest.raises(KeyboardInterrupt):
        clf.partial_fit(X, Y3)
    assert state(clf) == before


# ------------------------------------------------------------------------------ 4. messages
def test_callbacks_that_are_not_a_list_get_the_engines_message():
    # TypeError: 'function' object is not iterable
    with pytest.raises(ValueError, match=r"^BackpropClassifier: callbacks must be a list of "
                                         r"callbacks; got <function"):  # fmt: skip
        BackpropClassifier(callbacks=interrupt_at_epoch(1), **SMALL).fit(X, Y2)


@pytest.mark.parametrize(
    "value", [1, 2.5, {0: lambda state: None}, {lambda state: None}, "cb", np.array([])]
)
def test_callbacks_of_any_kind_but_a_list_are_one_clear_error(value):
    # 1 read "TypeError: 'int' object is not iterable"; a dict passed its keys on to the
    # engine (0: "each callback must be a Callback"), a set its callbacks in no set order
    with pytest.raises(
        ValueError, match=r"^BackpropClassifier: callbacks must be a list of callbacks; got "
    ):
        BackpropClassifier(callbacks=value, **SMALL).fit(X, Y2)


@pytest.mark.parametrize("value", ["balance", 3, {0: "x"}, {0: -1.0}])
def test_a_bad_class_weight_is_refused_by_the_constraints(value):
    # 'balance' got scikit-learn's InvalidParameterError naming compute_sample_weight
    expected = "'balanced', a dict of weights >= 0 by class label, or None"
    with pytest.raises(
        ValueError, match=rf"^BackpropClassifier: class_weight must be {expected}; got "
    ):
        BackpropClassifier(class_weight=value, **SMALL).fit(X, Y3)


def test_class_weight_naming_an_unknown_label():
    # read "The classes, [0, 1, 2], are not in class_weight", never naming 7
    # (the engine's words: tests/test_validation.py)
    with pytest.raises(ValueError, match=r"^class_weight names classes \[7\]; expected classes "
                                         r"among \[0, 1, 2\]"):  # fmt: skip
        BackpropClassifier(class_weight={7: 2.0}, **SMALL).fit(X, Y3)


@pytest.mark.parametrize(
    "sample_weight, class_weight, message",
    [
        (None, {0: 0, 1: 0}, r"class_weight=\{0: 0, 1: 0\} leaves only the class 2 with "),
        (None, {0: 0, 1: 0, 2: 0}, r"class_weight=\{0: 0, 1: 0, 2: 0\} gives every row weight 0"),
        ((Y3 == 2) * 1.0, None, r"only the class 2 has samples with positive sample_weight"),
        ((Y3 != 0) * 1.0, {2: 0}, r"sample_weight with class_weight=\{2: 0\} leaves only the "),
    ],
)
def test_weights_that_leave_one_class_name_their_cause(sample_weight, class_weight, message):
    """class_weight={0: 0, 1: 0} on 3 classes read "only the class 2 has samples with positive
    sample_weight", blaming a sample_weight never given (all 0: "Sample weights must contain
    at least one non-zero number")."""
    clf = BackpropClassifier(class_weight=class_weight, **SMALL)
    with pytest.raises(ValueError, match="^" + message):
        clf.fit(X, Y3, sample_weight=sample_weight)


@pytest.mark.parametrize("estimator", [BackpropClassifier, BackpropRegressor])
def test_sample_weights_whose_sum_overflows_train(estimator):
    """Weights of 1e307 overflowed in their sum and mean (two RuntimeWarnings), then read
    as 'Sample weights must contain at least one non-zero number; all weights are zero'.
    Their mean is 1e307 exactly, and each row weighs 1 in the engine."""
    from backprop.sklearn.estimators import _mean_weight

    assert _mean_weight(np.full(60, 1e307)) == 1e307
    assert _mean_weight(np.array([1.5e308, 0.5e308])) == 1e308
    y = Y3 if estimator is BackpropClassifier else X[:, 0]
    est = estimator(**SMALL).fit(X, y, sample_weight=np.full(len(X), 1e307))
    assert est.n_iter_ > 0 and np.isfinite(est.loss_curve_).all()


def test_partial_fit_class_weight_on_a_batch_without_some_classes():
    # scikit-learn's compute_sample_weight looked at the batch's classes alone: "The classes,
    # [1], are not in class_weight" for a batch without class 0, which the dict names
    weights = {0: 2.0, 2: 0.5}
    batch = Y3 > 0
    clf = BackpropClassifier(class_weight=weights, **SMALL)
    clf.partial_fit(X[batch], Y3[batch], classes=[0, 1, 2])
    clf.partial_fit(X, Y3)
    # the rows' weights are the dict's (1 for the class it does not name): the same as
    # sample_weight given by hand
    by_hand = BackpropClassifier(**SMALL)
    by_hand.partial_fit(X[batch], Y3[batch], classes=[0, 1, 2],
                        sample_weight=np.where(Y3[batch] == 2, 0.5, 1.0))  # fmt: skip
    by_hand.partial_fit(X, Y3, sample_weight=np.select([Y3 == 0, Y3 == 2], [2.0, 0.5], 1.0))
    np.testing.assert_array_equal(clf.predict_proba(X), by_hand.predict_proba(X))


@pytest.mark.parametrize(
    "y", [np.array(["a", "b"] * 30), np.array(["1.5"] + ["a"] * 59, dtype=object)]
)
def test_a_regressor_with_words_for_targets_says_y_must_be_numbers(y):
    # "could not convert string to float: np.str_('a')"
    with pytest.raises(ValueError, match=r"^y holds 'a' \(at flat index \d\); a regressor's "
                                         r"targets must be numbers"):  # fmt: skip
        BackpropRegressor(**SMALL).fit(X, y)


def test_a_sparse_y_for_the_regressor_is_one_clear_error():
    """A sparse y read "setting an array element with a sequence."."""
    import scipy.sparse

    y = scipy.sparse.csr_matrix(np.column_stack([YR, YR]))
    with pytest.raises(ValueError, match=r"^y is a sparse matrix \(csr_matrix, shape \(60, 2\)\); "
                                         r"a regressor's targets must be a dense array, e\.g\. "
                                         r"y\.toarray\(\)$"):  # fmt: skip
        BackpropRegressor(**SMALL).fit(X, y)


@pytest.mark.parametrize("sparse", [False, True])
def test_a_multilabel_y_of_other_values_than_0_and_1_is_refused(sparse):
    """A multi-label y of 0s and 2s (scikit-learn's type_of_target calls any two integer
    values an indicator) failed in the engine, naming its internal T: "T holds 2 (first at
    index [..., 0]); loss 'binary_cross_entropy' takes probabilities in [0, 1]..."
    (MLPClassifier trains on the targets 2 and predicts 0/1)."""
    import scipy.sparse

    twos = np.column_stack([Y2, 1 - Y2]) * 2
    # (a sparse y of -1s and 1s is no indicator to scikit-learn: its own error, as before)
    for labels in (twos,) if sparse else (twos, twos - 1):
        row, col = np.argwhere((labels != 0) & (labels != 1))[0]
        expected = (
            rf"^y is a multi-label indicator matrix holding {labels[row, col]} \(at row {row}, "
            rf"column {col}\); its entries must be 0 or 1$"
        )
        y = scipy.sparse.csr_matrix(labels) if sparse else labels
        with pytest.raises(ValueError, match=expected):
            BackpropClassifier(**SMALL).fit(X, y)


def test_the_kind_of_target_cannot_change_after_a_fit():
    """After a multi-label fit, partial_fit with one label a row (or with a third label column)
    read "y has classes [2] that are not in classes_ [0, 1]"."""
    multilabel = fitted(y=np.column_stack([Y2, 1 - Y2]), max_iter=1)
    with pytest.raises(ValueError, match=r"^y holds one class label per row but the classifier was "
                                         r"fitted on a multi-label indicator matrix with 2 label "
                                         r"columns; fit with warm_start=False"):  # fmt: skip
        multilabel.partial_fit(X, Y3)
    with pytest.raises(ValueError, match=r"^y holds a multi-label indicator matrix with 3 label "
                                         r"columns but the classifier was fitted on a multi-label "
                                         r"indicator matrix with 2 label columns"):  # fmt: skip
        multilabel.partial_fit(X, np.column_stack([Y2, 1 - Y2, Y2]))
    single = fitted(y=Y3, max_iter=1, warm_start=True)
    with pytest.raises(ValueError, match=r"^y holds a multi-label indicator matrix with 3 label "
                                         r"columns but the classifier was fitted on one class "
                                         r"label per row \(classes \[0, 1, 2\]\)"):  # fmt: skip
        single.fit(X, np.column_stack([Y2, 1 - Y2, Y2]))
    single.partial_fit(X[Y3 < 2], Y3[Y3 < 2])  # a batch of two of the classes is no change


def test_partial_fit_with_one_class_names_classes():
    # read "y has only one class (0)", although y had two and the list was classes
    with pytest.raises(ValueError, match=r"^classes=\[0\] has only one class; a classifier "):
        BackpropClassifier(**SMALL).partial_fit(X, Y2, classes=[0])


# ------------------------------------------------------------------------------- 5. dtype
@pytest.mark.parametrize(
    "cls, y, methods",
    [
        (BackpropClassifier, Y3, ["decision_function", "predict_proba", "predict_log_proba"]),
        (BackpropClassifier, Y2, ["decision_function", "predict_proba", "predict_log_proba"]),
        (BackpropRegressor, YR, ["predict"]),
    ],
)
def test_a_float32_network_predicts_in_the_float_type_of_X(cls, y, methods):
    """dtype="float32" gave float32 outputs for a float64 X, where MLPRegressor's are
    float64: outputs are float64 but for a float32 X (scikit-learn's MLP keeps float32)."""
    est = fitted(cls, y, dtype="float32")
    for method in methods:
        predict = getattr(est, method)
        as64, as32, from_ints = predict(X), predict(X.astype(np.float32)), predict(X.round())
        assert (as64.dtype, as32.dtype, from_ints.dtype) == (np.float64, np.float32, np.float64)
        np.testing.assert_array_equal(as64, as32)  # the same float32 network's values


@pytest.mark.parametrize("cls, y", [(BackpropClassifier, Y3), (BackpropRegressor, YR)])
def test_predict_reads_X_in_the_fitted_networks_dtype(cls, y):
    # set_params(dtype="float32") after a float64 fit cast X to float32 before the float64
    # network: predictions moved by ~3e-8 without a word
    est = fitted(cls, y)
    expected = est.predict(X)
    scores = est.decision_function(X) if cls is BackpropClassifier else None
    est.set_params(dtype="float32")
    np.testing.assert_array_equal(est.predict(X), expected)
    if scores is not None:
        np.testing.assert_array_equal(est.decision_function(X), scores)
        assert est.predict_proba(X).dtype == np.float64
