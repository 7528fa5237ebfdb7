"""``backprop train``: train a network and write a run folder; ``--resume`` continues one."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np
from click.core import ParameterSource

from ... import metrics
from ..._interrupts import deferred, raise_if_swallowed
from ..._validation import short_repr as _short
from ..._version import __version__
from ...formatting import command, plural
from ...initializers import SCALED_INITIALIZERS
from ...io import WriteError, save_model
from ...io.checkpoint import checkpoint_path, load_checkpoint
from ...network import MLP
from ...optimizers import CosineLR
from ...preprocessing import in_target_units
from ...training import Callback, TrainingDiverged, fit
from ...training.epochs import end_of_epochs, restore_best_weights
from ...training.mpi import RankFailure, get_world, is_main_process, launched_world_size
from ..app import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UserError,
    cli,
    make_console,
    one_line,
    print_error,
    silence_stdout,
)
from ..config import (
    LEGACY_SPLIT,
    UNCHOSEN,
    backend_errors,
    build_model,
    build_optimizer,
    chosen_in_file,
    config_to_toml,
    early_stopping_callback,
    given_options,
    load_data,
    no_test_split,
    read_config,
    recipe_for,
    resolve,
    run_config_values,
    validation_rows,
    value_beyond,
)
from ..handles import models_task
from ..options import (
    PathValue,
    config_option,
    data_options,
    device_options,
    model_options,
    optimizer_options,
)
from ..plots import PLOT_FILES, require_importable
from ..render import run_header, summary_table
from ..run_folder import (
    CONFIG_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    RUNS_DIR,
    SUMMARY_FILE,
    checkpoint_callback,
    lock_run_dir,
    make_run_dir,
    missing_folders,
    read_summary,
    release_unused_claim,
    run_config,
    write_config,
    write_history,
    write_json,
    write_plots,
)

__all__ = ["KeepLastEpoch", "train"]


@np.errstate(over="ignore", invalid="ignore", divide="ignore")  # overflow: inf, then null
def _split_metrics(
    model: MLP, X: np.ndarray, y: np.ndarray, T: np.ndarray, classify: bool
) -> dict[str, float]:
    """Loss and metrics of ``model`` on one split: ``accuracy`` for classifiers (``evaluate``
    adds precision, recall and F1); ``mse``, ``mae``, ``r2`` for regression, on the predictions in
    the target's units. ``T``: the targets the model trains on (standardised with target
    scaling), for the loss."""
    out = {"loss": model.loss(X, T)}
    if classify:
        pred = model.predict_classes(X)
        out["accuracy"] = float(metrics.accuracy(y, pred))
    else:
        pred = in_target_units(model.preprocessing, model.backend.to_numpy(model.predict(X)))
        yt = np.asarray(y, dtype=np.float64).reshape(pred.shape)
        if not np.isfinite(pred).all():  # predictions beyond float64 in the target's units:
            # infinitely wrong (the metrics refuse them: the run ended without its summary)
            out.update(mse=math.inf, mae=math.inf, r2=-math.inf)
            return out
        out["mse"] = float(metrics.mse(yt, pred))
        out["mae"] = float(metrics.mae(yt, pred))
        out["r2"] = float(metrics.r2_score(yt, pred))
    return out


def _targets(model: MLP, data: Any, split: str) -> np.ndarray:
    """The targets the model trains on: the data's, standardised with the model's target
    scaling when it has one."""
    T = data.targets(split)
    pre = model.preprocessing
    return T if pre is None or not pre.scales_targets else pre.scale_targets(T)


def _naming_the_config_file(
    e: UserError, ctx: click.Context, config_path: Path | None
) -> UserError:
    """``e``, saying where its option came from when that was the config file, not the
    command line ('--step-size applies to --schedule step, not exponential' to someone who
    typed only --schedule exponential over a config file that set step_size)."""
    message = e.format_message()
    m = re.match(r"--([a-z][\w-]*)", message)
    if config_path is None or m is None:
        return e
    name = m.group(1).replace("-", "_")
    if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
        return e
    if name not in read_config(config_path):  # (a recipe's default: from neither)
        return e
    return UserError(f"{message} (--{m.group(1)} is set in the config file {config_path})")


def _refuse_options_that_do_nothing(
    ctx: click.Context, cfg: dict[str, Any], config_path: Path | None, data: Any
) -> None:
    """Options chosen, on the command line or in a config file of one's own, that this run
    would ignore: --init-scale with an initialiser that takes its scale from the layer sizes,
    the early-stopping options with early stopping off, --validation-split with no
    validation rows. (They ran, and config.toml recorded them as if they had mattered.) A
    run's config.toml, which records them all, is left alone, and so is a file's value that
    is the one a run records when nobody chose it (an edited copy of a run's file)."""
    recorded = {"init_scale": recipe_for(data).init_scale, **UNCHOSEN}
    in_file = chosen_in_file(config_path)
    typed = {
        name
        for name in recorded
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
        or (name in in_file and cfg[name] != recorded[name])
    }
    if "validation_split" in typed and not cfg["validation_fraction"]:
        raise UserError(
            "--validation-split says how validation rows are drawn, and "
            "--validation-fraction 0 holds none out; leave one of them out"
        )
    if "init_scale" in typed and cfg["init"] not in SCALED_INITIALIZERS:
        raise UserError(
            f"--init-scale applies to --init {' or '.join(SCALED_INITIALIZERS)}, not "
            f"{cfg['init']}, which takes its scale from the layer sizes"
        )
    early = typed & {"monitor", "monitor_mode", "restore_best"}
    if early and not cfg["early_stopping"]:
        names = {"monitor": "--monitor", "monitor_mode": "--monitor-mode",
                 "restore_best": "--restore-best/--keep-last"}  # fmt: skip
        raise UserError(
            f"{', '.join(names[n] for n in sorted(early))} "
            f"{'applies' if len(early) == 1 else 'apply'} with early stopping, which is off in "
            "this run; give --early-stopping PATIENCE too"
        )


class _FolderStillThere(Callback):
    """Stops a run whose folder was deleted or replaced while it trained, before anything
    more is written there by path: ``rm -rf D`` during a run, then a new run into D, and the
    two wrote into one folder (the new run's config.toml beside this one's model; its own
    run lost without a word)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.identity = _identity(run_dir)

    def on_epoch_end(self, state: Any) -> None:
        self.check(state.epoch)

    def check(self, epoch: int) -> None:
        """UserError once ``run_dir`` is not the folder this run started in."""
        if _identity(self.run_dir) != self.identity:
            raise UserError(
                f"run folder {self.run_dir} was deleted or replaced while this run trained "
                f"(after epoch {epoch}); stopped without writing there: its epochs are lost"
            )


def _identity(folder: Path) -> tuple[int, int] | None:
    """The folder's (device, inode), None where there is none."""
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class KeepLastEpoch:
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
        raise_if_swallowed()  # a Ctrl-C dropped inside a callback stops the run here

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


@cli.command(short_help="Train a network and write a run folder.")
@data_options
@model_options
@device_options
@optimizer_options
@config_option
@click.option(
    "--out",
    type=PathValue(),
    help="Run folder. [default: runs/<timestamp>-<dataset>]",
)
@click.option(
    "--resume",
    type=PathValue(file_okay=False),
    metavar="RUN_DIR",
    help="Continue the run in RUN_DIR from its last checkpoint (--epochs may raise its target, "
    "but not a cosine schedule's).",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    help="Show a live progress bar and a line per epoch. [default: on]",
)
@click.option("--plots/--no-plots", default=True, help="Write PNG plots. [default: on]")
def train(**options: Any) -> int:
    """Train a network and write a run folder (model, history, summary, config, checkpoint,
    plots).

    With no options: the tutorial's 2-3-2 sigmoid network with L2 loss, trained by SGD on the
    built-in two-input, two-output toy data. Any other data set gets defaults that learn (a
    network, Adam's learning rate, an epoch budget, and early stopping except on mnist1d;
    docs/defaults.md). --resume continues a run that was interrupted (Ctrl-C) where its
    checkpoint left it.

    \b
    Examples:
      backprop train
      backprop train --dataset moons --layers 2,16,2 --epochs 200
      backprop train --dataset mnist --out runs/mnist
      backprop train --dataset data.csv --target species
      backprop train --config runs/mnist/config.toml --epochs 5 --out runs/again
      backprop train --resume runs/mnist
    """
    ctx = click.get_current_context()
    if options["plots"]:
        require_importable()
    if options["resume"] is not None:
        return _train_resume(ctx, options)
    values = given_options(ctx, options["config_path"])
    try:
        data = load_data(values)
        _refuse_a_constant_target(data)
        cfg = resolve(values, data)
        _refuse_options_that_do_nothing(ctx, cfg, options["config_path"], data)
        model = build_model(cfg)
        optimizer = build_optimizer(cfg)
    except UserError as e:
        raise _naming_the_config_file(e, ctx, options["config_path"]) from None
    if data.preprocessing is not None:
        model.preprocessing = data.preprocessing
        if data.task == "regression" and cfg["target_scaling"] == "standard":
            # measured on the training split, the rows the features' scaling comes from
            model.preprocessing = data.preprocessing.with_target_scaling(data.y_train)
    _refuse_inputs_beyond_the_dtype(model, data)

    def claim() -> Path:
        out, config_text = options["out"], config_to_toml(cfg)
        new = missing_folders(RUNS_DIR if out is None else out)
        # a Ctrl-C waits until the claim can be released: one between the folder's making
        # and the release's registration left it holding config.toml alone, refused as --out
        with deferred():
            run_dir = make_run_dir(out, data.name, config_text, options["plots"])
            ctx.call_on_close(lock_run_dir(run_dir).release)  # held until the command ends
            # (run before the lock's release: close callbacks run last-registered first)
            created = new if out is not None else [Path(os.path.realpath(run_dir)), *new]
            ctx.call_on_close(lambda: release_unused_claim(run_dir, config_text, created))
        return run_dir

    run_dir = _on_the_main_process(claim)
    return _run_training(model, data, cfg, run_dir, options, optimizer=optimizer, state=None)


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
        opts = {  # the long flag (both of an on/off pair), not the parameter's name
            p.name: "/".join([max(p.opts, key=len), *p.secondary_opts]) for p in ctx.command.params
        }
        flags = ", ".join(opts[n] for n in extra)
        raise UserError(
            f"--resume continues a run with the config saved in {run_dir}; {flags} cannot be "
            "changed (only --epochs, --progress, --plots, --backend, --device)"
        )
    if not run_dir.is_dir():
        raise UserError(f"--resume {run_dir}: no such folder")
    if not os.path.lexists(run_dir / CONFIG_FILE):
        raise UserError(f"{run_dir} is not a run folder: it has no {CONFIG_FILE}")
    # locked first: a run still training before its first checkpoint is 'in use', not one
    # that 'stopped before its first checkpoint'
    _on_the_main_process(lambda: ctx.call_on_close(lock_run_dir(run_dir).release))  # to the end
    if not os.path.lexists(checkpoint_path(run_dir)):
        raise UserError(
            f"{run_dir} holds no checkpoint ({checkpoint_path(run_dir).name}) to resume from: "
            "its run stopped before its first checkpoint; start it again with another --out"
        )
    values = run_config_values(run_dir / CONFIG_FILE)  # (LEGACY_CONFIG for an older run's)
    run_epochs = values.get("epochs")
    for key in ("epochs", "backend", "device"):
        if options.get(key) is not None:
            values[key] = options[key]
    with backend_errors():  # a run trained on a GPU, resumed where there is none
        state, fit_config = load_checkpoint(
            run_dir, backend=values.get("backend", "numpy"), device=values.get("device")
        )
    data = load_data(models_task(values, state.model))  # (config.toml may not name it)
    if fit_config.get("data_sha256") not in (None, data.sha256()):
        raise UserError(
            f"the training data of {data.name} differ from those the run in {run_dir} started on "
            f"(SHA-256 {data.sha256()[:12]}... instead of {str(fit_config['data_sha256'])[:12]}...)"
        )
    cfg = resolve(values, data)
    _check_config_unchanged(run_dir, cfg, fit_config.get("run_config"))
    _check_optimizer_unchanged(run_dir, cfg, state.optimizer)
    if state.model.preprocessing is None and data.preprocessing is not None:
        state.model.preprocessing = data.preprocessing
    # ended by its own epochs (config.toml's), not by an --epochs typed below them (with no
    # model file yet, --epochs 5 ended a run of 300 at its checkpoint's epoch 84)
    ended = state.stop or state.epoch >= max(cfg["epochs"], run_epochs or 0)
    if ended and not _files_written(run_dir, state.epoch):
        # the run ended, but writing its files did not (a disk that filled at the very
        # end, a kill after the last checkpoint): the checkpoint holds the model; the run's
        # files are written from it without training further
        click.echo(
            f"The run in {run_dir} ended after epoch {state.epoch} without writing all its "
            "files; writing them from the checkpoint",
            err=True,
        )
        return _run_training(
            state.model, data, cfg, run_dir if is_main_process() else None, options,
            optimizer=None, state=state,
        )  # fmt: skip
    if state.stop:
        raise UserError(
            f"the run in {run_dir} has ended: {state.history.stop_reason or 'it was stopped'}; "
            "a run that stopped early would stop there again (start a new run to train more)"
        )
    schedule = getattr(state.optimizer, "schedule", None)
    cosine = isinstance(schedule, CosineLR)
    if state.epoch >= cfg["epochs"]:
        # (a cosine schedule takes its own length alone: any other N is refused below)
        if cosine and state.epoch >= schedule.t_max:
            further = (
                f"start a new run with {command('--config', run_dir / CONFIG_FILE)} --epochs N "
                "to train further (its cosine schedule ends there)"
            )
        elif cosine:
            further = f"resume with --epochs {schedule.t_max}, its cosine schedule's length"
        else:
            further = f"pass --epochs N with N > {state.epoch} to train further"
        raise UserError(  # (the checkpoint's epoch: a diverged run's model may be later)
            f"the run in {run_dir} resumes from its checkpoint of epoch {state.epoch}; " + further
        )
    if cosine and cfg["epochs"] != schedule.t_max:
        # past t_max it trained at min_lr, short of it it stopped before the decay ended;
        # and config.toml (rewritten with the new --epochs) would no longer repeat the run
        finish = (
            f"resume with --epochs {schedule.t_max}, or " if state.epoch < schedule.t_max else ""
        )
        instead = (
            f"would train the rest at the floor {schedule.min_lr:g}"
            if cfg["epochs"] > schedule.t_max
            else f"would stop before its decay ends (at epoch {schedule.t_max})"
        )
        raise UserError(
            f"the run in {run_dir} decays its learning rate over {schedule.t_max} epochs (a "
            f"cosine schedule): --epochs {cfg['epochs']} {instead}; {finish}start a new run "
            f"with {command('--config', run_dir / CONFIG_FILE, '--epochs', cfg['epochs'])}"
        )
    _on_the_main_process(lambda: write_config(run_dir / CONFIG_FILE, config_to_toml(cfg)))
    state.history.stop_reason = ""  # the saved run's reason to stop no longer holds
    state.stop = False
    return _run_training(
        state.model,
        data,
        cfg,
        run_dir if is_main_process() else None,
        options,
        optimizer=None,
        state=state,
    )


def _on_the_main_process(action: Callable[[], Any]) -> Any:
    """``action()`` (claiming, locking or writing the run folder) on the process that
    writes files; None on the others. Under mpirun every rank learns whether it failed, and
    the others stop with it (exit 2, rank 0 saying why): they went on into training and
    waited there for a rank that had left (a hang, or mpirun itself failing)."""
    world = get_world(None) if launched_world_size() > 1 else None  # before any file
    error, result = None, None
    if is_main_process():
        try:
            result = action()
        except Exception as e:
            error = e
    if world is not None:
        failed = world.broadcast(np.array([0.0 if error is None else 1.0]), "run folder check")
        if failed[0] and error is None:
            raise click.exceptions.Exit(EXIT_USAGE)
    if error is not None:
        raise error
    return result


def _check_config_unchanged(run_dir: Path, cfg: dict[str, Any], trained: Any) -> None:
    """Refuse a config.toml edited since the run started (its network, optimizer or batch
    size would be shown and written, but not the ones the checkpoint trains with); a
    checkpoint from before the record (no ``run_config``) is taken as it is."""
    if not isinstance(trained, dict):
        return
    # a checkpoint recorded before validation_split existed trained on the plain shuffle
    # (every run before 2026-12-02 was refused as 'validation_split is shuffle there')
    trained = {**LEGACY_SPLIT, **trained}
    now = run_config(cfg)
    changed = sorted(k for k in set(now) | set(trained) if now.get(k) != trained.get(k))
    if changed:
        k = changed[0]
        raise UserError(
            f"{run_dir / CONFIG_FILE} does not match the run its checkpoint holds: {k} is "
            f"{_short(now.get(k))} there, {_short(trained.get(k))} in training"
            + (f" (and {len(changed) - 1} more)" if len(changed) > 1 else "")
            + "; restore the file, or train a new run from it with --config"
        )


def _check_optimizer_unchanged(run_dir: Path, cfg: dict[str, Any], optimizer: Any) -> None:
    """Refuse a checkpoint whose optimizer is not the one config.toml builds (an edited
    checkpoint): the run would go on with settings that the header and config.toml do not
    show (a learning rate of 1e308 under 'lr 3')."""
    built = build_optimizer(cfg)
    if (optimizer.name, optimizer.hyperparameters()) != (built.name, built.hyperparameters()):
        raise UserError(
            f"the checkpoint in {run_dir} holds optimizer {optimizer!r}, but its config.toml "
            f"builds {built!r}: the checkpoint was edited; restore it, or start a new run"
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

    console = make_console()
    classify = data.task == "classification"
    X, T = data.X_train, _targets(model, data, "train")
    tr, va = validation_rows(cfg, data)
    validation = (X[va], T[va]) if va.size else None
    fit_kwargs = {
        "optimizer": optimizer if optimizer is not None else "sgd",
        "epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"],
        "seed": cfg["seed"],
        "validation_data": validation,
        "early_stopping": early_stopping_callback(cfg),
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
    keep = KeepLastEpoch()
    folder = _FolderStillThere(run_dir)
    callbacks: list[Any] = [keep, folder]  # (the folder checked before each checkpoint)
    sha256 = data.sha256()  # once, before training: the summary needs it too (0.3 s on MNIST)
    checkpoint = checkpoint_callback(run_dir, cfg, sha256)
    callbacks.append(checkpoint)
    if state is not None:
        keep(state)

    task = ""
    if str(data.name).lower().endswith(".csv"):  # the task the rule chose, or --task (a
        # numeric target of 50 integer classes read as regression, and nothing said so)
        classes = f", {data.n_classes} classes" if data.task == "classification" else ""
        how = "as --task said" if cfg.get("task") else "--task to choose"
        task = f" ({data.task}{classes}; {how})"
    data_line = (
        f"{data.name}{task}: {plural(tr.size, 'training row')}, {va.size} validation, "
        f"{data.n_test} test"
    )
    for name, first in _row_ids(data):
        n = data.n_train + data.n_test
        data_line += (
            f"; column {name!r} holds {first:.0f} to {first + n - 1:.0f}, one each: a row id? "
            "--features can leave it out"
        )
    resumed = state.epoch if state is not None else None
    settings = (optimizer if state is None else state.optimizer).hyperparameters()
    header = run_header(
        cfg, model.n_parameters, data_line, run_dir, resumed, settings, tr.size, va.size
    )
    console.print(header)
    model_path = run_dir / MODEL_FILE
    start_epoch = 0 if state is None else state.epoch
    start = time.perf_counter()
    ended_by_ctrl_c = False
    try:
        history = fit(
            model,
            X[tr],
            T[tr],
            callbacks=callbacks,
            progress=options["progress"],
            **fit_kwargs,
        )
    except (KeyboardInterrupt, BrokenPipeError) as stop:
        cause = "Interrupted"
        if isinstance(stop, BrokenPipeError):  # the epoch lines' reader went away (| head,
            silence_stdout()  # less quit): the run stops as at a Ctrl-C, its work kept
            cause = "Output closed"
        if keep.state is None or not (keep.state.stop or keep.epoch >= cfg["epochs"]):
            return _interrupted_in_training(model, keep, checkpoint, run_dir, start_epoch, cause)
        # after the last epoch, in fit's own ending (the bar, the best weights): the run is
        # whole; end it as fit would have, then as a Ctrl-C after training
        history = _end_as_fit_would(keep)
        ended_by_ctrl_c = True
    except RankFailure:  # another rank died or hung: keep the epochs this one finished, as
        # a Ctrl-C does (only the checkpoint was left), then say what failed
        _interrupted_in_training(model, keep, checkpoint, run_dir, start_epoch, "A rank failed")
        raise
    except TrainingDiverged as e:
        if e.epoch == 0 and state is None:  # no epoch of a new run ended: nothing to keep
            # (its initial weights were saved, a folder neither --resume nor --out took)
            what = one_line(e).split(";", 1)[0]  # (the engine's message: what it kept)
            print_error(f"{what}; no epoch ended, so nothing was saved ({e.hint})")
            return EXIT_FAILED
        message, kept = f"{one_line(e)}; that model is in {model_path}", e.epoch
        best = keep.state.best_params if keep.state is not None else None
        if best is not None:  # the header promised early stopping's best weights
            model.load_state_dict(best)
            kept = e.history.best_epoch
            message = (
                f"training {e.history.stop_reason}; the model of epoch {kept}, early "
                f"stopping's best, is in {model_path} ({e.hint})"
            )
        save_model(model_path, model)
        write_history(run_dir / HISTORY_FILE, e.history.epochs)
        # a resumed run's summary.json described the model just replaced
        failed = f"diverged in epoch {e.epoch + 1}"
        _mark_summary(run_dir, e.epoch, failed, failed, kept)
        print_error(message)
        return EXIT_FAILED
    wall = time.perf_counter() - start
    summary: dict[str, Any] = {}
    # Ctrl-C from here on still leaves the model and a summary (_interrupted_after_training)
    stage = "saving the model"
    folder.check(len(history.epochs))
    try:
        with deferred():  # (a Ctrl-C while it was made left a summary without its keys, and
            # _interrupted_after_training's KeyError was all that was said)
            summary.update(_summary(data, history, model, cfg, (tr, va), wall, start_epoch, sha256))
            if not summary["epochs_timed"]:  # a --resume that only writes what a run lacked:
                _keep_the_runs_timing(run_dir, summary)  # the epochs were timed by their run
        if keep.state is not None:
            checkpoint.save(keep.state)
        if ended_by_ctrl_c:
            return _interrupted_after_training(run_dir, model, history, summary, stage)
        save_model(model_path, model)
        write_history(run_dir / HISTORY_FILE, history.epochs)
        stage = "computing the metrics"
        y = np.asarray(data.y_train)
        summary["train"] = _split_metrics(model, X[tr], y[tr], T[tr], classify)
        if va.size:
            summary["validation"] = _split_metrics(model, X[va], y[va], T[va], classify)
        if data.X_test is not None:
            test_targets = _targets(model, data, "test")
            summary["test"] = _split_metrics(
                model, data.X_test, data.y_test, test_targets, classify
            )
        stale = _plots_drawn(run_dir)  # an earlier model's: a resume's plot that failed to
        summary["plots"] = None  # be drawn left epoch 5's beside epoch 10; null: not drawn yet
        write_json(run_dir / SUMMARY_FILE, summary)
        stage = "drawing the plots"
        restored = keep.state is not None and keep.state.last_params is not None
        for name in stale:
            (run_dir / name).unlink(missing_ok=True)
        written = write_plots(
            run_dir, model, data, history.epochs, options["plots"], va,
            history.best_epoch if restored else None,
        )  # fmt: skip
        summary["plots"] = written  # last: a summary whose plots are null is of a run whose
        write_json(run_dir / SUMMARY_FILE, summary)  # plots were not all drawn (--resume does)
        scaled = getattr(model.preprocessing, "target_scale", None) is not None
        scaling = None if classify else "standard" if scaled else "none"
        notes = _class_notes(data, summary, cfg, run_dir) if classify else []
        console.print(summary_table(summary, run_dir, written, scaling, notes))
    except KeyboardInterrupt:
        return _interrupted_after_training(run_dir, model, history, summary, stage)
    except WriteError as e:
        if stage != "drawing the plots":
            raise
        # (the line named only the plot, and read as if the run were lost)
        raise UserError(
            f"{one_line(e)}; the model, its history and summary are saved in {run_dir} "
            f"({command('backprop', 'train', '--resume', run_dir)} draws the plots)"
        ) from None
    except BrokenPipeError:  # the reader went away (| head), noticed only at the summary
        silence_stdout()  # (--no-progress prints nothing while it trains): the run is whole
        click.echo(
            f"Output closed after training: the run is complete in {run_dir} "
            f"({command('backprop', 'evaluate', run_dir)} prints its metrics)",
            err=True,
        )
        return EXIT_INTERRUPTED
    return 0


def _class_notes(
    data: Any, summary: dict[str, Any], cfg: dict[str, Any], run_dir: Path
) -> list[tuple[str, str]]:
    """What the summary of a classification run says under its table: a test accuracy no
    better than always answering the training rows' most common class (97.6% of imbalanced
    rows, every rare one missed, read as a good score), and a test split that could hold out
    no row (16 classes of 20 rows of a weight written '191.0' trained without a word)."""
    if data.X_test is None or not data.n_test:
        if cfg.get("test_fraction") == 0:
            return []
        return [("Test", f"no rows held out: {no_test_split(data, cfg)}")]
    accuracy = summary["test"].get("accuracy")
    common = int(np.bincount(np.asarray(data.y_train)).argmax())
    share = float(np.mean(np.asarray(data.y_test) == common))
    if accuracy is None or accuracy > share:
        return []
    name = data.class_names[common] if data.class_names is not None else str(common)
    return [
        (
            "Accuracy",
            f"{accuracy:.2%} on the test rows is no better than always answering "
            f"{name!r}, {share:.2%} of them: {command('backprop', 'evaluate', run_dir)} "
            "gives each class's recall, and --class-weight balanced weighs the rarer classes up",
        )
    ]


def _refuse_a_constant_target(data: Any) -> None:
    """A regression target of one value in every training row is refused as a single class
    is: there is nothing to learn (it trained, to an R^2 of 0). (Evaluating a model on such
    a file is another matter: its error is still measured.)"""
    if data.task != "regression" or data.X_train.shape[0] == 0:
        return
    y = np.asarray(data.y_train, dtype=np.float64)
    if y.min() == y.max():
        raise UserError(
            f"dataset {data.name}: the target holds one value ({float(y.flat[0])!r}) in every "
            "training row; a regression target must vary"
        )


def _row_ids(data: Any) -> list[tuple[str, float]]:
    """The feature columns of a table that hold n consecutive integers, one per row (1 to
    n, or from any start), as a row id does, each with its first value: such a column is
    trained on as a feature, and predict then asks for it (a practitioner's audit: a
    customer_id column, said nothing of). At least 20 rows; only tables (a preprocessing
    names their columns)."""
    pre = data.preprocessing
    n = data.n_train + data.n_test
    if pre is None or n < 20:
        return []
    parts = [data.X_train] if data.X_test is None else [data.X_train, data.X_test]
    raw = pre.inverse_transform(np.concatenate(parts))  # (its standardisation rounds)
    found = []
    for j, name in enumerate(pre.feature_names):
        values = np.sort(np.rint(raw[:, j]))
        if not abs(values).max() < 2**53:  # (integers counted by 1; +-1.5e308 overflowed)
            continue
        if values[-1] - values[0] != n - 1 or not (np.diff(values) == 1).all():
            continue
        # integers but for the standardisation's round trip (a few roundings of the largest)
        tolerance = 64 * np.finfo(np.float64).eps * max(1.0, float(abs(values).max()))
        if np.abs(np.sort(raw[:, j]) - values).max() <= tolerance:
            found.append((name, float(values[0])))
    return found


def _refuse_inputs_beyond_the_dtype(model: MLP, data: Any) -> None:
    """A split holding a value a float32 model cannot take (a test row of 1e300 in a column
    whose training rows are all 0: standardised, it is still 1e300) is refused before
    training, naming it: it trained every epoch, then ended without its summary on 'X has
    values beyond float32's range (first at index [1, 0]: 1e+300)'."""
    for split, X in (("training", data.X_train), ("test", data.X_test)):
        beyond = None if X is None else value_beyond(np.asarray(X), model.config.dtype,
                                                      data.preprocessing)  # fmt: skip
        if beyond is not None:
            raise UserError(
                f"dataset {data.name}: {split} {beyond}; train in float64 (--dtype float64), "
                "or leave the column out"
            )


def _plots_drawn(run_dir: Path) -> list[str]:
    """The plot files that the run in ``run_dir`` drew, as its summary.json names them (and
    only names of plots: the file is the user's to edit). Other files of those names are
    the user's own, never removed."""
    listed = (read_summary(run_dir) or {}).get("plots")
    return [name for name in PLOT_FILES if isinstance(listed, list) and name in listed]


def _files_written(run_dir: Path, epochs: int) -> bool:
    """Whether the run folder holds the files of a run that ended after ``epochs`` epochs:
    its model and a summary.json of those epochs whose plots are not null (it is written
    after the model and history with plots null, and again after the plots, naming them;
    a summary of an earlier version has no plots key) and that no stop marked. A kill
    between the last checkpoint and the summary (or a full disk) left an older run's model
    and history, or none, and a summary of other epochs, or none; a plot that failed to be
    written left none, for good (--resume said the run had ended); a Ctrl-C after training
    marks it."""
    summary = read_summary(run_dir)
    return (
        os.path.lexists(run_dir / MODEL_FILE)
        and summary is not None
        and summary.get("epochs_run") == epochs
        and summary.get("plots", []) is not None
        and "interrupted" not in summary
    )


def _summary(
    data: Any,
    history: Any,
    model: MLP,
    cfg: dict[str, Any],
    split: tuple[np.ndarray, np.ndarray],
    wall: float,
    start_epoch: int,
    sha256: str,
) -> dict[str, Any]:
    """summary.json without its metrics (filled in after): what ran, on what, how fast."""
    tr, va = split
    epochs_run = len(history.epochs)
    epochs_now = epochs_run - start_epoch
    return {
        "dataset": cfg["dataset"],  # as config.toml has it (a CSV by its resolved path)
        "task": data.task,
        "train": {},
        "validation": {},
        "test": {},
        "epochs_run": epochs_run,
        "best_epoch": history.best_epoch,
        "stop_reason": history.stop_reason,
        "wall_time_s": round(wall, 4),
        "epochs_timed": epochs_now,  # wall_time_s is theirs: this command's (a resume's)
        "train_samples_per_s": (
            round(tr.size * epochs_now / wall, 1) if wall > 0 and epochs_now else None
        ),
        "n_train": int(tr.size),
        "n_validation": int(va.size),
        "n_test": data.n_test,
        "n_parameters": model.n_parameters,
        "seed": cfg["seed"],
        "backprop_version": __version__,
        "numpy_version": np.__version__,
        # the array library that did the arithmetic, and its version (a torch run's
        # numbers differ from NumPy's in their last bits)
        "backend": model.backend.name,
        "backend_version": _backend_version(model.backend.name),
        "python_version": platform.python_version(),
        "data_sha256": sha256,
        "model_file": MODEL_FILE,
    }


def _keep_the_runs_timing(run_dir: Path, summary: dict[str, Any]) -> None:
    """The timing of the run whose files a ``--resume`` finished without training (its
    plots, or its summary, were not written): the summary.json written before is of the
    same epochs, and its timing was theirs (the finished one read 0 epochs in 0.0004 s)."""
    before = read_summary(run_dir) or {}
    if before.get("epochs_run") == summary["epochs_run"] and before.get("epochs_timed"):
        for key in ("wall_time_s", "epochs_timed", "train_samples_per_s"):
            summary[key] = before.get(key)


def _backend_version(name: str) -> str | None:
    """The installed version of the array library ``name`` (None where it has none)."""
    module = sys.modules.get(name)
    return getattr(module, "__version__", None) if module is not None else None


def _end_as_fit_would(keep: KeepLastEpoch) -> Any:
    """The model and history as ``fit`` leaves them after its last epoch, for a Ctrl-C
    that came after that epoch, inside ``fit``'s own ending: the last epoch's weights, then
    early stopping's best ones restored over them (kept for a resume), and a stop reason."""
    state = keep.state
    state.model.load_state_dict(keep.weights)  # whether or not fit had restored them yet
    state.last_params = None
    end_of_epochs(state, restore_best_weights(state))
    return state.history


def _mark_summary(
    run_dir: Path, epochs_run: int, stop_reason: str, cause: str, model_epoch: int | None = None
) -> None:
    """A summary.json from before a ``--resume`` describes the model that a Ctrl-C or a
    divergence (``cause``) replaced, after ``epochs_run`` epochs, with the last one's (or
    with ``model_epoch``'s, early stopping's best): its metrics are dropped, its plots (of
    the replaced model) removed, and it says which epoch's model the folder now holds."""
    summary = read_summary(run_dir)
    if summary is None:
        return  # none (a first run), or not ours to repair
    stale = _plots_drawn(run_dir)  # the replaced model's: they stood beside the new one
    model_epoch = epochs_run if model_epoch is None else model_epoch
    summary.update(
        plots=None,  # not drawn: the --resume that finishes the run draws them
        train={},
        validation={},
        test={},
        wall_time_s=None,  # the run it replaced was timed; this one was not finished
        train_samples_per_s=None,
        epochs_timed=None,
        epochs_run=epochs_run,
        best_epoch=None if model_epoch == epochs_run else model_epoch,
        stop_reason=stop_reason,
        interrupted=f"{cause}: the model is epoch {model_epoch}'s; its metrics: "
        + command("backprop", "evaluate", run_dir),
    )
    write_json(run_dir / SUMMARY_FILE, summary)
    for name in stale:
        (run_dir / name).unlink(missing_ok=True)


@contextlib.contextmanager
def _whole_despite_a_second_ctrl_c() -> Iterator[None]:
    """The files a Ctrl-C's handling writes, written whole: a second Ctrl-C waits for their
    end and is then let go, as the first is being handled (one during a resumed run's save
    left the new model beside the old run's summary.json and history.csv, and 'Error:
    interrupted' alone)."""
    try:
        with deferred():
            yield
    except KeyboardInterrupt:
        pass


def _interrupted_in_training(
    model: MLP,
    keep: KeepLastEpoch,
    checkpoint: Any,
    run_dir: Path,
    start_epoch: int,
    cause: str = "Interrupted",
) -> int:
    """Ctrl-C during an epoch: the last finished epoch's model and history are written,
    and stderr says from which epoch ``--resume`` continues. Before a resumed run's first
    epoch ended, the folder is left as it was (its model may be early stopping's best) but
    for config.toml, which holds the new --epochs, so that --resume goes on to them."""
    weights, epoch = keep.weights, keep.epoch
    model_path = run_dir / MODEL_FILE
    if weights is None:
        click.echo(f"{cause} before the first epoch ended; no model saved in {run_dir}", err=True)
        return EXIT_INTERRUPTED
    if start_epoch and epoch == start_epoch:
        click.echo(
            f"{cause} before epoch {epoch + 1} ended; {run_dir} is as it was but for its "
            f"{CONFIG_FILE}, which holds the new --epochs; continue from epoch {epoch} with: "
            + command("backprop", "train", "--resume", run_dir),
            err=True,
        )
        return EXIT_INTERRUPTED
    model.load_state_dict(weights)
    said = "Ctrl-C" if cause == "Interrupted" else cause  # (Ctrl-C's, or SIGTERM's)
    with _whole_despite_a_second_ctrl_c():
        save_model(model_path, model)
        write_history(run_dir / HISTORY_FILE, keep.rows())
        _mark_summary(
            run_dir, epoch, f"interrupted during epoch {epoch + 1}",
            f"{said} during epoch {epoch + 1}",
        )  # fmt: skip
    saved = checkpoint.saved_epoch or 0  # what the checkpoint file holds
    resume = (
        f"; continue from epoch {saved} with: {command('backprop', 'train', '--resume', run_dir)}"
        if saved > 0
        else ""
    )
    click.echo(f"{cause}: kept the model of epoch {epoch} in {model_path}{resume}", err=True)
    return EXIT_INTERRUPTED


def _interrupted_after_training(
    run_dir: Path, model: MLP, history: Any, summary: dict[str, Any], stage: str
) -> int:
    """Ctrl-C after the last epoch: the model, its history and a summary are written (the
    summary says what was left undone), and stderr says how to get the rest."""
    with _whole_despite_a_second_ctrl_c():
        if stage == "saving the model":
            save_model(run_dir / MODEL_FILE, model)
            write_history(run_dir / HISTORY_FILE, history.epochs)
        summary["interrupted"] = f"Ctrl-C after training, while {stage}"
        write_json(run_dir / SUMMARY_FILE, summary)
    rest = (
        f"some plots were not drawn: {command('backprop', 'train', '--resume', run_dir)} draws them"
        if stage == "drawing the plots"
        else f"its metrics: {command('backprop', 'evaluate', run_dir)}"
    )
    click.echo(
        f"Interrupted while {stage}, after training {summary['epochs_run']} epochs: the model "
        f"is in {run_dir / MODEL_FILE}, its summary in {run_dir / SUMMARY_FILE}; {rest}",
        err=True,
    )
    return EXIT_INTERRUPTED
