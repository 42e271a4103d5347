"""Graph files for Gephi and other tools: GraphML and GEXF through networkx.

Nodes carry every scalar node column; edges carry relation, provenance and confidence. For Gephi
the GEXF file also sets ``viz`` attributes: node size grows with ``log10(1 + downloads)`` and the
colour says how the model relates to its parents (the relation of its incoming edges: one
relation's colour, ``mixed`` when they differ, ``root`` without parents) — the colouring of the
Model Atlas paper's figures (Fig. 1, section 3).
"""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa

from modelatlas.viz.palette import relation_rgb

#: Colour (RGB) of each relation-to-parent class: the palette of the figures and the page.
RELATION_COLORS = relation_rgb()
MIN_SIZE, SIZE_PER_DECADE = 2.0, 3.0


def relation_to_parents(atlas) -> dict[str, str]:
    """Each child's class for colouring: its parents' relation, or ``mixed``."""
    out: dict[str, str] = {}
    for child, rel in zip(atlas.edges["child"].to_pylist(), atlas.edges["relation"].to_pylist()):
        out[child] = rel if out.get(child, rel) == rel else "mixed"
    return out


def _scalar_columns(table: pa.Table) -> list[str]:
    return [f.name for f in table.schema
            if not pa.types.is_list(f.type) and not pa.types.is_struct(f.type) and f.name != "card_text"]


def _plain(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def to_networkx(atlas, *, viz: bool = False):
    """The atlas as a :class:`networkx.DiGraph` (node and edge attributes as described above)."""
    import networkx as nx

    graph = nx.DiGraph()
    columns = _scalar_columns(atlas.nodes)
    classes = relation_to_parents(atlas)
    for row in atlas.nodes.select(columns).to_pylist():
        # GraphML / GEXF have no null: a missing value is a missing attribute
        attrs = {k: _plain(v) for k, v in row.items() if k != "id" and v is not None}
        cls = classes.get(row["id"], "root")
        attrs["relation_to_parent"] = cls
        if viz:
            r, g, b = RELATION_COLORS[cls]
            size = MIN_SIZE + SIZE_PER_DECADE * math.log10(1 + max(row.get("downloads") or 0, 0))
            attrs["viz"] = {"color": {"r": r, "g": g, "b": b, "a": 1.0}, "size": size}
        graph.add_node(row["id"], **attrs)
    for row in atlas.edges.select(["parent", "child", "relation", "provenance", "confidence"]).to_pylist():
        graph.add_edge(row["parent"], row["child"], relation=row["relation"], provenance=row["provenance"],
                       confidence=row["confidence"])
    return graph


def write_graph(atlas, path: str | Path, fmt: str) -> Path:
    """Write ``graphml`` or ``gexf`` (GEXF with Gephi ``viz`` size and colour)."""
    import networkx as nx

    path = Path(path)
    if fmt == "graphml":
        nx.write_graphml(to_networkx(atlas), path)
    elif fmt == "gexf":
        nx.write_gexf(to_networkx(atlas, viz=True), path, version="1.2draft")
    else:
        raise ValueError(f"unknown graph format {fmt!r}")
    return path
