"""scikit-learn estimators: :class:`BackpropClassifier` and :class:`BackpropRegressor`.

Both wrap a :class:`backprop.MLP` trained by :func:`backprop.training.fit` and behave like
scikit-learn's ``MLPClassifier`` / ``MLPRegressor``: every hyperparameter is an ``__init__``
argument stored unchanged, ``fit`` validates the data with scikit-learn's helpers, the
fitted network is ``model_``, and they work in ``Pipeline``, ``GridSearchCV`` and
``cross_val_score``. They pass scikit-learn's ``parametrize_with_checks`` (see
``tests/test_sklearn_checks.py`` and ``docs/sklearn.md``).

What they add over scikit-learn's MLP: dropout, more losses (``mae``, ``huber``, one-vs-rest
``binary_cross_entropy``), more optimizers and initialisers, ``class_weight``, engine
callbacks, array backends (``backend="torch"``, ``device="cuda"``), and saving to the
project's safe model format (:meth:`save` / :meth:`load`).

Objective and L2 penalty (the same as scikit-learn's MLP): with sample weights ``s_i`` (1 by
default, times the class weight) each mini-batch ``B`` minimises::

    (1 / S_B) sum_{i in B} s_i l_i  +  alpha / (2 S_B) ||W||^2,     S_B = sum_{i in B} s_i

The engine averages over rows, so the weights are rescaled to mean 1 over the training
rows (``S_B`` is then the batch's row count ``b`` on average) and the optimizer's
``weight_decay`` is ``alpha / (b * mean(s))``. With full batches this makes integer weights
exactly equivalent to repeating rows, which scikit-learn's checks verify; with mini-batches
it holds on average (a short last batch gets the run's decay, scikit-learn's its own
``alpha / S_B``: docs/sklearn.md). With ``solver="adamw"`` the same ``weight_decay`` is
AdamW's decoupled decay (``W <- W - eta weight_decay W``), not an L2 term.

scikit-learn (>= 1.7.1) is an optional dependency, the ``sklearn`` extra
(``pip install '.[sklearn]'`` in backprop's folder, or ``pip install 'scikit-learn>=1.7.1'``).

=====================  ==================================================================
module                 holds
=====================  ==================================================================
``estimators``         the two estimators and what they share (training, prediction)
``constraints``        every hyperparameter's valid values, declared once as data, and
                       the one function that checks them
``persistence``        :meth:`save` / :meth:`load`: the estimator record in a model file
=====================  ==================================================================
"""

from .estimators import BackpropClassifier, BackpropRegressor

__all__ = ["BackpropClassifier", "BackpropRegressor"]
