"""Our Chu-Liu-Edmonds against networkx (the oracle) on random graphs."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.chart.arborescence import dense_to_edges, minimum_arborescence, minimum_branching_forest
from modelatlas.errors import InputError


def _cost(parent, cost):
    return sum(cost[parent[v], v] for v in range(len(parent)) if parent[v] >= 0)


def _is_arborescence(parent):
    n = len(parent)
    for v in range(n):  # every node reaches a root without repeating
        seen, u = set(), v
        while parent[u] >= 0:
            assert u not in seen
            seen.add(u)
            u = parent[u]
    return True


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 9), seed=st.integers(0, 10_000), integer=st.booleans())
def test_dense_matches_networkx(n, seed, integer):
    rng = np.random.default_rng(seed)
    cost = rng.integers(1, 6, (n, n)).astype(float) if integer else rng.random((n, n))
    s, t, w = dense_to_edges(cost)
    parent = minimum_branching_forest(n, s, t, w, root_cost=float(w.sum()) + 1)
    assert (parent == -1).sum() == 1 and _is_arborescence(parent)
    g = nx.DiGraph()
    g.add_weighted_edges_from(zip(s.tolist(), t.tolist(), w.tolist()))
    ref = nx.minimum_spanning_arborescence(g)
    assert _cost(parent, cost) == pytest.approx(sum(d["weight"] for *_, d in ref.edges(data=True)))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 25), k=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_sparse_rooted_matches_networkx(n, k, seed):
    rng = np.random.default_rng(seed)
    s = np.concatenate([np.zeros(n - 1, int), rng.integers(0, n, n * k)])
    t = np.concatenate([np.arange(1, n), rng.integers(0, n, n * k)])
    w = np.concatenate([np.full(n - 1, 50.0), rng.random(n * k)])
    parent = minimum_arborescence(n, s, t, w, root=0)
    assert parent[0] == -1 and _is_arborescence(parent)
    g = nx.MultiDiGraph()
    for a, b, c in zip(s.tolist(), t.tolist(), w.tolist()):
        if b != 0 and a != b:
            g.add_edge(a, b, weight=c)
    simple = nx.DiGraph()  # keep the cheapest parallel edge, as ours does implicitly
    for a, b, d in g.edges(data=True):
        if not simple.has_edge(a, b) or simple[a][b]["weight"] > d["weight"]:
            simple.add_edge(a, b, weight=d["weight"])
    ref = nx.minimum_spanning_arborescence(simple)
    best = {(a, b): d["weight"] for a, b, d in simple.edges(data=True)}
    mine = sum(best[(int(parent[v]), v)] for v in range(1, n))
    assert mine == pytest.approx(sum(d["weight"] for *_, d in ref.edges(data=True)))


def test_known_tree_and_forest():
    # 0 -> 1 -> 2 cheap, 3 far from everything: with a moderate root cost 3 starts its own tree
    cost = np.full((4, 4), 10.0)
    cost[0, 1] = cost[1, 2] = 1.0
    s, t, w = dense_to_edges(cost)
    parent = minimum_branching_forest(4, s, t, w, root_cost=5.0)
    assert parent.tolist() == [-1, 0, 1, -1]


def test_unreachable_node_is_reported():
    with pytest.raises(InputError, match="cannot be reached"):
        minimum_arborescence(3, np.array([0]), np.array([1]), np.array([1.0]), root=0)
