"""``auto``'s calibration model: logistic regression over each decision's context, shipped as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.chart import calibration, get_method
from modelatlas.chart.bench import BenchZoo, without_times
from modelatlas.chart.synthetic import synthetic_zoo
from modelatlas.errors import InputError


@pytest.fixture(scope="module")
def zoo():
    z = synthetic_zoo(120, n_components=3, seed=77)
    return ("synthetic", "s77", z.models, z.truth)


@pytest.fixture(scope="module")
def table(zoo):
    return calibration.fit_calibration([zoo])


def test_calibration_changes_confidences_only(zoo, table):
    _, _, models, truth = zoo
    stem = {i: tuple(p) for i, p in enumerate(truth.parents) if p and i % 9 == 0}
    for m in (models, without_times(BenchZoo("z", models, truth)).models):
        plain = get_method("auto", calibrate=False).chart(m, known_edges=stem)
        for params in ({}, {"calibration": table}):
            calibrated = get_method("auto", **params).chart(m, known_edges=stem)
            assert calibrated.parent_sets() == plain.parent_sets()
            assert list(zip(calibrated.child.tolist(), calibrated.relation.tolist())) == \
                list(zip(plain.child.tolist(), plain.relation.tolist()))
            assert ((calibrated.confidence > 0) & (calibrated.confidence <= 1)).all()
            assert (calibrated.confidence[np.isin(calibrated.child, list(stem))] == 1.0).all()


def test_fitted_model_is_the_weighted_logistic_regression(zoo, table):
    """The table reproduces scikit-learn's fit on the same outcomes, each group weighted alike."""
    from sklearn.linear_model import LogisticRegression

    _, _, models, truth = zoo
    dated = calibration.edge_outcomes(models, truth)
    undated_zoo = without_times(BenchZoo("z", models, truth))
    undated = calibration.edge_outcomes(undated_zoo.models, undated_zoo.truth)
    kinds = dated[0] + undated[0]
    x = calibration.design(kinds, np.concatenate([dated[1], undated[1]]), np.vstack([dated[2], undated[2]]))
    y = np.concatenate([dated[3], undated[3]])
    w = calibration.GROUP_WEIGHT * np.concatenate([np.full(len(dated[0]), 1 / len(dated[0])),
                                                   np.full(len(undated[0]), 1 / len(undated[0]))])
    mean = np.average(x, axis=0, weights=w)
    sd = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
    scale = np.where(sd > 0, sd, 1.0)
    ref = LogisticRegression(C=calibration.REGULARISATION, max_iter=5000).fit((x - mean) / scale, y, sample_weight=w)
    model = calibration.Calibrator.from_dict(table)
    assert model.n == len(y) and table["fitted_on"] == ["s77", "s77 (no times)"]
    np.testing.assert_allclose(model.predict(kinds, np.concatenate([dated[1], undated[1]]),
                                             np.vstack([dated[2], undated[2]])),
                               ref.predict_proba((x - mean) / scale)[:, 1], atol=1e-6)
    # the undated copy is charted without times: its decisions are all undated
    ctx = calibration.CONTEXT.index("child_dated")
    assert dated[2][:, ctx].all() and not undated[2][:, ctx].any()


def test_every_group_weighs_alike():
    rng = np.random.default_rng(0)
    n = 300
    kinds = list(rng.choice(calibration.KINDS, n))
    scores, ctx = rng.uniform(0, 1, n), rng.normal(size=(n, len(calibration.CONTEXT)))
    y = (rng.uniform(size=n) < 0.5 + 0.3 * np.tanh(ctx[:, 0])).astype(float)
    groups = ["a"] * 100 + ["b"] * 200
    base = calibration.fit_calibrator(kinds, scores, ctx, y, groups, ["a", "b"])
    # group "a" given three times over: the same weight in total, the same model
    rep = np.r_[np.tile(np.arange(100), 3), np.arange(100, 300)]
    tripled = calibration.fit_calibrator([kinds[i] for i in rep], scores[rep], ctx[rep], y[rep],
                                         [groups[i] for i in rep], ["a", "b"])
    probe = rng.normal(size=(50, len(calibration.CONTEXT)))
    probe_kinds, probe_scores = list(rng.choice(calibration.KINDS, 50)), rng.uniform(0, 1, 50)
    np.testing.assert_allclose(base.predict(probe_kinds, probe_scores, probe),
                               tripled.predict(probe_kinds, probe_scores, probe), atol=1e-4)
    # while unweighted, tripling a group moves the fit
    plain = calibration.fit_calibrator([kinds[i] for i in rep], scores[rep], ctx[rep], y[rep], ["x"] * len(rep), ["x"])
    assert np.abs(plain.predict(probe_kinds, probe_scores, probe)
                  - base.predict(probe_kinds, probe_scores, probe)).max() > 5e-3


def test_features_are_clipped_to_the_training_range(table):
    model = calibration.Calibrator.from_dict(table)
    ctx = np.zeros((2, len(calibration.CONTEXT)))
    ctx[1, calibration.CONTEXT.index("log_distance")] = 1e6  # far beyond anything seen
    edge = model.high[calibration.feature_names().index("log_distance")]
    at_edge = ctx.copy()
    at_edge[1, calibration.CONTEXT.index("log_distance")] = edge
    np.testing.assert_allclose(model.predict(["nearest"] * 2, np.ones(2), ctx),
                               model.predict(["nearest"] * 2, np.ones(2), at_edge))


def test_context_reads_the_decisions(zoo):
    from modelatlas.chart.auto import Auto

    _, _, models, _ = zoo
    charter = Auto(calibrate=False).charter(models)
    labels, kinds, _, ctx = calibration.edge_context(charter)
    assert sorted(labels) == sorted(c for c in charter.parents if charter.kind[c] != "known")
    col = {name: ctx[:, j] for j, name in enumerate(calibration.CONTEXT)}
    assert ((-3 <= col["margin"]) & (col["margin"] <= 3)).all()
    assert ((0 <= col["sweep_cos"]) & (col["sweep_cos"] <= 1 + 1e-9)).all()
    for i, x in enumerate(labels):
        p = charter.parents[x]
        # a later parent comes only from the joint pass (the first pass looks at earlier models), or
        # from a fan re-attached to the grandparent the joint pass chose
        if col["parent_later"][i]:
            assert kinds[i] in ("joint", "fan")
        siblings = {s for s, ps in charter.parents.items() if s != x and set(ps) & set(p)}
        assert col["siblings"][i] <= math.log1p(len(siblings)) + 1e-12
        if len(p) == 1:
            assert col["parent_is_root"][i] == float(not charter.parents.get(p[0]))
    assert col["child_dated"].all()
    undated = replace(models, created_at=np.full(len(models), np.nan))
    _, _, _, ctx2 = calibration.edge_context(Auto(calibrate=False).charter(undated))
    assert not ctx2[:, calibration.CONTEXT.index("child_dated")].any()


def test_shipped_table_loads_and_says_what_it_was_fitted_on():
    raw = json.loads(calibration.TABLE.read_text())
    model = calibration.shipped()
    assert model.names == calibration.feature_names() and model.n > 1000
    assert raw["fitted_on"] and any(name.endswith("(no times)") for name in raw["fitted_on"])
    assert np.isfinite(model.coef).all() and (model.low <= model.high).all()


def _valid_table() -> dict:
    k = len(calibration.feature_names())
    return {"model": "logistic", "fitted_on": ["x"], "n": 3, "features": calibration.feature_names(),
            "mean": [0.0] * k, "scale": [1.0] * k, "low": [-1.0] * k, "high": [1.0] * k, "coef": [0.5] * k,
            "intercept": 0.1}


@pytest.mark.parametrize("change, message", [
    ({"model": "isotonic"}, "not a logistic"),
    ({"features": ["a"]}, "features"),
    ({"coef": [1.0]}, "'coef'"),
    ({"mean": "abc"}, "'mean'"),
    ({"scale": [0.0] * len(calibration.feature_names())}, "scale"),
    ({"intercept": float("nan")}, "intercept"),
    ({"high": [float("inf")] * len(calibration.feature_names())}, "'high'"),
])
def test_bad_tables_get_a_one_line_error(change, message):
    with pytest.raises(InputError, match=message):
        calibration.Calibrator.from_dict({**_valid_table(), **change})
    with pytest.raises(InputError):
        calibration.Calibrator.from_dict([1, 2])


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(sorted(_valid_table())),
       value=st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=5),
                       st.lists(st.floats(), max_size=30), st.dictionaries(st.text(max_size=3), st.integers())))
def test_any_corrupted_field_is_an_input_error_or_a_valid_model(key, value):
    try:
        model = calibration.Calibrator.from_dict({**_valid_table(), key: value})
    except InputError:
        return
    p = model.predict(["nearest"], np.ones(1), np.zeros((1, len(calibration.CONTEXT))))
    assert np.isfinite(p).all() and 0 <= p[0] <= 1


def test_json_round_trip_predicts_the_same(table):
    model = calibration.Calibrator.from_dict(table)
    again = calibration.Calibrator.from_dict(json.loads(json.dumps(model.as_dict())))
    rng = np.random.default_rng(1)
    kinds, scores = list(rng.choice(calibration.KINDS, 40)), rng.uniform(0, 2, 40)
    ctx = rng.normal(size=(40, len(calibration.CONTEXT)))
    np.testing.assert_array_equal(model.predict(kinds, scores, ctx), again.predict(kinds, scores, ctx))
