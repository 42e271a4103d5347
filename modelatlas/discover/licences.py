"""How restrictive a licence is, for licence forensics.

Ranks (higher = more restrictive):

0. ``permissive`` — apache-2.0, mit, bsd-*, cc0-1.0, cc-by-*, unlicense, ... (commercial use and
   relicensing allowed, attribution at most);
1. ``copyleft`` — gpl*, lgpl*, agpl*, mpl-*, cc-by-sa-*, ...: derivatives must keep the terms;
2. ``restricted`` — model licences with use restrictions or custom commercial terms: llama*,
   gemma, openrail* (creativeml, bigscience, bigcode), deepfloyd, apple-ascl, ...;
3. ``non_commercial`` — cc-by-nc-*, research-only licences.

``other``, ``unknown`` and missing licences are unranked (their terms are not known), so they are
never reported as drift in either direction.
"""

from __future__ import annotations

import re

RANK_NAMES = ("permissive", "copyleft", "restricted", "non_commercial")
PERMISSIVE, COPYLEFT, RESTRICTED, NON_COMMERCIAL = range(4)

_RULES: tuple[tuple[str, int], ...] = (
    (r"^cc-by-nc|non-?commercial|research-only|^afl-nc", NON_COMMERCIAL),
    (r"openrail|^llama|^gemma|deepfloyd|apple-|^cc-by-nd|^c-uda|^intel-research|^lgpl-lr|^bigscience|"
     r"^bigcode|^tongyi|^qwen|^deepseek|^mistral-research|^nvidia|^flux|^sdxl|^stabilityai|^falcon|^yi-license",
     RESTRICTED),
    (r"^(a|l)?gpl|^mpl-|^cc-by-sa|^epl-|^osl-|^eupl|^cecill|^odbl|^lppl|^ms-pl", COPYLEFT),
    (r"^apache|^mit$|^mit-|^bsd|^cc0|^cc-by-[0-9]|^cc-by$|^unlicense|^wtfpl|^isc|^zlib|^bsl-|^ecl-|^afl-|"
     r"^artistic|^pddl|^postgresql|^ncsa|^ofl", PERMISSIVE),
)


def licence_rank(licence: str | None) -> int:
    """Rank of a licence id (lower case Hub spelling), ``-1`` when unknown or unranked."""
    if not licence:
        return -1
    text = licence.strip().lower()
    if text in ("other", "unknown", "none", "n/a"):
        return -1
    for pattern, rank in _RULES:
        if re.search(pattern, text):
            return rank
    return -1
