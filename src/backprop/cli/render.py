"""Tables for the terminal (rich): a training run's summary, an evaluation report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .run_folder import CONFIG_FILE, HISTORY_FILE, MODEL_FILE, SUMMARY_FILE

__all__ = ["fmt_metric", "report_tables", "summary_table", "titled"]


def summary_table(summary: dict[str, Any], run_dir: Path, plots_written: list[str]) -> Any:
    """The metrics of each split as a table, then epochs, time and the files written."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    metric_names: list[str] = []
    for split in ("train", "validation", "test"):
        metric_names += [m for m in summary[split] if m not in metric_names]
    table = Table()
    table.add_column("")
    for name in metric_names:
        table.add_column(name, justify="right")
    for split in ("train", "validation", "test"):
        if summary[split]:
            table.add_row(split, *[fmt_metric(m, summary[split].get(m)) for m in metric_names])
    files = [MODEL_FILE, HISTORY_FILE, SUMMARY_FILE, CONFIG_FILE, *plots_written]
    rate = summary["train_samples_per_s"]
    extra = Text(
        f"Epochs   {summary['epochs_run']} ({summary['stop_reason']})\n"
        f"Time     {summary['wall_time_s']:.2f} s"
        + (f", {rate:,.0f} training samples/s" if rate else "")
        + f"\nSaved in {run_dir}: {', '.join(files)}"
    )
    return Group(titled(f"Trained on {summary['dataset']}", table), extra)


def titled(title: str, table: Any) -> Any:
    """``table`` under a bold heading line (a rich table title would wrap to its width)."""
    from rich.console import Group
    from rich.text import Text

    return Group(Text(title, style="bold"), table)


def fmt_metric(name: str, value: float | None) -> str:
    if value is None:
        return ""
    if name == "accuracy":
        return f"{100 * value:.2f}%"
    return f"{value:.4g}"


def report_tables(report: dict[str, Any], classify: bool) -> Any:
    from rich.console import Group
    from rich.table import Table

    title = f"{report['dataset']}, {report['split']} split, {report['n_samples']} rows"
    if not classify:
        table = Table()
        for name in ("mse", "mae", "r2"):
            table.add_column(name, justify="right")
        table.add_row(*[f"{report[m]:.6g}" for m in ("mse", "mae", "r2")])
        return titled(title, table)
    head = Table()
    for name in ("accuracy", "macro precision", "macro recall", "macro F1"):
        head.add_column(name, justify="right")
    head.add_row(
        f"{100 * report['accuracy']:.2f}%",
        *[f"{report[k]:.4f}" for k in ("macro_precision", "macro_recall", "macro_f1")],
    )
    names = [c["class"] for c in report["per_class"]]
    cm = Table()
    cm.add_column("true \\ pred")
    for n in names:
        cm.add_column(n, justify="right")
    cm.add_column("recall", justify="right")
    for name, row, pc in zip(names, report["confusion_matrix"], report["per_class"], strict=True):
        cm.add_row(name, *[str(v) for v in row], f"{pc['recall']:.3f}")
    cm.add_row(
        "precision", *[f"{pc['precision']:.3f}" for pc in report["per_class"]], "", end_section=True
    )
    return Group(
        titled(title, head),
        titled("Confusion matrix (rows: true class, columns: predicted)", cm),
    )
