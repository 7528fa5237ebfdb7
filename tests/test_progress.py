"""What a run shows while it trains, and every command's output width: one line per epoch
labelled ``k/N`` in a pipe, a live bar with the right label and honest clocks on a
terminal, nothing over 80 columns and nothing cut short with ``...``."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from backprop import MLP
from backprop.training import TrainState, fit
from backprop.training.progress import ProgressBar, clock, epoch_line

EPOCH_LINE = re.compile(r"^epoch +(\d+)/(\d+) +loss ")


def _data(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, (X[:, 0] * X[:, 1] > 0).astype(int)


def _too_wide_or_cut(text: str) -> list[str]:
    """Lines over 80 columns, or with an ellipsis (click's ``[ARGS]...`` for repeated
    arguments is notation, not a cut)."""
    return [
        line
        for line in text.splitlines()
        if len(line) > 80 or "..." in line.replace("[ARGS]...", "") or "…" in line
    ]


# ------------------------------------------------------------------- not a terminal
def test_piped_five_epoch_run_prints_one_line_per_epoch(tmp_path):
    """The acceptance run: `backprop train --epochs 5 | cat` in a real process."""
    p = subprocess.run(  # (--out relative: a path longer than a line is printed whole, and
        # a long TMPDIR made its 'Saved in' line wider than 80 columns)
        [sys.executable, "-m", "backprop", "train", "--epochs", "5", "--out", "run",
         "--no-plots"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},  # a wide COLUMNS must not widen the lines
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    epochs = [EPOCH_LINE.match(line) for line in p.stdout.splitlines()]
    labels = [(int(m[1]), int(m[2])) for m in epochs if m]
    assert labels == [(k, 5) for k in range(1, 6)]
    assert sum("epoch" in line and "/5" in line for line in p.stdout.splitlines()) == 5
    assert not _too_wide_or_cut(p.stdout + p.stderr), _too_wide_or_cut(p.stdout)
    assert "\x1b[" not in p.stdout  # no cursor movement or colour in a pipe


def test_a_narrow_columns_does_not_thin_a_logs_lines(tmp_path):
    # COLUMNS=60 set in the environment of a run logged to a file dropped the accuracies
    # from every epoch line: a log has no terminal to fit
    lines = {}
    for columns in ("60", "80"):
        p = subprocess.run(
            [sys.executable, "-m", "backprop", "train", "--dataset", "moons", "--epochs", "2",
             "--out", str(tmp_path / columns), "--no-plots"],
            capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": columns},
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        lines[columns] = [
            re.sub(r" +[0-9.]+m?s$", "", line)  # the epoch's time differs between runs
            for line in p.stdout.splitlines()
            if EPOCH_LINE.match(line)
        ]
    assert len(lines["60"]) == 2 and lines["60"] == lines["80"]
    assert all("val acc" in line for line in lines["60"])


def test_fit_progress_true_prints_the_same_lines_and_a_resume_counts_on(capsys):
    X, y = _data()
    model = MLP([2, 8, 2], "tanh", "identity", "cross_entropy", seed=0)
    state = TrainState(model, __import__("backprop").get_optimizer("adam", lr=0.01),
                       np.random.default_rng(0))  # fmt: skip
    fit(model, X, y, epochs=2, batch_size=16, progress=True, state=state,
        validation_fraction=0.25)  # fmt: skip
    fit(model, X, y, epochs=4, batch_size=16, progress=True, state=state,
        validation_fraction=0.25)  # fmt: skip
    out = capsys.readouterr().out
    labels = [m.group(1, 2) for m in map(EPOCH_LINE.match, out.splitlines()) if m]
    assert labels == [("1", "2"), ("2", "2"), ("3", "4"), ("4", "4")]
    assert all(" val loss " in line and " val acc " in line for line in out.splitlines())
    assert not _too_wide_or_cut(out)


def test_progress_false_prints_nothing(capsys):
    X, y = _data()
    MLP([2, 4, 2], seed=0).fit(X, y, epochs=2, progress=False)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("epochs", [1, 300, 99_999])
def test_the_worst_epoch_lines_fit_80_columns(epochs):
    row = {"epoch": epochs, "loss": 1.234567e-05, "accuracy": 1.0, "val_loss": 9.87654e-05,
           "val_accuracy": 0.99999, "time": 12345.6}  # fmt: skip
    line = epoch_line(row, epochs)
    assert len(line) <= 80 and line.startswith(f"epoch {epochs}/{epochs}")
    assert "1.235e-05" in line and "val acc 100.0%" in line
    # a regression row, and a narrow terminal
    short = {"epoch": 3, "loss": 0.5, "val_loss": 0.25, "time": 0.5}
    assert epoch_line(short, 10) == "epoch  3/10  loss    0.5000  val loss    0.2500   0.50s"
    # an epoch of a small table, under a hundredth of a second: it read 0.00s, every epoch
    fast = {**short, "time": 0.00042}
    assert epoch_line(fast, 10) == "epoch  3/10  loss    0.5000  val loss    0.2500   0.4ms"
    narrow = epoch_line(row, epochs, width=60)
    assert len(narrow) <= 60 and "val loss" in narrow and "acc" not in narrow


def test_clock_reads_as_a_clock():
    assert clock(0) == "0:00"
    assert clock(75.2) == "1:15"
    assert clock(3725) == "1:02:05"
    assert clock(None) == "-:--"


# ---------------------------------------------------------------------- a terminal
def _terminal(width: int = 120) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=width, color_system=None), buf


def test_the_live_bar_names_the_epoch_in_progress_and_its_steps():
    console, buf = _terminal()
    bar = ProgressBar(epochs=3, n=1350, batch_size=10, enabled=True, console=console)
    try:
        bar.epoch_start(1)
        for k in range(135):
            bar.step(10 * (k + 1), lambda: 0.5)
        bar.epoch_done({"epoch": 1, "loss": 0.5, "time": 1.0})
        # below the epoch's line, the bar as it is now: printing the line redrew its last
        # rendered frame, up to 1/4 s old ('step   0/135' below a short epoch's line)
        after = buf.getvalue().rsplit("loss    0.5000   1.00s", 1)[1]
        assert "step 135/135" in after and "step   0/135" not in after
        bar.epoch_start(2)  # the label changes when the epoch starts, not when it ends
        for k in range(45):
            bar.step(10 * (k + 1), lambda: 0.25)
        label, right, bar_width, clocks = bar.bar_parts()
        assert label == "epoch 2/3"
        assert right.startswith("step  45/135")
        assert "loss 0.2500" in right
        assert len(label) + 1 + bar_width + 1 + len(right) <= 80
        bar.loss = 2.5e47  # a huge running loss keeps the line's width ('.4f': 48 digits)
        label, right, bar_width, _ = bar.bar_parts()
        assert right.endswith("loss 2.500e+47") and bar_width > 10
        assert "epoch " in clocks and "run " in clocks and clocks.count("left") == 2
        assert len(clocks) <= 80
    finally:
        bar.close()


def test_the_bars_running_loss_weighs_rows_as_the_epoch_line_does(monkeypatch):
    """135 rows in batches of 100: the bar's loss was the plain mean of the two steps'
    losses, the epoch line's the mean over the rows (0.2508 against 0.2504 in a toy run)."""
    from backprop.training import single_process

    shown = []

    class Recording(ProgressBar):
        def step(self, seen, running_loss):
            shown.append(running_loss())
            super().step(seen, running_loss)

    monkeypatch.setattr(single_process, "ProgressBar", Recording)
    X, y = _data(135)
    model = MLP([2, 8, 2], "tanh", "identity", "cross_entropy", seed=0)
    history = model.fit(X, y, optimizer="sgd", lr=0.5, epochs=1, batch_size=100, progress=True)
    assert len(shown) == 2 and shown[-1] == pytest.approx(history["loss"][0], rel=1e-12)


def test_the_clocks_extrapolate_the_epoch_and_the_run():
    """Epoch 2 of 4, a third through after 1 s, epoch 1 took 3 s: 2 s left in the epoch and
    2 + 2 x 3 = 8 s in the run."""
    bar = ProgressBar(epochs=4, n=300, batch_size=10, enabled=True, console=_terminal()[0])
    bar.interactive = False  # no live thread: the clocks alone
    bar.epoch_start(1)
    bar._epoch_t0, bar._run_t0 = 100.0, 100.0
    bar._durations = [3.0]
    bar.epoch, bar._epoch_t0, bar.seen = 2, 103.0, 100
    elapsed, left, run_elapsed, run_left = bar.clocks(now=104.0)
    assert (elapsed, left, run_elapsed, run_left) == (1.0, 2.0, 4.0, 8.0)
    assert bar.bar_parts(now=104.0)[3].endswith("run 0:04 elapsed, 0:08 left")
    # with early stopping the run may end sooner: the default digits run ended at 0:03
    # with '0:05 left' on the clock
    bar.may_stop_early = True
    assert bar.bar_parts(now=104.0)[3].endswith("run 0:04 elapsed, at most 0:08 left")
    bar.seen = 0
    assert bar.clocks(now=104.0)[1] is None  # nothing to extrapolate from yet


def test_the_epoch_loop_says_whether_early_stopping_may_end_the_run(monkeypatch):
    X, y = _data()
    bars = []
    real = ProgressBar.__init__

    def keep(self, *args, **kwargs):
        real(self, *args, **kwargs)
        bars.append(self)

    monkeypatch.setattr(ProgressBar, "__init__", keep)
    for early in (None, 5):
        MLP([2, 3, 2], seed=0).fit(X, y, epochs=1, early_stopping=early, validation_fraction=0.2)
    assert [bar.may_stop_early for bar in bars] == [False, True]


def test_a_terminal_keeps_each_finished_epoch_in_the_scrollback():
    """A real run on a (forced) terminal: the finished epochs' lines are written above the
    live bar, which is erased at the end."""
    console, buf = _terminal(width=80)
    X, y = _data(600)
    model = MLP([2, 8, 2], "tanh", "identity", "cross_entropy", seed=0)
    from backprop.training import single_process

    original = single_process.ProgressBar
    try:
        single_process.ProgressBar = lambda *a, **k: original(*a, **k, console=console)
        model.fit(X, y, optimizer="adam", lr=0.01, epochs=3, batch_size=10, progress=True)
    finally:
        single_process.ProgressBar = original
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())
    kept = [line for line in text.replace("\r", "\n").splitlines() if EPOCH_LINE.match(line)]
    assert [m.group(1) for m in map(EPOCH_LINE.match, kept)] == ["1", "2", "3"]


# ------------------------------------------------------------------- every command
COMMANDS = ("train", "evaluate", "predict", "export", "explain", "gradcheck", "playground")


@pytest.mark.parametrize(
    "args", [["--help"], *[[c, "--help"] for c in COMMANDS]], ids=lambda a: " ".join(a)
)
def test_help_fits_80_columns_and_cuts_nothing(run_cli, monkeypatch, args):
    monkeypatch.setenv("COLUMNS", "200")
    rc, out, _ = run_cli(*args)
    assert rc == 0
    assert not _too_wide_or_cut(out), _too_wide_or_cut(out)


@pytest.mark.parametrize("k, shown", [(3, True), (12, True), (22, False), (23, False),
                                      (300, False)])  # fmt: skip
def test_a_confusion_matrix_too_wide_for_80_columns_points_to_json(k, shown):
    # 22 classes pass the quick width bound (3 cells a column) and are measured; 23 and
    # more are not built at all (300 took 2.1 s to be measured)
    from backprop.cli.render import report_tables

    names = [f"{i:02d}" for i in range(k)]
    report = {"dataset": "d", "split": "test", "n_samples": 10 * k, "accuracy": 0.5,
              "macro_precision": 0.5, "macro_recall": 0.5, "macro_f1": 0.5,
              "per_class": [{"class": n, "precision": 0.5, "recall": 0.5, "f1": 0.5,
                             "support": 10} for n in names],
              "confusion_matrix": [[10 * (i == j) for j in range(k)]
                                   for i in range(k)]}  # fmt: skip
    buffer = io.StringIO()
    Console(file=buffer, width=80).print(report_tables(report, True))
    out = buffer.getvalue()
    assert not _too_wide_or_cut(out), _too_wide_or_cut(out)
    assert ("Confusion matrix (rows: true class" in out) is shown
    assert (f"matrix: {k} x {k}, wider than 80 columns; evaluate --json prints it" in
            " ".join(out.split())) is not shown  # fmt: skip


def test_mnist_evaluation_is_whole_and_narrow_when_piped(run_cli, tmp_path, monkeypatch):
    """A 10-class confusion matrix and the per-class table within 80 columns, no cell cut."""
    data = Path(os.environ.get("BACKPROP_DATA", "/nonexistent")) / "mnist"
    if not data.is_dir():
        pytest.skip("MNIST files are not here (set BACKPROP_DATA)")
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli("train", "--dataset", "mnist", "--n-samples", "2000", "--layers",
                         "784,16,10", "--epochs", "1", "--out", "m", "--no-plots")  # fmt: skip
    assert rc == 0, err
    rc, out, _ = run_cli("evaluate", "m")
    assert rc == 0
    assert "Confusion matrix" in out and "Per class" in out
    assert not _too_wide_or_cut(out), _too_wide_or_cut(out)
    rows = [line.split() for line in out.splitlines() if re.match(r"^[0-9] +\d", line)]
    assert len(rows) == 20  # ten rows of the matrix, ten of the per-class table
    assert sum(int(v) for r in rows[:10] for v in r[1:]) == 10_000


def test_gradcheck_output_fits_80_columns(run_cli):
    rc, out, _ = run_cli("gradcheck", "--dataset", "iris", "--layers", "4,8,3", "--loss",
                         "cross_entropy")  # fmt: skip
    assert rc == 0 and "Gradient check: 4-8-3" in out
    assert not _too_wide_or_cut(out), _too_wide_or_cut(out)
