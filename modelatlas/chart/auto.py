"""``auto``: our charting method (the recommended default).

Models are charted one at a time in upload order (or, without usable times, breadth-first over the
fingerprints' minimum spanning forest from roots chosen by MoTHer's kurtosis score,
:mod:`modelatlas.chart.tree_order`); each model only looks at models charted before it,
so adding models one by one gives the same graph as charting them all at once
(:class:`OnlineCharter`). For each model, the first rule that applies decides:

1. **known** parents (stem, documented merges) are kept;
2. **duplicate**: an earlier model with the same content hash (or distance 0) is the parent;
3. candidates: the ``n_candidates`` nearest earlier models that are not quantised
   (:class:`~modelatlas.chart.neighbors.GrowingIndex`, exact then HNSW);
4. **root**: the nearest candidate is as far as an unrelated initialisation (relative distance
   ``|x - p| / max(|x|, |p|)`` above ``root_distance``);
5. **quantised** (flag, or few distinct values): the nearest candidate, relation ``quantized``;
6. **LoRA**: one of the ``lora_candidates`` nearest candidates whose per-layer difference has low rank (at most ``lora_rank_share`` of
   the full rank) — the lowest-rank one, nearest on ties — relation ``adapter``;
7. **merge**: the model is (almost) a convex combination of two or three of its
   ``merge_candidates`` nearest earlier models (simplex-constrained least squares), residual below
   ``merge_residual`` × the nearest distance;
8. **fine-tune**: the nearest candidate ``p`` — unless the model is a *sibling* of ``p``: with
   ``q`` the parent of ``p``, a child of ``p`` continues ``p``'s update, so
   ``|x-q|² - |p-q|² ≈ |x-p|²`` (independent increments meet at a right angle) and
   ``x - q`` points along ``p - q``; a sibling gives a ratio near 0 (a shared update direction,
   as in sweeps) or a small cosine (different tasks from one parent). Then the parent is ``q``.

Each edge gets a raw score (the margin of its rule) turned into a probability by isotonic
regression per rule, fitted on held-out synthetic and trained zoos (:mod:`modelatlas.chart.calibration`).
"""

from __future__ import annotations

import hashlib

import numpy as np

from modelatlas.chart.base import ChartInput, ChartMethod, ChartResult, register
from modelatlas.chart.distances import kurtosis_score, stage_from_known
from modelatlas.chart.tree_order import known_parents_first, spanning_tree_order
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
    lora_candidates:
        Nearest candidates given the low-rank test.
    rank_rtol:
        Singular-value threshold for ranks (relative to the layer's largest singular value).
    merge_residual:
        Largest residual of the convex fit, relative to the nearest distance, for a merge.
    merge_candidates:
        Earlier neighbours offered to the convex fit (merge parents can be far apart).
    sibling_angle, sibling_cos:
        Thresholds of the sibling test: ``p``'s sibling when the Pythagorean ratio is below
        ``sibling_angle`` or the cosine of ``x - q`` and ``p - q`` is below ``sibling_cos``.
    order:
        ``"auto"`` (time when usable, else ``fallback``), ``"time"``, ``"tree"`` (the spanning-forest
        order of :mod:`modelatlas.chart.tree_order`) or ``"kurtosis"`` (MoTHer's score alone).
    fallback:
        The order without usable times when ``order="auto"``: ``"tree"`` or ``"kurtosis"`` (the
        order ``auto`` used before the forest; kept for the ablation).
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
    ORDERS = ("auto", "time", "tree", "kurtosis")

    def __init__(self, n_candidates: int = 8, root_distance: float = 0.6, lora_rank_share: float = 0.25,
                 rank_rtol: float = 1e-3, lora_candidates: int = 8, merge_residual: float = 0.1,
                 merge_candidates: int = 24,
                 sibling_angle: float = 0.5, sibling_cos: float = 0.45,
                 order: str = "auto", fallback: str = "tree", exact_up_to: int = 1000,
                 rules: tuple[str, ...] = RULES,
                 calibrate: bool = True):
        self.n_candidates = n_candidates
        self.root_distance = root_distance
        self.lora_rank_share = lora_rank_share
        self.rank_rtol = rank_rtol
        self.lora_candidates = lora_candidates
        self.merge_residual = merge_residual
        self.merge_candidates = merge_candidates
        self.sibling_angle = sibling_angle
        self.sibling_cos = sibling_cos
        self.order = order
        self.fallback = fallback
        self.exact_up_to = exact_up_to
        self.rules = tuple(rules)
        self.calibrate = calibrate

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        result = self.charter(models, known).result()
        if self.order == "auto" and not models.has_times:
            how = ("breadth-first over the fingerprints' spanning forest, from roots chosen by the kurtosis score"
                   if self.fallback == "tree" else "in kurtosis order (parents first)")
            result.messages.append(f"{len(models)} models without distinct upload times: models are decided {how}")
        return result

    def charter(self, models: ChartInput, known: dict[int, tuple[int, ...]] | None = None) -> "OnlineCharter":
        """Chart ``models`` (one architecture) and return the charter's state.

        The nearest earlier neighbours of all models are found in bulk
        (:func:`~modelatlas.chart.neighbors.earlier_neighbors`), then models are decided one by one.
        """
        from modelatlas.chart.neighbors import earlier_neighbors

        given = dict(models.documented_parents) if "known" in self.rules else {}
        given.update(known or {})
        order = self.processing_order(models, given)
        charter = OnlineCharter(self, models.vectors.shape[1], models.layers, capacity=len(models), bulk=True)
        eligible = charter.eligibility(models, order)
        k = max(self.n_candidates, self.merge_candidates)
        near, near_d = earlier_neighbors(models.vectors, order, eligible, k, exact_up_to=self.exact_up_to)
        for i in order.tolist():
            ok = near[i] >= 0
            charter.add(i, models.vectors[i], quantized=bool(models.quantized[i]),
                        content_hash=models.content_hashes[i], parents=given.get(i),
                        neighbors=(near[i][ok], near_d[i][ok]))
        return charter

    def processing_order(self, models: ChartInput, known: dict[int, tuple[int, ...]] | None = None) -> np.ndarray:
        """Upload order; without usable times, breadth-first over the fingerprints' spanning forest
        from each tree's root (:mod:`modelatlas.chart.tree_order`), or (``order="kurtosis"``) the
        kurtosis order of the training stage that the known edges show (parents first: falling
        kurtosis in specialisation). The kurtosis order also picks the trees' roots. In every
        order known parents come before their children (upload times can be noisy)."""
        if self.order not in self.ORDERS or self.fallback not in ("tree", "kurtosis"):
            raise ValueError(f"unknown order {self.order!r} / fallback {self.fallback!r}; use one of "
                             f"{', '.join(self.ORDERS)} / tree, kurtosis")
        order = self.order
        if order == "auto":
            order = "time" if models.has_times else self.fallback
        if order == "time":
            return known_parents_first(models.time_order(), known or {})
        score = kurtosis_score(models)
        sign = -1.0 if stage_from_known(score, known or {}) == "specialization" else 1.0
        by_kurtosis = np.argsort(sign * score, kind="stable")
        if order == "kurtosis":
            return known_parents_first(by_kurtosis, known or {})
        rank = np.empty(len(models), np.int64)
        rank[by_kurtosis] = np.arange(len(models))
        order = spanning_tree_order(models.vectors, rank, known or {}, root_distance=self.root_distance,
                                    exact_up_to=self.exact_up_to)
        return known_parents_first(order, known or {})


class OnlineCharter:
    """Charts models as they arrive (the state behind :class:`Auto`).

    ``add`` decides a model's parents from the models added before it and never revisits them.
    Quantised models and exact duplicates (same content hash or same fingerprint bytes as an
    earlier model) are leaves: never offered as candidates, as in Algorithm 1.
    """

    def __init__(self, method: Auto, dim: int, layers, *, capacity: int = 1024, bulk: bool = False):
        self.m = method
        self.layers = layers
        self.index = None if bulk else GrowingIndex(dim, exact_up_to=method.exact_up_to)
        self.vecs = np.zeros((max(capacity, 1), dim))
        self.row: dict[int, int] = {}
        self.norm: dict[int, float] = {}
        self.spectral: dict[int, np.ndarray] = {}
        self.parents: dict[int, tuple[int, ...]] = {}
        self.relation: dict[int, str] = {}
        self.kind: dict[int, str] = {}
        self.score: dict[int, float] = {}
        self.hashes: dict[str, int] = {}
        self.full_rank = min(min(b.rows, b.cols) for b in layers)

    def _is_quantized(self, v: np.ndarray, flagged: bool) -> bool:
        return flagged or ("quantized" in self.m.rules and looks_quantized(v))

    def _keys(self, v: np.ndarray, content_hash: str | None) -> list[str]:
        keys = ["v:" + hashlib.blake2b(np.asarray(v, np.float32).tobytes(), digest_size=16).hexdigest()]
        return keys + ([f"h:{content_hash}"] if content_hash is not None else [])

    def eligibility(self, models: ChartInput, order: np.ndarray) -> np.ndarray:
        """Which models may be candidates (neither quantised nor a duplicate of an earlier one)."""
        ok = np.ones(len(models), bool)
        seen: set[str] = set()
        for i in order.tolist():
            v = models.vectors[i]
            keys = self._keys(v, models.content_hashes[i])
            if self._is_quantized(v, bool(models.quantized[i])) or (
                    "duplicates" in self.m.rules and any(k in seen for k in keys)):
                ok[i] = False
            seen.update(keys)
        return ok

    def add(self, label: int, vector: np.ndarray, *, quantized: bool = False,
            content_hash: str | None = None, parents: tuple[int, ...] | None = None,
            neighbors: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[int, ...]:
        """Chart one model; returns its predicted parents (empty for a root).

        ``neighbors`` (labels and distances of the nearest earlier eligible models, nearest
        first) may be given when computed in bulk; otherwise the growing index is asked.
        """
        v = np.asarray(vector, np.float64)
        quantized = self._is_quantized(v, quantized)
        r = len(self.row)
        if r == len(self.vecs):
            self.vecs = np.vstack([self.vecs, np.zeros_like(self.vecs)])
        self.vecs[r] = v
        self.row[label] = r
        self.norm[label] = float(np.sqrt(v @ v))
        keys = self._keys(v, content_hash)
        duplicate_of = next((self.hashes[k] for k in keys if k in self.hashes), None)
        if "duplicates" not in self.m.rules:
            duplicate_of = None
        if neighbors is None:
            neighbors = self.index.query(v, max(self.m.n_candidates, self.m.merge_candidates))
        ps, rel, kind, score = self._decide(label, v, quantized, duplicate_of, parents, neighbors)
        if ps:
            self.parents[label] = ps
            self.relation[label] = rel
        self.kind[label] = kind
        self.score[label] = score
        for k in keys:
            self.hashes.setdefault(k, label)
        if not quantized and duplicate_of is None:
            if "lora" in self.m.rules:
                self.spectral[label] = np.array([s[0] for s in self._singular_values([label], None)])
            if self.index is not None:
                self.index.add(label, v)
        return ps

    def _mat(self, label: int, b) -> np.ndarray:
        return self.vecs[self.row[label], b.offset:b.offset + b.size].reshape(b.rows, b.cols)

    def _decide(self, label, v, quantized, duplicate_of, parents, neighbors):
        m, rules = self.m, self.m.rules
        if parents is not None:
            rel = "merge" if len(parents) > 1 else ("quantized" if quantized else "finetune")
            return tuple(parents), rel, "known", 1.0
        if duplicate_of is not None:
            return (duplicate_of,), "finetune", "duplicate", 1.0
        wide, wide_d = neighbors
        cand, dist = wide[:m.n_candidates], wide_d[:m.n_candidates]
        if not len(cand):
            return (), None, "first", 1.0
        rel_d = dist[0] / max(self.norm[label], self.norm[int(cand[0])], 1e-30)
        if "roots" in rules and rel_d > m.root_distance:
            return (), None, "root", float(rel_d - m.root_distance)
        margin = float(dist[1] / dist[0]) if len(dist) > 1 and dist[0] > 0 else 10.0
        if quantized:
            return (int(cand[0]),), "quantized", "quantized", margin
        if "lora" in rules:
            hit = self._lora(label, cand[:m.lora_candidates], dist[:m.lora_candidates])
            if hit is not None:
                return hit
        if "merges" in rules and len(cand) >= 2:
            hit = self._merge(v, wide[:m.merge_candidates], wide_d[:m.merge_candidates])
            if hit is not None:
                return hit
        p = int(cand[0])
        if "siblings" in rules:
            return self._climb(v, p, float(dist[0]), margin)
        return (p,), "finetune", "nearest", margin

    def _climb(self, v, p: int, d_xp: float, margin: float):
        """Walk up from the nearest candidate while the model looks like a sibling, not a child.

        With ``q`` the parent of ``p``: a child of ``p`` continues ``p``'s update
        (``x - q ≈ (p - q) + step``, the step at a right angle to ``p - q``), so the Pythagorean
        ratio ``(|x-q|² - |p-q|²) / |x-p|²`` is near 1 and ``x - q`` points along ``p - q``. A
        sibling gives a ratio near 0 (a shared update, as in sweeps) or a small cosine (another
        task from the same parent): then ``q`` becomes the candidate, and the test repeats (a
        cousin climbs two levels).
        """
        m = self.m
        kind, score = "nearest", margin
        seen = {p}
        while p in self.parents and len(self.parents[p]) == 1:
            q = self.parents[p][0]
            if q in seen:
                break
            vq = self.vecs[self.row[q]]
            xq, pq = v - vq, self.vecs[self.row[p]] - vq
            d_xq, d_pq = float(xq @ xq), float(pq @ pq)
            angle = (d_xq - d_pq) / max(d_xp ** 2, 1e-300)
            cos = float(xq @ pq) / max(np.sqrt(d_xq * d_pq), 1e-300)
            gap = min(angle - m.sibling_angle, cos - m.sibling_cos)
            if gap >= 0:
                score = min(gap, margin) if kind == "nearest" else min(score, gap)
                break
            kind, score = "sibling", -gap
            seen.add(q)
            p, d_xp = q, float(np.sqrt(d_xq))
        return (p,), "finetune", kind, float(score)

    def _singular_values(self, labels, minus: int | None) -> list[np.ndarray]:
        """Singular values of every layer of each model in ``labels`` (minus model ``minus``),
        one array per (model, layer), computed in one stacked call per layer shape."""
        out: list[np.ndarray | None] = [None] * (len(labels) * len(self.layers))
        shapes: dict[tuple[int, int], list[int]] = {}
        for li, b in enumerate(self.layers):
            shapes.setdefault((b.rows, b.cols), []).append(li)
        for lis in shapes.values():
            mats = []
            for j in labels:
                for li in lis:
                    x = self._mat(int(j), self.layers[li])
                    mats.append(x - self._mat(minus, self.layers[li]) if minus is not None else x)
            sv = np.linalg.svd(np.stack(mats), compute_uv=False)
            k = 0
            for a in range(len(labels)):
                for li in lis:
                    out[a * len(self.layers) + li] = sv[k]
                    k += 1
        return out

    def _lora(self, label, cand, dist):
        """The candidate whose difference is low-rank in the adapted layers, if any.

        Per layer: rank 0 (untouched), low (at most ``lora_rank_share`` of the layer's full rank)
        or full. LoRA trains a few layers and often a new head at full rank, so a candidate
        qualifies when at least one layer is low-rank and low-rank layers outnumber full ones;
        the best has the fewest full layers, then the smallest total low rank, then is nearest.
        """
        m = self.m
        sv = self._singular_values(cand, label)
        L = len(self.layers)
        full_rank = np.array([min(b.rows, b.cols) for b in self.layers])
        n_full = np.zeros(len(cand))
        low_sum = np.zeros(len(cand))
        n_low = np.zeros(len(cand))
        for a, j in enumerate(cand):
            scale = self.spectral[int(j)]
            ranks = np.array([(sv[a * L + li] > m.rank_rtol * max(scale[li], 1e-30)).sum() for li in range(L)])
            low = (ranks > 0) & (ranks <= m.lora_rank_share * full_rank)
            n_low[a] = low.sum()
            n_full[a] = ((ranks > 0) & ~low).sum()
            low_sum[a] = ranks[low].sum()
        qualifies = (n_low >= 1) & (n_low >= n_full)
        if not qualifies.any():
            return None
        idx = np.flatnonzero(qualifies)
        best = idx[np.lexsort((dist[idx], low_sum[idx], n_full[idx]))[0]]
        others = np.delete(low_sum + 1000 * n_full + 1000 * ~qualifies, best)
        gap = float(min((others.min() - low_sum[best]) / max(low_sum[best], 1), 1.0)) if len(others) else 1.0
        return (int(cand[best]),), "adapter", "lora", gap

    def _merge(self, v, cand, dist):
        m = self.m
        x = self.vecs[[self.row[int(j)] for j in cand]]
        w, resid = simplex_least_squares(x.T, v, residual=True)
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


def simplex_least_squares(a: np.ndarray, b: np.ndarray, *, residual: bool = False):
    """``argmin |a w - b|`` over the probability simplex (``w >= 0``, ``sum w = 1``).

    The tall system is reduced to its normal equations: with ``G = aᵀa = RᵀR`` (Cholesky, a tiny
    ridge for collinear columns), ``|a w - b|² = |R w - R⁻ᵀ aᵀ b|² + const``; that small system is
    solved as non-negative least squares with a heavily weighted ``sum w = 1`` row (the penalty
    form of the equality constraint). (LAPACK's QR of the tall matrix is pathologically slow
    under OpenBLAS on the project machine.)

    Returns
    -------
    w, or (w, residual norm) when ``residual`` is true.
    """
    from scipy.linalg import solve_triangular
    from scipy.optimize import nnls

    g = a.T @ a
    g += np.eye(len(g)) * (1e-12 * max(float(np.trace(g)), 1e-300))
    r = np.linalg.cholesky(g).T
    rhs = solve_triangular(r, a.T @ b, trans="T")
    scale = max(float(np.abs(r).max()), 1e-12) * 1e3
    aa = np.vstack([r, np.full((1, a.shape[1]), scale)])
    bb = np.concatenate([rhs, [scale]])
    w, _ = nnls(aa, bb, maxiter=50 * a.shape[1])
    if not residual:
        return w
    return w, float(np.linalg.norm(a @ w - b))
