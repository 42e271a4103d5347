"""Statistics of a hub-stats Parquet file, computed from the file alone.

Used to check the synthetic hub against the papers' figures (``tests/test_synthetic_hub.py``,
``docs/synthetic-hub.md``) and to describe any hub-stats snapshot the same way. Parent links are
read from the ``base_model:<relation>:<id>`` / ``base_model:<id>`` tags exactly as the Hub emits
them; depth is the graph core's (:func:`modelatlas.atlas.depth.depth_from_sources`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from modelatlas.atlas.depth import depth_from_sources
from modelatlas.atlas.graph import AtlasGraph
from modelatlas.zoo.synthetic_hub import LICENSES, PERMISSIVE_LICENSES, PIPELINE_MODALITY, RELATIONS

_BACKFILL_END = np.datetime64("2022-03-03T00:00:00", "us")

#: Finer groups than modality, as Model Atlas §3.2 compares them.
PIPELINE_GROUPS = {
    "llm": ("text-generation",),
    "generative_vision": ("text-to-image", "image-to-image"),
    "discriminative_vision": ("image-classification", "object-detection", "image-segmentation"),
}


def _modality(pipeline: np.ndarray) -> np.ndarray:
    out = np.full(pipeline.size, "other", dtype=object)
    for mod in set(PIPELINE_MODALITY.values()):
        out[np.isin(pipeline, [t for t, m in PIPELINE_MODALITY.items() if m == mod])] = mod
    return out


def parent_tags(tags: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array, pa.Array, int]:
    """Parse the ``base_model:<id>`` and ``base_model:<relation>:<id>`` tags of a tags column.

    Returns
    -------
    rows:
        Row of each well-formed tag.
    parent, relation:
        Its parent id and relation (``unknown`` for an untyped tag).
    malformed:
        Number of ``base_model`` tags that are neither (empty id, unknown relation word).
    """
    tags = tags.combine_chunks()
    rows = pc.list_parent_indices(tags).to_numpy()
    flat = pc.list_flatten(tags)
    is_base = pc.starts_with(flat, "base_model:").to_numpy(zero_copy_only=False)
    rows, rest = rows[is_base], pc.utf8_slice_codeunits(flat.filter(pa.array(is_base)), 11)
    parts = pc.split_pattern(rest, ":", max_splits=1)
    n_parts = pc.list_value_length(parts).to_numpy()
    head = pc.list_element(parts, 0)
    typed = (n_parts == 2) & pc.is_in(head, pa.array(RELATIONS)).to_numpy(zero_copy_only=False)
    untyped = (n_parts == 1) & (pc.utf8_length(rest).to_numpy() > 0)
    ok = typed | untyped
    malformed = int((~ok).sum())
    parent = pc.if_else(pa.array(typed), pc.replace_substring_regex(rest, "^[^:]*:", "", max_replacements=1), rest)
    relation = pc.if_else(pa.array(typed), head, pa.scalar("unknown"))
    keep = pa.array(ok)
    return rows[ok], parent.filter(keep), relation.filter(keep), malformed


def hub_file_statistics(path: str | Path) -> dict:
    """Describe a hub-stats Parquet file with the statistics the papers report.

    Returns
    -------
    dict of plain numbers; see ``docs/synthetic-hub.md`` for each key's target and source.
    """
    table = pq.read_table(path, columns=["id", "createdAt", "downloads", "tags", "pipeline_tag", "card"])
    n = table.num_rows
    ids = table["id"].combine_chunks()
    rows, parent, relation, malformed = parent_tags(table["tags"])

    # One edge per (child, parent); typed relation wins over the untyped duplicate tag.
    referenced = pc.unique(parent)
    missing = referenced.filter(pc.invert(pc.is_in(referenced, ids)))
    all_ids = pa.concat_arrays([ids, missing])
    p_idx = pc.index_in(parent, all_ids).to_numpy()
    rel_code = pc.index_in(relation, pa.array(list(RELATIONS) + ["unknown"])).to_numpy()
    key = rows.astype(np.int64) * len(all_ids) + p_idx
    order = np.lexsort((rel_code, key))
    first = np.ones(order.size, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    e = order[first]
    child, par, rel = rows[e].astype(np.int64), p_idx[e].astype(np.int64), rel_code[e]
    self_refs = int((child == par).sum())
    keep = child != par
    child, par, rel = child[keep], par[keep], rel[keep]
    total = len(all_ids)

    pipeline = np.full(total, "", dtype=object)
    pipeline[:n] = pc.fill_null(table["pipeline_tag"], "").to_numpy(zero_copy_only=False)
    node_mod = _modality(pipeline)

    in_deg = np.bincount(child, minlength=total)
    out_deg = np.bincount(par, minlength=total)
    merge = in_deg > 1
    # Relation of a child: merge if several parents, else its one edge's relation.
    node_rel = np.full(total, -1)
    node_rel[child] = rel
    node_rel[merge] = RELATIONS.index("merge")

    graph = AtlasGraph(total, par, child)
    depth = depth_from_sources(graph)

    stats: dict = {"models": n, "placeholders": int(len(missing)), "edges": int(child.size),
                   "self_references": self_refs, "malformed_base_model_tags": malformed}
    stats["parent_share"] = float((in_deg[:n] > 0).mean())
    card = pc.is_valid(table["card"]).to_numpy(zero_copy_only=False)
    stats["card_share"] = float(card.mean())

    has_parent = in_deg > 0
    by_mod = {}
    groups = {mod: node_mod == mod for mod in ("nlp", "cv", "audio", "multimodal")}
    groups.update({name: np.isin(pipeline, list(tags)) for name, tags in PIPELINE_GROUPS.items()})
    for mod, members in groups.items():
        sel = has_parent & members
        cnt = max(int(sel.sum()), 1)
        d = depth[sel & (depth > 0)]
        by_mod[mod] = {
            "children": int(sel.sum()),
            **{f"{r}_share": float((node_rel[sel] == i).sum() / cnt) for i, r in enumerate(RELATIONS)},
            "depth1_share": float((d == 1).mean()) if d.size else float("nan"),
            "depth5plus_share": float((d >= 5).mean()) if d.size else float("nan"),
        }
    stats["by_modality"] = by_mod
    cv_merge = by_mod["cv"]["merge_share"]
    stats["merge_ratio_nlp_cv"] = by_mod["nlp"]["merge_share"] / cv_merge if cv_merge else float("inf")

    quantized = node_rel == RELATIONS.index("quantized")
    stats["quantized_leaf_share"] = float((out_deg[quantized] == 0).mean()) if quantized.any() else float("nan")

    created = np.full(total, np.datetime64("NaT"), dtype="datetime64[us]")
    created[:n] = table["createdAt"].combine_chunks().cast(pa.timestamp("us")).to_numpy(zero_copy_only=False)
    both = (par < n) & (child < n)
    stats["parent_older_share"] = float((created[par[both]] < created[child[both]]).mean())
    stats["backfilled_share"] = float((created[:n] < _BACKFILL_END).mean())

    # Licences along edges: of the edges that change licence class, the share going
    # restrictive -> permissive (Anatomy §4.1).
    lic = _tag_value(table["tags"], "license:", n, total)
    lic_perm = np.isin(lic, list(PERMISSIVE_LICENSES))
    lic_known = np.isin(lic, list(LICENSES))
    lk = lic_known[par] & lic_known[child]
    to_perm = int((lk & ~lic_perm[par] & lic_perm[child]).sum())
    to_restr = int((lk & lic_perm[par] & ~lic_perm[child]).sum())
    stats["license_changes_to_permissive_share"] = to_perm / max(to_perm + to_restr, 1)

    # Languages: multilingual parents with English-only children (Anatomy §4.2).
    n_lang, en_only = _language_sets(table["tags"], n, total)
    lang_edge = (n_lang[par] > 0) & (n_lang[child] > 0)
    multi_parent = lang_edge & (n_lang[par] > 1)
    stats["multilingual_parent_english_only_child_share"] = float(en_only[child[multi_parent]].mean()) \
        if multi_parent.any() else float("nan")
    stats["mean_languages_parent_minus_child"] = float((n_lang[par[lang_edge]] - n_lang[child[lang_edge]]).mean()) \
        if lang_edge.any() else float("nan")

    # Cards down the tree (Anatomy §4.3).
    length = np.zeros(total)
    length[:n] = pc.fill_null(pc.utf8_length(table["card"]), 0).to_numpy()
    auto = np.zeros(total, dtype=bool)
    auto[:n] = pc.fill_null(pc.match_substring(table["card"], "generated automatically"), False).to_numpy(
        zero_copy_only=False)
    has_card = np.zeros(total, dtype=bool)
    has_card[:n] = card
    stats["card_by_depth"] = {
        str(d): {"median_length": float(np.median(length[has_card & (depth == d)])),
                 "autogenerated_share": float(auto[has_card & (depth == d)].mean())}
        for d in range(0, 4) if (has_card & (depth == d)).any()}

    # Heavy tails: families (weak components) and downloads.
    from modelatlas.atlas.components import component_sizes, weakly_connected_components
    sizes = component_sizes(weakly_connected_components(graph))
    fam = np.sort(sizes[sizes > 1])[::-1]
    stats["families"] = int(fam.size)
    stats["largest_family_share_of_family_models"] = float(fam[0] / fam.sum()) if fam.size else 0.0
    stats["top1pct_families_share"] = float(fam[:max(1, fam.size // 100)].sum() / fam.sum()) if fam.size else 0.0
    dl = np.sort(table["downloads"].to_numpy())[::-1]
    stats["top1pct_downloads_share"] = float(dl[:max(1, n // 100)].sum() / max(dl.sum(), 1))
    stats["zero_downloads_share"] = float((dl == 0).mean())
    return stats


def _tag_value(tags: pa.ChunkedArray, prefix: str, n: int, total: int) -> np.ndarray:
    """The value of each model's ``prefix<value>`` tag ("" where absent; last one wins)."""
    tags = tags.combine_chunks()
    rows = pc.list_parent_indices(tags).to_numpy()
    flat = pc.list_flatten(tags)
    hit = pc.starts_with(flat, prefix).to_numpy(zero_copy_only=False)
    out = np.full(total, "", dtype=object)
    out[rows[hit]] = pc.utf8_slice_codeunits(flat.filter(pa.array(hit)), len(prefix)).to_numpy(zero_copy_only=False)
    return out


def _language_sets(tags: pa.ChunkedArray, n: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Number of language-code tags per model, and whether the only one is English."""
    from modelatlas.zoo.synthetic_hub import LANGUAGES

    tags = tags.combine_chunks()
    rows = pc.list_parent_indices(tags).to_numpy()
    code = pc.index_in(pc.list_flatten(tags), pa.array(list(LANGUAGES))).to_numpy(zero_copy_only=False)
    hit = ~np.isnan(code.astype(np.float64)) if code.dtype == object else np.isfinite(code)
    count = np.bincount(rows[hit], minlength=total)
    english = np.bincount(rows[hit & (np.nan_to_num(code.astype(np.float64), nan=-1) == 0)], minlength=total)
    return count, (count == 1) & (english == 1)
