"""Shortest directed paths between a model and its ancestors or descendants, with the relation of
each step (for the "path that shows it" of forensics and the reasons of search results)."""

from __future__ import annotations

import numpy as np

from modelatlas.atlas.derived import AtlasFacts


def walk(predecessors: np.ndarray, start: int, target: int) -> list[int]:
    """Nodes from ``target`` back to ``start`` following ``predecessors`` (``start`` last), e.g. those of
    :meth:`~modelatlas.atlas.derived.AtlasFacts.ancestors`."""
    path = [target]
    while path[-1] != start:
        step = int(predecessors[path[-1]])
        if step < 0:
            return []
        path.append(step)
    return path


def describe(facts: AtlasFacts, chain: list[int]) -> list[dict]:
    """``chain`` (a top-down path) as steps ``{"parent", "child", "relation"}``."""
    return [{"parent": facts.ids[p], "child": facts.ids[c], "relation": facts.relation_of(p, c)}
            for p, c in zip(chain[:-1], chain[1:])]


def path_text(steps: list[dict]) -> str:
    """``a -finetune-> b -quantized-> c``."""
    if not steps:
        return ""
    out = steps[0]["parent"]
    for s in steps:
        out += f" -{s['relation']}-> {s['child']}"
    return out


def descendant_distances(facts: AtlasFacts, starts: np.ndarray):
    """Breadth-first search down from several models at once.

    Returns
    -------
    distance, predecessor, origin : per node, the number of steps from the nearest start (``-1``
    if not a descendant; 0 for the starts), the parent on that shortest path and the start it
    leads back to.
    """
    n = facts.n
    starts = np.unique(np.asarray(starts, dtype=np.int64))
    dist = np.full(n, -1, dtype=np.int64)
    origin = np.full(n, -1, dtype=np.int64)
    pred = np.full(n, -1, dtype=np.int64)
    dist[starts], origin[starts] = 0, starts
    adjacency = facts.graph.adjacency
    frontier, level = starts, 0
    while frontier.size:
        level += 1
        rows = adjacency[frontier]
        children = rows.indices.astype(np.int64)
        parents = np.repeat(frontier, np.diff(rows.indptr))
        new = dist[children] < 0
        children, first = np.unique(children[new], return_index=True)
        parents = parents[new][first]
        dist[children], pred[children], origin[children] = level, parents, origin[parents]
        frontier = children
    return dist, pred, origin


def chain_to(pred: np.ndarray, node: int) -> list[int]:
    """Top-down chain from the search start to ``node`` following ``pred`` pointers."""
    chain = [int(node)]
    while pred[chain[-1]] >= 0:
        chain.append(int(pred[chain[-1]]))
    return chain[::-1]
