"""The atlas store: one embedded DuckDB file, written atomically.

A save writes a complete new database next to the target and renames it over the target only
when it is whole, so an interrupted ingest leaves the previous atlas intact. Every table of the
atlas (:meth:`Atlas.tables`) becomes a DuckDB table of the same name, plus ``atlas_meta``.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from modelatlas.atlas.schema import conform
from modelatlas.errors import StoreError

#: Where commands look for the atlas when ``--atlas`` is not given.
DEFAULT_ATLAS = Path("atlas.duckdb")
FORMAT_VERSION = 1
_META = "atlas_meta"


def save_atlas(atlas, path: str | Path) -> Path:
    """Write every table of ``atlas`` to the DuckDB file ``path``, replacing it atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # DuckDB must create the file itself
    try:
        con = duckdb.connect(str(tmp))
        try:
            for name, table in atlas.tables().items():
                con.register("_incoming", table)
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _incoming')
                con.unregister("_incoming")
            meta = {"format_version": FORMAT_VERSION, "saved_at": datetime.now(timezone.utc).isoformat(),
                    "extras": sorted(atlas.extras)}
            con.execute(f"CREATE TABLE {_META} (key VARCHAR, value VARCHAR)")
            con.executemany(f"INSERT INTO {_META} VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, path)
    except BaseException:
        for leftover in (tmp, Path(str(tmp) + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    return path


def connect(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open an atlas file read-only, with a clear error when it is missing or not an atlas."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no atlas here; build one with 'modelatlas ingest SOURCE --atlas {path}'")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise StoreError(f"{path}: cannot open as an atlas database ({exc})") from None
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if _META not in names or "nodes" not in names or "edges" not in names:
        con.close()
        raise StoreError(f"{path}: this DuckDB file is not a modelatlas atlas (no '{_META}' table)")
    return con


def load_atlas(path: str | Path):
    """Read every table of an atlas file into an :class:`~modelatlas.atlas.atlas.Atlas`."""
    from modelatlas.atlas.atlas import CORE_SCHEMAS, CORE_TABLES, Atlas

    con = connect(path)
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables ORDER BY table_name").fetchall()]
        tables = {n: con.sql(f'SELECT * FROM "{n}"').to_arrow_table() for n in names if n != _META}
    finally:
        con.close()
    # DuckDB gives back its own spelling of types (time zone "Etc/UTC", nullable fields).
    core = {n: conform(tables.pop(n), CORE_SCHEMAS[n]) for n in CORE_TABLES if n in tables}
    atlas = Atlas(**core)
    atlas.extras = tables
    return atlas
