"""What the commands print (rich): a training run's header and summary, an evaluation
report.

Everything fits in :data:`WIDTH` (80) columns, on a terminal and in a pipe alike, and
nothing is cut short: labelled lines wrap at word boundaries under their label, and a table
too wide for the width is replaced by a narrower layout (a confusion matrix by the
per-class table, with a pointer to ``--json`` for the full matrix), never truncated.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..formatting import plural, printable
from ..io.checkpoint import CHECKPOINT_NAME
from ..training.progress import MAX_WIDTH
from .run_folder import CONFIG_FILE, HISTORY_FILE, MODEL_FILE, SUMMARY_FILE

__all__ = [
    "WIDTH",
    "fits",
    "fmt_metric",
    "labelled",
    "paragraph",
    "report_tables",
    "run_header",
    "summary_table",
    "titled",
]

#: The widest line the commands print.
WIDTH = MAX_WIDTH


def labelled(label: str, text: str, width: int = WIDTH) -> str:
    """``Network  784-30-10, ...`` wrapped at word boundaries within ``width`` columns,
    continuation lines indented under the text (a path longer than a line stays whole)."""
    head = f"{label:<8} "
    return textwrap.fill(
        text,
        width=width,
        initial_indent=head,
        subsequent_indent=" " * len(head),
        break_long_words=False,
        break_on_hyphens=False,
    )


def run_header(
    cfg: dict[str, Any],
    n_parameters: int,
    data_line: str,
    run_dir: Path,
    resumed_after: int | None = None,
    settings: dict[str, Any] | None = None,
    n_train: int | None = None,
    n_validation: int | None = None,
) -> str:
    """The four lines ``backprop train`` prints before training: network (with its
    parameter count and dropout), training settings (with the optimizer's momentum and
    weight decay, from its ``settings``, where not 0), data and run folder. Without
    validation rows (``n_validation`` 0) a ``val_...`` monitor names the training column
    that early stopping watches instead."""
    network = (
        f"{'-'.join(map(str, cfg['layers']))} ({n_parameters:,} parameters), "
        f"{cfg['activation']} hidden, {cfg['output_activation']} output, loss {cfg['loss']}"
    )
    if cfg.get("dropout"):
        network += f", dropout {cfg['dropout']:g}"
    training = f"{cfg['optimizer']}, lr {cfg['lr']:g}"
    for key, name in (("momentum", "momentum"), ("weight_decay", "weight decay")):
        if (settings or {}).get(key):
            training += f", {name} {settings[key]:g}"
    batch = f"{cfg['batch_size']}"
    if n_train is not None and cfg["batch_size"] > n_train:  # every row in one step
        batch += f" (all {n_train} rows)"
    training += f", batch {batch}, {plural(cfg['epochs'], 'epoch')}"
    if cfg.get("schedule", "constant") != "constant":
        training += f", {cfg['schedule']} schedule"
    patience, monitor = cfg.get("early_stopping"), cfg.get("monitor", "val_loss")
    if n_validation == 0 and monitor.startswith("val_"):
        monitor = monitor.removeprefix("val_")  # EarlyStopping.watched's fallback
    if patience and patience < cfg["epochs"]:
        training += f", early stopping after {plural(patience, 'epoch')} without a better {monitor}"
    elif patience and cfg.get("restore_best", True):  # it cannot stop the run: it still keeps
        training += f", the best {monitor}'s weights kept (patience {patience})"
    if resumed_after is not None:
        training += f", resuming after epoch {resumed_after}"
    return "\n".join(
        [
            labelled("Network", network),
            labelled("Training", training),
            labelled("Data", printable(data_line)),
            labelled("Run", printable(run_dir)),
        ]
    )


def summary_table(
    summary: dict[str, Any],
    run_dir: Path,
    plots_written: list[str],
    target_scaling: str | None = None,
    notes: Sequence[tuple[str, str]] = (),
) -> Any:
    """The metrics of each split as a table, then epochs, time and the files written. For a
    regression, ``target_scaling`` is "standard" (a line says that the loss is in the
    standardised targets' units and the other metrics in the target's) or "none" (a line
    names the option when the network fits its training rows worse than their mean).
    ``notes``: more labelled lines under the table, ``(label, text)``."""
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
    files = [MODEL_FILE, HISTORY_FILE, SUMMARY_FILE, CONFIG_FILE]
    if (run_dir / CHECKPOINT_NAME).is_file():
        files.append(CHECKPOINT_NAME)
    files += plots_written
    rate, timed, run = (
        summary["train_samples_per_s"],
        summary.get("epochs_timed"),
        summary["epochs_run"],
    )
    time_line = f"{summary['wall_time_s']:.2f} s"
    if timed is not None and timed != run:  # a resume: only its own epochs were timed
        first = run - timed + 1
        span = f"epoch {run}" if first == run else f"epochs {first}-{run}"  # (not 'epochs 3-3')
        time_line += f" for {span}" if timed else " (no epoch trained)"
    if rate:  # (the wall time holds the validation and the checkpoints too)
        time_line += f", {rate:,.0f} training samples/s overall"
    lines = (
        [
            labelled(
                "Units",
                "loss on the standardised targets the network learns; mae in the "
                "target's own units, mse in their square",
            )
        ]  # fmt: skip
        if target_scaling == "standard"
        else []
    )
    if target_scaling == "none" and summary["train"].get("r2", 0.0) < 0:
        lines.append(
            labelled(
                "Targets",
                f"not scaled (--target-scaling none), and the network fits the training "
                f"rows worse than their mean (R² {fmt_metric('r2', summary['train']['r2'])}): "
                "--target-scaling standard trains on standardised targets",
            )
        )
    lines += [labelled(label, text) for label, text in notes]
    extra = "\n".join(
        [
            *lines,
            labelled("Epochs", f"{summary['epochs_run']} ({summary['stop_reason']})"),
            labelled("Time", time_line),
            labelled("Saved in", f"{printable(run_dir)}: {', '.join(files)}"),
        ]
    )
    return Group(titled(f"Trained on {printable(summary['dataset'])}", table), Text(extra))


def paragraph(text: str) -> str:
    """``text`` wrapped at word boundaries within :data:`WIDTH` columns (the console itself
    does not wrap: ``make_console`` keeps long paths whole)."""
    return textwrap.fill(text, WIDTH, break_long_words=False, break_on_hyphens=False)


def titled(title: str, table: Any) -> Any:
    """``table`` under a bold heading (a rich table title would wrap to the table's width),
    wrapped within :data:`WIDTH` columns."""
    from rich.console import Group
    from rich.text import Text

    return Group(Text(paragraph(title), style="bold"), table)


def fmt_metric(name: str, value: float | None) -> str:
    if value is None:
        return ""
    if name == "accuracy":
        return f"{100 * value:.2f}%"
    # 4 significant digits, trailing zeros kept as in the epoch lines (0.2720), but no
    # bare point (1234., not 1234)
    return f"{value:#.4g}".removesuffix(".")


def fits(renderable: Any, width: int = WIDTH) -> bool:
    """Whether ``renderable`` draws within ``width`` columns without shrinking anything."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(width=10 * width, markup=False, emoji=False)  # as make_console prints
    return Measurement.get(console, console.options, renderable).maximum <= width


def report_tables(report: dict[str, Any], classify: bool, width: int = WIDTH) -> Any:
    """An evaluation report: the headline metrics; for classifiers the confusion matrix
    (counts; left out, with a pointer to ``--json``, when it is wider than ``width``) and
    each class's precision, recall, F1 and support."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    rows = (
        f"all {report['n_samples']} rows"
        if report["split"] == "all"
        else f"{report['split']} split, {report['n_samples']} rows"
    )
    title = f"{printable(report['dataset'])}, {rows}"
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
    names = [printable(c["class"]) for c in report["per_class"]]
    compact = {"box": box.SIMPLE_HEAD, "pad_edge": False, "show_edge": False}
    cm = Table(padding=(0, 0, 0, 2), **compact)
    cm.add_column("true \\ pred", no_wrap=True)
    # each class's column takes at least 3 cells (2 of padding, a digit): past that width
    # the table is not built to be measured (300 classes took 2.3 s to say it did not fit)
    narrow = len(cm.columns[0].header) + 3 * len(names) <= width
    for n in names if narrow else ():
        cm.add_column(n, justify="right", no_wrap=True)
    for name, row in zip(names, report["confusion_matrix"] if narrow else (), strict=False):
        cm.add_row(name, *[str(v) for v in row])
    per_class = Table(padding=(0, 0, 0, 3), **compact)
    per_class.add_column("class", overflow="fold")
    for name in ("precision", "recall", "F1", "support"):
        per_class.add_column(name, justify="right", no_wrap=True)
    for name, pc in zip(names, report["per_class"], strict=True):
        per_class.add_row(
            name,
            f"{pc['precision']:.3f}",
            f"{pc['recall']:.3f}",
            f"{pc['f1']:.3f}",
            str(pc["support"]),
        )
    if narrow and fits(cm, width):
        matrix = titled("Confusion matrix (rows: true class, columns: predicted)", cm)
    else:
        matrix = Text(
            labelled(
                "Confusion",
                f"matrix: {len(names)} x {len(names)}, wider than {width} columns; "
                "evaluate --json prints it (key confusion_matrix)",
                width,
            )
        )
    return Group(titled(title, head), matrix, titled("Per class", per_class))
