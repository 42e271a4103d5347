"""A progress bar for engine runs on standard error: done / failed / rate / ETA (Rich)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeRemainingColumn)
from rich.text import Text


class _Rate(ProgressColumn):
    """Items per second over the run so far (Rich's speed estimate)."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-/s" if speed is None else f"{speed:,.1f}/s")


class Tally:
    """What a run has done so far; ``done(n)`` and ``failed(n)`` advance the bar."""

    def __init__(self, bar: Progress | None, task) -> None:
        self._bar, self._task = bar, task
        self.n_done = 0
        self.n_failed = 0

    def done(self, n: int = 1) -> None:
        self.n_done += n
        self._advance(n)

    def failed(self, n: int = 1) -> None:
        self.n_failed += n
        self._advance(n)

    def _advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=n, failed=self.n_failed)


@contextmanager
def engine_progress(description: str, total: int, *, enabled: bool = True,
                    console: Console | None = None) -> Iterator[Tally]:
    """A Rich progress bar of ``total`` items (models, families) on standard error.

    Parameters
    ----------
    description:
        What is counted, e.g. ``fingerprinting (ray, 4 workers)``.
    total:
        Items in all.
    enabled:
        False for ``--json`` (nothing is drawn; the tally still counts).
    console:
        Where to draw (default: standard error; Rich honours ``NO_COLOR`` and a non-terminal).
    """
    if not enabled:
        yield Tally(None, None)
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("failed {task.fields[failed]}"), _Rate(), TimeRemainingColumn()]
    with Progress(*columns, console=console or Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total, failed=0)
        yield Tally(bar, task)
