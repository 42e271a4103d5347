"""Turn model records and parent claims ("evidence") into an atlas.

Rules (issue 2, DESIGN.md "The atlas"):

* **Records.** Several records of one id (several snapshots, several sources) become one node:
  each column takes the value of the best record that has one (real before placeholder, newest
  ``snapshot``, then newest ``last_modified``), so nothing known is lost; ``sources`` is the union.
* **Edges.** One edge per (parent, child) pair. Its provenance is the strongest claim's
  (``hub_tag`` > ``hub_tree`` > ``hub_card`` > ``manual`` > ``card_text`` > ``predicted:*``). Its
  relation comes from the strongest *relation rule* that named one (typed tag > tree list > card
  ``base_model_relation`` > several card bases > annotation > prediction); between relations
  claimed at the same rule, the last of finetune → quantized → adapter → merge wins (the
  Anatomy notebooks' order). All claimed relations and provenances stay on the edge.
* **Placeholders.** Ids referenced by evidence without a record become flagged placeholder nodes.
* **Self-loops and cycles** are removed by :func:`modelatlas.atlas.cycles.break_cycles` and
  reported; the evidence itself is kept.
* ``created_at`` on or before 2022-03-02 (the back-fill date) is kept and flagged ``created_at_backfilled``.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.atlas.cycles import break_cycles
from modelatlas.atlas.graph import AtlasGraph
from modelatlas.atlas.store import no_progress_bar
from modelatlas.atlas.schema import (
    BACKFILL_CUTOFF,
    EDGE_SCHEMA,
    EVIDENCE_SCHEMA,
    ISSUE_SCHEMA,
    NODE_SCHEMA,
    PROVENANCE_ORDER,
    RELATION_RULES,
    RELATIONS,
    conform,
)

#: Among relations claimed by equally strong rules, the later one here wins.
_RELATION_TIE_ORDER = ("unknown", "finetune", "quantized", "adapter", "merge")


def _rank_case(column: str, values: tuple[str, ...], *, predicted_rank: int | None = None) -> str:
    cases = " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(values))
    tail = len(values) + 1
    if predicted_rank is not None:
        return (f"(CASE WHEN {column} LIKE 'predicted:%' THEN {predicted_rank} "
                f"ELSE (CASE {column} {cases} ELSE {tail} END) END)")
    return f"(CASE {column} {cases} ELSE {tail} END)"


def merge_records(records: pa.Table, con: duckdb.DuckDBPyConnection) -> pa.Table:
    """One row per id; see the module docstring for which value each column keeps."""
    records = conform(records, NODE_SCHEMA)
    if records.num_rows == 0 or _strictly_increasing(records["id"]) \
            or pc.count_distinct(records["id"]).as_py() == records.num_rows:
        return records
    con.register("records_in", records)
    cols = [c for c in records.column_names if c not in ("id", "sources", "placeholder")]
    order = "placeholder ASC, snapshot DESC NULLS LAST, last_modified DESC NULLS LAST"
    picks = ",\n".join(
        f'first("{c}" ORDER BY {order}) FILTER (WHERE "{c}" IS NOT NULL) AS "{c}"' for c in cols)
    merged = con.sql(f"""
        SELECT id, bool_and(placeholder) AS placeholder, {picks},
               list_sort(list_distinct(flatten(list(coalesce(sources, []))))) AS sources
        FROM records_in GROUP BY id""").to_arrow_table()
    con.unregister("records_in")
    return conform(merged, NODE_SCHEMA).select(records.column_names)


def _strictly_increasing(ids: pa.ChunkedArray) -> bool:
    """Whether ``ids`` are sorted with no repeats (then they are distinct): a cheap test first,
    since readers hand over their records sorted by id (:mod:`modelatlas.ingest.records`)."""
    ids = ids.combine_chunks() if ids.num_chunks != 1 else ids.chunk(0)
    return ids.null_count == 0 and (len(ids) < 2 or pc.all(pc.greater(ids[1:], ids[:-1])).as_py() is True)


def derive_edges(evidence: pa.Table, con: duckdb.DuckDBPyConnection) -> pa.Table:
    """One edge per (parent, child) pair from the evidence rows (no cycle handling)."""
    con.register("evidence_in", evidence)
    prov_rank = _rank_case("provenance", PROVENANCE_ORDER, predicted_rank=len(PROVENANCE_ORDER))
    rule_rank = _rank_case("relation_rule", RELATION_RULES)
    tie_rank = _rank_case("relation", _RELATION_TIE_ORDER)
    edges = con.sql(f"""
        WITH ranked AS (
            SELECT *, {prov_rank} AS p_rank, {rule_rank} AS r_rank, {tie_rank} AS t_rank
            FROM evidence_in)
        SELECT parent, child,
               coalesce(first(relation ORDER BY r_rank ASC, t_rank DESC)
                        FILTER (WHERE relation IS NOT NULL AND relation <> 'unknown'),
                        'unknown') AS relation,
               first(provenance ORDER BY p_rank ASC, provenance ASC) AS provenance,
               max(confidence) AS confidence,
               list_sort(list_distinct(list(relation))) AS relations_claimed,
               list_sort(list_distinct(list(provenance))) AS provenances
        FROM ranked GROUP BY parent, child ORDER BY child, parent""").to_arrow_table()
    con.unregister("evidence_in")
    return conform(edges, EDGE_SCHEMA)


def clean_evidence(evidence: pa.Table) -> tuple[pa.Table, list[dict]]:
    """Conform evidence, drop exact repeats, and set aside rows that cannot make an edge."""
    evidence = conform(evidence, EVIDENCE_SCHEMA).select(EVIDENCE_SCHEMA.names)
    issues: list[dict] = []
    bad = pc.or_kleene(pc.is_null(evidence["parent"]), pc.is_null(evidence["child"]))
    bad = pc.fill_null(pc.or_(bad, pc.or_(pc.equal(evidence["parent"], ""), pc.equal(evidence["child"], ""))), True)
    for row in evidence.filter(bad).to_pylist():
        issues.append({"kind": "empty_id", "source": row["source"], "where": row["child"] or row["parent"],
                       "message": "parent claim with an empty model id was ignored"})
    evidence = evidence.filter(pc.invert(bad))
    if evidence.num_rows:  # exact repeats (a source ingested twice) count once
        evidence = evidence.group_by(evidence.column_names, use_threads=False).aggregate([]) \
            .sort_by([("child", "ascending"), ("parent", "ascending"), ("source", "ascending"),
                      ("provenance", "ascending"), ("relation_rule", "ascending")]) \
            .select(EVIDENCE_SCHEMA.names)
    unknown = pc.invert(pc.is_in(pc.fill_null(evidence["relation"], "unknown"), pa.array(RELATIONS)))
    if pc.any(unknown).as_py():
        for row in evidence.filter(unknown).to_pylist():
            issues.append({"kind": "unknown_relation", "source": row["source"], "where": row["child"],
                           "message": f"relation {row['relation']!r} for parent {row['parent']!r} is not one of "
                                      f"{', '.join(RELATIONS)}; recorded as 'unknown'"})
        evidence = evidence.set_column(
            evidence.schema.get_field_index("relation"), "relation",
            pc.if_else(unknown, pa.scalar("unknown"), evidence["relation"]))
    return evidence, issues


def assemble(records: pa.Table, evidence: pa.Table, *, issues: list[dict] | None = None):
    """Build the node and edge tables of an atlas.

    Parameters
    ----------
    records:
        Model records (any subset of :data:`~modelatlas.atlas.schema.NODE_SCHEMA` columns; ``id``
        required). Placeholder rows are allowed and lose to real records.
    evidence:
        Parent claims (:data:`~modelatlas.atlas.schema.EVIDENCE_SCHEMA`).
    issues:
        Problems already found by the readers; this function appends its own.

    Returns
    -------
    nodes, edges, evidence, issues : pyarrow.Table
    """
    issues = list(issues or [])
    con = duckdb.connect()
    no_progress_bar(con)
    try:
        nodes = merge_records(records, con)
        evidence, ev_issues = clean_evidence(evidence)
        issues += ev_issues
        edges = derive_edges(evidence, con) if evidence.num_rows else EDGE_SCHEMA.empty_table()
    finally:
        con.close()

    # Placeholders for referenced models without a record.
    referenced = pc.unique(pa.concat_arrays([edges["parent"].combine_chunks(), edges["child"].combine_chunks()]))
    missing = pc.filter(referenced, pc.invert(pc.is_in(referenced, nodes["id"])))
    missing = missing.take(pc.sort_indices(missing))  # sorted, so records sorted by id stay in runs
    if len(missing):
        nodes = pa.concat_tables([nodes, placeholder_rows(missing).select(nodes.column_names)],
                                 promote_options="permissive")
    nodes = take_rows(nodes, pc.sort_indices(nodes["id"]).to_numpy())
    nodes = flag_backfilled(nodes)

    # Self-loops and cycles.
    graph = AtlasGraph.from_ids(nodes["id"], edges["parent"], edges["child"])
    keep, removed = break_cycles(graph, epoch_us(nodes["created_at"]))
    issues += cycle_issues(nodes["id"], removed)
    if not keep.all():
        edges = edges.filter(pa.array(keep))
    issue_table = pa.Table.from_pylist(issues, schema=ISSUE_SCHEMA) if issues else ISSUE_SCHEMA.empty_table()
    return nodes, edges, evidence, issue_table


def cycle_issues(ids, removed) -> list[dict]:
    """The issues (no source: the atlas's own) of the self-loops and cycle edges :func:`break_cycles` dropped."""
    issues = []
    for r in removed:
        parent, child = ids[r.parent].as_py(), ids[r.child].as_py()
        if r.reason == "self_loop":
            issues.append({"kind": "self_loop", "source": None, "where": child,
                           "message": f"{child!r} names itself as its parent; the claim was dropped"})
        else:
            path = " -> ".join(ids[i].as_py() for i in r.cycle + r.cycle[:1])
            issues.append({"kind": "cycle", "source": None, "where": child,
                           "message": f"cycle {path} broken by dropping its newest edge {parent!r} -> {child!r}"})
    return issues


#: ``sources`` of a placeholder made because an edge names it (not one that lost its record).
REFERENCED = "referenced"


def placeholder_rows(ids: pa.Array) -> pa.Table:
    """Placeholder node rows for ``ids``: referenced by a parent claim, no record of their own."""
    return conform(pa.table({
        "id": ids,
        "placeholder": pa.array([True] * len(ids), pa.bool_()),
        "author": pc.if_else(pc.match_substring(ids, "/"),
                             pc.list_element(pc.split_pattern(ids, "/", max_splits=1), 0), None),
        "sources": pa.array([[REFERENCED]] * len(ids), pa.list_(pa.string())),
    }), NODE_SCHEMA)


#: A variable-width column is sliced instead of gathered when at most this share of the rows
#: start a new run of consecutive input rows.
MAX_RUN_SHARE = 1 / 256


def take_rows(table: pa.Table, indices: np.ndarray, batch_rows: int = 1 << 18) -> pa.Table:
    """``table.take(indices)``, chunk by chunk.

    Arrow's ``take`` on a chunked column first concatenates its chunks: one more copy of every
    column (a Hub's card texts are gigabytes), and past 2 GiB of text a 32-bit ``string`` column
    overflows. Here each output batch gathers its rows from the input chunks they live in, so
    only the result is allocated and no array grows past one input chunk or one output batch.

    When ``indices`` are runs of consecutive rows (a reader that already sorted its records by id,
    with a few placeholders merged in), variable-width columns (strings, lists) are not copied at
    all: their output chunks are zero-copy slices of the input, one per run.
    """
    indices = np.asarray(indices, dtype=np.int64)
    plans: dict[tuple[int, ...], list] = {}
    runs: dict[tuple[int, ...], list | None] = {}
    columns = []
    for col in table.columns:
        lengths = tuple(len(c) for c in col.chunks)
        if _variable_width(col.type):
            if lengths not in runs:
                runs[lengths] = _runs(lengths, indices)
            if runs[lengths] is not None:
                columns.append(pa.chunked_array([col.chunk(c).slice(start, k) for c, start, k in runs[lengths]],
                                                col.type))
                continue
        if lengths not in plans:  # columns of one table may be chunked differently
            plans[lengths] = _gather_plan(lengths, indices, batch_rows)
        out = []
        for groups, inverse in plans[lengths]:
            pieces = [col.chunk(c).take(rows) for c, rows in groups]
            out.append((pa.concat_arrays(pieces) if len(pieces) > 1 else pieces[0]).take(inverse))
        columns.append(pa.chunked_array(out, col.type))
    return pa.Table.from_arrays(columns, schema=table.schema)


def _variable_width(kind: pa.DataType) -> bool:
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind))


def _runs(lengths: tuple[int, ...], indices: np.ndarray) -> list[tuple[int, int, int]] | None:
    """``indices`` as (chunk, first row, length) runs of consecutive rows within one chunk, or
    ``None`` when there are too many runs for slicing to pay (see :data:`MAX_RUN_SHARE`)."""
    if indices.size == 0:
        return []
    starts = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    which = np.searchsorted(starts, indices, side="right") - 1
    new = np.flatnonzero((np.diff(indices) != 1) | (np.diff(which) != 0)) + 1
    if new.size + 1 > max(16, indices.size * MAX_RUN_SHARE):
        return None
    first = np.concatenate([[0], new])
    sizes = np.diff(np.concatenate([first, [indices.size]]))
    return [(int(which[f]), int(indices[f] - starts[which[f]]), int(k)) for f, k in zip(first, sizes)]


def _gather_plan(lengths: tuple[int, ...], indices: np.ndarray, batch_rows: int) -> list:
    """Per output batch: which rows to take from which chunk, and how to reorder the pieces."""
    starts = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    which = np.searchsorted(starts, indices, side="right") - 1
    local = indices - starts[which]
    plan = []
    for b in range(0, indices.size, batch_rows):
        w, loc = which[b:b + batch_rows], local[b:b + batch_rows]
        order = np.argsort(w, kind="stable")
        bounds = np.flatnonzero(np.diff(w[order])) + 1
        groups = [(int(w[g[0]]), pa.array(loc[g])) for g in np.split(order, bounds) if g.size]
        inverse = np.empty(order.size, dtype=np.int64)
        inverse[order] = np.arange(order.size)
        plan.append((groups, pa.array(inverse)))
    return plan


def flag_backfilled(nodes: pa.Table) -> pa.Table:
    cutoff = pa.scalar(datetime.fromisoformat(BACKFILL_CUTOFF), pa.timestamp("us", tz="UTC"))
    flag = pc.less(nodes["created_at"], cutoff)
    idx = nodes.schema.get_field_index("created_at_backfilled")
    return nodes.set_column(idx, "created_at_backfilled", flag)


def epoch_us(created_at) -> np.ndarray:
    """Microseconds since the epoch, ``-inf`` where missing."""
    values = pc.cast(created_at, pa.int64()).to_numpy(zero_copy_only=False)
    arr = np.asarray(values, dtype=np.float64)
    mask = pc.is_null(created_at).to_numpy(zero_copy_only=False)
    arr[mask] = -np.inf
    return arr
