"""The ingest, info, export and lineage commands on the real hf-trees file."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from modelatlas.cli import main as cli_main

pytestmark = pytest.mark.shared_data


def main(argv: list[str]) -> int:
    """Exit status of one command (click ends successful runs with SystemExit)."""
    try:
        return cli_main(argv)
    except SystemExit as exc:
        return exc.code or 0


@pytest.fixture(scope="module")
def atlas_file(hf_trees_path, shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "a.duckdb"
    code = main(["ingest", str(hf_trees_path), str(shared_data / "model-atlas-manual-annotations.csv"),
                 "--atlas", str(path), "--json"])
    assert code == 0
    return path


def test_ingest_and_info(atlas_file, capsys):
    assert main(["info", "--atlas", str(atlas_file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["models"] == 1568 and info["edges_by_provenance"]["manual"] > 0
    assert info["edges_by_provenance"]["hub_tag"] + info["edges_by_provenance"]["hub_tree"] == 6570


def test_reingest_into_the_stored_atlas_changes_nothing(atlas_file, hf_trees_path, shared_data, tmp_path, capsys):
    from modelatlas.atlas.atlas import Atlas

    copy = tmp_path / "again.duckdb"
    copy.write_bytes(atlas_file.read_bytes())
    before = Atlas.load(copy)
    assert main(["ingest", str(shared_data / "model-atlas-manual-annotations.csv"), str(hf_trees_path),
                 "--atlas", str(copy), "--json"]) == 0
    after = Atlas.load(copy)
    assert after.nodes.equals(before.nodes) and after.edges.equals(before.edges)
    assert after.evidence.num_rows == before.evidence.num_rows and after.issues.num_rows == before.issues.num_rows
    assert after.extras["annotations"].num_rows == before.extras["annotations"].num_rows > 0
    assert after.extras["ingest_log"].num_rows == 4


def test_export_tables(atlas_file, tmp_path):
    for what, fmt in [("edges", "csv"), ("nodes", "parquet")]:
        out = tmp_path / f"{what}.{fmt}"
        assert main(["export", "--atlas", str(atlas_file), "--what", what, "--format", fmt, "--out", str(out)]) == 0
    edges = pcsv.read_csv(tmp_path / "edges.csv")
    assert {"parent", "child", "relation", "provenance", "confidence"} <= set(edges.column_names)
    assert edges.num_rows == json.loads(_info(atlas_file))["edges"]
    assert pq.read_table(tmp_path / "nodes.parquet").num_rows == json.loads(_info(atlas_file))["nodes"]


def _info(atlas_file) -> str:
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        main(["info", "--atlas", str(atlas_file), "--json"])
    return buf.getvalue()


def test_export_graph_files_for_gephi(hf_trees_path, tmp_path):
    import gzip

    import networkx as nx

    small = tmp_path / "small.jsonl"
    with gzip.open(hf_trees_path, "rt") as fh, open(small, "w") as out:
        out.writelines(line for _, line in zip(range(150), fh))
    atlas = tmp_path / "small.duckdb"
    assert main(["ingest", str(small), "--atlas", str(atlas), "--json"]) == 0
    for fmt in ("gexf", "graphml"):
        out = tmp_path / f"g.{fmt}"
        assert main(["export", "--atlas", str(atlas), "--what", "edges", "--format", fmt, "--out", str(out)]) == 0
        g = nx.read_gexf(out) if fmt == "gexf" else nx.read_graphml(out)
        info = json.loads(_info(atlas))
        assert g.number_of_nodes() == info["nodes"] and g.number_of_edges() == info["edges"]
    root = ET.parse(tmp_path / "g.gexf").getroot()
    text = ET.tostring(root, encoding="unicode")
    assert "viz" in text and "size" in text and "color" in text


def test_lineage(atlas_file, capsys):
    assert main(["lineage", "TheBloke/Llama-2-7B-Chat-GGUF", "--atlas", str(atlas_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["parents"] == [{"parent": "meta-llama/Llama-2-7b-chat-hf", "child": "TheBloke/Llama-2-7B-Chat-GGUF",
                               "relation": "quantized", "provenance": "hub_tree"}]
    for source, path in out["paths"].items():
        assert path[0]["parent"] == source and path[-1] == out["parents"][0]
    assert main(["lineage", "meta-llama/Llama-2-7b-chat-hf", "--atlas", str(atlas_file), "--json"]) == 0
    root = json.loads(capsys.readouterr().out)
    assert root["descendants"] >= root["children"] > 1000 and root["sub_tree_downloads"] >= root["downloads"]
    assert main(["lineage", "meta-llama/Llama-2-7b-chatt", "--atlas", str(atlas_file)]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_ingest_prints_a_summary(hf_trees_path, tmp_path, capsys):
    import gzip

    small = tmp_path / "small.jsonl"
    with gzip.open(hf_trees_path, "rt") as fh, open(small, "w") as out:
        out.writelines(line for _, line in zip(range(40), fh))
        out.write("{not json\n")
    assert main(["ingest", str(small), "--atlas", str(tmp_path / "s.duckdb")]) == 0
    out = capsys.readouterr().out  # a result: standard output, TSV when not a terminal (docs/cli.md)
    header, row = out.splitlines()[1:3]
    assert out.startswith("# ingest summary\n") and header.startswith("source\tformat\trecords")
    assert row.split("\t")[0] == "small.jsonl" and row.split("\t")[-1] == "malformed_json=1"
