"""The engine's Python API refuses what it cannot use with one clear error, raised before
anything is allocated or trained: a network larger than the machine's memory, a dtype that
is not a name, the wrong object given to ``save_model``, softmax cross-entropy targets
that are not distributions, sparse matrices and pandas frames it cannot read, and sample
weights that are all zero. What it can use (nullable pandas columns without a missing
value, soft labels that sum to 1) it takes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from backprop import MLP, MLPConfig
from backprop.io import save_model
from backprop.training import fit

X4 = np.random.default_rng(0).random((6, 4))
ONE_HOT = np.eye(3)[[0, 1, 2, 0, 1, 2]]


def _one_error(excinfo: pytest.ExceptionInfo) -> None:
    e = excinfo.value
    assert e.__cause__ is None
    assert e.__context__ is None or e.__suppress_context__


def _softmax_net() -> MLP:
    return MLP([4, 8, 3], "tanh", "identity", "cross_entropy", seed=0)


# ---------------------------------------------------------------- 1. the network's size
def test_a_network_larger_than_memory_is_refused_before_allocating():
    """It was numpy's 'Unable to allocate 21.8 TiB' (and, for a size that overcommit lets
    through, a process killed by the OOM killer)."""
    with pytest.raises(MemoryError) as excinfo:
        MLP([3, 10**12, 2])
    _one_error(excinfo)
    text = str(excinfo.value)
    assert "[3, 1000000000000, 2]" in text
    assert "6,000,000,000,002 parameters" in text  # W 3e12 + b 1e12, W 2e12 + b 2
    assert "144000000000048 bytes" in text  # 24 bytes a float64 parameter
    assert "; this machine has " in text and "memory" in text


def test_the_memory_check_uses_the_memory_there_is(monkeypatch):
    """Compared with the machine's memory (here pretended to be 1 MB), not a fixed cap."""
    import backprop._limits as limits

    monkeypatch.setattr(
        limits, "memory_limit", lambda: (1_000_000, "physical memory"), raising=False
    )
    with pytest.raises(MemoryError, match=r"1000000 bytes \(1\.0 MB\) of physical memory"):
        MLP([100, 1000, 10])  # 111,010 parameters, 24 bytes each: 2.7 MB
    MLP([100, 100, 10])  # 11,110 parameters: 267 kB, which fits
    # float32 parameters and gradients take 4 bytes each (the initial draws are float64)
    with pytest.raises(MemoryError, match=r"16 bytes a parameter"):
        MLP([100, 1000, 10], dtype="float32")


def test_the_memory_check_reaches_the_estimators(monkeypatch):
    """The estimators build an MLP: the same check, before anything is trained."""
    pytest.importorskip("sklearn")
    import backprop._limits as limits
    from backprop.sklearn import BackpropClassifier

    monkeypatch.setattr(
        limits, "memory_limit", lambda: (1_000_000, "physical memory"), raising=False
    )
    X, y = np.random.default_rng(0).random((20, 3)), np.arange(20) % 2
    with pytest.raises(MemoryError, match=r"parameters"):
        BackpropClassifier(hidden_layer_sizes=(100_000,), max_iter=1).fit(X, y)


def test_training_state_is_checked_before_training(monkeypatch):
    """A network that builds, but whose optimizer's state (Adam's m and v, and their
    scratch vectors) would not fit beside it, is refused before the first step; SGD,
    which keeps none, still trains."""
    import backprop._limits as limits

    net = MLP([100, 1000, 10], seed=0)  # 111,010 float64 parameters: 2.7 MB to build
    monkeypatch.setattr(
        limits, "memory_limit", lambda: (4_000_000, "physical memory"), raising=False
    )
    X, T = np.random.default_rng(0).random((8, 100)), np.random.default_rng(1).random((8, 10))
    with pytest.raises(MemoryError, match=r"optimizer 'adam'.*6 copies"):
        fit(net, X, T, optimizer="adam", epochs=1)
    fit(net, X, T, optimizer="sgd", epochs=1)  # 2 copies: 1.8 MB


def test_memory_limit_is_the_machines():
    from backprop._limits import memory_limit

    total, source = memory_limit()
    assert 0 < total and source


# ---------------------------------------------------------------- 2. dtype
@pytest.mark.parametrize("dtype", [np.dtype("float32"), np.float32, np.dtype("float64")])
def test_dtype_must_be_a_name(dtype):
    """np.dtype('float32') passed the == 'float32' comparison, trained, and then made
    save_model and config.to_dict() -> json.dumps fail: refused, as the estimators do."""
    with pytest.raises(
        ValueError, match=r"dtype must be 'float32' or 'float64'; got .* \(a name: pass"
    ):
        MLP([2, 3, 2], dtype=dtype)
    with pytest.raises(ValueError, match=r"\(a name: pass 'float32' or 'float64'\)$"):
        MLPConfig(dtype=dtype)


def test_dtype_names_make_json_configs():
    for name in ("float32", "float64", np.str_("float32")):
        config = MLP([2, 3, 2], dtype=name).config
        assert type(config.dtype) is str
        assert json.loads(json.dumps(config.to_dict()))["dtype"] == name


# ---------------------------------------------------------------- 3. save_model's model
def test_save_model_with_its_arguments_swapped(tmp_path):
    net = MLP([2, 3, 2], seed=0)
    with pytest.raises(
        TypeError,
        match=r"expected a backprop\.MLP \(it is a file path: are the arguments swapped\?\)",
    ) as excinfo:
        save_model(net, str(tmp_path / "m.safetensors"))
    _one_error(excinfo)
    assert str(excinfo.value).startswith("save_model's model is '")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (None, r"model is None; expected a backprop\.MLP"),
        ({"layers.0.W": np.zeros((2, 3))}, r"\(type dict\); expected a backprop\.MLP"),
    ],
)
def test_save_model_refuses_what_is_not_a_model(tmp_path, model, match):
    with pytest.raises(TypeError, match=match) as excinfo:
        save_model(tmp_path / "m.safetensors", model)
    _one_error(excinfo)


def test_save_model_points_an_estimator_to_its_own_save(tmp_path):
    pytest.importorskip("sklearn")
    from backprop.sklearn import BackpropClassifier

    est = BackpropClassifier()
    with pytest.raises(TypeError, match=r"BackpropClassifier.*est\.save\(path\).*est\.model_"):
        save_model(tmp_path / "m.safetensors", est)


def test_require_model_takes_a_model_and_its_subclasses():
    from backprop._validation import require_model

    class Mine(MLP):
        pass

    require_model(MLP([2, 3, 2]), "model")
    require_model(Mine([2, 3, 2]), "model")
    with pytest.raises(
        TypeError, match=r"export_onnx's model is 3 \(type int\); expected a backprop\.MLP$"
    ):
        require_model(3, "export_onnx's model")


# ---------------------------------------------------------------- 4. softmax targets
@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([[1.0, 1.0, 0.0]], r"row 0 sums to 2;.*binary_cross_entropy"),  # multi-hot
        ([[0.1, 0.1, 0.0]], r"row 0 sums to 0\.2"),
        ([[0.0, 0.0, 0.0]], r"row 0 sums to 0"),
    ],
)
def test_cross_entropy_targets_must_be_distributions(rows, match):
    T = ONE_HOT.copy()
    T[3] = rows[0]
    net = _softmax_net()
    before = net.state_dict()["layers.0.W"].copy()
    with pytest.raises(ValueError, match=match.replace("row 0", "row 3")) as excinfo:
        net.fit(X4, T, epochs=1)
    _one_error(excinfo)
    assert np.array_equal(net.state_dict()["layers.0.W"], before)
    with pytest.raises(ValueError, match=r"T_val's row 3 sums to"):
        _softmax_net().fit(X4, ONE_HOT, validation_data=(X4, T), epochs=1)
    with pytest.raises(ValueError, match=r"sums to"):
        net.loss(X4, T)


def test_soft_targets_pass_where_a_multi_hot_row_does_not():
    """Label-smoothed and soft rows (also rounded to float32 on their way) sum to 1 within
    rounding and train, in either dtype; multi-hot rows train under binary cross-entropy;
    the same multi-hot rows under softmax cross-entropy are refused."""
    smoothed = 0.9 * ONE_HOT + 0.1 / 3
    soft = np.random.default_rng(0).dirichlet(np.ones(3), size=6).astype(np.float32)
    # probabilities as a CSV keeps them (4 decimals: a row of 0.9999) and as half precision
    # rounds them (a float16 softmax, then float32: rows 1e-3 off) were refused
    rounded = np.array([[0.3333, 0.3333, 0.3333]] * 6)
    half = soft.astype(np.float16).astype(np.float32)
    for T in (smoothed, soft, soft.astype(np.float64), smoothed.astype(np.float32), rounded,
              half):  # fmt: skip
        for dtype in ("float32", "float64"):
            net = MLP([4, 8, 3], "tanh", "identity", "cross_entropy", dtype=dtype, seed=0)
            net.fit(X4, T, epochs=1, validation_data=(X4, T))
    _softmax_net().fit(X4, np.array([0, 1, 2, 0, 1, 2]), epochs=1)  # labels, one-hot inside
    multi_hot = np.array([[1.0, 1.0, 0.0]] * 6)
    MLP([4, 8, 3], "tanh", "identity", "binary_cross_entropy", seed=0).fit(X4, multi_hot)
    with pytest.raises(ValueError, match=r"row 0 sums to 2;"):
        _softmax_net().fit(X4, multi_hot, epochs=1)


def test_a_frame_that_is_not_pandas_is_read_as_numpy_reads_it():
    # a polars DataFrame (its dtypes are not NumPy's) had every column refused by the
    # pandas path: "X's column 'a' has dtype Float64; expected real numbers"
    class Frame:  # a frame of another library: columns, dtypes, and the array protocol
        columns = ["a", "b"]
        dtypes = ["Float64", "Float64"]

        def __array__(self, dtype=None, copy=None):
            return np.array([[0.1, 1.0], [0.2, 2.0], [0.3, 3.0]], dtype=dtype)

    net = MLP([2, 3, 2], seed=0)
    np.testing.assert_array_equal(net.predict(Frame()), net.predict(np.asarray(Frame())))


# ---------------------------------------------------------------- 5. what X can be
def test_sparse_matrices_are_named():
    sparse = pytest.importorskip("scipy.sparse")
    net = MLP([4, 3, 2], seed=0)
    with pytest.raises(TypeError, match=r"X is a sparse matrix .*X\.toarray\(\)") as excinfo:
        net.predict(sparse.csr_matrix(X4))
    _one_error(excinfo)


def test_nullable_pandas_columns_without_missing_values_are_numbers():
    pd = pytest.importorskip("pandas")
    net = MLP([4, 3, 2], seed=0)
    frame = pd.DataFrame(X4, columns=list("abcd"))
    expected = net.predict(X4)
    for dtype in ("Float64", {"a": "Float64", "b": "float64", "c": "Float64", "d": "float64"}):
        assert np.array_equal(net.predict(frame.astype(dtype)), expected)
    whole = pd.DataFrame((X4 * 10).round(), columns=list("abcd"))
    assert np.array_equal(net.predict(whole.astype("Int64")), net.predict(whole.to_numpy()))
    T = pd.DataFrame(np.eye(2)[[0, 1, 0, 1, 0, 1]]).astype("Int64")
    net.fit(frame.astype("Float64"), T, epochs=1)


def test_missing_pandas_values_are_named():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X4, columns=list("abcd")).astype("Float64")
    frame.loc[2, "c"] = pd.NA
    with pytest.raises(ValueError, match=r"X's column 'c' has a missing value \(row 2\)"):
        MLP([4, 3, 2], seed=0).predict(frame)


def test_a_string_column_is_named():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X4, columns=list("abcd"))
    frame["b"] = ["x", "y", "z", "x", "y", "z"]
    with pytest.raises(TypeError, match=r"X's column 'b' has dtype .*expected real numbers"):
        MLP([4, 3, 2], seed=0).predict(frame)


# ---------------------------------------------------------------- 6. sample weights
def test_all_zero_sample_weights_are_refused():
    """Every row weighing 0 is loss 0 and nothing learned; the estimators refused it."""
    net = _softmax_net()
    with pytest.raises(ValueError, match=r"sample_weight is all zeros") as excinfo:
        net.fit(X4, ONE_HOT, sample_weight=np.zeros(6), epochs=1)
    _one_error(excinfo)
    net.fit(X4, ONE_HOT, sample_weight=np.r_[np.zeros(5), 1.0], epochs=1)


def test_bfloat16_and_meta_tensors_are_read_or_named():
    # torch's own words: 'Got unsupported ScalarType BFloat16', 'Cannot copy out of meta tensor'
    torch = pytest.importorskip("torch", reason="torch tensors as inputs")
    net = MLP([4, 8, 3], "tanh", "identity", "cross_entropy", seed=0)
    half = torch.tensor(X4, dtype=torch.bfloat16)
    np.testing.assert_array_equal(net.predict(half), net.predict(half.float().numpy()))
    with pytest.raises(TypeError, match="^X is a tensor on the 'meta' device, which holds no"):
        net.predict(torch.empty(6, 4, device="meta"))
    eight = torch.tensor(X4).to(torch.float8_e4m3fn)  # another float type NumPy lacks
    np.testing.assert_array_equal(net.predict(eight), net.predict(eight.float().numpy()))
    with pytest.raises(TypeError, match=r"^X is a sparse tensor .*X\.to_dense\(\)"):
        net.predict(torch.tensor(X4).to_sparse())


def test_a_pandas_frame_of_a_subclass_takes_the_frame_path():
    # a frame class defined outside pandas (geopandas' GeoDataFrame, a user's) went to
    # np.asarray: its nullable Int64 column read as objects
    pd = pytest.importorskip("pandas")

    class Frame(pd.DataFrame):
        pass

    frame = Frame({"a": pd.array([1, 2, 3], dtype="Int64"), "b": [1.0, 2.0, 3.0]})
    net = MLP([2, 3, 2], seed=0)
    same = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    np.testing.assert_array_equal(net.predict(frame), net.predict(same))


def test_a_dense_backward_after_an_inference_forward_is_refused():
    """``Dense`` is public: an inference-mode forward kept nothing, and a backward after it
    used the previous training batch (wrong gradients, silently, for the same batch size)."""
    model = MLP([4, 5, 3], "tanh", "identity", "l2", seed=0)
    layer = model.dense[0]
    layer.forward(X4, training=True)
    layer.forward(X4[::-1])  # inference mode: another batch of the same size
    with pytest.raises(RuntimeError, match="forward was in inference mode") as excinfo:
        layer.backward(np.ones((6, 5)))
    _one_error(excinfo)
    layer.forward(X4, training=True)  # a training forward makes a backward possible again
    assert layer.backward(np.ones((6, 5))).shape == (6, 4)


def test_a_backward_without_a_training_forward_is_one_clear_error():
    """MLP.backward with no forward, or after an inference one, was "'NoneType' object has
    no attribute 'shape'" (or, after an inference forward, the previous batch's gradients)."""
    model = MLP([4, 5, 3], "tanh", "identity", "l2", seed=0)
    T = model.as_targets(ONE_HOT, 6)
    with pytest.raises(RuntimeError, match=r"needs a forward\(X, training=True\) first"):
        model.backward(T)
    model.forward(X4, training=True)
    model.backward(T)  # a training forward: a backward
    model.forward(X4)
    with pytest.raises(RuntimeError, match=r"needs a forward\(X, training=True\) first"):
        model.backward(T)


def test_sample_weights_times_class_weights_past_the_dtypes_range_are_refused():
    """1e30 x 1e10 is inf in float32: training then said it diverged ('try a smaller
    learning rate'), naming neither weight."""
    model = MLP([4, 5, 3], "tanh", "identity", "cross_entropy", dtype="float32", seed=0)
    with pytest.raises(ValueError, match=r"sample_weight times class_weight exceeds float32") as e:
        fit(model, X4, ONE_HOT, sample_weight=np.full(6, 1e30), class_weight={0: 1e10},
            epochs=1, optimizer="sgd", lr=0.1)  # fmt: skip
    _one_error(e)


def test_assigning_several_parameters_is_all_or_none():
    """params.update({...}) checks every array before writing one: a bad second array (a
    wrong shape, a NaN) left the first written."""
    model = MLP([4, 5, 3], "tanh", "identity", "l2", seed=0)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    for bad in (np.zeros((2, 2)), np.full((5, 3), np.nan)):
        with pytest.raises(ValueError, match="layers.1.W"):
            model.params.update({"layers.0.W": np.ones((4, 5)), "layers.1.W": bad})
        assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())
    model.params.update({"layers.0.W": np.ones((4, 5))})
    assert np.all(model.params["layers.0.W"] == 1.0)
