"""Options and helpers shared by every sub-command (output conventions: :mod:`.output`, docs/cli.md)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from modelatlas.atlas.store import DEFAULT_ATLAS
from modelatlas.commands.output import OutputFormat, Results, diagnostics, emit_json, note, resolve_format, say

__all__ = ["DEFAULT_ATLAS_PATH", "AtlasPath", "FormatOpt", "JsonFlag", "Results", "diagnostics", "emit_json", "note",
           "OutputFormatOpt", "progress", "resolve_format", "say"]

AtlasPath = Annotated[Path, typer.Option("--atlas", "-a", help="Atlas database file (DuckDB).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document for machines "
                                        "(the same as --format json).")]
_FORMAT_HELP = ("Output: table (drawn), tsv (tab-separated, a header row per table) or json. "
                "Default: table on a terminal, tsv when piped or redirected.")
FormatOpt = Annotated[Optional[OutputFormat], typer.Option("--format", "--output-format", help=_FORMAT_HELP)]
#: ``ingest`` and ``export`` use ``--format`` for what they read or write.
OutputFormatOpt = Annotated[Optional[OutputFormat], typer.Option("--output-format", help=_FORMAT_HELP)]
DEFAULT_ATLAS_PATH = DEFAULT_ATLAS


@contextmanager
def progress(description: str, total: float | None = None, *, enabled: bool = True):
    """A Rich progress bar on standard error, drawn only on a terminal; yields ``advance(n)``."""
    console = diagnostics()
    if not enabled or not console.is_terminal:
        yield lambda n=1: None
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed:>.0f}/{task.total:>.0f}" if total else ""), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
