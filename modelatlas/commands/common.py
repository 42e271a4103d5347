"""Options and output helpers shared by every sub-command."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from modelatlas.atlas.store import DEFAULT_ATLAS
from modelatlas.jsonio import dumps_text

console = Console(stderr=True)

AtlasPath = Annotated[Path, typer.Option("--atlas", "-a", help="Atlas database file (DuckDB).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines.")]
DEFAULT_ATLAS_PATH = DEFAULT_ATLAS


def emit_json(obj: Any) -> None:
    """Print ``obj`` as one JSON document on standard output (:func:`modelatlas.jsonio.dumps`:
    NaN and infinities as null)."""
    typer.echo(dumps_text(obj))


@contextmanager
def progress(description: str, total: float | None = None, *, enabled: bool = True):
    """A Rich progress bar on standard error; yields ``advance(n)``."""
    if not enabled:
        yield lambda n=1: None
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed:>.0f}/{task.total:>.0f}" if total else ""), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
