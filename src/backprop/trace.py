"""Every number of one step of any :class:`~backprop.network.MLP`, per layer and per sample.

The training step never keeps these (it overwrites its buffers from step to step, and a
per-sample gradient is exactly what a batched step avoids forming). This module recomputes
them for a small batch, for the learner who asks where a number came from: for each dense
layer, its input ``x``, pre-activation ``a = x W + b``, output ``y = f(a)``, the gradient
``dl_i/dy`` it receives and its delta ``dl_i/da = dl_i/dy * f'(a)``, one row per sample,
where ``l_i`` is sample i's own loss. The batch loss is ``L = sum_i c_i l_i`` with
``c_i = s_i / n`` (sample weights ``s_i``), so sample i contributes
``c_i x_i^T delta_i`` to ``dL/dW`` and ``c_i delta_i`` to ``dL/db``: the generalized
delta rule of the seed, one sample at a time.

It uses the same activation and loss tables as the engine, in inference mode: dropout
is off (a trace of a network with dropout is the trace of the network it predicts with).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .activations import ACTIVATIONS
from .network import MLP

__all__ = ["LayerTrace", "StepTrace", "layer_outputs", "trace_step"]


@dataclass(frozen=True)
class LayerTrace:
    """One dense layer's numbers for a batch of ``n`` samples (float64 NumPy arrays).

    Attributes
    ----------
    x : (n, fan_in)        the layer's input (the data, or the layer below's ``y``)
    a : (n, fan_out)       ``a = x W + b``
    y : (n, fan_out)       ``y = f(a)``
    dl_dy : (n, fan_out)   ``dl_i/dy``: from the loss at the output, else
                           ``sum_k delta_k W_jk`` of the layer above (the seed's dL/dh_j)
    delta : (n, fan_out)   ``dl_i/da = dl_i/dy * f'(a)`` (the seed's delta_j)
    """

    x: np.ndarray
    a: np.ndarray
    y: np.ndarray
    dl_dy: np.ndarray
    delta: np.ndarray


@dataclass(frozen=True)
class StepTrace:
    """The forward and backward numbers of one batch, per layer and per sample.

    Attributes
    ----------
    layers : list of LayerTrace, input layer first
    output : (n, n_outputs)    the network output (logits for a loss that takes them)
    prediction : (n, n_outputs) ``output`` through the loss's link (class probabilities)
    sample_loss : (n,)          ``l_i``
    coefficient : (n,)          ``c_i = s_i / n``: ``L = sum_i c_i l_i``
    loss : float                ``L``
    has_bias : bool
    """

    layers: list[LayerTrace]
    output: np.ndarray
    prediction: np.ndarray
    sample_loss: np.ndarray
    coefficient: np.ndarray
    loss: float
    has_bias: bool

    def contribution(self, i: int) -> dict[str, np.ndarray]:
        """Sample ``i``'s share of each batch gradient, by parameter name:
        ``c_i x_i^T delta_i`` for ``layers.<k>.W`` and ``c_i delta_i`` for ``layers.<k>.b``."""
        return self._scaled(i, float(self.coefficient[i]))

    def sample_gradients(self, i: int) -> dict[str, np.ndarray]:
        """``dl_i/dp``: the gradient of sample ``i``'s own loss (its contribution / ``c_i``)."""
        return self._scaled(i, 1.0)

    def _scaled(self, i: int, c: float) -> dict[str, np.ndarray]:
        out = {}
        for k, layer in enumerate(self.layers):
            out[f"layers.{k}.W"] = c * np.outer(layer.x[i], layer.delta[i])  # dl/dW_ij = x_i d_j
            if self.has_bias:
                out[f"layers.{k}.b"] = c * layer.delta[i]  # dl/db_j = delta_j
        return out

    def gradients(self) -> dict[str, np.ndarray]:
        """``dL/dp`` for the batch: the contributions summed, ``x^T (c * delta)`` per layer."""
        out = {}
        for k, layer in enumerate(self.layers):
            cd = self.coefficient[:, None] * layer.delta
            out[f"layers.{k}.W"] = layer.x.T @ cd
            if self.has_bias:
                out[f"layers.{k}.b"] = cd.sum(axis=0)
        return out


def _layers(model: MLP) -> list[tuple[np.ndarray, np.ndarray, Any]]:
    """``(W, b, activation)`` of each dense layer as float64 host arrays (``b`` zeros when
    the model has no bias)."""
    config = model.config
    state = model.state_dict()
    n_layers = len(config.sizes) - 1
    out = []
    for k in range(n_layers):
        W = state[f"layers.{k}.W"].astype(np.float64)
        b = state[f"layers.{k}.b"].astype(np.float64) if config.bias else np.zeros(W.shape[1])
        last = k == n_layers - 1
        out.append((W, b, ACTIVATIONS[config.output_activation if last else config.activation]))
    return out


def layer_outputs(model: MLP, X: Any, chunk: int = 512) -> list[np.ndarray]:
    """``y = f(a)`` of every dense layer for the rows of ``X`` (inference mode, float64).

    Parameters
    ----------
    model : MLP
    X : array (n_samples, n_inputs)
    chunk : int
        Rows per matrix product. On the project's 2-core machine a ``(4096, 16) @ (16, 16)``
        product took 0.2 to 3.3 ms (OpenBLAS splits it over two threads; the time swings)
        against about 60 us for its eight 512-row chunks: a 64 x 64 map in chunks is 3 to 20
        times faster than in one product.

    Returns
    -------
    list of arrays (n_samples, fan_out), input layer first; the last is the network output.
    """
    x = np.asarray(model.backend.to_numpy(model.as_inputs(X)), dtype=np.float64)
    layers = _layers(model)
    outs = [np.empty((x.shape[0], W.shape[1])) for W, _, _ in layers]
    for lo in range(0, x.shape[0], chunk):
        h = x[lo : lo + chunk]
        for k, (W, b, act) in enumerate(layers):
            h = act.forward(np, h @ W + b)  # y = f(x W + b)
            outs[k][lo : lo + chunk] = h
    return outs


def trace_step(model: MLP, X: Any, T: Any, sample_weight: Any = None) -> StepTrace:
    """The per-layer, per-sample numbers of one forward and backward pass of ``model``.

    Parameters
    ----------
    model : MLP
        Read only (its parameters through :attr:`MLP.params`); nothing in it changes.
    X : array (n_samples, n_inputs)
    T : array (n_samples, n_outputs), or 1-D class labels
    sample_weight : array (n_samples,), optional

    Returns
    -------
    StepTrace
        float64 host arrays, whatever the model's dtype and backend: the model's
        parameters are read in their own precision and the arithmetic is float64.
    """
    x = np.asarray(model.backend.to_numpy(model.as_inputs(X)), dtype=np.float64)
    n = x.shape[0]
    t = np.asarray(model.backend.to_numpy(model.as_targets(T, n)), dtype=np.float64)
    s = model.as_sample_weight(sample_weight, n)
    s = np.ones(n) if s is None else np.asarray(model.backend.to_numpy(s), dtype=np.float64)
    layers_ = _layers(model)
    n_layers = len(layers_)
    Ws = [W for W, _, _ in layers_]
    bs = [b for _, b, _ in layers_]
    acts = [act for _, _, act in layers_]

    inputs, pre, outs = [], [], []
    h = x
    for W, b, act in zip(Ws, bs, acts, strict=True):
        inputs.append(h)
        a = h @ W + b  # a = x W + b
        pre.append(a)
        h = act.forward(np, a)  # y = f(a)
        outs.append(h)

    loss_fn = model.loss_fn
    sample_loss = loss_fn.per_sample(np, h, t)
    coefficient = s / n
    g = loss_fn.per_sample_grad(np, h, t)  # dl_i/dy at the output
    received: list[np.ndarray] = [None] * n_layers  # type: ignore[list-item]
    deltas: list[np.ndarray] = [None] * n_layers  # type: ignore[list-item]
    for k in reversed(range(n_layers)):
        received[k] = g
        deltas[k] = acts[k].backward(np, g, pre[k], outs[k])  # delta = dl/dy * f'(a)
        g = deltas[k] @ Ws[k].T  # dl/dx_j = sum_k delta_k W_jk: the layer below's dl/dy
    link = loss_fn.link
    prediction = h if link == "identity" else ACTIVATIONS[link].forward(np, h)
    layers = [
        LayerTrace(inputs[k], pre[k], outs[k], received[k], deltas[k]) for k in range(n_layers)
    ]
    return StepTrace(
        layers=layers,
        output=h,
        prediction=prediction,
        sample_loss=sample_loss,
        coefficient=coefficient,
        loss=float(np.sum(coefficient * sample_loss)),
        has_bias=model.config.bias,
    )
