"""Runs hostile command lines in one process under a memory limit, for tests/test_hostile.py.

``python tests/hostile_driver.py CASES.json RESULTS.json`` sets RLIMIT_AS (the address
space: every allocation past it fails), then runs each case's argv through
``backprop.cli.main`` in this process, one after the other, each under a time limit
(SIGALRM), with its own environment variables, stdout and stderr captured. RESULTS.json
gets, per case: the exit status (or "timeout"), stdout, stderr, the seconds it took and the
process's peak resident memory after it (MB, :func:`peak_mb`); the entry ``""`` holds the
peak before the first case (the imports).

One process for every case: the imports are paid once, so a few dozen hostile inputs
cost seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import sys
import time


def peak_mb() -> float:
    """This process's peak resident memory (MB) since it started this program: VmHWM, which
    exec resets (``ru_maxrss`` would include the forked parent's pages before the exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CaseTimeout(BaseException):
    """Raised by SIGALRM: a BaseException, so that main's error boundary lets it through."""


def _alarm(signum: int, frame: object) -> None:
    raise CaseTimeout


def run(cases_path: str, results_path: str) -> None:
    with open(cases_path, encoding="utf-8") as f:
        spec = json.load(f)
    limit = int(spec["memory_limit"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    from backprop.cli import main

    signal.signal(signal.SIGALRM, _alarm)
    results: dict = {"": {"peak_mb": peak_mb()}}  # after the imports, before any case
    for case in spec["cases"]:
        saved_env = {k: os.environ.get(k) for k in case["env"]}
        os.environ.update(case["env"])
        out, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        signal.alarm(int(spec["time_limit"]))
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status: int | str = main(case["argv"])
        except CaseTimeout:
            status = "timeout"
        except BaseException as e:  # noqa: BLE001 - recorded: the test fails on it
            status = f"escaped: {type(e).__name__}: {e}"
        finally:
            signal.alarm(0)
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        results[case["id"]] = {
            "status": status,
            "stdout": out.getvalue(),
            "stderr": err.getvalue(),
            "seconds": time.perf_counter() - start,
            "peak_mb": peak_mb(),
        }
    with open(results_path, "w", encoding="utf-8") as f:
        json.dump(results, f)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
