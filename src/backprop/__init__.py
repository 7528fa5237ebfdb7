"""backprop: neural networks trained by backpropagation written directly on arrays."""

from .activations import ACTIVATIONS
from .gradcheck import GradCheckResult, gradcheck
from .initializers import INITIALIZERS
from .losses import LOSSES
from .network import MLP, MLPConfig
from .optimizers import OPTIMIZERS, SCHEDULES, get_optimizer, get_schedule
from .reference import seed_step

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "MLP",
    "MLPConfig",
    "GradCheckResult",
    "get_optimizer",
    "get_schedule",
    "gradcheck",
    "seed_step",
    "__version__",
]
