"""Old import paths of the modules that moved into packages, kept working.

``import backprop.checkpoint`` gives the module ``backprop.io.checkpoint`` itself: one
object under two names, so that code (and a test's ``monkeypatch``) using the old path
reaches the code that runs. :data:`MOVED` is the whole list; nothing inside the package
imports an old path. ``backprop/__init__.py`` installs the finder that resolves them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

__all__ = ["MOVED", "install"]

#: Old module path -> the module it names now.
MOVED: dict[str, str] = {
    "backprop.checkpoint": "backprop.io.checkpoint",
    "backprop.cuda_graph": "backprop.training.cuda_graph",
    "backprop.distributed": "backprop.training.distributed",
    "backprop.explain": "backprop.cli.commands.explain",
    "backprop.interop": "backprop.io.torch_state",
    "backprop.onnx_export": "backprop.io.onnx_export",
    "backprop.plots": "backprop.cli.plots",
}


class _MovedModuleLoader(importlib.abc.Loader):
    """Loads an old path as the module at its new path (importing that first, if need be)."""

    def __init__(self, new: str) -> None:
        self.new = new
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.new)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system has just given the module the old path's spec; it keeps its own
        module.__spec__ = self._spec


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old paths in :data:`MOVED` (consulted after the ordinary finders)."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedModuleLoader(new))


def install() -> None:
    """Resolve the old paths from now on (once per process)."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
