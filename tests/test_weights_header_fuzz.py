"""Fuzzing the safetensors header parser: any bytes give a header or an InputError, never a crash.

Regression cases found while fuzzing are kept as explicit examples.
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from modelatlas.errors import InputError
from modelatlas.weights.safetensors_header import DTYPES, parse_header


def _check(blob: bytes) -> None:
    try:
        header = parse_header(blob, len(blob), "fuzz.safetensors")
    except InputError as exc:
        assert "fuzz.safetensors" in str(exc)
        return
    # an accepted header describes tensors inside the file that do not overlap
    spans = sorted((e.begin, e.end) for e in header.entries.values() if e.end > e.begin)
    for (_, end), (begin, _) in zip(spans, spans[1:]):
        assert begin >= end
    for e in header.entries.values():
        assert header.data_start <= e.begin <= e.end <= len(blob)
        assert e.end - e.begin == math.prod(e.shape) * DTYPES[e.dtype].itemsize


def _blob(header: object, data_len: int, declared_delta: int = 0) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", max(0, len(text) + declared_delta)) + text + b"\0" * data_len


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
@example(b"")
@example(b"\x00" * 8)  # zero-length header: not JSON
@example(struct.pack("<Q", 2) + b"{}")  # empty header, no tensors: valid
@example(struct.pack("<Q", 2**64 - 1) + b"{}")  # absurd declared length
@example(struct.pack("<Q", 4) + b"\xff\xfe{}")  # not UTF-8
@example(struct.pack("<Q", 5) + b"[[[]]")  # JSON but not an object
def test_random_bytes(blob):
    _check(blob)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 100) | st.floats(allow_nan=True) | st.text(max_size=5),
                           lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
                           max_leaves=8)

records = st.fixed_dictionaries({
    "dtype": st.one_of(st.sampled_from([*DTYPES, "F4", "Q4_0"]), json_values),  # the type varies too
    "shape": st.one_of(st.lists(st.integers(-1, 6), max_size=3), json_values),
    "data_offsets": st.one_of(st.lists(st.integers(-4, 300), min_size=2, max_size=2), json_values),
})


@settings(max_examples=250, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.one_of(records, json_values), max_size=5),
       st.integers(0, 300), st.integers(-3, 3))
@example({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, 12, 0)  # overlap
@example({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 7, 0)  # one byte short
@example({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, 4, 0)  # bool is not a dimension
@example({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0.0, 4.0]}}, 4, 0)  # float offsets
@example({"__metadata__": {"k": 1}}, 0, 0)  # metadata values must be strings
@example({"__metadata__": 0}, 0, 0)  # a falsy non-object is still not metadata
@example({"__metadata__": {"k": "v"}, "a": {"dtype": "BOOL", "shape": [0], "data_offsets": [0, 0]}}, 0, 0)
def test_structured_headers(header, data_len, declared_delta):
    _check(_blob(header, data_len, declared_delta))


def test_valid_file_round_trips(tmp_path):
    from safetensors.numpy import save_file

    save_file({"a": np.zeros((3, 2), np.float16), "b": np.ones(4, np.int64)}, tmp_path / "ok.safetensors")
    blob = (tmp_path / "ok.safetensors").read_bytes()
    header = parse_header(blob, len(blob), "ok")
    assert header.entries["a"].shape == (3, 2) and header.entries["b"].dtype == "I64"
