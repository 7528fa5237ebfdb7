"""One run on an NVIDIA GPU: agreement checks, a kernel profile, a throughput table, targets.

    python scripts/gpu_check.py                # on the GPU machine (about 3-5 minutes)
    python scripts/gpu_check.py --cpu-smoke    # the same code, torch on the CPU, tiny sizes

1. Agreement: backprop on torch CUDA (and on CuPy, if importable) against backprop on
   NumPy float64: in float32 (relative error < 1e-5, TF32 off) and in float64 (< 1e-12):
   forward and gradients for every activation x loss, three steps of every optimizer (flat
   and per-array), model files both ways (GPU -> NumPy and NumPy -> GPU), and ``fit`` with
   and without the CUDA graph for SGD, momentum and Adam (must be bit-identical, and the
   graph must really have replayed).
2. Profile: one step's kernels (count and device time) for backprop and for PyTorch eager
   at batch 128 and 8192, and backprop's graph replayed alone (the device's step time).
3. Throughput, float32, random data, MLP 784-256-128-10 (ReLU), softmax cross-entropy,
   SGD, at batch 128, 1024 and 8192: backprop (cupy; torch; torch + CUDA graph) against
   PyTorch eager (nn.Linear + autograd + torch.optim.SGD) and PyTorch with its whole step
   in a CUDA graph. Then a 4096-4096-4096-10 MLP at batch 4096 with achieved TFLOP/s.
   backprop is timed through ``fit`` (its epochs' own ``time``, the first epoch, which
   warms up and captures, left out); PyTorch through a loop with the same work per epoch
   (a fresh permutation, gather on the device, loss accumulated on the device).
4. The issue's targets, PASS/FAIL, and ``targets_met``.

Every section runs in its own try/except: a failure is printed and recorded, and the rest
still runs. Results go to stdout (markdown), to gpu_check.json / gpu_check.md in $OUT (or
--out, or the current folder), and, on a GPU, to benchmarks/results/gpu-<name>.json (for an
H200: benchmarks/results/gpu-h200.json), the record that docs/gpu.md shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from backprop import ACTIVATIONS, MLP  # noqa: E402
from backprop.io import load_model, save_model  # noqa: E402
from backprop.losses import LOSSES  # noqa: E402
from backprop.optimizers import OPTIMIZERS, get_optimizer  # noqa: E402

FULL = {
    "sizes": [784, 256, 128, 10],
    "batches": [128, 1024, 8192],
    "steps": {128: 200, 1024: 100, 8192: 50},  # full batches per epoch
    "epochs": 5,  # per round; the first WARM_EPOCHS of each are left out of the timing
    "rounds": 3,  # the contenders take turns, round after round
    "wide_sizes": [4096, 4096, 4096, 10],
    "wide_batch": 4096,
    "wide_steps": 20,
}
SMOKE = {
    "sizes": [20, 16, 8, 4],
    "batches": [8, 32],
    "steps": {8: 4, 32: 3},
    "epochs": 3,
    "rounds": 2,
    "wide_sizes": [32, 32, 32, 4],
    "wide_batch": 16,
    "wide_steps": 3,
}
AGREE_TOL = {"float32": 1e-5, "float64": 1e-12}
# Epochs at the start of each timed run that are not timed: the first captures the graph
# and warms caches; in the second the GPU's clocks and the host are still settling (an
# epoch at batch 8192 is only tens of milliseconds; the first epochs ran up to 1.7x slower).
WARM_EPOCHS = 2
ROOT = Path(__file__).resolve().parents[1]


def _rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


# ------------------------------------------------------------------------ agreement
class _Recorder:
    """Records the StepGraph objects that ``fit`` makes (to check that a graph replayed)."""

    def __enter__(self):
        import backprop.training.cuda_graph as cg

        self.cg, self.original, self.graphs = cg, cg.StepGraph, []
        recorder = self

        class Recording(cg.StepGraph):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                recorder.graphs.append(self)

        cg.StepGraph = Recording
        return self

    def __exit__(self, *exc):
        self.cg.StepGraph = self.original


def _agreement(backend: str, device: str | None, dtype: str, smoke: bool) -> dict[str, Any]:
    """backprop on (backend, device) in ``dtype`` against NumPy float64; worst errors."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(9, 5)).astype(np.float32).astype(np.float64)
    T = rng.dirichlet(np.ones(3), 9).astype(np.float32).astype(np.float64)
    sizes = [5, 7, 3]

    def pair(act, out, loss):
        dev = MLP(sizes, act, out, loss, seed=1, init_scale=0.6, dtype=dtype,
                  backend=backend, device=device)  # fmt: skip
        ref = MLP(sizes, act, out, loss, seed=1, init_scale=0.6, dtype="float64")
        ref.load_state_dict({k: v.astype(np.float64) for k, v in dev.state_dict().items()})
        return dev, ref

    worst = {"forward": 0.0, "gradients": 0.0, "optimizers": 0.0}
    for act in ACTIVATIONS:
        for loss in LOSSES:
            out = "identity" if LOSSES[loss].from_logits else act
            dev, ref = pair(act, out, loss)
            y = dev.backend.to_numpy(dev.forward(X))
            worst["forward"] = max(worst["forward"], _rel(y, ref.forward(X)))
            _, g = dev.gradients(X, T)
            _, g_ref = ref.gradients(X, T)
            for k, v in g_ref.items():
                worst["gradients"] = max(worst["gradients"], _rel(dev.backend.to_numpy(g[k]), v))
    for name in OPTIMIZERS:
        for flat in (True, False):
            dev, ref = pair("tanh", "identity", "cross_entropy")
            o_dev, o_ref = get_optimizer(name, lr=0.05), get_optimizer(name, lr=0.05)
            for _ in range(3):
                dev.gradients(X, T)
                ref.gradients(X, T)
                o_dev.step(dev.params, dev.grads, flat=dev.flat if flat else None)
                o_ref.step(ref.params, ref.grads, flat=ref.flat if flat else None)
            for k, v in ref.state_dict().items():
                worst["optimizers"] = max(worst["optimizers"], _rel(dev.state_dict()[k], v))
    result: dict[str, Any] = {"backend": backend, "device": device, "dtype": dtype, **worst}

    with tempfile.TemporaryDirectory() as tmp:  # model files both ways
        dev, ref = pair("relu", "identity", "cross_entropy")
        path = Path(tmp) / "m.safetensors"
        save_model(path, dev)
        host = load_model(path)
        from_device = all(
            np.array_equal(host.state_dict()[k], v) for k, v in dev.state_dict().items()
        )
        save_model(path, host)
        back = load_model(path, backend=backend, device=device)
        to_device = type(back.params["layers.0.W"]) is type(dev.params["layers.0.W"]) and all(
            np.array_equal(back.state_dict()[k], v) for k, v in host.state_dict().items()
        )
        result["file_round_trip"] = from_device and to_device

    if backend == "torch" and device == "cuda":  # the graph must not change a single bit
        Xf = rng.normal(size=(200, 5))
        labels = rng.integers(0, 3, 200)
        identical, replays = True, 0
        for name in ("sgd", "momentum", "adam"):
            a, _ = pair("tanh", "identity", "cross_entropy")
            b, _ = pair("tanh", "identity", "cross_entropy")
            kw = dict(epochs=3, batch_size=32, optimizer=name, lr=0.05, seed=2)
            ha = a.fit(Xf, labels, cuda_graph=False, **kw)
            with _Recorder() as rec:
                hb = b.fit(Xf, labels, cuda_graph=True, **kw)
            replays = min(replays or 10**9, sum(g.stats.replays for g in rec.graphs))
            identical &= ha["loss"] == hb["loss"] and all(
                np.array_equal(a.state_dict()[k], v) for k, v in b.state_dict().items()
            )
        result["graph_bit_identical"] = identical and replays > 0
        result["graph_replays"] = replays
    elif not smoke:
        result["graph_bit_identical"] = None
    numbers = [worst["forward"], worst["gradients"], worst["optimizers"]]
    result["pass"] = (
        all(e < AGREE_TOL[dtype] for e in numbers)
        and result["file_round_trip"]
        and result.get("graph_bit_identical") is not False
    )
    return result


# ------------------------------------------------------------------------- profile
def _profile(args, report) -> None:
    """Kernels per step and their device time (torch.profiler), for backprop's step and
    PyTorch eager's; and backprop's captured step replayed alone."""
    from torch.profiler import ProfilerActivity

    device = "cpu" if args.cpu_smoke else "cuda"
    sizes = SMOKE["sizes"] if args.cpu_smoke else FULL["sizes"]
    batches = SMOKE["batches"] if args.cpu_smoke else (128, 8192)
    activity = ProfilerActivity.CPU if args.cpu_smoke else ProfilerActivity.CUDA
    for batch in batches:
        report["profile"].append(_profile_batch(args, batch, sizes, device, activity))


def _profile_batch(args, batch: int, sizes: list[int], device: str, activity: Any) -> dict:
    """The kernel profile of one batch size (see :func:`_profile`)."""
    import torch
    from torch.profiler import profile

    from backprop.training.cuda_graph import StepGraph

    X, labels = _random_data(batch * 4, sizes[0], sizes[-1])
    model = MLP(sizes, "relu", "identity", "cross_entropy", init="he_normal",
                dtype="float32", seed=0, backend="torch", device=device)  # fmt: skip
    opt = get_optimizer("sgd", lr=0.01)
    be = model.backend
    x_all = be.asarray(X, "float32")
    t_all = be.asarray(np.eye(sizes[-1], dtype=np.float32)[labels], "float32")
    idx = be.asarray(np.arange(batch, dtype=np.int64))
    xb, tb = be.take_rows(x_all, idx), be.take_rows(t_all, idx)

    def ours():
        scale = opt.gradient_scale()
        model.forward_backward(be.take_rows(x_all, idx, out=xb),
                               be.take_rows(t_all, idx, out=tb), None, scale)  # fmt: skip
        opt.step(model.params, None, model.flat, scaled=True)

    net = _torch_net(sizes, device)
    topt = torch.optim.SGD(net.parameters(), lr=0.01)
    xt, yt = torch.as_tensor(X, device=device), torch.as_tensor(labels, device=device)

    def theirs():
        topt.zero_grad(set_to_none=False)
        F = torch.nn.functional
        F.cross_entropy(net(xt.index_select(0, idx)), yt.index_select(0, idx)).backward()
        topt.step()

    steps = [("backprop", ours), ("pytorch eager", theirs)]
    if not args.cpu_smoke and _importable("cupy"):
        cmodel = MLP(sizes, "relu", "identity", "cross_entropy", init="he_normal",
                     dtype="float32", seed=0, backend="cupy")  # fmt: skip
        copt = get_optimizer("sgd", lr=0.01)
        cbe = cmodel.backend
        cx, ct = cbe.asarray(X, "float32"), cbe.asarray(be.to_numpy(t_all), "float32")
        cidx = cbe.asarray(np.arange(batch, dtype=np.int64))
        cxb, ctb = cbe.take_rows(cx, cidx), cbe.take_rows(ct, cidx)

        def ours_cupy():
            cmodel.forward_backward(cbe.take_rows(cx, cidx, out=cxb),
                                    cbe.take_rows(ct, cidx, out=ctb), None, 0.01)  # fmt: skip
            copt.step(cmodel.params, None, cmodel.flat, scaled=True)

        steps.append(("backprop cupy", ours_cupy))
    row: dict[str, Any] = {"batch": batch}
    for name, fn in steps:
        for _ in range(3):
            fn()
        _sync(device)
        with profile(activities=[activity]) as prof:
            for _ in range(5):
                fn()
            _sync(device)
        kernels = [e for e in prof.key_averages() if _device_us(e) > 0]
        total = sum(_device_us(e) for e in kernels) / 5
        count = sum(e.count for e in kernels) / 5
        top = sorted(kernels, key=_device_us, reverse=True)[:8]
        row[name] = {
            "kernels_per_step": count,
            "device_us_per_step": total,
            "top": [(e.key[:60], round(_device_us(e) / 5, 1), e.count // 5) for e in top],
        }
        print(f"  profile batch {batch} {name}: {count:.0f} kernels, {total:.0f} us/step")
        for key, us, calls in row[name]["top"]:
            print(f"      {us:8.1f} us  x{calls}  {key}")
    if device == "cuda":  # the captured step alone: the device's time per step
        graph = StepGraph(model, opt, x_all, t_all, None, batch, strict=True)
        graph.begin_epoch(np.arange(x_all.shape[0]), None)
        for k in range(4):
            if not graph.step(k):
                ours()
        _sync(device)
        start = time.perf_counter()
        for i in range(200):
            graph.step(i % 4)
        _sync(device)
        row["backprop graph replay us/step"] = (time.perf_counter() - start) / 200 * 1e6
        print(f"  batch {batch}: graph replay {row['backprop graph replay us/step']:.1f} us")
    return row


def _device_us(e: Any) -> float:
    """An event's own time on the device (a kernel's; 0 for a CPU-side op), or on the CPU
    when there is no device (the smoke run)."""
    v = getattr(e, "self_device_time_total", 0) or 0
    if not v and e.key.startswith("aten::") and not _ON_CUDA:
        v = getattr(e, "self_cpu_time_total", 0) or 0
    return float(v)


_ON_CUDA = False


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


# ----------------------------------------------------------------------- throughput
def _random_data(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d), dtype=np.float32), rng.integers(0, k, n)


def _flops_per_sample(sizes: list[int]) -> int:
    """Forward x W (2P), backward x^T delta (2P) and delta W^T (2P, not for the inputs)."""
    p = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return 6 * p - 2 * sizes[0] * sizes[1]


def _time_backprop(
    backend: str, device: str | None, graph: bool | None, sizes, batch, steps, epochs, data
) -> float:
    """The times of ``fit``'s epochs after the first :data:`WARM_EPOCHS` (seconds each)."""
    X, labels = data
    model = MLP(sizes, "relu", "identity", "cross_entropy", init="he_normal", dtype="float32",
                seed=0, backend=backend, device=device)  # fmt: skip
    kw = {} if backend != "torch" else {"cuda_graph": graph}
    with _Recorder() as rec:
        history = model.fit(X, labels, optimizer="sgd", lr=0.01, epochs=epochs,
                            batch_size=batch, seed=0, **kw)  # fmt: skip
    if graph and not any(g.stats.replays for g in rec.graphs):
        raise RuntimeError(f"the CUDA graph never replayed: {[g.stats for g in rec.graphs]}")
    return history["time"][WARM_EPOCHS:]


def _torch_net(sizes, device):
    import torch

    torch.manual_seed(0)
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(device)


def _time_pytorch(device: str, graph: bool, sizes, batch, steps, epochs, data) -> list[float]:
    """The epoch times (after the first :data:`WARM_EPOCHS`) of a plain PyTorch training
    loop (autograd, torch.optim.SGD)."""
    import torch
    import torch.nn.functional as F

    X = torch.as_tensor(data[0], device=device)
    y = torch.as_tensor(data[1], device=device)
    n = X.shape[0]
    net = _torch_net(sizes, device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    gen = torch.Generator(device=device).manual_seed(0)
    idx = torch.empty(batch, dtype=torch.int64, device=device)

    def step():
        loss = F.cross_entropy(net(X.index_select(0, idx)), y.index_select(0, idx))
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):  # warm-up, untimed: cuBLAS handles, autograd's first pass
        opt.zero_grad(set_to_none=False)
        idx.copy_(torch.randperm(n, device=device, generator=gen)[:batch])
        step()
    replay = None
    if graph:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up on a side stream, as torch's docs ask
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                idx.copy_(torch.randperm(n, device=device, generator=gen)[:batch])
                step()
        torch.cuda.current_stream().wait_stream(side)
        opt.zero_grad(set_to_none=True)  # backward in the graph writes fresh .grad tensors
        cuda_graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(cuda_graph):
            static_loss = step()
        replay = cuda_graph.replay

    times = []
    for _ in range(epochs):
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        perm = torch.randperm(n, device=device, generator=gen)
        total = torch.zeros((), device=device)
        for i in range(steps):
            idx.copy_(perm[i * batch : (i + 1) * batch])
            if replay is not None:
                replay()
                loss = static_loss
            else:
                opt.zero_grad(set_to_none=False)
                loss = step()
            total += loss.detach() * batch
        float(total)
        sync()
        times.append(time.perf_counter() - start)
    return times[WARM_EPOCHS:]


def _throughput(args, cfg, report) -> None:
    device = "cpu" if args.cpu_smoke else "cuda"
    have_cupy = _importable("cupy") and not args.cpu_smoke
    rows = report["throughput"]
    jobs = []
    for batch in cfg["batches"]:
        jobs.append(("mlp", cfg["sizes"], batch, cfg["steps"][batch]))
    jobs.append(("wide", cfg["wide_sizes"], cfg["wide_batch"], cfg["wide_steps"]))
    for kind, sizes, batch, steps in jobs:
        row: dict[str, Any] = {"model": "-".join(map(str, sizes)), "batch": batch}
        rows.append(row)
        try:
            data = _random_data(batch * steps, sizes[0], sizes[-1])
        except Exception as e:  # noqa: BLE001
            row["error"] = _err(e)
            continue
        cfg_args = (sizes, batch, steps, cfg["epochs"], data)
        on_cuda = device == "cuda"
        contenders = [
            ("backprop cupy", partial(_time_backprop, "cupy", None, None, *cfg_args), have_cupy),
            ("backprop torch", partial(_time_backprop, "torch", device, False, *cfg_args), True),
            ("backprop torch+graph", partial(_time_backprop, "torch", device, True, *cfg_args),
             on_cuda),
            ("pytorch eager", partial(_time_pytorch, device, False, *cfg_args), True),
            ("pytorch graph", partial(_time_pytorch, device, True, *cfg_args), on_cuda),
        ]  # fmt: skip
        if kind == "wide":  # the wide MLP: arithmetic-bound, graphs change nothing there
            contenders = [c for c in contenders if c[0] != "pytorch graph"]
        # the contenders take turns, round after round, so that a slow phase of the machine
        # falls on all of them; each one's rate is from the median of all its timed epochs
        times: dict[str, list[float]] = {name: [] for name, _, possible in contenders if possible}
        for name, _, possible in contenders:
            if not possible:
                row[name] = None
        for _ in range(cfg["rounds"]):
            for name, run, _possible in contenders:
                if name not in times or name in row.get("errors", {}):
                    continue
                if time.perf_counter() - report["_start"] > args.budget_s:
                    row.setdefault("skipped", []).append(f"{name}: time budget spent")
                    continue
                try:
                    times[name] += run()
                except Exception as e:  # noqa: BLE001
                    row.setdefault("errors", {})[name] = _err(e)
                    print(f"  {row['model']} batch {batch}: {name} FAILED: {_err(e)}")
        for name, ts in times.items():
            row[name] = batch * steps / statistics.median(ts) if ts else None
            row.setdefault("epochs_timed", {})[name] = len(ts)
            if ts:
                print(f"  {row['model']} batch {batch}: {name} {row[name]:,.0f} samples/s "
                      f"({len(ts)} epochs, spread {min(ts) / max(ts):.2f})")  # fmt: skip
        if kind == "wide":
            flops = _flops_per_sample(sizes)
            row["tflops"] = {
                k: (v * flops / 1e12 if isinstance(v, float) else None)
                for k, v in row.items()
                if k.startswith(("backprop", "pytorch"))
            }


# ---------------------------------------------------------------------- targets
def _targets(report) -> list[dict[str, Any]]:
    rows = {(r["model"], r["batch"]): r for r in report["throughput"]}
    out = []

    def check(name, value, bound):
        status = "NOT MEASURED" if value is None else ("PASS" if value >= bound else "FAIL")
        out.append({"target": name, "ratio": value, "need": bound, "status": status})

    def ratio(row, a, b):
        if row is None or not row.get(a) or not row.get(b):
            return None
        return row[a] / row[b]

    best = "backprop torch+graph"
    for batch, bound, base in ((128, 10.0, "pytorch eager"), (1024, 7.0, "pytorch eager"),
                               (8192, 1.1, "pytorch graph")):  # fmt: skip
        row = rows.get(("784-256-128-10", batch))
        check(f"batch {batch}: {best} / {base} >= {bound}", ratio(row, best, base), bound)
    wide = rows.get(("4096-4096-4096-10", 4096))
    best_wide = None
    if wide is not None:
        cands = [wide.get(k) for k in ("backprop torch+graph", "backprop torch", "backprop cupy")]
        cands = [c for c in cands if c]
        if cands and wide.get("pytorch eager"):
            best_wide = max(cands) / wide["pytorch eager"]
    check("4096-wide: backprop TFLOP/s / pytorch eager's >= 0.95", best_wide, 0.95)
    for batch in (128, 1024, 8192):
        row = rows.get(("784-256-128-10", batch))
        check(f"batch {batch}: backprop cupy / pytorch eager >= 1.3",
              ratio(row, "backprop cupy", "pytorch eager"), 1.3)  # fmt: skip
    return out


def _record(report) -> Path | None:
    """Write the GPU run's record to benchmarks/results/gpu-<gpu>.json (not in smoke runs)."""
    gpu = report["environment"].get("gpu")
    if report["mode"] != "gpu" or not gpu:
        return None
    slug = "h200" if "H200" in gpu else "-".join(gpu.lower().replace("nvidia", "").split())
    path = ROOT / "benchmarks" / "results" / f"gpu-{slug}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_public(report), indent=1, default=str) + "\n")
    return path


def _public(report) -> dict[str, Any]:
    return {k: v for k, v in report.items() if not k.startswith("_")}


# ------------------------------------------------------------------------ report
def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except Exception:  # noqa: BLE001 (a broken CUDA install raises more than ImportError)
        return False
    return True


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3g}" if v < 1000 else f"{v / 1e6:,.3f}M"
    return str(v)


def _markdown(report) -> str:
    env = report["environment"]
    lines = [f"# gpu_check ({report['mode']}), {report['date']}", ""]
    lines += [f"- {k}: {v}" for k, v in env.items()]
    lines += ["", "## Agreement with NumPy float64 (largest relative error)", ""]
    lines += ["| backend | dtype | forward | gradients | optimizers | files both ways "
              "| graph bits | pass |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for a in report["agreement"]:
        if "error" in a:
            lines.append(f"| {a['backend']} | {a.get('dtype')} | error: {a['error']} "
                         "| | | | | FAIL |")  # fmt: skip
            continue
        lines.append(
            f"| {a['backend']} {a['device'] or ''} | {a['dtype']} | {a['forward']:.2e} | "
            f"{a['gradients']:.2e} | {a['optimizers']:.2e} | {a['file_round_trip']} | "
            f"{_fmt(a.get('graph_bit_identical'))} | {a['pass']} |"
        )
    if report["profile"]:
        lines += ["", "## One training step's kernels (float32, 784-256-128-10, SGD)", ""]
        lines += ["| batch | who | kernels | device us/step | graph replayed alone, us/step |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for r in report["profile"]:
            for who in ("backprop", "backprop cupy", "pytorch eager"):
                if who not in r:
                    continue
                p = r[who]
                replay = r.get("backprop graph replay us/step") if who == "backprop" else None
                lines.append(f"| {r['batch']} | {who} | {_fmt(p.get('kernels_per_step'))} | "
                             f"{_fmt(p.get('device_us_per_step'))} | {_fmt(replay)} |")  # fmt: skip
    names = ["backprop cupy", "backprop torch", "backprop torch+graph", "pytorch eager",
             "pytorch graph"]  # fmt: skip
    lines += ["", "## Throughput (samples/s, float32, softmax CE, SGD)", ""]
    lines += ["| model | batch | " + " | ".join(names) + " |"]
    lines += ["|---|---|" + "---|" * len(names)]
    for r in report["throughput"]:
        lines.append(
            f"| {r['model']} | {r['batch']} | " + " | ".join(_fmt(r.get(n)) for n in names) + " |"
        )
        if "tflops" in r:
            tf = r["tflops"]
            lines.append("| (TFLOP/s) | | " + " | ".join(_fmt(tf.get(n)) for n in names) + " |")
    for r in report["throughput"]:
        for name, e in r.get("errors", {}).items():
            lines.append(f"\n- error, {r['model']} batch {r['batch']}, {name}: {e}")
        if "error" in r:
            lines.append(f"\n- error, {r['model']} batch {r['batch']}: {r['error']}")
    lines += ["", "## Targets", "", "| target | ratio | status |", "|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {_fmt(t['ratio'])} | {t['status']} |")
    lines += ["", f"targets_met: {report.get('targets_met')}"]
    for section, e in report["errors"].items():
        lines.append(f"\n- section {section} failed: {e}")
    return "\n".join(lines) + "\n"


def _environment(smoke: bool) -> dict[str, Any]:
    env: dict[str, Any] = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
        env["tf32 matmul"] = torch.backends.cuda.matmul.allow_tf32
    except Exception as e:  # noqa: BLE001
        env["torch"] = f"unavailable ({_err(e)})"
    if smoke:
        env["cupy"] = "not used (cpu smoke)"
    else:
        try:
            import cupy

            env["cupy"] = cupy.__version__
        except Exception as e:  # noqa: BLE001
            env["cupy"] = f"not importable ({_err(e)})"
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="torch on the CPU at tiny sizes (no GPU needed)")  # fmt: skip
    parser.add_argument("--out", default=None, help="folder for the JSON/markdown (default $OUT)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=420.0,
        help="skip throughput runs that would start after this many seconds",
    )
    args = parser.parse_args(argv)
    cfg = SMOKE if args.cpu_smoke else FULL
    report: dict[str, Any] = {
        "mode": "cpu smoke" if args.cpu_smoke else "gpu",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "_start": time.perf_counter(),
        "environment": {},
        "agreement": [],
        "profile": [],
        "throughput": [],
        "targets": [],
        "errors": {},
    }
    sections = [
        ("environment", lambda: report.update(environment=_environment(args.cpu_smoke))),
        ("agreement", lambda: _run_agreement(args, report)),
        ("profile", lambda: _profile(args, report)),
        ("throughput", lambda: _throughput(args, cfg, report)),
        ("targets", lambda: report.update(targets=_targets(report))),
    ]
    global _ON_CUDA
    _ON_CUDA = not args.cpu_smoke
    for name, run in sections:
        print(f"== {name}", flush=True)
        try:
            run()
        except Exception as e:  # noqa: BLE001 (one failing section must not lose the others)
            report["errors"][name] = _err(e)
            traceback.print_exc()
    report["seconds"] = time.perf_counter() - report.pop("_start")
    report["targets_met"] = bool(report["targets"]) and all(
        t["status"] == "PASS" for t in report["targets"]
    )
    md = _markdown(report)
    print(md)
    out = Path(args.out or os.environ.get("OUT") or ".")
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(_public(report), indent=1, default=str))
    (out / "gpu_check.md").write_text(md)
    recorded = _record(report)
    if recorded is not None:
        print(f"recorded {recorded}")
    print(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'} "
          f"({report['seconds']:.0f} s)")  # fmt: skip
    agreed = all(a.get("pass") for a in report["agreement"])
    return 0 if agreed and not report["errors"] else 1


def _run_agreement(args, report) -> None:
    import torch

    targets: list[tuple[str, str | None]] = [("torch", "cpu" if args.cpu_smoke else "cuda")]
    if not args.cpu_smoke and _importable("cupy"):
        targets.append(("cupy", None))
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # agreement is checked in true float32
    try:
        for backend, device in targets:
            for dtype in ("float32", "float64"):
                try:
                    res = _agreement(backend, device, dtype, args.cpu_smoke)
                except Exception as e:  # noqa: BLE001
                    res = {"backend": backend, "device": device, "dtype": dtype,
                           "error": _err(e), "pass": False}  # fmt: skip
                    traceback.print_exc()
                report["agreement"].append(res)
                print(f"  {backend} {device} {dtype}: {res}", flush=True)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
    if not args.cpu_smoke and not _importable("cupy"):
        report["agreement_note"] = "cupy not importable: its agreement check did not run"


if __name__ == "__main__":
    sys.exit(main())
