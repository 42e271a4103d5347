"""Reader for the live Hugging Face Hub (``modelatlas ingest hub:`` / ``hub:QUERY``).

Pages through ``/api/models`` the way ``huggingface_hub.HfApi.list_models`` does (``expand=[...]``
for the full metadata and card data, next page from the ``Link`` header), with
``huggingface_hub.utils.http_backoff`` retrying HTTP 429 and 5xx with exponential back-off. After
every page the items are appended to a spool file and a checkpoint records the next page's URL,
so an interrupted crawl resumes where it stopped; a finished crawl removes both.

``HF_ENDPOINT`` chooses the server (a local one in tests). ``QUERY`` is either free text (the
Hub's ``search``) or ``key=value`` pairs joined by ``&`` with keys ``search``, ``author``,
``filter``, ``sort``, ``limit`` and ``pipeline_tag``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import parse_qsl

from modelatlas.errors import InputError
from modelatlas.ingest.batch import SourceBatch
from modelatlas.ingest.records import records_from_wire
from modelatlas.ingest.wire import model_info_from_api, wire_table

FORMAT = "hub"
#: Properties asked of ``/api/models`` (``expand`` cannot be combined with ``full`` / ``cardData``).
EXPAND: tuple[str, ...] = ("author", "baseModels", "cardData", "config", "createdAt", "downloads",
                           "downloadsAllTime", "gated", "gguf", "lastModified", "library_name", "likes",
                           "pipeline_tag", "safetensors", "siblings", "tags", "trendingScore")
QUERY_KEYS = ("search", "author", "filter", "sort", "limit", "pipeline_tag")
RETRY_STATUS = (429, 500, 502, 503, 504)
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


class HubCrawl:
    """A resumable crawl of ``/api/models``.

    Parameters
    ----------
    query:
        Query text (see :func:`parse_query`).
    checkpoint_dir:
        Folder for the checkpoint and spool files (default: the current folder).
    endpoint:
        Hub URL (default: ``HF_ENDPOINT``, else huggingface_hub's default).
    base_wait:
        First back-off wait in seconds (doubles per retry, at most ``max_wait``).
    """

    def __init__(self, query: str = "", *, checkpoint_dir: str | Path | None = None, endpoint: str | None = None,
                 base_wait: float = 1.0, max_wait: float = 60.0, max_retries: int = 6):
        from huggingface_hub import constants

        self.query = query
        self.params = parse_query(query)
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
        key = hashlib.sha1(f"{self.endpoint}?{query}".encode()).hexdigest()[:12]
        folder = Path(checkpoint_dir or ".")
        self.checkpoint = folder / f".modelatlas-hub-{key}.checkpoint.json"
        self.spool = folder / f".modelatlas-hub-{key}.spool.jsonl"
        self.base_wait, self.max_wait, self.max_retries = base_wait, max_wait, max_retries

    def _first_request(self) -> tuple[str, list[tuple[str, str]]]:
        limit = self.params.get("limit")
        params = [(k, v) for k, v in self.params.items() if k != "limit"]
        params += [("expand", p) for p in EXPAND]
        params.append(("limit", str(min(int(limit), PAGE_SIZE)) if limit else str(PAGE_SIZE)))
        return f"{self.endpoint}/api/models", params

    def _state(self) -> dict | None:
        if not self.checkpoint.exists():
            return None
        try:
            state = json.loads(self.checkpoint.read_text())
        except json.JSONDecodeError:
            raise InputError("checkpoint is not JSON; delete it to start the crawl again",
                             path=str(self.checkpoint)) from None
        return state

    def _save_state(self, state: dict) -> None:
        tmp = self.checkpoint.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.checkpoint)

    def pages(self, on_page=None):
        """Fetch pages until done, spooling items; yields the number of items of each new page."""
        from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_backoff

        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        state = self._state()
        if state is None:
            self.spool.unlink(missing_ok=True)
            url, params = self._first_request()
            state = {"query": self.query, "next": url, "params": params, "pages": 0, "items": 0, "done": False}
            self._save_state(state)
        limit = int(self.params["limit"]) if "limit" in self.params else None
        headers = build_hf_headers()
        while not state["done"]:
            try:
                response = http_backoff("GET", state["next"], params=state["params"] or None, headers=headers,
                                        max_retries=self.max_retries, base_wait_time=self.base_wait,
                                        max_wait_time=self.max_wait, retry_on_status_codes=RETRY_STATUS)
                hf_raise_for_status(response)
                items = response.json()
            except Exception as exc:  # the HTTP layer's errors differ by version; all are reported alike
                raise InputError(f"Hub request failed after retries: {exc}; run again to resume from page "
                                 f"{state['pages'] + 1}", path=f"hub:{self.query}") from None
            if not isinstance(items, list):
                raise InputError(f"expected a list of models, got {type(items).__name__}", path=state["next"])
            if limit is not None:
                items = items[: max(limit - state["items"], 0)]
            with open(self.spool, "a", encoding="utf-8") as fh:
                for item in items:
                    fh.write(json.dumps(item) + "\n")
            nxt = response.links.get("next", {}).get("url")
            state.update(next=nxt, params=None, pages=state["pages"] + 1, items=state["items"] + len(items),
                         done=nxt is None or (limit is not None and state["items"] + len(items) >= limit))
            self._save_state(state)
            if on_page:
                on_page(len(items))
            yield len(items)

    def items(self):
        """Every spooled item, in order."""
        if not self.spool.exists():
            return
        with open(self.spool, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    yield n, json.loads(line)

    def finish(self) -> None:
        """Remove the checkpoint and spool of a finished crawl."""
        self.checkpoint.unlink(missing_ok=True)
        self.spool.unlink(missing_ok=True)


def read_hub(query: str = "", *, checkpoint_dir: str | Path | None = None, endpoint: str | None = None,
             on_progress=None, **crawl_options) -> SourceBatch:
    """Crawl the Hub (resuming a checkpoint) and read the models like any other source."""
    crawl = HubCrawl(query, checkpoint_dir=checkpoint_dir, endpoint=endpoint, **crawl_options)
    batch = SourceBatch(f"hub:{query}", FORMAT)
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
    crawl.finish()
    return batch


