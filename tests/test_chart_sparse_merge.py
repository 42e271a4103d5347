"""Known-answer cases for sparsified merges (TIES, DARE; docs/chart.md, rule 7)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from modelatlas.chart import ChartInput, LayerBlock, get_method
from modelatlas.chart.sparse_merge import (
    ALPHA,
    cell_ids,
    dropped_to_base,
    half_ulp,
    ratio_spike,
    sparse_merge,
)
from modelatlas.zoo.merge import dare, ties

HOUR = 3600.0
SHAPES = [(32, 24), (24, 32), (16, 24)]
BITS = {"float32": 24, "float16": 11, "bfloat16": 8}
DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def _layers() -> list[LayerBlock]:
    out, offset = [], 0
    for k, (r, c) in enumerate(SHAPES):
        out.append(LayerBlock(f"l{k}", offset, r, c))
        offset += r * c
    return out


def _flat(state: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([state[f"l{k}"].ravel() for k in range(len(SHAPES))])


def _family(storage: str, seed: int = 0):
    """A base, four fine-tunes of it (dense updates), a fine-tune of the first, and a child of the
    first that retrains only its last layer (the others bit-identical: frozen)."""
    rng = np.random.default_rng(seed)
    dtype = DTYPES[storage]

    def store(state):  # decoded as the zoos hold them: float32 values of the storage dtype
        return {k: v.astype(dtype).astype(np.float32) for k, v in state.items()}

    base = store({f"l{k}": rng.standard_t(5, s) * 0.3 for k, s in enumerate(SHAPES)})

    def tune(parent, scale):
        return store({k: v.astype(np.float64) + rng.normal(0, scale, v.shape) for k, v in parent.items()})

    tunes = [tune(base, 0.08) for _ in range(4)]
    child = tune(tunes[0], 0.03)
    frozen = dict(tunes[0])
    frozen["l2"] = store({"l2": tunes[0]["l2"] + rng.normal(0, 0.08, SHAPES[2])})["l2"]
    return base, tunes, child, frozen


def _merged(method: str, base, parents, storage: str):
    if method == "ties":
        out = ties(base, parents, [0.7, 0.5], density=0.4, lam=1.1)
    else:
        out = dare(base, parents, [0.6, 0.8], density=0.5, seed=3, lam=0.9)
    return {k: v.astype(DTYPES[storage]).astype(np.float32) for k, v in out.items()}


@pytest.mark.parametrize("storage", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("method", ["ties", "dare"])
def test_sparse_merge_names_its_parents_and_not_fine_tunes(method, storage):
    """TIES (Yadav et al., NeurIPS 2023) and DARE (Yu et al., ICML 2024) merges of tunes 1 and 2
    over the base: the two parents, among every candidate; a fine-tune of tune 1 and a child of
    tune 1 with frozen layers are no merges."""
    base, tunes, child, frozen = _family(storage)
    x = _merged(method, base, [tunes[1], tunes[2]], storage)
    candidates = np.stack([_flat(t) for t in (*tunes, child, frozen)])
    hit = sparse_merge(_flat(x), _flat(base), candidates, _layers(), bits=BITS[storage])
    assert hit is not None and set(hit.parents) == {1, 2}
    expected = 1.1 if method == "ties" else None  # TIES: every spike at λ (Sec. 3, disjoint mean)
    if expected is not None:
        assert np.allclose(hit.scales, expected, rtol=2.0 ** -5)
    for model, others in ((child, [*tunes, frozen]), (frozen, [*tunes, child])):
        assert sparse_merge(_flat(model), _flat(base), np.stack([_flat(t) for t in others]), _layers(),
                            bits=BITS[storage]) is None


def test_a_plain_average_is_no_sparsified_merge():
    """Averaging drops no entry: no coordinate of the merge sits exactly on the base."""
    base, tunes, _, _ = _family("float32", seed=1)
    x = {k: ((tunes[1][k].astype(np.float64) + tunes[2][k]) / 2).astype(np.float32) for k in base}
    assert sparse_merge(_flat(x), _flat(base), np.stack([_flat(t) for t in tunes]), _layers(), bits=24) is None


@pytest.mark.parametrize("method", ["ties", "dare"])
def test_auto_charts_an_undocumented_sparsified_merge(method):
    """End to end: ``auto`` names the merge's two parents (not the base), relation ``merge``, and
    charts the fine-tune and the frozen-layer child under their parent."""
    base, tunes, child, frozen = _family("float32", seed=2)
    x = _merged(method, base, [tunes[1], tunes[2]], "float32")
    vectors = np.stack([_flat(m) for m in (base, *tunes, x, child, frozen)])
    models = ChartInput(ids=[f"m{i}" for i in range(len(vectors))], vectors=vectors, layers=_layers(),
                        created_at=np.arange(len(vectors)) * HOUR)
    result = get_method("auto").chart(models)
    ps = result.parent_sets()
    assert ps[5] == {2, 3}
    assert dict(zip(result.child.tolist(), result.relation.tolist()))[5] == "merge"
    assert ps[6] == {1} and ps[7] == {1}
    without = get_method("auto", rules=tuple(r for r in get_method("auto").RULES if r != "merges")).chart(models)
    assert len(without.parent_sets()[5]) == 1  # the rule, not another one, finds it


@pytest.mark.parametrize("storage", ["float32", "float16"])
def test_each_signature_separates_a_merge_from_a_fine_tune(storage):
    """The two signatures on their own: a DARE parent's ratios spike at ``λ w / p`` and the merge
    sits on the base where both entries were dropped; a fine-tune of the same parent shows neither
    (its ratios against the parent's task vector spread, it never lands back on the base)."""
    base, tunes, child, _ = _family(storage, seed=4)
    x = _merged("dare", base, [tunes[1], tunes[2]], storage)
    b, bits = _flat(base).astype(np.float64), BITS[storage]
    row, col = cell_ids(_layers(), len(b))
    width = min(2.0 ** (5 - bits), 2.0 ** -6)
    for model, parent, spikes in ((x, tunes[1], True), (child, tunes[0], False)):
        m = _flat(model).astype(np.float64)
        tau = _flat(parent).astype(np.float64) - b
        h = half_ulp(m, bits)
        log_p, scale, _ = ratio_spike(m - b, tau, h, row >= 0, width, row, col)
        assert (log_p < np.log(ALPHA)) == spikes
        if spikes:
            assert scale == pytest.approx(0.9 * 0.6 / 0.5, rel=2 * width)
        assert (dropped_to_base(m, b, [tau], h, row >= 0) < np.log(ALPHA)) == spikes
