"""``backprop export``: a model as an ONNX graph."""

from __future__ import annotations

from pathlib import Path

import click

from ...io.onnx_export import export_onnx
from ..app import UserError, cli, one_line
from ..config import load_model_file

__all__ = ["export"]


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("out_path", metavar="OUT.onnx", type=click.Path(dir_okay=False, path_type=Path))
def export(model_path: Path, out_path: Path) -> int:
    """Export a model to ONNX (input scaling folded in); needs pip install 'backprop[onnx]'.

    \b
    Example:
      backprop export runs/mnist/model.safetensors mnist.onnx
    """
    model = load_model_file(model_path, None, None)
    try:
        export_onnx(model, out_path)
    except ImportError as e:
        raise UserError(
            f"ONNX export needs onnx: pip install 'backprop[onnx]' ({one_line(e)})"
        ) from None
    click.echo(f"Wrote {out_path}")
    return 0
