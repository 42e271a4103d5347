"""One Markdown table on standard output, as the benchmark scripts print their results."""

from __future__ import annotations

import sys


def print_table(title: str, header: list[str], rows) -> None:
    """Print ``### title`` and a Markdown table of ``rows`` under ``header`` (flushed at once, so a
    long run shows each table as it finishes)."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    sys.stdout.flush()
