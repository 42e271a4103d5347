"""``identify`` / ``index add``: parent, relation and evidence against a reference store; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from typer.testing import CliRunner

from modelatlas.chart.identify import identify
from modelatlas.cli import app
from modelatlas.weights.fingerprint import Fingerprints
from modelatlas.weights.store import FingerprintStore, ModelMeta

runner = CliRunner()
NAMES = ("enc.l0.query.weight", "enc.l0.value.weight", "enc.l1.query.weight", "enc.l1.value.weight")


def _root(rng, width=48):
    return {n: rng.standard_t(5, (width, width)).astype(np.float32) for n in NAMES}


def _finetune(rng, w, step=0.05):
    return {n: (v + rng.normal(0, step, v.shape)).astype(np.float32) for n, v in w.items()}


def _lora(rng, w, rank=2, scale=0.3):
    out = dict(w)
    for n in ("enc.l0.value.weight", "enc.l1.value.weight"):
        a, b = rng.normal(0, 1, (w[n].shape[0], rank)), rng.normal(0, 1, (rank, w[n].shape[1]))
        out[n] = (w[n] + scale * (a @ b) / np.sqrt(rank)).astype(np.float32)
    return out


def _int8(w):
    """Per-row int8 weights with float scales: a quantised child the readers dequantise."""
    out = {}
    for n, v in w.items():
        scale = np.abs(v).max(1) / 127
        out[n] = np.rint(v / scale[:, None]).astype(np.int8)
        out[n + ".scale"] = scale.astype(np.float32)
    return out


def _folder(root: Path, name: str, tensors: dict, *, created: str, base_model: str | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    save_file(tensors, str(folder / "model.safetensors"))
    card = [f"created_at: '{created}'"] + ([f"base_model: {base_model}"] if base_model else [])
    (folder / "README.md").write_text("---\n" + "\n".join(card) + "\n---\n")
    return folder


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """A reference family on disk (base, a fine-tune of it, an unrelated root) and queries derived from it."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("identify")
    base, other = _root(rng), _root(rng)
    ft, ft2 = _finetune(rng, base), _finetune(rng, base, step=0.08)
    refs = [_folder(root / "refs", "org--ft2", ft2, created="2023-04-01T00:00:00Z", base_model="org--base"),
            _folder(root / "refs", "org--base", base, created="2023-01-01T00:00:00Z"),
            _folder(root / "refs", "org--ft", ft, created="2023-03-01T00:00:00Z", base_model="org--base"),
            _folder(root / "refs", "org--other", other, created="2023-02-01T00:00:00Z")]
    queries = {
        "child-of-ft": _folder(root / "q", "child-of-ft", _finetune(rng, ft), created="2024-01-01T00:00:00Z"),
        "lora-of-base": _folder(root / "q", "lora-of-base", _lora(rng, base), created="2024-01-01T00:00:00Z"),
        "int8-of-ft": _folder(root / "q", "int8-of-ft", _int8(ft), created="2024-01-01T00:00:00Z"),
        "merge": _folder(root / "q", "merge", {n: (0.5 * ft[n] + 0.5 * ft2[n]).astype(np.float32)
                                               for n in NAMES}, created="2024-01-01T00:00:00Z"),
        "copy-of-other": _folder(root / "q", "copy-of-other", dict(other), created="2024-01-01T00:00:00Z"),
        "ft-with-head": _folder(root / "q", "ft-with-head", {**_finetune(rng, ft), "classifier.weight":
                                rng.standard_normal((10, 48)).astype(np.float32)}, created="2024-01-01T00:00:00Z"),
        "stranger": _folder(root / "q", "stranger", _root(rng), created="2024-01-01T00:00:00Z"),
        "new-arch": _folder(root / "q", "new-arch", _root(rng, width=40), created="2024-01-01T00:00:00Z"),
    }
    store = root / "refs.parquet"
    res = runner.invoke(app, ["index", "add", str(root / "refs"), "--index", str(store), "--neurons", "16", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["added"] == 4
    return store, queries


@pytest.mark.parametrize("query, parents, relation", [
    ("child-of-ft", ["org--ft"], "finetune"),
    ("lora-of-base", ["org--base"], "adapter"),
    ("int8-of-ft", ["org--ft"], "quantized"),
    ("merge", ["org--ft", "org--ft2"], "merge"),
    ("copy-of-other", ["org--other"], "finetune"),
])
def test_identify_names_parent_relation_and_evidence(family, query, parents, relation):
    store, queries = family
    answer = identify(queries[query], store)
    assert sorted(answer.parents) == parents and answer.relation == relation
    assert 0.0 < answer.confidence <= 1.0
    assert answer.nearest and answer.evidence["tensors_compared"] == 4
    if relation == "adapter":
        ranks = answer.evidence["difference_rank"]
        assert set(ranks) == {"enc.l0.value.weight", "enc.l1.value.weight"} and max(ranks.values()) <= 2
        assert answer.evidence["tensors_identical"] == 2
    if relation == "quantized":
        assert answer.evidence["query_quantized"] and answer.evidence["quantization_schemes"]
    if relation == "merge":
        assert sorted(answer.evidence["merge_weights"]) == pytest.approx([0.5, 0.5], abs=0.02)
    if query == "copy-of-other":
        assert answer.rule == "duplicate" and answer.verdict.startswith("an exact copy")


def test_the_models_own_card_is_checked_against_the_weights(family, tmp_path):
    import shutil

    store, queries = family
    for claim, agrees in (("org--ft", True), ("org--other", False)):
        folder = tmp_path / f"claims-{claim}"
        folder.mkdir()
        shutil.copy(queries["child-of-ft"] / "model.safetensors", folder / "model.safetensors")
        (folder / "README.md").write_text(f"---\nbase_model: {claim}\ncreated_at: '2024-01-01T00:00:00Z'\n---\n")
        answer = identify(folder, store)
        assert answer.parents == ["org--ft"]
        assert answer.evidence["card_base_model"] == [claim] and answer.evidence["card_agrees"] is agrees
        assert any("its card names org--other" in m for m in answer.messages) is not agrees


def test_a_model_with_a_new_head_is_read_at_the_references_rows(family):
    store, queries = family
    answer = identify(queries["ft-with-head"], store)
    assert answer.parents == ["org--ft"] and answer.relation == "finetune"
    assert any("compared on the 4 fingerprinted tensors" in m and "(5 tensors)" in m for m in answer.messages)


def test_no_known_relative(family):
    store, queries = family
    stranger = identify(queries["stranger"], store)
    assert stranger.parents == [] and stranger.verdict.startswith("no known relative") and stranger.rule == "root"
    new_arch = identify(queries["new-arch"], store)
    assert new_arch.parents == [] and "architecture" in new_arch.verdict and not new_arch.nearest


def test_cli_json_and_bad_input(family, tmp_path):
    store, queries = family
    res = runner.invoke(app, ["identify", str(queries["child-of-ft"]), "--index", str(store), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["parents"] == ["org--ft"]
    res = runner.invoke(app, ["identify", "org--ft", "--index", str(store), "--json"])  # stored, against the others
    assert res.exit_code == 0 and json.loads(res.stdout)["verdict"] == "a fine-tune of org--base"
    from modelatlas.cli import main

    assert main(["identify", "no-such-model", "--index", str(store)]) == 2
    assert main(["identify", str(queries["stranger"]), "--index", str(tmp_path / "absent.parquet")]) == 2
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a", "b"):
        save_file(_root(np.random.default_rng(1)), str(two / f"{name}.safetensors"))
    assert main(["identify", str(two), "--index", str(store)]) == 2


def test_references_uploaded_later_are_never_parents(tmp_path):
    rng = np.random.default_rng(3)
    base = _root(rng)
    ft = _finetune(rng, base)
    _folder(tmp_path / "refs", "later-child", ft, created="2025-01-01T00:00:00Z")
    store = tmp_path / "s.parquet"
    assert runner.invoke(app, ["index", "add", str(tmp_path / "refs"), "--index", str(store),
                               "--neurons", "8"]).exit_code == 0
    q = _folder(tmp_path / "q", "base", base, created="2023-01-01T00:00:00Z")
    answer = identify(q, store)
    assert answer.parents == [] and any("uploaded after" in m for m in answer.messages)


def _synthetic_store(path: Path, n: int, seed: int):
    from modelatlas.chart.synthetic import synthetic_zoo

    z = synthetic_zoo(n, n_components=max(2, n // 40), layers=3, rows=8, cols=16, seed=seed)
    m = z.models
    fp = Fingerprints(ids=list(m.ids), signature_key="0" * 16, layer_names=[b.name for b in m.layers],
                      vectors=m.vectors, kurtosis=None, content_hashes=list(m.content_hashes),
                      quantized=m.quantized, bytes_read=np.zeros(n, np.int64),
                      layer_rows=[np.arange(8)] * 3, layer_offsets=np.array([0, 128, 256, 384]), n_neurons=8)
    metas = {m.ids[i]: ModelMeta(m.ids[i], created_at=float(m.created_at[i]), created_at_source="manifest",
                                 documented_parents=tuple(m.ids[p] for p in z.truth.parents[i]))
             for i in range(n)}
    store = FingerprintStore.empty(path)
    store.add(fp, metas)
    store.save()
    return z


def test_leave_one_out_recall_on_a_synthetic_store(tmp_path):
    """Every non-root model against a store of all the others (search index path, HNSW); merges
    and sweep members that share one update direction (fans, which no geometry tells from a chain of
    checkpoints: docs/chart.md) are left out."""
    z = _synthetic_store(tmp_path / "syn.parquet", 160, seed=5)
    ids = z.models.ids
    right = total = 0
    for i, ps in enumerate(z.truth.parents):
        if not ps or z.truth.pattern[i] in ("merge", "fan"):
            continue
        answer = identify(ids[i], tmp_path / "syn.parquet")
        total += 1
        right += sorted(answer.parents) == sorted(ids[p] for p in ps)
    assert total > 80 and right / total >= 0.9
    # the cached search index is reused, and rebuilt when the store changes
    cache = tmp_path / "syn.parquet.ann"
    (stamp,) = cache.glob("*.json")
    before = stamp.read_text()
    other = _synthetic_store(tmp_path / "syn.parquet", 120, seed=6)
    answer = identify(other.models.ids[-1], tmp_path / "syn.parquet")
    assert stamp.read_text() != before and answer.evidence["references_in_plan"] == 120


def test_stored_quantisation_schemes_reach_the_evidence(family, tmp_path):
    store, queries = family
    mine = tmp_path / "with-int8.parquet"
    mine.write_bytes(store.read_bytes())
    res = runner.invoke(app, ["index", "add", str(queries["int8-of-ft"]), "--index", str(mine), "--neurons", "16"])
    assert res.exit_code == 0, res.output
    rows = FingerprintStore.open(mine).rows.to_pylist()
    schemes = {r["id"]: r["quantization_schemes"] for r in rows}
    assert schemes["int8-of-ft"] == ["i8-affine"] and schemes["org--ft"] == []
    answer = identify("int8-of-ft", mine)
    assert answer.parents == ["org--ft"] and answer.evidence["quantization_schemes"] == ["i8-affine"]


def test_a_projected_store_still_finds_the_parent_without_per_layer_evidence(family, tmp_path):
    store, queries = family
    refs = Path(store).parent / "refs"
    small = tmp_path / "projected.parquet"
    res = runner.invoke(app, ["index", "add", str(refs), "--index", str(small), "--neurons", "16", "--project", "64"])
    assert res.exit_code == 0, res.output
    answer = identify(queries["child-of-ft"], small)
    assert answer.parents == ["org--ft"] and answer.relation == "finetune"
    assert any("projected fingerprints" in m for m in answer.messages)
