"""Per-node and per-edge arrays that the statistics, imputation and discovery share.

:class:`AtlasFacts` computes each array once, on first use, from the graph core in
:mod:`modelatlas.atlas` (components, depth, descendant sums, hubs): nothing here re-implements
a graph algorithm.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse.csgraph import connected_components

from modelatlas.analytics.modality import UNKNOWN_MODALITY, node_modality
from modelatlas.analytics.tables import Grouping
from modelatlas.atlas.components import component_sizes, weakly_connected_components
from modelatlas.atlas.depth import depth_from_sources
from modelatlas.atlas.hubs import sibling_leaf_hubs
from modelatlas.atlas.subtree import descendant_counts, descendant_sums
from modelatlas.errors import InputError


class AtlasFacts:
    """Lazily computed arrays over one atlas; node ``i`` is ``atlas.nodes`` row ``i`` and edge
    ``k`` is ``atlas.edges`` row ``k``.

    Parameters
    ----------
    atlas:
        A :class:`~modelatlas.atlas.atlas.Atlas`.
    top_components:
        How many of the biggest components get their own group in :meth:`groupings`.
    """

    def __init__(self, atlas, top_components: int = 10):
        self.atlas = atlas
        self.top_components = top_components

    # ------------------------------------------------------------------ graph
    @cached_property
    def graph(self):
        """The atlas graph, checked to be acyclic (every statistic assumes a DAG)."""
        graph = self.atlas.graph
        loops = graph.parent == graph.child
        n_scc, labels = connected_components(graph.adjacency, directed=True, connection="strong") \
            if graph.n else (0, np.zeros(0, dtype=np.int64))
        if loops.any() or n_scc < graph.n:
            sizes = np.bincount(labels)
            members = np.flatnonzero(sizes[labels] > 1)
            if members.size == 0:
                members = graph.parent[loops]
            names = ", ".join(repr(str(self.atlas.nodes["id"][int(i)])) for i in members[:5])
            raise InputError(f"the atlas's edges hold a cycle through {names}; rebuild the atlas "
                             "(Atlas.build / modelatlas ingest break cycles) before analysing it")
        return graph

    @property
    def n(self) -> int:
        return self.atlas.num_nodes

    @cached_property
    def ids(self) -> np.ndarray:
        return np.asarray(self.atlas.nodes["id"].to_numpy(zero_copy_only=False), dtype=object)

    @cached_property
    def real(self) -> np.ndarray:
        """True for models with a record of their own (not placeholders)."""
        return ~self.atlas.column("placeholder").astype(bool)

    @cached_property
    def components(self) -> np.ndarray:
        return weakly_connected_components(self.graph)

    @cached_property
    def component_sizes(self) -> np.ndarray:
        return component_sizes(self.components)

    @cached_property
    def depth(self) -> np.ndarray:
        """Shortest-path depth below a source."""
        return depth_from_sources(self.graph)

    @cached_property
    def hubs(self) -> np.ndarray:
        return sibling_leaf_hubs(self.graph)

    @cached_property
    def is_leaf(self) -> np.ndarray:
        return self.graph.out_degree == 0

    @cached_property
    def is_source(self) -> np.ndarray:
        return self.graph.in_degree == 0

    # ------------------------------------------------------------------ node values
    @cached_property
    def downloads(self) -> np.ndarray:
        """Downloads as float64, missing as 0 (placeholders have none)."""
        return np.nan_to_num(self.atlas.column("downloads").astype(np.float64))

    @cached_property
    def descendant_downloads(self) -> np.ndarray:
        """Downloads of each node's descendants, each descendant once."""
        return descendant_sums(self.graph, self.downloads)

    @cached_property
    def sub_tree_downloads(self) -> np.ndarray:
        """Own plus descendants' downloads (paper, Appendix A)."""
        return self.downloads + self.descendant_downloads

    @cached_property
    def descendant_counts(self) -> np.ndarray:
        return descendant_counts(self.graph)

    @cached_property
    def modality(self) -> np.ndarray:
        """Modality per node (:func:`node_modality`); a model without a task (e.g. a placeholder
        child listed on the Hub tree) takes its nearest ancestor's, so that a family's adapters and
        quantisations are counted with the family's modality. ``unknown`` only where no ancestor
        has a task either."""
        mod = node_modality(self.atlas.nodes).copy()
        g = self.graph
        unknown = mod == UNKNOWN_MODALITY
        while unknown.any():
            take = unknown[g.child] & ~unknown[g.parent]
            if not take.any():
                break
            mod[g.child[take]] = mod[g.parent[take]]
            unknown = mod == UNKNOWN_MODALITY
        return mod

    @cached_property
    def created(self) -> np.ndarray:
        """``created_at`` in microseconds since the epoch (float64, NaN where missing)."""
        col = self.atlas.nodes["created_at"]
        values = pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64)

    def flag(self, name: str) -> np.ndarray:
        """A boolean node column, missing as False."""
        return np.asarray(pc.fill_null(self.atlas.nodes[name], False).to_numpy(zero_copy_only=False), dtype=bool)

    def codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        """Integer codes of a text column (also ``modality`` and ``relation_type``), ``-1`` where
        missing or empty, and the label of each code (sorted). Cached."""
        cache = self.__dict__.setdefault("_codes", {})
        if name not in cache:
            if name == "modality":
                col = pa.array(self.modality.tolist(), pa.string())
            elif name == "relation_type":
                col = pa.array(self.node_relation.tolist(), pa.string())
            else:
                col = self.atlas.nodes[name].combine_chunks()
            if len(col):
                col = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
            encoded = col.dictionary_encode()
            labels = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
            order = np.argsort(labels.astype(str)) if labels.size else np.zeros(0, dtype=np.int64)
            rank = np.empty(order.size, dtype=np.int64)
            rank[order] = np.arange(order.size)
            idx = encoded.indices.to_numpy(zero_copy_only=False)
            out = np.full(self.n, -1, dtype=np.int64)
            if idx.size:
                known = ~np.isnan(idx.astype(np.float64))
                out[known] = rank[idx[known].astype(np.int64)]
            cache[name] = (out, [str(x) for x in labels[order]])
        return cache[name]

    def text(self, name: str) -> np.ndarray:
        """A string node column as an object array (None where missing); cached."""
        cache = self.__dict__.setdefault("_text", {})
        if name not in cache:
            cache[name] = np.asarray(self.atlas.column(name), dtype=object)
        return cache[name]

    # ------------------------------------------------------------------ edges
    @cached_property
    def edge_relation(self) -> np.ndarray:
        return np.asarray(self.atlas.edges["relation"].to_numpy(zero_copy_only=False), dtype=object)

    @cached_property
    def _edge_keys(self) -> tuple[np.ndarray, np.ndarray]:
        keys = self.graph.parent * max(self.n, 1) + self.graph.child
        order = np.argsort(keys, kind="stable")
        return keys[order], order

    def relation_of(self, parent: int, child: int) -> str | None:
        """The relation of edge ``parent -> child`` (None if there is no such edge)."""
        keys, order = self._edge_keys
        key = parent * max(self.n, 1) + child
        pos = int(np.searchsorted(keys, key))
        if pos < keys.size and keys[pos] == key:
            return str(self.edge_relation[order[pos]])
        return None

    @cached_property
    def quantized(self) -> np.ndarray:
        """Quantised models: flagged by a reader, or the child of a ``quantized`` edge."""
        flag = self.flag("quantized").copy()
        flag[self.graph.child[self.edge_relation == "quantized"]] = True
        return flag

    @cached_property
    def merged(self) -> np.ndarray:
        """Merged models: several parents, or the child of a ``merge`` edge."""
        flag = self.graph.in_degree > 1
        flag[self.graph.child[self.edge_relation == "merge"]] = True
        return flag

    @cached_property
    def node_relation(self) -> np.ndarray:
        """A model's relation to its parent(s) (Table 1b's ``relation_type``): ``merge`` for several
        parents, else the incoming edge's relation; None for sources and ``unknown`` relations."""
        rel = np.full(self.n, None, dtype=object)
        single = self.graph.in_degree[self.graph.child] == 1
        rel[self.graph.child[single]] = self.edge_relation[single]
        rel[self.merged] = "merge"
        rel[rel == "unknown"] = None
        return rel

    # ------------------------------------------------------------------ groupings
    def component_names(self) -> list[str]:
        """``c<label>: <main source>`` for the biggest components (source with most sub-tree downloads)."""
        k = min(self.top_components, self.component_sizes.size)
        names = []
        src = np.flatnonzero(self.is_source)
        for label in range(k):
            members = src[self.components[src] == label]
            if members.size:
                best = members[np.lexsort((members, -self.sub_tree_downloads[members]))[0]]
                names.append(f"c{label}: {self.ids[best]}")
            else:
                names.append(f"c{label}")
        return names

    @cached_property
    def _groupings(self) -> list[Grouping]:
        return self._make_groupings()

    def groupings(self) -> list[Grouping]:
        """The whole atlas, modalities, the biggest components (with an edge) and months (cached)."""
        return self._groupings

    def _make_groupings(self) -> list[Grouping]:
        """The whole atlas, modalities, the biggest components (with an edge) and months."""
        n = self.n
        out = [Grouping("all", np.zeros(n, dtype=np.int64), ["all"])]
        mcodes, mods = self.codes("modality")
        out.append(Grouping("modality", mcodes, mods))
        names = self.component_names()
        multi = [i for i in range(len(names)) if self.component_sizes[i] > 1]
        codes = np.where(np.isin(self.components, multi), self.components, -1)
        out.append(Grouping("component", codes, names))
        out.append(self._month_grouping())
        return out

    def _month_grouping(self) -> Grouping:
        col = self.atlas.nodes["created_at"]
        codes = np.full(self.n, -1, dtype=np.int64)
        if not self.n or col.null_count == self.n:
            return Grouping("month", codes, [])
        text = pc.strftime(col, format="%Y-%m").combine_chunks().dictionary_encode()
        months = np.asarray(text.dictionary.to_pylist(), dtype=object)
        order = np.argsort(months.astype(str))
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        idx = text.indices.to_numpy(zero_copy_only=False)
        known = ~np.isnan(idx.astype(np.float64))
        codes[known] = rank[idx[known].astype(np.int64)]
        return Grouping("month", codes, [str(m) for m in months[order]])
