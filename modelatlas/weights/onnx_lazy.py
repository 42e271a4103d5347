"""An ONNX model's structure without its inline weight bytes, and where those bytes lie.

``onnx.load`` parses the whole protobuf, so every inline initializer (``raw_data``) is read to open a
file; a fingerprint needs a hundred rows of each. The protobuf wire format (protobuf's "Encoding"
documentation: tag = field number << 3 | wire type; varints; length-delimited fields) lets us walk
``ModelProto.graph`` (field 7) → ``GraphProto.initializer`` (field 5) → ``TensorProto.raw_data``
(field 9) over a memory map, skip each ``raw_data`` by its length, and re-encode the messages
without it. ``onnx`` then parses the small remainder, and each initializer's bytes are mapped
lazily from their offset (only the rows asked for are touched).

Everything else — nodes, subgraphs, typed ``float_data`` fields, external-data records — is copied
byte for byte. A malformed stream (a length beyond its message, a bad wire type, an over-long varint)
is refused with :class:`ValueError`; the caller then reads the file whole with ``onnx.load``, which
says what is wrong.
"""

from __future__ import annotations

import mmap
from pathlib import Path

#: (message path) field numbers from onnx.proto: ModelProto.graph, GraphProto.initializer,
#: TensorProto.name, TensorProto.raw_data.
MODEL_GRAPH, GRAPH_INITIALIZER, TENSOR_NAME, TENSOR_RAW_DATA = 7, 5, 8, 9
_MAX_VARINT = 10


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(_MAX_VARINT):
        if pos >= end:
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("varint longer than 10 bytes")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _fields(buf, start: int, end: int):
    """``(field number, wire type, field start, value start, value end)`` of one message."""
    pos = start
    while pos < end:
        field_start = pos
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, value_end = _varint(buf, pos, end)
            value_start = pos
        elif wire == 1:
            value_start, value_end = pos, pos + 8
        elif wire == 2:
            length, value_start = _varint(buf, pos, end)
            value_end = value_start + length
        elif wire == 5:
            value_start, value_end = pos, pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if value_end > end or number == 0:
            raise ValueError("field runs past its message")
        yield number, wire, field_start, value_start, value_end
        pos = value_end


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _tensor(buf, start: int, end: int, raw: dict[str, tuple[int, int]]) -> bytes:
    out, name, span = bytearray(), None, None
    for number, wire, fs, vs, ve in _fields(buf, start, end):
        if number == TENSOR_RAW_DATA and wire == 2:
            span = (vs, ve - vs)
            continue
        if number == TENSOR_NAME and wire == 2:
            name = bytes(buf[vs:ve]).decode("utf-8", "replace")
        out += buf[fs:ve]
    if span is not None and name is not None:
        raw[name] = span
    elif span is not None:  # an unnamed tensor cannot be looked up: keep its bytes
        return bytes(buf[start:end])
    return bytes(out)


def _graph(buf, start: int, end: int, raw: dict[str, tuple[int, int]]) -> bytes:
    out = bytearray()
    for number, wire, fs, vs, ve in _fields(buf, start, end):
        if number == GRAPH_INITIALIZER and wire == 2:
            out += _len_field(number, _tensor(buf, vs, ve, raw))
        else:
            out += buf[fs:ve]
    return bytes(out)


def stripped_model(path: str | Path) -> tuple[bytes, dict[str, tuple[int, int]], int]:
    """The model's bytes without the main graph's inline initializer data.

    Returns
    -------
    (bytes, dict, int)
        The re-encoded ``ModelProto``; initializer name -> ``(offset, length)`` of its ``raw_data``
        in the file; the number of bytes of the file the walk copied (its structure).

    Raises
    ------
    ValueError
        A malformed protobuf stream.
    OSError
        The file cannot be read or mapped.
    """
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            raise ValueError("empty file")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            raw: dict[str, tuple[int, int]] = {}
            out = bytearray()
            for number, wire, fs, vs, ve in _fields(buf, 0, size):
                if number == MODEL_GRAPH and wire == 2:
                    out += _len_field(number, _graph(buf, vs, ve, raw))
                else:
                    out += buf[fs:ve]
    return bytes(out), raw, len(out)
