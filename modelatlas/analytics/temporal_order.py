"""Parents are older than their children (Model Atlas paper, section 4.2, "Temporal dynamics
assumption": 99.73% of observed parent-child pairs)."""

from __future__ import annotations

import numpy as np

from modelatlas.analytics.facts import AtlasFacts
from modelatlas.analytics.tables import StatTable, share


def temporal_order(facts: AtlasFacts) -> StatTable:
    """Per group of the child: edges whose both ends have ``created_at``, and the share where the
    parent is strictly older, the same age, or younger.

    Back-filled creation times (before 2022-03-02) are kept, as in the paper; the column
    ``pairs_backfilled`` says how many pairs involve one.
    """
    g = facts.graph
    t = facts.created
    tp, tc = t[g.parent], t[g.child]
    known = ~(np.isnan(tp) | np.isnan(tc))
    rows = g.child[known]
    backfilled = facts.flag("created_at_backfilled")
    cols = {"older": tp[known] < tc[known], "same": tp[known] == tc[known],
            "backfilled": backfilled[g.parent[known]] | backfilled[g.child[known]]}
    table = StatTable("temporal_order", "Parents created before their children",
                      "99.73% of parent-child pairs have the parent older",
                      ["group_by", "group", "pairs", "share_parent_older", "share_same_time",
                       "share_parent_younger", "pairs_backfilled"])
    for grouping in facts.groupings():
        for row in grouping.sums(rows, cols):
            n = row["n"]
            table.rows.append({"group_by": row["group_by"], "group": row["group"], "pairs": n,
                               "share_parent_older": share(row["older"], n),
                               "share_same_time": share(row["same"], n),
                               "share_parent_younger": share(n - row["older"] - row["same"], n),
                               "pairs_backfilled": int(row["backfilled"])})
    return table
