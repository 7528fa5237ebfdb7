"""PyTorch-style state dicts: round trips, and (with torch) the same outputs as a
torch.nn.Sequential built independently with the documented module order."""

from __future__ import annotations

import numpy as np
import pytest

from backprop import ACTIVATIONS, MLP
from backprop.interop import (
    from_torch_state_dict,
    load_torch_state_dict,
    save_torch_state_dict,
    to_torch_module,
    to_torch_state_arrays,
    to_torch_state_dict,
)
from backprop.io import ModelFileError

RNG = np.random.default_rng(8)
X = RNG.normal(size=(23, 5))


def _model(**kw) -> MLP:
    args = dict(
        sizes=[5, 7, 6, 3],
        activation="tanh",
        output_activation="identity",
        loss="cross_entropy",
        init="he_normal",
        seed=4,
    )
    args.update(kw)
    return MLP(**args)


def test_names_and_layout():
    model = _model()
    sd = to_torch_state_arrays(model)
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert sd["0.weight"].shape == (7, 5) and sd["4.bias"].shape == (3,)
    assert np.array_equal(sd["2.weight"], model.state_dict()["layers.1.W"].T)
    assert sd["2.weight"].flags.c_contiguous
    with_dropout = to_torch_state_arrays(_model(dropout=0.5))
    assert list(with_dropout) == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"]
    assert list(to_torch_state_arrays(_model(bias=False))) == ["0.weight", "2.weight", "4.weight"]


@pytest.mark.parametrize("kw", [{}, {"dtype": "float32"}, {"bias": False}, {"dropout": 0.2}])
def test_round_trip_in_memory_and_through_a_file(same_params, tmp_path, kw):
    model = _model(**kw)
    back = from_torch_state_dict(to_torch_state_arrays(model), model.config)
    assert same_params(back, model)
    save_torch_state_dict(tmp_path / "sd.safetensors", model)
    loaded = load_torch_state_dict(tmp_path / "sd.safetensors", model.config)
    assert same_params(loaded, model)
    assert np.array_equal(loaded.predict(X), model.predict(X))


def test_float32_weights_load_into_a_float64_model(tmp_path):
    model32 = _model(dtype="float32")
    config64 = _model().config
    got = from_torch_state_dict(to_torch_state_arrays(model32), config64)
    assert got.dtype == "float64"
    np.testing.assert_array_equal(
        got.state_dict()["layers.0.W"], model32.state_dict()["layers.0.W"]
    )
    save_torch_state_dict(tmp_path / "sd.safetensors", model32)
    assert load_torch_state_dict(tmp_path / "sd.safetensors", config64).dtype == "float64"


def test_mismatches_are_refused(tmp_path):
    model = _model()
    sd = to_torch_state_arrays(model)
    with pytest.raises(ValueError, match=r"missing \['4.bias'\]"):
        from_torch_state_dict({k: v for k, v in sd.items() if k != "4.bias"}, model.config)
    with pytest.raises(ValueError, match=r"unexpected \['1.weight'\]"):
        from_torch_state_dict({**sd, "1.weight": sd["0.weight"]}, model.config)
    with pytest.raises(ValueError, match=r"0.weight has shape \[5, 7\]; expected \[7, 5\]"):
        from_torch_state_dict({**sd, "0.weight": sd["0.weight"].T}, model.config)
    with pytest.raises(ValueError, match="NaN"):
        from_torch_state_dict({**sd, "0.bias": np.full(7, np.nan)}, model.config)
    save_torch_state_dict(tmp_path / "sd.safetensors", model)
    other = _model(sizes=[5, 8, 3]).config
    with pytest.raises(ModelFileError, match="do not match"):
        load_torch_state_dict(tmp_path / "sd.safetensors", other)
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 40)
    with pytest.raises(ModelFileError, match="not a state dict file"):
        load_torch_state_dict(tmp_path / "junk.safetensors", model.config)


# ------------------------------------------------------------------------- with torch
def _torch_sequential(torch, config):
    """The Sequential the module docstring describes, written out independently."""
    nn = torch.nn
    acts = {
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.01),
        "elu": lambda: nn.ELU(1.0),
        "gelu": lambda: nn.GELU(approximate="tanh"),
        "softplus": nn.Softplus,
        "identity": nn.Identity,
        "softmax": lambda: nn.Softmax(dim=1),
    }
    modules = []
    n = len(config.sizes) - 1
    for i, (fan_in, fan_out) in enumerate(zip(config.sizes[:-1], config.sizes[1:], strict=True)):
        modules.append(nn.Linear(fan_in, fan_out, bias=config.bias, dtype=torch.float64))
        modules.append(acts[config.output_activation if i == n - 1 else config.activation]())
        if i < n - 1 and config.dropout > 0:
            modules.append(nn.Dropout(config.dropout))
    return nn.Sequential(*modules)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_torch_sequential_gives_the_same_outputs(same_params, tmp_path, activation):
    torch = pytest.importorskip("torch", reason="comparing with torch.nn needs PyTorch")
    from safetensors.torch import load_file

    model = _model(
        activation=activation,
        output_activation=activation,
        loss="l2",
        dropout=0.3 if activation == "relu" else 0.0,
    )
    save_torch_state_dict(tmp_path / "sd.safetensors", model)
    net = _torch_sequential(torch, model.config)
    net.load_state_dict(load_file(str(tmp_path / "sd.safetensors")))  # strict: every name used
    net.eval()
    with torch.no_grad():
        out = net(torch.from_numpy(X)).numpy()
    # softplus: torch is linear above its threshold 20, where log1p(e^-20) ~ 2e-9 differs
    np.testing.assert_allclose(out, model.predict(X), rtol=1e-12, atol=1e-8)

    # and back: a state dict taken from the torch module loads into our model
    back = from_torch_state_dict(net.state_dict(), model.config)
    assert same_params(back, model)


@pytest.mark.parametrize("kw", [{}, {"dtype": "float32"}, {"dropout": 0.3}, {"bias": False}])
def test_state_dict_tensors_load_into_the_torch_module(kw):
    """to_torch_state_dict gives tensors that torch's load_state_dict takes (strictly) into
    an independently built Sequential; to_torch_module is an equivalent Sequential."""
    torch = pytest.importorskip("torch", reason="comparing with torch.nn needs PyTorch")
    model = _model(**kw)
    sd = to_torch_state_dict(model)
    assert all(isinstance(v, torch.Tensor) for v in sd.values())
    assert sd["0.weight"].dtype == (torch.float32 if kw.get("dtype") else torch.float64)
    net = _torch_sequential(torch, model.config).to(sd["0.weight"].dtype)
    net.load_state_dict(sd)
    module = to_torch_module(model)
    assert [type(m).__name__ for m in module] == [type(m).__name__ for m in net]
    assert not module.training
    x = torch.from_numpy(X.astype(model.dtype))
    net.eval()
    with torch.no_grad():
        ours, theirs = module(x).numpy(), net(x).numpy()
    np.testing.assert_array_equal(ours, theirs)
    tol = 1e-5 if kw.get("dtype") else 1e-12
    np.testing.assert_allclose(ours, model.forward(X), rtol=tol, atol=tol)
    # the module owns a copy: training it leaves the model as it was
    before = model.state_dict()
    with torch.no_grad():
        module[0].weight.add_(1.0)
    assert np.array_equal(model.state_dict()["layers.0.W"], before["layers.0.W"])


def test_without_torch_the_tensor_functions_name_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)
    for f in (to_torch_state_dict, to_torch_module):
        with pytest.raises(
            ImportError, match=r"pip install 'torch>=2\.1' 'array-api-compat>=1\.8'$"
        ):
            f(_model())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_state_dict_written_by_safetensors_itself_loads(same_params, tmp_path, dtype):
    # safetensors.torch.save_file(net.state_dict(), path) writes no __metadata__ (it is
    # optional): refused as 'not a backprop state dict file' before
    st = pytest.importorskip("safetensors.numpy")
    model = _model(dtype=dtype)
    st.save_file(to_torch_state_arrays(model), tmp_path / "sd.safetensors")
    assert same_params(load_torch_state_dict(tmp_path / "sd.safetensors", model.config), model)


def test_a_model_with_nan_weights_is_not_written(tmp_path):
    # save_model wrote it, and load_model then refused it ('holds NaN or inf')
    from backprop.io import save_model

    model = _model()
    model.params["layers.0.W"][0, 0] = np.nan  # in place, past the checks of assignment
    with pytest.raises(ValueError, match=r"tensor 'layers.0.W' contains NaN or inf"):
        save_model(tmp_path / "m.safetensors", model)
    assert not (tmp_path / "m.safetensors").exists()
