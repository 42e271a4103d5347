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
from modelatlas.errors import InputError, UnknownModelError

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
    def __repr__(self) -> str:
        placeholders = int(pc.sum(self.nodes["placeholder"]).as_py() or 0) if self.num_nodes else 0
        extras = f", extra tables: {', '.join(self.extras)}" if self.extras else ""
        return (f"<Atlas: {self.num_nodes:,} models ({placeholders:,} placeholders), {self.num_edges:,} edges, "
                f"{self.metrics.num_rows:,} metric values, {self.issues.num_rows:,} issues{extras}>")

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

    # ------------------------------------------------------------------ analyses (docs/api.md)
    def lineage(self, model_id: str):
        """Ancestors of ``model_id`` up to every source, one path to each, and what descends from it.

        Parameters
        ----------
        model_id : str
            The model; an unknown id raises :class:`~modelatlas.errors.UnknownModelError` with
            close matches.

        Returns
        -------
        modelatlas.discover.lineage.Lineage
            ``to_table()`` lists the ancestors with their distance.

        Examples
        --------
        >>> import modelatlas as ma
        >>> atlas = ma.example_atlas()
        >>> atlas
        <Atlas: 11 models (0 placeholders), 10 edges, 0 metric values, 0 issues>
        >>> atlas.lineage("bob/llm-7b-merge")
        <Lineage: bob/llm-7b-merge: 3 ancestors from 1 source (acme/llm-7b), 1 descendant, sub_tree_downloads 11,000>
        >>> atlas.lineage("bob/llm-7b-merge").to_table()["id"].to_pylist()
        ['acme/llm-7b-chat', 'bob/llm-7b-code', 'acme/llm-7b']
        """
        from modelatlas.discover.lineage import lineage

        return lineage(self, model_id)

    def descendants(self, model_id: str):
        """Every model below ``model_id``, each once (merges give several paths), nearest first.

        Parameters
        ----------
        model_id : str
            The model.

        Returns
        -------
        modelatlas.results.Descendants

        Examples
        --------
        >>> import modelatlas as ma
        >>> below = ma.example_atlas().descendants("acme/llm-7b-chat")
        >>> below
        <Descendants: 4 descendants of acme/llm-7b-chat, 2 generations deep>
        >>> below.to_table().select(["id", "distance", "relation"]).to_pylist()[-1]
        {'id': 'quantco/llm-7b-merge-GGUF', 'distance': 2, 'relation': 'quantized'}
        """
        from modelatlas.discover.paths import descendant_distances
        from modelatlas.results import Descendants

        facts = self.facts
        start = int(self.index_of([model_id])[0])
        dist, pred, _ = descendant_distances(facts, np.array([start]))
        below = np.flatnonzero(dist > 0)
        below = below[np.lexsort((facts.ids[below].astype(str), dist[below]))]
        return Descendants(model_id, facts.ids[below].tolist(), dist[below],
                           facts.ids[pred[below]].tolist(),
                           [facts.relation_of(int(pred[i]), int(i)) for i in below],
                           facts.downloads[below].astype(np.int64))

    def sub_tree_downloads(self, *, limit: int | None = 20, task: str | None = None):
        """Models ranked by ``sub_tree_downloads``: their own downloads plus every descendant's,
        each descendant once (Model Atlas paper, Appendix A; docs/science.md).

        Parameters
        ----------
        limit : int or None, default 20
            Rows to return; ``None`` for every model.
        task : str or None, default None
            Keep models with this ``pipeline_tag``.

        Returns
        -------
        modelatlas.results.Ranking
            Columns ``rank``, ``id``, ``sub_tree_downloads``, ``downloads``, ``descendants``,
            ``pipeline_tag``, ``component``.

        Examples
        --------
        >>> import modelatlas as ma
        >>> ranking = ma.example_atlas().sub_tree_downloads(limit=3)
        >>> ranking
        <Ranking: 3 models by sub_tree_downloads; first acme/diffusion-xl (2,105,700)>
        >>> ranking.to_pandas()[["id", "descendants"]].values.tolist()
        [['acme/diffusion-xl', 3], ['acme/llm-7b', 6], ['acme/llm-7b-chat', 4]]
        """
        from modelatlas.analytics.impact import top_models
        from modelatlas.results import Ranking

        return Ranking("sub_tree_downloads", top_models(self.facts, "sub_tree_downloads", task=task,
                                                        limit=self.num_nodes if limit is None else limit))

    def stats(self, *, top_components: int = 10):
        """Every meta-ML statistic of the Model Atlas paper and the headline numbers beside the
        paper's (sections 3.2, 4.1 and Appendix A; docs/science.md).

        Parameters
        ----------
        top_components : int, default 10
            The biggest components that get their own rows in the per-group tables.

        Returns
        -------
        modelatlas.analytics.statistics.AtlasStatistics
            ``to_table()`` is the headline table (``statistic``, ``paper``, ``ours``, ``n``);
            ``tables`` holds every statistic's table by name.

        Examples
        --------
        >>> import modelatlas as ma
        >>> stats = ma.example_atlas().stats()
        >>> row = stats.to_pandas().set_index("statistic").loc["quantised models that are leaves"]
        >>> float(row["ours"]), int(row["n"])
        (1.0, 2)
        """
        from modelatlas.analytics.statistics import compute_statistics

        return compute_statistics(self, top_components=top_components)

    def search(self, *, descendants_of: str | None = None, task: str | None = None, licence: str | None = None,
               library: str | None = None, max_params: float | None = None, min_downloads: float | None = None,
               rank_by: str = "downloads", use_imputed: bool = True, limit: int = 20):
        """Models matching traits and lineage together, best first, each with the reasons it matched
        (Model Atlas paper, section 3.3; docs/science.md).

        Parameters
        ----------
        descendants_of : str or None, default None
            Only descendants of this model.
        task, licence, library : str or None, default None
            Exact ``pipeline_tag`` / ``license`` / ``library_name``.
        max_params, min_downloads : float or None, default None
            Bounds (a model with an unknown parameter count fails ``max_params``).
        rank_by : str, default "downloads"
            ``sub_tree_downloads``, ``descendants``, ``descendant_downloads``, ``downloads``,
            ``likes`` or ``score:<metric>``.
        use_imputed : bool, default True
            Let imputed tasks, licences and scores (``modelatlas impute``) count; reasons say so.
        limit : int, default 20
            Models to return.

        Returns
        -------
        modelatlas.results.SearchResult

        Examples
        --------
        >>> import modelatlas as ma
        >>> found = ma.example_atlas().search(descendants_of="acme/llm-7b", licence="llama2")
        >>> found
        <SearchResult: 3 matches (descendants_of='acme/llm-7b', licence='llama2', by downloads)>
        >>> found.rows[0]["id"], found.rows[0]["reasons"][0]
        ('acme/llm-7b-chat', 'descendant of acme/llm-7b at distance 1: acme/llm-7b -finetune-> acme/llm-7b-chat')
        """
        from modelatlas.discover.search import SearchQuery
        from modelatlas.discover.search import search as run_search
        from modelatlas.results import SearchResult

        query = SearchQuery(descendants_of=descendants_of, task=task, licence=licence, library=library,
                            max_params=max_params, min_downloads=min_downloads, rank_by=rank_by,
                            use_imputed=use_imputed, limit=limit)
        found = run_search(self.facts, query)
        return SearchResult(dict(found["query"]), found["matches"], found["rows"])

    def draw_family(self, model_id: str, out: str | Path, *, color: str = "relation",
                    size: str = "downloads", dpi: int = 100) -> Path:
        """Draw the family (weakly connected component) of ``model_id`` into a PNG or SVG file,
        edges coloured by relation (the paper's Llama and Stable Diffusion panels; docs/web.md).

        Parameters
        ----------
        model_id : str
            Any member of the family.
        out : str or pathlib.Path
            Output file, ``.png`` or ``.svg``.
        color : str, default "relation"
            Node colour feature (``relation``, ``pipeline_tag``, ``license``, ``library_name``...).
        size : str, default "downloads"
            Node size feature (``downloads`` or ``sub_tree_downloads``).
        dpi : int, default 100
            Resolution of a PNG.

        Returns
        -------
        pathlib.Path
            The file written (show it in a notebook with ``IPython.display.Image``).

        Examples
        --------
        >>> import tempfile, modelatlas as ma
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     ma.example_atlas().draw_family("bob/llm-7b-merge", f"{folder}/family.png").stat().st_size > 0
        True
        """
        from modelatlas.viz.data import AtlasView
        from modelatlas.viz.figure import draw_figure

        self.index_of([model_id])  # an unknown id fails here, with close matches
        return draw_figure(AtlasView(self), "component", out, color=color, size=size, model=model_id,
                           dpi=dpi)

    # ------------------------------------------------------------------ other libraries
    def to_pandas(self, table: str = "nodes"):
        """One table of the atlas as a :class:`pandas.DataFrame`.

        Parameters
        ----------
        table : str, default "nodes"
            ``nodes``, ``edges``, ``evidence``, ``metrics``, ``issues`` or an extra table's name.

        Returns
        -------
        pandas.DataFrame

        Examples
        --------
        >>> import modelatlas as ma
        >>> ma.example_atlas().to_pandas("edges")[["parent", "child", "relation"]].iloc[0].tolist()
        ['acme/llm-7b', 'acme/llm-7b-chat', 'finetune']
        """
        from modelatlas.results import arrow_to_pandas

        return arrow_to_pandas(self._table(table))

    def to_polars(self, table: str = "nodes"):
        """One table of the atlas as a :class:`polars.DataFrame` (needs ``polars`` installed).

        Parameters
        ----------
        table : str, default "nodes"
            As for :meth:`to_pandas`.

        Returns
        -------
        polars.DataFrame

        Examples
        --------
        >>> import modelatlas as ma
        >>> ma.example_atlas().to_polars().height
        11
        """
        try:
            import polars
        except ImportError:
            raise ImportError("Atlas.to_polars needs polars: pip install polars") from None
        return polars.from_arrow(self._table(table))

    def to_networkx(self, *, attributes: list[str] | None = None):
        """The atlas as a :class:`networkx.DiGraph`: nodes are model ids, edges point from parent
        to child and carry ``relation``, ``provenance`` and ``confidence``.

        Parameters
        ----------
        attributes : list of str or None, default None
            Node columns to attach as node attributes; ``None``: every column but ``id`` and
            ``card_text``.

        Returns
        -------
        networkx.DiGraph

        Examples
        --------
        >>> import networkx as nx, modelatlas as ma
        >>> g = ma.example_atlas().to_networkx()
        >>> sorted(nx.ancestors(g, "quantco/llm-7b-merge-GGUF"))
        ['acme/llm-7b', 'acme/llm-7b-chat', 'bob/llm-7b-code', 'bob/llm-7b-merge']
        >>> g.edges["bob/llm-7b-code", "bob/llm-7b-merge"]["relation"]
        'merge'
        """
        import networkx as nx

        names = [c for c in self.nodes.column_names if c not in ("id", "card_text")] \
            if attributes is None else list(attributes)
        unknown = sorted(set(names) - set(self.nodes.column_names))
        if unknown:
            raise InputError(f"the atlas's nodes have no column {unknown[0]!r}", where="attributes")
        graph = nx.DiGraph()
        columns = self.nodes.select(names).to_pydict()
        graph.add_nodes_from((id_, {k: columns[k][i] for k in names})
                             for i, id_ in enumerate(self.nodes["id"].to_pylist()))
        edges = self.edges.select(["parent", "child", "relation", "provenance", "confidence"]).to_pylist()
        graph.add_edges_from((e.pop("parent"), e.pop("child"), e) for e in edges)
        return graph

    def _table(self, name: str) -> pa.Table:
        tables = self.tables()
        if name not in tables:
            raise InputError(f"the atlas has no table {name!r}; tables: {', '.join(tables)}", where="table")
        return tables[name]

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
