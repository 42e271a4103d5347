"""Parse and validate a safetensors header before any tensor data is touched.

Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length ``N``, then
``N`` bytes of UTF-8 JSON mapping tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}``
(offsets relative to the end of the header) and an optional ``"__metadata__"`` of strings, then
the data. Every check below names the file and the tensor, so that a lying header is a clear error,
never a crash or a silent misread.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from modelatlas.errors import InputError

#: safetensors dtype label -> numpy dtype.
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64), "F32": np.dtype(np.float32), "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16), "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2), "F8_E8M0": np.dtype(ml_dtypes.float8_e8m0fnu),
    "I64": np.dtype(np.int64), "I32": np.dtype(np.int32), "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8), "U64": np.dtype(np.uint64), "U32": np.dtype(np.uint32),
    "U16": np.dtype(np.uint16), "U8": np.dtype(np.uint8), "BOOL": np.dtype(np.bool_),
}

#: The reference implementation refuses headers above 100 MB; so do we.
MAX_HEADER_BYTES = 100_000_000


@dataclass(frozen=True)
class HeaderEntry:
    """One tensor record of a safetensors header (offsets absolute from the file start)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    """A validated header: entries by name, ``__metadata__``, and where the data starts."""

    entries: dict[str, HeaderEntry]
    metadata: dict[str, str]
    data_start: int
    header_bytes: int


def parse_header(prefix: bytes, file_size: int, path: str = "") -> SafetensorsHeader:
    """Validate a safetensors header.

    Parameters
    ----------
    prefix:
        The first bytes of the file: at least ``8 + N`` of them (``N`` the declared header length),
        or the whole file when shorter.
    file_size:
        The file's size in bytes, to check that every tensor lies inside it.
    path:
        The file's name, for error messages.

    Returns
    -------
    SafetensorsHeader

    Raises
    ------
    InputError
        Truncated file, header length beyond the file, invalid JSON, unknown dtype, malformed
        shape or offsets, a byte span that does not match ``shape × dtype size``, a tensor beyond
        the end of the file, or two tensors that overlap.
    """
    if file_size < 8 or len(prefix) < 8:
        raise InputError(f"truncated safetensors file: {file_size} bytes, no 8-byte header length",
                         path=path)
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > MAX_HEADER_BYTES:
        raise InputError(f"header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit", path=path)
    if 8 + n > file_size:
        raise InputError(f"header length {n} runs past the end of the {file_size}-byte file "
                         "(truncated or not safetensors)", path=path)
    if len(prefix) < 8 + n:
        raise InputError(f"only {len(prefix) - 8} of {n} header bytes available", path=path)
    try:
        header = json.loads(bytes(prefix[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"header is not valid UTF-8 JSON ({exc})", path=path) from None
    if not isinstance(header, dict):
        raise InputError(f"header is a JSON {type(header).__name__}, not an object", path=path)
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise InputError("__metadata__ must map strings to strings", path=path, where="__metadata__")
    data_start = 8 + n
    data_size = file_size - data_start
    entries = {name: _entry(name, record, data_start, data_size, path) for name, record in header.items()}
    _check_overlaps(entries, path)
    return SafetensorsHeader(entries, metadata, data_start, data_start)


def _entry(name: str, record: object, data_start: int, data_size: int, path: str) -> HeaderEntry:
    def fail(message: str) -> InputError:
        return InputError(message, path=path, where=f"tensor {name!r}")

    if not isinstance(record, dict):
        raise fail("tensor record is not a JSON object")
    missing = {"dtype", "shape", "data_offsets"} - record.keys()
    if missing:
        raise fail(f"tensor record lacks {', '.join(sorted(missing))}")
    dtype = record["dtype"]
    if dtype not in DTYPES:
        raise fail(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
    shape = record["shape"]
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise fail(f"shape {shape!r} is not a list of non-negative integers")
    offsets = record["data_offsets"]
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(o) is int for o in offsets)):
        raise fail(f"data_offsets {offsets!r} is not a pair of integers")
    begin, end = offsets
    if begin < 0 or end < begin:
        raise fail(f"data_offsets [{begin}, {end}] are negative or reversed")
    if end > data_size:
        raise fail(f"data_offsets end {end} lies beyond the {data_size} data bytes of the file "
                   "(truncated file or lying header)")
    expected = math.prod(shape) * DTYPES[dtype].itemsize
    if expected != end - begin:
        raise fail(f"shape {shape} × {dtype} needs {expected} bytes but data_offsets span {end - begin}")
    return HeaderEntry(name, dtype, tuple(shape), data_start + begin, data_start + end)


def _check_overlaps(entries: dict[str, HeaderEntry], path: str) -> None:
    spans = sorted((e for e in entries.values() if e.end > e.begin), key=lambda e: (e.begin, e.end))
    for before, after in zip(spans, spans[1:]):
        if after.begin < before.end:
            raise InputError(f"tensors {before.name!r} and {after.name!r} overlap "
                             f"(bytes {after.begin}..{before.end})", path=path, where=f"tensor {after.name!r}")


def read_header(path: str) -> SafetensorsHeader:
    """Read and validate the header of the safetensors file at ``path`` (reads only the header)."""
    import os

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) == 8:
                (n,) = struct.unpack("<Q", head)
                if 8 + n <= size and n <= MAX_HEADER_BYTES:
                    head += fh.read(n)
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=path) from None
    return parse_header(head, size, path)
