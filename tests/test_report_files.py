"""The one report renderer: report.md and the same document as HTML (markdown-it-py in the jinja2
page), with untrusted text escaped."""

from __future__ import annotations

from html.parser import HTMLParser

from modelatlas.report_files import render_html, write_report_files


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Collect:
    parser = _Collect()
    parser.feed(page)
    return parser


MD = """# Atlas <report>

Some *words* about 1,234 models.

## Table

| id | downloads |
|---|---:|
| org/<script>alert(1)</script> | 12 |
| b | 3 |

- first point
- second point

![figure](depth.png)

[bad link](javascript:alert(1))
"""


def test_markdown_becomes_the_same_document_in_html(tmp_path):
    md_path, html_path = write_report_files(tmp_path / "out", MD, "Atlas & co")
    assert md_path.read_text(encoding="utf-8") == MD
    page = _parse(html_path.read_text(encoding="utf-8"))
    tags = [t for t, _ in page.tags]
    assert tags.count("h1") == 1 and tags.count("h2") == 1 and tags.count("li") == 2
    assert tags.count("tr") == 3 and tags.count("th") == 2 and tags.count("td") == 4
    assert ("img", {"src": "depth.png", "alt": "figure"}) in page.tags
    text = "".join(page.text)
    assert "Atlas <report>" in text and "org/<script>alert(1)</script>" in text and "Atlas & co" in text
    # the right-aligned column keeps its alignment
    aligned = [a for t, a in page.tags if t == "td" and "style" in a]
    assert len(aligned) == 2 and all("right" in a["style"] for a in aligned)


def test_untrusted_text_cannot_inject_markup():
    page = render_html(MD, "<b>title</b>")
    assert "<script>" not in page and "<b>title</b>" not in page
    assert 'href="javascript:' not in page
    assert "script" not in [t for t, _ in _parse(page).tags]
