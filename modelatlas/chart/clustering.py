"""Splitting models into trees: MoTHer's Ward clustering (Sec. 5.2, "Multiple components").

Agglomerative clustering with Ward linkage on pairwise distances (L1 of the weights in the paper;
any precomputed distance here), cut into a known number of trees, or — when the number is
unknown — at the largest relative jump of the merge heights (a new tree starts where joining two
clusters costs several times more than any merge below it).
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform


def ward_clusters(distance: np.ndarray, n_clusters: int | None = None, *, min_jump: float = 3.0) -> np.ndarray:
    """Cluster labels ``0..k-1`` from an ``n x n`` distance matrix.

    Parameters
    ----------
    distance:
        Symmetric distances, zero diagonal.
    n_clusters:
        Number of trees when known; else found from the largest jump in merge heights.
    min_jump:
        Smallest height ratio that counts as a split between trees (unknown ``n_clusters``).
    """
    n = len(distance)
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    d = np.asarray(distance, np.float64)
    z = linkage(squareform((d + d.T) / 2, checks=False), method="ward")
    if n_clusters is None:
        n_clusters = automatic_cluster_count(z[:, 2], min_jump=min_jump)
    labels = fcluster(z, t=min(n_clusters, n), criterion="maxclust")
    _, labels = np.unique(labels, return_inverse=True)
    return labels.astype(np.int64)


def automatic_cluster_count(heights: np.ndarray, *, min_jump: float = 3.0) -> int:
    """Number of trees: one plus the merges at least ``min_jump`` times the median merge height.

    Joining two unrelated trees (different random initialisations) costs far more than any merge
    inside a tree, and most merges are inside trees, so the median is a within-tree scale.
    """
    h = np.asarray(heights, np.float64)
    if len(h) < 2:
        return 1
    scale = np.median(h[h > 0]) if (h > 0).any() else 0.0
    if scale <= 0:
        return 1
    return 1 + int((h > min_jump * scale).sum())
