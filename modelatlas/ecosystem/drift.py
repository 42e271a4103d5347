"""Drift graphs: the oriented graph of net mutation traffic between trait values
(Laufer et al., section 4, "Directedness", Figures 8, 10 and 11; rules of the notebooks, ANCHORS.md).

On each fine-tune edge ``p -> c`` where both hold the trait, with ``gained = T(c) - T(p)`` and
``lost = T(p) - T(c)``, the edge logs the *distinct* mutations

* ``a -> g`` for every parent value ``a`` and every gained value ``g``, and
* ``l -> b`` for every lost value ``l`` and every child value ``b``

(section 4.3; for a single-valued trait both rules log the one mutation ``x -> y`` once). With the
sets as sparse indicator rows ``P`` (parents), ``C`` (children), ``G`` (gained) and ``L`` (lost),
the traffic matrix is ``Pᵀ G + Lᵀ C - Lᵀ G`` (the last term removes pairs both rules log).

The drift graph keeps the ``top`` most frequent values (frequency among models), dropping
"unknown", "other" and empties, and orients each pair of values by its net traffic; equal traffic
both ways leaves the pair unoriented (counted as a tie).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelatlas.ecosystem.traits import UNINFORMATIVE, TraitSets, require_values, trait_sets
from modelatlas.errors import ModelAtlasError


@dataclass(eq=False)
class DriftGraph:
    """Mutation traffic among the kept values of one trait.

    Attributes
    ----------
    values:
        The kept values, most frequent first.
    traffic:
        ``traffic[i, j]``: mutations from ``values[i]`` to ``values[j]`` (int64, zero diagonal).
    frequency:
        Number of models holding each kept value.
    """

    trait: str
    values: list[str]
    traffic: np.ndarray
    frequency: np.ndarray

    @property
    def size(self) -> int:
        return len(self.values)

    def drifts(self) -> list[dict]:
        """Oriented pairs: ``source -> target`` where traffic that way exceeds the other way."""
        t = self.traffic
        out = []
        for i, j in zip(*np.nonzero(t > t.T)):
            out.append({"source": self.values[i], "target": self.values[j], "forward": int(t[i, j]),
                        "backward": int(t[j, i]), "net": int(t[i, j] - t[j, i]), "total": int(t[i, j] + t[j, i])})
        return sorted(out, key=lambda d: -d["total"])

    def ties(self) -> int:
        """Pairs with traffic, equal both ways (not oriented)."""
        t = self.traffic
        return int((np.triu((t == t.T) & (t > 0), 1)).sum())

    def orientation(self) -> np.ndarray:
        """``D[i, j] = 1`` where ``values[i] -> values[j]`` is a drift."""
        return (self.traffic > self.traffic.T).astype(np.int64)


def traffic_matrix(sets: TraitSets, parent: np.ndarray, child: np.ndarray) -> np.ndarray:
    """All-values traffic matrix (dense int64 ``V x V``) over the given edges (module rules)."""
    p, c = sets.matrix[parent].astype(np.int64), sets.matrix[child].astype(np.int64)
    seen = (np.diff(p.indptr) > 0) & (np.diff(c.indptr) > 0)
    p, c = p[seen], c[seen]
    both = p.multiply(c)
    gained, lost = (c - both).tocsr(), (p - both).tocsr()
    t = (p.T @ gained + lost.T @ c - lost.T @ gained).toarray().astype(np.int64)
    np.fill_diagonal(t, 0)
    return t


def drift_graph(atlas, tree, trait: str, *, top: int = 20, drop=UNINFORMATIVE) -> DriftGraph:
    """The drift graph of ``trait`` over the fine-tune edges of ``tree`` (module rules).

    Parameters
    ----------
    top:
        Number of most frequent values kept (the paper: 20); ``0`` keeps all.
    drop:
        Values left out (compared case-insensitively).

    Raises
    ------
    ModelAtlasError
        When fewer than two values remain: a drift needs two.
    """
    sets = trait_sets(atlas, trait)
    require_values(sets, trait)
    freq = sets.frequency()
    usable = np.array([v.strip().lower() not in drop for v in sets.values], dtype=bool)
    order = [int(i) for i in np.lexsort((np.arange(freq.size), -freq)) if usable[i] and freq[i] > 0]
    keep = order[:top] if top else order
    if len(keep) < 2:
        raise ModelAtlasError(f"trait {trait!r} has {len(keep)} informative value(s) "
                              f"({', '.join(sets.values[i] for i in keep) or 'none'}): a drift graph needs at least 2")
    full = traffic_matrix(sets, tree.edge_parent, tree.child)
    keep_idx = np.array(keep)
    return DriftGraph(trait, [sets.values[i] for i in keep], full[np.ix_(keep_idx, keep_idx)], freq[keep_idx])
