"""Apply one Hub crawl to an atlas file in place: changed rows and edges only, in one transaction.

A full ingest rebuilds every table and rewrites the file (:func:`modelatlas.atlas.store.save_atlas`);
adding 1.5k models to a 300k atlas that way took 13.5 s and 2.4 GB (issue 16). Here the crawl's
records and claims go into the DuckDB file directly (docs/ingest.md, "Refreshing"):

* **records** of the crawled models are merged with their stored rows by the build's rule
  (:func:`~modelatlas.atlas.assemble.merge_records`) and replace them;
* a Hub crawl lists each model's *current* metadata, so the claims it makes for a model replace
  that model's earlier Hub-metadata claims (provenance ``hub_tag`` / ``hub_card``, any source):
  those are moved to the history (``claim_withdrawn``), never silently lost; other claims (crawl
  child lists, annotations, card text, predictions) stay;
* **edges** of every child whose claims changed are derived again
  (:func:`~modelatlas.atlas.assemble.derive_edges`); placeholders are added for new references and
  dropped when nothing references them any more (they hold no record); self-loops and cycles are
  broken over the whole graph of claims, exactly as the build does;
* a **full** crawl (no ``--since``) of a source logged before tells which of its models disappeared:
  they become placeholders that keep their last record (nothing is deleted);
* every change is a row of ``refresh_history`` (:data:`HISTORY_SCHEMA`): ``new_model``,
  ``modified``, ``parent_added``, ``parent_removed``, ``relation_changed``, ``claim_withdrawn``,
  ``disappeared``.

All of it is one DuckDB transaction: a refresh killed at any point (even ``kill -9``) leaves the
atlas exactly as it was, and running it again applies it whole. The caller holds the writer lock
(:func:`modelatlas.atlas.store.writing`). The result equals the full build of the same data
(``tests/test_atlas_update.py`` checks it table by table).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.atlas.assemble import (
    REFERENCED,
    clean_evidence,
    cycle_issues,
    derive_edges,
    epoch_us,
    flag_backfilled,
    merge_records,
    placeholder_rows,
)
from modelatlas.atlas.cycles import break_cycles
from modelatlas.atlas.graph import AtlasGraph
from modelatlas.atlas.schema import (
    EDGE_SCHEMA,
    EVIDENCE_SCHEMA,
    EXTRA_TABLES,
    ISSUE_SCHEMA,
    METRIC_SCHEMA,
    NODE_SCHEMA,
    conform,
)
from modelatlas.atlas.store import duckdb_errors, open_for_update, table_sql
from modelatlas.errors import HostError

HISTORY = "refresh_history"
#: One row per change a Hub crawl made to the atlas (see module docstring).
HISTORY_SCHEMA = pa.schema([
    ("run_at", pa.timestamp("us", tz="UTC")), ("source", pa.string()), ("id", pa.string()),
    ("change", pa.string()), ("parent", pa.string()), ("detail", pa.string()),
])
#: Claims a Hub crawl makes from a model's own metadata (its tags and card), so replaces on refresh.
HUB_METADATA_PROVENANCE = ("hub_tag", "hub_card")
_CHANGE_SCHEMA = pa.schema([HISTORY_SCHEMA.field(n) for n in ("id", "change", "parent", "detail")])


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> pa.Table:
    return con.sql(sql, params=params).to_arrow_table()


def _insert(con, name: str, table: pa.Table) -> None:
    if table.num_rows:
        con.register("_rows", table)
        con.execute(f"INSERT INTO {table_sql(name)} BY NAME SELECT * FROM _rows")
        con.unregister("_rows")


def _ensure_table(con, name: str, schema: pa.Schema) -> None:
    """Create ``name`` with ``schema`` when missing; add columns a table written by an older version lacks."""
    con.register("_schema", schema.empty_table())
    con.execute(f"CREATE TABLE IF NOT EXISTS {table_sql(name)} AS SELECT * FROM _schema")
    have = {r[0] for r in con.execute(f"DESCRIBE {table_sql(name)}").fetchall()}
    types = {r[0]: r[1] for r in con.execute("DESCRIBE SELECT * FROM _schema").fetchall()}
    for f in schema:
        if f.name not in have:  # names from our own schema, never from the file
            con.execute(f'ALTER TABLE {table_sql(name)} ADD COLUMN "{f.name}" {types[f.name]}')
    con.unregister("_schema")


def update_in_place(path: str | Path, batch, *, full_crawl: bool, log: pa.Table,
                    run_at: datetime | None = None) -> dict[str, int]:
    """Apply the Hub crawl ``batch`` to the atlas file ``path`` in one transaction (module docstring).

    Parameters
    ----------
    path:
        An existing atlas file; the caller holds its writer lock.
    batch:
        The :class:`~modelatlas.ingest.batch.SourceBatch` of a ``hub:`` crawl.
    full_crawl:
        The crawl listed the whole query (no ``--since``): models of this source it did not list
        disappeared.
    log:
        The run's ``ingest_log`` rows (:data:`modelatlas.ingest.pipeline.INGEST_LOG_SCHEMA`).
    run_at:
        Time of the run (history rows).

    Returns
    -------
    dict
        Changes by kind (the history rows written).
    """
    run_at = run_at or datetime.now(timezone.utc)
    source = batch.source
    records = conform(batch.records, NODE_SCHEMA).select(NODE_SCHEMA.names)
    evidence, ev_issues = clean_evidence(batch.evidence)
    con = open_for_update(path)
    try:
        with duckdb_errors(path, HostError, "cannot update the atlas (left as it was)"):
            try:
                con.execute("BEGIN TRANSACTION")
                history = _apply(con, source, records, evidence, batch, ev_issues, full_crawl, run_at)
                _ensure_table(con, "ingest_log", log.schema)
                _insert(con, "ingest_log", log)
                tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = "
                                                    "'main' AND database_name = current_database()").fetchall()}
                for key, value in (("saved_at", run_at.isoformat()), ("extras", sorted(tables & set(EXTRA_TABLES)))):
                    con.execute("UPDATE atlas_meta SET value = ? WHERE key = ?", [json.dumps(value), key])
                con.execute("COMMIT")
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass  # no transaction left to roll back
                raise
            con.execute("CHECKPOINT")  # fold the write-ahead log into the file now, not at the next open
    finally:
        con.close()
    return history


def _apply(con, source, records, evidence, batch, ev_issues, full_crawl, run_at) -> dict[str, int]:
    con.execute("CREATE TEMP TABLE old_edges AS SELECT parent, child, relation FROM edges")
    con.register("new_records", records.select(["id", "last_modified"]))
    con.execute("CREATE TEMP TABLE crawled AS SELECT DISTINCT id FROM new_records")
    changes: list[pa.Table] = []

    def note(sql: str, params=None):
        changes.append(_arrow(con, sql, params))

    # records: new or modified, then merged with the stored rows and put in their place
    note(f"""SELECT n.id, CASE WHEN o.id IS NULL OR (o.placeholder AND o.sources = ['{REFERENCED}']) THEN 'new_model'
                              ELSE 'modified' END AS change, NULL AS parent,
                   CASE WHEN o.id IS NOT NULL THEN 'last_modified ' || coalesce(CAST(o.last_modified AS VARCHAR), '-')
                        || ' -> ' || coalesce(CAST(n.last_modified AS VARCHAR), '-') END AS detail
            FROM new_records n LEFT JOIN nodes o USING (id)
            WHERE o.id IS NULL OR (o.placeholder AND o.sources = ['{REFERENCED}'])
               OR o.last_modified IS DISTINCT FROM n.last_modified""")
    stored = _arrow(con, f"""SELECT * FROM nodes WHERE id IN (SELECT id FROM crawled)
                             AND NOT (placeholder AND sources = ['{REFERENCED}'])""")
    merged = merge_records(pa.concat_tables([conform(stored, NODE_SCHEMA).select(NODE_SCHEMA.names), records]), con)
    con.execute("DELETE FROM nodes WHERE id IN (SELECT id FROM crawled)")
    _insert(con, "nodes", flag_backfilled(conform(merged, NODE_SCHEMA).select(NODE_SCHEMA.names)))

    # claims: the crawled models' earlier Hub-metadata claims give way to the crawl's
    con.register("new_evidence", evidence)
    provenances = ", ".join(f"'{p}'" for p in HUB_METADATA_PROVENANCE)
    con.execute(f"""CREATE TEMP TABLE withdrawn AS
        SELECT * FROM evidence WHERE child IN (SELECT id FROM crawled) AND provenance IN ({provenances})
        EXCEPT SELECT * FROM new_evidence""")  # withdrawn: not claimed again (the rest is inserted again below)
    note("""SELECT child AS id, 'claim_withdrawn' AS change, parent,
                   'relation ' || coalesce(relation, '-') || ', rule ' || relation_rule || ', provenance '
                   || provenance || ', source ' || source AS detail FROM withdrawn""")
    con.execute(f"DELETE FROM evidence WHERE child IN (SELECT id FROM crawled) AND provenance IN ({provenances})")
    con.execute("INSERT INTO evidence BY NAME (SELECT DISTINCT * FROM new_evidence EXCEPT SELECT * FROM evidence)")

    # models of this source that a full crawl no longer lists
    if full_crawl:
        note("""SELECT id, 'disappeared' AS change, NULL AS parent,
                       'not listed by a full crawl of ' || ? AS detail
                FROM nodes WHERE NOT placeholder AND list_contains(sources, ?)
                AND id NOT IN (SELECT id FROM crawled)""", [source, source])
        con.execute("""UPDATE nodes SET placeholder = true WHERE NOT placeholder AND list_contains(sources, ?)
                       AND id NOT IN (SELECT id FROM crawled)""", [source])

    # placeholders: every id a claim names has a row; a placeholder nothing names any more goes
    con.execute("""CREATE TEMP TABLE named AS SELECT parent AS id FROM evidence UNION SELECT child FROM evidence""")
    con.execute(f"""DELETE FROM nodes WHERE placeholder AND sources = ['{REFERENCED}']
                    AND id NOT IN (SELECT id FROM named)""")
    missing = _arrow(con, "SELECT id FROM named WHERE id NOT IN (SELECT id FROM nodes) ORDER BY id")["id"]
    _insert(con, "nodes", placeholder_rows(missing.combine_chunks()))

    # edges: derived again for every child whose claims changed, then cycles broken over all claims
    con.execute("""CREATE TEMP TABLE touched AS SELECT id FROM crawled UNION SELECT child FROM new_evidence
                   UNION SELECT child FROM withdrawn""")
    ids = _arrow(con, "SELECT id, created_at FROM nodes ORDER BY id")
    pairs = _arrow(con, "SELECT DISTINCT parent, child FROM evidence ORDER BY child, parent")  # the build's edge order
    graph = AtlasGraph.from_ids(ids["id"], pairs["parent"], pairs["child"])
    keep, removed = break_cycles(graph, epoch_us(ids["created_at"]))
    con.register("kept_pairs", pairs.filter(pa.array(keep)))
    # children to derive: touched ones, and any whose kept pairs differ from the stored edges
    con.execute("""INSERT INTO touched
        SELECT child FROM (SELECT parent, child FROM kept_pairs EXCEPT SELECT parent, child FROM edges)
        UNION SELECT child FROM (SELECT parent, child FROM edges EXCEPT SELECT parent, child FROM kept_pairs)""")
    claims = _arrow(con, "SELECT * FROM evidence WHERE child IN (SELECT id FROM touched)")
    fresh = derive_edges(conform(claims, EVIDENCE_SCHEMA).select(EVIDENCE_SCHEMA.names), con) \
        if claims.num_rows else EDGE_SCHEMA.empty_table()
    con.execute("DELETE FROM edges WHERE child IN (SELECT id FROM touched)")
    con.register("fresh_edges", fresh)
    con.execute("""INSERT INTO edges BY NAME SELECT f.* FROM fresh_edges f
                   SEMI JOIN kept_pairs k ON f.parent = k.parent AND f.child = k.child""")
    con.execute("DELETE FROM issues WHERE source IS NULL AND kind IN ('self_loop', 'cycle')")  # recomputed
    _insert(con, "issues", _issue_table(cycle_issues(ids["id"], removed)))

    # edge changes, from the stored edges before and after
    note("""SELECT coalesce(n.child, o.child) AS id,
                   CASE WHEN o.child IS NULL THEN 'parent_added' WHEN n.child IS NULL THEN 'parent_removed'
                        ELSE 'relation_changed' END AS change,
                   coalesce(n.parent, o.parent) AS parent,
                   CASE WHEN o.child IS NULL THEN n.relation WHEN n.child IS NULL THEN o.relation
                        ELSE o.relation || ' -> ' || n.relation END AS detail
            FROM old_edges o FULL OUTER JOIN edges n ON o.parent = n.parent AND o.child = n.child
            WHERE o.child IS NULL OR n.child IS NULL OR o.relation <> n.relation""")

    # metrics and reader issues: added once
    con.register("new_metrics", conform(batch.metrics, METRIC_SCHEMA).select(METRIC_SCHEMA.names))
    con.execute("INSERT INTO metrics BY NAME (SELECT DISTINCT * FROM new_metrics EXCEPT SELECT * FROM metrics)")
    con.register("new_issues", _issue_table(list(batch.issues) + ev_issues))
    con.execute('INSERT INTO issues BY NAME (SELECT DISTINCT * FROM new_issues EXCEPT SELECT * FROM issues)')

    rows = [t for t in changes if t.num_rows]
    history = pa.concat_tables([conform(t, _CHANGE_SCHEMA).select(_CHANGE_SCHEMA.names) for t in rows]) \
        if rows else None
    counts: dict[str, int] = {}
    if history is not None:
        n = history.num_rows
        history = history.add_column(0, "source", pa.array([source] * n, pa.string())) \
            .add_column(0, "run_at", pa.array([run_at] * n, HISTORY_SCHEMA.field("run_at").type))
        history = history.sort_by([("change", "ascending"), ("id", "ascending"), ("parent", "ascending")])
        counts = {str(v["values"]): int(v["counts"]) for v in pc.value_counts(history["change"]).to_pylist()}
    _ensure_table(con, HISTORY, HISTORY_SCHEMA)
    if history is not None:
        _insert(con, HISTORY, history.cast(HISTORY_SCHEMA))
    return dict(sorted(counts.items()))


def _issue_table(issues: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(issues, schema=ISSUE_SCHEMA) if issues else ISSUE_SCHEMA.empty_table()
