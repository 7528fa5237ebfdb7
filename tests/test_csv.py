"""CSV data sets, the raw-row reader used by predict, and Preprocessing."""

from __future__ import annotations

import csv
import json
import math
import random
import re
import warnings
from decimal import Decimal
from fractions import Fraction
from functools import partial

import numpy as np
import pytest

from backprop import MLP
from backprop.datasets import DatasetError, load_dataset, read_csv_features, tabular
from backprop.preprocessing import Preprocessing, fit_standardizer
from backprop.training import fit


def _write(tmp_path, text: str, name: str = "data.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _flowers(tmp_path, n: int = 40):
    """Two well-separated classes with string labels, columns in a mixed order."""
    rng = np.random.default_rng(0)
    lines = ["width,species,length"]
    for i in range(n):
        label = "setosa" if i % 2 else "virginica"
        centre = 1.0 if label == "setosa" else 5.0
        w, length = centre + 0.3 * rng.normal(), 100 + 10 * centre + rng.normal()
        lines.append(f"{w:.4f},{label},{length:.4f}")
    return _write(tmp_path, "\n".join(lines) + "\n")


def test_classification_csv(tmp_path):
    ds = load_dataset(_flowers(tmp_path), target="species", seed=0)
    assert ds.task == "classification" and ds.n_classes == 2
    assert ds.class_names == ["setosa", "virginica"]  # sorted: index -> label
    assert ds.feature_names == ["width", "length"]  # file order, target removed
    assert ds.X_train.dtype == np.float64 and ds.X_train.shape == (30, 2)
    assert ds.y_train.dtype == np.int64 and ds.n_test == 10
    assert np.bincount(ds.y_test).tolist() == [5, 5]  # stratified
    # standardised with the training split's statistics
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train.std(axis=0), 1.0, atol=1e-12)
    prep = ds.preprocessing
    assert prep.target == "species" and prep.classes == ("setosa", "virginica")
    assert prep.decode(np.array([1, 0])) == ["virginica", "setosa"]
    assert ds.targets().shape == (30, 2)


def test_same_seed_same_split(tmp_path):
    p = _flowers(tmp_path)
    assert (
        load_dataset(p, target="species", seed=3).sha256()
        == load_dataset(p, target="species", seed=3).sha256()
    )
    assert (
        load_dataset(p, target="species", seed=3).sha256()
        != load_dataset(p, target="species", seed=4).sha256()
    )


def test_raw_rows_reach_the_model_through_preprocessing(tmp_path):
    p = _flowers(tmp_path)
    ds = load_dataset(p, target="species", seed=0, test_fraction=0.0)
    net = MLP([2, 4, 2], "tanh", "identity", "cross_entropy", seed=0)
    fit(net, ds.X_train, ds.targets(), optimizer="adam", lr=0.05, epochs=30, batch_size=8, seed=0)
    # New raw rows with the columns in another order and an extra column: the reader
    # picks the training columns by name and applies the training scaling.
    q = _write(tmp_path, "length,note,width\n150.2,a,5.1\n110.5,b,0.9\n", "new.csv")
    X = read_csv_features(q, ds.preprocessing)
    np.testing.assert_allclose(X, ds.preprocessing.transform([[5.1, 150.2], [0.9, 110.5]]))
    np.testing.assert_array_equal(
        read_csv_features(q, ds.preprocessing, raw=True), [[5.1, 150.2], [0.9, 110.5]]
    )
    assert ds.preprocessing.decode(net.predict_classes(X)) == ["virginica", "setosa"]


def test_read_features_without_preprocessing_reads_every_column(tmp_path):
    q = _write(tmp_path, "a,b\n1,2\n3,4.5\n")
    np.testing.assert_array_equal(read_csv_features(q), [[1.0, 2.0], [3.0, 4.5]])


def test_read_features_missing_columns(tmp_path):
    prep = Preprocessing(("width", "length"), (0.0, 0.0), (1.0, 1.0), "species", ("a", "b"))
    q = _write(tmp_path, "width,height\n1,2\n")
    with pytest.raises(
        DatasetError, match=r"missing the feature columns \['length'\] .* columns: width, height"
    ):
        read_csv_features(q, prep)
    # A file separated by semicolons reads as one column; the error says so.
    q = _write(tmp_path, "width;length\n1;2\n", "semi.csv")
    with pytest.raises(DatasetError, match=r"looks separated by semicolons; expected commas\)$"):
        read_csv_features(q, prep)


# ------------------------------------------------------------------ the task rule
def test_numeric_target_with_few_integer_values_is_classification(tmp_path):
    rows = "\n".join(f"{i},{[10, 2, 9][i % 3]}" for i in range(30))
    ds = load_dataset(_write(tmp_path, "x,y\n" + rows), target="y")
    assert ds.task == "classification" and ds.class_names == ["2", "9", "10"]  # numeric order


def test_numeric_labels_are_compared_as_numbers(tmp_path):
    """'1', '1.0' and '01' were three classes of a numeric class column."""
    rows = "".join(f"{i},{('1', '1.0', '01', '2', '2.0')[i % 5]}\n" for i in range(20))
    ds = load_dataset(_write(tmp_path, "a,y\n" + rows), target="y", test_fraction=0.0)
    assert ds.task == "classification" and ds.class_names == ["1", "2"]
    np.testing.assert_array_equal(np.bincount(ds.y_train), [12, 8])


def test_fractional_or_many_valued_target_is_regression(tmp_path):
    frac = "\n".join(f"{i},{i % 3 + 0.5}" for i in range(30))
    ds = load_dataset(_write(tmp_path, "x,y\n" + frac, "frac.csv"), target="y", seed=0)
    assert ds.task == "regression" and ds.n_classes is None and ds.class_names is None
    assert ds.y_train.dtype == np.float64 and ds.y_train.shape == (ds.n_train, 1)
    assert ds.n_outputs == 1 and ds.preprocessing.classes is None
    np.testing.assert_array_equal(ds.targets(), ds.y_train)
    many = "\n".join(f"{i},{i}" for i in range(21))  # 21 distinct integers > MAX_CLASSES = 20
    assert (
        load_dataset(_write(tmp_path, "x,y\n" + many, "many.csv"), target="y").task == "regression"
    )
    twenty = "\n".join(f"{i},{i % 20}" for i in range(40))
    assert (
        load_dataset(_write(tmp_path, "x,y\n" + twenty, "twenty.csv"), target="y").task
        == "classification"
    )


def test_a_row_of_empty_cells_is_refused_not_skipped(run_cli, tmp_path):
    # pandas writes a row of NaN as ',,': predict skipped it as a blank line, so its output
    # was a row short and every row after it stood beside the wrong input row
    pd = pytest.importorskip("pandas", reason="pandas' own to_csv of a NaN row")
    X = pd.DataFrame({"u": [0.5, None, 1.5], "v": [1.0, None, -0.7]})
    p = tmp_path / "nan_row.csv"
    X.to_csv(p, index=False)
    assert p.read_text().splitlines()[2] == ","
    assert run_cli("train", "--dataset", "moons", "--epochs", "1", "--out", str(tmp_path / "m"),
                   "--no-progress", "--no-plots")[0] == 0  # fmt: skip
    rc, out, err = run_cli("predict", str(tmp_path / "m"), str(p), "-o", str(tmp_path / "o.csv"))
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert "line 3: every cell is empty (a row of missing values" in err
    assert not (tmp_path / "o.csv").exists()
    with pytest.raises(DatasetError, match="line 3: every cell is empty"):
        load_dataset(_write(tmp_path, "u,v,y\n1,2,p\n,,\n3,4,q\n"), target="y")
    # a line of white space alone is still a blank line, skipped
    assert (
        load_dataset(
            _write(tmp_path, "u,v,y\n1,2,p\n \t\n3,4,q\n"), target="y", test_fraction=0
        ).n_train
        == 2
    )


def test_a_single_class_is_read_to_score_and_refused_to_train(run_cli, tmp_path):
    # new labelled rows to score may all be of one class: evaluate refused them with
    # 'has a single class; classification needs at least two', meant for training
    p = _write(tmp_path, "a,b,y\n" + "".join(f"{i},{i % 3},p\n" for i in range(12)))
    data = load_dataset(p, target="y")
    assert data.n_classes == 1 and data.class_names == ["p"]
    assert data.preprocessing.classes is None  # (a model's class list needs two)
    said = "target column 'y' has a single class ('p'); classification needs at least two"
    for command in (["train", "--out", str(tmp_path / "r")], ["gradcheck"]):
        rc, _, err = run_cli(*command, "-d", str(p), "--target", "y")
        assert rc == 2 and err.count("\n") == 1 and said in err, err
    two = "a,b,y\n" + "".join(f"{i},{i % 3},{'pq'[i % 2]}\n" for i in range(40))
    assert run_cli("train", "-d", str(_write(tmp_path, two, "two.csv")), "--target", "y",
                   "--epochs", "2", "--out", str(tmp_path / "r"), "--no-progress",
                   "--no-plots")[0] == 0  # fmt: skip
    rc, out, err = run_cli(
        "evaluate", str(tmp_path / "r"), "-d", str(p), "--split", "all", "--json"
    )
    assert rc == 0, err
    report = json.loads(out)
    assert report["n_samples"] == 12 and [c["class"] for c in report["per_class"]] == ["p", "q"]
    assert [c["support"] for c in report["per_class"]] == [12, 0]


def test_a_file_without_a_header_is_refused_not_read_one_row_short(run_cli, tmp_path):
    # predict took a headerless file's first row as the column names: one prediction fewer
    # than rows, each beside no row of its own, and no word
    rows = "0.5,1.0\n-0.3,0.2\n1.5,-0.7\n"
    p = _write(tmp_path, rows, "no_header.csv")
    with pytest.raises(DatasetError, match=r"the first line \(0.5,1.0\) is all numbers, a row"):
        load_dataset(p, target="1.0")
    assert run_cli("train", "--dataset", "moons", "--epochs", "1", "--out", str(tmp_path / "m"),
                   "--no-progress", "--no-plots")[0] == 0  # fmt: skip
    rc, out, err = run_cli("predict", str(tmp_path / "m"), str(p))
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "is all numbers, a row of data; expected a header line naming the columns" in err
    assert load_dataset(_write(tmp_path, "2019,label\n" + rows), target="label").n_train > 0
    # pandas' default names (DataFrame(array).to_csv(index=False)) are a header; and a
    # model's numeric column names are looked up in the header, not refused
    table = "0,1,2\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20))
    named = _write(tmp_path, table, "pandas.csv")
    assert load_dataset(named, target="2").feature_names == ["0", "1"]
    assert run_cli("train", "--dataset", str(named), "--target", "2", "--epochs", "1", "--out",
                   str(tmp_path / "p"), "--no-progress", "--no-plots")[0] == 0  # fmt: skip
    features = _write(tmp_path, "0,1\n" + "".join(f"{i},{i % 3}\n" for i in range(4)), "f.csv")
    rc, out, err = run_cli("predict", str(tmp_path / "p"), str(features))
    assert rc == 0 and len(out.splitlines()) == 5, err


def test_numeric_labels_are_compared_exactly_and_a_missing_one_is_not_a_class(tmp_path):
    # as floats, 9007199254740993 and 9007199254740992 were one class; 0, 1 and NA three
    big = ["9007199254740993", "9007199254740992", "5"] * 5
    p = _write(tmp_path, "x,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(big)))
    ds = load_dataset(p, target="y", test_fraction=0.0)
    assert ds.class_names == ["5", "9007199254740992", "9007199254740993"]
    rows = np.rint(ds.X_train[:, 0] * ds.preprocessing.scale[0] + ds.preprocessing.mean[0])
    assert [ds.class_names[k] for k in ds.y_train] == [big[int(i)] for i in rows]
    same = ["1", "1.0", "01", "2", "1e0"] * 4  # still one class, named as first written
    q = _write(tmp_path, "x,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(same)), "s.csv")
    assert load_dataset(q, target="y").class_names == ["1", "2"]
    # an exponent beyond Decimal's: '[<class 'decimal.InvalidOperation'>]', the whole message
    huge = ["0", "1", "1e-99999999999999999999"] * 5
    h = _write(tmp_path, "x,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(huge)), "h.csv")
    with pytest.raises(
        DatasetError,
        match=r"h.csv: line 4, target column 'y': the class label "
        r"'1e-99999999999999999999' is a number whose exponent has more than 18",
    ):
        load_dataset(h, target="y")  # fmt: skip
    na = ["0", "1", "NA"] * 5
    r = _write(tmp_path, "x,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(na)), "na.csv")
    with pytest.raises(DatasetError, match=r"line 4, target column 'y': 'NA' reads as a missing"):
        load_dataset(r, target="y")
    assert load_dataset(r, target="y", task="classification").class_names == ["0", "1", "NA"]
    # among text labels too: malignant, benign and NA made an empty third class, which
    # pulled evaluate's macro F1 down (0.65 at 97.9% accuracy)
    text = ["malignant", "benign"] * 7 + ["NA"]
    t = _write(tmp_path, "x,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(text)), "t.csv")
    with pytest.raises(
        DatasetError,
        match=r"line 16, target column 'y': 'NA' reads as a "
        r"missing value among the class labels; .* give task='classification'",
    ):
        load_dataset(t, target="y")
    kept = load_dataset(t, target="y", task="classification").class_names
    assert kept == ["NA", "benign", "malignant"]


def test_a_binary_file_given_for_a_csv_file_is_named(tmp_path):
    # a .csv.gz, a UTF-16 export, an .npy and an .xlsx each read 'not UTF-8 text (invalid
    # start byte at byte 1)'
    import gzip
    import zipfile

    text = "a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(10))
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "d16.csv").write_text(text, encoding="utf-16")
    np.save(tmp_path / "d.npy", np.zeros((3, 2)))
    with zipfile.ZipFile(tmp_path / "d.xlsx", "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    for name, kind in (("d.csv.gz", "a gzip file, not CSV text (decompress it first"),
                       ("d16.csv", "UTF-16 text, not UTF-8 (save it as UTF-8)"),
                       ("d.npy", "a NumPy .npy file, not CSV text"),
                       ("d.xlsx", "a zip archive, not CSV text (an .xlsx workbook")):  # fmt: skip
        with pytest.raises(DatasetError, match=rf"d.*: {re.escape(kind)}.*; expected a UTF-8 CSV"):
            load_dataset(tmp_path / name, target="y")
    (tmp_path / "le.csv").write_bytes(text.encode("utf-16-le"))  # no byte-order mark
    with pytest.raises(DatasetError, match="NUL characters: UTF-16 text without a byte-order"):
        load_dataset(tmp_path / "le.csv", target="y")
    (tmp_path / "latin1.csv").write_bytes("a,y\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"not UTF-8 text \(invalid .* line 2\)"):
        load_dataset(tmp_path / "latin1.csv", target="y")


def test_utf16_without_a_byte_order_mark_is_named_whatever_its_letters(tmp_path):
    # an é stopped the UTF-8 decoder before the header's NULs were seen: 'not UTF-8 text
    # (invalid continuation byte at byte 50, line 2)'
    text = "a,y\n" + "".join(f"{i},café{i % 2}\n" for i in range(10))
    for codec in ("utf-16-le", "utf-16-be"):
        (tmp_path / "d.csv").write_bytes(text.encode(codec))
        with pytest.raises(
            DatasetError, match=r"UTF-16 text without a byte-order mark, not UTF-8 \(save it as"
        ):
            load_dataset(tmp_path / "d.csv", target="y")
        with pytest.raises(DatasetError, match="UTF-16 text without a byte-order mark"):
            read_csv_features(tmp_path / "d.csv")


def test_only_ascii_decimal_notation_is_a_number(tmp_path):
    # float() and Decimal() read other scripts' digits and underscores: 1, ١ and ２ were one
    # class, every 10 was relabelled 1_0, and the cells ١٢ and 1_000 were 12 and 1000
    digits = ["1", "١", "２", "2"] * 5
    p = _write(tmp_path, "x,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(digits)))
    assert load_dataset(p, target="y").class_names == ["1", "2", "١", "２"]
    codes = ["1_0", "10", "3"] * 5
    q = _write(tmp_path, "x,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(codes)), "q.csv")
    ds = load_dataset(q, target="y", test_fraction=0.0)
    assert ds.class_names == ["10", "1_0", "3"] and np.bincount(ds.y_train).tolist() == [5, 5, 5]
    for cell in ("١٢", "1_000", "２"):
        r = _write(tmp_path, f"a,b,y\n1,2,p\n3,{cell},q\n", "r.csv")
        with pytest.raises(
            DatasetError,
            match=rf"line 3, column 'b': the cell '{cell}' is not a finite number; "
            "feature columns must hold numbers: encode a category",
        ):
            load_dataset(r, target="y")
        with pytest.raises(DatasetError, match=rf"the cell '{cell}' is not a finite number; the"):
            read_csv_features(r, Preprocessing(("a", "b"), (0.0, 0.0), (1.0, 1.0)))
    # ASCII spellings are read as before: a point, an exponent, surrounding spaces; inf is
    # a number that is not finite
    s = _write(tmp_path, "a,b\n 1.,.5\n+1e2 , -2.5E-1\n", "s.csv")
    np.testing.assert_array_equal(read_csv_features(s), [[1.0, 0.5], [100.0, -0.25]])
    t = _write(tmp_path, "a,y\n1,p\n-Infinity,q\n", "t.csv")
    with pytest.raises(DatasetError, match="'-Infinity' is not a finite number; feature columns "
                       "must hold finite numbers"):  # fmt: skip
        load_dataset(t, target="y")


def test_spaces_around_names_and_labels_are_not_part_of_them(run_cli, tmp_path):
    # 'a, b' spacing names the columns a and b, and ' p' is the label p; a name that looks
    # a column up is compared without them too: a DataFrame's column '幅 ' (what a model
    # fitted on it asks for) was missing from the frame's own to_csv file
    p = _write(
        tmp_path, "幅 , b ,y\n" + "".join(f"{i}, {i % 3}, {'pq'[i % 2]} \n" for i in range(8))
    )
    ds = load_dataset(p, target=" y", features=["幅 ", " b"], test_fraction=0.0)
    assert ds.feature_names == ["幅", "b"] and ds.class_names == ["p", "q"]
    assert ds.preprocessing.target == "y"
    prep = Preprocessing(("b ", "幅 "), (0.0, 0.0), (1.0, 1.0))
    np.testing.assert_array_equal(read_csv_features(p, prep)[:2], [[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(DatasetError, match=r"features repeats the columns \['b'\]"):
        load_dataset(p, target="y", features=["b", "b "])
    with pytest.raises(DatasetError, match=r"feature columns \['b', ' b'\] repeat a name once"):
        read_csv_features(p, Preprocessing(("b", " b"), (0.0, 0.0), (1.0, 1.0)))
    pd = pytest.importorskip("pandas", reason="a DataFrame's column names")
    sklearn = pytest.importorskip("sklearn", reason="the estimators need the sklearn extra")
    from backprop.sklearn import BackpropClassifier

    X = pd.DataFrame({"幅 ": np.arange(20.0), "b": np.arange(20.0) % 3})
    est = BackpropClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():  # (5 epochs do not converge)
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        est.fit(X, np.where(X["幅 "] > 9, "hi", "lo"))
    est.save(tmp_path / "est.safetensors")
    X.to_csv(tmp_path / "frame.csv", index=False)
    rc, out, err = run_cli("predict", str(tmp_path / "est.safetensors"),
                           str(tmp_path / "frame.csv"))  # fmt: skip
    assert rc == 0, err  # (was: missing the feature columns ['幅 '])
    assert [row.split(",")[0] for row in out.splitlines()[1:]] == est.predict(X).tolist()


def test_names_in_another_normalisation_form_are_pointed_out(tmp_path):
    nfc, nfd = "caf\u00e9", "cafe\u0301"  # both print café
    p = _write(tmp_path, f"{nfc},y\n1,p\n2,q\n")
    hint = (
        r" \(the same letters in another Unicode normalisation form; names are compared exactly\)$"
    )
    with pytest.raises(DatasetError, match=r"no target column 'cafe\u0301'; .*" + hint):
        load_dataset(p, target=nfd)
    with pytest.raises(
        DatasetError, match=r"missing the feature columns \['cafe\u0301'\];.*" + hint
    ):
        load_dataset(p, target="y", features=[nfd])
    prep = Preprocessing((nfd + " ",), (0.0,), (1.0,))
    with pytest.raises(DatasetError, match="the model was trained on; .*" + hint):
        read_csv_features(p, prep)
    with pytest.raises(DatasetError, match=r"columns: caf\u00e9, y$"):  # a name not there at all
        read_csv_features(p, Preprocessing(("cafés",), (0.0,), (1.0,)))


def test_named_feature_columns_leave_the_others_unread(tmp_path):
    p = _write(tmp_path, "id,b,a,y\n" + "".join(f"r{i},{i % 3},{i},{i % 2}\n" for i in range(20)))
    ds = load_dataset(p, target="y", features=["a", "b"], test_fraction=0.0)
    assert ds.feature_names == ["a", "b"] and ds.preprocessing.feature_names == ("a", "b")
    raw = ds.X_train * np.array(ds.preprocessing.scale) + np.array(ds.preprocessing.mean)
    a, b = np.rint(raw).T  # a = i, b = i % 3, in whatever order the rows were split
    assert sorted(a) == list(range(20)) and (b == a % 3).all()
    with pytest.raises(DatasetError, match=r"missing the feature columns \['c'\]; the file"):
        load_dataset(p, target="y", features=["a", "c"])
    with pytest.raises(DatasetError, match="the target column 'y' is among the features"):
        load_dataset(p, target="y", features=["a", "y"])
    with pytest.raises(DatasetError, match="features applies to CSV files"):
        load_dataset("moons", features=["a"])
    for bad, said in ((["a", "a"], r"features repeats the columns \['a'\]"),
                      ([], "features names no column"),
                      ("ab", "features must be a list of column names; got the")):  # fmt: skip
        with pytest.raises(DatasetError, match=said):
            load_dataset(p, target="y", features=bad)
    with pytest.raises(DatasetError, match="column 'id': the cell 'r0' is not a finite number"):
        load_dataset(p, target="y")  # all columns but the target, as before


def test_task_override(tmp_path):
    p = _write(tmp_path, "x,y\n" + "\n".join(f"{i},{i % 2}" for i in range(10)))
    ds = load_dataset(p, target="y", task="regression", test_fraction=0.0)
    assert ds.task == "regression" and ds.y_train.shape == (10, 1)
    q = _write(tmp_path, "x,y\n1,a\n2,b\n", "labels.csv")
    with pytest.raises(DatasetError, match=r"line 2, target column 'y': 'a' is not a number"):
        load_dataset(q, target="y", task="regression")


def test_constant_feature_does_not_divide_by_zero(tmp_path):
    p = _write(tmp_path, "c,x,y\n" + "\n".join(f"7,{i},{i % 2}" for i in range(8)))
    ds = load_dataset(p, target="y", test_fraction=0.0)
    np.testing.assert_array_equal(ds.X_train[:, 0], 0.0)
    assert ds.preprocessing.scale[0] == 1.0


@pytest.mark.parametrize("value", [0.1, 0.3, 0.7, 123.456, 1e-5, 1e200])
def test_a_constant_column_of_an_inexact_value_is_constant(value):
    # 0.3 ten times: summed, mean 0.29999999999999993 and deviation 5.6e-17, which became
    # its scale: the column read as 1.0 in training and 0.31 at prediction as 1.8e14
    for n in (3, 10, 1000):
        X = np.column_stack([np.full(n, value), np.arange(n, dtype=float)])
        pre = fit_standardizer(X, ["c", "x"])
        assert pre.mean[0] == value and pre.scale[0] == 1.0
        assert pre.transform(X)[:, 0].tolist() == [0.0] * n
        assert pre.with_target_scaling(X[:, :1]).target_scale == (1.0,)
    # constant but for one rounding (computed values: nine 0.3, one 0.1 + 0.2): the
    # deviation 1.8e-17 read 0.31 as 5.7e14 deviations; scikit-learn's StandardScaler: 0.01
    near = fit_standardizer(np.array([[0.3]] * 9 + [[0.1 + 0.2]]), ["c"])
    assert near.scale == (1.0,) and near.transform(np.array([[0.31]]))[0, 0] == pytest.approx(0.01)
    # a spread that is data, at any magnitude, is kept
    for m in (1e-300, 1.0, 1e200):
        assert fit_standardizer(np.array([[m], [2 * m]]), ["c"]).scale[0] == pytest.approx(m / 2)


def test_standardising_columns_of_tiny_or_huge_magnitude():
    """Features below 1e-160 had their squares underflow: std 0, scale 1, inputs left near
    1e-170 and a separable set at chance. Regression targets near 1e200 overflowed the
    target scaling ('target_scale values must be finite numbers; got inf'). Both are the
    statistics of the column at unit scale, times its magnitude."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2)) + 3.0
    plain = fit_standardizer(X, ["a", "b"])
    for m in (1e-170, 1e200):
        scaled = fit_standardizer(X * m, ["a", "b"])
        np.testing.assert_allclose(np.array(scaled.scale) / m, plain.scale, rtol=1e-13)
        np.testing.assert_allclose(np.array(scaled.mean) / m, plain.mean, rtol=1e-13)
        np.testing.assert_allclose(scaled.transform(X * m), plain.transform(X), atol=1e-12)
        target = plain.with_target_scaling(X[:, :1] * m)
        assert target.target_scale[0] / m == pytest.approx(plain.scale[0], rel=1e-13)
        np.testing.assert_allclose(target.unscale_targets([[0.0], [1.0]]) / m,
                                   [[plain.mean[0]], [plain.mean[0] + plain.scale[0]]],
                                   rtol=1e-13)  # fmt: skip


def test_standardising_values_whose_difference_from_the_mean_overflows():
    """-1.5e308 in a column of 1.5e308s (mean 7.5e307, scale 1.3e308) is 1.7 deviations
    from the mean, but X - mean overflowed: the file's own training row was refused as
    'too far from the training data to standardise in float64', and targets like it were
    'T contains NaN or inf'. Every other value is standardised as before, to the bit."""
    X = np.array([[1.5e308], [1.5e308], [1.5e308], [-1.5e308]] * 3)
    pre = fit_standardizer(X, ["a"])
    z = pre.transform(X)[:4, 0]
    np.testing.assert_allclose(z, [3**-0.5] * 3 + [-(3**0.5)], rtol=1e-15)
    target = pre.with_target_scaling(X)
    np.testing.assert_allclose(target.scale_targets(X)[:4, 0], z, rtol=0)
    assert target.unscale_targets(target.scale_targets(X)).tolist() == X.tolist()
    # outputs whose product with the scale overflows, where the sum with the mean does not
    exact = Fraction(-1.5) * Fraction(target.target_scale[0]) + Fraction(target.target_mean[0])
    assert target.unscale_targets([[-1.5]])[0, 0] == float(exact)  # (-1.2e308)
    assert target.unscale_targets([[1e10]])[0, 0] == np.inf  # beyond float64: inf
    rng = np.random.default_rng(2)
    for _ in range(20):  # ordinary values: (X - mean) / scale exactly
        R = rng.normal(size=(30, 3)) * 10.0 ** rng.uniform(-300, 300, size=3)
        plain = fit_standardizer(R, ["a", "b", "c"])
        mean, scale = np.array(plain.mean), np.array(plain.scale)
        assert plain.transform(R).tolist() == ((R - mean) / scale).tolist()


def test_training_on_values_near_the_float64_limit_ends_with_its_summary(run_cli, tmp_path):
    """A feature of +-1.5e308 was refused (above); a target of +-1.5e308 trained, then the
    run ended after its epochs with 'y_pred holds NaN or inf' (predictions beyond float64)
    and no summary.json, or an internal error from matplotlib's overflowing axis limits."""
    rng = np.random.default_rng(0)
    n = 60
    sign = np.where(np.arange(n) % 4 != 3, 1.0, -1.0)
    t = sign * 1.5e308 * (1 - 0.01 * rng.random(n))
    path = tmp_path / "huge.csv"
    columns = zip(rng.normal(size=n).tolist(), (sign * 1.5e308).tolist(), t.tolist(), strict=True)
    path.write_text("a,c,t\n" + "".join(f"{a!r},{c!r},{v!r}\n" for a, c, v in columns))
    rc, out, err = run_cli("train", "--dataset", str(path), "--target", "t", "--epochs", "5",
                           "--out", str(tmp_path / "run"), "--no-progress")  # fmt: skip
    assert rc == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for split in ("train", "validation", "test"):
        assert set(summary[split]) == {"loss", "mse", "mae", "r2"}  # null where inf
    # (test rows whose predictions are beyond float64: one line, no 'inf' printed)
    rc, out, err = run_cli("predict", str(tmp_path / "run"))
    assert rc == 2 and out == "" and err.count("\n") == 1, (out, err)
    assert "are beyond float64's range in the target's units" in err


def test_evaluate_names_a_value_too_far_from_the_models_training_data(run_cli, tmp_path):
    """A file evaluated against a model trained on values near 1e-300: its 1e10, taken to
    the model's scaling, overflowed (a RuntimeWarning, an internal error under -W error),
    then 'X contains NaN or inf (first at index [1, 0])', an index into shuffled rows."""
    cells = "".join(f"{i * 1e-300!r},{'pq'[i % 2]}\n" for i in range(40))
    (tmp_path / "tiny.csv").write_text("a,y\n" + cells)
    (tmp_path / "far.csv").write_text("a,y\n1e10,p\n0,q\n" + cells)
    run = tmp_path / "run"
    rc, _, err = run_cli("train", "--dataset", str(tmp_path / "tiny.csv"), "--target", "y",
                         "--epochs", "2", "--no-progress", "--no-plots",
                         "--out", str(run))  # fmt: skip
    assert rc == 0, err
    rc, _, err = run_cli("evaluate", str(run), "-d", str(tmp_path / "far.csv"), "--target", "y",
                         "--split", "all")  # fmt: skip
    assert rc == 2 and err.count("\n") == 1, err
    assert "far.csv: column 'a' holds 1e+10, too far from the model's training data" in err


def test_a_column_that_counts_the_rows_is_named_as_a_row_id(run_cli, tmp_path):
    """A customer_id of 1000001 to 1000300, one per row, was trained on as a feature without a
    word (and predict then asked for it): the header's data line names it. Columns that
    only look alike (a repeated value, a gap) are not named."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2)).tolist()
    label = ["no", "yes"]
    rows = [f"{1000001 + i},{(i * 7) % 300},{i + (i > 150)},{2000000.3 + i!r},{a!r},{b!r},"
            f"{label[a + b > 0]}\n" for i, (a, b) in enumerate(X)]  # fmt: skip
    (tmp_path / "ids.csv").write_text("customer_id,shuffled_id,gap,price,a,b,y\n" + "".join(rows))
    rc, out, err = run_cli("train", "--dataset", str(tmp_path / "ids.csv"), "--target", "y",
                           "--epochs", "2", "--no-progress", "--no-plots",
                           "--out", str(tmp_path / "run"))  # fmt: skip
    assert rc == 0, err
    data = " ".join(out.split("Run ")[0].split("Data ")[1].split())
    # (written with 6 digits, '1e+06 to 1.0003e+06', and 2000000.3, 2000001.3... taken for
    # integers, by a first version)
    assert "column 'customer_id' holds 1000001 to 1000300, one each: a row id?" in data, data
    assert "column 'shuffled_id' holds 0 to 299, one each" in data  # (i * 7) % 300: all once
    assert "'gap'" not in data and "'price'" not in data and "'a'" not in data


def test_a_float32_run_refuses_a_split_beyond_float32_before_training(run_cli, tmp_path):
    """A test row of 1e300 in a column whose training rows are all 0 is 1e300 standardised:
    a float32 run trained every epoch, then ended without its summary on 'X has values
    beyond float32's range (first at index [9, 0]: 1e+300)', naming neither split nor
    column. It is refused before the run folder is made."""
    rng = np.random.default_rng(0)
    a = [0.0] * 40
    a[7] = 1e300  # a test row at --seed 2
    rows = "".join(f"{a[i]!r},{float(rng.normal())!r},{'pq'[i % 2]}\n" for i in range(40))
    (tmp_path / "one.csv").write_text("a,b,y\n" + rows)
    args = ["train", "--dataset", str(tmp_path / "one.csv"), "--target", "y", "--epochs", "3",
            "--no-progress", "--no-plots", "--seed", "2",
            "--out", str(tmp_path / "run")]  # fmt: skip
    rc, out, err = run_cli(*args, "--dtype", "float32")
    assert rc == 2 and err.count("\n") == 1 and not (tmp_path / "run").exists(), err
    assert "one.csv: test row 10, column 'a', is 1e+300 once standardised, beyond float32" in err
    assert run_cli(*args)[0] == 0  # float64 takes it
    # predict: 'X has values beyond float32's range (first at index [1, 1]: 1.4e+200)'
    rc, _, err = run_cli(*args[:-1], str(tmp_path / "f32"), "--seed", "0", "--dtype", "float32")
    assert rc == 0, err
    (tmp_path / "new.csv").write_text("a,b\n0,1\n0,1e200\n")
    rc, out, err = run_cli("predict", str(tmp_path / "f32"), str(tmp_path / "new.csv"))
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert (
        "new.csv: row 2, column 'b', is 1.4" in err
        and "once standardised, beyond float32's range (3.4e+38) (the model is float32: " in err
    )
    # all rows of a file are the training split's then the test split's, each shuffled: a
    # row's place in them is no row of the file (it named 'row 5' for the file's first)
    (tmp_path / "holdout.csv").write_text("a,b,y\n0,1e200,p\n" + "0,1,q\n0,2,p\n" * 4)
    rc, _, err = run_cli("evaluate", str(tmp_path / "f32"), "-d", str(tmp_path / "holdout.csv"),
                         "--target", "y", "--split", "all")  # fmt: skip
    assert rc == 2 and "holdout.csv (all rows): a row, column 'b', is 1.4" in err, err


def test_predictions_beyond_float64_in_the_targets_units_are_one_error(run_cli, tmp_path):
    """A regression model's outputs were checked before its target scaling was undone:
    an input far outside the training data gave a prediction of inf, printed with exit 0
    and a RuntimeWarning; evaluate said 'y_pred holds NaN or inf', naming no row."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=200).tolist(), rng.normal(size=200).tolist()
    rows = "".join(f"{x!r},{y!r},{(3 * x + y) * 1e300!r}\n" for x, y in zip(a, b, strict=True))
    (tmp_path / "price.csv").write_text("a,b,price\n" + rows)
    run = tmp_path / "run"
    rc, _, err = run_cli("train", "--dataset", str(tmp_path / "price.csv"), "--target", "price",
                         "--activation", "relu", "--epochs", "20", "--out", str(run),
                         "--no-progress", "--no-plots")  # fmt: skip
    assert rc == 0, err
    (tmp_path / "new.csv").write_text("a,b\n0.5,0.5\n1e300,0\n")
    rc, out, err = run_cli("predict", str(run), str(tmp_path / "new.csv"))
    assert rc == 2 and out == "" and err.count("\n") == 1, (out, err)
    assert "the predictions for 1 of 2 rows of" in err and "(the first is row 2)" in err
    assert "beyond float64's range in the target's units" in err
    (tmp_path / "eval.csv").write_text("a,b,price\n0.5,0.5,1e300\n1e300,0,5\n")
    rc, out, err = run_cli("evaluate", str(run), "-d", str(tmp_path / "eval.csv"),
                           "--target", "price", "--split", "train")  # fmt: skip
    assert rc == 2 and "(the first is row 2)" in err and "y_pred" not in err, err


# ------------------------------------------------------------------ bad files
@pytest.mark.parametrize(
    ("text", "target", "match"),
    [
        (
            "a,b,y\n1,2,p\n3,4\n",
            "y",
            r"line 3 has 2 cells; expected 3, one per column of the header \(a, b, y\)",
        ),
        ("a,b,y\n1,2,p\n3,4,q,5\n", "y", "line 3 has 4 cells; expected 3"),
        (
            "a,b,y\n1,2,p\n3,x4,q\n",
            "y",
            r"line 3, column 'b': the cell 'x4' is not a finite number",
        ),
        ("a,b,y\n1,2,p\n3,,q\n", "y", r"line 3, column 'b': the cell is empty"),
        (
            "a,b,y\n1,nan,p\n3,4,q\n",
            "y",
            r"line 2, column 'b': the cell 'nan' reads as a missing value",
        ),
        ("a,b,y\n1,2,p\n3,4,q\n", "label", r"no target column 'label'; the columns are: a, b, y$"),
        (
            "a;b;y\n1;2;p\n3;4;q\n",
            "y",
            r"the columns are: a;b;y \(the header is one column: the file looks separated by "
            r"semicolons; expected commas\)$",
        ),
        ("a\tb\ty\n1\t2\tp\n", "y", r"looks separated by tabs; expected commas\)$"),
        (
            "a,b,y\n1,2,p\n3,4,q\n",
            None,
            r"name the target column \(target=...\); the columns are: a, b, y",
        ),
        ("a,b,y\n1,2,p\n3,4,\n", "y", r"line 3, target column 'y': the cell is empty"),
        ("", "y", "the CSV file is empty"),
        ("a,b,y\n", "y", "a header but no data rows"),
        ("a,a,y\n1,2,p\n", "y", r"repeats column names \['a'\]"),
        ("a,,y\n1,2,p\n", "y", "empty column name"),
        ("y\np\nq\n", "y", "the only column is the target 'y'; no features left$"),
        ("a;y\n1;p\n", "a;y", r"no features left \(the header is one column: .* semicolons"),
        # a quote never closed took the rest of the file as one cell, silently
        (
            'a,b,y\n1,2,p\n3,4,"q\n5,6,p\n7,8,q\n',
            "y",
            r"line 3: a quoted cell opened on this line is never closed \(expected a closing \"\)$",
        ),
        ('a,b,y\n1,2,p\n3,"4"5,q\n', "y", r"line 3: malformed CSV \(',' expected after '\"'\)$"),
        # a feature cell that is not a number says what to do about it
        (
            "a,color,y\n1,red,p\n3,blue,q\n",
            "y",
            r"line 2, column 'color': the cell 'red' is not "
            r"a finite number; .* encode a category as numbers .* leave the column out \(features=",
        ),
        ('a,b,y\n1,"3,14",p\n', "y", r"the cell '3,14' is not a finite number: a decimal comma\?"),
        (
            "a,b,y\n1,NA,p\n",
            "y",
            r"the cell 'NA' reads as a missing value; .* fill it in or "
            r"remove that row, or leave the column out",
        ),
        # a missing value in a numeric target made every distinct price a class
        (
            "a,y\n" + "".join(f"{i},{i * 1.5 + 0.25}\n" for i in range(30)) + "31,NA\n",
            "y",
            r"line 32, target column 'y': 'NA' is not a number, but most of the column's cells "
            r"are numbers of a regression target; fill in or remove that row$",
        ),
    ],
)
def test_bad_csv_is_one_clear_error(tmp_path, text, target, match):
    p = _write(tmp_path, text)
    with pytest.raises(DatasetError, match=match) as info:
        load_dataset(p, target=target)
    assert "\n" not in str(info.value)
    assert str(p) in str(info.value)


# ------------------------------------------------------------------ what a refused cell says
@pytest.mark.parametrize(
    ("cell", "said"),
    [
        # one comma and three digits: either reading, both said, none guessed
        ("54,446", "54446 with a thousands separator, or 54.446 with a decimal comma? feature "
         "columns must hold numbers with a decimal point and no thousands separators: write "
         "54446 or 54.446, whichever it means"),
        ("-1,234", "-1234 with a thousands separator, or -1.234 with a decimal comma?"),
        ("12,345,678.9", "a thousands separator? feature columns must hold numbers without "
         "thousands separators: remove the commas (12345678.9)"),
        ("1,234,567", "a thousands separator? .* remove the commas (1234567)"),
        ("+2,204.34", "a thousands separator? .* remove the commas (+2204.34)"),
        # not groups of three, or a leading 0: a decimal comma only
        ("3,14", "a decimal comma? feature columns must hold numbers written with a decimal "
         "point: write 3.14"),
        ("0,125", "a decimal comma? .*: write 0.125"),
        ("1,2345", "a decimal comma? .*: write 1.2345"),
    ],
)  # fmt: skip
def test_a_thousands_separator_is_not_taken_for_a_decimal_comma(tmp_path, cell, said):
    """'54,446' (an income) was 'a decimal comma? feature columns must hold numbers written
    with a decimal point': followed, it made the income 54.446, 1,000 times too small; and
    '12,345,678.9' was told to 'encode a category'. A cell of digits grouped in threes by
    commas is named as a thousands separator, with the number it is without them; '1,234'
    can be either, so both readings are said."""
    p = _write(tmp_path, f'a,income,y\n1,2,p\n3,"{cell}",q\n')
    said = re.escape(said).replace(r"\.\*", ".*")
    with pytest.raises(
        DatasetError, match=rf"line 3, column 'income': the cell '{re.escape(cell)}' is not a "
        rf"finite number: {said}"
    ):  # fmt: skip
        load_dataset(p, target="y")
    # predict's rows are numbers too: the same hint
    with pytest.raises(DatasetError, match=said):
        read_csv_features(p, Preprocessing(("a", "income"), (0.0, 0.0), (1.0, 1.0)))


@pytest.mark.parametrize(
    ("cell", "said"),
    [
        ("$2,204.34", ": a currency amount? feature columns must hold plain numbers: strip the "
         "currency sign and any thousands separators: write 2204.34"),
        ("-$15", ": a currency amount? .*: strip the currency sign: write -15"),
        ("12,50 €", ": a currency amount? .*: strip the currency sign, with a decimal point "
         "for the comma: write 12.50"),
        ("£1,234", ": a currency amount? .*: strip the currency sign and write 1234 or 1.234, "
         "whichever it means"),
        ("2021-07-07", ": a date or time? feature columns must hold numbers: turn it into "
         "numbers (such as days since a fixed date), or leave the column out (features=...)"),
        ("2021-07-07T12:30:00Z", ": a date or time? .* days since a fixed date"),
        ("7/7/21", ": a date or time? .* days since a fixed date"),
        ("12:30", ": a date or time? .* (such as hours since midnight), or leave the column"),
        ("True", ": a true/false column? feature columns must hold numbers: write it as one "
         "column of 0 and 1 (1 for true, 0 for false), or leave the column out (features=...)"),
        ("no", ": a yes/no column? .* one column of 0 and 1 (1 for yes, 0 for no), or leave"),
    ],
)  # fmt: skip
def test_currency_dates_and_yes_no_cells_are_not_called_categories(tmp_path, cell, said):
    """'$2,204.34', '2021-07-07', 'True' and 'yes' were each told to 'encode a category as
    numbers (a 0/1 column per value)': an amount needs its sign and separators stripped, a
    date turned into numbers, and a two-valued column is one 0/1 column, not two."""
    p = _write(tmp_path, f'a,b,y\n1,2,p\n3,"{cell}",q\n')
    said = re.escape(said).replace(r"\.\*", ".*")
    with pytest.raises(
        DatasetError, match=rf"the cell '{re.escape(cell)}' is not a finite number{said}"
    ) as info:
        load_dataset(p, target="y")
    assert "category" not in str(info.value)


def test_predict_names_a_currency_amount_and_keeps_its_training_hint(tmp_path):
    """predict's rows (read_csv_features with a model's columns) said of '$5' only that 'the
    model was trained on numbers in this column'; a currency sign is how a number is
    written, so predict gets training's hint for it. A date or a category keeps predict's
    hint (a model's column cannot be left out), and other text in training keeps the
    category hint (both unchanged: checked here beside the new one)."""
    prep = Preprocessing(("a", "b"), (0.0, 0.0), (1.0, 1.0))
    for cell, said in (("$5", ": a currency amount? feature columns must hold plain numbers: "
                               "strip the currency sign: write 5"),
                       ("2021-07-07", "; the model was trained on numbers in this column "
                                      "(encoded as its training file had them)"),
                       ("north", "; the model was trained on numbers in this column")):  # fmt: skip
        q = _write(tmp_path, f"a,b\n1,{cell}\n", "q.csv")
        with pytest.raises(
            DatasetError,
            match=rf"line 2, column 'b': the cell '{re.escape(cell)}' is not a finite number"
            + re.escape(said),
        ):  # fmt: skip
            read_csv_features(q, prep)
    p = _write(tmp_path, "a,b,y\n1,north,p\n")
    with pytest.raises(DatasetError, match=r"'north' is not a finite number; feature columns "
                       r"must hold numbers: encode a category as numbers \(a 0/1 column per "
                       r"value\), or leave the column out \(features=\.\.\.\)$"):  # fmt: skip
        load_dataset(p, target="y")


def test_every_feature_column_that_is_not_numbers_is_named_at_once(tmp_path):
    """Only the first refused cell was named: a table with six columns of text or gaps took
    seven runs to clean. The error names the other feature columns that hold a non-number
    or an empty cell too, each at its first line (the rest of the file is read on this error
    path only; a ragged row is skipped there, its error comes once this one is fixed)."""
    rows = ["x,region,balance,opened,score,y",
            "1,north,10,3,0.5,p",
            "2,south,11,2021-07-07,0.7,q",
            "3,4,5",  # ragged
            "4,east,,5,0.1,p",
            "5,west,12,6,,q"]  # fmt: skip
    p = _write(tmp_path, "\n".join(rows) + "\n")
    with pytest.raises(DatasetError) as info:
        load_dataset(p, target="y")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{p}: line 2, column 'region': the cell 'north' is not a finite")
    assert message.endswith(
        "(features=...); also not numbers: 'opened' (line 3), 'balance' (line 5), 'score' (line 6)"
    )
    # features that leave 'region' out: the next run names the rest, and only the chosen
    with pytest.raises(
        DatasetError,
        match=r"line 3, column 'opened': .*; also not numbers: 'balance' \(line 5\)$",
    ):
        load_dataset(p, target="y", features=["x", "opened", "balance"])
    # a run's only bad column: nothing more said
    with pytest.raises(DatasetError, match=r"'north' is not .*\(features=\.\.\.\)$"):
        load_dataset(p, target="y", features=["region", "x"])
    # predict's rows too
    prep = Preprocessing(("x", "region", "balance"), (0.0,) * 3, (1.0,) * 3)
    with pytest.raises(DatasetError, match=r"'north' .*; also not numbers: 'balance' \(line 5\)$"):
        read_csv_features(p, prep)


def test_the_other_columns_named_are_capped(tmp_path):
    """Only the first refused cell was named (the test above); the other columns named are
    at most five, then how many more: exactly when every column was found or the file
    ended, 'at least' when the search stopped at the cap with a column left to search."""
    header = "a,b,c,d,e,f,g,h,i,y\n"
    p = _write(tmp_path, header + "x,x,x,x,x,x,x,x,x,p\n1,1,1,1,1,1,1,1,1,q\n")
    with pytest.raises(
        DatasetError,
        match=r"line 2, column 'a': .*; also not numbers: 'b' \(line 2\), 'c' \(line 2\), "
        r"'d' \(line 2\), 'e' \(line 2\), 'f' \(line 2\), and 3 more$",
    ):
        load_dataset(p, target="y")
    # a column of numbers left: the search stops at the cap, not at the end of the file
    q = _write(tmp_path, header + "x,x,x,x,x,1,1,1,1,p\n1,1,1,1,1,x,x,1,1,q\n", "q.csv")
    with pytest.raises(DatasetError, match=r"'e' \(line 2\), 'f' \(line 3\), and at least 1 more$"):
        load_dataset(q, target="y")
    # a row that cannot be read (a quote never closed) ends the search, not the error
    r = _write(
        tmp_path, header + 'x,1,1,1,1,1,1,1,1,p\n1,x,1,1,1,1,1,1,1,q\n1,"1\n1,1,x\n', "r.csv"
    )
    with pytest.raises(DatasetError, match=r"'a': .*; also not numbers: 'b' \(line 3\)$"):
        load_dataset(r, target="y")


def test_a_pandas_index_column_is_named_and_can_be_left_out(run_cli, tmp_path):
    """A CSV file from pandas' default to_csv (its index first, under an empty name) was
    'the header has an empty column name: ['', 'sepal length (cm)', ...]', and features
    naming the other columns could not get past it. The error says it is likely a pandas
    index; an unnamed column that is not read (neither a chosen feature nor the target) is
    no error. One that would be read still is."""
    rows = "".join(f"{i},{5 + i % 3},{3 + i % 2},{'ab'[i % 2]}\n" for i in range(20))
    p = _write(tmp_path, ",sepal length (cm),sepal width (cm),species\n" + rows)
    with pytest.raises(
        DatasetError,
        match=r"the header's first column has no name \(\['', 'sepal length \(cm\)', .*\]\): a "
        r"pandas index\? re-save the file with to_csv\(index=False\), or name the feature "
        r"columns to leave it out \(features=\.\.\.\)$",
    ):
        load_dataset(p, target="species")
    chosen = ["sepal length (cm)", "sepal width (cm)"]
    ds = load_dataset(p, target="species", features=chosen, test_fraction=0.0)
    assert ds.feature_names == chosen and ds.class_names == ["a", "b"]
    np.testing.assert_allclose(ds.preprocessing.mean, [5 + 19 / 20, 3.5])
    # predict: every column is read without a model (no features to name); a model's are
    with pytest.raises(DatasetError, match=r"re-save the file with to_csv\(index=False\)$"):
        read_csv_features(p)
    assert read_csv_features(p, ds.preprocessing, raw=True)[1].tolist() == [6.0, 4.0]
    # the command line: --features, and the error in its words
    args = ["train", "--dataset", str(p), "--target", "species", "--epochs", "1",
            "--no-progress", "--no-plots", "--out"]  # fmt: skip
    rc, _, err = run_cli(*args, str(tmp_path / "no"))
    assert rc == 2 and "to leave it out (--features ...)" in err and err.count("\n") == 1, err
    rc, _, err = run_cli(*args, str(tmp_path / "run"), "--features", ",".join(chosen))
    assert rc == 0, err
    rc, out, err = run_cli("predict", str(tmp_path / "run"), str(p))
    assert rc == 0 and len(out.splitlines()) == 21, err
    # an unnamed column read is still refused: as a feature, as the target, in the middle
    with pytest.raises(DatasetError, match="first column has no name"):
        load_dataset(p, target="species", features=["", "sepal width (cm)"])
    with pytest.raises(DatasetError, match="first column has no name"):
        load_dataset(p, target="", features=chosen)
    q = _write(tmp_path, "a,,y\n1,2,p\n3,4,q\n", "q.csv")
    with pytest.raises(
        DatasetError,
        match=r"the header has an empty column name \(column 2 of 3: \['a', '', 'y'\]\); expected "
        r"a name for every column read: name it, or name the feature columns to leave it out",
    ):
        load_dataset(q, target="y")
    assert load_dataset(q, target="y", features=["a"]).feature_names == ["a"]
    # a MultiIndex's two unnamed levels: not a repeated name when neither is read
    m = _write(tmp_path, ",,a,y\n0,1,1,p\n1,2,3,q\n", "m.csv")
    assert load_dataset(m, target="y", features=["a"]).feature_names == ["a"]
    pd = pytest.importorskip("pandas", reason="a DataFrame's own to_csv")
    frame = pd.DataFrame({"w": np.arange(10.0), "y": ["p", "q"] * 5})
    frame.to_csv(tmp_path / "frame.csv")  # (the index, unnamed, first)
    assert load_dataset(tmp_path / "frame.csv", target="y", features=["w"]).n_train > 0


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(DatasetError, match="CSV file .*absent.csv does not exist"):
        load_dataset(tmp_path / "absent.csv", target="y")
    p = tmp_path / "latin.csv"
    p.write_bytes("a,y\n1,caf\xe9\n2,b\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8 text"):
        load_dataset(p, target="y")
    # past the reader's first chunk: the byte and line in the file, not in the chunk
    p.write_bytes(b"a,y\n" + b"1,p\n2,q\n" * 9000 + b"3,caf\xe9\n")
    with pytest.raises(
        DatasetError, match=r"invalid continuation byte at byte 72009, line 18002\)$"
    ):
        load_dataset(p, target="y")


def test_byte_order_mark_blank_lines_and_quotes(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes('\ufeffa,"the label"\n1,"x, y"\n\n2,z\n3,"x, y"\n'.encode())
    ds = load_dataset(p, target="the label", test_fraction=0.0)
    assert ds.feature_names == ["a"] and ds.class_names == ["x, y", "z"] and ds.n_train == 3


def test_any_existing_file_is_read_as_csv(tmp_path):
    p = _write(tmp_path, "a,y\n1,p\n2,q\n", "table.txt")
    assert load_dataset(p, target="y", test_fraction=0.0).class_names == ["p", "q"]


def test_csv_only_arguments(tmp_path):
    p = _flowers(tmp_path)
    with pytest.raises(DatasetError, match="n_samples does not apply to CSV"):
        load_dataset(p, target="species", n_samples=3)
    with pytest.raises(DatasetError, match="task must be 'classification' or 'regression'"):
        load_dataset(p, target="species", task="ranking")


# ------------------------------------------------------------------ the fast reader
# load_csv and read_csv_features read a numeric file a block of lines at a time with NumPy
# (tabular's "fast numeric reader"); the row-by-row loop, csv.reader then _parse_number on
# every cell, is the reference they must equal bit for bit, errors included.

#: Cells that read as numbers only just, or not at all: many digits, exponents, subnormals,
#: ties between two floats, signs, points, spaces, text.
_ODD_CELLS = [
    "0", "-0", "+0", "-0.0", "0e-999", ".5", "5.", "-.5", "+.5", "1e5", "1E+05", "-1.5e-3",
    "007", "00.100", "1e22", "1e23", "1e-22", "1e-23", "5e-324", "4.9e-324", "1e-400",
    "2.2250738585072011e-308", "1.7976931348623157e308", "9007199254740993",
    "9007199254740992.5", "0.1000000000000000055511151231257827", "9" * 19, "9" * 25,
    "123456789012345678901234567890e-20", "9223372036854775807", "9223372036854775808",
    "-9223372036854775808", "1.00000000000000011102230246251565404236316680908203125",
    "0." + "0" * 30 + "1", "1e0000000000000000000005", " 1.5", "1.5 ", "\t2", "\x1c3",
    "1e400", "nan", "-inf", "Infinity", "1_000", "١", "", " ", "NA", "x", "1e", "e5", ".", "-",
    "+-5", ".-5", "5-", "1.2.3", "1e2e3", "1e5.5", "1e+", "0x10", "- 5",
]  # fmt: skip


def _tie(rng: random.Random) -> str:
    """A decimal number halfway between two neighbouring floats, or one of its first digits
    with a digit after: the numbers that rounding gets wrong."""
    x = abs(rng.normalvariate(0, 1)) * 10.0 ** rng.randint(-300, 300) or 1.0
    mid = (Decimal(x) + Decimal(math.nextafter(x, math.inf))) / 2
    digits, exponent = f"{mid:e}".split("e")
    return digits[: rng.randint(3, 22)].rstrip(".") + rng.choice(["", "1", "9"]) + "e" + exponent


def _number_cell(rng: random.Random, odd: float) -> str:
    if rng.random() < odd:
        return rng.choice(_ODD_CELLS) if rng.random() < 0.5 else _tie(rng)
    x = rng.choice([rng.normalvariate(0, 1), rng.uniform(-1e6, 1e6), rng.randint(-99, 99),
                    rng.choice([-1, 1]) * 10.0 ** rng.uniform(-320, 307)])  # fmt: skip
    spec = rng.choice(["", "", ".17g", ".18e", ".3f", ".15g", "E"])  # ("": repr)
    return format(float(x), spec)


def _random_csv(rng: random.Random) -> tuple[bytes, list[str]]:
    """A CSV file of numbers and a target column ``y`` (classes, numbers or both), with
    odd cells and lines at random (blank, ragged, quoted, CRLF, a lone CR, a byte-order
    mark, a last line without a line end, non-UTF-8 bytes): its bytes and its columns."""
    names = [f"x{i}" for i in range(rng.randint(1, 4))] + ["y"]
    rng.shuffle(names)
    odd = rng.choice([0.0, 0.0, 0.003, 0.03])
    kind = rng.choice(["classes", "labels", "numbers", "both", "with NA"])
    lines = [",".join(f'"{n}"' if rng.random() < 0.1 else n for n in names)]
    for _ in range(rng.choice([rng.randint(0, 30), rng.randint(0, 300)])):
        cells = []
        for n in names:
            if n != "y":
                cell = _number_cell(rng, odd)
            elif kind == "classes":
                cell = str(rng.randint(0, 2))
            elif kind == "labels":
                cell = rng.choice(["a", " b", "b", "setosa", "é", "x_y", '"q,r"', "NA", ""])
            elif kind == "numbers":
                cell = _number_cell(rng, odd)
            elif kind == "both":
                cell = rng.choice(["1", "1.0", "01", "2", "2.5", "x"])
            else:
                cell = rng.choice([_number_cell(rng, 0.0)] * 200 + ["NA", "nan", " 1.5"])
            cells.append(f'"{cell}"' if rng.random() < 0.005 else cell)
        line = ",".join(cells)
        r = rng.random()
        line = line + ",9" if r < 0.005 else "" if r < 0.01 else " , ," if r < 0.015 else line
        lines.append(line)
    end = rng.choice(["\n"] * 8 + ["\r\n", "\r"])
    data = (end.join(lines) + end * rng.choice([0, 1, 1, 1, 2])).encode()
    if rng.random() < 0.05:
        data = b"\xef\xbb\xbf" + data
    if rng.random() < 0.01:
        data = data[: len(data) // 2] + b"\xff" + data[len(data) // 2 :]
    return data, names


def _outcome(read) -> tuple:
    """What ``read()`` gives, as something to compare bit for bit: the arrays' bytes and
    the other fields of a Dataset, or the error's message."""
    try:
        r = read()
    except DatasetError as e:
        return ("error", str(e))
    if isinstance(r, np.ndarray):
        return (r.dtype.str, r.shape, r.tobytes())
    arrays = (r.X_train, r.X_test, r.y_train, r.y_test)
    return (r.task, r.class_names, r.feature_names, r.preprocessing) + tuple(
        None if a is None else (a.dtype.str, a.shape, a.tobytes()) for a in arrays
    )


def _fast_and_row_by_row(monkeypatch, read) -> tuple[tuple, tuple]:
    """``read()``'s outcome with the fast reader, and with the row-by-row loop alone."""
    fast = _outcome(read)
    with monkeypatch.context() as m:
        m.setattr(tabular, "_read_fast", lambda *args: None)
        return fast, _outcome(read)


def _float_over_csv_reader(path) -> np.ndarray:
    """The independent reference: Python's float() of every cell of csv.reader's rows."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)][1:]
    return np.array([[float(c) for c in row] for row in rows], dtype=np.float64)


@pytest.mark.parametrize("seed", range(30))
def test_the_fast_reader_equals_the_row_by_row_reading_of_random_files(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    p = tmp_path / "random.csv"
    for _ in range(4):
        data, names = _random_csv(rng)
        p.write_bytes(data)
        # blocks of a few bytes to a few lines, so that every cut of the file is met
        monkeypatch.setattr(tabular, "_BLOCK_BYTES", rng.choice([1, 9, 64, 1 << 17]))
        monkeypatch.setattr(tabular, "_CHUNK", rng.choice([1, 2048]))
        for name, value in (("CLASSES", "2"), ("CSV_LINE_CHARS", "40")):
            if rng.random() < 0.2:  # few classes: a numeric target's labels stop mattering
                monkeypatch.setenv(f"BACKPROP_MAX_{name}", value)
            else:
                monkeypatch.delenv(f"BACKPROP_MAX_{name}", raising=False)
        features = [n for n in names if n != "y"][::-1]
        for read in (
            partial(load_dataset, p, target="y", seed=seed),
            partial(load_dataset, p, target="y", task="regression"),
            partial(load_dataset, p, target="y", task="classification", features=features),
            partial(read_csv_features, p, raw=True),
        ):
            fast, row_by_row = _fast_and_row_by_row(monkeypatch, read)
            assert fast == row_by_row, data[:300]
        X = _outcome(partial(read_csv_features, p, raw=True))
        try:
            reference = _float_over_csv_reader(p)
        except (ValueError, UnicodeDecodeError, csv.Error):
            continue  # (a file the reference cannot read either)
        if X[0] != "error" and np.isfinite(reference).all():
            assert X[2] == reference.tobytes()


def test_the_fast_reader_rounds_every_number_as_float_does(tmp_path, monkeypatch):
    # one block of numbers that float() reads, none of them left to the row-by-row reading
    rng = random.Random(0)
    cells = [c for c in _ODD_CELLS if c.isascii() and "_" not in c and c.strip() == c]
    cells += [_tie(rng) for _ in range(3000)] + [_number_cell(rng, 0.0) for _ in range(3000)]
    cells = [c for c in cells if math.isfinite(_float_or_nan(c))]
    p = _write(tmp_path, "x\n" + "\n".join(cells) + "\n")
    monkeypatch.setattr(tabular, "_BLOCK_BYTES", 1 << 20)
    monkeypatch.setattr(tabular, "_rows_of_block", _must_not_be_called)
    X = read_csv_features(p, raw=True)
    assert X[:, 0].tobytes() == np.array([float(c) for c in cells]).tobytes()


@pytest.mark.parametrize("cell", _ODD_CELLS)
def test_each_odd_cell_reads_as_the_row_by_row_reading_reads_it(tmp_path, monkeypatch, cell):
    # in the middle of a block of plain numbers, first and last in a row, and in the target
    for text in (
        f"a,b,y\n1,2,p\n{cell},3,q\n4,5,p\n",
        f"a,b,y\n1,2,p\n3,{cell},q\n4,5,p\n",
        f"y,a\n1,2\n{cell},3\n4,5\n" + "".join(f"{k},{k}\n" for k in range(30)),
    ):
        p = _write(tmp_path, text)
        for read in (
            partial(load_dataset, p, target="y", test_fraction=0.0),
            partial(load_dataset, p, target="y", task="regression", test_fraction=0.0),
            partial(read_csv_features, p, raw=True),
        ):
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")  # (NumPy's reader is never left to warn)
                fast, row_by_row = _fast_and_row_by_row(monkeypatch, read)
            assert fast == row_by_row and not said


def _float_or_nan(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return math.nan


def _must_not_be_called(*args, **kwargs):
    raise AssertionError("a block was read row by row")


def test_decimal_to_float_rounds_mantissa_times_power_of_ten_as_float_does():
    # Eisel-Lemire on its own: ties and their neighbours, every exponent it covers; it may
    # leave a few numbers to float(), never get one wrong
    rng = random.Random(1)
    w, q = [], []
    for _ in range(20_000):
        digits, exponent = _tie(rng).split("e")
        mantissa = digits.replace(".", "")[:19]
        w.append(int(mantissa) or 1)
        q.append(int(exponent) - (len(mantissa) - 1))
    w += [rng.randrange(1, 2**63) for _ in range(20_000)]
    q += [rng.randint(tabular._Q_MIN, tabular._Q_MAX) for _ in range(20_000)]
    w_arr, q_arr = np.array(w, dtype=np.uint64), np.array(q, dtype=np.int64)
    keep = (q_arr >= tabular._Q_MIN) & (q_arr <= tabular._Q_MAX)
    w_arr, q_arr = w_arr[keep], q_arr[keep]
    negative = np.arange(len(w_arr)) % 2 == 1
    values, ok = tabular._decimal_to_float(w_arr.copy(), q_arr, negative)
    numbers = zip(np.where(negative, "-", ""), w_arr.tolist(), q_arr.tolist(), strict=True)
    expected = [float(f"{sign}{m}e{e}") for sign, m, e in numbers]
    decided = np.flatnonzero(ok)
    assert values[decided].tobytes() == np.array(expected)[decided].tobytes()
    # what it leaves to float(): subnormals and overflows, and of random numbers about 1 in
    # 1,000 others (of ties, more: they are the numbers closest to a rounding boundary)
    normal = np.array([2.2250738585072014e-308 <= abs(x) < math.inf for x in expected])
    random_ones = np.arange(len(expected)) >= len(expected) - np.count_nonzero(keep[20_000:])
    assert np.count_nonzero(~ok & normal & random_ones) < 0.005 * np.count_nonzero(random_ones)
    assert np.count_nonzero(~ok & normal) < 0.05 * len(expected)


@pytest.mark.parametrize(
    "text",
    [
        # what pandas, NumPy and spreadsheets write: line ends, a byte-order mark, quoted
        # names, a label column, blank and empty last lines, an index column left unread
        "a,b,label\n1.5,-2e-3,p\n0.25,7,q\n",
        '\ufeff"a","b",label\r\n1.5,-2e-3,p\r\n0.25,7,q\r\n\r\n',
        ",a,b,label\n0,1.5,-2e-3,p\n1,0.25,7,q\n\n\n",
        "label,a,b\np,1.5,-2e-3\n\nq,0.25,7",
        "a,b,label\n" + "".join(f"{i / 7!r},{-i * 1e-5!r},{i % 3}\n" for i in range(3000)),
    ],
)
def test_plain_numeric_files_are_read_by_the_fast_reader(tmp_path, monkeypatch, text):
    p = _write(tmp_path, text)
    monkeypatch.setattr(tabular, "_BLOCK_BYTES", 1 << 12)
    prep = Preprocessing(("b", "a"), (0.0, 0.0), (1.0, 1.0))
    for read in (
        lambda: load_dataset(p, target="label", features=["a", "b"], test_fraction=0.0),
        lambda: read_csv_features(p, prep),
    ):
        fast, row_by_row = _fast_and_row_by_row(monkeypatch, read)
        assert fast == row_by_row
        with monkeypatch.context() as m:  # and not one row of it was read row by row
            m.setattr(tabular, "_rows_of_block", _must_not_be_called)
            m.setattr(tabular, "_csv_rows", _only_the_header(tabular._csv_rows))
            assert _outcome(read) == fast


def _only_the_header(csv_rows):
    """_csv_rows that fails when a row after the header is asked for."""

    def rows(p):
        it = csv_rows(p)
        yield next(it)
        raise AssertionError("a data row was read row by row")

    return rows


def test_a_regression_target_with_many_values_is_read_as_numbers(tmp_path, monkeypatch):
    # past MAX_CLASSES distinct numbers and the classes limit, a numeric target's labels no
    # longer matter: its later blocks are read as a feature column is
    monkeypatch.setenv("BACKPROP_MAX_CLASSES", "5")
    monkeypatch.setattr(tabular, "_BLOCK_BYTES", 1 << 9)
    rows = "".join(f"{i},{i * 0.37!r}\n" for i in range(400))
    p = _write(tmp_path, "a,y\n" + rows)
    q = _write(tmp_path, "a,y\n" + rows + "400,NA\n401,0.5\n", "na.csv")
    added = []
    monkeypatch.setattr(tabular._Target, "add_numbers", _spy(tabular._Target.add_numbers, added))
    for path in (p, q):
        for task in (None, "regression", "classification"):
            read = partial(load_dataset, path, target="y", task=task)
            fast, row_by_row = _fast_and_row_by_row(monkeypatch, read)
            assert fast == row_by_row
    assert added and _outcome(lambda: load_dataset(p, target="y"))[0] == "regression"
    # more text labels than are kept, then a block of ten numbers, then more: the later
    # numbers still count (a missing value among numbers of a regression target, not too
    # many classes)
    text = "a,y\n" + "".join(f"{i},t{i}\n" for i in range(30))
    text += "".join(f"{i},{i % 10}\n" for i in range(200)) + rows.replace(".", "")
    r = _write(tmp_path, text, "text_first.csv")
    fast, row_by_row = _fast_and_row_by_row(monkeypatch, lambda: load_dataset(r, target="y"))
    assert fast == row_by_row and "most of the column's cells are numbers" in fast[1]


def _spy(method, calls: list):
    def spied(self, *args):
        calls.append(args)
        return method(self, *args)

    return spied


@pytest.mark.parametrize(
    ("tail", "said"),
    [
        # each past the reader's first blocks: the same message as the row-by-row reading
        ("7,x,q\n8,9,p\n9,y,q\n", r"line 5003, column 'b': the cell 'x' is not a finite "),
        ("7,8\n", r"line 5003 has 2 cells; expected 3"),
        ("7,8,q,9\n", r"line 5003 has 4 cells; expected 3"),
        ('7,"8,q\n8,9,p\n', r"line 5003: a quoted cell opened on this line is never closed"),
        ("7,caf\xe9,q\n", r"invalid continuation byte at byte \d+, line 5003\)$"),
        ("7,1e400,q\n", r"line 5003, column 'b': the cell '1e400' is not a finite number"),
        ("7,8,\n", r"line 5003, target column 'y': the cell is empty"),
        ("7,8,q\r9,x,p\n", r"line 5004, column 'b'"),  # (a lone \r ends a line)
        ("7,8,q\r9,9,p\n" + "1,2,p\n" * 2000 + "3,x,q\n", r"line 7005, column 'b'"),
        ("7,8,q\n\n \n\t\n9,1e999,p\n", r"line 5007, column 'b'"),  # (blank lines are counted)
        ("7,8,q\n\n,\n", r"line 5005: every cell is empty \(a row of missing values"),
        ("7,8,q\n , ,\t\n", r"line 5004: every cell is empty"),  # (not a blank line)
    ],
)
def test_an_error_far_into_a_file_is_the_row_by_row_error(tmp_path, monkeypatch, tail, said):
    head = "a,b,y\n" + "".join(f"{i},{i / 3!r},{'pq'[i % 2]}\n" for i in range(5001))
    p = tmp_path / "late.csv"
    p.write_bytes(head.encode() + tail.encode("latin-1" if "\xe9" in tail else "utf-8"))
    monkeypatch.setattr(tabular, "_BLOCK_BYTES", 1 << 12)
    prep = Preprocessing(("a", "b"), (0.0, 0.0), (1.0, 1.0))
    fast, row_by_row = _fast_and_row_by_row(monkeypatch, lambda: load_dataset(p, target="y"))
    assert fast == row_by_row and fast[0] == "error" and re.search(said, fast[1]), fast
    fast, row_by_row = _fast_and_row_by_row(monkeypatch, lambda: read_csv_features(p, prep))
    assert fast == row_by_row  # (which reads no target: an empty one is no error there)


def test_a_line_over_the_limit_far_into_a_file_is_the_row_by_row_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKPROP_MAX_CSV_LINE_CHARS", "30")
    p = _write(tmp_path, "a,y\n" + "1.5,p\n2.5,q\n" * 2000 + "1." + "5" * 40 + ",p\n")
    monkeypatch.setattr(tabular, "_BLOCK_BYTES", 1 << 10)
    fast, row_by_row = _fast_and_row_by_row(monkeypatch, lambda: load_dataset(p, target="y"))
    assert fast == row_by_row and fast[0] == "error" and "line 4002 has at least" in fast[1]


def test_lines_after_blank_lines_are_numbered_as_in_the_file(tmp_path, monkeypatch):
    # rows' line numbers are kept as runs of consecutive lines; a value too far from the
    # training data is named by its line, past blank lines and blocks
    text = "a,b\n" + "1,2\n\n3,4\n \n" * 300 + "5,1e300\n"
    p = _write(tmp_path, text)
    monkeypatch.setattr(tabular, "_BLOCK_BYTES", 1 << 8)
    prep = Preprocessing(("a", "b"), (0.0, 0.0), (1.0, 1e-300))
    fast, row_by_row = _fast_and_row_by_row(monkeypatch, lambda: read_csv_features(p, prep))
    assert fast == row_by_row and "line 1202, column 'b': 1e+300 is too far" in fast[1]
    # a lone \r ends a line too (as _csv_rows reads it): the fast reader leaves such a file
    text = "a,y\n1,2.5\r2,3.5\n" + "3,4.5\n" * 300 + "4,NA\n"
    q = _write(tmp_path, text, "cr.csv")
    fast, row_by_row = _fast_and_row_by_row(monkeypatch, lambda: load_dataset(q, target="y"))
    assert fast == row_by_row and "line 304, target column 'y': 'NA' is not" in fast[1]
    runs = tabular._LineRuns()
    lines = [2, 3, 4, 7, 8, 12, 13, 14, 15, 40]
    for part in (lines[:2], lines[2:5], lines[5:9], lines[9:], []):
        runs.extend(np.array(part, dtype=np.int64))
    assert len(runs) == len(lines) and [runs[i] for i in range(len(lines))] == lines
    assert len(runs.first_row) == 4  # 2-4, 7-8, 12-15, 40


# ------------------------------------------------------------------ Preprocessing
def test_preprocessing_round_trips_through_json():
    prep = fit_standardizer(np.array([[1.0, 10.0], [3.0, 10.0]]), ["a", "b"], "y", ["no", "yes"])
    assert prep.mean == (2.0, 10.0) and prep.scale == (1.0, 1.0)
    back = Preprocessing.from_dict(json.loads(json.dumps(prep.to_dict())))
    assert back == prep
    np.testing.assert_array_equal(back.transform([[2.0, 11.0]]), [[0.0, 1.0]])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"mean": [0.0]}, "2 feature names but 1 means"),
        ({"scale": [1.0, 0.0]}, "scale values must be > 0"),
        ({"scale": [1.0, "2"]}, "must be finite numbers"),
        ({"mean": [0.0, float("nan")]}, "must be finite numbers"),
        ({"feature_names": ["a", "a"]}, "repeat a name"),
        ({"feature_names": []}, "at least one feature name"),
        ({"classes": ["only"]}, "at least two strings"),
        ({"classes": "ab"}, "must be a list or null"),
        ({"target": 3}, "target must be a string"),
        ({"extra": 1}, "expected exactly"),
    ],
)
def test_preprocessing_from_dict_validates(change, match):
    d = {
        "feature_names": ["a", "b"],
        "mean": [0.0, 0.0],
        "scale": [1.0, 1.0],
        "target": "y",
        "classes": None,
    }
    d.update(change)
    with pytest.raises(ValueError, match=match):
        Preprocessing.from_dict(d)


def test_preprocessing_rejects_wrong_widths_and_indices():
    prep = Preprocessing(("a", "b"), (0.0, 0.0), (1.0, 1.0), None, ("p", "q"))
    with pytest.raises(ValueError, match=r"expected \(n_samples, 2\)"):
        prep.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"class indices must be in 0..1"):
        prep.decode(np.array([0, 2]))
    with pytest.raises(ValueError, match="no class labels"):
        Preprocessing(("a",), (0.0,), (1.0,)).decode(np.array([0]))
