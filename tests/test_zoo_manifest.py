"""The zoo manifest: round trips, validation errors naming the model and field, cycle detection."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.errors import InputError
from modelatlas.zoo.manifest import Zoo, ZooModel, load_manifest, write_manifest


def _entry(model_id: str, parents=(), relation=None, **more) -> dict:
    return {"id": model_id, "path": f"models/{model_id}.safetensors", "created_at": "2024-01-05T10:00:00Z",
            "parents": list(parents), "relation": relation, "documented_parents": False,
            "component": "c0", "architecture": "mlp", "pattern": "finetune" if parents else "root", **more}


def _write(tmp_path: Path, models: list[dict], files: bool = True) -> Path:
    if files:
        for m in models:
            f = tmp_path / m["path"]
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"x")
    (tmp_path / "manifest.json").write_text(json.dumps({"name": "t", "models": models}))
    return tmp_path


def test_round_trip_keeps_every_field(tmp_path):
    models = [_entry("root"), _entry("ft", ["root"], "finetune", lr=1e-3, task="a"),
              _entry("m", ["root", "ft"], "merge", merge_method="ties")]
    zoo = load_manifest(_write(tmp_path, models))
    assert [m.id for m in zoo.models] == ["root", "ft", "m"]
    ft = zoo.by_id()["ft"]
    assert ft.path == (tmp_path / "models/ft.safetensors").resolve() and ft.path.is_absolute()
    assert ft.created_at == datetime(2024, 1, 5, 10, tzinfo=timezone.utc)
    assert ft.extra == {"lr": 1e-3, "task": "a"} and ft.relation == "finetune"
    assert zoo.edges() == [("root", "ft", "finetune"), ("root", "m", "merge"), ("ft", "m", "merge")]
    (tmp_path / "manifest.json").unlink()
    write_manifest(zoo)
    again = load_manifest(tmp_path / "manifest.json")
    assert again == zoo
    assert json.loads((tmp_path / "manifest.json").read_text())["models"][1] == models[1]


@pytest.mark.parametrize("mutate, message, where", [
    (lambda ms: ms[1].update(relation="cousin"), "unknown relation 'cousin'", "'ft'"),
    (lambda ms: ms[1].update(parents=["ghost"]), "parent 'ghost' is not in the zoo", "'ft'"),
    (lambda ms: ms.append(_entry("ft")), "duplicate model id", "'ft'"),
    (lambda ms: ms[0].update(parents=["ft"], relation="finetune"), "cycle", "model"),
    (lambda ms: ms[0].update(relation="finetune"), "no parents", "'root'"),
    (lambda ms: ms[1].update(created_at="yesterday"), "not an ISO-8601 time", "'ft'"),
    (lambda ms: ms[1].update(created_at=1704448800), "ISO-8601 string or null", "'ft'"),
    (lambda ms: ms[1].update(pattern="spiral"), "unknown pattern", "'ft'"),
    (lambda ms: ms[1].pop("path"), "field 'path' is missing", "'ft'"),
    (lambda ms: ms[1].update(documented_parents="yes"), "'documented_parents' must be bool", "'ft'"),
    (lambda ms: ms[1].update(parents="root"), "'parents' must be list", "'ft'"),
    (lambda ms: ms[1].update(parents=["ft"]), "itself as a parent", "'ft'"),
    (lambda ms: ms[1].pop("id"), "no string 'id'", "models[1]"),
])
def test_bad_manifest_names_model_and_field(tmp_path, mutate, message, where):
    models = [_entry("root"), _entry("ft", ["root"], "finetune")]
    _write(tmp_path, models)
    mutate(models)
    (tmp_path / "manifest.json").write_text(json.dumps({"name": "t", "models": models}))
    with pytest.raises(InputError, match=message) as info:
        load_manifest(tmp_path)
    assert "manifest.json" in str(info.value) and where in str(info.value)


def test_absent_weights_file_is_named(tmp_path):
    _write(tmp_path, [_entry("root"), _entry("ft", ["root"], "finetune")])
    (tmp_path / "models/ft.safetensors").unlink()
    with pytest.raises(InputError, match=r"model 'ft'.*weights file 'models/ft.safetensors' does not exist"):
        load_manifest(tmp_path)
    assert len(load_manifest(tmp_path, check_files=False).models) == 2


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid UTF-8 JSON"), ("[]", "'models' list"), ('{"models": {}}', "'models' list"),
    ('{"name": 3, "models": []}', "'name' must be a string"), ('{"models": [3]}', "JSON object"),
])
def test_unreadable_manifest(tmp_path, text, message):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(InputError, match=message):
        load_manifest(tmp_path / "manifest.json")


def test_missing_manifest(tmp_path):
    with pytest.raises(InputError, match="zoo manifest not found"):
        load_manifest(tmp_path)


def test_unknown_lineage_is_allowed(tmp_path):
    """Hand-written zoos may omit parents and relation (lineage unknown) and pattern."""
    entry = {"id": "x", "path": "x.bin", "created_at": "2024-01-05T10:00:00+02:00"}
    zoo = load_manifest(_write(tmp_path, [entry]))
    m = zoo.models[0]
    assert m.parents is None and m.relation is None and m.pattern is None
    assert m.created_at == datetime(2024, 1, 5, 8, tzinfo=timezone.utc)


@pytest.mark.parametrize("omit", [False, True])
def test_unknown_upload_times_are_data(tmp_path, omit):
    """``created_at`` null or absent loads as an unknown time (None) and round-trips as written."""
    models = [_entry("root"), _entry("ft", ["root"], "finetune"), _entry("ft2", ["root"], "finetune")]
    models[1]["created_at"] = None
    del models[2]["created_at"]
    zoo = load_manifest(_write(tmp_path, models))
    assert [m.created_at is None for m in zoo.models] == [False, True, True]
    write_manifest(zoo, omit_unknown_times=omit)
    written = json.loads((tmp_path / "manifest.json").read_text())["models"]
    assert written[0]["created_at"] == "2024-01-05T10:00:00Z"
    for entry in written[1:]:
        assert ("created_at" not in entry) if omit else (entry["created_at"] is None)
    assert load_manifest(tmp_path) == zoo


@st.composite
def _graphs(draw):
    n = draw(st.integers(1, 12))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=20))
    return n, sorted({(p, c) for p, c in edges if p != c})


@settings(max_examples=80, deadline=None)
@given(_graphs())
def test_cycle_detection_agrees_with_networkx(tmp_path_factory, graph):
    n, edges = graph
    parents: dict[int, list[str]] = {i: [] for i in range(n)}
    for p, c in edges:
        parents[c].append(f"m{p}")
    t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    zoo = Zoo("g", tmp_path_factory.mktemp("g"), [
        ZooModel(f"m{i}", Path(f"m{i}.st"), t, parents[i], "finetune" if parents[i] else None)
        for i in range(n)])
    has_cycle = not nx.is_directed_acyclic_graph(nx.DiGraph(edges))
    if has_cycle:
        with pytest.raises(InputError, match="cycle"):
            write_manifest(zoo)
    else:
        write_manifest(zoo)
        assert load_manifest(zoo.root, check_files=False).edges() == zoo.edges()
