"""Every public import path that worked before the layout change (issue 14) still works.

``tests/public_import_paths.txt`` was enumerated from the code before any module moved:
each module path, and ``module:name`` for every public name it defined or listed in
``__all__``, and every name the tests, benchmarks, scripts and docs import. Moved modules
are kept at their old paths as aliases of the new ones (the same module object, so that a
test's ``monkeypatch`` of the old path reaches the code that runs).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINES = [
    line.strip()
    for line in (ROOT / "tests" / "public_import_paths.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


@pytest.mark.parametrize("path", LINES)
def test_public_import_path_resolves(path):
    module, _, name = path.partition(":")
    mod = importlib.import_module(module)
    if name:
        assert hasattr(mod, name), f"{module} no longer has {name}"


def test_console_script_entry_point_resolves():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["backprop"].partition(":")
    assert callable(getattr(importlib.import_module(module), name))
