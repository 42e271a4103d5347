"""The tree-aware layout: radial rings by depth, wedges that do not interleave, hub discs, packing
without overlap, and insertions that move nobody."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist
from web_atlas import hand_made_atlas

from modelatlas import Atlas
from modelatlas.atlas.graph import AtlasGraph
from modelatlas.viz.layout import (
    LAYOUT_TABLE,
    SINGLE_SPACING,
    RadialTreeLayout,
    compute_layout,
    ensure_layout,
    extend_layout,
    family_themes,
    layout_is_current,
    layout_parents,
    node_themes,
)


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
    # One theme: shelves are filled left to right, top to bottom, largest first, so every smaller
    # family lies right of the largest (same shelf) or below it (a later shelf).
    atlas = hand_made_atlas()
    xy, comp = RadialTreeLayout().fit(atlas.graph)
    sizes = np.bincount(comp)
    assert sizes[0] == sizes.max()
    first = xy[comp == 0]
    for c in np.flatnonzero(sizes > 1)[1:]:
        other = xy[comp == c]
        assert other[:, 0].min() >= first[:, 0].max() or other[:, 1].max() <= first[:, 1].min()


def _themed_forest(rng, n_themes=3, families=4, singles=300):
    """Families of 2..20 models and single models, each with a theme (its task code)."""
    parents, theme = [], []
    for t in range(n_themes):
        for _ in range(families):
            root = len(parents)
            parents.append(-1)
            theme.append(t)
            for _ in range(int(rng.integers(1, 20))):
                parents.append(int(rng.integers(root, len(parents))))
                theme.append(t if rng.random() < 0.8 else -1)
        parents += [-1] * singles
        theme += [t] * singles
    return _forest(parents), np.asarray(theme, dtype=np.int64)


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=1, max_value=4),
       st.integers(min_value=0, max_value=400))
def test_themes_make_regions_and_single_models_a_disc(seed, n_themes, singles):
    rng = np.random.default_rng(seed)
    g, theme = _themed_forest(rng, n_themes, 3, singles)
    xy, comp = RadialTreeLayout().fit(g, theme)
    sizes = np.bincount(comp)
    comp_theme = family_themes(comp, theme)
    boxes = []
    for t in range(n_themes):
        members = np.flatnonzero(comp_theme[comp] == t)
        boxes.append((xy[members].min(0), xy[members].max(0)))
        lone = members[sizes[comp[members]] == 1]
        assert lone.size == singles
        if lone.size:
            # Gathered in one disc of radius SINGLE_SPACING * sqrt(count), not a grid of cells.
            assert pdist(xy[lone]).max(initial=0) <= 2 * SINGLE_SPACING * np.sqrt(lone.size + 0.5) + 1e-9
            assert len({tuple(np.round(p, 9)) for p in xy[lone]}) == lone.size
    for a in range(n_themes):  # regions of different themes do not overlap
        for b in range(a + 1, n_themes):
            (lo_a, hi_a), (lo_b, hi_b) = boxes[a], boxes[b]
            assert not (np.all(lo_a < hi_b - 1e-9) and np.all(lo_b < hi_a - 1e-9))


def test_family_theme_is_the_commonest_task():
    comp = np.array([0, 0, 0, 1, 1, 2])
    theme = np.array([3, 1, 1, -1, -1, 2])
    assert family_themes(comp, theme).tolist() == [1, -1, 2]


def test_node_themes_follow_the_task_column():
    atlas = hand_made_atlas()
    theme, order, labels = node_themes(atlas)
    tasks = atlas.nodes["pipeline_tag"].to_pylist()
    for a in range(len(tasks)):
        for b in range(len(tasks)):
            if tasks[a] and tasks[b] and tasks[a] not in ("unknown",):
                assert (theme[a] == theme[b]) == (tasks[a] == tasks[b])
                assert labels[theme[a]] == tasks[a]
    assert sorted(order.tolist()) == list(range(len(tasks)))


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
