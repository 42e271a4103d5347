"""The live-Hub reader against a local server replaying recorded ``/api/models`` answers, with faults.

``tests/data/hub_api_pages.json`` holds three answers of ``GET /api/models?expand=…`` (nine real
hf-trees records in the API's spelling, ``Link: <…>; rel="next"`` cursors). ``ReplayHub``
(tests/replay_hub.py) serves them on 127.0.0.1 and lets each test script a fault per request: a
stall, a body that drips, ``Retry-After`` waits, 429s and 500s, self and cross-origin links, redirects. Every test asserts the
outcome *and* that each of the nine records arrives exactly once after the fault is gone (nothing
lost, nothing doubled). docs/reliability.md ("The live Hub reader") maps each promise to its test.
"""

from __future__ import annotations

import email.utils
import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_hub import FAST, IDS, PAGES, ReplayHub, opts

from modelatlas.errors import HubError, InputError, ModelAtlasError
from modelatlas.ingest.hub_api import HubCrawl, read_hub
from modelatlas.ingest.hub_http import HubClient, HubOptions, retry_after

@pytest.fixture(autouse=True)
def offline_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)


def crawl_files(tmp_path) -> list[Path]:
    return sorted(tmp_path.glob(".modelatlas-hub-*"))


def read(hub, tmp_path, options=FAST, query=""):
    return read_hub(query, endpoint=hub.url, checkpoint_dir=tmp_path, options=options)


def assert_every_record_once(batch):
    """Nothing lost, nothing doubled: the nine fixture ids, each once, no duplicate reported."""
    got = batch.records["id"].to_pylist()
    assert sorted(got) == sorted(IDS)
    assert batch.stats.get("duplicates", 0) == 0
    assert not [i for i in batch.issues if i["kind"] == "duplicate_record"]


def issues(batch, kind):
    return [i for i in batch.issues if i["kind"] == kind]


# --- the recorded answers, replayed ------------------------------------------------------------


def test_replay_reads_every_record_with_its_fields(tmp_path):
    with ReplayHub() as hub:
        batch = read(hub, tmp_path)
    assert_every_record_once(batch)
    assert [e["page"] for e in hub.log] == [0, 1, 2]
    reader_issues = {i["kind"] for i in batch.issues if not i["kind"].startswith("relation_contradicted:")}
    assert reader_issues <= {"mistyped_field", "broken_card_data"}  # (the relation audit's flags are not faults)
    items = {item["id"]: item for page in PAGES for item in page["body"]}
    for row in batch.records.to_pylist():
        item = items[row["id"]]
        assert row["downloads"] == item["downloads"]
        if "safetensors" in item:
            assert row["params"] == item["safetensors"]["total"]
    claims = set(zip(batch.evidence["parent"].to_pylist(), batch.evidence["child"].to_pylist()))
    tagged = {(t.split(":")[-1], i["id"]) for i in items.values() for t in i["tags"] if t.startswith("base_model:")}
    assert tagged and tagged <= claims
    assert crawl_files(tmp_path) == []  # a finished crawl removes its files


def test_fixture_is_built_from_the_shared_records(hf_trees_path):
    """The committed answers are what tests/hub_records.py builds from the shared hf-trees records."""
    from hub_records import hub_api_pages, load_records

    assert hub_api_pages(load_records(hf_trees_path))["pages"] == PAGES


# --- hangs ---------------------------------------------------------------------------------------


def test_server_that_never_answers_times_out(tmp_path):
    """A socket that accepts connections (kernel backlog) and never answers: read timeout, bounded retries."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    started = time.monotonic()
    try:
        with pytest.raises(HubError, match=r"no answer within the read timeout of 0.3 s; gave up after 2 attempts") \
                as err:
            read_hub("", endpoint=url, checkpoint_dir=tmp_path, options=opts(read_timeout=0.3, max_retries=1))
    finally:
        silent.close()
    assert time.monotonic() - started < 5
    assert url in str(err.value) and "\n" not in str(err.value)


def test_server_that_takes_no_connection_hits_the_connect_timeout(tmp_path):
    """A listening socket whose backlog is full: the kernel drops further SYNs, so connecting hangs."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    address = full.getsockname()
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            fillers.append(filler)
        time.sleep(0.1)
        try:
            socket.create_connection(address, timeout=0.3).close()
            pytest.skip("this kernel completes connections past a full backlog; no way to stall a connect here")
        except OSError:
            pass
        started = time.monotonic()
        with pytest.raises(HubError, match=r"no answer within the connect timeout of 0.3 s; gave up after 2 attempts"):
            read_hub("", endpoint=f"http://{address[0]}:{address[1]}", checkpoint_dir=tmp_path,
                     options=opts(connect_timeout=0.3, max_retries=1))
        assert time.monotonic() - started < 5
    finally:
        for sock in (*fillers, full):
            sock.close()


def test_stalled_page_times_out_and_the_crawl_resumes(tmp_path):
    with ReplayHub() as hub:
        hub.fault = lambda n, page, handler: (hub.stop.wait(3), "done")[1] if page == 1 else None
        with pytest.raises(HubError, match="resume from page 2"):
            read(hub, tmp_path, opts(read_timeout=0.3, max_retries=0))
        hub.fault = lambda n, page, handler: None
        batch = read(hub, tmp_path)
    assert_every_record_once(batch)
    assert hub.requests_for(0) == 1  # page 1 was not fetched again


def test_dripping_body_hits_the_page_deadline(tmp_path):
    """Headers, then one byte every 50 ms: each read is in time, the whole answer is not."""
    def drip(n, page, handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        for _ in range(200):  # bounded: 10 s at most
            if hub.stop.is_set():
                break
            try:
                handler.wfile.write(b" ")
                handler.wfile.flush()
            except OSError:
                break
            time.sleep(0.05)
        return "done"

    with ReplayHub() as hub:
        hub.fault = drip
        started = time.monotonic()
        with pytest.raises(HubError, match="longer than the page deadline of 0.5 s"):
            read(hub, tmp_path, opts(page_deadline=0.5, max_retries=0))
        assert time.monotonic() - started < 3
        hub.fault = lambda n, page, handler: None
        assert_every_record_once(read(hub, tmp_path))


def test_oversized_answer_is_refused(tmp_path):
    with ReplayHub() as hub:
        with pytest.raises(HubError, match="larger than 1,000 bytes"):
            read(hub, tmp_path, opts(max_page_bytes=1000))
        assert len(hub.log) == 1  # not retried: the same page would be as large again


# --- waits the server asks for -------------------------------------------------------------------


def test_huge_retry_after_ends_the_crawl_at_once(tmp_path):
    """``Retry-After: 100000`` slept 27.8 h before; now it is one line saying how long, no second request."""
    with ReplayHub() as hub:
        hub.fault = lambda n, page, handler: (429, [("Retry-After", "100000")], b"{}") if page == 1 else None
        started = time.monotonic()
        with pytest.raises(HubError, match=r"asks to wait 27 h 46 min .*Retry-After '100000'.*resume from page 2"):
            read(hub, tmp_path, opts(max_wait=60))
        assert time.monotonic() - started < 2
        assert hub.requests_for(1) == 1
        hub.fault = lambda n, page, handler: None
        assert_every_record_once(read(hub, tmp_path))


def test_retry_after_as_an_http_date_is_waited(tmp_path):
    """``Retry-After`` as an HTTP date one second after the answer's ``Date``: waited, then the page."""
    def once(n, page, handler):
        if page == 1 and hub.requests_for(1) == 1:
            now = time.time()
            return (503, [("Date", email.utils.formatdate(now, usegmt=True)),
                          ("Retry-After", email.utils.formatdate(now + 1, usegmt=True))], b"")
        return None

    with ReplayHub() as hub:
        hub.fault = once
        batch = read(hub, tmp_path, opts(max_wait=5))
    assert_every_record_once(batch)
    asked = [e["t"] for e in hub.log if e["page"] == 1]
    assert len(asked) == 2 and asked[1] - asked[0] >= 0.9


def test_ratelimit_header_reset_is_capped(tmp_path):
    """The Hub's ``RateLimit: "api";r=0;t=…`` on a 429 counts like ``Retry-After``."""
    with ReplayHub() as hub:
        hub.fault = lambda n, page, handler: (429, [("RateLimit", '"api";r=0;t=3600')], b"{}") if page == 0 else None
        with pytest.raises(HubError, match="asks to wait 1 h 0 min"):
            read(hub, tmp_path, opts(max_wait=60))
        assert len(hub.log) == 1


@settings(max_examples=200, deadline=None)
@given(delay=st.integers(0, 10**7), base=st.integers(0, 2**31))
def test_retry_after_reads_seconds_and_dates(delay, base):
    assert retry_after(httpx.Headers({"Retry-After": str(delay)})) == delay
    date = httpx.Headers({"Retry-After": email.utils.formatdate(base + delay, usegmt=True),
                          "Date": email.utils.formatdate(base, usegmt=True)})
    assert retry_after(date) == delay
    past = httpx.Headers({"Retry-After": email.utils.formatdate(base, usegmt=True),
                          "Date": email.utils.formatdate(base + delay, usegmt=True)})
    assert retry_after(past) == 0


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_retry_after_never_raises_on_junk(text):
    try:
        headers = httpx.Headers({"Retry-After": text, "RateLimit": text})
    except (UnicodeEncodeError, ValueError):  # not a header value at all
        return
    wait = retry_after(headers)
    assert wait is None or wait >= 0


# --- retries -------------------------------------------------------------------------------------


def test_429_then_200(tmp_path):
    with ReplayHub() as hub:
        hub.fault = lambda n, page, handler: (429, [("Retry-After", "0")], b"{}") if n in (1, 3) else None
        batch = read(hub, tmp_path)
    assert_every_record_once(batch)
    assert [e["page"] for e in hub.log] == [0, 0, 1, 1, 2]


def test_500s_are_retried_a_bounded_number_of_times_with_growing_waits(tmp_path):
    with ReplayHub() as hub:
        hub.fault = lambda n, page, handler: (500, [], b'{"error":"Internal Error"}') if page == 1 else None
        with pytest.raises(HubError, match=r"HTTP 500; gave up after 4 attempts; 1 pages \(3 models\)"):
            read(hub, tmp_path, opts(max_retries=3, base_wait=0.1, max_wait=1))
        asked = [e["t"] for e in hub.log if e["page"] == 1]
        assert len(asked) == 4
        gaps = [b - a for a, b in zip(asked, asked[1:])]
        assert gaps[0] >= 0.07 and gaps[1] >= 0.16 and gaps[2] >= 0.33  # 0.1, 0.2, 0.4 s, give or take scheduling
        hub.fault = lambda n, page, handler: None
        batch = read(hub, tmp_path)
    assert_every_record_once(batch)
    assert hub.requests_for(0) == 1


def test_client_error_is_not_retried_and_names_the_url(tmp_path):
    with ReplayHub() as hub:
        hub.fault = lambda n, page, handler: (401, [], b'{"error":"Invalid credentials in Authorization header"}')
        with pytest.raises(HubError) as err:
            read(hub, tmp_path)
    assert len(hub.log) == 1
    message = str(err.value)
    assert message.startswith(f"{hub.url}/api/models?limit=1000 (expand=…): HTTP 401 (is HF_TOKEN valid?): "
                              f"Invalid credentials in Authorization header")


def test_answer_that_is_not_a_model_list(tmp_path):
    with ReplayHub() as hub:
        hub.fault = lambda n, page, handler: (200, [], b"<html>maintenance</html>") if page == 1 else None
        with pytest.raises(HubError, match=r"not JSON .*b'<html>maintenance</html>'"):
            read(hub, tmp_path)
        hub.fault = lambda n, page, handler: (200, [], b'{"error": "busy"}') if page == 1 else None
        with pytest.raises(HubError, match="page 2 is a JSON dict, not a list of models"):
            read(hub, tmp_path)
        hub.fault = lambda n, page, handler: None
        assert_every_record_once(read(hub, tmp_path))


def test_broken_compression_is_retried_then_one_line(tmp_path):
    with ReplayHub() as hub:
        hub.fault = lambda n, page, handler: (200, [("Content-Encoding", "gzip")], b"not gzip at all") \
            if page == 1 else None
        with pytest.raises(HubError, match=r"compression is broken \(DecodingError.*gave up after 2 attempts"):
            read(hub, tmp_path, opts(max_retries=1))
        assert hub.requests_for(1) == 2
        hub.fault = lambda n, page, handler: None
        assert_every_record_once(read(hub, tmp_path))


def test_next_link_that_is_not_a_url_is_refused(tmp_path):
    with ReplayHub() as hub:
        hub.link = lambda page, recorded: '<http://[::1>; rel="next"' if page == 0 else recorded
        with pytest.raises(HubError, match=r"next-page link 'http://\[::1' is not a usable http\(s\) URL"):
            read(hub, tmp_path)
        assert len(hub.log) == 1


def test_dns_failure_fails_at_once(tmp_path, monkeypatch):
    calls = []

    def no_such_host(host, *args, **kwargs):
        calls.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    started = time.monotonic()
    with pytest.raises(HubError, match=r"cannot resolve host 'hub\.invalid' \(Name or service not known\)"):
        read_hub("", endpoint="https://hub.invalid", checkpoint_dir=tmp_path, options=opts(max_retries=5, base_wait=1))
    assert calls == ["hub.invalid"] and time.monotonic() - started < 1


def test_temporary_dns_failure_is_retried(tmp_path, monkeypatch):
    calls = []

    def resolver_down(host, *args, **kwargs):
        calls.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", resolver_down)
    with pytest.raises(HubError, match="gave up after 3 attempts"):
        read_hub("", endpoint="https://hub.invalid", checkpoint_dir=tmp_path, options=opts(max_retries=2))
    assert len(calls) == 3


# --- loops and budgets ---------------------------------------------------------------------------


@pytest.mark.parametrize("back_to", [1, 0], ids=["self-link", "link-to-page-1"])
def test_looping_links_stop_before_any_record_is_doubled(tmp_path, back_to):
    """Page 2's next link points at itself (or at page 1): stop with the pages so far kept."""
    with ReplayHub() as hub:
        loop_to = PAGES[back_to]["cursor"]
        first_link = PAGES[0]["headers"][1][1]

        def link(page, recorded):
            if page != 1:
                return recorded
            if loop_to is None:  # page 1 is asked for without a cursor: the reader's own first URL
                return f"<{hub.url}/api/models?" + hub.log[0]["path"].split("?", 1)[1] + '>; rel="next"'
            return first_link.replace("{endpoint}", hub.url)

        hub.link = link
        with pytest.raises(HubError, match=rf"next-page link of page 2 points back to page {back_to + 1} .*loop; "
                                           r"1 pages \(3 models\) are kept"):
            read(hub, tmp_path)
        assert len(hub.log) == 2  # 7,336 pages in 40 s before
        hub.link = lambda page, recorded: recorded
        batch = read(hub, tmp_path)
    assert_every_record_once(batch)


def test_page_budget_stops_and_a_larger_one_resumes(tmp_path):
    with ReplayHub() as hub:
        with pytest.raises(HubError, match=r"page budget of 2 pages is spent; 2 pages \(6 models\) are kept"):
            read(hub, tmp_path, opts(max_pages=2))
        batch = read(hub, tmp_path, opts(max_pages=3))
    assert_every_record_once(batch)
    assert [e["page"] for e in hub.log] == [0, 1, 2]


def test_pacing_spaces_requests(tmp_path):
    with ReplayHub() as hub:
        hub.fault = lambda n, page, handler: (503, [("Retry-After", "0")], b"") if n == 2 else None
        batch = read(hub, tmp_path, opts(rate=5))
    assert_every_record_once(batch)
    times = [e["t"] for e in hub.log]
    assert len(times) == 4  # a retry is paced like any request
    # arrival times: the 0.2 s spacing of the sends, give or take the scheduling of two threads
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.15
    assert times[-1] - times[0] >= 3 * 0.2 - 0.03


# --- the token stays with the endpoint -----------------------------------------------------------


def test_token_is_never_sent_to_another_origin(tmp_path, monkeypatch):
    """Page 2 lives on another port (another origin): it is fetched without the token, and reported."""
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_for_tests")
    with ReplayHub() as hub, ReplayHub() as other:
        hub.link = lambda page, recorded: recorded.replace(hub.url, other.url) if page == 0 else recorded
        other.link = lambda page, recorded: recorded.replace(other.url, hub.url)
        batch = read(hub, tmp_path)
    assert_every_record_once(batch)
    assert [e["page"] for e in hub.log] == [0, 2] and [e["page"] for e in other.log] == [1]
    assert all(e["headers"].get("authorization") == "Bearer hf_secret_token_for_tests" for e in hub.log)
    assert all("authorization" not in e["headers"] for e in other.log)
    reported = issues(batch, "hub_other_origin")
    assert len(reported) == 1 and other.url in reported[0]["message"]


def test_token_is_not_sent_along_a_redirect_to_another_origin(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_for_tests")
    with ReplayHub() as hub, ReplayHub() as other:
        hub.fault = lambda n, page, handler: (
            (302, [("Location", other.url + handler.path)], b"") if page == 1 else None)
        other.link = lambda page, recorded: recorded.replace(other.url, hub.url)
        batch = read(hub, tmp_path)
    assert_every_record_once(batch)
    assert [e["page"] for e in other.log] == [1]
    assert "authorization" not in other.log[0]["headers"]


@pytest.mark.parametrize("url, sent", [
    ("https://huggingface.co/api/models?cursor=x", True),
    ("https://HuggingFace.co:443/api/models", True),
    ("http://huggingface.co/api/models", False),  # another scheme
    ("https://huggingface.co:8443/api/models", False),  # another port
    ("https://huggingface.co.evil.example/api/models", False),
    ("https://huggingface.co@evil.example/api/models", False),  # user-info trick: the host is evil.example
    ("https://evil.example/https://huggingface.co/api/models", False),
])
def test_token_goes_to_the_endpoint_origin_only(url, sent):
    client = HubClient("https://huggingface.co", FAST, {"user-agent": "t", "authorization": "Bearer hf_x"})
    with client:
        headers = client.headers_for(url)
    assert ("authorization" in headers) == sent and headers["user-agent"] == "t"


# --- the crawl's files ---------------------------------------------------------------------------


def stop_after_two_pages(hub, tmp_path):
    """Crawl until page 3 fails: pages 1-2 committed. Returns the crawl (for its file names)."""
    hub.fault = lambda n, page, handler: (500, [], b"") if page == 2 else None
    with pytest.raises(HubError, match="resume from page 3"):
        read(hub, tmp_path, opts(max_retries=0))
    hub.fault = lambda n, page, handler: None
    return HubCrawl("", endpoint=hub.url, checkpoint_dir=tmp_path)


@pytest.mark.parametrize("tail", ["cut line", "whole page"])
def test_spool_cut_by_a_kill_is_repaired(tmp_path, tail):
    """A kill mid-append leaves half a line (or the whole page before the checkpoint moved): dropped, refetched."""
    with ReplayHub() as hub:
        crawl = stop_after_two_pages(hub, tmp_path)
        lines = b"".join(json.dumps(item).encode() + b"\n" for item in PAGES[2]["body"])
        with open(crawl.spool, "ab") as fh:
            fh.write(lines[: len(lines) // 2] if tail == "cut line" else lines)
        batch = read(hub, tmp_path)
    assert_every_record_once(batch)
    repaired = issues(batch, "hub_spool_repaired")
    assert len(repaired) == 1 and str(crawl.spool) in repaired[0]["message"]
    assert ("cut line" in repaired[0]["message"]) == (tail == "cut line")
    assert hub.requests_for(0) == hub.requests_for(1) == 1


@pytest.mark.parametrize("checkpoint", [
    b'{"pages": 1}', b"{\"version\": 2, \"pag", b"\xff\xfe not text", b"[1, 2]", b"null",
    "other query", "items wrong", "spool lost", "spool line broken",
])
def test_bad_checkpoint_is_discarded_with_the_file_named(tmp_path, checkpoint):
    with ReplayHub() as hub:
        crawl = stop_after_two_pages(hub, tmp_path)
        state = json.loads(crawl.checkpoint.read_text())
        if checkpoint == "other query":
            crawl.checkpoint.write_text(json.dumps({**state, "query": "author=someone"}))
        elif checkpoint == "items wrong":
            crawl.checkpoint.write_text(json.dumps({**state, "items": True}))
        elif checkpoint == "spool lost":
            crawl.spool.write_bytes(crawl.spool.read_bytes()[:100])
        elif checkpoint == "spool line broken":
            data = crawl.spool.read_bytes()
            crawl.spool.write_bytes(data[:10] + b"\x00" + data[11:])
        else:
            crawl.checkpoint.write_bytes(checkpoint)
        batch = read(hub, tmp_path)
    assert_every_record_once(batch)
    discarded = issues(batch, "hub_checkpoint_discarded")
    assert len(discarded) == 1 and str(crawl.checkpoint) in discarded[0]["message"]
    assert crawl.spool.name in discarded[0]["message"]
    assert hub.requests_for(0) == 2  # crawled again from the first page
    assert crawl_files(tmp_path) == []


def test_orphan_spool_is_discarded(tmp_path):
    with ReplayHub() as hub:
        crawl = HubCrawl("", endpoint=hub.url, checkpoint_dir=tmp_path)
        crawl.spool.write_text(json.dumps(PAGES[0]["body"][0]) + "\n")
        batch = read(hub, tmp_path)
    assert_every_record_once(batch)
    assert str(crawl.spool) in issues(batch, "hub_spool_discarded")[0]["message"]


# --- options and the command line ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [{"rate": 0}, {"read_timeout": -1}, {"max_pages": 2.5}, {"rate": float("nan")},
                                 {"max_retries": -1}, {"connect_timeout": float("inf")}, {"max_pages": True}])
def test_options_are_checked(bad):
    with pytest.raises(InputError, match=f"{next(iter(bad))} must be"):
        HubOptions(**bad)


def test_cli_failure_is_one_line_naming_the_url(tmp_path, monkeypatch, capsys):
    from modelatlas.cli import main

    with ReplayHub() as hub:
        hub.fault = lambda n, page, handler: (429, [("Retry-After", "86400")], b"{}")
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        code = main(["ingest", "hub:", "--atlas", str(tmp_path / "a.duckdb"), "--hub-rate", "50", "--json"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith(f"error: {hub.url}/api/models?limit=1000 (expand=…): the server asks to wait 24 h 0 min")
    assert not (tmp_path / "a.duckdb").exists()


def test_every_failure_is_a_modelatlas_error():
    assert issubclass(HubError, ModelAtlasError) and issubclass(HubError, InputError)


def test_offline_mode_contacts_nobody(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with ReplayHub() as hub:
        with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
            read(hub, tmp_path)
    assert hub.log == []


def test_next_link_that_is_not_http_is_refused_before_the_page_is_kept(tmp_path):
    with ReplayHub() as hub:
        hub.link = lambda page, recorded: '<file:///etc/passwd>; rel="next"' if page == 0 else recorded
        with pytest.raises(HubError, match=r"next-page link 'file:///etc/passwd' is not a usable http\(s\) URL"):
            read(hub, tmp_path)
        hub.link = lambda page, recorded: recorded
        assert_every_record_once(read(hub, tmp_path))
    assert hub.requests_for(0) == 2


def test_user_agent_names_the_reader(tmp_path):
    with ReplayHub() as hub:
        read(hub, tmp_path)
    assert all("modelatlas/" in e["headers"]["user-agent"] for e in hub.log)
