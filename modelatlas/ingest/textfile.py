"""Opening input files (gzip or plain, with clear errors naming the file) and DuckDB connections."""

from __future__ import annotations

import gzip
import io
import os
import tempfile
import zlib
from pathlib import Path

import duckdb

from modelatlas.atlas.store import no_progress_bar
from modelatlas.errors import InputError


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


class _CheckedGzip(gzip.GzipFile):
    """A gzip stream whose damage (a bad CRC, a cut-off end, corrupt data) is an :class:`InputError`
    naming the file, instead of an ``EOFError`` the command line would turn into "Aborted!"."""

    def _checked(self, read, *args):
        try:
            return read(*args)
        except EOFError:
            raise InputError("the gzip data ends early (truncated file?)", path=self.name) from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(f"damaged gzip data ({exc})", path=self.name) from None

    def read(self, size=-1):
        return self._checked(super().read, size)

    def read1(self, size=-1):
        return self._checked(super().read1, size)

    def peek(self, n):
        return self._checked(super().peek, n)

    def readline(self, size=-1):
        return self._checked(super().readline, size)


def require_file(path: str | Path) -> Path:
    """``path`` when it is a regular file; otherwise an :class:`InputError` saying what it is (a
    folder, a FIFO or a device would block or fail a reader)."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=str(path))
    if not path.is_file():
        raise InputError("not a regular file (a folder, FIFO or device); nothing was read", path=str(path))
    return path


def open_text(path: str | Path) -> io.TextIOBase:
    """A text stream over ``path`` (gzip detected by its magic bytes; a UTF-8 byte order mark is
    dropped); a missing file or damaged gzip data is an :class:`InputError` naming the file."""
    path = require_file(path)
    if is_gzip(path):
        return io.TextIOWrapper(_CheckedGzip(str(path), "rb"), encoding="utf-8-sig", errors="replace")
    return open(path, encoding="utf-8-sig", errors="replace")


def quiet_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that prints no progress bar (it would spoil ``--json``
    output) and spills, when it must, under the system's temporary folder (DuckDB's default for
    in-memory databases is ``.tmp`` in the current directory)."""
    con = duckdb.connect()
    no_progress_bar(con)
    folder = Path(tempfile.gettempdir()) / f"modelatlas-duckdb-{os.getpid()}"
    con.execute("SET temp_directory = ?", [str(folder)])
    return con
