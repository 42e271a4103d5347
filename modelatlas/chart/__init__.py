"""Structure recovery from weights: baselines, MoTHer, Algorithm 1 and our ``auto`` method.

Every method shares the estimator interface of :mod:`modelatlas.chart.base`; pick one by name
with :func:`get_method`.
"""

from __future__ import annotations

import importlib

from modelatlas.chart.base import (ChartInput, ChartMethod, ChartResult, LayerBlock, get_method,
                                   method_names)

#: Modules that register a method (one method per module).
METHOD_MODULES = ("random_parents", "majority", "price", "mother", "algorithm1", "auto", "pair_scorer")


def _load_methods() -> None:
    for name in METHOD_MODULES:
        importlib.import_module(f"modelatlas.chart.{name}")


__all__ = ["ChartInput", "ChartMethod", "ChartResult", "LayerBlock", "get_method", "method_names"]
