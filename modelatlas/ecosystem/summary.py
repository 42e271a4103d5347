"""Summary distributions of the ecosystem (Laufer et al., section 2.2, Figure 2).

Top values of licences, tasks, languages, libraries, datasets and linked arXiv papers among real
models, the models with the most children (every relation) and the most downloaded models.
The paper's arXiv *subject categories* came from the arXiv API (appendix 9.1); tags carry only
paper ids, so offline we report the most linked papers and label the categories unavailable.
"""

from __future__ import annotations

import numpy as np

from modelatlas.ecosystem.traits import value_sets

#: Figure 2 panels -> node columns.
PANELS = {"licences": "license", "tasks": "pipeline_tag", "languages": "languages", "libraries": "library_name",
          "datasets": "datasets", "arxiv_papers": "arxiv"}


def summary_distributions(atlas, *, top: int = 20) -> dict:
    """Figure 2's distributions: ``panel -> [{"value", "count", "share"}]`` plus ``most_children``,
    ``most_downloaded`` and ``arxiv_categories`` (``None`` with a message, see module docstring).

    ``share`` is the fraction of models that document the panel's trait at all (the paper's
    "over 75% of models that document any language").
    """
    real = ~np.asarray(atlas.column("placeholder"), dtype=bool)
    out: dict = {"models": int(real.sum())}
    for panel, column in PANELS.items():
        sets = value_sets(atlas, column)
        m = sets.matrix[np.flatnonzero(real)]
        freq = np.asarray(m.sum(axis=0)).ravel().astype(np.int64)
        documented = int((np.diff(m.indptr) > 0).sum())
        order = np.lexsort((np.arange(freq.size), -freq))[:top]
        out[panel] = {"documented": documented,
                      "top": [{"value": sets.values[i], "count": int(freq[i]),
                               "share": freq[i] / documented if documented else float("nan")}
                              for i in order if freq[i] > 0]}
    ids = atlas.nodes["id"]
    children = atlas.graph.out_degree
    order = np.lexsort((np.arange(children.size), -children))[:top]
    out["most_children"] = [{"id": ids[int(i)].as_py(), "children": int(children[i])} for i in order if children[i] > 0]
    downloads = np.nan_to_num(atlas.column("downloads").astype(np.float64), nan=-1)
    downloads[~real] = -1
    order = np.lexsort((np.arange(downloads.size), -downloads))[:top]
    out["most_downloaded"] = [{"id": ids[int(i)].as_py(), "downloads": int(downloads[i])}
                              for i in order if downloads[i] >= 0]
    out["arxiv_categories"] = None
    out["arxiv_categories_message"] = ("arXiv subject categories need the arXiv API (the paper's appendix 9.1); "
                                       "tags carry only paper ids, listed under arxiv_papers")
    return out
