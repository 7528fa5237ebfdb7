"""``backprop gradcheck``: the network's gradients against central finite differences."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from ...gradcheck import gradcheck as check_gradients
from ..app import EXIT_FAILED, cli, make_console
from ..config import build_model, given_options, load_data, resolve
from ..options import (
    FiniteFloat,
    config_option,
    data_options,
    device_options,
    model_options,
)
from ..render import titled

__all__ = ["gradcheck"]


@cli.command(short_help="Gradients against central finite differences.")
@data_options
@model_options
@device_options
@config_option
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Training rows to check on.",
)
@click.option(
    "--tolerance",
    type=FiniteFloat(min=0.0, min_open=True),
    help="Largest relative error accepted. [default: 1e-6 in float64, 1e-2 in float32]",
)
def gradcheck(samples: int, tolerance: float | None, **options: Any) -> int:
    """Check the network's gradients against central finite differences, per parameter.

    The network is configured by the same options as train (and --config). Exit status 1
    when any relative error exceeds --tolerance.

    \b
    Examples:
      backprop gradcheck
      backprop gradcheck --dataset iris --layers 4,8,8,3 --loss cross_entropy
    """
    ctx = click.get_current_context()
    values = given_options(ctx, options["config_path"])
    data = load_data(values)
    cfg = resolve(values, data)
    model = build_model(cfg)
    n = min(samples, data.X_train.shape[0])
    results = check_gradients(model, data.X_train[:n], data.targets("train")[:n])
    tol = tolerance if tolerance is not None else (1e-6 if cfg["dtype"] == "float64" else 1e-2)
    title = (
        f"Gradient check: {'-'.join(map(str, cfg['layers']))} {cfg['activation']}/"
        f"{cfg['output_activation']}, loss {cfg['loss']}, {cfg['dtype']}, {n} rows of {data.name}"
    )
    table = Table()
    for col in ("parameter", "shape", "max rel. error", "max abs. error", ""):
        table.add_column(col, justify="right" if col not in ("parameter", "") else "left")
    failed = 0
    for r in results:
        ok = r.max_rel_error <= tol
        failed += not ok
        table.add_row(
            r.name,
            "x".join(map(str, r.shape)),
            f"{r.max_rel_error:.2e}",
            f"{r.max_abs_error:.2e}",
            "ok" if ok else "FAIL",
        )
    console = make_console()
    console.print(titled(title, table))
    if failed:
        console.print(f"{failed} of {len(results)} parameter arrays exceed the tolerance {tol:g}")
        return EXIT_FAILED
    console.print(f"All {len(results)} parameter arrays within the tolerance {tol:g}")
    return 0
