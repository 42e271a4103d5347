"""Statistics of a hub-stats Parquet file, computed the way a user's snapshot is: ingest it into an
atlas and run the package's analyses on that atlas.

Used to check the synthetic hub against the papers' figures (``tests/test_synthetic_hub.py``,
``docs/synthetic-hub.md``). Nothing here reads the file itself: parent links come from the ingest's
``base_model`` tag parser (:mod:`modelatlas.ingest.tags`), modalities from its one task map
(:data:`modelatlas.ingest.normalize.MODALITY`), cards from its one auto-generation rule, and every
number from :func:`modelatlas.analytics.statistics.compute_statistics` (Model Atlas paper) or the
ecosystem analyses (:mod:`modelatlas.ecosystem`, Anatomy paper). What the hub file gets wrong on
purpose (self-references, two-cycles, an unknown relation word) is read back from the atlas's
ingest issues.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.analytics.relation_mix import merge_rate_ratio
from modelatlas.analytics.statistics import compute_statistics
from modelatlas.analytics.tables import StatTable
from modelatlas.atlas.atlas import Atlas
from modelatlas.atlas.components import component_sizes, weakly_connected_components
from modelatlas.atlas.depth import depth_from_sources
from modelatlas.atlas.schema import RELATIONS
from modelatlas.discover.licences import COPYLEFT, PERMISSIVE, RESTRICTED, licence_rank
from modelatlas.ecosystem.documentation import documentation
from modelatlas.ecosystem.drift import drift_graph
from modelatlas.ecosystem.languages import language_analysis
from modelatlas.ecosystem.tree import finetune_tree

#: Finer groups than modality, as Model Atlas §3.2 compares them (by pipeline tag).
PIPELINE_GROUPS = {
    "llm": ("text-generation",),
    "generative_vision": ("text-to-image", "image-to-image"),
    "discriminative_vision": ("image-classification", "object-detection", "image-segmentation"),
}
#: Ingest issue kinds of the hub's documented faults (docs/ingest.md): a ``base_model:`` tag without
#: an id is a malformed tag, one with an unknown relation word (``base_model:distilled:<id>``) an
#: unknown relation.
FAULT_ISSUES = {"self_references": ("self_loop",), "cycles_broken": ("cycle",),
                "malformed_base_model_tags": ("malformed_tag", "unknown_relation")}


def hub_file_statistics(path: str | Path) -> dict:
    """Ingest a hub-stats Parquet file and describe it with the statistics the papers report.

    Parameters
    ----------
    path:
        A hub-stats Parquet file (the synthetic hub's, or a real snapshot).

    Returns
    -------
    dict of plain numbers; see ``docs/synthetic-hub.md`` for each key's target and source.
    """
    from modelatlas.ingest.pipeline import ingest

    atlas, _ = ingest([str(path)], fmt="hub-stats")
    return atlas_statistics(atlas)


def _row(table: StatTable, group_by: str, group: str) -> dict:
    return next((r for r in table.select(group_by) if r["group"] == group), {})


def _pipeline_grouped(atlas: Atlas) -> Atlas:
    """The atlas with each model's modality replaced by its :data:`PIPELINE_GROUPS` group (else
    ``other``), so that the per-modality statistics are computed per pipeline group."""
    task = atlas.nodes["pipeline_tag"]
    group = pa.nulls(atlas.num_nodes, pa.string())
    for name, tags in PIPELINE_GROUPS.items():
        group = pc.if_else(pc.fill_null(pc.is_in(task, pa.array(tags)), False), name, group)
    group = pc.fill_null(group, "other")
    nodes = atlas.nodes.set_column(atlas.nodes.schema.get_field_index("modality"), "modality", group)
    return Atlas(nodes, atlas.edges, atlas.evidence, atlas.metrics, atlas.issues)


def _by_group(tables: dict[str, StatTable], groups: list[str]) -> dict:
    out = {}
    for group in groups:
        rel = _row(tables["relation_mix"], "modality", group)
        depth = _row(tables["depth_distribution"], "modality", group)
        docs = _row(tables["documentation"], "modality", group)
        out[group] = {"models": docs.get("models", 0), "edges": rel.get("edges", 0),
                      **{f"{r}_share": rel.get(r, float("nan")) for r in RELATIONS},
                      "depth1_share": depth.get("depth_1", float("nan")),
                      "depth5plus_share": depth.get("depth_5_plus", float("nan"))}
    return out


def _licence_drift(atlas: Atlas, tree) -> float:
    """Of fine-tune edges whose licence moves between the restrictive ranks (restricted,
    non-commercial) and the open ones (permissive, copyleft) of
    :func:`~modelatlas.discover.licences.licence_rank`, the share moving to an open licence
    (Anatomy §4.1 groups them so: restrictive / commercial upstream of permissive / copyleft)."""
    drift = drift_graph(atlas, tree, "license", top=0)
    rank = np.array([licence_rank(v) for v in drift.values])
    is_open, closed = (rank >= PERMISSIVE) & (rank <= COPYLEFT), rank >= RESTRICTED
    opened = drift.traffic[np.ix_(closed, is_open)].sum()
    changed = opened + drift.traffic[np.ix_(is_open, closed)].sum()
    return float(opened / changed) if changed else float("nan")


def atlas_statistics(atlas: Atlas) -> dict:
    """The statistics of :func:`hub_file_statistics` for an atlas already built.

    Returns
    -------
    dict of plain numbers (NaN where the atlas has nothing to measure).
    """
    tables = compute_statistics(atlas).tables
    nodes = atlas.nodes
    placeholder = np.asarray(nodes["placeholder"].to_numpy(zero_copy_only=False), dtype=bool)
    real = ~placeholder
    kinds = atlas.issues["kind"].to_numpy(zero_copy_only=False)
    doc = _row(tables["documentation"], "all", "all")
    stats: dict = {"models": int(real.sum()), "placeholders": int(placeholder.sum()), "edges": atlas.num_edges,
                   **{key: int(np.isin(kinds, kind).sum()) for key, kind in FAULT_ISSUES.items()},
                   "parent_share": doc["share_parent"], "card_share": doc["share_card"]}

    grouped = compute_statistics(_pipeline_grouped(atlas)).tables
    stats["by_modality"] = {**_by_group(tables, ["language", "vision", "audio", "vision-language"]),
                            **_by_group(grouped, list(PIPELINE_GROUPS))}
    stats["merge_ratio_language_vision"] = merge_rate_ratio(tables["relation_mix"])
    stats["quantized_leaf_share"] = _row(tables["quantized_leaves"], "all", "all").get("share_leaves", float("nan"))
    stats["parent_older_share"] = _row(tables["temporal_order"], "all", "all").get("share_parent_older",
                                                                                   float("nan"))
    backfilled = pc.fill_null(nodes["created_at_backfilled"], False).to_numpy(zero_copy_only=False)
    stats["backfilled_share"] = float(np.asarray(backfilled, dtype=bool)[real].mean())

    # Anatomy §4: traits down the fine-tune tree.
    tree = finetune_tree(atlas)
    stats["licence_changes_to_open_share"] = _licence_drift(atlas, tree)
    lang = language_analysis(atlas, tree, time_limit=2.0)
    spec, english = lang["specialisation"], lang["english"] or {}
    stats["languages"] = {"edges": spec["edges"], "parent_mean": spec["parent_mean"], "child_mean": spec["child_mean"],
                          "child_fewer_share": spec["fewer"], "english_into": english.get("into", 0),
                          "english_out_of": english.get("out_of", 0)}
    cards = documentation(atlas, tree)
    stats["cards"] = {"parent_over_child_length": cards["length"]["ratio_of_means"],
                      "autogenerated_derivatives_share": cards["autogenerated"]["derivatives"]["share"],
                      "autogenerated_parents_share": cards["autogenerated"]["parents"]["share"]}
    stats["card_by_depth"] = _cards_by_depth(atlas)

    # Heavy tails: families (weak components) and downloads.
    sizes = component_sizes(weakly_connected_components(atlas.graph))
    fam = np.sort(sizes[sizes > 1])[::-1]
    stats["families"] = int(fam.size)
    stats["largest_family_share_of_family_models"] = float(fam[0] / fam.sum()) if fam.size else float("nan")
    stats["top1pct_families_share"] = float(fam[:max(1, fam.size // 100)].sum() / fam.sum()) if fam.size \
        else float("nan")
    dl = np.sort(pc.fill_null(nodes["downloads"], 0).to_numpy(zero_copy_only=False)[real])[::-1]
    stats["top1pct_downloads_share"] = float(dl[:max(1, dl.size // 100)].sum() / max(dl.sum(), 1))
    stats["zero_downloads_share"] = float((dl == 0).mean()) if dl.size else float("nan")
    return stats


def _cards_by_depth(atlas: Atlas, depths: range = range(4)) -> dict:
    """Median card length and auto-generated share of the cards at each depth below a source
    (Anatomy §4.3: cards get shorter and more often auto-generated down the tree)."""
    depth = depth_from_sources(atlas.graph)
    present = np.asarray(pc.fill_null(atlas.nodes["card_present"], False).to_numpy(zero_copy_only=False), dtype=bool)
    length = pc.fill_null(atlas.nodes["card_length"], 0).to_numpy(zero_copy_only=False)
    auto = np.asarray(pc.fill_null(atlas.nodes["card_autogenerated"], False).to_numpy(zero_copy_only=False),
                      dtype=bool)
    out = {}
    for d in depths:
        sel = present & (depth == d)
        if sel.any():
            out[str(d)] = {"cards": int(sel.sum()), "median_length": float(np.median(length[sel])),
                           "autogenerated_share": float(auto[sel].mean())}
    return out
