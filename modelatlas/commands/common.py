"""Options and output helpers shared by every sub-command."""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from modelatlas.atlas.store import DEFAULT_ATLAS

console = Console(stderr=True)

AtlasPath = Annotated[Path, typer.Option("--atlas", "-a", help="Atlas database file (DuckDB).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines.")]
DEFAULT_ATLAS_PATH = DEFAULT_ATLAS


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def emit_json(obj: Any) -> None:
    """Print ``obj`` as one JSON document on standard output (NaN and infinities as null)."""
    typer.echo(json.dumps(_plain(obj), ensure_ascii=False))


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
