"""Faults while a run folder is written (issue 15): a write that fails at each write in
turn, a full disk, a read-only folder, two runs into one --out, planted symlinks, Ctrl-C
inside a checkpoint write, and divergence.

Each asserts what the user relies on: one ``Error:`` line naming the file, nothing saved
before is changed or half-written (no file is left between its old and new content, no
temporary file stays behind), and the run can still be resumed, to the same bits as a run
that never failed.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backprop.cli import main
from backprop.cli.config import read_config
from backprop.cli.run_folder import claim_run_dir, in_use, lock_run_dir
from backprop.io import load_model
from backprop.io.checkpoint import load_checkpoint

SRC = Path(__file__).resolve().parents[1] / "src"
QUIET = ["--no-progress", "--no-plots"]


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _assert_whole(folder: Path) -> None:
    """Every file of the run folder is complete and readable; no temporary file is left."""
    names = {p.name for p in folder.iterdir()}
    assert not [n for n in names if n.startswith(".")], names
    if "config.toml" in names:
        read_config(folder / "config.toml")
    if "checkpoint.safetensors" in names:
        load_checkpoint(folder)
    if "model.safetensors" in names:
        load_model(folder / "model.safetensors")
    if "history.csv" in names:
        with open(folder / "history.csv", newline="") as f:
            assert list(csv.DictReader(f))
    if "summary.json" in names:
        json.loads((folder / "summary.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, object]:
    """A run of 2 epochs checkpointed every epoch, and the same run trained to 4 epochs
    without interruption (what every resumed run must equal, bit for bit)."""
    base = tmp_path_factory.mktemp("faults")
    two, four = base / "two", base / "four"
    common = ["train", "--epochs", "2", "--checkpoint-every", "1", *QUIET]
    assert main([*common, "--out", str(two)]) == 0
    assert main([*common[:2], "4", *common[3:], "--out", str(four)]) == 0
    return {"two": two, "final": load_model(four / "model.safetensors").state_dict()}


class _Faulty:
    """``os.fdopen`` whose ``fail_at``-th file opened for writing fails its write with
    ``errno_`` (a full disk: ENOSPC); counts the writes either way.

    Every run-folder file is written through a temporary ``.NAME.XXXX.tmp`` beside it: at
    the failing write, :attr:`target` is NAME and :attr:`target_before` its bytes then.
    """

    def __init__(self, fail_at: int | None, errno_: int = errno.ENOSPC) -> None:
        self.fail_at, self.errno, self.count = fail_at, errno_, 0
        self.target: str | None = None
        self.target_before: bytes | None = None
        self.real = os.fdopen

    def __call__(self, fd, mode="r", *args, **kwargs):
        f = self.real(fd, mode, *args, **kwargs)
        if "w" not in mode and "x" not in mode:
            return f
        self.count += 1
        if self.count != self.fail_at:
            return f
        tmp = Path(os.readlink(f"/proc/self/fd/{fd}"))
        self.target = tmp.name[1:].rsplit(".", 2)[0]
        dest = tmp.parent / self.target
        self.target_before = dest.read_bytes() if dest.exists() else None
        faulty = self

        class Failing:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, data):
                raise OSError(faulty.errno, os.strerror(faulty.errno))

            def flush(self):
                pass

            def fileno(self):
                return f.fileno()

        return Failing()


def _resume(run: Path, epochs: int = 4) -> list[str]:
    return ["train", "--resume", str(run), "--epochs", str(epochs), *QUIET]


def _count_writes(monkeypatch, argv: list[str]) -> int:
    counter = _Faulty(None)
    monkeypatch.setattr(os, "fdopen", counter)
    assert main(argv) == 0
    monkeypatch.undo()
    return counter.count


@pytest.mark.parametrize("mode", ["resume", "new run"])
def test_a_write_that_fails_at_each_write(run_cli, reference, tmp_path, monkeypatch, mode):
    """Every write of a run, failed in turn (disk full): one line naming the file; the
    file keeps its old content; every file is whole; the run resumes to the same bits."""
    if not os.path.exists("/proc/self/fd"):
        pytest.skip("names the failed file through /proc")

    def setup(k: int) -> tuple[Path, list[str]]:
        run = tmp_path / f"run{k}"
        if mode == "resume":
            shutil.copytree(reference["two"], run)
            return run, _resume(run)
        argv = ["train", "--epochs", "4", "--checkpoint-every", "1", "--out", str(run), *QUIET]
        return run, argv

    run, argv = setup(0)
    n_writes = _count_writes(monkeypatch, argv)
    assert n_writes >= 6  # config, a checkpoint per epoch and at the end, model, history, summary
    for k in range(1, n_writes + 1):
        run, argv = setup(k)
        before = _contents(run) if run.exists() else {}
        faulty = _Faulty(k)
        monkeypatch.setattr(os, "fdopen", faulty)
        rc, _, err = run_cli(*argv)
        monkeypatch.undo()
        assert rc == 2 and err.count("\n") == 1, (k, err)
        assert err.startswith("Error: cannot write ") and "No space left on device" in err, err
        assert f"{run / faulty.target}: No space" in err, (faulty.target, err)
        # the file whose write failed holds what it held just before; the others are
        # either as before the run or a complete newer version
        after = _contents(run) if run.exists() else {}
        assert after.get(faulty.target) == faulty.target_before, (k, faulty.target)
        assert set(after) >= set(before)
        if run.exists():  # (a new run that saved nothing releases its folder)
            _assert_whole(run)
        # ... and the run goes on from what was saved
        if (run / "checkpoint.safetensors").exists():
            state, _ = load_checkpoint(run)
            if state.epoch < 4:
                assert main(_resume(run)) == 0, k
            assert all(
                np.array_equal(v, reference["final"][name])
                for name, v in load_checkpoint(run)[0].model.state_dict().items()
            ), k
        elif (run / "config.toml").exists():  # stopped before its first checkpoint: says so
            rc, _, err = run_cli(*_resume(run))
            assert rc == 2 and "holds no checkpoint" in err
        else:  # the claim failed, or the run saved nothing: the folder is free for the run
            assert main(argv) == 0


def test_disk_full_for_real(reference, tmp_path):
    """``ulimit -f 0`` in a real process (writes fail with EFBIG): the resumed run stops at
    its first write, config.toml keeps its bytes, and the run resumes afterwards."""
    import resource

    run = tmp_path / "run"
    shutil.copytree(reference["two"], run)
    before = _contents(run)

    def no_file_growth() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    proc = subprocess.run(
        [sys.executable, "-m", "backprop", *_resume(run)],
        env=dict(os.environ, PYTHONPATH=str(SRC)), capture_output=True, text=True, timeout=120,
        preexec_fn=no_file_growth,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot write" in proc.stderr, proc.stderr
    assert "config.toml" in proc.stderr
    assert _contents(run) == before  # not one byte changed
    assert main(_resume(run)) == 0
    final = load_model(run / "model.safetensors").state_dict()
    assert all(np.array_equal(final[k], v) for k, v in reference["final"].items())


def test_read_only_run_folder(run_cli, reference, tmp_path, monkeypatch):
    """A folder that refuses writes (EROFS; a real chmod cannot stop root): one line naming
    the file, nothing changed. Then with chmod, where the user is not root."""
    run = tmp_path / "run"
    shutil.copytree(reference["two"], run)
    before = _contents(run)

    from backprop.io import safetensors

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(safetensors, "_open_new", read_only)
    rc, _, err = run_cli(*_resume(run))
    monkeypatch.undo()
    assert rc == 2 and err.count("\n") == 1, err
    assert "cannot write" in err and "config.toml" in err and "Read-only file system" in err
    assert _contents(run) == before
    if os.geteuid() != 0:
        run.chmod(0o555)
        try:
            rc, _, err = run_cli(*_resume(run))
        finally:
            run.chmod(0o755)
        assert rc == 2 and err.count("\n") == 1 and "Permission denied" in err, err
        assert _contents(run) == before
    assert main(_resume(run)) == 0


def test_two_runs_claim_one_folder_once(tmp_path):
    """The claim is one exclusive create: the second claim of a folder fails, whatever was
    checked before it."""
    assert claim_run_dir(tmp_path, "epochs = 3\n") is True
    assert claim_run_dir(tmp_path, "epochs = 5\n") is False
    assert (tmp_path / "config.toml").read_text() == "epochs = 3\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


@pytest.mark.slow  # two real training processes, twice: about 5 s
def test_two_runs_into_one_out_in_real_processes(tmp_path):
    """Two processes started together into one --out: exactly one trains, the other says so
    in one line, and the folder holds one run's files (the config and the model agree)."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    for trial in range(2):
        out = tmp_path / f"out{trial}"
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "backprop",
                    "train",
                    "--epochs",
                    "30",
                    "--seed",
                    str(seed),
                    "--out",
                    str(out),
                    *QUIET,
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for seed in (1, 2)
        ]
        results = [(p.communicate(timeout=120)[1], p.returncode)[::-1] for p in procs]
        assert sorted(rc for rc, _ in results) == [0, 2], results
        loser = next(err for rc, err in results if rc == 2)
        said = ("already holds a run", "is in use by a backprop train running now")
        assert loser.count("\n") == 1 and any(x in loser for x in said), loser
        seed = read_config(out / "config.toml")["seed"]
        assert json.loads((out / "summary.json").read_text())["seed"] == seed
        _, fit_config = load_checkpoint(out)
        assert fit_config["seed"] == seed


def test_a_run_folder_in_use_is_refused(run_cli, reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference["two"], run)
    before = _contents(run)
    lock = lock_run_dir(run)  # as another train --resume holds it
    try:
        rc, _, err = run_cli(*_resume(run))
    finally:
        lock.release()
    if rc != 2:
        pytest.skip("this file system does not lock folders")
    assert err.count("\n") == 1 and "in use by another backprop train" in err
    assert _contents(run) == before
    assert main(_resume(run)) == 0  # free again


def test_a_run_folder_in_use_is_never_called_stopped_nor_offered_for_deletion(run_cli, tmp_path):
    """While a run trains in D (before its model or first checkpoint): train --out D said
    to resume it, or to 'delete that folder' (a new run into the deleted one's path then
    shared the folder with the live run); --resume D said its run 'stopped before its first
    checkpoint'; predict D called it 'not a run folder'. Each now says a run is in it."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text("# a run starting\n")
    lock = lock_run_dir(run)  # as the train running in it holds it
    try:
        if not in_use(run):
            pytest.skip("this file system does not lock folders")
        out = run_cli("train", "--out", str(run), *QUIET)
        resumed = run_cli(*_resume(run))
        predicted = run_cli("predict", str(run))
    finally:
        lock.release()
    assert not in_use(run)
    assert out[0] == 2 and "is in use by a backprop train running now; wait for it" in out[2]
    assert resumed[0] == 2 and "in use by another backprop train" in resumed[2], resumed
    assert predicted[0] == 2 and "is the run folder of a backprop train running now" in predicted[2]


def test_a_run_whose_folder_is_replaced_stops_without_writing_there(run_cli, tmp_path,
                                                                     monkeypatch):  # fmt: skip
    """rm -rf D while its run trained, then a new run into D: the first run went on writing
    its checkpoint, model and summary into the new run's folder (its config.toml beside
    the first run's model)."""
    import backprop.cli.commands.train as train_module

    run = tmp_path / "run"
    real = train_module.checkpoint_callback

    def replacing(run_dir, cfg, sha256):
        checkpoint = real(run_dir, cfg, sha256)
        save = checkpoint.on_epoch_end

        def on_epoch_end(state):
            save(state)
            if state.epoch == 2:  # another run's folder in its place
                shutil.rmtree(run_dir)
                run_dir.mkdir()
                (run_dir / "config.toml").write_text("# the other run\n")

        checkpoint.on_epoch_end = on_epoch_end
        return checkpoint

    monkeypatch.setattr(train_module, "checkpoint_callback", replacing)
    rc, _, err = run_cli("train", "--epochs", "5", "--checkpoint-every", "1", "--out", str(run),
                         *QUIET)  # fmt: skip
    monkeypatch.undo()
    assert rc == 2 and err.count("\n") == 1, err
    assert "was deleted or replaced while this run trained (after epoch 3)" in err
    assert sorted(p.name for p in run.iterdir()) == ["config.toml"]
    assert (run / "config.toml").read_text() == "# the other run\n"


def test_planted_symlinks_are_never_followed(run_cli, reference, tmp_path):
    """Every side file of a run folder replaced by a symlink to a file outside, and the old
    fixed temporary name planted too: resuming replaces the links, the files outside keep
    their bytes."""
    run = tmp_path / "run"
    shutil.copytree(reference["two"], run)
    victims = {}
    for name in ("history.csv", "summary.json", "model.safetensors", "summary.json.tmp"):
        victim = tmp_path / f"victim-{name}"
        victim.write_text(f"precious {name}\n")
        victims[victim] = victim.read_bytes()
        (run / name).unlink(missing_ok=True)
        (run / name).symlink_to(victim)
    rc, _, err = run_cli(*_resume(run))
    assert rc == 0, err
    assert {v: v.read_bytes() for v in victims} == victims
    for name in ("history.csv", "summary.json", "model.safetensors"):
        assert not (run / name).is_symlink()
    _assert_whole(run)


def test_a_dangling_config_symlink_in_out_is_refused(run_cli, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.toml"
    (out / "config.toml").symlink_to(elsewhere)
    rc, _, err = run_cli("train", "--epochs", "2", "--out", str(out), *QUIET)
    assert rc == 2 and err.count("\n") == 1 and "already holds a run" in err
    assert not elsewhere.exists()


def test_a_users_own_files_in_out_are_never_replaced(run_cli, tmp_path):
    # --out naming a folder of one's own: its loss.png was replaced by the run's plot
    out = tmp_path / "mine"
    out.mkdir()
    (out / "loss.png").write_text("my own figure")
    rc, _, err = run_cli("train", "--epochs", "1", "--out", str(out), "--no-progress")
    assert rc == 2 and err.count("\n") == 1, err
    assert "holds loss.png, which the run would replace with its plot" in err
    assert (out / "loss.png").read_text() == "my own figure"
    assert sorted(p.name for p in out.iterdir()) == ["loss.png"]
    # without plots, nothing there would be replaced: it was refused all the same
    rc, _, err = run_cli("train", "--epochs", "1", "--out", str(out), *QUIET)
    assert rc == 0, err
    assert (out / "loss.png").read_text() == "my own figure"
    # a symlink that names nothing is named as such (it read 'is a file')
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    rc, _, err = run_cli("train", "--epochs", "1", "--out", str(tmp_path / "dangling"), *QUIET)
    assert rc == 2 and "is a symlink to" in err and "which does not exist" in err, err
    assert not (tmp_path / "nowhere").exists()
    # two links that name each other: a loop (it said the other 'does not exist')
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    rc, _, err = run_cli("train", "--epochs", "1", "--out", str(tmp_path / "loop_a"), *QUIET)
    assert rc == 2 and "loop_b, a loop of links; expected a folder" in err, err


def test_ctrl_c_inside_a_checkpoint_write_names_the_saved_epoch(run_cli, tmp_path, monkeypatch):
    """Ctrl-C while the checkpoint of epoch 3 is written: that checkpoint is never written,
    so the message says to continue from epoch 2, which is what the file holds."""
    _ctrl_c_in_the_checkpoint_of(monkeypatch, 3)
    out = tmp_path / "run"
    rc, _, err = run_cli("train", "--epochs", "5", "--checkpoint-every", "1", "--out", str(out),
                         *QUIET)  # fmt: skip
    monkeypatch.undo()
    assert rc == 130 and err.count("\n") == 1
    assert "continue from epoch 2" in err
    assert load_checkpoint(out)[0].epoch == 2
    assert main(_resume(out, 5)) == 0


def test_ctrl_c_just_after_a_checkpoints_rename_names_its_new_epoch(run_cli, tmp_path, monkeypatch):
    """Ctrl-C in the folder's fsync after epoch 3's checkpoint was renamed into place: the
    file holds epoch 3, and the message said to continue from epoch 2 (3 of 15 random
    interrupts of a lifecycle audit)."""
    import backprop.io.safetensors as safetensors_module

    real = safetensors_module._fsync_dir
    calls = []

    def interrupted(directory):
        real(directory)
        if not calls and any(p.name == "checkpoint.safetensors" for p in directory.iterdir()):
            if load_checkpoint(directory)[0].epoch == 3:
                calls.append(directory)  # once: the Ctrl-C's own writes go through
                raise KeyboardInterrupt

    monkeypatch.setattr(safetensors_module, "_fsync_dir", interrupted)
    out = tmp_path / "run"
    rc, _, err = run_cli("train", "--epochs", "5", "--checkpoint-every", "1", "--out", str(out),
                         *QUIET)  # fmt: skip
    monkeypatch.undo()
    assert rc == 130 and err.count("\n") == 1, err
    assert load_checkpoint(out)[0].epoch == 3 and "continue from epoch 3" in err, err
    assert main(_resume(out, 5)) == 0


def _ctrl_c_in_the_checkpoint_of(monkeypatch, epoch: int) -> None:
    """A Ctrl-C (KeyboardInterrupt) in place of the checkpoint of ``epoch``, which is then
    never written; the other epochs' checkpoints are saved as usual."""
    import backprop.io.checkpoint as checkpoint_module

    real = checkpoint_module.save_checkpoint

    def interrupted(path, state, fit_config, **kw):
        if state.epoch == epoch:
            raise KeyboardInterrupt
        return real(path, state, fit_config, **kw)

    monkeypatch.setattr(checkpoint_module, "save_checkpoint", interrupted)


def _signal_inside(monkeypatch, module, name: str, when=lambda *a, **k: True) -> None:
    """``module.name`` calls the SIGINT handler of the command line (as a Ctrl-C arriving
    there would) once ``when`` holds, then does its work."""
    import signal

    import backprop._interrupts as interrupts

    # the handler notes the Ctrl-C for the process: in lists of this test's own
    monkeypatch.setattr(interrupts, "_ctrl_c", [])
    monkeypatch.setattr(interrupts, "_waiting", [])
    real = getattr(module, name)
    fired = []

    def interrupted(*args, **kwargs):
        if not fired and when(*args, **kwargs):
            fired.append(True)
            interrupts.on_interrupt(signal.SIGINT, None)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, interrupted)


def test_a_ctrl_c_while_the_folder_is_claimed_releases_it(run_cli, tmp_path, monkeypatch):
    """A Ctrl-C between the folder's making and the registration of its release (28 of 28
    lines there, in an audit) left it holding config.toml alone: the same --out was then
    refused ('already holds a run that has no checkpoint')."""
    import backprop.cli.commands.train as train_module

    _signal_inside(monkeypatch, train_module, "lock_run_dir")
    out = tmp_path / "run"
    rc, _, err = run_cli("train", "--out", str(out), *QUIET)
    monkeypatch.undo()
    assert rc == 130 and not out.exists(), (err, list(out.iterdir()) if out.exists() else None)
    assert run_cli("train", "--epochs", "2", "--out", str(out), *QUIET)[0] == 0


def test_a_ctrl_c_while_the_summary_is_made_still_saves_and_says_so(run_cli, tmp_path,
                                                                     monkeypatch):  # fmt: skip
    """A Ctrl-C while the summary's dict was made after the last epoch left it without its
    keys: the handler's KeyError was all that reached the user ('Error: interrupted'), and
    summary.json held the 'interrupted' key alone."""
    import backprop.cli.commands.train as train_module

    _signal_inside(monkeypatch, train_module, "_summary")
    out = tmp_path / "run"
    rc, _, err = run_cli("train", "--epochs", "3", "--out", str(out), *QUIET)
    monkeypatch.undo()
    assert rc == 130 and err.startswith("Interrupted while saving the model, after training 3 "), (
        err
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run"] == 3 and "interrupted" in summary
    assert load_model(out / "model.safetensors").n_inputs == 2


def test_a_second_ctrl_c_while_the_first_ones_files_are_written(run_cli, tmp_path, monkeypatch):
    """A Ctrl-C during a resumed run, then a second one as its model and history were
    written: the new model was left beside the old run's summary.json (its 10 epochs and
    test accuracy) and history.csv, and 'Error: interrupted' alone was said. The second
    one now waits for the files and is let go."""
    import backprop.cli.commands.train as train_module

    out = tmp_path / "run"
    assert main(["train", "--epochs", "4", "--checkpoint-every", "1", "--out", str(out),
                 *QUIET]) == 0  # fmt: skip
    _ctrl_c_in_the_checkpoint_of(monkeypatch, 7)
    _signal_inside(monkeypatch, train_module, "write_history")
    rc, _, err = run_cli(*_resume(out, 10))
    monkeypatch.undo()
    assert rc == 130 and err.startswith("Interrupted: kept the model of epoch 7"), err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run"] == 7 and "Ctrl-C during epoch 8" in summary["interrupted"]
    with open(out / "history.csv", newline="") as f:
        assert len(list(csv.reader(f))) == 1 + 7
    assert main(_resume(out, 10)) == 0


def test_a_folder_left_by_a_failed_run_says_what_to_do(run_cli, tmp_path, monkeypatch):
    """A run that fails before its first checkpoint releases its folder (its config.toml
    alone refused the same --out ever after); one killed then (SIGKILL, a power cut: no
    code of its own runs) leaves the claim, and the next run says what to do."""
    import backprop.cli.commands.train as train_module
    from backprop.cli.run_folder import claim_run_dir

    def fails(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "somewhere")

    monkeypatch.setattr(train_module, "_run_training", fails)
    out = tmp_path / "run"
    rc, _, _ = run_cli("train", "--out", str(out), *QUIET)
    monkeypatch.undo()
    assert rc == 2 and not out.exists()
    out.mkdir()
    assert claim_run_dir(out, "# a run killed while it started\n")
    rc, _, err = run_cli("train", "--out", str(out), *QUIET)
    assert rc == 2 and "no checkpoint to resume from" in err and "--resume" not in err
    rc, _, err = run_cli("train", "--resume", str(out), *QUIET)
    assert rc == 2 and "holds no checkpoint" in err and "another --out" in err


# ------------------------------------------------------------------------- divergence
def test_divergence_in_the_first_epoch_saves_nothing_and_frees_the_out(run_cli, tmp_path):
    """lr 1e308 on targets up to 1e6: the one step overflows the weights while the loss
    (measured before the step) is finite. The run stops as diverged (exit 1), as cli.md
    says of a train that fails before its first epoch ended: nothing saved, no claim on its
    --out. (It saved the initial weights and an empty history.csv: a folder that neither
    --resume nor the same --out with a smaller --lr took.)"""
    rng = np.random.default_rng(0)
    rows = [f"{a:.4f},{b:.4f},{1e6 * c:.1f}" for a, b, c in rng.random((200, 3))]
    (tmp_path / "reg.csv").write_text("a,b,y\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    rc, _, err = run_cli("train", "--dataset", str(tmp_path / "reg.csv"), "--target", "y",
                         "--lr", "1e308", "--epochs", "1", "--batch-size", "100000",
                         "--validation-fraction", "0", "--out", str(out), *QUIET)  # fmt: skip
    assert rc == 1 and err.count("\n") == 1 and "training diverged" in err, err
    assert "the weights became NaN or inf" in err and "nothing was saved" in err
    assert not out.exists()
    rc, _, err = run_cli("train", "--dataset", str(tmp_path / "reg.csv"), "--target", "y",
                         "--epochs", "1", "--out", str(out), *QUIET)  # fmt: skip
    assert rc == 0, err
    model = load_model(out / "model.safetensors")
    assert all(np.isfinite(v).all() for v in model.state_dict().values())


def test_divergence_in_a_later_epoch_keeps_the_last_good_epoch(tmp_path):
    """Python API: the weights overflow in epoch 3's last step (the loss stays finite):
    TrainingDiverged, and the model holds epoch 2's weights, finite."""
    from backprop import MLP, TrainingDiverged, fit
    from backprop.optimizers import SGD, ExponentialLR

    class Explodes(ExponentialLR):  # a learning rate that jumps to 1e308 in epoch 3
        def __call__(self, base_lr: float, epoch: int) -> float:
            return 1e308 if epoch == 2 else base_lr

    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(16, 2)), 1e3 * rng.normal(size=(16, 1))
    model = MLP([2, 4, 1], "tanh", "identity", "mse", seed=0)
    kept = {}
    with pytest.raises(TrainingDiverged, match="the weights became NaN or inf in epoch 3"):
        fit(model, X, T, optimizer=SGD(lr=1e-6, schedule=Explodes()), epochs=5, batch_size=16,
            callbacks=[lambda s: kept.__setitem__(s.epoch, s.model.state_dict())])  # fmt: skip
    after = model.state_dict()
    assert all(np.isfinite(v).all() for v in after.values())
    assert all(np.array_equal(after[k], kept[2][k]) for k in after)


def test_non_finite_initial_weights_are_refused_before_training():
    from backprop import MLP, fit

    model = MLP([2, 3, 1], "tanh", "identity", "mse", seed=0)
    model.params["layers.0.W"][0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or inf before training"):
        fit(model, np.zeros((4, 2)), np.zeros((4, 1)), epochs=1)


def _model_write_fails(monkeypatch) -> None:
    """The next write of a run's model.safetensors fails as on a full disk."""
    from backprop.cli.commands import train as train_command
    from backprop.io.safetensors import WriteError

    def disk_full(path, model):
        raise WriteError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(train_command, "save_model", disk_full)


def test_a_run_whose_model_write_failed_is_finished_by_resume(run_cli, reference, tmp_path,
                                                              monkeypatch):  # fmt: skip
    # the final checkpoint was written, the model was not: --resume said 'already trained 4
    # epochs; pass --epochs N > 4' and evaluate said 'finish the run with --resume': a loop
    run = tmp_path / "run"
    argv = ["train", "--epochs", "4", "--checkpoint-every", "1", "--out", str(run), *QUIET]
    _model_write_fails(monkeypatch)
    rc, _, err = run_cli(*argv)
    monkeypatch.undo()
    assert rc == 2 and "cannot write" in err and "model.safetensors" in err, err
    assert not (run / "model.safetensors").exists()
    rc, _, err = run_cli("train", "--resume", str(run), *QUIET)
    assert rc == 0, err
    assert "ended after epoch 4 without writing all its files" in err
    final = load_model(run / "model.safetensors").state_dict()
    assert all(np.array_equal(final[k], v) for k, v in reference["final"].items())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 4 and summary["test"]["accuracy"] > 0
    assert summary["epochs_timed"] == 0 and summary["train_samples_per_s"] is None  # not 0.0
    assert run_cli("evaluate", str(run))[0] == 0


def test_a_stop_after_the_last_checkpoint_leaves_files_resume_rewrites(
    run_cli, reference, tmp_path, monkeypatch
):
    # the last checkpoint is written before the model, history and summary: a kill (or a
    # full disk) between them left the previous model (epoch 2's) and history beside a
    # finished checkpoint, and --resume said 'pass --epochs N > 4': they stayed for good
    run = tmp_path / "run"
    shutil.copytree(reference["two"], run)
    _model_write_fails(monkeypatch)
    assert run_cli(*_resume(run))[0] == 2
    monkeypatch.undo()
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2  # epoch 2's files
    rc, _, err = run_cli("train", "--resume", str(run), *QUIET)
    assert rc == 0, err
    assert "ended after epoch 4 without writing all its files" in err
    final = load_model(run / "model.safetensors").state_dict()
    assert all(np.array_equal(final[k], v) for k, v in reference["final"].items())
    with open(run / "history.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    # killed after the model and history, before the summary: the summary is written
    (run / "summary.json").unlink()
    rc, _, err = run_cli("train", "--resume", str(run), *QUIET)
    assert rc == 0 and "without writing all its files" in err, err
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 4
    # now whole: resuming it again is the usual refusal
    rc, _, err = run_cli("train", "--resume", str(run), *QUIET)
    assert rc == 2 and "pass --epochs N with N > 4" in err, err
    _assert_whole(run)


def test_resume_with_fewer_epochs_than_its_checkpoint_is_refused(run_cli, tmp_path):
    # with no model file yet, --epochs 1 ended a run of 4 at the checkpoint's epoch 2 (exit
    # 0); with one, it was refused so
    from backprop.io.checkpoint import save_checkpoint

    run = tmp_path / "run"
    assert run_cli("train", "--epochs", "4", "--checkpoint-every", "1", "--out", str(run),
                   *QUIET)[0] == 0  # fmt: skip
    state, fit_config = load_checkpoint(run)  # as a kill in epoch 3 leaves it: no files yet
    state.epoch = state.optimizer.epoch = 2
    state.history.epochs = state.history.epochs[:2]
    save_checkpoint(run / "checkpoint.safetensors", state, fit_config)
    for name in ("model.safetensors", "summary.json", "history.csv"):
        (run / name).unlink()
    before = _contents(run)
    rc, _, err = run_cli(*_resume(run, epochs=1))
    assert rc == 2
    assert err.strip() == (
        f"Error: the run in {run} resumes from its checkpoint of epoch 2; pass --epochs N "
        "with N > 2 to train further"
    )
    assert _contents(run) == before


def test_a_resumed_run_that_diverges_rewrites_its_summary(run_cli, tmp_path, monkeypatch):
    # the model file became the last good epoch's while summary.json kept describing the
    # model it replaced (its metrics, its best epoch)
    from backprop.optimizers import Optimizer

    rng = np.random.default_rng(0)
    rows = [f"{a:.4f},{b:.4f},{1e6 * c:.1f}" for a, b, c in rng.random((200, 3))]
    (tmp_path / "reg.csv").write_text("a,b,y\n" + "\n".join(rows) + "\n")
    run = tmp_path / "run"
    data = ["--dataset", str(tmp_path / "reg.csv"), "--target", "y"]
    settings = ["--optimizer", "sgd", "--lr", "0.01", "--target-scaling", "none"]
    argv = ["train", *data, *settings, "--out", str(run), *QUIET]
    assert main([*argv, "--epochs", "3"]) == 0
    assert json.loads((run / "summary.json").read_text())["test"]
    real_lr = Optimizer.lr  # from epoch 4 (0-based 3) on, a step that overflows the weights
    monkeypatch.setattr(Optimizer, "lr", property(lambda o: 1e308 if o.epoch >= 3 else
                                                  real_lr.fget(o)))  # fmt: skip
    rc, _, err = run_cli("train", "--resume", str(run), "--epochs", "5", *QUIET)
    assert rc == 1 and "training diverged" in err and "in epoch 4" in err, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 3 and summary["stop_reason"] == "diverged in epoch 4"
    assert summary["test"] == {}
    kept = summary["best_epoch"] or 3  # early stopping's best, when not the last epoch
    assert summary["interrupted"].startswith(f"diverged in epoch 4: the model is epoch {kept}'s")
    assert f"the model of epoch {kept}, early stopping's best" in err or kept == 3


def test_temporaries_left_by_a_killed_write_are_removed(run_cli, reference, tmp_path):
    # kill -9 inside a write leaves write_atomic's .NAME.XXXXXXXX.tmp, checkpoint-sized,
    # which stayed through every later resume
    run = tmp_path / "run"
    shutil.copytree(reference["two"], run)
    left = [
        run / ".checkpoint.safetensors.k7x2pq9a.tmp",
        run / ".config.toml.0ab1cd2e.tmp",
        run / f".model.safetensors.{'3f' * 6}.tmp",
    ]  # (the names write_atomic makes now)
    for path in left:
        path.write_bytes(b"\0" * 4096)
    # a config.toml temporary may be another run's claim in progress: only an old one goes
    claiming = run / ".config.toml.5e5e5e5e5e5e.tmp"
    claiming.write_text("a claim being written")
    hour_ago = time.time() - 3600
    os.utime(left[1], (hour_ago, hour_ago))
    mine = [run / ".notes.tmp", run / "checkpoint.safetensors.tmp"]  # not the writer's names
    for path in mine:
        path.write_text("keep me")
    assert main(_resume(run)) == 0
    assert not any(path.exists() for path in left)
    assert all(path.read_text() == "keep me" for path in mine) and claiming.exists()


def test_a_checkpoint_whose_optimizer_was_edited_is_refused(run_cli, reference, tmp_path):
    # lr 1e308 in the checkpoint trained under a header saying 'lr 3' (config.toml's)
    from backprop.io.checkpoint import save_checkpoint

    run = tmp_path / "run"
    shutil.copytree(reference["two"], run)
    state, fit_config = load_checkpoint(run)
    state.optimizer.base_lr = 1e308
    save_checkpoint(run / "checkpoint.safetensors", state, fit_config)
    before = _contents(run)
    rc, _, err = run_cli(*_resume(run))
    assert rc == 2 and err.count("\n") == 1, err
    assert "holds optimizer SGD(lr=1e+308" in err and "builds SGD(lr=3" in err
    assert _contents(run) == before


def test_divergence_keeps_early_stoppings_best_as_the_header_said(run_cli, tmp_path):
    # the header says 'the best val_loss's weights kept'; a divergence in epoch 7 kept
    # epoch 6's weights (validation loss 1e288) rather than the best epoch's
    rows = (Path(__file__).parents[1] / "examples/iris.csv").read_text().splitlines()
    (tmp_path / "iris4.csv").write_text("\n".join(",".join(r.split(",")[:4]) for r in rows))
    out = tmp_path / "run"
    rc, _, err = run_cli("train", "--dataset", str(tmp_path / "iris4.csv"), "--target",
                         "petal_width", "--optimizer", "sgd", "--lr", "10000", "--epochs", "10",
                         "--target-scaling", "none", "--out", str(out), *QUIET)  # fmt: skip
    assert rc == 1 and err.count("\n") == 1 and "training diverged" in err, err
    with open(out / "history.csv") as f:
        val_loss = [float(row["val_loss"]) for row in csv.DictReader(f)]
    best = int(np.argmin(val_loss)) + 1
    assert f"the model of epoch {best}, early stopping's best, is in" in err
    rc, text, err = run_cli("evaluate", str(out), "--split", "validation", "--json")
    assert rc == 0, err
    assert json.loads(text)["mse"] == pytest.approx(val_loss[best - 1], rel=1e-9)


def test_resuming_on_a_device_that_is_not_there_is_one_line(run_cli, reference, tmp_path):
    # a run trained on a GPU resumed where there is none: 'internal error: RuntimeError'
    torch = pytest.importorskip("torch", reason="the torch backend")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here")
    run = tmp_path / "run"
    shutil.copytree(reference["two"], run)
    before = _contents(run)
    rc, _, err = run_cli(*_resume(run), "--backend", "torch", "--device", "cuda")
    assert rc == 2, err
    assert err.startswith("Error: ") and "CUDA" in err and "internal error" not in err
    assert len(err.strip().splitlines()) == 1
    assert _contents(run) == before


# ------------------------------------------------- claims, long names, writes in place
def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("where", ["--out new", "--out runs/new", "default", "own folder"])
def test_a_failed_claim_leaves_no_folder_it_made(run_cli, tmp_path, monkeypatch, where):
    # config.toml's write failing (disk full) left the new run folder, and a runs/ made for
    # it, behind, empty: the claim's release is registered only once the folder is claimed
    if not os.path.exists("/proc/self/fd"):
        pytest.skip("names the failed file through /proc")
    monkeypatch.chdir(tmp_path)
    out = {"--out new": "new", "--out runs/new": "runs/new", "own folder": "mine"}.get(where)
    if where == "own folder":
        (tmp_path / "mine").mkdir()
    monkeypatch.setattr(os, "fdopen", _Faulty(1))  # the first write: config.toml's
    rc, _, err = run_cli("train", *(["--out", out] if out else []), *QUIET)
    monkeypatch.undo()
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith("Error: cannot write ") and "config.toml: No space left" in err, err
    assert _names(tmp_path) == (["mine"] if where == "own folder" else [])
    if where == "own folder":  # the user's folder stays, as empty as it was
        assert _names(tmp_path / "mine") == []


@pytest.mark.parametrize("no_link", [errno.EPERM, errno.ENOTSUP])
def test_a_claim_without_hard_links_that_fails_leaves_no_config(run_cli, tmp_path, monkeypatch,
                                                               no_link):  # fmt: skip
    # vfat has no hard links: the claim creates config.toml and copies the bytes into it; a
    # copy that failed (disk full) left it there, short, and that --out said 'already holds
    # a run that has no checkpoint' for good
    if not os.path.exists("/proc/self/fd"):
        pytest.skip("names the file being written through /proc")

    def no_hard_links(src, dst, *args, **kwargs):
        raise OSError(no_link, os.strerror(no_link))

    real_fsync = os.fsync

    def disk_full_for_config(fd):  # the copy into config.toml itself, not its temporary
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/config.toml"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "link", no_hard_links)
    monkeypatch.setattr(os, "fsync", disk_full_for_config)
    with pytest.raises(OSError, match="cannot write .*config.toml: No space left on device"):
        claim_run_dir(tmp_path, "epochs = 3\n")
    assert _names(tmp_path) == []  # neither config.toml nor its temporary
    out = tmp_path / "run"
    argv = ["train", "--out", str(out), *QUIET]
    rc, _, err = run_cli(*argv)
    monkeypatch.undo()
    assert rc == 2 and err.count("\n") == 1, err
    assert f"cannot write {out / 'config.toml'}: No space left on device" in err, err
    assert not out.exists()
    assert main(argv) == 0  # that --out is free


def test_an_output_name_the_folder_takes_is_written(run_cli, reference, tmp_path):
    # a name of 238-255 bytes is legal, but its temporary '.NAME.<12 hex>.tmp' was not:
    # 'cannot write ppp...p.csv: File name too long' blamed the user's name
    from backprop.io import write_atomic

    if os.pathconf(tmp_path, "PC_NAME_MAX") < 255:
        pytest.skip("a file system with names shorter than 255 bytes")
    long_names = ["a" * 255, "é" * 125 + ".csv", "b" * 240]  # (254 bytes in UTF-8)
    for name in long_names:
        write_atomic(tmp_path / name, b"first")
        write_atomic(tmp_path / name, b"second")  # replaced
        assert (tmp_path / name).read_bytes() == b"second"
    write_atomic(tmp_path / ("c" * 250), b"claimed", exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomic(tmp_path / ("c" * 250), b"again", exclusive=True)
    assert _names(tmp_path) == sorted([*long_names, "c" * 250])  # no temporary left
    output = tmp_path / ("p" * 251 + ".csv")
    rc, _, err = run_cli("predict", str(reference["two"]), "-o", str(output))
    assert rc == 0, err
    assert output.read_text().startswith("true,label,")


def _in_place(monkeypatch, output: Path) -> None:
    """``predict -o output`` writes ``output`` in place, as in a read-only folder (where
    root's writes are not refused, the refusal is made here)."""
    from backprop.cli.commands import predict as predict_command
    from backprop.io.safetensors import WriteError

    def read_only_folder(path, data, **kwargs):
        raise WriteError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(predict_command, "write_atomic", read_only_folder)


@pytest.mark.parametrize("reserve", ["disk full", "no fallocate", "reserved"])
def test_predict_written_in_place_keeps_the_old_file_on_a_full_disk(
    run_cli, reference, tmp_path, monkeypatch, reserve
):
    # written in place, the old file was truncated first: a full disk left 4096 bytes of the
    # new predictions and none of the old ones. The space is reserved first now
    if not hasattr(os, "posix_fallocate"):
        pytest.skip("no posix_fallocate here")
    rc, expected, _ = run_cli("predict", str(reference["two"]))
    assert rc == 0
    output = tmp_path / "predictions.csv"
    old = b"old,predictions\n" * 2000  # longer than the new ones: the rest is cut off
    output.write_bytes(old)
    failure = {"disk full": errno.ENOSPC, "no fallocate": errno.EOPNOTSUPP}.get(reserve)
    if failure is not None:

        def fallocate(fd, offset, length):
            raise OSError(failure, os.strerror(failure))

        monkeypatch.setattr(os, "posix_fallocate", fallocate)
    _in_place(monkeypatch, output)
    rc, _, err = run_cli("predict", str(reference["two"]), "-o", str(output))
    monkeypatch.undo()
    if reserve == "disk full":
        assert rc == 2 and err.count("\n") == 1, err
        assert err == f"Error: cannot write {output}: No space left on device\n"
        assert output.read_bytes() == old
    else:  # reserved, or written as before where the file system cannot reserve space
        assert rc == 0, err
        assert output.read_text() == expected


@pytest.mark.parametrize("out", [None, "runs/mine"])
def test_a_file_on_the_way_names_out_only_when_given(run_cli, tmp_path, monkeypatch, out):
    # with no --out, 'Error: --out runs/20261201-214315-moons: runs is a file' named an
    # option the user never gave
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("not a folder")
    rc, _, err = run_cli("train", *(["--out", out] if out else []), *QUIET)
    assert rc == 2 and err.count("\n") == 1, err
    assert err.endswith(": runs is a file; expected folders on the way to the run folder\n")
    if out is None:
        assert err.startswith("Error: the run folder runs/") and "--out" not in err, err
    else:
        assert err.startswith(f"Error: --out {out}: runs is a file"), err
    assert (tmp_path / "runs").read_text() == "not a folder"


def test_a_checkpoint_folder_under_a_file_is_one_clear_error(tmp_path):
    # a bare 'NotADirectoryError: [Errno 20] Not a directory', where run_dir itself being a
    # file said what was wrong
    from backprop.io.checkpoint import Checkpoint

    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match=r"run_dir .*afile/run: .*afile is a file; expected"):
        Checkpoint(tmp_path / "afile" / "run")
    with pytest.raises(ValueError, match=r"run_dir .*afile is a file; expected a folder"):
        Checkpoint(tmp_path / "afile")
