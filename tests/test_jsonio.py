"""The package's one JSON writer (modelatlas.jsonio, orjson): NumPy values, NaN, dates, odd keys,
wide integers, paths and bytes round-trip as the module docstring says."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelatlas.jsonio import dumps, dumps_text

finite = st.floats(allow_nan=False, allow_infinity=False)
plain = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | finite | st.text(),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                     max_leaves=20)


@given(plain)
def test_plain_values_round_trip(value):
    assert json.loads(dumps(value)) == value


@given(hnp.arrays(st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_]),
                  hnp.array_shapes(max_dims=2, max_side=4)))
def test_numpy_arrays_are_lists_and_nan_is_null(array):
    back = json.loads(dumps({"a": array, "t": array.T, "first": array.flat[0] if array.size else None}))
    expected = [[None if isinstance(v, float) and not math.isfinite(v) else v for v in row]
                for row in np.atleast_2d(array.astype(object)).tolist()] if array.ndim == 2 else \
        [None if isinstance(v, float) and not math.isfinite(v) else v for v in array.tolist()]
    if array.dtype.kind == "f":  # written at the array's precision: read back in it, every value is exact
        read = np.array(np.array(back["a"], dtype=object).astype(float), dtype=array.dtype)
        np.testing.assert_array_equal(read, np.where(np.isfinite(array), array, np.nan))
        assert [v is None for v in np.ravel(np.array(back["a"], dtype=object))] == \
            [not math.isfinite(v) for v in array.ravel().tolist()]
    else:
        assert back["a"] == expected
    # a transposed (non-contiguous) array is written like its copy
    assert back["t"] == json.loads(dumps(np.ascontiguousarray(array.T)))


def test_special_values():
    doc = json.loads(dumps({
        "nan": float("nan"), "inf": -math.inf, "np_nan": np.float32("nan"), "np_int": np.int64(7),
        "when": datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=timezone(timedelta(hours=2))),
        "naive": datetime(2024, 5, 6), "day": date(2024, 5, 6), "np_day": np.datetime64("2024-05-06T01:02:03"),
        "path": Path("a") / "b.json", "bytes": b"caf\xc3\xa9 \xff", "set": {3, 1, 2},
        1: "int key", date(2020, 1, 2): "date key", "wide": 2**70, "wide_negative": -2**64,
        "object_array": np.array(["x", None], dtype=object)}))
    assert doc["nan"] is doc["inf"] is doc["np_nan"] is None
    assert doc["np_int"] == 7
    assert doc["when"] == "2024-05-06T07:08:09.000010+02:00"
    assert doc["naive"] == "2024-05-06T00:00:00"  # no time zone invented
    assert doc["day"] == "2024-05-06" and doc["np_day"] == "2024-05-06T01:02:03"
    assert doc["path"] == str(Path("a") / "b.json")
    assert doc["bytes"] == "café \ufffd"
    assert doc["set"] == [1, 2, 3]
    assert doc["1"] == "int key" and doc["2020-01-02"] == "date key"
    assert doc["wide"] == str(2**70) and doc["wide_negative"] == str(-2**64)
    assert doc["object_array"] == ["x", None]


def test_text_is_utf8_not_escaped_and_indent_is_optional():
    assert dumps_text({"id": "Falconsai/çà"}) == '{"id":"Falconsai/çà"}'
    assert dumps_text([1], indent=True) == "[\n  1\n]"


def test_unknown_types_are_refused():
    with pytest.raises(TypeError, match="object"):
        dumps({"x": object()})
