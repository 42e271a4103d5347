"""Charting commands: ``chart`` (predict lineage of a zoo) and ``bench chart`` (compare methods)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from modelatlas.commands.common import JsonFlag, console, emit_json

ZooDir = Annotated[Path, typer.Argument(help="Zoo folder holding manifest.json and weights files.")]
MethodOpt = Annotated[str, typer.Option("--method", "-m", help="Charting method: auto, atlas, mother, "
                                         "random, random-root, majority, price.")]
AtlasOpt = Annotated[Optional[Path], typer.Option("--atlas", "-a", help="Write predicted edges into this "
                                                   "atlas (DuckDB; created if absent).")]
StemOpt = Annotated[float, typer.Option("--stem", help="Share of each component given with its true "
                                        "parents (Model Atlas protocol uses 0.1).")]
ComponentsOpt = Annotated[bool, typer.Option("--components-known/--components-unknown",
                                             help="Tell methods the true families (paper protocol).")]


def chart(zoo_dir: ZooDir, method: MethodOpt = "auto", atlas: AtlasOpt = None, stem: StemOpt = 0.0,
          components_known: ComponentsOpt = False, seed: int = 0, as_json: JsonFlag = False) -> None:
    """Chart a zoo: predict every model's parents from its weights, times and what is known."""
    import time

    import pyarrow as pa

    from modelatlas.chart import get_method
    from modelatlas.chart.evaluate import accuracy, edge_accuracy, sample_stem
    from modelatlas.chart.zoo_input import load_zoo_input

    estimator = get_method(method)
    data = load_zoo_input(zoo_dir)
    models, truth = data.models, data.truth
    has_truth = truth is not None and any(p is not None for p in truth.parents)
    known = sample_stem(truth, fraction=stem, seed=seed) if (stem > 0 and has_truth) else {}
    if components_known and has_truth:
        from dataclasses import replace

        models = replace(models, components=truth.component)
    t0 = time.perf_counter()
    result = estimator.chart(models, known_edges=known)
    seconds = time.perf_counter() - t0
    messages = data.messages + result.messages
    if len(models) == 1:
        messages.append("a single model: nothing to chart, it is a root")
    edges = result.to_table(models.ids)
    out = {"method": method, "zoo": str(zoo_dir), "n_models": len(models), "n_edges": edges.num_rows,
           "seconds": round(seconds, 4), "accuracy": None, "edge_accuracy": None, "messages": messages}
    if has_truth:
        out["accuracy"] = accuracy(result, truth, known)
        out["edge_accuracy"] = edge_accuracy(result, truth)
    if atlas is not None:
        from modelatlas.atlas.atlas import Atlas
        from modelatlas.atlas.store import writing

        evidence = pa.table({
            "parent": edges["parent"], "child": edges["child"], "relation": edges["relation"],
            "relation_rule": pa.array(["predicted"] * edges.num_rows, pa.string()),
            "provenance": pa.array([f"predicted:{method}"] * edges.num_rows, pa.string()),
            "confidence": edges["confidence"],
            "source": pa.array([f"chart:{Path(zoo_dir).name}"] * edges.num_rows, pa.string()),
        })
        records = pa.Table.from_pylist(data.records)
        with writing(atlas):  # from load to save, so that a concurrent writer's data is not lost
            base = Atlas.load(atlas) if atlas.exists() else Atlas.empty()
            base.merged_with(records, evidence).save(atlas)
        out["atlas"] = str(atlas)
    if as_json:
        emit_json(out)
        return
    for msg in messages:
        console.print(f"[yellow]note:[/] {msg}")
    table = Table(title=f"chart {zoo_dir} --method {method}")
    for col in ("parent", "child", "relation", "confidence"):
        table.add_column(col)
    for row in edges.to_pylist()[:50]:
        table.add_row(row["parent"], row["child"], row["relation"], f"{row['confidence']:.2f}")
    console.print(table)
    if edges.num_rows > 50:
        console.print(f"... {edges.num_rows - 50} more edges")
    summary = f"{len(models)} models, {edges.num_rows} edges, {seconds:.2f} s"
    if out["accuracy"] is not None:
        summary += f", accuracy {out['accuracy']:.1%} (edge accuracy {out['edge_accuracy']:.1%})"
    console.print(summary)


def bench_chart(zoo: Annotated[list[Path], typer.Option("--zoo", help="Zoo folder (repeatable).")] = [],
                synthetic: Annotated[int, typer.Option("--synthetic", help="Also a synthetic mixed zoo of "
                                                       "this many models (0: none).")] = 0,
                seeds: Annotated[int, typer.Option("--seeds", help="Number of stem seeds.")] = 3,
                ablations: Annotated[bool, typer.Option("--ablations/--no-ablations")] = True,
                components_known: ComponentsOpt = True,
                no_times: Annotated[bool, typer.Option("--no-times", help="Also every zoo without upload "
                                                       "times (rows shuffled, so input order says nothing).")] = False,
                as_json: JsonFlag = False) -> None:
    """Every charting method on every zoo: Table 2, the ablations (Table 3) and per-pattern accuracy."""
    from modelatlas.chart.bench import BenchZoo, run_bench, without_times
    from modelatlas.chart.synthetic import synthetic_zoo
    from modelatlas.chart.zoo_input import load_zoo_input
    from modelatlas.errors import InputError

    zoos = []
    for path in zoo:
        data = load_zoo_input(path)
        for msg in data.messages:
            console.print(f"[yellow]note:[/] {path}: {msg}")
        if data.truth is None or all(p is None for p in data.truth.parents):
            console.print(f"[yellow]note:[/] {path}: no ground truth; skipped")
            continue
        zoos.append(BenchZoo(Path(path).name, data.models, data.truth))
    if synthetic:
        z = synthetic_zoo(synthetic, seed=7)
        zoos.append(BenchZoo(f"synthetic-{synthetic}", z.models, z.truth))
    if not zoos:
        raise InputError("give at least one --zoo with ground truth, or --synthetic N")
    if no_times:
        zoos += [without_times(z) for z in zoos]
    report = run_bench(zoos, seeds=tuple(range(seeds)), with_ablations=ablations,
                       components_known=components_known)
    if as_json:
        emit_json(report)
        return
    _print_matrix("Accuracy (%), Model Atlas protocol — methods × zoos", report["results"], zoos)
    if report["ablations"]:
        _print_matrix("Ablations: one rule removed (accuracy %)", report["ablations"], zoos)
    patterns = sorted({p for r in report["results"] for p in r["per_pattern"]})
    for z in zoos:
        t = Table(title=f"Per-pattern accuracy (%) on {z.name}")
        t.add_column("method")
        for p in patterns:
            t.add_column(p, justify="right")
        for r in report["results"]:
            if r["zoo"] == z.name:
                t.add_row(r["method"], *(f"{100 * r['per_pattern'][p]:.1f}" if p in r["per_pattern"] else "-"
                                         for p in patterns))
        console.print(t)


def _print_matrix(title: str, rows: list[dict], zoos) -> None:
    t = Table(title=title)
    t.add_column("method")
    for z in zoos:
        t.add_column(z.name, justify="right")
        t.add_column("s", justify="right")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["zoo"]): r for r in rows}
    for m in methods:
        vals = []
        for z in zoos:
            r = cell.get((m, z.name))
            vals += ([f"{100 * r['accuracy']:.1f} ± {100 * r['accuracy_std']:.1f}", f"{r['seconds']:.2f}"]
                     if r else ["-", "-"])
        t.add_row(m, *vals)
    console.print(t)


def _bench_group(app: typer.Typer) -> typer.Typer:
    """The ``bench`` sub-command group, shared with other rooms (created by the first to ask)."""
    for info in app.registered_groups:
        if info.name == "bench":
            return info.typer_instance
    group = typer.Typer(help="Benchmarks that print tables (speed and accuracy).", no_args_is_help=True)
    app.add_typer(group, name="bench")
    return group


def register(app: typer.Typer) -> None:
    app.command("chart")(chart)
    _bench_group(app).command("chart")(bench_chart)
