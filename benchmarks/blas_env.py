"""The OpenBLAS override, for benchmark processes only.

Some machines set ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) in the environment, because
older OpenBLAS builds misbehaved on their processors. A current NumPy's OpenBLAS picks its
kernels itself; the override can force slower ones (``Haswell`` on an AVX-512 machine halves
the rate of every matrix product). OpenBLAS reads both variables once, when NumPy loads it, so
removing them from ``os.environ`` inside a running process does nothing: a benchmark must start
a process (or re-execute itself) with them removed.

Two modes, named in every result:

- ``"unset"``: both variables removed, OpenBLAS chooses;
- ``"override"``: the environment as found (only meaningful when it sets either variable).

Tests and CI never change these variables; only benchmark processes remove them, for
themselves and the processes they start. This module imports nothing but the standard
library, so a script can use it before NumPy is loaded.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

OVERRIDE_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
MODES = ("unset", "override")
# set in a process that this module re-executed: the override it found, as JSON
FOUND_VAR = "BACKPROP_BENCH_FOUND_OVERRIDE"


def found_override(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The override variables set in ``environ`` (default ``os.environ``), by name.

    In a process that :func:`reexec_unset` started, the values its parent found."""
    environ = os.environ if environ is None else environ
    if FOUND_VAR in environ:
        return dict(json.loads(environ[FOUND_VAR]))
    return {k: environ[k] for k in OVERRIDE_VARS if k in environ}


def env_for_mode(mode: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` for a process that runs in ``mode`` (``"unset"`` or
    ``"override"``); it carries the override found in ``environ`` under ``FOUND_VAR`` so the
    process can report it."""
    if mode not in MODES:
        raise ValueError(f"BLAS mode must be one of {MODES}; got {mode!r}")
    environ = dict(os.environ if environ is None else environ)
    found = found_override(environ)
    env = {k: v for k, v in environ.items() if k != FOUND_VAR}
    if mode == "unset":
        for k in OVERRIDE_VARS:
            env.pop(k, None)
    else:
        env.update(found)  # a parent that re-executed itself may have removed them
    env[FOUND_VAR] = json.dumps(found, sort_keys=True)
    return env


def reexec_unset() -> None:
    """Re-execute this process with the override removed, if the environment sets it.

    Call it where a benchmark script starts (its ``if __name__ == "__main__":`` block, so
    that calling its ``main`` from other code never restarts that code's process): the new
    process loads NumPy (and its OpenBLAS) with the variables gone. Returns normally when
    there is nothing to remove."""
    if not any(k in os.environ for k in OVERRIDE_VARS):
        return
    env = env_for_mode("unset")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def run_main(main: Callable[[], int]) -> NoReturn:
    """A benchmark script's ``if __name__ == "__main__":`` block: :func:`reexec_unset`, then
    exit with ``main()``'s status."""
    reexec_unset()  # a benchmark process: OpenBLAS without the override
    raise SystemExit(main())


def write_json(path: Path, result: dict[str, Any]) -> None:
    """``result`` as indented JSON at ``path``, with the kernel OpenBLAS chose in this
    process (``openblas_kernels``; :func:`run_main` unset the override variables)."""
    result["openblas_kernels"] = openblas_kernels()
    path.write_text(json.dumps(result, indent=2) + "\n")


def mode_of_this_process() -> str:
    """``"override"`` when either variable is set here, else ``"unset"``."""
    return "override" if any(k in os.environ for k in OVERRIDE_VARS) else "unset"


def openblas_kernels() -> list[dict[str, Any]]:
    """The kernel each loaded OpenBLAS chose (threadpoolctl's ``architecture``), with its
    library file; empty when threadpoolctl is absent or no OpenBLAS is loaded."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        {
            "architecture": lib.get("architecture"),
            "version": lib.get("version"),
            "library": os.path.basename(lib.get("filepath", "")),
        }
        for lib in threadpool_info()
        if lib.get("internal_api") == "openblas"
    ]
