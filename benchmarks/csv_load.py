"""How fast backprop reads a large numeric CSV file, beside pandas and NumPy on the same files.

Two generated files (``--rows`` rows, default 200,000; ``--cols`` float columns, default 20,
each value written as Python's ``repr``, the shortest text that reads back to the same float,
as ``pandas.DataFrame.to_csv`` writes it):

- ``classification``: the float columns and an integer class label ``0..2`` (column ``label``);
- ``regression``: the float columns and a float target (column ``target``).

Each file is read by

- ``backprop load_csv``: ``backprop.datasets.load_dataset(path, target=...)``, what
  ``backprop train --dataset FILE.csv --target COL`` runs: read, split, standardise;
- ``backprop read_csv_features``: ``read_csv_features(path, raw=True)``, every column as a
  float64 array (what ``backprop predict`` reads, before any scaling);
- the same two, ``row by row``: with the block reader (``tabular._read_fast``) turned off, so
  that every file is read as a file the block reader declines is (``csv.reader``, then
  ``float()`` on each cell): what the block reader saves, measured in the same run;
- ``pandas.read_csv``: its defaults (its own C tokenizer and float parser), to a DataFrame;
- ``numpy.loadtxt``: ``delimiter=","``, ``skiprows=1``.

The readers take turns within each repeat (outside load falls on all alike), and each
file's medians and the ratios to ``pandas.read_csv`` are taken from the same run. ``--memory``
adds the peak memory of one read in a fresh process per reader and file: the peak resident
set (``VmHWM``) above the process's own after its imports, and ``tracemalloc``'s peak
(Python and NumPy allocations; measured in a second fresh process, as it slows allocation).

Run: ``python benchmarks/csv_load.py [--rows N] [--repeats R] [--memory] [--json OUT]
[--smoke]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import blas_env  # noqa: E402

TARGETS = {"classification": "label", "regression": "target"}


def write_files(folder: Path, rows: int, cols: int, seed: int = 0) -> dict[str, Path]:
    """The two numeric CSV files, written as ``repr`` of float64 values (see the module
    docstring): name -> path."""
    import numpy as np

    rng = np.random.default_rng(seed)
    names = [f"x{j}" for j in range(cols)]
    paths = {}
    for kind, target in TARGETS.items():
        X = rng.normal(size=(rows, cols))
        if kind == "classification":
            y = [str(c) for c in rng.integers(0, 3, rows).tolist()]
        else:
            y = [repr(v) for v in (X @ rng.normal(size=cols) + rng.normal(size=rows)).tolist()]
        path = folder / f"{kind}.csv"
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(",".join([*names, target]) + "\n")
            for row, label in zip(X.tolist(), y, strict=True):
                f.write(",".join(map(repr, row)) + "," + label + "\n")
        paths[kind] = path
    return paths


def readers(pandas_available: bool) -> dict[str, Callable[[Path, str], object]]:
    """name -> a function that reads ``(path, target column)``."""
    import numpy as np

    from backprop.datasets import load_dataset, read_csv_features, tabular

    def row_by_row(read: Callable[[Path, str], object]) -> Callable[[Path, str], object]:
        def run(p: Path, target: str) -> object:
            fast = tabular._read_fast
            tabular._read_fast = lambda *args: None  # (what it returns for a file it declines)
            try:
                return read(p, target)
            finally:
                tabular._read_fast = fast

        return run

    def load(p: Path, target: str) -> object:
        return load_dataset(p, target=target)

    def features(p: Path, target: str) -> object:
        return read_csv_features(p, raw=True)

    found: dict[str, Callable[[Path, str], object]] = {
        "backprop load_csv": load,
        "backprop read_csv_features": features,
        "backprop load_csv, row by row": row_by_row(load),
        "backprop read_csv_features, row by row": row_by_row(features),
    }
    if pandas_available:
        import pandas as pd

        found["pandas.read_csv"] = lambda p, target: pd.read_csv(p)
    found["numpy.loadtxt"] = lambda p, target: np.loadtxt(p, delimiter=",", skiprows=1)
    return found


def timed(paths: dict[str, Path], repeats: int, pandas_available: bool) -> dict[str, Any]:
    """Seconds of every reader on every file, one read of each per repeat in turn, after one
    untimed read of each (the files in the page cache, the code paths warm)."""
    funcs = readers(pandas_available)
    seconds: dict[str, dict[str, list[float]]] = {f: {r: [] for r in funcs} for f in paths}
    for kind, path in paths.items():
        for fn in funcs.values():
            fn(path, TARGETS[kind])
    for _ in range(repeats):
        for kind, path in paths.items():
            for name, fn in funcs.items():
                t0 = time.perf_counter()
                fn(path, TARGETS[kind])
                seconds[kind][name].append(time.perf_counter() - t0)
    medians = {
        kind: {name: statistics.median(s) for name, s in per.items()}
        for kind, per in seconds.items()
    }
    over_pandas = {
        kind: {name: m / per["pandas.read_csv"] for name, m in per.items()}
        for kind, per in medians.items()
        if "pandas.read_csv" in per
    }
    return {"seconds": seconds, "median_s": medians, "over_pandas_read_csv": over_pandas}


#: What one memory probe runs in its fresh process: read the file once, print the peak.
_PROBE = """
import json, sys, tracemalloc
from pathlib import Path
sys.path.insert(0, {here!r})
import csv_load
fn = csv_load.readers({pandas!r})[{name!r}]
path, target, traced = Path({path!r}), {target!r}, {traced!r}
def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None
if traced:
    tracemalloc.start()
before = status("VmHWM")
fn(path, target)
peak = status("VmHWM")
out = {{"tracemalloc_peak_bytes": tracemalloc.get_traced_memory()[1]}} if traced else {{
    "rss_peak_bytes": peak, "rss_peak_over_imports_bytes": None if peak is None else peak - before
}}
print(json.dumps(out))
"""


def memory(paths: dict[str, Path], names: list[str], pandas_available: bool) -> dict[str, Any]:
    """Peak memory of one read per reader and file, each in fresh processes (see the module
    docstring)."""
    out: dict[str, Any] = {}
    for kind, path in paths.items():
        for name in names:
            entry: dict[str, Any] = {}
            for traced in (False, True):
                code = _PROBE.format(
                    here=str(Path(__file__).resolve().parent), pandas=pandas_available,
                    name=name, path=str(path), target=TARGETS[kind], traced=traced,
                )  # fmt: skip
                proc = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=True
                )
                entry.update(json.loads(proc.stdout))
            out.setdefault(kind, {})[name] = entry
    return out


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--cols", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--memory", action="store_true", help="also the peak memory of one read")
    p.add_argument("--smoke", action="store_true", help="2,000 rows, 1 repeat")
    p.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = p.parse_args(argv)
    rows, repeats = (2_000, 1) if args.smoke else (args.rows, args.repeats)
    try:
        import pandas

        pandas_available = True
    except ImportError:
        print("pandas is not installed: its readers are left out", file=sys.stderr)
        pandas_available = False
    import bench  # (numpy and backprop: after the override is gone from this process)

    machine = bench.machine_info()  # (its date and loadavg_start: the run's start)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(Path(tmp), rows, args.cols)
        result: dict[str, Any] = {
            "rows": rows,
            "cols": args.cols,
            "repeats": repeats,
            "file_bytes": {kind: path.stat().st_size for kind, path in paths.items()},
            **timed(paths, repeats, pandas_available),
        }
        if args.memory:
            names = ["backprop load_csv", "backprop read_csv_features"]
            names += ["pandas.read_csv"] if pandas_available else []
            result["memory"] = memory(paths, names, pandas_available)
    result["machine"] = {**machine, "loadavg_end": bench._loadavg()}
    if pandas_available:
        result["machine"]["pandas"] = pandas.__version__
    print(f"{rows:,} rows x {args.cols} float columns + a target, medians of {repeats} "
          "interleaved repeats:")  # fmt: skip
    for kind, per in result["median_s"].items():
        print(f"  {kind} ({result['file_bytes'][kind] / 1e6:.1f} MB):")
        for name, s in per.items():
            ratio = result["over_pandas_read_csv"].get(kind, {}).get(name)
            vs = "" if ratio is None else f"  {ratio:5.2f}x pandas.read_csv"
            print(f"    {name:<40} {s:8.3f} s{vs}")
    for kind, per in result.get("memory", {}).items():
        print(f"  peak memory of one read, {kind}:")
        for name, m in per.items():
            print(f"    {name:<40} RSS +{_mib(m['rss_peak_over_imports_bytes'])} over its "
                  f"imports, tracemalloc {_mib(m['tracemalloc_peak_bytes'])}")  # fmt: skip
    if args.json:
        blas_env.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    blas_env.run_main(main)
