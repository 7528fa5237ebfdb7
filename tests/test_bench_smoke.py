"""The benchmark cannot rot: its smoke mode runs every code path in seconds, and the
arithmetic it reports (GEMM shapes, FLOPs per epoch, the IDX reader) is checked by hand."""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import os
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


blas_env = _load("blas_env")
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
    out, md, short = tmp_path / "bench.json", tmp_path / "bench.md", tmp_path / "summary.json"
    proc = _run_script("bench.py", "--smoke", "--json", out, "--markdown", md, "--summary", short)
    report = json.loads(out.read_text())
    assert report["smoke"] is True
    assert report["machine"]["numpy"] == np.__version__
    peers = {"torch": "torch", "sklearn": "sklearn", "jax": "jax"}
    expected_impls = {"backprop"} | {name for name, mod in peers.items() if _has(mod)}
    # the smoke run leaves torch.compile out (it compiles for tens of seconds) and says why
    assert "torch-compile" in report["skipped"]
    # the smoke run is the override-unset mode alone, in a worker whose environment lacks both
    assert list(report["blas_modes"]) == ["unset"]
    (run,) = report["runs"]
    assert run["threads"] == 1 and run["mode"] == "unset"
    assert run["env"] == {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None}
    if _has("threadpoolctl"):
        assert run["kernels"] and all(k["architecture"] for k in run["kernels"])
        assert run["kernels"][0]["architecture"] in md.read_text()
    assert [r["config"]["name"] for r in run["configs"]] == [c.name for c in bench.CONFIGS]
    for r in run["configs"]:
        # scikit-learn has no quadratic loss: it sits out Nielsen's network, with the reason
        sits_out = {"sklearn"} if r["config"]["loss"] == "l2" else set()
        assert set(r["impls"]) == expected_impls - sits_out
        assert set(r["skipped"]) == sits_out & expected_impls
        assert r["roofline"]["gemm_seconds"] > 0
        assert r["roofline"]["gemm_epoch_samples_per_s"] > 0
        for name, e in r["impls"].items():
            assert e["train_samples_per_s"] > 0 and math.isfinite(e["train_samples_per_s"]), name
            assert e["infer_samples_per_s"] > 0 and math.isfinite(e["infer_samples_per_s"]), name
            assert 0 < e["roofline_fraction"] < 10, (name, e["roofline_fraction"])
            assert math.isfinite(e["final_losses"][0]), name
        assert r["impls"]["backprop"]["train_ours_over_this"] == 1.0
    # every target restated as the roofline fraction ours would need
    by_config = {r["config"]["name"]: r["impls"] for r in run["configs"]}
    for what, config, peer, minimum in bench.TRAIN_TARGETS:
        (t,) = [t for t in run["targets"] if t["target"] == what] or [None]
        assert (t is None) == (peer is not None and peer not in expected_impls), what
        if t is None:
            continue
        impls = by_config[config]
        peer_fraction = 1.0 if peer is None else impls[peer]["roofline_fraction"]
        assert t["needs_roofline_fraction"] == pytest.approx(minimum * peer_fraction)
        ours = impls["backprop"]["roofline_fraction"]
        if abs(ours - t["needs_roofline_fraction"]) > 1e-9:
            assert t["pass"] == (ours > t["needs_roofline_fraction"]), what
    inference = [t for t in run["targets"] if t["target"].startswith("inference")]
    assert len(inference) == sum(len(r["impls"]) - 1 for r in run["configs"])
    mem = report["memory"]
    assert mem["peak_bytes"] >= mem["baseline_bytes"] > 0
    assert len(mem["rss_after_epoch_bytes"]) == 2
    table = md.read_text()
    assert table in proc.stdout
    rows = [line for line in table.splitlines() if line.startswith(("| train ", "| inference "))]
    # a training row per config and an inference row per network (the two MLP configs share one)
    assert [row.split(" | ")[0] for row in rows] == [
        "| train 784-256-128-10 relu CE, B=128",
        "| train 784-256-128-10 relu CE, B=512",
        "| train 784-30-10 sigmoid L2, B=10",
        "| inference 784-256-128-10 relu CE",
        "| inference 784-30-10 sigmoid L2",
    ]
    assert all(" | unset" in row and " | 1 | " in row for row in rows)
    assert "peak RSS of the training run" in table
    # the summary keeps each median and ratio of the full report (rounded), no raw timing
    brief = json.loads(short.read_text())
    assert "train_seconds" not in short.read_text()
    for r in run["configs"]:
        kept = brief["runs"][0]["configs"][r["config"]["name"]]
        gemm = r["roofline"]["gemm_epoch_samples_per_s"]
        assert kept["gemm_only_samples_per_s"] == pytest.approx(gemm, abs=0.5)
        assert kept["gemm_only_spread"] >= 1
        for name, e in r["impls"].items():
            assert kept[name]["train_samples_per_s"] == pytest.approx(
                e["train_samples_per_s"], abs=5e-4
            )
            assert kept[name]["infer_ours_over_this"] == pytest.approx(
                e["infer_ours_over_this"], abs=5e-4
            )
    # and the tables can be printed again from the saved run, measuring nothing
    again = _run_script("bench.py", "--report", out)
    assert again.stdout == proc.stdout


def test_checkpoint_cost_smoke(tmp_path: Path) -> None:
    out = tmp_path / "checkpoint.json"
    _run_script("checkpoint_cost.py", "--smoke", "--json", out)
    result = json.loads(out.read_text())
    assert result["epochs"] == 300 and result["every"] == 10
    assert list(result["median_s"]) == ["none", "rows once", "every save"]
    assert result["over_none"]["none"] == 1.0 and all(s > 0 for s in result["median_s"].values())


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


def test_csv_load_smoke(tmp_path: Path) -> None:
    out = tmp_path / "csv_load.json"
    _run_script("csv_load.py", "--smoke", "--json", out)
    result = json.loads(out.read_text())
    assert result["rows"] == 2_000 and result["repeats"] == 1
    readers = {"backprop load_csv", "backprop read_csv_features", "numpy.loadtxt"}
    readers |= {"backprop load_csv, row by row", "backprop read_csv_features, row by row"}
    readers |= {"pandas.read_csv"} if _has("pandas") else set()
    for kind in ("classification", "regression"):
        medians = result["median_s"][kind]
        assert set(medians) == readers and all(s > 0 for s in medians.values())
        assert [len(s) for s in result["seconds"][kind].values()] == [1] * len(readers)
        if _has("pandas"):  # each ratio from the same run's medians
            ratios = result["over_pandas_read_csv"][kind]
            assert ratios["pandas.read_csv"] == 1.0
            assert ratios["backprop load_csv"] == pytest.approx(
                medians["backprop load_csv"] / medians["pandas.read_csv"]
            )


def test_csv_load_files_and_memory_probe(tmp_path: Path) -> None:
    csv_load = _load("csv_load")
    from backprop.datasets import load_dataset

    paths = csv_load.write_files(tmp_path, rows=40, cols=3)
    classes = load_dataset(paths["classification"], target="label", test_fraction=0.0)
    assert classes.task == "classification" and classes.X_train.shape == (40, 3)
    numbers = load_dataset(paths["regression"], target="target", test_fraction=0.0)
    assert numbers.task == "regression" and numbers.feature_names == ["x0", "x1", "x2"]
    # the values are written as repr: they read back as the floats they were
    text = paths["regression"].read_text().splitlines()[1].split(",")
    assert [repr(float(c)) for c in text] == text
    # the row-by-row readers read the same numbers by the other path, and put it back after
    from backprop.datasets import tabular

    fast, calls = tabular._read_fast, []
    readers = csv_load.readers(False)
    tabular._read_fast = lambda *args: calls.append(args) or fast(*args)
    try:
        by_block = readers["backprop read_csv_features"](paths["regression"], "target")
        by_row = readers["backprop read_csv_features, row by row"](paths["regression"], "target")
        assert len(calls) == 1 and tabular._read_fast is not fast  # (the spy, put back)
    finally:
        tabular._read_fast = fast
    assert by_row.tobytes() == by_block.tobytes()
    peaks = csv_load.memory(
        {"regression": paths["regression"]}, ["backprop read_csv_features"], False
    )
    peak = peaks["regression"]["backprop read_csv_features"]
    assert peak["rss_peak_bytes"] > 0 and peak["rss_peak_over_imports_bytes"] >= 0
    assert peak["tracemalloc_peak_bytes"] >= 40 * 4 * 8  # (at least the array read)


def test_each_repeat_rotates_the_order_so_none_always_follows_the_same() -> None:
    # a fixed order put PyTorch right after backprop's NumPy call every repeat, whose
    # OpenBLAS threads still spun: its 2-thread inference ran at 0.6 of its 1-thread rate
    names = ["backprop", "torch", "sklearn", bench.GEMM_ONLY]
    orders = [bench._rotated(names, r) for r in range(len(names))]
    assert all(sorted(order) == sorted(names) for order in orders)
    before = {(o[i - 1], o[i]) for o in orders for i in range(1, len(o))}
    assert {b for _, b in before} == set(names)  # each runs after another in some repeat
    assert len({o[0] for o in orders}) == len(names)  # and each runs first once


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
    # modules that fail to import, first on the path of the benchmark and its worker: as if
    # the peers were not installed
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for module in ("torch", "sklearn", "jax"):
        (hidden / f"{module}.py").write_text(f"raise ImportError('{module} is hidden')\n")
    paths = [str(hidden), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench.py"), "--smoke", "--only", "mlp-b128", "speed"]
        + ["--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "torch: torch is not installed: skipped" in proc.stderr
    report = json.loads(out.read_text())
    assert set(report["skipped"]) == {"torch", "torch-compile", "sklearn", "jax"}
    assert report["skipped"]["jax"] == "jax is not installed: skipped"
    (run,) = report["runs"]
    assert [r["config"]["name"] for r in run["configs"]] == ["mlp-b128"]
    assert set(run["configs"][0]["impls"]) == {"backprop"}
    assert "memory" not in report


def test_blas_modes_remove_or_keep_the_override() -> None:
    # pure functions of an environment mapping: the test's own environment is not touched
    found = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}
    environ = {"PATH": "/bin", **found}
    unset = blas_env.env_for_mode("unset", environ)
    assert "OPENBLAS_CORETYPE" not in unset and "OPENBLAS_L2_SIZE" not in unset
    assert unset["PATH"] == "/bin"
    assert blas_env.found_override(unset) == found  # the worker can say what was removed
    override = blas_env.env_for_mode("override", environ)
    assert {k: override[k] for k in found} == found
    # a process that re-executed itself without them can still start an override worker
    assert {k: blas_env.env_for_mode("override", unset)[k] for k in found} == found
    assert blas_env.found_override({"PATH": "/bin"}) == {}
    assert environ == {"PATH": "/bin", **found}
    with pytest.raises(ValueError, match="BLAS mode must be one of"):
        blas_env.env_for_mode("haswell", environ)


def test_warmup_ends_in_the_epochs_partial_batch() -> None:
    # MNIST at 128: the epoch ends in a batch of 96, so the warm-up does too (40 full + 96)
    assert bench.warmup_rows(60_000, 128, 5_000) == 40 * 128 + 96
    assert bench.warmup_rows(60_000, 10, 5_000) == 5_000
    assert bench.warmup_rows(600, 128, 600) == 600
    assert bench.warmup_rows(1_000, 512, 600) == 1_000  # 2 x 512 + 488 is more than there is


@pytest.mark.parametrize("name", ["mlp-b128", "nielsen-b10"])
def test_jax_peer_trains_the_same_network(name: str) -> None:
    # one epoch of one batch from the same weights: the JAX peer's step must be backprop's
    pytest.importorskip("jax")
    import dataclasses

    cfg = dataclasses.replace(next(c for c in bench.CONFIGS if c.name == name), batch=8)
    rng = np.random.default_rng(0)
    X = rng.random((8, 784), dtype=np.float32)
    y = rng.integers(0, 10, 8)
    ours = bench.Ours(cfg, X, y)
    peer = bench.Jax(cfg, X, y)
    n_layers = len(cfg.sizes) - 1
    start = [
        (ours.model.params[f"layers.{i}.W"].copy(), ours.model.params[f"layers.{i}.b"].copy())
        for i in range(n_layers)
    ]
    peer.params = [(peer.jnp.asarray(W), peer.jnp.asarray(b)) for W, b in start]
    loss_peer = peer.train_epoch(seed=0)
    loss_ours = ours.train_epoch(seed=0)
    assert loss_peer == pytest.approx(loss_ours, rel=1e-5)
    for i, (W, b) in enumerate(peer.params):
        np.testing.assert_allclose(W, ours.model.params[f"layers.{i}.W"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b, ours.model.params[f"layers.{i}.b"], rtol=1e-5, atol=1e-6)
        assert not np.allclose(b, start[i][1])  # the step changed them
    np.testing.assert_allclose(peer.predict(X), ours.predict(X), rtol=1e-5, atol=1e-6)


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
    # a run names its OpenBLAS mode: only the asked-for mode's run counts
    in_override = report([1.0])
    in_override["runs"][1]["mode"] = "override"
    assert best.best_repeats(in_override, "mlp-b128", "sklearn", 2.2, 2, mode="unset") is None
    row = best.best_repeats(in_override, "mlp-b128", "sklearn", 2.2, 2, mode="override")
    assert row["peer_best"] == 1000
