"""The ``backprop`` command line: a thin layer over the library's public API.

=====================  ==================================================================
module                 holds
=====================  ==================================================================
``app``                the command group, :func:`main` (the entry point), exit statuses,
                       one-line errors
``options``            the options several commands share, each group declared once
``config``             config files (TOML) read and written; every default resolved from
                       the data; the model, optimizer and data set built from the options
``run_folder``         what ``train`` writes: model, history, summary, config, plots
``handles``            a run folder as a handle: its model and the data it was trained on
                       (what ``evaluate``, ``predict`` and ``export`` accept)
``render``             what the commands print, within 80 columns: the run's header and
                       summary, the evaluation report
``plots``              the run folder's PNG plots (old path ``backprop.plots``)
``commands/``          one module per command: ``train``, ``evaluate``, ``predict``,
                       ``explain`` (old path ``backprop.explain``), ``gradcheck``, ``export``
=====================  ==================================================================

:func:`main` runs the command line in-process and returns the exit status: 0 success;
1 the command ran but failed (``gradcheck`` over tolerance, training diverged); 2 a user
error, reported as ONE line on stderr; 130 interrupted with Ctrl-C.
"""

from ..playground import playground
from .app import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, UserError, cli, main
from .commands.evaluate import evaluate
from .commands.explain import explain
from .commands.export import export
from .commands.gradcheck import gradcheck
from .commands.predict import predict
from .commands.train import train
from .config import ADAPTIVE_LR, DEFAULT_LR, config_to_toml
from .options import (
    CONFIG_KEYS,
    SizesType,
    config_option,
    data_options,
    device_options,
    model_options,
    optimizer_options,
)
from .run_folder import CONFIG_FILE, HISTORY_FILE, MODEL_FILE, SUMMARY_FILE

# the playground's command lives with its server, in backprop.playground
cli.add_command(playground)

__all__ = [
    "main",
    "cli",
    # the commands
    "evaluate",
    "explain",
    "export",
    "gradcheck",
    "predict",
    "train",
    # exit statuses, errors, shared options, run-folder names, defaults
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "UserError",
    "CONFIG_KEYS",
    "SizesType",
    "config_option",
    "data_options",
    "device_options",
    "model_options",
    "optimizer_options",
    "config_to_toml",
    "ADAPTIVE_LR",
    "DEFAULT_LR",
    "CONFIG_FILE",
    "HISTORY_FILE",
    "MODEL_FILE",
    "SUMMARY_FILE",
]
