"""``learned``: a pair scorer trained on other zoo families, decoded as a minimum branching.

``auto``'s rules were each checked against generators they were not read off (docs/chart.md,
"What generalises"); this method instead *learns* how much each piece of evidence is worth, from
zoo families other than the one it charts (issue "Charting that generalises", item 3):

1. ``auto``'s first pass without its joint step (:class:`~modelatlas.chart.auto.Auto`) fixes what
   is exact or multi-parent — known parents, duplicates, merges found as convex combinations;
2. every other model ``x`` gets candidate parents ``p``: its ``n_candidates`` nearest earlier and
   nearest later eligible models (the joint pass's candidates, :mod:`modelatlas.chart.joint`),
   kept when neuron alignment says they are related (:mod:`modelatlas.chart.alignment`);
3. each pair ``(p, x)`` is described by :data:`FEATURES` — relative quantities (ranks among the
   candidates, distances relative to the nearest, alignment relative to the best candidate, rank
   shares), never an absolute scale one generator happens to use — and gradient-boosted trees
   (scikit-learn's ``HistGradientBoostingClassifier``) give ``P(p is a parent of x)``;
4. the parents are the cheapest forest of arborescences with edge cost ``-log P``
   (:func:`~modelatlas.chart.joint.branching_parents`, the decoding step of ``auto``'s joint pass);
5. each chosen edge's confidence is its probability mapped by isotonic regression fitted on
   *out-of-family* predictions of the training families (:func:`fit_scorer`).

Without training families, the default scorer is fitted at first use from synthetic zoos
(:data:`DEFAULT_SEEDS`; a few seconds, cached per process) — no fitted model ships with the
package. It has seen only the synthetic generator: pass a scorer fitted on zoo families
(:func:`fit_scorer`, ``bench chart --families``) for anything that matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from modelatlas.chart.alignment import alignment_testable, alignment_z
from modelatlas.chart.estimator import ChartMethod, SubsetOf, register
from modelatlas.chart.frozen import identical_layers
from modelatlas.chart.types import ChartInput, ChartResult, architecture_groups
from modelatlas.chart.calibration import calibrated, isotonic_maps
from modelatlas.chart.distances import kurtosis_score, stage_from_known
from modelatlas.chart.low_rank import adapter_evidence

#: Pair features, in column order (docs/chart.md, "learned").
FEATURES = (
    "rank",                 # place of p among x's candidates by distance (0: nearest)
    "rank_earlier",         # place among the candidates before x in the processing order (k: p is later)
    "log_d_over_nearest",   # log(d(p, x) / distance of x's nearest candidate)
    "log_d_over_p_nearest",  # log(d(p, x) / distance of p's own nearest eligible model)
    "relative_distance",    # d(p, x) / mean norm of the two (each layer at unit norm)
    "align",                # neuron-alignment statistic, sign(z) log(1 + |z|)
    "align_share",          # z / the largest z among x's candidates
    "later",                # p comes after x in the processing order
    "order_gap",            # (position of x - position of p) / models
    "timed",                # both upload times are known
    "adapter",              # the difference is adapter-shaped (chart/low_rank.py)
    "rank_share",           # total rank of the difference / total full rank
    "rank_above_simplest",  # (total rank - lowest total rank among x's candidates) / total full rank
    "full_share",           # layers changed at full rank / layers
    "identical_share",      # layers identical at the coarser storage dtype / layers
    "bits_child",           # significant bits of x's storage (8 bf16, 11 fp16, 24 fp32)
    "bits_differ",          # the two are stored at different precisions
    "child_quantized",      # x is quantised
    "between",              # min over other candidates q of (d(p,q) + d(q,x)) / d(p,x) - 1
    "closer_to_p",          # share of x's candidates nearer to p than x is
    "kurtosis_direction",   # MoTHer's direction score k(p) - k(x), signed by the training stage, in std units
    "n_candidates",         # related candidates of x
)
#: Synthetic zoo seeds the default scorer is fitted on (as the shipped calibration maps'), and
#: models per zoo.
DEFAULT_SEEDS = (1001, 1002, 1003)
DEFAULT_ZOO_MODELS = 200
#: Kinds of first-pass decision that are exact: no candidate pairs are built for them.
EXACT = ("known", "duplicate")
#: Kinds of first-pass decision kept by default (``Learned(fixed=...)``): exact ones, merges
#: (several parents, which a branching cannot give) and the two rules with direct physical
#: evidence — an adapter-shaped difference, a quantised copy (docs/chart.md, "learned").
FIXED = EXACT + ("merge", "lora", "quantized")
#: The trees' settings, chosen before any family was scored and never tuned on one: small trees,
#: a slow learning rate and an L2 penalty (a few thousand pairs per family).
TREES = {"max_iter": 150, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 20,
         "l2_regularization": 1.0}
#: Probabilities are clipped to this floor before ``-log``.
P_FLOOR = 1e-6


@dataclass
class GroupPairs:
    """One architecture group (and component) analysed: ``auto``'s first pass (its decision, kind
    and score per model), the candidate pairs of every model not decided exactly, and their
    features. Independent of any scorer, so training zoos are analysed once."""

    position: np.ndarray
    kind: list[str]
    first_parents: dict[int, tuple[int, ...]]
    first_relation: dict[int, str]
    first_score: dict[int, float]
    quantized: np.ndarray
    parent: np.ndarray
    child: np.ndarray
    features: np.ndarray
    adapter: np.ndarray
    label: np.ndarray = field(default_factory=lambda: np.zeros(0))  # 1 / 0, -1 where truth is unknown
    truth: object = None  # GroundTruth of the group (training only)


@dataclass
class ZooPairs:
    """A training zoo analysed (one :class:`GroupPairs` per group); ``models`` is kept so that a
    test can pin which zoos a scorer saw."""

    name: str
    models: ChartInput
    groups: list[GroupPairs]


@dataclass
class PairScorer:
    """Fitted trees and isotonic maps.

    Attributes
    ----------
    model:
        The fitted ``HistGradientBoostingClassifier``.
    calibration:
        Per kind (``learned``, ``merge``): isotonic breakpoints ``x`` and ``y`` fitted on
        out-of-family predictions.
    fitted_on:
        Names of the training zoos.
    """

    model: object
    calibration: dict
    fitted_on: list[str]

    def probability(self, features: np.ndarray) -> np.ndarray:
        """``P(p is a parent of x)`` for rows of :data:`FEATURES` (uncalibrated)."""
        if not len(features):
            return np.zeros(0)
        return self.model.predict_proba(np.asarray(features, np.float64))[:, 1]


def analyse(models: ChartInput, known: dict[int, tuple[int, ...]], *, n_candidates: int = 8,
            align_z: float = 6.0, exact_up_to: int = 1000) -> GroupPairs:
    """Candidate pairs of one group of models and their :data:`FEATURES`.

    Parameters
    ----------
    models:
        Models of one architecture (and component, when known).
    known:
        Known parents (kept fixed).
    n_candidates:
        Nearest earlier and nearest later candidates per model.
    align_z:
        Alignment statistic from which a candidate counts as related (``auto``'s significance level).
    """
    from modelatlas.chart.auto import Auto
    from modelatlas.chart.joint import both_ways_neighbours

    first = Auto(n_candidates=n_candidates, align_z=align_z, exact_up_to=exact_up_to, calibrate=False,
                 rules=tuple(r for r in Auto.RULES if r not in ("joint", "fans")))
    charter = first.charter(models, known)
    n = len(models)
    position = np.empty(n, np.int64)
    position[charter.order] = np.arange(n)
    free = np.array([charter.kind[i] not in EXACT for i in range(n)])
    quantized = np.array([charter._is_quantized(models.vectors[i], bool(models.quantized[i])) for i in range(n)])
    space = first.geometry_of(models.vectors, models.layers)
    eligible = charter.eligible
    neighbours = both_ways_neighbours(space, position, eligible, charter.earlier, n_candidates,
                                      exact_up_to=exact_up_to)
    rows = np.flatnonzero(free)
    labels, dists = neighbours(rows)
    # each eligible model's own nearest eligible neighbour, either direction (for d / nn(p))
    p_nearest = _nearest_other(space, eligible)
    with np.errstate(invalid="ignore", divide="ignore"):  # constant rows (exact copies) have no kurtosis
        kurt = np.nan_to_num(kurtosis_score(models))
    sign = -1.0 if stage_from_known(kurt, known) == "specialization" else 1.0
    kurt_scale = float(np.std(kurt)) or 1.0
    timed = np.isfinite(models.created_at)
    testable = alignment_testable(models.layers)
    vectors = np.asarray(models.vectors, np.float64)
    norms = np.linalg.norm(space, axis=1)
    full = np.array([min(b.rows, b.cols) for b in models.layers], np.float64)
    n_layers = len(models.layers)
    out_p, out_c, feats, adapt = [], [], [], []
    for r, x in enumerate(rows.tolist()):
        ok = (labels[r] >= 0) & (labels[r] != x)
        cand, d = labels[r][ok], dists[r][ok].astype(np.float64)
        if not len(cand):
            continue
        if testable:
            z = alignment_z(charter.units[charter.row[x]], charter._rows(cand, "units"), models.layers)
            z = np.where(np.isfinite(z), z, -np.inf)
            rel = z >= align_z
        else:
            rel = first.related(models.vectors, models.layers, np.full(len(cand), x), cand)
            z = np.where(rel, align_z, 0.0)
        cand, d, z = cand[rel], d[rel], z[rel]
        if not len(cand):
            continue
        by_d = np.argsort(d, kind="stable")
        rank = np.empty(len(cand), np.int64)
        rank[by_d] = np.arange(len(cand))
        later = position[cand] > position[x]
        earlier_rank = np.full(len(cand), n_candidates, np.int64)
        e = np.flatnonzero(~later)
        earlier_rank[e[np.argsort(d[e], kind="stable")]] = np.arange(len(e))
        d_min = max(float(d.min()), 1e-12)
        x_bits, cand_bits = charter.bits[charter.row[x]], charter._rows(cand, "bits")
        bits = np.minimum(x_bits, cand_bits)
        ev = adapter_evidence(vectors[x], vectors[cand], models.layers, model_bits=x_bits, candidate_bits=cand_bits)
        total = np.array([a.total_rank for a in ev], np.float64)
        # layers identical once both are rounded to the coarser storage dtype (chart/frozen.py)
        same = identical_layers(vectors[x], vectors[cand], models.layers, bits).sum(axis=1)
        pair_d = np.linalg.norm(space[cand][:, None] - space[cand][None], axis=2)
        between = np.ones(len(cand))
        closer = np.zeros(len(cand))
        for j in range(len(cand)):
            others = np.arange(len(cand)) != j
            if others.any():
                via = (pair_d[j, others] + d[others]) / max(d[j], 1e-12) - 1.0
                between[j] = min(float(via.min()), 1.0)
                closer[j] = float((pair_d[j, others] < d[j]).mean())
        zmax = float(z.max())
        for j, p in enumerate(cand.tolist()):
            feats.append((
                rank[j], earlier_rank[j], np.log(max(d[j], 1e-12) / d_min),
                np.log(max(d[j], 1e-12) / max(p_nearest[p], 1e-12)),
                d[j] / max(0.5 * (norms[x] + norms[p]), 1e-12),
                np.sign(z[j]) * np.log1p(abs(z[j])) if testable else 0.0,
                z[j] / zmax if testable and zmax > 0 else 1.0,
                float(later[j]), (position[x] - position[p]) / n, float(timed[x] and timed[p]),
                float(ev[j].is_adapter), total[j] / full.sum(), (total[j] - total.min()) / full.sum(),
                ev[j].n_full / n_layers, same[j] / n_layers,
                float(charter.bits[charter.row[x]]), float(charter.bits[charter.row[x]] != charter.bits[charter.row[p]]),
                float(quantized[x]), between[j], closer[j], sign * (kurt[p] - kurt[x]) / kurt_scale, float(len(cand)),
            ))
            out_p.append(p)
            out_c.append(x)
            adapt.append(bool(ev[j].is_adapter))
    return GroupPairs(
        position=position, kind=[charter.kind[i] for i in range(n)], first_parents=dict(charter.parents),
        first_relation=dict(charter.relation), first_score=dict(charter.score), quantized=quantized, parent=np.asarray(out_p, np.int64), child=np.asarray(out_c, np.int64),
        features=np.asarray(feats, np.float64).reshape(-1, len(FEATURES)), adapter=np.asarray(adapt, bool))


def _nearest_other(space: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Distance from every model to its nearest *other* eligible model (``inf`` when none)."""
    from modelatlas.chart.neighbors import GrowingIndex

    out = np.full(len(space), np.inf)
    rows = np.flatnonzero(eligible)
    if len(rows) < 2:
        return out
    index = GrowingIndex(space.shape[1], capacity=len(rows))
    for i in rows.tolist():
        index.add(i, space[i])
    for i in rows.tolist():
        lab, dis = index.query(space[i], 2)
        other = lab != i
        if other.any():
            out[i] = float(dis[other][0])
    return out


def decode(pairs: GroupPairs, scorer: PairScorer, fixed: tuple[str, ...] = FIXED) -> tuple[dict, dict, dict, dict]:
    """Parents of one analysed group under ``scorer``; first-pass decisions of the ``fixed`` kinds
    are kept, every other model is decided by the branching.

    Returns
    -------
    parents, relation, kind, score
        ``child -> parents``, relation and kind of decision per child with parents, and the raw
        score (the chosen edge's probability; a fixed decision's first-pass score).
    """
    from modelatlas.chart.joint import branching_parents

    n = len(pairs.position)
    free = np.array([k not in fixed and k not in EXACT for k in pairs.kind])
    keep = free[pairs.child] if len(pairs.child) else np.zeros(0, bool)
    prob = scorer.probability(pairs.features[keep])
    src, dst, adapter = pairs.parent[keep], pairs.child[keep], pairs.adapter[keep]
    cost = -np.log(np.clip(prob, P_FLOOR, 1.0))
    decided = {i: pairs.first_parents.get(i, ()) for i in range(n) if not free[i]}
    chosen = branching_parents(pairs.position, free, decided, src, dst, cost)
    edge = {(int(p), int(c)): j for j, (p, c) in enumerate(zip(src.tolist(), dst.tolist()))}
    parents = {c: ps for c, ps in decided.items() if ps}
    relation = {c: pairs.first_relation[c] for c in parents}
    kind = {c: pairs.kind[c] for c in parents}
    score = {c: pairs.first_score[c] for c in parents}
    for c, p in chosen.items():
        j = edge[(p, c)]
        parents[c] = (p,)
        relation[c] = "quantized" if pairs.quantized[c] else ("adapter" if adapter[j] else "finetune")
        kind[c], score[c] = "learned", float(prob[j])
    return parents, relation, kind, score


@register
class Learned(ChartMethod):
    """Gradient-boosted pair scorer decoded as a minimum branching; see the module docstring.

    Parameters
    ----------
    scorer:
        A fitted :class:`PairScorer` (:func:`fit_scorer`); ``None``: the default, fitted at first
        use on synthetic zoos (:func:`default_scorer`).
    fixed:
        First-pass rules of ``auto`` whose decisions are kept (any of :attr:`RULES`); the other
        models are decided by the scorer. Known parents and duplicates are always kept.
    n_candidates:
        Nearest earlier and nearest later candidates per model.
    align_z:
        Neuron-alignment significance level below which a candidate is unrelated.
    exact_up_to:
        Exact neighbour search up to this many models, HNSW beyond.
    calibrate:
        Map the chosen edges' probabilities through the scorer's isotonic maps.
    """

    name = "learned"

    #: First-pass rules whose decisions can be kept (switched off one at a time in the sign test).
    RULES = ("merge", "lora", "quantized")

    _parameter_constraints = {
        "scorer": [PairScorer, None],
        "fixed": [SubsetOf(RULES)],
        "n_candidates": [Interval(Integral, 1, None, closed="left")],
        "align_z": [Interval(Real, 0, None, closed="neither")],
        "exact_up_to": [Interval(Integral, 0, None, closed="left")],
        "calibrate": ["boolean"],
    }

    def __init__(self, scorer: PairScorer | None = None, fixed: tuple[str, ...] = RULES,
                 n_candidates: int = 8, align_z: float = 6.0, exact_up_to: int = 1000, calibrate: bool = True):
        self.scorer = scorer
        self.fixed = tuple(fixed)
        self.n_candidates = n_candidates
        self.align_z = align_z
        self.exact_up_to = exact_up_to
        self.calibrate = calibrate

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        scorer = self.scorer if self.scorer is not None else default_scorer()
        given = {**models.documented_parents, **known}
        pairs = analyse(models, given, n_candidates=self.n_candidates, align_z=self.align_z,
                        exact_up_to=self.exact_up_to)
        parents, relation, kind, score = decode(pairs, scorer, EXACT + self.fixed)
        conf = {c: (calibrated(kind[c], score[c], scorer.calibration) if self.calibrate
                    else float(np.clip(score[c], 0.0, 1.0))) for c in parents}
        return ChartResult.from_parents(parents, relation, conf)


def zoo_pairs(name: str, models: ChartInput, truth, *, n_candidates: int = 8, align_z: float = 6.0) -> ZooPairs:
    """A training zoo analysed group by group (families known, no stem, as ``auto``'s calibration
    is fitted), with a label per pair: 1 when ``p`` is one of ``x``'s true parents."""
    from dataclasses import replace

    models = replace(models, components=np.asarray(truth.component))
    groups = []
    for rows in architecture_groups(models):
        if len(rows) < 2:
            continue
        sub, sub_truth = models.subset(rows), truth.subset(rows)
        g = analyse(sub, dict(sub.documented_parents), n_candidates=n_candidates, align_z=align_z)
        g.label = np.array([-1.0 if sub_truth.parents[c] is None else float(p in sub_truth.parents[c])
                            for p, c in zip(g.parent.tolist(), g.child.tolist())])
        g.truth = sub_truth
        groups.append(g)
    return ZooPairs(name, models, groups)


def _training_matrix(families: list[tuple[str, list[ZooPairs]]]):
    """Features, labels and weights; every family weighs the same in total (a large family must not
    decide what the others learn)."""
    xs, ys, ws = [], [], []
    for _, zoos in families:
        f_x = [g.features[g.label >= 0] for z in zoos for g in z.groups]
        f_y = [g.label[g.label >= 0] for z in zoos for g in z.groups]
        count = sum(len(a) for a in f_y)
        if not count:
            continue
        xs += f_x
        ys += f_y
        ws.append(np.full(count, 1.0 / count))
    if not ws:
        from modelatlas.errors import InputError

        raise InputError("no candidate pairs with known truth to train the pair scorer on", where="families")
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)


def _fit_trees(families: list[tuple[str, list[ZooPairs]]], random_state: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y, w = _training_matrix(families)
    model = HistGradientBoostingClassifier(**TREES, early_stopping=False, random_state=random_state)
    if len(np.unique(y)) < 2:
        from modelatlas.errors import InputError

        raise InputError("the training zoos give the pair scorer only one class of pairs", where="families")
    return model.fit(x, y, sample_weight=w * len(w))


def _outcomes(zoos: list[ZooPairs], scorer: PairScorer, fixed: tuple[str, ...]) -> dict[str, list[tuple[float, float]]]:
    """(raw score, right or not) of every decision ``scorer`` makes on ``zoos``, by kind."""
    from modelatlas.chart.evaluate import correct_mask

    out: dict[str, list[tuple[float, float]]] = {}
    for z in zoos:
        for g in z.groups:
            parents, relation, kind, score = decode(g, scorer, fixed)
            ok = correct_mask(ChartResult.from_parents(parents, relation), g.truth)
            for c in parents:
                if g.truth.parents[c] is not None:
                    out.setdefault(kind[c], []).append((score[c], float(ok[c])))
    return out


def fit_scorer(families: list[tuple[str, list[ZooPairs]]], *, random_state: int = 0,
               fixed: tuple[str, ...] = FIXED) -> PairScorer:
    """Trees fitted on every given family, and isotonic maps fitted on out-of-family predictions.

    The probabilities of trees on the pairs they were fitted on are over-confident, so the maps
    are fitted by cross-fitting over the families: for each family, trees fitted on the others
    chart it, and the (probability, right) pairs of all families are pooled into one isotonic map
    per kind. With a single family its zoos stand in for families.

    Parameters
    ----------
    families:
        ``(family name, [analysed zoos])`` (:func:`zoo_pairs`), at least one zoo with truth.
    random_state:
        Seed of the trees (same seed, same scorer).
    fixed:
        First-pass decisions kept while charting for the maps (as ``Learned(fixed=...)``).
    """
    folds = families if len(families) > 1 else [(z.name, [z]) for _, zs in families for z in zs]
    pooled: dict[str, list[tuple[float, float]]] = {}
    if len(folds) > 1:
        for name, zoos in folds:
            inner = PairScorer(_fit_trees([f for f in folds if f[0] != name], random_state), {}, [])
            for kind, pairs in _outcomes(zoos, inner, fixed).items():
                pooled.setdefault(kind, []).extend(pairs)
    maps = isotonic_maps(pooled)
    return PairScorer(_fit_trees(families, random_state), maps, [z.name for _, zs in families for z in zs])


@lru_cache(maxsize=1)
def default_scorer() -> PairScorer:
    """The scorer used without training families: fitted on the synthetic zoos of
    :data:`DEFAULT_SEEDS` (:func:`~modelatlas.chart.synthetic.synthetic_zoo`, :data:`DEFAULT_ZOO_MODELS`
    models each) at first use. No fitted model ships with the package (docs/chart.md, "learned")."""
    from modelatlas.chart.synthetic import synthetic_zoo

    zoos = []
    for seed in DEFAULT_SEEDS:
        z = synthetic_zoo(DEFAULT_ZOO_MODELS, seed=seed)
        zoos.append(zoo_pairs(f"synthetic-{DEFAULT_ZOO_MODELS} seed {seed}", z.models, z.truth))
    return fit_scorer([("synthetic", zoos)])
