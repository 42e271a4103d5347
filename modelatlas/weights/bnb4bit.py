"""bitsandbytes 4-bit weights (NF4 / FP4, ``Linear4bit`` / ``Params4bit``) read row by row.

What ``QuantState.as_dict(packed=True)`` writes beside a weight ``P.weight`` (bitsandbytes
``functional.py``; names relative to ``P.weight``):

- ``P.weight``: the 4-bit codes of the *flattened* weight, two per byte, element ``2k`` in the high
  nibble and ``2k + 1`` in the low one (``packed = q[::2] << 4 | q[1::2]``), stored ``[(n + 1) // 2,
  1]`` as uint8 (or another ``quant_storage`` dtype holding the same bytes);
- ``.absmax``: float32, one per block of ``blocksize`` consecutive flattened elements (the last
  block may be short); with double quantisation (``compress_statistics``) uint8 codes instead;
- ``.quant_map``: the 16-value code book (NF4 or FP4, already divided by its largest value);
- ``.quant_state.bitsandbytes__nf4`` / ``__fp4``: uint8 bytes of a JSON object with ``quant_type``,
  ``blocksize``, ``dtype`` and the original ``shape`` (plus ``nested_blocksize``, ``nested_dtype``
  and ``nested_offset`` when nested);
- nested only: ``.nested_absmax`` (float32, one per ``nested_blocksize`` absmax codes) and
  ``.nested_quant_map`` (the 256-value dynamic map).

``W[e] = quant_map[code[e]] · absmax[e // blocksize]`` rounded to ``dtype``, where for nested
states ``absmax[b] = nested_quant_map[absmax_code[b]] · nested_absmax[b // nested_blocksize] +
nested_offset`` (``dequantize_4bit`` / ``dequantize_blockwise``). Blocks run along the flattened
tensor, so a row's elements, codes and block scales are gathered by index: only the bytes of the
rows asked for are read.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from modelatlas.errors import InputError
from modelatlas.strict_json import loads_strict
from modelatlas.weights.tensors import ArrayRows

#: Suffixes (after ``P.weight``) of the tensors a bitsandbytes 4-bit weight is stored with.
STATE_PREFIX = ".quant_state.bitsandbytes__"
QUANT_TYPES = ("nf4", "fp4")
COMPANIONS = (".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map") + tuple(
    STATE_PREFIX + t for t in QUANT_TYPES)
#: ``dtype`` of the quant state (``str(torch.dtype)``, with or without ``torch.``) -> numpy type.
DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def _flat(rows: ArrayRows) -> ArrayRows:
    """A stored tensor as one byte per row (any storage dtype: bitsandbytes views it as uint8)."""
    return ArrayRows(rows.array.reshape(-1).view(np.uint8).reshape(-1, 1), rows._count)


def _column(rows: ArrayRows) -> ArrayRows:
    """A stored 1-D tensor as one value per row, so that blocks are gathered by index."""
    return ArrayRows(rows.array.reshape(-1, 1), rows._count)


def parse_quant_state(raw: np.ndarray, *, path: str, name: str) -> dict:
    """The JSON object stored as uint8 bytes in ``.quant_state.bitsandbytes__*`` (never evaluated).

    Raises
    ------
    InputError
        Not UTF-8 JSON, not an object, or a field of the wrong type.
    """
    state = loads_strict(np.asarray(raw, np.uint8).tobytes(), path=path, where=name,
                         what="bitsandbytes quant state")
    if not isinstance(state, dict):
        raise InputError("bitsandbytes quant state is not a JSON object", path=path, where=name)

    def positive_int(key: str) -> int:
        value = state.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise InputError(f"bitsandbytes quant state {key}={value!r} is not a positive integer",
                             path=path, where=name)
        return value

    shape = state.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise InputError(f"bitsandbytes quant state shape={shape!r} is not a list of sizes", path=path, where=name)
    dtype = str(state.get("dtype", "")).removeprefix("torch.")
    if dtype not in DTYPES:
        raise InputError(f"bitsandbytes quant state dtype={state.get('dtype')!r} is not one of "
                         f"{', '.join(DTYPES)}", path=path, where=name)
    if state.get("quant_type") not in QUANT_TYPES or not name.endswith(STATE_PREFIX + state["quant_type"]):
        raise InputError(f"bitsandbytes quant state quant_type={state.get('quant_type')!r} does not match "
                         "the tensor's name", path=path, where=name)
    out = {"shape": tuple(shape), "blocksize": positive_int("blocksize"), "dtype": DTYPES[dtype],
           "quant_type": state["quant_type"]}
    if "nested_offset" in state:
        offset = state["nested_offset"]
        if not isinstance(offset, (int, float)) or isinstance(offset, bool) or not math.isfinite(offset):
            raise InputError(f"bitsandbytes quant state nested_offset={offset!r} is not a number",
                             path=path, where=name)
        out["nested_offset"] = float(offset)
        out["nested_blocksize"] = positive_int("nested_blocksize")
    return out


class Blockwise4BitRows:
    """Rows of a bitsandbytes NF4 / FP4 weight, dequantised as ``dequantize_4bit`` does.

    Parameters
    ----------
    packed, absmax, quant_map:
        The stored ``P.weight``, ``P.weight.absmax`` and ``P.weight.quant_map``.
    state:
        :func:`parse_quant_state` of ``P.weight.quant_state.bitsandbytes__*``.
    nested_absmax, nested_quant_map:
        With double quantisation (``state`` has ``nested_offset``), the second-level scales and
        code book; ``absmax`` then holds uint8 codes.
    path, name:
        For error messages.

    References
    ----------
    Dettmers et al., "QLoRA: Efficient Finetuning of Quantized LLMs" (2023), Sec. 3 (NF4, double
    quantisation); bitsandbytes ``functional.quantize_4bit`` / ``dequantize_4bit``.
    """

    def __init__(self, packed: ArrayRows, absmax: ArrayRows, quant_map: ArrayRows, state: dict,
                 nested_absmax: ArrayRows | None = None, nested_quant_map: ArrayRows | None = None, *,
                 path: str = "", name: str = ""):
        self.shape, self.blocksize, self.dtype = state["shape"], state["blocksize"], state["dtype"]
        self.quant_type = state["quant_type"]
        self.offset = state.get("nested_offset")
        n = math.prod(self.shape)
        self.n_rows = self.shape[0] if self.shape else 1
        self.n_cols = n // self.n_rows if self.n_rows else 0
        self.packed, self.absmax = _flat(packed), _column(absmax)
        n_blocks = -(-n // self.blocksize)

        def fail(message: str) -> InputError:
            return InputError(message, path=path, where=name)

        if self.packed.n_rows < (n + 1) // 2:
            raise fail(f"{self.packed.n_rows} packed bytes cannot hold {n} 4-bit values of shape {list(self.shape)}")
        if self.absmax.n_rows != n_blocks:
            raise fail(f"absmax has {self.absmax.n_rows} values, expected {n_blocks} blocks of {self.blocksize}")
        self.code = np.asarray(quant_map.full(), np.float32).reshape(-1)
        if self.code.size != 16:
            raise fail(f"quant_map has {self.code.size} values, a 4-bit code book has 16")
        nested = (nested_absmax, nested_quant_map, self.offset)
        if any(x is None for x in nested) != all(x is None for x in nested):
            raise fail("double quantisation needs nested_absmax, nested_quant_map and nested_offset together")
        self.nested_absmax = self.nested_code = None
        if self.offset is not None:
            if absmax.array.dtype != np.uint8:
                raise fail(f"nested absmax codes must be uint8, not {absmax.array.dtype}")
            self.nested_absmax, self.nested_blocksize = _column(nested_absmax), state["nested_blocksize"]
            self.nested_code = np.asarray(nested_quant_map.full(), np.float32).reshape(-1)
            if self.nested_code.size != 256:
                raise fail(f"nested_quant_map has {self.nested_code.size} values, uint8 codes need 256")
            if self.nested_absmax.n_rows != -(-n_blocks // self.nested_blocksize):
                raise fail(f"nested_absmax has {self.nested_absmax.n_rows} values for {n_blocks} absmax codes "
                           f"in blocks of {self.nested_blocksize}")

    def _block_scales(self, absmax: np.ndarray, outer: np.ndarray | None) -> np.ndarray:
        """float32 absmax of blocks from their stored values (and, nested, their outer scales)."""
        if self.offset is None:
            return absmax.astype(np.float32)
        return self.nested_code[absmax] * outer.astype(np.float32) + np.float32(self.offset)

    def _values(self, codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
        # bitsandbytes multiplies in float32, then returns the quant state's dtype
        return (self.code[codes] * scales).astype(self.dtype).astype(np.float32)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        elements = (idx[:, None] * self.n_cols + np.arange(self.n_cols)).reshape(-1)
        packed = self.packed.rows(elements // 2).reshape(-1)
        codes = np.where(elements % 2 == 0, packed >> 4, packed & 0x0F)  # even elements: high nibble
        blocks = elements // self.blocksize
        outer = None if self.offset is None else self.nested_absmax.rows(blocks // self.nested_blocksize)
        scales = self._block_scales(self.absmax.rows(blocks).reshape(-1),
                                    None if outer is None else outer.reshape(-1))
        return self._values(codes, scales).reshape(idx.size, self.n_cols)

    def full(self) -> np.ndarray:
        n = self.n_rows * self.n_cols
        packed = self.packed.full().reshape(-1)
        codes = np.empty(2 * packed.size, np.uint8)
        codes[0::2], codes[1::2] = packed >> 4, packed & 0x0F
        absmax = self.absmax.full().reshape(-1)
        outer = None if self.offset is None else np.repeat(self.nested_absmax.full().reshape(-1),
                                                           self.nested_blocksize)[: absmax.size]
        scales = np.repeat(self._block_scales(absmax, outer), self.blocksize)[:n]
        return self._values(codes[:n], scales).reshape(self.n_rows, self.n_cols)
