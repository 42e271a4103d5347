"""The Python API (issue 14, item 3; docs/api.md): ``import modelatlas as ma``, typed results,
conversions, and the docstring examples (run here as doctests)."""

from __future__ import annotations

import doctest
import importlib

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from science_atlases import build, edge, model

import modelatlas as ma
from modelatlas.errors import InputError, UnknownModelError

#: Modules whose docstring examples are the API's documentation.
API_MODULES = ("modelatlas.api", "modelatlas.atlas.atlas", "modelatlas.examples", "modelatlas.results",
               "modelatlas.discover.lineage", "modelatlas.analytics.statistics", "modelatlas.impute.base")


@pytest.mark.parametrize("name", API_MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run pytest --doctest-modules)"


def test_every_public_atlas_method_has_an_example():
    for name in ("lineage", "descendants", "sub_tree_downloads", "stats", "search", "draw_family", "to_pandas",
                 "to_polars", "to_networkx"):
        doc = getattr(ma.Atlas, name).__doc__
        assert "Examples\n" in doc and ">>> " in doc and "Returns\n" in doc, name
    assert "Examples" in ma.api.chart.__doc__ and "Examples" in ma.api.ingest.__doc__


@st.composite
def dags(draw):
    n = draw(st.integers(1, 14))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1]),
                          max_size=2 * n, unique=True))
    downloads = draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n))
    return n, pairs, downloads


def atlas_of(n, pairs, downloads):
    models = [model(f"m/{i:02d}", downloads=downloads[i], task="text-generation") for i in range(n)]
    return build(models, [edge(f"m/{p:02d}", f"m/{c:02d}") for p, c in pairs])


@settings(max_examples=40, deadline=None)
@given(dags())
def test_descendants_and_sub_tree_downloads_match_networkx(dag):
    n, pairs, downloads = dag
    atlas = atlas_of(n, pairs, downloads)
    ref = nx.DiGraph()
    ref.add_nodes_from(f"m/{i:02d}" for i in range(n))
    ref.add_edges_from((f"m/{p:02d}", f"m/{c:02d}") for p, c in pairs)
    own = {f"m/{i:02d}": downloads[i] for i in range(n)}
    ranking = atlas.sub_tree_downloads(limit=None).to_pandas().set_index("id")
    for node in ref:
        below = atlas.descendants(node)
        want = nx.single_source_shortest_path_length(ref, node)
        want.pop(node)
        assert dict(zip(below.ids, below.distance.tolist())) == want
        assert list(below.distance) == sorted(below.distance)
        for child, parent in zip(below.ids, below.parent):  # the parent is one step nearer
            assert ref.has_edge(parent, child) and (parent == node or want[parent] == want[child] - 1)
        assert ranking.loc[node, "sub_tree_downloads"] == own[node] + sum(own[d] for d in nx.descendants(ref, node))
        assert ranking.loc[node, "descendants"] == len(want)


def test_results_have_short_reprs_tables_and_html():
    atlas = ma.example_atlas()
    results = [atlas.lineage("bob/llm-7b-merge"), atlas.descendants("acme/llm-7b"), atlas.sub_tree_downloads(),
               atlas.stats(), atlas.stats().tables["relation_mix"], atlas.search(task="text-generation"),
               ma.chart(__import__("modelatlas.chart.synthetic", fromlist=["x"]).synthetic_zoo(30), method="random")]
    for result in results:
        text = repr(result)
        assert text.startswith(f"<{type(result).__name__}: ") and len(text) < 300 and "\n" not in text
        table = result.to_table()
        assert result.to_pandas().shape == (table.num_rows, table.num_columns)
        page = result._repr_html_()
        assert "<table" in page and type(result).__name__ in page
    assert repr(ma.Atlas.empty()) == "<Atlas: 0 models (0 placeholders), 0 edges, 0 metric values, 0 issues>"
    lineage = results[0].to_pandas()
    assert lineage.to_dict("list") == {"id": ["acme/llm-7b-chat", "bob/llm-7b-code", "acme/llm-7b"],
                                       "distance": [1, 1, 2], "placeholder": [False] * 3,
                                       "source": [False, False, True]}


def test_html_view_escapes_model_ids():
    atlas = build([model("a/<b>root"), model("a/child")], [edge("a/<b>root", "a/child")])
    page = atlas.descendants("a/<b>root")._repr_html_()
    assert "<b>root" not in page and "&lt;b&gt;root" in page


def test_search_matches_the_traits_and_ranks_by_downloads():
    found = ma.example_atlas().search(library="diffusers", rank_by="sub_tree_downloads", limit=2)
    assert found.matches == 4 and len(found) == 2
    assert [r["id"] for r in found.rows] == ["acme/diffusion-xl", "erin/diffusion-xl-anime"]
    assert found.to_table()["reasons"].to_pylist()[0][0] == "library diffusers"


def test_conversions_keep_every_node_and_edge():
    atlas = ma.example_atlas()
    g = atlas.to_networkx()
    assert set(g.nodes) == set(atlas.nodes["id"].to_pylist())
    assert {(p, c, r) for p, c, r in g.edges(data="relation")} == set(
        zip(*(atlas.edges[k].to_pylist() for k in ("parent", "child", "relation"))))
    assert g.nodes["acme/llm-7b"]["downloads"] == 900_000 and "card_text" not in g.nodes["acme/llm-7b"]
    assert set(atlas.to_networkx(attributes=["license"]).nodes["acme/llm-7b"]) == {"license"}
    pytest.importorskip("polars")
    assert atlas.to_polars("edges").to_pandas().equals(atlas.to_pandas("edges"))


def test_bad_input_names_what_is_wrong():
    atlas = ma.example_atlas()
    with pytest.raises(UnknownModelError, match="did you mean 'acme/llm-7b'"):
        atlas.lineage("acme/llm-7")
    with pytest.raises(UnknownModelError):
        atlas.descendants("nobody/nothing")
    with pytest.raises(InputError, match="no table 'nodez'"):
        atlas.to_pandas("nodez")
    with pytest.raises(InputError, match="no column 'licence'"):
        atlas.to_networkx(attributes=["licence"])
    with pytest.raises(InputError, match="unknown charting method"):
        ma.chart(__import__("modelatlas.chart.synthetic", fromlist=["x"]).synthetic_zoo(10), method="nope")


def test_chart_and_ingest_are_both_packages_and_functions(tmp_path):
    import modelatlas.chart
    import modelatlas.ingest.pipeline as pipeline  # noqa: PLR0402 (the form that broke when ma.ingest was a function)

    assert ma.chart is modelatlas.chart and "atlas" in ma.chart.method_names()
    assert pipeline.ingest is not ma.ingest and callable(ma.ingest)
    path = tmp_path / "parents.csv"
    path.write_text("id,base_model\nb/child,a/root\nc/other,a/root\n")
    atlas = ma.ingest(path)
    assert atlas.num_edges == 2 and isinstance(atlas, ma.Atlas)
    assert ma.ingest([path], into=atlas).num_edges == 2  # idempotent, as the CLI


@pytest.mark.torch
def test_chart_a_zoo_scores_against_its_manifest(tiny_zoo):
    run = ma.chart(tiny_zoo.root, method="atlas")
    truth = {(p, c) for p, c, _ in tiny_zoo.edges()}
    edges = set(zip(run.edges["parent"].to_pylist(), run.edges["child"].to_pylist()))
    assert set(run.ids) == {m.id for m in tiny_zoo.models}
    assert run.accuracy is not None and len(edges & truth) > len(truth) / 2
    assert ma.chart(tiny_zoo, method="atlas").accuracy == run.accuracy


def test_chart_model_files_without_a_manifest(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    base = {f"layers.{i}.weight": rng.normal(size=(32, 32)).astype(np.float32) for i in range(2)}
    tuned = {k: v + 0.01 * rng.normal(size=v.shape).astype(np.float32) for k, v in base.items()}
    for name, state in (("base", base), ("tuned", tuned)):
        save_file(state, str(tmp_path / f"{name}.safetensors"))
    run = ma.chart([tmp_path / "base.safetensors", tmp_path / "tuned.safetensors"], method="atlas")
    assert sorted(run.ids) == ["base", "tuned"] and run.accuracy is None  # no manifest, no truth
    assert run.edges.select(["parent", "child"]).to_pylist() == [{"parent": "base", "child": "tuned"}]
    with pytest.raises(InputError, match="stem needs the true lineage"):
        ma.chart(tmp_path / "base.safetensors", stem=0.1)
    with pytest.raises(InputError, match="no model could be read"):
        ma.chart(tmp_path / "nothing-here")


def test_notebook_view_needs_no_pandas_and_to_pandas_says_how_to_get_it(monkeypatch):
    import sys

    below = ma.example_atlas().descendants("acme/llm-7b")
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    assert "<td>bob/llm-7b-merge</td>" in below._repr_html_()
    with pytest.raises(ImportError, match="pip install pandas"):
        below.to_pandas()
    with pytest.raises(ImportError, match="pip install pandas"):
        ma.example_atlas().to_pandas()
