"""``backprop evaluate``: a model's metrics (and confusion matrix) on a data set's split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from ... import metrics
from ...network import MLP
from ..app import UserError, cli, make_console
from ..config import load_data, load_model_file
from ..options import choice, data_options, device_options
from ..render import report_tables

__all__ = ["evaluate"]


def _model_inputs(
    model: MLP, data: Any, X: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of ``data`` as ``model`` expects them.

    When both the data and the model carry a scaling (CSV files, standardised tables), the
    rows are taken back to raw numbers with the data's scaling and standardised with the
    model's, columns matched by name, and labels matched by class name; otherwise the rows
    are used as they are.
    """
    pre, dpre = model.preprocessing, data.preprocessing
    if pre is not None and dpre is not None:
        missing = [f for f in pre.feature_names if f not in dpre.feature_names]
        if missing:
            raise UserError(
                f"dataset {data.name} lacks the feature columns {missing} the model was trained on"
            )
        raw = X * np.asarray(dpre.scale) + np.asarray(dpre.mean)
        order = [list(dpre.feature_names).index(f) for f in pre.feature_names]
        X = pre.transform(raw[:, order])
        if (
            data.task == "classification"
            and pre.classes is not None
            and data.class_names is not None
        ):
            unknown = sorted({data.class_names[k] for k in np.unique(y)} - set(pre.classes))
            if unknown:
                raise UserError(
                    f"dataset {data.name} has labels {unknown} the model was not trained on"
                )
            index = {c: k for k, c in enumerate(pre.classes)}
            y = np.array([index[data.class_names[k]] for k in y], dtype=np.int64)
    if X.shape[1] != model.n_inputs:
        raise UserError(
            f"the model expects {model.n_inputs} input features but dataset {data.name} "
            f"has {X.shape[1]}"
        )
    return X, y


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@data_options
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the dataset's split (as in train).",
)
@click.option("--split", type=choice(("test", "train")), default="test", show_default=True)
@device_options
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
def evaluate(model_path: Path, split: str, as_json: bool, **options: Any) -> int:
    """Print a model's metrics (and confusion matrix) on a dataset's test or training split.

    Use the same --dataset, --seed and --test-fraction as the training run to get the same
    split. Models trained on a CSV file apply their own scaling to the file's rows.

    \b
    Examples:
      backprop evaluate runs/mnist/model.safetensors --dataset mnist
      backprop evaluate runs/iris/model.safetensors --dataset iris.csv --target species
    """
    model = load_model_file(model_path, options["backend"], options["device"])
    values = {k: v for k, v in options.items() if v is not None}
    pre = model.preprocessing
    if (
        values.get("target") is None
        and pre is not None
        and pre.target is not None
        and str(values.get("dataset", "")).lower().endswith(".csv")
    ):
        values["target"] = pre.target
    data = load_data(values)
    if split == "test":
        if data.X_test is None:
            raise UserError(
                f"dataset {data.name} has no test split (--test-fraction 0); use --split train"
            )
        X, y = data.X_test, data.y_test
    else:
        X, y = data.X_train, data.y_train
    X, y = _model_inputs(model, data, X, np.asarray(y))
    classify = data.task == "classification"
    if classify and model.n_outputs != data.n_classes:
        raise UserError(
            f"the model has {model.n_outputs} outputs but dataset {data.name} "
            f"has {data.n_classes} classes"
        )
    if classify:
        names = (
            list(pre.classes) if pre is not None and pre.classes is not None else data.class_names
        )
        report = metrics.classification_report(y, model.predict_classes(X), names)
    else:
        pred = model.backend.to_numpy(model.predict(X))
        if pre is not None and pre.scales_targets:  # outputs -> the target's units
            pred = pre.unscale_targets(pred)
        report = metrics.regression_report(
            np.asarray(y, dtype=np.float64).reshape(pred.shape), pred
        )
    report = {"dataset": data.name, "split": split, **report}
    if as_json:
        click.echo(json.dumps(report))
        return 0
    console = make_console()
    console.print(report_tables(report, classify))
    return 0
