"""Data-parallel throughput on this machine, and the all-reduce cost model for N machines.

    python benchmarks/mpi_bench.py                 # everything (1-3 minutes on 2 cores)
    python benchmarks/mpi_bench.py --epochs 3

Measures, on MNIST from ``BACKPROP_DATA`` (MLP 784-256-128-10, float32, batch 128, SGD):

* samples/s of 1 rank x 2 BLAS threads, 2 ranks x 1 thread (``mpirun -n 2``), and
  1 rank x 1 thread for reference; the epoch after a warm-up epoch is timed;
* the compute time per sample of one training step, on this machine with 2 threads, for the
  MNIST MLP and for a 10M-parameter MLP (784-2048-2048-2048-10), at batch 128 and 1024;
* the time of a local (shared-memory) all-reduce of each model's gradient buffer.

Then prints the cost model of docs/distributed.md: a ring all-reduce sends and receives
``2 (N-1)/N x P`` bytes per rank per step (P = parameter bytes) in ``2 (N-1)`` messages, so

    T_comm = 2 (N-1) alpha + 2 (N-1)/N * P / bandwidth,
    T_comp = (B / N) * t_sample,

and communication stays under 10% of a step (no overlap) when T_comp >= 9 T_comm, i.e. for
a global batch ``B >= 9 N T_comm / t_sample``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import blas_env
import numpy as np

MNIST_SIZES = [784, 256, 128, 10]
BIG_SIZES = [784, 2048, 2048, 2048, 10]  # 10,020,874 parameters
LATENCY_S = 20e-6  # per message: a typical TCP/Ethernet figure (InfiniBand: ~2 us)
BANDWIDTHS_GBIT = (10, 100)


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """MNIST's 60000 training images as float32 in [0, 1] (60000, 784), and labels."""
    from backprop.datasets.idx import read_idx

    root = os.environ.get("BACKPROP_DATA")
    if not root:
        sys.exit("set BACKPROP_DATA to the folder holding mnist/ (the four .gz IDX files)")
    folder = Path(root) / "mnist"
    images = read_idx(folder / "train-images-idx3-ubyte.gz")
    labels = read_idx(folder / "train-labels-idx1-ubyte.gz")
    return (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32), labels.astype(
        np.int64
    )


def n_parameters(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


# ------------------------------------------------------------------ worker (one rank)
def worker(epochs: int) -> None:
    """Train the MNIST MLP (data-parallel under mpirun); rank 0 prints one JSON line."""
    from backprop import MLP
    from backprop.training import fit
    from backprop.training.distributed import get_world, is_main_process

    X, y = load_mnist()
    model = MLP(MNIST_SIZES, "relu", "identity", "cross_entropy", init="he_normal",
                dtype="float32", seed=0)  # fmt: skip
    history = fit(model, X, y, optimizer="sgd", lr=0.05, epochs=epochs, batch_size=128, seed=0)
    timed = history.epochs[1:] or history.epochs
    seconds = sum(row["time"] for row in timed)
    result = {
        "samples_per_s": len(timed) * X.shape[0] / seconds,
        "loss": history.epochs[-1]["loss"],
        "accuracy": history.epochs[-1]["accuracy"],
    }
    world = get_world()
    if world is not None:  # a local all-reduce of each model's gradient buffer
        for name, sizes in (("mnist", MNIST_SIZES), ("10M", BIG_SIZES)):
            buf = np.ones(n_parameters(sizes), np.float32)
            world.allreduce_sum(buf)
            start = time.perf_counter()
            for _ in range(10):
                world.allreduce_sum(buf)
            result[f"allreduce_{name}_s"] = (time.perf_counter() - start) / 10
    if is_main_process():
        print(json.dumps(result), flush=True)


def step_time_per_sample(sizes: list[int], batch: int, n_steps: int) -> float:
    """Seconds of one training step per sample (forward, backward, SGD update)."""
    from backprop import MLP
    from backprop.training import fit

    rng = np.random.default_rng(0)
    X = rng.random((batch * n_steps, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch * n_steps)
    model = MLP(
        sizes, "relu", "identity", "cross_entropy", init="he_normal", dtype="float32", seed=0
    )
    fit(model, X[:batch], y[:batch], epochs=1, batch_size=batch, distributed=False)  # warm-up
    h = fit(model, X, y, epochs=1, batch_size=batch, shuffle=False, distributed=False)
    return h.epochs[0]["time"] / X.shape[0]


# ---------------------------------------------------------------------- driver
def run_config(ranks: int, threads: int, epochs: int) -> dict[str, float]:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, __file__, "--worker", "--epochs", str(epochs)]
    if ranks > 1:
        mpirun = shutil.which("mpirun", path=str(Path(sys.executable).parent)) or shutil.which(
            "mpirun"
        )
        if mpirun is None:
            sys.exit("mpirun not found: pip install '.[mpi]' in backprop's folder")
        cmd = [
            mpirun,
            "--allow-run-as-root",
            "--oversubscribe",
            "--bind-to",
            "none",
            "-n",
            str(ranks),
            *cmd,
        ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def comm_time(n_machines: int, param_bytes: int, gbit_per_s: float) -> float:
    """Seconds of one ring all-reduce of ``param_bytes`` over ``n_machines``."""
    if n_machines == 1:
        return 0.0
    sent = 2 * (n_machines - 1) / n_machines * param_bytes
    return 2 * (n_machines - 1) * LATENCY_S + sent / (gbit_per_s * 1e9 / 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--epochs", type=int, default=2, help="epochs per run; all but the first are timed"
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.epochs)
        return

    print(f"MNIST MLP {MNIST_SIZES}, float32, batch 128, {args.epochs} epochs (first is warm-up)")
    runs = {}
    for ranks, threads in ((1, 1), (1, 2), (2, 1)):
        r = runs[ranks, threads] = run_config(ranks, threads, args.epochs)
        print(f"  {ranks} rank x {threads} thread: {r['samples_per_s']:9.0f} samples/s  "
              f"(final loss {r['loss']:.4f}, accuracy {r['accuracy']:.4f})")  # fmt: skip
    two = runs[2, 1]
    print(f"  local all-reduce (2 ranks, shared memory): "
          f"MNIST MLP {two['allreduce_mnist_s'] * 1e3:.3f} ms, "
          f"10M MLP {two['allreduce_10M_s'] * 1e3:.2f} ms")  # fmt: skip

    os.environ["OPENBLAS_NUM_THREADS"] = "2"  # read when numpy loads its BLAS, below
    per_sample = {}
    for name, sizes, steps in (("MNIST MLP", MNIST_SIZES, 40), ("10M MLP", BIG_SIZES, 4)):
        for batch in (128, 1024):
            per_sample[name, batch] = step_time_per_sample(
                sizes, batch, steps if batch == 128 else max(2, steps // 8)
            )
    print("\nstep time per sample on this machine (1 process, 2 threads):")
    for (name, batch), t in per_sample.items():
        print(f"  {name:9s} batch {batch:5d}: {t * 1e6:8.1f} us/sample")

    print(f"\nall-reduce cost model (ring, latency {LATENCY_S * 1e6:.0f} us per message; float32):")
    print("  model      P bytes    N  Gbit/s  T_comm ms  min global batch for comm < 10%")
    for name, sizes in (("MNIST MLP", MNIST_SIZES), ("10M MLP", BIG_SIZES)):
        p_bytes = 4 * n_parameters(sizes)
        t_sample = per_sample[name, 1024]
        for gbit in BANDWIDTHS_GBIT:
            for n in (2, 4, 8, 16, 64):
                t = comm_time(n, p_bytes, gbit)
                b_min = 9 * n * t / t_sample
                print(f"  {name:9s} {p_bytes:10d} {n:3d} {gbit:6d} {t * 1e3:10.3f}  {b_min:10.0f}")


if __name__ == "__main__":
    blas_env.reexec_unset()  # a benchmark process: OpenBLAS without the override
    main()
