"""Whether this machine's two cores talk to each other quickly right now, second by second.

Two-thread timings on the benchmark machine swing up to 2x within a minute, and backprop's
two-thread ratios with them (benchmarks/NOTES.md, "slow phases"). This probe shows where the
swing is: each second it times, at 2 threads,

- ``small``: the step's middle product (128x256 @ 256x128) plus one elementwise pass over its
  output (the pattern of a training step: a short product whose output is split between the
  two cores' caches, then read by one core), in µs per iteration;
- ``large``: a 1024x1024x1024 product (long enough to hide any cross-core latency), GFLOP/s;

and the same ``small`` at 1 thread as a control. When ``small`` at 2 threads jumps between two
levels while ``large`` and the 1-thread control hold steady, the slowdown is in the traffic
between the cores, not in their arithmetic.

Run: ``python benchmarks/host_phases.py [--seconds 60] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import blas_env  # noqa: E402


def _per_second(fn: Any, seconds: float) -> tuple[int, float]:
    """How many calls of ``fn`` fit in ``seconds``, and the time they took."""
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        fn()
        k += 1
    return k, time.perf_counter() - t0


def probe(seconds: int, slice_s: float = 1.0) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    x = rng.random((128, 256), dtype=np.float32)
    w = rng.random((256, 128), dtype=np.float32)
    c = np.empty((128, 128), np.float32)
    big = rng.random((1024, 1024), dtype=np.float32)
    big_out = np.empty_like(big)
    one = np.float32(1.0)

    def small() -> None:
        np.matmul(x, w, out=c)
        np.add(c, one, out=c)

    def large() -> None:
        np.matmul(big, big, out=big_out)

    rows = []
    for _ in range(max(1, int(seconds / (2.5 * slice_s)))):
        row = {"t": time.time()}
        with bench.limit_threads(2):
            k, s = _per_second(small, slice_s)
            row["small_2_threads_us"] = 1e6 * s / k
            k, s = _per_second(large, slice_s)
            row["large_2_threads_gflops"] = k * 2 * 1024**3 / s / 1e9
        with bench.limit_threads(1):
            k, s = _per_second(small, slice_s / 2)
            row["small_1_thread_us"] = 1e6 * s / k
        rows.append(row)
    summary = {
        key: {
            "min": min(r[key] for r in rows),
            "median": statistics.median(r[key] for r in rows),
            "max": max(r[key] for r in rows),
        }
        for key in ("small_2_threads_us", "large_2_threads_gflops", "small_1_thread_us")
    }
    return {"slices": rows, "summary": summary, "machine": bench.machine_info()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = p.parse_args(argv)
    if not bench.thread_control_available():
        print("threadpoolctl is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    result = probe(args.seconds)
    for r in result["slices"]:
        print(
            f"{time.strftime('%H:%M:%S', time.gmtime(r['t']))}  "
            f"small @2 threads {r['small_2_threads_us']:6.1f} us   "
            f"large @2 threads {r['large_2_threads_gflops']:5.0f} GFLOP/s   "
            f"small @1 thread {r['small_1_thread_us']:6.1f} us"
        )
    for key, s in result["summary"].items():
        print(f"{key}: min {s['min']:.1f}, median {s['median']:.1f}, max {s['max']:.1f}")
    if args.json:
        blas_env.write_json(args.json, result)  # (with the kernel OpenBLAS chose)
    return 0


if __name__ == "__main__":
    blas_env.run_main(main)
