"""The ONNX structure walk that skips inline weight bytes: equal to onnx's own parse, robust to junk."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

from modelatlas.errors import InputError  # noqa: E402
from modelatlas.weights import open_weights  # noqa: E402
from modelatlas.weights.onnx_lazy import stripped_model  # noqa: E402

DTYPES = [np.float32, np.float16, np.int8, np.int64]


@st.composite
def models(draw):
    n = draw(st.integers(1, 5))
    inits, nodes, prev = [], [], "x"
    for i in range(n):
        shape = tuple(draw(st.lists(st.integers(0, 6), min_size=1, max_size=3)))
        dtype = draw(st.sampled_from(DTYPES))
        values = (np.arange(int(np.prod(shape))) % 7 - 3).astype(dtype).reshape(shape)
        name = draw(st.sampled_from([f"layer.{i}.weight", f"onnx::MatMul_{i}", f"w{i}"]))
        if any(t.name == name for t in inits):
            name = f"{name}_{i}"
        t = numpy_helper.from_array(values, name)
        if draw(st.booleans()) and dtype == np.float32:
            t = helper.make_tensor(name, onnx.TensorProto.FLOAT, shape, values.reshape(-1).tolist())  # float_data
        inits.append(t)
        nodes.append(helper.make_node("Identity", [prev], [f"y{i}"], name=f"/block.{i}/Identity"))
        prev = f"y{i}"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info(prev, onnx.TensorProto.FLOAT, [1])], initializer=inits)
    return helper.make_model(graph, producer_name=draw(st.text(max_size=5)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=models())
def test_walk_equals_onnx_parse_and_maps_every_raw_tensor(tmp_path, model):
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    data = path.read_bytes()
    structure, spans, parsed = stripped_model(path)
    mine = onnx.ModelProto.FromString(structure)
    theirs = onnx.load(str(path))
    for t in theirs.graph.initializer:
        if t.HasField("raw_data"):  # moved out: its bytes lie at the recorded span
            offset, length = spans[t.name]
            assert data[offset:offset + length] == t.raw_data
            t.ClearField("raw_data")
    assert mine == theirs  # everything else byte for byte
    assert parsed == len(structure) <= len(data)
    with open_weights(path) as wf:
        for t in onnx.load(str(path)).graph.initializer:
            np.testing.assert_array_equal(np.asarray(wf._array(t.name)), numpy_helper.to_array(t))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=models(), cut=st.floats(0, 1), junk=st.binary(max_size=16))
def test_truncated_or_corrupted_files_are_refused_cleanly(tmp_path, model, cut, junk):
    data = model.SerializeToString()
    bad = data[: int(len(data) * cut)] + junk
    path = tmp_path / "bad.onnx"
    path.write_bytes(bad)
    try:
        structure, spans, _ = stripped_model(path)
    except ValueError:
        pass  # refused: the reader falls back to onnx.load, which names the problem
    else:
        assert all(0 <= off and off + n <= len(bad) for off, n in spans.values())
    try:
        with open_weights(path) as wf:
            for name in wf.tensors:
                wf.read(name)
    except InputError as exc:
        assert "bad.onnx" in str(exc)
