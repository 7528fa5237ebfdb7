"""The run folder ``backprop train`` writes: model, history, summary, config, plots and the
checkpoint that ``--resume`` continues from."""

from __future__ import annotations

import csv
import datetime
import json
import os
from pathlib import Path
from typing import Any

import click

from ..io.checkpoint import Checkpoint
from ..network import MLP
from . import config, plots
from .app import UserError

__all__ = [
    "CONFIG_FILE",
    "HISTORY_FILE",
    "MODEL_FILE",
    "SUMMARY_FILE",
    "checkpoint_callback",
    "make_run_dir",
    "write_history",
    "write_json",
    "write_plots",
]

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.toml"
HISTORY_FILE = "history.csv"
SUMMARY_FILE = "summary.json"


def make_run_dir(out: Path | None, dataset_name: str) -> Path:
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path("runs") / f"{stamp}-{Path(dataset_name).stem}"
        out, k = base, 2
        while out.exists():
            out, k = base.with_name(f"{base.name}-{k}"), k + 1
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; expected a folder for the run")
    if out.is_dir() and any(
        (out / f).exists() for f in (MODEL_FILE, SUMMARY_FILE, HISTORY_FILE, CONFIG_FILE)
    ):
        raise UserError(
            f"run folder {out} already holds a run; choose another --out, or continue it with "
            f"backprop train --resume {out}"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns or ["epoch"])
        writer.writeheader()
        writer.writerows(rows)


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def checkpoint_callback(run_dir: Path, cfg: dict[str, Any], data_sha256: str) -> Any:
    """A :class:`backprop.checkpoint.Checkpoint` saving into ``run_dir`` every
    ``checkpoint_every`` epochs, so that ``--resume`` can continue exactly."""
    fit_config = {
        "epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"],
        "seed": cfg["seed"],
        "early_stopping": config.early_stopping_callback(cfg),
        "class_weight": cfg.get("class_weight"),
        "data_sha256": data_sha256,
    }
    return Checkpoint(run_dir, every=cfg["checkpoint_every"], fit_config=fit_config)


def write_plots(
    run_dir: Path, model: MLP, data: Any, rows: list[dict[str, float]], enabled: bool, console: Any
) -> list[str]:
    if not enabled:
        return []
    if not plots.available():
        click.echo(plots.MISSING_MESSAGE, err=True)
        return []
    return plots.plot_run(run_dir, model, data, rows)
