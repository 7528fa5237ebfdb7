"""Measure the candidates for ``backprop train``'s per-data-set defaults, on validation rows.

Usage::

    python scripts/choose_defaults.py plane            # xor, moons, circles, spirals, blobs
    python scripts/choose_defaults.py tables           # iris, wine, breast_cancer
    python scripts/choose_defaults.py regression       # friedman1 and diabetes as CSV files
    python scripts/choose_defaults.py digits mnist1d
    BACKPROP_DATA=/data python scripts/choose_defaults.py mnist
    python scripts/choose_defaults.py plane --repeats 2 --datasets spirals   # a quick look

How a candidate is scored, so that no test row plays a part: each data set is loaded as
``backprop train`` loads it by default (``--seed 0``: the test split the acceptance numbers
use). Only its training split is used. For each repeat ``r`` a seeded fifth of it is held
out as *selection rows*; the rest is trained on exactly as ``backprop train`` does (the same
``resolve``, model, optimizer, its 10% validation split for early stopping, ``--seed r``),
the candidate's options given as if on the command line; the trained model is scored on the
selection rows: accuracy for classification, R^2 (in the target's units) for regression.
A candidate's score is the mean over data sets and repeats; the tables in docs/defaults.md
are this script's output. The winner of each family is the recipe in
``backprop/cli/config.py``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from backprop import metrics
from backprop.cli.config import (
    build_model,
    build_optimizer,
    early_stopping_callback,
    load_data,
    resolve,
    validation_split,
)
from backprop.training import TrainingDiverged, fit

OLD_DEFAULTS = {  # backprop train before issue 16: n_features-30-n_outputs sigmoid, SGD
    "hidden": (30,), "activation": "sigmoid", "init": "normal", "init_scale": 0.1,
    "bias_init": "zeros", "optimizer": "sgd", "batch_size": 10, "epochs": 30,
    "early_stopping": 0,
}  # fmt: skip
PLANE = {  # round 1's base: every option given, so a rerun does not depend on the recipe
    "hidden": (32, 32), "activation": "tanh", "init": "auto", "bias_init": "uniform",
    "optimizer": "adam", "lr": 1e-2, "batch_size": 32, "epochs": 1000, "early_stopping": 100,
}  # fmt: skip
TABLES = {
    "hidden": (32,), "activation": "tanh", "init": "auto", "bias_init": "uniform",
    "optimizer": "adam", "lr": 1e-2, "batch_size": 16, "epochs": 500, "early_stopping": 50,
    "weight_decay": 0.0,
}  # fmt: skip
CHOSEN_TABLES = {**TABLES, "weight_decay": 1e-3}  # round 2's winner
ALL_ROWS = {"validation_fraction": 0.0, "early_stopping": 0}
DIGITS = {
    "hidden": (256, 128), "activation": "relu", "init": "auto", "bias_init": "zeros",
    "optimizer": "adam", "lr": 1e-3, "batch_size": 32, "epochs": 200, "early_stopping": 20,
}  # fmt: skip
MNIST1D = {
    "hidden": (100, 100), "activation": "relu", "init": "auto", "bias_init": "zeros",
    "optimizer": "adam", "lr": 1e-2, "batch_size": 100, "epochs": 150, "early_stopping": 30,
}  # fmt: skip
MNIST = {
    "hidden": (256,), "activation": "relu", "init": "auto", "bias_init": "zeros",
    "optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 30, "early_stopping": 5,
}  # fmt: skip
REGRESSION = {
    "hidden": (64, 64), "activation": "tanh", "init": "auto", "bias_init": "uniform",
    "optimizer": "adam", "lr": 3e-3, "batch_size": 32, "epochs": 1000, "early_stopping": 50,
    "target_scaling": "standard",
}  # fmt: skip

# family -> (data sets, {candidate: options as given on the command line}). The published
# rounds (docs/defaults.md); each candidate is its round's base with one change.
FAMILIES: dict[str, tuple[list[str], dict[str, dict[str, Any]]]] = {
    "plane": (
        ["xor", "moons", "circles", "spirals", "blobs"],
        {
            "base: 32,32 tanh, auto init, uniform biases, adam 1e-2, batch 32, patience 100 "
            "of 1000": PLANE,
            "zero biases": {**PLANE, "bias_init": "zeros"},
            "N(0, 0.1) weights (the old default)": {**PLANE, "init": "normal"},
            "relu": {**PLANE, "activation": "relu"},
            "lr 3e-3": {**PLANE, "lr": 3e-3},
            "lr 3e-2": {**PLANE, "lr": 3e-2},
            "16,16": {**PLANE, "hidden": (16, 16)},
            "64,64": {**PLANE, "hidden": (64, 64)},
            "patience 30": {**PLANE, "early_stopping": 30},
            "old defaults (30 sigmoid, l2, sgd 3.0, batch 10, 30 epochs)": {
                **OLD_DEFAULTS,
                "loss": "l2",
                "lr": 3.0,
            },  # fmt: skip
        },
    ),
    "tables": (
        ["iris", "wine", "breast_cancer"],
        {
            "base: 32 tanh, auto init, uniform biases, adam 1e-2, batch 16, patience 50 of "
            "500": TABLES,
            "zero biases": {**TABLES, "bias_init": "zeros"},
            "relu": {**TABLES, "activation": "relu"},
            "lr 1e-3": {**TABLES, "lr": 1e-3},
            "lr 3e-3": {**TABLES, "lr": 3e-3},
            "64,64": {**TABLES, "hidden": (64, 64)},
            "batch 32": {**TABLES, "batch_size": 32},
            "patience 20": {**TABLES, "early_stopping": 20},
            "16": {**TABLES, "hidden": (16,)},
            "weight decay 1e-3": {**TABLES, "weight_decay": 1e-3},
            "weight decay 1e-2": {**TABLES, "weight_decay": 1e-2},
            "validation fraction 0.2": {**TABLES, "validation_fraction": 0.2},
            # round 3 (30 repeats): the chosen recipe against training on every training
            # row (no validation rows, so no early stopping) for a fixed budget
            "chosen: weight decay 1e-3, patience 50 of 500": CHOSEN_TABLES,
            "no validation rows, 150 epochs": {**CHOSEN_TABLES, **ALL_ROWS, "epochs": 150},
            "no validation rows, 300 epochs": {**CHOSEN_TABLES, **ALL_ROWS, "epochs": 300},
            "no validation rows, 150 epochs, weight decay 1e-2": {
                **CHOSEN_TABLES,
                **ALL_ROWS,
                "epochs": 150,
                "weight_decay": 1e-2,
            },  # fmt: skip
            "no validation rows, 300 epochs, weight decay 1e-2": {
                **CHOSEN_TABLES,
                **ALL_ROWS,
                "epochs": 300,
                "weight_decay": 1e-2,
            },  # fmt: skip
            "weight decay 1e-2, patience 50 of 500": {**CHOSEN_TABLES, "weight_decay": 1e-2},
            "no validation rows, 100 epochs, weight decay 1e-2": {
                **CHOSEN_TABLES,
                **ALL_ROWS,
                "epochs": 100,
                "weight_decay": 1e-2,
            },  # fmt: skip
            "no validation rows, 150 epochs, weight decay 3e-3": {
                **CHOSEN_TABLES,
                **ALL_ROWS,
                "epochs": 150,
                "weight_decay": 3e-3,
            },  # fmt: skip
            "old defaults (30 sigmoid, l2, sgd 3.0, batch 10, 30 epochs)": {
                **OLD_DEFAULTS,
                "loss": "l2",
                "lr": 3.0,
            },  # fmt: skip
        },
    ),
    "regression": (
        ["friedman1", "diabetes"],
        {
            "base: 64,64 tanh, auto init, uniform biases, adam 3e-3, batch 32, patience 50 "
            "of 1000, standardised targets": REGRESSION,
            "targets not scaled": {**REGRESSION, "target_scaling": "none"},
            "zero biases": {**REGRESSION, "bias_init": "zeros"},
            "relu": {**REGRESSION, "activation": "relu"},
            "lr 1e-3": {**REGRESSION, "lr": 1e-3},
            "lr 1e-2": {**REGRESSION, "lr": 1e-2},
            "32": {**REGRESSION, "hidden": (32,)},
            "patience 20": {**REGRESSION, "early_stopping": 20},
            "patience 100": {**REGRESSION, "early_stopping": 100},
            "lr 1e-2, patience 20 (the two best, together)": {
                **REGRESSION,
                "lr": 1e-2,
                "early_stopping": 20,
            },  # fmt: skip
            "old defaults (30 sigmoid, mse, sgd 0.5, batch 10, 30 epochs, raw targets)": {
                **OLD_DEFAULTS,
                "lr": 0.5,
                "target_scaling": "none",
            },  # fmt: skip
        },
    ),
    "digits": (
        ["digits"],
        {
            "base: 256,128 relu, he init, zero biases, adam 1e-3, batch 32, patience 20 of "
            "200": DIGITS,
            "dropout 0.2": {**DIGITS, "dropout": 0.2},
            "128": {**DIGITS, "hidden": (128,)},
            "tanh": {**DIGITS, "activation": "tanh"},
            "uniform biases": {**DIGITS, "bias_init": "uniform"},
        },
    ),
    "mnist1d": (
        ["mnist1d"],
        {
            "base: 100,100 relu, he init, zero biases, adam 1e-2, batch 100, patience 30 of "
            "150": MNIST1D,
            "no early stopping (150 epochs)": {**MNIST1D, "early_stopping": 0},
            "patience 30 on val_accuracy": {**MNIST1D, "monitor": "val_accuracy"},
            # round 2: changes to the winner of round 1, no early stopping
            "no early stopping, uniform biases": {
                **MNIST1D,
                "early_stopping": 0,
                "bias_init": "uniform",
            },  # fmt: skip
            "no early stopping, lr 1e-3": {**MNIST1D, "early_stopping": 0, "lr": 1e-3},
            "no early stopping, 256,256": {
                **MNIST1D,
                "early_stopping": 0,
                "hidden": (256, 256),
            },  # fmt: skip
            # round 3: the two gains of round 2 together
            "no early stopping, 256,256, uniform biases": {
                **MNIST1D,
                "early_stopping": 0,
                "hidden": (256, 256),
                "bias_init": "uniform",
            },
        },
    ),
    "mnist": (
        ["mnist"],
        {
            "base: 256 relu, he init, zero biases, adam 1e-3, batch 128, patience 5 of 30": MNIST,
            "128": {**MNIST, "hidden": (128,)},
            "old defaults (30 sigmoid, l2, sgd 3.0, batch 10, 30 epochs)": {
                **OLD_DEFAULTS,
                "loss": "l2",
                "lr": 3.0,
            },  # fmt: skip
        },
    ),
}


def _csv_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """friedman1 (2,000 rows, noise 1) and diabetes written as CSV files, as a user would
    have them: name -> (path, target column)."""
    from sklearn.datasets import load_diabetes, make_friedman1

    out = {}
    X, y = make_friedman1(n_samples=2000, noise=1.0, random_state=0)
    sets = {"friedman1": (X, y, [f"x{i}" for i in range(10)], "y")}
    d = load_diabetes()
    sets["diabetes"] = (d.data, d.target, list(d.feature_names), "target")
    for name, (X, y, names, target) in sets.items():
        path = folder / f"{name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow([*names, target])
            w.writerows(
                [
                    [repr(float(v)) for v in row] + [repr(float(t))]
                    for row, t in zip(X, y, strict=True)
                ]
            )
        out[name] = (path, target)
    return out


def score(values: dict[str, Any], repeat: int) -> float:
    """Train on the training split minus a seeded fifth (as ``backprop train`` would, with
    ``--seed repeat``) and score that fifth: accuracy, or R^2 in the target's units."""
    data = load_data({k: v for k, v in values.items() if k != "seed"})  # the seed-0 split
    n = data.X_train.shape[0]
    rng = np.random.default_rng([repeat, 0x5E1EC7])
    held = rng.permutation(n)[: round(0.2 * n)]
    keep = np.setdiff1d(np.arange(n), held)
    hidden = values.pop("hidden", None)
    if hidden is not None:
        values["layers"] = (data.n_features, *hidden, data.n_outputs)
    cfg = resolve({**values, "seed": repeat}, data)
    model = build_model(cfg)
    T = data.targets("train")
    if data.preprocessing is not None:
        model.preprocessing = data.preprocessing
        if data.task == "regression" and cfg["target_scaling"] == "standard":
            model.preprocessing = data.preprocessing.with_target_scaling(data.y_train[keep])
            T = model.preprocessing.scale_targets(T)
    X = data.X_train
    tr, va = validation_split(keep.size, cfg["validation_fraction"], cfg["seed"])
    tr, va = keep[tr], keep[va]
    try:
        validation = (X[va], T[va]) if va.size else None  # --validation-fraction 0: none
        fit(model, X[tr], T[tr], optimizer=build_optimizer(cfg), epochs=cfg["epochs"],
            batch_size=cfg["batch_size"], seed=cfg["seed"], validation_data=validation,
            early_stopping=early_stopping_callback(cfg))  # fmt: skip
    except TrainingDiverged:
        return float("nan")  # shown as "diverged"
    if data.task == "classification":
        return float(metrics.accuracy(data.y_train[held], model.predict_classes(X[held])))
    pred = np.asarray(model.backend.to_numpy(model.predict(X[held])), dtype=np.float64)
    if model.preprocessing is not None and model.preprocessing.scales_targets:
        pred = model.preprocessing.unscale_targets(pred)
    y = np.asarray(data.y_train[held], dtype=np.float64).reshape(pred.shape)
    return float(metrics.r2_score(y, pred))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("families", nargs="+", choices=list(FAMILIES))
    parser.add_argument("--repeats", type=int, default=3, help="selection splits per data set")
    parser.add_argument("--datasets", nargs="*", help="only these data sets of the family")
    parser.add_argument("--candidates", nargs="*", help="only candidates starting with these")
    args = parser.parse_args(argv)
    tmp = tempfile.TemporaryDirectory()
    csvs: dict[str, tuple[Path, str]] = {}
    for family in args.families:
        datasets, candidates = FAMILIES[family]
        if family == "regression" and not csvs:
            csvs = _csv_files(Path(tmp.name))
        names = list(datasets)
        if args.datasets:
            names = [n for n in names if n in args.datasets]
        table = []
        for cand, options in candidates.items():
            if args.candidates and not any(cand.startswith(c) for c in args.candidates):
                continue
            per_set = {}
            start = time.perf_counter()
            for name in names:
                base = {"dataset": name}
                if name in csvs:
                    base = {"dataset": str(csvs[name][0]), "target": csvs[name][1]}
                per_set[name] = [score({**base, **options}, r) for r in range(args.repeats)]
            mean = float(np.mean([v for vs in per_set.values() for v in vs]))
            secs = time.perf_counter() - start
            cells = " | ".join(
                f"{np.mean(v):.4f}" if np.isfinite(v).all() else f"diverged in {np.isnan(v).sum()}"
                for v in per_set.values()
            )
            table.append((mean, f"| {cand} | **{mean:.4f}** | {cells} | {secs:.0f} s |"))
            print(f"{family}: {cand}: {mean:.4f} {per_set}", file=sys.stderr, flush=True)
        metric = "R^2" if family == "regression" else "accuracy"
        print(f"\n{family}: mean {metric} on selection rows, {args.repeats} repeats per set")
        print(f"| candidate | mean | {' | '.join(names)} | time |")
        print("|---" * (len(names) + 3) + "|")
        for _, line in sorted(table, key=lambda t: -np.nan_to_num(t[0], nan=-np.inf)):
            print(line)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
