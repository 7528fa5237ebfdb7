"""``backprop train``'s per-data-set defaults learn (the acceptance numbers of issue 16),
regression targets are standardised and un-scaled, and files and runs from before these
defaults still load and resume as they were.

The floors are the issue's: friedman1 (2,000 rows, noise 1) as a CSV file R^2 >= 0.85;
diabetes no divergence and R^2 within 0.03 of scikit-learn's MLPRegressor given the same
treatment (standardised features and targets); iris as a CSV file with only
``--dataset``/``--target`` >= 93% test accuracy (34 of the default split's 36 test
flowers), which ``--seed 0`` reaches, but which that split gives a network only by a lucky
draw: the recipe scores 33 for most training seeds, scikit-learn's MLPClassifier for every
one, logistic regression too (91.67%; the spread docs/defaults.md publishes is recomputed
here). The recipes themselves were chosen on validation rows (docs/defaults.md); these
tests only check that they still deliver.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from backprop import MLP
from backprop.cli.config import DATASET_RECIPES, TUTORIAL, recipe_for, resolve
from backprop.datasets import DATASETS, load_dataset
from backprop.io import ModelFileError, load_model, save_model
from backprop.io.safetensors import read_header

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]
CHOOSE_DEFAULTS = ROOT / "scripts" / "choose_defaults.py"


def _write_csv(path: Path, X: np.ndarray, y: list, names: list[str], target: str) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*names, target])
        w.writerows([[repr(float(v)) for v in row] + [t] for row, t in zip(X, y, strict=True)])
    return path


@pytest.fixture(scope="module")
def csvs(tmp_path_factory) -> dict[str, Path]:
    from sklearn.datasets import load_diabetes, load_iris, make_friedman1

    folder = tmp_path_factory.mktemp("csv")
    iris = load_iris()
    diabetes = load_diabetes()
    X, y = make_friedman1(n_samples=2000, noise=1.0, random_state=0)
    return {
        "iris": _write_csv(folder / "iris.csv", iris.data,
                           [iris.target_names[k] for k in iris.target],
                           ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                           "species"),
        "diabetes": _write_csv(folder / "diabetes.csv", diabetes.data,
                               [repr(float(t)) for t in diabetes.target],
                               list(diabetes.feature_names), "target"),
        "friedman1": _write_csv(folder / "friedman1.csv", X, [repr(float(t)) for t in y],
                                [f"x{i}" for i in range(10)], "y"),
    }  # fmt: skip


def _train(run_cli, out: Path, *args: str) -> dict:
    rc, _, err = run_cli("train", *args, "--out", str(out), "--no-plots", "--no-progress")
    assert rc == 0, err
    return json.loads((out / "summary.json").read_text())


# ------------------------------------------------------------------ the acceptance points
def test_iris_csv_with_only_dataset_and_target(run_cli, csvs, tmp_path):
    """The issue's command at ``--seed 0`` and the floor, 34 of 36 (seeds 0-4: 94.4, 97.2,
    97.2, 94.4, 97.2%), and seeds 1 and 2 above it; seed 0's split has 3 test flowers on the
    wrong side for logistic regression (and, mostly, for networks: below)."""
    from sklearn.linear_model import LogisticRegression

    for seed, floor in (("0", 34 / 36), ("1", 0.97), ("2", 0.97)):
        summary = _train(run_cli, tmp_path / seed, "--dataset", str(csvs["iris"]),
                         "--target", "species", "--seed", seed)  # fmt: skip
        assert summary["test"]["accuracy"] >= floor, seed
    split = load_dataset(csvs["iris"], target="species")  # seed 0
    logistic = LogisticRegression(max_iter=1000).fit(split.X_train, split.y_train)
    assert logistic.score(split.X_test, split.y_test) == 33 / 36


def test_iris_seed_spread_is_the_published_one(csvs):
    """docs/defaults.md's spread of seed 0's iris test accuracy over 50 training seeds (the
    recipe, and MLPClassifier trained to convergence), recomputed on the CSV file the
    acceptance names: it changes with the engine's numerics or the recipe, and then the
    page's explanation of the missed floor must be measured again."""
    spec = importlib.util.spec_from_file_location("choose_defaults", CHOOSE_DEFAULTS)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    page = (ROOT / "docs" / "defaults.md").read_text(encoding="utf-8")
    block = page.split("--spread iris", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    heading, *published = block.splitlines()
    now = script.spread({"dataset": str(csvs["iris"]), "target": "species"}, 50)
    assert now[0].split(", ")[1:3] == heading.split(", ")[1:3]  # 36 test rows, seeds 0-49
    if heading.endswith(script.kernels()):  # the kernels it names (NumPy's SIMD, the BLAS)
        assert now[1:] == published  # every tally
    else:  # other kernels may round differently and move a seed or two: the medians
        assert [line.split("; ", 1)[1] for line in now[1:]] == [  # and averaged counts
            line.split("; ", 1)[1] for line in published
        ]


def test_friedman1_csv_with_only_dataset_and_target(run_cli, csvs, tmp_path):
    summary = _train(run_cli, tmp_path / "r", "--dataset", str(csvs["friedman1"]), "--target", "y")
    assert summary["test"]["r2"] >= 0.85


def test_diabetes_csv_learns_as_well_as_mlpregressor(run_cli, csvs, tmp_path):
    """It used to diverge at epoch 6 (SGD lr 0.5 on targets of 25-346), and ``predict``
    printed -5.2e+138. scikit-learn's MLPRegressor with its defaults scores R^2 = -1.04 on
    this split (standardised features, raw targets); with the targets standardised too
    (TransformedTargetRegressor) 0.44: the comparison made here."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    summary = _train(run_cli, tmp_path / "r", "--dataset", str(csvs["diabetes"]),
                     "--target", "target")  # fmt: skip
    assert summary["stop_reason"].startswith(("early stopping", "completed"))
    data = load_dataset(csvs["diabetes"], target="target")  # the same split
    pre = data.preprocessing
    raw = [X * np.asarray(pre.scale) + np.asarray(pre.mean) for X in (data.X_train, data.X_test)]
    sk = TransformedTargetRegressor(make_pipeline(StandardScaler(), MLPRegressor(random_state=0)),
                                    transformer=StandardScaler())  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: its default 200 iterations
        sk.fit(raw[0], data.y_train[:, 0])
    theirs = sk.score(raw[1], data.y_test[:, 0])
    assert summary["test"]["r2"] >= theirs - 0.03, (summary["test"]["r2"], theirs)


# ------------------------------------------------------------------------ target scaling
def test_regression_targets_are_standardised_and_unscaled(run_cli, tmp_path):
    """Targets around 1e4: the model trains on (t - mean) / std, the file stores mean and
    std, and ``predict`` and ``evaluate`` answer in the target's units. With
    ``--target-scaling none`` nothing is stored and the raw targets are trained on."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = 1e4 + 3e3 * X[:, 0] - 2e3 * X[:, 1] ** 2 + 50 * rng.normal(size=300)
    path = _write_csv(tmp_path / "big.csv", X, [repr(float(v)) for v in y], ["a", "b", "c"], "y")
    summary = _train(run_cli, tmp_path / "r", "--dataset", str(path), "--target", "y")
    assert summary["test"]["r2"] > 0.9
    model = load_model(tmp_path / "r/model.safetensors")
    pre = model.preprocessing
    assert pre.target_mean[0] == pytest.approx(np.mean(y), rel=0.05)
    assert pre.target_scale[0] == pytest.approx(np.std(y), rel=0.1)
    rc, out, err = run_cli("predict", str(tmp_path / "r/model.safetensors"), str(path))
    assert rc == 0, err
    predicted = np.array([float(v) for v in out.splitlines()[1:]])
    assert np.corrcoef(predicted, y)[0, 1] > 0.97 and abs(predicted.mean() - y.mean()) < 300
    rc, out, err = run_cli("evaluate", str(tmp_path / "r/model.safetensors"), "--dataset",
                           str(path), "--json")  # fmt: skip
    assert rc == 0, err
    assert json.loads(out)["r2"] == pytest.approx(summary["test"]["r2"], rel=1e-9)
    # the same run without target scaling
    _train(run_cli, tmp_path / "n", "--dataset", str(path), "--target", "y",
           "--target-scaling", "none", "--epochs", "3")  # fmt: skip
    assert not load_model(tmp_path / "n/model.safetensors").preprocessing.scales_targets
    assert 'target_scaling = "none"' in (tmp_path / "n/config.toml").read_text()


def test_resuming_a_scaled_regression_run_is_bit_identical(run_cli, csvs, tmp_path, same_params):
    """The checkpoint keeps the target scaling: a run resumed after 2 epochs ends with the
    weights of the uninterrupted 4-epoch run."""
    common = ["--dataset", str(csvs["diabetes"]), "--target", "target", "--early-stopping", "0"]
    _train(run_cli, tmp_path / "a", *common, "--epochs", "2")
    rc, _, err = run_cli("train", "--resume", str(tmp_path / "a"), "--epochs", "4",
                         "--no-plots", "--no-progress")  # fmt: skip
    assert rc == 0, err
    _train(run_cli, tmp_path / "b", *common, "--epochs", "4")
    a, b = (load_model(tmp_path / r / "model.safetensors") for r in "ab")
    assert same_params(a, b) and a.preprocessing == b.preprocessing
    assert a.preprocessing.scales_targets


# --------------------------------------------------------------- what came before still works
def _as_version_1(path: Path) -> Path:
    """Rewrite a model file as format 1 was written (before issue 16): format_version "1", no
    bias_init in the config (the header keeps its length: spaces pad it)."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    meta = header["__metadata__"]
    config = json.loads(meta["config"])
    del config["bias_init"]
    meta["config"] = json.dumps(config)
    meta["format_version"] = "1"
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n
    text += b" " * (n - len(text))
    path.write_bytes(raw[:8] + text + raw[8 + n :])
    return path


def test_version_1_model_files_still_load(tmp_path):
    model = MLP([3, 4, 2], "tanh", "sigmoid", "l2", init="normal", seed=0)
    save_model(tmp_path / "m.safetensors", model)
    assert read_header(tmp_path / "m.safetensors").metadata["format_version"] == "2"
    old = load_model(_as_version_1(tmp_path / "m.safetensors"))
    assert old.config == model.config  # bias_init "zeros": what version 1 meant
    x = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_array_equal(old.predict(x), model.predict(x))
    meta = dict(read_header(tmp_path / "m.safetensors").metadata)
    assert meta["format_version"] == "1"
    # a newer format than this backprop knows is refused with the way out
    raw = (tmp_path / "m.safetensors").read_bytes().replace(b'"format_version":"1"',
                                                            b'"format_version":"3"')  # fmt: skip
    (tmp_path / "v3.safetensors").write_bytes(raw)
    with pytest.raises(ModelFileError, match="version 3 is not supported.*upgrade backprop"):
        load_model(tmp_path / "v3.safetensors")


def test_resuming_a_run_from_before_these_options(run_cli, tmp_path):
    """A config.toml written before early stopping, bias_init and target scaling were
    options resumes as it ran: no early stopping, zero biases, targets not scaled."""
    # trained as such a run was (zero biases, the min mode), or --resume would rightly say
    # the config no longer matches what its checkpoint trained with (the mode from a run's
    # config file: typed, or in a file of one's own, it is refused with early stopping off)
    (tmp_path / "legacy.toml").write_text('# backprop train: an older run\nmonitor_mode = "min"\n')
    _train(run_cli, tmp_path / "r", "--dataset", "moons", "--layers", "2,8,2", "--epochs", "3",
           "--early-stopping", "0", "--bias-init", "zeros",
           "--config", str(tmp_path / "legacy.toml"))  # fmt: skip
    config = tmp_path / "r/config.toml"
    new = ("target_scaling", "bias_init", "early_stopping", "monitor", "restore_best")
    lines = [ln for ln in config.read_text().splitlines() if not ln.startswith(new)]
    config.write_text("\n".join(lines) + "\n")
    rc, _, err = run_cli("train", "--resume", str(tmp_path / "r"), "--epochs", "5",
                         "--no-plots", "--no-progress")  # fmt: skip
    assert rc == 0, err
    text = config.read_text()
    assert "early_stopping = 0" in text and 'bias_init = "zeros"' in text
    assert 'target_scaling = "none"' in text


# --------------------------------------------------------------------------- the recipes
def test_every_data_set_has_a_recipe_and_toy_is_the_tutorial():
    assert set(DATASET_RECIPES) == set(DATASETS)
    assert TUTORIAL == DATASET_RECIPES["toy"]
    toy = load_dataset("toy")
    cfg = resolve({}, toy)
    expected = {"layers": (2, 3, 2), "activation": "sigmoid", "output_activation": "sigmoid",
                "loss": "l2", "init": "normal", "init_scale": 0.1, "bias_init": "zeros",
                "optimizer": "sgd", "lr": 3.0, "batch_size": 10, "epochs": 300,
                "early_stopping": 0}  # fmt: skip
    assert {k: cfg[k] for k in expected} == expected


def test_options_override_the_recipe():
    spirals = load_dataset("spirals")
    recipe = recipe_for(spirals)
    cfg = resolve({"optimizer": "sgd", "activation": "relu"}, spirals)
    assert cfg["lr"] == 0.5  # not the recipe's adam rate: SGD's default for cross-entropy
    assert cfg["activation"] == "relu" and cfg["epochs"] == recipe.epochs
    assert resolve({"lr": 0.3}, spirals)["optimizer"] == recipe.optimizer
    assert resolve({"loss": "l2"}, spirals)["output_activation"] == "sigmoid"


def test_a_csv_of_more_classes_gets_the_recipe_chosen_for_them(csvs, tmp_path):
    """More than 3 classes (the tables' most): 100 ReLU units at Adam 1e-3, the candidate
    docs/defaults.md's 'More classes' table chose (the script's MANY); 3 or fewer keep the
    table recipe, so iris and its acceptance number are as they were."""
    from backprop.cli.config import CSV_CLASSIFICATION, CSV_MANY_CLASSES

    spec = importlib.util.spec_from_file_location("choose_defaults", CHOOSE_DEFAULTS)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    chosen = {k: getattr(CSV_MANY_CLASSES, k) for k in script.MANY if k != "weight_decay"}
    assert chosen == {k: v for k, v in script.MANY.items() if k != "weight_decay"}
    assert CSV_MANY_CLASSES.weight_decay == script.MANY["weight_decay"]
    rows = "".join(f"{i % 7},{i % 5},c{i % 4}\n" for i in range(80))
    (tmp_path / "four.csv").write_text("a,b,y\n" + rows)
    four = load_dataset(tmp_path / "four.csv", target="y")
    assert recipe_for(four) is CSV_MANY_CLASSES
    assert recipe_for(load_dataset(csvs["iris"], target="species")) is CSV_CLASSIFICATION
    cfg = resolve({"dataset": str(tmp_path / "four.csv"), "target": "y"}, four)
    assert cfg["layers"] == (2, 100, 4) and cfg["activation"] == "relu" and cfg["lr"] == 1e-3
