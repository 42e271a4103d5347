"""Tensors matched by shape and values against a relative, where names say nothing.

Exports rename, transpose, fuse, split, reorder and fold tensors. When a model's canonical names
(``docs/weights.md``, "Canonical tensors") still leave tensors without a counterpart in a candidate
parent, :func:`match_by_value` looks for the parent tensor(s) each one holds, trying, in order:

- ``same``: equal shape and values (a rename);
- ``transpose``: the 2-D transpose (a ``[in, out]`` weight the graph did not reveal);
- ``gates``: the same row blocks in another order (recurrent gates: GRU ``r, z, n`` vs ``z, r, n``,
  LSTM ``i, f, g, o`` vs ``i, o, f, c``; 2, 3 or 4 equal blocks);
- ``fused``: consecutive row blocks that are several parent tensors of the same width (a fused
  QKV projection of separate query, key and value weights);
- ``split``: a row block of one wider parent tensor (the reverse);
- ``scaled``: a scalar multiple (an attention scale folded into the query projection);
- ``row``: one row of a parent matrix (a constant the exporter folded out of an embedding: BERT's
  token-type row 0 added to every position becomes ``onnx::Add_N``);
- ``folded``: the first rows of one parent tensor plus one row of another, broadcast (position
  embeddings with the token-type embedding folded in as one constant).

Values are compared by relative Frobenius error ``||child - f(parent)|| / ||f(parent)||`` against
``tolerance`` (0.2 by default: int8 and 4-bit GGUF round-trips stay far below it, unrelated tensors
of the same shape sit near √2). Every tensor is read whole, so this is for models whose names failed,
not for screening a hub. :func:`apply_value_match` exposes the child under the parent's names.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from modelatlas.weights.signature import signature
from modelatlas.weights.tensors import ArrayRows, FloatRows, TensorInfo
from modelatlas.weights.weightfile import WeightFile

TOLERANCE = 0.2


@dataclass(frozen=True)
class ValueMatch:
    """How one child tensor holds parent tensors.

    Attributes
    ----------
    child:
        The child tensor's name.
    parents:
        The parent tensor(s), in the child's row order for ``fused``.
    transform:
        ``same``, ``transpose``, ``gates``, ``fused``, ``split``, ``scaled``, ``row`` or ``folded``.
    error:
        Relative Frobenius error of the match.
    detail:
        The gate order, the row offset of a split, the scale ...
    """

    child: str
    parents: tuple[str, ...]
    transform: str
    error: float
    detail: str = ""


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    denom = float(np.linalg.norm(b))
    return float(np.linalg.norm(a - b)) / denom if denom > 0 else (0.0 if not a.any() else np.inf)


def _as2d(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1) if x.ndim else x.reshape(1, 1)


def match_tensor(name: str, child: np.ndarray, parent: dict[str, np.ndarray], tolerance: float = TOLERANCE
                 ) -> ValueMatch | None:
    """The best :class:`ValueMatch` of one child tensor among ``parent``'s tensors (or ``None``)."""
    best: ValueMatch | None = None

    def offer(parents, transform, err, detail=""):
        nonlocal best
        if err <= tolerance and (best is None or err < best.error - 1e-12):
            best = ValueMatch(name, tuple(parents), transform, float(err), detail)

    c2 = _as2d(child)
    same_shape = [p for p, v in parent.items() if v.shape == child.shape]
    for p in same_shape:
        offer([p], "same", _rel(child, parent[p]))
    if best is not None and best.error < 1e-6:
        return best
    if child.ndim == 2:
        for p, v in parent.items():
            if v.ndim == 2 and v.shape == child.shape[::-1]:
                offer([p], "transpose", _rel(child, v.T))
    for p in same_shape:
        rows = c2.shape[0]
        for k in (2, 3, 4):
            if rows % k or rows < k:
                continue
            blocks = _as2d(parent[p]).reshape(k, rows // k, -1)
            for order in itertools.permutations(range(k)):
                if order != tuple(range(k)):
                    offer([p], "gates", _rel(c2, blocks[list(order)].reshape(c2.shape)), ",".join(map(str, order)))
        scale = float((c2 * _as2d(parent[p])).sum() / max(float((_as2d(parent[p]) ** 2).sum()), 1e-30))
        if abs(scale - 1.0) > 1e-3 and scale != 0:
            offer([p], "scaled", _rel(c2, scale * _as2d(parent[p])), f"{scale:.6g}")
    same_cols = {p: _as2d(v) for p, v in parent.items() if _as2d(v).shape[1] == c2.shape[1] and v.ndim == child.ndim}
    fused, start, err2, norm2 = [], 0, 0.0, 0.0
    while start < c2.shape[0]:
        block = None
        for p, v in same_cols.items():
            if p in fused or start + v.shape[0] > c2.shape[0] or v.shape[0] == c2.shape[0]:
                continue
            e = _rel(c2[start:start + v.shape[0]], v)
            if e <= tolerance and (block is None or e < block[1]):
                block = (p, e)
        if block is None:
            break
        v = same_cols[block[0]]
        err2 += float(np.linalg.norm(c2[start:start + v.shape[0]] - v)) ** 2
        norm2 += float(np.linalg.norm(v)) ** 2
        fused.append(block[0])
        start += v.shape[0]
    if len(fused) > 1 and start == c2.shape[0]:
        offer(fused, "fused", (err2 ** 0.5) / max(norm2 ** 0.5, 1e-30))
    for p, v in same_cols.items():
        if v.shape[0] > c2.shape[0]:
            for off in range(0, v.shape[0] - c2.shape[0] + 1, c2.shape[0]):
                offer([p], "split", _rel(c2, v[off:off + c2.shape[0]]), f"rows {off}:{off + c2.shape[0]}")
    if child.ndim == 1:
        for p, v in parent.items():
            if v.ndim == 2 and v.shape[1] == child.shape[0]:
                errs = np.linalg.norm(v - child, axis=1) / np.maximum(np.linalg.norm(v, axis=1), 1e-30)
                r = int(np.argmin(errs))
                offer([p], "row", float(errs[r]), f"row {r}")
    if child.ndim == 2 and best is None:
        for p, v in same_cols.items():
            if v.ndim != 2 or v.shape[0] <= c2.shape[0]:
                continue
            rest = c2 - v[: c2.shape[0]]
            row = rest.mean(0)
            if _rel(rest, np.broadcast_to(row, rest.shape)) > tolerance:
                continue
            for q, w in same_cols.items():
                if q == p or w.ndim != 2:
                    continue
                errs = np.linalg.norm(w - row, axis=1) / np.maximum(np.linalg.norm(w, axis=1), 1e-30)
                r = int(np.argmin(errs))
                offer([p, q], "folded", _rel(c2, v[: c2.shape[0]] + w[r]), f"rows 0:{c2.shape[0]} + row {r}")
    return best


def match_by_value(child: WeightFile, parent: WeightFile, tolerance: float = TOLERANCE) -> list[ValueMatch]:
    """Match the child's parameters that have no parent tensor of the same normalised name and shape.

    Parameters
    ----------
    child, parent:
        Opened models (read whole for the tensors concerned).
    tolerance:
        Largest relative Frobenius error of a match.

    Returns
    -------
    list of ValueMatch
        One per matched child tensor; tensors without a match are left out.
    """
    mine, theirs = signature(child), signature(parent)  # compare on normalised names
    open_child = [mine.file_names[n] for n, shape in mine.entries if theirs.shapes.get(n) != shape]
    claimed = {theirs.file_names[n] for n, shape in mine.entries if theirs.shapes.get(n) == shape}
    pool = {f: parent.read(f) for f in theirs.file_names.values() if f not in claimed}
    out = []
    for name in open_child:
        found = match_tensor(name, child.read(name), pool, tolerance)
        if found is not None:
            out.append(found)
    return out


def apply_value_match(wf: WeightFile, matches: list[ValueMatch], parent: WeightFile) -> None:
    """Expose ``wf``'s matched tensors under the parent's names, in the parent's layout.

    ``same`` / ``transpose`` / ``gates`` / ``scaled`` become the parent tensor; ``fused`` tensors
    are split into the parent tensors they hold; ``split`` and ``folded`` keep their own name (they
    hold only part of a parent tensor, and so do ``row`` matches). Marked ``value`` in
    ``wf.name_sources``; a part keeps its name and is marked ``value-part``.
    """
    for m in matches:
        if m.transform in ("split", "folded", "row"):
            wf.name_sources[m.child] = "value-part"
            continue
        if any(p in wf.tensors for p in m.parents):
            continue
        values = _as2d(wf.read(m.child))
        if m.transform == "transpose":
            pieces = {m.parents[0]: values.reshape(parent.info(m.parents[0]).shape[::-1]).T}
        elif m.transform == "gates":
            order = [int(x) for x in m.detail.split(",")]
            k = len(order)
            blocks = values.reshape(k, values.shape[0] // k, -1)
            back = np.empty_like(blocks)
            back[order] = blocks  # child block i is parent block order[i]
            pieces = {m.parents[0]: back.reshape(values.shape)}
        elif m.transform == "fused":
            pieces, start = {}, 0
            for p in m.parents:
                rows = parent.info(p).rows
                pieces[p] = values[start:start + rows]
                start += rows
        else:  # same, scaled: the child's values under the parent's name
            pieces = {m.parents[0]: values}
        del wf.tensors[m.child]
        wf._sources.pop(m.child, None)
        for p, arr in pieces.items():
            shape = parent.info(p).shape
            arr = np.ascontiguousarray(arr, dtype=np.float32).reshape(shape)
            wf._add(TensorInfo(p, shape, "F32"), FloatRows(ArrayRows(_as2d(arr))))
            wf.name_sources[p] = "value"
