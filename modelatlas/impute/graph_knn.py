"""Graph kNN (Model Atlas paper, section 4.2 and Table 1a): a missing score is the mean of the
``k`` nearest labelled models by path length in the undirected atlas; a missing label is their
majority (ties to the nearest). Queries whose component holds no labelled model get the global
value."""

from __future__ import annotations

import numpy as np

from modelatlas.errors import InputError
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

    def __init__(self, k: int = 5):
        self.k = k
        self._check_k()

    def _check_k(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or not 1 <= self.k <= MAX_K:
            raise InputError(f"graph_knn's k must be an integer between 1 and {MAX_K}, not {self.k!r}", where="--k")

    def predict(self, view: TrainView, query: np.ndarray) -> Prediction:
        self._check_k()  # set_params may have changed it
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
