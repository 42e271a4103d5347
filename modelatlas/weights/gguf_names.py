"""Hugging Face names (and row order) for the tensors of a GGUF file, from gguf's own name table.

``gguf.get_tensor_name_map(arch, n_blocks)`` maps checkpoint names to GGUF names; it gathers many
conventions (Hugging Face, Meta's ``.pth``, other families), so each GGUF name has many sources
(``blk.0.attn_q`` ← ``model.layers.0.self_attn.q_proj``, ``layers.0.attention.wq`` ...): inverted
alone it cannot say which one a model used. We therefore map in the direction the table defines —
each name of a given Hugging Face tensor list to its GGUF name, as transformers' GGUF loader does
with a model's state-dict names — and invert that; two given names landing on one GGUF name are an
error, never a choice.

Rows. llama.cpp's converter (``convert_hf_to_gguf.py``, ``LlamaModel.modify_tensors`` with
``undo_permute``) reorders the rows of ``q_proj`` / ``k_proj`` per head, ``W.reshape(n_head, 2,
rows / n_head / 2, ...).swapaxes(1, 2)``, with ``n_head_kv`` heads for ``k_proj`` when it differs;
:func:`hf_row_order` undoes it. Other architectures' converters rearrange other tensors (fused QKV
splits, expert stacking ...), so only architectures whose conversion was checked are mapped.
"""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np

from modelatlas.errors import InputError

#: GGUF architectures whose converter was checked: tensor kind -> metadata key of the head count
#: its rows are permuted with. ``llama`` (LlamaModel, undo_permute = True); ``qwen2`` (Qwen2Model:
#: renames only).
CONVERTER_ROW_PERMUTATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "llama": {"attn_q": ("attention.head_count",),
              "attn_k": ("attention.head_count_kv", "attention.head_count")},
    "qwen2": {},
}
_BLOCK_TENSOR = re.compile(r"^blk\.\d+\.(?P<kind>[a-z0-9_]+)\.(weight|bias)$")


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
        Unknown or unchecked architecture, no block count, or two names for one GGUF tensor.
    """
    import gguf

    arch = metadata.get("general.architecture")
    if arch not in CONVERTER_ROW_PERMUTATIONS:
        raise InputError(f"GGUF architecture {arch!r}: how llama.cpp's converter rearranges its tensors is not "
                         f"checked here, so its names are not mapped (mapped: {', '.join(CONVERTER_ROW_PERMUTATIONS)})",
                         path=path, where="general.architecture")
    n_blocks = metadata.get(f"{arch}.block_count")
    if not isinstance(n_blocks, int) or n_blocks < 0:
        raise InputError(f"no {arch}.block_count in the GGUF metadata: cannot map block names", path=path,
                         where=f"{arch}.block_count")
    table = gguf.get_tensor_name_map(next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch), n_blocks)
    wanted = set(gguf_names)
    out: dict[str, str] = {}
    for hf in sorted(set(hf_names)):
        name = table.get_name(hf, try_suffixes=(".weight", ".bias"))
        if name not in wanted:
            continue
        if name in out:
            raise InputError(f"both {out[name]!r} and {hf!r} map to this tensor", path=path, where=name)
        out[name] = hf
    return out


def hf_row_order(metadata: dict, gguf_name: str, n_rows: int, *, path: str = "") -> np.ndarray | None:
    """Rows of the GGUF tensor that hold Hugging Face rows ``0 .. n_rows - 1`` (``None``: same order).

    ``hf_rows[i] = gguf_rows[order[i]]``: the inverse of the converter's per-head permutation.
    """
    arch = metadata.get("general.architecture")
    match = _BLOCK_TENSOR.match(gguf_name)
    keys = CONVERTER_ROW_PERMUTATIONS.get(arch, {}).get(match["kind"]) if match else None
    if keys is None:
        return None
    heads = next((metadata[f"{arch}.{k}"] for k in keys if f"{arch}.{k}" in metadata), None)
    if not isinstance(heads, int) or heads <= 0 or n_rows % (2 * heads):
        raise InputError(f"{n_rows} rows do not split into {heads!r} heads of rotary pairs "
                         f"({arch}.{keys[0]})", path=path, where=gguf_name)
    permuted = np.arange(n_rows).reshape(heads, 2, n_rows // heads // 2).swapaxes(1, 2).reshape(-1)
    return np.argsort(permuted)
