"""Minimum spanning arborescence (Chu-Liu-Edmonds) on sparse edge lists.

The Tarjan (1977) / Gabow-Galil-Spencer-Tarjan (1986) formulation of Chu-Liu-Edmonds: each node
keeps its incoming edges in a meldable skew heap whose keys carry a lazy offset (the reduced
costs), contracted cycles are tracked with a union-find that can be rolled back, and the final
parents are read back by undoing the contractions in reverse order. Time O(E log E), memory O(E).

networkx's implementation (the one MoTHer's public code uses) is the test oracle on small graphs;
it does not scale past a few hundred dense nodes (ENGINEERING-NOTES.md).

References
----------
Y.-J. Chu and T.-H. Liu, "On the shortest arborescence of a directed graph", 1965.
J. Edmonds, "Optimum branchings", 1967.
R. E. Tarjan, "Finding optimum branchings", Networks 7, 1977.
H. N. Gabow, Z. Galil, T. Spencer, R. E. Tarjan, Combinatorica 6(2), 1986.
"""

from __future__ import annotations

import numpy as np

from modelatlas.errors import InputError


class _SkewHeaps:
    """A forest of skew heaps over edge indices, keyed by reduced cost with lazy offsets."""

    def __init__(self, keys: np.ndarray):
        self.key = keys.astype(float).tolist()
        m = len(self.key)
        self.lazy = [0.0] * m
        self.left = [-1] * m
        self.right = [-1] * m

    def _push(self, x: int) -> None:
        d = self.lazy[x]
        if d:
            self.key[x] += d
            if self.left[x] >= 0:
                self.lazy[self.left[x]] += d
            if self.right[x] >= 0:
                self.lazy[self.right[x]] += d
            self.lazy[x] = 0.0

    def merge(self, a: int, b: int) -> int:
        if a < 0:
            return b
        if b < 0:
            return a
        key, left, right, push = self.key, self.left, self.right, self._push
        spine = []
        while a >= 0 and b >= 0:
            push(a)
            push(b)
            if key[a] > key[b]:
                a, b = b, a
            spine.append(a)
            a = right[a]
        rest = a if a >= 0 else b
        for node in reversed(spine):
            right[node] = left[node]
            left[node] = rest
            rest = node
        return rest

    def top(self, h: int) -> tuple[int, float]:
        self._push(h)
        return h, self.key[h]

    def pop(self, h: int) -> int:
        self._push(h)
        return self.merge(self.left[h], self.right[h])


class _RollbackUnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))
        self.size = [1] * n
        self.history: list[tuple[int, int]] = []

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        a, b = self.find(a), self.find(b)
        if a == b:
            return False
        if self.size[a] < self.size[b]:
            a, b = b, a
        self.parent[b] = a
        self.size[a] += self.size[b]
        self.history.append((a, b))
        return True

    def rollback(self, t: int) -> None:
        while len(self.history) > t:
            a, b = self.history.pop()
            self.parent[b] = b
            self.size[a] -= self.size[b]


def minimum_arborescence(n: int, source: np.ndarray, target: np.ndarray, weight: np.ndarray,
                         root: int) -> np.ndarray:
    """Minimum spanning arborescence rooted at ``root``.

    Parameters
    ----------
    n:
        Number of nodes, ``0 .. n-1``.
    source, target, weight:
        Directed edges ``source -> target`` with their costs (parallel edges allowed; edges into
        ``root`` and self-loops are ignored).
    root:
        The root.

    Returns
    -------
    numpy.ndarray
        ``parent[v]`` for every node (``-1`` for the root).

    Raises
    ------
    InputError
        When some node cannot be reached from the root.
    """
    source = np.asarray(source, dtype=np.int64)
    target = np.asarray(target, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    keep = (target != root) & (source != target)
    source, target, weight = source[keep], target[keep], weight[keep]
    if not np.all(np.isfinite(weight)):
        raise InputError("arborescence edge costs must be finite", where="weight")
    heaps = _SkewHeaps(weight)
    head = [-1] * n
    order = np.argsort(target, kind="stable")
    for e in order.tolist():  # one heap per node, built by melding single edges
        t = int(target[e])
        head[t] = heaps.merge(head[t], e)
    src = source.tolist()
    dst = target.tolist()
    uf = _RollbackUnionFind(n)
    seen = [-1] * n
    seen[root] = root
    chosen_in = [-1] * n
    cycles: list[tuple[int, int, list[int]]] = []
    for s in range(n):
        u = s
        queue: list[int] = []
        path: list[int] = []
        while seen[u] < 0:
            h = head[u]
            if h < 0:
                raise InputError(f"node {u} cannot be reached from root {root}", where="arborescence")
            e, w = heaps.top(h)
            heaps.lazy[h] -= w
            head[u] = heaps.pop(h)
            queue.append(e)
            path.append(u)
            seen[u] = s
            u = uf.find(src[e])
            if seen[u] == s:  # a cycle: contract it into one node
                cyc = -1
                end = len(queue)
                stamp = len(uf.history)
                while True:
                    w_node = path.pop()
                    cyc = heaps.merge(cyc, head[w_node])
                    if not uf.union(u, w_node):
                        break
                start = len(path)
                u = uf.find(u)
                head[u] = cyc
                seen[u] = -1
                cycles.append((u, stamp, queue[start:end]))
                del queue[start:]
        for e in queue:
            chosen_in[uf.find(dst[e])] = e
    for u, stamp, comp in reversed(cycles):  # expand contractions, most recent first
        uf.rollback(stamp)
        in_edge = chosen_in[u]
        for e in comp:
            chosen_in[uf.find(dst[e])] = e
        chosen_in[uf.find(dst[in_edge])] = in_edge
    parent = np.full(n, -1, dtype=np.int64)
    for v in range(n):
        if v != root:
            parent[v] = src[chosen_in[v]]
    return parent


def minimum_branching_forest(n: int, source: np.ndarray, target: np.ndarray, weight: np.ndarray,
                             root_cost: float | np.ndarray) -> np.ndarray:
    """Minimum spanning forest of arborescences, where starting a tree at ``v`` costs ``root_cost``.

    A virtual super-root joined to every node with cost ``root_cost`` turns the forest into one
    arborescence. With ``root_cost`` larger than the sum of all edge costs, exactly one real root
    is chosen whenever the graph allows it (MoTHer's single tree per cluster).

    Returns
    -------
    numpy.ndarray
        ``parent[v]``, ``-1`` for roots.
    """
    rc = np.broadcast_to(np.asarray(root_cost, dtype=np.float64), (n,))
    s = np.concatenate([np.asarray(source, np.int64), np.full(n, n, np.int64)])
    t = np.concatenate([np.asarray(target, np.int64), np.arange(n, dtype=np.int64)])
    w = np.concatenate([np.asarray(weight, np.float64), rc])
    parent = minimum_arborescence(n + 1, s, t, w, root=n)[:n]
    parent[parent == n] = -1
    return parent


def dense_to_edges(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge arrays (``cost[i, j]`` is the cost of ``i -> j``) for every finite off-diagonal entry."""
    n = len(cost)
    i, j = np.nonzero(np.isfinite(cost) & ~np.eye(n, dtype=bool))
    return i, j, cost[i, j]
