"""Imputation's ``auto``: the estimator protocol and registry, and selection by nested validation
(issue 14, items 2 and 5)."""

from __future__ import annotations

import numpy as np
import pytest
from science_atlases import planted_families

from modelatlas.errors import InputError
from modelatlas.impute.auto import AutoImputer
from modelatlas.impute.base import ImputationMethod, get_imputer, imputer_names
from modelatlas.impute.global_baseline import ComponentVote, GlobalBaseline
from modelatlas.impute.graph_knn import GraphKNN
from modelatlas.impute.hub_vote import HubVote
from modelatlas.impute.task import build_task
from modelatlas.impute.view import TrainView


@pytest.fixture(scope="module")
def licence_task():
    return build_task(planted_families(n_families=24, size=20, noise=0.1).facts, "license")


def split(task, seed=0, hide=0.3):
    pool = np.flatnonzero(task.known)
    hidden = np.sort(np.random.default_rng(seed).choice(pool, int(hide * pool.size), replace=False))
    train = task.known.copy()
    train[hidden] = False
    return TrainView(task, train), hidden


class Spy(ImputationMethod):
    """Wraps a method and records every training mask and query it is given."""

    name = "spy"

    def __init__(self, inner=None, label: str = "spy"):
        self.inner = inner
        self.label = label
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def name_for(self, kind: str) -> str:
        return self.label

    def predict(self, view, query):
        self.calls.append((view.train.copy(), np.asarray(query).copy()))
        return self.inner.predict(view, query)


def test_registry_names_every_method_with_its_parameters():
    assert {"auto", "graph_knn", "hub_majority", "global", "component"} <= set(imputer_names())
    knn = get_imputer("graph_knn", k=3)
    assert isinstance(knn, GraphKNN) and knn.get_params() == {"k": 3}
    assert repr(knn) == "GraphKNN(k=3)"
    assert get_imputer("auto", inner_folds=4).get_params()["inner_folds"] == 4
    with pytest.raises(InputError, match="unknown imputation method 'knn'"):
        get_imputer("knn")
    with pytest.raises(InputError, match="no parameter 'K'"):
        get_imputer("graph_knn", K=3)
    with pytest.raises(InputError, match="'k' parameter of imputation method 'graph_knn' must be an int in the range \\[1, "):
        GraphKNN(0)


def test_auto_picks_the_clearly_best_method(licence_task):
    # Licences follow the family (component); the global majority is right for one family in six.
    # The worse method comes first, so a tie would pick it: only a real difference picks the vote.
    view, hidden = split(licence_task)
    auto = AutoImputer(candidates=(GlobalBaseline(), ComponentVote()))
    pred = auto.predict(view, hidden)
    assert auto.chosen_ == "component_majority"
    scores = auto.inner_scores_
    assert scores["component_majority"]["score"] > scores["global_majority"]["score"] + 0.5
    assert auto.inner_score_ == scores["component_majority"]["score"]
    assert np.array_equal(pred.value, ComponentVote().predict(view, hidden).value)


def test_auto_reports_its_choice_per_seed_in_the_evaluation(licence_task):
    from modelatlas.impute.evaluate import evaluate

    res = evaluate(licence_task, seeds=(0, 1), methods=[AutoImputer(candidates=(GlobalBaseline(), HubVote()))])
    row = res["results"][0]
    assert row["chosen"] == ["hub_majority", "hub_majority"]
    assert len(row["inner_score"]) == 2 and all(0.3 < s <= 1 for s in row["inner_score"])


def test_nested_selection_never_sees_the_outer_test_fold(licence_task):
    view, hidden = split(licence_task, seed=3)
    spies = (Spy(GlobalBaseline(), "a"), Spy(HubVote(), "b"), Spy(GraphKNN(3), "c"))
    auto = AutoImputer(candidates=spies, inner_folds=4)
    auto.predict(view, hidden)
    chosen = next(s for s in spies if s.label == auto.chosen_)
    for spy in spies:
        selection = spy.calls[:-1] if spy is chosen else spy.calls
        assert len(selection) == 4  # one call per inner fold
        folds = np.concatenate([q for _, q in selection])
        # the inner folds partition the outer training values: every one scored once, none hidden
        assert np.array_equal(np.sort(folds), np.flatnonzero(view.train))
        for train, query in selection:
            assert not train[hidden].any() and not np.isin(query, hidden).any()
            assert not train[query].any() and not (train & ~view.train).any()
    train, query = chosen.calls[-1]
    assert np.array_equal(train, view.train) and np.array_equal(query, hidden)


def test_selection_does_not_change_when_the_hidden_truth_does(licence_task):
    view, hidden = split(licence_task, seed=1)
    first = AutoImputer(candidates=(GlobalBaseline(), HubVote(), GraphKNN(1)))
    first.predict(view, hidden)
    scrambled = build_task(licence_task.facts, "license")
    scrambled.codes[hidden] = (scrambled.codes[hidden] + 1) % len(scrambled.classes)
    second = AutoImputer(candidates=(GlobalBaseline(), HubVote(), GraphKNN(1)))
    second.predict(TrainView(scrambled, view.train), hidden)
    assert second.chosen_ == first.chosen_ and second.inner_scores_ == first.inner_scores_


def test_auto_below_min_select_uses_its_first_candidate_and_says_so():
    task = build_task(planted_families(n_families=2, size=10).facts, "license")
    view, hidden = split(task)
    auto = AutoImputer(candidates=(HubVote(), GlobalBaseline()))
    auto.predict(view, hidden)
    assert auto.chosen_ == "hub_majority" and np.isnan(auto.inner_score_) and auto.inner_scores_ == {}
    with pytest.raises(InputError, match="inner_folds"):
        AutoImputer(inner_folds=1).predict(view, hidden)


def test_stored_imputations_name_what_auto_chose(licence_task):
    from modelatlas.impute.store import impute

    task = build_task(licence_task.facts, "license")
    hidden = split(task)[1]
    task.codes[hidden] = -1  # unknown now: these get imputed
    table = impute(task, "auto")
    assert table.num_rows >= hidden.size
    methods = set(table["method"].to_pylist())
    assert len(methods) == 1 and methods.pop() in {f"auto ({name})" for name in (
        "boosted", "hub_majority", "component_majority", "graph_knn_k1", "graph_knn_k3", "graph_knn_k5")}
