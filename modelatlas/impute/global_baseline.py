"""Baselines without the atlas's edges (Model Atlas paper, Table 1: "Baseline" / global majority):
the global majority label or global mean, and the majority / mean of the model's own component
(the "whole-graph neighbourhood")."""

from __future__ import annotations

import numpy as np

from modelatlas.impute.base import ImputationMethod, register
from modelatlas.impute.group_vote import group_mean, group_vote
from modelatlas.impute.task import Prediction
from modelatlas.impute.view import TrainView


@register
class GlobalBaseline(ImputationMethod):
    """Predict the training values' majority (attributes) or mean (metrics) everywhere."""

    name = "global"

    def name_for(self, kind: str) -> str:
        return "global_majority" if kind == "attribute" else "global_mean"

    def predict(self, view: TrainView, query: np.ndarray) -> Prediction:
        value, conf = view.fallback(query.size)
        return Prediction(value, conf, np.ones(query.size, dtype=bool))


@register
class ComponentVote(ImputationMethod):
    """Majority label (or mean) of the labelled models in the query's weakly connected component;
    the global value where the component has none."""

    name = "component"

    def name_for(self, kind: str) -> str:
        return "component_majority" if kind == "attribute" else "component_mean"

    def predict(self, view: TrainView, query: np.ndarray) -> Prediction:
        return group_prediction(view, view.task.facts.components, query)


def group_prediction(view: TrainView, groups: np.ndarray, query: np.ndarray) -> Prediction:
    """Vote (attributes) or mean (metrics) of each query's group, with the global fallback."""
    task = view.task
    value, conf = view.fallback(query.size)
    if task.kind == "attribute":
        label, share, _ = group_vote(groups, task.codes, view.train)
        got = label[query]
        covered = got >= 0
        value[covered], conf[covered] = got[covered], share[query][covered]
    else:
        mean, support = group_mean(groups, task.values, view.train)
        got = mean[query]
        covered = ~np.isnan(got)
        value[covered] = got[covered]
        conf[covered] = 1.0 - 1.0 / (1.0 + support[query][covered])
    return Prediction(value, conf, covered)
