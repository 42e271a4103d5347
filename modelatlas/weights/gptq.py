"""GPTQ and AWQ packed weights, dequantised into PyTorch's ``[out, in]`` layout.

Layouts (as written by AutoGPTQ / transformers-optimum and AutoAWQ's GEMM kernels):

- **GPTQ** (``qweight``, ``qzeros``, ``scales``, ``g_idx``): ``qweight`` int32 ``[in · bits / 32, out]``,
  input rows packed as one little-endian bit stream per column: for 2/4/8 bits ``32 / bits`` rows per
  word, row ``p · r + k`` at bit ``bits · k``; for 3 bits 32 rows per three words, row ``32 g + k``
  at stream bit ``3k`` (rows 10 and 21 straddle two words); ``qzeros`` int32
  ``[groups, out · bits / 32]`` packed the same way along output columns and stored minus one (the
  "v1" checkpoint format); ``scales`` ``[groups, out]``; ``g_idx`` ``[in]`` the group of each
  input row. ``W[i, o] = scales[g_idx[i], o] · (q[i, o] − (zeros[g_idx[i], o] + 1))``.
- **AWQ** (the same names without ``g_idx``): ``qweight`` int32 ``[in, out · bits / 32]`` packed
  along output columns in the interleaved order ``0, 2, 4, 6, 1, 3, 5, 7`` (4-bit); ``qzeros``
  ``[in / group, out · bits / 32]`` likewise, no offset; ``scales`` ``[in / group, out]``.
  ``W[i, o] = scales[i // group, o] · (q[i, o] − zeros[i // group, o])``.

Both store ``W`` as ``[in, out]``: a row of the PyTorch weight is a column of ``qweight``, so
sampled rows still read every word of ``qweight`` (counted in full in ``bytes_read``).
"""

from __future__ import annotations

import numpy as np

from modelatlas.errors import InputError
from modelatlas.weights.tensors import ArrayRows

#: AutoAWQ's 4-bit interleaving: slot ``i`` of a word holds column ``AWQ_ORDER[i]`` of its eight.
AWQ_ORDER = np.array([0, 2, 4, 6, 1, 3, 5, 7])


def _unpack(words: np.ndarray, bits: int, axis: int) -> np.ndarray:
    """Unsigned ``bits``-bit values of int32 words packed as one little-endian bit stream along ``axis``.

    ``lcm(bits, 32) / 32`` consecutive words hold ``lcm(bits, 32) / bits`` values, value ``k`` at
    stream bits ``bits · k ..``: one word per 32 / bits values for 2/4/8 bits; three words per 32
    values for 3 bits, values 10 and 21 crossing a word boundary (AutoGPTQ's 3-bit ``pack``).
    """
    span = np.lcm(bits, 32) // 32
    words = np.moveaxis(words.astype(np.uint32).astype(np.uint64), axis, -1)
    if words.shape[-1] % span:
        raise ValueError(f"{words.shape[-1]} words do not hold whole groups of {span}")
    groups = words.reshape(*words.shape[:-1], -1, span)
    start = np.arange(span * 32 // bits) * bits
    low, shift = start // 32, (start % 32).astype(np.uint64)
    high = np.minimum(low + 1, span - 1)
    # the next word's bits land above ``32 - shift``; when nothing crosses they are masked away
    values = (groups[..., low] >> shift) | (groups[..., high] << (np.uint64(32) - shift))
    values = (values & np.uint64((1 << bits) - 1)).astype(np.uint32)
    return np.moveaxis(values.reshape(*words.shape[:-1], -1), -1, axis)


def unpack_rows(words: np.ndarray, bits: int) -> np.ndarray:
    """int32 ``[n, m]`` -> ``[n · 32 / bits, m]``, packed along rows (GPTQ ``qweight``)."""
    return _unpack(words, bits, 0)


def unpack_cols(words: np.ndarray, bits: int, order: np.ndarray | None = None) -> np.ndarray:
    """int32 ``[n, m]`` -> ``[n, m · 32 / bits]``, slots in ``order`` within each word when given."""
    values = _unpack(words, bits, 1)
    if order is not None:
        per = 32 // bits
        values = values.reshape(words.shape[0], -1, per)[:, :, np.argsort(order)].reshape(words.shape[0], -1)
    return values


class PackedIntRows:
    """Rows of ``W.T`` for a GPTQ (``g_idx`` given) or AWQ packed weight."""

    def __init__(self, qweight: ArrayRows, qzeros: ArrayRows, scales: ArrayRows, g_idx: ArrayRows | None,
                 *, path: str = "", name: str = ""):
        self.qweight, self.qzeros, self.scales, self.g_idx = qweight, qzeros, scales, g_idx
        words_rows, words_cols = qweight.n_rows, qweight.n_cols
        groups, out = scales.n_rows, scales.n_cols
        if 0 in (words_rows, words_cols, groups, out):
            raise InputError(f"packed weight with an empty dimension: qweight {[words_rows, words_cols]}, "
                             f"scales {[groups, out]}", path=path, where=name)
        self._path, self._name = path, name
        if g_idx is not None:  # GPTQ: packed along in_features
            n_in = g_idx.n_rows * g_idx.n_cols
            if not n_in or (32 * words_rows) % n_in or out != words_cols:
                raise InputError(f"GPTQ qweight {[words_rows, words_cols]} does not fit g_idx of {n_in} rows "
                                 f"and scales {[groups, out]}", path=path, where=name)
            self.bits = 32 * words_rows // n_in
        else:  # AWQ: packed along out_features
            n_in = words_rows
            if out % words_cols or n_in % groups:
                raise InputError(f"AWQ qweight {[words_rows, words_cols]} does not fit scales {[groups, out]}",
                                 path=path, where=name)
            self.bits = 32 * words_cols // out
        if self.bits not in (2, 3, 4, 8) or (g_idx is None and self.bits != 4):
            raise InputError(f"{self.bits}-bit packing is not supported (GPTQ 2/3/4/8-bit, AWQ 4-bit)",
                             path=path, where=name)
        zeros_cols = qzeros.n_cols * 32 // self.bits
        if (qzeros.n_cols * 32) % self.bits or zeros_cols != out or qzeros.n_rows != groups:
            raise InputError(f"qzeros {[qzeros.n_rows, qzeros.n_cols]} does not hold {self.bits}-bit zero points "
                             f"for scales {[groups, out]}", path=path, where=name)
        self.n_rows, self.n_cols = out, n_in

    def _columns(self, cols: np.ndarray | None) -> np.ndarray:
        """``W[:, cols]`` (all columns when None) as float32 ``[in, k]``."""
        words = self.qweight.full()
        zeros_words = self.qzeros.full()
        scales = np.asarray(self.scales.full(), np.float32)
        if self.g_idx is not None:
            q = unpack_rows(words if cols is None else words[:, cols], self.bits)
            zeros = unpack_cols(zeros_words, self.bits).astype(np.float32) + 1
            group = np.asarray(self.g_idx.full()).reshape(-1).astype(np.int64)
            if group.size and (group.min() < 0 or group.max() >= scales.shape[0]):
                raise InputError(f"g_idx holds groups {group.min()}..{group.max()} but scales has "
                                 f"{scales.shape[0]}", path=self._path, where=self._name)
        else:
            q = unpack_cols(words, self.bits, AWQ_ORDER)
            zeros = unpack_cols(zeros_words, self.bits, AWQ_ORDER).astype(np.float32)
            q = q if cols is None else q[:, cols]
            group = np.arange(self.n_cols) // (self.n_cols // scales.shape[0])
        pick = slice(None) if cols is None else cols
        return (q.astype(np.float32) - zeros[:, pick][group]) * scales[:, pick][group]

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self._columns(idx).T)

    def full(self) -> np.ndarray:
        return np.ascontiguousarray(self._columns(None).T)
