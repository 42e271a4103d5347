"""Graph and table files for Gephi and other tools, written as a stream.

Every format is written one Arrow record batch at a time (:data:`BATCH_ROWS` rows), so an export
holds one batch of rows besides the atlas itself, never a second copy of the graph (a networkx
graph of 300k models took 4.7 GB and 110 s to write as GEXF; docs/BENCHMARKS.md).

* **CSV** (``nodes`` or ``edges``): list columns joined with :data:`LIST_SEPARATOR`, times as
  ISO 8601 in UTC (``2024-05-01T12:00:00.000000Z``).
* **Parquet**: the table as it is (real lists and timestamps).
* **GraphML / GEXF** (the whole graph): XML written element by element with lxml's incremental
  writer (:func:`lxml.etree.xmlfile`), which escapes every value. Nodes carry every node column
  but ``card_text`` (lists joined, times ISO 8601, a missing value is a missing attribute: neither
  format has a null); edges carry relation, provenance, confidence and the claimed relations and
  provenances (joined). For Gephi, node size grows with ``log10(1 + downloads)`` and the colour says
  how the model relates to its parents (the relation of its incoming edges: one relation's colour,
  ``mixed`` when they differ, ``root`` without parents), the colouring of the Model Atlas paper's
  figures (Fig. 1, section 3); edges take their relation's colour. GEXF states them as ``viz``
  elements; GraphML has no standard for them, so nodes carry ``label``, ``size``, ``r``, ``g``,
  ``b`` attributes, the names Gephi's GraphML importer reads as label, size and colour.

XML 1.0 cannot hold most control characters (U+0000-U+001F but tab, newline and carriage return;
U+FFFE, U+FFFF), even escaped: each is written as U+FFFD. Two model ids that become the same id
that way are refused (an export never merges two models). Tabs, newlines and carriage returns are
kept (escaped as character references). docs/ingest.md ("Exports") records these decisions.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.errors import InputError

from modelatlas.viz.palette import relation_rgb

#: Colour (RGB) of each relation-to-parent class: the palette of the figures and the page.
RELATION_COLORS = relation_rgb()
MIN_SIZE, SIZE_PER_DECADE = 2.0, 3.0

#: Joins the items of a list column in CSV, GraphML and GEXF (Gephi's own list separator).
LIST_SEPARATOR = "|"
#: Rows per written batch.
BATCH_ROWS = 16_384
#: Node columns left out of the graph files (README text: megabytes per model, no use in Gephi).
GRAPH_SKIPPED_COLUMNS = ("card_text",)
_EDGE_COLUMNS = ("relation", "provenance", "confidence", "relations_claimed", "provenances")
#: Characters XML 1.0 cannot carry (https://www.w3.org/TR/xml/#charsets), for RE2.
_NOT_XML = r"[\x{0}-\x{8}\x{B}\x{C}\x{E}-\x{1F}\x{FFFE}\x{FFFF}]"
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # %S carries the fraction of the column's unit

GEXF_NS = "http://www.gexf.net/1.2draft"
GEXF_VIZ_NS = "http://www.gexf.net/1.2draft/viz"
GRAPHML_NS = "http://graphml.graphdrawing.org/xmlns"


# ---------------------------------------------------------------------------------- plain columns
def plain_column(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """``column`` as a column every tool reads: lists joined with :data:`LIST_SEPARATOR`, times as
    ISO 8601 text in UTC; other columns as they are."""
    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pc.binary_join(column, LIST_SEPARATOR)
    if pa.types.is_timestamp(kind):
        utc = column if kind.tz is not None else pc.assume_timezone(column, "UTC")
        return pc.strftime(utc.cast(pa.timestamp(kind.unit, tz="UTC")), format=_ISO_FORMAT)
    return column


def plain_table(table: pa.Table) -> pa.Table:
    """:func:`plain_column` applied to every column of ``table``."""
    return pa.table([plain_column(c) for c in table.columns], names=table.column_names)


def write_table(table: pa.Table, path: str | Path, fmt: str) -> Path:
    """Write ``table`` a batch at a time.

    Parameters
    ----------
    table:
        The atlas's ``nodes`` or ``edges`` (any Arrow table).
    path:
        The file to write.
    fmt:
        ``csv`` (lists joined with :data:`LIST_SEPARATOR`, times ISO 8601: :func:`plain_column`) or
        ``parquet`` (the table as it is).

    Returns
    -------
    Path
        ``path``.
    """
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    if fmt == "parquet":
        with pq.ParquetWriter(path, table.schema) as writer:
            for batch in table.to_batches(BATCH_ROWS):
                writer.write_batch(batch)
    elif fmt == "csv":
        schema = plain_table(table.slice(0, 0)).schema
        with pcsv.CSVWriter(path, schema) as writer:
            for batch in table.to_batches(BATCH_ROWS):
                writer.write_table(plain_table(pa.Table.from_batches([batch])).cast(schema))
    else:
        raise ValueError(f"unknown table format {fmt!r}")
    return path


# ---------------------------------------------------------------------------------- graph files
def relation_to_parents(atlas) -> pa.Array:
    """Each node's colour class (see module docstring), aligned with ``atlas.nodes``."""
    edges = atlas.edges
    nodes = atlas.nodes["id"]
    if edges.num_rows == 0:
        return pa.array(["root"] * len(nodes), pa.string())
    per_child = edges.group_by("child", use_threads=False).aggregate([("relation", "min"), ("relation", "max")])
    cls = pc.if_else(pc.equal(per_child["relation_min"], per_child["relation_max"]),
                     per_child["relation_min"], pa.scalar("mixed"))
    out = pc.fill_null(pc.take(cls, pc.index_in(nodes, value_set=per_child["child"])), "root")
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def _xml_text(column):
    """Text of ``column`` (:func:`plain_column`) with characters XML cannot carry replaced by U+FFFD."""
    column = plain_column(column)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    return pc.replace_substring_regex(column, _NOT_XML, "\ufffd")


def _xml_ids(ids: pa.ChunkedArray, path: Path) -> pa.ChunkedArray:
    """Node ids as XML text; refused when two ids become one (see module docstring)."""
    safe = _xml_text(ids)
    changed = pc.not_equal(safe, ids)
    if pc.any(changed).as_py() and pc.count_distinct(safe).as_py() != len(ids):
        counts = pc.value_counts(safe)
        twice = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        raise InputError(f"two model ids become {twice!r} once the control characters XML cannot carry are "
                         f"replaced; export CSV or Parquet instead", path=str(path))
    return safe


def _attribute_columns(table: pa.Table, skip: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(column, XML type)`` of the columns written as attributes (types as GraphML / GEXF name them)."""
    out = []
    for f in table.schema:
        if f.name in skip or pa.types.is_struct(f.type) or pa.types.is_map(f.type):
            continue
        if pa.types.is_boolean(f.type):
            kind = "boolean"
        elif pa.types.is_integer(f.type):
            kind = "long"
        elif pa.types.is_floating(f.type):
            kind = "double"
        else:
            kind = "string"
        out.append((f.name, kind))
    return out


def _text(value, kind: str) -> str:
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "double":
        return repr(float(value))
    return str(value)


def _node_batches(atlas, columns: list[tuple[str, str]], path: Path):
    """Per batch of nodes: ids, colour classes and each attribute column as Python lists."""
    import math

    ids = _xml_ids(atlas.nodes["id"], path)
    classes = relation_to_parents(atlas)
    downloads = atlas.nodes["downloads"] if "downloads" in atlas.nodes.column_names else None
    names = [name for name, _ in columns]
    for start in range(0, atlas.num_nodes, BATCH_ROWS):
        part = atlas.nodes.select(names).slice(start, BATCH_ROWS)
        values = [_xml_text(part[name]).to_pylist() for name in names]
        dl = downloads.slice(start, BATCH_ROWS).to_pylist() if downloads is not None else [None] * part.num_rows
        sizes = [MIN_SIZE + SIZE_PER_DECADE * math.log10(1 + max(d or 0, 0)) for d in dl]
        yield (ids.slice(start, BATCH_ROWS).to_pylist(), classes.slice(start, BATCH_ROWS).to_pylist(), sizes,
               values)


def _edge_batches(atlas, columns: list[tuple[str, str]]):
    edges = atlas.edges
    for start in range(0, edges.num_rows, BATCH_ROWS):
        part = edges.slice(start, BATCH_ROWS)
        yield ([_xml_text(part[end]).to_pylist() for end in ("parent", "child")],
               [_xml_text(part[name]).to_pylist() for name, _ in columns])


def _write_gexf(atlas, path: Path) -> None:
    from lxml import etree

    ns, viz = f"{{{GEXF_NS}}}", f"{{{GEXF_VIZ_NS}}}"
    node_cols = _attribute_columns(atlas.nodes, ("id", *GRAPH_SKIPPED_COLUMNS)) + [("relation_to_parent", "string")]
    edge_cols = _attribute_columns(atlas.edges.select(list(_EDGE_COLUMNS)), ())
    colors = {k: {"r": str(r), "g": str(g), "b": str(b), "a": "1.0"} for k, (r, g, b) in RELATION_COLORS.items()}
    with etree.xmlfile(str(path), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(f"{ns}gexf", nsmap={None: GEXF_NS, "viz": GEXF_VIZ_NS}, version="1.2"):
            with xf.element(f"{ns}meta"):
                creator = etree.Element(f"{ns}creator")
                creator.text = "modelatlas"
                xf.write(creator)
            with xf.element(f"{ns}graph", defaultedgetype="directed", mode="static"):
                for klass, cols in (("node", node_cols), ("edge", edge_cols)):
                    attributes = etree.Element(f"{ns}attributes", {"class": klass, "mode": "static"})
                    for i, (name, kind) in enumerate(cols):
                        etree.SubElement(attributes, f"{ns}attribute", id=str(i), title=name, type=kind)
                    xf.write(attributes)
                with xf.element(f"{ns}nodes"):
                    for ids, classes, sizes, values in _node_batches(atlas, node_cols[:-1], path):
                        for r, (node_id, cls, size) in enumerate(zip(ids, classes, sizes)):
                            node = etree.Element(f"{ns}node", id=node_id, label=node_id)
                            att = etree.SubElement(node, f"{ns}attvalues")
                            for i, (column, (_, kind)) in enumerate(zip(values, node_cols)):
                                if column[r] is not None:
                                    etree.SubElement(att, f"{ns}attvalue", {"for": str(i), "value": _text(column[r], kind)})
                            etree.SubElement(att, f"{ns}attvalue", {"for": str(len(node_cols) - 1), "value": cls})
                            etree.SubElement(node, f"{viz}color", colors[cls])
                            etree.SubElement(node, f"{viz}size", value=repr(size))
                            xf.write(node)
                with xf.element(f"{ns}edges"):
                    for (parents, children), values in _edge_batches(atlas, edge_cols):
                        for r, (parent, child) in enumerate(zip(parents, children)):
                            edge = etree.Element(f"{ns}edge", source=parent, target=child)
                            att = etree.SubElement(edge, f"{ns}attvalues")
                            for i, (column, (_, kind)) in enumerate(zip(values, edge_cols)):
                                if column[r] is not None:
                                    etree.SubElement(att, f"{ns}attvalue", {"for": str(i), "value": _text(column[r], kind)})
                            etree.SubElement(edge, f"{viz}color", colors.get(values[0][r], colors["unknown"]))
                            xf.write(edge)


def _write_graphml(atlas, path: Path) -> None:
    from lxml import etree

    ns = f"{{{GRAPHML_NS}}}"
    node_cols = _attribute_columns(atlas.nodes, ("id", *GRAPH_SKIPPED_COLUMNS)) + [("relation_to_parent", "string")]
    gephi = [("label", "string"), ("size", "double"), ("r", "int"), ("g", "int"), ("b", "int")]
    edge_cols = _attribute_columns(atlas.edges.select(list(_EDGE_COLUMNS)), ())
    keys = [("node", f"n{i}", name, kind) for i, (name, kind) in enumerate(node_cols + gephi)] + \
           [("edge", f"e{i}", name, kind) for i, (name, kind) in enumerate(edge_cols)]
    n_data = len(node_cols) - 1
    with etree.xmlfile(str(path), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(f"{ns}graphml", nsmap={None: GRAPHML_NS}):
            for scope, key_id, name, kind in keys:
                xf.write(etree.Element(f"{ns}key", {"id": key_id, "for": scope, "attr.name": name,
                                                    "attr.type": kind}))
            with xf.element(f"{ns}graph", edgedefault="directed"):
                for ids, classes, sizes, values in _node_batches(atlas, node_cols[:-1], path):
                    for r, (node_id, cls, size) in enumerate(zip(ids, classes, sizes)):
                        node = etree.Element(f"{ns}node", id=node_id)
                        for i, (column, (_, kind)) in enumerate(zip(values, node_cols)):
                            if column[r] is not None:
                                etree.SubElement(node, f"{ns}data", key=f"n{i}").text = _text(column[r], kind)
                        red, green, blue = RELATION_COLORS[cls]
                        for i, value in enumerate((cls, node_id, repr(size), str(red), str(green), str(blue))):
                            etree.SubElement(node, f"{ns}data", key=f"n{n_data + i}").text = value
                        xf.write(node)
                for (parents, children), values in _edge_batches(atlas, edge_cols):
                    for r, (parent, child) in enumerate(zip(parents, children)):
                        edge = etree.Element(f"{ns}edge", source=parent, target=child)
                        for i, (column, (_, kind)) in enumerate(zip(values, edge_cols)):
                            if column[r] is not None:
                                etree.SubElement(edge, f"{ns}data", key=f"e{i}").text = _text(column[r], kind)
                        xf.write(edge)


def write_graph(atlas, path: str | Path, fmt: str) -> Path:
    """Write the atlas as ``graphml`` or ``gexf``, streamed (see module docstring).

    Parameters
    ----------
    atlas:
        The :class:`~modelatlas.atlas.atlas.Atlas`.
    path:
        The file to write.
    fmt:
        ``graphml`` or ``gexf`` (GEXF 1.2, read by Gephi and :func:`networkx.read_gexf`).

    Raises
    ------
    InputError
        Two model ids are the same once made XML text (see module docstring).
    """
    path = Path(path)
    if fmt == "graphml":
        _write_graphml(atlas, path)
    elif fmt == "gexf":
        _write_gexf(atlas, path)
    else:
        raise ValueError(f"unknown graph format {fmt!r}")
    return path
