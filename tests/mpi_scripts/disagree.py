"""Run under ``mpirun -n 2``: ranks that disagree, or fail alone.

Usage: python disagree.py MODE OUT_DIR

- ``unseeded``: ``seed=None``; each rank writes OUT_DIR/rank<r>.json, its shuffle
  generator's state after training (the ranks must have drawn one order).
- ``batch_size``: rank 1 is given another batch size (every rank must refuse, at once);
  ``inputs``: rank 1 is given other inputs (two columns swapped), the same targets.
- ``callback``: a callback raises on rank 1 only (the job must end at once, not after the
  300 s deadline of the collective rank 0 waits in); ``exit``: it calls ``sys.exit``;
  ``wrapped``: the script catches the error and raises another from it; ``interrupt``:
  rank 1 alone is interrupted (a SIGINT sent to its process, not to mpirun).
- ``caught``: every rank catches a fit's error and trains again (the job must go on);
  ``caught_only``: every rank catches it and ends (the job must end well).
- ``estimator``: an unseeded BackpropClassifier with early stopping; each rank writes
  OUT_DIR/rank<r>.json, its first weight matrix (one model: the same on every rank).
"""

import json
import sys
from pathlib import Path

import numpy as np

from backprop import MLP
from backprop.distributed import launched_rank
from backprop.training import fit


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    rank = launched_rank()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    T = (X[:, 0] > 0).astype(int)
    settings = dict(optimizer="sgd", lr=0.1, epochs=3, batch_size=8, seed=1)
    model = MLP([3, 4, 2], seed=0)
    if mode == "unseeded":
        seen = {}
        fit(model, X, T, **{**settings, "seed": None},
            callbacks=[lambda s: seen.setdefault("rng", s.rng.bit_generator.state)])  # fmt: skip
        (out / f"rank{rank}.json").write_text(json.dumps(seen["rng"]))
    elif mode == "batch_size":
        fit(model, X, T, **{**settings, "batch_size": 8 if rank == 0 else 16})
    elif mode == "inputs":
        fit(model, X if rank == 0 else X[:, [1, 0, 2]], T, **settings, validation_fraction=0.2)
    elif mode in ("callback", "exit", "wrapped", "interrupt"):

        def fail_on_rank_1(state):
            if rank == 1 and state.epoch == 1:
                if mode == "exit":
                    sys.exit(3)
                if mode == "interrupt":
                    raise KeyboardInterrupt
                raise RuntimeError("a callback failed on rank 1 only")

        try:
            fit(model, X, T, **{**settings, "epochs": 100}, callbacks=[fail_on_rank_1])
        except RuntimeError as e:
            if mode == "wrapped":
                raise ValueError("the script's own error") from e
            raise
    elif mode == "estimator":
        from backprop.sklearn import BackpropClassifier

        clf = BackpropClassifier(hidden_layer_sizes=(4,), max_iter=5, early_stopping=True)
        clf.fit(X, T)
        (out / f"rank{rank}.json").write_text(json.dumps(clf.coefs_[0].tolist()))
    elif mode in ("caught", "caught_only"):
        try:
            fit(model, X, T + 5, **settings)  # labels beyond the 2 outputs
        except ValueError:
            pass
        if mode == "caught":
            fit(model, X, T, **settings)
        print(f"rank {rank} went on")


if __name__ == "__main__":
    main()
