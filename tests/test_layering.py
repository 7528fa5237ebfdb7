"""The package's layers: the engine at the top level, each folder a subsystem built on it.

Every import in ``src/backprop`` is parsed, function-level ones included (a cycle dodged
with a function-level import is still a cycle). Importing ``backprop.io.checkpoint`` runs
``backprop/io/__init__.py`` first, so an import also depends on the target's packages
(all but the root ``backprop``, the public surface, which Python runs before anything).

Rules:

* every module belongs to a layer of :data:`LAYERS`; a module imports only from its own
  layer or the layers below (listed earlier);
* the one exception is :data:`ALLOWED_UPWARD`: ``MLP.fit`` hands the model to
  ``training.fit`` (a function-level import inside ``fit``);
* with that edge left out, the import graph has no cycle at all (inside a layer, inside a
  package, anywhere);
* nothing inside the package imports the root package or an old module path;
* the engine (the foundation and engine layers) imports NumPy and the standard library
  alone.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "backprop"

#: The layers, lowest first: (name, the top-level modules and packages in it).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "_version",
            "_registry",
            "_validation",
            "_limits",
            "_interrupts",
            "_moved",
            "reference",
            "formatting",
        ),
    ),
    ("array backends", ("backend",)),
    (
        "engine",
        (
            "activations",
            "losses",
            "initializers",
            "layers",
            "network",
            "optimizers",
            "gradcheck",
            "metrics",
            "preprocessing",
            "trace",
            "tutorial",
        ),
    ),
    ("data sets", ("datasets",)),
    ("training", ("training",)),
    ("files", ("io",)),
    ("front ends", ("sklearn", "playground", "cli")),
    ("public surface", ("", "__main__")),  # "": the root package, backprop/__init__.py
]
RANK = {unit: rank for rank, (_, units) in enumerate(LAYERS) for unit in units}

#: The one import that points up: MLP.fit delegating to training.fit.
ALLOWED_UPWARD = ("backprop.network", "backprop.training")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _unit(module: str) -> str:
    """The layer unit of a module: ``backprop.io.checkpoint`` -> ``io``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _imports(module: str) -> list[tuple[str, int, str]]:
    """``(imported module, line, enclosing function or "")`` for every backprop import."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if _is_package(module) else module.rpartition(".")[0]
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else ""
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "backprop":
                        found.append((alias.name, child.lineno, function))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - child.level + 1])
                    base = f"{base}.{child.module}" if child.module else base
                else:
                    base = child.module or ""
                if base.split(".")[0] != "backprop":
                    continue
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    found.append((sub if sub in MODULES else base, child.lineno, function))
            visit(child, inner or function)

    visit(tree, "")
    return found


def _third_party(module: str) -> set[str]:
    """The top-level names of the non-backprop, non-standard-library modules imported."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "backprop"}


def _edges() -> dict[str, set[str]]:
    """Module -> the modules importing it runs: the targets and their packages."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _, _ in _imports(module):
            if target not in MODULES:
                continue  # reported by test_every_import_names_a_module
            graph[module].add(target)
            parts = target.split(".")
            for k in range(2, len(parts)):
                parent = ".".join(parts[:k])
                if not module.startswith(parent + ".") and module != parent:
                    graph[module].add(parent)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), and
    self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                out.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(10_000, limit))
    try:
        for v in sorted(graph):
            if v not in index:
                connect(v)
    finally:  # (left raised, it let test_io's 9,000-deep JSON parse when run after this)
        sys.setrecursionlimit(limit)
    return out


def test_every_module_has_a_layer():
    missing = sorted({_unit(m) for m in MODULES} - set(RANK))
    assert not missing, f"place these in LAYERS: {missing}"


def test_every_import_names_a_module():
    """No import of a module that does not exist: an old path (backprop/_moved.py), a typo,
    or the root package for a name such as ``__version__``."""
    bad = [
        f"{m}:{line} imports {target}"
        for m in MODULES
        for target, line, _ in _imports(m)
        if target not in MODULES or target == "backprop"
    ]
    assert not bad, "\n".join(bad)


def test_scripts_and_benchmarks_import_modules_that_exist():
    """The scripts and benchmarks sit on the package too: an old path there (gpu_check.py
    imported ``backprop.cuda_graph``, which only _moved.py's alias kept working) or a typo
    is caught here, as inside the package."""
    bad = []
    for path in sorted([*(ROOT / "scripts").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                base = node.module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                           for a in node.names]  # fmt: skip
            else:
                continue
            bad += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {t}"
                for t in targets
                if t.split(".")[0] == "backprop" and t not in MODULES
            ]
    assert not bad, "\n".join(bad)


def test_imports_point_down_only():
    upward = []
    for module in MODULES:
        for target, line, function in _imports(module):
            if target not in MODULES:
                continue
            if RANK[_unit(module)] < RANK[_unit(target)]:
                upward.append((module, target, line, function))
    assert [(m, t) for m, t, _, _ in upward] == [ALLOWED_UPWARD], upward
    (_, _, _, function) = upward[0]
    assert function == "fit", "the one upward import is MLP.fit's, inside the method"


def test_no_import_cycles():
    graph = _edges()
    graph[ALLOWED_UPWARD[0]].discard(ALLOWED_UPWARD[1])
    cycles = _cycles(graph)
    print(f"import cycles: {len(cycles)}")  # the number the layout issue asks for
    assert cycles == [], cycles


def test_the_cycle_finder_finds_cycles():
    """The check can fail: a graph with a two-module and a three-module cycle."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(_cycles(graph)) == [["a", "b"], ["c", "d", "e"]]


@pytest.mark.parametrize("layer", ["foundation", "engine"])
def test_the_engine_imports_numpy_alone(layer):
    units = dict(LAYERS)[layer]
    extra = {
        m: _third_party(m) - {"numpy"} for m in MODULES if _unit(m) in units and _third_party(m)
    }
    assert not {m: e for m, e in extra.items() if e}, extra


def test_old_paths_name_the_moved_modules():
    from backprop._moved import MOVED

    for old, new in MOVED.items():
        assert old not in MODULES and new in MODULES, (old, new)
        assert importlib.import_module(old) is importlib.import_module(new)
        assert importlib.import_module(old).__spec__.name == new


def test_contributing_lists_every_module_in_its_layer():
    # CONTRIBUTING.md's table had left out formatting, trace, tutorial and playground
    text = (SRC.parent / "CONTRIBUTING.md").read_text(encoding="utf-8")
    for layer, units in LAYERS:
        (row,) = [line for line in text.splitlines() if line.startswith(f"| {layer} |")]
        cell = row.split(" | ")[1]
        listed = {
            name.removesuffix(".py").removesuffix("/") for name in re.findall(r"`([^`]+)`", cell)
        }
        expected = {u for u in units if u} | ({"__init__"} if "" in units else set())
        assert listed == expected, (layer, listed ^ expected)
