"""``backprop playground`` without a browser: the tutorial's numbers are ``explain``'s, train
mode learns and keeps every number of its last step, the exports load back, and the server
refuses what it must (token, Host, Origin, oversized bodies). The page itself is tested in
a real browser in test_playground_browser.py."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from backprop import load_model
from backprop.cli import main
from backprop.playground import make_server
from backprop.playground.server import MAX_SESSIONS
from backprop.playground.session import CommandError, Session
from backprop.playground.training import SetupError, TrainRun, check_setup
from backprop.playground.tutorial import PHASE_KEYS, Tutorial
from backprop.tutorial import example_inputs

SRC = Path(__file__).resolve().parents[1] / "src"
SMALL = {"dataset": "xor", "n_samples": 100, "hidden": [4], "activation": "tanh"}


def explain_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["explain", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------------ tutorial
def test_tutorial_frame_is_explain_json_number_for_number(capsys):
    ref = explain_json(capsys)
    frame = Tutorial().frame()
    assert frame["values"]["loss"] == {"v": ref["loss"], "s": "0.3273591340", "state": "finite"}
    fd = ref.pop("finite_difference")  # the page's own "fd", the same doubles
    for key in ("dL_dy", "dy_da2", "dh_da1", "loss_after_update"):
        ref.pop(key)  # explain's table columns: the page writes the factors in its formulas
    for key, value in fd.items():
        assert [
            v["v"] for row in frame["fd"][key] for v in (row if isinstance(row, list) else [row])
        ] == [v for row in value for v in (row if isinstance(row, list) else [row])], key
    for key, value in ref.items():
        shown = frame["values"][key]
        flat = shown if isinstance(shown, list) else [shown]
        flat = [v for row in flat for v in (row if isinstance(row, list) else [row])]
        ref_flat = value if isinstance(value, list) else [value]
        ref_flat = [v for row in ref_flat for v in (row if isinstance(row, list) else [row])]
        assert [v["v"] for v in flat] == ref_flat, key  # exact: the same doubles
    # every key of explain --json is revealed by exactly one phase (or is an input)
    revealed = [k for keys in PHASE_KEYS for k in keys]
    assert sorted(revealed + ["x", "t", "eta", "w", "b1", "u", "b2"]) == sorted(ref)


def test_tutorial_texts_are_explains_texts(capsys):
    """The page's text for a number is the text explain prints for it."""
    capsys.readouterr()
    assert main(["explain"]) == 0
    printed = capsys.readouterr().out
    frame = Tutorial().frame()
    for key in ("delta_out", "grad_b2", "dL_dh", "delta_hidden"):
        for v in frame["values"][key]:
            assert v["s"] in printed, (key, v["s"])
    for row in frame["values"]["w_new"]:
        for v in row:
            assert v["s"] in printed
    assert "L = 1/2 Σ_j (y_j - t_j)² = 0.3273591340" in printed


def test_tutorial_steps_follow_explain_steps(capsys):
    ref = explain_json(capsys, "--steps", "3")
    tut = Tutorial()
    for k, step in enumerate(ref):
        frame = tut.frame()
        assert frame["step"] == k + 1
        assert frame["values"]["loss"]["v"] == step["loss"]
        assert [v["v"] for r in frame["values"]["w_new"] for v in r] == [
            v for r in step["w_new"] for v in r
        ]
        for _ in range(6):
            tut.advance(1)
    assert [v["v"] for v in tut.frame()["losses"][:3]] == [s["loss"] for s in ref]


def test_tutorial_edit_recomputes_and_rejects_bad_values(capsys, tmp_path):
    tut = Tutorial()
    tut.advance(1)
    tut.set_inputs({"x": [1.0, -2.0], "eta": 0.25})
    weights = tmp_path / "w.json"
    s = tut.step
    weights.write_text(json.dumps({"w": s.w, "b1": s.b1, "u": s.u, "b2": s.b2}))
    ref = explain_json(capsys, "--x", "1.0,-2.0", "--eta", "0.25", "--weights", str(weights))
    assert tut.frame()["values"]["grad_w"][1][2]["v"] == ref["grad_w"][1][2]
    assert tut.phase == 1  # the phase stays
    for bad, match in [
        ({"x": [1.0]}, "x has 1 value but w has 2 rows"),
        ({"eta": "fast"}, "η \\(the learning rate\\) must be a finite number"),
        ({"w": [[1, 2, 3], [4, 5]]}, "rectangular|shape|columns|rows"),
        ({"bias": [1]}, "unknown values"),
        ({"t": [float("nan"), 1.0]}, r"t\[0\] is nan; expected a finite number"),
        # JSON integers too large for a float64 (OverflowError before)
        ({"w": [[1, 2, 3], [4, 5, 10**400]]}, r"w\[1\]\[2\] is 10{59}\.\.\.; expected a finite"),
        ({"eta": 10**400}, "η \\(the learning rate\\) must be a finite number"),
        # the page's symbol and the number as typed ('eta must be >= 0; got -1.0' before)
        ({"eta": -1}, r"^η \(the learning rate\) must be 0 or more, a step down the loss; got -1$"),
    ]:
        with pytest.raises(ValueError, match=match):
            tut.set_inputs(bad)


# ------------------------------------------------------------------------ train mode
def test_setup_values_are_checked_against_one_table():
    assert check_setup({})["dataset"] == "spirals"
    # the messages name a field as the page's form does (its label), not by its key
    for bad, match in [
        ({"lr": 0}, "^learning rate η must be a number from 1e-06 to 100; got 0$"),
        ({"hidden": [8] * 7}, "hidden units must list up to 6"),
        ({"hidden": [64]}, "from 1 to 32"),
        ({"optimizer": "lbfgs"}, "optimizer must be one of"),
        ({"batch_size": 2.5}, "^batch size must be a whole number from 1 to 2000; got 2.5$"),
        ({"n_samples": 0}, "^samples must be a whole number from 20 to 2000; got 0$"),
        ({"colour": "red"}, "unknown setup keys"),
        (
            {"dataset": "csv"},
            "^dataset csv needs a file: drop a 2-feature CSV file on the page, or choose one "
            "with the file picker under the setup form$",
        ),
        # a CSV run's URL names its file but cannot carry it
        ({"dataset": "csv", "csv_name": "mine.csv"}, "trained on the CSV file mine.csv, which"),
        ({"trail": [[10, -1]]}, "trail must be"),
        # JSON integers too large for a float64 (OverflowError before), quoted cut short
        ({"lr": 10**400}, r"learning rate η must be a number from 1e-06 to 100; got 10{59}\.\.\.$"),
        ({"seed": -(10**400)}, r"seed must be a whole number from 0 to 2147483647; got -10{58}"),
    ]:
        with pytest.raises(SetupError, match=match):
            check_setup(bad)


def test_training_learns_and_keeps_the_last_steps_numbers():
    run = TrainRun({**SMALL, "optimizer": "momentum", "lr": 0.1})
    first = run.metrics()["train_loss"]
    for _ in range(300):
        run.step(10)
    assert run.metrics()["train_loss"] < 0.5 * first
    last = run.last
    assert last is not None and last.number == 300 and len(last.rows) == 10
    # the gradient kept is the engine's on that batch at the weights before the step
    probe = TrainRun({**SMALL, "optimizer": "momentum", "lr": 0.1})
    probe.model.load_state_dict(last.before)
    _, grads = probe.model.gradients(run.X[last.rows], run.T[last.rows])
    for name, g in grads.items():
        np.testing.assert_array_equal(last.grads[name], g)
    # momentum: v = mu v_prev + g, p -= lr v
    name = "layers.0.W"
    v_prev = last.opt_before["slots"][f"{name}.v"]
    v_now = last.opt_after["slots"][f"{name}.v"]
    np.testing.assert_allclose(v_now, 0.9 * v_prev + last.grads[name], rtol=1e-12)
    np.testing.assert_allclose(last.delta[name], -0.1 * v_now, rtol=1e-9, atol=1e-15)


def test_the_frame_explains_the_selected_weight_and_point():
    run = TrainRun({**SMALL, "optimizer": "adam", "lr": 0.01})
    run.step(10)
    row = int(run.last.rows[3])
    run.select(row, ["layers.0.W", [1, 2]])
    assert run.frame(full=True)["inspect"]["table"] is None  # made in the background
    run.full_finite_differences()
    frame = run.frame(full=True)
    w = frame["inspect"]["weight"]
    assert w["grad"]["v"] == pytest.approx(w["fd"]["v"], rel=1e-6)  # beside its estimate
    assert w["state"]["m"]["v"] == pytest.approx(0.1 * w["grad"]["v"], rel=1e-12)  # m = (1-b1) g
    assert any(line.startswith("p ← p - η m̂ / (√v̂ + ε)") for line in w["update"])
    # the point's share is its own gradient over the batch size (it is in the batch once)
    assert w["point_share"]["v"] == pytest.approx(w["point_grad"]["v"] / 10, rel=1e-12)
    point = frame["inspect"]["point"]
    assert point["in_last_batch"] and len(point["layers"]) == 2
    table = frame["inspect"]["table"]  # full finite-difference table after a step
    assert len(table["rows"]) == run.model.n_parameters
    for r in table["rows"]:
        assert r["grad"]["v"] == pytest.approx(r["fd"]["v"], rel=1e-5, abs=1e-9)
    json.dumps(frame, allow_nan=False)
    with pytest.raises(SetupError, match="outside layers.0.W's shape"):
        run.select(None, ["layers.0.W", [5, 0]])
    with pytest.raises(SetupError, match="outside the 76 training rows"):
        run.select(500, None)


def test_divergence_is_stopped_explained_and_undone():
    # SGD with L2: W <- (1 - eta lambda) W - ..., and |1 - 100 * 10| > 1 grows W by ~1000x a step
    run = TrainRun({**SMALL, "optimizer": "sgd", "lr": 100.0, "weight_decay": 10.0})
    for _ in range(200):
        run.step(10)
        if run.diverged:
            break
    assert run.diverged and "Diverged at step" in run.diverged
    assert all(np.all(np.isfinite(v)) for v in run.model.state_dict().values())
    frame = run.frame()
    assert frame["status"] == "diverged" and "Lower the learning rate" in frame["message"]
    # not the init scale: he_uniform, the default, has none (only the normal initialiser)
    assert "init scale" not in frame["message"]
    json.dumps(frame, allow_nan=False)  # no NaN reaches the page
    steps = run.steps
    run.step(10)
    assert run.steps == steps  # stopped until the learner acts (play or step clears it)


def test_a_diverged_step_is_undone_whole_and_retried_on_the_same_batch():
    """Weights that stay finite but make the output overflow count as divergence: the page
    then draws no NaN metric; a retry neither moves the batch nor grows the trail, so the
    URL replays to the same state; and no RuntimeWarning reaches the terminal (warnings are
    errors here)."""
    setup = {"optimizer": "momentum", "momentum": 0.999, "lr": 100.0, "init_scale": 10.0,
             "activation": "leaky_relu"}  # fmt: skip
    run = TrainRun(setup)
    for _ in range(20):
        run.step(10)
        if run.diverged:
            break
    assert run.diverged and "the network's output on the data" in run.diverged
    assert "Rewind" in run.diverged and "starts again from step 0" in run.diverged
    frame = run.frame()
    for key, value in frame["metrics"].items():
        assert value["state"] == "finite", (key, value)  # "NaN" was drawn before
    kept = (run.steps, run.samples, run.pos, json.dumps(run.trail), run.model.state_dict())
    for _ in range(3):  # each retry moved pos, samples and the trail on before
        run.clear_divergence()
        run.step(10)
        assert run.diverged
    assert (run.steps, run.samples, run.pos, json.dumps(run.trail)) == kept[:4]
    again = TrainRun(frame["setup"])
    assert again.steps == run.steps and not again.diverged
    for k, v in kept[4].items():
        np.testing.assert_array_equal(again.model.state_dict()[k], v)


def test_no_test_rows_are_shown_as_absent_not_nan():
    frame = TrainRun({**SMALL, "test_fraction": 0.0}).frame()
    for key in ("test_loss", "test_acc"):
        assert frame["metrics"][key] == {"v": None, "s": "— (no test rows)", "state": "absent"}
    assert frame["metrics"]["train_loss"]["state"] == "finite"


def test_rewind_and_a_new_network_keep_what_they_can_follow():
    s = Session("t")
    s.command({"op": "train.setup", "setup": {**SMALL, "hidden": [6]}})
    s.command({"op": "train.step", "unit": "batch"})
    s.command({"op": "train.select", "point": 3, "weight": ["layers.0.W", [1, 5]]})
    s.command({"op": "train.rewind"})  # the same network and rows: both stay followed
    inspect = s.run.frame()["inspect"]
    assert inspect["weight"]["index"] == [1, 5] and inspect["point"]["index"] == 3
    s.command({"op": "train.setup", "setup": {**SMALL, "hidden": [4]}})  # no unit 5 now
    inspect = s.run.frame()["inspect"]
    assert inspect["weight"] is None and inspect["point"]["index"] == 3
    s.command({"op": "train.setup", "setup": {**SMALL, "hidden": [4], "n_samples": 40}})
    assert s.run.frame()["inspect"]["point"] is None  # other rows: row 3 is another point
    with pytest.raises(CommandError, match="learning rate η must be"):
        s.command({"op": "train.setup", "setup": {**SMALL, "lr": 0}})
    assert s.run.setup["n_samples"] == 40  # a refused setup changes nothing
    s.close()


def test_tutorial_back_from_a_steps_first_phase_returns_to_the_previous_update(capsys):
    ref = explain_json(capsys, "--steps", "2")
    tut = Tutorial()
    assert not tut.frame()["can_back"]
    for _ in range(6):
        tut.advance(1)
    assert tut.frame()["step"] == 2 and tut.frame()["can_back"]
    tut.advance(-1)  # did nothing before: the phase was clamped at 0
    frame = tut.frame()
    assert (frame["step"], frame["phase"]) == (1, 5)
    assert frame["values"]["loss"]["v"] == ref[0]["loss"]  # recomputed exactly
    assert [v["v"] for v in frame["losses"]] == [ref[0]["loss"]]
    tut.advance(1)
    assert tut.frame()["values"]["loss"]["v"] == ref[1]["loss"]


@pytest.mark.parametrize(
    "values, broken",
    [
        ({"eta": 1e308, "t": [-100.0, 0.5]}, "u_11 = -inf"),  # the update overflows
        ({"x": [1e308, 1e308], "w": [[1e308, 0.2, 0.3], [-1e308, 0.2, 0.3]]}, "= NaN"),  # inf - inf
    ],
)
def test_a_step_past_a_non_finite_update_is_refused_and_the_page_goes_on(values, broken):
    # 'Next step' after an update to inf or NaN failed in the server (the frame's inputs
    # are not JSON): the page said the server had stopped, and every button was dead
    s = Session("t")
    s.command({"op": "tutorial.set", "values": values})
    for _ in range(5):
        s.command({"op": "tutorial.phase", "delta": 1})
    with pytest.raises(CommandError, match=f"the update made .*{re.escape(broken)}; a next step"):
        s.command({"op": "tutorial.phase", "delta": 1})
    s.publish()  # the frame is still one the page can read
    frame = json.loads(s.latest()[1])["tutorial"]
    assert (frame["step"], frame["phase"]) == (1, 5)
    # the formulas write NaN and infinities as the table does (they wrote 'nan')
    text = " ".join(line for phase in frame["formulas"] for line in phase)
    assert not re.search(r"\b(nan|inf)\b", text.replace("+inf", "").replace("-inf", ""))
    s.command({"op": "tutorial.phase", "delta": -1})  # and every button still works
    s.command({"op": "tutorial.reset"})


@pytest.mark.parametrize("b2", [[20.0, 0.5], [-20.0, 0.5], [0.6, 0.6]])
def test_the_shown_factors_of_each_delta_multiply_to_the_shown_delta(b2):
    # a saturated output read δ_1 = (0.990000)(1.000000)(1 - 1.000000) = 9.1125313e-10
    start = {**example_inputs(), "b2": b2}
    checked = 0
    for phase in Tutorial(start).frame()["formulas"]:
        for line in phase:
            if not line.startswith("δ("):
                continue
            checked += 1
            numbers = line.split(" = ")[2]  # the formula, then its numbers, then the value
            factors = re.findall(r"\(([^()]*)\)", numbers)
            product = 1.0
            for f in factors:
                product *= 1 - float(f[4:]) if f.startswith("1 - ") else float(f)
            shown = float(line.split(" = ")[-1])
            assert product == pytest.approx(shown, rel=1e-4), line
    assert checked == 2 + 3  # every output's and hidden unit's δ


def test_the_deltas_of_the_two_layers_are_told_apart():
    # phase 5 showed ∂L/∂u_11 = δ_1 h_1 (an output's δ) above ∂L/∂w_11 = δ_1 x_1 (a hidden
    # unit's): the layer is written as a(1) and a(2) write it
    _, _, out_deltas, hidden, grads, _ = Tutorial().frame()["formulas"]
    assert [line.split(" = ")[0] for line in out_deltas] == ["δ(2)_1", "δ(2)_2"]
    assert hidden[0].startswith("∂L/∂h_1 = δ(2)_1 u_11 + δ(2)_2 u_12 = ")
    assert [line.split(" = ")[0] for line in hidden[3:]] == ["δ(1)_1", "δ(1)_2", "δ(1)_3"]
    assert grads[0].startswith("∂L/∂u_11 = δ(2)_1 h_1 = (0.12539449)(0.593270) = ")
    assert "∂L/∂b(2)_1 = δ(2)_1 = " in grads[6]
    assert grads[8].startswith("∂L/∂w_11 = δ(1)_1 x_1 = ")
    assert "∂L/∂b(1)_1 = δ(1)_1 = " in grads[14]
    assert not any("δ_" in line for phase in (out_deltas, hidden, grads) for line in phase)


def test_the_formulas_of_saturated_units_odd_targets_and_a_coarse_estimate():
    """Found by checking the page's numbers by hand (mpmath, 50 digits): at x = (100, 100)
    the hidden deltas showed 0 where they are 3.5181838e-26 and 8.0726823e-35 (1 - h taken
    from an h rounded to 1); a target of -3 read '(0.803158 - -3)²'; with a target of 1e150
    the gradients sat beside finite differences of 0 with nothing said (explain says the
    estimate cannot check them)."""
    s = Session("t")
    s.command({"op": "tutorial.set", "values": {"x": [100.0, 100.0]}})
    s.publish()
    hidden = json.loads(s.latest()[1])["tutorial"]["formulas"][3]
    assert hidden[-2].endswith("= 3.5181838e-26") and hidden[-1].endswith("= 8.0726823e-35")
    assert "(1.000000)(1.8876036e-33) = 8.0726823e-35" in hidden[-1]
    s.command({"op": "tutorial.set", "values": {"x": [0.05, 0.1], "t": [-3.0, 0.5]}})
    s.publish()
    frame = json.loads(s.latest()[1])["tutorial"]
    assert "(0.803158 - (-3))² + (0.829942 - 0.5)²" in frame["formulas"][1][0]
    assert "cannot check" not in " ".join(frame["formulas"][4])
    s.command({"op": "tutorial.set", "values": {"t": [1e150, 0.0]}})
    s.publish()
    gradients = json.loads(s.latest()[1])["tutorial"]["formulas"][4]
    assert gradients[-1].startswith("The finite differences are off by about 1.1e+289")
    assert gradients[-1].endswith("so they cannot check these gradients")


def test_a_long_walk_keeps_the_frame_bounded(monkeypatch):
    # the frame carried the loss of every step taken (80 kB at step 1000, growing on)
    import backprop.playground.tutorial as tutorial

    monkeypatch.setattr(tutorial, "MAX_BACK", 5)
    tut = Tutorial()
    for _ in range(6 * 9):  # nine steps
        tut.advance(1)
    frame = tut.frame()
    assert frame["step"] == 10 and len(frame["losses"]) == 6  # five back, and this one
    for _ in range(6 * 5):  # Back through all five: each step's loss is still its own
        tut.advance(-1)
    assert tut.frame()["step"] == 5 and len(tut.frame()["losses"]) == 1
    with pytest.raises(tutorial.ExplainError, match="there is no earlier step"):
        for _ in range(6):
            tut.advance(-1)


def test_saturated_and_dead_units_are_flagged_and_explained():
    run = TrainRun({**SMALL, "activation": "sigmoid", "hidden": [3]})
    state = run.model.state_dict()
    state["layers.0.W"] = np.array([[40.0, 0.1, 0.0], [40.0, 0.2, 0.0]])
    state["layers.0.b"] = np.array([30.0, 0.0, -50.0])
    run.model.load_state_dict(state)
    units = run.frame()["saturation"][0]
    assert [u["state"] for u in units] == ["saturated", "ok", "saturated"]
    assert "y (1 - y)" in units[0]["why"] and units[1]["why"] == ""
    relu = TrainRun({**SMALL, "activation": "relu", "hidden": [2]})
    state = relu.model.state_dict()
    state["layers.0.b"] = np.array([-100.0, 0.0])
    relu.model.load_state_dict(state)
    units = relu.frame()["saturation"][0]
    assert units[0]["state"] == "dead" and "outputs 0 for every training row" in units[0]["why"]


def test_a_setup_replays_to_the_same_bits():
    run = TrainRun({**SMALL, "optimizer": "adam", "lr": 0.02, "dropout": 0.2})
    for _ in range(7):
        run.step(10)
    run.step(1)
    run.step_epoch()
    setup = run.frame()["setup"]
    assert setup["trail"][0] == [10, 7] and setup["trail"][1] == [1, 1]
    again = TrainRun(setup)
    for k, v in run.model.state_dict().items():
        np.testing.assert_array_equal(again.model.state_dict()[k], v)
    assert again.steps == run.steps and again.epoch == run.epoch


def test_exports_load_back(tmp_path, capsys):
    run = TrainRun({**SMALL, "optimizer": "adam", "lr": 0.02})
    for _ in range(5):
        run.step(10)
    path = tmp_path / "m.safetensors"
    path.write_bytes(run.model_bytes())
    model = load_model(path)
    for k, v in run.model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v)
    data = run.step_numbers()
    assert data["step"] == 5 and len(data["parameters"]) == run.model.n_parameters
    assert all(p["finite_difference"] is not None for p in data["parameters"])
    lines = run.step_csv().splitlines()
    assert lines[0].startswith("name,index,before,grad,finite_difference,delta,after")
    assert len(lines) == 1 + run.model.n_parameters
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    cfg = tomllib.loads(run.train_toml())
    assert cfg["layers"] == [2, 4, 2] and cfg["optimizer"] == "adam"
    (tmp_path / "c.toml").write_text(run.train_toml())
    out = tmp_path / "run"
    capsys.readouterr()
    code = main(["train", "--config", str(tmp_path / "c.toml"), "--out", str(out),
                 "--no-progress", "--no-plots"])  # fmt: skip
    assert code == 0 and (out / "model.safetensors").exists()
    assert run.train_command().startswith("backprop train --dataset xor --n-samples 100")
    # the run train made has the playground's settings, not train's defaults for xor
    # (uniform biases and early stopping filled in what the export left out)
    resolved = tomllib.loads((out / "config.toml").read_text())
    for key, value in run.train_config().items():
        expected = [int(v) for v in value.split(",")] if key == "layers" else value
        assert resolved[key] == expected, key
    assert resolved["bias_init"] == "zeros" and resolved["early_stopping"] == 0


def test_an_exported_config_of_any_names_is_toml_that_train_reads(tmp_path, capsys):
    # a CSV target and file named with DEL (0x7f), which JSON's escapes leave as it is and
    # TOML refuses: the exported config.toml failed in --config with "Illegal character"
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    rows = "a,b,c\x7f\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(20))
    run = TrainRun({"dataset": "csv", "csv_text": rows, "csv_name": "d\x7f.csv", "hidden": [4]})
    cfg = tomllib.loads(run.train_toml())
    assert cfg["target"] == "c\x7f" and cfg["dataset"] == "d\x7f.csv"
    (tmp_path / "d\x7f.csv").write_text(rows)
    (tmp_path / "c.toml").write_text(run.train_toml())
    cfg_path, out = str(tmp_path / "c.toml"), tmp_path / "run"
    capsys.readouterr()
    with contextlib.chdir(tmp_path):
        code = main(["train", "--config", cfg_path, "--out", str(out), "--epochs", "1",
                     "--no-progress", "--no-plots"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert tomllib.loads((out / "config.toml").read_text())["target"] == "c\x7f"


def test_the_exported_train_command_runs_as_given(tmp_path, monkeypatch, capsys):
    """The default setup's exported command failed ('--init-scale applies to --init normal,
    not he_uniform'), and a file named 'my data.csv' became two arguments. A CSV run's
    exported model read raw rows as standardised ones (48% where the page showed 96%)."""
    import shlex

    rng = np.random.default_rng(1)
    X = (rng.normal(size=(80, 2)) * 50 + 1000).tolist()  # far from 0: scaling matters
    rows = ["a a,b,my class"] + [f"{x!r},{y!r},{'yes' if x > 1000 else 'no'}" for x, y in X]
    (tmp_path / "my data.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    for setup in ({}, {"dataset": "csv", "csv_text": "\n".join(rows), "csv_name": "my data.csv",
                       "csv_target": "my class", "hidden": [4]}):  # fmt: skip
        run = TrainRun(setup)
        for _ in range(3):
            run.step(10)
        argv = shlex.split(run.train_command())
        assert argv[:2] == ["backprop", "train"]
        capsys.readouterr()
        out = tmp_path / f"run{len(setup)}"
        rc = main([*argv[1:], "--out", str(out), "--no-progress", "--no-plots"])
        assert rc == 0, capsys.readouterr().err
    # the CSV run's model file: its scaling and class names, predicting what the page does
    model = load_model_bytes(tmp_path / "m.safetensors", run.model_bytes())
    assert model.preprocessing.classes == ("no", "yes")
    raw = np.array(X[:5])
    np.testing.assert_array_equal(
        model.predict(model.preprocessing.transform(raw)),
        run.model.predict(run.data.preprocessing.transform(raw)),
    )


def load_model_bytes(path: Path, data: bytes):
    path.write_bytes(data)
    return load_model(path)


def test_a_dropped_csv_trains_and_bad_ones_say_why():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    rows = ["a,b,label"] + [f"{x:.4f},{y:.4f},{'yes' if x * y > 0 else 'no'}" for x, y in X]
    run = TrainRun({"dataset": "csv", "csv_text": "\n".join(rows), "csv_name": "mine.csv",
                    "hidden": [4]})  # fmt: skip
    assert run.sizes == [2, 4, 2] and run.data.class_names == ["no", "yes"]
    assert "--dataset mine.csv --target label" in run.train_command()
    three = "a,b,c,label\n" + "\n".join(f"{i},{i},{i},{i % 2}" for i in range(20))
    with pytest.raises(SetupError, match="2-D data; this data set has 3 feature columns"):
        TrainRun({"dataset": "csv", "csv_text": three})
    bad = "a,b,label\n1,2,x\n3,oops,y\n"
    with pytest.raises(SetupError, match="mine.csv: line 3"):
        TrainRun({"dataset": "csv", "csv_text": bad, "csv_name": "mine.csv"})
    many = "a,b,label\n" + "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(10_001))
    with pytest.raises(SetupError, match=r"^mine.csv has 10,001 rows; the playground trains at "
                       r"most 10,000 \(backprop train reads the whole file\)$"):  # fmt: skip
        TrainRun({"dataset": "csv", "csv_text": many, "csv_name": "mine.csv"})
    one = "a,b,label\n" + "".join(f"{i},{-i},x\n" for i in range(20))  # (read, not trained)
    with pytest.raises(SetupError, match=r"^mine.csv: target column 'label' has a single class"):
        TrainRun({"dataset": "csv", "csv_text": one, "csv_name": "mine.csv"})


def test_a_full_temporary_folder_is_said_and_the_model_download_needs_none(tmp_path, monkeypatch):
    # with the server's temporary folder full, the model download (which needs no file)
    # and a dropped CSV both answered "internal error (...); please report it"
    import errno

    from backprop.io import save_model
    from backprop.playground import training

    run = TrainRun({**SMALL})
    run.step(10)
    save_model(tmp_path / "m.safetensors", run.model)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(training.tempfile, "TemporaryDirectory", full)
    assert run.model_bytes() == (tmp_path / "m.safetensors").read_bytes()
    rows = "a,b,label\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(20))
    with pytest.raises(SetupError, match=r"^the server cannot hold the dropped file mine.csv in "
                       r"its temporary folder \(No space left on device\)"):  # fmt: skip
        TrainRun({"dataset": "csv", "csv_text": rows, "csv_name": "mine.csv"})


def test_a_csv_of_more_classes_than_the_page_tells_apart_is_refused():
    # 1,000 classes in a 1 MiB file took a minute and 3.2 GB of memory to set up
    from backprop.playground.training import MAX_CLASSES

    def csv(k: int) -> str:
        return "a,b,label\n" + "\n".join(f"{i % 7},{i % 5},c{i % k}" for i in range(4 * k))

    run = TrainRun({"dataset": "csv", "csv_text": csv(MAX_CLASSES), "hidden": []})
    assert run.sizes == [2, MAX_CLASSES]
    with pytest.raises(SetupError, match=f"has {MAX_CLASSES + 1} classes; the playground tells "
                                         f"apart at most {MAX_CLASSES}"):  # fmt: skip
        TrainRun({"dataset": "csv", "csv_text": csv(MAX_CLASSES + 1), "hidden": []})


def test_closing_a_session_stops_its_replay():
    # a trail of 2 million one-row steps replays for half an hour; closing its session (a
    # ninth tab evicting it, the server stopping) left the replay running on
    s = Session("t")
    s.command({"op": "train.setup", "setup": {**SMALL, "batch_size": 1,
                                              "trail": [[1, 2_000_000]]}})  # fmt: skip
    replayer = s._replayer  # the command answered; the replay goes on in the background
    assert replayer is not None and replayer.is_alive() and s.busy()
    s.close()  # (it waits for the replay to end)
    assert not replayer.is_alive() and not s.busy()
    steps = s.run.steps
    time.sleep(0.3)
    assert s.run.steps == steps < 2_000_000


def test_the_pages_own_setup_json_opens():
    # its "initial_weights" (for the reader) was refused as an unknown setup key
    s = Session("t")
    s.command({"op": "train.setup", "setup": {**SMALL, "seed": 3}})
    s.command({"op": "train.step", "unit": "batch"})
    _, _, exported = s.export("setup.json")
    again = Session("u")
    again.command({"op": "setup", "setup": json.loads(exported)})
    for k, v in s.run.model.state_dict().items():
        np.testing.assert_array_equal(again.run.model.state_dict()[k], v)
    assert again.run.initial_weights() == json.loads(exported)["initial_weights"]
    # weights edited in the file are refused, not dropped without a word; nothing changes
    edited = json.loads(exported)
    first = next(iter(edited["initial_weights"]))
    edited["initial_weights"][first][0][0] += 1.0
    with pytest.raises(CommandError, match=r"initial_weights are not those its seed \(3\)"):
        again.command({"op": "setup", "setup": edited})
    assert again.run.initial_weights() == json.loads(exported)["initial_weights"]


def test_training_whose_page_is_gone_pauses(monkeypatch):
    # a tab closed while training ran trained on for ever: 44% of a core for eight sessions
    from backprop.playground import session as session_module

    monkeypatch.setattr(session_module, "ABANDONED_S", 0.5)
    s = Session("t")
    s.command({"op": "train.setup", "setup": SMALL})
    s.command({"op": "train.play"})
    for _ in range(20):  # an open page: it asks for frames, and training goes on
        seq, _ = s.latest()
        s.frame_after(seq, 0.05)
        time.sleep(0.05)
    assert s.running
    deadline = time.monotonic() + 10  # then nothing more
    while s.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not s.running and s._worker is None
    steps = s.run.steps
    time.sleep(0.3)
    assert s.run.steps == steps and json.loads(s.latest()[1])["running"] is False
    s.command({"op": "train.play"})  # the page is back: Play goes on from there
    assert s.running
    s.close()


def test_a_replay_whose_client_is_gone_pauses(monkeypatch):
    # a setup's replay ran in its request's thread for 13 minutes after the tab was closed;
    # it now goes on in the background while its page asks for its frames, and pauses once
    # the page has asked for nothing for REPLAY_GONE_S
    import socket

    from backprop.playground import session as session_module

    monkeypatch.setattr(session_module, "REPLAY_GONE_S", 1.0)
    srv = make_server("127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        before = threading.active_count()
        body = json.dumps({"setup": {"mode": "train", **SMALL, "batch_size": 1,
                                     "trail": [[1, 2_000_000]]}}).encode()  # fmt: skip
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as conn:
            conn.sendall(
                f"POST /api/session?token={srv.token} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            time.sleep(0.5)
        assert threading.active_count() > before  # the replay runs
        deadline = time.monotonic() + 10
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() == before
    finally:
        srv.stop()
        srv.server_close()


def test_the_step_export_is_explains_json_and_a_long_trail_says_why_it_cannot_replay(
    capsys,
):
    """The tutorial's step.json lacked the finite differences that explain --json (which
    docs/playground.md says it is) holds; a run trained past what a setup replays was
    refused as 'trail must be a list of [rows per step, steps] pairs'."""
    s = Session("t")
    _, _, body = s.export("step.json")
    capsys.readouterr()
    assert main(["explain", "--json"]) == 0
    assert json.loads(body) == json.loads(capsys.readouterr().out)
    with pytest.raises(
        SetupError,
        match=r"this run trained on 2,000,010 rows, more than a "
        r"setup replays \(2,000,000\); its model.safetensors export keeps",
    ):
        TrainRun({"trail": [[10, 200_001]]})  # fmt: skip


def test_the_step_export_of_an_overflowing_step_says_so():
    # step.json of a step whose numbers overflow was a 500 and a traceback (JSON has no inf)
    s = Session("t")
    s.command({"op": "tutorial.set", "values": {"w": [[1e308] * 3] * 2, "x": [1e308, 1e308]}})
    with pytest.raises(ValueError, match="step 1 overflows float64 .* is not a finite number"):
        s.export("step.json")
    assert s.export("weights.json")[0] == "weights.json"  # the rest still exports


# ------------------------------------------------------------------------ sessions
def test_frames_are_latest_wins_with_acknowledgement():
    s = Session("t")
    seq, _ = s.latest()
    s.command({"op": "tutorial.phase", "delta": 1})
    s.command({"op": "tutorial.phase", "delta": 1})
    newest, data = s.frame_after(seq, 0.0)  # asking for frames after `seq` acknowledges it
    assert newest == seq + 2 and json.loads(data)["tutorial"]["phase"] == 2  # skipped one
    assert s.acked == seq
    started = time.monotonic()
    assert s.frame_after(newest, 5.0) is None  # nothing is coming: no wait
    assert time.monotonic() - started < 0.5
    with pytest.raises(CommandError, match="unknown command 'fly'"):
        s.command({"op": "fly"})
    s.close()


def test_training_worker_runs_until_paused():
    s = Session("t")
    s.command({"op": "train.setup", "setup": {**SMALL, "speed": 3}})
    s.command({"op": "train.play"})
    assert s.busy()
    sent = s.latest()[0]
    steps = []
    deadline = time.monotonic() + 10
    while len(steps) < 5 and time.monotonic() < deadline:
        got = s.frame_after(sent, 1.0)
        if got:
            sent, data = got
            steps.append(json.loads(data)["train"]["step"])
    s.command({"op": "train.pause"})
    assert len(steps) == 5 and steps[-1] > steps[0]
    assert all(b - a in (0, 3, 6) or b > a for a, b in zip(steps, steps[1:], strict=False))
    s.close()
    assert not s.running


# ------------------------------------------------------------------------ the server
@pytest.fixture(scope="module")
def server():
    srv = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.stop()
    srv.server_close()


def request(srv, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    hdrs = {"Host": f"127.0.0.1:{srv.port}", **(headers or {})}
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r, data


def test_the_page_needs_the_token(server):
    r, body = request(server, "GET", "/")
    assert r.status == 403 and b"token" in body
    r, _ = request(server, "GET", "/?token=wrong")
    assert r.status == 403
    r, body = request(server, "GET", f"/?token={server.token}")
    assert r.status == 200 and server.token.encode() in body
    assert "script-src 'self'" in r.getheader("Content-Security-Policy")
    r, _ = request(server, "GET", f"/static/app.js?token={server.token}")
    assert r.status == 200
    r, _ = request(server, "GET", "/static/app.js")
    assert r.status == 403


def test_a_failing_command_is_an_error_on_the_page_not_a_stopped_server(server, monkeypatch):
    # a command that failed in the server closed the connection: the page read it as the
    # server having stopped, and ended itself, while the server ran on
    t = server.token
    r, body = request(server, "POST", f"/api/session?token={t}", b"{}")
    sid = json.loads(body)["session"]

    def fail(self, msg, client_gone=None):
        raise ValueError("Out of range float values\nare not JSON compliant")

    monkeypatch.setattr(Session, "command", fail)
    expected = {
        "error": "internal error (ValueError: Out of range float values are not JSON "
        "compliant); please report it"
    }
    with contextlib.redirect_stderr(io.StringIO()) as log:
        r, body = request(server, "POST", f"/api/command?token={t}&session={sid}", b"{}")
    assert r.status == 500 and "Traceback" in log.getvalue()
    assert json.loads(body) == expected
    # a page opened from a URL with a setup restores it as its session starts
    with contextlib.redirect_stderr(io.StringIO()) as log:
        r, body = request(server, "POST", f"/api/session?token={t}", b'{"setup": {"x": 1}}')
    assert r.status == 500 and "Traceback" in log.getvalue() and json.loads(body) == expected


def test_hostile_requests_are_one_clear_error_and_leave_the_session_working(server):
    # each of these was a 500 or a dropped connection, some leaving the session broken
    t = server.token
    sid = json.loads(request(server, "POST", f"/api/session?token={t}", b"{}")[1])["session"]
    url = f"/api/command?token={t}&session={sid}"

    def command(msg):
        r, body = request(server, "POST", url, json.dumps(msg).encode())
        return r.status, json.loads(body)

    cases = [
        ({"op": "train.setup", "setup": {"optimizer": "nesterov", "momentum": 0}},
         "nesterov needs a momentum in (0, 1)"),
        ({"op": "train.select", "weight": ["layers.0.W", [True, False]]}, "is outside"),
        ({"op": "train.setup", "setup": {"csv_name": "\ud800"}}, "lone UTF-16 surrogate"),
        ({"op": "tutorial.set", "values": {"t": [1e308, 1e308]}}, "overflow float64"),
    ]  # fmt: skip
    for msg, fragment in cases:
        status, body = command(msg)
        assert status == 400 and fragment in body["error"], (msg, body)
    # and the session goes on, with the numbers it had
    assert command({"op": "tutorial.set", "values": {"eta": 0.7}})[0] == 200
    assert command({"op": "train.step", "unit": "batch"})[0] == 200
    export = f"/api/export?token={t}&session={sid}&what=setup.json"
    assert command({"op": "mode", "mode": "tutorial"})[0] == 200
    assert json.loads(request(server, "GET", export)[1])["inputs"]["t"] == [0.01, 0.99]
    # numbers that str.isdigit() takes and int() does not: 400s, not tracebacks
    r, _ = request(server, "GET", f"/api/frame?token={t}&session={sid}&after=%C2%B2")
    assert r.status == 400
    for length in ("²", "0" * 5000):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.putrequest("POST", url)
        conn.putheader("Host", f"127.0.0.1:{server.port}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", length.encode("latin-1"))
        conn.endheaders()
        assert conn.getresponse().status == 411
        conn.close()


def test_evicting_a_tab_does_not_hold_up_the_others(monkeypatch):
    # the ninth tab closed the least recently used session under the sessions' lock, and a
    # close waits up to 5 s for that session's training thread: every tab's request waited
    srv = make_server("127.0.0.1", 0)
    try:
        sessions = [srv.new_session() for _ in range(MAX_SESSIONS)]
        closing = threading.Event()

        def slow_close(self):
            closing.set()
            time.sleep(1.0)

        monkeypatch.setattr(Session, "close", slow_close)
        sessions[0].last_seen = -1.0  # the least recently used
        ninth = threading.Thread(target=srv.new_session)
        ninth.start()
        assert closing.wait(5)
        start = time.monotonic()
        assert srv.session(sessions[-1].sid) is sessions[-1]
        assert time.monotonic() - start < 0.5
        ninth.join()
        assert srv.session(sessions[0].sid) is None
    finally:
        srv.server_close()


def test_a_silent_connection_is_closed(monkeypatch):
    # connections that never send a request (no token needed) held a thread and a
    # descriptor each for ever: about 250 of them stopped the server
    import socket

    from backprop.playground.server import PlaygroundHandler

    assert 0 < PlaygroundHandler.timeout <= 60
    monkeypatch.setattr(PlaygroundHandler, "timeout", 0.3)
    srv = make_server("127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as idle:
            start = time.monotonic()
            assert idle.recv(1) == b""  # closed by the server, having sent nothing
            assert time.monotonic() - start < 5
    finally:
        srv.stop()
        srv.server_close()


def test_connections_beyond_the_bound_are_closed_and_slots_come_back(monkeypatch):
    # connections that trickle a byte under the idle timeout were each a thread for ever:
    # now the one past MAX_CONNECTIONS is closed unanswered, and a closed one frees its slot
    import socket

    from backprop.playground import server as server_module

    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 3)
    srv = make_server("127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def connect():
        return socket.create_connection(("127.0.0.1", srv.port), timeout=10)

    held = []
    try:
        held += [connect() for _ in range(3)]
        for sock in held:
            sock.sendall(b"GET / HTTP/1.1\r\n")  # a request begun, never finished
        with connect() as extra:
            assert extra.recv(1) == b""  # closed at once, answered nothing
        held.pop().close()
        deadline = time.monotonic() + 5  # the closed one's thread ends, giving its slot back
        served = _served(srv)
        while not served and time.monotonic() < deadline:
            time.sleep(0.05)
            served = _served(srv)
        assert served
    finally:
        for sock in held:
            sock.close()
        srv.stop()
        srv.server_close()


def _served(srv) -> bool:
    """Whether a new connection to ``srv`` is served (not closed unanswered)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("GET", f"/?token={srv.token}", headers={"Host": f"127.0.0.1:{srv.port}"})
        r = conn.getresponse()
        r.read()
        return r.status == 200
    except (ConnectionError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def test_error_pages_to_unreadable_request_lines_carry_the_security_headers(server):
    """A request line of another HTTP version, or of three words and more, was answered as
    HTTP/0.9: the error page alone, no status line and no headers (no CSP)."""
    import socket

    for line in (b"GET / HTTP/9.9", b"GET /x HTTP/1.1 extra", b"\x01\x02 garbage"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(line + b"\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        assert head.startswith("HTTP/1."), (line, reply[:80])  # a status line, headers
        assert "Content-Security-Policy: default-src 'none'" in head, (line, head)


def test_the_standard_librarys_error_pages_carry_the_security_headers(server):
    # a method the server has no do_ for (501) and an over-long request line (414) were
    # answered by http.server's own pages, without the CSP and nosniff headers
    for method, path in (("BREW", "/"), ("GET", "/" + "a" * 70_000)):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", f"127.0.0.1:{server.port}")
        conn.endheaders()
        r = conn.getresponse()
        r.read()
        conn.close()
        assert r.status in (501, 414), (method, r.status)
        assert "default-src 'none'" in r.getheader("Content-Security-Policy", "")
        assert r.getheader("X-Content-Type-Options") == "nosniff"


def test_a_dropped_csv_takes_its_last_column_as_the_reader_reads_it():
    # leading blank lines, a row of empty cells, or quoted names made the target '' or '"c"'
    rows = "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))
    for head in ("\n\n\na,b,c\n", ",,\na,b,c\n", '"a","b","c"\n'):
        run = TrainRun({**SMALL, "dataset": "csv", "csv_text": head + rows, "csv_name": "x.csv"})
        assert run.setup["csv_target"] == "c", head


def test_moments_past_the_range_are_a_divergence():
    # Adam's v reached inf at step 9 (gradients past 1e154 squared, beta2 = 0) with the
    # weights finite: the step went on, and its step.json export failed in the server
    run = TrainRun({"dataset": "xor", "n_samples": 100, "noise": 2.0, "test_fraction": 0.9,
                    "hidden": [1, 32, 32, 32, 32, 1], "activation": "leaky_relu",
                    "beta1": 0.999, "beta2": 0.0, "batch_size": 1, "init": "auto",
                    "seed": 0})  # fmt: skip
    for _ in range(20):
        run.step(1)
        if run.diverged:
            break
    assert run.diverged.startswith("Diverged at step 9: the adam optimizer's moments became")
    assert all(np.isfinite(a).all() for a in run.optimizer.state_arrays())  # undone
    json.dumps(run.step_numbers(), allow_nan=False)


def test_a_steps_export_writes_moments_past_the_range_as_null():
    run = TrainRun({**SMALL, "optimizer": "adam"})
    run.step(8)
    run.last.opt_after["slots"] = {
        k: np.full_like(np.asarray(v), np.inf) for k, v in run.last.opt_after["slots"].items()
    }  # (such a step is now stopped as divergence; the export stays JSON whatever it holds)
    data = json.loads(json.dumps(run.step_numbers(), allow_nan=False))
    assert data["parameters"][0]["optimizer_v"] is None


def test_foreign_host_and_origin_are_refused(server):
    t = server.token
    r, body = request(server, "GET", f"/?token={t}", headers={"Host": "evil.example:80"})
    assert r.status == 403 and b"Host" in body
    r, _ = request(server, "GET", f"/?token={t}", headers={"Host": f"localhost:{server.port}"})
    assert r.status == 200
    r, body = request(server, "POST", f"/api/session?token={t}", b"{}",
                      {"Origin": "http://evil.example"})  # fmt: skip
    assert r.status == 403 and b"Origin" in body
    r, _ = request(server, "POST", f"/api/session?token={t}", b"{}",
                   {"Origin": f"http://127.0.0.1:{server.port}"})  # fmt: skip
    assert r.status == 200
    r, _ = request(server, "GET", f"/?token={t}", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 403


def test_a_refused_requests_body_is_never_read_as_a_request(server):
    # a cross-site form's text/plain body holding a whole request: the 403 left the
    # connection open, and the server answered the body as a second request
    import socket

    inner = f"GET /?token={server.token} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(
            f"POST /api/session?token={server.token} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\nOrigin: https://evil.example\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(inner)}\r\n\r\n{inner}".encode()
        )
        answer = b""
        while chunk := conn.recv(65536):  # (until the server closes the connection)
            answer += chunk
    assert answer.count(b"HTTP/1.1 ") == 1 and answer.startswith(b"HTTP/1.1 403")


def test_bodies_and_commands_are_bounded_and_checked(server):
    t = server.token
    # refused from the declared size alone, before any of the body is read (sending the
    # whole body would race the server's close: the client may see a broken pipe instead)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("POST", f"/api/session?token={t}", skip_host=True)
    conn.putheader("Host", f"127.0.0.1:{server.port}")
    conn.putheader("Content-Length", str(3 << 20))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413
    conn.close()
    r, _ = request(server, "POST", f"/api/session?token={t}", b"not json")
    assert r.status == 400
    # bodies json.loads refuses with ValueError or RecursionError, not JSONDecodeError
    # (the handler raised and dropped the connection before)
    for body, match in [
        (b'{"seq": ' + b"9" * 5000 + b"}", "the body is not JSON: Exceeds the limit"),
        (b"[" * 100_000 + b"]" * 100_000, "the body is JSON nested too deeply"),
    ]:
        r, data = request(server, "POST", f"/api/session?token={t}", body)
        assert r.status == 400 and json.loads(data)["error"].startswith(match)
    r, data = request(server, "POST", f"/api/session?token={t}", b"{}")
    sid = json.loads(data)["session"]
    r, data = request(server, "POST", f"/api/command?token={t}&session={sid}",
                      json.dumps({"op": "train.setup", "setup": {"lr": -1}}).encode())  # fmt: skip
    assert r.status == 400 and "learning rate η must be a number" in json.loads(data)["error"]
    for command, error in [
        ({"op": "train.setup", "setup": {"speed": 10**400}}, "steps per frame must be a whole"),
        (
            {"op": "tutorial.set", "values": {"eta": 10**400}},
            "η (the learning rate) must be a finite number",
        ),
        ({"op": "train.select", "point": 10**400}, "point 10000"),
    ]:
        r, data = request(server, "POST", f"/api/command?token={t}&session={sid}",
                          json.dumps(command).encode())  # fmt: skip
        assert r.status == 400 and json.loads(data)["error"].startswith(error), data
    r, _ = request(server, "POST", f"/api/command?token={t}&session=nope", b'{"op": "ack"}')
    assert r.status == 404
    r, _ = request(server, "GET", f"/etc/passwd?token={t}")
    assert r.status == 404
    for _ in range(12):  # sessions are bounded: the least recently used ones go
        request(server, "POST", f"/api/session?token={t}", b"{}")
    assert len(server.sessions) <= 8


def test_frames_come_with_commands_and_are_pulled_without_waiting_when_idle(server):
    """No request stays open while no frame is coming: a browser's six connections per host
    then serve any number of tabs (an endless event stream per tab froze them at six)."""
    t = server.token
    _, data = request(server, "POST", f"/api/session?token={t}", b"{}")
    answer = json.loads(data)
    sid, frame = answer["session"], answer["frame"]
    assert frame["tutorial"]["values"]["loss"]["s"] == "0.3273591340" and not answer["busy"]
    r, data = request(server, "POST", f"/api/command?token={t}&session={sid}",
                      b'{"op": "tutorial.phase", "delta": 1}')  # fmt: skip
    answer = json.loads(data)
    assert r.status == 200 and answer["frame"]["tutorial"]["phase"] == 1
    seq = answer["frame"]["seq"]
    started = time.monotonic()
    r, data = request(server, "GET", f"/api/frame?token={t}&session={sid}&after={seq}&wait=1")
    assert r.status == 200 and json.loads(data) == {"busy": False, "frame": None}
    assert time.monotonic() - started < 1.0  # idle: answered at once, not held open
    r, data = request(server, "GET", f"/api/frame?token={t}&session={sid}&after=0")
    assert json.loads(data)["frame"]["seq"] == seq  # a newer frame than the one drawn
    r, data = request(server, "GET", f"/api/frame?token={t}&session={sid}&after=x")
    assert r.status == 400 and "after must be a frame number" in json.loads(data)["error"]
    r, data = request(server, "GET", f"/api/frame?token={t}&session=gone&after=0")
    assert r.status == 404 and "reload the page" in json.loads(data)["error"]
    _, body = request(server, "GET", f"/api/export?token={t}&session={sid}&what=step.json")
    assert json.loads(body)["loss"] == frame["tutorial"]["values"]["loss"]["v"]


def test_a_waiting_frame_request_learns_that_its_server_or_session_ended():
    """A frame request held open while training ran got 200 and 'busy: false' when the
    server stopped, and the page went idle, still saying 'live' (up to 5 s); the server now
    closes it unanswered, as any request to a stopping server, and a tab closed for a newer
    one gets the 404 that says so."""
    srv = make_server("127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    t = srv.token
    answers: dict[str, object] = {}

    def training_session() -> str:
        _, data = request(srv, "POST", f"/api/session?token={t}", b"{}")
        sid = json.loads(data)["session"]
        request(srv, "POST", f"/api/command?token={t}&session={sid}", b'{"op": "train.play"}')
        return sid

    def wait_for_frame(sid: str) -> threading.Thread:
        def run() -> None:  # a frame number no run reaches: the request waits
            path = f"/api/frame?token={t}&session={sid}&after={10**11}&wait=1"
            try:
                r, data = request(srv, "GET", path)
                answers[sid] = (r.status, json.loads(data))
            except (http.client.RemoteDisconnected, ConnectionError) as e:
                answers[sid] = e

        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(0.3)
        return thread

    try:
        evicted = training_session()
        waiting = wait_for_frame(evicted)
        for _ in range(MAX_SESSIONS):  # newer tabs: the first is the least recently used
            request(srv, "POST", f"/api/session?token={t}", b"{}")
        waiting.join(timeout=10)
        status, body = answers[evicted]
        assert status == 404 and "this tab's session has ended" in body["error"]
        running = training_session()
        waiting = wait_for_frame(running)
    finally:
        srv.stop()
        srv.server_close()
    waiting.join(timeout=10)
    assert isinstance(answers[running], http.client.RemoteDisconnected | ConnectionError)


def test_a_csv_runs_url_says_to_drop_its_file_and_shows_train_mode(server):
    t = server.token
    setup = {"mode": "train", "dataset": "csv", "csv_name": "mine.csv", "trail": [[10, 2]]}
    _, data = request(server, "POST", f"/api/session?token={t}",
                      json.dumps({"setup": setup}).encode())  # fmt: skip
    answer = json.loads(data)
    assert "trained on the CSV file mine.csv" in answer["error"]
    assert "drop that file on the page" in answer["error"]
    assert answer["frame"]["mode"] == "train"


def test_static_files_are_package_data():
    static = resources.files("backprop.playground").joinpath("static")
    for name in ("index.html", "app.js", "style.css"):
        assert static.joinpath(name).is_file()
    text = static.joinpath("app.js").read_text(encoding="utf-8")
    # the page formats no number itself: every text comes from the server
    assert not re.search(r"toFixed|toPrecision|toExponential|toLocaleString", text)
    html = static.joinpath("index.html").read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing from outside


def test_the_command_prints_its_url_and_stops_on_ctrl_c():
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "backprop", "playground", "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        m = re.match(
            r"backprop playground: http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)$", line.strip()
        )
        assert m, line
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)
        conn.request("GET", f"/?token={m.group(2)}")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert "Stopping the playground." in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_a_port_in_use_says_how_to_take_another(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["playground", "--no-browser", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}: " in err
    assert err.endswith("(another playground? --port 0 takes any free port)\n")


def test_bad_weights_file_is_one_clear_error(tmp_path, capsys):
    bad = tmp_path / "w.json"
    bad.write_text('{"w": [[1]]}')
    assert main(["playground", "--no-browser", "--weights", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: weights file") and "missing" in err
    # weights the page cannot draw: refused before the server starts (each page's session
    # raised instead, a traceback in the terminal and a dropped connection)
    for name, weights, fragment in [
        ("w9.json", {"w": [[0.1] * 9] * 2, "b1": [0.0] * 9, "u": [[0.1, 0.2]] * 9,
                     "b2": [0.0] * 2}, "the tutorial draws at most 8 units per layer"),
        ("w43.json", {"w": [[0.1] * 4] * 2, "b1": [0.0] * 4, "u": [[0.1, 0.2, 0.3]] * 4,
                      "b2": [0.0] * 3}, "t has 2 values but the network has 3 outputs"),
    ]:  # fmt: skip
        path = tmp_path / name
        path.write_text(json.dumps(weights))
        assert main(["playground", "--no-browser", "--port", "0", "--weights", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"Error: weights file {path}: {fragment}") and err.count("\n") == 1


def test_an_ipv6_address_is_served():
    """--host ::1 was refused ('Address family for hostname not supported'): the server's
    socket was IPv4 whatever the address, though the URL and Host checks expected IPv6."""
    import socket
    import urllib.request

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    srv = make_server("::1", 0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        assert srv.url.startswith("http://[::1]:")
        with urllib.request.urlopen(srv.url, timeout=10) as response:
            assert response.status == 200 and b"playground" in response.read()
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def test_with_dropout_a_points_share_is_taken_under_the_steps_masks():
    # the share was traced without the masks: the batch's shares added up to +0.037 beside
    # a batch gradient of -0.021 (a point whose hidden unit the mask had dropped showed a
    # share of -0.00097, where its contribution was exactly 0)
    run = TrainRun({"dataset": "moons", "n_samples": 60, "hidden": [5, 4],
                    "activation": "leaky_relu", "loss": "cross_entropy", "optimizer": "sgd",
                    "lr": 0.2, "dropout": 0.4, "batch_size": 6, "seed": 9})  # fmt: skip
    for _ in range(3):
        run.step(6)
    last = run.last
    for name in ("layers.0.W", "layers.1.b"):
        for idx in np.ndindex(last.grads[name].shape):
            shares = [run._point_gradient(last, i, name, idx)[1] for i in set(last.rows.tolist())]
            assert sum(shares) == pytest.approx(float(last.grads[name][idx]), abs=1e-12)
    # what the weight's panel says: the point's gradient under the masks, and that it is
    inside, outside = int(last.rows[0]), next(i for i in range(60) if i not in last.rows)
    for point, masked in ((inside, True), (outside, False)):
        run.select(point, ["layers.0.W", [0, 0]])
        detail = run._inspect()["weight"]
        assert detail["point_masked"] is masked
        if not masked:
            assert detail["point_share"]["v"] == 0


def test_adamws_update_lines_add_up_as_printed():
    # the update line substituted the p from before the decay, and named the decay after it:
    # 0.34675839 - (0.05)(0.96720618) / (√0.93548779 + 1e-08) printed as 0.29502460
    run = TrainRun({**SMALL, "optimizer": "adamw", "lr": 0.05, "weight_decay": 0.1})
    run.step(10)
    lines = run._weight_detail("layers.0.W", (0, 0))["update"]
    decay, update = lines[-3], lines[-2]
    p, eta, lam, _, decayed = map(float, re.findall(r"-?[\d.]+(?:e[-+]\d+)?", decay)[-5:])
    assert decay.startswith("p ← p - η λ p") and decayed == pytest.approx(p - eta * lam * p, 1e-7)
    start, eta, m_hat, v_hat, eps, after = map(
        float, re.findall(r"-?[\d.]+(?:e[-+]\d+)?", update.split("=", 1)[1])
    )
    assert start == decayed
    assert after == pytest.approx(start - eta * m_hat / (v_hat**0.5 + eps), rel=1e-6)


def test_the_decision_map_is_sampled_at_its_cells_centres():
    # sampled at linspace(x0, x1, 64) and drawn cell j over [j, j + 1) / 64 of the map, it
    # sat up to half a cell off the points and axes
    from backprop.playground.training import GRID

    run = TrainRun(SMALL)
    x0, x1, y0, y1 = run._grid["extent"]
    points = run._grid["points"].reshape(GRID, GRID, 2)
    w, h = (x1 - x0) / GRID, (y1 - y0) / GRID
    np.testing.assert_allclose(points[0, :, 0], x0 + (np.arange(GRID) + 0.5) * w)
    np.testing.assert_allclose(points[:, 0, 1], y1 - (np.arange(GRID) + 0.5) * h)  # top row first
    # and each unit map's 16 x 16 cells at their own centres (they sat 1.5 map cells off)
    from backprop.playground.training import UNIT_GRID

    units = run._grid["unit_points"].reshape(UNIT_GRID, UNIT_GRID, 2)
    np.testing.assert_allclose(units[0, :, 0], x0 + (np.arange(UNIT_GRID) + 0.5) * (x1 - x0)
                               / UNIT_GRID)  # fmt: skip


def test_a_replayed_run_shows_its_last_steps_numbers_as_after_a_step():
    # opened from a URL or setup.json, the run stood at its replayed step without the
    # step's gradients or table, and the page said 'pause to see' with nothing running
    s = Session("t")
    s.command({"op": "train.setup", "setup": {**SMALL, "trail": [[10, 3]]}})
    last = json.loads(s.latest()[1])["train"]["last"]
    assert last["step"] == 3 and "grads" in last and "delta" in last
    deadline = time.monotonic() + 30
    while s.busy() and time.monotonic() < deadline:  # the table, computed in the background
        time.sleep(0.05)
    assert s.run.last.full_fd is not None
    s.close()


def test_finite_differences_on_a_kink_are_said_to_be():
    # a batch row whose layer 0 the mask dropped whole put layer 1's inputs exactly on
    # leaky ReLU's kink: gradient -6e-08 beside a finite difference of 0.0397, unmarked
    run = TrainRun({"dataset": "moons", "n_samples": 60, "hidden": [5, 4],
                    "activation": "leaky_relu", "loss": "cross_entropy", "optimizer": "sgd",
                    "lr": 0.2, "dropout": 0.4, "batch_size": 6, "seed": 9})  # fmt: skip
    run.step(6)
    run.full_finite_differences()
    rows = run._inspect()["table"]["rows"]
    marked = {(r["name"], tuple(r["index"])) for r in rows if r["fd"]["s"].endswith("(on a kink)")}
    assert ("layers.1.b", (0,)) in marked
    for r in rows:  # an unmarked estimate agrees with its gradient
        if (r["name"], tuple(r["index"])) not in marked:
            assert r["fd"]["v"] == pytest.approx(r["grad"]["v"], rel=1e-4, abs=1e-7)


# ------------------------------------------------------------------------ setups opened again
def test_a_long_replay_answers_at_once_and_shows_how_far_it_has_got(monkeypatch):
    # a URL of many steps was replayed whole inside the page's first request: the page said
    # "connecting" for up to 30 s. The command now answers after REPLAY_WAIT_S (0 here) and
    # the replay goes on in slices, a frame after each; the run ends on the same bits
    from backprop.playground import session as session_module

    # (raising=False: before these existed, the command replayed the whole trail)
    monkeypatch.setattr(session_module, "REPLAY_WAIT_S", 0.0, raising=False)
    monkeypatch.setattr(session_module, "REPLAY_SLICE_S", 0.05, raising=False)
    setup = {**SMALL, "dropout": 0.2, "trail": [[10, 5000], [1, 2]]}
    s = Session("t")
    s.command({"op": "setup", "setup": {"mode": "train", **setup}})
    frame = json.loads(s.latest()[1])["train"]
    replay = frame["replay"]
    assert replay["total"] == 5002 and replay["done"] < 5002, replay
    assert f"replaying the setup's steps, {replay['done']:,} of 5,002 done" in frame["progress"]
    assert frame["setup"]["trail"] == setup["trail"]  # the URL keeps the whole trail
    assert s.busy()  # the page pulls the frames that come
    with pytest.raises(CommandError, match="still replaying its setup's steps"):
        s.command({"op": "train.step", "unit": "batch"})  # another run than the setup's
    with pytest.raises(CommandError, match="export step.json once it has"):
        s.export("step.json")
    seen = [replay["done"]]
    seq = s.latest()[0]
    deadline = time.monotonic() + 60
    while s.busy() and time.monotonic() < deadline:
        got = s.frame_after(seq, 5.0)
        if got is not None:
            seq = got[0]
            if (r := json.loads(got[1])["train"]["replay"]) is not None:
                seen.append(r["done"])
    assert len(set(seen)) > 1 and seen == sorted(seen), seen
    end = json.loads(s.latest()[1])["train"]
    assert end["replay"] is None and end["step"] == 5002
    assert "grads" in end["last"] and s.run.last.full_fd is not None  # as after a step
    whole = TrainRun(setup)  # replayed at once
    for k, v in whole.model.state_dict().items():
        np.testing.assert_array_equal(s.run.model.state_dict()[k], v)
    assert s.run.setup["trail"] == setup["trail"]
    s.close()


def test_a_replay_takes_the_engines_own_steps_bit_for_bit():
    # a replayed step keeps no numbers for the inspector (but its last) and the rows are
    # converted once, not per batch: the same bits as the engine stepped by hand
    setup = {**SMALL, "dropout": 0.2, "optimizer": "adam", "trail": [[10, 12], [1, 3], [7, 20]]}
    run = TrainRun(setup)
    ref = TrainRun({k: v for k, v in setup.items() if k != "trail"})  # its model at step 0
    m, opt, n = ref.model, ref.optimizer, ref.X.shape[0]
    order_rng = np.random.default_rng([0, 7])  # the run's batch order, as TrainRun draws it
    order, pos = order_rng.permutation(n), 0
    for rows, count in setup["trail"]:
        for _ in range(count):
            take = order[pos : pos + rows]
            m.forward_backward(m.as_inputs(ref.X[take]), m.as_targets(ref.T[take], len(take)))
            opt.step(m.params, m.grads, flat=m.flat)
            pos += len(take)
            if pos >= n:
                order, pos = order_rng.permutation(n), 0
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(run.model.state_dict()[k], v)
    assert run.steps == run.last.number == 35 and run.trail == setup["trail"]


def test_a_setups_phase_is_numbered_as_the_page_numbers_it():
    # the page said "Phase 3 of 6" where its URL and setup.json said "phase": 2
    s = Session("t")
    for _ in range(2):
        s.command({"op": "tutorial.phase", "delta": 1})
    frame = json.loads(s.latest()[1])
    assert frame["tutorial"]["phase"] == 2 and frame["setup"]["phase"] == 3
    assert json.loads(s.export("setup.json")[2])["phase"] == 3
    again = Session("u")
    again.command({"op": "setup", "setup": frame["setup"]})
    assert again.tutorial.phase == 2
    again.command({"op": "setup", "setup": {"mode": "tutorial", "phase": 6}})
    assert again.tutorial.phase == 5
    # written before, numbered from 0: its 0, which is no phase now, is the first phase
    again.command({"op": "setup", "setup": {"mode": "tutorial", "phase": 0}})
    assert again.tutorial.phase == 0
    again.command({"op": "tutorial.phase", "delta": 1})
    refused = r'^phase must be a whole number from 1 to 6, as the page numbers them \("Phase 1 of'
    for bad in (7, -1, 2.5, "3", True, None):
        with pytest.raises(CommandError, match=refused):
            again.command({"op": "setup", "setup": {"mode": "tutorial", "phase": bad}})
        assert again.tutorial.phase == 1  # as it was


def test_a_refused_setup_changes_nothing_and_says_what_it_expected():
    # a setup.json opened on the page goes through the URL's command; a refused tutorial
    # setup switched a train page to the tutorial, and a list said only what a setup is
    s = Session("t")
    s.command({"op": "train.setup", "setup": {**SMALL, "lr": 0.02}})
    s.command({"op": "train.step", "unit": "batch"})
    weights = s.run.model.state_dict()
    expected = '"mode": "tutorial" or "train", as setup.json holds; got '
    for bad, match in [
        ([1, 2], f"^a setup is a JSON object with {expected}a list$"),
        ("setup", f"^a setup is a JSON object with {expected}a string$"),
        ({"lr": 0.1}, '^a setup\'s "mode" is "tutorial" or "train"; got none$'),
        ({"mode": "play"}, "^a setup's \"mode\" is \"tutorial\" or \"train\"; got 'play'$"),
        ({"mode": "tutorial", "phase": 9}, "^phase must be a whole number from 1 to 6"),
        ({"mode": "tutorial", "step": 0}, "^step must be a whole number from 1 to 90071992547"),
        ({"mode": "tutorial", "inputs": [1]}, "^inputs must be an object with some of x, t, eta"),
        ({"mode": "tutorial", "inputs": {"eta": -1}}, r"^η \(the learning rate\) must be 0 or"),
        ({"mode": "tutorial", "colour": 1}, r"^unknown tutorial setup keys \['colour'\]; expec"),
        ({"mode": "train", "lr": 500}, "^learning rate η must be a number from 1e-06 to 100; got"),
        ({"mode": "train", "trail": "all"}, "^trail must be a list of"),
    ]:  # fmt: skip
        with pytest.raises(CommandError, match=match):
            s.command({"op": "setup", "setup": bad})
        assert s.mode == "train" and s.run.steps == 1 and s.run.setup["lr"] == 0.02, bad
    for k, v in weights.items():
        np.testing.assert_array_equal(s.run.model.state_dict()[k], v)


def test_a_setup_of_a_step_past_ten_thousand_opens_again():
    """The page writes the step it has reached, and a bound of 10,000 on reading setups back
    refused its own exports past it (the session review, with the bound patched to 2)."""
    tut = Tutorial()
    tut.step_number = 10_001
    again = Tutorial()
    again.restore(json.loads(json.dumps(tut.setup())))
    assert again.step_number == 10_001
