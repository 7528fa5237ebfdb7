"""Side-by-side CPU benchmark: backprop against PyTorch (eager and ``torch.compile``),
scikit-learn and JAX (``jit``), in one run, with every matrix product's cost as the roofline.

What it measures, on the same data, on the same machine, at the same thread count for all:

- training throughput (samples/s over a full MNIST epoch, after a warm-up, median of the
  repeats; the implementations take turns within each repeat so that a burst of load from
  another process hits all of them alike);
- inference throughput on the 10k test images (one call on the whole set);
- the GEMM-only epoch: every matrix product of every step of the epoch, in the engine's
  operand layouts, at NumPy's measured rates, and nothing else; an implementation's roofline
  fraction is (GEMM-only epoch time) / (its epoch time);
- peak resident memory and its growth across epochs in a fresh process
  (``benchmarks/memory.py``).

Each (OpenBLAS mode, thread count) runs in its own worker process, because OpenBLAS reads
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` once when NumPy loads it and XLA sizes its thread
pool once when JAX starts: mode ``unset`` removes both variables, mode ``override`` keeps them
as this environment sets them (``benchmarks/blas_env.py``). Each worker records the kernel
OpenBLAS chose (threadpoolctl).

Run ``python benchmarks/bench.py`` (about half an hour on 2 cores) or ``--smoke`` (seconds,
tiny sizes; CI runs it). Results and method: ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gzip
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import blas_env
import numpy as np

import backprop
from backprop.training import fit

HERE = Path(__file__).resolve().parent

# ----------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class Config:
    """One benchmarked network and training setup."""

    name: str
    arch: str
    sizes: tuple[int, ...]
    activation: str  # hidden layers
    output_activation: str
    loss: str
    init: str
    batch: int
    lr: float


MLP_SIZES = (784, 256, 128, 10)
NIELSEN_SIZES = (784, 30, 10)
CONFIGS = (
    Config(
        "mlp-b128", "mlp", MLP_SIZES, "relu", "identity", "cross_entropy", "he_uniform", 128, 0.05
    ),
    Config(
        "mlp-b512", "mlp", MLP_SIZES, "relu", "identity", "cross_entropy", "he_uniform", 512, 0.05
    ),
    Config("nielsen-b10", "nielsen", NIELSEN_SIZES, "sigmoid", "sigmoid", "l2", "normal", 10, 3.0),
)
IMPLS = ("backprop", "torch", "torch-compile", "sklearn", "jax")
LABELS = {
    "backprop": "backprop",
    "torch": "PyTorch eager",
    "torch-compile": "torch.compile",
    "sklearn": "scikit-learn",
    "jax": "JAX jit",
}
PARTS = ("speed", "memory")
# compiling costs tens of seconds per shape: the smoke run leaves it out unless named
SMOKE_LEAVES_OUT = {"torch-compile": "compiling takes tens of seconds per shape; name it in --only"}

# Issue 19's targets, for the run with the override unset at 2 threads.
# (description, config, peer or None for the GEMM-only epoch, minimum): ours / peer >= minimum,
# or ours' roofline fraction >= minimum.
TRAIN_TARGETS = (
    ("train b128 >= 0.85 of the GEMM-only epoch", "mlp-b128", None, 0.85),
    ("train b512 >= 0.85 of the GEMM-only epoch", "mlp-b512", None, 0.85),
    ("train b128 vs JAX jit", "mlp-b128", "jax", 1.4),
    ("train b512 vs JAX jit", "mlp-b512", "jax", 1.4),
    ("train Nielsen b10 vs JAX jit", "nielsen-b10", "jax", 1.5),
)
INFERENCE_TARGET = 1.0  # ours / every peer's inference throughput, every config
TARGET_RUN = ("unset", 2)  # (mode, threads) the targets are stated for

# ----------------------------------------------------------------------------- data


def _read_idx(path: Path, max_items: int | None, chunk_items: int = 1_000) -> np.ndarray:
    """Read a gzip IDX file (uint8 payload) in chunks, so that no second full-size copy of
    the raw bytes is ever alive: images come back as float32 in [0, 1], labels as int64.

    Chunks of 1,000 images (784 KB): with 10,000 (7.8 MB) the freed chunk stayed in malloc's
    heap: the training process's RSS after loading was 13.6 MiB higher (benchmarks/memory.py)."""
    with gzip.open(path, "rb") as f:
        header = f.read(4)
        if len(header) != 4 or header[:2] != b"\x00\x00" or header[2] != 0x08:
            raise ValueError(f"{path} is not an IDX file of unsigned bytes (header {header!r})")
        ndim = header[3]
        dims = [int.from_bytes(f.read(4), "big") for _ in range(ndim)]
        n = dims[0] if max_items is None else min(dims[0], max_items)
        row = int(np.prod(dims[1:], dtype=np.int64)) if ndim > 1 else 1
        if ndim == 1:
            out = np.frombuffer(f.read(n), dtype=np.uint8).astype(np.int64)
            if out.shape[0] != n:
                raise ValueError(f"{path} ends after {out.shape[0]} of {n} labels")
            return out
        out = np.empty((n, row), dtype=np.float32)
        buf = np.empty(chunk_items * row, dtype=np.uint8)
        for lo in range(0, n, chunk_items):
            k = min(chunk_items, n - lo)
            view = memoryview(buf)[: k * row]
            if f.readinto(view) != k * row:
                raise ValueError(f"{path} ends before image {lo + k} of {n}")
            np.multiply(buf[: k * row].reshape(k, row), np.float32(1 / 255), out=out[lo : lo + k])
        return out


@dataclass
class Data:
    X_train: np.ndarray  # (n, 784) float32 in [0, 1]
    y_train: np.ndarray  # (n,) int64 labels
    X_test: np.ndarray
    y_test: np.ndarray
    source: str


def load_data(n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> Data:
    """MNIST from ``$BACKPROP_DATA/mnist`` (the first ``n_train``/``n_test`` images), or
    random data of MNIST's shape when the files are absent (said in ``source``)."""
    root = os.environ.get("BACKPROP_DATA")
    files = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    if root and all((Path(root) / "mnist" / f).is_file() for f in files):
        d = Path(root) / "mnist"
        return Data(
            _read_idx(d / files[0], n_train),
            _read_idx(d / files[1], n_train),
            _read_idx(d / files[2], n_test),
            _read_idx(d / files[3], n_test),
            f"MNIST from {d}",
        )
    rng = np.random.default_rng(seed)
    n_train = 60_000 if n_train is None else n_train
    n_test = 10_000 if n_test is None else n_test
    why = "BACKPROP_DATA is not set" if not root else f"no MNIST files in {root}/mnist"
    return Data(
        rng.random((n_train, 784), dtype=np.float32),
        rng.integers(0, 10, n_train),
        rng.random((n_test, 784), dtype=np.float32),
        rng.integers(0, 10, n_test),
        f"random data of MNIST's shape ({why})",
    )


# ----------------------------------------------------------------------------- threads


def thread_control_available() -> bool:
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` threads in every BLAS/OpenMP pool (threadpoolctl) and in
    PyTorch's intra-op pool (``torch.set_num_threads``) when PyTorch is loaded."""
    torch = sys.modules.get("torch")
    old_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    try:
        if thread_control_available():
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=n):
                yield
        else:
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(old_torch)


def pin_to_cpus(n: int) -> list[int]:
    """Confine this process, its existing threads included, to ``n`` of its CPUs, when it may
    use more; returns the CPUs it may use now.

    JAX's XLA runtime has no thread-count setting that a running process can change: it sizes
    its pool from the CPUs the process may use when JAX starts. A worker for ``n`` threads
    therefore pins itself before it imports any peer (OpenBLAS's threads, already started by
    NumPy, are pinned with it), so every implementation gets the same ``n`` cores."""
    if not hasattr(os, "sched_setaffinity"):
        return []
    cpus = sorted(os.sched_getaffinity(0))
    if n < len(cpus):
        cpus = cpus[:n]
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):  # a thread that has just ended
                os.sched_setaffinity(int(tid), cpus)
    return cpus


def blas_info() -> list[dict[str, Any]]:
    """threadpoolctl's view of the loaded BLAS / OpenMP libraries (kernel, version, threads)."""
    if not thread_control_available():
        return [{"note": "threadpoolctl is not installed: thread counts were not controlled"}]
    from threadpoolctl import threadpool_info

    keep = (
        "user_api",
        "internal_api",
        "prefix",
        "version",
        "architecture",
        "num_threads",
        "threading_layer",
        "filepath",
    )
    return [{k: v for k, v in lib.items() if k in keep} for lib in threadpool_info()]


# ----------------------------------------------------------------------------- implementations


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
    t = np.zeros((y.shape[0], k), dtype=np.float32)
    t[np.arange(y.shape[0]), y] = 1.0
    return t


class Ours:
    """backprop through its user path: ``MLP(...)`` and ``backprop.training.fit``."""

    name = "backprop"

    def __init__(self, cfg: Config, X: np.ndarray, y: np.ndarray) -> None:
        self.cfg, self.X, self.y = cfg, X, y
        self.model = backprop.MLP(
            list(cfg.sizes),
            activation=cfg.activation,
            output_activation=cfg.output_activation,
            loss=cfg.loss,
            init=cfg.init,
            dtype="float32",
            seed=0,
        )

    @staticmethod
    def unsupported(cfg: Config) -> str | None:
        return None

    def train_epoch(self, seed: int, n: int | None = None) -> float:
        X, y = (self.X, self.y) if n is None else (self.X[:n], self.y[:n])
        hist = fit(
            self.model,
            X,
            y,
            optimizer="sgd",
            lr=self.cfg.lr,
            epochs=1,
            batch_size=self.cfg.batch,
            progress=False,
            seed=seed,
        )
        return float(hist.epochs[-1]["loss"])

    def predict(self, X: np.ndarray) -> Any:
        return self.model.predict(X)


class Torch:
    """PyTorch CPU eager as a competent user writes it: nn.Sequential, torch.optim.SGD, and a
    per-epoch loop over a randperm, gathering each batch by index (no DataLoader)."""

    name = "torch"

    def __init__(self, cfg: Config, X: np.ndarray, y: np.ndarray) -> None:
        import torch
        from torch import nn

        self.torch, self.cfg = torch, cfg
        torch.manual_seed(0)
        act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[cfg.activation]
        layers: list[nn.Module] = []
        pairs = list(zip(cfg.sizes[:-1], cfg.sizes[1:], strict=True))
        for i, (fan_in, fan_out) in enumerate(pairs):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(pairs) - 1:
                layers.append(act())
        if cfg.output_activation == "sigmoid":
            layers.append(nn.Sigmoid())
        self.model = nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr)
        self.X = torch.from_numpy(X)
        if cfg.loss == "cross_entropy":
            self.T = torch.from_numpy(y)
            self.loss_fn: Callable[[Any, Any], Any] = nn.CrossEntropyLoss()
        else:
            # our "l2": mean over samples of 1/2 sum_j (y_j - t_j)^2
            self.T = torch.from_numpy(_onehot(y, cfg.sizes[-1]))
            mse_sum = nn.MSELoss(reduction="sum")
            self.loss_fn = lambda out, t: 0.5 * mse_sum(out, t) / out.shape[0]
        self.step: Callable[[Any, Any], Any] = self._step
        self.forward: Callable[[Any], Any] = self.model

    @staticmethod
    def unsupported(cfg: Config) -> str | None:
        return None

    def _step(self, xb: Any, tb: Any) -> Any:
        """One SGD step on a batch; returns the batch's mean loss (a 0-d tensor)."""
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(xb), tb)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def train_epoch(self, seed: int, n: int | None = None) -> float:
        torch, B = self.torch, self.cfg.batch
        n = self.X.shape[0] if n is None else n
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        self.model.train()
        total = 0.0
        for lo in range(0, n, B):
            idx = perm[lo : lo + B]
            xb, tb = self.X[idx], self.T[idx]
            total += self.step(xb, tb).item() * xb.shape[0]
        return total / n

    def predict(self, X: np.ndarray) -> Any:
        torch = self.torch
        self.model.eval()
        with torch.inference_mode():
            out = self.forward(torch.from_numpy(X))
            return torch.softmax(out, dim=1) if self.cfg.loss == "cross_entropy" else out


class TorchCompile(Torch):
    """The same PyTorch model, loss, optimizer and loop, with the whole training step
    (``zero_grad``, forward, loss, ``backward``, ``step``) and the inference forward passed
    through ``torch.compile`` (default mode, ``dynamic=False``: one graph per batch shape, each
    compiled in the warm-up, which runs the epoch's shapes)."""

    name = "torch-compile"

    def __init__(self, cfg: Config, X: np.ndarray, y: np.ndarray) -> None:
        super().__init__(cfg, X, y)
        self.step = self.torch.compile(self._step, dynamic=False)
        self.forward = self.torch.compile(self.model, dynamic=False)


class Sklearn:
    """scikit-learn's MLPClassifier with plain SGD (momentum 0, alpha 0), one epoch per fit.
    It has no quadratic loss, so it sits out Nielsen's network."""

    name = "sklearn"

    def __init__(self, cfg: Config, X: np.ndarray, y: np.ndarray) -> None:
        self.cfg, self.X, self.y = cfg, X, y
        self.clf: Any = None

    @staticmethod
    def unsupported(cfg: Config) -> str | None:
        if cfg.loss != "cross_entropy" or cfg.output_activation != "identity":
            return "MLPClassifier has no quadratic loss or sigmoid output: a different network"
        return None

    def _new(self, seed: int) -> Any:
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(
            hidden_layer_sizes=self.cfg.sizes[1:-1],
            activation={"relu": "relu", "sigmoid": "logistic"}[self.cfg.activation],
            solver="sgd",
            batch_size=self.cfg.batch,
            learning_rate="constant",
            learning_rate_init=self.cfg.lr,
            momentum=0.0,
            nesterovs_momentum=False,
            alpha=0.0,
            max_iter=1,
            shuffle=True,
            random_state=seed,
        )

    def train_epoch(self, seed: int, n: int | None = None) -> float:
        from sklearn.exceptions import ConvergenceWarning

        X, y = (self.X, self.y) if n is None else (self.X[:n], self.y[:n])
        clf = self._new(seed)
        with warnings.catch_warnings():
            # max_iter=1 is one epoch on purpose; sklearn warns that it did not converge
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        self.clf = clf
        return float(clf.loss_)

    def predict(self, X: np.ndarray) -> Any:
        return self.clf.predict_proba(X)


class Jax:
    """JAX on the CPU as a competent user writes it: the parameters as a list of ``(W, b)``
    arrays, the loss as a function, and one ``jax.jit``-compiled training step (batch gather,
    forward, ``value_and_grad``, SGD update, the epoch's loss sum) with the parameters donated,
    called once per batch from a Python loop; the data set and each epoch's permutation live on
    the device, and the loss sum comes back once, at the epoch's end. One compiled step per
    batch shape, both compiled in the warm-up."""

    name = "jax"

    def __init__(self, cfg: Config, X: np.ndarray, y: np.ndarray) -> None:
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp, self.cfg = jax, jnp, cfg
        rng = np.random.default_rng(0)
        params = []
        for fan_in, fan_out in zip(cfg.sizes[:-1], cfg.sizes[1:], strict=True):
            if cfg.init == "he_uniform":
                limit = np.sqrt(6.0 / fan_in)
                W = rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)
            else:  # normal, scaled by 1/sqrt(fan_in) (the timing does not depend on it)
                W = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
            params.append((jnp.asarray(W), jnp.zeros(fan_out, jnp.float32)))
        self.params = params
        self.n = X.shape[0]
        self.X = jnp.asarray(X)
        ce = cfg.loss == "cross_entropy"
        self.T = jnp.asarray(y.astype(np.int32) if ce else _onehot(y, cfg.sizes[-1]))
        hidden = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid}[cfg.activation]
        output = {"identity": lambda z: z, "sigmoid": jax.nn.sigmoid}[cfg.output_activation]

        def forward(params: list, x: Any) -> Any:
            for W, b in params[:-1]:
                x = hidden(x @ W + b)
            W, b = params[-1]
            return output(x @ W + b)

        def loss(params: list, x: Any, t: Any) -> Any:
            out = forward(params, x)
            if ce:  # mean over the batch of -log softmax(logits)[label]
                logp = jax.nn.log_softmax(out)
                return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1))
            return 0.5 * jnp.sum((out - t) ** 2) / x.shape[0]  # our "l2"

        lr = cfg.lr

        def step(
            params: list, total: Any, X: Any, T: Any, order: Any, start: Any, batch: int
        ) -> Any:
            idx = jax.lax.dynamic_slice(order, (start,), (batch,))
            value, grads = jax.value_and_grad(loss)(params, X[idx], T[idx])
            params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
            return params, total + batch * value  # the epoch's summed loss, on the device

        def probabilities(params: list, x: Any) -> Any:
            out = forward(params, x)
            return jax.nn.softmax(out) if ce else out

        self._step = jax.jit(step, static_argnames="batch", donate_argnums=(0, 1))
        self._predict = jax.jit(probabilities)

    @staticmethod
    def unsupported(cfg: Config) -> str | None:
        return None

    def train_epoch(self, seed: int, n: int | None = None) -> float:
        jnp, B = self.jnp, self.cfg.batch
        n = self.n if n is None else n
        # the order array always has the data set's length (a warm-up on fewer rows pads it),
        # so the warm-up compiles the very step that the timed epochs call
        order = np.zeros(self.n, dtype=np.int32)
        order[:n] = np.random.default_rng(seed).permutation(n)
        order = jnp.asarray(order)
        params, total = self.params, jnp.zeros((), jnp.float32)
        for lo in range(0, n, B):
            params, total = self._step(
                params, total, self.X, self.T, order, lo, batch=min(B, n - lo)
            )
        self.params = params
        return float(total) / n  # one transfer per epoch; it waits for every step to finish

    def predict(self, X: np.ndarray) -> Any:
        return np.asarray(self._predict(self.params, X))


IMPL_CLASSES: dict[str, type] = {
    "backprop": Ours,
    "torch": Torch,
    "torch-compile": TorchCompile,
    "sklearn": Sklearn,
    "jax": Jax,
}
IMPL_MODULES = {"torch": "torch", "torch-compile": "torch", "sklearn": "sklearn", "jax": "jax"}


def available_impls(wanted: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """The implementations that can run here, and a note for each one skipped."""
    ok, skipped = [], {}
    for name in wanted:
        module = IMPL_MODULES.get(name)
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                skipped[name] = f"{module} is not installed: skipped"
                continue
        ok.append(name)
    return ok, skipped


# ----------------------------------------------------------------------------- GEMM roofline


@dataclass(frozen=True)
class Gemm:
    """One matrix product of a training step: ``(m, k) @ (k, n)``.

    ``layout`` says how the engine's operands lie in memory: ``"NN"`` both C-contiguous
    (forward ``x @ W``), ``"TN"`` the left one a transposed view (``x.T @ delta``),
    ``"NT"`` the right one a transposed view (``delta @ W.T``)."""

    role: str
    m: int
    k: int
    n: int
    layout: str

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def step_gemms(sizes: tuple[int, ...], batch: int) -> list[Gemm]:
    """The matrix products of one training step on a batch of ``batch`` rows.

    Forward ``a = x W`` per layer; backward ``dW = x^T delta`` per layer and
    ``dX = delta W^T`` for every layer but the first (the data's gradient is never needed)."""
    gemms = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        gemms.append(Gemm(f"fwd{i}", batch, fan_in, fan_out, "NN"))
        gemms.append(Gemm(f"dW{i}", fan_in, batch, fan_out, "TN"))
        if i > 0:
            gemms.append(Gemm(f"dX{i}", batch, fan_out, fan_in, "NT"))
    return gemms


def epoch_batches(n: int, batch: int) -> dict[int, int]:
    """Batch size -> how many batches of that size one epoch over ``n`` rows has
    (the last, partial batch included)."""
    counts = {batch: n // batch}
    if n % batch:
        counts[n % batch] = counts.get(n % batch, 0) + 1
    return {b: c for b, c in counts.items() if c}


def _operands(g: Gemm, rng: np.random.Generator, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    if g.layout == "NN":
        return rng.random((g.m, g.k), dtype=dtype), rng.random((g.k, g.n), dtype=dtype)
    if g.layout == "TN":
        return rng.random((g.k, g.m), dtype=dtype).T, rng.random((g.k, g.n), dtype=dtype)
    return rng.random((g.m, g.k), dtype=dtype), rng.random((g.n, g.k), dtype=dtype).T


def gemm_rate(g: Gemm, dtype: Any = np.float32, min_time: float = 0.01, trials: int = 5) -> float:
    """NumPy's rate (FLOP/s) for ``g``: the fastest of ``trials`` timings, each a loop of
    ``np.matmul(a, b, out=c)`` lasting at least ``min_time`` seconds (per-call overhead
    included: any NumPy code pays it)."""
    a, b = _operands(g, np.random.default_rng(0), dtype)
    c = np.empty((g.m, g.n), dtype=dtype)
    np.matmul(a, b, out=c)
    reps = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            np.matmul(a, b, out=c)
        dt = time.perf_counter() - t0
        if dt >= min_time:
            break
        reps *= 2 if dt < min_time / 4 else 4
    best = dt / reps
    for _ in range(trials - 1):
        t0 = time.perf_counter()
        for _ in range(reps):
            np.matmul(a, b, out=c)
        best = min(best, (time.perf_counter() - t0) / reps)
    return g.flops / best


def roofline(
    sizes: tuple[int, ...],
    n: int,
    batch: int,
    min_time: float = 0.01,
    best: dict[Gemm, float] | None = None,
) -> dict[str, Any]:
    """Measured GEMM rates at every shape of an epoch over ``n`` rows, and the time the
    epoch's matrix products would take at those rates (``gemm_seconds``).

    ``best`` (shape -> FLOP/s) carries the fastest rates of earlier passes and is updated:
    the benchmark measures once per repeat, between the training epochs, and keeps each
    shape's best, so that a burst of load from another process cannot lower the roofline
    (and so flatter every implementation's fraction of it)."""
    best = {} if best is None else best
    shapes, seconds, flops = [], 0.0, 0
    for b, count in epoch_batches(n, batch).items():
        for g in step_gemms(sizes, b):
            best[g] = max(best.get(g, 0.0), gemm_rate(g, min_time=min_time))
            shapes.append({**asdict(g), "batches": count, "gflops_per_s": best[g] / 1e9})
            seconds += count * g.flops / best[g]
            flops += count * g.flops
    return {"shapes": shapes, "gemm_seconds": seconds, "gemm_flops": flops}


def gemm_epoch_plan(sizes: tuple[int, ...], n: int, batch: int) -> list[tuple[int, list]]:
    """Operands for :func:`gemm_epoch_seconds`: per batch size, its count and the step's
    products as ``(a, b, out)`` in the engine's layouts (random float32 data)."""
    rng = np.random.default_rng(0)
    plan = []
    for b, count in epoch_batches(n, batch).items():
        ops = []
        for g in step_gemms(sizes, b):
            left, right = _operands(g, rng, np.float32)
            ops.append((left, right, np.empty((g.m, g.n), dtype=np.float32)))
        plan.append((count, ops))
    return plan


def gemm_epoch_seconds(plan: list[tuple[int, list]]) -> float:
    """Seconds to run every matrix product of one epoch, step after step, and nothing else
    (``np.matmul(a, b, out=c)``): the epoch's GEMM roofline, timed like an implementation."""
    t0 = time.perf_counter()
    for count, ops in plan:
        for _ in range(count):
            for a, b, c in ops:
                np.matmul(a, b, out=c)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- the run


def _loadavg() -> list[str] | None:
    """The 1, 5 and 15 minute load averages: above the thread count, others shared the cores."""
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return None


#: The GEMM-only epoch's place in a repeat's order (see _rotated).
GEMM_ONLY = "GEMM-only epoch"


def _rotated(names: list[str], r: int) -> list[str]:
    """``names`` in repeat ``r``'s order: started ``r`` places further along, so that over
    the repeats each runs after each of the others (threads a library leaves spinning slow
    the next call down: benchmarks/NOTES.md, OPENBLAS_THREAD_TIMEOUT)."""
    k = r % len(names)
    return [*names[k:], *names[:k]]


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def warmup_rows(n: int, batch: int, at_least: int) -> int:
    """Rows for the warm-up: at least ``at_least`` (up to ``n``), ending in a partial batch of
    the same size as the epoch's, so that every batch shape of the timed epochs (and so every
    compiled graph of the compiling peers) has been seen before the clock starts."""
    if n <= at_least:
        return n
    full = -(-at_least // batch)  # whole batches, rounded up
    return min(n, full * batch + n % batch)


def bench_config(
    cfg: Config,
    data: Data,
    impls: list[str],
    repeats: int,
    warmup_at_least: int,
    min_time: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Train and infer with every implementation on ``cfg``; returns the raw timings.

    An implementation that does not offer this network is left out with its reason; one that
    fails to compile (``torch.compile``) is left out with the error."""
    n = data.X_train.shape[0]
    n_warm = warmup_rows(n, cfg.batch, warmup_at_least)
    models: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    warmup_seconds: dict[str, float] = {}
    for name in impls:
        cls = IMPL_CLASSES[name]
        why = cls.unsupported(cfg)
        if why:
            skipped[name] = why
            continue
        t0 = time.perf_counter()
        try:
            impl = cls(cfg, data.X_train, data.y_train)
            # warm-up: code paths, allocator pools, BLAS buffers, compiled graphs
            impl.train_epoch(seed=10_000, n=n_warm)
            impl.predict(data.X_test)
        except Exception as exc:  # only a compiler may fail here; the others must not
            if name != "torch-compile":
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            skipped[name] = f"torch.compile failed: {type(exc).__name__}: {first}"
            log(f"  {name}: {skipped[name]}")
            continue
        warmup_seconds[name] = time.perf_counter() - t0
        models[name] = impl
    names = list(models)
    train: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    losses: dict[str, list[float]] = {name: [] for name in names}
    rates: dict[Gemm, float] = {}
    plan = gemm_epoch_plan(cfg.sizes, n, cfg.batch)
    gemm_epochs: list[float] = []
    gemm_cpu: list[float] = []
    for r in range(repeats):
        # interleaved: every repeat runs each in turn, the GEMM-only epoch among them, in an
        # order rotated by one each repeat, so that none always follows the same call (a
        # call after NumPy's, whose OpenBLAS threads still spin, ran up to 1.5x slower)
        for name in _rotated([*names, GEMM_ONLY], r):
            if name == GEMM_ONLY:
                c0 = time.process_time()
                gemm_epochs.append(gemm_epoch_seconds(plan))
                gemm_cpu.append(time.process_time() - c0)
                continue
            c0, t0 = time.process_time(), time.perf_counter()
            loss = models[name].train_epoch(seed=r)
            train[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            losses[name].append(loss)
        roof = roofline(cfg.sizes, n, cfg.batch, min_time=min_time, best=rates)
        log(
            f"  {cfg.name} repeat {r + 1}/{repeats}: "
            + ", ".join(f"{k} {n / v[-1]:,.0f}/s" for k, v in train.items())
            + f"; GEMM-only epoch {n / gemm_epochs[-1]:,.0f}/s"
        )
    infer: dict[str, list[float]] = {name: [] for name in names}
    for r in range(max(repeats, 3)):
        for name in _rotated(names, r):
            t0 = time.perf_counter()
            models[name].predict(data.X_test)
            infer[name].append(time.perf_counter() - t0)
    roof["passes"] = repeats
    roof["gemm_epoch_seconds"] = gemm_epochs
    roof["gemm_epoch_cpu_seconds"] = gemm_cpu
    t_gemm = _median(gemm_epochs)
    roof["gemm_epoch_samples_per_s"] = n / t_gemm
    out: dict[str, Any] = {
        "config": asdict(cfg),
        "n_train": n,
        "n_test": data.X_test.shape[0],
        "warmup_rows": n_warm,
        "loadavg_after": _loadavg(),
        "roofline": roof,
        "skipped": skipped,
        "impls": {},
    }
    for name in names:
        t_train = _median(train[name])
        out["impls"][name] = {
            "warmup_seconds": warmup_seconds[name],
            "train_seconds": train[name],
            "train_cpu_seconds": cpu[name],
            "train_samples_per_s": n / t_train,
            "roofline_fraction": t_gemm / t_train,
            "roofline_fraction_isolated": roof["gemm_seconds"] / t_train,
            "final_losses": losses[name],
            "infer_seconds": infer[name],
            "infer_samples_per_s": data.X_test.shape[0] / _median(infer[name]),
        }
    return out


def ratios(result: dict[str, Any]) -> None:
    """Add ``ours / this`` throughput ratios to each implementation's entry."""
    ours = result["impls"].get("backprop")
    for entry in result["impls"].values():
        for key in ("train", "infer"):
            entry[f"{key}_ours_over_this"] = (
                None
                if ours is None
                else ours[f"{key}_samples_per_s"] / entry[f"{key}_samples_per_s"]
            )


def check_targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 19's targets, evaluated on ``results`` (one run's configs)."""
    by_name = {r["config"]["name"]: r for r in results}
    rows = []
    for what, cfg_name, peer, minimum in TRAIN_TARGETS:
        r = by_name.get(cfg_name)
        if r is None or "backprop" not in r["impls"] or (peer and peer not in r["impls"]):
            continue
        ours = r["impls"]["backprop"]
        value = (
            ours["roofline_fraction"] if peer is None else r["impls"][peer]["train_ours_over_this"]
        )
        # ours / peer >= minimum means ours' roofline fraction >= minimum x the peer's: above
        # 1, the whole step would have to beat its matrix products alone at NumPy's rates
        needs = minimum if peer is None else minimum * r["impls"][peer]["roofline_fraction"]
        rows.append(
            {
                "target": what,
                "value": value,
                "minimum": minimum,
                "pass": value >= minimum,
                "needs_roofline_fraction": needs,
            }
        )
    for r in results:
        for peer, e in r["impls"].items():
            if peer == "backprop" or "backprop" not in r["impls"]:
                continue
            value = e["infer_ours_over_this"]
            rows.append(
                {
                    "target": f"inference {r['config']['name']} vs {LABELS[peer]}",
                    "value": value,
                    "minimum": INFERENCE_TARGET,
                    "pass": value >= INFERENCE_TARGET,
                }
            )
    return rows


# ----------------------------------------------------------------------------- machine


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers came from: CPU, cores, memory, library versions, thread settings,
    and the OpenBLAS override this environment sets (each worker records the kernel)."""
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "backprop": getattr(backprop, "__version__", "unknown"),
        "os_cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "openblas_override_found": blas_env.found_override(),
        "thread_env": {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")},
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
    }
    with contextlib.suppress(OSError):
        cpuinfo = Path("/proc/cpuinfo").read_text()
        models = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.splitlines()
            if ln.startswith("model name")
        ]
        flags = next(
            (ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines() if ln.startswith("flags")),
            [],
        )
        info["cpu_model"] = models[0] if models else platform.processor()
        fields = ("cpu family", "model", "stepping", "cpu MHz")
        for ln in cpuinfo.splitlines():
            key = ln.split(":", 1)[0].strip()
            if key in fields and key not in info:
                info[key] = ln.split(":", 1)[1].strip()
        info["hypervisor"] = "hypervisor" in flags
        info["cpu_simd"] = [
            f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags
        ]
    caches = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        with contextlib.suppress(OSError):
            level, kind = (
                (index / "level").read_text().strip(),
                (index / "type").read_text().strip(),
            )
            caches[f"L{level} {kind}"] = (index / "size").read_text().strip()
    info["cpu0_caches"] = caches
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()
        info["mem_total_gib"] = round(int(mem[1]) / 2**20, 1)
    info["loadavg_start"] = _loadavg()
    for dist in ("torch", "scikit-learn", "jax", "jaxlib", "threadpoolctl"):
        info[dist] = _version(dist)
    return info


def libraries() -> dict[str, Any]:
    """What a worker ran with: the peers' versions, PyTorch's math libraries and thread pool,
    JAX's devices, and every BLAS / OpenMP library threadpoolctl sees (with the kernel each
    OpenBLAS chose)."""
    info: dict[str, Any] = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_parallel"] = [
            ln.strip()
            for ln in torch.__config__.parallel_info().splitlines()
            if "Math Kernel" in ln or "MKL-DNN" in ln or "parallel backend" in ln
        ]
    jax = sys.modules.get("jax")
    if jax is not None:
        info["jax"] = jax.__version__
        info["jax_devices"] = [str(d) for d in jax.devices()]
    sklearn = sys.modules.get("sklearn")
    if sklearn is not None:
        info["sklearn"] = sklearn.__version__
    info["blas"] = blas_info()
    return info


# ----------------------------------------------------------------------------- output


def _fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def _columns(report: dict[str, Any]) -> list[str]:
    """The implementations that ran in any run, in the order of ``IMPLS``."""
    seen = {name for run in report["runs"] for r in run["configs"] for name in r["impls"]}
    return [name for name in IMPLS if name in seen]


def _kernel_text(run: dict[str, Any]) -> str:
    kernels = run.get("kernels") or []
    if not kernels:
        return "no OpenBLAS seen (threadpoolctl missing?)"
    return ", ".join(f"{k['architecture']} ({k['library']})" for k in kernels)


def gemm_spread(result: dict[str, Any]) -> float:
    """Slowest over fastest GEMM-only epoch of a config's repeats: the same fixed work, so
    near 1 on a quiet machine; far above it, other processes took the cores during the run
    and its medians say little."""
    seconds = result["roofline"]["gemm_epoch_seconds"]
    return max(seconds) / min(seconds)


def _network(cfg: dict[str, Any]) -> str:
    sizes = "-".join(map(str, cfg["sizes"]))
    return f"{sizes} {cfg['activation']} {'CE' if cfg['loss'] == 'cross_entropy' else 'L2'}"


def markdown(report: dict[str, Any]) -> str:
    """The results as markdown: the runs and the OpenBLAS kernel each recorded, then one table
    (training per config, then inference per network; every peer's samples/s with
    ``backprop ÷ this`` beside it, the GEMM-only epoch and how steady it was), issue 19's
    targets, memory."""
    impls = _columns(report)
    lines = ["Runs (OpenBLAS mode, threads: the kernel OpenBLAS chose):", ""]
    for mode, entry in report["blas_modes"].items():
        if "skipped" in entry:
            lines.append(f"- `{mode}`: not run ({entry['skipped']})")
    for run in report["runs"]:
        env = ", ".join(f"{k}={v}" for k, v in run["env"].items() if v is not None) or "unset"
        lines.append(
            f"- `{run['mode']}`, {run['threads']} thread(s): {_kernel_text(run)}; "
            f"override variables: {env}; load average {' '.join(run['loadavg_start'] or [])} "
            f"-> {' '.join(run['loadavg_end'] or [])}"
        )
    for name, why in (report.get("skipped") or {}).items():
        lines.append(f"- {LABELS.get(name, name)} not run: {why}")
    head = " | ".join(LABELS[name] for name in impls)
    lines += [
        "",
        "samples/s, with backprop ÷ this in brackets:",
        "",
        f"| | BLAS mode | threads | {head} | GEMM-only epoch | backprop ÷ GEMM-only "
        "| GEMM-only slowest ÷ fastest |",
        "|---|---|---:|" + "---:|" * (len(impls) + 3),
    ]

    def row(what: str, run: dict[str, Any], r: dict[str, Any], key: str) -> str:
        cells = []
        for name in impls:
            e = r["impls"].get(name)
            if e is None:
                cells.append("-")
            elif name == "backprop":
                cells.append(f"{e[f'{key}_samples_per_s']:,.0f}")
            else:
                ratio = _fmt(e[f"{key}_ours_over_this"], ".2f")
                cells.append(f"{e[f'{key}_samples_per_s']:,.0f} ({ratio})")
        if key == "train":
            ours = r["impls"].get("backprop")
            cells.append(f"{r['roofline']['gemm_epoch_samples_per_s']:,.0f}")
            cells.append(_fmt(ours and ours["roofline_fraction"], ".2f"))
            cells.append(f"{gemm_spread(r):.2f}")
        else:
            cells += ["-", "-", "-"]
        kernel = "/".join(sorted({k["architecture"] for k in run.get("kernels") or []}))
        mode = f"{run['mode']} ({kernel})" if kernel else run["mode"]
        return f"| {what} | {mode} | {run['threads']} | " + " | ".join(cells) + " |"

    names = [r["config"]["name"] for run in report["runs"] for r in run["configs"]]
    by_run = [{r["config"]["name"]: r for r in run["configs"]} for run in report["runs"]]
    configs = list(dict.fromkeys(names))
    for name in configs:
        for run, results in zip(report["runs"], by_run, strict=True):
            if name in results:
                r = results[name]
                what = f"train {_network(r['config'])}, B={r['config']['batch']}"
                lines.append(row(what, run, r, "train"))
    networks: dict[str, str] = {}  # one inference row per network: the first config's model
    for results in by_run:
        for name in configs:
            if name in results:
                networks.setdefault(_network(results[name]["config"]), name)
    for network, name in networks.items():
        for run, results in zip(report["runs"], by_run, strict=True):
            if name in results:
                lines.append(row(f"inference {network}", run, results[name], "infer"))
    lines += [
        "",
        "GEMM-only epoch: every matrix product of every step at NumPy's measured rates, "
        "nothing else. GEMM-only slowest ÷ fastest: that same fixed work timed once per repeat; "
        "far above 1, other processes took the cores during the row, and its ratios measure "
        "them as much as the implementations.",
    ]
    target_runs = [r for r in report["runs"] if (r["mode"], r["threads"]) == TARGET_RUN]
    if target_runs and target_runs[0]["targets"]:
        mode, threads = TARGET_RUN
        lines += [
            "",
            f"Issue 19's targets (mode `{mode}`, {threads} threads):",
            "",
            "| target | measured | required | roofline fraction it needs | result |",
            "|---|---:|---:|---:|---|",
        ]
        for t in target_runs[0]["targets"]:
            needs = t.get("needs_roofline_fraction")
            lines.append(
                f"| {t['target']} | {t['value']:.2f} | >= {t['minimum']:g} "
                f"| {_fmt(needs, '.2f')} | {'PASS' if t['pass'] else 'FAIL'} |"
            )
    mem = report.get("memory")
    if mem:
        mib = 2**20
        rss = mem["rss_after_epoch_bytes"]
        growth_ok = "PASS" if mem["no_growth"] else "FAIL"
        lines += [
            "",
            "| memory (backprop, MNIST-shaped run) | MiB |",
            "|---|---:|",
            f"| interpreter baseline (numpy + backprop imported) "
            f"| {mem['baseline_bytes'] / mib:.1f} |",
            f"| dataset | {mem['dataset_bytes'] / mib:.1f} |",
            f"| peak RSS of the training run | {mem['peak_bytes'] / mib:.1f} |",
            f"| RSS after epoch 1 / after epoch {len(rss)} | {rss[0] / mib:.1f} / "
            f"{rss[-1] / mib:.1f} ({growth_ok}: growth {mem['growth_bytes'] / mib:+.2f}) |",
        ]
    return "\n".join(lines) + "\n"


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The medians and ratios of ``report`` without the raw timings: the one result file
    kept in git (``benchmarks/results/bench-summary.json``)."""
    keep = ("train_samples_per_s", "infer_samples_per_s", "train_ours_over_this")
    keep += ("infer_ours_over_this", "roofline_fraction")
    runs = []
    for run in report["runs"]:
        configs = {}
        for r in run["configs"]:
            entry: dict[str, Any] = {
                "gemm_only_samples_per_s": round(r["roofline"]["gemm_epoch_samples_per_s"]),
                "gemm_only_spread": round(gemm_spread(r), 3),
            }
            for name, e in r["impls"].items():
                entry[name] = {k: round(e[k], 3) for k in keep}
                cpu_over_wall = sum(e["train_cpu_seconds"]) / sum(e["train_seconds"])
                entry[name]["cpu_over_wall"] = round(cpu_over_wall, 3)
            entry["skipped"] = r["skipped"]
            configs[r["config"]["name"]] = entry
        runs.append(
            {
                "mode": run["mode"],
                "threads": run["threads"],
                "env": run["env"],
                "kernels": [k["architecture"] for k in run["kernels"]],
                "loadavg": [run.get("loadavg_start"), run.get("loadavg_end")],
                "configs": configs,
                "targets_failed": [t["target"] for t in run["targets"] if not t["pass"]],
            }
        )
    machine = report["machine"]
    out = {
        "machine": {
            k: machine.get(k)
            for k in (
                "date",
                "cpu_model",
                "cpu family",
                "model",
                "usable_cpus",
                "cpu_simd",
                "hypervisor",
                "python",
                "numpy",
                "torch",
                "scikit-learn",
                "jax",
                "openblas_override_found",
            )
        },
        "data": report["data"],
        "repeats": report["repeats"],
        "blas_modes": report["blas_modes"],
        "skipped": report["skipped"],
        "runs": runs,
    }
    if report.get("memory"):
        out["memory"] = {
            k: report["memory"][k] for k in ("peak_bytes", "growth_bytes", "no_growth")
        }
    return out


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes (600 rows), 1 repeat, no torch.compile: every other code path in seconds",
    )
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="thread counts to run at, e.g. 1 2 (default: 1 and 2; smoke: 1)",
    )
    p.add_argument(
        "--repeats", type=int, default=None, help="timed epochs per implementation (default 5)"
    )
    p.add_argument(
        "--blas-mode",
        choices=("unset", "override", "both"),
        default=None,
        help="OpenBLAS override: 'unset' removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for the "
        "benchmark's processes, 'override' keeps them as found, 'both' runs each "
        "(default: both; smoke: unset)",
    )
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write all results here")
    p.add_argument(
        "--markdown", type=Path, default=None, metavar="OUT", help="write the tables here"
    )
    p.add_argument(
        "--summary",
        type=Path,
        default=None,
        metavar="OUT",
        help="write the medians and ratios alone here (benchmarks/results/bench-summary.json)",
    )
    p.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"restrict to these configs ({', '.join(c.name for c in CONFIGS)}), "
        f"implementations ({', '.join(IMPLS)}) and parts ({', '.join(PARTS)}); "
        "a kind not named is kept whole",
    )
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="RUN.json",
        help="measure nothing: print the tables (and --markdown/--summary) of a saved --json",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    known = {c.name for c in CONFIGS} | set(IMPLS) | set(PARTS)
    bad = sorted(set(args.only or ()) - known)
    if bad:
        p.error(f"--only got unknown names {bad}; expected any of {sorted(known)}")
    if args.repeats is not None and args.repeats < 1:
        p.error(f"--repeats must be at least 1; got {args.repeats}")
    if args.threads and min(args.threads) < 1:
        p.error(f"--threads must be positive; got {args.threads}")
    if args.worker and (not args.threads or len(args.threads) != 1 or not args.json):
        p.error("--worker takes one thread count and --json")
    return args


def _select(only: list[str] | None, names: tuple[str, ...]) -> tuple[str, ...]:
    named = [n for n in names if only and n in only]
    return tuple(named) if named else names


def _log(s: str) -> None:
    print(s, file=sys.stderr, flush=True)


def worker(args: argparse.Namespace) -> int:
    """Measure every config at one thread count in this process, in the OpenBLAS mode its
    environment sets, and write the run as JSON."""
    n_threads = args.threads[0]
    cpus = pin_to_cpus(n_threads)  # before any peer is imported: XLA sizes its pool once
    configs = [c for c in CONFIGS if c.name in _select(args.only, tuple(c.name for c in CONFIGS))]
    wanted = _select(args.only, IMPLS)
    left_out = {}
    if args.smoke:
        left_out = {k: v for k, v in SMOKE_LEAVES_OUT.items() if not (args.only and k in args.only)}
        wanted = tuple(name for name in wanted if name not in left_out)
    impls, skipped = available_impls(wanted)
    skipped.update(left_out)
    repeats = args.repeats or (1 if args.smoke else 5)
    if args.smoke:
        data = load_data(n_train=600, n_test=200)  # > 512: every batch size fits (sklearn warns)
        at_least, min_time = 600, 1e-4
    else:
        data = load_data()
        at_least, min_time = 5_000, 0.01
    mode = blas_env.mode_of_this_process()
    for name, why in skipped.items():
        _log(f"note: {name}: {why}")
    if not thread_control_available():
        _log("note: threadpoolctl is not installed: BLAS thread counts are not controlled")
    _log(
        f"worker: OpenBLAS mode {mode}, {n_threads} thread(s), CPUs {cpus}; data: {data.source}; "
        f"{data.X_train.shape[0]} train, {data.X_test.shape[0]} test rows"
    )
    run: dict[str, Any] = {
        "mode": mode,
        "threads": n_threads,
        "env": {k: os.environ.get(k) for k in blas_env.OVERRIDE_VARS},
        "cpus": cpus,
        "data": data.source,
        "repeats": repeats,
        "skipped": skipped,
        "loadavg_start": _loadavg(),
        "configs": [],
    }
    with limit_threads(n_threads):
        for cfg in configs:
            _log(f"{mode}, threads={n_threads}: {cfg.name}")
            r = bench_config(cfg, data, impls, repeats, at_least, min_time, _log)
            ratios(r)
            run["configs"].append(r)
        run["libraries"] = libraries()  # under the limit: the pools' sizes as used
    run["kernels"] = blas_env.openblas_kernels()
    run["targets"] = check_targets(run["configs"])
    run["loadavg_end"] = _loadavg()
    args.json.write_text(json.dumps(run, indent=2, default=float) + "\n")
    return 0


def _run_worker(args: argparse.Namespace, mode: str, n_threads: int, out: Path) -> dict[str, Any]:
    """Start a worker for ``mode`` at ``n_threads`` in a fresh process whose environment has
    the override removed or kept; its log goes to this process's stderr."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads", str(n_threads)]
    cmd += ["--json", str(out)]
    if args.smoke:
        cmd.append("--smoke")
    if args.repeats:
        cmd += ["--repeats", str(args.repeats)]
    if args.only:
        cmd += ["--only", *args.only]
    proc = subprocess.run(cmd, env=blas_env.env_for_mode(mode), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the worker for mode {mode}, {n_threads} thread(s) failed")
    run = json.loads(out.read_text())
    if run["mode"] != mode:  # the environment did not reach the worker
        raise RuntimeError(f"the worker for mode {mode} ran in mode {run['mode']}")
    return run


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    for out in (args.json, args.markdown, args.summary):
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
    if args.report:
        report = json.loads(args.report.read_text())
        runs = report.get("runs") if isinstance(report, dict) else None
        saved = isinstance(runs, list) and all(
            isinstance(r, dict) and isinstance(r.get("configs"), list)
            and all(isinstance(c, dict) and "impls" in c for c in r["configs"])
            for r in runs
        )  # fmt: skip
        if not saved:
            raise SystemExit(f"bench.py: error: --report {args.report} is not a run saved with "
                             "--json (a --summary file holds the ratios alone)")  # fmt: skip
        write_outputs(report, args)
        return 0
    parts = _select(args.only, PARTS)
    threads = args.threads or ([1] if args.smoke else [1, 2])
    found = blas_env.found_override()
    wanted_modes = {"both": blas_env.MODES, None: ("unset",) if args.smoke else blas_env.MODES}
    modes: dict[str, dict[str, Any]] = {}
    for mode in wanted_modes.get(args.blas_mode, (args.blas_mode,)):
        if mode == "override" and not found:
            modes[mode] = {
                "skipped": "this environment sets neither OPENBLAS_CORETYPE nor "
                "OPENBLAS_L2_SIZE: the override mode would repeat the unset mode"
            }
        else:
            modes[mode] = {"variables": found, "removed": mode == "unset"}
    report: dict[str, Any] = {
        "machine": machine_info(),
        "smoke": args.smoke,
        "repeats": args.repeats or (1 if args.smoke else 5),
        "inference_batch": "the whole test set in one call",
        "blas_modes": modes,
        "skipped": {},
        "runs": [],
    }
    if "speed" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            for n_threads in threads:
                for mode, entry in modes.items():
                    if "skipped" in entry:
                        continue
                    run = _run_worker(args, mode, n_threads, Path(tmp) / f"{mode}-{n_threads}.json")
                    report["runs"].append(run)
                    report["data"] = run["data"]
                    report["skipped"].update(run["skipped"])
                    if args.json:  # a long run that is stopped keeps what it measured
                        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
    if "memory" in parts:
        import memory

        _log("memory: fresh subprocesses, OpenBLAS override unset")
        report["memory"] = memory.measure(smoke=args.smoke, threads=max(threads))
    report["machine"]["loadavg_end"] = _loadavg()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
    write_outputs(report, args)
    return 0


def write_outputs(report: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the tables; write them to ``--markdown`` and the summary to ``--summary``."""
    table = markdown(report)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.summary:
        args.summary.write_text(json.dumps(summary(report), indent=1, default=float) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
