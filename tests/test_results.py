"""docs/results.md cannot go stale: every row's fingerprint is recomputed here.

A row's fingerprint (``scripts/reproduce.py:fingerprint``) is the mean training loss of the
first steps of its seed-0 run (10 significant digits) and the SHA-256 prefix of the
parameters after them: the setup's data, model, optimizer and ``fit`` loop, BLAS on one
thread. Any change to the engine's numerics, down to one rounding, changes the hash, and
this test fails until the table is regenerated on the new engine (``python
scripts/reproduce.py all``; ``--fingerprints`` rewrites only the fingerprints, for a change
known not to move the results).

The hash is exact on the CPU model the table was measured on (its ``machine`` column);
another CPU's BLAS kernels may round differently, so there only the loss is compared (to
1e-6 relative), which still catches any change of substance. Rows on MNIST need the files
(``BACKPROP_DATA``), as the other MNIST tests do.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results.md"


def _reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "scripts" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["reproduce"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


reproduce = _reproduce()


def _rows() -> list[list[str]]:
    text = RESULTS.read_text(encoding="utf-8")
    table = text.split(reproduce.START, 1)[1].split(reproduce.END, 1)[0]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in table.strip().splitlines()]
    return rows[2:]  # past the header and its rule


ROWS = _rows()


def test_every_setup_has_a_row_of_five_seeds():
    keys = {row[0] for row in ROWS}
    for name, setup in reproduce.SETUPS.items():
        assert f"{name} x5" in keys, f"docs/results.md has no 5-seed row of {name}"
        if setup.biases != "zeros":
            assert f"{name} x5 zero-biases" in keys


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_the_fingerprint_is_this_engines(row):
    setup, zero_biases = reproduce.parse_key(row[0])
    if setup.name in ("nielsen1", "nielsen3", "modern") and not os.environ.get("BACKPROP_DATA"):
        pytest.skip("the MNIST files are found through BACKPROP_DATA, which is not set here")
    if setup.name == "mnist1d":
        pytest.importorskip("mnist1d")
    if setup.name == "digits":
        pytest.importorskip("sklearn")
    _assert_same_fingerprint(row, reproduce.fingerprint(setup, zero_biases))


def _assert_same_fingerprint(row: list[str], now: str) -> None:
    """``now`` is ``row``'s fingerprint: the loss to 1e-6, every bit on the row's CPU."""
    recorded = row[6].strip("`")
    setup = row[0].split()[0]  # "digits x5" -> digits
    regenerate = (
        f"docs/results.md's {row[0]} row was measured on another engine (fingerprint "
        f"{recorded}, now {now}): run `python scripts/reproduce.py {setup}` to regenerate it"
    )
    loss, digest = recorded.split()
    loss_now, digest_now = now.split()
    assert float(loss_now) == pytest.approx(float(loss), rel=1e-6), regenerate
    cpu = reproduce.machine().split(",")[0]
    if row[-1].split(",")[0] == cpu:  # the CPU it was measured on: every bit
        assert digest_now == digest, regenerate
    assert re.fullmatch(r"[0-9a-f]{10}", digest)


def test_the_script_runs_and_writes_its_row(tmp_path):
    """The command line: one seed of digits for one epoch, its row written into a copy."""
    pytest.importorskip("sklearn")
    copy = tmp_path / "results.md"
    copy.write_text(RESULTS.read_text(encoding="utf-8"), encoding="utf-8")
    rc = reproduce.main(["digits", "--seeds", "1", "--epochs", "1", "--results", str(copy)])
    assert rc == 1  # one epoch does not reach 97%: the script says the target was missed
    table = copy.read_text().split(reproduce.START, 1)[1]
    row = next(r for r in table.splitlines() if r.startswith("| digits |"))
    assert "digits --epochs 1 --seeds 1`" in row and "**no**" in row
    digits = next(r for r in ROWS if r[0] == "digits x5")
    written = row.split("|")[7].strip().strip("`")
    _assert_same_fingerprint(digits, written)  # seed 0's first steps, as recorded
