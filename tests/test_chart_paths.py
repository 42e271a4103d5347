"""``chart PATH...`` without a manifest: HF folders, cache snapshots, shards, cards, bad input, the store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file
from typer.testing import CliRunner

from modelatlas.weights.discover import discover_models
from modelatlas.cli import app
from modelatlas.weights.store import FingerprintStore

runner = CliRunner()


def _weights(rng, base=None, step=0.05):
    shapes = {"encoder.l0.query.weight": (24, 24), "encoder.l0.value.weight": (24, 24),
              "encoder.l0.dense.weight": (48, 24), "encoder.l0.dense.bias": (48,)}
    if base is None:
        return {n: rng.standard_t(5, s).astype(np.float32) for n, s in shapes.items()}
    return {n: (v + rng.normal(0, step, v.shape)).astype(np.float32) for n, v in base.items()}


def _hf_folder(folder: Path, tensors: dict, *, base_model=None, relation=None, created=None,
               model_type="bert") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    front = []
    if base_model:
        front.append(f"base_model: {base_model}")
    if relation:
        front.append(f"base_model_relation: {relation}")
    if created:
        front.append(f"created_at: '{created}'")
    (folder / "README.md").write_text("---\n" + "\n".join(front) + "\n---\n# a model\n")
    return folder


def _cache_entry(root: Path, repo: str, tensors: dict, rev: str = "abc123", **card) -> Path:
    entry = root / ("models--" + repo.replace("/", "--"))
    snap = _hf_folder(entry / "snapshots" / rev, tensors, **card)
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(rev)
    return snap


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_hf_folders_and_cache_entries_give_ids_parents_and_times(tmp_path):
    rng = np.random.default_rng(0)
    base = _weights(rng)
    _cache_entry(tmp_path / "hub", "org/base-model", base, created="2023-01-01T00:00:00Z")
    child = _weights(rng, base)
    _hf_folder(tmp_path / "mine" / "my-finetune", child, base_model="org/base-model", relation="finetune",
               created="2024-02-01T00:00:00Z")
    found = discover_models([tmp_path / "hub", tmp_path / "mine"])
    assert found.messages == []
    by_id = {m.meta.id: m.meta for m in found.models}
    assert set(by_id) == {"org/base-model", "my-finetune"}
    assert by_id["my-finetune"].documented_parents == ("org/base-model",)
    assert by_id["my-finetune"].declared_relation == "finetune" and by_id["my-finetune"].model_type == "bert"
    assert by_id["org/base-model"].created_at_source == "card"
    assert [m.weights.name for m in found.models] == ["model.safetensors"] * 2


def test_cache_time_from_saved_hub_answer_and_flagged_mtime_fallback(tmp_path):
    rng = np.random.default_rng(1)
    snap = _cache_entry(tmp_path, "org/a", _weights(rng))
    (snap.parent.parent / "model_info.json").write_text(json.dumps({"createdAt": "2022-06-01T12:00:00.000Z"}))
    _cache_entry(tmp_path, "org/b", _weights(rng))
    found = discover_models([tmp_path])
    meta = {m.meta.id: m.meta for m in found.models}
    assert meta["org/a"].created_at_source == "hub_cache" and meta["org/b"].created_at is None
    flagged = {m.meta.id: m.meta for m in discover_models([tmp_path], mtime_fallback=True).models}
    assert flagged["org/b"].created_at_source == "file_mtime"
    assert any("modification time" in n for n in flagged["org/b"].notes)
    assert flagged["org/a"].created_at_source == "hub_cache"  # a documented time is never replaced


def test_bad_inputs_are_named_and_the_run_goes_on(tmp_path):
    rng = np.random.default_rng(2)
    good = _hf_folder(tmp_path / "good", _weights(rng))
    two = tmp_path / "two"
    two.mkdir()
    (two / "README.md").write_text("# two models\n")
    save_file(_weights(rng), str(two / "a.safetensors"))
    save_file(_weights(rng), str(two / "b.safetensors"))
    shards = tmp_path / "sharded"
    shards.mkdir()
    w = _weights(rng)
    save_file({k: v for k, v in w.items() if "query" in k}, str(shards / "model-00001-of-00002.safetensors"))
    (shards / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "encoder.l0.query.weight": "model-00001-of-00002.safetensors",
        "encoder.l0.value.weight": "model-00002-of-00002.safetensors"}}))
    pickle_dir = tmp_path / "pickled"
    pickle_dir.mkdir()
    (pickle_dir / "config.json").write_text("{}")
    (pickle_dir / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not read")
    keras = tmp_path / "model.h5"
    keras.write_bytes(b"\x89HDF")
    found = discover_models([two, good, shards, pickle_dir, keras, tmp_path / "absent"])
    assert [m.meta.id for m in found.models] == ["good"]
    text = "\n".join(found.messages)
    assert "two models in one folder" in text and "a.safetensors" in text
    assert "1 of 2 shards missing (model-00002-of-00002.safetensors)" in text
    assert "never unpickles" in text and "pytorch_model.bin" in text and "safetensors" in text
    assert "model.h5" in text and "unsupported weights format" in text
    assert "absent" in text and "no such file" in text
    assert len(found.messages) == 5


def test_chart_paths_cli_charts_documented_and_predicted_edges(tmp_path):
    rng = np.random.default_rng(3)
    base = _weights(rng)
    ft = _weights(rng, base)
    ft2 = _weights(rng, ft)
    _cache_entry(tmp_path / "hub", "org/base", base, created="2023-01-01T00:00:00Z")
    _hf_folder(tmp_path / "ft", ft, base_model="org/base", created="2023-05-01T00:00:00Z")
    _hf_folder(tmp_path / "ft2", ft2, created="2023-09-01T00:00:00Z")  # undocumented: from the weights
    _hf_folder(tmp_path / "orphan", _weights(rng, base, step=0.04), base_model="someone/not-here",
               created="2024-01-01T00:00:00Z")
    store = tmp_path / "fp.parquet"
    paths = [tmp_path / "hub", tmp_path / "ft", tmp_path / "ft2", tmp_path / "orphan"]
    res = _run("chart", *paths, "--store", store, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n_models"] == 4
    assert any("someone/not-here" in m and "orphan" in m for m in out["messages"])
    # the edges themselves, with the atlas: documented edge from the card, the others predicted
    atlas = tmp_path / "a.duckdb"
    res = _run("chart", store, "--atlas", atlas, "--json")
    assert res.exit_code == 0, res.output
    from modelatlas.atlas.atlas import Atlas

    ev = {(r["parent"], r["child"]): r for r in Atlas.load(atlas).evidence.to_pylist()}
    assert ev[("org/base", "ft")]["provenance"] == "hub_card" and ev[("org/base", "ft")]["relation"] == "finetune"
    assert ev[("ft", "ft2")]["provenance"] == "predicted:auto"
    assert ("org/base", "orphan") in ev and ev[("org/base", "orphan")]["provenance"] == "predicted:auto"


def test_store_is_reused_and_stays_comparable_when_built_incrementally(tmp_path):
    rng = np.random.default_rng(4)
    base = _weights(rng)
    a = _hf_folder(tmp_path / "a", base, created="2023-01-01T00:00:00Z")
    b = _hf_folder(tmp_path / "b", _weights(rng, base), created="2023-02-01T00:00:00Z")
    store = tmp_path / "s.parquet"
    assert _run("fingerprint", a, "--out", store, "--neurons", "8").exit_code == 0
    res = _run("fingerprint", a, b, "--out", store, "--neurons", "8", "--json")
    report = json.loads(res.stdout)
    assert report["added"] == 1 and len(report["plans"]) == 1 and report["plans"][0]["models"] == 2
    # fingerprints read in two runs equal those read in one: same rows, one plan
    together = tmp_path / "t.parquet"
    assert _run("fingerprint", a, b, "--out", together, "--neurons", "8").exit_code == 0
    s1, s2 = FingerprintStore.open(store), FingerprintStore.open(together)
    assert s1.plans == s2.plans
    f1, _ = s1.fingerprints(next(iter(s1.plans)))
    f2, _ = s2.fingerprints(next(iter(s2.plans)))
    np.testing.assert_array_equal(f1.vectors, f2.vectors)
    # charting the store reads no weights file: it works with the weights gone
    os.remove(a / "model.safetensors")
    res = _run("chart", store, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_edges"] == 1
    # another neuron choice is another plan, never compared with the first
    c = _hf_folder(tmp_path / "c", _weights(rng, base), created="2023-03-01T00:00:00Z")
    assert _run("fingerprint", c, "--out", tmp_path / "other.parquet", "--neurons", "6").exit_code == 0
    res = _run("chart", store, tmp_path / "other.parquet", "--json")
    out = json.loads(res.stdout)
    assert out["n_models"] == 3 and out["n_edges"] == 1 and any("2 architectures" in m for m in out["messages"])


def test_zoo_folders_chart_as_before(tmp_path):
    from test_chart_cli import _write_zoo

    zoo = _write_zoo(tmp_path / "zoo")
    res = _run("chart", zoo, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["accuracy"] is not None and out["n_models"] == 10


def test_gguf_folder_with_several_quantisations_is_one_model_each(tmp_path):
    folder = tmp_path / "org-model-GGUF"
    folder.mkdir()
    (folder / "README.md").write_text("---\nbase_model: org/model\n---\n")
    for name in ("m.Q4_K_M.gguf", "m.Q8_0.gguf"):
        (folder / name).write_bytes(b"GGUF")
    found = discover_models([folder])
    assert [m.meta.id for m in found.models] == ["org-model-GGUF:m.Q4_K_M.gguf", "org-model-GGUF:m.Q8_0.gguf"]
    assert all(m.meta.documented_parents == ("org/model",) for m in found.models)


@pytest.mark.parametrize("entry", ["models--org--x", "models--org--x/snapshots/r1"])
def test_cache_entry_without_refs_and_several_snapshots(tmp_path, entry):
    rng = np.random.default_rng(5)
    root = tmp_path / "models--org--x"
    _hf_folder(root / "snapshots" / "r1", _weights(rng))
    _hf_folder(root / "snapshots" / "r2", _weights(rng))
    found = discover_models([tmp_path / entry])
    if entry.endswith("r1"):
        assert [m.meta.id for m in found.models] == ["org/x"]
    else:
        assert not found.models and "2 snapshots and no refs/main" in found.messages[0]


def test_a_file_inside_a_model_folder_takes_the_folders_card(tmp_path):
    rng = np.random.default_rng(6)
    folder = _hf_folder(tmp_path / "my-model", _weights(rng), base_model="org/base", created="2024-01-01T00:00:00Z")
    save_file(_weights(rng), str(folder / "extra.safetensors"))
    (main,) = discover_models([folder / "model.safetensors"]).models
    assert main.meta.id == "my-model" and main.meta.documented_parents == ("org/base",)
    assert main.meta.created_at_source == "card"
    (extra,) = discover_models([folder / "extra.safetensors"]).models
    assert extra.meta.id == "my-model:extra.safetensors"


REPO_PART = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.]{0,8}(-[A-Za-z0-9_.]{1,4}){0,2}", fullmatch=True)


@settings(max_examples=50, deadline=None)
@given(org=REPO_PART, name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True))
def test_cache_folder_names_decode_to_repo_ids(org, name):
    """huggingface_hub names a cache entry ``models--`` + the repo id with ``/`` replaced by ``--``;
    organisation names hold no ``--``, so the first ``--`` separates them (model names may hold it)."""
    from modelatlas.weights.discover import _repo_id

    assert _repo_id("models--" + "--".join(f"{org}/{name}".split("/"))) == f"{org}/{name}"


def test_refs_main_cannot_point_outside_snapshots(tmp_path):
    rng = np.random.default_rng(7)
    entry = tmp_path / "models--org--x"
    _hf_folder(entry / "snapshots" / "r1", _weights(rng))
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text("..")
    found = discover_models([entry])
    assert not found.models and "refs/main names snapshot '..'" in found.messages[0]


def test_a_zoo_through_a_store_keeps_its_accuracy(tmp_path):
    from test_chart_cli import _write_zoo

    zoo = _write_zoo(tmp_path / "zoo")
    direct = json.loads(_run("chart", zoo, "--json").stdout)
    res = _run("chart", zoo, "--store", tmp_path / "z.parquet", "--json")
    assert res.exit_code == 0, res.output
    stored = json.loads(res.stdout)
    assert stored["accuracy"] == direct["accuracy"] and stored["n_edges"] == direct["n_edges"]
    # again from the store alone: the weights are not needed, the truth comes from the manifest
    for f in (zoo / "models").iterdir():
        f.unlink()
    again = json.loads(_run("chart", zoo, "--store", tmp_path / "z.parquet", "--json").stdout)
    assert again["accuracy"] == direct["accuracy"]
