"""Hub majority vote (Model Atlas paper, section 4.2 "Graph kNN" paragraph and Table 1b).

Hubs are sets of sibling leaves (:func:`modelatlas.atlas.hubs.sibling_leaf_hubs`); a missing
attribute is the majority of the hub's labelled members. For metrics the vote is the members'
mean. Models outside any hub, or in a hub with no labelled member, get the global value.
"""

from __future__ import annotations

import numpy as np

from modelatlas.impute.base import ImputationMethod, register
from modelatlas.impute.global_baseline import group_prediction
from modelatlas.impute.task import Prediction
from modelatlas.impute.view import TrainView


@register
class HubVote(ImputationMethod):
    """Majority (attributes) or mean (metrics) of the query's hub."""

    name = "hub_majority"

    def predict(self, view: TrainView, query: np.ndarray) -> Prediction:
        return group_prediction(view, view.task.facts.hubs, query)
