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


def test_zoo_int8_row_and_int4_group_layouts(tmp_path):
    """The layouts the zoo builder writes: I8 + ``.scale`` (out,), U8 nibbles + ``.scales`` (out, in/g)."""
    rng = np.random.default_rng(12)
    w = rng.standard_normal((8, 64)).astype(np.float32)
    scale = np.abs(w).max(1) / 127
    q8 = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    blocks = w.reshape(8, -1, 32)
    scales = np.abs(blocks).max(2) / 7
    codes = (np.clip(np.rint(blocks / scales[..., None]), -8, 7) + 8).astype(np.uint8).reshape(8, -1)
    packed = codes[:, 0::2] | (codes[:, 1::2] << 4)
    save_file({"a.weight": q8, "a.weight.scale": scale.astype(np.float32),
               "b.weight": packed, "b.weight.scales": scales.astype(np.float32)}, tmp_path / "z.safetensors")
    with open_weights(tmp_path / "z.safetensors") as wf:
        assert set(wf.tensors) == {"a.weight", "b.weight"}
        np.testing.assert_allclose(wf.read("a.weight"), q8 * scale[:, None].astype(np.float32), rtol=1e-6)
        b = wf.tensors["b.weight"]
        assert b.shape == (8, 64) and b.quantization.scheme == "int4-packed" and b.quantization.group_size == 32
        expected = (codes.astype(np.float32) - 8) * np.repeat(scales, 32, axis=1).astype(np.float32)
        np.testing.assert_allclose(wf.read("b.weight"), expected, rtol=1e-6)
        assert np.abs(wf.read("b.weight") - w).max() <= scales.max() / 2 + 1e-6


def _packed_int4_case(rng, n_in=64, out=16, group=16):
    q = rng.integers(0, 16, (n_in, out)).astype(np.uint32)
    zeros = rng.integers(1, 15, (n_in // group, out)).astype(np.uint32)
    scales = (rng.random((n_in // group, out)) + 0.1).astype(np.float16)
    g_idx = (np.arange(n_in) // group).astype(np.int32)
    weight = scales.astype(np.float32)[g_idx] * (q.astype(np.float32) - zeros.astype(np.float32)[g_idx])
    return q, zeros, scales, g_idx, weight.T  # torch layout [out, in]


def test_gptq_is_dequantised(tmp_path):
    """AutoGPTQ's packing loops, written out, read back as the weight they encode."""
    q, zeros, scales, g_idx, expected = _packed_int4_case(np.random.default_rng(10))
    qweight = np.zeros((q.shape[0] // 8, q.shape[1]), np.uint32)
    for row in range(qweight.shape[0]):
        for j in range(8):
            qweight[row] |= q[row * 8 + j] << (4 * j)
    qzeros = np.zeros((zeros.shape[0], zeros.shape[1] // 8), np.uint32)
    for col in range(qzeros.shape[1]):
        for j in range(8):
            qzeros[:, col] |= (zeros[:, col * 8 + j] - 1) << (4 * j)  # v1 format stores zeros - 1
    save_file({"m.qweight": qweight.view(np.int32), "m.qzeros": qzeros.view(np.int32), "m.scales": scales,
               "m.g_idx": g_idx, "m.bias": np.zeros(16, np.float16)}, tmp_path / "g.safetensors")
    with open_weights(tmp_path / "g.safetensors") as wf:
        assert set(wf.tensors) == {"m.weight", "m.bias"}
        info = wf.tensors["m.weight"]
        assert info.shape == (16, 64) and info.quantization.scheme == "gptq" and info.quantization.bits == 4
        np.testing.assert_array_equal(wf.read("m.weight"), expected)
        np.testing.assert_array_equal(wf.read_rows("m.weight", np.array([9, 0, 9])), expected[[9, 0, 9]])
        report = detect_quantization(wf)
        assert report.quantized and {"gptq", "gptq/awq"} <= set(report.schemes)


def test_awq_is_dequantised(tmp_path):
    from modelatlas.weights.gptq import AWQ_ORDER

    q, zeros, scales, _, expected = _packed_int4_case(np.random.default_rng(11))
    qweight = np.zeros((q.shape[0], q.shape[1] // 8), np.uint32)
    qzeros = np.zeros((zeros.shape[0], zeros.shape[1] // 8), np.uint32)
    for col in range(qweight.shape[1]):
        for i in range(8):
            qweight[:, col] |= q[:, col * 8 + AWQ_ORDER[i]] << (4 * i)
            qzeros[:, col] |= zeros[:, col * 8 + AWQ_ORDER[i]] << (4 * i)
    save_file({"m.qweight": qweight.view(np.int32), "m.qzeros": qzeros.view(np.int32), "m.scales": scales},
              tmp_path / "a.safetensors")
    with open_weights(tmp_path / "a.safetensors") as wf:
        assert wf.tensors["m.weight"].quantization.scheme == "awq"
        assert wf.tensors["m.weight"].quantization.group_size == 16
        np.testing.assert_array_equal(wf.read("m.weight"), expected)
        np.testing.assert_array_equal(wf.read_rows("m.weight", np.array([15, 2])), expected[[15, 2]])


def test_gptq_without_scales_is_a_clear_error(tmp_path):
    save_file({"m.qweight": np.zeros((4, 16), np.int32)}, tmp_path / "g.safetensors")
    with pytest.raises(InputError, match="m.qweight.*without qzeros and scales"):
        open_weights(tmp_path / "g.safetensors")


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


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_dequantised_small_layers_sit_on_a_value_grid(tmp_path, dtype):
    rng = np.random.default_rng(13)
    w = (rng.standard_normal((32, 64)) * 0.05).astype(np.float32)
    scale = np.abs(w).max(axis=1, keepdims=True) / 127
    blocks = w.reshape(32, 2, 32)
    scales = np.abs(blocks).max(2, keepdims=True) / 7
    four = (np.clip(np.rint(blocks / scales), -8, 7) * scales).reshape(32, 64)
    save_file({"a.weight": (np.rint(w / scale) * scale).astype(dtype)}, tmp_path / "q8.safetensors")
    save_file({"a.weight": four.astype(dtype)}, tmp_path / "q4.safetensors")
    save_file({"a.weight": w.astype(dtype)}, tmp_path / "o.safetensors")
    for name in ("q8", "q4"):
        with open_weights(tmp_path / f"{name}.safetensors") as wf:
            report = detect_quantization(wf)
            assert "value-grid" in report.schemes and report.quantized, name
    with open_weights(tmp_path / "o.safetensors") as wf:
        assert not detect_quantization(wf).quantized


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
