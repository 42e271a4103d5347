"""The atlas store: one embedded DuckDB file, written atomically by one writer at a time.

A save writes a complete new database next to the target and renames it over the target only
when it is whole, so an interrupted ingest leaves the previous atlas intact. Every table of the
atlas (:meth:`Atlas.tables`) becomes a DuckDB table of the same name, plus ``atlas_meta``.

An atlas file is untrusted input (it may come from anyone). So (docs/reliability.md, "Atlas files
and ingest"):

* table names are never read from the file into SQL: the store reads and writes only the names it
  knows (:data:`KNOWN_TABLES`), and refuses a file that holds anything else (other tables, views,
  macros, other schemas) or whose ``atlas_meta`` does not say :data:`FORMAT_VERSION`;
* every connection to an atlas file runs with DuckDB's external access off, so no statement can
  read or write another file or reach the network;
* a writer holds an OS lock on ``.<name>.lock`` from loading the atlas to renaming the new one
  over it (:func:`writing`); a second writer waits up to :data:`LOCK_WAIT_SECONDS`, then fails
  naming the PID that holds it. Temporary files of writers that died are removed when the lock is
  next taken free;
* an atlas whose owner write bit is off (``chmod 444``) is refused for writing, and a replaced
  atlas keeps the mode of the file it replaces.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from modelatlas.atlas.schema import EXTRA_TABLES, conform
from modelatlas.errors import AtlasBusyError, HostError, ModelAtlasError, StoreError

#: Where commands look for the atlas when ``--atlas`` is not given.
DEFAULT_ATLAS = Path("atlas.duckdb")
FORMAT_VERSION = 1
_META = "atlas_meta"
#: Core tables (:data:`modelatlas.atlas.atlas.CORE_TABLES`; repeated here so that opening a store
#: does not import the graph code), the known extras, and the metadata table.
_CORE = ("nodes", "edges", "evidence", "metrics", "issues")
KNOWN_TABLES: tuple[str, ...] = (*_CORE, *EXTRA_TABLES, _META)
#: How long a second writer waits for the first before giving up.
LOCK_WAIT_SECONDS = 120.0
_LOCK_POLL_SECONDS = 0.1
#: DuckDB settings of every connection to an atlas file: no file or network access from SQL.
_SAFE_CONFIG = {"enable_external_access": False, "autoinstall_known_extensions": False,
                "autoload_known_extensions": False}

#: Atlas files whose writer lock this process holds (absolute path -> nesting depth).
_HELD: dict[Path, int] = {}


def _open(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection to an atlas file with :data:`_SAFE_CONFIG` and no progress bar."""
    con = duckdb.connect(str(path), read_only=read_only, config=_SAFE_CONFIG)
    no_progress_bar(con)
    return con


def no_progress_bar(con: duckdb.DuckDBPyConnection) -> None:
    """Turn DuckDB's progress bar off: it draws on standard output, which ``--json`` keeps for the
    result. In a Jupyter kernel without ipywidgets DuckDB refuses to change the setting (it could
    not draw a bar there anyway), which must not stop the Python API working in a notebook."""
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.InvalidInputException:
        pass


def table_sql(name: str) -> str:
    """The quoted SQL identifier of a known table; anything else is a programming error."""
    if name not in KNOWN_TABLES:
        raise ValueError(f"{name!r} is not an atlas table (modelatlas.atlas.store.KNOWN_TABLES)")
    return f'"{name}"'


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextmanager
def duckdb_errors(path: Path, error: type[ModelAtlasError], doing: str):
    """Within it, Ctrl-C inside DuckDB becomes :class:`KeyboardInterrupt` (the command line says
    'interrupted') and any other DuckDB error one line, ``{path}: {doing}: {first line}``, as ``error``."""
    try:
        yield
    except duckdb.InterruptException:
        raise KeyboardInterrupt from None
    except duckdb.Error as exc:
        raise error(f"{path}: {doing}: {first_line(exc)}") from None


def _host_error(path: Path, exc: OSError, doing: str) -> HostError:
    return HostError(f"{path}: cannot {doing}: {exc.strerror or first_line(exc)}")


# ---------------------------------------------------------------------------------- the writer lock
def _lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _leftovers(path: Path) -> list[Path]:
    """Temporary files of earlier saves of ``path`` (``.<name>.*.tmp`` and DuckDB's companions)."""
    prefix = f".{path.name}."
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    # mkstemp's names are .<name>.<random, no dot>.tmp; DuckDB adds .wal and a .tmp spill folder
    return [Path(e.path) for e in entries
            if e.name.startswith(prefix) and e.name[len(prefix):].split(".")[1:2] == ["tmp"]]


def _remove(leftovers: list[Path]) -> None:
    for item in leftovers:
        try:
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item)
            else:
                item.unlink()
        except FileNotFoundError:
            pass


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        pid = ""
    return f"PID {pid}" if pid.isdigit() else "another process"


def _refuse_read_only(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _host_error(path, exc, "read the atlas's file mode") from None
    if not mode & stat.S_IWUSR:
        raise HostError(f"{path}: the atlas is read-only (mode {stat.S_IMODE(mode):04o}), so it is kept as it "
                        f"is; make it writable (chmod u+w) to update it, or give another --atlas")


@contextmanager
def writing(path: str | Path, *, wait: float | None = None):
    """Hold the writer lock of the atlas file ``path`` for the ``with`` block.

    Take it before loading an atlas that will be saved back, so that no other writer's save
    happens in between (its data would be lost by the rename). Nested use in one process is a
    no-op; :func:`save_atlas` takes it itself.

    Parameters
    ----------
    path:
        The atlas file (it need not exist yet).
    wait:
        Seconds to wait for another writer (default :data:`LOCK_WAIT_SECONDS`).

    Raises
    ------
    AtlasBusyError
        When another process still holds the lock after ``wait`` seconds.
    HostError
        When the atlas is read-only, or the lock file cannot be created.
    """
    path = Path(path)
    key = Path(os.path.abspath(path))
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    _refuse_read_only(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _host_error(path, exc, "create the atlas's lock file") from None
    try:
        wait = LOCK_WAIT_SECONDS if wait is None else wait
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise AtlasBusyError(f"{path}: atlas is being written by {_holder(fd)}; gave up after "
                                         f"waiting {wait:g} s (run again when it has finished)") from None
                time.sleep(_LOCK_POLL_SECONDS)
            except OSError as exc:  # e.g. ENOLCK on a network file system without locks
                raise _host_error(path, exc, "lock the atlas for writing (does this file system support "
                                             "locks?)") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the PID is only for the message of a waiting writer
        _remove(_leftovers(path))  # with the lock free, no writer is alive to own them
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
    finally:
        os.close(fd)  # releases the lock


def _sweep_if_free(path: Path) -> None:
    """Remove dead writers' temporary files when no writer holds the lock (see module docstring)."""
    leftovers = _leftovers(path)
    if not leftovers or Path(os.path.abspath(path)) in _HELD:
        return
    try:
        fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return  # a read-only folder: nothing can be removed anyway
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return
    try:
        _remove(_leftovers(path))
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------- writing
def save_atlas(atlas, path: str | Path) -> Path:
    """Write every table of ``atlas`` to the DuckDB file ``path``, replacing it atomically.

    Parameters
    ----------
    atlas:
        The :class:`~modelatlas.atlas.atlas.Atlas`; its tables must be among :data:`KNOWN_TABLES`.
    path:
        The atlas file. An existing file keeps its mode; a read-only one is refused.

    Raises
    ------
    HostError
        A read-only atlas or folder, a full disk, a busy lock (:class:`AtlasBusyError`).
    """
    path = Path(path)
    tables = atlas.tables()
    for name in tables:
        table_sql(name)
    with writing(path):
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise _host_error(path, exc, "write next to the atlas") from None
        os.close(fd)
        tmp = Path(tmp_name)
        tmp.unlink()  # DuckDB must create the file itself
        try:
            con = _open(tmp, read_only=False)
            try:
                for name, table in tables.items():
                    con.register("_incoming", table)
                    con.execute(f"CREATE TABLE {table_sql(name)} AS SELECT * FROM _incoming")
                    con.unregister("_incoming")
                meta = {"format_version": FORMAT_VERSION, "saved_at": datetime.now(timezone.utc).isoformat(),
                        "extras": sorted(atlas.extras)}
                con.execute(f"CREATE TABLE {table_sql(_META)} (key VARCHAR, value VARCHAR)")
                con.executemany(f"INSERT INTO {table_sql(_META)} VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in meta.items()])
                con.execute("CHECKPOINT")
            finally:
                con.close()
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, path)
        except duckdb.InterruptException:  # Ctrl-C inside DuckDB: the command line says 'interrupted'
            raise KeyboardInterrupt from None
        except duckdb.Error as exc:
            raise HostError(f"{path}: cannot write the atlas: {first_line(exc)}") from None
        except OSError as exc:
            raise _host_error(path, exc, "write the atlas") from None
        finally:
            _remove([p for p in (tmp, Path(f"{tmp}.wal"), Path(f"{tmp}.tmp")) if p.exists() or p.is_symlink()])
    return path


def open_for_update(path: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the existing atlas file ``path``, for an update in place
    (:mod:`modelatlas.atlas.update`), after :func:`connect`'s checks; the caller holds :func:`writing`.

    Raises
    ------
    StoreError, HostError
        As :func:`connect`; a file that cannot be opened for writing.
    """
    path = Path(path)
    connect(path).close()
    with duckdb_errors(path, HostError, "cannot open the atlas for writing"):
        return _open(path, read_only=False)


# ---------------------------------------------------------------------------------- reading
def _objects(con: duckdb.DuckDBPyConnection) -> tuple[set[str], list[str]]:
    """``(tables in schema main, every other object)`` of the opened atlas file."""
    rows = con.execute("""
        SELECT 'table', schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()
        UNION ALL SELECT 'view', schema_name, view_name FROM duckdb_views()
            WHERE database_name = current_database() AND NOT internal
        UNION ALL SELECT 'macro', schema_name, function_name FROM duckdb_functions()
            WHERE database_name = current_database() AND NOT internal
        UNION ALL SELECT 'sequence', schema_name, sequence_name FROM duckdb_sequences()
            WHERE database_name = current_database()""").fetchall()
    tables = {name for kind, schema, name in rows if kind == "table" and schema == "main"}
    odd = [f"{kind} {schema}.{name}"[:80] for kind, schema, name in rows
           if not (kind == "table" and schema == "main" and name in KNOWN_TABLES)]
    return tables, sorted(odd)


def _check_meta(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    try:
        rows = con.execute(f"SELECT CAST(key AS VARCHAR), CAST(value AS VARCHAR) FROM {table_sql(_META)}").fetchall()
    except duckdb.InterruptException:  # Ctrl-C inside DuckDB: the command line says 'interrupted'
        raise KeyboardInterrupt from None
    except duckdb.Error:
        raise StoreError(f"{path}: its '{_META}' table is not an atlas's (columns key, value)") from None
    version = None
    for key, value in rows:
        if key == "format_version":
            try:
                version = json.loads(value)
            except (TypeError, ValueError):
                version = value
    if type(version) is not int:
        raise StoreError(f"{path}: no atlas format_version in '{_META}' (found {str(version)[:40]!r})")
    if version != FORMAT_VERSION:
        newer = "a newer" if version > FORMAT_VERSION else "an older"
        raise StoreError(f"{path}: atlas format {version} was written by {newer} modelatlas; this one reads "
                         f"format {FORMAT_VERSION}")


def connect(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open an atlas file read-only, after checking that it is an atlas and nothing else.

    Raises
    ------
    StoreError
        When the file is missing, damaged, of another format version, or holds anything but the
        atlas's own tables (:data:`KNOWN_TABLES`).
    HostError
        When the file cannot be read (permissions).
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no atlas here; build one with 'modelatlas ingest SOURCE --atlas {path}'")
    if not path.is_file():
        raise StoreError(f"{path}: not a file, so not an atlas")
    if not os.access(path, os.R_OK):
        raise HostError(f"{path}: cannot read the atlas: permission denied")
    _sweep_if_free(path)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            con = _open(path, read_only=True)
            break
        except duckdb.InterruptException:  # Ctrl-C inside DuckDB: the command line says 'interrupted'
            raise KeyboardInterrupt from None
        except duckdb.IOException as exc:
            # another process is updating the file in place (modelatlas.atlas.update): wait for it, bounded
            if "Could not set lock" not in str(exc):
                raise StoreError(f"{path}: cannot open as an atlas database (damaged or not DuckDB?): "
                                 f"{first_line(exc)}") from None
            if time.monotonic() >= deadline:
                raise AtlasBusyError(f"{path}: atlas is being updated by another process; gave up after "
                                     f"waiting {LOCK_WAIT_SECONDS:g} s (run again when it has finished)") from None
            time.sleep(_LOCK_POLL_SECONDS)
        except duckdb.Error as exc:
            raise StoreError(f"{path}: cannot open as an atlas database (damaged or not DuckDB?): "
                             f"{first_line(exc)}") from None
    try:
        tables, odd = _objects(con)
        if _META not in tables or "nodes" not in tables or "edges" not in tables:
            raise StoreError(f"{path}: this DuckDB file is not a modelatlas atlas (no '{_META}', 'nodes' "
                             f"and 'edges' tables)")
        if odd:
            raise StoreError(f"{path}: refused: besides the atlas tables this file holds {len(odd)} other "
                             f"object(s) ({', '.join(repr(o) for o in odd[:3])}{', ...' if len(odd) > 3 else ''})")
        _check_meta(con, path)
    except BaseException as exc:
        con.close()
        if isinstance(exc, duckdb.InterruptException):  # Ctrl-C inside DuckDB: the command line says so
            raise KeyboardInterrupt from None
        if isinstance(exc, duckdb.Error):
            raise StoreError(f"{path}: damaged atlas: {first_line(exc)}") from None
        raise
    return con


def _check_tables(tables: dict, path: Path) -> None:
    """Nodes with unique non-null ids, and edges between them (a damaged atlas is refused)."""
    import pyarrow.compute as pc

    nodes, edges = tables["nodes"], tables["edges"]
    ids = nodes["id"]
    if ids.null_count or pc.count_distinct(ids).as_py() != len(ids):
        raise StoreError(f"{path}: damaged atlas: node ids are missing or repeated")
    known = ids.combine_chunks()
    for end in ("parent", "child"):
        ends = edges[end]
        if ends.null_count or (edges.num_rows and not pc.all(pc.is_in(ends, value_set=known)).as_py()):
            raise StoreError(f"{path}: damaged atlas: an edge's {end} is not a node")


def _sorted(table, keys: list[str]) -> bool:
    import pyarrow.compute as pc

    if table.num_rows < 2:
        return True
    head, tail = table.slice(0, table.num_rows - 1), table.slice(1)
    first = keys[0]
    ahead = pc.less(head[first], tail[first])
    if len(keys) == 1:
        return bool(pc.all(ahead).as_py())
    same = pc.equal(head[first], tail[first])
    second = pc.less_equal(head[keys[1]], tail[keys[1]])
    return bool(pc.all(pc.or_(ahead, pc.and_(same, second))).as_py())


def read_table(path: str | Path, name: str):
    """One known table of the atlas file ``path`` as Arrow (``None`` when the file lacks it), without
    loading the rest (e.g. ``ingest_log`` for ``--since last``).

    Raises
    ------
    StoreError
        See :func:`connect`.
    """
    path = Path(path)
    sql = f"SELECT * FROM {table_sql(name)}"
    con = connect(path)
    try:
        with duckdb_errors(path, StoreError, "damaged atlas"):
            present, _ = _objects(con)
            return con.sql(sql).to_arrow_table() if name in present else None
    finally:
        con.close()


def load_atlas(path: str | Path, *, node_columns: tuple[str, ...] | None = None):
    """Read every table of an atlas file into an :class:`~modelatlas.atlas.atlas.Atlas`.

    ``node_columns`` reads only those node columns (the others are null): a summary of a large
    atlas need not hold its card texts.

    Raises
    ------
    StoreError
        See :func:`connect`; also when a table does not have the atlas's columns.
    """
    import pyarrow as pa

    from modelatlas.atlas.atlas import CORE_SCHEMAS, CORE_TABLES, Atlas

    assert CORE_TABLES == _CORE
    path = Path(path)
    con = connect(path)
    try:
        with duckdb_errors(path, StoreError, "damaged atlas"):
            present, _ = _objects(con)
            picked = "*" if node_columns is None else ", ".join(f'"{c}"' for c in node_columns
                                                                   if c in CORE_SCHEMAS["nodes"].names)
            tables = {name: con.sql(f"SELECT {picked if name == 'nodes' else '*'} FROM {table_sql(name)}")
                      .to_arrow_table() for name in (*CORE_TABLES, *EXTRA_TABLES) if name in present}
    finally:
        con.close()
    # DuckDB gives back its own spelling of types (time zone "Etc/UTC", nullable fields).
    core = {}
    for name in CORE_TABLES:
        if name not in tables:
            continue
        schema = CORE_SCHEMAS[name]
        missing = [f.name for f in schema if not f.nullable and f.name not in tables[name].column_names]
        if missing:
            raise StoreError(f"{path}: table {name!r} lacks the column(s) {', '.join(missing)}; not an atlas")
        try:
            core[name] = conform(tables.pop(name), schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise StoreError(f"{path}: table {name!r} does not have the atlas's column types: "
                             f"{first_line(exc)}") from None
    # an update in place (modelatlas.atlas.update) appends rows; the atlas's rows are in id order
    for name, keys in (("nodes", ["id"]), ("edges", ["child", "parent"])):
        if name in core and not _sorted(core[name], keys):
            core[name] = core[name].sort_by([(k, "ascending") for k in keys])
    _check_tables(core, path)
    atlas = Atlas(**core)
    atlas.extras = tables
    return atlas
