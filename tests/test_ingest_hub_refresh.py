"""Incremental Hub refresh (``ingest hub:… --since DATE|last``), the fetching side, against the replay server.

The nine recorded models are re-paged newest-modified first (what ``sort=lastModified`` asks of the
Hub); the refresh must return exactly the models modified at or after ``since``, stop paging there,
resume after a failure, refuse a server that does not keep that order, and take ``last`` from the
atlas's ``ingest_log``.
"""

from __future__ import annotations

import email.utils
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pyarrow.compute as pc
import pytest
from hub_records import answer_pages
from hypothesis import given
from hypothesis import strategies as st
from replay_hub import FAST, PAGES, ReplayHub, opts

from modelatlas.errors import HubError, InputError
from modelatlas.ingest.hub_api import parse_since, read_hub
from modelatlas.ingest.pyvalue import as_datetime

# every recorded model with a lastModified (one hf-trees record has none; the Hub always sends it)
ITEMS = [item for page in PAGES for item in page["body"] if "lastModified" in item]
NEWEST_FIRST = sorted(ITEMS, key=lambda i: as_datetime(i["lastModified"]), reverse=True)
SORTED = answer_pages(NEWEST_FIRST, params=(("sort", "lastModified"), ("direction", "-1")))


def modified(item) -> datetime:
    return as_datetime(item["lastModified"])


@pytest.fixture(autouse=True)
def offline_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)


def test_the_recorded_times_allow_a_cut():
    """Preconditions of the tests below: distinct times around the 4th newest, recorded order not sorted."""
    times = [modified(i) for i in NEWEST_FIRST]
    assert times[3] > times[4] and len(set(times[:5])) == 5
    assert [i["id"] for i in ITEMS] != [i["id"] for i in NEWEST_FIRST]


@pytest.mark.parametrize("newer", [0, 1, 3, 4, len(NEWEST_FIRST)])
def test_since_returns_exactly_the_newer_models_and_stops_paging(tmp_path, newer):
    since = modified(NEWEST_FIRST[newer - 1]) if newer else modified(NEWEST_FIRST[0]) + timedelta(seconds=1)
    with ReplayHub(SORTED) as hub:
        batch = read_hub("", endpoint=hub.url, checkpoint_dir=tmp_path, options=FAST, since=since)
    got = batch.records["id"].to_pylist()
    assert sorted(got) == sorted(i["id"] for i in NEWEST_FIRST[:newer])  # each once, none older
    asked = parse_qs(urlsplit(hub.log[0]["path"]).query)
    assert asked["sort"] == ["lastModified"] and asked["direction"] == ["-1"]
    pages_needed = min(newer // 3 + 1, len(SORTED))  # the page holding the first older model ends it
    assert [e["page"] for e in hub.log] == list(range(pages_needed))
    assert batch.since == since and batch.watermark is not None


def test_server_that_ignores_the_order_is_an_error_not_a_silent_stop(tmp_path):
    since = modified(NEWEST_FIRST[4])
    with ReplayHub(PAGES) as hub:  # the recorded pages are not newest-modified first
        with pytest.raises(HubError, match="does not list newest-modified first"):
            read_hub("", endpoint=hub.url, checkpoint_dir=tmp_path, options=FAST, since=since)


def test_refresh_resumes_after_a_failure(tmp_path):
    since = modified(NEWEST_FIRST[4])
    with ReplayHub(SORTED) as hub:
        hub.fault = lambda n, page, handler: (503, [], b"") if page == 1 else None
        with pytest.raises(HubError, match="resume from page 2"):
            read_hub("", endpoint=hub.url, checkpoint_dir=tmp_path, options=opts(max_retries=0), since=since)
        hub.fault = lambda n, page, handler: None
        batch = read_hub("", endpoint=hub.url, checkpoint_dir=tmp_path, options=FAST, since=since)
    assert sorted(batch.records["id"].to_pylist()) == sorted(i["id"] for i in NEWEST_FIRST[:5])
    assert hub.requests_for(0) == 1


def test_a_refresh_does_not_resume_a_full_crawl(tmp_path):
    """Their checkpoints differ: a full crawl stopped half-way is not mistaken for the refresh."""
    with ReplayHub(SORTED) as hub:
        hub.fault = lambda n, page, handler: (503, [], b"") if page == 1 else None
        with pytest.raises(HubError):
            read_hub("", endpoint=hub.url, checkpoint_dir=tmp_path, options=opts(max_retries=0))
        hub.fault = lambda n, page, handler: None
        since = modified(NEWEST_FIRST[1])
        batch = read_hub("", endpoint=hub.url, checkpoint_dir=tmp_path, options=FAST, since=since)
    assert sorted(batch.records["id"].to_pylist()) == sorted(i["id"] for i in NEWEST_FIRST[:2])


def test_model_without_last_modified_stops_a_refresh(tmp_path):
    pages = json.loads(json.dumps(SORTED))
    del pages[0]["body"][1]["lastModified"]
    with ReplayHub(pages) as hub:
        with pytest.raises(HubError, match=rf"model '{pages[0]['body'][1]['id']}' has no lastModified"):
            read_hub("", endpoint=hub.url, checkpoint_dir=tmp_path, options=FAST, since=modified(NEWEST_FIRST[5]))


def test_since_and_sort_cannot_be_combined(tmp_path):
    with pytest.raises(InputError, match="leave sort= out"):
        read_hub("sort=downloads", endpoint="http://127.0.0.1:9", checkpoint_dir=tmp_path,
                 since=datetime(2025, 1, 1, tzinfo=timezone.utc))


@given(st.datetimes(min_value=datetime(1990, 1, 2), max_value=datetime(2099, 12, 30),  # ingest's time range
                    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-5)),
                                               timezone(timedelta(hours=5, minutes=30))])))
def test_parse_since_reads_iso_times(when):
    assert parse_since(when.isoformat()) == when
    assert parse_since(when.replace(tzinfo=None).isoformat()) == when.replace(tzinfo=timezone.utc)


@given(st.text(max_size=40))
def test_parse_since_refuses_junk_with_one_message(text):
    try:
        result = parse_since(text)
    except InputError as exc:
        assert "--since takes" in str(exc)
    else:
        assert result == "last" or result.tzinfo is not None


# --- --since last through the command line -----------------------------------------------------


def run_cli(args, capsys):
    from modelatlas.cli import main

    try:
        code = main(args)
    except SystemExit as exc:  # click's way of ending a command that succeeded
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_since_last_starts_at_the_previous_crawl(tmp_path, monkeypatch, capsys):
    from modelatlas.atlas.atlas import Atlas

    atlas = tmp_path / "hub.duckdb"
    # the first crawl's server clock: 10 minutes (the overlap) after the 3rd newest model's change
    first = modified(NEWEST_FIRST[2]) + timedelta(minutes=10)
    second = first + timedelta(days=1)
    with ReplayHub(SORTED) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.date = email.utils.format_datetime(first, usegmt=True)
        code, out, err = run_cli(["ingest", "hub:", "--atlas", str(atlas), "--hub-rate", "100", "--json"], capsys)
        assert code == 0, err
        assert json.loads(out)["sources"][0]["records"] == len(NEWEST_FIRST)
        full = len(hub.log)
        hub.date = email.utils.format_datetime(second, usegmt=True)
        code, out, err = run_cli(["ingest", "hub:", "--since", "last", "--atlas", str(atlas), "--hub-rate", "100",
                                  "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["sources"][0]["records"] == 3 and summary["atlas"]["models"] == len(NEWEST_FIRST)
    assert len(hub.log) - full == 2  # page 1, and page 2 where the 4th newest ends it
    log = Atlas.load(atlas).extras["ingest_log"].to_pylist()
    assert [r["watermark"] for r in log] == [first, second]
    assert [r["since"] for r in log] == [None, first - timedelta(minutes=10)]


def test_since_last_needs_a_logged_crawl(tmp_path, monkeypatch, capsys):
    with ReplayHub(SORTED) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        code, out, err = run_cli(["ingest", "hub:author=x", "--since", "last", "--atlas",
                                  str(tmp_path / "a.duckdb")], capsys)
    assert code == 2 and hub.log == []
    assert err.strip() == ("error: hub:author=x: no earlier crawl of it is logged in this atlas, so there is no "
                           "last refresh; give --since DATE or crawl it whole first")


def test_since_refuses_files(tmp_path, capsys):
    code, out, err = run_cli(["ingest", str(tmp_path / "x.csv"), "--since", "2025-01-01",
                              "--atlas", str(tmp_path / "a.duckdb")], capsys)
    assert code == 2 and "--since refreshes hub: sources only" in err


def test_a_log_written_before_the_refresh_columns_still_extends(tmp_path, monkeypatch):
    """An atlas whose ingest_log predates ``since`` / ``watermark``: read with nulls, no last refresh."""
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.ingest.batch import SourceBatch
    from modelatlas.ingest.pipeline import INGEST_LOG, INGEST_LOG_SCHEMA, ingest, last_refresh, log_rows, stored_log

    atlas = Atlas.empty()
    atlas.extras[INGEST_LOG] = log_rows([SourceBatch("hub:", "hub")]).drop_columns(["since", "watermark"])
    assert stored_log(atlas).schema == INGEST_LOG_SCHEMA and stored_log(atlas)["watermark"].null_count == 1
    with pytest.raises(InputError, match="no earlier crawl"):
        last_refresh(atlas, "hub:")
    with ReplayHub(SORTED) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        merged, _ = ingest(["hub:"], atlas, checkpoint_dir=tmp_path, hub_options=FAST)
    assert merged.extras[INGEST_LOG].num_rows == 2
    assert last_refresh(merged, "hub:") == merged.extras[INGEST_LOG]["watermark"][1].as_py() - timedelta(minutes=10)


def test_refresh_updates_the_atlas_in_place_when_a_parent_was_renamed(tmp_path, monkeypatch, capsys):
    """The Hub answers with a model whose parent was renamed (its tags and card name the new id):
    the refresh moves that edge in place and records it; a model not refreshed keeps its edge to
    the old id (no edge is guessed), and the atlas file is updated, not rewritten."""
    from modelatlas.atlas.atlas import Atlas

    old, new = "meta-llama/Llama-2-7b-chat-hf", "meta-llama/Llama-2-7b-chat-renamed"
    child, other = "abeiler/goatV9-chat-QLORA-Merged", "flumboyantApple/twittSent01"
    atlas = tmp_path / "hub.duckdb"
    newest = modified(NEWEST_FIRST[0])
    changed = json.loads(json.dumps(next(i for i in ITEMS if i["id"] == child)).replace(old, new))
    changed["lastModified"] = (newest + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    refreshed = answer_pages([changed] + [i for i in NEWEST_FIRST if i["id"] != child],
                             params=(("sort", "lastModified"), ("direction", "-1")))
    with ReplayHub(SORTED) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        code, out, err = run_cli(["ingest", "hub:", "--atlas", str(atlas), "--hub-rate", "100", "--json"], capsys)
        assert code == 0, err
    inode = atlas.stat().st_ino
    with ReplayHub(refreshed) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        code, out, err = run_cli(["ingest", "hub:", "--since", (newest + timedelta(hours=1)).isoformat(),
                                  "--atlas", str(atlas), "--hub-rate", "100", "--json"], capsys)
    assert code == 0, err
    assert atlas.stat().st_ino == inode  # updated in place, not replaced by a new file
    summary = json.loads(out)
    assert summary["sources"][0]["records"] == 1
    changes = summary["changes"]["hub:"]
    assert changes["parent_added"] == 1 and changes["parent_removed"] == 1 and changes["modified"] == 1
    loaded = Atlas.load(atlas)
    parents = {(p, c) for p, c in zip(loaded.edges["parent"].to_pylist(), loaded.edges["child"].to_pylist())}
    assert (new, child) in parents and (old, child) not in parents and (old, other) in parents
    history = {(r["change"], r["id"], r["parent"]) for r in loaded.extras["refresh_history"].to_pylist()}
    assert {("parent_removed", child, old), ("parent_added", child, new)} <= history
    assert loaded.nodes.filter(pc.equal(loaded.nodes["id"], new))["placeholder"].to_pylist() == [True]
