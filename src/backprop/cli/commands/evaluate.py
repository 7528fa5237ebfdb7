"""``backprop evaluate``: a model's metrics (and confusion matrix) on a data set's split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from ... import metrics
from ...datasets import names_a_csv_file
from ...datasets.tabular import columns_named
from ..app import UserError, cli, make_console, require_stdout
from ..config import (
    is_classifier,
    load_model_file,
    model_outputs,
    no_test_split,
    output_classes,
)
from ..handles import DATA_KEYS, csv_model_task, model_inputs, open_handle
from ..options import Count, PathValue, choice, device_options, run_data_options
from ..render import report_tables
from ..run_folder import json_text

__all__ = ["evaluate"]


@cli.command(short_help="A model's metrics and confusion matrix on a data set.")
@click.argument("model_path", metavar="MODEL|RUN_DIR", type=PathValue())
@run_data_options
@click.option(
    "--seed",
    type=Count(0),
    help="Seed of the dataset's split (as in train). [default: the run's, else 0]",
)
@click.option(
    "--split",
    type=choice(("test", "train", "validation", "all")),
    default="test",
    show_default=True,
    help="The rows: test; train (of a run folder: without the validation rows it held out, "
    "as its summary table); validation (a run folder's held-out rows); all (every row: a "
    "file of new labelled rows, scored whole).",
)
@device_options
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
def evaluate(model_path: Path, split: str, as_json: bool, **options: Any) -> int:
    """Print a model's metrics (and confusion matrix) on a data set's test, training or
    validation rows.

    Given a run folder, the model is evaluated on the data set it was trained on, with the
    run's seed, test fraction and target column (options given here override them). Given
    a model file, use the same --dataset, --seed and --test-fraction as the training run to
    get the same split. Models trained on a CSV file apply their own scaling to its rows.

    \b
    Examples:
      backprop evaluate runs/mnist
      backprop evaluate runs/mnist --split train --json
      backprop evaluate model.safetensors -d examples/iris.csv --target species
      backprop evaluate runs/iris -d flowers.csv --split all
    """
    require_stdout("the metrics would be lost; leave it open, or send it to a file")
    handle = open_handle(model_path)
    loaded = load_model_file(handle.model_path, options["backend"], options["device"])
    model = loaded.model
    if loaded.multilabel:  # (its outputs' argmax was scored against one label a row)
        raise UserError(
            f"{handle.model_path} is a multi-label classifier ({model.n_outputs} labels, each "
            "present or not); evaluate scores one label a row: use predict, which writes each "
            "row's labels"
        )
    values = handle.data_values({k: options.get(k) for k in DATA_KEYS})
    pre = model.preprocessing
    _refuse_toy_for_a_model_of_another_shape(handle, values, model)
    task = csv_model_task(values, model)
    if task is not None:
        # a model trained on a CSV file: its target column and task, not guessed again,
        # and its feature columns alone (an id column of text was refused, as predict
        # does not)
        if values.get("target") is None:
            values["target"] = pre.target
        if values["target"] in pre.feature_names:  # (it read 'the target is among the features')
            raise UserError(
                f"--target {values['target']!r} is one of the model's feature columns "
                f"({', '.join(pre.feature_names)}); the model was trained on the target "
                f"{pre.target!r}"
            )
        own = {"task": task, "features": tuple(pre.feature_names)}
        for key, value in own.items():  # (given otherwise, they were dropped without a word)
            given = options.get(key)
            if given is not None and given != value:
                what = "task" if key == "task" else "feature columns"
                raise UserError(
                    f"--{key} does not apply to a model trained on a CSV file, which reads its "
                    f"own {what} ({', '.join(value) if key == 'features' else value}); leave "
                    f"--{key} out"
                )
        values.update(own)
    elif (
        pre is not None
        and values.get("features") is None
        and names_a_csv_file(str(values.get("dataset", "")))
    ):
        # a scikit-learn estimator fitted on named columns: those columns alone, as predict
        # reads them (an id column of text was refused)
        values["features"] = tuple(columns_named(pre.feature_names, f"dataset {values['dataset']}"))
    data = handle.load_data(values)
    if split == "test":
        if data.X_test is None:
            raise UserError(
                f"dataset {data.name} has no test split ({no_test_split(data, values)}); "
                "use --split all (every row) or --split train"
            )
        X, y = data.X_test, data.y_test
    elif split == "all":  # (a holdout file was scored on its own 'test split', a quarter)
        X, y = data.X_train, np.asarray(data.y_train)
        if data.X_test is not None:
            X, y = np.concatenate([X, data.X_test]), np.concatenate([y, np.asarray(data.y_test)])
    else:
        X, y = data.X_train, np.asarray(data.y_train)
        rows = handle.training_rows(values, data)
        if split == "validation" and (rows is None or not rows[1].size):
            raise UserError(
                "--split validation needs a run folder that held validation rows out of its "
                "own data (and no --dataset, --seed or --test-fraction of another split)"
            )
        if rows is not None:
            pick = rows[0] if split == "train" else rows[1]
            X, y = X[pick], y[pick]
    X, y = model_inputs(model, data, X, np.asarray(y), loaded.classes)
    classify = data.task == "classification"
    # a CSV file's labels were matched to the model's classes above: by name, or (a model
    # without class names) as class numbers
    matched = data.preprocessing is not None and (pre is None or pre.classes is not None)
    if classify and not matched and model.n_outputs != data.n_classes:
        raise UserError(
            f"the model has {model.n_outputs} outputs but dataset {data.name} "
            f"has {data.n_classes} classes"
        )
    if not classify and model.n_outputs != data.n_outputs:
        raise UserError(
            f"the model has {model.n_outputs} outputs but dataset {data.name} is a regression "
            f"set with {data.n_outputs} target column(s)"
            + ("; the model is a classifier" if is_classifier(model) else "")
        )
    which = "all rows" if split == "all" else f"{split} split"
    # (all rows are the training split's then the test split's, each shuffled: no row of
    # the file is named by its place in them)
    pred = model_outputs(
        model, X, f"dataset {data.name} ({which})", model_path, rows_named=split != "all"
    )
    if classify:
        if loaded.classes is not None:  # (the preprocessing's, else a classifier's classes_)
            names = list(loaded.classes)
        elif matched:  # the model's class numbers
            names = [str(k) for k in range(max(model.n_outputs, 2))]
        else:
            names = data.class_names
        report = metrics.classification_report(y, output_classes(pred), names)
    else:
        report = metrics.regression_report(
            np.asarray(y, dtype=np.float64).reshape(pred.shape), pred
        )
    report = {"dataset": data.name, "split": split, **report}
    if as_json:
        click.echo(json_text(report))
        return 0
    console = make_console()
    console.print(report_tables(report, classify))
    return 0


def _refuse_toy_for_a_model_of_another_shape(handle: Any, values: dict, model: Any) -> None:
    """A model file (not a run folder) names no data set, and evaluate took toy, the
    default, for one it was never meant for: 'the model expects 4 input features but dataset
    toy has 2', of a data set the user never named. A model of toy's shape (2 inputs, no CSV
    columns) is still scored on toy, as the help says: its file cannot say it was not."""
    if values.get("dataset") is not None or handle.run_dir is not None:
        return
    pre = model.preprocessing
    columns = None if pre is None else pre.feature_names
    if model.n_inputs == 2 and not columns:
        return  # (toy's shape: as the help says, the default)
    what = f"takes {model.n_inputs} features"
    if columns:
        what += f" (a CSV file's {', '.join(columns)})"
    raise UserError(
        f"{handle.model_path} is a model file, which names no data set: give the one to score "
        f"it on with --dataset (the default, toy, has 2 features; this model {what})"
    )
