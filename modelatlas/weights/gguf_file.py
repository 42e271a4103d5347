"""GGUF files (llama.cpp) through the ``gguf`` library: memory-mapped, dequantised row by row.

``GGUFReader`` memory-maps the file and exposes each tensor's raw bytes; quantised types store
blocks along rows, so any set of rows dequantises on its own (``gguf.quants.dequantize``). GGUF
lists dimensions fastest-first (ggml order); we reverse them into PyTorch's row-major order.
Tensor names stay GGUF's (``blk.0.attn_q.weight``): GGUF models compare with GGUF models (mapping
them to a checkpoint's names would need each architecture's name table; llama.cpp also permutes
the query / key rows of Llama-style models on conversion, see ``docs/weights.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from modelatlas.errors import InputError
from modelatlas.weights.tensors import ArrayRows, FloatRows, QuantInfo, StoredTensor, TensorInfo
from modelatlas.weights.weightfile import WeightFile, chunked

FLOAT_TYPES = {"F32": "F32", "F16": "F16", "BF16": "BF16", "F64": "F64"}
INT_TYPES = {"I8": "I8", "I16": "I16", "I32": "I32", "I64": "I64"}


class GGUFRows:
    """Rows of a quantised GGUF tensor: raw block rows dequantised on demand."""

    def __init__(self, raw: ArrayRows, qtype, n_cols: int):
        self.raw, self.qtype = raw, qtype
        self.n_rows, self.n_cols = raw.n_rows, n_cols

    def _dequantize(self, block: np.ndarray) -> np.ndarray:
        from gguf import quants

        return quants.dequantize(block, self.qtype).reshape(block.shape[0], self.n_cols).astype(np.float32)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return self._dequantize(self.raw.rows(idx))

    def full(self) -> np.ndarray:
        return self._dequantize(self.raw.full())


class GGUFFile(WeightFile):
    """The tensors of a GGUF file, shapes in PyTorch order, quantised types dequantised."""

    format = "gguf"

    def __init__(self, path: str | Path):
        import gguf

        super().__init__(path)
        try:
            reader = gguf.GGUFReader(str(self.path), "r")
        except (ValueError, OSError, IndexError, KeyError, TypeError) as exc:
            raise InputError(f"not a readable GGUF file ({exc.__class__.__name__}: {exc})",
                             path=str(self.path)) from None
        self._reader = reader
        self._data: dict[str, np.ndarray] = {}
        first = min((t.data_offset for t in reader.tensors), default=reader.data_offset)
        self._count(first)  # the header and key/values are parsed whole
        for field in reader.fields.values():
            if not field.name.startswith("tokenizer.") and field.types and field.types[0] != gguf.GGUFValueType.ARRAY:
                try:
                    self.metadata[field.name] = field.contents()
                except (ValueError, IndexError, UnicodeDecodeError):
                    continue
        for t in reader.tensors:
            qtype = gguf.GGMLQuantizationType(t.tensor_type)
            shape = tuple(int(d) for d in reversed(t.shape.tolist()))
            label = qtype.name
            self.stored[t.name] = StoredTensor(t.name, label, shape, int(t.n_bytes))
            self._data[t.name] = t.data
            rows = shape[0] if len(shape) > 1 else 1
            cols = int(np.prod(shape[1:])) if len(shape) > 1 else int(np.prod(shape))
            raw = ArrayRows(np.asarray(t.data).reshape(rows, -1), self._count)
            if label in FLOAT_TYPES or label in INT_TYPES:
                self._add(TensorInfo(t.name, shape, label), FloatRows(raw))
            else:
                block, _ = gguf.GGML_QUANT_SIZES[qtype]
                bits = round(8 * gguf.GGML_QUANT_SIZES[qtype][1] / block)
                self._add(TensorInfo(t.name, shape, label, QuantInfo(f"gguf:{label}", bits, "block", block)),
                          GGUFRows(raw, qtype, cols))

    def raw_chunks(self, stored_name: str, chunk_bytes: int = 1 << 24) -> Iterator[memoryview]:
        for chunk in chunked(np.asarray(self._data[stored_name]), chunk_bytes):
            self._count(chunk.nbytes)
            yield chunk

    def close(self) -> None:
        super().close()
        self._data.clear()
        self._reader = None
