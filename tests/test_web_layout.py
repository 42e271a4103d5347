"""The tree-aware layout: radial rings by depth, wedges that do not interleave, hub discs, packing
without overlap, and insertions that move nobody."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas import Atlas
from modelatlas.atlas.graph import AtlasGraph
from modelatlas.viz.layout import (
    LAYOUT_TABLE,
    RadialTreeLayout,
    compute_layout,
    ensure_layout,
    extend_layout,
    layout_is_current,
    layout_parents,
)
from web_atlas import hand_made_atlas


def _forest(parents: list[int]) -> AtlasGraph:
    """Node i's parent is parents[i] (< i) or -1."""
    p = np.asarray(parents, dtype=np.int64)
    child = np.flatnonzero(p >= 0)
    return AtlasGraph(p.size, p[child], child)


forests = st.lists(st.integers(min_value=-1, max_value=10**6), min_size=1, max_size=60).map(
    lambda raw: [-1 if r < 0 or i == 0 else r % i for i, r in enumerate(raw)])


def test_rings_are_depths():
    # Root 0, children 1 and 2, grandchildren 3, 4 (under 1) and 5 (under 2).
    g = _forest([-1, 0, 0, 1, 1, 2])
    xy, comp = RadialTreeLayout(hub_min_size=100).fit(g)
    centre, ring = xy[0], np.hypot(*(xy[1] - xy[0]))
    radius = np.hypot(*(xy - centre).T) / ring
    np.testing.assert_allclose(radius, [0, 1, 1, 2, 2, 2], atol=1e-9)
    assert set(comp.tolist()) == {0}


@settings(max_examples=60, deadline=None)
@given(forests)
def test_wedges_do_not_interleave(parents):
    """Radial drawing property: going round a ring, children appear in their parents' order."""
    g = _forest(parents)
    xy, comp = RadialTreeLayout(hub_min_size=10**6).fit(g)
    assert np.isfinite(xy).all()
    p = np.asarray(parents)
    for c in np.unique(comp):
        members = np.flatnonzero(comp == c)
        roots = members[p[members] < 0]
        if roots.size != 1:
            continue
        centre = xy[roots[0]]
        ang = np.mod(np.arctan2(*(xy[members] - centre).T[::-1]), 2 * np.pi)
        angle = dict(zip(members.tolist(), ang.tolist()))
        depth = {int(roots[0]): 0}
        for m in members:  # parents precede children by construction
            if p[m] >= 0:
                depth[int(m)] = depth[int(p[m])] + 1
        for level in range(2, max(depth.values()) + 1):
            ring = sorted((angle[m], angle[int(p[m])]) for m in members if depth[int(m)] == level)
            parent_angles = [pa_ for _, pa_ in ring]
            assert parent_angles == sorted(parent_angles), "a subtree's wedge was split"


@settings(max_examples=40, deadline=None)
@given(forests)
def test_components_do_not_overlap(parents):
    g = _forest(parents)
    xy, comp = RadialTreeLayout().fit(g)
    k = comp.max() + 1
    lo = np.array([xy[comp == c].min(axis=0) for c in range(k)])
    hi = np.array([xy[comp == c].max(axis=0) for c in range(k)])
    for a in range(k):
        for b in range(a + 1, k):
            overlap = np.all(lo[a] < hi[b] - 1e-9) and np.all(lo[b] < hi[a] - 1e-9)
            assert not overlap, f"components {a} and {b} overlap"


def test_hub_is_a_disc_next_to_its_parent():
    # Root with one deep child and a hub of 200 sibling leaves.
    parents = [-1, 0, 1] + [0] * 200
    g = _forest(parents)
    xy, _ = RadialTreeLayout(hub_min_size=24).fit(g)
    centre, ring = xy[0], np.hypot(*(xy[1] - xy[0]))
    hub = xy[3:]
    dist = np.hypot(*(hub - centre).T) / ring
    # The hub fills a small disc on ring 1, not the whole ring 1 circle.
    assert 0.5 < dist.min() and dist.max() < 1.5
    spread = np.hypot(*(hub - hub.mean(axis=0)).T).max() / ring
    assert spread < 0.5
    assert len({tuple(np.round(v, 9)) for v in hub}) == 200  # no two members on one spot


def test_layout_parent_is_the_shallowest():
    # 0 -> 1 -> 2, and 3 merges 2 (depth 2) and 0 (depth 0): drawn under 0.
    g = AtlasGraph(4, np.array([0, 1, 2, 0]), np.array([1, 2, 3, 3]))
    assert layout_parents(g).tolist() == [-1, 0, 1, 0]


def test_largest_component_is_packed_first():
    atlas = hand_made_atlas()
    table = compute_layout(atlas)
    comp = table["component"].to_numpy()
    sizes = np.bincount(comp)
    assert sizes[0] == sizes.max()
    y = table["y"].to_numpy()
    assert y[comp == 0].max() >= y[comp == sizes.size - 1].max()


def _new_models(atlas: Atlas) -> Atlas:
    records = pa.table({"id": ["zed/vicuna-ft", "zed/vicuna-ft-q", "new/family-root", "new/family-kid"],
                        "downloads": [5, 1, 9, 2]})
    evidence = pa.table({"parent": ["lmsys/vicuna-7b", "zed/vicuna-ft", "new/family-root"],
                         "child": ["zed/vicuna-ft", "zed/vicuna-ft-q", "new/family-kid"],
                         "relation": ["finetune", "quantized", "finetune"], "relation_rule": ["typed_tag"] * 3,
                         "provenance": ["hub_tag"] * 3, "confidence": [1.0] * 3, "source": ["later"] * 3})
    return atlas.merged_with(records, evidence)


def test_insertions_keep_old_positions_and_sit_by_their_parent(tmp_path):
    atlas = hand_made_atlas()
    ensure_layout(atlas)
    path = atlas.save(tmp_path / "a.duckdb")
    before = Atlas.load(path)
    assert layout_is_current(before)
    old = before.extras[LAYOUT_TABLE].to_pydict()
    old_xy = {i: (x, y) for i, x, y in zip(old["id"], old["x"], old["y"])}

    grown = _new_models(before)
    assert not layout_is_current(grown)
    table = ensure_layout(grown)
    assert layout_is_current(grown)
    new = {i: (x, y, c) for i, x, y, c in zip(*table.to_pydict().values())}
    for mid, (x, y) in old_xy.items():
        assert new[mid][:2] == (x, y), f"{mid} moved"
    px, py, pc_ = new["lmsys/vicuna-7b"]
    x, y, c = new["zed/vicuna-ft"]
    assert np.hypot(x - px, y - py) == pytest.approx(0.35)
    assert c == pc_
    gx, gy, _ = new["zed/vicuna-ft-q"]
    assert np.hypot(gx - x, gy - y) == pytest.approx(0.35)
    # The new family is drawn apart: below everything that was there, with a new label.
    old_y_min = min(y for _, y in old_xy.values())
    for mid in ("new/family-root", "new/family-kid"):
        assert new[mid][1] < old_y_min
        assert new[mid][2] > max(old["component"])
    assert new["new/family-root"][2] == new["new/family-kid"][2]


def test_extend_is_identity_when_nothing_is_new():
    atlas = hand_made_atlas()
    table = compute_layout(atlas)
    again = extend_layout(atlas, table)
    assert again.equals(table)


def test_empty_atlas_layout():
    atlas = Atlas.empty()
    assert compute_layout(atlas).num_rows == 0


def test_large_forest_lays_out():
    """100,000 models in one vectorised pass (the level loop runs once per depth, not per node)."""
    rng = np.random.default_rng(1)
    n = 100_000
    idx = np.arange(n)
    parent = np.where((rng.random(n) < 0.8) & (idx > 0), (rng.random(n) * idx).astype(np.int64), -1)
    xy, comp = RadialTreeLayout().fit(_forest(parent.tolist()))
    assert np.isfinite(xy).all() and comp.size == n
