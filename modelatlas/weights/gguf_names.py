"""Hugging Face names (and row order) for the tensors of a GGUF file, from gguf's own name table.

``gguf.get_tensor_name_map(arch, n_blocks)`` maps checkpoint names to GGUF names for every
architecture gguf knows (``gguf.MODEL_TENSORS``); it gathers many conventions (Hugging Face, Meta's
``.pth``, other families), so each GGUF name has many sources (``blk.0.attn_q`` ←
``model.layers.0.self_attn.q_proj``, ``layers.0.attention.wq`` ...). Two ways back:

- :func:`hf_name_map`: given a Hugging Face tensor list (e.g. a relative's), map each of those names
  in the direction the table defines — as transformers' GGUF loader does with a model's state-dict
  names — and invert that; two given names landing on one GGUF name are an error, never a choice.
- :func:`canonical_names`: without such a list, pick for each GGUF tensor *one* source name per
  architecture (:func:`preferred_sources`). For the architectures of :data:`HF_TREES` the
  Hugging Face module tree is known (``model.layers.{bid}.`` + ``model.`` for Llama-like decoders,
  ``encoder.layer.{bid}.`` + ``embeddings.`` for BERT ...); in that tree a module name of Hugging
  Face's layers of that family (GPT-2's ``attn.c_attn`` and BLOOM's ``self_attention.query_key_value``
  share ``transformer.h.{bid}.``; gguf lists ``residual_layernorm`` before Llama's
  ``post_attention_layernorm``), else the first in gguf's own order. For every
  other architecture gguf maps, the tree covering the most of its block tensors (then earliest in
  gguf's order) is taken, then the prefix of that tree, then the prefix most of its other tensors
  share: consistent with gguf's table (each chosen name maps back to its GGUF name, tested for
  every architecture), but not checked to be the checkpoint's own names; a relative's names
  (:func:`hf_name_map`) settle it when charting.

Rows. llama.cpp's converter (``convert_hf_to_gguf.py``, ``LlamaModel.modify_tensors`` with
``undo_permute`` and the converters derived from it) reorders the rows of ``q_proj`` / ``k_proj``
per head, ``W.reshape(n_head, 2, rows / n_head / 2, ...).swapaxes(1, 2)``, with ``n_head_kv`` heads
for ``k_proj`` when it differs; GPT-NeoX's and BLOOM's converters regroup the fused QKV rows
(:data:`QKV_REGROUPED`); :func:`hf_row_order` undoes both. Other converters keep rows as the
checkpoint has them (names only), except those listed in :data:`REARRANGED` (falcon's QKV), whose
tensors keep their GGUF names, so they are never compared row for row under a wrong order.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

import numpy as np

from modelatlas.errors import InputError

_QK = {"attn_q": ("attention.head_count",), "attn_k": ("attention.head_count_kv", "attention.head_count")}
#: GGUF architectures whose converter permutes query / key rows llama-style (``LlamaModel`` and the
#: converters that reuse its ``modify_tensors``: Granite, Granite-MoE, DeciLM, MiniCPM, Baichuan's
#: ``_reverse_hf_permute``): tensor kind -> metadata keys of the head count its rows are permuted with.
CONVERTER_ROW_PERMUTATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    arch: _QK for arch in ("llama", "granite", "granitemoe", "deci", "minicpm", "baichuan")}
#: Architectures whose converter regroups the fused ``query_key_value`` rows (weight and bias) from
#: per-head ``(q, k, v)`` triples (transformers' GPT-NeoX and BLOOM layout) into Q, K, V blocks
#: (``GPTNeoXModel`` / ``BloomModel.modify_tensors``: ``reshape(n_head, 3, head_dim, ...)``, then
#: ``cat(w[:, 0], w[:, 1], w[:, 2])``); :func:`hf_row_order` undoes it.
QKV_REGROUPED: dict[str, str] = {"gptneox": "attention.head_count", "bloom": "attention.head_count"}
#: Architectures whose converter reorders rows in ways not undone here: GGUF tensor kind -> why.
#: These keep their GGUF names.
REARRANGED: dict[str, dict[str, str]] = {
    "falcon": {"attn_qkv": "query_key_value rows regrouped per KV group"},
}
#: Within one prefix, Hugging Face's name of the output head before gguf's first entry (GPT-NeoX's
#: ``embed_out``), the only non-block tensor where gguf's own order puts another family first.
_HF_FIRST = ("lm_head",)
#: Module names of transformers' decoder layers per family, which gguf may list after other
#: families' names under the same tree (``residual_layernorm`` before ``post_attention_layernorm``).
_DECODER_LEAVES = ("input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                   "self_attn.v_proj", "self_attn.o_proj", "self_attn.q_norm", "self_attn.k_norm",
                   "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "pre_feedforward_layernorm",
                   "post_feedforward_layernorm", "mlp.gate", "block_sparse_moe.gate")
_GPT2_LEAVES = ("ln_1", "ln_2", "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "wte", "wpe", "ln_f")
_BLOOM_LEAVES = ("input_layernorm", "post_attention_layernorm", "self_attention.query_key_value",
                 "self_attention.dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h", "word_embeddings",
                 "word_embeddings_layernorm", "ln_f")
_GPTJ_LEAVES = ("ln_1", "attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj", "mlp.fc_in", "mlp.fc_out")
_DECODER = ("model.layers.", ("model.", ""), _DECODER_LEAVES)
#: Hugging Face module trees (block tree, prefixes of the other tensors in preference order, module
#: names of a block) of architectures whose checkpoint names are known; gguf's order settles the rest.
HF_TREES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    **{a: _DECODER for a in ("llama", "llama4", "mistral3", "qwen2", "qwen2moe", "qwen2vl", "qwen3", "qwen3moe",
                             "gemma", "gemma2", "gemma3", "phi3", "granite", "granitemoe", "olmo", "olmo2",
                             "olmoe", "stablelm", "starcoder2", "deci", "minicpm", "command-r", "cohere2",
                             "deepseek", "deepseek2", "smollm3", "internlm2", "exaone4", "arcee", "ernie4_5")},
    **{a: ("encoder.layer.", ("embeddings.", ""), ()) for a in ("bert", "jina-bert-v2")},
    **{a: ("transformer.h.", ("transformer.", ""), _GPT2_LEAVES) for a in ("gpt2", "starcoder")},
    **{a: ("transformer.h.", ("transformer.", ""), _BLOOM_LEAVES) for a in ("bloom", "falcon")},
    "gptj": ("transformer.h.", ("transformer.", ""), _GPTJ_LEAVES),
    "exaone": ("transformer.h.", ("transformer.", ""), ()),
    "gptneox": ("gpt_neox.layers.", ("gpt_neox.", ""), ()),
}
_BLOCK_TENSOR = re.compile(r"^blk\.(?P<bid>\d+)\.(?P<kind>[a-z0-9_.]+?)\.(weight|bias)$")
_SUFFIXES = (".weight", ".bias")


def _arch_id(arch: object, path: str):
    import gguf

    found = next((k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch), None)
    if found is None:
        raise InputError(f"GGUF architecture {arch!r} is not one gguf {_gguf_version()} maps "
                         f"({len(gguf.MODEL_ARCH_NAMES)} known): its tensors keep their GGUF names",
                         path=path, where="general.architecture")
    return found


def _gguf_version() -> str:
    import importlib.metadata as md

    try:
        return md.version("gguf")
    except md.PackageNotFoundError:
        return "?"


def _block_count(metadata: dict, arch: str, path: str) -> int:
    n_blocks = metadata.get(f"{arch}.block_count")
    if not isinstance(n_blocks, int) or isinstance(n_blocks, bool) or not 0 <= n_blocks <= 100_000:
        raise InputError(f"no valid {arch}.block_count in the GGUF metadata: cannot map block names",
                         path=path, where=f"{arch}.block_count")
    return n_blocks


@lru_cache(maxsize=64)
def name_table(arch: str, n_blocks: int):
    """``gguf``'s ``TensorNameMap`` of an architecture, built without side effects.

    ``TensorNameMap.__init__`` merges an architecture's own block names into the class-wide table
    (``block_mappings_cfg.update``), so that building ``arctic``'s map once renames every later
    architecture's ``ffn_norm`` to ``residual_layernorm``; the class table is restored afterwards.
    """
    from gguf.tensor_mapping import TensorNameMap

    shared = TensorNameMap.block_mappings_cfg
    pristine = _pristine_blocks()
    try:
        shared.clear()
        shared.update(pristine)
        return TensorNameMap(_arch_id(arch, ""), n_blocks)
    finally:
        shared.clear()
        shared.update(pristine)


@lru_cache(maxsize=1)
def _pristine_blocks() -> dict:
    """The class-wide block names as gguf defines them (taken before any map is built here)."""
    from gguf.tensor_mapping import TensorNameMap

    return dict(TensorNameMap.block_mappings_cfg)


def hf_name_map(metadata: dict, gguf_names: Iterable[str], hf_names: Iterable[str], *, path: str = ""
                ) -> dict[str, str]:
    """GGUF tensor name -> Hugging Face name, for the GGUF tensors one of ``hf_names`` maps to.

    Parameters
    ----------
    metadata:
        The GGUF key/values (``general.architecture``, ``<arch>.block_count``).
    gguf_names:
        The file's tensor names.
    hf_names:
        The Hugging Face tensor names to expose (e.g. the parent checkpoint's).
    path:
        The file, for error messages.

    Raises
    ------
    InputError
        An architecture gguf does not know, no block count, or two names for one GGUF tensor.
    """
    arch = metadata.get("general.architecture")
    _arch_id(arch, path)
    table = name_table(arch, _block_count(metadata, arch, path))
    wanted = set(gguf_names) - _rearranged(arch, gguf_names)
    out: dict[str, str] = {}
    for hf in sorted(set(hf_names)):
        name = table.get_name(hf, try_suffixes=_SUFFIXES)
        if name not in wanted:
            continue
        if name in out:
            raise InputError(f"both {out[name]!r} and {hf!r} map to this tensor", path=path, where=name)
        out[name] = hf
    return out


def _rearranged(arch: str, gguf_names: Iterable[str]) -> set[str]:
    kinds = REARRANGED.get(arch, {})
    return {n for n in gguf_names if (m := _BLOCK_TENSOR.match(n)) and m["kind"] in kinds}


def _prefix(source: str) -> str:
    """The module path above a source name's last component (``model.`` of ``model.norm``)."""
    return source.rsplit(".", 1)[0] + "." if "." in source else ""


@lru_cache(maxsize=256)
def preferred_sources(arch: str) -> dict[str, str]:
    """GGUF tensor-kind name (``blk.{bid}.attn_q``, ``token_embd``) -> the source name chosen for it.

    See the module docstring for the rule. Block sources keep ``{bid}``.
    """
    import gguf
    from gguf.tensor_mapping import TensorNameMap

    kinds = set(gguf.MODEL_TENSORS[_arch_id(arch, "")])
    block_cfg = dict(_pristine_blocks())
    block_cfg.update(TensorNameMap.arch_block_mappings_cfg.get(_arch_id(arch, ""), {}))
    blocks = {k: list(dict.fromkeys(v)) for k, v in block_cfg.items() if k in kinds}
    others = {k: list(dict.fromkeys(v)) for k, v in TensorNameMap.mappings_cfg.items() if k in kinds}
    # the block tree: most block kinds covered, then earliest in gguf's order, then by name
    trees: dict[str, list[int]] = {}
    for sources in blocks.values():
        firsts: dict[str, int] = {}
        for i, s in enumerate(sources):
            if "{bid}" in s:
                firsts.setdefault(s.split("{bid}")[0], i)
        for tree, i in firsts.items():
            trees.setdefault(tree, []).append(i)
    hint_tree, hint_prefixes, hint_leaves = HF_TREES.get(arch, ("", (), ()))
    tree_rank = sorted(trees, key=lambda t: (t != hint_tree, -len(trees[t]), sum(trees[t]), t))
    top = _prefix(tree_rank[0].rstrip(".")) if tree_rank else ""
    preferred = hint_prefixes or (top,)
    coverage: dict[str, int] = {}
    for sources in others.values():
        for p in {_prefix(s) for s in sources}:
            coverage[p] = coverage.get(p, 0) + 1
    prefix_rank = sorted(coverage, key=lambda p: (preferred.index(p) if p in preferred else len(preferred),
                                                  -coverage[p], p))
    out: dict[str, str] = {}
    for kind, sources in blocks.items():
        ranked = [t for t in tree_rank if any(s.startswith(t) for s in sources)]
        if ranked:  # in the tree: a known Hugging Face module name, else gguf's order
            inside = [s for s in sources if s.startswith(ranked[0])]
            known = [s for s in inside if s[len(ranked[0]):].split(".", 1)[-1] in hint_leaves]
            out[gguf.TENSOR_NAMES[kind]] = (known or inside)[0]
    for kind, sources in others.items():
        if not sources:
            continue
        hinted = [s for s in sources if s in _HF_FIRST or s[len(_prefix(s)):] in hint_leaves]
        # a known module name in the best prefix that has one, else gguf's first in the best prefix
        out[gguf.TENSOR_NAMES[kind]] = min(hinted or sources, key=lambda s: prefix_rank.index(_prefix(s)))
    return out


def canonical_names(metadata: dict, gguf_names: Iterable[str], *, path: str = "") -> dict[str, str]:
    """GGUF tensor name -> canonical Hugging Face name, for every tensor the architecture maps.

    Parameters
    ----------
    metadata, gguf_names, path:
        As for :func:`hf_name_map`.

    Returns
    -------
    dict
        Only tensors with a source name; others (and the tensors of :data:`REARRANGED`) are left out.

    Raises
    ------
    InputError
        An architecture gguf does not know, or no block count.
    """
    arch = metadata.get("general.architecture")
    _arch_id(arch, path)
    table = name_table(arch, _block_count(metadata, arch, path))
    chosen = preferred_sources(arch)
    names = list(gguf_names)
    skip = _rearranged(arch, names)
    out: dict[str, str] = {}
    for name in names:
        if name in skip:
            continue
        stem, suffix = next(((name[: -len(s)], s) for s in _SUFFIXES if name.endswith(s)), (name, ""))
        match = re.fullmatch(r"blk\.(\d+)\.(.+)", stem)
        key = f"blk.{{bid}}.{match[2]}" if match else stem
        source = chosen.get(key)
        if source is None:
            continue
        hf = source.format(bid=match[1]) + suffix if match else source + suffix
        if table.get_name(hf, try_suffixes=_SUFFIXES) == name:  # the table maps it back: consistent
            out[name] = hf
    if len(set(out.values())) < len(out):
        raise InputError("two GGUF tensors map to one Hugging Face name", path=path)
    return out


def hf_row_order(metadata: dict, gguf_name: str, n_rows: int, *, path: str = "") -> np.ndarray | None:
    """Rows of the GGUF tensor that hold Hugging Face rows ``0 .. n_rows - 1`` (``None``: same order).

    ``hf_rows[i] = gguf_rows[order[i]]``: the inverse of the converter's per-head permutation
    (:data:`CONVERTER_ROW_PERMUTATIONS`) or QKV regrouping (:data:`QKV_REGROUPED`).
    """
    arch = metadata.get("general.architecture")
    match = _BLOCK_TENSOR.match(gguf_name)
    if match and match["kind"] == "attn_qkv" and arch in QKV_REGROUPED:
        key = f"{arch}.{QKV_REGROUPED[arch]}"
        heads = metadata.get(key)
        if not isinstance(heads, int) or heads <= 0 or n_rows % (3 * heads):
            raise InputError(f"{n_rows} rows do not split into 3 × {heads!r} heads ({key})", path=path,
                             where=gguf_name)
        # HF row (head h, part p, dim d) is GGUF row p * n_embed + h * head_dim + d
        return np.arange(n_rows).reshape(3, heads, n_rows // 3 // heads).transpose(1, 0, 2).reshape(-1)
    keys = CONVERTER_ROW_PERMUTATIONS.get(arch, {}).get(match["kind"]) if match else None
    if keys is None:
        return None
    heads = next((metadata[f"{arch}.{k}"] for k in keys if f"{arch}.{k}" in metadata), None)
    if not isinstance(heads, int) or heads <= 0 or n_rows % (2 * heads):
        raise InputError(f"{n_rows} rows do not split into {heads!r} heads of rotary pairs "
                         f"({arch}.{keys[0]})", path=path, where=gguf_name)
    permuted = np.arange(n_rows).reshape(heads, 2, n_rows // heads // 2).swapaxes(1, 2).reshape(-1)
    return np.argsort(permuted)
