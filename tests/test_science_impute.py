"""Imputation (Model Atlas paper, Table 1): graph kNN, hub majority, baselines, auto; protocol and store."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas import Atlas
from modelatlas.atlas.graph import AtlasGraph
from modelatlas.errors import InputError
from modelatlas.impute.evaluate import evaluate
from modelatlas.impute.graph_knn import GraphKNN
from modelatlas.impute.group_vote import group_mean, group_vote, row_vote
from modelatlas.impute.hub_vote import HubVote
from modelatlas.impute.nearest_labelled import k_nearest_labelled
from modelatlas.impute.store import IMPUTATIONS, impute, store_imputations
from modelatlas.impute.task import build_task
from modelatlas.impute.view import TrainView
from science_atlases import build, edge, model, planted_families, small_atlas


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 25), st.data())
def test_k_nearest_labelled_matches_networkx(n, data):
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1]),
                               max_size=2 * n, unique=True))
    labelled = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    k = data.draw(st.integers(1, 4))
    g = AtlasGraph(n, np.array([p for p, _ in pairs], dtype=np.int64), np.array([c for _, c in pairs], dtype=np.int64))
    got = k_nearest_labelled(g, labelled, k)
    ref = nx.Graph()
    ref.add_nodes_from(range(n))
    ref.add_edges_from(pairs)
    for v in range(n):
        dist = nx.single_source_shortest_path_length(ref, v)
        want = sorted(d for s, d in dist.items() if labelled[s])[:k]
        mine = [(int(s), int(d)) for s, d in zip(got.source[v], got.distance[v]) if s >= 0]
        assert [d for _, d in mine] == want
        assert len({s for s, _ in mine}) == len(mine) and all(labelled[s] and dist[s] == d for s, d in mine)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_group_vote_and_mean_match_brute_force(data):
    n = data.draw(st.integers(1, 30))
    groups = np.array(data.draw(st.lists(st.integers(-1, 4), min_size=n, max_size=n)))
    codes = np.array(data.draw(st.lists(st.integers(-1, 3), min_size=n, max_size=n)))
    train = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    for loo in (False, True):
        label, share, support = group_vote(groups, codes, train, leave_one_out=loo)
        mean, _ = group_mean(groups, codes.astype(float), train & (codes >= 0), leave_one_out=loo)
        for i in range(n):
            voters = [j for j in range(n) if groups[i] >= 0 and groups[j] == groups[i] and train[j]
                      and codes[j] >= 0 and not (loo and j == i)]
            if not voters:
                assert label[i] == -1 and np.isnan(mean[i])
                continue
            counts = np.bincount(codes[voters])
            assert label[i] == np.argmax(counts) and support[i] == len(voters)
            assert share[i] == pytest.approx(counts.max() / len(voters))
            assert mean[i] == pytest.approx(np.mean(codes[voters]))


def test_row_vote_ties_go_to_the_nearest():
    label, share = row_vote(np.array([[1, 2, 2, -1], [3, 1, 1, 3], [-1, -1, -1, -1]]))
    assert label.tolist() == [2, 3, -1] and share.tolist() == [pytest.approx(2 / 3), 0.5, 0.0]


def chain_atlas():
    """a0 - a1 - a2 - a3 - a4 (a chain) with scores on a0 (10), a1 (20) and a4 (50)."""
    ids = [f"c/a{i}" for i in range(5)]
    metrics = [{"id": "c/a0", "metric": "s", "value": 10.0, "source": "t"},
               {"id": "c/a1", "metric": "s", "value": 20.0, "source": "t"},
               {"id": "c/a4", "metric": "s", "value": 50.0, "source": "t"}]
    return build([model(i) for i in ids], [edge(p, c) for p, c in zip(ids, ids[1:])], metrics)


def test_graph_knn_metric_known_answer():
    task = build_task(chain_atlas().facts, "s")
    view = TrainView(task, task.known)
    q = np.array([2, 3])  # a2: a1 at 1, a0 / a4 at 2; a3: a4 at 1, a1 at 2
    assert GraphKNN(1).predict(view, q).value.tolist() == [20.0, 50.0]
    two = GraphKNN(2).predict(view, q).value
    assert two[1] == pytest.approx(35.0)
    assert two[0] in (pytest.approx(15.0), pytest.approx(35.0))  # tie at distance 2, broken by index: a0
    assert two[0] == pytest.approx(15.0)
    assert GraphKNN(3).predict(view, q).value.tolist() == [pytest.approx(80 / 3)] * 2


def test_hub_majority_known_answer():
    # Hub of r: five sibling leaves, licences a, a, b, None, None.
    models = [model("r/root", license="x")] + [model(f"h/l{i}", license=lic)
                                                for i, lic in enumerate(["a", "a", "b", None, None])]
    atlas = build(models, [edge("r/root", f"h/l{i}") for i in range(5)])
    task = build_task(atlas.facts, "license")
    pred = HubVote().predict(TrainView(task, task.known), np.array([3, 4]))  # h/l3, h/l4
    assert task.decode(pred.value).tolist() == ["a", "a"]
    assert pred.confidence.tolist() == [pytest.approx(2 / 3)] * 2 and pred.covered.all()


def test_evaluate_names_methods_and_graph_beats_global():
    facts = planted_families(n_families=24, size=20).facts
    res = evaluate(build_task(facts, "license"), hide=0.3, seeds=(0, 1))
    acc = {r["method"]: r["accuracy"] for r in res["results"]}
    assert {"global_majority", "component_majority", "hub_majority", "graph_knn", "auto"} <= set(acc)
    assert all(r["n"] == 2 * res["hidden_per_seed"] for r in res["results"])
    assert acc["graph_knn"] > acc["global_majority"] + 0.3
    assert acc["auto"] > acc["global_majority"] + 0.3
    metric = evaluate(build_task(facts, "score"), hide=0.3, seeds=(0,))
    mae = {(r["method"], r.get("k")): r["mae"] for r in metric["results"]}
    assert {("global_mean", None), ("graph_knn", 1), ("graph_knn", 5), ("auto", None)} <= set(mae)
    assert mae[("graph_knn", 1)] < mae[("global_mean", None)] / 2
    assert mae[("auto", None)] < mae[("global_mean", None)] / 2


def test_impute_never_overwrites_and_is_stored(tmp_path):
    atlas = small_atlas()
    facts = atlas.facts
    task = build_task(facts, "license")
    table = impute(task, "graph_knn")
    assert set(table["id"].to_pylist()) == {"c/q2", "y/lora3"}  # the two models without a licence
    got = dict(zip(table["id"].to_pylist(), table["value"].to_pylist()))
    assert got["y/lora3"] == "openrail++"
    store_imputations(atlas, table)
    store_imputations(atlas, impute(task, "hub_majority"))  # replaces, does not pile up
    path = atlas.save(tmp_path / "a.duckdb")
    again = Atlas.load(path)
    assert again.extras[IMPUTATIONS].num_rows == 2
    assert again.nodes.column("license").null_count == 2  # known columns untouched
    rel = impute(build_task(facts, "relation_type"))
    assert "meta/llama" not in rel["id"].to_pylist()  # sources have no relation to impute


def test_bad_imputation_targets():
    facts = small_atlas().facts
    with pytest.raises(InputError, match="neither a metric"):
        build_task(facts, "stars")
    atlas = build([model("a/x"), model("a/y")], [edge("a/x", "a/y")])
    with pytest.raises(InputError, match="absent on every model"):
        build_task(atlas.facts, "license")
    with pytest.raises(InputError, match="no models"):
        build_task(Atlas.empty().facts, "license")
    with pytest.raises(InputError, match="at least 5"):
        evaluate(build_task(chain_atlas().facts, "s"))
    with pytest.raises(InputError, match="between 0 and 1"):
        evaluate(build_task(facts, "license"), hide=1.5)


def test_leaderboard_reader(shared_data):
    from modelatlas.ingest.leaderboard import leaderboard_atlas, read_leaderboard

    data = read_leaderboard(shared_data / "open-llm-leaderboard-v2.csv")
    assert data.metrics.num_rows > 6 * 4000
    assert {"leaderboard:ifeval", "leaderboard:mmlu_pro"} <= set(data.metrics["metric"].to_pylist())
    assert (np.asarray(data.hints["generation"]) >= 1).all()
    atlas = leaderboard_atlas(shared_data / "open-llm-leaderboard-v2.csv")
    assert atlas.num_nodes >= 4400 and atlas.num_edges > 500
    prov = set(atlas.edges["provenance"].to_pylist())
    assert prov <= {"hub_card", "predicted:leaderboard_root"}


def test_leaderboard_bad_file(tmp_path):
    from modelatlas.ingest.leaderboard import read_leaderboard

    with pytest.raises(InputError, match="no such file"):
        read_leaderboard(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="missing column"):
        read_leaderboard(bad)
