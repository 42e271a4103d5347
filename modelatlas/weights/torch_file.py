"""PyTorch ``.bin`` / ``.pt`` / ``.pth`` checkpoints, only through ``torch.load(weights_only=True)``.

A PyTorch checkpoint is a pickle, and unpickling can run arbitrary code. We never unpickle it
ourselves: ``torch.load(..., weights_only=True)`` uses PyTorch's restricted unpickler, which only
rebuilds tensors and plain containers and refuses anything else; such a refusal becomes a clear
error naming the file. Without PyTorch installed these files cannot be read at all. Zip-format
checkpoints are memory-mapped (``mmap=True``) so that sampled rows touch only their pages.
Nested state dicts (``{"state_dict": {...}}``, ``{"model": {...}}``) are flattened with dots.

Before ``torch.load``, a zip archive's members are checked against the bounds of
:mod:`modelatlas.weights.zip_limits` (no memory bomb) and a non-zip file must start like a pickle.
Sparse (and other non-strided) tensors and meta tensors are valid checkpoint entries but have no
rows to sample: they are skipped with a warning that says so (``WeightFile.skipped``).
"""

from __future__ import annotations

import math
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from modelatlas.errors import InputError
from modelatlas.weights.tensors import StoredTensor, TensorInfo
from modelatlas.weights.weightfile import WeightFile, chunked
from modelatlas.weights.zip_limits import check_archive

#: Containers nested deeper than this are not a state dict (refused, never walked recursively).
MAX_NESTING = 64

#: torch dtype name -> our dtype label.
DTYPE_LABELS = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
                "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
                "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2"}


class UnsafeFileError(InputError):
    """A file that would run code when loaded; refused."""


class TorchRows:
    """Rows of a (possibly memory-mapped) torch tensor, as float32 numpy arrays."""

    def __init__(self, tensor, count, mapped: bool):
        shape = tuple(tensor.shape)
        self.tensor = tensor.reshape(shape[0] if shape else 1, math.prod(shape[1:]))
        self.n_rows, self.n_cols = self.tensor.shape
        self._count = count if mapped else None
        self._row_nbytes = self.n_cols * tensor.element_size()

    def _numpy(self, t) -> np.ndarray:
        import torch

        return t.to(torch.float32).numpy()

    def rows(self, idx: np.ndarray) -> np.ndarray:
        import torch

        if self._count:
            self._count(np.unique(idx).size * self._row_nbytes)
        return self._numpy(self.tensor[torch.from_numpy(idx)])

    def full(self) -> np.ndarray:
        if self._count:
            self._count(self.n_rows * self._row_nbytes)
        return self._numpy(self.tensor)


class TorchFile(WeightFile):
    """The tensors of a PyTorch checkpoint, loaded with ``weights_only=True`` (see module docs)."""

    format = "torch"

    def __init__(self, path: str | Path):
        super().__init__(path)
        try:
            import torch
        except ImportError:
            raise InputError("reading PyTorch files needs torch (pip install 'modelatlas[torch]'); "
                             "convert to safetensors otherwise", path=str(self.path)) from None
        mapped = zipfile.is_zipfile(self.path)
        if mapped:
            check_archive(self.path)
        else:
            _check_pickle_start(self.path)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                obj = torch.load(self.path, map_location="cpu", weights_only=True, mmap=mapped)
        except pickle.UnpicklingError as exc:
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            first = next((ln for ln in lines if "Unsupported" in ln or "GLOBAL" in ln),
                         lines[0] if lines else "")[:200]
            raise UnsafeFileError("refused: this pickle asks for more than tensors (it could run code); "
                                  f"modelatlas loads PyTorch files only with weights_only=True ({first})",
                                  path=str(self.path)) from None
        except Exception as exc:  # noqa: BLE001 - any failure of the reader on untrusted bytes
            raise InputError(f"not a readable PyTorch checkpoint ({exc.__class__.__name__}: "
                             f"{str(exc)[:200]})", path=str(self.path)) from None
        if not mapped:
            self._count(self.path.stat().st_size)
        self._tensors = {}
        for name, tensor in _flatten(obj, str(self.path)):
            if tensor.layout != torch.strided or tensor.is_meta:
                kind = "meta" if tensor.is_meta else str(tensor.layout).removeprefix("torch.")
                self._skip(name, f"{kind} tensor of shape {list(tensor.shape)} (only dense tensors with data "
                                 "have rows to sample)")
                continue
            label = DTYPE_LABELS.get(str(tensor.dtype).removeprefix("torch."))
            if label is None:
                raise InputError(f"unsupported tensor dtype {tensor.dtype}", path=str(self.path), where=name)
            shape = tuple(int(d) for d in tensor.shape)
            try:
                rows = TorchRows(tensor, self._count, mapped)
            except RuntimeError as exc:  # e.g. an empty tensor whose other dimensions overflow
                raise InputError(f"cannot view tensor of shape {list(shape)[:8]} as rows ({str(exc)[:200]})",
                                 path=str(self.path), where=name) from None
            self._tensors[name] = tensor
            self.stored[name] = StoredTensor(name, label, shape, tensor.numel() * tensor.element_size())
            self._add(TensorInfo(name, shape, label), rows)
        if not self.tensors:
            skipped = f" ({len(self.skipped)} skipped: {', '.join(self.skipped)[:200]})" if self.skipped else ""
            raise InputError(f"no dense tensors in this checkpoint{skipped}", path=str(self.path))

    def raw_chunks(self, stored_name: str, chunk_bytes: int = 1 << 24) -> Iterator[memoryview]:
        import torch

        t = self._tensors[stored_name].contiguous().reshape(-1)
        for chunk in chunked(t.view(torch.uint8).numpy(), chunk_bytes):
            self._count(chunk.nbytes)
            yield chunk

    def close(self) -> None:
        super().close()
        self._tensors = {}


def _flatten(obj, path: str):
    """(dotted name, tensor) pairs of nested dicts / lists / tuples, walked without recursion."""
    import torch

    stack = [("", obj, 0)]
    while stack:
        name, item, depth = stack.pop()
        if isinstance(item, torch.Tensor):
            yield name, item
        elif isinstance(item, (dict, list, tuple)):
            if depth >= MAX_NESTING:
                raise InputError(f"containers nested more than {MAX_NESTING} deep (not a state dict)",
                                 path=path, where=name[:120] + "…")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((f"{name}.{key}" if name else str(key), value, depth + 1)
                         for key, value in reversed(list(pairs)))


def _check_pickle_start(path: Path) -> None:
    """A non-zip checkpoint is a pickle; anything else (or a zip cut short) is named as such."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=str(path)) from None
    if head.startswith(b"PK"):
        raise InputError("a damaged or truncated zip archive (its central directory is missing)", path=str(path))
    if not head.startswith(b"\x80"):
        raise InputError("not a PyTorch checkpoint (neither a zip archive nor a pickle)", path=str(path))
