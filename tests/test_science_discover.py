"""Lineage, forensics and discovery on hand-made atlases with known answers (issue 5)."""

from __future__ import annotations

import numpy as np
import pytest

from modelatlas.discover.data_lineage import data_lineage
from modelatlas.discover.forensics import model_forensics
from modelatlas.discover.issue_propagation import affected_descendants
from modelatlas.discover.licence_forensics import licence_drift
from modelatlas.discover.licences import COPYLEFT, NON_COMMERCIAL, PERMISSIVE, RESTRICTED, licence_rank
from modelatlas.discover.search import SearchQuery, search
from modelatlas.discover.transfer import transfer_candidates
from modelatlas.errors import InputError, UnknownModelError
from modelatlas.impute.store import impute, store_imputations
from modelatlas.impute.task import build_task
from science_atlases import build, edge, model, small_atlas


@pytest.fixture()
def facts():
    return small_atlas().facts


def idx(facts, model_id):
    return int(facts.atlas.index_of([model_id])[0])


def test_licence_ranks():
    assert [licence_rank(x) for x in ("mit", "apache-2.0", "cc-by-4.0", "bsd-3-clause")] == [PERMISSIVE] * 4
    assert [licence_rank(x) for x in ("gpl-3.0", "cc-by-sa-4.0", "agpl-3.0")] == [COPYLEFT] * 3
    assert [licence_rank(x) for x in ("llama2", "llama3.1", "gemma", "creativeml-openrail-m", "openrail++")] == \
        [RESTRICTED] * 5
    assert licence_rank("cc-by-nc-sa-4.0") == NON_COMMERCIAL
    assert [licence_rank(x) for x in ("other", None, "", "made-up")] == [-1] * 4


def test_licence_drift_over_the_atlas(facts):
    report = licence_drift(facts)
    assert report["cases"] == 4
    assert report["by_pair"] == {"llama2 -> mit": 2, "llama2 -> apache-2.0": 2}
    rows = {r["child"]: r for r in report["rows"]}
    assert set(rows) == {"a/ft1", "a/ft2", "d/merge", "e/ft3"}  # b/q1 keeps llama2; openrail++ children agree
    assert rows["a/ft2"]["path"] == "meta/llama -finetune-> a/ft1 -finetune-> a/ft2"
    assert rows["e/ft3"]["distance"] == 2 and rows["e/ft3"]["ancestor"] == "meta/llama"
    assert [r["child"] for r in report["rows"]] == ["d/merge", "a/ft1", "e/ft3", "a/ft2"]  # by downloads


def test_non_commercial_ancestor_outranks_a_restricted_one():
    atlas = build([model("a/nc", license="cc-by-nc-4.0"), model("b/ll", license="llama3"), model("c/x", license="mit")],
                  [edge("a/nc", "b/ll"), edge("b/ll", "c/x")])
    rows = licence_drift(atlas.facts)["rows"]
    assert {(r["child"], r["ancestor"]) for r in rows} == {("b/ll", "a/nc"), ("c/x", "a/nc")}
    assert next(r for r in rows if r["child"] == "c/x")["path"] == "a/nc -finetune-> b/ll -finetune-> c/x"


def test_data_lineage(facts):
    lin = data_lineage(facts, idx(facts, "e/ft3"))
    assert lin["own"] == [] and lin["ancestors"] == 3
    inherited = {r["dataset"]: r for r in lin["inherited"]}
    assert set(inherited) == {"alpaca", "web"}
    assert inherited["alpaca"]["ancestor"] == "a/ft1" and inherited["web"]["ancestor"] == "meta/llama"


def test_dataset_tags_count_as_declared():
    atlas = build([model("a/r", tags=["dataset:squad", "license:mit"]), model("a/c", datasets=["own"])],
                  [edge("a/r", "a/c")])
    f = atlas.facts
    lin = data_lineage(f, idx(f, "a/c"))
    assert lin["own"] == ["own"] and [r["dataset"] for r in lin["inherited"]] == ["squad"]


def test_issue_propagation(facts):
    out = affected_descendants(facts, np.array([idx(facts, "a/ft1")]))
    assert out["affected"] == 3 and out["downloads_affected"] == 325
    assert [(r["id"], r["distance"]) for r in out["rows"]] == [("d/merge", 1), ("a/ft2", 1), ("e/ft3", 2)]
    both = affected_descendants(facts, np.array([idx(facts, "a/ft1"), idx(facts, "sd/sd")]))
    assert both["affected"] == 7


def test_model_forensics_and_unknown_id(facts):
    rep = model_forensics(facts, "e/ft3")
    assert {a["id"] for a in rep["ancestors"]} == {"d/merge", "a/ft1", "meta/llama"}
    assert rep["paths"] == {"meta/llama": "meta/llama -merge-> d/merge -finetune-> e/ft3"}
    assert rep["licence_drift"][0]["ancestor"] == "meta/llama"
    with pytest.raises(UnknownModelError, match="did you mean 'meta/llama'"):
        model_forensics(facts, "meta/lama")


def test_search_traits_and_lineage(facts):
    res = search(facts, SearchQuery(descendants_of="meta/llama", licence="apache-2.0", rank_by="sub_tree_downloads"))
    assert [r["id"] for r in res["rows"]] == ["a/ft1", "a/ft2"]
    assert res["rows"][0]["reasons"][0].startswith("descendant of meta/llama at distance 1")
    res = search(facts, SearchQuery(task="image-to-image", rank_by="downloads", limit=2))
    assert [r["id"] for r in res["rows"]] == ["sd/sd", "z/sdft"] and res["matches"] == 5
    with pytest.raises(InputError, match="cannot rank by"):
        search(facts, SearchQuery(rank_by="stars"))
    with pytest.raises(UnknownModelError):
        search(facts, SearchQuery(descendants_of="nobody/at-all"))


def test_search_uses_imputed_values_and_says_so(facts):
    store_imputations(facts.atlas, impute(build_task(facts, "license"), "graph_knn"))
    res = search(facts, SearchQuery(licence="openrail++", rank_by="downloads"))
    rows = {r["id"]: r for r in res["rows"]}
    assert "y/lora3" in rows and any("imputed by graph_knn" in why for why in rows["y/lora3"]["reasons"])
    plain = search(facts, SearchQuery(licence="openrail++", use_imputed=False))
    assert "y/lora3" not in {r["id"] for r in plain["rows"]}


def test_search_by_score_and_params():
    atlas = build([model("a/r", params=7_000_000_000), model("a/s", params=1_000_000_000),
                   model("a/t", params=500_000_000)], [edge("a/r", "a/s"), edge("a/r", "a/t")],
                  metrics=[{"id": "a/s", "metric": "acc", "value": 0.4, "source": "t"},
                           {"id": "a/t", "metric": "acc", "value": 0.6, "source": "t"}])
    f = atlas.facts
    res = search(f, SearchQuery(max_params=2e9, rank_by="score:acc"))
    assert [r["id"] for r in res["rows"]] == ["a/t", "a/s"]
    assert "acc = 0.600 (reported)" in res["rows"][0]["reasons"]


def test_transfer_branch_and_bound():
    # A long chain: a classifier at the head, then 30 generators. Candidates nearest the head win
    # and the bound stops the search long before the end of the chain.
    ids = ["c/head"] + [f"c/g{i:02d}" for i in range(30)]
    models = [model("c/head", task="text-classification", downloads=100)] + \
             [model(i, task="text-generation") for i in ids[1:]]
    atlas = build(models, [edge(p, c) for p, c in zip(ids, ids[1:])])
    out = transfer_candidates(atlas.facts, "text-classification", limit=3)
    assert [r["id"] for r in out["rows"]] == ["c/g00", "c/g01", "c/g02"]
    assert [r["distance"] for r in out["rows"]] == [1, 2, 3]
    assert out["explored"] < 8 and out["seeds"] == 1
    assert "does text-classification" in out["rows"][0]["reason"]
    with pytest.raises(InputError, match="no model is known to do"):
        transfer_candidates(atlas.facts, "translation")
