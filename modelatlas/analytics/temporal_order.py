"""Parents are older than their children (Model Atlas paper, section 4.2, "Temporal dynamics
assumption": 99.73% of observed parent-child pairs)."""

from __future__ import annotations

import numpy as np

from modelatlas.analytics.tables import TOP_COMPONENTS, StatTable, groupings, share
from modelatlas.atlas.derived import AtlasFacts


def temporal_order(facts: AtlasFacts, top_components: int = TOP_COMPONENTS) -> StatTable:
    """Per group of the child: edges, the pairs among them whose both ends have ``created_at``, and
    the share of those pairs where the parent is strictly older, the same age, or younger.

    Back-filled creation times (before 2022-03-02) are kept, as in the paper; the column
    ``pairs_backfilled`` says how many pairs involve one.
    """
    g = facts.graph
    t = facts.created_at
    tp, tc = t[g.parent], t[g.child]
    known = ~(np.isnan(tp) | np.isnan(tc))
    backfilled = facts.flag("created_at_backfilled")
    cols = {"known": known, "older": known & (tp < tc), "same": known & (tp == tc),
            "backfilled": known & (backfilled[g.parent] | backfilled[g.child])}
    table = StatTable("temporal_order", "Parents created before their children",
                      "99.73% of parent-child pairs have the parent older",
                      ["group_by", "group", "edges", "pairs", "share_parent_older", "share_same_time",
                       "share_parent_younger", "pairs_backfilled"])
    for grouping in groupings(facts, top_components):
        for row in grouping.sums(g.child, cols):
            n = row["known"]
            table.rows.append({"group_by": row["group_by"], "group": row["group"], "edges": row["n"],
                               "pairs": int(n), "share_parent_older": share(row["older"], n),
                               "share_same_time": share(row["same"], n),
                               "share_parent_younger": share(n - row["older"] - row["same"], n),
                               "pairs_backfilled": int(row["backfilled"])})
    return table
