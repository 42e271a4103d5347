"""A Hub crawl applied to an atlas file in place (modelatlas.atlas.update): the same atlas as the
full build, a history of changes, parents that change or are renamed, models that disappear, and a
refresh killed by ``kill -9`` that leaves the atlas as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelatlas.atlas.atlas import Atlas
from modelatlas.atlas.store import writing
from modelatlas.atlas.update import HISTORY, update_in_place
from modelatlas.ingest.batch import SourceBatch
from modelatlas.ingest.pipeline import log_rows

SOURCE = "hub:"
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _batch(models: dict[str, list[str]], *, when: int = 0, source: str = SOURCE) -> SourceBatch:
    """A Hub batch: each model with the parents its ``base_model:`` tags name (claims by the child)."""
    ids = sorted(models)
    batch = SourceBatch(source, "hub")
    batch.records = pa.table({
        "id": ids, "author": [i.split("/")[0] for i in ids],
        "created_at": pa.array([T0 + timedelta(hours=hash_hour(i)) for i in ids], pa.timestamp("us", tz="UTC")),
        "last_modified": pa.array([T0 + timedelta(days=when)] * len(ids), pa.timestamp("us", tz="UTC")),
        "downloads": [len(i) for i in ids], "sources": [[source]] * len(ids)})
    rows = [(p, c) for c in ids for p in models[c]]
    batch.evidence = pa.table({
        "parent": [p for p, _ in rows], "child": [c for _, c in rows], "relation": ["finetune"] * len(rows),
        "relation_rule": ["typed_tag"] * len(rows), "provenance": ["hub_tag"] * len(rows),
        "confidence": [1.0] * len(rows), "source": [source] * len(rows)})
    return batch


def hash_hour(model_id: str) -> int:
    return sum(map(ord, model_id)) % 97  # creation times that differ, so cycles break at a known edge


def _save(tmp_path: Path, batch: SourceBatch) -> Path:
    path = tmp_path / "atlas.duckdb"
    atlas = Atlas.empty().merged_with(batch.records, batch.evidence, metrics=batch.metrics, issues=batch.issues)
    atlas.save(path)
    return path


def _apply(path: Path, batch: SourceBatch, *, full_crawl: bool = False) -> dict:
    with writing(path):
        return update_in_place(path, batch, full_crawl=full_crawl, log=log_rows([batch]))


def _sorted(table: pa.Table) -> pa.Table:
    plain = [c for c in table.column_names if not pa.types.is_list(table.schema.field(c).type)]
    return table.sort_by([(c, "ascending") for c in plain])


def _same(a: Atlas, b: Atlas) -> None:
    assert a.nodes.equals(b.nodes)
    assert a.edges.equals(b.edges)
    assert _sorted(a.evidence).equals(_sorted(b.evidence))
    assert _sorted(a.issues).equals(_sorted(b.issues))


_ids = st.sampled_from([f"o/m{i}" for i in range(10)])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.dictionaries(_ids, st.lists(_ids, max_size=2, unique=True), min_size=1, max_size=6),
       second=st.dictionaries(_ids, st.lists(_ids, max_size=2, unique=True), min_size=1, max_size=6))
def test_in_place_equals_the_full_build(tmp_path_factory, first, second):
    """New models (any parents: placeholders, self-loops, cycles across the two crawls) applied in
    place give the very atlas the full build gives."""
    second = {k: v for k, v in second.items() if k not in first}
    if not second:
        return
    tmp = tmp_path_factory.mktemp("u")
    a, b = _batch(first), _batch(second, when=1)
    path = _save(tmp, a)
    _apply(path, b)
    built = Atlas.load(tmp / "atlas.duckdb")
    rebuilt = Atlas.empty().merged_with(a.records, a.evidence).merged_with(b.records, b.evidence)
    _same(built, rebuilt)


def test_re_adding_the_same_crawl_changes_nothing(tmp_path):
    batch = _batch({"o/base": [], "o/ft": ["o/base"], "o/q": ["o/ft", "o/gone"]})
    path = _save(tmp_path, batch)
    before = Atlas.load(path)
    assert _apply(path, batch) == {}
    after = Atlas.load(path)
    _same(before, after)
    assert after.extras[HISTORY].num_rows == 0


def test_a_changed_parent_moves_the_edge_and_keeps_the_history(tmp_path):
    path = _save(tmp_path, _batch({"o/a": [], "o/b": [], "o/c": ["o/a"], "o/d": ["o/x"]}))
    changes = _apply(path, _batch({"o/c": ["o/b"], "o/d": ["o/a"]}, when=2))
    atlas = Atlas.load(path)
    assert sorted(zip(atlas.edges["parent"].to_pylist(), atlas.edges["child"].to_pylist())) == [
        ("o/a", "o/d"), ("o/b", "o/c")]
    assert "o/x" not in atlas.nodes["id"].to_pylist()  # a placeholder nothing names any more holds nothing
    assert {"o/a", "o/b"} <= set(atlas.nodes["id"].to_pylist())  # models are never deleted
    history = {(r["change"], r["id"], r["parent"]) for r in atlas.extras[HISTORY].to_pylist()}
    assert {("parent_removed", "o/c", "o/a"), ("parent_added", "o/c", "o/b"), ("claim_withdrawn", "o/c", "o/a"),
            ("parent_removed", "o/d", "o/x"), ("parent_added", "o/d", "o/a"), ("claim_withdrawn", "o/d", "o/x"),
            ("modified", "o/c", None),
            ("modified", "o/d", None)} == history
    assert changes == {"claim_withdrawn": 2, "modified": 2, "parent_added": 2, "parent_removed": 2}
    # the withdrawn claims are in the history, the evidence holds the current ones
    assert sorted(atlas.evidence["parent"].to_pylist()) == ["o/a", "o/b"]


def test_a_renamed_parent_and_a_model_that_disappeared(tmp_path):
    """The Hub renamed ``o/old`` to ``o/new``: a full crawl lists ``o/new`` and a child that names it;
    another child still names ``o/old``. The old name is kept (a placeholder with its last record),
    the child naming it keeps its edge, and no edge is invented to the new name."""
    path = _save(tmp_path, _batch({"o/old": [], "o/c1": ["o/old"], "o/c2": ["o/old"]}))
    changes = _apply(path, _batch({"o/new": [], "o/c1": ["o/new"], "o/c2": ["o/old"]}, when=3), full_crawl=True)
    atlas = Atlas.load(path)
    rows = {r["id"]: r for r in atlas.nodes.to_pylist()}
    assert rows["o/old"]["placeholder"] and rows["o/old"]["downloads"] == len("o/old")  # record kept
    assert not rows["o/new"]["placeholder"]
    assert sorted(zip(atlas.edges["parent"].to_pylist(), atlas.edges["child"].to_pylist())) == [
        ("o/new", "o/c1"), ("o/old", "o/c2")]
    assert changes["disappeared"] == 1 and changes["new_model"] == 1
    # a later full rebuild (a file ingest) keeps the disappeared model's record too
    again = atlas.merged_with(_batch({"o/z": []}).records)
    kept = {r["id"]: r for r in again.nodes.to_pylist()}["o/old"]
    assert kept["placeholder"] and kept["downloads"] == len("o/old")
    # it comes back as a real model when the Hub lists it again
    _apply(path, _batch({"o/old": []}, when=4))
    assert not {r["id"]: r for r in Atlas.load(path).nodes.to_pylist()}["o/old"]["placeholder"]


_KILLED_RUN = textwrap.dedent("""
    import sys, time
    import pyarrow.parquet as pq
    from modelatlas.atlas.store import writing
    from modelatlas.atlas.update import update_in_place
    from modelatlas.ingest.batch import SourceBatch
    from modelatlas.ingest.pipeline import log_rows
    path, records, evidence = sys.argv[1:4]
    batch = SourceBatch("hub:", "hub")
    batch.records, batch.evidence = pq.read_table(records), pq.read_table(evidence)
    with writing(path):
        print("applying", flush=True)
        t = time.perf_counter()
        update_in_place(path, batch, full_crawl=False, log=log_rows([batch]))
        print(time.perf_counter() - t, flush=True)
""")


def test_a_refresh_killed_mid_way_leaves_the_atlas_as_it_was(tmp_path):
    import pyarrow.parquet as pq

    n = 2000
    base = _batch({f"o/m{i}": ([f"o/m{i // 2}"] if i else []) for i in range(n)})
    new = _batch({f"o/n{i}": [f"o/m{i}", f"o/n{i // 3}"] if i else [] for i in range(n)}, when=1)
    pq.write_table(new.records, tmp_path / "r.parquet")
    pq.write_table(new.evidence, tmp_path / "e.parquet")
    script = tmp_path / "run.py"
    script.write_text(_KILLED_RUN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def run(path: Path, kill_after: float | None):
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(tmp_path / "r.parquet"),
                                 str(tmp_path / "e.parquet")], stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout.readline().strip() == "applying"
        if kill_after is None:
            took = float(proc.stdout.readline())
            assert proc.wait(timeout=120) == 0
            return took
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        return proc.returncode

    done = tmp_path / "done" / "atlas.duckdb"
    done.parent.mkdir()
    _save(done.parent, base)
    before = Atlas.load(done)
    took = run(done, None)
    after = Atlas.load(done)
    assert after.num_nodes == before.num_nodes + n
    killed_inside = 0
    for k, share in enumerate((0.2, 0.6)):
        path = tmp_path / f"k{k}" / "atlas.duckdb"
        path.parent.mkdir()
        _save(path.parent, base)
        code = run(path, took * share)
        state = Atlas.load(path)
        if code == -signal.SIGKILL:
            killed_inside += 1
        # exactly as before, or (the commit happened before the kill) exactly as after: never between
        assert state.num_nodes in (before.num_nodes, after.num_nodes)
        _same(state, before if state.num_nodes == before.num_nodes else after)
        if k == 0:  # and the refresh can run again on it
            run(path, None)
            _same(Atlas.load(path), after)
    assert killed_inside >= 1


def test_a_log_written_before_the_refresh_columns_is_extended_in_place(tmp_path):
    from modelatlas.ingest.pipeline import INGEST_LOG, INGEST_LOG_SCHEMA, stored_log

    first = _batch({"o/a": []})
    atlas = Atlas.empty().merged_with(first.records, first.evidence)
    atlas.extras[INGEST_LOG] = log_rows([first]).drop_columns(["since", "watermark"])
    path = tmp_path / "atlas.duckdb"
    atlas.save(path)
    _apply(path, _batch({"o/b": ["o/a"]}, when=1))
    log = stored_log(Atlas.load(path))
    assert log.schema == INGEST_LOG_SCHEMA and log.num_rows == 2


def test_a_reader_waits_for_an_update_in_place(tmp_path):
    """While another process holds the file for writing, opening it waits (bounded) instead of failing."""
    path = _save(tmp_path, _batch({"o/a": []}))
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(1.5)", str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    assert Atlas.load(path).num_nodes == 1
    assert holder.wait(timeout=30) == 0 and time.monotonic() - started > 0.3
