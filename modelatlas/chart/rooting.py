"""The root of an undirected lineage tree: the model whose implied directions the evidence agrees with most.

Without upload times, ``auto`` knows a lineage's undirected shape (the fingerprints' minimum
spanning forest, :mod:`modelatlas.chart.tree_order`) but not which end of each edge is the parent.
Choosing a tree's root directs every edge (away from the root), so the root *is* the direction
decision for the whole tree. Instead of the tree's first model in one score's order (MoTHer's
kurtosis), every model is scored as a candidate root by how much of the evidence along the tree
its directions agree with, and the best is taken; the scores of all candidate roots of a tree take
one pass over its edges (rerooting: moving the root across an edge reverses that edge only).

The evidence comes in tiers compared lexicographically (a lower tier only breaks the ties of the
ones above, so no weight of one kind of evidence against another has to be chosen):

1. **known roots** (the stem's ``()`` entries): the root itself;
2. **upload order**, when only some models are dated: tree edges between two dated models point
   from the earlier to the later. With every model dated ``auto`` charts in upload order and
   known edges only move a child after its parent; with some dated, the dated models keep that
   role (measured: putting the known edges first instead cost 0.5 points on the partly dated
   `recurrent` zoos, docs/BENCHMARKS.md);
3. **known edges**: a known single-parent edge ``p -> c`` says that ``p`` is an ancestor of ``c``:
   if the tree's path from ``p`` to ``c`` is their lineage, the root lies on ``p``'s side of the
   path's first edge (then every edge of the path points from ``p`` towards ``c``), whether or not
   the two are adjacent in the tree. Edges far apart in the tree are what makes this strong: one
   known edge deep in a tree rules out every root beyond its parent's side. A merge's parents are
   skipped: their paths to the merge run through each other's branches, not through its lineage.
   Where the tree is wrong (a child nearer its grandparent than its parent sits between them) a
   known edge can point the wrong way; the root then satisfies as many known edges as any root can;
4. **copies**: a layer two neighbouring models hold identically, one at more significant bits
   than the other (an fp32 parent's layer and its bf16 child's rounding of it), was copied from
   the finer one: a copy never gains precision (:func:`~modelatlas.chart.frozen.copy_directions`),
   so the edge points from the finer holder to the coarser one;
5. **native copies**: a model that holds such a layer at fewer bits than its own dtype's copied
   it; a neighbour that holds it at its own dtype's precision is its likeliest source (weaker:
   the source may be another model);
6. **leaves**: a quantised model is never a parent (Model Atlas, Algorithm 1, excludes quantised
   models as candidates), so its tree edges point into it;
7. **precision**: two models stored at different precisions whose difference is an adapter update
   exact up to the *finer* dtype's rounding: the finer one descends from the coarser one
   (:mod:`modelatlas.chart.low_rank`: a coarse descendant would carry its own rounding on every
   adapted entry);
8. **rounding**: a difference that is an adapter update only up to the *coarser* dtype's rounding:
   most likely the coarser one was made from the finer one and rounded last. A child made from
   its parent's stored weights shows exactly that; the finer end can descend from the coarser one
   only through weights that were never stored (the unrounded master of a coarse release) or by a
   full fine-tune small enough to hide under the coarse rounding — so this tier only breaks the
   ties of all the others.

The last ties fall to the fallback rank: the kurtosis order of the training stage the stem shows
(MoTHer), or upload order among dated models when only some are dated.

References
----------
Horwitz et al., "Unsupervised Model Tree Heritage Recovery" (MoTHer, ICLR 2025), Sec. 4–5: a
minimum spanning structure over weight distances, kurtosis for direction.
Horwitz et al., "Charting and Navigating Hugging Face's Model Atlas" (2025), Algorithm 1: quantised
models are never parents. docs/chart.md, "Without usable times".
"""

from __future__ import annotations

import numpy as np

#: Tiers of evidence, compared in this order.
TIERS = ("known_root", "time", "known_edge", "copy", "native_copy", "leaf", "precision", "rounding")


def best_roots(n: int, row: np.ndarray, col: np.ndarray, tree: np.ndarray, n_trees: int, rank: np.ndarray,
               known: dict[int, tuple[int, ...]], *, leaves: np.ndarray | None = None,
               times: np.ndarray | None = None, copies: np.ndarray | None = None,
               proven: tuple[np.ndarray, np.ndarray] | None = None,
               likely: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The root of each tree of a forest: the model whose implied edge directions agree best with
    the evidence (the tiers of the module docstring), ties to the lowest ``rank``.

    Parameters
    ----------
    n:
        Number of models.
    row, col:
        The forest's undirected edges (each once).
    tree:
        Each model's tree, ``0 .. n_trees - 1`` (as
        :func:`scipy.sparse.csgraph.connected_components` labels them).
    n_trees:
        Number of trees.
    rank:
        Each model's place in the fallback order (parents first).
    known:
        Known parents (``child -> parents``; ``()`` marks a known root).
    leaves:
        Boolean mask of the models that are never parents (quantised).
    times:
        Upload times, ``NaN`` where unknown (only some models dated: the partly timed order).
    copies:
        Per edge, the directions a layer copied between its ends shows
        (:func:`~modelatlas.chart.frozen.copy_directions` of ``row, col``, two columns: ``+1``
        ``col`` is the parent, ``-1`` ``row`` is, ``0`` no evidence).
    proven, likely:
        ``(ancestors, descendants)``: pairs of models that the storage precision of an adapter-shaped
        difference proves to be in that order, or makes likely (tiers 7 and 8).

    Returns
    -------
    numpy.ndarray
        ``n_trees`` model indices, the root of each tree.
    """
    row, col = np.asarray(row, np.int64), np.asarray(col, np.int64)
    tree, rank = np.asarray(tree), np.asarray(rank)
    tiers = len(TIERS)
    # gain[e] of directing edge e as row[e] -> col[e], back[e] of col[e] -> row[e], per tier
    gain = np.zeros((len(row), tiers))
    back = np.zeros((len(row), tiers))
    node = np.zeros((n, tiers))
    for c, ps in known.items():
        if ps == ():
            node[c, 0] += 1.0
    if leaves is not None:
        leaf = np.asarray(leaves, bool)
        gain[:, 5] += leaf[col] & ~leaf[row]
        back[:, 5] += leaf[row] & ~leaf[col]
    if copies is not None:
        c = np.asarray(copies).reshape(len(row), 2)
        gain[:, 3:5] += c < 0
        back[:, 3:5] += c > 0

    if times is not None:
        t = np.asarray(times, np.float64)
        later = np.nan_to_num(np.sign(t[col] - t[row]))  # +1: row is the earlier; 0: a time unknown or equal
        gain[:, 1] += later > 0
        back[:, 1] += later < 0

    # One depth-first walk per tree from its lowest-rank model: parents, the edge up, entry and
    # exit times (whether one model lies below another), and a preorder.
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for e, (u, v) in enumerate(zip(row.tolist(), col.tolist())):
        adjacency[u].append((v, e))
        adjacency[v].append((u, e))
    parent = np.full(n, -1, np.int64)
    up_edge = np.full(n, -1, np.int64)
    t_in = np.zeros(n, np.int64)
    t_out = np.zeros(n, np.int64)
    start = np.full(n_trees, -1, np.int64)
    for i in np.argsort(rank, kind="stable").tolist():
        if start[tree[i]] < 0:
            start[tree[i]] = i
    preorder: list[int] = []
    clock = 0
    for s in start.tolist():
        t_in[s] = clock
        clock += 1
        preorder.append(s)
        stack = [(s, 0)]
        while stack:
            u, k = stack[-1]
            if k == len(adjacency[u]):
                t_out[u] = clock
                stack.pop()
                continue
            stack[-1] = (u, k + 1)
            v, e = adjacency[u][k]
            if v == parent[u]:
                continue
            parent[v], up_edge[v] = u, e
            t_in[v] = clock
            clock += 1
            preorder.append(v)
            stack.append((v, 0))
    children: dict[int, list[int]] = {}
    for v in preorder:
        if parent[v] >= 0:
            children.setdefault(int(parent[v]), []).append(v)  # in preorder: increasing t_in

    def credit(p: int, c: int, tier: int) -> None:
        """``p`` is an ancestor of ``c``: credit directing the first edge of the path from ``p`` to
        ``c`` away from ``p``."""
        if p == c or tree[p] != tree[c]:
            return
        if t_in[p] <= t_in[c] and t_out[c] <= t_out[p]:  # c below p: the child of p above c
            kids = children[p]
            e = int(up_edge[kids[int(np.searchsorted(t_in[kids], t_in[c], side="right")) - 1]])
        else:  # towards c is up
            e = int(up_edge[p])
        (gain if row[e] == p else back)[e, tier] += 1.0

    for c, ps in known.items():
        if len(ps) == 1:
            credit(ps[0], c, 2)
    for tier, pairs in ((6, proven), (7, likely)):
        if pairs is not None:
            for p, c in zip(np.asarray(pairs[0]).tolist(), np.asarray(pairs[1]).tolist()):
                credit(p, c, tier)

    # The walk's start as root directs every edge parent -> child; moving the root from u to its
    # child v reverses the edge u - v only.
    def downward(v: int) -> np.ndarray:
        e = int(up_edge[v])
        return gain[e] if row[e] == parent[v] else back[e]

    def upward(v: int) -> np.ndarray:
        e = int(up_edge[v])
        return back[e] if row[e] == parent[v] else gain[e]

    base = np.zeros((n_trees, tiers))
    for v in preorder:
        if parent[v] >= 0:
            base[tree[v]] += downward(v)
    score = np.zeros((n, tiers))
    for v in preorder:
        score[v] = base[tree[v]] if parent[v] < 0 else score[parent[v]] - downward(v) + upward(v)
    score += node
    # per tree, the lexicographic maximum over the tiers, then the lowest rank (tiers are counts:
    # sums of small integers, exact in floating point)
    keys = [rank] + [-score[:, t] for t in reversed(range(tiers))] + [tree]
    roots = np.full(n_trees, -1, np.int64)
    for i in np.lexsort(keys).tolist():
        if roots[tree[i]] < 0:
            roots[tree[i]] = i
    return roots
