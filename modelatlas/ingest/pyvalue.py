"""Values that arrive as *stringified Python*.

Anatomy-style crawls stored ``huggingface_hub`` objects with ``str()``: a list of tags becomes
``"['a', 'b']"``, a sibling becomes ``"RepoSibling(rfilename='x', size=None, ...)"``, a missing value
``'None'``, a number ``'12'``. These helpers turn such text back into values with
:func:`ast.literal_eval` (literals only, never ``eval``) and a regular expression for the
``RepoSibling(...)`` repr. Anything else is reported to the caller as a :class:`BadValue`.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone

_RFILENAME = re.compile(r"""rfilename\s*=\s*(?P<q>['"])(?P<name>(?:\\.|(?!(?P=q)).)*)(?P=q)""")
_NONE_WORDS = {"", "none", "null", "nan"}


#: Counts (downloads, likes) and parameter totals fit the atlas's 64-bit integer columns.
INT64_MAX = 2**63 - 1
#: Times outside these years are not Hub times (the Hub began in 2016; 9999-12-31 is a placeholder).
EARLIEST_YEAR, LATEST_YEAR = 1990, 2100
#: A number written with more digits than this is not a count (Python refuses to parse 4,300).
MAX_INT_DIGITS = 30


class BadValue(ValueError):
    """A field value of the wrong type; the message says what was expected."""


@dataclass(frozen=True)
class Coerced:
    """A value read after changing its type; the caller reports ``message`` (``mistyped_field``)."""

    value: object
    message: str


def show(value, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters for messages."""
    text = repr(value) if not isinstance(value, str) or len(value) <= limit else repr(value[:limit]) + "..."
    return text if len(text) <= limit + 8 else text[:limit] + "..."


def bounded_int(digits: str):
    """``parse_int`` for :mod:`json`: an integer, or its text when it is too long to be a count
    (so that it is reported as mistyped instead of stopping the whole file)."""
    return int(digits) if len(digits.lstrip("-")) <= MAX_INT_DIGITS else digits


def literal(value):
    """``value`` with stringified Python / JSON literals decoded; other values unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in _NONE_WORDS:
        return None
    if text in ("True", "False"):
        return text == "True"
    if text[:1] in "[{(" or text[:1].isdigit() or text[:1] in "-+":
        for parse in (ast.literal_eval, json.loads):
            try:
                return parse(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
    return value


def as_int(value) -> int | Coerced | None:
    """An integer; an integral float is :class:`Coerced`; out of the 64-bit range is a :class:`BadValue`."""
    value = literal(value)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > INT64_MAX:
            raise BadValue(f"expected an integer, got {show(value)} (out of range)")
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) <= INT64_MAX:
        return Coerced(int(value), f"expected an integer, got {value!r}; read as {int(value)}")
    raise BadValue(f"expected an integer, got {show(value)}")


def as_count(value) -> int | Coerced | None:
    """A count (downloads, likes): an integer of at least 0 (see :func:`as_int`)."""
    read = as_int(value)
    number = read.value if isinstance(read, Coerced) else read
    if number is not None and number < 0:
        raise BadValue(f"expected a count of at least 0, got {show(value)}")
    return read


def as_float(value) -> float | None:
    value = literal(value)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            raise BadValue(f"expected a number, got {show(value)} (out of range)") from None
        if not math.isfinite(number):
            raise BadValue(f"expected a finite number, got {show(value)}")
        return number
    raise BadValue(f"expected a number, got {show(value)}")


def as_str(value) -> str | Coerced | None:
    """Text; a number is :class:`Coerced` to its text."""
    value = literal(value) if isinstance(value, str) and value.strip().lower() in _NONE_WORDS else value
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value) if not isinstance(value, int) or abs(value) <= INT64_MAX else None
        if text is not None:
            return Coerced(text, f"expected text, got number {show(value)}; read as {text!r}")
    raise BadValue(f"expected text, got {type(value).__name__} {show(value)}")


def as_str_list(value) -> list[str] | None:
    """A list of strings from a list, a stringified list or a single string."""
    value = literal(value)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise BadValue(f"expected a list of text, found {show(bad[0])}")
        return list(value)
    raise BadValue(f"expected a list of text, got {type(value).__name__} {show(value)}")


def as_dict(value) -> dict | None:
    value = literal(value)
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    raise BadValue(f"expected a mapping, got {type(value).__name__} {show(str(value))}")


def as_datetime(value) -> datetime | None:
    """A UTC datetime from an ISO-8601 string (``Z`` or offset; naive means UTC) or a datetime."""
    value = literal(value) if isinstance(value, str) and value.strip().lower() in _NONE_WORDS else value
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise BadValue(f"expected an ISO-8601 time, got number {value!r}")
    raw = value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise BadValue(f"expected an ISO-8601 time, got {show(value)}") from None
    if not isinstance(value, datetime):
        raise BadValue(f"expected an ISO-8601 time, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        value = value.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is in the year 10000 in UTC
        value = None
    if value is None or not EARLIEST_YEAR <= value.year < LATEST_YEAR:
        raise BadValue(f"expected a time between {EARLIEST_YEAR} and {LATEST_YEAR}, got {show(str(raw))}")
    return value


def sibling_names(value) -> list[str] | None:
    """File names of a model repository from the Hub's ``siblings`` in any of its spellings.

    Accepts a list of ``{"rfilename": ...}`` mappings, of ``RepoSibling(rfilename=...)`` reprs, of
    plain names, or any of those stringified.
    """
    value = literal(value)
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise BadValue(f"expected a list of files, got {type(value).__name__}")
    names = []
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("rfilename"), str):
            names.append(item["rfilename"])
        elif isinstance(item, str) and item.lstrip().startswith("RepoSibling("):
            match = _RFILENAME.search(item)
            if not match:
                raise BadValue(f"sibling without rfilename: {show(item)}")
            try:
                names.append(ast.literal_eval(match.group("q") + match.group("name") + match.group("q")))
            except (ValueError, SyntaxError):  # e.g. '\\N{bogus}': not a Python string literal
                raise BadValue(f"sibling name {show(match.group('name'))} is not a valid string") from None
        elif isinstance(item, str):
            names.append(item)
        elif hasattr(item, "rfilename"):
            names.append(str(item.rfilename))
        else:
            raise BadValue(f"sibling of unexpected form: {show(str(item))}")
    return names
