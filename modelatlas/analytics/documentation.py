"""Documentation levels (Model Atlas paper, section 4.1 and Fig. 6: over 50-60% of Hub models
have no card, fewer than 15% report accuracy, 8% state a licence, fewer than 30% name a parent)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.analytics.tables import TOP_COMPONENTS, StatTable, groupings, share
from modelatlas.atlas.derived import AtlasFacts


def reports_evaluation(facts: AtlasFacts, top_components: int = TOP_COMPONENTS) -> np.ndarray:
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


def evaluation_observed(facts: AtlasFacts) -> np.ndarray:
    """Models for which :func:`reports_evaluation` could be true: the atlas holds scores, or the
    model's source recorded tags or card text."""
    if facts.atlas.metrics.num_rows:
        return facts.real.copy()
    return facts.observed("tags") | facts.observed("card_text")


def documentation(facts: AtlasFacts, top_components: int = TOP_COMPONENTS) -> StatTable:
    """Per group of models with a record: share with a card, reporting evaluation results,
    declaring a licence, and naming a parent.

    Each share is over the models whose source records its input (``<x>_known``,
    :meth:`~modelatlas.atlas.derived.AtlasFacts.observed`): an atlas whose sources carry no card
    or licence field reports no share ("–"), not 0. Naming a parent is read from the graph, so it
    is known for every model.
    """
    rows = np.flatnonzero(facts.real)
    license_ = np.asarray(pc.is_valid(facts.atlas.nodes["license"]).to_numpy(zero_copy_only=False), dtype=bool)
    known = {"card": facts.observed("card_present"), "evaluation": evaluation_observed(facts),
             "license": facts.observed("license")}
    value = {"card": facts.flag("card_present"), "evaluation": reports_evaluation(facts), "license": license_}
    cols = {f"{k}_known": known[k][rows] for k in known}
    cols.update({k: (value[k] & known[k])[rows] for k in known})
    cols["parent"] = ~facts.is_source[rows]
    table = StatTable("documentation", "Documentation levels of models with a record",
                      "> 50% without a card; < 15% report accuracy; 8% state a licence; < 30% name a parent",
                      ["group_by", "group", "models", "card_known", "share_card", "evaluation_known",
                       "share_evaluation", "license_known", "share_license", "share_parent"])
    for grouping in groupings(facts, top_components):
        for row in grouping.sums(rows, cols):
            n = row["n"]
            out = {"group_by": row["group_by"], "group": row["group"], "models": n}
            for k in known:
                out[f"{k}_known"] = int(row[f"{k}_known"])
                out[f"share_{k}"] = share(row[k], row[f"{k}_known"])
            out["share_parent"] = share(row["parent"], n)
            table.rows.append(out)
    return table
