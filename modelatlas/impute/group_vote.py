"""Majority votes and means inside groups of nodes (hubs, components, authors), optionally
leaving each training node's own value out so it can serve as a training example."""

from __future__ import annotations

import numpy as np


def group_vote(groups: np.ndarray, codes: np.ndarray, train: np.ndarray, *, leave_one_out: bool = False):
    """Majority label of the training members of each node's group.

    Parameters
    ----------
    groups:
        Group label per node, ``-1`` for no group.
    codes:
        Class code per node (only ``train`` nodes are read).
    train:
        Mask of nodes whose label may vote.
    leave_one_out:
        A training node's own label does not vote for itself.

    Returns
    -------
    label, share, support : per node, the winning code (``-1`` if no vote), its share of the votes
    and the number of votes. Ties go to the smallest code.
    """
    n = groups.size
    label = np.full(n, -1, dtype=np.int64)
    share = np.zeros(n)
    support = np.zeros(n, dtype=np.int64)
    voters = train & (groups >= 0) & (codes >= 0)
    if not voters.any():
        return label, share, support
    n_cls = int(codes[voters].max()) + 1
    keys = groups[voters] * n_cls + codes[voters]
    uniq, cnt = np.unique(keys, return_counts=True)
    g, c = uniq // n_cls, uniq % n_cls
    order = np.lexsort((c, -cnt, g))
    g, c, cnt = g[order], c[order], cnt[order]
    first = np.r_[True, g[1:] != g[:-1]]
    second = np.r_[False, first[:-1]] & ~first
    n_groups = int(groups.max()) + 1
    top_c = np.full(n_groups, -1, dtype=np.int64)
    top_n = np.zeros(n_groups, dtype=np.int64)
    sec_c = np.full(n_groups, -1, dtype=np.int64)
    sec_n = np.zeros(n_groups, dtype=np.int64)
    top_c[g[first]], top_n[g[first]] = c[first], cnt[first]
    sec_c[g[second]], sec_n[g[second]] = c[second], cnt[second]
    total = np.bincount(groups[voters], minlength=n_groups)
    has = groups >= 0
    gi = groups[has]
    lab, votes, tot = top_c[gi], top_n[gi].astype(np.float64), total[gi].astype(np.float64)
    if leave_one_out:
        own = voters[has]
        mine = own & (codes[has] == lab)
        tot = tot - own
        votes = votes - mine
        # The runner-up wins when removing the node's own vote drops the leader below it (or ties
        # it with a smaller code).
        flip = mine & ((sec_n[gi] > votes) | ((sec_n[gi] == votes) & (sec_c[gi] < lab) & (sec_c[gi] >= 0)))
        lab = np.where(flip, sec_c[gi], lab)
        votes = np.where(flip, sec_n[gi], votes)
        lab = np.where(votes > 0, lab, -1)
    label[has] = lab
    share[has] = np.where(tot > 0, votes / np.maximum(tot, 1), 0.0)
    support[has] = tot.astype(np.int64)
    return label, share, support


def group_mean(groups: np.ndarray, values: np.ndarray, train: np.ndarray, *, leave_one_out: bool = False):
    """Mean of the training members' values in each node's group.

    Returns
    -------
    mean, support : per node, NaN and 0 where the group has no (other) training member.
    """
    n = groups.size
    voters = train & (groups >= 0) & ~np.isnan(values)
    mean = np.full(n, np.nan)
    support = np.zeros(n, dtype=np.int64)
    if not voters.any():
        return mean, support
    n_groups = int(groups.max()) + 1
    s = np.bincount(groups[voters], weights=values[voters], minlength=n_groups)
    c = np.bincount(groups[voters], minlength=n_groups).astype(np.float64)
    has = groups >= 0
    gs, gc = s[groups[has]], c[groups[has]]
    if leave_one_out:
        own = voters[has]
        gs = gs - np.where(own, values[has], 0.0)
        gc = gc - own
    with np.errstate(invalid="ignore", divide="ignore"):
        mean[has] = np.where(gc > 0, gs / np.maximum(gc, 1), np.nan)
    support[has] = gc.astype(np.int64)
    return mean, support


def row_vote(labels: np.ndarray):
    """Majority of each row of a ``(n, k)`` label matrix (``-1`` = empty); ties go to the label
    seen first (the nearest neighbour, when rows are sorted by distance).

    Returns
    -------
    label, share : per row; ``-1`` and 0 for empty rows.
    """
    n, k = labels.shape
    valid = labels >= 0
    counts = np.zeros((n, k), dtype=np.int64)
    for j in range(k):
        counts[:, j] = ((labels == labels[:, [j]]) & valid).sum(axis=1) * valid[:, j]
    best = np.argmax(counts, axis=1)
    top = counts[np.arange(n), best]
    size = valid.sum(axis=1)
    label = np.where(top > 0, labels[np.arange(n), best], -1)
    return label, np.where(size > 0, top / np.maximum(size, 1), 0.0)
