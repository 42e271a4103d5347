"""Mutation rates of traits along fine-tune edges (Laufer et al., section 4 and appendix 7).

Definition 7.1: on an edge ``p -> c`` whose parent and child both hold values of trait ``T``, the
mutation rate is the Jaccard distance ``1 - |T(p) ∩ T(c)| / |T(p) ∪ T(c)|`` (0 or 1 for
single-valued traits, the "partial mutation" of section 4.3 for languages); the rate over ``T``
is its mean over those edges. Edges where either side has no value are not observed.
"""

from __future__ import annotations

import numpy as np

from modelatlas.ecosystem.traits import TraitSets, require_values, trait_sets
from modelatlas.errors import ModelAtlasError


def edge_overlap(sets: TraitSets, parent: np.ndarray, child: np.ndarray):
    """Sizes of the parent's set, the child's set and their intersection on each edge."""
    p, c = sets.matrix[parent], sets.matrix[child]
    inter = np.asarray(p.multiply(c).sum(axis=1)).ravel().astype(np.int64)
    return sets.sizes[parent], sets.sizes[child], inter


def edge_mutation_rates(sets: TraitSets, parent: np.ndarray, child: np.ndarray) -> np.ndarray:
    """Jaccard distance per edge; NaN where the parent or the child holds no value."""
    a, b, inter = edge_overlap(sets, parent, child)
    union = a + b - inter
    out = np.full(parent.size, np.nan)
    seen = (a > 0) & (b > 0)
    out[seen] = 1.0 - inter[seen] / union[seen]
    return out


def mutation_rate(atlas, tree, trait: str) -> dict:
    """The mutation rate of ``trait`` over the fine-tune edges of ``tree``.

    Returns
    -------
    dict with ``trait``, ``rate`` (mean over observed edges), ``edges`` (all tree edges),
    ``observed`` (edges where both sides hold the trait), ``mutated`` (edges with rate > 0),
    ``full_mutations`` (rate 1), ``partial_mutations`` (0 < rate < 1, multi-valued traits only) and
    ``per_edge`` (float array aligned with ``tree.child``; NaN where
    unobserved).
    """
    sets = trait_sets(atlas, trait)
    require_values(sets, trait)
    per_edge = edge_mutation_rates(sets, tree.edge_parent, tree.child)
    seen = np.isfinite(per_edge)
    if not seen.any():
        raise ModelAtlasError(f"no fine-tune edge has {trait!r} on both parent and child "
                              f"({tree.num_edges} fine-tune edges): the mutation rate is undefined")
    return {"trait": trait, "column": sets.column, "rate": float(per_edge[seen].mean()),
            "edges": int(tree.num_edges), "observed": int(seen.sum()),
            "mutated": int((per_edge[seen] > 0).sum()), "full_mutations": int((per_edge[seen] == 1).sum()),
            "partial_mutations": int(((per_edge[seen] > 0) & (per_edge[seen] < 1)).sum()),
            "per_edge": per_edge}
