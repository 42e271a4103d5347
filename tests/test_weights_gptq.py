"""GPTQ bit packing (2/3/4/8-bit) against AutoGPTQ's packing loops, written out."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from modelatlas.errors import InputError
from modelatlas.weights import open_weights
from modelatlas.weights.gptq import unpack_cols, unpack_rows


def pack_rows(values: np.ndarray, bits: int) -> np.ndarray:
    """AutoGPTQ ``QuantLinear.pack`` for ``qweight``: input rows into int32 words, row by row."""
    values = values.astype(np.uint32)
    words = np.zeros((values.shape[0] * bits // 32, values.shape[1]), np.uint32)
    i = row = 0
    while row < words.shape[0]:
        if bits in (2, 4, 8):
            for j in range(i, i + 32 // bits):
                words[row] |= values[j] << (bits * (j - i))
            i += 32 // bits
            row += 1
        else:  # 3 bits: 32 values in three words; values 10 and 21 are split across two
            for j in range(i, i + 10):
                words[row] |= values[j] << (3 * (j - i))
            i += 10
            words[row] |= values[i] << 30
            row += 1
            words[row] |= (values[i] >> 2) & 1
            i += 1
            for j in range(i, i + 10):
                words[row] |= values[j] << (3 * (j - i) + 1)
            i += 10
            words[row] |= values[i] << 31
            row += 1
            words[row] |= (values[i] >> 1) & 0x3
            i += 1
            for j in range(i, i + 10):
                words[row] |= values[j] << (3 * (j - i) + 2)
            i += 10
            row += 1
    return words.view(np.int32)


def pack_cols(values: np.ndarray, bits: int) -> np.ndarray:
    """AutoGPTQ's ``qzeros`` packing: the same loop along columns."""
    return np.ascontiguousarray(pack_rows(values.T, bits).T)


@settings(max_examples=60, deadline=None)
@given(bits=st.sampled_from([2, 3, 4, 8]), groups=st.integers(1, 3), cols=st.integers(1, 5), seed=st.integers(0, 999))
def test_unpacking_inverts_autogptq_packing(bits, groups, cols, seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 1 << bits, (32 * groups, cols)).astype(np.uint32)
    np.testing.assert_array_equal(unpack_rows(pack_rows(values, bits), bits), values)
    np.testing.assert_array_equal(unpack_cols(pack_cols(values.T, bits), bits), values.T)


def test_three_bit_words_straddle_boundaries():
    """Value 10 puts its top bit in word 1, value 21 its top two bits in word 2."""
    values = np.zeros((32, 1), np.uint32)
    values[10] = 0b100
    values[21] = 0b110
    words = pack_rows(values, 3).view(np.uint32)[:, 0]
    assert words.tolist() == [0, 1, 0b11]
    np.testing.assert_array_equal(unpack_rows(words[:, None].view(np.int32), 3), values)


def _gptq_file(path, bits, n_in=64, out=32, group=32, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 1 << bits, (n_in, out)).astype(np.uint32)
    zeros = rng.integers(1, 1 << bits, (n_in // group, out)).astype(np.uint32)
    scales = (rng.random((n_in // group, out)) + 0.1).astype(np.float16)
    g_idx = (np.arange(n_in) // group).astype(np.int32)
    save_file({"m.qweight": pack_rows(q, bits), "m.qzeros": pack_cols(zeros - 1, bits),  # v1: zeros - 1
               "m.scales": scales, "m.g_idx": g_idx}, path)
    weight = scales.astype(np.float32)[g_idx] * (q.astype(np.float32) - zeros.astype(np.float32)[g_idx])
    return weight.T


@pytest.mark.parametrize("bits", [2, 3, 8])
def test_gptq_file_is_dequantised(tmp_path, bits):
    expected = _gptq_file(tmp_path / "g.safetensors", bits)
    with open_weights(tmp_path / "g.safetensors") as wf:
        info = wf.tensors["m.weight"]
        assert info.shape == (32, 64) and info.quantization.bits == bits
        np.testing.assert_array_equal(wf.read("m.weight"), expected)
        np.testing.assert_array_equal(wf.read_rows("m.weight", np.array([31, 0, 7])), expected[[31, 0, 7]])


def test_gptq_qzeros_of_the_wrong_width_is_a_clear_error(tmp_path):
    _gptq_file(tmp_path / "g.safetensors", 3)
    from safetensors.numpy import load_file

    tensors = load_file(tmp_path / "g.safetensors")
    tensors["m.qzeros"] = tensors["m.qzeros"][:, :2]
    save_file(tensors, tmp_path / "bad.safetensors")
    with pytest.raises(InputError, match=r"bad.safetensors \(m.qweight\): qzeros \[2, 2\] does not hold 3-bit"):
        open_weights(tmp_path / "bad.safetensors")
