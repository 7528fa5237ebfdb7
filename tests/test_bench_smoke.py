"""The benchmark cannot rot: its smoke mode runs every code path in seconds, and the
arithmetic it reports (GEMM shapes, FLOPs per epoch, the IDX reader) is checked by hand."""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


bench = _load("bench")
memory = _load("memory")


def _run_script(name: str, *args: object) -> subprocess.CompletedProcess:
    """Run ``benchmarks/<name>`` with ``args`` in a fresh interpreter; it must exit 0."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_smoke_run_writes_every_number(tmp_path: Path) -> None:
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    proc = _run_script("bench.py", "--smoke", "--json", out, "--markdown", md)
    report = json.loads(out.read_text())
    assert report["smoke"] is True
    assert report["machine"]["numpy"] == np.__version__
    expected_impls = {"backprop"} | {
        m for m, mod in (("torch", "torch"), ("sklearn", "sklearn")) if _has(mod)
    }
    (run,) = report["runs"]
    assert run["threads"] == 1
    assert [r["config"]["name"] for r in run["configs"]] == [c.name for c in bench.CONFIGS]
    for r in run["configs"]:
        assert set(r["impls"]) == expected_impls
        assert r["roofline"]["gemm_seconds"] > 0
        for name, e in r["impls"].items():
            assert e["train_samples_per_s"] > 0 and math.isfinite(e["train_samples_per_s"]), name
            assert e["infer_samples_per_s"] > 0 and math.isfinite(e["infer_samples_per_s"]), name
            assert 0 < e["roofline_fraction"] < 10, (name, e["roofline_fraction"])
        assert r["impls"]["backprop"]["train_ours_over_this"] == 1.0
    if "torch" in expected_impls:
        assert {t["target"] for t in run["targets"]} >= {
            "train b128 vs torch",
            "GEMM roofline b128",
        }
    # a ratio target against a peer restated as the roofline fraction ours would need
    by_config = {r["config"]["name"]: r["impls"] for r in run["configs"]}
    for what, config, peer, minimum in bench.TRAIN_TARGETS:
        (t,) = [t for t in run["targets"] if t["target"] == what] or [None]
        if t is None:
            continue
        impls = by_config[config]
        peer_fraction = 1.0 if peer is None else impls[peer]["roofline_fraction"]
        assert t["needs_roofline_fraction"] == pytest.approx(minimum * peer_fraction)
        ours = impls["backprop"]["roofline_fraction"]
        if abs(ours - t["needs_roofline_fraction"]) > 1e-9:
            assert t["pass"] == (ours > t["needs_roofline_fraction"]), what
    mem = report["memory"]
    assert mem["peak_bytes"] >= mem["baseline_bytes"] > 0
    assert len(mem["rss_after_epoch_bytes"]) == 2
    assert (
        mem["budget_bytes"] == mem["dataset_bytes"] + mem["model_x2_bytes"] + mem["baseline_bytes"]
    )
    table = md.read_text()
    assert table in proc.stdout
    assert table.count("| backprop |") == len(bench.CONFIGS)
    assert "peak RSS of the training run" in table


def test_scaling_smoke(tmp_path: Path) -> None:
    out = tmp_path / "scaling.json"
    _run_script("scaling.py", "--smoke", "--threads", "1", "--json", out)
    result = json.loads(out.read_text())
    assert [r["rows"] for r in result["data"]] == [150, 300, 600]
    assert [r["sizes"] for r in result["width"]] == [
        [784, 256, 128, 10],
        [784, 512, 256, 10],
        [784, 1024, 512, 10],
    ]
    assert result["width"][0]["flops_ratio"] == 1.0 and result["width"][2]["flops_ratio"] > 4


def test_epoch_batches_include_the_partial_batch() -> None:
    # MNIST: 60000 = 468 * 128 + 96 = 117 * 512 + 96 = 1875 * 32 = 6000 * 10
    assert bench.epoch_batches(60_000, 128) == {128: 468, 96: 1}
    assert bench.epoch_batches(60_000, 512) == {512: 117, 96: 1}
    assert bench.epoch_batches(60_000, 32) == {32: 1875}
    assert bench.epoch_batches(5, 8) == {5: 1}


def test_step_gemms_are_the_training_step_products() -> None:
    gemms = {g.role: g for g in bench.step_gemms((784, 256, 128, 10), 128)}
    # forward x W, backward x^T delta, and delta W^T for every layer but the first
    assert set(gemms) == {"fwd0", "fwd1", "fwd2", "dW0", "dW1", "dW2", "dX1", "dX2"}
    assert (gemms["fwd0"].m, gemms["fwd0"].k, gemms["fwd0"].n) == (128, 784, 256)
    assert (gemms["dW0"].m, gemms["dW0"].k, gemms["dW0"].n, gemms["dW0"].layout) == (
        784,
        128,
        256,
        "TN",
    )
    assert (gemms["dX1"].m, gemms["dX1"].k, gemms["dX1"].n, gemms["dX1"].layout) == (
        128,
        128,
        256,
        "NT",
    )
    # per sample: forward and dW cost 2 * (784*256 + 256*128 + 128*10) each,
    # dX 2 * (256*128 + 128*10)
    per_sample = 2 * (2 * (784 * 256 + 256 * 128 + 128 * 10) + (256 * 128 + 128 * 10))
    assert sum(g.flops for g in gemms.values()) == 128 * per_sample


def test_gemm_operands_have_the_engine_layouts() -> None:
    rng = np.random.default_rng(0)
    a, b = bench._operands(bench.Gemm("dW0", 6, 4, 5, "TN"), rng, np.float32)
    assert a.shape == (6, 4) and a.flags.f_contiguous and not a.flags.c_contiguous
    a, b = bench._operands(bench.Gemm("dX1", 6, 4, 5, "NT"), rng, np.float32)
    assert b.shape == (4, 5) and b.flags.f_contiguous and a.flags.c_contiguous
    rate = bench.gemm_rate(bench.Gemm("fwd0", 8, 16, 4, "NN"), min_time=1e-4, trials=2)
    assert rate > 0 and math.isfinite(rate)


def test_memory_budget_terms() -> None:
    assert memory.parameter_bytes((784, 256, 128, 10)) == 4 * (785 * 256 + 257 * 128 + 129 * 10)
    # inputs 784, pre-activations and outputs 2 * (256 + 128 + 10), targets 10, per row
    assert memory.activation_bytes((784, 256, 128, 10), 128) == 4 * 128 * (784 + 2 * 394 + 10)


def _write_idx(path: Path, header: bytes, payload: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(header + payload)


def test_idx_reader_reads_images_in_chunks_and_labels(tmp_path: Path) -> None:
    pixels = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3)
    dims = b"".join(int(d).to_bytes(4, "big") for d in pixels.shape)
    _write_idx(tmp_path / "img.gz", b"\x00\x00\x08\x03" + dims, pixels.tobytes())
    images = bench._read_idx(tmp_path / "img.gz", None, chunk_items=2)
    assert images.dtype == np.float32 and images.shape == (5, 6)
    np.testing.assert_allclose(images, pixels.reshape(5, 6) / 255, rtol=1e-6)
    assert bench._read_idx(tmp_path / "img.gz", 3, chunk_items=2).shape == (3, 6)
    _write_idx(
        tmp_path / "lab.gz", b"\x00\x00\x08\x01" + (4).to_bytes(4, "big"), bytes([3, 1, 4, 1])
    )
    labels = bench._read_idx(tmp_path / "lab.gz", None)
    assert labels.dtype == np.int64 and labels.tolist() == [3, 1, 4, 1]


def test_idx_reader_rejects_bad_files(tmp_path: Path) -> None:
    _write_idx(tmp_path / "bad.gz", b"\x00\x00\x0d\x01" + (4).to_bytes(4, "big"), bytes(16))
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        bench._read_idx(tmp_path / "bad.gz", None)
    _write_idx(
        tmp_path / "short.gz",
        b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in (4, 2, 2)),
        bytes(10),
    )
    with pytest.raises(ValueError, match="ends before image"):
        bench._read_idx(tmp_path / "short.gz", None)


def test_smoke_run_without_the_peers(tmp_path: Path) -> None:
    # sys.modules[name] = None makes `import name` fail, as if the package were absent
    out = tmp_path / "bench.json"
    code = (
        "import runpy, sys; sys.modules['torch'] = None; sys.modules['sklearn'] = None; "
        "sys.argv = ['bench.py', '--smoke', '--only', 'mlp-b128', 'speed', "
        f"'--json', {str(out)!r}]; "
        f"runpy.run_path({str(BENCH / 'bench.py')!r}, run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "torch: torch is not installed: skipped" in proc.stderr
    report = json.loads(out.read_text())
    assert set(report["skipped"]) == {"torch", "sklearn"}
    (run,) = report["runs"]
    assert [r["config"]["name"] for r in run["configs"]] == ["mlp-b128"]
    assert set(run["configs"][0]["impls"]) == {"backprop"}
    assert "memory" not in report


def test_two_threads_probe_runs_and_its_step_is_the_engines() -> None:
    two = _load("two_threads")
    # the probe's hand-written step computes the engine's gradients of the mean loss, times lr
    # (its softmax - t is per sample, scaled by lr / n)
    rng = np.random.default_rng(0)
    net = two.Net(seed=1)
    w = two.Worker(net, 8)
    X = rng.random((8, 784), dtype=np.float32)
    labels = rng.integers(0, 10, 8)
    T = np.eye(10, dtype=np.float32)[labels]
    w.gather(X, T, np.arange(8))
    scale = two.LR / np.float32(8)
    w.step(scale)
    from backprop import MLP

    model = MLP([784, 256, 128, 10], "relu", "identity", "cross_entropy", dtype="float32")
    for i, (W, b) in enumerate(net.layers):
        model.params[f"layers.{i}.W"][...] = W
        model.params[f"layers.{i}.b"][...] = b
    _, grads = model.gradients(X, labels)
    lr = float(two.LR)
    for i, (gW, gb) in enumerate(w.grads):
        np.testing.assert_allclose(gW, grads[f"layers.{i}.W"] * lr, rtol=1e-4, atol=1e-8)
        np.testing.assert_allclose(gb, grads[f"layers.{i}.b"] * lr, rtol=1e-4, atol=1e-8)
    # and the whole probe runs (random data of MNIST's shape when BACKPROP_DATA is unset)
    proc = _run_script("two_threads.py", "--rows", "640", "--repeats", "1")
    assert "median samples/s: plain" in proc.stdout and "data-parallel" in proc.stdout


def test_host_phases_probe_reports_every_slice() -> None:
    pytest.importorskip("threadpoolctl")
    phases = _load("host_phases")
    result = phases.probe(seconds=1, slice_s=0.02)
    keys = ("small_2_threads_us", "large_2_threads_gflops", "small_1_thread_us")
    assert len(result["slices"]) == 20
    for row in result["slices"]:
        assert all(math.isfinite(row[k]) and row[k] > 0 for k in keys), row
    for k in keys:
        s = result["summary"][k]
        assert s["min"] <= s["median"] <= s["max"]
        assert s["min"] == min(row[k] for row in result["slices"])


def test_best_repeats_compares_best_to_best() -> None:
    best = _load("best_repeats")

    def report(peer_seconds: list[float]) -> dict:
        impls = {
            "backprop": {"train_seconds": [0.6, 0.5, 0.55]},  # best 1000 / 0.5 = 2,000/s
            "sklearn": {"train_seconds": peer_seconds},
        }
        config = {
            "config": {"name": "mlp-b128"},
            "n_train": 1000,
            "impls": impls,
            "roofline": {"gemm_epoch_seconds": [0.3, 0.25, 0.4]},  # best 4,000/s
        }
        return {"runs": [{"threads": 1, "configs": []}, {"threads": 2, "configs": [config]}]}

    row = best.best_repeats(report([1.0, 0.5, 2.0]), "mlp-b128", "sklearn", 2.2, 2)
    assert row["backprop_best"] == 2000 and row["peer_best"] == 2000
    assert row["target"] == pytest.approx(4400) and row["gemm_only_best"] == 4000
    assert row["beyond_roofline"]
    row = best.best_repeats(report([1.0, 0.6]), "mlp-b128", "sklearn", 2.2, 2)
    assert row["target"] == pytest.approx(1000 / 0.6 * 2.2) and not row["beyond_roofline"]
    assert best.best_repeats(report([1.0]), "mlp-b128", "sklearn", 2.2, threads=1) is None
