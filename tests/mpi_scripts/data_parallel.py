"""Run under ``mpirun -n K``: data-parallel training, then a checkpointed and resumed run.

Usage: python data_parallel.py DATA_DIR OUT_DIR

DATA_DIR holds X.npy, T.npy, W.npy (inputs, integer labels, sample weights); X is read
through a memory map. Rank 0 writes OUT_DIR/full.npz (parameters after an uninterrupted
run) and OUT_DIR/resumed.npz (the same run stopped after 2 epochs, checkpointed, reloaded
on every rank and continued); every rank writes OUT_DIR/rank<r>.json (the rows it read in
the first run, its history).
"""

import json
import sys
from pathlib import Path

import numpy as np

from backprop import MLP
from backprop.checkpoint import Checkpoint, load_checkpoint
from backprop.distributed import NpyArray, is_main_process, launched_rank
from backprop.training import fit

# the configuration test_distributed.py reproduces in one process
SIZES = [6, 9, 3]
FIT = dict(optimizer="adam", lr=0.01, batch_size=32, seed=5, validation_fraction=0.2)
EPOCHS = 4


def new_model() -> MLP:
    return MLP(SIZES, activation="tanh", output_activation="identity", loss="cross_entropy", seed=3)


def main() -> None:
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    X = NpyArray(data / "X.npy")
    T = np.load(data / "T.npy")
    W = np.load(data / "W.npy")
    rank = launched_rank()

    # ranks != 0 start from other weights: the broadcast must replace them
    model = new_model() if rank == 0 else MLP(SIZES, "tanh", "identity", "cross_entropy", seed=99)
    history = fit(model, X, T, epochs=EPOCHS, sample_weight=W, **FIT)
    rows_read = X.rows_read
    if is_main_process():
        np.savez(out / "full.npz", **model.state_dict())

    run_dir = out / "run"
    ckpt = [Checkpoint(run_dir)] if is_main_process() else []
    fit(new_model(), X, T, epochs=2, sample_weight=W, callbacks=ckpt, **FIT)
    # rank 0 wrote epoch 2's checkpoint before the end-of-epoch agreement every rank passed
    state, _ = load_checkpoint(run_dir)
    fit(state.model, X, T, epochs=EPOCHS, sample_weight=W, state=state, **FIT)
    if is_main_process():
        np.savez(out / "resumed.npz", **state.model.state_dict())

    report = {"rows_read": rows_read, "history": history.epochs}
    (out / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
