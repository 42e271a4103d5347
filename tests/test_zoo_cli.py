"""``modelatlas zoo build`` / ``zoo list``: outputs and clear one-line errors."""

from __future__ import annotations

import json
import sys

import pytest

from modelatlas.cli import main as _main


def main(argv: list[str]) -> int:
    """Exit status of the command line (typer ends successful runs with SystemExit)."""
    try:
        return _main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_zoo_list(capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("tiny", "small", "large", "vthr", "minilm", "llama", "vision", "recurrent", "tabular"):
        assert name in out


@pytest.mark.parametrize("args, message", [
    (["tiny", "--size", "tiny"], "--size applies to the zoo families"),
    (["llama", "--size", "huge"], "unknown --size 'huge'"),
])
def test_size_is_checked(tmp_path, capsys, args, message):
    assert main(["zoo", "build", *args, "--out", str(tmp_path / "z")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_unknown_zoo_is_one_line_error(tmp_path, capsys):
    assert main(["zoo", "build", "huge", "--out", str(tmp_path)]) == 2
    assert "unknown zoo 'huge'" in capsys.readouterr().err


def test_refuses_to_overwrite_a_zoo(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text("{}")
    assert main(["zoo", "build", "tiny", "--out", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err


def test_without_torch_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    assert main(["zoo", "build", "tiny", "--out", str(tmp_path / "z")]) == 2
    assert "pip install 'modelatlas[torch]'" in capsys.readouterr().err


def test_package_imports_without_torch(monkeypatch):
    """The zoo package (manifests) needs no torch: only building does."""
    for name in [n for n in sys.modules if n.startswith("modelatlas.zoo")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)
    import modelatlas.zoo as zoo
    import modelatlas.zoo.merge  # noqa: F401
    import modelatlas.zoo.quantize  # noqa: F401
    import modelatlas.zoo.families  # noqa: F401
    import modelatlas.zoo.recipes  # noqa: F401
    import modelatlas.zoo.upload_times  # noqa: F401

    assert zoo.load_manifest


def test_build_json_summary(tmp_path, capsys, monkeypatch):
    """The command reports what the builder made (a reduced VTHR keeps this quick)."""
    pytest.importorskip("torch", reason="building zoos needs PyTorch")
    from modelatlas.zoo import recipes

    small = lambda out, seed=0, on_model=None: recipes.build_vthr(  # noqa: E731
        out, seed, on_model, roots=1, children=1, grandchildren=1, pretrain_steps=5, finetune_steps=2)
    monkeypatch.setitem(recipes.RECIPES, "vthr", small)
    assert main(["zoo", "build", "vthr", "--out", str(tmp_path), "--seed", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["models"] == 1 + 3 * 2 and summary["seed"] == 3
    assert summary["patterns"] == {"root": 1, "finetune": 2, "lora": 4}
    assert (tmp_path / "manifest-lora-v.json").is_file()


def test_build_a_family(tmp_path, capsys):
    """``zoo build <family> --size tiny`` writes the family's zoo and reports it."""
    pytest.importorskip("torch", reason="building zoos needs PyTorch")
    from modelatlas.zoo.manifest import load_manifest

    assert main(["zoo", "build", "tabular", "--size", "tiny", "--out", str(tmp_path), "--seed", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    zoo = load_manifest(tmp_path)
    assert zoo.name == "tabular" and summary["size"] == "tiny" and summary["models"] == len(zoo.models)
    assert summary["patterns"]["root"] == 2 and (tmp_path / "time-model.json").is_file()
