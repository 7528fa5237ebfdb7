"""The CPU speed figures that docs/performance.md and the README publish are the recorded
run's (benchmarks/results/bench-summary.json, written by ``bench.py --summary``): a new
recorded run that moves them fails here until the pages say what it measured."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = json.loads((ROOT / "benchmarks/results/bench-summary.json").read_text())
PEERS = ("torch", "torch-compile", "sklearn", "jax")  # the page's column order
# the rows of each config, trained ("train ..., B=128") and inferred ("inference ..., B=128
# model"): (batch, network) -> config
TRAINED = {(128, "784-256-128-10"): "mlp-b128", (512, "784-256-128-10"): "mlp-b512",
           (10, "784-30-10"): "nielsen-b10"}  # fmt: skip


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _run(mode: str, threads: int) -> dict:
    (run,) = [r for r in SUMMARY["runs"] if (r["mode"], r["threads"]) == (mode, threads)]
    return run


def _table_rows() -> list[list[str]]:
    text = (ROOT / "docs/performance.md").read_text(encoding="utf-8")
    # the results table's rows ("| train 784-...", "| inference 784-..."), not the targets'
    rows = [ln for ln in text.splitlines() if re.match(r"\| (train|inference) \d+-", ln)]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in rows]


def _numbers(cell: str) -> list[float]:
    """'65,654 (1.34)' -> [65654, 1.34]; '-' -> []."""
    return [float(x.replace(",", "")) for x in re.findall(r"[\d,]+(?:\.\d+)?", cell)]


def _expected(entry: dict | None, key: str, ours: bool) -> list[float]:
    if entry is None:
        return []
    rate = round(entry[f"{key}_samples_per_s"])
    return [rate] if ours else [rate, entry[f"{key}_ours_over_this"]]


# the page prints ratios to 2 decimals from the run's full precision; the summary keeps 3
RATIO_TOL = 0.005 + 0.0005 + 1e-9


def test_every_run_of_the_summary_has_its_rows_in_the_page():
    rows = _table_rows()
    assert len(rows) == len(SUMMARY["runs"]) * 2 * len(TRAINED)


@pytest.mark.parametrize("row", _table_rows(), ids=lambda r: f"{r[0]} {r[1]} {r[2]}")
def test_a_row_of_the_page_is_the_recorded_run(row):
    what, mode, threads = row[0], row[1].split()[0], int(row[2])
    run = _run(mode, threads)
    kernels = "/".join(sorted(set(run["kernels"])))
    assert row[1] == f"{mode} ({kernels})"
    network, batch = what.split()[1], int(re.search(r"B=(\d+)", what).group(1))
    config, key = TRAINED[batch, network], "train" if what.startswith("train") else "infer"
    r = run["configs"][config]
    cells = [r["backprop"]] + [r.get(p) for p in PEERS]
    expected = [_expected(e, key, k == 0) for k, e in enumerate(cells)]
    if key == "train":
        expected += [
            [r["gemm_only_samples_per_s"]],
            [r["backprop"]["roofline_fraction"]],
            [r["gemm_only_spread"]],
        ]
    got = [_numbers(c) for c in row[3 : 3 + len(expected)]]
    assert [len(g) for g in got] == [len(e) for e in expected], row
    for g, e in zip(got, expected, strict=True):
        if g:
            assert g[0] == pytest.approx(e[0], abs=RATIO_TOL if g[0] < 100 else 0.5), row
        if len(g) == 2:
            assert g[1] == pytest.approx(e[1], abs=RATIO_TOL), row


def test_the_readme_speed_paragraph_is_the_recorded_run():
    readme = _flat((ROOT / "README.md").read_text(encoding="utf-8"))
    run = _run("unset", 2)["configs"]
    b512, nielsen = run["mlp-b512"], run["nielsen-b10"]
    ratio = {p: b512[p]["train_ours_over_this"] for p in PEERS}
    infer = sorted(
        e["infer_ours_over_this"]
        for c in run.values()
        for name, e in c.items()
        if name in PEERS and isinstance(e, dict)
    )
    below = [x for x in infer if x < 1.0]
    above = [x for x in infer if x >= 1.0]
    claims = [
        f"trains at {ratio['torch']:.2f}x PyTorch's CPU eager speed, "
        f"{ratio['torch-compile']:.2f}x `torch.compile`, {ratio['sklearn']:.2f}x scikit-learn's "
        f"`MLPClassifier` and {ratio['jax']:.2f}x a JAX `jit` step, at "
        f"{b512['backprop']['roofline_fraction']:.2f} of the speed its matrix products alone",
        f"trains {nielsen['torch']['train_ours_over_this']:.2f}x faster than PyTorch eager and "
        f"{nielsen['jax']['train_ours_over_this']:.2f}x faster than JAX",
        f"inference is {above[0]:.2f}-{above[-1]:.2f}x every peer",
    ]
    claims += [f"({x:.3f}x)" for x in below]  # each peer that was not slower, named
    for claim in claims:
        assert claim in readme, claim


# ----------------------------------------------------------------- reading CSV files
CSV_RUN = json.loads((ROOT / "benchmarks/results/csv-load.json").read_text())
#: the page's CSV table's columns after the file, as csv_load.py names the readers
CSV_READERS = (
    "backprop load_csv",
    "backprop read_csv_features",
    "backprop load_csv, row by row",
    "backprop read_csv_features, row by row",
    "pandas.read_csv",
    "numpy.loadtxt",
)


def _csv_rows() -> list[list[str]]:
    text = (ROOT / "docs/performance.md").read_text(encoding="utf-8")
    section = text.split("## Reading CSV files", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if re.match(r"\| (classification|regression), ", ln)]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in rows]


def test_the_csv_table_is_the_recorded_run():
    """docs/performance.md's CSV reading table is benchmarks/results/csv-load.json (written by
    ``csv_load.py --memory --json``): each file's medians to the millisecond and ratios to
    pandas.read_csv to 2 decimals, the row-by-row reader's in the same run."""
    rows = _csv_rows()
    assert [r[0].split(",")[0] for r in rows] == list(CSV_RUN["median_s"])
    for row in rows:
        kind = row[0].split(",")[0]
        assert row[0] == f"{kind}, {CSV_RUN['file_bytes'][kind] / 1e6:.1f} MB"
        for cell, reader in zip(row[1:], CSV_READERS, strict=True):
            seconds = CSV_RUN["median_s"][kind][reader]
            ratio = CSV_RUN["over_pandas_read_csv"][kind][reader]
            want = f"{seconds:.3f} s" + ("" if reader == "pandas.read_csv" else f" ({ratio:.2f}x)")
            assert cell == want, (kind, reader)


def test_the_csv_memory_figures_are_the_recorded_run():
    text = " ".join((ROOT / "docs/performance.md").read_text(encoding="utf-8").split())

    def mib(reader: str) -> str:
        files = CSV_RUN["memory"].values()
        peaks = sorted(e[reader]["tracemalloc_peak_bytes"] / 2**20 for e in files)
        lo, hi = f"{peaks[0]:.1f}", f"{peaks[-1]:.1f}"
        return f"{lo} MiB" if lo == hi else f"{lo}-{hi} MiB"

    said = (
        f"`read_csv_features` {mib('backprop read_csv_features')}, `load_dataset` "
        f"{mib('backprop load_csv')}, `pandas.read_csv` {mib('pandas.read_csv')}"
    )
    assert said in text
