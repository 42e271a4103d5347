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
