"""The MPI world a data-parallel run trains in: ranks, collectives with a deadline, and
who writes files.

Collectives are non-blocking and polled against a deadline (``timeout``,
``BACKPROP_MPI_TIMEOUT``, default 300 s). Under Open MPI's ``mpirun`` a dead rank makes
``mpirun`` stop the whole job at once; under launchers that keep survivors running, the
deadline turns a hang into :class:`RankFailure`. mpi4py (the ``mpi`` extra) is imported only
when a world of more than one process is made; :func:`is_main_process` reads the launcher's
environment and never initialises MPI.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._interrupts import EXIT_INTERRUPTED
from .._version import pip_extra

__all__ = [
    "DEFAULT_TIMEOUT",
    "abort_if_others_wait",
    "RankFailure",
    "RanksDisagree",
    "World",
    "get_world",
    "is_main_process",
    "launched_rank",
    "launched_world_size",
    "split_batch",
]

# What MPI launchers put in each process's environment: Open MPI, then MPICH / Intel MPI
# (Hydra's PMI), then PMIx launchers.
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE")
_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")
DEFAULT_TIMEOUT = 300.0


class RanksDisagree(ValueError):
    """The ranks were given different arguments (raised on every rank at once)."""


class RankFailure(RuntimeError):
    """A collective operation did not complete in time: another rank died or hung."""


def _env_int(names: Sequence[str], default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return default


def launched_world_size() -> int:
    """The number of processes the MPI launcher started (1 when not under ``mpirun``).

    Read from the launcher's environment variables; does not import mpi4py.
    """
    return _env_int(_SIZE_VARS, 1)


def launched_rank() -> int:
    """This process's rank as set by the MPI launcher (0 when not under ``mpirun``).

    A rank not below the launched world size is no rank of this world: a variable left in
    the environment (``PMI_RANK=1`` with no ``PMI_SIZE`` beside it) made ``backprop train``
    a silent no-op, every file and line left to a rank 0 that did not exist.
    """
    rank = _env_int(_RANK_VARS, 0)
    return rank if rank < launched_world_size() else 0


def is_main_process() -> bool:
    """Whether this process should write files (run folder, checkpoints) and print.

    True for rank 0 under ``mpirun`` and for every ordinary single process. Cheap: it reads
    the launcher's environment and never initialises MPI.
    """
    return launched_rank() == 0


class World:
    """The ranks training together: an mpi4py communicator with a deadline on collectives.

    Parameters
    ----------
    comm : mpi4py communicator or None
        None is a world of one process, where every collective is a no-op.
    timeout : float, optional
        Seconds a collective may wait for the other ranks before :class:`RankFailure`;
        default ``BACKPROP_MPI_TIMEOUT`` or 300.
    """

    def __init__(self, comm: Any = None, timeout: float | None = None) -> None:
        self.comm = comm
        self.rank = 0 if comm is None else int(comm.Get_rank())
        self.size = 1 if comm is None else int(comm.Get_size())
        if timeout is None:
            text = os.environ.get("BACKPROP_MPI_TIMEOUT", str(DEFAULT_TIMEOUT))
            try:
                timeout = float(text)
            except ValueError:
                timeout = None
            if not (timeout is not None and 0 < timeout < math.inf):
                raise ValueError(
                    f"BACKPROP_MPI_TIMEOUT={text!r}; expected a positive number of seconds"
                )
        if not (isinstance(timeout, float | int) and 0 < timeout < math.inf):
            raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}")
        self.timeout = float(timeout)
        self._exit_comm: Any = None  # see stop_all_on_error

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def allreduce_sum(self, buf: np.ndarray, what: str = "gradient all-reduce") -> np.ndarray:
        """Replace the contiguous array ``buf`` by its element-wise sum over all ranks."""
        if self.size > 1:
            from mpi4py import MPI

            self._wait(self.comm.Iallreduce(MPI.IN_PLACE, buf, op=MPI.SUM), what)
        return buf

    def broadcast(self, buf: np.ndarray, what: str = "broadcast", root: int = 0) -> np.ndarray:
        """Overwrite the contiguous array ``buf`` on every rank with rank ``root``'s values."""
        if self.size > 1:
            self._wait(self.comm.Ibcast(buf, root=root), what)
        return buf

    def check_same(self, fields: dict[str, float]) -> None:
        """Raise :class:`RanksDisagree` on every rank unless each of ``fields`` (numbers,
        exact in float64: counts, CRC-32s) is the same on every rank as on rank 0.

        Ranks given different batch sizes, networks, optimizers, seeds or data otherwise
        trained apart without a word (another optimizer: other weights per rank), failed
        in MPI itself (``MPI_ERR_TRUNCATE``), or waited out the deadline."""
        if self.size == 1:
            return
        mine = np.array(list(fields.values()), dtype=np.float64)
        first = self.broadcast(mine.copy(), "comparison of the ranks' arguments")
        differ = [name for name, a, b in zip(fields, mine, first, strict=True) if a != b]
        votes = self.allreduce_sum(np.array([1.0 if differ else 0.0]), "comparison of votes")
        if votes[0] > 0:
            verb = "differs" if len(differ) == 1 else "differ"
            here = (
                f"rank {self.rank}'s {', '.join(differ)} {verb} from rank 0's"
                if differ
                else f"{int(votes[0])} other rank(s) differ from rank 0"
            )
            raise RanksDisagree(
                f"the ranks were given different arguments ({here}); every rank must train "
                "with the same data, network, optimizer, batch size, epochs and seed"
            )

    @contextlib.contextmanager
    def stop_all_on_error(self, agreed: tuple[type[BaseException], ...] = ()) -> Any:
        """Mark an exception that may have been raised on some ranks only (a callback's on
        rank 1), so that when this process ends with it (uncaught, reported by the CLI, or
        exiting while no data-parallel fit has ended well since) and the other ranks are
        not ending too, the whole job is aborted (:func:`abort_if_others_wait`) rather than
        left waiting in a collective until the deadline (300 s). ``agreed`` exceptions (and
        :class:`RankFailure`, :class:`RanksDisagree`) happen on every rank together. A
        Ctrl-C is marked too: ``mpirun`` passes it to every rank, which then meet at the
        exit, but a SIGINT or SIGTERM sent to one rank's process (``kill``, a scheduler)
        left the others waiting out the deadline, and the job ended 'internal error'
        without its model."""
        global _pending_abort, _pending_status
        if self.size > 1 and self._exit_comm is None and hasattr(self.comm, "Dup"):
            self._exit_comm = _exit_comm_of(self.comm)
        try:
            yield
        except (RankFailure, RanksDisagree, *agreed):
            raise
        except BaseException as e:
            if self._exit_comm is not None and hasattr(self.comm, "Abort"):
                with contextlib.suppress(AttributeError):  # (an exception without __dict__)
                    setattr(e, _OTHERS_WAIT, (self.comm, self._exit_comm))
                _abort_uncaught()
                _pending_abort = (self.comm, self._exit_comm)  # for any other way out
                _pending_status = EXIT_INTERRUPTED if isinstance(e, KeyboardInterrupt) else 1
            raise
        _pending_abort = None  # the ranks trained together since: it was dealt with

    def _wait(self, request: Any, what: str) -> None:
        # Polling Test() is what a blocking MPI wait does inside Open MPI anyway; the clock
        # is read every 256 polls so the deadline costs nothing measurable.
        deadline = time.monotonic() + self.timeout
        polls = 0
        while not request.Test():
            polls += 1
            if polls % 256 == 0 and time.monotonic() > deadline:
                mpi = sys.modules.get("mpi4py.MPI")
                if mpi is not None and isinstance(self.comm, mpi.Comm):
                    _exit_without_finalize()  # a real MPI job: MPI_Finalize could hang
                raise RankFailure(
                    f"rank {self.rank} of {self.size}: the {what} did not complete within "
                    f"{self.timeout:g} s; another rank has probably died or hung "
                    "(set BACKPROP_MPI_TIMEOUT to wait longer)"
                )


_exit_hook_registered = False


def _flush_std_streams() -> None:
    """Flush stdout and stderr before a process ends without Python's own exit (``os._exit``,
    ``MPI_Abort``): what it printed last is not lost."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _exit_without_finalize() -> None:
    """After a collective timed out, end this process at exit without ``MPI_Finalize``.

    mpi4py finalizes MPI when Python exits, and with a rank dead and a collective still
    pending, ``MPI_Finalize`` can wait forever (``tests/mpi_scripts/kill_rank.py`` under
    ``mpirun --enable-recovery``: 2 of 15 runs still running at 60 s, after printing their
    RankFailure). So the first exit hook to run (registered last) flushes the standard
    streams and ends the process with status 1; the RankFailure itself is raised as usual,
    for the caller to report or handle first.
    """
    global _exit_hook_registered
    if _exit_hook_registered:
        return
    _exit_hook_registered = True

    def leave() -> None:
        _flush_std_streams()
        os._exit(1)

    atexit.register(leave)


#: The attribute that marks an exception raised in data-parallel training on some ranks
#: perhaps only: its value is the communicator whose other ranks may be left waiting.
_OTHERS_WAIT = "_backprop_others_wait"
_excepthook_installed = False
#: The communicators of a data-parallel fit that raised on this rank, until one ends well.
_pending_abort: tuple[Any, Any] | None = None
#: The exit status of that abort: 130 after a Ctrl-C (as the CLI's), else 1.
_pending_status = 1


#: (communicator, its duplicate for the exit barrier): one duplicate per communicator,
#: made once, however many fits use it (each Dup takes one of MPI's limited contexts).
_EXIT_COMMS: list[tuple[Any, Any]] = []


def _exit_comm_of(comm: Any) -> Any:
    """The duplicate of ``comm`` the exit barrier runs on (made on first use, on every rank
    at the same point of the same fit: ``Dup`` is a collective)."""
    for known, dup in _EXIT_COMMS:
        if known == comm:
            return dup
    dup = comm.Dup()
    _EXIT_COMMS.append((comm, dup))
    return dup


#: How long a rank that ends with an error waits for the others to end too before it
#: aborts the job (they all caught the same error: no abort; one is waiting in training:
#: abort).
EXIT_AGREEMENT_SECONDS = 5.0


def abort_if_others_wait(error: BaseException, status: int = 1) -> None:
    """After ``error`` has been reported: when it came out of data-parallel training
    (:meth:`World.stop_all_on_error`) and the other ranks do not end too within
    :data:`EXIT_AGREEMENT_SECONDS` (they wait in a collective for this one), end the whole
    MPI job now with ``status`` (``MPI_Abort``: the launcher stops every rank). When every
    rank ends with it (the same bad data everywhere), each exits as it would have."""
    if isinstance(error, KeyboardInterrupt):
        status = EXIT_INTERRUPTED
    _end(getattr(error, _OTHERS_WAIT, None), status)


def _end(pair: tuple[Any, Any] | None, status: int) -> None:
    """Meet the other ranks at the exit (a barrier on a communicator of its own, so that
    ranks elsewhere in training never match it), or abort the job when they do not come."""
    global _pending_abort
    _pending_abort = None  # once: a second barrier would wait for a partner that never comes
    if pair is None:
        return
    comm, exit_comm = pair
    request = exit_comm.Ibarrier()
    deadline = time.monotonic() + EXIT_AGREEMENT_SECONDS
    while not request.Test():
        if time.monotonic() > deadline:
            _flush_std_streams()
            comm.Abort(status)
        time.sleep(0.01)


def _abort_uncaught() -> None:
    """Have Python's report of an uncaught exception end with :func:`abort_if_others_wait`
    (the exception, or one it was raised from or during), and a process that exits any
    other way (``sys.exit`` in a callback, or after catching the exception) do the same at
    exit while no data-parallel fit has ended since."""
    global _excepthook_installed
    if _excepthook_installed:
        return
    _excepthook_installed = True
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        previous(kind, error, tb)
        seen: BaseException | None = error
        while seen is not None and getattr(seen, _OTHERS_WAIT, None) is None:
            seen = seen.__cause__ or seen.__context__
        abort_if_others_wait(seen or error)

    sys.excepthook = hook
    atexit.register(lambda: _end(_pending_abort, _pending_status))


def get_world(distributed: Any = None) -> World | None:
    """The :class:`World` to train in, or None for the ordinary single-process loop.

    ``distributed`` may be a :class:`World`, an mpi4py communicator, ``False`` (never
    distributed) or None: then MPI is used when the launcher started more than one process
    and mpi4py is installed.
    """
    if distributed is False:
        return None
    if isinstance(distributed, World):
        return distributed
    if distributed is not None and distributed is not True:
        if not callable(getattr(distributed, "Get_rank", None)):
            raise TypeError(
                "distributed must be True, False, None, a backprop World or an mpi4py "
                f"communicator; got {distributed!r}"
            )
        return World(distributed)
    if launched_world_size() <= 1:
        if distributed is True:
            return World(None)
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError(
            f"this process was started by an MPI launcher with {launched_world_size()} ranks, "
            f"but mpi4py is not installed; install the extra: {pip_extra('mpi')} "
            "(or, from Python, pass distributed=False to train each rank on its own)"
        ) from None
    world = World(MPI.COMM_WORLD)
    if world.size != launched_world_size():
        # a launcher's variables left in the environment of a process started alone (by a
        # rank of another job): MPI made it a world of one, and is_main_process, which reads
        # them, had every file and line left to a rank 0 that did not exist
        said = ", ".join(
            f"{name}={os.environ[name]}"
            for name in (*_RANK_VARS, *_SIZE_VARS)
            if name in os.environ
        )
        raise ValueError(
            f"the environment says this process is one of {launched_world_size()} MPI ranks "
            f"({said}) but MPI started it as a world of {world.size}: variables left from "
            "another job; unset them, or start the run with mpirun"
        )
    return world


def split_batch(n_rows: int, size: int, rank: int) -> tuple[int, int]:
    """Rank ``rank``'s slice ``[lo, hi)`` of a batch of ``n_rows`` split over ``size`` ranks.

    The slices are contiguous and their sizes differ by at most one (the first
    ``n_rows % size`` ranks take one row more); a rank may get none of a tiny batch.
    """
    base, extra = divmod(n_rows, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)
