"""Two-dimensional classification sets generated from a seed (TensorFlow Playground's kind).

Every generator takes ``(n_samples, noise, rng)`` and returns ``X`` float64
``(n_samples, 2)`` and ``y`` int64 ``(n_samples,)``, the classes as equal in size as
``n_samples`` allows, rows in class order (the loader shuffles when it splits).

=========  =======  ======  ======================================================
name       classes  noise   what it is
=========  =======  ======  ======================================================
toy        2        0.1     a 2-input, 2-output problem for the seed's network (the
                            seed gives no data): two gaussian clusters centred at
                            (0.3, 0.7) and (0.7, 0.3), std ``noise``, clipped to
                            [0, 1]^2; the targets are one-hot, so the seed's 2-3-2
                            sigmoid/L2 network learns it
xor        2        0.0     uniform in [-1, 1]^2 away from the axes (|x_i| >= 0.05);
                            class 1 where the signs differ (x1 * x2 < 0); then
                            gaussian jitter of std ``noise``
moons      2        0.1     two interleaving half circles (scikit-learn's make_moons)
circles    2        0.05    a circle of radius 1 (class 0) around one of radius 0.5
spirals    2        0.02    two interleaved spirals of 1.75 turns, radius 0 to 1
blobs      3        0.5     gaussian clusters of std ``noise`` centred on a circle of
                            radius 2 (angles 90, 210, 330 degrees)
=========  =======  ======  ======================================================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "SYNTHETIC",
    "make_blobs",
    "make_circles",
    "make_moons",
    "make_spirals",
    "make_toy",
    "make_xor",
]

Generator = Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _class_sizes(n_samples: int, n_classes: int) -> list[int]:
    base, extra = divmod(n_samples, n_classes)
    return [base + (1 if k < extra else 0) for k in range(n_classes)]


def _labels(sizes: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)


def make_toy(
    n_samples: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Two gaussian clusters clipped to the unit square: a 2-in, 2-out problem for the
    seed's network (the seed itself gives no data)."""
    sizes = _class_sizes(n_samples, 2)
    centres = np.array([[0.3, 0.7], [0.7, 0.3]])
    X = np.repeat(centres, sizes, axis=0) + noise * rng.standard_normal((n_samples, 2))
    return np.clip(X, 0.0, 1.0), _labels(sizes)


def make_xor(
    n_samples: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Four quadrants; class 1 where exactly one coordinate is negative."""
    sizes = _class_sizes(n_samples, 2)
    # |x_i| uniform in [0.05, 1]; the signs pick the quadrant: equal signs for class 0.
    mag = rng.uniform(0.05, 1.0, size=(n_samples, 2))
    s1 = rng.choice([-1.0, 1.0], size=n_samples)
    y = _labels(sizes)
    s2 = np.where(y == 0, s1, -s1)
    X = mag * np.stack([s1, s2], axis=1)
    return X + noise * rng.standard_normal(X.shape), y


def make_moons(
    n_samples: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Upper half circle at the origin (class 0), lower one shifted by (1, 0.5) (class 1)."""
    n0, n1 = _class_sizes(n_samples, 2)
    a0 = np.linspace(0.0, np.pi, n0)
    a1 = np.linspace(0.0, np.pi, n1)
    X = np.concatenate(
        [
            np.stack([np.cos(a0), np.sin(a0)], axis=1),
            np.stack([1.0 - np.cos(a1), 0.5 - np.sin(a1)], axis=1),
        ]
    )
    return X + noise * rng.standard_normal(X.shape), _labels([n0, n1])


def make_circles(
    n_samples: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Concentric circles of radius 1 (class 0) and 0.5 (class 1)."""
    sizes = _class_sizes(n_samples, 2)
    y = _labels(sizes)
    radius = np.where(y == 0, 1.0, 0.5)
    angle = rng.uniform(0.0, 2.0 * np.pi, n_samples)
    X = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return X + noise * rng.standard_normal(X.shape), y


def make_spirals(
    n_samples: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Two spirals, the second the first turned by half a turn (Playground's spiral)."""
    sizes = _class_sizes(n_samples, 2)
    y = _labels(sizes)
    r = np.concatenate([np.linspace(0.0, 1.0, s, endpoint=False) for s in sizes])
    theta = 1.75 * 2.0 * np.pi * r + np.pi * y
    X = r[:, None] * np.stack([np.sin(theta), np.cos(theta)], axis=1)
    return X + noise * rng.standard_normal(X.shape), y


def make_blobs(
    n_samples: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Three gaussian clusters on a circle of radius 2."""
    sizes = _class_sizes(n_samples, 3)
    angles = np.deg2rad([90.0, 210.0, 330.0])
    centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    X = np.repeat(centres, sizes, axis=0) + noise * rng.standard_normal((n_samples, 2))
    return X, _labels(sizes)


# name -> (generator, default n_samples, default noise, number of classes)
SYNTHETIC: dict[str, tuple[Generator, int, float, int]] = {
    "toy": (make_toy, 200, 0.1, 2),
    "xor": (make_xor, 500, 0.0, 2),
    "moons": (make_moons, 500, 0.1, 2),
    "circles": (make_circles, 500, 0.05, 2),
    "spirals": (make_spirals, 500, 0.02, 2),
    "blobs": (make_blobs, 600, 0.5, 3),
}
