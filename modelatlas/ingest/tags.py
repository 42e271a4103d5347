"""Hub tags: plain tags and ``key:value`` tags, and the ``base_model`` lineage tags.

A Hub tag is either plain (``text-generation``, ``en``) or ``key:value`` where the key is a lower-case
word (``license:mit``, ``dataset:squad``, ``arxiv:2106.09685``, ``region:us``). Lineage tags are
``base_model:<id>`` (a parent, relation not stated) and ``base_model:<relation>:<id>`` (typed; the
Hub writes ``finetune``, ``adapter``, ``quantized``, ``merge``). Model Atlas preprocessing splits
tags the same way (ANCHORS.md, "Model Atlas").

The parsing is written as DuckDB expressions so that the hub-stats reader applies it to millions
of rows without a Python loop; :func:`parse_tag` runs the very same expressions on one tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from modelatlas.ingest.normalize import ISO639_1

#: ``key:value`` when the text before the first colon is a lower-case key word.
KEY_PATTERN = r"(?s)^([a-z][a-z0-9_-]*):(.*)$"
#: One part of a model id: letters, digits, ``-_.``; it starts with a letter, digit or ``_`` and has
#: no ``..`` (so ``org/..`` and ``org/.`` are not ids; the Hub forbids them). A trailing ``.`` is kept
#: as the Hub's older names have it.
_ID_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]|\.[A-Za-z0-9_\-])*\.?"
#: What a Hub model id looks like: ``name`` or ``author/name`` (author starting with a letter or digit).
MODEL_ID_PATTERN = rf"^[A-Za-z0-9]{_ID_PART[len('[A-Za-z0-9_]'):]}(/{_ID_PART})?$"
MODEL_ID = re.compile(MODEL_ID_PATTERN)
#: A Hub model URL's prefix, as ids are sometimes written (in RE2 and Python syntax alike).
HUB_URL_PATTERN = r"^https?://(www\.)?huggingface\.co/"


def model_id_sql(expr: str) -> str:
    """Clean a referenced model id: trim, drop a Hub URL prefix and trailing slashes."""
    return f"nullif(rtrim(regexp_replace(trim({expr}), '{HUB_URL_PATTERN}', ''), '/'), '')"


def clean_model_id(value: str) -> str:
    """:func:`model_id_sql` for one value in Python (``https://huggingface.co/owner/name/`` ->
    ``owner/name``); :data:`MODEL_ID` says whether the result is an id."""
    return re.sub(HUB_URL_PATTERN, "", value.strip()).rstrip("/")


def tag_key_sql(tag: str) -> str:
    return f"CASE WHEN regexp_matches({tag}, '{KEY_PATTERN}') THEN regexp_extract({tag}, '{KEY_PATTERN}', 1) END"


def tag_value_sql(tag: str) -> str:
    return f"CASE WHEN regexp_matches({tag}, '{KEY_PATTERN}') THEN regexp_extract({tag}, '{KEY_PATTERN}', 2) END"


def values_with_key_sql(tags: str, key: str) -> str:
    """The values of every ``key:value`` tag with this key, as a list."""
    prefix = key + ":"
    return (f"list_transform(list_filter(coalesce({tags}, []), lambda t: starts_with(t, '{prefix}')), "
            f"lambda t: substr(t, {len(prefix) + 1}))")


def plain_tags_sql(tags: str) -> str:
    """The plain tags (no ``key:`` prefix), as a list."""
    return f"list_filter({tags}, lambda t: NOT regexp_matches(t, '{KEY_PATTERN}'))"


def language_tags_sql(tags: str) -> str:
    """Plain tags that are ISO 639-1 language codes."""
    codes = "^(" + "|".join(sorted(ISO639_1)) + ")$"
    return f"list_filter(coalesce({tags}, []), lambda t: length(t) = 2 AND regexp_matches(t, '{codes}'))"


def base_model_sql(tag: str) -> dict[str, str]:
    """Expressions over one ``base_model:...`` tag: ``relation``, ``parent`` and ``problem``."""
    # a Hub URL in place of the id is dropped first (docs/ingest.md), so its "https:" is no relation word
    rest = f"regexp_replace(substr({tag}, 12), '^https?://(www\\.)?huggingface\\.co/', '')"
    typed = f"contains({rest}, ':')"
    relation = f"CASE WHEN {typed} THEN nullif(lower(trim(split_part({rest}, ':', 1))), '') END"
    raw_parent = f"CASE WHEN {typed} THEN substr({rest}, strpos({rest}, ':') + 1) ELSE {rest} END"
    parent = model_id_sql(raw_parent)
    problem = (f"CASE WHEN {parent} IS NULL THEN 'names no model id' "
               f"WHEN {typed} AND {relation} IS NULL THEN 'has an empty relation word' "
               f"WHEN NOT regexp_matches({parent}, '{MODEL_ID_PATTERN}') THEN 'names an invalid model id' END")
    return {"relation": relation, "parent": parent, "problem": problem}


@dataclass(frozen=True)
class TagParts:
    """One tag, parsed (see module docstring)."""

    tag: str
    key: str | None
    value: str | None
    relation: str | None = None
    parent: str | None = None
    problem: str | None = None


def parse_tag(tag: str) -> TagParts:
    """Parse one tag with the same expressions the vectorised readers use."""
    bm = base_model_sql("t")
    row = duckdb.execute(
        f"SELECT {tag_key_sql('t')}, {tag_value_sql('t')}, "
        f"CASE WHEN starts_with(t, 'base_model:') THEN {bm['relation']} END, "
        f"CASE WHEN starts_with(t, 'base_model:') THEN {bm['parent']} END, "
        f"CASE WHEN starts_with(t, 'base_model:') THEN {bm['problem']} END FROM (SELECT ?::VARCHAR AS t)",
        [tag]).fetchone()
    return TagParts(tag, *row)
