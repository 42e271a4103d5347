"""What the galaxy overview needs beyond its point stream: family names, labels, hover lookups and
the edges of the rectangle in view (docs/web.md, "Galaxy").

* **Family names.** A family (weakly connected component) is named by its roots of largest
  sub-tree downloads (the two heaviest, then how many more); every root is listed with it,
  heaviest first. On the real atlas the family holding Llama-2 joins 26 roots through merges:
  "deepseek-ai/DeepSeek-R1, meta-llama/Llama-2-7b-chat-hf + 24 more roots".
* **Labels.** The largest families are labelled at the top of their drawing, and each theme's
  disc of single models (:func:`modelatlas.viz.layout.node_themes`) with its task and count.
* **Hover.** The model nearest a point of the layout, by a k-d tree built once
  (:class:`scipy.spatial.cKDTree`): O(log n) per hover.
* **Edges in view.** Once zoomed in, the page draws the edges whose child lies in the visible
  rectangle, as segments in layout coordinates (at most ``max_edges``, those into the heaviest
  sub-trees).

``add_galaxy_routes(app, view)`` registers the endpoints on the FastAPI application of
:mod:`modelatlas.viz.server`.
"""

# No "from __future__ import annotations": FastAPI must resolve the Annotated query types.
from functools import cached_property
from typing import Annotated

import numpy as np

from modelatlas.viz.data import AtlasView, ViewError
from modelatlas.viz.layout import family_themes, node_themes

MAX_LABELS = 500
MAX_EDGES = 200_000
DEFAULT_EDGES = 50_000
#: Roots listed per family (the count says how many there are).
ROOTS_LISTED = 50
#: Roots a family's name spells out (a merge of trees is named by its two heaviest, then a count).
NAMED_ROOTS = 2


class Galaxy:
    """Family names, labels, hover lookups and edge segments over one :class:`AtlasView`.

    Parameters
    ----------
    view:
        The arrays of the served atlas.
    """

    def __init__(self, view: AtlasView):
        self.view = view

    @cached_property
    def roots_by_family(self) -> tuple[np.ndarray, np.ndarray]:
        """Roots (layout sources) sorted by (family, sub-tree downloads descending), and where each
        family's run starts."""
        v = self.view
        roots = np.flatnonzero(v.parent < 0)
        stdl = v.numeric["sub_tree_downloads"]
        roots = roots[np.lexsort((roots, -stdl[roots], v.component[roots]))]
        starts = np.searchsorted(v.component[roots], np.arange(v.component_sizes.size + 1))
        return roots, starts

    def family(self, component: int) -> dict:
        """``{component, name, size, roots, root_count}`` of one family (roots heaviest first)."""
        v = self.view
        if not 0 <= component < v.component_sizes.size:
            raise ViewError(f"component {component} does not exist (the atlas has "
                            f"{v.component_sizes.size} components)", 404)
        roots, starts = self.roots_by_family
        mine = roots[starts[component]:starts[component + 1]]
        listed = [v.ids[i] for i in mine[:ROOTS_LISTED]]
        name = ", ".join(listed[:NAMED_ROOTS]) if listed else f"family {component}"
        if mine.size > NAMED_ROOTS:
            rest = mine.size - NAMED_ROOTS
            name += f" + {rest:,} more root{'s' if rest > 1 else ''}"
        return {"component": int(component), "name": name, "size": int(v.component_sizes[component]),
                "roots": listed, "root_count": int(mine.size)}

    @cached_property
    def themes(self) -> tuple[np.ndarray, list[str]]:
        """Theme code per family (its commonest task; ``-1`` unknown) and the code's labels."""
        theme, _, labels = node_themes(self.view.atlas)
        return family_themes(self.view.component, theme), labels

    def labels(self, limit: int) -> dict:
        """The ``limit`` largest families (name, size, the top centre of their drawing and their
        radius) and each theme's single models (task, count, centre, radius), in layout units."""
        v = self.view
        sizes = v.component_sizes
        families = np.flatnonzero(sizes > 1)[:limit]  # labels are sorted by size
        rows = []
        for c in families:
            xy = v.xy[v.members(c)]
            lo, hi = xy.min(0), xy.max(0)
            rows.append({**self.family(int(c)), "x": float((lo[0] + hi[0]) / 2), "y": float(hi[1]),
                         "radius": float(max(hi[0] - lo[0], hi[1] - lo[1]) / 2)})
        theme, names = self.themes
        single = np.flatnonzero(sizes == 1)
        groups = []
        if single.size:
            nodes = v.component_order[v.component_starts[single]]
            t = theme[single]
            for code in np.unique(t):
                members = nodes[t == code]
                xy = v.xy[members]
                lo, hi = xy.min(0), xy.max(0)
                groups.append({"task": names[code] if code >= 0 else "unknown", "count": int(members.size),
                               "x": float((lo[0] + hi[0]) / 2), "y": float((lo[1] + hi[1]) / 2),
                               "radius": float(max(hi[0] - lo[0], hi[1] - lo[1]) / 2)})
            groups.sort(key=lambda g: -g["count"])
        return {"families": rows, "singles": groups, "single_models": int(single.size),
                "families_total": int(sizes.size), "families_multi": int((sizes > 1).sum())}

    @cached_property
    def tree(self):
        from scipy.spatial import cKDTree

        return cKDTree(self.view.xy) if self.view.n else None

    def at(self, x: float, y: float, radius: float) -> dict | None:
        """The model nearest ``(x, y)`` within ``radius`` (layout units), with its family."""
        if self.tree is None:
            return None
        dist, i = self.tree.query([x, y], distance_upper_bound=radius)
        if not np.isfinite(dist):
            return None
        v = self.view
        i = int(i)
        return {"id": v.ids[i], "downloads": int(v.downloads[i]),
                "descendants": int(v.numeric["descendants"][i]),
                "family": self.family(int(v.component[i]))}

    def edges(self, bbox: tuple[float, float, float, float], max_edges: int) -> tuple[bytes, int, int]:
        """Edges whose child lies inside ``bbox``, as little-endian float32 rows (x0, y0, x1, y1,
        relation code in ``/api/meta``'s ``relation`` labels, predicted 0/1); beyond
        ``max_edges`` those into the heaviest sub-trees. Returns (bytes, shown, matching)."""
        from modelatlas.viz.server import _inside

        v = self.view
        g = v.graph
        inside = _inside(v.xy, bbox)
        k = np.flatnonzero(inside[g.child])
        total = int(k.size)
        if total > max_edges:
            heavy = np.argsort(-v.numeric["sub_tree_downloads"][g.child[k]], kind="stable")[:max_edges]
            k = np.sort(k[heavy])
        labels = v.categories("relation").labels
        code = {label: j for j, label in enumerate(labels)}
        rel = np.array([code.get(r, 0) for r in v.edge_relation[k]], dtype=np.float32) if k.size else np.zeros(0)
        out = np.empty((k.size, 6), dtype="<f4")
        out[:, 0:2] = v.xy[g.parent[k]]
        out[:, 2:4] = v.xy[g.child[k]]
        out[:, 4] = rel
        out[:, 5] = v.edge_predicted[k]
        return out.tobytes(), int(k.size), total

    def warm(self) -> None:
        """Build the cached arrays now (no request pays for them)."""
        for name in ("roots_by_family", "themes", "tree"):
            getattr(self, name)


def add_galaxy_routes(app, view: AtlasView) -> Galaxy:
    """Register ``/api/families/{c}``, ``/api/labels``, ``/api/at`` and ``/api/edges`` on ``app``.

    ``/api/families/{c}``
        The family's name and its roots (heaviest first, at most 50 listed, ``root_count`` all).
    ``/api/labels?limit=``
        The ``limit`` (≤ 500) largest families with their name and label position, and each
        theme's disc of single models with its task and count.
    ``/api/at?x=&y=&radius=``
        The model nearest a point of the layout (``null`` when none is within ``radius``).
    ``/api/edges?bbox=&max_edges=``
        Edges into the models inside ``bbox`` as 6 float32 per edge (x0, y0, x1, y1, relation
        code, predicted); headers ``X-Edge-Count`` and ``X-Total-Edges``.
    """
    from fastapi import Query
    from fastapi.responses import Response

    from modelatlas.viz.server import _bbox

    galaxy = Galaxy(view)
    galaxy.warm()
    kept: dict[int, dict] = {}

    @app.get("/api/families/{component}")
    def family(component: int):
        return galaxy.family(component)

    @app.get("/api/labels")
    def labels(limit: Annotated[int, Query(ge=1, le=MAX_LABELS)] = 60):
        if limit not in kept:  # the atlas is read-only: each answer is computed once
            if len(kept) >= 8:
                kept.clear()
            kept[limit] = galaxy.labels(limit)
        return kept[limit]

    @app.get("/api/at")
    def at(x: float, y: float, radius: Annotated[float, Query(gt=0)] = 1.0):
        if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(radius)):
            raise ViewError("x, y and radius must be finite numbers", 422)
        return {"model": galaxy.at(x, y, radius)}

    @app.get("/api/edges")
    def edges(bbox: Annotated[str, Query(max_length=200)],
              max_edges: Annotated[int, Query(ge=1, le=MAX_EDGES)] = DEFAULT_EDGES):
        body, count, total = galaxy.edges(_bbox(bbox), max_edges)
        return Response(body, media_type="application/octet-stream",
                        headers={"X-Edge-Count": str(count), "X-Total-Edges": str(total)})

    return galaxy
