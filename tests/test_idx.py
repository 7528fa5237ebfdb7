"""The IDX reader on files these tests write (good and corrupted) and on the real MNIST files."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from backprop.datasets import DatasetError, read_idx, write_idx
from backprop.datasets.mnist import MNIST_FILES


def _hand_written_idx() -> bytes:
    # magic 0x00000803 (uint8, 3 dims), sizes 2 x 2 x 3, then 12 bytes 0..11
    return bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(12))


def test_reads_a_hand_written_file(tmp_path):
    p = tmp_path / "hand-idx3-ubyte"
    p.write_bytes(_hand_written_idx())
    arr = read_idx(p, expected_magic=0x803)
    assert arr.dtype == np.uint8 and arr.shape == (2, 2, 3)
    np.testing.assert_array_equal(arr.ravel(), np.arange(12))
    arr[0, 0, 0] = 99  # a writable array, not a view of read-only bytes


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_every_element_type(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    p = write_idx(tmp_path / f"a-idx{suffix}", arr)
    back = read_idx(p)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, arr)


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    p = tmp_path / "no-suffix"
    p.write_bytes(gzip.compress(_hand_written_idx()))
    assert read_idx(p).shape == (2, 2, 3)


def test_wrong_magic_number(tmp_path):
    p = tmp_path / "labels-idx1-ubyte"
    write_idx(p, np.arange(5, dtype=np.uint8))  # magic 0x00000801
    with pytest.raises(
        DatasetError, match=r"labels-idx1-ubyte: magic number 0x00000801; expected 0x00000803"
    ):
        read_idx(p, expected_magic=0x803)


@pytest.mark.parametrize(
    "header",
    [
        bytes([0x1F, 0x8C, 8, 1]),  # not zero-led
        bytes([0, 0, 0x07, 1]),  # unknown element type
        b"P5\n2",  # a PGM image, say
        # not zero-led, with dimensions past the size limit: it read as an over-large IDX
        bytes([0x7F, 0x45, 8, 2]) + bytes([0xFF] * 8),
    ],
)
def test_not_an_idx_header(tmp_path, header):
    p = tmp_path / "bad"
    p.write_bytes(header + bytes(8))
    with pytest.raises(DatasetError, match="is not an IDX header"):
        read_idx(p)


def test_truncated_file(tmp_path):
    p = tmp_path / "cut"
    p.write_bytes(_hand_written_idx()[:-1])
    with pytest.raises(
        DatasetError,
        match=r"cut: file is truncated: 27 bytes, but dimensions 2 x 2 x 3 .* exactly 28 bytes",
    ):
        read_idx(p)


def test_dimensions_that_disagree_with_the_length(tmp_path):
    data = bytearray(_hand_written_idx())
    data[7] = 1  # first dimension 1 instead of 2: 6 elements declared, 12 present
    p = tmp_path / "dims"
    p.write_bytes(bytes(data))
    with pytest.raises(
        DatasetError, match=r"has trailing bytes: 28 bytes, but dimensions 1 x 2 x 3 .* exactly 22"
    ):
        read_idx(p)


def test_header_too_short_for_its_dimensions(tmp_path):
    p = tmp_path / "short"
    p.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2]))
    with pytest.raises(DatasetError, match="too short for the 3 dimension sizes"):
        read_idx(p)


def test_file_shorter_than_a_header(tmp_path):
    p = tmp_path / "tiny"
    p.write_bytes(b"\x00\x00")
    with pytest.raises(DatasetError, match="too short for an IDX header"):
        read_idx(p)


def test_zero_dimensions(tmp_path):
    p = tmp_path / "zero"
    p.write_bytes(bytes([0, 0, 8, 0]))
    with pytest.raises(DatasetError, match="0 dimensions"):
        read_idx(p)


def test_truncated_gzip_stream(tmp_path):
    raw = tmp_path / "whole"
    write_idx(raw, np.arange(5000, dtype=np.uint8).reshape(50, 100))
    p = tmp_path / "cut.gz"
    p.write_bytes(gzip.compress(raw.read_bytes())[:-12])
    with pytest.raises(DatasetError, match="cut.gz: .*gzip"):
        read_idx(p)


def test_damaged_gzip_stream(tmp_path):
    data = bytearray(gzip.compress(bytes(range(256)) * 50))
    data[20:40] = bytes(20)
    p = tmp_path / "damaged.gz"
    p.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="damaged.gz: not a valid gzip file"):
        read_idx(p)


def test_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="IDX file .*absent does not exist"):
        read_idx(tmp_path / "absent")


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="IDX cannot store dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))


_DATA = os.environ.get("BACKPROP_DATA")
needs_mnist = pytest.mark.skipif(
    not (_DATA and (Path(_DATA) / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()),
    reason="the real MNIST files are found through BACKPROP_DATA, which is not set here",
)


@needs_mnist
def test_real_mnist_files():
    folder = Path(os.environ["BACKPROP_DATA"]) / "mnist"
    shapes = {
        "train_images": (60000, 28, 28),
        "train_labels": (60000,),
        "test_images": (10000, 28, 28),
        "test_labels": (10000,),
    }
    for key, f in MNIST_FILES.items():
        arr = read_idx(folder / (f.name + ".gz"), expected_magic=f.magic)
        assert arr.shape == shapes[key] and arr.dtype == np.uint8
        raw = gzip.decompress((folder / (f.name + ".gz")).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == f.sha256
        if key == "train_labels":
            # the counts per digit in shared/data/README.md
            counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
            assert np.bincount(arr, minlength=10).tolist() == counts
