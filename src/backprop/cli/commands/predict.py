"""``backprop predict``: predictions for the rows of a CSV file, as CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import click

from ...datasets import read_csv_features
from ..app import UserError, cli
from ..config import is_classifier, load_model_file
from ..options import device_options

__all__ = ["predict"]


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("input_path", metavar="INPUT.csv", type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of stdout.",
)
@device_options
def predict(model_path: Path, input_path: Path, output: Path | None, **options: Any) -> int:
    """Predict for the rows of a CSV file: labels and class probabilities, or regression outputs.

    INPUT.csv has a header row. A model trained on a CSV file picks its feature columns by
    name (others, such as the target, are ignored) and applies its own scaling; otherwise
    every column is an input, in order.

    \b
    Examples:
      backprop predict runs/iris/model.safetensors new_flowers.csv
      backprop predict runs/iris/model.safetensors new_flowers.csv --output predictions.csv
    """
    model = load_model_file(model_path, options["backend"], options["device"])
    if output is not None and output.resolve() == input_path.resolve():
        raise UserError(f"--output {output} is the input file; choose another file")
    if not input_path.is_file():
        raise UserError(f"input file {input_path} does not exist")
    X = read_csv_features(input_path, model.preprocessing)
    if X.shape[1] != model.n_inputs:
        raise UserError(
            f"{input_path} has {X.shape[1]} columns but the model expects {model.n_inputs} inputs"
        )
    out = model.backend.to_numpy(model.predict(X))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    pre = model.preprocessing
    if is_classifier(model):
        names = (
            list(pre.classes)
            if pre is not None and pre.classes is not None
            else [str(k) for k in range(model.n_outputs)]
        )
        if len(names) != out.shape[1]:
            names = [str(k) for k in range(out.shape[1])]
        labels = model.predict_classes(X)
        writer.writerow(["label", *[f"p_{n}" for n in names]])
        for k, row in zip(labels, out, strict=True):
            writer.writerow([names[k], *[f"{v:.9g}" for v in row]])
    else:
        if pre is not None and pre.scales_targets:  # outputs -> the target's units
            out = pre.unscale_targets(out)
        if pre is not None and pre.target is not None and out.shape[1] == 1:
            columns = [pre.target]
        else:
            columns = [f"output_{j + 1}" for j in range(out.shape[1])]
        writer.writerow(columns)
        writer.writerows([[f"{v:.9g}" for v in row] for row in out])
    if output is None:
        click.echo(buffer.getvalue(), nl=False)
    else:
        output.write_text(buffer.getvalue(), encoding="utf-8")
        click.echo(f"Wrote {out.shape[0]} predictions to {output}", err=True)
    return 0
