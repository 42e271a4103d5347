"""Depth of each model: the length of the shortest directed path from any source.

We use the *shortest* path so that a merge of a root and a deep model sits one step below the
root, which is how the Hub's model tree places it and how the Model Atlas paper counts
"depth 1" (a direct child of a foundation model). Sources have depth 0.
"""

from __future__ import annotations

import numpy as np

from modelatlas.atlas.graph import AtlasGraph


def depth_from_sources(graph: AtlasGraph) -> np.ndarray:
    """Breadth-first depth from all sources at once.

    Returns
    -------
    numpy.ndarray of int64, shape ``(n,)``: the depth, or ``-1`` for nodes no source reaches
    (only possible if the graph still holds a cycle).
    """
    depth = np.full(graph.n, -1, dtype=np.int64)
    frontier = graph.sources()
    level = 0
    adjacency = graph.adjacency
    while frontier.size:
        depth[frontier] = level
        nxt = np.unique(adjacency[frontier].indices)
        frontier = nxt[depth[nxt] < 0]
        level += 1
    return depth
