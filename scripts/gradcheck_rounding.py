"""Measure how far correct gradients sit from their central differences, in units of the
estimates' float64 rounding ``u |L| / eps`` (``backprop.gradcheck.ROUNDING`` is set from this).

Usage::

    python scripts/gradcheck_rounding.py              # 120 random networks (docs/engine.md)
    python scripts/gradcheck_rounding.py --trials 20  # a quick look

Each trial draws a network (every hidden activation and loss in turn, 1-2 hidden layers of
1-11 units, 1-5 inputs, 1-4 outputs, zero or uniform biases), 1 to 1000 rows of normal
inputs and targets that suit the loss, and compares backprop's gradient with
``gradcheck.finite_differences`` entry by entry, leaving out entries on a kink. It prints the
number of parameter arrays, the median, 90th and 99th percentile and the largest deviation
of an array, in those units. The same draws give the same numbers on any machine whose BLAS
rounds the same way; tests/test_numerics.py runs the first trials and holds the largest
below half of ``ROUNDING``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import numpy as np

from backprop import MLP, gradcheck
from backprop.gradcheck import ROUNDING

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus")
LOSSES = (
    ("l2", "sigmoid"),
    ("mse", "identity"),
    ("cross_entropy", "identity"),
    ("binary_cross_entropy", "identity"),
    ("huber", "identity"),
    ("mae", "identity"),
)


def rounding_units(trials: int, seed: int = 1) -> Iterator[float]:
    """Per parameter array of each trial: its largest deviation in units of u |L| / eps
    (``GradCheckResult.rounding`` is ``ROUNDING`` such units, of the array's smallest step)."""
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        activation = ACTIVATIONS[trial % len(ACTIVATIONS)]
        loss, output = LOSSES[trial % len(LOSSES)]
        n_in, n_out = int(rng.integers(1, 6)), int(rng.integers(1, 5))
        if loss == "cross_entropy":
            n_out = max(n_out, 2)
        hidden = [int(h) for h in rng.integers(1, 12, size=rng.integers(1, 3))]
        n = int(rng.choice([1, 8, 64, 300, 1000]))
        bias_init = "uniform" if trial % 2 else "zeros"
        net = MLP([n_in, *hidden, n_out], activation, output, loss, seed=trial, bias_init=bias_init)
        X = rng.normal(size=(n, n_in))
        if loss == "cross_entropy":
            T = np.eye(n_out)[rng.integers(0, n_out, n)]
        elif loss == "binary_cross_entropy":
            T = rng.integers(0, 2, (n, n_out)).astype(np.float64)
        else:
            T = rng.normal(size=(n, n_out))
        for r in gradcheck(net, X, T):
            if r.rounding > 0:  # an array with entries away from kinks
                yield r.max_abs_error / (r.rounding / ROUNDING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=120)
    args = parser.parse_args()
    units = np.array(list(rounding_units(args.trials)))
    p50, p90, p99 = np.percentile(units, [50, 90, 99])
    print(
        f"{units.size} arrays of {args.trials} networks: median {p50:.2f}, 90% {p90:.2f}, "
        f"99% {p99:.2f}, largest {units.max():.2f} units of u |L| / eps"
    )


if __name__ == "__main__":
    main()
