"""Bias / issue propagation (Model Atlas paper, section 3.1: "If an ancestor exhibits a known bias,
we can propagate that knowledge downstream"): mark models and list every descendant affected,
with its distance and the path from the nearest marked model."""

from __future__ import annotations

import numpy as np

from modelatlas.atlas.derived import AtlasFacts
from modelatlas.discover.paths import chain_to, describe, descendant_distances, path_text


def affected_descendants(facts: AtlasFacts, marked: np.ndarray, limit: int | None = None) -> dict:
    """Every descendant of the ``marked`` node indices.

    Returns
    -------
    dict: ``marked`` ids, ``affected`` (count), ``downloads_affected`` (their downloads, each once)
    and ``rows`` (id, distance, nearest marked ancestor, path, downloads), nearest first, then by
    downloads; at most ``limit`` rows.
    """
    marked = np.unique(np.asarray(marked, dtype=np.int64))
    dist, pred, origin = descendant_distances(facts, marked)
    hit = np.flatnonzero(dist > 0)
    hit = hit[np.lexsort((hit, -facts.downloads[hit], dist[hit]))]
    out_rows = []
    for i in hit[:limit] if limit else hit:
        chain = chain_to(pred, int(i))
        out_rows.append({"id": facts.ids[i], "distance": int(dist[i]), "marked_ancestor": facts.ids[origin[i]],
                         "downloads": int(facts.downloads[i]), "path": path_text(describe(facts, chain))})
    return {"marked": [facts.ids[m] for m in marked], "affected": int(hit.size),
            "downloads_affected": int(facts.downloads[hit].sum()), "rows": out_rows}
