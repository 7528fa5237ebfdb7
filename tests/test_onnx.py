"""ONNX export: onnx.checker accepts the graph and onnxruntime reproduces model.predict
within 1e-5 (the network runs in float32), for every activation, every output link, and with
input and target scaling (in float64)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from backprop import ACTIVATIONS, MLP
from backprop.onnx_export import export_onnx
from backprop.preprocessing import Preprocessing

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx extra")
ort = pytest.importorskip("onnxruntime", reason="running exported graphs needs onnxruntime")

RNG = np.random.default_rng(5)
X = RNG.normal(scale=2.0, size=(64, 6))


def _run(path, X_in: np.ndarray) -> np.ndarray:
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(["output"], {"input": np.asarray(X_in, dtype=np.float64)})
    return out


def _model(activation: str, output_activation: str = "identity", loss: str = "l2", **kw) -> MLP:
    # larger weights than the default init so every activation works outside its linear range
    return MLP(
        [6, 9, 7, 4],
        activation,
        output_activation,
        loss,
        init="he_normal",
        dtype="float32",
        seed=11,
        **kw,
    )


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_matches(tmp_path, activation, opset):
    model = _model(activation, output_activation=activation)
    path = tmp_path / f"{activation}.onnx"
    export_onnx(model, path, opset=opset)
    got = _run(path, X)
    want = model.predict(X)
    assert got.shape == want.shape == (64, 4)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "Gemm" in ops
    if activation == "gelu":
        assert ("Gelu" in ops) == (opset >= 20)


@pytest.mark.parametrize(
    "loss, output_op",
    [("cross_entropy", ["Cast", "Softmax"]), ("binary_cross_entropy", ["Where", "Div"])],
)
def test_cross_entropy_outputs_are_probabilities(tmp_path, loss, output_op):
    model = _model("relu", loss=loss)
    export_onnx(model, tmp_path / "m.onnx")
    got = _run(tmp_path / "m.onnx", X)
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-5, atol=1e-5)
    nodes = [node.op_type for node in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert nodes[-3:] == [*output_op, "Identity"]  # (the link, after the Cast to float64)
    if loss == "cross_entropy":
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "cross_entropy"])
def test_small_probabilities_keep_their_relative_precision(tmp_path, loss):
    # the link ran in float32, where onnxruntime's Sigmoid is an approximation: 3.6e-7 for
    # 3.1e-7 at a logit of -15, more at -17 than at -16, and 0 below -18 (and its float64
    # Sigmoid is exact to 1e-16 in absolute terms only: 5% off at -35, 0 below -37)
    binary = loss == "binary_cross_entropy"
    model = MLP([1, 1 if binary else 2], "identity", "identity", loss, seed=0)
    model.params["layers.0.W"][:] = [[1.0]] if binary else [[1.0, -1.0]]  # (logits x, -x)
    model.params["layers.0.b"][:] = 0.0
    x = -np.arange(15.0, 46.0)[:, None]  # logits exact in float32
    export_onnx(model, tmp_path / "m.onnx")
    got, want = _run(tmp_path / "m.onnx", x), model.predict(x)
    small = want < 1e-6
    assert small.sum() >= 31 and (got > 0).all()
    np.testing.assert_allclose(got[small], want[small], rtol=1e-12)


def test_input_scaling_is_folded_in(tmp_path):
    model = _model("tanh", loss="cross_entropy")
    mean = RNG.normal(scale=10.0, size=6)
    scale = RNG.uniform(0.5, 20.0, size=6)
    model.preprocessing = Preprocessing(
        feature_names=tuple("abcdef"),
        mean=tuple(mean),
        scale=tuple(scale),
        target="y",
        classes=("w", "x", "y", "z"),
    )
    raw = mean + scale * X  # raw rows whose standardised form is X
    export_onnx(model, tmp_path / "m.onnx")
    got = _run(tmp_path / "m.onnx", raw)
    np.testing.assert_allclose(
        got, model.predict(model.preprocessing.transform(raw)), rtol=1e-5, atol=1e-5
    )
    # the input's columns are named, in order (a user had to find the order elsewhere)
    props = {p.key: p.value for p in onnx.load(tmp_path / "m.onnx").metadata_props}
    assert json.loads(props["feature_names"]) == list("abcdef")
    assert json.loads(props["class_labels"]) == ["w", "x", "y", "z"]


def test_features_of_a_large_offset_keep_their_digits(tmp_path):
    """Unix timestamps (1.7e9, spread 300 s) beside a small feature: in float32 the raw
    value moves by up to 64 s and (x - mean) loses the rest (16 of 400 labels flipped, the
    probabilities off by up to 0.88); the graph takes float64 and standardises in float64,
    as `backprop predict` does."""
    model = MLP([2, 8, 2], "tanh", "identity", "cross_entropy", init="he_normal", seed=3)
    model.preprocessing = Preprocessing(
        feature_names=("ts", "z"), mean=(1.7e9, 0.0), scale=(300.0, 1.0), classes=("a", "b")
    )
    raw = np.column_stack([np.round(1.7e9 + RNG.normal(scale=300, size=400)), RNG.normal(size=400)])
    export_onnx(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(double)"
    got, labels = session.run(None, {"input": raw})
    want = model.predict(model.preprocessing.transform(raw))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert labels.tolist() == model.preprocessing.decode(model.predict_classes(
        model.preprocessing.transform(raw)))  # fmt: skip
    doc = onnx.load(str(tmp_path / "m.onnx")).doc_string
    assert "float64" in doc and "standardised" in doc


def test_a_target_of_a_large_offset_keeps_its_digits(tmp_path):
    """A target near 1.7e9: the un-scaling z * target_scale + target_mean in float32 moved
    predictions by up to 92 (the model's own error was 88); in float64, as predict."""
    model = _model("tanh", loss="mse")
    model.preprocessing = Preprocessing(
        feature_names=tuple("abcdef"), mean=(0.0,) * 6, scale=(1.0,) * 6, target="y",
        target_mean=(1.7e9, 0.0, 0.0, 0.0), target_scale=(10.0, 1.0, 1.0, 1.0),
    )  # fmt: skip
    export_onnx(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].type == "tensor(double)"
    got = _run(tmp_path / "m.onnx", X)
    expected = model.preprocessing.unscale_targets(model.predict(X))
    # the network's own float32 rounding, times the scale of 10: not the mean's 1.7e9
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_target_scaling_is_folded_in(tmp_path):
    """A regression model trained on standardised targets: raw features in, predictions in
    the target's units out, as `backprop predict` gives them."""
    model = _model("tanh", loss="mse")
    model.preprocessing = Preprocessing(
        feature_names=tuple("abcdef"), mean=(0.0,) * 6, scale=(1.0,) * 6, target="y",
        target_mean=(1e3, -5.0, 0.0, 2.0), target_scale=(300.0, 0.5, 1.0, 4.0),
    )  # fmt: skip
    export_onnx(model, tmp_path / "m.onnx")
    got = _run(tmp_path / "m.onnx", X)
    expected = model.preprocessing.unscale_targets(model.predict(X))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * 300)
    assert abs(got[:, 0].mean() - 1e3) < 300


def test_float64_model_without_bias(tmp_path):
    model = MLP([6, 5, 2], "sigmoid", "sigmoid", "l2", bias=False, seed=1)
    export_onnx(model, tmp_path / "m.onnx")
    ops = [node.op_type for node in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert "Gemm" not in ops and ops.count("MatMul") == 2
    np.testing.assert_allclose(_run(tmp_path / "m.onnx", X), model.predict(X), rtol=1e-5, atol=1e-5)


def test_states_its_opset_and_refuses_bad_ones(tmp_path):
    model = _model("relu")
    export_onnx(model, tmp_path / "m.onnx")
    (opset,) = onnx.load(str(tmp_path / "m.onnx")).opset_import
    assert (opset.domain, opset.version) == ("", 17)
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, tmp_path / "bad.onnx", opset=9)
    for bad in (True, 17.0):
        with pytest.raises(ValueError, match="opset must be an integer"):
            export_onnx(model, tmp_path / "bad.onnx", opset=bad)
    export_onnx(model, tmp_path / "np.onnx", opset=np.int64(18))  # it was refused
    assert onnx.load(str(tmp_path / "np.onnx")).opset_import[0].version == 18


def test_class_labels_are_a_sequence_not_one_string(tmp_path):
    # "ab" was taken as the labels 'a' and 'b'
    model = MLP([2, 3, 2], "relu", "identity", "cross_entropy", seed=0)
    with pytest.raises(ValueError, match="a sequence of class names, one per class; got the"):
        export_onnx(model, tmp_path / "m.onnx", class_labels="ab")
    assert not (tmp_path / "m.onnx").exists()
    export_onnx(model, tmp_path / "m.onnx", class_labels=("a", "b"))


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'onnx>=1\.15' 'onnxruntime>=1\.19'$"):
        export_onnx(_model("relu"), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_the_model_argument_is_a_model(tmp_path):
    # ('str' object has no attribute 'preprocessing')
    model = MLP([2, 3, 2], seed=0)
    with pytest.raises(TypeError, match="file path: are the arguments swapped"):
        export_onnx(str(tmp_path / "m.onnx"), model)
    assert not (tmp_path / "m.onnx").exists()
