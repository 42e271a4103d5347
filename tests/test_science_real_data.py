"""Science on the real hf-trees metadata and the leaderboard (skipped without ../shared/data)."""

from __future__ import annotations

import pytest

from modelatlas.analytics.statistics import compute_statistics
from modelatlas.discover.licence_forensics import licence_drift
from modelatlas.impute.evaluate import evaluate
from modelatlas.impute.graph_knn import GraphKNN
from modelatlas.impute.global_baseline import GlobalBaseline
from modelatlas.impute.hub_vote import HubVote
from modelatlas.impute.task import build_task


@pytest.fixture(scope="module")
def trees(hf_trees_path):
    from modelatlas.ingest import pipeline

    atlas, _ = pipeline.ingest([str(hf_trees_path)])
    return atlas


def test_paper_constants_hold_on_real_data(trees):
    head = {r["statistic"]: r for r in compute_statistics(trees).headline}
    # The charting rules' constants (paper: 99.41% and 99.73%) hold on the crawl too.
    assert head["quantised models that are leaves"]["ours"] > 0.97 and head["quantised models that are leaves"]["n"] > 300
    assert head["parent created before child"]["ours"] > 0.99 and head["parent created before child"]["n"] > 1000


def test_hub_and_graph_beat_global_on_real_licences(trees):
    facts = trees.facts
    res = evaluate(build_task(facts, "license"), seeds=(0,), methods=[GlobalBaseline(), HubVote(), GraphKNN(5)])
    acc = {r["method"]: r["accuracy"] for r in res["results"]}
    assert acc["hub_majority"] > acc["global_majority"] and acc["graph_knn"] > acc["global_majority"]


def test_licence_drift_finds_llama_and_gemma_children(trees):
    report = licence_drift(trees.facts, limit=5)
    assert report["cases"] > 20
    assert any(pair.startswith(("llama2 ->", "gemma ->")) for pair in report["by_pair"])
    assert all(" -" in r["path"] for r in report["rows"])


def test_leaderboard_scores_are_imputable(shared_data):
    from modelatlas.ingest.leaderboard import leaderboard_atlas

    atlas = leaderboard_atlas(shared_data / "open-llm-leaderboard-v2.csv")
    res = evaluate(build_task(atlas.facts, "leaderboard:ifeval"), seeds=(0,),
                   methods=[GlobalBaseline(), GraphKNN(5)])
    mae = {r["method"]: r["mae"] for r in res["results"]}
    assert mae["graph_knn"] < mae["global_mean"]
