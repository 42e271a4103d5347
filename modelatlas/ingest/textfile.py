"""Opening input files (gzip or plain, with clear errors naming the file) and DuckDB connections."""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from pathlib import Path

import duckdb

from modelatlas.errors import InputError


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_text(path: str | Path) -> io.TextIOBase:
    """A text stream over ``path`` (gzip detected by its magic bytes); a missing file is an :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=str(path))
    if is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def quiet_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that prints no progress bar (it would spoil ``--json``
    output) and spills, when it must, under the system's temporary folder (DuckDB's default for
    in-memory databases is ``.tmp`` in the current directory)."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    folder = Path(tempfile.gettempdir()) / f"modelatlas-duckdb-{os.getpid()}"
    con.execute("SET temp_directory = ?", [str(folder)])
    return con
