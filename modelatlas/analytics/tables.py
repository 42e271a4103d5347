"""Result tables of the meta-ML statistics and the groupings they are computed over.

Every statistic is a table with one row per group: the whole atlas, each modality, each of the
biggest components and each creation month (issue 5, "Meta-ML statistics"). Groups are integer
codes per node so that the sums are ``np.bincount`` calls at 2 million nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from modelatlas.results import TableResult


@dataclass
class Grouping:
    """A partition of (some of) the nodes.

    Attributes
    ----------
    name:
        ``"all"``, ``"modality"``, ``"component"`` or ``"month"``.
    codes:
        Group code of every node, ``-1`` for nodes outside every group.
    names:
        Name of each code.
    """

    name: str
    codes: np.ndarray
    names: list[str]

    def sums(self, rows: np.ndarray, columns: dict[str, np.ndarray]) -> list[dict]:
        """Per group: the number of observations and the sum of each column.

        Parameters
        ----------
        rows:
            The node each observation belongs to (a node index per observation).
        columns:
            Numeric (or boolean) arrays, one value per observation.

        Returns
        -------
        list of dict with ``group_by``, ``group``, ``n`` and one sum per column, for groups with
        at least one observation, in code order.
        """
        codes = self.codes[rows] if rows.size else np.zeros(0, dtype=np.int64)
        inside = codes >= 0
        codes = codes[inside]
        k = len(self.names)
        n = np.bincount(codes, minlength=k)
        sums = {name: np.bincount(codes, weights=np.asarray(v, dtype=np.float64)[inside], minlength=k)
                for name, v in columns.items()}
        out = []
        for g in np.flatnonzero(n):
            row = {"group_by": self.name, "group": self.names[g], "n": int(n[g])}
            row.update({name: float(s[g]) for name, s in sums.items()})
            out.append(row)
        return out


@dataclass(repr=False)
class StatTable(TableResult):
    """One statistic as a table (``to_table`` / ``to_pandas``: its rows in :attr:`columns` order).

    Attributes
    ----------
    name:
        Machine name (``relation_mix``, ``quantized_leaves``, ...).
    title:
        A line for people.
    paper:
        What the Model Atlas paper reports for it (empty if nothing).
    columns:
        Column order for display.
    rows:
        One dict per row.
    """

    name: str
    title: str
    paper: str
    columns: list[str]
    rows: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "paper": self.paper, "columns": self.columns,
                "rows": self.rows}

    def to_table(self) -> pa.Table:
        names = list(dict.fromkeys(["group_by", *self.columns]))
        return pa.Table.from_pylist([{c: r.get(c) for c in names} for r in self.rows]) if self.rows \
            else pa.table({c: pa.array([], pa.null()) for c in names})

    def summary(self) -> str:
        return f"{self.name}, {len(self.rows):,} rows: {self.title}"

    def select(self, group_by: str) -> list[dict]:
        """Rows of one grouping."""
        return [r for r in self.rows if r.get("group_by") == group_by]

    def to_markdown(self, group_by: str | None = None, limit: int | None = None) -> str:
        """A GitHub-flavoured Markdown table (optionally one grouping, at most ``limit`` rows)."""
        rows = self.rows if group_by is None else self.select(group_by)
        rows = rows[:limit] if limit else rows
        head = "| " + " | ".join(self.columns) + " |"
        rule = "|" + "|".join("---" for _ in self.columns) + "|"
        body = ["| " + " | ".join(_fmt(r.get(c)) for c in self.columns) + " |" for r in rows]
        return "\n".join([head, rule, *body])


def share(num: float, den: float) -> float:
    """``num / den``, NaN when the denominator is zero."""
    return float(num) / float(den) if den else float("nan")


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:
            return "–"
        if abs(value) < 1 and value != 0:
            return f"{value:.4f}"
        return f"{value:,.2f}" if value != int(value) else f"{int(value):,}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return str(value)


#: How many of the biggest components get their own group unless a caller says otherwise.
TOP_COMPONENTS = 10


def groupings(facts, top_components: int = TOP_COMPONENTS) -> list[Grouping]:
    """The whole atlas, modalities, the biggest components (with an edge) and creation months.

    Parameters
    ----------
    facts:
        The atlas's derived-data layer (``atlas.facts``).
    top_components:
        How many of the biggest components get their own group.

    Returns
    -------
    list of Grouping, computed once per atlas and ``top_components``.
    """
    return facts.memo(("groupings", top_components), lambda: _make_groupings(facts, top_components))


def component_label(facts, label: int) -> str:
    """``c<label>: <root>`` (``+k roots`` when the family has several sources)."""
    return f"c{label}: {facts.component_name(label)}"


def _make_groupings(facts, top_components: int) -> list[Grouping]:
    out = [Grouping("all", np.zeros(facts.n, dtype=np.int64), ["all"])]
    mcodes, mods = facts.codes("modality")
    out.append(Grouping("modality", mcodes, mods))
    k = min(top_components, facts.component_sizes.size)
    multi = [c for c in range(k) if facts.component_sizes[c] > 1]
    codes = np.where(np.isin(facts.components, multi), facts.components, -1)
    out.append(Grouping("component", codes, [component_label(facts, c) for c in range(k)]))
    out.append(_month_grouping(facts.created_at))
    return out


def _month_grouping(created_at: np.ndarray) -> Grouping:
    """Creation month (UTC) of each node, in calendar order; ``-1`` where unknown."""
    codes = np.full(created_at.size, -1, dtype=np.int64)
    known = ~np.isnan(created_at)
    if not known.any():
        return Grouping("month", codes, [])
    months = (created_at[known] * 1e6).astype("datetime64[us]").astype("datetime64[M]")
    uniq, inverse = np.unique(months, return_inverse=True)
    codes[known] = inverse
    return Grouping("month", codes, [str(m) for m in uniq])
