"""scikit-learn's own estimator checks (``parametrize_with_checks``) on both estimators.

No check is skipped or marked expected-to-fail: MLPClassifier and MLPRegressor are exempted
from none in scikit-learn 1.9 (``PER_ESTIMATOR_XFAIL_CHECKS`` has no entry for them), so
neither are we. The instances are small (8 hidden units, 50 epochs) so that the whole file
runs in seconds; ``learning_rate_init=1e-2`` lets 50 epochs reach the scores the checks ask.
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("sklearn", reason="scikit-learn is an optional extra: backprop[sklearn]")

from sklearn.utils.estimator_checks import (  # noqa: E402
    check_array_api_input,
    check_dataframe_column_names_consistency,
    parametrize_with_checks,
)

from backprop.sklearn import BackpropClassifier, BackpropRegressor  # noqa: E402

ESTIMATORS = [
    BackpropClassifier(hidden_layer_sizes=(8,), max_iter=50, learning_rate_init=1e-2),
    BackpropRegressor(hidden_layer_sizes=(8,), max_iter=50, learning_rate_init=1e-2),
]

# The checks fit with few epochs on purpose (scikit-learn's own suite gives MLPClassifier
# max_iter=100 for the same reason), so ConvergenceWarning is expected and not an error here.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


_MARK = parametrize_with_checks(ESTIMATORS)
# scikit-learn before 1.8 hands pytest a generator, which pytest 9 deprecates: a list instead
CHECKS = pytest.mark.parametrize(_MARK.args[0], list(_MARK.args[1]), **_MARK.kwargs)


@CHECKS
def test_sklearn_estimator_checks(estimator, check):
    if getattr(check, "func", None) is check_array_api_input and not os.environ.get(
        "SCIPY_ARRAY_API"
    ):
        # This check needs SCIPY_ARRAY_API=1 set before scipy is first imported, and would
        # skip itself otherwise: run it in a fresh interpreter with the variable set.
        _run_with_array_api_dispatch(estimator, check)
        return
    check(estimator)


def _run_with_array_api_dispatch(estimator, check):
    code = textwrap.dedent(
        f"""
        import warnings
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.utils.estimator_checks import check_array_api_input
        from backprop.sklearn import {type(estimator).__name__} as Estimator

        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_array_api_input(*{check.args!r}, Estimator(**{estimator.get_params()!r}),
                              **{check.keywords!r})
        """
    )
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_dataframe_column_names_consistency(estimator):
    # Not yielded by parametrize_with_checks in scikit-learn 1.9, but scikit-learn's own
    # test suite runs it on every estimator (feature_names_in_ and mismatched names).
    pytest.importorskip("pandas", reason="pandas is needed to build DataFrames with names")
    check_dataframe_column_names_consistency(type(estimator).__name__, estimator)
