"""``backprop explain``: the seed's step, checked against the engine, finite differences and
the formulas recomputed here (the hand-worked numbers themselves are in test_hand_worked.py)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop import MLP
from backprop.cli import main
from backprop.explain import ExplainError, finite_difference_gradients, run_steps
from backprop.reference import SEED_EXAMPLE, seed_step

KEYS = (
    "x, t, eta, w, b1, u, b2, a1, h, a2, y, loss, delta_out, grad_u, grad_b2, dL_dh, "
    "delta_hidden, grad_w, grad_b1, w_new, b1_new, u_new, b2_new, finite_difference"
).split(", ")


def explain_json(capsys: pytest.CaptureFixture, *args: str) -> object:
    capsys.readouterr()
    assert main(["explain", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def sigma(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a))


def test_json_has_exactly_the_listed_keys_and_the_default_example(capsys):
    step = explain_json(capsys)
    assert list(step) == KEYS
    for key in ("x", "t", "eta", "w", "b1", "u", "b2"):
        assert step[key] == SEED_EXAMPLE[key]


def test_default_step_by_hand(capsys):
    """The first numbers of the default example, worked out on paper."""
    step = explain_json(capsys)
    # a(1)_1 = x1 w11 + x2 w21 + b(1)_1 = 0.05*0.15 + 0.10*0.20 + 0.35 = 0.3775
    assert step["a1"][0] == pytest.approx(0.3775, abs=1e-15)
    # a(1)_3 = 0.05*0.35 + 0.10*0.40 + 0.35 = 0.4075
    assert step["a1"][2] == pytest.approx(0.4075, abs=1e-15)
    h = [sigma(0.3775), sigma(0.3925), sigma(0.4075)]
    assert step["h"] == pytest.approx(h, abs=1e-15)
    # a(2)_1 = h1 u11 + h2 u21 + h3 u31 + b(2)_1
    a2_1 = 0.40 * h[0] + 0.45 * h[1] + 0.50 * h[2] + 0.60
    y1 = sigma(a2_1)
    assert step["y"][0] == pytest.approx(y1, abs=1e-15)
    # delta_1 = (y1 - t1) y1 (1 - y1); dL/du_11 = delta_1 h_1
    delta1 = (y1 - 0.01) * y1 * (1 - y1)
    assert step["grad_u"][0][0] == pytest.approx(delta1 * h[0], abs=1e-15)
    # updated u_11 = 0.40 - 0.5 * delta_1 h_1
    assert step["u_new"][0][0] == pytest.approx(0.40 - 0.5 * delta1 * h[0], abs=1e-15)
    assert step["loss"] == pytest.approx(0.3273591340, abs=1e-10)


def random_case(rng: np.random.Generator) -> dict:
    return {
        "x": rng.uniform(-1, 1, 2).tolist(),
        "t": rng.uniform(0, 1, 2).tolist(),
        "eta": float(rng.uniform(0.1, 2.0)),
        "w": rng.normal(0, 1, (2, 3)).tolist(),
        "b1": rng.normal(0, 1, 3).tolist(),
        "u": rng.normal(0, 1, (3, 2)).tolist(),
        "b2": rng.normal(0, 1, 2).tolist(),
    }


def explain_case(capsys, tmp_path, case: dict) -> dict:
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({k: case[k] for k in ("w", "b1", "u", "b2")}))
    return explain_json(
        capsys,
        "--x", ",".join(repr(v) for v in case["x"]),
        "--t", ",".join(repr(v) for v in case["t"]),
        "--eta", repr(case["eta"]),
        "--weights", str(weights),
    )  # fmt: skip


def numpy_loss(case: dict, w, b1, u, b2) -> float:
    """An independent forward pass: L = 1/2 sum_j (y_j - t_j)^2 with NumPy."""
    x, t = np.array(case["x"]), np.array(case["t"])
    h = 1 / (1 + np.exp(-(x @ w + b1)))
    y = 1 / (1 + np.exp(-(h @ u + b2)))
    return 0.5 * float(np.sum((y - t) ** 2))


@pytest.mark.parametrize("seed", range(8))
def test_json_agrees_with_the_engine(capsys, tmp_path, seed):
    case = random_case(np.random.default_rng(seed))
    step = explain_case(capsys, tmp_path, case)
    assert step["x"] == case["x"] and step["t"] == case["t"] and step["eta"] == case["eta"]
    net = MLP([2, 3, 2], "sigmoid", "sigmoid", "l2", seed=0)
    net.load_state_dict(
        {
            "layers.0.W": np.array(case["w"]),
            "layers.0.b": np.array(case["b1"]),
            "layers.1.W": np.array(case["u"]),
            "layers.1.b": np.array(case["b2"]),
        }
    )
    X, T = np.array([case["x"]]), np.array([case["t"]])
    loss, grads = net.gradients(X, T)
    assert step["loss"] == pytest.approx(loss, rel=1e-12)
    assert np.allclose(step["y"], net.forward(X)[0], rtol=1e-12, atol=0)
    for key, name in (("grad_w", "layers.0.W"), ("grad_b1", "layers.0.b"),
                      ("grad_u", "layers.1.W"), ("grad_b2", "layers.1.b")):  # fmt: skip
        np.testing.assert_allclose(step[key], grads[name], rtol=1e-10, atol=1e-15)
    eta = case["eta"]
    for key, name, p in (("w_new", "layers.0.W", "w"), ("b1_new", "layers.0.b", "b1"),
                         ("u_new", "layers.1.W", "u"), ("b2_new", "layers.1.b", "b2")):  # fmt: skip
        np.testing.assert_allclose(
            step[key], np.array(case[p]) - eta * grads[name], rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize("seed", range(8, 14))
def test_json_agrees_with_finite_differences(capsys, tmp_path, seed):
    case = random_case(np.random.default_rng(seed))
    step = explain_case(capsys, tmp_path, case)
    params = {k: np.array(case[k], dtype=np.float64) for k in ("w", "b1", "u", "b2")}
    eps = 1e-6
    for name in ("w", "b1", "u", "b2"):
        numeric = np.zeros_like(params[name])
        for idx in np.ndindex(params[name].shape):
            up = {k: v.copy() for k, v in params.items()}
            down = {k: v.copy() for k, v in params.items()}
            up[name][idx] += eps
            down[name][idx] -= eps
            numeric[idx] = (numpy_loss(case, **up) - numpy_loss(case, **down)) / (2 * eps)
        np.testing.assert_allclose(step[f"grad_{name}"], numeric, rtol=1e-6, atol=1e-9)


def test_finite_difference_column_matches_the_gradients():
    step = run_steps(**SEED_EXAMPLE)[0]
    fd = finite_difference_gradients(step)
    for key in ("grad_w", "grad_b1", "grad_u", "grad_b2"):
        np.testing.assert_allclose(fd[key], getattr(step, key), rtol=1e-7, atol=1e-11)


def test_steps_follow_each_other_and_the_loss_falls(capsys):
    steps = explain_json(capsys, "--steps", "5")
    assert isinstance(steps, list) and len(steps) == 5
    for prev, nxt in zip(steps, steps[1:], strict=False):
        assert nxt["w"] == prev["w_new"] and nxt["u"] == prev["u_new"]
        assert nxt["b1"] == prev["b1_new"] and nxt["b2"] == prev["b2_new"]
        assert nxt["loss"] < prev["loss"]


def test_text_output_shows_the_seed_notation_and_finite_differences(capsys):
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    step = seed_step(**SEED_EXAMPLE)
    for text in ("a(1)_j", "h_j", "a(2)_j", "y_j", "δ_j = (y_j - t_j) y_j (1 - y_j)",
                 "∂L/∂u_ij = δ_j h_i", "∂L/∂h_j = Σ_k δ_k u_jk", "∂L/∂w_ij = δ_j x_i",
                 "∂L/∂b(1)_j", "∂L/∂b(2)_j", "finite diff.", "new w_ij", "new u_ij",
                 "u11", "w23", f"{step.loss:.10f}"):  # fmt: skip
        assert text in out, text
    # every gradient and its finite-difference estimate are printed side by side
    assert f"{step.grad_u[0][0]:.8g}" in out
    assert f"{step.grad_w[1][2]:.8g}" in out


def test_text_output_with_steps_lists_each_step(capsys):
    assert main(["explain", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    steps = run_steps(**SEED_EXAMPLE, steps=3)
    for s in steps:
        assert f"{s.loss:.10f}" in out


def test_explain_as_a_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "backprop", "explain", "--json", "--eta", "0.25"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    step = json.loads(proc.stdout)
    expected = seed_step(**{**SEED_EXAMPLE, "eta": 0.25})
    assert step == {
        **expected.to_dict(),
        "finite_difference": finite_difference_gradients(expected),
    }


@pytest.mark.parametrize(
    "args, message",
    [
        (["--x", "0.1,abc"], "--x must be comma-separated numbers"),
        (["--t", "0.1"], "t has 1 value but the network has 2 outputs"),
        (["--x", "0.1,0.2,0.3"], "x has 3 values but w has 2 rows"),
        # (which never said where another network's weights would come from)
        (
            ["--x", "0.1,0.2,0.3"],
            "the tutorial's weights, of its 2-3-2 network: another "
            "network's come from --weights FILE.json",
        ),  # fmt: skip
        (["--eta", "-1"], "--eta"),
        (["--steps", "0"], "--steps"),
    ],
)
def test_bad_numbers_give_one_line_and_exit_2(capsys, args, message):
    assert main(["explain", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not valid JSON"),
        ('{"w": [[1, 2, 3], [4, 5, 6]], "b1": [0, 0, 0], "u": [[1, 1], [1, 1], [1, 1]]}',
         "missing b2"),
        ('{"w": [[1, 2, 3], [4, 5]], "b1": [0, 0, 0], "u": [[1, 1], [1, 1], [1, 1]], "b2": [0, 0]}',
         "rectangular"),
        ('{"w": [[1, 2, 3], [4, 5, "a"]], "b1": [0, 0, 0], "u": [[1, 1]], "b2": [0, 0]}',
         "w[1][2] is 'a'; expected a finite number"),
        ('{"w": [[1, 2, 3], [4, 5, 6]], "b1": [0, 0, 0], "u": [[1, 1], [1, 1]], "b2": [0, 0]}',
         "u has 2 rows but there are 3 hidden units"),
    ],
)  # fmt: skip
def test_bad_weights_files_give_one_line_and_exit_2(capsys, tmp_path, content, message):
    path = tmp_path / "w.json"
    path.write_text(content)
    assert main(["explain", "--weights", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_a_wider_network_from_weights_is_labelled_unambiguously(run_cli, tmp_path):
    """With 11 hidden units the labels w1,11 (input 1, unit 11) and w11 ran together as
    'w111', and the title called the 2-11-2 network 'the tutorial's'."""
    rng = np.random.default_rng(0)
    weights = {"w": rng.normal(size=(2, 11)).tolist(), "b1": [0.1] * 11,
               "u": rng.normal(size=(11, 2)).tolist(), "b2": [0.2] * 2}  # fmt: skip
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(weights))
    rc, out, err = run_cli("explain", "--weights", str(path))
    assert rc == 0, err
    assert out.startswith("One backprop step of a 2-11-2 network from --weights")
    rows = [line.split()[0] for line in out.splitlines() if line.lstrip().startswith(("w", "u"))]
    assert "w1,11" in rows and "u11,1" in rows and "u1,2" in rows and "w111" not in rows


LEARNERS_WEIGHTS = {  # normal weights rounded to 3 decimals: 17 of 20 such files cut cells
    "w": [[0.126, -0.132, 0.64], [0.105, -0.536, 0.362]], "b1": [1.304, 0.947, -0.704],
    "u": [[-1.265, -0.623], [0.041, -2.325], [-0.219, -1.246]], "b2": [-0.732, -0.544],
}  # fmt: skip


@pytest.mark.parametrize("columns", ["60", "80", "200"])
@pytest.mark.parametrize(
    "args",
    [["--weights", "{w}", "--x", "0.5,-0.3", "--t", "0,1"], ["--eta", "1e308"],
     ["--x", "1e-9,3e5", "--t", "0,1"], []],
)  # fmt: skip
def test_no_number_is_cut_and_no_line_is_wider_than_80(tmp_path, args, columns):
    # '-5.8019410e-…' (e-05 or e-15?) at 80 columns, and COLUMNS=60 cut the default run's
    # cells in a pipe: a table that does not fit is split in two (gradients, updates)
    (tmp_path / "w.json").write_text(json.dumps(LEARNERS_WEIGHTS))
    argv = [a.format(w=tmp_path / "w.json") for a in args]
    proc = subprocess.run([sys.executable, "-m", "backprop", "explain", *argv],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": columns})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    if args and args[0] == "--weights":
        assert "-5.8019410e-05" in proc.stdout  # δ_1, whole


def test_small_updates_and_small_losses_show_their_digits(run_cli):
    # new weights had 6 decimals (0.15 -> 0.149999 at eta 0.001, a change of 1.2e-6 unseen)
    # and the loss 10 decimals (L = 0.0000000000 for 3.6e-14)
    rc, out, _ = run_cli("explain", "--x", "0.123456789,0.987654321", "--t",
                         "0.3333333,0.6666667", "--eta", "0.001")  # fmt: skip
    assert rc == 0 and "x = (0.12345679, 0.98765432)" in out
    assert " 0.14999884\n" in out  # 0.15 - 0.001 x 0.0011576552 = 0.1499988423
    rc, out, _ = run_cli("explain", "--t", "0.803158,0.829942")
    assert rc == 0 and "0.0000000000" not in out and "L = 1/2 Σ_j (y_j - t_j)² = 3.5" in out


def test_the_estimate_says_when_it_cannot_check(run_cli, tmp_path):
    # --t 1e150,0: estimate 0.0000000 beside -9.38e+148 and 'largest gap 1.6e+149', with
    # nothing saying that the estimate, not the gradient, had failed
    rc, out, _ = run_cli("explain")
    text = " ".join(out.split())
    assert rc == 0 and "off by about ε_machine L / ε = 7.3e-12 from rounding" in text
    assert "by about 2.3e-12 from its terms in ε²" in text and "cannot check" not in text
    rc, out, _ = run_cli("explain", "--t", "1e150,0")
    assert rc == 0 and "so the estimate cannot check these gradients" in " ".join(out.split())
    # near a minimum the ε² term, unquantified before, is the whole gap (b(2)1 -1.5809522e-10
    # against its estimate -1.5885294e-10)
    rc, out, _ = run_cli("explain", "--json")
    y = json.loads(out)["y"]
    rc, out, _ = run_cli("explain", "--t", f"{y[0] + 1e-9!r},{y[1] - 1e-9!r}")
    text = " ".join(out.split())
    gap = float(re.search(r"estimate\| = ([0-9.]+e[+-]\d+)", text)[1])
    bound = float(re.search(r"and by about ([0-9.]+e[+-]\d+)", text)[1])
    assert rc == 0 and gap <= 1.5 * bound
    # saturated units: gradients of 1e-87 and smaller (they printed 0, the slope y (1 - y)
    # taken from a y rounded to 1), which an estimate off by 1e-11 cannot check
    saturated = {"w": [[50.0] * 3] * 2, "b1": [50.0] * 3, "u": [[50.0] * 2] * 3, "b2": [50.0] * 2}
    (tmp_path / "s.json").write_text(json.dumps(saturated))
    rc, out, _ = run_cli("explain", "--weights", str(tmp_path / "s.json"))
    text = " ".join(out.split())
    assert rc == 0 and "1 0.990000 1.383897e-87 1.3700576e-87" in text
    assert "so the estimate cannot check these gradients" in text


def test_printed_factors_multiply_to_the_printed_delta(run_cli, tmp_path):
    """An output near 0.0015 printed as 0.001540 (4 digits): (-0.008457)(0.001540) is
    -1.30238e-05 where the delta printed -1.3027434e-05. Each delta's printed factors now
    multiply to its printed value within 1e-5, here and at the seed's numbers."""
    weights = {"w": [[60.0, -6.0, 0.0], [0.0, 0.0, 0.0]], "b1": [0.35] * 3,
               "u": [[-3.2, 5.0]] * 3, "b2": [0.0, 0.0]}  # fmt: skip
    (tmp_path / "w.json").write_text(json.dumps(weights))
    for args in ((), ("--weights", str(tmp_path / "w.json"), "--x", "0.1,0.1")):
        rc, out, _ = run_cli("explain", *args)
        assert rc == 0
        deltas = []
        for table in re.findall(r"^(?:Output|Hidden) deltas:.*\n.*\n.*\n((?:\d .*\n)+)", out, re.M):
            deltas += [line.split()[1:] for line in table.splitlines()]
        assert len(deltas) == 5  # two output deltas, three hidden
        for a, b, product in deltas:
            assert float(a) * float(b) == pytest.approx(float(product), rel=1e-5)


def test_the_steps_title_says_whether_the_loss_fell(run_cli):
    # 'the loss falls as the weights learn' above a run with eta 0 (it stays put)
    rc, out, _ = run_cli("explain", "--steps", "3", "--eta", "0")
    assert rc == 0 and "(the loss does not fall at every step)" in out
    rc, out, _ = run_cli("explain", "--steps", "3")
    assert rc == 0 and "(the loss falls at every step)" in out


def test_weights_file_mistakes_are_named(run_cli, tmp_path):
    good = {"w": [[1, 2, 3], [4, 5, 6]], "b1": [1, 2, 3], "u": [[1, 2], [3, 4], [5, 6]],
            "b2": [1, 2]}  # fmt: skip
    cases = {  # 'missing [], unknown ['extra']'; the last "w" won; no word of transposing
        "extra": ({**good, "extra": 1}, "must have exactly the keys w, b1, u, b2; unknown"),
        "transposed u": ({**good, "u": [[1, 3, 5], [2, 4, 6]]}, "is u transposed?"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / "w.json").write_text(json.dumps(data))
        rc, _, err = run_cli("explain", "--weights", str(tmp_path / "w.json"))
        assert rc == 2 and message in err and "missing" not in err, (name, err)
    twice = json.dumps(good).replace('"b1"', '"w": [[0, 0, 0], [0, 0, 0]], "b1"')
    (tmp_path / "w.json").write_text(twice)
    rc, _, err = run_cli("explain", "--weights", str(tmp_path / "w.json"))
    assert rc == 2 and "duplicate key 'w'" in err


@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux's script")
@pytest.mark.parametrize("columns", [40, 60, 79])
def test_a_narrow_terminal_wraps_rather_than_cuts(tmp_path, columns):
    # the split was decided at 80 columns while rich drew at the terminal's width: 12 cut
    # cells at 70 columns, 29 at 40
    (tmp_path / "w.json").write_text(json.dumps(LEARNERS_WEIGHTS))
    command = (f"stty cols {columns} rows 50; {sys.executable} -m backprop explain --weights "
               f"{tmp_path / 'w.json'} --x 0.5,-0.3 --t 0,1 --steps 2")  # fmt: skip
    proc = subprocess.run(["script", "-qc", command, "/dev/null"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"})  # fmt: skip
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", proc.stdout)
    assert "…" not in text and "-5.8019410e-05" in text, text[-400:]


def test_the_steps_table_of_many_outputs_keeps_its_losses_whole(run_cli, tmp_path):
    # 5 outputs: every cell of the steps table was cut (0.…), in a pipe too
    weights = {"w": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], "b1": [0.1] * 3,
               "u": [[0.1, 0.2, 0.3, 0.4, 0.5]] * 3, "b2": [0.0] * 5}  # fmt: skip
    (tmp_path / "w.json").write_text(json.dumps(weights))
    rc, out, _ = run_cli("explain", "--weights", str(tmp_path / "w.json"), "--t",
                         "0.5,0.5,0.5,0.5,0.5", "--steps", "2")  # fmt: skip
    assert rc == 0 and "…" not in out and "the outputs y_j: --json" in " ".join(out.split())
    assert max(len(line) for line in out.splitlines()) <= 80


@pytest.mark.parametrize(
    "name, value, message",
    [("w", [], "row lengths []"),
     ("w", [[0.15, 0.2, 0.25], [0.3, 0.35]], "row lengths [3, 2]"),
     ("w", [[0.15, 0.2, 0.25, 9.0], [0.3, 0.35, 0.4]], "row lengths [4, 3]"),
     ("u", [[0.4, 0.45], [0.5], [0.6, 0.65]], "row lengths [2, 1, 2]"),
     ("u", 5, "u must be a nested list of numbers")],
)  # fmt: skip
def test_run_steps_refuses_weights_that_are_not_rectangular(name, value, message):
    """The library's run_steps read w's and u's shapes from their first rows: an empty or
    ragged w raised IndexError, and a w row with an extra entry was taken without a word."""
    with pytest.raises(ExplainError, match=re.escape(message)):
        run_steps(**{**SEED_EXAMPLE, name: value})


def test_only_the_tutorials_own_weights_are_called_the_tutorials(run_cli, tmp_path):
    path = tmp_path / "other.json"
    other = {"w": [[1, 2, 3], [4, 5, 6]], "b1": [0.1, 0.2, 0.3],
             "u": [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], "b2": [0.1, 0.2]}  # fmt: skip
    path.write_text(json.dumps(other))
    rc, out, err = run_cli("explain", "--weights", str(path))
    assert rc == 0, err
    assert out.startswith("One backprop step of a 2-3-2 network from --weights"), out[:80]
    seed = {k: SEED_EXAMPLE[k] for k in ("w", "b1", "u", "b2")}
    path.write_text(json.dumps(seed))
    rc, out, err = run_cli("explain", "--weights", str(path), "--x", "1,2", "--t", "0,1")
    assert rc == 0, err
    assert out.startswith("One backprop step of the tutorial's 2-3-2 network"), out[:80]


def test_an_ascii_standard_output_is_told_what_to_do(tmp_path):
    """Under LC_ALL=C (an ASCII stream) the text failed with Python's "'ascii' codec can't
    encode character '\\u03b7'"; it is one line saying what to set, and --json still works."""
    env = dict(os.environ, LC_ALL="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0",
               PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))  # fmt: skip
    env.pop("PYTHONIOENCODING", None)
    proc = subprocess.run([sys.executable, "-m", "backprop", "explain"], env=env, cwd=tmp_path,
                          capture_output=True, timeout=60)  # fmt: skip
    err = proc.stderr.decode("ascii")
    assert proc.returncode == 2 and err.count("\n") == 1, err
    assert err.startswith("Error: standard output's encoding is ") and "--json" in err, err
    proc = subprocess.run([sys.executable, "-m", "backprop", "explain", "--json"], env=env,
                          cwd=tmp_path, capture_output=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0 and json.loads(proc.stdout)["eta"] == 0.5
