"""Zoo families: each builds at tiny size, its manifest validates, and its ground truth holds in the
weights, checked independently of the builder (numpy re-derivations, not the builder's code)."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import timedelta
from itertools import product

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.zoo.families import FAMILIES
from modelatlas.zoo.manifest import load_manifest
from merge_oracles import slerp, ties

pytest.importorskip("torch", reason="building zoos needs PyTorch: pip install 'modelatlas[torch]'")
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

RELATION_OF = {"finetune": "finetune", "snake": "finetune", "fan": "finetune", "duplicate": "finetune",
               "lora": "adapter", "quantized": "quantized", "merge": "merge"}
STORED = {"fp32": np.float32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16}
ULP = {"fp32": 2.0**-23, "fp16": 2.0**-10, "bf16": 2.0**-7}


def _cache(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, shared by the workers
    return base / "zoo-cache"


@pytest.fixture(scope="session", params=sorted(FAMILIES))
def family_zoo(request, tmp_path_factory):
    """Each family at tiny size, seed 0, built once per test session."""
    from modelatlas.zoo.recipes import build_cached

    return build_cached(request.param, _cache(tmp_path_factory), seed=0, size="tiny")


def _floats(path) -> dict[str, np.ndarray]:
    """Every tensor of a file, float tensors (bf16 included) as float64."""
    out = {}
    for k, v in load_file(str(path)).items():
        out[k] = v.astype(np.float64) if v.dtype.kind == "f" or v.dtype == ml_dtypes.bfloat16 else v
    return out


def _cast(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` rounded to float32 then to the storage dtype, back in float64."""
    return x.astype(np.float32).astype(STORED[dtype]).astype(np.float64)


def _close_in(dtype: str, actual: np.ndarray, expected: np.ndarray, ulps: float = 2.0) -> bool:
    bound = ulps * ULP[dtype] * np.abs(expected) + 1e-7
    return bool(np.all(np.abs(actual - expected) <= bound))


def _dequantized(path) -> dict[str, np.ndarray]:
    """Quantised tensors decoded from codes and scales, written out plainly (docs/zoo.md "Files")."""
    packed = load_file(str(path))
    out = {}
    for name, t in packed.items():
        if name.endswith((".scale", ".scales")) and name.rsplit(".", 1)[0] in packed:
            continue
        if t.dtype == np.int8:
            out[name] = t.astype(np.float64) * packed[name + ".scale"][:, None]
        elif t.dtype == np.uint8:
            codes = np.stack([t & 15, t >> 4], -1).reshape(t.shape[0], -1).astype(np.float64) - 8
            scales = packed[name + ".scales"].astype(np.float64)
            out[name] = codes * np.repeat(scales, codes.shape[1] // scales.shape[1], 1)
        else:
            out[name] = t.astype(np.float64) if t.dtype.kind == "f" or t.dtype == ml_dtypes.bfloat16 else t
    return out


def _of(zoo, pattern):
    return [m for m in zoo.models if m.pattern == pattern]


def _dtype(m) -> str:
    return m.extra.get("dtype", "fp32")


def test_family_manifest_is_a_valid_ground_truth(family_zoo):
    zoo = load_manifest(family_zoo.root)  # validates files, relations, the DAG
    by_id = zoo.by_id()
    patterns = Counter(m.pattern for m in zoo.models)
    assert patterns["root"] >= 2 and len(zoo.models) >= 12
    for m in zoo.models:
        if m.pattern == "root":
            assert m.parents == [] and m.relation is None
            continue
        assert m.relation == RELATION_OF[m.pattern], m.id
        assert all(by_id[p].component == m.component and by_id[p].architecture == m.architecture for p in m.parents)
        assert (len(m.parents) >= 2) == (m.pattern == "merge"), m.id
        assert m.documented_parents is False or m.pattern == "merge"
    assert len(patterns) >= 4, patterns
    position = {m.id: i for i, m in enumerate(zoo.models)}  # listed at random, not in build order
    assert any(position[p] > position[m.id] for m in zoo.models for p in m.parents)


def test_duplicates_are_byte_identical(family_zoo):
    by_id = family_zoo.by_id()
    duplicates = _of(family_zoo, "duplicate")
    for m in duplicates:
        assert m.path.read_bytes() == by_id[m.parents[0]].path.read_bytes()
    assert duplicates, "tiny family zoos hold every pattern"


def test_quantized_leaves_decode_close_to_their_parent(family_zoo):
    by_id = family_zoo.by_id()
    for m in _of(family_zoo, "quantized"):
        parent, floats, packed = _floats(by_id[m.parents[0]].path), _dequantized(m.path), load_file(str(m.path))
        assert set(floats) == set(parent)
        quantised = 0
        for name, w in parent.items():
            if name + ".scale" in packed or name + ".scales" in packed:
                quantised += 1
                step = (np.abs(w).max(1, keepdims=True) / 127 if name + ".scale" in packed
                        else np.repeat(packed[name + ".scales"], w.shape[1] // packed[name + ".scales"].shape[1], 1))
                assert np.all(np.abs(floats[name] - w) <= step / 2 * 1.001 + 1e-6), (m.id, name)
            else:
                np.testing.assert_array_equal(floats[name], w)
        assert quantised >= 1, m.id
    assert _of(family_zoo, "quantized")


def _rank(matrix: np.ndarray, rtol: float) -> int:
    s = np.linalg.svd(matrix, compute_uv=False)
    return int((s > rtol * max(s[0], 1e-12)).sum())


def test_lora_children_differ_by_low_rank_in_the_targets_only(family_zoo):
    by_id = family_zoo.by_id()
    assert _of(family_zoo, "lora")
    for m in _of(family_zoo, "lora"):
        e = m.extra
        r, scaling, targets, dtype = e["lora_rank"], e["lora_scaling"], e["lora_targets"], _dtype(m)
        assert scaling == pytest.approx(e["lora_alpha"] / (np.sqrt(r) if e["lora_rslora"] else r))
        child, parent = _floats(m.path), _floats(by_id[m.parents[0]].path)
        base = parent if e.get("lora_base_quant") is None else _dequantized_like(parent, e["lora_base_quant"])
        adapter_path = family_zoo.root / e["adapter_path"]
        adapter = load_file(str(adapter_path))
        with safe_open(str(adapter_path), "np") as f:
            config = json.loads(f.metadata()["lora_config"])
        assert config["r"] == r and config["target_modules"] == targets
        assert config["init_lora_weights"] == e["lora_init"]
        for name, value in child.items():
            target = name.removesuffix(".weight")
            if target in targets and name.endswith(".weight"):
                a = adapter[f"base_model.model.{target}.lora_A.weight"].astype(np.float64)
                b = adapter[f"base_model.model.{target}.lora_B.weight"].astype(np.float64)
                assert a.shape == (r, value.shape[1]) and b.shape == (value.shape[0], r)
                if e["lora_init"] != "pissa":  # merged = base + scaling · B A, then stored
                    assert _close_in(dtype, value, _cast(base[name] + scaling * (b @ a), dtype)), (m.id, name)
                if dtype == "fp32" and e.get("lora_base_quant") is None:
                    bound = 2 * r if e["lora_init"] == "pissa" else r
                    assert _rank(value - base[name], 1e-4) <= bound, (m.id, name)
            elif value.dtype.kind == "f":
                np.testing.assert_array_equal(value, _cast(base[name], dtype), err_msg=f"{m.id}: {name} changed")
            else:
                np.testing.assert_array_equal(value, base[name])


def _dequantized_like(state: dict[str, np.ndarray], scheme: str) -> dict[str, np.ndarray]:
    """The base a QLoRA-like child trained against: the parent quantised by ``scheme`` and decoded."""
    from modelatlas.zoo.quantize import dequantize, quantize

    f32 = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in state.items()}
    return {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in dequantize(quantize(f32, scheme)).items()}


def test_frozen_layers_are_bit_identical(family_zoo):
    by_id = family_zoo.by_id()
    partial = [m for m in family_zoo.models if isinstance(m.extra.get("trainable"), list)]
    assert partial
    moved = 0  # a nudge stored in bf16 may round to no change at all: a zero difference is data
    for m in partial:
        prefixes = tuple(p + "." for p in m.extra["trainable"])
        child, parent = _floats(m.path), _floats(by_id[m.parents[0]].path)
        for name, value in child.items():
            if name.startswith(prefixes):
                moved += int(not np.array_equal(value, parent[name]))
            elif value.dtype.kind == "f":
                np.testing.assert_array_equal(value, _cast(parent[name], _dtype(m)), err_msg=f"{m.id}: {name}")
            else:
                np.testing.assert_array_equal(value, parent[name])
    assert moved >= 1


def test_merges_equal_the_stated_combination(family_zoo):
    by_id = family_zoo.by_id()
    assert _of(family_zoo, "merge")
    for m in _of(family_zoo, "merge"):
        e, dtype = m.extra, _dtype(m)
        child = _floats(m.path)
        parents = [_floats(by_id[p].path) for p in m.parents]
        base = _floats(by_id[e["merge_base"]].path) if "merge_base" in e else None
        ws = e.get("merge_weights")
        for name, value in child.items():
            if value.dtype.kind != "f":
                continue
            xs = [p[name] for p in parents]
            method = e["merge_method"]
            if method == "average":
                expected = sum(w * x for w, x in zip(ws, xs)) / sum(ws)
            elif method == "slerp":
                expected = slerp(xs[0], xs[1], e["merge_t"]).reshape(value.shape)
            elif method == "task_arithmetic":
                expected = base[name] + e["merge_lambda"] * sum(w * (x - base[name]) for w, x in zip(ws, xs))
            elif method == "ties":
                expected = ties(base[name], xs, ws, e["merge_density"], e["merge_lambda"]).reshape(value.shape)
            else:  # dare: every element is one of the drop patterns of the parents' task vectors
                assert method == "dare"
                taus = [w * (x - base[name]) / e["merge_density"] for w, x in zip(ws, xs)]
                options = np.stack([base[name] + e["merge_lambda"] * sum(k * t for k, t in zip(mask, taus))
                                    for mask in product((0, 1), repeat=len(taus))])
                nearest = np.take_along_axis(options, np.abs(options - value).argmin(0)[None], 0)[0]
                assert _close_in(dtype, value, _cast(nearest, dtype), ulps=4), (m.id, name)
                continue
            assert _close_in(dtype, value, _cast(expected, dtype), ulps=4), (m.id, name, method)


def sweeps_of(zoo) -> dict[str, list]:
    sweeps: dict[str, list] = {}
    for m in _of(zoo, "fan"):
        sweeps.setdefault(m.extra["sweep"], []).append(m)
    return sweeps


def test_snakes_and_fans(family_zoo):
    by_id = family_zoo.by_id()
    runs: dict[str, list] = {}
    for m in _of(family_zoo, "snake"):
        runs.setdefault(m.extra["run"], []).append(m)
    assert runs and sweeps_of(family_zoo)
    for run in runs.values():
        run.sort(key=lambda m: m.extra["checkpoint_index"])  # the manifest lists models in a random order
        assert [m.extra["checkpoint_index"] for m in run] == list(range(len(run)))
        steps = [m.extra["step"] for m in run]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)
        assert all(b.parents == [a.id] for a, b in zip(run, run[1:]))
        assert by_id[run[0].parents[0]].pattern != "snake"
    for members in sweeps_of(family_zoo).values():
        assert len({tuple(m.parents) for m in members}) == 1 and len({m.extra["task"] for m in members}) == 1
        assert len({m.extra["recipe"]["lr"] for m in members}) == len(members)


def test_upload_times_follow_the_time_model(family_zoo):
    time_model = json.loads((family_zoo.root / "time-model.json").read_text())
    entries = json.loads((family_zoo.root / "manifest.json").read_text())["models"]
    by_id = family_zoo.by_id()
    unknown = [m for m in family_zoo.models if m.created_at is None]
    if time_model["unknown"] == 0:
        assert not unknown
    if time_model["unknown"] == 1:
        assert len(unknown) == len(family_zoo.models)
    for e in entries:  # unknown times written as the time model says: null, or absent
        if by_id[e["id"]].created_at is None:
            assert ("created_at" not in e) == time_model["omit_unknown"]
    for m in family_zoo.models:
        known = [by_id[p].created_at for p in m.parents if by_id[p].created_at is not None]
        if m.created_at is None or not known:
            continue
        if m.extra.get("upload_noise") == "child_first":
            assert m.created_at < min(known), m.id
        else:
            assert m.created_at >= max(known) + timedelta(seconds=59), m.id


def test_seeds_draw_different_settings(family_zoo, tmp_path_factory):
    from modelatlas.zoo.recipes import build_cached

    other = build_cached(family_zoo.name, _cache(tmp_path_factory), seed=1, size="tiny")

    def settings_of(zoo):
        return [(m.architecture, m.pattern, json.dumps(m.extra.get("recipe"), sort_keys=True)) for m in zoo.models]

    assert settings_of(family_zoo) != settings_of(other)
    assert {json.dumps(m.extra.get("recipe"), sort_keys=True) for m in family_zoo.models} != \
        {json.dumps(m.extra.get("recipe"), sort_keys=True) for m in other.models}


# ------------------------------------------------------------------ pieces, without building a zoo
@st.composite
def _uploads(draw):
    from modelatlas.zoo.upload_times import Upload

    n = draw(st.integers(1, 25))
    ups = []
    for i in range(n):
        parents = tuple(sorted({f"m{p}" for p in draw(st.lists(st.integers(0, i - 1), max_size=2))})) if i else ()
        sweep = draw(st.sampled_from([None, "s0", "s1"])) if parents else None
        ups.append(Upload(f"m{i}", parents, sweep, draw(st.floats(1e-5, 1.0)) if sweep else 0.0,
                          draw(st.sampled_from([None, "r0"])) if parents and not sweep else None))
    return ups


@settings(max_examples=60, deadline=None)
@given(_uploads(), st.sampled_from(["build-order", "delays"]), st.sampled_from(["burst", "ladder", "together"]),
       st.floats(0, 0.5), st.floats(0, 1), st.integers(0, 2**16))
def test_upload_times_respect_lineage_unless_flipped(uploads, style, fans, child_first, unknown, seed):
    from modelatlas.zoo.upload_times import TimeModel, assign_times

    model = TimeModel(style=style, fans=fans, child_first=child_first, unknown=unknown)
    times, flipped = assign_times(uploads, model, np.random.default_rng(seed))
    assert set(times) == {u.id for u in uploads}
    for u in uploads:
        known = [times[p] for p in u.parents if times[p] is not None]
        if times[u.id] is None or not known:
            continue
        if u.id in flipped:
            assert times[u.id] < min(known)
        else:
            assert times[u.id] >= max(known) + timedelta(seconds=59)
    if unknown == 0:
        assert all(t is not None for t in times.values())


def test_ladder_fans_are_uploaded_in_increasing_learning_rate():
    from modelatlas.zoo.upload_times import TimeModel, Upload, assign_times

    lrs = [3e-3, 1e-4, 1e-2, 3e-4]
    uploads = [Upload("root", ())] + [Upload(f"f{i}", ("root",), "sweep", lr) for i, lr in enumerate(lrs)]
    times, _ = assign_times(uploads, TimeModel(fans="ladder"), np.random.default_rng(0))
    by_lr = [times[f"f{i}"] for i in np.argsort(lrs)]
    assert by_lr == sorted(by_lr) and by_lr[-1] - by_lr[0] >= timedelta(days=1)
    burst, _ = assign_times(uploads, TimeModel(fans="burst"), np.random.default_rng(0))
    spread = max(burst[f"f{i}"] for i in range(4)) - min(burst[f"f{i}"] for i in range(4))
    assert timedelta(0) < spread <= timedelta(minutes=80)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.floats(0.1, 1.0), st.floats(0.2, 2.0), st.integers(0, 999))
def test_dare_and_task_arithmetic(rows, cols, density, lam, seed):
    from modelatlas.zoo.merge import dare, task_arithmetic

    rng = np.random.default_rng(seed)
    base = {"w": rng.normal(size=(rows, cols)).astype(np.float32)}
    states = [{"w": (base["w"] + rng.normal(size=(rows, cols))).astype(np.float32)} for _ in range(2)]
    ta = task_arithmetic(base, states, [0.3, 0.7], lam)["w"].astype(np.float64)
    tau = sum(w * (s["w"].astype(np.float64) - base["w"]) for w, s in zip([0.3, 0.7], states))
    np.testing.assert_allclose(ta, base["w"] + lam * tau, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dare(base, states, [0.3, 0.7], 1.0, seed, lam)["w"], ta, rtol=1e-6, atol=1e-6)
    dropped = dare(base, states, [0.3, 0.7], density, seed, lam)["w"].astype(np.float64) - base["w"]
    taus = [w * (s["w"].astype(np.float64) - base["w"]) / density for w, s in zip([0.3, 0.7], states)]
    options = np.stack([lam * (i * taus[0] + j * taus[1]) for i, j in product((0, 1), repeat=2)])
    assert np.all(np.min(np.abs(options - dropped), 0) <= 1e-4 * (1 + np.abs(dropped)))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["constant", "cosine", "warmup-cosine", "warmup-constant", "step"]),
       st.integers(4, 500), st.floats(0.0, 0.5))
def test_schedules_stay_within_the_base_rate(schedule, steps, warmup):
    from modelatlas.zoo.optimise import Recipe, lr_factor

    r = Recipe("adamw", 1e-3, steps, schedule=schedule, warmup=warmup)
    factors = [lr_factor(r, s) for s in range(1, steps + 1)]
    assert all(0.0 <= f <= 1.0 for f in factors)
    if schedule.endswith("cosine"):
        assert factors[-1] <= 1e-9 + factors[0] and factors[-1] < 0.05
    if schedule == "constant":
        assert set(factors) == {1.0}


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["fp32", "fp16", "bf16"]), st.integers(1, 5), st.integers(1, 5), st.integers(0, 999))
def test_storage_rounds_floats_only(dtype, rows, cols, seed):
    from modelatlas.zoo.lineage import decode, store

    rng = np.random.default_rng(seed)
    state = {"w": rng.normal(size=(rows, cols)).astype(np.float32), "steps": np.array(7, np.int64)}
    stored = store(state, dtype)
    assert stored["w"].dtype == STORED[dtype] and stored["steps"].dtype == np.int64
    back = decode(stored)
    assert back["w"].dtype == np.float32 and back["steps"] == 7
    np.testing.assert_array_equal(back["w"], state["w"].astype(STORED[dtype]).astype(np.float32))
    assert _close_in(dtype, back["w"].astype(np.float64), state["w"].astype(np.float64), ulps=1.0)


def test_a_diverged_run_is_retrained_at_half_the_rate(tmp_path):
    from modelatlas.zoo.lineage import DIVERGED, LineageWriter
    from modelatlas.zoo.optimise import Recipe

    w = LineageWriter(tmp_path, "t")
    w.states["p"] = {"w": np.ones(4, np.float32)}
    rates = []

    def attempt(recipe):  # blows up above lr 0.1, as a too-high rate does
        rates.append(recipe.lr)
        state = {"w": np.full(4, np.inf if recipe.lr > 0.2 else 1 + 10 * recipe.lr, np.float32)}
        if 0.1 < recipe.lr <= 0.2:
            state["w"][:] = 2 + DIVERGED
        return state, recipe.lr

    recipe, result, halvings = w._stable("p", Recipe("sgd", 0.8, 10), attempt)
    assert rates == [0.8, 0.4, 0.2, 0.1] and recipe.lr == result == 0.1 and halvings == 3
    with pytest.raises(RuntimeError, match="diverged"):
        w._stable("p", Recipe("sgd", 1e6, 10), attempt)
