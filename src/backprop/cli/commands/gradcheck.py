"""``backprop gradcheck``: the network's gradients against central finite differences."""

from __future__ import annotations

from typing import Any

import click
import numpy as np
from rich.table import Table

from ...formatting import printable
from ...gradcheck import gradcheck as check_gradients
from ..app import EXIT_FAILED, cli, make_console
from ..config import build_model, given_options, load_data, resolve
from ..options import (
    Count,
    FiniteFloat,
    config_option,
    data_options,
    device_options,
    model_options,
)
from ..render import paragraph, titled

__all__ = ["gradcheck"]


#: Entries checked per parameter array by default: two loss evaluations each (the
#: tutorial's 17 and every array up to 32x31 are checked whole; MNIST's 784x256 weights took
#: minutes, where 1000 of them take about a second).
MAX_ENTRIES = 1000


@cli.command(short_help="Gradients against central finite differences.")
@data_options
@model_options
@device_options
@config_option
@click.option(
    "--samples",
    type=Count(1),
    default=8,
    show_default=True,
    help="Training rows to check on.",
)
@click.option(
    "--tolerance",
    type=FiniteFloat(min=0.0, min_open=True),
    help="Largest relative error accepted. [default: 1e-6 for float64 models, 1e-4 for float32]",
)
@click.option(
    "--max-entries",
    type=Count(1),
    default=MAX_ENTRIES,
    show_default=True,
    help="Entries checked per parameter array; a larger one is checked on this many, drawn "
    "at random (--seed).",
)
def gradcheck(samples: int, tolerance: float | None, max_entries: int, **options: Any) -> int:
    """Check the network's gradients against central finite differences, per parameter.

    The network is configured by the same options as train (and --config: a run's
    config.toml gives its network), and checked at its initial weights. The finite
    differences are evaluated in float64 whatever --dtype is (a float32 network's gradient
    is checked against a float64 copy of it); an entry whose step straddles a ReLU, leaky
    ReLU or MAE kink even at 1/1000 of the step is counted under "kinks" and left out of
    the errors. Exit status 1 when any relative error exceeds --tolerance, unless every
    deviation of that array is within the float64 rounding of the finite differences
    (marked ok*: its gradients are too small for the tolerance to be checked).

    \b
    Examples:
      backprop gradcheck
      backprop gradcheck --dataset spirals --layers 2,8,8,2 --activation tanh
      backprop gradcheck --dtype float32 --activation relu --layers 2,16,2
    """
    ctx = click.get_current_context()
    values = given_options(ctx, options["config_path"])
    data = load_data(values)
    cfg = resolve(values, data)
    model = build_model(cfg)
    n = min(samples, data.X_train.shape[0])
    targets, scaled = data.targets("train"), ""
    if data.task == "regression" and data.preprocessing is not None:
        if cfg["target_scaling"] == "standard":  # the targets train trains on (targets of
            # 1e200 overflowed the loss: every array 'FAIL' with NaN errors, and a warning)
            scaling = data.preprocessing.with_target_scaling(data.y_train)
            targets, scaled = scaling.scale_targets(targets), " (targets standardised)"
    results = check_gradients(
        model, data.X_train[:n], targets[:n], max_entries=max_entries, seed=cfg["seed"]
    )
    # float32 gradients against float64 differences: about 1e-6 off (measured on 84
    # networks of every activation and loss: at most 1.1e-6), so 1e-4 leaves a margin of 100
    tol = tolerance if tolerance is not None else (1e-6 if cfg["dtype"] == "float64" else 1e-4)
    title = (
        f"Gradient check: {'-'.join(map(str, cfg['layers']))} {cfg['activation']}/"
        f"{cfg['output_activation']}, loss {cfg['loss']}, {cfg['dtype']}, {n} rows of "
        f"{printable(data.name)}{scaled}, at its initial weights (seed {cfg['seed']}; finite "
        "differences in float64)"
    )
    table = Table()
    for col in ("parameter", "shape", "max rel. error", "max abs. error", "kinks", ""):
        table.add_column(col, justify="right" if col not in ("parameter", "") else "left")
    failed = 0
    rounding = []  # arrays that pass only by being within the estimates' rounding
    unchecked = [r for r in results if not r.checked]  # every entry on a kink
    for r in results:
        ok = r.passed(tol)
        failed += not ok
        if ok and r.max_rel_error > tol:
            rounding.append(r)
        status = ("ok*" if r in rounding else "ok") if ok else "FAIL"
        table.add_row(
            r.name,
            "x".join(map(str, r.shape)),
            f"{r.max_rel_error:.2e}" if r.checked else "-",
            f"{r.max_abs_error:.2e}" if r.checked else "-",
            str(r.kinks),
            status if r.checked else "not checked",
        )
    console = make_console()
    console.print(titled(title, table))
    drawn = [r for r in results if r.estimated is not None]
    if drawn:  # (every entry of MNIST's network took minutes, with nothing on the screen)
        of = ", ".join(f"{r.name} {r.estimated:,} of {int(np.prod(r.shape)):,}" for r in drawn)
        console.print(paragraph(f"Entries checked, drawn at random (--max-entries): {of}"))
    kinks = sum(r.kinks for r in results)
    if kinks:
        console.print(
            paragraph(
                f"{kinks} entries sit on a kink of ReLU, leaky ReLU or MAE (a value exactly at "
                "0, where the derivative is a convention): left out of the errors"
            )
        )
    if rounding:
        console.print(
            paragraph(
                f"* {', '.join(r.name for r in rounding)}: every deviation is within the "
                "float64 rounding of the finite differences (at most "
                f"{max(r.rounding for r in rounding):.1e}): the gradients are too small to "
                "check to the tolerance, and agree as far as central differences can tell"
            )
        )
    if failed:
        console.print(f"{failed} of {len(results)} parameter arrays exceed the tolerance {tol:g}")
        return EXIT_FAILED
    if not rounding and not unchecked:
        console.print(f"All {len(results)} parameter arrays within the tolerance {tol:g}")
        return 0
    # 'within the tolerance' is said of the arrays that are: not the ok* or unchecked ones
    within = len(results) - len(rounding) - len(unchecked)
    parts = [f"{within} within the tolerance {tol:g}"]
    if rounding:
        parts.append(f"{len(rounding)} at the rounding floor (ok*)")
    if unchecked:
        parts.append(f"{len(unchecked)} not checked (every entry on a kink)")
    console.print(paragraph(f"No array fails: {', '.join(parts)}"))
    return 0
