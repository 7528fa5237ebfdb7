"""The estimators :class:`BackpropClassifier` and :class:`BackpropRegressor`, and what they
share: checks, training, prediction, saving (:mod:`.persistence`), pickling.

A ``fit`` or ``partial_fit`` that raises leaves the estimator as it was before the call
(:class:`_FittedState`), but for training stopped by ``TrainingDiverged`` or a
``KeyboardInterrupt`` after it completed epochs, which keeps those epochs, as
``backprop train`` does (``_BackpropMLP._fit``).
"""

from __future__ import annotations

import copy
import math
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._limits import check_memory
from .._validation import short_repr
from .._version import pip_extra
from ..activations import log_sigmoid, log_softmax
from ..network import MLP, MLPConfig, parameter_name
from ..optimizers import Optimizer, get_optimizer
from ..training import Callback, TrainingDiverged, TrainState, epoch_callbacks
from ..training import fit as train
from ..training.distributed import same_on_every_rank
from ..training.mpi import is_main_process
from .constraints import (
    ABSENT_FEATURES,
    ACTIVATION_ALIASES,
    CLASSIFIER_LOSSES,
    ENGINE_LOSS,
    REGRESSOR_LOSSES,
    ClassWeight,
    check_parameters,
    float_dtype_name,
    mlp_constraints,
)
from .persistence import (
    expect,
    field,
    is_real,
    labels_from_json,
    labels_to_json,
    load_estimator,
    save_estimator,
)

#: The oldest scikit-learn the estimators work with: pyproject.toml's bound for the
#: ``sklearn`` extra, the version .ci/minimums.txt pins.
_SKLEARN_MINIMUM = "1.7.1"

try:
    # sklearn first (noqa: not sorted): without it scipy is missing too, and was named
    import sklearn  # noqa: I001
    import scipy.sparse  # (a scikit-learn dependency)
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, compute_sample_weight
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.validation import (
        _check_sample_weight,
        check_is_fitted,
        column_or_1d,
        validate_data,
    )
except ImportError as e:  # pragma: no cover - run in a subprocess without scikit-learn
    raise ImportError(
        f"backprop.sklearn needs scikit-learn >= {_SKLEARN_MINIMUM}, which could not be "
        f"imported ({e}); install it with: {pip_extra('sklearn')}"
    ) from e

__all__ = ["BackpropClassifier", "BackpropRegressor"]


def _mean_weight(sw: np.ndarray) -> float:
    """The mean of the sample weights ``sw``, also where their sum overflows float64 (weights
    of 1e307 had a mean of inf, with overflow warnings, and then read as 'all zeros'): there
    it is the mean of the weights divided by a power of two, times it (the division is exact
    but for weights some 1e-308 times the largest, which become subnormal)."""
    with np.errstate(over="ignore"):
        mean = float(np.mean(sw))
    if math.isinf(mean):
        scale = float(np.ldexp(1.0, int(np.frexp(sw.max())[1]) - 1))  # <= the largest weight
        mean = float(np.mean(sw / scale)) * scale
    return mean


def _version_tuple(version: str) -> tuple[int, ...] | None:
    """``(1, 7, 1)`` from ``"1.7.1"`` (``"1.8.dev0"`` gives ``(1, 8, 0)``); None when the text
    does not start with a version number."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return None if m is None else tuple(int(part or 0) for part in m.groups())


def _check_sklearn_version(version: str) -> None:
    """Refuse a scikit-learn older than :data:`_SKLEARN_MINIMUM` (1.6 to 1.7.0 import, but
    fail the suite: .ci/minimums.txt) with the ImportError a missing one gets."""
    found, needed = _version_tuple(version), _version_tuple(_SKLEARN_MINIMUM)
    if found is not None and needed is not None and found < needed:
        raise ImportError(
            f"backprop.sklearn needs scikit-learn >= {_SKLEARN_MINIMUM}; {version} is "
            f"installed; upgrade it with: {pip_extra('sklearn')}"
        )


_check_sklearn_version(sklearn.__version__)

#: The sparse formats ``validate_data`` passes on (others become CSR, as in
#: MLPClassifier: DOK and LIL matrices have no ``data`` to check for NaN), made dense there.
_SPARSE_FORMATS = ("csr", "csc")

#: The engine's link (how outputs become predictions) under scikit-learn's names.
_SKLEARN_LINKS = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity"}


# ------------------------------------------------------------------------------ callbacks
#: The engine's loss names as the estimators' parameters spell them.
_SKLEARN_LOSS = {engine: ours for ours, engine in ENGINE_LOSS.items()}


# check_classification_targets' list: the others fail there with "Unknown label type"
_CLASSIFICATION_TARGETS = (
    "binary",
    "multiclass",
    "multiclass-multioutput",
    "multilabel-indicator",
    "multilabel-sequences",
)


def _plain(labels: Any) -> Any:
    """Class labels as Python values for an error message: ``0.0`` and ``[0, 1]``, not NumPy
    2's ``np.float64(0.0)`` and ``array([0, 1])``."""
    return np.asarray(labels).tolist()


def _stop_at_plateau(state: TrainState) -> bool:
    """What a plateau does by default: stop (``learning_rate="adaptive"`` changes it)."""
    return True


class _LossPlateau(Callback):
    """Stop when the training loss has not fallen by ``tol`` for more than ``patience``
    epochs (scikit-learn MLP's rule without early stopping); ``on_plateau(state)`` may
    instead return False to go on (the count starts again)."""

    def __init__(
        self,
        tol: float,
        patience: int,
        on_plateau: Callable[[TrainState], bool] = _stop_at_plateau,
    ) -> None:
        self.tol, self.patience, self.on_plateau = tol, patience, on_plateau
        self.best = math.inf
        self.count = 0
        self.stopped = False

    def on_epoch_end(self, state: TrainState) -> bool:
        loss = state.history.epochs[-1]["loss"]
        self.count = self.count + 1 if loss > self.best - self.tol else 0
        self.best = min(self.best, loss)
        if self.count > self.patience:
            self.stopped = self.on_plateau(state)
            self.count = 0 if not self.stopped else self.count
        return self.stopped


class _ValidationScore(Callback):
    """Score the held-out rows each epoch (accuracy or R^2, higher is better) and write the
    score into the epoch's history row as ``column`` (``val_accuracy``, ``val_r2``), where a
    :class:`backprop.training.EarlyStopping` among the ``callbacks`` can watch it; stop when
    the score has not risen by ``tol`` for more than ``patience`` epochs, remembering the
    best epoch's weights (scikit-learn MLP's ``early_stopping``)."""

    def __init__(
        self,
        score: Callable[[], float],
        tol: float,
        patience: int,
        column: str,
        on_plateau: Callable[[TrainState], bool] = _stop_at_plateau,
        verbose: bool = False,
    ) -> None:
        self.score, self.tol, self.patience = score, tol, patience
        self.column, self.on_plateau, self.verbose = column, on_plateau, verbose
        self.scores: list[float] = []
        self.best = -math.inf
        self.best_params: dict[str, np.ndarray] | None = None
        self.count = 0
        self.stopped = False

    def on_epoch_end(self, state: TrainState) -> bool:
        s = self.score()
        self.scores.append(s)
        state.history.epochs[-1][self.column] = s
        if self.verbose and is_main_process():  # (under mpirun: once, not once a rank)
            print(f"Validation score: {s:f}")  # noqa: T201 - verbose=True, as MLPClassifier
        self.count = self.count + 1 if s < self.best + self.tol else 0
        if s > self.best:
            self.best = s
            self.best_params = state.model.state_dict()
        if self.count > self.patience:
            self.stopped = self.on_plateau(state)
            self.count = 0 if not self.stopped else self.count
        return self.stopped


class _SamplesSeen(Callback):
    """Counts the training rows seen (scikit-learn's ``t_``) and, for ``solver="sgd"``
    with ``learning_rate="invscaling"``, sets the rate for the next epoch to
    ``learning_rate_init / (t_ + 1) ** power_t``, as scikit-learn's SGD does."""

    def __init__(self, estimator: Any, n_rows: int) -> None:
        self.estimator, self.n_rows = estimator, n_rows

    def on_epoch_end(self, state: TrainState) -> None:
        est = self.estimator
        est.t_ += self.n_rows
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            state.optimizer.base_lr = float(est.learning_rate_init) / (est.t_ + 1) ** float(
                est.power_t
            )


@dataclass(frozen=True)
class _Epoch:
    """What the estimator keeps of its last completed epoch (see :class:`_LastEpoch`)."""

    epoch: int  # epochs completed in this call
    weights: dict[str, np.ndarray]
    steps: int  # the optimizer's step count then
    t: int  # t_ then
    scores: list[float] | None  # validation scores of the epochs completed
    best_score: float | None
    best_weights: dict[str, np.ndarray] | None  # early stopping's best epoch's, then
    no_improvement: int  # the plateau count then (0 under partial_fit, which has none)


class _LastEpoch(Callback):
    """Remembers the last completed epoch as the estimator keeps it (weights, ``t_``,
    validation scores), so that a fit stopped by a Ctrl-C, even one inside the next epoch,
    keeps exactly that epoch. It comes after the estimator's own callbacks, which complete
    the epoch's record, and the record is replaced by one attribute store, which a signal
    cannot split (as ``backprop train``'s ``KeepLastEpoch``)."""

    def __init__(
        self,
        estimator: Any,
        validation: _ValidationScore | None,
        watch: _ValidationScore | _LossPlateau | None,
    ) -> None:
        self.estimator, self.validation, self.watch = estimator, validation, watch
        self.kept: _Epoch | None = None

    def on_epoch_end(self, state: TrainState) -> None:
        v = self.validation
        self.kept = _Epoch(
            epoch=state.epoch,
            weights=state.model.state_dict(),
            steps=state.optimizer.t,
            t=self.estimator.t_,
            scores=None if v is None else list(v.scores),
            best_score=None if v is None else v.best,
            best_weights=None if v is None else v.best_params,
            no_improvement=0 if self.watch is None else self.watch.count,
        )


class _ReportedLoss(Callback):
    """The epoch's loss as the estimator reports it (``loss_curve_``, the plateau test): the
    network's times ``scale`` (see ``BackpropRegressor._loss_scale``), written into the
    epoch's record before any other callback reads it."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def on_epoch_end(self, state: TrainState) -> None:
        state.history.epochs[-1]["loss"] *= self.scale


def _print_progress(state: TrainState) -> None:
    row = state.history.epochs[-1]
    if is_main_process():  # under mpirun every rank printed every line
        print(f"Iteration {state.epoch}, loss = {row['loss']:.8f}")  # noqa: T201 - verbose=True


# ---------------------------------------------------------------- coefs_ and intercepts_
class _LayerArrays(list):
    """``coefs_`` or ``intercepts_``: a list of one array per layer whose item assignment
    (``coefs_[0] = W``, a slice of the same length too) writes into the network, through
    the estimator's setter (the checks of assigning the whole list: shape, finite values),
    where a list built for each read dropped it; MLPClassifier's list keeps what is put in.

    Its length is the network's layers: what would change it (``append``, ``del``,
    ``pop``...) or reorder it is refused with a TypeError, never silently dropped. A copy
    (``copy.copy``, ``copy.deepcopy``, pickle, ``list(...)``, a slice) is a plain list,
    detached from the network.
    """

    def __init__(self, arrays: list[np.ndarray], estimator: _BackpropMLP, attribute: str) -> None:
        super().__init__(arrays)
        self._estimator, self._attribute = estimator, attribute
        self._model = estimator._fitted_model()  # the network the arrays were read from

    def __setitem__(self, index: Any, value: Any) -> None:
        if self._estimator._fitted_model() is not self._model:
            # (a list kept from an earlier fit wrote that fit's other layers into the new one)
            raise ValueError(
                f"this {self._attribute} list was read before the estimator was fitted "
                f"again; read {self._attribute} anew and assign into that"
            )
        items = list(getattr(self._estimator, self._attribute))  # the network's arrays now
        items[index] = value
        if len(items) != len(self):
            raise ValueError(
                f"{self._attribute} holds {len(self)} arrays, one per layer; the slice "
                f"assignment made {len(items)}"
            )
        setattr(self._estimator, self._attribute, items)
        super().__setitem__(slice(None), getattr(self._estimator, self._attribute))

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            f"{self._attribute} holds one array per layer of the network, in order: assign "
            f"an item ({self._attribute}[i] = array) or the whole list, not a change of its "
            "length or order"
        )

    __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce_ex__(self, protocol: Any) -> tuple[type, tuple[list[np.ndarray]]]:
        return list, (list(self),)


# ------------------------------------------------------------------ a fit that fails
class _FittedState:
    """An estimator's fitted state, taken before a fit to put back should the fit fail.

    Every attribute that is not a hyperparameter (the fitted attributes, ``model_``, the
    optimizer and the shuffle generator), by reference: a fit replaces them. And, because
    ``warm_start`` and ``partial_fit`` train the fitted network, optimizer and generator in
    place, copies of what those hold when the fit is one of them (``in_place``): the
    weights and the dropout generator's state, the optimizer (copied as a pickle copies it)
    and the shuffle generator's state. (A fit that starts a new network leaves the old
    one's untouched: copying them held a second copy of a large model, for nothing.)
    """

    def __init__(self, estimator: BaseEstimator, in_place: bool) -> None:
        hyperparameters = estimator.get_params(deep=False)
        self.attributes = {k: v for k, v in vars(estimator).items() if k not in hyperparameters}
        model = self.attributes.get("model_") if in_place else None
        self.weights = None if model is None else model.state_dict()
        self.dropout = None if model is None else model.dropout_rng.bit_generator.state
        self.optimizer = copy.deepcopy(self.attributes.get("_optimizer")) if in_place else None
        rng = self.attributes.get("_shuffle_rng") if in_place else None
        self.shuffle = None if rng is None else rng.bit_generator.state
        # loss_curve_ grows in place under partial_fit and warm_start (a copy a call made a
        # stream of calls quadratic): its length now is what a failed fit cuts it back to
        self.curve_length = len(self.attributes.get("loss_curve_") or ())
        self.discarded = False

    @property
    def fitted(self) -> bool:
        return "model_" in self.attributes

    def discard(self) -> None:
        """The estimator's state as the fit left it is its own: :meth:`restore` does nothing."""
        self.discarded = True

    def restore(self, estimator: BaseEstimator) -> None:
        """Put the state back: attributes the fit added go, those it replaced return."""
        if self.discarded:
            return
        hyperparameters = estimator.get_params(deep=False)
        attributes = vars(estimator)
        for name in [k for k in attributes if k not in hyperparameters]:
            del attributes[name]
        attributes.update(self.attributes)
        model = self.attributes.get("model_")
        if model is not None and self.weights is not None:
            model.load_state_dict(self.weights)
            model.dropout_rng.bit_generator.state = self.dropout
        if self.optimizer is not None:
            attributes["_optimizer"] = self.optimizer
        if self.shuffle is not None:
            attributes["_shuffle_rng"].bit_generator.state = self.shuffle
        curve = attributes.get("loss_curve_")
        if curve is not None:
            del curve[self.curve_length :]


# ------------------------------------------------------------------------ the base class
class _BackpropMLP(BaseEstimator):
    """What both estimators share: checks, training, prediction plumbing, save/load, pickle.

    Subclasses define ``__init__`` (the hyperparameters), ``_backprop_constraints``,
    ``_encode_targets`` (y -> targets ``T`` of shape (n_samples, n_outputs)),
    ``_output_config`` (network output activation and loss) and ``_validation_score``.
    """

    #: hyperparameter -> its valid values (see :mod:`.constraints`); set by each estimator.
    #: Not scikit-learn's ``_parameter_constraints``, whose format is another (its
    #: ``_validate_params`` failed on this table: 'OneOf' object is not iterable)
    _backprop_constraints: dict[str, Any] = {}
    _is_classifier = False

    # ------------------------------------------------------------------ hyperparameters
    def _check_params(self) -> None:
        checked = [("solver", self.solver)] + ([] if self._is_classifier else [("loss", self.loss)])
        for param, value in checked:
            if isinstance(value, str) and value in ABSENT_FEATURES:
                raise ValueError(
                    f"{type(self).__name__}: {param}={value!r} {ABSENT_FEATURES[value]}"
                )
        check_parameters(self, self._backprop_constraints)
        try:  # each callback: the engine's check and words (the list is the table's)
            epoch_callbacks(() if self.callbacks is None else self.callbacks, None)
        except ValueError as e:
            raise ValueError(f"{type(self).__name__}: {e}") from None

    def _hidden_sizes(self) -> tuple[Any, ...]:
        h = self.hidden_layer_sizes
        return tuple(h) if isinstance(h, Sequence | np.ndarray) else (h,)

    def _network_mismatch(self, config: Any) -> str | None:
        """How this estimator's hidden_layer_sizes, activation, dtype, loss and dropout
        differ from the network ``config`` describes (None when they match)."""
        hidden = tuple(int(h) for h in self._hidden_sizes())
        activation = ACTIVATION_ALIASES.get(self.activation, self.activation)
        output_activation, loss = self._output_config()
        ours = {
            "hidden_layer_sizes": (hidden, config.sizes[1:-1]),
            "activation": (activation, config.activation),
            "dtype": (self._dtype_name(), config.dtype),
            "loss": (_SKLEARN_LOSS.get(loss, loss), _SKLEARN_LOSS.get(config.loss, config.loss)),
            "output activation": (output_activation, config.output_activation),
            "dropout": (float(self.dropout), config.dropout),
        }
        differ = [
            f"{name}={_plain(mine)!r} (the fitted network's: {_plain(fitted)!r})"
            for name, (mine, fitted) in ours.items()
            if mine != fitted
        ]
        return "; ".join(differ) or None

    def _dtype_name(self) -> str:
        """``dtype`` as the network names it, ``"float32"`` or ``"float64"`` (the
        hyperparameter may be a NumPy dtype or type: it is stored as given, for clone)."""
        name = float_dtype_name(self.dtype)
        if name is None:  # (fit and save check every hyperparameter first: no other caller)
            check_parameters(self, {"dtype": self._backprop_constraints["dtype"]})
        return name

    def _np_dtype(self) -> type:
        return np.float32 if self._dtype_name() == "float32" else np.float64

    # ------------------------------------------------------------------------ training
    def _fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        incremental: bool,
        classes: Any = None,
    ) -> _BackpropMLP:
        """``fit`` (``incremental=False``) and ``partial_fit``.

        A call that raises leaves the estimator exactly as it was before it: every fitted
        attribute, the network's weights, the optimizer and the shuffle generator (an
        estimator that was not fitted stays unfitted). One exception, as ``backprop train``
        has it: training stopped by :class:`~backprop.training.TrainingDiverged` or by a
        ``KeyboardInterrupt`` (Ctrl-C, a notebook's "interrupt kernel") after it completed
        epochs keeps them: the model of the last completed epoch, with ``n_iter_``,
        ``loss_curve_``, ``t_`` and the validation scores of those epochs.
        """
        before = _FittedState(self, in_place=incremental or self.warm_start)
        try:
            unconverged = self._train(X, y, sample_weight, incremental, classes, before)
        except BaseException:
            before.restore(self)
            raise
        if unconverged is not None:  # (after the fit: a warning made an error leaves it; on
            # every rank under mpirun, so that one made an error stops every rank alike)
            warnings.warn(unconverged, ConvergenceWarning, stacklevel=3)
        return self

    def _train(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        incremental: bool,
        classes: Any,
        before: _FittedState,
    ) -> str | None:
        """The fit itself, which may leave the estimator half changed when it raises (its
        caller puts ``before`` back); the ConvergenceWarning's message, or None."""
        self._check_params()
        if incremental and self.early_stopping:
            raise ValueError(
                f"{type(self).__name__}.partial_fit does not support early_stopping=True "
                "(there is no held-out set across calls); use fit, or set early_stopping=False"
            )
        fitted = hasattr(self, "model_")
        # A new network unless warm-starting or continuing with partial_fit.
        first = not fitted or not (self.warm_start or incremental)
        self._check_targets(y)
        # a value beyond float32's (or float64's sum: inf - inf is 'invalid'): scikit-learn's
        # error says so
        with np.errstate(over="ignore", invalid="ignore"):
            X, y = validate_data(
                self,
                X,
                y,
                reset=first,
                accept_sparse=_SPARSE_FORMATS,
                dtype=self._np_dtype(),
                multi_output=True,
                y_numeric=not self._is_classifier,
            )
        X = _dense(X)
        T = self._encode_targets(y, first, incremental, classes)
        given_weights, sw = self._sample_weights(sample_weight, X, y, incremental)

        seeds = _generator(self.random_state).integers(0, 2**63, size=3)
        if self.random_state is None:  # under mpirun, rank 0's: one model, trained together
            seeds = same_on_every_rank(seeds)
        if first:
            self._build_model(X.shape[1], T.shape[1], int(seeds[0]))
        elif T.shape[1] != self.model_.n_outputs:
            raise ValueError(
                f"y has {T.shape[1]} outputs but the fitted network has {self.model_.n_outputs}; "
                "fit with warm_start=False to start again"
            )
        elif (mismatch := self._network_mismatch(self.model_.config)) is not None:
            # set_params after a fit: warm_start/partial_fit would go on with the old network
            # and save() record settings that are not its own
            raise ValueError(
                f"set_params after fit: {mismatch}; fit with warm_start=False to start again"
            )

        if first:
            self.t_ = 0
            self._no_improvement_count = 0
        # a warm_start fit goes on with the plateau count, the best loss and the validation
        # scores of the fits before it, as MLPClassifier's (which calls _initialize only on a
        # first fit); partial_fit has no plateau rule
        carry = not first and not incremental
        callbacks: list[Any] = []
        scale = self._loss_scale(T.shape[1])
        if scale != 1.0:  # before anything reads the epoch's loss
            callbacks.append(_ReportedLoss(scale))
        if self.verbose:  # MLPClassifier's order: the loss, the validation score, the plateau
            callbacks.append(_print_progress)
        validation = None
        if self.early_stopping:
            X, T, sw, validation = self._split_validation(X, y, T, sw, given_weights, int(seeds[1]))
            if carry and self.validation_scores_:
                validation.scores = list(self.validation_scores_)
                validation.best = self.best_validation_score_
                validation.count = getattr(self, "_no_improvement_count", 0)
                # the weights the last fit ended with are its best epoch's: this fit ends
                # with them unless one of its epochs scores higher
                validation.best_params = self.model_.state_dict()
            callbacks.append(validation)
        callbacks.append(_SamplesSeen(self, X.shape[0]))
        plateau = _LossPlateau(self.tol, self.n_iter_no_change, self._on_plateau)
        if carry and self.best_loss_ is not None:
            plateau.best = self.best_loss_
            plateau.count = getattr(self, "_no_improvement_count", 0)  # (pickles before it: 0)
        if not self.early_stopping and not incremental:
            callbacks.append(plateau)
        watch = None if incremental else validation or plateau
        last_epoch = _LastEpoch(self, validation, watch)  # once the epoch's callbacks are done
        callbacks.append(last_epoch)
        callbacks.extend(self.callbacks or ())

        n = X.shape[0]
        batch = min(200 if self.batch_size == "auto" else int(self.batch_size), n)
        mean_weight = 1.0 if sw is None else _mean_weight(sw)
        weight_decay = float(self.alpha) / (batch * mean_weight)
        if not math.isfinite(weight_decay):  # alpha over weights of mean 1e-320: inf
            raise ValueError(
                f"sample_weight has a mean of {mean_weight:g}, too small to scale alpha by "
                "(alpha / (batch_size * mean) overflows); scale the weights up"
            )
        if sw is not None:
            sw = sw / mean_weight  # mean 1: the engine averages over rows, see the module doc
        if incremental and not first and hasattr(self, "_optimizer"):
            # partial_fit keeps the optimizer's moments (a loaded estimator has none: the
            # model file holds the network, so it starts a new optimizer as warm_start does)
            self._optimizer.weight_decay = weight_decay
        else:
            self._optimizer = self._make_optimizer(weight_decay)
            self._shuffle_rng = np.random.default_rng(int(seeds[2]))

        state = TrainState(model=self.model_, optimizer=self._optimizer, rng=self._shuffle_rng)
        try:
            history = train(
                self.model_,
                X,
                T,
                epochs=1 if incremental else int(self.max_iter),
                batch_size=batch,
                shuffle=bool(self.shuffle),
                sample_weight=sw,
                callbacks=callbacks,
                state=state,
            )
        except (TrainingDiverged, KeyboardInterrupt) as stop:
            kept = last_epoch.kept
            if kept is None:  # not one epoch completed: the estimator is left as it was
                if isinstance(stop, TrainingDiverged):
                    raise self._diverged_at_once(stop, before) from None
                raise
            self._keep_epochs(kept, state, incremental)
            before.discard()  # the epochs completed are the estimator's, as in backprop train
            raise
        if validation is None:
            self._record(history["loss"], incremental, None, None)
        else:
            self._record(history["loss"], incremental, validation.scores, validation.best)
        if watch is not None:
            self._no_improvement_count = watch.count
        if validation is not None and validation.best_params is not None:
            self.model_.load_state_dict(validation.best_params)
        stopped = plateau.stopped or (validation is not None and validation.stopped)
        if incremental or stopped or self.n_iter_ != self.max_iter:
            return None
        # (no word on why: with learning_rate="adaptive" the count starts again at each
        # division of the rate, and a fit shorter than n_iter_no_change never tests it)
        return (
            f"{type(self).__name__}: reached max_iter={self.max_iter} epochs and the "
            "optimization hasn't converged yet"
        )

    def _keep_epochs(self, kept: _Epoch, state: TrainState, incremental: bool) -> None:
        """After a divergence or an interrupt: the estimator as of the last completed epoch,
        ``kept`` (under early stopping, with its best epoch's weights, as a fit that ends
        has). Diverged, the engine has put back that epoch's weights and moments; a
        Ctrl-C inside the next epoch left some of its steps taken: its weights are put
        back, and the optimizer, whose moments those steps moved, is dropped with the
        shuffle generator (the next ``partial_fit`` starts new ones, as after ``load``)."""
        if state.optimizer.t != kept.steps:
            self.model_.load_state_dict(kept.weights)
            del self._optimizer, self._shuffle_rng
        if kept.best_weights is not None:  # under early stopping: its best epoch's, as a fit
            self.model_.load_state_dict(kept.best_weights)  # that ends does (and
            # best_validation_score_ says; the last epoch's were kept beside it)
        self.t_ = kept.t
        if not incremental:
            self._no_improvement_count = kept.no_improvement
        self._record(state.history["loss"][: kept.epoch], incremental, kept.scores, kept.best_score)

    def _diverged_at_once(self, e: TrainingDiverged, before: _FittedState) -> TrainingDiverged:
        """The engine's TrainingDiverged for a first epoch that diverged, saying what the
        estimator holds (the engine's 'the weights it started from were kept' was about a
        network the estimator drops)."""
        name = type(self).__name__
        left = (
            f"{name} keeps the model it had before this call"
            if before.fitted
            else f"{name} is left unfitted"
        )
        message = f"training {e.history.stop_reason}; {left} ({e.hint})"
        return TrainingDiverged(message, e.history, e.epoch, e.hint)

    def _build_model(self, n_features: int, n_outputs: int, seed: int) -> None:
        output_activation, loss = self._output_config()
        self.model_ = MLP(
            [n_features, *(int(h) for h in self._hidden_sizes()), n_outputs],
            activation=ACTIVATION_ALIASES.get(self.activation, self.activation),
            output_activation=output_activation,
            loss=loss,
            init=self.init,
            dropout=float(self.dropout),
            dtype=self._dtype_name(),
            seed=seed,
            backend=self.backend,
            device=self.device,
        )
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(self.model_.config.sizes)
        self.out_activation_ = _SKLEARN_LINKS[self.model_.loss_fn.link]
        self.loss_function_ = loss
        self.loss_curve_ = []
        self.n_iter_ = 0

    def _make_optimizer(self, weight_decay: float) -> Optimizer:
        """The engine's optimizer for ``solver`` with scikit-learn's settings: ``sgd`` is
        plain gradient descent at ``momentum=0``, else heavy-ball or (``nesterovs_momentum``)
        Nesterov momentum; ``adam``/``adamw`` take ``beta_1``, ``beta_2``, ``epsilon``.
        ``weight_decay`` is the L2 term's coefficient (added to the gradient), except for
        ``adamw``, whose decay is decoupled: ``W <- W - eta weight_decay W`` each step."""
        # always given: alpha=0 is no decay, never AdamW's own default of 0.01
        kwargs: dict[str, Any] = {"lr": float(self.learning_rate_init)}
        kwargs["weight_decay"] = weight_decay
        name = self.solver
        if name == "sgd" and self.momentum > 0:
            name = "nesterov" if self.nesterovs_momentum else "momentum"
            kwargs["momentum"] = float(self.momentum)
        elif name in ("adam", "adamw"):
            kwargs.update(beta1=float(self.beta_1), beta2=float(self.beta_2))
            kwargs["eps"] = float(self.epsilon)
        elif name == "rmsprop":
            kwargs["eps"] = float(self.epsilon)
        return get_optimizer(name, **kwargs)

    def _on_plateau(self, state: TrainState) -> bool:
        """scikit-learn's rule when the loss (or validation score) stops improving: stop,
        except with ``solver="sgd"`` and ``learning_rate="adaptive"``, which divides the
        learning rate by 5 and goes on until it is at most 1e-6. With ``verbose``, it says
        so in MLPClassifier's words."""
        watched = "Validation score" if self.early_stopping else "Training loss"
        why = (
            f"{watched} did not improve more than tol={self.tol:f} for "
            f"{self.n_iter_no_change} consecutive epochs."
        )
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            self._say(f"{why} Stopping.")
            return True
        if state.optimizer.base_lr <= 1e-6:
            self._say(f"{why} Learning rate too small. Stopping.")
            return True
        state.optimizer.base_lr /= 5.0
        self._say(f"{why} Setting learning rate to {state.optimizer.base_lr:f}")
        return False

    def _say(self, line: str) -> None:
        if self.verbose and is_main_process():
            print(line)  # noqa: T201 - verbose=True

    def _loss_scale(self, n_outputs: int) -> float:
        """A factor on the loss reported (1 but for the regressor's ``squared_error``)."""
        return 1.0

    # ------------------------------------------------------------- fitted attributes
    def _fitted_model(self) -> MLP:
        model = self.__dict__.get("model_")
        if model is None:
            raise AttributeError(f"this {type(self).__name__} is not fitted yet: call fit first")
        return model

    @property
    def coefs_(self) -> list[np.ndarray]:
        """scikit-learn's ``coefs_``: the weight matrices, ``coefs_[i]`` of shape
        (units of layer i, units of layer i + 1) (the network's live arrays on the NumPy
        backend, host copies on others). Assigning the list, or an item of it
        (``coefs_[0] = W``), writes into the network (see :class:`_LayerArrays`)."""
        model = self._fitted_model()
        arrays = [np.asarray(model.backend.to_numpy(layer.W)) for layer in model.dense]
        return _LayerArrays(arrays, self, "coefs_")

    @coefs_.setter
    def coefs_(self, values: Sequence[Any]) -> None:
        self._assign_layers("coefs_", "W", values)

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """scikit-learn's ``intercepts_``: the bias vectors, ``intercepts_[i]`` of shape
        (units of layer i + 1,)."""
        model = self._fitted_model()
        arrays = [
            np.asarray(model.backend.to_numpy(layer.b))
            if layer.b is not None
            else np.zeros(layer.W.shape[1], model.dtype)
            for layer in model.dense
        ]
        return _LayerArrays(arrays, self, "intercepts_")

    @intercepts_.setter
    def intercepts_(self, values: Sequence[Any]) -> None:
        self._assign_layers("intercepts_", "b", values)

    def _assign_layers(self, attribute: str, part: str, values: Sequence[Any]) -> None:
        """``coefs_`` (``part`` "W") or ``intercepts_`` ("b") set to ``values``, one array a
        layer, all or none (a bad second array left the first written; a list one layer
        short was taken), errors naming ``coefs_[i]``."""
        model = self._fitted_model()
        values = list(values)
        if len(values) != len(model.dense):
            raise ValueError(
                f"{attribute} holds one array per layer, {len(model.dense)}; got {len(values)}"
            )
        named = {parameter_name(k, part): v for k, v in enumerate(values)}
        try:
            model.params.update(named)
        except (ValueError, TypeError) as e:
            message = re.sub(rf"layers\.(\d+)\.{part}\b", rf"{attribute}[\1]", str(e))
            raise type(e)(message) from None

    def _sample_weights(
        self, sample_weight: Any, X: np.ndarray, y: Any, incremental: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The checked ``sample_weight`` (n_samples,), which early stopping scores the
        held-out rows with, and the rows' training weights (the classifier multiplies its
        class weights in); None for all ones."""
        if sample_weight is None:
            return None, None
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if not (sw > 0).any():  # (a sum of weights of 1e307 overflowed)
            raise ValueError(
                "Sample weights must contain at least one non-zero number; all weights are zero"
            )
        return sw, sw

    def _check_targets(self, y: Any) -> None:
        """Checks of ``y`` before scikit-learn's (whose words would not name the problem)."""

    def _split_validation(
        self,
        X: np.ndarray,
        y: Any,
        T: np.ndarray,
        sw: np.ndarray | None,
        given_weights: np.ndarray | None,
        seed: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, _ValidationScore]:
        """Hold out ``validation_fraction`` of the rows (stratified for single-label
        classification, where each class has 2 rows and each part room for every class)
        and build the callback that scores them each epoch; the training rows' ``X``,
        ``T`` and training weights ``sw``.

        The held-out rows are scored with the user's ``given_weights`` alone (accuracy or
        R^2 weighted by ``sample_weight``, not by ``class_weight``, as SGDClassifier's early
        stopping scores them). A split that leaves either part without a row of positive
        weight is refused, naming the fix."""
        if self.validation_fraction == 0:  # (scikit-learn's own check named test_size)
            raise ValueError(
                "validation_fraction=0.0 holds out no rows; early_stopping=True needs a "
                "fraction in (0, 1)"
            )
        stratify = y if self._is_classifier and y.ndim == 1 else None
        if stratify is not None:
            counts = np.unique(y, return_counts=True)[1]
            n_val = math.ceil(self.validation_fraction * len(y))
            if counts.min() < 2 or min(n_val, len(y) - n_val) < len(counts):
                stratify = None  # a plain random split (scikit-learn's for any multiclass y)
        # the row numbers of each part (the split train_test_split makes of X itself)
        train, held_out = train_test_split(
            np.arange(X.shape[0]),
            test_size=self.validation_fraction,
            random_state=seed % 2**32,
            stratify=stratify,
        )
        if len(held_out) < 2:
            raise ValueError(
                f"the validation set has {len(held_out)} rows; increase validation_fraction "
                f"(now {self.validation_fraction}) or give more data (early_stopping=True)"
            )
        X_val, y_val = X[held_out], y[held_out]
        sw_val = None if given_weights is None else given_weights[held_out]
        sw_tr = None if sw is None else sw[train]
        for part, weights in (("held-out", sw_val), ("training", sw_tr)):
            if weights is not None and not (weights > 0).any():
                # (the score read 'Sample weights must contain at least one non-zero
                # number' after the first epoch; training divided by a zero mean weight)
                raise ValueError(
                    f"early_stopping=True: all {len(weights)} {part} rows have weight 0 "
                    f"(validation_fraction={self.validation_fraction}); the split needs rows "
                    "of positive weight in both parts: change random_state or "
                    "validation_fraction, or spread the positive weights"
                )
        callback = _ValidationScore(
            lambda: self._validation_score(X_val, y_val, sw_val),
            self.tol,
            self.n_iter_no_change,
            "val_accuracy" if self._is_classifier else "val_r2",
            self._on_plateau,
            verbose=bool(self.verbose),
        )
        return X[train], T[train], sw_tr, callback

    def _record(
        self,
        losses: list[float],
        incremental: bool,
        validation_scores: list[float] | None,
        best_validation_score: float | None,
    ) -> None:
        """The fitted attributes of the epochs trained (at least one)."""
        # in place, as MLPClassifier's: a new list and a min over it each call made 60,000
        # partial_fit calls take twice as long each as the first (4.6 ms against 2.3 ms)
        best = self.best_loss_ if incremental and self.loss_curve_ else None
        self.loss_curve_.extend(losses)
        self.n_iter_ = self.n_iter_ + len(losses) if incremental else len(losses)
        self.loss_ = self.loss_curve_[-1]
        # scikit-learn's: None under early stopping, where the validation score is watched
        if validation_scores is not None:
            self.best_loss_ = None
        elif best is not None:
            self.best_loss_ = min(best, *losses)
        else:
            self.best_loss_ = min(self.loss_curve_)
        self.validation_scores_ = validation_scores
        self.best_validation_score_ = best_validation_score

    # ---------------------------------------------------------------------- prediction
    def _outputs(self, X: Any, link: bool) -> np.ndarray:
        """Network outputs for validated ``X``: raw (logits) or through the loss's link."""
        model = self.model_
        out = model.predict(X) if link else model.forward(X)
        return np.asarray(model.backend.to_numpy(out))

    def _validate_X(self, X: Any) -> np.ndarray:
        """``X`` checked against the fit and cast to the fitted network's dtype (not to the
        ``dtype`` hyperparameter, which a set_params after the fit may have changed: it
        applies from the next fit on, as every hyperparameter does)."""
        check_is_fitted(self)
        # a value beyond float32's (or float64's sum: inf - inf is 'invalid'): scikit-learn's
        # error says so
        with np.errstate(over="ignore", invalid="ignore"):
            X = validate_data(
                self, X, reset=False, accept_sparse=_SPARSE_FORMATS, dtype=self.model_.dtype
            )
        return _dense(X)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # taken, and made dense (_dense)
        return tags

    def _in_input_float_type(self, out: np.ndarray, X: Any) -> np.ndarray:
        """Outputs ``out`` (the network's dtype) as float64, as MLPRegressor's and
        MLPClassifier's are, but float32 where both the network and ``X`` (before
        validation: see :func:`_float_type_of`) are: a float32 network's outputs were
        float32 for a float64 ``X``. The values keep the network's precision."""
        return out.astype(np.result_type(_float_type_of(X), out.dtype), copy=False)

    # -------------------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the fitted estimator to one model file in the project's safe format.

        ``path`` is a :mod:`backprop.io` model file (safetensors): the network's weights
        and config as :func:`backprop.io.save_model` writes them, plus a ``"sklearn"``
        metadata entry (JSON) with this estimator's hyperparameters and fitted metadata
        (``classes_``, ``feature_names_in_``, ``loss_curve_``...). Nothing is pickled; the
        write is atomic. ``backprop.io.load_model(path)`` reads the network alone.
        Engine ``callbacks`` (code, not data) are not saved.
        """
        check_is_fitted(self)
        self._check_params()  # (set_params(dropout=None) failed inside the check below)
        mismatch = self._network_mismatch(self.model_.config)
        if mismatch is not None:
            raise ValueError(f"cannot save: {mismatch} (set_params after fit); fit again first")
        save_estimator(self, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], backend: str = "numpy", device: str | None = None
    ) -> Any:
        """Load an estimator written by :meth:`save`, its network on ``backend``/``device``.

        The file is not trusted: the network is read by :func:`backprop.io.load_model` and
        every field of the record is checked. Any problem raises one
        :class:`backprop.io.ModelFileError` (a ``ValueError``) naming the file and the field.
        """
        return load_estimator(cls, path, backend, device)

    def _fitted_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "n_features_in": int(self.n_features_in_),
            "loss_curve": [float(v) for v in self.loss_curve_],
            "n_iter": int(self.n_iter_),
            "t": int(self.t_),
            # the plateau count a warm_start fit goes on with
            "no_improvement_count": int(getattr(self, "_no_improvement_count", 0)),
            "validation_scores": None
            if self.validation_scores_ is None
            else [float(v) if math.isfinite(v) else None for v in self.validation_scores_],
        }
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in"] = [str(f) for f in self.feature_names_in_]
        return meta

    def _set_fitted_metadata(self, meta: dict[str, Any], model: MLP) -> None:
        n_in = field(meta, "n_features_in", int)
        expect(
            n_in == model.n_inputs,
            f"n_features_in={n_in} but the network has {model.n_inputs} inputs",
        )
        self.n_features_in_ = n_in
        self.n_outputs_ = model.n_outputs
        if "feature_names_in" in meta:
            names = field(meta, "feature_names_in", list)
            expect(
                len(names) == n_in and all(isinstance(f, str) for f in names),
                f"feature_names_in must be {n_in} strings",
            )
            self.feature_names_in_ = np.asarray(names, dtype=object)
        curve = field(meta, "loss_curve", list)
        expect(all(is_real(v) for v in curve), "loss_curve must be a list of numbers")
        self.loss_curve_ = [float(v) for v in curve]
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.n_iter_ = field(meta, "n_iter", int)
        scores = meta.get("validation_scores")
        self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ and scores is None else None
        expect(
            scores is None
            or (isinstance(scores, list) and all(v is None or is_real(v) for v in scores)),
            "validation_scores must be null or a list of numbers",
        )
        self.validation_scores_ = (
            None if scores is None else [math.nan if v is None else float(v) for v in scores]
        )
        self.best_validation_score_ = (
            None if not scores else max(v for v in self.validation_scores_)
        )
        self.out_activation_ = _SKLEARN_LINKS[model.loss_fn.link]
        self.loss_function_ = model.config.loss
        self.n_layers_ = len(model.config.sizes)
        t = meta.get("t", 0)  # files written before t_ was saved hold none
        expect(isinstance(t, int) and not isinstance(t, bool) and t >= 0, "t must be an int")
        self.t_ = t
        count = meta.get("no_improvement_count", 0)  # files written before it hold none
        expect(
            isinstance(count, int) and not isinstance(count, bool) and count >= 0,
            "no_improvement_count must be an int >= 0",
        )
        self._no_improvement_count = count

    # ------------------------------------------------------------------------- pickle
    def __getstate__(self) -> dict[str, Any]:
        # MLP holds its array module, which cannot be pickled: store the network as data
        # (config, weights, dropout generator state) and rebuild it on unpickling.
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state["_model_data"] = {
                "config": model.config.to_dict(),
                "params": model.state_dict(),
                "dropout_rng": model.dropout_rng.bit_generator.state,
                "preprocessing": model.preprocessing,
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        data = state.pop("_model_data", None)
        super().__setstate__(state)
        if data is not None:
            model = MLP.from_config(
                MLPConfig.from_dict(data["config"]), backend=self.backend, device=self.device
            )
            model.load_state_dict(data["params"])
            model.dropout_rng.bit_generator.state = data["dropout_rng"]
            model.preprocessing = data["preprocessing"]
            self.model_ = model


# ------------------------------------------------------------------------- the classifier
class BackpropClassifier(ClassifierMixin, _BackpropMLP):
    """A multilayer perceptron classifier trained by backpropagation (scikit-learn API).

    Binary, multi-class and multi-label (``y`` a 0/1 indicator matrix, dense or sparse)
    classification.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units in each hidden layer.
    activation : str, default="relu"
        Hidden activation: ``sigmoid`` (alias ``logistic``), ``tanh``, ``relu``,
        ``leaky_relu``, ``elu``, ``gelu``, ``softplus`` or ``identity``.
    loss : {"cross_entropy", "binary_cross_entropy"}, default="cross_entropy"
        ``cross_entropy``: softmax over the classes for multi-class targets. Binary and
        multi-label targets always use one sigmoid output per label with
        ``binary_cross_entropy`` (the log-loss on one logit, as MLPClassifier does).
        ``binary_cross_entropy`` on multi-class targets trains one-vs-rest sigmoid outputs;
        ``predict_proba`` then normalises them to sum to 1.
    solver : {"adam", "sgd", "adamw", "rmsprop"}, default="adam"
        scikit-learn's ``adam`` and ``sgd`` (with ``momentum`` and ``nesterovs_momentum``:
        plain gradient descent at ``momentum=0``, heavy-ball momentum, or Nesterov's), and
        the engine's ``adamw`` and ``rmsprop``. ``"lbfgs"`` is one clear error: there is
        no L-BFGS here.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        With ``solver="sgd"`` (ignored otherwise, as in scikit-learn): ``invscaling`` sets
        the rate after each epoch to ``learning_rate_init / (t_ + 1) ** power_t``;
        ``adaptive`` divides it by 5 each time the loss (or validation score) stops
        improving for ``n_iter_no_change`` epochs, and stops once it is at most 1e-6.
    learning_rate_init : float, default=1e-3
        The optimizer's learning rate ``eta``.
    power_t : float, default=0.5
        The exponent of ``invscaling``.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's (and AdamW's) moment decay rates and its ``eps``; ``epsilon`` is RMSprop's
        ``eps`` too.
    nesterovs_momentum : bool, default=True
        With ``solver="sgd"`` and ``momentum > 0``: Nesterov's momentum, else heavy-ball.
    max_fun : int, default=15000
        Accepted for scikit-learn's signature; it limits L-BFGS, which backprop lacks.
    batch_size : int or "auto", default="auto"
        Rows per step; ``"auto"`` is ``min(200, n_samples)``. Values above the number of
        training rows are clipped to it.
    max_iter : int, default=200
        Epochs (passes over the data) at most.
    shuffle : bool, default=True
        Reshuffle the rows each epoch.
    tol : float, default=1e-4
        Training stops when the training loss (or, with ``early_stopping``, the validation
        accuracy) has not improved by ``tol`` for more than ``n_iter_no_change`` epochs.
    n_iter_no_change : int or np.inf, default=10
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified where every class has 2
        rows and room in both parts), score them each epoch (accuracy weighted by
        ``sample_weight`` alone, not ``class_weight``) and keep the weights of the best epoch.
    validation_fraction : float, default=0.1
    alpha : float, default=1e-4
        L2 penalty with MLPClassifier's meaning: ``alpha / (2 S_B) ||W||^2`` per batch of total
        weight ``S_B`` (biases are not penalised). See the module docstring. With
        ``solver="adamw"`` it is AdamW's decoupled decay instead: each step multiplies the
        weights by ``1 - learning_rate_init * alpha / (batch_size * mean(s))``, apart from
        Adam's moments (no L2 term in the gradient); 0 is no decay.
    momentum : float, default=0.9
        With ``solver="sgd"`` (0 for plain gradient descent).
    dropout : float, default=0.0
        Dropout probability after each hidden layer during training.
    init : str, default="xavier_uniform"
        Weight initialiser (``xavier_uniform`` is MLPClassifier's Glorot uniform).
    random_state : int >= 0, numpy Generator or RandomState, or None, default=None
        Seeds the initial weights, the shuffles, the dropout masks and the validation split.
        ``None`` draws the seed from NumPy's global ``RandomState`` on each fit (scikit-learn's
        ``check_random_state(None)``): fits differ, and ``np.random.seed`` makes them
        reproducible, as with MLPClassifier.
    dtype : {"float64", "float32"}, default="float64"
        The network's floating-point type (a NumPy dtype or type equal to one, such as
        ``np.float32``, is kept as given and means the same); ``fit`` casts ``X`` to it
        (a float32 ``X`` too, which MLPClassifier keeps). Prediction reads ``X`` in the
        fitted network's type (a ``set_params(dtype=...)`` applies from the next fit on);
        outputs are float64, or float32 where the network and ``X`` both are.
    warm_start : bool, default=False
        Continue from the fitted network on the next ``fit`` (same classes required), with a
        new optimizer, as MLPClassifier: ``loss_curve_``, ``t_``, ``best_loss_``, the plateau
        count, and under early stopping ``validation_scores_``, ``best_validation_score_``
        and the best epoch's weights go on from the fits before; ``n_iter_`` counts this
        fit's epochs.
    class_weight : dict, "balanced" or None, default=None
        Weights by class label, multiplied into ``sample_weight``.
    verbose : bool or int >= 0, default=False
        Print MLPClassifier's lines: the loss after each epoch, the validation score with
        ``early_stopping``, and why training stops at a plateau or the adaptive rate falls.
    backend : str, default="numpy"
        Array library: ``numpy``, ``torch``, ``cupy`` or ``array_api_strict``.
    device : str or None, default=None
        For example ``"cuda"`` with the torch or cupy backend.
    callbacks : list or tuple of backprop.training callbacks, or None, default=None
        Called at each epoch's end with the :class:`~backprop.training.TrainState`. With
        ``early_stopping=True`` each epoch's row of the history holds the held-out score as
        ``val_accuracy`` (``val_r2`` for the regressor), so
        ``EarlyStopping(monitor="val_accuracy", mode="auto", restore_best_weights=True)``
        can stop on it (``mode="auto"`` maximises it).

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
        Class labels (for multi-label: ``0..n_labels-1``).
    model_ : backprop.MLP
        The trained network; its outputs are logits.
    n_outputs_ : int
        Network outputs: 1 for binary, ``n_classes`` or ``n_labels`` otherwise.
    out_activation_ : {"softmax", "logistic"}
        How logits become probabilities (scikit-learn's names).
    coefs_ : list of ndarray
        ``coefs_[i]`` of shape (units of layer i, units of layer i + 1): the weights, as
        in scikit-learn (on the NumPy backend, the network's own arrays).
    intercepts_ : list of ndarray
        ``intercepts_[i]`` of shape (units of layer i + 1,): the biases.
    n_layers_ : int
        Layers including the input and output layers (hidden layers + 2).
    t_ : int
        Training rows seen by the solver (epochs x rows, summed over partial_fit calls).
    loss_function_ : str
        The engine loss trained.
    loss_curve_ : list of float
        Mean training loss of each epoch (without the L2 term).
    loss_, best_loss_ : float
        The last and the lowest training loss (``best_loss_`` is None with
        ``early_stopping``, as scikit-learn's: the validation score is watched instead).
    validation_scores_ : list of float or None
        Validation accuracy of each epoch, with ``early_stopping`` (else ``None``).
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run by the last ``fit`` (plus one per ``partial_fit`` since).
    n_features_in_ : int
    feature_names_in_ : ndarray (n_features_in_,)
        Only when ``X`` had string column names (a pandas DataFrame).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = BackpropClassifier(hidden_layer_sizes=(16,), max_iter=300, learning_rate_init=1e-2,
    ...                          random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    _backprop_constraints = {**mlp_constraints(CLASSIFIER_LOSSES), "class_weight": ClassWeight()}
    _is_classifier = True

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        loss: str = "cross_entropy",
        dropout: float = 0.0,
        init: str = "xavier_uniform",
        dtype: str | np.dtype | type = "float64",
        class_weight: dict[Any, float] | str | None = None,
        backend: str = "numpy",
        device: str | None = None,
        callbacks: Sequence[Any] | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.loss = loss
        self.dropout = dropout
        self.init = init
        self.dtype = dtype
        self.class_weight = class_weight
        self.backend = backend
        self.device = device
        self.callbacks = callbacks

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BackpropClassifier:
        """Train on ``X`` (n_samples, n_features; a scipy.sparse ``X`` is made dense) and
        labels ``y``: (n_samples,) class labels or (n_samples, n_labels) 0/1 indicators;
        ``sample_weight`` (n_samples,).

        If it raises, the estimator is as it was before the call (partial_fit likewise),
        except after ``TrainingDiverged`` or a ``KeyboardInterrupt`` (Ctrl-C) that came once
        epochs were complete: the estimator then holds the model of the last completed
        epoch, its ``n_iter_``, ``loss_curve_`` and ``t_`` those epochs', and the
        exception still propagates (MLPClassifier swallows a KeyboardInterrupt).
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(
        self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
    ) -> BackpropClassifier:
        """One epoch over ``(X, y)``, continuing the network and optimizer state.

        ``classes`` (every label that will ever appear) is required on the first call,
        except for multi-label indicator ``y``. The arguments are in MLPClassifier's order
        (``partial_fit(X, y, w)`` read 0/1 weights ``w`` as the classes).
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    # ------------------------------------------------------------------------ targets
    def _encode_targets(self, y: Any, first: bool, incremental: bool, classes: Any) -> np.ndarray:
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        kind = type_of_target(y, input_name="y")
        if kind not in _CLASSIFICATION_TARGETS:
            # check_classification_targets' words, without its warning that y "could
            # represent a regression problem" when most rows have classes of their own,
            # which MLPClassifier (it never calls that check) does not give
            raise ValueError(
                f"Unknown label type: {kind}. Maybe you are trying to fit a classifier, which "
                "expects discrete classes on a regression target with continuous values."
            )
        multilabel = kind == "multilabel-indicator"
        if multilabel:
            _check_indicator(y)
        if not first:
            self._check_same_kind_of_targets(y, multilabel)
        if first:
            if incremental and classes is None and not multilabel:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit: every class "
                    "label that will appear, e.g. classes=np.unique(y_all)"
                )
            binarizer = LabelBinarizer()
            found = None  # y's labels, where they may differ from classes_
            if incremental and classes is not None and not multilabel:
                binarizer.fit(np.asarray(classes))
                found = unique_labels(y)
            else:  # a multi-label y's columns are its classes (MLPClassifier ignores classes)
                binarizer.fit(y)
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
            self._target_type = binarizer.y_type_
            if len(self.classes_) < 2 and found is not None:  # the list given was short
                raise ValueError(
                    f"classes={_plain(classes)} has only one class; a classifier needs at "
                    "least two (classes lists every label that will appear)"
                )
            if len(self.classes_) < 2:
                raise ValueError(
                    f"y has only one class ({_plain(self.classes_[0])!r}); a classifier "
                    "needs samples of at least two classes"
                )
        else:
            if classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
                raise ValueError(
                    f"classes={_plain(classes)} differs from the classes of the first call, "
                    f"{_plain(self.classes_)}"
                )
            found = unique_labels(y)
            if self.warm_start and not incremental and set(found) != set(self.classes_):
                raise ValueError(
                    "warm_start needs y to have the same classes as the previous fit: "
                    f"previously {_plain(self.classes_)}, now {_plain(found)}"
                )
        unknown = [] if found is None else np.setdiff1d(found, self.classes_)
        if len(unknown):
            raise ValueError(
                f"y has classes {_plain(unknown)} that are not in classes_ {_plain(self.classes_)}"
            )
        return self._label_binarizer.transform(y).astype(self._np_dtype())

    def _check_same_kind_of_targets(self, y: Any, multilabel: bool) -> None:
        """Refuse, after a fit, a ``y`` of the other kind (one label per row against a
        multi-label indicator matrix) or with another number of label columns: the
        network's outputs are the first fit's."""
        fitted = self._target_type == "multilabel-indicator"
        if multilabel == fitted and (not multilabel or y.shape[1] == len(self.classes_)):
            return
        now = (
            f"a multi-label indicator matrix with {y.shape[1]} label columns"
            if multilabel
            else "one class label per row"
        )
        before = (
            f"a multi-label indicator matrix with {len(self.classes_)} label columns"
            if fitted
            else f"one class label per row (classes {_plain(self.classes_)})"
        )
        raise ValueError(
            f"y holds {now} but the classifier was fitted on {before}; fit with "
            "warm_start=False to change the targets"
        )

    def _sample_weights(
        self, sample_weight: Any, X: np.ndarray, y: Any, incremental: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The checked sample_weight, and the training weights: it times the class weights.
        Refused, naming which of the two is the cause, when they leave no row (or, in a fit
        of one label a row, one class only) with positive weight."""
        sw = super()._sample_weights(sample_weight, X, y, incremental)[0]
        single_label = self._target_type != "multilabel-indicator"
        labels = (column_or_1d(y) if y.ndim == 2 else y) if single_label else None
        if sw is not None and not incremental and single_label:
            weighted = unique_labels(labels[sw > 0])
            if len(weighted) < 2:
                raise ValueError(
                    f"only the class {_plain(weighted[0])!r} has samples with positive "
                    "sample_weight; a classifier needs at least two classes with positive weight"
                )
        cw = self._class_weights(y, incremental)
        if cw is None:
            return sw, sw
        combined = cw if sw is None else sw * cw
        cause = (
            f"class_weight={short_repr(self.class_weight)}"
            if sw is None
            else f"sample_weight with class_weight={short_repr(self.class_weight)}"
        )
        if not (combined > 0).any():
            raise ValueError(
                f"{cause} gives every row weight 0; a classifier needs rows of positive weight"
                + (" of at least two classes" if single_label and not incremental else "")
            )
        if not incremental and single_label:
            weighted = unique_labels(labels[combined > 0])
            if len(weighted) < 2:
                raise ValueError(
                    f"{cause} leaves only the class {_plain(weighted[0])!r} with positive "
                    "weight; a classifier needs at least two classes with positive weight"
                )
        return sw, combined

    def _class_weights(self, y: Any, incremental: bool) -> np.ndarray | None:
        """``class_weight`` as each row's weight. A dict's weights are looked up by label
        (1 for a class it does not name) against ``classes_``, not only the classes in
        ``y``: a partial_fit batch without some class the dict names is no error."""
        class_weight = self.class_weight
        if class_weight is None:
            return None
        if not isinstance(class_weight, Mapping):  # "balanced" (the constraint allows no other)
            if incremental:
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit (the class counts "
                    "of one batch are not those of the data); pass a dict of weights instead"
                )
            return compute_sample_weight(class_weight, y)
        if self._target_type == "multilabel-indicator":
            raise ValueError(
                "class_weight as a dict needs one class per row; multi-label y takes "
                "class_weight='balanced' or sample_weight"
            )
        classes = self.classes_.tolist()
        unknown = [label for label in class_weight if label not in classes]
        if unknown and not all(c in class_weight for c in classes):
            # (scikit-learn's rule: labels beside a weight for every class are ignored,
            # which keeps a cross-validation fold that lacks a class working)
            raise ValueError(
                f"class_weight names classes {_plain(unknown)}; expected classes among "
                f"{_plain(self.classes_)}"
            )
        weights = np.array([float(class_weight.get(c, 1.0)) for c in classes])
        labels = column_or_1d(y) if y.ndim == 2 else y
        return weights[np.searchsorted(self.classes_, labels)]

    def _output_config(self) -> tuple[str, str]:
        if self._target_type == "multiclass" and self.loss == "cross_entropy":
            return "identity", "cross_entropy"
        return "identity", "binary_cross_entropy"

    def _validation_score(self, X: np.ndarray, y: Any, sample_weight: Any) -> float:
        return float(
            accuracy_score(
                y, self._labels(self._outputs(X, link=False)), sample_weight=sample_weight
            )
        )

    # --------------------------------------------------------------------- prediction
    def _labels(self, logits: np.ndarray) -> np.ndarray:
        if self._target_type == "multilabel-indicator":
            return self._label_binarizer.inverse_transform((logits > 0).astype(np.int64))
        if logits.shape[1] == 1:
            return self.classes_[(logits[:, 0] > 0).astype(np.intp)]
        return self.classes_[np.argmax(logits, axis=1)]

    def decision_function(self, X: Any) -> np.ndarray:
        """The network's logits: shape (n_samples,) for binary targets, else
        (n_samples, n_outputs_). Positive means the (second) class / label is predicted.
        float64, or float32 for a float32 network and a float32 ``X`` (as the methods below)."""
        logits = self._in_input_float_type(self._outputs(self._validate_X(X), link=False), X)
        return logits[:, 0] if self._target_type == "binary" else logits

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (n_samples,), or a 0/1 indicator matrix (n_samples, n_labels) for
        multi-label targets (each label predicted when its probability exceeds 0.5)."""
        return self._labels(self._outputs(self._validate_X(X), link=False))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes) in the order of ``classes_``; for
        multi-label targets, each label's probability (n_samples, n_labels)."""
        valid = self._validate_X(X)
        if self._target_type == "multiclass" and self.loss_function_ == "binary_cross_entropy":
            # one-vs-rest sigmoids normalised to sum 1, in log space: never 0/0
            p = np.exp(self._log_proba(valid))
        else:
            p = self._outputs(valid, link=True)
        if self._target_type == "binary":
            p = np.column_stack([1.0 - p[:, 0], p[:, 0]])
        return self._in_input_float_type(p, X)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``, shape (n_samples, n_classes), computed from the logits
        (log-sigmoid, log-softmax): finite wherever the log-probability is representable,
        where ``log`` of a probability that rounded to 0 would be ``-inf``."""
        return self._in_input_float_type(self._log_proba(self._validate_X(X)), X)

    def _log_proba(self, X: np.ndarray) -> np.ndarray:
        z = self._outputs(X, link=False)
        if self._target_type == "binary":  # log(1 - s(z)) = log s(-z)
            return np.column_stack([log_sigmoid(np, -z[:, 0]), log_sigmoid(np, z[:, 0])])
        if self._target_type == "multilabel-indicator":
            return log_sigmoid(np, z)
        if self.loss_function_ == "binary_cross_entropy":  # normalised one-vs-rest sigmoids
            return log_softmax(np, log_sigmoid(np, z))
        return log_softmax(np, z)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    # ------------------------------------------------------------------ save metadata
    def _fitted_metadata(self) -> dict[str, Any]:
        meta = super()._fitted_metadata()
        meta["classes"] = labels_to_json(self.classes_)
        meta["target_type"] = self._target_type
        # a multi-label y given as a sparse matrix: predict returns one (scikit-learn's
        # LabelBinarizer keeps what its input was)
        meta["sparse_y"] = bool(self._label_binarizer.sparse_input_)
        return meta

    def _set_fitted_metadata(self, meta: dict[str, Any], model: MLP) -> None:
        super()._set_fitted_metadata(meta, model)
        target_type = meta.get("target_type")
        expect(
            target_type in ("binary", "multiclass", "multilabel-indicator"),
            f"unknown target_type {target_type!r}; expected binary, multiclass or "
            "multilabel-indicator",
        )
        classes = labels_from_json(meta.get("classes"))
        n_out = 1 if target_type == "binary" else len(classes)
        expect(
            len(classes) >= 2 and len(np.unique(classes)) == len(classes),
            "classes must hold at least two distinct labels",
        )
        expect(  # (3 binary classes loaded: classes_ of 3 beside predict_proba's 2 columns)
            target_type != "binary" or len(classes) == 2,
            f"binary targets have 2 classes; the record holds {len(classes)}",
        )
        expect(
            model.n_outputs == n_out and model.config.loss in CLASSIFIER_LOSSES,
            f"{len(classes)} {target_type} classes need a cross-entropy network with {n_out} "
            f"outputs; the network has {model.n_outputs} and loss {model.config.loss!r}",
        )
        sparse_y = meta.get("sparse_y", False)  # files written before it: dense
        expect(isinstance(sparse_y, bool), f"sparse_y is {sparse_y!r:.60}; expected a bool")
        expect(
            not sparse_y or target_type == "multilabel-indicator",
            f"sparse_y is true for {target_type} targets; only a multi-label y can be sparse",
        )
        self._target_type = target_type
        self.classes_ = classes
        binarizer = LabelBinarizer()
        if target_type == "multilabel-indicator":
            indicator = np.eye(len(classes), dtype=np.int64)
            binarizer.fit(scipy.sparse.csr_matrix(indicator) if sparse_y else indicator)
        else:
            binarizer.fit(classes)
        self._label_binarizer = binarizer


# ------------------------------------------------------------------------- the regressor
class BackpropRegressor(RegressorMixin, _BackpropMLP):
    """A multilayer perceptron regressor trained by backpropagation (scikit-learn API).

    Single- and multi-output regression with an identity output layer.

    Parameters
    ----------
    loss : {"squared_error", "mse", "l2", "mae", "huber"}, default="squared_error"
        ``squared_error`` is scikit-learn's, ``1/2`` the mean over the outputs of
        ``(y_j - t_j)^2``; ``mse`` averages the squared error over outputs (twice
        ``squared_error``); ``l2`` is the seed's ``1/2 sum_j (y_j - t_j)^2``; ``huber``
        uses delta 1. ``"poisson"`` is one clear error (no Poisson loss here).
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, \
learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start, \
momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon, \
n_iter_no_change, max_fun, dropout, init, dtype, backend, device, callbacks
        As in :class:`BackpropClassifier`; ``early_stopping`` scores the held-out rows by
        R^2 (not stratified).

    Attributes
    ----------
    model_ : backprop.MLP
    n_outputs_ : int
        Targets per sample.
    out_activation_ : "identity"
    coefs_, intercepts_, n_layers_, t_
        As in :class:`BackpropClassifier`.
    loss_function_, loss_curve_, loss_, best_loss_, validation_scores_, \
best_validation_score_, n_iter_, n_features_in_, feature_names_in_
        As in :class:`BackpropClassifier` (validation scores are R^2).

    ``predict`` returns shape (n_samples,) when ``y`` was 1-D, else (n_samples, n_outputs_).
    """

    _backprop_constraints = mlp_constraints(REGRESSOR_LOSSES)

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        dropout: float = 0.0,
        init: str = "xavier_uniform",
        dtype: str | np.dtype | type = "float64",
        backend: str = "numpy",
        device: str | None = None,
        callbacks: Sequence[Any] | None = None,
    ) -> None:
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.init = init
        self.dtype = dtype
        self.backend = backend
        self.device = device
        self.callbacks = callbacks

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BackpropRegressor:
        """Train on ``X`` (n_samples, n_features) and targets ``y`` (n_samples,) or
        (n_samples, n_outputs); ``sample_weight`` (n_samples,). A fit that raises leaves the
        estimator as :meth:`BackpropClassifier.fit` says."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> BackpropRegressor:
        """One epoch over ``(X, y)``, continuing the network and optimizer state."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _check_targets(self, y: Any) -> None:
        # scikit-learn's words were "could not convert string to float: np.str_('a')", and
        # for a sparse y "setting an array element with a sequence."; any other problem
        # (None, a ragged y) is left to scikit-learn's checks
        if scipy.sparse.issparse(y):
            raise ValueError(
                f"y is a sparse matrix ({type(y).__name__}, shape {tuple(y.shape)}); a "
                "regressor's targets must be a dense array, e.g. y.toarray()"
            )
        try:
            values = np.asarray(y) if y is not None and not hasattr(y, "toarray") else None
        except ValueError:
            return
        if values is None or values.ndim == 0 or values.dtype.kind not in "OSU":
            return
        try:
            values.astype(np.float64)
        except (TypeError, ValueError):
            for i, v in enumerate(values.ravel().tolist()):
                if isinstance(v, str | bytes) and not _is_float_text(v):
                    raise ValueError(
                        f"y holds {v!r} (at flat index {i}); a regressor's targets must be numbers"
                    ) from None

    def _encode_targets(self, y: Any, first: bool, incremental: bool, classes: Any) -> np.ndarray:
        if first:
            self._y_ndim = y.ndim
        elif y.ndim != self._y_ndim:
            raise ValueError(
                f"y is {y.ndim}-D but the estimator was fitted on {self._y_ndim}-D targets"
            )
        with np.errstate(over="ignore"):  # said below, naming y (it read 'T contains inf')
            T = np.asarray(y, dtype=self._np_dtype()).reshape(y.shape[0], -1)
        if not np.isfinite(T).all():  # y was finite: beyond float32's range
            i = int(np.flatnonzero(~np.isfinite(T.ravel()))[0])
            raise ValueError(
                f"y holds {float(np.ravel(y)[i])!r} (at flat index {i}), beyond float32's "
                "range (3.4e38); use dtype='float64', or scale y"
            )
        return T

    def _output_config(self) -> tuple[str, str]:
        return "identity", ENGINE_LOSS.get(self.loss, self.loss)

    def _loss_scale(self, n_outputs: int) -> float:
        # scikit-learn reports squared_error as (1/2) mean over the outputs of (y - t)^2,
        # the engine's l2 ((1/2) sum over them) divided by their number, but trains on the
        # gradient of the sum, l2's: the network trains on l2 and the loss is reported
        # divided (a gradient m times smaller trained 4 outputs at a quarter of the rate:
        # R^2 0.43 where scikit-learn's reached 0.93)
        return 1.0 / n_outputs if self.loss == "squared_error" else 1.0

    def _validation_score(self, X: np.ndarray, y: Any, sample_weight: Any) -> float:
        return float(
            r2_score(
                y, self._shape_like_y(self._outputs(X, link=False)), sample_weight=sample_weight
            )
        )

    def _shape_like_y(self, out: np.ndarray) -> np.ndarray:
        return out[:, 0] if self._y_ndim == 1 else out

    def predict(self, X: Any) -> np.ndarray:
        """Predictions: (n_samples,) for 1-D training targets, else (n_samples, n_outputs_);
        float64, or float32 for a float32 network and a float32 ``X``."""
        out = self._outputs(self._validate_X(X), link=False)
        return self._shape_like_y(self._in_input_float_type(out, X))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _fitted_metadata(self) -> dict[str, Any]:
        meta = super()._fitted_metadata()
        meta["y_ndim"] = int(self._y_ndim)
        return meta

    def _set_fitted_metadata(self, meta: dict[str, Any], model: MLP) -> None:
        super()._set_fitted_metadata(meta, model)
        y_ndim = field(meta, "y_ndim", int)
        expect(y_ndim in (1, 2), f"y_ndim={y_ndim}; expected 1 or 2")
        expect(
            y_ndim == 2 or model.n_outputs == 1,
            f"1-D targets need a network with 1 output; it has {model.n_outputs}",
        )
        expect(
            model.config.loss in REGRESSOR_LOSSES and model.config.output_activation == "identity",
            f"a regressor's network has an identity output and one of {REGRESSOR_LOSSES}",
        )
        self._y_ndim = y_ndim


# ------------------------------------------------------------------------------ helpers
def _check_indicator(y: Any) -> None:
    """Refuse a multi-label indicator matrix (dense or sparse) holding anything but 0 and 1:
    scikit-learn reads two values such as {0, 2} as one, MLPClassifier then trains on the
    targets 2 (a log-loss outside [0, 1]) and predicts 0/1."""
    if scipy.sparse.issparse(y):
        coo = y.tocoo()
        bad = np.flatnonzero((coo.data != 0) & (coo.data != 1))
        where = None if not len(bad) else (coo.data[bad[0]], coo.row[bad[0]], coo.col[bad[0]])
    else:
        values = np.asarray(y)
        bad = np.argwhere((values != 0) & (values != 1))
        where = None if not len(bad) else (values[tuple(bad[0])], *bad[0])
    if where is not None:
        value, row, col = where
        raise ValueError(
            f"y is a multi-label indicator matrix holding {_plain(value)!r} (at row {row}, "
            f"column {col}); its entries must be 0 or 1"
        )


def _dense(X: Any) -> np.ndarray:
    """A validated ``X`` as a dense array: a sparse one (CSR or CSC, already in the network's
    dtype) is made dense whole, ``n_samples * n_features`` entries of 8 bytes
    (4 in float32), as the engine computes on dense arrays (docs/sklearn.md); a MemoryError
    naming the size when that is more than the machine's memory."""
    if not scipy.sparse.issparse(X):
        return X
    n, m = X.shape
    check_memory(n * m * X.dtype.itemsize, f"a sparse X of {n} x {m}, made dense, needs")
    return X.toarray()


def _float_type_of(X: Any) -> type:
    """``np.float32`` for float32 data (an array, a sparse matrix, a Series, a DataFrame of
    float32 columns), else ``np.float64``: the type scikit-learn's checks give ``X`` with
    ``FLOAT_DTYPES``, which scikit-learn's MLP predicts in."""
    dtype = getattr(X, "dtype", None)
    dtypes = [dtype] if dtype is not None else list(getattr(X, "dtypes", []))  # a DataFrame's
    return np.float32 if dtypes and all(d == np.float32 for d in dtypes) else np.float64


def _is_float_text(text: str | bytes) -> bool:
    """Whether ``float`` reads ``text`` ("1.5" does, "a" does not)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _generator(random_state: Any) -> np.random.Generator:
    """A numpy Generator from scikit-learn's ``random_state`` conventions (the values the
    ``RandomSeed`` constraint accepts, checked before).

    An int seeds it; a ``RandomState`` is drawn from once (advancing it, as scikit-learn
    estimators do); ``None`` is NumPy's global ``RandomState``, drawn from the same way
    (scikit-learn's ``check_random_state(None)``, as MLPClassifier's: a different network
    each fit, and the same ones after the same ``np.random.seed``); a ``Generator`` is used
    as the source of a child seed.
    """
    if random_state is None:  # scikit-learn's None: the global state the user seeds
        random_state = check_random_state(None)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(0, 2**31 - 1)))
    if isinstance(random_state, np.random.Generator):
        return np.random.default_rng(int(random_state.integers(0, 2**63)))
    return np.random.default_rng(int(random_state))
