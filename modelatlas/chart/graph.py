"""Graph utilities on ``child -> parents`` maps of row indices, shared by every charting method.

Known edges (the evaluation stem, DESIGN.md "Interfaces") and predictions are both written as
``child row -> tuple of parent rows``; an empty tuple marks a known root. Cycles are found with
networkx.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from modelatlas.errors import InputError

#: child index -> tuple of parent indices (an empty tuple means "known root").
KnownEdges = Mapping[int, tuple[int, ...]]


def restrict_parents(parents: KnownEdges, rows: np.ndarray) -> dict[int, tuple[int, ...]]:
    """``parents`` restricted to the models at ``rows`` and renumbered to positions in ``rows``.

    Parameters
    ----------
    parents:
        ``child -> parents`` over the full set of models.
    rows:
        The subset, as indices into the full set; position ``i`` of ``rows`` becomes index ``i``.

    Returns
    -------
    dict
        ``child -> parents`` for every child inside the subset; parents outside it are dropped
        (a child whose every parent is outside keeps an empty tuple, i.e. reads as a root).
    """
    new_index = {int(r): i for i, r in enumerate(np.asarray(rows, dtype=np.int64).tolist())}
    return {new_index[c]: tuple(new_index[p] for p in ps if p in new_index)
            for c, ps in parents.items() if c in new_index}


def check_known_edges(known: KnownEdges, n: int) -> dict[int, tuple[int, ...]]:
    """Validate known edges: indices in range, no self-loops, no cycles.

    Raises
    ------
    InputError
        Naming the offending model index (a cycle lists its members).
    """
    out: dict[int, tuple[int, ...]] = {}
    for c, ps in known.items():
        c = int(c)
        ps = tuple(int(p) for p in ps)
        if not 0 <= c < n or any(not 0 <= p < n for p in ps):
            raise InputError(f"known edge into model {c} names an index outside 0..{n - 1}",
                             where="known_edges")
        if c in ps:
            raise InputError(f"known edges make model {c} its own parent", where="known_edges")
        out[c] = ps
    cycle = find_cycle(out)
    if cycle:
        raise InputError("known edges contain a cycle: " + " -> ".join(map(str, cycle)),
                         where="known_edges")
    return out


def edges_closing_cycles(parent: np.ndarray, child: np.ndarray, confidence: np.ndarray, known: KnownEdges,
                         keep: np.ndarray, messages: list[str]) -> np.ndarray:
    """Predicted edges to drop so that predictions plus known edges stay acyclic.

    A method may constrain only part of the stem (e.g. one parent of a known merge, or a tree
    cluster that holds only one end of a known edge), so a prediction can close a cycle through
    known edges. Each such cycle loses its least confident predicted edge; known edges are
    acyclic on their own (:func:`check_known_edges`), so every cycle has a predicted edge.

    Returns
    -------
    numpy.ndarray of bool
        One flag per predicted edge (``True``: drop it); each drop adds a line to ``messages``.
    """
    drop = np.zeros(len(child), dtype=bool)
    while True:
        parents: dict[int, list[int]] = {c: list(ps) for c, ps in known.items()}
        edge_of: dict[tuple[int, int], int] = {}
        for e in np.flatnonzero(keep & ~drop):
            p, c = int(parent[e]), int(child[e])
            parents.setdefault(c, []).append(p)
            edge_of[(p, c)] = int(e)
        cycle = find_cycle({c: tuple(ps) for c, ps in parents.items()})
        if not cycle:
            return drop
        on_cycle = [edge_of[(a, b)] for a, b in zip(cycle, cycle[1:]) if (a, b) in edge_of]
        worst = min(on_cycle, key=lambda e: confidence[e])
        drop[worst] = True
        messages.append(f"predicted edge {int(parent[worst])} -> {int(child[worst])} "
                        "closed a cycle with known edges and was dropped")


def find_cycle(parents: KnownEdges) -> list[int]:
    """One directed cycle in ``child -> parents`` (as a list of nodes, first repeated), or ``[]``."""
    import networkx as nx

    g = nx.DiGraph((p, c) for c, ps in parents.items() for p in ps)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return []
    return [int(a) for a, _ in cycle] + [int(cycle[0][0])]


def known_descendants(known: KnownEdges, node: int) -> set[int]:
    """Models below ``node`` through known edges (a new parent for ``node`` must avoid them)."""
    children: dict[int, list[int]] = {}
    for c, ps in known.items():
        for p in ps:
            children.setdefault(p, []).append(c)
    return descendants_of(children, node)


def descendants_of(children: Mapping[int, list[int]], node: int) -> set[int]:
    """Every model below ``node`` in a ``parent -> children`` map (``node`` itself excluded)."""
    out, stack = set(), [node]
    while stack:
        for c in children.get(stack.pop(), ()):
            if c not in out:
                out.add(c)
                stack.append(c)
    return out
