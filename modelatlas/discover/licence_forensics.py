"""Licence forensics: children whose licence is more permissive than a restrictive or
non-commercial ancestor's (the licence drift the Anatomy paper documents; Model Atlas paper,
section 3.1 "Model forensics" on intellectual property).

For every model we find its most restrictive ranked ancestor (:mod:`modelatlas.discover.licences`)
by propagating ``(rank, ancestor)`` down the DAG until nothing changes — one vectorised pass per
level of the longest path — and remember through which parent it came, so the path that shows the
drift is read back by following those pointers.
"""

from __future__ import annotations

import numpy as np

from modelatlas.atlas.derived import AtlasFacts
from modelatlas.discover.licences import RANK_NAMES, RESTRICTED, licence_rank
from modelatlas.discover.paths import describe, path_text, walk


def licence_ranks(facts: AtlasFacts) -> np.ndarray:
    """Rank of every node's licence (``-1`` unranked)."""
    codes, labels = facts.codes("license")
    table = np.array([licence_rank(label) for label in labels] + [-1], dtype=np.int64)
    return table[np.where(codes >= 0, codes, len(labels))]


def strictest_ancestor(facts: AtlasFacts, ranks: np.ndarray):
    """Per node: the strictest ranked strict ancestor's rank and index (``-1`` if none), and the
    parent it was inherited through (``-1`` for none)."""
    g, n = facts.graph, facts.n
    own_key = np.where(ranks >= 0, ranks * n + np.arange(n), -1)
    best = np.full(n, -1, dtype=np.int64)
    if g.num_edges:
        # Group edges by child once; each pass is then one gather and one reduceat.
        by_child = np.argsort(g.child, kind="stable")
        parents, kids = g.parent[by_child], g.child[by_child]
        starts = np.r_[0, np.flatnonzero(np.diff(kids)) + 1]
        heads = kids[starts]
        for _ in range(n + 1):
            cand = np.maximum(own_key[parents], best[parents])
            new = best.copy()
            new[heads] = np.maximum(best[heads], np.maximum.reduceat(cand, starts))
            if np.array_equal(new, best):
                break
            best = new
    via = np.full(n, -1, dtype=np.int64)
    cand = np.maximum(own_key[g.parent], best[g.parent])
    hit = (cand == best[g.child]) & (cand >= 0)
    via[g.child[hit]] = g.parent[hit]
    rank = np.where(best >= 0, best // max(n, 1), -1)
    ancestor = np.where(best >= 0, best % max(n, 1), -1)
    return rank, ancestor, via


def _chain(via: np.ndarray, ancestor: int, child: int) -> list[int]:
    chain = [child]
    while chain[-1] != ancestor and via[chain[-1]] >= 0 and len(chain) <= via.size:
        chain.append(int(via[chain[-1]]))
    return chain[::-1]


def licence_drift(facts: AtlasFacts, limit: int | None = None) -> dict:
    """Every model whose declared licence is less restrictive than a restricted (or stricter) ancestor's.

    Returns
    -------
    dict with ``cases`` (total), ``by_pair`` (counts per ancestor licence -> child licence) and
    ``rows``: child, child licence, ancestor, ancestor licence, ranks, distance and the path, sorted
    by the child's downloads (at most ``limit`` rows with paths).
    """
    ranks = licence_ranks(facts)
    anc_rank, ancestor, via = strictest_ancestor(facts, ranks)
    drift = (ranks >= 0) & (anc_rank >= RESTRICTED) & (ranks < anc_rank)
    idx = np.flatnonzero(drift)
    idx = idx[np.lexsort((idx, -facts.downloads[idx]))]
    licences = facts.text("license")
    pairs: dict[str, int] = {}
    for a, c in zip(licences[ancestor[idx]], licences[idx]):
        key = f"{a} -> {c}"
        pairs[key] = pairs.get(key, 0) + 1
    rows = []
    for i in idx[:limit] if limit else idx:
        chain = _chain(via, int(ancestor[i]), int(i))
        steps = describe(facts, chain)
        rows.append({"child": facts.ids[i], "child_licence": licences[i], "child_class": RANK_NAMES[ranks[i]],
                     "ancestor": facts.ids[ancestor[i]], "ancestor_licence": licences[ancestor[i]],
                     "ancestor_class": RANK_NAMES[anc_rank[i]], "distance": len(chain) - 1,
                     "downloads": int(facts.downloads[i]), "path": path_text(steps)})
    return {"cases": int(idx.size), "models_with_ranked_licence": int((ranks >= 0).sum()),
            "by_pair": dict(sorted(pairs.items(), key=lambda kv: -kv[1])), "rows": rows}


def model_licence_findings(facts: AtlasFacts, node: int) -> list[dict]:
    """For one model: every restrictive ancestor whose licence is stricter than the model's."""
    ranks = licence_ranks(facts)
    own = int(ranks[node])
    if own < 0:
        return []
    order, pred = facts.ancestors(node)
    licences = facts.text("license")
    out = []
    for a in order[1:]:
        if ranks[a] >= RESTRICTED and ranks[a] > own:
            chain = walk(pred, node, int(a))  # ancestor first, model last
            out.append({"ancestor": facts.ids[a], "ancestor_licence": licences[a],
                        "ancestor_class": RANK_NAMES[ranks[a]], "licence": licences[node],
                        "class": RANK_NAMES[own], "distance": len(chain) - 1,
                        "path": path_text(describe(facts, chain))})
    return out
