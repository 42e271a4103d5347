"""Data lineage (Model Atlas paper, section 3.1: "if a model descends from others, it implicitly
inherits their training data"): the datasets a model inherits from its ancestors, each with the
nearest ancestor that declares it and the path."""

from __future__ import annotations

import numpy as np

from modelatlas.analytics.facts import AtlasFacts
from modelatlas.discover.paths import describe, path_text, upward_tree, walk


def declared_datasets(facts: AtlasFacts, node: int) -> list[str]:
    """Datasets a model declares: the ``datasets`` column (card data) and ``dataset:`` tags."""
    found: list[str] = []
    for name in ("datasets", "tags"):
        values = facts.atlas.nodes[name][node].as_py() or []
        for v in values:
            d = v[len("dataset:"):] if name == "tags" and v.startswith("dataset:") else (v if name == "datasets"
                                                                                           else None)
            if d and d not in found:
                found.append(d)
    return found


def data_lineage(facts: AtlasFacts, node: int) -> dict:
    """The model's own datasets and those inherited from ancestors (nearest declaring ancestor first).

    Returns
    -------
    dict: ``own`` (list), ``inherited`` (rows: dataset, ancestor, distance, path) and ``ancestors``
    (how many ancestors were searched).
    """
    own = declared_datasets(facts, node)
    order, pred = upward_tree(facts, node)
    seen = set(own)
    inherited = []
    for a in order[1:]:
        for d in declared_datasets(facts, int(a)):
            if d in seen:
                continue
            seen.add(d)
            chain = walk(pred, node, int(a))
            inherited.append({"dataset": d, "ancestor": facts.ids[a], "distance": len(chain) - 1,
                              "path": path_text(describe(facts, chain))})
    return {"own": own, "inherited": inherited, "ancestors": int(np.asarray(order).size - 1)}
