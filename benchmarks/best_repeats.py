"""Best repeats of saved benchmark runs: is a ratio target inside the GEMM roofline at all?

A run's medians mix the host's fast and slow phases (benchmarks/NOTES.md, "slow phases").
Comparing each implementation's *best* repeat with the *best* GEMM-only epoch of the same run
removes most of that noise: if ``ratio x peer's best`` is still above the fastest the
step's matrix products alone ran, no training step built on NumPy's matrix products can meet
the ratio in that run.

Run: ``python benchmarks/best_repeats.py RESULT.json... [--config mlp-b128] [--peer jax]
[--ratio 1.4] [--threads 2] [--mode unset]`` on the files that ``bench.py --json`` writes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def best_repeats(
    report: dict[str, Any],
    config: str,
    peer: str,
    ratio: float,
    threads: int,
    mode: str = "unset",
) -> dict[str, Any] | None:
    """Best samples/s of backprop, ``peer`` and the GEMM-only epoch in one run's ``config``,
    at ``threads`` in OpenBLAS ``mode`` (a report from before the modes has one, unnamed)."""
    for run in report["runs"]:
        if run["threads"] != threads or run.get("mode", mode) != mode:
            continue
        for c in run["configs"]:
            if c["config"]["name"] != config or peer not in c["impls"]:
                continue
            n = c["n_train"]
            peer_best = n / min(c["impls"][peer]["train_seconds"])
            gemm_best = n / min(c["roofline"]["gemm_epoch_seconds"])
            return {
                "backprop_best": n / min(c["impls"]["backprop"]["train_seconds"]),
                "peer_best": peer_best,
                "target": ratio * peer_best,
                "gemm_only_best": gemm_best,
                "beyond_roofline": ratio * peer_best > gemm_best,
            }
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path)
    p.add_argument("--config", default="mlp-b128")
    p.add_argument("--peer", default="jax")
    p.add_argument("--ratio", type=float, default=1.4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mode", choices=("unset", "override"), default="unset")
    args = p.parse_args(argv)
    print(
        f"| run | backprop best | {args.peer} best | {args.ratio:g}x {args.peer} "
        "| GEMM-only epoch best | beyond the roofline? |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for path in args.results:
        row = best_repeats(
            json.loads(path.read_text()),
            args.config,
            args.peer,
            args.ratio,
            args.threads,
            args.mode,
        )
        if row is None:
            continue
        print(
            f"| {path.name} | {row['backprop_best']:,.0f} | {row['peer_best']:,.0f} "
            f"| {row['target']:,.0f} | {row['gemm_only_best']:,.0f} "
            f"| {'yes' if row['beyond_roofline'] else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
