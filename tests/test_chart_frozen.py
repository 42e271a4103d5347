"""Frozen layers as lineage evidence (chart/frozen.py) and `auto`'s `frozen` rule."""

from __future__ import annotations

import ml_dtypes
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.chart import ChartInput, LayerBlock, get_method
from modelatlas.chart.auto import Auto
from modelatlas.chart.frozen import frozen_exclusions, identical_layers
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
