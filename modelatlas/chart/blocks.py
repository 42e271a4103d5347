"""Approximate-neighbour blocks: a family too big for one task, split into blocks of near models.

A random-projection tree in the manner of Annoy (Bernhardsson 2013) and RP-trees (Dasgupta &
Freund 2008): a node's models are projected on the line through two far-apart members (a point
drawn by the seed, the member farthest from it, and the member farthest from that) and cut at the
median, until every block holds at most ``block_size`` models. Fine-tunes lie close to their
parent in weight space (Model Atlas, App. C), so most parent-child pairs fall in one block; the
pairs a cut separates are lost, and ``benchmarks/scale_ray.py`` measures how many
(``docs/scale.md``, "Big families"). The split depends only on the vectors, ``block_size`` and
the seed: every engine charts the same blocks.
"""

from __future__ import annotations

import numpy as np


def neighbour_blocks(vectors: np.ndarray, block_size: int, *, seed: int = 0) -> list[np.ndarray]:
    """Row indices of blocks of at most ``block_size`` near rows, covering every row once.

    Parameters
    ----------
    vectors:
        ``n x d`` fingerprints of one family.
    block_size:
        Most rows per block (at least 2).
    seed:
        Seed of the first point of each cut.

    Returns
    -------
    list of numpy.ndarray
        Sorted row indices per block, blocks ordered by their first row.
    """
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2, not {block_size}")
    vectors = np.asarray(vectors, np.float32)
    rng = np.random.default_rng(seed)
    out, stack = [], [np.arange(len(vectors), dtype=np.int64)]
    while stack:  # each cut halves a node: at most 2n / block_size nodes in all
        rows = stack.pop()
        if len(rows) <= block_size:
            out.append(np.sort(rows))
            continue
        x = vectors[rows]
        start = x[rng.integers(len(rows))]
        b = x[np.argmax(((x - start) ** 2).sum(axis=1))]
        c = x[np.argmax(((x - b) ** 2).sum(axis=1))]
        order = np.argsort(x @ (c - b), kind="stable")
        half = len(rows) // 2
        stack += [rows[order[half:]], rows[order[:half]]]
    return sorted(out, key=lambda block: int(block[0]))
