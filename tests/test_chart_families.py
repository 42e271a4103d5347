"""The evaluation protocol: stem edges never scored, estimators never mutated, confidences pooled
over seeds, and leave-one-family-out fitting that never sees the family it scores."""

from __future__ import annotations

import numpy as np
import pytest

from modelatlas.chart import families as fam
from modelatlas.chart.bench import BenchZoo
from modelatlas.chart.estimator import ChartMethod, get_method
from modelatlas.chart.evaluate import calibration_error, confidence_outcomes, evaluate, sample_stem
from modelatlas.chart.synthetic import synthetic_zoo
from modelatlas.chart.types import ChartResult
from modelatlas.errors import InputError


class _Oracle(ChartMethod):
    """Predicts the true parents of every model, with a fixed confidence."""

    name = "oracle"

    def __init__(self, truth=None, confidence: float = 0.9):
        self.truth = truth
        self.confidence = confidence

    def chart(self, models, known_edges=None, **engine_options):
        parents = {c: ps for c, ps in enumerate(self.truth.parents) if ps}
        return ChartResult.from_parents(parents, confidence={c: self.confidence for c in parents})


class _StemOnly(ChartMethod):
    """Returns the known edges and nothing else (what every method returns for the stem)."""

    name = "stem-only"

    def __init__(self):
        pass

    def chart(self, models, known_edges=None, **engine_options):
        return ChartResult.from_parents({c: ps for c, ps in (known_edges or {}).items() if ps})


def test_stem_edges_are_never_scored():
    z = synthetic_zoo(120, n_components=3, seed=4)
    ev = evaluate(_StemOnly(), z.models, z.truth, seeds=(0, 1))
    assert ev.edge_accuracy == 0.0  # the stem's edges alone earn nothing
    roots = [i for i, p in enumerate(z.truth.parents) if p == ()]
    assert ev.accuracy < 0.1 and len(roots) == 3
    oracle = evaluate(_Oracle(z.truth), z.models, z.truth, seeds=(0, 1))
    assert oracle.accuracy == 1.0 and oracle.edge_accuracy == 1.0


def test_evaluate_leaves_the_callers_estimator_alone():
    z = synthetic_zoo(60, n_components=2, seed=1)
    method = get_method("random", random_state=123)
    before = method.get_params()
    evaluate(method, z.models, z.truth, seeds=(0, 1, 2))
    assert method.get_params() == before


def test_confidences_are_pooled_over_every_seed():
    z = synthetic_zoo(100, n_components=2, seed=6)
    seeds = (0, 1, 2)
    ev = evaluate(_Oracle(z.truth, confidence=0.9), z.models, z.truth, seeds=seeds)
    scored = sum(sum(1 for i, p in enumerate(z.truth.parents) if p and i not in sample_stem(z.truth, seed=s))
                 for s in seeds)
    assert len(ev.outcomes) == scored == sum(r["n"] for r in ev.reliability)
    assert ev.calibration_error == pytest.approx(0.1)  # always right, said 0.9


def test_calibration_error_on_known_cases():
    assert calibration_error(np.array([[1.0, 1.0], [1.0, 0.0]])) == pytest.approx(0.5)
    assert calibration_error(np.array([[0.25, 0.0], [0.25, 0.0], [0.25, 1.0], [0.25, 0.0]])) == pytest.approx(0.0)
    assert np.isnan(calibration_error(np.zeros((0, 2))))


def test_confidence_outcomes_leave_out_stem_and_unknown_truth():
    z = synthetic_zoo(40, n_components=1, seed=2)
    truth = z.truth
    truth.parents[5] = None  # unknown lineage
    stem = {3: truth.parents[3]}
    result = _Oracle(synthetic_zoo(40, n_components=1, seed=2).truth).chart(z.models)
    out = confidence_outcomes(result, truth, stem)
    assert len(out) == sum(1 for i, p in enumerate(truth.parents) if p and i not in stem)


@pytest.fixture(autouse=True)
def _one_tuned_value(monkeypatch):
    """One candidate value per tuned parameter keeps the protocol tests fast; the choice among
    several is tested on its own below."""
    monkeypatch.setattr(fam, "TUNED", {name: values[:1] for name, values in fam.TUNED.items()})


def test_tuned_parameters_maximise_the_worst_other_family(monkeypatch):
    scores = {("a", 0.5): 0.9, ("b", 0.5): 0.5, ("a", 2.0): 0.7, ("b", 2.0): 0.6}

    class _Ev:
        def __init__(self, acc):
            self.accuracy = acc

    def fake_evaluate(method, models, truth, **kw):
        return _Ev(scores[(models.ids[0][0], method.time_penalty)])

    monkeypatch.setattr(fam, "TUNED", {"time_penalty": (0.5, 2.0)})
    monkeypatch.setattr(fam, "evaluate", fake_evaluate)
    monkeypatch.setattr("modelatlas.chart.calibration.fit_calibration", lambda zoos, params=None, **kw: {
        "fitted_on": [z[1] for z in zoos]})
    families = [fam.Family(name, [BenchZoo(name, _Named(name), None)]) for name in "abc"]
    table = fam.fit_without(families, "c")
    assert table["params"] == {"time_penalty": 2.0}  # worst other family 0.6 beats 0.5
    assert table["fitted_on"] == ["a/a", "b/b"]


class _Named:
    def __init__(self, name):
        self.ids = [name]


def _families():
    return [("a", BenchZoo("a1", *_zoo(1))), ("a", BenchZoo("a2", *_zoo(2))),
            ("b", BenchZoo("b1", *_zoo(3))), ("c", BenchZoo("c1", *_zoo(4)))]


def _zoo(seed):
    z = synthetic_zoo(60, n_components=2, seed=seed)
    return z.models, z.truth


def test_leave_one_family_out_never_fits_on_the_family_it_scores(monkeypatch):
    from modelatlas.chart import calibration

    seen: dict[str, list[str]] = {}
    real = calibration.fit_calibration

    def spy(zoos, params=None, **kw):
        table = real(zoos, params, **kw)
        seen[str(len(seen))] = [family for family, _, _, _ in zoos]
        return table

    monkeypatch.setattr(calibration, "fit_calibration", spy)
    report = fam.leave_one_family_out(fam.group_families(_families()), methods=["auto", "atlas"], seeds=(0,),
                                      ablations=False)
    for (held_out, fitted), families in zip(report["fitted"].items(), seen.values()):
        assert fitted["zoos"] and not any(name.startswith(f"{held_out}/") for name in fitted["zoos"])
        assert held_out not in families
        # every other zoo, each also without upload times (undated decisions seen in training)
        assert sum(name.endswith("(no times)") for name in fitted["zoos"]) == len(fitted["zoos"]) // 2
        assert set(fitted["params"]) == set(fam.TUNED)
    assert sorted(report["fitted"]) == ["a", "b", "c"] and len(seen) == 3
    rows = {(r["method"], r["family"]): r for r in report["results"]}
    assert set(rows) == {(m, f) for m in ("auto", "atlas") for f in "abc"}
    assert rows["auto", "a"]["zoos"] == ["a1", "a2"]


def test_summary_reports_the_worst_family():
    rows = [{"method": "m", "family": f, "accuracy": a, "calibration_error": e}
            for f, a, e in (("x", 0.9, 0.02), ("y", 0.7, 0.2), ("z", 0.95, float("nan")))]
    (s,) = fam.summarise(rows)
    assert s["worst_family"] == "y" and s["worst"] == 0.7
    assert s["mean"] == pytest.approx(0.85) and s["max_calibration_error"] == 0.2


def test_sign_test_verdicts_and_every_rule_is_tested():
    assert fam.verdict(0.02) == "helps" and fam.verdict(-0.02) == "hurts" and fam.verdict(0.001) == "neutral"
    report = fam.leave_one_family_out(fam.group_families(_families()[2:] + _families()[:1]),
                                      methods=["atlas"], seeds=(0,))
    from modelatlas.chart.auto import Auto

    assert {(a["rule"], a["family"]) for a in report["ablations"]} == {(r, f) for r in Auto.RULES for f in "abc"}
    for a in report["ablations"]:
        assert a["verdict"] == fam.verdict(a["delta"])


def test_one_family_is_refused():
    with pytest.raises(InputError, match="at least two families"):
        fam.group_families([("a", BenchZoo("a1", *_zoo(1)))])


def test_calibration_noise_of_perfect_and_of_biased_confidences():
    rng = np.random.default_rng(3)
    conf = rng.uniform(0.2, 1.0, 4000)
    perfect = np.column_stack([conf, rng.random(4000) < conf]).astype(float)
    noise = fam.calibration_noise(perfect)
    # perfectly calibrated: its ECE is about the floor, which shrinks with more predictions
    assert calibration_error(perfect) < noise["calibration_error_floor"] + 3 * noise["calibration_error_sd"]
    assert fam.calibration_noise(perfect[:200])["calibration_error_floor"] > 2 * noise["calibration_error_floor"]
    # always right at these confidences: far above the floor
    biased = np.column_stack([conf, np.ones(4000)])
    assert calibration_error(biased) > noise["calibration_error_floor"] + 10 * fam.calibration_noise(biased)[
        "calibration_error_sd"]
    assert np.isnan(fam.calibration_noise(np.zeros((0, 2)))["calibration_error_sd"])
