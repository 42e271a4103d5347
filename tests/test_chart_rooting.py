"""The root of an undirected lineage tree chosen by the evidence along it (``chart/rooting.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.chart.rooting import best_roots


def _chain(n: int):
    row = np.arange(n - 1)
    return row, row + 1


def _one_tree(n: int):
    return np.zeros(n, np.int64), 1


def test_a_known_edge_deep_in_a_chain_rules_out_every_root_beyond_its_parent():
    row, col = _chain(8)
    tree, k = _one_tree(8)
    rank = np.array([6, 7, 5, 4, 3, 2, 1, 0])  # the fallback order starts at the far end, 7
    assert best_roots(8, row, col, tree, k, rank, {}).tolist() == [7]
    # 2 -> 5 (not adjacent): the root is on 2's side of the edge 2 - 3; among 0, 1, 2 the best rank
    assert best_roots(8, row, col, tree, k, rank, {5: (2,)}).tolist() == [2]
    # a second known edge 1 -> 2 leaves 0 and 1, and 0 comes first in the fallback order
    assert best_roots(8, row, col, tree, k, rank, {5: (2,), 2: (1,)}).tolist() == [0]
    # a known root beats every known edge
    assert best_roots(8, row, col, tree, k, rank, {5: (2,), 6: ()}).tolist() == [6]


def test_a_merge_gives_no_path_evidence():
    row, col = _chain(5)
    tree, k = _one_tree(5)
    rank = np.array([4, 3, 2, 1, 0])
    # 4 is a merge of 0 and 3: the path from 0 runs through 3, not through 4's lineage
    assert best_roots(5, row, col, tree, k, rank, {4: (0, 3)}).tolist() == [4]


def test_a_quantised_model_is_not_the_root_when_another_ties():
    # a star around 0; the fallback order starts at the quantised leaf 3
    row, col = np.zeros(3, np.int64), np.array([1, 2, 3])
    tree, k = _one_tree(4)
    rank = np.array([2, 3, 1, 0])
    leaves = np.array([False, False, False, True])
    assert best_roots(4, row, col, tree, k, rank, {}).tolist() == [3]
    assert best_roots(4, row, col, tree, k, rank, {}, leaves=leaves).tolist() == [2]
    # known edges outrank the leaf evidence: 3 -> 2 puts the root on 3's side of the edge 3 - 0
    assert best_roots(4, row, col, tree, k, rank, {2: (3,)}, leaves=leaves).tolist() == [3]


def test_a_copied_layer_directs_its_edge_below_known_edges_and_above_leaves():
    # a chain 0 - 1 - 2 - 3; the fallback order starts at 3
    row, col = _chain(4)
    tree, k = _one_tree(4)
    rank = np.array([3, 2, 1, 0])
    copies = np.zeros((3, 2), np.int64)
    copies[0] = (-1, 0)  # edge 0 - 1: 0 holds the finer copy, so 0 is the parent
    assert best_roots(4, row, col, tree, k, rank, {}, copies=copies).tolist() == [0]
    # the weaker, native-copy evidence on edge 1 - 2 pointing 2 -> 1 loses to the precision tier
    copies[1] = (0, 1)
    assert best_roots(4, row, col, tree, k, rank, {}, copies=copies).tolist() == [0]
    # a known edge 3 -> 2 outranks it: the root is 3
    assert best_roots(4, row, col, tree, k, rank, {2: (3,)}, copies=copies).tolist() == [3]
    # a quantised leaf 0 does not: copies outrank leaves
    leaves = np.array([True, False, False, False])
    assert best_roots(4, row, col, tree, k, rank, {}, leaves=leaves, copies=copies).tolist() == [0]


def test_with_some_models_dated_the_root_agrees_with_upload_order_first():
    row, col = _chain(6)
    tree, k = _one_tree(6)
    rank = np.array([5, 4, 3, 2, 1, 0])
    times = np.array([np.nan, 3.0, np.nan, 1.0, 2.0, np.nan])
    # the one edge between dated models, 3 - 4, points 3 -> 4 from the roots 0 .. 3; of those 3
    # comes first in the rank
    assert best_roots(6, row, col, tree, k, rank, {}, times=times).tolist() == [3]
    # upload order outranks a known edge: 5 -> 0 alone would put the root at 5
    assert best_roots(6, row, col, tree, k, rank, {0: (5,)}).tolist() == [5]
    assert best_roots(6, row, col, tree, k, rank, {0: (5,)}, times=times).tolist() == [3]


def test_storage_precision_directs_the_tree_below_every_other_evidence():
    """Tier 7 (an adapter exact at the finer end's dtype: the finer end descends) outranks tier 8
    (exact only up to the coarser rounding: the coarser end likely descends), and both outrank
    only the fallback order; a quantised leaf outranks both."""
    row, col = _chain(4)
    tree, k = _one_tree(4)
    rank = np.array([3, 2, 1, 0])  # the fallback order starts at 3
    pair = (np.array([1]), np.array([2]))
    assert best_roots(4, row, col, tree, k, rank, {}).tolist() == [3]
    assert best_roots(4, row, col, tree, k, rank, {}, likely=pair).tolist() == [1]
    assert best_roots(4, row, col, tree, k, rank, {}, proven=pair).tolist() == [1]
    # proven 2 -> 1 against likely 1 -> 2: the proof wins, and 3 is first among 2 and 3
    assert best_roots(4, row, col, tree, k, rank, {}, proven=(pair[1], pair[0]), likely=pair).tolist() == [3]
    to_leaf = (np.array([0]), np.array([1]))  # 0 proven the ancestor of 1, but 0 is quantised
    assert best_roots(4, row, col, tree, k, rank, {}, proven=to_leaf).tolist() == [0]
    leaves = np.array([True, False, False, False])
    assert best_roots(4, row, col, tree, k, rank, {}, leaves=leaves, proven=to_leaf).tolist() == [3]


def test_every_tree_of_a_forest_gets_its_own_root():
    # two chains 0-1-2 and 3-4-5-6
    row, col = np.array([0, 1, 3, 4, 5]), np.array([1, 2, 4, 5, 6])
    tree = np.array([0, 0, 0, 1, 1, 1, 1])
    rank = np.array([6, 5, 4, 3, 2, 1, 0])
    assert best_roots(7, row, col, tree, 2, rank, {}).tolist() == [2, 6]
    assert best_roots(7, row, col, tree, 2, rank, {6: (4,), 2: ()}).tolist() == [2, 4]


def _oriented(n, us, vs, root):
    """``node -> parent`` of the undirected tree with edges ``us[i] - vs[i]`` hung from ``root``."""
    adjacency = {i: [] for i in range(n)}
    for u, v in zip(us, vs):
        adjacency[u].append(v)
        adjacency[v].append(u)
    parent = {root: None}
    todo = [root]
    while todo:
        u = todo.pop()
        for v in adjacency[u]:
            if v not in parent:
                parent[v] = u
                todo.append(v)
    return parent


def _brute_force(n, row, col, rank, known, leaves, times, copies, proven=((), ()), likely=((), ())):
    """Each candidate root's tier scores by orienting the tree from it and checking each piece of
    evidence directly (ancestor tests), then the lexicographic best, ties to the lowest rank."""
    best = None
    for r in range(n):
        parent = _oriented(n, row.tolist(), col.tolist(), r)

        def ancestors(x, parent=parent):
            out = set()
            while parent[x] is not None:
                x = parent[x]
                out.add(x)
            return out

        tiers = (
            int(known.get(r) == ()),
            sum(1 for v, p in parent.items() if p is not None and times[p] < times[v]),
            sum(1 for c, ps in known.items() if len(ps) == 1 and ps[0] != c and ps[0] in ancestors(c)),
            *(sum(1 for e, (u, v) in enumerate(zip(row, col)) if (copies[e, k] > 0 and parent[u] == v)
                  or (copies[e, k] < 0 and parent[v] == u)) for k in (0, 1)),
            sum(1 for v, p in parent.items() if p is not None and leaves[v] and not leaves[p]),
            sum(1 for a, d in zip(*proven) if a in ancestors(d)),
            sum(1 for a, d in zip(*likely) if a in ancestors(d)),
        )
        key = (tuple(-t for t in tiers), rank[r])
        if best is None or key < best[0]:
            best = (key, r)
    return best[1]


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 25), st.integers(0, 10_000))
def test_rerooting_finds_the_root_a_brute_force_search_finds(n, seed):
    rng = np.random.default_rng(seed)
    # a random tree (each model joined to an earlier one), relabelled
    labels = rng.permutation(n)
    row = np.array([labels[rng.integers(0, i)] for i in range(1, n)], np.int64)
    col = labels[1:].astype(np.int64)
    rank = rng.permutation(n)
    leaves = rng.random(n) < 0.2
    times = np.where(rng.random(n) < 0.5, np.nan, rng.integers(0, 5, n).astype(float))  # ties too
    known = {}
    for c in range(n):  # known edges and roots: arbitrary, consistent or not
        u = rng.random()
        if u < 0.25:
            known[c] = (int(rng.integers(0, n)),)
        elif u < 0.3:
            known[c] = ()
        elif u < 0.35 and n > 2:
            known[c] = tuple(int(p) for p in rng.choice(n, 2, replace=False))
    known = {c: ps for c, ps in known.items() if c not in ps}
    copies = rng.integers(-1, 2, (len(row), 2))
    # ancestor pairs from the storage precision (tiers 7, 8): arbitrary pairs, consistent or not
    proven, likely = ([tuple(rng.choice(n, 2, replace=False)) for _ in range(int(rng.integers(0, n)))] if n > 1 else []
                      for _ in range(2))
    proven, likely = (tuple(np.array([p[i] for p in pairs], np.int64) for i in (0, 1)) for pairs in (proven, likely))
    got = best_roots(n, row, col, np.zeros(n, np.int64), 1, rank, known, leaves=leaves, times=times,
                     copies=copies, proven=proven, likely=likely)
    assert got.tolist() == [_brute_force(n, row, col, rank, known, leaves, times, copies, proven, likely)]


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 30), st.integers(0, 10_000), st.floats(0.05, 0.5))
def test_known_edges_of_the_true_lineage_are_all_kept(n, seed, share):
    """When the tree is the true lineage, the chosen root satisfies every known edge: each known
    parent is an ancestor of its child."""
    rng = np.random.default_rng(seed)
    parent = np.array([-1] + [int(rng.integers(0, i)) for i in range(1, n)])  # rooted at 0
    known = {c: (int(parent[c]),) for c in range(1, n) if rng.random() < share}
    rank = rng.permutation(n)
    root = best_roots(n, parent[1:], np.arange(1, n), np.zeros(n, np.int64), 1, rank, known)[0]
    up = _oriented(n, parent[1:].tolist(), list(range(1, n)), int(root))
    assert all(up[c] == ps[0] for c, ps in known.items())


def test_an_undated_chain_is_charted_from_the_root_a_deep_known_edge_points_to():
    """End to end: an undated lineage 0 -> 1 -> ... -> 9 whose kurtosis order starts at the wrong
    end (9); one known edge 7 -> 8 puts the root on 7's side, where the kurtosis order's first model
    is the true root 0, and every model gets its true parent."""
    from modelatlas.chart.estimator import get_method
    from modelatlas.chart.types import ChartInput, LayerBlock

    rng = np.random.default_rng(3)
    x = [rng.normal(size=256)]
    for _ in range(9):
        x.append(x[-1] + 0.05 * rng.normal(size=256))
    kurtosis = np.array([9.0, 2, 3, 4, 5, 6, 7, 1.5, 1.0, 10.0])[:, None]  # k(7) > k(8): specialisation
    models = ChartInput(ids=[f"m{i}" for i in range(10)], vectors=np.array(x),
                        layers=[LayerBlock("w", 0, 16, 16)], kurtosis=kurtosis)
    result = get_method("auto").chart(models, known_edges={8: (7,)})
    parents = result.parent_sets()
    assert 0 not in parents
    assert {c: sorted(ps) for c, ps in parents.items()} == {c: [c - 1] for c in range(1, 10)}


def _stored(v, dtype):
    return np.asarray(v, np.float64).astype(dtype).astype(np.float32)


@pytest.mark.parametrize("root_dtype, adapter_dtype", [(np.float16, np.float32), (np.float32, np.float16)])
def test_an_undated_adapter_pair_is_directed_by_its_storage_precision(root_dtype, adapter_dtype):
    """End to end, no times: a root, a full fine-tune of it and a LoRA child of it stored at
    another precision, whose kurtosis order starts at the LoRA child. A finer child is proven the
    descendant, a coarser one likely (rooting tiers 7, 8): either way the root is charted as the
    root and the adapter as its child."""
    from modelatlas.chart.estimator import get_method
    from modelatlas.chart.types import ChartInput, LayerBlock

    rng = np.random.default_rng(5)
    layers = [LayerBlock("a", 0, 24, 32), LayerBlock("b", 24 * 32, 24, 24)]
    dim = sum(b.size for b in layers)
    root = _stored(rng.normal(0, 0.1, dim), root_dtype)
    tuned = _stored(root + rng.normal(0, 0.01, dim), root_dtype)
    adapter = root.astype(np.float64)
    for b in layers:
        adapter[b.offset:b.offset + b.size] += (rng.normal(0, 0.05, (b.rows, 2)) @ rng.normal(0, 0.05, (2, b.cols))).ravel()
    adapter = _stored(adapter, adapter_dtype)
    kurtosis = np.array([2.0, 1.0, 9.0])[:, None]  # specialisation: the highest first, the adapter
    models = ChartInput(ids=["root", "tuned", "adapter"], vectors=np.stack([root, tuned, adapter]), layers=layers,
                        kurtosis=kurtosis)
    parents = get_method("auto").chart(models).parent_sets()
    assert 0 not in parents and parents[2] == {0} and parents[1] == {0}
    without = get_method("auto", rules=tuple(r for r in get_method("auto").RULES if r != "lora"))
    assert 2 not in without.chart(models).parent_sets()  # the kurtosis order alone roots the adapter
