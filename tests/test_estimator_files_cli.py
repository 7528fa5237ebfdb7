"""A scikit-learn estimator's model file (``est.save``) through the command line: `backprop
predict` and `backprop export` read its feature and class names from the estimator's
record, as ``est.predict`` uses them (they read the columns in order and labelled rows
0, 1, ...), and a model of one sigmoid output is two classes (predict stopped on it)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from backprop import MLP
from backprop.io import save_model
from backprop.preprocessing import Preprocessing

sklearn = pytest.importorskip("sklearn", reason="the estimators need the sklearn extra")
pd = pytest.importorskip("pandas", reason="a DataFrame's column names")

from backprop.sklearn import BackpropClassifier  # noqa: E402

RNG = np.random.default_rng(7)
#: 40 epochs, too few to converge, are enough here
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _rows(out: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = list(csv.reader(io.StringIO(out)))
    return header, rows


def _frame(n: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    X = pd.DataFrame({"a": RNG.normal(size=n), "b": RNG.normal(size=n), "c": RNG.normal(size=n)})
    species = np.array(["setosa", "versicolor", "virginica"])
    y = species[(X["a"] > 0).to_numpy().astype(int) + (X["b"] > 0.5).to_numpy().astype(int)]
    return X, y


def test_named_columns_are_picked_by_name_and_rows_get_class_names(run_cli, tmp_path):
    X, y = _frame()
    est = BackpropClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0).fit(X, y)
    est.save(tmp_path / "est.safetensors")
    X[["c", "b", "a"]].to_csv(tmp_path / "reordered.csv", index=False)  # columns reversed
    rc, out, err = run_cli("predict", str(tmp_path / "est.safetensors"),
                           str(tmp_path / "reordered.csv"))  # fmt: skip
    assert rc == 0, err
    header, rows = _rows(out)
    assert header == ["label", "p_setosa", "p_versicolor", "p_virginica"]
    assert [r[0] for r in rows] == est.predict(X).tolist()  # (was 0/1/2, on columns c, b, a)
    np.testing.assert_allclose(
        np.array([r[1:] for r in rows], float), est.predict_proba(X), rtol=1e-8, atol=1e-9
    )
    X[["a", "b"]].to_csv(tmp_path / "short.csv", index=False)
    rc, _, err = run_cli("predict", str(tmp_path / "est.safetensors"), str(tmp_path / "short.csv"))
    assert rc == 2 and "missing the feature columns ['c']" in err


def test_export_of_an_estimator_file_has_its_labels_and_feature_names(run_cli, tmp_path):
    onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx extra")
    ort = pytest.importorskip("onnxruntime", reason="running graphs needs onnxruntime")
    X, y = _frame()
    est = BackpropClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0).fit(X, y)
    est.save(tmp_path / "est.safetensors")
    rc, out, err = run_cli("export", str(tmp_path / "est.safetensors"), str(tmp_path / "e.onnx"))
    assert rc == 0 and err.strip() == f"Wrote {tmp_path / 'e.onnx'}", err
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "e.onnx")).metadata_props}
    assert json.loads(props["feature_names"]) == ["a", "b", "c"]
    assert json.loads(props["class_labels"]) == ["setosa", "versicolor", "virginica"]
    session = ort.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"])
    probabilities, labels = session.run(None, {"input": X.to_numpy()})
    assert labels.tolist() == est.predict(X).tolist()
    np.testing.assert_allclose(probabilities, est.predict_proba(X), atol=1e-5)


def test_unnamed_columns_in_order_with_the_estimators_labels(run_cli, tmp_path):
    X = RNG.normal(size=(80, 2))
    y = np.where(X[:, 0] + X[:, 1] > 0, 7, 3)  # binary: one sigmoid output
    est = BackpropClassifier(hidden_layer_sizes=(6,), max_iter=40, random_state=0).fit(X, y)
    assert est.model_.n_outputs == 1
    est.save(tmp_path / "est.safetensors")
    np.savetxt(tmp_path / "x.csv", X, delimiter=",", header="u,v", comments="")
    rc, out, err = run_cli("predict", str(tmp_path / "est.safetensors"), str(tmp_path / "x.csv"))
    assert rc == 0, err  # (IndexError: list index out of range, exit 1)
    header, rows = _rows(out)
    assert header == ["label", "p_3", "p_7"]
    assert [int(r[0]) for r in rows] == est.predict(X).tolist()
    np.testing.assert_allclose(
        np.array([r[1:] for r in rows], float), est.predict_proba(X), rtol=1e-8, atol=1e-9
    )


def test_one_sigmoid_output_is_two_classes(run_cli, tmp_path):
    X = RNG.normal(size=(20, 2))
    model = MLP([2, 4, 1], "tanh", "identity", "binary_cross_entropy", seed=1)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",", header="u,v", comments="")
    p = model.predict(X)[:, 0]
    for classes, names in [(None, ["0", "1"]), (("neg", "pos"), ["neg", "pos"])]:
        if classes is not None:
            model.preprocessing = Preprocessing(("u", "v"), (0.0, 0.0), (1.0, 1.0), "t", classes)
        save_model(tmp_path / "m.safetensors", model)
        rc, out, err = run_cli("predict", str(tmp_path / "m.safetensors"), str(tmp_path / "x.csv"))
        assert rc == 0, err  # (IndexError: list index out of range, exit 1)
        header, rows = _rows(out)
        assert header == ["label", f"p_{names[0]}", f"p_{names[1]}"]
        assert [r[0] for r in rows] == [names[int(v > 0.5)] for v in p]
        np.testing.assert_allclose(np.array([r[1:] for r in rows], float),
                                   np.column_stack([1 - p, p]), rtol=1e-8)  # fmt: skip


@pytest.mark.parametrize("named", [False, True], ids=["array", "DataFrame"])
def test_a_multilabel_classifiers_rows_get_each_label_as_est_predict(run_cli, tmp_path, named):
    """predict labelled each row of a multi-label file by its largest output ('2' for a
    row whose labels are 0 and 2), and evaluate scored that argmax against one label a
    row; export named no reason for its missing label output."""
    X, _ = _frame()
    Y = np.column_stack([X["a"] > 0, X["b"] > 0, X["a"] + X["c"] > 0]).astype(int)
    fit_X = X if named else X.to_numpy()
    est = BackpropClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0)
    est.fit(fit_X, Y).save(tmp_path / "est.safetensors")
    X.to_csv(tmp_path / "x.csv", index=False)
    rc, out, err = run_cli("predict", str(tmp_path / "est.safetensors"), str(tmp_path / "x.csv"))
    assert rc == 0, err
    header, rows = _rows(out)
    assert header == ["label_0", "label_1", "label_2", "p_0", "p_1", "p_2"]
    table = np.array(rows, float)
    assert table[:, :3].astype(int).tolist() == est.predict(fit_X).tolist()
    assert (table[:, :3].sum(axis=1) != 1).any()  # rows of no label, or several
    np.testing.assert_allclose(table[:, 3:], est.predict_proba(fit_X), rtol=1e-8, atol=1e-9)
    rc, _, err = run_cli("evaluate", str(tmp_path / "est.safetensors"), "-d",
                         str(tmp_path / "x.csv"), "--target", "a")  # fmt: skip
    assert rc == 2 and err.count("\n") == 1 and "is a multi-label classifier (3 labels" in err
    pytest.importorskip("onnx", reason="ONNX export needs the onnx extra")
    rc, _, err = run_cli("export", str(tmp_path / "est.safetensors"), str(tmp_path / "e.onnx"))
    assert rc == 0 and "no label output: a multi-label classifier's labels are its" in err, err


def test_export_of_a_bare_classifier_file_says_it_has_no_labels(run_cli, tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs the onnx extra")
    save_model(tmp_path / "m.safetensors", MLP([2, 4, 3], "tanh", "identity", "cross_entropy"))
    rc, out, err = run_cli("export", str(tmp_path / "m.safetensors"), str(tmp_path / "m.onnx"))
    assert rc == 0, err
    assert err.strip() == (
        f"Wrote {tmp_path / 'm.onnx'} (no label output: the model file holds no class names; "
        "exported from its run folder, a classifier gets its data set's)"
    )


@pytest.mark.parametrize(
    ("record", "said"),
    [
        ("{not json", "the scikit-learn record is not valid JSON"),
        ('{"format": 1}', "its scikit-learn record has no 'fitted' object"),
        ('{"fitted": {"feature_names_in": [1, 2]}}', "feature_names_in is not 2 names"),
        ('{"fitted": {"feature_names_in": ["a", "a"]}}', "feature_names repeat a name"),
        (
            '{"fitted": {"target_type": "multiclass", "classes": {"values": ["a", "a"]}}}',
            "classes are not 2 distinct labels",
        ),  # (it labelled both columns p_a)
        (
            '{"fitted": {"target_type": "multiclass", "classes": {"values": [1e400, 2]}}}',
            "classes are not 2 distinct labels",
        ),  # (a class named inf)
    ],
)
def test_a_damaged_estimator_record_is_one_line(run_cli, tmp_path, record, said):
    from backprop.io import encode_safetensors, model_metadata, write_atomic

    model = MLP([2, 3, 2], "tanh", "identity", "cross_entropy", seed=0)
    metadata = {**model_metadata(model), "sklearn": record}
    write_atomic(tmp_path / "m.safetensors", encode_safetensors(model.state_dict(), metadata))
    np.savetxt(tmp_path / "x.csv", RNG.normal(size=(3, 2)), delimiter=",", header="u,v",
               comments="")  # fmt: skip
    rc, out, err = run_cli("predict", str(tmp_path / "m.safetensors"), str(tmp_path / "x.csv"))
    assert rc == 2 and out == "" and said in err and len(err.strip().splitlines()) == 1, err


def test_evaluate_reads_an_estimators_own_csv_as_predict_does(run_cli, tmp_path):
    # a DataFrame column '幅 ' was missing from its own to_csv file; a class ' sp ' is the
    # file's label 'sp' (a CSV file's labels are read without surrounding spaces)
    X, y = _frame()
    X = X.rename(columns={"a": "幅 "})
    y = np.where(y == "setosa", " sp ", y)
    est = BackpropClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0).fit(X, y)
    est.save(tmp_path / "est.safetensors")
    X.assign(target=y).to_csv(tmp_path / "own.csv", index=False)
    rc, out, err = run_cli("evaluate", str(tmp_path / "est.safetensors"), "--dataset",
                           str(tmp_path / "own.csv"), "--target", "target", "--test-fraction",
                           "0", "--split", "train", "--json")  # fmt: skip
    assert rc == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(est.score(X, y), abs=1e-12)


@pytest.mark.parametrize("labels", [("1", "1.0", "2"), (" sp ", "sp", "q")])
def test_evaluate_refuses_classes_a_csv_file_cannot_tell_apart(run_cli, tmp_path, labels):
    # classes '1' and '1.0' are one label in a CSV file: every '1.0' row was scored as the
    # class '1' (accuracy 0.67 of a model whose own score is 1.0), and predict disagreed
    X, _ = _frame(90)
    y = np.array(labels)[np.arange(90) % 3]
    est = BackpropClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    est.save(tmp_path / "est.safetensors")
    X.assign(target=y).to_csv(tmp_path / "own.csv", index=False)
    rc, _, err = run_cli("evaluate", str(tmp_path / "est.safetensors"), "--dataset",
                         str(tmp_path / "own.csv"), "--target", "target", "--test-fraction",
                         "0", "--split", "train")  # fmt: skip
    assert rc == 2 and err.count("\n") == 1, err
    assert f"the model's classes {labels[0]!r} and {labels[1]!r} are one label, " in err


def test_a_cli_runs_text_and_number_labels_are_its_own_classes(run_cli, tmp_path):
    # the refusal above once took the run's own classes '1', '1.0' and 'a' (a target of
    # text and numbers, whose labels the file does not read by value) as one label
    rows = "".join(f"{i / 30},{(i * 7 % 30) / 30},{('1', '1.0', 'a')[i % 3]}\n" for i in range(30))
    (tmp_path / "mixed.csv").write_text("x,y,label\n" + rows)
    assert run_cli("train", "--dataset", str(tmp_path / "mixed.csv"), "--target", "label",
                   "--epochs", "2", "--out", str(tmp_path / "r"), "--no-progress",
                   "--no-plots")[0] == 0  # fmt: skip
    rc, out, err = run_cli("evaluate", str(tmp_path / "r"), "--json")
    assert rc == 0, err
    assert [c["class"] for c in json.loads(out)["per_class"]] == ["1", "1.0", "a"]


def test_evaluate_refuses_feature_names_one_column_reads(run_cli, tmp_path):
    # an estimator's columns 'a' and 'a ' both read the file's 'a': evaluate scored 0.467
    # on a model whose own score was 0.856, where predict refused
    X, y = _frame()
    X = X.rename(columns={"b": "a "})
    est = BackpropClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    est.save(tmp_path / "est.safetensors")
    X[["a", "c"]].assign(target=y).to_csv(tmp_path / "own.csv", index=False)
    rc, _, err = run_cli("evaluate", str(tmp_path / "est.safetensors"), "--dataset",
                         str(tmp_path / "own.csv"), "--target", "target")  # fmt: skip
    assert rc == 2 and err.count("\n") == 1, err
    assert "repeat a name once surrounding spaces are taken off" in err


def test_evaluate_matches_an_array_fitted_classifiers_labels_by_its_classes(run_cli, tmp_path):
    # classes 1, 2, 3 fitted on an array: evaluate took the labels for the class numbers
    # 0-2 (accuracy 0.02 where est.score says 0.98, or 'its labels are its class numbers
    # 0 to 2' for a file holding the label 3)
    X, y = _frame()
    y = np.searchsorted(np.unique(y), y) + 1
    est = BackpropClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0)
    est.fit(X.to_numpy(), y).save(tmp_path / "est.safetensors")
    for rows, name in [(y < 3, "two.csv"), (y > 0, "all.csv")]:
        X[rows].assign(label=y[rows]).to_csv(tmp_path / name, index=False)
        rc, out, err = run_cli("evaluate", str(tmp_path / "est.safetensors"), "--dataset",
                               str(tmp_path / name), "--target", "label", "--split", "all",
                               "--json")  # fmt: skip
        assert rc == 0, err
        report = json.loads(out)
        assert report["accuracy"] == pytest.approx(est.score(X.to_numpy()[rows], y[rows]))
        assert [c["class"] for c in report["per_class"]] == ["1", "2", "3"]
    (tmp_path / "new.csv").write_text("a,b,c,label\n0,0,0,4\n1,1,1,1\n")
    rc, _, err = run_cli(
        "evaluate",
        str(tmp_path / "est.safetensors"),
        "--dataset",
        str(tmp_path / "new.csv"),
        "--target",
        "label",
        "--split",
        "all",
    )
    assert rc == 2 and "has labels ['4'] the model was not trained on" in err, err


def test_evaluate_reads_a_dataframe_estimators_columns_alone(run_cli, tmp_path):
    # the file's id column of text was read too ("column 'id': the cell 'r0' is not a
    # finite number"), where predict reads the model's columns alone
    X, y = _frame()
    est = BackpropClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0).fit(X, y)
    est.save(tmp_path / "est.safetensors")
    ids = [f"r{i}" for i in range(len(y))]
    X[["c", "a", "b"]].assign(id=ids, target=y).to_csv(tmp_path / "own.csv", index=False)
    rc, out, err = run_cli("evaluate", str(tmp_path / "est.safetensors"), "--dataset",
                           str(tmp_path / "own.csv"), "--target", "target", "--split", "all",
                           "--json")  # fmt: skip
    assert rc == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(est.score(X, y), abs=1e-12)
