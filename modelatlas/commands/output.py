"""Where and how a command writes (docs/cli.md).

Results go to standard output, in one of three formats; progress, notes and errors go to standard
error. ``table`` draws Rich tables (on a terminal: folded to its width, never cut; otherwise at full
width), ``tsv`` writes tab-separated rows with a header (``# `` lines for titles and prose, a blank
line between tables), ``json`` one JSON document. Without ``--format`` a terminal gets ``table``
and a pipe or file gets ``tsv``, so that ``grep``, ``cut`` and ``sort`` see whole ids and numbers.
Colour is off under ``NO_COLOR`` (https://no-color.org) or ``--no-color``, and wherever the stream
is not a terminal.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any

from rich.console import Console
from rich.text import Text

from modelatlas.errors import InputError


class OutputFormat(str, Enum):
    """The values of ``--format``."""

    table = "table"
    tsv = "tsv"
    json = "json"


FORMATS = tuple(f.value for f in OutputFormat)

#: Width a table is drawn at when standard output is not a terminal: wide enough for any row.
UNBOUNDED_WIDTH = 1 << 20

_colour_off = False


def set_colour(enabled: bool) -> None:
    """Turn colour off (``--no-color``) or back to the environment's choice."""
    global _colour_off
    _colour_off = not enabled


def colour_off() -> bool:
    """Whether colour is switched off by ``--no-color`` or a non-empty ``NO_COLOR``."""
    return _colour_off or bool(os.environ.get("NO_COLOR"))


def _console(stream, *, unbounded: bool) -> Console:
    # color_system=None writes no escape sequence at all (bold included) when colour is off.
    kwargs: dict[str, Any] = {"file": stream, "highlight": False}
    if colour_off():
        kwargs["color_system"] = None
    if unbounded and not stream.isatty():
        kwargs["width"] = UNBOUNDED_WIDTH
    return Console(**kwargs)


def results() -> Console:
    """A console on standard output (looked up now, so that redirections made later are honoured)."""
    return _console(sys.stdout, unbounded=True)


def diagnostics() -> Console:
    """A console on standard error, for progress, notes and warnings."""
    return _console(sys.stderr, unbounded=False)


def note(message: str, *, label: str = "note") -> None:
    """One line on standard error: ``note: message`` (the message is printed as is, never as markup)."""
    line = Text(f"{label}: ", style="yellow")
    line.append(printable(message))
    diagnostics().print(line, soft_wrap=True)


def say(text: str) -> None:
    """A command's whole result when it is one sentence (``wrote F``): one line on standard output."""
    sys.stdout.write(printable(text) + "\n")


def resolve_format(fmt: str | OutputFormat | None, as_json: bool = False) -> str:
    """The output format of a command from ``--format`` and ``--json`` (an alias of ``--format json``).

    Without either: ``table`` when standard output is a terminal, else ``tsv``.
    """
    fmt = fmt.value if isinstance(fmt, OutputFormat) else fmt
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if as_json:
        if fmt not in (None, "json"):
            raise InputError(f"--json and --format {fmt} ask for two formats; give one")
        return "json"
    if fmt is not None:
        return fmt
    return "table" if sys.stdout.isatty() else "tsv"


def printable(text: str) -> str:
    """``text`` with control characters escaped: a name from a file must not drive the terminal."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or _numpy_number(value)


def _numpy_number(value: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, (np.integer, np.floating))


def table_cell(value: Any) -> str:
    """A value as a table shows it: thousands separators, two decimals (four significant digits below
    one), ``–`` for missing."""
    if _numpy_number(value):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(table_cell(v) for v in value) or "–"
    if isinstance(value, dict):
        return ", ".join(f"{k} {table_cell(v)}" for k, v in value.items()) or "–"
    return printable(str(value))


def tsv_cell(value: Any) -> str:
    """A value as TSV writes it: full precision, empty for missing, lists joined with ``|`` (a mapping
    as ``key=value|key=value``); tabs, new lines and backslashes escaped as ``\\t``, ``\\n``,
    ``\\\\`` (other control characters as Python escapes)."""
    if _numpy_number(value):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "|".join(tsv_cell(v) for v in value)
    if isinstance(value, dict):
        return "|".join(f"{tsv_cell(k)}={tsv_cell(v)}" for k, v in value.items())
    text = str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return printable(text)


class Results:
    """The results of one command in one format (``table`` or ``tsv``; JSON goes through :func:`emit_json`).

    Parameters
    ----------
    fmt:
        ``table`` or ``tsv`` (see :func:`resolve_format`).
    """

    def __init__(self, fmt: str) -> None:
        if fmt not in ("table", "tsv"):
            raise ValueError(f"Results writes tables as table or tsv, not {fmt!r}")
        self.fmt = fmt
        self._tables = 0

    def line(self, text: str) -> None:
        """A line of prose that belongs to the result (a ``# `` comment line in TSV)."""
        if self.fmt == "tsv":
            sys.stdout.write("# " + printable(text.replace("\n", " ")) + "\n")
        else:
            results().print(Text(printable(text)), soft_wrap=not sys.stdout.isatty())

    def table(self, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
              *, header: bool = True) -> None:
        """One table; ``rows`` hold raw values (numbers stay numbers; each format writes them its way)."""
        rows = [list(r) for r in rows]
        if self.fmt == "tsv":
            out = sys.stdout
            if self._tables:
                out.write("\n")
            if title:
                out.write("# " + printable(title.replace("\n", " ")) + "\n")
            out.write("\t".join(tsv_cell(c) for c in columns) + "\n")
            for r in rows:
                out.write("\t".join(tsv_cell(v) for v in r) + "\n")
        else:
            from rich.table import Table

            t = Table(title=Text(printable(title)) if title else None, show_header=header)
            for i, c in enumerate(columns):
                # overflow="fold": a narrow terminal wraps a long cell onto more lines, never cuts it.
                numeric = bool(rows) and all(_is_number(r[i]) or r[i] is None for r in rows)
                t.add_column(Text(printable(c)), justify="right" if numeric else "left", overflow="fold")
            for r in rows:
                t.add_row(*(Text(table_cell(v)) for v in r))
            results().print(t)
        self._tables += 1

    def tree(self, title: str, lines: Iterable[tuple[int, str]]) -> None:
        """A tree given as ``(depth, label)`` in drawing order, depth 0 its root (one root): a Rich
        tree as a table, indented text (two spaces a level) in TSV; the title comes first."""
        if self.fmt == "tsv" and self._tables:
            sys.stdout.write("\n")
        self.line(title)
        if self.fmt == "tsv":
            for depth, label in lines:
                sys.stdout.write("  " * depth + printable(label) + "\n")
        else:
            from rich.tree import Tree

            stack: list = []
            for depth, label in lines:
                del stack[depth:]
                text = Text(printable(label))
                stack.append(stack[-1].add(text) if stack else Tree(text))
            if stack:
                results().print(stack[0])
        self._tables += 1

    def records(self, title: str | None, rows: list[dict], columns: Sequence[str] | None = None) -> None:
        """A table of dictionaries (columns: ``columns``, else every key in order of appearance)."""
        columns = list(columns or dict.fromkeys(k for r in rows for k in r))
        self.table(title, columns, ([r.get(c) for c in columns] for r in rows))

    def fields(self, title: str | None, items: Iterable[tuple[str, Any]]) -> None:
        """A two-column table of named values (header ``field``, ``value`` in TSV; none drawn)."""
        self.table(title, ["field", "value"], items, header=False)


def emit_json(obj: Any) -> None:
    """Print ``obj`` as one JSON document on standard output (:func:`modelatlas.jsonio.dumps`: NaN and
    infinities as null)."""
    from modelatlas.jsonio import dumps_text

    sys.stdout.write(dumps_text(obj) + "\n")
