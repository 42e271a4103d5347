"""The "Anatomy" analyses on cases with known answers: structure counts against enumeration,
uniform samplers, orderings against all permutations, virality against all-pairs BFS, similarity
on hand-made strings, mutation and drift rules, documentation, and bad input."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import networkx as nx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas import Atlas
from modelatlas.ecosystem import ordering as ordering_module
from modelatlas.ecosystem.documentation import documentation
from modelatlas.ecosystem.drift import drift_graph
from modelatlas.ecosystem.mutation import mutation_rate
from modelatlas.ecosystem.ordering import linear_ordering, order_value, trait_ordering
from modelatlas.ecosystem.similarity import TextSimilarity, bootstrap_ci, family_similarity, findings
from modelatlas.ecosystem.structures import (
    CONFIGURATIONS,
    STRUCTURES,
    count_parent_with_children,
    count_structures,
    sample_structure,
)
from modelatlas.ecosystem.tree import FinetuneTree, finetune_tree
from modelatlas.ecosystem.virality import structural_virality
from modelatlas.errors import ModelAtlasError


# ----------------------------------------------------------------------------- helpers
def make_atlas(parent, *, license=None, task=None, languages=None, cards=None, relation="finetune"):
    """A hand-made atlas: model ``i`` is ``org/m{i}``, ``parent[i]`` its fine-tune parent or -1."""
    n = len(parent)
    ids = [f"org/m{i:03d}" for i in range(n)]
    cards = cards if cards is not None else [f"card of model {i} " * 40 for i in range(n)]
    rec = {"id": ids, "placeholder": [False] * n,
           "license": license or ["mit"] * n, "pipeline_tag": task or ["text-generation"] * n,
           "languages": languages if languages is not None else [["en"]] * n,
           "card_text": cards, "card_length": [len(c) if c else None for c in cards],
           "card_present": [bool(c) for c in cards], "tags": [[f"license:{x}"] for x in (license or ["mit"] * n)],
           "downloads": list(range(n))}
    kids = [i for i, p in enumerate(parent) if p >= 0]
    m = len(kids)
    ev = {"parent": [ids[parent[i]] for i in kids], "child": [ids[i] for i in kids], "relation": [relation] * m,
          "relation_rule": ["typed_tag"] * m, "provenance": ["hub_tag"] * m, "confidence": [1.0] * m,
          "source": ["test"] * m}
    return Atlas.build(pa.table(rec), pa.table(ev))


@st.composite
def random_forests(draw, max_nodes=12):
    n = draw(st.integers(1, max_nodes))
    parent = [-1]
    for i in range(1, n):
        parent.append(draw(st.integers(-1, i - 1)))
    return parent


def shape_of(nodes: tuple, parent: list) -> str | None:
    """Classify a node set of a forest as one of the structures (None if not connected)."""
    s = set(nodes)
    roots = [v for v in s if parent[v] not in s]
    if len(roots) != 1:
        return None
    kids = {v: [c for c in s if parent[c] == v] for v in s}
    depth = {roots[0]: 0}
    stack = [roots[0]]
    while stack:
        v = stack.pop()
        for c in kids[v]:
            depth[c] = depth[v] + 1
            stack.append(c)
    height = max(depth.values())
    k = len(s)
    if k == 2:
        return "edge"
    if k == 3:
        return "chain3" if height == 2 else "siblings"
    if k == 4:
        if height == 3:
            return "chain4"
        if height == 1:
            return "star3"
        root_kids = len(kids[roots[0]])
        return "fork_below" if root_kids == 1 else "uncle"
    return None


def brute_force_counts(parent: list) -> Counter:
    n = len(parent)
    counts = Counter({name: 0 for name in STRUCTURES})
    counts["random_pair"] = n * (n - 1) // 2
    for k in (2, 3, 4):
        for nodes in itertools.combinations(range(n), k):
            shape = shape_of(nodes, parent)
            if shape:
                counts[shape] += 1
    return counts


# ----------------------------------------------------------------------------- structures
@settings(max_examples=60, deadline=None)
@given(random_forests())
def test_structure_counts_match_enumeration(parent):
    tree = FinetuneTree.from_parents(parent)
    assert count_structures(tree) == dict(brute_force_counts(parent))


@settings(max_examples=30, deadline=None)
@given(random_forests(), st.integers(1, 5))
def test_parent_with_k_children(parent, k):
    tree = FinetuneTree.from_parents(parent)
    kids = Counter(p for p in parent if p >= 0)
    assert count_parent_with_children(tree, k) == sum(len(list(itertools.combinations(range(c), k)))
                                                       for c in kids.values())


def test_counts_are_exact_beyond_int64_products():
    # one parent with 2 million children: C(2e6, 3) ~ 1.3e18, exact as a Python int
    n = 2_000_001
    parent = np.zeros(n, dtype=np.int64)
    parent[0] = -1
    counts = count_structures(FinetuneTree.from_parents(parent))
    m = n - 1
    assert counts["star3"] == m * (m - 1) * (m - 2) // 6
    assert counts["siblings"] == m * (m - 1) // 2
    assert counts["random_pair"] == n * (n - 1) // 2


@pytest.mark.parametrize("structure", [s for s in STRUCTURES if s != "random_pair"])
def test_samplers_are_uniform_over_instances(structure):
    # a tree with uneven branching, so that a non-weighted sampler would be visibly biased
    parent = [-1, 0, 0, 0, 1, 1, 1, 1, 2, 4, 4, 4, 9, 9, 8, 3, 3]
    tree = FinetuneTree.from_parents(parent)
    instances = [frozenset(c) for k in (2, 3, 4) for c in itertools.combinations(range(len(parent)), k)
                 if shape_of(c, parent) == structure]
    draws = 200 * len(instances)
    sample = sample_structure(tree, structure, draws, rng=7)
    assert sample.shape == (draws, len(STRUCTURES[structure]))
    seen = Counter(frozenset(row) for row in sample.tolist())
    assert set(seen) == set(instances)  # every draw is a valid instance, and each is reached
    for row in sample[:200].tolist():  # roles are in order: the first role is the top of the structure
        assert shape_of(tuple(row), parent) == structure and parent[row[0]] not in row
    freq = np.array([seen[i] for i in instances]) / draws
    assert np.abs(freq - 1 / len(instances)).max() < 4 * np.sqrt(1 / len(instances) / draws) + 1e-9


def test_configurations_are_24_within_family_plus_random():
    assert len(CONFIGURATIONS) == 25
    assert sum(c.structure != "random_pair" for c in CONFIGURATIONS) == 24
    for conf in CONFIGURATIONS:
        roles = STRUCTURES[conf.structure]
        assert conf.a in roles and conf.b in roles and conf.a != conf.b


def test_single_node_family_and_empty_samplers():
    tree = FinetuneTree.from_parents([-1])
    assert count_structures(tree) == {name: 0 for name in STRUCTURES}
    assert sample_structure(tree, "siblings", 10, rng=0).shape == (0, 3)
    assert sample_structure(tree, "random_pair", 10, rng=0).shape == (0, 2)
    vir = structural_virality(tree)
    assert vir["single_node_families"] == 1 and np.isnan(vir["virality"][0])


# ----------------------------------------------------------------------------- tree extraction
def test_finetune_tree_keeps_one_parent_and_skips_other_relations():
    atlas = make_atlas([-1, 0, 1])
    tree = finetune_tree(atlas)
    assert tree.parent.tolist() == [-1, 0, 1]
    adapters = make_atlas([-1, 0, 1], relation="adapter")
    assert finetune_tree(adapters).num_edges == 0


# ----------------------------------------------------------------------------- virality
@settings(max_examples=40, deadline=None)
@given(random_forests(max_nodes=25))
def test_virality_matches_all_pairs_bfs(parent):
    tree = FinetuneTree.from_parents(parent)
    vir = structural_virality(tree)
    g = nx.Graph()
    g.add_nodes_from(range(len(parent)))
    g.add_edges_from((p, c) for c, p in enumerate(parent) if p >= 0)
    for comp in nx.connected_components(g):
        label = vir["labels"][next(iter(comp))]
        if len(comp) == 1:
            assert np.isnan(vir["virality"][label])
        else:
            expected = nx.average_shortest_path_length(g.subgraph(comp))
            assert vir["virality"][label] == pytest.approx(expected)


def test_virality_star_and_path():
    star = FinetuneTree.from_parents([-1, 0, 0, 0, 0])
    assert structural_virality(star)["virality"][0] == pytest.approx(2 * (1 - 1 / 5))  # Goel et al.: 2(1 - 1/n)
    path = FinetuneTree.from_parents([-1, 0, 1, 2, 3])
    assert structural_virality(path)["virality"][0] == pytest.approx((5 + 1) / 3)  # (n + 1) / 3


# ----------------------------------------------------------------------------- ordering
@settings(max_examples=40, deadline=None)
@given(st.integers(2, 7).flatmap(lambda n: st.lists(st.integers(0, 6), min_size=n * n, max_size=n * n)))
def test_ordering_matches_brute_force(flat):
    n = int(round(len(flat) ** 0.5))
    w = np.array(flat, dtype=float).reshape(n, n)
    np.fill_diagonal(w, 0)
    result = linear_ordering(w)
    best = max(order_value(w, p) for p in itertools.permutations(range(n)))
    assert result.optimal and result.objective == pytest.approx(best)
    assert sorted(result.order) == list(range(n))
    assert order_value(w, result.order) == pytest.approx(result.objective)


def test_traffic_objective_maximises_agreeing_mutations():
    lic = ["a", "b", "b", "b", "c", "a", "c", "c", "b"]
    atlas = make_atlas([-1, 0, 0, 0, 1, 4, 5, 4, 7], license=lic)
    drift = drift_graph(atlas, finetune_tree(atlas), "license")
    result = trait_ordering(drift, objective="traffic")
    best = max(order_value(drift.traffic, p) for p in itertools.permutations(range(drift.size)))
    assert result["mutations_explained"] == pytest.approx(best / drift.traffic.sum())
    with pytest.raises(ModelAtlasError, match="unknown ordering objective"):
        trait_ordering(drift, objective="votes")


def test_ordering_eight_values_brute_force():
    rng = np.random.default_rng(3)
    w = rng.integers(0, 4, (8, 8)).astype(float)
    np.fill_diagonal(w, 0)
    best = max(order_value(w, p) for p in itertools.permutations(range(8)))
    assert linear_ordering(w).objective == pytest.approx(best)


def _hard_instance(n=45, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 100, (n, n)).astype(float)
    np.fill_diagonal(w, 0)
    return w


def test_ordering_time_limit_is_labelled_with_bound():
    w = _hard_instance()
    result = linear_ordering(w, time_limit=0.05)
    assert result.status == "time_limit" and result.method in ("heuristic", "milp")
    assert result.bound >= result.objective and 0 <= result.gap < 1
    assert result.objective >= order_value(w, ordering_module.heuristic_order(w))
    assert "time limit" in result.message


def test_ordering_without_solver_falls_back(monkeypatch):
    monkeypatch.setattr(ordering_module, "_load_milp", lambda: None)
    w = np.triu(np.ones((6, 6)), 1)[::-1, ::-1]  # a transitive tournament: the heuristic is exact
    result = linear_ordering(w)
    assert result.method == "heuristic" and result.status == "optimal"
    assert "not available" in result.message
    result = linear_ordering(_hard_instance(12))
    assert result.status == "solver_unavailable" and result.bound >= result.objective


def test_ordering_above_max_exact_uses_heuristic():
    result = linear_ordering(_hard_instance(30), max_exact=10)
    assert result.status in ("too_large", "optimal") and result.method == "heuristic"


# ----------------------------------------------------------------------------- similarity
def test_levenshtein_and_cosine_on_hand_made_strings():
    lev = TextSimilarity("levenshtein").fit([])
    assert lev.pairs(["kitten"], ["sitting"])[0] == pytest.approx(1 - 3 / 7)
    bow = TextSimilarity("bow").fit(["apple banana", "apple cherry"])
    # terms: apple, banana, cherry, "apple banana", "apple cherry"; one shared of three each
    assert bow.pairs(["apple banana"], ["apple cherry"])[0] == pytest.approx(1 / 3)
    tfidf = TextSimilarity("tfidf").fit(["apple banana", "apple cherry", "kiwi melon"])
    sims = tfidf.pairs(["apple banana", "apple banana"], ["apple banana", "kiwi melon"])
    assert sims[0] == pytest.approx(1.0) and sims[1] == pytest.approx(0.0)
    assert 0 < tfidf.pairs(["apple banana"], ["apple cherry"])[0] < 1 / 3  # the shared term is common: idf lowers it


def test_vocabulary_is_capped_at_max_features():
    corpus = [" ".join(f"w{i}x{j}" for j in range(30)) for i in range(40)]
    model = TextSimilarity("tfidf", max_features=512).fit(corpus)
    assert len(model.vectorizer_.vocabulary_) == 512


def test_bootstrap_interval_contains_mean():
    values = np.random.default_rng(0).normal(0.5, 0.1, 500)
    low, high = bootstrap_ci(values, rng=1)
    assert low < values.mean() < high and high - low < 0.05
    assert all(np.isnan(bootstrap_ci(np.array([np.nan]))))


def test_family_resemblance_found_on_inherited_traits():
    # children copy the parent's licence, task and languages with a few mutations, so relatives
    # share more metadata than random pairs
    rng = np.random.default_rng(0)
    n, roots = 400, 40
    parent = [-1] * roots + [int(rng.integers(0, i)) for i in range(roots, n)]
    lic = [str(rng.choice(["mit", "apache-2.0", "gemma", "llama3", "cc-by-4.0", "gpl-3.0"])) for _ in range(roots)]
    task = [str(rng.choice(["text-generation", "fill-mask", "translation", "image-classification"])) for _ in range(roots)]
    for i in range(roots, n):
        lic.append(lic[parent[i]] if rng.random() < 0.8 else "apache-2.0")
        task.append(task[parent[i]] if rng.random() < 0.8 else "text-generation")
    atlas = make_atlas(parent, license=lic, task=task)
    rows = family_similarity(atlas, finetune_tree(atlas), samples=300, measures=("tfidf",), rng=0, resamples=200)
    assert len(rows) == len(CONFIGURATIONS)
    f = findings(rows)
    assert f["random_mean"] < f["mean_by_generations"][1]
    assert all(r["low"] <= r["mean"] <= r["high"] for r in rows if r["n"])


def test_card_similarity_excludes_short_and_generated_cards():
    cards = ["x" * 600, "This model card has been generated automatically. " * 20, "short", None]
    atlas = make_atlas([-1, 0, 0, 0], cards=cards)
    rows = family_similarity(atlas, finetune_tree(atlas), samples=50, measures=("levenshtein",),
                             artifact="card", rng=0, resamples=50)
    edge = next(r for r in rows if r["configuration"] == "edge:parent~child")
    assert edge["n"] == 0 and edge["excluded"] == 50 and np.isnan(edge["mean"])


# ----------------------------------------------------------------------------- mutation and drift
def test_mutation_rate_jaccard_rule():
    atlas = make_atlas([-1, 0, 0, 0], license=["llama3", "llama3", "mit", None],
                       languages=[["en", "fr", "de"], ["en", "es"], ["en", "fr", "de"], []])
    tree = finetune_tree(atlas)
    lang = mutation_rate(atlas, tree, "language")
    assert lang["observed"] == 2 and lang["rate"] == pytest.approx((0.75 + 0.0) / 2)
    assert lang["partial_mutations"] == 1 and lang["full_mutations"] == 0
    lic = mutation_rate(atlas, tree, "license")
    assert lic["observed"] == 2 and lic["rate"] == pytest.approx(0.5) and lic["full_mutations"] == 1


def test_drift_rules_gained_and_lost():
    atlas = make_atlas([-1, 0], languages=[["en", "fr", "de"], ["en", "es"]])
    drift = drift_graph(atlas, finetune_tree(atlas), "language", top=0)
    t = {(drift.values[i], drift.values[j]): int(drift.traffic[i, j]) for i, j in zip(*np.nonzero(drift.traffic))}
    # gained es: en/fr/de -> es; lost fr, de: -> en, es (each distinct pair once per edge)
    assert t == {("en", "es"): 1, ("fr", "es"): 1, ("de", "es"): 1, ("fr", "en"): 1, ("de", "en"): 1}


def test_drift_single_valued_counts_each_change_once_and_orients_by_net_traffic():
    lic = ["gemma", "mit", "mit", "apache-2.0", "gemma", "mit", "other"]
    atlas = make_atlas([-1, 0, 0, 0, 2, 4, 5], license=lic)
    drift = drift_graph(atlas, finetune_tree(atlas), "license")
    assert "other" not in drift.values
    i = {v: k for k, v in enumerate(drift.values)}
    assert drift.traffic[i["gemma"], i["mit"]] == 3 and drift.traffic[i["mit"], i["gemma"]] == 1
    assert {(d["source"], d["target"], d["net"]) for d in drift.drifts()} == {("gemma", "mit", 2),
                                                                          ("gemma", "apache-2.0", 1)}
    result = trait_ordering(drift)
    assert result["order"][0] == "gemma" and result["drifts_explained"] == 1.0
    assert result["mutations_explained"] == pytest.approx(4 / 5)


def test_bad_traits_raise_clear_errors():
    atlas = make_atlas([-1, 0, 0], license=[None, None, None])
    tree = finetune_tree(atlas)
    with pytest.raises(ModelAtlasError, match="no model in the atlas has a value for trait 'license'"):
        mutation_rate(atlas, tree, "license")
    one = make_atlas([-1, 0, 0], license=["mit", "mit", "unknown"])
    with pytest.raises(ModelAtlasError, match="needs at least 2"):
        drift_graph(one, finetune_tree(one), "license")
    with pytest.raises(ModelAtlasError, match="unknown trait"):
        mutation_rate(atlas, tree, "colour")
    lonely = make_atlas([-1, -1], license=["mit", "gemma"])
    with pytest.raises(ModelAtlasError, match="no fine-tune edge"):
        mutation_rate(lonely, finetune_tree(lonely), "license")


# ----------------------------------------------------------------------------- documentation
def test_documentation_lengths_autogeneration_and_presence():
    cards = ["a" * 1000, "This card was automatically generated. " + "b" * 461, None, "c" * 300]
    atlas = make_atlas([-1, 0, 0, -1], cards=cards)
    doc = documentation(atlas, finetune_tree(atlas))
    assert doc["length"]["pairs"] == 1 and doc["length"]["ratio_of_means"] == pytest.approx(2.0)
    assert doc["autogenerated"]["derivatives"] == {"n": 1, "count": 1, "share": 1.0}
    assert doc["presence"]["in_family"]["share"] == pytest.approx(2 / 3)
    assert doc["presence"]["outside_family"] == {"n": 1, "count": 1, "share": 1.0}


def test_documentation_without_cards_is_a_clear_error():
    atlas = make_atlas([-1, 0], cards=[None, None])
    with pytest.raises(ModelAtlasError, match="no model in the atlas has a model card"):
        documentation(atlas, finetune_tree(atlas))


# ----------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def atlas_file(tmp_path_factory):
    rng = np.random.default_rng(5)
    n = 120
    parent = [-1] + [int(rng.integers(0, i)) for i in range(1, n)]
    lics = ["gemma", "llama3", "mit", "apache-2.0"]
    lic = [lics[min(3, int(rng.integers(0, 2)) + (1 if i > n // 2 else 0) * 2)] for i in range(n)]
    langs = [list(rng.choice(["en", "fr", "de", "zh"], size=int(rng.integers(1, 4)), replace=False)) for _ in range(n)]
    path = tmp_path_factory.mktemp("eco") / "atlas.duckdb"
    make_atlas(parent, license=lic, languages=langs).save(path)
    return path


def run_cli(args, capsys):
    from modelatlas.cli import main

    try:
        code = main(args)
    except SystemExit as exc:  # typer exits with click's status on success
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_ordering_json(atlas_file, capsys):
    code, out, _ = run_cli(["ecosystem", "ordering", "--atlas", str(atlas_file), "--trait", "license", "--json"], capsys)
    doc = json.loads(out)
    assert {"order", "drifts_explained", "mutations_explained", "status", "gap"} <= set(doc)
    assert sorted(doc["order"]) == ["apache-2.0", "gemma", "llama3", "mit"]


def test_cli_every_command_runs(atlas_file, capsys, tmp_path):
    for cmd in (["structures", "--k", "4"], ["mutation"], ["drift", "--trait", "language"], ["documentation"],
                ["languages"], ["virality"], ["summary"], ["similarity", "--samples", "50", "-m", "bow"]):
        code, out, err = run_cli(["ecosystem", *cmd, "--atlas", str(atlas_file), "--json",
                                  "--plot", str(tmp_path / f"{cmd[0]}.png")], capsys)
        assert code == 0, (cmd, err)
        json.loads(out)
        assert (tmp_path / f"{cmd[0]}.png").stat().st_size > 1000


def test_cli_report(atlas_file, capsys, tmp_path):
    code, _, err = run_cli(["ecosystem", "report", "--atlas", str(atlas_file), "--out", str(tmp_path / "r"),
                            "--samples", "40"], capsys)
    assert code == 0, err
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Mutation rates" in md and "![similarity_metadata](similarity_metadata.png)" in md
    assert "not computed" in md  # the hand-made atlas has no library: labelled, not dropped
    assert json.loads((tmp_path / "r" / "results.json").read_text())["mutation"]["license"]["rate"] >= 0


def test_cli_bad_input_is_one_line(atlas_file, capsys):
    code, out, err = run_cli(["ecosystem", "ordering", "--atlas", str(atlas_file), "--trait", "library"], capsys)
    assert code == 2 and "no model in the atlas has a value for trait 'library'" in err
    assert "Traceback" not in err
    code, _, err = run_cli(["ecosystem", "similarity", "--atlas", str(atlas_file), "--pair", "org/m000",
                            "--pair", "org/nope"], capsys)
    assert code == 2 and "org/nope" in err


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def hf_atlas(hf_trees_path):
    pipeline = pytest.importorskip("modelatlas.ingest.pipeline",
                                   reason="the ingest readers (modelatlas.ingest.pipeline) are not on this branch")
    atlas, _ = pipeline.ingest([str(hf_trees_path)])
    return atlas


def test_real_hf_trees_reproduces_the_directions(hf_atlas):
    tree = finetune_tree(hf_atlas)
    assert tree.num_edges > 1000
    counts = count_structures(tree)
    k, par = tree.out_degree, tree.parent
    kids = np.flatnonzero(par >= 0)
    assert counts["uncle"] == sum(int((k[par[v]] - 1) * k[v]) for v in kids)
    rows = family_similarity(hf_atlas, tree, samples=1000, measures=("tfidf",), rng=0, resamples=200)
    f = findings(rows)
    assert f["same_family_above_random"] and f["siblings_above_parent_child"] and f["falls_with_generations"]
    task = mutation_rate(hf_atlas, tree, "task")
    assert 0 < task["rate"] < 0.5
    drift = drift_graph(hf_atlas, tree, "language")
    en = drift.values.index("en")
    assert drift.traffic[:, en].sum() > 5 * drift.traffic[en, :].sum()  # languages drift toward English
    order = trait_ordering(drift_graph(hf_atlas, tree, "license"))
    assert order["optimal"] and order["drifts_explained"] > 0.9
