"""``auto``'s confidence maps: fitted per rule by isotonic regression, shipped as a table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelatlas.chart import calibration
from modelatlas.chart.synthetic import synthetic_zoo


@pytest.fixture(scope="module")
def zoo():
    z = synthetic_zoo(150, n_components=3, seed=77)
    return ("synthetic", z.models, z.truth)


def test_fitted_maps_are_the_isotonic_regression(zoo):
    from sklearn.isotonic import IsotonicRegression

    table = calibration.fit_calibration([zoo])
    outcomes = calibration.rule_outcomes(zoo[1], zoo[2])
    assert table["fitted_on"] == ["synthetic"] and set(table["rules"]) == set(outcomes) - {"known", "duplicate"}
    rng = np.random.default_rng(0)
    for kind, pairs in outcomes.items():
        if kind in ("known", "duplicate"):
            assert calibration.calibrated(kind, -5.0, table["rules"]) == 1.0
            continue
        s, y = np.array(pairs).T
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
        probe = np.concatenate([s, rng.uniform(s.min() - 1, s.max() + 1, 50)])
        ours = [calibration.calibrated(kind, float(v), table["rules"]) for v in probe]
        np.testing.assert_allclose(ours, iso.predict(probe), atol=1e-12)
        assert table["rules"][kind]["n"] == len(pairs)


def test_shipped_table_is_monotone_and_covers_autos_rules(zoo):
    shipped = json.loads(calibration.TABLE.read_text())
    assert shipped["fitted_on"], "the table says what it was fitted on"
    for kind, rule in shipped["rules"].items():
        x, y = np.array(rule["x"]), np.array(rule["y"])
        assert x.size == y.size >= 1 and np.all(np.diff(x) > 0) and np.all(np.diff(y) >= 0), kind
        assert 0.0 <= y.min() and y.max() <= 1.0 and rule["n"] >= x.size
    emitted = set(calibration.rule_outcomes(zoo[1], zoo[2])) - {"known", "duplicate"}
    assert emitted <= set(shipped["rules"])
