"""One browser tab's playground: its tutorial, its training run, and the frames it is sent.

The page pulls its frames: every command's response carries the newest frame, and while
something is still coming (training runs, or the paused step's finite-difference table is
being computed) the page asks ``GET /api/frame?after=n``, which acknowledges frame n and
answers with the newest frame once there is one newer than n. No request is left open while
nothing is coming, so a browser's six connections per host serve any number of tabs (an
endless event stream per tab froze the seventh tab, and every tab once six were open).

Frames are "latest wins with acknowledgement": a new frame replaces the one not yet sent,
and the worker computes the next one only after the page has acknowledged all but the
newest. A slow page therefore sees fewer frames, never older ones (a queue of frames behind
a slow browser grew to a second of latency in the measurements of issue 18).

While training runs, a worker thread takes ``speed`` optimizer steps, builds the next frame
and publishes it, then waits until the page has drawn all but that frame (at most a
second): the server computes frame n + 1 while the page draws frame n, and the page is
never more than one frame behind. A setup's trail of steps is replayed by the command for
up to :data:`REPLAY_WAIT_S`, then in the background in slices, a frame after each, so
that the page shows how far the replay has got. Every command and the workers hold
:attr:`Session.lock` while they touch the model.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from .._validation import short_repr
from ..tutorial import ExplainError, losses_after_update, require_finite, step_json
from .training import DEFAULT_SETUP, SetupError, TrainRun
from .tutorial import Tutorial

__all__ = ["CommandError", "Session"]

MAX_FPS = 60
IDLE_WAIT_S = 1.0  # the worker goes on without an acknowledgement after this long
#: A page that has asked for no frame and sent no command for this long is gone (a tab
#: closed while training ran): its training pauses. An open page asks every second or so
#: while training runs, hidden or not; a closed one trained on for ever (44% of a core for
#: eight sessions, until the server stopped).
ABANDONED_S = 60.0
#: A setup's replay (its trail of steps) goes on in the background after this long in the
#: command, so the page is answered at once: replayed whole inside the page's first request,
#: a long trail left the page at "connecting", saying nothing (30 s for 120,000 steps of the
#: default network).
REPLAY_WAIT_S = 0.3
REPLAY_SLICE_S = 0.25  # the background replay's slice: a frame after each
#: The background replay pauses when its page has asked for nothing for this long (the
#: page asks for each slice's frame), and goes on when the page asks again: a replay of
#: 1.9 million steps ran on for 13 minutes after its tab was closed.
REPLAY_GONE_S = 5.0


class CommandError(ValueError):
    """A command the session cannot carry out; the message says why."""


class Session:
    """The state of one page.

    Parameters
    ----------
    sid : str
    tutorial_start : dict, optional
        ``x, t, eta, w, b1, u, b2`` the tutorial starts from (``--weights``).
    """

    def __init__(self, sid: str, tutorial_start: dict[str, Any] | None = None) -> None:
        self.sid = sid
        self.lock = threading.RLock()  # the model and everything computed from it
        self.cond = threading.Condition()  # the frame sequence numbers below
        self.tutorial = Tutorial(tutorial_start)
        self.run: TrainRun | None = None
        self.mode = "tutorial"
        self.seq = 0  # the last frame published
        self.acked = 0  # the last frame the page drew
        self.frame_json = ""
        self.closed = False
        self.running = False
        self.speed = DEFAULT_SETUP["speed"]
        self.last_seen = time.monotonic()
        self._worker: threading.Thread | None = None
        self._table_busy = False
        self._replayer: threading.Thread | None = None
        self._replay_paused = False  # by REPLAY_GONE_S: the page's next request resumes it
        self.publish()

    # ---------------------------------------------------------------- frames
    def build_frame(self, full: bool = False) -> dict[str, Any]:
        with self.lock:
            frame: dict[str, Any] = {"mode": self.mode, "running": self.running}
            if self.mode == "tutorial":
                frame["tutorial"] = self.tutorial.frame()
                frame["setup"] = {"mode": "tutorial", **self.tutorial.setup()}
            else:
                run = self._train_run()
                run.record()
                frame["train"] = run.frame(full=full)
                frame["setup"] = {"mode": "train", **frame["train"]["setup"]}
                frame["speed"] = self.speed
            return frame

    def publish(self, full: bool = False) -> int:
        """Build a frame and make it the latest; returns its sequence number."""
        frame = self.build_frame(full)
        with self.cond:
            self.seq += 1
            frame["seq"] = self.seq
            self.frame_json = json.dumps(frame, allow_nan=False, separators=(",", ":"))
            self.cond.notify_all()
            return self.seq

    def busy(self) -> bool:
        """Whether a newer frame is on its way without a command: training runs, a setup's
        steps are being replayed, or the paused step's finite-difference table is being
        computed."""
        return self.running or self._table_busy or self._replaying()

    def _replaying(self) -> bool:
        """Whether the run still has steps of its setup's trail to replay."""
        run = self.run
        return run is not None and bool(run.pending) and not self.closed

    def latest(self) -> tuple[int, str]:
        """The newest frame: ``(sequence number, JSON text)``."""
        with self.cond:
            return self.seq, self.frame_json

    def frame_after(self, drawn: int, wait_s: float) -> tuple[int, str] | None:
        """Acknowledge frame ``drawn`` and give the newest frame if it is newer; while the
        session is :meth:`busy`, wait up to ``wait_s`` for one. None when there is none."""
        self.ack(drawn)
        if self._replay_paused:  # the page is back
            self._start_replay()
        with self.cond:
            self.cond.wait_for(lambda: self.closed or self.seq > drawn or not self.busy(), wait_s)
            if self.closed or self.seq <= drawn:
                return None
            return self.seq, self.frame_json

    def ack(self, seq: Any) -> None:
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise CommandError(f"ack needs a frame number; got {short_repr(seq)}")
        with self.cond:
            self.acked = max(self.acked, min(seq, self.seq))
            self.last_seen = time.monotonic()
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.running = False
            self.cond.notify_all()
        for worker in (self._worker, self._replayer):
            if worker is not None and worker is not threading.current_thread():
                worker.join(timeout=5)

    # ---------------------------------------------------------------- commands
    def _train_run(self) -> TrainRun:
        if self.run is None:
            self.run = TrainRun({})
        return self.run

    def command(self, msg: Any) -> None:
        """Carry out one command from the page (see docs/playground.md) and publish a frame."""
        self.last_seen = time.monotonic()
        if self._replay_paused:  # the page is back
            self._start_replay()
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            raise CommandError('a command is a JSON object with an "op"')
        op = msg["op"]
        full = False
        try:
            with self.lock:
                if op == "mode":
                    if msg.get("mode") not in ("tutorial", "train"):
                        raise CommandError("mode must be 'tutorial' or 'train'")
                    self.mode = msg["mode"]
                    if self.mode == "tutorial":
                        self.running = False
                elif op == "tutorial.phase":
                    self.mode = "tutorial"
                    self.tutorial.advance(msg.get("delta"))
                elif op == "tutorial.set":
                    self.mode = "tutorial"
                    self.tutorial.set_inputs(msg.get("values"))
                elif op == "tutorial.reset":
                    self.mode = "tutorial"
                    self.tutorial.reset()
                elif op == "train.setup":
                    self._set_up(msg.get("setup"))
                    full = self._replayed()
                elif op == "train.rewind":
                    self._set_up(dict(self._train_run().setup, trail=[], speed=self.speed))
                elif op == "train.play":
                    run = self._train_run()
                    self._refuse_while_replaying(run)
                    self.mode = "train"
                    run.clear_divergence()
                    self.running = True
                    self._start_worker()
                elif op == "train.pause":
                    self.running = False
                    full = True
                elif op == "train.step":
                    run = self._train_run()
                    self._refuse_while_replaying(run)
                    self.mode = "train"
                    self.running = False
                    run.clear_divergence()
                    unit = msg.get("unit")
                    if unit == "sample":
                        run.step(1)
                    elif unit == "batch":
                        run.step(run.setup["batch_size"])
                    elif unit == "epoch":
                        run.step_epoch()
                    else:
                        raise CommandError("a step's unit is 'sample', 'batch' or 'epoch'")
                    full = True
                elif op == "train.speed":
                    speed = msg.get("speed")
                    if not (isinstance(speed, int) and not isinstance(speed, bool)):
                        raise CommandError(f"speed must be an integer; got {short_repr(speed)}")
                    self.speed = min(max(speed, 1), 500)
                elif op == "train.select":
                    self._train_run().select(msg.get("point"), msg.get("weight"))
                    full = not self.running
                elif op == "setup":
                    self._restore(msg.get("setup"))
                    full = self.mode == "train" and self._replayed()
                else:
                    raise CommandError(f"unknown command {short_repr(op)}")
        except (ExplainError, SetupError) as e:
            raise CommandError(str(e)) from None
        self.publish(full)
        if full:
            self._start_table()

    @staticmethod
    def _refuse_while_replaying(run: TrainRun) -> None:
        """A step taken in the middle of a replay would give another run than the setup's."""
        if run.pending:
            raise CommandError(
                f"the run is still replaying its setup's steps ({run.replayed:,} of "
                f"{run.replay_total:,} done): wait until it has, or press Rewind to start "
                "again from step 0"
            )

    def _start_table(self) -> None:
        """The paused step's finite-difference table, in the background and on a copy of the
        model: the step's own frame goes out first, and a next command need not wait (the
        table took 0.2-0.3 s for the default 354 parameters here). One job at a time."""
        with self.lock:
            run = self.run
            if self._table_busy or self.running or run is None or not run.needs_table():
                return  # busy() must not promise a frame that no job will publish
            self._table_busy = True
        threading.Thread(target=self._table_job, name=f"table-{self.sid}", daemon=True).start()

    def _table_job(self) -> None:
        try:
            while True:
                with self.lock:
                    run = self.run
                    if self.running or self.closed or run is None or not run.needs_table():
                        return
                    last = run.last
                assert last is not None
                table = run.table_for(last)  # without the lock: commands go on meanwhile
                with self.lock:
                    if self.run is run and run.last is last and not self.running:
                        last.full_fd, last.fd_kinks = table
                        done = True
                    else:
                        done = False  # a newer step: loop for its table
                if done:
                    self.publish(full=True)
        finally:
            with self.lock:
                self._table_busy = False
            with self.cond:
                self.cond.notify_all()  # a page waiting for the table stops waiting

    def _replayed(self) -> bool:
        """Whether the run just set up replayed steps: it stands paused at the last of them,
        whose numbers (and table) the page shows as after a step (it said 'pause to see'
        with nothing running, and step.json had them)."""
        return self.run is not None and self.run.last is not None

    def _set_up(self, setup: Any, initial_weights: Any = None) -> None:
        """A new run from ``setup``; a refused setup changes nothing. The followed weight and
        point stay followed where the new run has them (Rewind always has them). The
        setup's trail is replayed here for up to REPLAY_WAIT_S, the rest in the background
        (:meth:`_replay_job`)."""
        run = TrainRun(setup if setup is not None else {}, replay=False)
        if initial_weights is not None and initial_weights != run.initial_weights():
            raise CommandError(
                f"the setup's initial_weights are not those its seed ({run.setup['seed']}) "
                "draws for this network; expected them as exported, or left out (the seed "
                "draws them)"
            )
        old = self.run
        self.running = False
        self.mode = "train"
        self.run = run
        self.speed = run.setup["speed"]
        if old is not None:
            run.follow_as(old)
        if not run.replay(REPLAY_WAIT_S, lambda: self.closed):
            self._start_replay()

    def _restore(self, setup: Any) -> None:
        """A whole setup, from the URL or a setup.json file (the page opens both through
        this command): ``{"mode": ..., ...}``. A refused one changes nothing."""
        if not isinstance(setup, dict):
            raise CommandError(
                'a setup is a JSON object with "mode": "tutorial" or "train", as setup.json '
                f"holds; got {_json_kind(setup)}"
            )
        if setup.get("mode") not in ("tutorial", "train"):
            got = short_repr(setup["mode"]) if "mode" in setup else "none"
            raise CommandError(f'a setup\'s "mode" is "tutorial" or "train"; got {got}')
        rest = {k: v for k, v in setup.items() if k != "mode"}
        if setup["mode"] == "train":
            # setup.json lists the run's initial weights for the reader; its seed draws them
            # again (the export's own key was refused as unknown: the file did not open),
            # and weights edited since are refused, not dropped without a word
            weights = rest.pop("initial_weights", None)
            self._set_up(rest, weights)
            return
        tut = Tutorial(self.tutorial.start)
        tut.restore(rest)
        self.tutorial = tut
        self.mode = "tutorial"  # (it was set before the checks: a refused file changed it)

    # ---------------------------------------------------------------- setup replay
    def _start_replay(self) -> None:
        """The rest of the run's replay, in the background (one replayer per session)."""
        with self.lock:
            self._replay_paused = False
            if self._replayer is None and self._replaying():
                self._replayer = threading.Thread(
                    target=self._replay_job, name=f"replay-{self.sid}", daemon=True
                )
                self._replayer.start()

    def _replay_job(self) -> None:
        """Replay the current run's trail a slice at a time, publishing a frame after each
        (the page shows how far it has got); commands go in between slices. A new run (a
        changed field, Rewind, another setup) is replayed instead; the job ends when none
        is left to replay, or pauses when the page has gone (REPLAY_GONE_S)."""
        while True:
            with self.lock:
                run = self.run
                if run is None or not self._replaying():
                    self._replayer = None
                    return
                if time.monotonic() - self.last_seen > REPLAY_GONE_S:
                    self._replayer = None
                    self._replay_paused = True
                    return
                done = run.replay(REPLAY_SLICE_S, lambda: self.closed)
                if done:  # the replayed step stands as after a step: its numbers and table
                    self._start_table()
            self.publish(full=done)

    # ---------------------------------------------------------------- training worker
    def _start_worker(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            return
        self._worker = threading.Thread(target=self._work, name=f"train-{self.sid}", daemon=True)
        self._worker.start()

    def _work(self) -> None:
        while True:
            with self.cond:
                # one frame in flight: the next is computed while the page draws this one
                self.cond.wait_for(
                    lambda: not self.running or self.closed or self.acked >= self.seq - 1,
                    IDLE_WAIT_S,
                )
                if not self.running or self.closed:
                    return
                if time.monotonic() - self.last_seen > ABANDONED_S:
                    self.running = False  # its page is gone: paused, as a page that comes
                    self._worker = None  # back shows it (a Play meanwhile starts another
                    break  # worker: this one only publishes that frame, then ends)
            started = time.monotonic()
            with self.lock:
                if not self.running or self.mode != "train":
                    return
                run = self._train_run()
                for _ in range(self.speed):
                    run.step(run.setup["batch_size"])
                    if run.diverged:
                        self.running = False
                        break
            self.publish(full=not self.running)
            if not self.running:
                self._start_table()
            spare = 1.0 / MAX_FPS - (time.monotonic() - started)
            if spare > 0:
                time.sleep(spare)
        self.publish(full=True)

    # ---------------------------------------------------------------- exports
    def export(self, what: str) -> tuple[str, str, bytes]:
        """``(file name, content type, bytes)`` of one export."""
        with self.lock:
            if what == "setup.json":
                if self.mode == "tutorial":
                    data: dict[str, Any] = {"mode": "tutorial", **self.tutorial.setup()}
                else:
                    run = self._train_run()
                    data = {"mode": "train", **run.setup, "initial_weights": run.initial_weights()}
                    if not data.get("csv_text"):
                        data.pop("csv_text", None)
                return "playground-setup.json", "application/json", _json_bytes(data)
            if self.mode == "tutorial":
                step = self.tutorial.step
                if what == "step.json":  # the same object as backprop explain --json,
                    try:  # which refuses a step that overflows (it was a 500)
                        require_finite(step)
                    except ExplainError as e:
                        raise CommandError(str(e)) from None
                    # with the tables' factors and finite differences, as explain --json
                    data = step_json(step, losses_after_update([step])[0])
                    data["finite_difference"] = self.tutorial.fd
                    return "step.json", "application/json", _json_bytes(data)
                if what == "weights.json":  # for backprop explain --weights
                    w = {k: getattr(step, k) for k in ("w", "b1", "u", "b2")}
                    return "weights.json", "application/json", _json_bytes(w)
                if what == "command.txt":
                    s = step
                    line = (
                        f"backprop explain --x {','.join(repr(v) for v in s.x)} "
                        f"--t {','.join(repr(v) for v in s.t)} --eta {s.eta!r} "
                        "--weights weights.json --json\n"
                    )
                    return "command.txt", "text/plain; charset=utf-8", line.encode()
                raise CommandError(f"tutorial mode exports setup.json, step.json, weights.json "
                                   f"and command.txt; not {short_repr(what)}")  # fmt: skip
            run = self._train_run()
            if what == "points.json":
                return "points.json", "application/json", _json_bytes(run.points())
            if run.pending:  # (setup.json, above, is the whole setup, its trail included)
                raise CommandError(
                    f"the run is still replaying its setup's steps ({run.replayed:,} of "
                    f"{run.replay_total:,} done): export {what} once it has"
                )
            if what == "model.safetensors":
                return "playground-model.safetensors", "application/octet-stream", run.model_bytes()
            if what == "step.json":
                return "step.json", "application/json", _json_bytes(run.step_numbers())
            if what == "step.csv":
                return "step.csv", "text/csv; charset=utf-8", run.step_csv().encode()
            if what == "config.toml":
                return "config.toml", "text/plain; charset=utf-8", run.train_toml().encode()
            if what == "command.txt":
                return (
                    "command.txt",
                    "text/plain; charset=utf-8",
                    (run.train_command() + "\n").encode(),
                )
            raise CommandError(
                "train mode exports setup.json, model.safetensors, step.json, step.csv, "
                f"config.toml and command.txt; not {short_repr(what)}"
            )


def _json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's words (a setup file that holds a list says so)."""
    kinds = ((bool, "true or false"), (str, "a string"), (list, "a list"), (dict, "an object"))
    if value is None:
        return "null"
    for kind, words in kinds:
        if isinstance(value, kind):
            return words
    return f"the number {short_repr(value)}"


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=1, allow_nan=False) + "\n").encode("utf-8")
