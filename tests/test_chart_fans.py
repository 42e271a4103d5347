"""Sweep siblings told from children (chart/fans.py) and `auto`'s `fans` rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modelatlas.chart import get_method
from modelatlas.chart.auto import Auto
from modelatlas.chart.evaluate import correct_mask, sample_stem
from modelatlas.chart.fans import own_update_coefficient, unchain_fans
from modelatlas.chart.synthetic import synthetic_zoo


def test_a_child_carries_the_parents_own_update_and_a_sibling_does_not():
    e = np.eye(5)
    x_update = e[0] + e[1]  # e0: the sweep's shared direction, e1: x's own
    others = e[0][:, None]  # another sweep member explains e0
    gamma, share = own_update_coefficient(x_update, x_update + e[3], others)  # a child of x
    assert gamma == 1.0 and share == np.sqrt(0.5)
    gamma, _ = own_update_coefficient(x_update, 2 * e[0] + e[4], others)  # a sibling with twice the step
    assert gamma == 0.0
    # a model that did not move, or one the others explain wholly: the test says nothing
    assert own_update_coefficient(np.zeros(5), e[0], others)[1] == 0.0
    assert own_update_coefficient(e[0], e[0], others)[1] == 0.0


finite = st.floats(-10, 10, allow_nan=False, width=64)


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, 12, elements=finite), arrays(np.float64, (12, 3), elements=finite),
       arrays(np.float64, 3, elements=finite), st.floats(-3, 3, allow_nan=False))
def test_gamma_is_the_coefficient_on_x_whatever_the_others_explain(x_update, others, c, a):
    """γ(x, a·x + others·c) = a: what the other models share never counts for or against
    (for others that are not numerically rank-deficient: there the least-squares solve decides
    what their span is)."""
    cols = others[:, np.linalg.norm(others, axis=0) > np.finfo(np.float64).tiny]
    assume(not cols.size or np.linalg.cond(cols / np.linalg.norm(cols, axis=0)) < 1e6)
    gamma, share = own_update_coefficient(x_update, a * x_update + others @ c, others)
    if share > 1e-3:
        # rounding in <others c, r> is relative to |others c| / |r|
        r_norm = share * np.linalg.norm(x_update)
        assert abs(gamma - a) < 1e-6 * (1 + np.linalg.norm(others @ c) / r_norm)


def _seed_sweep(rng, d=400):
    """p, three members of a seed sweep (a shared step plus each member's own noise) and a child
    of the first member, charted as a chain."""
    p = rng.normal(size=d)
    shared = rng.normal(scale=0.3, size=d)
    x, y, z = (p + shared + rng.normal(scale=0.15, size=d) for _ in range(3))
    child = x + rng.normal(scale=0.15, size=d)
    return np.stack([p, x, y, z, child])


@pytest.mark.parametrize("seed", range(5))
def test_a_sweep_charted_under_one_member_returns_to_its_parent_and_the_child_stays(seed):
    vecs = _seed_sweep(np.random.default_rng(seed))
    chained = {1: (0,), 2: (1,), 3: (1,), 4: (1,)}  # p -> x -> {y, z, child}
    parents = dict(chained)
    moved = unchain_fans(np.arange(5), parents, lambda i: i != 1, lambda i: vecs[i], min_share=0.25, max_others=16)
    assert parents == {1: (0,), 2: (0,), 3: (0,), 4: (1,)}
    assert set(moved) == {2, 3} and all(g < 0.5 for _, g in moved.values())
    # min_share = 1: x's own part is never its whole update here, so nothing moves
    parents = dict(chained)
    assert unchain_fans(np.arange(5), parents, lambda i: True, lambda i: vecs[i], min_share=1.0, max_others=16) == {}
    assert parents == chained


def test_auto_charts_seed_sweeps_better_with_the_fans_rule_and_children_no_worse():
    z = synthetic_zoo(160, n_components=3, seed=5, mix={"fan": 0.5, "finetune": 0.3, "snake": 0.2})
    models = replace(z.models, components=z.truth.component)
    stem = sample_stem(z.truth, seed=0)
    scored = np.array([i not in stem and bool(z.truth.parents[i]) for i in range(len(models))])
    pattern = np.array(z.truth.pattern)

    def accuracy(rules):
        ok = correct_mask(get_method("auto", rules=rules).chart(models, known_edges=stem), z.truth)
        return {pat: ok[scored & (pattern == pat)].mean() for pat in ("fan", "finetune", "snake")}

    with_fans = accuracy(Auto.RULES)
    without = accuracy(tuple(r for r in Auto.RULES if r != "fans"))
    assert with_fans["fan"] >= without["fan"] + 0.2
    assert with_fans["finetune"] >= without["finetune"] and with_fans["snake"] >= without["snake"]


@st.composite
def charted_forests(draw):
    """A random forest charted parents first, random fingerprints, and which models are revisable."""
    n = draw(st.integers(2, 14))
    parents = {}
    for i in range(1, n):
        p = draw(st.integers(-1, i - 1))
        if p >= 0:
            parents[i] = (p,)
    vecs = draw(arrays(np.float64, (n, 6), elements=st.floats(-3, 3, allow_nan=False)))
    revisable = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return parents, vecs, revisable


@settings(max_examples=80, deadline=None)
@given(charted_forests())
def test_unchaining_only_lifts_revisable_models_to_an_ancestor_and_keeps_a_forest(forest):
    """A moved model goes to its parent's parent at the time of its visit: an ancestor of its
    first parent (that parent may have moved up before it)."""
    parents, vecs, revisable = forest
    before = dict(parents)

    def ancestors(u):
        out = []
        while u in before:
            u = before[u][0]
            out.append(u)
        return out

    moved = unchain_fans(np.arange(len(vecs)), parents, lambda i: revisable[i], lambda i: vecs[i],
                         min_share=0.25, max_others=4)
    for y, ps in parents.items():
        if y in moved:
            assert revisable[y] and ps == (moved[y][0],) and moved[y][1] < 0.5
            assert ps[0] in ancestors(before[y][0])
        else:
            assert ps == before[y]
    assert set(parents) == set(before)  # nobody becomes a root
    for y in parents:  # acyclic: every chain of parents ends at a root
        seen, u = set(), y
        while u in parents:
            assert u not in seen
            seen.add(u)
            u = parents[u][0]
