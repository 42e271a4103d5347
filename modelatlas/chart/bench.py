"""Methods × zoos comparison (Model Atlas Table 2), rule ablations (Table 3) and per-pattern scores.

Used by ``modelatlas bench chart`` and ``benchmarks/chart_*.py``; every number comes from
:func:`modelatlas.chart.evaluate.evaluate` with the same seeds for every method.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from modelatlas.chart.estimator import get_method, method_names
from modelatlas.chart.evaluate import Evaluation, evaluate
from modelatlas.chart.types import ChartInput, GroundTruth

#: Rules of Algorithm 1 switched off one at a time (Table 3).
ATLAS_ABLATIONS = ("greedy", "quantization", "deduplication", "temporal", "snake_fan", "merges")


@dataclass
class BenchZoo:
    name: str
    models: ChartInput
    truth: GroundTruth


def without_times(zoo: BenchZoo, seed: int = 0) -> BenchZoo:
    """``zoo`` with every upload time unknown and its rows shuffled.

    The shuffle matters: zoos list models in the order they were made, and a method that falls
    back to input order without times would otherwise still be reading the upload order.
    """
    order = np.random.default_rng(seed).permutation(len(zoo.models))  # new row r is old row order[r]
    models = zoo.models.subset(order)
    models = replace(models, created_at=np.full(len(models), np.nan))
    truth = zoo.truth.subset(order)
    return BenchZoo(f"{zoo.name} (no times)", models, truth)


def ablations() -> list[tuple[str, str, dict]]:
    """(method, label, parameters) for every ablation row of ``atlas`` and ``auto``."""
    from modelatlas.chart.auto import Auto

    rows = [("atlas", f"atlas - {rule}", {rule: False}) for rule in ATLAS_ABLATIONS]
    rows += [("auto", f"auto - {rule}", {"rules": tuple(r for r in Auto.RULES if r != rule)})
             for rule in Auto.RULES]
    # without upload times: the kurtosis order alone instead of the spanning-forest order
    rows.append(("auto", "auto - tree order", {"fallback": "kurtosis"}))
    return rows


def run_bench(zoos: list[BenchZoo], *, seeds=(0, 1, 2), methods: list[str] | None = None,
              with_ablations: bool = True, components_known: bool = True) -> dict:
    """Evaluate every method (and ablation) on every zoo.

    Returns
    -------
    dict
        ``results``: one row per (method, zoo) with accuracy (mean, std), MoTHer edge accuracy,
        seconds and per-pattern accuracy; ``ablations``: the same for ablated variants.
    """
    methods = methods or method_names()
    results, abl = [], []
    for zoo in zoos:
        for name in methods:
            results.append(_row(name, zoo, evaluate(get_method(name), zoo.models, zoo.truth, seeds=seeds,
                                                    components_known=components_known)))
        if with_ablations:
            for name, label, params in ablations():
                ev = evaluate(get_method(name, **params), zoo.models, zoo.truth, seeds=seeds,
                              components_known=components_known)
                abl.append(_row(label, zoo, ev))
    return {"results": results, "ablations": abl}


def _row(label: str, zoo: BenchZoo, ev: Evaluation) -> dict:
    return {"method": label, "zoo": zoo.name, "accuracy": ev.accuracy, "accuracy_std": ev.accuracy_std,
            "edge_accuracy": ev.edge_accuracy, "seconds": ev.seconds, "per_pattern": ev.per_pattern,
            "reliability": ev.reliability}
