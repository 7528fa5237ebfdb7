"""Fuzz: thousands of mutated model files and checkpoints, each of which must load as a valid
model or raise ModelFileError: never another exception, never a large allocation.

Mutations come from ``random.Random`` with fixed seeds (so a failure reproduces exactly and
names its mutation number): byte flips, truncations, insertions, deletions, a forged header
length, and structured edits that rewrite one value anywhere in the header JSON, including
inside the JSON strings of the metadata (config, preprocessing, training state), with
hostile values (huge or negative integers, wrong types, unknown names), then re-encode the
header with a correct length so that the deeper checks are reached.
"""

from __future__ import annotations

import copy
import json
import random
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from backprop import MLP
from backprop.checkpoint import Checkpoint, load_checkpoint
from backprop.io import ModelFileError, load_model, save_model
from backprop.preprocessing import Preprocessing
from backprop.training import fit

X = np.random.default_rng(0).normal(size=(3, 4))

HOSTILE_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    3,
    7,
    2**31,
    2**63,
    -(2**63),
    10**40,
    0.5,
    -0.0,
    1e308,
    float("nan"),
    float("inf"),
    "",
    "F16",
    "F64",
    "I64",
    "swish",
    "relu",
    "sigmoid",
    "float16",
    "float32",
    "__import__('os')",
    "PCG64",
    "MT19937",
    "adam",
    "lbfgs",
    "1",
    "99",
    "-1",
    "null",
    [],
    [0],
    [-1, 5],
    [0, 10**12],
    [4, 4],
    [2**40, 2**40],
    [1, 2, 3],
    {},
    {"a": 1},
]


def _split(raw: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _join(header: object, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _json_paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in a JSON tree; JSON held in metadata strings is entered too."""
    paths = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            paths += _json_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            paths += _json_paths(v, (*prefix, i))
    return paths


def _structured(rng: random.Random, raw: bytes) -> bytes:
    header, data = _split(raw)
    meta = header["__metadata__"]
    # decode the JSON-valued metadata so that edits can reach inside it
    decoded = {k: json.loads(v) for k, v in meta.items() if v[:1] in "{[n"}
    tree = {"header": header, "decoded": decoded}
    paths = [p for p in _json_paths(tree) if len(p) > 1]
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths)
        parent = tree
        try:
            for key in path[:-1]:
                parent = parent[key]
            choice = rng.random()
            if choice < 0.1 and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif choice < 0.2 and isinstance(parent, dict):
                parent[rng.choice(["extra", "sizes", "dtype", "layers.9.W"])] = rng.choice(
                    HOSTILE_VALUES
                )
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(HOSTILE_VALUES))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this path's parent
    for k, v in decoded.items():
        meta[k] = json.dumps(v)
    return _join(header, data)


def _mutate(rng: random.Random, raw: bytes) -> tuple[str, bytes]:
    kind = rng.choice(
        [
            "flip",
            "flip_header",
            "truncate",
            "insert",
            "delete",
            "length",
            "structured",
            "structured",
        ]
    )
    b = bytearray(raw)
    n_header = struct.unpack("<Q", raw[:8])[0]
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == "flip_header":
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(8 + n_header)] = rng.randrange(256)
    elif kind == "truncate":
        del b[rng.randrange(len(b)) :]
    elif kind == "insert":
        at = rng.randrange(len(b) + 1)
        b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == "delete":
        at = rng.randrange(len(b))
        del b[at : at + rng.randint(1, 16)]
    elif kind == "length":
        value = rng.choice(
            [0, 1, n_header - 1, n_header + 1, len(b), 2**32, 2**63, rng.randrange(2**64)]
        )
        b[:8] = struct.pack("<Q", value)
    else:
        return kind, _structured(rng, raw)
    return kind, bytes(b)


def _overwrite(path: Path, data: bytes) -> None:
    """Replace the file's bytes in place: opening with O_TRUNC costs ~5 ms on ext4 (it
    flushes the old blocks), which would dominate thousands of iterations."""
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()


def _fuzz(
    tmp_path: Path, originals: list[bytes], n: int, seed: int, load: Callable
) -> dict[str, int]:
    rng = random.Random(seed)
    path = tmp_path / "fuzzed.safetensors"
    path.touch()
    outcomes = {"error": 0, "loaded": 0}
    tracemalloc.start()
    try:
        for i in range(n):
            raw = originals[i % len(originals)]
            kind, mutated = _mutate(rng, raw)
            _overwrite(path, mutated)
            tracemalloc.reset_peak()
            try:
                model = load(path)
            except ModelFileError as e:
                assert "\n" not in str(e)
                outcomes["error"] += 1
            except Exception as e:  # noqa: BLE001 - any other exception is the bug this finds
                pytest.fail(f"mutation {i} ({kind}, seed {seed}) raised {type(e).__name__}: {e}")
            else:
                assert isinstance(model, MLP), f"mutation {i} ({kind})"
                with np.errstate(all="ignore"):  # mutated weights may overflow: that is valid
                    assert model.predict(X).shape == (3, model.n_outputs)
                outcomes["loaded"] += 1
            peak = tracemalloc.get_traced_memory()[1]
            assert peak < 20 * len(raw) + 2_000_000, f"mutation {i} ({kind}) allocated {peak} bytes"
    finally:
        tracemalloc.stop()
    return outcomes


def _model_files(tmp_path: Path) -> list[bytes]:
    with_pre = MLP([4, 5, 3], "relu", "identity", "cross_entropy", seed=1)
    with_pre.preprocessing = Preprocessing(
        ("a", "b", "c", "d"), (0.0, 1.0, 2.0, 3.0), (1.0, 2.0, 3.0, 4.0), "y", ("p", "q", "r")
    )
    plain = MLP([4, 3, 2, 1], "gelu", "sigmoid", "l2", bias=False, dtype="float32", seed=2)
    out = []
    for i, model in enumerate((with_pre, plain)):
        save_model(tmp_path / f"{i}.safetensors", model)
        out.append((tmp_path / f"{i}.safetensors").read_bytes())
    return out


def test_fuzz_model_files(tmp_path):
    originals = _model_files(tmp_path)
    for raw in originals:  # the starting points are valid
        (tmp_path / "ok.safetensors").write_bytes(raw)
        load_model(tmp_path / "ok.safetensors")
    outcomes = _fuzz(tmp_path, originals, n=2500, seed=12345, load=load_model)
    # evidence that the fuzzer explores both sides: most mutations are refused, some load
    assert outcomes["error"] > 1500 and outcomes["loaded"] > 10, outcomes


def test_fuzz_checkpoints(tmp_path):
    model = MLP([4, 5, 3], "tanh", "identity", "cross_entropy", dropout=0.2, seed=3)
    T = np.eye(3)[np.arange(20) % 3]
    checkpoint = Checkpoint(tmp_path / "run", fit_config={"epochs": 2, "batch_size": 5, "seed": 1})
    fit(
        model,
        np.random.default_rng(1).normal(size=(20, 4)),
        T,
        optimizer="adam",
        epochs=2,
        batch_size=5,
        early_stopping=5,
        callbacks=[checkpoint],
    )
    raw = checkpoint.path.read_bytes()
    load_checkpoint(checkpoint.path)

    def load(path):
        return load_checkpoint(path)[0].model

    outcomes = _fuzz(tmp_path, [raw], n=1200, seed=777, load=load)
    assert outcomes["error"] > 700 and outcomes["loaded"] > 5, outcomes
