"""Fixtures the test files share: the command line run in-process, parameters compared bit
for bit, and deviations measured against a reference.

Each fixture is a function (``run_cli("train", ...)``, ``same_params(a, b)``,
``rel_diff(a, b)``) so that a test asks for it by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from backprop.cli import main


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str, str]]:
    """``run_cli("train", "--no-plots") -> (exit status, stdout, stderr)``: the command line
    run in this process, its output captured from a clean start."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(list(args))
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    return run


@pytest.fixture
def wrong_bias_gradients(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """``wrong_bias_gradients(1.001)``: from then on in the test, every dense layer's bias
    gradient is that factor times what it should be (a bug for gradcheck to catch)."""
    from backprop.layers import Dense

    right = Dense.backward

    def make(factor: float) -> None:
        def wrong(self: Dense, g: Any, need_input_grad: bool = True) -> Any:
            dx = right(self, g, need_input_grad)
            self.grad_b *= factor
            return dx

        monkeypatch.setattr(Dense, "backward", wrong)

    return make


def _parameters(x: Any) -> dict[str, np.ndarray]:
    return x.state_dict() if hasattr(x, "state_dict") else x


@pytest.fixture
def same_params() -> Callable[[Any, Any], bool]:
    """``same_params(a, b)``: two models (or state dicts) hold the same parameters under the
    same names, bit for bit."""

    def same(a: Any, b: Any) -> bool:
        pa, pb = _parameters(a), _parameters(b)
        return pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)

    return same


def _rel_diff(a: Any, b: Any) -> float:
    if isinstance(b, dict):
        assert set(a) == set(b), (sorted(a), sorted(b))
        return max(_rel_diff(a[k], b[k]) for k in b)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


@pytest.fixture
def rel_diff() -> Callable[[Any, Any], float]:
    """``rel_diff(a, b)``: the largest ``|a - b|`` relative to the reference ``b``'s largest
    entry; for dicts of arrays (the same names), the largest over the arrays."""
    return _rel_diff
