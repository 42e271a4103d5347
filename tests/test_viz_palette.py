"""One relation palette: the figures, the GEXF export, the page's data (``/api/meta``) and the page's
own constants show every relation in the same colour (Model Atlas Fig. 1 colouring)."""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import pytest
from fastapi.testclient import TestClient

from modelatlas.viz.data import OTHER, AtlasView
from modelatlas.viz.export import write_graph
from modelatlas.viz.figure import category_colors
from modelatlas.viz.server import create_app
from web_atlas import hand_made_atlas

PALETTE_JS = Path(__file__).resolve().parents[1] / "web" / "src" / "palette.js"


@pytest.fixture(scope="module")
def atlas():
    return hand_made_atlas(fanout=3)


def _hex(rgb: dict) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(rgb[c]) for c in "rgb"))


def test_relation_colours_agree_everywhere(atlas, tmp_path):
    view = AtlasView(atlas)
    labels = view.categories("relation").labels
    figure = dict(zip(labels, category_colors("relation", labels, OTHER)))
    graph = nx.read_gexf(write_graph(atlas, tmp_path / "atlas.gexf", "gexf"))
    export = {}
    for _, attrs in graph.nodes(data=True):
        export.setdefault(attrs["relation_to_parent"], set()).add(_hex(attrs["viz"]["color"]))
    meta = TestClient(create_app(view), base_url="http://localhost").get("/api/meta").json()["palette"]
    page_js = dict(re.findall(r"(\w+): '(#[0-9a-f]{6})'", PALETTE_JS.read_text().split("RELATION_COLORS = {")[1]
                              .split("}")[0]))
    relations = {"finetune", "adapter", "quantized", "merge"}
    assert relations <= set(labels) and relations <= set(export)
    for rel in relations:
        assert export[rel] == {figure[rel]} == {meta["relations"][rel]} == {page_js[rel]}, rel
    # distinct relations, distinct colours (a palette that mapped all to one would pass the above)
    assert len({figure[r] for r in relations}) == len(relations)
    # the model without parents: "root" in the export, "source" on the page and in the figures
    assert export["root"] == {meta["relations"]["source"]}
    assert meta["unknown"] == figure.get("unknown", meta["unknown"]) == "#add8e6"
