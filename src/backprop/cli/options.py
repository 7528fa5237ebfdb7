"""The options several commands share, each group declared once, and the option types."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from .._limits import check_limit
from .._validation import is_count
from .._validation import short_repr as _short
from ..activations import ACTIVATIONS
from ..backend import BACKENDS
from ..datasets import DATASETS
from ..initializers import BIAS_INITIALIZERS, INITIALIZERS
from ..losses import LOSSES
from ..optimizers import OPTIMIZERS, SCHEDULES, optimizers_taking

__all__ = [
    "CONFIG_KEYS",
    "CONFIG_PARAMS",
    "FilePath",
    "FiniteFloat",
    "IntegerRange",
    "PathValue",
    "SizesType",
    "choice",
    "config_option",
    "data_options",
    "run_data_options",
    "device_options",
    "model_options",
    "option_group",
    "optimizer_options",
]


class FiniteFloat(click.FloatRange):
    """A float in a range, and finite: ``nan``, ``inf`` and ``-inf`` are refused (a
    ``click.FloatRange`` lets NaN through every bound, since every comparison with NaN is
    false), and so is a config file's integer too large for a float (OverflowError)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, bool):  # a TOML or JSON true/false is not a number
            self.fail(f"expected a number; got {_short(value)}", param, ctx)
        _ascii_only(self, value, param, ctx)
        try:
            rv = super().convert(value, param, ctx)
        except OverflowError:
            rv = math.inf
        if not math.isfinite(rv):
            self.fail(f"expected a finite number; got {_short(value)}", param, ctx)
        return rv


class PathValue(click.Path):
    """A path, as a :class:`~pathlib.Path`, never empty: pathlib reads ``""`` as ``.``, the
    current folder (``--out ''`` wrote the run there, ``--resume ''`` resumed it)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(path_type=Path, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value:
            self.fail("expected a path; got an empty string", param, ctx)
        if isinstance(value, str) and ctx is not None and value in _option_names(ctx):
            # ('--out --no-plots' made a folder named --no-plots, and drew the plots)
            self.fail(f"got {value!r}, an option of this command; expected a path", param, ctx)
        return super().convert(value, param, ctx)


def _option_names(ctx: click.Context) -> set[str]:
    names = {o for p in ctx.command.params for o in (*p.opts, *p.secondary_opts)}
    return names | set(ctx.help_option_names)


def _ascii_only(
    kind: click.ParamType, value: Any, param: click.Parameter | None, ctx: click.Context | None
) -> None:
    """Digits other than 0-9 refused (Python's int('１２') is 12: --epochs １２ ran 12
    epochs, where --layers refused them)."""
    if isinstance(value, str) and not value.isascii():
        kind.fail(f"expected a number written with the digits 0-9; got {_short(value)}", param, ctx)


class FilePath(PathValue):
    """A file's path. A last ``/``, ``.`` or ``..`` names a folder, and is refused as the
    shell refuses it ('Is a directory', 'Not a directory'): pathlib drops ``/`` and ``.``,
    so ``-o notes.txt/`` (or ``notes.txt/.``) overwrote the file ``notes.txt`` and ``-o
    new/`` wrote a file ``new``."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        last = "/" if isinstance(value, str) and value.endswith(("/", os.sep)) else None
        if isinstance(value, str) and os.path.basename(value) in (".", ".."):
            last = os.path.basename(value)
        if last is not None:
            message = f"{value!r} ends with '{last}', a folder's name; expected a file's path"
            self.fail(message, param, ctx)
        return super().convert(value, param, ctx)


class IntegerRange(click.IntRange):
    """A ``click.IntRange`` written with the digits 0-9 (:func:`_ascii_only`)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        _ascii_only(self, value, param, ctx)
        return super().convert(value, param, ctx)


class Count(click.IntRange):
    """An integer from ``minimum`` to ``MAX_COUNT`` (2**53): the counts and seeds a
    checkpoint holds, so that a run these options start can also be resumed (a seed of 400
    digits trained, then failed ``--resume``). Help shows ``x>=minimum``; an error quotes
    the value cut short."""

    def __init__(self, minimum: int) -> None:
        super().__init__(min=minimum)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        _ascii_only(self, value, param, ctx)
        n = click.INT.convert(value, param, ctx)
        if not is_count(n, self.min):
            self.fail(f"{_short(n)} is not in the range {self.min}<=x<=2**53", param, ctx)
        return n


def _items(value: Any) -> list[Any]:
    """A config file's list as it is, or the command line's ``a,b,c`` split at commas."""
    return value if isinstance(value, list) else str(value).split(",")


class NamesType(click.ParamType):
    """``id,age`` (or a TOML list ``["id", "age"]``) -> ``("id", "age")``: column names,
    each once. The command line's are read as a CSV row, so a name holding a comma is
    quoted as in the file's header (``'"x,1",b'``: it could not be named)."""

    name = "NAMES"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        if isinstance(value, list):
            items = value
        else:
            try:
                items = next(csv.reader([str(value)], strict=True, skipinitialspace=True), [])
            except csv.Error as e:
                self.fail(f"expected column names separated by commas; got {_short(value)} "
                          f"({e})", param, ctx)  # fmt: skip
        names = [item.strip() if isinstance(item, str) else "" for item in items]
        if not names or not all(names):  # ('' was no names: --keep '' was dropped unsaid)
            self.fail(f"expected column names separated by commas; got {_short(value)}", param, ctx)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            self.fail(f"expected each column once; {_short(twice[0])} is named twice", param, ctx)
        return tuple(names)


class SizesType(click.ParamType):
    """``784,30,10`` (or a TOML list ``[784, 30, 10]``) -> ``(784, 30, 10)``.

    At most the limit ``layers`` sizes (``BACKPROP_MAX_LAYERS``, see docs/cli.md); each size
    is a positive integer of at most 18 digits (the parameters they make are checked against
    the limit ``parameters`` once the data are known).
    """

    name = "SIZES"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        if not isinstance(value, list | str):
            self.fail(f"expected sizes such as 2,3,2 or [2, 3, 2]; got {value!r}", param, ctx)
        items = _items(value)
        try:
            check_limit("layers", len(items), "got")
        except ValueError as e:
            self.fail(str(e), param, ctx)
        sizes = []
        for item in items:
            text = str(item).strip() if isinstance(item, int | str) else ""
            if (
                isinstance(item, bool)
                or not (text.isascii() and text.isdigit())
                or len(text.lstrip("0")) > 18
            ):
                self.fail(
                    f"expected positive integers separated by commas, such as 2,3,2; "
                    f"got {_short(value)}",
                    param,
                    ctx,
                )
            sizes.append(int(text))
        if len(sizes) < 2 or min(sizes) < 1:
            self.fail(
                f"expected at least two positive sizes (inputs,...,outputs); got {_short(value)}",
                param,
                ctx,
            )
        return tuple(sizes)


def option_group(*decorators: Callable) -> Callable:
    """Stack option decorators so that a group of options is declared once."""

    def wrap(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f

    return wrap


def choice(names: Sequence[str]) -> click.Choice:
    return click.Choice(list(names), case_sensitive=True)


def _dataset_help(defaults: str = "") -> str:
    return (
        f"A built-in dataset ({', '.join(DATASETS)}) or a CSV file (with --target). "
        f"[default: toy{defaults}]"
    )


def _setting_help(setting: str) -> str:
    """``momentum/nesterov. [default: 0.9]``: who takes an optimizer setting, and its default,
    as the optimizers themselves declare them."""
    owners = optimizers_taking(setting)
    return f"{'/'.join(owners)}. [default: {OPTIMIZERS[owners[0]].settings()[setting]:g}]"


def _data_options(defaults: str = "") -> Callable:
    """The data options; ``defaults`` adds to the defaults their help names (evaluate's
    "; a RUN_DIR's own")."""
    return option_group(
        click.option("--dataset", "-d", metavar="NAME|FILE.csv", help=_dataset_help(defaults)),
        click.option("--target", metavar="COLUMN", help="The target column of a CSV dataset."),
        click.option(
            "--task",
            type=choice(("classification", "regression")),
            help="A CSV target's task. [default: regression when every target is a number "
            "and some is not an integer or there are more than 20 distinct ones, else "
            "classification]",
        ),
        click.option(
            "--features",
            type=NamesType(),
            metavar="COL,COL",
            help="A CSV's feature columns (leave out an id or a text column). "
            "[default: every column but the target]",
        ),
        click.option(
            "--data-dir",
            type=PathValue(file_okay=False),
            help="Folder with the data files (MNIST). "
            "[default: $BACKPROP_DATA, then a per-user cache]",
        ),
        click.option(
            "--n-samples",
            type=Count(1),
            help="Rows of a generated dataset; for mnist, its first N training images; for "
            "mnist1d, its number of signals (a multiple of 10, at least 20).",
        ),
        click.option("--noise", type=FiniteFloat(min=0.0), help="Noise of a generated dataset."),
        click.option(
            "--test-fraction",
            type=FiniteFloat(0.0, 1.0, max_open=True),
            help="Share of a dataset without a fixed test split held out for testing. "
            f"[default: 0.25{defaults}]",
        ),
    )


data_options = _data_options()
#: evaluate's: given a run folder, its data options default to the run's own.
run_data_options = _data_options("; a RUN_DIR's own")

model_options = option_group(
    click.option(
        "--layers",
        type=SizesType(),
        help="Units per layer, inputs first. [default: 2,3,2 on toy; per data set otherwise, "
        "see docs/defaults.md]",
    ),
    click.option(
        "--activation",
        type=choice(ACTIVATIONS),
        metavar="NAME",
        help=f"Hidden-layer activation: {', '.join(ACTIVATIONS)}. "
        "[default: sigmoid on toy; per data set otherwise]",
    ),
    click.option(
        "--output-activation",
        type=choice(ACTIVATIONS),
        metavar="NAME",
        help="Output activation (as --activation). [default: identity for the cross-entropy "
        "losses, which take logits, and for regression; sigmoid otherwise]",
    ),
    click.option(
        "--loss",
        type=choice(LOSSES),
        help="[default: l2 on toy; cross_entropy for classification, mse for regression]",
    ),
    click.option(
        "--init",
        type=choice(INITIALIZERS),
        metavar="NAME",
        help=f"Weight initialiser: {', '.join(INITIALIZERS)}; auto: Glorot for sigmoid/tanh, "
        "He for the ReLU family. [default: normal on toy; auto otherwise]",
    ),
    click.option(
        "--init-scale",
        type=FiniteFloat(min=0.0, min_open=True),
        help="Std of 'normal' init. [default: 0.1]",
    ),
    click.option(
        "--bias-init",
        type=choice(BIAS_INITIALIZERS),
        help="Bias initialiser: zeros, uniform (+-1/sqrt(fan_in), as PyTorch), normal (N(0, 1), "
        "as Nielsen). [default: per data set, see docs/defaults.md]",
    ),
    click.option(
        "--dropout",
        type=FiniteFloat(0.0, 1.0, max_open=True),
        help="Dropout after hidden layers. [default: 0]",
    ),
    click.option("--dtype", type=choice(("float64", "float32")), help="[default: float64]"),
    click.option(
        "--seed",
        type=Count(0),
        help="Seed of the data, the weights and the shuffles. [default: 0]",
    ),
)

device_options = option_group(
    click.option("--backend", type=choice(BACKENDS), help="Array library. [default: numpy]"),
    click.option(
        "--device", metavar="cpu|cuda", help="Device of the backend. [default: the backend's own]"
    ),
)

optimizer_options = option_group(
    click.option(
        "--optimizer", type=choice(OPTIMIZERS), help="[default: sgd on toy; adam otherwise]"
    ),
    click.option(
        "--lr",
        type=FiniteFloat(min=0.0, min_open=True),
        help="Learning rate eta. [default: the data set's (docs/defaults.md) with its own "
        "optimizer; else 3.0 for sgd with l2, 0.5 for sgd otherwise; 0.5 for momentum and "
        "nesterov with l2, 0.1 otherwise; 1e-3 for adam, adamw, rmsprop]",
    ),
    click.option(
        "--momentum",
        type=FiniteFloat(0.0, 1.0, max_open=True),
        help=_setting_help("momentum"),
    ),
    click.option("--beta1", type=FiniteFloat(0.0, 1.0, max_open=True), help=_setting_help("beta1")),
    click.option("--beta2", type=FiniteFloat(0.0, 1.0, max_open=True), help=_setting_help("beta2")),
    click.option(
        "--weight-decay",
        type=FiniteFloat(min=0.0),
        help="L2 penalty lambda on the weights (decoupled for adamw). [default: 0, adamw "
        "0.01; 1e-3 with the recipe's adam for iris, wine, breast_cancer and CSV classes, see "
        "docs/defaults.md]",
    ),
    click.option(
        "--schedule", type=choice(SCHEDULES), help="Learning-rate schedule. [default: constant]"
    ),
    click.option(
        "--step-size",
        type=Count(1),
        metavar="EPOCHS",
        help="--schedule step: epochs between the rate's cuts. [default: 10]",
    ),
    click.option(
        "--gamma",
        type=FiniteFloat(0.0, 1.0, min_open=True),
        help="--schedule step/exponential: the factor of each cut, or of each epoch. "
        "[default: 0.1 for step, 0.95 for exponential]",
    ),
    click.option(
        "--epochs",
        type=Count(1),
        help="The epoch budget. [default: 300 on toy; per data set otherwise]",
    ),
    click.option(
        "--batch-size",
        type=Count(1),
        help="[default: 10 on toy; per data set otherwise]",
    ),
    click.option(
        "--validation-fraction",
        type=FiniteFloat(0.0, 1.0, max_open=True),
        help=(
            "Share of the training rows held out for validation (stratified by class "
            "unless --validation-split shuffle). [default: 0.1]"
        ),
    ),
    click.option(
        "--validation-split",
        type=choice(("stratified", "shuffle")),
        help="How the validation rows are drawn: each class its share (a shuffle for "
        "regression), or a plain seeded shuffle of the rows (runs made before 2026-12-02, "
        "whose config.toml does not say). [default: stratified]",
    ),
    click.option(
        "--early-stopping",
        type=Count(0),
        metavar="PATIENCE",
        help="Stop after this many epochs without a better --monitor; 0: off. "
        "[default: off on toy; per data set otherwise]",
    ),
    click.option(
        "--monitor",
        metavar="COLUMN",
        help="What early stopping watches: a column of history.csv (val_loss, val_accuracy, "
        "loss, accuracy). [default: val_loss]",
    ),
    click.option(
        "--monitor-mode",
        type=choice(("auto", "min", "max")),
        help="auto: maximise accuracy, minimise losses. [default: auto]",
    ),
    click.option(
        "--restore-best/--keep-last",
        "restore_best",
        default=None,
        help="After early stopping, keep the best epoch's weights or the last's. [default: best]",
    ),
    click.option(
        "--class-weight", type=choice(("balanced",)), help="Weight classes by inverse frequency."
    ),
    click.option(
        "--target-scaling",
        type=choice(("standard", "none")),
        help="Regression: train on standardised targets (their mean and std kept in the model "
        "file; predictions un-scaled) or on the raw ones. [default: standard for "
        "regression; none for classification]",
    ),
    click.option(
        "--checkpoint-every",
        type=Count(1),
        metavar="EPOCHS",
        help="Save a checkpoint (for --resume) every this many epochs. "
        "[default: epochs // 30, between 1 and 10]",
    ),
)

config_option = click.option(
    "--config",
    "config_path",
    type=FilePath(),
    help="Read options from a TOML (or JSON) file; options on the command line override it.",
)

#: The options a config file may set (a run folder's config.toml holds all of them).
CONFIG_KEYS = (
    "dataset", "target", "task", "features", "data_dir", "n_samples", "noise", "test_fraction",
    "target_scaling",
    "layers", "activation", "output_activation", "loss", "init", "init_scale", "bias_init",
    "dropout", "dtype", "seed", "backend", "device",
    "optimizer", "lr", "momentum", "beta1", "beta2", "weight_decay", "schedule", "step_size",
    "gamma", "epochs",
    "batch_size", "validation_fraction", "validation_split", "early_stopping", "monitor",
    "monitor_mode",
    "restore_best", "class_weight", "checkpoint_every",
)  # fmt: skip


def _params_of(*groups: Callable) -> list[click.Parameter]:
    """The click parameters that option groups declare (as a command using them would get)."""

    def command(**kwargs: Any) -> None:
        return None

    for group in groups:
        command = group(command)
    return list(getattr(command, "__click_params__", []))


#: The options a config file may set, by name: converted and checked by their click types.
CONFIG_PARAMS: dict[str, click.Parameter] = {
    p.name: p
    for p in _params_of(data_options, model_options, device_options, optimizer_options)
    if p.name in CONFIG_KEYS
}
