"""How fast JAX (XLA) does a training step's matrix products, against NumPy (OpenBLAS).

``bench.py``'s GEMM-only epoch is every matrix product of every step at NumPy's measured
rates: no engine whose products go through NumPy can train faster than it. A peer whose
products go through another library is not bound by it. This script measures, for each
config of ``bench.py`` and at the same thread count, one step's products

- through NumPy: ``np.matmul(a, b, out=c)`` for each product in turn (as the GEMM-only epoch);
- through JAX: one ``jax.jit``-compiled call returning every product of the step (one
  dispatch per step, as JAX's training step has), results ready before the clock stops;

and prints the ratio. With the JAX step's throughput ``J`` (bench.py) and NumPy's products
``G`` (the GEMM-only epoch), ``k`` times JAX's speed needs a roofline fraction of ``k J / G``:
where XLA's products are as fast as OpenBLAS's, 1.4x JAX asks for a step faster than its own
products. Medians of interleaved repeats; the two OpenBLAS variables are removed for this
process, as in ``bench.py``.

Run: ``python benchmarks/gemm_peers.py [--threads 2] [--repeats 7] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import blas_env
import numpy as np
from bench import CONFIGS, _operands, limit_threads, pin_to_cpus, step_gemms


def numpy_step_seconds(ops: list, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        for a, b, c in ops:
            np.matmul(a, b, out=c)
    return (time.perf_counter() - t0) / calls


def jax_step_seconds(fn, args: list, calls: int) -> float:
    import jax

    t0 = time.perf_counter()
    for _ in range(calls):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    blas_env.reexec_unset()  # a benchmark process: OpenBLAS without the override
    pin_to_cpus(args.threads)  # before JAX starts: XLA sizes its pool from these CPUs
    import jax
    import jax.numpy as jnp

    rows = []
    with limit_threads(args.threads):
        for cfg in CONFIGS:
            gemms = step_gemms(cfg.sizes, cfg.batch)
            rng = np.random.default_rng(0)
            ops, layouts = [], []
            for g in gemms:
                a, b = _operands(g, rng, np.float32)
                ops.append((a, b, np.empty((g.m, g.n), dtype=np.float32)))
                layouts.append(g.layout)

            def products(*operands, layouts=tuple(layouts)):
                out = []
                for k, layout in enumerate(layouts):
                    a, b = operands[2 * k], operands[2 * k + 1]
                    a = a.T if layout == "TN" else a  # operands kept in their stored layout
                    b = b.T if layout == "NT" else b
                    out.append(jnp.matmul(a, b))
                return out

            stored = []
            for (a, b, _), layout in zip(ops, layouts, strict=True):
                stored += [a.T.copy() if layout == "TN" else a, b.T.copy() if layout == "NT" else b]
            jargs = [jax.device_put(x) for x in stored]
            fn = jax.jit(products)
            jax.block_until_ready(fn(*jargs))  # compiled
            flops = sum(g.flops for g in gemms)
            calls = max(5, int(0.05 / max(numpy_step_seconds(ops, 3), 1e-7)))
            np_times, jax_times = [], []
            for _ in range(args.repeats):  # interleaved
                np_times.append(numpy_step_seconds(ops, calls))
                jax_times.append(jax_step_seconds(fn, jargs, calls))
            t_np, t_jax = statistics.median(np_times), statistics.median(jax_times)
            rows.append(
                {
                    "config": cfg.name,
                    "numpy_step_us": t_np * 1e6,
                    "jax_step_us": t_jax * 1e6,
                    "numpy_gflops": flops / t_np / 1e9,
                    "jax_gflops": flops / t_jax / 1e9,
                    "numpy_over_jax_time": t_np / t_jax,
                }
            )
    print(f"one step's matrix products, {args.threads} thread(s), medians of {args.repeats}:")
    print("| config | NumPy (OpenBLAS) | JAX (XLA), one jit call | NumPy time ÷ JAX time |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['config']} | {r['numpy_step_us']:,.0f} us ({r['numpy_gflops']:.0f} GFLOP/s) "
            f"| {r['jax_step_us']:,.0f} us ({r['jax_gflops']:.0f} GFLOP/s) "
            f"| {r['numpy_over_jax_time']:.2f} |"
        )
    if args.json:
        record = {"threads": args.threads, "repeats": args.repeats, "rows": rows}
        record["openblas_override_found"] = blas_env.found_override()
        # the kernel OpenBLAS chose in this process (its override variables unset)
        record["openblas_kernels"] = blas_env.openblas_kernels()
        args.json.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
