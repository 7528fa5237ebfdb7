"""Training: :func:`fit` and everything a run is made of.

=====================  ==================================================================
module                 holds
=====================  ==================================================================
``fitting``            :func:`fit`: checks the arguments, hands the run to its runner
``single_process``     the single-process runner (the data uploaded once; each epoch)
``cuda_graph``         one training step captured in a CUDA graph and replayed (old path
                       ``backprop.cuda_graph``)
``distributed``        the data-parallel runner over MPI (old path ``backprop.distributed``)
``mpi``                the MPI world: ranks, collectives with a deadline, who writes files
``epochs``             the epoch loop and what every runner shares
``state``              :class:`TrainState`, :class:`History`, callbacks, early stopping
``progress``           the progress bar
=====================  ==================================================================

Everything that training needs to continue exactly where it stopped lives in one
:class:`TrainState` (model, optimizer, shuffle generator, epoch count, history,
early-stopping record), which is what a callback receives at each epoch's end and what a
checkpoint saves.
"""

from .epochs import (
    EpochOrders,
    check_fit_arguments,
    class_sample_weights,
    combined_sample_weights,
    epoch_callbacks,
    epoch_order,
    is_classification,
    new_state,
    train_epochs,
)
from .fitting import fit
from .state import (
    Callback,
    CallbackLike,
    EarlyStopping,
    History,
    TrainingDiverged,
    TrainState,
)

__all__ = [
    "History",
    "TrainState",
    "Callback",
    "EarlyStopping",
    "TrainingDiverged",
    "fit",
    "class_sample_weights",
    "is_classification",
    # the epoch logic the runners share
    "CallbackLike",
    "check_fit_arguments",
    "combined_sample_weights",
    "epoch_callbacks",
    "epoch_order",
    "EpochOrders",
    "new_state",
    "train_epochs",
]
