"""Zoo building: every pattern present in the tiny zoo, with ground truth that the weights confirm.

The tiny zoo is built once per session (``tiny_zoo`` fixture of conftest.py). Merges, quantisation
and LoRA are checked against independent numpy computations from the parents' files.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

from modelatlas.zoo.manifest import PATTERNS, load_manifest
from merge_oracles import slerp, ties

torch = pytest.importorskip("torch", reason="building zoos needs PyTorch: pip install 'modelatlas[torch]'")

pytestmark = pytest.mark.torch


def _weights(zoo, m) -> dict[str, np.ndarray]:
    """Float weights of ``m`` (the de-quantised copy for quantised models)."""
    if "dequantized_path" in m.extra:
        return load_file(zoo.root / m.extra["dequantized_path"])
    return load_file(m.path)


def _of(zoo, pattern):
    return [m for m in zoo.models if m.pattern == pattern]


def test_tiny_zoo_is_a_valid_mixed_atlas(tiny_zoo):
    zoo = load_manifest(tiny_zoo.root)  # validates files, relations, parents, cycles
    assert zoo.name == "tiny" and len(zoo.models) >= 60
    size = sum(p.stat().st_size for p in zoo.root.rglob("*") if p.is_file())
    assert size < 20e6
    assert {m.pattern for m in zoo.models} == set(PATTERNS)
    by_component: dict[str, set] = {}
    for m in zoo.models:
        by_component.setdefault(m.component, set()).add(m.pattern)
    assert all(patterns == set(PATTERNS) for patterns in by_component.values()), by_component
    roots = _of(zoo, "root")
    archs = Counter(m.architecture for m in roots)
    assert len(archs) >= 3 and max(archs.values()) >= 2  # several kinds, and several roots of one kind
    by_id = zoo.by_id()
    for m in zoo.models:  # one architecture per component, as the root's
        root = next(r for r in roots if r.component == m.component)
        assert m.architecture == root.architecture
        assert all(by_id[p].component == m.component for p in m.parents)


def test_transformer_uses_hf_layer_names(tiny_zoo):
    m = next(m for m in tiny_zoo.models if m.architecture.startswith("bert") and m.pattern == "root")
    names = load_file(m.path).keys()
    for kind in ("attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight",
                 "attention.output.dense.weight", "intermediate.dense.weight"):
        assert f"encoder.layer.0.{kind}" in names


def test_roots_pretrained_and_children_specialised(tiny_zoo):
    """Both stages are real: roots learn their broad task, fine-tunes move away from the parent
    but stay much closer to it than to another root of the same architecture."""
    zoo = tiny_zoo
    by_id = zoo.by_id()
    roots = _of(zoo, "root")
    for r in roots:
        assert r.extra["accuracy"] > 3 / 16 and r.extra["init"] == "random"

    def flat(m):
        w = _weights(zoo, m)
        return np.concatenate([w[k].ravel() for k in sorted(w)])

    checked = 0
    for m in _of(zoo, "finetune"):
        parent = by_id[m.parents[0]]
        others = [r for r in roots if r.architecture == m.architecture and r.component != m.component]
        if not others:
            continue
        v, p = flat(m), flat(parent)
        assert np.linalg.norm(v - p) > 0
        assert all(np.linalg.norm(v - p) < 0.5 * np.linalg.norm(v - flat(o)) for o in others)
        checked += 1
    assert checked >= 4


def test_duplicates_are_byte_identical(tiny_zoo):
    dups = _of(tiny_zoo, "duplicate")
    assert dups
    by_id = tiny_zoo.by_id()
    for m in dups:
        parent = by_id[m.parents[0]]
        assert m.extra["duplicate_of"] == parent.id and m.path != parent.path
        assert m.path.read_bytes() == parent.path.read_bytes()


def test_quantized_leaves_dequantize_close_to_parent(tiny_zoo):
    zoo = tiny_zoo
    by_id = zoo.by_id()
    schemes = Counter()
    has_child = {p for m in zoo.models for p in m.parents}
    for m in _of(zoo, "quantized"):
        assert m.relation == "quantized" and m.id not in has_child
        schemes[m.extra["quant_scheme"]] += 1
        packed, floats = load_file(m.path), _weights(zoo, m)
        parent = load_file(by_id[m.parents[0]].path)
        assert set(floats) == set(parent)
        quantised = 0
        for name, w in parent.items():
            if m.extra["quant_scheme"] == "int8-row" and name + ".scale" in packed:
                q, scale = packed[name], packed[name + ".scale"]
                assert q.dtype == np.int8 and q.shape == w.shape and scale.shape == (w.shape[0],)
                np.testing.assert_allclose(q * scale[:, None], floats[name], rtol=1e-6, atol=1e-7)
                bound = scale[:, None] / 2
            elif m.extra["quant_scheme"] == "int4-group" and name + ".scales" in packed:
                q, scales = packed[name], packed[name + ".scales"]
                group = m.extra["quant_group"] if w.shape[1] % m.extra["quant_group"] == 0 else w.shape[1]
                assert q.dtype == np.uint8 and q.shape == (w.shape[0], w.shape[1] // 2)
                codes = np.stack([q & 15, q >> 4], -1).reshape(w.shape).astype(np.float32) - 8
                np.testing.assert_allclose(codes * np.repeat(scales, group, 1), floats[name], rtol=1e-6, atol=1e-7)
                bound = np.repeat(scales, group, 1) / 2
            else:
                np.testing.assert_array_equal(packed[name], w)  # left in float32
                np.testing.assert_array_equal(floats[name], w)
                continue
            quantised += 1
            assert np.all(np.abs(floats[name] - w) <= bound * 1.0001 + 1e-7)
        assert quantised >= 2
    assert schemes["int8-row"] >= 2 and schemes["int4-group"] >= 2


def _rank(matrix: np.ndarray) -> int:
    s = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    return int((s > 1e-4 * max(s[0], 1e-12)).sum())


def test_lora_difference_is_low_rank_and_matches_adapter(tiny_zoo):
    zoo = tiny_zoo
    by_id = zoo.by_id()
    ranks = set()
    for m in _of(zoo, "lora"):
        assert m.relation == "adapter"
        r, alpha, targets = m.extra["lora_rank"], m.extra["lora_alpha"], m.extra["lora_targets"]
        ranks.add(r)
        child, parent = load_file(m.path), load_file(by_id[m.parents[0]].path)
        adapter_path = zoo.root / m.extra["adapter_path"]
        adapter = load_file(adapter_path)
        with safe_open(adapter_path, "np") as f:
            config = json.loads(f.metadata()["lora_config"])
        assert config == {"r": r, "lora_alpha": alpha, "target_modules": targets}
        for name in child:
            target = name.removesuffix(".weight")
            diff = child[name].astype(np.float64) - parent[name]
            if target in targets:
                a = adapter[f"base_model.model.{target}.lora_A.weight"]
                b = adapter[f"base_model.model.{target}.lora_B.weight"]
                assert a.shape == (r, parent[name].shape[1]) and b.shape == (parent[name].shape[0], r)
                assert 1 <= _rank(diff) <= r
                np.testing.assert_allclose(diff, alpha / r * (b.astype(np.float64) @ a), atol=2e-6)
            else:
                assert not diff.any(), f"{m.id}: {name} changed outside the LoRA targets"
    assert len(ranks) >= 2  # fixed rank and varying ranks


def test_merges_equal_the_stated_combination(tiny_zoo):
    zoo = tiny_zoo
    by_id = zoo.by_id()
    methods = Counter()
    for m in _of(zoo, "merge"):
        assert m.relation == "merge" and m.documented_parents and 2 <= len(m.parents) <= 3
        method = m.extra["merge_method"]
        methods[method] += 1
        merged = load_file(m.path)
        parents = [load_file(by_id[p].path) for p in m.parents]
        for name, value in merged.items():
            if method == "average":
                want = sum(w * p[name].astype(np.float64) for w, p in zip(m.extra["merge_weights"], parents))
            elif method == "slerp":
                want = slerp(parents[0][name], parents[1][name], m.extra["merge_t"])
            else:
                if value.size > 4096:
                    continue  # the plain per-element check is slow; smaller tensors suffice
                base = load_file(by_id[m.extra["merge_base"]].path)[name]
                want = ties(base, [p[name] for p in parents], m.extra["merge_weights"],
                             m.extra["merge_density"], m.extra["merge_lambda"])
            np.testing.assert_allclose(value.ravel(), np.ravel(want), rtol=1e-5, atol=1e-6, err_msg=f"{m.id} {name}")
    assert set(methods) == {"average", "slerp", "ties"}
    assert any(len(m.parents) == 3 for m in _of(zoo, "merge"))


def test_snakes_are_ordered_checkpoints_of_one_run(tiny_zoo):
    runs: dict[str, list] = {}
    for m in _of(tiny_zoo, "snake"):
        runs.setdefault(m.extra["run"], []).append(m)
    assert runs
    for chain in runs.values():
        assert len(chain) >= 3
        steps = [m.extra["step"] for m in chain]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)
        for prev, m in zip(chain, chain[1:]):
            assert m.parents == [prev.id] and m.relation == "finetune"
            assert m.extra["seed"] == prev.extra["seed"] and m.extra["task"] == prev.extra["task"]
        assert chain[0].pattern == "snake" and chain[0].parents[0] not in {m.id for m in chain}


def test_fans_are_sweeps_of_siblings(tiny_zoo):
    sweeps: dict[str, list] = {}
    for m in _of(tiny_zoo, "fan"):
        sweeps.setdefault(m.extra["sweep"], []).append(m)
    assert sweeps
    for members in sweeps.values():
        assert len(members) >= 2
        assert len({tuple(m.parents) for m in members}) == 1
        assert len({m.extra["task"] for m in members}) == 1
        assert len({json.dumps(m.extra["sweep_params"], sort_keys=True) for m in members}) == len(members)


def test_upload_times_mostly_follow_lineage(tiny_zoo):
    by_id = tiny_zoo.by_id()
    edges = [(by_id[p], m) for m in tiny_zoo.models for p in m.parents]
    wrong = [(p, c) for p, c in edges if p.created_at >= c.created_at]
    assert wrong and len(wrong) <= max(2, 0.03 * len(edges))
    assert {c.id for _, c in wrong} == {m.id for m in tiny_zoo.models if "upload_noise" in m.extra}
    assert len({m.created_at for m in tiny_zoo.models}) > 0.8 * len(tiny_zoo.models)
    assert all(m.created_at.tzinfo is not None for m in tiny_zoo.models)


def _micro(out, seed):
    from modelatlas.zoo.builder import ZooBuilder
    from modelatlas.zoo.recipes import Scale, mixed_component
    from modelatlas.zoo.tasks import Task, narrow_task

    scale = Scale(pretrain_steps=20, finetune_steps=10, children=3, grandchildren=1, lora_fixed=1,
                  lora_varying=1, quantized=1, duplicates=1, snake=2, fan_lrs=(1e-3, 3e-3), fan_seeds=1)
    b = ZooBuilder(out, "micro", seed)
    mixed_component(b, "a", "mlp-3x64", 1, scale)
    root = b.root("b", "bert-2x32", Task("sequence", 2), steps=10)
    b.lora(b.finetune(root, "ft", narrow_task("sequence", 2, b.rng), steps=5, lr=1e-3), "lora",
           narrow_task("sequence", 2, b.rng), rank=2, steps=5, lr=1e-3)
    return b.finish()


def test_build_is_deterministic_for_a_seed(tmp_path):
    """Same recipe and seed: the same bytes in every file (the manifest included); another seed differs."""
    def digest(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    _micro(tmp_path / "one", 5)
    _micro(tmp_path / "two", 5)
    one, two = digest(tmp_path / "one"), digest(tmp_path / "two")
    assert len(one) > 20 and one == two

    from modelatlas.zoo.builder import ZooBuilder
    from modelatlas.zoo.tasks import Task

    ZooBuilder(tmp_path / "three", "micro", 6).root("a", "mlp-3x64", Task("vector", 1), steps=20)
    assert (tmp_path / "three/models/a/root.safetensors").read_bytes() != one["models/a/root.safetensors"]


def test_a_zoo_written_to_a_relative_folder_loads_from_anywhere(tmp_path, monkeypatch):
    """Manifest paths are relative to the manifest, whatever the working folder was."""
    monkeypatch.chdir(tmp_path)
    _micro(Path("rel") / "zoo", 5)
    entries = json.loads((tmp_path / "rel/zoo/manifest.json").read_text())["models"]
    assert all(not e["path"].startswith("rel/") for e in entries)
    monkeypatch.chdir(tmp_path / "rel")
    zoo = load_manifest("zoo")
    assert all(m.path.is_file() for m in zoo.models)


def test_vthr_shape(tmp_path):
    from modelatlas.zoo.recipes import VTHR_SPLITS, build_vthr

    zoo = build_vthr(tmp_path, 0, roots=2, children=2, grandchildren=2, pretrain_steps=10, finetune_steps=5)
    assert len(zoo.models) == 2 + 2 * len(VTHR_SPLITS) * (2 + 4)
    by_id = zoo.by_id()
    for split in VTHR_SPLITS:
        part = load_manifest(tmp_path / f"manifest-{split}.json")
        assert len(part.models) == 2 * (1 + 2 + 4)
        for m in part.models:
            if m.pattern == "root":
                continue
            assert m.extra["split"] == split
            parent = by_id[m.parents[0]]
            if parent.pattern != "root":  # grandchildren train on a task other than their parent's
                assert m.extra["task"] != parent.extra["task"]
            if split == "ft":
                assert m.relation == "finetune"
            else:
                assert m.relation == "adapter" and m.extra["lora_rank"] in VTHR_SPLITS[split]
                assert m.extra["lora_targets"] and all(".attention.self." in t for t in m.extra["lora_targets"])
