"""Science on a charted atlas (issue 5): ``stats``, ``top``, ``impute``, ``forensics``, ``search``
and ``report``."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Optional

import typer

from modelatlas.commands.common import (DEFAULT_ATLAS_PATH, AtlasPath, FormatOpt, JsonFlag, Results, emit_json,
                                        resolve_format, say)


def stats(atlas: AtlasPath = DEFAULT_ATLAS_PATH, fmt: FormatOpt = None,
          as_json: JsonFlag = False,
          components: Annotated[int, typer.Option(help="How many of the biggest components get their own rows.")] = 10,
          group_by: Annotated[Optional[str], typer.Option(
              "--group-by", help="Show only one grouping: all, modality, component or month.")] = None) -> None:
    """Meta-ML statistics of the Model Atlas paper, per modality, component and month."""
    from modelatlas.analytics.statistics import HEADLINE_COLUMNS, compute_statistics
    from modelatlas.atlas.atlas import Atlas

    fmt = resolve_format(fmt, as_json)
    out = Results(fmt) if fmt != "json" else None

    result = compute_statistics(Atlas.load(atlas), top_components=components)
    if fmt == "json":
        emit_json(result.to_dict())
        return
    out.records("Model Atlas paper vs this atlas", result.headline, HEADLINE_COLUMNS)
    for table in result.tables.values():
        rows = table.rows if group_by is None or "group_by" not in table.columns else table.select(group_by)
        out.records(f"{table.title}  [paper: {table.paper}]", rows, table.columns)


def top(atlas: AtlasPath = DEFAULT_ATLAS_PATH, fmt: FormatOpt = None,
        as_json: JsonFlag = False,
        by: Annotated[str, typer.Option(help="sub_tree_downloads, descendants, descendant_downloads, "
                                             "downloads or likes.")] = "sub_tree_downloads",
        task: Annotated[Optional[str], typer.Option(help="Only models with this pipeline_tag.")] = None,
        component: Annotated[Optional[int], typer.Option(help="Only this component (0 = biggest).")] = None,
        per: Annotated[Optional[str], typer.Option(help="Rank within each 'component' or 'task'.")] = None,
        limit: Annotated[int, typer.Option(help="Rows (per group).")] = 20) -> None:
    """The most influential models: ranked by sub-tree downloads or descendant counts."""
    from modelatlas.analytics.impact import top_models
    from modelatlas.atlas.atlas import Atlas

    fmt = resolve_format(fmt, as_json)
    out = Results(fmt) if fmt != "json" else None

    rows = top_models(Atlas.load(atlas).facts, by, task=task, component=component, per=per, limit=limit)
    if fmt == "json":
        emit_json({"by": by, "task": task, "component": component, "per": per, "rows": rows})
        return
    out.records(f"top models by {by}", rows)


def impute(what: Annotated[str, typer.Option("--what", help="Attribute (pipeline_tag, library_name, model_type, "
                                                         "license, relation_type, ...) or metric name.")],
           atlas: AtlasPath = DEFAULT_ATLAS_PATH, fmt: FormatOpt = None,
           as_json: JsonFlag = False,
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
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.atlas.store import writing
    from modelatlas.impute.evaluate import evaluate as run_evaluation
    from modelatlas.impute.store import impute as run_impute
    from modelatlas.impute.store import store_imputations
    from modelatlas.impute.task import build_task

    fmt = resolve_format(fmt, as_json)
    out = Results(fmt) if fmt != "json" else None

    # Stored results are written back: hold the writer lock from load to save.
    with writing(atlas) if not evaluate else nullcontext():
        loaded = Atlas.load(atlas)
        facts = loaded.facts
        task = build_task(facts, what)
        if evaluate:
            scope = None if component is None else facts.components == component
            report = run_evaluation(task, hide=hide, seeds=tuple(range(seeds)), scope=scope)
            if fmt == "json":
                emit_json(report)
                return
            out.line(f"{what} ({task.kind}): {report['known']:,} known, {report['hidden_per_seed']:,} hidden "
                     f"per seed, {len(report['seeds'])} seeds")
            out.records(f"imputation of {what}", report["results"])
            return
        table = run_impute(task, method, k)
        store_imputations(loaded, table)
        loaded.save(atlas)
    summary = {"what": what, "kind": task.kind, "method": table["method"][0].as_py() if table.num_rows else method,
               "known": int(task.known.sum()), "imputed": table.num_rows, "atlas": str(atlas)}
    if fmt == "json":
        emit_json({**summary, "sample": table.slice(0, 20).to_pylist()})
        return
    say(f"imputed {what} for {table.num_rows:,} models ({summary['known']:,} known) with "
        f"{summary['method']}; stored in table 'imputations' of {atlas}")


def forensics(model_id: Annotated[Optional[str], typer.Argument(help="Model to examine.")] = None,
              atlas: AtlasPath = DEFAULT_ATLAS_PATH, fmt: FormatOpt = None,
              as_json: JsonFlag = False,
              licences: Annotated[bool, typer.Option("--licences", help="Licence drift over the whole atlas.")] = False,
              limit: Annotated[int, typer.Option(help="Rows to list per section.")] = 50) -> None:
    """Model forensics: ancestry, inherited datasets, licence drift and every descendant an issue in
    MODEL_ID would reach; or, with --licences, every licence drift in the atlas."""
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.discover.forensics import model_forensics
    from modelatlas.discover.licence_forensics import licence_drift
    from modelatlas.errors import InputError

    fmt = resolve_format(fmt, as_json)
    out = Results(fmt) if fmt != "json" else None

    if not licences and not model_id:
        raise InputError("name a MODEL_ID, or pass --licences for the whole atlas")
    facts = Atlas.load(atlas).facts
    if licences:
        report = licence_drift(facts, limit=limit)
        if fmt == "json":
            emit_json(report)
            return
        out.line(f"{report['cases']:,} models declare a licence more permissive than a restrictive ancestor's "
                      f"({report['models_with_ranked_licence']:,} models have a ranked licence)")
        out.records("drift by licence pair", [{"pair": k, "models": v} for k, v in list(report["by_pair"].items())[:20]])
        out.records("cases (most downloaded first)", report["rows"],
                    ["child", "child_licence", "ancestor", "ancestor_licence", "distance", "path"])
        return
    report = model_forensics(facts, model_id, limit=limit)
    if fmt == "json":
        emit_json(report)
        return
    out.line(f"{model_id}: {len(report['ancestors'])} ancestors, "
                  f"{report['issue_propagation']['affected']:,} descendants")
    out.records("ancestry", report["ancestors"])
    out.records("paths to the sources", [{"source": k, "path": v} for k, v in report["paths"].items()])
    lineage = report["data_lineage"]
    out.line(f"own datasets: {', '.join(lineage['own']) or '-'}")
    out.records("inherited datasets", lineage["inherited"])
    out.records("licence drift against ancestors", report["licence_drift"])
    out.records("descendants an issue here would reach", report["issue_propagation"]["rows"])


def search(atlas: AtlasPath = DEFAULT_ATLAS_PATH, fmt: FormatOpt = None,
           as_json: JsonFlag = False,
           descendants_of: Annotated[Optional[str], typer.Option(help="Only descendants of this model.")] = None,
           task: Annotated[Optional[str], typer.Option(help="pipeline_tag.")] = None,
           licence: Annotated[Optional[str], typer.Option("--licence", "--license", help="Licence id.")] = None,
           library: Annotated[Optional[str], typer.Option(help="library_name.")] = None,
           max_params: Annotated[Optional[float], typer.Option(help="At most this many parameters.")] = None,
           min_downloads: Annotated[Optional[float], typer.Option(help="At least this many downloads.")] = None,
           rank_by: Annotated[str, typer.Option(help="downloads, sub_tree_downloads, descendants, likes, "
                                                     "descendant_downloads or score:<metric>.")] = "downloads",
           no_imputed: Annotated[bool, typer.Option("--no-imputed", help="Ignore imputed values.")] = False,
           transfer_to: Annotated[Optional[str], typer.Option(
               help="Instead: models likely to transfer to this task (graph branch-and-bound).")] = None,
           metric: Annotated[Optional[str], typer.Option(help="Seed quality metric for --transfer-to.")] = None,
           decay: Annotated[float, typer.Option(help="Score decay per step for --transfer-to.")] = 0.5,
           limit: Annotated[int, typer.Option(help="Results.")] = 20) -> None:
    """Find models by traits and lineage together, each with the reasons it matched."""
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.discover.search import SearchQuery
    from modelatlas.discover.search import search as run_search
    from modelatlas.discover.transfer import transfer_candidates

    fmt = resolve_format(fmt, as_json)
    out = Results(fmt) if fmt != "json" else None

    facts = Atlas.load(atlas).facts
    if transfer_to:
        report = transfer_candidates(facts, transfer_to, limit=limit, decay=decay, metric=metric)
        if fmt == "json":
            emit_json(report)
            return
        out.line(f"{report['seeds']:,} models do {transfer_to}; explored {report['explored']:,} of "
                      f"{report['nodes']:,} models")
        out.records(f"models likely to transfer to {transfer_to}", report["rows"],
                    ["id", "score", "seed", "distance", "pipeline_tag", "reason"])
        return
    query = SearchQuery(descendants_of, task, licence, library, max_params, min_downloads, rank_by,
                        not no_imputed, limit)
    report = run_search(facts, query)
    if fmt == "json":
        emit_json(report)
        return
    out.line(f"{report['matches']:,} models match")
    rows = [{**r, "reasons": "; ".join(r["reasons"])} for r in report["rows"]]
    out.records("search results", rows, ["id", rank_by, "pipeline_tag", "licence", "reasons"])


def report(out: Annotated[Path, typer.Option("--out", help="Folder for report.md, report.html and figures.")],
           atlas: AtlasPath = DEFAULT_ATLAS_PATH, as_json: JsonFlag = False,
           title: Annotated[str, typer.Option(help="Report title.")] = "Model Atlas report",
           components: Annotated[int, typer.Option(help="Biggest components shown.")] = 10) -> None:
    """Write a Markdown + HTML report of the meta-ML statistics with figures."""
    from modelatlas.analytics.report import write_report
    from modelatlas.atlas.atlas import Atlas

    written = write_report(Atlas.load(atlas), out, title=title, top_components=components)
    if as_json:
        emit_json(written)
        return
    say(f"wrote {written['markdown']}, {written['html']} and {len(written['figures'])} figures")


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
    app.command("top")(top)
    app.command("impute")(impute)
    app.command("forensics")(forensics)
    app.command("search")(search)
    app.command("report")(report)
