"""backprop: neural networks trained by backpropagation written directly on arrays.

The public API, re-exported here:

- the engine: :class:`MLP` (and its :class:`MLPConfig`), :func:`gradcheck`,
  :func:`get_optimizer`, :func:`get_schedule`, the name tables :data:`ACTIVATIONS`,
  :data:`LOSSES`, :data:`OPTIMIZERS`, :data:`SCHEDULES`, :data:`INITIALIZERS`;
- the seed's network written as loops over units: :func:`seed_step`;
- training: :func:`fit`, :class:`History`, :class:`TrainState`, :class:`Callback`,
  :class:`EarlyStopping`, :class:`TrainingDiverged`;
- data: :func:`load_dataset`;
- files: :func:`save_model`, :func:`load_model`, :class:`ModelFileError`,
  :class:`Checkpoint`, :func:`resume`, :func:`export_onnx`.

scikit-learn estimators live in :mod:`backprop.sklearn` (an optional extra, never imported
here); array backends in :mod:`backprop.backend`; MPI in :mod:`backprop.training.distributed`.
"""

# _interrupts first: a Ctrl-C during the imports below is one line, not a traceback
from . import _interrupts, _moved  # noqa: F401
from ._version import __version__
from .activations import ACTIVATIONS
from .datasets import load_dataset
from .gradcheck import GradCheckResult, gradcheck
from .initializers import INITIALIZERS
from .io import ModelFileError, load_model, save_model
from .io.checkpoint import Checkpoint, resume
from .io.onnx_export import export_onnx
from .losses import LOSSES
from .network import MLP, MLPConfig
from .optimizers import OPTIMIZERS, SCHEDULES, get_optimizer, get_schedule
from .reference import seed_step
from .training import Callback, EarlyStopping, History, TrainingDiverged, TrainState, fit

_moved.install()  # the old paths of moved modules (backprop.checkpoint, ...) keep working

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "MLP",
    "MLPConfig",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "GradCheckResult",
    "History",
    "ModelFileError",
    "TrainState",
    "TrainingDiverged",
    "export_onnx",
    "fit",
    "get_optimizer",
    "get_schedule",
    "gradcheck",
    "load_dataset",
    "load_model",
    "resume",
    "save_model",
    "seed_step",
    "__version__",
]
