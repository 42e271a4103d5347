"""The science commands end to end: stats, top, impute, forensics, search, report (issue 5)."""

from __future__ import annotations

import json

import pytest

from modelatlas import Atlas
from modelatlas.cli import main
from science_atlases import small_atlas


@pytest.fixture(scope="module")
def atlas_path(tmp_path_factory):
    return small_atlas().save(tmp_path_factory.mktemp("sci") / "atlas.duckdb")


def call(args: list[str]) -> int:
    """``main`` returns 2 for user errors and exits through SystemExit otherwise."""
    try:
        return main(args)
    except SystemExit as exc:
        return exc.code or 0


def run_json(capsys, *args):
    assert call(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_stats_and_top_json(atlas_path, capsys):
    out = run_json(capsys, "stats", "--atlas", str(atlas_path), "--json")
    assert {"relation_mix", "quantized_leaves", "temporal_order", "depth_distribution", "descendant_downloads",
            "merge_influence", "documentation", "component_structure", "relation_audit"} == set(out["tables"])
    assert out["headline"][0]["paper"] == 0.9941
    top = run_json(capsys, "top", "--atlas", str(atlas_path), "--by", "sub_tree_downloads",
                   "--task", "text-generation", "--limit", "2", "--json")
    assert [r["id"] for r in top["rows"]] == ["meta/llama", "b/q1"]


def test_impute_evaluate_json_and_store(atlas_path, tmp_path, capsys):
    out = run_json(capsys, "impute", "--atlas", str(atlas_path), "--what", "license", "--evaluate", "--json",
                   "--seeds", "2")
    assert out["what"] == "license"
    methods = {r["method"] for r in out["results"]}
    assert {"global_majority", "hub_majority", "graph_knn", "auto"} <= methods
    assert all("accuracy" in r and r["n"] > 0 for r in out["results"])
    copy = small_atlas().save(tmp_path / "copy.duckdb")
    stored = run_json(capsys, "impute", "--atlas", str(copy), "--what", "license", "--json")
    assert stored["imputed"] == 2
    assert Atlas.load(copy).extras["imputations"].num_rows == 2


def test_forensics_and_search(atlas_path, capsys):
    rep = run_json(capsys, "forensics", "a/ft2", "--atlas", str(atlas_path), "--json")
    assert rep["licence_drift"][0]["path"] == "meta/llama -finetune-> a/ft1 -finetune-> a/ft2"
    drift = run_json(capsys, "forensics", "--licences", "--atlas", str(atlas_path), "--json")
    assert drift["cases"] == 4
    found = run_json(capsys, "search", "--atlas", str(atlas_path), "--descendants-of", "sd/sd",
                     "--rank-by", "downloads", "--json")
    assert [r["id"] for r in found["rows"]] == ["z/sdft", "y/lora3", "x/lora2", "x/lora1"]


def test_report_writes_markdown_html_and_figures(atlas_path, tmp_path, capsys):
    out = tmp_path / "report"
    assert call(["report", "--atlas", str(atlas_path), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "Model Atlas paper beside this atlas" in md and "0.9941" in md
    assert "<table>" in (out / "report.html").read_text()
    assert {"relation_mix_by_modality.png", "depth_by_modality.png"} <= {p.name for p in out.glob("*.png")}


@pytest.mark.parametrize("args, message", [
    (["forensics", "meta/lama"], "did you mean 'meta/llama'"),
    (["forensics"], "MODEL_ID"),
    (["impute", "--what", "stars"], "cannot impute 'stars'"),
    (["top", "--task", "nope"], "no model has task 'nope'"),
    (["search", "--rank-by", "score:foo"], "no model has a score"),
    (["search", "--transfer-to", "translation"], "no model is known to do"),
])
def test_bad_input_is_one_line(atlas_path, capsys, args, message):
    assert call([*args, "--atlas", str(atlas_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_atlas_file(tmp_path, capsys):
    assert call(["stats", "--atlas", str(tmp_path / "none.duckdb")]) == 2
    assert "no atlas here" in capsys.readouterr().err
