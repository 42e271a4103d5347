"""Structure recovery from weights: baselines, MoTHer, Algorithm 1 and our ``auto`` method.

Every method shares the estimator interface of :mod:`modelatlas.chart.estimator`; pick one by name
with :func:`get_method`.
"""

from __future__ import annotations

import importlib

from modelatlas.callable_package import make_callable
from modelatlas.chart.estimator import ChartMethod, get_method, method_names
from modelatlas.chart.types import ChartInput, ChartResult, LayerBlock

#: Modules that register a method (one method per module).
METHOD_MODULES = ("random_parents", "majority", "price", "mother", "algorithm1", "auto", "pair_scorer")


def _load_methods() -> None:
    for name in METHOD_MODULES:
        importlib.import_module(f"modelatlas.chart.{name}")


__all__ = ["ChartInput", "ChartMethod", "ChartResult", "LayerBlock", "get_method", "method_names"]


# ``ma.chart(models, method=...)`` calls :func:`modelatlas.api.chart` (docs/api.md).
make_callable(__name__)
