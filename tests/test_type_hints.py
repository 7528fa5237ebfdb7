"""Every public callable of backprop is fully annotated (the project's rule: type hints on
public APIs).

The public surface is the ``__all__`` of ``backprop`` and of every public module: those
named in ``tests/public_import_paths.txt`` and every module of the package whose dotted
path has no part starting with ``_``. From each ``__all__`` the test takes the functions
and classes *defined in backprop's own source* (re-exports of third-party objects, such as
``numpy.random.Generator``, are not ours to annotate) and, for each class, every public
method (a name not starting with ``_``), plus ``__init__`` and ``__call__``, defined in a
class of backprop's own source along its MRO (so a method inherited from a private base is
checked too; one inherited from ``object``, ``Exception`` or another library is not).
Methods that a decorator generates (a dataclass's ``__init__``, a ``NamedTuple``'s
``__new__``) have no backprop source file and are skipped. Properties are checked through
their getter; static and class methods through the function they wrap.

For each such callable, :func:`inspect.signature` must show an annotation on every
parameter except ``self``/``cls`` (the first parameter of a method), ``*args`` and
``**kwargs``, and a return annotation. ``__init__`` is no exception: it must say
``-> None`` too, so that the rule has one form everywhere.

Every offender is listed in the one assertion message, so one run shows the whole job.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Any

import backprop

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(backprop.__file__).resolve().parent

#: Dunder methods that are part of a class's public interface and so are checked.
CHECKED_DUNDERS = ("__init__", "__call__")


def public_module_names() -> list[str]:
    """The module paths of tests/public_import_paths.txt and every public module of the
    package (no dotted part starting with ``_``), without repeats, in a stable order."""
    names: list[str] = []
    for line in (ROOT / "tests" / "public_import_paths.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line.partition(":")[0])
    for info in pkgutil.walk_packages(backprop.__path__, prefix="backprop."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return list(dict.fromkeys(names))


def public_modules() -> list[ModuleType]:
    """Each public module imported once (the old paths of moved modules are the same
    module object as the new ones)."""
    modules: dict[int, ModuleType] = {}
    for name in public_module_names():
        try:
            module = importlib.import_module(name)
        except ImportError as e:  # an optional extra that is not installed here
            if (e.name or "backprop").split(".")[0] == "backprop":
                raise
            continue
        modules.setdefault(id(module), module)
    return list(modules.values())


def in_backprop_source(obj: Any) -> bool:
    """Whether ``obj`` (a function or class) was written in one of backprop's source files."""
    try:
        source = inspect.getsourcefile(obj)
    except TypeError:  # a builtin
        return False
    if source is None:
        return False
    return Path(source).resolve().is_relative_to(PACKAGE_DIR)


def unwrap_member(member: Any) -> Any | None:
    """The plain function behind a class attribute, or None where it is not a method."""
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    if isinstance(member, property):
        return member.fget
    if inspect.isfunction(member):
        return member
    return None


def missing_annotations(fn: Any, *, is_method: bool) -> list[str]:
    """What ``fn``'s signature leaves unannotated: parameter names and ``return``."""
    signature = inspect.signature(fn, follow_wrapped=False)
    missing = []
    for i, parameter in enumerate(signature.parameters.values()):
        if is_method and i == 0:
            continue  # self / cls
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.annotation is inspect.Parameter.empty:
            missing.append(parameter.name)
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def public_callables() -> dict[str, tuple[Any, bool]]:
    """``qualified name -> (function, is_method)`` for every callable the rule covers."""
    found: dict[str, tuple[Any, bool]] = {}
    seen: set[int] = set()

    def add(name: str, fn: Any, is_method: bool) -> None:
        if id(fn) in seen or not in_backprop_source(fn):
            return
        seen.add(id(fn))
        found[name] = (fn, is_method)

    for module in public_modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                add(f"{obj.__module__}.{obj.__qualname__}", obj, is_method=False)
            elif inspect.isclass(obj) and in_backprop_source(obj):
                for klass in obj.__mro__:
                    if not in_backprop_source(klass):
                        continue
                    for attr, member in vars(klass).items():
                        if attr.startswith("_") and attr not in CHECKED_DUNDERS:
                            continue
                        fn = unwrap_member(member)
                        if fn is not None:
                            is_method = not isinstance(member, staticmethod)
                            name = f"{klass.__module__}.{klass.__qualname__}.{attr}"
                            add(name, fn, is_method=is_method)
    return found


def test_the_walk_finds_the_public_api() -> None:
    """The walk reaches what the audit named (so an empty offender list means something)."""
    names = public_callables()
    for expected in (
        "backprop.network.MLP.fit",
        "backprop.training.single_process.run_epoch",
        "backprop.optimizers.Adam.hyperparameters",
        "backprop.backend._numpy.NumpyBackend.relu_",
        "backprop.losses.CrossEntropyLoss.value_and_grad",
    ):
        assert expected in names, f"{expected} not among the {len(names)} callables walked"


def test_every_public_callable_is_fully_annotated() -> None:
    offenders = []
    for qualname, (fn, is_method) in sorted(public_callables().items()):
        missing = missing_annotations(fn, is_method=is_method)
        if missing:
            offenders.append(f"{qualname}: {', '.join(missing)}")
    assert not offenders, (
        f"{len(offenders)} public callables lack annotations "
        "(parameter names, or 'return' for a missing return type):\n" + "\n".join(offenders)
    )
