"""The common face of every weights file: logical tensors read lazily as float32."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from modelatlas.errors import InputError
from modelatlas.weights.tensors import RowSource, StoredTensor, TensorInfo

#: Logical dtypes that hold model parameters (integer / bool tensors are buffers such as position ids).
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0"})


class NonFiniteWeightsWarning(UserWarning):
    """A tensor holds NaN or infinite values (named with its file)."""


class SkippedTensorWarning(UserWarning):
    """A valid tensor that cannot be read as rows (e.g. a sparse tensor), left out with its reason."""


class WeightFile:
    """A model's weights opened for lazy reading.

    Attributes
    ----------
    path:
        The file (or folder / index of shards) opened.
    format:
        ``safetensors``, ``onnx``, ``gguf`` or ``torch``.
    tensors:
        Logical tensors by name (quantised tensors appear once, under their weight's name, with
        ``TensorInfo.quantization`` set; their scale / zero-point companions are not listed).
    stored:
        Every tensor the file stores, raw (for content hashes and quantisation reports).
    metadata:
        Format-level metadata (safetensors ``__metadata__``, GGUF key/values, ONNX producer).
    bytes_read:
        Bytes of weight data (and headers) read from disk so far.
    skipped:
        Tensors the file holds but that are not listed in ``tensors``, with the reason (each also
        reported as a :class:`SkippedTensorWarning`).
    name_sources:
        How a tensor got its canonical name, for tensors not named as the file names them:
        ``name-table`` (GGUF, gguf's name table), ``graph`` (ONNX, traced through the graph),
        ``value`` (matched by shape and values against a relative; ``weights/value_match.py``).
        See ``docs/weights.md``, "Canonical tensors".
    """

    format = "unknown"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tensors: dict[str, TensorInfo] = {}
        self.stored: dict[str, StoredTensor] = {}
        self.metadata: dict = {}
        self.bytes_read = 0
        self.skipped: dict[str, str] = {}
        self.name_sources: dict[str, str] = {}
        self._sources: dict[str, RowSource] = {}
        self._warned: set[str] = set()

    # -- building (readers call these) ---------------------------------------------------------
    def _count(self, nbytes: int) -> None:
        self.bytes_read += int(nbytes)

    def _add(self, info: TensorInfo, source: RowSource) -> None:
        self.tensors[info.name] = info
        self._sources[info.name] = source

    def _skip(self, name: str, reason: str) -> None:
        self.skipped[name] = reason
        warnings.warn(f"{self.path} ({name}): skipped, {reason}", SkippedTensorWarning, stacklevel=3)

    # -- reading -------------------------------------------------------------------------------
    def info(self, name: str) -> TensorInfo:
        """The :class:`TensorInfo` of ``name``; a clear error naming the file if it is absent."""
        try:
            return self.tensors[name]
        except KeyError:
            raise InputError(f"no tensor named {name!r} ({len(self.tensors)} tensors in the file)",
                             path=str(self.path), where=name) from None

    def read(self, name: str) -> np.ndarray:
        """The whole logical tensor as float32 (dequantised), in its logical shape."""
        info = self.info(name)
        try:
            values = self._sources[name].full().reshape(info.shape)
        except (ValueError, MemoryError) as exc:  # e.g. declared dimensions no array can hold
            raise InputError(f"tensor of shape {info.shape} cannot be read ({exc})", path=str(self.path),
                             where=name) from None
        self._check_finite(name, values)
        return values

    def read_rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Rows of the 2-D view ``(shape[0], prod(shape[1:]))`` as float32, in the order asked.

        Only those rows are read from disk where the format stores rows contiguously
        (safetensors, GGUF; ONNX and PyTorch files are held in memory).
        """
        info = self.info(name)
        idx = np.asarray(rows)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise InputError("rows must be a 1-D array of integers", path=str(self.path), where=name)
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < 0 or idx.max() >= info.rows):
            raise InputError(f"row index out of range for {info.rows} rows", path=str(self.path),
                             where=name)
        try:
            values = self._sources[name].rows(idx)
        except (ValueError, MemoryError) as exc:
            raise InputError(f"rows of a tensor of shape {info.shape} cannot be read ({exc})", path=str(self.path),
                             where=name) from None
        self._check_finite(name, values)
        return values

    def prefetch(self, wanted: dict[str, np.ndarray]) -> None:
        """Fetch ahead the rows :meth:`read_rows` will be asked for (``name -> rows``), where the
        format gains from one request instead of one per tensor (remote files,
        :meth:`~modelatlas.weights.remote.RemoteSafetensorsFile.prefetch`). Local files read rows
        from memory maps: nothing to do."""

    def _check_finite(self, name: str, values: np.ndarray) -> None:
        if name in self._warned or np.isfinite(values).all():
            return
        self._warned.add(name)
        n_nan = int(np.isnan(values).sum())
        n_inf = int(np.isinf(values).sum())
        warnings.warn(f"{self.path} ({name}): {n_nan} NaN and {n_inf} infinite values",
                      NonFiniteWeightsWarning, stacklevel=3)

    def raw_chunks(self, stored_name: str, chunk_bytes: int = 1 << 24) -> Iterator[memoryview]:
        """The stored bytes of one stored tensor, in chunks (counted in ``bytes_read``)."""
        raise NotImplementedError  # each reader overrides

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Release memory maps and file handles."""
        self._sources.clear()

    def __enter__(self) -> "WeightFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path} ({len(self.tensors)} tensors, {self.format})>"


def chunked(buffer: np.ndarray, chunk_bytes: int) -> Iterator[memoryview]:
    """Split a 1-D uint8 buffer (often a memory map) into memoryviews of at most ``chunk_bytes``."""
    flat = buffer.reshape(-1).view(np.uint8)
    for start in range(0, flat.size, chunk_bytes):
        yield memoryview(np.ascontiguousarray(flat[start:start + chunk_bytes]))
