"""How backprop's epoch time scales with the data and with the hidden width.

- data: MNIST 784-256-128-10 (ReLU, cross-entropy, float32, SGD, batch 128) on 1x, 2x and 4x
  rows (1x = a quarter of MNIST's training set, 15,000 rows; 4x = all 60,000): time per
  epoch should grow linearly, so time per sample should stay flat;
- width: the same network with both hidden layers 1x, 2x and 4x as wide (256-128, 512-256,
  1024-512) on the 1x rows: time should grow like the step's arithmetic, which is between
  linear and quadratic in the width; the table sets the measured growth beside the growth of
  the FLOP count and of the GEMM roofline time (the matrix products at NumPy's measured rates).

Each point is the median of ``--repeats`` one-epoch fits after a warm-up, the points of a
table taking turns within each repeat (so outside load falls on all alike). Run
``python benchmarks/scaling.py [--threads N] [--repeats R] [--json OUT] [--smoke]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402
import blas_env  # noqa: E402

BASE = next(c for c in bench.CONFIGS if c.name == "mlp-b128")
FACTORS = (1, 2, 4)


def interleaved_epochs(points: list[bench.Ours], repeats: int) -> list[dict[str, float]]:
    """Median wall and CPU seconds of one epoch for each model, after a warm-up; the points
    take turns within each repeat, so that outside load falls on all of them alike."""
    for impl in points:
        impl.train_epoch(seed=10_000, n=min(impl.X.shape[0], 2_000))
    wall: list[list[float]] = [[] for _ in points]
    cpu: list[list[float]] = [[] for _ in points]
    for r in range(repeats):
        for i, impl in enumerate(points):
            c0, t0 = time.process_time(), time.perf_counter()
            impl.train_epoch(seed=r)
            wall[i].append(time.perf_counter() - t0)
            cpu[i].append(time.process_time() - c0)
    return [
        {"epoch_seconds": statistics.median(w), "cpu_over_wall": sum(c) / sum(w)}
        for w, c in zip(wall, cpu, strict=True)
    ]


def flops_per_epoch(sizes: tuple[int, ...], n: int, batch: int) -> int:
    return sum(
        count * g.flops
        for b, count in bench.epoch_batches(n, batch).items()
        for g in bench.step_gemms(sizes, b)
    )


def run(n1: int, repeats: int, threads: int, smoke: bool) -> dict[str, Any]:
    data = bench.load_data(n_train=4 * n1, n_test=0)
    if data.X_train.shape[0] < 4 * n1:
        raise ValueError(f"need {4 * n1} training rows; the data has {data.X_train.shape[0]}")
    min_time = 1e-4 if smoke else 0.01
    out: dict[str, Any] = {
        "source": data.source,
        "threads": threads,
        "repeats": repeats,
        "base": BASE.name,
        "data": [],
        "width": [],
    }
    widths = [(BASE.sizes[0], *(f * h for h in BASE.sizes[1:-1]), BASE.sizes[-1]) for f in FACTORS]
    with bench.limit_threads(threads):
        data_points = [
            bench.Ours(BASE, data.X_train[: f * n1], data.y_train[: f * n1]) for f in FACTORS
        ]
        for f, t in zip(FACTORS, interleaved_epochs(data_points, repeats), strict=True):
            n = f * n1
            out["data"].append(
                {"factor": f, "rows": n, **t, "us_per_sample": 1e6 * t["epoch_seconds"] / n}
            )
        cfgs = [
            bench.Config(
                f"width-x{f}",
                "mlp",
                sizes,
                BASE.activation,
                BASE.output_activation,
                BASE.loss,
                BASE.init,
                BASE.batch,
                BASE.lr,
            )
            for f, sizes in zip(FACTORS, widths, strict=True)
        ]
        width_points = [bench.Ours(cfg, data.X_train[:n1], data.y_train[:n1]) for cfg in cfgs]
        for f, sizes, t in zip(
            FACTORS, widths, interleaved_epochs(width_points, repeats), strict=True
        ):
            roof = bench.roofline(sizes, n1, BASE.batch, min_time=min_time)
            out["width"].append(
                {
                    "factor": f,
                    "sizes": list(sizes),
                    **t,
                    "flops": flops_per_epoch(sizes, n1, BASE.batch),
                    "gemm_seconds": roof["gemm_seconds"],
                }
            )
    for key in ("data", "width"):
        first = out[key][0]
        for row in out[key]:
            row["time_ratio"] = row["epoch_seconds"] / first["epoch_seconds"]
    for row in out["width"]:
        row["flops_ratio"] = row["flops"] / out["width"][0]["flops"]
        row["gemm_time_ratio"] = row["gemm_seconds"] / out["width"][0]["gemm_seconds"]
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| data | rows | s/epoch | time ratio | µs/sample | CPU/wall |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["data"]:
        lines.append(
            f"| x{r['factor']} | {r['rows']:,} | {r['epoch_seconds']:.3f} "
            f"| {r['time_ratio']:.2f} | {r['us_per_sample']:.2f} | {r['cpu_over_wall']:.2f} |"
        )
    lines += [
        "",
        "| width | layers | s/epoch | time ratio | FLOP ratio | GEMM roofline time ratio "
        "| CPU/wall |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["width"]:
        lines.append(
            f"| x{r['factor']} | {'-'.join(map(str, r['sizes']))} | {r['epoch_seconds']:.3f} "
            f"| {r['time_ratio']:.2f} | {r['flops_ratio']:.2f} | {r['gemm_time_ratio']:.2f} "
            f"| {r['cpu_over_wall']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="1x = 150 rows, 1 repeat")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=None, help="epochs per point (default 5)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT")
    p.add_argument("--markdown", type=Path, default=None, metavar="OUT")
    args = p.parse_args(argv)
    repeats = args.repeats or (1 if args.smoke else 5)
    result = run(150 if args.smoke else 15_000, repeats, args.threads, args.smoke)
    result["machine"] = bench.machine_info()
    result["openblas_kernels"] = blas_env.openblas_kernels()
    table = markdown(result)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    blas_env.run_main(main)
