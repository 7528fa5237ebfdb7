"""The package version, in a module of its own so that any module can read it without
importing the package's public surface (``backprop/__init__.py``); and how an extra of it is
installed, which every "needs ..." message names."""

__version__ = "0.1.0"


def pip_extra(name: str) -> str:
    """The command that installs the extra ``name``: from backprop's own folder, since the
    name ``backprop`` on PyPI is another project (its ``backprop[onnx]`` would fetch that
    one, with PyTorch and transformers, and no onnx)."""
    return f"pip install '.[{name}]' in backprop's folder"
