"""Hubs: sets of sibling leaves (Model Atlas paper, section 4.2 "Model hubs" and Table 1b).

A hub is a group of at least ``min_size`` leaves that share exactly the same parent set. The
paper reports that 79% of models belong to some hub and imputes missing attributes by majority
vote inside a hub.
"""

from __future__ import annotations

import numpy as np

from modelatlas.atlas.graph import AtlasGraph


def sibling_leaf_hubs(graph: AtlasGraph, min_size: int = 2) -> np.ndarray:
    """Hub label of each node, ``-1`` for nodes in no hub.

    Leaves with a single parent are grouped by that parent; leaves with several parents (merges)
    by their whole parent set. Labels are dense, ``0..H-1``, in order of first member.
    """
    n = graph.n
    labels = np.full(n, -1, dtype=np.int64)
    leaf = (graph.out_degree == 0) & (graph.in_degree > 0)
    if not leaf.any():
        return labels
    rev = graph.reverse_adjacency
    leaf_idx = np.flatnonzero(leaf)
    single = leaf_idx[graph.in_degree[leaf_idx] == 1]
    multi = leaf_idx[graph.in_degree[leaf_idx] > 1]
    # Key: the single parent index, or a new key per distinct parent set of a merge leaf.
    key = np.full(n, -1, dtype=np.int64)
    key[single] = rev.indices[rev.indptr[single]]
    multi_keys: dict[tuple[int, ...], int] = {}
    for node in multi:
        parents = tuple(sorted(rev.indices[rev.indptr[node]:rev.indptr[node + 1]].tolist()))
        key[node] = n + multi_keys.setdefault(parents, len(multi_keys))
    uniq, inverse, counts = np.unique(key[leaf_idx], return_inverse=True, return_counts=True)
    big = counts[inverse] >= min_size
    members, groups = leaf_idx[big], inverse[big]
    if members.size:
        # Dense labels in order of each hub's first member.
        first = np.full(uniq.size, n, dtype=np.int64)
        np.minimum.at(first, groups, members)
        used = np.unique(groups)
        order = used[np.argsort(first[used], kind="stable")]
        remap = np.full(uniq.size, -1, dtype=np.int64)
        remap[order] = np.arange(order.size)
        labels[members] = remap[groups]
    return labels
