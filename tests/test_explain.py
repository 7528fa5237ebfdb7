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
    "delta_hidden, grad_w, grad_b1, w_new, b1_new, u_new, b2_new, dL_dy, dy_da2, dh_da1, "
    "loss_after_update, finite_difference"
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
    factors = {key: step.pop(key) for key in ("dL_dy", "dy_da2", "dh_da1", "loss_after_update")}
    assert step == {
        **expected.to_dict(),
        "finite_difference": finite_difference_gradients(expected),
    }
    y, h = np.array(expected.y), np.array(expected.h)
    np.testing.assert_allclose(factors["dL_dy"], y - SEED_EXAMPLE["t"], rtol=1e-15, atol=0)
    np.testing.assert_allclose(factors["dy_da2"], y * (1 - y), rtol=1e-14, atol=0)
    np.testing.assert_allclose(factors["dh_da1"], h * (1 - h), rtol=1e-14, atol=0)


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


# ------------------------------------------------------------------------ a learner's audit
SATURATED = {"w": [[50.0] * 3] * 2, "b1": [50.0] * 3, "u": [[50.0] * 2] * 3, "b2": [50.0] * 2}

#: Runs whose text and --json are compared: the default step, successive steps (the steps
#: table), a network whose tables are split in two (long numbers), saturated units.
AUDITED = {
    "default": [],
    "steps": ["--steps", "3"],
    "split tables": ["--weights", "{learner}", "--x", "0.5,-0.3", "--t", "0,1", "--steps", "2"],
    "saturated": ["--weights", "{saturated}"],
}


def _audited_args(tmp_path: Path, name: str) -> list[str]:
    (tmp_path / "learner.json").write_text(json.dumps(LEARNERS_WEIGHTS))
    (tmp_path / "saturated.json").write_text(json.dumps(SATURATED))
    return [a.format(learner=tmp_path / "learner.json", saturated=tmp_path / "saturated.json")
            for a in AUDITED[name]]  # fmt: skip


def _tables(out: str) -> list[tuple[str, list[str]]]:
    """Every table of explain's text: (its header line, its rows)."""
    lines, tables = out.splitlines(), []
    for k, line in enumerate(lines):
        if line.strip() and set(line.strip()) == {"─"}:
            rows = []
            for row in lines[k + 1 :]:
                if not row.strip():
                    break
                rows.append(row)
            tables.append((lines[k - 1], rows))
    return tables


def _numbers(values: object) -> list[float]:
    if isinstance(values, dict):
        return [v for value in values.values() for v in _numbers(value)]
    if isinstance(values, list):
        return [v for value in values for v in _numbers(value)]
    return [values] if isinstance(values, float | int) and not isinstance(values, bool) else []


@pytest.mark.parametrize("name", AUDITED)
def test_every_number_the_tables_print_is_in_the_json(run_cli, tmp_path, name):
    """The text said '--json has every value exactly', but y_j - t_j, y_j (1 - y_j),
    h_j (1 - h_j) and the steps table's 'L after update' had no key: every number of every
    table is now a value of the JSON, written as explain writes it."""
    from backprop.formatting import STYLES

    args = _audited_args(tmp_path, name)
    rc, out, err = run_cli("explain", *args)
    assert rc == 0, err
    rc, js, err = run_cli("explain", "--json", *args)
    assert rc == 0, err
    texts = {style(v) for v in _numbers(json.loads(js)) for style in STYLES.values()}
    printed = [
        token
        for _, rows in _tables(out)
        for row in rows
        for token in re.findall(r"-?\d+(?:\.\d+)?(?:e[+-]\d+)?", " ".join(row.split()[1:]))
    ]
    assert len(printed) > 40
    missing = [token for token in printed if token not in texts]
    assert not missing, missing


def test_the_new_json_values_are_the_factors_and_the_next_loss(capsys):
    steps = explain_json(capsys, "--steps", "3")
    for k, s in enumerate(steps):
        y, h, t = np.array(s["y"]), np.array(s["h"]), np.array(s["t"])
        np.testing.assert_allclose(s["dL_dy"], y - t, rtol=1e-15, atol=0)
        np.testing.assert_allclose(s["dy_da2"], y * (1 - y), rtol=1e-14, atol=0)
        np.testing.assert_allclose(s["dh_da1"], h * (1 - h), rtol=1e-14, atol=0)
        np.testing.assert_allclose(np.multiply(s["dL_dy"], s["dy_da2"]), s["delta_out"], rtol=1e-15)
        np.testing.assert_allclose(np.multiply(s["dL_dh"], s["dh_da1"]), s["delta_hidden"],
                                   rtol=1e-15)  # fmt: skip
        case = {"x": s["x"], "t": s["t"]}
        after = numpy_loss(case, *(np.array(s[k]) for k in ("w_new", "b1_new", "u_new", "b2_new")))
        assert s["loss_after_update"] == pytest.approx(after, rel=1e-13)
        if k + 1 < len(steps):
            assert s["loss_after_update"] == steps[k + 1]["loss"]


def test_another_size_without_x_and_t_says_the_defaults_are_the_tutorials(run_cli, tmp_path):
    """A 3-2-1 network from --weights, and no --x or --t: the error spoke of 'x has 2
    values but w has 3 rows', an x the learner never gave."""
    weights = {"w": [[0.1, 0.2]] * 3, "b1": [0.0, 0.0], "u": [[0.3], [0.4]], "b2": [0.0]}
    (tmp_path / "w.json").write_text(json.dumps(weights))
    rc, _, err = run_cli("explain", "--weights", str(tmp_path / "w.json"))
    assert rc == 2 and err.count("\n") == 1, err
    assert "x and t are the defaults, the tutorial's (x = 0.05,0.1, t = 0.01,0.99)" in err, err
    assert "give this 3-2-1 network --x with 3 values and --t with 1 value" in err, err
    rc, _, err = run_cli("explain", "--weights", str(tmp_path / "w.json"), "--x", "1,2,3")
    assert rc == 2 and "without --t, t is the default, the tutorial's" in err, err
    assert "--x with" not in err and "--t with 1 value" in err, err
    rc, out, err = run_cli("explain", "--weights", str(tmp_path / "w.json"), "--x", "1,2,3",
                           "--t", "0.5")  # fmt: skip
    assert rc == 0, err
    rc, out, _ = run_cli("explain", "--help")
    help_text = " ".join(out.split())
    assert "with --x and --t of its sizes: the default x and t are the tutorial's" in help_text


@pytest.mark.parametrize("name", ["default", "split tables"])
def test_old_and_new_values_are_headed_and_written_alike(run_cli, tmp_path, name):
    """The combined table was headed 'u_ij ... u_ij  new u_ij' (the second the old value,
    'old u_ij' in the split form), and the old value was written with up to 8 digits beside
    a new one with 8 (-0.6204749 beside -0.61997973; 0.4 beside 0.36280361)."""
    rc, out, _ = run_cli("explain", *_audited_args(tmp_path, name))
    assert rc == 0
    updates = 0
    for header, rows in _tables(out):
        columns = re.split(r"\s{2,}", header.strip())
        assert len(columns) == len(set(columns)), header
        olds = [k for k, c in enumerate(columns) if c.startswith("old ")]
        if not olds:
            continue
        (old,) = olds
        new = columns.index("new " + columns[old].removeprefix("old "))
        for row in rows:
            cells = row.split()
            for cell in (cells[old], cells[new]):  # 8 significant digits, zeros kept
                assert len(cell.split("e")[0].lstrip("-").replace(".", "").lstrip("0")) == 8, row
            updates += 1
    assert updates == 6 + 2 + 6 + 3  # u, b(2), w, b(1)
    for p in ("u_ij", "b(2)_j", "w_ij", "b(1)_j"):
        assert f"old {p}" in out


def test_the_hidden_sum_says_it_uses_the_old_u(run_cli):
    # printed after the new u_jk, ∂L/∂h_j = Σ_k δ_k u_jk did not say which u it took
    rc, out, _ = run_cli("explain")
    text = " ".join(out.split())
    assert rc == 0 and "∂L/∂h_j = Σ_k δ_k u_jk, over every output k, with the old u_jk" in text
    step = seed_step(**SEED_EXAMPLE)
    assert f"({step.delta_out[0]:#.8g})({SEED_EXAMPLE['u'][0][0]:.8g})" in out  # the old u11


def test_ranges_in_help_and_errors_do_not_say_x(run_cli):
    """click wrote the ranges with an 'x' ([x>=0.0], [1<=x<=10000]; '-1.0 is not in the
    range x>=0.0'): x is the tutorial's input."""
    rc, out, _ = run_cli("explain", "--help")
    text = " ".join(out.split())
    assert rc == 0 and "[eta >= 0]" in text and "1 <= steps <= 10000]" in text
    assert not re.search(r"x\s*[<>]=|<=\s*x", text), text
    errors = {
        "--eta -1": "-1.0 is below 0 (eta >= 0)",
        "--steps 0": "0 is below 1 (1 <= steps <= 10000)",
        "--steps 10001": "10001 is above 10000 (1 <= steps <= 10000)",
    }
    for given, message in errors.items():
        args = given.split()
        rc, _, err = run_cli("explain", *args)
        assert rc == 2 and err.count("\n") == 1 and message in err and args[0] in err, err
    rc, out, _ = run_cli("explain", "--eta", "0", "--steps", "10", "--json")
    assert rc == 0 and len(json.loads(out)) == 10


def test_help_lists_the_default_numbers(run_cli):
    # 'Defaults: backprop.reference.SEED_EXAMPLE', a Python object, not numbers
    rc, out, _ = run_cli("explain", "--help")
    text = " ".join(out.split())
    assert rc == 0 and "SEED_EXAMPLE" not in text
    assert "Defaults: x = 0.05,0.10, t = 0.01,0.99, eta = 0.5 and the weights under" in text
    shown = json.loads(re.search(r"the default weights are (\{.*?\]\})\.", text)[1])
    assert shown == {k: SEED_EXAMPLE[k] for k in ("w", "b1", "u", "b2")}
    assert [SEED_EXAMPLE[k] for k in ("x", "t", "eta")] == [[0.05, 0.10], [0.01, 0.99], 0.5]


def test_a_unit_printed_as_one_has_a_note_on_its_slope(run_cli, tmp_path):
    """h = 1.000000 beside h (1 - h) = 1.066761e-25: by hand 1 - 1.000000 is 0."""
    rc, out, _ = run_cli("explain", *_audited_args(tmp_path, "saturated"))
    text = " ".join(out.split())
    assert rc == 0
    assert (
        "y_1, y_2 are near 1: 1 - y_j is computed as σ(-a(2)_j), not from the printed y_j" in text
    )
    assert "h_1, h_2, h_3 are near 1: 1 - h_j is computed as σ(-a(1)_j)" in text
    rc, out, _ = run_cli("explain")
    assert rc == 0 and "near 1" not in out


def test_many_steps_of_a_large_network_are_refused_before_they_run(tmp_path, capsys):
    """10000 steps of a 961-parameter network kept every step's numbers: 3.0 GB and 93 s
    (503 MB of JSON). Steps times parameters is bounded; the tutorial's 17 take any."""
    import json

    from backprop.cli import main

    weights = {"w": [[0.1] * 31 for _ in range(30)], "b1": [0.0] * 31,
               "u": [[0.1] for _ in range(31)], "b2": [0.0]}  # fmt: skip
    (tmp_path / "w.json").write_text(json.dumps(weights))
    x = ",".join(["0.1"] * 30)
    rc = main(["explain", "--weights", str(tmp_path / "w.json"), "--x", x, "--t", "0.5",
               "--steps", "10000", "--json"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "10000 steps of a network of 993 weights and biases keep 9,930,000" in err
    assert "take at most 1007 steps" in err
