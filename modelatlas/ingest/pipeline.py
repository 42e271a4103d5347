"""Ingest: read sources, merge them into an atlas by the provenance order, log what happened.

The merge itself is :meth:`modelatlas.atlas.atlas.Atlas.merged_with` (one edge per pair, its
strongest provenance and relation rule; records merged per id). Re-ingesting a source adds
nothing new: evidence and records are deduplicated there, reader issues here. Every run appends one
row per source to the ``ingest_log`` table (:data:`INGEST_LOG_SCHEMA`).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.atlas.atlas import Atlas
from modelatlas.atlas.schema import EVIDENCE_SCHEMA, METRIC_SCHEMA, NODE_SCHEMA
from modelatlas.errors import InputError
from modelatlas.ingest.batch import SourceBatch
from modelatlas.ingest.detect import FORMATS, HUB_PREFIX, detect_format, is_empty
from modelatlas.ingest.textfile import require_file

INGEST_LOG = "ingest_log"
INGEST_LOG_SCHEMA = pa.schema([
    ("run_at", pa.timestamp("us", tz="UTC")), ("source", pa.string()), ("format", pa.string()),
    ("records", pa.int64()), ("evidence", pa.int64()), ("metrics", pa.int64()),
    ("duplicates", pa.int64()), ("malformed_lines", pa.int64()), ("issues", pa.int64()),
    ("issues_by_kind", pa.string()),
    # Hub crawls: the refresh's lower bound, and the server's time at the first answer (next refresh's start)
    ("since", pa.timestamp("us", tz="UTC")), ("watermark", pa.timestamp("us", tz="UTC")),
])
#: A refresh from the last one starts this much earlier: models stamped by a Hub clock a little
#: behind the one that answered the first page are not missed (fetching a few twice is harmless).
REFRESH_OVERLAP = timedelta(minutes=10)


def read_source(source: str, fmt: str | None = None, *, on_progress=None, checkpoint_dir=None,
                hub_options=None, hub_since: datetime | None = None) -> SourceBatch:
    """Read one source with the reader its format names (detected when ``fmt`` is ``None``).

    ``on_progress(n)`` is told of each page a Hub crawl fetches; ``checkpoint_dir`` holds its
    checkpoint and ``hub_options`` (:class:`~modelatlas.ingest.hub_http.HubOptions`) bound it;
    ``hub_since`` makes it a refresh (see :mod:`modelatlas.ingest.hub_api`).
    """
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", path=source)
    if not source.startswith(HUB_PREFIX):
        path = require_file(source)
        if is_empty(path):
            batch = SourceBatch(path.name, fmt or "empty")
            batch.issue("empty_source", path.name, f"{path} is empty; nothing was read from it")
            return batch
    fmt = fmt or detect_format(source)
    if fmt == "hf-trees":
        from modelatlas.ingest.anatomy import read_hf_trees
        return read_hf_trees(source)
    if fmt == "hub-stats":
        from modelatlas.ingest.hubstats import read_hub_stats
        return read_hub_stats(source)
    if fmt == "card-parents":
        from modelatlas.ingest.atlas_csv import read_card_parents
        return read_card_parents(source)
    if fmt == "manual":
        from modelatlas.ingest.atlas_csv import read_manual_annotations
        return read_manual_annotations(source)
    if fmt == "leaderboard":
        from modelatlas.ingest.leaderboard import read_leaderboard_batch
        return read_leaderboard_batch(source)
    from modelatlas.ingest.hub_api import read_hub
    return read_hub(source[len(HUB_PREFIX):] if source.startswith(HUB_PREFIX) else source,
                    on_progress=on_progress, checkpoint_dir=checkpoint_dir, options=hub_options, since=hub_since)


def _reader_issues(atlas: Atlas) -> list[dict]:
    """Issues a reader reported (they carry a source); the atlas's own are recomputed on merge."""
    issues = atlas.issues.filter(pc.is_valid(atlas.issues["source"]))
    return issues.to_pylist()


def _unique(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for row in rows:
        key = (row["kind"], row["source"], row["where"], row["message"])
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def merge_batches(atlas: Atlas | None, batches: list[SourceBatch]) -> Atlas:
    """``atlas`` (or an empty one) with every batch added (see module docstring)."""
    base = atlas if atlas is not None else Atlas.empty()

    def cat(tables, schema):
        parts = [t for t in tables if t.num_rows]
        return pa.concat_tables(parts, promote_options="permissive") if parts else schema.empty_table()

    issues = _unique(_reader_issues(base) + [i for b in batches for i in b.issues])
    merged = base.merged_with(cat([b.records for b in batches], NODE_SCHEMA),
                              cat([b.evidence for b in batches], EVIDENCE_SCHEMA),
                              metrics=cat([b.metrics for b in batches], METRIC_SCHEMA),
                              issues=issues)
    for b in batches:
        for name, table in b.extras.items():
            old = merged.extras.get(name)
            both = pa.concat_tables([old.cast(table.schema), table]) if old is not None else table
            merged.extras[name] = both.group_by(both.column_names, use_threads=False).aggregate([]) \
                .sort_by([(c, "ascending") for c in both.column_names])
    return merged


def log_rows(batches: list[SourceBatch], run_at: datetime | None = None) -> pa.Table:
    """The ``ingest_log`` rows of one run."""
    run_at = run_at or datetime.now(timezone.utc)
    rows = []
    for b in batches:
        kinds = Counter(i["kind"] for i in b.issues)
        rows.append({"run_at": run_at, "source": b.source, "format": b.format, "records": b.records.num_rows,
                     "evidence": b.evidence.num_rows, "metrics": b.metrics.num_rows,
                     "duplicates": b.stats.get("duplicates", 0), "malformed_lines": b.stats.get("malformed_lines", 0),
                     "issues": len(b.issues), "issues_by_kind": json.dumps(dict(sorted(kinds.items()))),
                     "since": b.since, "watermark": b.watermark})
    return pa.Table.from_pylist(rows, schema=INGEST_LOG_SCHEMA)


def stored_log(atlas: Atlas | pa.Table | None) -> pa.Table:
    """The atlas's ``ingest_log`` (or that table itself) in :data:`INGEST_LOG_SCHEMA` (columns added
    since it was written are null)."""
    old = atlas.extras.get(INGEST_LOG) if isinstance(atlas, Atlas) else atlas
    if old is None:
        return INGEST_LOG_SCHEMA.empty_table()
    for f in INGEST_LOG_SCHEMA:
        if f.name not in old.column_names:
            old = old.append_column(f.name, pa.nulls(old.num_rows, f.type))
    # a stored log comes back with DuckDB's spelling of the time zone; cast it to ours
    return old.select(INGEST_LOG_SCHEMA.names).cast(INGEST_LOG_SCHEMA)


def last_refresh(atlas: Atlas | pa.Table | None, source: str) -> datetime:
    """Where ``--since last`` starts for ``source`` (``hub:QUERY``): its newest logged watermark,
    less :data:`REFRESH_OVERLAP`.

    Raises
    ------
    InputError
        No crawl of ``source`` is logged in the atlas.
    """
    log = stored_log(atlas)
    marks = log.filter(pc.and_(pc.equal(log["source"], source), pc.is_valid(log["watermark"])))["watermark"]
    if not len(marks):
        raise InputError("no earlier crawl of it is logged in this atlas, so there is no last refresh; "
                         "give --since DATE or crawl it whole first", path=source)
    return pc.max(marks).as_py() - REFRESH_OVERLAP


def ingest(sources: list[str], atlas: Atlas | None = None, *, fmt: str | None = None,
           on_source=None, on_progress=None, checkpoint_dir=None,
           hub_options=None, hub_since: datetime | str | None = None) -> tuple[Atlas, list[SourceBatch]]:
    """Read ``sources`` and merge them into ``atlas`` (a new one when ``None``).

    Parameters
    ----------
    sources:
        File paths, or ``hub:`` / ``hub:QUERY`` for the live Hub.
    fmt:
        Reader for every source (default: detected per source).
    on_source:
        Called with each source name before it is read (progress display).
    on_progress, checkpoint_dir, hub_options:
        Passed to the Hub reader (pages fetched; where its checkpoint lives; its limits).
    hub_since:
        Refresh the ``hub:`` sources: only models modified at or after this time, or ``"last"``
        for each source's last logged crawl (:func:`last_refresh`). Files are refused with it.

    Returns
    -------
    atlas, batches:
        The merged atlas (its ``ingest_log`` extra table extended) and one batch per source.
    """
    _check_since(sources, hub_since)
    batches = []
    for source in sources:
        since = last_refresh(atlas, source) if hub_since == "last" else hub_since
        if on_source:
            on_source(source)
        batches.append(read_source(source, fmt, on_progress=on_progress, checkpoint_dir=checkpoint_dir,
                                   hub_options=hub_options, hub_since=since))
    merged = merge_batches(atlas, batches)
    merged.extras[INGEST_LOG] = pa.concat_tables([stored_log(merged), log_rows(batches)])
    return merged, batches


def _check_since(sources: list[str], hub_since) -> None:
    if hub_since is not None:
        files = [s for s in sources if not s.startswith(HUB_PREFIX)]
        if files:
            raise InputError("--since refreshes hub: sources only; ingest files in another run", path=files[0])
        if isinstance(hub_since, str) and hub_since != "last":
            raise InputError(f"--since takes a date or 'last', not {hub_since!r}")


def refresh_in_place(sources: list[str], path, *, on_source=None, on_progress=None, checkpoint_dir=None,
                     hub_options=None, hub_since: datetime | str | None = None) -> tuple[list[SourceBatch], dict]:
    """Crawl ``hub:`` ``sources`` and apply each crawl to the existing atlas file ``path`` in place
    (:func:`modelatlas.atlas.update.update_in_place`: changed rows and edges only, one transaction
    per source, a history of changes; a full crawl turns models it no longer lists into placeholders).

    Parameters are those of :func:`ingest`; the caller holds the atlas's writer lock
    (:func:`modelatlas.atlas.store.writing`).

    Returns
    -------
    batches, changes:
        One batch per source; the changes by kind, per source.
    """
    from modelatlas.atlas.store import read_table
    from modelatlas.atlas.update import update_in_place

    files = [s for s in sources if not s.startswith(HUB_PREFIX)]
    if files:
        raise InputError("an update in place takes hub: sources only", path=files[0])
    _check_since(sources, hub_since)
    batches, changes = [], {}
    for source in sources:
        since = last_refresh(read_table(path, INGEST_LOG), source) if hub_since == "last" else hub_since
        if on_source:
            on_source(source)
        batch = read_source(source, "hub", on_progress=on_progress, checkpoint_dir=checkpoint_dir,
                            hub_options=hub_options, hub_since=since)
        changes[source] = update_in_place(path, batch, full_crawl=since is None, log=log_rows([batch]))
        batches.append(batch)
    return batches, changes


#: Node columns :func:`ingest_summary` reads (an atlas updated in place is loaded with these only).
SUMMARY_NODE_COLUMNS = ("id", "placeholder", "created_at_backfilled")


def ingest_summary(atlas: Atlas, batches: list[SourceBatch]) -> dict:
    """The ingest report: per-source counts and the atlas's issue counts by kind."""
    from modelatlas.atlas.summary import summarize

    summary = summarize(atlas)
    return {"sources": [b.summary() for b in batches], "atlas": summary}
