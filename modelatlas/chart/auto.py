"""``auto``: our charting method (the recommended default).

Models are charted one at a time in upload order (or, without usable times, in decreasing
kurtosis — MoTHer's specialisation direction); each model only looks at models charted before it,
so adding models one by one gives the same graph as charting them all at once
(:class:`OnlineCharter`). For each model, the first rule that applies decides:

1. **known** parents (stem, documented merges) are kept;
2. **duplicate**: an earlier model with the same content hash (or distance 0) is the parent;
3. candidates: the ``n_candidates`` nearest earlier models that are not quantised
   (:class:`~modelatlas.chart.neighbors.GrowingIndex`, exact then HNSW);
4. **root**: the nearest candidate is as far as an unrelated initialisation (relative distance
   ``|x - p| / max(|x|, |p|)`` above ``root_distance``);
5. **quantised** (flag, or few distinct values): the nearest candidate, relation ``quantized``;
6. **LoRA**: a candidate whose per-layer difference has low rank (at most ``lora_rank_share`` of
   the full rank) — the lowest-rank one, nearest on ties — relation ``adapter``;
7. **merge**: the model is (almost) a convex combination of two or three of its
   ``merge_candidates`` nearest earlier models (simplex-constrained least squares), residual below
   ``merge_residual`` × the nearest distance;
8. **fine-tune**: the nearest candidate ``p`` — unless the model is a *sibling* of ``p``: with
   ``q`` the parent of ``p``, a child of ``p`` satisfies ``|x-q|² - |p-q|² ≈ |x-p|²``
   (independent increments meet at a right angle), a sibling sharing ``p``'s update direction
   gives ``≈ 0``; below ``sibling_angle`` × ``|x-p|²`` the parent is ``q`` (fans).

Each edge gets a raw score (the margin of its rule) turned into a probability by isotonic
regression per rule, fitted on held-out synthetic zoos (:mod:`modelatlas.chart.calibration`).
"""

from __future__ import annotations

import numpy as np

from modelatlas.chart.base import ChartInput, ChartMethod, ChartResult, register
from modelatlas.chart.distances import difference_rank, kurtosis_score
from modelatlas.chart.neighbors import GrowingIndex


@register
class Auto(ChartMethod):
    """Rule cascade over nearest earlier models; see the module docstring.

    Parameters
    ----------
    n_candidates:
        Earlier neighbours examined per model.
    root_distance:
        Relative distance above which a model starts a new tree.
    lora_rank_share:
        Largest difference rank, as a share of the full rank, that counts as a LoRA update.
    rank_rtol:
        Singular-value threshold for ranks (relative to the layer's largest singular value).
    merge_residual:
        Largest residual of the convex fit, relative to the nearest distance, for a merge.
    merge_candidates:
        Earlier neighbours offered to the convex fit (merge parents can be far apart).
    sibling_angle:
        Threshold of the sibling test (0 = never a sibling, 1 = always).
    order:
        ``"auto"`` (time when usable, else kurtosis), ``"time"`` or ``"kurtosis"``.
    exact_up_to:
        Exact neighbour search up to this many models, HNSW beyond.
    rules:
        Rules switched on (for the ablation table): any of ``duplicates``, ``roots``,
        ``quantized``, ``lora``, ``merges``, ``siblings``, ``known``.
    calibrate:
        Turn raw scores into calibrated probabilities.
    """

    name = "auto"
    RULES = ("known", "duplicates", "roots", "quantized", "lora", "merges", "siblings")

    def __init__(self, n_candidates: int = 8, root_distance: float = 0.6, lora_rank_share: float = 0.25,
                 rank_rtol: float = 1e-3, merge_residual: float = 0.1, merge_candidates: int = 24,
                 sibling_angle: float = 0.5,
                 order: str = "auto", exact_up_to: int = 2000, rules: tuple[str, ...] = RULES,
                 calibrate: bool = True):
        self.n_candidates = n_candidates
        self.root_distance = root_distance
        self.lora_rank_share = lora_rank_share
        self.rank_rtol = rank_rtol
        self.merge_residual = merge_residual
        self.merge_candidates = merge_candidates
        self.sibling_angle = sibling_angle
        self.order = order
        self.exact_up_to = exact_up_to
        self.rules = tuple(rules)
        self.calibrate = calibrate

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        charter = OnlineCharter(self, models.vectors.shape[1], models.layers)
        given = dict(models.documented_parents) if "known" in self.rules else {}
        given.update(known)
        for i in self.processing_order(models).tolist():
            charter.add(i, models.vectors[i], quantized=bool(models.quantized[i]),
                        content_hash=models.content_hashes[i], parents=given.get(i))
        result = charter.result()
        if self.order == "auto" and not models.has_times:
            result.messages.append(f"{len(models)} models without distinct upload times: edge direction "
                                   "from the kurtosis score (parents first)")
        return result

    def processing_order(self, models: ChartInput) -> np.ndarray:
        use_time = self.order == "time" or (self.order == "auto" and models.has_times)
        if use_time:
            return models.time_order()
        return np.argsort(-kurtosis_score(models), kind="stable")


class OnlineCharter:
    """Charts models as they arrive (the state behind :class:`Auto`).

    ``add`` decides a model's parents from the models added before it and never revisits them.
    """

    def __init__(self, method: Auto, dim: int, layers):
        self.m = method
        self.layers = layers
        self.index = GrowingIndex(dim, exact_up_to=method.exact_up_to)
        self.vecs: dict[int, np.ndarray] = {}
        self.norm: dict[int, float] = {}
        self.parents: dict[int, tuple[int, ...]] = {}
        self.relation: dict[int, str] = {}
        self.kind: dict[int, str] = {}
        self.score: dict[int, float] = {}
        self.hashes: dict[str, int] = {}

    def add(self, label: int, vector: np.ndarray, *, quantized: bool = False,
            content_hash: str | None = None, parents: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """Chart one model; returns its predicted parents (empty for a root)."""
        v = np.asarray(vector, np.float64)
        rules = self.m.rules
        quantized = quantized or ("quantized" in rules and looks_quantized(v))
        self.vecs[label] = v
        self.norm[label] = float(np.sqrt(v @ v))
        decided = self._decide(label, v, quantized, content_hash, parents)
        ps, rel, kind, score = decided
        if ps:
            self.parents[label] = ps
            self.relation[label] = rel
        self.kind[label] = kind
        self.score[label] = score
        if content_hash is not None:
            self.hashes.setdefault(content_hash, label)
        if not quantized and kind != "duplicate":  # leaves, as in Algorithm 1
            self.index.add(label, v)
        return ps

    def _decide(self, label, v, quantized, content_hash, parents):
        m, rules = self.m, self.m.rules
        if parents is not None:
            rel = "merge" if len(parents) > 1 else ("quantized" if quantized else "finetune")
            return tuple(parents), rel, "known", 1.0
        if "duplicates" in rules and content_hash is not None and content_hash in self.hashes:
            return (self.hashes[content_hash],), "finetune", "duplicate", 1.0
        cand, dist = self.index.query(v, m.n_candidates)
        if not len(cand):
            return (), None, "first", 1.0
        if "duplicates" in rules and dist[0] == 0.0:
            return (int(cand[0]),), "finetune", "duplicate", 1.0
        rel_d = dist[0] / max(self.norm[label], self.norm[int(cand[0])], 1e-30)
        if "roots" in rules and rel_d > m.root_distance:
            return (), None, "root", float(rel_d - m.root_distance)
        margin = float(dist[1] / dist[0]) if len(dist) > 1 and dist[0] > 0 else 10.0
        if quantized:
            return (int(cand[0]),), "quantized", "quantized", margin
        if "lora" in rules:
            hit = self._lora(v, cand, dist)
            if hit is not None:
                return hit
        if "merges" in rules and len(cand) >= 2:
            hit = self._merge(v, *self.index.query(v, m.merge_candidates))
            if hit is not None:
                return hit
        p = int(cand[0])
        if "siblings" in rules and p in self.parents and len(self.parents[p]) == 1:
            q = self.parents[p][0]
            d_xq = np.sum((v - self.vecs[q]) ** 2)
            d_pq = np.sum((self.vecs[p] - self.vecs[q]) ** 2)
            angle = float((d_xq - d_pq) / max(dist[0] ** 2, 1e-300))
            if angle < m.sibling_angle:
                return (q,), "finetune", "sibling", float(m.sibling_angle - angle)
            return (p,), "finetune", "nearest", float(min(angle - m.sibling_angle, margin))
        return (p,), "finetune", "nearest", margin

    def _lora(self, v, cand, dist):
        m = self.m
        worst = np.zeros(len(cand))
        full = min(min(b.rows, b.cols) for b in self.layers)
        for b in self.layers:
            x = v[b.offset:b.offset + b.size].reshape(b.rows, b.cols)
            c = np.stack([self.vecs[int(j)][b.offset:b.offset + b.size].reshape(b.rows, b.cols) for j in cand])
            worst = np.maximum(worst, difference_rank(c, x[None], rtol=m.rank_rtol))
        best = np.lexsort((dist, worst))[0]
        if worst[best] > m.lora_rank_share * full or worst[best] == 0:
            return None
        others = np.delete(worst, best)
        gap = float((others.min() - worst[best]) / full) if len(others) else 1.0
        return (int(cand[best]),), "adapter", "lora", gap

    def _merge(self, v, cand, dist):
        m = self.m
        x = np.stack([self.vecs[int(j)] for j in cand])
        w = simplex_least_squares(x.T, v)
        resid = float(np.linalg.norm(x.T @ w - v))
        support = np.flatnonzero(w > 0.05)
        if len(support) < 2 or len(support) > 3 or resid > m.merge_residual * dist[0]:
            return None
        ps = tuple(sorted(int(cand[j]) for j in support))
        return ps, "merge", "merge", float(1.0 - resid / (m.merge_residual * dist[0]))

    def result(self) -> ChartResult:
        from modelatlas.chart.calibration import calibrated

        conf = {c: (calibrated(self.kind[c], self.score[c]) if self.m.calibrate
                    else float(np.clip(self.score[c], 0.0, 1.0))) for c in self.parents}
        return ChartResult.from_parents(self.parents, self.relation, conf)


def looks_quantized(v: np.ndarray, max_levels: int = 256) -> bool:
    """True when a fingerprint holds at most ``max_levels`` distinct values in at least 4× as many."""
    return len(v) >= 4 * max_levels and len(np.unique(v)) <= max_levels


def simplex_least_squares(a: np.ndarray, b: np.ndarray, *, iters: int = 300) -> np.ndarray:
    """``argmin |a w - b|`` over the probability simplex (``w >= 0``, ``sum w = 1``).

    Non-negative least squares on the system augmented with a heavily weighted ``sum w = 1``
    row (the standard penalty form of the equality constraint).
    """
    from scipy.optimize import nnls

    scale = max(float(np.abs(a).max()), 1e-12) * 1e3
    aa = np.vstack([a, np.full((1, a.shape[1]), scale)])
    bb = np.concatenate([b, [scale]])
    w, _ = nnls(aa, bb, maxiter=iters)
    return w
