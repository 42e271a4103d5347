"""Write a Hugging Face checkpoint as GGUF, quantised, with the ``gguf`` package's own tools.

As llama.cpp's ``convert_hf_to_gguf.py`` + ``llama-quantize --pure`` would: tensor names from gguf's
table (``gguf.get_tensor_name_map``), tensors gguf does not map dropped (BERT's pooler, which
llama.cpp's BERT converter drops too), query / key rows permuted for architectures whose converter
does (:data:`modelatlas.weights.gguf_names.CONVERTER_ROW_PERMUTATIONS`), every 2-D ``*.weight``
quantised to one type, vectors kept F32, written with ``gguf.GGUFWriter``.

Types: ``Q8_0`` (``gguf.quants.quantize``). ``Q4_K``: gguf-py dequantises it but does not quantise
it, so :func:`quantize_q4_k` writes the format itself (256-value super-blocks of eight 32-value
sub-blocks, 6-bit sub-block scales and minimums under float16 super-scales, 4-bit codes — the
layout ``gguf.quants.Q4_K`` reads), with a plain min/max fit per sub-block rather than llama.cpp's
iterative search (``make_qkx2_quants``); the quantisation error is therefore somewhat larger than
llama.cpp's. Rows whose length is not a multiple of 256 fall back to ``Q5_0``, as llama.cpp's
``llama_tensor_get_type`` does for Q4_K.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

QK_K = 256


def _pack_scales(sc: np.ndarray, mn: np.ndarray) -> np.ndarray:
    """Eight 6-bit scales and minimums per block into gguf's 12-byte layout (``Q4_K.get_scale_min``)."""
    sc, mn = sc.astype(np.uint8), mn.astype(np.uint8)
    out = np.empty((sc.shape[0], 12), np.uint8)
    out[:, 0:4] = sc[:, :4] | ((sc[:, 4:] >> 4) << 6)
    out[:, 4:8] = mn[:, :4] | ((mn[:, 4:] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:] & 0x0F) | ((mn[:, 4:] & 0x0F) << 4)
    return out


def quantize_q4_k(values: np.ndarray) -> np.ndarray:
    """Q4_K blocks (uint8, 144 bytes per 256 values) of a 2-D float array whose rows are 256k long."""
    rows, cols = values.shape
    if cols % QK_K:
        raise ValueError(f"Q4_K needs rows of a multiple of {QK_K} values, not {cols}")
    x = values.astype(np.float32).reshape(-1, 8, 32)
    lo = np.minimum(x.min(2), 0.0)
    scale = (x.max(2) - lo) / 15.0
    mins = -lo
    d = scale.max(1) / 63.0
    dmin = mins.max(1) / 63.0
    d16, dmin16 = d.astype(np.float16), dmin.astype(np.float16)
    d, dmin = d16.astype(np.float32), dmin16.astype(np.float32)
    sc = np.clip(np.rint(np.divide(scale, d[:, None], out=np.zeros_like(scale), where=d[:, None] > 0)), 0, 63)
    mn = np.clip(np.rint(np.divide(mins, dmin[:, None], out=np.zeros_like(mins), where=dmin[:, None] > 0)), 0, 63)
    step = (d[:, None] * sc)[..., None]
    offset = (dmin[:, None] * mn)[..., None]
    q = np.clip(np.rint(np.divide(x + offset, step, out=np.zeros_like(x), where=step > 0)), 0, 15).astype(np.uint8)
    qs = q.reshape(-1, 4, 2, 32)
    packed = qs[:, :, 0, :] | (qs[:, :, 1, :] << 4)
    blocks = np.concatenate([d16.view(np.uint8).reshape(-1, 2), dmin16.view(np.uint8).reshape(-1, 2),
                             _pack_scales(sc, mn), packed.reshape(-1, 128)], axis=1)
    return blocks.reshape(rows, -1)


def _quantized(values: np.ndarray, qtype_name: str):
    import gguf
    from gguf import quants

    qtype = gguf.GGMLQuantizationType[qtype_name]
    if qtype_name == "Q4_K":
        if values.shape[1] % QK_K == 0:
            return quantize_q4_k(values), qtype
        qtype = gguf.GGMLQuantizationType.Q5_0
    return quants.quantize(values, qtype), qtype


def write_gguf(state: dict[str, np.ndarray], path: str | Path, *, arch: str, qtype: str, config: dict,
               name: str) -> dict[str, str]:
    """Write ``state`` (Hugging Face names) to ``path`` as GGUF; return GGUF name -> stored type.

    Parameters
    ----------
    state:
        The checkpoint's tensors.
    path:
        The ``.gguf`` file to write.
    arch:
        The GGUF architecture (``bert``, ``llama`` ...).
    qtype:
        ``Q8_0``, ``Q4_K`` (``Q5_0`` where rows do not split into 256), ``F16`` or ``F32``.
    config:
        The checkpoint's ``config.json`` (layer and head counts, norm epsilon).
    name:
        ``general.name``.
    """
    import gguf

    from modelatlas.weights.gguf_names import CONVERTER_ROW_PERMUTATIONS, name_table

    n_blocks = int(config["num_hidden_layers"])
    table = name_table(arch, n_blocks)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_block_count(n_blocks)
    writer.add_context_length(int(config.get("max_position_embeddings", 512)))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads", heads))
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_eps(float(config.get("layer_norm_eps", 1e-12)))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if qtype == "Q8_0" else gguf.LlamaFileType.MOSTLY_Q4_K_M
                         if qtype == "Q4_K" else gguf.LlamaFileType.ALL_F32)
    permuted = arch in CONVERTER_ROW_PERMUTATIONS
    written: dict[str, str] = {}
    for hf, values in sorted(state.items()):
        gname = table.get_name(hf, try_suffixes=(".weight", ".bias"))
        if gname is None or values.dtype.kind != "f":
            continue
        values = np.ascontiguousarray(values, dtype=np.float32)
        if permuted and (".q_proj." in hf or ".k_proj." in hf):
            n = heads if ".q_proj." in hf else kv_heads
            shape = values.shape
            values = values.reshape(n, 2, shape[0] // n // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
        if values.ndim == 2 and hf.endswith(".weight") and qtype not in ("F32", "F16"):
            data, stored = _quantized(values, qtype)
            writer.add_tensor(gname, data, raw_dtype=stored)
            written[gname] = stored.name
        else:
            data = values.astype(np.float16) if qtype == "F16" and values.ndim == 2 else values
            writer.add_tensor(gname, data)
            written[gname] = "F16" if data.dtype == np.float16 else "F32"
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written
