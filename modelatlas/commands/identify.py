"""Provenance commands: ``index add`` (reference models into a fingerprint store) and ``identify``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from modelatlas.commands.common import FormatOpt, JsonFlag, Results, emit_json, note, progress, resolve_format, say

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
    from modelatlas.chart.identify import ReferenceSearch
    from modelatlas.errors import InputError
    from modelatlas.weights.discover import add_paths_to_store
    from modelatlas.weights.store import FingerprintStore

    if index.suffix != ".parquet":
        raise InputError("the reference index is a fingerprint store: give --index NAME.parquet", path=str(index))
    store = FingerprintStore.open(index)
    added, messages = add_paths_to_store(
        paths, store, mtime_fallback=mtime,
        progress=lambda n: progress("fingerprinting", total=n, enabled=not as_json),
        n_neurons=neurons, layers=layers, seed=seed, project=project)
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
        note(msg)
    say(f"{index}: {len(added)} reference models added, {len(store)} in all ({len(store.plans)} fingerprint plans)")


def identify(
    model: Annotated[str, typer.Argument(help="A weights file or model folder, or the id of a model in the store.")],
    index: IndexOpt,
    candidates: Annotated[int, typer.Option("--candidates", help="Nearest references examined.")] = 24,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild the cached search index.")] = False,
    fmt: FormatOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Where does a model come from: nearest known models, most likely parent and relation, with evidence."""
    from modelatlas.chart.identify import identify as run_identify

    fmt = resolve_format(fmt, as_json)
    answer = run_identify(model, index, n_candidates=candidates, rebuild=rebuild)
    if fmt == "json":
        emit_json(answer.to_dict())
        return
    for msg in answer.messages:
        note(msg)
    out = Results(fmt)
    line = f"{answer.model}: {answer.verdict}"
    if answer.confidence is not None:
        line += f" (confidence {answer.confidence:.2f}, rule {answer.rule})"
    out.line(line)
    if answer.nearest:
        out.table("nearest known models", ["id", "distance", "relative_distance", "quantized"],
                  [[n["id"], n["distance"], n["relative_distance"], n["quantized"]] for n in answer.nearest])
    if answer.evidence:
        out.fields("evidence", answer.evidence.items())


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Reference stores that `identify` searches.", no_args_is_help=True)
    group.command("add")(index_add)
    app.add_typer(group, name="index")
    app.command("identify")(identify)
