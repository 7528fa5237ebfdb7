"""The multilayer perceptron: a stack of dense layers trained by the generalized delta rule.

Batches are rows: ``X`` has shape ``(n_samples, n_features)`` and every layer computes
``a = x W + b``, ``y = f(a)`` with ``W`` of shape ``(fan_in, fan_out)``, exactly the seed's
``a(1) = x w + b(1)``. The backward pass (:meth:`MLP.backward`) walks the layers in reverse:
each takes ``dL/dy`` from the layer above, makes it the seed's ``delta`` (times the
activation's derivative), and turns that into its parameter gradients and the ``dL/dy`` of
the layer below. That loop is the generalized delta rule of the seed's section 6.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ._limits import check_memory
from ._validation import (
    check_finite,
    check_inputs,
    check_sample_weight,
    check_targets,
    host_array,
    is_finite_number,
    is_flag,
    short_repr,
)
from .activations import ACTIVATIONS, get_activation
from .backend import BACKENDS, Backend, get_backend
from .initializers import as_generator, get_bias_initializer, get_initializer, initializer_for
from .layers import Dense, Dropout, batch_buffer
from .losses import get_loss

__all__ = [
    "MLP",
    "MLPConfig",
    "FlatParameters",
    "Parameters",
    "host_itemsize",
    "parameter_layout",
    "parameter_name",
]


@dataclass(frozen=True)
class FlatParameters:
    """Every parameter, and its gradient, as a view into one contiguous vector.

    On backends with views (NumPy, CuPy, PyTorch) an optimizer updates all parameters with
    a handful of whole-vector operations instead of a few per array (at Nielsen's batch 10
    that was 8 kernel calls of a ~45-call step: benchmarks/bench.py), and a data-parallel
    all-reduce sends ``grads`` as one buffer without packing.

    Attributes
    ----------
    params, grads : arrays of shape (n_parameters,)
    layout : dict name -> (start, stop, shape)
    backend : Backend
        Where the vectors live (to bring other arrays, such as loaded optimizer state, there).
    decaying : frozenset of str
        The parameters weight decay applies to (each layer says which of its own do).
    decay_mask : array (n_parameters,)
        1 on the ``decaying`` parameters, 0 elsewhere. Made on first use (only weight decay
        needs it): a parameter-sized vector fewer for every other run (benchmarks/memory.py).
    """

    params: Any
    grads: Any
    layout: dict[str, tuple[int, int, tuple[int, ...]]]
    backend: Backend
    decaying: frozenset[str] = frozenset()

    @classmethod
    def allocate(
        cls,
        backend: Backend,
        shapes: list[tuple[str, tuple[int, ...]]],
        dtype: str,
        decaying: frozenset[str] = frozenset(),
    ) -> FlatParameters:
        """Zeroed parameter and gradient vectors in ``dtype`` on ``backend``, with room for
        every ``(name, shape)`` of ``shapes`` in order (their ``layout``: name -> (start,
        stop, shape)); ``decaying`` names the parameters weight decay applies to."""
        layout, start = {}, 0
        for name, shape in shapes:
            stop = start + math.prod(shape)
            layout[name] = (start, stop, tuple(shape))
            start = stop
        zeros = backend.zeros
        return cls(zeros((start,), dtype), zeros((start,), dtype), layout, backend, decaying)

    @functools.cached_property
    def decay_mask(self) -> Any:
        mask = self.backend.zeros(tuple(self.params.shape), self.params.dtype)
        for name, (lo, hi, _) in self.layout.items():
            if name in self.decaying:
                mask[lo:hi] = 1.0
        return mask

    def view(self, flat: Any, name: str, xp: Any) -> Any:
        """The parameter ``name``'s part of the vector ``flat`` (params, grads or an
        optimizer slot), reshaped to its shape: a view, so writing it writes ``flat``."""
        lo, hi, shape = self.layout[name]
        return xp.reshape(flat[lo:hi], shape)


def parameter_name(k: int, name: str) -> str:
    """``layers.<k>.<name>``: the dotted name of parameter ``name`` of the ``k``-th layer that
    has parameters (``model.dense[k]``; with dropout on, not ``model.layers[k]``). The one
    place names are made: model files, checkpoints and optimizer state use them (format 1)."""
    return f"layers.{k}.{name}"


def parameter_layout(config: MLPConfig) -> list[tuple[str, tuple[int, ...], bool]]:
    """Every parameter an MLP with ``config`` has, in layer order: ``(dotted name, shape,
    whether weight decay applies)``, each layer naming its own (:meth:`Dense.parameter_shapes`)."""
    out = []
    for k, (fan_in, fan_out) in enumerate(zip(config.sizes[:-1], config.sizes[1:], strict=True)):
        for name, shape in Dense.parameter_shapes(fan_in, fan_out, config.bias).items():
            out.append((parameter_name(k, name), shape, name in Dense.decays))
    return out


@dataclass(frozen=True)
class MLPConfig:
    """An MLP's architecture, as data (what a model file stores).

    Attributes
    ----------
    sizes : tuple of int
        Units per layer, inputs first: ``(2, 3, 2)`` is the seed's network.
    activation : str
        Hidden-layer activation.
    output_activation : str
        Output-layer activation; must be ``"identity"`` for a loss that takes logits.
    loss : str
    bias : bool
        Whether each layer has a bias.
    init : str
        Weight initialiser name (:data:`backprop.initializers.INITIALIZERS`); ``"auto"``
        picks one per layer by its activation. ``init_scale`` is the standard deviation of
        ``"normal"``.
    bias_init : {"zeros", "uniform", "normal"}
        Bias initialiser (:data:`backprop.initializers.BIAS_INITIALIZERS`).
    dropout : float
        Dropout probability after each hidden layer (0 for none).
    dtype : {"float32", "float64"}
        The name, as model files hold it (``np.dtype("float32")`` is refused here; the
        estimators' ``dtype`` takes either and keeps the name).
    """

    sizes: tuple[int, ...] = (2, 3, 2)
    activation: str = "sigmoid"
    output_activation: str = "sigmoid"
    loss: str = "l2"
    bias: bool = True
    init: str = "auto"
    init_scale: float = 0.1
    bias_init: str = "zeros"
    dropout: float = 0.0
    dtype: str = "float64"

    def __post_init__(self) -> None:
        if isinstance(self.sizes, str) or not hasattr(self.sizes, "__iter__"):
            raise ValueError(
                "sizes must list at least two positive integers (inputs, ..., outputs), e.g. "
                f"[2, 3, 2]; got {short_repr(self.sizes)}"
            )
        sizes = tuple(self.sizes)
        if len(sizes) < 2 or not all(
            isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise ValueError(
                "sizes must list at least two positive integers (inputs, ..., outputs); "
                f"got {self.sizes!r}"
            )
        object.__setattr__(self, "sizes", tuple(int(s) for s in sizes))
        get_activation(self.activation)
        get_activation(self.output_activation)
        loss = get_loss(self.loss)
        get_initializer(self.init)
        get_bias_initializer(self.bias_init)
        if loss.from_logits and self.output_activation != "identity":
            raise ValueError(
                f"loss {self.loss!r} takes logits and applies {loss.link} itself; set "
                f"output_activation='identity' (got {self.output_activation!r})"
            )
        if not is_flag(self.bias):  # a model file holds true/false
            raise ValueError(f"bias must be True or False; got {short_repr(self.bias)}")
        object.__setattr__(self, "bias", bool(self.bias))
        if not (is_finite_number(self.dropout) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout must be in [0, 1); got {short_repr(self.dropout)}")
        object.__setattr__(self, "dropout", float(self.dropout))  # a Python number for JSON
        if not (isinstance(self.dtype, str) and self.dtype in ("float32", "float64")):
            # a name, as model files and the estimators take it: np.dtype("float32") passed
            # the comparison and then failed to save (not JSON)
            hint = "" if isinstance(self.dtype, str) else " (a name: pass 'float32' or 'float64')"
            raise ValueError(
                f"dtype must be 'float32' or 'float64'; got {short_repr(self.dtype)}{hint}"
            )
        object.__setattr__(self, "dtype", str(self.dtype))  # a Python str for JSON
        if not (is_finite_number(self.init_scale) and self.init_scale > 0):
            raise ValueError(
                f"init_scale must be a finite number > 0; got {short_repr(self.init_scale)}"
            )
        object.__setattr__(self, "init_scale", float(self.init_scale))  # as dropout

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, JSON-ready (``sizes`` as a list): what a model file stores."""
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MLPConfig:
        """The config :meth:`to_dict` wrote (checked as the constructor checks); a key it
        does not know is refused with a ValueError."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(
                f"unknown MLP config keys {sorted(unknown)}; expected some of {sorted(known)}"
            )
        d = dict(d)
        if "sizes" in d:
            d["sizes"] = tuple(d["sizes"])
        return cls(**d)


def _check_softmax_outputs(config: MLPConfig) -> None:
    """Refuse a new network whose softmax (its output activation, or its loss's link) is
    over one output: the softmax of one number is 1, so its loss is 0 and its gradients 0.
    (Checked where a network is made, not where a file is read: one saved before this check
    still loads, to be looked at.)"""
    softmax = "output_activation 'softmax'" if config.output_activation == "softmax" else None
    softmax = softmax or (
        f"loss {config.loss!r}" if get_loss(config.loss).link == "softmax" else None
    )
    if softmax and config.sizes[-1] < 2:
        raise ValueError(
            f"{softmax} needs at least 2 outputs (the softmax of one number is always 1); "
            f"got {config.sizes[-1]}: for one yes/no output use loss='binary_cross_entropy'"
        )


def host_itemsize(config: MLPConfig, backend: Backend) -> int:
    """The bytes of this machine's memory one number of an MLP with ``config`` takes on
    ``backend``: its dtype's size, or 0 where the backend keeps its arrays on a GPU."""
    if backend.name == "cupy" or getattr(backend.device, "type", "cpu") != "cpu":
        return 0
    return np.dtype(config.dtype).itemsize


def _check_memory(config: MLPConfig, backend: Backend) -> None:
    """Refuse a network that does not fit in this machine's memory while it is built,
    before anything is allocated (it was numpy's 'Unable to allocate 21.8 TiB' or, for a
    size that overcommit let through, a process the OOM killer ended). Building holds, per
    parameter, its initial value as the initialisers draw it (float64), the parameter and
    its gradient (the model's dtype); training then adds the optimizer's state, which
    :func:`backprop.training.fit` checks."""
    n = sum(math.prod(shape) for _, shape, _ in parameter_layout(config))
    per_parameter = 8 + 2 * host_itemsize(config, backend)
    parts = "its initial value as drawn, in float64"
    if per_parameter > 8:
        parts = f"the {config.dtype} parameter, its gradient and " + parts
    check_memory(
        n * per_parameter,
        f"an MLP with sizes {short_repr(list(config.sizes), 80)} has {n:,} parameters; "
        f"building it holds {per_parameter} bytes a parameter ({parts}), in all",
    )


class Parameters(Mapping[str, Any]):
    """A model's live parameter arrays by dotted name (:attr:`MLP.params`).

    Reading gives the arrays themselves (the optimizer updates them in place, so they stay
    current). Assigning ``params["layers.0.W"] = W`` copies ``W`` into the model's array
    (same shape, cast to the model's dtype): the model uses the new values at once;
    :meth:`update` assigns several, all or none. Names cannot be added or removed.
    """

    def __init__(self, arrays: dict[str, Any], model: MLP) -> None:
        self._arrays = arrays
        self._model = model

    def __getitem__(self, name: str) -> Any:
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __setitem__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def update(self, values: Mapping[str, Any]) -> None:
        """Assign every ``name: array`` of ``values`` (as ``params[name] = array``), checked
        first, all of them, then written: a bad one leaves every parameter as it was (one by
        one, the earlier ones were written before it was refused)."""
        model, checked = self._model, []
        for name, value in values.items():
            if name not in self._arrays:
                raise KeyError(
                    f"the model has no parameter {name!r}; its parameters are "
                    f"{', '.join(self._arrays)}"
                )
            arr = host_array(value, name)
            want = tuple(self._arrays[name].shape)
            if arr.shape != want:
                raise ValueError(f"{name} must have shape {want}; got {arr.shape}")
            check_finite(arr, name, model.dtype)
            checked.append((name, arr))
        for name, arr in checked:
            self._arrays[name][...] = model.backend.asarray(arr, model.dtype)

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"a model's parameters cannot be removed (asked to remove {name!r})")

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k!r}: {tuple(v.shape)}" for k, v in self._arrays.items())
        return f"Parameters({{{shapes}}})"


class MLP:
    """A multilayer perceptron.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first, e.g. ``[784, 30, 10]``.
    activation, output_activation, loss, bias, init, init_scale, bias_init, dropout, dtype
        See :class:`MLPConfig`.
    seed : int, numpy.random.Generator or None
        Source of the initial weights and of the dropout masks.
    backend : {"numpy", "torch", "cupy", "array_api_strict"} or array API namespace
    device : {"cpu", "cuda"} or None

    Raises
    ------
    MemoryError
        Before anything is allocated, when building the network would not fit in this
        machine's memory (24 bytes a float64 parameter, 16 a float32 one: the parameter,
        its gradient and its initial value as drawn, in float64).

    Examples
    --------
    >>> net = MLP([2, 3, 2], seed=0)          # the seed's network: sigmoid, L2
    >>> net.forward([[0.05, 0.10]]).shape
    (1, 2)
    """

    def __init__(
        self,
        sizes: Any = (2, 3, 2),
        activation: str = "sigmoid",
        output_activation: str = "sigmoid",
        loss: str = "l2",
        *,
        bias: bool = True,
        init: str = "auto",
        init_scale: float = 0.1,
        bias_init: str = "zeros",
        dropout: float = 0.0,
        dtype: str = "float64",
        seed: int | np.random.Generator | None = None,
        backend: str | Any = "numpy",
        device: str | None = None,
    ) -> None:
        config = MLPConfig(
            sizes=sizes,  # MLPConfig checks it and makes it a tuple
            activation=activation,
            output_activation=output_activation,
            loss=loss,
            bias=bias,
            init=init,
            init_scale=init_scale,
            bias_init=bias_init,
            dropout=dropout,
            dtype=dtype,
        )
        _check_softmax_outputs(config)
        self._build(config, as_generator(seed), get_backend(backend, device))

    @classmethod
    def from_config(
        cls,
        config: MLPConfig,
        seed: int | np.random.Generator | None = None,
        backend: str | Any = "numpy",
        device: str | None = None,
    ) -> MLP:
        """A fresh model with the architecture ``config``."""
        self = cls.__new__(cls)
        self._build(config, as_generator(seed), get_backend(backend, device))
        return self

    def _build(self, config: MLPConfig, rng: np.random.Generator, backend: Backend) -> None:
        _check_memory(config, backend)
        self.config = config
        # Input scaling and label mapping of the training data (backprop.preprocessing),
        # carried by model files so that `backprop predict` and the ONNX export take raw
        # rows; predict() itself takes scaled ones (preprocessing.transform); None when unused.
        self.preprocessing: Any = None
        self.backend: Backend = backend
        self.xp = backend.xp
        self.loss_fn = get_loss(config.loss)
        sizes = config.sizes
        activations = [config.activation] * (len(sizes) - 2) + [config.output_activation]
        self.layers: list[Dense | Dropout] = []
        # the layers with parameters, in order: parameter ``layers.<k>.<name>`` is dense[k]'s
        self.dense: list[Dense] = []
        # Weights come first from rng, then a child generator for dropout masks, so the
        # initial weights depend on the seed alone, not on whether dropout is on.
        weights = [
            initializer_for(config.init, act)(rng, fan_in, fan_out, config.init_scale)
            for fan_in, fan_out, act in zip(sizes[:-1], sizes[1:], activations, strict=True)
        ]
        self.dropout_rng = np.random.default_rng(rng.integers(0, 2**63))
        # the biases last, so that the weights and the dropout masks do not depend on them
        bias_init = get_bias_initializer(config.bias_init)
        biases = [
            bias_init(rng, fan_in, fan_out) if config.bias else None
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        layout = parameter_layout(config)
        #: The names of the parameters weight decay applies to (as the layers declare).
        self.decaying = frozenset(name for name, _, decays in layout if decays)
        self.flat: FlatParameters | None = None
        if backend.supports_out:
            shapes = [(name, shape) for name, shape, _ in layout]
            self.flat = FlatParameters.allocate(backend, shapes, config.dtype, self.decaying)
        for i, W0 in enumerate(weights):
            last = i == len(weights) - 1
            act = get_activation(config.output_activation if last else config.activation)
            W, b, gW, gb = self._parameter_arrays(i, W0, biases[i])
            layer = Dense(W, b, act, backend, config.dtype, gW, gb)
            self.layers.append(layer)
            self.dense.append(layer)
            if not last and config.dropout > 0:
                self.layers.append(Dropout(config.dropout, self.dropout_rng, backend, config.dtype))
        # dL/dy written in place by the fused losses, one array per batch size (with the
        # layers' buffers: benchmarks/NOTES.md, 'Engine choices'; bench.py config mlp-b128)
        self._loss_grad_buffers: dict[int, Any] = {}
        # The output layer's values from the last training-mode forward: what backward starts
        # from and what the training runners read predictions from (valid until the next step).
        self.last_output: Any = None
        # the backward pass walks the layers in reverse; the first layer's dL/dx would be
        # the gradient for the data: never needed
        self._backward_order = [(layer, k > 0) for k, layer in enumerate(self.layers)][::-1]

    def _parameter_arrays(
        self, k: int, W0: np.ndarray, b0: np.ndarray | None
    ) -> tuple[Any, Any, Any, Any]:
        """Dense layer k's W (holding W0), b (holding b0), and gradient arrays: views into
        the flat vectors where the backend has views, standalone arrays otherwise."""
        be, dtype, bias = self.backend, self.config.dtype, self.config.bias
        if self.flat is None:
            b = be.asarray(b0, dtype) if bias else None
            return be.asarray(W0, dtype), b, None, None
        flat, xp = self.flat, self.xp
        W = flat.view(flat.params, parameter_name(k, "W"), xp)
        W[...] = be.asarray(W0, dtype)
        gW = flat.view(flat.grads, parameter_name(k, "W"), xp)
        if not bias:
            return W, None, gW, None
        b = flat.view(flat.params, parameter_name(k, "b"), xp)
        b[...] = be.asarray(b0, dtype)
        gb = flat.view(flat.grads, parameter_name(k, "b"), xp)
        return W, b, gW, gb

    # ----------------------------------------------------------------- parameters
    @property
    def n_inputs(self) -> int:
        """The number of input features: the columns of ``X``, ``sizes[0]``."""
        return self.config.sizes[0]

    @property
    def n_outputs(self) -> int:
        """The number of outputs (classes, or regression targets): ``sizes[-1]``."""
        return self.config.sizes[-1]

    @property
    def dtype(self) -> str:
        """The name of the dtype of every parameter and computation: ``"float64"`` or
        ``"float32"``."""
        return self.config.dtype

    def _named(self, arrays: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """``{"layers.<k>.<name>": array}`` over the layers with parameters, in order, from
        each layer's own ``{name: array}`` (its parameters, or its gradients)."""
        return {
            parameter_name(k, name): array
            for k, layer in enumerate(self.dense)
            for name, array in arrays(layer).items()
        }

    def parameter_names(self) -> list[str]:
        """Dotted names ``layers.<k>.W`` and ``layers.<k>.b``, in layer order."""
        return list(self._named(Dense.parameters))

    @property
    def params(self) -> Parameters:
        """The live parameter arrays by name (the optimizer updates these in place);
        ``net.params[name] = array`` writes new values into the model."""
        return Parameters(self._named(Dense.parameters), self)

    @property
    def grads(self) -> dict[str, Any]:
        """The gradients of the last :meth:`backward`, by parameter name: those of the loss
        times the ``grad_scale`` that pass was given, so after :meth:`train_step` with plain
        SGD (no weight decay) they are ``eta dL/dp``, not ``dL/dp`` (see
        :meth:`forward_backward` and ``Optimizer.gradient_scale``);
        :meth:`gradients` gives ``dL/dp`` itself."""
        return self._named(Dense.gradients)

    @property
    def n_parameters(self) -> int:
        """The number of trainable numbers: the entries of every ``W`` and ``b``."""
        return sum(math.prod(p.shape) for p in self.params.values())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Host (NumPy) copies of every parameter, by dotted name."""
        return {k: np.array(self.backend.to_numpy(v), copy=True) for k, v in self.params.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace every parameter with the arrays in ``state`` (same names, shapes, dtype)."""
        expected = self.params
        if set(state) != set(expected):
            missing = sorted(set(expected) - set(state))
            extra = sorted(set(state) - set(expected))
            raise ValueError(
                f"state does not match the model: missing {missing}, unexpected {extra}"
            )
        for name, value in state.items():
            arr = host_array(value, name)
            want = tuple(expected[name].shape)
            if arr.shape != want:
                raise ValueError(f"{name} has shape {arr.shape}; the model expects {want}")
            if arr.dtype != np.dtype(self.dtype):
                raise ValueError(f"{name} has dtype {arr.dtype}; the model's dtype is {self.dtype}")
            check_finite(arr, name, self.dtype)
        # written into the existing arrays, which may be views of the flat vector
        for name, array in expected.items():
            array[...] = self.backend.asarray(np.asarray(state[name]), self.dtype)

    # ------------------------------------------------------------ forward / backward
    def as_inputs(self, X: Any) -> Any:
        """Validate ``X`` (n_samples, n_inputs) and move it to this model's backend and dtype."""
        return self.backend.asarray(check_inputs(X, self.n_inputs, dtype=self.dtype), self.dtype)

    def as_targets(self, T: Any, n_samples: int) -> Any:
        """Validate ``T`` (n_samples, n_outputs), or 1-D labels, and move it to the backend."""
        arr = check_targets(T, n_samples, self.n_outputs, dtype=self.dtype, loss=self.config.loss)
        return self.backend.asarray(arr, self.dtype)

    def as_sample_weight(self, w: Any, n_samples: int) -> Any:
        """Validate sample weights ``w`` (n_samples,), finite and >= 0, not all 0 (a
        ValueError otherwise), and move them to the backend; None stays None (every row
        weighs 1)."""
        arr = check_sample_weight(w, n_samples, dtype=self.dtype)
        return None if arr is None else self.backend.asarray(arr, self.dtype)

    def forward(self, X: Any, training: bool = False) -> Any:
        """The output layer's values, shape ``(n_samples, n_outputs)``.

        For a loss that takes logits this is the logits; :meth:`predict` applies the link.
        ``training=True`` turns dropout on and caches what :meth:`backward` needs.
        """
        y = self.forward_batch(self.as_inputs(X), training)
        if training:
            self.last_output = y
            y = self.xp.asarray(y, copy=True)  # the training buffers are reused next step
        else:  # the layers keep nothing for a backward now (Dense.forward)
            self.last_output = None
        return y

    def forward_batch(self, x: Any, training: bool = False) -> Any:
        """The output layer's values for a batch ``x`` already on this model's backend and
        in its dtype, shape ``(n, n_inputs)`` -> ``(n, n_outputs)``; nothing is checked.

        What :meth:`forward` runs after checking ``X``, and what the training runners call.
        In training mode the result lives in the layers' buffers until the next step.
        """
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def predict(self, X: Any) -> Any:
        """Predictions, shape ``(n_samples, n_outputs)``: class probabilities for the
        cross-entropy losses (softmax or sigmoid applied), the outputs otherwise.

        ``X`` holds the features as the network takes them. A model trained on standardised
        rows carries their scaling in :attr:`preprocessing` (``backprop train`` sets it; from
        Python, set ``model.preprocessing = dataset.preprocessing`` yourself): pass
        ``model.preprocessing.transform(X_raw)``, and for standardised regression targets
        turn the outputs into the target's units with
        ``model.preprocessing.unscale_targets(...)`` (``backprop predict`` and the ONNX
        export do both themselves)."""
        out = self.forward_batch(self.as_inputs(X), False)
        link = self.loss_fn.link
        return out if link == "identity" else ACTIVATIONS[link].forward(self.xp, out)

    def predict_classes(self, X: Any) -> np.ndarray:
        """The index of the largest output for each row, as a NumPy int array ``(n_samples,)``.

        With a single output, the class is ``p > 0.5``, ``p`` the output (for logits, its
        sigmoid, as :meth:`predict` gives it)."""
        out = self.backend.to_numpy(self.predict(X))
        if out.shape[1] == 1:
            return (out[:, 0] > 0.5).astype(np.intp)
        return np.argmax(out, axis=1)

    def backward(self, t: Any, sample_weight: Any = None, grad_scale: float = 1.0) -> Any:
        """Backpropagate from the loss after a ``forward(..., training=True)``.

        ``t`` (n, n_outputs) and ``sample_weight`` (n,) or None are backend arrays in the
        model's dtype (:meth:`as_targets`, :meth:`as_sample_weight`), ``n`` the rows of that
        forward. Returns the loss (a 0-d backend array, or a NumPy scalar on NumPy); the
        gradients are in :attr:`grads`, each of its parameter's shape. This loop is the
        generalized delta rule: ``g`` starts as ``dL/dy`` at the output and each layer turns
        it into its own gradients and ``dL/dx`` for the layer below. Without a training
        forward since the last inference one (or at all), a RuntimeError.
        """
        y = self.last_output
        if y is None:  # (it was "'NoneType' object has no attribute 'shape'")
            raise RuntimeError(
                "MLP.backward needs a forward(X, training=True) first: there is no batch to "
                "backpropagate (an inference forward keeps none)"
            )
        n = y.shape[0]
        out = self._loss_grad_buffers.get(n)
        if out is None and self.backend.supports_out:
            out = batch_buffer(
                self._loss_grad_buffers,
                n,
                lambda n: self.backend.empty((n, *y.shape[1:]), self.dtype),
                lambda larger, n: larger[:n],
            )
        loss, g = self.loss_fn.value_and_grad(
            self.backend, y, t, sample_weight, out=out, scale=grad_scale
        )
        for layer, need_input_grad in self._backward_order:
            g = layer.backward(g, need_input_grad)
        return loss

    def forward_backward(
        self, x: Any, t: Any, sample_weight: Any = None, grad_scale: float = 1.0
    ) -> Any:
        """One forward (training mode) and backward on backend arrays; returns the loss ``L``.

        ``x`` (n, n_inputs), ``t`` (n, n_outputs) and ``sample_weight`` (n,) or None, in the
        model's dtype on its backend.

        ``grad_scale``: the gradients left in :attr:`grads` are those of ``grad_scale * L``
        (backpropagation is linear in the output's gradient, so the factor costs nothing on
        the fused losses). Plain SGD asks for its learning rate here
        (:meth:`backprop.optimizers.Optimizer.gradient_scale`), so that its update is one
        subtraction: a pass over every parameter saved per step (Nielsen's network, 46 -> 42.7
        us a step: benchmarks/NOTES.md, 'Engine choices'; bench.py config nielsen-b10).
        """
        self.last_output = self.forward_batch(x, True)
        return self.backward(t, sample_weight, grad_scale)

    def loss(self, X: Any, T: Any, sample_weight: Any = None) -> float:
        """``L = (1/n) sum_i s_i l_i`` on ``(X, T)`` in inference mode (no dropout).

        ``X`` (n, n_inputs); ``T`` (n, n_outputs), or labels (n,) for the classification
        losses; ``sample_weight`` (n,) or None."""
        x = self.as_inputs(X)
        n = x.shape[0]
        y = self.forward_batch(x, False)
        t = self.as_targets(T, n)
        w = self.as_sample_weight(sample_weight, n)
        return float(self.loss_fn.value(self.xp, y, t, w))

    def gradients(self, X: Any, T: Any, sample_weight: Any = None) -> tuple[float, dict[str, Any]]:
        """The loss and ``dL/d(parameter)`` for every parameter, on one batch.

        ``X``, ``T`` and ``sample_weight`` as for :meth:`loss`; each gradient has its
        parameter's shape (``layers.0.W``: (n_inputs, n_hidden)).

        Dropout, if configured, is active (masks from the model's dropout generator).
        The arrays returned are copies: they stay valid after later steps.
        """
        x = self.as_inputs(X)
        n = x.shape[0]
        t = self.as_targets(T, n)
        w = self.as_sample_weight(sample_weight, n)
        loss = self.forward_backward(x, t, w)
        return float(loss), {k: self.xp.asarray(g, copy=True) for k, g in self.grads.items()}

    def train_step(self, X: Any, T: Any, optimizer: Any, sample_weight: Any = None) -> float:
        """One gradient step on one batch; returns the batch loss before the step.

        ``X``, ``T`` and ``sample_weight`` as for :meth:`loss`.

        ``optimizer`` is an :class:`~backprop.optimizers.Optimizer` object (it holds the
        step count and moments between calls), e.g. ``get_optimizer("adam", lr=1e-3)``.
        The backward pass is scaled by the optimizer's ``gradient_scale()`` (plain SGD's
        learning rate), so :attr:`grads` afterwards holds ``eta dL/dp`` for SGD without weight
        decay, ``dL/dp`` otherwise."""
        if not callable(getattr(optimizer, "gradient_scale", None)):
            raise TypeError(
                "optimizer must be an Optimizer object, e.g. backprop.get_optimizer('sgd', "
                f"lr=0.1), which keeps its state between steps; got {short_repr(optimizer)}"
            )
        x = self.as_inputs(X)
        n = x.shape[0]
        scale = optimizer.gradient_scale()  # the same path as fit's steps, bit for bit
        loss = self.forward_backward(
            x, self.as_targets(T, n), self.as_sample_weight(sample_weight, n), scale
        )
        optimizer.step(
            self.params, self.grads, flat=self.flat, scaled=scale != 1.0, decays=self.decaying
        )
        return float(loss)

    def fit(self, X: Any, T: Any, **kwargs: Any) -> Any:
        """Train on ``(X, T)``; see :func:`backprop.training.fit` for the options."""
        from .training import fit

        return fit(self, X, T, **kwargs)

    def __repr__(self) -> str:
        c = self.config
        dropout = f", dropout={c.dropout!r}" if c.dropout else ""
        return (
            f"MLP({list(c.sizes)}, activation={c.activation!r}, "
            f"output_activation={c.output_activation!r}, loss={c.loss!r}{dropout}, "
            f"dtype={c.dtype!r}, backend={self.backend.name!r})"
        )

    # ------------------------------------------------------------------ summary
    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print the layers, their output shapes and parameter counts, as Keras does::

            Layer                Output shape   Parameters   Shapes
            ─────────────────────────────────────────────────────────────────────
            input                (n, 784)                0
            dense 0 (relu)       (n, 30)            23,550   W (784, 30), b (30,)
            dense 1 (identity)   (n, 10)               310   W (30, 10), b (10,)
            ─────────────────────────────────────────────────────────────────────
            23,860 parameters (float64, 186.4 KiB), loss cross_entropy, backend numpy

        Parameters
        ----------
        print_fn : callable
            Called with each line (``print`` by default; ``lines.append`` collects them).
        """
        rows = [("input", f"(n, {self.n_inputs})", 0, "")]
        k = 0
        for layer in self.layers:
            if isinstance(layer, Dense):
                shapes = {n: tuple(a.shape) for n, a in layer.parameters().items()}
                count = sum(math.prod(shape) for shape in shapes.values())
                act = layer.activation.name
                rows.append(
                    (
                        f"dense {k} ({act})",
                        f"(n, {shapes['W'][1]})",
                        count,
                        ", ".join(f"{n} {shape}" for n, shape in shapes.items()),
                    )
                )
                k += 1
            else:
                rows.append((f"dropout (p={layer.p:g})", rows[-1][1], 0, ""))
        head = ("Layer", "Output shape", "Parameters", "Shapes")
        w0 = max(len(head[0]), *(len(r[0]) for r in rows))
        w1 = max(len(head[1]), *(len(r[1]) for r in rows))
        w2 = max(len(head[2]), *(len(f"{r[2]:,}") for r in rows))

        def line(a: str, b: str, c: str, d: str) -> str:
            return f"{a:<{w0}}   {b:<{w1}}   {c:>{w2}}   {d}".rstrip()

        lines = [line(*head)]
        body = [line(name, shape, f"{count:,}", shapes) for name, shape, count, shapes in rows]
        rule = "─" * max(len(x) for x in [*lines, *body])
        n, size = self.n_parameters, np.dtype(self.dtype).itemsize * self.n_parameters
        lines += [rule, *body, rule]
        lines.append(
            f"{n:,} parameters ({self.dtype}, {size / 1024:,.1f} KiB), "
            f"loss {self.config.loss}, backend {self.backend.name}"
        )
        for text in lines:
            print_fn(text)

    # ------------------------------------------------------------------ pickle
    def __getstate__(self) -> dict[str, Any]:
        """What a pickle (and ``copy.deepcopy``) keeps: the config, the weights as NumPy
        arrays, the dropout generator's state, the preprocessing, and the backend by name
        (an array module cannot be pickled; it is looked up again on loading)."""
        device = self.backend.device
        return {
            "config": self.config.to_dict(),
            "params": self.state_dict(),
            "dropout_rng": self.dropout_rng.bit_generator.state,
            "preprocessing": self.preprocessing,
            "backend": self.backend.name,
            "device": None if device is None else str(device),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        name = state["backend"]
        # a registered backend by its name; any other array API namespace by its module,
        # imported by name as pickle itself imports the modules of the classes it restores
        backend = get_backend(name if name in BACKENDS else importlib.import_module(name),
                              state["device"])  # fmt: skip
        # the initial weights are drawn and overwritten at once (as backprop.io loads them)
        with np.errstate(over="ignore", invalid="ignore"):
            self._build(MLPConfig.from_dict(state["config"]), as_generator(0), backend)
        self.load_state_dict(state["params"])
        self.dropout_rng.bit_generator.state = state["dropout_rng"]
        self.preprocessing = state["preprocessing"]
