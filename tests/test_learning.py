"""End to end: the networks learn. The seed's 2-3-2 network learns XOR; a deeper one learns
two spirals; the example in docs/engine.md runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from backprop import MLP

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_T = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])  # one output per class


def test_seed_network_learns_xor():
    # the seed's network exactly: 2-3-2, sigmoid, L2 loss, plain gradient descent
    net = MLP([2, 3, 2], "sigmoid", "sigmoid", "l2", init_scale=1.0, seed=0)
    assert net.n_parameters == 2 * 3 + 3 + 3 * 2 + 2
    before = net.loss(XOR_X, XOR_T)
    history = net.fit(XOR_X, XOR_T, optimizer="sgd", lr=5.0, epochs=3000, batch_size=4, seed=0)
    assert history["accuracy"][-1] == 1.0
    np.testing.assert_array_equal(net.predict_classes(XOR_X), [0, 1, 1, 0])
    after = net.loss(XOR_X, XOR_T)
    assert after < 0.01 < before
    # the outputs are close to the targets, not merely on the right side of 0.5
    assert np.abs(net.predict(XOR_X) - XOR_T).max() < 0.2


def test_xor_is_not_learned_without_the_hidden_layer():
    # the control: a network without a hidden layer cannot separate XOR, so the test above
    # measures the hidden layer's work rather than something trivially satisfied
    net = MLP([2, 2], "sigmoid", "sigmoid", "l2", init_scale=1.0, seed=0)
    net.fit(XOR_X, XOR_T, optimizer="sgd", lr=5.0, epochs=3000, batch_size=4, seed=0)
    assert (net.predict_classes(XOR_X) == [0, 1, 1, 0]).mean() < 1.0


def two_spirals(n: int = 200, turns: float = 1.5, noise: float = 0.02, seed: int = 0):
    """Two interleaved spirals: ``(2n, 2)`` float64 points and ``(2n,)`` int labels."""
    rng = np.random.default_rng(seed)
    angle = np.sqrt(rng.uniform(0, 1, n)) * turns * 2 * np.pi
    radius = angle / (turns * 2 * np.pi)
    arm = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    X = np.concatenate([arm, -arm]) + rng.normal(0, noise, (2 * n, 2))
    return X, np.repeat([0, 1], n)


def test_deeper_network_learns_two_spirals():
    X, y = two_spirals()
    net = MLP([2, 32, 32, 2], "relu", "identity", "cross_entropy", init="xavier_normal", seed=0)
    history = net.fit(X, y, optimizer="adam", lr=0.01, epochs=300, batch_size=32, seed=0)
    accuracy = float((net.predict_classes(X) == y).mean())
    assert accuracy >= 0.98
    assert history["accuracy"][0] < 0.9  # it had to learn it
    # a linear model cannot: the spirals need the hidden layers
    linear = MLP([2, 2], "identity", "identity", "cross_entropy", seed=0)
    linear.fit(X, y, optimizer="adam", lr=0.01, epochs=50, batch_size=32, seed=0)
    assert (linear.predict_classes(X) == y).mean() < 0.8


def test_docs_engine_example_runs():
    doc = Path(__file__).resolve().parents[1] / "docs" / "engine.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "docs/engine.md must hold a runnable python example"
    for code in blocks:
        exec(compile(code, str(doc), "exec"), {"__name__": "docs_example"})  # our own doc
