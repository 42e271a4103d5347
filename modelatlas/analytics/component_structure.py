"""The biggest components and their structure (Model Atlas paper, section 3.2 and Fig. 5: the LLM
component is deep and complex, holding almost a third of the models; Flux is big but shallow)."""

from __future__ import annotations

import numpy as np

from modelatlas.analytics.tables import TOP_COMPONENTS, StatTable, component_label, share
from modelatlas.atlas.derived import AtlasFacts


def component_structure(facts: AtlasFacts, top_components: int = TOP_COMPONENTS) -> StatTable:
    """One row per component among the ``top_components`` biggest.

    Columns: the component's name (its roots, :func:`~modelatlas.analytics.tables.component_label`),
    size, share of all models, sources, edges,
    max depth, breadth (most models at one depth), leaves, merges (models with several parents or
    a ``merge`` edge), quantised models, hubs (sibling-leaf sets), total downloads.
    """
    labels, depth = facts.components, facts.depth
    k = min(top_components, facts.component_sizes.size)
    table = StatTable("component_structure", "Biggest components and their structure",
                      "LLM component: deep and complex, ~1/3 of models; Flux: big but shallow",
                      ["component", "models", "share_of_atlas", "sources", "edges", "max_depth", "breadth",
                       "leaves", "merges", "quantized", "hubs", "downloads"])
    if k == 0:
        return table
    top = labels < k
    edge_label = labels[facts.graph.child]
    edges = np.bincount(edge_label[edge_label < k], minlength=k)
    sums = {name: np.bincount(labels[top], weights=arr[top].astype(np.float64), minlength=k)
            for name, arr in (("sources", facts.is_source), ("leaves", facts.is_leaf & ~facts.is_source),
                              ("merges", facts.merged), ("quantized", facts.quantized),
                              ("downloads", facts.downloads))}
    maxd = np.zeros(k, dtype=np.int64)
    np.maximum.at(maxd, labels[top], depth[top])
    # Breadth: the largest number of a component's models at one depth.
    pair = labels[top] * (int(depth.max(initial=0)) + 2) + (depth[top] + 1)
    uniq, counts = np.unique(pair, return_counts=True)
    breadth = np.zeros(k, dtype=np.int64)
    np.maximum.at(breadth, uniq // (int(depth.max(initial=0)) + 2), counts)
    hub_labels = facts.hubs
    in_hub = hub_labels >= 0
    hubs = np.zeros(k, dtype=np.int64)
    if in_hub.any():
        hub_comp = np.zeros(int(hub_labels.max()) + 1, dtype=np.int64)
        hub_comp[hub_labels[in_hub]] = labels[in_hub]
        hubs = np.bincount(hub_comp[hub_comp < k], minlength=k)
    for c in range(k):
        size = int(facts.component_sizes[c])
        table.rows.append({
            "component": component_label(facts, c), "models": size, "share_of_atlas": share(size, facts.n),
            "sources": int(sums["sources"][c]), "edges": int(edges[c]), "max_depth": int(maxd[c]),
            "breadth": int(breadth[c]), "leaves": int(sums["leaves"][c]), "merges": int(sums["merges"][c]),
            "quantized": int(sums["quantized"][c]), "hubs": int(hubs[c]), "downloads": int(sums["downloads"][c])})
    return table
