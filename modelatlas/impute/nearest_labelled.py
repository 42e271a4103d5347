"""The k nearest labelled models of every model by path length in the undirected atlas
(Model Atlas paper, section 4.2 "Graph kNN" and Table 1a).

A multi-source breadth-first search run level by level over the whole graph at once: each node
keeps its (at most ``k``) nearest sources found so far, and each level only expands the entries
found at the previous level. Keeping ``k`` per node is exact: if source ``s`` is among the ``k``
nearest of ``v`` through a neighbour ``u``, then ``s`` is among the ``k`` nearest of ``u`` too
(any source nearer to ``u`` is nearer to ``v``). Ties at equal distance are broken by source index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from modelatlas.atlas.graph import AtlasGraph


@dataclass
class NearestLabelled:
    """Result of :func:`k_nearest_labelled`.

    Attributes
    ----------
    source:
        ``(n, k)`` int64: the labelled nodes nearest to each node, nearest first; ``-1`` pads.
    distance:
        ``(n, k)`` int64: their path lengths; ``-1`` pads.
    """

    source: np.ndarray
    distance: np.ndarray

    def without_self(self, k: int) -> "NearestLabelled":
        """Drop each node's own entry (distance 0) and keep ``k`` columns: neighbours of a labelled
        node other than itself, for leave-one-out features."""
        n, width = self.source.shape
        own = self.source == np.arange(n)[:, None]
        keep = ~own
        # Stable left-shift of the kept entries of every row.
        order = np.argsort(~keep, axis=1, kind="stable")
        src = np.take_along_axis(np.where(keep, self.source, -1), order, axis=1)[:, :k]
        dist = np.take_along_axis(np.where(keep, self.distance, -1), order, axis=1)[:, :k]
        if src.shape[1] < k:
            pad = k - src.shape[1]
            src = np.hstack([src, np.full((n, pad), -1)])
            dist = np.hstack([dist, np.full((n, pad), -1)])
        return NearestLabelled(src, dist)


def undirected(graph: AtlasGraph) -> sp.csr_matrix:
    """Symmetric CSR adjacency of the atlas (edge direction ignored)."""
    a = (graph.adjacency + graph.reverse_adjacency).tocsr()
    a.data[:] = 1
    return a


def k_nearest_labelled(graph: AtlasGraph, labelled: np.ndarray, k: int,
                       max_distance: int | None = None) -> NearestLabelled:
    """For every node, its ``k`` nearest labelled nodes by undirected path length.

    Parameters
    ----------
    graph:
        The atlas graph.
    labelled:
        Boolean mask of nodes whose value is known. A labelled node is its own nearest (distance 0).
    k:
        Neighbours per node.
    max_distance:
        Stop the search at this path length (``None``: search whole components).

    Returns
    -------
    NearestLabelled
    """
    n = graph.n
    labelled = np.asarray(labelled, dtype=bool)
    if labelled.shape != (n,):
        raise ValueError(f"expected a mask of {n} nodes, got {labelled.shape}")
    if k < 1:
        raise ValueError("k must be at least 1")
    adj = undirected(graph)
    indptr, indices = adj.indptr, adj.indices
    seeds = np.flatnonzero(labelled)
    nodes, srcs, dists = [seeds], [seeds], [np.zeros(seeds.size, dtype=np.int64)]
    count = labelled.astype(np.int64)
    # A pair (v, s) reached at level d was, if ever, reached before at level d-1 or d-2 (neighbours'
    # distances differ by at most one), so only the last two levels are checked for repeats.
    recent = [np.zeros(0, dtype=np.int64), np.sort(seeds * n + seeds)]
    f_node, f_src = seeds, seeds
    level = 0
    while f_node.size and (max_distance is None or level < max_distance):
        level += 1
        deg = indptr[f_node + 1] - indptr[f_node]
        total = int(deg.sum())
        if total == 0:
            break
        starts = np.repeat(indptr[f_node], deg)
        offsets = np.arange(total) - np.repeat(np.cumsum(deg) - deg, deg)
        v = indices[starts + offsets].astype(np.int64)
        s = np.repeat(f_src, deg)
        open_ = count[v] < k
        v, s = v[open_], s[open_]
        keys = np.unique(v * n + s)
        keys = keys[~(_sorted_contains(recent[0], keys) | _sorted_contains(recent[1], keys))]
        v, s = keys // n, keys % n
        # Keys are sorted by (node, source): keep the first k - count[v] of each node's run.
        run_start = np.r_[0, np.flatnonzero(np.diff(v)) + 1]
        rank = np.arange(v.size) - np.repeat(run_start, np.diff(np.r_[run_start, v.size]))
        take = rank < (k - count[v])
        v, s = v[take], s[take]
        np.add.at(count, v, 1)
        nodes.append(v)
        srcs.append(s)
        dists.append(np.full(v.size, level, dtype=np.int64))
        recent = [recent[1], v * n + s]
        f_node, f_src = v, s
    node = np.concatenate(nodes)
    src = np.concatenate(srcs)
    dist = np.concatenate(dists)
    order = np.lexsort((src, dist, node))
    node, src, dist = node[order], src[order], dist[order]
    run_start = np.searchsorted(node, np.arange(n))
    col = np.arange(node.size) - run_start[node]
    out_src = np.full((n, k), -1, dtype=np.int64)
    out_dist = np.full((n, k), -1, dtype=np.int64)
    out_src[node, col] = src
    out_dist[node, col] = dist
    return NearestLabelled(out_src, out_dist)


def _sorted_contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=bool)
    pos = np.searchsorted(sorted_keys, keys)
    pos = np.minimum(pos, sorted_keys.size - 1)
    return sorted_keys[pos] == keys
