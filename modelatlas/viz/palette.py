"""The one colour scheme of every picture of an atlas: figures, the web page and graph exports.

Relations follow the Model Atlas paper's figures (Fig. 1, section 3): one colour per relation of a
model to its parent, light blue for unknown values, dark for sources (models without parents).
Categories other than relations take :data:`CATEGORY_COLORS` in order of frequency. The web page
receives :func:`as_dict` in ``/api/meta`` (docs/viz.md); the GEXF export takes :func:`relation_rgb`.
"""

from __future__ import annotations

#: Light blue for unknown values (the paper's convention).
UNKNOWN_COLOR = "#add8e6"
#: Grey for the pooled rare values of a category (:data:`modelatlas.viz.data.OTHER`).
OTHER_COLOR = "#a9a9a9"
#: Edges predicted by a charting method rather than documented.
PREDICTED_COLOR = "#8e44ad"
#: Colour of each relation of a model to its parent(s); ``source``: no parent; ``mixed``: parents
#: reached by different relations (used where a model gets one colour, as in the exports).
RELATION_COLORS: dict[str, str] = {
    "finetune": "#e6194b", "adapter": "#3cb44b", "quantized": "#4363d8", "merge": "#f58231",
    "unknown": UNKNOWN_COLOR, "source": "#222222", "mixed": "#8c564b",
}
#: Other categories, in order (the first value of a category is its most frequent after ``unknown``).
CATEGORY_COLORS: tuple[str, ...] = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3", "#808000", "#000075", "#a9a9a9")


def category_colors(feature: str, labels: list[str], other_label: str) -> list[str]:
    """One colour per category label, the same rule as the web page's ``categoryColors``.

    Parameters
    ----------
    feature:
        The category (``relation`` takes :data:`RELATION_COLORS`).
    labels:
        Its labels, most frequent first (``unknown`` takes index 0 where present).
    other_label:
        The label of pooled rare values (grey).

    Returns
    -------
    list of str
        ``#rrggbb`` per label.
    """
    out = []
    for k, label in enumerate(labels):
        if label == "unknown":
            out.append(UNKNOWN_COLOR)
        elif feature == "relation" and label in RELATION_COLORS:
            out.append(RELATION_COLORS[label])
        elif label == other_label:
            out.append(OTHER_COLOR)
        else:
            out.append(CATEGORY_COLORS[(k - 1) % len(CATEGORY_COLORS)])
    return out


def relation_rgb() -> dict[str, tuple[int, int, int]]:
    """:data:`RELATION_COLORS` as RGB triples (``root`` also names the source colour, as the
    exports call a model without parents)."""
    rgb = {name: tuple(int(hex_[i:i + 2], 16) for i in (1, 3, 5)) for name, hex_ in RELATION_COLORS.items()}
    return {**rgb, "root": rgb["source"]}


def as_dict() -> dict:
    """The palette for the web page (``/api/meta``'s ``palette``)."""
    return {"relations": dict(RELATION_COLORS), "unknown": UNKNOWN_COLOR, "other": OTHER_COLOR,
            "predicted": PREDICTED_COLOR, "categories": list(CATEGORY_COLORS)}
