"""Every example a reader can copy runs here, and reaches what it says it reaches.

The examples: each fenced code block of README.md and docs/*.md in python, bash, sh or
toml (a bash/sh block: each command line), and each line under "Examples:" in a command's
``--help``. (Blocks without a language, or ``text``, show output or a file layout; inline
code in prose names things.) :func:`test_every_example_is_run_or_exempt` fails on an
example that is neither in :data:`RUNS` (how it runs here, and the floor it must reach)
nor in :data:`EXEMPT` (why it cannot run here, and what runs it instead): a new example
must say how it is checked.

A ``backprop train`` line of a document may state its floor in a trailing comment (``#
test accuracy >= 95%``, ``# test R^2 >= 0.85``): it is read from the document and asserted
on the run's summary.json, so an example that stops learning fails.

MNIST runs here on a shortened budget (:data:`MNIST_BUDGET`: the first 2,000 training
images, 1 epoch; --resume: 2 epochs), with the floors of that budget in
:data:`RUNS`, but for the README's ``backprop train --dataset mnist``, which runs whole (16 s)
and is held to its stated floor; the other full-budget numbers are measured in
docs/defaults.md and docs/results.md (whose fingerprints tests/test_results.py recomputes;
it also checks that the README's Nielsen line is results.md's nielsen1 run). Without the
MNIST files (no ``BACKPROP_DATA``) those examples are skipped, as the other MNIST tests are.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import os
import re
import shlex
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from backprop.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = ("python", "bash", "sh", "toml")
MNIST_BUDGET = ["--n-samples", "2000", "--epochs", "2"]


# -------------------------------------------------------------------- finding the examples
@dataclass(frozen=True)
class Example:
    key: str  # "README.md: backprop train ...", "--help: backprop predict ...", ...
    lang: str  # python, bash, sh, toml, help
    text: str  # the code (a command without its comment for bash/sh/help)
    comment: str = ""  # a bash/sh line's trailing comment (where a floor is stated)


def _commands(block: str) -> list[tuple[str, str]]:
    """``(command, trailing comment)`` for each command line of a shell block."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        command, *comment = re.split(r"\s+#(?=\s|$)", line, maxsplit=1)
        out.append((command.strip(), comment[0].strip() if comment else ""))
    return out


def collect() -> dict[str, Example]:
    found: dict[str, Example] = {}
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for lang, code in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
            if lang not in RUNNABLE:
                continue
            if lang in ("bash", "sh"):
                for command, comment in _commands(code):
                    key = f"{doc.name}: {command}"
                    found[key] = Example(key, lang, command, comment)
            else:
                first = next(line for line in code.splitlines() if line.strip())
                key = f"{doc.name}: {first.strip()}"
                found[key] = Example(key, lang, code)
    for _, command in sorted(cli.commands.items()):
        help_text = command.help or ""
        if "Examples:" not in help_text:
            continue
        for line in help_text.split("Examples:", 1)[1].splitlines():
            if line.strip().startswith("backprop "):
                key = f"--help: {line.strip()}"
                found[key] = Example(key, "help", line.strip())
    return found


def stated_floor(comment: str) -> tuple[str, float] | None:
    """``("accuracy", 0.95)`` from "test accuracy >= 95%", ``("r2", 0.85)`` from
    "test R^2 >= 0.85"; None when the comment states none."""
    m = re.search(r"test accuracy >= ([\d.]+)%", comment)
    if m:
        return "accuracy", float(m.group(1)) / 100
    m = re.search(r"test R\^2 >= ([\d.]+)", comment)
    return ("r2", float(m.group(1))) if m else None


EXAMPLES = collect()


# ---------------------------------------------------------------------- the working folder
def _have_mnist() -> bool:
    """The real MNIST files through BACKPROP_DATA (as tests/test_datasets.py finds them)."""
    from backprop.datasets import find_mnist_files

    data = os.environ.get("BACKPROP_DATA")
    return bool(data) and all(v is not None for v in find_mnist_files(data).values())


def _skip_without_mnist() -> None:
    if not _have_mnist():
        pytest.skip("the MNIST files are found through BACKPROP_DATA, which is not set here")


def _write_iris(folder: Path) -> None:
    """iris.csv and data.csv (the 150 flowers, target species), new_flowers.csv (every
    fifth flower without its species), flowers.csv (= iris.csv); and examples/iris.csv, the
    repository's copy that README's line names."""
    (folder / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "iris.csv", folder / "examples" / "iris.csv")
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    rows = [[*map(repr, map(float, x)), iris.target_names[k]] for x, k in
            zip(iris.data, iris.target, strict=True)]  # fmt: skip
    for name in ("iris.csv", "data.csv", "flowers.csv"):
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([[*names, "species"], *rows])
    with open(folder / "new_flowers.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([names, *(r[:4] for r in rows[::5])])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder with what the examples name: the CSV files, my_weights.json (the tutorial's
    weights), runs/iris (README's iris line) and, with MNIST, runs/mnist (--help's MNIST
    line, on the budget)."""
    pytest.importorskip("sklearn")
    from backprop.cli import main
    from backprop.reference import SEED_EXAMPLE

    folder = tmp_path_factory.mktemp("examples")
    _write_iris(folder)
    weights = {k: SEED_EXAMPLE[k] for k in ("w", "b1", "u", "b2")}
    (folder / "my_weights.json").write_text(json.dumps(weights), encoding="utf-8")
    with _cwd(folder), contextlib.redirect_stdout(io.StringIO()):
        args = ["--no-plots", "--no-progress"]
        assert main(["train", "--dataset", "iris.csv", "--target", "species",
                     "--out", "runs/iris", *args]) == 0  # fmt: skip
        shutil.copy("runs/iris/model.safetensors", "model.safetensors")  # evaluate's example
        if _have_mnist():
            assert main(["train", "--dataset", "mnist", "--out", "runs/mnist",
                         *MNIST_BUDGET, *args]) == 0  # fmt: skip
    return folder


@contextlib.contextmanager
def _cwd(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# --------------------------------------------------------------------- running a command
def _budgeted(argv: list[str]) -> tuple[list[str], bool]:
    """A command with MNIST's shortened budget applied (train only), and whether it needs
    MNIST (every config file here names it)."""
    mnist = any(a == "mnist" or "runs/mnist" in a for a in argv) or "--config" in argv
    if not mnist or argv[0] != "train":
        return argv, mnist
    out = list(argv)
    if "--epochs" in out:
        i = out.index("--epochs")
        del out[i : i + 2]
    if "--resume" in out:  # its run was trained on the budget: one epoch more
        return [*out, "--epochs", "3"], True
    return [*out, *MNIST_BUDGET], True


def run_command(
    command: str,
    workdir: Path,
    run_cli,
    floor: tuple[str, float] | None = None,
    full_budget: bool = False,
):
    """Run a ``backprop ...`` line in ``workdir`` (train: into a fresh --out unless it
    names one, without plots; on MNIST, on the shortened budget unless ``full_budget``);
    assert exit 0 and, for train, the floor on the test split. Returns (stdout, summary or
    None)."""
    argv = shlex.split(command)
    assert argv[0] == "backprop", command
    argv = argv[1:]
    budgeted, mnist = _budgeted(argv)
    if not full_budget:
        argv = budgeted
    if mnist:
        _skip_without_mnist()
    summary_dir = None
    if argv[0] == "train":
        if "--resume" in argv:
            run = Path(argv[argv.index("--resume") + 1])
            copy = Path(f"{run}-resumed")  # the fixture's run stays as it was
            if not (workdir / copy).exists():
                shutil.copytree(workdir / run, workdir / copy)
            argv[argv.index("--resume") + 1] = str(copy)
            summary_dir = copy
        elif "--out" in argv:
            summary_dir = Path(argv[argv.index("--out") + 1])
        else:
            summary_dir = Path(f"runs/example-{abs(hash(command)) % 10**8}")
            argv += ["--out", str(summary_dir)]
        argv += ["--no-plots", "--no-progress"]
    if summary_dir is not None and (workdir / summary_dir / "summary.json").exists():
        out = ""  # runs/mnist: the fixture ran this very command already
    else:
        with _cwd(workdir):
            rc, out, err = run_cli(*argv)
        assert rc == 0, f"{command}\n{out}\n{err}"
    summary = None
    if summary_dir is not None:
        summary = json.loads((workdir / summary_dir / "summary.json").read_text())
        if floor is not None:
            metric, value = floor
            assert summary["test"][metric] >= value, (command, summary["test"])
    return out, summary


# ------------------------------------------------------------------------ how each runs
Runner = Callable[[Example, Path, object], None]


def shell(
    floor: tuple[str, float] | None = None,
    check: Callable | None = None,
    full_budget: bool = False,
) -> Runner:
    """Run the command; the floor is the one its document states, else ``floor`` (for
    examples without a stated one, or MNIST's shortened budget). ``full_budget``: an MNIST
    command as written, held to its stated floor."""

    def run(ex: Example, workdir: Path, run_cli) -> None:
        argv = shlex.split(ex.text)
        stated = stated_floor(ex.comment)
        if stated is not None and _budgeted(argv[1:])[1] and not full_budget:
            stated = None  # a full-budget number; the shortened run has its own floor
        command = ex.text.split("&&")[-1].strip()  # the install steps before it: .ci/run
        out, summary = run_command(command, workdir, run_cli, stated or floor, full_budget)
        if check is not None:
            check(out, summary, workdir)

    return run


def python(
    prelude: str = "", check: Callable[[dict], None] | None = None, allow: tuple = ()
) -> Runner:
    """exec the block (our own documents, not user input) in ``workdir`` after ``prelude``
    (what the block assumes exists), then ``check`` its namespace. ``allow``: warning
    categories (dotted names) the block may raise, as it would for a user; all others are
    errors."""

    def run(ex: Example, workdir: Path, run_cli) -> None:
        namespace: dict = {"__name__": "docs_example"}
        with (
            _cwd(workdir),
            contextlib.redirect_stdout(io.StringIO()) as printed,
            warnings.catch_warnings(),  # a block's warning filters stay in the block
        ):
            for name in allow:
                module, _, cls = name.rpartition(".")
                warnings.simplefilter("ignore", getattr(importlib.import_module(module), cls))
            exec(compile(prelude, "prelude", "exec"), namespace)
            exec(compile(ex.text, ex.key, "exec"), namespace)
        namespace["__printed__"] = printed.getvalue()
        if check is not None:
            check(namespace)

    return run


def toml_config(floor: tuple[str, float]) -> Runner:
    def run(ex: Example, workdir: Path, run_cli) -> None:
        (workdir / "example.toml").write_text(ex.text, encoding="utf-8")
        run_command("backprop train --config example.toml", workdir, run_cli, floor)

    return run


def needs_module(name: str, runner: Runner) -> Runner:
    """``runner`` when the optional package ``name`` is installed; a skip otherwise (the
    ``test-core`` extra, which CI's Python 3.10 run installs, leaves out torch)."""

    def run(ex: Example, workdir: Path, run_cli) -> None:
        pytest.importorskip(name)
        runner(ex, workdir, run_cli)

    return run


def needs_mnist(runner: Runner) -> Runner:
    def run(ex: Example, workdir: Path, run_cli) -> None:
        _skip_without_mnist()
        runner(ex, workdir, run_cli)

    return run


def _explained_loss(out: str, summary, workdir) -> None:
    assert "L = 1/2 Σ_j (y_j - t_j)² = 0.3273591340" in out  # the tutorial's number


def _gradcheck_passes(out: str, summary, workdir) -> None:
    assert "within the tolerance" in out and "FAIL" not in out


def _predicts_flowers(out: str, summary, workdir) -> None:
    """Labels for the 30 new flowers (on stdout, or in predictions.csv), 90% right."""
    text = out if out.startswith("label") else (workdir / "predictions.csv").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("label,p_setosa") and len(lines) == 31
    with open(workdir / "iris.csv", encoding="utf-8") as f:
        truth = [r[4] for r in csv.reader(f)][1::5]
    assert np.mean([ln.split(",")[0] == t for ln, t in zip(lines[1:], truth, strict=True)]) > 0.9


def _evaluated(out: str, summary, workdir) -> None:
    assert "accuracy" in out


def _kept_species(out: str, summary, workdir) -> None:
    """Each of the 150 flowers' own species first, then the prediction: 90% agree."""
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["species", "label", "p_setosa", "p_versicolor", "p_virginica"], rows[0]
    with open(workdir / "flowers.csv", newline="", encoding="utf-8") as f:
        species = [r[-1] for r in list(csv.reader(f))[1:]]
    assert [r[0] for r in rows[1:]] == species
    assert sum(r[0] == r[1] for r in rows[1:]) >= 0.9 * len(species)


def _all_flowers(out: str, summary, workdir) -> None:
    """Every one of the 150 labelled flowers scored (--split test scored the file's own test
    split, a quarter of it, with the run's seed)."""
    assert out.startswith("flowers.csv, all 150 rows\n") and "accuracy" in out, out[:80]


def _predicts_test_split(out: str, summary, workdir) -> None:
    """The run's test rows: the true label, the predicted one and the probabilities, 90%
    of the labels right."""
    lines = out.splitlines()
    assert lines[0] == "true,label,p_setosa,p_versicolor,p_virginica", lines[0]
    rows = [ln.split(",") for ln in lines[1:]]
    assert len(rows) == 36 and np.mean([r[0] == r[1] for r in rows]) > 0.9


def _exported(path: str) -> Callable:
    """The ONNX file exists and onnxruntime's outputs equal the model's."""

    def check(out: str, summary, workdir) -> None:
        pytest.importorskip("onnxruntime")
        import onnxruntime as ort

        from backprop.io import load_model

        model = load_model(workdir / "runs/mnist/model.safetensors")
        X = np.random.default_rng(0).random((5, model.n_inputs))
        session = ort.InferenceSession(str(workdir / path))
        (spec,) = session.get_inputs()
        assert spec.type == "tensor(double)"  # raw features, as predict reads them
        got = session.run(["output"], {spec.name: X})[0]
        assert np.allclose(got, model.predict(X), atol=1e-5)

    return check


def _flowers(ns: dict) -> None:
    assert len(ns["labels"]) == 30 and set(ns["labels"]) <= {"setosa", "versicolor", "virginica"}
    assert np.mean([a == b for a, b in zip(ns["labels"], ns["__truth__"], strict=True)]) > 0.9


_TRUTH = (
    "import csv\nwith open('iris.csv', encoding='utf-8') as f:\n"
    "    __truth__ = [r[4] for r in csv.reader(f)][1::5]\n"
)
_MODEL = (
    "import numpy as np\nfrom backprop import MLP\n"
    "rng = np.random.default_rng(0)\nX = rng.normal(size=(64, 3))\n"
    "T = np.eye(2)[(X[:, 0] > 0) * 1]\n"
    "model = MLP([3, 8, 2], 'tanh', 'identity', 'cross_entropy', seed=0)\n"
)
_IRIS_SPLIT = (
    "from sklearn.datasets import load_iris\nfrom sklearn.model_selection import train_test_split\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)\n"
)
_TORCH_NET = (
    _MODEL + "import torch\n"  # (the block imports safetensors.torch itself: it did not)
    "net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2),"
    " torch.nn.Identity()).double()\n"
)
_NPY = _MODEL + "from backprop.training import fit\nnp.save('X.npy', X); np.save('T.npy', T)\n"

#: How each example runs here, keyed as :func:`collect` names it.
RUNS: dict[str, Runner] = {
    # README
    "README.md: python3 -m venv .venv && . .venv/bin/activate && pip install . && "
    "backprop train": shell(),
    "README.md: backprop train --dataset spirals --layers 2,32,32,2 --activation tanh "
    "--loss cross_entropy --optimizer adam": shell(),
    "README.md: backprop train --dataset examples/iris.csv --target species": shell(),
    # the whole run (16 s here: 17 epochs of 54,000 images), held to the README's 97%
    "README.md: backprop train --dataset mnist": shell(full_budget=True),
    "README.md: backprop train --dataset mnist --n-samples 50000 --validation-fraction 0 "
    "--layers 784,30,10 --activation sigmoid --loss l2 --init normal --init-scale 1 "
    "--bias-init normal --optimizer sgd --lr 3 --batch-size 10 --epochs 30 "
    "--early-stopping 0": shell(
        # 200 steps of N(0, 1) weights on 784 inputs, whose sigmoids start saturated: a slow
        # start (37.7% here; the full run's 95%: docs/results.md, nielsen1 seed 0)
        ("accuracy", 0.3)
    ),
    # docs/cli.md: the config file of Nielsen's setup
    'cli.md: dataset = "mnist"': toml_config(("accuracy", 0.3)),  # README's Nielsen line
    # docs/datasets.md
    "datasets.md: from backprop.datasets import DATASETS, load_dataset": needs_mnist(
        python(
            check=lambda ns: (
                (ns["ds"].X_train.shape, ns["T"].shape) == ((60000, 784), (60000, 10))
                or pytest.fail("the shapes differ from the comments")
            )
        )
    ),
    "datasets.md: from backprop import MLP": python(_TRUTH, _flowers),
    # docs/distributed.md
    "distributed.md: from backprop.training.distributed import NpyArray": python(_NPY),
    # docs/model-files.md
    "model-files.md: from backprop.io import save_model, load_model, ModelFileError": python(
        _MODEL, lambda ns: ns["model"].n_inputs == 3 or pytest.fail("not the saved model")
    ),
    "model-files.md: from backprop.io.checkpoint import Checkpoint, resume": python(
        _MODEL, lambda ns: ns["model"].n_inputs == 3 or pytest.fail("not the checkpoint's model")
    ),
    "model-files.md: from backprop.io.onnx_export import export_onnx": python(_MODEL),
    "model-files.md: from backprop.io.torch_state import to_torch_module, to_torch_state_dict, "
    "from_torch_state_dict": needs_module("torch", python(_TORCH_NET)),
    # docs/sklearn.md
    "sklearn.md: from sklearn.model_selection import GridSearchCV": python(
        _IRIS_SPLIT,
        # 200 full-batch Adam steps (the defaults, as MLPClassifier's): 0.89 on 38 flowers
        lambda ns: ns["clf"].score(ns["X_test"], ns["y_test"]) >= 0.85 or pytest.fail("< 0.85"),
        allow=("sklearn.exceptions.ConvergenceWarning",),  # 200 epochs on 112 flowers
    ),
    # --help
    "--help: backprop train": shell(("accuracy", 0.95)),
    "--help: backprop train --dataset moons --layers 2,16,2 --epochs 200": shell(
        ("accuracy", 0.95)
    ),
    "--help: backprop train --dataset mnist --out runs/mnist": shell(("accuracy", 0.8)),
    # data.csv is iris: the floor, 34 of its 36 test flowers (tests/test_defaults.py)
    "--help: backprop train --dataset data.csv --target species": shell(("accuracy", 0.93)),
    "--help: backprop train --config runs/mnist/config.toml --epochs 5 --out runs/again": shell(
        ("accuracy", 0.75)
    ),
    # (the fixture's run ended after its budget's epoch: the harness adds --epochs 2)
    "--help: backprop train --resume runs/mnist": shell(("accuracy", 0.8)),
    "--help: backprop evaluate runs/mnist": shell(check=_evaluated),
    "--help: backprop evaluate runs/mnist --split train --json": shell(
        check=lambda out, s, w: json.loads(out)["accuracy"] >= 0.8 or pytest.fail("< 80%")
    ),
    "--help: backprop evaluate model.safetensors -d examples/iris.csv --target species": shell(
        check=_evaluated
    ),
    "--help: backprop evaluate runs/iris -d flowers.csv --split all": shell(check=_all_flowers),
    "--help: backprop export runs/mnist": shell(check=_exported("runs/mnist/model.onnx")),
    "--help: backprop export runs/mnist/model.safetensors mnist.onnx --opset 20": shell(
        check=_exported("mnist.onnx")
    ),
    "--help: backprop predict runs/iris new_flowers.csv": shell(check=_predicts_flowers),
    "--help: backprop predict runs/iris new_flowers.csv --output predictions.csv": shell(
        check=_predicts_flowers
    ),
    "--help: backprop predict runs/iris flowers.csv --keep species": shell(check=_kept_species),
    "--help: backprop predict runs/iris": shell(check=_predicts_test_split),
    "--help: backprop explain": shell(check=_explained_loss),
    "--help: backprop explain --x 0.05,0.10 --t 0.01,0.99 --eta 0.5 --steps 5": shell(
        check=_explained_loss
    ),
    "--help: backprop explain --weights my_weights.json --json": shell(
        check=lambda out, s, w: (
            json.loads(out)["loss"] == pytest.approx(0.3273591340, abs=1e-10)
            or pytest.fail("not the tutorial's loss")
        )
    ),
    "--help: backprop gradcheck": shell(check=_gradcheck_passes),
    "--help: backprop gradcheck --dataset spirals --layers 2,8,8,2 --activation tanh": shell(
        check=_gradcheck_passes
    ),
    "--help: backprop gradcheck --dtype float32 --activation relu --layers 2,16,2": shell(
        check=_gradcheck_passes
    ),
}

#: Examples that do not run here: why, and what runs them instead.
EXEMPT: dict[str, str] = {
    'README.md: python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && '
    "pytest": "installs the test extras and runs this suite; .ci/run does exactly that",
    "README.md: import numpy as np": "tests/test_readme.py::test_the_python_example_runs",
    "engine.md: import numpy as np": "tests/test_learning.py::test_docs_engine_example_runs",
    "distributed.md: pip install '.[mpi]'": "an install (network); .ci/run installs "
    "the test extras, which include it",
    "distributed.md: mpirun -n 4 python train.py": "a placeholder for any script that calls "
    "fit(); tests/test_distributed.py runs such scripts under mpirun -n 2",
    "distributed.md: mpirun -n 4 backprop train --dataset mnist": "4 ranks on MNIST for minutes;"
    " tests/test_distributed.py::test_mpirun_backprop_train_writes_one_run_folder runs "
    "mpirun -n 2 backprop train",
    "gpu.md: from backprop import MLP": "needs a CUDA GPU (device='cuda'); "
    "scripts/gpu_check.py runs the same on one, tests/test_backends.py on torch's CPU",
    "playground.md: backprop playground": "a server that runs until Ctrl-C and opens a browser;"
    " tests/test_playground.py::test_the_command_prints_its_url_and_stops_on_ctrl_c",
    "playground.md: backprop playground --port 0 --no-browser": "a server that runs until "
    "Ctrl-C: tests/test_playground.py::test_the_command_prints_its_url_and_stops_on_ctrl_c",
    "playground.md: backprop playground --weights my_weights.json": "a server that runs until "
    "Ctrl-C; its weights: tests/test_playground.py::test_bad_weights_file_is_one_clear_error "
    "and the tutorial-mode tests there",
    "--help: backprop playground": "as playground.md's: a server that runs until Ctrl-C",
    "--help: backprop playground --port 9000 --no-browser": "as playground.md's",
    "--help: backprop playground --weights my_weights.json": "as playground.md's",
    "results.md: BACKPROP_DATA=/data python scripts/reproduce.py nielsen1": "minutes of MNIST"
    " per seed; tests/test_results.py recomputes every row's fingerprint (its setup, its model"
    ", the first steps of fit) and runs the script's command line (digits, one epoch)",
    "sklearn.md: import time, warnings": "10 timed fits for the table beside it; its accuracy "
    "claim: tests/test_sklearn.py::test_digits_accuracy_within_one_point_of_mlpclassifier",
}


def test_every_example_is_run_or_exempt():
    """Every example found is checked here or exempt with a reason; no entry is stale."""
    found = set(EXAMPLES)
    known = set(RUNS) | set(EXEMPT)
    assert not set(RUNS) & set(EXEMPT)
    missing = sorted(found - known)
    assert not missing, "say how these examples are checked (RUNS or EXEMPT):\n" + "\n".join(
        missing
    )
    assert not sorted(known - found), f"stale entries: {sorted(known - found)}"


def test_stated_floors_are_read():
    floors = {k: stated_floor(e.comment) for k, e in EXAMPLES.items() if e.comment}
    spirals = next(k for k in floors if "spirals" in k)
    assert floors[spirals] == ("accuracy", 0.95)
    assert stated_floor("friedman1: test R^2 >= 0.85") == ("r2", 0.85)


@pytest.mark.parametrize("key", sorted(RUNS), ids=lambda k: re.sub(r"\W+", "_", k)[:70])
def test_example(key, workdir, run_cli):
    if key not in EXAMPLES:
        pytest.fail(f"no such example any more: {key}")
    RUNS[key](EXAMPLES[key], workdir, run_cli)


def test_the_shipped_iris_csv_is_scikit_learns(tmp_path):
    """examples/iris.csv, which README's CSV line trains on (it named an iris.csv that only
    this suite wrote), is scikit-learn's iris, row for row: the file the acceptance numbers
    in docs/defaults.md were measured on."""
    pytest.importorskip("sklearn")
    _write_iris(tmp_path)
    with open(ROOT / "examples" / "iris.csv", encoding="utf-8") as f:
        shipped = list(csv.reader(f))
    with open(tmp_path / "iris.csv", encoding="utf-8") as f:
        assert shipped == list(csv.reader(f))
