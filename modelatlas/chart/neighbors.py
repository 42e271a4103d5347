"""Growing nearest-neighbour index over fingerprints: exact while small, HNSW (hnswlib) beyond.

Models are added one at a time in the order they are charted, so a query only ever sees the
models added before it — the same answer whether models arrive one by one (online) or all at
once. hnswlib is run single-threaded with a fixed seed, so insertion is deterministic.
"""

from __future__ import annotations

import numpy as np


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

    def __init__(self, dim: int, *, exact_up_to: int = 2000, capacity: int = 1024, ef: int = 100,
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
            self._ensure_capacity(n + 1)
            self._hnsw.add_items(v[None, :], np.array([n]), num_threads=1)

    def _build_hnsw(self, count: int) -> None:
        import hnswlib

        self._hnsw = hnswlib.Index(space="l2", dim=self.dim)
        self._hnsw.init_index(max_elements=max(2 * count, 4096), ef_construction=200, M=self.M,
                              random_seed=0)
        self._hnsw.set_ef(self.ef)
        for s in range(0, count, 1):  # one at a time: the same graph as online insertion
            self._hnsw.add_items(self._vecs[s:s + 1], np.array([s]), num_threads=1)

    def _ensure_capacity(self, count: int) -> None:
        if count > self._hnsw.get_max_elements():
            self._hnsw.resize_index(2 * count)

    def query(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Labels and Euclidean distances of the ``k`` nearest stored vectors, nearest first."""
        n = len(self._labels)
        k = min(k, n)
        if k == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        v = np.asarray(vector, np.float32)
        if self._hnsw is None:
            diff = self._vecs[:n].astype(np.float64) - v.astype(np.float64)
            d2 = np.einsum("ij,ij->i", diff, diff)
            idx = np.argpartition(d2, k - 1)[:k] if k < n else np.arange(n)
            idx = idx[np.lexsort((idx, d2[idx]))]
            dist = np.sqrt(d2[idx])
        else:
            self._hnsw.set_ef(max(self.ef, k))
            idx, d2 = self._hnsw.knn_query(v[None, :], k=k, num_threads=1)
            idx = idx[0].astype(np.int64)
            diff = self._vecs[idx].astype(np.float64) - v.astype(np.float64)  # exact distances
            dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            o = np.lexsort((idx, dist))
            idx, dist = idx[o], dist[o]
        return np.array([self._labels[i] for i in idx], np.int64), dist
