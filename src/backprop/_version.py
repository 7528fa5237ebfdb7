"""The package version, in a module of its own so that any module can read it without
importing the package's public surface (``backprop/__init__.py``), and pyproject.toml reads
it from here; and how an extra of it is installed, which every "needs ..." message names."""

from __future__ import annotations

import re
import shlex

__version__ = "0.1.0"

#: The distribution's name (pip's): ``backprop`` on PyPI is another project.
DISTRIBUTION = "backprop-mlp"


def pip_extra(name: str) -> str:
    """The command that installs the extra ``name``: its requirements, as the installed
    package's metadata lists them (``pip install 'onnx>=1.15' 'onnxruntime>=1.19'``: a wheel
    leaves no folder to install ``.[onnx]`` from, and this distribution is not on PyPI), or,
    where there is no such metadata (the source tree on ``sys.path``), the extra from
    backprop's own folder."""
    from importlib import metadata

    try:
        requires = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        requires = []
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(name)}["']""")
    wanted = [r.split(";")[0].strip() for r in requires if ";" in r and marker.search(r)]
    if not wanted:
        return f"pip install '.[{name}]' in backprop's folder"
    return "pip install " + " ".join(shlex.quote(r) for r in wanted)
