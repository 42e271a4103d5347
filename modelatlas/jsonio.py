"""JSON written by the package (``--json`` output, result files, card data), through orjson.

One encoder for every JSON document the package writes (docs/architecture.md, "JSON"):

* NumPy scalars and arrays are numbers and lists (``OPT_SERIALIZE_NUMPY``; a strided view is
  copied first, arrays of other dtypes, e.g. ``object`` or text, go through ``tolist``);
* ``NaN`` and ``±inf`` are written as ``null``: JSON has no such numbers, and a reader must see a
  missing value rather than a string or an invalid document (orjson's own rule);
* ``datetime`` / ``date`` / ``numpy.datetime64`` are RFC 3339 text (a naive datetime stays naive:
  no time zone is invented);
* dictionary keys that are not strings (ints, dates, enums) are written as text (``OPT_NON_STR_KEYS``);
* paths are text, ``bytes`` are UTF-8 text (invalid bytes replaced), sets are sorted lists;
* integers beyond 64 bits (possible in a card's YAML) are written as decimal text, because no JSON
  reader we write for (DuckDB, JavaScript) holds them as numbers.

Reading untrusted JSON is :mod:`modelatlas.strict_json`'s job.
"""

from __future__ import annotations

from datetime import date
from pathlib import PurePath
from typing import Any

import numpy as np
import orjson

#: The options every document is written with.
OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_WIDE_INT = "Integer exceeds 64-bit range"


def _default(value: Any) -> Any:
    """What orjson does not encode itself (it calls this, then encodes the result)."""
    if isinstance(value, np.ndarray):
        # orjson writes C-contiguous arrays of numeric dtypes itself (float32 at float32 precision);
        # a strided view is copied so that it is written the same way, anything else is a list
        return value.tolist() if value.flags.c_contiguous else np.ascontiguousarray(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, date):  # subclasses of date/datetime orjson does not take (e.g. pandas.Timestamp)
        return value.isoformat()
    if hasattr(value, "as_py"):  # an Arrow scalar
        return value.as_py()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def _wide_ints_as_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**64:
        return str(value)
    if isinstance(value, dict):
        return {_wide_ints_as_text(k): _wide_ints_as_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wide_ints_as_text(v) for v in value]
    return value


def dumps(obj: Any, *, indent: bool = False) -> bytes:
    """``obj`` as UTF-8 JSON bytes (see the module docstring for each type).

    Parameters
    ----------
    obj:
        Any combination of dicts, lists, tuples, scalars, NumPy values, dates and paths.
    indent:
        Indent by two spaces (for files people read).

    Returns
    -------
    bytes
        The document, UTF-8 (non-ASCII text is not escaped).

    Raises
    ------
    TypeError
        For a value of a type named in no rule above.
    """
    option = OPTIONS | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        return orjson.dumps(obj, default=_default, option=option)
    except orjson.JSONEncodeError as exc:
        if str(exc) != _WIDE_INT:
            raise TypeError(str(exc)) from None
        return orjson.dumps(_wide_ints_as_text(obj), default=_default, option=option)


def dumps_text(obj: Any, *, indent: bool = False) -> str:
    """:func:`dumps` as ``str``."""
    return dumps(obj, indent=indent).decode("utf-8")
