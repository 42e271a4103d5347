"""Charting commands: ``chart`` (predict lineage of a zoo) and ``bench chart`` (compare methods)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from modelatlas.commands.common import FormatOpt, JsonFlag, Results, emit_json, note, resolve_format
from modelatlas.engine.options import AddressOpt, EngineOpt, FallbackOpt, WorkersOpt, executor_from_options

ChartPaths = Annotated[list[Path], typer.Argument(help="Zoo folder (manifest.json), model files, Hugging Face "
                                                   "model folders or cache entries, or fingerprint stores (.parquet).")]
MethodOpt = Annotated[str, typer.Option("--method", "-m", help="Charting method: auto, atlas, mother, "
                                         "random, random-root, majority, price.")]
AtlasOpt = Annotated[Optional[Path], typer.Option("--atlas", "-a", help="Write predicted edges into this "
                                                   "atlas (DuckDB; created if absent).")]
StemOpt = Annotated[float, typer.Option("--stem", help="Share of each component given with its true "
                                        "parents (Model Atlas protocol uses 0.1).")]
ComponentsOpt = Annotated[bool, typer.Option("--components-known/--components-unknown",
                                             help="Tell methods the true families (paper protocol).")]
StoreOpt = Annotated[Optional[Path], typer.Option("--store", help="Fingerprint store (.parquet) to read "
                                                   "fingerprints from and add new ones to.")]
MtimeOpt = Annotated[bool, typer.Option("--mtime/--no-mtime", help="Without a documented upload time, use "
                                        "the weights file's modification time (flagged per model).")]


def chart(paths: ChartPaths, method: MethodOpt = "auto", atlas: AtlasOpt = None, stem: StemOpt = 0.0,
          components_known: ComponentsOpt = False, seed: int = 0, store: StoreOpt = None,
          mtime: MtimeOpt = False, engine: EngineOpt = "local", address: AddressOpt = None,
          fallback_local: FallbackOpt = False, workers: WorkersOpt = None,
          block_size: Annotated[Optional[int], typer.Option(
              "--block-size", help="Chart a family of more models in approximate-neighbour blocks of at most "
                                   "this many (parallel; edges between blocks are lost). Default: no split.")] = None,
          limit: Annotated[int, typer.Option(
              "--limit", min=0, help="Edges drawn in a table (0: all; TSV and JSON list every edge).")] = 50,
          fmt: FormatOpt = None, as_json: JsonFlag = False) -> None:
    """Chart models: predict every model's parents from its weights, times and documented parents."""
    import time

    from modelatlas.chart import get_method
    from modelatlas.chart.evaluate import accuracy, edge_accuracy, sample_stem
    from modelatlas.chart.evidence import documented_relations, evidence_rows

    fmt = resolve_format(fmt, as_json)
    estimator = get_method(method)
    if block_size is not None and block_size < 2:
        from modelatlas.errors import InputError

        raise InputError(f"--block-size must be at least 2, not {block_size}", where="--block-size")
    executor = executor_from_options(engine, address, fallback_local, workers)
    zoo_run = len(paths) == 1 and store is None and _is_zoo(paths[0])
    if zoo_run:
        from modelatlas.chart.zoo_input import load_zoo_input

        data = load_zoo_input(paths[0])
        models, truth, records, messages, notes = data.models, data.truth, data.records, list(data.messages), {}
        known_edges: dict = {}
        declared: dict = {}
    else:
        loaded = _models_from_paths(paths, store, mtime, quiet=fmt == "json", executor=executor)
        models, records, messages, notes = loaded.models, loaded.records, loaded.messages, loaded.notes
        declared, truth = loaded.declared, _zoo_truth(paths, models.ids)
        known_edges = dict(models.documented_parents)
    has_truth = truth is not None and any(p is not None for p in truth.parents)
    known = sample_stem(truth, fraction=stem, seed=seed) if (stem > 0 and has_truth) else {}
    if components_known and has_truth:
        from dataclasses import replace

        models = replace(models, components=truth.component)
    t0 = time.perf_counter()
    with executor:
        result = estimator.chart(models, known_edges={**known_edges, **known}, executor=executor,
                                 block_size=block_size, bar=not as_json)
    seconds = time.perf_counter() - t0
    messages = messages + result.messages
    if len(models) == 1:
        messages.append("a single model: nothing to chart, it is a root")
    edges = documented_relations(result.to_table(models.ids), models, known_edges, declared)
    out = {"method": method, "zoo" if zoo_run else "paths": str(paths[0]) if zoo_run else [str(p) for p in paths],
           "n_models": len(models), "n_edges": edges.num_rows,
           "seconds": round(seconds, 4), "accuracy": None, "edge_accuracy": None, "messages": messages,
           "model_notes": notes}
    if has_truth:
        out["accuracy"] = accuracy(result, truth, known)
        out["edge_accuracy"] = edge_accuracy(result, truth, known)
    if atlas is not None:
        import pyarrow as pa

        from modelatlas.atlas.atlas import Atlas
        from modelatlas.atlas.store import writing

        source = f"chart:{Path(paths[0]).name}" if zoo_run else "chart:paths"
        evidence = evidence_rows(edges, models.ids, known_edges, method, source)
        with writing(atlas):  # from load to save, so that a concurrent writer's data is not lost
            base = Atlas.load(atlas) if atlas.exists() else Atlas.empty()
            base.merged_with(pa.Table.from_pylist(records), evidence).save(atlas)
        out["atlas"] = str(atlas)
    rows = edges.select(["parent", "child", "relation", "relation_rule", "confidence"]).to_pylist()
    if fmt == "json":
        emit_json({**out, "edges": rows})
        return
    for msg in messages:
        note(msg)
    for model_id, lines in notes.items():
        for line in lines:
            note(f"{model_id}: {line}")
    report = Results(fmt)
    shown = rows[:limit] if fmt == "table" and limit else rows
    report.table(f"chart {', '.join(map(str, paths))} --method {method}",
                 ["parent", "child", "relation", "confidence"],
                 [[r["parent"], r["child"], r["relation"], r["confidence"]] for r in shown])
    if len(shown) < len(rows):
        report.line(f"... {len(rows) - len(shown)} more edges (--limit 0, --format tsv or --json list them all)")
    summary = f"{len(models)} models, {edges.num_rows} edges, {seconds:.2f} s"
    if out["accuracy"] is not None:
        summary += f", accuracy {out['accuracy']:.1%} (edge accuracy {out['edge_accuracy']:.1%})"
    report.line(summary)


def _zoo_truth(paths: list[Path], ids: list[str]):
    """Ground truth when every path is a zoo (e.g. a zoo charted through ``--store``), else None."""
    from modelatlas.chart.zoo_input import zoo_truth
    from modelatlas.zoo.manifest import load_manifest

    if not paths or not all(_is_zoo(p) for p in paths):
        return None
    zoo_models = [m for p in paths for m in load_manifest(p, check_files=False).models]
    if set(ids) - {m.id for m in zoo_models}:
        return None  # the store holds models of no manifest given: no truth for them
    return zoo_truth(ids, zoo_models)


def _is_zoo(path: Path) -> bool:
    return path.name == "manifest.json" or (path.is_dir() and (path / "manifest.json").is_file())


def _models_from_paths(paths: list[Path], store_path: Path | None, mtime: bool, quiet: bool, executor=None):
    """Fingerprint what the paths hold (reusing the store's fingerprints) and read it back for charting."""
    from modelatlas.chart.store_input import chart_input_from_paths
    from modelatlas.weights.store import FingerprintStore

    work = FingerprintStore.open(store_path) if store_path is not None else FingerprintStore.empty()
    loaded, added = chart_input_from_paths(paths, work, mtime_fallback=mtime, executor=executor, bar=not quiet)
    if added and store_path is not None:
        work.save(store_path)
    guessed = work.rows["created_at_source"].to_pylist().count("file_mtime")
    if guessed:
        loaded.messages.append(f"{guessed} models have no documented upload time: their files' modification "
                               "times were used (--no-mtime leaves them unknown)")
    return loaded


def bench_chart(zoo: Annotated[list[Path], typer.Option("--zoo", help="Zoo folder (repeatable).")] = [],
                synthetic: Annotated[int, typer.Option("--synthetic", help="Also a synthetic mixed zoo of "
                                                       "this many models (0: none).")] = 0,
                seeds: Annotated[int, typer.Option("--seeds", help="Number of stem seeds.")] = 3,
                ablations: Annotated[bool, typer.Option("--ablations/--no-ablations")] = True,
                components_known: ComponentsOpt = True,
                no_times: Annotated[bool, typer.Option("--no-times", help="Also every zoo without upload "
                                                       "times (rows shuffled, so input order says nothing).")] = False,
                families: Annotated[list[str], typer.Option(
                    "--families", help="Score leave-one-family-out: a zoo folder, or FAMILY=DIR (repeatable); "
                    "the family is the manifest's 'family' (else its 'name'). --synthetic N adds a "
                    "'synthetic' family.")] = [],
                method: Annotated[list[str], typer.Option(
                    "--method", help="Charting method to score (repeatable; default: every method).")] = [],
                fmt: FormatOpt = None, as_json: JsonFlag = False) -> None:
    """Every charting method on every zoo: Table 2, the ablations (Table 3) and per-pattern accuracy;
    with --families, leave-one-family-out (mean and worst family, calibration error, rule sign test)."""
    from modelatlas.chart import get_method
    from modelatlas.chart.bench import BenchZoo, run_bench, without_times
    from modelatlas.chart.synthetic import synthetic_zoo
    from modelatlas.errors import InputError

    fmt = resolve_format(fmt, as_json)
    methods = [get_method(m).name for m in method] or None  # an unknown name is a one-line error
    if families:
        _bench_families(families, synthetic, seeds, ablations, components_known, no_times, fmt, methods)
        return
    zoos = [z for _, z in (_bench_zoo(path) for path in zoo) if z is not None]
    if synthetic:
        z = synthetic_zoo(synthetic, seed=7)
        zoos.append(BenchZoo(f"synthetic-{synthetic}", z.models, z.truth))
    if not zoos:
        raise InputError("give at least one --zoo with ground truth, or --synthetic N")
    if no_times:
        zoos += [without_times(z) for z in zoos]
    report = run_bench(zoos, seeds=tuple(range(seeds)), with_ablations=ablations,
                       components_known=components_known, methods=methods)
    if fmt == "json":
        emit_json(report)
        return
    out = Results(fmt)
    _print_matrix(out, "Accuracy (%), Model Atlas protocol — methods × zoos", report["results"], zoos)
    if report["ablations"]:
        _print_matrix(out, "Ablations: one rule removed (accuracy %)", report["ablations"], zoos)
    patterns = sorted({p for r in report["results"] for p in r["per_pattern"]})
    for z in zoos:
        out.table(f"Per-pattern accuracy (%) on {z.name}", ["method", *patterns],
                  [[r["method"], *(_pct(r["per_pattern"].get(p)) for p in patterns)]
                   for r in report["results"] if r["zoo"] == z.name])


def _pct(share: float | None) -> float | None:
    return None if share is None else 100 * share


def _bench_zoo(spec: str | Path):
    """``(family, BenchZoo)`` from ``DIR`` or ``FAMILY=DIR``; ``(family, None)`` without ground truth."""
    import json

    from modelatlas.chart.bench import BenchZoo
    from modelatlas.chart.zoo_input import load_zoo_input
    from modelatlas.zoo.manifest import load_manifest

    family, _, path = str(spec).rpartition("=")
    data = load_zoo_input(path)
    for msg in data.messages:
        note(f"{path}: {msg}")
    zoo = load_manifest(path, check_files=False)
    if not family:
        doc = json.loads((zoo.root / "manifest.json").read_text(encoding="utf-8"))
        family = doc.get("family") if isinstance(doc.get("family"), str) else zoo.name
    if data.truth is None or all(p is None for p in data.truth.parents):
        note(f"{path}: no ground truth; skipped")
        return family, None
    return family, BenchZoo(f"{zoo.name} ({Path(path).name})", data.models, data.truth)


def _bench_families(specs: list[str], synthetic: int, seeds: int, ablations: bool, components_known: bool,
                    no_times: bool, fmt: str, methods: list[str] | None = None) -> None:
    """``bench chart --families``: leave-one-family-out tables."""
    from modelatlas.chart.bench import BenchZoo, without_times
    from modelatlas.chart.families import group_families, leave_one_family_out
    from modelatlas.chart.synthetic import synthetic_zoo

    named = [(f, z) for f, z in (_bench_zoo(s) for s in specs) if z is not None]
    if synthetic:
        for seed in (7, 8):
            z = synthetic_zoo(synthetic, seed=seed)
            named.append(("synthetic", BenchZoo(f"synthetic-{synthetic} seed {seed}", z.models, z.truth)))
    if no_times:
        named = [(f"{f} (no times)", without_times(z)) for f, z in named]
    report = leave_one_family_out(group_families(named), seeds=tuple(range(seeds)), ablations=ablations,
                                  components_known=components_known, methods=methods)
    if fmt == "json":
        emit_json(report)
        return
    out = Results(fmt)
    fams = list(dict.fromkeys(r["family"] for r in report["results"]))
    cell = {(r["method"], r["family"]): r for r in report["results"]}
    out.table("Leave-one-family-out accuracy (%) — each family scored with maps fitted without it",
              ["method", *fams, "mean", "worst family", "worst", "max ECE"],
              [[s["method"], *(_pct(cell[s["method"], f]["accuracy"]) for f in fams), _pct(s["mean"]),
                s["worst_family"], _pct(s["worst"]), s["max_calibration_error"]] for s in report["summary"]])
    patterns = sorted({p for r in report["results"] for p in r["per_pattern"]})
    shown = ("learned", "auto", "atlas", "mother")
    out.table(f"Per-pattern accuracy (%) of {', '.join(shown)}, per family", ["family", "method", *patterns, "ECE"],
              [[r["family"], r["method"], *(_pct(r["per_pattern"].get(p)) for p in patterns),
                r["calibration_error"]] for r in report["results"] if r["method"] in shown])
    if report["ablations"]:
        delta = {(a["rule"], a["family"]): a for a in report["ablations"]}
        out.table("Ablation sign test: accuracy of auto minus auto without the rule (points)",
                  ["rule", *(c for f in fams for c in (f, f"{f} verdict"))],
                  [[rule, *(v for f in fams for v in (100 * delta[rule, f]["delta"], delta[rule, f]["verdict"]))]
                   for rule in dict.fromkeys(a["rule"] for a in report["ablations"])])


def _print_matrix(out: Results, title: str, rows: list[dict], zoos) -> None:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["zoo"]): r for r in rows}
    table = []
    for m in methods:
        vals: list = []
        for z in zoos:
            r = cell.get((m, z.name))
            vals += [100 * r["accuracy"], 100 * r["accuracy_std"], r["seconds"]] if r else [None, None, None]
        table.append([m, *vals])
    out.table(title, ["method", *(c for z in zoos for c in (z.name, f"{z.name} ±", f"{z.name} s"))], table)


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
