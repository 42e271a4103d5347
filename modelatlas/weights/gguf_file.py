"""GGUF files (llama.cpp) through the ``gguf`` library: memory-mapped, dequantised row by row.

``GGUFReader`` memory-maps the file and exposes each tensor's raw bytes; quantised types store
blocks along rows, so any set of rows dequantises on its own (``gguf.quants.dequantize``). GGUF
lists dimensions fastest-first (ggml order); we reverse them into PyTorch's row-major order.
Tensors are exposed under canonical Hugging Face names (:func:`~modelatlas.weights.gguf_names.
canonical_names`, or the names given), query / key rows put back in checkpoint order, so the model
compares with safetensors models; an architecture gguf cannot map keeps GGUF's names
(``blk.0.attn_q.weight``) and says why in ``metadata["canonical_names"]``.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from modelatlas.errors import InputError
from modelatlas.weights.gguf_names import canonical_names, hf_name_map, hf_row_order
from modelatlas.weights.tensors import (ArrayRows, FloatRows, QuantInfo, ReorderedRows, StoredTensor, TensorInfo,
                                        TransposedRows)
from modelatlas.weights.weightfile import WeightFile, chunked

FLOAT_TYPES = {"F32": "F32", "F16": "F16", "BF16": "BF16", "F64": "F64"}
INT_TYPES = {"I8": "I8", "I16": "I16", "I32": "I32", "I64": "I64"}


@functools.cache
def _bounded_reader():
    """``GGUFReader`` whose every read must lie inside the file.

    The library slices its memory map and returns a short (often empty) array past the end of the
    file; an array key/value declaring 2**40 items of a scalar type then loops 2**40 times without
    advancing (a hang, found by ``benchmarks/fuzz_weights.py``). Here a short read is an error, so
    every loop of the reader advances or stops: it runs at most once per byte of the file.
    """
    import gguf

    class BoundedReader(gguf.GGUFReader):
        def _get(self, offset, dtype, count=1, override_order=None):
            values = super()._get(offset, dtype, count, override_order)
            if values.size != int(count):
                raise ValueError(f"a read of {int(count)} values at byte {offset} runs past the end of the file")
            return values

    return BoundedReader


class GGUFRows:
    """Rows of a quantised GGUF tensor: raw block rows dequantised on demand."""

    def __init__(self, raw: ArrayRows, qtype, n_cols: int):
        self.raw, self.qtype = raw, qtype
        self.n_rows, self.n_cols = raw.n_rows, n_cols

    def _dequantize(self, block: np.ndarray) -> np.ndarray:
        from gguf import quants

        if block.shape[0] == 0:  # no row asked (a layer a per-model sample skipped)
            return np.zeros((0, self.n_cols), np.float32)
        if block.size == 0:  # a 0-element tensor (valid) has no blocks to dequantise
            return np.zeros((block.shape[0], self.n_cols), np.float32)
        return quants.dequantize(block, self.qtype).reshape(block.shape[0], self.n_cols).astype(np.float32)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return self._dequantize(self.raw.rows(idx))

    def full(self) -> np.ndarray:
        return self._dequantize(self.raw.full())


class GGUFFile(WeightFile):
    """The tensors of a GGUF file, shapes in PyTorch order, quantised types dequantised.

    Parameters
    ----------
    path:
        The ``.gguf`` file.
    hf_names:
        Hugging Face tensor names (e.g. a relative checkpoint's) to expose the GGUF tensors under;
        tensors none of them maps to keep their GGUF names; an architecture gguf does not know is
        an :class:`InputError`. ``None``: the canonical names of the architecture.
    """

    format = "gguf"

    def __init__(self, path: str | Path, hf_names: Iterable[str] | None = None):
        import gguf

        super().__init__(path)
        try:
            reader = _bounded_reader()(str(self.path), "r")
        except (ValueError, OSError, IndexError, KeyError, TypeError, OverflowError, MemoryError) as exc:
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
            try:
                self._tensor(gguf, t)
            except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
                raise InputError(f"malformed tensor record ({exc.__class__.__name__}: {str(exc)[:200]})",
                                 path=str(self.path), where=str(t.name)[:120]) from None
        if hf_names is not None:
            self._rename(hf_name_map(self.metadata, self.tensors, hf_names, path=str(self.path)))
        else:
            try:
                self._rename(canonical_names(self.metadata, self.tensors, path=str(self.path)))
                self.metadata["canonical_names"] = "gguf name table"
            except InputError as exc:  # an architecture gguf does not map: GGUF names, said why
                self.metadata["canonical_names"] = f"none ({exc})"

    def _tensor(self, gguf, t) -> None:
        """List one tensor record; ValueError & co. from a malformed record are reported by the caller."""
        qtype = gguf.GGMLQuantizationType(t.tensor_type)
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        if any(d < 0 for d in shape):
            raise ValueError(f"negative dimension in {list(shape)}")
        label = qtype.name
        self.stored[t.name] = StoredTensor(t.name, label, shape, int(t.n_bytes))
        self._data[t.name] = t.data
        data = np.asarray(t.data)
        if label in FLOAT_TYPES or label in INT_TYPES:
            raw = ArrayRows(data.reshape(shape[0] if shape else 1, math.prod(shape[1:])), self._count)
            self._add(TensorInfo(t.name, shape, label), FloatRows(raw))
            return
        block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        bits = round(8 * block_bytes / block)
        # blocks run along GGUF rows: a 1-D tensor is one block row, read as a column
        rows = shape[0] if len(shape) > 1 else 1
        raw = ArrayRows(data.reshape(rows, data.size // rows if rows else 0), self._count)
        source = GGUFRows(raw, qtype, math.prod(shape) // rows if rows else 0)
        self._add(TensorInfo(t.name, shape, label, QuantInfo(f"gguf:{label}", bits, "block", block)),
                  source if len(shape) > 1 else TransposedRows(source))

    def _rename(self, names: dict[str, str]) -> None:
        """Expose tensors under the names given, rows in the checkpoint's order."""
        tensors, sources = {}, {}
        for name, info in self.tensors.items():
            new, source = names.get(name, name), self._sources[name]
            order = hf_row_order(self.metadata, name, info.shape[0], path=str(self.path)) if new != name else None
            if order is not None:
                source = ReorderedRows(source, order)
            tensors[new] = TensorInfo(new, info.shape, info.dtype, info.quantization)
            sources[new] = source
            if new != name:
                self.name_sources[new] = "name-table"
        self.tensors, self._sources = tensors, sources

    def raw_chunks(self, stored_name: str, chunk_bytes: int = 1 << 24) -> Iterator[memoryview]:
        for chunk in chunked(np.asarray(self._data[stored_name]), chunk_bytes):
            self._count(chunk.nbytes)
            yield chunk

    def close(self) -> None:
        super().close()
        self._data.clear()
        self._reader = None
