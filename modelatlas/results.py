"""Typed results of the Python API (docs/api.md): each is a dataclass whose main content is one
table, with ``to_table()`` (Arrow), ``to_pandas()``, a one-line ``repr`` and an HTML view for
notebooks (its first rows).

The results of the analyses themselves (:class:`~modelatlas.discover.lineage.Lineage`,
:class:`~modelatlas.analytics.statistics.AtlasStatistics`) take the same protocol from
:class:`TableResult`; the classes here wrap analyses that return plain rows.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

#: Rows shown by ``_repr_html_``.
HTML_ROWS = 10


class TableResult:
    """Mixin: a result whose main content is one table.

    Subclasses implement :meth:`to_table` and :meth:`summary`; declare them as
    ``@dataclass(repr=False)`` so the short ``repr`` here is kept.
    """

    def to_table(self) -> pa.Table:
        """The result as an Arrow table."""
        raise NotImplementedError

    def summary(self) -> str:
        """One line saying what the result holds."""
        raise NotImplementedError

    def to_pandas(self):
        """The result as a :class:`pandas.DataFrame` (lists stay lists; needs pandas)."""
        return arrow_to_pandas(self.to_table())

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.summary()}>"

    def _repr_html_(self) -> str:
        """The summary line and the first :data:`HTML_ROWS` rows, every value escaped (no pandas needed)."""
        table = self.to_table()
        head = "".join(f"<th>{html.escape(name)}</th>" for name in table.column_names)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row.values()) + "</tr>"
                       for row in table.slice(0, HTML_ROWS).to_pylist())
        more = f"<p>… {table.num_rows - HTML_ROWS:,} more rows (<code>.to_table()</code>)</p>" \
            if table.num_rows > HTML_ROWS else ""
        return (f"<p><b>{type(self).__name__}</b>: {html.escape(self.summary())}</p>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, list):
        return "; ".join(_cell(v) for v in value)
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def arrow_to_pandas(table: pa.Table):
    """``table`` as a pandas DataFrame, or an ImportError saying how to get pandas."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        raise ImportError("results as pandas DataFrames need pandas: pip install pandas") from None
    return table.to_pandas()


@dataclass(repr=False)
class Descendants(TableResult):
    """Every model below ``model``, each once, nearest first (see :meth:`Atlas.descendants`).

    Attributes
    ----------
    model : str
        The model asked about.
    ids : list of str
        Its descendants, by distance then id.
    distance : numpy.ndarray
        Steps from ``model`` along the shortest path.
    parent : list of str
        Each descendant's parent on that path.
    relation : list of str or None
        The relation of that last step.
    downloads : numpy.ndarray
        Each descendant's own downloads (0 where unknown).
    """

    model: str
    ids: list[str]
    distance: np.ndarray
    parent: list[str]
    relation: list[str | None]
    downloads: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def to_table(self) -> pa.Table:
        return pa.table({"id": pa.array(self.ids, pa.string()), "distance": pa.array(self.distance, pa.int64()),
                         "parent": pa.array(self.parent, pa.string()),
                         "relation": pa.array(self.relation, pa.string()),
                         "downloads": pa.array(self.downloads, pa.int64())})

    def summary(self) -> str:
        if not self.ids:
            return f"{self.model} has no descendants"
        return f"{len(self.ids):,} descendants of {self.model}, {int(self.distance.max())} generations deep"


@dataclass(repr=False)
class Ranking(TableResult):
    """Models ranked by one value, highest first (see :meth:`Atlas.sub_tree_downloads`).

    Attributes
    ----------
    by : str
        The ranking value (a column of :attr:`rows`).
    rows : list of dict
        One dict per model: ``rank``, ``id``, the value and context columns.
    """

    by: str
    rows: list[dict]

    def __len__(self) -> int:
        return len(self.rows)

    def to_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows)

    def summary(self) -> str:
        if not self.rows:
            return f"no model to rank by {self.by}"
        top = self.rows[0]
        return f"{len(self.rows):,} models by {self.by}; first {top['id']} ({top[self.by]:,.0f})"


@dataclass(repr=False)
class SearchResult(TableResult):
    """Models matching a search, best first, each with the reasons it matched (see
    :meth:`Atlas.search`).

    Attributes
    ----------
    query : dict
        The query's fields.
    matches : int
        Models matching, before ``limit``.
    rows : list of dict
        The returned models: ``id``, the ranking value, ``downloads``, ``pipeline_tag``,
        ``license``, ``params`` and ``reasons`` (a list of sentences).
    """

    query: dict
    matches: int
    rows: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def to_table(self) -> pa.Table:
        if not self.rows:
            return pa.table({"id": pa.array([], pa.string()), "reasons": pa.array([], pa.list_(pa.string()))})
        return pa.Table.from_pylist(self.rows)

    def summary(self) -> str:
        asked = ", ".join(f"{k}={v!r}" for k, v in self.query.items()
                          if v is not None and k not in ("use_imputed", "limit", "rank_by"))
        shown = f", showing {len(self.rows)}" if len(self.rows) < self.matches else ""
        return f"{self.matches:,} matches ({asked or 'every model'}, by {self.query['rank_by']}){shown}"


@dataclass(repr=False)
class ChartRun(TableResult):
    """Predicted lineage of a set of models (see :func:`modelatlas.chart`).

    Attributes
    ----------
    method : str
        The charting method's name.
    ids : list of str
        The charted models.
    edges : pyarrow.Table
        Predicted edges: ``parent``, ``child``, ``relation``, ``confidence``.
    accuracy : float or None
        Share of models whose predicted parents are the true ones, where a zoo gives the truth.
    messages : list of str
        What the method reported (architectures charted apart, dropped edges...).
    """

    method: str
    ids: list[str]
    edges: pa.Table
    accuracy: float | None = None
    messages: list[str] = field(default_factory=list)

    def to_table(self) -> pa.Table:
        return self.edges

    def summary(self) -> str:
        acc = f", accuracy {self.accuracy:.3f}" if self.accuracy is not None else ""
        return f"{self.method}: {self.edges.num_rows:,} edges over {len(self.ids):,} models{acc}"
