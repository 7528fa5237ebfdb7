"""Reproduce published accuracies with backprop's MLP and fit loop, and record them.

Usage::

    BACKPROP_DATA=../shared/data python scripts/reproduce.py nielsen1
    python scripts/reproduce.py nielsen3 modern mnist1d digits
    python scripts/reproduce.py all
    python scripts/reproduce.py nielsen1 --seeds 5               # seeds 0-4, judged by the median
    python scripts/reproduce.py digits --epochs 2 --no-write     # a quick smoke run

Each experiment trains once, evaluates the test set after every epoch, prints the best and
the final test accuracy and the mean epoch time, and (unless ``--no-write``) replaces its
row in the table of ``docs/results.md``. These take minutes each; they are not tests.

=========  =================================================================  ========
name       setup                                                              target
=========  =================================================================  ========
nielsen1   Nielsen ch. 1 network.py: [784, 30, 10], sigmoid, quadratic cost,  >= 95.0
           SGD eta 3.0, batch 10, 30 epochs, first 50,000 training images,    (best)
           weights and biases N(0, 1) (``--zero-biases``: biases 0)
nielsen3   Nielsen ch. 3 network2.py: [784, 30, 10], sigmoid hidden, sigmoid  >= 96.0
           cross-entropy on the logits, SGD eta 0.5, batch 10, 30 epochs,     (best)
           lambda = 5.0 (weight decay lambda/n), weights N(0, 1/n_in),
           biases N(0, 1), first 50,000 training images
modern     [784, 512, 512, 10] ReLU, dropout 0.2, softmax cross-entropy,      >= 98.3
           Adam lr 1e-3 cosine-decayed to 0 over 20 epochs, batch 128,        (final)
           He-normal weights, float32, all 60,000 training images
mnist1d    MNIST-1D (Greydanus 2020) MLP: 40 -> 100 -> 100 -> 10 ReLU,        >= 66
           Adam lr 1e-2, batch 100, 6,000 steps (150 epochs of 4,000),        (final)
           PyTorch's default nn.Linear initialisation as in the paper's code
digits     scikit-learn digits, 25% stratified hold-out: [64, 256, 128, 10]   >= 97
           ReLU, dropout 0.2, softmax cross-entropy, Adam lr 1e-3, batch 32,  (final)
           100 epochs (architecture chosen on a validation split of the
           training rows, never on the test rows)
=========  =================================================================  ========

Nielsen's numbers are the best epoch on the test set (how the book reports them), so
``nielsen1``/``nielsen3`` are judged by the best epoch; the others by the final epoch.
With ``--seeds K`` an experiment runs for seeds ``seed .. seed+K-1`` and is judged by the
median over the runs; its row (``name xK``) also gives the range.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backprop import MLP, get_optimizer, get_schedule
from backprop.datasets import Dataset, DatasetError, load_dataset
from backprop.training import History, fit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


@dataclass
class Setup:
    """One experiment: how to build the data, the model and the optimizer."""

    name: str
    title: str
    reference: str  # the published number
    target: float  # our acceptance threshold, percent
    judged_by: str  # "best" or "final"
    epochs: int
    batch_size: int
    load: Callable[[argparse.Namespace], Dataset]
    build: Callable[[int], MLP]
    optimizer: Callable[[int], object]
    normal_biases: bool = False  # draw biases from N(0, 1), as Nielsen's code does


def _normal_biases(net: MLP, seed: int) -> MLP:
    """Nielsen's network.py / network2.py draw biases from N(0, 1); ours start at 0."""
    rng = np.random.default_rng([seed, 1])
    state = net.state_dict()
    for name, value in state.items():
        if name.endswith(".b"):
            state[name] = rng.standard_normal(value.shape).astype(value.dtype)
    net.load_state_dict(state)
    return net


def _torch_linear_init(net: MLP, seed: int) -> MLP:
    """PyTorch's default for ``nn.Linear`` (used by the MNIST-1D paper's code): weights and
    biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    rng = np.random.default_rng([seed, 2])
    state = net.state_dict()
    for name, value in state.items():
        fan_in = state[name[:-1] + "W"].shape[0]
        bound = 1.0 / np.sqrt(fan_in)
        state[name] = rng.uniform(-bound, bound, value.shape).astype(value.dtype)
    net.load_state_dict(state)
    return net


def _mnist(n_samples: int | None) -> Callable[[argparse.Namespace], Dataset]:
    return lambda args: load_dataset("mnist", data_dir=args.data_dir, n_samples=n_samples)


SETUPS: dict[str, Setup] = {
    "nielsen1": Setup(
        "nielsen1",
        "Nielsen ch.1 (network.py) [784,30,10] sigmoid, quadratic cost",
        "95.42% best",
        95.0,
        "best",
        30,
        10,
        _mnist(50000),
        lambda seed: MLP(
            [784, 30, 10], "sigmoid", "sigmoid", "l2", init="normal", init_scale=1.0, seed=seed
        ),
        lambda n_train: get_optimizer("sgd", lr=3.0),
        normal_biases=True,
    ),
    "nielsen3": Setup(
        "nielsen3",
        "Nielsen ch.3 (network2.py) [784,30,10] cross-entropy, L2 lambda=5.0",
        "96.49% best",
        96.0,
        "best",
        30,
        10,
        _mnist(50000),
        lambda seed: MLP(
            [784, 30, 10],
            "sigmoid",
            "identity",
            "binary_cross_entropy",
            init="lecun_normal",
            seed=seed,
        ),
        # network2.py's update: w <- (1 - eta lambda / n) w - eta mean_batch(grad); our
        # weight_decay adds weight_decay * W to the batch-mean gradient: weight_decay = lambda/n.
        lambda n_train: get_optimizer("sgd", lr=0.5, weight_decay=5.0 / n_train),
        normal_biases=True,
    ),
    "modern": Setup(
        "modern",
        "Modern MLP [784,512,512,10] ReLU, dropout 0.2, Adam + cosine",
        ">= 98.3% (issue target)",
        98.3,
        "final",
        20,
        128,
        _mnist(None),
        lambda seed: MLP(
            [784, 512, 512, 10],
            "relu",
            "identity",
            "cross_entropy",
            init="he_normal",
            dropout=0.2,
            dtype="float32",
            seed=seed,
        ),
        lambda n_train: get_optimizer(
            "adam", lr=1e-3, schedule=get_schedule("cosine", t_max=SETUPS["modern"].epochs)
        ),
    ),
    "mnist1d": Setup(
        "mnist1d",
        "MNIST-1D MLP 40-100-100-10 ReLU, Adam 1e-2, 6000 steps",
        "68 +- 2% (Greydanus 2020)",
        66.0,
        "final",
        150,
        100,
        lambda args: load_dataset("mnist1d"),
        lambda seed: _torch_linear_init(
            MLP([40, 100, 100, 10], "relu", "identity", "cross_entropy", seed=seed), seed
        ),
        lambda n_train: get_optimizer("adam", lr=1e-2),
    ),
    "digits": Setup(
        "digits",
        "scikit-learn digits, 25% stratified hold-out, [64,256,128,10] ReLU, dropout 0.2",
        ">= 97% (issue target)",
        97.0,
        "final",
        100,
        32,
        lambda args: load_dataset("digits", seed=args.seed, test_fraction=0.25),
        lambda seed: MLP(
            [64, 256, 128, 10],
            "relu",
            "identity",
            "cross_entropy",
            init="he_normal",
            dropout=0.2,
            seed=seed,
        ),
        lambda n_train: get_optimizer("adam", lr=1e-3),
    ),
}


@dataclass
class Result:
    """One run's test accuracies (percent) and times (seconds)."""

    name: str
    best: float
    best_epoch: int
    final: float
    epochs: int
    epoch_time: float
    total_time: float
    met: bool
    judged: float


def run(setup: Setup, args: argparse.Namespace, seed: int) -> tuple[Result, History]:
    """Train ``setup`` once; the test set is the validation data (evaluated each epoch)."""
    ds = setup.load(args)
    assert ds.X_test is not None
    epochs = setup.epochs if args.epochs is None else args.epochs
    net = setup.build(seed)
    if setup.normal_biases and not args.zero_biases:
        net = _normal_biases(net, seed)
    opt = setup.optimizer(ds.n_train)
    print(
        f"{setup.name}: {setup.title}\n  {ds.n_train} train / {ds.n_test} test rows, "
        f"{net.n_parameters} parameters, {epochs} epochs of batch {setup.batch_size}, "
        f"seed {seed}{', zero biases' if setup.normal_biases and args.zero_biases else ''}",
        flush=True,
    )

    def report(state) -> None:
        row = state.history.epochs[-1]
        print(
            f"  epoch {row['epoch']:3d}  loss {row['loss']:.4f}  "
            f"test acc {100 * row['val_accuracy']:.2f}%  {row['time']:.1f}s",
            flush=True,
        )

    start = time.perf_counter()
    history = fit(
        net,
        ds.X_train,
        ds.targets(),
        optimizer=opt,
        epochs=epochs,
        batch_size=setup.batch_size,
        seed=seed,
        validation_data=(ds.X_test, ds.targets("test")),
        callbacks=[report],
    )
    total = time.perf_counter() - start
    accs = [100 * a for a in history["val_accuracy"]]
    best_i = int(np.argmax(accs))
    judged = accs[best_i] if setup.judged_by == "best" else accs[-1]
    result = Result(
        name=setup.name,
        best=accs[best_i],
        best_epoch=best_i + 1,
        final=accs[-1],
        epochs=len(accs),
        epoch_time=float(np.mean(history["time"])),
        total_time=total,
        met=judged >= setup.target,
        judged=judged,
    )
    verdict = "met" if result.met else "MISSED"
    print(
        f"{setup.name}: best {result.best:.2f}% (epoch {result.best_epoch}), final "
        f"{result.final:.2f}%, {result.epoch_time:.1f} s/epoch, {total:.0f} s in all; "
        f"target >= {setup.target}% ({setup.judged_by}): {verdict}",
        flush=True,
    )
    return result, history


def machine() -> str:
    """CPU model, cores, Python and NumPy versions, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores (shared), Python {platform.python_version()}, "
        f"NumPy {np.__version__}"
    )


def command(name: str, args: argparse.Namespace) -> str:
    parts = ["python scripts/reproduce.py", name]
    if args.seed != 0:
        parts.append(f"--seed {args.seed}")
    if args.epochs is not None:
        parts.append(f"--epochs {args.epochs}")
    if args.seeds > 1:
        parts.append(f"--seeds {args.seeds}")
    if args.zero_biases and SETUPS[name].normal_biases:
        parts.append("--zero-biases")
    return " ".join(parts)


def write_row(path: Path, setup: Setup, results: list[Result], args: argparse.Namespace) -> None:
    """Replace (or add) this experiment's row in the results table of ``path``.

    One run: its judged number, best epoch and final accuracy. Several seeds: the median of
    the judged numbers, and their range.
    """
    text = path.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{path} has no results table between {START} and {END}")
    head, rest = text.split(START, 1)
    table, tail = rest.split(END, 1)
    lines = [ln for ln in table.strip("\n").splitlines() if ln.strip()]
    header = lines[:2]
    key = setup.name if len(results) == 1 else f"{setup.name} x{len(results)}"
    if args.zero_biases and setup.normal_biases:
        key += " zero-biases"
    rows = [ln for ln in lines[2:] if not re.match(rf"\|\s*{re.escape(key)}\s*\|", ln)]
    judged = [r.judged for r in results]
    median = float(np.median(judged))
    met = median >= setup.target
    if len(results) == 1:
        r = results[0]
        detail = f"{r.best:.2f}% @ {r.best_epoch} / {r.final:.2f}%"
        measured = f"{r.judged:.2f}% ({setup.judged_by})"
    else:
        seeds = f"seeds {args.seed}-{args.seed + len(results) - 1}"
        detail = f"{seeds}: " + ", ".join(f"{v:.2f}" for v in judged)
        measured = f"{median:.2f}% (median {setup.judged_by}; {min(judged):.2f}-{max(judged):.2f})"
    epoch_time = float(np.mean([r.epoch_time for r in results]))
    rows.append(
        f"| {key} | `{command(setup.name, args)}` | {setup.reference} | {measured} | {detail} | "
        f"{'yes' if met else '**no**'} | {epoch_time:.{1 if epoch_time >= 1 else 3}f} s | "
        f"{_dt.date.today().isoformat()} | {machine()} |"
    )
    order = list(SETUPS)
    rows.sort(key=lambda ln: next((i for i, n in enumerate(order) if ln.startswith(f"| {n}")), 99))
    path.write_text(
        head + START + "\n" + "\n".join(header + rows) + "\n" + END + tail, encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=[*SETUPS, "all"], help="experiments to run")
    parser.add_argument("--seed", type=int, default=0, help="weights, shuffles and splits")
    parser.add_argument("--seeds", type=int, default=1, help="run seeds seed..seed+K-1")
    parser.add_argument("--epochs", type=int, default=None, help="override (smoke runs)")
    parser.add_argument(
        "--zero-biases",
        action="store_true",
        help="nielsen1/3: keep backprop's zero initial biases instead of Nielsen's N(0, 1)",
    )
    parser.add_argument(
        "--data-dir", default=None, help="folder holding mnist/ (else BACKPROP_DATA)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not edit docs/results.md")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results page to update")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    names = list(SETUPS) if "all" in args.names else list(dict.fromkeys(args.names))
    missed = []
    for name in names:
        setup = SETUPS[name]
        try:
            results = [run(setup, args, args.seed + k)[0] for k in range(args.seeds)]
        except DatasetError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        median = float(np.median([r.judged for r in results]))
        if args.seeds > 1:
            print(f"{name}: median over {args.seeds} seeds {median:.2f}% ({setup.judged_by})")
        if median < setup.target:
            missed.append(name)
        if not args.no_write:
            write_row(args.results, setup, results, args)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
