"""The README stays true: its Python example runs, and its first screen holds the two
newcomer commands (install + `backprop train`; install the test extras + run the tests)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_python_example_runs():
    (block,) = _blocks("python")
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)  # our own README, not user input
    history, kept = namespace["history"], namespace["kept"]
    # it printed the last epoch's score (0.97) beside a model restored to epoch 40's (0.98)
    assert kept["epoch"] == history.best_epoch < len(history.epochs)
    assert "the model is epoch 40's" in history.stop_reason and kept["val_accuracy"] > 0.9


def test_first_screen_has_the_two_commands():
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:25])
    commands = re.findall(r"```bash\n(.*?)```", first_screen, re.S)
    assert len(commands) == 2
    assert "pip install ." in commands[0] and "backprop train" in commands[0]
    assert 'pip install -e ".[test]"' in commands[1] and "pytest" in commands[1]


DOCS = [README, README.parent / "CONTRIBUTING.md", README.parent / "examples" / "README.md",
        *sorted((README.parent / "docs").glob("*.md"))]  # fmt: skip


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_doc_points_outside_the_repository(doc):
    """Every relative path a document names (``../x`` anywhere in it, and every link target)
    is a file or folder of the repository, found from the document's folder; no link goes
    to the web (model-files.md linked Hugging Face's safetensors page)."""
    root = README.parent.resolve()
    text = doc.read_text(encoding="utf-8")
    targets = re.findall(r"(?:\.\./)+[\w.\-/]*", text)
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    bad = [t for t in links if re.match(r"[a-z]+://", t)]
    targets += [t for t in links if t not in bad]
    bad += [
        t
        for t in targets
        if not ((doc.parent / t).resolve().is_relative_to(root) and (doc.parent / t).exists())
    ]
    assert not bad, f"{doc.name} names paths outside the repository or missing: {bad}"


def test_the_explain_sample_is_what_explain_prints(run_cli):
    """The README's ``backprop explain`` output, line for line (``...`` marks lines left
    out): its numbers are the tutorial's, and a change to them or to the layout fails here."""
    (sample,) = re.findall(r"```\n(One backprop step.*?)```", README.read_text("utf-8"), re.S)
    rc, out, _ = run_cli("explain")
    assert rc == 0
    printed = iter(line.rstrip() for line in out.splitlines())
    for line in sample.splitlines():
        if line.strip() == "...":
            continue
        assert any(p == line.rstrip() for p in printed), f"not printed (in order): {line!r}"


def test_no_message_or_doc_installs_the_other_projects_backprop():
    # `pip install 'backprop[onnx]'` fetches the PyPI project named backprop (another one:
    # PyTorch, transformers, no onnx); every message and doc says `pip install '.[onnx]'`
    root = Path(__file__).resolve().parents[1]
    files = [*root.joinpath("src").rglob("*.py"), *root.joinpath("docs").glob("*.md"),
             *root.joinpath("benchmarks").rglob("*.py"), *root.joinpath("scripts").glob("*.py"),
             root / "README.md", root / "CONTRIBUTING.md", root / "pyproject.toml",
             root / "examples" / "README.md", root / ".ci" / "run"]  # fmt: skip
    pattern = re.compile(r"pip install ['\"]?backprop\[")
    found = [f"{f.relative_to(root)}:{n}" for f in files
             for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line)]  # fmt: skip
    assert found == [], found
    from backprop._version import pip_extra

    assert pip_extra("onnx") == "pip install 'onnx>=1.15' 'onnxruntime>=1.19'"


def test_the_train_sample_is_what_train_prints(run_cli, tmp_path, monkeypatch):
    """The README's ``backprop train`` output, line for line but for what a run's time and
    clock make (the run folder's name, the Time line, each epoch's seconds): its losses and
    accuracies are the engine's, and a change to them fails here."""
    (sample,) = re.findall(r"```\n(Network  2-3-2.*?)```", README.read_text("utf-8"), re.S)
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli("train")
    assert rc == 0, err

    def comparable(line: str) -> str | None:
        line = re.sub(r"\s+\d+\.\d+m?s$", "", line.rstrip())  # an epoch's time
        line = re.sub(r"runs/\d{8}-\d{6}-toy", "runs/RUN", line)
        return None if line.startswith("Time ") or line.strip() == "..." else line

    printed = iter(c for c in map(comparable, out.splitlines()) if c is not None)
    for line in filter(None, map(comparable, sample.splitlines())):
        assert any(p == line for p in printed), f"not printed (in order): {line!r}"


def test_the_results_the_readme_quotes_are_the_results_pages():
    """The README copies docs/results.md's medians; a regenerated table must be copied too."""
    text = (README.parent / "docs" / "results.md").read_text(encoding="utf-8")
    results = text.split("\n## Summary\n")[1].split("\n## ")[0]
    readme = " ".join(README.read_text(encoding="utf-8").split())
    quoted = {  # the row, and the decimals the README gives
        "nielsen1, Nielsen's N(0, 1) biases": 2, "nielsen1, zero initial biases": 2,
        "nielsen3, Nielsen's N(0, 1) biases": 2, "modern": 2, "mnist1d": 1, "digits": 1,
    }  # fmt: skip
    for row, decimals in quoted.items():
        (line,) = [ln for ln in results.splitlines() if ln.startswith(f"| {row} |")]
        median = float(re.search(r"(\d+\.\d+)%", line.split("|")[3]).group(1))
        assert f"{median:.{decimals}f}%" in readme, (row, median)
