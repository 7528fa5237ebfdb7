"""The engine on PyTorch tensors (and CuPy, where present) against NumPy float64.

CI has no GPU: the torch backend runs on the CPU here and must agree with the NumPy
backend in float64 for every activation, loss and optimizer, through fit, gradcheck and
model files. The CUDA-graph bookkeeping (when to capture, replay, fall back, re-capture)
is checked on the CPU with a stand-in for the graph that enforces what a real graph
freezes; the real capture, and CuPy, run only where a GPU (and CuPy) exist.
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from backprop import ACTIVATIONS, MLP, gradcheck
from backprop import cuda_graph as cg
from backprop.backend import TorchBackend, get_backend
from backprop.io import load_model, save_model
from backprop.losses import LOSSES
from backprop.optimizers import OPTIMIZERS, get_optimizer, get_schedule

torch = pytest.importorskip("torch", reason="the torch backend needs PyTorch")

ROOT = Path(__file__).resolve().parents[1]
SIZES = [3, 5, 4, 3]
TOL = {"float32": 1e-5, "float64": 1e-12}


def _data(seed=0, n=7):
    rng = np.random.default_rng(seed)
    # exactly representable in float32, so both backends see the same numbers
    X = rng.normal(size=(n, 3)).astype(np.float32).astype(np.float64)
    T = rng.dirichlet(np.ones(3), n).astype(np.float32).astype(np.float64)
    return X, T


def _output_for(loss: str, act: str) -> str:
    return "identity" if LOSSES[loss].from_logits else act


def _pair(dtype, hidden="tanh", output="identity", loss="cross_entropy", **kw):
    """A torch (CPU) model in ``dtype`` and a NumPy float64 model holding the same weights."""
    model = MLP(SIZES, hidden, output, loss, seed=3, init_scale=0.6, dtype=dtype,
                backend="torch", device="cpu", **kw)  # fmt: skip
    ref = MLP(SIZES, hidden, output, loss, seed=3, init_scale=0.6, dtype="float64", **kw)
    ref.load_state_dict({k: v.astype(np.float64) for k, v in model.state_dict().items()})
    return model, ref


# ----------------------------------------------------------------- the backend itself
def test_torch_backend_is_what_it_says():
    be = get_backend("torch", "cpu")
    assert isinstance(be, TorchBackend) and be.device == torch.device("cpu")
    assert be.dtype("float32") is torch.float32 and be.dtype(torch.float64) is torch.float64
    x = be.asarray(np.arange(6.0).reshape(2, 3), "float32")
    assert isinstance(x, torch.Tensor) and x.dtype is torch.float32
    rows = be.take_rows(x, np.array([1, 1, 0]))  # host indices are uploaded as int64
    np.testing.assert_array_equal(be.to_numpy(rows), [[3, 4, 5], [3, 4, 5], [0, 1, 2]])
    assert float(be.vdot(x, x)) == sum(v * v for v in range(6))
    model = MLP(SIZES, "relu", "identity", "cross_entropy", seed=0, backend="torch")
    assert all(isinstance(p, torch.Tensor) for p in model.params.values())
    # parameters are views of the one flat vector the optimizer updates
    model.flat.params[0] = 7.0
    assert float(model.params["layers.0.W"][0, 0]) == 7.0


def test_read_only_host_arrays_upload_without_warning():
    X, T = _data()
    X.flags.writeable = False
    model = MLP(SIZES, seed=0, backend="torch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.forward(X).shape == (7, 3)


def test_bad_device_is_one_clear_error():
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda'"):
        get_backend("torch", "gpu")
    with pytest.raises(ValueError, match="numpy backend runs on the CPU only"):
        get_backend("numpy", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="sees no CUDA GPU"):
            MLP(SIZES, backend="torch", device="cuda")
        with pytest.raises(RuntimeError, match=r"device='cuda:1' was asked for"):  # said 'cuda'
            MLP(SIZES, backend="torch", device="cuda:1")
    assert get_backend("torch", torch.device("cpu")).device == torch.device("cpu")  # as before
    # 0 was the CPU (torch reads it as cuda:0); meta was taken, then failed in training
    for device in (0, "meta", "mps"):
        with pytest.raises(ValueError, match="device must be 'cpu', 'cuda'"):
            get_backend("torch", device)
    # the torch module itself is not an array API namespace: AttributeError 'astype' before
    with pytest.raises(TypeError, match=r"an array API namespace .*; got 'torch'"):
        MLP(SIZES, backend=torch)
    with pytest.raises(TypeError, match=r"got 'int'"):
        get_backend(5)


# ------------------------------------------------- forward and gradients vs NumPy float64
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_forward_and_gradients_agree_with_numpy_float64(rel_diff, act, loss, dtype):
    model, ref = _pair(dtype, act, _output_for(loss, act), loss)
    X, T = _data(1)
    y = model.forward(X)
    assert isinstance(y, torch.Tensor) and y.dtype == model.backend.dtype(dtype)
    assert rel_diff(y.numpy(), ref.forward(X)) < TOL[dtype]
    assert rel_diff(model.predict(X).numpy(), ref.predict(X)) < TOL[dtype]
    loss_t, grads_t = model.gradients(X, T)
    loss_r, grads_r = ref.gradients(X, T)
    assert abs(loss_t - loss_r) <= TOL[dtype] * max(abs(loss_r), 1e-3)
    for name, g in grads_r.items():
        assert rel_diff(grads_t[name].numpy(), g) < TOL[dtype], name


def test_sample_weights_and_dropout_on_torch(rel_diff):
    X, T = _data(2)
    w = np.linspace(0.5, 2.0, 7)
    model, ref = _pair("float64", "sigmoid", "sigmoid", "mse", dropout=0.3)
    loss_t, grads_t = model.gradients(X, T, sample_weight=w)
    loss_r, grads_r = ref.gradients(X, T, sample_weight=w)  # same masks: same generator seed
    assert abs(loss_t - loss_r) < 1e-12
    for name, g in grads_r.items():
        assert rel_diff(grads_t[name].numpy(), g) < 1e-12


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradcheck_on_torch(dtype):
    model, _ = _pair(dtype, "tanh", "identity", "cross_entropy")
    X, T = _data(3)
    worst = max(r.max_rel_error for r in gradcheck(model, X, T))
    assert worst < (2e-2 if dtype == "float32" else 1e-6)


# --------------------------------------------------------------------------- optimizers
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("flat", [True, False])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_steps_agree_with_numpy_float64(rel_diff, name, flat, dtype):
    model, ref = _pair(dtype, "tanh", "identity", "cross_entropy")
    kw = {"lr": 0.05, "weight_decay": 0.01}
    opt_t, opt_r = get_optimizer(name, **kw), get_optimizer(name, **kw)
    X, T = _data(4)
    for _ in range(5):
        model.gradients(X, T)
        ref.gradients(X, T)
        opt_t.step(model.params, model.grads, flat=model.flat if flat else None)
        opt_r.step(ref.params, ref.grads, flat=ref.flat if flat else None)
    got, want = model.state_dict(), ref.state_dict()
    for k in want:
        assert rel_diff(got[k], want[k]) < 10 * TOL[dtype], k
    slots_t, slots_r = opt_t.state_dict()["slots"], opt_r.state_dict()["slots"]
    assert set(slots_t) == set(slots_r)
    for k in slots_r:
        assert isinstance(slots_t[k], np.ndarray) and rel_diff(slots_t[k], slots_r[k]) < 1e-4, k


# --------------------------------------------------------------------------------- fit
FIT_KW = dict(epochs=3, batch_size=4, seed=5, validation_fraction=0.2)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_fit_history_and_weights_agree_with_numpy(rel_diff, optimizer):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(30, 3))
    labels = rng.integers(0, 3, 30)
    model, ref = _pair("float64", "relu", "identity", "cross_entropy")
    kw = dict(FIT_KW, optimizer=optimizer, lr=0.05, sample_weight=np.linspace(1, 2, 30))
    h_t, h_r = model.fit(X, labels, **kw), ref.fit(X, labels, **kw)
    assert len(h_t) == len(h_r) == 3
    for row_t, row_r in zip(h_t.epochs, h_r.epochs, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert abs(row_t[key] - row_r[key]) < 1e-10, key
    for k, v in ref.state_dict().items():
        assert rel_diff(model.state_dict()[k], v) < 1e-10
    np.testing.assert_array_equal(model.predict_classes(X), ref.predict_classes(X))


def test_fit_float32_torch_tracks_numpy_float64(rel_diff):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(24, 3)).astype(np.float32)
    T = rng.normal(size=(24, 3)).astype(np.float32)
    model, ref = _pair("float32", "tanh", "identity", "l2")
    h_t = model.fit(X, T, epochs=3, batch_size=8, optimizer="sgd", lr=0.1)
    h_r = ref.fit(X.astype(np.float64), T, epochs=3, batch_size=8, optimizer="sgd", lr=0.1)
    assert rel_diff(h_t["loss"], h_r["loss"]) < 1e-5


# -------------------------------------------------------------------------- model files
def test_model_files_cross_backends(rel_diff, tmp_path):
    X, _ = _data(8)
    for dtype in ("float32", "float64"):
        torch_model, _ = _pair(dtype, "gelu", "identity", "cross_entropy")
        path = tmp_path / f"torch-{dtype}.safetensors"
        save_model(path, torch_model)
        on_numpy = load_model(path)
        assert isinstance(on_numpy.params["layers.0.W"], np.ndarray)
        for k, v in torch_model.state_dict().items():  # the file holds the exact weights
            np.testing.assert_array_equal(on_numpy.state_dict()[k], v)
        assert rel_diff(on_numpy.predict(X), torch_model.predict(X).numpy()) < TOL[dtype]

        numpy_model = MLP(SIZES, "elu", "sigmoid", "l2", seed=9, dtype=dtype)
        path = tmp_path / f"numpy-{dtype}.safetensors"
        save_model(path, numpy_model)
        on_torch = load_model(path, backend="torch", device="cpu")
        assert isinstance(on_torch.params["layers.0.W"], torch.Tensor)
        state = on_torch.state_dict()
        assert all(isinstance(v, np.ndarray) and v.dtype == dtype for v in state.values())
        for k, v in numpy_model.state_dict().items():
            np.testing.assert_array_equal(state[k], v)
        assert rel_diff(on_torch.predict(X).numpy(), numpy_model.predict(X)) < TOL[dtype]


def test_checkpoint_from_torch_resumes_on_torch_and_on_numpy(tmp_path):
    from backprop.checkpoint import load_checkpoint, save_checkpoint

    rng = np.random.default_rng(16)
    X, labels = rng.normal(size=(40, 3)), rng.integers(0, 3, 40)
    model, _ = _pair("float64", "tanh", "identity", "cross_entropy")
    states = []
    model.fit(X, labels, optimizer="adam", epochs=2, batch_size=8, callbacks=[states.append])
    path = tmp_path / "run.safetensors"
    save_checkpoint(path, states[-1], {})
    losses = []
    for backend in ("torch", "numpy"):
        state, _ = load_checkpoint(path, backend=backend)
        history = state.model.fit(X, labels, epochs=4, batch_size=8, state=state)
        losses.append(history["loss"][2:])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-12)
    assert len(losses[0]) == 2


# ------------------------------------------------------- CUDA graph: the CPU-side logic
def test_capture_blocker_names_each_obstacle():
    sgd = get_optimizer("sgd", lr=0.1)
    assert "torch backend" in cg.capture_blocker(MLP(SIZES), sgd)
    assert "CUDA device" in cg.capture_blocker(MLP(SIZES, backend="torch"), sgd)
    assert not cg.use_cuda_graph(None, MLP(SIZES, backend="torch"), sgd)
    assert not cg.use_cuda_graph(False, MLP(SIZES, backend="torch"), sgd)
    with pytest.raises(ValueError, match="cuda_graph=True cannot be honoured: .*CUDA device"):
        MLP(SIZES, backend="torch").fit(*_data(), cuda_graph=True)
    with pytest.raises(ValueError, match="cuda_graph must be True, False or None"):
        cg.use_cuda_graph("yes", MLP(SIZES), sgd)


def test_capture_blocker_past_the_device(monkeypatch):
    """With the device check passed, the optimizer and dropout rules decide."""
    model = MLP(SIZES, backend="torch")
    monkeypatch.setattr(model, "backend", replace(model.backend, device=torch.device("cuda")))
    for name in ("momentum", "adam", "adamw"):  # Adam's step count is a device array
        assert cg.capture_blocker(model, get_optimizer(name, lr=0.1)) is None

    class Custom(type(get_optimizer("sgd"))):  # a subclass might read more per step
        pass

    assert "not one whose update is known" in cg.capture_blocker(model, Custom())
    dropped = MLP(SIZES, dropout=0.2, backend="torch")
    monkeypatch.setattr(dropped, "backend", model.backend)
    assert "dropout" in cg.capture_blocker(dropped, get_optimizer("sgd"))


def test_tf32_flag_is_checked_and_restored():
    with pytest.raises(ValueError, match="tf32 applies to the torch backend on a CUDA device"):
        MLP(SIZES).fit(*_data(), epochs=1, tf32=True)
    with pytest.raises(ValueError, match="tf32 applies to the torch backend on a CUDA device"):
        MLP(SIZES, backend="torch").fit(*_data(), epochs=1, tf32=False)
    before = torch.backends.cuda.matmul.allow_tf32
    MLP(SIZES, backend="torch").fit(*_data(), epochs=1)  # None: untouched
    assert torch.backends.cuda.matmul.allow_tf32 == before


class FrozenGraphStandIn:
    """A CPU stand-in for a CUDA graph that enforces what a real one freezes.

    ``capture`` runs the step once, then undoes its effect on every array it wrote (a real
    capture runs no kernel): parameters, gradients, optimizer slots and step count, and the
    graph's epoch arrays and step counter. ``replay`` runs the step again, refuses if the
    learning rate or the arrays differ from those at capture (a real graph would silently
    use the old ones) or if the step-count array does not hold the count the graph will
    advance, and undoes the step's Python side effects (a real replay runs no Python).
    """

    def __init__(self, graph):
        self.graph, self.model, self.opt = graph, graph.model, graph.optimizer

    def _tensors(self):
        flat, g = self.model.flat, self.graph
        return [flat.params, flat.grads, *self.opt.device_arrays(), g.order, g.losses, g._k]

    def capture(self, fn):
        saved = [a.clone() for a in self._tensors()]
        self.fn, self.lr, self.frozen = fn, self.opt.lr, self._tensors()
        fn()
        for a, s in zip(self._tensors(), saved, strict=True):
            a.copy_(s)

    def replay(self):
        assert self.opt.lr == self.lr, "replayed a graph whose learning rate changed"
        assert all(a is b for a, b in zip(self._tensors(), self.frozen, strict=True))
        opt = self.opt
        if opt.uses_step_count:  # the graph advances the count it finds in the array
            assert float(opt._t_array) == opt.t
        saved = (opt.t, opt.epoch, opt._t_array_value)
        self.fn()
        opt.t, opt.epoch, opt._t_array_value = saved


def _fit_with_stand_in(monkeypatch, model, opt, X, T, **kw):
    graphs = []

    class Recording(cg.StepGraph):
        def __init__(self, *a, **k):
            super().__init__(*a, **k, graph_factory=lambda: FrozenGraphStandIn(self))
            graphs.append(self)

    monkeypatch.setattr(cg, "StepGraph", Recording)
    monkeypatch.setattr(cg, "use_cuda_graph", lambda requested, m, o: requested is not False)
    history = model.fit(X, T, optimizer=opt, **kw)
    return history, graphs[0].stats


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"])
def test_replayed_steps_equal_the_uncaptured_steps(monkeypatch, name):
    rng = np.random.default_rng(10)
    X, labels = rng.normal(size=(38, 3)), rng.integers(0, 3, 38)  # 38 = 4 x 8 + a partial 6
    kw = dict(epochs=3, batch_size=8, seed=1, validation_fraction=0.0)
    graphed, _ = _pair("float32", "sigmoid", "identity", "cross_entropy")
    opt = get_optimizer(name, lr=0.1, weight_decay=0.01)
    opt_plain = get_optimizer(name, lr=0.1, weight_decay=0.01)
    plain, _ = _pair("float32", "sigmoid", "identity", "cross_entropy")
    h_plain = plain.fit(X, labels, optimizer=opt_plain, **kw)
    h, stats = _fit_with_stand_in(monkeypatch, graphed, opt, X, labels, **kw)
    # 4 full batches x 3 epochs: 2 warm-up steps, then 10 replays; the partial batches
    # (one per epoch) always ran uncaptured
    assert (stats.warmup_steps, stats.captures, stats.replays) == (2, 1, 10)
    assert opt.t == opt_plain.t == 15
    for a, b in zip(h.epochs, h_plain.epochs, strict=True):
        assert a["loss"] == b["loss"] and a["accuracy"] == b["accuracy"]
    for k, v in plain.state_dict().items():
        np.testing.assert_array_equal(graphed.state_dict()[k], v)
    np.testing.assert_array_equal(
        opt.state_dict()["slots"].get("layers.0.W.v", 0),
        opt_plain.state_dict()["slots"].get("layers.0.W.v", 0),
    )


def test_new_learning_rate_or_new_slots_mean_a_new_capture(monkeypatch):
    rng = np.random.default_rng(11)
    X, T = rng.normal(size=(32, 3)), rng.normal(size=(32, 3))
    kw = dict(epochs=4, batch_size=8, seed=2)
    opt = get_optimizer("momentum", lr=0.1, schedule=get_schedule("step", step_size=2, gamma=0.5))
    snapshot = {}

    def reload_optimizer(state):  # epoch 1's end: replaces the slot arrays
        if state.epoch == 1:
            snapshot.update(state.optimizer.state_dict())
            state.optimizer.load_state_dict(snapshot, backend=state.model.backend)

    model, _ = _pair("float64", "tanh", "identity", "l2")
    plain, _ = _pair("float64", "tanh", "identity", "l2")
    opt_plain = get_optimizer(
        "momentum", lr=0.1, schedule=get_schedule("step", step_size=2, gamma=0.5)
    )
    h_plain = plain.fit(X, T, optimizer=opt_plain, callbacks=[reload_optimizer], **kw)
    h, stats = _fit_with_stand_in(monkeypatch, model, opt, X, T, callbacks=[reload_optimizer], **kw)
    # epoch 1 captures; epoch 2 (new slots) and epoch 3 (lr halves) warm up and capture
    # again (2 + 2 replays each); epoch 4 keeps epoch 3's graph (4 replays)
    assert (stats.warmup_steps, stats.captures, stats.replays) == (6, 3, 10)
    assert h["loss"] == h_plain["loss"]
    for k, v in plain.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v)


def test_failed_capture_falls_back_or_raises(monkeypatch):
    class Broken:
        def capture(self, fn):
            raise RuntimeError("operation not permitted when stream is capturing")

    model, ref = _pair("float64", "tanh", "identity", "l2")
    X, T = _data(12, n=16)
    opt = get_optimizer("sgd", lr=0.1)
    x_all, t_all = model.as_inputs(X), model.as_targets(T, 16)
    graph = cg.StepGraph(model, opt, x_all, t_all, None, 4, warmup=1, graph_factory=Broken)
    graph.begin_epoch(np.arange(16), None)
    assert graph.step(0) is False  # warm-up: the caller steps
    assert graph.step(1) is False and "capture failed" in graph.stats.disabled_reason
    assert opt.t == 0  # the failed capture left no trace
    strict = cg.StepGraph(model, opt, x_all, t_all, None, 4, warmup=1, graph_factory=Broken,
                          strict=True)  # fmt: skip
    strict.begin_epoch(np.arange(16), None)
    strict.step(0)
    with pytest.raises(RuntimeError, match="capturing the training step failed"):
        strict.step(1)
    with pytest.raises(ValueError, match="warmup must be at least 1"):
        cg.StepGraph(model, opt, x_all, t_all, None, 4, warmup=0)


# ------------------------------------------------------------------------- GPU only
def _need_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to PyTorch: the CUDA paths run in scripts/gpu_check.py")


@pytest.mark.parametrize("loss", ["cross_entropy", "l2"])
def test_torch_cuda_agrees_with_numpy_float64(rel_diff, loss):
    _need_cuda()
    X, T = _data(13)
    cpu, ref = _pair("float32", "relu", "identity", loss)
    gpu = load_model_like(cpu, "cuda")
    assert rel_diff(gpu.forward(X).cpu().numpy(), ref.forward(X)) < 1e-5
    _, g_gpu = gpu.gradients(X, T)
    _, g_ref = ref.gradients(X, T)
    for k, g in g_ref.items():
        assert rel_diff(g_gpu[k].cpu().numpy(), g) < 1e-5


def load_model_like(model: MLP, device: str) -> MLP:
    other = MLP.from_config(model.config, seed=0, backend="torch", device=device)
    other.load_state_dict(model.state_dict())
    return other


@pytest.mark.parametrize("optimizer", ["momentum", "adam", "adamw"])
def test_cuda_graph_fit_equals_uncaptured_fit_on_cuda(optimizer):
    _need_cuda()
    rng = np.random.default_rng(14)
    X, labels = rng.normal(size=(300, 3)), rng.integers(0, 3, 300)
    cpu, _ = _pair("float32", "tanh", "identity", "cross_entropy")
    a, b = load_model_like(cpu, "cuda"), load_model_like(cpu, "cuda")
    kw = dict(epochs=3, batch_size=32, optimizer=optimizer, lr=0.05, seed=3)
    h_a = a.fit(X, labels, cuda_graph=False, **kw)
    h_b = b.fit(X, labels, cuda_graph=True, **kw)
    assert h_a["loss"] == h_b["loss"]
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)


def test_cupy_backend_agrees_with_numpy_float64(rel_diff):
    pytest.importorskip("cupy", reason="CuPy is not installed (it needs an NVIDIA GPU)")
    X, T = _data(15)
    _, ref = _pair("float64", "tanh", "identity", "cross_entropy")
    model = MLP.from_config(ref.config, seed=0, backend="cupy")
    model.load_state_dict(ref.state_dict())
    _, g = model.gradients(X, T)
    _, g_ref = ref.gradients(X, T)
    for k, v in g_ref.items():
        assert rel_diff(model.backend.to_numpy(g[k]), v) < 1e-12


# ---------------------------------------------------------------- the GPU check script
def test_gpu_check_cpu_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    sys.modules.pop("gpu_check", None)
    import gpu_check

    assert gpu_check.main(["--cpu-smoke"]) == 0
    report = (tmp_path / "gpu_check.json").read_text()
    assert '"agreement"' in report and '"throughput"' in report
    assert (tmp_path / "gpu_check.md").read_text().count("|") > 20


def test_gpu_docs_show_the_recorded_h200_run(monkeypatch):
    """docs/gpu.md's tables are the ones gpu_check.py makes from its recorded H200 run, and
    that run met every target: a changed record (or a hand-edited doc) fails here."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    sys.modules.pop("gpu_check", None)
    import gpu_check

    report = json.loads((ROOT / "benchmarks/results/gpu-h200.json").read_text())
    assert report["environment"]["gpu"] == "NVIDIA H200" and report["targets_met"] is True
    assert all(a["pass"] for a in report["agreement"]) and len(report["agreement"]) == 4
    docs = (ROOT / "docs/gpu.md").read_text()
    table = gpu_check._markdown(report)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "M |" in line]
    rows += [line for line in table.splitlines() if "| PASS |" in line or "| FAIL |" in line]
    assert len(rows) >= 4 + 7
    for line in rows:
        assert line in docs, line
    ratio = {
        t["target"].split(":")[0]: t["ratio"] for t in report["targets"] if "graph /" in t["target"]
    }
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert (
        f"{ratio['batch 128']:.1f}x PyTorch eager's speed at batch 128, "
        f"{ratio['batch 1024']:.1f}x at batch 1024 and {ratio['batch 8192']:.2f}x PyTorch's own"
    ) in readme
