"""Bit-identical layers as lineage evidence: a frozen layer is inherited, never re-invented.

Partial fine-tuning (a linear probe, the last block only, everything but the embedding) leaves the
other layers of the child **bit-identical** to its parent's, and an adapter leaves every layer it
does not adapt untouched. Training a layer, however little, changes its values; no training run
lands exactly on another model's values. So each distinct value of a layer arises once, and the
models that share it are a connected part of the lineage: the model where it arose and those of its
descendants that kept it frozen — a character without homoplasy, in the language of perfect
phylogenies (Felsenstein, *Inferring Phylogenies*, 2004, the chapter "Compatibility").

The consequence ``auto`` uses (rule ``frozen``, docs/chart.md): when a layer of model ``y`` is
identical to that layer of an earlier model ``q`` and differs from candidate ``x``'s, ``x`` is not
``y``'s parent. Had ``y`` descended from ``x`` it would hold ``x``'s values there (frozen) or new
ones (trained) — not ``q``'s. The typical case is two siblings of one partial fine-tuning recipe:
the later one is nearest its sibling, but shares its frozen layers with the parent, not with the
sibling, whose own training changed them. Measured on the four zoo families (docs/chart.md,
"Fans and siblings"): a child never shares a layer with its grandparent that its parent changed,
a sibling does in 6–24% of pairs.

"Identical" is judged once both models are rounded to the coarser of their storage dtypes, so a
frozen layer of an fp32 parent saved in bf16 is still unchanged (:mod:`modelatlas.chart.low_rank`
reads the storage dtype off the values). The one case the rule gets wrong is a descendant of ``y``
uploaded before ``y`` that kept the layer ``y`` trained (a child uploaded before its parent); it is
then a witness against ``y``'s true parent. Only earlier models are witnesses, which keeps that to
children uploaded first. The argument also fails for deterministic transforms: quantising one
layer twice with one scheme gives the same values, so quantised models are exempt (``auto``), and
two QLoRA-like children of one base (trained against it quantised, docs/zoo.md) share their
untargeted layers with each other but not with the base.

A shared layer also says which way the lineage runs when the two models are stored in different
dtypes (:func:`copy_directions`): a copy never holds more significant bits than its source, and a
model that holds a layer at fewer bits than its own dtype's copied it. ``auto`` uses that to root
the spanning trees it orders models by without upload times (:mod:`modelatlas.chart.rooting`).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from modelatlas.chart.types import LayerBlock

#: Storage dtypes by significant bits (implicit bit included), as :func:`low_rank.significant_bits` reads them.
_DTYPES = {8: ml_dtypes.bfloat16, 11: np.float16}


def _rounded(values: np.ndarray, bits: int) -> np.ndarray:
    """``values`` as stored with ``bits`` significant bits (unchanged for fp32)."""
    v = np.asarray(values, np.float32)
    dtype = _DTYPES.get(int(bits))
    if dtype is None:
        return v
    with np.errstate(over="ignore", invalid="ignore"):
        return v.astype(dtype).astype(np.float32)


def identical_layers(x: np.ndarray, cands: np.ndarray, layers: list[LayerBlock], bits: np.ndarray) -> np.ndarray:
    """Which layers of each candidate equal the model's, both rounded to the coarser storage dtype.

    Parameters
    ----------
    x:
        The model's fingerprint (``d`` values).
    cands:
        Candidates' fingerprints, ``k x d``.
    layers:
        Fingerprint layout (no layers: nothing to compare).
    bits:
        Per candidate, the significant bits to compare at (the coarser of the two models' storage
        dtypes: 8 bf16, 11 fp16, 24 fp32).

    Returns
    -------
    numpy.ndarray
        ``k x L`` booleans.
    """
    cands = np.atleast_2d(np.asarray(cands))
    out = np.zeros((len(cands), len(layers)), bool)
    bits = np.asarray(bits, np.int64)
    for b in np.unique(bits).tolist():
        rows = np.flatnonzero(bits == b)
        equal = _rounded(cands[rows], b) == _rounded(x, b)[None]
        for j, blk in enumerate(layers):
            out[rows, j] = equal[:, blk.offset:blk.offset + blk.size].all(axis=1)
    return out


def frozen_exclusions(x: np.ndarray, cands: np.ndarray, layers: list[LayerBlock], bits: np.ndarray,
                      witness: np.ndarray | None = None) -> np.ndarray:
    """Candidates that cannot be the model's parent by the frozen-layer argument (module docstring).

    Candidate ``j`` is excluded when some layer of the model equals that layer of a witness
    ``q != j`` and differs from ``j``'s.

    Parameters
    ----------
    x, cands, layers, bits:
        As for :func:`identical_layers`.
    witness:
        Boolean mask over the candidates that may witness (models earlier than the model in the
        processing order); default: all.

    Returns
    -------
    numpy.ndarray
        Boolean mask over the candidates.
    """
    same = identical_layers(x, cands, layers, bits)
    w = np.ones(len(same), bool) if witness is None else np.asarray(witness, bool)
    shared = same & w[:, None]  # layers the model shares with each witness
    witnesses_per_layer = shared.sum(axis=0)
    # a witness other than j shares the layer: all witnesses, minus j itself when j is one
    other = witnesses_per_layer[None, :] - shared.astype(np.int64) > 0
    return (other & ~same).any(axis=1)


#: A layer whose values all fit this many significant bits (constants, ones and zeros at
#: initialisation) carries no trace of the dtype it was stored in.
TRIVIAL_BITS = 4


def layer_precision(v: np.ndarray, layers: list[LayerBlock]) -> np.ndarray:
    """Per layer, the significant bits of the coarsest storage dtype that holds its values exactly
    (8 bf16, 11 fp16, 24 fp32; :func:`low_rank.significant_bits`), 0 for a layer whose values fit
    :data:`TRIVIAL_BITS` significant bits.

    A model stores every layer at its own dtype's precision, except layers it copied unchanged from
    a model stored more coarsely: an fp32 child keeps its bf16 parent's frozen layers at 8 bits.
    """
    from modelatlas.chart.low_rank import significant_bits

    x = np.asarray(v, np.float32)
    out = np.zeros(len(layers), np.int64)
    for j, b in enumerate(layers):
        values = x[b.offset:b.offset + b.size]
        mantissa, _ = np.frexp(values)
        scale = 2.0 ** TRIVIAL_BITS
        if not np.array_equal(np.round(mantissa * scale) / scale, mantissa):
            out[j] = significant_bits(values)
    return out


def copy_directions(vectors: np.ndarray, a: np.ndarray, b: np.ndarray, layers: list[LayerBlock]) -> np.ndarray:
    """For pairs of models, which of the two is upstream, read off a layer they share stored at
    different precisions.

    When ``a`` and ``b`` hold one layer identically (once both are rounded to the coarser of their
    storage dtypes: :func:`identical_layers`), one copied it from the other, or both from a common
    ancestor, frozen. Two consequences, neither with a threshold (precisions are the storage
    dtypes'):

    * **a copy never holds more significant bits than its source**: when ``b``'s copy is finer than
      ``a``'s (an fp32 parent's layer, and its bf16 child's rounding of it), ``b`` does not descend
      from ``a`` — its values cannot have come from ``a``'s coarser ones, and had it trained the
      layer it would not land within ``a``'s rounding of it;
    * **a copier's source stores the layer natively**: when ``a`` holds the layer at fewer bits
      than its own dtype's (an fp32 child of a bf16 parent keeps the frozen layer at 8 bits), ``a``
      did not train it but copied it from a model stored at that precision; when ``b`` is such a
      model (the layer at ``b``'s own precision), ``b`` is the likeliest source. This is weaker:
      the source may be another model (a bf16 ancestor of ``a`` and of a bf16 child of ``a``).

    Parameters
    ----------
    vectors:
        Fingerprints (raw values), one row per model.
    a, b:
        ``k`` model indices each: the pairs ``a[i], b[i]``.
    layers:
        Fingerprint layout.

    Returns
    -------
    numpy.ndarray
        ``k x 2`` integers, one column per consequence above: ``+1`` when it makes ``b`` the
        upstream model (in a tree edge ``a - b``, ``b`` is the parent), ``-1`` when it makes ``a``
        upstream, ``0`` without evidence (or with evidence both ways).
    """
    from modelatlas.chart.low_rank import significant_bits

    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    out = np.zeros((len(a), 2), np.int64)
    storage: dict[int, int] = {}
    precision: dict[int, np.ndarray] = {}
    for r, (i, j) in enumerate(zip(a.tolist(), b.tolist())):
        for k in (i, j):
            if k not in storage:
                storage[k] = significant_bits(vectors[k])
                precision[k] = layer_precision(vectors[k], layers)
        sa, sb = storage[i], storage[j]
        same = identical_layers(vectors[i], vectors[j][None], layers, np.array([min(sa, sb)]))[0]
        if not same.any():
            continue
        pa, pb = precision[i][same], precision[j][same]
        ok = (pa > 0) & (pb > 0)
        out[r, 0] = int((ok & (pb > pa)).any()) - int((ok & (pa > pb)).any())
        a_copied_from_b = ok & (pa < sa) & (pa == pb) & (pb == sb)
        b_copied_from_a = ok & (pb < sb) & (pa == pb) & (pa == sa)
        out[r, 1] = int(a_copied_from_b.any()) - int(b_copied_from_a.any())
    return out
