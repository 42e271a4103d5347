"""A short numeric summary of an atlas (``modelatlas info``)."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from modelatlas.ingest.relation_audit import flag_counts


def _counts(column) -> dict[str, int]:
    if len(column) == 0:
        return {}
    vc = pc.value_counts(column)
    pairs = sorted(((str(v["values"]), int(v["counts"])) for v in vc.to_pylist()), key=lambda kv: (-kv[1], kv[0]))
    return dict(pairs)


def summarize(atlas) -> dict:
    """Counts that describe an atlas.

    Returns
    -------
    dict with ``nodes`` (all rows), ``models`` (real records), ``placeholders``, ``edges``,
    ``edges_by_relation``, ``edges_by_provenance``, ``components``, ``largest_component``,
    ``sources``, ``max_depth``, ``backfilled_created_at``, ``issues_by_kind`` and ``relation_flags``
    (declared relations the repositories' files contradict, by reason:
    :mod:`modelatlas.ingest.relation_audit`).
    """
    facts = atlas.facts
    g = facts.graph
    sizes, depth = facts.component_sizes, facts.depth
    placeholders = int(pc.sum(atlas.nodes["placeholder"]).as_py() or 0)
    return {
        "nodes": atlas.num_nodes,
        "models": atlas.num_nodes - placeholders,
        "placeholders": placeholders,
        "edges": atlas.num_edges,
        "edges_by_relation": _counts(atlas.edges["relation"]),
        "edges_by_provenance": _counts(atlas.edges["provenance"]),
        "components": int(sizes.size),
        "largest_component": int(sizes.max(initial=0)),
        "sources": int(g.sources().size),
        "max_depth": int(depth.max(initial=0)),
        "backfilled_created_at": int(pc.sum(pc.fill_null(atlas.nodes["created_at_backfilled"], False)).as_py() or 0),
        "metrics": atlas.metrics.num_rows,
        "issues_by_kind": _counts(atlas.issues["kind"]),
        "multi_parent_models": int(np.count_nonzero(g.in_degree > 1)),
        "relation_flags": flag_counts(atlas.issues),
    }
