"""Figures of the kinds in the Model Atlas paper (Fig. 5, 6, 9): relation mix by modality, depth
histograms, trends over time, documentation levels. Matplotlib, PNG, headless."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelatlas.analytics.depth_distribution import depth_histogram
from modelatlas.atlas.derived import AtlasFacts
from modelatlas.analytics.statistics import AtlasStatistics
from modelatlas.atlas.schema import RELATIONS

#: Modalities drawn (in this order) when present.
MODALITY_ORDER = ("language", "vision", "vision-language", "audio", "tabular", "reinforcement-learning", "other",
                  "unknown")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _modalities(rows: list[dict]) -> list[dict]:
    by = {r["group"]: r for r in rows}
    return [by[m] for m in MODALITY_ORDER if m in by] + [r for r in rows if r["group"] not in MODALITY_ORDER]


def relation_mix_figure(stats: AtlasStatistics, out: Path) -> Path | None:
    rows = _modalities(stats.tables["relation_mix"].select("modality"))
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    left = np.zeros(len(rows))
    for rel in RELATIONS:
        vals = np.array([r[rel] for r in rows])
        ax.barh([f"{r['group']} ({r['edges']:,})" for r in rows], vals, left=left, label=rel)
        left += vals
    ax.set_xlabel("share of edges")
    ax.set_title("Relation mix by modality")
    ax.legend(loc="lower right", fontsize=7)
    ax.invert_yaxis()
    return _save(fig, plt, out / "relation_mix_by_modality.png")


def depth_figure(facts: AtlasFacts, out: Path) -> Path | None:
    hist = depth_histogram(facts, "modality")
    names = [m for m in MODALITY_ORDER if m in hist] + [m for m in hist if m not in MODALITY_ORDER]
    if not names:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        counts = hist[name][1:]
        shares = counts / max(counts.sum(), 1)
        shown = np.r_[shares[:5], shares[5:].sum()] if shares.size > 5 else shares
        ax.bar(np.arange(1, shown.size + 1) + j * width, shown, width, label=f"{name} ({counts.sum():,})")
    ax.set_xticks(np.arange(1, 7) + 0.4 - width / 2, ["1", "2", "3", "4", "5", "6+"])
    ax.set_xlabel("depth below the source")
    ax.set_ylabel("share of models")
    ax.set_title("Depth distribution by modality (paper Fig. 9)")
    ax.legend(fontsize=7)
    return _save(fig, plt, out / "depth_by_modality.png")


def trends_figure(stats: AtlasStatistics, out: Path) -> Path | None:
    rows = stats.tables["relation_mix"].select("month")
    if len(rows) < 2:
        return None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    months = [r["group"] for r in rows]
    a1.bar(months, [r["edges"] for r in rows], color="grey")
    a1.set_ylabel("new edges")
    a1.set_title("Trends by creation month of the child")
    a2.stackplot(months, *[[r[rel] for r in rows] for rel in RELATIONS], labels=RELATIONS)
    a2.set_ylabel("share of edges")
    a2.legend(fontsize=7, loc="upper left")
    step = max(1, len(months) // 12)
    a2.set_xticks(range(0, len(months), step), months[::step], rotation=45, ha="right", fontsize=7)
    return _save(fig, plt, out / "trends_by_month.png")


def documentation_figure(stats: AtlasStatistics, out: Path) -> Path | None:
    rows = _modalities(stats.tables["documentation"].select("modality"))
    if not rows:
        return None
    plt = _plt()
    cols = ["share_card", "share_evaluation", "share_license", "share_parent"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(cols)
    x = np.arange(len(rows))
    for j, c in enumerate(cols):
        ax.bar(x + j * width, [r[c] for r in rows], width, label=c.replace("share_", ""))
    ax.set_xticks(x + 0.4 - width / 2, [r["group"] for r in rows], fontsize=7)
    ax.set_ylabel("share of models")
    ax.set_title("Documentation levels (paper Fig. 6)")
    ax.legend(fontsize=7)
    return _save(fig, plt, out / "documentation_by_modality.png")


def _save(fig, plt, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def all_figures(facts: AtlasFacts, stats: AtlasStatistics, out: Path) -> list[Path]:
    """Write every figure that the atlas has data for; returns the files written."""
    made = [relation_mix_figure(stats, out), depth_figure(facts, out), trends_figure(stats, out),
            documentation_figure(stats, out)]
    return [p for p in made if p is not None]
