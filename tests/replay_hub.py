"""A local stand-in for the Hub: recorded ``/api/models`` answers served on 127.0.0.1, faults scripted.

Used by tests/test_ingest_hub_faults.py and tests/test_ingest_hub_refresh.py. The recorded answers
are tests/data/hub_api_pages.json (built by tests/hub_records.py from hf-trees records).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from modelatlas.ingest.hub_api import EXPAND
from modelatlas.ingest.hub_http import HubOptions

FIXTURE = Path(__file__).parent / "data" / "hub_api_pages.json"
PAGES = json.loads(FIXTURE.read_text())["pages"]
IDS = [item["id"] for page in PAGES for item in page["body"]]
#: Fast limits for tests: no pacing to speak of, short waits, few retries.
FAST = HubOptions(rate=1000, connect_timeout=1, read_timeout=1, base_wait=0.01, max_wait=1, max_retries=2)
SERVER_LIFETIME = 30.0  # a replay server stops by itself after this many seconds


def opts(**changes) -> HubOptions:
    return HubOptions(**{**FAST.__dict__, **changes})


class ReplayHub:
    """``/api/models`` answers from the fixture on 127.0.0.1, with a scripted fault per request.

    ``fault(n, page_index, handler)`` is called for request ``n`` (1-based) asking for page
    ``page_index``; it returns ``None`` (answer as recorded) or ``(status, headers, body)``, or it
    writes the answer itself through ``handler`` and returns ``"done"``. ``link`` rewrites a page's
    ``Link`` header: ``link(page_index, recorded_link) -> header or None``.
    """

    def __init__(self, pages=PAGES):
        self.pages = pages
        self.cursors = {p["cursor"]: i for i, p in enumerate(pages)}
        self.log: list[dict] = []  # one entry per request: time, page, headers
        self.fault = lambda n, page, handler: None
        self.link = lambda page, recorded: recorded
        self.date: str | None = None  # the Date header of every answer (default: the real time)
        self.stop = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def date_time_string(self, timestamp=None):  # the server's clock, settable by a test
                return hub.date or super().date_time_string(timestamp)

            def do_GET(self):
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                page = hub.cursors.get(query.get("cursor", [None])[0]) if url.path == "/api/models" else None
                hub.log.append({"t": time.monotonic(), "page": page, "path": self.path,
                                "headers": {k.lower(): v for k, v in self.headers.items()}})
                answer = hub.fault(len(hub.log), page, self)
                if answer == "done":
                    return
                if answer is None and page is None:
                    answer = (404, [], b'{"error":"Not Found"}')
                if answer is None:
                    assert query.get("expand") == list(EXPAND)  # the reader asks for every property
                    recorded = hub.pages[page]
                    headers = [(k, v.replace("{endpoint}", hub.url)) for k, v in recorded["headers"]]
                    headers = [(k, hub.link(page, v)) if k == "link" else (k, v) for k, v in headers]
                    answer = (recorded["status"], [(k, v) for k, v in headers if v is not None],
                              json.dumps(recorded["body"]).encode())
                status, headers, body = answer
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.timeout = 0.05
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        deadline = time.monotonic() + SERVER_LIFETIME
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.server.handle_request()

    def requests_for(self, page: int) -> int:
        return sum(entry["page"] == page for entry in self.log)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        self.server.server_close()
