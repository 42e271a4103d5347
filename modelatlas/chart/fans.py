"""Sweep siblings told from children: does a model carry its candidate parent's own update?

A fan is several children of one parent ``p`` (a sweep over learning rates or seeds). They share
the sweep's direction, so each lies nearer a sibling than ``p``, and "nearest related model"
chains them ``p -> x -> y``. What a child of ``x`` inherits and a sibling does not is the part of
``x``'s update that is ``x``'s own: a child starts from ``x``'s weights, so ``y - p`` holds all
of ``x - p``, including the part that no other model shares (``x``'s data order, its seed, its
fresh head); a sibling started from ``p`` and holds only what the sweep shares.

The test (rule ``fans`` of ``auto``, docs/chart.md "Fans and siblings"):

* ``r`` = the residual of ``x - p`` after its least-squares projection on the updates ``z - p`` of
  the models that may share the sweep's direction with ``x`` — the other children of ``p`` and of
  ``x`` as charted, never ``y``'s descendants (they carry ``y``'s update and would explain it);
* ``γ = <y - p, r> / |r|²``, ``y``'s coefficient on ``x``'s own direction. Because ``r`` is a
  residual, ``<x - p, r> = |r|²``: a child ``y = x + w`` has ``γ = 1 + <w, r>/|r|²``, about 1
  when its own update ``w`` is unrelated to ``r``; a sibling has ``γ`` about 0;
* ``y`` is re-attached to ``p`` when ``γ < ½`` — the midpoint of the two hypotheses, not a value
  read off a zoo — and only when ``r`` is a real part of ``x``'s update (``|r| ≥
  min_share · |x - p|``). When the other models explain ``x``'s update almost wholly, ``r`` is a
  sliver that any systematic part of ``w`` swamps (a child that partly undoes its parent's update,
  the issue's "children point backwards"): then the rule says nothing.

Why it cannot be complete. In a learning-rate sweep with one data order the members lie on one
curve from ``p``; the smaller step's update is then contained in the larger's exactly as a
checkpoint's is in the next one's, and ``γ`` is about 1 for siblings too (measured in the
``llama`` family: docs/chart.md). Those fans stay chained; the rule only separates sweeps whose
members differ by more than their step along one curve (different seeds, repeats, fresh heads).
The idea is the one of additive tree metrics: an internal node's descendants share its branch,
its siblings do not (Saitou & Nei, "The neighbor-joining method", *Mol. Biol. Evol.* 4, 1987).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from modelatlas.chart.graph import descendants_of

#: γ below which ``y`` is read as a sibling: the midpoint of "child" (1) and "sibling" (0).
SIBLING_GAMMA = 0.5


def own_update_coefficient(x_update: np.ndarray, y_update: np.ndarray, others: np.ndarray
                           ) -> tuple[float, float]:
    """``y``'s coefficient on the part of ``x``'s update that the other models do not explain.

    Parameters
    ----------
    x_update, y_update:
        ``x - p`` and ``y - p`` (``d`` values each), ``p`` the common ancestor in question.
    others:
        ``d x k`` updates ``z - p`` of the other models that may share ``x``'s direction (``k``
        may be 0).

    Returns
    -------
    gamma, share
        ``γ = <y - p, r> / |r|²`` with ``r`` the residual of ``x - p`` after its least-squares
        projection on ``others``, and ``|r| / |x - p|`` (0 when ``x`` did not move: ``γ`` is then
        NaN).
    """
    ux = np.asarray(x_update, np.float64)
    nx = float(ux @ ux)
    if nx <= 0:
        return float("nan"), 0.0
    r = ux
    if others.size:
        # unit columns: the projection is the same, and the solve does not depend on their scale
        a = np.asarray(others, np.float64)
        norms = np.linalg.norm(a, axis=0)
        a = a[:, norms > np.finfo(np.float64).tiny] / norms[norms > np.finfo(np.float64).tiny]
        if a.size:
            r = ux - a @ np.linalg.lstsq(a, ux, rcond=None)[0]
    nr = float(r @ r)
    if not np.isfinite(nr) or nr <= 1e-24 * nx:
        return float("nan"), 0.0
    return float(np.asarray(y_update, np.float64) @ r / nr), float(np.sqrt(nr / nx))


def unchain_fans(order: np.ndarray, parents: dict[int, tuple[int, ...]], revisable: Callable[[int], bool],
                 vector: Callable[[int], np.ndarray], *, min_share: float, max_others: int
                 ) -> dict[int, tuple[int, float]]:
    """Re-attach chained sweep siblings to their common parent (module docstring).

    Models are visited in ``order`` (parents first), so a chain ``p -> x -> y -> y2`` unwinds
    top-down: once ``y`` is re-attached to ``p``, it is one of the models that explain the sweep's
    direction when ``y2`` is tested. One visit per model: in a bare chain ``p -> x -> y -> y2``
    nothing explains the sweep's direction when ``y`` is tested (``y2`` is its descendant), so
    ``y`` stays; repeating the visits until nothing moves unwound such chains but moved more true
    children than it freed siblings (docs/chart.md, "Fans and siblings").

    Parameters
    ----------
    order:
        Processing order of the models.
    parents:
        ``child -> parents`` as charted; updated in place.
    revisable:
        Whether a model's parent may be changed (plain fine-tune decisions).
    vector:
        A model's fingerprint (raw weights, where updates add up).
    min_share:
        Smallest ``|r| / |x - p|`` for which the test speaks.
    max_others:
        At most this many other models (the nearest to ``x``) explain ``x``'s update.

    Returns
    -------
    dict
        ``y -> (p, γ)`` for every model re-attached.
    """
    children: dict[int, list[int]] = {}
    for c, ps in parents.items():
        if len(ps) == 1:
            children.setdefault(ps[0], []).append(c)

    descendants = partial(descendants_of, children)
    moved: dict[int, tuple[int, float]] = {}
    for y in np.asarray(order).tolist():
        _visit(y, parents, children, descendants, revisable, vector, min_share, max_others, moved)
    return moved


def _visit(y, parents, children, descendants, revisable, vector, min_share, max_others, moved) -> None:
    """Test ``y`` against its grandparent and re-attach it there when it is a sibling."""
    ps = parents.get(y, ())
    if len(ps) == 1 and revisable(y):
        x = ps[0]
        grand = parents.get(x, ())
        if len(grand) != 1:
            return
        p = grand[0]
        skip = descendants(y) | {x, y, p}
        others = [z for z in children.get(p, []) + children.get(x, []) if z not in skip]
        vp, vx = vector(p), vector(x)
        if len(others) > max_others:
            d = np.array([np.linalg.norm(vector(z) - vx) for z in others])
            others = [others[j] for j in np.argsort(d, kind="stable")[:max_others]]
        u = np.stack([vector(z) - vp for z in others], axis=1) if others else np.zeros((len(vp), 0))
        gamma, share = own_update_coefficient(vx - vp, vector(y) - vp, u)
        if share >= min_share and gamma < SIBLING_GAMMA:
            parents[y] = (p,)
            children[x].remove(y)
            children.setdefault(p, []).append(y)
            moved[y] = (p, gamma)
