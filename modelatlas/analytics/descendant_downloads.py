"""Impact beyond a model's own downloads (Model Atlas paper, Appendix A, "Better model impact
measurement": for 50% of non-leaf models the descendants' downloads exceed the model's own)."""

from __future__ import annotations

import numpy as np

from modelatlas.analytics.tables import TOP_COMPONENTS, StatTable, groupings, share
from modelatlas.atlas.derived import AtlasFacts


def descendant_downloads(facts: AtlasFacts, top_components: int = TOP_COMPONENTS) -> StatTable:
    """Per group: non-leaf models with a record of their own (placeholders have no downloads),
    the share whose descendants' downloads (each descendant once) exceed their own, and the median
    ratio ``sub_tree_downloads / downloads``.

    Shares are over ``downloads_known``: the non-leaf models whose source records downloads
    (:meth:`~modelatlas.atlas.derived.AtlasFacts.observed`); without any, the share is "–", not 0.
    """
    population = np.flatnonzero(~facts.is_leaf & facts.real)
    known = facts.observed("downloads")[population]
    rows = population[known]
    own, desc = facts.downloads[rows], facts.descendant_downloads[rows]
    table = StatTable("descendant_downloads", "Non-leaf models whose descendants out-download them",
                      "50% of non-leaf models", ["group_by", "group", "non_leaf_models", "downloads_known",
                                                 "share_descendants_exceed", "median_subtree_over_own"])
    ratio = (own + desc) / np.maximum(own, 1.0)
    exceed = np.zeros(population.size)
    exceed[known] = desc > own
    for grouping in groupings(facts, top_components):
        codes = grouping.codes[rows]
        for row in grouping.sums(population, {"known": known, "exceed": exceed}):
            sel = codes == grouping.names.index(row["group"])
            table.rows.append({"group_by": row["group_by"], "group": row["group"], "non_leaf_models": row["n"],
                               "downloads_known": int(row["known"]),
                               "share_descendants_exceed": share(row["exceed"], row["known"]),
                               "median_subtree_over_own": float(np.median(ratio[sel])) if sel.any() else float("nan")})
    return table
