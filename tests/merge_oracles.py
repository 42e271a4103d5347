"""Independent test oracles of the zoo's merges (SLERP, TIES), written from the papers' definitions
rather than from ``modelatlas.zoo.merge``: the zoo tests compare every merged tensor with them."""

from __future__ import annotations

import numpy as np


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of ``a`` and ``b`` viewed as vectors (Shoemake 1985), linear when
    either is zero or they are nearly parallel; float64, flattened."""
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    if min(np.linalg.norm(a), np.linalg.norm(b)) < 1e-8:
        return (1 - t) * a + t * b
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    if abs(cos) > 0.9995:
        return (1 - t) * a + t * b
    om = np.arccos(cos)
    return (np.sin((1 - t) * om) * a + np.sin(t * om) * b) / np.sin(om)


def ties(base: np.ndarray, tensors: list[np.ndarray], weights: list[float], density: float,
         lam: float) -> np.ndarray:
    """TIES-merging (Yadav et al. 2023) written plainly: keep the values of each task vector at
    least as large in magnitude as its ``ceil(density · n)``-th largest, elect the sign of the
    weighted sum, weighted mean of the kept values that agree with it; float64, flattened."""
    base = base.astype(np.float64).ravel()
    taus = []
    for t in tensors:
        tau = t.astype(np.float64).ravel() - base
        cut = np.sort(np.abs(tau))[::-1][int(np.ceil(density * tau.size)) - 1]
        taus.append(np.where(np.abs(tau) >= cut, tau, 0.0))
    w = np.asarray(weights, dtype=np.float64)[:, None]
    taus = np.stack(taus)
    sign = np.sign((w * taus).sum(0))
    agree = (np.sign(taus) == sign) & (taus != 0)
    total = (w * agree).sum(0)
    mean = np.divide((w * taus * agree).sum(0), total, out=np.zeros_like(total), where=total > 0)
    return base + lam * mean
