"""The public :func:`fit`: it checks the arguments and hands the run to its runner, the
single-process loop (:mod:`.single_process`, with CUDA-graph replay where that is exact) or
data-parallel training over MPI (:mod:`.distributed`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._limits import check_memory
from .._validation import require_model
from ..network import MLP, host_itemsize
from ..optimizers import OPTIMIZERS, Optimizer, Schedule
from .distributed import fit_data_parallel, wants_data_parallel
from .epochs import check_fit_arguments
from .single_process import fit_single_process
from .state import CallbackLike, EarlyStopping, History, TrainState

__all__ = ["fit"]


def fit(
    model: MLP,
    X: Any,
    T: Any,
    *,
    optimizer: str | Optimizer = "sgd",
    lr: float | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    seed: int | np.random.Generator | None = 0,
    shuffle: bool = True,
    validation_data: tuple[Any, Any] | None = None,
    validation_fraction: float = 0.0,
    early_stopping: int | EarlyStopping | None = None,
    callbacks: Sequence[CallbackLike] = (),
    sample_weight: Any = None,
    class_weight: dict[int, float] | str | None = None,
    progress: bool = False,
    state: TrainState | None = None,
    distributed: Any = None,
    cuda_graph: bool | None = None,
    tf32: bool | None = None,
) -> History:
    """Train ``model`` on ``(X, T)`` by mini-batch gradient descent.

    Parameters
    ----------
    model : MLP
        The network to train, in place: its weights are updated and it is not copied.
        With ``state``, it must be ``state.model`` (another model is a ValueError).
    X : array (n_samples, n_inputs)
    T : array (n_samples, n_outputs), or 1-D integer labels (one-hot encoded)
    optimizer : name or Optimizer
        A name (``"sgd"``, ``"adam"``...) is built with ``lr`` if given.
    lr : float or None
        The learning rate of an optimizer given by name; None keeps that optimizer's own
        default (0.1 for SGD, momentum and Nesterov, 0.001 for Adam, AdamW and RMSprop).
        Refused (``ValueError``) beside an :class:`Optimizer` object, which has its own;
        unused with ``state``.
    epochs : int
        Total epochs; a resumed ``state`` continues up to this number.
    batch_size : int
        Rows per step; the last batch of an epoch may be smaller.
    seed : int, Generator or None
        Drives the per-epoch shuffles and the validation split. The split comes from the
        integer alone (a Generator counts as the integer it was seeded with, a spawned one
        as its parent; None as 0), so that a resumed run, whose shuffles have moved on,
        holds out the same rows; None's shuffles are fresh.
    shuffle : bool
        Visit the training rows in a fresh random order each epoch (drawn from ``seed``);
        False: in their given order every epoch.
    validation_data : (X_val, T_val), optional
    validation_fraction : float
        Hold out this fraction of (X, T), chosen by the seeded shuffle; not with
        ``validation_data`` (the two together are refused: the fraction was ignored).
    early_stopping : int (patience) or EarlyStopping, optional
        A patience monitors ``val_loss`` (``loss`` without validation) and restores the
        best weights; an :class:`EarlyStopping` says what to monitor (``mode`` "auto"
        maximises accuracy and R^2, minimises losses) and whether to restore. Given here,
        it runs before every callback; to monitor a column a callback adds to the epoch's
        row, put the EarlyStopping among ``callbacks``, after that callback.
    callbacks : sequence of Callback or callables ``f(state)``
        Called at each epoch's end; returning True stops training.
    sample_weight : array (n_samples,), optional;  class_weight : dict or "balanced"
        Multiply each row's loss (and so its gradient) by ``s_i``; see :mod:`backprop.losses`.
    progress : bool
        Show a progress bar (rich) with epoch, loss, accuracy and time left.
    state : TrainState, optional
        Continue a run (from a checkpoint); ``model``/``optimizer`` are taken from it.
    distributed : mpi4py communicator, backprop.training.distributed.World, False or None
        Data-parallel training over MPI (:mod:`backprop.training.distributed`). None: automatic,
        under ``mpirun`` with more than one rank, and for inputs memory-mapped from a
        ``.npy`` file. False: always this single-process loop.
    cuda_graph : bool or None
        Capture one whole full-batch step in a CUDA graph and replay it
        (:mod:`backprop.training.cuda_graph`; torch backend on CUDA). None: wherever that is exact
        (the built-in optimizers, not a subclass; no dropout). True: required (a
        ``ValueError`` says why not; a capture that fails later is a ``RuntimeError``).
    tf32 : bool or None
        TF32 matrix products on CUDA (torch backend); None leaves PyTorch's setting.

    Returns
    -------
    History
        Per epoch ``loss`` (and ``val_loss``), and for class targets with one class a row
        ``accuracy`` (and ``val_accuracy``): the outputs' argmax against the target's, or
        for one output ``p > 0.5`` as :meth:`MLP.predict_classes`. Multi-label rows (several
        1s under binary cross-entropy) get no accuracy.

    Raises
    ------
    TrainingDiverged
        When an epoch's loss, the weights after it or the optimizer's moments (Adam's ``v``
        past the dtype's range) are NaN or inf; the model is left with the weights it had
        at the start of that epoch (the last good ones), and the optimizer with its state
        from then.
    ValueError
        For an argument out of range, among them: ``validation_data`` together with a
        non-zero ``validation_fraction``; ``cuda_graph=True`` that cannot be honoured (not
        the torch backend on CUDA, an optimizer that is not a built-in one, or dropout; the
        message names the obstacle); ``tf32`` set off the torch backend on CUDA;
        ``cuda_graph`` or ``tf32`` set for a data-parallel run; weights that are already NaN
        or inf before training.
    TypeError
        When ``model`` is not an :class:`MLP`.
    MemoryError
        Before the first step, when the parameters, their gradients and the optimizer's
        state cannot fit in this machine's memory (:func:`backprop._limits.check_memory`).
    """
    check_fit_arguments(
        epochs, batch_size, validation_fraction,
        validation_data=validation_data, shuffle=shuffle, state=state,
    )  # fmt: skip
    if state is None:
        require_model(model, "fit's model")
        _check_training_memory(model, optimizer)
    else:
        if model is not state.model:  # (it trained state.model, leaving model as it was)
            raise ValueError(
                "fit was given a state whose model is another one: with state, fit trains "
                "state.model; pass it as the model (fit(state.model, ...)), or leave state out"
            )
        _check_training_memory(state.model, state.optimizer)
    schedule = getattr(state.optimizer if state is not None else optimizer, "schedule", None)
    if isinstance(schedule, Schedule):  # (cosine without t_max decays over these epochs)
        schedule.start_run(epochs)
    if distributed is not False:
        if wants_data_parallel(distributed, X, T, sample_weight, *(validation_data or ())):
            if cuda_graph or tf32 is not None:  # they were ignored there without a word
                raise ValueError(
                    "cuda_graph and tf32 apply to the single-process loop; this run is "
                    "data-parallel (under mpirun, with distributed=..., or for .npy inputs): "
                    "leave them unset"
                )
            return fit_data_parallel(
                model, X, T, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size,
                seed=seed, shuffle=shuffle, validation_data=validation_data,
                validation_fraction=validation_fraction, early_stopping=early_stopping,
                callbacks=callbacks, sample_weight=sample_weight, class_weight=class_weight,
                progress=progress, state=state, distributed=distributed,
            )  # fmt: skip

    return fit_single_process(
        model, X, T, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed,
        shuffle=shuffle, validation_data=validation_data, validation_fraction=validation_fraction,
        early_stopping=early_stopping, callbacks=callbacks, sample_weight=sample_weight,
        class_weight=class_weight, progress=progress, state=state, cuda_graph=cuda_graph,
        tf32=tf32,
    )  # fmt: skip


def _check_training_memory(model: MLP, optimizer: str | Optimizer) -> None:
    """Refuse a run whose optimizer's state would not fit in memory beside the model, before
    the first step. Training holds ``2 + 2 k`` parameter-sized vectors, ``k`` the optimizer's
    state vectors (slots): the parameters and their gradients, and each slot with a scratch
    vector of its update (SGD 2, momentum 4, Adam 6); weight decay adds more. A lower bound,
    so that no run that fits is refused. (The model's building was checked when it was
    made; an optimizer name this does not know is refused by name later.)"""
    cls = OPTIMIZERS.get(optimizer) if isinstance(optimizer, str) else type(optimizer)
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        return
    copies = 2 + 2 * len(cls.slots)
    n = model.n_parameters
    held = "the parameters, their gradients"
    if cls.slots:
        held += f", and each optimizer state vector ({', '.join(cls.slots)}) with a scratch one"
    check_memory(
        copies * n * host_itemsize(model.config, model.backend),
        f"training {n:,} parameters ({model.dtype}) with optimizer {cls.name!r} holds {copies} "
        f"copies of them ({held}), at the least",
    )
