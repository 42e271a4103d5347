"""The majority baseline of the Model Atlas paper (App. C.1, Table 2).

Every model is assigned to the parent with the highest out-degree in the known stem (a depth-one
star around the biggest hub). The hub itself is predicted as a root. Without known edges the hub
is the oldest model of the component. The hub's own known ancestors keep their known parents (or
stay roots): attaching them to the hub would close a cycle.
"""

from __future__ import annotations

from collections import Counter

from modelatlas.chart.estimator import ChartMethod, register
from modelatlas.chart.types import ChartInput, ChartResult


@register
class Majority(ChartMethod):
    """Attach every model to the stem's most frequent parent."""

    name = "majority"
    _parameter_constraints: dict = {}

    def __init__(self):
        pass

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        degree = Counter(p for ps in known.values() for p in ps)
        hub = degree.most_common(1)[0][0] if degree else int(models.time_order()[0])
        above, stack = {hub}, [hub]
        while stack:  # the hub's known ancestors
            for p in known.get(stack.pop(), ()):
                if p not in above:
                    above.add(p)
                    stack.append(p)
        parents = {i: (hub,) for i in range(len(models)) if i not in above}
        return ChartResult.from_parents(parents, confidence={i: 0.0 for i in parents})
