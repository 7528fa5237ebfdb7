"""Loaders by name: generated sets, MNIST lookup and download, MNIST-1D, scikit-learn's sets."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import re
import sys
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

import backprop.datasets.mnist as mnist_mod
from backprop import MLP
from backprop.datasets import DATASETS, Dataset, DatasetError, load_dataset, write_idx
from backprop.datasets.mnist import MNIST_FILES, MnistFile, find_mnist_files, search_dirs
from backprop.training import fit

GENERATED = ("toy", "xor", "moons", "circles", "spirals", "blobs")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """No test reads or writes the real per-user cache or BACKPROP_DATA unless it asks."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("BACKPROP_DATA", raising=False)


def test_names_are_the_documented_ones():
    assert DATASETS == (
        "toy", "xor", "moons", "circles", "spirals", "blobs",
        "mnist", "mnist1d", "digits", "iris", "wine", "breast_cancer",
    )  # fmt: skip


# ------------------------------------------------------------------ generated sets
@pytest.mark.parametrize("name", GENERATED)
def test_generated_set_layout(name):
    ds = load_dataset(name, seed=3)
    n_classes = 3 if name == "blobs" else 2
    assert ds.task == "classification" and ds.n_classes == n_classes
    assert ds.X_train.dtype == np.float64 and ds.X_train.shape[1] == 2 == ds.n_features
    assert ds.y_train.dtype == np.int64 and ds.y_train.shape == (ds.X_train.shape[0],)
    assert set(np.unique(ds.y_train)) == set(range(n_classes))
    assert ds.X_test is not None and ds.y_test is not None
    n = ds.n_train + ds.n_test
    assert abs(ds.n_test - 0.25 * n) <= n_classes  # stratified rounding, per class
    # Stratified: the class proportions of the two splits agree to within one row per class.
    for c in range(n_classes):
        assert abs(np.mean(ds.y_test == c) * ds.n_test - ds.n_test / n_classes) <= 1
    T = ds.targets()
    assert T.shape == (ds.n_train, n_classes) and T.dtype == np.float64
    np.testing.assert_array_equal(T.argmax(axis=1), ds.y_train)
    np.testing.assert_array_equal(T.sum(axis=1), 1.0)
    assert ds.targets("test").shape == (ds.n_test, n_classes)


@pytest.mark.parametrize("name", GENERATED)
def test_same_seed_same_bits_other_seed_other_data(name):
    a, b, c = load_dataset(name, seed=5), load_dataset(name, seed=5), load_dataset(name, seed=6)
    assert a.sha256() == b.sha256()
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert a.sha256() != c.sha256()


def test_split_does_not_change_the_points():
    whole = load_dataset("moons", seed=1, test_fraction=0.0)
    split = load_dataset("moons", seed=1, test_fraction=0.5)
    assert whole.X_test is None and whole.y_test is None and whole.n_train == 500
    assert np.array_equal(
        np.sort(whole.X_train, axis=0), np.sort(np.vstack([split.X_train, split.X_test]), axis=0)
    )
    with pytest.raises(DatasetError, match="no test split"):
        whole.targets("test")


def test_n_samples_and_noise():
    ds = load_dataset("circles", n_samples=101, noise=0.0, test_fraction=0.0)
    assert ds.n_train == 101
    radius = np.hypot(ds.X_train[:, 0], ds.X_train[:, 1])
    np.testing.assert_allclose(radius, np.where(ds.y_train == 0, 1.0, 0.5))


@pytest.mark.parametrize(
    "kwargs, match",
    [  # OverflowError, TypeError and os.fspath's TypeError before
        ({"name": "moons", "noise": 10**400}, r"noise must be a finite number >= 0; got 10{59}"),
        ({"name": "moons", "test_fraction": "0.2"}, r"test_fraction must be in \[0, 1\); got '0"),
        ({"name": None}, r"name must be a data set's name or a CSV path; got None"),
    ],
)
def test_bad_arguments_are_one_dataset_error(kwargs, match):
    with pytest.raises(DatasetError, match=match):
        load_dataset(**kwargs)


def test_xor_labels_are_the_sign_rule():
    ds = load_dataset("xor", noise=0.0, test_fraction=0.0)
    expected = (ds.X_train[:, 0] * ds.X_train[:, 1] < 0).astype(np.int64)
    np.testing.assert_array_equal(ds.y_train, expected)


def test_toy_is_learned_by_the_seeds_network():
    ds = load_dataset("toy", seed=0)
    assert ds.X_train.min() >= 0.0 and ds.X_train.max() <= 1.0
    net = MLP([2, 3, 2], seed=0)  # the seed's network: sigmoid hidden and output, L2 loss
    fit(net, ds.X_train, ds.targets(), optimizer="sgd", lr=2.0, epochs=60, batch_size=10, seed=0)
    acc = np.mean(net.predict_classes(ds.X_test) == ds.y_test)
    assert acc >= 0.95


def test_sha256_covers_x_and_y():
    ds = load_dataset("toy")
    h = hashlib.sha256(ds.X_train.tobytes() + ds.y_train.tobytes()).hexdigest()
    assert ds.sha256() == h


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"name": "mnist2"},
            r"unknown data set 'mnist2' \(did you mean 'mnist'\?\); expected "
            r"one of toy, xor",
        ),
        ({"name": "toy", "test_fraction": 1.0}, r"test_fraction must be in \[0, 1\)"),
        ({"name": "toy", "test_fraction": -0.1}, r"test_fraction must be in \[0, 1\)"),
        ({"name": "toy", "n_samples": 0}, "n_samples must be a positive integer"),
        ({"name": "toy", "n_samples": 3}, "toy needs n_samples >= 4"),
        ({"name": "toy", "noise": -1.0}, "noise must be a finite number >= 0"),
        ({"name": "iris", "noise": 0.1}, "noise applies to the generated sets"),
        ({"name": "iris", "target": "x"}, "target applies to CSV files"),
        ({"name": "iris", "n_samples": 10}, "n_samples does not apply"),
        ({"name": "toy", "seed": 1.5}, "seed must be a non-negative integer"),
        ({"name": "toy", "seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_bad_arguments_are_one_clear_error(kwargs, match):
    with pytest.raises(DatasetError, match=match):
        load_dataset(**kwargs)


# ------------------------------------------------------------------ MNIST
def _fake_mnist(folder: Path, n_train: int = 6, n_test: int = 4, gz: bool = True) -> dict:
    """Small files in MNIST's format; returns the arrays written."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, arr in arrays.items():
        write_idx(folder / (MNIST_FILES[key].name + (".gz" if gz else "")), arr)
    return arrays


def test_mnist_from_data_dir_layout_and_scaling(tmp_path):
    arrays = _fake_mnist(tmp_path / "data" / "mnist")
    ds = load_dataset("mnist", data_dir=tmp_path / "data", download=False)
    assert ds.image_shape == (28, 28) and ds.n_classes == 10 and ds.n_features == 784
    assert ds.X_train.dtype == np.float32 and ds.X_train.shape == (6, 784)
    assert ds.X_test.shape == (4, 784) and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(
        ds.X_train, arrays["train_images"].reshape(6, -1) / np.float32(255)
    )
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    assert load_dataset("mnist", data_dir=tmp_path / "data", n_samples=2).n_train == 2


def test_mnist_raw_files_directly_in_the_folder(tmp_path):
    _fake_mnist(tmp_path, gz=False)
    assert load_dataset("mnist", data_dir=tmp_path, download=False).n_train == 6


def test_mnist_lookup_order(tmp_path, monkeypatch):
    arg, env = tmp_path / "arg", tmp_path / "env"
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "backprop"
    _fake_mnist(arg / "mnist", n_train=1)
    _fake_mnist(env / "mnist", n_train=2)
    _fake_mnist(cache / "mnist", n_train=3)
    monkeypatch.setenv("BACKPROP_DATA", str(env))
    assert search_dirs(arg)[:4] == [arg / "mnist", arg, env / "mnist", env]
    assert load_dataset("mnist", data_dir=arg).n_train == 1
    assert load_dataset("mnist").n_train == 2
    monkeypatch.delenv("BACKPROP_DATA")
    assert load_dataset("mnist").n_train == 3
    (tmp_path / "empty").mkdir()
    assert load_dataset("mnist", data_dir=tmp_path / "empty").n_train == 3
    # a --data-dir that is not there (a typo) was searched past, silently: the cache's
    # MNIST trained where another set in MNIST's format (Fashion-MNIST) was meant
    with pytest.raises(DatasetError, match=r"data_dir .*typo: no such folder$"):
        load_dataset("mnist", data_dir=tmp_path / "typo")
    (tmp_path / "afile").write_text("")
    with pytest.raises(DatasetError, match=r"data_dir .*afile is not a folder$"):
        load_dataset("mnist", data_dir=tmp_path / "afile")


def test_mnist_files_all_come_from_one_folder(tmp_path, fake_mirror):
    """Each file was taken from the first folder that had it: a folder holding only the
    training images (another data set in MNIST's format, one file short) trained on them
    with the cache's labels and test set, without a word."""
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "backprop"
    _fake_mnist(cache / "mnist", n_train=3)
    partial = tmp_path / "partial"
    _fake_mnist(partial, n_train=5)
    for key in ("train_labels", "test_images", "test_labels"):
        (partial / (MNIST_FILES[key].name + ".gz")).unlink()
    with pytest.raises(DatasetError, match=(
        rf"^{re.escape(str(partial))} holds 1 of MNIST's 4 files but not "
        r"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"
    )):  # fmt: skip
        load_dataset("mnist", data_dir=partial)
    # a broken link at a file's name is that folder's file, refused by name when read
    _fake_mnist(partial, n_train=5)
    images = partial / (MNIST_FILES["train_images"].name + ".gz")
    images.unlink()
    images.symlink_to(tmp_path / "gone.gz")
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", data_dir=partial)
    # the cache's own folder, however it is named, is completed by a download (there, not
    # from another folder): it was refused as a partial folder when named relatively
    calls, contents = fake_mirror
    for p in (cache / "mnist").iterdir():
        p.unlink()
    name = MNIST_FILES["train_images"].name + ".gz"  # the one file the cache holds
    (cache / "mnist" / name).write_bytes(gzip.compress(contents[name]))
    with pytest.MonkeyPatch.context() as m:
        m.chdir(cache.parent)
        m.setenv("BACKPROP_DATA", "backprop")  # the cache, relatively
        assert load_dataset("mnist").n_train == 5
    assert len(calls) == 3 and not any(name in url for url in calls)
    # another data set's training images put there by hand: not completed with MNIST's
    for p in (cache / "mnist").iterdir():
        p.unlink()
    _fake_mnist(tmp_path / "other", n_train=5)
    (tmp_path / "other" / name).rename(cache / "mnist" / name)
    with pytest.raises(DatasetError, match="is not MNIST's train-images-idx3-ubyte .*SHA-256"):
        load_dataset("mnist")
    assert len(calls) == 3  # nothing downloaded to go with it


def test_a_backprop_data_that_names_no_folder_is_refused_whatever_the_cache_holds(
    tmp_path, monkeypatch
):
    # it was searched past to the cache's MNIST, silently, when the cache held all four
    _fake_mnist(Path(os.environ["XDG_CACHE_HOME"]) / "backprop" / "mnist", n_train=3)
    monkeypatch.setenv("BACKPROP_DATA", str(tmp_path / "typo"))
    with pytest.raises(DatasetError, match=r"^BACKPROP_DATA=.*typo' names no folder"):
        load_dataset("mnist")
    _fake_mnist(tmp_path / "given", n_train=4)  # a data_dir that holds them: not consulted
    assert load_dataset("mnist", data_dir=tmp_path / "given").n_train == 4


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_an_mnist_file_that_is_not_a_regular_file_is_named(tmp_path):
    """A FIFO (or folder) with an MNIST file's name was searched past: the error said the
    file was not on this machine, or another folder's file was read."""
    _fake_mnist(tmp_path / "mnist")
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.unlink()
    os.mkfifo(labels)
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte.gz is a FIFO \(named pipe\)"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_mnist_labels_that_disagree_with_images(tmp_path):
    _fake_mnist(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DatasetError, match="3 labels for the 4 images"):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_files_of_no_images(tmp_path):
    """Valid IDX headers declaring 0 images gave NumPy's 'cannot reshape array of size 0'."""
    _fake_mnist(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8))
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    with pytest.raises(
        DatasetError,
        match=r"t10k-images-idx3-ubyte.gz: the file holds no images; expected MNIST's$",
    ):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_images_swapped_with_labels_fail_on_magic(tmp_path):
    _fake_mnist(tmp_path / "mnist")
    folder = tmp_path / "mnist"
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        (folder / "t10k-images-idx3-ubyte.gz").read_bytes()
    )
    with pytest.raises(
        DatasetError,
        match="t10k-labels-idx1-ubyte.gz: magic number 0x00000803; expected 0x00000801",
    ):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_missing_without_download(tmp_path):
    with pytest.raises(DatasetError, match="MNIST files not found") as info:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert "\n" not in str(info.value)
    assert str(Path(os.environ["XDG_CACHE_HOME"]) / "backprop" / "mnist") in str(info.value)


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_a_backprop_data_that_names_no_folder_is_said(tmp_path, monkeypatch, kind):
    """BACKPROP_DATA naming nothing, or a file, was searched past without a word: the error
    then said 'set BACKPROP_DATA to a folder holding mnist/' to someone who had set it."""
    target = tmp_path / "data"
    if kind == "a file":
        target.write_text("not a folder\n")
    monkeypatch.setenv("BACKPROP_DATA", str(target))
    what = "names no folder" if kind == "missing" else "is not a folder"
    message = f"BACKPROP_DATA='{target}' {what}; expected the folder"
    with pytest.raises(DatasetError, match="^" + re.escape(message)):
        load_dataset("mnist", download=False)
    # where the files are found elsewhere, a stale BACKPROP_DATA is no matter
    folder = tmp_path / "elsewhere"
    (folder / "mnist").mkdir(parents=True)
    for key, f in MNIST_FILES.items():
        n = 3 if "test" in key else 5
        shape = (n, 28, 28) if key.endswith("images") else (n,)
        write_idx(folder / "mnist" / f"{f.name}.gz", np.zeros(shape, np.uint8))
    assert load_dataset("mnist", data_dir=folder, download=False).n_train == 5


@pytest.mark.parametrize("value", ["{folder} ", " "])
def test_a_backprop_data_with_whitespace_is_quoted(tmp_path, monkeypatch, value):
    """'BACKPROP_DATA=/data names no folder' was said of '/data ', a folder that exists
    (and 'BACKPROP_DATA= names no folder' of ' '): the space was not to be seen."""
    _fake_mnist(tmp_path / "data" / "mnist")
    env = value.format(folder=tmp_path / "data")
    monkeypatch.setenv("BACKPROP_DATA", env)
    message = f"BACKPROP_DATA={env!r} names no folder; expected the folder that holds mnist/"
    with pytest.raises(DatasetError, match="^" + re.escape(message)):
        load_dataset("mnist", download=False)


def _deny_below(monkeypatch, folder: Path) -> None:
    """Look-ups below ``folder`` fail as for a user who may not search it (mode 0700, owned
    by another): root, as tests may run, passes any mode, so os.lstat is made to say so."""
    real_lstat = os.lstat

    def lstat(path, *args, **kwargs):
        if os.fspath(path).startswith(os.fspath(folder) + os.sep):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)


def test_an_unreadable_backprop_data_is_refused_not_searched_past(tmp_path, monkeypatch):
    """A BACKPROP_DATA this user could not read was searched past to the cache's files
    without a word (os.path.lexists says False for a file it may not look up), though a
    mistyped one was already an error."""
    _fake_mnist(Path(os.environ["XDG_CACHE_HOME"]) / "backprop" / "mnist", n_train=3)
    locked = tmp_path / "locked"
    _fake_mnist(locked / "mnist", n_train=5)
    monkeypatch.setenv("BACKPROP_DATA", str(locked))
    _deny_below(monkeypatch, locked)
    message = (
        f"BACKPROP_DATA='{locked}' cannot be read (Permission denied); "
        "expected a folder this user can read"
    )
    with pytest.raises(DatasetError, match="^" + re.escape(message) + "$"):
        load_dataset("mnist", download=False)
    _fake_mnist(tmp_path / "given", n_train=4)  # a data_dir that holds them: not consulted
    assert load_dataset("mnist", data_dir=tmp_path / "given").n_train == 4
    # a --data-dir this user cannot read was searched past too
    with pytest.raises(DatasetError, match=f"^data_dir {re.escape(str(locked))} cannot be read"):
        load_dataset("mnist", data_dir=locked, download=False)


def test_an_unreadable_mnist_folder_inside_backprop_data_is_named(tmp_path, monkeypatch):
    _fake_mnist(Path(os.environ["XDG_CACHE_HOME"]) / "backprop" / "mnist", n_train=3)
    _fake_mnist(tmp_path / "data" / "mnist", n_train=5)
    monkeypatch.setenv("BACKPROP_DATA", str(tmp_path / "data"))
    _deny_below(monkeypatch, tmp_path / "data" / "mnist")
    message = (
        f"BACKPROP_DATA='{tmp_path / 'data'}' cannot be read (Permission denied: "
        f"{tmp_path / 'data' / 'mnist'}); expected a folder this user can read"
    )
    with pytest.raises(DatasetError, match="^" + re.escape(message) + "$"):
        load_dataset("mnist", download=False)


@pytest.mark.parametrize("value", ["cachex", "./cachex", "~/cachex", " ", ""])
def test_a_relative_or_blank_xdg_cache_home_is_ignored(tmp_path, monkeypatch, value):
    """XDG_CACHE_HOME=cachex wrote ./cachex/backprop/mnist1d/... into whatever folder a run
    started in; the XDG Base Directory spec says a relative value is invalid, to be ignored."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", value)
    monkeypatch.chdir(tmp_path)
    assert mnist_mod.cache_dir() == tmp_path / "home" / ".cache" / "backprop"
    assert search_dirs()[-1] == tmp_path / "home" / ".cache" / "backprop"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # an absolute one is used
    assert mnist_mod.cache_dir() == tmp_path / "xdg" / "backprop"


@pytest.fixture
def fake_mirror(monkeypatch):
    """Mirrors served by a replaced fetch_url, with hashes of small fake files."""
    rng = np.random.default_rng(1)
    contents = {}
    for key, f in MNIST_FILES.items():
        n = 5 if key.startswith("train") else 3
        arr = rng.integers(0, 256, (n, 28, 28) if key.endswith("images") else (n,), dtype=np.uint8)
        if key.endswith("labels"):
            arr = arr % 10
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
        raw = header + arr.tobytes()
        contents[f.name + ".gz"] = raw
        monkeypatch.setitem(
            MNIST_FILES, key, MnistFile(f.name, f.magic, hashlib.sha256(raw).hexdigest())
        )
    calls: list[str] = []

    def serve(url, timeout=60.0):
        calls.append(url)
        return gzip.compress(contents[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(mnist_mod, "fetch_url", serve)
    return calls, contents


def test_mnist_download_verifies_and_caches(fake_mirror, tmp_path, capsys):
    calls, contents = fake_mirror
    (tmp_path / "nothing-here").mkdir()
    ds = load_dataset("mnist", data_dir=tmp_path / "nothing-here")
    assert ds.n_train == 5 and ds.n_test == 3
    assert len(calls) == 4 and all(u.startswith(mnist_mod.MIRRORS[0]) for u in calls)
    folder = Path(os.environ["XDG_CACHE_HOME"]) / "backprop" / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(contents)  # no .part left
    # each download is said (it printed nothing, a minute a mirror before giving one up)
    said = capsys.readouterr().err.splitlines()
    assert said == [f"Downloading MNIST's {f.name}.gz into {folder} ..." for f in
                    mnist_mod.MNIST_FILES.values()]  # fmt: skip
    load_dataset("mnist")  # now found in the cache: no more fetches
    assert len(calls) == 4 and capsys.readouterr().err == ""
    # readable as any file the user makes (mkstemp's 0600 hid a shared folder's downloads)
    mode = 0o666 & ~_umask()
    assert {oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {oct(mode)}


def test_mnist_download_with_wrong_hash_saves_nothing(fake_mirror, monkeypatch):
    calls, _ = fake_mirror
    f = MNIST_FILES["train_labels"]
    monkeypatch.setitem(MNIST_FILES, "train_labels", MnistFile(f.name, f.magic, "0" * 64))
    with pytest.raises(
        DatasetError, match="train-labels-idx1-ubyte.gz: no mirror gave the expected content"
    ):
        load_dataset("mnist")
    assert len([u for u in calls if "train-labels" in u]) == len(mnist_mod.MIRRORS)
    folder = Path(os.environ["XDG_CACHE_HOME"]) / "backprop" / "mnist"
    assert not (folder / "train-labels-idx1-ubyte.gz").exists()
    assert not list(folder.glob("*.part"))


def test_mnist_download_falls_back_to_the_next_mirror(fake_mirror, monkeypatch):
    calls, _ = fake_mirror
    serve = mnist_mod.fetch_url

    def first_mirror_down(url, timeout=60.0):
        if url.startswith(mnist_mod.MIRRORS[0]):
            raise urllib.error.URLError("connection refused")
        return serve(url, timeout)

    monkeypatch.setattr(mnist_mod, "fetch_url", first_mirror_down)
    assert load_dataset("mnist").n_train == 5
    assert all(f.is_file() for f in find_mnist_files().values())


def test_mnist_without_network_is_one_line_naming_the_folder(monkeypatch):
    def offline(url, timeout=60.0):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(mnist_mod, "fetch_url", offline)
    with pytest.raises(DatasetError, match="no network") as info:
        load_dataset("mnist")
    message = str(info.value)
    assert "\n" not in message
    assert str(Path(os.environ["XDG_CACHE_HOME"]) / "backprop" / "mnist") in message


_REAL = os.environ.get("BACKPROP_DATA")
needs_real_mnist = pytest.mark.skipif(
    not (_REAL and (Path(_REAL) / "mnist" / "train-images-idx3-ubyte.gz").is_file()),
    reason="the real MNIST files are found through BACKPROP_DATA, which is not set here",
)


@needs_real_mnist
def test_real_mnist(monkeypatch):
    monkeypatch.setenv("BACKPROP_DATA", _REAL)
    ds = load_dataset("mnist", download=False)
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.X_train.dtype == np.float32 and 0.0 == ds.X_train.min() and ds.X_train.max() == 1.0
    assert np.bincount(ds.y_train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert ds.class_names == [str(d) for d in range(10)]


# ------------------------------------------------------------------ MNIST-1D
def test_mnist1d_is_the_packages_default_dataset():
    mnist1d_data = pytest.importorskip(
        "mnist1d.data", reason="the mnist1d package is not installed"
    )
    np_state = np.random.get_state()  # noqa: NPY002 (checking the global state is untouched)
    py_state = random.getstate()
    ds = load_dataset("mnist1d")
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(after[1], np_state[1]) and after[2] == np_state[2]
    assert random.getstate() == py_state
    assert ds.X_train.shape == (4000, 40) and ds.X_test.shape == (1000, 40)
    assert ds.X_train.dtype == np.float64 and ds.y_train.dtype == np.int64 and ds.n_classes == 10
    try:
        ref = mnist1d_data.make_dataset(mnist1d_data.get_dataset_args())
    finally:
        np.random.set_state(np_state)  # noqa: NPY002 (undo the reference call's seeding)
        random.setstate(py_state)
    np.testing.assert_array_equal(ds.X_train, ref["x"])
    np.testing.assert_array_equal(ds.y_test, ref["y_test"])
    cached = list((Path(os.environ["XDG_CACHE_HOME"]) / "backprop" / "mnist1d").glob("*.npz"))
    assert len(cached) == 1 and cached[0].stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert load_dataset("mnist1d").sha256() == ds.sha256()  # read back from the cache


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def test_mnist1d_sizes_are_checked_and_a_damaged_cache_is_made_again(tmp_path, monkeypatch):
    # n_samples 5 failed inside the generator ('need at least one array to stack'), 11 gave
    # 10 rows, 9e8 ran on; a cache file that was not a zip stopped with BadZipFile, one of
    # other arrays was trained on (an IndexError later)
    pytest.importorskip("mnist1d.data", reason="the mnist1d package is not installed")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for n in (5, 11, 25):
        with pytest.raises(DatasetError, match=f"a multiple of 10, at least 20 .*; got {n}$"):
            load_dataset("mnist1d", n_samples=n)
    with pytest.raises(DatasetError, match="mnist1d: n_samples asks for"):
        load_dataset("mnist1d", n_samples=900_000_000)
    ds = load_dataset("mnist1d", n_samples=20)
    assert ds.X_train.shape == (16, 40) and ds.X_test.shape == (4, 40)
    (path,) = (tmp_path / "backprop" / "mnist1d").glob("*.npz")
    good = path.read_bytes()
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros((3, 7)), y=np.array([0, 1, 12]), x_test=np.zeros((1, 40)),
             y_test=np.zeros(1, np.int64))  # fmt: skip
    np.save(tmp_path / "one.npy", np.zeros(3))
    rows = tmp_path / "rows.npz"  # MNIST-1D's kinds and widths, but 7 and 3 signals
    np.savez(rows, x=np.zeros((7, 40)), y=np.zeros(7, np.int64), x_test=np.zeros((3, 40)),
             y_test=np.zeros(3, np.int64))  # fmt: skip
    huge = tmp_path / "huge.npz"  # x.npy's header declares 1e11 signals (a MemoryError)
    with zipfile.ZipFile(huge, "w") as z:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f8", "fortran_order": False, "shape": (10**11, 40)}
        )
        z.writestr("x.npy", header.getvalue() + bytes(64))
        for key, arr in (("y", np.zeros(1, np.int64)), ("x_test", np.zeros((1, 40))),
                         ("y_test", np.zeros(1, np.int64))):  # fmt: skip
            buffer = io.BytesIO()
            np.save(buffer, arr)
            z.writestr(f"{key}.npy", buffer.getvalue())
    damaged_files = (b"PK\x03\x04garbage", good[: len(good) // 2], other.read_bytes(), b"",
                     (tmp_path / "one.npy").read_bytes(), rows.read_bytes(),
                     huge.read_bytes())  # fmt: skip
    for damaged in damaged_files:
        path.write_bytes(damaged)
        assert load_dataset("mnist1d", n_samples=20).sha256() == ds.sha256()
        assert path.read_bytes() == good  # and the cache mended
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_a_ctrl_c_while_mnist1d_is_cached_leaves_no_temporary(tmp_path, monkeypatch):
    """A Ctrl-C while the cache file was written left its temporary (.NAME.npz.<random>.tmp,
    up to 1.6 MB) for good: only an OSError removed it."""
    pytest.importorskip("mnist1d.data", reason="the mnist1d package is not installed")
    import backprop.datasets.mnist1d as mnist1d_module

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mnist1d_module.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_dataset("mnist1d", n_samples=20)
    monkeypatch.undo()
    folder = tmp_path / "backprop" / "mnist1d"
    assert list(folder.iterdir()) == []


# ------------------------------------------------------------------ scikit-learn sets
@pytest.mark.parametrize(
    ("name", "n", "k", "d"),
    [
        ("digits", 1797, 10, 64),
        ("iris", 150, 3, 4),
        ("wine", 178, 3, 13),
        ("breast_cancer", 569, 2, 30),
    ],
)
def test_sklearn_sets(name, n, k, d):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    ds = load_dataset(name, seed=0)
    assert ds.n_train + ds.n_test == n and ds.n_classes == k and ds.n_features == d
    assert len(ds.class_names) == k
    assert abs(ds.n_test - n / 4) <= k
    if name == "digits":
        assert ds.X_train.dtype == np.float32 and ds.image_shape == (8, 8)
        assert ds.X_train.min() == 0.0 and ds.X_train.max() == 1.0 and ds.preprocessing is None
    else:
        assert ds.X_train.dtype == np.float64 and ds.image_shape is None
        np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(ds.X_train.std(axis=0), 1.0, atol=1e-12)
        assert ds.preprocessing.feature_names == tuple(ds.feature_names)
        assert ds.preprocessing.classes == tuple(ds.class_names)
    assert load_dataset(name, seed=0).sha256() == ds.sha256()


def test_sklearn_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    with pytest.raises(DatasetError, match=r"pip install 'scikit-learn>=1\.7\.1'$"):
        load_dataset("iris")


def test_dataset_is_a_plain_record():
    ds = Dataset(
        "x", np.zeros((3, 2)), np.zeros((3, 1)), None, None, "regression", None, None, None
    )
    assert ds.n_outputs == 1 and ds.n_features == 2 and ds.n_test == 0
    np.testing.assert_array_equal(ds.targets(), np.zeros((3, 1)))
    # == compared the fields, and its arrays raised "truth value ... is ambiguous"
    again = load_dataset("moons", seed=0)
    assert again == again and again != load_dataset("moons", seed=0)
    assert again.sha256() == load_dataset("moons", seed=0).sha256()  # contents: sha256()
