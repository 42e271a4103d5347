"""Graph kNN (Model Atlas paper, section 4.2 and Table 1a): a missing score is the mean of the
``k`` nearest labelled models by path length in the undirected atlas; a missing label is their
majority (ties to the nearest). Queries whose component holds no labelled model get the global
value."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval

from modelatlas.impute.base import ImputationMethod, register
from modelatlas.impute.group_vote import row_vote
from modelatlas.impute.task import Prediction
from modelatlas.impute.view import MAX_K, TrainView


@register
class GraphKNN(ImputationMethod):
    """Parameters
    ----------
    k:
        Neighbours (the paper uses 1, 2, 3 and 5); at most :data:`~modelatlas.impute.view.MAX_K`.
    """

    name = "graph_knn"
    _parameter_constraints = {"k": [Interval(Integral, 1, MAX_K, closed="both")]}

    def __init__(self, k: int = 5):
        self.k = k
        self._validate_params()

    def predict(self, view: TrainView, query: np.ndarray) -> Prediction:
        self._validate_params()  # an attribute may have been assigned directly
        task = view.task
        src = view.nearest.source[query, : self.k]
        dist = view.nearest.distance[query, : self.k]
        has = src >= 0
        covered = has[:, 0]
        value, conf = view.fallback(query.size)
        if task.kind == "attribute":
            labels = np.where(has, task.codes[np.maximum(src, 0)], -1)
            label, share = row_vote(labels)
            value[covered], conf[covered] = label[covered], share[covered]
        else:
            vals = np.where(has, task.values[np.maximum(src, 0)], 0.0)
            mean = vals.sum(axis=1) / np.maximum(has.sum(axis=1), 1)
            value[covered] = mean[covered]
            conf[covered] = 1.0 / np.maximum(dist[covered, 0], 1)
        return Prediction(value, conf, covered)
