"""``modelatlas synth``: write the embedded default data set, a synthetic Hub-like ecosystem."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelatlas.commands.common import JsonFlag, emit_json, progress, say


def synth(
    models: Annotated[int, typer.Option("--models", "-n", min=1, help="Number of models in the hub file.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the file is a function of (models, seed).")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Hub-stats-style Parquet file to write.")]
    = Path("synthetic-hub.parquet"),
    card_text: Annotated[bool, typer.Option(
        "--card-text/--no-card-text",
        help="Write the README text in a 'card' column (the real hub-stats file has none).")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Write a synthetic Hub-like ecosystem as a hub-stats Parquet file (+ <out>.truth.parquet).

    Its statistics follow the Model Atlas and Anatomy papers (docs/synthetic-hub.md).
    """
    import numpy as np

    from modelatlas.errors import InputError
    from modelatlas.zoo.synthetic_hub import generate, write_hub

    if out.exists() and out.is_dir():
        raise InputError("is a folder; give a .parquet file name", path=str(out))
    with progress("generating the ecosystem", enabled=not as_json):
        hub = generate(models, seed)
    with progress("writing the hub file", total=int((~hub.deleted).sum()), enabled=not as_json) as advance:
        try:
            path, truth = write_hub(hub, out, card_text=card_text, on_chunk=advance)
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror or exc}", path=str(out)) from exc
    summary = {
        "out": str(path), "truth": str(truth), "models": int((~hub.deleted).sum()), "seed": seed,
        "edges": int(hub.edge_child.size),
        "families": int(np.unique(hub.family[hub.family >= 0]).size),
        "deleted_parents": int(hub.deleted.sum()),
    }
    if as_json:
        emit_json(summary)
    else:
        say(f"wrote {summary['models']:,} models and {summary['edges']:,} parent links to {path} "
            f"(ground truth: {truth})")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
