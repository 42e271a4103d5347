"""The derived-data layer: every per-node and per-edge array computed from one atlas, once.

:class:`AtlasFacts` is the single place where ids, depth, downloads, descendant sums, category
codes, creation times, edge lookups, ancestors and inheritance are derived from an
:class:`~modelatlas.atlas.atlas.Atlas`. Statistics (``analytics/``), imputation (``impute/``),
discovery (``discover/``) and the web atlas (``viz/``) all read it, so they cannot disagree about
what a number means. Get it as ``atlas.facts`` (cached on the atlas and rebuilt when its node or
edge table is replaced); each array is computed on first use from the graph core in
:mod:`modelatlas.atlas` (components, depth, descendant sums, hubs), nothing here re-implements a
graph algorithm. Conventions (docs/architecture.md, "The derived-data layer"):

* node ``i`` is ``atlas.nodes`` row ``i``; edge ``k`` is ``atlas.edges`` row ``k``;
* category codes: ``-1`` where the value is missing (null or empty), the other codes in order of
  frequency, commonest first, ties by label;
* ``created_at`` in seconds since the epoch (float64, NaN where missing);
* numbers missing as NaN in :meth:`AtlasFacts.number`; ``downloads`` and the descendant sums count a
  missing value as 0, and :meth:`AtlasFacts.observed` says where a value was recorded at all.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse.csgraph import breadth_first_order, connected_components

from modelatlas.atlas.components import component_sizes, weakly_connected_components
from modelatlas.atlas.depth import depth_from_sources
from modelatlas.atlas.hubs import sibling_leaf_hubs
from modelatlas.atlas.id_lookup import IdLookup
from modelatlas.atlas.modality import UNKNOWN_MODALITY, node_modality
from modelatlas.atlas.subtree import descendant_counts, descendant_sums
from modelatlas.errors import InputError

#: Tag prefix by which a card names a training dataset (``dataset:<id>``).
DATASET_TAG = "dataset:"


def category_codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Integer codes of a text column, the layer's one convention.

    Parameters
    ----------
    values:
        Strings (nulls and empty strings are missing).

    Returns
    -------
    codes, labels : ``int64`` codes, ``-1`` where missing; ``labels[c]`` is the value of code ``c``,
        in order of frequency (commonest first, ties by label).
    """
    col = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not isinstance(col, pa.Array):
        col = pa.array(col, pa.string())
    n = len(col)
    if n:
        col = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
    encoded = col.dictionary_encode()
    labels = np.asarray(encoded.dictionary.to_pylist(), dtype=object).astype(str)
    idx = encoded.indices.to_numpy(zero_copy_only=False)
    known = ~np.isnan(idx.astype(np.float64)) if n else np.zeros(0, dtype=bool)
    raw = idx[known].astype(np.int64)
    counts = np.bincount(raw, minlength=labels.size)
    order = np.lexsort((labels, -counts)) if labels.size else np.zeros(0, dtype=np.int64)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    out = np.full(n, -1, dtype=np.int64)
    out[known] = rank[raw]
    return out, [str(x) for x in labels[order]]


class AtlasFacts:
    """Lazily computed arrays over one atlas; use ``atlas.facts`` (one instance per atlas).

    Parameters
    ----------
    atlas:
        A :class:`~modelatlas.atlas.atlas.Atlas`.

    Notes
    -----
    The instance remembers the node and edge tables it was computed from (:meth:`matches`);
    ``Atlas.facts`` builds a new one when either is replaced.
    """

    def __init__(self, atlas):
        self.atlas = atlas
        self._tables = (atlas.nodes, atlas.edges)
        self._memo: dict = {}

    def matches(self, atlas) -> bool:
        """Whether these facts were computed from ``atlas``'s current node and edge tables."""
        return self._tables[0] is atlas.nodes and self._tables[1] is atlas.edges

    def memo(self, key, compute):
        """``compute()`` once per key for this atlas (for analyses built on the layer)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    # ------------------------------------------------------------------ graph
    @cached_property
    def graph(self):
        """The atlas graph, checked to be acyclic (every derived sum assumes a DAG).

        Raises
        ------
        InputError
            The edges hold a cycle (naming up to five models on it).
        """
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
        """Node ids (object array; the atlas keeps them sorted)."""
        return np.asarray(self.atlas.nodes["id"].to_numpy(zero_copy_only=False), dtype=object)

    @cached_property
    def id_lookup(self) -> IdLookup:
        """Exact id lookup and "did you mean" suggestions (:mod:`modelatlas.atlas.id_lookup`)."""
        return IdLookup(self.atlas.nodes["id"])

    def index(self, model_id: str) -> int | None:
        """Node index of ``model_id`` (``None`` if it is not in the atlas), by binary search."""
        return self.id_lookup.find(model_id)

    @cached_property
    def real(self) -> np.ndarray:
        """True for models with a record of their own (not placeholders)."""
        return ~self.atlas.column("placeholder").astype(bool)

    @cached_property
    def components(self) -> np.ndarray:
        """Weakly connected component of each node, 0 the biggest."""
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

    def component_roots(self, label: int) -> np.ndarray:
        """The sources (roots) of component ``label``, most sub-tree downloads first, then most
        descendants, then by id."""
        roots = self._roots_ranked
        return roots[self.components[roots] == label]

    @cached_property
    def _roots_ranked(self) -> np.ndarray:
        src = np.flatnonzero(self.is_source)
        return src[np.lexsort((src, -self.descendant_counts[src], -self.sub_tree_downloads[src]))]

    def component_name(self, label: int) -> str:
        """``<first root>`` or ``<first root> +k roots`` (roots ordered as :meth:`component_roots`)."""
        roots = self.component_roots(label)
        more = f" +{roots.size - 1} root{'s' if roots.size > 2 else ''}" if roots.size > 1 else ""
        return f"{self.ids[roots[0]]}{more}"

    # ------------------------------------------------------------------ node values
    def number(self, name: str) -> np.ndarray:
        """A numeric node column as float64, NaN where missing (cached)."""
        key = ("number", name)
        return self.memo(key, lambda: np.asarray(self.atlas.column(name), dtype=np.float64))

    @cached_property
    def downloads(self) -> np.ndarray:
        """Downloads as float64, missing as 0 (placeholders have none); see :meth:`observed`."""
        return np.nan_to_num(self.number("downloads"))

    @cached_property
    def descendant_downloads(self) -> np.ndarray:
        """Downloads of each node's descendants, each descendant once."""
        return descendant_sums(self.graph, self.downloads)

    @cached_property
    def sub_tree_downloads(self) -> np.ndarray:
        """Own plus descendants' downloads (Model Atlas paper, Appendix A), float64."""
        return self.downloads + self.descendant_downloads

    @cached_property
    def descendant_counts(self) -> np.ndarray:
        """Distinct descendants of each node (int64)."""
        return descendant_counts(self.graph)

    def observed(self, name: str) -> np.ndarray:
        """Models whose record could carry ``name``: a value is present, or the model comes from a
        source that recorded the field for at least one of its models (so a null there means "none
        declared", not "not collected"). Placeholders observe nothing. Cached.

        This is the coverage of a statistic: a share over models that do not observe its input is
        not a measurement (docs/science.md, "Honest numbers").
        """
        return self.memo(("observed", name), lambda: self._observed(name))

    def _observed(self, name: str) -> np.ndarray:
        n = self.n
        present = np.asarray(pc.is_valid(self.atlas.nodes[name]).to_numpy(zero_copy_only=False), dtype=bool) \
            if n else np.zeros(0, dtype=bool)
        owner, codes, k = self._source_pairs
        recorded = np.zeros(k, dtype=bool)
        recorded[codes[present[owner] & self.real[owner]]] = True
        via_source = np.zeros(n, dtype=bool)
        via_source[owner[recorded[codes]]] = True
        return (present | via_source) & self.real

    @cached_property
    def _source_pairs(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(node, source code) pairs and the number of sources; models that name no source share
        one anonymous source (the last code)."""
        sources = self.atlas.nodes["sources"].combine_chunks()
        owner = np.asarray(pc.list_parent_indices(sources).to_numpy(zero_copy_only=False), dtype=np.int64)
        codes, labels = category_codes(pc.list_flatten(sources))
        owner, codes = owner[codes >= 0], codes[codes >= 0]
        unnamed = np.setdiff1d(np.arange(self.n), owner)
        return (np.concatenate([owner, unnamed]),
                np.concatenate([codes, np.full(unnamed.size, len(labels), dtype=np.int64)]), len(labels) + 1)

    @cached_property
    def modality(self) -> np.ndarray:
        """Modality per node (:func:`~modelatlas.atlas.modality.node_modality`); a model without a
        task (e.g. a placeholder child listed on the Hub tree) takes its nearest ancestor's, so that a
        family's adapters and quantisations are counted with the family's modality. ``unknown`` only
        where no ancestor has a task either."""
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
    def created_at(self) -> np.ndarray:
        """``created_at`` in seconds since the epoch (float64 with microseconds, NaN where missing)."""
        col = pc.cast(pc.cast(self.atlas.nodes["created_at"], pa.timestamp("us")), pa.int64())
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64) / 1e6

    def flag(self, name: str) -> np.ndarray:
        """A boolean node column, missing as False (cached)."""
        return self.memo(("flag", name), lambda: np.asarray(
            pc.fill_null(self.atlas.nodes[name], False).to_numpy(zero_copy_only=False), dtype=bool))

    def codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        """Codes of a text column (also ``modality`` and ``relation_type``) by
        :func:`category_codes`: ``-1`` where missing, labels commonest first. Cached."""
        def compute():
            if name == "modality":
                col = pa.array(self.modality.tolist(), pa.string())
            elif name == "relation_type":
                col = pa.array(self.node_relation.tolist(), pa.string())
            else:
                col = self.atlas.nodes[name]
            return category_codes(col)
        return self.memo(("codes", name), compute)

    def text(self, name: str) -> np.ndarray:
        """A string node column as an object array (None where missing); cached."""
        return self.memo(("text", name), lambda: np.asarray(self.atlas.column(name), dtype=object))

    # ------------------------------------------------------------------ edges
    @cached_property
    def edge_relation(self) -> np.ndarray:
        """Relation of each edge (rows of ``atlas.edges``), as an object array."""
        return np.asarray(self.atlas.edges["relation"].to_numpy(zero_copy_only=False), dtype=object)

    @cached_property
    def edges_by_parent(self) -> tuple[np.ndarray, np.ndarray]:
        """Edge rows sorted by (parent, child), and where each parent's run starts (CSR)."""
        g = self.graph
        order = np.lexsort((g.child, g.parent))
        return order, np.searchsorted(g.parent[order], np.arange(self.n + 1))

    @cached_property
    def edges_by_child(self) -> tuple[np.ndarray, np.ndarray]:
        """Edge rows sorted by (child, parent), and where each child's run starts (CSR)."""
        g = self.graph
        order = np.lexsort((g.parent, g.child))
        return order, np.searchsorted(g.child[order], np.arange(self.n + 1))

    @staticmethod
    def _runs(csr: tuple[np.ndarray, np.ndarray], nodes: np.ndarray) -> np.ndarray:
        order, start = csr
        nodes = np.asarray(nodes, dtype=np.int64)
        lo, hi = start[nodes], start[nodes + 1]
        lengths = hi - lo
        offsets = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        return order[offsets]

    def out_edges(self, nodes: np.ndarray) -> np.ndarray:
        """Rows of ``atlas.edges`` leaving any of ``nodes``."""
        return self._runs(self.edges_by_parent, nodes)

    def in_edges(self, nodes: np.ndarray) -> np.ndarray:
        """Rows of ``atlas.edges`` entering any of ``nodes``."""
        return self._runs(self.edges_by_child, nodes)

    def edge_id(self, parent: int, child: int) -> int | None:
        """Row of the edge ``parent -> child`` in ``atlas.edges`` (``None`` if absent)."""
        order, start = self.edges_by_parent
        run = order[start[parent]:start[parent + 1]]
        k = np.searchsorted(self.graph.child[run], child)
        return int(run[k]) if k < run.size and self.graph.child[run[k]] == child else None

    def relation_of(self, parent: int, child: int) -> str | None:
        """The relation of edge ``parent -> child`` (None if there is no such edge)."""
        k = self.edge_id(parent, child)
        return None if k is None else str(self.edge_relation[k])

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

    # ------------------------------------------------------------------ ancestry
    def ancestors(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """Breadth-first search from ``node`` towards all its ancestors (through every parent).

        Returns
        -------
        order, predecessors : ``node`` then its ancestors, nearest first; per node, the next step back
            towards ``node`` (``-9999`` where not reached), so a path is read by following it.
        """
        return breadth_first_order(self.graph.reverse_adjacency, node, directed=True, return_predecessors=True)

    def declared_datasets(self, node: int) -> list[str]:
        """Datasets a model declares: the ``datasets`` column (card data), then ``dataset:`` tags."""
        found: list[str] = list(dict.fromkeys(d for d in self.atlas.nodes["datasets"][node].as_py() or [] if d))
        for tag in self.atlas.nodes["tags"][node].as_py() or []:
            d = tag[len(DATASET_TAG):] if tag.startswith(DATASET_TAG) else None
            if d and d not in found:
                found.append(d)
        return found

    def inherited_datasets(self, node: int) -> list[tuple[str, int]]:
        """Datasets ``node`` inherits from **all** its ancestors (Model Atlas paper, section 3.1: a
        descendant implicitly inherits its ancestors' training data) that it does not declare itself:
        ``(dataset, nearest ancestor declaring it)``, nearest ancestor first. A merge inherits from
        every parent."""
        order, _ = self.ancestors(node)
        seen = set(self.declared_datasets(node))
        out = []
        for a in order[1:]:
            for d in self.declared_datasets(int(a)):
                if d not in seen:
                    seen.add(d)
                    out.append((d, int(a)))
        return out

    def inheritance(self, node: int) -> dict:
        """What ``node`` inherits along all its ancestors: licence and datasets.

        Returns
        -------
        dict: ``license`` (``own``, ``nearest_ancestor`` — the licence of the nearest ancestor that
        declares one, ``ancestor`` — its id, ``differs``, ``effective`` — own else inherited) and
        ``datasets`` (``own``; ``from_ancestors``, sorted). The web panel and ``modelatlas
        forensics`` both answer from here.
        """
        licences = self.text("license")
        order, _ = self.ancestors(node)
        nearest = next((int(a) for a in order[1:] if licences[a]), None)
        own = licences[node]
        inherited = licences[nearest] if nearest is not None else None
        return {"license": {"own": own, "nearest_ancestor": inherited,
                            "ancestor": None if nearest is None else str(self.ids[nearest]),
                            "differs": bool(own and inherited and own != inherited),
                            "effective": own or inherited},
                "datasets": {"own": self.declared_datasets(node),
                             "from_ancestors": sorted(d for d, _ in self.inherited_datasets(node))}}
