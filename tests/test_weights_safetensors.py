"""safetensors reading: lazy rows, shards, companions (int8 / 4-bit), bad headers."""

from __future__ import annotations

import json
import struct
import warnings

import numpy as np
import pytest
from safetensors.numpy import save_file

from modelatlas.errors import InputError
from modelatlas.weights import NonFiniteWeightsWarning, content_hash, detect_quantization, open_weights, signature


def _model(rng, scale=1.0):
    return {"layer.0.weight": (rng.standard_normal((64, 32)) * scale).astype(np.float32),
            "layer.0.bias": rng.standard_normal(64).astype(np.float32),
            "layer.1.weight": rng.standard_normal((16, 64)).astype(np.float16),
            "pos_ids": np.arange(8, dtype=np.int64)}


def test_read_and_rows_match_full_tensor(tmp_path):
    rng = np.random.default_rng(0)
    tensors = _model(rng)
    save_file(tensors, tmp_path / "m.safetensors")
    with open_weights(tmp_path / "m.safetensors") as wf:
        assert set(wf.tensors) == set(tensors)
        assert wf.tensors["layer.1.weight"].shape == (16, 64)
        assert wf.tensors["layer.1.weight"].dtype == "F16"
        header_bytes = wf.bytes_read
        rows = np.array([7, 2, 2, 63])
        got = wf.read_rows("layer.0.weight", rows)
        np.testing.assert_array_equal(got, tensors["layer.0.weight"][rows])
        # only the three distinct rows were read
        assert wf.bytes_read - header_bytes == 3 * 32 * 4
        np.testing.assert_array_equal(wf.read("layer.1.weight"), tensors["layer.1.weight"].astype(np.float32))
        with pytest.raises(InputError, match="out of range"):
            wf.read_rows("layer.0.weight", np.array([64]))
        with pytest.raises(InputError, match="no tensor named"):
            wf.read("nope")


def test_bfloat16_is_read(tmp_path):
    import ml_dtypes

    values = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    save_file({"w": values.astype(ml_dtypes.bfloat16)}, tmp_path / "b.safetensors")
    with open_weights(tmp_path / "b.safetensors") as wf:
        assert wf.tensors["w"].dtype == "BF16"
        np.testing.assert_allclose(wf.read("w"), values, atol=1e-2)


def test_sharded_index(tmp_path):
    rng = np.random.default_rng(1)
    tensors = _model(rng)
    names = sorted(tensors)
    save_file({n: tensors[n] for n in names[:2]}, tmp_path / "model-00001-of-00002.safetensors")
    save_file({n: tensors[n] for n in names[2:]}, tmp_path / "model-00002-of-00002.safetensors")
    weight_map = {n: f"model-0000{1 if i < 2 else 2}-of-00002.safetensors" for i, n in enumerate(names)}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    single = tmp_path / "single"
    single.mkdir()
    save_file(tensors, single / "model.safetensors")
    with open_weights(tmp_path) as sharded, open_weights(single) as whole:
        assert sharded.format == "safetensors"
        assert signature(sharded).key == signature(whole).key
        assert content_hash(sharded).model == content_hash(whole).model
        for n in names:
            np.testing.assert_array_equal(sharded.read(n), whole.read(n))
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(InputError, match="1 of 2 shards are missing: model-00002-of-00002"):
        open_weights(tmp_path / "model.safetensors.index.json")


def test_index_placing_tensor_in_wrong_shard(tmp_path):
    save_file({"a": np.zeros(2, np.float32)}, tmp_path / "s1.safetensors")
    save_file({"b": np.zeros(2, np.float32)}, tmp_path / "s2.safetensors")
    (tmp_path / "m.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "s2.safetensors", "b": "s2.safetensors"}}))
    with pytest.raises(InputError, match="places tensor 'a' in s2.safetensors"):
        open_weights(tmp_path / "m.safetensors.index.json")


def test_int8_per_row_companion_is_dequantised(tmp_path):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((32, 48)).astype(np.float32)
    scale = np.abs(w).max(axis=1, keepdims=True) / 127
    q = np.round(w / scale).astype(np.int8)
    save_file({"fc.weight": q, "fc.weight_scale": scale.astype(np.float32),
               "fc.bias": np.zeros(32, np.float32)}, tmp_path / "q.safetensors")
    save_file({"fc.weight": w, "fc.bias": np.zeros(32, np.float32)}, tmp_path / "f.safetensors")
    with open_weights(tmp_path / "q.safetensors") as qf, open_weights(tmp_path / "f.safetensors") as ff:
        assert set(qf.tensors) == {"fc.weight", "fc.bias"}
        info = qf.tensors["fc.weight"]
        assert info.quantization.scheme == "i8-affine" and info.quantization.granularity == "row"
        np.testing.assert_allclose(qf.read("fc.weight"), w, atol=float(scale.max()) / 2 + 1e-6)
        np.testing.assert_array_equal(qf.read_rows("fc.weight", np.array([3, 1])), qf.read("fc.weight")[[3, 1]])
        assert signature(qf).key == signature(ff).key  # a quantised child stays comparable
        report = detect_quantization(qf)
        assert report.quantized and "i8-affine" in report.schemes
        assert not detect_quantization(ff).quantized


def test_bitsandbytes_int8_scb(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 16)).astype(np.float32)
    scb = np.abs(w).max(axis=1)
    q = np.round(w / scb[:, None] * 127).astype(np.int8)
    save_file({"l.weight": q, "l.SCB": scb.astype(np.float32)}, tmp_path / "b.safetensors")
    with open_weights(tmp_path / "b.safetensors") as wf:
        assert set(wf.tensors) == {"l.weight"}
        np.testing.assert_allclose(wf.read("l.weight"), w, atol=scb.max() / 254 + 1e-6)
        assert "bitsandbytes-int8" in detect_quantization(wf).schemes


def test_packed_4bit_group_dequantised(tmp_path):
    rng = np.random.default_rng(4)
    rows, cols, group = 6, 32, 8
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    g = w.reshape(rows, cols // group, group)
    scale = np.abs(g).max(axis=2) / 7
    q = np.clip(np.round(g / scale[..., None]), -8, 7).astype(np.int8).reshape(rows, cols)
    u = (q + 8).astype(np.uint8)
    packed = (u[:, 0::2] | (u[:, 1::2] << 4)).astype(np.uint8)
    save_file({"h.weight_packed": packed, "h.weight_scale": scale.astype(np.float32),
               "h.weight_shape": np.array([rows, cols], np.int64)}, tmp_path / "p.safetensors")
    with open_weights(tmp_path / "p.safetensors") as wf:
        info = wf.tensors["h.weight"]
        assert info.shape == (rows, cols) and info.quantization.group_size == group
        expected = q.astype(np.float32) * np.repeat(scale, group, axis=1)
        np.testing.assert_allclose(wf.read("h.weight"), expected, rtol=1e-6)
        np.testing.assert_allclose(wf.read_rows("h.weight", np.array([5, 0])), expected[[5, 0]], rtol=1e-6)


def test_gptq_names_are_detected_not_dequantised(tmp_path):
    save_file({"m.qweight": np.zeros((4, 16), np.int32), "m.qzeros": np.zeros((1, 2), np.int32),
               "m.scales": np.ones((1, 16), np.float16), "m.g_idx": np.zeros(32, np.int32)},
              tmp_path / "g.safetensors")
    with open_weights(tmp_path / "g.safetensors") as wf:
        assert wf.tensors["m.weight"].shape == (16, 32)
        report = detect_quantization(wf)
        assert report.quantized and "gptq" in report.schemes and "gptq/awq" in report.schemes
        with pytest.raises(InputError, match="gptq packed layout is recognised but not dequantised"):
            wf.read("m.weight")


def test_config_quantization_config(tmp_path):
    save_file({"w": np.ones((4, 4), np.float16)}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "awq"}}))
    with open_weights(tmp_path) as wf:
        report = detect_quantization(wf)
        assert report.quantized and "config:awq" in report.schemes and report.low_precision


def test_dequantised_floats_have_few_unique_values(tmp_path):
    rng = np.random.default_rng(5)
    w = rng.standard_normal((64, 1024)).astype(np.float32)
    scale = np.abs(w).max(axis=1, keepdims=True) / 127
    save_file({"a.weight": (np.round(w / scale) * scale).astype(np.float32)}, tmp_path / "d.safetensors")
    save_file({"a.weight": w}, tmp_path / "o.safetensors")
    with open_weights(tmp_path / "d.safetensors") as d, open_weights(tmp_path / "o.safetensors") as o:
        assert "few-unique-values" in detect_quantization(d).schemes
        assert not detect_quantization(o).quantized


def test_non_finite_weights_warn_with_file_and_tensor(tmp_path):
    w = np.ones((3, 3), np.float32)
    w[1, 1] = np.nan
    w[2, 0] = np.inf
    save_file({"bad.weight": w}, tmp_path / "n.safetensors")
    with open_weights(tmp_path / "n.safetensors") as wf:
        with pytest.warns(NonFiniteWeightsWarning, match=r"n\.safetensors \(bad\.weight\): 1 NaN and 1 infinite"):
            wf.read("bad.weight")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            wf.read_rows("bad.weight", np.array([0]))  # warned once per tensor


def _raw_file(path, header: dict | bytes, data: bytes = b"", declared: int | None = None):
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob) if declared is None else declared) + blob + data)
    return path


@pytest.mark.parametrize("header, data, declared, message", [
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, None, "beyond the 4 data bytes"),
    ({"w": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, None, "unknown dtype 'Q9'"),
    ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, None, "needs 12 bytes"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, None, "'a' and 'b' overlap"),
    ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b"", None, "non-negative"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}, b"\0" * 8, None, "reversed"),
    ({"w": {"dtype": "F32", "shape": [1]}}, b"", None, "lacks data_offsets"),
    (b"{not json", b"", None, "not valid UTF-8 JSON"),
    (b"[1, 2]", b"", None, "JSON list, not an object"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, 10**6, "runs past the end"),
])
def test_bad_headers_name_file_and_tensor(tmp_path, header, data, declared, message):
    path = _raw_file(tmp_path / "bad.safetensors", header, data, declared)
    with pytest.raises(InputError, match=message) as err:
        open_weights(path)
    assert "bad.safetensors" in str(err.value)


def test_truncated_file(tmp_path):
    rng = np.random.default_rng(6)
    save_file(_model(rng), tmp_path / "m.safetensors")
    blob = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(blob[:-100])
    with pytest.raises(InputError, match="cut.safetensors.*(beyond|needs)"):
        open_weights(tmp_path / "cut.safetensors")
    (tmp_path / "tiny.safetensors").write_bytes(blob[:5])
    with pytest.raises(InputError, match="truncated safetensors file"):
        open_weights(tmp_path / "tiny.safetensors")


def test_folder_with_several_unindexed_files_is_ambiguous(tmp_path):
    for name in ("a", "b"):
        save_file({"w": np.zeros(1, np.float32)}, tmp_path / f"{name}.safetensors")
    with pytest.raises(InputError, match="2 files match"):
        open_weights(tmp_path)


def test_content_hash_spots_duplicates_only(tmp_path):
    rng = np.random.default_rng(7)
    tensors = _model(rng)
    save_file(tensors, tmp_path / "a.safetensors")
    save_file(dict(reversed(list(tensors.items()))), tmp_path / "b.safetensors", metadata={"x": "y"})
    changed = dict(tensors)
    changed["layer.0.bias"] = changed["layer.0.bias"].copy()
    changed["layer.0.bias"][0] += 1e-3
    save_file(changed, tmp_path / "c.safetensors")
    hashes = {}
    for name in "abc":
        with open_weights(tmp_path / f"{name}.safetensors") as wf:
            hashes[name] = content_hash(wf)
    assert hashes["a"].model == hashes["b"].model
    assert hashes["a"].model != hashes["c"].model
    differing = {n for n in hashes["a"].tensors if hashes["a"].tensors[n] != hashes["c"].tensors[n]}
    assert differing == {"layer.0.bias"}
