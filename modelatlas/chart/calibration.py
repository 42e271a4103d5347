"""Calibrated confidence for ``auto``'s edges.

Each rule of :mod:`modelatlas.chart.auto` emits a raw score (its margin). For every rule an
isotonic regression (scikit-learn) maps the score to the probability that the predicted parent set
is right. The fitted maps ship with the package (``calibration.json``, read once) and are
reproduced by :func:`fit_calibration` from held-out zoos, none of which is used for evaluation:
synthetic zoos alone made every rule look right 99% of the time, and confidences were then
over-confident on trained zoos (0.99 said for 88% right on ``small``), so trained zoos are pooled
in (``scripts/fit_calibration.py``). Rules that are exact by construction (``known``,
``duplicate``) map to 1.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

#: The shipped maps: per rule, isotonic breakpoints ``x`` (scores) and ``y`` (probabilities).
TABLE = Path(__file__).with_name("calibration.json")
#: Seeds of the synthetic zoos pooled into the fit (never used for evaluation).
CALIBRATION_SEEDS = (1001, 1002, 1003)
_EXACT = {"known": 1.0, "duplicate": 1.0}


def rule_outcomes(models, truth, params: dict | None = None) -> dict[str, list[tuple[float, float]]]:
    """(raw score, right or not) of every edge ``auto`` predicts on one zoo, by rule.

    ``auto`` (with ``params``) runs without calibration, without a stem and without known
    families, one architecture at a time (as :meth:`ChartMethod.chart` does).
    """
    from modelatlas.chart.auto import Auto
    from modelatlas.chart.evaluate import correct_mask
    from modelatlas.chart.types import architecture_groups

    out: dict[str, list[tuple[float, float]]] = {}
    for rows in architecture_groups(models):
        if len(rows) < 2:
            continue
        sub, sub_truth = models.subset(rows), truth.subset(rows)
        charter = Auto(**{**(params or {}), "calibrate": False}).charter(sub)
        ok = correct_mask(charter.result(), sub_truth)
        for c in charter.parents:
            if sub_truth.parents[c] is not None:
                out.setdefault(charter.kind[c], []).append((float(charter.score[c]), float(ok[c])))
    return out


def fit_calibration(zoos: list[tuple[str, object, object]], params: dict | None = None) -> dict:
    """Isotonic maps per rule from ``(name, models, truth)`` zoos pooled together, for ``auto`` with
    ``params``.

    Returns
    -------
    dict
        ``{"fitted_on": [names], "rules": {rule: {"x": [...], "y": [...], "n": count}}}``, the form
        of ``calibration.json``.
    """
    pooled: dict[str, list[tuple[float, float]]] = {}
    for _, models, truth in zoos:
        for kind, pairs in rule_outcomes(models, truth, params).items():
            pooled.setdefault(kind, []).extend(pairs)
    return {"fitted_on": [name for name, _, _ in zoos], "rules": isotonic_maps(pooled)}


def isotonic_maps(pooled: dict[str, list[tuple[float, float]]]) -> dict:
    """One isotonic map per kind of decision from its ``(raw score, right or not)`` pairs (exact
    kinds left out), in the form :func:`calibrated` reads."""
    from sklearn.isotonic import IsotonicRegression

    rules = {}
    for kind, pairs in sorted(pooled.items()):
        if kind in _EXACT or not pairs:
            continue
        s, y = np.array(pairs).T
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
        rules[kind] = {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist(), "n": len(pairs)}
    return rules


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(TABLE.read_text())["rules"]


def calibrated(kind: str, score: float, rules: dict | None = None) -> float:
    """Probability that an edge chosen by rule ``kind`` with raw ``score`` is right, by the shipped
    maps or by ``rules`` (the ``"rules"`` of a :func:`fit_calibration` table)."""
    if kind in _EXACT:
        return _EXACT[kind]
    rule = (_table() if rules is None else rules).get(kind)
    if rule is None:
        return float(np.clip(score, 0.0, 1.0))
    # isotonic prediction: linear between breakpoints, clipped beyond them (as scikit-learn's)
    return float(np.interp(score, rule["x"], rule["y"]))
