"""The no-times processing order of ``auto``: breadth-first over the fingerprints' spanning forest."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.chart.tree_order import known_parents_first, spanning_tree_order


def _within(x: np.ndarray, share: float):
    """``related`` for the forest: pairs closer than ``share`` of the larger norm."""
    norms = np.linalg.norm(x, axis=1)
    return lambda a, b: np.linalg.norm(x[a] - x[b], axis=1) <= share * np.maximum(norms[a], norms[b])


def _line(n: int) -> np.ndarray:
    """Models 0..n-1 on a line far from the origin: each one's nearest models are its neighbours."""
    x = np.zeros((n, 3))
    x[:, 0] = 100.0 + np.arange(n)
    return x


def test_a_chain_is_walked_from_its_root():
    x = _line(6)
    rank = np.array([3, 1, 0, 2, 4, 5])  # kurtosis would start at model 2
    assert spanning_tree_order(x, rank, {}, related=_within(x, 0.6)).tolist()[0] == 2
    # a known root wins over the kurtosis order, and the chain then comes out parents first
    assert spanning_tree_order(x, rank, {0: ()}, related=_within(x, 0.6)).tolist() == [0, 1, 2, 3, 4, 5]
    # a known edge into the first model by rank: the root is the top of the known chain
    assert spanning_tree_order(x, rank, {2: (1,), 1: (0,)}, related=_within(x, 0.6)).tolist() == [0, 1, 2, 3, 4, 5]


def test_unrelated_models_make_separate_trees():
    near = _line(3)
    far = -_line(3)  # as far from the first three as from the origin: unrelated
    x = np.vstack([near, far])
    rank = np.array([5, 4, 3, 0, 1, 2])
    order = spanning_tree_order(x, rank, {}, related=_within(x, 0.6)).tolist()
    # each tree from its own first model by rank: the far one (3) first, then the near one from 2
    assert order == [3, 4, 5, 2, 1, 0]
    # with a large enough threshold the two are one tree (joined between models 0 and 3), walked
    # breadth-first from model 3, neighbours by rank
    assert spanning_tree_order(x, rank, {}, related=_within(x, 10.0)).tolist() == [3, 4, 0, 5, 1, 2]


def test_neighbour_graph_beyond_exact_search_gives_the_same_chain():
    x = _line(40)
    rank = np.arange(40)
    assert spanning_tree_order(x, rank, {}, related=_within(x, 0.6), exact_up_to=10).tolist() == list(range(40))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(0, 10_000), st.floats(0.05, 2.0))
def test_order_is_a_permutation_with_known_parents_first(n, seed, root_distance):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) * rng.choice([0.1, 1.0, 10.0], size=(n, 1))
    x[rng.integers(0, n)] = x[0]  # duplicates are 0 apart
    rank = rng.permutation(n)
    known = {}
    for child in range(1, n):  # a random known forest over row order (acyclic)
        if rng.random() < 0.3:
            known[child] = (int(rng.integers(0, child)),)
        elif rng.random() < 0.1:
            known[child] = ()
    order = known_parents_first(spanning_tree_order(x, rank, known, related=_within(x, root_distance)), known)
    assert sorted(order.tolist()) == list(range(n))
    where = {int(m): k for k, m in enumerate(order)}
    assert all(where[p] < where[c] for c, ps in known.items() for p in ps)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 10_000))
def test_known_parents_first_moves_only_what_it_must(n, seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    labels = rng.permutation(n)  # known edges from lower to higher label: acyclic
    known = {int(labels[c]): (int(labels[rng.integers(0, c)]),) for c in range(1, n) if rng.random() < 0.4}
    out = known_parents_first(order, known)
    assert sorted(out.tolist()) == list(range(n))
    where = {int(m): k for k, m in enumerate(out)}
    assert all(where[p] < where[c] for c, ps in known.items() for p in ps)
    if not known:
        assert out.tolist() == order.tolist()


def test_auto_refuses_an_unknown_order():
    import pytest

    from modelatlas.chart.estimator import get_method
    from modelatlas.chart.synthetic import synthetic_zoo
    from modelatlas.errors import InputError

    z = synthetic_zoo(20, n_components=1, seed=1)
    for params in ({"order": "alphabetical"}, {"fallback": "time"}):
        with pytest.raises(InputError, match="'(order|fallback)' parameter of charting method 'auto'"):
            get_method("auto", **params).chart(z.models)


def test_auto_charts_when_known_parents_are_newer_than_their_children():
    """Upload times can be noisy: a known parent uploaded after its child must still be decided
    first (it used to stop charting with a KeyError)."""
    from dataclasses import replace

    from modelatlas.chart.estimator import get_method
    from modelatlas.chart.evaluate import sample_stem
    from modelatlas.chart.synthetic import synthetic_zoo

    z = synthetic_zoo(80, n_components=2, seed=0)
    stem = sample_stem(z.truth, seed=0)
    t = z.models.created_at.copy()
    for ps in stem.values():
        for p in ps:
            t[p] = t.max() + 1.0  # every known parent is the newest model
    result = get_method("auto").chart(replace(z.models, created_at=t), known_edges=stem)
    assert {c: tuple(sorted(ps)) for c, ps in result.parent_sets().items() if c in stem} == \
        {c: tuple(sorted(ps)) for c, ps in stem.items() if ps}


def test_ground_truth_subset_renumbers_and_drops_parents_outside():
    from modelatlas.chart.types import GroundTruth

    t = GroundTruth(parents=[(), (0,), (0, 1), None], relation=[None, "finetune", "merge", None],
                    pattern=["root", "finetune", "merge", None], component=np.array([0, 0, 0, 1]))
    s = t.subset(np.array([2, 1, 3]))
    assert s.parents == [(1,), (), None]  # 0 is outside: dropped; 1 is now row 1
    assert s.relation == ["merge", "finetune", None] and s.pattern == ["merge", "finetune", None]
    assert s.component.tolist() == [0, 0, 1]


def test_an_undated_model_follows_the_model_it_is_reached_from():
    from modelatlas.chart.tree_order import partly_timed_order

    x = _line(5)  # a chain 0-1-2-3-4
    t = np.array([0.0, np.nan, 2.0, 3.0, np.nan])
    order = partly_timed_order(x, t, {}, related=_within(x, 0.6)).tolist()
    assert order == [0, 1, 2, 3, 4]  # 1 right after 0 (not after every dated model), 4 after 3
    far = -_line(2)  # a second family with no date at all comes last
    y = np.vstack([x, far])
    order = partly_timed_order(y, np.concatenate([t, [np.nan, np.nan]]), {}, related=_within(y, 0.6)).tolist()
    assert order[:5] == [0, 1, 2, 3, 4] and sorted(order[5:]) == [5, 6]


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(0, 10_000))
def test_partly_timed_order_keeps_dated_models_in_upload_order(n, seed):
    from modelatlas.chart.tree_order import partly_timed_order

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) * rng.choice([0.1, 1.0, 10.0], size=(n, 1))
    t = np.where(rng.random(n) < 0.4, np.nan, rng.normal(size=n))
    order = partly_timed_order(x, t, {}, related=_within(x, 0.6))
    assert sorted(order.tolist()) == list(range(n))
    dated = [i for i in order.tolist() if np.isfinite(t[i])]
    assert dated == sorted(dated, key=lambda i: (t[i], i))
