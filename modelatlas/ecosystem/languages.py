"""Languages specialise and drift toward English (Laufer et al., section 4.3, Figure 10).

* Specialisation: the number of languages of parent and child over fine-tune edges where both list
  languages — means, and the shares of edges where the child lists fewer, as many or more.
* Drift toward English: the language drift graph (section 4.3's gained/lost rules), English's net
  in-traffic and its place in the optimal order (last = the most downstream value).
"""

from __future__ import annotations

import numpy as np

from modelatlas.ecosystem.drift import drift_graph
from modelatlas.ecosystem.mutation import edge_overlap
from modelatlas.ecosystem.ordering import trait_ordering
from modelatlas.ecosystem.traits import require_values, trait_sets

ENGLISH = ("en", "english", "eng")


def language_analysis(atlas, tree, *, top: int = 20, time_limit: float = 10.0) -> dict:
    """Specialisation and drift toward English (module docstring)."""
    sets = trait_sets(atlas, "languages")
    require_values(sets, "languages")
    a, b, _ = edge_overlap(sets, tree.edge_parent, tree.child)
    seen = (a > 0) & (b > 0)
    a, b = a[seen].astype(np.float64), b[seen].astype(np.float64)
    spec = {"edges": int(seen.sum()), "parent_mean": float(a.mean()) if a.size else float("nan"),
            "child_mean": float(b.mean()) if b.size else float("nan"),
            "fewer": float((b < a).mean()) if a.size else float("nan"),
            "same": float((b == a).mean()) if a.size else float("nan"),
            "more": float((b > a).mean()) if a.size else float("nan")}
    out = {"specialisation": spec}
    drift = drift_graph(atlas, tree, "languages", top=top)
    english = [i for i, v in enumerate(drift.values) if v.lower() in ENGLISH]
    ordering = trait_ordering(drift, time_limit=time_limit)
    out["ordering"] = ordering
    if english:
        e = english[0]
        t = drift.traffic
        out["english"] = {"value": drift.values[e], "into": int(t[:, e].sum()), "out_of": int(t[e, :].sum()),
                          "share_of_mutations_into": float(t[:, e].sum() / max(t.sum(), 1)),
                          "position": ordering["order"].index(drift.values[e]) + 1, "of": drift.size}
    else:
        out["english"] = None
        out["message"] = "English is not among the kept language values"
    return out
