"""Calibrated confidence for ``auto``'s edges.

Each rule of :mod:`modelatlas.chart.auto` emits a raw score (its margin). For every rule an
isotonic regression (scikit-learn) maps the score to the probability that the predicted parent set
is right, fitted on held-out synthetic zoos (seeds disjoint from the evaluation's) the first time
a confidence is asked for. Rules that are exact by construction (``known``, ``duplicate``) map to 1.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Seeds of the synthetic zoos used for fitting (never used for evaluation).
CALIBRATION_SEEDS = (1001, 1002, 1003)
_EXACT = {"known": 1.0, "duplicate": 1.0}


@lru_cache(maxsize=1)
def _models() -> dict:
    from sklearn.isotonic import IsotonicRegression

    from modelatlas.chart.auto import Auto
    from modelatlas.chart.evaluate import correct_mask
    from modelatlas.chart.synthetic import synthetic_zoo

    scores: dict[str, list[tuple[float, float]]] = {}
    for seed in CALIBRATION_SEEDS:
        zoo = synthetic_zoo(300, n_components=3, seed=seed)
        method = Auto(calibrate=False)
        charter = method.charter(zoo.models)
        ok = correct_mask(charter.result(), zoo.truth)
        for c in charter.parents:
            scores.setdefault(charter.kind[c], []).append((charter.score[c], float(ok[c])))
    fitted = {}
    for kind, pairs in scores.items():
        s, y = np.array(pairs).T
        fitted[kind] = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    return fitted


def calibrated(kind: str, score: float) -> float:
    """Probability that an edge chosen by rule ``kind`` with raw ``score`` is right."""
    if kind in _EXACT:
        return _EXACT[kind]
    model = _models().get(kind)
    if model is None:
        return float(np.clip(score, 0.0, 1.0))
    return float(model.predict([score])[0])
