"""Row sources: any row list (unsorted, repeated) read lazily equals the same rows of the full tensor."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.errors import InputError
from modelatlas.weights.tensors import AffineDequant, ArrayRows, TransposedRows, Unpacked4Bit, scale_granularity


@st.composite
def matrix_and_rows(draw):
    rows = draw(st.integers(1, 12))
    cols = draw(st.sampled_from([2, 4, 6, 8, 12]))
    seed = draw(st.integers(0, 2**16))
    idx = draw(st.lists(st.integers(0, rows - 1), max_size=15))
    return np.random.default_rng(seed), rows, cols, np.array(idx, dtype=np.int64)


@settings(max_examples=150, deadline=None)
@given(matrix_and_rows(), st.sampled_from(["tensor", "row", "column", "group"]), st.booleans())
def test_rows_equal_full_rows(case, reach, with_zero):
    rng, rows, cols, idx = case
    q = rng.integers(-128, 127, (rows, cols)).astype(np.int8)
    scale_shape = {"tensor": (1, 1), "row": (rows, 1), "column": (1, cols), "group": (rows, 2)}[reach]
    scale = rng.random(scale_shape).astype(np.float32) + 0.01
    zero = rng.integers(-3, 3, scale_shape).astype(np.float32) if with_zero else None
    counted = []
    src = AffineDequant(ArrayRows(q, counted.append), ArrayRows(scale), ArrayRows(zero) if zero is not None else None)
    full = src.full()
    expanded = np.repeat(scale, cols // 2, axis=1) if reach == "group" else scale
    expected = (q.astype(np.float32) - (0 if zero is None else (np.repeat(zero, cols // 2, axis=1) if reach == "group" else zero))) * expanded
    np.testing.assert_allclose(full, expected, rtol=1e-6)
    np.testing.assert_array_equal(src.rows(idx), full[idx])
    # each distinct row is read once
    assert counted[-1] == np.unique(idx).size * cols


@pytest.mark.parametrize("scale_shape, expected", [
    ((1, 1), ("tensor", None)), ((8, 1), ("row", None)), ((1, 6), ("column", None)), ((8, 3), ("group", 2)),
])
def test_scale_granularity(scale_shape, expected):
    assert scale_granularity(scale_shape, (8, 6)) == expected


def test_scale_that_fits_nothing_is_an_error():
    with pytest.raises(InputError, match="does not fit"):
        scale_granularity((8, 4), (8, 6), path="m.safetensors", name="w")


@settings(max_examples=80, deadline=None)
@given(matrix_and_rows())
def test_transposed_and_unpacked_rows(case):
    rng, rows, cols, idx = case
    a = rng.standard_normal((cols, rows)).astype(np.float32)
    t = TransposedRows(ArrayRows(a))
    np.testing.assert_array_equal(t.rows(idx), a.T[idx])
    nibbles = rng.integers(0, 16, (rows, cols)).astype(np.uint8)
    packed = (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).astype(np.uint8)
    u = Unpacked4Bit(ArrayRows(packed), cols)
    np.testing.assert_array_equal(u.full(), nibbles)
    np.testing.assert_array_equal(u.rows(idx), nibbles[idx])
