"""The :class:`Atlas`: nodes, edges and the evidence behind them, as Arrow tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.atlas.assemble import REFERENCED, assemble
from modelatlas.atlas.derived import AtlasFacts
from modelatlas.atlas.graph import AtlasGraph
from modelatlas.atlas.schema import (
    EDGE_SCHEMA,
    EVIDENCE_SCHEMA,
    ISSUE_SCHEMA,
    METRIC_SCHEMA,
    NODE_SCHEMA,
    conform,
)
from modelatlas.errors import UnknownModelError

#: Tables every atlas has; other rooms may add their own (layouts, imputations, ...) in ``extras``.
CORE_TABLES = ("nodes", "edges", "evidence", "metrics", "issues")
CORE_SCHEMAS = {"nodes": NODE_SCHEMA, "edges": EDGE_SCHEMA, "evidence": EVIDENCE_SCHEMA,
                "metrics": METRIC_SCHEMA, "issues": ISSUE_SCHEMA}


@dataclass(eq=False)
class Atlas:
    """The Model Atlas: a DAG of models (DESIGN.md "The atlas").

    Attributes
    ----------
    nodes:
        One row per model (:data:`~modelatlas.atlas.schema.NODE_SCHEMA`), sorted by id; row ``i``
        is node ``i`` of :attr:`graph`.
    edges:
        One row per (parent, child) pair (:data:`~modelatlas.atlas.schema.EDGE_SCHEMA`).
    evidence:
        Every parent claim of every source (:data:`~modelatlas.atlas.schema.EVIDENCE_SCHEMA`).
    metrics:
        Evaluation scores in long format (:data:`~modelatlas.atlas.schema.METRIC_SCHEMA`).
    issues:
        Problems met while ingesting (:data:`~modelatlas.atlas.schema.ISSUE_SCHEMA`).
    extras:
        Further named tables written by analyses (kept by the store).
    """

    nodes: pa.Table
    edges: pa.Table
    evidence: pa.Table = field(default_factory=EVIDENCE_SCHEMA.empty_table)
    metrics: pa.Table = field(default_factory=METRIC_SCHEMA.empty_table)
    issues: pa.Table = field(default_factory=ISSUE_SCHEMA.empty_table)
    extras: dict[str, pa.Table] = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, records: pa.Table, evidence: pa.Table | None = None, *,
              metrics: pa.Table | None = None, issues: list[dict] | None = None) -> Atlas:
        """Build an atlas from model records and parent claims (see :mod:`modelatlas.atlas.assemble`)."""
        evidence = EVIDENCE_SCHEMA.empty_table() if evidence is None else evidence
        nodes, edges, evidence, issue_table = assemble(records, evidence, issues=issues)
        metrics = _dedup(conform(metrics, METRIC_SCHEMA).select(METRIC_SCHEMA.names)) \
            if metrics is not None else METRIC_SCHEMA.empty_table()
        return cls(nodes, edges, evidence, metrics, issue_table)

    @classmethod
    def empty(cls) -> Atlas:
        return cls(NODE_SCHEMA.empty_table(), EDGE_SCHEMA.empty_table())

    def merged_with(self, records: pa.Table, evidence: pa.Table | None = None, *,
                    metrics: pa.Table | None = None, issues: list[dict] | None = None) -> Atlas:
        """A new atlas holding this one's data and the given source's.

        Re-adding a source that is already in the atlas yields the same atlas (the evidence and
        records are deduplicated), so ingesting is idempotent. Issues are kept per ingest run.
        """
        real = self.nodes.filter(has_record(self.nodes))
        all_records = _concat([real, conform(records, NODE_SCHEMA)], NODE_SCHEMA)
        all_evidence = _concat([self.evidence, evidence], EVIDENCE_SCHEMA)
        all_metrics = _concat([self.metrics, metrics], METRIC_SCHEMA)
        fresh = Atlas.build(all_records, all_evidence, metrics=all_metrics, issues=issues)
        fresh.extras = dict(self.extras)
        return fresh

    # ------------------------------------------------------------------ views
    @property
    def num_nodes(self) -> int:
        return self.nodes.num_rows

    @property
    def num_edges(self) -> int:
        return self.edges.num_rows

    @property
    def graph(self) -> AtlasGraph:
        """Integer-indexed view; node ``i`` is ``nodes[i]`` (cached until ``nodes`` or ``edges`` is replaced)."""
        cached = self.__dict__.get("_graph")
        if cached is None or cached[0] is not self.nodes or cached[1] is not self.edges:
            cached = (self.nodes, self.edges,
                      AtlasGraph.from_ids(self.nodes["id"], self.edges["parent"], self.edges["child"]))
            self.__dict__["_graph"] = cached
        return cached[2]

    @property
    def facts(self) -> AtlasFacts:
        """The derived-data layer of this atlas (:class:`~modelatlas.atlas.derived.AtlasFacts`):
        depth, sub-tree downloads, category codes, edge lookups, ancestors, inheritance. Built once
        and rebuilt when ``nodes`` or ``edges`` is replaced."""
        facts = self.__dict__.get("_facts")
        if facts is None or not facts.matches(self):
            facts = self.__dict__["_facts"] = AtlasFacts(self)
        return facts

    def index_of(self, model_ids) -> np.ndarray:
        """Row indices of ``model_ids``; raises :class:`UnknownModelError` for an unknown id."""
        ids = pa.array(list(model_ids) if not isinstance(model_ids, (pa.Array, pa.ChunkedArray)) else model_ids,
                       pa.string())
        idx = pc.index_in(ids, value_set=self.nodes["id"])
        if idx.null_count:
            missing = ids.filter(pc.is_null(idx))[0].as_py()
            raise UnknownModelError(missing, self.suggest(missing))
        return idx.to_numpy(zero_copy_only=False).astype(np.int64)

    def suggest(self, model_id: str, limit: int = 5) -> list[str]:
        """Ids that look like ``model_id`` (for "did you mean" messages; :mod:`modelatlas.atlas.id_lookup`)."""
        return self.facts.id_lookup.suggest(model_id, limit)

    def column(self, name: str) -> np.ndarray:
        """A node column as a numpy array (nulls as NaN / None)."""
        return self.nodes[name].to_numpy(zero_copy_only=False)

    def tables(self) -> dict[str, pa.Table]:
        """Every table of the atlas by name (core tables first)."""
        out = {name: getattr(self, name) for name in CORE_TABLES}
        out.update(self.extras)
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the atlas to an embedded DuckDB file, atomically (see :mod:`modelatlas.atlas.store`)."""
        from modelatlas.atlas.store import save_atlas

        return save_atlas(self, path)

    @classmethod
    def load(cls, path: str | Path, *, node_columns: tuple[str, ...] | None = None) -> Atlas:
        """Read an atlas written by :meth:`save` (only ``node_columns`` of the nodes, when given)."""
        from modelatlas.atlas.store import load_atlas

        return load_atlas(path, node_columns=node_columns)


def has_record(nodes: pa.Table) -> pa.Array:
    """Rows that hold a record: real models, and placeholders of models that disappeared from the
    Hub (their last record kept; docs/ingest.md "Refreshing"), not placeholders made for a reference."""
    referenced_only = pc.fill_null(pc.equal(pc.binary_join(nodes["sources"], "\n"), REFERENCED), False)
    return pc.or_(pc.invert(nodes["placeholder"]), pc.invert(referenced_only))


def _concat(tables: list[pa.Table | None], schema: pa.Schema) -> pa.Table:
    parts = [conform(t, schema) for t in tables if t is not None and t.num_rows]
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts, promote_options="permissive")


def _dedup(table: pa.Table) -> pa.Table:
    if table.num_rows == 0:
        return table
    return table.group_by(table.column_names, use_threads=False).aggregate([])
