"""Documentation levels (Model Atlas paper, section 4.1 and Fig. 6: over 50-60% of Hub models
have no card, fewer than 15% report accuracy, 8% state a licence, fewer than 30% name a parent)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.analytics.facts import AtlasFacts
from modelatlas.analytics.tables import StatTable, share


def reports_evaluation(facts: AtlasFacts) -> np.ndarray:
    """Models that report evaluation results: scores in ``atlas.metrics``, a ``model-index`` tag,
    or a card whose text holds a ``model-index`` block."""
    nodes = facts.atlas.nodes
    flag = pc.is_in(nodes["id"], value_set=pc.unique(facts.atlas.metrics["id"]))
    tags = nodes["tags"]
    if tags.null_count < len(tags):
        flag = pc.or_(flag, _has_tag(tags, "model-index"))
    card = nodes["card_text"]
    if card.null_count < len(card):
        flag = pc.or_(flag, pc.fill_null(pc.match_substring(card, "model-index"), False))
    return np.asarray(flag.to_numpy(zero_copy_only=False), dtype=bool)


def _has_tag(tags, tag: str) -> pa.Array:
    tags = tags.combine_chunks() if isinstance(tags, pa.ChunkedArray) else tags
    flat = pc.list_flatten(tags)
    parents = pc.list_parent_indices(tags)
    hits = np.zeros(len(tags), dtype=bool)
    hits[np.asarray(parents)[np.asarray(pc.equal(flat, tag).to_numpy(zero_copy_only=False), dtype=bool)]] = True
    return pa.array(hits)


def documentation(facts: AtlasFacts) -> StatTable:
    """Per group of models with a record: share with a card, reporting evaluation results,
    declaring a licence, and naming a parent."""
    rows = np.flatnonzero(facts.real)
    license_ = pc.is_valid(facts.atlas.nodes["license"]).to_numpy(zero_copy_only=False)
    cols = {"card": facts.flag("card_present")[rows], "evaluation": reports_evaluation(facts)[rows],
            "license": np.asarray(license_, dtype=bool)[rows], "parent": ~facts.is_source[rows]}
    table = StatTable("documentation", "Documentation levels of models with a record",
                      "> 50% without a card; < 15% report accuracy; 8% state a licence; < 30% name a parent",
                      ["group_by", "group", "models", "share_card", "share_evaluation", "share_license",
                       "share_parent"])
    for grouping in facts.groupings():
        for row in grouping.sums(rows, cols):
            n = row["n"]
            table.rows.append({"group_by": row["group_by"], "group": row["group"], "models": n,
                               **{f"share_{k}": share(row[k], n) for k in cols}})
    return table
