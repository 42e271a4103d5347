"""Impact beyond a model's own downloads (Model Atlas paper, Appendix A, "Better model impact
measurement": for 50% of non-leaf models the descendants' downloads exceed the model's own)."""

from __future__ import annotations

import numpy as np

from modelatlas.analytics.facts import AtlasFacts
from modelatlas.analytics.tables import StatTable, share


def descendant_downloads(facts: AtlasFacts) -> StatTable:
    """Per group: non-leaf models with a record of their own (placeholders have no downloads),
    the share whose descendants' downloads (each descendant once) exceed their own, and the median
    ratio ``sub_tree_downloads / downloads``."""
    rows = np.flatnonzero(~facts.is_leaf & facts.real)
    own, desc = facts.downloads[rows], facts.descendant_downloads[rows]
    table = StatTable("descendant_downloads", "Non-leaf models whose descendants out-download them",
                      "50% of non-leaf models", ["group_by", "group", "non_leaf_models", "share_descendants_exceed",
                                                 "median_subtree_over_own"])
    ratio = (own + desc) / np.maximum(own, 1.0)
    for grouping in facts.groupings():
        codes = grouping.codes[rows]
        for row in grouping.sums(rows, {"exceed": desc > own}):
            sel = codes == grouping.names.index(row["group"])
            table.rows.append({"group_by": row["group_by"], "group": row["group"], "non_leaf_models": row["n"],
                               "share_descendants_exceed": share(row["exceed"], row["n"]),
                               "median_subtree_over_own": float(np.median(ratio[sel]))})
    return table
