"""The Anatomy-crawl reader on the real hf-trees file (issue 2 acceptance test)."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from modelatlas.ingest.pipeline import ingest

pytestmark = pytest.mark.shared_data

LISTS = {"children": "finetune", "adapters": "adapter", "quantized": "quantized", "merges": "merge"}
TIE = ["finetune", "quantized", "adapter", "merge"]


def expected_hub_edges(path) -> tuple[int, Counter, set[str]]:
    """Edges from tags and child lists, computed with the simplest independent logic."""
    tag_rel: dict[tuple[str, str], set] = {}
    tree_rel: dict[tuple[str, str], set] = {}
    ids = set()
    with gzip.open(path, "rt") as fh:
        for line in fh:
            rec = json.loads(line)
            ids.add(rec["id"])
            for tag in rec["metadata"]["tags"]:
                if tag.startswith("base_model:"):
                    parts = tag.split(":")
                    if len(parts) == 3:
                        tag_rel.setdefault((parts[2], rec["id"]), set()).add(parts[1])
                    else:
                        tag_rel.setdefault((parts[1], rec["id"]), set())
            for name, rel in LISTS.items():
                for url in rec[name]:
                    child = url.removeprefix("https://huggingface.co/")
                    tree_rel.setdefault((rec["id"], child), set()).add(rel)
    rels = Counter()
    for pair in set(tag_rel) | set(tree_rel):
        claimed = tag_rel.get(pair) or tree_rel.get(pair) or {"unknown"}
        rels[max(claimed, key=lambda r: TIE.index(r) if r in TIE else -1)] += 1
    return sum(rels.values()), rels, ids


@pytest.fixture(scope="module")
def hf_atlas(hf_trees_path):
    atlas, batches = ingest([str(hf_trees_path)])
    return atlas, batches


def test_hub_edges_match_the_file(hf_atlas, hf_trees_path):
    atlas, _ = hf_atlas
    total, rels, ids = expected_hub_edges(hf_trees_path)
    hub = atlas.edges.filter(pc.is_in(atlas.edges["provenance"], pa.array(["hub_tag", "hub_tree"])))
    assert hub.num_rows == total == 6570
    got = Counter(hub["relation"].to_pylist())
    assert got == rels
    assert got == Counter(adapter=4617, finetune=1626, quantized=299, merge=28)
    real = atlas.nodes.filter(pc.invert(atlas.nodes["placeholder"]))
    assert set(real["id"].to_pylist()) == ids and real.num_rows == 1568


def test_record_fields_are_read(hf_atlas, hf_trees_path):
    atlas, _ = hf_atlas
    with gzip.open(hf_trees_path, "rt") as fh:
        recs = {r["id"]: r for r in map(json.loads, fh)}
    nodes = {row["id"]: row for row in atlas.nodes.to_pylist()}
    no_card = [i for i, r in recs.items() if r["card"] is None]
    assert no_card and all(nodes[i]["card_present"] is False for i in no_card)
    for model_id, rec in list(recs.items())[:200]:
        node, md = nodes[model_id], rec["metadata"]
        assert node["downloads"] == md["downloads"]
        assert node["pipeline_tag"] == md.get("pipeline_tag")
        if rec["card"] is not None:
            assert node["card_length"] == len(rec["card"])
        if isinstance(md.get("config"), dict) and md["config"].get("model_type"):
            assert node["model_type"] == md["config"]["model_type"]
        if isinstance(md.get("safetensors"), dict):
            assert node["params"] == md["safetensors"]["total"]
            assert node["dtypes"] == sorted(md["safetensors"]["parameters"])
        lic = [t[8:] for t in md["tags"] if t.startswith("license:")]
        if lic:
            assert node["license"] == lic[0]


def test_reingest_is_idempotent(hf_atlas, hf_trees_path):
    atlas, _ = hf_atlas
    again, _ = ingest([str(hf_trees_path)], atlas)
    assert again.nodes.equals(atlas.nodes)
    assert again.edges.equals(atlas.edges)
    assert again.evidence.num_rows == atlas.evidence.num_rows
    assert again.issues.num_rows == atlas.issues.num_rows
    assert again.extras["ingest_log"].num_rows == 2


def test_sources_merge_by_provenance_order(hf_atlas, shared_data):
    """Adding the card-text and manual CSVs keeps every hub edge and its provenance."""
    atlas, _ = hf_atlas
    more, batches = ingest([str(shared_data / "model-atlas-card-parents.csv"),
                            str(shared_data / "model-atlas-manual-annotations.csv")], atlas)
    hub = pa.array(["hub_tag", "hub_tree"])
    before = atlas.edges.filter(pc.is_in(atlas.edges["provenance"], hub))
    after = more.edges.filter(pc.is_in(more.edges["provenance"], hub))
    assert after.select(["parent", "child", "relation", "provenance"]).equals(
        before.select(["parent", "child", "relation", "provenance"]))
    weaker = more.edges.filter(pc.invert(pc.is_in(more.edges["provenance"], hub))).to_pylist()
    assert weaker and all(not {"hub_tag", "hub_tree"} & set(e["provenances"]) for e in weaker)
    # a pair claimed by the card text and by the hub keeps the hub's provenance and relation
    both = [e for e in after.to_pylist() if "card_text" in e["provenances"]]
    assert both
    assert more.extras["annotations"].num_rows > 0
    assert [b.format for b in batches] == ["card-parents", "manual"]
