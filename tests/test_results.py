"""docs/results.md cannot go stale: every row's fingerprint is recomputed here.

A row's fingerprint (``scripts/reproduce.py:fingerprint``) is the mean training loss of the
first steps of its seed-0 run (10 significant digits) and the SHA-256 prefix of the
parameters after them: the setup's data, model, optimizer and ``fit`` loop, BLAS on one
thread. Any change to the engine's numerics, down to one rounding, changes the hash, and
this test fails until the table is regenerated on the new engine (``python
scripts/reproduce.py all``; ``--fingerprints`` rewrites only the fingerprints, for a change
known not to move the results).

The hash is exact where the kernels that round the last bits are the row's (its
``machine`` column ends with ``reproduce.kernels()``: NumPy's version and SIMD target, the
BLAS core); other kernels may round differently, so there only the loss is compared (to
1e-6 relative), which still catches any change of substance. An x86 CPU above the table's
SIMD target (AVX-512 under a table measured with AVX2) is told to dispatch as the table's
did, and the hashes are compared there too. Rows on MNIST need the files
(``BACKPROP_DATA``), as the other MNIST tests do.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
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


def _table_rows(table: str) -> list[list[str]]:
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in table.strip().splitlines()]
    return rows[2:]  # past the header and its rule


_TABLE = RESULTS.read_text(encoding="utf-8").split(reproduce.START, 1)[1]
ROWS = _table_rows(_TABLE.split(reproduce.END, 1)[0])


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
    if row[-1].endswith(reproduce.kernels()):  # the kernels it was measured with: every bit
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


def test_a_shortened_run_leaves_the_published_table_alone(capsys, tmp_path, monkeypatch):
    # `reproduce.py digits --epochs 1 --seeds 1` appended a failing row to docs/results.md
    # (here a copy stands in for the page, so that a failure of this test cannot edit it)
    pytest.importorskip("sklearn")
    page = tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    page.write_bytes(RESULTS.read_bytes())
    monkeypatch.setattr(reproduce, "ROOT", tmp_path)
    monkeypatch.setattr(reproduce, "RESULTS", page)
    assert reproduce.main(["digits", "--seeds", "1", "--epochs", "1"]) == 1
    assert page.read_bytes() == RESULTS.read_bytes()
    assert "digits: not written to docs/results.md: a shortened run" in capsys.readouterr().out


def test_every_bit_under_the_tables_simd_target(tmp_path):
    """On a CPU whose NumPy dispatches to a SIMD target above the table's (an AVX-512 CPU,
    a table measured with AVX2), the test above compares only the losses. Here NumPy is told
    to stop at the table's target (``NPY_DISABLE_CPU_FEATURES``, read at import, so in a
    child process) and ``reproduce.py --fingerprints`` rewrites a copy of the table: every
    hash must be the recorded one."""
    if not os.environ.get("BACKPROP_DATA"):
        pytest.skip("the MNIST rows need BACKPROP_DATA")
    pytest.importorskip("mnist1d")
    pytest.importorskip("sklearn")
    recorded = {", ".join(row[-1].split(", ")[-2:]) for row in ROWS}
    assert len(recorded) == 1, f"the table was measured with several kernels: {recorded}"
    (table_kernels,) = recorded
    if reproduce.kernels() == table_kernels:
        pytest.skip("these are the table's kernels: the test above compares every bit")
    from numpy._core import _multiarray_umath as umath

    targets = list(umath.__cpu_dispatch__)
    target = table_kernels.split(",")[0].split()[-1]  # "NumPy 2.4.6 X86_V3, ..." -> X86_V3
    if target not in targets:
        pytest.skip(f"this NumPy does not dispatch to the table's SIMD target {target}")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))  # MNIST-1D regenerated
    env["NPY_DISABLE_CPU_FEATURES"] = " ".join(targets[targets.index(target) + 1 :])
    probe = subprocess.run(
        [sys.executable, "-c", "import reproduce; print(reproduce.kernels())"],
        env=dict(env, PYTHONPATH=str(ROOT / "scripts")), capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    if probe.stdout.strip() != table_kernels:
        pytest.skip(f"cannot dispatch as the table did here: {probe.stdout.strip()}")
    copy = tmp_path / "results.md"
    copy.write_text(RESULTS.read_text(encoding="utf-8"), encoding="utf-8")
    script = [sys.executable, str(ROOT / "scripts" / "reproduce.py"), "all", "--fingerprints"]
    subprocess.run([*script, "--results", str(copy)], env=env, check=True, timeout=300)
    table = copy.read_text(encoding="utf-8").split(reproduce.START, 1)[1]
    rewritten = {row[0]: row[6] for row in _table_rows(table.split(reproduce.END, 1)[0])}
    for row in ROWS:
        assert rewritten[row[0]] == row[6], (
            f"docs/results.md's {row[0]} row was measured on another engine (fingerprint "
            f"{row[6]}, now {rewritten[row[0]]} with {table_kernels}): regenerate it"
        )


def test_fingerprints_are_rewritten_only_with_the_rows_kernels(tmp_path):
    """--fingerprints put hashes computed with this machine's kernels under a row's machine
    that names others (a table then wrong where it says it is exact), and rewrote every
    row whatever setups were named."""
    copy = tmp_path / "results.md"
    text = RESULTS.read_text(encoding="utf-8")
    edited = text.replace(" X86_V3,", " NO_SUCH_TARGET,")
    copy.write_text(edited, encoding="utf-8")
    with pytest.raises(SystemExit, match=r"row was measured with other kernels .*NO_SUCH_TARGET"):
        reproduce.write_fingerprints(copy, None, ["digits"])
    assert copy.read_text(encoding="utf-8") == edited  # nothing written
    copy.write_text("no table here\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="has no results table"):
        reproduce.write_fingerprints(copy, None, ["digits"])


def test_the_readmes_nielsen_line_is_nielsen1s_seed_0(tmp_path):
    """The README's Nielsen command and docs/results.md's nielsen1 row are said to be the
    same run, bit for bit: here both train their first 60 steps (the line's options as the
    README writes them, on its first 600 images) and the models must be equal."""
    if not os.environ.get("BACKPROP_DATA"):
        pytest.skip("the MNIST files are found through BACKPROP_DATA, which is not set here")
    import contextlib
    import io
    import shlex

    from backprop import load_model
    from backprop.cli import main
    from backprop.training import fit

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = [x for x in readme.splitlines() if x.startswith("backprop train") and "Nielsen" in x]
    argv = shlex.split(line.split("#")[0])[1:]
    n = 600
    for option, value in (("--n-samples", str(n)), ("--epochs", "1")):
        argv[argv.index(option) + 1] = value
    with contextlib.redirect_stdout(io.StringIO()), reproduce.one_blas_thread():
        assert main([*argv, "--out", str(tmp_path / "run"), "--no-plots", "--no-progress"]) == 0
    cli = load_model(tmp_path / "run" / "model.safetensors").state_dict()

    setup = reproduce.SETUPS["nielsen1"]
    ds = setup.load(None, 0)
    net = setup.build(0, setup.biases)
    with reproduce.one_blas_thread():
        fit(net, ds.X_train[:n], ds.targets()[:n], optimizer=setup.optimizer(ds.n_train),
            epochs=1, batch_size=setup.batch_size, seed=0)  # fmt: skip
    assert sorted(cli) == sorted(net.state_dict())
    for name, value in net.state_dict().items():
        assert value.dtype == cli[name].dtype and value.tobytes() == cli[name].tobytes(), name
