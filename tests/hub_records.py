"""Turn real hf-trees records into other wire shapes: Hub API JSON and hub-stats Parquet rows."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import yaml

from modelatlas.ingest.pyvalue import sibling_names


def load_records(path, limit: int | None = None) -> list[dict]:
    out = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            out.append(json.loads(line))
            if limit and len(out) >= limit:
                break
    return out


def _iso(value):
    return value.replace(" ", "T") if isinstance(value, str) else value


def api_json(record: dict) -> dict:
    """The Hub API's ``/api/models`` item for one crawl record (camelCase, cardData as a mapping)."""
    md = record["metadata"]
    card_data = yaml.safe_load(md["card_data"]) if md.get("card_data") else None
    return {
        "_id": md.get("_id", record["id"]), "id": record["id"], "modelId": record["id"],
        "author": md.get("author"), "createdAt": _iso(md.get("created_at")),
        "lastModified": _iso(md.get("last_modified")), "downloads": md.get("downloads"),
        "likes": md.get("likes"), "tags": md.get("tags"), "pipeline_tag": md.get("pipeline_tag"),
        "library_name": md.get("library_name"),
        "cardData": json.loads(json.dumps(card_data, default=str)) if card_data else None,
        "config": md.get("config"), "safetensors": md.get("safetensors"), "gguf": md.get("gguf"),
        "siblings": [{"rfilename": n} for n in (sibling_names(md.get("siblings")) or [])],
        "private": False, "gated": md.get("gated", False),
    }


def hub_stats_table(records: list[dict], *, json_columns: bool = True) -> pa.Table:
    """hub-stats ``models`` rows (safetensors / gguf as JSON text or structs), plus ``card``."""
    rows = []
    for rec in records:
        item = api_json(rec)
        rows.append({
            "id": item["id"], "author": item["author"], "createdAt": item["createdAt"],
            "lastModified": item["lastModified"], "downloads": item["downloads"], "downloadsAllTime": None,
            "likes": item["likes"], "trendingScore": None, "tags": item["tags"],
            "pipeline_tag": item["pipeline_tag"], "library_name": item["library_name"],
            # cardData and config stay JSON text: their shapes differ between models
            **{k: json.dumps(item[k]) if item[k] is not None else None for k in ("cardData", "config")},
            **{k: (json.dumps(item[k]) if item[k] is not None else None) if json_columns else item[k]
               for k in ("safetensors", "gguf")},
            "siblings": item["siblings"], "card": rec.get("card"),
        })
    table = pa.Table.from_pylist(rows)
    ts = pa.timestamp("us", tz="UTC")
    for col in ("createdAt", "lastModified"):
        i = table.schema.get_field_index(col)
        table = table.set_column(i, col, pa.compute.cast(
            pa.compute.strptime(table[col], format="%Y-%m-%dT%H:%M:%S%z", unit="us"), ts))
    return table


#: Records replayed as ``/api/models`` pages (tests/data/hub_api_pages.json): small ones covering
#: safetensors, GGUF, config, card data with and without model-index, typed and plain base_model tags.
REPLAY_IDS = ("huyhuy12302/output", "aharley2/elephant-nsfw-detector", "pucpr-br/Clinical-BR-LlaMA-2-7B",
              "BlackBeenie/EXAONE-Deep-32B-Q4_K_M-GGUF", "flumboyantApple/twittSent01",
              "abeiler/goatV9-chat-QLORA-Merged", "xugui/test", "antondanilevskiy/GTCauto",
              "matrixportal/gemma-7b-it-GGUF")
REPLAY_PAGE = 3
#: ``expand`` properties in the order the reader asks for them; answers carry only those a record has.
_EXPANDED = {"author": "author", "cardData": "cardData", "config": "config", "createdAt": "createdAt",
             "downloads": "downloads", "downloadsAllTime": "downloadsAllTime", "gated": "gated", "gguf": "gguf",
             "lastModified": "lastModified", "library_name": "library_name", "likes": "likes",
             "pipeline_tag": "pipeline_tag", "safetensors": "safetensors", "siblings": "siblings", "tags": "tags"}


def _hub_time(value):
    """``2025-01-29 08:35:53+00:00`` -> ``2025-01-29T08:35:53.000Z``, the Hub API's spelling."""
    from datetime import datetime

    if not isinstance(value, str):
        return value
    return datetime.fromisoformat(value).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def api_page_item(record: dict) -> dict:
    """One ``/api/models?expand=…`` item: ``_id``, ``id`` and the expanded fields the record has."""
    item = api_json(record)
    item["createdAt"], item["lastModified"] = _hub_time(item["createdAt"]), _hub_time(item["lastModified"])
    md = record["metadata"]
    item["downloadsAllTime"] = md.get("downloads_all_time")
    out = {"_id": item["_id"], "id": item["id"]}
    out.update({k: item[src] for k, src in _EXPANDED.items() if item.get(src) is not None})
    return out


def _cursor(item: dict) -> str:
    """An opaque cursor after ``item`` (the Hub's are opaque base64 too)."""
    import base64

    return base64.urlsafe_b64encode(json.dumps({"$oid": item["_id"]}).encode()).decode()


def answer_pages(items: list[dict], per_page: int = REPLAY_PAGE, params: tuple = ()) -> list[dict]:
    """``items`` as successive ``GET /api/models`` answers with ``Link`` headers to the next one.

    ``{endpoint}`` in a ``Link`` stands for the server's origin (the replay server fills it in);
    ``cursor`` is the ``cursor`` parameter that asks for the page (``null`` for the first); ``params``
    are the query parameters before ``expand`` that the next links repeat.
    """
    from urllib.parse import urlencode

    from modelatlas.ingest.hub_api import EXPAND

    pages, cursor = [], None
    for start in range(0, len(items), per_page):
        body = items[start:start + per_page]
        headers = [["content-type", "application/json; charset=utf-8"]]
        nxt = _cursor(body[-1]) if start + per_page < len(items) else None
        if nxt:
            query = urlencode([*params, *(("expand", e) for e in EXPAND), ("limit", "1000"), ("cursor", nxt)])
            headers.append(["link", f'<{{endpoint}}/api/models?{query}>; rel="next"'])
        pages.append({"cursor": cursor, "status": 200, "headers": headers, "body": body})
        cursor = nxt
    return pages


def hub_api_pages(records: list[dict], per_page: int = REPLAY_PAGE) -> dict:
    """The replay fixture (tests/data/hub_api_pages.json): the :data:`REPLAY_IDS` records as answers."""
    by_id = {r["id"]: r for r in records}
    return {"about": "GET /api/models answers built from hf-trees records by tests/hub_records.py "
                     "(hub_api_pages); test_fixture_is_built_from_the_shared_records checks them against a rebuild",
            "pages": answer_pages([api_page_item(by_id[i]) for i in REPLAY_IDS], per_page)}
