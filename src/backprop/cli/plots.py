"""PNG plots of a training run (``backprop train`` writes them into the run folder).

matplotlib is imported only inside these functions (a dependency of the package; a
trimmed install without it still trains: :func:`available` says whether it is there).
Figures are drawn with matplotlib's object-oriented API on the Agg canvas: no pyplot, no
global state, no window.

Files (:func:`plot_run`):

- ``loss.png``: training (and validation) loss per epoch;
- ``accuracy.png``: training (and validation) accuracy per epoch, classifiers only;
- ``decision_boundary.png``: 2-D classification data, the predicted class over the plane,
  shaded by the model's confidence, with the training and test points on top and the
  accuracy on each in the title;
- ``predicted_vs_true.png``: regression, each test (and training) row's prediction against
  its true value, beside the line ``predicted = true``, with R^2 in the title;
- ``misclassified.png``: image data, a grid of misclassified test images with their true
  and predicted labels.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._interrupts import deferred
from ..formatting import plural, printable
from ..io.safetensors import write_atomic

#: Every file :func:`plot_run` may write into a run folder.
PLOT_FILES = (
    "loss.png",
    "accuracy.png",
    "decision_boundary.png",
    "predicted_vs_true.png",
    "misclassified.png",
)

__all__ = [
    "MISSING_MESSAGE",
    "PLOT_FILES",
    "available",
    "plot_run",
    "plot_curves",
    "plot_decision_boundary",
    "plot_misclassified",
    "plot_predicted_vs_true",
]

MISSING_MESSAGE = "matplotlib is not installed, so no plots were drawn: pip install matplotlib"

#: Most misclassified images shown (a 5 x 5 grid).
MAX_IMAGES = 25


def available() -> bool:
    """Whether matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def require_importable() -> None:
    """Refuse, before a run trains, a matplotlib that will not import for want of a backend
    it knows: ``MPLBACKEND=nonsense`` failed the run after training, naming no variable
    ("Key backend: 'nonsense' is not a valid value for backend"), though the plots are
    drawn on Agg whatever it says. (Without matplotlib the run trains and says so.)"""
    if not available():
        return
    try:
        # a Ctrl-C or SIGTERM waits for the end of the import: arriving as ft2font's C
        # initialisation returned, it aborted the process ('Fatal Python error:
        # PyThreadState_Get', exit 134) in an audit's 1 of 40-200 tries
        with deferred():
            import matplotlib  # noqa: F401
    except ValueError as e:
        backend = os.environ.get("MPLBACKEND")
        if backend is None or "backend" not in str(e):
            raise
        raise ValueError(
            f"MPLBACKEND={backend!r} is not a backend matplotlib knows, and matplotlib will not "
            "import with it (the plots are drawn on Agg whatever it says); expected it unset, "
            "or a backend such as 'agg' (or --no-plots)"
        ) from None


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> None:
    """The figure as PNG at ``path``, written atomically (a failed write leaves the old
    file; a symlink at ``path`` is replaced, not followed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    write_atomic(path, buffer.getvalue())


def plot_run(
    run_dir: str | Path,
    model: Any,
    data: Any,
    rows: Sequence[dict[str, float]],
    validation_rows: np.ndarray | None = None,
    model_epoch: int | None = None,
) -> list[str]:
    """Every plot that fits the run; returns the file names written into ``run_dir``.

    Parameters
    ----------
    run_dir : folder
    model : MLP
        The trained model (its predictions are plotted).
    data : backprop.datasets.Dataset
        Training data ``X_train`` (n, n_features), labels ``y_train`` (n,), the test split.
    rows : list of dict
        The history, one dict per epoch (``loss``, ``val_loss``, ``accuracy``...).
    validation_rows : int array, optional
        The rows of ``X_train`` held out for validation: drawn and scored as such, so that
        the plot's "train" is the summary table's.
    model_epoch : int, optional
        The epoch whose weights the model holds, when not the last (early stopping's
        best, restored): marked on the curves.
    """
    with _missing_glyphs_in_one_line():
        return _plot_run(Path(run_dir), model, data, rows, validation_rows, model_epoch)


#: matplotlib's warning for a character its font cannot draw (matplotlib/_text_helpers.py).
_MISSING_GLYPH = re.compile(r"Glyph (\d+) \(.*\) missing from font\(s\) (.+?)\.?$")


@contextlib.contextmanager
def _missing_glyphs_in_one_line() -> Iterator[None]:
    """matplotlib warns once per character its fonts lack, twice over, each warning with its
    source line: eight CJK class names printed 32 lines after a run that went well. They
    are one line on stderr here, naming the characters drawn as boxes (control characters
    escaped). Other warnings are shown as their own filters say, where they would have
    been."""
    import click

    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", message=r"Glyph \d+ .* missing from font")
        yield
    missing: dict[str, str] = {}
    for w in caught:
        glyph = _MISSING_GLYPH.match(str(w.message))
        if glyph is None:  # (recorded after its filters: shown once where 'default' says)
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
        else:
            missing.setdefault(printable(chr(int(glyph[1]))), glyph[2])
    if missing:
        fonts = ", ".join(sorted(set(missing.values())))
        click.echo(
            f"Plots: the font ({fonts}) has no glyph for {plural(len(missing), 'character')} "
            f"of the names shown, drawn as empty boxes: {' '.join(missing)}",
            err=True,
        )


def _plot_run(
    run_dir: Path,
    model: Any,
    data: Any,
    rows: Sequence[dict[str, float]],
    validation_rows: np.ndarray | None,
    model_epoch: int | None,
) -> list[str]:
    scaled = getattr(model.preprocessing, "target_scale", None) is not None
    written = plot_curves(rows, run_dir, model_epoch, scaled)
    classify = data.task == "classification"
    if classify and data.n_features == 2:
        X, y = data.X_train, np.asarray(data.y_train)
        held = np.zeros(X.shape[0], bool)
        if validation_rows is not None:
            held[validation_rows] = True
        sets = {"train": (X[~held], y[~held])}
        if held.any():
            sets["validation"] = (X[held], y[held])
        if data.X_test is not None:
            sets["test"] = (data.X_test, np.asarray(data.y_test))
        plot_decision_boundary(
            model, sets, data.class_names, run_dir / "decision_boundary.png", title=data.name,
            preprocessing=data.preprocessing,
        )  # fmt: skip
        written.append("decision_boundary.png")
    if not classify:
        if plot_predicted_vs_true(model, data, run_dir / "predicted_vs_true.png"):
            written.append("predicted_vs_true.png")
    if classify and data.image_shape is not None and data.X_test is not None:
        plot_misclassified(
            model,
            data.X_test,
            data.y_test,
            data.image_shape,
            data.class_names,
            run_dir / "misclassified.png",
        )
        written.append("misclassified.png")
    return written


def plot_curves(
    rows: Sequence[dict[str, float]],
    run_dir: str | Path,
    model_epoch: int | None = None,
    scaled_targets: bool = False,
) -> list[str]:
    """``loss.png`` and (when the history has accuracy) ``accuracy.png``; returns the names.
    ``model_epoch``, the epoch the model's weights are from when not the last, is marked
    with a dashed line (the table's numbers are that epoch's, not the curves' last). With
    ``scaled_targets`` the loss axis says it is on the standardised targets (a loss of 0.02
    beside a table's MSE of 7,201 read as a mistake)."""
    run_dir = Path(run_dir)
    written = []
    epochs = [r["epoch"] for r in rows]
    for key, label, name in (
        ("loss", "loss", "loss.png"),
        ("accuracy", "accuracy", "accuracy.png"),
    ):
        if not any(key in r for r in rows):
            continue
        fig = _figure(6.4, 4.0)
        ax = fig.add_subplot()
        marker = "o" if len(rows) < 2 else None  # one epoch: a point, not an invisible line
        ax.plot(epochs, [r.get(key, np.nan) for r in rows], label=f"training {label}",
                color="C0", marker=marker)  # fmt: skip
        if any(f"val_{key}" in r for r in rows):
            ax.plot(
                epochs,
                [r.get(f"val_{key}", np.nan) for r in rows],
                label=f"validation {label}",
                color="C1",
                marker=marker,
            )
        if model_epoch is not None and model_epoch != epochs[-1]:
            ax.axvline(model_epoch, color="0.4", linestyle="--", linewidth=1,
                       label=f"the model kept: epoch {model_epoch}")  # fmt: skip
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(_integer_ticks())  # epochs are whole numbers
        if len(rows) < 2:
            ax.set_xticks(epochs)  # a one-point range: the integer locator gives fractions
        ax.set_ylabel(
            "loss (on standardised targets)" if key == "loss" and scaled_targets else label
        )
        if key == "loss" and all(r.get(k, 1.0) > 0 for r in rows for k in ("loss", "val_loss")):
            ax.set_yscale("log")
        if key == "accuracy":
            ax.yaxis.set_major_formatter(_percent())
        ax.set_title(f"{label.capitalize()} per epoch")
        ax.grid(True, alpha=0.3)
        ax.legend()
        _save(fig, run_dir / name)
        written.append(name)
    return written


def _plain(text: str) -> str:
    """A user's text (a CSV file's column, class or file name) as matplotlib shows it
    literally: an unescaped ``$`` starts its math mode, and ``Revenue $$`` failed the run
    after training ('ParseException')."""
    return text.replace("$", r"\$")


def _integer_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0)


#: How each point set of a decision-boundary plot is drawn: marker and size.
MARKERS = {"train": ("o", 18), "validation": ("s", 22), "test": ("^", 28)}


def plot_decision_boundary(
    model: Any,
    sets: dict[str, tuple[np.ndarray, np.ndarray]],
    class_names: Sequence[str] | None,
    path: str | Path,
    title: str = "",
    resolution: int = 300,
    preprocessing: Any = None,
) -> None:
    """The predicted class over the plane, with the points on top.

    Parameters
    ----------
    model : MLP with 2 inputs
    sets : dict
        Point sets by name, drawn in turn, each ``(X (n_k, 2), int labels (n_k,))``:
        ``"train"`` (circles), ``"validation"`` (squares), ``"test"`` (triangles); the
        labels give the colours, and the title each set's accuracy.
    class_names : sequence of str, optional
        The legend's name of class ``c`` is ``class_names[c]``; None: the class numbers.
    path : str or path-like
        The PNG file to write (atomically).
    title : str
        Shown after "Decision boundary: " (:func:`plot_run` gives the data set's name);
        empty: nothing added.
    resolution : int
        Grid points along each axis at which the model is evaluated (``resolution ** 2``
        predictions), over the points' range padded by a tenth on each side.
    preprocessing : backprop.preprocessing.Preprocessing, optional
        The scaling that made the model's inputs from a CSV file's columns: the axes are
        then those columns, by name, in their own units (``x = x_std * scale + mean``), or
        standardised where those units reach past what an axis can span (near 1e308);
        without it, ``x1`` and ``x2`` as the model takes them.
    """
    from matplotlib.colors import to_rgb

    Xs = [X for X, _ in sets.values()]
    ys = [y for _, y in sets.values()]
    X_all = np.concatenate(Xs)
    lo, hi = X_all.min(axis=0), X_all.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-9)
    g1 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    g2 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    G1, G2 = np.meshgrid(g1, g2)
    grid = np.column_stack([G1.ravel(), G2.ravel()])
    k = int(max(int(np.max(y)) for y in ys) + 1)
    k = max(k, model.n_outputs if model.n_outputs > 1 else 2)
    Z = model.predict_classes(grid).reshape(G1.shape)
    confidence = _confidence(model, grid, k).reshape(G1.shape)
    colors = [f"C{c % 10}" for c in range(k)]
    # each point of the plane in its predicted class's colour, more opaque where the model
    # is surer: alpha from 0.08 (a toss-up between the classes) to 0.55 (certain)
    rgba = np.zeros((*G1.shape, 4))
    rgba[..., :3] = np.asarray([to_rgb(c) for c in colors])[Z]
    rgba[..., 3] = 0.08 + 0.47 * confidence
    fig = _figure(7.6, 5.4)
    ax = fig.add_subplot()
    names_xy, mean, scale = ("x1", "x2"), np.zeros(2), np.ones(2)
    if preprocessing is not None and len(preprocessing.feature_names) == 2:
        names_xy = tuple(preprocessing.feature_names)
        mean, scale = np.asarray(preprocessing.mean), np.asarray(preprocessing.scale)

    def raw(v: np.ndarray, j: int) -> np.ndarray:  # a model input back in its column's units
        return v * scale[j] + mean[j]

    with np.errstate(over="ignore", invalid="ignore"):  # each axis's limits, and margins
        ends = np.array([raw(g1[[0, -1]], 0), raw(g2[[0, -1]], 1)])
        reach = np.abs(ends).max(axis=1) + 0.2 * (ends[:, 1] - ends[:, 0])
    if not np.isfinite(reach).all():  # columns near 1e308: the axes in the model's units
        # (matplotlib's limits overflowed: "Axis limits cannot be NaN or Inf", or "arange:
        # cannot compute length", and the run, and every --resume of it, ended there)
        names_xy = tuple(f"{name} (standardised)" for name in names_xy)
        mean, scale = np.zeros(2), np.ones(2)

    g1, g2, G1, G2 = raw(g1, 0), raw(g2, 1), raw(G1, 0), raw(G2, 1)
    extent = (g1[0], g1[-1], g2[0], g2[-1])
    ax.imshow(rgba, origin="lower", extent=extent, aspect="auto", interpolation="nearest")
    ax.contour(G1, G2, Z, levels=np.arange(k) + 0.5, colors="k", linewidths=0.8)
    names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    scores = []
    for which, (X, y) in sets.items():
        scores.append(f"{which} {100 * np.mean(model.predict_classes(X) == np.asarray(y)):.1f}%")
        marker, size = MARKERS[which]
        for c in range(k):
            m = np.asarray(y) == c
            if not m.any():
                continue
            ax.scatter(
                raw(X[m, 0], 0), raw(X[m, 1], 1), s=size, c=colors[c], marker=marker,
                edgecolors="k", linewidths=0.4,
                label=f"class {_plain(names[c])} ({which})",
            )  # fmt: skip
    ax.set_xlim(g1[0], g1[-1])
    ax.set_ylim(g2[0], g2[-1])
    ax.set_xlabel(_plain(names_xy[0]))
    ax.set_ylabel(_plain(names_xy[1]))
    ax.set_title(
        f"Decision boundary{': ' + _plain(title) if title else ''} "
        f"(accuracy {', '.join(scores)})\n"
        "shading: the model's confidence in the predicted class",
        fontsize="medium",
    )
    # beside the plot, not over the points
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    _save(fig, path)


def _confidence(model: Any, grid: np.ndarray, k: int) -> np.ndarray:
    """How sure the model is of its predicted class at each row, in [0, 1]: 0 when the
    (normalised) outputs are equal across the ``k`` classes, 1 when one holds everything."""
    out = np.asarray(model.backend.to_numpy(model.predict(grid)), dtype=np.float64)
    if out.shape[1] == 1:  # one output: the probability of class 1
        p = np.clip(out[:, 0], 0.0, 1.0)
        return np.abs(2.0 * p - 1.0)
    out = np.clip(out, 0.0, None)
    total = out.sum(axis=1, keepdims=True)
    p = np.divide(out, total, out=np.full_like(out, 1.0 / k), where=total > 0)
    return np.clip((p.max(axis=1) - 1.0 / k) / (1.0 - 1.0 / k), 0.0, 1.0)


def plot_predicted_vs_true(model: Any, data: Any, path: str | Path) -> bool:
    """Regression: each row's prediction against its true value (test rows, else training
    rows), one panel per output (at most four), with ``predicted = true`` and R^2.

    Parameters
    ----------
    model : MLP
    data : backprop.datasets.Dataset with ``task == "regression"``
    path : str or path-like
        The PNG file to write (atomically).

    Returns
    -------
    bool
        Whether it was drawn: not where a prediction is beyond float64 in the target's
        units, or the values span more than an axis can (targets near 1e308: matplotlib's
        axis limits overflowed, and the run ended with "arange: cannot compute length").
    """
    from ..metrics import r2_score
    from ..preprocessing import in_target_units

    split, X, y = (
        ("test", data.X_test, data.y_test)
        if data.X_test is not None
        else ("training", data.X_train, data.y_train)
    )
    out = np.asarray(model.backend.to_numpy(model.predict(X)), dtype=np.float64)
    with np.errstate(over="ignore"):
        pred = in_target_units(model.preprocessing, out)
    true = np.asarray(y, dtype=np.float64).reshape(pred.shape)
    n_panels = min(pred.shape[1], 4)
    if not np.isfinite(pred).all():
        return False
    with np.errstate(over="ignore"):  # an axis's limits: the values' range plus margins
        lo, hi = np.minimum(true.min(0), pred.min(0)), np.maximum(true.max(0), pred.max(0))
        reach = np.maximum(np.abs(lo), np.abs(hi)) + 0.2 * (hi - lo)
    if not np.isfinite(reach).all():
        return False
    fig = _figure(4.6 * n_panels, 4.4)
    for j in range(n_panels):
        ax = fig.add_subplot(1, n_panels, j + 1)
        ax.scatter(true[:, j], pred[:, j], s=12, alpha=0.6, color="C0", edgecolors="none")
        lo = float(min(true[:, j].min(), pred[:, j].min()))
        hi = float(max(true[:, j].max(), pred[:, j].max()))
        ax.plot([lo, hi], [lo, hi], color="k", linewidth=0.8, label="predicted = true")
        r2 = float(r2_score(true[:, j : j + 1], pred[:, j : j + 1]))
        target = getattr(model.preprocessing, "target", None)  # a CSV file's column
        name = (target or "target") if pred.shape[1] == 1 else f"output {j + 1}"
        shown = _plain(name)
        ax.set_title(f"{shown}: R² {r2:.3f} on {len(true)} {split} rows", fontsize="medium")
        ax.set_xlabel(f"true {shown}")
        ax.set_ylabel(f"predicted {shown}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")
    _save(fig, path)
    return True


def plot_misclassified(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    image_shape: Sequence[int],
    class_names: Sequence[str] | None,
    path: str | Path,
) -> int:
    """A grid of up to 25 misclassified images, titled ``true -> predicted``.

    Parameters
    ----------
    model : MLP
        A classifier whose inputs are the images' pixels.
    X : array (n, prod(image_shape));  y : int array (n,)
    image_shape : sequence of int
        The shape each row of ``X`` is reshaped to for display, e.g. ``(28, 28)``.
    class_names : sequence of str, optional
        Titles name class ``c`` as ``class_names[c]``; None: the class numbers.
    path : str or path-like
        The PNG file to write (atomically).

    Returns
    -------
    int
        How many of the ``n`` images are misclassified.
    """
    pred = model.predict_classes(X)
    wrong = np.flatnonzero(pred != np.asarray(y))
    names = list(class_names) if class_names is not None else None
    shown = wrong[:MAX_IMAGES]
    cols = 5
    rows = max(1, -(-len(shown) // cols))
    fig = _figure(1.6 * cols, 1.75 * rows + 0.5)
    first = f", the first {len(shown)} shown" if len(shown) < len(wrong) else ""
    fig.suptitle(f"Misclassified test images: {len(wrong)} of {len(y)}{first} (true → predicted)")
    if len(shown) == 0:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "none", ha="center", va="center")
        ax.axis("off")
    for i, idx in enumerate(shown):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(np.asarray(X[idx], dtype=np.float64).reshape(tuple(image_shape)), cmap="gray_r")
        t, p = int(y[idx]), int(pred[idx])
        label = (names[t], names[p]) if names is not None else (t, p)
        ax.set_title(f"{_plain(str(label[0]))} → {_plain(str(label[1]))}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, path)
    return int(len(wrong))
