"""Model files: exact round trips, atomic saves, and one clear error for every hostile file."""

from __future__ import annotations

import json
import os
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from backprop import MLP
from backprop.io import FORMAT_VERSION, ModelFileError, load_model, save_model
from backprop.preprocessing import Preprocessing

RNG = np.random.default_rng(1234)
X = RNG.normal(size=(17, 4))


def _model(**kw) -> MLP:
    args = dict(
        sizes=[4, 6, 5, 3], activation="tanh", output_activation="sigmoid", loss="l2", seed=7
    )
    args.update(kw)
    return MLP(**args)


# ------------------------------------------------------------------------ round trips
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"dtype": "float32"},
        {"activation": "relu", "output_activation": "identity", "loss": "cross_entropy"},
        {"activation": "gelu", "output_activation": "identity", "loss": "binary_cross_entropy"},
        {"activation": "elu", "output_activation": "softmax", "loss": "mse", "bias": False},
        {
            "activation": "leaky_relu",
            "output_activation": "identity",
            "loss": "huber",
            "dropout": 0.3,
        },
        {"activation": "softplus", "output_activation": "tanh", "loss": "mae", "init": "he_normal"},
    ],
)
def test_round_trip_predicts_bit_identically(tmp_path, kw):
    model = _model(**kw)
    # train a little so the weights are not just the seeded initial ones
    T = RNG.uniform(size=(17, 3)).round()
    if model.config.loss == "cross_entropy":  # one class a row: its rows sum to 1
        T = np.eye(3)[T.argmax(axis=1)]
    model.fit(X, T, epochs=2, batch_size=5, seed=0)
    path = tmp_path / "m.safetensors"
    save_model(path, model)
    loaded = load_model(path)
    assert loaded.config == model.config
    for name, value in model.state_dict().items():
        got = loaded.state_dict()[name]
        assert got.dtype == value.dtype and np.array_equal(got, value), name
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.preprocessing is None


def test_preprocessing_round_trip(tmp_path):
    model = _model(output_activation="identity", loss="cross_entropy")
    model.preprocessing = Preprocessing(
        feature_names=("a", "b", "c", "d"),
        mean=(0.5, -1.0, 2.0, 0.0),
        scale=(1.5, 2.0, 0.25, 1.0),
        target="species",
        classes=("setosa", "versicolor", "virginica"),
    )
    save_model(tmp_path / "m.safetensors", model)
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.preprocessing == model.preprocessing
    # a preprocessing that does not fit the model is refused before anything is written
    # (the file was written, then load_model refused it)
    model.preprocessing = Preprocessing(("a", "b", "c", "d"), (0.0,) * 4, (1.0,) * 4, "y",
                                        ("p", "q"))  # fmt: skip
    with pytest.raises(ValueError, match="cannot save the model: the preprocessing names 2 "):
        save_model(tmp_path / "bad.safetensors", model)
    assert not (tmp_path / "bad.safetensors").exists()


def test_file_is_plain_safetensors_with_documented_names(tmp_path):
    from safetensors import safe_open

    model = _model()
    save_model(tmp_path / "m.safetensors", model)
    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as f:
        meta = f.metadata()
        assert sorted(f.keys()) == sorted(model.parameter_names())
        assert np.array_equal(f.get_tensor("layers.0.W"), model.state_dict()["layers.0.W"])
    assert meta["format"] == "backprop.model"
    assert meta["format_version"] == str(FORMAT_VERSION)
    assert json.loads(meta["config"]) == model.config.to_dict()
    assert json.loads(meta["preprocessing"]) is None


def test_files_cross_backends(tmp_path):
    pytest.importorskip("torch", reason="the torch backend needs PyTorch")
    pytest.importorskip("array_api_compat", reason="the torch backend needs array-api-compat")
    model = _model(backend="torch")
    save_model(tmp_path / "t.safetensors", model)
    on_numpy = load_model(tmp_path / "t.safetensors")
    assert isinstance(on_numpy.params["layers.0.W"], np.ndarray)
    for name, value in model.state_dict().items():
        assert np.array_equal(on_numpy.state_dict()[name], value)
    save_model(tmp_path / "n.safetensors", on_numpy)
    on_torch = load_model(tmp_path / "n.safetensors", backend="torch", device="cpu")
    assert on_torch.backend.name == "torch"
    # the parameters crossed bit for bit (above); the predictions agree to rounding: NumPy and
    # PyTorch round tanh and exp differently in the last bit (a fifth of all values)
    np.testing.assert_allclose(
        on_torch.backend.to_numpy(on_torch.predict(X)), on_numpy.predict(X), rtol=4e-16, atol=0
    )


def test_save_is_atomic_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    first = _model(seed=1)
    save_model(path, first)
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="simulated"):
        save_model(path, _model(seed=2))
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temp left
    monkeypatch.undo()
    assert np.array_equal(load_model(path).predict(X), first.predict(X))


# ---------------------------------------------------------------------- hostile files
def _split(raw: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _join(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.fixture
def valid(tmp_path) -> bytes:
    save_model(tmp_path / "valid.safetensors", _model())
    return (tmp_path / "valid.safetensors").read_bytes()


def _join_text(header: dict, data: bytes, edit) -> bytes:
    """Like :func:`_join`, with ``edit`` applied to the header's JSON text."""
    text = edit(json.dumps(header).encode())
    return struct.pack("<Q", len(text)) + text + data


def _edit_header(raw: bytes, fn) -> bytes:
    header, data = _split(raw)
    fn(header)
    return _join(header, data)


def _edit_config(raw: bytes, **changes) -> bytes:
    def fn(h):
        config = json.loads(h["__metadata__"]["config"])
        config.update(changes)
        h["__metadata__"]["config"] = json.dumps(config)

    return _edit_header(raw, fn)


def _set(path_in_header: tuple, value):
    def fn(h):
        d = h
        for key in path_in_header[:-1]:
            d = d[key]
        d[path_in_header[-1]] = value

    return fn


def _resave(raw: bytes, drop: str | None = None, add: str | None = None) -> bytes:
    """A well-formed safetensors file with the same metadata and one tensor more or fewer."""
    from safetensors.numpy import load, save

    header, _ = _split(raw)
    tensors = load(raw)
    if drop:
        del tensors[drop]
    if add:
        tensors[add] = np.zeros((2, 2))
    return save(tensors, metadata=header["__metadata__"])


def _nan_weights(raw: bytes) -> bytes:
    header, data = _split(raw)
    begin = header["layers.0.W"]["data_offsets"][0]
    data = data[:begin] + struct.pack("<d", float("nan")) + data[begin + 8 :]
    return _join(header, data)


HOSTILE = {
    "empty": (lambda raw: b"", "too short"),
    "five bytes": (lambda raw: raw[:5], "too short"),
    "wrong magic (a PNG)": (lambda raw: b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not a model file"),
    "a text file": (lambda raw: b"sizes = 2,3,2\nweights = ...\n" * 3, "not a model file"),
    "a pickle": (
        lambda raw: b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00]\x94.",
        "not a model file",
    ),
    "truncated in the data": (lambda raw: raw[:-13], "covers|claims bytes"),
    "truncated in the header": (lambda raw: raw[:40], "not a model file"),
    "trailing bytes": (lambda raw: raw + b"\0" * 8, "trailing bytes"),
    "header not JSON": (lambda raw: struct.pack("<Q", 6) + b"{nope}", "not valid JSON"),
    "header a JSON list": (lambda raw: _join([], b""), "not a JSON object"),  # type: ignore[arg-type]
    "duplicate keys": (
        lambda raw: (lambda t: struct.pack("<Q", len(t)) + t)(b'{"a": 1, "a": 2}'),
        "duplicate key",
    ),
    "deeply nested JSON": (
        lambda raw: (lambda t: struct.pack("<Q", len(t)) + t)(b"[" * 100_000 + b"]" * 100_000),
        "holds more JSON arrays than 10000 tensors need",  # refused before it is parsed
    ),
    "deeply nested JSON within the arrays' limit": (
        lambda raw: (lambda t: struct.pack("<Q", len(t)) + t)(b'{"a":' * 9000 + b"1" + b"}" * 9000),
        "nested too deeply|not valid JSON|more than 10000 tensors",
    ),
    # 0.4-0.9 GB before the first check failed: arrays and numbers are not objects
    "a header of a million numbers": (
        lambda raw: _edit_header(raw, lambda h: h.__setitem__("pad", [1.5] * 1_000_000)),
        "holds more JSON numbers than 10000 tensors need",
    ),
    "a header of a million empty arrays": (
        lambda raw: _edit_header(raw, lambda h: h.__setitem__("pad", [[]] * 1_000_000)),
        "holds more JSON arrays than 10000 tensors need",
    ),
    # the records inside the metadata too: a 9 MB config of [{},{},...] took 755 MiB
    "a config of a million objects": (
        lambda raw: _edit_header(
            raw, _set(("__metadata__", "config"), "[" + "{}," * 10**6 + "{}]")
        ),
        "the model config holds more than 1000 layer sizes; the limit is 1000 layer sizes",
    ),
    "a preprocessing record of a million numbers": (
        lambda raw: _edit_header(
            raw, _set(("__metadata__", "preprocessing"), "[" + "1," * 10**6 + "1]")
        ),
        "the preprocessing record holds more JSON numbers than 1000 layer sizes need",
    ),
    # a 4000-digit dimension made a byte count Python would not print ('Exceeds the limit
    # (4300 digits) for integer string conversion'), or an error line of 4000 characters
    "a shape of 4000-digit dimensions": (
        lambda raw: _edit_header(raw, _set(("layers.0.W", "shape"), [10**3999, 10**3999])),
        r"has shape \[1000.*; expected non-negative 64-bit integers$",
    ),
    "an offset of 4000 digits": (
        lambda raw: _edit_header(raw, _set(("layers.0.W", "data_offsets"), [0, 10**3999])),
        r"has data_offsets \[0, 1000.*; expected \[begin, end\], non-negative 64-bit integers$",
    ),
    "an integer of 5000 digits": (
        lambda raw: _join_text(
            *_split(raw), lambda t: t.replace(b"{", b'{"pad": 1' + b"0" * 4999 + b", ", 1)
        ),
        r"not valid JSON \(an integer of 5000 digits\)",
    ),
    "no metadata": (
        lambda raw: _edit_header(raw, lambda h: h.pop("__metadata__")),
        "no __metadata__",
    ),
    "not a backprop file": (
        lambda raw: _edit_header(raw, _set(("__metadata__", "format"), "pytorch")),
        "not a backprop",
    ),
    "unknown format version": (
        lambda raw: _edit_header(raw, _set(("__metadata__", "format_version"), "99")),
        "format version 99 is not supported",
    ),
    "format version not a number": (
        lambda raw: _edit_header(raw, _set(("__metadata__", "format_version"), "1.0")),
        r"format_version '1.0' is not a version number \(1, 2, ...\)",
    ),
    # '02' was read as version 2; a version of 20 digits 'is not an integer'; a missing one
    # was "format_version '' is not an integer"
    "format version with a leading zero": (
        lambda raw: _edit_header(raw, _set(("__metadata__", "format_version"), "02")),
        r"format_version '02' is not a version number",
    ),
    "a far future format version": (
        lambda raw: _edit_header(raw, _set(("__metadata__", "format_version"), "9" * 20)),
        r"format version 9{20} is not supported; .* \(upgrade backprop\)",
    ),
    "no format version": (
        lambda raw: _edit_header(raw, lambda h: h["__metadata__"].pop("format_version")),
        r"the metadata has no format_version$",
    ),
    "no format": (
        lambda raw: _edit_header(raw, lambda h: h["__metadata__"].pop("format")),
        r"not a backprop model file or checkpoint \(its metadata has no format; expected format "
        r"backprop.model or backprop.checkpoint\)$",
    ),
    "unknown activation": (lambda raw: _edit_config(raw, activation="swish"), "activation 'swish'"),
    "unknown output activation": (
        lambda raw: _edit_config(raw, output_activation="__import__('os')"),
        "output_activation",
    ),
    "unknown loss": (lambda raw: _edit_config(raw, loss="hinge"), "loss 'hinge'"),
    "unknown config key": (lambda raw: _edit_config(raw, batchnorm=True), "unknown keys"),
    "sizes not a list": (lambda raw: _edit_config(raw, sizes="4,6,5,3"), "sizes"),
    "a size of 4000 digits": (
        lambda raw: _edit_config(raw, sizes=[4, 10**3999, 3]),
        "config sizes is .*; expected a list of at least two positive 64-bit integers$",
    ),
    "bias as a string": (lambda raw: _edit_config(raw, bias="yes"), "bias"),
    "config dtype wrong": (lambda raw: _edit_config(raw, dtype="float16"), "dtype"),
    "init_scale a 400-digit integer": (
        lambda raw: _edit_config(raw, init_scale=10**400),
        "init_scale is 1000000.*; expected a number",
    ),
    "config disagrees with tensors (sizes)": (
        lambda raw: _edit_config(raw, sizes=[4, 7, 5, 3]),
        "config implies",
    ),
    "config disagrees with tensors (dtype)": (
        lambda raw: _edit_config(raw, dtype="float32"),
        "config implies",
    ),
    "config disagrees with tensors (no bias)": (
        lambda raw: _edit_config(raw, bias=False),
        "unexpected",
    ),
    "header lies about a shape": (
        lambda raw: _edit_header(raw, _set(("layers.0.W", "shape"), [4, 5])),
        "data_offsets span",
    ),
    "header shape negative": (
        lambda raw: _edit_header(raw, _set(("layers.0.W", "shape"), [-4, -6])),
        "non-negative",
    ),
    "header lies about offsets (overlap)": (
        lambda raw: _edit_header(
            raw,
            lambda h: h["layers.0.b"].update(
                data_offsets=[
                    h["layers.0.W"]["data_offsets"][0],
                    h["layers.0.W"]["data_offsets"][0] + 48,
                ]
            ),
        ),
        "overlaps|gap",
    ),
    "header offsets past the end": (
        lambda raw: _edit_header(raw, _set(("layers.2.b", "data_offsets"), [10**12, 10**12 + 24])),
        "claims bytes",
    ),
    "header dtype unsupported": (
        lambda raw: _edit_header(raw, _set(("layers.0.W", "dtype"), "I64")),
        "dtype 'I64'",
    ),
    "tensor removed from the header only": (
        lambda raw: _edit_header(raw, lambda h: h.pop("layers.2.b")),
        "gap|cover",
    ),
    "missing tensor": (lambda raw: _resave(raw, drop="layers.1.b"), "missing \\['layers.1.b'\\]"),
    "extra tensor": (lambda raw: _resave(raw, add="layers.9.W"), "unexpected \\['layers.9.W'\\]"),
    "NaN weights": (_nan_weights, "NaN or inf"),
    "preprocessing malformed": (
        lambda raw: _edit_header(raw, _set(("__metadata__", "preprocessing"), '{"mean": [1]}')),
        "invalid preprocessing",
    ),
    "preprocessing for another model": (
        lambda raw: _edit_header(
            raw,
            _set(
                ("__metadata__", "preprocessing"),
                json.dumps(
                    {
                        "feature_names": ["a"],
                        "mean": [0.0],
                        "scale": [1.0],
                        "target": None,
                        "classes": None,
                    }
                ),
            ),
        ),
        "1 features but the model has 4 inputs",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_gives_one_clear_error(tmp_path, valid, case):
    mutate, message = HOSTILE[case]
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(mutate(valid))
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text and len(text) < 400


def test_absurd_declared_sizes_never_allocate(tmp_path):
    """A header declaring a 10^5 x 10^5 float64 layer (80 GB) in a 1 kB file is refused
    before anything near that size is allocated."""
    n = 100_000
    config = {
        "sizes": [n, n],
        "activation": "sigmoid",
        "output_activation": "sigmoid",
        "loss": "l2",
        "bias": False,
        "init": "normal",
        "init_scale": 0.1,
        "dropout": 0.0,
        "dtype": "float64",
    }
    header = {
        "__metadata__": {
            "format": "backprop.model",
            "format_version": "1",
            "config": json.dumps(config),
            "preprocessing": "null",
        },
        "layers.0.W": {"dtype": "F64", "shape": [n, n], "data_offsets": [0, 8 * n * n]},
    }
    path = tmp_path / "absurd.safetensors"
    path.write_bytes(_join(header, b"\0" * 64))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="claims bytes"):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFileError, match="nope.safetensors does not exist"):
        load_model(tmp_path / "nope.safetensors")
    with pytest.raises(ModelFileError, match="is a folder, not a regular file"):
        load_model(tmp_path)


def test_paths_of_every_kind(tmp_path, valid, same_params):
    from backprop.checkpoint import Checkpoint

    path = tmp_path / "m.safetensors"
    path.write_bytes(valid)
    model = load_model(path)
    # bytes: 'does not exist' for a file that exists (its repr was reopened)
    assert same_params(load_model(os.fsencode(path)), model)
    save_model(os.fsencode(tmp_path / "b.safetensors"), model)
    assert same_params(load_model(tmp_path / "b.safetensors"), model)
    with pytest.raises(TypeError, match=r"path must be a file path \(str or path-like\); got None"):
        load_model(None)  # was stat's own message
    with pytest.raises(ValueError, match=r"path is empty; expected a file path"):
        save_model("", model)  # was 'cannot write .: Device or resource busy'
    with pytest.raises(ValueError, match=r"run_dir .*m.safetensors is a file; expected a folder"):
        Checkpoint(path)  # a bare FileExistsError


def test_loading_runs_no_code_from_the_file(tmp_path, valid):
    """Names in the file are looked up in tables, never imported or evaluated."""
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(_edit_config(valid, activation=payload))
    with pytest.raises(ModelFileError, match="unknown"):
        load_model(path)
    path.write_bytes(_edit_config(valid, init=payload))
    with pytest.raises(ModelFileError, match="unknown"):
        load_model(path)
    assert not marker.exists()


def test_valid_fixture_loads(valid, tmp_path):
    """The unmodified bytes the hostile cases start from do load (so each case tests its edit)."""
    path = tmp_path / "ok.safetensors"
    path.write_bytes(_join(*_split(valid)))
    assert load_model(path).config == _model().config


def test_error_is_a_value_error(tmp_path):
    (tmp_path / "x").write_bytes(b"junk")
    with pytest.raises(ValueError):
        load_model(Path(tmp_path / "x"))


def test_a_ctrl_c_just_after_the_temporary_is_made_leaves_nothing(tmp_path, monkeypatch):
    """A KeyboardInterrupt between the temporary file's creation and its name reaching the
    writer (inside mkstemp, after its open) lost the name, and the file stayed: the CLI's
    Ctrl-C test found '.checkpoint.safetensors.XXXX.tmp' beside the run once in CI."""
    from backprop.io import safetensors

    real = safetensors._open_new

    def then_ctrl_c(path: str) -> int:
        os.close(real(path))
        raise KeyboardInterrupt

    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    monkeypatch.setattr(safetensors, "_open_new", then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        safetensors.write_atomic(target, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    assert target.read_bytes() == b"old"


def test_a_ctrl_c_before_the_temporary_has_its_file_object_closes_it(tmp_path, monkeypatch):
    """Between the temporary's creation and its file object a Ctrl-C leaked the descriptor
    (and on Windows, where an open file cannot be deleted, the temporary with it)."""
    from backprop.io import safetensors

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    before = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    monkeypatch.setattr(safetensors.os, "fdopen", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        safetensors.write_atomic(tmp_path / "m.safetensors", b"new")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    if before is not None:
        assert set(os.listdir("/proc/self/fd")) <= before


def test_a_preprocessing_that_is_not_one_is_named_on_saving(tmp_path):
    # a dict set by hand failed deep inside: AttributeError: 'dict' object has no attribute
    # 'n_features'
    model = MLP([2, 3, 2], seed=0)
    model.preprocessing = {"mean": 1}
    with pytest.raises(TypeError, match=r"^cannot save the model: model\.preprocessing must be a "
                       r"backprop\.preprocessing\.Preprocessing or None; got dict$"):  # fmt: skip
        save_model(tmp_path / "m.safetensors", model)
    assert not (tmp_path / "m.safetensors").exists()


def test_a_text_file_given_for_a_model_says_it_is_text(tmp_path):
    """evaluate data.csv (the data for the model) said its 'first 8 bytes declare a
    3184377195395165281-byte header but 12 bytes follow'; binary junk still gets that."""
    text = tmp_path / "data.csv"
    text.write_text("a,b,y\n1,2,3\n")
    with pytest.raises(
        ModelFileError, match=r"not a model file: it starts with text \('a,b,y\\n1,'\)"
    ):
        load_model(text)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\xff" * 8 + b"\x00" * 4)
    with pytest.raises(ModelFileError, match=r"first 8 bytes declare a \d+-byte header but 4"):
        load_model(junk)
