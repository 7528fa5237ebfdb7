"""The ``backprop`` command line: a thin layer over the library's public API.

One function per command (``train``, ``evaluate``, ``predict``, ``explain``, ``gradcheck``,
``export``); the options that several commands share are declared once, in the option
groups below. :func:`main` runs the command line in-process and returns the exit status:

- 0: success;
- 1: the command ran but failed (``gradcheck`` over tolerance, training diverged);
- 2: a user error (missing file, bad option value, unknown dataset, a file that is not a
  model...), reported as ONE line on stderr, never a traceback;
- 130: interrupted with Ctrl-C (training keeps the last completed epoch's model).

Set ``BACKPROP_DEBUG=1`` to see the traceback behind a one-line error.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
from click.core import ParameterSource

from ._version import __version__
from .activations import ACTIVATIONS
from .backend import BACKENDS
from .initializers import INITIALIZERS
from .losses import LOSSES
from .network import MLP, MLPConfig
from .optimizers import OPTIMIZERS, SCHEDULES, get_optimizer, get_schedule

__all__ = ["main", "cli"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.toml"
HISTORY_FILE = "history.csv"
SUMMARY_FILE = "summary.json"

#: Learning rate when --lr is not given: Nielsen's eta = 3.0 for plain SGD on the quadratic
#: (L2) cost, 0.5 for SGD on the other losses (his cross-entropy runs), the usual 1e-3 for
#: the adaptive methods.
DEFAULT_LR = {"sgd": (3.0, 0.5), "momentum": (0.5, 0.1), "nesterov": (0.5, 0.1)}
ADAPTIVE_LR = 1e-3


class UserError(click.ClickException):
    """A mistake in what the user asked for: one line on stderr, exit status 2."""

    exit_code = EXIT_USAGE


# ============================================================================ option types
class SizesType(click.ParamType):
    """``784,30,10`` (or a TOML list ``[784, 30, 10]``) -> ``(784, 30, 10)``."""

    name = "SIZES"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        items = value if isinstance(value, list) else str(value).split(",")
        sizes = []
        for item in items:
            text = str(item).strip()
            if isinstance(item, bool) or isinstance(item, float) or not text.isdigit():
                self.fail(
                    f"expected positive integers separated by commas, such as 2,3,2; got {value!r}",
                    param,
                    ctx,
                )
            sizes.append(int(text))
        if len(sizes) < 2 or min(sizes) < 1:
            self.fail(
                f"expected at least two positive sizes (inputs,...,outputs); got {value!r}",
                param,
                ctx,
            )
        return tuple(sizes)


def _apply(*decorators: Callable) -> Callable:
    """Stack option decorators so that a group of options is declared once."""

    def wrap(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f

    return wrap


def _choice(names: Sequence[str]) -> click.Choice:
    return click.Choice(list(names), case_sensitive=True)


def _dataset_help() -> str:
    from .datasets import DATASETS

    return (
        f"A built-in dataset ({', '.join(DATASETS)}) or a CSV file (with --target). [default: toy]"
    )


data_options = _apply(
    click.option("--dataset", "-d", metavar="NAME|FILE.csv", help=_dataset_help()),
    click.option("--target", metavar="COLUMN", help="The target column of a CSV dataset."),
    click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder with the data files (MNIST). [default: $BACKPROP_DATA, then a per-user cache]",
    ),
    click.option("--n-samples", type=click.IntRange(min=1), help="Rows of a generated dataset."),
    click.option("--noise", type=click.FloatRange(min=0.0), help="Noise of a generated dataset."),
    click.option(
        "--test-fraction",
        type=click.FloatRange(0.0, 1.0, max_open=True),
        help="Share of a dataset without a fixed test split held out for testing. [default: 0.25]",
    ),
)

model_options = _apply(
    click.option(
        "--layers",
        type=SizesType(),
        help="Units per layer, inputs first. "
        "[default: 2,3,2 on toy; n_features,30,n_outputs otherwise]",
    ),
    click.option(
        "--activation",
        type=_choice(ACTIVATIONS),
        help="Hidden-layer activation. [default: sigmoid]",
    ),
    click.option(
        "--output-activation",
        type=_choice(ACTIVATIONS),
        help="Output activation. [default: sigmoid; identity for regression and for the "
        "cross-entropy losses, which take logits]",
    ),
    click.option(
        "--loss", type=_choice(LOSSES), help="[default: l2 for classification, mse for regression]"
    ),
    click.option(
        "--init", type=_choice(INITIALIZERS), help="Weight initialiser. [default: normal]"
    ),
    click.option(
        "--init-scale",
        type=click.FloatRange(min=0.0, min_open=True),
        help="Std of 'normal' init. [default: 0.1]",
    ),
    click.option(
        "--dropout",
        type=click.FloatRange(0.0, 1.0, max_open=True),
        help="Dropout after hidden layers. [default: 0]",
    ),
    click.option("--dtype", type=_choice(("float64", "float32")), help="[default: float64]"),
    click.option(
        "--seed", type=int, help="Seed of the data, the weights and the shuffles. [default: 0]"
    ),
)

device_options = _apply(
    click.option("--backend", type=_choice(BACKENDS), help="Array library. [default: numpy]"),
    click.option(
        "--device", metavar="cpu|cuda", help="Device of the backend. [default: the backend's own]"
    ),
)

optimizer_options = _apply(
    click.option("--optimizer", type=_choice(OPTIMIZERS), help="[default: sgd]"),
    click.option(
        "--lr",
        type=click.FloatRange(min=0.0, min_open=True),
        help="Learning rate eta. [default: 3.0 for sgd with l2, 0.5 for sgd otherwise; "
        "0.5/0.1 for momentum and nesterov; 1e-3 for adam, adamw, rmsprop]",
    ),
    click.option(
        "--momentum",
        type=click.FloatRange(0.0, 1.0, max_open=True),
        help="momentum/nesterov. [default: 0.9]",
    ),
    click.option(
        "--beta1", type=click.FloatRange(0.0, 1.0, max_open=True), help="adam/adamw. [default: 0.9]"
    ),
    click.option(
        "--beta2",
        type=click.FloatRange(0.0, 1.0, max_open=True),
        help="adam/adamw. [default: 0.999]",
    ),
    click.option(
        "--weight-decay",
        type=click.FloatRange(min=0.0),
        help="L2 penalty lambda on the weights (decoupled for adamw). [default: 0; adamw 0.01]",
    ),
    click.option(
        "--schedule", type=_choice(SCHEDULES), help="Learning-rate schedule. [default: constant]"
    ),
    click.option(
        "--epochs", type=click.IntRange(min=1), help="[default: 300 on toy, 30 otherwise]"
    ),
    click.option("--batch-size", type=click.IntRange(min=1), help="[default: 10]"),
    click.option(
        "--validation-fraction",
        type=click.FloatRange(0.0, 1.0, max_open=True),
        help="Share of the training rows held out for validation. [default: 0.1]",
    ),
    click.option(
        "--early-stopping",
        type=click.IntRange(min=1),
        metavar="PATIENCE",
        help="Stop after this many epochs without a better validation loss; keep the best weights.",
    ),
    click.option(
        "--class-weight", type=_choice(("balanced",)), help="Weight classes by inverse frequency."
    ),
    click.option(
        "--checkpoint-every",
        type=click.IntRange(min=1),
        metavar="EPOCHS",
        help="Save a checkpoint (for --resume) every this many epochs. "
        "[default: epochs // 30, between 1 and 10]",
    ),
)

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read options from a TOML (or JSON) file; options on the command line override it.",
)

#: The options a config file may set (a run folder's config.toml holds all of them).
CONFIG_KEYS = (
    "dataset", "target", "data_dir", "n_samples", "noise", "test_fraction",
    "layers", "activation", "output_activation", "loss", "init", "init_scale", "dropout",
    "dtype", "seed", "backend", "device",
    "optimizer", "lr", "momentum", "beta1", "beta2", "weight_decay", "schedule", "epochs",
    "batch_size", "validation_fraction", "early_stopping", "class_weight", "checkpoint_every",
)  # fmt: skip


# ============================================================================ entry point
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(
    __version__, "--version", "-V", prog_name="backprop", message="%(prog)s %(version)s"
)
def cli() -> None:
    """Neural networks trained by backpropagation, from the terminal.

    \b
    Start here:
      backprop train            # the seed's 2-3-2 network on the toy data
      backprop explain          # one backprop step, every number shown
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    debug = os.environ.get("BACKPROP_DEBUG", "") not in ("", "0")
    try:
        rv = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="backprop",
            standalone_mode=False,
        )
    except click.exceptions.Abort:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except click.ClickException as e:
        if debug:
            raise
        _error(e.format_message())
        return EXIT_USAGE
    except (ValueError, OSError, ImportError) as e:
        # DatasetError, ModelFileError, ExplainError and the engine's checks are ValueErrors
        # that name the offending value; OSError: unreadable files; ImportError: an extra
        # that is not installed (the message names the pip command).
        if debug:
            raise
        _error(_one_line(e))
        return EXIT_USAGE
    return rv if isinstance(rv, int) else 0


def _one_line(e: BaseException) -> str:
    if isinstance(e, FileNotFoundError) and e.filename:
        return f"no such file or folder: {e.filename}"
    if isinstance(e, OSError) and e.strerror and e.filename:
        return f"{e.filename}: {e.strerror}"
    return " ".join(str(e).split()) or type(e).__name__


def _error(message: str) -> None:
    click.echo(f"Error: {' '.join(message.split())}", err=True)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)  # long lines are not broken mid-path


# ============================================================================ configuration
def _read_config(path: Path) -> dict[str, Any]:
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
    params = {p.name: p for p in train.params if p.name in CONFIG_KEYS}
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


def _given(ctx: click.Context, config_path: Path | None) -> dict[str, Any]:
    """The options the user chose: the config file's, overridden by the command line's."""
    values = _read_config(config_path) if config_path is not None else {}
    for name, value in ctx.params.items():
        if name in CONFIG_KEYS and ctx.get_parameter_source(name) not in (
            None,
            ParameterSource.DEFAULT,
        ):
            values[name] = value
    return values


def _load_data(values: dict[str, Any]) -> Any:
    """The dataset named by the options (``toy`` by default)."""
    from .datasets import load_dataset

    name = values.get("dataset") or "toy"
    kwargs = {
        k: values[k]
        for k in ("target", "data_dir", "n_samples", "noise", "test_fraction")
        if values.get(k) is not None
    }
    return load_dataset(name, seed=values.get("seed", 0), **kwargs)


def _default_lr(optimizer: str, loss: str) -> float:
    if optimizer in DEFAULT_LR:
        l2_lr, other_lr = DEFAULT_LR[optimizer]
        return l2_lr if loss == "l2" else other_lr
    return ADAPTIVE_LR


def _resolve(values: dict[str, Any], data: Any) -> dict[str, Any]:
    """The fully resolved configuration: every option, defaults filled in from the data."""
    classify = data.task == "classification"
    cfg = dict(values)
    cfg["dataset"] = values.get("dataset") or "toy"
    defaults = MLPConfig()
    hidden = 3 if data.name == "toy" else 30
    cfg.setdefault("layers", (data.n_features, hidden, data.n_outputs))
    sizes = cfg["layers"]
    if sizes[0] != data.n_features or sizes[-1] != data.n_outputs:
        raise UserError(
            f"--layers {','.join(map(str, sizes))} does not fit dataset {data.name}: it has "
            f"{data.n_features} input features and {data.n_outputs} outputs, so the layers must "
            f"start with {data.n_features} and end with {data.n_outputs}"
        )
    cfg.setdefault("activation", defaults.activation)
    cfg.setdefault("loss", "l2" if classify else "mse")
    from_logits = LOSSES[cfg["loss"]].from_logits
    if "output_activation" not in cfg:
        cfg["output_activation"] = (
            "identity" if (from_logits or not classify) else defaults.output_activation
        )
    elif from_logits and cfg["output_activation"] != "identity":
        link = LOSSES[cfg["loss"]].link
        raise UserError(
            f"--loss {cfg['loss']} takes logits and applies {link} itself, so the output "
            f"activation must be identity (got --output-activation {cfg['output_activation']}); "
            "leave --output-activation out"
        )
    cfg.setdefault("init", defaults.init)
    cfg.setdefault("init_scale", defaults.init_scale)
    cfg.setdefault("dropout", defaults.dropout)
    cfg.setdefault("dtype", defaults.dtype)
    cfg.setdefault("seed", 0)
    cfg.setdefault("backend", "numpy")
    cfg.setdefault("optimizer", "sgd")
    cfg.setdefault("lr", _default_lr(cfg["optimizer"], cfg["loss"]))
    cfg.setdefault("schedule", "constant")
    cfg.setdefault("epochs", 300 if data.name == "toy" else 30)
    cfg.setdefault("batch_size", 10)
    cfg.setdefault("validation_fraction", 0.1)
    cfg.setdefault("checkpoint_every", max(1, min(10, cfg["epochs"] // 30)))
    if str(cfg["dataset"]).lower().endswith(".csv"):
        cfg["dataset"] = str(Path(cfg["dataset"]).resolve())
    if cfg.get("data_dir") is not None:
        cfg["data_dir"] = str(Path(cfg["data_dir"]).resolve())
    return cfg


def _build_model(cfg: dict[str, Any]) -> MLP:
    try:
        return MLP(
            cfg["layers"],
            cfg["activation"],
            cfg["output_activation"],
            cfg["loss"],
            init=cfg["init"],
            init_scale=cfg["init_scale"],
            dropout=cfg["dropout"],
            dtype=cfg["dtype"],
            seed=cfg["seed"],
            backend=cfg["backend"],
            device=cfg.get("device"),
        )
    except (ImportError, RuntimeError) as e:  # a backend that is not installed / no GPU
        raise UserError(_one_line(e)) from None


def _build_optimizer(cfg: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {"lr": cfg["lr"]}
    for key in ("momentum", "beta1", "beta2", "weight_decay"):
        if cfg.get(key) is not None:
            kwargs[key] = cfg[key]
    if cfg["schedule"] == "cosine":
        kwargs["schedule"] = get_schedule("cosine", t_max=cfg["epochs"])
    else:
        kwargs["schedule"] = get_schedule(cfg["schedule"])
    for key, owners in (("momentum", ("momentum", "nesterov")), ("beta1", ("adam", "adamw")),
                        ("beta2", ("adam", "adamw"))):  # fmt: skip
        if key in kwargs and cfg["optimizer"] not in owners:
            raise UserError(
                f"--{key} applies to --optimizer {' or '.join(owners)}, not {cfg['optimizer']}"
            )
    try:
        return get_optimizer(cfg["optimizer"], **kwargs)
    except ValueError as e:
        raise UserError(f"--optimizer {cfg['optimizer']}: {_one_line(e)}") from None


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


# ============================================================================ run folder
def _make_run_dir(out: Path | None, dataset_name: str) -> Path:
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path("runs") / f"{stamp}-{Path(dataset_name).stem}"
        out, k = base, 2
        while out.exists():
            out, k = base.with_name(f"{base.name}-{k}"), k + 1
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; expected a folder for the run")
    if out.is_dir() and any(
        (out / f).exists() for f in (MODEL_FILE, SUMMARY_FILE, HISTORY_FILE, CONFIG_FILE)
    ):
        raise UserError(
            f"run folder {out} already holds a run; choose another --out, or continue it with "
            f"backprop train --resume {out}"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write_history(path: Path, rows: list[dict[str, float]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns or ["epoch"])
        writer.writeheader()
        writer.writerows(rows)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ============================================================================ metrics
def _is_classifier(model: MLP) -> bool:
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


def _split_metrics(
    model: MLP, X: np.ndarray, y: np.ndarray, T: np.ndarray, classify: bool
) -> dict[str, float]:
    """Loss and metrics of ``model`` on one split: ``accuracy`` (and macro precision and
    recall) for classifiers; ``mse``, ``mae``, ``r2`` for regression."""
    from . import metrics

    out = {"loss": model.loss(X, T)}
    if classify:
        pred = model.predict_classes(X)
        out["accuracy"] = float(metrics.accuracy(y, pred))
    else:
        pred = model.backend.to_numpy(model.predict(X))
        yt = np.asarray(y, dtype=np.float64).reshape(pred.shape)
        out["mse"] = float(metrics.mse(yt, pred))
        out["mae"] = float(metrics.mae(yt, pred))
        out["r2"] = float(metrics.r2_score(yt, pred))
    return out


def _validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): a seeded shuffle of ``range(n)`` cut at ``fraction``."""
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    perm = np.random.default_rng([int(seed), 0x7A11D]).permutation(n)
    n_val = min(n - 1, max(1, round(fraction * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


# ============================================================================ train
class _KeepLastEpoch:
    """Fit callback: remembers the last completed epoch's weights and the history, so that a
    Ctrl-C mid-epoch can save exactly that epoch's model and history.

    The weights, their epoch and the state are replaced together by one attribute store,
    which a signal cannot split (Python runs signal handlers between calls, not inside a
    store); the history is the run's live list, which may already hold the next epoch's row
    when Ctrl-C comes between that append and this callback, so :meth:`rows` cuts it at the
    kept epoch.
    """

    def __init__(self) -> None:
        self._kept: tuple[dict[str, np.ndarray], int, Any] | None = None

    def __call__(self, state: Any) -> None:
        self._kept = (state.model.state_dict(), state.epoch, state)

    @property
    def weights(self) -> dict[str, np.ndarray] | None:
        return None if self._kept is None else self._kept[0]

    @property
    def epoch(self) -> int:
        return 0 if self._kept is None else self._kept[1]

    @property
    def state(self) -> Any:
        return None if self._kept is None else self._kept[2]

    def rows(self) -> list[dict[str, float]]:
        """The history up to and including the kept epoch."""
        epoch = self.epoch
        return [row for row in self.state.history.epochs if row["epoch"] <= epoch]


@cli.command()
@data_options
@model_options
@device_options
@optimizer_options
@config_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Run folder. [default: runs/<timestamp>-<dataset>]",
)
@click.option(
    "--resume",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="RUN_DIR",
    help="Continue the run in RUN_DIR from its last checkpoint (--epochs may raise its target).",
)
@click.option(
    "--progress/--no-progress", default=True, help="Show a live progress bar. [default: on]"
)
@click.option(
    "--plots/--no-plots", default=True, help="Write PNG plots (needs matplotlib). [default: on]"
)
def train(**options: Any) -> int:
    """Train a network and write a run folder (model, history, summary, config, plots).

    With no options: the seed's 2-3-2 sigmoid network with L2 loss, trained by SGD on the
    built-in two-input, two-output toy data.

    \b
    Examples:
      backprop train
      backprop train --dataset moons --layers 2,16,2 --activation tanh --epochs 200
      backprop train --dataset mnist --layers 784,30,10 --lr 3 --epochs 30 --out runs/mnist
      backprop train --dataset data.csv --target species --loss cross_entropy --optimizer adam
      backprop train --config runs/mnist/config.toml --epochs 5 --out runs/again
      backprop train --resume runs/mnist --epochs 40
    """
    ctx = click.get_current_context()
    if options["resume"] is not None:
        return _train_resume(ctx, options)
    values = _given(ctx, options["config_path"])
    data = _load_data(values)
    cfg = _resolve(values, data)
    model = _build_model(cfg)
    if data.preprocessing is not None:
        model.preprocessing = data.preprocessing
    optimizer = _build_optimizer(cfg)
    run_dir = None
    if _is_main_process():
        run_dir = _make_run_dir(options["out"], data.name)
        (run_dir / CONFIG_FILE).write_text(config_to_toml(cfg), encoding="utf-8")
    return _run_training(model, data, cfg, run_dir, options, optimizer=optimizer, state=None)


def _is_main_process() -> bool:
    """False on the ranks other than 0 of an ``mpirun`` job: those write nothing."""
    from .training.mpi import is_main_process

    return is_main_process()


def _train_resume(ctx: click.Context, options: dict[str, Any]) -> int:
    run_dir: Path = options["resume"]
    allowed = {"resume", "epochs", "progress", "plots", "backend", "device"}
    extra = [
        name
        for name in ctx.params
        if name not in allowed
        and ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    ]
    if extra:
        flags = ", ".join("--" + n.replace("_", "-") for n in extra)
        raise UserError(
            f"--resume continues a run with the config saved in {run_dir}; {flags} cannot be "
            "changed (only --epochs, --progress, --plots, --backend, --device)"
        )
    if not (run_dir / CONFIG_FILE).is_file():
        raise UserError(f"{run_dir} is not a run folder: it has no {CONFIG_FILE}")
    from .io.checkpoint import checkpoint_path, load_checkpoint

    if not checkpoint_path(run_dir).is_file():
        raise UserError(
            f"{run_dir} holds no checkpoint ({checkpoint_path(run_dir).name}) to resume from"
        )
    values = _read_config(run_dir / CONFIG_FILE)
    for key in ("epochs", "backend", "device"):
        if options.get(key) is not None:
            values[key] = options[key]
    state, fit_config = load_checkpoint(
        run_dir, backend=values.get("backend", "numpy"), device=values.get("device")
    )
    data = _load_data(values)
    if fit_config.get("data_sha256") not in (None, data.sha256()):
        raise UserError(
            f"the training data of {data.name} differ from those the run in {run_dir} started on "
            f"(SHA-256 {data.sha256()[:12]}... instead of {str(fit_config['data_sha256'])[:12]}...)"
        )
    cfg = _resolve(values, data)
    if state.model.preprocessing is None and data.preprocessing is not None:
        state.model.preprocessing = data.preprocessing
    if state.epoch >= cfg["epochs"]:
        raise UserError(
            f"the run in {run_dir} has already trained {state.epoch} epochs; "
            f"pass --epochs N with N > {state.epoch} to train further"
        )
    if _is_main_process():
        (run_dir / CONFIG_FILE).write_text(config_to_toml(cfg), encoding="utf-8")
    state.history.stop_reason = ""  # the saved run's reason to stop no longer holds
    state.stop = False
    return _run_training(
        state.model,
        data,
        cfg,
        run_dir if _is_main_process() else None,
        options,
        optimizer=None,
        state=state,
    )


def _run_training(
    model: MLP,
    data: Any,
    cfg: dict[str, Any],
    run_dir: Path | None,
    options: dict[str, Any],
    *,
    optimizer: Any,
    state: Any,
) -> int:
    """Fit, then write the model, history, summary and plots into ``run_dir``.

    Under ``mpirun`` every rank trains (in step, see :mod:`backprop.distributed`) but only
    the main process writes the run folder and prints; ``run_dir`` is None on the others.
    """
    from .io import save_model
    from .training import TrainingDiverged, fit

    console = _console()
    classify = data.task == "classification"
    X, T = data.X_train, data.targets("train")
    tr, va = _validation_split(X.shape[0], cfg["validation_fraction"], cfg["seed"])
    validation = (X[va], T[va]) if va.size else None
    fit_kwargs = {
        "optimizer": optimizer if optimizer is not None else "sgd",
        "epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"],
        "seed": cfg["seed"],
        "validation_data": validation,
        "early_stopping": cfg.get("early_stopping"),
        "class_weight": cfg.get("class_weight"),
        "state": state,
    }
    if run_dir is None:
        try:
            fit(model, X[tr], T[tr], progress=False, **fit_kwargs)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except TrainingDiverged:
            return EXIT_FAILED
        return 0
    keep = _KeepLastEpoch()
    callbacks: list[Any] = [keep]
    checkpoint = _checkpoint_callback(run_dir, cfg, data.sha256())
    callbacks.append(checkpoint)
    if state is not None:
        keep(state)

    console.print(
        f"Network  {'-'.join(map(str, cfg['layers']))}, {cfg['activation']} hidden, "
        f"{cfg['output_activation']} output, loss {cfg['loss']}\n"
        f"Training {cfg['optimizer']}, lr {cfg['lr']:g}, batch {cfg['batch_size']}, "
        f"{cfg['epochs']} epochs"
        + (f", resuming after epoch {state.epoch}" if state is not None else "")
        + f"\nData     {data.name}: {tr.size} training rows, {va.size} validation, "
        f"{data.n_test} test"
    )
    console.print(f"Run      {run_dir}")
    model_path = run_dir / MODEL_FILE
    start_epoch = 0 if state is None else state.epoch
    start = time.perf_counter()
    try:
        history = fit(
            model,
            X[tr],
            T[tr],
            callbacks=callbacks,
            progress=options["progress"],
            **fit_kwargs,
        )
    except KeyboardInterrupt:
        weights, epoch = keep.weights, keep.epoch
        if weights is None:
            click.echo(
                f"Interrupted before the first epoch ended; no model saved in {run_dir}", err=True
            )
            return EXIT_INTERRUPTED
        model.load_state_dict(weights)
        save_model(model_path, model)
        _write_history(run_dir / HISTORY_FILE, keep.rows())
        saved = epoch - epoch % cfg["checkpoint_every"]
        resume = (
            f"; continue from epoch {saved} with: backprop train --resume {run_dir}"
            if saved > 0
            else ""
        )
        click.echo(
            f"Interrupted: kept the model of epoch {epoch} in {model_path}{resume}", err=True
        )
        return EXIT_INTERRUPTED
    except TrainingDiverged as e:
        save_model(model_path, model)
        _write_history(run_dir / HISTORY_FILE, e.history.epochs)
        _error(f"{_one_line(e)}; that model is in {model_path}")
        return EXIT_FAILED
    wall = time.perf_counter() - start
    if keep.state is not None:
        checkpoint.save(keep.state)
    save_model(model_path, model)
    _write_history(run_dir / HISTORY_FILE, history.epochs)

    epochs_run = len(history.epochs)
    epochs_now = epochs_run - start_epoch
    y = np.asarray(data.y_train)
    splits = {
        "train": _split_metrics(model, X[tr], y[tr], T[tr], classify),
        "validation": _split_metrics(model, X[va], y[va], T[va], classify) if va.size else {},
        "test": (
            _split_metrics(model, data.X_test, data.y_test, data.targets("test"), classify)
            if data.X_test is not None
            else {}
        ),
    }
    summary = {
        "dataset": data.name,
        "task": data.task,
        **splits,
        "epochs_run": epochs_run,
        "best_epoch": history.best_epoch,
        "stop_reason": history.stop_reason,
        "wall_time_s": round(wall, 4),
        "train_samples_per_s": round(tr.size * epochs_now / wall, 1) if wall > 0 else None,
        "n_train": int(tr.size),
        "n_validation": int(va.size),
        "n_test": data.n_test,
        "n_parameters": model.n_parameters,
        "seed": cfg["seed"],
        "backprop_version": __version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "data_sha256": data.sha256(),
        "model_file": MODEL_FILE,
    }
    _write_json(run_dir / SUMMARY_FILE, summary)
    written = _write_plots(run_dir, model, data, history.epochs, options["plots"], console)
    console.print(_summary_table(summary, run_dir, written))
    return 0


def _checkpoint_callback(run_dir: Path, cfg: dict[str, Any], data_sha256: str) -> Any:
    """A :class:`backprop.checkpoint.Checkpoint` saving into ``run_dir`` every
    ``checkpoint_every`` epochs, so that ``--resume`` can continue exactly."""
    from .io.checkpoint import Checkpoint

    fit_config = {
        "epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"],
        "seed": cfg["seed"],
        "early_stopping": cfg.get("early_stopping"),
        "class_weight": cfg.get("class_weight"),
        "data_sha256": data_sha256,
    }
    return Checkpoint(run_dir, every=cfg["checkpoint_every"], fit_config=fit_config)


def _write_plots(
    run_dir: Path, model: MLP, data: Any, rows: list[dict[str, float]], enabled: bool, console: Any
) -> list[str]:
    if not enabled:
        return []
    from . import plots

    if not plots.available():
        click.echo(plots.MISSING_MESSAGE, err=True)
        return []
    return plots.plot_run(run_dir, model, data, rows)


def _summary_table(summary: dict[str, Any], run_dir: Path, plots_written: list[str]) -> Any:
    """The metrics of each split as a table, then epochs, time and the files written."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    metric_names: list[str] = []
    for split in ("train", "validation", "test"):
        metric_names += [m for m in summary[split] if m not in metric_names]
    table = Table()
    table.add_column("")
    for name in metric_names:
        table.add_column(name, justify="right")
    for split in ("train", "validation", "test"):
        if summary[split]:
            table.add_row(split, *[_fmt_metric(m, summary[split].get(m)) for m in metric_names])
    files = [MODEL_FILE, HISTORY_FILE, SUMMARY_FILE, CONFIG_FILE, *plots_written]
    rate = summary["train_samples_per_s"]
    extra = Text(
        f"Epochs   {summary['epochs_run']} ({summary['stop_reason']})\n"
        f"Time     {summary['wall_time_s']:.2f} s"
        + (f", {rate:,.0f} training samples/s" if rate else "")
        + f"\nSaved in {run_dir}: {', '.join(files)}"
    )
    return Group(_titled(f"Trained on {summary['dataset']}", table), extra)


def _titled(title: str, table: Any) -> Any:
    """``table`` under a bold heading line (a rich table title would wrap to its width)."""
    from rich.console import Group
    from rich.text import Text

    return Group(Text(title, style="bold"), table)


def _fmt_metric(name: str, value: float | None) -> str:
    if value is None:
        return ""
    if name == "accuracy":
        return f"{100 * value:.2f}%"
    return f"{value:.4g}"


# ============================================================================ evaluate
def _load_model_file(path: Path, backend: str | None, device: str | None) -> MLP:
    from .io import load_model

    try:
        return load_model(path, backend=backend or "numpy", device=device)
    except (ImportError, RuntimeError) as e:  # a backend that is not installed / no GPU
        raise UserError(_one_line(e)) from None


def _model_inputs(
    model: MLP, data: Any, X: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of ``data`` as ``model`` expects them.

    When both the data and the model carry a scaling (CSV files, standardised tables), the
    rows are taken back to raw numbers with the data's scaling and standardised with the
    model's, columns matched by name, and labels matched by class name; otherwise the rows
    are used as they are.
    """
    pre, dpre = model.preprocessing, data.preprocessing
    if pre is not None and dpre is not None:
        missing = [f for f in pre.feature_names if f not in dpre.feature_names]
        if missing:
            raise UserError(
                f"dataset {data.name} lacks the feature columns {missing} the model was trained on"
            )
        raw = X * np.asarray(dpre.scale) + np.asarray(dpre.mean)
        order = [list(dpre.feature_names).index(f) for f in pre.feature_names]
        X = pre.transform(raw[:, order])
        if (
            data.task == "classification"
            and pre.classes is not None
            and data.class_names is not None
        ):
            unknown = sorted({data.class_names[k] for k in np.unique(y)} - set(pre.classes))
            if unknown:
                raise UserError(
                    f"dataset {data.name} has labels {unknown} the model was not trained on"
                )
            index = {c: k for k, c in enumerate(pre.classes)}
            y = np.array([index[data.class_names[k]] for k in y], dtype=np.int64)
    if X.shape[1] != model.n_inputs:
        raise UserError(
            f"the model expects {model.n_inputs} input features but dataset {data.name} "
            f"has {X.shape[1]}"
        )
    return X, y


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@data_options
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the dataset's split (as in train).",
)
@click.option("--split", type=_choice(("test", "train")), default="test", show_default=True)
@device_options
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
def evaluate(model_path: Path, split: str, as_json: bool, **options: Any) -> int:
    """Print a model's metrics (and confusion matrix) on a dataset's test or training split.

    Use the same --dataset, --seed and --test-fraction as the training run to get the same
    split. Models trained on a CSV file apply their own scaling to the file's rows.

    \b
    Examples:
      backprop evaluate runs/mnist/model.safetensors --dataset mnist
      backprop evaluate runs/iris/model.safetensors --dataset iris.csv --target species
    """
    from . import metrics

    model = _load_model_file(model_path, options["backend"], options["device"])
    values = {k: v for k, v in options.items() if v is not None}
    pre = model.preprocessing
    if (
        values.get("target") is None
        and pre is not None
        and pre.target is not None
        and str(values.get("dataset", "")).lower().endswith(".csv")
    ):
        values["target"] = pre.target
    data = _load_data(values)
    if split == "test":
        if data.X_test is None:
            raise UserError(
                f"dataset {data.name} has no test split (--test-fraction 0); use --split train"
            )
        X, y = data.X_test, data.y_test
    else:
        X, y = data.X_train, data.y_train
    X, y = _model_inputs(model, data, X, np.asarray(y))
    classify = data.task == "classification"
    if classify and model.n_outputs != data.n_classes:
        raise UserError(
            f"the model has {model.n_outputs} outputs but dataset {data.name} "
            f"has {data.n_classes} classes"
        )
    if classify:
        names = (
            list(pre.classes) if pre is not None and pre.classes is not None else data.class_names
        )
        report = metrics.classification_report(y, model.predict_classes(X), names)
    else:
        pred = model.backend.to_numpy(model.predict(X))
        report = metrics.regression_report(
            np.asarray(y, dtype=np.float64).reshape(pred.shape), pred
        )
    report = {"dataset": data.name, "split": split, **report}
    if as_json:
        click.echo(json.dumps(report))
        return 0
    console = _console()
    console.print(_report_tables(report, classify))
    return 0


def _report_tables(report: dict[str, Any], classify: bool) -> Any:
    from rich.console import Group
    from rich.table import Table

    title = f"{report['dataset']}, {report['split']} split, {report['n_samples']} rows"
    if not classify:
        table = Table()
        for name in ("mse", "mae", "r2"):
            table.add_column(name, justify="right")
        table.add_row(*[f"{report[m]:.6g}" for m in ("mse", "mae", "r2")])
        return _titled(title, table)
    head = Table()
    for name in ("accuracy", "macro precision", "macro recall", "macro F1"):
        head.add_column(name, justify="right")
    head.add_row(
        f"{100 * report['accuracy']:.2f}%",
        *[f"{report[k]:.4f}" for k in ("macro_precision", "macro_recall", "macro_f1")],
    )
    names = [c["class"] for c in report["per_class"]]
    cm = Table()
    cm.add_column("true \\ pred")
    for n in names:
        cm.add_column(n, justify="right")
    cm.add_column("recall", justify="right")
    for name, row, pc in zip(names, report["confusion_matrix"], report["per_class"], strict=True):
        cm.add_row(name, *[str(v) for v in row], f"{pc['recall']:.3f}")
    cm.add_row(
        "precision", *[f"{pc['precision']:.3f}" for pc in report["per_class"]], "", end_section=True
    )
    return Group(
        _titled(title, head),
        _titled("Confusion matrix (rows: true class, columns: predicted)", cm),
    )


# ============================================================================ predict
@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("input_path", metavar="INPUT.csv", type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of stdout.",
)
@device_options
def predict(model_path: Path, input_path: Path, output: Path | None, **options: Any) -> int:
    """Predict for the rows of a CSV file: labels and class probabilities, or regression outputs.

    INPUT.csv has a header row. A model trained on a CSV file picks its feature columns by
    name (others, such as the target, are ignored) and applies its own scaling; otherwise
    every column is an input, in order.

    \b
    Examples:
      backprop predict runs/iris/model.safetensors new_flowers.csv
      backprop predict runs/iris/model.safetensors new_flowers.csv --output predictions.csv
    """
    from .datasets import read_csv_features

    model = _load_model_file(model_path, options["backend"], options["device"])
    if output is not None and output.resolve() == input_path.resolve():
        raise UserError(f"--output {output} is the input file; choose another file")
    if not input_path.is_file():
        raise UserError(f"input file {input_path} does not exist")
    X = read_csv_features(input_path, model.preprocessing)
    if X.shape[1] != model.n_inputs:
        raise UserError(
            f"{input_path} has {X.shape[1]} columns but the model expects {model.n_inputs} inputs"
        )
    out = model.backend.to_numpy(model.predict(X))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    pre = model.preprocessing
    if _is_classifier(model):
        names = (
            list(pre.classes)
            if pre is not None and pre.classes is not None
            else [str(k) for k in range(model.n_outputs)]
        )
        if len(names) != out.shape[1]:
            names = [str(k) for k in range(out.shape[1])]
        labels = model.predict_classes(X)
        writer.writerow(["label", *[f"p_{n}" for n in names]])
        for k, row in zip(labels, out, strict=True):
            writer.writerow([names[k], *[f"{v:.9g}" for v in row]])
    else:
        if pre is not None and pre.target is not None and out.shape[1] == 1:
            columns = [pre.target]
        else:
            columns = [f"output_{j + 1}" for j in range(out.shape[1])]
        writer.writerow(columns)
        writer.writerows([[f"{v:.9g}" for v in row] for row in out])
    if output is None:
        click.echo(buffer.getvalue(), nl=False)
    else:
        output.write_text(buffer.getvalue(), encoding="utf-8")
        click.echo(f"Wrote {out.shape[0]} predictions to {output}", err=True)
    return 0


# ============================================================================ explain
@cli.command()
@click.option("--x", "x_text", metavar="X1,X2", help="Inputs. [default: 0.05,0.10]")
@click.option("--t", "t_text", metavar="T1,T2", help="Targets. [default: 0.01,0.99]")
@click.option("--eta", type=click.FloatRange(min=0.0), help="Learning rate. [default: 0.5]")
@click.option(
    "--weights",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.json",
    help="JSON with keys w, b1, u, b2 (nested lists; w[i][j] joins input i to hidden unit j).",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Successive steps to take.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the step as one JSON object (a list for --steps > 1).",
)
def explain(
    x_text: str | None,
    t_text: str | None,
    eta: float | None,
    weights: Path | None,
    steps: int,
    as_json: bool,
) -> int:
    """Print one full backprop step of the seed's 2-3-2 network, every number shown.

    Forward pass a(1), h, a(2), y and the loss L; the output deltas; dL/du_ij = delta_j h_i;
    dL/dh_j as the sum over outputs; the hidden deltas; dL/dw_ij = delta_j x_i; the bias
    gradients; every updated weight; and beside each gradient its finite-difference
    estimate. Defaults: backprop.reference.SEED_EXAMPLE.

    \b
    Examples:
      backprop explain
      backprop explain --x 0.05,0.10 --t 0.01,0.99 --eta 0.5 --steps 5
      backprop explain --weights my_weights.json --json
    """
    from .explain import example_inputs, load_weights, parse_vector, print_explanation, run_steps

    p = example_inputs()
    if x_text is not None:
        p["x"] = parse_vector(x_text, "--x")
    if t_text is not None:
        p["t"] = parse_vector(t_text, "--t")
    if eta is not None:
        p["eta"] = eta
    if weights is not None:
        p.update(load_weights(weights))
    trace = run_steps(p["x"], p["t"], p["w"], p["b1"], p["u"], p["b2"], p["eta"], steps)
    if as_json:
        objs = [s.to_dict() for s in trace]
        click.echo(json.dumps(objs[0] if steps == 1 else objs))
        return 0
    print_explanation(trace, _console())
    return 0


# ============================================================================ gradcheck
@cli.command()
@data_options
@model_options
@device_options
@config_option
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Training rows to check on.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0.0, min_open=True),
    help="Largest relative error accepted. [default: 1e-6 in float64, 1e-2 in float32]",
)
def gradcheck(samples: int, tolerance: float | None, **options: Any) -> int:
    """Check the network's gradients against central finite differences, per parameter.

    The network is configured by the same options as train (and --config). Exit status 1
    when any relative error exceeds --tolerance.

    \b
    Examples:
      backprop gradcheck
      backprop gradcheck --dataset iris --layers 4,8,8,3 --activation tanh --loss cross_entropy
    """
    from rich.table import Table

    from .gradcheck import gradcheck as check_gradients

    ctx = click.get_current_context()
    values = _given(ctx, options["config_path"])
    data = _load_data(values)
    cfg = _resolve(values, data)
    model = _build_model(cfg)
    n = min(samples, data.X_train.shape[0])
    results = check_gradients(model, data.X_train[:n], data.targets("train")[:n])
    tol = tolerance if tolerance is not None else (1e-6 if cfg["dtype"] == "float64" else 1e-2)
    title = (
        f"Gradient check: {'-'.join(map(str, cfg['layers']))} {cfg['activation']}/"
        f"{cfg['output_activation']}, loss {cfg['loss']}, {cfg['dtype']}, {n} rows of {data.name}"
    )
    table = Table()
    for col in ("parameter", "shape", "max rel. error", "max abs. error", ""):
        table.add_column(col, justify="right" if col not in ("parameter", "") else "left")
    failed = 0
    for r in results:
        ok = r.max_rel_error <= tol
        failed += not ok
        table.add_row(
            r.name,
            "x".join(map(str, r.shape)),
            f"{r.max_rel_error:.2e}",
            f"{r.max_abs_error:.2e}",
            "ok" if ok else "FAIL",
        )
    console = _console()
    console.print(_titled(title, table))
    if failed:
        console.print(f"{failed} of {len(results)} parameter arrays exceed the tolerance {tol:g}")
        return EXIT_FAILED
    console.print(f"All {len(results)} parameter arrays within the tolerance {tol:g}")
    return 0


# ============================================================================ export
@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("out_path", metavar="OUT.onnx", type=click.Path(dir_okay=False, path_type=Path))
def export(model_path: Path, out_path: Path) -> int:
    """Export a model to ONNX (input scaling folded in); needs pip install 'backprop[onnx]'.

    \b
    Example:
      backprop export runs/mnist/model.safetensors mnist.onnx
    """
    model = _load_model_file(model_path, None, None)
    try:
        from .io.onnx_export import export_onnx

        export_onnx(model, out_path)
    except ImportError as e:
        raise UserError(
            f"ONNX export needs onnx: pip install 'backprop[onnx]' ({_one_line(e)})"
        ) from None
    click.echo(f"Wrote {out_path}")
    return 0
