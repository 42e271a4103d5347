"""Structural virality of each family (Goel et al., "The structural virality of online diffusion",
2016; Laufer et al., appendix 8).

Structural virality of a tree with ``n > 1`` nodes is the mean shortest-path distance over all
pairs of nodes of the undirected tree: the Wiener index divided by ``C(n, 2)``. On a tree the
Wiener index is the sum over edges of ``s (n - s)``, ``s`` the number of nodes below the edge
(every path through the edge joins one of the ``s`` nodes to one of the other ``n - s``), so the
whole forest takes one subtree-size pass (:func:`modelatlas.atlas.subtree.descendant_counts`) —
linear time instead of all-pairs search.
"""

from __future__ import annotations

import numpy as np

from modelatlas.atlas.components import component_sizes, weakly_connected_components
from modelatlas.atlas.depth import depth_from_sources
from modelatlas.atlas.subtree import descendant_counts


def structural_virality(tree) -> dict:
    """Structural virality of every component of the fine-tune forest with at least 2 models.

    Returns
    -------
    dict with ``labels`` (component per node), ``sizes``, ``virality`` (float per component,
    NaN for single models), ``depth`` (deepest generation per component), and
    ``single_node_families`` (components of one model, for which virality is undefined).
    """
    graph = tree.graph
    labels = weakly_connected_components(graph)
    sizes = component_sizes(labels)
    below = descendant_counts(graph) + 1  # subtree size, the node itself included
    s = below[tree.child].astype(np.float64)
    comp = labels[tree.child]
    wiener = np.bincount(comp, weights=s * (sizes[comp] - s), minlength=sizes.size)
    pairs = sizes.astype(np.float64) * (sizes - 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        virality = np.where(sizes > 1, wiener / pairs, np.nan)
    depth = depth_from_sources(graph)
    max_depth = np.zeros(sizes.size, dtype=np.int64)
    np.maximum.at(max_depth, labels, depth)
    return {"labels": labels, "sizes": sizes, "virality": virality, "wiener": wiener, "depth": max_depth,
            "single_node_families": int((sizes == 1).sum())}


def virality_summary(result: dict, *, top: int = 10, ids=None, tree=None) -> dict:
    """Distribution of virality over families of at least 2 models, and the largest families."""
    v, sizes = result["virality"], result["sizes"]
    multi = sizes > 1
    vals = v[multi]
    summary = {"families": int(multi.sum()), "single_node_families": result["single_node_families"],
               "max_depth": int(result["depth"].max()) if result["depth"].size else 0}
    if vals.size:
        summary.update({"mean": float(vals.mean()), "median": float(np.median(vals)),
                        "p90": float(np.percentile(vals, 90)), "max": float(vals.max()),
                        "share_below_2": float((vals < 2).mean()),
                        "histogram": _hist(vals)})
    largest = np.argsort(-sizes, kind="stable")[:top]
    roots = None
    if tree is not None and ids is not None:
        root_nodes = np.flatnonzero(tree.parent < 0)
        roots = dict(zip(result["labels"][root_nodes].tolist(), root_nodes.tolist()))
    summary["largest"] = [{"component": int(c), "size": int(sizes[c]), "virality": float(v[c]),
                           "depth": int(result["depth"][c]),
                           "root": (ids[roots[int(c)]].as_py() if roots and int(c) in roots else None)}
                          for c in largest if sizes[c] > 1]
    return summary


def _hist(vals: np.ndarray) -> dict[str, int]:
    edges = np.array([1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, np.inf])
    counts, _ = np.histogram(vals, bins=edges)
    return {f"[{a:g}, {b:g})": int(k) for a, b, k in zip(edges[:-1], edges[1:], counts)}
