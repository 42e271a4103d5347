"""Structure-only random baselines of the Model Atlas paper (App. C.1, Table 2).

* ``random`` — random edge assignment: every model gets a parent drawn uniformly from the other
  models of its component.
* ``random-root`` — our reading of the paper's "Random - root" row: a random tree grown from the
  component's root (the stem's root if known, else the oldest model); each other model attaches
  to a uniformly drawn model that precedes it in time (a random recursive tree), never one below
  it through a known edge.

Known edges (the 10% stem) are kept as given.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval

from modelatlas.chart.estimator import ChartMethod, register
from modelatlas.chart.graph import known_descendants
from modelatlas.chart.types import ChartInput, ChartResult


@register
class RandomParents(ChartMethod):
    """Uniformly random parent among the other models of the component."""

    name = "random"
    #: A seed for :func:`numpy.random.default_rng`: a non-negative int, a Generator, or None (fresh).
    _parameter_constraints = {"random_state": [Interval(Integral, 0, None, closed="left"),
                                               np.random.Generator, None]}

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        rng = np.random.default_rng(self.random_state)
        n = len(models)
        parents = {}
        for i in range(n):
            j = int(rng.integers(n - 1))
            parents[i] = (j + (j >= i),)
        return ChartResult.from_parents(parents, {i: "unknown" for i in parents},
                                        {i: 1.0 / (n - 1) for i in parents})


@register
class RandomRoot(RandomParents):
    """A random recursive tree grown in time order from the component's root."""

    name = "random-root"

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        rng = np.random.default_rng(self.random_state)
        order = [int(i) for i in models.time_order()]
        known_roots = [c for c, ps in known.items() if not ps]
        root = known_roots[0] if known_roots else order[0]
        order.remove(root)
        placed = [root]
        parents = {}
        for i in order:
            below = known_descendants({**known, **parents}, i)
            choices = [p for p in placed if p not in below]
            if choices:
                parents[i] = (choices[int(rng.integers(len(choices)))],)
            placed.append(i)
        return ChartResult.from_parents(parents, confidence={i: 0.0 for i in parents})
