"""``backprop export``: a model as an ONNX graph."""

from __future__ import annotations

from pathlib import Path

import click

from ..._interrupts import deferred
from ...io.onnx_export import DEFAULT_OPSET, MIN_OPSET, export_onnx, import_onnx
from ..app import UserError, cli, one_line
from ..config import is_classifier, load_data, load_model_file
from ..handles import open_handle
from ..options import FilePath, IntegerRange, PathValue

__all__ = ["export"]


@cli.command(short_help="A model (or a run folder's) as an ONNX graph.")
@click.argument("model_path", metavar="MODEL|RUN_DIR", type=PathValue())
@click.argument(
    "out_path",
    metavar="[OUT.onnx]",
    required=False,
    type=FilePath(),
)
@click.option(
    "--opset",
    type=IntegerRange(min=MIN_OPSET),
    default=DEFAULT_OPSET,
    show_default=True,
    help=f"The ONNX opset to write: from {MIN_OPSET} to the newest the installed onnx knows.",
)
def export(model_path: Path, out_path: Path | None, opset: int) -> int:
    """Export a model to ONNX (input scaling folded in); needs the onnx extra.

    The graph's output "output" is what the model predicts (class probabilities for the
    cross-entropy losses; a one-output binary classifier's is p(class 1) alone, where
    predict writes both classes'); a classifier with class names (a CSV run's labels, or the
    data set of a run folder) also gets an output "label", each row's class name, and the
    names in its metadata (class_labels). The graph takes and gives float64 (raw features
    need it: a timestamp moves by a minute in float32) and runs the network in float32
    (docs/model-files.md). OUT.onnx defaults to model.onnx beside the model.

    \b
    Examples:
      backprop export runs/mnist
      backprop export runs/mnist/model.safetensors mnist.onnx --opset 20
    """
    if out_path is not None and str(out_path) == "-":
        raise UserError("OUT.onnx is '-': export writes a binary file; give its path (model.onnx)")
    try:  # first: without onnx, nothing else need be read (a run's data set was loaded)
        with deferred():  # a Ctrl-C inside protobuf's initialisation crashed the process
            import_onnx()
    except ImportError as e:
        raise UserError(one_line(e)) from None
    handle = open_handle(model_path)
    loaded = load_model_file(handle.model_path, None, None)
    model, labels, no_labels = loaded.model, loaded.classes, ""
    if loaded.multilabel:  # (an argmax label is no multi-label row's labels)
        no_labels = (
            " (no label output: a multi-label classifier's labels are its probabilities above 0.5)"
        )
    if labels is None and handle.data_options and is_classifier(model):
        try:  # the class names of a run's data set, where it can be read here (MNIST's
            # files were downloaded for the names 0-9)
            data = load_data({**handle.data_values({}), "download": False})
        except UserError as e:  # (MNIST not on this machine; digits without scikit-learn)
            # its first clause, whole ('MNIST files not found'; a cut one stopped mid-name)
            reason = str(e).split(";")[0].split(" (")[0]
            no_labels = f" (no label output: the run's data set is not readable here: {reason})"
        else:
            if data.task == "classification" and data.class_names is not None:
                labels = [str(c) for c in data.class_names]
    if labels is None and not no_labels and is_classifier(model):  # (it said nothing)
        no_labels = (
            " (no label output: the model file holds no class names; exported from its run "
            "folder, a classifier gets its data set's)"
            if handle.run_dir is None
            else " (no label output: neither the model nor its data set names the classes)"
        )
    out = out_path if out_path is not None else handle.model_path.with_suffix(".onnx")
    handle.check_output(out, "the output")
    export_onnx(model, out, opset=opset, class_labels=labels)
    # on stderr, as predict -o's line: a stdout that failed (>/dev/full) after the file was
    # written made the command fail
    click.echo(f"Wrote {out}{no_labels}", err=True)
    return 0
