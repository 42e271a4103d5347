"""bitsandbytes NF4 / FP4 weights, written as ``QuantState.as_dict(packed=True)`` lays them out.

The quantiser below follows bitsandbytes' description (blockwise absmax over the flattened tensor,
nearest code, two codes per byte with the first in the high nibble; double quantisation: absmax
minus its mean, quantised in blocks with an 8-bit code book) and is independent of the reader.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from modelatlas.errors import InputError
from modelatlas.weights import detect_quantization, open_weights, signature

# QLoRA (Dettmers et al. 2023), Appendix E
NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], np.float32)
# bitsandbytes' FP4 (sign bit, then 2 exponent and 1 mantissa bits), divided by its largest value
FP4 = (np.array([0, 0.0625, 8, 12, 4, 6, 2, 3, -0.0, -0.0625, -8, -12, -4, -6, -2, -3]) / 12).astype(np.float32)
# stands in for bitsandbytes' 256-value dynamic map: any sorted signed code book of 256 values
DYNAMIC = np.sort(np.concatenate([-np.geomspace(1e-3, 1, 128), [0.0], np.geomspace(1e-3, 1, 127)])).astype(np.float32)
TORCH_DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32}


def _nearest(values: np.ndarray, code: np.ndarray) -> np.ndarray:
    return np.abs(values[:, None] - code[None, :]).argmin(axis=1).astype(np.uint8)


def _blockwise(flat: np.ndarray, blocksize: int, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and per-block absmax of a flat float32 vector (the last block may be short)."""
    absmax = np.array([np.abs(flat[i:i + blocksize]).max() for i in range(0, flat.size, blocksize)], np.float32)
    scale = np.repeat(absmax, blocksize)[: flat.size]
    scaled = np.divide(flat, scale, out=np.zeros_like(flat), where=scale > 0)  # an all-zero block codes as 0
    return _nearest(np.clip(scaled, -1, 1), code), absmax


def bnb_tensors(name: str, weight: np.ndarray, quant_type: str, blocksize: int, *, nested_blocksize: int | None = None,
                dtype: str = "float16") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The stored tensors of one quantised weight, and the dequantisation bitsandbytes would compute."""
    code = NF4 if quant_type == "nf4" else FP4
    flat = weight.reshape(-1).astype(np.float32)
    codes, absmax = _blockwise(flat, blocksize, code)
    padded = np.concatenate([codes, np.zeros(codes.size % 2, np.uint8)])
    state = {"quant_type": quant_type, "blocksize": blocksize, "dtype": dtype, "shape": list(weight.shape)}
    tensors = {name: (padded[0::2] << 4 | padded[1::2]).reshape(-1, 1), name + ".quant_map": code}
    scales = absmax
    if nested_blocksize is None:
        tensors[name + ".absmax"] = absmax
    else:
        offset = absmax.mean()
        qabsmax, nested_absmax = _blockwise(absmax - offset, nested_blocksize, DYNAMIC)
        tensors.update({name + ".absmax": qabsmax, name + ".nested_absmax": nested_absmax,
                        name + ".nested_quant_map": DYNAMIC})
        state.update(nested_blocksize=nested_blocksize, nested_dtype="float32", nested_offset=float(offset))
        scales = DYNAMIC[qabsmax] * np.repeat(nested_absmax, nested_blocksize)[: absmax.size] + np.float32(offset)
    tensors[f"{name}.quant_state.bitsandbytes__{quant_type}"] = np.frombuffer(json.dumps(state).encode(), np.uint8)
    values = code[codes] * np.repeat(scales.astype(np.float32), blocksize)[: flat.size]
    dequantized = values.astype(TORCH_DTYPES[dtype.removeprefix("torch.")]).astype(np.float32)
    return tensors, dequantized.reshape(weight.shape[0], -1)


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("nested_blocksize", [None, 8])
@pytest.mark.parametrize("dtype", ["float16", "torch.bfloat16", "float32"])
def test_rows_equal_reference_dequantisation(tmp_path, quant_type, nested_blocksize, dtype):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((33, 51)).astype(np.float32)  # 1683 values: 27 blocks of 64, the last short
    tensors, expected = bnb_tensors("m.q.weight", weight, quant_type, 64, nested_blocksize=nested_blocksize,
                                    dtype=dtype)
    save_file({**tensors, "m.q.bias": np.zeros(33, np.float16)}, tmp_path / "b.safetensors")
    with open_weights(tmp_path / "b.safetensors") as wf:
        assert set(wf.tensors) == {"m.q.weight", "m.q.bias"}
        info = wf.tensors["m.q.weight"]
        assert info.shape == (33, 51) and info.quantization.scheme == f"bitsandbytes-{quant_type}"
        assert info.quantization.group_size == 64 and info.quantization.bits == 4
        np.testing.assert_array_equal(wf.read("m.q.weight"), expected)
        before = wf.bytes_read
        rows = np.array([32, 0, 5, 5])  # odd columns: rows 5 and 32 start in the low nibble of a byte
        np.testing.assert_array_equal(wf.read_rows("m.q.weight", rows), expected[rows])
        assert wf.bytes_read - before < wf.stored["m.q.weight"].nbytes / 4
        report = detect_quantization(wf, sample_rows=0)
        assert report.quantized and f"bitsandbytes-{quant_type}" in report.schemes
        assert f"m.q.weight.quant_state.bitsandbytes__{quant_type}" in report.companion_tensors
    assert np.corrcoef(expected.ravel(), weight.ravel())[0, 1] > 0.9  # it is the weight, quantised


def test_a_quantised_model_keeps_its_parents_signature(tmp_path):
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((16, 32)).astype(np.float32)
    save_file({"m.q.weight": weight}, tmp_path / "p.safetensors")
    save_file(bnb_tensors("m.q.weight", weight, "nf4", 64, nested_blocksize=256)[0], tmp_path / "c.safetensors")
    with open_weights(tmp_path / "p.safetensors") as parent, open_weights(tmp_path / "c.safetensors") as child:
        assert signature(parent).key == signature(child).key


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 12), cols=st.integers(1, 40), blocksize=st.sampled_from([64, 128, 256]),
       nested=st.sampled_from([None, 2, 3, 256]), quant_type=st.sampled_from(["nf4", "fp4"]), seed=st.integers(0, 99))
def test_any_shape_and_blocksize(rows, cols, blocksize, nested, quant_type, seed):
    weight = np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)
    tensors, expected = bnb_tensors("w.weight", weight, quant_type, blocksize, nested_blocksize=nested)
    with tempfile.TemporaryDirectory() as folder:
        save_file(tensors, Path(folder) / "w.safetensors")
        with open_weights(Path(folder) / "w.safetensors") as wf:
            np.testing.assert_array_equal(wf.read("w.weight"), expected)
            pick = np.arange(rows)[::-1]
            np.testing.assert_array_equal(wf.read_rows("w.weight", pick), expected[pick])


def _state(tensors: dict, **changes) -> None:
    key = next(k for k in tensors if ".quant_state." in k)
    state = json.loads(tensors[key].tobytes())
    state.update(changes)
    tensors[key] = np.frombuffer(json.dumps(state).encode(), np.uint8)


@pytest.mark.parametrize("breakage, message", [
    (lambda t: t.__setitem__("l.weight.quant_state.bitsandbytes__nf4", np.frombuffer(b"{shape: [4, 8]", np.uint8)),
     "not valid UTF-8 JSON"),
    (lambda t: t.__setitem__("l.weight.quant_state.bitsandbytes__nf4", np.frombuffer(b"[1, 2]", np.uint8)),
     "not a JSON object"),
    (lambda t: _state(t, shape=[8, 8]), "cannot hold 64"),
    (lambda t: _state(t, shape=[4, "8"]), "not a list of sizes"),
    (lambda t: _state(t, blocksize=0), "blocksize=0 is not a positive integer"),
    (lambda t: _state(t, blocksize=16), "absmax has 1 values, expected 2 blocks"),
    (lambda t: _state(t, dtype="int8"), "dtype='int8'"),
    (lambda t: _state(t, quant_type="fp4"), "does not match"),
    (lambda t: t.__setitem__("l.weight.quant_map", NF4[:15]), "quant_map has 15 values"),
    (lambda t: t.__setitem__("l.weight.absmax", np.ones(3, np.float32)), "absmax has 3 values"),
    (lambda t: t.pop("l.weight.quant_state.bitsandbytes__nf4"), "without l.weight.quant_state.bitsandbytes__nf4"),
    (lambda t: t.pop("l.weight.absmax"), "without l.weight.absmax"),
    (lambda t: t.__setitem__("l.weight.quant_state.bitsandbytes__fp4", t["l.weight.quant_state.bitsandbytes__nf4"]),
     "both an nf4 and an fp4"),
    (lambda t: t.__setitem__("l.weight.nested_absmax", np.ones(1, np.float32)), "needs nested_absmax, nested_quant_map"),
])
def test_malformed_state_is_a_clear_error(tmp_path, breakage, message):
    tensors, _ = bnb_tensors("l.weight", np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8), "nf4", 32)
    breakage(tensors)
    save_file(tensors, tmp_path / "bad.safetensors")
    with pytest.raises(InputError, match=message) as caught:
        open_weights(tmp_path / "bad.safetensors")
    assert "bad.safetensors" in str(caught.value) and "l.weight" in str(caught.value)


@pytest.mark.parametrize("breakage, message", [
    (lambda t: t.__setitem__("l.weight.nested_quant_map", DYNAMIC[:255]), "nested_quant_map has 255 values"),
    (lambda t: t.__setitem__("l.weight.nested_absmax", np.ones(7, np.float32)), "nested_absmax has 7 values"),
    (lambda t: t.__setitem__("l.weight.absmax", t["l.weight.absmax"].astype(np.float32)), "must be uint8"),
    (lambda t: _state(t, nested_offset="0.1"), "nested_offset='0.1' is not a number"),
])
def test_malformed_nested_state_is_a_clear_error(tmp_path, breakage, message):
    tensors, _ = bnb_tensors("l.weight", np.linspace(-1, 1, 256, dtype=np.float32).reshape(8, 32), "nf4", 32,
                             nested_blocksize=4)
    breakage(tensors)
    save_file(tensors, tmp_path / "bad.safetensors")
    with pytest.raises(InputError, match=message) as caught:
        open_weights(tmp_path / "bad.safetensors")
    assert "bad.safetensors" in str(caught.value) and "l.weight" in str(caught.value)


def test_other_quant_storage_is_read_as_bytes(tmp_path):
    """``quant_storage=torch.bfloat16`` (FSDP) stores the same bytes under another dtype."""
    weight = np.random.default_rng(2).standard_normal((8, 24)).astype(np.float32)
    tensors, expected = bnb_tensors("w.weight", weight, "fp4", 64)
    tensors["w.weight"] = tensors["w.weight"].reshape(-1).view(ml_dtypes.bfloat16).reshape(-1, 1)
    save_file(tensors, tmp_path / "s.safetensors")
    with open_weights(tmp_path / "s.safetensors") as wf:
        assert wf.tensors["w.weight"].dtype == "BF16" and wf.tensors["w.weight"].shape == (8, 24)
        np.testing.assert_array_equal(wf.read_rows("w.weight", np.array([7, 1])), expected[[7, 1]])
