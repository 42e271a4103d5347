"""Quantised models are leaves (Model Atlas paper, section 4.2, "Duplication assumption":
99.41% of quantised models on the Hub have no child)."""

from __future__ import annotations

from modelatlas.analytics.tables import TOP_COMPONENTS, StatTable, groupings, share
from modelatlas.atlas.derived import AtlasFacts


def quantized_leaves(facts: AtlasFacts, top_components: int = TOP_COMPONENTS) -> StatTable:
    """Share of quantised models (flagged, or children of a ``quantized`` edge) with no child."""
    q = facts.quantized
    rows = q.nonzero()[0]
    table = StatTable("quantized_leaves", "Quantised models that are leaves", "99.41% of quantised models are leaves",
                      ["group_by", "group", "quantized", "leaves", "share_leaves"])
    for grouping in groupings(facts, top_components):
        for row in grouping.sums(rows, {"leaves": facts.is_leaf[rows]}):
            table.rows.append({"group_by": row["group_by"], "group": row["group"], "quantized": row["n"],
                               "leaves": int(row["leaves"]), "share_leaves": share(row["leaves"], row["n"])})
    return table
