"""Declared relations that the repositories' own files contradict (issue 12; not a statistic of the
papers): per group, how many models declare a relation (typed ``base_model:<relation>:`` tag or card
``base_model_relation``) and how many of them the relation audit flags, by reason
(:mod:`modelatlas.ingest.relation_audit`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.analytics.tables import TOP_COMPONENTS, StatTable, groupings, share
from modelatlas.atlas.derived import AtlasFacts
from modelatlas.ingest.relation_audit import REASONS, relation_flags


def relation_audit(facts: AtlasFacts, top_components: int = TOP_COMPONENTS) -> StatTable:
    """Models with a declared relation, and those whose files contradict it (per reason)."""
    atlas = facts.atlas
    ev = atlas.evidence
    declared_ids = pc.unique(ev.filter(pc.is_in(ev["relation_rule"], pa.array(["typed_tag", "card_relation"])))["child"])
    declared = np.asarray(atlas.index_of(declared_ids.to_pylist()), np.int64) if len(declared_ids) else np.zeros(0, np.int64)
    flags = relation_flags(atlas.issues)
    position = {int(node): k for k, node in enumerate(declared.tolist())}
    columns = {reason: np.zeros(len(declared)) for reason in REASONS}
    flagged = np.zeros(len(declared))
    for f in flags:
        node = int(atlas.index_of([f["id"]])[0])
        k = position.get(node)
        if k is not None:
            columns[f["reason"]][k] = 1.0
            flagged[k] = 1.0
    table = StatTable("relation_audit", "Declared relations contradicted by the repository's files",
                      "not in the papers (issue 12): GGUF-only fine-tunes, ONNX exports declared quantised, "
                      "adapters without adapter files",
                      ["group_by", "group", "declared", "contradicted", "share_contradicted", *REASONS])
    for grouping in groupings(facts, top_components):
        for row in grouping.sums(declared, {"contradicted": flagged, **columns}):
            table.rows.append({"group_by": row["group_by"], "group": row["group"], "declared": row["n"],
                               "contradicted": int(row["contradicted"]),
                               "share_contradicted": share(row["contradicted"], row["n"]),
                               **{r: int(row[r]) for r in REASONS}})
    return table
