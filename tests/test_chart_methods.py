"""Known-answer cases for every charting method."""

from __future__ import annotations

from dataclasses import replace

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.chart import ChartInput, LayerBlock, get_method, method_names
from modelatlas.chart.auto import Auto, OnlineCharter, simplex_least_squares
from modelatlas.chart.evaluate import accuracy, correct_mask, evaluate, sample_stem
from modelatlas.chart.synthetic import DEFAULT_MIX, synthetic_zoo

HOUR = 3600.0


def _models(vectors, times=None, **kw) -> ChartInput:
    vectors = np.asarray(vectors, np.float32)
    return ChartInput(ids=[f"m{i}" for i in range(len(vectors))], vectors=vectors,
                      created_at=None if times is None else np.asarray(times, float), **kw)


def test_registry_lists_every_method():
    assert set(method_names()) >= {"random", "random-root", "majority", "price", "mother", "atlas", "auto"}
    assert get_method("atlas", K=3).K == 3
    with pytest.raises(Exception, match="no parameter"):
        get_method("atlas", nonsense=1)
    with pytest.raises(Exception, match="unknown charting method"):
        get_method("nope")


def test_random_baselines_are_valid_and_seeded():
    z = synthetic_zoo(40, n_components=2, seed=3)
    models = replace(z.models, components=z.truth.component)
    a = get_method("random", random_state=1).chart(models)
    b = get_method("random", random_state=1).chart(models)
    assert a.parent_sets() == b.parent_sets()
    assert np.all(a.parent != a.child)
    assert np.all(z.truth.component[a.parent] == z.truth.component[a.child])  # never across families
    rr = get_method("random-root").chart(models)
    t = models.created_at
    assert np.all(t[rr.parent] <= t[rr.child])  # a random recursive tree grown in time order


def test_majority_builds_a_star_around_the_stem_hub():
    models = _models(np.eye(5), times=np.arange(5) * HOUR)
    result = get_method("majority").chart(models, known_edges={1: (2,), 3: (2,), 4: (0,)})
    ps = result.parent_sets()
    assert ps[0] == {2} and 2 not in ps  # the hub (2 known children) is everyone's parent and a root
    assert ps[1] == {2} and ps[4] == {0}  # known edges are kept


def test_price_attaches_to_models_already_present():
    models = _models(np.eye(6), times=np.arange(6) * HOUR)
    result = get_method("price", random_state=0).chart(models, known_edges={0: ()})
    t = models.created_at
    assert len(result.parent_sets()) == 5
    assert np.all(t[result.parent] < t[result.child])


def _tree_vectors(rng, d=192):
    """root -> a -> c, root -> b (a and b far apart, c close to a)."""
    root = rng.standard_t(5, d)
    a = root + rng.normal(0, 0.3, d)
    b = root + rng.normal(0, 0.3, d)
    c = a + rng.normal(0, 0.1, d)
    return np.stack([root, a, b, c])


def test_mother_recovers_a_hand_made_tree_with_direction():
    rng = np.random.default_rng(0)
    v = _tree_vectors(rng)
    kurt = np.array([[9.0], [6.0], [6.0], [3.0]])  # specialisation: kurtosis falls down the tree
    models = _models(v, kurtosis=kurt, layers=[LayerBlock("l", 0, 12, 16)])
    result = get_method("mother", distance="ft").chart(models)
    assert result.parent_sets() == {1: {0}, 2: {0}, 3: {1}}
    flipped = get_method("mother", distance="ft", stage="generalization").chart(models)
    assert 0 in flipped.parent_sets()  # the generalisation stage reverses the direction prior


def test_mother_lora_distance_and_clustering_into_trees():
    z = synthetic_zoo(42, n_components=2, mix={"lora": 1.0}, seed=4)
    e = evaluate(get_method("mother", distance="lora"), z.models, z.truth, components_known=False)
    assert e.edge_accuracy > 0.6
    from modelatlas.chart.distances import lora_distance

    d = lora_distance(z.models)
    for c, ps in enumerate(z.truth.parents):
        if ps:
            assert d[ps[0], c] <= 4  # a LoRA child differs from its parent by at most its rank


def test_mother_public_code_variants_run():
    z = synthetic_zoo(30, n_components=1, mix={"finetune": 1.0}, seed=2)
    for params in ({"layer_reduce": "sum"}, {"per_layer": "rms", "layer_reduce": "mean"},
                   {"c": 0.3, "mean_with_diagonal": True}):
        e = evaluate(get_method("mother", distance="ft", **params), z.models, z.truth)
        assert e.accuracy > 0.5, params


def test_algorithm1_snake_and_fan():
    rng = np.random.default_rng(1)
    d = 64
    root = rng.normal(0, 1, d)
    drift = rng.normal(0, 0.004, d)  # snake: checkpoints drifting one way, one per hour
    snake = [root + drift * (k + 1) + rng.normal(0, 1e-4, d) for k in range(5)]
    shared = rng.normal(0, 0.003, d)  # fan: a sweep of siblings uploaded in random order
    fan = [root + shared + rng.normal(0, 0.001, d) for _ in range(5)]
    times = [0, 1, 2, 3, 4, 5, 14, 10, 13, 11, 12]
    models = _models(np.stack([root, *snake, *fan]), times=np.array(times) * HOUR)
    # every node classified as a fan (threshold above all correlations): the oldest near model
    ps = get_method("atlas", K=5, rho_percentile=100.0).chart(models).parent_sets()
    assert all(ps[k] == {0} for k in range(6, 11))
    assert ps[2] == {0}  # a snake read as a fan jumps back to the oldest (the rule's failure mode)
    # the snake rule (or no snake/fan rule): the nearest earlier model
    ps = get_method("atlas", K=5, snake_fan=False).chart(models).parent_sets()
    assert all(ps[k] == {k - 1} for k in range(1, 6))
    assert any(ps[k] != {0} for k in range(6, 11))  # siblings chain up without the fan rule


def test_algorithm1_quantized_leaf_duplicates_and_known_merge():
    rng = np.random.default_rng(2)
    root = rng.normal(0, 1, 32)
    ft = root + rng.normal(0, 0.05, 32)
    quant = ft.round(1)  # quantised copy of ft, uploaded before ft's child
    child = ft + rng.normal(0, 0.05, 32)
    dup = child.copy()
    merge = (ft + root) / 2
    v = np.stack([root, ft, quant, child, dup, merge])
    models = _models(v, times=np.arange(6) * HOUR, quantized=[0, 0, 1, 0, 0, 0],
                     documented_parents={5: (0, 1)})
    ps = get_method("atlas").chart(models).parent_sets()
    assert ps[2] == {1} and ps[3] == {1}  # the quantised model is never a parent
    assert ps[4] == ps[3]  # Algorithm 1: a duplicate receives its first copy's parents
    assert ps[5] == {0, 1}  # known parents kept
    ps = get_method("atlas", duplicate_parent="original").chart(models).parent_sets()
    assert ps[4] == {3}
    ps = get_method("atlas", merges=False).chart(models).parent_sets()
    assert len(ps[5]) == 1  # without the merge rule the documented parents are not used


@pytest.mark.parametrize("mix", [{"finetune": 1.0}, {"lora": 1.0}])
@pytest.mark.parametrize("seed", [0, 1])
def test_auto_is_exact_on_clean_finetune_and_lora_trees(mix, seed):
    z = synthetic_zoo(105, n_components=5, mix=mix, seed=seed)
    e = evaluate(get_method("auto"), z.models, z.truth, components_known=False, seeds=(0,))
    assert e.accuracy == 1.0 and e.edge_accuracy == 1.0


def test_auto_detects_merges_and_lora_from_weights():
    z = synthetic_zoo(300, seed=11, documented_merges=0.0)
    result = get_method("auto").chart(z.models)
    ok = correct_mask(result, z.truth)
    pat = np.array(z.truth.pattern)
    assert ok[pat == "merge"].mean() >= 0.9 and ok[pat == "lora"].mean() >= 0.9
    rel = dict(zip(result.child.tolist(), result.relation.tolist()))
    assert all(rel.get(i) == "adapter" for i in np.flatnonzero(pat == "lora") if ok[i])
    assert all(rel.get(i) == "merge" for i in np.flatnonzero(pat == "merge") if ok[i])


@pytest.mark.parametrize("storage", ["float32", "bfloat16"])
@pytest.mark.parametrize("weights, truth", [((0.8, 0.2, 0.0), {1, 2}), ((0.5, 0.3, 0.2), {1, 2, 3})])
def test_auto_merge_parents_are_the_fewest_ingredients(weights, truth, storage):
    """An undocumented merge of fine-tunes ``a, b (, c)`` when an earlier merge ``m = (a + b) / 2``
    exists: the weights are then also a combination of ``a`` and ``m`` (or ``a, m, c``), and the
    fit over every candidate spreads its weight over all of them. ``auto`` names the fewest
    parents that fit as well, the ingredients rather than the mixture (docs/chart.md, rule 7)."""
    rng = np.random.default_rng(5)
    layers = [LayerBlock(f"l{k}", k * 256, 16, 16) for k in range(3)]
    root = rng.standard_t(5, 768) * 0.5
    a, b, c = (root + rng.normal(0, 0.05, 768) for _ in range(3))
    stored = (lambda w: w.astype(ml_dtypes.bfloat16).astype(np.float32)) if storage == "bfloat16" else np.float32
    root, a, b, c = (stored(w) for w in (root, a, b, c))
    m = stored((a + b) / 2)
    x = stored(weights[0] * a + weights[1] * b + weights[2] * c)
    models = _models([root, a, b, c, m, x], times=np.arange(6) * HOUR, layers=layers)
    ps = get_method("auto").chart(models).parent_sets()
    assert ps[4] == {1, 2}
    assert ps[5] == truth


@pytest.mark.parametrize("seed", range(4))
def test_auto_merge_of_parents_stored_coarser_than_the_merge(seed):
    """Fine-tunes uploaded in bfloat16 and merged from their float32 training weights: the merge
    is not an exact mixture of the stored parents, which carry bfloat16 rounding; the fit over
    every candidate absorbs a little of that rounding with models that are no parents. The two
    ingredients still fit as well by the nested-model test (docs/chart.md, rule 7)."""
    rng = np.random.default_rng(seed)
    layers = [LayerBlock(f"l{k}", k * 256, 16, 16) for k in range(3)]
    bf16 = lambda w: w.astype(ml_dtypes.bfloat16).astype(np.float32)  # noqa: E731
    root = bf16(rng.standard_t(5, 768) * 0.5)
    trained = [root + rng.normal(0, 0.05, 768) for _ in range(6)]
    merge = np.float32((trained[0] + trained[1]) / 2)
    models = _models([root, *map(bf16, trained), merge], times=np.arange(8) * HOUR, layers=layers)
    result = get_method("auto").chart(models)
    assert result.parent_sets()[7] == {1, 2}
    assert dict(zip(result.child.tolist(), result.relation.tolist()))[7] == "merge"


@pytest.mark.parametrize("storage", ["float32", "bfloat16"])
def test_auto_finds_a_task_arithmetic_merge(storage):
    """``x = r + λ (a - r) + λ (b - r)`` with ``2λ > 1`` puts the base ``r`` at a negative weight,
    outside every convex combination; ``auto`` finds the two task vectors' owners as the parents,
    and not the base. A fine-tune of the merge's parent is not taken for a merge."""
    rng = np.random.default_rng(8)
    layers = [LayerBlock(f"l{k}", k * 256, 16, 16) for k in range(3)]
    stored = (lambda w: w.astype(ml_dtypes.bfloat16).astype(np.float32)) if storage == "bfloat16" else np.float32
    root = stored(rng.standard_t(5, 768) * 0.5)
    a, b, c = (stored(root + rng.normal(0, 0.05, 768)) for _ in range(3))
    x = stored(root + 0.8 * (a - root) + 0.8 * (b - root))
    ft = stored(a + rng.normal(0, 0.02, 768))
    models = _models([root, a, b, c, x, ft], times=np.arange(6) * HOUR, layers=layers)
    result = get_method("auto").chart(models)
    ps = result.parent_sets()
    assert ps[4] == {1, 2} and ps[5] == {1}
    assert dict(zip(result.child.tolist(), result.relation.tolist()))[4] == "merge"


def test_auto_chains_a_sweep_that_shares_one_direction():
    """Sweep members share their update direction; only the part of a member's update that is its
    own tells a sibling from a child, and the ``fans`` rule recovers some members, not all
    (docs/chart.md, "Fans and siblings"). Its members are related to the parent, so none becomes a
    root."""
    z = synthetic_zoo(300, seed=11, documented_merges=0.0)
    result = get_method("auto").chart(z.models)
    fans = np.flatnonzero(np.array(z.truth.pattern) == "fan")
    ps = result.parent_sets()
    assert all(i in ps for i in fans)
    assert correct_mask(result, z.truth)[fans].mean() < 0.9


def test_simplex_least_squares_finds_the_mixture():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 5))
    w = np.array([0.0, 0.6, 0.0, 0.4, 0.0])
    assert np.allclose(simplex_least_squares(a, a @ w), w, atol=1e-3)


def test_auto_beats_atlas_and_mother_on_mixed_synthetic_zoo():
    mix = {k: v for k, v in DEFAULT_MIX.items() if k != "fan"}  # fans: see the test above
    z = synthetic_zoo(240, seed=5, mix=mix)
    scores = {m: evaluate(get_method(m), z.models, z.truth, seeds=(0,)).accuracy for m in ("atlas", "mother", "auto")}
    assert scores["auto"] >= 0.95
    assert scores["auto"] >= max(scores["atlas"], scores["mother"]) + 0.04


def test_auto_online_equals_batch():
    """Online charting is the first pass (each model from the models before it); the joint pass
    and the fan pass revisit decisions once all models are there, so they are left out for the comparison."""
    z = synthetic_zoo(120, seed=8)
    first_pass = tuple(r for r in Auto.RULES if r not in ("joint", "fans"))
    method = Auto(calibrate=False, exact_up_to=50, rules=first_pass)  # exercises the HNSW index too
    batch = method.chart(z.models)
    charter = OnlineCharter(method, z.models.vectors.shape[1], z.models.layers)
    for i in z.models.time_order().tolist():  # models arriving one at a time
        charter.add(i, z.models.vectors[i], quantized=bool(z.models.quantized[i]),
                    content_hash=z.models.content_hashes[i],
                    parents=z.models.documented_parents.get(i))
    assert charter.result().parent_sets() == batch.parent_sets()


def test_auto_without_times_uses_kurtosis_direction():
    z = synthetic_zoo(105, n_components=5, mix={"finetune": 1.0}, seed=3)
    no_time = replace(z.models, created_at=np.full(len(z.models), np.nan))
    result = get_method("auto").chart(no_time)
    assert any("kurtosis" in m for m in result.messages)
    assert accuracy(result, z.truth) >= 0.7


def test_auto_confidence_is_calibrated():
    z = synthetic_zoo(300, seed=21, documented_merges=0.0)
    result = get_method("auto").chart(z.models)
    ok = correct_mask(result, z.truth)
    conf = {}
    for c, v in zip(result.child.tolist(), result.confidence.tolist()):
        conf[c] = v
    kids = np.array(sorted(conf))
    c = np.array([conf[k] for k in kids])
    assert abs(c.mean() - ok[kids].mean()) < 0.08  # mean confidence close to observed accuracy


def test_known_edges_are_kept_and_stem_is_per_component():
    z = synthetic_zoo(100, n_components=3, seed=2)
    stem = sample_stem(z.truth, fraction=0.1, seed=0)
    for c in np.unique(z.truth.component):
        assert any(z.truth.component[i] == c for i in stem)
    for name in ("random", "mother", "atlas", "auto"):
        ps = get_method(name).chart(z.models, known_edges=stem).parent_sets()
        for child, parents in stem.items():
            assert ps.get(child, frozenset()) == frozenset(parents), name


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 40), components_known=st.booleans())
def test_every_method_predicts_an_acyclic_graph_within_families(seed, n, components_known):
    from modelatlas.chart.graph import find_cycle

    z = synthetic_zoo(n, n_components=2, seed=seed)
    models = replace(z.models, components=z.truth.component if components_known else None)
    stem = sample_stem(z.truth, seed=seed)
    for name in ("random-root", "majority", "price", "mother", "atlas", "auto"):
        result = get_method(name).chart(models, known_edges=stem)
        ps = result.parent_sets()
        assert not find_cycle({c: tuple(p) for c, p in ps.items()}), name
        assert all(0 <= c < n and c not in p for c, p in ps.items()), name
        if components_known:
            assert all(z.truth.component[c] == z.truth.component[q] for c, p in ps.items() for q in p), name


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 1000))
def test_without_times_keeps_every_lineage_and_hides_the_order(seed):
    """The no-times benchmark variant: same models, same true parents (by id), no times, and the
    input order is no longer the upload order."""
    from modelatlas.chart.bench import BenchZoo, without_times

    z = synthetic_zoo(60, n_components=2, seed=5)
    zoo = BenchZoo("z", z.models, z.truth)
    bare = without_times(zoo, seed=seed)
    ids, new_ids = z.models.ids, bare.models.ids
    assert sorted(new_ids) == sorted(ids) and not np.isfinite(bare.models.created_at).any()
    def lineage(models, truth):
        return {models.ids[i]: (None if ps is None else sorted(models.ids[p] for p in ps), truth.pattern[i],
                                truth.relation[i]) for i, ps in enumerate(truth.parents)}
    assert lineage(bare.models, bare.truth) == lineage(z.models, z.truth)
    old_row = {m: i for i, m in enumerate(ids)}
    assert [z.truth.component[old_row[m]] for m in new_ids] == list(bare.truth.component)
    assert new_ids != ids  # 60 models: the shuffle moves something


def test_without_times_takes_away_what_input_order_told():
    """Zoos list models in upload order: without times but unshuffled, ``atlas`` (input order)
    would still read it; shuffled, it cannot."""
    from modelatlas.chart.bench import BenchZoo, without_times

    z = synthetic_zoo(60, n_components=2, seed=5)
    bare = without_times(BenchZoo("z", z.models, z.truth))
    unshuffled = replace(z.models, created_at=np.full(60, np.nan))
    atlas = get_method("atlas")
    assert evaluate(atlas, bare.models, bare.truth).accuracy < evaluate(atlas, unshuffled, z.truth).accuracy
