"""Export an MLP to a standard ONNX graph, for onnxruntime and other runtimes.

The graph, for a model with L dense layers::

    input (batch, n_inputs), float64            raw features, as backprop predict reads them
      -> Sub(mean) -> Div(scale)               only when model.preprocessing is set (float64)
      -> Cast(float32)                          the network runs in float32
      -> Gemm(W_0, b_0) -> activation           Gemm computes x W + b (MatMul without bias)
      -> ...
      -> Gemm(W_{L-1}, b_{L-1}) -> output activation
      -> Cast(float64)
      -> Softmax(axis=1) / sigmoid              only for the cross-entropy losses (the link),
                                                in float64 as predict's (sigmoid from its
                                                two branches: _Graph.probability)
      -> Mul(target_scale) -> Add(target_mean)  only for standardised regression targets
    output (batch, n_outputs), float64          = model.predict(X)

The input is float64 because raw features need it: a Unix timestamp (1.7e9) rounded to
float32 moves by up to 64 seconds, and its standardisation ``(x - mean) / scale`` in
float32 loses the rest; ``backprop predict`` standardises in float64 too.

Activations map to single ONNX operators: Sigmoid, Tanh, Relu, LeakyRelu (alpha 0.01),
Elu (alpha 1), Softplus, Identity, Softmax (axis 1); GELU (tanh form) is the ``Gelu``
operator with ``approximate="tanh"`` from opset 20 and is composed from Mul, Add and Tanh
below that. The default opset is 17; opsets 13 to the installed onnx's newest are accepted.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import require_model
from .._version import __version__, pip_extra
from ..activations import ELU_ALPHA, LEAKY_SLOPE
from ..network import MLP, parameter_name
from .safetensors import write_atomic

__all__ = ["export_onnx", "import_onnx", "DEFAULT_OPSET", "MIN_OPSET"]

DEFAULT_OPSET = 17
#: Softmax with a single ``axis`` (opset 13 semantics) is what the graph relies on.
MIN_OPSET = 13
_GELU_OPSET = 20
_GELU_C = math.sqrt(2.0 / math.pi)

# activation name -> (ONNX operator, attributes); gelu is handled apart
_SIMPLE_OPS: dict[str, tuple[str, dict[str, Any]]] = {
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "relu": ("Relu", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": LEAKY_SLOPE}),
    "elu": ("Elu", {"alpha": ELU_ALPHA}),
    "softplus": ("Softplus", {}),
    "identity": ("Identity", {}),
    "softmax": ("Softmax", {"axis": 1}),
}


def import_onnx() -> Any:
    """The onnx module, or an ImportError naming the extra that installs it."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError(f"ONNX export needs the onnx package ({e}): {pip_extra('onnx')}") from e
    return onnx


class _Graph:
    """Collects nodes and initializers (float32 unless told) with unique names."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, stem: str, value: Any, dtype: Any = np.float32) -> str:
        name = self.name(stem)
        arr = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        out = self.name(stem)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def activation(self, name: str, x: str, opset: int) -> str:
        if name in _SIMPLE_OPS:
            op_type, attrs = _SIMPLE_OPS[name]
            return self.op(op_type, [x], name, **attrs)
        if name == "gelu":
            if opset >= _GELU_OPSET:
                return self.op("Gelu", [x], "gelu", approximate="tanh")
            # 0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3))), as backprop.activations computes it
            a3 = self.op("Mul", [self.op("Mul", [x, x], "gelu_a2"), x], "gelu_a3")
            inner = self.op(
                "Add", [x, self.op("Mul", [a3, self.constant("c", 0.044715)], "m")], "s"
            )
            th = self.op("Tanh", [self.op("Mul", [inner, self.constant("k", _GELU_C)], "m")], "th")
            one_plus = self.op("Add", [th, self.constant("one", 1.0)], "s")
            half_a = self.op("Mul", [x, self.constant("half", 0.5)], "m")
            return self.op("Mul", [half_a, one_plus], "gelu")
        raise ValueError(f"activation {name!r} has no ONNX form")

    def probability(self, link: str, z: str) -> str:
        """The link of the float64 logits ``z``, exact in relative terms as
        :func:`backprop.activations.sigmoid` is: Softmax is (onnxruntime's float64 Softmax
        subtracts the largest logit); its Sigmoid is not (absolute error 1e-16: 5% off at a
        logit of -35, 0 below -37), so sigmoid is built from its two branches, e / (1 + e)
        for z < 0 and 1 / (1 + e) otherwise, with e = exp(-|z|) in (0, 1]."""
        if link == "softmax":
            return self.op("Softmax", [z], link, axis=1)
        e = self.op("Exp", [self.op("Neg", [self.op("Abs", [z], "abs")], "neg")], "e")
        one = self.constant("one", 1.0, np.float64)
        one_plus_e = self.op("Add", [e, one], "one_plus_e")
        negative = self.op("Less", [z, self.constant("zero", 0.0, np.float64)], "negative")
        numerator = self.op("Where", [negative, e, one], "numerator")
        return self.op("Div", [numerator, one_plus_e], link)


def export_onnx(
    model: MLP,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    class_labels: Sequence[str] | None = None,
) -> None:
    """Write ``model`` as an ONNX graph computing ``model.predict``: float64 in and out,
    the network in float32.

    Parameters
    ----------
    model : MLP
        Any backend and dtype; weights are exported as float32.
    path : str or path-like
        The ``.onnx`` file to write (atomically).
    opset : int
        The ONNX opset (default 17); at least 13.
    class_labels : sequence of str, optional
        The class of each output (two for a single sigmoid output: below and above 0.5).
        Default: ``model.preprocessing.classes`` when the model carries them. With labels,
        the graph has a second output ``"label"`` (batch,) of strings, the predicted class
        of each row (what ``model.predict_classes`` picks), and the model's metadata
        ``class_labels`` holds them as a JSON list.

    Notes
    -----
    The graph has one input ``"input"``, float64, of shape ``(batch, n_inputs)`` and one
    output ``"output"``, float64, of shape ``(batch, n_outputs)``. When
    ``model.preprocessing`` is set, the input is the raw features and the graph standardises
    them first, in float64 (``(x - mean) / scale``, as ``backprop predict`` does), and the
    model's metadata ``feature_names`` names the input's
    columns, in order, as a JSON list. The output is what :meth:`MLP.predict` returns: class
    probabilities for the cross-entropy losses (softmax or sigmoid applied); for a model
    trained on standardised targets, in the target's units
    (``model.preprocessing.unscale_targets``).

    Raises
    ------
    TypeError
        When ``model`` is not an :class:`MLP` (a path: the arguments swapped; a
        scikit-learn estimator's network is ``est.model_``).
    ImportError
        When onnx is not installed (the ``onnx`` extra).
    ValueError
        For an opset outside the supported range, or class labels that do not match the
        outputs.
    """
    require_model(model, "export_onnx's model")
    onnx = import_onnx()
    newest = onnx.defs.onnx_opset_version()
    if not (
        isinstance(opset, numbers.Integral)
        and not isinstance(opset, bool)
        and MIN_OPSET <= opset <= newest
    ):
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest}; got {opset!r}")
    opset = int(opset)  # (np.int64(17) too)
    labels = _class_labels(model, class_labels)
    helper = onnx.helper
    config = model.config
    g = _Graph(onnx)
    x = "input"
    pre = model.preprocessing
    if pre is not None:
        if pre.n_features != model.n_inputs:
            raise ValueError(
                f"the model's preprocessing scales {pre.n_features} features but the model has "
                f"{model.n_inputs} inputs"
            )
        x = g.op("Sub", [x, g.constant("mean", pre.mean, np.float64)], "centred")
        x = g.op("Div", [x, g.constant("scale", pre.scale, np.float64)], "standardised")
    x = g.op("Cast", [x], "float32", to=onnx.TensorProto.FLOAT)
    params = model.state_dict()
    n_layers = len(config.sizes) - 1
    for i in range(n_layers):
        W = g.constant(parameter_name(i, "W"), params[parameter_name(i, "W")])
        if config.bias:
            b = g.constant(parameter_name(i, "b"), params[parameter_name(i, "b")])
            x = g.op("Gemm", [x, W, b], f"a{i}")  # a = x W + b
        else:
            x = g.op("MatMul", [x, W], f"a{i}")
        last = i == n_layers - 1
        x = g.activation(config.output_activation if last else config.activation, x, opset)
    x = g.op("Cast", [x], "float64", to=onnx.TensorProto.DOUBLE)  # out as predict's, float64
    link = model.loss_fn.link
    if link != "identity":  # probabilities in float64, exact in relative terms (its float32
        # Sigmoid gave 3.6e-7 for 3.1e-7 at a logit of -15, 0 below -18: ranking, log-loss)
        x = g.probability(link, x)
    if pre is not None and pre.scales_targets:  # standardised targets -> the target's units,
        # in float64 as predict (a target mean of 1.7e9 in float32 moved predictions by 92)
        x = g.op("Mul", [x, g.constant("target_scale", pre.target_scale, np.float64)], "unscaled")
        x = g.op("Add", [x, g.constant("target_mean", pre.target_mean, np.float64)], "prediction")
    g.nodes.append(helper.make_node("Identity", [x], ["output"], name="output"))

    double = onnx.TensorProto.DOUBLE
    outputs = [helper.make_tensor_value_info("output", double, ["batch", model.n_outputs])]
    if labels is not None:
        if model.n_outputs == 1:  # one output: class 1 above 0.5, as model.predict_classes
            above = g.op("Greater", ["output", g.constant("threshold", [0.5], np.float64)], "above")
            flat = g.op("Reshape", [above, _int64(g, onnx, "flat", [-1])], "flat")
            index = g.op("Cast", [flat], "index", to=onnx.TensorProto.INT64)
        else:
            index = g.op("ArgMax", ["output"], "index", axis=1, keepdims=0)
        names = g.name("class_labels")
        g.initializers.append(
            helper.make_tensor(names, onnx.TensorProto.STRING, [len(labels)], [
                label.encode("utf-8") for label in labels
            ])
        )  # fmt: skip
        g.nodes.append(helper.make_node("Gather", [names, index], ["label"], name="label", axis=0))
        outputs.append(helper.make_tensor_value_info("label", onnx.TensorProto.STRING, ["batch"]))
    graph = helper.make_graph(
        g.nodes,
        "backprop_mlp",
        [
            helper.make_tensor_value_info(
                "input", onnx.TensorProto.DOUBLE, ["batch", model.n_inputs]
            )
        ],
        outputs,
        initializer=g.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    onnx_model = helper.make_model(
        graph,
        opset_imports=opsets,
        # the oldest IR version the opset allows, not the installed onnx's newest: a runtime
        # reads the file if it knows the opset (onnx 1.23 writes IR 14 by default, which
        # onnxruntime 1.23, the newest on Python 3.10, refuses)
        ir_version=helper.find_min_ir_version_for(opsets),
        producer_name="backprop",
        producer_version=__version__,
        doc_string=_describe(model, labels is not None),
    )
    props = {} if labels is None else {"class_labels": json.dumps(labels)}
    if model.preprocessing is not None:  # the input's columns, in order (a CSV's header
        # names them; without them a user had to find the order somewhere else)
        props["feature_names"] = json.dumps(list(model.preprocessing.feature_names))
    if props:
        helper.set_model_props(onnx_model, props)
    onnx.checker.check_model(onnx_model)
    write_atomic(path, onnx_model.SerializeToString())


def _describe(model: MLP, labelled: bool) -> str:
    """The graph's doc_string: what goes in and what comes out."""
    pre = model.preprocessing
    steps = ["input: float64 raw features"]
    if pre is not None:
        steps.append("standardised (x - mean) / scale in float64")
    steps.append(f"backprop MLP {list(model.config.sizes)} in float32")
    if pre is not None and pre.scales_targets:
        steps.append("outputs in the target's units (z * target_scale + target_mean, float64)")
    steps.append(
        "output (float64) = what backprop predict gives" + (", label its class" if labelled else "")
    )
    return "; ".join(steps)


def _int64(g: _Graph, onnx: Any, stem: str, values: list[int]) -> str:
    name = g.name(stem)
    g.initializers.append(onnx.numpy_helper.from_array(np.asarray(values, np.int64), name))
    return name


def _class_labels(model: MLP, given: Sequence[str] | None) -> list[str] | None:
    """The labels to export (given, else the model's preprocessing classes), checked."""
    pre = model.preprocessing
    if given is None and pre is not None and pre.classes is not None:
        given = pre.classes
    if given is None:
        return None
    if isinstance(given, str | bytes):  # "ab" read as the labels 'a' and 'b'
        raise ValueError(
            f"class_labels must be a sequence of class names, one per class; got the single "
            f"string {given!r}"
        )
    labels = [str(c) for c in given]
    n = 2 if model.n_outputs == 1 else model.n_outputs
    if len(labels) != n:
        raise ValueError(
            f"{len(labels)} class labels given for a model with {model.n_outputs} output"
            f"{'s' if model.n_outputs != 1 else ''}; expected {n}"
        )
    return labels
