"""Measure ``backprop playground`` as a user runs it: frames per second while train mode
learns spirals in Debian's chromium, the latency of a command, and the CPU each side uses.

    python scripts/playground_measure.py [--seconds 20] [--speed 10]

Starts ``backprop playground --no-browser --port 0`` as its own process, opens the printed
URL in headless chromium (Playwright), checks the tutorial's loss, plays train mode's
default setup (spirals, 2-16-16-2 ReLU, Adam) for ``--seconds`` and prints one JSON object.
docs/playground.md quotes its numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/lib/chromium/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
LATENCY_JS = """async ([n, pause]) => {
  const out = [];
  for (let k = 0; k < n; k++) {
    await new Promise((r) => setTimeout(r, pause));
    const seq = window.__playground.seq;
    const t = performance.now();
    document.getElementById('step-batch').click();
    while (window.__playground.seq === seq) await new Promise((r) => setTimeout(r, 1));
    out.push(performance.now() - t);
  }
  return out;
}"""


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def chromium_pids() -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if CHROMIUM in Path(f"/proc/{d}/cmdline").read_text(errors="replace"):
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def follow_a_weight_and_a_point(page) -> None:
    """Click the edge layers.1.W[3,5] (37% along it: no other edge crosses there) and the
    first training point, as a learner would."""
    x, y = page.evaluate(
        "(() => { const L = window.__playground.layout; const r = L.canvas.getBoundingClientRect();"
        " const e = L.edges.find(e => e.l === 1 && e.i === 3 && e.j === 5);"
        " return [r.left + e.x1 + 0.37 * (e.x2 - e.x1), r.top + e.y1 + 0.37 * (e.y2 - e.y1)]; })()"
    )
    page.mouse.click(x, y)
    time.sleep(0.3)
    frame = page.evaluate("window.__playground.lastFrame.train")
    href = page.get_attribute('a[data-export="setup.json"]', "href")
    points = href.replace("setup.json", "points.json")
    point = page.evaluate(f"(async () => (await (await fetch('{points}')).json()).train[0])()")
    box = page.locator("#heat").bounding_box()
    x0, x1, y0, y1 = frame["heat"]["extent"]
    page.mouse.click(box["x"] + (point[0] - x0) / (x1 - x0) * box["width"],
                     box["y"] + (y1 - point[1]) / (y1 - y0) * box["height"])  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--speed", type=int, default=10, help="optimizer steps per frame")
    ap.add_argument("--screenshot", type=Path, help="save the page after training (PNG)")
    args = ap.parse_args()
    proc = subprocess.Popen(
        [sys.executable, "-m", "backprop", "playground", "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = re.search(r"http://\S+", proc.stdout.readline()).group(0)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            outside = []
            local = ("http://127.0.0.1", "data:", "blob:")
            page.on("request", lambda r: r.url.startswith(local) or outside.append(r.url))
            page.goto(url)
            page.locator("#tut-loss").wait_for()
            tutorial_loss = page.inner_text("#tut-loss")
            setup = quote(json.dumps({"mode": "train", "speed": args.speed}))
            page.goto(f"{url}#setup={setup}")
            page.locator('#metrics [data-metric="train_loss"]').wait_for()
            latency = page.evaluate(LATENCY_JS, [20, 600])  # one click at a time
            rapid = page.evaluate(LATENCY_JS, [20, 0])  # clicking again as each step shows
            page.click("#rewind")
            time.sleep(0.5)
            page.click("#play")
            time.sleep(1.0)
            chrome = chromium_pids()
            f0, t0 = page.evaluate("window.__playground.frames"), time.monotonic()
            s0, c0 = cpu_seconds([proc.pid]), cpu_seconds(chrome)
            time.sleep(args.seconds)
            f1, t1 = page.evaluate("window.__playground.frames"), time.monotonic()
            s1, c1 = cpu_seconds([proc.pid]), cpu_seconds(chrome)
            frame = page.evaluate("window.__playground.lastFrame.train")
            render = page.evaluate("window.__playground.renderMs")
            page.click("#play")
            if args.screenshot:
                time.sleep(0.5)
                follow_a_weight_and_a_point(page)
                time.sleep(1.0)  # the finite-difference table
                page.mouse.move(5, 5)
                page.screenshot(path=str(args.screenshot), full_page=True)
            browser.close()
        result = {
            "tutorial": tutorial_loss,
            "frames_per_s": round((f1 - f0) / (t1 - t0), 1),
            "seconds": args.seconds,
            "steps_per_frame": args.speed,
            "steps": frame["step"],
            "test_accuracy": frame["metrics"]["test_acc"]["s"],
            "train_loss": frame["metrics"]["train_loss"]["s"],
            "server_cpu_cores": round((s1 - s0) / (t1 - t0), 2),
            "chromium_cpu_cores": round((c1 - c0) / (t1 - t0), 2),
            "page_render_ms_median": round(statistics.median(render), 1),
            "step_command_to_drawn_ms_median": round(statistics.median(latency), 1),
            "step_command_to_drawn_ms_p90": round(sorted(latency)[int(0.9 * len(latency))], 1),
            "rapid_steps_command_to_drawn_ms_median": round(statistics.median(rapid), 1),
            "outside_requests": outside,
        }
        print(json.dumps(result, indent=1))
        return 0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
