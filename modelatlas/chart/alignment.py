"""Neuron alignment: are two models of one architecture related at all?

Training moves weights by any amount, so how far a model is from another says little about
whether it descends from it (a long LoRA run or a high learning rate put true parents at relative
distance 0.6–0.8; docs/chart.md, "auto"). What training does not do is permute neurons: row ``i``
of a fine-tuned weight matrix still corresponds to row ``i`` of its parent's, while two models
initialised independently share no row correspondence at all. The fingerprint samples the same rows
of every model of an architecture, so for a candidate pair we compare the cosine of each sampled
row with *its own* row in the other model (the diagonal) against its cosine with *other* rows (a
few cyclic shifts, the null: for unrelated models diagonal and shifted pairs are exchangeable).

The result is a z statistic (Welch's t of diagonal against shifted cosines, pooled over layers):
near 0 for unrelated models whatever their distance, tens to hundreds for relatives however far
training moved them. The threshold is a significance level, not a value read off any zoo.
"""

from __future__ import annotations

import numpy as np

from modelatlas.chart.base import LayerBlock

#: Cyclic row shifts used as the null (unrelated row pairs).
SHIFTS = (1, 2, 3)


def _unit_rows(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows centred and scaled to unit norm; a mask of rows with any variation."""
    m = m - m.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(m, axis=-1, keepdims=True)
    ok = norm[..., 0] > 0
    return m / np.where(norm > 0, norm, 1.0), ok


def alignment_z(x: np.ndarray, candidates: np.ndarray, layers: list[LayerBlock]) -> np.ndarray:
    """Alignment statistic of model ``x`` against each candidate.

    Parameters
    ----------
    x:
        One fingerprint, shape ``(d,)``.
    candidates:
        Fingerprints of the candidates, shape ``(k, d)``.
    layers:
        Layout of the fingerprint; only layers with at least ``max(SHIFTS) + 1`` sampled rows of
        width 2 or more can be tested.

    Returns
    -------
    numpy.ndarray
        ``(k,)`` z statistics (``nan`` for every candidate when no layer can be tested).
    """
    cands = np.atleast_2d(np.asarray(candidates, np.float64))
    x = np.asarray(x, np.float64)
    diag_sum = np.zeros(len(cands))
    diag_sq = np.zeros(len(cands))
    null_sum = np.zeros(len(cands))
    null_sq = np.zeros(len(cands))
    n_diag = np.zeros(len(cands))
    n_null = np.zeros(len(cands))
    for b in layers:
        if b.rows <= max(SHIFTS) or b.cols < 2:
            continue
        ux, okx = _unit_rows(x[b.offset:b.offset + b.size].reshape(b.rows, b.cols))
        uc, okc = _unit_rows(cands[:, b.offset:b.offset + b.size].reshape(len(cands), b.rows, b.cols))
        both = okx[None, :] & okc
        diag = np.einsum("rc,krc->kr", ux, uc)
        diag_sum += np.where(both, diag, 0).sum(axis=1)
        diag_sq += np.where(both, diag * diag, 0).sum(axis=1)
        n_diag += both.sum(axis=1)
        for s in SHIFTS:
            shifted = np.einsum("rc,krc->kr", ux, np.roll(uc, s, axis=1))
            pair = okx[None, :] & np.roll(okc, s, axis=1)
            null_sum += np.where(pair, shifted, 0).sum(axis=1)
            null_sq += np.where(pair, shifted * shifted, 0).sum(axis=1)
            n_null += pair.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        md, mn = diag_sum / n_diag, null_sum / n_null
        vd = np.maximum(diag_sq / n_diag - md * md, 0.0)
        vn = np.maximum(null_sq / n_null - mn * mn, 0.0)
        se = np.sqrt(vd / n_diag + vn / n_null)
        z = (md - mn) / np.maximum(se, 1e-12)
    z[(n_diag < 2) | (n_null < 2)] = np.nan
    return z


def alignment_testable(layers: list[LayerBlock]) -> bool:
    """Whether :func:`alignment_z` can test fingerprints of this layout."""
    return any(b.rows > max(SHIFTS) and b.cols >= 2 for b in layers)
