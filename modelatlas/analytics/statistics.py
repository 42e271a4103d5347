"""All meta-ML statistics of the Model Atlas paper over one atlas, and the headline numbers beside
the paper's (sections 3.2, 4.1, 4.2 and Appendix A)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from modelatlas.analytics.component_structure import component_structure
from modelatlas.analytics.depth_distribution import depth_distribution
from modelatlas.analytics.descendant_downloads import descendant_downloads
from modelatlas.analytics.documentation import documentation
from modelatlas.analytics.facts import AtlasFacts
from modelatlas.analytics.merge_influence import merge_influence
from modelatlas.analytics.quantized_leaves import quantized_leaves
from modelatlas.analytics.relation_audit import relation_audit
from modelatlas.analytics.relation_mix import merge_rate_ratio, relation_mix
from modelatlas.analytics.tables import StatTable, share
from modelatlas.analytics.temporal_order import temporal_order
from modelatlas.errors import InputError
from modelatlas.results import TableResult

#: Every statistic, in report order.
STATISTICS = (relation_mix, quantized_leaves, temporal_order, depth_distribution, descendant_downloads,
              merge_influence, documentation, component_structure, relation_audit)


@dataclass(repr=False)
class AtlasStatistics(TableResult):
    """The result of :func:`compute_statistics` (``to_table`` / ``to_pandas``: the headline).

    Attributes
    ----------
    headline:
        One row per number the paper reports: ``statistic``, ``paper``, ``ours``, ``n``.
    tables:
        Every statistic's table by name.
    """

    headline: list[dict]
    tables: dict[str, StatTable] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"headline": self.headline, "tables": {k: t.to_dict() for k, t in self.tables.items()}}

    def to_table(self) -> pa.Table:
        """The headline: ``statistic``, ``paper``, ``ours`` (NaN where unmeasured), ``n``."""
        return pa.Table.from_pylist(self.headline, schema=pa.schema([
            ("statistic", pa.string()), ("paper", pa.float64()), ("ours", pa.float64()), ("n", pa.int64())]))

    def summary(self) -> str:
        measured = sum(1 for r in self.headline if r["n"] > 0)
        return (f"{len(self.headline)} headline numbers ({measured} measured), "
                f"tables: {', '.join(self.tables)}")


def compute_statistics(atlas, top_components: int = 10) -> AtlasStatistics:
    """Compute every statistic of :data:`STATISTICS` and the headline comparison.

    Raises
    ------
    InputError
        For an atlas without models.
    """
    if atlas.num_nodes == 0:
        raise InputError("the atlas holds no models; ingest a source first (modelatlas ingest ...)")
    facts = AtlasFacts(atlas, top_components=top_components)
    tables = {fn.__name__: fn(facts) for fn in STATISTICS}
    return AtlasStatistics(headline(facts, tables), tables)


def _row(table: StatTable, group_by: str, group: str) -> dict:
    for r in table.select(group_by):
        if r["group"] == group:
            return r
    return {}


def headline(facts: AtlasFacts, tables: dict[str, StatTable]) -> list[dict]:
    """The paper's numbers beside ours (NaN where this atlas has nothing to measure)."""
    nan = float("nan")

    def get(name, group_by, group, col, n_col):
        r = _row(tables[name], group_by, group)
        return r.get(col, nan), r.get(n_col, 0)

    rows = []

    def add(statistic, paper, value_n):
        value, n = value_n
        rows.append({"statistic": statistic, "paper": paper, "ours": value, "n": int(n)})

    add("quantised models that are leaves", 0.9941, get("quantized_leaves", "all", "all", "share_leaves", "quantized"))
    add("parent created before child", 0.9973, get("temporal_order", "all", "all", "share_parent_older", "pairs"))
    add("vision models at depth 1", 0.96, get("depth_distribution", "modality", "vision", "depth_1", "models"))
    add("language models at depth 1", 0.55, get("depth_distribution", "modality", "language", "depth_1", "models"))
    add("language models at depth >= 5", 0.05,
        get("depth_distribution", "modality", "language", "depth_5_plus", "models"))
    add("non-leaf models out-downloaded by descendants", 0.50,
        get("descendant_downloads", "all", "all", "share_descendants_exceed", "non_leaf_models"))
    add("merged language models: influence uplift over non-merged siblings", 0.30,
        get("merge_influence", "modality", "language", "uplift", "parents"))
    rel = tables["relation_mix"]
    add("merge share of edges, language / vision", 35.0,
        (merge_rate_ratio(rel), _row(rel, "modality", "vision").get("edges", 0)))
    vision = facts.modality == "vision"
    add("quantised share of vision models", 0.0015,
        (share(np.count_nonzero(facts.quantized & vision & facts.real), np.count_nonzero(vision & facts.real)),
         np.count_nonzero(vision & facts.real)))
    real = facts.real
    add("models in a hub (sibling leaves)", 0.79,
        (share(np.count_nonzero((facts.hubs >= 0) & real), np.count_nonzero(real)), np.count_nonzero(real)))
    doc = _row(tables["documentation"], "all", "all")
    models = doc.get("models", 0)
    add("models without a card", 0.50, (1 - doc.get("share_card", nan), models))
    add("models reporting evaluation results", 0.15, (doc.get("share_evaluation", nan), models))
    add("models declaring a licence", 0.08, (doc.get("share_license", nan), models))
    add("models naming a parent", 0.30, (doc.get("share_parent", nan), models))
    comp = tables["component_structure"].rows
    add("largest component's share of models", 0.33,
        (comp[0]["share_of_atlas"] if comp else nan, comp[0]["models"] if comp else 0))
    return rows
