"""Processing order without upload times: breadth-first over a minimum spanning forest.

``auto`` decides each model from the models decided before it, so without upload times it needs
another order in which parents come first. Ordering all models by MoTHer's kurtosis score asks the
score to be right for every parent-child pair, and on our zoos it is not (a fine-tune's kurtosis is
often above its parent's). Here it only has to pick one model per tree: fingerprints are joined by
a minimum spanning forest (the undirected shape of a lineage: a model is closest to its parent or
its children), edges between unrelated models (neuron alignment, :mod:`modelatlas.chart.alignment`)
are cut, and each
tree is walked breadth-first from its root: the model whose implied directions agree best with the
known roots, the upload order of dated models (when some are), the known edges, layers copied
between models of different storage dtypes and the quantised leaves, ties to the first in kurtosis order
(:mod:`modelatlas.chart.rooting`). When the forest has the shape of the true lineage and the root
is right, every parent precedes its children.

References
----------
Horwitz et al., "Unsupervised Model Tree Heritage Recovery" (MoTHer, ICLR 2025), Sec. 4 (minimum
spanning structure over weight distances, kurtosis for direction).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import (
    breadth_first_order,
    connected_components,
    minimum_spanning_tree,
)

from modelatlas.chart.neighbors import hnsw_index
from modelatlas.chart.rooting import best_roots

#: Neighbours per model in the graph the forest is taken from, beyond ``exact_up_to`` models.
NEIGHBOURS = 10


def _neighbour_graph(vectors: np.ndarray, exact_up_to: int) -> coo_matrix:
    """Squared-distance edges: all pairs up to ``exact_up_to`` models, else each model's nearest
    ``NEIGHBOURS`` (HNSW). Squared distances give the same spanning tree as distances."""
    x = np.asarray(vectors, np.float64)
    n = len(x)
    if n <= exact_up_to:
        sq = (x * x).sum(1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
        rows, cols = np.triu_indices(n, 1)
        weights = d2[rows, cols]
    else:
        index = hnsw_index(x.shape[1], n)
        index.add_items(x.astype(np.float32), np.arange(n))
        k = min(NEIGHBOURS + 1, n)
        labels, d2 = index.query(x.astype(np.float32), k=k, query_ef=max(2 * k, 50))
        rows, cols, weights = np.repeat(np.arange(n), k), labels.reshape(-1).astype(np.int64), d2.reshape(-1).astype(np.float64)
        keep = rows != cols
        rows, cols, weights = rows[keep], cols[keep], weights[keep]
    # Identical fingerprints are 0 apart, and a sparse matrix would drop a 0 weight as "no edge".
    return coo_matrix((weights + 1e-12, (rows, cols)), shape=(n, n))


def spanning_tree_order(vectors: np.ndarray, rank: np.ndarray, known: dict[int, tuple[int, ...]], *,
                        related: Callable[[np.ndarray, np.ndarray], np.ndarray],
                        exact_up_to: int = 1000, with_predecessors: bool = False,
                        leaves: np.ndarray | None = None, times: np.ndarray | None = None,
                        copied: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                        ancestry: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None):
    """Every model once, parents first as far as the fingerprints' spanning forest shows.

    Parameters
    ----------
    vectors:
        Fingerprints, one row per model.
    rank:
        Each model's position in the fallback order (kurtosis, parents first): it picks a tree's
        root among those the evidence ties (:func:`~modelatlas.chart.rooting.best_roots`), and the
        order of siblings.
    known:
        Known parents (``child -> parents``; ``()`` marks a known root).
    related:
        ``related(a, b)``: for arrays of model indices, whether each pair ``a[i], b[i]`` is related
        (``auto``'s root rule); forest edges between unrelated models are cut.
    exact_up_to:
        All pairs up to this many models, nearest neighbours beyond.
    with_predecessors:
        Also return, per model, the model the walk reached it from (``-1`` for a tree's root).
    leaves:
        Boolean mask of the models that are never parents (quantised): evidence for the roots.
    times:
        Upload times, ``NaN`` where unknown: with some known, evidence for the roots.
    copied:
        ``copied(a, b)``: for arrays of model indices, the direction a layer copied between
        ``a[i]`` and ``b[i]`` shows (:func:`~modelatlas.chart.frozen.copy_directions`): evidence
        for the roots.
    ancestry:
        ``ancestry(a, b) -> (proven, likely)``: for the forest's edges, ``1`` where the storage
        precision of an adapter-shaped difference proves (makes likely) ``a[i]`` an ancestor of
        ``b[i]``, ``-1`` the reverse, ``0`` neither: evidence for the roots.

    Returns
    -------
    numpy.ndarray
        A permutation of ``range(len(vectors))`` (and the predecessors, when asked).
    """
    n = len(vectors)
    if n < 2:
        return (np.arange(n), np.full(n, -1, np.int64)) if with_predecessors else np.arange(n)
    forest = minimum_spanning_tree(_neighbour_graph(vectors, exact_up_to)).tocoo()
    keep = np.asarray(related(forest.row.astype(np.int64), forest.col.astype(np.int64)), bool)
    row, col = forest.row[keep], forest.col[keep]
    adjacency = coo_matrix((np.ones(row.size), (row, col)), shape=(n, n)).tocsr()
    adjacency = adjacency + adjacency.T
    n_trees, tree = connected_components(adjacency, directed=False)
    copies = None if copied is None else copied(row.astype(np.int64), col.astype(np.int64))
    proven = likely = None
    if ancestry is not None and len(row):
        proven, likely = ((np.where(way > 0, row, col)[way != 0], np.where(way > 0, col, row)[way != 0])
                          for way in map(np.asarray, ancestry(row.astype(np.int64), col.astype(np.int64))))
    top = best_roots(n, row, col, tree, n_trees, rank, known, leaves=leaves, times=times, copies=copies,
                     proven=proven, likely=likely)
    # Breadth-first from each root, neighbours visited by rank: relabel rows so that the traversal,
    # which follows index order, follows rank order.
    by_rank = np.argsort(rank, kind="stable")
    position = np.empty(n, np.int64)
    position[by_rank] = np.arange(n)
    permuted = adjacency[by_rank][:, by_rank].tocsr().sorted_indices()
    out, reached_from = [], np.full(n, -1, np.int64)
    for t in np.argsort(position[top], kind="stable").tolist():
        visit, pred = breadth_first_order(permuted, int(position[top[t]]), directed=False, return_predecessors=True)
        out.append(by_rank[visit])
        inner = visit[pred[visit] >= 0]
        reached_from[by_rank[inner]] = by_rank[pred[inner]]
    return (np.concatenate(out), reached_from) if with_predecessors else np.concatenate(out)


def partly_timed_order(vectors: np.ndarray, created_at: np.ndarray, known: dict[int, tuple[int, ...]], *,
                       related: Callable[[np.ndarray, np.ndarray], np.ndarray],
                       exact_up_to: int = 1000, leaves: np.ndarray | None = None,
                       copied: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                       ancestry: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
                       ) -> np.ndarray:
    """Upload order when only some upload times are known.

    Models with a time keep their upload order. A model without one is placed right after the
    model the spanning forest reaches it from (walked from each tree's root: the model whose
    directions agree with the most edges between dated models, then with the known edges,
    :func:`~modelatlas.chart.rooting.best_roots`; ties to the earliest dated model), so it
    is decided after its likeliest parent instead of after every dated model; a tree with no date
    at all comes last, in its own breadth-first order.
    """
    t = np.asarray(created_at, np.float64)
    dated = np.isfinite(t)
    rank = np.empty(len(t), np.int64)
    rank[np.lexsort((np.arange(len(t)), np.where(dated, t, np.inf)))] = np.arange(len(t))
    walk, reached_from = spanning_tree_order(vectors, rank, known, related=related, exact_up_to=exact_up_to,
                                             with_predecessors=True, leaves=leaves, times=t, copied=copied,
                                             ancestry=ancestry)
    after: dict[int, list[int]] = {}
    loose = []
    for i in walk.tolist():
        if dated[i]:
            continue
        if reached_from[i] >= 0:
            after.setdefault(int(reached_from[i]), []).append(i)
        else:
            loose.append(i)
    out: list[int] = []

    def emit(i: int) -> None:
        stack = [i]
        while stack:
            j = stack.pop()
            out.append(j)
            stack.extend(reversed(after.pop(j, [])))

    for i in np.argsort(np.where(dated, t, np.inf), kind="stable").tolist():
        if dated[i]:
            emit(i)
    for i in loose:
        emit(i)
    for rest in list(after.values()):  # only under a cycle of predecessors, which a forest has not
        out.extend(rest)
    return np.asarray(out, np.int64)


def known_parents_first(order: np.ndarray, known: dict[int, tuple[int, ...]]) -> np.ndarray:
    """``order`` with each model moved, if need be, to just after the last of its known parents
    (a model is decided from models decided before it, its known parents included)."""
    placed: set[int] = set()
    waiting: dict[int, list[int]] = {}
    out: list[int] = []

    def place(i: int) -> None:
        todo = [i]
        while todo:
            j = todo.pop()
            missing = next((p for p in known.get(j, ()) if p not in placed), None)
            if missing is not None:
                waiting.setdefault(missing, []).append(j)
                continue
            out.append(j)
            placed.add(j)
            todo.extend(reversed(waiting.pop(j, [])))

    for i in np.asarray(order).tolist():
        place(int(i))
    out += [j for j in np.asarray(order).tolist() if j not in placed]  # only if known edges had a cycle
    return np.asarray(out, dtype=np.int64)
