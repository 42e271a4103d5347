"""Tensor descriptions and lazy row sources shared by every weights format.

A *stored* tensor is what a file holds (raw dtype, stored shape); a *logical* tensor is what a model
means (float weights in PyTorch's row-major ``[out, in, ...]`` convention). Readers expose logical
tensors as :class:`TensorInfo` and read them through row sources: objects that return any set of
rows of the 2-D view ``(shape[0], prod(shape[1:]))`` as float32, touching only those rows of the
file when the format allows it (memory-mapped safetensors and GGUF).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from modelatlas.errors import InputError


@dataclass(frozen=True)
class QuantInfo:
    """How a logical tensor is quantised in its file.

    Parameters
    ----------
    scheme:
        A short label: ``int8-affine``, ``int4-packed``, ``gguf:Q4_0``, ``onnx:DequantizeLinear``,
        ``onnx:MatMulInteger``, ``gptq``, ``awq``, ``bitsandbytes-int8`` ...
    bits:
        Bits per stored weight value.
    granularity:
        ``tensor``, ``row``, ``column``, ``group`` or ``block`` (the scale's reach).
    group_size:
        Values per scale for ``group`` / ``block`` granularity.
    companions:
        Stored names of the scale / zero-point tensors used to dequantise.
    """

    scheme: str
    bits: int | None
    granularity: str
    group_size: int | None = None
    companions: tuple[str, ...] = ()


@dataclass(frozen=True)
class TensorInfo:
    """One logical tensor of a model.

    Parameters
    ----------
    name:
        The tensor's name in the file (for ONNX, recovered from the graph when the initializer is
        anonymous; see ``docs/weights.md``).
    shape:
        Logical shape, row-major, PyTorch convention (``[out_features, in_features]`` for linear
        layers; GGUF's reversed shapes are put back in this order).
    dtype:
        The stored dtype label (``F32``, ``F16``, ``BF16``, ``I8``, ``U8``, ``Q4_0`` ...).
    quantization:
        How it is quantised, or ``None`` for plain floating-point tensors.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: QuantInfo | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def rows(self) -> int:
        """Rows of the 2-D view (a scalar is one row)."""
        return self.shape[0] if self.shape else 1

    @property
    def cols(self) -> int:
        """Columns of the 2-D view."""
        return math.prod(self.shape[1:]) if self.shape else 1


@dataclass(frozen=True)
class StoredTensor:
    """A tensor as the file stores it (used for content hashes and quantisation reports)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


class RowSource(Protocol):
    """Rows of a 2-D view; ``rows(idx)`` and ``full()`` return arrays of shape ``(k, n_cols)``."""

    n_rows: int
    n_cols: int

    def rows(self, idx: np.ndarray) -> np.ndarray: ...

    def full(self) -> np.ndarray: ...


class ArrayRows:
    """Rows of a 2-D array (a memory map or an in-memory array) in its stored dtype.

    Distinct rows are gathered by numpy's fancy indexing, which over a memory map touches only
    their pages; ``count(nbytes)`` is called with the bytes copied out of the file.
    """

    def __init__(self, array: np.ndarray, count: Callable[[int], None] | None = None):
        self.array = array
        self.n_rows, self.n_cols = array.shape
        self._count = count
        self._row_nbytes = array.dtype.itemsize * self.n_cols

    def rows(self, idx: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(idx, return_inverse=True)
        block = np.asarray(self.array[unique])  # sorted, each row once: pages in file order
        if self._count:
            self._count(block.shape[0] * self._row_nbytes)
        return block if unique.size == idx.size and (idx == unique).all() else block[inverse]

    def full(self) -> np.ndarray:
        block = np.asarray(self.array)
        if self._count:
            self._count(block.nbytes)
        return block


class FloatRows:
    """A stored floating-point or integer tensor read as float32."""

    def __init__(self, raw: RowSource):
        self.raw = raw
        self.n_rows, self.n_cols = raw.n_rows, raw.n_cols

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.raw.rows(idx), dtype=np.float32)

    def full(self) -> np.ndarray:
        return np.asarray(self.raw.full(), dtype=np.float32)


class TransposedRows:
    """The transpose of a small in-memory 2-D source (ONNX ``MatMul`` weights are ``[in, out]``)."""

    def __init__(self, inner: RowSource):
        self.inner = inner
        self.n_rows, self.n_cols = inner.n_cols, inner.n_rows

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.inner.full()[:, idx].T)

    def full(self) -> np.ndarray:
        return np.ascontiguousarray(self.inner.full().T)


class ReorderedRows:
    """Another source's rows in the order ``order``: row ``i`` is ``inner``'s row ``order[i]``
    (GGUF query / key rows put back in checkpoint order)."""

    def __init__(self, inner: RowSource, order: np.ndarray):
        self.inner, self.order = inner, order
        self.n_rows, self.n_cols = inner.n_rows, inner.n_cols

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return self.inner.rows(self.order[idx])

    def full(self) -> np.ndarray:
        return self.inner.full()[self.order]


class Unpacked4Bit:
    """Unsigned 4-bit values packed two per byte along columns, low nibble first."""

    def __init__(self, packed: RowSource, n_cols: int):
        self.packed = packed
        self.n_rows, self.n_cols = packed.n_rows, n_cols

    def _unpack(self, block: np.ndarray) -> np.ndarray:
        block = block.astype(np.uint8, copy=False)
        out = np.empty((block.shape[0], block.shape[1] * 2), np.uint8)
        out[:, 0::2] = block & 0x0F
        out[:, 1::2] = block >> 4
        return out[:, : self.n_cols]

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return self._unpack(self.packed.rows(idx))

    def full(self) -> np.ndarray:
        return self._unpack(self.packed.full())


class AffineDequant:
    """``(q - zero_point) * scale`` with a scale per tensor, row, column or group of columns.

    The scale's stored shape decides its reach (PyTorch convention, rows are output channels):
    one value → per tensor; ``(rows,)`` or ``(rows, 1)`` → per row; ``(1, cols)`` → per column;
    ``(rows, G)`` with ``cols % G == 0`` → per group of ``cols / G`` consecutive columns.
    The zero point, if any, has the same shape as the scale.
    """

    def __init__(self, q: RowSource, scale: RowSource, zero: RowSource | None = None, *,
                 divisor: float = 1.0, path: str = "", name: str = ""):
        self.q, self.scale, self.zero, self.divisor = q, scale, zero, divisor
        self.n_rows, self.n_cols = q.n_rows, q.n_cols
        self.granularity, self.group_size = scale_granularity(
            (scale.n_rows, scale.n_cols), (q.n_rows, q.n_cols), path=path, name=name)
        if zero is not None and zero.n_rows * zero.n_cols not in (1, scale.n_rows * scale.n_cols):
            raise InputError(f"zero point has {zero.n_rows * zero.n_cols} values but the scale has "
                             f"{scale.n_rows * scale.n_cols}", path=path, where=name)

    def _side(self, src: RowSource, idx: np.ndarray | None) -> np.ndarray:
        """The scale or zero point broadcast against rows ``idx`` (all rows when ``None``)."""
        if self.granularity in ("tensor", "column") or src.n_rows * src.n_cols == 1:
            return np.asarray(src.full(), np.float32)
        block = np.asarray(src.full() if idx is None else src.rows(idx), np.float32)
        return block if self.granularity == "row" else np.repeat(block, self.group_size, axis=1)

    def _apply(self, q: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
        values = q.astype(np.float32)
        if self.zero is not None:
            values -= self._side(self.zero, idx)
        values *= self._side(self.scale, idx)
        if self.divisor != 1.0:
            values /= np.float32(self.divisor)
        return values

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return self._apply(self.q.rows(idx), idx)

    def full(self) -> np.ndarray:
        return self._apply(self.q.full(), None)


def scale_granularity(scale_shape: tuple[int, int], q_shape: tuple[int, int], *, path: str = "",
                      name: str = "") -> tuple[str, int | None]:
    """Classify a scale's 2-D view against its quantised tensor's 2-D view (see AffineDequant)."""
    rows, cols = q_shape
    s_rows, s_cols = scale_shape
    if s_rows * s_cols == 1:
        return "tensor", None
    if s_rows == rows and s_cols == 1:
        return "row", None
    if s_rows == 1 and s_cols == cols:
        return "column", None
    if s_rows == rows and s_cols > 0 and cols % s_cols == 0:
        return "group", cols // s_cols
    raise InputError(f"scale of 2-D shape {scale_shape} does not fit a tensor of 2-D shape {q_shape}",
                     path=path, where=name)
