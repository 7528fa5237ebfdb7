"""A run folder as a handle: ``evaluate``, ``predict`` and ``export`` take either a model
file or the folder ``backprop train`` wrote, and from a folder they take its model and the
data it was trained on (data set, split seed and test fraction, target column, data folder)
as its ``config.toml`` records them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import names_a_csv_file
from ..datasets.tabular import columns_named, label_value, normalisation_hint
from ..formatting import command
from ..io.checkpoint import CHECKPOINT_NAME
from ..network import MLP
from .app import UserError
from .config import DATA_KEYWORDS, load_data, run_config_values, validation_rows
from .options import CONFIG_KEYS
from .plots import PLOT_FILES
from .run_folder import CONFIG_FILE, MODEL_FILE, RUN_FILES, holds_run, in_use, read_summary

__all__ = ["DATA_KEYS", "Handle", "csv_model_task", "model_inputs", "models_task", "open_handle"]

#: The options that name a run's data and its test split (what evaluate and predict reuse):
#: the data set and the options load_data hands on (config.py), and the seed of the split.
DATA_KEYS = ("dataset", *(k for k in DATA_KEYWORDS if k in CONFIG_KEYS), "seed")
#: Of those, the ones a CSV model decides itself (its task, its feature columns): a run's
#: config.toml names them only when they were given.
MODEL_DECIDES = ("task", "features")


#: The options of a run's config that say which training rows it held out for validation.
HELD_OUT_KEYS = ("validation_fraction", "validation_split")


class Handle:
    """What a MODEL argument names: ``model_path``, and for a run folder ``run_dir``,
    ``data_options`` (the run's :data:`DATA_KEYS` from its config; empty otherwise) and
    ``held_out`` (its ``validation_fraction`` and ``validation_split``; None when its config
    does not say)."""

    def __init__(
        self,
        model_path: Path,
        run_dir: Path | None,
        data_options: dict[str, Any],
        held_out: dict[str, Any] | None = None,
    ) -> None:
        self.model_path = model_path
        self.run_dir = run_dir
        self.data_options = data_options
        self.held_out = held_out

    def _own_data(self, values: dict[str, Any]) -> bool:
        """Whether ``values`` name the run's own data and split (nothing overridden)."""
        return self.run_dir is not None and all(
            values.get(k) == self.data_options.get(k) for k in DATA_KEYS if k not in MODEL_DECIDES
        )

    def training_rows(self, values: dict[str, Any], data: Any) -> tuple[Any, Any] | None:
        """``(train, validation)`` indices into the training rows of ``data`` (the data
        ``values`` name), as the run split them (the summary table's rows); None when they
        are not the run's own data, or its config does not say."""
        if not self._own_data(values) or self.held_out is None:
            return None
        return validation_rows({**self.held_out, "seed": values.get("seed", 0)}, data)

    def check_output(self, output: Path, option: str, input_path: Path | None = None) -> None:
        """Refuse an ``output`` file whose writing would overwrite what the command reads
        (the model file, ``input_path``) or a file of a run folder (its model, checkpoint,
        history, summary, config or plots): nothing already saved is lost to a mistyped
        path."""
        try:
            target = output.resolve()
        except (RuntimeError, OSError) as e:  # a symlink loop: RuntimeError, not OSError
            raise UserError(f"{option} {output}: {e}") from None
        if target == self.model_path.resolve():
            raise UserError(
                f"{option} {output} is the model file this command reads; choose another file"
            )
        if input_path is not None and target == input_path.resolve():
            raise UserError(f"{option} {output} is the input file; choose another file")
        for path in (output, target):  # the name given, and what a symlink there names
            # (a run's plots too: predict -o RUN/loss.png replaced one with CSV rows)
            if path.name in (*RUN_FILES, *PLOT_FILES) and holds_run(path.parent):
                raise UserError(
                    f"{option} {output} is the {path.name} of the run in {path.parent}; "
                    "choose another file"
                )
        dataset = self.data_options.get("dataset")
        if dataset is not None and target == Path(str(dataset)).resolve():
            raise UserError(
                f"{option} {output} is the data set the run in {self.run_dir} was trained on; "
                "choose another file"
            )

    def load_data(self, values: dict[str, Any]) -> Any:
        """The data set ``values`` name. When they name the run's own data and split, the
        data must be those it was trained on (``summary.json``'s SHA-256 of the training
        rows): a CSV file edited since would mix training rows into the test rows."""
        data = load_data(values)
        if not self._own_data(values):
            return data
        summary = read_summary(self.run_dir) or {}  # none: an interrupted first run
        recorded, now = summary.get("data_sha256"), data.sha256()
        if isinstance(recorded, str) and recorded != now:
            raise UserError(
                f"the training rows of {data.name} differ from those the run in "
                f"{self.run_dir} was trained on (SHA-256 {now[:12]}... instead of "
                f"{recorded[:12]}...): they changed since, so the test rows may not be the "
                "held-out ones; restore the data, or name other data explicitly"
            )
        return data

    def data_values(self, given: dict[str, Any]) -> dict[str, Any]:
        """The data options to load: the run's, with every option given on the command line
        (not None) in their place; a --dataset given replaces the run's data entirely."""
        given = {k: v for k, v in given.items() if v is not None}
        if "dataset" in given:
            return given
        return {**self.data_options, **given}


def csv_model_task(values: dict[str, Any], model: MLP) -> str | None:
    """The task of a model trained on a CSV file (its class labels say it) when ``values``
    name a CSV file; None otherwise."""
    pre = model.preprocessing
    if pre is None or pre.target is None:
        return None
    if not names_a_csv_file(str(values.get("dataset", ""))):
        return None
    return "regression" if pre.classes is None else "classification"


def models_task(values: dict[str, Any], model: MLP) -> dict[str, Any]:
    """``values`` with a CSV model's own task where they name none. (A run from before
    the missing-label rule trained 'NA' as a class; the rule now refuses that file unless
    told the task, and its config.toml could not say it.)"""
    task = csv_model_task(values, model)
    return values if values.get("task") is not None or task is None else {**values, "task": task}


def open_handle(path: Path) -> Handle:
    """The model file ``path``, or the run folder ``path`` (its ``model.safetensors``, and
    its ``config.toml``'s data options when it has one)."""
    if not path.is_dir():
        return Handle(path, None, {})
    model_path = path / MODEL_FILE
    if not model_path.is_file():
        if in_use(path):  # (it was 'not a run folder', or 'finish the run with --resume')
            raise UserError(
                f"{path} is the run folder of a backprop train running now, which has not "
                f"written its {MODEL_FILE} yet; wait for it to end"
            )
        hint = (
            "; it holds a checkpoint: finish the run with "
            + command("backprop", "train", "--resume", path)
            if (path / CHECKPOINT_NAME).is_file()
            else ""
        )
        raise UserError(f"{path} is a folder without {MODEL_FILE}, not a run folder{hint}")
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        return Handle(model_path, path, {})
    values = run_config_values(config_path)  # (an older run's: its split, the plain shuffle)
    held_out = None
    if "validation_fraction" in values:
        held_out = {k: values[k] for k in HELD_OUT_KEYS if k in values}
    return Handle(model_path, path, {k: values[k] for k in DATA_KEYS if k in values}, held_out)


def model_inputs(
    model: MLP, data: Any, X: np.ndarray, y: np.ndarray, classes: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of ``data`` as ``model`` expects them.

    When both the data and the model carry a scaling (CSV files, standardised tables), the
    rows are taken back to raw numbers with the data's scaling and standardised with the
    model's, columns matched by name, and labels matched by class name. A model without one
    (moons, mnist) takes a CSV file's raw numbers, its columns in order, and labels that
    are its class numbers, or its ``classes`` where it has them (a scikit-learn classifier
    fitted on an array: :attr:`ModelFile.classes`). Otherwise the rows are used as they are.
    """
    pre, dpre = model.preprocessing, data.preprocessing
    if pre is None and dpre is not None:  # the model was trained on raw numbers
        X = dpre.inverse_transform(X)
        if data.task == "classification" and data.class_names is not None:
            if classes is not None:  # (classes 1-3 were taken as the numbers 0-2: accuracy 0.02)
                y = _numbers_of_classes(classes, data, y)
            else:
                y = np.array([_class_number(data, model, data.class_names[k]) for k in y], np.int64)
    if pre is not None and dpre is not None:
        wanted = columns_named(pre.feature_names, f"dataset {data.name}")
        missing = [f for f in wanted if f not in dpre.feature_names]
        if missing:
            raise UserError(
                f"dataset {data.name} lacks the feature columns {missing} the model was trained "
                "on" + normalisation_hint(missing, dpre.feature_names)
            )
        raw = dpre.inverse_transform(X)
        order = [list(dpre.feature_names).index(f) for f in wanted]
        with np.errstate(over="ignore", invalid="ignore"):
            X = pre.transform(raw[:, order])
        far = ~np.isfinite(X)
        if far.any():  # (an overflow warning, then 'X contains NaN or inf (first at index
            # [1, 0])', an index into the shuffled rows)
            i, j = (int(k) for k in np.argwhere(far)[0])
            raise UserError(
                f"dataset {data.name}: column {wanted[j]!r} holds {raw[i, order[j]]:g}, too far "
                f"from the model's training data (mean {pre.mean[j]:g}, scale {pre.scale[j]:g}) "
                "to standardise in float64"
            )
        if (
            data.task == "classification"
            and pre.classes is not None
            and data.class_names is not None
        ):
            y = _numbers_of_classes(pre.classes, data, y)
    if X.shape[1] != model.n_inputs:
        raise UserError(
            f"the model expects {model.n_inputs} input features but dataset {data.name} "
            f"has {X.shape[1]}"
        )
    return X, y


def _numbers_of_classes(classes: Sequence[str], data: Any, y: np.ndarray) -> np.ndarray:
    """The model's class number of each row's label (``y`` indexes ``data.class_names``),
    matched by name; a label of no class of the model's is refused."""
    named = _classes_of_labels(classes, data.class_names, data.name)
    present = {data.class_names[k] for k in np.unique(y)}
    unknown = sorted(c for c in present if named[c] is None)
    if unknown:
        raise UserError(
            f"dataset {data.name} has labels {unknown} the model was not trained on"
            + normalisation_hint(unknown, classes)
        )
    return np.array([named[data.class_names[k]] for k in y], dtype=np.int64)


def _classes_of_labels(
    classes: Sequence[str], labels: Sequence[str], source: str
) -> dict[str, Any]:
    """The model's class number of each label of a CSV file (None: no class of the model's).
    A label names the class that is the same text without surrounding spaces (the file's
    labels are read so), else the class of the same value (``'2.0'`` is the class ``'2'``).
    Where the file read its labels as numbers (all are), one label stands for every class
    of its value; a label that stands for two classes is refused: an estimator's classes
    '1' and '1.0' (or ' sp ' and 'sp') took every row of both as the first, and scored
    accuracy 0.67 of 1.0."""
    numbers = all(label_value(c) is not None for c in labels)
    by_name: dict[str, list[int]] = {}
    by_value: dict[Any, list[int]] = {}  # (each class's value parsed once, not per label)
    for k, m in enumerate(classes):
        by_name.setdefault(m.strip(), []).append(k)
        if (v := label_value(m)) is not None:
            by_value.setdefault(v, []).append(k)
    named: dict[str, Any] = {}
    for c in labels:
        exact = by_name.get(c, [])
        v = label_value(c)
        valued = by_value.get(v, []) if v is not None else []
        matches = sorted({*exact, *valued}) if numbers else (exact or valued)
        if len(matches) > 1:
            a, b = (classes[k] for k in matches[:2])
            raise UserError(
                f"the model's classes {a!r} and {b!r} are one label, {c!r}, in dataset "
                f"{source} (its labels are read without surrounding spaces"
                + (", and numbers by value" if numbers else "")
                + "); expected a model whose classes differ in more"
            )
        named[c] = matches[0] if matches else None
    return named


def _class_number(data: Any, model: MLP, name: str) -> int:
    """The class a label of ``data`` names for a model without class names: the label is
    the class's number, 0 to the number of classes - 1."""
    n = max(model.n_outputs, 2)
    k = label_value(name)
    if k is None or not (k == k.to_integral_value() and 0 <= k < n):
        raise UserError(
            f"dataset {data.name} has the label {name!r}; the model has no class names, so "
            f"its labels are its class numbers 0 to {n - 1}"
        )
    return int(k)
