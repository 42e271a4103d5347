"""One generated case per known route from a bad weights file (or zoo manifest) to a crash.

Each case asserts the documented outcome (``docs/reliability.md``, "Weight files"): an
``InputError`` whose message names the file (and the tensor or field), or, for valid but unusual
checkpoints (0-element and sparse tensors), that they are read (or skipped with a stated reason)
and that everything else is read exactly as the format's own library reads it.
"""

from __future__ import annotations

import json
import re
import os
import signal
import struct
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from modelatlas.errors import InputError
from modelatlas.weights import open_weights
from modelatlas.weights.weightfile import SkippedTensorWarning
from modelatlas.zoo.manifest import load_manifest


def _safetensors(path: Path, header: dict | bytes, data: bytes = b"") -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def _refused(path: Path, *fragments: str) -> InputError:
    with pytest.raises(InputError) as err:
        with open_weights(path) as wf:
            for name in wf.tensors:
                wf.read(name)
    message = str(err.value)
    assert path.name in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return err.value


def _same_as_library(path: Path) -> None:
    """Every tensor reads exactly as the safetensors library reads it."""
    expected = load_file(path)
    with open_weights(path) as wf:
        assert set(wf.tensors) == set(expected)
        for name, array in expected.items():
            assert wf.tensors[name].shape == array.shape
            np.testing.assert_array_equal(wf.read(name), array.astype(np.float32))


# -- safetensors headers ---------------------------------------------------------------------------
F32_1 = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}


@pytest.mark.parametrize("field, value, fragment", [
    ("dtype", ["F32"], "dtype is a JSON list"),
    ("dtype", {"F32": 1}, "dtype is a JSON object"),
    ("dtype", 7, "dtype is a JSON number"),
    ("dtype", None, "dtype is a JSON null"),
    ("dtype", "F4", "cannot read"),
    ("shape", "1", "shape '1' is not a list"),
    ("shape", {"0": 1}, "is not a list"),
    ("shape", [1.0], "is not a list"),
    ("shape", [True], "is not a list"),
    ("shape", [[1]], "is not a list"),
    ("shape", [2**64], "is not a list"),
    ("data_offsets", "0,4", "is not a pair"),
    ("data_offsets", [0, 4.0], "is not a pair"),
    ("data_offsets", [0, 4, 4], "is not a pair"),
    ("data_offsets", {"0": 4}, "is not a pair"),
    ("data_offsets", [-4, 0], "is not a pair"),
])
def test_safetensors_field_of_the_wrong_type(tmp_path, field, value, fragment):
    path = _safetensors(tmp_path / "t.safetensors", {"w": {**F32_1, field: value}}, b"\0" * 4)
    _refused(path, "tensor 'w'", fragment)


@pytest.mark.parametrize("text, fragment", [
    (b'{"w": {"dtype": "F32", "shape": [' + b"1" * 5000 + b'], "data_offsets": [0, 4]}}', "4300 digits"),
    (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": '
     b'{"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', "key 'w' appears twice"),
    (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": NaN}}', "NaN is not a JSON number"),
    (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [-0, 4]}}', "is not a pair"),
    (b'{"\\ud800": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', "lone UTF-16 surrogate"),
    (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
])
def test_safetensors_header_json_the_library_refuses(tmp_path, text, fragment):
    path = _safetensors(tmp_path / "j.safetensors", text, b"\0" * 4)
    _refused(path, fragment)
    with pytest.raises(Exception):  # the reference reader refuses each of them too (or cannot parse)
        load_file(path)


def test_duplicate_tensor_names_are_refused_even_where_the_library_keeps_the_last(tmp_path):
    record = b'{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    path = _safetensors(tmp_path / "d.safetensors", b'{"w": ' + record + b', "w": ' + record + b"}", b"\0" * 4)
    assert list(load_file(path)) == ["w"]  # deliberate difference: docs/weights.md
    _refused(path, "key 'w' appears twice")


@pytest.mark.parametrize("header, data, fragment", [
    ({"a": {**F32_1, "data_offsets": [4, 8]}}, 8, "data bytes 0..4 belong to no tensor"),
    ({"a": F32_1}, 6, "2 bytes after the last tensor"),
    ({"a": {"dtype": "F32", "shape": [0, 2**62], "data_offsets": [0, 0]}}, 0, "too large for an array"),
])
def test_safetensors_layout_the_library_refuses(tmp_path, header, data, fragment):
    path = _safetensors(tmp_path / "l.safetensors", header, b"\0" * data)
    _refused(path, fragment)


def test_zero_element_tensors_are_read_like_the_library(tmp_path):
    rng = np.random.default_rng(0)
    save_file({"empty": np.zeros(0, np.float32), "no_cols": np.zeros((3, 0), np.float16),
               "no_rows": np.zeros((0, 768), np.float32), "w": rng.standard_normal((4, 3)).astype(np.float32)},
              tmp_path / "z.safetensors")
    _same_as_library(tmp_path / "z.safetensors")
    with open_weights(tmp_path / "z.safetensors") as wf:
        assert wf.read_rows("no_cols", np.array([2, 0])).shape == (2, 0)


# -- shard indexes --------------------------------------------------------------------------------
@pytest.mark.parametrize("value, fragment", [
    (["s.safetensors"], "the list"), (3, "the int"), (None, "the NoneType"), ({"f": "s.safetensors"}, "the dict"),
])
def test_weight_map_value_of_the_wrong_type(tmp_path, value, fragment):
    save_file({"a": np.ones(2, np.float32), "b": np.ones(2, np.float32)}, tmp_path / "s.safetensors")
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": "s.safetensors", "b": value}}))
    _refused(index, "weight_map gives tensor 'b'", fragment)


def test_weight_map_with_a_huge_integer_or_duplicate_key(tmp_path):
    index = tmp_path / "model.safetensors.index.json"
    index.write_bytes(b'{"metadata": {"total_size": ' + b"9" * 4301 + b'}, "weight_map": {}}')
    _refused(index, "shard index is not valid UTF-8 JSON")
    index.write_bytes(b'{"weight_map": {"a": "s.safetensors", "a": "t.safetensors"}}')
    _refused(index, "key 'a' appears twice")


# -- packed quantisation companions ---------------------------------------------------------------
@pytest.mark.parametrize("qweight, qzeros, scales", [
    ((4, 0), (0, 0), (0, 8)),  # 0 columns
    ((4, 1), (0, 1), (0, 8)),  # 0 groups
])
def test_awq_with_an_empty_dimension(tmp_path, qweight, qzeros, scales):
    save_file({"l.qweight": np.zeros(qweight, np.int32), "l.qzeros": np.zeros(qzeros, np.int32),
               "l.scales": np.zeros(scales, np.float16)}, tmp_path / "awq.safetensors")
    _refused(tmp_path / "awq.safetensors", "l.qweight", "empty dimension")


def test_gptq_group_index_out_of_range(tmp_path):
    g_idx = np.zeros(8, np.int32)
    g_idx[3] = 5  # one group only
    save_file({"l.qweight": np.zeros((1, 8), np.int32), "l.qzeros": np.zeros((1, 1), np.int32),
               "l.scales": np.ones((1, 8), np.float16), "l.g_idx": g_idx}, tmp_path / "gptq.safetensors")
    _refused(tmp_path / "gptq.safetensors", "l.qweight", "g_idx holds groups 0..5")


@pytest.mark.parametrize("shape, fragment", [
    (np.array([np.nan, 4], np.float32), "dtype float32"),
    (np.array([-2, 4], np.int64), "negative size"),
    (np.zeros(0, np.int64), "holds 0 values"),
    (np.array([0, 2**62], np.int64), "too large for an array"),
])
def test_packed_shape_tensor_that_is_not_a_shape(tmp_path, shape, fragment):
    save_file({"w_packed": np.zeros((2, 2), np.uint8), "w_shape": shape, "w_scale": np.ones(1, np.float32)},
              tmp_path / "p.safetensors")
    _refused(tmp_path / "p.safetensors", "w_shape", fragment)


def test_packed_tensor_with_zero_rows_is_read(tmp_path):
    save_file({"w_packed": np.zeros((0, 2), np.uint8), "w_shape": np.array([0, 4], np.int64),
               "w_scale": np.ones(1, np.float32)}, tmp_path / "p0.safetensors")
    with open_weights(tmp_path / "p0.safetensors") as wf:
        assert wf.tensors["w"].shape == (0, 4) and wf.read("w").shape == (0, 4)


# -- PyTorch checkpoints --------------------------------------------------------------------------
def _torch_zip_with_pickle(path: Path, payload: bytes, compress: int) -> Path:
    """A torch.save archive whose data.pkl is replaced by ``payload`` (compressed as asked)."""
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2, 2)}, path)
    with zipfile.ZipFile(path) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in members:
            if info.filename.endswith("data.pkl"):
                dst.writestr(info.filename, data + payload, compress_type=compress)
            else:
                dst.writestr(info, data)
    return path


def test_torch_inflation_bomb_is_refused_before_inflating(tmp_path, monkeypatch):
    from modelatlas.weights import zip_limits

    monkeypatch.setattr(zip_limits, "MAX_INFLATED_BYTES", 2**20)
    path = _torch_zip_with_pickle(tmp_path / "bomb.pt", b"\0" * (4 * 2**20), zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 64 * 2**10
    inflated = []
    monkeypatch.setattr(zip_limits, "_inflated_size", lambda *a, **k: inflated.append(a) or 0)
    _refused(path, "data.pkl", "over the 1048576-byte limit")
    assert not inflated  # refused from the declared size alone


def test_torch_member_that_inflates_past_its_declared_size(tmp_path):
    path = _torch_zip_with_pickle(tmp_path / "liar.pt", b"\0" * 2**20, zipfile.ZIP_DEFLATED)
    blob = bytearray(path.read_bytes())
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central headers
        start = 0
        while (start := blob.find(signature, start)) >= 0:
            name_len = struct.unpack_from("<H", blob, start + (26 if signature == b"PK\x03\x04" else 28))[0]
            name_at = start + (30 if signature == b"PK\x03\x04" else 46)
            if bytes(blob[name_at:name_at + name_len]).endswith(b"data.pkl"):
                struct.pack_into("<I", blob, start + size_at, 1000)
            start += 4
    path.write_bytes(bytes(blob))
    _refused(path, "data.pkl", "inflates to more bytes than the 1000 it declares")


def test_torch_pickle_over_the_pickle_bound(tmp_path, monkeypatch):
    from modelatlas.weights import zip_limits

    monkeypatch.setattr(zip_limits, "MAX_PICKLE_BYTES", 1000)
    path = _torch_zip_with_pickle(tmp_path / "big.pt", b"\0" * 2000, zipfile.ZIP_STORED)
    _refused(path, "data.pkl", "exceeds the 1000-byte limit")


def test_torch_valid_checkpoints_still_load_identically(tmp_path):
    torch = pytest.importorskip("torch")
    state = {"a": torch.randn(5, 3), "b": {"c": torch.arange(6, dtype=torch.float16).reshape(2, 3)}}
    for legacy in (False, True):
        path = tmp_path / f"ok{legacy}.pt"
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        with open_weights(path) as wf:
            assert set(wf.tensors) == {"a", "b.c"} and not wf.skipped
            np.testing.assert_array_equal(wf.read("a"), state["a"].numpy())
            np.testing.assert_array_equal(wf.read("b.c"), state["b"]["c"].float().numpy())


def test_torch_nesting_50000_deep(tmp_path):
    torch = pytest.importorskip("torch")
    depth = 50_000
    # a pickle of [[[ ... [] ... ]]]: EMPTY_LIST n times, then APPEND n - 1 times
    payload = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
    path = tmp_path / "deep.pt"
    torch.save({"w": torch.ones(1)}, path)
    with zipfile.ZipFile(path) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in members:
            dst.writestr(info, payload if info.filename.endswith("data.pkl") else data)
    _refused(path, "nested more than 64 deep")


def test_torch_sparse_and_empty_tensors_are_valid(tmp_path):
    torch = pytest.importorskip("torch")
    dense = torch.randn(3, 4)
    path = tmp_path / "sparse.pt"
    torch.save({"s": torch.eye(3).to_sparse(), "none": torch.zeros(0, 3), "no_cols": torch.zeros(3, 0),
                "m": torch.empty(2, 2, device="meta"), "d": dense}, path)
    with pytest.warns(SkippedTensorWarning) as warned:
        wf = open_weights(path)
    assert sorted(str(w.message) for w in warned) == [
        f"{path} (m): skipped, meta tensor of shape [2, 2] (only dense tensors with data have rows to sample)",
        f"{path} (s): skipped, sparse_coo tensor of shape [3, 3] (only dense tensors with data have rows to sample)"]
    with wf:
        assert set(wf.tensors) == {"none", "no_cols", "d"} and set(wf.skipped) == {"s", "m"}
        np.testing.assert_array_equal(wf.read("d"), dense.numpy())
        assert wf.read("none").shape == (0, 3) and wf.read("no_cols").shape == (3, 0)
        assert wf.read_rows("no_cols", np.array([1])).shape == (1, 0)


@pytest.mark.parametrize("legacy", [True, False])
def test_torch_cut_short_anywhere(tmp_path, legacy):
    torch = pytest.importorskip("torch")
    path = tmp_path / "full.pt"
    torch.save({"a": torch.ones(20, 20), "b": torch.zeros(3)}, path, _use_new_zipfile_serialization=not legacy)
    blob = path.read_bytes()
    for cut in sorted({1, 2, 5, 50, 300, 400, len(blob) // 2, len(blob) - 1}):
        cut_path = tmp_path / f"cut{cut}.pt"
        cut_path.write_bytes(blob[:cut])
        _refused(cut_path)


def test_torch_legacy_storage_declared_larger_than_the_file(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(4)}, path, _use_new_zipfile_serialization=False)
    blob = path.read_bytes()
    numel = b"cpuq\x06K\x04N"  # the storage's element count (4) in its persistent id
    assert blob.count(numel) == 1
    path.write_bytes(blob.replace(numel, b"cpuq\x06J" + struct.pack("<i", 2**29) + b"N"))  # 2 GiB
    _refused(path, "not a readable PyTorch checkpoint")


def test_torch_file_that_is_neither_zip_nor_pickle(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "text.bin").write_bytes(b"hello, not a checkpoint")
    _refused(tmp_path / "text.bin", "neither a zip archive nor a pickle")


# -- ONNX -----------------------------------------------------------------------------------------
@contextmanager
def _no_hang(seconds: int = 20):
    """Fail (instead of hanging the test run) if the body blocks."""
    def alarm(*_):
        raise TimeoutError(f"blocked for {seconds} s")

    assert threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _onnx_external(tmp_path: Path, **record: str) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 2], vals=np.arange(8, dtype=np.float32))
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in record.items():
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w])
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path


def test_onnx_external_data_is_read_when_valid(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\0" * 8 + np.arange(8, dtype=np.float32).tobytes())
    path = _onnx_external(tmp_path, location="w.bin", offset="8", length="32")
    with open_weights(path) as wf:
        np.testing.assert_array_equal(wf.read("W"), np.arange(8, dtype=np.float32).reshape(4, 2).T)


@pytest.mark.parametrize("record, fragment", [
    ({"location": "w.bin", "offset": "-8"}, "offset -8"),
    ({"location": "w.bin", "offset": "x"}, "are not integers"),
    ({"location": "w.bin", "length": "31"}, "length 31"),
    ({"location": "w.bin", "offset": "8"}, "which holds 32"),
    ({"location": "../w.bin"}, "outside the model's folder"),
    ({"location": ""}, "without a location"),
    ({"location": "sub"}, "not a regular file"),
])
def test_onnx_external_data_record_that_lies(tmp_path, record, fragment):
    (tmp_path / "w.bin").write_bytes(np.arange(8, dtype=np.float32).tobytes())
    (tmp_path / "sub").mkdir()
    _refused(_onnx_external(tmp_path, **record), "(W)", fragment)


def test_onnx_fifo_as_external_data_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with _no_hang():
        _refused(_onnx_external(tmp_path, location="pipe"), "not a regular file")


def test_onnx_empty_and_non_model_files(tmp_path):
    pytest.importorskip("onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    _refused(tmp_path / "empty.onnx", "empty file (0 bytes)")
    (tmp_path / "proto.onnx").write_bytes(b"\x12\x03abc")  # a valid protobuf: producer_name = "abc"
    _refused(tmp_path / "proto.onnx", "no ir_version")


def test_onnx_negative_dimension(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    t = helper.make_tensor("W", TensorProto.FLOAT, [2, 2], vals=np.ones(4, np.float32))
    t.dims[0] = -2
    graph = helper.make_graph([], "g", [], [], initializer=[t])
    path = tmp_path / "neg.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    _refused(path, "(W)", "negative dimension")


# -- zoo manifests --------------------------------------------------------------------------------
def _zoo(tmp_path: Path, path: str) -> Path:
    zoo = tmp_path / "zoo"
    zoo.mkdir(exist_ok=True)
    (zoo / "manifest.json").write_text(json.dumps({"name": "z", "models": [
        {"id": "m", "path": path, "created_at": "2024-01-01T00:00:00Z"}]}))
    return zoo


@pytest.mark.parametrize("make, path, fragment", [
    (None, "/etc/passwd", "must be relative to the zoo folder"),
    (None, "../outside.safetensors", "without '..'"),
    (None, "models/../../outside.safetensors", "without '..'"),
    (None, "C:\\weights\\m.safetensors", "must be relative"),
    ("link-out", "m.safetensors", "leads outside the zoo folder"),
    ("loop", "m.safetensors", "cannot be resolved"),
    ("dir", "m.safetensors", "is not a regular file"),
])
def test_zoo_manifest_paths_stay_in_the_zoo(tmp_path, make, path, fragment):
    zoo = _zoo(tmp_path, path)
    save_file({"w": np.ones(2, np.float32)}, tmp_path / "outside.safetensors")
    if make == "link-out":
        (zoo / "m.safetensors").symlink_to(tmp_path / "outside.safetensors")
    elif make == "loop":
        (zoo / "m.safetensors").symlink_to(zoo / "n.safetensors")
        (zoo / "n.safetensors").symlink_to(zoo / "m.safetensors")
    elif make == "dir":
        (zoo / "m.safetensors").mkdir()
    with pytest.raises(InputError, match="model 'm'") as err:
        load_manifest(zoo)
    assert "manifest.json" in str(err.value) and fragment in str(err.value)


def test_fingerprint_inputs_from_a_manifest_stay_in_the_zoo(tmp_path):
    from modelatlas.weights.discover import discover_models

    zoo = _zoo(tmp_path, "../outside.safetensors")
    found = discover_models([zoo])  # the manifest is refused, named, and the rest of the run goes on
    assert not found.models and re.search(r"manifest\.json .*without '\.\.'", found.messages[0])
    save_file({"w": np.ones(2, np.float32)}, zoo / "in.safetensors")
    zoo = _zoo(tmp_path, "in.safetensors")
    (found,) = discover_models([zoo]).models
    assert found.meta.id == "m" and found.weights.resolve() == (zoo / "in.safetensors").resolve()


# -- GGUF -----------------------------------------------------------------------------------------
def _gguf_blob(kv: bytes = b"", tensors: bytes = b"", n_kv: int = 0, n_tensors: int = 0, data: bytes = b"") -> bytes:
    body = b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + kv + tensors
    return body + b"\0" * (-len(body) % 32) + data


def _gguf_str(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def test_gguf_array_with_a_lying_count_does_not_hang(tmp_path):
    pytest.importorskip("gguf")
    path = tmp_path / "count.gguf"  # an array of 2**40 uint8 with no items: the library looped per item
    path.write_bytes(_gguf_blob(kv=_gguf_str(b"k") + struct.pack("<IIQ", 9, 0, 2**40), n_kv=1))
    with _no_hang():
        _refused(path, "runs past the end of the file")


def test_gguf_zero_element_tensors_are_read(tmp_path):
    pytest.importorskip("gguf")
    records = b"".join(_gguf_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
                       + struct.pack("<IQ", ggml_type, 0) for name, dims, ggml_type in
                       [(b"q", [0], 2), (b"f", [0, 3], 0)])  # Q4_0 of 0 values, F32 of shape (3, 0)
    path = tmp_path / "empty.gguf"
    path.write_bytes(_gguf_blob(tensors=records, n_tensors=2, data=b"\0" * 32))
    with open_weights(path) as wf:
        assert wf.read("q").shape == (0,) and wf.read("f").shape == (3, 0)


def test_gguf_unknown_tensor_type_is_refused(tmp_path):
    pytest.importorskip("gguf")
    record = _gguf_str(b"w") + struct.pack("<IQIQ", 1, 4, 99, 0)
    path = tmp_path / "type.gguf"
    path.write_bytes(_gguf_blob(tensors=record, n_tensors=1, data=b"\0" * 32))
    _refused(path, "not a readable GGUF file")


def test_a_fifo_given_as_the_weights_file_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.safetensors")
    with _no_hang():
        _refused(tmp_path / "pipe.safetensors", "not a regular file")


def test_onnx_scale_of_three_dimensions_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    graph = helper.make_graph([helper.make_node("DequantizeLinear", ["W", "s"], ["w"])], "g", [], [], initializer=[
        numpy_helper.from_array(np.ones((2, 4), np.int8), "W"),
        numpy_helper.from_array(np.ones((2, 1, 2), np.float32), "s")])  # found by benchmarks/fuzz_weights.py
    path = tmp_path / "s3.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    _refused(path, "(s)", "has more than 2 dimensions")


def test_names_with_control_characters_stay_on_one_line(tmp_path):
    save_file({"a": np.ones(2, np.float32)}, tmp_path / "s.safetensors")
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": "s.safetensors", "\n": "s.safetensors"}}))
    error = _refused(index, "weight_map places tensor '\\n'")  # found by benchmarks/fuzz_weights.py
    assert error.where == "\n"  # the attribute keeps the name as it is


def test_onnx_name_that_is_not_utf8(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    graph = helper.make_graph([], "g", [], [], initializer=[numpy_helper.from_array(np.ones(4, np.float32), "Z")])
    blob = helper.make_model(graph).SerializeToString()
    assert blob.count(b"B\x01Z") == 1  # the initializer's name field (protobuf field 8, length 1)
    path = tmp_path / "utf8.onnx"
    path.write_bytes(blob.replace(b"B\x01Z", b"B\x01\xf3"))  # found by benchmarks/fuzz_weights.py
    _refused(path, "name is not valid UTF-8: b'\\xf3'")


# -- found by the 30-minute fuzz run (benchmarks/fuzz_weights.py) ---------------------------------
def test_a_shard_named_with_a_newline_gives_a_one_line_error(tmp_path):
    from weight_fuzz import check_shard_index, write_shards

    write_shards(tmp_path)
    check_shard_index(b'{"metadata": {}, "weight_map": {"a": "\\n", "b": "s1.safetensors", "c": "s2.safetensors"}}',
                      tmp_path)


def test_a_gguf_tensor_no_array_can_hold_is_refused(tmp_path):
    pytest.importorskip("gguf")
    from weight_fuzz import check_gguf

    # one tensor "t0" whose declared dimensions no array can hold, even with no element
    blob = bytes.fromhex(
        "474755460300000001000000000000000000000000000000020000000000000074300300000000000000000000004000"
        "000000000000000000000000800001000000000000000000000000000000000000000000000000000000000000000000"
    )
    check_gguf(blob, tmp_path)


def test_an_onnx_matmul_without_outputs_is_read_or_refused_cleanly(tmp_path):
    pytest.importorskip("onnx")
    from weight_fuzz import check_onnx, prepare_onnx_folder

    prepare_onnx_folder(tmp_path)  # found by the second 30-minute fuzz run: a MatMul with no output
    check_onnx(b'\x08\x08:\x82\x01\n\x1b\n\x01W\n\x07fc.bias\r\x01W\x12\x02h1"\x06MatMul\n\x0f\n\x01W\x12\x02h1"'
               b'\x06MatMul\n\x15\n\x01W\n\x01W\n\x01W\x12\x02h1"\x06MatMul\n\x18\n\x01W\n\x01W\n\x01W\n\x01W\x12\x02h1"'
               b'\x06MatMul\x12\x01g*\x0b\x10\x01B\x01WJ\x04\x00\x00\x00\x00*\x11\x10\x01B\x07fc.biasJ\x04\x00\x00\x00\x00'
               b'B\x02\x10\x1c', tmp_path)
