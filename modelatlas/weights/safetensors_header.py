"""Parse and validate a safetensors header before any tensor data is touched.

Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length ``N``, then
``N`` bytes of UTF-8 JSON mapping tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}``
(offsets relative to the end of the header) and an optional ``"__metadata__"`` of strings, then
the data. Every check below names the file and the tensor, so that a lying header is a clear error,
never a crash or a silent misread.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from modelatlas.errors import InputError
from modelatlas.strict_json import loads_strict

#: safetensors dtype label -> numpy dtype.
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64), "F32": np.dtype(np.float32), "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16), "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2), "F8_E8M0": np.dtype(ml_dtypes.float8_e8m0fnu),
    "I64": np.dtype(np.int64), "I32": np.dtype(np.int32), "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8), "U64": np.dtype(np.uint64), "U32": np.dtype(np.uint32),
    "U16": np.dtype(np.uint16), "U8": np.dtype(np.uint8), "BOOL": np.dtype(np.bool_),
}

#: Labels the ``safetensors`` library (0.8) knows but modelatlas cannot read as numbers: sub-byte
#: floats, FNUZ float8 variants and complex values (refused with a clear error, docs/weights.md).
UNREADABLE_DTYPES = frozenset({"F4", "F6_E2M3", "F6_E3M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"})

#: Sizes and offsets are the library's ``usize``: at most 2**64 - 1.
U64_MAX = 2**64 - 1

#: numpy cannot shape an array whose non-zero dimensions span more bytes than this, even when
#: another dimension is 0; the library accepts such empty tensors, we refuse them (docs/weights.md).
MAX_ARRAY_BYTES = 2**63 - 1

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
    """Validate a safetensors header as the ``safetensors`` library does.

    Parameters
    ----------
    prefix:
        The first bytes of the file: at least ``8 + N`` of them (``N`` the declared header length),
        or the whole file when shorter.
    file_size:
        The file's size in bytes, to check that the tensors cover the data exactly.
    path:
        The file's name, for error messages.

    Returns
    -------
    SafetensorsHeader

    Raises
    ------
    InputError
        Truncated file, header length beyond the file, invalid or non-strict JSON (duplicate keys,
        ``NaN``; :func:`modelatlas.strict_json.loads_strict`), a dtype that is not a known label,
        shape or offsets that are not unsigned 64-bit integers, a byte span that does not match
        ``shape × dtype size``, tensors that overlap, leave a gap, or do not reach the end of the
        file. Where we differ from the library on purpose, ``docs/weights.md`` says so.
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
    header = loads_strict(memoryview(prefix)[8:8 + n], path=path, what="header")
    if not isinstance(header, dict):
        raise InputError(f"header is a JSON {_json_type(header)}, not an object", path=path)
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise InputError("__metadata__ must map strings to strings", path=path, where="__metadata__")
    data_start = 8 + n
    data_size = file_size - data_start
    entries = {name: _entry(name, record, data_start, data_size, path) for name, record in header.items()}
    _check_coverage(entries, data_start, file_size, path)
    return SafetensorsHeader(entries, metadata, data_start, data_start)


def _json_type(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _u64(value: object) -> bool:
    """An unsigned 64-bit integer, as the library's ``usize`` fields require (no bool, no float)."""
    return type(value) is int and 0 <= value <= U64_MAX


def _entry(name: str, record: object, data_start: int, data_size: int, path: str) -> HeaderEntry:
    def fail(message: str) -> InputError:
        return InputError(message, path=path, where=f"tensor {name!r}")

    if not isinstance(record, dict):
        raise fail(f"tensor record is a JSON {_json_type(record)}, not an object")
    missing = {"dtype", "shape", "data_offsets"} - record.keys()
    if missing:
        raise fail(f"tensor record lacks {', '.join(sorted(missing))}")
    dtype = record["dtype"]
    if not isinstance(dtype, str):
        raise fail(f"dtype is a JSON {_json_type(dtype)}, not a dtype label such as \"F32\"")
    if dtype not in DTYPES:
        known = " (a safetensors dtype modelatlas cannot read)" if dtype in UNREADABLE_DTYPES else ""
        raise fail(f"unknown dtype {dtype[:40]!r}{known} (known: {', '.join(DTYPES)})")
    shape = record["shape"]
    if not isinstance(shape, list) or not all(_u64(d) for d in shape):
        raise fail(f"shape {_short(shape)} is not a list of non-negative 64-bit integers")
    offsets = record["data_offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_u64(o) for o in offsets):
        raise fail(f"data_offsets {_short(offsets)} is not a pair of non-negative 64-bit integers")
    begin, end = offsets
    if end < begin:
        raise fail(f"data_offsets [{begin}, {end}] are reversed")
    if end > data_size:
        raise fail(f"data_offsets end {end} lies beyond the {data_size} data bytes of the file "
                   "(truncated file or lying header)")
    numel = 1
    for d in shape:  # multiplied in order with overflow checks, as the library does
        numel *= d
        if numel > U64_MAX:
            raise fail(f"shape {_short(shape)} overflows 64 bits")
    expected = numel * DTYPES[dtype].itemsize
    if math.prod(d for d in shape if d) * DTYPES[dtype].itemsize > MAX_ARRAY_BYTES:
        raise fail(f"shape {_short(shape)} is too large for an array, even with 0 elements "
                   "(numpy's limit is 2**63 bytes)")
    if expected != end - begin:
        raise fail(f"shape {_short(shape)} × {dtype} needs {expected} bytes but data_offsets span {end - begin}")
    return HeaderEntry(name, dtype, tuple(shape), data_start + begin, data_start + end)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _check_coverage(entries: dict[str, HeaderEntry], data_start: int, file_size: int, path: str) -> None:
    """Tensors, in offset order, must tile the data: no overlap, no gap, nothing after the last."""
    covered, previous = data_start, None
    for entry in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if entry.begin < covered:
            raise InputError(f"tensors {previous.name!r} and {entry.name!r} overlap "
                             f"(bytes {entry.begin}..{covered})", path=path, where=f"tensor {entry.name!r}")
        if entry.begin > covered:
            raise InputError(f"data bytes {covered - data_start}..{entry.begin - data_start} belong to no "
                             "tensor (a gap the safetensors library refuses)", path=path,
                             where=f"tensor {entry.name!r}")
        covered, previous = entry.end, entry
    if covered != file_size:
        raise InputError(f"{file_size - covered} bytes after the last tensor belong to no tensor "
                         "(the safetensors library refuses such a file)", path=path)


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
