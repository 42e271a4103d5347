"""Fingerprints: same rows per signature, kurtosis, hashes, mixed signatures, the store, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file
from scipy.stats import kurtosis

from modelatlas.cli import main
from modelatlas.errors import InputError
from modelatlas.weights.fingerprint import (SignatureMismatchError, fingerprint_models,
                                            group_by_signature, select_layers)
from modelatlas.weights import open_weights, signature


def _vit_like(rng, hidden=32, noise=0.0, base=None):
    shapes = {"encoder.layer.0.attention.attention.query.weight": (hidden, hidden),
              "encoder.layer.0.attention.attention.value.weight": (hidden, hidden),
              "encoder.layer.0.attention.output.dense.weight": (hidden, hidden),
              "encoder.layer.0.intermediate.dense.weight": (4 * hidden, hidden),
              "encoder.layer.0.output.dense.weight": (hidden, 4 * hidden),
              "encoder.layer.0.output.dense.bias": (hidden,),
              "classifier.weight": (10, hidden)}
    if base is not None:
        return {n: (v + noise * rng.standard_normal(v.shape)).astype(np.float32) for n, v in base.items()}
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}


def test_layer_selections(tmp_path):
    rng = np.random.default_rng(0)
    save_file(_vit_like(rng), tmp_path / "m.safetensors")
    with open_weights(tmp_path / "m.safetensors") as wf:
        sig = signature(wf)
    assert len(select_layers(sig, "dense")) == 6
    assert select_layers(sig, "attention") == [
        "encoder.layer.0.attention.attention.query.weight", "encoder.layer.0.attention.attention.value.weight",
        "encoder.layer.0.attention.output.dense.weight"]
    assert select_layers(sig, "mother-vit") == ["encoder.layer.0.attention.output.dense.weight"]
    assert select_layers(sig, "mother-lora") == ["encoder.layer.0.attention.attention.value.weight"]
    assert len(select_layers(sig, "mother-sd")) == 3
    assert select_layers(sig, r"classifier") == ["classifier.weight"]
    with pytest.raises(InputError, match="neither one of"):
        select_layers(sig, "([")


def test_same_rows_for_every_model_and_distances(tmp_path):
    rng = np.random.default_rng(1)
    root = _vit_like(rng, hidden=256)
    paths = []
    for i, noise in enumerate([0.0, 0.01, 0.1]):
        path = tmp_path / f"m{i}.safetensors"
        save_file(_vit_like(rng, hidden=256, noise=noise, base=root), path)
        paths.append(path)
    fp = fingerprint_models(paths, n_neurons=20, seed=3)
    assert fp.vectors.shape[0] == 3
    assert [r.size for r in fp.layer_rows] == [10] + [20] * 5  # classifier.weight has 10 rows
    # rows are the same for every model: a rebuilt vector from full tensors matches
    for k, path in enumerate(paths):
        with open_weights(path) as wf:
            sig = signature(wf)
            parts = [wf.read(sig.file_names[layer]).reshape(wf.tensors[sig.file_names[layer]].rows, -1)[rows].ravel()
                     for layer, rows in zip(fp.layer_names, fp.layer_rows)]
        np.testing.assert_array_equal(fp.vectors[k], np.concatenate(parts))
    d01 = np.linalg.norm(fp.vectors[0] - fp.vectors[1])
    d02 = np.linalg.norm(fp.vectors[0] - fp.vectors[2])
    assert 0 < d01 < d02
    # another seed gives other rows; the same seed the same rows
    other = fingerprint_models(paths[:1], n_neurons=20, seed=4)
    assert any(not np.array_equal(a, b) for a, b in zip(other.layer_rows, fp.layer_rows))
    again = fingerprint_models(paths[:1], n_neurons=20, seed=3)
    np.testing.assert_array_equal(again.vectors[0], fp.vectors[0])
    # lazy: a fraction of the bytes
    total = sum(p.stat().st_size for p in paths[:1])
    assert again.bytes_read[0] < total / 5


def test_model_wide_sampling_draws_n_rows_in_all(tmp_path):
    rng = np.random.default_rng(2)
    save_file(_vit_like(rng, hidden=64), tmp_path / "m.safetensors")
    fp = fingerprint_models([tmp_path / "m.safetensors"], n_neurons=50, sampling="model")
    assert sum(r.size for r in fp.layer_rows) == 50
    assert fp.layer_offsets[-1] == fp.vectors.shape[1]


def test_kurtosis_for_mother_layers(tmp_path):
    rng = np.random.default_rng(3)
    tensors = _vit_like(rng)
    save_file(tensors, tmp_path / "m.safetensors")
    fp = fingerprint_models([tmp_path / "m.safetensors"], layers="mother-vit", n_neurons=5)
    name = "encoder.layer.0.attention.output.dense.weight"
    assert fp.layer_names == [name]
    assert fp.kurtosis.shape == (1, 1)
    assert fp.kurtosis[0, 0] == pytest.approx(kurtosis(tensors[name].ravel().astype(np.float64), fisher=True))
    assert fingerprint_models([tmp_path / "m.safetensors"], n_neurons=5).kurtosis is None
    dense = fingerprint_models([tmp_path / "m.safetensors"], n_neurons=5, kurtosis=True)
    assert np.isnan(dense.kurtosis[0]).sum() == 3  # the non-square layers


def test_duplicates_and_quantised_flags(tmp_path):
    rng = np.random.default_rng(4)
    base = _vit_like(rng, hidden=128)
    save_file(base, tmp_path / "a.safetensors")
    save_file(base, tmp_path / "dup.safetensors", metadata={"re": "upload"})
    q = {}
    for n, v in base.items():
        if v.ndim == 2:
            s = np.abs(v).max(axis=1, keepdims=True) / 127
            q[n] = np.round(v / s).astype(np.int8)
            q[n + "_scale"] = s.astype(np.float32)
        else:
            q[n] = v
    save_file(q, tmp_path / "q.safetensors")
    paths = [tmp_path / "a.safetensors", tmp_path / "dup.safetensors", tmp_path / "q.safetensors"]
    for kind in ("sample", "full"):
        fp = fingerprint_models(paths, n_neurons=10, hash_kind=kind)
        assert fp.content_hashes[0] == fp.content_hashes[1] != fp.content_hashes[2]
        assert fp.quantized.tolist() == [False, False, True]
    assert fp.bytes_read[0] >= (tmp_path / "a.safetensors").stat().st_size - 1000  # full hash reads all


def test_mixed_signatures(tmp_path):
    rng = np.random.default_rng(5)
    save_file(_vit_like(rng, hidden=32), tmp_path / "a.safetensors")
    save_file(_vit_like(rng, hidden=16), tmp_path / "b.safetensors")
    small = _vit_like(rng, hidden=32)
    del small["classifier.weight"]
    save_file(small, tmp_path / "c.safetensors")
    with pytest.raises(SignatureMismatchError, match=r"b\.safetensors.*differs from .*a\.safetensors.*differ in shape"):
        fingerprint_models([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])
    groups = group_by_signature([tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "c.safetensors"])
    assert len(groups) == 3
    common = fingerprint_models([tmp_path / "a.safetensors", tmp_path / "c.safetensors"], align="common", n_neurons=4)
    assert "classifier.weight" not in common.layer_names and len(common.layer_names) == 5


def test_store_roundtrip_and_append_skips_present_models(tmp_path):
    from modelatlas.weights.store import FingerprintStore, ModelMeta

    rng = np.random.default_rng(6)
    save_file(_vit_like(rng), tmp_path / "m.safetensors")
    save_file(_vit_like(rng), tmp_path / "n.safetensors")
    fp = fingerprint_models([tmp_path / "m.safetensors"], ids=["org/model"], layers="mother-vit", n_neurons=7)
    store = FingerprintStore.open(tmp_path / "fp.parquet")
    assert store.add(fp, {"org/model": ModelMeta("org/model", created_at=1.7e9, created_at_source="card",
                                                 documented_parents=("org/base",))}) == ["org/model"]
    store.save()
    back = FingerprintStore.open(tmp_path / "fp.parquet")
    (plan,) = back.plans
    got, rows = back.fingerprints(plan)
    assert got.ids == ["org/model"] and got.signature_key == fp.signature_key
    np.testing.assert_array_equal(got.vectors, fp.vectors)
    np.testing.assert_array_equal(got.kurtosis, fp.kurtosis)
    assert [r.tolist() for r in got.layer_rows] == [r.tolist() for r in fp.layer_rows]
    assert got.layers == "mother-vit" and got.content_hashes == fp.content_hashes
    assert rows["documented_parents"].to_pylist() == [["org/base"]]
    assert rows["created_at"][0].as_py().timestamp() == 1.7e9
    # the same model again is skipped; another model of the same signature joins the same plan
    again = fingerprint_models([tmp_path / "m.safetensors", tmp_path / "n.safetensors"], ids=["org/model", "org/n"],
                               layers="mother-vit", n_neurons=7)
    assert back.add(again) == ["org/n"]
    assert back.plan_counts() == {plan: 2}
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.parquet"):
        FingerprintStore.open(tmp_path / "junk.parquet")


def _cli(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as done:  # typer exits on success
        return int(done.code or 0)


def test_cli_manifest_store_and_errors(tmp_path, capsys):
    from modelatlas.weights.store import FingerprintStore

    rng = np.random.default_rng(7)
    models = tmp_path / "zoo" / "models"
    models.mkdir(parents=True)
    entries = []
    for i, hidden in enumerate([32, 32, 16]):
        save_file(_vit_like(rng, hidden=hidden), models / f"m{i}.safetensors")
        entries.append({"id": f"c/m{i}", "path": f"models/m{i}.safetensors",
                        "created_at": f"2024-01-0{i + 1}T00:00:00Z"})
    (tmp_path / "zoo" / "manifest.json").write_text(json.dumps({"name": "t", "models": entries}))
    manifest = str(tmp_path / "zoo" / "manifest.json")
    out = str(tmp_path / "x.parquet")
    assert _cli(["fingerprint", manifest, "--out", str(tmp_path / "x.npz")]) == 2
    assert "Parquet" in capsys.readouterr().err
    # two signatures: one store, two plans, the manifest's times kept
    assert _cli(["fingerprint", manifest, "--out", out, "--neurons", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 3 and sorted(p["models"] for p in report["plans"]) == [1, 2]
    store = FingerprintStore.open(out)
    assert sorted(store.ids) == ["c/m0", "c/m1", "c/m2"]
    assert set(store.rows["created_at_source"].to_pylist()) == {"manifest"}
    # again: nothing read, nothing added
    assert _cli(["fingerprint", str(tmp_path / "zoo"), "--out", out, "--neurons", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 0 and report["bytes_read"] == 0 and "already in the store" in report["messages"][0]
    assert _cli(["fingerprint", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "y.parquet"),
                 "--strict"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_skip_mode_keeps_going_past_bad_files(tmp_path):
    rng = np.random.default_rng(8)
    good = [tmp_path / "a.safetensors", tmp_path / "b.safetensors"]
    for path in good:
        save_file(_vit_like(rng), path)
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    paths = [good[0], tmp_path / "broken.safetensors", tmp_path / "absent.safetensors", good[1]]
    with pytest.raises(InputError, match="broken.safetensors"):
        fingerprint_models(paths, n_neurons=4)
    fp = fingerprint_models(paths, n_neurons=4, on_error="skip")
    assert fp.ids == [str(good[0]), str(good[1])] and fp.vectors.shape[0] == 2
    assert [s[0] for s in fp.skipped] == [str(paths[1]), str(paths[2])]
    assert "not valid UTF-8 JSON" in fp.skipped[0][1] and "no such file" in fp.skipped[1][1]


def test_cli_weights_info(tmp_path, capsys):
    rng = np.random.default_rng(9)
    w = rng.standard_normal((8, 32)).astype(np.float32)
    scale = np.abs(w).max(1) / 127
    save_file({"a.weight": np.rint(w / scale[:, None]).astype(np.int8), "a.weight.scale": scale.astype(np.float32),
               "a.bias": np.zeros(8, np.float32)}, tmp_path / "q.safetensors")
    assert _cli(["weights-info", str(tmp_path / "q.safetensors"), "--json", "--tensors", "--hash"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["quantized"] and info["schemes"] == ["i8-affine"] and info["parameters"] == 8 * 32 + 8
    assert {t["name"] for t in info["tensor_list"]} == {"a.weight", "a.bias"} and len(info["content_hash"]) == 32
    assert _cli(["weights-info", str(tmp_path / "nope.safetensors")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_projection_while_reading_preserves_distances(tmp_path):
    rng = np.random.default_rng(10)
    root = _vit_like(rng, hidden=128)
    paths = []
    for i, noise in enumerate([0.0, 0.05, 0.2, 1.0]):
        paths.append(tmp_path / f"m{i}.safetensors")
        save_file(_vit_like(rng, hidden=128, noise=noise, base=root), paths[-1])
    full = fingerprint_models(paths, n_neurons=64)
    small = fingerprint_models(paths, n_neurons=64, project=1024)
    assert small.vectors.shape == (4, 1024) and small.projection == 1024
    assert small.content_hashes == full.content_hashes  # hashes use the unprojected rows
    exact = np.linalg.norm(full.vectors[:, None] - full.vectors[None], axis=2)
    approx = np.linalg.norm(small.vectors[:, None] - small.vectors[None], axis=2)
    off = ~np.eye(4, dtype=bool) & (exact > 0)
    assert np.all(np.abs(approx[off] / exact[off] - 1) < 0.15)
    assert (approx[0, 1:] == np.sort(approx[0, 1:])).all()  # order of relatives kept
    from modelatlas.weights.store import FingerprintStore

    store = FingerprintStore.empty(tmp_path / "p.parquet")
    store.add(small)
    store.save()
    back = FingerprintStore.open(tmp_path / "p.parquet")
    got, _ = back.fingerprints(next(iter(back.plans)))
    assert got.projection == 1024 and got.vectors.shape == (4, 1024)
    with pytest.raises(InputError, match="no per-layer blocks"):
        small.layer_block(small.layer_names[0])
    with pytest.raises(InputError, match="multiple of 4"):
        fingerprint_models(paths[:1], project=6)
