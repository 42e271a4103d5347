"""GGUF tensors under Hugging Face names: a tiny checkpoint converted as llama.cpp's converter does."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from modelatlas.errors import InputError
from modelatlas.weights import open_weights, signature

gguf = pytest.importorskip("gguf")
from gguf import quants

N_HEAD, N_KV, HEAD_DIM, HIDDEN, FFN, VOCAB = 4, 2, 8, 32, 48, 40


def hf_checkpoint(seed: int = 0, bias: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "model.norm.weight": (HIDDEN,),
              "lm_head.weight": (VOCAB, HIDDEN)}
    for b in range(2):
        p = f"model.layers.{b}."
        shapes.update({p + "self_attn.q_proj.weight": (N_HEAD * HEAD_DIM, HIDDEN),
                       p + "self_attn.k_proj.weight": (N_KV * HEAD_DIM, HIDDEN),
                       p + "self_attn.v_proj.weight": (N_KV * HEAD_DIM, HIDDEN),
                       p + "self_attn.o_proj.weight": (HIDDEN, N_HEAD * HEAD_DIM),
                       p + "mlp.gate_proj.weight": (FFN, HIDDEN), p + "mlp.up_proj.weight": (FFN, HIDDEN),
                       p + "mlp.down_proj.weight": (HIDDEN, FFN),
                       p + "input_layernorm.weight": (HIDDEN,), p + "post_attention_layernorm.weight": (HIDDEN,)})
        if bias:
            shapes.update({p + "self_attn.q_proj.bias": (N_HEAD * HEAD_DIM,),
                           p + "self_attn.k_proj.bias": (N_KV * HEAD_DIM,)})
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def converter_permute(weights: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """``LlamaModel.permute`` of llama.cpp's ``convert_hf_to_gguf.py``."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def reverse_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Back to checkpoint order, written the other way round (per head, pairs to halves)."""
    dim = weights.shape[0] // n_head
    return (weights.reshape(n_head, dim // 2, 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape))


def convert(path, hf: dict[str, np.ndarray], arch: str = "llama", qtypes: dict | None = None):
    """Write ``hf`` to GGUF the converter's way: gguf's name table, Q/K rows permuted for llama."""
    arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    table = gguf.get_tensor_name_map(arch_id, 2)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(2)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_KV)
    for name, data in hf.items():
        if arch == "llama" and ".q_proj." in name:
            data = converter_permute(data, N_HEAD, N_HEAD)
        elif arch == "llama" and ".k_proj." in name:
            data = converter_permute(data, N_HEAD, N_KV)
        gname = table.get_name(name, try_suffixes=(".weight", ".bias"))
        qtype = (qtypes or {}).get(name)
        if qtype is None:
            writer.add_tensor(gname, np.ascontiguousarray(data))
        else:
            writer.add_tensor(gname, quants.quantize(np.ascontiguousarray(data), qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_gguf_reads_back_under_hf_names_with_identical_rows(tmp_path, arch):
    hf = hf_checkpoint(bias=arch == "qwen2")
    save_file(hf, tmp_path / "model.safetensors")
    path = convert(tmp_path / "m.gguf", hf, arch)
    with open_weights(path, hf_names=()) as plain:
        assert "blk.0.attn_q.weight" in plain.tensors  # GGUF names when no name maps
        if arch == "llama":  # the file really holds permuted rows
            assert not np.array_equal(plain.read("blk.0.attn_q.weight"), hf["model.layers.0.self_attn.q_proj.weight"])
    with open_weights(path, hf_names=hf) as wf, open_weights(tmp_path / "model.safetensors") as st:
        assert set(wf.tensors) == set(hf)
        for name, values in hf.items():
            assert wf.tensors[name].shape == values.shape
            np.testing.assert_array_equal(wf.read(name), values)
            rows = np.array([values.shape[0] - 1, 0, 3]) if values.ndim == 2 else np.array([0])
            np.testing.assert_array_equal(wf.read_rows(name, rows), st.read_rows(name, rows))
        assert signature(wf).key == signature(st).key
    with open_weights(path) as canonical, open_weights(tmp_path / "model.safetensors") as st:
        assert set(canonical.tensors) == set(hf)  # gguf's table alone gives the checkpoint's names
        assert set(canonical.name_sources.values()) == {"name-table"}
        for name, values in hf.items():
            np.testing.assert_array_equal(canonical.read(name), values)
        assert signature(canonical).key == signature(st).key


def test_quantised_query_rows_are_unpermuted(tmp_path):
    hf = hf_checkpoint(1)
    q8 = gguf.GGMLQuantizationType.Q8_0
    path = convert(tmp_path / "q.gguf", hf, qtypes={"model.layers.1.self_attn.q_proj.weight": q8,
                                                    "model.layers.1.self_attn.k_proj.weight": q8})
    with open_weights(path, hf_names=()) as plain, open_weights(path, hf_names=hf) as wf:
        for part, heads in (("q", N_HEAD), ("k", N_KV)):
            stored = plain.read(f"blk.1.attn_{part}.weight")
            expected = reverse_permute(stored, heads)
            name = f"model.layers.1.self_attn.{part}_proj.weight"
            np.testing.assert_array_equal(wf.read(name), expected)
            np.testing.assert_array_equal(wf.read_rows(name, np.array([5, 2])), expected[[5, 2]])
            assert np.abs(expected - hf[name]).max() < 0.05  # the checkpoint's rows, quantised


def test_names_that_do_not_map_stay_gguf(tmp_path):
    hf = hf_checkpoint()
    path = convert(tmp_path / "m.gguf", hf)
    with open_weights(path, hf_names=["model.embed_tokens.weight", "not.a.tensor"]) as wf:
        assert "model.embed_tokens.weight" in wf.tensors and "blk.0.attn_q.weight" in wf.tensors


def test_architecture_gguf_does_not_know_keeps_gguf_names(tmp_path):
    path = convert(tmp_path / "g.gguf", {"transformer.h.0.attn.c_attn.weight": np.ones((6, 2), np.float32)}, "gpt2")
    raw = path.read_bytes().replace(b"gpt2", b"zzz9")  # same lengths: a valid file of an unknown architecture
    (tmp_path / "u.gguf").write_bytes(raw)
    with pytest.raises(InputError, match=r"u.gguf \(general.architecture\): GGUF architecture 'zzz9' is not one"):
        open_weights(tmp_path / "u.gguf", hf_names=["transformer.h.0.attn.c_attn.weight"])
    with open_weights(tmp_path / "u.gguf") as wf:  # without names it reads, under GGUF's names, and says why
        assert "blk.0.attn_qkv.weight" in wf.tensors
        assert wf.metadata["canonical_names"].startswith("none (")
    with open_weights(path) as wf:  # gpt2 is mapped (names only: its converter keeps rows)
        assert set(wf.tensors) == {"transformer.h.0.attn.c_attn.weight"}


def test_two_names_for_one_tensor_is_an_error(tmp_path):
    path = convert(tmp_path / "m.gguf", hf_checkpoint())
    with pytest.raises(InputError, match=r"m.gguf \(blk.0.attn_q.weight\): both"):
        open_weights(path, hf_names=["model.layers.0.self_attn.q_proj.weight", "layers.0.attention.wq.weight"])


@pytest.mark.parametrize("arch,prefix,qkv", [("gptneox", "gpt_neox.layers", "attention.query_key_value"),
                                             ("bloom", "transformer.h", "self_attention.query_key_value")])
def test_fused_qkv_regrouped_by_the_converter_is_put_back(tmp_path, arch, prefix, qkv):
    """GPT-NeoX / BLOOM converters regroup per-head (q, k, v) rows into Q, K, V blocks."""
    heads, dim = 4, 8
    hidden = heads * dim
    rng = np.random.default_rng(2)
    hf = {f"{prefix}.0.{qkv}.weight": rng.standard_normal((3 * hidden, hidden)).astype(np.float32),
          f"{prefix}.0.{qkv}.bias": rng.standard_normal(3 * hidden).astype(np.float32)}
    arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    table = gguf.get_tensor_name_map(arch_id, 1)
    writer = gguf.GGUFWriter(str(tmp_path / "m.gguf"), arch)
    writer.add_block_count(1)
    writer.add_head_count(heads)
    for name, data in hf.items():  # the converter's regrouping, written as llama.cpp writes it
        w = data.reshape(heads, 3, dim, -1)
        regrouped = np.concatenate([w[:, 0].reshape(hidden, -1), w[:, 1].reshape(hidden, -1),
                                    w[:, 2].reshape(hidden, -1)]).reshape(data.shape)
        writer.add_tensor(table.get_name(name, try_suffixes=(".weight", ".bias")), np.ascontiguousarray(regrouped))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with open_weights(tmp_path / "m.gguf") as wf:
        assert set(wf.tensors) == set(hf)
        for name, values in hf.items():
            np.testing.assert_array_equal(wf.read(name), values)
        name = f"{prefix}.0.{qkv}.weight"
        np.testing.assert_array_equal(wf.read_rows(name, np.array([70, 3])), hf[name][[70, 3]])
