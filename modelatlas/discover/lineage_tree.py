"""The family tree of one model, drawn outward from it: its ancestry (parents, their parents, ...)
or its descendants (children, their children, ...), bounded for display.

The atlas is a directed acyclic graph, not a tree: a merge has several parents, and a model can be
reached along several paths. The tree lists every path once up to the bounds, but a model met a
second time is shown as a ``repeat`` leaf and not expanded again, so that the tree stays linear in
the number of models it names. Children are listed most downloaded first (ties by id); past
``max_children`` at one node, or ``max_nodes`` in all, the rest is counted in ``more``
(docs/cli.md, "lineage --tree").
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import numpy as np

Direction = Literal["ancestors", "descendants"]


def lineage_tree(atlas, model_id: str, direction: Direction, *, max_depth: int | None = None,
                 max_children: int = 20, max_nodes: int = 500) -> dict:
    """The ancestry or descendant tree of ``model_id`` as nested dictionaries.

    Parameters
    ----------
    atlas:
        A :class:`~modelatlas.atlas.atlas.Atlas`.
    model_id:
        The model at the root; an unknown id raises :class:`~modelatlas.errors.UnknownModelError`.
    direction:
        ``"ancestors"`` follows edges from child to parent, ``"descendants"`` from parent to child.
    max_depth:
        Generations drawn (``None``: all).
    max_children:
        Branches drawn at one node; the others are counted in its ``more``.
    max_nodes:
        Models drawn in all (breadth first, so that near generations come first).

    Returns
    -------
    dict
        ``{"id", "relation", "provenance", "repeat", "more", "children": [...]}`` per model; the
        root has ``relation`` and ``provenance`` ``None``. ``relation`` / ``provenance`` are those
        of the edge between the model and the node above it; ``repeat`` marks a model already drawn
        elsewhere in the tree (not expanded again); ``more`` counts branches not drawn.
    """
    if direction not in ("ancestors", "descendants"):
        raise ValueError(f"direction must be 'ancestors' or 'descendants', not {direction!r}")
    if max_children < 1 or max_nodes < 1 or (max_depth is not None and max_depth < 0):
        raise ValueError("max_children and max_nodes must be positive, max_depth not negative")
    root = int(atlas.index_of([model_id])[0])
    g = atlas.graph
    ids = atlas.nodes["id"].to_pylist()
    relation = atlas.edges["relation"].to_pylist()
    provenance = atlas.edges["provenance"].to_pylist()
    downloads = np.nan_to_num(np.asarray(atlas.column("downloads"), dtype=np.float64))
    near, far = (g.child, g.parent) if direction == "ancestors" else (g.parent, g.child)
    order = np.lexsort((far, near))  # the edges of each node together (the k-th graph edge is edges row k)
    starts = np.searchsorted(near[order], np.arange(g.n + 1))

    def branches(node: int) -> list[int]:
        rows = order[starts[node]:starts[node + 1]]
        return sorted(rows.tolist(), key=lambda k: (-downloads[far[k]], ids[far[k]]))

    top = {"id": ids[root], "relation": None, "provenance": None, "repeat": False, "more": 0, "children": []}
    drawn = {root}
    count = 1
    queue = deque([(root, top, 0)])
    while queue:
        node, entry, depth = queue.popleft()
        rows = branches(node)
        if max_depth is not None and depth >= max_depth:
            entry["more"] = len(rows)
            continue
        for j, k in enumerate(rows):
            if j >= max_children or count >= max_nodes:
                entry["more"] = len(rows) - j
                break
            other = int(far[k])
            child = {"id": ids[other], "relation": relation[k], "provenance": provenance[k],
                     "repeat": other in drawn, "more": 0, "children": []}
            entry["children"].append(child)
            count += 1
            if not child["repeat"]:
                drawn.add(other)
                queue.append((other, child, depth + 1))
    return top
