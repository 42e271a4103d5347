"""A training view: one imputation task with some known values visible to the methods."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from modelatlas.impute.nearest_labelled import NearestLabelled, k_nearest_labelled
from modelatlas.impute.task import ImputationTask

#: Neighbours searched once per view; methods use the first ``k`` (one more for leave-one-out).
MAX_K = 6


@dataclass(eq=False)
class TrainView:
    """The values of ``task`` that methods may read (``train``), with shared cached searches."""

    task: ImputationTask
    train: np.ndarray

    @cached_property
    def nearest(self) -> NearestLabelled:
        """The :data:`MAX_K` nearest training nodes of every node (itself first if it trains)."""
        return k_nearest_labelled(self.task.facts.graph, self.train, MAX_K)

    @cached_property
    def global_value(self) -> tuple[float, float]:
        """Global majority code and its share (attributes) or global mean and 1.0 (metrics)."""
        t = self.task
        if t.kind == "metric":
            return float(np.mean(t.values[self.train])), 1.0
        counts = np.bincount(t.codes[self.train], minlength=len(t.classes))
        best = int(np.argmax(counts))
        return float(best), float(counts[best] / max(counts.sum(), 1))

    def fallback(self, size: int):
        """Arrays filled with the global value, for nodes a method cannot reach."""
        value, conf = self.global_value
        if self.task.kind == "metric":
            return np.full(size, value), np.full(size, 0.0)
        return np.full(size, int(value), dtype=np.int64), np.full(size, conf)
