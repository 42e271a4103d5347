"""The two signals ``auto`` decides kinship and adapters with: neuron alignment and low-rank
differences under the storage dtype's noise floor (docs/chart.md, "What generalises")."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.chart.alignment import alignment_testable, alignment_z, unit_rows
from modelatlas.chart.low_rank import adapter_evidence, significant_bits
from modelatlas.chart.types import LayerBlock

LAYERS = [LayerBlock("a", 0, 32, 48), LayerBlock("b", 32 * 48, 32, 32), LayerBlock("head", 32 * 48 + 32 * 32, 10, 32)]
DIM = sum(b.size for b in LAYERS)


def _z(x, candidates, layers=LAYERS):
    return alignment_z(unit_rows(x, layers)[0], unit_rows(np.atleast_2d(candidates), layers), layers)


def _model(rng) -> np.ndarray:
    return rng.normal(0, 0.1, DIM)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_unrelated_models_are_not_aligned_however_close(seed):
    rng = np.random.default_rng(seed)
    a, b = _model(rng), _model(rng)
    near = a * 0.0 + b  # unrelated, whatever the distance
    assert _z(a, near[None])[0] < 6.0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.05, 1.5))
def test_relatives_are_aligned_however_far_training_moved(seed, moved):
    rng = np.random.default_rng(seed)
    parent = _model(rng)
    step = rng.normal(0, 0.1, DIM)
    child = parent + moved * step  # relative distance up to 1.5
    assert _z(child, parent[None])[0] > 6.0


def test_alignment_ignores_scale_and_detects_row_permutation():
    rng = np.random.default_rng(0)
    parent = _model(rng)
    shuffled = parent.copy()
    for b in LAYERS:  # the same rows in another order: same weights, no row correspondence
        m = shuffled[b.offset:b.offset + b.size].reshape(b.rows, b.cols)
        m[:] = m[rng.permutation(b.rows)]
    z = _z(parent, np.stack([3.0 * parent, shuffled]))
    assert z[0] > 50 and z[1] < 6.0


def test_untestable_layouts_are_reported():
    assert not alignment_testable([LayerBlock("all", 0, 1, 100)])
    assert np.isnan(_z(np.ones(100), np.ones((1, 100)), [LayerBlock("all", 0, 1, 100)])[0])


def test_significant_bits_reads_the_storage_format():
    rng = np.random.default_rng(1)
    v = rng.normal(size=500).astype(np.float32)
    assert significant_bits(v) == 24
    assert significant_bits(v.astype(ml_dtypes.bfloat16).astype(np.float32)) == 8
    assert significant_bits(v.astype(np.float16).astype(np.float32)) == 11


def _lora_child(rng, parent, rank, layers, scale=0.05):
    child = parent.copy()
    for b in layers:
        up = rng.normal(0, scale, (b.rows, rank))
        down = rng.normal(0, scale, (rank, b.cols))
        child[b.offset:b.offset + b.size] += (up @ down).ravel()
    return child


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8), st.sampled_from(["fp32", "bf16", "fp16"]))
def test_adapter_rank_survives_storage_rounding(seed, rank, dtype):
    rng = np.random.default_rng(seed)
    parent = _model(rng)
    child = _lora_child(rng, parent, rank, LAYERS[:2])
    cast = {"fp32": np.float32, "bf16": ml_dtypes.bfloat16, "fp16": np.float16}[dtype]
    child = child.astype(cast).astype(np.float32)
    parent = parent.astype(cast).astype(np.float32)
    (ev,) = adapter_evidence(child, parent[None], LAYERS)
    assert ev.is_adapter
    assert ev.ranks[0] <= rank and ev.ranks[1] <= rank and ev.ranks[2] == 0
    assert ev.identical[2] and not ev.identical[0]


def test_rank_is_judged_against_the_adapters_own_rank():
    """A rank-8 adapter on a 10-output head is 80% of that layer's rank, yet consistent with the
    adapter; a full-rank change of every layer is no adapter."""
    rng = np.random.default_rng(3)
    parent = _model(rng)
    child = _lora_child(rng, parent, 8, LAYERS)
    (ev,) = adapter_evidence(child, parent[None], LAYERS)
    assert ev.adapter_rank == 8 and ev.ranks[2] == 8 and ev.is_adapter and ev.n_full == 0
    full = parent + rng.normal(0, 0.01, DIM)
    (ev,) = adapter_evidence(full, parent[None], LAYERS)
    assert not ev.is_adapter


def test_a_grandparent_shows_the_sum_of_two_adapters():
    rng = np.random.default_rng(4)
    root = _model(rng)
    mid = _lora_child(rng, root, 4, LAYERS[:2])
    leaf = _lora_child(rng, mid, 4, LAYERS[:2])
    to_mid, to_root = adapter_evidence(leaf, np.stack([mid, root]), LAYERS)
    assert to_mid.total_rank < to_root.total_rank


def test_auto_decides_every_awkward_family_without_error():
    """Issue cases that are data, not errors: a bf16 child of an fp32 parent, frozen (bit-identical)
    layers, a child uploaded before its parent, a byte-identical copy of a root, unknown times,
    and a family of one model."""
    from modelatlas.chart.estimator import get_method
    from modelatlas.chart.types import ChartInput

    rng = np.random.default_rng(7)
    root = _model(rng)
    other_root = _model(rng)
    bf16_child = (root + rng.normal(0, 0.05, DIM)).astype(ml_dtypes.bfloat16).astype(np.float32)
    frozen = root.copy()
    frozen[:LAYERS[0].size] += rng.normal(0, 0.05, LAYERS[0].size)  # layers b and head untouched
    copy = root.copy()
    early_child = root + rng.normal(0, 0.05, DIM)
    v = np.stack([root, bf16_child, frozen, copy, early_child, other_root])
    times = np.array([10.0, 11.0, 12.0, 13.0, 5.0, np.nan])  # the last child predates its parent
    models = ChartInput(ids=[f"m{i}" for i in range(6)], vectors=v, layers=LAYERS, created_at=times,
                        content_hashes=["h0", "h1", "h2", "h0", "h4", "h5"])
    ps = get_method("auto").chart(models).parent_sets()
    assert ps[1] == {0} and ps[2] == {0} and ps[3] == {0}
    assert 5 not in ps  # unrelated to everyone: a root
    assert ps.get(4) == frozenset({0}) or ps.get(0) == frozenset({4})  # one edge between them, a direction chosen
    single = ChartInput(ids=["only"], vectors=root[None], layers=LAYERS)
    assert len(get_method("auto").chart(single).child) == 0


def test_a_copy_converted_to_a_coarser_dtype_is_a_duplicate_of_its_source():
    """An F16 (or bf16) copy of a model — even of a quantised one, whose dequantised values it
    holds — has no other parent than its source, though its bytes differ."""
    from modelatlas.chart.estimator import get_method
    from modelatlas.chart.types import ChartInput

    rng = np.random.default_rng(11)
    source = np.round(_model(rng) * 16) / 16 + rng.normal(0, 1e-4, DIM)  # values fp16 cannot hold
    other = _model(rng)
    for dtype in (np.float16, ml_dtypes.bfloat16):
        copy = source.astype(dtype).astype(np.float32)
        models = ChartInput(ids=["source", "other", "copy"], vectors=np.stack([source, other, copy]),
                            layers=LAYERS, created_at=np.array([1.0, 2.0, 3.0]), quantized=np.array([True, False, True]))
        result = get_method("auto").chart(models)
        assert result.parent_sets()[2] == {0}


def test_kurtosis_score_of_a_constant_layer_is_zero_and_silent():
    """MoTHer's per-layer kurtosis (Eq. 3) is summed over layers; a layer with no spread (all zero,
    or a variance whose square underflows) adds 0 instead of NaN or a warning."""
    import warnings

    from modelatlas.chart.distances import kurtosis_score
    from modelatlas.chart.types import ChartInput

    rng = np.random.default_rng(0)
    spread = rng.standard_t(5, 64)
    vectors = np.stack([np.concatenate([spread, np.zeros(64)]),
                        np.concatenate([spread, np.full(64, 1e-200)]),
                        np.concatenate([spread, spread])]).astype(np.float64)
    layers = [LayerBlock("a", 0, 8, 8), LayerBlock("b", 64, 8, 8)]
    models = ChartInput(ids=["x", "y", "z"], vectors=vectors.astype(np.float32), layers=layers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score = kurtosis_score(models)
    c = spread - spread.mean()
    k = float((c ** 4).mean() / (c ** 2).mean() ** 2)
    assert np.allclose(score, [k, k, 2 * k], rtol=1e-4)


_CAST = {"fp32": np.float32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16}
_BITS = {"bf16": 8, "fp16": 11, "fp32": 24}


def _stored(v, dtype):
    return np.asarray(v, np.float64).astype(_CAST[dtype]).astype(np.float32)


def _lora_pair(seed, parent_dtype, child_dtype, rank=4):
    """A parent stored in ``parent_dtype`` and a LoRA child made from its stored weights (upcast
    exactly, as anyone downloading it would), merged and stored in ``child_dtype``."""
    rng = np.random.default_rng(seed)
    parent = _stored(_model(rng), parent_dtype)
    child = _stored(_lora_child(rng, parent.astype(np.float64), rank, LAYERS[:2]), child_dtype)
    return parent, child


@pytest.mark.parametrize("parent_dtype, child_dtype", [("fp16", "fp32"), ("bf16", "fp32"), ("bf16", "fp16")])
def test_a_child_stored_finer_than_its_parent_is_proven_the_descendant(parent_dtype, child_dtype):
    """``C = P + B A`` stored finer than ``P``: the difference is an adapter even under ``C``'s own
    noise floor, so ``C`` was rounded last — from either end of the pair."""
    parent, child = _lora_pair(1, parent_dtype, child_dtype)
    (from_child,) = adapter_evidence(child, parent[None], LAYERS)
    (from_parent,) = adapter_evidence(parent, child[None], LAYERS)
    assert from_child.is_adapter and from_parent.is_adapter
    assert from_child.descendant == "model" and from_parent.descendant == "candidate"


@pytest.mark.parametrize("parent_dtype, child_dtype", [("fp32", "fp16"), ("fp32", "bf16"), ("fp16", "bf16")])
def test_a_child_stored_coarser_than_its_parent_is_an_adapter_of_undecided_direction(parent_dtype, child_dtype):
    """``C = round(P + B A)`` carries the coarse dtype's rounding on every adapted entry: an
    adapter under the coarse floor, full rank under the parent's; nothing proves a direction (a
    finer child of the coarse model's unrounded master would look the same)."""
    parent, child = _lora_pair(2, parent_dtype, child_dtype)
    for x, other in ((child, parent), (parent, child)):
        (ev,) = adapter_evidence(x, other[None], LAYERS)
        assert ev.is_adapter and ev.descendant is None


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_a_pair_stored_alike_has_no_direction(dtype):
    parent, child = _lora_pair(3, dtype, dtype)
    (ev,) = adapter_evidence(child, parent[None], LAYERS)
    assert ev.is_adapter and ev.descendant is None


def test_a_full_fine_tune_stored_finer_proves_nothing():
    """The direction is read off adapter-shaped differences only: a full-rank fine-tune of an fp16
    parent stored in fp32 is no adapter at either floor."""
    rng = np.random.default_rng(5)
    parent = _stored(_model(rng), "fp16")
    child = _stored(parent + rng.normal(0, 0.01, DIM), "fp32")
    (ev,) = adapter_evidence(child, parent[None], LAYERS)
    assert not ev.is_adapter and ev.descendant is None


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8), st.sampled_from(sorted(_CAST)), st.sampled_from(sorted(_CAST)),
       st.floats(0.01, 0.1))
def test_the_evidence_never_names_the_parent_as_the_descendant(seed, rank, parent_dtype, child_dtype, scale):
    """Whatever the two storage dtypes, rank and size of the update: the parent is never proven the
    descendant, and a child stored strictly finer always is once the adapter shows above the
    coarser dtype's rounding."""
    rng = np.random.default_rng(seed)
    parent = _stored(_model(rng), parent_dtype)
    child = _stored(_lora_child(rng, parent.astype(np.float64), rank, LAYERS[:2], scale=scale), child_dtype)
    assert significant_bits(parent) == _BITS[parent_dtype] and significant_bits(child) == _BITS[child_dtype]
    (from_child,) = adapter_evidence(child, parent[None], LAYERS)
    (from_parent,) = adapter_evidence(parent, child[None], LAYERS)
    assert from_child.descendant != "candidate" and from_parent.descendant != "model"
    if _BITS[child_dtype] > _BITS[parent_dtype] and from_child.is_adapter:
        assert from_child.descendant == "model" and from_parent.descendant == "candidate"


def test_auto_never_charts_a_parent_as_the_adapter_of_its_finer_child_uploaded_first():
    """An fp16 fine-tune ``p`` of a root, and ``c``, a LoRA of ``p`` stored in fp32 and uploaded
    before it: in upload order ``p`` is decided after ``c``, and its difference from ``c`` is
    low-rank — kinship, not direction. The precision proves ``c`` the descendant, so ``p`` takes
    the root, and the joint pass (the upload order a soft prior) gives ``c`` its parent ``p``."""
    from modelatlas.chart.estimator import get_method
    from modelatlas.chart.types import ChartInput

    rng = np.random.default_rng(9)
    root = _stored(_model(rng), "fp16")
    p = _stored(root + rng.normal(0, 0.02, DIM), "fp16")
    c = _stored(_lora_child(rng, p.astype(np.float64), 2, LAYERS[:2], scale=0.02), "fp32")
    models = ChartInput(ids=["root", "c", "p"], vectors=np.stack([root, c, p]), layers=LAYERS,
                        created_at=np.array([1.0, 2.0, 3.0]))
    ps = get_method("auto").chart(models).parent_sets()
    assert ps[2] == {0} and ps[1] == {2}
    without = get_method("auto", rules=tuple(r for r in get_method("auto").RULES if r != "lora"))
    assert without.chart(models).parent_sets()[2] == {1}  # without the evidence, upload order decides
