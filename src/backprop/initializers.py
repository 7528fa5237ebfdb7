"""Weight initialisers. Each draws a ``(fan_in, fan_out)`` matrix from an explicit
``numpy.random.Generator``; nothing touches global random state.

==============  ======================================  ==============================
name            distribution                            source
==============  ======================================  ==============================
normal          N(0, scale^2), scale = 0.1 by default   the seed's "small random" weights
lecun_normal    N(0, 1 / fan_in)                        LeCun et al. 1998; Nielsen ch. 3
xavier_uniform  U(-r, r), r = sqrt(6 / (fan_in+fan_out))  Glorot & Bengio 2010
xavier_normal   N(0, 2 / (fan_in + fan_out))            Glorot & Bengio 2010
he_uniform      U(-r, r), r = sqrt(6 / fan_in)          He et al. 2015
he_normal       N(0, 2 / fan_in)                        He et al. 2015
==============  ======================================  ==============================

Biases start at zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ._registry import lookup

__all__ = ["INITIALIZERS", "get_initializer", "as_generator"]

Initializer = Callable[[np.random.Generator, int, int, float], np.ndarray]


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


INITIALIZERS: dict[str, Initializer] = {
    "normal": _normal,
    "lecun_normal": _lecun_normal,
    "xavier_uniform": _xavier_uniform,
    "xavier_normal": _xavier_normal,
    "he_uniform": _he_uniform,
    "he_normal": _he_normal,
}


def get_initializer(name: str) -> Initializer:
    """The initialiser called ``name``: ``f(rng, fan_in, fan_out, scale) -> float64 array``."""
    return lookup(INITIALIZERS, name, "initializer")


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed (int or None) or a Generator (returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise TypeError(f"seed must be an int, None or numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(seed)
