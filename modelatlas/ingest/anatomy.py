"""Reader for Anatomy-style crawls: JSON / JSONL (gzip or plain) of Hub records with child lists.

Each record is ``{"id", "family_root", "snapshot", "metadata", "card", "children", "adapters",
"quantized", "merges"}`` (``../shared/data/README.md``): ``metadata`` is the Hub ``ModelInfo`` whose
values may be stringified Python (:mod:`modelatlas.ingest.pyvalue`), the child lists are Hub URLs.

Rules (Anatomy paper, section 2; issue 2):

* the child lists become evidence with provenance ``hub_tree``, relation rule ``tree_list``:
  ``children`` -> finetune, ``adapters`` -> adapter, ``quantized`` -> quantized, ``merges`` -> merge;
* several records of one id: the newest ``snapshot`` is kept whole (its tags and child lists
  describe one state of the repository) and each older one is reported as ``duplicate_record``;
* a line that is not JSON, or a record without an id, is reported with its line number and skipped;
  a field of the wrong type is emptied and reported with its raw value (``mistyped_field``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from modelatlas.errors import InputError
from modelatlas.ingest import pyvalue
from modelatlas.ingest.batch import SourceBatch, evidence_rows
from modelatlas.ingest.records import records_from_wire
from modelatlas.ingest.tags import MODEL_ID, clean_model_id
from modelatlas.ingest.textfile import open_text
from modelatlas.ingest.wire import TREE_LISTS, HubModelInfo, model_info_from_api, wire_table

FORMAT = "hf-trees"
#: Integers too long to be counts stay text, to be reported as mistyped (see :func:`pyvalue.bounded_int`).
_DECODER = json.JSONDecoder(parse_int=pyvalue.bounded_int)


def _json_documents(text: str, path: Path):
    """``(where, value)`` of each JSON document in ``text`` (pretty-printed, one after another)."""
    pos, n = 0, 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                             path=str(path)) from None
        except RecursionError:
            raise InputError(f"JSON document {n + 1} is nested too deeply", path=str(path)) from None
        n += 1
        yield f"document {n}", value


def iter_json_records(path: Path, batch: SourceBatch):
    """``(where, object)`` for each record of a JSON array, JSON-lines file, or pretty-printed JSON
    object(s).

    In JSON lines, lines that are not JSON are reported (``malformed_json``) and skipped. A file
    whose first line is not JSON by itself but which is one or more whole JSON documents (a
    pretty-printed object) is read as those documents.
    """
    with open_text(path) as fh:
        head = fh.read(4096)
        fh.seek(0)
        if head.lstrip().startswith("["):
            try:
                items = _DECODER.decode(fh.read())
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                                 path=str(path)) from None
            except RecursionError:
                raise InputError("the JSON array is nested too deeply", path=str(path)) from None
            if not isinstance(items, list):
                raise InputError(f"expected a JSON array of records, got {type(items).__name__}", path=str(path))
            for i, item in enumerate(items, 1):
                yield f"item {i}", item
            return
        first = next((line for line in fh if line.strip()), "")
        fh.seek(0)
        if first.lstrip().startswith("{") and not _is_json(first):
            text = fh.read()
            documents = _json_documents(text, path)
            try:
                opening = next(documents, None)
            except InputError:
                opening = None  # not whole documents either: read as JSON lines, reporting the bad ones
                fh.seek(0)
            if opening is not None:
                yield opening
                yield from documents
                return
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                value = _DECODER.decode(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                why = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                batch.stats["malformed_lines"] = batch.stats.get("malformed_lines", 0) + 1
                batch.issue("malformed_json", f"{path.name}:{n}", f"{path.name} line {n} is not JSON ({why}); line skipped")
                continue
            yield f"line {n}", value


def _is_json(text: str) -> bool:
    try:
        _DECODER.decode(text)
    except (json.JSONDecodeError, RecursionError):
        return False
    return True


def _child_ids(urls, where: str, list_name: str, batch: SourceBatch) -> list[str]:
    try:
        urls = pyvalue.as_str_list(urls) or []
    except pyvalue.BadValue as exc:
        batch.issue("mistyped_field", where, f"{list_name}: {exc}")
        return []
    out = []
    for url in urls:
        child = clean_model_id(url)
        if not MODEL_ID.match(child):
            batch.issue("malformed_child_url", where, f"{list_name} entry {pyvalue.show(url)} is not a Hub model "
                                                      f"URL; ignored")
            continue
        out.append(child)
    return out


def record_from_crawl(obj, where: str, batch: SourceBatch) -> HubModelInfo | None:
    """One crawl record as a :class:`HubModelInfo` (``None``, reported, when it has no id)."""
    if not isinstance(obj, dict):
        batch.issue("malformed_record", where, f"{where}: expected a JSON object, got {type(obj).__name__}; skipped")
        return None
    metadata = obj.get("metadata") if "metadata" in obj else obj
    try:
        metadata = pyvalue.as_dict(metadata) or {}
    except pyvalue.BadValue as exc:
        batch.issue("mistyped_field", where, f"metadata: {exc}")
        metadata = {}
    top_id = obj.get("id") if isinstance(obj.get("id"), str) else None
    if "metadata" in obj and obj.get("id") is not None and top_id is None:
        batch.issue("mistyped_field", where, f"{where}: id is {type(obj['id']).__name__} {pyvalue.show(obj['id'])}, "
                                             f"not text; the metadata id is used")
    info, problems = model_info_from_api(metadata, fallback_id=top_id)
    if info is None:
        batch.issue("missing_id", where, f"{where}: record has no model id; skipped")
        return None
    if top_id and top_id.strip() != info.id:
        batch.issue("conflicting_id", info.id, f"{where}: record id {top_id!r} differs from metadata id {info.id!r}; "
                                              f"using the metadata id")
    for p in problems:
        kind = "broken_card_yaml" if p.field == "card_data" else "mistyped_field"
        batch.issue(kind, info.id, f"{where}: {p.message}")
    card = obj.get("card")
    info.card = card if isinstance(card, str) else None
    if card is not None and not isinstance(card, str):
        batch.issue("mistyped_field", info.id, f"{where}: card is a {type(card).__name__}, not text")
    info.card_known = "card" in obj
    info.snapshot = str(obj["snapshot"]) if obj.get("snapshot") is not None else None
    info.crawl_root = obj.get("family_root") if isinstance(obj.get("family_root"), str) else None
    info.tree = {name: _child_ids(obj.get(name), info.id, name, batch) for name in TREE_LISTS}
    return info


def keep_newest(infos: list[HubModelInfo], batch: SourceBatch) -> list[HubModelInfo]:
    """One record per id: the newest snapshot; older ones are reported as ``duplicate_record``."""
    best: dict[str, HubModelInfo] = {}
    for info in infos:
        old = best.get(info.id)
        if old is None:
            best[info.id] = info
            continue
        newer, older = (info, old) if (info.snapshot or "") >= (old.snapshot or "") else (old, info)
        best[info.id] = newer
        batch.stats["duplicates"] = batch.stats.get("duplicates", 0) + 1
        batch.issue("duplicate_record", info.id,
                    f"{info.id} appears again; kept snapshot {newer.snapshot}, dropped snapshot {older.snapshot}")
    return list(best.values())


def read_hf_trees(path: str | Path, *, source: str | None = None) -> SourceBatch:
    """Read an Anatomy-style crawl file.

    Parameters
    ----------
    path:
        JSON array or JSON lines, gzip or plain.
    source:
        Label for ``sources`` / ``evidence.source`` (default: the file name).

    Returns
    -------
    SourceBatch
    """
    path = Path(path)
    batch = SourceBatch(source or path.name, FORMAT)
    infos = []
    lines = 0
    for where, obj in iter_json_records(path, batch):
        lines += 1
        info = record_from_crawl(obj, f"{path.name} {where}", batch)
        if info is not None:
            infos.append(info)
    batch.stats["lines"] = lines + batch.stats.get("malformed_lines", 0)
    if not infos and not batch.issues:
        batch.issue("empty_source", path.name, f"{path.name} holds no records")
    infos = keep_newest(infos, batch)
    batch = records_from_wire(wire_table(infos), batch)
    tree = evidence_rows([(info.id, child, relation, "tree_list", "hub_tree")
                          for info in infos for name, relation in TREE_LISTS.items()
                          for child in info.tree.get(name, [])], batch.source)
    if tree.num_rows:
        batch.evidence = pa.concat_tables([batch.evidence, tree])
    return batch
