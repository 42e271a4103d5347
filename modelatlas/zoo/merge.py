"""Model merging as the merge tools on the Hub do it (mergekit's ``linear``, ``slerp``, ``ties``,
``task_arithmetic``, ``dare_linear``).

Every function takes state dicts (name -> numpy array) of one architecture and returns the merged
state dict; non-float tensors are taken from the first model.

References
----------
Wortsman et al., "Model soups", ICML 2022 (weight averaging).
Shoemake, "Animating rotation with quaternion curves", SIGGRAPH 1985 (SLERP), as applied per
tensor by mergekit.
Yadav et al., "TIES-Merging: Resolving interference when merging models", NeurIPS 2023, Sec. 3
(trim, elect sign, disjoint merge).
Ilharco et al., "Editing models with task arithmetic", ICLR 2023 (task vectors).
Yu et al., "Language models are Super Mario: absorbing abilities from homologous models as a free
lunch", ICML 2024 (DARE: drop and rescale).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

State = dict[str, np.ndarray]
METHODS = ("average", "slerp", "ties", "task_arithmetic", "dare")


def _floats(states: Sequence[State], name: str) -> bool:
    return states[0][name].dtype.kind == "f"


def average(states: Sequence[State], weights: Sequence[float]) -> State:
    """Weighted average ``sum_i w_i θ_i / sum_i w_i`` of every float tensor."""
    w = np.asarray(weights, np.float64) / np.sum(weights)
    return {n: (sum(wi * s[n].astype(np.float64) for wi, s in zip(w, states)).astype(states[0][n].dtype)
                if _floats(states, n) else states[0][n]) for n in states[0]}


def slerp_tensor(a: np.ndarray, b: np.ndarray, t: float, eps: float = 1e-8) -> np.ndarray:
    """Spherical interpolation of two tensors viewed as vectors (linear when nearly parallel)."""
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na < eps or nb < eps:
        return ((1 - t) * a64 + t * b64).reshape(a.shape).astype(a.dtype)
    dot = np.clip(a64 @ b64 / (na * nb), -1.0, 1.0)
    if abs(dot) > 0.9995:
        mixed = (1 - t) * a64 + t * b64
    else:
        omega = np.arccos(dot)
        mixed = (np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)
    return mixed.reshape(a.shape).astype(a.dtype)


def slerp(states: Sequence[State], t: float) -> State:
    """SLERP of two models, tensor by tensor, at fraction ``t`` towards the second."""
    if len(states) != 2:
        raise ValueError("slerp merges exactly two models")
    a, b = states
    return {n: slerp_tensor(a[n], b[n], t) if _floats(states, n) else a[n] for n in a}


def ties_tensor(base: np.ndarray, tensors: Sequence[np.ndarray], weights: Sequence[float],
                density: float, lam: float) -> np.ndarray:
    """TIES on one tensor: trim each task vector to its top ``density`` magnitudes, elect the sign
    of the weighted sum, average (weighted) only the values that agree with it, add ``lam`` × that."""
    base64 = base.astype(np.float64)
    taus = []
    for t in tensors:
        tau = t.astype(np.float64) - base64
        k = int(np.ceil(density * tau.size))
        if k < tau.size:
            cut = np.partition(np.abs(tau).ravel(), tau.size - k)[tau.size - k]
            tau = np.where(np.abs(tau) >= cut, tau, 0.0)
        taus.append(tau)
    taus = np.stack(taus)
    w = np.asarray(weights, np.float64).reshape(-1, *([1] * base.ndim))
    sign = np.sign((w * taus).sum(0))
    agree = (np.sign(taus) == sign) & (taus != 0)
    total = (w * agree).sum(0)
    merged = np.where(total > 0, (w * taus * agree).sum(0) / np.where(total > 0, total, 1.0), 0.0)
    return (base64 + lam * merged).astype(base.dtype)


def ties(base: State, states: Sequence[State], weights: Sequence[float], density: float = 0.5,
         lam: float = 1.0) -> State:
    """TIES-merging of fine-tunes ``states`` of the common ``base`` (Yadav et al., Sec. 3)."""
    return {n: ties_tensor(base[n], [s[n] for s in states], weights, density, lam)
            if _floats(states, n) else states[0][n] for n in states[0]}


def task_arithmetic(base: State, states: Sequence[State], weights: Sequence[float], lam: float = 1.0) -> State:
    """Task arithmetic: ``base + lam · sum_i w_i (θ_i − base)`` (Ilharco et al., ICLR 2023, Sec. 2)."""
    out = {}
    for n, b in base.items():
        if not _floats(states, n):
            out[n] = states[0][n]
            continue
        b64 = b.astype(np.float64)
        tau = sum(w * (s[n].astype(np.float64) - b64) for w, s in zip(weights, states))
        out[n] = (b64 + lam * tau).astype(b.dtype)
    return out


def dare(base: State, states: Sequence[State], weights: Sequence[float], density: float, seed: int,
         lam: float = 1.0) -> State:
    """DARE (Yu et al., ICML 2024, Sec. 3): each task vector keeps every element with probability
    ``density`` and is rescaled by ``1 / density``; the sparse task vectors are then added as in
    :func:`task_arithmetic` (mergekit's ``dare_linear``). ``seed`` fixes the drop masks, tensor by
    tensor in name order, parent by parent."""
    rng = np.random.default_rng([seed, 5])
    out = {}
    for n in sorted(base):
        b = base[n]
        if not _floats(states, n):
            out[n] = states[0][n]
            continue
        b64 = b.astype(np.float64)
        tau = np.zeros_like(b64)
        for w, s in zip(weights, states):
            keep = rng.random(b.shape) < density
            tau += w * np.where(keep, (s[n].astype(np.float64) - b64) / density, 0.0)
        out[n] = (b64 + lam * tau).astype(b.dtype)
    return out
