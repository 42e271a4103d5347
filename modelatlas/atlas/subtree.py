"""Sums over each model's descendants, every descendant counted once.

The Model Atlas paper ranks models by the downloads of their whole subtree (section 3.2,
"sub_tree_downloads"). Its released code sums children's totals recursively, which counts a
descendant once per path when merges make several paths (ANCHORS.md). Here each descendant counts
exactly once:

* nodes with no merge (in-degree > 1) among themselves or their ancestors form a forest: each has
  one ancestor chain, so a level-by-level bottom-up ``np.add.at`` is exact;
* the remaining "merge-tainted" nodes (merges and their descendants, a small share of a real hub)
  get their full ancestor sets as rows of a sparse boolean matrix ``R`` (one sparse product per
  generation, from the frontier only), and add their weight to each ancestor once: ``R.T @ w``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from modelatlas.atlas.depth import depth_from_sources
from modelatlas.atlas.graph import AtlasGraph, reachable


def descendant_sums(graph: AtlasGraph, weights: np.ndarray | None = None) -> np.ndarray:
    """For every node, the sum of ``weights`` over its descendants (itself excluded).

    Parameters
    ----------
    graph:
        An acyclic graph.
    weights:
        One non-negative number per node; ``None`` counts descendants.

    Returns
    -------
    numpy.ndarray of float64, shape ``(n,)``
    """
    n = graph.n
    w = np.ones(n) if weights is None else np.nan_to_num(np.asarray(weights, dtype=np.float64))
    if w.shape != (n,):
        raise ValueError(f"expected {n} weights, got {w.shape}")
    if n == 0:
        return np.zeros(0)

    tainted = reachable(graph.adjacency, graph.in_degree > 1)

    # Exact forest part: every clean node has at most one parent, and that parent is clean.
    clean_edge = ~tainted[graph.child]
    parent_of = np.full(n, -1, dtype=np.int64)
    parent_of[graph.child[clean_edge]] = graph.parent[clean_edge]
    depth = depth_from_sources(graph.subgraph_mask(clean_edge))
    total = np.where(tainted, 0.0, w)
    has_parent = parent_of >= 0
    for level in range(int(depth.max(initial=0)), 0, -1):
        nodes = np.flatnonzero((depth == level) & has_parent & ~tainted)
        np.add.at(total, parent_of[nodes], total[nodes])
    result = np.where(tainted, 0.0, total - w)

    # Merge-tainted part: full ancestor sets, each ancestor credited once.
    t_idx = np.flatnonzero(tainted)
    if t_idx.size:
        result += _ancestor_sets(graph, t_idx).T @ w[t_idx]
    return result


def _ancestor_sets(graph: AtlasGraph, rows: np.ndarray) -> sp.csr_matrix:
    """Row ``i``: indicator of the ancestors of node ``rows[i]`` (acyclic graph).

    Walks one generation per step from the current frontier only (the nodes at exactly ``k``
    steps), so the work is the sum of the frontiers rather than depth × the growing ancestor sets;
    the generations are unioned once at the end.
    """
    parents_of = graph.reverse_adjacency.astype(np.int32)  # row c lists c's parents
    frontier = parents_of[rows]
    parts_r, parts_c = [], []
    while frontier.nnz:
        coo = frontier.tocoo()
        parts_r.append(coo.row)
        parts_c.append(coo.col)
        frontier = frontier @ parents_of
        frontier.data[:] = 1  # path counts can grow exponentially; only reachability matters
    r = np.concatenate(parts_r) if parts_r else np.zeros(0, np.int64)
    c = np.concatenate(parts_c) if parts_c else np.zeros(0, np.int64)
    ancestors = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(rows.size, graph.n))
    ancestors.sum_duplicates()
    ancestors.data[:] = 1.0
    return ancestors


def sub_tree_downloads(graph: AtlasGraph, downloads: np.ndarray) -> np.ndarray:
    """Own downloads plus every descendant's, each descendant counted once (int64)."""
    own = np.nan_to_num(np.asarray(downloads, dtype=np.float64))
    return np.rint(own + descendant_sums(graph, own)).astype(np.int64)


def descendant_counts(graph: AtlasGraph) -> np.ndarray:
    """Number of distinct descendants of every node (int64)."""
    return np.rint(descendant_sums(graph)).astype(np.int64)
