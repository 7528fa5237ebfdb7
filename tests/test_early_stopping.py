"""EarlyStopping: what it monitors, which way is better (``mode``), which weights it keeps
(``restore_best_weights``), in the library, a checkpoint, the CLI and the estimators.

The issue's reproduction: ``EarlyStopping(monitor="val_accuracy")`` treated lower as
better, stopped at epoch 4 ("best 0.546 at epoch 1") although the validation accuracy later
reached 0.896, and restored epoch 1's weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from backprop import MLP, EarlyStopping
from backprop.datasets import load_dataset
from backprop.io.checkpoint import _fit_config_from_json, normalize_fit_config
from backprop.training import fit

DATA = load_dataset("circles", seed=1, n_samples=300, noise=0.1)
X, T = DATA.X_train, DATA.targets()
VAL = (X[:60], T[:60])
TRAIN = (X[60:], T[60:])


class Record:
    """A callback after early stopping's: each epoch's weights and history row."""

    def __init__(self) -> None:
        self.weights: list[dict[str, np.ndarray]] = []

    def __call__(self, state) -> None:
        self.weights.append(state.model.state_dict())


def _fit(es: EarlyStopping, as_callback: bool = False, epochs: int = 60):
    # small N(0, 0.1) weights: the validation accuracy starts near chance (0.45) and climbs
    # to 0.9 over 20 epochs, with ups and downs
    net = MLP([2, 8, 2], "tanh", "identity", "cross_entropy", init="normal", seed=3)
    rec = Record()
    kw = {"callbacks": [es, rec]} if as_callback else {"early_stopping": es, "callbacks": [rec]}
    history = fit(net, *TRAIN, optimizer="adam", lr=0.02, epochs=epochs, batch_size=16,
                  seed=0, validation_data=VAL, **kw)  # fmt: skip
    return net, history, rec


@pytest.mark.parametrize("as_callback", [False, True])
def test_val_accuracy_is_maximised_and_the_best_epoch_restored(same_params, as_callback):
    net, history, rec = _fit(EarlyStopping(patience=8, monitor="val_accuracy"), as_callback)
    acc = history["val_accuracy"]
    best = int(np.argmax(acc))  # the first epoch with the highest accuracy
    assert acc[best] > acc[0] + 0.2  # it really climbed: lower-is-better would keep epoch 1
    assert history.best_epoch == best + 1
    assert same_params(net, rec.weights[best])
    assert len(acc) == best + 1 + 8 or len(acc) == 60  # stopped by patience, or ran out
    assert f"best {acc[best]:.6g} at epoch {best + 1}" in history.stop_reason or len(acc) == 60


def test_mode_is_obeyed_and_auto_minimises_losses(same_params):
    net, history, rec = _fit(EarlyStopping(patience=8, monitor="val_accuracy", mode="min"))
    acc = history["val_accuracy"]
    assert history.best_epoch == int(np.argmin(acc)) + 1  # asked for: lower is better
    net, history, rec = _fit(EarlyStopping(patience=5))  # val_loss, auto: minimised
    assert history.best_epoch == int(np.argmin(history["val_loss"])) + 1
    assert same_params(net, rec.weights[history.best_epoch - 1])
    assert EarlyStopping(monitor="val_r2").maximises() and not EarlyStopping().maximises()


def test_keep_last_weights(same_params):
    net, history, rec = _fit(EarlyStopping(patience=3, restore_best_weights=False))
    assert history.best_epoch is not None and len(history) > history.best_epoch
    assert same_params(net, rec.weights[-1])


def test_a_run_that_uses_every_epoch_says_whose_model_it_ends_with(same_params):
    """Patience longer than the run: early stopping never fires, its best weights are
    restored, and the stop reason said only 'completed 30 epochs' over a table of epoch
    B's numbers."""
    net, history, rec = _fit(EarlyStopping(patience=100, monitor="val_accuracy"), epochs=30)
    best = history.best_epoch
    assert best is not None and best < 30 and same_params(net, rec.weights[best - 1])
    assert (
        history.stop_reason
        == f"completed 30 epochs; the model is epoch {best}'s, early stopping's best"
    )
    net, history, rec = _fit(EarlyStopping(patience=100, restore_best_weights=False), epochs=30)
    assert history.stop_reason == "completed 30 epochs"  # the last epoch's model, as it says
    assert _fit(EarlyStopping(patience=5), epochs=1)[1].stop_reason == "completed 1 epoch"


def test_monitors_that_do_not_exist():
    net = MLP([2, 4, 2], "tanh", "identity", "cross_entropy", seed=0)
    with pytest.raises(ValueError, match="monitors 'val_f1'.*columns are: loss, accuracy"):
        fit(net, *TRAIN, epochs=2, early_stopping=EarlyStopping(monitor="val_f1", mode="max"))
    # a val_... monitor without validation data watches its training column
    history = fit(net, *TRAIN, epochs=3, early_stopping=EarlyStopping(1, monitor="val_accuracy"))
    assert history.best_epoch is not None
    for bad in ({"mode": "up"}, {"patience": 0}, {"min_delta": -1.0}, {"monitor": ""}):
        with pytest.raises(ValueError):
            EarlyStopping(**bad)


def test_checkpoints_keep_mode_and_restore_and_read_old_records():
    es = EarlyStopping(4, "val_accuracy", 0.01, mode="max", restore_best_weights=False)
    stored = json.loads(json.dumps(normalize_fit_config({"early_stopping": es})))
    back = _fit_config_from_json(stored, "ckpt")["early_stopping"]
    assert back == es
    # a record written before mode existed: every monitor was minimised then
    old = {"early_stopping": {"patience": 4, "monitor": "val_accuracy", "min_delta": 0.0}}
    assert _fit_config_from_json(old, "ckpt")["early_stopping"].mode == "min"


def test_cli_monitor_val_accuracy_restores_the_best_epoch(run_cli, tmp_path, same_params):
    """The acceptance point: early stopping on val_accuracy from the command line keeps the
    weights of the epoch with the best validation accuracy."""
    from backprop.io import load_model
    from backprop.io.checkpoint import load_checkpoint

    out = tmp_path / "r"
    rc, _, err = run_cli("train", "--dataset", "circles", "--layers", "2,8,2", "--noise", "0.1",
                         "--optimizer", "adam", "--lr", "0.02", "--init", "normal",
                         "--early-stopping", "8", "--monitor", "val_accuracy", "--epochs", "60",
                         "--checkpoint-every", "1", "--out", str(out), "--no-plots",
                         "--no-progress")  # fmt: skip
    assert rc == 0, err
    summary = json.loads((out / "summary.json").read_text())
    rows = (out / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    acc = [float(r.split(",")[header.index("val_accuracy")]) for r in rows[1:]]
    assert summary["best_epoch"] == int(np.argmax(acc)) + 1
    assert max(acc) > acc[0]
    assert summary["validation"]["accuracy"] == pytest.approx(max(acc))
    state, fit_config = load_checkpoint(out)
    assert fit_config["early_stopping"] == EarlyStopping(8, "val_accuracy")
    assert same_params(load_model(out / "model.safetensors"), state.best_params)
    assert 'monitor = "val_accuracy"' in (out / "config.toml").read_text()


def test_cli_refuses_a_monitor_the_history_will_not_have(run_cli, tmp_path):
    rc, _, err = run_cli("train", "--dataset", "xor", "--monitor", "val_r2",
                         "--out", str(tmp_path / "r"))  # fmt: skip
    assert rc == 2 and "--monitor val_r2 is not a column" in err and "val_accuracy" in err
    assert not (tmp_path / "r").exists()


def test_estimators_write_their_score_for_early_stopping(same_params):
    """With early_stopping=True the held-out score is in each epoch's row (val_accuracy,
    val_r2), so the library's EarlyStopping can watch it from ``callbacks``."""
    pytest.importorskip("sklearn")
    from backprop.sklearn import BackpropClassifier, BackpropRegressor

    seen: list[float] = []
    clf = BackpropClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=40,
                             random_state=0, n_iter_no_change=100,
                             callbacks=[EarlyStopping(5, "val_accuracy"),
                                        lambda s: seen.append(s.history.epochs[-1]
                                                              ["val_accuracy"])])  # fmt: skip
    clf.fit(DATA.X_train, DATA.y_train)
    assert seen == clf.validation_scores_ and len(seen) < 40
    reg = BackpropRegressor(hidden_layer_sizes=(8,), early_stopping=True, max_iter=5,
                            random_state=0, callbacks=[EarlyStopping(2, "val_r2")])  # fmt: skip
    with pytest.warns(Warning):  # ConvergenceWarning: 5 epochs
        reg.fit(DATA.X_train, DATA.X_train[:, 0] ** 2)
    assert len(reg.validation_scores_) <= 5


def _scripted(es: EarlyStopping, column: str, scores: list[float]):
    """fit for up to ``len(scores)`` epochs with ``scores[e - 1]`` written into epoch e's row
    as ``column`` by a callback before ``es`` (callbacks run in their list's order)."""

    def script(state) -> None:
        state.history.epochs[-1][column] = scores[state.epoch - 1]

    net = MLP([2, 3, 2], "tanh", "identity", "cross_entropy", seed=0)
    return fit(net, *TRAIN, epochs=len(scores), seed=0, callbacks=[script, es])


def test_min_delta_is_an_absolute_margin_below_the_best_loss():
    # improvement means score < best - min_delta (min_delta 0.1, patience 2):
    #   epoch 1: 2.00 < inf          -> best 2.00 at 1
    #   epoch 2: 1.85 < 2.00 - 0.1   -> best 1.85 at 2   (relative, 1.85 < 2.00 * 0.9, is not)
    #   epoch 3: 1.78 < 1.75? no     -> 1 epoch without
    #   epoch 4: 1.76 < 1.75? no     -> 2 epochs without: stop, best 1.85 at epoch 2
    history = _scripted(EarlyStopping(2, "score", min_delta=0.1, mode="min"), "score",
                        [2.0, 1.85, 1.78, 1.76, 1.74, 1.0])  # fmt: skip
    assert (len(history), history.best_epoch) == (4, 2)
    assert "score did not improve for 2 epochs (best 1.85 at epoch 2)" in history.stop_reason
    # the brief's case: 0.95 is not below 1.0 - 0.1, 0.85 is; 0.84, 0.83 not below 0.75
    history = _scripted(EarlyStopping(2, "score", min_delta=0.1, mode="min"), "score",
                        [1.0, 0.95, 0.85, 0.84, 0.83, 0.1])  # fmt: skip
    assert (len(history), history.best_epoch) == (5, 3)


def test_min_delta_is_an_absolute_margin_above_the_best_accuracy():
    # maximised (auto: the name holds "accuracy"): improvement means acc > best + min_delta
    #   epoch 1: 0.50                -> best 0.50 at 1
    #   epoch 2: 0.55 > 0.60? no     -> 1 epoch without
    #   epoch 3: 0.65 > 0.60         -> best 0.65 at 3
    #   epoch 4: 0.70 > 0.75? no; epoch 5: 0.74 > 0.75? no -> stop, best 0.65 at epoch 3
    es = EarlyStopping(2, "scripted_accuracy", min_delta=0.1)
    history = _scripted(es, "scripted_accuracy", [0.5, 0.55, 0.65, 0.70, 0.74, 1.0])
    assert (len(history), history.best_epoch) == (5, 3)
    assert "(best 0.65 at epoch 3)" in history.stop_reason


def test_auto_mode_refuses_a_monitor_it_cannot_orient():
    """mode="auto" minimised any name without accuracy or r2: a callback's val_f1 kept its
    worst epoch, saying 'did not improve' as F1 rose. It now needs a mode; the losses and
    errors are still minimised, the scores maximised."""
    for name in ("val_f1", "val_auc", "val_precision", "lr"):
        with pytest.raises(ValueError, match=f"cannot tell whether a larger '{name}' is better"):
            EarlyStopping(monitor=name)
        assert EarlyStopping(monitor=name, mode="max").maximises()
    for name in ("val_loss", "loss", "val_mse", "val_rmse", "val_mae", "error_rate"):
        assert not EarlyStopping(monitor=name).maximises()
    for name in ("val_accuracy", "balanced_accuracy", "val_r2"):
        assert EarlyStopping(monitor=name).maximises()
