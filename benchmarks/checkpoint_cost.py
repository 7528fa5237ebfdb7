"""What checkpointing costs a long run of a small network.

A run folder's checkpoint holds the whole training history (for an exact resume), and
``backprop train`` checkpoints every ``epochs // 30`` epochs, at most every 10. Each save
re-encoded every epoch's row as JSON, so a run's checkpoint time grew with the square of its
epochs; ``Checkpoint`` now encodes each row once (``backprop.io.checkpoint._RowsText``).

Three fits of the same network, taking turns within each repeat (outside load falls on all
alike), medians reported:

- ``none``: no checkpoint;
- ``rows once``: ``Checkpoint(every=10)``, as ``backprop train`` runs it;
- ``every save``: the same, each save encoding the whole history again (the code before).

Run ``python benchmarks/checkpoint_cost.py [--epochs N] [--repeats R] [--json OUT]
[--smoke]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import blas_env  # noqa: E402


def _fits(epochs: int, every: int) -> dict[str, Any]:
    """One fit per variant: name -> callable timing it."""
    import numpy as np

    from backprop import MLP
    from backprop.io.checkpoint import Checkpoint, save_checkpoint
    from backprop.training import fit

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    T = np.eye(2)[(X[:, 0] * X[:, 1] > 0).astype(int)]

    class EverySave(Checkpoint):
        """Each save encodes the whole history (a new encoder each time), as before."""

        def save(self, state=None):  # type: ignore[no-untyped-def]
            save_checkpoint(self.path, state if state is not None else self.last_state,
                            self.fit_config)  # fmt: skip

    def timed(kind: type[Checkpoint] | None, folder: Path) -> float:
        model = MLP([2, 16, 2], "tanh", "identity", "cross_entropy", seed=0)
        callbacks = [] if kind is None else [kind(folder, every=every)]
        start = time.perf_counter()
        fit(model, X, T, epochs=epochs, batch_size=16, seed=0, callbacks=callbacks)
        return time.perf_counter() - start

    return {
        "none": lambda d: timed(None, d / "none"),
        "rows once": lambda d: timed(Checkpoint, d / "once"),
        "every save": lambda d: timed(EverySave, d / "every"),
    }


def run(epochs: int, every: int, repeats: int) -> dict[str, Any]:
    fits = _fits(epochs, every)
    seconds: dict[str, list[float]] = {name: [] for name in fits}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for name, one in fits.items():
                seconds[name].append(one(Path(tmp) / str(r)))
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    return {
        "epochs": epochs,
        "every": every,
        "repeats": repeats,
        "seconds": seconds,
        "median_s": medians,
        "over_none": {name: medians[name] / medians["none"] for name in fits},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5_000)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="300 epochs, 1 repeat")
    p.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = p.parse_args(argv)
    epochs, repeats = (300, 1) if args.smoke else (args.epochs, args.repeats)
    result = run(epochs, args.every, repeats)
    result["openblas_kernels"] = blas_env.openblas_kernels()
    print(f"{epochs} epochs of a 2-16-2 network, a checkpoint every {args.every} epochs "
          f"(medians of {repeats}):")  # fmt: skip
    for name, s in result["median_s"].items():
        print(f"  {name:<11} {s:8.2f} s  {result['over_none'][name]:5.2f}x no checkpoint")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    blas_env.run_main(main)
