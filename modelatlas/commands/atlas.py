"""Commands over a stored atlas: ``info`` (more are added by the ingest room)."""

from __future__ import annotations

import typer

from modelatlas.commands.common import (DEFAULT_ATLAS_PATH, AtlasPath, FormatOpt, JsonFlag, Results, emit_json,
                                        resolve_format)


def info(atlas: AtlasPath = DEFAULT_ATLAS_PATH, fmt: FormatOpt = None, as_json: JsonFlag = False) -> None:
    """Summarise an atlas: nodes, placeholders, edges by relation and provenance, components."""
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.atlas.summary import summarize

    fmt = resolve_format(fmt, as_json)
    summary = summarize(Atlas.load(atlas))
    if fmt == "json":
        emit_json(summary)
        return
    Results(fmt).fields(f"atlas {atlas}", summary.items())


def register(app: typer.Typer) -> None:
    app.command("info")(info)
