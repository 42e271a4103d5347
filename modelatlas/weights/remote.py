"""Weights read where they live, through fsspec: ``file://`` and plain paths, ``hf://``, ``s3://``, ...

Fingerprinting needs a few MB of a multi-GB file (the header and ~100 rows per selected layer,
``docs/weights.md``), so a remote file is never downloaded: its safetensors header is read with
two range requests and each selected layer's rows with one ranged read per run of consecutive
rows (:meth:`fsspec.AbstractFileSystem.cat_ranges`). Local files (a plain path or ``file://``)
keep the memory-mapped readers of every format. Remote reading covers single-file safetensors,
the Hub's format for nearly every model; other remote formats are refused with a message that
says to download them first (their readers need a local file).

A file that changes while it is read gives a fingerprint of neither version: :func:`file_state`
(size and modification time or ETag) is taken before and after a read and compared by the
caller (``docs/scale.md``, "Bad input").
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np

from modelatlas.errors import InputError
from modelatlas.weights.companions import resolve
from modelatlas.weights.safetensors_header import DTYPES, MAX_HEADER_BYTES, parse_header
from modelatlas.weights.tensors import FloatRows, StoredTensor
from modelatlas.weights.weightfile import WeightFile

#: ``scheme://`` at the start of a location (a Windows drive letter has one letter, so it is not one).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
#: Most ranges one ``cat_ranges`` call asks for (bounds the requests a crafted row list can make).
MAX_RANGES = 4096


def is_url(location: object) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and bool(_URL.match(location))


def local_path(location: str | Path) -> Path | None:
    """The local path of a plain path or a ``file://`` URL; None for any other URL."""
    if not is_url(location):
        return Path(location)
    if str(location).startswith("file://"):
        from fsspec.implementations.local import LocalFileSystem

        return Path(LocalFileSystem._strip_protocol(str(location)))
    return None


def _filesystem(url: str):
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # an unknown protocol or its package missing
        raise InputError(f"cannot read this URL ({exc})", path=url) from None


def file_state(location: str | Path) -> tuple:
    """What says a file has not changed: size and modification time (or ETag) of the weights.

    For a local folder, the state of every regular file directly in it (a shard index names its
    shards there). A missing file is an :class:`InputError` naming it.
    """
    path = local_path(location)
    try:
        if path is not None:
            if path.is_dir():
                return tuple((e.name, e.stat().st_size, e.stat().st_mtime_ns)
                             for e in sorted(os.scandir(path), key=lambda e: e.name) if e.is_file())
            st = path.stat()
            return (st.st_size, st.st_mtime_ns)
        fs, fs_path = _filesystem(str(location))
        info = fs.info(fs_path)
    except FileNotFoundError:
        raise InputError("no such file", path=str(location)) from None
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 -- each protocol's client raises its own (httpx, botocore, ...)
        raise InputError(f"cannot reach ({exc.__class__.__name__}: {exc})", path=str(location)) from None
    stamp = next((info[k] for k in ("ETag", "etag", "mtime", "LastModified", "last_modified", "created")
                  if info.get(k) is not None), None)
    return (info.get("size"), str(stamp))


def open_url(url: str, *, hf_names=None) -> WeightFile:
    """Open the weights at a URL: local ones with :func:`~modelatlas.weights.reader.open_weights`,
    remote single-file safetensors with :class:`RemoteSafetensorsFile`.

    Raises
    ------
    InputError
        An unknown protocol, an unreachable or missing file, or a remote format other than
        safetensors (naming the URL).
    """
    from modelatlas.weights.reader import open_weights

    path = local_path(url)
    if path is not None:
        return open_weights(path, hf_names=hf_names)
    if not url.lower().endswith(".safetensors"):
        raise InputError("remote reading covers single-file safetensors; download other formats and "
                         "give their local path", path=url)
    return RemoteSafetensorsFile(url)


class RangeRows:
    """Rows of one tensor of a remote file, fetched by ranged reads (a :class:`RowSource`).

    Parameters
    ----------
    fs, fs_path:
        The fsspec file system and the file's path in it.
    begin:
        Byte offset of the tensor's data in the file.
    dtype, n_rows, n_cols:
        The stored element type and the 2-D view of the tensor.
    count:
        Called with the bytes read.
    label:
        The URL and tensor, for messages.
    """

    def __init__(self, fs, fs_path: str, begin: int, dtype, n_rows: int, n_cols: int, count, label: str):
        self.fs, self.fs_path, self.begin = fs, fs_path, begin
        self.dtype = np.dtype(dtype)
        self.n_rows, self.n_cols = n_rows, n_cols
        self._row_nbytes = self.dtype.itemsize * n_cols
        self._count, self._label = count, label
        #: rows fetched ahead by :meth:`RemoteSafetensorsFile.prefetch`: sorted unique rows -> block
        self._ahead: dict[bytes, np.ndarray] = {}

    def _fetch(self, starts: list[int], stops: list[int]) -> bytes:
        try:
            blobs = self.fs.cat_ranges([self.fs_path] * len(starts), starts, stops, on_error="raise")
        except Exception as exc:  # noqa: BLE001 -- each protocol's client raises its own (httpx, botocore, ...)
            raise InputError(f"ranged read failed ({exc.__class__.__name__}: {exc})", path=self._label) from None
        data = b"".join(blobs)
        if len(data) != sum(b - a for a, b in zip(starts, stops)):
            raise InputError("the file is shorter than its header says (changed or truncated)", path=self._label)
        self._count(len(data))
        return data

    def ranges(self, unique: np.ndarray) -> tuple[list[int], list[int]]:
        """Byte ranges of the sorted, distinct rows ``unique``: one per run of consecutive rows."""
        if unique.size and (unique[0] < 0 or unique[-1] >= self.n_rows):
            raise InputError(f"row {int(unique[-1])} outside the tensor's {self.n_rows} rows", path=self._label)
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        runs = np.split(unique, breaks) if unique.size else []
        if len(runs) > MAX_RANGES:
            raise InputError(f"{len(runs)} separate row ranges asked at once (at most {MAX_RANGES})",
                             path=self._label)
        return ([self.begin + int(r[0]) * self._row_nbytes for r in runs],
                [self.begin + (int(r[-1]) + 1) * self._row_nbytes for r in runs])

    def keep(self, unique: np.ndarray, data: bytes) -> None:
        """Hold the bytes of rows ``unique`` fetched ahead, for the next :meth:`rows` asking for them."""
        self._ahead[unique.tobytes()] = np.frombuffer(data, self.dtype).reshape(len(unique), self.n_cols)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        unique, inverse = np.unique(idx, return_inverse=True)
        block = self._ahead.pop(unique.tobytes(), None)
        if block is None:
            starts, stops = self.ranges(unique)
            data = self._fetch(starts, stops) if starts else b""
            block = np.frombuffer(data, self.dtype).reshape(len(unique), self.n_cols)
        return block if unique.size == idx.size and (idx == unique).all() else block[inverse]

    def full(self) -> np.ndarray:
        data = self._fetch([self.begin], [self.begin + self.n_rows * self._row_nbytes])
        return np.frombuffer(data, self.dtype).reshape(self.n_rows, self.n_cols)


class RemoteSafetensorsFile(WeightFile):
    """One safetensors file at a URL, read by ranges (header first, then only the rows asked for).

    The header is validated exactly as a local file's (:func:`~modelatlas.weights.safetensors_header.
    parse_header`: bounded length, strict JSON, offsets inside the file).
    """

    format = "safetensors"

    def __init__(self, url: str):
        super().__init__(url)
        self.url = url
        self._fs, self._fs_path = _filesystem(url)
        try:
            size = int(self._fs.size(self._fs_path))
            head = self._fs.cat_file(self._fs_path, start=0, end=8)
            if len(head) == 8:
                (n,) = struct.unpack("<Q", head)
                if 8 + n <= size and n <= MAX_HEADER_BYTES:
                    head += self._fs.cat_file(self._fs_path, start=8, end=8 + n)
        except FileNotFoundError:
            raise InputError("no such file", path=url) from None
        except Exception as exc:  # noqa: BLE001 -- each protocol's client raises its own (httpx, botocore, ...)
            raise InputError(f"cannot reach ({exc.__class__.__name__}: {exc})", path=url) from None
        header = parse_header(head, size, url)
        self._count(header.data_start)
        self.metadata = dict(header.metadata)
        self._entries = header.entries
        for name, entry in header.entries.items():
            self.stored[name] = StoredTensor(name, entry.dtype, entry.shape, entry.end - entry.begin)
        for info, source in resolve(self.stored, self._raw, url):
            self._add(info, source)

    def prefetch(self, wanted: dict[str, np.ndarray]) -> None:
        """Fetch the rows of several tensors in one ``cat_ranges`` call (one round trip on async file
        systems such as ``hf://`` and ``s3://``, instead of one per layer); :meth:`read_rows` then
        answers from them. Tensors read through a companion (dequantised ones) are left to read
        themselves."""
        plans = []
        for name, rows in wanted.items():
            source = self._sources.get(name)
            source = source.raw if isinstance(source, FloatRows) else source  # the same rows, as float32
            if isinstance(source, RangeRows):
                unique = np.unique(np.asarray(rows, np.int64))
                plans.append((source, unique, *source.ranges(unique)))
        n_ranges = sum(len(starts) for _, _, starts, _ in plans)
        if not plans or n_ranges > MAX_RANGES:
            return  # nothing to gain, or too many ranges for one call: each layer reads its own
        data = plans[0][0]._fetch([a for *_, starts, _ in plans for a in starts],
                                  [b for *_, stops in plans for b in stops])
        offset = 0
        for source, unique, _, _ in plans:
            size = len(unique) * source._row_nbytes
            source.keep(unique, data[offset:offset + size])
            offset += size

    def _raw(self, name: str) -> RangeRows:
        entry = self._entries[name]
        rows = entry.shape[0] if entry.shape else 1
        cols = int(np.prod(entry.shape[1:])) if entry.shape else 1
        return RangeRows(self._fs, self._fs_path, entry.begin, DTYPES[entry.dtype], rows, cols, self._count,
                         f"{self.url} ({name})")

    def raw_chunks(self, stored_name: str, chunk_bytes: int = 1 << 24):
        entry = self._entries[stored_name]
        for start in range(entry.begin, entry.end, chunk_bytes):
            stop = min(entry.end, start + chunk_bytes)
            yield memoryview(self._raw(stored_name)._fetch([start], [stop]))
