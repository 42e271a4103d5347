"""Hypothesis fuzz of the weight parsers, the types of fields varied as well as their values.

A short run for CI (``benchmarks/fuzz_weights.py`` runs the same properties for half an hour);
regressions found by the long run are kept as explicit examples.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings

from weight_fuzz import (_gguf_string, check_gguf, check_onnx, check_safetensors_header, check_safetensors_parity,
                         check_shard_index, gguf_files, onnx_models, prepare_onnx_folder, safetensors_blobs,
                         scratch_folder, shard_indexes, write_shards)

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _blob(header: dict | bytes, data: int) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"\0" * data


@FUZZ
@given(safetensors_blobs())
@example((_blob({"a": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, 4), frozenset()))
@example((_blob({"a": {"dtype": {"F32": 1}, "shape": [1], "data_offsets": [0, 4]}}, 4), frozenset()))
@example((_blob({"a": {"dtype": "F32", "shape": [0, 2**63], "data_offsets": [0, 0]}}, 0), frozenset()))
@example((_blob({"a": {"dtype": "F32", "shape": [2**40, 2**40, 0], "data_offsets": [0, 0]}}, 0), frozenset()))
@example((_blob({"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 1]}}, 1), frozenset()))  # 12 bits
@example((_blob(b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}\x00', 4), frozenset()))
def test_safetensors_headers_match_the_library(case):
    blob, _ = case
    check_safetensors_header(blob)
    check_safetensors_parity(blob)


@FUZZ
@given(shard_indexes())
@example(json.dumps({"weight_map": {"a": ["s1.safetensors"]}}).encode())
@example(json.dumps({"weight_map": {"a": "s1.safetensors", "b": 3}}).encode())
def test_shard_indexes(text):
    with scratch_folder() as folder:
        write_shards(Path(folder))
        check_shard_index(text, Path(folder))


@FUZZ
@given(gguf_files())
@example(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _gguf_string(b"k") + struct.pack("<IIQ", 9, 0, 2**40))
@example(b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + _gguf_string(b"t0") + struct.pack("<IQIQ", 1, 0, 2, 0)
         + b"\0" * 8)  # a 0-element Q4_0 tensor: valid, read as empty
def test_gguf_files(blob):
    pytest.importorskip("gguf")
    with scratch_folder() as folder:
        check_gguf(blob, Path(folder))


@FUZZ
@given(onnx_models())
def test_onnx_models(blob):
    pytest.importorskip("onnx")
    with scratch_folder() as folder:
        prepare_onnx_folder(Path(folder))
        check_onnx(blob, Path(folder))
