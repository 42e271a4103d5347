"""Reader for the live Hugging Face Hub (``modelatlas ingest hub:`` / ``hub:QUERY``).

Pages through ``/api/models`` the way ``huggingface_hub.HfApi.list_models`` does (``expand=[...]``
for the full metadata and card data, the next page's URL from the ``Link: <…>; rel="next"`` header,
a cursor the server chooses). Each request goes through :class:`~modelatlas.ingest.hub_http.HubClient`
(timeouts, pacing, bounded retries, the token only for the endpoint's origin); each page is committed
to the crawl's spool and checkpoint (:class:`~modelatlas.ingest.hub_spool.CrawlFiles`), so an
interrupted crawl resumes where it stopped; a finished crawl removes both. The crawl stops with a
:class:`~modelatlas.errors.HubError` at the page budget and when a next-page link points back to a
page already fetched (a looping server), before that page's items are spooled.

``HF_ENDPOINT`` chooses the server (a local one in tests). ``QUERY`` is either free text (the
Hub's ``search``) or ``key=value`` pairs joined by ``&`` with keys ``search``, ``author``,
``filter``, ``sort``, ``limit`` and ``pipeline_tag``.

A *refresh* (``since``) asks for the listing newest-modified first (``sort=lastModified``) and stops
at the first model last modified before ``since``; a model is new or changed since then exactly when
its ``lastModified`` is at or after it (creation sets it too). The server's order is checked, not
trusted: a listing out of that order ends the crawl with an error rather than stopping early and
missing models. The server's clock at the first answer is kept (:attr:`HubCrawl.started`): it is
where the next refresh starts (docs/ingest.md, "Refreshing").
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx

from modelatlas.errors import HubError, InputError
from modelatlas.ingest.batch import SourceBatch
from modelatlas.ingest.hub_http import HubClient, HubOptions, origin, shown
from modelatlas.ingest.hub_spool import CHECKPOINT_VERSION, CrawlFiles
from modelatlas.ingest.pyvalue import BadValue, as_datetime
from modelatlas.ingest.records import records_from_wire
from modelatlas.ingest.wire import model_info_from_api, wire_table

FORMAT = "hub"
#: Properties asked of ``/api/models`` (``expand`` cannot be combined with ``full`` / ``cardData``).
EXPAND: tuple[str, ...] = ("author", "baseModels", "cardData", "config", "createdAt", "downloads",
                           "downloadsAllTime", "gated", "gguf", "lastModified", "library_name", "likes",
                           "pipeline_tag", "safetensors", "siblings", "tags", "trendingScore")
QUERY_KEYS = ("search", "author", "filter", "sort", "limit", "pipeline_tag")
PAGE_SIZE = 1000


def parse_query(query: str) -> dict[str, str]:
    """``hub:`` query text -> request parameters (see module docstring)."""
    query = query.strip()
    if not query:
        return {}
    if "=" not in query:
        return {"search": query}
    params = dict(parse_qsl(query, keep_blank_values=False))
    unknown = sorted(set(params) - set(QUERY_KEYS))
    if unknown:
        raise InputError(f"unknown hub query key(s) {', '.join(unknown)}; use {', '.join(QUERY_KEYS)}",
                         path=f"hub:{query}")
    if "limit" in params and not (params["limit"].isdigit() and int(params["limit"]) > 0):
        raise InputError(f"limit must be a positive whole number, not {params['limit']!r}", path=f"hub:{query}")
    return params


def parse_since(text: str) -> datetime | str:
    """``--since`` text -> an aware UTC time (ISO 8601 date or time; no zone means UTC) or ``"last"``."""
    if text.strip() == "last":
        return "last"
    try:
        when = as_datetime(text)
    except BadValue:
        when = None
    if when is None:
        raise InputError(f"--since takes an ISO 8601 date or time (2025-03-01, 2025-03-01T12:00:00Z) or 'last', "
                         f"not {text!r}")
    return when


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


class HubCrawl:
    """A resumable crawl of ``/api/models``.

    Parameters
    ----------
    query:
        Query text (see :func:`parse_query`).
    checkpoint_dir:
        Folder for the checkpoint and spool files (default: the current folder).
    endpoint:
        Hub URL (default: ``HF_ENDPOINT``, else huggingface_hub's default); the token goes to its origin only.
    options:
        Timeouts, pacing, retries and budgets (:class:`~modelatlas.ingest.hub_http.HubOptions`).
    report:
        ``report(kind, where, message)`` receives repairs of the crawl files and pages served from
        another origin (the reader's issues).
    since:
        Only models last modified at or after this time (a refresh; see module docstring).
    """

    def __init__(self, query: str = "", *, checkpoint_dir: str | Path | None = None, endpoint: str | None = None,
                 options: HubOptions | None = None, report=None, since: datetime | None = None):
        from huggingface_hub import constants

        self.query = query
        self.params = parse_query(query)
        if since is not None and "sort" in self.params:
            raise InputError("a refresh (--since) lists by lastModified; leave sort= out of the query",
                             path=f"hub:{query}")
        self.since = since.astimezone(timezone.utc) if since is not None else None
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
        parts = urlsplit(self.endpoint)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise InputError("the Hub endpoint must be an http(s) URL with a host name (set by HF_ENDPOINT)",
                             path=self.endpoint)
        self.options = options or HubOptions()
        self._report = report or (lambda kind, where, message: None)
        self._since_text = self.since.isoformat() if self.since else None
        crawl = f"{self.endpoint}?{query}" + (f"&since={self._since_text}" if self.since else "")
        key = hashlib.sha1(crawl.encode()).hexdigest()[:12]
        self.files = CrawlFiles(checkpoint_dir or ".", key, self._report)
        self.checkpoint, self.spool = self.files.checkpoint, self.files.spool
        self.state: dict | None = None

    def first_url(self) -> str:
        """The first page's URL: the query, every ``expand`` property, the page size."""
        limit = self.params.get("limit")
        params = [(k, v) for k, v in self.params.items() if k != "limit"]
        if self.since is not None:  # newest-modified first (direction=-1 for servers that still read it)
            params += [("sort", "lastModified"), ("direction", "-1")]
        params += [("expand", p) for p in EXPAND]
        params.append(("limit", str(min(int(limit), PAGE_SIZE)) if limit else str(PAGE_SIZE)))
        return str(httpx.URL(f"{self.endpoint}/api/models", params=params))

    def pages(self, on_page=None):
        """Fetch pages until done, committing each; yields the number of items of each new page.

        Raises
        ------
        HubError
            A page could not be had within the limits (the message says which page to resume from),
            the page budget is spent, or the server's next-page links loop.
        """
        from huggingface_hub import constants
        from huggingface_hub.utils import build_hf_headers

        from modelatlas import __version__

        if getattr(constants, "is_offline_mode", lambda: constants.HF_HUB_OFFLINE)():
            raise HubError("HF_HUB_OFFLINE is set, so the live Hub is not contacted; unset it to crawl",
                           path=self.endpoint)
        fresh = {"version": CHECKPOINT_VERSION, "endpoint": self.endpoint, "query": self.query,
                 "since": self._since_text, "next": self.first_url(), "pages": 0, "items": 0, "spool_bytes": 0,
                 "done": False, "seen": [], "started": None}
        state = self.state = self.files.load(fresh)
        limit = int(self.params["limit"]) if "limit" in self.params else None
        foreign: set[tuple] = set()
        last_time = None  # lastModified of the last model listed, for the order check of a refresh
        headers = build_hf_headers(library_name="modelatlas", library_version=__version__)
        with HubClient(self.endpoint, self.options, headers) as client:
            while not state["done"]:
                url, n = state["next"], state["pages"] + 1
                kept = (f"{state['pages']:,} pages ({state['items']:,} models) are kept in {self.checkpoint}; "
                        f"run again to resume from page {n}")
                if state["pages"] >= self.options.max_pages:
                    raise HubError(f"the page budget of {self.options.max_pages:,} pages is spent; {kept} "
                                   f"with a larger budget (--hub-max-pages)", path=shown(url))
                try:
                    page = client.get_page(url)
                except HubError as exc:
                    raise HubError(f"{exc.detail}; {kept}", path=exc.path) from None
                items = page.body
                if not isinstance(items, list):
                    raise HubError(f"page {n} is a JSON {type(items).__name__}, not a list of models; {kept}",
                                   path=shown(url))
                nxt = page.next_url
                if nxt is not None:
                    fetched = state["seen"] + [_digest(url)]
                    if _digest(nxt) in fetched:
                        raise HubError(f"the next-page link of page {n} points back to page "
                                       f"{fetched.index(_digest(nxt)) + 1} ({shown(nxt)}): the server's "
                                       f"pages loop; {kept}", path=shown(url))
                    if origin(nxt) != client.origin and origin(nxt) not in foreign:
                        foreign.add(origin(nxt))
                        self._report("hub_other_origin", shown(nxt),
                                     f"page {n + 1} and later come from {shown(nxt)}, another server than "
                                     f"{self.endpoint}; fetched without the Hub token")
                reached = False
                if self.since is not None:
                    items, reached, last_time = self._since_cut(items, last_time, url, n, kept)
                if limit is not None:
                    items = items[: max(limit - state["items"], 0)]
                if state["started"] is None:
                    state["started"] = (page.server_time or datetime.now(timezone.utc)).isoformat()
                total = state["items"] + len(items)
                state.update(next=nxt, pages=n, items=total, seen=state["seen"] + [_digest(url)],
                             done=nxt is None or reached or (limit is not None and total >= limit))
                self.files.append(items, state)
                if on_page:
                    on_page(len(items))
                yield len(items)

    def _since_cut(self, items: list, previous: datetime | None, url: str, n: int, kept: str):
        """``items`` modified at or after ``since``; whether an older one was reached; the last time seen."""
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue  # kept; read_hub reports it as malformed_record
            name = item.get("id")
            try:
                when = as_datetime(item.get("lastModified"))
            except BadValue as exc:
                raise HubError(f"page {n}, model {name!r}: lastModified unreadable ({exc}); {kept}",
                               path=shown(url)) from None
            if when is None:
                raise HubError(f"page {n}, model {name!r} has no lastModified, so a refresh cannot tell whether "
                               f"it changed; {kept}", path=shown(url))
            if previous is not None and when > previous:
                raise HubError(f"page {n}, model {name!r}: the server does not list newest-modified first "
                               f"({when.isoformat()} after {previous.isoformat()}), so a refresh cannot stop "
                               f"early without missing models; crawl without --since; {kept}", path=shown(url))
            if when < self.since:
                return items[:i], True, when
            previous = when
        return items, False, previous

    @property
    def started(self) -> datetime | None:
        """The server's clock at the crawl's first answer (the next refresh's ``since``)."""
        return datetime.fromisoformat(self.state["started"]) if self.state and self.state["started"] else None

    def items(self):
        """Every committed item, in order, as ``(line number, item)``."""
        yield from self.files.items(self.state)

    def finish(self) -> None:
        """Remove the checkpoint and spool of a finished crawl."""
        self.files.remove()


def read_hub(query: str = "", *, checkpoint_dir: str | Path | None = None, endpoint: str | None = None,
             on_progress=None, options: HubOptions | None = None, since: datetime | None = None) -> SourceBatch:
    """Crawl the Hub (resuming a checkpoint) and read the models like any other source.

    Parameters
    ----------
    query, checkpoint_dir, endpoint, options, since:
        As for :class:`HubCrawl`.
    on_progress:
        Called with the number of models of each page fetched.

    Returns
    -------
    SourceBatch
        Records, parent claims and issues (repairs of the crawl files included), source ``hub:QUERY``;
        its ``since`` and ``watermark`` (the server's time at the first answer) go to ``ingest_log``.
    """
    batch = SourceBatch(f"hub:{query}", FORMAT)
    crawl = HubCrawl(query, checkpoint_dir=checkpoint_dir, endpoint=endpoint, options=options, report=batch.issue,
                     since=since)
    for _ in crawl.pages(on_page=on_progress):
        pass
    infos, seen = [], set()
    for n, item in crawl.items():
        where = f"hub:{query} item {n}"
        if not isinstance(item, dict):
            batch.issue("malformed_record", where, f"{where}: not an object; skipped")
            continue
        info, problems = model_info_from_api(item)
        if info is None:
            batch.issue("missing_id", where, f"{where}: no model id; skipped")
            continue
        for p in problems:
            batch.issue("broken_card_data" if p.field == "card_data" else "mistyped_field", info.id,
                        f"{where}: {p.message}")
        if info.id in seen:  # pages can shift while crawling; the first copy is kept
            batch.stats["duplicates"] = batch.stats.get("duplicates", 0) + 1
            batch.issue("duplicate_record", info.id, f"{where}: {info.id} was listed twice; kept the first")
            continue
        seen.add(info.id)
        infos.append(info)
    batch.stats["lines"] = len(infos)
    batch = records_from_wire(wire_table(infos), batch)
    batch.since, batch.watermark = crawl.since, crawl.started
    crawl.finish()
    return batch


