"""Leave-one-family-out evaluation: charting scored on zoo families it was not fitted on.

A *family* is the set of zoos one generator builds (several seeds or sizes of one recipe family,
docs/zoo.md). Thresholds and calibration maps read off the zoos a method is scored on say nothing
about zoos built elsewhere, so every number here is out of family: for each family in turn, every
fitted part of a method (``auto``'s :data:`TUNED` parameters and its calibration model,
:func:`~modelatlas.chart.calibration.fit_calibration`, fitted on the other families' zoos with and
without upload times; the ``learned`` method's trees and maps,
:func:`~modelatlas.chart.pair_scorer.fit_scorer`) is fitted on the *other* families only, then
the method charts the held-out family under the Model Atlas protocol
(:func:`~modelatlas.chart.evaluate.evaluate`). The report gives, per method, the mean over families
**and the worst family**, per-pattern accuracy and the expected calibration error per family, and
an ablation sign test: each rule of ``auto`` switched off in turn, on every family, with the
verdict *helps*, *neutral* or *hurts* (docs/chart.md, "Leave-one-family-out").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelatlas.chart.estimator import get_method, method_names
from modelatlas.chart.bench import BenchZoo
from modelatlas.chart.evaluate import Evaluation, calibration_error, evaluate, reliability
from modelatlas.errors import InputError

#: Accuracy change (absolute) within which removing a rule counts as neutral.
NEUTRAL = 0.005
#: ``auto``'s parameters chosen without the family scored: each value is tried on the other
#: families (first stem seed) and the one with the best worst-family accuracy, then the best mean,
#: is kept (docs/chart.md, "Leave-one-family-out").
TUNED = {"time_penalty": (4.0, 8.0), "fan_share": (0.25, 0.5)}


@dataclass
class Family:
    """The zoos one generator built."""

    name: str
    zoos: list[BenchZoo]


def group_families(named_zoos: list[tuple[str, BenchZoo]]) -> list[Family]:
    """``(family name, zoo)`` pairs grouped into families, in order of first appearance.

    Raises
    ------
    InputError
        When fewer than two families are given (nothing to leave out).
    """
    by_name: dict[str, list[BenchZoo]] = {}
    for name, zoo in named_zoos:
        by_name.setdefault(name, []).append(zoo)
    if len(by_name) < 2:
        raise InputError("leave-one-family-out needs zoos of at least two families; "
                         f"got {', '.join(by_name) or 'none'}", where="--families")
    return [Family(name, zoos) for name, zoos in by_name.items()]


def fit_without(families: list[Family], held_out: str, *, seeds=(0,), fraction: float = 0.1,
                components_known: bool = True, cache: dict | None = None) -> dict:
    """``auto`` fitted on every family except ``held_out``: the :data:`TUNED` parameters, then the
    calibration model for them (:func:`~modelatlas.chart.calibration.fit_calibration`: the other
    families' zoos, each also without upload times).

    Parameters
    ----------
    cache:
        Accuracies and calibration outcomes already computed, shared across held-out families
        (a zoo's outcomes under given parameters do not depend on which family is left out).

    Returns
    -------
    dict
        The :func:`~modelatlas.chart.calibration.fit_calibration` table, with ``params`` added.
    """
    from itertools import product

    from modelatlas.chart import calibration

    cache = {} if cache is None else cache
    others = [f for f in families if f.name != held_out]
    best, best_key = {}, None
    for values in product(*TUNED.values()):
        params = dict(zip(TUNED, values))
        accs = []
        for f in others:
            for i, z in enumerate(f.zoos):
                key = ("accuracy", f.name, i, tuple(sorted(params.items())))
                if key not in cache:
                    cache[key] = evaluate(get_method("auto", calibrate=False, **params), z.models, z.truth,
                                          seeds=seeds, fraction=fraction, components_known=components_known).accuracy
            accs.append(np.mean([cache["accuracy", f.name, i, tuple(sorted(params.items()))]
                                 for i in range(len(f.zoos))]))
        key = (min(accs), float(np.mean(accs)))
        if best_key is None or key > best_key:
            best, best_key = params, key
    zoos = [(f.name, f"{f.name}/{z.name}", z.models, z.truth) for f in others for z in f.zoos]
    outcomes = cache.setdefault("outcomes", {})
    table = calibration.fit_calibration(zoos, best, cache=outcomes, seed=seeds[0], fraction=fraction,
                                        components_known=components_known)
    return {**table, "params": best}


def fit_learned_without(families: list[Family], held_out: str, analysed: dict | None = None):
    """The ``learned`` pair scorer fitted on every family except ``held_out``
    (:func:`~modelatlas.chart.pair_scorer.fit_scorer`: trees on the other families' candidate pairs,
    isotonic maps cross-fitted over them).

    Parameters
    ----------
    analysed:
        Cache of analysed zoos (:func:`~modelatlas.chart.pair_scorer.zoo_pairs`) keyed by family
        and zoo, shared across held-out families: a zoo's pairs do not depend on the scorer.
    """
    from modelatlas.chart import pair_scorer

    analysed = {} if analysed is None else analysed
    training = []
    for f in families:
        if f.name == held_out:
            continue
        zoos = []
        for i, z in enumerate(f.zoos):
            key = (f.name, i)
            if key not in analysed:
                analysed[key] = pair_scorer.zoo_pairs(f"{f.name}/{z.name}", z.models, z.truth)
            zoos.append(analysed[key])
        training.append((f.name, zoos))
    return pair_scorer.fit_scorer(training)


def _family_scores(method: str, family: Family, evaluations: list[Evaluation]) -> dict:
    """One row: a method on one family, pooled over its zoos and seeds."""
    outcomes = np.concatenate([e.outcomes for e in evaluations])
    patterns: dict[str, list[float]] = {}
    for e in evaluations:
        for pat, oks in e.pattern_outcomes.items():
            patterns.setdefault(pat, []).extend(oks)
    return {
        "method": method, "family": family.name, "zoos": [z.name for z in family.zoos],
        "n_models": int(sum(len(z.models) for z in family.zoos)),
        "accuracy": float(np.mean([e.accuracy for e in evaluations])),
        "accuracy_std": float(np.mean([e.accuracy_std for e in evaluations])),
        "edge_accuracy": float(np.mean([e.edge_accuracy for e in evaluations])),
        "calibration_error": calibration_error(outcomes),
        **calibration_noise(outcomes),
        "brier": float(np.mean((outcomes[:, 0] - outcomes[:, 1]) ** 2)) if len(outcomes) else float("nan"),
        "reliability": reliability(outcomes),
        "per_pattern": {p: float(np.mean(v)) for p, v in sorted(patterns.items())},
        "seconds": float(np.sum([e.seconds for e in evaluations])),
    }


def calibration_noise(outcomes: np.ndarray, draws: int = 200, seed: int = 0) -> dict:
    """How much of a family's calibration error is sampling noise, from its ``(confidence, right)``
    outcomes (:func:`~modelatlas.chart.evaluate.confidence_outcomes`).

    Returns
    -------
    dict
        ``calibration_error_sd``: the standard deviation of the ECE over bootstrap resamples of the
        scored predictions; ``calibration_error_floor``: the mean ECE of perfectly calibrated
        confidences on as many predictions (outcomes drawn from the confidences themselves), below
        which no calibrator can be told apart from a perfect one.
    """
    if not len(outcomes):
        return {"calibration_error_sd": float("nan"), "calibration_error_floor": float("nan")}
    rng = np.random.default_rng(seed)
    conf = outcomes[:, 0]
    boot = [calibration_error(outcomes[rng.integers(0, len(outcomes), len(outcomes))]) for _ in range(draws)]
    floor = [calibration_error(np.column_stack([conf, rng.random(len(conf)) < conf])) for _ in range(draws)]
    return {"calibration_error_sd": float(np.std(boot)), "calibration_error_floor": float(np.mean(floor))}


def leave_one_family_out(families: list[Family], *, methods: list[str] | None = None, seeds=(0, 1, 2),
                         fraction: float = 0.1, components_known: bool = True,
                         ablations: bool = True) -> dict:
    """Score every method on every family with everything fitted without that family.

    Parameters
    ----------
    families:
        At least two families (:func:`group_families`).
    methods:
        Method names (default: every registered method).
    seeds, fraction, components_known:
        The Model Atlas protocol (:func:`~modelatlas.chart.evaluate.evaluate`).
    ablations:
        Also run ``auto`` with each rule removed (and ``learned``, when scored, with each first-pass
        rule it keeps handed to its scorer) and give every rule its verdict on every family.

    Returns
    -------
    dict
        ``results``: one row per (method, family); ``summary``: per method the mean over families,
        the worst family and its accuracy, and the largest calibration error; ``ablations``: one row
        per (rule, family) with ``delta`` (accuracy of ``auto`` minus ``auto`` without the rule) and
        ``verdict``; ``fitted``: for each held-out family, the zoos ``auto`` was fitted on and the
        parameters chosen there (``zoos``, ``params``), and the zoos the ``learned`` pair scorer was
        trained on (``learned_zoos``).
    """
    from modelatlas.chart.auto import Auto

    methods = methods or method_names()
    rows, abl, fitted, analysed, cache = [], [], {}, {}, {}
    for family in families:
        table = (fit_without(families, family.name, fraction=fraction, components_known=components_known,
                             cache=cache)
                 if "auto" in methods or ablations else None)
        fitted[family.name] = {}
        if table is not None:
            fitted[family.name].update(zoos=table["fitted_on"], params=table["params"])
        tuned = {} if table is None else {**table["params"],
                                          "calibration": {k: v for k, v in table.items() if k != "params"}}
        fitted_params = {"auto": tuned}
        if "learned" in methods:
            scorer = fit_learned_without(families, family.name, analysed)
            fitted[family.name]["learned_zoos"] = scorer.fitted_on
            fitted_params["learned"] = {"scorer": scorer}
        full: dict | None = None
        for name in methods:
            params = fitted_params.get(name, {})
            evs = [evaluate(get_method(name, **params), z.models, z.truth, seeds=seeds, fraction=fraction,
                            components_known=components_known) for z in family.zoos]
            rows.append(_family_scores(name, family, evs))
            if name == "auto":
                full = rows[-1]
        if ablations and "learned" in methods:
            abl += _learned_ablations(family, fitted_params["learned"]["scorer"],
                                      next(r for r in rows if r["method"] == "learned" and r["family"] == family.name),
                                      seeds=seeds, fraction=fraction, components_known=components_known)
        if ablations:
            if full is None:
                evs = [evaluate(get_method("auto", **tuned), z.models, z.truth, seeds=seeds,
                                fraction=fraction, components_known=components_known) for z in family.zoos]
                full = _family_scores("auto", family, evs)
            for rule in Auto.RULES:
                variant = get_method("auto", **{**tuned, "rules": tuple(r for r in Auto.RULES if r != rule)})
                evs = [evaluate(variant, z.models, z.truth, seeds=seeds, fraction=fraction,
                                components_known=components_known) for z in family.zoos]
                score = _family_scores(f"auto - {rule}", family, evs)
                delta = full["accuracy"] - score["accuracy"]
                abl.append({"method": "auto", "rule": rule, "family": family.name, "accuracy": score["accuracy"],
                            "delta": delta, "verdict": verdict(delta)})
    return {"results": rows, "summary": summarise(rows), "ablations": abl, "fitted": fitted}


def _learned_ablations(family: Family, scorer, full: dict, **protocol) -> list[dict]:
    """The sign test of ``learned``'s kept first-pass rules: each handed to the scorer in turn."""
    from modelatlas.chart.pair_scorer import Learned

    out = []
    for rule in Learned.RULES:
        variant = get_method("learned", scorer=scorer, fixed=tuple(r for r in Learned.RULES if r != rule))
        evs = [evaluate(variant, z.models, z.truth, **protocol) for z in family.zoos]
        delta = full["accuracy"] - _family_scores(f"learned - {rule}", family, evs)["accuracy"]
        out.append({"method": "learned", "rule": f"learned: {rule}", "family": family.name,
                    "accuracy": full["accuracy"] - delta, "delta": delta, "verdict": verdict(delta)})
    return out


def verdict(delta: float) -> str:
    """``helps``, ``neutral`` (within :data:`NEUTRAL`) or ``hurts``."""
    if delta > NEUTRAL:
        return "helps"
    return "hurts" if delta < -NEUTRAL else "neutral"


def summarise(rows: list[dict]) -> list[dict]:
    """Per method: mean accuracy over families, the worst family, the largest calibration error."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        worst = min(mine, key=lambda r: r["accuracy"])
        eces = [r["calibration_error"] for r in mine if np.isfinite(r["calibration_error"])]
        out.append({"method": method, "mean": float(np.mean([r["accuracy"] for r in mine])),
                    "worst_family": worst["family"], "worst": worst["accuracy"],
                    "max_calibration_error": float(max(eces)) if eces else float("nan")})
    return out
