"""What comes over the wire: one Hub model record, typed, and its columnar form.

:class:`HubModelInfo` mirrors ``huggingface_hub.ModelInfo`` (the fields the atlas uses) plus the
crawl fields of Anatomy-style files (``card``, ``snapshot``, ``family_root`` and the child lists).
:func:`model_info_from_api` reads one API / crawl dictionary in any of its spellings
(``created_at`` / ``createdAt``, ``card_data`` / ``cardData``, stringified Python values) and says
which fields it could not read. :func:`wire_table` lays records out as :data:`WIRE_SCHEMA`, the
column layout every reader hands to :func:`modelatlas.ingest.records.records_from_wire`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from modelatlas.ingest import pyvalue
from modelatlas.ingest.card import CardDataError, card_data_json, load_card_data

#: Anatomy crawl child lists -> the relation each one states (issue 2, "Data model").
TREE_LISTS: dict[str, str] = {"children": "finetune", "adapters": "adapter",
                              "quantized": "quantized", "merges": "merge"}

TIMESTAMP = pa.timestamp("us", tz="UTC")

WIRE_SCHEMA = pa.schema([
    ("id", pa.string()), ("author", pa.string()),
    ("created_at", TIMESTAMP), ("last_modified", TIMESTAMP),
    ("downloads", pa.int64()), ("downloads_all_time", pa.int64()), ("likes", pa.int64()),
    ("trending_score", pa.float64()),
    ("tags", pa.list_(pa.string())), ("pipeline_tag", pa.string()), ("library_name", pa.string()),
    ("card_data", pa.string()), ("config", pa.string()), ("siblings", pa.list_(pa.string())),
    ("safetensors", pa.string()), ("gguf", pa.string()),
    ("card", pa.string()), ("card_present", pa.bool_()), ("gated", pa.bool_()),
    ("snapshot", pa.string()), ("crawl_root", pa.string()),
])

#: Accepted spellings of each field, first found wins.
_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "modelId", "model_id"),
    "author": ("author",),
    "created_at": ("created_at", "createdAt"),
    "last_modified": ("last_modified", "lastModified"),
    "downloads": ("downloads",),
    "downloads_all_time": ("downloads_all_time", "downloadsAllTime"),
    "likes": ("likes",),
    "trending_score": ("trending_score", "trendingScore"),
    "tags": ("tags",),
    "pipeline_tag": ("pipeline_tag", "pipelineTag"),
    "library_name": ("library_name", "libraryName"),
    "card_data": ("card_data", "cardData"),
    "config": ("config",),
    "siblings": ("siblings",),
    "safetensors": ("safetensors",),
    "gguf": ("gguf",),
    "gated": ("gated",),
}

_READERS = {
    "id": pyvalue.as_str, "author": pyvalue.as_str, "created_at": pyvalue.as_datetime,
    "last_modified": pyvalue.as_datetime, "downloads": pyvalue.as_count, "downloads_all_time": pyvalue.as_count,
    "likes": pyvalue.as_count, "trending_score": pyvalue.as_float, "tags": pyvalue.as_str_list,
    "pipeline_tag": pyvalue.as_str, "library_name": pyvalue.as_str, "config": pyvalue.as_dict,
    "siblings": pyvalue.sibling_names, "safetensors": pyvalue.as_dict, "gguf": pyvalue.as_dict,
}


@dataclass
class HubModelInfo:
    """One model as the Hub API (or a crawl of it) describes it."""

    id: str
    author: str | None = None
    created_at: datetime | None = None
    last_modified: datetime | None = None
    downloads: int | None = None
    downloads_all_time: int | None = None
    likes: int | None = None
    trending_score: float | None = None
    tags: list[str] | None = None
    pipeline_tag: str | None = None
    library_name: str | None = None
    card_data: dict | None = None
    config: dict | None = None
    siblings: list[str] | None = None
    safetensors: dict | None = None
    gguf: dict | None = None
    gated: bool | None = None
    card: str | None = None
    card_known: bool = False
    snapshot: str | None = None
    crawl_root: str | None = None
    tree: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldProblem:
    """A field that could not be read; the raw value stays in the message."""

    field: str
    message: str


def _gated(value) -> bool | None:
    value = pyvalue.literal(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):  # the Hub writes "auto" / "manual" for gated repositories
        return value.strip().lower() not in ("false", "no", "0", "")
    raise pyvalue.BadValue(f"expected a flag or 'auto'/'manual', got {pyvalue.show(value)}")


def model_info_from_api(data: dict, *, fallback_id: str | None = None) -> tuple[HubModelInfo | None, list[FieldProblem]]:
    """Read one API / crawl dictionary.

    Parameters
    ----------
    data:
        The ``ModelInfo`` JSON (any spelling; values may be stringified Python).
    fallback_id:
        Id to use when ``data`` has none (Anatomy records carry it beside the metadata).

    Returns
    -------
    info, problems:
        ``info`` is ``None`` only when no id can be found. Each field that could not be read is
        left empty and named in ``problems`` with its raw value; so is each value read after
        changing its type (a number as text, ``3.0`` as a count), with what it was read as.
    """
    problems: list[FieldProblem] = []
    values: dict = {}
    for name, aliases in _ALIASES.items():
        raw = next((data[a] for a in aliases if a in data), None)
        try:
            if name == "card_data":
                values[name] = load_card_data(pyvalue.literal(raw) if isinstance(raw, str) and raw.strip()[:1] == "{"
                                              else raw)
            elif name == "gated":
                values[name] = _gated(raw)
            else:
                values[name] = _READERS[name](raw)
        except (pyvalue.BadValue, CardDataError) as exc:
            problems.append(FieldProblem(name, f"{name}: {exc}; left empty"))
            values[name] = None
        if isinstance(values[name], pyvalue.Coerced):
            problems.append(FieldProblem(name, f"{name}: {values[name].message}"))
            values[name] = values[name].value
    model_id = (values.pop("id") or fallback_id or "").strip()
    if not model_id:
        return None, problems
    info = HubModelInfo(id=model_id, **values)
    if info.author is None and "/" in model_id:
        info.author = model_id.split("/", 1)[0]
    return info, problems


def wire_table(infos: list[HubModelInfo]) -> pa.Table:
    """Records in the :data:`WIRE_SCHEMA` layout (mappings as JSON text)."""
    cols = {name: [] for name in WIRE_SCHEMA.names}
    for info in infos:
        for name in WIRE_SCHEMA.names:
            if name in ("card_data", "config", "safetensors", "gguf"):
                cols[name].append(card_data_json(getattr(info, name)))
            elif name == "card_present":  # without the card text, a README.md in the file list says it
                cols[name].append((info.card is not None) if info.card_known
                                  else ("README.md" in info.siblings) if info.siblings is not None else None)
            else:
                cols[name].append(getattr(info, name))
    return pa.Table.from_pydict(cols, schema=WIRE_SCHEMA)
