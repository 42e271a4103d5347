"""Price's model (preferential attachment) as a charting baseline (Model Atlas, App. C.1).

Models arrive in time order; each attaches to one model already present with probability
proportional to its out-degree plus one (Price 1976, with the usual +1 so that new models can
become hubs). The known stem and its parents are present from the start, with their degrees; a
model never attaches below itself through a known edge.

References
----------
D. de S. Price, "A general theory of bibliometric and other cumulative advantage processes", 1976.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval

from modelatlas.chart.estimator import ChartMethod, register
from modelatlas.chart.graph import known_descendants
from modelatlas.chart.random_parents import RandomParents
from modelatlas.chart.types import ChartInput, ChartResult


@register
class Price(ChartMethod):
    """Preferential attachment in time order, seeded by the stem."""

    name = "price"
    #: ``attachment`` is added to every degree; above 0 so that a stem without edges can start.
    _parameter_constraints = {**RandomParents._parameter_constraints,
                              "attachment": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, random_state: int = 0, attachment: float = 1.0):
        self.random_state = random_state
        self.attachment = attachment

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        rng = np.random.default_rng(self.random_state)
        n = len(models)
        degree = np.zeros(n)
        present = np.zeros(n, bool)
        for c, ps in known.items():
            present[c] = True
            for p in ps:
                present[p] = True
                degree[p] += 1
        order = [int(i) for i in models.time_order() if i not in known]
        if not present.any():  # no stem: the oldest model starts the tree
            present[order.pop(0)] = True
        parents = {}
        for i in order:
            below = known_descendants({**known, **parents}, i) | {i}
            cand = np.array([c for c in np.flatnonzero(present) if c not in below], dtype=np.int64)
            if not len(cand):
                present[i] = True
                continue
            w = degree[cand] + self.attachment
            p = int(cand[rng.choice(len(cand), p=w / w.sum())])
            parents[i] = (p,)
            degree[p] += 1
            present[i] = True
        return ChartResult.from_parents(parents, confidence={i: 0.0 for i in parents})
