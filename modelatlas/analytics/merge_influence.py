"""Influence of merged models against their non-merged siblings (Model Atlas paper, section 3.2,
"Merging": merged NLP models have on average 30% higher influence, measured by descendant
downloads, than their non-merged siblings)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from modelatlas.analytics.tables import TOP_COMPONENTS, StatTable, groupings, share
from modelatlas.atlas.derived import AtlasFacts


def sibling_influence(facts: AtlasFacts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every merged model beside its non-merged siblings (children of any of its parents).

    Returns
    -------
    merged, compared, sibling_mean : the merged models that have at least one non-merged sibling;
        whether the comparison is measured (the model's and at least one sibling's downloads are
        recorded, :meth:`~modelatlas.atlas.derived.AtlasFacts.observed`); and the siblings' mean
        influence (``sub_tree_downloads``, over the siblings with recorded downloads; NaN if none).
    """
    g, n = facts.graph, facts.n
    merged = np.flatnonzero(facts.merged)
    known = facts.observed("downloads")
    # A non-merged model has at most one parent, so the sibling sets of a merged model's parents are
    # disjoint: per-parent sums add up exactly (linear work, no merged x siblings matrix).
    plain_edge = ~facts.merged[g.child]
    measured_edge = plain_edge & known[g.child]
    siblings = np.bincount(g.parent, weights=plain_edge, minlength=n)
    count = np.bincount(g.parent, weights=measured_edge, minlength=n)
    total = np.bincount(g.parent, weights=np.where(measured_edge, facts.sub_tree_downloads[g.child], 0.0),
                        minlength=n)
    parents_of = g.reverse_adjacency[merged]
    per_merged = sp.csr_matrix(parents_of, dtype=np.float64)
    sib, cnt, tot = per_merged @ siblings, per_merged @ count, per_merged @ total
    mean = np.divide(tot, cnt, out=np.full(merged.size, np.nan), where=cnt > 0)
    keep = sib > 0
    compared = known[merged] & (cnt > 0)
    return merged[keep], compared[keep], mean[keep]


def merge_influence(facts: AtlasFacts, top_components: int = TOP_COMPONENTS) -> StatTable:
    """Compare each merged model with its non-merged siblings, filed under the merged model's own
    modality, component and month (one definition for the headline and every group).

    Influence is ``sub_tree_downloads`` (own plus descendants' downloads, each once). Per group:
    ``merged_models`` with a non-merged sibling, ``compared`` (downloads recorded for the model and
    a sibling), the share of those above their siblings' mean, and ``uplift`` = Σ merged influence
    / Σ siblings' mean influence − 1 over the compared models (the paper's "x% higher influence";
    averaging per-model ratios instead lets one tiny sibling dominate).
    """
    merged, compared, mean = sibling_influence(facts)
    own = facts.sub_tree_downloads[merged]
    cols = {"compared": compared, "higher": compared & (own > np.nan_to_num(mean)),
            "m": np.where(compared, own, 0.0), "o": np.where(compared, np.nan_to_num(mean), 0.0)}
    table = StatTable("merge_influence", "Merged models vs their non-merged siblings (sub-tree downloads)",
                      "merged NLP models: ~30% higher descendant downloads than non-merged siblings",
                      ["group_by", "group", "merged_models", "compared", "share_merged_higher", "uplift"])
    for grouping in groupings(facts, top_components):
        for row in grouping.sums(merged, cols):
            table.rows.append({"group_by": row["group_by"], "group": row["group"], "merged_models": row["n"],
                               "compared": int(row["compared"]),
                               "share_merged_higher": share(row["higher"], row["compared"]),
                               "uplift": share(row["m"], row["o"]) - 1.0})
    return table
