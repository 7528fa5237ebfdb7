"""Metrics against scikit-learn (an independent reference) and a hand-worked example."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backprop.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    mae,
    mse,
    precision_recall,
    r2_score,
    regression_report,
)

skm = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference for metrics")


def test_hand_worked_example():
    # true 0 0 1 1 2 2, predicted 0 1 1 1 2 0:
    #   C = [[1, 1, 0],    row 0: one 0 -> 0, one 0 -> 1
    #        [0, 2, 0],    row 1: both right
    #        [1, 0, 1]]    row 2: one right, one -> 0
    # accuracy 4/6; precision = diag / column sums = [1/2, 2/3, 1/1]; recall = diag / row sums
    # = [1/2, 2/2, 1/2]
    t = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 2, 0]
    np.testing.assert_array_equal(confusion_matrix(t, p), [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert accuracy(t, p) == pytest.approx(4 / 6)
    precision, recall = precision_recall(t, p)
    np.testing.assert_allclose(precision, [1 / 2, 2 / 3, 1.0])
    np.testing.assert_allclose(recall, [1 / 2, 1.0, 1 / 2])


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    n = int(rng.integers(5, 200))
    t = rng.integers(0, k, n)
    p = np.where(rng.random(n) < 0.6, t, rng.integers(0, k, n))  # mostly right
    labels = list(range(k))
    assert accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p), abs=1e-15)
    np.testing.assert_array_equal(
        confusion_matrix(t, p, k), skm.confusion_matrix(t, p, labels=labels)
    )
    precision, recall = precision_recall(t, p, k)
    np.testing.assert_allclose(
        precision, skm.precision_score(t, p, labels=labels, average=None, zero_division=0)
    )
    np.testing.assert_allclose(
        recall, skm.recall_score(t, p, labels=labels, average=None, zero_division=0)
    )
    report = classification_report(t, p, class_names=[f"c{c}" for c in labels])
    f1 = skm.f1_score(t, p, labels=labels, average=None, zero_division=0)
    np.testing.assert_allclose([row["f1"] for row in report["per_class"]], f1)
    assert report["macro_f1"] == pytest.approx(np.mean(f1))
    assert [row["support"] for row in report["per_class"]] == np.bincount(t, minlength=k).tolist()


def test_class_never_predicted_or_absent_scores_zero_like_sklearn():
    t = np.array([0, 0, 1, 1])
    p = np.array([0, 0, 0, 0])  # class 1 never predicted; class 2 absent from both
    precision, recall = precision_recall(t, p, n_classes=3)
    np.testing.assert_allclose(precision, [0.5, 0.0, 0.0])
    np.testing.assert_allclose(recall, [1.0, 0.0, 0.0])
    ref = skm.precision_score(t, p, labels=[0, 1, 2], average=None, zero_division=0)
    np.testing.assert_allclose(precision, ref)


def test_scores_and_one_hot_are_read_by_argmax():
    t = np.array([2, 0, 1])
    one_hot = np.eye(3)[t]
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2], [0.6, 0.3, 0.1]])  # predicts 2, 0, 0
    assert accuracy(one_hot, probs) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(confusion_matrix(t, probs), confusion_matrix(t, [2, 0, 0]))


@pytest.mark.parametrize(
    ("t", "p", "match"),
    [
        ([0, 1], [0, 1, 1], "2 rows but y_pred has 3"),
        ([], [], "empty"),
        ([0, -1], [0, 1], "negative label"),
        ([0.5, 1.0], [0, 1], "integer class labels"),
        (np.zeros((3, 1)), [0, 1, 0], r"\(n, k >= 2\)"),
    ],
)
def test_bad_classification_input_is_one_clear_error(t, p, match):
    with pytest.raises(ValueError, match=match):
        accuracy(t, p)


def test_confusion_matrix_rejects_too_few_classes():
    with pytest.raises(ValueError, match="labels go up to 3"):
        confusion_matrix([0, 3], [0, 1], n_classes=2)


@pytest.mark.parametrize("m", [None, 1, 3])
def test_regression_metrics_match_sklearn(m):
    rng = np.random.default_rng(7)
    shape = (50,) if m is None else (50, m)
    t = rng.normal(size=shape)
    p = t + 0.3 * rng.normal(size=shape)
    assert mse(t, p) == pytest.approx(skm.mean_squared_error(t, p), rel=1e-12)
    assert mae(t, p) == pytest.approx(skm.mean_absolute_error(t, p), rel=1e-12)
    assert r2_score(t, p) == pytest.approx(skm.r2_score(t, p), rel=1e-12)
    report = regression_report(t, p)
    assert report == {"n_samples": 50, "mse": mse(t, p), "mae": mae(t, p), "r2": r2_score(t, p)}


def test_r2_constant_target_matches_sklearn_force_finite():
    t = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])  # column 0 constant
    p_exact = t.copy()
    p_off = t + np.array([[0.5, 0.1], [0.0, -0.1], [0.0, 0.2]])
    assert r2_score(t, p_exact) == 1.0
    assert r2_score(t, p_off) == pytest.approx(skm.r2_score(t, p_off), rel=1e-12)


@pytest.mark.parametrize("value, n", [(0.1, 3), (0.7, 7), (0.3, 11), (0.1, 10)])
def test_r2_of_a_column_of_one_value_is_the_constant_rule_whatever_its_mean_rounds_to(value, n):
    """n copies of 0.1 have a computed mean that is not 0.1: SS_tot was 5.8e-34, not 0,
    and predictions off by 0.001 scored -5.19e27 (scikit-learn's too) where the docs say 0."""
    t = np.full(n, value)
    assert r2_score(t, t + 0.001) == 0.0 and r2_score(t, t) == 1.0


def test_r2_is_negative_for_worse_than_the_mean():
    t = np.array([1.0, 2.0, 3.0])
    assert r2_score(t, [3.0, 2.0, 1.0]) == pytest.approx(-3.0)  # SS_res 8, SS_tot 2
    # SS_res of about 1e308 over SS_tot of 2e-6: -inf, without an overflow warning (a
    # RuntimeWarning that evaluate printed, or 'internal error' under -W error)
    assert r2_score(np.array([1.0, 1.001, 1.002]), np.array([1e154, 0.0, 0.0])) == -np.inf


def test_regression_shape_mismatch_is_one_clear_error():
    with pytest.raises(ValueError, match="expected the same shape"):
        mse(np.zeros((4, 2)), np.zeros((4, 3)))


def test_reports_are_json_ready():
    report = classification_report([0, 1, 1], [0, 1, 0], class_names=["no", "yes"])
    assert json.loads(json.dumps(report)) == report
    assert report["per_class"][1]["class"] == "yes"
    assert report["confusion_matrix"] == [[1, 0], [1, 1]]
    reg = regression_report([1.0, 2.0], [1.5, 2.0])
    assert json.loads(json.dumps(reg)) == reg


@pytest.mark.parametrize(
    ("t", "p"),
    [([1, 1, 1], [1, 1, 1]), ([0, 2, 2], [0, 2, 0]), ([3, 3, 1, 1], [3, 1, 1, 1])],
)
def test_macro_averages_without_class_names_are_sklearns(t, p):
    # label indices absent from both arrays (0 in the first, 1 in the second) were averaged
    # in as zeros: macro F1 0.5 where scikit-learn says 1.0
    report = classification_report(t, p)
    for key, ref in (("f1", skm.f1_score), ("precision", skm.precision_score),
                     ("recall", skm.recall_score)):  # fmt: skip
        assert report[f"macro_{key}"] == pytest.approx(ref(t, p, average="macro"), abs=1e-15)


def test_macro_averages_leave_out_a_named_class_absent_from_the_split():
    # a CSV's rare class (2 rows of 200) gets no test row: its precision and recall, 0/0,
    # were averaged in as zeros (macro 0.65 beside accuracy 0.98; scikit-learn's report 0.98)
    t, p = [0, 0, 1, 1, 0], [0, 1, 1, 1, 0]
    report = classification_report(t, p, ["neg", "pos", "rare"])
    assert [row["class"] for row in report["per_class"]] == ["neg", "pos", "rare"]
    assert report["per_class"][2] == {"class": "rare", "precision": 0.0, "recall": 0.0,
                                      "f1": 0.0, "support": 0}  # fmt: skip
    for key, ref in (("f1", skm.f1_score), ("precision", skm.precision_score),
                     ("recall", skm.recall_score)):  # fmt: skip
        assert report[f"macro_{key}"] == pytest.approx(ref(t, p, average="macro"), abs=1e-15)
    assert report["macro_recall"] == pytest.approx((2 / 3 + 1) / 2)  # by hand: 0 is 2 of 3


def test_macro_averages_count_a_class_that_is_predicted_but_never_true():
    # true 0 0 1, predicted 0 2 1: class 2 is predicted once and never true
    #   C = [[1, 0, 1], [0, 1, 0], [0, 0, 0]]
    #   precision = diag / column sums = [1/1, 1/1, 0/1]; recall = diag / row sums =
    #   [1/2, 1/1, 0 (0/0, zero_division=0)]; f1 = [2/3, 1, 0]
    #   macro over the labels in either array, {0, 1, 2}: P 2/3, R 1/2, F1 5/9 (over the
    #   true labels only, {0, 1}, they would read 1, 3/4, 5/6)
    t, p = [0, 0, 1], [0, 2, 1]
    expected = {"precision": 2 / 3, "recall": 1 / 2, "f1": 5 / 9}
    ref = skm.precision_recall_fscore_support(t, p, labels=[0, 1, 2], average="macro",
                                              zero_division=0)[:3]  # fmt: skip
    np.testing.assert_allclose(ref, list(expected.values()), rtol=1e-15)
    for report in (classification_report(t, p), classification_report(t, p, ["a", "b", "c"])):
        for key, value in expected.items():
            assert report[f"macro_{key}"] == pytest.approx(value, rel=1e-15)


def test_label_mistakes_are_one_clear_error():
    # a label of 10**6 (an identifier, not a class index) asked for a 7.28 TiB matrix
    with pytest.raises(ValueError, match=r"labels go up to 1000000; expected class indices"):
        confusion_matrix([0, 10**6], [0, 1])
    assert confusion_matrix([0, 10**4], [0, 1], n_classes=10**4 + 1).shape == (10001, 10001)
    with pytest.raises(ValueError, match=r"give class_names, one per class, for more than"):
        classification_report([0, 20000], [0, 20000])  # it named n_classes, which it lacks
    with pytest.raises(ValueError, match=r"n_classes must be a positive integer; got 1.5"):
        confusion_matrix([0, 1], [0, 1], n_classes=1.5)
    with pytest.raises(ValueError, match=r"class_names lists 2 classes but the labels go up to 2"):
        classification_report([0, 2], [0, 1], class_names=["a", "b"])
    for labels in ([np.inf, 1.0], [1e20, 1.0], [np.nan, 0.0]):  # a cast warning before
        with pytest.raises(ValueError, match="integer class labels"):
            accuracy(labels, [0, 1])


def test_bool_labels_are_classes_0_and_1_as_in_sklearn():
    t, p = np.array([True, False, True]), np.array([True, True, True])
    assert accuracy(t, p) == skm.accuracy_score(t, p)
    np.testing.assert_array_equal(confusion_matrix(t, p), skm.confusion_matrix(t, p))


def test_regression_metrics_refuse_nan_and_keep_extreme_scales():
    for bad in ([np.nan, 1.0], [np.inf, 1.0]):
        with pytest.raises(ValueError, match=r"y_pred holds NaN or inf; expected finite"):
            mse([1.0, 2.0], bad)
        with pytest.raises(ValueError, match=r"y_true holds NaN or inf"):
            r2_score(bad, [1.0, 2.0])
    # R^2 does not depend on the unit: squares of 1e200 overflowed (a warning, then nan or
    # 0), those of 1e-200 underflowed to 0 and read as a constant column
    t, p = np.array([1.0, -1.0, 0.5]), np.array([0.9, -0.7, 0.1])
    ref = skm.r2_score(t, p)
    for unit in (1e200, 1e-200, 1.0):
        assert r2_score(t * unit, p * unit) == pytest.approx(ref, rel=1e-14)
    assert mse([1e200], [-1e200]) == np.inf  # the true value, rounded; no warning
    # the mean absolute error of 1.7e308 is 1.7e308 (it overflowed in the sum: a warning,
    # then inf, and summary.json's mae null); an error beyond float64 is inf, no warning
    assert mae([1.7e308, 1.7e308], [0.0, 0.0]) == pytest.approx(1.7e308, rel=1e-15)
    # (a first fix halved the values: it rescued sums of 2 rows only)
    assert mae([1.7e308] * 1000, [0.0] * 1000) == pytest.approx(1.7e308, rel=1e-15)
    assert mae([1.7e308, 1e308, 1e308], [0.0] * 3) == pytest.approx(1.2333333333333333e308)
    assert mae([1.7e308, -1.7e308], [-1.7e308, 0.0]) == np.inf
    assert mae([1.0, 2.0], [0.5, 0.25]) == 1.125
    # ... and on ordinary numbers scikit-learn's to the bit (0.4999999999999999 for this
    # pair when the scale was t's largest magnitude rather than a power of two)
    assert r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 2.0]) == 0.5
    # targets from 2**1023: a scale of 2**1024 overflowed, every value scaled to 0, and a
    # 'constant column predicted exactly' scored 1.0
    assert r2_score([1e308, -1e308, 0.0], [0.0, 0.0, 0.0]) == 0.0
    assert r2_score([9e307, 0.0, 0.0], [0.0, 0.0, 9e307]) == pytest.approx(-2.0)
    rng = np.random.default_rng(5)
    for _ in range(200):
        t = rng.normal(size=int(rng.integers(2, 40))) * 10 ** rng.uniform(-5, 5)
        p = t + rng.normal(size=t.size) * np.abs(t).mean()
        assert r2_score(t, p) == skm.r2_score(t, p)


def test_float16_labels_are_read_as_numbers():
    # |a| <= 2**53 overflowed float16 (a warning), and inf then became label -2**63
    assert accuracy(np.array([1, 0], dtype=np.float16), [1, 0]) == 1.0
    with pytest.raises(ValueError, match=r"integer class labels; got dtype float16"):
        accuracy(np.array([np.inf, 1], dtype=np.float16), [0, 1])
