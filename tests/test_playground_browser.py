"""``backprop playground`` in a real browser: Debian's chromium driven by Playwright.

The tests click through the tutorial's phases and compare every displayed number with
``backprop explain --json``, edit a weight, train spirals live and count the frames, follow
a weight and a data point, and check that the page never requests anything but this
server. Screenshots go to ``$BACKPROP_SCREENSHOTS`` when set (docs/img/ holds the ones in
the README), else to the test's temporary folder.

Playwright's own browser download is not available here, so the tests launch the system's
chromium (``apt-get install chromium``; .ci/run installs it when missing) and skip, saying
why, only when it or Playwright is absent. A plain fixture around ``sync_playwright``: the
pytest-playwright plugin warns under ``filterwarnings = error``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np
import pytest

from backprop.cli import main
from backprop.formatting import STYLES
from backprop.playground import make_server
from backprop.playground.tutorial import PHASE_KEYS, STYLE_OF

CHROMIUM = next(
    (p for p in ("/usr/lib/chromium/chromium", "/usr/lib/chromium-browser/chromium-browser")
     if os.access(p, os.X_OK)),
    None,
)  # fmt: skip
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if CHROMIUM is None:
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def server():
    srv = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.stop()
    srv.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("BACKPROP_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser, server):
    """A fresh page; afterwards, every request it made went to this server, and no script
    error happened."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert requests, "the page made no request at all"
    for url in requests:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob"):
            continue
        assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", server.port), url
    assert not errors, errors


def wait_until(pg, script: str, timeout: float = 10.0):
    """Poll ``script`` in the page until it is truthy (wait_for_function evaluates strings,
    which the page's Content-Security-Policy forbids)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pg.evaluate(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {script}")


def explain_json(capsys, *args: str):
    capsys.readouterr()
    assert main(["explain", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def flat(value, path=()):
    if isinstance(value, list):
        for i, v in enumerate(value):
            yield from flat(v, (*path, i))
    else:
        yield path, value


def check_numbers(pg, step: dict, keys) -> int:
    """Every entry of ``keys`` on the page: its text is the explain formatter's, and its
    exact value is explain --json's, bit for bit."""
    shown = pg.evaluate(
        "() => Array.from(document.querySelectorAll('#tut-numbers [data-key]'))"
        ".map(e => [e.dataset.key, e.textContent, e.dataset.v])"
    )
    by_key = {k: (text, v) for k, text, v in shown}
    n = 0
    for key in keys:
        for path, value in flat(step[key]):
            text, v = by_key[".".join([key, *map(str, path)])]
            assert float(v) == value, (key, path)
            assert text == STYLES[STYLE_OF[key]](value), (key, path)
            n += 1
    return n


def test_tutorial_steps_through_explains_numbers(page, server, shots, capsys):
    steps = explain_json(capsys, "--steps", "2")
    page.goto(f"http://127.0.0.1:{server.port}/?token={server.token}")
    loss = page.locator("#tut-loss")
    loss.wait_for()
    assert loss.inner_text() == "L = 0.3273591340"
    assert float(loss.get_attribute("data-v")) == steps[0]["loss"]
    checked = check_numbers(page, steps[0], PHASE_KEYS[0])
    for phase in range(1, 6):
        seq = page.evaluate("window.__playground.seq")
        page.click("#tut-next")
        wait_until(page, f"window.__playground.seq > {seq}")
        assert page.inner_text("#phase-title").startswith(f"Phase {phase + 1} of 6")
        revealed = [k for keys in PHASE_KEYS[: phase + 1] for k in keys]
        checked = check_numbers(page, steps[0], revealed)
    assert checked == 2 + 3 + 2 + 2 + 2 + 3 + 2 + 3 + 6 + 2 + 6 + 3 + 6 + 3 + 6 + 2  # all 53
    lines = page.inner_text("#formulas")
    assert "w_11 ← w_11 - η ∂L/∂w_11 = 0.15 - (0.5)(0.00046887875) = 0.14976556" in lines
    # the finite differences beside the gradients, as explain computes them
    fd = page.get_attribute('[data-key="fd.grad_w.0.0"]', "data-v")
    assert float(fd) == pytest.approx(steps[0]["grad_w"][0][0], rel=1e-8)
    # hovering an edge shows its numbers
    page.hover("#tut-net line.hit >> nth=0")
    tip = page.inner_text("#tip")
    assert "w11 = 0.15" in tip and "∂L/∂w11 = δ_1 x_1 = 0.00046887875" in tip
    assert "new w11 = 0.14976556" in tip
    page.mouse.move(5, 5)
    page.screenshot(path=str(shots / "playground-tutorial.png"), full_page=True)
    # the next step starts from the updated weights, as explain --steps 2
    seq = page.evaluate("window.__playground.seq")
    page.click("#tut-next")
    wait_until(page, f"window.__playground.seq > {seq}")
    assert float(page.get_attribute("#tut-loss", "data-v")) == steps[1]["loss"]
    check_numbers(page, steps[1], PHASE_KEYS[0])
    # Back from step 2's first phase: step 1's update again, recomputed (it did nothing)
    seq = page.evaluate("window.__playground.seq")
    page.click("#tut-back")
    wait_until(page, f"window.__playground.seq > {seq}")
    assert page.inner_text("#phase-title").startswith("Phase 6 of 6")
    assert float(page.get_attribute("#tut-loss", "data-v")) == steps[0]["loss"]
    # the mode buttons say which is on; a weight is reachable by Tab and shows its tip
    assert page.get_attribute("#tab-tutorial", "aria-pressed") == "true"
    page.focus("#tut-net line.hit >> nth=0")
    assert "w11 = 0.15" in page.inner_text("#tip")


def test_editing_a_weight_recomputes_the_step(page, server, tmp_path, capsys):
    page.goto(f"http://127.0.0.1:{server.port}/?token={server.token}")
    page.locator("#tut-loss").wait_for()
    seq = page.evaluate("window.__playground.seq")
    page.fill('[data-param="w.0.0"]', "0.5")
    page.press('[data-param="w.0.0"]', "Enter")
    wait_until(page, f"window.__playground.seq > {seq}")
    weights = tmp_path / "w.json"
    w = {"w": [[0.5, 0.25, 0.35], [0.2, 0.3, 0.4]], "b1": [0.35] * 3,
         "u": [[0.4, 0.5], [0.45, 0.55], [0.5, 0.6]], "b2": [0.6] * 2}  # fmt: skip
    weights.write_text(json.dumps(w))
    ref = explain_json(capsys, "--weights", str(weights))
    assert float(page.get_attribute("#tut-loss", "data-v")) == ref["loss"]
    check_numbers(page, ref, PHASE_KEYS[0])
    # a bad number is refused in the page, with a message, and nothing is sent
    page.fill('[data-param="x.1"]', "ten")
    page.press('[data-param="x.1"]', "Enter")
    assert "is not a number" in page.inner_text("#error")
    # too large for a double: named by its label, not sent as null ("w[0][1] is None")
    page.fill('[data-param="w.0.1"]', "1e400")
    page.press('[data-param="w.0.1"]', "Enter")
    error = page.inner_text("#error")
    assert error.startswith("w12: 1e400 is too large") and "None" not in error, error
    assert page.get_attribute('[data-param="w.0.1"]', "aria-invalid") == "true"
    # too small: it was taken as 0 without a word, where 1e400 was refused
    seq = page.evaluate("window.__playground.seq")
    page.fill('[data-param="w.0.2"]', "1e-400")
    page.press('[data-param="w.0.2"]', "Enter")
    assert page.inner_text("#error").startswith("w13: 1e-400 is too small for a number")
    assert page.evaluate("window.__playground.seq") == seq  # nothing was sent
    assert page.evaluate("window.__playground.lastFrame.tutorial.inputs.w[0][2]") == 0.35
    for zero in ("0", "-0.0", "0e-400"):  # zeros are zeros
        page.fill('[data-param="w.0.2"]', zero)
        page.press('[data-param="w.0.2"]', "Enter")
        wait_until(page, "window.__playground.lastFrame.tutorial.inputs.w[0][2] === 0")
        assert page.get_attribute('[data-param="w.0.2"]', "aria-invalid") != "true", zero


def test_train_mode_learns_spirals_live(page, server, tmp_path):
    page.goto(f"http://127.0.0.1:{server.port}/?token={server.token}")
    page.locator("#tut-loss").wait_for()
    page.click("#tab-train")
    page.locator('#metrics [data-metric="train_loss"]').wait_for()
    assert page.input_value('#setup [name="dataset"]') == "spirals"
    first = float(page.get_attribute('[data-metric="train_loss"]', "data-v"))
    page.click("#play")
    time.sleep(1.0)
    frames0 = page.evaluate("window.__playground.frames")
    time.sleep(3.0)
    frames1 = page.evaluate("window.__playground.frames")
    fps = (frames1 - frames0) / 3.0
    print(f"train mode: {fps:.1f} frames/s")
    page.click("#play")  # pause
    wait_until(page, "!window.__playground.lastFrame.running")
    later = float(page.get_attribute('[data-metric="train_loss"]', "data-v"))
    assert later < 0.8 * first, (first, later)
    assert fps >= 10, f"{fps:.1f} frames/s"  # 25-30 measured here; the acceptance run in docs
    # paused after training: the full finite-difference table, one row per parameter
    rows = wait_until(page, "document.querySelectorAll('#fd-table tr').length")
    assert rows == 1 + (2 * 16 + 16) + (16 * 16 + 16) + (16 * 2 + 2)
    # follow one weight: click its edge 37% of the way along (at 50% the edges 3->5 and 5->3
    # cross, at 30% 3->5 and 0->12: rows 0.7 i + 0.3 j tie)
    layout = page.evaluate(
        "(() => { const L = window.__playground.layout; const r = L.canvas.getBoundingClientRect();"
        " const e = L.edges.find(e => e.l === 1 && e.i === 3 && e.j === 5);"
        " return [r.left + e.x1 + 0.37 * (e.x2 - e.x1), r.top + e.y1 + 0.37 * (e.y2 - e.y1)]; })()"
    )
    seq = page.evaluate("window.__playground.seq")
    page.mouse.click(*layout)
    wait_until(page, f"window.__playground.seq > {seq}")
    weight = page.inner_text("#inspect-weight")
    assert "Parameter layers.1.W[3,5]" in weight
    assert "finite difference" in weight and "m ← β1 m + (1 - β1) g" in weight
    detail = page.evaluate("window.__playground.lastFrame.train.inspect.weight")
    assert detail["grad"]["v"] == pytest.approx(detail["fd"]["v"], rel=1e-5, abs=1e-10)
    # choose a data point: its forward values and deltas
    points_url = page.get_attribute('a[data-export="setup.json"]', "href").replace(
        "setup.json", "points.json"
    )
    point = page.evaluate(f"(async () => (await (await fetch('{points_url}')).json()).train[0])()")
    box = page.locator("#heat").bounding_box()
    extent = page.evaluate("window.__playground.lastFrame.train.heat.extent")
    px = box["x"] + (point[0] - extent[0]) / (extent[1] - extent[0]) * box["width"]
    py = box["y"] + (extent[3] - point[1]) / (extent[3] - extent[2]) * box["height"]
    seq = page.evaluate("window.__playground.seq")
    page.mouse.click(px, py)
    wait_until(page, f"window.__playground.seq > {seq}")
    assert "Training point" in page.inner_text("#inspect-point")
    assert "δ = " in page.inner_text("#inspect-point")
    # which weights each panel's numbers are at (the two differ by the step)
    step = page.evaluate("window.__playground.lastFrame.train.step")
    assert f"at the weights now (after step {step};" in page.inner_text("#inspect-point")
    assert f"(at the weights before step {step})" in page.inner_text("#inspect-weight")
    page.mouse.move(5, 5)
    # (into the test's folder: docs/img's train screenshot is playground_measure.py's)
    page.screenshot(path=str(tmp_path / "playground-train-live.png"), full_page=True)
    # a network without that weight: the page drops it with the server (it kept sending
    # layers.1.W[3,5] before, and every later click was refused)
    seq = page.evaluate("window.__playground.seq")
    page.fill('#setup [name="hidden"]', "4")
    page.press('#setup [name="hidden"]', "Enter")
    wait_until(page, f"window.__playground.seq > {seq}")
    assert page.inner_text("#inspect-weight").startswith("Parameter\nclick an edge")
    seq = page.evaluate("window.__playground.seq")
    page.mouse.click(px, py)
    wait_until(page, f"window.__playground.seq > {seq}")
    assert page.is_hidden("#error") and "Training point" in page.inner_text("#inspect-point")
    # the keyboard follows a parameter too: focus the network, an arrow, Enter
    seq = page.evaluate("window.__playground.seq")
    page.focus("#net-canvas")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    wait_until(page, f"window.__playground.seq > {seq}")
    assert "Parameter layers.0.W[0,0]" in page.inner_text("#inspect-weight")


def test_the_page_without_the_token_is_refused(page, server):
    response = page.goto(f"http://127.0.0.1:{server.port}/")
    assert response.status == 403
    assert "needs the token" in page.inner_text("body")


def open_train(pg, server, suffix: str = "") -> None:
    pg.goto(f"http://127.0.0.1:{server.port}/?token={server.token}{suffix}")
    pg.locator("#tut-loss" if not suffix else "#error, #metrics span").first.wait_for()
    if not suffix:
        seq = pg.evaluate("window.__playground.seq")
        pg.click("#tab-train")
        wait_until(pg, f"window.__playground.seq > {seq}")


def set_field(pg, name: str, text: str) -> None:
    """Type ``text`` into a form field and leave it; wait for the page's answer."""
    seq = pg.evaluate("window.__playground.seq")
    pg.evaluate("document.getElementById('error').hidden = true")
    selector = f'#setup [name="{name}"]'
    if pg.evaluate(f"document.querySelector('{selector}').tagName") == "SELECT":
        pg.select_option(selector, text)
    else:
        pg.fill(selector, text)
        pg.press(selector, "Tab")
    wait_until(pg, f"window.__playground.seq > {seq} || !document.getElementById('error').hidden")


def test_eight_tabs_all_work(page, server):
    """Each tab held an endless event stream, and chromium allows six connections per host:
    the seventh tab never loaded and every tab froze. The playground takes 8 sessions."""
    tabs = [page]
    page.goto(f"http://127.0.0.1:{server.port}/?token={server.token}")
    page.locator("#tut-loss").wait_for()
    for _ in range(7):
        tab = page.context.new_page()
        tab.goto(f"http://127.0.0.1:{server.port}/?token={server.token}")
        tab.locator("#tut-loss").wait_for(timeout=5000)
        tabs.append(tab)
    for tab in (tabs[0], tabs[-1]):
        seq = tab.evaluate("window.__playground.seq")
        tab.click("#tut-next", timeout=5000)
        wait_until(tab, f"window.__playground.seq > {seq}", timeout=5)
        assert tab.inner_text("#phase-title").startswith("Phase 2 of 6")
    for tab in tabs[1:]:
        tab.close()


def test_refused_fields_are_marked_and_block_nothing(page, server, tmp_path):
    open_train(page, server)
    cases = [  # field, text, the message's start: the form's words, never "got 0" or None
        ("n_samples", "", "samples is empty; expected a whole number from 20 to 2000"),
        ("seed", "1e400", "seed: that is not a number the form can read; expected a whole"),
        ("hidden", "abc", 'hidden units: "abc" is not a list of whole numbers'),
        ("lr", "0", "learning rate η must be a number from 1e-06 to 100; got 0"),
    ]
    for name, text, message in cases:
        set_field(page, name, text)
        error = page.inner_text("#error")
        assert error.startswith(message), error
        assert "None" not in error and (text == "0" or "got 0" not in error)
        field = f'#setup [name="{name}"]'
        assert page.get_attribute(field, "aria-invalid") == "true"
        if name != "seed":  # (a number field's value hides text it cannot read)
            assert page.input_value(field) == text  # what was typed stays, marked
    # another field goes through, though the ones above are still marked
    set_field(page, "noise", "0.05")
    assert page.is_hidden("#error")
    assert page.evaluate("window.__playground.lastFrame.train.setup.noise") == 0.05
    assert page.get_attribute('#setup [name="n_samples"]', "aria-invalid") == "true"
    # a menu cannot keep a refused choice: csv without a file goes back to the one in use
    set_field(page, "dataset", "csv")
    assert page.inner_text("#error").startswith("dataset csv needs a file")
    assert page.input_value('#setup [name="dataset"]') == "spirals"
    # test share 0: the test metrics are absent, not NaN
    set_field(page, "test_fraction", "0")
    metrics = page.inner_text("#metrics")
    assert "test loss — (no test rows)" in metrics and "NaN" not in metrics


def test_fields_the_choices_do_not_use_are_greyed_out(page, server):
    # init scale did nothing under he_uniform (the default) and a learner who changed it saw
    # nothing happen; momentum and the betas likewise under the other optimizers
    open_train(page, server)

    def disabled(name):
        return page.is_disabled(f'#setup [name="{name}"]')

    assert page.evaluate("window.__playground.lastFrame.train.setup.init") == "he_uniform"
    assert disabled("init_scale") and disabled("momentum") and not disabled("beta1")
    title = page.evaluate(
        "document.querySelector('#setup [name=\"init_scale\"]').parentElement.title"
    )
    assert title.startswith("Used by the normal initialiser only")
    set_field(page, "init", "normal")
    set_field(page, "optimizer", "nesterov")
    assert not disabled("init_scale") and not disabled("momentum") and disabled("beta2")
    set_field(page, "init_scale", "0.5")
    assert page.evaluate("window.__playground.lastFrame.train.setup.init_scale") == 0.5


def test_a_csv_runs_url_waits_for_its_file(page, server, tmp_path):
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(60, 2))
    rows = ["a,b,label"] + [f"{x:.3f},{y:.3f},{int(x * y > 0)}" for x, y in xy]
    csv = tmp_path / "mine.csv"
    csv.write_text("\n".join(rows) + "\n")
    open_train(page, server)
    page.set_input_files("#csv-file", str(csv))
    wait_until(page, "window.__playground.lastFrame.train.setup.dataset === 'csv'")
    assert page.input_value("#csv-file") == ""  # the same file can be chosen again
    seq = page.evaluate("window.__playground.seq")
    page.click("#step-batch")
    wait_until(page, f"window.__playground.seq > {seq}")
    setup = page.evaluate("window.__playground.lastFrame.setup")
    loss = page.get_attribute('[data-metric="train_loss"]', "data-v")
    # reopened from its URL: the file is not in it, and the page says so
    fresh = page.context.new_page()
    fresh.goto(page.url.split("#")[0] + "#setup=" + quote(json.dumps(setup)))
    fresh.locator("#error").wait_for()
    assert "trained on the CSV file mine.csv" in fresh.inner_text("#error")
    fresh.set_input_files("#csv-file", str(csv))  # dropped again: the run is rebuilt
    wait_until(fresh, "window.__playground.lastFrame.train.setup.dataset === 'csv'")
    assert fresh.evaluate("window.__playground.lastFrame.train.step") == 1
    assert fresh.get_attribute('[data-metric="train_loss"]', "data-v") == loss
    fresh.close()


def test_a_phone_sized_screen_needs_no_sideways_scrolling(page, server):
    page.set_viewport_size({"width": 375, "height": 667})
    page.goto(f"http://127.0.0.1:{server.port}/?token={server.token}")
    page.locator("#tut-loss").wait_for()
    for buttons in (("#tut-back", "#tut-next", "#tut-reset"), ("#play", "#rewind")):
        if buttons[0] == "#play":
            seq = page.evaluate("window.__playground.seq")
            page.click("#tab-train")
            wait_until(page, f"window.__playground.seq > {seq}")
            page.locator('#metrics [data-metric="train_loss"]').wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        for button in buttons:
            box = page.locator(button).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, button
    # the CSV picker is in reach of the keyboard
    page.focus("#csv-file")
    assert page.evaluate("document.activeElement.id") == "csv-file"


def test_a_stopped_server_is_said_in_one_line(browser):
    srv = make_server("127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    context = browser.new_context()
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        pg.goto(f"http://127.0.0.1:{srv.port}/?token={srv.token}")
        pg.locator("#tut-loss").wait_for()
    finally:
        srv.stop()
        srv.server_close()
    pg.click("#tut-next")
    wait_until(pg, "!document.getElementById('error').hidden")
    assert pg.inner_text("#error").startswith("The playground server has stopped. Start")
    assert pg.inner_text("#conn") == "stopped"
    assert not errors  # the failed fetch was an unhandled rejection before
    context.close()


def test_play_during_an_idle_check_and_a_hidden_tab(page, server):
    """Play pressed while an idle frame check was on its way back: its 'nothing coming'
    answer sent the page idle for 5 s while the server trained on. And a hidden tab drew
    every frame nobody saw; it acknowledges them undrawn (training goes on) and draws the
    newest when shown."""
    pulls: list[str] = []
    page.on("request", lambda r: pulls.append(r.url) if "/api/frame" in r.url else None)
    page.goto(f"http://127.0.0.1:{server.port}/?token={server.token}")
    page.locator("#tut-loss").wait_for()
    page.click("#tab-train")
    page.locator('#metrics [data-metric="train_loss"]').wait_for()
    # the next frame check's answer comes back a second late: Play lands while it is on its
    # way, after the server answered it (the table done: "nothing coming")
    page.evaluate("""() => {
      const fetch0 = window.fetch; let once = true;
      const late = (r) => new Promise((ok) => setTimeout(() => ok(r), 1500));
      window.fetch = (u, o) => (String(u).includes("/api/frame") && once)
        ? (once = false, fetch0(u, o).then(late)) : fetch0(u, o);
    }""")
    page.click("#step-batch")  # busy while its gradient table is computed: a check follows
    time.sleep(0.7)  # the table takes 0.2-0.3 s: answered, its answer held until 1.5 s
    page.click("#play")
    frames = page.evaluate("window.__playground.frames")
    time.sleep(2.0)
    assert page.evaluate("window.__playground.frames") - frames >= 20  # 0 or 1 before
    page.evaluate("""() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      document.dispatchEvent(new Event("visibilitychange"));
    }""")
    time.sleep(0.2)
    frames, n_pulls = page.evaluate("window.__playground.frames"), len(pulls)
    time.sleep(1.0)
    assert page.evaluate("window.__playground.frames") == frames  # drawn: about 50 before
    assert len(pulls) - n_pulls >= 10  # still acknowledged: the run goes on
    page.evaluate("""() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
      document.dispatchEvent(new Event("visibilitychange"));
    }""")
    wait_until(page, f"window.__playground.frames > {frames}", timeout=2.0)
    page.click("#play")  # pause
