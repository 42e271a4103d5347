"""Relation audit: declared relations that the repositories' files contradict, stored as atlas
issues and shown by ``info``, ``lineage``, ``stats`` and the web panel."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from modelatlas.cli import app
from modelatlas.ingest.pipeline import ingest
from modelatlas.ingest.relation_audit import REASONS, flag_counts, relation_flags

runner = CliRunner()


def _record(model_id: str, files: list[str] | None, *, tag: str | None = None, card: dict | None = None) -> dict:
    """An hf-trees line: the Hub API's model info (tags, siblings, card data) plus the card text."""
    card_text = None
    if card:
        card_text = "---\n" + "\n".join(f"{k}: {v}" for k, v in card.items()) + "\n---\n"
    meta = {"id": model_id, "author": model_id.split("/")[0], "created_at": "2024-01-01 00:00:00+00:00",
            "tags": [tag] if tag else [], "card_data": card_text.strip("-\n") if card_text else None,
            "siblings": None if files is None else [f"RepoSibling(rfilename='{f}', size=None, blob_id=None, lfs=None)"
                                                    for f in files]}
    return {"id": model_id, "family_root": "x", "snapshot": "20250101_000000", "metadata": meta, "card": card_text,
            "children": [], "adapters": [], "quantized": [], "merges": []}


CASES = [
    # (id, files, tag, card, expected reason or None)
    ("a/gguf-ft", ["README.md", "m.Q4_K_M.gguf", "m.Q8_0.gguf"], "base_model:finetune:org/base", None, "only_gguf"),
    ("a/gguf-quant", ["m.Q4_K_M.gguf"], "base_model:quantized:org/base", None, None),
    ("a/gguf-lora", ["lora-adapter.gguf"], "base_model:adapter:org/base", None, None),
    ("a/ggml-merge", ["m.ggml"], None, {"base_model": "org/base", "base_model_relation": "merge"}, "only_gguf"),
    ("a/onnx-export", ["onnx/model.onnx", "config.json"], "base_model:quantized:org/base", None, "onnx_not_quantized"),
    ("a/onnx-int8", ["onnx/model_quantized.onnx", "onnx/model.onnx"], "base_model:quantized:org/base", None, None),
    ("a/adapter-none", ["model.safetensors", "config.json"], "base_model:adapter:org/base", None, "no_adapter_files"),
    ("a/adapter-ok", ["adapter_config.json", "adapter_model.safetensors"], "base_model:adapter:org/base", None, None),
    ("a/adapter-card", ["README.md"], None, {"base_model": "org/base", "base_model_relation": "adapter"},
     "no_adapter_files"),
    ("a/ft-ok", ["model.safetensors"], "base_model:finetune:org/base", None, None),
    ("a/unknown-files", None, "base_model:finetune:org/base", None, None),  # no file list: not audited
    ("a/untyped", ["m.gguf"], None, {"base_model": "org/base"}, None),  # no declared relation
]


def _write(path: Path, records: list[dict]) -> Path:
    with gzip.open(path, "wt") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    return path


@pytest.fixture(scope="module")
def atlas_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit")
    records = [_record(i, f, tag=t, card=c) for i, f, t, c, _ in CASES]
    records.append(_record("b/child-of-gguf-ft", ["model.safetensors"], tag="base_model:finetune:a/gguf-ft"))
    src = _write(folder / "trees.jsonl.gz", records)
    path = folder / "a.duckdb"
    res = runner.invoke(app, ["ingest", str(src), "--atlas", str(path), "--json"])
    assert res.exit_code == 0, res.output
    return path


def test_each_rule_flags_exactly_the_contradicted_declarations(atlas_path):
    from modelatlas.atlas.atlas import Atlas

    flags = relation_flags(Atlas.load(atlas_path).issues)
    got = {f["id"]: f["reason"] for f in flags}
    assert got == {i: r for i, _, _, _, r in CASES if r}
    gguf = next(f for f in flags if f["id"] == "a/gguf-ft")
    assert "m.Q4_K_M.gguf" in gguf["message"] and "org/base" in gguf["message"] and "tag" in gguf["message"]
    assert "card base_model_relation" in next(f["message"] for f in flags if f["id"] == "a/ggml-merge")


def test_info_lineage_stats_show_the_flags(atlas_path):
    res = runner.invoke(app, ["info", "--atlas", str(atlas_path), "--json"])
    counts = json.loads(res.stdout)["relation_flags"]
    assert counts == {"only_gguf": 2, "onnx_not_quantized": 1, "no_adapter_files": 2, "models": 5}
    res = runner.invoke(app, ["lineage", "b/child-of-gguf-ft", "--atlas", str(atlas_path), "--json"])
    flags = json.loads(res.stdout)["relation_flags"]
    assert [f["id"] for f in flags] == ["a/gguf-ft"]  # an ancestor's flag shows in its descendants' lineage
    res = runner.invoke(app, ["stats", "--atlas", str(atlas_path), "--json"])
    rows = json.loads(res.stdout)["tables"]["relation_audit"]["rows"]
    whole = next(r for r in rows if r["group_by"] == "all")
    declared = sum(1 for _, _, tag, card, _ in CASES if tag or (card or {}).get("base_model_relation")) + 1
    assert whole["contradicted"] == 5 and whole["declared"] == declared == 12 and whole["only_gguf"] == 2


def test_web_panel_answer_carries_the_flags(atlas_path):
    from fastapi.testclient import TestClient

    from modelatlas.atlas.atlas import Atlas
    from modelatlas.viz.data import AtlasView
    from modelatlas.viz.server import create_app

    client = TestClient(create_app(AtlasView(Atlas.load(atlas_path))), base_url="http://localhost:8000")
    body = client.get("/api/models/a/onnx-export").json()
    assert [f["reason"] for f in body["relation_flags"]] == ["onnx_not_quantized"]
    assert client.get("/api/models/a/ft-ok").json()["relation_flags"] == []


def test_reingest_keeps_one_flag_per_claim(atlas_path, tmp_path):
    from modelatlas.atlas.atlas import Atlas

    records = [_record(i, f, tag=t, card=c) for i, f, t, c, _ in CASES]
    src = _write(tmp_path / "again.jsonl.gz", records)
    for _ in range(3):  # the same claims give the same messages every time: still one flag each
        again, _ = ingest([str(src)], Atlas.load(atlas_path))
        assert flag_counts(again.issues)["models"] == 5 and len(relation_flags(again.issues)) == 5


FILE_NAMES = st.sampled_from(["model.safetensors", "m.Q4_0.gguf", "m.ggml", "onnx/model.onnx",
                              "onnx/model_int8.onnx", "adapter_config.json", "adapter_model.bin", "README.md",
                              "config.json", "pytorch_model.bin"])


@settings(max_examples=25, deadline=None)
@given(files=st.lists(FILE_NAMES, max_size=5, unique=True),
       relation=st.sampled_from(["finetune", "adapter", "quantized", "merge"]))
def test_flags_follow_the_file_list(tmp_path_factory, files, relation):
    """Invariants: a flag needs a declared relation and a known file list; GGUF-only fine-tunes and
    merges, all-ONNX unquantised-named quantisations and adapter claims without adapter files are
    flagged, nothing else."""
    from modelatlas.ingest.anatomy import read_hf_trees

    folder = tmp_path_factory.mktemp("h")
    src = _write(folder / "t.jsonl.gz", [_record("x/m", files, tag=f"base_model:{relation}:org/base")])
    batch = read_hf_trees((src))
    reasons = sorted(i["kind"].split(":")[1] for i in batch.issues if i["kind"].startswith("relation_contradicted"))
    weights = [f for f in files if f.endswith((".safetensors", ".gguf", ".ggml", ".onnx", ".bin"))]
    expected = []
    if relation in ("finetune", "merge") and weights and all(f.endswith((".gguf", ".ggml")) for f in weights):
        expected = ["only_gguf"]
    if relation == "quantized" and weights and all(f.endswith(".onnx") for f in weights) and not any(
            "int8" in f for f in weights):
        expected = ["onnx_not_quantized"]
    if relation == "adapter" and not any(f.startswith("adapter_") for f in files):
        expected = ["no_adapter_files"]
    assert reasons == expected and set(reasons) <= set(REASONS)


def test_real_hf_trees_flags(hf_trees_path, tmp_path):
    """The shared crawl: its two GGUF repositories declared fine-tunes are flagged, nothing else."""
    from modelatlas.ingest.anatomy import read_hf_trees

    batch = read_hf_trees((hf_trees_path))
    flagged = sorted(i["where"] for i in batch.issues if i["kind"].startswith("relation_contradicted"))
    assert flagged == ["BlackBeenie/EXAONE-Deep-32B-Q4_K_M-GGUF", "matrixportal/gemma-7b-it-GGUF"]
