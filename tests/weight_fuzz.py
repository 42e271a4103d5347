"""Hypothesis strategies and properties for fuzzing the weight-file parsers, types varied with values.

Shared by ``tests/test_weights_fuzz.py`` (a short run in CI) and ``benchmarks/fuzz_weights.py`` (a
long run). Every generator starts from a well-formed file and mutates it: a field replaced by a
JSON value of any type, a size or offset moved by a little or by a lot, a key dropped, duplicated
or added, bytes cut off or flipped. Each ``check_*`` function is the property: the file is read
(and every listed tensor read whole) or refused with one ``InputError`` naming the file; nothing
else may escape, and nothing may block.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from modelatlas.errors import InputError
from modelatlas.weights.safetensors_header import DTYPES, UNREADABLE_DTYPES, parse_header

# -- JSON values of every type --------------------------------------------------------------------
BIG_INTS = st.sampled_from([2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), 10**30])
json_scalars = (st.none() | st.booleans() | st.integers(-5, 300) | BIG_INTS
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6))
json_values = st.recursive(json_scalars, lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=5), children, max_size=3), max_leaves=6)

#: Bits per value of every dtype label the safetensors library knows (ours and those we refuse).
DTYPE_BITS = {**{k: 8 * v.itemsize for k, v in DTYPES.items()}, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
              "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "C64": 64}
assert set(DTYPE_BITS) == set(DTYPES) | UNREADABLE_DTYPES


def _where(message: str, path: str) -> None:
    assert path in message, f"error does not name the file: {message}"
    assert "\n" not in message, f"error is not one line: {message!r}"


# -- safetensors headers --------------------------------------------------------------------------
@st.composite
def safetensors_blobs(draw) -> tuple[bytes, frozenset[str]]:
    """A safetensors file (header and data) and the names of the mutations applied to it."""
    names = draw(st.lists(st.text(max_size=5).filter(lambda n: n != "__metadata__"), max_size=4, unique=True))
    order = draw(st.permutations(names))
    header: dict = {}
    cursor = 0
    for name in order:
        dtype = draw(st.sampled_from(sorted(DTYPE_BITS)))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        nbytes = math.prod(shape) * DTYPE_BITS[dtype] // 8
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [cursor, cursor + nbytes]}
        cursor += nbytes
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)
                                      | json_values)
    tags: set[str] = set()
    for _ in range(draw(st.integers(0, 2))):
        if not names:
            break
        name = draw(st.sampled_from(names))
        record = header[name]
        if not isinstance(record, dict):
            continue
        field = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
        kind = draw(st.sampled_from(["type", "value", "drop", "extra", "record"]))
        tags.add(kind)
        if kind == "type":
            record[field] = draw(json_values)
        elif kind == "drop":
            record.pop(field, None)
        elif kind == "extra":
            record[draw(st.text(max_size=4))] = draw(json_values)
        elif kind == "record":
            header[name] = draw(json_values)
        elif field == "dtype":
            record["dtype"] = draw(st.sampled_from([*DTYPE_BITS, "f32", "Q4_0", ""]))
        elif isinstance(record.get(field), list) and record[field]:
            i = draw(st.integers(0, len(record[field]) - 1))
            if isinstance(record[field][i], int):
                record[field][i] = max(0, record[field][i] + draw(st.integers(-2, 2))) if draw(st.booleans()) \
                    else draw(BIG_INTS)
    text = json.dumps(header).encode()
    if names and draw(RARELY):  # a tensor named twice
        tags.add("duplicate")
        first = json.dumps({order[0]: header[order[0]]})[1:-1].encode()
        text = b"{" + first + b", " + text[1:] if len(text) > 2 else b"{" + first + b"}"
    if draw(RARELY):
        text = draw(st.sampled_from([b" ", b"\n"])) + text + b" " * draw(st.integers(0, 3))
    data = b"\0" * max(0, cursor + draw(st.sampled_from([0, 0, 0, 0, 1, -1, 4])))
    declared = len(text) + (draw(st.sampled_from([-2, -1, 1, 2])) if draw(RARELY) else 0)
    return struct.pack("<Q", max(declared, 0)) + text + data, frozenset(tags)


def check_safetensors_header(blob: bytes, name: str = "fuzz.safetensors") -> bool:
    """The header parser's property; True when the header was accepted."""
    try:
        header = parse_header(blob, len(blob), name)
    except InputError as exc:
        _where(str(exc), name)
        return False
    covered = header.data_start
    for e in sorted(header.entries.values(), key=lambda e: (e.begin, e.end)):
        assert e.begin == covered, "accepted tensors must tile the data"
        assert e.end - e.begin == math.prod(e.shape) * DTYPES[e.dtype].itemsize
        covered = e.end
    assert covered == len(blob)
    return True


#: Substrings of our messages for the refusals ``docs/weights.md`` lists as deliberate differences
#: from the safetensors library (which accepts these files).
DELIBERATE = ("a safetensors dtype modelatlas cannot read", "appears twice", "too large for an array")


def check_safetensors_parity(blob: bytes) -> None:
    """We refuse a file iff the ``safetensors`` library refuses it, or for a documented reason."""
    from safetensors import deserialize

    try:
        parse_header(blob, len(blob), "p.safetensors")
        ours = None
    except InputError as exc:
        ours = str(exc)
    try:
        deserialize(blob)
        theirs = None
    except Exception as exc:  # noqa: BLE001 - SafetensorError, or any refusal of the library
        theirs = str(exc)
    if ours is None:
        assert theirs is None, f"the safetensors library refuses what we accept: {theirs}"
    elif theirs is None:
        assert any(reason in ours for reason in DELIBERATE), f"we refuse what the library accepts: {ours}"


# -- shard indexes --------------------------------------------------------------------------------
SHARDS = ("s1.safetensors", "s2.safetensors")


@st.composite
def shard_indexes(draw) -> bytes:
    """The text of a ``model.safetensors.index.json`` beside shards ``SHARDS`` (tensors a, b, c)."""
    place = {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}
    weight_map: dict = {k: v for k, v in place.items() if not draw(RARELY)}
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(["a", "b", "c", "d"]) | st.text(max_size=3))
        weight_map[key] = draw(st.sampled_from([*SHARDS, "missing.safetensors", "../s1.safetensors", "",
                                                "sub", "."]) | json_values)
    doc: object = {"metadata": draw(st.dictionaries(st.text(max_size=4), json_values, max_size=2)),
                   "weight_map": weight_map}
    if draw(RARELY):
        doc = {"weight_map": draw(json_values)} if draw(st.booleans()) else draw(json_values)
    text = json.dumps(doc).encode()
    if draw(RARELY):
        text = text[: draw(st.integers(0, len(text)))]
    return text


def write_shards(folder: Path) -> None:
    from safetensors.numpy import save_file

    save_file({"a": np.arange(4, dtype=np.float32), "b": np.ones((2, 2), np.float16)}, folder / SHARDS[0])
    save_file({"c": np.zeros((3, 1), np.float32)}, folder / SHARDS[1])
    (folder / "sub").mkdir()


def check_shard_index(text: bytes, folder: Path) -> None:
    from modelatlas.weights import open_weights

    index = folder / "model.safetensors.index.json"
    index.write_bytes(text)
    _read_all(open_weights, index, folder)


# -- GGUF -----------------------------------------------------------------------------------------
GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
                12: "<d"}
#: ggml tensor types generated: F32, F16, Q4_0, Q8_0, BF16, and numbers that are no type.
GGML_TYPES = (0, 1, 2, 8, 30, 4, 99, 2**31)


def _gguf_string(text: bytes, lie: int = 0) -> bytes:
    return struct.pack("<Q", max(0, len(text) + lie)) + text


@st.composite
def _gguf_value(draw, depth: int = 0) -> tuple[int, bytes]:
    vtype = draw(st.sampled_from([13, 2**32 - 1]) if depth == 0 and draw(RARELY)
                 else st.sampled_from([*GGUF_SCALARS, 8, 9] if depth == 0 else [*GGUF_SCALARS, 8]))
    if vtype in GGUF_SCALARS:
        fmt = GGUF_SCALARS[vtype]
        size = struct.calcsize(fmt)
        return vtype, draw(st.binary(min_size=size, max_size=size))
    if vtype == 8:
        return vtype, _gguf_string(draw(st.text(max_size=6)).encode(),
                                   draw(st.sampled_from([1, -1, 2**40])) if draw(RARELY) else 0)
    if vtype == 9:
        inner = draw(st.sampled_from([*GGUF_SCALARS, 8, 9]))
        items = [draw(_gguf_value(depth + 1)) for _ in range(draw(st.integers(0, 3)))]
        payload = b"".join(p for t, p in items if t == inner) if inner != 9 else b""
        count = len([t for t, _ in items if t == inner]) + (draw(st.sampled_from([1, 2**40])) if draw(RARELY) else 0)
        return vtype, struct.pack("<IQ", inner, count) + payload
    return vtype, draw(st.binary(max_size=8))


@st.composite
def gguf_files(draw) -> bytes:
    """A GGUF file: header, key/values of any type, tensor records, aligned data; then maybe cut or
    flipped."""
    kvs = []
    for key in draw(st.lists(st.sampled_from(["general.architecture", "general.alignment", "general.name",
                                              "llama.block_count"]) | st.text(max_size=5), max_size=4)):
        vtype, payload = draw(_gguf_value())
        kvs.append(_gguf_string(key.encode()) + struct.pack("<I", vtype) + payload)
    tensors, data, offset = [], b"", 0
    for i in range(draw(st.integers(0, 3))):
        ttype = draw(st.sampled_from(GGML_TYPES[-2:])) if draw(RARELY) else draw(st.sampled_from(GGML_TYPES[:-2]))
        dims = draw(st.lists(st.sampled_from([0, 1, 2, 32, 64]), min_size=1, max_size=3))
        if draw(RARELY):
            dims = draw(st.lists(st.integers(0, 2**64 - 1), max_size=5))
        block, block_bytes = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 8: (32, 34)}.get(ttype, (1, 1))
        nbytes = math.prod(dims) // block * block_bytes
        tensors.append(_gguf_string(f"t{i}".encode()) + struct.pack("<I", len(dims))
                       + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ttype, offset))
        nbytes = min(nbytes, 4096)  # absurd dims: the data runs short, which the reader must notice
        chunk = draw(st.binary(min_size=min(nbytes, 64), max_size=min(nbytes, 64))) + b"\0" * max(0, nbytes - 64)
        chunk += b"\0" * (-len(chunk) % 32)
        data += chunk
        offset += len(chunk)
    n_tensors = len(tensors) + (draw(st.sampled_from([1, 2**40])) if draw(RARELY) else 0)
    n_kv = len(kvs) + (draw(st.sampled_from([1, 2**40])) if draw(RARELY) else 0)
    version = draw(st.sampled_from([2, 1, 0, 2**16])) if draw(RARELY) else 3
    head = b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)
    body = head + b"".join(kvs) + b"".join(tensors)
    blob = body + b"\0" * (-len(body) % 32) + data
    return _damage(draw, blob)


#: One file in five is damaged: cut short, or one byte flipped.
DAMAGE = st.sampled_from(["none"] * 8 + ["cut", "flip"])
RARELY = st.sampled_from([False] * 9 + [True])


def _damage(draw, blob: bytes) -> bytes:
    kind = draw(DAMAGE)
    if kind == "cut" and blob:
        return blob[: draw(st.integers(0, len(blob) - 1))]
    if kind == "flip" and blob:
        i = draw(st.integers(0, len(blob) - 1))
        return blob[:i] + bytes([blob[i] ^ draw(st.integers(1, 255))]) + blob[i + 1:]
    return blob


def check_gguf(blob: bytes, folder: Path) -> None:
    from modelatlas.weights.gguf_file import GGUFFile

    path = folder / "fuzz.gguf"
    path.write_bytes(blob)
    _read_all(GGUFFile, path, folder)


# -- ONNX -----------------------------------------------------------------------------------------
EXTERNAL_LOCATIONS = ("w.bin", "../w.bin", "/etc/hostname", "", "pipe", "sub", "missing.bin", "w.bin/..")
#: Bytes per value of the ONNX data types generated (FLOAT, UINT8, INT8, INT32, INT64, FLOAT16, BFLOAT16).
ONNX_ITEMSIZE = {1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 10: 2, 16: 2}
ONNX_OPS = ("MatMul", "Gemm", "DequantizeLinear", "Cast", "Sub", "Mul", "MatMulInteger", "Add")


@st.composite
def onnx_models(draw) -> bytes:
    """An ONNX model: initializers of varied types, dims, payloads and external data records, wired
    by nodes of the ops the reader interprets; serialised, then maybe cut or flipped."""
    from onnx import TensorProto, helper

    names = ["W", "s", "z", "b", "fc.bias"]
    inits = []
    for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
        t = TensorProto()
        t.name = name
        t.data_type = draw(st.sampled_from([0, 8, 14, 40] if draw(RARELY) else sorted(ONNX_ITEMSIZE)))
        t.dims.extend(draw(st.lists(st.integers(-2, 5) if draw(RARELY) else st.integers(0, 4), max_size=3)))
        nbytes = max(0, math.prod(t.dims)) * ONNX_ITEMSIZE.get(t.data_type, 1)
        if draw(RARELY):
            nbytes = draw(st.integers(0, 80))  # a payload that does not fit the dims
        payload = draw(st.sampled_from(["raw", "typed", "external", "none"]))
        if payload == "raw":
            t.raw_data = draw(st.binary(min_size=nbytes, max_size=nbytes))
        elif payload == "typed" and t.data_type == 1:
            t.float_data.extend(draw(st.lists(st.floats(width=32), min_size=nbytes // 4, max_size=nbytes // 4)))
        elif payload == "typed":
            n = nbytes // ONNX_ITEMSIZE.get(t.data_type, 1)
            field = t.int64_data if t.data_type == 7 else t.int32_data  # where ONNX keeps each type
            field.extend(draw(st.lists(st.integers(-128, 127), min_size=n, max_size=n)))
        elif payload == "external":
            t.data_location = TensorProto.EXTERNAL
            record = {"location": "w.bin", "offset": str(draw(st.sampled_from([0, 8, 64]))), "length": str(nbytes)}
            if draw(RARELY):
                record = {key: draw(st.sampled_from(EXTERNAL_LOCATIONS) | st.integers(-9, 99).map(str)
                                    | st.sampled_from(["1e3", "0x10", str(2**70), " 4"]) | st.text(max_size=4))
                          for key in draw(st.lists(st.sampled_from(["location", "offset", "length", "checksum"])
                                                   | st.text(max_size=3), max_size=4))}
            for key, value in record.items():
                entry = t.external_data.add()
                entry.key, entry.value = key, value
        inits.append(t)
    values = [*names, "x", "h1", "h2"]
    nodes = []
    for i in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(ONNX_OPS))
        inputs = draw(st.lists(st.sampled_from(values), min_size=1, max_size=4))
        attrs = {}
        if op in ("DequantizeLinear", "Gemm") and draw(st.booleans()):
            attrs["axis" if op == "DequantizeLinear" else "transB"] = draw(st.integers(-3, 3))
        nodes.append(helper.make_node(op, inputs, [draw(st.sampled_from(["h1", "h2", "y", f"o{i}"]))], **attrs))
    graph = helper.make_graph(nodes, "g", [], [], initializer=inits)
    model = helper.make_model(graph)
    model.ir_version = draw(st.sampled_from([3, 0])) if draw(RARELY) else 8
    return _damage(draw, model.SerializeToString())


def prepare_onnx_folder(folder: Path) -> None:
    (folder / "w.bin").write_bytes(np.arange(1024, dtype=np.float32).tobytes())
    (folder / "sub").mkdir()
    os.mkfifo(folder / "pipe")


def check_onnx(blob: bytes, folder: Path) -> None:
    from modelatlas.weights.onnx_file import ONNXFile

    path = folder / "fuzz.onnx"
    path.write_bytes(blob)
    _read_all(ONNXFile, path, folder)


# -- shared ---------------------------------------------------------------------------------------
def _read_all(opener, path: Path, folder: Path) -> None:
    """Open, then read every tensor whole and its first row: arrays of the listed shape, or one
    InputError naming a file of ``folder``."""
    try:
        with opener(path) as wf:
            for name, info in wf.tensors.items():
                values = wf.read(name)
                assert values.shape == info.shape and values.dtype == np.float32
                if info.rows:
                    assert wf.read_rows(name, np.array([0])).shape == (1, info.cols)
    except InputError as exc:
        _where(str(exc), str(folder))


def scratch_folder() -> tempfile.TemporaryDirectory:
    """A fresh folder for one generated file (hypothesis runs many examples per test)."""
    return tempfile.TemporaryDirectory(prefix="modelatlas-fuzz-")
