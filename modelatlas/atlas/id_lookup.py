"""Finding a model by id, and "did you mean" for one that is not there, in logarithmic time.

An atlas keeps its node ids sorted, so an exact id is a binary search. A mistyped id is answered
from three sorted keys built once (case-folded id, case-folded name after the last ``/``, and the
case-folded id reversed): whatever part of the id is right — its start, its name, or its end — a
close match sits next to where the query would be inserted in one of them. Only those few
neighbours are scored (rapidfuzz's ``WRatio``), so an unknown id costs about what a known one does
at any atlas size, instead of a fuzzy match over every id (docs/web.md, "A server that holds").
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Neighbours taken on each side of the insertion point in each sorted key.
NEIGHBOURS = 8
#: rapidfuzz score (0–100) below which a neighbour is not suggested.
SCORE_CUTOFF = 60


class IdLookup:
    """Exact lookup and suggestions over one atlas's node ids.

    Parameters
    ----------
    ids:
        The node ids, in node order (a string Arrow array or chunked array).

    Examples
    --------
    >>> import pyarrow as pa
    >>> lookup = IdLookup(pa.array(["google/bert-base", "meta-llama/Llama-2-7b-hf"]))
    >>> lookup.find("meta-llama/Llama-2-7b-hf")
    1
    >>> lookup.find("nobody/nothing") is None
    True
    >>> lookup.suggest("meta-llama/llama-2-7b")
    ['meta-llama/Llama-2-7b-hf']
    """

    def __init__(self, ids: pa.Array | pa.ChunkedArray):
        ids = pa.chunked_array([ids]) if isinstance(ids, pa.Array) else ids
        self.ids = ids.to_numpy(zero_copy_only=False).astype(object)
        self._order = None if _ascending(self.ids) else np.argsort(self.ids, kind="stable")
        lower = pc.utf8_lower(ids)
        self._keys = [self._sorted_key(lower),
                      self._sorted_key(pc.replace_substring_regex(lower, pattern=r"^.*/", replacement="")),
                      self._sorted_key(pc.utf8_reverse(lower))]

    @staticmethod
    def _sorted_key(key: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        order = pc.sort_indices(key).to_numpy()
        return key.take(order).to_numpy(zero_copy_only=False).astype(object), order

    def find(self, model_id: str) -> int | None:
        """Node index of ``model_id``, or ``None`` when the atlas has no such model."""
        keys = self.ids if self._order is None else self.ids[self._order]
        k = int(np.searchsorted(keys, model_id))
        if k < keys.size and keys[k] == model_id:
            return k if self._order is None else int(self._order[k])
        return None

    def suggest(self, model_id: str, limit: int = 5) -> list[str]:
        """Up to ``limit`` ids that look like ``model_id``, best first (ties by id)."""
        from rapidfuzz import fuzz, utils

        query = model_id.lower()
        probes = (query, query.rsplit("/", 1)[-1], query[::-1])
        candidates: set[int] = set()
        for (keys, order), probe in zip(self._keys, probes):
            k = int(np.searchsorted(keys, probe))
            candidates.update(order[max(0, k - NEIGHBOURS):k + NEIGHBOURS].tolist())
        scored = []
        for i in candidates:
            score = fuzz.WRatio(model_id, self.ids[i], processor=utils.default_process)
            if score >= SCORE_CUTOFF:
                scored.append((-score, self.ids[i]))
        return [name for _, name in sorted(scored)[:limit]]


def _ascending(ids: np.ndarray) -> bool:
    return ids.size < 2 or bool(np.all(ids[:-1] < ids[1:]))
