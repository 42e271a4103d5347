"""Provenance commands: ``index add`` (reference models into a fingerprint store) and ``identify``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from modelatlas.commands.common import JsonFlag, console, emit_json, progress

IndexOpt = Annotated[Path, typer.Option("--index", "-i", help="Reference fingerprint store (.parquet).")]


def index_add(
    paths: Annotated[list[Path], typer.Argument(help="Reference models: weights files, Hugging Face model "
                                                "folders or cache entries, zoo folders, fingerprint stores.")],
    index: IndexOpt,
    neurons: Annotated[int, typer.Option("--neurons", "-n", help="Rows sampled per layer.")] = 100,
    layers: Annotated[str, typer.Option("--layers", help="Layer selection (see `fingerprint --help`).")] = "dense",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the row sample.")] = 0,
    project: Annotated[Optional[int], typer.Option("--project", help="Project fingerprints to this many "
                       "dimensions (smaller store; no per-layer evidence).")] = None,
    mtime: Annotated[bool, typer.Option("--mtime/--no-mtime", help="Record file modification times when no "
                                        "upload time is documented (flagged).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add reference models to a store that `identify` searches (models already there are skipped)."""
    from rich.markup import escape

    from modelatlas.chart.identify import ReferenceSearch
    from modelatlas.chart.model_paths import discover_models
    from modelatlas.errors import InputError
    from modelatlas.weights.store import FingerprintStore, fingerprint_into_store

    if index.suffix != ".parquet":
        raise InputError("the reference index is a fingerprint store: give --index NAME.parquet", path=str(index))
    store = FingerprintStore.open(index)
    stores = [p for p in paths if p.suffix == ".parquet" and p.is_file()]
    added: list[str] = []
    for p in stores:
        added += store.add_store(FingerprintStore.open(p, must_exist=True))
    found = discover_models([p for p in paths if p not in stores], mtime_fallback=mtime)
    messages = list(found.messages)
    with progress("fingerprinting", total=len(found.models), enabled=not as_json) as advance:
        more_ids, more = fingerprint_into_store([(m.weights, m.meta) for m in found.models], store,
                                                n_neurons=neurons, layers=layers, seed=seed, project=project,
                                                progress=advance)
    added += more_ids
    messages += more
    if added:
        store.save(index)
    plans = sorted({key for key, model_id in zip(store.rows["plan"].to_pylist(), store.rows["id"].to_pylist())
                    if model_id in set(added)})
    for plan in plans:  # build the search index now, not at the first query
        ReferenceSearch(index, plan, rebuild=True)
    report = {"index": str(index), "added": len(added), "models": len(store), "plans": len(store.plans),
              "messages": messages}
    if as_json:
        emit_json(report)
        return
    for msg in messages:
        console.print(f"[yellow]note:[/yellow] {escape(msg)}", highlight=False)
    console.print(f"{index}: {len(added)} reference models added, {len(store)} in all "
                  f"({len(store.plans)} fingerprint plans)", highlight=False)


def identify(
    model: Annotated[str, typer.Argument(help="A weights file or model folder, or the id of a model in the store.")],
    index: IndexOpt,
    candidates: Annotated[int, typer.Option("--candidates", help="Nearest references examined.")] = 24,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild the cached search index.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Where does a model come from: nearest known models, most likely parent and relation, with evidence."""
    from rich.markup import escape
    from rich.table import Table

    from modelatlas.chart.identify import identify as run_identify

    answer = run_identify(model, index, n_candidates=candidates, rebuild=rebuild)
    if as_json:
        emit_json(answer.to_dict())
        return
    for msg in answer.messages:
        console.print(f"[yellow]note:[/yellow] {escape(msg)}", highlight=False)
    line = f"{answer.model}: {answer.verdict}"
    if answer.confidence is not None:
        line += f" (confidence {answer.confidence:.2f}, rule {answer.rule})"
    console.print(line, highlight=False, markup=False)
    if answer.nearest:
        table = Table(title="nearest known models")
        for col in ("model", "distance", "relative distance", "quantised"):
            table.add_column(col)
        for n in answer.nearest:
            table.add_row(n["id"], f"{n['distance']:.4g}", f"{n['relative_distance']:.3f}",
                          "yes" if n["quantized"] else "")
        console.print(table)
    for key, value in answer.evidence.items():
        console.print(f"  {key}: {value}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Reference stores that `identify` searches.", no_args_is_help=True)
    group.command("add")(index_add)
    app.add_typer(group, name="index")
    app.command("identify")(identify)
