"""Charting as engine tasks: one task per family (architecture group or known component, or an
approximate-neighbour block of a big one, :mod:`modelatlas.chart.blocks`).

A method compares models only inside one architecture group (:func:`modelatlas.chart.types.
architecture_groups`), so groups are charted independently and their results joined on the driver
in group order, where the known edges and the cycle check are applied once
(:meth:`modelatlas.chart.estimator.ChartMethod.chart`). The same function charts a family in this process
and on a Ray worker, so both engines give the same edges.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelatlas.engine.executor import Executor, LocalExecutor, TaskFailure
from modelatlas.engine.progress import engine_progress


@dataclass
class FamilyTask:
    """One family to chart: the method, the family's models and the known edges among them."""

    method: object  # a ChartMethod
    models: object  # a ChartInput
    known: dict[int, tuple[int, ...]]


def chart_family(task: FamilyTask):
    """Engine task: :meth:`ChartMethod.chart_group` on one family (BLAS threads as ``chart`` sets)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(task.method.blas_threads):
        return task.method.chart_group(task.models, task.known)


def chart_families(tasks: list[FamilyTask], executor: Executor | None = None, *, bar: bool = False) -> list:
    """Chart every family; return their results in task order (a failed task gives a
    :class:`~modelatlas.engine.executor.TaskFailure` in its place)."""
    executor = executor or LocalExecutor()
    results: list = [None] * len(tasks)
    label = f"charting families ({executor.name}, {executor.workers} worker{'s' * (executor.workers > 1)})"
    with engine_progress(label, sum(len(t.models) for t in tasks), enabled=bar and bool(tasks)) as tally:
        # biggest families first, so that the last task to finish is a small one
        order = sorted(range(len(tasks)), key=lambda i: -len(tasks[i].models))
        for j, result in executor.map_unordered(chart_family, [tasks[i] for i in order]):
            results[order[j]] = result
            n = len(tasks[order[j]].models)
            tally.failed(n) if isinstance(result, TaskFailure) else tally.done(n)
    return results
