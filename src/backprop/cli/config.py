"""From options to a run: a config file read and written (TOML), every default resolved
from the data, and the model, optimizer and data set built from the result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
from click.core import ParameterSource

from ..datasets import load_dataset
from ..io import load_model
from ..losses import LOSSES
from ..network import MLP
from ..optimizers import OPTIMIZERS, get_optimizer, get_schedule
from ..training import EarlyStopping
from .app import UserError, one_line
from .options import CONFIG_KEYS, CONFIG_PARAMS, optimizers_taking

__all__ = [
    "ADAPTIVE_LR",
    "CSV_CLASSIFICATION",
    "CSV_REGRESSION",
    "DATASET_RECIPES",
    "DEFAULT_LR",
    "LEGACY_CONFIG",
    "Recipe",
    "build_model",
    "build_optimizer",
    "config_to_toml",
    "default_lr",
    "early_stopping_callback",
    "given_options",
    "is_classifier",
    "load_data",
    "load_model_file",
    "read_config",
    "recipe_for",
    "resolve",
    "validation_split",
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


#: The tutorial's network on its toy data: `backprop train` with no options, unchanged.
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


def recipe_for(data: Any) -> Recipe:
    """The recipe of a loaded data set: its own, or the CSV one for its task."""
    if data.name in DATASET_RECIPES:
        return DATASET_RECIPES[data.name]
    return CSV_CLASSIFICATION if data.task == "classification" else CSV_REGRESSION


def read_config(path: Path) -> dict[str, Any]:
    """Options from a TOML (Python 3.11+: tomllib) or JSON file, converted and checked by the
    same types as the command-line options."""
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    text = path.read_bytes()
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"config file {path} is not valid JSON: {e}") from None
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ImportError:
                raise UserError(
                    "--config with a TOML file needs Python 3.11+ (or pip install tomli)"
                ) from None
        try:
            raw = tomllib.loads(text.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"config file {path} is not valid TOML: {e}") from None
    if not isinstance(raw, dict):
        raise UserError(f"config file {path} must hold a table of options")
    params = CONFIG_PARAMS
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in params:
            raise UserError(
                f"config file {path}: unknown option {key!r}; "
                f"expected some of {', '.join(CONFIG_KEYS)}"
            )
        param = params[name]
        try:
            out[name] = param.type.convert(value, param, None)
        except click.BadParameter as e:
            raise UserError(f"config file {path}: {key} = {value!r}: {e.message}") from None
    return out


def given_options(ctx: click.Context, config_path: Path | None) -> dict[str, Any]:
    """The options the user chose: the config file's, overridden by the command line's."""
    values = read_config(config_path) if config_path is not None else {}
    for name, value in ctx.params.items():
        if name in CONFIG_KEYS and ctx.get_parameter_source(name) not in (
            None,
            ParameterSource.DEFAULT,
        ):
            values[name] = value
    return values


def load_data(values: dict[str, Any]) -> Any:
    """The dataset named by the options (``toy`` by default)."""
    name = values.get("dataset") or "toy"
    kwargs = {
        k: values[k]
        for k in ("target", "data_dir", "n_samples", "noise", "test_fraction")
        if values.get(k) is not None
    }
    return load_dataset(name, seed=values.get("seed", 0), **kwargs)


def default_lr(optimizer: str, loss: str) -> float:
    if optimizer in DEFAULT_LR:
        l2_lr, other_lr = DEFAULT_LR[optimizer]
        return l2_lr if loss == "l2" else other_lr
    return ADAPTIVE_LR


def resolve(values: dict[str, Any], data: Any) -> dict[str, Any]:
    """The fully resolved configuration: every option, defaults filled in from the data
    set's :class:`Recipe` (``recipe_for(data)``)."""
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
    cfg.setdefault("activation", recipe.activation)
    cfg.setdefault("loss", recipe.loss or ("cross_entropy" if classify else "mse"))
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
    if recipe.weight_decay and cfg.get("weight_decay") is None:
        cfg["weight_decay"] = recipe.weight_decay
    cfg.setdefault("schedule", "constant")
    cfg.setdefault("epochs", recipe.epochs)
    cfg.setdefault("batch_size", recipe.batch_size)
    cfg.setdefault("validation_fraction", 0.1)
    cfg.setdefault("early_stopping", recipe.early_stopping)
    cfg.setdefault("monitor", "val_loss")
    columns = ("loss", "val_loss") + (("accuracy", "val_accuracy") if classify else ())
    if cfg["monitor"] not in columns:
        raise UserError(
            f"--monitor {cfg['monitor']} is not a column of this run's history; expected one "
            f"of {', '.join(columns)}"
        )
    cfg.setdefault("monitor_mode", "auto")
    cfg.setdefault("restore_best", True)
    cfg.setdefault("target_scaling", "none" if classify else "standard")
    cfg.setdefault("checkpoint_every", max(1, min(10, cfg["epochs"] // 30)))
    if str(cfg["dataset"]).lower().endswith(".csv"):
        cfg["dataset"] = str(Path(cfg["dataset"]).resolve())
    if cfg.get("data_dir") is not None:
        cfg["data_dir"] = str(Path(cfg["data_dir"]).resolve())
    return cfg


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


def validation_split(n: int, fraction: float, seed: int) -> tuple[Any, Any]:
    """Indices (train, validation): a seeded shuffle of ``range(n)`` cut at ``fraction``
    (what ``train`` holds out of the training rows)."""
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    perm = np.random.default_rng([int(seed), 0x7A11D]).permutation(n)
    n_val = min(n - 1, max(1, round(fraction * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def build_model(cfg: dict[str, Any]) -> MLP:
    try:
        return MLP(
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
    except (ImportError, RuntimeError) as e:  # a backend that is not installed / no GPU
        raise UserError(one_line(e)) from None


def build_optimizer(cfg: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {"lr": cfg["lr"]}
    for key in ("momentum", "beta1", "beta2", "weight_decay"):
        if cfg.get(key) is not None:
            kwargs[key] = cfg[key]
    if cfg["schedule"] == "cosine":
        kwargs["schedule"] = get_schedule("cosine", t_max=cfg["epochs"])
    else:
        kwargs["schedule"] = get_schedule(cfg["schedule"])
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
    return json.dumps(str(value))  # JSON's escapes are valid in a TOML basic string


def config_to_toml(cfg: dict[str, Any]) -> str:
    """The resolved configuration as TOML that ``--config`` reads back (None values omitted)."""
    lines = ["# backprop train: the fully resolved configuration of this run.",
             "# Re-run it with: backprop train --config config.toml --out NEW_DIR"]  # fmt: skip
    for key in CONFIG_KEYS:
        if cfg.get(key) is not None:
            lines.append(f"{key} = {_toml_value(cfg[key])}")
    return "\n".join(lines) + "\n"


def load_model_file(path: Path, backend: str | None, device: str | None) -> MLP:
    try:
        return load_model(path, backend=backend or "numpy", device=device)
    except (ImportError, RuntimeError) as e:  # a backend that is not installed / no GPU
        raise UserError(one_line(e)) from None


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
