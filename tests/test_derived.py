"""The derived-data layer (``atlas.facts``): graph invariants on random DAGs, one answer for every
room (statistics, discovery, web atlas), and honest numbers where inputs are missing."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas import Atlas
from modelatlas.analytics.impact import top_models
from modelatlas.analytics.statistics import compute_statistics
from modelatlas.atlas.derived import category_codes
from modelatlas.discover.forensics import model_forensics
from modelatlas.viz.data import AtlasView
from science_atlases import build, edge, model, small_atlas


@st.composite
def dags(draw, max_nodes: int = 14):
    """A random DAG: edges only go from a lower to a higher index (so merges and diamonds occur),
    random downloads, ids in random order so that the atlas's sorted rows differ from the draw."""
    n = draw(st.integers(1, max_nodes))
    pairs = draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1]),
                         max_size=3 * n))
    downloads = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))
    names = draw(st.permutations([f"o/m{i:02d}" for i in range(n)]))
    models = [model(names[i], downloads=downloads[i]) for i in range(n)]
    return build(models, [edge(names[p], names[c]) for p, c in sorted(pairs)]), names, downloads, sorted(pairs)


def _descendants(n, pairs):
    children = {i: [c for p, c in pairs if p == i] for i in range(n)}
    out = {}
    for i in reversed(range(n)):  # children have higher draw indices
        out[i] = set(children[i]).union(*(out[c] for c in children[i]))
    return out


@settings(max_examples=60, deadline=None)
@given(dags())
def test_subtree_sums_depth_and_ancestors_on_random_dags(drawn):
    atlas, names, downloads, pairs = drawn
    f = atlas.facts
    n = len(names)
    row = {name: f.index(name) for name in names}
    below = _descendants(n, pairs)
    for i in range(n):
        r = row[names[i]]
        # sub-tree downloads = own + each descendant once (merges do not double count)
        assert f.sub_tree_downloads[r] == downloads[i] + sum(downloads[d] for d in below[i])
        assert f.descendant_counts[r] == len(below[i])
    g = f.graph
    # depth: sources 0, every child at most one below each parent, and exactly one below its shallowest
    assert (f.depth[f.is_source] == 0).all()
    assert (f.depth[g.child] <= f.depth[g.parent] + 1).all()
    for c in np.flatnonzero(~f.is_source):
        assert f.depth[c] == 1 + f.depth[g.parent[g.child == c]].min()
    # ancestors: closed under taking parents, and exactly the nodes that have the model below them
    for i in range(n):
        r = row[names[i]]
        order, _ = f.ancestors(r)
        anc = set(order.tolist()) - {r}
        assert all(set(g.parent[g.child == a].tolist()) <= anc for a in anc | {r})
        assert anc == {row[names[j]] for j in range(n) if i in below[j]}
    # the edge lookup finds every edge and no other pair
    for k in range(g.num_edges):
        assert f.edge_id(int(g.parent[k]), int(g.child[k])) == k
        assert sorted(f.out_edges(np.array([g.parent[k]])).tolist()) == \
            sorted(np.flatnonzero(g.parent == g.parent[k]).tolist())
    assert all(f.edge_id(row[names[c]], row[names[p]]) is None for p, c in pairs)


@given(st.lists(st.one_of(st.none(), st.sampled_from(["", "a", "b", "c", "d"])), max_size=40))
def test_category_codes_convention(values):
    codes, labels = category_codes(pa.array(values, pa.string()))
    assert [labels[c] if c >= 0 else None for c in codes] == [v or None for v in values]
    counts = [int((codes == k).sum()) for k in range(len(labels))]
    assert counts == sorted(counts, reverse=True) and min(counts, default=1) > 0
    assert all(labels[k] < labels[k + 1] for k in range(len(labels) - 1) if counts[k] == counts[k + 1])


def test_facts_cached_once_and_rebuilt_when_the_atlas_changes():
    atlas = small_atlas()
    f = atlas.facts
    assert atlas.facts is f and AtlasView(atlas).facts is f
    atlas.nodes = atlas.nodes.set_column(atlas.nodes.schema.get_field_index("downloads"), "downloads",
                                         pa.array([7] * atlas.num_nodes, pa.int64()))
    assert atlas.facts is not f and atlas.facts.downloads.tolist() == [7.0] * atlas.num_nodes


def test_created_at_in_seconds_and_one_code_order_everywhere():
    atlas = small_atlas()
    f, view = atlas.facts, AtlasView(atlas)
    i = f.index("meta/llama")
    assert f.created_at[i] == atlas.nodes["created_at"][i].as_py().timestamp()
    assert view.created_at is f.created_at
    codes, labels = f.codes("license")
    assert labels[0] == "openrail++" and codes[f.index("c/q2")] == -1  # commonest first; missing -1
    cats = view.categories("license")
    assert cats.labels[1:3] == labels[:2] and cats.labels[cats.codes[f.index("c/q2")]] == "unknown"


def test_statistics_discovery_and_web_agree_on_a_merge_child():
    """The example of issue 14: a merge of ``meta/llama`` (datasets ``web``) and ``a/ft1``
    (``alpaca``) inherits both; forensics, the layer and the web view give the same answer."""
    atlas = small_atlas()
    f = atlas.facts
    i = f.index("d/merge")
    inherited = f.inheritance(i)
    assert inherited["datasets"]["from_ancestors"] == ["alpaca", "web"]
    report = model_forensics(f, "d/merge")
    assert sorted(r["dataset"] for r in report["data_lineage"]["inherited"]) == ["alpaca", "web"]
    assert report["inheritance"]["licence"] == inherited["license"]
    assert report["inheritance"]["datasets"] == inherited["datasets"]
    # a child without a licence takes its nearest ancestor's
    e = f.inheritance(f.index("c/q2"))["license"]
    assert (e["own"], e["effective"], e["ancestor"]) == (None, "llama2", "meta/llama")
    view = AtlasView(atlas)
    top = {r["id"]: r for r in top_models(f, limit=20)}
    for name, r in top.items():
        k = view.index(name)
        assert r["sub_tree_downloads"] == view.numeric["sub_tree_downloads"][k]
        assert r["descendants"] == view.numeric["descendants"][k]
    assert top["meta/llama"]["sub_tree_downloads"] == 100 + 50 + 5 + 500 + 10 + 300 + 20


def _bare_atlas() -> Atlas:
    """Models and edges only: no downloads, cards, licences or creation times."""
    names = ["r/base", "a/x", "b/y", "c/z", "d/m", "e/w"]
    records = pa.table({"id": names, "pipeline_tag": ["text-generation"] * len(names)})
    evidence = pa.Table.from_pylist([edge("r/base", n) for n in names[1:4]]
                                    + [edge("a/x", "d/m", "merge"), edge("b/y", "d/m", "merge"), edge("a/x", "e/w")])
    return Atlas.build(records, evidence)


def test_missing_inputs_give_no_number_not_zero():
    stats = compute_statistics(_bare_atlas())
    head = {r["statistic"]: r for r in stats.headline}
    for name in ("models without a card", "models declaring a licence", "models reporting evaluation results",
                 "non-leaf models out-downloaded by descendants", "parent created before child",
                 "merged language models: influence uplift over non-merged siblings"):
        r = head[name]
        assert np.isnan(r["ours"]) and r["n"] == 0 and r["coverage"] == 0.0 and r["population"] > 0, name
    assert head["models naming a parent"]["ours"] == pytest.approx(5 / 6)  # the graph is known
    doc = next(r for r in stats.tables["documentation"].rows if r["group_by"] == "all")
    assert doc["card_known"] == 0 and np.isnan(doc["share_card"]) and np.isnan(doc["share_license"])


def test_a_source_that_records_licences_makes_a_null_mean_none_declared():
    atlas = small_atlas()  # two models there have no licence, their source records licences
    doc = next(r for r in compute_statistics(atlas).tables["documentation"].rows if r["group_by"] == "all")
    assert doc["license_known"] == 12 and doc["share_license"] == pytest.approx(10 / 12)


def test_headline_reads_the_same_row_as_the_detail_table():
    stats = compute_statistics(small_atlas())
    head = {r["statistic"]: r for r in stats.headline}
    m = next(r for r in stats.tables["merge_influence"].select("modality") if r["group"] == "language")
    h = head["merged language models: influence uplift over non-merged siblings"]
    assert (h["ours"], h["n"], h["population"]) == (m["uplift"], m["compared"], m["merged_models"])
    d = next(r for r in stats.tables["documentation"].rows if r["group_by"] == "all")
    assert head["models without a card"]["ours"] == pytest.approx(1 - d["share_card"])
    assert head["models without a card"]["n"] == d["card_known"]


def test_components_are_named_by_their_roots():
    atlas = build([model("z/root", downloads=5), model("a/root", downloads=1), model("m/child", downloads=0),
                   model("b/solo", downloads=99)],
                  [edge("z/root", "m/child"), edge("a/root", "m/child", "merge")])
    f = atlas.facts
    big = int(f.components[f.index("m/child")])
    assert f.component_name(big) == "z/root +1 root"  # most sub-tree downloads first, never the child
    rows = compute_statistics(atlas).tables["component_structure"].rows
    assert rows[0]["component"] == f"c{big}: z/root +1 root"


def test_observed_is_decided_per_source():
    """A null licence means "none declared" where the model's source records licences, and "not
    collected" where it does not; placeholders observe nothing."""
    records = pa.table({"id": ["h/a", "h/b", "c/x", "c/y"], "license": ["mit", None, None, None],
                        "sources": [["hub"], ["hub"], ["edges.csv"], ["edges.csv", "hub"]]})
    atlas = Atlas.build(records, pa.Table.from_pylist([edge("h/a", "c/x"), edge("p/gone", "h/b")]))
    f = atlas.facts
    observed = {name: bool(f.observed("license")[f.index(name)]) for name in f.ids}
    assert observed == {"h/a": True, "h/b": True, "c/x": False, "c/y": True, "p/gone": False}
