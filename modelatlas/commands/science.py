"""Science on a charted atlas (issue 5): ``stats``, ``top``, ``impute``, ``forensics``, ``search``
and ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from modelatlas.commands.common import DEFAULT_ATLAS_PATH, AtlasPath, JsonFlag, console, emit_json


def _print_rows(title: str, rows: list[dict], columns: list[str] | None = None) -> None:
    from modelatlas.analytics.tables import _fmt

    columns = columns or (list(rows[0]) if rows else [])
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*(_fmt(r.get(c)) for c in columns))
    console.print(table)


def stats(atlas: AtlasPath = DEFAULT_ATLAS_PATH, as_json: JsonFlag = False,
          components: Annotated[int, typer.Option(help="How many of the biggest components get their own rows.")] = 10,
          group_by: Annotated[Optional[str], typer.Option(
              "--group-by", help="Show only one grouping: all, modality, component or month.")] = None) -> None:
    """Meta-ML statistics of the Model Atlas paper, per modality, component and month."""
    from modelatlas.analytics.statistics import compute_statistics
    from modelatlas.atlas.atlas import Atlas

    result = compute_statistics(Atlas.load(atlas), top_components=components)
    if as_json:
        emit_json(result.to_dict())
        return
    _print_rows("Model Atlas paper vs this atlas", result.headline, ["statistic", "paper", "ours", "n"])
    for table in result.tables.values():
        rows = table.rows if group_by is None or "group_by" not in table.columns else table.select(group_by)
        _print_rows(f"{table.title}  [paper: {table.paper}]", rows, table.columns)


def top(atlas: AtlasPath = DEFAULT_ATLAS_PATH, as_json: JsonFlag = False,
        by: Annotated[str, typer.Option(help="sub_tree_downloads, descendants, descendant_downloads, "
                                             "downloads or likes.")] = "sub_tree_downloads",
        task: Annotated[Optional[str], typer.Option(help="Only models with this pipeline_tag.")] = None,
        component: Annotated[Optional[int], typer.Option(help="Only this component (0 = biggest).")] = None,
        per: Annotated[Optional[str], typer.Option(help="Rank within each 'component' or 'task'.")] = None,
        limit: Annotated[int, typer.Option(help="Rows (per group).")] = 20) -> None:
    """The most influential models: ranked by sub-tree downloads or descendant counts."""
    from modelatlas.analytics.facts import AtlasFacts
    from modelatlas.analytics.impact import top_models
    from modelatlas.atlas.atlas import Atlas

    rows = top_models(AtlasFacts(Atlas.load(atlas)), by, task=task, component=component, per=per, limit=limit)
    if as_json:
        emit_json({"by": by, "task": task, "component": component, "per": per, "rows": rows})
        return
    _print_rows(f"top models by {by}", rows)


def impute(what: Annotated[str, typer.Option("--what", help="Attribute (pipeline_tag, library_name, model_type, "
                                                         "license, relation_type, ...) or metric name.")],
           atlas: AtlasPath = DEFAULT_ATLAS_PATH, as_json: JsonFlag = False,
           evaluate: Annotated[bool, typer.Option("--evaluate", help="Hide known values, predict, score every "
                                                                      "method (Table 1 protocol).")] = False,
           method: Annotated[str, typer.Option(help="Method for stored imputations: auto, graph_knn, "
                                                    "hub_majority, component, global.")] = "auto",
           k: Annotated[int, typer.Option(help="Neighbours for graph_knn.")] = 5,
           hide: Annotated[float, typer.Option(help="Share of known values hidden per seed (--evaluate).")] = 0.2,
           seeds: Annotated[int, typer.Option(help="Number of random splits (--evaluate).")] = 3,
           component: Annotated[Optional[int], typer.Option(
               help="Hide values only in this component (0 = biggest), as the paper's Mistral-7B study.")] = None,
           ) -> None:
    """Impute a missing attribute or metric from the atlas (Table 1); stores results in the atlas's
    ``imputations`` table, never over known values."""
    from modelatlas.analytics.facts import AtlasFacts
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.impute.evaluate import evaluate as run_evaluation
    from modelatlas.impute.store import impute as run_impute
    from modelatlas.impute.store import store_imputations
    from modelatlas.impute.task import build_task

    loaded = Atlas.load(atlas)
    facts = AtlasFacts(loaded)
    task = build_task(facts, what)
    if evaluate:
        scope = None if component is None else facts.components == component
        report = run_evaluation(task, hide=hide, seeds=tuple(range(seeds)), scope=scope)
        if as_json:
            emit_json(report)
            return
        console.print(f"{what} ({task.kind}): {report['known']:,} known, {report['hidden_per_seed']:,} hidden "
                      f"per seed, {len(report['seeds'])} seeds")
        _print_rows(f"imputation of {what}", report["results"])
        return
    table = run_impute(task, method, k)
    store_imputations(loaded, table)
    loaded.save(atlas)
    summary = {"what": what, "kind": task.kind, "method": table["method"][0].as_py() if table.num_rows else method,
               "known": int(task.known.sum()), "imputed": table.num_rows, "atlas": str(atlas)}
    if as_json:
        emit_json({**summary, "sample": table.slice(0, 20).to_pylist()})
        return
    console.print(f"imputed {what} for {table.num_rows:,} models ({summary['known']:,} known) with "
                  f"{summary['method']}; stored in table 'imputations' of {atlas}")


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
    app.command("top")(top)
    app.command("impute")(impute)
