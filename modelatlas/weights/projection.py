"""Sparse random projection of fingerprints, applied model by model while reading.

A 100-neuron-per-layer fingerprint of a BERT-base-sized model has millions of dimensions; 10,000 of
them do not fit in memory (``ENGINEERING-NOTES.md``: reduce to 256–1024 dimensions before indexing).
A dense Gaussian projection matrix of that size would not fit either, so we use the sparse
Johnson–Lindenstrauss transform of Kane & Nelson (2014), block construction: the output is split
into ``s`` blocks and every input coordinate is added, with a random sign and weight
``1 / sqrt(s)``, to one random coordinate of each block. It is linear (projected differences are
the projections of differences), preserves squared distances in expectation, and costs
``O(s · d)`` per model; only the bucket and sign of each input coordinate are stored.
"""

from __future__ import annotations

import numpy as np

from modelatlas.errors import InputError


class SparseProjection:
    """A fixed sparse sign projection from ``n_in`` to ``n_out`` dimensions.

    Parameters
    ----------
    n_in, n_out:
        Input and output dimensions (``n_out`` a multiple of ``s``).
    seed:
        Seed; the same ``(n_in, n_out, seed, s)`` gives the same projection everywhere.
    s:
        Non-zeros per input coordinate (4 is plenty at ``n_out`` ≥ 256).

    References
    ----------
    D. M. Kane and J. Nelson, "Sparser Johnson-Lindenstrauss Transforms", J. ACM 61(1), 2014.
    """

    def __init__(self, n_in: int, n_out: int, seed: int = 0, s: int = 4):
        if n_out < s or n_out % s:
            raise InputError(f"projection size {n_out} must be a positive multiple of {s}")
        self.n_in, self.n_out, self.seed, self.s = n_in, n_out, seed, s
        rng = np.random.default_rng([seed, n_in, n_out, s])
        self.block = n_out // s
        self.buckets = rng.integers(0, self.block, size=(s, n_in), dtype=np.int32)
        self.signs = (rng.integers(0, 2, size=(s, n_in), dtype=np.int8) * 2 - 1).astype(np.float32)
        self.signs /= np.float32(np.sqrt(s))

    def __call__(self, vector: np.ndarray) -> np.ndarray:
        """Project one vector of length ``n_in`` to ``n_out`` dimensions (float32)."""
        vector = np.asarray(vector, np.float32)
        return np.concatenate([np.bincount(b, weights=vector * sign, minlength=self.block)
                               for b, sign in zip(self.buckets, self.signs)]).astype(np.float32)
