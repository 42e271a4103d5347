"""Quantised tensors stored beside their scales: which stored tensors make one logical weight.

Conventions recognised in safetensors files (names relative to the quantised tensor ``X``):

- **int8 / uint8 affine** (compressed-tensors, our zoos, many exporters): ``X`` of dtype I8 or U8 with
  a scale ``X_scale`` / ``X.scale`` / ``X_scales`` / ``X.scales`` and optionally a zero point
  ``X_zero_point`` / ``X.zero_point`` / ``X_zeros`` / ``X.zeros``; ``W = (q - zero) * scale`` with
  the scale per tensor, row, column or group of columns (its shape decides; see ``AffineDequant``).
- **bitsandbytes int8** (``Linear8bitLt``): I8 ``P.weight`` with ``P.SCB`` (per-row absmax):
  ``W = q * SCB / 127``.
- **4-bit packed**: ``X_packed`` / ``X.packed`` of dtype U8, two unsigned values per byte along columns
  (low nibble first), the logical shape in ``X_shape`` / ``X.shape`` (an integer tensor), a scale as
  above and a zero point (default 8, i.e. signed values stored as ``q + 8``). Logical name ``X``.
  A 2-D U8 ``X`` with a scale but **no zero point** is read the same way (logical columns = 2 ×
  stored): unsigned 8-bit codes without a zero point cannot encode signed weights, while packed
  symmetric 4-bit codes (our zoos' ``int4-group``, Q4_0-like) are stored exactly so.

- **GPTQ / AWQ**: ``P.qweight`` + ``P.qzeros`` + ``P.scales`` (+ ``P.g_idx`` for GPTQ) become
  ``P.weight`` (see :mod:`modelatlas.weights.gptq`).

- **bitsandbytes NF4 / FP4** (``Linear4bit``): ``P.weight`` with ``P.weight.absmax``,
  ``P.weight.quant_map``, ``P.weight.quant_state.bitsandbytes__nf4`` / ``__fp4`` (and, double
  quantised, ``P.weight.nested_absmax`` / ``P.weight.nested_quant_map``) becomes ``P.weight`` in its
  original shape (see :mod:`modelatlas.weights.bnb4bit`).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from modelatlas.errors import InputError
from modelatlas.weights.bnb4bit import COMPANIONS as BNB4_COMPANIONS
from modelatlas.weights.bnb4bit import QUANT_TYPES, STATE_PREFIX, Blockwise4BitRows, parse_quant_state
from modelatlas.weights.gptq import PackedIntRows
from modelatlas.weights.safetensors_header import MAX_ARRAY_BYTES
from modelatlas.weights.tensors import (AffineDequant, ArrayRows, FloatRows, QuantInfo, RowSource,
                                        StoredTensor, TensorInfo, Unpacked4Bit)

SCALE_SUFFIXES = ("_scale", ".scale", "_scales", ".scales")
ZERO_SUFFIXES = ("_zero_point", ".zero_point", "_zeros", ".zeros")
SHAPE_SUFFIXES = ("_shape", ".shape")
PACKED_SUFFIXES = ("_packed", ".packed")

def _first(names: set[str], base: str, suffixes: tuple[str, ...]) -> str | None:
    return next((base + s for s in suffixes if base + s in names), None)


def resolve(stored: dict[str, StoredTensor], raw: Callable[[str], ArrayRows], path: str
            ) -> list[tuple[TensorInfo, RowSource]]:
    """Group stored tensors into logical tensors with their row sources.

    Parameters
    ----------
    stored:
        Every stored tensor of the model (all shards).
    raw:
        ``raw(name)`` returns the stored tensor's 2-D :class:`ArrayRows` (memory-mapped).
    path:
        The file, for error messages.

    Returns
    -------
    list of (TensorInfo, source)
    """
    names = set(stored)
    used: set[str] = set()
    out: list[tuple[TensorInfo, RowSource]] = []

    gptq_bases = {n[: -len("qweight")] for n in names if n.endswith("qweight") and stored[n].dtype == "I32"}
    for base in sorted(gptq_bases):
        parts = {p: base + p for p in ("qweight", "qzeros", "scales", "g_idx") if base + p in names}
        used.update(parts.values())
        scheme = "gptq" if "g_idx" in parts else "awq"
        if "qzeros" not in parts or "scales" not in parts:
            raise InputError(f"{scheme} qweight without qzeros and scales beside it", path=path,
                             where=base + "qweight")
        src = PackedIntRows(raw(parts["qweight"]), raw(parts["qzeros"]), raw(parts["scales"]),
                            raw(parts["g_idx"]) if "g_idx" in parts else None, path=path, name=base + "qweight")
        group = src.n_cols // src.scales.n_rows if scheme == "awq" else None
        companions = tuple(parts[p] for p in ("qzeros", "scales", "g_idx") if p in parts)
        out.append((TensorInfo(base + "weight", (src.n_rows, src.n_cols), "I32",
                               QuantInfo(scheme, src.bits, "group", group, companions)), src))

    bnb_owners = {n for n in names if any(n + s in names for s in BNB4_COMPANIONS)}
    for name in sorted(bnb_owners):
        src, parts = _bitsandbytes_4bit(name, names, raw, path)
        used.update(parts + (name,))
        out.append((TensorInfo(name, src.shape, stored[name].dtype,
                               QuantInfo(f"bitsandbytes-{src.quant_type}", 4, "block", src.blocksize, parts)), src))

    for name in sorted(names):
        if name in used:
            continue
        base = next((name[: -len(s)] for s in PACKED_SUFFIXES if name.endswith(s)), None)
        if base is not None and stored[name].dtype == "U8":
            shape_name = _first(names, base, SHAPE_SUFFIXES)
            scale_name = _first(names, base, SCALE_SUFFIXES)
            if shape_name is None or scale_name is None:
                raise InputError(f"4-bit packed tensor needs {base}_shape and {base}_scale beside it",
                                 path=path, where=name)
            shape = _logical_shape(raw(shape_name).full(), path=path, name=shape_name)
            zero_name = _first(names, base, ZERO_SUFFIXES)
            used.update(n for n in (name, shape_name, scale_name, zero_name) if n)
            cols = math.prod(shape[1:])
            if (cols + 1) // 2 * shape[0] != math.prod(stored[name].shape):
                raise InputError(f"packed bytes {stored[name].shape} do not hold shape {list(shape)}",
                                 path=path, where=name)
            packed = raw(name)
            packed = ArrayRows(packed.array.reshape(shape[0], (cols + 1) // 2), packed._count)
            q = Unpacked4Bit(packed, cols)
            zero = raw(zero_name) if zero_name else _Constant(8.0)
            src = AffineDequant(q, raw(scale_name), zero, path=path, name=base)
            companions = tuple(n for n in (scale_name, zero_name, shape_name) if n)
            out.append((TensorInfo(base, shape, "U4", QuantInfo("int4-packed", 4, src.granularity,
                                                               src.group_size, companions)), src))
    # int8 owners first, so that their companions are never listed as tensors of their own
    plans: dict[str, tuple[str, str, str | None, bool]] = {}
    for name in sorted(names - used):
        info = stored[name]
        if info.dtype not in ("I8", "U8"):
            continue
        stem = name[: -len(".weight")] if name.endswith(".weight") else None
        scb = stem + ".SCB" if stem is not None and stem + ".SCB" in names else None
        scale_name = scb or _first(names, name, SCALE_SUFFIXES)
        if scale_name is None:
            continue
        zero_name = None if scb else _first(names, name, ZERO_SUFFIXES)
        plans[name] = (info.dtype, scale_name, zero_name, scb is not None)
        used.update(n for n in (name, scale_name, zero_name) if n)
    for name, (dtype, scale_name, zero_name, is_scb) in plans.items():
        shape = stored[name].shape
        companions = tuple(n for n in (scale_name, zero_name) if n)
        if dtype == "U8" and zero_name is None and len(shape) == 2:
            # unsigned codes without a zero point cannot be signed 8-bit weights: two 4-bit codes
            # per byte (low nibble first), stored as q + 8
            shape = (shape[0], 2 * shape[1])
            src = AffineDequant(Unpacked4Bit(raw(name), shape[1]), raw(scale_name), _Constant(8.0),
                                path=path, name=name)
            out.append((TensorInfo(name, shape, dtype, QuantInfo("int4-packed", 4, src.granularity,
                                                                 src.group_size, companions)), src))
            continue
        src = AffineDequant(raw(name), raw(scale_name), raw(zero_name) if zero_name else None,
                            divisor=127.0 if is_scb else 1.0, path=path, name=name)
        scheme = "bitsandbytes-int8" if is_scb else f"{dtype.lower()}-affine"
        out.append((TensorInfo(name, shape, dtype,
                               QuantInfo(scheme, 8, src.granularity, src.group_size, companions)), src))
    for name in sorted(names - used):
        info = stored[name]
        out.append((TensorInfo(name, info.shape, info.dtype), FloatRows(raw(name))))
    return out


def _logical_shape(values: np.ndarray, *, path: str, name: str) -> tuple[int, ...]:
    """The shape stored in an ``X_shape`` tensor: one or more non-negative integers."""
    values = np.asarray(values).reshape(-1)
    if values.size == 0 or not np.issubdtype(values.dtype, np.integer):
        raise InputError(f"shape tensor holds {values.size} values of dtype {values.dtype}, not the sizes "
                         "of a tensor (one or more integers)", path=path, where=name)
    if (values < 0).any():
        raise InputError(f"shape tensor holds a negative size: {values.tolist()[:8]}", path=path, where=name)
    shape = tuple(int(v) for v in values)
    if math.prod(d for d in shape if d) * 4 > MAX_ARRAY_BYTES:  # read as float32
        raise InputError(f"shape {list(shape)[:8]} is too large for an array, even with 0 elements",
                         path=path, where=name)
    return shape


def _bitsandbytes_4bit(name: str, names: set[str], raw: Callable[[str], ArrayRows], path: str
                       ) -> tuple[Blockwise4BitRows, tuple[str, ...]]:
    """The row source of a bitsandbytes 4-bit weight ``name`` and the stored names it uses."""
    states = [name + STATE_PREFIX + t for t in QUANT_TYPES if name + STATE_PREFIX + t in names]
    if len(states) > 1:
        raise InputError("bitsandbytes 4-bit weight with both an nf4 and an fp4 quant state", path=path, where=name)
    missing = [name + s for s in (".absmax", ".quant_map") if name + s not in names]
    missing += [] if states else [name + STATE_PREFIX + "nf4 (or fp4)"]
    if missing:
        raise InputError(f"bitsandbytes 4-bit weight without {', '.join(missing)} beside it", path=path, where=name)
    state = parse_quant_state(raw(states[0]).full(), path=path, name=states[0])
    nested = {s: raw(name + s) if name + s in names else None for s in (".nested_absmax", ".nested_quant_map")}
    src = Blockwise4BitRows(raw(name), raw(name + ".absmax"), raw(name + ".quant_map"), state,
                            nested[".nested_absmax"], nested[".nested_quant_map"], path=path, name=name)
    parts = tuple(sorted(name + s for s in BNB4_COMPANIONS if name + s in names))
    return src, parts


class _Constant:
    """A one-value source (the default zero point of unsigned packed 4-bit values)."""

    n_rows = n_cols = 1

    def __init__(self, value: float):
        self.value = np.full((1, 1), value, np.float32)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return self.value

    def full(self) -> np.ndarray:
        return self.value
