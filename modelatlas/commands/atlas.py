"""Commands over a stored atlas: ``info`` (more are added by the ingest room)."""

from __future__ import annotations

import typer
from rich.table import Table

from modelatlas.commands.common import DEFAULT_ATLAS_PATH, AtlasPath, JsonFlag, console, emit_json


def info(atlas: AtlasPath = DEFAULT_ATLAS_PATH, as_json: JsonFlag = False) -> None:
    """Summarise an atlas: nodes, placeholders, edges by relation and provenance, components."""
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.atlas.summary import summarize

    summary = summarize(Atlas.load(atlas))
    if as_json:
        emit_json(summary)
        return
    table = Table(title=f"atlas {atlas}", show_header=False)
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:,}" for k, v in value.items()) or "-"
        elif isinstance(value, int):
            value = f"{value:,}"
        table.add_row(key, str(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
