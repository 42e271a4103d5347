"""From charted edges to atlas evidence: the relation of each edge, and the rows an atlas stores.

A charting method returns every model's parents; some of those edges were given to it as documented
(a card's ``base_model``), the others it predicted. :func:`documented_relations` gives documented
edges the relation the documentation implies instead of the ``unknown`` of a given edge, and
:func:`evidence_rows` turns the edges into rows of the atlas's ``evidence`` table, with provenance
``hub_card`` for documented edges and ``predicted:<method>`` for the others (docs/chart.md,
"Charting what you have").
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def documented_pairs(ids: list[str], known_edges: dict[int, tuple[int, ...]]) -> set[tuple[str, str]]:
    """``(child id, parent id)`` of every documented edge (``known_edges``: child index -> parent indices)."""
    return {(ids[c], ids[p]) for c, ps in known_edges.items() for p in ps}


def documented_relations(edges: pa.Table, models, known_edges: dict[int, tuple[int, ...]],
                         declared: dict[str, str]) -> pa.Table:
    """``edges`` with the relation of each documented edge and a column ``relation_rule``.

    Parameters
    ----------
    edges:
        ``parent``, ``child``, ``relation``, ``confidence`` (:meth:`~modelatlas.chart.types.ChartResult.to_table`).
    models:
        The :class:`~modelatlas.chart.types.ChartInput` charted (``ids``, ``quantized``).
    known_edges:
        The documented edges given to the method, child index -> parent indices.
    declared:
        Child id -> the relation its card declares (``base_model_relation``).

    Returns
    -------
    pyarrow.Table
        A documented edge gets the card's relation (rule ``card_relation``), else ``merge`` when the
        card names several bases (``card_multi_base``), else ``quantized`` for a quantised child or
        ``finetune`` (read from the weights: rule ``predicted``); the edges the method found keep
        theirs (rule ``predicted``).
    """
    pairs = documented_pairs(models.ids, known_edges)
    index = {m: i for i, m in enumerate(models.ids)}
    n_parents = {models.ids[c]: len(ps) for c, ps in known_edges.items()}
    relation, rule = [], []
    for row in edges.select(["parent", "child", "relation"]).to_pylist():
        child = row["child"]
        if (child, row["parent"]) not in pairs:
            relation.append(row["relation"])
            rule.append("predicted")
        elif declared.get(child):
            relation.append(declared[child])
            rule.append("card_relation")
        elif n_parents[child] > 1:
            relation.append("merge")
            rule.append("card_multi_base")
        else:
            relation.append("quantized" if models.quantized[index[child]] else "finetune")
            rule.append("predicted")
    edges = edges.set_column(edges.schema.get_field_index("relation"), "relation", pa.array(relation, pa.string()))
    return edges.append_column("relation_rule", pa.array(rule, pa.string()))


def evidence_rows(edges: pa.Table, ids: list[str], known_edges: dict[int, tuple[int, ...]], method: str,
                  source: str) -> pa.Table:
    """The rows of the atlas's ``evidence`` table for charted ``edges``.

    Parameters
    ----------
    edges:
        Charted edges with ``relation_rule`` (:func:`documented_relations`).
    ids:
        Model ids in the order the chart input holds them.
    known_edges:
        The documented edges given to the method, child index -> parent indices.
    method:
        The charting method's name (provenance ``predicted:<method>``).
    source:
        What the evidence came from (``chart:<zoo folder>`` or ``chart:paths``).

    Returns
    -------
    pyarrow.Table
        ``parent``, ``child``, ``relation``, ``relation_rule``, ``provenance``, ``confidence``, ``source``.
    """
    pairs = documented_pairs(ids, known_edges)
    documented = pa.array([(r["child"], r["parent"]) in pairs
                           for r in edges.select(["parent", "child"]).to_pylist()], pa.bool_())
    return pa.table({
        "parent": edges["parent"], "child": edges["child"], "relation": edges["relation"],
        "relation_rule": edges["relation_rule"],
        "provenance": pc.if_else(documented, "hub_card", f"predicted:{method}"),
        "confidence": edges["confidence"],
        "source": pa.array([source] * edges.num_rows, pa.string()),
    })
