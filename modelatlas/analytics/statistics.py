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
from modelatlas.analytics.merge_influence import merge_influence
from modelatlas.analytics.quantized_leaves import quantized_leaves
from modelatlas.analytics.relation_audit import relation_audit
from modelatlas.analytics.relation_mix import merge_rate_ratio, relation_mix
from modelatlas.analytics.tables import TOP_COMPONENTS, StatTable, share
from modelatlas.analytics.temporal_order import temporal_order
from modelatlas.atlas.derived import AtlasFacts
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


#: Columns of the headline table: ``n`` observations measured, out of ``population`` (``coverage``).
HEADLINE_COLUMNS = ["statistic", "paper", "ours", "n", "coverage"]


def compute_statistics(atlas, top_components: int = TOP_COMPONENTS) -> AtlasStatistics:
    """Compute every statistic of :data:`STATISTICS` and the headline comparison.

    Raises
    ------
    InputError
        For an atlas without models.
    """
    if atlas.num_nodes == 0:
        raise InputError("the atlas holds no models; ingest a source first (modelatlas ingest ...)")
    facts = atlas.facts
    tables = {fn.__name__: fn(facts, top_components) for fn in STATISTICS}
    return AtlasStatistics(headline(facts, tables), tables)


def _row(table: StatTable, group_by: str, group: str) -> dict:
    for r in table.select(group_by):
        if r["group"] == group:
            return r
    return {}


def headline(facts: AtlasFacts, tables: dict[str, StatTable]) -> list[dict]:
    """The paper's numbers beside ours, each read from one row of its statistic's table.

    Every row carries ``n`` (the observations measured), ``population`` (those the statistic is
    about) and ``coverage`` = n / population; ``ours`` is NaN (printed "–") where n is 0, i.e. where
    the atlas does not record the statistic's input (docs/science.md, "Honest numbers").
    """
    nan = float("nan")
    rows = []

    def add(statistic, paper, value, n, population):
        n, population = int(n), int(population)
        rows.append({"statistic": statistic, "paper": paper, "ours": value if n else nan, "n": n,
                     "population": population, "coverage": share(n, population)})

    def from_table(statistic, paper, name, group_by, group, col, n_col, population_col=None, transform=None):
        r = _row(tables[name], group_by, group)
        value = r.get(col, nan)
        value = transform(value) if transform else value
        n = r.get(n_col, 0)
        add(statistic, paper, value, n, r.get(population_col, 0) if population_col else n)

    from_table("quantised models that are leaves", 0.9941, "quantized_leaves", "all", "all", "share_leaves",
               "quantized")
    from_table("parent created before child", 0.9973, "temporal_order", "all", "all", "share_parent_older",
               "pairs", "edges")
    from_table("vision models at depth 1", 0.96, "depth_distribution", "modality", "vision", "depth_1", "models")
    from_table("language models at depth 1", 0.55, "depth_distribution", "modality", "language", "depth_1",
               "models")
    from_table("language models at depth >= 5", 0.05, "depth_distribution", "modality", "language",
               "depth_5_plus", "models")
    from_table("non-leaf models out-downloaded by descendants", 0.50, "descendant_downloads", "all", "all",
               "share_descendants_exceed", "downloads_known", "non_leaf_models")
    from_table("merged language models: influence uplift over non-merged siblings", 0.30, "merge_influence",
               "modality", "language", "uplift", "compared", "merged_models")
    rel = tables["relation_mix"]
    lang, vis = _row(rel, "modality", "language"), _row(rel, "modality", "vision")
    edges = lang.get("edges", 0) + vis.get("edges", 0)
    typed = edges - lang.get("edges", 0) * lang.get("unknown", 0) - vis.get("edges", 0) * vis.get("unknown", 0)
    add("merge share of edges, language / vision", 35.0, merge_rate_ratio(rel), round(typed), edges)
    vision = (facts.modality == "vision") & facts.real
    typed_parent = np.zeros(facts.n, dtype=bool)
    typed_parent[facts.graph.child[facts.edge_relation != "unknown"]] = True
    q_known = vision & (facts.observed("quantized") | typed_parent)
    add("quantised share of vision models", 0.0015,
        share(np.count_nonzero(facts.quantized & q_known), np.count_nonzero(q_known)),
        np.count_nonzero(q_known), np.count_nonzero(vision))
    real = np.count_nonzero(facts.real)
    add("models in a hub (sibling leaves)", 0.79, share(np.count_nonzero((facts.hubs >= 0) & facts.real), real),
        real, real)
    from_table("models without a card", 0.50, "documentation", "all", "all", "share_card", "card_known", "models",
               transform=lambda v: 1 - v)
    from_table("models reporting evaluation results", 0.15, "documentation", "all", "all", "share_evaluation",
               "evaluation_known", "models")
    from_table("models declaring a licence", 0.08, "documentation", "all", "all", "share_license",
               "license_known", "models")
    from_table("models naming a parent", 0.30, "documentation", "all", "all", "share_parent", "models")
    comp = tables["component_structure"].rows
    add("largest component's share of models", 0.33, comp[0]["share_of_atlas"] if comp else nan, facts.n, facts.n)
    return rows
