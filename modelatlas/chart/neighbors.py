"""Growing nearest-neighbour index over fingerprints: exact while small, HNSW beyond.

Models are added one at a time in the order they are charted, so a query only ever sees the
models added before it — the same answer whether models arrive one by one (online) or all at
once. The HNSW library is voyager (an hnswlib descendant with wheels for every platform; measured
side by side with hnswlib and usearch in docs/BENCHMARKS.md), run single-threaded with a fixed
seed, so insertion is deterministic.
"""

from __future__ import annotations

import numpy as np


def hnsw_index(dim: int, capacity: int, *, M: int = 16, ef_construction: int = 200):
    """An empty HNSW index over ``dim``-vectors (Euclidean; queries return squared distances),
    seeded so that single-threaded insertion builds the same graph every time. It grows past
    ``capacity`` by itself.

    References
    ----------
    Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
    Hierarchical Navigable Small World graphs" (2018), the algorithm behind every index here.
    """
    from voyager import Index, Space

    return Index(Space.Euclidean, num_dimensions=dim, M=M, ef_construction=ef_construction, random_seed=0,
                 max_elements=max(capacity, 1))


class GrowingIndex:
    """Nearest earlier models.

    Parameters
    ----------
    dim:
        Vector length.
    exact_up_to:
        Brute-force search while the index holds at most this many vectors; switch to HNSW after.
    capacity:
        Initial HNSW capacity (grows as needed).
    ef, M:
        HNSW search breadth and graph degree.
    """

    def __init__(self, dim: int, *, exact_up_to: int = 1000, capacity: int = 1024, ef: int = 100,
                 M: int = 16):
        self.dim = dim
        self.exact_up_to = exact_up_to
        self.ef = ef
        self.M = M
        self._vecs = np.zeros((capacity, dim), np.float32)
        self._sq = np.zeros(capacity, np.float64)
        self._labels: list[int] = []
        self._hnsw = None

    def __len__(self) -> int:
        return len(self._labels)

    def add(self, label: int, vector: np.ndarray) -> None:
        n = len(self._labels)
        if n == len(self._vecs):
            grow = max(1024, n)
            self._vecs = np.vstack([self._vecs, np.zeros((grow, self.dim), np.float32)])
            self._sq = np.concatenate([self._sq, np.zeros(grow)])
        v = np.asarray(vector, np.float32)
        self._vecs[n] = v
        self._sq[n] = float(v.astype(np.float64) @ v)
        self._labels.append(label)
        if self._hnsw is None and n + 1 > self.exact_up_to:
            self._build_hnsw(n + 1)
        elif self._hnsw is not None:
            self._hnsw.add_item(v, n)

    def _build_hnsw(self, count: int) -> None:
        self._hnsw = hnsw_index(self.dim, max(2 * count, 4096), M=self.M)
        for s in range(count):  # one at a time: the same graph as online insertion
            self._hnsw.add_item(self._vecs[s], s)

    def query(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Labels and Euclidean distances of the ``k`` nearest stored vectors, nearest first."""
        n = len(self._labels)
        k = min(k, n)
        if k == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        v = np.asarray(vector, np.float32)
        if self._hnsw is None:  # float32 BLAS pass, then exact float64 distances of a short list
            approx = self._sq[:n] - 2.0 * (self._vecs[:n] @ v)
            short = min(n, max(4 * k, k + 16))
            idx = np.argpartition(approx, short - 1)[:short] if short < n else np.arange(n)
        else:
            idx, _ = self._hnsw.query(v, k=k, num_threads=1, query_ef=max(self.ef, k))
            idx = idx.astype(np.int64)
        diff = self._vecs[idx].astype(np.float64) - v.astype(np.float64)
        dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        o = np.lexsort((idx, dist))[:k]
        idx, dist = idx[o], dist[o]
        return np.array([self._labels[i] for i in idx], np.int64), dist


def earlier_neighbors(vectors: np.ndarray, order: np.ndarray, eligible: np.ndarray, k: int, *,
                      exact_up_to: int = 5000, block: int = 1024, ef: int = 128, M: int = 16,
                      threads: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest *earlier* eligible models of every model, all at once.

    "Earlier" means before it in ``order``; only ``eligible`` models can be neighbours. Up to
    ``exact_up_to`` models the search is exact (blocked float32 products, refined in float64),
    and gives what :class:`GrowingIndex` gives model by model. Beyond, one HNSW index over the
    eligible models is queried for ``4k`` neighbours, filtered to earlier ones; a model left with
    fewer than ``k`` (few earlier models near it) is searched exactly among earlier models.

    Returns
    -------
    (labels, distances)
        ``n x k`` arrays, nearest first, padded with ``-1`` / ``inf``.
    """
    x = np.ascontiguousarray(vectors, np.float32)
    n = len(x)
    pos = np.empty(n, np.int64)
    pos[order] = np.arange(n)
    labels = np.full((n, k), -1, np.int64)
    dists = np.full((n, k), np.inf)
    elig = np.flatnonzero(eligible)
    elig = elig[np.argsort(pos[elig], kind="stable")]
    sq = np.einsum("ij,ij->i", x, x, dtype=np.float64)

    def exact(queries: np.ndarray) -> None:
        for s in range(0, len(queries), block):
            q = queries[s:s + block]
            last = pos[q].max()
            c = elig[pos[elig] < last]
            if not len(c):
                continue
            approx = sq[c][None, :] - 2.0 * (x[q] @ x[c].T)
            approx[pos[c][None, :] >= pos[q][:, None]] = np.inf
            short = min(len(c), max(4 * k, k + 16))
            top = np.argpartition(approx, short - 1, axis=1)[:, :short] if short < len(c) else \
                np.broadcast_to(np.arange(len(c)), (len(q), len(c)))
            for r, qi in enumerate(q.tolist()):
                _refine(qi, c[top[r]][np.isfinite(approx[r, top[r]])])

    def _refine(qi: int, cand: np.ndarray) -> None:
        if not len(cand):
            return
        diff = x[cand].astype(np.float64) - x[qi].astype(np.float64)
        d = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        o = np.lexsort((pos[cand], d))[:k]
        labels[qi, :len(o)] = cand[o]
        dists[qi, :len(o)] = d[o]

    if n <= exact_up_to or len(elig) <= exact_up_to:
        exact(np.asarray(order, np.int64))
        return labels, dists
    index = hnsw_index(x.shape[1], len(elig), M=M)
    index.add_items(x[elig], elig, num_threads=threads)
    found, _ = index.query(x, k=min(4 * k, len(elig)), num_threads=threads, query_ef=max(ef, 4 * k))
    short = []
    for qi in range(n):
        cand = found[qi].astype(np.int64)
        cand = cand[pos[cand] < pos[qi]]
        if len(cand) >= k or pos[qi] == 0:
            _refine(qi, cand)
        else:
            short.append(qi)
    if short:
        short_arr = np.array(short, np.int64)
        exact(short_arr[np.argsort(pos[short_arr])])
    return labels, dists


class StaticIndex:
    """Nearest neighbours among a fixed set of vectors (a reference store): HNSW, saved to disk.

    Built once per store plan (``identify``'s search, docs/identify.md) with the same HNSW
    settings as the charting indexes; queries return approximate candidates, which the caller
    refines with exact distances on the full fingerprints.

    Parameters
    ----------
    vectors:
        ``n x d`` search vectors.
    M, ef_construction, ef:
        HNSW graph degree, build breadth and default search breadth.
    threads:
        Threads used to build.
    """

    def __init__(self, vectors: np.ndarray | None = None, *, M: int = 16, ef_construction: int = 200,
                 ef: int = 128, threads: int = 2):
        self.ef = ef
        self._index = None
        if vectors is not None:
            x = np.ascontiguousarray(vectors, np.float32)
            self._index = hnsw_index(x.shape[1], len(x), M=M, ef_construction=ef_construction)
            self._index.add_items(x, np.arange(len(x)), num_threads=threads)

    def __len__(self) -> int:
        return 0 if self._index is None else len(self._index)

    def save(self, path) -> None:
        self._index.save(str(path))

    @classmethod
    def load(cls, path, dim: int, *, ef: int = 128) -> "StaticIndex":
        """The index saved at ``path``; a file that is not an index of ``dim``-vectors raises
        ``ValueError`` (the caller rebuilds it)."""
        from voyager import Index

        out = cls(ef=ef)
        out._index = Index.load(str(path))
        if out._index.num_dimensions != dim:
            raise ValueError(f"{path}: an index of {out._index.num_dimensions}-vectors, expected {dim}")
        return out

    def query(self, vector: np.ndarray, k: int) -> np.ndarray:
        """Row numbers of (about) the ``k`` nearest vectors, nearest first."""
        n = len(self)
        k = min(k, n)
        if k == 0:
            return np.zeros(0, np.int64)
        idx, _ = self._index.query(np.asarray(vector, np.float32), k=k, num_threads=1,
                                   query_ef=max(self.ef, k))
        return idx.astype(np.int64)
