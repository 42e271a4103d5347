"""Optimal orderings of trait values (Laufer et al., section 4, "Orderedness"; sections 4.1–4.4).

The linear ordering problem: find the order of the values that agrees with the most drifts
(weights ``D[i, j] = 1`` for a drift ``i -> j``) or, as an option, with the most mutation traffic
(``T[i, j]``). The paper solves it as an integer program — binary ``x_ij`` ("i before j"),
``x_ij + x_ji = 1``, transitivity ``x_ij + x_jk + x_ki <= 2`` — with OR-Tools/SCIP. We solve the same
program with HiGHS through :func:`scipy.optimize.milp` (ENGINEERING-NOTES "Linear ordering"):

* one variable per unordered pair (``x_ji = 1 - x_ij``), so the 3-cycle constraints become
  ``0 <= x_ij + x_jk - x_ik <= 1`` for ``i < j < k``;
* triangle constraints are added lazily: solve, add the triangles the solution violates, repeat;
  a solution without violations is optimal for the full program;
* a heuristic (score order + best-insertion local search) runs first; it is the answer when the
  solver is missing, the instance is above ``max_exact`` values, or the time limit is hit (then
  unless HiGHS's incumbent, ranked into an order, is better), and it is reported with an upper bound (the solver's dual bound when it has one, else the sum of
  the heavier direction of every pair) and the gap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from modelatlas.errors import ModelAtlasError


@dataclass
class OrderingResult:
    """An order of ``n`` items and how good it is.

    Attributes
    ----------
    order:
        Item indices, first (most upstream) to last.
    objective:
        Total weight of the pairs the order agrees with.
    bound:
        Upper bound on the best objective (equal to ``objective`` when optimal).
    status:
        ``"optimal"``, ``"time_limit"``, ``"too_large"`` or ``"solver_unavailable"``.
    method:
        ``"milp"`` or ``"heuristic"``.
    """

    order: list[int]
    objective: float
    bound: float
    status: str
    method: str
    seconds: float = 0.0
    rounds: int = 0
    triangles: int = 0
    message: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    @property
    def gap(self) -> float:
        """Relative gap ``(bound - objective) / bound`` (0 when optimal)."""
        return 0.0 if self.bound <= 0 else max(0.0, (self.bound - self.objective) / self.bound)


def order_value(weights: np.ndarray, order) -> float:
    """Total weight ``w[i, j]`` over pairs with ``i`` placed before ``j``."""
    w = np.asarray(weights, dtype=np.float64)
    pos = np.empty(len(order), dtype=np.int64)
    pos[np.asarray(order)] = np.arange(len(order))
    return float(w[pos[:, None] < pos[None, :]].sum())


def trivial_bound(weights: np.ndarray) -> float:
    """Sum over pairs of the heavier direction: no order can do better."""
    w = np.asarray(weights, dtype=np.float64)
    return float(np.triu(np.maximum(w, w.T), 1).sum())


def heuristic_order(weights: np.ndarray, *, max_rounds: int = 100) -> list[int]:
    """Score order (net out-weight) improved by best-insertion moves until none helps."""
    w = np.asarray(weights, dtype=np.float64)
    n = w.shape[0]
    order = list(np.argsort(-(w.sum(1) - w.sum(0)), kind="stable"))
    for _ in range(max_rounds):
        improved = False
        for item in list(order):
            rest = [x for x in order if x != item]
            r = np.array(rest, dtype=np.int64)
            # gain of placing item at slot s: weights to items after minus items before it
            after, before = w[item, r], w[r, item]
            # value(slot s) = sum(before[:s]) + sum(after[s:])
            vals = np.concatenate([[0.0], np.cumsum(before)]) + np.concatenate([np.cumsum(after[::-1])[::-1], [0.0]])
            best = int(np.argmax(vals))
            current = order.index(item)
            if vals[best] > vals[current] + 1e-9:
                rest.insert(best, item)
                order = rest
                improved = True
        if not improved or n < 3:
            break
    return [int(i) for i in order]


def _load_milp():
    """scipy's HiGHS MILP interface, or ``None`` when this scipy lacks it."""
    try:
        from scipy.optimize import Bounds, LinearConstraint, milp
    except ImportError:
        return None
    return milp, LinearConstraint, Bounds


def _violated(x_pair: np.ndarray, tri: np.ndarray) -> np.ndarray:
    s = x_pair[tri[:, 0]] + x_pair[tri[:, 1]] - x_pair[tri[:, 2]]
    return (s < -0.5) | (s > 1.5)


def linear_ordering(weights: np.ndarray, *, time_limit: float = 10.0, max_exact: int = 60) -> OrderingResult:
    """Maximise the weight of pairs ordered as the weights prefer (module docstring).

    Parameters
    ----------
    weights:
        ``(n, n)`` non-negative matrix; ``w[i, j]`` is earned when ``i`` comes before ``j``.
    time_limit:
        Seconds for the whole exact solve (all lazy rounds together).
    max_exact:
        Above this many items, skip the integer program and return the heuristic with a bound.

    Returns
    -------
    OrderingResult
    """
    start = time.perf_counter()
    w = np.asarray(weights, dtype=np.float64)
    n = w.shape[0]
    if w.ndim != 2 or w.shape[1] != n:
        raise ModelAtlasError(f"ordering weights must be a square matrix, got shape {w.shape}")
    heur = heuristic_order(w)
    heur_value = order_value(w, heur)

    def fallback(status, message, bound=None, incumbent=None, **kw):
        b = trivial_bound(w) if bound is None else min(bound, trivial_bound(w))
        order, value, method = heur, heur_value, "heuristic"
        if incumbent is not None and order_value(w, incumbent) > value:
            order, value, method = incumbent, order_value(w, incumbent), "milp"
        if value >= b - 1e-9:
            status, message = "optimal", message + "; the order meets the bound, so it is optimal"
        return OrderingResult(order, value, max(b, value), status, method,
                              time.perf_counter() - start, message=message, **kw)

    if n <= 2:
        return OrderingResult(heur, heur_value, heur_value, "optimal", "heuristic", time.perf_counter() - start)
    solver = _load_milp()
    if solver is None:
        return fallback("solver_unavailable", "scipy.optimize.milp (HiGHS) is not available: heuristic order")
    if n > max_exact:
        return fallback("too_large", f"{n} values exceed max_exact={max_exact}: heuristic order")
    milp, LinearConstraint, Bounds = solver
    import scipy.sparse as sp

    iu, ju = np.triu_indices(n, 1)
    pair_index = np.full((n, n), -1, dtype=np.int64)
    pair_index[iu, ju] = np.arange(iu.size)
    const = w[ju, iu].sum()
    c = -(w[iu, ju] - w[ju, iu])  # milp minimises
    i3, j3, k3 = (a.ravel() for a in np.meshgrid(*(np.arange(n),) * 3, indexing="ij"))
    sel = (i3 < j3) & (j3 < k3)
    all_tri = np.stack([pair_index[i3[sel], j3[sel]], pair_index[j3[sel], k3[sel]], pair_index[i3[sel], k3[sel]]], 1)
    # start from the triangles that the score-optimal pairwise choice violates
    active = np.zeros(len(all_tri), dtype=bool)
    active |= _violated((c < 0).astype(np.float64), all_tri)
    rounds, best_bound = 0, None
    while True:
        remaining = time_limit - (time.perf_counter() - start)
        if remaining <= 0:
            return fallback("time_limit", f"time limit {time_limit:g} s reached after {rounds} rounds",
                            best_bound, rounds=rounds, triangles=int(active.sum()))
        rounds += 1
        tri = all_tri[active]
        constraints = []
        if tri.size:
            rows = np.repeat(np.arange(tri.shape[0]), 3)
            a = sp.csr_matrix((np.tile([1.0, 1.0, -1.0], tri.shape[0]), (rows, tri.ravel())),
                              shape=(tri.shape[0], iu.size))
            constraints = [LinearConstraint(a, 0, 1)]
        res = milp(c, integrality=np.ones(iu.size), bounds=Bounds(0, 1), constraints=constraints,
                   options={"time_limit": max(remaining, 0.01), "disp": False})
        if res.status == 0:
            bound_here = const - res.fun  # optimal for a relaxation: an upper bound for the full program
            best_bound = bound_here if best_bound is None else min(best_bound, bound_here)
            x = np.round(res.x)
            bad = _violated(x, all_tri) & ~active
            if not bad.any():
                order = _order_from_pairs(x, n, iu, ju)
                value = order_value(w, order)
                return OrderingResult(order, value, value, "optimal", "milp", time.perf_counter() - start,
                                      rounds, int(active.sum()))
            active |= bad
            continue
        dual = getattr(res, "mip_dual_bound", None)
        bound = const - dual if dual is not None and np.isfinite(dual) else None
        if best_bound is not None:
            bound = best_bound if bound is None else min(bound, best_bound)
        if res.status == 1:
            # HiGHS's incumbent (if any) ranked by wins is a valid order; keep the better one
            incumbent = _order_from_pairs(np.round(res.x), n, iu, ju) if res.x is not None else None
            return fallback("time_limit", f"HiGHS hit the time limit ({time_limit:g} s): {res.message}",
                            bound, incumbent, rounds=rounds, triangles=int(active.sum()))
        raise ModelAtlasError(f"HiGHS failed on the ordering program (status {res.status}): {res.message}")


def _order_from_pairs(x: np.ndarray, n: int, iu: np.ndarray, ju: np.ndarray) -> list[int]:
    """Items ranked by how many others they precede (the order itself when ``x`` is transitive)."""
    before = np.zeros((n, n))
    before[iu, ju] = x
    before[ju, iu] = 1 - x
    return [int(i) for i in np.argsort(-before.sum(1), kind="stable")]


def explained(order: list[int], orientation: np.ndarray, traffic: np.ndarray) -> tuple[float, float]:
    """Shares of drift directions and of mutations that agree with ``order``."""
    d = order_value(orientation, order) / max(float(np.asarray(orientation).sum()), 1e-300)
    m = order_value(traffic, order) / max(float(np.asarray(traffic).sum()), 1e-300)
    return d, m


def trait_ordering(drift, *, objective: str = "drifts", time_limit: float = 10.0, max_exact: int = 60) -> dict:
    """The optimal order of a drift graph's values and what it explains.

    Parameters
    ----------
    drift:
        A :class:`modelatlas.ecosystem.drift.DriftGraph`.
    objective:
        ``"drifts"`` (the paper: count of drift directions agreed with) or ``"traffic"``
        (mutations agreed with).

    Returns
    -------
    dict with ``order`` (values, upstream first), ``drifts_explained``, ``mutations_explained``,
    ``drifts``, ``mutations``, ``status``, ``method``, ``optimal``, ``objective_value``,
    ``bound``, ``gap``, ``seconds`` and ``message``.
    """
    if objective not in ("drifts", "traffic"):
        raise ModelAtlasError(f"unknown ordering objective {objective!r}; choose drifts or traffic")
    orientation = drift.orientation()
    weights = orientation if objective == "drifts" else drift.traffic
    result = linear_ordering(weights, time_limit=time_limit, max_exact=max_exact)
    d, m = explained(result.order, orientation, drift.traffic)
    return {"trait": drift.trait, "objective": objective, "order": [drift.values[i] for i in result.order],
            "drifts_explained": d, "mutations_explained": m, "drifts": int(orientation.sum()),
            "mutations": int(drift.traffic.sum()), "ties": drift.ties(), "status": result.status,
            "method": result.method, "optimal": result.optimal, "objective_value": result.objective,
            "bound": result.bound, "gap": result.gap, "seconds": result.seconds, "rounds": result.rounds,
            "triangles": result.triangles, "message": result.message}
