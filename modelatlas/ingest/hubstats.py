"""Reader for hub-stats-style Parquet (``models.parquet``), vectorised with DuckDB.

Column contract (shared with the synthetic generator, :mod:`modelatlas.zoo.synthetic_hub`):
``id, author, createdAt, lastModified, downloads, downloadsAllTime, likes, trendingScore, tags,
pipeline_tag, library_name, cardData, config, siblings, safetensors, gguf`` and the optional
extension ``card`` (README text). ``createdAt`` / ``lastModified`` are timestamps or ISO text;
``cardData``, ``config``, ``safetensors``, ``gguf`` are JSON text or structs; ``siblings`` is
``list<struct<rfilename>>``, a list of names, or JSON text. Missing optional columns are NULL.

One SQL query maps the file onto :data:`~modelatlas.ingest.wire.WIRE_SCHEMA` (no Python loop over
rows), then :func:`~modelatlas.ingest.records.records_from_wire` applies the common rules. Values
that do not fit their column (unparseable times and numbers, invalid JSON) become NULL and are
reported per model; several rows of one id keep the newest ``lastModified`` (reported).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from modelatlas.errors import InputError
from modelatlas.ingest.batch import SourceBatch
from modelatlas.ingest.records import records_from_table
from modelatlas.ingest.textfile import quiet_connection
from modelatlas.ingest.wire import WIRE_SCHEMA

FORMAT = "hub-stats"
_NUMERIC = {"downloads": ("downloads", "BIGINT"), "downloads_all_time": ("downloadsAllTime", "BIGINT"),
            "likes": ("likes", "BIGINT"), "trending_score": ("trendingScore", "DOUBLE")}
_TIMES = {"created_at": "createdAt", "last_modified": "lastModified"}
_JSON = {"card_data": "cardData", "config": "config", "safetensors": "safetensors", "gguf": "gguf"}
#: DuckDB type of each wire column (:data:`~modelatlas.ingest.wire.WIRE_SCHEMA`).
_WIRE_TYPES = {
    "id": "VARCHAR", "author": "VARCHAR", "created_at": "TIMESTAMPTZ", "last_modified": "TIMESTAMPTZ",
    "downloads": "BIGINT", "downloads_all_time": "BIGINT", "likes": "BIGINT", "trending_score": "DOUBLE",
    "tags": "VARCHAR[]", "pipeline_tag": "VARCHAR", "library_name": "VARCHAR", "card_data": "VARCHAR",
    "config": "VARCHAR", "siblings": "VARCHAR[]", "safetensors": "VARCHAR", "gguf": "VARCHAR", "card": "VARCHAR",
    "card_present": "BOOLEAN", "gated": "BOOLEAN", "snapshot": "VARCHAR", "crawl_root": "VARCHAR",
}
assert list(_WIRE_TYPES) == WIRE_SCHEMA.names

#: Problems reported per row are capped per kind; the summary still counts every row.
MAX_ROW_MESSAGES = 1000


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column_exprs(types: dict[str, str]) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """SELECT expressions per wire column, and ``(kind, field, bad_row_condition)`` checks."""
    exprs, checks = {}, []
    has = types.__contains__
    exprs["id"] = "trim(CAST(id AS VARCHAR))"
    exprs["author"] = "CAST(author AS VARCHAR)" if has("author") else "NULL"
    for wire, col in _TIMES.items():
        if not has(col):
            exprs[wire] = "NULL"
        elif types[col].startswith("TIMESTAMP"):
            exprs[wire] = f"CAST({_q(col)} AS TIMESTAMPTZ)"
        else:
            exprs[wire] = f"TRY_CAST(CAST({_q(col)} AS VARCHAR) AS TIMESTAMPTZ)"
            checks.append(("mistyped_field", col, f"{_q(col)} IS NOT NULL AND {exprs[wire]} IS NULL"))
    for wire, (col, sql_type) in _NUMERIC.items():
        if not has(col):
            exprs[wire] = "NULL"
        else:
            exprs[wire] = f"TRY_CAST({_q(col)} AS {sql_type})"
            checks.append(("mistyped_field", col, f"{_q(col)} IS NOT NULL AND {exprs[wire]} IS NULL"))
    if not has("tags"):
        exprs["tags"] = "NULL"
    elif types["tags"].endswith("[]"):
        exprs["tags"] = "CAST(tags AS VARCHAR[])"
    else:
        exprs["tags"] = "CASE WHEN json_valid(tags) THEN json_extract_string(tags, '$[*]') END"
        checks.append(("mistyped_field", "tags", "tags IS NOT NULL AND NOT json_valid(tags)"))
    for name in ("pipeline_tag", "library_name"):
        exprs[name] = f"CAST({name} AS VARCHAR)" if has(name) else "NULL"
    for wire, col in _JSON.items():
        if not has(col):
            exprs[wire] = "NULL"
        elif types[col] in ("VARCHAR", "JSON"):
            exprs[wire] = f"CASE WHEN json_valid({_q(col)}) THEN {_q(col)} END"
            kind = "broken_card_data" if wire == "card_data" else "mistyped_field"
            checks.append((kind, col, f"{_q(col)} IS NOT NULL AND NOT json_valid({_q(col)})"))
        else:  # STRUCT / MAP
            exprs[wire] = f"CAST(to_json({_q(col)}) AS VARCHAR)"
    if not has("siblings"):
        exprs["siblings"] = "NULL"
    elif types["siblings"] == "VARCHAR[]":
        exprs["siblings"] = "siblings"
    elif types["siblings"].endswith("[]"):
        exprs["siblings"] = "list_transform(siblings, lambda s: CAST(s.rfilename AS VARCHAR))"
    else:
        exprs["siblings"] = ("CASE WHEN json_valid(siblings) THEN "
                             "json_extract_string(siblings, '$[*].rfilename') END")
        checks.append(("mistyped_field", "siblings", "siblings IS NOT NULL AND NOT json_valid(siblings)"))
    exprs["card"] = "CAST(card AS VARCHAR)" if has("card") else "NULL"
    exprs["card_present"] = ("card IS NOT NULL" if has("card")
                             else f"list_contains({exprs['siblings']}, 'README.md')")
    if not has("gated"):
        exprs["gated"] = "NULL"
    elif types["gated"] == "BOOLEAN":
        exprs["gated"] = "gated"
    else:
        exprs["gated"] = "lower(CAST(gated AS VARCHAR)) NOT IN ('false', 'no', '0', '')"
    exprs["snapshot"] = "NULL"
    exprs["crawl_root"] = "NULL"
    return exprs, checks


def read_hub_stats(path: str | Path, *, source: str | None = None) -> SourceBatch:
    """Read a hub-stats-style ``models.parquet`` (see module docstring).

    Raises
    ------
    InputError
        When the file is not readable Parquet (e.g. truncated) or has no ``id`` column.
    """
    path = Path(path)
    batch = SourceBatch(source or path.name, FORMAT)
    con = quiet_connection()
    try:
        try:
            # The file is opened by name, literally: DuckDB's read_parquet would expand a name like
            # "x[ab].parquet" or "y*.parquet" as a glob and read other files (issue 13).
            con.register("parquet_file", pads.dataset(str(path), format="parquet"))
            con.execute("CREATE VIEW raw AS SELECT * FROM parquet_file")
            types = {row[0]: row[1] for row in con.execute("DESCRIBE raw").fetchall()}
            total = con.execute("SELECT count(*) FROM raw").fetchone()[0]
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            if isinstance(exc, duckdb.InterruptException):
                raise KeyboardInterrupt from None
            raise InputError(f"not a readable Parquet file (truncated or corrupt?): {str(exc).splitlines()[0]}",
                             path=str(path)) from None
        if "id" not in types:
            raise InputError(f"no 'id' column (columns: {', '.join(types)})", path=str(path))
        exprs, checks = _column_exprs(types)
        try:
            for kind, col, cond in checks:
                rows = con.execute(f"SELECT CAST(id AS VARCHAR), CAST({_q(col)} AS VARCHAR) FROM raw WHERE {cond}"
                                   ).fetchall()
                for model_id, raw in rows[:MAX_ROW_MESSAGES]:
                    batch.issue(kind, model_id, f"{path.name}: {col} of {model_id!r} is not readable "
                                                f"({(raw or '')[:80]!r}); left empty")
                if len(rows) > MAX_ROW_MESSAGES:
                    batch.issue(kind, None, f"{path.name}: {len(rows) - MAX_ROW_MESSAGES:,} more unreadable "
                                            f"{col} values not listed")
            select = ", ".join(f"CAST({exprs[name]} AS {sql_type}) AS {name}" for name, sql_type in _WIRE_TYPES.items())
            # A view, not a table: the queries below stream the file instead of holding a copy of it.
            con.execute(f"CREATE TEMP VIEW wire_all AS SELECT {select} FROM raw")
            missing = con.execute("SELECT count(*) FROM raw WHERE id IS NULL OR trim(CAST(id AS VARCHAR)) = ''"
                                  ).fetchone()[0]
            if missing:
                batch.issue("missing_id", path.name, f"{path.name}: {missing:,} rows without a model id; skipped")
            dups = con.execute("""SELECT trim(CAST(id AS VARCHAR)) AS i, count(*) FROM raw WHERE i <> ''
                                  GROUP BY i HAVING count(*) > 1 ORDER BY i""").fetchall()
            for model_id, n in dups:
                batch.issue("duplicate_record", model_id, f"{path.name}: {model_id!r} has {n} rows; kept the one "
                                                          f"modified last")
            batch.stats["duplicates"] = sum(n - 1 for _, n in dups)
            keep_newest = """QUALIFY row_number() OVER (PARTITION BY id ORDER BY last_modified DESC NULLS LAST,
                                                          created_at DESC NULLS LAST) = 1""" if dups else ""
            con.execute(f"CREATE TEMP VIEW wire AS SELECT * FROM wire_all WHERE id IS NOT NULL AND id <> '' "
                        f"{keep_newest}")
            batch.stats["lines"] = int(total)
            if total == 0:
                batch.issue("empty_source", path.name, f"{path.name} holds no rows")
            return records_from_table(con, batch)
        except (duckdb.Error, pa.ArrowException) as exc:
            if isinstance(exc, duckdb.InterruptException):
                raise KeyboardInterrupt from None
            raise InputError(f"cannot read the Parquet data: {str(exc).splitlines()[0]}", path=str(path)) from None
    finally:
        con.close()
