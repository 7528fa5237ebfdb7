"""Peak resident memory of a backprop training run, against its budget.

Budget (issue 7): dataset + 2 x (parameters + one batch's activations) + interpreter baseline.

- interpreter baseline: the peak RSS of a fresh Python process that imported numpy and backprop
  (through ``bench``, which the training process also imports) and loaded nothing. Beside it,
  the *warm* baseline: the same process after training a 4-3-2 network on 8 rows with the
  same code path (ReLU, cross-entropy, SGD, ``fit``), so that the libraries' code pages,
  NumPy's random module and the BLAS thread pool are in, with no data to speak of. Reported,
  not used for the verdict (nor is ``blas_work_buffers_bytes``, what OpenBLAS's first large
  products add to a fresh process);
- dataset: what the training run holds: the float32 images, the int64 labels, and the one-hot
  targets in the model's dtype;
- parameters: every weight and bias; one batch's activations: the batch's inputs, each layer's
  pre-activation and output, and the batch's targets.

The training run (MLP 784-256-128-10, ReLU, cross-entropy, float32, SGD, batch 128, 2 epochs, the
user path ``backprop.training.fit``) runs in a fresh subprocess, which reports its own peak
(``VmHWM`` from /proc, or a larger ``VmRSS`` read at an epoch's end, which ``VmHWM`` can
trail: ``getrusage(...).ru_maxrss`` is not used, because after a vfork+exec Linux folds the
parent's peak into the child's) and its RSS after each epoch;
no growth across epochs means RSS after the last epoch is within one (parameters + batch
activations) of RSS after the first.

Run: ``python benchmarks/memory.py [--smoke] [--threads N] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import blas_env

HERE = Path(__file__).resolve().parent
SIZES = (784, 256, 128, 10)
BATCH = 128
EPOCHS = 2
ITEMSIZE = 4  # float32


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field} line")


def activation_bytes(sizes: tuple[int, ...], batch: int, itemsize: int = ITEMSIZE) -> int:
    """One batch's activations: inputs, each layer's pre-activation and output, targets."""
    return batch * (sizes[0] + 2 * sum(sizes[1:]) + sizes[-1]) * itemsize


def parameter_bytes(sizes: tuple[int, ...], itemsize: int = ITEMSIZE) -> int:
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)) * itemsize


def _rss_split() -> dict[str, int]:
    """Anonymous (heap, arrays) and file-backed (library code) resident bytes now."""
    return {"anon_bytes": _status_bytes("RssAnon"), "file_bytes": _status_bytes("RssFile")}


def _child_baseline(warm: bool, threads: int) -> dict[str, Any]:
    import bench  # imports numpy and backprop, and nothing is loaded

    if warm:
        import numpy as np

        import backprop
        from backprop.training import fit

        rng = np.random.default_rng(0)
        X, y = rng.random((8, 4), dtype=np.float32), rng.integers(0, 2, 8)
        model = backprop.MLP(
            [4, 3, 2], "relu", "identity", "cross_entropy", init="he_uniform", dtype="float32"
        )
        with bench.limit_threads(threads):
            fit(model, X, y, optimizer="sgd", lr=0.05, epochs=1, batch_size=4, progress=False)
    rss = _status_bytes("VmRSS")
    return {
        "peak_bytes": max(_status_bytes("VmHWM"), rss),  # VmHWM can trail VmRSS (_child_train)
        "rss_bytes": rss,
        **_rss_split(),
    }


def _child_train(smoke: bool, threads: int) -> dict[str, Any]:
    import bench

    import backprop
    from backprop.training import fit

    data = bench.load_data(n_train=300 if smoke else None, n_test=0)
    X, y = data.X_train, data.y_train
    dataset = X.nbytes + y.nbytes + X.shape[0] * SIZES[-1] * ITEMSIZE
    after_load = _status_bytes("VmHWM")
    load_split = _rss_split()
    # Reset the peak (Linux >= 4.0) so the training phase's own peak can be told apart from
    # the loader's; when the kernel refuses, the training peak is reported as unknown.
    train_peak_known = True
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        train_peak_known = False
    rss: list[int] = []
    split: list[dict[str, int]] = []

    def at_epoch_end(state: Any) -> None:
        rss.append(_status_bytes("VmRSS"))
        split.append(_rss_split())

    model = backprop.MLP(
        list(SIZES),
        activation="relu",
        output_activation="identity",
        loss="cross_entropy",
        init="he_uniform",
        dtype="float32",
        seed=0,
    )
    with bench.limit_threads(threads):
        fit(
            model,
            X,
            y,
            optimizer="sgd",
            lr=0.05,
            epochs=EPOCHS,
            batch_size=BATCH,
            progress=False,
            seed=0,
            callbacks=[at_epoch_end],
        )
    # VmHWM is updated when the kernel syncs its per-thread RSS counters, so it can trail an
    # RSS read a moment earlier (run 10: VmHWM 229.27 MiB after an epoch-end VmRSS of 229.62):
    # the peak is the larger of the two
    end = max(_status_bytes("VmHWM"), *rss)
    return {
        "source": data.source,
        "n_train": int(X.shape[0]),
        "dataset_bytes": int(dataset),
        "peak_after_load_bytes": after_load,
        "train_phase_peak_bytes": end if train_peak_known else None,
        "process_peak_bytes": max(after_load, end),
        "rss_after_epoch_bytes": rss,
        "rss_split_after_epoch": split,
        "rss_split_after_load": load_split,
    }


def _child_blas(threads: int) -> dict[str, Any]:
    """RSS added by OpenBLAS's first large products: the step's largest forward product
    (128x784 @ 784x256) and its dW (784x128 @ 128x256), operands allocated beforehand."""
    import bench
    import numpy as np

    x = np.ones((BATCH, SIZES[0]), np.float32)
    W = np.ones((SIZES[0], SIZES[1]), np.float32)
    a = np.empty((BATCH, SIZES[1]), np.float32)
    before = _status_bytes("VmRSS")
    with bench.limit_threads(threads):
        np.matmul(x, W, out=a)
        np.matmul(x.T, a, out=W)
    return {"blas_bytes": _status_bytes("VmRSS") - before}


def _run_child(mode: str, smoke: bool, threads: int) -> dict[str, Any]:
    """Run ``mode`` (baseline, warm-baseline, train or blas) in a fresh interpreter."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--threads",
        str(threads),
    ]
    if smoke:
        cmd.append("--smoke")
    paths = [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
    # a benchmark process: OpenBLAS without the override (benchmarks/blas_env.py)
    env = {**blas_env.env_for_mode("unset"), "PYTHONPATH": os.pathsep.join(paths)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the memory child {mode!r} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(smoke: bool = False, threads: int = 2) -> dict[str, Any]:
    """Peak RSS of the training run vs its budget, and RSS growth across epochs."""
    base = _run_child("baseline", smoke, threads)
    warm = _run_child("warm-baseline", smoke, threads)
    run = _run_child("train", smoke, threads)
    blas = _run_child("blas", smoke, threads)
    model_x2 = 2 * (parameter_bytes(SIZES) + activation_bytes(SIZES, BATCH))
    budget = run["dataset_bytes"] + model_x2 + base["peak_bytes"]
    rss = run["rss_after_epoch_bytes"]
    growth = rss[-1] - rss[0]
    tolerance = parameter_bytes(SIZES) + activation_bytes(SIZES, BATCH)
    peak = run["process_peak_bytes"]
    return {
        "network": list(SIZES),
        "batch": BATCH,
        "epochs": EPOCHS,
        "threads": threads,
        **run,
        "baseline_bytes": base["peak_bytes"],
        "baseline_split": {k: base[k] for k in ("anon_bytes", "file_bytes")},
        "warm_baseline_bytes": warm["peak_bytes"],
        "warm_baseline_split": {k: warm[k] for k in ("anon_bytes", "file_bytes")},
        "peak_over_warm_budget_bytes": peak - (budget - base["peak_bytes"] + warm["peak_bytes"]),
        "blas_work_buffers_bytes": blas["blas_bytes"],
        "model_x2_bytes": model_x2,
        "budget_bytes": budget,
        "peak_bytes": peak,
        "peak_over_budget_bytes": peak - budget,
        "peak_within_budget": peak <= budget,
        "growth_bytes": growth,
        "growth_tolerance_bytes": tolerance,
        "no_growth": growth <= tolerance,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="300 rows instead of MNIST's 60,000")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, metavar="OUT")
    p.add_argument(
        "--child", choices=("baseline", "warm-baseline", "train", "blas"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    if args.child in ("baseline", "warm-baseline"):
        print(json.dumps(_child_baseline(args.child == "warm-baseline", args.threads)))
        return 0
    if args.child == "blas":
        print(json.dumps(_child_blas(args.threads)))
        return 0
    if args.child == "train":
        print(json.dumps(_child_train(args.smoke, args.threads)))
        return 0
    result = measure(smoke=args.smoke, threads=args.threads)
    mib = 2**20
    for key, value in result.items():
        shown = (
            f"{value / mib:.1f} MiB" if key.endswith("_bytes") and isinstance(value, int) else value
        )
        with contextlib.suppress(TypeError):
            if key == "rss_after_epoch_bytes":
                shown = [f"{v / mib:.1f} MiB" for v in value]
            elif key.endswith("_split"):
                shown = {k: f"{v / mib:.1f} MiB" for k, v in value.items()}
            elif key.startswith("rss_split_"):
                shown = value if isinstance(value, list) else [value]
                shown = [{k: f"{v / mib:.1f} MiB" for k, v in d.items()} for d in shown]
        print(f"{key}: {shown}")
    if args.json:
        import numpy  # noqa: F401  (loads OpenBLAS here, in the children's environment)

        blas_env.write_json(args.json, result)  # (with the kernel OpenBLAS chose)
    return 0


if __name__ == "__main__":
    blas_env.run_main(main)
