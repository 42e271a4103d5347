"""Static figures of the atlas with matplotlib (the Model Atlas paper's Figures 1, 3 and 5 kinds).

``galaxy``
    Every model at its layout position (:mod:`modelatlas.viz.layout`), coloured by a categorical
    feature, sized by downloads or sub-tree downloads; edges are drawn only when the atlas is
    small enough for them to be read (at most ``max_edges``).
``component``
    One family (a component, or the component of a given model) with its edges coloured by
    relation and its nodes coloured by a feature, as in the paper's Llama and Stable Diffusion
    panels.

Unknown values are light blue in both, as in the paper.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelatlas.errors import InputError
from modelatlas.viz.data import OTHER, AtlasView, ViewError
from modelatlas.viz.palette import RELATION_COLORS, UNKNOWN_COLOR, category_colors

FIGURE_KINDS = ("galaxy", "component")


def draw_figure(view: AtlasView, kind: str, out: str | Path, *, color: str = "relation",
                size: str = "downloads", component: int | None = None, model: str | None = None,
                max_edges: int = 50_000, dpi: int = 200) -> Path:
    """Draw figure ``kind`` of ``view`` into ``out`` (``.png`` or ``.svg``).

    Parameters
    ----------
    kind:
        One of :data:`FIGURE_KINDS`.
    color, size:
        Node colour feature (:data:`~modelatlas.viz.data.CATEGORICAL`) and size feature
        (:data:`~modelatlas.viz.data.SIZES`).
    component, model:
        For ``component``: the component label, or a model whose component to draw (default 0).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg"):
        raise InputError("figure output must end in .png or .svg", path=str(out))
    if kind not in FIGURE_KINDS:
        raise InputError(f"unknown figure kind {kind!r}; choose one of {', '.join(FIGURE_KINDS)}")
    try:
        cats = view.categories(color)
        if size not in view.numeric:
            raise ViewError(f"cannot size by {size!r}; choose one of {', '.join(view.numeric)}")
        if kind == "component":
            if model is not None:
                component = int(view.component[view.index(model)])
            nodes = view.members(component or 0)
        else:
            nodes = np.arange(view.n)
    except ViewError as exc:
        raise InputError(str(exc)) from None
    colors = np.array(category_colors(color, cats.labels, OTHER))
    weight = np.log1p(view.numeric[size][nodes])
    sizes = 1.0 + 30.0 * weight / weight.max() if weight.size and weight.max() > 0 else np.full(nodes.size, 2.0)
    if kind == "galaxy":
        sizes = sizes / (1 + np.log10(max(nodes.size, 1)))

    fig, ax = plt.subplots(figsize=(10, 10))
    ax.set_aspect("equal")
    ax.axis("off")
    g = view.graph
    inside = np.zeros(view.n, dtype=bool)
    inside[nodes] = True
    e = np.flatnonzero(inside[g.parent] & inside[g.child])
    if 0 < e.size <= max_edges:
        segs = np.stack([view.xy[g.parent[e]], view.xy[g.child[e]]], axis=1)
        styles = ["dashed" if p else "solid" for p in view.edge_predicted[e]]
        ax.add_collection(LineCollection(segs, colors=[RELATION_COLORS.get(r, UNKNOWN_COLOR)
                                                       for r in view.edge_relation[e]],
                                         linewidths=0.4, alpha=0.6, linestyles=styles, zorder=1))
    ax.scatter(view.xy[nodes, 0], view.xy[nodes, 1], s=sizes, c=colors[cats.codes[nodes]],
               linewidths=0, zorder=2)
    present = np.unique(cats.codes[nodes])
    handles = [Line2D([], [], marker="o", linestyle="", color=colors[k], label=cats.labels[k]) for k in present]
    ax.legend(handles=handles, title=color, loc="upper right", fontsize=7, title_fontsize=8, frameon=False)
    title = f"{kind}: {nodes.size:,} models" if kind == "galaxy" else \
        f"component {int(view.component[nodes[0]])}: {nodes.size:,} models"
    ax.set_title(title, fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return out
