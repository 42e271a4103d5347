"""Weight quantisation of zoo leaves, stored the way real quantised checkpoints store them.

Two schemes, applied to every 2-D floating ``*.weight`` tensor (linear and embedding matrices, as
real post-training quantisers do); biases, norms and convolution kernels stay float32:

- ``int8-row``: per-row absmax. ``<name>`` int8 ``(out, in)`` and ``<name>.scale`` float32
  ``(out,)`` with ``w ≈ q * scale[:, None]`` (LLM.int8 / ONNX dynamic quantisation style).
- ``int4-group``: symmetric absmax over groups of ``group`` input columns. ``<name>`` uint8
  ``(out, in / 2)`` holds two 4-bit codes per byte (low nibble first, code = q + 8 with
  q ∈ [-8, 7]) and ``<name>.scales`` float32 ``(out, in / group)`` with
  ``w[:, j] ≈ q[:, j] * scales[:, j // group]`` (GPTQ / Q4_0 style, without zero points).

:func:`dequantize` inverts both from the tensor names and dtypes alone.
"""

from __future__ import annotations

import numpy as np

SCHEMES = ("int8-row", "int4-group")
GROUP_SIZE = 32


def _quantizable(name: str, w: np.ndarray) -> bool:
    return name.endswith(".weight") and w.ndim == 2 and w.dtype.kind == "f"


def quantize(state: dict[str, np.ndarray], scheme: str, group: int = GROUP_SIZE) -> dict[str, np.ndarray]:
    """Quantised tensors of ``state`` under ``scheme`` (see the module docstring for the layout).

    For ``int4-group`` the group is ``group`` columns, or the whole row when the row length is not
    a multiple of it (rows of odd length are left in float32).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown quantisation scheme {scheme!r} (expected one of {', '.join(SCHEMES)})")
    out: dict[str, np.ndarray] = {}
    for name, w in state.items():
        if not _quantizable(name, w) or (scheme == "int4-group" and w.shape[1] % 2):
            out[name] = w
            continue
        w = w.astype(np.float32)
        if scheme == "int8-row":
            scale = np.abs(w).max(1) / 127.0
            scale[scale == 0] = 1.0
            out[name] = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
            out[name + ".scale"] = scale.astype(np.float32)
        else:
            g = group if w.shape[1] % group == 0 else w.shape[1]
            blocks = w.reshape(w.shape[0], -1, g)
            scales = np.abs(blocks).max(2) / 7.0
            scales[scales == 0] = 1.0
            codes = (np.clip(np.rint(blocks / scales[..., None]), -8, 7) + 8).astype(np.uint8)
            codes = codes.reshape(w.shape[0], -1)
            out[name] = codes[:, 0::2] | (codes[:, 1::2] << 4)
            out[name + ".scales"] = scales.astype(np.float32)
    return out


def dequantize(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float32 tensors from the output of :func:`quantize` (other tensors pass through)."""
    out: dict[str, np.ndarray] = {}
    for name, t in tensors.items():
        if name.endswith((".scale", ".scales")) and name.rsplit(".", 1)[0] in tensors:
            continue
        if t.dtype == np.int8 and name + ".scale" in tensors:
            out[name] = t.astype(np.float32) * tensors[name + ".scale"][:, None]
        elif t.dtype == np.uint8 and name + ".scales" in tensors:
            scales = tensors[name + ".scales"]
            codes = np.empty((t.shape[0], t.shape[1] * 2), np.int8)
            codes[:, 0::2], codes[:, 1::2] = t & 0x0F, t >> 4
            q = codes.astype(np.float32) - 8.0
            g = q.shape[1] // scales.shape[1]
            out[name] = (q.reshape(q.shape[0], -1, g) * scales[..., None]).reshape(q.shape)
        else:
            out[name] = t
    return out
