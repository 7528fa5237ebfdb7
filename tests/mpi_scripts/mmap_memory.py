"""Train one epoch on a ``.npy`` data set larger than this process may hold in memory.

Usage: python mmap_memory.py X.npy T.npy LIMIT_BYTES   (alone or under mpirun)

Before anything is read, RLIMIT_DATA (private writable memory: the heap and anonymous maps,
not read-only file maps) is set to LIMIT_BYTES, smaller than X.npy, so a copy of the data
set cannot be made. Prints one JSON line per rank: the peak resident set (VmHWM) and the
rows this rank read, and whether loading the whole file under the same limit worked.
"""

import json
import resource
import sys
from pathlib import Path

limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

import numpy as np  # noqa: E402

from backprop import MLP  # noqa: E402
from backprop.distributed import NpyArray, launched_rank  # noqa: E402
from backprop.training import fit  # noqa: E402


def peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    X = NpyArray(sys.argv[1])
    T = np.load(sys.argv[2])
    model = MLP([X.shape[1], 16, 10], "relu", "identity", "cross_entropy", dtype="float32", seed=0)
    history = fit(model, X, T, epochs=1, batch_size=1024, optimizer="sgd", lr=0.1)
    peak = peak_rss_bytes()
    try:  # the control: the limit really is too small to hold the data set
        np.load(sys.argv[1])
        whole_file_fits = True
    except MemoryError:
        whole_file_fits = False
    print(
        json.dumps(
            {
                "rank": launched_rank(),
                "peak_rss": peak,
                "whole_file_fits": whole_file_fits,
                "data_bytes": X.nbytes,
                "rows": X.shape[0],
                "rows_read": X.rows_read,
                "loss": history.epochs[-1]["loss"],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
