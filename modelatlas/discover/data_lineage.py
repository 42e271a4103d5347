"""Data lineage (Model Atlas paper, section 3.1: "if a model descends from others, it implicitly
inherits their training data"): the datasets a model inherits from its ancestors, each with the
nearest ancestor that declares it and the path. Which datasets are inherited is the derived-data
layer's answer (:meth:`~modelatlas.atlas.derived.AtlasFacts.inherited_datasets`, all ancestors), the
same the web panel shows."""

from __future__ import annotations

from modelatlas.atlas.derived import AtlasFacts
from modelatlas.discover.paths import describe, path_text, walk


def data_lineage(facts: AtlasFacts, node: int) -> dict:
    """The model's own datasets and those inherited from ancestors (nearest declaring ancestor first).

    Returns
    -------
    dict: ``own`` (list), ``inherited`` (rows: dataset, ancestor, distance, path) and ``ancestors``
    (how many ancestors were searched).
    """
    order, pred = facts.ancestors(node)
    inherited = []
    for d, a in facts.inherited_datasets(node):
        chain = walk(pred, node, a)
        inherited.append({"dataset": d, "ancestor": facts.ids[a], "distance": len(chain) - 1,
                          "path": path_text(describe(facts, chain))})
    return {"own": facts.declared_datasets(node), "inherited": inherited, "ancestors": int(order.size - 1)}
