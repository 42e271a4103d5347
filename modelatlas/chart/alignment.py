"""Neuron alignment: are two models of one architecture related at all?

Training moves weights by any amount, so how far a model is from another says little about
whether it descends from it (a long LoRA run or a high learning rate put true parents at relative
distance 0.6–0.8; docs/chart.md, "auto"). What training does not do is permute neurons: row ``i``
of a fine-tuned weight matrix still corresponds to row ``i`` of its parent's, while two models
initialised independently share no row correspondence at all. The fingerprint samples the same rows
of every model of an architecture, so for a candidate pair we compare the cosine of each sampled
row with *its own* row in the other model (the diagonal) against its cosine with *other* rows (a
few cyclic shifts, the null: for unrelated models diagonal and shifted pairs are exchangeable).

The result is a z statistic (Welch's t of diagonal against shifted cosines, pooled over layers;
rows are normalised once per model, :func:`unit_rows`):
near 0 for unrelated models whatever their distance, tens to hundreds for relatives however far
training moved them. The threshold is a significance level, not a value read off any zoo.
"""

from __future__ import annotations

import numpy as np

from modelatlas.chart.types import LayerBlock

#: Cyclic row shifts used as the null (unrelated row pairs).
SHIFTS = (1, 2, 3)
#: Rows per layer the statistic uses (the first ones; a few dozen already give z in the tens).
MAX_ROWS = 48


def _tested(layers: list[LayerBlock]) -> list[LayerBlock]:
    """The part of each testable layer the statistic reads: its first ``MAX_ROWS`` sampled rows."""
    return [LayerBlock(b.name, b.offset, min(b.rows, MAX_ROWS), b.cols) for b in layers
            if b.rows > max(SHIFTS) and b.cols >= 2]


def unit_rows(vectors: np.ndarray, layers: list[LayerBlock]) -> np.ndarray:
    """The rows :func:`alignment_z` reads, centred and scaled to unit norm, one flat vector per model.

    Computed once per model and cached by callers; a row without variation becomes zeros.
    """
    v = np.atleast_2d(np.asarray(vectors, np.float64))
    parts = []
    for b in _tested(layers):
        m = v[:, b.offset:b.offset + b.size].reshape(len(v), -1, b.cols)[:, :b.rows]
        m = m - m.mean(axis=-1, keepdims=True)
        norm = np.linalg.norm(m, axis=-1, keepdims=True)
        parts.append((m / np.where(norm > 0, norm, 1.0)).reshape(len(v), -1))
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(v), 0))


def alignment_z(x_units: np.ndarray, candidate_units: np.ndarray, layers: list[LayerBlock]) -> np.ndarray:
    """Alignment statistic of one model against each candidate.

    Parameters
    ----------
    x_units:
        The model's :func:`unit_rows`, shape ``(m,)``.
    candidate_units:
        The candidates' :func:`unit_rows`, shape ``(k, m)``.
    layers:
        The fingerprint layout the rows were taken with.

    Returns
    -------
    numpy.ndarray
        ``(k,)`` z statistics; ``nan`` for every candidate when no layer can be tested (fewer than
        ``max(SHIFTS) + 1`` sampled rows, or rows of one value).
    """
    cands = np.atleast_2d(candidate_units)
    x = np.asarray(x_units)
    diag, null = [], []
    start = 0
    for b in _tested(layers):
        size = b.rows * b.cols
        ux = x[start:start + size].reshape(b.rows, b.cols)
        uc = cands[:, start:start + size].reshape(len(cands), b.rows, b.cols)
        start += size
        diag.append(np.einsum("rc,krc->kr", ux, uc))
        null += [np.einsum("rc,krc->kr", np.roll(ux, -s, axis=0), uc) for s in SHIFTS]
    if not diag:
        return np.full(len(cands), np.nan)
    d, o = np.concatenate(diag, axis=1), np.concatenate(null, axis=1)
    se = np.sqrt(d.var(axis=1) / d.shape[1] + o.var(axis=1) / o.shape[1])
    return (d.mean(axis=1) - o.mean(axis=1)) / np.maximum(se, 1e-12)


def alignment_testable(layers: list[LayerBlock]) -> bool:
    """Whether :func:`alignment_z` can test fingerprints of this layout."""
    return bool(_tested(layers))
