"""The one way a report is written: ``report.md`` and the same document as ``report.html``.

A report is composed once, as Markdown (the statistics report, :mod:`modelatlas.analytics.report`;
the ecosystem report, :mod:`modelatlas.ecosystem.report`). The HTML page is that Markdown rendered
by markdown-it-py (CommonMark plus tables) inside one jinja2 page template
(``modelatlas/templates/report.html``), so the two files never say different things
(docs/architecture.md, "Reports"). Raw HTML in the Markdown is escaped, not passed through: model
ids and card-derived text reach the report, and they are untrusted.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


@lru_cache(maxsize=1)
def _template():
    env = Environment(loader=PackageLoader("modelatlas", "templates"), autoescape=select_autoescape(["html"]))
    return env.get_template("report.html")


def render_html(markdown: str, title: str) -> str:
    """The report page: ``markdown`` as HTML inside the page template.

    Parameters
    ----------
    markdown:
        The report (CommonMark with pipe tables).
    title:
        The page title (escaped).

    Returns
    -------
    str
        A complete HTML document.
    """
    return _template().render(title=title, body=Markup(_markdown().render(markdown)))


def write_report_files(out: str | Path, markdown: str, title: str) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into the folder ``out`` (created if needed).

    Returns
    -------
    tuple of Path
        The Markdown and HTML files.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(markdown, encoding="utf-8")
    html_path.write_text(render_html(markdown, title), encoding="utf-8")
    return md_path, html_path
