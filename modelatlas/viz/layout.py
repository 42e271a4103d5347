"""A tree-aware layout of the whole atlas: radial trees per family, families packed by size.

The Model Atlas paper (section 5, "Visualisation") asks for layouts that use the atlas's near-tree
and hub structure and that accept insertions. Force-directed layouts do not scale to the Hub
(ENGINEERING-NOTES "Drawing large graphs": ForceAtlas2 takes minutes at 100k nodes), while the atlas
is almost a forest: most models have one parent, and most leaves sit in *hubs* of siblings
(section 4.2). So:

1. **Spanning forest.** Each model keeps one *layout parent*: its parent nearest a source (the
   shortest-path depth of :func:`~modelatlas.atlas.depth.depth_from_sources`), so a merge is drawn
   under its shallowest base. Models no source reaches become roots.
2. **Radial tree per component** (Eades' radial drawing): depth is the ring, and each subtree gets
   an angular wedge proportional to its leaf weight. Computed level by level with numpy
   (``np.add.at`` upwards, grouped cumulative sums downwards), never node by node.
3. **Hubs as discs.** Leaves of a hub of at least ``hub_min_size`` siblings
   (:func:`~modelatlas.atlas.hubs.sibling_leaf_hubs`) are not spread over the ring: the hub weighs
   ``sqrt(size)`` leaves and its members fill a sunflower disc (Vogel's spiral) centred on their
   own ring, so a parent with 10,000 quantisations is a compact blob, not a ring of dust.
4. **Packing by theme.** Each family (component of two or more models) is scaled to a radius
   ``sqrt(size)`` (area ∝ models). Families are grouped by their *theme* (the commonest task,
   ``pipeline_tag``, of their members; :func:`family_themes`), so related families sit together;
   single models are not given a cell each (on the Hub about 72% of families are single models,
   which a grid of cells turns into a carpet) but gathered into one dense sunflower disc per theme,
   ordered by library then author. Each theme's cells are shelf-packed, largest first, into a
   region, and the regions are shelf-packed, largest first; row positions are cumulative sums, so
   packing 10^6 singletons stays vectorised (docs/web.md, "Galaxy").

:func:`extend_layout` places models added later next to their layout parent without moving anyone
else (the "online layout" of section 5).

References
----------
Horwitz et al., "Charting and Navigating Hugging Face's Model Atlas", 2025, sections 4.2 and 5.
P. Eades, "Drawing free trees", Bulletin of the Institute for Combinatorics and its Applications, 1992.
H. Vogel, "A better way to construct the sunflower head", Mathematical Biosciences 44, 1979.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.atlas.components import weakly_connected_components
from modelatlas.atlas.depth import depth_from_sources
from modelatlas.atlas.graph import AtlasGraph
from modelatlas.atlas.hubs import sibling_leaf_hubs

#: Name of the extras table that caches the layout in the atlas store.
LAYOUT_TABLE = "layout"
LAYOUT_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("x", pa.float64(), nullable=False),
    pa.field("y", pa.float64(), nullable=False),
    pa.field("component", pa.int64(), nullable=False),
])
_GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))


@dataclass(frozen=True)
class RadialTreeLayout:
    """Radial tree per weakly connected component, hubs as discs, components packed by size.

    Parameters
    ----------
    hub_min_size:
        Sibling-leaf hubs at least this large are drawn as sunflower discs.
    gap:
        Empty margin between packed components, in units of a singleton's radius.
    """

    hub_min_size: int = 24
    gap: float = 0.6

    def fit(self, graph: AtlasGraph, theme: np.ndarray | None = None,
            order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positions of every node.

        Parameters
        ----------
        graph:
            The atlas graph.
        theme:
            Optional int64 theme code per node (e.g. its task; ``-1`` unknown): families are
            grouped by their members' commonest theme and single models by their own
            (:func:`family_themes`). Without it every family has one theme.
        order:
            Optional int64 rank per node ordering single models inside their theme's disc
            (e.g. by library, then author), so that alike models sit in one band.

        Returns
        -------
        (xy, component): ``xy`` float64 of shape ``(n, 2)``; ``component`` the int64 labels of
        :func:`~modelatlas.atlas.components.weakly_connected_components` (0 is the largest).
        """
        n = graph.n
        if n == 0:
            return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
        component = weakly_connected_components(graph)
        parent = layout_parents(graph)
        depth = _tree_depth(parent)
        hub = sibling_leaf_hubs(graph, min_size=self.hub_min_size)
        # Hub members are placed as a disc around their hub's anchor; only the anchor (the first
        # member) takes part in the radial allocation, with weight sqrt(hub size).
        hub_size = np.bincount(hub[hub >= 0]) if (hub >= 0).any() else np.zeros(0, dtype=np.int64)
        in_hub = hub >= 0
        anchor = np.full(hub_size.size, n, dtype=np.int64)
        np.minimum.at(anchor, hub[in_hub], np.flatnonzero(in_hub))
        is_anchor = np.zeros(n, dtype=bool)
        is_anchor[anchor] = True
        active = ~in_hub | is_anchor
        leaf_w = np.ones(n)
        leaf_w[anchor] = np.sqrt(hub_size)

        children_count = np.bincount(parent[(parent >= 0) & active], minlength=n)
        weight = np.where(active & (children_count == 0), leaf_w, 0.0)
        max_depth = int(depth.max())
        for level in range(max_depth, 0, -1):
            nodes = np.flatnonzero((depth == level) & active)
            np.add.at(weight, parent[nodes], weight[nodes])

        # Roots share their component's circle by weight; a component with several roots gets a
        # virtual centre, so its roots sit on ring 1.
        roots = np.flatnonzero(parent < 0)
        start = np.zeros(n)
        span = np.zeros(n)
        comp_weight = np.bincount(component[roots], weights=weight[roots], minlength=component.max() + 1)
        start[roots] = _group_offsets(component[roots], weight[roots]) / comp_weight[component[roots]] * 2 * np.pi
        span[roots] = weight[roots] / comp_weight[component[roots]] * 2 * np.pi
        for level in range(1, max_depth + 1):
            nodes = np.flatnonzero((depth == level) & active)
            p = parent[nodes]
            frac_start = _group_offsets(p, weight[nodes]) / weight[p]
            start[nodes] = start[p] + span[p] * frac_start
            span[nodes] = span[p] * weight[nodes] / weight[p]
        root_count = np.bincount(component[roots], minlength=comp_weight.size)
        radius = depth + (root_count[component] > 1)
        angle = start + span / 2
        xy = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
        if in_hub.any():
            xy[in_hub] = self._hub_discs(hub[in_hub], anchor, hub_size, radius, angle, span)
        if theme is None:
            theme = np.full(n, -1, dtype=np.int64)
        if order is None:
            order = np.arange(n, dtype=np.int64)
        return _pack(xy, component, self.gap, family_themes(component, theme), theme, order), component

    @staticmethod
    def _hub_discs(labels, anchor, hub_size, radius, angle, span) -> np.ndarray:
        """Sunflower disc of each hub, centred on its members' ring in the middle of its wedge."""
        order = np.argsort(labels, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size) - _group_first(labels[order])
        a = anchor[labels]
        # Disc radius: the hub's wedge width at its ring, capped at half a ring.
        disc = np.minimum(0.5 * radius[a] * span[a], 0.45)
        centre_r = radius[a]
        cx, cy = centre_r * np.cos(angle[a]), centre_r * np.sin(angle[a])
        r = disc * np.sqrt((rank + 0.5) / hub_size[labels])
        theta = rank * _GOLDEN_ANGLE
        return np.column_stack([cx + r * np.cos(theta), cy + r * np.sin(theta)])


def layout_parents(graph: AtlasGraph) -> np.ndarray:
    """The one parent each node is drawn under: its shallowest parent (``-1`` for roots).

    Ties between parents of equal depth go to the lowest node index, so the result is
    deterministic. Nodes that no source reaches (left over from a cycle) become roots.
    """
    depth = depth_from_sources(graph)
    parent = np.full(graph.n, -1, dtype=np.int64)
    if graph.num_edges == 0:
        return parent
    order = np.lexsort((graph.parent, depth[graph.parent], graph.child))
    child = graph.child[order]
    first = np.ones(child.size, dtype=bool)
    first[1:] = child[1:] != child[:-1]
    parent[child[first]] = graph.parent[order][first]
    parent[depth < 0] = -1
    # A reachable node's chosen parent is one level up, so the forest has no cycle.
    return parent


def _tree_depth(parent: np.ndarray) -> np.ndarray:
    """Depth of each node in the forest given by ``parent`` (level-synchronous)."""
    n = parent.size
    depth = np.full(n, -1, dtype=np.int64)
    frontier = np.flatnonzero(parent < 0)
    has_parent = np.flatnonzero(parent >= 0)
    order = has_parent[np.argsort(parent[has_parent], kind="stable")]
    sorted_parent = parent[order]
    level = 0
    while frontier.size:
        depth[frontier] = level
        lo = np.searchsorted(sorted_parent, frontier, side="left")
        hi = np.searchsorted(sorted_parent, frontier, side="right")
        lengths = hi - lo
        if not lengths.sum():
            break
        idx = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        frontier = order[idx]
        level += 1
    return depth


def _group_first(sorted_keys: np.ndarray) -> np.ndarray:
    """For keys sorted into groups, the position where each element's group starts."""
    starts = np.ones(sorted_keys.size, dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return np.maximum.accumulate(np.where(starts, np.arange(sorted_keys.size), 0))


def _group_offsets(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Exclusive cumulative sum of ``values`` within each group of ``keys`` (in input order)."""
    order = np.argsort(keys, kind="stable")
    v = values[order]
    csum = np.cumsum(v) - v
    first = _group_first(keys[order])
    out = np.empty_like(csum)
    out[order] = csum - csum[first]
    return out


def family_themes(component: np.ndarray, theme: np.ndarray) -> np.ndarray:
    """Theme of each component: its members' commonest known theme code (``-1`` when none is
    known; ties go to the smaller code)."""
    k = int(component.max()) + 1 if component.size else 0
    out = np.full(k, -1, dtype=np.int64)
    known = theme >= 0
    if not known.any():
        return out
    width = int(theme.max()) + 1
    keys, counts = np.unique(component[known] * width + theme[known], return_counts=True)
    comp, code = keys // width, keys % width
    best = np.lexsort((code, -counts, comp))  # per component: most counted, then smallest code
    first = np.ones(best.size, dtype=bool)
    first[1:] = comp[best[1:]] != comp[best[:-1]]
    out[comp[best[first]]] = code[best[first]]
    return out


#: Distance scale of the single models' sunflower discs (a family of one model would get a cell of
#: side ``2 + gap``; in a disc it takes about ``pi * SINGLE_SPACING**2``).
SINGLE_SPACING = 0.5


def _shelves(w: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Shelf packing of rectangles ``w x h`` in the given order into a strip about as wide as the
    square of their total area; returns each one's top-left (x, y going down) and the total size."""
    width = max(float(np.sqrt((w * h).sum()) * 1.1), float(w.max()))
    left = np.cumsum(w) - w
    row = np.floor(left / width).astype(np.int64)
    row_start = np.searchsorted(row, np.arange(row[-1] + 1))
    row_height = np.maximum.reduceat(h, row_start)
    x0 = left - left[row_start][row]
    y0 = (np.cumsum(row_height) - row_height)[row]
    right = np.zeros(row_start.size)
    np.maximum.at(right, row, x0 + w)
    return x0, y0, float(right.max()), float(row_height.sum())


def _pack(xy: np.ndarray, component: np.ndarray, gap: float, comp_theme: np.ndarray,
          theme: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Scale each family to radius ``sqrt(size)``, gather single models into one disc per theme,
    shelf-pack each theme's cells (largest first) into a region, then the regions."""
    k = int(component.max()) + 1
    size = np.bincount(component, minlength=k).astype(np.float64)
    extent = np.zeros(k)
    np.maximum.at(extent, component, np.hypot(xy[:, 0], xy[:, 1]))
    target = np.sqrt(size)
    scale = np.where(extent > 0, target / np.where(extent > 0, extent, 1.0), 1.0)
    out = xy * scale[component][:, None]
    themes = np.unique(comp_theme)
    # Single models grouped by theme once (not one scan of every node per theme).
    lone = np.flatnonzero(size[component] == 1)
    lone = lone[np.argsort(comp_theme[component[lone]], kind="stable")]
    lone_start = np.searchsorted(comp_theme[component[lone]], themes)
    lone_stop = np.searchsorted(comp_theme[component[lone]], themes, side="right")
    region_w, region_h, parts = [], [], []
    for j, t in enumerate(themes):
        families = np.flatnonzero((comp_theme == t) & (size > 1))  # labels are sorted by size
        singles = lone[lone_start[j]:lone_stop[j]]  # nodes of this theme's single-model families
        disc = SINGLE_SPACING * np.sqrt(singles.size + 0.5) if singles.size else 0.0
        cell = 2 * target[families] + gap
        if singles.size:  # the disc is one more cell, in size order
            at = int(np.searchsorted(-cell, -(2 * disc + gap)))
            cell = np.insert(cell, at, 2 * disc + gap)
        if not cell.size:
            continue
        x0, y0, w, h = _shelves(cell, cell)
        centres = np.column_stack([x0 + cell / 2, y0 + cell / 2])
        disc_centre = None
        if singles.size:
            disc_centre = centres[at]
            centres = np.delete(centres, at, axis=0)
        region_w.append(w)
        region_h.append(h)
        parts.append((families, centres, singles, disc_centre))
    region_w, region_h = np.asarray(region_w), np.asarray(region_h)
    by_area = np.argsort(-(region_w * region_h), kind="stable")
    rx, ry, _, _ = _shelves(region_w[by_area] + gap, region_h[by_area] + gap)
    offset = np.empty((by_area.size, 2))
    offset[by_area] = np.column_stack([rx, ry])
    shift = np.zeros((k, 2))
    for (families, centres, nodes, disc_centre), (ox, oy) in zip(parts, offset):
        shift[families] = centres + (ox, oy)
        if nodes.size:
            # Vogel's sunflower: rank r at radius sqrt(r), golden-angle turns; ranks by `order`.
            rank = np.empty(nodes.size)
            rank[np.argsort(order[nodes], kind="stable")] = np.arange(nodes.size)
            r = SINGLE_SPACING * np.sqrt(rank + 0.5)
            theta = rank * _GOLDEN_ANGLE
            out[nodes] = 0.0
            shift[component[nodes]] = disc_centre + (ox, oy) + np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    out += shift[component]
    out[:, 1] *= -1  # shelves grow downwards; the largest region sits at the top
    return out


def node_themes(atlas) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per node: the theme code used to group families (the task, ``pipeline_tag``; ``-1``
    unknown) and the rank ordering single models within a theme (library, then author, then id).

    Returns
    -------
    (theme, order, labels): int64 arrays over ``atlas.nodes``, and the task of each theme code.
    """
    n = atlas.num_nodes
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), []
    task = pc.dictionary_encode(atlas.nodes["pipeline_tag"].combine_chunks())
    theme = pc.fill_null(task.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    labels = task.dictionary.to_pylist()
    theme[np.isin(theme, [i for i, v in enumerate(labels) if v in ("", "unknown")])] = -1
    # Arrow sorts the string columns itself (stable, in place of per-row Python strings).
    keys = pa.table({name: pc.fill_null(atlas.nodes[name], "") for name in ("library_name", "author")})
    order = pc.sort_indices(keys, sort_keys=[("library_name", "ascending"), ("author", "ascending")]).to_numpy()
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return theme, rank, labels


def layout_table(ids, xy: np.ndarray, component: np.ndarray) -> pa.Table:
    """The ``layout`` extras table (:data:`LAYOUT_SCHEMA`)."""
    return pa.Table.from_arrays(
        [pa.array(ids, pa.string()) if not isinstance(ids, (pa.Array, pa.ChunkedArray)) else ids,
         pa.array(xy[:, 0], pa.float64()), pa.array(xy[:, 1], pa.float64()),
         pa.array(component, pa.int64())], schema=LAYOUT_SCHEMA)


def compute_layout(atlas, method: RadialTreeLayout | None = None) -> pa.Table:
    """Lay out every node of ``atlas`` and return the :data:`LAYOUT_TABLE` table."""
    theme, order, _ = node_themes(atlas)
    xy, component = (method or RadialTreeLayout()).fit(atlas.graph, theme, order)
    return layout_table(atlas.nodes["id"], xy, component)


def extend_layout(atlas, previous: pa.Table, *, spacing: float = 0.35) -> pa.Table:
    """Keep ``previous`` positions and place nodes it lacks near their layout parent.

    New nodes are placed level by level (a new parent is placed before its new children): each
    sits at ``spacing`` from its parent, pointing away from the parent's own parent, siblings
    fanned by the golden angle. New nodes without a placed parent (new families) go on a fresh
    shelf below the existing drawing. Nobody already placed moves.

    Returns
    -------
    The layout table for every node of ``atlas`` (rows in ``atlas.nodes`` order); components of
    new nodes are inherited from their parent, new families get new labels.
    """
    ids = atlas.nodes["id"]
    n = atlas.num_nodes
    found = pc.index_in(ids, value_set=previous["id"])
    known = pc.is_valid(found).to_numpy(zero_copy_only=False)
    pos = pc.fill_null(found, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    xy = np.zeros((n, 2))
    comp = np.full(n, -1, dtype=np.int64)
    px, py = previous["x"].to_numpy(), previous["y"].to_numpy()
    pcomp = previous["component"].to_numpy()
    xy[known] = np.column_stack([px[pos[known]], py[pos[known]]])
    comp[known] = pcomp[pos[known]]
    parent = layout_parents(atlas.graph)
    placed = known.copy()
    while True:
        todo = np.flatnonzero(~placed & (parent >= 0))
        todo = todo[placed[parent[todo]]]
        if not todo.size:
            break
        p = parent[todo]
        gp = parent[p]
        # Direction: away from the grandparent, else away from the drawing's origin of the family.
        base = np.where((gp >= 0)[:, None], xy[p] - xy[np.maximum(gp, 0)], 0.0)
        base_angle = np.arctan2(base[:, 1], base[:, 0])
        rank = _group_offsets(p, np.ones(todo.size)) + np.bincount(parent[placed & (parent >= 0)],
                                                                   minlength=n)[p]
        theta = base_angle + rank * _GOLDEN_ANGLE
        xy[todo] = xy[p] + spacing * np.column_stack([np.cos(theta), np.sin(theta)])
        comp[todo] = comp[p]
        placed[todo] = True
    rest = np.flatnonzero(~placed)
    if rest.size:
        # New families: a small radial layout of their own, on a shelf under the old drawing.
        sub_parent = np.full(rest.size, -1, dtype=np.int64)
        local = np.full(n, -1, dtype=np.int64)
        local[rest] = np.arange(rest.size)
        has = parent[rest] >= 0
        sub_parent[has] = local[parent[rest][has]]
        sub = AtlasGraph(rest.size, sub_parent[has], np.flatnonzero(has))
        sub_xy, sub_comp = RadialTreeLayout().fit(sub)
        top = xy[known, 1].min() if known.any() else 0.0
        left = xy[known, 0].min() if known.any() else 0.0
        sub_xy[:, 0] += left - sub_xy[:, 0].min()
        sub_xy[:, 1] += top - 1.0 - sub_xy[:, 1].max()
        xy[rest] = sub_xy
        comp[rest] = sub_comp + (pcomp.max() + 1 if pcomp.size else 0)
    return layout_table(ids, xy, comp)


def layout_is_current(atlas) -> bool:
    """Whether the atlas caches a layout for exactly its current nodes."""
    table = atlas.extras.get(LAYOUT_TABLE)
    if table is None or table.num_rows != atlas.num_nodes:
        return False
    return table.num_rows == 0 or bool(pc.all(pc.equal(table["id"], atlas.nodes["id"])).as_py())


def ensure_layout(atlas) -> pa.Table:
    """The atlas's cached layout, extended to nodes added since, or a fresh one.

    Stores the result in ``atlas.extras[LAYOUT_TABLE]`` (call ``atlas.save`` to keep it).
    """
    cached = atlas.extras.get(LAYOUT_TABLE)
    if layout_is_current(atlas):
        return cached
    table = compute_layout(atlas) if cached is None or cached.num_rows == 0 else extend_layout(atlas, cached)
    atlas.extras[LAYOUT_TABLE] = table
    return table
