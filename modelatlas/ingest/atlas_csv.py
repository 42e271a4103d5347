"""Readers for the Model Atlas CSV files (``../shared/data/README.md``).

* ``model-atlas-card-parents.csv`` (``id,base_model``): parents the Model Atlas preprocessing
  mined from card *prose* -> evidence with provenance ``card_text`` and no relation (rule ``none``).
  Stray trailing ``/`` are stripped; a quoted comma-separated list names several parents.
* ``model-atlas-manual-annotations.csv`` (``current_model,base_model,base_model_relation``): hand
  annotations -> provenance ``manual``, rule ``annotation``. ``merge`` rows (quoted comma-separated
  parents) give merge edges; ``unknown`` / ``unknown_annotated`` rows with parents give edges of
  relation ``unknown``. Rows without a parent make no edge: ``source`` marks an annotated root,
  ``unknown`` a model whose parent is unknown; both go to the ``annotations`` table (id,
  annotation, source) so that nothing is lost and no edge is invented.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa

from modelatlas.errors import InputError
from modelatlas.ingest.batch import SourceBatch, evidence_rows
from modelatlas.ingest.tags import MODEL_ID, clean_model_id
from modelatlas.ingest.textfile import open_text

ANNOTATIONS = "annotations"
ANNOTATION_SCHEMA = pa.schema([("id", pa.string()), ("annotation", pa.string()), ("source", pa.string())])
#: Manual relation words -> the atlas relation of the edges they give.
MANUAL_RELATIONS = {"merge": "merge", "unknown": "unknown", "unknown_annotated": "unknown"}


def _parse_line(line: str) -> list[str]:
    """The cells of one physical line: a quote never runs past the line's end (strict), so a stray
    quote cannot swallow the next line and pair its ids with this one's (issue 13)."""
    return next(csv.reader([line], strict=True), [])


def first_broken_line(path: Path) -> tuple[int, str] | None:
    """``(line number, reason)`` of the first line of a CSV file that does not parse on its own
    (:func:`_parse_line`), or ``None``. For readers that take a file whole (the leaderboard)."""
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            try:
                _parse_line(line)
            except csv.Error as exc:
                return n, str(exc)
    return None


def _rows(path: Path, columns: tuple[str, ...], batch: SourceBatch):
    """``(line_number, row dict)`` of a CSV file whose header must hold ``columns``.

    Lines that do not parse (an unterminated quote, text after a closing quote) or have the wrong
    number of cells are reported with file and line (``malformed_csv``) and skipped; a line that
    repeats an earlier one exactly is reported (``duplicate_row``) and read once.
    """
    name = path.name
    with open_text(path) as fh:
        lines = ((n, line) for n, line in enumerate(fh, 1) if line.strip())
        first = next(lines, None)
        if first is None:
            return
        try:
            header = [h.strip() for h in _parse_line(first[1])]
        except csv.Error as exc:
            raise InputError(f"not a CSV file: line {first[0]}: {exc}", path=str(path)) from None
        missing = [c for c in columns if c not in header]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)} (header: {','.join(header)})", path=str(path))
        seen: dict[tuple[str, ...], int] = {}
        for n, line in lines:
            where = f"{name}:{n}"
            try:
                row = _parse_line(line)
            except csv.Error as exc:
                batch.stats["malformed_lines"] = batch.stats.get("malformed_lines", 0) + 1
                batch.issue("malformed_csv", where, f"{name} line {n}: {exc} ({line.strip()[:120]!r}); line skipped")
                continue
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                batch.stats["malformed_lines"] = batch.stats.get("malformed_lines", 0) + 1
                batch.issue("malformed_csv", where,
                            f"{name} line {n} has {len(row)} fields, the header {len(header)}: "
                            f"{','.join(row)[:120]!r}; line skipped")
                continue
            key = tuple(cell.strip() for cell in row)
            if key in seen:
                batch.stats["duplicates"] = batch.stats.get("duplicates", 0) + 1
                batch.issue("duplicate_row", where, f"{name} line {n} repeats line {seen[key]} exactly; read once")
                continue
            seen[key] = n
            yield n, dict(zip(header, row))


def _parents(value: str, child: str, where: str, batch: SourceBatch) -> list[str]:
    out = []
    for part in value.split(","):
        parent = clean_model_id(part)
        if not parent:
            continue
        if not MODEL_ID.match(parent):
            batch.issue("invalid_model_id", child, f"{where}: parent {part.strip()!r} of {child!r} is not a valid "
                                                   f"model id; ignored")
            continue
        out.append(parent)
    return out


def _child(value: str, where: str, batch: SourceBatch) -> str | None:
    child = clean_model_id(value)
    if not child or not MODEL_ID.match(child):
        batch.issue("invalid_model_id", where, f"{where}: model id {value!r} is not valid; row skipped")
        return None
    return child


def read_card_parents(path: str | Path, *, source: str | None = None) -> SourceBatch:
    """Read ``model-atlas-card-parents.csv`` (see module docstring)."""
    path = Path(path)
    batch = SourceBatch(source or path.name, "card-parents")
    claims = []
    for line, row in _rows(path, ("id", "base_model"), batch):
        where = f"{path.name}:{line}"
        child = _child(row["id"], where, batch)
        if child is None:
            continue
        claims += [(parent, child, None, "none", "card_text") for parent in _parents(row["base_model"], child, where, batch)]
    batch.evidence = evidence_rows(claims, batch.source)
    batch.stats["claims"] = len(claims)
    return batch


def read_manual_annotations(path: str | Path, *, source: str | None = None) -> SourceBatch:
    """Read ``model-atlas-manual-annotations.csv`` (see module docstring)."""
    path = Path(path)
    batch = SourceBatch(source or path.name, "manual")
    claims, notes = [], []
    for line, row in _rows(path, ("current_model", "base_model", "base_model_relation"), batch):
        where = f"{path.name}:{line}"
        child = _child(row["current_model"], where, batch)
        if child is None:
            continue
        word = row["base_model_relation"].strip().lower()
        parents = _parents(row["base_model"], child, where, batch)
        if word == "source":
            notes.append((child, "source"))
            if parents:
                batch.issue("annotation_conflict", child, f"{where}: {child!r} is annotated as a source but names "
                                                          f"parents {parents}; parents ignored")
            continue
        if not parents:
            notes.append((child, "parent_unknown"))
            continue
        relation = MANUAL_RELATIONS.get(word, word or None)  # unknown words are reported by the atlas build
        claims += [(parent, child, relation, "annotation", "manual") for parent in parents]
    batch.evidence = evidence_rows(claims, batch.source)
    if notes:
        ids, kinds = zip(*notes)
        batch.extras[ANNOTATIONS] = pa.table({"id": list(ids), "annotation": list(kinds),
                                              "source": [batch.source] * len(ids)}, schema=ANNOTATION_SCHEMA)
    return batch
