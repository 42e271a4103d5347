"""MoTHer: Model Tree Heritage Recovery, as the paper writes it.

1. Distances: ℓ_FT (Eq. 1, max over layers of the max difference, layers min-max normalised over
   the tree, Sec. 6) or ℓ_LoRA (Eq. 2, max over layers of the rank of the difference, singular
   values above a threshold). ``distance="auto"`` takes ℓ_LoRA when the pairwise differences of
   a tree are low-rank, else ℓ_FT.
2. Direction: kurtosis score k (Eq. 3); K_ij = 1 if k(v_i) < k(v_j); T_ij = 1 in the
   generalisation stage (Eq. 5); M = D + λ (K xor T) with λ = c · mean(D) (Eq. 6).
3. Tree: Chu-Liu-Edmonds minimum directed spanning tree of M (one root per tree).
4. Several trees: Ward clustering first (Sec. 5.2), on pairwise L1 distances, number of trees
   known or found automatically.

Options for the public code's variants (ENGINEERING-NOTES.md): ``layer_reduce="sum"``,
``per_layer="rms"`` with ``layer_reduce="mean"``, ``c=0.3`` with ``mean_with_diagonal=True``.

References
----------
Horwitz, Shul, Hoshen, "On the Origin of Llamas: Model Tree Heritage Recovery", 2024.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from modelatlas.chart.arborescence import dense_to_edges, minimum_branching_forest
from modelatlas.chart.clustering import ward_clusters
from modelatlas.chart.distances import finetune_distance, kurtosis_score, lora_distance, stage_from_known
from modelatlas.chart.estimator import ChartMethod, register
from modelatlas.chart.graph import restrict_parents
from modelatlas.chart.types import ChartInput, ChartResult


@register
class MoTHer(ChartMethod):
    """MoTHer recovery (Horwitz et al. 2024, Sec. 5.2).

    Parameters
    ----------
    distance:
        ``"ft"`` (ℓ_FT), ``"lora"`` (ℓ_LoRA) or ``"auto"`` (ℓ_LoRA when differences are low-rank).
    layer_reduce:
        ``"max"`` over layers (paper), ``"sum"`` (public code) or ``"mean"``.
    per_layer:
        ``"max"`` difference per layer (paper) or ``"rms"`` (later public release).
    c:
        λ = c · mean(D).
    mean_with_diagonal:
        Average D over all n² entries including the zero diagonal (public code).
    stage:
        ``"specialization"`` (T = 0, fine-tuning lowers kurtosis), ``"generalization"`` (T = 1),
        or ``"auto"``: read from the known edges (the stem), specialisation when none are known.
    n_trees:
        Number of trees when known; ``None`` finds it from the Ward linkage.
    rank_rtol:
        Singular values above ``rank_rtol`` × the layer's largest one count for ℓ_LoRA.
    """

    name = "mother"
    _parameter_constraints = {
        "distance": [StrOptions({"auto", "ft", "lora"})],
        "layer_reduce": [StrOptions({"max", "sum", "mean"})],
        "per_layer": [StrOptions({"max", "rms"})],
        "c": [Interval(Real, 0, None, closed="left")],
        "mean_with_diagonal": ["boolean"],
        "stage": [StrOptions({"auto", "specialization", "generalization"})],
        "n_trees": [Interval(Integral, 1, None, closed="left"), None],
        "rank_rtol": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(self, distance: str = "auto", layer_reduce: str = "max", per_layer: str = "max",
                 c: float = 0.3, mean_with_diagonal: bool = False, stage: str = "auto",
                 n_trees: int | None = None, rank_rtol: float = 1e-3):
        self.distance = distance
        self.layer_reduce = layer_reduce
        self.per_layer = per_layer
        self.c = c
        self.mean_with_diagonal = mean_with_diagonal
        self.stage = stage
        self.n_trees = n_trees
        self.rank_rtol = rank_rtol

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        n = len(models)
        if models.components is not None:
            labels = np.zeros(n, dtype=np.int64)  # one known component per call
        else:
            l1 = _l1(models.vectors)
            labels = ward_clusters(l1, self.n_trees)
        stage = self.stage
        if stage == "auto":
            stage = stage_from_known(kurtosis_score(models), known)
        result = ChartResult.empty()
        for lab in np.unique(labels):
            rows = np.flatnonzero(labels == lab)
            if len(rows) > 1:
                result = result.concat(self.chart_tree(models.subset(rows), stage, restrict_parents(known, rows)),
                                       rows)
        return result

    def distances(self, models: ChartInput) -> tuple[np.ndarray, str]:
        """The distance matrix D of one tree and the relation it implies."""
        kind = self.distance
        if kind == "auto":
            kind = "lora" if _low_rank(models, self.rank_rtol) else "ft"
        if kind == "lora":
            return lora_distance(models, layer_reduce=self.layer_reduce, rtol=self.rank_rtol), "adapter"
        return finetune_distance(models, layer_reduce=self.layer_reduce, per_layer=self.per_layer), "finetune"

    def chart_tree(self, models: ChartInput, stage: str = "specialization",
                   known: dict[int, tuple[int, ...]] | None = None) -> ChartResult:
        """MoTHer on models assumed to form one tree, in the given training stage.

        Known edges constrain the tree (the paper has none; the Model Atlas protocol gives a
        stem): a known child keeps only its (first) known parent's edge, a known root none.
        """
        n = len(models)
        d, relation = self.distances(models)
        k = kurtosis_score(models)
        big_k = (k[:, None] < k[None, :]).astype(float)  # K_ij: edge i->j goes up in kurtosis
        t = 1.0 if stage == "generalization" else 0.0
        off = ~np.eye(n, dtype=bool)
        mean = d.mean() if self.mean_with_diagonal else d[off].mean()
        m = d + self.c * mean * np.logical_xor(big_k, t)
        m[~off] = np.inf
        root_cost = float(m[np.isfinite(m)].sum()) + 1.0
        costs = np.full(n, root_cost)
        for c, ps in (known or {}).items():
            m[:, c] = np.inf
            if ps:
                m[ps[0], c] = 0.0
                costs[c] = np.inf
            else:
                costs[c] = 0.0
        s, tt, w = dense_to_edges(m)
        finite = np.isfinite(costs)
        parent = minimum_branching_forest(n, s, tt, w, root_cost=np.where(finite, costs, 10 * root_cost))
        kids = np.flatnonzero(parent >= 0)
        cost = m[parent[kids], kids]
        second = np.array([np.partition(m[:, j], 1)[1] if n > 2 else np.inf for j in kids])
        conf = np.where(np.isfinite(second), 1.0 - cost / np.maximum(second, 1e-12), 1.0)
        return ChartResult(parent[kids], kids, np.full(len(kids), relation, dtype=object),
                           np.clip(conf, 0.0, 1.0))


def _l1(x: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(x.astype(np.float64), x.astype(np.float64), metric="cityblock")


def _low_rank(models: ChartInput, rtol: float, sample: int = 64) -> bool:
    """True when most pairwise layer differences have rank below half the full rank."""
    n = len(models)
    rng = np.random.default_rng(0)
    i = rng.integers(0, n, sample)
    j = rng.integers(0, n, sample)
    keep = i != j
    if not keep.any():
        return False
    r = lora_distance(models, layer_reduce="max", rtol=rtol, pairs=(i[keep], j[keep]))
    full = min(min(b.rows, b.cols) for b in models.layers)
    return bool(np.median(r) < full / 2)
