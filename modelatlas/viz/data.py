"""What the web atlas serves, computed once per atlas: the :class:`AtlasView`.

Every answer of the JSON API (:mod:`modelatlas.viz.server`) is a bounded slice of arrays held here:
positions from the cached layout, component labels, sub-tree downloads, the spanning forest used
for lineage, and categorical columns encoded once as small integer codes for colouring and
filtering. No request reads the disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.atlas.components import component_sizes
from modelatlas.atlas.derived import category_codes
from modelatlas.atlas.schema import PREDICTED_PREFIX
from modelatlas.errors import ModelAtlasError, UnknownModelError
from modelatlas.viz.layout import ensure_layout, layout_parents

#: Node columns the page may colour or filter by ("relation" is the relation to the layout parent).
CATEGORICAL = ("relation", "license", "pipeline_tag", "modality", "library_name", "model_type", "author")
#: Numeric node columns the page may size by.
SIZES = ("downloads", "sub_tree_downloads", "likes", "downloads_all_time", "descendants")
#: Categories beyond this many (by count) are pooled as :data:`OTHER`.
MAX_CATEGORIES = 16
UNKNOWN = "unknown"
#: Label of the pooled rare values (distinct from a real value "other", e.g. the Hub licence).
OTHER = "(other values)"
#: Values that mean "not known" (drawn light blue); the Hub uses licence "unknown" itself.
MISSING = ("", UNKNOWN)
#: What separates the words of a search query ("llama 2 chat", "llama-2/chat").
SEARCH_WORD = re.compile(r"[\s/_.\-:,;]+")
MAX_SEARCH_WORDS = 8


class ViewError(ModelAtlasError):
    """A request the atlas cannot answer; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Categories:
    """One categorical column as codes: ``labels[codes[i]]`` is node ``i``'s value.

    Code 0 is always ``unknown`` (missing values) and the last code :data:`OTHER` when the column has
    more than :data:`MAX_CATEGORIES` values; the rest are the most frequent values, commonest first
    (the derived-data layer's order, :func:`~modelatlas.atlas.derived.category_codes`).
    """

    labels: list[str]
    codes: np.ndarray
    counts: list[int]


@dataclass(eq=False)
class AtlasView:
    """Arrays behind the web atlas; build with :meth:`from_atlas`.

    Parameters
    ----------
    atlas:
        The atlas to show (its ``layout`` extras table is computed if absent).
    """

    atlas: object
    xy: np.ndarray = field(init=False)
    component: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.facts = self.atlas.facts  # the derived-data layer every other room reads too
        layout = ensure_layout(self.atlas)
        self.xy = np.column_stack([layout["x"].to_numpy(), layout["y"].to_numpy()])
        self.component = layout["component"].to_numpy().astype(np.int64)

    # ------------------------------------------------------------------ cached arrays
    @property
    def n(self) -> int:
        return self.atlas.num_nodes

    @property
    def ids(self) -> np.ndarray:
        return self.facts.ids

    @property
    def graph(self):
        return self.facts.graph

    @cached_property
    def parent(self) -> np.ndarray:
        """Layout parent (shallowest parent) of each node, ``-1`` for sources."""
        return layout_parents(self.graph)

    @property
    def depth(self) -> np.ndarray:
        return self.facts.depth

    @property
    def downloads(self) -> np.ndarray:
        return self.facts.downloads

    @cached_property
    def numeric(self) -> dict[str, np.ndarray]:
        out = {"downloads": self.downloads, "sub_tree_downloads": self.facts.sub_tree_downloads,
               "descendants": self.facts.descendant_counts.astype(np.float64)}
        for name in ("likes", "downloads_all_time"):
            out[name] = np.nan_to_num(self.facts.number(name))
        return out

    @property
    def created_at(self) -> np.ndarray:
        """Creation time in epoch seconds (NaN when unknown)."""
        return self.facts.created_at

    def out_edges(self, nodes: np.ndarray) -> np.ndarray:
        """Rows of ``atlas.edges`` leaving any of ``nodes``."""
        return self.facts.out_edges(nodes)

    def edge_id(self, parent: int, child: int) -> int | None:
        """Row of the edge ``parent -> child`` in ``atlas.edges`` (``None`` if absent)."""
        return self.facts.edge_id(parent, child)

    @property
    def edge_relation(self) -> np.ndarray:
        """Relation of each edge (rows of ``atlas.edges``), as an object array."""
        return self.facts.edge_relation

    @cached_property
    def edge_provenance(self) -> np.ndarray:
        return np.asarray(self.atlas.edges["provenance"].to_pylist(), dtype=object)

    @cached_property
    def edge_relation_codes(self) -> pa.DictionaryArray:
        """:attr:`edge_relation` dictionary-encoded (for the Arrow answers)."""
        return self.atlas.edges["relation"].combine_chunks().dictionary_encode()

    @cached_property
    def edge_provenance_codes(self) -> pa.DictionaryArray:
        return self.atlas.edges["provenance"].combine_chunks().dictionary_encode()

    @cached_property
    def edge_confidence(self) -> np.ndarray:
        return self.atlas.edges["confidence"].to_numpy()

    @cached_property
    def edge_predicted(self) -> np.ndarray:
        """Whether each edge was predicted (provenance ``predicted:<method>``)."""
        prov = self.atlas.edges["provenance"]
        return pc.starts_with(prov, PREDICTED_PREFIX).to_numpy(zero_copy_only=False).astype(bool) \
            if len(prov) else np.zeros(0, dtype=bool)

    @cached_property
    def parent_relation(self) -> np.ndarray:
        """Relation of each node's layout-parent edge (``source`` for roots)."""
        rel = self.edge_relation
        out = np.full(self.n, "source", dtype=object)
        g = self.graph
        if g.num_edges:
            chosen = self.parent[g.child] == g.parent
            out[g.child[chosen]] = rel[chosen]
        return out

    @cached_property
    def component_sizes(self) -> np.ndarray:
        return component_sizes(self.component)

    @cached_property
    def component_order(self) -> np.ndarray:
        """Node indices sorted by component (``component_starts`` slices it)."""
        return np.argsort(self.component, kind="stable")

    @cached_property
    def component_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.component_sizes)])

    def members(self, component: int) -> np.ndarray:
        if not 0 <= component < self.component_sizes.size:
            raise ViewError(f"component {component} does not exist (the atlas has "
                            f"{self.component_sizes.size} components)", 404)
        s = self.component_starts
        return self.component_order[s[component]:s[component + 1]]

    def categories(self, name: str) -> Categories:
        if name not in CATEGORICAL:
            raise ViewError(f"cannot colour by {name!r}; choose one of {', '.join(CATEGORICAL)}", 422)
        return self._categories[name]

    @cached_property
    def _categories(self) -> dict[str, Categories]:
        out = {}
        for name in CATEGORICAL:
            codes, labels = category_codes(pa.array(self.parent_relation.tolist(), pa.string())) \
                if name == "relation" else self.facts.codes(name)
            out[name] = _pool(codes, labels)
        return out

    def warm(self) -> None:
        """Compute every cached array now, so that no request pays for it (or races to)."""
        for name in ("ids", "parent", "depth", "numeric", "created_at", "edge_relation",
                     "edge_provenance", "edge_relation_codes", "edge_provenance_codes", "edge_confidence",
                     "edge_predicted", "component_order", "component_starts", "_categories", "_search_keys",
                     "_longest_id"):
            getattr(self, name)
        self.facts.edges_by_parent  # noqa: B018
        self.facts.id_lookup  # noqa: B018  (built now, not by the first unknown id)

    # ------------------------------------------------------------------ lookups
    @cached_property
    def _longest_id(self) -> int:
        """Length of the longest id: a longer request cannot name a model and is refused unread."""
        return int(pc.max(pc.utf8_length(self.atlas.nodes["id"])).as_py() or 0)

    def index(self, model_id: str) -> int:
        """Node index of ``model_id``: a direct lookup, so every model of the atlas can be opened,
        odd ids included; an unknown id gets suggestions from :attr:`AtlasFacts.id_lookup` in about the
        time a known id takes (docs/web.md)."""
        if not model_id or len(model_id) > self._longest_id:
            raise ViewError(f"not a model id of this atlas: ids here are 1 to {self._longest_id} characters", 404)
        lookup = self.facts.id_lookup
        found = lookup.find(model_id)
        if found is None:
            raise ViewError(str(UnknownModelError(model_id, lookup.suggest(model_id))), 404)
        return found

    @cached_property
    def _search_keys(self) -> tuple[pa.Array, pa.Array]:
        """Lower-cased ids and names (the part after ``/``), for :meth:`search`."""
        lower = pc.utf8_lower(self.atlas.nodes["id"].combine_chunks()) if self.n else pa.array([], pa.string())
        names = pc.replace_substring_regex(lower, r"^[^/]*/", "")
        return lower, names

    def search(self, query: str, limit: int) -> list[int]:
        """Models whose id contains every word of ``query``, in any order ("llama 2 chat").

        Ranked: the exact id or name first, then ids or names starting with the query as typed,
        then ids where every word starts a word of the id (``2`` in ``Llama-2-7b``, not in
        ``llama-3.2``), then the rest; within each rank by downloads, most first.
        """
        q = query.strip().lower()
        words = list(dict.fromkeys(w for w in SEARCH_WORD.split(q) if w))[:MAX_SEARCH_WORDS]
        if not words:
            return []
        lower, names = self._search_keys
        mask = None
        for w in words:
            hit = pc.match_substring(lower, w)
            mask = hit if mask is None else pc.and_(mask, hit)
        found = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        if not found.size:
            return []
        ids, nm = lower.take(found), names.take(found)
        tier = np.full(found.size, 3, dtype=np.int64)
        at_word = np.ones(found.size, dtype=bool)
        for w in words:
            at_word &= pc.match_substring_regex(ids, r"(^|[^0-9a-z])" + re.escape(w)).to_numpy(zero_copy_only=False)
        tier[at_word] = 2
        starts = pc.or_(pc.starts_with(ids, q), pc.starts_with(nm, q)).to_numpy(zero_copy_only=False)
        tier[starts] = 1
        exact = pc.or_(pc.equal(ids, q), pc.equal(nm, q)).to_numpy(zero_copy_only=False)
        tier[exact] = 0
        order = np.lexsort((found, -self.downloads[found], tier))[:limit]
        return found[order].tolist()

    def inheritance(self, i: int) -> dict:
        """Licence and data a model inherits from *all* its ancestors (not only the layout-parent
        chain): the nearest licensed ancestor, every stricter ancestor licence
        (:func:`~modelatlas.discover.licence_forensics.model_licence_findings`) and the datasets of
        :func:`~modelatlas.discover.data_lineage.data_lineage` (Model Atlas paper, section 3.1)."""
        from modelatlas.discover.data_lineage import data_lineage
        from modelatlas.discover.licence_forensics import model_licence_findings
        from modelatlas.discover.paths import describe, path_text, walk

        facts = self.facts
        answer = facts.inheritance(i)  # the layer's answer, the same modelatlas forensics gives
        licences = facts.text("license")
        order, pred = facts.ancestors(i)
        # Every distinct ancestor licence with its nearest holder (BFS order: nearest first).
        seen: dict[str, dict] = {}
        for a in order[1:]:
            lic = licences[a]
            if lic and lic not in seen:
                chain = walk(pred, i, int(a))
                seen[lic] = {"license": lic, "ancestor": self.ids[a], "distance": len(chain) - 1,
                             "path": path_text(describe(facts, chain))}
        data = data_lineage(facts, i)
        answer["license"].update(ancestor_licenses=list(seen.values()),
                                 differs=bool(answer["license"]["own"] and any(
                                     a["license"] != answer["license"]["own"] for a in seen.values())),
                                 stricter_ancestors=model_licence_findings(facts, i))
        answer["datasets"]["inherited"] = data["inherited"]
        answer["ancestors"] = data["ancestors"]
        return answer

    def lineage(self, i: int) -> list[int]:
        """Node ``i`` and its layout ancestors up to a source (``i`` first)."""
        path = [i]
        while self.parent[path[-1]] >= 0 and len(path) <= self.n:
            path.append(int(self.parent[path[-1]]))
        return path

    def edge_row(self, parent: int, child: int) -> dict | None:
        k = self.edge_id(parent, child)
        if k is None:
            return None
        return {"relation": self.edge_relation[k], "provenance": self.edge_provenance[k],
                "confidence": float(self.edge_confidence[k]), "predicted": bool(self.edge_predicted[k])}

    def node_row(self, i: int) -> dict:
        return self.atlas.nodes.slice(i, 1).to_pylist()[0]


def _pool(codes: np.ndarray, labels: list[str]) -> Categories:
    """The layer's codes (``-1`` missing, commonest first) as display codes: 0 :data:`UNKNOWN` for
    missing values and the values of :data:`MISSING`, then the :data:`MAX_CATEGORIES` commonest,
    the rest pooled as :data:`OTHER`."""
    counts = np.bincount(codes[codes >= 0], minlength=len(labels))
    shown = [k for k, label in enumerate(labels) if label not in MISSING]
    keep = shown[:MAX_CATEGORIES]
    rank = np.zeros(len(labels) + 1, dtype=np.int64)  # the last slot: code -1 (missing)
    rank[keep] = np.arange(len(keep)) + 1
    out_labels = [UNKNOWN] + [labels[k] for k in keep]
    out_counts = [int(np.count_nonzero(codes < 0)) + int(sum(counts[k] for k, lb in enumerate(labels)
                                                            if lb in MISSING))] + [int(counts[k]) for k in keep]
    rest = shown[MAX_CATEGORIES:]
    if rest:
        rank[rest] = len(out_labels)
        out_labels.append(OTHER)
        out_counts.append(int(counts[rest].sum()))
    return Categories(out_labels, rank[codes].astype(np.uint8), out_counts)
