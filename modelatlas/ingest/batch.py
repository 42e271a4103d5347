"""What one reader returns for one source: records, parent claims, metrics, issues, counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from modelatlas.atlas.schema import EVIDENCE_SCHEMA, METRIC_SCHEMA, NODE_SCHEMA

#: Confidence of a parent claim by where it comes from (a recorded fact, not a prediction).
PROVENANCE_CONFIDENCE: dict[str, float] = {
    "hub_tag": 1.0, "hub_tree": 1.0, "hub_card": 0.9, "manual": 0.9, "card_text": 0.6,
}


@dataclass
class SourceBatch:
    """Everything read from one source.

    Attributes
    ----------
    source:
        Label stored in ``sources`` / ``evidence.source`` (the file name, or ``hub:<query>``).
    format:
        Reader that read it (``hf-trees``, ``hub-stats``, ``card-parents``, ``manual``, ``hub``).
    records, evidence, metrics:
        Tables in the atlas schemas.
    issues:
        ``{"kind", "source", "where", "message"}`` rows.
    stats:
        Counts for the ingest summary (records read, duplicates, malformed lines, ...).
    extras:
        Further tables for :attr:`Atlas.extras` (e.g. ``annotations``), appended without repeats.
    since, watermark:
        A Hub crawl's lower bound on ``lastModified`` (a refresh) and the server's time at its first
        answer, where the next ``--since last`` starts; ``None`` for files.
    """

    source: str
    format: str
    records: pa.Table = field(default_factory=NODE_SCHEMA.empty_table)
    evidence: pa.Table = field(default_factory=EVIDENCE_SCHEMA.empty_table)
    metrics: pa.Table = field(default_factory=METRIC_SCHEMA.empty_table)
    issues: list[dict] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    extras: dict[str, pa.Table] = field(default_factory=dict)
    since: datetime | None = None
    watermark: datetime | None = None

    def issue(self, kind: str, where: str | None, message: str) -> None:
        self.issues.append({"kind": kind, "source": self.source, "where": where, "message": message})

    def summary(self) -> dict:
        """Counts for the ingest report of this source."""
        return {"source": self.source, "format": self.format, **self.stats,
                "records": self.records.num_rows, "evidence": self.evidence.num_rows,
                "metrics": self.metrics.num_rows,
                "issues": dict(sorted(Counter(i["kind"] for i in self.issues).items()))}


def evidence_rows(rows: list[tuple[str, str, str | None, str, str]], source: str) -> pa.Table:
    """Evidence from ``(parent, child, relation, relation_rule, provenance)`` tuples."""
    if not rows:
        return EVIDENCE_SCHEMA.empty_table()
    parent, child, relation, rule, prov = (list(c) for c in zip(*rows))
    return pa.table({
        "parent": parent, "child": child, "relation": relation, "relation_rule": rule, "provenance": prov,
        "confidence": [PROVENANCE_CONFIDENCE.get(p, 0.5) for p in prov], "source": [source] * len(rows),
    }, schema=EVIDENCE_SCHEMA)
