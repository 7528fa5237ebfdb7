"""From options to a run: a config file read and written (TOML), every default resolved
from the data, and the model, optimizer and data set built from the result."""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np
from click.core import ParameterSource

from .._limits import check_limit, read_user_file
from .._validation import cut as _cut
from .._validation import short_repr as _short
from .._validation import unique_keys
from ..datasets import DatasetError, load_dataset
from ..datasets.tabular import label_value, refuse_a_single_class
from ..formatting import toml_string
from ..io import ESTIMATOR_RECORD, load_model, parse_estimator_record, read_header
from ..losses import LOSSES
from ..network import MLP
from ..optimizers import OPTIMIZERS, SCHEDULES, get_optimizer, get_schedule, optimizers_taking
from ..preprocessing import Preprocessing, in_target_units
from ..training import EarlyStopping
from .app import UserError, one_line
from .options import CONFIG_KEYS, CONFIG_PARAMS, NamesType, SizesType

__all__ = [
    "ADAPTIVE_LR",
    "CSV_CLASSIFICATION",
    "CSV_REGRESSION",
    "DATASET_RECIPES",
    "DEFAULT_LR",
    "LEGACY_CONFIG",
    "RUN_CONFIG_HEADER",
    "Recipe",
    "build_model",
    "backend_errors",
    "build_optimizer",
    "config_to_toml",
    "default_lr",
    "early_stopping_callback",
    "value_beyond",
    "given_options",
    "is_classifier",
    "load_data",
    "model_outputs",
    "output_classes",
    "load_model_file",
    "ModelFile",
    "read_config",
    "recipe_for",
    "resolve",
    "read_config_and_legacy",
    "run_config_values",
    "chosen_in_file",
    "validation_split",
    "validation_rows",
    "UNCHOSEN",
]

#: Learning rate when --lr is not given and --optimizer is not the data set's own: Nielsen's
#: eta = 3.0 for plain SGD on the quadratic (L2) cost, 0.5 for SGD on the other losses (his
#: cross-entropy runs), the usual 1e-3 for the adaptive methods.
DEFAULT_LR = {"sgd": (3.0, 0.5), "momentum": (0.5, 0.1), "nesterov": (0.5, 0.1)}
ADAPTIVE_LR = 1e-3


@dataclass(frozen=True)
class Recipe:
    """What ``backprop train`` uses for a data set when an option is not given.

    Each value was chosen by a measurement on validation rows (never test rows), recorded
    in docs/defaults.md with the command that repeats it (``scripts/choose_defaults.py``).

    Attributes
    ----------
    hidden : tuple of int
        Hidden layer sizes (``--layers`` is ``n_features, *hidden, n_outputs``).
    activation, loss, init, init_scale, bias_init
        As the options; ``loss`` None: ``cross_entropy`` for classification, ``mse`` for
        regression.
    optimizer, lr, batch_size, weight_decay
        ``weight_decay`` 0: the optimizer's own default.
    epochs : int
        The epoch budget.
    early_stopping : int
        Patience in epochs on ``val_loss`` (the best epoch's weights kept); 0: off.
    """

    hidden: tuple[int, ...]
    activation: str
    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    early_stopping: int
    loss: str | None = None
    init: str = "auto"
    init_scale: float = 0.1
    bias_init: str = "zeros"
    weight_decay: float = 0.0


#: The tutorial's network (2-3-2 sigmoid, L2) on the toy data: `backprop train` with no
#: options, unchanged; its training settings are the project's (the tutorial gives none).
TUTORIAL = Recipe(
    hidden=(3,), activation="sigmoid", loss="l2", init="normal", init_scale=0.1,
    bias_init="zeros", optimizer="sgd", lr=3.0, batch_size=10, epochs=300, early_stopping=0,
)  # fmt: skip
#: The 2-D sets (xor, moons, circles, spirals, blobs). Non-zero biases: with zero ones a
#: tanh network is an odd function, stuck on spirals (docs/defaults.md: 0.57 against 0.98).
PLANE = Recipe(
    hidden=(16, 16), activation="tanh", bias_init="uniform", optimizer="adam", lr=1e-2,
    batch_size=32, epochs=1000, early_stopping=100,
)  # fmt: skip
#: Small tables: iris, wine, breast_cancer, and a CSV file with class labels.
CSV_CLASSIFICATION = Recipe(
    hidden=(32,), activation="tanh", bias_init="uniform", optimizer="adam", lr=1e-2,
    weight_decay=1e-3, batch_size=16, epochs=500, early_stopping=50,
)  # fmt: skip
#: A CSV file of more classes than the small tables' 2-3: wider, ReLU, a smaller rate
#: (docs/defaults.md, "More classes": on selection rows, 21 points above the table recipe
#: on 20 classes, 11 on 50).
CSV_MANY_CLASSES = replace(CSV_CLASSIFICATION, hidden=(100,), activation="relu", lr=1e-3)
#: The most classes the table recipe was chosen on (iris, wine: 3).
TABLE_CLASSES = 3
#: A CSV file with a numeric target (standardised by default, see --target-scaling).
CSV_REGRESSION = Recipe(
    hidden=(64, 64), activation="tanh", bias_init="uniform", optimizer="adam", lr=1e-2,
    batch_size=32, epochs=1000, early_stopping=20,
)  # fmt: skip
#: MNIST.
MNIST = Recipe(
    hidden=(256,), activation="relu", optimizer="adam", lr=1e-3, batch_size=128, epochs=30,
    early_stopping=5,
)  # fmt: skip
#: MNIST-1D. No early stopping: its validation loss rises long before its accuracy stops
#: improving (docs/defaults.md: 0.55 with a patience of 30 on val_loss, 0.63 without).
MNIST1D = Recipe(
    hidden=(256, 256), activation="relu", optimizer="adam", lr=1e-2, batch_size=100,
    epochs=150, early_stopping=0,
)  # fmt: skip
#: scikit-learn's digits.
DIGITS = Recipe(
    hidden=(256, 128), activation="relu", optimizer="adam", lr=1e-3, batch_size=32,
    epochs=200, early_stopping=20,
)  # fmt: skip

#: Each built-in data set's recipe (a CSV file: CSV_CLASSIFICATION or CSV_REGRESSION).
DATASET_RECIPES: dict[str, Recipe] = {
    "toy": TUTORIAL,
    "xor": PLANE,
    "moons": PLANE,
    "circles": PLANE,
    "spirals": PLANE,
    "blobs": PLANE,
    "mnist": MNIST,
    "mnist1d": MNIST1D,
    "digits": DIGITS,
    "iris": CSV_CLASSIFICATION,
    "wine": CSV_CLASSIFICATION,
    "breast_cancer": CSV_CLASSIFICATION,
}

#: What :func:`resolve` gives these options when nobody chose them (every run's config.toml
#: records them so; train refuses other values of theirs where they would do nothing).
UNCHOSEN: dict[str, Any] = {
    "validation_split": "stratified",
    "monitor": "val_loss",
    "monitor_mode": "auto",
    "restore_best": True,
}

#: train's options that say how this command runs, not what it trains: a config file cannot
#: set them.
COMMAND_LINE_ONLY = ("out", "resume", "config", "progress", "plots")

#: What a config.toml written before these options existed meant by leaving them out: no
#: early stopping, biases starting at 0, targets not scaled (``--resume`` of an old run).
LEGACY_CONFIG = {
    "early_stopping": 0,
    "bias_init": "zeros",
    "target_scaling": "none",
    "monitor": "val_loss",
    "monitor_mode": "min",
    "restore_best": True,
}

#: What a config.toml that ``backprop train`` wrote before ``validation_split`` existed
#: (2026-12-02) means by leaving it out: its validation rows were a plain seeded shuffle,
#: and its ``--resume``, ``--config`` and ``evaluate --split validation`` hold out those.
LEGACY_SPLIT = {"validation_split": "shuffle"}


def recipe_for(data: Any) -> Recipe:
    """The recipe of a loaded data set: its own, or the CSV one for its task (and, for
    classes, how many: more than :data:`TABLE_CLASSES` get :data:`CSV_MANY_CLASSES`)."""
    if data.name in DATASET_RECIPES:
        return DATASET_RECIPES[data.name]
    if data.task != "classification":
        return CSV_REGRESSION
    return CSV_MANY_CLASSES if data.n_classes > TABLE_CLASSES else CSV_CLASSIFICATION


#: How every config.toml that ``backprop train`` wrote begins (its header comment).
RUN_CONFIG_HEADER = b"# backprop train:"


def run_config_values(path: Path) -> dict[str, Any]:
    """The options of a config file. One a run wrote before ``bias_init`` and the options
    beside it existed (train's header, no ``bias_init``: every run's file has one since)
    means by those it leaves out what :data:`LEGACY_CONFIG` says, as when the run was made:
    given to --config it trained another run, silently (early stopping on, biases drawn,
    targets scaled: test MSE 1,059 became 1.5e15). Any other file takes today's defaults
    for what it leaves out, as its header says."""
    values, legacy = read_config_and_legacy(path)
    return {**legacy, **values}


def read_config(path: Path) -> dict[str, Any]:
    """Options from a TOML (Python 3.11+: tomllib) or JSON file, converted and checked by the
    same types as the command-line options.

    The file must be a regular file of at most the limit ``config_bytes`` (1 MiB); each
    value must have the kind its option takes (an integer for ``epochs``: not ``1.5``, not
    ``true``; a string for ``data_dir``...), then passes the option's own check.
    """
    return read_config_and_legacy(path)[0]


def chosen_in_file(path: Path | None) -> set[str]:
    """The options a config file of one's own sets (none for ``path`` None, or for a run's
    config.toml, which records every option, those its run ignored too)."""
    if path is None:
        return set()
    text = read_user_file(path, "config file", "config_bytes", UserError)
    return set() if text.startswith(RUN_CONFIG_HEADER) else set(_config_options(text, path))


def read_config_and_legacy(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`read_config`'s options, and what a file a run wrote before some options
    existed means by leaving them out (train's header; no ``bias_init``:
    :data:`LEGACY_CONFIG`; no ``validation_split``: :data:`LEGACY_SPLIT`), else ``{}``: the
    file read once."""
    text = read_user_file(path, "config file", "config_bytes", UserError)
    values = _config_options(text, path)
    if not text.startswith(RUN_CONFIG_HEADER):
        return values, {}
    if values.get("data_dir") is not None and values.get("dataset", "toy") != "mnist":
        # a run of another set that recorded one (accepted and ignored then, refused since):
        # its --resume, evaluate and predict failed on an option nobody typed
        del values["data_dir"]
    older = "bias_init" not in values
    old_split = "validation_split" not in values
    return values, {**(LEGACY_CONFIG if older else {}), **(LEGACY_SPLIT if old_split else {})}


def _config_options(text: bytes, path: Path) -> dict[str, Any]:
    try:
        if path.suffix.lower() == ".json":
            raw = _parse_json_config(text, path)
        else:
            raw = _parse_toml_config(text, path)
    except RecursionError:
        raise UserError(f"config file {path} is nested too deeply to be a config file") from None
    if not isinstance(raw, dict):
        raise UserError(f"config file {path} must hold a table of options")
    params = CONFIG_PARAMS
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # option name -> the key that set it
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name in given:  # batch_size and batch-size (the last would silently win)
            raise UserError(
                f"config file {path}: {_short(given[name])} and {_short(key)} both set {name}; "
                "expected each option once"
            )
        given[name] = key
        if name in COMMAND_LINE_ONLY:  # (out was 'unknown option out (did you mean dropout?)')
            raise UserError(
                f"config file {path}: {_short(key)} is given on the command line only "
                f"(--{name.replace('_', '-')}), not in a config file, which holds the options "
                "of the network, its data and its training"
            )
        if name not in params:
            close = difflib.get_close_matches(name, CONFIG_KEYS, n=1)  # (as --epoch is told)
            guess = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(
                f"config file {path}: unknown option {_short(key)}{guess}; "
                f"expected some of {', '.join(CONFIG_KEYS)}"
            )
        param = params[name]
        kind = _value_kind(param)
        if not _has_kind(value, kind):
            raise UserError(f"config file {path}: {key} = {_short(value)}: expected {kind}")
        try:
            out[name] = param.type.convert(value, param, None)
        except click.BadParameter as e:
            raise UserError(f"config file {path}: {key} = {_short(value)}: {e.message}") from None
    return out


def _parse_json_config(text: bytes, path: Path) -> Any:
    try:
        # a repeated key is refused: json.loads keeps the last ({"epochs": 2, "epochs": 3}: 3)
        return json.loads(text, object_pairs_hook=unique_keys)
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError, digits beyond int's limit
        raise UserError(f"config file {path} is not valid JSON: {e}") from None


def _parse_toml_config(text: bytes, path: Path) -> Any:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise UserError(
                f"reading the TOML file {path} needs Python 3.11+ or tomli, a dependency "
                "of backprop on Python 3.10: pip install tomli"
            ) from None
    try:
        return tomllib.loads(text.decode("utf-8-sig"))  # (a byte-order mark, as for JSON)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"config file {path} is not valid TOML: {e}") from None


def _value_kind(param: click.Parameter) -> str:
    """What a config file's value for ``param`` must be, in words."""
    if isinstance(param.type, SizesType):
        return "a list of layer sizes such as [2, 3, 2]"
    if isinstance(param.type, NamesType):
        return 'a list of column names such as ["age", "height"]'
    if isinstance(param.type, click.types.IntParamType):
        return "an integer"
    if isinstance(param.type, click.types.FloatParamType):
        return "a number"
    if isinstance(param.type, click.types.BoolParamType):
        return "true or false"
    return "a string"


def _has_kind(value: Any, kind: str) -> bool:
    """Whether a parsed TOML/JSON ``value`` is of ``kind`` (:func:`_value_kind`); layer
    sizes may also be a string, as on the command line (``"2,3,2"``). A number or a flag
    as a string (``epochs = "1"``, ``restore_best = "yes"``) is not of its kind: the docs
    say so, and the file's own types are what it means."""
    if isinstance(value, str):
        return kind == "a string" or kind.startswith("a list")
    if isinstance(value, bool):
        return kind == "true or false"
    if kind == "an integer":
        return isinstance(value, int)
    if kind == "a number":
        return isinstance(value, int | float)
    if kind.startswith("a list"):
        return isinstance(value, list)
    return False


def given_options(ctx: click.Context, config_path: Path | None) -> dict[str, Any]:
    """The options the user chose: the config file's, overridden by the command line's."""
    values, legacy = read_config_and_legacy(config_path) if config_path is not None else ({}, {})
    for name, value in ctx.params.items():
        if name in CONFIG_KEYS and ctx.get_parameter_source(name) not in (
            None,
            ParameterSource.DEFAULT,
        ):
            values[name] = value
    if "monitor" in values:  # watched by choice: today's mode (the old 'min' minimised a
        legacy.pop("monitor_mode", None)  # --monitor val_accuracy: the worst epoch kept)
    return {**legacy, **values}


#: Data sets whose test split is their publisher's: ``--test-fraction`` does not apply.
FIXED_TEST_SPLIT = ("mnist", "mnist1d")


#: The options ``load_data`` hands to :func:`load_dataset` by the same names.
DATA_KEYWORDS = ("target", "data_dir", "n_samples", "noise", "test_fraction", "task", "features",
                 "download")  # fmt: skip


def load_data(values: dict[str, Any]) -> Any:
    """The dataset named by the options (``toy`` by default)."""
    if values.get("dataset") == "":  # (it trained toy without a word)
        raise UserError("--dataset is empty; expected a data set's name or a CSV file's path")
    name = values.get("dataset") or "toy"
    if name in FIXED_TEST_SPLIT and values.get("test_fraction") is not None:
        raise UserError(  # (it was ignored, and config.toml recorded it)
            f"--test-fraction does not apply to {name}, whose test split is the published one"
        )
    kwargs = {k: values[k] for k in DATA_KEYWORDS if values.get(k) is not None}
    try:
        return load_dataset(name, seed=values.get("seed", 0), **kwargs)
    except DatasetError as e:  # the library names its keywords; the user gave options
        raise UserError(_as_options(one_line(e), DATA_KEYWORDS, kwargs)) from None


def _as_options(message: str, keywords: Any, given: Any = ()) -> str:
    """A library's error in the words of the command line: ``loss='mse'`` and ``loss
    'mse'`` become ``--loss mse``, ``(features=...)`` ``(--features ...)``, ``(target=...)``
    ``(--target COLUMN)``; and, for the keywords ``given`` (the options the user set),
    ``n_samples does not apply`` ``--n-samples does not apply``, ``needs n_samples >= 4``
    ``needs --n-samples >= 4`` (a keyword without ``_`` is a word of prose too, 'the loss':
    an option only at the start). Quoted text (a cell, a column's name) is left as it is,
    and so is a file's path (a folder named data_dir read '--data-dir/m.csv')."""
    message = message.replace("(target=...)", "(--target COLUMN)")
    for key in keywords:
        option = f"--{key.replace('_', '-')}"
        message = re.sub(rf"(?<![-\w/']){key}(?:=| )'([^']*)'", rf"{option} \1", message)
        bare = key in given and ("_" in key or message.startswith(f"{key} "))
        parts = re.split(r"('[^']*')", message)  # quoted spans at the odd places
        for i in range(0, len(parts), 2):
            parts[i] = re.sub(rf"(?<![-\w/.]){key}=", f"{option} ", parts[i])
            if bare:
                parts[i] = re.sub(rf"(?<![-\w/.]){key}(?![\w/.])", option, parts[i])
        message = "".join(parts)
    return message


def no_test_split(data: Any, values: dict[str, Any]) -> str:
    """Why ``data``, loaded from the options ``values``, has no test rows (for an error)."""
    if values.get("test_fraction") == 0:
        return "test fraction 0"
    pre = data.preprocessing
    table = pre is not None and pre.target is not None
    if data.task == "classification" and table and data.n_classes > data.n_train / 2:
        # a table's classes mostly of one row (the split holds out a share of each class)
        numbers = all(label_value(c) is not None for c in data.class_names or ())
        hint = (  # (a weight written '191.0' is a number: it was asked if it was text)
            "labels that are all numbers: if they are a quantity, --task regression"
            if numbers
            else "a numeric target written as text ('$1,234')? --task regression needs plain "
            "numbers"
        )
        return (
            f"its {data.n_train} rows make {data.n_classes} classes, too few rows a class for "
            f"the test fraction to hold one out of any; {hint}"
        )
    return f"its {data.n_train} rows are too few for the test fraction to hold one out"


def default_lr(optimizer: str, loss: str) -> float:
    if optimizer in DEFAULT_LR:
        l2_lr, other_lr = DEFAULT_LR[optimizer]
        return l2_lr if loss == "l2" else other_lr
    return ADAPTIVE_LR


def resolve(values: dict[str, Any], data: Any) -> dict[str, Any]:
    """The configuration the run trains with: every option of the command line, defaults
    filled in from the data set's :class:`Recipe` (``recipe_for(data)``); the optimizer's
    and schedule's own settings left at their library defaults are not among them (they
    take those defaults when built)."""
    refuse_a_single_class(data, data.name)  # (read, as evaluate scores such a file)
    classify = data.task == "classification"
    recipe = recipe_for(data)
    cfg = dict(values)
    cfg["dataset"] = values.get("dataset") or "toy"
    cfg.setdefault("layers", (data.n_features, *recipe.hidden, data.n_outputs))
    sizes = cfg["layers"]
    if sizes[0] != data.n_features or sizes[-1] != data.n_outputs:
        raise UserError(
            f"--layers {','.join(map(str, sizes))} does not fit dataset {data.name}: it has "
            f"{data.n_features} input features and {data.n_outputs} outputs, so the layers must "
            f"start with {data.n_features} and end with {data.n_outputs}"
        )
    # the weights and biases, counted from the sizes before any is allocated
    n_parameters = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    check_limit(
        "parameters",
        n_parameters,
        f"--layers {_cut(','.join(map(str, sizes)))} makes a network of",
        UserError,
    )
    cfg.setdefault("activation", recipe.activation)
    cfg.setdefault("loss", recipe.loss or ("cross_entropy" if classify else "mse"))
    _check_task_options(cfg, data)
    from_logits = LOSSES[cfg["loss"]].from_logits
    if "output_activation" not in cfg:
        cfg["output_activation"] = "identity" if (from_logits or not classify) else "sigmoid"
    elif from_logits and cfg["output_activation"] != "identity":
        link = LOSSES[cfg["loss"]].link
        raise UserError(
            f"--loss {cfg['loss']} takes logits and applies {link} itself, so the output "
            f"activation must be identity (got --output-activation {cfg['output_activation']}); "
            "leave --output-activation out"
        )
    cfg.setdefault("init", recipe.init)
    cfg.setdefault("init_scale", recipe.init_scale)
    cfg.setdefault("bias_init", recipe.bias_init)
    cfg.setdefault("dropout", 0.0)
    cfg.setdefault("dtype", "float64")
    cfg.setdefault("seed", 0)
    cfg.setdefault("backend", "numpy")
    cfg.setdefault("optimizer", recipe.optimizer)
    if cfg["optimizer"] == recipe.optimizer:
        cfg.setdefault("lr", recipe.lr)
    cfg.setdefault("lr", default_lr(cfg["optimizer"], cfg["loss"]))
    # the recipe's weight decay was tuned with its optimizer, as its rate: another optimizer
    # gets its own default (AdamW's 0.01 was replaced by the tables' 1e-3 for Adam)
    if recipe.weight_decay and cfg.get("weight_decay") is None:
        if cfg["optimizer"] == recipe.optimizer:
            cfg["weight_decay"] = recipe.weight_decay
    cfg.setdefault("schedule", "constant")
    cfg.setdefault("epochs", recipe.epochs)
    check_limit("epochs", cfg["epochs"], "--epochs asks for", UserError)
    cfg.setdefault("batch_size", recipe.batch_size)
    cfg.setdefault("validation_fraction", 0.1)
    cfg.setdefault("validation_split", UNCHOSEN["validation_split"])
    cfg.setdefault("early_stopping", recipe.early_stopping)
    cfg.setdefault("monitor", UNCHOSEN["monitor"])
    columns = ("loss", "val_loss") + (("accuracy", "val_accuracy") if classify else ())
    if cfg["monitor"] not in columns:
        raise UserError(
            f"--monitor {cfg['monitor']} is not a column of this run's history; expected one "
            f"of {', '.join(columns)}"
        )
    cfg.setdefault("monitor_mode", UNCHOSEN["monitor_mode"])
    cfg.setdefault("restore_best", UNCHOSEN["restore_best"])
    cfg.setdefault("target_scaling", "none" if classify else "standard")
    cfg.setdefault("checkpoint_every", max(1, min(10, cfg["epochs"] // 30)))
    if str(cfg["dataset"]).lower().endswith(".csv"):
        cfg["dataset"] = str(Path(cfg["dataset"]).resolve())
    if cfg.get("data_dir") is not None:
        cfg["data_dir"] = str(Path(cfg["data_dir"]).resolve())
    return cfg


#: Losses that need class targets (probabilities in [0, 1]).
CLASS_LOSSES = ("cross_entropy", "binary_cross_entropy")


def _check_task_options(cfg: dict[str, Any], data: Any) -> None:
    """Options that apply to one task only, given for the other: refused before the run
    folder exists (found by fit, they left a folder that blocked the same --out)."""
    classify, name = data.task == "classification", data.name
    if not classify and cfg["loss"] in CLASS_LOSSES:
        raise UserError(
            f"--loss {cfg['loss']} takes class targets; dataset {name} is a regression set "
            "(numeric targets): use a regression loss (mse, mae, huber or l2)"
        )
    if not classify and cfg.get("class_weight") is not None:
        raise UserError(
            f"--class-weight weighs classes; dataset {name} is a regression set, which has none"
        )
    if classify and cfg.get("target_scaling") == "standard":
        raise UserError(
            f"--target-scaling standard scales regression targets; dataset {name} is a "
            "classification set: leave it out"
        )


def early_stopping_callback(cfg: dict[str, Any]) -> EarlyStopping | None:
    """The run's :class:`EarlyStopping` (None when ``early_stopping`` is 0)."""
    if not cfg.get("early_stopping"):
        return None
    return EarlyStopping(
        cfg["early_stopping"],
        monitor=cfg.get("monitor", "val_loss"),
        mode=cfg.get("monitor_mode", "auto"),
        restore_best_weights=cfg.get("restore_best", True),
    )


def validation_split(
    n: int, fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation), each sorted: the ``fraction`` of the ``n`` training
    rows that ``train`` holds out, drawn with ``seed``.

    With class ``labels`` (shape ``(n,)``) the split is stratified, as the estimators' is
    (scikit-learn's MLPClassifier stratifies binary targets only): each class gives its
    share of the ``round(fraction * n)`` validation rows (the rows left over by rounding go
    to the classes with the largest remainders; a class keeps at least one training row,
    and what it cannot give goes to the classes with the most room), so that 3 validation
    rows of a small table are not all of one class. Where a class has a single row, or a
    part has no room for one row of each class, the split is a plain seeded shuffle, as
    without ``labels``.
    """
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    rng = np.random.default_rng([int(seed), 0x7A11D])
    n_val = min(n - 1, max(1, round(fraction * n)))
    classes, y = (None, None) if labels is None else np.unique(labels, return_inverse=True)
    if y is None or np.bincount(y).min() < 2 or min(n_val, n - n_val) < classes.size:
        perm = rng.permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    counts = np.bincount(y)
    share = n_val * counts / n
    take = np.floor(share).astype(np.int64)
    largest_remainders = np.argsort(take - share, kind="stable")
    take[largest_remainders[: n_val - int(take.sum())]] += 1
    excess = int(np.maximum(take - (counts - 1), 0).sum())
    take = np.minimum(take, counts - 1)  # every class keeps a training row; the rows it
    for c in np.argsort(take - counts, kind="stable"):  # would give beyond that go to the
        more = min(excess, int(counts[c] - 1 - take[c]))  # classes with the most room
        take[c] += more
        excess -= more
    held = np.zeros(n, dtype=bool)
    for c, k in enumerate(take):
        held[rng.permutation(np.flatnonzero(y == c))[:k]] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def validation_rows(
    cfg: dict[str, Any], data: Any, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) into ``data``'s training rows, as the run ``cfg``
    describes holds them out (its ``validation_fraction``, ``validation_split`` and
    ``seed``): of all of them, or of the training rows ``rows`` (indices into the same)."""
    rows = np.arange(data.X_train.shape[0]) if rows is None else rows
    stratified = cfg.get("validation_split", "stratified") == "stratified"
    labels = (
        np.asarray(data.y_train)[rows] if stratified and data.task == "classification" else None
    )
    tr, va = validation_split(rows.size, cfg["validation_fraction"], cfg.get("seed", 0), labels)
    return rows[tr], rows[va]


#: The options ``build_model`` hands to :class:`MLP` by the same names.
MODEL_KEYWORDS = ("output_activation", "activation", "loss", "init_scale", "init", "bias_init",
                  "dropout", "dtype", "seed", "backend", "device")  # fmt: skip


def build_model(cfg: dict[str, Any]) -> MLP:
    """The model ``cfg`` describes; UserError for a backend that is not there, or an
    ``--init-scale`` so large that the initial weights overflow the dtype."""
    try:
        # an overflowing draw is reported below, as one line
        with backend_errors(), np.errstate(over="ignore", invalid="ignore"):
            model = MLP(
                cfg["layers"],
                cfg["activation"],
                cfg["output_activation"],
                cfg["loss"],
                init=cfg["init"],
                init_scale=cfg["init_scale"],
                bias_init=cfg.get("bias_init", "zeros"),
                dropout=cfg["dropout"],
                dtype=cfg["dtype"],
                seed=cfg["seed"],
                backend=cfg["backend"],
                device=cfg.get("device"),
            )
    except ValueError as e:  # the network's own checks, named by their keywords
        raise UserError(_as_options(one_line(e), MODEL_KEYWORDS, MODEL_KEYWORDS)) from None
    to_numpy = model.backend.to_numpy  # no copy on the numpy backend
    finite = all(np.isfinite(to_numpy(w)).all() for w in model.params.values())
    if not finite:
        raise UserError(
            f"--init-scale {cfg['init_scale']:g} makes initial weights that overflow "
            f"{cfg['dtype']} (inf); choose a smaller --init-scale"
        )
    return model


def build_optimizer(cfg: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {"lr": cfg["lr"]}
    for key in ("momentum", "beta1", "beta2", "weight_decay"):
        if cfg.get(key) is not None:
            kwargs[key] = cfg[key]
    schedule_kwargs = {k: cfg[k] for k in ("step_size", "gamma") if cfg.get(k) is not None}
    for key in schedule_kwargs:
        if key not in SCHEDULES[cfg["schedule"]].__dataclass_fields__:
            users = [n for n, s in SCHEDULES.items() if key in s.__dataclass_fields__]
            raise UserError(
                f"--{key.replace('_', '-')} applies to --schedule {' or '.join(users)}, "
                f"not {cfg['schedule']}"
            )
    if cfg["schedule"] == "cosine":
        kwargs["schedule"] = get_schedule("cosine", t_max=cfg["epochs"])
    else:
        kwargs["schedule"] = get_schedule(cfg["schedule"], **schedule_kwargs)
    accepted = OPTIMIZERS[cfg["optimizer"]].settings()  # what the optimizer itself takes
    for key in kwargs:
        if key not in accepted:
            owners = optimizers_taking(key)
            raise UserError(
                f"--{key} applies to --optimizer {' or '.join(owners)}, not {cfg['optimizer']}"
            )
    try:
        return get_optimizer(cfg["optimizer"], **kwargs)
    except ValueError as e:
        raise UserError(f"--optimizer {cfg['optimizer']}: {one_line(e)}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return toml_string(str(value), ascii_only=True)


def _not_utf8(value: Any) -> bool:
    try:
        str(value).encode("utf-8")
    except UnicodeEncodeError:  # a file name's undecodable bytes, as surrogates
        return True
    return False


def config_to_toml(cfg: dict[str, Any]) -> str:
    """The resolved configuration as TOML that ``--config`` reads back (None values omitted)."""
    lines = [
        "# backprop train: the configuration of this run, every option it set. Settings left at",
        "# their own defaults (the optimizer's and schedule's, weight decay, the data set's test",
        "# fraction, size and noise, the device) are not written: read back, they take those",
        "# defaults again.",
        "# Re-run it with: backprop train --config RUN_DIR/config.toml --out NEW_DIR",
    ]
    for key in CONFIG_KEYS:
        if cfg.get(key) is not None:
            value = cfg[key]
            if _not_utf8(value):
                # (a path of bytes that are not UTF-8 was written as '\udcff', which no
                # TOML reader takes: the run trained, then could not be resumed or repeated)
                raise UserError(
                    f"--{key.replace('_', '-')} {_short(value)} holds characters that "
                    "config.toml (UTF-8 text) cannot record; rename it"
                )
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def backend_errors() -> Iterator[None]:
    """Building or loading a model on a backend that is not installed, or a device that is
    not there (``--device cuda`` without a GPU: torch's RuntimeError), is one line, the
    user's to mend."""
    try:
        yield
    except (ImportError, RuntimeError) as e:
        raise UserError(one_line(e)) from None


@dataclass(frozen=True)
class ModelFile:
    """A model file read for ``predict``, ``evaluate`` and ``export``.

    Attributes
    ----------
    model : MLP
        The network, with a scikit-learn estimator's feature and class names as its
        preprocessing where it was fitted on named columns.
    classes : list of str or None
        The class names: the preprocessing's, else a scikit-learn classifier's ``classes_``
        (fitted on unnamed columns), else None.
    multilabel : bool
        A scikit-learn classifier fitted on a multi-label indicator ``y``: each output is
        one label of its own (present where its probability exceeds 0.5), not a class.
    """

    model: MLP
    classes: list[str] | None
    multilabel: bool


def load_model_file(path: Path, backend: str | None, device: str | None) -> ModelFile:
    """The model in ``path``. A scikit-learn estimator's file (``est.save``) keeps its
    feature and class names in its own record, read once here: a model fitted on named
    columns gets them as its preprocessing (no scaling), so its columns are picked by name
    and its rows labelled by class, as ``est.predict`` does (they were read in order and
    labelled 0, 1, ...)."""
    with backend_errors():
        model = load_model(path, backend=backend or "numpy", device=device)
    pre = model.preprocessing
    if pre is not None:
        classes = None if pre.classes is None else list(pre.classes)
        return ModelFile(model, classes, multilabel=False)
    features, classes, multilabel = _estimator_record(path, model)
    if features is not None:
        n = len(features)
        try:
            model.preprocessing = Preprocessing(features, (0.0,) * n, (1.0,) * n, None, classes)
        except ValueError as e:
            raise UserError(f"{path}: its scikit-learn record: {one_line(e)}") from None
    return ModelFile(model, classes, multilabel)


def _estimator_record(
    path: Path, model: MLP
) -> tuple[tuple[str, ...] | None, list[str] | None, bool]:
    """``(feature names, class names, multi-label)`` from the scikit-learn record of the
    model file ``path``: names are None where it has none (a regressor's classes, a
    multi-label classifier's indicator columns, features fitted without names, a file
    with no record)."""
    text = read_header(path).metadata.get(ESTIMATOR_RECORD)
    if text is None:
        return None, None, False
    fitted = parse_estimator_record(text, path)
    fitted = fitted.get("fitted") if isinstance(fitted, dict) else None
    if not isinstance(fitted, dict):
        raise UserError(f"{path}: its scikit-learn record has no 'fitted' object")
    features = fitted.get("feature_names_in")
    if features is not None:
        if not (
            isinstance(features, list)
            and len(features) == model.n_inputs
            and all(isinstance(f, str) for f in features)
        ):
            raise UserError(
                f"{path}: its scikit-learn record's feature_names_in is not {model.n_inputs} names"
            )
        features = tuple(features)
    target_type = fitted.get("target_type")
    classes = fitted.get("classes")
    if target_type not in ("binary", "multiclass") or classes is None:
        return features, None, target_type == "multilabel-indicator"
    values = classes.get("values") if isinstance(classes, dict) else None
    n = 2 if model.n_outputs == 1 else model.n_outputs
    names = (
        [str(v) for v in values]
        if isinstance(values, list)
        and all(isinstance(v, str | int) or (isinstance(v, float) and math.isfinite(v))
                for v in values)  # (JSON true is an int; 1e400 is read as inf)
        else []
    )  # fmt: skip
    if len(names) != n or len(set(names)) != n:
        raise UserError(f"{path}: its scikit-learn record's classes are not {n} distinct labels")
    return features, names, False


def model_outputs(
    model: MLP, X: Any, source: str, model_path: Any, rows_named: bool = True
) -> np.ndarray:
    """``model.predict(X)`` as a NumPy array ``(n_rows, n_outputs)``, every entry finite, in
    the target's units (a model trained on standardised targets has its scaling undone).

    Inputs beyond the model's dtype, outputs that overflow it inside the network (weights
    too large for the inputs, or inputs far beyond the training data), or predictions
    beyond float64 once in the target's units, are reported as one UserError naming
    ``source`` (the rows' origin) and, with ``rows_named``, the row (X's rows are the
    source's, in its order), instead of NumPy's overflow warnings followed by metrics of
    NaN or an ``inf`` printed as a prediction (``model_path`` names the model).
    """
    X = np.asarray(X)
    beyond = value_beyond(X, model.config.dtype, model.preprocessing, rows_named)
    if beyond is not None:  # (it was 'X has values beyond float32's range (first at index
        # [2, 1]: 9.9e+199)', an index into the standardised rows)
        raise UserError(f"{source}: {beyond} (the model is {model.config.dtype}: {model_path})")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        out = model.backend.to_numpy(model.predict(X))
    bad = ~np.isfinite(out).all(axis=1)
    first = f" (the first is row {int(np.argmax(bad)) + 1})" if rows_named else ""
    if bad.any():
        largest = max(float(np.abs(w).max()) for w in model.state_dict().values())
        inputs = float(np.abs(np.asarray(X, dtype=np.float64)).max())
        raise UserError(
            f"{model_path}: the outputs are NaN or inf for {int(bad.sum())} of {len(out)} rows of "
            f"{source}{first}: its weights (up to {largest:.3g} in magnitude) overflow "
            f"{model.config.dtype} on these inputs (up to {inputs:.3g} in magnitude"
            f"{_after_scaling(model)})"
        )
    with np.errstate(over="ignore"):
        values = in_target_units(model.preprocessing, out)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        pre = model.preprocessing
        assert pre is not None  # (without scaling the outputs were the predictions)
        first = f" (the first is row {int(np.argmax(bad)) + 1})" if rows_named else ""
        raise UserError(
            f"{model_path}: the predictions for {int(bad.sum())} of {len(out)} rows of {source}"
            f"{first} are beyond float64's range in the target's units (outputs up to "
            f"{float(np.abs(out).max()):.3g}, times the target's scale "
            f"{max(pre.target_scale):.3g}, plus its mean)"
        )
    return values


def value_beyond(
    X: np.ndarray, dtype: str, pre: Preprocessing | None, rows_named: bool = True
) -> str | None:
    """``"row 2, column 'b', is 1.4e+200 once standardised, beyond float32's range
    (3.4e+38)"`` for the first value of ``X`` (a model's inputs, standardised by ``pre``
    where it has one) beyond the range of ``dtype``; None where every value is within it.
    Only a float array wider than ``dtype`` can hold one (MNIST's float32 pixels against a
    float64 model's 1.8e308, cast to float32, was an overflow warning: the extremes are
    compared as Python floats); NaN is no such value."""
    if X.dtype.kind != "f" or X.dtype.itemsize <= np.dtype(dtype).itemsize or not X.size:
        return None
    largest = float(np.finfo(dtype).max)
    with np.errstate(invalid="ignore"):
        if not max(float(np.nanmax(X)), -float(np.nanmin(X))) > largest:
            return None
    i, j = (int(k) for k in np.argwhere(np.abs(X) > largest)[0])
    column = f"column {pre.feature_names[j]!r}" if pre is not None else f"input {j + 1}"
    scaled = " once standardised" if pre is not None else ""
    row = f"row {i + 1}" if rows_named else "a row"
    return f"{row}, {column}, is {X[i, j]:.6g}{scaled}, beyond {dtype}'s range ({largest:.3g})"


def _after_scaling(model: MLP) -> str:
    """Where ``model`` standardises its inputs: what the inputs' magnitudes are."""
    pre = model.preprocessing
    return "" if pre is None or all(s == 1 for s in pre.scale) else ", after the model's scaling"


def output_classes(out: np.ndarray) -> np.ndarray:
    """The class of each row of outputs, as :meth:`MLP.predict_classes` gives it: the
    largest output, or ``output > 0.5`` for a single output."""
    if out.shape[1] == 1:
        return (out[:, 0] > 0.5).astype(np.intp)
    return np.argmax(out, axis=1)


def is_classifier(model: MLP) -> bool:
    """A model is read as a classifier when it carries class labels, uses a cross-entropy
    loss, or squashes its outputs with sigmoid/softmax."""
    pre = model.preprocessing
    if pre is not None:
        return pre.classes is not None
    return model.config.loss in (
        "cross_entropy",
        "binary_cross_entropy",
    ) or model.config.output_activation in (
        "sigmoid",
        "softmax",
    )
