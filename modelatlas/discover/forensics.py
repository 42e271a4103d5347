"""One model's forensic report (Model Atlas paper, section 3.1): its ancestry
(:func:`modelatlas.discover.lineage.lineage`, with the path to every source), the datasets it inherits, licence drift against its ancestors, and every descendant an
issue in it would reach."""

from __future__ import annotations

import numpy as np

from modelatlas.atlas.derived import AtlasFacts
from modelatlas.discover.data_lineage import data_lineage
from modelatlas.discover.issue_propagation import affected_descendants
from modelatlas.discover.licence_forensics import model_licence_findings
from modelatlas.discover.lineage import lineage
from modelatlas.discover.paths import path_text


def model_forensics(facts: AtlasFacts, model_id: str, limit: int | None = 50) -> dict:
    """Everything the atlas says about where ``model_id`` comes from and what it affects.

    Raises
    ------
    UnknownModelError
        For an id not in the atlas (with close matches).
    """
    node = int(facts.atlas.index_of([model_id])[0])
    ancestry = lineage(facts.atlas, model_id)
    return {"id": model_id, "licence": facts.text("license")[node], "ancestors": ancestry.ancestors,
            "sources": ancestry.sources, "paths": {s: path_text(p) for s, p in ancestry.paths.items()},
            "sub_tree_downloads": ancestry.sub_tree_downloads, "data_lineage": data_lineage(facts, node),
            "inheritance": _licence_spelling(facts.inheritance(node)), "licence_drift": model_licence_findings(facts, node),
            "issue_propagation": affected_descendants(facts, np.array([node]), limit=limit)}


def _licence_spelling(inheritance: dict) -> dict:
    """The layer's inheritance with the command line's key ``licence`` (docs/cli.md, "JSON keys");
    the web API keeps the Hub's ``license``."""
    return {"licence" if k == "license" else k: v for k, v in inheritance.items()}
