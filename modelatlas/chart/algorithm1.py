"""Algorithm 1 of the Model Atlas paper ("Atlas structure recovery"), method name ``atlas``.

Models are processed in upload order (App. C, Algorithm 1; App. D parameters):

* quantised models become leaves (never a parent);
* exact duplicates (distance 0 or equal content hash) are collapsed: a later copy is never a
  parent and receives the parents of its first copy;
* known parents (documented merges, the evaluation stem) are kept;
* otherwise, with the ``K`` nearest neighbours by 100-neuron Euclidean distance: if their distance
  spread exceeds ``K_th`` the parent is the nearest earlier model; else the correlation of their
  distance with their absolute time difference decides — above ``ρ_th`` (the ``rho_percentile``-th
  percentile of all the component's correlations) the node is in a *snake* and takes its nearest
  earlier neighbour, below it in a *fan* and takes the oldest of its ``K`` nearest earlier
  neighbours.

Reading the pseudo-code: ``argsort(D[:, i])[1:K]`` would drop the true nearest neighbour (the
diagonal is already infinite) and ``D[i+1:, i]`` would look at *later* models, against the text
("the parent is the closest preceding model"); we take the ``K`` nearest neighbours and the ``K``
nearest *earlier* neighbours. Exclusions (quantised, duplicates) are applied before the loop,
which is what the loop's progressive ``D[i, :] = inf`` amounts to for earlier candidates.

Every rule can be switched off for the ablation of Table 3: ``quantization``, ``deduplication``,
``temporal`` (parents may come after children), ``snake_fan`` (always the nearest neighbour),
``merges`` (known multi-parent edges ignored), ``greedy`` (replaced by a minimum arborescence over
the same candidate edges).

References
----------
Horwitz et al., "Charting and Navigating Hugging Face's Model Atlas", 2025, App. C-D.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from modelatlas.chart.arborescence import minimum_branching_forest
from modelatlas.chart.distances import euclidean
from modelatlas.chart.estimator import ChartMethod, register
from modelatlas.chart.types import ChartInput, ChartResult


@register
class Algorithm1(ChartMethod):
    """Model Atlas Algorithm 1 with switchable rules."""

    name = "atlas"
    _parameter_constraints = {
        "K": [Interval(Integral, 1, None, closed="left")],
        "K_th": [Interval(Real, 0, None, closed="left")],
        "rho_percentile": [Interval(Real, 0, 100, closed="both")],
        **{rule: ["boolean"] for rule in ("quantization", "deduplication", "temporal", "snake_fan", "merges",
                                          "greedy")},
        "duplicate_parent": [StrOptions({"copy", "original"})],
    }

    def __init__(self, K: int = 5, K_th: float = 0.05, rho_percentile: float = 60.0,
                 quantization: bool = True, deduplication: bool = True, temporal: bool = True,
                 snake_fan: bool = True, merges: bool = True, greedy: bool = True,
                 duplicate_parent: str = "copy"):
        self.K = K
        self.K_th = K_th
        self.rho_percentile = rho_percentile
        self.quantization = quantization
        self.deduplication = deduplication
        self.temporal = temporal
        self.snake_fan = snake_fan
        self.merges = merges
        self.greedy = greedy
        self.duplicate_parent = duplicate_parent

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        n = len(models)
        order = models.time_order()
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        t = np.where(np.isfinite(models.created_at), models.created_at, 0.0)
        d = euclidean(models.vectors)
        np.fill_diagonal(d, np.inf)
        given = dict(known)
        if self.merges:
            for c, ps in models.documented_parents.items():
                given.setdefault(c, ps)
        elif given:  # without the merge rule only single known parents are used
            given = {c: ps for c, ps in given.items() if len(ps) <= 1}

        blocked = np.zeros(n, bool)  # cannot be anyone's parent
        if self.quantization:
            blocked |= models.quantized
        first_copy = np.arange(n)
        if self.deduplication:
            first_copy = _first_copies(models, d, order)
            blocked |= first_copy != np.arange(n)
        cand = d.copy()
        cand[blocked, :] = np.inf

        k = self.K
        near = np.argsort(cand, axis=0)[:k].T  # K nearest neighbours of each node (rows)
        near_d = np.take_along_axis(cand.T, near, axis=1)
        corr = np.full(n, np.nan)
        for i in range(n):
            ok = np.isfinite(near_d[i])
            if ok.sum() >= 3:
                dt = np.abs(t[near[i][ok]] - t[i])
                if np.std(dt) > 0 and np.std(near_d[i][ok]) > 0:
                    corr[i] = np.corrcoef(near_d[i][ok], dt)[0, 1]
        rho_th = np.nanpercentile(corr, self.rho_percentile) if np.isfinite(corr).any() else np.inf

        parents: dict[int, tuple[int, ...]] = {}
        relations: dict[int, str] = {}
        conf: dict[int, float] = {}
        edges_s, edges_t, edges_w = [], [], []
        for i in order.tolist():
            if i in given:
                continue
            if first_copy[i] != i and self.duplicate_parent == "copy":
                continue  # filled from its first copy below
            col = cand[:, i]
            if self.temporal:
                col = np.where(rank < rank[i], col, np.inf)
            earlier = np.argsort(col)[:k]
            earlier = earlier[np.isfinite(col[earlier])]
            if not len(earlier):
                continue  # the oldest model: a root
            if not self.greedy:
                edges_s += earlier.tolist()
                edges_t += [i] * len(earlier)
                edges_w += col[earlier].tolist()
                continue
            spread = near_d[i, -1] - near_d[i, 0] if np.isfinite(near_d[i, -1]) else np.inf
            if not self.snake_fan or spread > self.K_th or not (corr[i] <= rho_th):
                p = int(earlier[0])  # snake (or wide spread): the nearest earlier model
            else:
                p = int(earlier[np.argmin(rank[earlier])])  # fan: the oldest near model
            parents[i] = (p,)
            second = col[earlier[1]] if len(earlier) > 1 else np.inf
            conf[i] = float(1.0 - col[p] / second) if np.isfinite(second) and second > 0 else 1.0
        if not self.greedy and edges_s:
            parent = minimum_branching_forest(n, np.array(edges_s), np.array(edges_t), np.array(edges_w),
                                              root_cost=float(np.sum(edges_w)) + 1.0)
            for i in np.flatnonzero(parent >= 0).tolist():
                if i not in given:
                    parents[i] = (int(parent[i]),)
                    conf[i] = 0.5
        for c, ps in given.items():
            if ps:
                parents[c] = ps
                conf[c] = 1.0
        for i in range(n):
            if first_copy[i] != i and i not in given and self.duplicate_parent == "copy":
                ps = parents.get(int(first_copy[i]), ())
                if ps:
                    parents[i] = ps
                    conf[i] = conf.get(int(first_copy[i]), 0.5)
            elif first_copy[i] != i and i not in given:
                parents[i] = (int(first_copy[i]),)
                conf[i] = 1.0
        for c, ps in parents.items():
            relations[c] = ("quantized" if models.quantized[c] else "merge" if len(ps) > 1 else "finetune")
        result = ChartResult.from_parents(parents, relations, conf)
        if not models.has_times:
            result.messages.append(f"{n} models without distinct upload times: Algorithm 1 orders them "
                                   "by input row")
        return result


def _first_copies(models: ChartInput, d: np.ndarray, order: np.ndarray) -> np.ndarray:
    """For every model, the earliest model it is an exact duplicate of (itself if none)."""
    n = len(models)
    first = np.arange(n)
    seen: dict[str, int] = {}
    for i in order.tolist():
        h = models.content_hashes[i]
        if h is not None:
            if h in seen:
                first[i] = seen[h]
                continue
            seen[h] = i
        zeros = np.flatnonzero(d[:, i] == 0)
        earlier = [j for j in zeros.tolist() if first[j] == j and j in set(order[: list(order).index(i)].tolist())]
        if earlier:
            first[i] = earlier[0]
    return first
