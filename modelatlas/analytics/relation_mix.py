"""Relation mix: the share of fine-tunes, adapters, quantisations, merges and unknown relations
among the edges of each group (Model Atlas paper, section 3.2 and Fig. 5: adapters dominate
generative vision, quantisation is rare in vision, merging ~35x more common in NLP than CV)."""

from __future__ import annotations

from modelatlas.analytics.tables import TOP_COMPONENTS, StatTable, groupings, share
from modelatlas.atlas.derived import AtlasFacts
from modelatlas.atlas.schema import RELATIONS


def relation_mix(facts: AtlasFacts, top_components: int = TOP_COMPONENTS) -> StatTable:
    """Edges per relation, grouped by the child's group; shares sum to 1 per group."""
    rel = facts.edge_relation
    cols = {r: rel == r for r in RELATIONS}
    table = StatTable("relation_mix", "Relation mix (share of edges by relation, grouped by the child)",
                      "Fig. 5: CV quantisation < 0.15% of models; merging ~35x more common in NLP than CV",
                      ["group_by", "group", "edges", *RELATIONS])
    for grouping in groupings(facts, top_components):
        for row in grouping.sums(facts.graph.child, cols):
            out = {"group_by": row["group_by"], "group": row["group"], "edges": row["n"]}
            out.update({r: share(row[r], row["n"]) for r in RELATIONS})
            table.rows.append(out)
    return table


def merge_rate_ratio(table: StatTable, a: str = "language", b: str = "vision") -> float:
    """How many times more common merges are among modality ``a``'s edges than ``b``'s."""
    rows = {r["group"]: r for r in table.select("modality")}
    if a not in rows or b not in rows or not rows[b]["merge"]:
        return float("nan")
    return rows[a]["merge"] / rows[b]["merge"]


__all__ = ["relation_mix", "merge_rate_ratio"]
