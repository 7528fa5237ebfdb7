"""Run folders as handles (evaluate, predict, export take one), Ctrl-C after the last epoch,
model files whose bytes depend on the weights and config alone, and the smaller items of
daily use: ONNX class labels and --opset, --step-size/--gamma, the CSV snippet of
docs/datasets.md, the plots."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop import MLP
from backprop.cli.app import UserError
from backprop.io import load_model, save_model
from backprop.io.safetensors import encode_safetensors

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture
def csv_files(tmp_path: Path) -> tuple[Path, Path]:
    """flowers.csv (3 separable classes, 3 features) and new_flowers.csv (other column
    order, with the target column, which predict ignores)."""
    rng = np.random.default_rng(0)
    centres = {"setosa": (0, 0, 0), "versicolor": (4, 0, 2), "virginica": (0, 4, -2)}
    train, new = tmp_path / "flowers.csv", tmp_path / "new_flowers.csv"
    with open(train, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["f1", "f2", "f3", "species"])
        for label, c in centres.items():
            for _ in range(40):
                w.writerow([*(np.array(c) + rng.normal(0, 0.5, 3)).round(4), label])
    with open(new, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["f3", "species", "f1", "f2"])
        for label, c in centres.items():
            w.writerow([c[2], label, c[0], c[1]])
    return train, new


@pytest.fixture
def csv_run(run_cli, csv_files, tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli("train", "--dataset", str(csv_files[0]), "--target", "species",
                         "--loss", "cross_entropy", "--optimizer", "adam", "--lr", "0.02",
                         "--epochs", "40", "--seed", "5", "--test-fraction", "0.3",
                         "--out", "iris", "--no-progress", "--no-plots")  # fmt: skip
    assert rc == 0, err
    return tmp_path / "iris"


# ---------------------------------------------------------------------- run folders
def test_evaluate_a_csv_run_folder_reuses_its_data_split_and_target(run_cli, csv_run):
    rc, out, err = run_cli("evaluate", str(csv_run), "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["split"] == "test" and report["n_samples"] == 36  # 30 % of 120, seed 5
    assert [c["class"] for c in report["per_class"]] == ["setosa", "versicolor", "virginica"]
    assert report["accuracy"] > 0.9
    # the same as naming the model file and every option by hand
    rc, by_hand, _ = run_cli("evaluate", str(csv_run / "model.safetensors"), "--dataset",
                             str(csv_run.parent / "flowers.csv"), "--seed", "5",
                             "--test-fraction", "0.3", "--json")  # fmt: skip
    assert rc == 0 and json.loads(by_hand) == report
    # an option given on the command line wins over the run's; its training rows are the
    # summary's: the 84 of the split less the validation rows held out of them
    rc, out, _ = run_cli("evaluate", str(csv_run), "--split", "train", "--json")
    summary = json.loads((csv_run / "summary.json").read_text())
    assert summary["n_train"] + summary["n_validation"] == 84
    assert rc == 0 and json.loads(out)["n_samples"] == summary["n_train"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_for_a_runs_summary_does_not_hang_evaluate(csv_run):
    """evaluate reads summary.json for the SHA-256 of the training rows: a FIFO there made
    it wait forever for a writer. A summary that is not a regular file is not one train
    wrote: evaluated without the check, at once."""
    (csv_run / "summary.json").unlink()
    os.mkfifo(csv_run / "summary.json")
    proc = subprocess.run([sys.executable, "-m", "backprop", "evaluate", str(csv_run), "--json"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_samples"] == 36


def test_evaluate_an_mnist_run_folder(run_cli, tmp_path, monkeypatch):
    if not (Path(os.environ.get("BACKPROP_DATA", "/nonexistent")) / "mnist").is_dir():
        pytest.skip("MNIST files are not here (set BACKPROP_DATA)")
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli("train", "--dataset", "mnist", "--n-samples", "3000", "--layers",
                         "784,16,10", "--epochs", "1", "--out", "m", "--no-progress",
                         "--no-plots")  # fmt: skip
    assert rc == 0, err
    rc, out, err = run_cli("evaluate", "m", "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["dataset"] == "mnist" and report["n_samples"] == 10_000
    assert np.asarray(report["confusion_matrix"]).shape == (10, 10)
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert report["accuracy"] == pytest.approx(summary["test"]["accuracy"], abs=1e-12)


def test_predict_a_run_folder(run_cli, csv_run, csv_files):
    rc, out, err = run_cli("predict", str(csv_run), str(csv_files[1]))
    assert rc == 0, err
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["label", "p_setosa", "p_versicolor", "p_virginica"]
    assert [r[0] for r in rows[1:]] == ["setosa", "versicolor", "virginica"]
    # no INPUT: the run's own test split, each row's true class first
    rc, out, err = run_cli("predict", str(csv_run))
    assert rc == 0, err
    rows = list(csv.reader(out.splitlines()))
    assert rows[0][:2] == ["true", "label"] and len(rows) == 1 + 36
    assert np.mean([r[0] == r[1] for r in rows[1:]]) > 0.9
    rc, _, err = run_cli("predict", str(csv_run / "model.safetensors"))
    assert rc == 2 and "give the INPUT.csv rows" in err


def test_a_folder_that_is_not_a_run_is_one_clear_error(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    for command in ("evaluate", "predict", "export"):
        rc, _, err = run_cli(command, str(tmp_path / "empty"))
        assert rc == 2
        expected = f"{tmp_path / 'empty'} is a folder without model.safetensors, not a run folder"
        assert err.strip() == f"Error: {expected}"


def test_export_a_run_folder_with_class_labels_and_an_opset(run_cli, csv_run):
    onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx extra")
    ort = pytest.importorskip("onnxruntime", reason="running graphs needs onnxruntime")
    rc, out, err = run_cli("export", str(csv_run), "--opset", "20")
    assert rc == 0, err
    path = csv_run / "model.onnx"
    assert err.strip() == f"Wrote {path}" and out == ""  # (a status line: stderr)
    graph = onnx.load(str(path))
    assert graph.opset_import[0].version == 20
    assert graph.ir_version == 9  # the oldest IR that opset 20 allows: older runtimes read it
    assert json.loads({p.key: p.value for p in graph.metadata_props}["class_labels"]) == [
        "setosa", "versicolor", "virginica"
    ]  # fmt: skip
    model = load_model(csv_run / "model.safetensors")
    from backprop.datasets import read_csv_features

    raw = read_csv_features(csv_run.parent / "new_flowers.csv", model.preprocessing, raw=True)
    session = ort.InferenceSession(str(path))
    probabilities, labels = session.run(None, {"input": raw.astype(np.float64)})
    assert labels.tolist() == ["setosa", "versicolor", "virginica"]
    rc, _, err = run_cli("export", str(csv_run), "x.onnx", "--opset", "9")
    assert rc == 2 and "--opset" in err


def test_onnx_labels_of_a_built_in_data_set_and_a_single_output(tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs the onnx extra")
    ort = pytest.importorskip("onnxruntime", reason="running graphs needs onnxruntime")
    from backprop.io.onnx_export import export_onnx

    X = np.random.default_rng(1).normal(size=(50, 2))
    for model, labels in [
        (MLP([2, 5, 1], "tanh", "identity", "binary_cross_entropy", seed=2), ["no", "yes"]),
        (MLP([2, 5, 3], "tanh", seed=2), ["a", "b", "c"]),
    ]:
        export_onnx(model, tmp_path / "m.onnx", class_labels=labels)
        _, got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(
            None, {"input": X.astype(np.float64)}
        )
        assert got.tolist() == [labels[k] for k in model.predict_classes(X)]
        with pytest.raises(ValueError, match="2 class labels given for a model with 3 outputs"):
            export_onnx(MLP([2, 5, 3]), tmp_path / "x.onnx", class_labels=["a", "b"])


def test_without_onnx_the_error_is_said_once(run_cli, csv_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    rc, _, err = run_cli("export", str(csv_run))
    assert rc == 2
    assert (
        err.count("pip install 'onnx>=1.15' 'onnxruntime>=1.19'") == 1
        and err.count("onnx package") == 1
    )
    assert len(err.strip().splitlines()) == 1


def test_export_needs_onnx_and_the_model_alone(run_cli, tmp_path, monkeypatch):
    # a run's data set was loaded (for its class names) before onnx was looked for: an MNIST
    # run said its files were missing (or downloaded them), a digits run needed scikit-learn
    pytest.importorskip("onnx", reason="onnx is an optional extra")
    monkeypatch.chdir(tmp_path)
    assert run_cli("train", "--dataset", "blobs", "--epochs", "1", "--out", "b",
                   "--no-progress", "--no-plots")[0] == 0  # fmt: skip
    import backprop.cli.commands.export as export

    asked = []

    def unreadable(values):
        asked.append(values)
        raise UserError("MNIST file train-images-idx3-ubyte.gz is not on this machine")

    monkeypatch.setattr(export, "load_data", unreadable)
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "onnx", None)
        rc, _, err = run_cli("export", "b")
        assert rc == 2 and "onnx package" in err and "MNIST" not in err
    rc, out, err = run_cli("export", "b", "b.onnx")
    assert rc == 0, err
    assert err.strip() == (
        "Wrote b.onnx (no label output: the run's data set is not readable here: MNIST file "
        "train-images-idx3-ubyte.gz is not on this machine)"
    )
    assert [v["download"] for v in asked] == [False]  # (MNIST was downloaded for 0-9)


# --------------------------------------------------------------- Ctrl-C after training
@pytest.mark.parametrize(
    "where, stage",
    [
        ("backprop.cli.commands.train.save_model", "saving the model"),
        ("backprop.cli.commands.train._split_metrics", "computing the metrics"),
        ("backprop.cli.commands.train.write_plots", "drawing the plots"),
        ("backprop.cli.commands.train.summary_table", "drawing the plots"),
    ],
)
def test_ctrl_c_after_training_leaves_the_model_and_a_summary(
    run_cli, tmp_path, monkeypatch, where, stage
):
    monkeypatch.chdir(tmp_path)
    module, name = where.rsplit(".", 1)
    target = sys.modules[module]
    original = getattr(target, name)
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the first call after training; the handler's own goes through
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, interrupted)
    rc, out, err = run_cli("train", "--epochs", "3", "--out", "r", "--no-progress", "--no-plots")
    assert rc == 130
    run = tmp_path / "r"
    model = load_model(run / "model.safetensors")
    assert model.n_parameters == 17
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 3 and summary["interrupted"].endswith(f"while {stage}")
    assert len(Path(run / "history.csv").read_text().splitlines()) == 1 + 3
    assert f"Interrupted while {stage}, after training 3 epochs" in err
    assert ("backprop evaluate r" in err) == (stage != "drawing the plots")
    # it said 'the plots were not drawn' when loss.png and accuracy.png had been
    assert ("some plots were not drawn" in err) == (stage == "drawing the plots")
    if stage != "drawing the plots":  # the command it names works
        rc, out, _ = run_cli("evaluate", "r", "--json")
        assert rc == 0 and json.loads(out)["n_samples"] == 50


# ------------------------------------------------------------------ model file bytes
def test_model_bytes_are_a_function_of_weights_and_config(tmp_path):
    """The safetensors library's writer orders the metadata by a per-process hash; ours
    sorts it. Ten saves in this process and one in another give the same bytes."""
    model = MLP([3, 4, 2], seed=0)
    for k in range(10):
        save_model(tmp_path / f"m{k}.safetensors", model)
    files = {(tmp_path / f"m{k}.safetensors").read_bytes() for k in range(10)}
    assert len(files) == 1
    code = (
        "import sys; from backprop import MLP; from backprop.io import save_model; "
        "save_model(sys.argv[1], MLP([3, 4, 2], seed=0))"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "other.safetensors")],
                   check=True, timeout=60)  # fmt: skip
    assert (tmp_path / "other.safetensors").read_bytes() in files


def test_our_safetensors_bytes_are_read_by_the_library():
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {"b": np.arange(3.0), "a": np.ones((2, 3), np.float32), "c": np.zeros(5)}
    data = encode_safetensors(tensors, {"z": "1", "a": "two"})
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    assert list(header) == ["__metadata__", "b", "c", "a"]  # float64 first, then by name
    assert list(header["__metadata__"]) == ["a", "z"] and header_len % 8 == 0
    back = safetensors_numpy.load(data)
    assert all(np.array_equal(back[k], v) and back[k].dtype == v.dtype for k, v in tensors.items())


def test_rerunning_a_config_gives_the_same_model_file(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("train", "--epochs", "4", "--out", "a", "--no-progress", "--no-plots")[0] == 0
    rc, _, err = run_cli("train", "--config", "a/config.toml", "--out", "b", "--no-progress",
                         "--no-plots")  # fmt: skip
    assert rc == 0, err
    assert (tmp_path / "a/model.safetensors").read_bytes() == (
        tmp_path / "b/model.safetensors"
    ).read_bytes()


# ---------------------------------------------------------------- smaller items
def _column(path: Path, name: str) -> list[float]:
    rows = csv.DictReader(path.read_text(encoding="utf-8").splitlines())
    return [float(r[name]) for r in rows]


def test_step_size_and_gamma_set_the_schedule(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli("train", "--epochs", "6", "--lr", "2", "--schedule", "step",
                         "--step-size", "2", "--gamma", "0.5", "--out", "s", "--no-progress",
                         "--no-plots")  # fmt: skip
    assert rc == 0, err
    lrs = _column(tmp_path / "s/history.csv", "lr")
    assert lrs == [2.0, 2.0, 1.0, 1.0, 0.5, 0.5]  # 2 * 0.5 ** (epoch // 2)
    config = (tmp_path / "s/config.toml").read_text()
    assert "step_size = 2" in config and "gamma = 0.5" in config
    rc, _, err = run_cli("train", "--epochs", "3", "--schedule", "exponential", "--gamma",
                         "0.9", "--out", "e", "--no-progress", "--no-plots")  # fmt: skip
    lrs = _column(tmp_path / "e/history.csv", "lr")
    assert rc == 0 and lrs == pytest.approx([3.0, 2.7, 2.43])
    rc, _, err = run_cli("train", "--schedule", "exponential", "--step-size", "3")
    assert rc == 2 and "--step-size applies to --schedule step, not exponential" in err


def test_the_csv_snippet_of_docs_datasets_runs(csv_files, monkeypatch):
    monkeypatch.chdir(csv_files[0].parent)
    text = (DOCS / "datasets.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "flowers" in b]
    namespace: dict = {}
    exec(compile(block, "docs/datasets.md", "exec"), namespace)  # our own docs
    assert namespace["labels"] == ["setosa", "versicolor", "virginica"]


def test_plots_of_a_short_run_and_a_regression_run(run_cli, tmp_path, monkeypatch):
    """Whole-epoch ticks on a 3-epoch run; the legend beside the points; the shading and
    the accuracy of the decision boundary; predicted-vs-true for a regression run."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from backprop.cli import plots

    saved: list[Figure] = []
    monkeypatch.setattr(Figure, "savefig", lambda self, path, **kw: saved.append(self))
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli("train", "--dataset", "moons", "--layers", "2,8,2", "--epochs", "3",
                         "--out", "m", "--no-progress")  # fmt: skip
    assert rc == 0, err
    loss, accuracy, boundary = saved
    ticks = loss.axes[0].get_xticks()
    shown = [t for t in ticks if 1 <= t <= 3]
    assert shown and all(float(t).is_integer() for t in shown)
    ax = boundary.axes[0]
    assert "accuracy train" in ax.get_title() and "test" in ax.get_title()
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # right of the axes
    image = ax.get_images()[0].get_array()
    assert image.shape[-1] == 4 and np.ptp(image[..., 3]) > 0.1  # alpha follows confidence
    # a regression run
    rows = np.random.default_rng(0).normal(size=(120, 2))
    with open(tmp_path / "reg.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "y"])
        w.writerows([[a, b, 2 * a - b] for a, b in rows])
    saved.clear()
    rc, out, err = run_cli("train", "--dataset", "reg.csv", "--target", "y", "--epochs", "3",
                           "--out", "r", "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert "predicted_vs_true.png" in out
    assert "R²" in saved[-1].axes[0].get_title()
    assert plots.available()
