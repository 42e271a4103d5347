"""Weight distances and the kurtosis direction score between fingerprinted models.

* :func:`euclidean` — Euclidean distance of fingerprint vectors (Model Atlas, App. D: 100 neurons).
* :func:`finetune_distance` — MoTHer's ℓ_FT (Eq. 1): max over layers of the max weight difference,
  after min-max normalising each layer over the models compared (Sec. 6), with the public code's
  variants (sum over layers; RMS per layer and mean over layers).
* :func:`lora_distance` — MoTHer's ℓ_LoRA (Eq. 2): max over layers of the rank of the difference,
  the rank counted as singular values above a threshold.
* :func:`kurtosis_score` — MoTHer's direction score (Eq. 3), summed over layers.

References
----------
Horwitz, Shul, Hoshen, "On the Origin of Llamas: Model Tree Heritage Recovery", 2024, Sec. 4, 6.
Horwitz et al., "Charting and Navigating Hugging Face's Model Atlas", 2025, App. C-D.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from modelatlas.chart.types import ChartInput


def euclidean(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Pairwise Euclidean distances of rows (float64, exact zeros for identical rows)."""
    b = a if b is None else b
    return cdist(np.asarray(a, np.float64), np.asarray(b, np.float64))


def _layer_matrices(models: ChartInput, normalise: bool) -> list[np.ndarray]:
    mats = []
    for block in models.layers:
        x = block.take(models.vectors).reshape(len(models), -1).astype(np.float64)
        if normalise:  # MoTHer Sec. 6: min-max per layer over all models of the tree
            lo, hi = x.min(), x.max()
            x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        mats.append(x)
    return mats


def finetune_distance(models: ChartInput, *, layer_reduce: str = "max", per_layer: str = "max",
                      signed: bool = False, normalise: bool = True, chunk: int = 64) -> np.ndarray:
    """MoTHer's ℓ_FT between every pair of models.

    Parameters
    ----------
    models:
        Models of one architecture.
    layer_reduce:
        ``"max"`` over layers (paper, Eq. 1), ``"sum"`` (first public release) or ``"mean"``.
    per_layer:
        ``"max"`` of the element-wise difference (paper) or ``"rms"`` (later public release).
    signed:
        Eq. 1 literally takes ``max(u_l - v_l)``, which is not symmetric; by default the absolute
        difference is used, matching the paper's statement that the distance is symmetric.
    normalise:
        Min-max normalise each layer over the models first (Sec. 6).

    Returns
    -------
    numpy.ndarray
        ``n x n`` matrix, zero diagonal; entry ``[i, j]`` is ℓ(v_i, v_j).
    """
    n = len(models)
    out = np.zeros((n, n))
    per = []
    for x in _layer_matrices(models, normalise):
        d = np.zeros((n, n))
        for s in range(0, n, chunk):
            diff = x[s:s + chunk, None, :] - x[None, :, :]
            if per_layer == "rms":
                d[s:s + chunk] = np.sqrt((diff ** 2).mean(axis=2))
            elif signed:
                d[s:s + chunk] = diff.max(axis=2)
            else:
                d[s:s + chunk] = np.abs(diff).max(axis=2)
        per.append(d)
    stack = np.stack(per)
    if layer_reduce == "max":
        out = stack.max(axis=0)
    elif layer_reduce == "sum":
        out = stack.sum(axis=0)
    elif layer_reduce == "mean":
        out = stack.mean(axis=0)
    else:
        raise ValueError(f"layer_reduce must be max, sum or mean, not {layer_reduce!r}")
    np.fill_diagonal(out, 0.0)
    return out


def difference_rank(a: np.ndarray, b: np.ndarray, *, rtol: float = 1e-3) -> np.ndarray:
    """Numerical rank of ``a - b`` for stacks of matrices ``(..., rows, cols)``.

    A singular value counts when it exceeds ``rtol`` times the largest singular value of ``a``
    (so the threshold follows the layer's scale, not the difference's).
    """
    s_diff = np.linalg.svd(a - b, compute_uv=False)
    scale = np.linalg.svd(a, compute_uv=False)[..., :1]
    return (s_diff > rtol * np.maximum(scale, 1e-30)).sum(axis=-1)


def lora_distance(models: ChartInput, *, layer_reduce: str = "max", rtol: float = 1e-3,
                  pairs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """MoTHer's ℓ_LoRA: rank of the per-layer difference, reduced over layers (Eq. 2).

    Parameters
    ----------
    pairs:
        Only these ``(i, j)`` pairs (a vector is returned); all pairs by default (``n x n``).
    """
    n = len(models)
    if pairs is None:
        iu, ju = np.triu_indices(n, 1)
    else:
        iu, ju = (np.asarray(p, np.int64) for p in pairs)
    ranks = []
    for block in models.layers:
        x = block.take(models.vectors).astype(np.float64)
        r = np.zeros(len(iu))
        for s in range(0, len(iu), 4096):
            r[s:s + 4096] = difference_rank(x[iu[s:s + 4096]], x[ju[s:s + 4096]], rtol=rtol)
        ranks.append(r)
    stack = np.stack(ranks)
    red = stack.max(axis=0) if layer_reduce == "max" else stack.sum(axis=0)
    if pairs is not None:
        return red
    out = np.zeros((n, n))
    out[iu, ju] = red
    out[ju, iu] = red
    return out


def kurtosis_score(models: ChartInput) -> np.ndarray:
    """MoTHer's direction score k(u): per-layer kurtosis (Pearson, Eq. 3) summed over layers.

    Uses ``models.kurtosis`` (computed on full weights) when present, else the fingerprint rows.
    """
    if models.kurtosis is not None:
        return np.nansum(np.asarray(models.kurtosis, np.float64), axis=1)
    total = np.zeros(len(models))
    for block in models.layers:
        x = block.take(models.vectors).reshape(len(models), -1).astype(np.float64)
        c = x - x.mean(axis=1, keepdims=True)
        m2 = (c ** 2).mean(axis=1)
        m4 = (c ** 4).mean(axis=1)
        # a constant layer (m2 = 0, or so small that m2² underflows) has no kurtosis: 0, silently
        var2 = m2 * m2
        total += np.divide(m4, var2, out=np.zeros_like(m4), where=var2 > 0)
    return total


def stage_from_known(score: np.ndarray, known: dict[int, tuple[int, ...]], default: str = "specialization") -> str:
    """The training stage that known parent -> child pairs show (majority vote), else ``default``.

    MoTHer assumes the stage is given (Sec. 5, footnote 1); with a known stem we read it off the
    stem: kurtosis falling from parent to child is specialisation, rising is generalisation.
    """
    votes = [np.sign(score[p] - score[c]) for c, ps in known.items() for p in ps]
    votes = [v for v in votes if v != 0]
    if not votes:
        return default
    return "specialization" if np.sum(votes) >= 0 else "generalization"
