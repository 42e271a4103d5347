"""Bad input: each case gets a clear message naming file / line / model, a count, no lost or invented data."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from hub_records import hub_stats_table, load_records
from modelatlas.cli import main
from modelatlas.errors import InputError
from modelatlas.ingest.pipeline import ingest, ingest_summary


def rec(model_id, tags=(), snapshot="20250101_000000", card_data=None, **extra):
    md = {"id": model_id, "author": model_id.split("/")[0], "created_at": "2024-01-01 00:00:00+00:00",
          "downloads": 10, "likes": 1, "tags": list(tags), "card_data": card_data}
    md.update(extra.pop("metadata", {}))
    return {"id": model_id, "snapshot": snapshot, "family_root": "r", "metadata": md, "card": None,
            "children": [], "adapters": [], "quantized": [], "merges": [], **extra}


def write_jsonl(path, lines, gz=False):
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return str(path)


def kinds(atlas):
    return pc.value_counts(atlas.issues["kind"]).to_pylist() and \
        {d["values"]: d["counts"] for d in pc.value_counts(atlas.issues["kind"]).to_pylist()}


def messages(atlas, kind):
    return [m for k, m in zip(atlas.issues["kind"].to_pylist(), atlas.issues["message"].to_pylist()) if k == kind]


def test_malformed_json_line(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl.gz", [rec("a/root"), '{"id": "broken', rec("a/kid", ["base_model:finetune:a/root"])],
                       gz=True)
    atlas, batches = ingest([path])
    assert kinds(atlas) == {"malformed_json": 1}
    assert "c.jsonl.gz line 2" in messages(atlas, "malformed_json")[0]
    assert batches[0].stats["malformed_lines"] == 1
    assert atlas.num_nodes == 2 and atlas.num_edges == 1


def test_missing_and_mistyped_fields(tmp_path):
    bad = rec("a/bad", metadata={"downloads": "many", "likes": "3", "tags": "['x', 'license:mit']",
                                 "siblings": ["RepoSibling(rfilename='model.safetensors', size=None)"]})
    no_id = {"snapshot": "1", "metadata": {"downloads": 3}}
    path = write_jsonl(tmp_path / "c.jsonl", [bad, no_id])
    atlas, _ = ingest([path])
    assert kinds(atlas) == {"mistyped_field": 1, "missing_id": 1}
    assert "downloads" in messages(atlas, "mistyped_field")[0] and "'many'" in messages(atlas, "mistyped_field")[0]
    assert "line 2" in messages(atlas, "missing_id")[0]
    node = atlas.nodes.to_pylist()[0]
    assert node["downloads"] is None and node["likes"] == 3  # stringified numbers are read, bad ones emptied
    assert node["license"] == "mit" and node["tags"] == ["x"] and node["has_weights"] is True


def test_unknown_relation_word_and_broken_yaml(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [
        rec("a/kid", ["base_model:distilled:a/root"]),
        rec("a/other", card_data="base_model: [a/root\nlicense: mit"),
    ])
    atlas, _ = ingest([path])
    k = kinds(atlas)
    assert k["unknown_relation"] == 1 and k["broken_card_yaml"] == 1
    assert "'distilled'" in messages(atlas, "unknown_relation")[0]
    assert "a/other" in atlas.issues.filter(pc.equal(atlas.issues["kind"], "broken_card_yaml"))["where"].to_pylist()
    edge = atlas.edges.to_pylist()[0]
    assert (edge["parent"], edge["child"], edge["relation"]) == ("a/root", "a/kid", "unknown")
    assert atlas.nodes.filter(pc.equal(atlas.nodes["id"], "a/root"))["placeholder"].to_pylist() == [True]


def test_odd_ids_self_reference_and_cycle(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [
        rec("a/x", ["base_model:finetune:a/x"]),  # self-reference
        rec("a/p", ["base_model:finetune:a/q"], metadata={"created_at": "2024-01-01 00:00:00+00:00"}),
        rec("a/q", ["base_model:finetune:a/p"], metadata={"created_at": "2024-06-01 00:00:00+00:00"}),
        rec("a/y", ["base_model:finetune:bad id!", "base_model:adapter:"]),
        rec("we.ird_-/Na.me-1", ["base_model:a/p"]),
        rec("a/odd name (v2)", ["base_model:a/p"]),
    ])
    atlas, _ = ingest([path])
    k = kinds(atlas)
    assert k["self_loop"] == 1 and k["cycle"] == 1 and k["malformed_tag"] == 2 and k["odd_model_id"] == 1
    assert "'a/odd name (v2)'" in messages(atlas, "odd_model_id")[0]
    assert "a/x" in messages(atlas, "self_loop")[0]
    # the claim that a/p (January) descends from the younger a/q (June) is the one dropped
    assert "dropping its newest edge 'a/q' -> 'a/p'" in messages(atlas, "cycle")[0]
    pairs = set(zip(atlas.edges["parent"].to_pylist(), atlas.edges["child"].to_pylist()))
    assert pairs == {("a/p", "a/q"), ("a/p", "we.ird_-/Na.me-1"), ("a/p", "a/odd name (v2)")}
    assert atlas.evidence.num_rows == 5  # every valid claim is kept, also the dropped ones
    assert any("bad id!" in m and "a/y" in w for m, w in zip(
        messages(atlas, "malformed_tag"), atlas.issues.filter(pc.equal(atlas.issues["kind"], "malformed_tag"))["where"].to_pylist()))


def test_duplicate_records_keep_newest(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [
        rec("a/m", ["base_model:finetune:a/old"], snapshot="20250101_000000", metadata={"downloads": 1}),
        rec("a/m", ["base_model:finetune:a/new"], snapshot="20250301_000000", metadata={"downloads": 5}),
    ])
    atlas, batches = ingest([path])
    assert kinds(atlas) == {"duplicate_record": 1}
    assert "kept snapshot 20250301_000000, dropped snapshot 20250101_000000" in messages(atlas, "duplicate_record")[0]
    assert batches[0].stats["duplicates"] == 1
    m = atlas.nodes.filter(pc.equal(atlas.nodes["id"], "a/m")).to_pylist()[0]
    assert m["downloads"] == 5 and m["snapshot"] == "20250301_000000"
    assert atlas.edges["parent"].to_pylist() == ["a/new"]


def test_empty_file_is_counted(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    atlas, batches = ingest([str(empty)])
    assert kinds(atlas) == {"empty_source": 1}
    assert "empty.jsonl" in messages(atlas, "empty_source")[0]
    assert atlas.num_nodes == 0 and ingest_summary(atlas, batches)["sources"][0]["issues"] == {"empty_source": 1}


def test_truncated_parquet_names_the_file(tmp_path, capsys):
    table = pa.table({"id": [f"a/m{i}" for i in range(1000)], "downloads": list(range(1000))})
    path = tmp_path / "models.parquet"
    pq.write_table(table, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="models.parquet"):
        ingest([str(path)])
    code = main(["ingest", str(path), "--atlas", str(tmp_path / "a.duckdb")])
    err = capsys.readouterr().err
    assert code == 2 and "models.parquet" in err and "Traceback" not in err
    assert not (tmp_path / "a.duckdb").exists()


def test_parquet_mistyped_and_duplicate_rows(tmp_path):
    table = pa.table({
        "id": ["a/m", "a/m", "a/k"],
        "createdAt": ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "yesterday"],
        "lastModified": ["2024-01-02T00:00:00Z", "2024-03-02T00:00:00Z", None],
        "downloads": ["5", "7", "lots"],
        "tags": [["base_model:finetune:a/p"], ["base_model:finetune:a/p"], []],
        "cardData": ['{"base_model": ["a/p", "a/q"]}', '{"license": "mit"}', "{not json"],
    })
    path = tmp_path / "models.parquet"
    pq.write_table(table, path)
    atlas, batches = ingest([str(path)])
    k = kinds(atlas)
    assert k == {"duplicate_record": 1, "mistyped_field": 2, "broken_card_data": 1}
    m = {r["id"]: r for r in atlas.nodes.to_pylist()}
    assert m["a/m"]["downloads"] == 7 and m["a/m"]["license"] == "mit"  # newest lastModified kept
    assert m["a/k"]["downloads"] is None and m["a/k"]["created_at"] is None
    assert batches[0].stats["duplicates"] == 1


def test_hub_stats_from_real_records_match_hf_trees(hf_trees_path, tmp_path):
    recs = [r for r in load_records(hf_trees_path, limit=300) if "created_at" in r["metadata"]]
    for struct in (False, True):
        path = tmp_path / f"models-{struct}.parquet"
        pq.write_table(hub_stats_table(recs, json_columns=not struct), path)
        from_parquet, _ = ingest([str(path)])
        from_json, _ = ingest([write_jsonl(tmp_path / "r.jsonl", recs)])
        cols = ["id", "created_at", "downloads", "license", "modality", "model_type", "architectures", "languages",
                "datasets", "tags", "params", "dtypes", "card_length", "quantized", "has_weights", "placeholder"]
        real = [a.nodes.filter(pc.invert(a.nodes["placeholder"])).select(cols) for a in (from_parquet, from_json)]
        assert real[0].num_rows == len(recs)
        assert real[0].equals(real[1])  # the child lists of the crawl only add placeholders
        assert from_parquet.metrics.num_rows == from_json.metrics.num_rows > 0


def test_stringified_python_values_and_field_spellings(tmp_path):
    """A crawl that stored ``str()`` of huggingface_hub objects, in a JSON array file."""
    record = {
        "id": "a/kid", "snapshot": "20250101_000000",
        "metadata": {
            "modelId": "a/kid", "createdAt": "2023-05-01T10:00:00.000Z", "downloads": "42", "likes": "None",
            "gated": "False", "tags": "['transformers', 'license:apache-2.0', 'base_model:adapter:a/root', 'de']",
            "siblings": "[\"RepoSibling(rfilename='adapter_model.safetensors', size=None, blob_id=None, lfs=None)\"]",
            "safetensors": "{'parameters': {'BF16': 1000}, 'total': 1000}",
            "cardData": "{'base_model': 'a/root', 'language': ['de', 'en']}",
        },
        "card": "---\nbase_model: a/root\n---\nThis model card has been generated automatically.",
        "children": "[]", "adapters": [], "quantized": [], "merges": ["https://huggingface.co/a/merged"],
    }
    path = tmp_path / "crawl.json"
    path.write_text(json.dumps([record]))
    atlas, _ = ingest([str(path)])
    assert atlas.issues.num_rows == 0
    kid = atlas.nodes.filter(pc.equal(atlas.nodes["id"], "a/kid")).to_pylist()[0]
    assert kid["downloads"] == 42 and kid["likes"] is None and kid["gated"] is False
    assert kid["created_at"].isoformat() == "2023-05-01T10:00:00+00:00"
    assert kid["license"] == "apache-2.0" and kid["languages"] == ["de", "en"] and kid["params"] == 1000
    assert kid["has_weights"] is True and kid["card_autogenerated"] is True and kid["tags"] == ["transformers", "de"]
    edges = {(e["parent"], e["child"]): e for e in atlas.edges.to_pylist()}
    assert edges[("a/root", "a/kid")]["relation"] == "adapter"
    assert edges[("a/root", "a/kid")]["provenances"] == ["hub_card", "hub_tag"]
    assert edges[("a/kid", "a/merged")]["relation"] == "merge"
    assert edges[("a/kid", "a/merged")]["provenance"] == "hub_tree"


def test_missing_file_and_unknown_format(tmp_path, capsys):
    code = main(["ingest", str(tmp_path / "nope.jsonl"), "--atlas", str(tmp_path / "a.duckdb")])
    assert code == 2 and "nope.jsonl" in capsys.readouterr().err
    odd = tmp_path / "notes.txt"
    odd.write_text("hello\n")
    assert main(["ingest", str(odd), "--atlas", str(tmp_path / "a.duckdb")]) == 2
    assert "cannot tell the format" in capsys.readouterr().err
    assert main(["ingest", str(odd), "--format", "xml", "--atlas", str(tmp_path / "a.duckdb")]) == 2
    assert "unknown format 'xml'" in capsys.readouterr().err
