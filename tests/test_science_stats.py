"""Meta-ML statistics on hand-made atlases with known answers (issue 5)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas import Atlas
from modelatlas.analytics.impact import top_models
from modelatlas.atlas.modality import node_modality
from modelatlas.analytics.statistics import compute_statistics
from modelatlas.errors import InputError
from science_atlases import build, edge, model, small_atlas, ts


@pytest.fixture(scope="module")
def stats():
    return compute_statistics(small_atlas())


def row(table, group_by, group):
    return next(r for r in table.select(group_by) if r["group"] == group)


def test_relation_mix(stats):
    r = row(stats.tables["relation_mix"], "all", "all")
    assert r["edges"] == 11
    assert r["finetune"] == pytest.approx(4 / 11) and r["adapter"] == pytest.approx(3 / 11)
    assert r["quantized"] == pytest.approx(2 / 11) and r["merge"] == pytest.approx(2 / 11)
    vision = row(stats.tables["relation_mix"], "modality", "vision")
    assert vision["edges"] == 4 and vision["adapter"] == pytest.approx(0.75)


def test_quantized_leaves_and_temporal_order(stats):
    q = row(stats.tables["quantized_leaves"], "all", "all")
    assert (q["quantized"], q["leaves"], q["share_leaves"]) == (2, 2, 1.0)
    t = row(stats.tables["temporal_order"], "all", "all")
    assert t["pairs"] == 11 and t["share_parent_older"] == pytest.approx(10 / 11)  # z/sdft predates sd/sd
    assert row(stats.tables["temporal_order"], "modality", "language")["share_parent_older"] == 1.0


def test_quantized_model_with_a_child_is_not_a_leaf():
    atlas = build([model("r", task="text-generation"), model("q", quantized=True), model("c")],
                  [edge("r", "q", "quantized"), edge("q", "c")])
    q = row(compute_statistics(atlas).tables["quantized_leaves"], "all", "all")
    assert (q["quantized"], q["leaves"]) == (1, 0)


def test_depth_distribution(stats):
    lang = row(stats.tables["depth_distribution"], "modality", "language")
    assert lang["models"] == 6
    assert lang["depth_1"] == pytest.approx(4 / 6) and lang["depth_2"] == pytest.approx(2 / 6)
    assert lang["max_depth"] == 2 and lang["sources"] == 1
    assert row(stats.tables["depth_distribution"], "modality", "vision")["depth_1"] == 1.0


def test_deep_chain_lands_in_the_last_bin():
    ids = [f"a/m{i}" for i in range(8)]
    atlas = build([model(i, task="text-generation") for i in ids], [edge(p, c) for p, c in zip(ids, ids[1:])])
    r = row(compute_statistics(atlas).tables["depth_distribution"], "all", "all")
    assert r["models"] == 7 and r["depth_5_plus"] == pytest.approx(3 / 7) and r["max_depth"] == 7


def test_descendant_downloads_and_merge_influence(stats):
    d = row(stats.tables["descendant_downloads"], "all", "all")
    # llama (100 < 885) and ft1 (50 < 325) are out-downloaded; d/merge (300 > 20) and sd (1000 > 10) are not.
    assert d["non_leaf_models"] == 4 and d["share_descendants_exceed"] == 0.5
    m = row(stats.tables["merge_influence"], "modality", "language")
    # d/merge (320) beside the non-merged children of its parents llama and ft1: ft1 (375), q1 (500),
    # q2 (10), ft2 (5); mean 222.5. One comparison, filed under the merged model.
    assert (m["merged_models"], m["compared"], m["share_merged_higher"]) == (1, 1, 1.0)
    assert m["uplift"] == pytest.approx(320 / 222.5 - 1)


def test_documentation(stats):
    d = row(stats.tables["documentation"], "all", "all")
    assert d["models"] == 12
    assert d["share_card"] == pytest.approx(9 / 12) and d["share_license"] == pytest.approx(10 / 12)
    assert d["share_evaluation"] == pytest.approx(1 / 12) and d["share_parent"] == pytest.approx(10 / 12)


def test_component_structure(stats):
    c0, c1 = stats.tables["component_structure"].rows
    assert c0["component"] == "c0: meta/llama" and c0["models"] == 7 and c0["edges"] == 7
    assert (c0["max_depth"], c0["breadth"], c0["merges"], c0["quantized"], c0["hubs"]) == (2, 4, 1, 2, 1)
    assert c1["component"] == "c1: sd/sd" and c1["leaves"] == 4 and c1["max_depth"] == 1


def test_headline_has_paper_numbers(stats):
    head = {r["statistic"]: r for r in stats.headline}
    assert head["quantised models that are leaves"]["paper"] == 0.9941
    assert head["parent created before child"]["ours"] == pytest.approx(10 / 11)
    assert head["models in a hub (sibling leaves)"]["ours"] == pytest.approx(6 / 12)


def test_month_grouping(stats):
    months = [r["group"] for r in stats.tables["relation_mix"].select("month")]
    assert months == sorted(months) and months[0] == "2023-01"
    assert sum(r["edges"] for r in stats.tables["relation_mix"].select("month")) == 11


def test_modality_from_task_and_column():
    t = pa.table({"pipeline_tag": ["fill-mask", None, "image-text-to-text", "made-up", "Image-Classification"],
                  "modality": [None, "audio", None, None, None]})
    assert node_modality(t).tolist() == ["language", "audio", "vision-language", "other", "vision"]
    assert node_modality(t.drop_columns(["modality"])).tolist()[1] == "unknown"


def test_top_models():
    facts = small_atlas().facts
    rows = top_models(facts, "sub_tree_downloads", limit=3)
    assert [r["id"] for r in rows] == ["sd/sd", "meta/llama", "b/q1"]
    assert rows[1]["sub_tree_downloads"] == 985 and rows[1]["descendants"] == 6
    per = top_models(facts, "descendants", per="task", limit=1)
    assert {r["task"]: r["id"] for r in per} == {"text-generation": "meta/llama", "image-to-image": "sd/sd"}
    with pytest.raises(InputError, match="no model has task"):
        top_models(facts, task="nope")
    with pytest.raises(InputError, match="cannot rank by"):
        top_models(facts, by="stars")


def test_empty_atlas_and_cycle_are_clear_errors():
    with pytest.raises(InputError, match="holds no models"):
        compute_statistics(Atlas.empty())
    a = small_atlas()
    cyclic = pa.concat_tables([a.edges, pa.Table.from_pylist(
        [{"parent": "a/ft2", "child": "a/ft1", "relation": "finetune", "provenance": "manual", "confidence": 1.0}],
        schema=a.edges.schema)])
    with pytest.raises(InputError, match="cycle"):
        compute_statistics(Atlas(a.nodes, cyclic))


@st.composite
def random_atlases(draw):
    n = draw(st.integers(1, 18))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1]),
                          max_size=2 * n, unique=True))
    rels = draw(st.lists(st.sampled_from(["finetune", "adapter", "quantized", "merge", "unknown"]),
                         min_size=len(pairs), max_size=len(pairs)))
    tasks = draw(st.lists(st.sampled_from(["text-generation", "image-to-image", None]), min_size=n, max_size=n))
    dl = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    models = [model(f"o/m{i:02d}", task=tasks[i], downloads=dl[i], created=ts(1 + i % 12)) for i in range(n)]
    return build(models, [edge(f"o/m{p:02d}", f"o/m{c:02d}", r) for (p, c), r in zip(pairs, rels)])


@settings(max_examples=40, deadline=None)
@given(random_atlases())
def test_statistics_invariants(atlas):
    s = compute_statistics(atlas)
    for r in s.tables["relation_mix"].rows:
        assert sum(r[k] for k in ("finetune", "adapter", "quantized", "merge", "unknown")) == pytest.approx(1.0)
    for r in s.tables["depth_distribution"].rows:
        assert sum(r[k] for k in ("depth_1", "depth_2", "depth_3", "depth_4", "depth_5_plus")) == pytest.approx(1.0)
    for name in ("relation_mix", "documentation", "depth_distribution"):
        t = s.tables[name]
        total = sum(r[t.columns[2]] for r in t.select("all"))
        assert sum(r[t.columns[2]] for r in t.select("modality")) == total
    for r in s.tables["temporal_order"].rows:
        assert r["share_parent_older"] + r["share_same_time"] + r["share_parent_younger"] == pytest.approx(1.0)
    assert all(t.rows is not None for t in s.tables.values())
    assert np.isfinite([r["n"] for r in s.headline]).all()
