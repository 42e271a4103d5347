"""Depth distribution of models below their sources (Model Atlas paper, Appendix A, Fig. 9: over
96% of CV models sit at depth 1, only 55% of NLP models; over 5% of NLP models at depth >= 5)."""

from __future__ import annotations

import numpy as np

from modelatlas.analytics.tables import TOP_COMPONENTS, StatTable, groupings, share
from modelatlas.atlas.derived import AtlasFacts

#: Depth bins reported; the last one is "this depth or deeper".
DEPTH_BINS = (1, 2, 3, 4, 5)


def depth_distribution(facts: AtlasFacts, top_components: int = TOP_COMPONENTS) -> StatTable:
    """Per group: models with a parent (depth >= 1, shortest path from a source) by depth bin.

    Sources are excluded from the shares (a source has no depth to compare); ``sources`` counts them.
    """
    d = facts.depth
    rows = np.flatnonzero(d >= 1)
    cols = {f"depth_{b}" if b < DEPTH_BINS[-1] else f"depth_{b}_plus":
            (d[rows] == b) if b < DEPTH_BINS[-1] else (d[rows] >= b) for b in DEPTH_BINS}
    cols["depth_sum"] = d[rows]
    src = np.flatnonzero(facts.is_source & ~facts.is_leaf)
    names = [c for c in cols if c != "depth_sum"]
    table = StatTable("depth_distribution", "Depth of models with a parent (share per depth)",
                      "CV: > 96% at depth 1; NLP: ~55% at depth 1 and > 5% at depth >= 5",
                      ["group_by", "group", "models", *names, "mean_depth", "max_depth", "sources"])
    for grouping in groupings(facts, top_components):
        nsrc = {r["group"]: r["n"] for r in grouping.sums(src, {})}
        maxd = np.zeros(len(grouping.names), dtype=np.int64)
        codes = grouping.codes[rows]
        ok = codes >= 0
        np.maximum.at(maxd, codes[ok], d[rows][ok])
        for row in grouping.sums(rows, cols):
            n = row["n"]
            out = {"group_by": row["group_by"], "group": row["group"], "models": n}
            out.update({c: share(row[c], n) for c in names})
            out["mean_depth"] = share(row["depth_sum"], n)
            out["max_depth"] = int(maxd[grouping.names.index(row["group"])])
            out["sources"] = int(nsrc.get(row["group"], 0))
            table.rows.append(out)
    return table


def depth_histogram(facts: AtlasFacts, group_by: str = "modality",
                    top_components: int = TOP_COMPONENTS) -> dict[str, np.ndarray]:
    """Count of models at each depth (index = depth) per group, for figures."""
    d = facts.depth
    out = {}
    for grouping in groupings(facts, top_components):
        if grouping.name != group_by:
            continue
        for code, name in enumerate(grouping.names):
            sel = (grouping.codes == code) & (d >= 1)
            if sel.any():
                out[name] = np.bincount(d[sel])
    return out
