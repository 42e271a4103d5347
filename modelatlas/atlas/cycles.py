"""Cycle removal that keeps merges intact (issue 2, "Graph core").

Hub metadata contains self-references and occasional cycles (model A names B as its base and B
names A). The Model Atlas preprocessing deletes the *first* edge of each cycle found, which can cut
a merge off from one of its parents (its own TODO says so, ANCHORS.md). Here:

* self-loops are dropped;
* every remaining cycle is broken at its *newest* edge, the edge whose later endpoint was created
  last (the claim most likely to be the mistaken one: a model cannot descend from a younger one).
  Ties fall to the lexicographically largest ``(parent, child)`` pair so the result is
  deterministic. Edges outside cycles, and so every merge's other parents, are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import connected_components

from modelatlas.atlas.graph import AtlasGraph


@dataclass(frozen=True)
class RemovedEdge:
    """An edge removed to make the graph acyclic, and why."""

    parent: int
    child: int
    reason: str  # "self_loop" or "cycle"
    cycle: tuple[int, ...] = ()


def break_cycles(graph: AtlasGraph, created_at: np.ndarray) -> tuple[np.ndarray, list[RemovedEdge]]:
    """Choose edges to drop so that the graph becomes a DAG.

    Parameters
    ----------
    graph:
        The graph, possibly cyclic.
    created_at:
        One number per node (e.g. epoch microseconds); missing times as ``-inf``, which makes an
        edge touching them look old.

    Returns
    -------
    keep:
        Boolean mask over ``graph``'s edges.
    removed:
        The dropped edges with the reason and, for cycles, the cycle that was broken.
    """
    keep = graph.parent != graph.child
    removed = [RemovedEdge(int(p), int(p), "self_loop") for p in graph.parent[~keep]]
    if graph.num_edges == 0:
        return keep, removed
    sub = graph.subgraph_mask(keep)
    n_scc, labels = connected_components(sub.adjacency, directed=True, connection="strong")
    sizes = np.bincount(labels, minlength=n_scc)
    cyclic = sizes[labels] > 1
    in_scc = keep & cyclic[graph.parent] & cyclic[graph.child] & (labels[graph.parent] == labels[graph.child])
    if not in_scc.any():
        return keep, removed

    times = np.asarray(created_at, dtype=np.float64)
    edge_ids = np.flatnonzero(in_scc)
    g = nx.DiGraph()
    for e in edge_ids:
        g.add_edge(int(graph.parent[e]), int(graph.child[e]), index=int(e))
    names = graph.ids

    def sort_key(u: int, v: int):
        newest = max(times[u], times[v])
        label = (str(names[u]), str(names[v])) if names is not None else (u, v)
        return (newest, label)

    for component in nx.strongly_connected_components(g):
        if len(component) < 2:
            continue
        h = g.subgraph(component).copy()
        while True:
            try:
                cycle = nx.find_cycle(h)
            except nx.NetworkXNoCycle:
                break
            u, v = max(((a, b) for a, b in cycle), key=lambda ab: sort_key(*ab))
            keep[h.edges[u, v]["index"]] = False
            removed.append(RemovedEdge(u, v, "cycle", tuple(a for a, _ in cycle)))
            h.remove_edge(u, v)
    return keep, removed
