"""Strict JSON for untrusted files: what RFC 8259 and a Rust ``serde_json`` reader accept, no more.

Python's ``json`` module is lenient where the readers our files are written for (the ``safetensors``
library, ``transformers``) are not, and raises exceptions other than ``JSONDecodeError`` on some
inputs. :func:`loads_strict` turns every way a text can fail into one :class:`InputError` naming the
file and refuses what ``serde_json`` refuses (see ``docs/weights.md``, "Malformed files"):

- ``NaN`` / ``Infinity`` literals and numbers out of the float range (``1e400``);
- a key given twice in one object (``json`` silently keeps the last);
- lone UTF-16 surrogates in ``\\u`` escapes;
- ``-0`` (``serde_json`` reads it as the float ``-0.0``: never a size or an offset);
- integers of more than 4,300 digits (Python's limit; ``ValueError``), nesting deep enough to
  exhaust the recursion limit (``RecursionError``), invalid UTF-8.
"""

from __future__ import annotations

import json
import math

from modelatlas.errors import InputError


class _Refused(ValueError):
    """Raised inside the parser's hooks; reported as an InputError."""


def _no_constant(name: str):
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {text[:40]} is out of range")
    return value


def _int(text: str) -> int | float:
    # serde_json parses "-0" as the float -0.0, so that it is never taken for a size
    return -0.0 if text == "-0" else int(text)


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"key {key[:80]!r} appears twice in one object")
        out[key] = value
    return out


def _has_lone_surrogate(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads_strict(data: bytes | memoryview | str, *, path: str = "", where: str | None = None, what: str = "JSON"):
    """Parse untrusted JSON strictly (see the module docstring).

    Parameters
    ----------
    data:
        UTF-8 bytes or text.
    path, where:
        The file and the place in it, for the error message.
    what:
        What the text is (``"header"``, ``"shard index"``), for the error message.

    Returns
    -------
    object
        The parsed value (objects as ``dict``).

    Raises
    ------
    InputError
        Invalid UTF-8 or JSON, or anything in the module docstring's list.
    """
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant, parse_float=_float, parse_int=_int,
                           object_pairs_hook=_unique_pairs)
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not valid UTF-8 JSON ({exc.reason} at byte {exc.start})", path=path,
                         where=where) from None
    except RecursionError:
        raise InputError(f"{what} nests too deeply to be read", path=path, where=where) from None
    except ValueError as exc:  # JSONDecodeError, _Refused, the 4,300-digit limit
        raise InputError(f"{what} is not valid UTF-8 JSON ({str(exc)[:200]})", path=path, where=where) from None
    if "\\u" in text and _has_lone_surrogate(value):
        raise InputError(f"{what} is not valid UTF-8 JSON (a lone UTF-16 surrogate in a \\u escape)", path=path,
                         where=where)
    return value
