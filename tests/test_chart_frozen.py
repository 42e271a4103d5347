"""Frozen layers as lineage evidence (chart/frozen.py) and `auto`'s `frozen` rule."""

from __future__ import annotations

import ml_dtypes
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.chart import ChartInput, LayerBlock, get_method
from modelatlas.chart.auto import Auto
from modelatlas.chart.frozen import copy_directions, frozen_exclusions, identical_layers, layer_precision
from modelatlas.chart.low_rank import significant_bits

ROWS, COLS, LAYERS = 16, 8, 3
BLOCKS = [LayerBlock(f"l{i}", i * ROWS * COLS, ROWS, COLS) for i in range(LAYERS)]
WIDTH = ROWS * COLS


def _layer(v, i):
    return v[i * WIDTH:(i + 1) * WIDTH]


def _store(v, dtype):
    return np.asarray(v, np.float32).astype(dtype).astype(np.float32)


def test_a_frozen_layer_saved_in_a_coarser_dtype_is_still_identical():
    rng = np.random.default_rng(0)
    parent = rng.normal(size=LAYERS * WIDTH).astype(np.float32)
    child = parent.copy()
    child[:WIDTH] += rng.normal(scale=0.1, size=WIDTH).astype(np.float32)  # layer 0 trained
    child = _store(child, ml_dtypes.bfloat16)  # saved in bf16
    same_bf16 = identical_layers(child, parent[None], BLOCKS, np.array([8]))
    same_fp32 = identical_layers(child, parent[None], BLOCKS, np.array([24]))
    assert same_bf16.tolist() == [[False, True, True]]
    assert not same_fp32.any()  # in fp32 the rounding is a difference


def test_a_partial_sibling_rules_out_its_fully_trained_sibling_but_a_child_keeps_its_parent():
    rng = np.random.default_rng(1)
    p = rng.normal(size=LAYERS * WIDTH)
    x = p + rng.normal(scale=0.1, size=p.shape)  # full fine-tune of p
    sibling = p.copy()
    sibling[:2 * WIDTH] += rng.normal(scale=0.1, size=2 * WIDTH)  # last layer frozen: p's values
    child = x.copy()
    child[:WIDTH] += rng.normal(scale=0.1, size=WIDTH)  # layers 1, 2 frozen: x's values
    bits = np.array([24, 24])
    # the sibling shares its last layer with p, not with x: x is not its parent
    assert frozen_exclusions(sibling, np.stack([x, p]), BLOCKS, bits).tolist() == [True, False]
    # the child shares layers with x, not with p: p is not its parent, x stays
    assert frozen_exclusions(child, np.stack([x, p]), BLOCKS, bits).tolist() == [False, True]
    # only witnesses count: without p as a witness nothing rules x out
    assert not frozen_exclusions(sibling, np.stack([x, p]), BLOCKS, bits, witness=np.array([True, False])).any()
    # a fully trained model shares nothing: nothing is ruled out
    assert not frozen_exclusions(x + 0.01, np.stack([x, p]), BLOCKS, bits).any()


@st.composite
def partial_finetuning_trees(draw):
    """A random tree grown parents first; each child trains a random non-empty subset of layers
    (the rest copied from its parent as stored) and is saved in a random dtype."""
    n = draw(st.integers(3, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    dtypes = [np.float32, np.float16, ml_dtypes.bfloat16]
    vecs = [_store(rng.normal(size=LAYERS * WIDTH), dtypes[draw(st.integers(0, 2))])]
    parents = [-1]
    for i in range(1, n):
        p = draw(st.integers(0, i - 1))
        trained = draw(st.lists(st.integers(0, LAYERS - 1), min_size=1, max_size=LAYERS, unique=True))
        v = vecs[p].astype(np.float64)
        for layer in trained:
            v[layer * WIDTH:(layer + 1) * WIDTH] += rng.normal(scale=0.05, size=WIDTH)
        vecs.append(_store(v, dtypes[draw(st.integers(0, 2))]))
        parents.append(p)
    return np.stack(vecs), parents


@settings(max_examples=60, deadline=None)
@given(partial_finetuning_trees())
def test_a_true_parent_is_never_ruled_out_by_earlier_witnesses(tree):
    vecs, parents = tree
    bits = np.array([significant_bits(v) for v in vecs])
    for y in range(1, len(vecs)):
        earlier = np.arange(y)  # grown parents first: no earlier model descends from y
        out = frozen_exclusions(vecs[y], vecs[earlier], BLOCKS, np.minimum(bits[y], bits[earlier]))
        assert not out[parents[y]]


def _partial_sibling_zoo():
    """p; x, a full fine-tune of p along a task direction; y, the same recipe with the last layer
    frozen, nearer x than p (x moved its last layer only a little)."""
    rng = np.random.default_rng(2)
    p = rng.normal(size=LAYERS * WIDTH)
    task = np.zeros_like(p)
    task[:2 * WIDTH] = rng.normal(scale=0.3, size=2 * WIDTH)
    x = p + task + rng.normal(scale=0.1, size=p.shape)
    y = p + task + rng.normal(scale=0.1, size=p.shape)
    y[2 * WIDTH:] = p[2 * WIDTH:]  # frozen
    vectors = np.stack([p, x, y]).astype(np.float32)
    return ChartInput(ids=["p", "x", "y"], vectors=vectors, layers=BLOCKS, created_at=np.array([0.0, 1.0, 2.0]) * 3600)


def test_auto_gives_a_partial_sibling_its_parent_and_the_ablation_chains_it():
    models = _partial_sibling_zoo()
    assert np.linalg.norm(models.vectors[2] - models.vectors[1]) < np.linalg.norm(models.vectors[2] - models.vectors[0])
    ps = get_method("auto").chart(models).parent_sets()
    assert ps == {1: {0}, 2: {0}}
    without = get_method("auto", rules=tuple(r for r in Auto.RULES if r != "frozen")).chart(models).parent_sets()
    assert without[2] == {1}  # nearest earlier related model: the sibling


def test_a_copied_layer_shows_which_model_is_upstream():
    rng = np.random.default_rng(4)
    base = rng.normal(size=LAYERS * WIDTH)
    trained = base.copy()
    trained[:WIDTH] += rng.normal(scale=0.1, size=WIDTH)  # layer 0 trained, layers 1 and 2 frozen
    # fp32 parent, bf16 child: the child's copy is the parent's rounding (fewer bits)
    fp32_parent, bf16_child = _store(base, np.float32), _store(trained, ml_dtypes.bfloat16)
    # bf16 parent, fp32 child: the child holds the parent's 8-bit values in fp32, trains layer 0 in fp32
    bf16_parent = _store(base, ml_dtypes.bfloat16)
    fp32_child = bf16_parent.astype(np.float64)
    fp32_child[:WIDTH] += rng.normal(scale=0.1, size=WIDTH)
    fp32_child = _store(fp32_child, np.float32)
    vectors = np.stack([fp32_parent, bf16_child, bf16_parent, fp32_child])
    got = copy_directions(vectors, np.array([1, 0, 3, 2]), np.array([0, 1, 2, 3]), BLOCKS)
    # (child, parent): +1, the second of the pair is upstream; (parent, child): -1
    assert got[:, 0].tolist() == [1, -1, 0, 0]  # only a finer copy says so without doubt
    assert got[:, 1].tolist() == [0, 0, 1, -1]  # the fp32 child's 8-bit layers name their bf16 source
    # one dtype, or nothing shared: no evidence
    same_dtype = _store(trained, np.float32)
    unrelated = _store(rng.normal(size=LAYERS * WIDTH), ml_dtypes.bfloat16)
    vectors = np.stack([fp32_parent, same_dtype, unrelated])
    assert not copy_directions(vectors, np.array([0, 0]), np.array([1, 2]), BLOCKS).any()


def test_a_layer_of_constants_says_nothing_about_dtypes():
    # a norm layer at its initial ones, shared by an fp32 root and a bf16 model that trained the rest
    rng = np.random.default_rng(5)
    root = rng.normal(size=LAYERS * WIDTH)
    root[2 * WIDTH:] = 1.0
    other = root + np.concatenate([rng.normal(scale=0.1, size=2 * WIDTH), np.zeros(WIDTH)])
    vectors = np.stack([_store(root, np.float32), _store(other, ml_dtypes.bfloat16)])
    assert layer_precision(vectors[0], BLOCKS)[2] == 0
    assert not copy_directions(vectors, np.array([0]), np.array([1]), BLOCKS).any()


@settings(max_examples=60, deadline=None)
@given(partial_finetuning_trees())
def test_a_finer_copy_never_points_from_a_descendant_to_its_ancestor(tree):
    """Over random trees of partial fine-tunes in random dtypes, the precision evidence (first
    column) never makes a descendant upstream of one of its ancestors."""
    vecs, parents = tree

    def ancestors(i):
        out = set()
        while parents[i] >= 0:
            i = parents[i]
            out.add(i)
        return out

    pairs = [(d, a) for d in range(len(vecs)) for a in ancestors(d)]
    got = copy_directions(vecs, np.array([d for d, _ in pairs]), np.array([a for _, a in pairs]), BLOCKS)
    assert (got[:, 0] >= 0).all()  # +1 (the ancestor is upstream) or no evidence


def test_without_times_a_copied_layer_roots_the_lineage_whatever_the_kurtosis_order():
    """An undated chain r (fp32) -> a (bf16, trains layer 0) -> b (bf16, trains layer 1): a's frozen
    layer 2 is r's rounded to bf16, so r is upstream of a and every model gets its true parent
    whichever end the kurtosis order starts at; without the rule the kurtosis order decides."""
    rng = np.random.default_rng(6)
    r = rng.normal(size=LAYERS * WIDTH)
    a = _store(r, ml_dtypes.bfloat16).astype(np.float64)
    a[:WIDTH] += rng.normal(scale=0.1, size=WIDTH)
    b = a.copy()
    b[WIDTH:2 * WIDTH] += rng.normal(scale=0.1, size=WIDTH)
    vectors = np.stack([_store(r, np.float32), _store(a, ml_dtypes.bfloat16), _store(b, ml_dtypes.bfloat16)])
    truth = {1: {0}, 2: {1}}
    without_rule = []
    for kurtosis in ([[3.0], [2.0], [1.0]], [[1.0], [2.0], [3.0]]):
        models = ChartInput(ids=["r", "a", "b"], vectors=vectors, layers=BLOCKS, kurtosis=np.array(kurtosis))
        assert get_method("auto").chart(models).parent_sets() == truth
        ablated = get_method("auto", rules=tuple(x for x in Auto.RULES if x != "frozen"))
        without_rule.append(ablated.chart(models).parent_sets())
    assert without_rule[0] != without_rule[1]
