"""The training loop: early stopping, callbacks, divergence, class and sample weights,
validation splits, the history, and resuming from a TrainState."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from backprop import LOSSES, MLP
from backprop.optimizers import ExponentialLR, get_optimizer
from backprop.training import (
    Callback,
    EarlyStopping,
    History,
    TrainingDiverged,
    TrainState,
    class_sample_weights,
    epoch_order,
    fit,
)


def _regression(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.normal(size=(n, 2))


def _copy(state: dict) -> dict:
    return {k: v.copy() for k, v in state.items()}


def _equal(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------- early stopping
def test_early_stopping_restores_the_best_epoch():
    # Train towards targets 1 while validating against targets 0.7: the outputs start near
    # 0.5, so the validation loss falls until they pass 0.7 and then rises again.
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (16, 2))
    model = MLP([2, 3, 1], "sigmoid", "sigmoid", "l2", init_scale=0.1, seed=0)
    saved = {}

    def keep_copy(state: TrainState) -> None:
        saved[state.epoch] = state.model.state_dict()

    patience = 4
    history = model.fit(
        X, np.ones((16, 1)), optimizer="sgd", lr=0.2, epochs=200, batch_size=4,
        validation_data=(X, np.full((16, 1), 0.7)), early_stopping=patience,
        callbacks=[keep_copy],
    )  # fmt: skip
    val = history["val_loss"]
    best = int(np.argmin(val)) + 1
    assert history.best_epoch == best
    assert 1 < best < len(history) < 200  # it improved, then got worse, then stopped
    assert len(history) == best + patience
    assert "early stopping" in history.stop_reason and f"epoch {best}" in history.stop_reason
    assert _equal(model.state_dict(), saved[best])  # the best epoch's weights are back
    assert not _equal(saved[best], saved[len(history)])
    assert model.loss(X, np.full((16, 1), 0.7)) == pytest.approx(min(val), rel=1e-12)


def test_early_stopping_without_validation_monitors_training_loss():
    X, T = _regression()
    model = MLP([3, 4, 2], "tanh", "identity", "mse", seed=0)
    es = EarlyStopping(patience=2, monitor="val_loss")
    # a learning rate that makes the loss oscillate, so that it stops early
    history = model.fit(
        X, T, optimizer="sgd", lr=3.0, epochs=60, batch_size=20, early_stopping=es, shuffle=False
    )
    best = int(np.argmin(history["loss"])) + 1
    assert history.best_epoch == best
    assert len(history) < 60


# --------------------------------------------------------------------------------- callbacks
def test_callback_returning_true_stops_training():
    X, T = _regression()
    seen = []

    def stop_at_three(state: TrainState) -> bool:
        assert state.model is model and isinstance(state.rng, np.random.Generator)
        assert len(state.history) == state.epoch  # called after the epoch is recorded
        seen.append(state.epoch)
        return state.epoch == 3

    model = MLP([3, 4, 2], "tanh", "identity", "mse", seed=0)
    history = model.fit(X, T, epochs=10, callbacks=[stop_at_three])
    assert seen == [1, 2, 3] and len(history) == 3
    assert history.stop_reason == "stopped by a callback after epoch 3"


def test_callback_object_setting_stop():
    class StopWhenLow(Callback):
        def on_epoch_end(self, state: TrainState) -> None:
            if state.history["loss"][-1] < 0.3:
                state.stop = True

    rng = np.random.default_rng(1)
    X = rng.normal(size=(32, 2))
    labels = (X[:, 0] > 0).astype(int)
    model = MLP([2, 5, 2], "tanh", "identity", "cross_entropy", seed=0)
    history = model.fit(X, labels, optimizer="adam", lr=0.05, epochs=500, callbacks=[StopWhenLow()])
    assert history["loss"][-1] < 0.3 <= min(history["loss"][:-1])
    assert len(history) < 500


# ------------------------------------------------------------------------------- divergence
def test_divergence_keeps_the_last_good_weights():
    X, T = _regression(32)
    model = MLP([3, 8, 2], "relu", "identity", "mse", seed=0)

    # lr 0.01 in epoch 1, then multiplied by 1e8 each epoch: it must blow up later (a
    # growing schedule: the built-in ones decay, gamma in (0, 1])
    class Growing(ExponentialLR):
        def __call__(self, base_lr: float, epoch: int) -> float:
            return base_lr * 1e8**epoch

    opt = get_optimizer("momentum", lr=0.01, schedule=Growing())
    saved = {0: model.state_dict()}
    moments = {0: opt.state_dict()}

    def keep_copy(state: TrainState) -> None:
        saved[state.epoch] = state.model.state_dict()
        moments[state.epoch] = state.optimizer.state_dict()

    with pytest.raises(
        TrainingDiverged, match=r"training diverged: the loss became (nan|inf)"
    ) as excinfo:
        model.fit(X, T, optimizer=opt, epochs=10, batch_size=8, callbacks=[keep_copy])
    e = excinfo.value
    assert e.epoch >= 1  # at least one good epoch before
    assert len(e.history) == e.epoch and all(math.isfinite(v) for v in e.history["loss"])
    assert f"in epoch {e.epoch + 1}" in str(e) and "smaller learning rate" in str(e)
    assert "diverged" in e.history.stop_reason
    # the weights are those at the start of the failing epoch: all finite; and so are the
    # optimizer's step count and moments (the failed epoch's were kept)
    after = model.state_dict()
    assert _equal(after, saved[e.epoch])
    assert all(np.isfinite(v).all() for v in after.values())
    now, then = opt.state_dict(), moments[e.epoch]
    assert now["t"] == then["t"] > 0 and _equal(now["slots"], then["slots"])


def test_divergence_in_the_first_epoch_keeps_the_initial_weights():
    X, T = _regression(32)
    model = MLP([3, 8, 2], "relu", "identity", "l2", seed=0)
    start = model.state_dict()
    with pytest.raises(TrainingDiverged) as excinfo:
        model.fit(X, T, optimizer="sgd", lr=1e12, epochs=3, batch_size=4)
    assert excinfo.value.epoch == 0 and len(excinfo.value.history) == 0
    assert _equal(model.state_dict(), start)
    # a second fit's first epoch: the weights it started from, which are not the initial
    # ones (it said "the initial weights"); a loss that overflows may be the data's scale
    model.fit(X, T, optimizer="sgd", lr=0.01, epochs=2, batch_size=4)
    trained = model.state_dict()
    with pytest.raises(TrainingDiverged) as excinfo:
        model.fit(X * 1e200, T * 1e200, optimizer="sgd", epochs=1, batch_size=4)
    assert str(excinfo.value).endswith(
        "in epoch 1; the weights it started from were kept (try a smaller learning rate, or "
        "scale the data)"
    )
    assert _equal(model.state_dict(), trained)


def test_kept_weights_give_finite_outputs_on_the_training_rows():
    # one step an epoch at lr 1e100: epoch 2's step left finite weights so large that their
    # outputs are inf - inf; the loss, measured before each step, was finite through epoch
    # 2, so the first NaN loss came in epoch 3, and epoch 2's weights were kept: every row
    # predicted NaN, and predict_classes said class 0
    X = np.random.default_rng(0).normal(size=(64, 2))
    y = (X[:, 0] > 0).astype(int)
    model = MLP([2, 32, 2], "relu", "identity", "cross_entropy", seed=0)
    saved = {}

    def keep_copy(state: TrainState) -> None:
        saved[state.epoch] = state.model.state_dict()

    with pytest.raises(TrainingDiverged, match="the outputs became NaN or inf in epoch 2; the "
                       "weights from the end of epoch 1 were kept") as excinfo:  # fmt: skip
        model.fit(X, y, optimizer="sgd", lr=1e100, epochs=5, batch_size=64, callbacks=[keep_copy])
    assert excinfo.value.epoch == 1 and _equal(model.state_dict(), saved[1])
    assert np.isfinite(model.predict(X)).all()
    # weights that are too large before training: said so, not 'a smaller learning rate'
    model = MLP([2, 32, 2], "relu", "identity", "cross_entropy", init="normal", init_scale=1e300)
    assert all(np.isfinite(v).all() for v in model.params.values())
    with pytest.raises(ValueError, match="outputs on the training rows are NaN or inf before "
                       "training .*a smaller init_scale"):  # fmt: skip
        model.fit(X, y, optimizer="sgd", lr=0.1, epochs=1)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_moments_past_float32_are_a_divergence(backend):
    # float32 gradients past 1.8e19 (features of 1e4, targets of 1e18): Adam's v overflowed
    # to inf with the loss and weights finite, so those weights stopped moving (m / sqrt(inf))
    # without a word, and the CLI's next checkpoint refused the state ('contains NaN or inf')
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(64, 2)) * 1e4).astype(np.float32)
    T = (rng.normal(size=(64, 1)) * 1e18).astype(np.float32)
    if backend != "numpy":  # no flat parameter vector: the moments are kept per parameter
        pytest.importorskip("array_api_strict", reason="array-api-strict is a test extra")
    model = MLP([2, 4, 1], "relu", "identity", "l2", dtype="float32", seed=0, backend=backend)
    assert (model.flat is None) == (backend != "numpy")
    start = model.state_dict()
    with pytest.raises(TrainingDiverged) as excinfo:
        model.fit(X, T, optimizer="adam", epochs=3, batch_size=64)
    assert str(excinfo.value).startswith(
        "training diverged: the adam optimizer's moments became NaN or inf (past float32's "
        "range) in epoch 1; the weights it started from were kept (scale the data, or use "
        "float64)"
    )
    assert _equal(model.state_dict(), start)
    # the epoch's moments are undone too: the same model and optimizer go on with sane data
    # (the inf moments it kept made every later partial_fit diverge, blaming that data)
    opt = get_optimizer("adam")
    with pytest.raises(TrainingDiverged):
        model.fit(X, T, optimizer=opt, epochs=1, batch_size=64)
    assert opt.t == 0 and opt.state_arrays() == []
    sane = rng.normal(size=(64, 2)).astype(np.float32)
    model.fit(sane, sane[:, :1], optimizer=opt, epochs=2, batch_size=16)
    assert opt.t == 8
    model64 = MLP([2, 4, 1], "relu", "identity", "l2", seed=0)
    model64.fit(X.astype(np.float64), T.astype(np.float64), optimizer="adam", epochs=3)
    # past float64's range too: no advice to use float64 then
    with pytest.raises(TrainingDiverged, match=r"\(past float64's range\).*\(scale the data\)$"):
        model64.fit(X.astype(np.float64) * 1e96, T.astype(np.float64) * 1e82, optimizer="adam",
                    epochs=1, batch_size=64)  # fmt: skip


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "rmsprop", "nesterov"])
@pytest.mark.parametrize("bias", [True, False])
def test_a_loaded_optimizers_moments_come_back_after_a_diverged_epoch(optimizer, bias):
    # state loaded (a checkpoint, resume(), a pickle) is per parameter, and the epoch's first
    # step makes it flat: the restore wiped the moments and kept the step count (Adam's bias
    # correction then ran on zeros); MLP([3, 2], bias=False) failed to broadcast instead
    import pickle

    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(32, 3)), rng.normal(size=(32, 2))
    model = MLP([3, 2] if not bias else [3, 4, 2], "relu", "identity", "mse", bias=bias, seed=0)
    opt = get_optimizer(optimizer, lr=0.01)
    model.fit(X, T, optimizer=opt, epochs=2, batch_size=8)
    opt = pickle.loads(pickle.dumps(opt))  # per parameter again
    before = opt.state_dict()
    assert before["t"] == 8 and before["slots"]
    with pytest.raises(TrainingDiverged):
        model.fit(X * 1e200, T * 1e200, optimizer=opt, epochs=1, batch_size=8)
    after = opt.state_dict()
    assert after["t"] == before["t"] and _equal(after["slots"], before["slots"])
    model.fit(X, T, optimizer=opt, epochs=1, batch_size=8)  # and it goes on
    assert opt.t == 12


def test_an_optimizer_loaded_to_the_host_trains_a_torch_model():
    # load_state_dict without backend= keeps host arrays until the first step moves them:
    # the epoch's snapshot of them failed on torch ('numpy.ndarray' has no 'clone')
    pytest.importorskip("torch", reason="the torch backend needs PyTorch")
    pytest.importorskip("array_api_compat", reason="the torch backend needs array-api-compat")
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(32, 4)), rng.normal(size=(32, 2))
    model = MLP([4, 5, 2], "relu", "identity", seed=1, backend="torch")
    opt = get_optimizer("adam", lr=0.01)
    model.fit(X, T, optimizer=opt, epochs=1)
    loaded = get_optimizer("adam", lr=0.01)
    loaded.load_state_dict(opt.state_dict())
    with pytest.raises(TrainingDiverged):
        model.fit(X * 1e200, T * 1e200, optimizer=loaded, epochs=1)
    back, then = loaded.state_dict(), opt.state_dict()
    assert back["t"] == then["t"] and _equal(back["slots"], then["slots"])
    model.fit(X, T, optimizer=loaded, epochs=1)


# -------------------------------------------------------------- class and sample weights
PAIRS = {
    "l2": "sigmoid",
    "mse": "identity",
    "mae": "tanh",
    "huber": "identity",
    "binary_cross_entropy": "identity",
    "cross_entropy": "identity",
}


@pytest.mark.parametrize("loss", list(LOSSES))
def test_weighted_gradient_is_weighted_mean_of_per_sample_gradients(loss):
    # documented in losses.py: L = (1/n) sum_i s_i l_i, so dL/dp = (1/n) sum_i s_i dl_i/dp
    rng = np.random.default_rng(3)
    n = 7
    X = rng.normal(size=(n, 3))
    T = rng.dirichlet(np.ones(2), n) if "entropy" in loss else rng.uniform(size=(n, 2))
    s = rng.uniform(0, 3, n)
    s[2] = 0.0  # a zero weight removes a sample
    model = MLP([3, 5, 2], "tanh", PAIRS[loss], loss, init_scale=0.7, seed=3)
    per_sample = [model.gradients(X[i : i + 1], T[i : i + 1]) for i in range(n)]
    loss_w, grads_w = model.gradients(X, T, sample_weight=s)
    assert loss_w == pytest.approx(sum(s[i] * per_sample[i][0] for i in range(n)) / n, rel=1e-13)
    for k in grads_w:
        expected = sum(s[i] * per_sample[i][1][k] for i in range(n)) / n
        np.testing.assert_allclose(grads_w[k], expected, rtol=1e-12, atol=1e-15)
    # unit weights are the unweighted gradient
    _, g1 = model.gradients(X, T, sample_weight=np.ones(n))
    g1 = {k: v.copy() for k, v in g1.items()}
    _, g0 = model.gradients(X, T)
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-15)


def test_class_sample_weights_table():
    T = np.eye(3)[[0, 0, 0, 1, 2, 2]]
    np.testing.assert_array_equal(class_sample_weights(T, {0: 2.0, 2: 0.5}), [2, 2, 2, 1, 0.5, 0.5])
    # balanced: n / (n_classes * count)
    np.testing.assert_allclose(
        class_sample_weights(T, "balanced"), [6 / 9] * 3 + [6 / 3] + [6 / 6] * 2
    )
    # a single 0/1 output: class = t > 0.5
    t1 = np.array([[0.0], [1.0], [1.0]])
    np.testing.assert_array_equal(class_sample_weights(t1, {1: 3.0}), [1.0, 3.0, 3.0])


def test_class_weight_changes_the_fit_exactly_as_sample_weight():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(12, 3))
    labels = rng.integers(0, 3, 12)
    cw = {0: 3.0, 1: 0.5}
    s = class_sample_weights(np.eye(3)[labels], cw)
    sw_extra = rng.uniform(0.5, 2, 12)
    kw = {"optimizer": "sgd", "lr": 0.5, "epochs": 1, "batch_size": 12, "shuffle": False}

    def trained(**extra):
        m = MLP([3, 4, 3], "tanh", "identity", "cross_entropy", seed=1)
        m.fit(X, labels, **kw, **extra)
        return m.state_dict()

    by_class = trained(class_weight=cw)
    assert _equal(by_class, trained(sample_weight=s))
    assert not _equal(by_class, trained())
    # both multiply: s_i = sample_weight_i * class_weight[class_i]
    assert _equal(
        trained(class_weight=cw, sample_weight=sw_extra), trained(sample_weight=s * sw_extra)
    )
    # one full-batch step of SGD is p - eta * (weighted gradient)
    m = MLP([3, 4, 3], "tanh", "identity", "cross_entropy", seed=1)
    start = m.state_dict()
    _, g = m.gradients(X, labels, sample_weight=s)
    for k in start:
        np.testing.assert_allclose(by_class[k], start[k] - 0.5 * g[k], rtol=1e-13, atol=1e-16)


def test_class_weight_refuses_multi_label_rows():
    # binary cross-entropy on several columns: each row was weighted as its argmax' class,
    # [0, 0, 0] as class 0 and [1, 1, 1] as class 0 only, 'balanced' counted alike
    T = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 1], [1, 1, 1]], float)
    for cw in ({0: 1.0, 1: 5.0, 2: 10.0}, "balanced"):
        with pytest.raises(ValueError, match=r"row 2 of the targets has several classes"):
            class_sample_weights(T, cw)
    with pytest.raises(ValueError, match=r"row 0 of the targets has no class \(\[0.0, 0.0"):
        class_sample_weights(np.array([[0, 0.0], [1, 0]]), "balanced")
    X = np.random.default_rng(0).normal(size=(4, 2))
    m = MLP([2, 3, 3], "tanh", "identity", "binary_cross_entropy", seed=0)
    with pytest.raises(ValueError, match="weight rows with sample_weight instead"):
        m.fit(X, T, class_weight="balanced", epochs=1)
    # class probabilities are still weighted by their most likely class
    soft = np.array([[0.4, 0.3, 0.3], [0.1, 0.8, 0.1]])
    assert class_sample_weights(soft, {1: 2.0}).tolist() == [1.0, 2.0]


# ------------------------------------------------------------------------ validation split
def test_validation_fraction_holds_out_rows_that_are_not_trained_on():
    rng = np.random.default_rng(5)
    n, lr = 8, 0.3
    X, T = rng.normal(size=(n, 2)), rng.uniform(size=(n, 1))
    model = MLP([2, 3, 1], "sigmoid", "sigmoid", "l2", init_scale=1.0, seed=5)
    start = model.state_dict()
    per_row = []
    for i in range(n):
        _, g = model.gradients(X[i : i + 1], T[i : i + 1])
        per_row.append(np.concatenate([np.ravel(v) for v in g.values()]))
    names = list(model.params)
    kw = dict(
        optimizer="sgd", lr=lr, epochs=1, batch_size=n, shuffle=False, validation_fraction=0.25,
        seed=9,
    )  # fmt: skip
    history = model.fit(X, T, **kw)
    step = np.concatenate([np.ravel(model.state_dict()[k] - start[k]) for k in names])
    # which 6 rows trained the model? exactly one subset explains the full-batch step
    fits = [
        rows
        for rows in itertools.combinations(range(n), 6)
        if np.allclose(
            step, -lr * np.mean([per_row[i] for i in rows], axis=0), rtol=1e-10, atol=1e-14
        )
    ]
    assert len(fits) == 1
    val_rows = sorted(set(range(n)) - set(fits[0]))
    assert len(val_rows) == 2  # round(0.25 * 8)
    assert history["val_loss"][0] == pytest.approx(model.loss(X[val_rows], T[val_rows]), rel=1e-12)
    # the same seed holds out the same rows
    again = MLP([2, 3, 1], "sigmoid", "sigmoid", "l2", init_scale=1.0, seed=5)
    h2 = again.fit(X, T, **kw)
    assert h2["val_loss"] == history["val_loss"]


def test_validation_data_is_evaluated_at_each_epoch_end():
    X, T = _regression(24)
    Xv, Tv = _regression(10, seed=1)
    model = MLP([3, 4, 2], "tanh", "identity", "mse", seed=0)
    measured = []
    history = model.fit(
        X, T, epochs=4, validation_data=(Xv, Tv),
        callbacks=[lambda st: measured.append(st.model.loss(Xv, Tv))],
    )  # fmt: skip
    assert len(measured) == 4
    assert history["val_loss"] == pytest.approx(measured, rel=1e-12)
    assert len(set(measured)) == 4  # it changed every epoch


def test_history_columns_and_values():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(20, 2))
    labels = (X[:, 0] * X[:, 1] > 0).astype(int)
    model = MLP([2, 5, 2], "tanh", "identity", "cross_entropy", seed=0)
    first_loss = model.loss(X, labels)
    first_acc = float((model.predict_classes(X) == labels).mean())
    history = model.fit(
        X, labels, optimizer="sgd", lr=0.1, epochs=3, batch_size=20, shuffle=False,
        validation_data=(X[:5], labels[:5]),
    )  # fmt: skip
    assert [row["epoch"] for row in history.epochs] == [1, 2, 3]
    for row in history.epochs:
        assert set(row) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
        assert row["time"] >= 0 and row["lr"] == 0.1 and 0 <= row["accuracy"] <= 1
    # one full batch: the epoch's loss and accuracy are those before its single step
    assert history["loss"][0] == pytest.approx(first_loss, rel=1e-12)
    assert history["accuracy"][0] == pytest.approx(first_acc)
    assert history["val_loss"][-1] == pytest.approx(model.loss(X[:5], labels[:5]), rel=1e-12)
    assert history.stop_reason == "completed 3 epochs"
    assert History.from_dict(history.to_dict()) == history

    regression = MLP([3, 4, 2], "tanh", "identity", "mse", seed=0).fit(*_regression(), epochs=2)
    assert all(set(row) == {"epoch", "loss", "lr", "time"} for row in regression.epochs)


def test_progress_bar_can_be_turned_off(capsys):
    X, T = _regression()
    MLP([3, 4, 2], "tanh", "identity", "mse", seed=0).fit(X, T, epochs=2, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ------------------------------------------------------------------------------- resuming
def test_resuming_from_a_train_state_equals_an_uninterrupted_run():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 3))
    labels = rng.integers(0, 3, 30)
    kw = {"batch_size": 8, "seed": 11}

    def model():
        return MLP([3, 6, 3], "relu", "identity", "cross_entropy", dropout=0.2, seed=2)

    straight = model()
    fit(straight, X, labels, optimizer=get_optimizer("adam", lr=0.01), epochs=5, **kw)

    interrupted = model()
    states = []
    fit(interrupted, X, labels, optimizer=get_optimizer("adam", lr=0.01), epochs=3,
        callbacks=[states.append], **kw)  # fmt: skip
    state = states[-1]
    assert state.epoch == 3
    history = fit(interrupted, X, labels, epochs=5, state=state, **kw)
    assert len(history) == 5
    assert _equal(interrupted.state_dict(), straight.state_dict())


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(
    ("sizes", "out", "loss"),
    [([3, 6, 4], "identity", "cross_entropy"), ([3, 6, 1], "identity", "binary_cross_entropy")],
)
def test_epoch_loss_and_accuracy_over_batches_match_a_step_by_step_loop(sizes, out, loss, shuffle):
    # fit writes each batch's predicted classes over the epoch's row order and gives the
    # last, partial batch views of the full batch's buffers; here the same epoch is made
    # with train_step, counting correct predictions before each step by hand. Shuffled,
    # each epoch's rows come in the order of Generator.permutation from fit's seed, as
    # they always have (fit holds the order as int32, made by arange and shuffle)
    rng = np.random.default_rng(11)
    n, batch = 23, 5  # 4 full batches and one of 3
    X = rng.normal(size=(n, 3))
    labels = rng.integers(0, max(2, sizes[-1]), n)
    T = labels if sizes[-1] > 1 else labels.reshape(-1, 1).astype(float)
    fitted = MLP(sizes, "relu", out, loss, seed=3)
    by_hand = MLP(sizes, "relu", out, loss, seed=3)
    history = fitted.fit(
        X, T, optimizer="sgd", lr=0.3, epochs=2, batch_size=batch, shuffle=shuffle, seed=8
    )
    opt, rng = get_optimizer("sgd", lr=0.3), np.random.default_rng(8)
    for epoch in range(2):
        correct, loss_sum = 0, 0.0
        order = rng.permutation(n) if shuffle else np.arange(n)
        for lo in range(0, n, batch):
            rows = order[lo : lo + batch]
            xb, tb = X[rows], T[rows]
            correct += int((by_hand.predict_classes(xb) == labels[rows]).sum())
            loss_sum += by_hand.train_step(xb, tb, opt) * xb.shape[0]
        assert history["accuracy"][epoch] == correct / n
        assert history["loss"][epoch] == pytest.approx(loss_sum / n, rel=1e-12)
    for name, value in fitted.state_dict().items():
        np.testing.assert_array_equal(value, by_hand.state_dict()[name], err_msg=name)


def test_the_last_partial_batch_borrows_the_full_batch_buffers():
    # 23 rows in batches of 5: the last batch of 3 uses the first rows of the batch-5
    # buffers (layer outputs, masks, deltas, the loss gradient), not arrays of its own
    rng = np.random.default_rng(2)
    X, labels = rng.normal(size=(23, 3)), rng.integers(0, 4, 23)
    model = MLP([3, 6, 5, 4], "relu", "identity", "cross_entropy", seed=0)
    model.fit(X, labels, epochs=1, batch_size=5)
    for layer in model.dense:
        full, last = layer._buffer_sets[5], layer._buffer_sets[3]
        assert last.a.shape[0] == 3 and np.shares_memory(last.a, full.a)
        if full.tmp is not None:
            assert full.tmp.dtype == bool and np.shares_memory(last.tmp, full.tmp)
        if full.dx is not None:
            assert np.shares_memory(last.dx, full.dx)
    grads = model._loss_grad_buffers
    assert np.shares_memory(grads[3], grads[5])


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_the_epoch_order_is_generator_permutation_held_as_int32(n):
    mine, numpy_own = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(3):  # the generator moves on identically, epoch after epoch
        order = epoch_order(mine, n, shuffle=True)
        assert order.dtype == np.int32
        np.testing.assert_array_equal(order, numpy_own.permutation(n))
    np.testing.assert_array_equal(epoch_order(mine, n, shuffle=False), np.arange(n))
    assert mine.random() == numpy_own.random()  # no draw without shuffling


def test_the_weight_decay_mask_is_made_only_for_weight_decay():
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(12, 3)), rng.integers(0, 2, 12)
    plain, decayed = (MLP([3, 4, 2], "relu", "identity", "cross_entropy", seed=0) for _ in "ab")
    plain.fit(X, labels, epochs=1, batch_size=4)
    decayed.fit(X, labels, epochs=1, batch_size=4, optimizer=get_optimizer("sgd", weight_decay=0.1))
    assert "decay_mask" not in vars(plain.flat)  # a parameter-sized vector never made
    assert "decay_mask" in vars(decayed.flat)


def test_orders_drawn_ahead_equal_the_orders_drawn_in_turn():
    """EpochOrders.draw_ahead (used on GPUs while the device computes) changes no draw: the
    same orders and the same generator state after each epoch as drawing each in turn; an
    order drawn ahead is dropped when the generator moved in between (a callback drew)."""
    from backprop.training import EpochOrders, TrainState, epoch_order

    def state(seed):
        return TrainState(model=None, optimizer=None, rng=np.random.default_rng(seed))

    plain, ahead = state(5), state(5)
    orders = EpochOrders(ahead, 1000, shuffle=True)
    orders.ahead_wanted = True
    for epoch in range(4):
        expected = epoch_order(plain.rng, 1000, True)
        got = orders.next()
        np.testing.assert_array_equal(got, expected)
        assert ahead.rng.bit_generator.state == plain.rng.bit_generator.state
        orders.draw_ahead()
        assert ahead.rng.bit_generator.state == plain.rng.bit_generator.state  # not moved
        if epoch == 2:  # a callback draws from the generator between two epochs
            ahead.rng.random()
            plain.rng.random()
    np.testing.assert_array_equal(orders.next(), epoch_order(plain.rng, 1000, True))
    assert ahead.rng.bit_generator.state == plain.rng.bit_generator.state


def test_validation_data_and_a_validation_fraction_together_are_refused():
    """fit(validation_data=..., validation_fraction=0.5) ignored the fraction without a word."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 2)), rng.integers(0, 2, 20)
    with pytest.raises(ValueError, match=r"^validation_fraction=0.5 given with validation_data"):
        fit(MLP([2, 3, 2], seed=0), X, y, validation_data=(X[:4], y[:4]), validation_fraction=0.5)


def test_multi_label_targets_get_no_argmax_accuracy():
    """Several labels a row under binary cross-entropy have no one class: the history's
    accuracy compared the outputs' argmax with the first label (0.63 where exact match,
    the scikit-learn wrapper's, was 0.73). One-hot rows keep theirs."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    multi_hot = (X[:, :3] > 0).astype(float)
    model = MLP([4, 8, 3], "tanh", "identity", "binary_cross_entropy", seed=0)
    history = fit(model, X, multi_hot, epochs=2, validation_fraction=0.2, progress=False)
    assert "accuracy" not in history.epochs[-1] and "val_accuracy" not in history.epochs[-1]
    one_hot = np.eye(3)[rng.integers(0, 3, 60)]
    model = MLP([4, 8, 3], "tanh", "identity", "binary_cross_entropy", seed=0)
    history = fit(model, X, one_hot, epochs=2, validation_fraction=0.2, progress=False)
    assert {"accuracy", "val_accuracy"} <= set(history.epochs[-1])


def test_a_single_logit_is_classed_as_predict_classes_classes_it():
    """A logit just above 0 rounds to p = 0.5 in float32: the history counted it as class 1
    (z > 0) and predict_classes as class 0 (p > 0.5)."""
    model = MLP([1, 1], "tanh", "identity", "binary_cross_entropy", dtype="float32", seed=0)
    model.load_state_dict({"layers.0.W": np.zeros((1, 1), np.float32),
                           "layers.0.b": np.array([1e-8], np.float32)})  # fmt: skip
    X, T = np.zeros((4, 1)), np.ones((4, 1))
    history = fit(model, X, T, lr=1e-30, epochs=1, validation_data=(X, T), progress=False)
    predicted = float(np.mean(model.predict_classes(X) == 1))
    assert history.epochs[-1]["val_accuracy"] == predicted == 0.0


def test_a_count_of_right_rows_is_exact_past_float32s_integers():
    from backprop.training.epochs import count_correct

    n = 2**24 + 3  # float32 holds every integer only up to 2**24
    ones = np.ones((n, 1), np.float32)
    assert int(count_correct(np, ones, ones, False)) == n


def test_a_state_with_another_model_is_refused():
    """other.fit(X, T, state=TrainState(model=m, ...)) trained m and left other as it was,
    without a word."""
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(32, 2)), rng.uniform(size=(32, 1))
    m, other = MLP([2, 3, 1], seed=0), MLP([2, 3, 1], seed=1)
    before = (m.state_dict(), other.state_dict())
    state = TrainState(model=m, optimizer=get_optimizer("adam"), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"with state, fit trains state\.model; pass it as"):
        other.fit(X, T, epochs=2, state=state)
    for model, weights in zip((m, other), before, strict=True):  # neither was trained
        assert all(np.array_equal(v, weights[k]) for k, v in model.state_dict().items())
    fit(m, X, T, epochs=2, state=state)  # the state's own model trains
    assert not np.array_equal(m.state_dict()["layers.0.W"], before[0]["layers.0.W"])
