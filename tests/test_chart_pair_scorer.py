"""The ``learned`` pair scorer: recovers clean trees, is deterministic, and under
leave-one-family-out never sees the family it charts (trees nor calibration)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from modelatlas.chart import families as fam
from modelatlas.chart import get_method
from modelatlas.chart import pair_scorer as ps
from modelatlas.chart.bench import BenchZoo
from modelatlas.chart.evaluate import correct_mask, evaluate
from modelatlas.chart.synthetic import synthetic_zoo

CLEAN = {"finetune": 0.7, "lora": 0.3}


@pytest.fixture
def few_trees(monkeypatch):
    """Fewer boosting rounds: the protocol tests do not depend on the trees' quality."""
    monkeypatch.setitem(ps.TREES, "max_iter", 20)


def _scorer(seeds, mix=None, n=60):
    zoos = []
    for s in seeds:
        z = synthetic_zoo(n, n_components=2, seed=s, mix=mix)
        zoos.append(ps.zoo_pairs(f"z{s}", z.models, z.truth))
    return ps.fit_scorer([(f"f{i}", [z]) for i, z in enumerate(zoos)])


def test_learned_recovers_clean_fine_tune_and_lora_trees():
    scorer = _scorer((11, 12), CLEAN)
    z = synthetic_zoo(60, n_components=2, seed=13, mix=CLEAN)
    result = get_method("learned", scorer=scorer).chart(z.models)
    ok = correct_mask(result, z.truth)
    assert ok.mean() == 1.0
    relation = dict(zip(result.child.tolist(), result.relation.tolist()))
    for i, pat in enumerate(z.truth.pattern):
        if pat == "lora":
            assert relation[i] == "adapter"
        elif pat == "finetune":
            assert relation[i] == "finetune"
    assert ((result.confidence >= 0) & (result.confidence <= 1)).all()


def test_pairs_are_labelled_by_the_truth_and_hold_every_feature():
    z = synthetic_zoo(40, n_components=1, seed=5, mix=CLEAN)
    (g,) = ps.zoo_pairs("z", z.models, z.truth).groups
    assert g.features.shape == (len(g.parent), len(ps.FEATURES))
    assert np.isfinite(g.features).all()
    for p, c, y in zip(g.parent.tolist(), g.child.tolist(), g.label.tolist()):
        assert y == float(p in z.truth.parents[c])
    # every non-root's true parent is among its candidates on a clean tree
    found = {c for p, c, y in zip(g.parent.tolist(), g.child.tolist(), g.label.tolist()) if y == 1}
    assert found == {i for i, p in enumerate(z.truth.parents) if p}


def test_same_seed_same_scorer_and_edges(few_trees):
    a, b = _scorer((21, 22)), _scorer((21, 22))
    z = synthetic_zoo(60, n_components=2, seed=23)
    (g,) = ps.zoo_pairs("z", z.models, z.truth).groups[:1]
    assert np.array_equal(a.probability(g.features), b.probability(g.features))
    assert a.calibration == b.calibration
    ra = get_method("learned", scorer=a).chart(z.models, known_edges={3: z.truth.parents[3]})
    rb = get_method("learned", scorer=b).chart(z.models, known_edges={3: z.truth.parents[3]})
    assert ra.parent_sets() == rb.parent_sets()
    assert np.array_equal(ra.confidence, rb.confidence)


def test_calibration_is_cross_fitted_out_of_family(monkeypatch, few_trees):
    z = {s: synthetic_zoo(50, n_components=2, seed=s) for s in (31, 32, 33)}
    families = [(f"f{s}", [ps.zoo_pairs(f"z{s}", z[s].models, z[s].truth)]) for s in z]
    calls = []
    real = ps._fit_trees

    def spy(fams, random_state):
        calls.append(sorted(name for name, _ in fams))
        return real(fams, random_state)

    monkeypatch.setattr(ps, "_fit_trees", spy)
    scorer = ps.fit_scorer(families)
    # one set of trees per fold, each without that fold's family, then the final trees on all
    assert calls == [["f32", "f33"], ["f31", "f33"], ["f31", "f32"], ["f31", "f32", "f33"]]
    assert scorer.fitted_on == ["z31", "z32", "z33"]
    assert "learned" in scorer.calibration
    m = scorer.calibration["learned"]
    assert np.all(np.diff(m["y"]) >= 0) and 0 <= min(m["y"]) and max(m["y"]) <= 1


def _family_zoos():
    """Three families whose model ids carry the family's name."""
    out = []
    for name, seeds in (("a", (41, 42)), ("b", (43,)), ("c", (44,))):
        for s in seeds:
            zz = synthetic_zoo(50, n_components=2, seed=s)
            models = replace(zz.models, ids=[f"{name}:{i}" for i in zz.models.ids])
            out.append((name, BenchZoo(f"{name}{s}", models, zz.truth)))
    return out


def test_leave_one_family_out_never_trains_the_scorer_on_the_family_it_charts(monkeypatch, few_trees):
    trained_on: list[set[str]] = []
    real_fit = ps.fit_scorer

    def spy_fit(families, **kw):
        trained_on.append({i.split(":")[0] for _, zoos in families for z in zoos for i in z.models.ids})
        return real_fit(families, **kw)

    charted: list[tuple[str, list[str]]] = []
    real_chart = ps.Learned.chart_group

    def spy_chart(self, models, known):
        charted.append((models.ids[0].split(":")[0], self.scorer.fitted_on))
        return real_chart(self, models, known)

    monkeypatch.setattr(ps, "fit_scorer", spy_fit)
    monkeypatch.setattr(ps.Learned, "chart_group", spy_chart)
    families = fam.group_families(_family_zoos())
    report = fam.leave_one_family_out(families, methods=["learned"], seeds=(0,), ablations=False)
    assert trained_on == [{"b", "c"}, {"a", "c"}, {"a", "b"}]
    assert {f for f, _ in charted} == {"a", "b", "c"}
    for family, fitted_on in charted:
        assert fitted_on and not any(name.startswith(f"{family}/") for name in fitted_on)
    assert report["fitted"]["a"]["learned_zoos"] == ["b/b43", "c/c44"]
    rows = {r["family"]: r for r in report["results"]}
    assert set(rows) == {"a", "b", "c"} and all(0 <= r["accuracy"] <= 1 for r in rows.values())
    assert all(np.isfinite(r["calibration_error"]) for r in rows.values())


def test_default_scorer_is_fitted_at_first_use(monkeypatch):
    monkeypatch.setattr(ps, "DEFAULT_SEEDS", (51, 52))
    monkeypatch.setattr(ps, "DEFAULT_ZOO_MODELS", 50)
    ps.default_scorer.cache_clear()
    try:
        z = synthetic_zoo(50, n_components=2, seed=53, mix=CLEAN)
        ev = evaluate(get_method("learned"), z.models, z.truth, seeds=(0,))
        assert ps.default_scorer().fitted_on == ["synthetic-50 seed 51", "synthetic-50 seed 52"]
        assert ev.accuracy > 0.9
    finally:
        ps.default_scorer.cache_clear()


def test_training_without_both_classes_is_a_clear_error():
    from modelatlas.errors import InputError

    z = synthetic_zoo(2, n_components=2, seed=1)  # two roots: no candidate pairs at all
    with pytest.raises(InputError, match="pair scorer"):
        ps.fit_scorer([("f", [ps.zoo_pairs("z", z.models, z.truth)])])


def test_learned_decides_degenerate_inputs(few_trees):
    from modelatlas.chart import ChartInput
    from modelatlas.chart.graph import find_cycle

    scorer = _scorer((61, 62))
    learned = get_method("learned", scorer=scorer)
    assert len(learned.chart(ChartInput(ids=["a"], vectors=np.ones((1, 4)))).parent) == 0
    dup = ChartInput(ids=list("abcd"), vectors=np.ones((4, 8)), created_at=np.arange(4.0))
    assert learned.chart(dup).parent_sets() == {1: {0}, 2: {0}, 3: {0}}  # copies of the first upload
    z = synthetic_zoo(40, n_components=2, seed=63)
    untimed = replace(z.models, created_at=np.full(len(z.models), np.nan))
    r = learned.chart(untimed)
    sets = r.parent_sets()
    assert not find_cycle({c: tuple(p) for c, p in sets.items()}) and len(sets) >= len(z.models) - 2 - 2
    # one sampled row per layer: alignment cannot be tested, relative distance decides kinship
    flat = replace(z.models, layers=[])
    r = learned.chart(flat)
    assert len(r.parent) > 0 and ((r.confidence >= 0) & (r.confidence <= 1)).all()


def test_sign_test_of_the_rules_learned_keeps(few_trees):
    families = fam.group_families(_family_zoos())
    scorer = fam.fit_learned_without(families, "a")
    family = families[0]
    evs = [evaluate(get_method("learned", scorer=scorer), z.models, z.truth, seeds=(0,)) for z in family.zoos]
    full = fam._family_scores("learned", family, evs)
    rows = fam._learned_ablations(family, scorer, full, seeds=(0,), fraction=0.1, components_known=True)
    assert [r["rule"] for r in rows] == [f"learned: {r}" for r in ps.Learned.RULES]
    for r in rows:
        assert r["verdict"] == fam.verdict(r["delta"])
        assert r["accuracy"] == pytest.approx(full["accuracy"] - r["delta"])
