"""Reproduce published accuracies with backprop's MLP and fit loop, and record them.

Usage::

    BACKPROP_DATA=/data python scripts/reproduce.py nielsen1     # seeds 0-4, the median
    python scripts/reproduce.py nielsen3 modern mnist1d digits
    python scripts/reproduce.py all
    python scripts/reproduce.py nielsen1 --zero-biases            # biases start at 0
    python scripts/reproduce.py digits --seeds 1 --epochs 2 --no-write   # a quick smoke run
    python scripts/reproduce.py mnist1d digits --select           # the model choices
    python scripts/reproduce.py all --fingerprints                # recompute the fingerprints

Each experiment trains once per seed (5 by default), evaluates the test set after every
epoch, prints the best and the final test accuracy and the mean epoch time, and (unless
``--no-write``) replaces its row in the table of ``docs/results.md``, judged by the median
over the seeds; a shortened run (``--epochs``, ``--seeds``, ``--seed``) writes its row only
into a ``--results FILE`` given. These take minutes each; they are not tests.

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
           He-normal weights, zero biases, float32, all 60,000 training images
mnist1d    MNIST-1D (Greydanus 2020) MLP: 40 -> 100 -> 100 -> 10 ReLU,        >= 66
           Adam lr 1e-2, batch 100, 6,000 steps (150 epochs of 4,000),        (final)
           the initialiser chosen on a validation split (``--select``)
digits     scikit-learn digits, 25% stratified hold-out: [64, 256, 128, 10]   >= 97
           ReLU, dropout 0.2, softmax cross-entropy, Adam lr 1e-3, batch 32,  (final)
           100 epochs (architecture chosen on a validation split of the
           training rows, never on the test rows: ``--select``)
=========  =================================================================  ========

Nielsen's numbers are the best epoch on the test set (how the book reports them), so
``nielsen1``/``nielsen3`` are judged by the best epoch; the others by the final epoch.

**Fingerprints.** Each row also records the numbers of a short run, seed 0: the setup's
model, optimizer and data, trained by ``fit`` for the first ``fingerprint_steps`` steps
(200; 5 for ``modern``, whose steps are 100 times larger) on as many rows, BLAS on one
thread; the mean training loss of those steps (10 significant digits) and the first 10 hex
digits of the SHA-256 of the parameters after them.
``tests/test_results.py`` recomputes them (a few seconds): any change to the engine's
numerics, down to one rounding, fails it until the table is regenerated on the new engine.
The hash is compared where the row's ``machine`` ends with this one's :func:`kernels`
(NumPy's SIMD target and the BLAS core decide the last bits); elsewhere the loss is.

**Model choices.** ``--select`` trains each candidate of a setup (``Setup.candidates``) on
80% of the training rows and scores the other 20% (a seeded split per seed), never the test
rows, and prints the median over the seeds; the setup uses the winner.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import functools
import hashlib
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
    """One experiment: how to build the data, the model and the optimizer.

    ``build(seed, bias_init)`` makes the model; ``bias_init`` is the setup's own
    (``biases``) unless ``--zero-biases`` asks for ``"zeros"``. ``candidates`` (name ->
    ``build``) are the alternatives ``--select`` compares on a validation split."""

    name: str
    title: str
    reference: str  # the published number
    target: float  # our acceptance threshold, percent
    judged_by: str  # "best" or "final"
    epochs: int
    batch_size: int
    load: Callable[[str | None, int], Dataset]  # (data_dir, seed)
    build: Callable[[int, str], MLP]
    optimizer: Callable[[int], object]
    biases: str = "zeros"
    fingerprint_steps: int = 200
    candidates: dict[str, Callable[[int, str], MLP]] = field(default_factory=dict)


@functools.lru_cache(maxsize=8)
def _load(name: str, data_dir: str | None, seed: int, n_samples: int | None) -> Dataset:
    kwargs = {"seed": seed, "test_fraction": 0.25} if name == "digits" else {}
    if name == "mnist":
        kwargs = {"data_dir": data_dir, "n_samples": n_samples}
    return load_dataset(name, **kwargs)


def _torch_linear(net: MLP, seed: int) -> MLP:
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


def _mnist1d(init: str, bias_init: str) -> Callable[[int, str], MLP]:
    def build(seed: int, biases: str) -> MLP:
        kw = dict(init="he_normal" if init == "torch_linear" else init, seed=seed)
        net = MLP([40, 100, 100, 10], "relu", "identity", "cross_entropy", **kw,
                  bias_init=bias_init if biases != "zeros" else "zeros")  # fmt: skip
        return _torch_linear(net, seed) if init == "torch_linear" else net

    return build


def _digits(hidden: tuple[int, ...], dropout: float = 0.0) -> Callable[[int, str], MLP]:
    def build(seed: int, biases: str) -> MLP:
        return MLP([64, *hidden, 10], "relu", "identity", "cross_entropy", init="he_normal",
                   bias_init=biases, dropout=dropout, seed=seed)  # fmt: skip

    return build


#: MNIST-1D's initialisers compared by ``--select`` (the winner is the setup's ``build``).
MNIST1D_CANDIDATES = {
    "PyTorch nn.Linear default, U(+-1/sqrt(fan_in)) weights and biases": _mnist1d(
        "torch_linear", "uniform"
    ),
    "lecun_normal, zero biases": _mnist1d("lecun_normal", "zeros"),
    "xavier_uniform, zero biases": _mnist1d("xavier_uniform", "zeros"),
    "he_normal (init='auto'), zero biases": _mnist1d("he_normal", "zeros"),
    "he_normal, uniform biases": _mnist1d("he_normal", "uniform"),
}
#: digits' architectures compared by ``--select``.
DIGITS_CANDIDATES = {
    "[64, 128, 10]": _digits((128,)),
    "[64, 128, 10], dropout 0.2": _digits((128,), 0.2),
    "[64, 256, 10], dropout 0.2": _digits((256,), 0.2),
    "[64, 256, 128, 10], dropout 0.2": _digits((256, 128), 0.2),
    "[64, 256, 128, 10]": _digits((256, 128)),
}

SETUPS: dict[str, Setup] = {
    "nielsen1": Setup(
        "nielsen1",
        "Nielsen ch.1 (network.py) [784,30,10] sigmoid, quadratic cost",
        "95.42% best",
        95.0,
        "best",
        30,
        10,
        lambda data_dir, seed: _load("mnist", data_dir, 0, 50000),
        lambda seed, biases: MLP(
            [784, 30, 10],
            "sigmoid",
            "sigmoid",
            "l2",
            init="normal",
            init_scale=1.0,
            bias_init=biases,
            seed=seed,
        ),  # fmt: skip
        lambda n_train: get_optimizer("sgd", lr=3.0),
        biases="normal",  # Nielsen's network.py draws biases from N(0, 1) too
    ),
    "nielsen3": Setup(
        "nielsen3",
        "Nielsen ch.3 (network2.py) [784,30,10] cross-entropy, L2 lambda=5.0",
        "96.49% best",
        96.0,
        "best",
        30,
        10,
        lambda data_dir, seed: _load("mnist", data_dir, 0, 50000),
        lambda seed, biases: MLP(
            [784, 30, 10],
            "sigmoid",
            "identity",
            "binary_cross_entropy",
            init="lecun_normal",
            bias_init=biases,
            seed=seed,
        ),  # fmt: skip
        # network2.py's update: w <- (1 - eta lambda / n) w - eta mean_batch(grad); our
        # weight_decay adds weight_decay * W to the batch-mean gradient: weight_decay = lambda/n.
        lambda n_train: get_optimizer("sgd", lr=0.5, weight_decay=5.0 / n_train),
        biases="normal",
    ),
    "modern": Setup(
        "modern",
        "Modern MLP [784,512,512,10] ReLU, dropout 0.2, Adam + cosine",
        ">= 98.3% (issue target)",
        98.3,
        "final",
        20,
        128,
        lambda data_dir, seed: _load("mnist", data_dir, 0, None),
        lambda seed, biases: MLP(
            [784, 512, 512, 10],
            "relu",
            "identity",
            "cross_entropy",
            init="he_normal",
            bias_init=biases,
            dropout=0.2,
            dtype="float32",
            seed=seed,
        ),  # fmt: skip
        lambda n_train: get_optimizer(
            "adam", lr=1e-3, schedule=get_schedule("cosine", t_max=SETUPS["modern"].epochs)
        ),
        fingerprint_steps=5,
    ),
    "mnist1d": Setup(
        "mnist1d",
        "MNIST-1D MLP 40-100-100-10 ReLU, Adam 1e-2, 6000 steps",
        "68 +- 2% (Greydanus 2020)",
        66.0,
        "final",
        150,
        100,
        lambda data_dir, seed: _load("mnist1d", None, 0, None),
        # chosen by --select on a validation split (docs/results.md)
        MNIST1D_CANDIDATES["PyTorch nn.Linear default, U(+-1/sqrt(fan_in)) weights and biases"],
        lambda n_train: get_optimizer("adam", lr=1e-2),
        candidates=MNIST1D_CANDIDATES,  # (its biases are drawn with its weights)
    ),
    "digits": Setup(
        "digits",
        "scikit-learn digits, 25% stratified hold-out, [64,256,128,10] ReLU, dropout 0.2",
        ">= 97% (issue target)",
        97.0,
        "final",
        100,
        32,
        lambda data_dir, seed: _load("digits", None, seed, None),
        DIGITS_CANDIDATES["[64, 256, 128, 10], dropout 0.2"],
        lambda n_train: get_optimizer("adam", lr=1e-3),
        candidates=DIGITS_CANDIDATES,
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


def _biases(setup: Setup, args: argparse.Namespace) -> str:
    return "zeros" if args.zero_biases else setup.biases


def run(setup: Setup, args: argparse.Namespace, seed: int) -> tuple[Result, History]:
    """Train ``setup`` once; the test set is the validation data (evaluated each epoch)."""
    ds = setup.load(args.data_dir, seed)
    assert ds.X_test is not None
    epochs = setup.epochs if args.epochs is None else args.epochs
    net = setup.build(seed, _biases(setup, args))
    opt = setup.optimizer(ds.n_train)
    print(
        f"{setup.name}: {setup.title}\n  {ds.n_train} train / {ds.n_test} test rows, "
        f"{net.n_parameters} parameters, {epochs} epochs of batch {setup.batch_size}, "
        f"seed {seed}, biases {net.config.bias_init}",
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


def fingerprint(setup: Setup, zero_biases: bool = False, data_dir: str | None = None) -> str:
    """``"<loss> <hash>"``: seed 0's model trained by ``fit`` for the first
    ``setup.fingerprint_steps`` steps on as many rows of the training data (one epoch, the
    setup's batch size, optimizer and seed-0 shuffle): the mean loss of those steps to 10
    significant digits, and the first 10 hex digits of the SHA-256 of the parameters (in
    name order) after them."""
    ds = setup.load(data_dir, 0)
    net = setup.build(0, "zeros" if zero_biases else setup.biases)
    n = setup.fingerprint_steps * setup.batch_size
    with one_blas_thread():  # OpenBLAS rounds float32 products by its thread count
        history = fit(net, ds.X_train[:n], ds.targets()[:n],
                      optimizer=setup.optimizer(ds.n_train), epochs=1,
                      batch_size=setup.batch_size, seed=0)  # fmt: skip
    params = net.state_dict()
    digest = hashlib.sha256(b"".join(params[k].tobytes() for k in sorted(params)))
    return f"{history['loss'][0]:.10g} {digest.hexdigest()[:10]}"


def one_blas_thread() -> contextlib.AbstractContextManager:
    """The BLAS library limited to one thread (threadpoolctl, in the test extra), so that a
    fingerprint does not depend on the machine's core count: ``modern``'s float32 products
    round differently with 1 and 2 OpenBLAS threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def select(setup: Setup, args: argparse.Namespace, seeds: list[int]) -> dict[str, list[float]]:
    """Each candidate's final accuracy (percent) on a validation split of the training rows,
    per seed: 20% held out by a generator seeded from the seed, stratified by class."""
    scores: dict[str, list[float]] = {name: [] for name in setup.candidates}
    epochs = setup.epochs if args.epochs is None else args.epochs
    for seed in seeds:
        ds = setup.load(args.data_dir, seed)
        y = np.asarray(ds.y_train)
        rng = np.random.default_rng([seed, 0x5E1EC7])
        val = np.concatenate(
            [
                rng.permutation(np.flatnonzero(y == c))[: round(0.2 * np.sum(y == c))]
                for c in np.unique(y)
            ]  # fmt: skip
        )
        tr = np.setdiff1d(np.arange(y.size), val)
        T = ds.targets()
        for name, build in setup.candidates.items():
            net = build(seed, setup.biases)
            history = fit(net, ds.X_train[tr], T[tr], optimizer=setup.optimizer(tr.size),
                          epochs=epochs, batch_size=setup.batch_size, seed=seed,
                          validation_data=(ds.X_train[val], T[val]))  # fmt: skip
            scores[name].append(100 * history["val_accuracy"][-1])
            print(f"  {setup.name} seed {seed}: {name}: {scores[name][-1]:.2f}%", flush=True)
    print(f"\n{setup.name}: validation accuracy (final epoch), seeds {seeds[0]}-{seeds[-1]}")
    print("| candidate | median | range | per seed |\n|---|---|---|---|")
    for name, values in sorted(scores.items(), key=lambda kv: -float(np.median(kv[1]))):
        print(f"| {name} | {np.median(values):.2f}% | {min(values):.2f}-{max(values):.2f} | "
              f"{', '.join(f'{v:.2f}' for v in values)} |")  # fmt: skip
    return scores


def kernels() -> str:
    """What rounds a fingerprint's last bits besides the engine, in one phrase: NumPy's
    version and the SIMD target its ufuncs dispatch to on this CPU (an AVX-512 CPU's
    ``np.exp`` and ``np.tanh`` round differently from an AVX2 one's), and the BLAS library,
    version and core type (threadpoolctl). ``tests/test_results.py`` compares a fingerprint
    bit for bit only where this phrase is the one its row was measured with."""
    simd = "SIMD unknown"
    try:
        from numpy._core import _multiarray_umath as umath  # NumPy 2 keeps them here
    except ImportError:
        umath = None
    dispatched = getattr(umath, "__cpu_dispatch__", None)
    features = getattr(umath, "__cpu_features__", None)
    if dispatched is not None and features is not None:
        active = [target for target in dispatched if features.get(target)]
        simd = active[-1] if active else "baseline"
    try:  # NumPy's own BLAS: SciPy or PyTorch may have loaded others into the process
        version = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["version"]
    except (KeyError, TypeError):
        version = None
    blas = "BLAS unknown"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = list
    for lib in threadpool_info():
        if lib.get("user_api") == "blas" and lib.get("version") == version:
            blas = f"{lib['internal_api']} {version} {lib.get('architecture')}"
            break
    return f"NumPy {np.__version__} {simd}, {blas}"


def machine() -> str:
    """CPU model, cores, Python version and :func:`kernels`, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores (shared), Python {platform.python_version()}, {kernels()}"
    )


def command(name: str, args: argparse.Namespace) -> str:
    parts = ["python scripts/reproduce.py", name]
    if args.seed != 0:
        parts.append(f"--seed {args.seed}")
    if args.epochs is not None:
        parts.append(f"--epochs {args.epochs}")
    if args.seeds != 5:
        parts.append(f"--seeds {args.seeds}")
    if args.zero_biases and SETUPS[name].biases != "zeros":
        parts.append("--zero-biases")
    return " ".join(parts)


def row_key(setup: Setup, n_seeds: int, zero_biases: bool) -> str:
    """The table's name for a row: ``nielsen1 x5``, ``nielsen1 x5 zero-biases``."""
    key = setup.name if n_seeds == 1 else f"{setup.name} x{n_seeds}"
    return key + (" zero-biases" if zero_biases and setup.biases != "zeros" else "")


def parse_key(key: str) -> tuple[Setup, bool]:
    """The setup and ``zero_biases`` of a row's name (the inverse of :func:`row_key`)."""
    m = re.fullmatch(r"(\w+)(?: x\d+)?( zero-biases)?", key.strip())
    if m is None or m.group(1) not in SETUPS:
        raise ValueError(f"not a row of this script: {key!r}")
    return SETUPS[m.group(1)], m.group(2) is not None


def write_row(path: Path, setup: Setup, results: list[Result], args: argparse.Namespace) -> None:
    """Replace (or add) this experiment's row in the results table of ``path``.

    One run: its judged number, best epoch and final accuracy. Several seeds: the median of
    the judged numbers, and their range. And the fingerprint of the setup."""
    text = path.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{path} has no results table between {START} and {END}")
    head, rest = text.split(START, 1)
    table, tail = rest.split(END, 1)
    lines = [ln for ln in table.strip("\n").splitlines() if ln.strip()]
    header = lines[:2]
    zero = args.zero_biases and setup.biases != "zeros"
    key = row_key(setup, len(results), args.zero_biases)
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
        f"{'yes' if met else '**no**'} | `{fingerprint(setup, zero, args.data_dir)}` | "
        f"{epoch_time:.{1 if epoch_time >= 1 else 3}f} s | "
        f"{_dt.date.today().isoformat()} | {machine()} |"
    )
    order = list(SETUPS)
    rows.sort(key=lambda ln: next((i for i, n in enumerate(order) if ln.startswith(f"| {n}")), 99))
    path.write_text(
        head + START + "\n" + "\n".join(header + rows) + "\n" + END + tail, encoding="utf-8"
    )


def write_fingerprints(path: Path, data_dir: str | None, names: list[str]) -> None:
    """Recompute the fingerprints of the rows of ``names`` in place (after a deliberate
    numerics change, the table's numbers must be regenerated too: this alone does not make
    them current). Only with the kernels a row was measured with (its ``machine`` column
    ends with :func:`kernels`): a hash computed with others is not the row's, and would put
    the wrong bits under its machine."""
    text = path.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{path} has no results table between {START} and {END}")
    head, rest = text.split(START, 1)
    table, tail = rest.split(END, 1)
    here = kernels()
    out = []
    for line in table.strip("\n").splitlines():
        cells = line.split("|")
        if len(cells) > 8 and cells[7].strip().startswith("`"):
            setup, zero = parse_key(cells[1])
            if setup.name in names:
                if not cells[-2].strip().endswith(here):
                    raise SystemExit(
                        f"{path}: the {cells[1].strip()} row was measured with other kernels "
                        f"({cells[-2].strip()}); here: {here}. Its hash cannot be recomputed "
                        "here: regenerate the row (python scripts/reproduce.py NAME), or run "
                        "where NumPy dispatches as it did (NPY_DISABLE_CPU_FEATURES)"
                    )
                cells[7] = f" `{fingerprint(setup, zero, data_dir)}` "
        out.append("|".join(cells))
    path.write_text(head + START + "\n" + "\n".join(out) + "\n" + END + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=[*SETUPS, "all"], help="experiments to run")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--seeds", type=int, default=5, help="run seeds seed..seed+K-1")
    parser.add_argument("--epochs", type=int, default=None, help="override (smoke runs)")
    parser.add_argument(
        "--zero-biases",
        action="store_true",
        help="nielsen1/3: start the biases at 0 instead of Nielsen's N(0, 1)",
    )
    parser.add_argument(
        "--data-dir", default=None, help="folder holding mnist/ (else BACKPROP_DATA)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not edit docs/results.md")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="the results page to update [default: docs/results.md, for runs of the table's "
        "budget: 5 seeds from 0, every epoch]",
    )
    parser.add_argument(
        "--select", action="store_true", help="compare the setup's candidates on validation rows"
    )
    parser.add_argument(
        "--fingerprints", action="store_true", help="only recompute the table's fingerprints"
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    results_page = RESULTS if args.results is None else args.results
    # a shortened run (a smoke test) is no row of the published table, unless asked for:
    # it was appended to docs/results.md, as a failing row, by default
    shortened = args.epochs is not None or args.seeds != 5 or args.seed != 0
    names = list(SETUPS) if "all" in args.names else list(dict.fromkeys(args.names))
    if args.fingerprints:
        write_fingerprints(results_page, args.data_dir, names)
        return 0
    seeds = list(range(args.seed, args.seed + args.seeds))
    if args.select:
        for name in names:
            if SETUPS[name].candidates:
                select(SETUPS[name], args, seeds)
        return 0
    missed = []
    for name in names:
        setup = SETUPS[name]
        try:
            results = [run(setup, args, seed)[0] for seed in seeds]
        except DatasetError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        median = float(np.median([r.judged for r in results]))
        if args.seeds > 1:
            print(f"{name}: median over {args.seeds} seeds {median:.2f}% ({setup.judged_by})")
        if median < setup.target:
            missed.append(name)
        if args.no_write:
            continue
        if shortened and args.results is None:
            print(
                f"{name}: not written to {RESULTS.relative_to(ROOT)}: a shortened run (--epochs, "
                "--seeds or --seed); give --results FILE to write its row there"
            )
        else:
            write_row(results_page, setup, results, args)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
