"""Fine-tune parents decided together: a minimum branching with upload order as a soft prior.

Deciding each model from the models uploaded before it (``auto``'s first pass) trusts upload order
completely: a child uploaded before its parent can only pick a grandparent or a sibling, and its
parent then picks the child. Upload order is only evidence (docs/chart.md, "What generalises"), so
the models that the first pass gave a plain fine-tune parent (or found to be roots) are re-decided
jointly: every related candidate edge ``p -> x`` among the nearest models *in either direction*
costs the fingerprint distance, times ``1 + time_penalty`` when ``p`` comes after ``x`` in the
processing order, and the cheapest forest of arborescences over those edges
(Chu–Liu–Edmonds, :func:`~modelatlas.chart.arborescence.minimum_branching_forest`) is taken, one
root per group of related models. Parents fixed by stronger evidence (known, duplicates, quantised
leaves, adapters, merges) enter as fixed edges, so the forest cannot close a cycle through them.
The root of each group of related models is its first model in that order. ``time_penalty = 0``
ignores order otherwise; a large penalty gives the first pass back.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from modelatlas.chart.arborescence import minimum_branching_forest
from modelatlas.chart.neighbors import GrowingIndex


def joint_parents(position: np.ndarray, free: np.ndarray, eligible: np.ndarray,
                  fixed: dict[int, tuple[int, ...]], neighbours: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                  related: Callable[[int, np.ndarray], np.ndarray], time_penalty: float) -> dict[int, int]:
    """Parents of the ``free`` models (absent from the result: a root).

    Parameters
    ----------
    position:
        Each model's place in the processing order (upload order, or the no-times order), for the
        ``n`` models of one architecture group.
    free:
        Boolean mask of the models to decide.
    eligible:
        Boolean mask of the models that may be parents (not quantised, not a later duplicate).
    fixed:
        Parents already decided for the other models (``()`` for a decided root).
    neighbours:
        ``neighbours(rows) -> (labels, distances)``: each row's nearest eligible models in either
        direction, nearest first, ``-1`` padded.
    related:
        ``related(x, candidates)``: which candidates are related to model ``x`` (the root rule).
    time_penalty:
        Relative extra cost of a parent that comes after its child.

    Returns
    -------
    dict
        ``child -> parent`` for the free models given a parent.
    """
    rows = np.flatnonzero(free)
    labels, dists = neighbours(rows)
    src, dst, w = [], [], []
    for r, x in enumerate(rows.tolist()):
        ok = (labels[r] >= 0) & (labels[r] != x)
        cand, d = labels[r][ok], dists[r][ok]
        keep = related(x, cand) & eligible[cand]
        cand, d = cand[keep], d[keep]
        later = position[cand] > position[x]
        src += cand.tolist()
        dst += [x] * len(cand)
        w += (d * np.where(later, 1.0 + time_penalty, 1.0)).tolist()
    return branching_parents(position, free, fixed, np.asarray(src, np.int64), np.asarray(dst, np.int64),
                             np.asarray(w, np.float64))


def branching_parents(position: np.ndarray, free: np.ndarray, fixed: dict[int, tuple[int, ...]],
                      src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> dict[int, int]:
    """The cheapest forest over candidate edges ``src -> dst`` (non-negative ``weight``) into the
    ``free`` models, with the ``fixed`` decisions kept: the decoding step of :func:`joint_parents`,
    shared with the learned pair scorer (:mod:`modelatlas.chart.pair_scorer`), whose weights are
    learned edge costs instead of distances.

    Returns
    -------
    dict
        ``child -> parent`` for the free models given a parent (absent: a root).
    """
    n = len(position)
    rows = np.flatnonzero(free)
    src, dst, w = list(np.asarray(src, np.int64)), list(np.asarray(dst, np.int64)), list(np.asarray(weight, float))
    for c, ps in fixed.items():
        if ps:  # one fixed edge per decided model (a merge's first parent keeps its ancestry acyclic)
            src.append(int(ps[0]))
            dst.append(int(c))
            w.append(0.0)
    w_arr = np.asarray(w, np.float64)
    big = float(w_arr.sum()) + 1.0
    # One root per group of related models, and it is the group's first model in the processing
    # order: a later root would always cost more than every edge together.
    root_cost = big * (1.0 + position.astype(np.float64))
    for c, ps in fixed.items():
        root_cost[c] = 0.0 if not ps else big * (n + 1.0)  # decided roots stay roots, decided children keep parents
    parent = minimum_branching_forest(n, np.asarray(src, np.int64), np.asarray(dst, np.int64), w_arr, root_cost)
    return {int(x): int(parent[x]) for x in rows.tolist() if parent[x] >= 0}


def both_ways_neighbours(space: np.ndarray, position: np.ndarray, eligible: np.ndarray,
                         earlier: tuple[np.ndarray, np.ndarray], k: int, *, exact_up_to: int = 1000
                         ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``neighbours(rows) -> (labels, distances)`` for :func:`joint_parents`: each row's ``k`` nearest
    earlier eligible models (``earlier``: labels and distances, as the first pass saw them) followed
    by its ``k`` nearest later ones, ``-1`` padded."""
    index = GrowingIndex(space.shape[1], exact_up_to=exact_up_to, capacity=max(int(eligible.sum()), 1))
    for i in np.flatnonzero(eligible).tolist():
        index.add(i, space[i])

    def neighbours(rows):
        labels = np.full((len(rows), 2 * k), -1, np.int64)
        dists = np.full((len(rows), 2 * k), np.inf)
        for r, x in enumerate(np.asarray(rows).tolist()):
            lab, dis = index.query(space[x], 2 * k + 1)
            later = position[lab] > position[x]
            lab, dis = lab[later][:k], dis[later][:k]
            e_lab, e_dis = earlier[0][x][:k], earlier[1][x][:k]
            labels[r, :len(e_lab)], dists[r, :len(e_dis)] = e_lab, e_dis
            labels[r, k:k + len(lab)], dists[r, k:k + len(dis)] = lab, dis
        return labels, dists

    return neighbours
