"""The meta-ML report: every statistic table, the paper's numbers beside ours, the most influential
models and the figures, as Markdown and HTML in one folder (:mod:`modelatlas.report_files`)."""

from __future__ import annotations

from pathlib import Path

from modelatlas.analytics.figures import all_figures
from modelatlas.analytics.impact import top_models
from modelatlas.analytics.statistics import HEADLINE_COLUMNS, compute_statistics
from modelatlas.analytics.tables import StatTable
from modelatlas.report_files import write_report_files

#: Rows shown per grouping in the report (months and components can be many).
ROWS_PER_SECTION = 40


def write_report(atlas, out: str | Path, *, title: str = "Model Atlas report", top_components: int = 10) -> dict:
    """Write ``report.md``, ``report.html`` and the PNG figures into ``out``.

    Returns
    -------
    dict with the paths written and the statistics' headline.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stats = compute_statistics(atlas, top_components=top_components)
    facts = atlas.facts
    figures = all_figures(facts, stats, out)
    top = top_models(facts, "sub_tree_downloads", limit=20)
    summary = (f"{atlas.num_nodes:,} models ({int(facts.real.sum()):,} with records), {atlas.num_edges:,} edges, "
               f"{facts.component_sizes.size:,} components.")
    sections = [_sections(t) for t in stats.tables.values()]
    md = [f"# {title}", "", summary, "", "## The Model Atlas paper beside this atlas", "",
          StatTable("headline", "", "", HEADLINE_COLUMNS, stats.headline).to_markdown(), ""]
    md += [f"![{f.stem}]({f.name})" for f in figures] + [""]
    for t, sec in zip(stats.tables.values(), sections):
        md += [f"## {t.title}", "", f"*Paper: {t.paper}*", ""]
        for group_by, rows in sec["sections"]:
            if group_by:
                md += [f"### by {group_by}", ""]
            md += [StatTable(t.name, "", "", t.columns, rows).to_markdown(), ""]
    md += ["## Most influential models (sub-tree downloads)", "",
           StatTable("top", "", "", ["rank", "id", "sub_tree_downloads", "downloads", "descendants", "pipeline_tag"],
                     top).to_markdown(), ""]
    md_path, html_path = write_report_files(out, "\n".join(md), title)
    return {"markdown": md_path, "html": html_path, "figures": figures,
            "headline": stats.headline}


def _sections(table: StatTable) -> dict:
    if "group_by" not in table.columns:
        return {"title": table.title, "paper": table.paper, "columns": table.columns,
                "sections": [(None, table.rows[:ROWS_PER_SECTION])]}
    cols = [c for c in table.columns if c != "group_by"]
    groups = []
    for name in dict.fromkeys(r["group_by"] for r in table.rows):
        rows = table.select(name)
        groups.append((name, rows[-ROWS_PER_SECTION:] if name == "month" else rows[:ROWS_PER_SECTION]))
    return {"title": table.title, "paper": table.paper, "columns": cols, "sections": groups}
