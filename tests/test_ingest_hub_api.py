"""The live-Hub reader against a local fake Hub serving real hf-trees records as API JSON."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from hub_records import api_json, load_records
from modelatlas.errors import InputError
from modelatlas.ingest.hub_api import HubCrawl, parse_query, read_hub
from modelatlas.ingest.hub_http import HubOptions

pytestmark = pytest.mark.shared_data
PAGE = 4
FAST = HubOptions(rate=1000, base_wait=0.01, max_wait=0.02)


class FakeHub:
    """``/api/models`` with Link-header paging; scripted failures by request number or cursor."""

    def __init__(self, items):
        self.items = items
        self.log: list[str] = []
        self.fail_once: dict[int, int] = {}  # request number -> status, answered once
        self.broken_cursor: int | None = None  # this page answers 500 until cleared
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                if url.path != "/api/models":
                    self.send_response(404)
                    self.end_headers()
                    return
                hub.log.append(self.path)
                status = hub.fail_once.pop(len(hub.log), None)
                q = parse_qs(url.query)
                cursor = int(q.get("cursor", ["0"])[0])
                if status is None and hub.broken_cursor == cursor:
                    status = 500
                if status:
                    self.send_response(status)
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    return
                assert "expand" in q and "cardData" in q["expand"]
                page = hub.items[cursor:cursor + PAGE]
                body = json.dumps(page).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if cursor + PAGE < len(hub.items):
                    port = self.server.server_address[1]
                    query = urlencode([(k, v) for k, vs in q.items() if k != "cursor" for v in vs]
                                      + [("cursor", cursor + PAGE)])  # the Hub's next link keeps the query
                    self.send_header("Link", f'<http://127.0.0.1:{port}/api/models?{query}>; rel="next"')
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def records(hf_trees_path):
    recs = load_records(hf_trees_path, limit=400)
    # a handful with tags, cards, safetensors and a typed base_model tag
    picked = [r for r in recs if r["metadata"].get("safetensors")][:5] + \
             [r for r in recs if r["metadata"].get("card_data") and not r["metadata"].get("safetensors")][:5]
    return picked


@pytest.fixture(autouse=True)
def offline_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


def test_pages_retry_and_read(records, tmp_path):
    with FakeHub([api_json(r) for r in records]) as hub:
        hub.fail_once = {1: 429, 3: 503}
        batch = read_hub("", endpoint=hub.url, checkpoint_dir=tmp_path, options=FAST)
    assert batch.records.num_rows == len(records)
    assert len(hub.log) == 3 + 2  # three pages, two retried answers
    got = {r["id"]: r for r in batch.records.to_pylist()}
    for rec in records:
        node, md = got[rec["id"]], rec["metadata"]
        assert node["downloads"] == md["downloads"]
        if md.get("safetensors"):
            assert node["params"] == md["safetensors"]["total"]
    tagged = {(p, c) for p, c in zip(batch.evidence["parent"].to_pylist(), batch.evidence["child"].to_pylist())}
    expected = {(t.split(":")[-1], r["id"]) for r in records for t in r["metadata"]["tags"]
                if t.startswith("base_model:")}
    assert expected <= tagged
    assert not list(tmp_path.glob(".modelatlas-hub-*"))  # finished crawl cleans up


def test_interrupted_crawl_resumes(records, tmp_path):
    with FakeHub([api_json(r) for r in records]) as hub:
        hub.broken_cursor = PAGE  # the second page keeps failing
        with pytest.raises(InputError, match="resume from page 2"):
            read_hub("", endpoint=hub.url, checkpoint_dir=tmp_path,
                     options=HubOptions(rate=1000, base_wait=0.01, max_wait=0.02, max_retries=1))
        assert list(tmp_path.glob(".modelatlas-hub-*.checkpoint.json"))
        first_pages = sum("cursor=" not in p for p in hub.log)
        hub.broken_cursor = None
        batch = read_hub("", endpoint=hub.url, checkpoint_dir=tmp_path, options=FAST)
        assert sum("cursor=" not in p for p in hub.log) == first_pages == 1  # page 1 was not fetched again
    assert sorted(batch.records["id"].to_pylist()) == sorted(r["id"] for r in records)


def test_query_limit_and_parsing(records, tmp_path):
    assert parse_query("llama") == {"search": "llama"}
    assert parse_query("author=meta-llama&limit=5") == {"author": "meta-llama", "limit": "5"}
    with pytest.raises(InputError, match="unknown hub query key"):
        parse_query("colour=red")
    with pytest.raises(InputError, match="limit must be a positive whole number"):
        parse_query("limit=ten")
    with FakeHub([api_json(r) for r in records]) as hub:
        batch = read_hub("limit=6", endpoint=hub.url, checkpoint_dir=tmp_path, options=FAST)
    assert batch.records.num_rows == 6
    assert HubCrawl("x", checkpoint_dir=tmp_path, endpoint="http://h").checkpoint.parent == tmp_path


def test_cli_ingest_from_the_hub(records, tmp_path, monkeypatch, capsys):
    from modelatlas.cli import main

    with FakeHub([api_json(r) for r in records]) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        atlas = tmp_path / "hub.duckdb"
        try:
            code = main(["ingest", "hub:limit=5", "--atlas", str(atlas), "--json"])
        except SystemExit as exc:
            code = exc.code
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sources"][0]["source"] == "hub:limit=5" and out["sources"][0]["records"] == 5
    assert out["atlas"]["models"] == 5
