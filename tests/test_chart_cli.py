"""``modelatlas chart`` / ``bench chart`` end to end, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from modelatlas.chart import ChartInput, get_method
from modelatlas.cli import app
from modelatlas.errors import InputError

runner = CliRunner()
HOUR = 3600


def _write_zoo(root: Path, *, absent: tuple[str, ...] = (), same_time: bool = False,
               nan_model: str | None = None) -> Path:
    """A hand-made zoo: two architectures; per architecture a root, two fine-tunes, a grandchild
    and an exact re-upload, written as safetensors with a manifest."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    models = []
    for arch, (rows, cols) in {"mlp-a": (32, 24), "mlp-b": (40, 16)}.items():
        base = {"l1.weight": rng.standard_t(5, (rows, cols)).astype(np.float32),
                "l2.weight": rng.standard_t(5, (cols, cols)).astype(np.float32)}
        plan = [("root", None, 0.0), ("ft-0", "root", 0.05), ("ft-1", "root", 0.05),
                ("ft-0.0", "ft-0", 0.05), ("reupload", "ft-1", 0.0)]
        weights = {}
        for k, (name, parent, step) in enumerate(plan):
            src = base if parent is None else weights[parent]
            w = {t: (v + rng.normal(0, step, v.shape)).astype(np.float32) if step else v.copy()
                 for t, v in src.items()}
            if name == nan_model:
                w["l1.weight"][0, 0] = np.nan
            weights[name] = w
            mid = f"{arch}/{name}"
            rel = f"models/{arch}-{name}.safetensors"
            if mid not in absent:
                (root / "models").mkdir(parents=True, exist_ok=True)
                save_file(w, str(root / rel))
            t = 0 if same_time else k * 24 * HOUR + (0 if arch == "mlp-a" else 1000 * HOUR)
            models.append({"id": mid, "path": rel,
                           "created_at": "2024-01-01T00:00:00Z" if same_time else
                           np.datetime_as_string(np.datetime64("2024-01-01T00:00:00") + np.timedelta64(t, "s")) + "Z",
                           "parents": [] if parent is None else [f"{arch}/{parent}"],
                           "relation": None if parent is None else "finetune", "documented_parents": False,
                           "component": arch, "architecture": arch,
                           "pattern": "root" if parent is None else ("duplicate" if name == "reupload" else "finetune")})
    (root / "manifest.json").write_text(json.dumps({"name": "hand", "models": models}))
    return root


def _run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def test_chart_command_json_accuracy_and_atlas(tmp_path):
    zoo = _write_zoo(tmp_path / "zoo")
    atlas = tmp_path / "a.duckdb"
    res = _run("chart", zoo, "--method", "auto", "--atlas", atlas, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["method"] == "auto" and out["n_models"] == 10 and out["seconds"] >= 0
    assert out["accuracy"] == 1.0
    assert any("2 architectures" in m for m in out["messages"])
    from modelatlas.atlas.atlas import Atlas

    a = Atlas.load(atlas)
    edges = a.edges.to_pylist()
    assert {e["provenance"] for e in edges} == {"predicted:auto"}
    assert ("mlp-a/ft-0", "mlp-a/ft-0.0") in {(e["parent"], e["child"]) for e in edges}
    assert all(0.0 <= e["confidence"] <= 1.0 for e in edges)


def test_a_manifest_of_parents_alone_is_charted_and_scored(tmp_path):
    """Another generator's zoo may record only ids, files, times and parents (no relation, pattern,
    component or architecture): it is charted and scored like a full manifest (docs/zoo.md)."""
    zoo = _write_zoo(tmp_path / "zoo")
    doc = json.loads((zoo / "manifest.json").read_text())
    doc["models"] = [{k: m[k] for k in ("id", "path", "created_at", "parents")} for m in doc["models"]]
    (zoo / "manifest.json").write_text(json.dumps(doc))
    res = _run("chart", zoo, "--method", "auto", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["accuracy"] == 1.0
    res = _run("bench", "chart", "--families", f"hand={zoo}", "--families", f"again={zoo}", "--seeds", "1",
               "--no-ablations", "--method", "auto", "--json")
    assert res.exit_code == 0, res.output
    assert {r["family"] for r in json.loads(res.stdout)["results"]} == {"hand", "again"}


@pytest.mark.parametrize("method", ["random", "random-root", "majority", "price", "mother", "atlas", "learned"])
def test_every_method_runs_from_the_command_line(tmp_path, method):
    zoo = _write_zoo(tmp_path / "zoo")
    res = _run("chart", zoo, "--method", method, "--stem", "0.1", "--json")
    assert res.exit_code == 0, res.output
    assert 0.0 <= json.loads(res.stdout)["accuracy"] <= 1.0


def test_bench_chart_json(tmp_path):
    zoo = _write_zoo(tmp_path / "zoo")
    res = _run("bench", "chart", "--zoo", zoo, "--seeds", "1", "--no-ablations", "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["results"]
    assert {r["method"] for r in rows} >= {"auto", "atlas", "mother", "price"}
    assert all({"method", "zoo", "accuracy", "seconds"} <= set(r) for r in rows)


def test_bench_chart_families_scores_each_family_out_of_family(tmp_path, monkeypatch):
    from modelatlas.chart import families

    monkeypatch.setattr(families, "TUNED", {"time_penalty": (4.0,)})
    a = _write_zoo(tmp_path / "a")
    b = _write_zoo(tmp_path / "b")
    res = _run("bench", "chart", "--families", f"mine={a}", "--families", f"mine={b}", "--synthetic", "60",
               "--seeds", "1", "--no-ablations", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert {r["family"] for r in report["results"]} == {"mine", "synthetic"}
    assert all(z.startswith("synthetic/") for z in report["fitted"]["mine"]["zoos"])
    auto = next(s for s in report["summary"] if s["method"] == "auto")
    assert auto["worst"] == min(r["accuracy"] for r in report["results"] if r["method"] == "auto")
    res = _run("bench", "chart", "--families", f"mine={a}", "--seeds", "1", "--json")
    assert isinstance(res.exception, InputError) and "at least two families" in str(res.exception)


def test_bench_chart_families_scores_the_methods_asked_for(tmp_path):
    a = _write_zoo(tmp_path / "a")
    res = _run("bench", "chart", "--families", f"mine={a}", "--synthetic", "60", "--seeds", "1", "--no-ablations",
               "--method", "learned", "--method", "atlas", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert {r["method"] for r in report["results"]} == {"learned", "atlas"}
    assert report["fitted"]["mine"]["learned_zoos"] and all(
        z.startswith("synthetic/") for z in report["fitted"]["mine"]["learned_zoos"])
    res = _run("bench", "chart", "--synthetic", "30", "--method", "nope")
    assert res.exit_code != 0 and "unknown charting method" in str(res.exception or res.output)


def test_absent_file_nan_and_unknown_method_are_reported(tmp_path):
    zoo = _write_zoo(tmp_path / "zoo", absent=("mlp-a/ft-1",), nan_model="ft-0.0")
    res = _run("chart", zoo, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    text = " ".join(out["messages"])
    assert "mlp-a/ft-1" in text and "absent" in text
    assert "NaN" in text and out["n_models"] == 7  # 10 - absent - 2 NaN fingerprints
    res = _run("chart", zoo, "--method", "nope")
    assert res.exit_code != 0 and "unknown charting method" in str(res.exception or res.output)


def test_identical_times_fall_back_with_a_message(tmp_path):
    zoo = _write_zoo(tmp_path / "zoo", same_time=True)
    out = json.loads(_run("chart", zoo, "--json").stdout)
    assert any("without distinct upload times" in m for m in out["messages"])
    out = json.loads(_run("chart", zoo, "--method", "atlas", "--json").stdout)
    assert any("input row" in m for m in out["messages"])


def test_single_model_all_duplicates_cycles_and_nan():
    one = ChartInput(ids=["a"], vectors=np.ones((1, 4)))
    for name in ("auto", "atlas", "mother", "random", "majority", "price", "random-root"):
        assert len(get_method(name).chart(one).parent) == 0
    dup = ChartInput(ids=list("abcd"), vectors=np.ones((4, 8)), created_at=np.arange(4.0))
    ps = get_method("auto").chart(dup).parent_sets()
    assert ps == {1: {0}, 2: {0}, 3: {0}}  # copies of the first upload
    with pytest.raises(Exception, match="cycle"):
        get_method("auto").chart(dup, known_edges={0: (1,), 1: (2,), 2: (0,)})
    with pytest.raises(Exception, match="NaN"):
        ChartInput(ids=["a", "b"], vectors=np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_architectures_are_never_compared():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(6, 16))
    v[3:] = v[:3] + 1e-3  # near-copies, but of another architecture
    models = ChartInput(ids=list("abcdef"), vectors=v, created_at=np.arange(6.0),
                        groups=np.array(["x"] * 3 + ["y"] * 3, dtype=object))
    for name in ("auto", "atlas", "mother", "random"):
        r = get_method(name).chart(models)
        assert np.all((r.parent < 3) == (r.child < 3)), name


def test_tiny_zoo_end_to_end(tiny_zoo):
    from modelatlas.chart.evaluate import evaluate
    from modelatlas.chart.zoo_input import load_zoo_input

    data = load_zoo_input(tiny_zoo.root)
    scores = {m: evaluate(get_method(m), data.models, data.truth, seeds=(0,)).accuracy
              for m in ("auto", "atlas", "mother")}
    assert scores["auto"] >= 0.85
    assert scores["auto"] > scores["atlas"] and scores["auto"] > scores["mother"]
