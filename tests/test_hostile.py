"""Hostile input, command by command: every case exits 2 with exactly ONE stderr line that
names the input, no traceback, within a time limit and a memory limit (issue 15).

The cases run in one separate process (tests/hostile_driver.py) under RLIMIT_AS: an input
that made the program allocate past the limit would fail there with "not enough memory"
instead of its own message, and one that hung would hit the per-case time limit. The
inputs are those a hostile user tried: special files (FIFOs that hang a reader, devices
that never end, folders), files whose declared sizes amplify (a 3 MB model listing a
million layers, a header of thousands of tensors, a gzip file that inflates to a gigabyte,
a CSV target with 10^5 classes, --layers of 10^10 parameters), deep nesting, huge numbers,
values that are not numbers, and checkpoints with hostile optimizer state.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backprop.cli import main

pytestmark = pytest.mark.skipif(
    not hasattr(os, "mkfifo") or sys.platform == "win32",
    reason="FIFOs, RLIMIT_AS and SIGALRM are POSIX",
)

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

#: The address space the cases run in: about 200 MB for Python, NumPy and backprop, and
#: room for what a legitimate small input needs; each amplifying input below would take
#: gigabytes without its limit.
MEMORY_LIMIT = 1 << 30
#: Seconds per case: a FIFO that blocked a reader would hang forever.
TIME_LIMIT = 20


def _safetensors(path: Path, header: dict | bytes, data: bytes = b"") -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def _edit_header(src: Path, dst: Path, edit) -> Path:
    """A copy of safetensors file ``src`` whose parsed header ``edit(header)`` changed."""
    raw = src.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    text = edit(header)
    return _safetensors(dst, text if isinstance(text, bytes) else header, raw[8 + n :])


def _edit_train_state(run: Path, dst: Path, edit, big: str | None = None) -> Path:
    """A copy of run folder ``run`` whose checkpoint's train_state ``edit(ts)`` changed;
    the string ``"__BIG__"`` in it becomes the JSON number ``big``."""
    shutil.copytree(run, dst)
    ckpt = dst / "checkpoint.safetensors"

    def edit_header(header):
        ts = json.loads(header["__metadata__"]["train_state"])
        edit(ts)
        text = json.dumps(ts)
        header["__metadata__"]["train_state"] = text.replace('"__BIG__"', big or '"__BIG__"')
        return None

    _edit_header(ckpt, ckpt, edit_header)
    return dst


def _fake_mnist_bomb(folder: Path) -> Path:
    """MNIST files in ``folder/mnist``: small valid labels and test images, and training
    images whose 1 MB gzip stream inflates to 1 GiB behind a header declaring 60000 images."""
    d = folder / "mnist"
    d.mkdir(parents=True)
    from backprop.datasets import write_idx

    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(60000, np.uint8))
    write_idx(d / "t10k-images-idx3-ubyte.gz", np.zeros((10, 28, 28), np.uint8))
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.zeros(10, np.uint8))
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (60000, 28, 28))
    zeros = bytes(1 << 24)
    # gzip members, one after the other (a valid gzip file): 64 x 16 MiB of zeros
    parts = [gzip.compress(header + zeros, mtime=0)] + [gzip.compress(zeros, mtime=0)] * 63
    (d / "train-images-idx3-ubyte.gz").write_bytes(b"".join(parts))
    return folder


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, str]:
    """Every hostile file, by name (as strings, for the argv templates)."""
    F = tmp_path_factory.mktemp("hostile")
    f: dict[str, Path] = {"dir": F}
    for name in ("fifo.safetensors", "fifo.csv", "fifo.json", "fifo.toml"):
        os.mkfifo(F / name)
        f[name] = F / name
    quiet = ["--no-progress", "--no-plots"]
    # a toy run (checkpoint every epoch: --resume cases edit it) and a model trained on a CSV
    assert main(["train", "--epochs", "2", "--checkpoint-every", "1", "--out", str(F / "toy"),
                 *quiet]) == 0  # fmt: skip
    f["model"] = F / "toy" / "model.safetensors"
    rng = np.random.default_rng(0)
    rows = [f"{a:.4f},{b:.4f},{'xy'[i % 2]}" for i, (a, b) in enumerate(rng.random((60, 2)))]
    (F / "cls.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    assert main(["train", "--dataset", str(F / "cls.csv"), "--target", "label", "--epochs", "2",
                 "--out", str(F / "cls"), *quiet]) == 0  # fmt: skip
    f["cls.csv"], f["cls_model"] = F / "cls.csv", F / "cls" / "model.safetensors"
    rows = [f"{a:.4f},{b:.4f},{1e6 * c:.1f}" for a, b, c in rng.random((200, 3))]
    (F / "reg.csv").write_text("a,b,y\n" + "\n".join(rows) + "\n")
    f["reg.csv"] = F / "reg.csv"

    # model files whose declared sizes amplify
    config = {"sizes": [2] * 1_000_000, "activation": "sigmoid", "output_activation": "sigmoid",
              "loss": "l2", "dtype": "float64"}  # fmt: skip
    meta = {"format": "backprop.model", "format_version": "1", "config": json.dumps(config),
            "preprocessing": "null"}  # fmt: skip
    f["layers.safetensors"] = _safetensors(F / "layers.safetensors", {"__metadata__": meta})
    entries = ",".join(
        f'"t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}' for i in range(10_100)
    )
    f["tensors.safetensors"] = _safetensors(
        F / "tensors.safetensors",
        ('{"__metadata__":{"format":"backprop.model"},' + entries + "}").encode(),
    )
    f["header.safetensors"] = _safetensors(
        F / "header.safetensors", b"{" + b" " * (40 << 20) + b'"__metadata__": {}}'
    )

    def set_meta(key, value):
        def edit(header):
            header["__metadata__"][key] = value

        return edit

    f["version.safetensors"] = _edit_header(
        f["model"], F / "version.safetensors", set_meta("format_version", "\u00b9")
    )
    pre = {"feature_names": ["x1", "x2"], "mean": [0, 0], "scale": [1, 1], "target": None,
           "classes": ["a", "b", "c", "d", "e"]}  # fmt: skip
    f["classes5.safetensors"] = _edit_header(
        f["model"], F / "classes5.safetensors", set_meta("preprocessing", json.dumps(pre))
    )
    from backprop import MLP
    from backprop.io import save_model

    huge = MLP([2, 3, 2], "relu", "identity", "mse", seed=0)
    huge.load_state_dict({k: np.full_like(v, 1e308) for k, v in huge.state_dict().items()})
    save_model(F / "huge.safetensors", huge)
    f["huge.safetensors"] = F / "huge.safetensors"

    # weights files for explain
    (F / "nested.json").write_text('{"w": ' + "[" * 100_000 + "]" * 100_000 + "}")
    weights = {"w": [[0.15, 0.25, 0.35], [0.2, 0.3, 0.4]], "b1": [0.35] * 3,
               "u": [[0.4, 0.5], [0.45, 0.55], [0.5, 0.6]], "b2": [0.6, 0.6]}  # fmt: skip
    text = json.dumps(weights).replace("0.15", "1" + "0" * 400, 1)
    (F / "bigint.json").write_text(text)
    wide = {"w": [[0.1] * 40] * 30, "b1": [0.0] * 40, "u": [[0.1] * 2] * 40, "b2": [0.0] * 2}
    (F / "wide.json").write_text(json.dumps(wide))

    # config files
    configs = {
        "nested.toml": "layers = " + "[" * 100_000 + "]" * 100_000 + "\n",
        "nested_config.json": '{"layers": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "datetime.toml": "epochs = 1979-05-27T07:32:00Z\n",
        "data_dir.toml": "data_dir = 5\n",
        "fraction.toml": "epochs = 1.5\n",
        "bool.toml": "epochs = true\n",
        "big.toml": "# " + "x" * (2 << 20) + "\nepochs = 3\n",
        "big_lr.toml": "lr = " + "9" * 400 + "\n",
        "big_batch.toml": "batch_size = " + "9" * 400 + "\n",
    }
    for name, content in configs.items():
        (F / name).write_text(content)

    # CSV files
    (F / "classes.csv").write_text("a,y\n" + "\n".join(f"{i},c{i}" for i in range(100_000)))
    (F / "cells.csv").write_text("a,b\n1e308,-1e308\n0.5,0.5\n")
    # one line of 20 million commas: listed as 20 million cells before any check (160 MB)
    (F / "commas.csv").write_text("a,y\n" + "," * 20_000_000 + "\n")
    # 100,000 columns: the header checks were quadratic (over a minute)
    (F / "columns.csv").write_text(",".join(f"c{i}" for i in range(100_000)) + "\n")

    # hostile checkpoints: copies of the toy run
    def optimizer(**changes):
        return lambda ts: ts["optimizer"].update(changes)

    def long_history(ts):
        ts["history"]["epochs"] = ts["history"]["epochs"] * 20

    runs = {
        "step0": optimizer(schedule={"name": "step", "step_size": 0, "gamma": 0.1}),
        "tmax0": optimizer(schedule={"name": "cosine", "t_max": 0, "min_lr": 0.0}),
        "gamma": optimizer(schedule={"name": "exponential", "gamma": 1e308}),
        "bigt": optimizer(t="__BIG__"),
        "lr": optimizer(hyperparameters={"lr": "__BIG__", "weight_decay": 0.0}),
        "history": long_history,
    }
    for name, edit in runs.items():
        big = "1" + "0" * 400 if name == "bigt" else "1e400"
        f[f"run_{name}"] = _edit_train_state(F / "toy", F / f"run_{name}", edit, big)
    fifo_run = F / "run_fifo"
    shutil.copytree(F / "toy", fifo_run)
    (fifo_run / "config.toml").unlink()
    os.mkfifo(fifo_run / "config.toml")
    f["run_fifo"] = fifo_run

    f["bomb"] = _fake_mnist_bomb(F / "bomb")
    return {k.replace(".", "_"): str(v) for k, v in f.items()}


# (id, argv, environment, fragments every error line must hold); {name} is a hostile file,
# {dir} the folder that holds them. "command: what" ids: a table per command.
CASES: list[tuple[str, list[str], dict[str, str], list[str]]] = [
    # ------------------------------------------------------------------ train
    ("train: FIFO as the CSV", ["train", "--dataset", "{fifo_csv}", "--target", "y"], {},
     ["fifo.csv", "FIFO"]),
    ("train: FIFO as the config", ["train", "--config", "{fifo_toml}"], {}, ["fifo.toml", "FIFO"]),
    ("train: /dev/zero as the config", ["train", "--config", "/dev/zero"], {},
     ["/dev/zero", "device"]),
    ("train: config over 1 MiB", ["train", "--config", "{dir}/big.toml"], {},
     ["big.toml", "limit", "BACKPROP_MAX_CONFIG_BYTES"]),
    ("train: deeply nested TOML", ["train", "--config", "{dir}/nested.toml"], {},
     ["nested.toml", "nested too deeply"]),
    ("train: deeply nested JSON config", ["train", "--config", "{dir}/nested_config.json"], {},
     ["nested_config.json", "nested too deeply"]),
    ("train: TOML datetime for epochs", ["train", "--config", "{dir}/datetime.toml"], {},
     ["datetime.toml", "epochs", "expected an integer"]),
    ("train: data_dir = 5", ["train", "--config", "{dir}/data_dir.toml"], {},
     ["data_dir.toml", "data_dir", "expected a string"]),
    ("train: epochs = 1.5", ["train", "--config", "{dir}/fraction.toml"], {},
     ["fraction.toml", "epochs", "expected an integer"]),
    ("train: epochs = true", ["train", "--config", "{dir}/bool.toml"], {},
     ["bool.toml", "epochs", "expected an integer"]),
    ("train: --layers of 5e9 parameters", ["train", "--layers", "2,1000000000,2"], {},
     ["--layers", "5000000002 parameters", "BACKPROP_MAX_PARAMETERS"]),
    ("train: --layers of 1e10 parameters", ["train", "--layers", "2,100000,100000,2"], {},
     ["--layers", "parameters", "limit"]),
    ("train: --layers of 2000 sizes", ["train", "--layers", ",".join(["2"] * 2000)], {},
     ["--layers", "2000 layer sizes", "BACKPROP_MAX_LAYERS"]),
    ("train: --layers with a 40-digit size", ["train", "--layers", "2," + "9" * 40 + ",2"], {},
     ["--layers"]),
    ("train: --epochs 10^6", ["train", "--epochs", "1000000"], {},
     ["--epochs", "BACKPROP_MAX_EPOCHS"]),
    ("train: --epochs 10^20", ["train", "--epochs", "100000000000000000000"], {},
     ["--epochs", "not in the range 1<=x<=2**53"]),
    ("train: --n-samples 2*10^9", ["train", "--dataset", "moons", "--n-samples", "2000000000"],
     {}, ["moons: --n-samples asks for 2000000000 samples", "BACKPROP_MAX_SAMPLES"]),
    # counts and seeds beyond what a checkpoint holds: a run that starts must resume
    ("train: a 400-digit --seed", ["train", "--seed", "9" * 400], {},
     ["--seed", "9" * 60 + "... is not in the range 0<=x<=2**53"]),
    ("train: a 400-digit --early-stopping", ["train", "--early-stopping", "9" * 400], {},
     ["--early-stopping", "not in the range 0<=x<=2**53"]),
    ("train: a config's 400-digit lr", ["train", "--config", "{dir}/big_lr.toml"], {},
     ["big_lr.toml: lr = " + "9" * 60 + "...: expected a finite number"]),
    ("train: a config's 400-digit batch_size", ["train", "--config", "{dir}/big_batch.toml"], {},
     ["big_batch.toml: batch_size = " + "9" * 60 + "...", "1<=x<=2**53"]),
    ("train: CSV target with 10^5 classes",
     ["train", "--dataset", "{dir}/classes.csv", "--target", "y"], {},
     ["classes.csv", "1000 classes", "BACKPROP_MAX_CLASSES"]),
    ("train: CSV header of 100,000 columns",
     ["train", "--dataset", "{dir}/columns.csv", "--target", "c0"], {},
     ["columns.csv", "a header but no data rows"]),
    ("train: a CSV line of 20 million commas",
     ["train", "--dataset", "{dir}/commas.csv", "--target", "y"], {},
     ["commas.csv", "line 2 has at least 16777217 characters", "BACKPROP_MAX_CSV_LINE_CHARS"]),
    ("train: CSV over the limit", ["train", "--dataset", "{cls_csv}", "--target", "label"],
     {"BACKPROP_MAX_CSV_BYTES": "100"}, ["cls.csv", "the limit is 100 bytes"]),
    ("train: a limit that is not a number", ["train"], {"BACKPROP_MAX_EPOCHS": "lots"},
     ["BACKPROP_MAX_EPOCHS", "'lots'"]),
    ("train: --lr nan", ["train", "--lr", "nan"], {}, ["--lr", "finite"]),
    ("train: --dropout nan", ["train", "--dropout", "nan"], {}, ["--dropout", "finite"]),
    ("train: --weight-decay inf", ["train", "--weight-decay", "inf"], {},
     ["--weight-decay", "finite"]),
    ("train: --init-scale 1e308", ["train", "--init-scale", "1e308", "--seed", "2"], {},
     ["--init-scale", "overflow"]),
    ("train: MNIST gzip that inflates to 1 GiB",
     ["train", "--dataset", "mnist", "--data-dir", "{bomb}"], {},
     ["train-images-idx3-ubyte.gz", "trailing bytes"]),
    ("train: resume, step_size 0", ["train", "--resume", "{run_step0}", "--epochs", "4"], {},
     ["run_step0", "step_size"]),
    ("train: resume, cosine t_max 0", ["train", "--resume", "{run_tmax0}", "--epochs", "4"], {},
     ["run_tmax0", "t_max"]),
    ("train: resume, gamma 1e308", ["train", "--resume", "{run_gamma}", "--epochs", "4"], {},
     ["run_gamma", "gamma"]),
    ("train: resume, optimizer t = 10^400", ["train", "--resume", "{run_bigt}", "--epochs", "4"],
     {}, ["run_bigt", "optimizer t"]),
    ("train: resume, lr 1e400", ["train", "--resume", "{run_lr}", "--epochs", "4"], {},
     ["run_lr", "finite numbers"]),
    ("train: resume, history past the epochs limit",
     ["train", "--resume", "{run_history}", "--epochs", "4"], {"BACKPROP_MAX_EPOCHS": "5"},
     ["run_history", "more than 5 epochs", "BACKPROP_MAX_EPOCHS"]),
    ("train: resume, FIFO as config.toml", ["train", "--resume", "{run_fifo}", "--epochs", "4"],
     {}, ["config.toml", "FIFO"]),
    # --------------------------------------------------------------- evaluate
    ("evaluate: FIFO as the model", ["evaluate", "{fifo_safetensors}", "--dataset", "xor"], {},
     ["fifo.safetensors", "FIFO"]),
    ("evaluate: /dev/zero as the model", ["evaluate", "/dev/zero", "--dataset", "xor"], {},
     ["/dev/zero", "device"]),
    ("evaluate: a folder as the model", ["evaluate", "{dir}", "--dataset", "xor"], {},
     ["folder"]),
    ("evaluate: 3 MB model of 10^6 layer sizes",
     ["evaluate", "{layers_safetensors}", "--dataset", "xor"], {},
     # (its numbers are counted as they are read, past 1000 layer sizes' budget: a config
     # string of 3 million floats took 103 MiB before its list was checked)
     ["layers.safetensors", "more JSON numbers than 1000 layer sizes need",
      "BACKPROP_MAX_LAYERS"]),
    ("evaluate: header of 10100 tensors",
     ["evaluate", "{tensors_safetensors}", "--dataset", "xor"], {},
     ["tensors.safetensors", "10000 tensors", "BACKPROP_MAX_TENSORS"]),
    ("evaluate: 40 MiB header", ["evaluate", "{header_safetensors}", "--dataset", "xor"], {},
     ["header.safetensors", "header is", "BACKPROP_MAX_HEADER_BYTES"]),
    ("evaluate: format_version '\u00b9'", ["evaluate", "{version_safetensors}", "--dataset", "toy"],
     {}, ["version.safetensors", "format_version"]),
    ("evaluate: 5 class labels for 2 outputs",
     ["evaluate", "{classes5_safetensors}", "--dataset", "toy"], {},
     ["classes5.safetensors", "5 classes", "2 outputs"]),
    ("evaluate: weights that overflow", ["evaluate", "{huge_safetensors}", "--dataset", "toy"],
     {}, ["huge.safetensors", "NaN or inf"]),
    ("evaluate: classifier on a regression CSV",
     ["evaluate", "{model}", "--dataset", "{reg_csv}", "--target", "y"], {},
     ["reg.csv", "regression", "2 outputs"]),
    ("evaluate: MNIST gzip that inflates to 1 GiB",
     ["evaluate", "{model}", "--dataset", "mnist", "--data-dir", "{bomb}"], {},
     ["train-images-idx3-ubyte.gz", "trailing bytes"]),
    # ---------------------------------------------------------------- predict
    ("predict: FIFO as the model", ["predict", "{fifo_safetensors}", "{cls_csv}"], {},
     ["fifo.safetensors", "FIFO"]),
    ("predict: FIFO as the input", ["predict", "{cls_model}", "{fifo_csv}"], {},
     ["fifo.csv", "FIFO"]),
    ("predict: /dev/zero as the input", ["predict", "{cls_model}", "/dev/zero"], {},
     ["/dev/zero", "device"]),
    ("predict: a folder as the input", ["predict", "{cls_model}", "{dir}"], {}, ["folder"]),
    ("predict: cells of 1e308", ["predict", "{cls_model}", "{dir}/cells.csv"], {},
     ["cells.csv", "line 2", "too far"]),
    ("predict: weights that overflow", ["predict", "{huge_safetensors}", "{dir}/cells.csv"], {},
     ["huge.safetensors", "NaN or inf"]),
    # ----------------------------------------------------------------- export
    ("export: FIFO as the model", ["export", "{fifo_safetensors}", "{dir}/out.onnx"], {},
     ["fifo.safetensors", "FIFO"]),
    ("export: /dev/zero as the model", ["export", "/dev/zero", "{dir}/out.onnx"], {},
     ["/dev/zero", "device"]),
    ("export: 3 MB model of 10^6 layer sizes",
     ["export", "{layers_safetensors}", "{dir}/out.onnx"], {}, ["layers.safetensors", "limit"]),
    # ---------------------------------------------------------------- explain
    ("explain: FIFO as the weights", ["explain", "--weights", "{fifo_json}"], {},
     ["fifo.json", "FIFO"]),
    ("explain: /dev/zero as the weights", ["explain", "--weights", "/dev/zero"], {},
     ["/dev/zero", "device"]),
    ("explain: deeply nested weights", ["explain", "--weights", "{dir}/nested.json"], {},
     ["nested.json", "nested too deeply"]),
    ("explain: a 400-digit weight", ["explain", "--weights", "{dir}/bigint.json"], {},
     ["bigint.json", "w[0][0]", "finite number"]),
    ("explain: 1322 weights and biases", ["explain", "--weights", "{dir}/wide.json"], {},
     ["wide.json", "1322 weights", "at most 1000"]),
    ("explain: --t 1e300,-1e300", ["explain", "--t", "1e300,-1e300"], {}, ["overflows"]),
    ("explain: --t 1e300,-1e300 --json", ["explain", "--t", "1e300,-1e300", "--json"], {},
     ["overflows"]),
    ("explain: --eta nan", ["explain", "--eta", "nan", "--json"], {}, ["--eta", "finite"]),
    ("explain: --eta inf", ["explain", "--eta", "inf"], {}, ["--eta", "finite"]),
    ("explain: --steps 10^20", ["explain", "--steps", "99999999999999999999"], {},
     ["--steps", "10000"]),
    ("explain: --x nan", ["explain", "--x", "nan,1"], {}, ["--x", "finite"]),
    # -------------------------------------------------------------- gradcheck
    ("gradcheck: --tolerance nan", ["gradcheck", "--tolerance", "nan"], {},
     ["--tolerance", "finite"]),
    ("gradcheck: FIFO as the config", ["gradcheck", "--config", "{fifo_toml}"], {},
     ["fifo.toml", "FIFO"]),
    ("gradcheck: --layers of 5e9 parameters", ["gradcheck", "--layers", "2,1000000000,2"], {},
     ["--layers", "parameters"]),
    ("gradcheck: CSV target with 10^5 classes",
     ["gradcheck", "--dataset", "{dir}/classes.csv", "--target", "y"], {},
     ["classes.csv", "classes"]),
    # ------------------------------------------------------------- playground
    ("playground: FIFO as the weights", ["playground", "--weights", "{fifo_json}"], {},
     ["fifo.json", "FIFO"]),
    ("playground: /dev/zero as the weights", ["playground", "--weights", "/dev/zero"], {},
     ["/dev/zero", "device"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def results(hostile, tmp_path_factory) -> dict[str, dict]:
    """Every case's outcome, from one run of the driver under the memory limit."""
    work = tmp_path_factory.mktemp("hostile_runs")
    cases = []
    for k, (case_id, argv, env, _) in enumerate(CASES):
        argv = [a.format(**hostile) for a in argv]
        if argv[0] == "train" and "--resume" not in argv:
            argv += ["--out", str(work / f"run{k}"), "--no-progress", "--no-plots"]
        cases.append({"id": case_id, "argv": argv, "env": env})
    spec = work / "cases.json"
    spec.write_text(json.dumps({"cases": cases, "memory_limit": MEMORY_LIMIT,
                                "time_limit": TIME_LIMIT}))  # fmt: skip
    out = work / "results.json"
    env = dict(os.environ, PYTHONPATH=str(SRC), XDG_CACHE_HOME=str(work / "cache"))
    env.pop("BACKPROP_DATA", None)  # MNIST only from --data-dir: no download is ever tried
    proc = subprocess.run(
        [sys.executable, str(HERE / "hostile_driver.py"), str(spec), str(out)],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == "", proc.stderr[-3000:]  # nothing escaped the cases' own capture
    return json.loads(out.read_text())


@pytest.mark.parametrize("case_id", [c[0] for c in CASES])
def test_hostile_input_is_one_line_exit_2(results, case_id):
    fragments = next(c[3] for c in CASES if c[0] == case_id)
    r = results[case_id]
    assert r["status"] == 2, r
    err = r["stderr"]
    assert err.count("\n") == 1 and err.startswith("Error: "), repr(err)
    assert "Traceback" not in err and "Warning" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert r["seconds"] < TIME_LIMIT


def test_hostile_inputs_stay_within_memory(results):
    """Peak resident memory of the process that ran every case (under RLIMIT_AS), above
    what it took to import backprop."""
    start = results[""]["peak_mb"]
    peak = max(r["peak_mb"] for r in results.values())
    print(f"{len(CASES)} hostile cases: peak resident memory {peak:.0f} MB ({start:.0f} MB "
          "after the imports)")  # fmt: skip
    assert peak - start < 300


def test_every_command_has_a_table():
    from backprop.cli import cli

    covered = {case_id.split(":")[0] for case_id, *_ in CASES}
    assert covered == set(cli.commands), set(cli.commands) ^ covered


# -------------------------------------------------------- in a real process, end to end
def _limited() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "{fifo_safetensors}", "--dataset", "xor"],
        ["explain", "--weights", "/dev/zero"],
        ["train", "--layers", "2,1000000000,2"],
    ],
)
def test_hostile_input_in_a_real_process(hostile, tmp_path, argv):
    proc = subprocess.run(
        [sys.executable, "-m", "backprop", *[a.format(**hostile) for a in argv]],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(SRC)), capture_output=True,
        text=True, timeout=60, preexec_fn=_limited,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("Error: "), proc.stderr
    assert proc.stdout == ""


def _run_python_with_ctrl_c(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -c code`` with SIGINT's default action. A suite started in the background by
    a non-interactive shell has SIGINT ignored, and the child would inherit that; at a
    terminal it is the default (see test_cli.py::test_ctrl_c_keeps_the_last_completed_epoch)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, env=dict(os.environ, PYTHONPATH=str(SRC)),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("arrives_as", ["KeyboardInterrupt", "a library's ImportError"])
def test_ctrl_c_while_the_command_line_imports_is_one_line(tmp_path, arrives_as):
    """A Ctrl-C while ``import backprop`` runs (delivered by an import hook,
    deterministically, where a real one lands at random): one line, no traceback, and the
    process still ends by SIGINT. Inside a C extension's initialisation a Ctrl-C comes back
    as that library's ImportError (NumPy's "PyCapsule_Import could not import module"),
    with no KeyboardInterrupt left in it: that is the interruption too."""
    code = (
        "import os, signal, sys, time\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name != 'backprop.network':\n"
        "            return None\n"
        f"        if {arrives_as == 'KeyboardInterrupt'}:\n"
        "            raise KeyboardInterrupt\n"
        "        try:\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "            time.sleep(5)\n"
        "        except KeyboardInterrupt:\n"
        "            pass\n"
        "        raise ImportError('PyCapsule_Import could not import module \"datetime\"')\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv[0] = 'backprop'\n"
        "import backprop\n"
    )
    proc = _run_python_with_ctrl_c(code, tmp_path)
    assert proc.stderr == "Error: interrupted\n"
    assert proc.returncode == -signal.SIGINT


def test_ctrl_c_at_any_moment_of_a_short_run(tmp_path):
    """A real Ctrl-C at several moments of ``backprop train``: while importing, while
    loading, while training. Each ends with at most one line on stderr, never a traceback
    (a run that finished before the signal prints nothing). (Python's own start, the first
    ~30 ms before any of backprop's code runs, is the one moment left to Python.)"""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    # SIGTERM too (kill, timeout): while the command started it killed it, status 143, no word
    moments = [(0.15, signal.SIGINT), (0.3, signal.SIGINT), (0.6, signal.SIGINT),
               (1.0, signal.SIGINT), (0.15, signal.SIGTERM), (0.3, signal.SIGTERM)]  # fmt: skip
    for k, (delay, sig) in enumerate(moments):
        proc = subprocess.Popen(
            [sys.executable, "-m", "backprop", "train", "--epochs", "300", "--no-progress",
             "--no-plots", "--out", str(tmp_path / f"r{k}")],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, (delay, err)
        assert err.count("\n") <= 1, (delay, err)
        assert proc.returncode in (0, 130, -signal.SIGINT), (delay, sig, proc.returncode, err)


def test_sigterm_after_the_command_is_done_leaves_no_traceback(tmp_path):
    """SIGTERM is a Ctrl-C from the command's imports to its end, then its default again:
    in Python's exit (an atexit callback: mpirun's SIGTERM meets the MPI exit barrier
    there) it was a KeyboardInterrupt, printed as 'Exception ignored ... Traceback'."""
    script = tmp_path / "backprop"  # the command line, as the console script is named
    flag = tmp_path / "exiting"
    script.write_text(
        "import atexit, sys, time\n"
        "from backprop.cli import main\n"
        f"atexit.register(lambda: (open({str(flag)!r}, 'w').close(), time.sleep(5)))\n"
        "sys.exit(main(['train', '--epochs', '2', '--out', 'r', '--no-plots',"
        " '--no-progress']))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(SRC)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM and "Traceback" not in err, (proc.returncode, err)
    assert (tmp_path / "r" / "model.safetensors").exists()  # the work was done and kept


# ------------------------------------------------------------------ hostile but valid
def test_huge_feature_values_are_standardised_without_warnings(run_cli, tmp_path):
    """Features near 1e300 overflow the textbook mean and variance; the statistics are
    computed on the column divided by its largest magnitude instead."""
    import math
    from fractions import Fraction

    column = [1e300 * (i % 3 - 1) + 1e298 * (i % 7) for i in range(60)]
    rows = "\n".join(f"{a!r},{i % 5},{i % 2}" for i, a in enumerate(column))
    (tmp_path / "big.csv").write_text("a,b,y\n" + rows + "\n")
    rc, out, err = run_cli("train", "--dataset", str(tmp_path / "big.csv"), "--target", "y",
                           "--test-fraction", "0", "--epochs", "2", "--out", str(tmp_path / "r"),
                           "--no-progress", "--no-plots")  # fmt: skip
    assert rc == 0 and err == "", err
    from backprop.io import load_model

    pre = load_model(tmp_path / "r" / "model.safetensors").preprocessing
    # the reference: exact rational arithmetic on the whole column (test fraction 0), on
    # the column over its largest magnitude so that the result converts to a float
    # (Python 3.10's statistics overflows on these values)
    m = max(abs(x) for x in column)
    q = [Fraction(x) / Fraction(m) for x in column]
    mean_q = sum(q) / len(q)
    var_q = sum((v - mean_q) ** 2 for v in q) / len(q)
    assert pre.mean[0] == pytest.approx(float(mean_q) * m, rel=1e-12)
    assert pre.scale[0] == pytest.approx(math.sqrt(float(var_q)) * m, rel=1e-12)


def test_gzip_is_never_inflated_past_what_the_header_declares(tmp_path):
    from backprop.datasets import DatasetError, read_idx
    from backprop.datasets.idx import decompress_gzip

    data = gzip.compress(bytes(10_000))
    assert len(decompress_gzip(data, "x", max_size=100)) == 101  # stops one byte past
    assert len(decompress_gzip(data + gzip.compress(b"ab"), "x")) == 10_002  # two members
    header = bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big")
    (tmp_path / "x.gz").write_bytes(gzip.compress(header + bytes(10_000)))
    with pytest.raises(DatasetError, match="trailing bytes: more than 18 bytes"):
        read_idx(tmp_path / "x.gz")
    big = bytes([0, 0, 8, 2]) + (100_000).to_bytes(4, "big") * 2  # declares 10^10 bytes
    (tmp_path / "big.gz").write_bytes(gzip.compress(big))
    with pytest.raises(DatasetError, match=r"declares 10000000012 bytes .* BACKPROP_MAX_IDX"):
        read_idx(tmp_path / "big.gz")


# ------------------------------------------------------------------------ the pieces
def test_special_files_are_refused_by_type_before_reading(tmp_path):
    import socket

    from backprop._limits import open_regular, read_user_file

    sock = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock))
        os.mkfifo(tmp_path / "fifo")
        for path, what in [(sock, "a socket"), (tmp_path / "fifo", "a FIFO"),
                           ("/dev/null", "a device"), (tmp_path, "a folder")]:  # fmt: skip
            with pytest.raises(ValueError, match=f"thing {path} is {what}"):
                open_regular(path, "thing")
    (tmp_path / "ok").write_bytes(b"12345")
    assert read_user_file(tmp_path / "ok", "thing", "config_bytes") == b"12345"
    with pytest.raises(ValueError, match="thing .* does not exist"):
        read_user_file(tmp_path / "absent", "thing", "config_bytes")


def test_limits_are_raised_by_their_environment_variable(tmp_path, monkeypatch):
    from backprop._limits import LIMITS, limit, read_user_file

    (tmp_path / "f").write_bytes(b"x" * 100)
    monkeypatch.setenv("BACKPROP_MAX_CONFIG_BYTES", "99")
    with pytest.raises(ValueError, match=r"is 100 bytes; the limit is 99 bytes \(set BACKPROP_MAX"):
        read_user_file(tmp_path / "f", "config file", "config_bytes")
    monkeypatch.setenv("BACKPROP_MAX_CONFIG_BYTES", "1_000")
    assert limit("config_bytes") == 1000
    assert len(read_user_file(tmp_path / "f", "config file", "config_bytes")) == 100
    for name, lim in LIMITS.items():
        assert lim.env == "BACKPROP_MAX_" + name.upper() and lim.default > 0


def test_json_parse_stops_past_its_object_budget(monkeypatch):
    from backprop.io import ModelFileError, parse_json

    monkeypatch.setenv("BACKPROP_MAX_TENSORS", "3")
    assert parse_json('{"a": {}, "b": {}, "c": {}}', "the header", "f", "tensors", extra=1)
    with pytest.raises(ModelFileError, match="more than 3 tensors; the limit is 3 tensors"):
        parse_json('{"a": {}, "b": {}, "c": {}, "d": {}}', "the header", "f", "tensors", extra=1)


def test_schedules_and_optimizers_refuse_values_that_break_them():
    from backprop.optimizers import SGD, Adam, CosineLR, ExponentialLR, Nesterov, RMSprop, StepLR

    bad = [
        lambda: StepLR(step_size=0), lambda: StepLR(gamma=1e308), lambda: StepLR(step_size=2.5),
        lambda: CosineLR(t_max=0), lambda: CosineLR(min_lr=float("nan")),
        lambda: ExponentialLR(gamma=0.0), lambda: ExponentialLR(gamma=float("nan")),
        lambda: Adam(eps=-1), lambda: Adam(eps=0.0), lambda: RMSprop(eps=float("inf")),
        lambda: Nesterov(momentum=0.0), lambda: SGD(weight_decay=float("inf")),
    ]  # fmt: skip
    for make in bad:
        with pytest.raises(ValueError):
            make()
    assert Nesterov(momentum=0.5).momentum == 0.5 and StepLR(5, 1.0)(1.0, 12) == 1.0


def test_write_atomic_claims_and_names_the_file(tmp_path, monkeypatch):
    from backprop.io import write_atomic
    from backprop.io.safetensors import WriteError

    write_atomic(tmp_path / "a", b"one", exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomic(tmp_path / "a", b"two", exclusive=True)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):  # a dangling symlink is something: never followed
        write_atomic(tmp_path / "link", b"two", exclusive=True)
    assert not (tmp_path / "elsewhere").exists()
    with pytest.raises(WriteError, match=f"cannot write {tmp_path / 'no' / 'b'}: "):
        write_atomic(tmp_path / "no" / "b", b"x")
    assert (tmp_path / "a").read_bytes() == b"one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "link"]


def test_write_atomic_keeps_modes_and_never_replaces_a_device(tmp_path):
    # `backprop export m.safetensors /dev/null` (as root) replaced the device itself with a
    # regular file, and an existing chmod 600 file came back 0644
    from backprop.io import write_atomic
    from backprop.io.safetensors import WriteError

    private = tmp_path / "private.onnx"
    private.write_bytes(b"old")
    private.chmod(0o600)
    write_atomic(private, b"new")
    assert private.read_bytes() == b"new" and stat.S_IMODE(private.stat().st_mode) == 0o600
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    null = tmp_path / "null"
    null.symlink_to(os.devnull)  # as /dev/stdout is a symlink to a descriptor
    for path, kind in ((fifo, "a FIFO"), (null, "a character device")):
        with pytest.raises(WriteError, match=f"^cannot write {path}: it is {kind}, not a "):
            write_atomic(path, b"x")
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and null.is_symlink()
    # a descriptor open on a regular file (`> out.onnx`): the rename replaced the link
    # (/dev/stdout itself, as root), since what it points to is a regular file
    with open(tmp_path / "out.onnx", "wb") as out:
        fd_link = tmp_path / "stdout"
        fd_link.symlink_to(f"/proc/self/fd/{out.fileno()}")
        with pytest.raises(WriteError, match=f"names the open file descriptor {out.fileno()}, "):
            write_atomic(fd_link, b"x")
        with pytest.raises(WriteError, match="names the open file descriptor"):
            write_atomic(f"/dev/fd/{out.fileno()}", b"x")
    assert fd_link.is_symlink() and (tmp_path / "out.onnx").read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fifo", "null", "out.onnx", "private.onnx", "stdout"
    ]  # fmt: skip


def test_the_command_line_is_only_python_m_backprop(monkeypatch):
    # `python tool.py -m backprop` counted as the command line (its SIGTERM, its excepthook)
    from backprop._interrupts import is_the_command_line

    monkeypatch.setattr(sys, "argv", ["tool.py"])
    cases = {
        ("python", "-m", "backprop", "train"): True,
        ("python", "-W", "error", "-X", "dev", "-m", "backprop"): True,
        ("python", "-mbackprop"): True,
        ("python", "tool.py", "-m", "backprop"): False,
        ("python", "-c", "import backprop", "-m", "backprop"): False,
        ("python", "-m", "pytest", "-m", "backprop"): False,
    }
    for argv, expected in cases.items():
        monkeypatch.setattr(sys, "orig_argv", list(argv), raising=False)
        assert is_the_command_line() is expected, argv


def test_a_ctrl_c_that_python_swallows_still_stops_the_run(tmp_path):
    """A Ctrl-C whose KeyboardInterrupt is raised inside a garbage-collection or weakref
    callback (matplotlib's transforms have them) is printed by Python as 'Exception ignored
    in ...' with a traceback, and dropped: the run carried on to the end and exited 0. Here
    it is delivered inside a gc callback once training has started, deterministically."""
    out = tmp_path / "run"
    code = (
        "import gc, os, signal, sys\n"
        f"sys.argv = ['backprop', 'train', '--epochs', '3000', '--no-progress', "
        f"'--no-plots', '--out', {str(out)!r}]\n"
        "import backprop\n"
        "from backprop.cli import main\n"
        "fired = []\n"
        "def interrupt_inside_a_gc_callback(phase, info):\n"
        f"    if fired or not os.path.exists({str(out / 'checkpoint.safetensors')!r}):\n"
        "        return\n"
        "    fired.append(True)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    for _ in range(10000):  # the handler runs here, inside the callback\n"
        "        pass\n"
        "gc.callbacks.append(interrupt_inside_a_gc_callback)\n"
        "gc.set_threshold(20)\n"
        "sys.exit(main())\n"
    )
    proc = _run_python_with_ctrl_c(code, tmp_path)
    assert proc.returncode == 130, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("Interrupted:"), proc.stderr
    assert "continue from epoch" in proc.stderr and (out / "model.safetensors").exists()


def _backprop(args: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess:
    """``python -m backprop ARGS`` in a fresh process (its own descriptors and environment)."""
    env = dict(os.environ, PYTHONPATH=str(SRC), **kwargs.pop("env", {}))
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run([sys.executable, "-m", "backprop", *args], cwd=cwd, env=env,
                          timeout=120, **kwargs)  # fmt: skip


def test_standard_output_that_fails_is_named_and_the_run_folder_is_released(tmp_path):
    """`train >/dev/full` said '[Errno 28] No space left on device', naming nothing, and
    left a folder holding only config.toml that refused the same --out ever after; a folder
    of the user's own keeps itself, without the claim."""
    mine = tmp_path / "mine"
    mine.mkdir()
    for out in (tmp_path / "new", mine):
        args = ["train", "--dataset", "moons", "--epochs", "2", "--out", str(out)]
        with open("/dev/full", "w") as full:
            proc = _backprop(args, tmp_path, capture_output=False, stdout=full,
                             stderr=subprocess.PIPE)  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr == "Error: cannot write standard output: No space left on device\n"
    assert not (tmp_path / "new").exists() and list(mine.iterdir()) == []
    # the folders made on the way go too: --out deep/er/run, and a first run's runs/
    for args in (["--out", "deep/er/run"], []):
        with open("/dev/full", "w") as full:
            proc = _backprop(["train", "--dataset", "moons", "--epochs", "2", *args], tmp_path,
                             capture_output=False, stdout=full, stderr=subprocess.PIPE)  # fmt: skip
        assert proc.returncode == 2, proc.stderr
    assert not (tmp_path / "deep").exists() and not (tmp_path / "runs").exists()
    # and only those: the user's own empty results/ named through a folder that was not
    # there (typo/../results) was counted as made, and removed
    (tmp_path / "results").mkdir()
    with open("/dev/full", "w") as full:
        proc = _backprop(["train", "--epochs", "2", "--out", "typo/../results/run1"], tmp_path,
                         capture_output=False, stdout=full, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert (tmp_path / "results").is_dir() and list((tmp_path / "results").iterdir()) == []
    proc = _backprop(["train", "--dataset", "moons", "--epochs", "2", "--out", str(mine),
                      "--no-progress", "--no-plots"], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # the commands that print their result (click.echo tries an empty write first and
    # ignores its error: silencing stdout there sent the result to /dev/null, status 0)
    for args in (["predict", str(mine)], ["evaluate", str(mine), "--json"],
                 ["explain", "--json"], ["--help"]):  # fmt: skip
        with open("/dev/full", "w") as full:
            proc = _backprop(args, tmp_path, capture_output=False, stdout=full,
                             stderr=subprocess.PIPE)  # fmt: skip
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr == "Error: cannot write standard output: No space left on device\n"


@pytest.mark.parametrize("unbuffered", ["1", ""])
@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_output_cut_short_by_the_disk_is_an_error_unbuffered_too(tmp_path, unbuffered, encoding):
    """With PYTHONUNBUFFERED=1 (python -u; common in containers and CI) Python's text
    stream drops what a short write left unwritten: `predict > out.csv` on a disk that
    filled, or past a size limit, ended with status 0 and the first 4,096 bytes. With an
    ASCII stdout click writes through a text stream of its own, around the buffer: the
    error named nothing, and Python's flush at exit printed 'Exception ignored' (120)."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    assert main(["train", "--dataset", "moons", "--epochs", "1", "--out",
                 str(tmp_path / "run"), "--no-progress", "--no-plots"]) == 0  # fmt: skip
    out = tmp_path / "predicted.csv"
    with open(out, "w") as f:
        env = {"PYTHONUNBUFFERED": unbuffered, "PYTHONIOENCODING": encoding}
        proc = _backprop(["predict", "run"], tmp_path, env=env, capture_output=False,
                         stdout=f, stderr=subprocess.PIPE, preexec_fn=limit)  # fmt: skip
    assert out.stat().st_size == 1024
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "Error: cannot write standard output: File too large\n"


@pytest.mark.parametrize(
    "value, traceback",
    [("1", True), ("on", True), ("false", False), ("no", False), ("0", False), (" ", False)],
)
def test_backprop_debug_is_on_only_when_it_says_so(run_cli, monkeypatch, value, traceback):
    # BACKPROP_DEBUG=false (or no, off) printed the traceback, with status 1 for 2
    from backprop.io import ModelFileError

    monkeypatch.setenv("BACKPROP_DEBUG", value)
    if traceback:
        with pytest.raises(ModelFileError, match="/nonexistent/run does not exist"):
            run_cli("predict", "/nonexistent/run")
    else:
        rc, _, err = run_cli("predict", "/nonexistent/run")
        assert rc == 2 and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "value, said",
    [("garbage", "'garbage' is not a shell completion instruction; expected SHELL_source"),
     ("bash_complete", "bash_complete needs the variable COMP_WORDS, which the shell's")],
)  # fmt: skip
def test_a_shell_completion_variable_that_is_not_one_is_one_line(run_cli, monkeypatch, value,
                                                                   said):  # fmt: skip
    # _BACKPROP_COMPLETE=garbage ended every command with status 1 and no word; bash_complete
    # outside a shell was "internal error: KeyError: 'COMP_WORDS'"
    monkeypatch.setenv("_BACKPROP_COMPLETE", value)
    monkeypatch.delenv("COMP_WORDS", raising=False)
    rc, out, err = run_cli("train", "--epochs", "1", "--no-plots")
    assert rc == 2 and out == "" and err.startswith(f"Error: _BACKPROP_COMPLETE={said}"), err
    assert err.count("\n") == 1


def test_a_completion_instruction_with_spaces_around_it_completes(tmp_path):
    # 'bash_source ' passed the check once stripped, but click read it as it was: status 1,
    # nothing printed
    proc = _backprop([], tmp_path, env={"_BACKPROP_COMPLETE": "bash_source "})
    assert proc.returncode == 0 and "_backprop_completion()" in proc.stdout, proc.stderr


def test_a_backend_matplotlib_refuses_is_named_before_training(tmp_path):
    """MPLBACKEND=nonsense failed the run after training, naming no variable ('Key backend:
    'nonsense' is not a valid value for backend'), though the plots are drawn on Agg."""
    env = {"MPLBACKEND": "nonsense"}
    args = ["train", "--epochs", "1", "--no-progress", "--out"]
    proc = _backprop([*args, "r"], tmp_path, env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("Error: MPLBACKEND='nonsense' is not a backend matplotlib")
    assert proc.stdout == "" and not (tmp_path / "r").exists()
    proc = _backprop([*args, "r", "--no-plots"], tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr


def test_unbuffered_output_is_the_buffered_output(tmp_path):
    """Written byte by byte unbuffered, each write was encoded on its own: an encoding with
    a byte-order mark (utf-8-sig, utf-16) put one before every write (7 in train's output;
    a CSV reader then read the header 'true' as '\\ufefftrue')."""
    assert main(["train", "--epochs", "2", "--out", str(tmp_path / "run"), "--no-progress",
                 "--no-plots"]) == 0  # fmt: skip
    outputs = {}
    for unbuffered in ("1", ""):
        env = {"PYTHONUNBUFFERED": unbuffered, "PYTHONIOENCODING": "utf-8-sig"}
        proc = _backprop(["predict", "run"], tmp_path, env=env, capture_output=False,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        outputs[unbuffered] = proc.stdout
    assert outputs["1"] == outputs[""] and outputs["1"].count(b"\xef\xbb\xbf") == 1


@pytest.mark.parametrize(
    "args, what",
    [(["explain", "--json"], "the step"), (["evaluate", "RUN"], "the metrics"),
     (["predict", "RUN"], "the predictions")],
)  # fmt: skip
def test_a_closed_standard_output_is_refused_where_the_result_is_printed(tmp_path, args, what):
    """`predict RUN >&-` (and evaluate, explain) exited 0 with nothing anywhere: Python sets
    sys.stdout to None and every print is dropped."""
    run = tmp_path / "run"
    if "RUN" in args:
        assert main(["train", "--epochs", "2", "--out", str(run), "--no-progress",
                     "--no-plots"]) == 0  # fmt: skip
    args = [str(run) if a == "RUN" else a for a in args]
    proc = _backprop(args, tmp_path, capture_output=False, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"Error: standard output is closed: {what} would be lost")


def test_a_terminal_of_zero_columns_still_gets_the_output(tmp_path):
    """COLUMNS=0 at a terminal (FORCE_COLOR makes rich take the pipe for one) printed
    nothing at all, with status 0."""
    run = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--out", str(run), "--no-progress", "--no-plots"]) == 0
    proc = _backprop(["evaluate", str(run)], tmp_path, env={"FORCE_COLOR": "1", "COLUMNS": "0"})
    assert proc.returncode == 0 and "accuracy" in proc.stdout, (proc.stdout, proc.stderr)
    # and train's epoch lines (its progress display made a console of its own, 0 wide)
    proc = _backprop(["train", "--epochs", "2", "--out", str(tmp_path / "again"), "--no-plots"],
                     tmp_path, env={"FORCE_COLOR": "1", "COLUMNS": "0"})  # fmt: skip
    assert proc.returncode == 0 and "epoch 2/2" in proc.stdout, (proc.stdout, proc.stderr)


def test_force_color_keeps_the_live_bar_out_of_a_pipe(tmp_path):
    """FORCE_COLOR=1 (set by many CI systems) made rich take the pipe for a terminal: the
    log held the live bar's frames, cursor moves and erasures (86 escape sequences in 3
    epochs); docs/cli.md says a pipe or a file gets the epoch lines alone."""
    proc = _backprop(["train", "--epochs", "3", "--out", str(tmp_path / "r"), "--no-plots"],
                     tmp_path, env={"FORCE_COLOR": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "epoch 3/3" in proc.stdout and "\x1b" not in proc.stdout + proc.stderr


def test_a_long_error_line_keeps_its_reason_and_a_failing_stderr_keeps_the_status(tmp_path):
    """A 5,000-character path was cut to 'Error: bbbb...bbb... (cut)', losing 'File name
    too long'; with stderr on /dev/full the error line's own OSError escaped (status 1)."""
    long_out = "/".join(["b" * 200] * 25)
    proc = _backprop(["train", "--out", long_out], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.rstrip().endswith("File name too long") and "characters cut" in proc.stderr
    assert len(proc.stderr) < 1100
    (tmp_path / "afile").write_text("mine\n")
    with open("/dev/full", "w") as full:
        proc = _backprop(["train", "--out", str(tmp_path / "afile")], tmp_path,
                         capture_output=False, stdout=subprocess.DEVNULL, stderr=full)  # fmt: skip
    assert proc.returncode == 2


def test_a_leftover_mpi_rank_variable_does_not_silence_the_run(tmp_path):
    """PMI_RANK=1 left in the environment, with no size beside it, made `train` a silent
    no-op (every file and line left to a rank 0 that did not exist)."""
    proc = _backprop(["train", "--epochs", "2", "--out", str(tmp_path / "run"), "--no-progress",
                      "--no-plots"], tmp_path, env={"PMI_RANK": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Trained on toy" in proc.stdout and (tmp_path / "run" / "model.safetensors").exists()


def test_output_closed_during_a_quiet_run_is_said_once_the_run_is_whole(tmp_path):
    """`train --no-progress | head -1`: nothing is printed while it trains, so the closed
    pipe is met only at the summary table, after every file is saved; that ended with
    status 1 and no word (docs/cli.md promises 130 and 'Output closed')."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "backprop", "train", "--epochs", "1500", "--no-progress",
         "--no-plots", "--out", str(out)],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(SRC)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in proc.stdout:  # the header, up to its last line (then nothing until the end)
        if line.startswith("Run "):
            break
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, err
    assert err == f"Output closed after training: the run is complete in {out} (backprop " \
        f"evaluate {out} prints its metrics)\n"  # fmt: skip
    assert (out / "model.safetensors").exists() and (out / "summary.json").exists()


def test_evaluate_json_is_strict_json_when_a_metric_overflows(run_cli, tmp_path):
    # targets near 1e160: the MSE overflows to inf, which evaluate --json wrote as Infinity
    # (no JSON parser takes it; summary.json writes null)
    from backprop import MLP
    from backprop.io import save_model

    save_model(tmp_path / "m.safetensors", MLP([2, 3, 1], "tanh", "identity", "mse", seed=0))
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},{1e160 * (1 + a):.6g}" for a, b in rng.normal(size=(40, 2))]
    (tmp_path / "big.csv").write_text("a,b,y\n" + "\n".join(rows) + "\n")
    rc, out, err = run_cli("evaluate", str(tmp_path / "m.safetensors"), "--dataset",
                           str(tmp_path / "big.csv"), "--target", "y", "--json")  # fmt: skip
    assert rc == 0, err

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    report = json.loads(out, parse_constant=refuse)
    assert report["mse"] is None and report["mae"] > 1e159


def test_a_ctrl_c_inside_a_deferred_block_waits_for_its_end(monkeypatch):
    # a Ctrl-C during `import onnx` (protobuf's C initialisation) ended export with a
    # segmentation fault or 'terminate called ... nanobind::python_error'
    from backprop import _interrupts

    monkeypatch.setattr(_interrupts, "_ctrl_c", [])  # (this process's record stays clean)
    before = signal.signal(signal.SIGINT, _interrupts.on_interrupt)
    try:
        reached = []
        with pytest.raises(KeyboardInterrupt):
            with _interrupts.deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler runs here, and returns
                reached.append(True)
        assert reached == [True]
        with _interrupts.deferred():  # nothing waiting: nothing raised
            pass
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("args", [["explain", "--steps", "2000"], ["explain", "--json",
                                  "--steps", "2000"]])  # fmt: skip
def test_a_reader_that_stops_early_ends_the_command_quietly_and_well(args):
    # `explain --steps 2000 | head` ended 1 with no line saying why, predict's 0
    proc = subprocess.Popen([sys.executable, "-m", "backprop", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    with proc.stdout, proc.stderr:
        proc.stdout.read(10)
        proc.stdout.close()
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""


def test_export_to_a_full_stdout_writes_its_file_and_succeeds(tmp_path):
    # its 'Wrote' line went to stdout: >/dev/full failed the command after the file was made
    pytest.importorskip("onnx", reason="ONNX export needs the onnx extra")
    from backprop import MLP
    from backprop.io import save_model

    save_model(tmp_path / "m.safetensors", MLP([2, 3, 2], seed=0))
    command = [sys.executable, "-m", "backprop", "export", str(tmp_path / "m.safetensors"),
               str(tmp_path / "m.onnx")]  # fmt: skip
    with open("/dev/full", "w") as full:
        proc = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(f"Wrote {tmp_path / 'm.onnx'}")
    assert (tmp_path / "m.onnx").stat().st_size > 0


def _train_csv(run_cli, folder, name: str, rows: list[str], *options: str) -> tuple[int, str]:
    """``backprop train`` on the CSV ``a,b,y`` of ``rows`` written to ``folder/name``, into
    ``folder/out``: (exit status, stderr)."""
    (folder / name).write_text("a,b,y\n" + "\n".join(rows) + "\n")
    rc, _, err = run_cli("train", "--dataset", str(folder / name), "--target", "y",
                         "--out", str(folder / "out"), "--no-progress", *options)  # fmt: skip
    return rc, err


def test_predict_writes_regression_values_that_read_back_exactly(run_cli, tmp_path):
    # 9 significant digits moved a target near 1.7e9 by up to 4.6: its 'true' column matched
    # none of the file's values, and metrics recomputed from predict's output drifted
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    y = 1.7e9 + np.round(100 * x[:, 0] + rng.normal(size=80), 3)
    rows = [f"{a!r},{b!r},{t!r}" for (a, b), t in zip(x.tolist(), y.tolist(), strict=True)]
    rc, err = _train_csv(run_cli, tmp_path, "big.csv", rows, "--epochs", "3", "--no-plots")
    assert rc == 0, err
    rc, out, err = run_cli("predict", str(tmp_path / "out"))
    assert rc == 0, err
    header, *lines = out.splitlines()
    assert header == "true,y"
    true = [float(line.split(",")[0]) for line in lines]
    assert set(true) <= set(y.tolist()) and len(true) == 20
    # a float32 model's own outputs, unscaled: float32's shortest text, not the double's 17
    (tmp_path / "f32").mkdir()
    options = ["--epochs", "1", "--dtype", "float32", "--target-scaling", "none", "--no-plots"]
    rc, err = _train_csv(run_cli, tmp_path / "f32", "big.csv", rows, *options)
    assert rc == 0, err
    rc, out, err = run_cli("predict", str(tmp_path / "f32" / "out"))
    assert rc == 0, err
    for line in out.splitlines()[1:]:
        text = line.split(",")[1]
        assert str(np.float32(text)) == text  # (4.284335136413574 for 4.284335)


def test_a_regression_run_has_no_accuracy_and_a_constant_target_is_refused(run_cli, tmp_path):
    # 0/1 values under --task regression (and a constant target, centred to 0s) got
    # accuracy columns in history.csv and an accuracy.png; the constant one trained to R^2 0
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    rows = [f"{a!r},{b!r},{int(a > 0)}" for a, b in x.tolist()]
    rc, err = _train_csv(run_cli, tmp_path, "bin.csv", rows, "--task", "regression",
                         "--target-scaling", "none", "--epochs", "2")  # fmt: skip
    assert rc == 0, err
    header = (tmp_path / "out" / "history.csv").read_text().splitlines()[0]
    assert "accuracy" not in header and not (tmp_path / "out" / "accuracy.png").exists()
    (tmp_path / "const").mkdir()
    rows = [f"{a!r},{b!r},42.5" for a, b in x.tolist()]
    rc, err = _train_csv(run_cli, tmp_path / "const", "const.csv", rows)
    assert rc == 2 and "the target holds one value (42.5) in every training row" in err, err
    assert not (tmp_path / "const" / "out").exists()
    # a model is still scored on such a file (evaluate reads it): its errors are measured
    const = str(tmp_path / "const" / "const.csv")
    rc, out, err = run_cli("evaluate", str(tmp_path / "out"), "-d", const, "--target", "y",
                           "--json")  # fmt: skip
    assert rc == 0 and json.loads(out)["mse"] > 0, err


def test_no_test_split_of_one_row_classes_says_why(run_cli, tmp_path):
    # prices written '$123.45' read as 200 classes of one row: the stratified split held
    # none out, and predict said the 200 rows were too few for the test fraction
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},${abs(a) * 100 + 100:.2f}" for a, b in rng.normal(size=(200, 2))]
    rc, err = _train_csv(run_cli, tmp_path, "dollar.csv", rows, "--epochs", "1", "--no-plots")
    assert rc == 0, err
    rc, _, err = run_cli("predict", str(tmp_path / "out"))
    assert rc == 2 and "200 rows make 200 classes, too few rows a class" in err, err
    assert "--task regression needs plain numbers" in err


def test_a_model_files_labels_reach_a_terminal_escaped_and_a_pipe_as_they_are(tmp_path):
    """A model file's class '\\x1b]0;PWNED\\x07' set the terminal's title when predict wrote
    it; the terminal now sees escapes, and a pipe or file the label itself (click took its
    colour code '\\x1b[31m' out of a pipe's CSV and left the rest)."""
    import pty

    from backprop import MLP
    from backprop.io import save_model
    from backprop.preprocessing import Preprocessing

    model = MLP([2, 3, 2], "tanh", "identity", "cross_entropy", seed=0)
    bad = "\x1b]0;PWNED\x07\x1b[31mRED"
    model.preprocessing = Preprocessing(("u", "v"), (0.0, 0.0), (1.0, 1.0), "t", (bad, "q"))
    save_model(tmp_path / "m.safetensors", model)
    (tmp_path / "x.csv").write_text("u,v\n" + "1,2\n-1,-2\n" * 4)
    argv = [sys.executable, "-m", "backprop", "predict", "m.safetensors", "x.csv"]
    env = dict(os.environ, PYTHONPATH=str(SRC))
    piped = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert piped.returncode == 0 and f"p_{bad}".encode() in piped.stdout, piped.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=follower, stderr=subprocess.PIPE
    ) as proc:
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # (the other end closed)
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    os.close(leader)
    assert b"\x1b" not in seen and b"\x07" not in seen
    assert b"p_\\x1b]0;PWNED\\x07\\x1b[31mRED" in seen
