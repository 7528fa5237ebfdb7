"""Checkpoints: atomic writes, and resuming reproduces the uninterrupted run bit for bit,
including after the training process is killed with SIGKILL in the middle of an epoch."""

from __future__ import annotations

import json
import os
import runpy
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from backprop import MLP
from backprop.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    load_checkpoint,
    resume,
    save_checkpoint,
)
from backprop.io import ModelFileError, load_model
from backprop.optimizers import SGD, get_optimizer
from backprop.training import TrainState, fit

RNG = np.random.default_rng(3)
X = RNG.normal(size=(120, 5))
LABELS = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5).astype(int)  # 3 classes
T = np.eye(3)[LABELS]


def _model(**kw) -> MLP:
    args = dict(
        sizes=[5, 12, 3],
        activation="tanh",
        output_activation="identity",
        loss="cross_entropy",
        dropout=0.2,
        # small N(0, 0.1) weights: with them every optimizer's best validation epoch comes
        # after the crash below, so the uninterrupted run really differs from the crashed one
        init="normal",
        seed=9,
    )
    args.update(kw)
    return MLP(**args)


def _losses(history) -> list[tuple]:
    return [tuple(v for k, v in sorted(row.items()) if k != "time") for row in history.epochs]


class Crash(Exception):
    """Stands in for a crash right after a checkpoint was written."""


def _crash_after(epoch: int):
    def callback(state):
        if state.epoch == epoch:
            raise Crash

    return callback


# ------------------------------------------------------------------ exact resume
@pytest.mark.parametrize(
    "optimizer, opt_kw",
    [
        ("sgd", {"lr": 0.2, "weight_decay": 1e-3}),
        ("momentum", {"lr": 0.05, "schedule": "step"}),
        ("nesterov", {"lr": 0.05}),
        ("adam", {"lr": 0.01, "schedule": "cosine"}),
        ("adamw", {"lr": 0.01}),
        ("rmsprop", {"lr": 0.005, "schedule": "exponential"}),
    ],
)
def test_resume_is_bit_identical(same_params, tmp_path, optimizer, opt_kw):
    settings = dict(epochs=6, batch_size=8, seed=4, validation_fraction=0.2, early_stopping=20)

    full = _model()
    ckpt = Checkpoint(tmp_path / "full", fit_config=settings)
    h_full = fit(
        full, X, T, optimizer=get_optimizer(optimizer, **opt_kw), callbacks=[ckpt], **settings
    )
    ckpt.save()

    crashed = _model()
    ckpt = Checkpoint(tmp_path / "crashed", fit_config=settings)
    with pytest.raises(Crash):
        fit(
            crashed,
            X,
            T,
            optimizer=get_optimizer(optimizer, **opt_kw),
            callbacks=[ckpt, _crash_after(3)],
            **settings,
        )
    assert load_checkpoint(tmp_path / "crashed")[0].epoch == 3
    assert not same_params(crashed, full)  # the crash really happened before the end

    h_resumed = resume(tmp_path / "crashed", X, T)
    resumed = load_model(tmp_path / "crashed" / CHECKPOINT_NAME)
    assert same_params(resumed, full)
    assert _losses(h_resumed) == _losses(h_full)
    assert h_resumed.stop_reason == h_full.stop_reason
    assert h_full.stop_reason.startswith("completed 6 epochs")


def _crash_resume_and_compare(same_params, tmp_path, settings, crash_after: int) -> MLP:
    """Adam for ``settings()`` (fresh each time: a Generator seed is consumed), run whole and
    run crashed after epoch ``crash_after`` then resumed: the same losses, the same final
    weights. Returns the whole run's model."""
    full = _model()
    h_full = fit(full, X, T, optimizer="adam", lr=0.01, **settings())
    crashed = _model()
    ckpt = Checkpoint(tmp_path, fit_config=settings())
    with pytest.raises(Crash):
        fit(crashed, X, T, optimizer="adam", lr=0.01,
            callbacks=[ckpt, _crash_after(crash_after)], **settings())  # fmt: skip
    h_resumed = resume(tmp_path, X, T)
    assert _losses(h_resumed) == _losses(h_full)
    assert same_params(load_model(tmp_path / CHECKPOINT_NAME), full)
    return full


def test_resume_of_a_generator_seed_splits_the_same_rows(same_params, tmp_path):
    """seed=default_rng(4): the checkpoint stores 4, and the resumed run held out other
    validation rows than the run it resumed (the split was derived from a Generator one way
    and from an int another), so its weights differed; a Generator now counts as its int."""

    def settings():
        return dict(epochs=6, batch_size=8, seed=np.random.default_rng(4), validation_fraction=0.2)

    full = _crash_resume_and_compare(same_params, tmp_path, settings, crash_after=3)
    as_int = _model()
    fit(as_int, X, T, optimizer="adam", lr=0.01, **dict(settings(), seed=4))
    assert same_params(as_int, full)


@pytest.mark.parametrize("bit_generator", [np.random.MT19937, np.random.Philox, np.random.SFC64])
def test_resume_with_every_bit_generator_the_docs_list(same_params, tmp_path, bit_generator):
    # their states hold arrays: the first save was 'Object of type ndarray is not JSON
    # serializable', a traceback
    def settings():
        return dict(epochs=5, batch_size=8, seed=np.random.Generator(bit_generator(4)))

    _crash_resume_and_compare(same_params, tmp_path, settings, crash_after=2)


def test_resume_with_early_stopping_restores_the_same_best_weights(same_params, tmp_path):
    settings = dict(epochs=40, batch_size=10, seed=1, validation_fraction=0.3, early_stopping=3)
    full = _model(sizes=[5, 40, 3])
    h_full = fit(full, X, T, optimizer="adam", lr=0.05, **settings)
    assert h_full.stop_reason.startswith("early stopping")  # the case this test is about
    stop_epoch = len(h_full)

    crashed = _model(sizes=[5, 40, 3])
    ckpt = Checkpoint(tmp_path, fit_config=settings)
    with pytest.raises(Crash):
        fit(
            crashed,
            X,
            T,
            optimizer="adam",
            lr=0.05,
            callbacks=[ckpt, _crash_after(stop_epoch - 2)],
            **settings,
        )
    h_resumed = resume(tmp_path, X, T)
    assert h_resumed.stop_reason == h_full.stop_reason
    assert h_resumed.best_epoch == h_full.best_epoch
    assert same_params(load_model(tmp_path / CHECKPOINT_NAME), full)


def test_resume_can_extend_a_finished_run(same_params, tmp_path):
    settings = dict(epochs=5, batch_size=16, seed=2)
    full = _model()
    fit(full, X, T, optimizer="momentum", lr=0.1, **settings)

    short = _model()
    ckpt = Checkpoint(tmp_path, every=2, fit_config={**settings, "epochs": 2})
    fit(short, X, T, optimizer="momentum", lr=0.1, callbacks=[ckpt], **{**settings, "epochs": 2})
    ckpt.save()
    history = resume(tmp_path, X, T, epochs=5)
    assert len(history) == 5 and history.stop_reason == "completed 5 epochs"
    state, fit_config = load_checkpoint(tmp_path)
    assert state.epoch == 5 and fit_config["epochs"] == 5 and fit_config["every"] == 2
    assert same_params(state.model, full)
    # fewer epochs than trained: it returned the 5 epochs and wrote epochs: 3 into the
    # checkpoint's fit_config
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(ValueError, match=r"has trained 5 epochs; epochs=3 ends before that"):
        resume(tmp_path, X, T, epochs=3)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before


def test_extending_a_run_whose_best_weights_were_restored(same_params, tmp_path):
    """A finished run restores early stopping's best weights (epoch < the last) before its
    final checkpoint; extended with more epochs, it went on from those best weights with
    the last epoch's optimizer state, not from the last epoch's weights, and differed from
    the run given all the epochs at once. The checkpoint now keeps both."""
    settings = dict(batch_size=8, seed=4, validation_fraction=0.2, early_stopping=50)
    full = _model(sizes=[5, 40, 3])
    h_full = fit(full, X, T, optimizer="adam", lr=0.05, epochs=12, **settings)
    short = _model(sizes=[5, 40, 3])
    ckpt = Checkpoint(tmp_path, every=6, fit_config={**settings, "epochs": 6})
    h_short = fit(short, X, T, optimizer="adam", lr=0.05, epochs=6, callbacks=[ckpt], **settings)
    ckpt.save()
    assert h_short.best_epoch < 6  # the case: the best weights were restored over epoch 6's
    assert load_checkpoint(tmp_path)[0].last_params is not None
    assert same_params(load_model(tmp_path / CHECKPOINT_NAME), short)  # the final model
    h_resumed = resume(tmp_path, X, T, epochs=12)
    assert _losses(h_resumed) == _losses(h_full)
    assert same_params(load_model(tmp_path / CHECKPOINT_NAME), full)


def test_a_checkpoints_history_is_encoded_once_a_row(tmp_path, monkeypatch):
    """Each save re-encoded the whole history as JSON: the text encoded over a run of n
    epochs grew as n**2 (17 ms a save at 5,500 epochs, a third of that run's time:
    benchmarks/checkpoint_cost.py). A Checkpoint now encodes each epoch's row once; the
    file still holds the history json.loads reads back whole."""
    import backprop.io.checkpoint as ck

    encoded = []

    class CountingJson:
        @staticmethod
        def dumps(obj, **kw):
            text = json.dumps(obj, **kw)
            encoded.append(len(text))
            return text

    monkeypatch.setattr(ck, "json", CountingJson)
    checkpoint = Checkpoint(tmp_path / "run", every=1, fit_config={"epochs": 120})
    history = fit(_model(), X, T, epochs=120, seed=0, callbacks=[checkpoint])
    monkeypatch.undo()
    meta_state = load_checkpoint(tmp_path / "run")[0]
    assert meta_state.history.epochs == history.epochs
    rows_text = len(json.dumps(history.epochs))  # the final history's rows, encoded once
    assert sum(encoded) < 3 * rows_text + 120 * 2_000, (sum(encoded), rows_text)


def test_a_checkpoints_history_text_is_json_dumps_after_any_change(tmp_path):
    """The rows encoded before are reused only while they are unchanged: a row changed in
    place, one removed, or a new history are encoded again."""
    from backprop.io.checkpoint import _RowsText

    rows_text = _RowsText()
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": float("nan")}]
    assert rows_text(rows) == json.dumps(rows)
    rows.append({"epoch": 3, "loss": 0.25, "val_loss": 1e-300})
    assert rows_text(rows) == json.dumps(rows)
    rows[0]["loss"] = 0.125  # an old row changed in place
    assert rows_text(rows) == json.dumps(rows)
    rows[1] = {"epoch": 2, "loss": 0.3}  # replaced
    assert rows_text(rows) == json.dumps(rows)
    del rows[2]
    assert rows_text(rows) == json.dumps(rows)
    assert rows_text([]) == "[]"
    assert rows_text(rows[:1]) == json.dumps(rows[:1])


def test_checkpoint_every_n_epochs_and_at_the_end(tmp_path, monkeypatch):
    import backprop.checkpoint as ck

    saved = []
    real = ck.save_checkpoint
    monkeypatch.setattr(
        ck, "save_checkpoint", lambda p, s, c, **kw: (saved.append(s.epoch), real(p, s, c, **kw))
    )
    checkpoint = Checkpoint(tmp_path / "run", every=2, fit_config={"epochs": 5})
    fit(_model(), X, T, epochs=5, callbacks=[checkpoint])
    checkpoint.save()
    assert saved == [2, 4, 5]
    assert load_checkpoint(tmp_path / "run")[0].epoch == 5


def test_checkpoint_round_trip_restores_every_field(same_params, tmp_path):
    model = _model()
    opt = get_optimizer("adam", lr=0.01, beta1=0.8, schedule="step")
    state = TrainState(model=model, optimizer=opt, rng=np.random.default_rng(77))
    fit(model, X, T, epochs=3, early_stopping=10, validation_fraction=0.2, state=state)
    save_checkpoint(tmp_path / "c.safetensors", state, {"epochs": 3, "dataset": "toy"})
    got, fit_config = load_checkpoint(tmp_path / "c.safetensors")
    assert fit_config == {"epochs": 3, "dataset": "toy"}
    assert same_params(got.model, model) and got.model.config == model.config
    assert got.epoch == 3 and got.stop == state.stop
    assert got.history.to_dict() == json.loads(json.dumps(state.history.to_dict()))
    assert got.best_score == state.best_score
    assert all(np.array_equal(got.best_params[k], v) for k, v in state.best_params.items())
    assert got.rng.bit_generator.state == state.rng.bit_generator.state
    assert got.model.dropout_rng.bit_generator.state == model.dropout_rng.bit_generator.state
    a, b = got.optimizer.state_dict(), opt.state_dict()
    assert (a["t"], a["epoch"], sorted(a["slots"])) == (b["t"], b["epoch"], sorted(b["slots"]))
    assert all(np.array_equal(a["slots"][k], b["slots"][k]) for k in b["slots"])
    assert got.optimizer.hyperparameters() == opt.hyperparameters()
    assert got.optimizer.schedule == opt.schedule
    # and a checkpoint is also a model file
    assert np.array_equal(load_model(tmp_path / "c.safetensors").predict(X), model.predict(X))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = _model()
    checkpoint = Checkpoint(tmp_path, fit_config={"epochs": 2})
    fit(model, X, T, epochs=2, callbacks=[checkpoint])
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()

    def crash(src, dst):
        raise OSError("killed during rename (simulated)")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        fit(model, X, T, epochs=3, state=checkpoint.last_state, callbacks=[checkpoint])
    monkeypatch.undo()
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]
    assert load_checkpoint(tmp_path)[0].epoch == 2


def test_refusals(tmp_path):
    class MySGD(SGD):
        pass

    state = TrainState(model=_model(), optimizer=MySGD(), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="only the built-in optimizers"):
        save_checkpoint(tmp_path / "c.safetensors", state, {})
    with pytest.raises(ValueError, match="JSON"):
        Checkpoint(tmp_path, fit_config={"callback": print})
    with pytest.raises(ValueError, match="every"):
        Checkpoint(tmp_path, every=0)
    with pytest.raises(ValueError, match="'lr'"):
        resume(tmp_path, X, T, lr=0.1)
    with pytest.raises(ModelFileError, match="checkpoint .* does not exist"):
        resume(tmp_path, X, T)


# --------------------------------------------------------------- hostile checkpoints
def _edit_meta(raw: bytes, key: str, fn) -> bytes:
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    value = json.loads(header["__metadata__"][key])
    value = fn(value) or value
    header["__metadata__"][key] = json.dumps(value)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + raw[8 + n :]


def _put(*keys_and_value):
    *keys, value = keys_and_value

    def fn(d):
        target = d
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return fn


BAD_CHECKPOINTS = {
    "unknown optimizer": (
        "train_state",
        _put("optimizer", "name", "lbfgs"),
        "unknown optimizer 'lbfgs'",
    ),
    "unknown schedule": (
        "train_state",
        _put("optimizer", "schedule", {"name": "warmup"}),
        "schedule",
    ),
    "hyperparameter not a number": (
        "train_state",
        _put("optimizer", "hyperparameters", "lr", "0.1"),
        "must be finite numbers",
    ),
    "hyperparameter unknown": (
        "train_state",
        _put("optimizer", "hyperparameters", "zeta", 1.0),
        "cannot be rebuilt",
    ),
    "slot of an unknown parameter": (
        "train_state",
        _put("optimizer", "slots", ["layers.7.W.m"]),
        "optimizer slot",
    ),
    "unknown bit generator": (
        "train_state",
        _put("shuffle_rng", "bit_generator", "os.system"),
        "bit generator",
    ),
    "malformed generator state": (
        "train_state",
        _put("shuffle_rng", "state", "x"),
        "shuffle generator state is invalid",
    ),
    # NumPy sets these unchecked: a resume from pos 2**31 ended in a segmentation fault, and
    # one from 10**6 shuffled with memory outside the generator
    "MT19937 position past its key": (
        "train_state",
        _put(
            "shuffle_rng", {"bit_generator": "MT19937", "state": {"key": [1] * 624, "pos": 2**31}}
        ),
        "shuffle generator state is invalid: expected",
    ),
    "MT19937 position negative": (
        "train_state",
        _put("shuffle_rng", {"bit_generator": "MT19937", "state": {"key": [1] * 624, "pos": -1}}),
        "shuffle generator state is invalid: expected",
    ),
    "Philox buffer position": (
        "train_state",
        _put(
            "shuffle_rng",
            {
                "bit_generator": "Philox",
                "state": {"counter": [0] * 4, "key": [0, 0]},
                "buffer": [0] * 4,
                "buffer_pos": -(2**31),
                "has_uint32": 0,
                "uinteger": 0,
            },
        ),  # fmt: skip
        "shuffle generator state is invalid: expected",
    ),
    "SFC64 word past 64 bits": (
        "train_state",
        _put(
            "shuffle_rng",
            {
                "bit_generator": "SFC64",
                "state": {"state": [2**64, 0, 0, 0]},
                "has_uint32": 0,
                "uinteger": 0,
            },
        ),  # fmt: skip
        "shuffle generator state is invalid: expected",
    ),
    "dropout generator of another kind": (
        "train_state",
        _put("dropout_rng", "bit_generator", "MT19937"),
        "dropout generator",
    ),
    "history disagrees with the epoch": ("train_state", _put("epoch", 7), "history has 2 epochs"),
    "epoch negative": ("train_state", _put("epoch", -1), "epoch"),
    "missing key": ("train_state", lambda d: d.pop("stop") and None, "exactly the keys"),
    "fit_config batch_size": ("fit_config", _put("batch_size", 0), "batch_size"),
    "fit_config early_stopping": ("fit_config", _put("early_stopping", "soon"), "early_stopping"),
}


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_hostile_checkpoint_gives_one_clear_error(tmp_path, case):
    key, fn, message = BAD_CHECKPOINTS[case]
    checkpoint = Checkpoint(tmp_path, fit_config={"epochs": 2, "batch_size": 16})
    fit(_model(), X, T, optimizer="adam", epochs=2, callbacks=[checkpoint])
    path = tmp_path / CHECKPOINT_NAME
    path.write_bytes(_edit_meta(path.read_bytes(), key, fn))
    with pytest.raises(ModelFileError, match=message):
        load_checkpoint(path)


# ----------------------------------------------------------------- SIGKILL mid-epoch
WORKER = r"""
import sys

import numpy as np

from backprop import MLP
from backprop.checkpoint import Checkpoint
from backprop.training import fit

rng = np.random.default_rng(42)
X = rng.normal(size=(2000, 8))
T = np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] * X[:, 2] > 0).astype(int)]
SETTINGS = dict(epochs=4, batch_size=4, seed=11, validation_fraction=0.1, early_stopping=10)
STEPS_PER_EPOCH = 450  # 1800 training rows / batch 4


def new_model():
    return MLP([8, 16, 3], activation="relu", output_activation="identity",
               loss="cross_entropy", dropout=0.1, seed=5)


def train(run_dir, report=False):
    model = new_model()
    callbacks = [Checkpoint(run_dir, every=1, fit_config=SETTINGS)]
    if report:  # say where training is, so the test can kill it in the middle of an epoch
        inner, steps = model.forward_backward, [0]

        def counting(*args):
            steps[0] += 1
            if steps[0] % 50 == 0:
                print("step", steps[0], flush=True)
            return inner(*args)

        model.forward_backward = counting
        callbacks.append(lambda state: print("epoch", state.epoch, flush=True))
    fit(model, X, T, optimizer="adam", lr=1e-3, callbacks=callbacks, **SETTINGS)
    callbacks[0].save()
    return model


if __name__ == "__main__":
    train(sys.argv[1], report=True)
"""


def test_sigkill_mid_epoch_then_resume_is_bit_identical(same_params, tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    run_dir = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(worker), str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    w = runpy.run_path(str(worker), run_name="worker")
    kill_at = w["STEPS_PER_EPOCH"] + w["STEPS_PER_EPOCH"] // 2  # half-way through epoch 2
    seen_epoch_1 = False
    deadline = time.monotonic() + 60
    try:
        for line in proc.stdout:
            words = line.split()
            seen_epoch_1 |= words == ["epoch", "1"]
            if words[0] == "step" and int(words[1]) >= kill_at:
                assert seen_epoch_1, "epoch 1 should have ended (and been checkpointed) by now"
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "the worker is too slow"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()

    state, _ = load_checkpoint(run_dir)
    assert state.epoch == 1  # killed in epoch 2: the checkpoint is epoch 1's, intact
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT_NAME]

    h_resumed = resume(run_dir, w["X"], w["T"])
    resumed = load_model(run_dir / CHECKPOINT_NAME)
    uninterrupted = w["train"](tmp_path / "uninterrupted")
    assert same_params(resumed, uninterrupted)
    full_history = load_checkpoint(tmp_path / "uninterrupted")[0].history
    assert _losses(h_resumed) == _losses(full_history) and len(h_resumed) == 4
