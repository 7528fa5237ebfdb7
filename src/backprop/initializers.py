"""Weight and bias initialisers. Each draws from an explicit ``numpy.random.Generator``;
nothing touches global random state.

Weights, ``(fan_in, fan_out)`` (:data:`INITIALIZERS`):

==============  ======================================  ==============================
name            distribution                            source
==============  ======================================  ==============================
auto            xavier_uniform for a layer whose        the usual practice: Glorot for
                activation is sigmoid, tanh, softplus,  the saturating activations, He
                identity or softmax; he_normal for      for the ReLU family
                relu, leaky_relu, elu, gelu
normal          N(0, scale^2), scale = 0.1 by default   small random weights (the tutorial
                                                        gives no initialisation; 0.1 is
                                                        the project's, after Nielsen)
lecun_normal    N(0, 1 / fan_in)                        LeCun et al. 1998; Nielsen ch. 3
xavier_uniform  U(-r, r), r = sqrt(6 / (fan_in+fan_out))  Glorot & Bengio 2010
xavier_normal   N(0, 2 / (fan_in + fan_out))            Glorot & Bengio 2010
he_uniform      U(-r, r), r = sqrt(6 / fan_in)          He et al. 2015
he_normal       N(0, 2 / fan_in)                        He et al. 2015
==============  ======================================  ==============================

Biases, ``(fan_out,)`` (:data:`BIAS_INITIALIZERS`): ``zeros``; ``uniform``,
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's ``nn.Linear``; ``normal``, N(0, 1) as
Nielsen's ``network.py``. :class:`backprop.MLP` draws every layer's weights first, then
the seed of its dropout generator, then the biases: the same seed gives the same weights
(and dropout masks) whatever the bias initialiser.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._registry import lookup

__all__ = [
    "AUTO_INITIALIZERS",
    "BIAS_INITIALIZERS",
    "INITIALIZERS",
    "SCALED_INITIALIZERS",
    "as_generator",
    "generator_state",
    "get_bias_initializer",
    "get_initializer",
    "initializer_for",
]

Initializer = Callable[[np.random.Generator, int, int, float], np.ndarray]
BiasInitializer = Callable[[np.random.Generator, int, int], np.ndarray]


def _normal(rng, fan_in, fan_out, scale):
    return rng.normal(0.0, scale, size=(fan_in, fan_out))


def _lecun_normal(rng, fan_in, fan_out, scale):
    return rng.normal(0.0, math.sqrt(1.0 / fan_in), size=(fan_in, fan_out))


def _xavier_uniform(rng, fan_in, fan_out, scale):
    r = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, size=(fan_in, fan_out))


def _xavier_normal(rng, fan_in, fan_out, scale):
    return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))


def _he_uniform(rng, fan_in, fan_out, scale):
    r = math.sqrt(6.0 / fan_in)
    return rng.uniform(-r, r, size=(fan_in, fan_out))


def _he_normal(rng, fan_in, fan_out, scale):
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


def _auto(rng, fan_in, fan_out, scale):
    raise ValueError(
        "init 'auto' depends on the layer's activation: use initializer_for('auto', activation)"
    )


INITIALIZERS: dict[str, Initializer] = {
    "auto": _auto,
    "normal": _normal,
    "lecun_normal": _lecun_normal,
    "xavier_uniform": _xavier_uniform,
    "xavier_normal": _xavier_normal,
    "he_uniform": _he_uniform,
    "he_normal": _he_normal,
}


#: The initialisers that take ``scale``; the others derive theirs from the layer's sizes.
SCALED_INITIALIZERS: tuple[str, ...] = ("normal",)

#: What ``init="auto"`` draws for a layer, by the layer's activation.
AUTO_INITIALIZERS: dict[str, str] = {
    "sigmoid": "xavier_uniform",
    "tanh": "xavier_uniform",
    "softplus": "xavier_uniform",
    "identity": "xavier_uniform",
    "softmax": "xavier_uniform",
    "relu": "he_normal",
    "leaky_relu": "he_normal",
    "elu": "he_normal",
    "gelu": "he_normal",
}


def get_initializer(name: str) -> Initializer:
    """The initialiser called ``name``: ``f(rng, fan_in, fan_out, scale) -> float64 array``
    (``"auto"`` is resolved by :func:`initializer_for`)."""
    return lookup(INITIALIZERS, name, "initializer")


def initializer_for(name: str, activation: str) -> Initializer:
    """The initialiser ``name`` for a layer with ``activation``: ``"auto"`` resolved by
    :data:`AUTO_INITIALIZERS` (an activation not in it gets ``xavier_uniform``)."""
    if name == "auto":
        name = AUTO_INITIALIZERS.get(activation, "xavier_uniform")
    return get_initializer(name)


def _zeros(rng, fan_in, fan_out):
    return np.zeros(fan_out)


def _uniform_bias(rng, fan_in, fan_out):
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=fan_out)


def _normal_bias(rng, fan_in, fan_out):
    return rng.standard_normal(fan_out)


BIAS_INITIALIZERS: dict[str, BiasInitializer] = {
    "zeros": _zeros,
    "uniform": _uniform_bias,
    "normal": _normal_bias,
}


def get_bias_initializer(name: str) -> BiasInitializer:
    """The bias initialiser called ``name``: ``f(rng, fan_in, fan_out) -> float64 (fan_out,)``."""
    return lookup(BIAS_INITIALIZERS, name, "bias initializer")


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """``rng``'s bit generator state as JSON data: its arrays (MT19937's key, Philox's
    counter, SFC64's words) as lists of integers, which ``bit_generator.state = ...`` takes
    back exactly (a checkpoint stores it; MPI ranks compare it)."""

    def listed(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: listed(v) for key, v in value.items()}
        return value.tolist() if isinstance(value, np.ndarray) else value

    return listed(rng.bit_generator.state)


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed (int or None) or a Generator (returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise TypeError(f"seed must be an int, None or numpy.random.Generator, got {seed!r}")
    if seed is not None and seed < 0:  # NumPy's own words name no parameter
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    return np.random.default_rng(seed)
