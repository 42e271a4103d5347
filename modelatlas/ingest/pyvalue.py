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
import re
from datetime import datetime, timezone

_RFILENAME = re.compile(r"""rfilename\s*=\s*(?P<q>['"])(?P<name>(?:\\.|(?!(?P=q)).)*)(?P=q)""")
_NONE_WORDS = {"", "none", "null", "nan"}


class BadValue(ValueError):
    """A field value of the wrong type; the message says what was expected."""


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


def as_int(value) -> int | None:
    value = literal(value)
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadValue(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise BadValue(f"expected an integer, got {value!r}")


def as_float(value) -> float | None:
    value = literal(value)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise BadValue(f"expected a number, got {value!r}")


def as_str(value) -> str | None:
    value = literal(value) if isinstance(value, str) and value.strip().lower() in _NONE_WORDS else value
    if value is None:
        return None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise BadValue(f"expected text, got {type(value).__name__} {value!r}")


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
            raise BadValue(f"expected a list of text, found {bad[0]!r}")
        return list(value)
    raise BadValue(f"expected a list of text, got {type(value).__name__} {value!r}")


def as_dict(value) -> dict | None:
    value = literal(value)
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    raise BadValue(f"expected a mapping, got {type(value).__name__} {str(value)[:80]!r}")


def as_datetime(value) -> datetime | None:
    """A UTC datetime from an ISO-8601 string (``Z`` or offset; naive means UTC) or a datetime."""
    value = literal(value) if isinstance(value, str) and value.strip().lower() in _NONE_WORDS else value
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise BadValue(f"expected an ISO-8601 time, got number {value!r}")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise BadValue(f"expected an ISO-8601 time, got {value!r}") from None
    if not isinstance(value, datetime):
        raise BadValue(f"expected an ISO-8601 time, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


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
                raise BadValue(f"sibling without rfilename: {item[:80]!r}")
            names.append(ast.literal_eval(match.group("q") + match.group("name") + match.group("q")))
        elif isinstance(item, str):
            names.append(item)
        elif hasattr(item, "rfilename"):
            names.append(str(item.rfilename))
        else:
            raise BadValue(f"sibling of unexpected form: {str(item)[:80]!r}")
    return names
