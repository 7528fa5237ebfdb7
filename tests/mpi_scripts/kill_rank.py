"""Run under ``mpirun -n 2``: rank 1 kills itself (SIGKILL) at the end of epoch 2.

Usage: python kill_rank.py RUN_DIR

Rank 0 checkpoints into RUN_DIR after every epoch. The survivors must stop with an error
instead of waiting for rank 1 forever.
"""

import os
import signal
import sys

import numpy as np

from backprop import MLP
from backprop.checkpoint import Checkpoint
from backprop.distributed import is_main_process, launched_rank
from backprop.training import fit


def die_at_epoch_2(state) -> None:
    if launched_rank() == 1 and state.epoch == 2:
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(512, 8))
    y = (X[:, 0] > 0).astype(np.int64)
    model = MLP([8, 16, 2], "tanh", "identity", "cross_entropy", seed=0)
    callbacks = [die_at_epoch_2]
    if is_main_process():
        callbacks.insert(0, Checkpoint(sys.argv[1]))
    fit(model, X, y, epochs=1000, batch_size=16, optimizer="adam", lr=0.01, callbacks=callbacks)


if __name__ == "__main__":
    main()
