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
