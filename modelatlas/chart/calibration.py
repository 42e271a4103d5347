"""Calibrated confidence for ``auto``'s edges: one logistic model over each decision's context.

A rule's raw score (its margin) says little across zoo families by itself: how often a decision is
right also depends on its context — whether child and parent are dated (without upload times every
rule is less often right, and a duplicate's direction is a guess), how near the runner-up candidate
is, whether the parent has other children in the same direction from it (a sweep: geometry cannot
tell which of them came first), the storage dtype, how far the child moved. One logistic
regression (scikit-learn) over those :data:`CONTEXT` features, the rule (one-hot) and the rule's
score maps every edge to the probability that the model's predicted parent set is right
(docs/chart.md, "Confidence").

It is fitted on the outcomes of ``auto`` charting zoos under the Model Atlas protocol (10% stem
per component, components known; :func:`edge_outcomes`), each zoo **also without upload times**
(:func:`~modelatlas.chart.bench.without_times`), so undated decisions are seen in training even
where the zoos are dated, and with every (family, dated or not) weighted alike, so that no
generator's size decides the fit. Features are clipped to the range seen in training: the model
never extrapolates. The fitted model is plain JSON (``calibration.json``: names, scaling,
coefficients, clipping bounds; no pickle — model files and tables are untrusted input), refitted
by ``scripts/fit_calibration.py``; ``bench chart --families`` refits it without the family it
scores (:mod:`modelatlas.chart.families`). Decisions exact by construction (``known`` parents)
map to 1.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

#: The shipped model (``Calibrator.as_dict`` form, with ``fitted_on``).
TABLE = Path(__file__).with_name("calibration.json")
#: Seeds of the synthetic zoos pooled into the shipped fit (never used for evaluation).
CALIBRATION_SEEDS = (1001, 1002, 1003)
#: Kinds of decision of ``auto`` that the model knows (``known`` is exact: probability 1).
KINDS = ("nearest", "joint", "fan", "lora", "merge", "quantized", "duplicate")
#: Per-edge context (:func:`edge_context`), besides the rule and its score:
#:
#: - ``margin``: log of the runner-up candidate's distance over the parent's (the nearest earlier
#:   model that is not a parent; capped at ±3);
#: - ``sweep_cos``: largest cosine between the child's update from its parent and a sibling's
#:   (another predicted child of the same parent), a sweep that geometry cannot order;
#: - ``siblings``: log(1 + number of the parent's other predicted children);
#: - ``parent_is_root``: the parent has no predicted parent;
#: - ``child_dated``, ``parents_dated``: upload times known for the child, for every parent;
#: - ``parent_later``: a parent comes after the child in the processing order;
#: - ``low_precision``: the child is stored with fewer than fp32's significant bits (fp16, bf16);
#: - ``log_distance``: log of the relative distance between child and parent (raw weights).
CONTEXT = ("margin", "sweep_cos", "siblings", "parent_is_root", "child_dated", "parents_dated",
           "parent_later", "low_precision", "log_distance")
#: Inverse L2 regularisation strength of the logistic regression (scikit-learn's ``C``; on
#: standardised features, 0.1 to 10 gave the same leave-one-family-out errors, docs/BENCHMARKS.md).
REGULARISATION = 1.0
#: Total weight of each group of outcomes (a family, dated or not) in the fit, whatever its size:
#: about the decisions one trained family's zoos give per stem seed.
GROUP_WEIGHT = 250.0
_EXACT = ("known",)


def _score_feature(kind: str, score: float) -> float:
    """The rule's raw score as a feature: ``nearest``'s distance ratio on a log scale (it is 10 when
    there is no second candidate), the others (margins in [0, 1]) as they are."""
    if kind == "nearest":
        return math.log(min(max(score, 1.0), 10.0))
    return float(np.clip(score, -1.0, 1.0))


def feature_names() -> list[str]:
    """Columns of :func:`design`: the rule one-hot, the rule's score, the :data:`CONTEXT`."""
    return [f"is_{k}" for k in KINDS] + [f"score_{k}" for k in KINDS] + list(CONTEXT)


def design(kinds: list[str], scores: np.ndarray, context: np.ndarray) -> np.ndarray:
    """The model's inputs, one row per edge: rule one-hot, score in its rule's column, context."""
    n = len(kinds)
    onehot = np.zeros((n, len(KINDS)))
    score = np.zeros((n, len(KINDS)))
    for i, (k, s) in enumerate(zip(kinds, np.asarray(scores, float).tolist())):
        j = KINDS.index(k)
        onehot[i, j] = 1.0
        score[i, j] = _score_feature(k, s)
    return np.hstack([onehot, score, np.asarray(context, float).reshape(n, len(CONTEXT))])


def edge_context(charter) -> tuple[list[int], list[str], np.ndarray, np.ndarray]:
    """Every calibrated decision of ``charter`` (an :class:`~modelatlas.chart.auto.OnlineCharter`)
    with its context.

    Returns
    -------
    labels, kinds, scores, context
        Children with predicted parents (``known`` ones left out), their rule, raw score and
        :data:`CONTEXT` rows.
    """
    from modelatlas.chart.low_rank import significant_bits

    labels = [c for c in charter.parents if charter.kind[c] not in _EXACT]
    if not labels:
        return [], [], np.zeros(0), np.zeros((0, len(CONTEXT)))
    rows = np.array(sorted(charter.row.values()))
    geo = charter.m.geometry_of(charter.vecs[:len(rows)], charter.layers).astype(np.float64)
    at = charter.row  # label -> row; rows are in processing order
    created = charter.created_at
    dated = {lab: bool(created is not None and np.isfinite(created[lab])) for lab in at}
    children: dict[int, list[int]] = {}
    for c, ps in charter.parents.items():
        for p in ps:
            children.setdefault(p, []).append(c)
    nearest_parent = {}
    for x in labels:
        ps = [p for p in charter.parents[x] if p in at]
        nearest_parent[x] = min(ps, key=lambda p: float(np.linalg.norm(geo[at[x]] - geo[at[p]])))
    sweep = _sweeps(nearest_parent, children, geo, at)
    out = np.zeros((len(labels), len(CONTEXT)))
    for i, x in enumerate(labels):
        ps = [p for p in charter.parents[x] if p in at]
        p0 = nearest_parent[x]
        d0 = float(np.linalg.norm(geo[at[x]] - geo[at[p0]]))
        runner_up = _runner_up(charter, x, set(ps), geo)
        margin = 3.0 if not np.isfinite(runner_up) else math.log(max(runner_up, 1e-12) / max(d0, 1e-12))
        siblings = sum(1 for s in children.get(p0, []) if s != x and s in at)
        vx, vp = charter.vecs[at[x]], charter.vecs[at[p0]]
        rel = float(np.linalg.norm(vx - vp)) / max(charter.norm[x], charter.norm[p0], 1e-30)
        out[i] = (np.clip(margin, -3.0, 3.0), sweep.get(x, 0.0), math.log1p(siblings),
                  float(not charter.parents.get(p0)), float(dated[x]), float(all(dated[p] for p in ps)),
                  float(any(at[p] > at[x] for p in ps)), float(significant_bits(vx) < 24), math.log(max(rel, 1e-9)))
    return labels, [charter.kind[c] for c in labels], np.array([charter.score[c] for c in labels]), out


def _sweeps(nearest_parent: dict[int, int], children: dict[int, list[int]], geo: np.ndarray,
            at: dict[int, int]) -> dict[int, float]:
    """Per child ``x`` of parent ``p``: the largest cosine (at least 0) between ``x − p`` and a
    sibling's ``s − p``, one Gram matrix per parent."""
    out: dict[int, float] = {}
    for p in set(nearest_parent.values()):
        kids = [c for c in children.get(p, []) if c in at]
        if len(kids) < 2:
            continue
        u = geo[[at[c] for c in kids]] - geo[at[p]]
        norm = np.linalg.norm(u, axis=1, keepdims=True)
        u = u / np.where(norm > 0, norm, 1.0)
        cos = u @ u.T
        np.fill_diagonal(cos, 0.0)
        best = np.maximum(cos.max(axis=1), 0.0)
        out.update((c, float(b)) for c, b in zip(kids, best.tolist()) if nearest_parent.get(c) == p)
    return out


def _runner_up(charter, x: int, parents: set[int], geo: np.ndarray) -> float:
    """Distance to the nearest earlier candidate of ``x`` that is not a parent: from the bulk
    neighbour lists when the charter has them, else over every model charted before ``x``."""
    if charter.earlier is not None:
        near, near_d = charter.earlier
        alt = [float(d) for j, d in zip(near[x].tolist(), near_d[x].tolist()) if j >= 0 and j not in parents]
        return min(alt) if alt else math.inf
    before = [lab for lab, r in charter.row.items() if r < charter.row[x] and lab not in parents]
    if not before:
        return math.inf
    gx = geo[charter.row[x]]
    return float(np.linalg.norm(geo[[charter.row[b] for b in before]] - gx, axis=1).min())


@dataclass
class Calibrator:
    """The logistic model: ``p = σ(intercept + coef · clip((x − mean) / scale))``, in JSON."""

    names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    low: np.ndarray
    high: np.ndarray
    coef: np.ndarray
    intercept: float
    fitted_on: list[str]
    n: int = 0

    def predict(self, kinds: list[str], scores: np.ndarray, context: np.ndarray) -> np.ndarray:
        """Probability that each edge's parent set is right."""
        x = np.clip(design(kinds, scores, context), self.low, self.high)
        z = self.intercept + ((x - self.mean) / self.scale) @ self.coef
        return 1.0 / (1.0 + np.exp(-z))

    def as_dict(self) -> dict:
        """The JSON form (``calibration.json``)."""
        return {"model": "logistic", "fitted_on": list(self.fitted_on), "n": int(self.n), "features": list(self.names),
                "mean": self.mean.tolist(), "scale": self.scale.tolist(), "low": self.low.tolist(),
                "high": self.high.tolist(), "coef": self.coef.tolist(), "intercept": float(self.intercept)}

    @classmethod
    def from_dict(cls, d: dict, where: str = "calibration") -> Calibrator:
        """Read :meth:`as_dict`'s form back, checking every field.

        Raises
        ------
        InputError
            When a field is missing, of the wrong length or not finite, or the features are not
            this version's (:func:`feature_names`).
        """
        from modelatlas.errors import InputError

        names = feature_names()
        if not isinstance(d, dict) or d.get("model") != "logistic":
            raise InputError("not a logistic calibration model (refit it with scripts/fit_calibration.py)",
                             where=where)
        if d.get("features") != names:
            raise InputError(f"calibration features {d.get('features')} are not {names} "
                             "(refit it with scripts/fit_calibration.py)", where=where)
        arrays = {}
        for key in ("mean", "scale", "low", "high", "coef"):
            try:
                a = np.asarray(d[key], dtype=np.float64)
            except (KeyError, TypeError, ValueError):
                raise InputError(f"calibration field {key!r} is missing or not a list of numbers", where=where) from None
            if a.shape != (len(names),) or not np.isfinite(a).all():
                raise InputError(f"calibration field {key!r} must hold {len(names)} finite numbers", where=where)
            arrays[key] = a
        intercept = d.get("intercept")
        if (not isinstance(intercept, (int, float)) or isinstance(intercept, bool) or not math.isfinite(intercept)
                or (arrays["scale"] <= 0).any()):
            raise InputError("calibration intercept must be finite and every scale positive", where=where)
        fitted_on, n = d.get("fitted_on", []), d.get("n", 0)
        if not isinstance(fitted_on, list) or not all(isinstance(s, str) for s in fitted_on):
            raise InputError("calibration field 'fitted_on' must be a list of zoo names", where=where)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InputError("calibration field 'n' must be a count of decisions", where=where)
        return cls(names, arrays["mean"], arrays["scale"], arrays["low"], arrays["high"], arrays["coef"],
                   float(intercept), list(fitted_on), n)


def fit_calibrator(kinds: list[str], scores: np.ndarray, context: np.ndarray, right: np.ndarray,
                   groups: list[str], fitted_on: list[str]) -> Calibrator:
    """The logistic model from ``(kind, score, context, right or not)`` outcomes, every group
    (a family, dated or not) weighted alike.

    Parameters
    ----------
    groups:
        One label per outcome: the group it belongs to (e.g. ``"llama, no times"``).
    fitted_on:
        Names of the zoos the outcomes come from (recorded in the table).
    """
    from sklearn.linear_model import LogisticRegression

    x = design(kinds, scores, context)
    y = np.asarray(right, float)
    _, inverse, counts = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True,
                                   return_counts=True)
    weight = GROUP_WEIGHT / counts[inverse]
    mean = np.average(x, axis=0, weights=weight)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=weight))
    scale = np.where(scale > 0, scale, 1.0)
    model = LogisticRegression(C=REGULARISATION, max_iter=5000)
    if len(np.unique(y)) < 2:  # every outcome alike: the constant model
        coef, intercept = np.zeros(x.shape[1]), float(np.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3)))
    else:
        model.fit((x - mean) / scale, y, sample_weight=weight)
        coef, intercept = model.coef_[0], float(model.intercept_[0])
    return Calibrator(feature_names(), mean, scale, x.min(0), x.max(0), coef, intercept, list(fitted_on), len(y))


def edge_outcomes(models, truth, params: dict | None = None, *, seed: int = 0, fraction: float = 0.1,
                  components_known: bool = True) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``(kind, score, context, right or not)`` of every decision ``auto`` (with ``params``) makes on
    one zoo under the Model Atlas protocol (:func:`~modelatlas.chart.evaluate.evaluate`: a stem of
    ``fraction`` per component drawn with ``seed``, not scored), one group at a time as
    :meth:`~modelatlas.chart.estimator.ChartMethod.chart` charts them."""
    from modelatlas.chart.auto import Auto
    from modelatlas.chart.evaluate import correct_mask, sample_stem
    from modelatlas.chart.graph import restrict_parents
    from modelatlas.chart.types import architecture_groups

    models = replace(models, components=np.asarray(truth.component) if components_known else None)
    stem = sample_stem(truth, fraction=fraction, seed=seed)
    kinds: list[str] = []
    scores, contexts, right = [], [], []
    for rows in architecture_groups(models):
        if len(rows) < 2:
            continue
        sub, sub_truth = models.subset(rows), truth.subset(rows)
        known = restrict_parents(stem, rows)
        charter = Auto(**{**(params or {}), "calibrate": False}).charter(sub, known)
        ok = correct_mask(charter.result(), sub_truth)
        labels, k, s, ctx = edge_context(charter)
        keep = [i for i, c in enumerate(labels) if c not in known and sub_truth.parents[c] is not None]
        kinds += [k[i] for i in keep]
        scores.append(s[keep])
        contexts.append(ctx[keep])
        right.append(ok[[labels[i] for i in keep]].astype(float))
    if not kinds:
        return [], np.zeros(0), np.zeros((0, len(CONTEXT))), np.zeros(0)
    return kinds, np.concatenate(scores), np.vstack(contexts), np.concatenate(right)


def fit_calibration(zoos: list[tuple[str, str, object, object]], params: dict | None = None, *,
                    undated: bool = True, cache: dict | None = None, **protocol) -> dict:
    """The calibration model for ``auto`` with ``params``, from ``(family, name, models, truth)``
    zoos pooled together, each also charted without upload times (``undated``).

    Parameters
    ----------
    cache:
        Outcomes already computed, keyed by zoo name, dated or not and ``params`` (a zoo's
        outcomes do not depend on the other zoos; leave-one-family-out fits share them).
    protocol:
        ``seed``, ``fraction``, ``components_known`` of :func:`edge_outcomes`.

    Returns
    -------
    dict
        The form of ``calibration.json`` (:meth:`Calibrator.as_dict`).
    """
    from modelatlas.chart.bench import BenchZoo, without_times

    cache = {} if cache is None else cache
    kinds: list[str] = []
    scores, contexts, right, groups, names = [], [], [], [], []
    for family, name, models, truth in zoos:
        versions = [(f"{family}", name, BenchZoo(name, models, truth))]
        if undated and np.isfinite(models.created_at).any():
            versions.append((f"{family} (no times)", f"{name} (no times)", without_times(BenchZoo(name, models, truth))))
        for group, label, zoo in versions:
            key = (label, json.dumps(params or {}, sort_keys=True), json.dumps(protocol, sort_keys=True))
            if key not in cache:
                cache[key] = edge_outcomes(zoo.models, zoo.truth, params, **protocol)
            k, s, c, y = cache[key]
            kinds += k
            scores.append(s)
            contexts.append(c)
            right.append(y)
            groups += [group] * len(k)
            names.append(label)
    model = fit_calibrator(kinds, np.concatenate(scores), np.vstack(contexts), np.concatenate(right), groups, names)
    return model.as_dict()


@lru_cache(maxsize=1)
def shipped() -> Calibrator:
    """The model shipped with the package (``calibration.json``, read once)."""
    return Calibrator.from_dict(json.loads(TABLE.read_text(encoding="utf-8")), where=TABLE.name)


def confidences(charter, table: dict | None = None) -> dict[int, float]:
    """Probability that each predicted parent set of ``charter`` is right, by the shipped model or by
    ``table`` (a :func:`fit_calibration` table); ``known`` parents get 1."""
    model = shipped() if table is None else Calibrator.from_dict(table)
    labels, kinds, scores, context = edge_context(charter)
    conf = {c: 1.0 for c in charter.parents}
    if labels:
        conf.update(zip(labels, model.predict(kinds, scores, context).tolist()))
    return conf


#: Decisions the ``learned`` method's per-kind maps give probability 1 (:func:`calibrated`).
_EXACT_FOR_MAPS = {"known": 1.0, "duplicate": 1.0}


def isotonic_maps(pooled: dict[str, list[tuple[float, float]]]) -> dict:
    """One isotonic map per kind of decision from its ``(raw score, right or not)`` pairs (exact
    kinds left out), in the form :func:`calibrated` reads: the ``learned`` pair scorer's
    confidences (:mod:`modelatlas.chart.pair_scorer`), whose score already summarises each pair's
    context."""
    from sklearn.isotonic import IsotonicRegression

    rules = {}
    for kind, pairs in sorted(pooled.items()):
        if kind in _EXACT_FOR_MAPS or not pairs:
            continue
        s, y = np.array(pairs).T
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
        rules[kind] = {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist(), "n": len(pairs)}
    return rules


def calibrated(kind: str, score: float, rules: dict) -> float:
    """Probability that an edge chosen by ``kind`` with raw ``score`` is right, by the
    :func:`isotonic_maps` ``rules`` (a kind without a map: the score clipped to [0, 1])."""
    if kind in _EXACT_FOR_MAPS:
        return _EXACT_FOR_MAPS[kind]
    rule = rules.get(kind)
    if rule is None:
        return float(np.clip(score, 0.0, 1.0))
    # isotonic prediction: linear between breakpoints, clipped beyond them (as scikit-learn's)
    return float(np.interp(score, rule["x"], rule["y"]))
