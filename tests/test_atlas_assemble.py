"""Assembly rules: provenance order, relation rules, placeholders, record merging, idempotence."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas import Atlas
from modelatlas.atlas.schema import PROVENANCE_ORDER, RELATION_RULES


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


def records(*rows: dict) -> pa.Table:
    return pa.Table.from_pylist([{"id": r} if isinstance(r, str) else r for r in rows])


def evidence(*claims: tuple) -> pa.Table:
    """claims: (parent, child, relation, relation_rule, provenance)"""
    return pa.Table.from_pylist([
        {"parent": p, "child": c, "relation": r, "relation_rule": rule, "provenance": prov,
         "confidence": 1.0, "source": "test"} for p, c, r, rule, prov in claims])


def edge(atlas: Atlas, parent: str, child: str) -> dict:
    rows = [e for e in atlas.edges.to_pylist() if e["parent"] == parent and e["child"] == child]
    assert len(rows) == 1
    return rows[0]


def test_strongest_provenance_and_relation_rule_win():
    a = Atlas.build(records("p", "c"), evidence(
        ("p", "c", None, "none", "card_text"),
        ("p", "c", "merge", "card_multi_base", "hub_card"),
        ("p", "c", "adapter", "tree_list", "hub_tree"),
        ("p", "c", None, "none", "hub_tag"),
    ))
    e = edge(a, "p", "c")
    assert e["provenance"] == "hub_tag"
    assert e["relation"] == "adapter"  # the tree list outranks the card
    assert e["relations_claimed"] == ["adapter", "merge"]
    assert e["provenances"] == ["card_text", "hub_card", "hub_tag", "hub_tree"]


def test_typed_tag_beats_tree_list_and_ties_follow_anatomy_order():
    a = Atlas.build(records("p", "c", "d"), evidence(
        ("p", "c", "adapter", "tree_list", "hub_tree"),
        ("p", "c", "quantized", "typed_tag", "hub_tag"),
        ("p", "d", "finetune", "typed_tag", "hub_tag"),
        ("p", "d", "quantized", "typed_tag", "hub_tag"),
    ))
    assert edge(a, "p", "c")["relation"] == "quantized"
    assert edge(a, "p", "d")["relation"] == "quantized"  # last of finetune -> quantized -> adapter -> merge


def test_predicted_edges_rank_after_every_recorded_provenance():
    a = Atlas.build(records("p", "c"), evidence(
        ("p", "c", "finetune", "predicted", "predicted:auto"),
        ("p", "c", None, "none", "card_text"),
    ))
    assert edge(a, "p", "c")["provenance"] == "card_text"
    assert edge(a, "p", "c")["relation"] == "finetune"


def test_referenced_models_become_placeholders_and_nothing_is_lost():
    a = Atlas.build(records("kid"), evidence(("gone/base", "kid", "finetune", "typed_tag", "hub_tag")))
    nodes = {r["id"]: r for r in a.nodes.to_pylist()}
    assert nodes["gone/base"]["placeholder"] is True
    assert nodes["gone/base"]["author"] == "gone"
    assert nodes["kid"]["placeholder"] is False
    assert a.num_edges == 1


def test_duplicate_records_keep_newest_snapshot_and_fill_gaps_from_older():
    a = Atlas.build(records(
        {"id": "m", "snapshot": "20250101_000000", "license": "mit", "downloads": 5, "sources": ["a"]},
        {"id": "m", "snapshot": "20250301_000000", "license": "apache-2.0", "downloads": None, "sources": ["b"]},
    ))
    (row,) = a.nodes.to_pylist()
    assert row["license"] == "apache-2.0" and row["downloads"] == 5
    assert row["sources"] == ["a", "b"]


def test_unknown_relation_words_are_reported_and_kept_as_unknown():
    a = Atlas.build(records("p", "c"), evidence(("p", "c", "distilled", "typed_tag", "hub_tag")))
    assert edge(a, "p", "c")["relation"] == "unknown"
    assert a.issues.column("kind").to_pylist() == ["unknown_relation"]


def test_backfilled_created_at_is_kept_and_flagged():
    a = Atlas.build(records({"id": "old", "created_at": ts("2021-05-01")},
                            {"id": "new", "created_at": ts("2023-05-01")}))
    flags = dict(zip(a.nodes["id"].to_pylist(), a.nodes["created_at_backfilled"].to_pylist()))
    assert flags == {"new": False, "old": True}
    assert a.nodes["created_at"].null_count == 0


def test_merge_children_keep_all_parents():
    a = Atlas.build(records("a", "b", "m"), evidence(
        ("a", "m", "merge", "typed_tag", "hub_tag"), ("b", "m", "merge", "typed_tag", "hub_tag")))
    assert sorted(e["parent"] for e in a.edges.to_pylist() if e["child"] == "m") == ["a", "b"]


ids = st.sampled_from(["a", "b", "c", "d", "org/e", "f"])
claims = st.tuples(ids, ids, st.sampled_from(["finetune", "adapter", "quantized", "merge", None]),
                   st.sampled_from(RELATION_RULES), st.sampled_from(PROVENANCE_ORDER + ("predicted:x",)))


@settings(max_examples=25, deadline=None)
@given(st.lists(claims, max_size=25), st.lists(claims, max_size=10))
def test_ingest_is_idempotent_and_every_pair_is_one_acyclic_edge(first, second):
    recs = records("a", "b", "c")
    once = Atlas.build(recs, evidence(*first)).merged_with(records("d"), evidence(*second))
    twice = once.merged_with(records("d"), evidence(*second))
    assert once.edges.equals(twice.edges)
    assert once.nodes.select(["id", "placeholder"]).equals(twice.nodes.select(["id", "placeholder"]))
    pairs = [(e["parent"], e["child"]) for e in once.edges.to_pylist()]
    assert len(pairs) == len(set(pairs))
    assert all(p != c for p, c in pairs)
    import networkx as nx
    assert nx.is_directed_acyclic_graph(nx.DiGraph(pairs))
    claimed = {(p, c) for p, c, *_ in first + second if p != c}
    dropped = [i for i in once.issues.to_pylist() if i["kind"] == "cycle"]
    assert set(pairs) <= claimed
    assert len(claimed - set(pairs)) == len(dropped)


def test_store_round_trip(tmp_path):
    a = Atlas.build(records({"id": "p", "downloads": 3}, "c"),
                    evidence(("p", "c", "adapter", "typed_tag", "hub_tag")))
    a.extras["layout"] = pa.table({"id": ["p", "c"], "x": [0.0, 1.0]})
    path = a.save(tmp_path / "a.duckdb")
    b = Atlas.load(path)
    assert b.nodes.equals(a.nodes) and b.edges.equals(a.edges)
    assert b.extras["layout"].equals(a.extras["layout"])


def test_failed_save_leaves_previous_atlas_intact(tmp_path):
    a = Atlas.build(records("p"))
    path = a.save(tmp_path / "a.duckdb")

    broken = Atlas.build(records("q", "r"))
    broken.extras["layout"] = "not a table"  # fails half-way through writing
    with pytest.raises(Exception):
        broken.save(path)
    assert Atlas.load(path).nodes["id"].to_pylist() == ["p"]
    # no temporary file is left; the writer lock's file stays (removing it would race other writers)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.duckdb.lock", "a.duckdb"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.integers(-5, 5))), max_size=60),
       st.lists(st.integers(0, 60), max_size=4), st.integers(1, 16), st.data())
def test_take_rows_matches_arrow_take_on_any_chunking(rows, cuts, batch_rows, data):
    from modelatlas.atlas.assemble import take_rows

    table = pa.table({"id": [r[0] for r in rows], "v": pa.array([r[1] for r in rows], pa.int64()),
                      "l": pa.array([[r[0]] * (i % 3) for i, r in enumerate(rows)], pa.list_(pa.string()))})
    n = table.num_rows
    bounds = sorted({min(c, n) for c in cuts})
    table = pa.concat_tables([table.slice(a, b - a) for a, b in zip([0] + bounds, bounds + [n])])
    # a second column chunked differently from the first
    table = table.set_column(1, "v", pa.chunked_array([table["v"].combine_chunks()]))
    idx = np.array(data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=80 if n else 0)), dtype=np.int64)
    assert take_rows(table, idx, batch_rows).to_pylist() == table.take(pa.array(idx, pa.int64())).to_pylist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=4), min_size=1, max_size=60), st.lists(st.integers(1, 59), max_size=3),
       st.lists(st.tuples(st.integers(0, 59), st.integers(0, 8)), max_size=6))
def test_take_rows_slices_runs_of_consecutive_rows(ids, cuts, runs):
    """Runs of consecutive rows (a sorted reader plus a few placeholders) give the same table as
    Arrow's take, and the text column's output shares the input's character data (no copy)."""
    from modelatlas.atlas.assemble import take_rows

    n = len(ids)
    bounds = sorted({min(c, n) for c in cuts})
    table = pa.table({"id": ids, "v": pa.array(range(n), pa.int64())})
    table = pa.concat_tables([table.slice(a, b - a) for a, b in zip([0] + bounds, bounds + [n])])
    idx = np.concatenate([np.arange(s % n, min(s % n + k, n)) for s, k in runs] or [np.zeros(0)]).astype(np.int64)
    out = take_rows(table, idx)
    assert out.to_pylist() == table.take(pa.array(idx, pa.int64())).to_pylist()
    data = {table["id"].chunk(c).buffers()[2].address for c in range(table["id"].num_chunks)
            if table["id"].chunk(c).buffers()[2] is not None}
    for chunk in out["id"].chunks:
        if len(chunk) and chunk.buffers()[2] is not None:
            assert chunk.buffers()[2].address in data
