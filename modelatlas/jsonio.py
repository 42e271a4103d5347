"""JSON text of results: what ``--json`` prints and what reports write (docs/cli.md, "JSON").

One serialiser for numpy values, dates and non-finite numbers: orjson writes NumPy scalars and
arrays, ``datetime`` / ``date`` as ISO 8601 and NaN or infinities as ``null``; paths become strings.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    tolist = getattr(value, "tolist", None)  # NumPy arrays orjson does not take (not contiguous, objects)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(obj: Any, *, indent: bool = False) -> str:
    """``obj`` as JSON text (UTF-8, non-ASCII kept).

    Parameters
    ----------
    obj:
        Dicts, lists, strings, numbers, booleans, ``None``, NumPy values, dates, paths.
    indent:
        Two-space indentation for files people read.

    Returns
    -------
    str
        The JSON text; NaN and infinities are ``null``.
    """
    option = _OPTIONS | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        return orjson.dumps(obj, default=_default, option=option).decode()
    except orjson.JSONEncodeError:  # keys orjson does not take (tuples, NumPy scalars): as strings
        return orjson.dumps(_string_keys(obj), default=_default, option=option).decode()


def _string_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(getattr(k, "item", lambda: k)()): _string_keys(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_string_keys(v) for v in value]
    return value
