// backprop playground: the page draws; the Python engine computes and formats every number.
// Plain JavaScript, no build step, nothing loaded from outside. Every displayed number is a
// string that came from the server ({v: exact value, s: text, state}); this file never turns
// a number into text itself.
"use strict";

(() => {
  const token = document.querySelector('meta[name="playground-token"]').content;
  const SVGNS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  // Okabe and Ito's colours, told apart with the common colour vision deficiencies. Blue and
  // orange are also the signs of weights and unit outputs, in both modes: style.css's --pos and
  // --neg (#rrggbb), which the page's own blue uses too.
  const cssColour = (name) => {
    const hex = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  };
  const POSITIVE = cssColour("--pos"), NEGATIVE = cssColour("--neg");
  const signColour = (v) => (v >= 0 ? POSITIVE : NEGATIVE);
  const PALETTE = [POSITIVE, NEGATIVE, [0, 158, 115], [204, 121, 167], [213, 94, 0],
    [86, 180, 233], [240, 228, 66], [0, 0, 0]];
  const COLOUR_NAMES = ["blue", "orange", "green", "purple", "red", "sky blue", "yellow", "black"];
  // Each class has a marker shape too: its name (the legend's) and its outline in units of the
  // marker's size (none: a circle). 5 shapes beside 8 colours, coprime: 40 classes before a
  // colour and shape come again.
  const MARKERS = [
    { name: "circles", outline: null },
    { name: "squares", outline: [[-0.85, -0.85], [0.85, -0.85], [0.85, 0.85], [-0.85, 0.85]] },
    { name: "triangles", outline: [[0, -1.2], [1.1, 0.8], [-1.1, 0.8]] },
    { name: "diamonds", outline: [[0, -1.2], [1.2, 0], [0, 1.2], [-1.2, 0]] },
    { name: "crosses", outline: [[-0.4, -1.15], [0.4, -1.15], [0.4, -0.4], [1.15, -0.4], [1.15, 0.4],
      [0.4, 0.4], [0.4, 1.15], [-0.4, 1.15], [-0.4, 0.4], [-1.15, 0.4], [-1.15, -0.4], [-0.4, -0.4]] },
  ];

  // what the tests and the measurements read
  const stats = { frames: 0, seq: 0, times: [], session: null, renderMs: [], lastFrame: null };
  window.__playground = stats;

  let session = null;
  let lastFrameRunning = false;
  let current = null; // the last frame drawn
  let drawnSeq = 0;
  let ended = false; // the server stopped, or forgot this tab: nothing more can be sent
  let hashWritten = 0;
  const IDLE_CHECK_MS = 5000; // while no frame is coming: is the server still there?

  function url(path, params = {}) {
    const q = new URLSearchParams({ token, ...params });
    return `${path}?${q.toString()}`;
  }

  function showError(message) {
    const box = $("error");
    if (!message) { box.hidden = true; box.textContent = ""; return; }
    box.hidden = false;
    box.textContent = message;
  }

  function setConn(text, live) {
    $("conn").textContent = text;
    $("conn").classList.toggle("live", live);
  }

  // Nothing more can be sent: Play is stopped (it read "Pause" on), and every control that
  // sends something is disabled.
  function end(message) {
    ended = true;
    setConn("stopped", false);
    showError(message);
    heldFrame = null;
    $("play").textContent = "Play";
    document.querySelectorAll("nav button, main button, main input, main select").forEach((control) => {
      control.disabled = true;
    });
  }

  // One request (a POST when there is a body): the server's answer as data, or null after
  // the page has said what went wrong. A refused command answers {error}, shown at once.
  async function request(path, params, body) {
    if (ended) return null;
    let response;
    try {
      response = await fetch(url(path, params), body === undefined ? {} : {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
    } catch (e) {
      end("The playground server has stopped. Start `backprop playground` again and open the " +
        "URL it prints (a new server has a new token: this page cannot reconnect to it).");
      return null;
    }
    const text = await response.text().catch(() => "");
    let data = null;
    try { data = JSON.parse(text); } catch (e) { data = null; }
    if (response.status === 403) {
      end(`The playground server refused this page: ${text.trim()}. It was restarted since ` +
        "this page opened: open the URL `backprop playground` printed.");
      return null;
    }
    if (response.status === 404 && data && data.error) { end(data.error); return null; }
    if (!response.ok || !data) {
      const why = data && data.error ? data.error
        : `the server answered ${response.status} ${response.statusText}: ${text.trim().slice(0, 200)}`;
      showError(why);
      return { error: why };
    }
    setConn("live", true);
    return data;
  }

  // A hidden tab keeps the newest frame and acknowledges it without drawing (training goes
  // on at full speed; nobody sees the canvas): it is drawn when the tab is shown again.
  let heldFrame = null;
  function draw(frame) {
    if (!frame || frame.seq <= drawnSeq) return; // latest wins: never an older frame
    drawnSeq = frame.seq; // what the next pull acknowledges
    heldFrame = document.hidden ? frame : null;
    if (!heldFrame) show(frame);
  }

  function show(frame) {
    const t0 = performance.now();
    render(frame);
    stats.frames += 1;
    stats.seq = frame.seq;
    stats.times.push(t0);
    if (stats.times.length > 600) stats.times.shift();
    stats.renderMs.push(performance.now() - t0);
    if (stats.renderMs.length > 600) stats.renderMs.shift();
    stats.lastFrame = frame;
  }

  async function command(op, extra = {}) {
    if (ended) return null;
    showError("");
    runNote = "";
    const data = await request("/api/command", { session }, { op, ...extra });
    if (data && !data.error) keepHash = false;
    if (data && data.frame) draw(data.frame);
    if (data && data.busy) wake();
    return data;
  }

  // Frames are pulled: each command's answer carries the newest, and while more are coming
  // (training runs, a table is being computed) the page asks for the next one, which also
  // acknowledges the one drawn. Nothing stays open while nothing is coming, so any number of
  // tabs share the browser's six connections per host (an endless event stream per tab
  // froze every tab once six were open).
  let pulling = false;
  let wakeUp = null;
  // set by a command while a pull is on its way: an answer of "nothing coming" from before
  // the command (Play pressed during an idle check) must not send the loop idle for 5 s
  let woken = false;
  function wake() { woken = true; if (wakeUp) wakeUp(); else pullFrames(); }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    if (heldFrame) { show(heldFrame); heldFrame = null; }
    if (wakeUp) wakeUp();
  });

  function idle() {
    let timer = null;
    return new Promise((resolve) => {
      wakeUp = resolve;
      const tick = () => { if (document.hidden) timer = setTimeout(tick, IDLE_CHECK_MS); else resolve(); };
      timer = setTimeout(tick, IDLE_CHECK_MS);
    }).finally(() => { clearTimeout(timer); wakeUp = null; });
  }

  async function pullFrames() {
    if (pulling || !session) return;
    pulling = true;
    let busy = true;
    while (!ended) {
      woken = false;
      const data = await request("/api/frame", { session, after: drawnSeq, wait: busy ? 1 : 0 });
      if (data === null) break;
      if (data.frame) draw(data.frame);
      busy = !!data.busy;
      if (!busy && !woken) await idle();
      busy = true;
    }
    pulling = false;
  }

  function el(tag, attrs = {}, parent = null, text = null) {
    const node = tag.startsWith("svg:")
      ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== null) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  // ------------------------------------------------------------------ tooltips
  const tip = $("tip");
  function showTip(event, lines) {
    tip.textContent = lines.filter((l) => l).join("\n");
    tip.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = Math.min(event.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = `${x}px`;
    tip.style.top = `${y}px`;
  }
  function hideTip() { tip.hidden = true; }
  // Escape puts the tip away wherever the pointer or the focus is (WCAG 1.4.13)
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") hideTip(); });

  // What a screen reader says next (#said, a polite live region). `about` names the source (the
  // phase, the run, a canvas's place): a source is said when its text changes, not every frame.
  const lastSaid = {};
  function announce(about, text) {
    if (lastSaid[about] === text) return;
    lastSaid[about] = text;
    $("said").textContent = text;
  }
  // the tip beside an element, for the keyboard (its position stands in for the mouse's)
  function tipBeside(node, lines) {
    const r = node.getBoundingClientRect();
    showTip({ clientX: r.left + r.width / 2, clientY: r.top + r.height / 2 }, lines);
  }
  function hover(node, linesOf) {
    node.addEventListener("mousemove", (e) => showTip(e, linesOf()));
    node.addEventListener("mouseleave", hideTip);
    node.addEventListener("touchstart", (e) => showTip(e.touches[0], linesOf()), { passive: true });
    node.setAttribute("tabindex", "0"); // Tab reaches every unit and weight; focus shows its tip
    node.setAttribute("aria-describedby", "tip");
    node.addEventListener("focus", () => tipBeside(node, linesOf()));
    node.addEventListener("blur", hideTip);
  }

  // ------------------------------------------------------------------ session and frames
  // the URL's setup, or null; one that is not JSON is said, with what the page does instead
  function readHashSetup(instead) {
    const m = location.hash.match(/^#setup=(.*)$/);
    if (!m) return null;
    try { return JSON.parse(decodeURIComponent(m[1])); } catch (e) {
      showError(`the setup in the URL is not valid JSON; ${instead}`);
      return null;
    }
  }

  function writeHash(setup, force) {
    const now = performance.now();
    if (!force && now - hashWritten < 1000) return;
    hashWritten = now;
    setHash(`#setup=${encodeURIComponent(JSON.stringify(setup))}`);
  }
  function setHash(text) {
    if (location.hash !== text) history.replaceState(null, "", `${location.pathname}${location.search}${text}`);
    hashShown = location.hash;
  }
  let hashShown = null;
  // The URL the page opened with stays while its setup is not in use (refused, not JSON, or
  // a CSV run's waiting for its file), so that a reload opens it again: the default setup
  // written over it lost the run. A command the server takes puts the page's setup in use.
  let keepHash = false;
  // A setup pasted into the address bar of an open page (a new hash) is applied at once;
  // refused, the page keeps its setup and the URL goes back to it (a CSV run's setup, waiting
  // for its file, stays).
  window.addEventListener("hashchange", async () => {
    if (location.hash === hashShown || !session) return;
    const setup = readHashSetup("the page keeps its setup");
    const data = setup === null ? null : await openSetup(setup);
    if (data && !data.error) return;
    if (waitsForCsv(setup)) keepHash = true;
    else setHash(hashShown);
  });

  let pendingCsvSetup = null; // a CSV run's setup from the URL, waiting for its file
  const waitsForCsv = (setup) => !!setup && typeof setup === "object" && setup.mode === "train" &&
    setup.dataset === "csv" && !setup.csv_text;

  // A whole setup, a pasted URL's or a setup.json's, opens through the one command that
  // restores the URL the page opened with: refused, it changes nothing and says why (after
  // `source`, the file's name); a CSV run's setup without its file waits for the file, and
  // one with its file (a CSV run's setup.json) leaves the page holding that file.
  async function openSetup(setup, source = "") {
    const data = await command("setup", { setup });
    if (!data) return data;
    if (!data.error) {
      pendingCsvSetup = null;
      if (setup.mode === "train" && setup.csv_text) {
        csv = { text: setup.csv_text, name: setup.csv_name || "", drops: csv.drops + 1 };
        if (current && current.train) loadPoints(current.train); // the file's points
      }
    } else {
      if (source) showError(`${source}: ${data.error}`);
      if (waitsForCsv(setup)) pendingCsvSetup = setup;
    }
    return data;
  }

  // setup.json, as the page exports it (a CSV run's carries its file, of up to 1 MiB): read
  // as JSON data, never run
  const MAX_SETUP_BYTES = 2 << 20; // the server's limit on a request's body
  async function readSetupFile(file) {
    document.querySelectorAll(".setup-file").forEach((input) => { input.value = ""; }); // (the same file again is a new choice)
    const expected = 'expected a setup.json as the page exports it: a JSON object with "mode": "tutorial" or "train"';
    if (file.size > MAX_SETUP_BYTES) {
      showError(`${file.name} is ${file.size} bytes; a setup.json is at most ${MAX_SETUP_BYTES} bytes`);
      return;
    }
    let setup;
    try { setup = JSON.parse(await file.text()); } catch (e) {
      showError(`${file.name} is not JSON; ${expected}`);
      return;
    }
    await openSetup(setup, file.name);
  }

  async function start() {
    const hashSetup = readHashSetup("starting from the defaults");
    const data = await request("/api/session", {}, { setup: hashSetup });
    if (!data || !data.session) return;
    keepHash = /^#setup=/.test(location.hash) && (!!data.error || hashSetup === null);
    if (keepHash) hashShown = location.hash;
    session = data.session;
    stats.session = session;
    document.querySelectorAll("a[data-export]").forEach((a) => {
      a.href = url("/api/export", { session, what: a.dataset.export });
    });
    draw(data.frame);
    if (data.error) {
      showError(data.error);
      if (waitsForCsv(hashSetup)) pendingCsvSetup = hashSetup;
    }
    pullFrames();
  }

  function render(frame) {
    const mode = frame.mode;
    lastFrameRunning = !!frame.running;
    for (const [id, m] of [["tab-tutorial", "tutorial"], ["tab-train", "train"]]) {
      $(id).classList.toggle("active", mode === m);
      $(id).setAttribute("aria-pressed", String(mode === m));
    }
    $("tutorial").hidden = mode !== "tutorial";
    $("train").hidden = mode !== "train";
    document.body.dataset.mode = mode;
    if (mode === "tutorial") renderTutorial(frame.tutorial);
    else renderTrain(frame);
    if (!keepHash) writeHash(frame.setup, !frame.running);
    current = frame;
  }

  $("tab-tutorial").addEventListener("click", () => command("mode", { mode: "tutorial" }));
  $("tab-train").addEventListener("click", () => command("mode", { mode: "train" }));

  // ================================================================== tutorial
  const SUB = ["₁", "₂", "₃", "₄", "₅", "₆", "₇", "₈", "₉"];
  let tutLayout = null;

  function tutorialNet(nIn, nHid, nOut) {
    const box = $("tut-net");
    box.textContent = "";
    // 150 per unit, at least 3 units' height: room between the units for the weights' labels
    const W = 660, H = 40 + 150 * Math.max(nIn, nHid, nOut, 3);
    // a group of named weights and units (an img's children are hidden from screen readers)
    const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "group",
      "aria-label": "the seed's network" }, box);
    const xs = [60, 330, 600];
    const ys = (n) => Array.from({ length: n }, (_, i) => (H / (n + 1)) * (i + 1));
    const pos = [ys(nIn).map((y) => [xs[0], y]), ys(nHid).map((y) => [xs[1], y]), ys(nOut).map((y) => [xs[2], y])];
    const edges = [];
    const edgeLayer = el("svg:g", {}, svg);
    const labelLayer = el("svg:g", {}, svg);
    const nodeLayer = el("svg:g", {}, svg);
    for (const [layer, name] of [[0, "w"], [1, "u"]]) {
      pos[layer].forEach(([x1, y1], i) => {
        pos[layer + 1].forEach(([x2, y2], j) => {
          el("svg:line", { x1, y1, x2, y2, class: "hit", role: "img" }, edgeLayer);
          const line = el("svg:line", { x1, y1, x2, y2, class: "edge", stroke: "#98a2b3", "stroke-width": 1.6 }, edgeLayer);
          const hit = line.previousSibling;
          const g = el("svg:g", {}, labelLayer); // placed by placeLabels
          const bg = el("svg:rect", { class: "wbg", height: 13, rx: 2 }, g);
          const t = el("svg:text", { "text-anchor": "middle", class: "wlabel" }, g);
          const gt = el("svg:text", { "text-anchor": "middle", class: "glabel" }, g);
          const entry = { name, i, j, line, hit, text: t, gtext: gt, bg, ends: [x1, y1, x2, y2] };
          hover(hit, () => edgeTip(entry));
          edges.push(entry);
        });
      });
    }
    const nodes = [];
    const labels = [["x", nIn], ["h", nHid], ["y", nOut]];
    pos.forEach((column, layer) => column.forEach(([x, y], j) => {
      const g = el("svg:g", { class: "unit", role: "img" }, nodeLayer);
      el("svg:circle", { cx: x, cy: y, r: 27 }, g);
      el("svg:text", { x, y: y + 5, "text-anchor": "middle", class: "label" }, g,
        `${labels[layer][0]}${SUB[j]}`);
      const v1 = el("svg:text", { x, y: y + 43, "text-anchor": "middle", class: "value" }, g);
      const v2 = el("svg:text", { x, y: y + 56, "text-anchor": "middle", class: "nlabel" }, g);
      const b = layer > 0 ? el("svg:text", { x, y: y - 34, "text-anchor": "middle", class: "wlabel" }, g) : null;
      const entry = { layer, j, g, v1, v2, b };
      hover(g, () => nodeTip(entry));
      nodes.push(entry);
    }));
    tutLayout = { key: `${nIn}-${nHid}-${nOut}`, edges, nodes };
  }

  // Each weight's label sits on its edge, as near 0.3 of the way along as it can, clear of
  // every unit's circle and texts and of the labels placed before it: at a fixed 0.3, the
  // labels of 4 to 8 hidden units covered each other ("u21 = -0.44" over u12's new value).
  // Placed edge by edge, and where one finds no clear place, again with the labels whose
  // edges end highest first (as a timetable is filled by deadlines); placed anew as the
  // texts change.
  const ALONG = Array.from({ length: 34 }, (_, k) => 0.14 + 0.02 * k);
  const boxOf = (node) => { const b = node.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; };
  const overlaps = (p, q) => p[0] < q[2] + 1 && q[0] < p[2] + 1 && p[1] < q[3] + 1 && q[1] < p[3] + 1;
  const along = (e) => ALONG.map((f) => [e.ends[0] + (e.ends[2] - e.ends[0]) * f, e.ends[1] + (e.ends[3] - e.ends[1]) * f]);

  function labelPlaces(edges, units) {
    const taken = [...units];
    let missed = 0;
    const places = new Map();
    for (const e of edges) {
      const w = Number(e.bg.getAttribute("width")), h = Number(e.bg.getAttribute("height"));
      const box = ([x, y]) => [x - w / 2, y - 9, x + w / 2, y - 9 + h];
      const at = along(e);
      const wanted = at[8]; // 0.3 of the way
      const free = at.filter((p) => !taken.some((b) => overlaps(b, box(p))));
      const near = (p) => Math.abs(p[0] - wanted[0]);
      const place = free.length ? free.reduce((a, b) => (near(b) < near(a) ? b : a)) : wanted;
      if (!free.length) missed += 1;
      taken.push(box(place));
      places.set(e, place);
    }
    return { places, missed };
  }

  function placeLabels(layout) {
    const units = layout.nodes.flatMap((n) => Array.from(n.g.children)
      .filter((part) => part.tagName === "circle" || part.textContent).map(boxOf));
    const lowest = (e) => Math.max(...along(e).map(([, y]) => y));
    let best = labelPlaces(layout.edges, units);
    if (best.missed) {
      const byEnd = labelPlaces([...layout.edges].sort((a, b) => lowest(a) - lowest(b)), units);
      if (byEnd.missed < best.missed) best = byEnd;
    }
    for (const [e, [x, y]] of best.places) {
      e.bg.setAttribute("x", x - Number(e.bg.getAttribute("width")) / 2);
      e.bg.setAttribute("y", y - 9);
      for (const [text, below] of [[e.text, 1], [e.gtext, 13]]) {
        text.setAttribute("x", x);
        text.setAttribute("y", y + below);
      }
    }
  }

  let tut = null; // the tutorial part of the frame being drawn
  const has = (key) => tut.phase_keys.slice(0, tut.phase + 1).some((keys) => keys.includes(key));
  const V = (key, ...idx) => idx.reduce((a, i) => a[i], tut.values[key]);

  function edgeTip(e) {
    const { name, i, j } = e;
    const ij = `${i + 1}${j + 1}`;
    const lines = [`${name}${ij} = ${V(name, i, j).s}` +
      (name === "w" ? `   (input x${i + 1} → hidden h${j + 1})` : `   (hidden h${i + 1} → output y${j + 1})`)];
    const grad = name === "w" ? "grad_w" : "grad_u";
    if (has(grad)) {
      const from = name === "w" ? `δ(1)_${j + 1} x_${i + 1}` : `δ(2)_${j + 1} h_${i + 1}`;
      lines.push(`∂L/∂${name}${ij} = ${from} = ${V(grad, i, j).s}`);
      lines.push(`finite difference   ${tut.fd[grad][i][j].s}`);
    }
    if (has(`${name}_new`)) lines.push(`new ${name}${ij} = ${V(`${name}_new`, i, j).s}`);
    return lines;
  }

  // a unit's name for a screen reader (its tip is its description)
  function nodeName(n) {
    const k = n.j + 1;
    if (n.layer === 0) return `input x${k} = ${V("x", n.j).s}`;
    const [kind, value] = n.layer === 1 ? ["hidden", "h"] : ["output", "y"];
    return `${kind} unit ${value}${k}` + (has(value) ? `, ${value}${k} = ${V(value, n.j).s}` : "");
  }

  function nodeTip(n) {
    const j = n.j, k = j + 1;
    if (n.layer === 0) return [`x${k} = ${V("x", j).s}  (input)`];
    if (n.layer === 1) {
      return [
        `b(1)${k} = ${V("b1", j).s}`,
        has("a1") && `a(1)${k} = Σ_i x_i w_i${k} + b(1)${k} = ${V("a1", j).s}`,
        has("h") && `h${k} = σ(a(1)${k}) = ${V("h", j).s}`,
        has("dL_dh") && `∂L/∂h${k} = Σ_k δ(2)_k u_${k}k = ${V("dL_dh", j).s}`,
        has("delta_hidden") && `δ(1)${k} = ∂L/∂h${k} h${k}(1 - h${k}) = ${V("delta_hidden", j).s}`,
        has("grad_b1") && `∂L/∂b(1)${k} = ${V("grad_b1", j).s}   finite difference ${tut.fd.grad_b1[j].s}`,
        has("b1_new") && `new b(1)${k} = ${V("b1_new", j).s}`,
      ];
    }
    return [
      `b(2)${k} = ${V("b2", j).s}    target t${k} = ${V("t", j).s}`,
      has("a2") && `a(2)${k} = Σ_i h_i u_i${k} + b(2)${k} = ${V("a2", j).s}`,
      has("y") && `y${k} = σ(a(2)${k}) = ${V("y", j).s}`,
      has("delta_out") && `δ(2)${k} = (y${k} - t${k}) y${k}(1 - y${k}) = ${V("delta_out", j).s}`,
      has("grad_b2") && `∂L/∂b(2)${k} = ${V("grad_b2", j).s}   finite difference ${tut.fd.grad_b2[j].s}`,
      has("b2_new") && `new b(2)${k} = ${V("b2_new", j).s}`,
    ];
  }

  const KEY_LABEL = {
    a1: "a(1)", h: "h", a2: "a(2)", y: "y", loss: "L", delta_out: "δ(2) (output)", dL_dh: "∂L/∂h",
    delta_hidden: "δ(1) (hidden)", grad_u: "∂L/∂u", grad_b2: "∂L/∂b(2)", grad_w: "∂L/∂w",
    grad_b1: "∂L/∂b(1)", w_new: "new w", b1_new: "new b(1)", u_new: "new u", b2_new: "new b(2)",
  };

  function numberCells(td, key, value, path) {
    if (Array.isArray(value)) { value.forEach((v, i) => numberCells(td, key, v, [...path, i])); return; }
    const span = el("span", { class: "num", "data-key": [key, ...path].join("."),
      "data-state": value.state }, td, value.s);
    if (value.v !== null) span.dataset.v = String(value.v); // exact value for checks, not display
  }

  function renderTutorial(t) {
    tut = t;
    const nIn = t.values.x.length, nHid = t.values.h.length, nOut = t.values.y.length;
    if (!tutLayout || tutLayout.key !== `${nIn}-${nHid}-${nOut}`) tutorialNet(nIn, nHid, nOut);
    $("tut-status").innerHTML = "";
    const status = $("tut-status");
    status.append(`Step ${t.step}  ·  x = (${t.values.x.map((v) => v.s).join(", ")})  ·  t = (${t.values.t.map((v) => v.s).join(", ")})  ·  η = ${t.values.eta.s}  ·  `);
    el("b", { id: "tut-loss", "data-v": String(t.values.loss.v) }, status, `L = ${t.values.loss.s}`);
    // phases
    const list = $("phase-list");
    list.textContent = "";
    t.phases.forEach((name, i) => {
      const li = el("li", { class: i < t.phase ? "done" : i === t.phase ? "current" : "" }, list, `${i + 1}. ${name}`);
      if (i === t.phase) li.setAttribute("aria-current", "step");
    });
    const title = `Phase ${t.phase + 1} of ${t.phases.length}: ${t.phases[t.phase]}`;
    $("phase-title").textContent = title;
    announce("phase", `${title} (step ${t.step}, L = ${t.values.loss.s})`);
    // unavailable but still focusable: Enter on Back at the first phase left the focus nowhere
    $("tut-back").setAttribute("aria-disabled", String(!t.can_back));
    $("tut-next").textContent = t.phase === t.phases.length - 1 ? "Next step ▶" : "Step ▶";
    const formulas = $("formulas");
    formulas.textContent = "";
    for (const line of t.formulas[t.phase]) formulaLine(formulas, line);
    // every number revealed so far
    const table = $("tut-numbers");
    table.textContent = "";
    t.phase_keys.slice(0, t.phase + 1).forEach((keys, phase) => keys.forEach((key) => {
      const tr = el("tr", { class: phase === t.phase ? "fresh" : "" }, table);
      el("th", {}, tr, KEY_LABEL[key]);
      numberCells(el("td", {}, tr), key, t.values[key], []);
      if (t.fd[key]) {
        const tr2 = el("tr", { class: phase === t.phase ? "fresh" : "" }, table);
        el("th", {}, tr2, `${KEY_LABEL[key]} finite diff.`);
        numberCells(el("td", {}, tr2), `fd.${key}`, t.fd[key], []);
      }
    }));
    // the network
    for (const e of tutLayout.edges) {
      const w = V(e.name, e.i, e.j);
      e.text.textContent = `${e.name}${e.i + 1}${e.j + 1} = ${w.s}`;
      e.hit.setAttribute("aria-label", edgeTip(e)[0]);
      const grad = e.name === "w" ? "grad_w" : "grad_u";
      e.gtext.textContent = has(`${e.name}_new`) ? `→ ${V(`${e.name}_new`, e.i, e.j).s}`
        : has(grad) ? `∂ ${V(grad, e.i, e.j).s}` : "";
      e.line.setAttribute("stroke", rgb(signColour(w.v), 1));
      e.line.setAttribute("stroke-width", 1 + 4 * Math.min(1, Math.abs(w.v)));
      e.bg.setAttribute("height", e.gtext.textContent ? 27 : 13);
      // the backdrop as wide as its widest line (0.14976556 is wider than 68 px): an edge
      // never runs through the digits
      const width = Math.max(68, e.text.getComputedTextLength(),
        e.gtext.textContent ? e.gtext.getComputedTextLength() : 0) + 6;
      e.bg.setAttribute("width", width);
    }
    for (const n of tutLayout.nodes) {
      const j = n.j;
      n.g.classList.remove("active");
      n.g.setAttribute("aria-label", nodeName(n));
      if (n.layer === 0) { n.v1.textContent = V("x", j).s; n.v2.textContent = ""; continue; }
      const [bias, value, delta] = n.layer === 1 ? ["b1", "h", "delta_hidden"] : ["b2", "y", "delta_out"];
      n.b.textContent = `b = ${V(bias, j).s}`;
      n.v1.textContent = has(value) ? `${value} = ${V(value, j).s}` : "";
      n.v2.textContent = has(delta) ? `δ(${n.layer}) = ${V(delta, j).s}` : "";
      const fresh = t.phase_keys[t.phase];
      if (fresh.includes(value) || fresh.includes(delta)) n.g.classList.add("active");
    }
    placeLabels(tutLayout);
    renderParams(t);
  }

  // A formula wraps only before its "=" and "+" signs and its finite difference (each piece
  // between them holds together; style.css indents the rest of the line): at 1280 px the
  // results were cut off, out of sight. A sentence (no "=") wraps between its words.
  function formulaLine(box, line) {
    const div = el("div", { class: line.includes("finite difference") ? "fd" : "" }, box);
    if (!line.includes(" = ")) { div.textContent = line; return; }
    line.split(/( +)(?=[=+] |finite difference)/).forEach((part, k) => {
      if (k % 2) div.append(part); else el("span", {}, div, part);
    });
  }

  // the editable numbers: x, t, eta, w, b1, u, b2
  let paramsKey = null;
  function renderParams(t) {
    const box = $("tut-params");
    const shapeKey = JSON.stringify(["x", "t", "w", "u"].map((k) => [t.inputs[k].length, (t.inputs[k][0] || []).length]));
    if (paramsKey !== shapeKey) {
      paramsKey = shapeKey;
      box.textContent = "";
      const add = (label, key, idx) => {
        const l = el("label", {}, box, label);
        const input = el("input", { "data-param": [key, ...idx].join("."), "data-label": label, inputmode: "decimal" }, l);
        input.addEventListener("change", () => editParam(input, key, idx));
        input.addEventListener("input", () => markBad(input, null));
      };
      t.inputs.x.forEach((_, i) => add(`x${SUB[i]}`, "x", [i]));
      t.inputs.t.forEach((_, i) => add(`t${SUB[i]}`, "t", [i]));
      add("η", "eta", []);
      t.inputs.w.forEach((row, i) => row.forEach((_, j) => add(`w${i + 1}${j + 1}`, "w", [i, j])));
      t.inputs.b1.forEach((_, j) => add(`b(1)${SUB[j]}`, "b1", [j]));
      t.inputs.u.forEach((row, i) => row.forEach((_, j) => add(`u${i + 1}${j + 1}`, "u", [i, j])));
      t.inputs.b2.forEach((_, j) => add(`b(2)${SUB[j]}`, "b2", [j]));
    }
    box.querySelectorAll("input").forEach((input) => {
      const [key, ...idx] = input.dataset.param.split(".");
      refreshField(input, idx.reduce((a, i) => a[Number(i)], t.values[key]).s);
    });
  }

  function showParam(input, shown) {
    markBad(input, null);
    input.value = shown;
    input.dataset.shown = shown;
  }

  // A field shows the value in use, unless it is being edited; a refused text stays, marked,
  // until edited or until the value in use changes.
  function refreshField(input, shown) {
    if (document.activeElement === input) return;
    if (input.classList.contains("bad") && input.dataset.shown === shown) return;
    showParam(input, shown);
  }

  // A refused field is marked invalid and described by why (a hidden note beside it, which
  // stays with the field while the error line shows later messages); `why` null clears both.
  let notes = 0;
  function markBad(input, why) {
    input.classList.toggle("bad", why !== null);
    if (why === null) {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
      return;
    }
    if (!input.dataset.note) {
      notes += 1;
      input.dataset.note = `why-${notes}`;
      el("span", { id: input.dataset.note, hidden: "" }, input.parentElement);
    }
    $(input.dataset.note).textContent = why;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", input.dataset.note);
  }

  async function editParam(input, key, idx) {
    const text = input.value.trim();
    const label = input.dataset.label;
    const value = Number(text);
    let why = null;
    if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) why = `"${text}" is not a number`;
    else if (!Number.isFinite(value)) why = `${text} is too large for a number (at most about 1.8e308)`;
    else if (value === 0 && /[1-9]/.test(text.split(/[eE]/)[0])) why = `${text} is too small for a number (it would read as 0; the smallest is about 5e-324)`;
    const inUse = () => idx.reduce((a, i) => a[i], current.tutorial.values[key]).s;
    const refuse = (message) => { markBad(input, message); showError(message); };
    if (why) {
      refuse(`${label}: ${why}; expected a number such as 0.15 or -2e-3 (the step still uses ${inUse()})`);
      return;
    }
    const inputs = current.tutorial.inputs;
    let updated;
    if (idx.length === 0) updated = value;
    else if (idx.length === 1) { updated = inputs[key].slice(); updated[idx[0]] = value; }
    else { updated = inputs[key].map((r) => r.slice()); updated[idx[0]][idx[1]] = value; }
    const data = await command("tutorial.set", { values: { [key]: updated } });
    if (data && data.error) {
      const why = data.error.startsWith(label) ? data.error : `${label}: ${data.error}`;
      refuse(`${why} (the step still uses ${inUse()})`);
    } else if (data) {
      showParam(input, inUse()); // the focus stays here: the frame's redraw passes over it
    }
  }

  $("tut-next").addEventListener("click", () => command("tutorial.phase", { delta: 1 }));
  $("tut-back").addEventListener("click", () => {
    if ($("tut-back").getAttribute("aria-disabled") !== "true") command("tutorial.phase", { delta: -1 });
  });
  // the skip link moves the focus (the URL's #setup= stays as it is)
  $("skip-net").addEventListener("click", (e) => { e.preventDefault(); $("tut-next").focus(); });
  $("tut-reset").addEventListener("click", () => command("tutorial.reset"));

  // ================================================================== train
  const FORM = [
    ["Data", [
      ["dataset", "select", ["spirals", "xor", "moons", "circles", "blobs", "csv"]],
      ["n_samples", "number", { min: 20, max: 2000, step: 10 }],
      ["noise", "number", { min: 0, max: 2, step: 0.01 }],
      ["test_fraction", "number", { min: 0, max: 0.9, step: 0.05 }],
      ["csv_target", "text", {}],
    ]],
    ["Network", [
      ["hidden", "text", {}],
      ["activation", "select", ["relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "softplus"]],
      ["loss", "select", ["cross_entropy", "binary_cross_entropy", "l2", "mse"]],
      ["init", "select", ["he_uniform", "he_normal", "xavier_uniform", "xavier_normal", "lecun_normal", "normal"]],
      ["init_scale", "number", { min: 0.0001, max: 10, step: 0.01 }],
      ["dropout", "number", { min: 0, max: 0.9, step: 0.05 }],
      ["seed", "number", { min: 0, step: 1 }],
    ]],
    ["Training", [
      ["optimizer", "select", ["adam", "sgd", "momentum", "nesterov", "adamw", "rmsprop"]],
      ["lr", "number", { min: 0.000001, max: 100, step: "any" }],
      ["momentum", "number", { min: 0, max: 0.999, step: 0.01 }],
      ["beta1", "number", { min: 0, max: 0.999, step: 0.001 }],
      ["beta2", "number", { min: 0, max: 0.99999, step: 0.0001 }],
      ["weight_decay", "number", { min: 0, max: 10, step: "any" }],
      ["batch_size", "number", { min: 1, max: 2000, step: 1 }],
    ]],
  ];
  let labels = {}; // the form's names for the setup's keys: the server's, which its errors use
  // the CSV file the server last accepted (a refused one never replaces it); drops counts
  // the accepted drops, so the same name dropped again with new rows is a new file
  let csv = { text: "", name: "", drops: 0 };

  function buildForm(names) {
    labels = names;
    const form = $("setup");
    for (const [legend, fields] of FORM) {
      const fs = el("fieldset", {}, form);
      el("legend", {}, fs, legend);
      for (const [name, kind, opts] of fields) {
        const label = el("label", {}, fs, labels[name] || name);
        if (kind === "select") {
          const select = el("select", { name }, label);
          for (const o of opts) el("option", { value: o }, select, o);
          sendChoice(select, () => sendField(name, kind, opts, select));
        } else {
          const input = el("input", { name, type: kind === "number" ? "number" : "text" }, label);
          for (const [k, v] of Object.entries(opts)) input.setAttribute(k, v);
          input.addEventListener("input", () => markBad(input, null));
          input.addEventListener("change", () => sendField(name, kind, opts, input));
        }
      }
    }
  }

  // Each arrow key on a closed menu changes its choice, and each choice builds a new run from
  // step 0: a choice made by key is sent on Enter, on leaving the menu, or a second after the
  // last key; one made with the pointer or in the open list, at once.
  const KEYED_CHOICE_MS = 100; // a change this soon after a key on the menu came from that key
  const KEYED_CHOICE_WAIT_MS = 1000; // a choice made by key is sent this long after the last key
  function sendChoice(select, send) {
    let keyAt = -Infinity;
    let timer = null;
    const commit = () => {
      if (timer === null) return;
      clearTimeout(timer);
      timer = null;
      send();
    };
    select.addEventListener("keydown", (e) => { if (e.key === "Enter") commit(); else keyAt = performance.now(); });
    select.addEventListener("blur", commit);
    select.addEventListener("change", () => {
      clearTimeout(timer); // a pointer's choice after keys: sent once, now
      timer = null;
      if (performance.now() - keyAt > KEYED_CHOICE_MS) send();
      else timer = setTimeout(commit, KEYED_CHOICE_WAIT_MS);
    });
  }

  // The value a field's text stands for, or why it stands for none (in the form's words).
  function fieldValue(name, kind, opts, input) {
    const label = labels[name] || name;
    const text = input.value.trim();
    if (name === "hidden") {
      const parts = text === "" ? [] : text.split(/[\s,]+/).filter((part) => part);
      if (parts.some((part) => !/^\d+$/.test(part))) {
        return { error: `${label}: "${text}" is not a list of whole numbers; expected up to 6 layer sizes from 1 to 32 separated by commas, such as 16,16 (empty: no hidden layer)` };
      }
      return { value: parts.map(Number) };
    }
    if (kind !== "number") return { value: text };
    const range = opts.max === undefined ? `from ${opts.min}` : `from ${opts.min} to ${opts.max}`;
    const whole = Number.isInteger(opts.step) ? "a whole number" : "a number";
    // a number field shows text it cannot read (1e400) but reports "": not "empty"
    if (input.validity.badInput || (text === "" && !input.validity.valid)) return { error: `${label}: that is not a number the form can read; expected ${whole} ${range}` };
    if (text === "") return { error: `${label} is empty; expected ${whole} ${range}` };
    if (!Number.isFinite(Number(text))) return { error: `${label}: ${text} is too large; expected ${whole} ${range}` };
    return { value: Number(text) };
  }

  // The setup of the run in use: a changed field is sent with it, so a field refused earlier
  // (still marked) never blocks another.
  // A change to csv (chosen again after another data set) sends the file the page holds.
  function runSetup(changes = {}) {
    const setup = { ...current.train.setup, ...changes };
    delete setup.trail;
    if (setup.dataset === "csv" && csv.text && !setup.csv_text) {
      setup.csv_text = csv.text;
      setup.csv_name = csv.name;
    }
    setup.speed = Number($("speed").value);
    return setup;
  }

  async function sendField(name, kind, opts, input) {
    if (!current || !current.train) return;
    const inUse = current.train.setup_text[name];
    const refuse = (why) => {
      const message = `${why} (the run still uses ${labels[name] || name} ${inUse === "" ? "(empty)" : inUse})`;
      if (kind === "select") input.value = inUse; // a menu cannot show a refused choice
      else markBad(input, message);
      showError(message);
    };
    if (kind === "select" && input.value === inUse) return; // browsed back to the choice in use
    const got = fieldValue(name, kind, opts, input);
    if (got.error) { refuse(got.error); return; }
    const setup = runSetup({ [name]: got.value });
    const [before, playing] = [current.train, current.running];
    const data = await command("train.setup", { setup });
    if (data && data.error) refuse(data.error);
    else if (data) {
      pendingCsvSetup = null;
      if (before.step > 0 || playing) { // a run thrown away, said (it was without a word)
        runNote = `A new run started from step 0 with ${labels[name] || name} ` +
          `${current.train.setup_text[name]} (a changed field starts one; the run at ` +
          `${before.progress} was dropped${playing ? ", and Play stopped" : ""})`;
        renderTrain(current);
      }
    }
  }
  // what the status line says after the progress: a run thrown away by a changed field, until
  // the next command
  let runNote = "";

  // The fields only some choices use (the server's USED_BY): greyed out under the others.
  let usedBy = {};

  function fillForm(texts) {
    const form = $("setup");
    for (const [, fields] of FORM) {
      for (const [name] of fields) {
        const input = form.elements[name];
        if (usedBy[name]) {
          const [key, choices, who] = usedBy[name];
          input.disabled = !choices.includes(texts[key]);
          input.parentElement.title = input.disabled ? `Used by ${who}.` : "";
        }
        refreshField(input, texts[name] === undefined ? "" : texts[name]);
      }
    }
  }

  let netLayout = null;
  let netAt = null; // the keyboard's place on the network: an index into netLayout.keys.places
  let selectedWeight = null;
  let selectedPoint = null;
  let mapProbs = null; // the decision map's class probabilities as drawn (the output units show them)

  // The trained network is drawn on one canvas (edges, unit maps, biases): with software
  // rendering one canvas repaint per frame cost far less than 300 SVG lines and 30 canvases.
  // Laid out again when the sizes or the width change (a window resized, a phone turned).
  const BIAS = 10; // the side of a bias's square (canvas px), at its unit's lower left corner
  function layoutNet(sizes) {
    const box = $("train-net");
    const width = Math.max(box.clientWidth, 260);
    const key = `${sizes.join("-")}:${width}`;
    if (netLayout && netLayout.key === key) return;
    if (!netLayout || netLayout.sizes.join("-") !== sizes.join("-")) {
      forgetPlace($("net-canvas")); // its parameter may be gone
      netAt = null;
    }
    const maxUnits = Math.max(...sizes);
    const node = maxUnits > 16 ? 16 : maxUnits > 10 ? 22 : maxUnits > 6 ? 30 : 36;
    const gap = node + (maxUnits > 10 ? 5 : 10);
    const height = 30 + gap * maxUnits;
    const dpr = window.devicePixelRatio || 1;
    const canvas = $("net-canvas");
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    box.style.height = `${height}px`;
    const xs = sizes.map((_, l) => 30 + ((width - 60) * l) / (sizes.length - 1));
    const pos = sizes.map((n, l) => Array.from({ length: n }, (_, j) => [xs[l], height / 2 + (j - (n - 1) / 2) * gap]));
    const edges = [];
    for (let l = 0; l < sizes.length - 1; l++) {
      pos[l].forEach(([x1, y1], i) => pos[l + 1].forEach(([x2, y2], j) => {
        edges.push({ l, i, j, x1, y1, x2, y2, name: `layers.${l}.W`, index: [i, j] });
      }));
    }
    const nodes = [];
    const biases = [];
    pos.forEach((column, l) => column.forEach(([x, y], j) => {
      nodes.push({ l, j, x, y });
      // the square 3 px into the unit's left edge, astride its bottom edge
      if (l > 0) biases.push({ l, j, x: x - node / 2 - BIAS + 3, y: y + node / 2 - BIAS / 2, name: `layers.${l - 1}.b`, index: [j] });
    }));
    const keys = keyOrder(edges, nodes, biases, node);
    netLayout = { key, sizes, edges, nodes, biases, keys, node, canvas, dpr, width, height };
    stats.layout = netLayout; // the tests click edges and points by position
  }

  // The keyboard's way through the network, unit by unit: the weights into a unit, the unit,
  // its bias. Each place knows its block (its unit) and its slot there, for Up and Down.
  const UNIT_AND_BIAS = 2; // the places in a unit's block after the weights into it
  function keyOrder(edges, nodes, biases, size) {
    const places = [];
    const blocks = [];
    nodes.filter((n) => n.l > 0).forEach((n, block) => {
      const into = edges.filter((e) => e.l === n.l - 1 && e.j === n.j).map(edgeTarget);
      const bias = biases.find((b) => b.l === n.l && b.j === n.j);
      const row = [...into, unitTarget(n, size), biasTarget(bias)];
      row.forEach((t, slot) => Object.assign(t, { block, slot, at: places.length + slot }));
      blocks.push(row);
      places.push(...row);
    });
    return { places, blocks };
  }

  // Left/Right: the place before/after; Up/Down: the same slot at the unit above/below (into
  // a unit of another layer come as many weights as that layer has inputs: the nearest one);
  // Home/End: the first/last. The first key lands on the first place.
  function netMove(key, at) {
    const { places, blocks } = netLayout.keys;
    const last = places.length - 1;
    if (key === "End") return last;
    if (key === "Home" || at === null) return 0;
    if (key === "ArrowRight") return Math.min(at + 1, last);
    if (key === "ArrowLeft") return Math.max(at - 1, 0);
    const here = places[at];
    const block = here.block + (key === "ArrowDown" ? 1 : -1);
    if (block < 0 || block >= blocks.length) return at;
    const fanIn = blocks[here.block].length - UNIT_AND_BIAS;
    const to = blocks[block];
    const toFanIn = to.length - UNIT_AND_BIAS;
    const slot = here.slot < fanIn ? Math.min(here.slot, toFanIn - 1) : toFanIn + here.slot - fanIn;
    return to[slot].at;
  }

  const netCanvas = $("net-canvas");
  netCanvas.addEventListener("mousemove", (e) => {
    const hit = netHit(e);
    netCanvas.style.cursor = hit ? "pointer" : "default";
    if (hit) showTip(e, [...hit.tip(), hit.select && "click to follow this parameter"]); else hideTip();
  });
  netCanvas.addEventListener("mouseleave", hideTip);
  netCanvas.addEventListener("click", (e) => { const hit = netHit(e); if (hit && hit.select) hit.select(); });
  const MOVE_KEYS = ["ArrowRight", "ArrowLeft", "ArrowUp", "ArrowDown", "Home", "End"];
  netCanvas.addEventListener("keydown", (e) => {
    if (!netLayout) return;
    if (MOVE_KEYS.includes(e.key)) netAt = netMove(e.key, netAt);
    else if ((e.key === "Enter" || e.key === " ") && netAt !== null) {
      const place = netLayout.keys.places[netAt];
      if (place.select) place.select();
    } else return;
    e.preventDefault();
    showNetPlace();
  });
  netCanvas.addEventListener("focus", () => { if (byKeyboard(netCanvas)) showNetPlace(); });
  netCanvas.addEventListener("blur", () => {
    hideTip();
    if (current && current.train) drawNet(current.train, mapProbs); // without the keyboard's place
  });

  function showNetPlace() {
    if (netAt === null || !current || !current.train) return;
    const place = netLayout.keys.places[netAt];
    tipUnder(netCanvas, [...place.tip(), place.select && "Enter follows this parameter"]);
    drawNet(current.train, mapProbs);
  }

  // The keyboard's place on a canvas is shown (drawn, its tip, said) while the keyboard has the
  // canvas: reached by Tab or a key pressed there. A click focuses the canvas too: it showed
  // the keyboard's old place, not what was clicked.
  function byKeyboard(canvas) { return canvas.matches(":focus-visible"); }

  // What a canvas's place spoke of is gone (other sizes, other data): its tip and words too.
  function forgetPlace(canvas) {
    if (!byKeyboard(canvas)) return;
    hideTip();
    announce("place", "");
  }

  // The keyboard's tip: under its canvas, clear of the drawing it speaks of, and under
  // `below` (the map's legend and metrics, which it covered); and said.
  function tipUnder(canvas, lines, below = canvas) {
    const r = canvas.getBoundingClientRect();
    showTip({ clientX: r.left - 10, clientY: below.getBoundingClientRect().bottom - 6 }, lines);
    announce("place", tip.textContent);
  }

  // The keyboard's place on a canvas: dashed black over white, unlike anything the data draws.
  function drawPlace(ctx, shape) {
    for (const [colour, width, dash] of [["#fff", 6, []], ["#111", 2, [4, 3]]]) {
      ctx.beginPath();
      if (shape.line) {
        ctx.moveTo(shape.line[0], shape.line[1]);
        ctx.lineTo(shape.line[2], shape.line[3]);
      } else if (shape.box) {
        const [x, y, w, h] = shape.box;
        ctx.rect(x - 4, y - 4, w + 8, h + 8);
      } else {
        const [x, y, r] = shape.circle;
        ctx.arc(x, y, r, 0, 2 * Math.PI);
      }
      ctx.strokeStyle = colour;
      ctx.lineWidth = width;
      ctx.setLineDash(dash);
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }

  function edgeTarget(e) {
    return {
      shape: { line: [e.x1, e.y1, e.x2, e.y2] },
      tip: () => weightTip(e.name, e.index, `from unit ${e.i + 1} of layer ${e.l} to unit ${e.j + 1} of layer ${e.l + 1}`),
      select: () => selectWeight(e.name, e.index),
    };
  }
  function biasTarget(b) {
    return {
      shape: { box: [b.x, b.y, BIAS, BIAS] },
      tip: () => weightTip(b.name, b.index, `bias of unit ${b.j + 1} in layer ${b.l}`),
      select: () => selectWeight(b.name, b.index),
    };
  }
  function unitTarget(n, size) {
    return {
      shape: { box: [n.x - size / 2, n.y - size / 2, size, size] },
      tip: () => (n.l === 0 ? [`input x${n.j + 1}`] : unitTip(n)),
    };
  }

  function netHit(event) {
    const L = netLayout;
    const rect = L.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left, y = event.clientY - rect.top;
    const near = 2; // a pointer this close to a bias's square hits it
    for (const b of L.biases) {
      if (x >= b.x - near && x <= b.x + BIAS + near && y >= b.y - near && y <= b.y + BIAS + near) return biasTarget(b);
    }
    for (const n of L.nodes) {
      if (Math.abs(x - n.x) <= L.node / 2 && Math.abs(y - n.y) <= L.node / 2) return unitTarget(n, L.node);
    }
    let best = null, bestD = 16;
    for (const e of L.edges) {
      const dx = e.x2 - e.x1, dy = e.y2 - e.y1;
      const t = Math.max(0, Math.min(1, ((x - e.x1) * dx + (y - e.y1) * dy) / (dx * dx + dy * dy)));
      const d = (x - e.x1 - t * dx) ** 2 + (y - e.y1 - t * dy) ** 2;
      if (d < bestD) { bestD = d; best = e; }
    }
    return best ? edgeTarget(best) : null;
  }

  function rgb(c, a) { return `rgba(${c[0]},${c[1]},${c[2]},${a})`; }
  const unitScratch = document.createElement("canvas");

  function mapImage(bytes, size, colourOf) {
    unitScratch.width = size; unitScratch.height = size;
    const ctx = unitScratch.getContext("2d");
    const img = ctx.createImageData(size, size);
    for (let p = 0; p < size * size; p++) {
      const [c, a] = colourOf(bytes[p]);
      img.data[4 * p] = 255 - (255 - c[0]) * a;
      img.data[4 * p + 1] = 255 - (255 - c[1]) * a;
      img.data[4 * p + 2] = 255 - (255 - c[2]) * a;
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return unitScratch;
  }

  function drawNet(tr, probs) {
    const L = netLayout;
    const ctx = L.canvas.getContext("2d");
    ctx.setTransform(L.dpr, 0, 0, L.dpr, 0, 0);
    ctx.clearRect(0, 0, L.width, L.height);
    // edges: colour by sign, width and opacity by size relative to the layer's largest weight
    const tops = tr.layers.map((layer) => layer.W.v.reduce((a, v) => (v === null ? a : Math.max(a, Math.abs(v))), 1e-12));
    let selected = null;
    for (const e of L.edges) {
      const w = packedAt(tr.layers[e.l].W, e.index);
      const mag = w.v === null ? 1 : Math.abs(w.v) / tops[e.l];
      ctx.beginPath();
      ctx.moveTo(e.x1, e.y1);
      ctx.lineTo(e.x2, e.y2);
      ctx.strokeStyle = w.v === null ? "#d92d20" : rgb(signColour(w.v), 0.25 + 0.75 * mag);
      ctx.lineWidth = 0.4 + 3.6 * mag;
      ctx.stroke();
      if (selectedWeight && selectedWeight[0] === e.name && selectedWeight[1].join() === e.index.join()) selected = e;
    }
    if (selected) {
      ctx.beginPath(); ctx.moveTo(selected.x1, selected.y1); ctx.lineTo(selected.x2, selected.y2);
      ctx.strokeStyle = "#111"; ctx.lineWidth = 3; ctx.stroke();
    }
    const s = L.node;
    ctx.imageSmoothingEnabled = true;
    ctx.font = "600 12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const last = tr.sizes.length - 1;
    for (const n of L.nodes) {
      if (n.l === 0) {
        ctx.fillStyle = "#fff"; ctx.fillRect(n.x - 13, n.y - 9, 26, 18);
        ctx.fillStyle = "#1d2330"; ctx.fillText(`x${SUB[n.j] || n.j + 1}`, n.x, n.y);
        continue;
      }
      let image;
      let state = "ok";
      if (n.l < last) {
        const unit = tr.units[n.l - 1][n.j];
        image = mapImage(b64bytes(unit.map), tr.unit_grid, (b) => {
          const v = b / 255 * 2 - 1; // -1..1: positive blue, negative orange
          return [signColour(v), Math.abs(v)];
        });
        state = tr.saturation[n.l - 1][n.j].state;
      } else {
        const col = PALETTE[n.j % PALETTE.length];
        image = mapImage(probs[n.j], tr.heat.size, (b) => [col, b / 255]);
      }
      ctx.drawImage(image, n.x - s / 2, n.y - s / 2, s, s);
      ctx.lineWidth = state === "ok" ? 1.2 : 2.5;
      ctx.strokeStyle = state === "ok" ? "#5b6577" : "#d92d20";
      ctx.strokeRect(n.x - s / 2, n.y - s / 2, s, s);
      if (state !== "ok") {
        ctx.fillStyle = "#d92d20"; ctx.beginPath(); ctx.arc(n.x + s / 2, n.y - s / 2, 6, 0, 2 * Math.PI); ctx.fill();
        ctx.fillStyle = "#fff"; ctx.font = "700 10px system-ui, sans-serif"; ctx.fillText("!", n.x + s / 2, n.y - s / 2 + 0.5);
        ctx.font = "600 12px system-ui, sans-serif";
      }
    }
    for (const b of L.biases) {
      const v = packedAt(tr.layers[b.l - 1].b, b.index).v;
      ctx.fillStyle = v === null ? "#d92d20" : rgb(signColour(v), 0.15 + 0.85 * Math.min(1, Math.abs(v)));
      ctx.fillRect(b.x, b.y, BIAS, BIAS);
      ctx.lineWidth = 1; ctx.strokeStyle = "#344054"; ctx.strokeRect(b.x, b.y, BIAS, BIAS);
    }
    if (netAt !== null && byKeyboard(L.canvas)) drawPlace(ctx, L.keys.places[netAt].shape);
    stats.saturation = tr.saturation;
  }

  function packedAt(p, index) {
    let flat = 0;
    index.forEach((i, k) => { flat = flat * p.shape[k] + i; });
    return { v: p.v[flat], s: p.s[flat], state: p.states[String(flat)] || "finite" };
  }

  function weightTip(name, index, what) {
    const tr = current && current.train;
    if (!tr) return [];
    const [, l, kind] = name.split(".");
    const value = packedAt(tr.layers[Number(l)][kind], index);
    const lines = [`${name}[${index.join(",")}] = ${value.s}   (${what})`];
    if (tr.last && !tr.last.grads) lines.push(`step ${tr.last.step}: pause to see this parameter's gradient and change`);
    if (tr.last && tr.last.grads) {
      lines.push(`step ${tr.last.step}: ∂L/∂p = ${packedAt(tr.last.grads[name], index).s} on a batch of ${tr.last.n_rows}`);
      lines.push(`Δp = ${packedAt(tr.last.delta[name], index).s} (what the optimizer changed)`);
    }
    return lines;
  }

  function unitTip(n) {
    const tr = current.train;
    const last = n.l === tr.sizes.length - 1;
    const lines = [last ? `output ${n.j + 1} (class ${tr.class_names[n.j]})` : `hidden unit ${n.j + 1} of layer ${n.l} (${tr.activation})`];
    lines.push(`b = ${packedAt(tr.layers[n.l - 1].b, [n.j]).s}`);
    if (!last) {
      const s = tr.saturation[n.l - 1][n.j];
      lines.push(`the map: its output over the plane (largest |y| = ${tr.units[n.l - 1][n.j].scale.s})`);
      if (s.slope) lines.push(`mean slope f'(a) over the data, relative to its largest: ${s.slope.s}`);
      if (s.why) lines.push(s.why);
    } else {
      lines.push("the map: the probability of this class over the plane");
    }
    return lines;
  }

  function selectWeight(name, index) {
    selectedWeight = [name, index];
    command("train.select", { point: selectedPoint, weight: selectedWeight });
  }

  function b64bytes(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  const heatScratch = document.createElement("canvas");

  function drawHeat(tr) {
    const size = tr.heat.size;
    const probs = tr.heat.probs.map(b64bytes);
    heatScratch.width = size; heatScratch.height = size;
    const sctx = heatScratch.getContext("2d");
    const img = sctx.createImageData(size, size);
    const k = probs.length;
    for (let p = 0; p < size * size; p++) {
      let best = 0;
      for (let c = 1; c < k; c++) if (probs[c][p] > probs[best][p]) best = c;
      // shade: how far the winning probability is above a uniform guess
      const conf = Math.max(0, (probs[best][p] / 255 - 1 / k) / (1 - 1 / k));
      const col = PALETTE[best % PALETTE.length];
      const a = 0.15 + 0.6 * conf;
      img.data[4 * p] = 255 - (255 - col[0]) * a;
      img.data[4 * p + 1] = 255 - (255 - col[1]) * a;
      img.data[4 * p + 2] = 255 - (255 - col[2]) * a;
      img.data[4 * p + 3] = 255;
    }
    sctx.putImageData(img, 0, 0);
    const heat = $("heat");
    const ctx = heat.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(heatScratch, 0, 0, heat.width, heat.height);
    drawPoints(tr, ctx, heat);
    return probs;
  }

  let points = null; // {key, train: [[x, y, label]], test: [...]} fetched with the data
  function toCanvas(tr, canvas, x, y) {
    const [x0, x1, y0, y1] = tr.heat.extent;
    return [(x - x0) / (x1 - x0) * canvas.width, (y1 - y) / (y1 - y0) * canvas.height];
  }

  const pointsLayer = document.createElement("canvas");
  let pointsKey = null;
  function drawPoints(tr, ctx, canvas) {
    if (!tr.points) return;
    const place = byKeyboard(canvas) ? pointAt : null;
    const key = JSON.stringify([tr.points.key, tr.points.train.length, selectedPoint, place, tr.heat.extent]);
    if (key !== pointsKey) { // the points change rarely: drawn once into a layer
      pointsKey = key;
      pointsLayer.width = canvas.width; pointsLayer.height = canvas.height;
      drawPointsOn(tr, pointsLayer.getContext("2d"), canvas, place);
    }
    ctx.drawImage(pointsLayer, 0, 0);
  }

  function drawPointsOn(tr, ctx, canvas, place) {
    const draw = (rows, test) => rows.forEach(([x, y, label], i) => {
      const [px, py] = toCanvas(tr, canvas, x, y);
      drawMarker(ctx, label, px, py, 3.4, test);
      if (!test && i === selectedPoint) {
        ctx.beginPath(); ctx.arc(px, py, 7, 0, 2 * Math.PI);
        ctx.strokeStyle = "#111"; ctx.lineWidth = 2; ctx.stroke();
      }
    });
    draw(tr.points.test, true);
    draw(tr.points.train, false);
    if (place !== null && place < tr.points.train.length) {
      const [x, y] = tr.points.train[place];
      drawPlace(ctx, { circle: [...toCanvas(tr, canvas, x, y), 9] });
    }
  }

  function markerPath(ctx, marker, x, y, r) {
    ctx.beginPath();
    if (!marker.outline) { ctx.arc(x, y, r, 0, 2 * Math.PI); return; }
    for (const [dx, dy] of marker.outline) ctx.lineTo(x + dx * r, y + dy * r);
    ctx.closePath();
  }

  // A class's mark: its colour and shape, edged in ink (the yellow is 1.3:1 on white: a test
  // point in it vanished); filled for a training point, with a white centre for a test point.
  const HOLE = 0.55; // a test point's white centre, relative to its marker's size
  function drawMarker(ctx, label, x, y, r, hollow) {
    const marker = MARKERS[label % MARKERS.length];
    markerPath(ctx, marker, x, y, r);
    ctx.fillStyle = rgb(PALETTE[label % PALETTE.length], 1);
    ctx.strokeStyle = "#1d2330";
    ctx.lineWidth = 1;
    ctx.fill(); ctx.stroke();
    if (!hollow) return;
    markerPath(ctx, marker, x, y, HOLE * r);
    ctx.fillStyle = "#fff";
    ctx.fill();
  }

  // The classes in words: each one's colour and marker (the map says nothing by colour alone).
  function renderLegend(tr) {
    const box = $("legend");
    box.textContent = "";
    tr.class_names.forEach((name, k) => {
      const item = el("span", {}, box);
      const swatch = el("canvas", { width: 14, height: 14, "aria-hidden": "true" }, item);
      drawMarker(swatch.getContext("2d"), k, 7, 7, 5, false);
      item.append(`class ${name}: ${COLOUR_NAMES[k % COLOUR_NAMES.length]} ${MARKERS[k % MARKERS.length].name}`);
    });
    el("span", {}, box, "filled: training points, hollow: test points");
  }

  function drawCurves(tr) {
    const canvas = $("curves");
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height;
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    const bytes = b64bytes(tr.history);
    const rows = new Float32Array(bytes.buffer, 0, bytes.length / 4);
    const n = rows.length / 5;
    if (n < 1) return;
    const steps = rows[(n - 1) * 5] || 1;
    let maxLoss = 0;
    for (let r = 0; r < n; r++) for (const c of [1, 2]) if (Number.isFinite(rows[r * 5 + c])) maxLoss = Math.max(maxLoss, rows[r * 5 + c]);
    maxLoss = maxLoss || 1;
    const loss = rgb(POSITIVE, 1); // blue, as the curve labels say
    const series = [[1, loss, [], maxLoss], [2, loss, [4, 3], maxLoss], [3, "#2ea043", [], 1], [4, "#2ea043", [4, 3], 1]];
    for (const [c, color, dash, top] of series) {
      ctx.beginPath(); ctx.setLineDash(dash); ctx.strokeStyle = color; ctx.lineWidth = 1.5;
      let started = false;
      for (let r = 0; r < n; r++) {
        const v = rows[r * 5 + c];
        if (!Number.isFinite(v)) continue;
        const x = 4 + (W - 8) * (rows[r * 5] / steps);
        const y = H - 4 - (H - 8) * Math.min(1, v / top);
        if (!started) { ctx.moveTo(x, y); started = true; } else ctx.lineTo(x, y);
      }
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }

  async function loadPoints(tr) {
    const key = JSON.stringify([tr.setup.dataset, tr.setup.seed, tr.setup.n_samples, tr.setup.noise, tr.setup.test_fraction,
      tr.setup.csv_name, tr.setup.csv_target, tr.setup.dataset === "csv" ? csv.drops : 0]);
    if (points && points.key === key) return;
    points = { key, train: [], test: [] };
    forgetPlace($("heat"));
    pointAt = null;
    const data = await request("/api/export", { session, what: "points.json" });
    if (!data || data.error) return;
    points = { key, train: data.train, test: data.test };
    if (current && current.train) { current.train.points = points; mapProbs = drawHeat(current.train); }
  }

  function renderTrain(frame) {
    const tr = frame.train;
    // follow what the server follows: a new run (Rewind, another network) may drop either
    selectedWeight = tr.inspect.weight ? [tr.inspect.weight.name, tr.inspect.weight.index] : null;
    selectedPoint = tr.inspect.point ? tr.inspect.point.index : null;
    loadPoints(tr);
    tr.points = points;
    layoutNet(tr.sizes);
    const formKey = JSON.stringify(tr.setup_text);
    if (!$("setup").elements.length) { buildForm(tr.labels); usedBy = tr.used_by; }
    if (formKey !== drawn.form) { drawn.form = formKey; fillForm(tr.setup_text); }
    if (document.activeElement !== $("speed")) $("speed").value = frame.speed;
    $("play").textContent = frame.running ? "Pause" : "Play";
    const progress = sentences([tr.progress, runNote]);
    $("train-progress").textContent = progress;
    const msg = $("train-message");
    msg.hidden = !tr.message;
    msg.textContent = tr.message;
    mapProbs = drawHeat(tr);
    drawNet(tr, mapProbs);
    drawCurves(tr);
    const m = tr.metrics;
    const metrics = $("metrics");
    metrics.textContent = "";
    const texts = [["train loss", "train_loss"], ["test loss", "test_loss"], ["train accuracy", "train_acc"], ["test accuracy", "test_acc"]].map(([label, key]) => {
      el("span", { "data-metric": key, "data-v": String(m[key].v) }, metrics, `${label} ${m[key].s}`);
      return `${label} ${m[key].s}`;
    });
    // said when a pause or a step leaves it still; while it plays or replays a setup's
    // steps, every frame would be said
    if (!frame.running && !tr.replay) announce("run", sentences([progress, tr.message, texts.join(", ")]));
    const legendKey = JSON.stringify(tr.class_names);
    if (legendKey !== drawn.legend) { drawn.legend = legendKey; renderLegend(tr); }
    const labels = $("curve-labels");
    labels.textContent = "";
    el("i", {}, labels, `loss (blue, 0 to ${tr.history_text.loss_max}) and accuracy (green, 0 to 1); solid train, dashed test; ${tr.history_text.steps} steps`);
    const inspectKey = JSON.stringify([tr.inspect, lastFrameRunning, !!tr.last, tr.n_parameters]);
    if (inspectKey !== drawn.inspect) { drawn.inspect = inspectKey; renderInspect(tr); }
  }
  const drawn = { form: null, inspect: null, legend: null }; // what the DOM shows already

  // texts joined as sentences: a full stop between two, unless the first ends in one already
  function sentences(texts) {
    return texts.filter((t) => t).reduce((out, t) => (out ? `${out}${/[.!?…]$/.test(out) ? "" : "."} ${t}` : t), "");
  }

  function lines(box, title, rows) {
    el("h3", {}, box, title);
    const div = el("div", { class: "lines" }, box);
    for (const r of rows) if (r) el("div", {}, div, r);
  }

  function renderInspect(tr) {
    const wbox = $("inspect-weight");
    wbox.textContent = "";
    const w = tr.inspect.weight;
    if (w) {
      const rows = [`value now ${w.value.s}`];
      if (w.step !== undefined) {
        rows.push(`step ${w.step}: value before ${w.before.s}`);
        rows.push(`batch gradient ∂L/∂p ${w.grad.s}   finite difference ${w.fd.s}`);
        if (w.point_grad) {
          const masks = w.point_masked ? ", under this step's dropout masks" : "";
          rows.push(`the chosen point's own ∂l/∂p ${w.point_grad.s} (at the weights before step ${w.step}${masks}); its share of this batch's gradient ${w.point_share.s}`);
        }
        const st = Object.entries(w.state).map(([k, v]) => `${k} = ${v.s}`).join("   ");
        if (st) rows.push(`optimizer state after the step: ${st}`);
        rows.push(...w.update);
      } else rows.push("take a step to see its gradient and update");
      lines(wbox, `Parameter ${w.name}[${w.index.join(",")}]`, rows);
    } else {
      lines(wbox, "Parameter", ["click an edge or a bias square to follow one parameter: its batch gradient, finite difference, optimizer state and update"]);
    }
    const pbox = $("inspect-point");
    pbox.textContent = "";
    const p = tr.inspect.point;
    if (p) {
      // at the weights now, after the last step: the parameter panel's gradient is the
      // step's own, at the weights before it (a learner multiplying δ by x here got another)
      const rows = [`at the weights now${tr.step ? ` (after step ${tr.step}; the parameter's gradient above is at those before it)` : ""}:`,
        `x = (${p.x.map((v) => v.s).join(", ")}), class ${tr.class_names[p.label]}, own loss l = ${p.loss.s}`,
        `prediction ${p.prediction.map((v) => v.s).join(", ")}`,
        p.in_last_batch ? "it was in the last step's batch" : "it was not in the last step's batch"];
      p.layers.forEach((layer, l) => {
        rows.push(`layer ${l + 1}: a = ${layer.a.map((v) => v.s).join(" ")}`);
        rows.push(`         y = ${layer.y.map((v) => v.s).join(" ")}`);
        rows.push(`         δ = ${layer.delta.map((v) => v.s).join(" ")}`);
      });
      lines(pbox, `Training point ${p.index}`, rows);
    } else {
      lines(pbox, "Training point", ["click a point in the map: its forward values, deltas and share of the gradient"]);
    }
    const tbox = $("fd-table");
    tbox.textContent = "";
    const table = tr.inspect.table;
    if (table && !lastFrameRunning) {
      el("h3", {}, tbox, `Every parameter at step ${table.step}: batch gradient beside its finite difference`);
      const last = tr.last;
      if (last && last.step === table.step && last.loss) {  // the L these are the gradient of
        const more = last.rows && last.n_rows > last.rows.length ? ", …" : "";
        const which = last.rows ? ` (training rows ${last.rows.join(", ")}${more})` : "";
        const plural = last.n_rows === 1 ? "" : "s";
        el("p", { class: "batch" }, tbox,
          `The batch: ${last.n_rows} row${plural}${which}; its loss before the step L = ${last.loss.s}`);
      }
      const t = el("table", { class: "numbers" }, tbox);
      const head = el("tr", {}, t);
      for (const h of ["parameter", "before", "∂L/∂p", "finite diff.", "Δp"]) el("th", {}, head, h);
      for (const r of table.rows) {
        const tr2 = el("tr", {}, t);
        el("td", {}, tr2, `${r.name}[${r.index.join(",")}]`);
        for (const k of ["before", "grad", "fd", "delta"]) el("td", { "data-col": k }, tr2, r[k].s);
      }
    } else if (!lastFrameRunning && tr.last && tr.n_parameters > tr.table_max_parameters) {
      // (the area was empty after a step, with nothing said)
      el("p", {}, tbox, `The table of every parameter's gradient beside its finite difference ` +
        `is made for networks of up to ${tr.table_max_parameters} parameters; this one has ` +
        `${tr.n_parameters}: choose a weight in the network to see its own.`);
    }
  }

  $("heat").addEventListener("click", (event) => {
    const tr = current && current.train;
    if (!tr || !points) return;
    const canvas = $("heat");
    const rect = canvas.getBoundingClientRect();
    const cx = (event.clientX - rect.left) * canvas.width / rect.width;
    const cy = (event.clientY - rect.top) * canvas.height / rect.height;
    let best = null, bestD = 12 * 12;
    points.train.forEach(([x, y], i) => {
      const [px, py] = toCanvas(tr, canvas, x, y);
      const d = (px - cx) ** 2 + (py - cy) ** 2;
      if (d < bestD) { bestD = d; best = i; }
    });
    selectedPoint = best;
    command("train.select", { point: selectedPoint, weight: selectedWeight });
  });

  // the keyboard's place among the training points (in the data's order): Left/Right one
  // point, Up/Down ten, Home/End the first/last
  let pointAt = null;
  const POINT_MOVES = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 10, ArrowUp: -10 };
  $("heat").addEventListener("keydown", (e) => {
    if (!current || !current.train || !points || !points.train.length) return;
    const last = points.train.length - 1;
    if (e.key in POINT_MOVES) pointAt = pointAt === null ? 0 : Math.max(0, Math.min(last, pointAt + POINT_MOVES[e.key]));
    else if (e.key === "Home" || e.key === "End") pointAt = e.key === "Home" ? 0 : last;
    else if ((e.key === "Enter" || e.key === " ") && pointAt !== null) {
      command("train.select", { point: pointAt, weight: selectedWeight });
    } else return;
    e.preventDefault();
    showPointPlace();
  });
  $("heat").addEventListener("focus", () => { if (byKeyboard($("heat"))) showPointPlace(); });
  $("heat").addEventListener("blur", () => {
    hideTip();
    if (current && current.train) drawHeat(current.train); // without the keyboard's place
  });

  function showPointPlace() {
    if (pointAt === null || !current || !current.train) return;
    const tr = current.train;
    tipUnder($("heat"), [`training point ${pointAt} of ${points.train.length}, class ${tr.class_names[points.train[pointAt][2]]}`,
      "Enter follows it"], $("metrics"));
    drawHeat(tr);
  }

  // a window made narrower or a phone turned while nothing trains: the network to its new width
  window.addEventListener("resize", () => {
    if (!current || current.mode !== "train" || !mapProbs) return;
    layoutNet(current.train.sizes);
    drawNet(current.train, mapProbs);
  });

  $("play").addEventListener("click", () => command(current && current.running ? "train.pause" : "train.play"));
  $("step-sample").addEventListener("click", () => command("train.step", { unit: "sample" }));
  $("step-batch").addEventListener("click", () => command("train.step", { unit: "batch" }));
  $("step-epoch").addEventListener("click", () => command("train.step", { unit: "epoch" }));
  $("rewind").addEventListener("click", () => command("train.rewind"));
  $("speed").addEventListener("change", () => command("train.speed", { speed: Number($("speed").value) }));
  // an export is fetched first, so that one the server refuses says why on the page (a
  // download link alone was cancelled without a word: step.json of an overflowing step)
  document.querySelectorAll("a[data-export]").forEach((link) => {
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      let response;
      try { response = await fetch(link.href); } catch (e) { return; } // (the frames say it)
      if (!response.ok) {
        const text = await response.text().catch(() => "");
        let why = `the ${link.dataset.export} export failed (${response.status})`;
        try { why = JSON.parse(text).error || why; } catch (e) { /* not JSON */ }
        showError(why);
        return;
      }
      const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
      const a = document.createElement("a");
      a.href = URL.createObjectURL(await response.blob());
      a.download = named ? named[1] : link.dataset.export;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    });
  });
  $("export-png").addEventListener("click", (event) => {
    event.preventDefault();
    $("heat").toBlob((blob) => {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "playground-decision-map.png";
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    });
  });

  async function readCsv(file) {
    $("csv-file").value = ""; // choosing the same file again is a new choice
    if (file.size > 1 << 20) { showError(`${file.name} is ${file.size} bytes; the playground takes CSV files up to 1 MiB`); return; }
    const text = await file.text();
    if (!text.trim()) {
      showError(`${file.name} is empty; expected a header line, then rows of 2 feature columns and a class column`);
      return;
    }
    let data;
    if (pendingCsvSetup) { // the run of the URL, rebuilt with its file
      data = await command("setup", { setup: { ...pendingCsvSetup, csv_text: text, csv_name: file.name } });
    } else {
      const setup = runSetup({ dataset: "csv", csv_text: text, csv_name: file.name, csv_target: "" });
      data = await command("train.setup", { setup });
    }
    if (!data || data.error) return; // refused: the run and the file it uses stay as they were
    pendingCsvSetup = null;
    csv = { text, name: file.name, drops: csv.drops + 1 };
    if (current && current.train) loadPoints(current.train); // the new file's points
  }
  $("csv-file").addEventListener("change", (e) => { if (e.target.files[0]) readCsv(e.target.files[0]); });
  document.querySelectorAll(".setup-file").forEach((input) => {
    input.addEventListener("change", (e) => { if (e.target.files[0]) readSetupFile(e.target.files[0]); });
  });
  // A file dropped anywhere on the page (the browser left the page for one dropped outside
  // the CSV box): a .json file is a setup, any other a CSV file for train mode.
  function readDropped(file) {
    if (/\.json$/i.test(file.name) || file.type === "application/json") readSetupFile(file);
    else if (current && current.mode === "train") readCsv(file);
    else showError(`${file.name}: the tutorial opens a setup.json; a CSV file is for train mode (choose Train, then drop it there)`);
  }
  // (only files: text dragged into a field is the field's)
  const carriesFiles = (e) => !!e.dataTransfer && Array.from(e.dataTransfer.types).includes("Files");
  document.addEventListener("dragover", (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    $("drop").classList.add("over");
  });
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) $("drop").classList.remove("over"); });
  document.addEventListener("drop", (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    $("drop").classList.remove("over");
    if (e.dataTransfer.files[0]) readDropped(e.dataTransfer.files[0]);
  });

  start();
})();
