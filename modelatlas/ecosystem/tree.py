"""The fine-tune forest the "Anatomy" analyses run on (Laufer et al., section 3, "Analyzing
fine-tuning trees").

The paper keeps only fine-tune edges, so that every model has at most one parent ("asexual
reproduction"), and skips parents that are not in the data. We do the same from an atlas:

* edges with ``relation == "finetune"``;
* edges touching a placeholder node are dropped (the paper skips parents absent from the data;
  a placeholder carries no metadata to compare), unless ``include_placeholders=True``;
* a child with several fine-tune parents keeps the strongest edge (highest confidence, then the
  first in the atlas's edge order); the others are counted in :attr:`FinetuneTree.dropped_parents`
  so nothing is lost silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow.compute as pc

from modelatlas.atlas.graph import AtlasGraph


@dataclass(eq=False)
class FinetuneTree:
    """A forest over the atlas's nodes: ``parent[v]`` is ``v``'s parent or ``-1``.

    Attributes
    ----------
    parent:
        int64 array, one entry per atlas node.
    population:
        Boolean mask of the nodes that count as models (real, non-placeholder nodes unless
        placeholders were included): random pairs are drawn from them.
    dropped_parents:
        Fine-tune edges dropped because their child already had a stronger fine-tune parent.
    dropped_placeholder_edges:
        Fine-tune edges dropped because one end is a placeholder.
    """

    parent: np.ndarray
    population: np.ndarray
    dropped_parents: int = 0
    dropped_placeholder_edges: int = 0
    ids: object = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return int(self.parent.size)

    @cached_property
    def child(self) -> np.ndarray:
        """Children of the edges, sorted by parent (edge ``k`` is ``edge_parent[k] -> child[k]``)."""
        has = np.flatnonzero(self.parent >= 0)
        return has[np.argsort(self.parent[has], kind="stable")]

    @cached_property
    def edge_parent(self) -> np.ndarray:
        return self.parent[self.child]

    @property
    def num_edges(self) -> int:
        return int(self.child.size)

    @cached_property
    def out_degree(self) -> np.ndarray:
        return np.bincount(self.edge_parent, minlength=self.n).astype(np.int64)

    @cached_property
    def child_ptr(self) -> np.ndarray:
        """CSR pointer: the children of ``u`` are ``child[child_ptr[u]:child_ptr[u + 1]]``."""
        ptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(self.out_degree, out=ptr[1:])
        return ptr

    @cached_property
    def graph(self) -> AtlasGraph:
        """The forest as an :class:`AtlasGraph` (for the shared graph algorithms)."""
        return AtlasGraph(self.n, self.edge_parent, self.child, self.ids)

    @classmethod
    def from_parents(cls, parent, population=None) -> "FinetuneTree":
        """A forest from a parent array (``-1`` for roots); for tests and synthetic data."""
        parent = np.asarray(parent, dtype=np.int64)
        pop = np.ones(parent.size, dtype=bool) if population is None else np.asarray(population, bool)
        return cls(parent, pop)


def finetune_tree(atlas, *, include_placeholders: bool = False) -> FinetuneTree:
    """Extract the fine-tune forest of ``atlas`` (rules in the module docstring).

    Parameters
    ----------
    atlas:
        A :class:`modelatlas.Atlas`.
    include_placeholders:
        Keep fine-tune edges whose parent or child is a placeholder node.

    Returns
    -------
    FinetuneTree
    """
    n = atlas.num_nodes
    graph = atlas.graph
    placeholder = np.asarray(atlas.column("placeholder"), dtype=bool) if n else np.zeros(0, bool)
    relation = atlas.edges["relation"]
    is_ft = pc.equal(relation, "finetune").to_numpy(zero_copy_only=False).astype(bool) \
        if atlas.num_edges else np.zeros(0, bool)
    p, c = graph.parent[is_ft], graph.child[is_ft]
    conf = atlas.edges["confidence"].to_numpy(zero_copy_only=False)[is_ft] if atlas.num_edges else np.zeros(0)
    dropped_ph = 0
    if not include_placeholders:
        keep = ~(placeholder[p] | placeholder[c])
        dropped_ph = int((~keep).sum())
        p, c, conf = p[keep], c[keep], conf[keep]
    # strongest edge per child: sort by (child, -confidence, edge order) and keep the first
    order = np.lexsort((np.arange(c.size), -conf, c))
    p, c = p[order], c[order]
    first = np.ones(c.size, dtype=bool)
    first[1:] = c[1:] != c[:-1]
    parent = np.full(n, -1, dtype=np.int64)
    parent[c[first]] = p[first]
    population = np.ones(n, dtype=bool) if include_placeholders else ~placeholder
    return FinetuneTree(parent, population, int((~first).sum()), dropped_ph, atlas.nodes["id"])
