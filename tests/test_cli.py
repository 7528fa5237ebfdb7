"""End-to-end runs of the ``backprop`` command line, in-process (``main([...])``) and as a
subprocess (``python -m backprop ...``)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import backprop
from backprop.cli import cli, main
from backprop.cli.config import CSV_CLASSIFICATION
from backprop.io import load_model

COMMANDS = ("train", "evaluate", "predict", "explain", "gradcheck", "export")


def run_subprocess(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backprop", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def weights(path: Path) -> dict[str, np.ndarray]:
    return load_model(path).state_dict()


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> tuple[Path, str]:
    """``backprop train`` with no arguments (run in a fresh folder): its run folder and output."""
    folder = tmp_path_factory.mktemp("toy")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert main(["train"]) == 0
    finally:
        os.chdir(cwd)
    (run_dir,) = (folder / "runs").iterdir()
    return run_dir, out.getvalue()


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory) -> tuple[Path, Path]:
    """A three-class CSV with string labels, and new rows (columns shuffled) to predict."""
    folder = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(0)
    centres = {"red": (0.0, 0.0, 10.0), "green": (3.0, 0.0, 20.0), "blue": (0.0, 3.0, 30.0)}
    train, new = folder / "colours.csv", folder / "new.csv"
    with open(train, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["f1", "f2", "f3", "colour"])
        for label, c in centres.items():
            for _ in range(40):
                w.writerow([*(np.array(c) + rng.normal(0, 0.5, 3)).round(4), label])
    with open(new, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["f3", "colour", "f1", "f2"])  # other order, target column ignored
        for label, c in centres.items():
            w.writerow([c[2], label, c[0], c[1]])
    return train, new


# ------------------------------------------------------------------------------ train
def test_train_with_no_arguments_learns_the_toy_data(toy_run):
    run_dir, out = toy_run
    assert run_dir.parent.name == "runs" and run_dir.name.endswith("-toy")
    assert "Network  2-3-2 (17 parameters), sigmoid hidden, sigmoid output, loss l2" in out
    assert "Trained on toy" in out and f"runs/{run_dir.name}" in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test"]["accuracy"] >= 0.95
    assert summary["train"]["loss"] < 0.05
    assert (run_dir / "decision_boundary.png").is_file()


def test_run_folder_contents(toy_run):
    toy_run = toy_run[0]
    files = {p.name for p in toy_run.iterdir()}
    assert {"model.safetensors", "history.csv", "summary.json", "config.toml",
            "loss.png", "accuracy.png", "decision_boundary.png"} <= files  # fmt: skip
    summary = json.loads((toy_run / "summary.json").read_text())
    for split in ("train", "validation", "test"):
        assert set(summary[split]) == {"loss", "accuracy"}
        assert all(isinstance(v, float) for v in summary[split].values())
    assert summary["epochs_run"] == 300
    assert summary["seed"] == 0
    assert summary["wall_time_s"] > 0 and summary["train_samples_per_s"] > 0
    assert summary["backprop_version"] == backprop.__version__
    assert summary["numpy_version"] == np.__version__
    assert (summary["backend"], summary["backend_version"]) == ("numpy", np.__version__)
    data = backprop.datasets.load_dataset("toy", seed=0)
    assert summary["data_sha256"] == data.sha256()
    with open(toy_run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 300 and rows[-1]["epoch"] == "300"
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    # the model file is the trained model: its test accuracy is the summary's
    model = load_model(toy_run / "model.safetensors")
    acc = float(np.mean(model.predict_classes(data.X_test) == data.y_test))
    assert acc == summary["test"]["accuracy"]


def test_pngs_are_valid_images_of_sensible_size(toy_run):
    toy_run = toy_run[0]
    for name in ("loss.png", "accuracy.png", "decision_boundary.png"):
        width, height = png_size(toy_run / name)
        assert 400 <= width <= 2000 and 300 <= height <= 2000, (name, width, height)
        assert (toy_run / name).stat().st_size > 10_000  # drawn, not blank


def test_same_seed_same_bits_and_config_round_trip(run_cli, same_params, toy_run, in_tmp):
    toy_run = toy_run[0]
    rc, _, err = run_cli("train", "--config", str(toy_run / "config.toml"), "--out", "again",
                     "--no-progress", "--no-plots")  # fmt: skip
    assert rc == 0, err
    assert same_params(
        weights(toy_run / "model.safetensors"), weights(in_tmp / "again/model.safetensors")
    )
    assert (in_tmp / "again/config.toml").read_text() == (toy_run / "config.toml").read_text()


def test_command_line_overrides_the_config_file(run_cli, in_tmp):
    (in_tmp / "c.toml").write_text('dataset = "xor"\nlayers = "2,4,2"\nepochs = 50\nlr = 0.5\n')
    rc, _, err = run_cli("train", "--config", "c.toml", "--epochs", "3", "--out", "r",
                     "--no-progress", "--no-plots")  # fmt: skip
    assert rc == 0, err
    config = (in_tmp / "r/config.toml").read_text()
    assert 'dataset = "xor"' in config and "layers = [2, 4, 2]" in config
    assert "epochs = 3" in config and "lr = 0.5" in config
    assert json.loads((in_tmp / "r/summary.json").read_text())["epochs_run"] == 3


def test_dataset_defaults_and_cross_entropy_takes_logits(run_cli, in_tmp, csv_files):
    train_csv, _ = csv_files
    rc, out, err = run_cli("train", "--dataset", str(train_csv), "--target", "colour",
                       "--loss", "cross_entropy", "--optimizer", "adam", "--lr", "0.02",
                       "--epochs", "40", "--out", "csvrun",
                       "--no-progress", "--no-plots")  # fmt: skip
    assert rc == 0, err
    config = (in_tmp / "csvrun/config.toml").read_text()
    hidden = ", ".join(map(str, CSV_CLASSIFICATION.hidden))
    assert f"layers = [3, {hidden}, 3]" in config  # n_features, the recipe's, n_classes
    assert 'output_activation = "identity"' in config
    assert json.loads((in_tmp / "csvrun/summary.json").read_text())["test"]["accuracy"] >= 0.9


def test_resume_continues_bit_identically(run_cli, same_params, in_tmp):
    common = ["--dataset", "moons", "--layers", "2,8,2", "--no-progress", "--no-plots"]
    assert run_cli("train", *common, "--epochs", "4", "--out", "a")[0] == 0
    rc, out, err = run_cli("train", "--resume", "a", "--epochs", "8", "--no-progress", "--no-plots")
    assert rc == 0, err
    assert "resuming after epoch 4" in out
    assert run_cli("train", *common, "--epochs", "8", "--out", "b")[0] == 0
    assert same_params(
        weights(in_tmp / "a/model.safetensors"), weights(in_tmp / "b/model.safetensors")
    )
    assert (in_tmp / "a/history.csv").read_text().count("\n") == 9


def test_a_csv_runs_summary_names_its_file_as_its_config_does(run_cli, in_tmp):
    """summary.json said 'data.csv' (as typed) after the run and '/abs/data.csv' after a
    --resume; it is the resolved path both times, as config.toml has it."""
    rows = "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40))
    (in_tmp / "data.csv").write_text("a,b,y\n" + rows)
    args = ["--dataset", "data.csv", "--target", "y", "--no-progress", "--no-plots"]
    assert run_cli("train", *args, "--epochs", "2", "--out", "r")[0] == 0
    first = json.loads((in_tmp / "r/summary.json").read_text())["dataset"]
    assert run_cli("train", "--resume", "r", "--epochs", "3", "--no-progress", "--no-plots")[0] == 0
    assert first == json.loads((in_tmp / "r/summary.json").read_text())["dataset"]
    assert (
        first == str((in_tmp / "data.csv").resolve())
        and f'dataset = "{first}"' in (in_tmp / "r/config.toml").read_text()
    )


def test_resume_extends_a_run_exactly_and_refuses_one_that_stopped_early(run_cli, in_tmp):
    """--epochs 4 then --resume --epochs 8 equals --epochs 8 (it went on from the restored
    best epoch's weights before); a run that early stopping ended is not resumed (each
    --resume trained one more epoch past its stop)."""
    common = ["--dataset", "iris", "--lr", "0.3", "--no-progress", "--no-plots"]
    assert run_cli("train", *common, "--epochs", "8", "--out", "a")[0] == 0
    assert run_cli("train", *common, "--epochs", "4", "--out", "b")[0] == 0
    assert json.loads((in_tmp / "b/summary.json").read_text())["best_epoch"] < 4  # the case
    rc, _, err = run_cli("train", "--resume", "b", "--epochs", "8", "--no-progress", "--no-plots")
    assert rc == 0, err
    assert (in_tmp / "a/model.safetensors").read_bytes() == (
        in_tmp / "b/model.safetensors"
    ).read_bytes()
    assert run_cli("train", *common, "--early-stopping", "2", "--out", "es")[0] == 0
    history = (in_tmp / "es/history.csv").read_text()
    rc, _, err = run_cli("train", "--resume", "es", "--epochs", "500")
    assert rc == 2 and "the run in es has ended: early stopping" in err
    assert (in_tmp / "es/history.csv").read_text() == history


def test_resume_refuses_a_config_edited_since_the_run_started(run_cli, in_tmp):
    """config.toml edited by hand (layers, lr, batch_size): --resume showed and rewrote the
    edited values while it trained the checkpoint's network, or trained with the edited
    batch size; now one error line names the first difference."""
    quiet = ["--no-progress", "--no-plots"]
    assert run_cli("train", "--dataset", "moons", "--epochs", "2", "--out", "r", *quiet)[0] == 0
    config = in_tmp / "r/config.toml"
    original = config.read_text()
    for old, new, message in [
        ("layers = [2, 16, 16, 2]", "layers = [2, 5, 2]", "layers is [2, 5, 2] there, [2, 16"),
        ("batch_size = 32", "batch_size = 5", "batch_size is 5 there, 32 in training"),
    ]:
        assert old in original
        config.write_text(original.replace(old, new))
        rc, _, err = run_cli("train", "--resume", "r", "--epochs", "3", *quiet)
        assert rc == 2 and "r/config.toml does not match the run its checkpoint holds" in err
        assert message in err and config.read_text() == original.replace(old, new)
    config.write_text(original)
    rc, _, err = run_cli("train", "--resume", "r", "--epochs", "3", *quiet)
    assert rc == 0, err


def test_the_largest_seed_and_patience_the_options_take_resume(run_cli, in_tmp):
    """--seed and --early-stopping stop at 2**53, what a checkpoint holds: a 400-digit seed
    trained, then its --resume was refused by the checkpoint's own check."""
    big = str(2**53)
    quiet = ["--no-progress", "--no-plots"]
    rc, _, err = run_cli("train", "--seed", big, "--early-stopping", big, "--epochs", "2",
                         "--out", "a", *quiet)  # fmt: skip
    assert rc == 0, err
    rc, out, err = run_cli("train", "--resume", "a", "--epochs", "3", *quiet)
    assert rc == 0 and "resuming after epoch 2" in out, err
    rc, _, err = run_cli("train", "--seed", str(2**53 + 1), "--out", "b", *quiet)
    assert rc == 2 and "not in the range 0<=x<=2**53" in err and not (in_tmp / "b").exists()


def test_missing_matplotlib_still_trains(run_cli, in_tmp, monkeypatch):
    from backprop import plots

    monkeypatch.setattr(plots, "available", lambda: False)
    rc, out, err = run_cli("train", "--epochs", "2", "--out", "noplots", "--no-progress")
    assert rc == 0, err
    assert err.count("\n") == 1 and "pip install matplotlib" in err
    files = {p.name for p in (in_tmp / "noplots").iterdir()}
    assert {"model.safetensors", "history.csv", "summary.json", "config.toml"} <= files
    assert not any(name.endswith(".png") for name in files)


def test_the_decision_boundary_scores_the_tables_rows(run_cli, in_tmp, monkeypatch):
    """Its "train" accuracy was over every training row, validation ones included (98.9%
    on spirals against the table's 99.11%); train, validation and test are the table's."""
    from backprop import plots

    drawn = {}
    draw = plots.plot_decision_boundary

    def recording(model, sets, *args, **kwargs):
        drawn.update(sets)
        draw(model, sets, *args, **kwargs)

    monkeypatch.setattr(plots, "plot_decision_boundary", recording)
    rc, _, err = run_cli("train", "--epochs", "3", "--out", "r", "--no-progress")
    assert rc == 0, err
    summary = json.loads((in_tmp / "r" / "summary.json").read_text())
    assert list(drawn) == ["train", "validation", "test"]
    assert [len(y) for _, y in drawn.values()] == [summary[f"n_{k}"] for k in drawn]
    assert (in_tmp / "r" / "decision_boundary.png").is_file()


@pytest.mark.parametrize("value", [1.7e308, 8e307])
def test_columns_near_the_float64_maximum_are_drawn_on_standardised_axes(run_cli, tmp_path, value):
    """A column of +-1.7e308 ended the run after training with matplotlib's "Axis limits
    cannot be NaN or Inf" (+-8e307: "arange: cannot compute length"), exit 2, no summary, and
    every --resume ended the same way: its axes in the column's units overflow."""
    b = np.random.default_rng(0).normal(size=40).tolist()
    rows = "".join(f"{value if i % 2 else -value},{b[i]!r},{i % 2}\n" for i in range(40))
    (tmp_path / "far.csv").write_text("a,b,y\n" + rows)
    out_dir = tmp_path / "r"
    rc, out, err = run_cli("train", "-d", str(tmp_path / "far.csv"), "--target", "y",
                           "--epochs", "2", "--out", str(out_dir), "--no-progress")  # fmt: skip
    assert rc == 0 and err == "", err
    assert "decision_boundary.png" in out and (out_dir / "summary.json").is_file()
    png = (out_dir / "decision_boundary.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_image_data_gets_a_grid_of_misclassified_images(tmp_path):
    """What train draws for image data (mnist, digits): plots.plot_run on a small image set."""
    from backprop.datasets import Dataset
    from backprop.plots import plot_run

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    X = rng.uniform(0, 1, (60, 16)) + np.eye(3)[y].repeat(6, axis=1)[:, :16]
    data = Dataset("tiny-images", X[:40], y[:40], X[40:], y[40:], "classification", 3,
                   ["a", "b", "c"], None, (4, 4), None)  # fmt: skip
    model = backprop.MLP([16, 3], "sigmoid", "sigmoid", seed=0)
    rows = [{"epoch": 1, "loss": 0.3, "accuracy": 0.5}, {"epoch": 2, "loss": 0.2, "accuracy": 0.6}]
    written = plot_run(tmp_path, model, data, rows)
    assert written == ["loss.png", "accuracy.png", "misclassified.png"]
    width, height = png_size(tmp_path / "misclassified.png")
    assert width >= 400 and height >= 200


def test_predict_keeps_an_id_column_for_a_submission_file(run_cli, tmp_path):
    """A submission file needs each row's id beside its prediction; predict could not
    write one (a practitioner's audit: paste the columns together with another tool)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2)).tolist()
    rows = "".join(f"{a!r},{b!r},{'pq'[a + b > 0]}\n" for a, b in X)
    (tmp_path / "train.csv").write_text("a,b,y\n" + rows)
    run = tmp_path / "run"
    rc, _, err = run_cli(
        "train",
        "--dataset",
        str(tmp_path / "train.csv"),
        "--target",
        "y",
        "--epochs",
        "2",
        "--no-progress",
        "--no-plots",
        "--out",
        str(run),
    )
    assert rc == 0, err
    (tmp_path / "test.csv").write_text('id,b,a\n007,1,2\n"x,1",-1,-2\n')
    rc, out, err = run_cli("predict", str(run), str(tmp_path / "test.csv"), "--keep", "id")
    assert rc == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["id", "label", "p_p", "p_q"] and [r[0] for r in rows[1:]] == ["007", "x,1"]
    rc, _, err = run_cli("predict", str(run), str(tmp_path / "test.csv"), "--keep", "ID")
    assert rc == 2 and "test.csv has no column 'ID'; its columns are: id, b, a" in err, err
    rc, _, err = run_cli("predict", str(run), "--keep", "id")
    assert rc == 2 and "--keep names columns of INPUT.csv" in err
    # a kept column named as a prediction's: 'label,label' (pandas read 'label.1'); and
    # --keep '' was dropped without a word, where --keep 'a,' was refused
    (tmp_path / "labelled.csv").write_text("a,b,label,label_input\n1,2,p,x\n")
    rc, out, err = run_cli("predict", str(run), str(tmp_path / "labelled.csv"), "--keep",
                           "label,label_input")  # fmt: skip
    assert rc == 0, err
    header, row = list(csv.reader(io.StringIO(out)))
    assert header[:4] == ["label_input_input", "label_input", "label", "p_p"]
    assert row[:2] == ["p", "x"]
    rc, _, err = run_cli("predict", str(run), str(tmp_path / "test.csv"), "--keep", "")
    assert rc == 2 and "expected column names separated by commas; got ''" in err, err


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"]
)
def test_ctrl_c_keeps_the_last_completed_epoch(tmp_path, sig):
    # SIGTERM (kill, timeout, a job scheduler's limit) and SIGHUP (the terminal closed, an
    # SSH connection dropped) stop as Ctrl-C does; they killed the process on the spot, with
    # no message, no model of the epochs done, and sometimes a checkpoint's temporary file
    # left in the run folder.
    # A suite started in the background by a non-interactive shell inherits SIGINT ignored,
    # and so would the CLI (Python installs KeyboardInterrupt only over the default action):
    # Ctrl-C at a terminal is the default action, so the child is started with it (a
    # handler in this process becomes the default action across exec).
    # Likewise a suite run under nohup inherits SIGHUP ignored, which the CLI leaves alone
    # (as it should): the child is started with SIGHUP's default action.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backprop", "train", "--epochs", "100000", "--out", "run",
             "--no-progress", "--no-plots"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGHUP, previous_hup)
    try:
        history = tmp_path / "run" / "checkpoint.safetensors"
        deadline = time.monotonic() + 30
        while not history.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.communicate()  # (a process left running failed a later test with a warning)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert "Interrupted: kept the model of epoch" in err and "run/model.safetensors" in err
    epoch = int(err.split("model of epoch ")[1].split()[0])
    assert epoch >= 10
    with open(tmp_path / "run/history.csv") as f:
        assert len(list(csv.DictReader(f))) == epoch
    load_model(tmp_path / "run/model.safetensors")  # a complete, valid model file
    assert f"backprop train --resume {Path('run')}" in err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.safetensors", "config.toml", "history.csv", "model.safetensors"
    ]  # fmt: skip


def test_a_closed_output_pipe_stops_the_run_as_ctrl_c_does(tmp_path):
    # backprop train ... | head: the epoch lines' reader went away; the run ended with exit 1,
    # no message, no model and no history (a folder that --out then refused)
    proc = subprocess.Popen(
        [sys.executable, "-m", "backprop", "train", "--epochs", "100000", "--out", "run",
         "--no-plots", "--checkpoint-every", "1"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(400):  # the header, then epoch lines: enough to have trained a while
            proc.stdout.readline()
        proc.stdout.close()  # as head does when it has its lines
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.stderr.close()
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert "Output closed: kept the model of epoch" in err and "--resume" in err, err
    epoch = int(err.split("model of epoch ")[1].split()[0])
    with open(tmp_path / "run/history.csv") as f:
        assert len(list(csv.DictReader(f))) == epoch >= 10
    load_model(tmp_path / "run/model.safetensors")


def test_ctrl_c_between_an_epochs_history_row_and_its_keep_callback():
    # fit appends epoch 3's history row, then calls the callbacks; a Ctrl-C that lands
    # before the keep callback (here: raised by a callback ahead of it) must leave the kept
    # model and the kept history both at epoch 2
    from backprop.cli.commands.train import KeepLastEpoch

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 2)), rng.integers(0, 2, 20)
    model = backprop.MLP([2, 3, 2], seed=0)
    keep = KeepLastEpoch()
    after_epoch_2 = {}

    def interrupt_at_3(state):
        if state.epoch == 2:
            after_epoch_2.update(state.model.state_dict())
        if state.epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, epochs=5, batch_size=5, callbacks=[interrupt_at_3, keep])
    assert keep.epoch == 2 and len(keep.state.history.epochs) == 3
    assert [row["epoch"] for row in keep.rows()] == [1, 2]
    assert keep.weights.keys() == after_epoch_2.keys()
    for name, value in after_epoch_2.items():
        np.testing.assert_array_equal(keep.weights[name], value, err_msg=name)


def test_plots_a_full_disk_stopped_are_drawn_by_resume_never_left_stale(
    run_cli, in_tmp, monkeypatch
):
    # a resume (epochs 2 -> 4) whose loss.png hit a full disk left epoch 2's plots beside
    # epoch 4's summary, and --resume then said the run had ended: they could never be
    # drawn again
    from backprop.cli import plots
    from backprop.io import WriteError

    common = ["--dataset", "moons", "--layers", "2,8,2", "--no-progress"]
    assert run_cli("train", *common, "--epochs", "2", "--out", "r")[0] == 0
    drawn = sorted(p.name for p in in_tmp.joinpath("r").glob("*.png"))
    assert drawn == ["accuracy.png", "decision_boundary.png", "loss.png"]
    save = plots._save

    def full_disk(fig, path):
        if Path(path).name == "accuracy.png":
            raise WriteError(28, "No space left on device", str(path))
        save(fig, path)

    with monkeypatch.context() as patch:
        patch.setattr(plots, "_save", full_disk)
        rc, _, err = run_cli("train", "--resume", "r", "--no-progress", "--epochs", "4")
    assert rc == 2 and err.count("\n") == 1, err
    assert "cannot write r/accuracy.png: No space left on device" in err
    assert "(backprop train --resume r draws the plots)" in err
    assert sorted(p.name for p in in_tmp.joinpath("r").glob("*.png")) == ["loss.png"]
    timed = json.loads((in_tmp / "r/summary.json").read_text())
    assert timed["plots"] is None and timed["epochs_timed"] == 2 and timed["wall_time_s"] > 0
    model = (in_tmp / "r/model.safetensors").read_bytes()
    rc, _, err = run_cli("train", "--resume", "r", "--no-progress")
    assert rc == 0 and "writing them from the checkpoint" in err, err
    finished = json.loads((in_tmp / "r/summary.json").read_text())
    timing = ("wall_time_s", "epochs_timed", "train_samples_per_s")  # (0 epochs in 0.0004 s)
    assert [finished[k] for k in timing] == [timed[k] for k in timing]
    assert sorted(p.name for p in in_tmp.joinpath("r").glob("*.png")) == drawn
    assert json.loads((in_tmp / "r/summary.json").read_text())["plots"] == [
        "loss.png", "accuracy.png", "decision_boundary.png"
    ]  # fmt: skip
    assert (in_tmp / "r/model.safetensors").read_bytes() == model
    rc, _, err = run_cli("train", "--resume", "r", "--no-progress")
    assert rc == 2 and "resumes from its checkpoint of epoch 4" in err, err
    # a summary written before it named its plots (an earlier version's) is of a whole run
    summary = json.loads((in_tmp / "r/summary.json").read_text())
    del summary["plots"]
    (in_tmp / "r/summary.json").write_text(json.dumps(summary))
    rc, _, err = run_cli("train", "--resume", "r", "--no-progress")
    assert rc == 2 and "resumes from its checkpoint of epoch 4" in err, err


@pytest.mark.parametrize("where", ["closing the bar", "restoring the best weights"])
def test_ctrl_c_in_fits_ending_leaves_a_whole_run(run_cli, in_tmp, monkeypatch, where):
    """A Ctrl-C after the last epoch, while fit closes its progress bar or restores early
    stopping's best weights: the run folder held the last epoch's model without a summary,
    and the suggested 'backprop train --resume' then said there was nothing to resume. Now
    it ends as a Ctrl-C after training: the model fit would have returned, a summary that
    says it was interrupted, and a checkpoint that an extension resumes exactly."""
    from backprop.training import epochs as epochs_module
    from backprop.training.progress import ProgressBar

    common = ["--dataset", "iris", "--lr", "0.3", "--no-progress", "--no-plots"]
    assert run_cli("train", *common, "--epochs", "4", "--out", "whole")[0] == 0
    assert run_cli("train", *common, "--epochs", "8", "--out", "longer")[0] == 0
    with monkeypatch.context() as patch:
        if where == "closing the bar":
            close = ProgressBar.close

            def close_then_ctrl_c(self):
                close(self)
                raise KeyboardInterrupt

            patch.setattr(ProgressBar, "close", close_then_ctrl_c)
        else:
            restore = epochs_module.restore_best_weights

            def restore_then_ctrl_c(state):
                restore(state)
                raise KeyboardInterrupt

            patch.setattr(epochs_module, "restore_best_weights", restore_then_ctrl_c)
        rc, _, err = run_cli("train", *common, "--epochs", "4", "--out", "cut")
    assert rc == 130 and "Interrupted while saving the model, after training 4 epochs" in err
    summary = json.loads((in_tmp / "cut/summary.json").read_text())
    assert summary["interrupted"] and summary["best_epoch"] < 4  # best weights restored
    assert (in_tmp / "cut/model.safetensors").read_bytes() == (
        in_tmp / "whole/model.safetensors"
    ).read_bytes()
    rc, _, err = run_cli("train", "--resume", "cut", "--epochs", "8", "--no-progress", "--no-plots")
    assert rc == 0, err
    assert (in_tmp / "cut/model.safetensors").read_bytes() == (
        in_tmp / "longer/model.safetensors"
    ).read_bytes()


def test_ctrl_c_before_a_resumes_first_epoch_ends_leaves_the_folder(run_cli, in_tmp, monkeypatch):
    """The run's model is early stopping's best (epoch < 4); a Ctrl-C in the resumed run's
    first epoch said 'kept the model of epoch 4' and rewrote summary.json to say so, while
    the file still held the best epoch's weights."""
    from backprop.training.epochs import EpochOrders

    common = ["--dataset", "iris", "--lr", "0.3", "--no-progress", "--no-plots"]
    assert run_cli("train", *common, "--epochs", "4", "--out", "r")[0] == 0
    summary = json.loads((in_tmp / "r/summary.json").read_text())
    assert summary["best_epoch"] < 4  # the model file is not the last epoch's
    before = {p.name: p.read_bytes() for p in (in_tmp / "r").iterdir()}

    def ctrl_c(self):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(EpochOrders, "next", ctrl_c)
        rc, _, err = run_cli("train", "--resume", "r", "--epochs", "8", "--no-progress")
    assert rc == 130 and (
        "Interrupted before epoch 5 ended; r is as it was but for its config.toml, which holds "
        "the new --epochs; continue from epoch 4" in " ".join(err.split())
    ), err  # ('r is as it was' alone: config.toml had changed)
    after = {p.name: p.read_bytes() for p in (in_tmp / "r").iterdir()}
    assert {k: v for k, v in after.items() if k != "config.toml"} == {
        k: v for k, v in before.items() if k != "config.toml"
    }  # config.toml holds the new --epochs, so that --resume goes on to 8
    assert run_cli("train", "--resume", "r", "--no-progress", "--no-plots")[0] == 0


@pytest.mark.parametrize(
    ("stop", "said"), [(KeyboardInterrupt, "Ctrl-C"), (BrokenPipeError, "Output closed")]
)
def test_ctrl_c_during_a_resume_leaves_a_summary_that_says_so(
    run_cli, in_tmp, monkeypatch, stop, said
):
    """A --resume interrupted mid-training replaces the model and history; the summary.json
    of the run it resumed still described the old model (its epochs, metrics, reason, and
    its plots, still there and listed beside the newer model). A closed output pipe stops it
    the same way, and the summary said 'Ctrl-C' for it too."""
    from backprop.cli.commands.train import KeepLastEpoch

    quiet = ["--no-progress", "--no-plots"]
    assert run_cli("train", "--dataset", "moons", "--epochs", "2", "--out", "r",
                   "--no-progress")[0] == 0  # fmt: skip
    drawn = json.loads((in_tmp / "r/summary.json").read_text())["plots"]
    assert drawn and all((in_tmp / "r" / name).is_file() for name in drawn)
    keep = KeepLastEpoch.__call__

    def keep_then_stop_after_epoch_3(self, state):
        keep(self, state)
        if state.epoch == 3:
            raise stop

    monkeypatch.setattr(KeepLastEpoch, "__call__", keep_then_stop_after_epoch_3)
    rc, _, err = run_cli("train", "--resume", "r", "--epochs", "9", *quiet)
    assert rc == 130 and "kept the model of epoch 3" in err
    summary = json.loads((in_tmp / "r/summary.json").read_text())
    assert summary["epochs_run"] == 3 and summary["train"] == {} and summary["test"] == {}
    assert summary["interrupted"].startswith(f"{said} during epoch 4: the model is epoch 3's")
    assert summary["wall_time_s"] is None  # the 2-epoch run's time, kept beside epochs_run 3
    assert summary["plots"] is None and not any((in_tmp / "r" / name).exists() for name in drawn)
    monkeypatch.setattr(KeepLastEpoch, "__call__", keep)
    rc, _, err = run_cli("train", "--resume", "r", "--epochs", "4", "--no-progress")
    assert rc == 0, err  # the finished run draws them again, of its own model
    assert json.loads((in_tmp / "r/summary.json").read_text())["plots"] == drawn


def test_a_rank_failure_keeps_the_finished_epochs_as_a_ctrl_c_does(run_cli, in_tmp, monkeypatch):
    """Under mpirun, another rank dying or hanging (the all-reduce's deadline) left only the
    checkpoint: no model, no history, and nothing said that --resume goes on."""
    from backprop.cli.commands.train import KeepLastEpoch
    from backprop.training.mpi import RankFailure

    keep = KeepLastEpoch.__call__

    def keep_then_fail_after_epoch_3(self, state):
        keep(self, state)
        if state.epoch == 3:
            raise RankFailure("rank 0 of 2: the gradient all-reduce did not complete within 5 s")

    monkeypatch.setattr(KeepLastEpoch, "__call__", keep_then_fail_after_epoch_3)
    rc, _, err = run_cli("train", "--dataset", "moons", "--epochs", "9", "--checkpoint-every",
                         "1", "--out", "r", "--no-progress", "--no-plots")  # fmt: skip
    assert rc == 1, err
    kept, error = err.strip().splitlines()
    assert kept.startswith("A rank failed: kept the model of epoch 3 in r/model.safetensors")
    assert kept.endswith("with: backprop train --resume r")
    assert error.startswith("Error: rank 0 of 2: the gradient all-reduce did not complete")
    assert len((in_tmp / "r/history.csv").read_text().splitlines()) == 1 + 3
    monkeypatch.setattr(KeepLastEpoch, "__call__", keep)
    rc, _, err = run_cli("train", "--resume", "r", "--no-progress", "--no-plots")
    assert rc == 0, err


def test_a_resume_times_its_own_epochs(run_cli, in_tmp):
    """After --resume, 'Time 0.12 s, 39,727 training samples/s' sat beside 'Epochs 16'
    although the time was the last 4 epochs'."""
    quiet = ["--no-progress", "--no-plots"]
    common = ["--dataset", "moons", "--early-stopping", "0", *quiet]
    assert run_cli("train", *common, "--epochs", "4", "--out", "r")[0] == 0
    rc, out, err = run_cli("train", "--resume", "r", "--epochs", "6", *quiet)
    assert rc == 0, err
    summary = json.loads((in_tmp / "r/summary.json").read_text())
    assert summary["epochs_run"] == 6 and summary["epochs_timed"] == 2
    time_line = next(line for line in out.splitlines() if line.startswith("Time"))
    assert " for epochs 5-6, " in time_line and "training samples/s overall" in time_line
    rc, out, err = run_cli("train", "--resume", "r", "--epochs", "7", *quiet)
    assert rc == 0, err  # one epoch: 'for epochs 7-7' read as a typo
    assert " for epoch 7, " in next(ln for ln in out.splitlines() if ln.startswith("Time"))
    rows, wall = 2 * summary["n_train"], summary["wall_time_s"]  # wall: rounded to 0.1 ms
    assert (
        rows / (wall + 5e-5) - 0.1 <= summary["train_samples_per_s"] <= rows / (wall - 5e-5) + 0.1
    )


# ------------------------------------------------------------------ evaluate, predict
def test_evaluate_prints_metrics_and_confusion_matrix(run_cli, toy_run):
    toy_run = toy_run[0]
    rc, out, err = run_cli("evaluate", str(toy_run / "model.safetensors"), "--dataset", "toy")
    assert rc == 0, err
    assert "Confusion matrix" in out and "accuracy" in out
    rc, out, _ = run_cli(
        "evaluate", str(toy_run / "model.safetensors"), "--dataset", "toy", "--json"
    )
    report = json.loads(out)
    summary = json.loads((toy_run / "summary.json").read_text())
    assert report["accuracy"] == summary["test"]["accuracy"]
    assert np.sum(report["confusion_matrix"]) == report["n_samples"] == summary["n_test"]


def test_evaluate_splits_are_the_summary_tables_rows(run_cli, toy_run):
    """--split train took every training row, validation ones included (99.12% on 114 iris
    rows against the table's 99.03% on 103); train and validation are the table's now."""
    run = toy_run[0]
    summary = json.loads((run / "summary.json").read_text())
    for split, n in (("train", "n_train"), ("validation", "n_validation"), ("test", "n_test")):
        rc, out, err = run_cli("evaluate", str(run), "--split", split, "--json")
        assert rc == 0, err
        report = json.loads(out)
        assert (
            report["n_samples"] == summary[n] and report["accuracy"] == summary[split]["accuracy"]
        )
    model = str(run / "model.safetensors")  # a model file: no run's validation rows to name
    rc, out, err = run_cli("evaluate", model, "--dataset", "toy", "--split", "train", "--json")
    assert rc == 0 and json.loads(out)["n_samples"] == summary["n_train"] + summary["n_validation"]
    rc, _, err = run_cli("evaluate", model, "--dataset", "toy", "--split", "validation")
    assert rc == 2 and "--split validation needs a run folder" in err


def test_validation_rows_are_stratified_by_class():
    """Each class gives its share of ``round(fraction * n)`` held-out rows (the rest by the
    largest remainders); a class of one row, or no room for one row a class, falls back to
    the plain shuffle, which held out 3 rows of one class of a 30-row, two-class table."""
    from backprop.cli.config import validation_split

    labels = np.repeat([0, 1, 2], [38, 37, 39])  # iris' 114 training rows at seed 0
    for seed in range(20):
        tr, va = validation_split(labels.size, 0.1, seed, labels)
        assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(labels.size))
        assert np.all(np.diff(tr) > 0) and np.all(np.diff(va) > 0)  # each sorted
        assert np.bincount(labels[va]).tolist() == [4, 3, 4]  # 11 of 114: 3.67, 3.57, 3.76
    two = np.repeat([0, 1], 15)
    for seed in range(20):
        _, va = validation_split(two.size, 0.1, seed, two)
        assert np.bincount(two[va], minlength=2).tolist() == [2, 1]  # 1.5 each; a tie: class 0
    assert min(np.bincount(two[validation_split(30, 0.1, s)[1]], minlength=2).min()
               for s in range(20)) == 0  # fmt: skip  # the plain shuffle, without labels
    a, b = validation_split(30, 0.1, 3, two), validation_split(30, 0.1, 3, two)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))  # same seed, same rows
    few = np.array([0] * 28 + [1] * 2)  # 27 held out: class 1 may give 1, class 0 the rest
    tr, va = validation_split(30, 0.9, 0, few)  # (26: class 1's second row was dropped)
    assert va.size == 27 and np.bincount(few[tr]).tolist() == [2, 1]
    one_row = np.array([0] * 20 + [1] * 9 + [2])  # class 2 has a single row
    for got, plain in zip(validation_split(30, 0.1, 5, one_row), validation_split(30, 0.1, 5),
                          strict=True):  # fmt: skip
        assert np.array_equal(got, plain)


def test_a_small_tables_validation_rows_hold_every_class(run_cli, in_tmp):
    """``train`` on 40 rows of two classes: 30 training rows, 3 held out for early stopping
    (one class alone at 5 of seeds 0-19 before, 1 and 4 among them), and ``evaluate --split
    validation`` scores the same 3."""
    _tiny_csv()
    for seed in ("1", "4"):
        rc, _, err = run_cli("train", "--dataset", "tiny.csv", "--target", "label", "--seed",
                             seed, "--epochs", "2", "--no-plots", "--out", f"r{seed}")  # fmt: skip
        assert rc == 0, err
        rc, out, err = run_cli("evaluate", f"r{seed}", "--split", "validation", "--json")
        assert rc == 0, err
        report = json.loads(out)
        assert report["n_samples"] == 3
        assert all(sum(row) > 0 for row in report["confusion_matrix"]), seed  # both classes


def test_a_run_from_before_the_stratified_split_keeps_its_validation_rows(
    run_cli, in_tmp, monkeypatch
):
    """A config.toml without ``validation_split`` was written when the validation rows were
    a plain shuffle: its ``--resume`` trains on, and ``evaluate --split validation`` scores,
    the rows it held out (they were the stratified ones, silently, another split); and its
    checkpoint, whose record has no validation_split either, resumes (it was refused:
    'validation_split is shuffle there, None in training')."""
    from backprop import load_model
    from backprop.cli import run_folder

    _tiny_csv()
    common = ("--dataset", "tiny.csv", "--target", "label", "--seed", "1", "--no-plots")
    recorded = run_folder.run_config
    with monkeypatch.context() as old_version:  # its checkpoint's record, as runs wrote it
        old_version.setattr(run_folder, "run_config", lambda cfg: {
            k: v for k, v in recorded(cfg).items() if k != "validation_split"})  # fmt: skip
        rc, _, err = run_cli("train", *common, "--epochs", "2", "--out", "old",
                             "--validation-split", "shuffle")  # fmt: skip
    assert rc == 0, err
    config = Path("old/config.toml")
    assert 'validation_split = "shuffle"' in config.read_text("utf-8")
    config.write_text(  # as a run before 2026-12-02 wrote it
        "".join(
            line
            for line in config.read_text("utf-8").splitlines(keepends=True)
            if not line.startswith("validation_split")
        ),  # fmt: skip
        encoding="utf-8",
    )
    rc, out, err = run_cli("evaluate", "old", "--split", "validation", "--json")
    assert rc == 0, err
    summary, report = json.loads(Path("old/summary.json").read_text()), json.loads(out)
    assert report["accuracy"] == summary["validation"]["accuracy"]
    assert report["n_samples"] == summary["n_validation"] == 3
    assert sorted(map(sum, report["confusion_matrix"])) == [0, 3]  # seed 1's shuffle: one class
    rc, _, err = run_cli("train", "--resume", "old", "--epochs", "4")
    assert rc == 0, err
    rc, _, err = run_cli("train", *common, "--epochs", "4", "--out", "whole",
                         "--validation-split", "shuffle")  # fmt: skip
    assert rc == 0, err
    resumed, whole = load_model("old/model.safetensors"), load_model("whole/model.safetensors")
    for name, p in whole.params.items():
        assert np.array_equal(resumed.params[name], p), name


def test_an_older_runs_data_dir_of_a_set_without_files_is_left_out(run_cli, in_tmp):
    """Runs once recorded data_dir for toy (it was ignored then, and is refused since): such
    a run folder failed every evaluate, predict and --resume with '--data-dir applies to
    mnist', an option nobody typed. A config of one's own that sets it is still refused."""
    quiet = ("--no-progress", "--no-plots")
    assert run_cli("train", "--epochs", "2", "--out", "r", *quiet)[0] == 0
    config = Path("r/config.toml")
    text = config.read_text("utf-8").replace(
        'dataset = "toy"\n', 'dataset = "toy"\ndata_dir = "/tmp"\n'
    )
    config.write_text(text, encoding="utf-8")
    assert run_cli("evaluate", "r")[0] == 0
    rc, _, err = run_cli("train", "--resume", "r", "--epochs", "3", *quiet)
    assert rc == 0, err
    Path("mine.toml").write_text('dataset = "toy"\ndata_dir = "/tmp"\n', encoding="utf-8")
    rc, _, err = run_cli("train", "--config", "mine.toml", "--out", "s", *quiet)
    assert rc == 2 and "--data-dir applies to mnist" in err


def test_suggested_commands_paste_into_a_shell(run_cli, in_tmp):
    """'continue it with backprop train --resume my runs/toy (v1)' was a syntax error when
    pasted: every suggested command quotes what the shell would split or read."""
    import shlex

    out, quiet = "my runs/toy (v1)", ("--no-progress", "--no-plots")
    assert run_cli("train", "--epochs", "1", "--out", out, *quiet)[0] == 0
    rc, _, err = run_cli("train", "--epochs", "2", "--out", out, *quiet)
    assert rc == 2 and "already holds a run" in err
    words = shlex.split(err.strip().rsplit(" with ", 1)[1])
    assert words == ["backprop", "train", "--resume", out]
    rc, _, err = run_cli(*words[1:], "--epochs", "2", *quiet)
    assert rc == 0, err
    # a folder whose name starts with '-': 'backprop evaluate -dash' read it as options
    assert run_cli("train", "--epochs", "1", "--out=-dash", *quiet)[0] == 0
    rc, _, err = run_cli("train", "--epochs", "2", "--out=-dash", *quiet)
    words = shlex.split(err.strip().rsplit(" with ", 1)[1])
    assert words == ["backprop", "train", "--resume", "./-dash"]
    assert run_cli(*words[1:], "--epochs", "2", *quiet)[0] == 0


def _tiny_csv() -> None:
    """tiny.csv: 40 rows of two classes, 20 each, two features."""
    rng = np.random.default_rng(0)
    rows = [f"{x:.3f},{y:.3f},{'ab'[k]}" for k in (0, 1) for x, y in rng.normal(k, 1, (20, 2))]
    Path("tiny.csv").write_text("x,y,label\n" + "\n".join(rows) + "\n", encoding="utf-8")


def test_evaluate_on_a_csv_file_gives_a_raw_model_raw_numbers(run_cli, in_tmp):
    # a model trained without a scaling (toy, moons, mnist) was handed the CSV file's
    # standardised columns: moons' own test rows scored 96.0% against its 99.2%
    assert run_cli("train", "--dataset", "moons", "--epochs", "5", "--out", "m",
                   "--no-progress", "--no-plots")[0] == 0  # fmt: skip
    data = backprop.datasets.load_dataset("moons", seed=0)
    lines = ["x1,x2,label"] + [
        f"{a!r},{b!r},{k}" for (a, b), k in zip(data.X_test.tolist(), data.y_test, strict=True)
    ]
    Path("test.csv").write_text("\n".join(lines) + "\n")
    rc, out, err = run_cli("evaluate", "m/model.safetensors", "--dataset", "test.csv",
                           "--target", "label", "--test-fraction", "0", "--split", "train",
                           "--json")  # fmt: skip
    assert rc == 0, err
    own = json.loads(run_cli("evaluate", "m", "--json")[1])
    report = json.loads(out)
    assert report["n_samples"] == own["n_samples"] == len(data.y_test)
    assert report["confusion_matrix"] == own["confusion_matrix"]
    # a file of some of the classes: they are the model's class numbers, reported as such
    assert run_cli("train", "--dataset", "blobs", "--epochs", "2", "--out", "b",
                   "--no-progress", "--no-plots")[0] == 0  # fmt: skip
    blobs = backprop.datasets.load_dataset("blobs", seed=0)
    keep = blobs.y_test > 0
    rows = zip(blobs.X_test[keep].tolist(), blobs.y_test[keep], strict=True)
    Path("two.csv").write_text(
        "x1,x2,label\n" + "".join(f"{a!r},{b!r},{k}\n" for (a, b), k in rows)
    )
    rc, out, err = run_cli("evaluate", "b/model.safetensors", "--dataset", "two.csv",
                           "--target", "label", "--test-fraction", "0", "--split", "train",
                           "--json")  # fmt: skip
    assert rc == 0, err
    report = json.loads(out)
    assert [c["class"] for c in report["per_class"]] == ["0", "1", "2"]
    assert [c["support"] for c in report["per_class"]] == [0, *np.bincount(blobs.y_test)[1:]]
    Path("named.csv").write_text("x1,x2,label\n0.1,0.2,cat\n0.3,0.4,dog\n")
    rc, _, err = run_cli("evaluate", "m/model.safetensors", "--dataset", "named.csv",
                         "--target", "label", "--test-fraction", "0",
                         "--split", "train")  # fmt: skip
    assert rc == 2 and err.count("\n") == 1
    assert "has the label 'cat'; the model has no class names" in err and "0 to 1" in err


def test_evaluate_matches_numeric_labels_as_numbers(run_cli, in_tmp):
    # a model of labels 2 and 10 refused the same file written 2.0 and 10.0 ("labels
    # ['10.0', '2.0'] the model was not trained on"); CSV labels compare as numbers, and
    # exactly: as floats, 9007199254740993.0 was counted as the class 9007199254740992
    for labels, names in (((10, 2), ["2", "10"]),
                          ((9007199254740992, 9007199254740993), None)):  # fmt: skip
        rows = [(i / 10, labels[i % 2]) for i in range(40)]
        Path("a.csv").write_text("x,y\n" + "".join(f"{x},{k}\n" for x, k in rows))
        Path("b.csv").write_text("x,y\n" + "".join(f"{x},{k}.0\n" for x, k in rows))
        assert run_cli("train", "--dataset", "a.csv", "--target", "y", "--epochs", "3",
                       "--out", f"m{labels[0]}", "--no-progress", "--no-plots")[0] == 0  # fmt: skip
        reports = []
        for name in ("a.csv", "b.csv"):
            rc, out, err = run_cli("evaluate", f"m{labels[0]}/model.safetensors", "--dataset",
                                   name, "--target", "y", "--json")  # fmt: skip
            assert rc == 0, err
            reports.append(json.loads(out))
        assert reports[0]["confusion_matrix"] == reports[1]["confusion_matrix"]
        assert [c["support"] for c in reports[1]["per_class"]] == [5, 5]
        if names is not None:
            assert [c["class"] for c in reports[1]["per_class"]] == names


def test_evaluate_reads_a_csv_models_own_columns(run_cli, in_tmp):
    # predict took a file with an id column of text; evaluate refused it ("column 'id':
    # the cell 'r0' is not a finite number")
    rows = [(f"r{i}", i / 40 - 0.5, (i * 7 % 40) / 40, "yes" if i % 2 else "no") for i in range(40)]
    Path("tr.csv").write_text("a,b,y\n" + "".join(f"{a},{b},{y}\n" for _, a, b, y in rows))
    Path("ev.csv").write_text("id,b,a,y\n" + "".join(f"{i},{b},{a},{y}\n" for i, a, b, y in rows))
    assert run_cli("train", "--dataset", "tr.csv", "--target", "y", "--epochs", "3", "--out",
                   "m", "--no-progress", "--no-plots")[0] == 0  # fmt: skip
    reports = []
    for name in ("tr.csv", "ev.csv"):
        rc, out, err = run_cli("evaluate", "m/model.safetensors", "--dataset", name, "--json")
        assert rc == 0, err
        reports.append(json.loads(out))
    assert reports[0]["confusion_matrix"] == reports[1]["confusion_matrix"]
    rc, _, err = run_cli("evaluate", "m/model.safetensors", "--dataset", "ev.csv", "--target", "a")
    assert rc == 2 and "--target 'a' is one of the model's feature columns (a, b)" in err


def test_names_and_paths_are_printed_as_they_are(run_cli, in_tmp):
    # class names and paths were read as rich markup: a class '[red]' got a blank header,
    # '[/]' ended evaluate (and train, in --out) with "internal error: MarkupError", ':cat:'
    # became an emoji; an escape sequence in a label reached the terminal raw
    labels = ["[red]", "[/]", ":cat:", "a\x1b[31mb"]
    rows = "".join(f"{i / 40},{(i * 7 % 40) / 40},{labels[i % 4]}\n" for i in range(40))
    Path("t[bold]x.csv").write_text("a,b,y\n" + rows)
    rc, out, err = run_cli("train", "--dataset", "t[bold]x.csv", "--target", "y", "--epochs", "2",
                           "--out", "r[/]y", "--no-progress", "--no-plots")  # fmt: skip
    assert rc == 0, err
    assert "Data     t[bold]x.csv" in out and "Run      r[/]y" in out and "\x1b" not in out
    rc, out, err = run_cli("evaluate", "r[/]y", "--split", "train")
    assert rc == 0, err
    assert "\x1b" not in out
    per_class = out[out.index("Per class") :]
    for shown in ("[red]", "[/]", ":cat:", "a\\x1b[31mb"):
        assert re.search(rf"^ *{re.escape(shown)} +[0-9.]+ ", per_class, re.M), (shown, out)
    Path("e\x1b[31mx.csv").write_text("a,b,y\n" + rows)
    rc, out, err = run_cli("gradcheck", "--dataset", "e\x1b[31mx.csv", "--target", "y")
    assert rc == 0 and "\x1b" not in out and "e\\x1b[31mx.csv" in out, (out, err)


def test_characters_the_plots_font_lacks_are_one_line(run_cli, in_tmp):
    # eight CJK class names printed 32 lines of matplotlib's "Glyph ... missing from
    # font(s)" warnings, each with a source line, after a run that went well
    names = ["猫", "犬", "鳥"]
    rows = "".join(f"{i / 60},{(i * 7 % 60) / 60},{names[i % 3]}\n" for i in range(60))
    Path("cjk.csv").write_text("幅,x,動物\n" + rows)
    rc, _, err = run_cli("train", "--dataset", "cjk.csv", "--target", "動物", "--epochs", "2",
                         "--out", "r", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert err.count("\n") == 1 and err.startswith("Plots: the font ("), err
    assert sorted(err.split(": ")[-1].split()) == sorted(["幅", *names])
    assert Path("r/decision_boundary.png").stat().st_size > 0


def test_other_warnings_of_the_plots_keep_their_own_filters(run_cli, in_tmp, monkeypatch):
    # the glyph warnings' catcher recorded every warning under 'always' and re-issued it:
    # a warning Python shows once per place printed once per occurrence
    import warnings

    from backprop.cli import plots

    curves = plots.plot_curves

    def noisy(*args, **kwargs):
        for _ in range(3):
            warnings.warn("a warning of the plots", UserWarning, stacklevel=1)
        return curves(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_curves", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        rc, _, err = run_cli("train", "--epochs", "1", "--out", "r", "--no-progress")
    assert rc == 0 and err.count("UserWarning: a warning of the plots") == 1, err


def test_predict_names_outputs_that_are_not_probabilities(run_cli, toy_run):
    """The tutorial's sigmoid outputs under L2 were written as p_0, p_1, rows summing to
    0.95-1.33: they are the network's outputs, out_0, out_1."""
    rc, out, err = run_cli("predict", str(toy_run[0]))
    assert rc == 0, err
    assert out.splitlines()[0] == "true,label,out_0,out_1"


def test_predict_writes_labels_and_probabilities(run_cli, in_tmp, csv_files):
    train_csv, new_csv = csv_files
    assert run_cli("train", "--dataset", str(train_csv), "--target", "colour", "--epochs", "60",
               "--out", "m", "--no-progress", "--no-plots")[0] == 0  # fmt: skip
    rc, out, err = run_cli("predict", "m/model.safetensors", str(new_csv))
    assert rc == 0, err
    rows = list(csv.DictReader(out.splitlines()))
    assert list(rows[0]) == ["label", "p_blue", "p_green", "p_red"]
    assert [r["label"] for r in rows] == ["red", "green", "blue"]
    for r in rows:
        probs = [float(r[f"p_{c}"]) for c in ("blue", "green", "red")]
        assert max(probs) == float(r[f"p_{r['label']}"])
    rc, _, err = run_cli("predict", "m/model.safetensors", str(new_csv), "--output", "p.csv")
    assert rc == 0 and (in_tmp / "p.csv").read_text() == out
    # evaluate applies the model's own scaling to the CSV's rows
    rc, out, err = run_cli("evaluate", "m/model.safetensors", "--dataset", str(train_csv), "--json")
    assert rc == 0, err
    assert json.loads(out)["accuracy"] >= 0.9


def test_predict_regression_outputs(run_cli, in_tmp):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (80, 2))
    with open("reg.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "y"])
        for a, b in X:
            w.writerow([a, b, round(0.5 * a - b + 0.25, 6)])
    rc, out, err = run_cli("train", "--dataset", "reg.csv", "--target", "y", "--epochs", "30",
                           "--out", "r", "--no-progress", "--no-plots")  # fmt: skip
    assert rc == 0, err
    summary = json.loads((in_tmp / "r/summary.json").read_text())
    assert set(summary["test"]) == {"loss", "mse", "mae", "r2"}
    # two squared errors side by side, in two units, and nothing said which was which
    said = " ".join(out.split())
    assert "Units loss on the standardised targets the network learns; mae in the target's " \
           "own units, mse in their square" in said  # fmt: skip
    rc, out, err = run_cli("train", "--dataset", "reg.csv", "--target", "y", "--epochs", "3",
                           "--target-scaling", "none", "--out", "r2", "--no-progress",
                           "--no-plots")  # fmt: skip
    assert rc == 0 and "Units" not in out, err
    rc, out, err = run_cli("predict", "r/model.safetensors", "reg.csv")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "y" and len(lines) == 81


def test_unscaled_targets_that_fit_worse_than_their_mean_name_the_option(run_cli, in_tmp):
    """--target-scaling none on targets near 1e6 trained to R² -20 with nothing said; the
    summary now names the option. Targets near 1 that fit well under none say nothing."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    for name, y in (("big.csv", 1e6 + 2e5 * X[:, 0]), ("small.csv", 0.5 * X[:, 0] - X[:, 1])):
        np.savetxt(name, np.c_[X, y], delimiter=",", header="a,b,y", comments="")
    said = {}
    for name in ("big.csv", "small.csv"):
        rc, out, err = run_cli("train", "--dataset", name, "--target", "y", "--epochs", "20",
                               "--target-scaling", "none", "--out", name[:-4], "--no-progress",
                               "--no-plots")  # fmt: skip
        assert rc == 0, err
        r2 = json.loads((in_tmp / name[:-4] / "summary.json").read_text())["train"]["r2"]
        said[name] = (r2, " ".join(out.split()))
    r2, out = said["big.csv"]
    assert r2 < 0 and (
        f"Targets not scaled (--target-scaling none), and the network fits the training rows "
        f"worse than their mean (R² {r2:.2f}): --target-scaling standard trains on "
        "standardised targets" in out
    )
    r2, out = said["small.csv"]
    assert r2 > 0.9 and "Targets" not in out


def test_the_summary_says_when_accuracy_is_the_common_class_and_when_no_test_row_is_held(
    run_cli, tmp_path
):
    # 97.6% on imbalanced rows read as a good score where every rare row was missed; and 16
    # classes of 20 rows (a weight written '191.0') trained without a test row, unsaid
    rng = np.random.default_rng(0).normal(size=(200, 2)).tolist()
    rows = "".join(
        f"{a!r},{b!r},{'rare' if i % 50 == 7 else 'common'}\n" for i, (a, b) in enumerate(rng)
    )
    (tmp_path / "imbalanced.csv").write_text("a,b,y\n" + rows)
    quiet = ("--no-progress", "--no-plots")
    rc, out, err = run_cli("train", "-d", str(tmp_path / "imbalanced.csv"), "--target", "y",
                           "--out", str(tmp_path / "r1"), *quiet)  # fmt: skip
    assert rc == 0, err
    said = " ".join(out.split())
    assert (
        "Accuracy " in out
        and "on the test rows is no better than always answering 'common'" in said
        and "--class-weight balanced weighs the rarer classes up" in said
    )
    weights = "".join(f"{i},{i % 3},{150 + i * 3 // 2}.0\n" for i in range(20))
    (tmp_path / "weights.csv").write_text("a,b,weight\n" + weights)
    rc, out, err = run_cli("train", "-d", str(tmp_path / "weights.csv"), "--target", "weight",
                           "--out", str(tmp_path / "r2"), *quiet)  # fmt: skip
    assert rc == 0, err
    said = " ".join(out.split())
    assert "Test no rows held out: its 20 rows make" in said
    assert "labels that are all numbers: if they are a quantity, --task regression" in said


# --------------------------------------------------------------- gradcheck, export
def test_gradcheck_passes_and_fails_by_tolerance(run_cli, wrong_bias_gradients):
    rc, out, _ = run_cli(
        "gradcheck", "--dataset", "xor", "--layers", "2,5,2", "--activation", "tanh"
    )
    assert rc == 0
    assert "layers.0.W" in out and "layers.1.b" in out and "FAIL" not in out
    # deviations all at the estimates' rounding: no tolerance, however small, fails them
    rc, out, _ = run_cli("gradcheck", "--tolerance", "1e-30")
    assert rc == 0 and "ok*" in out and "within the tolerance 1e-30" in out
    # bias gradients 1e-5 off: over a tolerance of 1e-6, within one of 1e-4
    wrong_bias_gradients(1 + 1e-5)
    rc, out, _ = run_cli("gradcheck")
    assert rc == 1 and "layers.0.b" in out and "FAIL" in out and "exceed the tolerance 1e-06" in out
    rc, out, _ = run_cli("gradcheck", "--tolerance", "1e-4")
    assert rc == 0 and "FAIL" not in out


def test_gradcheck_of_a_regression_csv_checks_the_targets_train_trains_on(run_cli, tmp_path):
    # targets near 1e200 were checked raw: the loss overflowed, every array 'FAIL' with NaN
    # errors and a RuntimeWarning, where train standardises them and trains well
    X = np.random.default_rng(0).normal(size=(50, 2)).tolist()
    rows = "".join(f"{a!r},{b!r},{1e200 * (a + b + 3)!r}\n" for a, b in X)
    (tmp_path / "far.csv").write_text("a,b,y\n" + rows)
    rc, out, err = run_cli("gradcheck", "-d", str(tmp_path / "far.csv"), "--target", "y")
    assert rc == 0 and err == "", err
    assert "far.csv (targets standardised), at its initial weights" in " ".join(out.split())
    assert "All 6 parameter arrays within the tolerance 1e-06" in out


def test_export_onnx_matches_the_model(run_cli, toy_run, tmp_path):
    toy_run = toy_run[0]
    pytest.importorskip("backprop.onnx_export", reason="ONNX export module not present")
    onnx = pytest.importorskip("onnx", reason="onnx is an optional extra")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is an optional extra")
    out = tmp_path / "toy.onnx"
    rc, _, err = run_cli("export", str(toy_run / "model.safetensors"), str(out))
    assert rc == 0, err
    onnx.checker.check_model(onnx.load(str(out)))
    model = load_model(toy_run / "model.safetensors")
    X = np.random.default_rng(0).uniform(0, 1, (7, 2))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = session.run(None, {name: np.asarray(X, dtype=np.float64)})[0]
    np.testing.assert_allclose(got, model.predict(X), atol=1e-5)


def test_export_writes_only_files(run_cli, toy_run, tmp_path):
    # a FIFO (or /dev/null, as root) was replaced by a regular file; '-' became a file '-'
    pytest.importorskip("onnx", reason="onnx is an optional extra")
    os.mkfifo(tmp_path / "fifo")
    rc, _, err = run_cli("export", str(toy_run[0]), str(tmp_path / "fifo"))
    assert rc == 2 and err.count("\n") == 1 and "it is a FIFO, not a regular file" in err
    assert stat.S_ISFIFO((tmp_path / "fifo").lstat().st_mode)
    rc, _, err = run_cli("export", str(toy_run[0]), "-")
    assert rc == 2 and err.count("\n") == 1 and "OUT.onnx is '-'" in err
    assert not Path("-").exists()


# ----------------------------------------------------------------- help, version
def test_version(run_cli):
    rc, out, _ = run_cli("--version")
    assert rc == 0 and out.strip() == f"backprop {backprop.__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(run_cli, command):
    rc, out, _ = run_cli(command, "--help")
    assert rc == 0
    assert f"backprop {command}" in out and "Example" in out


def test_docs_cli_names_every_option_of_every_command():
    # evaluate's --target, --n-samples, --backend... and predict's --backend were in --help
    # and nowhere in docs/cli.md's sections of those commands
    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    sections = {s.split("`")[0].split()[0]: s for s in text.split("\n## `backprop ")[1:]}
    for name, command in cli.commands.items():
        for param in command.params:
            for opt in param.opts + param.secondary_opts:
                if opt == "--help" or not opt.startswith("-"):
                    continue
                where = sections[name] if name in ("evaluate", "predict") else text
                assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", where), (name, opt)


def test_evaluates_data_defaults_name_a_run_folders_own(run_cli):
    # train's help said "for a run folder, its own" of --dataset; then evaluate's said only
    # "[default: toy]", though a RUN_DIR brings its own
    for command, own in (("evaluate", True), ("train", False), ("gradcheck", False)):
        out = " ".join(run_cli(command, "--help")[1].split())
        assert ("[default: toy; a RUN_DIR's own]" in out) == own, command
        assert ("[default: 0.25; a RUN_DIR's own]" in out) == own, command


def test_shared_options_are_the_same_objects():
    """Options declared once: train and gradcheck share the model options' definitions."""
    train = {p.name: p for p in cli.commands["train"].params}
    check = {p.name: p for p in cli.commands["gradcheck"].params}
    for name in ("layers", "activation", "loss", "dtype", "seed", "backend", "device", "dataset"):
        assert train[name].help == check[name].help
        assert type(train[name].type) is type(check[name].type)


def test_torch_backend_passes_through(run_cli, in_tmp):
    pytest.importorskip("torch", reason="the torch backend needs PyTorch")
    pytest.importorskip("array_api_compat", reason="the torch backend needs array-api-compat")
    rc, _, err = run_cli("train", "--backend", "torch", "--device", "cpu", "--epochs", "2",
                     "--out", "t", "--no-progress", "--no-plots")  # fmt: skip
    assert rc == 0, err
    assert 'backend = "torch"' in (in_tmp / "t/config.toml").read_text()


# ------------------------------------------------------------------- subprocesses
def test_every_command_as_a_subprocess(tmp_path, csv_files):
    train_csv, new_csv = csv_files
    env_run = lambda *a: run_subprocess(*a, cwd=tmp_path)  # noqa: E731
    p = env_run("train", "--dataset", str(train_csv), "--target", "colour", "--epochs", "20",
                "--out", "run", "--no-plots")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "Trained on" in p.stdout
    model = str(tmp_path / "run/model.safetensors")
    p = env_run("evaluate", model, "--dataset", str(train_csv))
    assert p.returncode == 0 and "Confusion matrix" in p.stdout, p.stderr
    p = env_run("predict", model, str(new_csv))
    assert p.returncode == 0 and p.stdout.startswith("label,"), p.stderr
    p = env_run("gradcheck", "--samples", "4")
    assert p.returncode == 0 and "layers.0.W" in p.stdout, p.stderr
    p = env_run("explain")
    assert p.returncode == 0 and "∂L/∂w_ij" in p.stdout, p.stderr
    p = env_run("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"backprop {backprop.__version__}"
    if _has("backprop.onnx_export") and _has("onnx"):
        p = env_run("export", model, str(tmp_path / "m.onnx"))
        assert p.returncode == 0 and (tmp_path / "m.onnx").stat().st_size > 0, p.stderr


def _has(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def test_console_script_entry_point_is_main():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "backprop"]
    assert ep.value == "backprop.cli:main"
    assert os.environ.get("BACKPROP_DEBUG", "") in ("", "0")


def test_one_epoch_curves_show_a_point_on_a_whole_epoch(tmp_path, monkeypatch):
    """--epochs 1: the curves were one-point lines, drawn as nothing, over ticks 0.945 to
    1.050; now a marker at epoch 1, the only tick."""
    from backprop.cli import plots

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig))
    rows = [{"epoch": 1, "loss": 0.5, "val_loss": 0.6, "accuracy": 0.7, "val_accuracy": 0.6}]
    assert plots.plot_curves(rows, tmp_path) == ["loss.png", "accuracy.png"]
    for fig in drawn:
        (ax,) = fig.axes
        assert list(ax.get_xticks()) == [1]
        assert [line.get_marker() for line in ax.get_lines()] == ["o", "o"]


def test_the_loss_curve_of_standardised_targets_says_so(tmp_path, monkeypatch):
    """A regression run's loss.png read 0.02 on an axis named 'loss' beside a table's MSE of
    7,201 (the network's loss is on the standardised targets)."""
    from backprop.cli import plots
    from backprop.datasets import load_dataset

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig))
    rows = (Path(__file__).parents[1] / "examples/iris.csv").read_text().splitlines()
    (tmp_path / "sizes.csv").write_text("\n".join(",".join(r.split(",")[:4]) for r in rows))
    data = load_dataset(str(tmp_path / "sizes.csv"), target="petal_width")
    model = backprop.MLP([data.n_features, 4, 1], "tanh", "identity", "mse", seed=0)
    for pre, label in [(data.preprocessing, "loss"),
                       (data.preprocessing.with_target_scaling(data.y_train.reshape(-1, 1)),
                        "loss (on standardised targets)")]:  # fmt: skip
        model.preprocessing = pre
        drawn.clear()
        plots.plot_run(tmp_path, model, data, [{"epoch": 1, "loss": 1.0}])
        assert drawn[0].axes[0].get_ylabel() == label


def test_the_header_says_what_a_batch_and_a_patience_beyond_the_run_do(run_cli, in_tmp):
    """'batch 100000' on 338 rows and 'early stopping after 100' in a 30-epoch run: the
    batch is every row, and the patience cannot stop the run (its best epoch is kept)."""
    rc, out, err = run_cli("train", "--dataset", "moons", "--epochs", "2", "--batch-size",
                           "100000", "--out", "r", "--no-progress", "--no-plots")  # fmt: skip
    assert rc == 0, err
    training = " ".join(out.split("Data")[0].split("Training", 1)[1].split())
    assert "batch 100000 (all 338 rows), 2 epochs" in training
    assert "the best val_loss's weights kept (patience 100)" in training
    assert "early stopping after" not in training


def test_the_header_and_the_ending_say_what_early_stopping_watches_and_keeps(run_cli, in_tmp):
    """Without validation rows the header said 'without a better val_loss' while the run
    watched the training loss; an early stop did not say whose model was saved (the best
    epoch's, or with --keep-last the last one's); '1 epochs'."""
    quiet = ["--no-progress", "--no-plots"]
    common = ["train", "--dataset", "moons", "--epochs", "300", "--early-stopping", "3",
              "--lr", "0.3", *quiet]  # fmt: skip
    rc, out, err = run_cli(*common, "--validation-fraction", "0", "--out", "a")
    assert rc == 0, err
    training = " ".join(out.split("Data")[0].split("Training", 1)[1].split())
    assert "early stopping after 3 epochs without a better loss" in training, training
    for flag, run in (("--restore-best", "b"), ("--keep-last", "c")):
        rc, out, err = run_cli(*common, flag, "--out", run)
        assert rc == 0, err
        summary = json.loads((in_tmp / run / "summary.json").read_text())
        best, last = summary["best_epoch"], summary["epochs_run"]
        assert summary["stop_reason"].startswith("early stopping: val_loss did not improve")
        said = f"epoch {best}'s" if flag == "--restore-best" else "the last epoch's"
        assert summary["stop_reason"].endswith(f"; the model is {said}"), summary["stop_reason"]
        assert f"the model is {said}" in " ".join(out.split())
        assert last > best
    rc, out, err = run_cli("train", "--epochs", "1", "--out", "d", *quiet)
    training = " ".join(out.split("Data")[0].split("Training", 1)[1].split())
    assert rc == 0 and training == "sgd, lr 3, batch 10, 1 epoch", training


def test_plots_of_a_csv_file_speak_its_columns_and_units(tmp_path, monkeypatch):
    """decision_boundary.png labelled the axes x1/x2 over standardised values (-1.5 to 2,
    not petal lengths in cm); predicted_vs_true.png titled the target 'target'."""
    from backprop.cli import plots
    from backprop.datasets import load_dataset

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig))
    rows = (Path(__file__).parents[1] / "examples/iris.csv").read_text().splitlines()
    (tmp_path / "petals.csv").write_text("\n".join(",".join(r.split(",")[2:]) for r in rows))
    (tmp_path / "sizes.csv").write_text("\n".join(",".join(r.split(",")[:4]) for r in rows))
    for name, target in (("petals.csv", "species"), ("sizes.csv", "petal_width")):
        data = load_dataset(str(tmp_path / name), target=target)
        model = backprop.MLP([data.n_features, 4, data.n_outputs], "tanh", "identity",
                             "cross_entropy" if target == "species" else "mse", seed=0)  # fmt: skip
        model.preprocessing = data.preprocessing
        plots.plot_run(tmp_path, model, data, [{"epoch": 1, "loss": 1.0}])
    assert len(drawn) == 4  # each run's loss curve, then its boundary or its truths
    boundary, truth = drawn[1], drawn[3]
    assert "Decision boundary" in boundary.axes[0].get_title()
    ax = boundary.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("petal_length", "petal_width")
    lo, hi = ax.get_xlim()
    assert lo < 1.0 < 6.9 < hi < 8  # the flowers' petal lengths, 1.0 to 6.9 cm, padded
    ax = truth.axes[0]
    assert ax.get_title().startswith("petal_width: R²") and ax.get_xlabel() == "true petal_width"


def test_the_curves_mark_the_epoch_whose_model_was_kept(run_cli, in_tmp, monkeypatch):
    """The table's numbers are early stopping's best epoch's while the curves ran on past
    it, unmarked: their last points disagreed with the table."""
    from backprop.cli import plots

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append((Path(path).name, fig)))
    rc, _, err = run_cli("train", "--dataset", "moons", "--epochs", "300", "--early-stopping",
                         "3", "--lr", "0.3", "--out", "r", "--no-progress")  # fmt: skip
    assert rc == 0, err
    summary = json.loads((in_tmp / "r/summary.json").read_text())
    best = summary["best_epoch"]
    assert best < summary["epochs_run"]
    for name in ("loss.png", "accuracy.png"):
        fig = dict(drawn)[name]
        labels = [line.get_label() for line in fig.axes[0].get_lines()]
        assert f"the model kept: epoch {best}" in labels, (name, labels)
    drawn.clear()
    assert run_cli("train", "--dataset", "moons", "--epochs", "3", "--out", "all")[0] == 0
    labels = [line.get_label() for line in dict(drawn)["loss.png"].axes[0].get_lines()]
    assert not any(label.startswith("the model kept") for label in labels)  # the last epoch's


def test_the_misclassified_grid_says_it_shows_only_the_first_ones(monkeypatch):
    # '946 of 10000' above a grid of 25 read as if those were all
    from backprop.cli import plots
    from backprop.cli.render import fmt_metric

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig))
    y = np.arange(40) % 2
    model = backprop.MLP([4, 2], "sigmoid", "sigmoid", seed=0)
    X = np.zeros((40, 4))  # one prediction for every row: half of them wrong
    wrong = plots.plot_misclassified(model, X, y, (2, 2), None, "m.png")
    assert wrong == 20 and "20 of 40 (true" in drawn[0]._suptitle.get_text()
    y = np.arange(60) % 2
    assert plots.plot_misclassified(model, np.zeros((60, 4)), y, (2, 2), None, "m.png") == 30
    assert "30 of 60, the first 25 shown (true → predicted)" in drawn[1]._suptitle.get_text()
    # the summary table's numbers as the epoch lines': 0.2720, not 0.272; 1234, not 1234.
    assert fmt_metric("loss", 0.272) == "0.2720" and fmt_metric("accuracy", 0.5) == "50.00%"
    assert fmt_metric("mse", 1234.0) == "1234" and fmt_metric("mse", 12345.0) == "1.234e+04"


def test_a_dollar_in_a_column_name_is_drawn_as_written(tmp_path, monkeypatch):
    # 'Revenue $$' as the target (or a feature) failed the run after training: matplotlib
    # read '$...$' as math ('ParseException: Expected end of text')
    from backprop.cli import plots
    from backprop.datasets import load_dataset

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: (fig.canvas.draw(), drawn.append(fig)))
    rows = (Path(__file__).parents[1] / "examples/iris.csv").read_text().splitlines()
    sizes = ["sepal $$ length,b,c,Revenue $$"] + [",".join(r.split(",")[:4]) for r in rows[1:]]
    (tmp_path / "money.csv").write_text("\n".join(sizes))
    petals = ["petal $$ length,petal_width,kind $$"] + [
        ",".join(r.split(",")[2:]) for r in rows[1:]
    ]
    (tmp_path / "petals.csv").write_text("\n".join(petals))
    for name, target in (("money.csv", "Revenue $$"), ("petals.csv", "kind $$")):
        data = load_dataset(str(tmp_path / name), target=target)
        classify = data.task == "classification"
        model = backprop.MLP([data.n_features, 4, data.n_outputs], "tanh", "identity",
                             "cross_entropy" if classify else "mse", seed=0)  # fmt: skip
        model.preprocessing = data.preprocessing
        plots.plot_run(tmp_path, model, data, [{"epoch": 1, "loss": 1.0}])
    titles = [ax.get_title() for fig in drawn for ax in fig.axes]
    assert any(t.startswith(r"Revenue \$\$: R²") for t in titles), titles
    labels = [ax.get_xlabel() for fig in drawn for ax in fig.axes]
    assert r"petal \$\$ length" in labels


def test_task_and_features_are_options_and_the_header_says_the_task(run_cli, in_tmp):
    """A numeric target of 30 integer classes was read as regression, and an id column as
    a feature, with no option to say otherwise (load_csv had task= and features=) and
    nothing printed about the task chosen."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    label = (np.digitize(x[:, 0], np.linspace(-2, 2, 29)) % 30).astype(int)
    rows = "".join(f"{i},{x[i, 0]:.4f},{x[i, 1]:.4f},{label[i]}\n" for i in range(300))
    (in_tmp / "t.csv").write_text("id,a,b,c\n" + rows)
    quiet = ["--epochs", "2", "--no-plots", "--no-progress"]
    rc, out, err = run_cli("train", "--dataset", "t.csv", "--target", "c", "--out", "r1", *quiet)
    assert rc == 0, err
    assert "t.csv (regression; --task to choose):" in " ".join(out.split())
    assert out.startswith("Network  3-")  # id, a, b: three inputs
    chosen = ["--task", "classification", "--features", "a,b", "--out", "r2", *quiet]
    rc, out, err = run_cli("train", "--dataset", "t.csv", "--target", "c", *chosen)
    assert rc == 0, err
    classes = len(set(label))
    assert f"t.csv (classification, {classes} classes; as --task said):" in " ".join(out.split())
    assert out.startswith("Network  2-")  # a, b only
    config = (in_tmp / "r2" / "config.toml").read_text()
    assert 'task = "classification"' in config and 'features = ["a", "b"]' in config
    # the run's config repeats it, and evaluate reads the run's columns
    rc, _, err = run_cli("train", "--config", "r2/config.toml", "--out", "r3", *quiet)
    assert rc == 0, err
    assert (in_tmp / "r2/model.safetensors").read_bytes() == (
        in_tmp / "r3/model.safetensors"
    ).read_bytes()
    rc, out, err = run_cli("evaluate", "r2", "--json")
    assert rc == 0 and len(json.loads(out)["confusion_matrix"]) == classes, err
    # a CSV model reads its own task and columns: others given are refused, not dropped
    for option, value in (("--task", "regression"), ("--features", "a")):
        rc, _, err = run_cli("evaluate", "r2", option, value)
        assert rc == 2 and f"{option} does not apply to a model trained on a CSV file" in err
    rc, _, err = run_cli("evaluate", "r2", "--task", "classification", "--features", "a,b")
    assert rc == 0, err  # its own, given again
    # predict of the run folder reads the run's own data (its task and features were
    # dropped: 'the training rows of t.csv differ from those the run was trained on')
    rc, out, err = run_cli("predict", "r2")
    assert rc == 0 and out.startswith("true,label,"), err
    # evaluate hands --features on to a CSV file for a model without a scaling of its own
    rc, _, err = run_cli("train", "--dataset", "moons", "--epochs", "1", "--out", "m", *quiet[2:])
    assert rc == 0, err
    (in_tmp / "m.csv").write_text("a,b,junk,y\n" + "".join(
        f"{x[i, 0]:.3f},{x[i, 1]:.3f},{i},{i % 2}\n" for i in range(40)))  # fmt: skip
    rc, out, err = run_cli("evaluate", "m/model.safetensors", "-d", "m.csv", "--target", "y",
                           "--features", "a,b", "--json")  # fmt: skip
    assert rc == 0 and json.loads(out)["n_samples"] == 10, err
    rc, _, err = run_cli("train", "--dataset", "moons", "--task", "regression", "--out", "r4")
    assert rc == 2 and "--task applies to CSV files" in err, err
    rc, _, err = run_cli("train", "--dataset", "t.csv", "--target", "c", "--features", "a,a")
    assert rc == 2 and "'a' is named twice" in err, err
    # a column whose name holds a comma is quoted, as in the file's header (it could not
    # be named: 'missing the feature columns ['x', '1']')
    (in_tmp / "q.csv").write_text('"x,1",b,c\n' + "".join(f"{i},{-i},{i % 2}\n" for i in range(40)))
    rc, _, err = run_cli("train", "--dataset", "q.csv", "--target", "c", "--features",
                         'b, "x,1"', "--out", "r5", *quiet)  # fmt: skip
    assert rc == 0, err
    assert 'features = ["b", "x,1"]' in (in_tmp / "r5" / "config.toml").read_text()
    rc, _, err = run_cli("train", "--dataset", "q.csv", "--target", "c", "--features", '"x,1')
    assert rc == 2 and "expected column names separated by commas" in err, err


def test_a_run_config_from_before_an_option_reruns_as_it_ran(run_cli, in_tmp):
    # a run's config.toml written before bias_init, early stopping and target scaling existed
    # trained another run under --config, silently (its --resume read them as it ran); a
    # file of one's own, without the header train writes, takes today's defaults
    keys = 'dataset = "moons"\nlayers = [2, 8, 2]\nepochs = 2\n'
    header = ("# backprop train: the fully resolved configuration of this run.\n"
              "# Re-run it with: backprop train --config config.toml --out NEW_DIR\n")  # fmt: skip
    Path("old.toml").write_text(header + keys)
    Path("mine.toml").write_text(keys)
    written = {}
    for name in ("old", "mine"):
        rc, _, err = run_cli("train", "--config", f"{name}.toml", "--out", name, "--no-progress",
                             "--no-plots")  # fmt: skip
        assert rc == 0, err
        written[name] = (in_tmp / name / "config.toml").read_text()
    for key, legacy in (("bias_init", '"zeros"'), ("early_stopping", "0")):
        assert f"\n{key} = {legacy}\n" in written["old"], key
        assert f"\n{key} = {legacy}\n" not in written["mine"], key
    # a run's file of today, edited to leave an option out, takes today's default (as its
    # header says), and a monitor given over an old file is maximised where it is accuracy
    today = written["mine"].replace("\nearly_stopping = ", "\n# early_stopping = ")
    Path("edited.toml").write_text(today)
    rc, _, err = run_cli("train", "--config", "edited.toml", "--out", "edited", "--no-progress",
                         "--no-plots")  # fmt: skip
    assert rc == 0, err
    assert (in_tmp / "edited/config.toml").read_text() == written["mine"]
    rc, _, err = run_cli("train", "--config", "old.toml", "--out", "acc", "--early-stopping",
                         "3", "--monitor", "val_accuracy", "--no-progress",
                         "--no-plots")  # fmt: skip
    assert rc == 0, err
    assert '\nmonitor_mode = "auto"\n' in (in_tmp / "acc/config.toml").read_text()


def test_a_run_from_before_the_missing_label_rule_resumes_and_predicts(
    run_cli, in_tmp, monkeypatch
):
    """A run trained before 'NA' among text labels was refused has NA as a class, and its
    config.toml names no task: --resume, predict and a --config rerun were all refused (the
    rule now wants --task, which --resume does not take). The model's classes say the task."""
    from backprop.datasets import tabular

    labels = ["malignant", "benign"] * 20 + ["NA"] * 4
    rows = "".join(f"{i % 7},{(i * 3) % 5},{c}\n" for i, c in enumerate(labels))
    (in_tmp / "old.csv").write_text("a,b,y\n" + rows)
    quiet = ["--no-plots", "--no-progress"]
    with pytest.MonkeyPatch.context() as rule_as_it_was:  # no marks: 'NA' a class
        rule_as_it_was.setattr(tabular, "MISSING_VALUES", frozenset())
        rc, _, err = run_cli("train", "--dataset", "old.csv", "--target", "y", "--epochs", "2",
                             "--out", "old", *quiet)  # fmt: skip
    assert rc == 0, err
    assert "task" not in (in_tmp / "old/config.toml").read_text()
    rc, _, err = run_cli("train", "--dataset", "old.csv", "--target", "y", "--out", "new")
    assert rc == 2 and "'NA' reads as a missing value" in err  # a new run is told
    rc, _, err = run_cli("train", "--resume", "old", "--epochs", "3", *quiet)
    assert rc == 0, err
    rc, out, err = run_cli("predict", "old")
    assert rc == 0 and out.startswith("true,label,p_NA,p_benign,p_malignant"), err
