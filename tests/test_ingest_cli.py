"""The ingest, info, export and lineage commands on the real hf-trees file."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pyarrow.csv as pcsv
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


def test_export_formats(atlas_file, tmp_path):
    for what, fmt in [("edges", "csv"), ("nodes", "parquet"), ("edges", "gexf"), ("edges", "graphml")]:
        out = tmp_path / f"{what}.{fmt}"
        assert main(["export", "--atlas", str(atlas_file), "--what", what, "--format", fmt, "--out", str(out)]) == 0
        assert out.stat().st_size > 0
    edges = pcsv.read_csv(tmp_path / "edges.csv")
    assert {"parent", "child", "relation", "provenance", "confidence"} <= set(edges.column_names)
    root = ET.parse(tmp_path / "edges.gexf").getroot()
    assert "viz" in ET.tostring(root, encoding="unicode")


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
