"""The data a charting method takes and returns (DESIGN.md, "Interfaces"; docs/chart.md).

* :class:`ChartInput`: the models to chart, addressed by row index (fingerprints, times, flags);
* :class:`ChartResult`: predicted ``parent -> child`` edges with relation and confidence;
* :class:`GroundTruth`: the true lineage of charted models, for evaluation;
* :class:`LayerBlock`: where one layer sits inside a fingerprint vector.

Parents are always ``child row -> tuple of parent rows``; taking a subset of rows renumbers them
with :func:`modelatlas.chart.graph.restrict_parents`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np
import pyarrow as pa

from modelatlas.chart.graph import KnownEdges, restrict_parents
from modelatlas.errors import InputError

__all__ = ["ChartInput", "ChartResult", "GroundTruth", "KnownEdges", "LayerBlock", "architecture_groups"]


@dataclass(frozen=True)
class LayerBlock:
    """Where one layer's sampled rows sit inside a fingerprint vector.

    ``vectors[:, offset : offset + rows * cols]`` reshaped to ``(rows, cols)`` is the layer's
    ``rows`` sampled neurons (rows of the weight matrix).
    """

    name: str
    offset: int
    rows: int
    cols: int

    @property
    def size(self) -> int:
        return self.rows * self.cols

    def take(self, vectors: np.ndarray) -> np.ndarray:
        """The layer's matrices, shape ``(n, rows, cols)``."""
        return vectors[:, self.offset:self.offset + self.size].reshape(len(vectors), self.rows, self.cols)


@dataclass
class ChartInput:
    """Everything a charting method may look at.

    Attributes
    ----------
    ids:
        Model ids, one per row.
    vectors:
        Fingerprints, ``n x d`` float32 (sampled neurons of every fingerprinted layer, concatenated).
    layers:
        The layout of ``vectors`` per layer (for per-layer distances, ranks and kurtosis); when
        empty the whole vector is one layer.
    created_at:
        Upload times in seconds since the epoch, ``NaN`` where unknown.
    quantized:
        Whether each model is stored quantised.
    content_hashes:
        Hash of the full weights (exact duplicates share it); ``None`` entries where unknown.
    documented_parents:
        Parents a method may be told (merges whose card names them; Algorithm 1's ``P``).
    groups:
        Architecture signature per model; models of different groups are never compared.
    kurtosis:
        Optional ``n x L`` per-layer kurtosis of the full weights (MoTHer's direction score);
        computed from the fingerprint rows when absent.
    components:
        Known families (the Model Atlas protocol charts one connected component at a time);
        ``None`` when every method must find them itself.
    """

    ids: list[str]
    vectors: np.ndarray
    layers: list[LayerBlock] = field(default_factory=list)
    created_at: np.ndarray | None = None
    quantized: np.ndarray | None = None
    content_hashes: list[str | None] | None = None
    documented_parents: dict[int, tuple[int, ...]] = field(default_factory=dict)
    groups: np.ndarray | None = None
    kurtosis: np.ndarray | None = None
    components: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) != n:
            raise InputError(f"fingerprints have shape {self.vectors.shape}, expected ({n}, d)",
                             where="vectors")
        if not self.layers:
            self.layers = [LayerBlock("all", 0, 1, self.vectors.shape[1])]
        self.created_at = (np.full(n, np.nan) if self.created_at is None
                           else np.asarray(self.created_at, dtype=np.float64))
        self.quantized = (np.zeros(n, bool) if self.quantized is None
                          else np.asarray(self.quantized, dtype=bool))
        if self.content_hashes is None:
            self.content_hashes = [None] * n
        self.groups = (np.zeros(n, dtype=object) if self.groups is None
                       else np.asarray(self.groups, dtype=object))
        for name, arr in (("created_at", self.created_at), ("quantized", self.quantized),
                          ("groups", self.groups), ("content_hashes", self.content_hashes)):
            if len(arr) != n:
                raise InputError(f"{name} has {len(arr)} entries for {n} models", where=name)
        bad = ~np.all(np.isfinite(self.vectors), axis=1)
        if bad.any():
            names = ", ".join(self.ids[i] for i in np.flatnonzero(bad)[:5])
            raise InputError(f"{int(bad.sum())} fingerprint(s) hold NaN or infinite values: {names}",
                             where="vectors")
        for child, parents in self.documented_parents.items():
            for p in parents:
                if not 0 <= p < n or p == child:
                    raise InputError(f"documented parent index {p} of model {child} is invalid",
                                     where="documented_parents")

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: np.ndarray) -> "ChartInput":
        """The models at ``rows`` (documented parents outside the subset are dropped)."""
        rows = np.asarray(rows, dtype=np.int64)
        return replace(
            self,
            ids=[self.ids[r] for r in rows],
            vectors=self.vectors[rows],
            created_at=self.created_at[rows],
            quantized=self.quantized[rows],
            content_hashes=[self.content_hashes[r] for r in rows],
            documented_parents=restrict_parents(self.documented_parents, rows),
            groups=self.groups[rows],
            kurtosis=None if self.kurtosis is None else self.kurtosis[rows],
            components=None if self.components is None else self.components[rows],
        )

    @property
    def has_times(self) -> bool:
        """True when enough times are known and distinct to order models by them."""
        t = self.created_at
        known = np.isfinite(t)
        return bool(known.mean() >= 0.5 and len(np.unique(t[known])) > max(1, 0.5 * known.sum()))

    def time_order(self) -> np.ndarray:
        """Indices sorted by time; unknown times last, ties by row (stable)."""
        t = np.where(np.isfinite(self.created_at), self.created_at, np.inf)
        return np.argsort(t, kind="stable")


@dataclass
class ChartResult:
    """Predicted edges: parallel arrays of parent / child row indices with relation and confidence."""

    parent: np.ndarray
    child: np.ndarray
    relation: np.ndarray
    confidence: np.ndarray
    messages: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls) -> "ChartResult":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0))

    @classmethod
    def from_parents(cls, parents: Mapping[int, tuple[int, ...]], relations: Mapping[int, str] | None = None,
                     confidence: Mapping[int, float] | None = None) -> "ChartResult":
        """Build from ``child -> parents`` (relation and confidence per child)."""
        rows = [(p, c) for c, ps in parents.items() for p in ps]
        relations = relations or {}
        confidence = confidence or {}
        par = np.array([p for p, _ in rows], dtype=np.int64)
        chi = np.array([c for _, c in rows], dtype=np.int64)
        rel = np.array([relations.get(c, "unknown") for _, c in rows], dtype=object)
        conf = np.array([confidence.get(c, 0.5) for _, c in rows], dtype=np.float64)
        return cls(par, chi, rel, conf)

    def parent_sets(self) -> dict[int, frozenset[int]]:
        """``child -> frozenset(parents)`` for every child with at least one predicted parent."""
        out: dict[int, set[int]] = {}
        for p, c in zip(self.parent.tolist(), self.child.tolist()):
            out.setdefault(c, set()).add(p)
        return {c: frozenset(ps) for c, ps in out.items()}

    def concat(self, other: "ChartResult", rows: np.ndarray | None = None) -> "ChartResult":
        """This result plus ``other`` (whose indices are into ``rows`` when given)."""
        par, chi = other.parent, other.child
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            par, chi = rows[par], rows[chi]
        return ChartResult(np.concatenate([self.parent, par]), np.concatenate([self.child, chi]),
                           np.concatenate([self.relation, other.relation]),
                           np.concatenate([self.confidence, other.confidence]),
                           self.messages + other.messages)

    def to_table(self, ids: list[str]) -> pa.Table:
        """Edges as an Arrow table with ids: parent, child, relation, confidence."""
        ids_arr = np.asarray(ids, dtype=object)
        return pa.table({
            "parent": pa.array(ids_arr[self.parent].tolist(), pa.string()),
            "child": pa.array(ids_arr[self.child].tolist(), pa.string()),
            "relation": pa.array(self.relation.tolist(), pa.string()),
            "confidence": pa.array(self.confidence.astype(float), pa.float64()),
        })


@dataclass
class GroundTruth:
    """True lineage of charted models (row-aligned with a :class:`ChartInput`).

    ``parents[i]`` is a tuple of parent rows (empty for roots) or ``None`` when unknown.
    """

    parents: list[tuple[int, ...] | None]
    relation: list[str | None]
    pattern: list[str | None]
    component: np.ndarray

    def subset(self, rows: np.ndarray) -> "GroundTruth":
        """The truth of the models at ``rows``, renumbered like :meth:`ChartInput.subset` (parents
        outside the subset are dropped; a permutation of every row keeps every parent)."""
        rows = np.asarray(rows, dtype=np.int64)
        known = restrict_parents({r: ps for r, ps in enumerate(self.parents) if ps is not None}, rows)
        return GroundTruth(
            parents=[known.get(i) for i in range(len(rows))],
            relation=[self.relation[r] for r in rows.tolist()], pattern=[self.pattern[r] for r in rows.tolist()],
            component=np.asarray(self.component)[rows])


def architecture_groups(models: ChartInput) -> list[np.ndarray]:
    """Row indices per architecture signature (and per known component), in order of appearance."""
    keys = [str(g) for g in models.groups]
    if models.components is not None:
        keys = [f"{k}\x00{c}" for k, c in zip(keys, models.components)]
    order: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        order.setdefault(k, []).append(i)
    return [np.array(v, dtype=np.int64) for v in order.values()]
