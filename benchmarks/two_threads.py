"""Where a two-thread training step's time goes, and two ways of using the second core that
were tried and measured (benchmarks/NOTES.md, "Tried and rejected").

The step is the benchmark's MLP (784-256-128-10, ReLU, softmax cross-entropy, plain SGD,
float32, batch 128 by default) written out in plain NumPy here, so that each operation can
be timed on its own and the variants differ in one thing only:

- ``profile``: the step at 1 and 2 BLAS threads with a timer around every operation
  (batch gather, each matrix product, bias adds, activations, loss, update);
- ``plain``: the step with 2 BLAS threads, as the engine runs it;
- ``data-parallel``: 2 Python threads with 1 BLAS thread each, each taking half of every
  batch into its own gradient vector, then each updating half of the parameters with both
  halves' gradients (two barriers per step);
- ``prefetch``: the plain step, with a helper thread gathering the next batch while the
  current one trains (double-buffered);
- ``gather``: the batch gather alone, from random rows, from contiguous rows, and from the
  same rows again (in cache), to show how much of it is waiting on memory.

Run: ``python benchmarks/two_threads.py [--batch 128] [--repeats 4] [--json OUT]``; needs
MNIST (``$BACKPROP_DATA``) or uses random data of its shape, like ``bench.py``.
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import blas_env
import numpy as np
from bench import limit_threads, load_data

SIZES = (784, 256, 128, 10)
LR = np.float32(0.05)


class Net:
    """Flat float32 parameters with per-layer (W, b) views."""

    def __init__(self, seed: int = 0) -> None:
        pairs = list(zip(SIZES[:-1], SIZES[1:], strict=True))
        self.size = sum(a * b + b for a, b in pairs)
        self.flat = np.empty(self.size, np.float32)
        self.layers = self.views(self.flat)
        rng = np.random.default_rng(seed)
        for W, b in self.layers:
            r = np.sqrt(6.0 / W.shape[0])
            W[...] = rng.uniform(-r, r, W.shape)
            b[...] = 0.0

    @staticmethod
    def views(v: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        out, o = [], 0
        for a, b in zip(SIZES[:-1], SIZES[1:], strict=True):
            out.append((v[o : o + a * b].reshape(a, b), v[o + a * b : o + a * b + b]))
            o += a * b + b
        return out


class Worker:
    """Buffers and a gradient vector for one batch size; ``step`` = gather, forward,
    backward (gradients pre-scaled by lr / n), with an optional per-operation timer."""

    def __init__(self, net: Net, rows: int) -> None:
        self.net = net
        self.g = np.zeros(net.size, np.float32)
        self.grads = Net.views(self.g)
        self.x = np.empty((rows, SIZES[0]), np.float32)
        self.t = np.empty((rows, SIZES[-1]), np.float32)
        self.a = [np.empty((rows, s), np.float32) for s in SIZES[1:]]
        self.dx = [None] + [np.empty((rows, s), np.float32) for s in SIZES[1:-1]]
        self.mask = [np.empty((rows, s), bool) for s in SIZES[1:]]
        self.ones = np.ones(rows, np.float32)

    def gather(self, X: np.ndarray, T: np.ndarray, idx: np.ndarray) -> None:
        X.take(idx, 0, self.x, "clip")
        T.take(idx, 0, self.t, "clip")

    def step(self, scale: np.float32, lap: Any = None) -> None:
        lap = lap or (lambda name: None)
        h, last = self.x, len(SIZES) - 2
        for k, (W, b) in enumerate(self.net.layers):
            a = np.matmul(h, W, out=self.a[k])
            lap(f"forward matmul {k}")
            a += b
            lap("bias adds")
            if k < last:
                np.maximum(a, np.float32(0), out=a)
                lap("relu")
            h = a
        z = h  # softmax cross-entropy gradient, scaled
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        z -= self.t
        z *= scale
        lap("softmax + loss gradient")
        g = z
        for k in range(last, -1, -1):
            W, _ = self.net.layers[k]
            gW, gb = self.grads[k]
            x = self.x if k == 0 else self.a[k - 1]
            np.matmul(x.T, g, out=gW)
            lap(f"dW matmul {k}")
            np.matmul(self.ones, g, out=gb)
            lap("bias gradients")
            if k > 0:
                dx = np.matmul(g, W.T, out=self.dx[k])
                lap(f"dx matmul {k}")
                np.multiply(dx, np.greater(x, 0, out=self.mask[k - 1]), out=dx)
                lap("relu backward")
                g = dx


def batches(n: int, batch: int) -> list[tuple[int, int]]:
    return [(lo, lo + batch) for lo in range(0, n - batch + 1, batch)]  # full batches only


def epoch_plain(net: Net, X, T, order, batch: int, profile: dict | None = None) -> None:
    w = Worker(net, batch)
    scale = LR / np.float32(batch)
    lap = None
    for lo, hi in batches(len(order), batch):
        if profile is not None:
            t = [time.perf_counter()]

            def lap(name: str, t=t) -> None:
                now = time.perf_counter()
                profile[name] += now - t[0]
                t[0] = now

        w.gather(X, T, order[lo:hi])
        if lap:
            lap("batch gather")
        w.step(scale, lap)
        np.subtract(net.flat, w.g, out=net.flat)
        if lap:
            lap("SGD update")


def epoch_data_parallel(net: Net, X, T, order, batch: int) -> None:
    half = batch // 2
    workers = [Worker(net, half), Worker(net, half)]
    cut = net.size // 2
    chunks = [slice(0, cut), slice(cut, net.size)]
    barrier = threading.Barrier(2)
    scale = LR / np.float32(batch)

    def run(i: int) -> None:
        w, c = workers[i], chunks[i]
        p, g0, g1 = net.flat[c], workers[0].g[c], workers[1].g[c]
        for lo, _ in batches(len(order), batch):
            w.gather(X, T, order[lo + i * half : lo + (i + 1) * half])
            w.step(scale)
            barrier.wait()  # both halves' gradients are complete
            np.subtract(p, g0, out=p)
            np.subtract(p, g1, out=p)
            barrier.wait()  # every parameter is updated before the next forward

    helper = threading.Thread(target=run, args=(1,))
    helper.start()
    run(0)
    helper.join()


def epoch_prefetch(net: Net, X, T, order, batch: int) -> None:
    steps = batches(len(order), batch)
    workers = [Worker(net, batch), Worker(net, batch)]
    workers[1].g, workers[1].grads = workers[0].g, workers[0].grads
    todo: queue.SimpleQueue = queue.SimpleQueue()
    done: queue.SimpleQueue = queue.SimpleQueue()

    def gatherer() -> None:
        while (item := todo.get()) is not None:
            k, lo, hi = item
            workers[k % 2].gather(X, T, order[lo:hi])
            done.put(k)

    helper = threading.Thread(target=gatherer, daemon=True)
    helper.start()
    todo.put((0, *steps[0]))
    scale = LR / np.float32(batch)
    for k in range(len(steps)):
        done.get()
        if k + 1 < len(steps):
            todo.put((k + 1, *steps[k + 1]))
        workers[k % 2].step(scale)
        np.subtract(net.flat, workers[0].g, out=net.flat)
    todo.put(None)
    helper.join()


def time_gathers(X: np.ndarray, T: np.ndarray, batch: int, steps: int = 400) -> dict[str, float]:
    """Microseconds per batch gather: random rows, contiguous rows, the same rows again."""
    w = Worker(Net(), batch)
    steps = min(steps, X.shape[0] // batch)
    order = np.random.default_rng(1).permutation(X.shape[0])
    kinds = {
        "random rows": lambda k: order[k * batch : (k + 1) * batch],
        "contiguous rows": lambda k: np.arange(k * batch, (k + 1) * batch),
        "same rows again": lambda k: order[:batch],
    }
    out = {}
    for name, rows in kinds.items():
        idx = [rows(k) for k in range(steps)]
        start = time.perf_counter()
        for i in idx:
            w.gather(X, T, i)
        out[name] = (time.perf_counter() - start) / steps * 1e6
    return out


VARIANTS = {
    "plain": (2, epoch_plain),
    "data-parallel": (1, epoch_data_parallel),  # 1 BLAS thread in each of 2 Python threads
    "prefetch": (2, epoch_prefetch),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--rows", type=int, default=None, help="training rows (default: all)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = p.parse_args(argv)
    data = load_data(n_train=args.rows, n_test=0)
    X = data.X_train
    T = np.zeros((X.shape[0], SIZES[-1]), np.float32)
    T[np.arange(X.shape[0]), data.y_train] = 1.0
    n = X.shape[0] - X.shape[0] % args.batch
    print(f"data: {data.source}; {n} rows in batches of {args.batch}")

    profiles: dict[str, dict[str, float]] = {}
    for threads in (1, 2):
        net, prof = Net(), defaultdict(float)
        order = np.random.default_rng(0).permutation(X.shape[0])[:n]
        with limit_threads(threads):
            epoch_plain(net, X, T, order, args.batch)  # warm-up
            epoch_plain(net, X, T, order, args.batch, prof)
        steps = n // args.batch
        profiles[str(threads)] = {k: v / steps * 1e6 for k, v in prof.items()}
        total = sum(profiles[str(threads)].values())
        print(f"\nprofile, {threads} BLAS thread(s): {total:.0f} us per step")
        for name, us in profiles[str(threads)].items():
            print(f"  {name:26s} {us:7.1f} us")

    gather_us = time_gathers(X, T, args.batch)
    print("\nbatch gather alone: " + ", ".join(f"{k} {v:.1f} us" for k, v in gather_us.items()))

    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for r in range(args.repeats + 1):  # the first round warms up
        order = np.random.default_rng(r).permutation(X.shape[0])[:n]
        for name, (threads, epoch) in VARIANTS.items():
            net = Net()
            with limit_threads(threads):
                start = time.perf_counter()
                epoch(net, X, T, order, args.batch)
                seconds = time.perf_counter() - start
            if r:
                rates[name].append(n / seconds)
        if r:
            print(f"repeat {r}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()))
    medians = {k: statistics.median(v) for k, v in rates.items()}
    print("\nmedian samples/s: " + ", ".join(f"{k} {v:,.0f}" for k, v in medians.items()))
    if args.json:
        out = {
            "batch": args.batch,
            "rows": n,
            "profiles_us": profiles,
            "gather_us": gather_us,
            "samples_per_s": rates,
            # the kernel OpenBLAS chose in this process (its override variables unset)
            "openblas_kernels": blas_env.openblas_kernels(),
        }
        args.json.write_text(json.dumps({**out, "median_samples_per_s": medians}, indent=2))
    return 0


if __name__ == "__main__":
    blas_env.run_main(main)
