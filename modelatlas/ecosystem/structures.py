"""Immediate-family structures of the fine-tune forest: exact counts by formula and uniform samplers.

Laufer et al., section 3 ("Sampling immediate family structures"), Table 1 and appendix 10: every
connected sub-structure of 2, 3 and 4 models of a tree is anchored at a node or an edge that meets a
condition, and each anchor takes part in a known number of copies (its *multiplicity*). Summing the
multiplicities counts the structures exactly without enumerating them (trillions in a vectorised
pass), and drawing an anchor with probability proportional to its multiplicity, then a copy
uniformly inside it, draws the structure uniformly.

With ``k(u)`` the number of children of ``u`` and ``u -> v`` an edge:

============  ==========================  ========================================  =====================
structure     shape                       anchor (sampling condition)               multiplicity
============  ==========================  ========================================  =====================
random_pair   two arbitrary models        the population                            C(N, 2) in all
edge          p -> c                      edge                                      1
siblings      p -> {a, b}                 node with more than one child             C(k(u), 2)
chain3        g -> p -> c                 edge u -> v, v has children               k(v)
star3         p -> {a, b, c}              node with more than two children          C(k(u), 3)
fork_below    g -> p -> {a, b}            edge u -> v, v has more than one child    C(k(v), 2)
uncle         p -> {u, b}, b -> c         edge u -> v, u has several children,      (k(u) - 1) k(v)
                                          v has children
chain4        a -> b -> c -> d            edge u -> v, u has a parent, v children   k(v)
============  ==========================  ========================================  =====================

:func:`count_parent_with_children` gives the general "parent with k children" count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelatlas.ecosystem.tree import FinetuneTree

#: Roles of the models in each structure, in the order a sample returns them.
STRUCTURES: dict[str, tuple[str, ...]] = {
    "random_pair": ("x", "y"),
    "edge": ("parent", "child"),
    "siblings": ("parent", "child_a", "child_b"),
    "chain3": ("grandparent", "parent", "child"),
    "star3": ("parent", "child_a", "child_b", "child_c"),
    "fork_below": ("grandparent", "parent", "child_a", "child_b"),
    "uncle": ("grandparent", "uncle", "parent", "child"),
    "chain4": ("great_grandparent", "grandparent", "parent", "child"),
}


@dataclass(frozen=True)
class Configuration:
    """One pair of roles inside one structure (a bar of the paper's Figure 7).

    ``generations`` is the generational gap of the pair and ``distance`` its network distance
    (edges on the undirected path); both are ``None`` for random pairs.
    """

    structure: str
    a: str
    b: str
    relation: str
    generations: int | None
    distance: int | None

    @property
    def name(self) -> str:
        return f"{self.structure}:{self.a}~{self.b}"


def _c(structure, a, b, relation, generations, distance):
    return Configuration(structure, a, b, relation, generations, distance)


#: The random baseline and the 24 within-family configurations: every pair of roles that differ
#: in kind, in every structure (symmetric roles such as two children of one star count once).
CONFIGURATIONS: tuple[Configuration, ...] = (
    _c("random_pair", "x", "y", "random", None, None),
    _c("edge", "parent", "child", "parent/child", 1, 1),
    _c("siblings", "parent", "child_a", "parent/child", 1, 1),
    _c("siblings", "child_a", "child_b", "siblings", 0, 2),
    _c("chain3", "grandparent", "parent", "parent/child", 1, 1),
    _c("chain3", "parent", "child", "parent/child", 1, 1),
    _c("chain3", "grandparent", "child", "grandparent/grandchild", 2, 2),
    _c("star3", "parent", "child_a", "parent/child", 1, 1),
    _c("star3", "child_a", "child_b", "siblings", 0, 2),
    _c("fork_below", "grandparent", "parent", "parent/child", 1, 1),
    _c("fork_below", "parent", "child_a", "parent/child", 1, 1),
    _c("fork_below", "grandparent", "child_a", "grandparent/grandchild", 2, 2),
    _c("fork_below", "child_a", "child_b", "siblings", 0, 2),
    _c("uncle", "grandparent", "uncle", "parent/child", 1, 1),
    _c("uncle", "grandparent", "parent", "parent/child", 1, 1),
    _c("uncle", "parent", "child", "parent/child", 1, 1),
    _c("uncle", "uncle", "parent", "siblings", 0, 2),
    _c("uncle", "grandparent", "child", "grandparent/grandchild", 2, 2),
    _c("uncle", "uncle", "child", "uncle/nephew", 1, 3),
    _c("chain4", "great_grandparent", "grandparent", "parent/child", 1, 1),
    _c("chain4", "grandparent", "parent", "parent/child", 1, 1),
    _c("chain4", "grandparent", "child", "grandparent/grandchild", 2, 2),
    _c("chain4", "great_grandparent", "parent", "grandparent/grandchild", 2, 2),
    _c("chain4", "great_grandparent", "child", "great-grandparent/great-grandchild", 3, 3),
    _c("chain4", "parent", "child", "parent/child", 1, 1),
)


def _choose(k: np.ndarray, r: int) -> np.ndarray:
    """C(k, r) elementwise for int64 ``k`` (exact; zero where k < r)."""
    k = np.asarray(k, dtype=np.int64)
    out = np.ones_like(k)
    for i in range(r):
        out = out * (k - i) // (i + 1)  # each partial product is a binomial, so the division is exact
    return np.where(k >= r, out, 0)


def _exact_sum(values: np.ndarray) -> int:
    """Exact integer sum: int64 when it cannot overflow, Python integers otherwise."""
    if values.size == 0:
        return 0
    if float(np.sum(values, dtype=np.float64)) < 2.0 ** 62:
        return int(np.sum(values, dtype=np.int64))
    return int(values.astype(object).sum())


def anchor_weights(tree: FinetuneTree, structure: str) -> tuple[str, np.ndarray]:
    """Multiplicity of every anchor of ``structure``.

    Returns
    -------
    (kind, weights): ``kind`` is ``"node"`` (weights indexed by node) or ``"edge"`` (indexed
    like :attr:`FinetuneTree.child`).
    """
    k = tree.out_degree
    u, v = tree.edge_parent, tree.child
    if structure == "edge":
        return "edge", np.ones(v.size, dtype=np.int64)
    if structure == "siblings":
        return "node", _choose(k, 2)
    if structure == "star3":
        return "node", _choose(k, 3)
    if structure == "chain3":
        return "edge", k[v]
    if structure == "fork_below":
        return "edge", _choose(k[v], 2)
    if structure == "uncle":
        return "edge", (k[u] - 1) * k[v]
    if structure == "chain4":
        return "edge", np.where(tree.parent[u] >= 0, k[v], 0)
    raise ValueError(f"unknown structure {structure!r}; known: {', '.join(STRUCTURES)}")


def count_structures(tree: FinetuneTree) -> dict[str, int]:
    """Exact number of copies of every structure of :data:`STRUCTURES` (Table 1).

    Returns
    -------
    dict structure -> count (Python ``int``, exact).
    """
    n_pop = int(tree.population.sum())
    counts = {"random_pair": n_pop * (n_pop - 1) // 2}
    for name in STRUCTURES:
        if name != "random_pair":
            counts[name] = _exact_sum(anchor_weights(tree, name)[1])
    return counts


def count_parent_with_children(tree: FinetuneTree, k: int) -> int:
    """Number of (parent, k-subset of its children) structures: the sum of C(k(u), k)."""
    return _exact_sum(_choose(tree.out_degree, k))


def _pick_distinct(rng: np.random.Generator, k: np.ndarray, r: int) -> list[np.ndarray]:
    """For each row, ``r`` distinct offsets uniformly drawn from ``range(k)``."""
    picks: list[np.ndarray] = []
    for i in range(r):
        x = (rng.random(k.size) * (k - i)).astype(np.int64)
        for prev in _sorted_columns(picks):
            x = x + (x >= prev)  # skip the offsets already taken, smallest first
        picks.append(x)
    return picks


def _sorted_columns(cols: list[np.ndarray]) -> list[np.ndarray]:
    """Row-wise sorted copies of the given columns."""
    if not cols:
        return []
    return list(np.sort(np.stack(cols, axis=1), axis=1).T)


def _weighted(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    cum = np.cumsum(weights.astype(np.float64))
    return np.searchsorted(cum, rng.random(size) * cum[-1], side="right")


def sample_structure(tree: FinetuneTree, structure: str, size: int,
                     rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Draw ``size`` copies of ``structure`` uniformly among all its copies in ``tree``.

    Returns
    -------
    int64 array ``(size, len(STRUCTURES[structure]))`` of node indices in role order, or an
    empty ``(0, r)`` array when the tree holds no copy.
    """
    rng = np.random.default_rng(rng)
    roles = len(STRUCTURES.get(structure, ()))
    if structure == "random_pair":
        pop = np.flatnonzero(tree.population)
        if pop.size < 2:
            return np.zeros((0, 2), np.int64)
        a, b = _pick_distinct(rng, np.full(size, pop.size), 2)
        return np.stack([pop[a], pop[b]], axis=1)
    kind, weights = anchor_weights(tree, structure)
    if weights.size == 0 or weights.sum() == 0:
        return np.zeros((0, roles), np.int64)
    anchor = _weighted(rng, weights, size)
    ptr, kids, k = tree.child_ptr, tree.child, tree.out_degree

    def children_of(nodes, offsets):
        return kids[ptr[nodes] + offsets]

    if kind == "node":
        u = anchor
        offs = _pick_distinct(rng, k[u], roles - 1)
        return np.stack([u] + [children_of(u, o) for o in offs], axis=1)
    u, v = tree.edge_parent[anchor], tree.child[anchor]
    if structure == "edge":
        return np.stack([u, v], axis=1)
    if structure == "chain3":
        return np.stack([u, v, children_of(v, _pick_distinct(rng, k[v], 1)[0])], axis=1)
    if structure == "fork_below":
        a, b = _pick_distinct(rng, k[v], 2)
        return np.stack([u, v, children_of(v, a), children_of(v, b)], axis=1)
    if structure == "uncle":
        # v's position among u's children, then a different child of u: the uncle
        pos = anchor - ptr[u]
        other = (rng.random(size) * (k[u] - 1)).astype(np.int64)
        other = other + (other >= pos)
        return np.stack([u, children_of(u, other), v, children_of(v, _pick_distinct(rng, k[v], 1)[0])], axis=1)
    if structure == "chain4":
        return np.stack([tree.parent[u], u, v, children_of(v, _pick_distinct(rng, k[v], 1)[0])], axis=1)
    raise ValueError(f"unknown structure {structure!r}")


def sample_configurations(tree: FinetuneTree, size: int, rng=None,
                          configurations=CONFIGURATIONS) -> dict[str, np.ndarray]:
    """For each configuration, ``size`` node pairs (``(m, 2)`` arrays) drawn uniformly.

    Each configuration draws its own copies of its structure, so that the pairs of different
    configurations are independent samples.
    """
    rng = np.random.default_rng(rng)
    out = {}
    for conf in configurations:
        sample = sample_structure(tree, conf.structure, size, rng)
        roles = STRUCTURES[conf.structure]
        out[conf.name] = sample[:, [roles.index(conf.a), roles.index(conf.b)]]
    return out
