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

import re
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from modelatlas.errors import InputError
from modelatlas.ingest.batch import SourceBatch
from modelatlas.ingest.card import CARD_DATA_MAX_CHARS
from modelatlas.ingest.pyvalue import EARLIEST_YEAR, LATEST_YEAR
from modelatlas.ingest.records import (
    ARROW_BATCH_ROWS,
    MAX_ROW_MESSAGES,
    records_from_table,
)
from modelatlas.ingest.textfile import quiet_connection, require_file
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



def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")
_NUMBER_TYPES = (*_INTEGER_TYPES, "FLOAT", "DOUBLE")
_EARLIEST, _LATEST = f"'{EARLIEST_YEAR}-01-01'::TIMESTAMPTZ", f"'{LATEST_YEAR}-01-01'::TIMESTAMPTZ"


def _column_exprs(types: dict[str, str]) -> tuple[dict[str, str], list[tuple[str, str, str, str]], list[str]]:
    """SELECT expressions per wire column, ``(kind, column, bad_row_condition, expected)`` checks,
    and notes about columns whose type is not the field's (values read, once per file).

    Every value that is not read as it stands (wrong type, out of range: negative counts, counts
    beyond 64 bits, fractions, times outside 1990-2100, card data over the size cap) is left
    empty and reported (docs/reliability.md, "Atlas files and ingest").
    """
    exprs, checks, notes = {}, [], []
    has = types.__contains__
    exprs["id"] = "trim(CAST(id AS VARCHAR))"
    if types["id"] != "VARCHAR":
        notes.append(f"column id is {types['id']}, not text; ids read as text")
    exprs["author"] = "CAST(author AS VARCHAR)" if has("author") else "NULL"
    for wire, col in _TIMES.items():
        if not has(col):
            exprs[wire] = "NULL"
            continue
        q = _q(col)
        value = (f"TRY_CAST({q} AS TIMESTAMPTZ)" if types[col].startswith("TIMESTAMP")
                 else f"TRY_CAST(CAST({q} AS VARCHAR) AS TIMESTAMPTZ)")
        good = f"({value} >= {_EARLIEST} AND {value} < {_LATEST})"
        exprs[wire] = f"CASE WHEN {good} THEN {value} END"
        checks.append(("mistyped_field", col, f"{q} IS NOT NULL AND NOT coalesce({good}, false)",
                       f"a time between {EARLIEST_YEAR} and {LATEST_YEAR}"))
    for wire, (col, sql_type) in _NUMERIC.items():
        if not has(col):
            exprs[wire] = "NULL"
            continue
        q, kind = _q(col), types[col]
        value = f"TRY_CAST({q} AS {sql_type})"
        if sql_type == "BIGINT":  # a count
            exact = "" if kind in _INTEGER_TYPES else f" AND TRY_CAST({q} AS DOUBLE) = {value}"
            good, expected = f"({value} >= 0{exact})", "a count (a whole number of at least 0)"
            if kind.strip('"') not in (*_INTEGER_TYPES, "VARCHAR", "NULL"):  # a column of nulls has no value
                notes.append(f"column {col} is {kind}, not integers; whole values read as counts")
        else:
            good, expected = f"isfinite({value})", "a finite number"
        exprs[wire] = f"CASE WHEN {good} THEN {value} END"
        checks.append(("mistyped_field", col, f"{q} IS NOT NULL AND NOT coalesce({good}, false)", expected))
    tags = types.get("tags")
    json_list = "(json_valid(tags) AND json_type(tags) = 'ARRAY')"
    if tags is None:
        exprs["tags"] = "NULL"
    elif tags == "VARCHAR[]":
        exprs["tags"] = "tags"
    elif tags in ("VARCHAR", "JSON"):
        exprs["tags"] = f"CASE WHEN {json_list} THEN json_extract_string(tags, '$[*]') END"
        checks.append(("mistyped_field", "tags", f"tags IS NOT NULL AND NOT coalesce({json_list}, false)",
                       "a list of text"))
    else:  # numbers, lists of numbers: no tag can be read from them
        exprs["tags"] = "NULL"
        checks.append(("mistyped_field", "tags", "tags IS NOT NULL", f"a list of text (the column is {tags})"))
    for name in ("pipeline_tag", "library_name"):
        exprs[name] = f"CAST({name} AS VARCHAR)" if has(name) else "NULL"
    for wire, col in _JSON.items():
        if not has(col):
            exprs[wire] = "NULL"
            continue
        q, kind = _q(col), types[col]
        if kind in ("VARCHAR", "JSON"):
            good = f"(length({q}) <= {CARD_DATA_MAX_CHARS} AND json_valid({q}))"
            exprs[wire] = f"CASE WHEN {good} THEN {q} END"
            problem = "broken_card_data" if wire == "card_data" else "mistyped_field"
            checks.append((problem, col, f"{q} IS NOT NULL AND NOT coalesce({good}, false)",
                           f"JSON of at most {CARD_DATA_MAX_CHARS:,} characters"))
        elif kind.startswith(("STRUCT", "MAP")):
            exprs[wire] = f"CAST(to_json({q}) AS VARCHAR)"
        else:
            exprs[wire] = "NULL"
            checks.append(("mistyped_field", col, f"{q} IS NOT NULL", f"JSON or a struct (the column is {kind})"))
    siblings = types.get("siblings")
    if siblings is None:
        exprs["siblings"] = "NULL"
    elif siblings == "VARCHAR[]":
        exprs["siblings"] = "siblings"
    elif siblings.endswith("[]") and "rfilename" in siblings:
        exprs["siblings"] = "list_transform(siblings, lambda s: CAST(s.rfilename AS VARCHAR))"
    elif siblings in ("VARCHAR", "JSON"):
        exprs["siblings"] = ("CASE WHEN json_valid(siblings) THEN "
                             "json_extract_string(siblings, '$[*].rfilename') END")
        checks.append(("mistyped_field", "siblings", "siblings IS NOT NULL AND NOT json_valid(siblings)",
                       "a JSON list of files"))
    else:
        exprs["siblings"] = "NULL"
        checks.append(("mistyped_field", "siblings", "siblings IS NOT NULL",
                       f"a list of files (the column is {siblings})"))
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
    return exprs, checks, notes


def _reason(exc: Exception) -> str:
    """The first line of a reading error, without what DuckDB wraps around a failed pyarrow stream
    (the stream's name and a Python traceback)."""
    line = str(exc).splitlines()[0].split(" Detail: Python exception")[0]
    return re.sub(r"^Invalid Input Error: reading the stream registered as '\w+' failed: ", "", line)


def _parallel_scan(con: duckdb.DuckDBPyConnection, path: Path, types: dict[str, str]) -> str:
    """The name of a relation that reads ``path`` on every DuckDB thread: ``raw`` itself, or a stream.

    DuckDB splits a Parquet file between threads by row group only, so with fewer than two row
    groups per thread (a 100k-model hub is one) threads sit idle. pyarrow's batch reader streams
    the same rows in batches of :data:`~modelatlas.ingest.records.ARROW_BATCH_ROWS` rows, which
    DuckDB's threads take in turn: one row group at a time is decoded, never the whole file
    (docs/ingest.md, "Speed"). Used only when the stream's column types are the file's as DuckDB
    reads it (the column expressions are built from those) and pyarrow opens the file; otherwise
    ``raw``. A stream can be read once.
    """
    threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    try:
        parquet = pq.ParquetFile(path)
        if threads < 2 or parquet.metadata.num_row_groups >= 2 * threads:
            return "raw"
        batches = parquet.iter_batches(batch_size=ARROW_BATCH_ROWS)
        con.register("raw_stream", pa.RecordBatchReader.from_batches(parquet.schema_arrow, batches))
    except (pa.ArrowException, OSError):
        return "raw"
    if {row[0]: row[1] for row in con.execute("DESCRIBE raw_stream").fetchall()} != types:
        con.unregister("raw_stream")
        return "raw"
    return "raw_stream"


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
    folder = tempfile.TemporaryDirectory(prefix="modelatlas-parquet-")
    try:
        try:
            con.read_parquet(str(_literal_path(path, folder))).create_view("raw")
            types = {row[0]: row[1] for row in con.execute("DESCRIBE raw").fetchall()}
            total = con.execute("SELECT count(*) FROM raw").fetchone()[0]
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.InterruptException):
                raise KeyboardInterrupt from None
            raise InputError(f"not a readable Parquet file (truncated or corrupt?): {str(exc).splitlines()[0]}",
                             path=str(path)) from None
        if "id" not in types:
            raise InputError(f"no 'id' column (columns: {', '.join(types)})", path=str(path))
        exprs, checks, notes = _column_exprs(types)
        for note in notes:
            batch.issue("mistyped_field", path.name, f"{path.name}: {note}")
        try:
            for kind, col, cond, expected in checks:
                rows = con.execute(f"SELECT CAST(id AS VARCHAR), CAST({_q(col)} AS VARCHAR) FROM raw WHERE {cond}"
                                   ).fetchall()
                for model_id, raw in rows[:MAX_ROW_MESSAGES]:
                    batch.issue(kind, model_id, f"{path.name}: {col} of {model_id!r} is not {expected} "
                                                f"({(raw or '')[:80]!r}); left empty")
                if len(rows) > MAX_ROW_MESSAGES:
                    batch.issue(kind, None, f"{path.name}: {len(rows) - MAX_ROW_MESSAGES:,} more unreadable "
                                            f"{col} values not listed")
            select = ", ".join(f"CAST({exprs[name]} AS {sql_type}) AS {name}" for name, sql_type in _WIRE_TYPES.items())
            # A view, not a table: the queries below stream the file instead of holding a copy of it.
            con.execute(f"CREATE TEMP VIEW wire_all AS SELECT {select} FROM raw")
            # one grouping gives the repeated ids and the rows without an id (the groups NULL and '')
            repeated = con.execute("""SELECT trim(CAST(id AS VARCHAR)) AS i, count(*) FROM raw GROUP BY i
                                      HAVING count(*) > 1 OR i IS NULL OR i = '' ORDER BY i""").fetchall()
            missing = sum(n for model_id, n in repeated if not model_id)
            if missing:
                batch.issue("missing_id", path.name, f"{path.name}: {missing:,} rows without a model id; skipped")
            dups = [(model_id, n) for model_id, n in repeated if model_id]
            for model_id, n in dups:
                batch.issue("duplicate_record", model_id, f"{path.name}: {model_id!r} has {n} rows; kept the one "
                                                          f"modified last")
            batch.stats["duplicates"] = sum(n - 1 for _, n in dups)
            keep_newest = """QUALIFY row_number() OVER (PARTITION BY id ORDER BY last_modified DESC NULLS LAST,
                                                          created_at DESC NULLS LAST) = 1""" if dups else ""
            wire = f"SELECT * FROM wire_all WHERE id IS NOT NULL AND id <> '' {keep_newest}"
            con.execute(f"CREATE TEMP VIEW wire AS {wire}")
            # the node query, the one pass that reads every column, reads the file on every thread
            scan = _parallel_scan(con, path, types)
            if scan != "raw":
                con.execute(f"CREATE TEMP VIEW wire_scan AS {wire.replace('wire_all', f'(SELECT {select} FROM {scan})')}")
            batch.stats["lines"] = int(total)
            if total == 0:
                batch.issue("empty_source", path.name, f"{path.name} holds no rows")
            return records_from_table(con, batch, scan="wire" if scan == "raw" else "wire_scan")
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            if isinstance(exc, duckdb.InterruptException):
                raise KeyboardInterrupt from None
            raise InputError(f"cannot read the Parquet data: {_reason(exc)}", path=str(path)) from None
    finally:
        con.close()
        folder.cleanup()


#: Characters DuckDB's file readers take as a glob pattern.
_GLOB_CHARACTERS = frozenset("*?[]{}")


def _literal_path(path: Path, folder: tempfile.TemporaryDirectory) -> Path:
    """A name for ``path`` that DuckDB opens as that one file.

    DuckDB expands ``*``, ``?`` and ``[...]`` in a file name as a glob (``x[ab].parquet`` read
    ``xa.parquet``; issue 13) and has no escape for them; such a file is reached through a link
    of a plain name in a private folder. The path is absolute, so it is never read as a URL.
    """
    path = path.absolute()
    if _GLOB_CHARACTERS.isdisjoint(str(path)):
        return path
    require_file(path)
    link = Path(folder.name) / "source.parquet"
    link.symlink_to(path)
    return link
