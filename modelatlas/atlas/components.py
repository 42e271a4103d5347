"""Weakly connected components of the atlas (Model Atlas paper, section 2: a "component" is a
family of models sharing ancestry, e.g. all descendants of Llama-3.2-1B)."""

from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components

from modelatlas.atlas.graph import AtlasGraph


def weakly_connected_components(graph: AtlasGraph) -> np.ndarray:
    """Label every node with its weakly connected component.

    Labels are ordered by component size, largest first (ties by smallest member index), so
    component ``0`` is the biggest family.

    Returns
    -------
    numpy.ndarray of int64, shape ``(n,)``
    """
    if graph.n == 0:
        return np.zeros(0, dtype=np.int64)
    _, labels = connected_components(graph.adjacency, directed=True, connection="weak")
    sizes = np.bincount(labels)
    first = np.full(sizes.size, graph.n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(graph.n))
    order = np.lexsort((first, -sizes))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[labels].astype(np.int64)


def component_sizes(labels: np.ndarray) -> np.ndarray:
    """Number of nodes in each component, indexed by label."""
    return np.bincount(labels) if labels.size else np.zeros(0, dtype=np.int64)
