"""Streamed exports (modelatlas.viz.export): GraphML / GEXF parse back with networkx with the same
nodes, edges and attributes; CSV keeps lists (joined) and ISO 8601 times; hostile strings stay
well-formed XML."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import networkx as nx
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelatlas.atlas.atlas import Atlas
from modelatlas.errors import InputError
from modelatlas.viz.export import LIST_SEPARATOR, RELATION_COLORS, write_graph, write_table

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
T0 = datetime(2023, 5, 1, 12, 30, 15, 250000, tzinfo=timezone.utc)


def _atlas(ids: list[str], tag: str = "chat", author: str | None = "org") -> Atlas:
    records = pa.table({
        "id": ids, "author": [author] * len(ids), "downloads": list(range(len(ids))),
        "created_at": pa.array([T0] * len(ids), pa.timestamp("us", tz="UTC")),
        "tags": [[tag, "x"] for _ in ids], "likes": [None] * len(ids),
        "trending_score": [0.5] * len(ids), "gated": [True] * len(ids),
    })
    evidence = pa.table({
        "parent": ids[:-1], "child": ids[1:], "relation": ["finetune"] * (len(ids) - 1),
        "relation_rule": ["typed_tag"] * (len(ids) - 1), "provenance": ["hub_tag"] * (len(ids) - 1),
        "confidence": [1.0] * (len(ids) - 1), "source": ["t"] * (len(ids) - 1)})
    return Atlas.build(records, evidence)


def _xml(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _expected_nodes(atlas: Atlas) -> dict[str, dict]:
    """What a reader must find per node: every non-null attribute, lists joined, times ISO 8601."""
    out = {}
    for row in atlas.nodes.to_pylist():
        attrs = {}
        for key, value in row.items():
            if key in ("id", "card_text") or value is None:
                continue
            if isinstance(value, list):
                value = LIST_SEPARATOR.join(value)
            elif isinstance(value, datetime):
                value = value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            attrs[key] = _xml(value) if isinstance(value, str) else value
        out[_xml(row["id"])] = attrs
    return out


def _check_graph(atlas: Atlas, graph: nx.DiGraph, *, graphml: bool) -> None:
    expected = _expected_nodes(atlas)
    assert set(graph.nodes) == set(expected)
    for node_id, attrs in expected.items():
        got = graph.nodes[node_id]
        for key, value in attrs.items():
            if graphml and value == "":
                assert key not in got  # networkx reads an empty <data> element as no value
            else:
                assert got[key] == value, (node_id, key)
        assert not ({"card_text"} & set(got))
    pairs = {(_xml(p), _xml(c)): r for p, c, r in zip(atlas.edges["parent"].to_pylist(),
                                                    atlas.edges["child"].to_pylist(),
                                                    atlas.edges["relation"].to_pylist())}
    assert {(p, c): d["relation"] for p, c, d in graph.edges(data=True)} == pairs
    for _, _, d in graph.edges(data=True):
        assert d["provenance"] == "hub_tag" and d["confidence"] == 1.0


def test_graph_files_read_back_with_every_attribute(tmp_path):
    atlas = _atlas(["org/base", "org/child", "org/grandchild"])
    for fmt, read in (("gexf", nx.read_gexf), ("graphml", nx.read_graphml)):
        out = write_graph(atlas, tmp_path / f"g.{fmt}", fmt)
        graph = read(out)
        _check_graph(atlas, graph, graphml=fmt == "graphml")
        assert graph.nodes["org/child"]["tags"] == "chat|x"
        assert graph.nodes["org/child"]["created_at"] == "2023-05-01T12:30:15.250000Z"
        assert graph.nodes["org/base"]["relation_to_parent"] == "root"
        assert graph.nodes["org/child"]["relation_to_parent"] == "finetune"


def test_gexf_carries_gephi_viz_and_graphml_gephi_attributes(tmp_path):
    atlas = _atlas(["org/base", "org/child"])
    gexf = nx.read_gexf(write_graph(atlas, tmp_path / "g.gexf", "gexf"))
    r, g, b = RELATION_COLORS["finetune"]
    assert gexf.nodes["org/child"]["viz"]["color"] == {"r": r, "g": g, "b": b, "a": 1.0}
    assert gexf.nodes["org/child"]["viz"]["size"] > gexf.nodes["org/base"]["viz"]["size"]  # 1 download vs 0
    graphml = nx.read_graphml(write_graph(atlas, tmp_path / "g.graphml", "graphml"))
    child = graphml.nodes["org/child"]
    assert (child["r"], child["g"], child["b"]) == (r, g, b) and child["label"] == "org/child"
    assert child["size"] == gexf.nodes["org/child"]["viz"]["size"]


def test_mixed_parent_relations_get_the_mixed_colour(tmp_path):
    records = pa.table({"id": ["a/p", "a/q", "a/c"]})
    evidence = pa.table({"parent": ["a/p", "a/q"], "child": ["a/c", "a/c"], "relation": ["finetune", "merge"],
                         "relation_rule": ["typed_tag"] * 2, "provenance": ["hub_tag"] * 2,
                         "confidence": [1.0] * 2, "source": ["t"] * 2})
    graph = nx.read_gexf(write_graph(Atlas.build(records, evidence), tmp_path / "g.gexf", "gexf"))
    assert graph.nodes["a/c"]["relation_to_parent"] == "mixed"


_hostile = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(_hostile, min_size=2, max_size=5, unique_by=_xml), tag=_hostile, author=_hostile)
def test_hostile_strings_stay_well_formed(tmp_path, ids, tag, author):
    atlas = _atlas(ids, tag=tag, author=author)
    for fmt, read in (("gexf", nx.read_gexf), ("graphml", nx.read_graphml)):
        _check_graph(atlas, read(write_graph(atlas, tmp_path / f"h.{fmt}", fmt)), graphml=fmt == "graphml")


def test_ids_that_collide_as_xml_are_refused(tmp_path):
    atlas = _atlas(["a/x\x01", "a/x\x02"])
    with pytest.raises(InputError, match="two model ids become"):
        write_graph(atlas, tmp_path / "g.gexf", "gexf")


def test_csv_joins_lists_and_writes_iso_times_parquet_keeps_types(tmp_path):
    atlas = _atlas(["org/base", "org/child"])
    write_table(atlas.nodes, tmp_path / "n.csv", "csv")
    table = pcsv.read_csv(tmp_path / "n.csv", convert_options=pcsv.ConvertOptions(
        column_types={"created_at": pa.string(), "tags": pa.string()}))
    assert table["tags"].to_pylist() == ["chat|x", "chat|x"]
    assert table["created_at"].to_pylist() == ["2023-05-01T12:30:15.250000Z"] * 2
    assert datetime.fromisoformat(table["created_at"][0].as_py()) == T0
    write_table(atlas.nodes, tmp_path / "n.parquet", "parquet")
    assert pq.read_table(tmp_path / "n.parquet").equals(atlas.nodes)
