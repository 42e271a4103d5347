"""Search by traits and lineage together (Model Atlas paper, section 3.3 "Model discovery"):
"descendants of X with task T, licence L, at most N parameters, ranked by downloads /
sub_tree_downloads / (imputed) score", each result with the reasons it matched.

Imputed values (the atlas's ``imputations`` table, :mod:`modelatlas.impute.store`) fill unknown
tasks, licences and scores when ``use_imputed`` is on, and the reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from modelatlas.atlas.derived import AtlasFacts
from modelatlas.analytics.impact import RANK_KEYS, rank_values
from modelatlas.discover.paths import chain_to, describe, descendant_distances, path_text
from modelatlas.errors import InputError


@dataclass
class SearchQuery:
    """What to look for (every field optional).

    Attributes
    ----------
    descendants_of:
        Only descendants of this model id.
    task, licence, library:
        Exact ``pipeline_tag`` / ``license`` / ``library_name``.
    max_params, min_downloads:
        Bounds (models with unknown parameter counts fail ``max_params``).
    rank_by:
        One of :data:`~modelatlas.analytics.impact.RANK_KEYS` or ``score:<metric>``.
    use_imputed:
        Let imputed tasks, licences and scores count.
    limit:
        Results to return.
    """

    descendants_of: str | None = None
    task: str | None = None
    licence: str | None = None
    library: str | None = None
    max_params: float | None = None
    min_downloads: float | None = None
    rank_by: str = "downloads"
    use_imputed: bool = True
    limit: int = 20


def _imputed(facts: AtlasFacts, what: str):
    """Imputed labels / numbers of ``what`` per node (None / NaN where none) and their methods."""
    table = facts.atlas.extras.get("imputations")
    labels = np.full(facts.n, None, dtype=object)
    numbers = np.full(facts.n, np.nan)
    method = np.full(facts.n, None, dtype=object)
    if table is None or table.num_rows == 0:
        return labels, numbers, method
    rows = table.filter(pc.equal(table["what"], what))
    idx = pc.index_in(rows["id"], value_set=facts.atlas.nodes["id"]).to_numpy(zero_copy_only=False)
    ok = ~np.isnan(idx.astype(np.float64))
    idx = idx[ok].astype(np.int64)
    labels[idx] = np.asarray(rows["value"].to_numpy(zero_copy_only=False), dtype=object)[ok]
    numbers[idx] = np.asarray(rows["number"].to_numpy(zero_copy_only=False), dtype=np.float64)[ok]
    conf = np.asarray(rows["confidence"].to_numpy(zero_copy_only=False), dtype=np.float64)[ok]
    names = np.asarray(rows["method"].to_numpy(zero_copy_only=False), dtype=object)[ok]
    method[idx] = [f"{m}, confidence {c:.2f}" for m, c in zip(names, conf)]
    return labels, numbers, method


def search(facts: AtlasFacts, query: SearchQuery) -> dict:
    """Models matching ``query``, best first, each with ``reasons``.

    Raises
    ------
    UnknownModelError
        ``descendants_of`` is not in the atlas (with close matches).
    InputError
        An unknown ranking key or metric.
    """
    keep = facts.real.copy()
    dist = pred = None
    if query.descendants_of:
        root = int(facts.atlas.index_of([query.descendants_of])[0])
        dist, pred, _ = descendant_distances(facts, np.array([root]))
        keep &= dist > 0
    imputed_notes: list[tuple[str, np.ndarray, np.ndarray]] = []
    for field_name, wanted in (("pipeline_tag", query.task), ("license", query.licence),
                               ("library_name", query.library)):
        if wanted is None:
            continue
        known = facts.text(field_name)
        match = known == wanted
        if query.use_imputed:
            labels, _, method = _imputed(facts, field_name)
            by_imputation = (known == None) & (labels == wanted)  # noqa: E711
            imputed_notes.append((f"{field_name} {wanted} (imputed by {{}})", by_imputation, method))
            match = match | by_imputation
        keep &= match
    params = facts.atlas.column("params").astype(np.float64)
    if query.max_params is not None:
        keep &= params <= query.max_params
    if query.min_downloads is not None:
        keep &= facts.downloads >= query.min_downloads
    values, rank_note = _rank(facts, query)
    idx = np.flatnonzero(keep & ~np.isnan(values))
    idx = idx[np.lexsort((idx, -values[idx]))][: query.limit]
    rows = []
    for i in idx:
        why = []
        if dist is not None:
            steps = describe(facts, chain_to(pred, int(i)))
            why.append(f"descendant of {query.descendants_of} at distance {int(dist[i])}: {path_text(steps)}")
        for template, flag, method in imputed_notes:
            if flag[i]:
                why.append(template.format(method[i]))
        if query.task and facts.text("pipeline_tag")[i] == query.task:
            why.append(f"task {query.task}")
        if query.licence and facts.text("license")[i] == query.licence:
            why.append(f"licence {query.licence}")
        if query.library and facts.text("library_name")[i] == query.library:
            why.append(f"library {query.library}")
        if query.max_params is not None:
            why.append(f"{params[i]:,.0f} parameters <= {query.max_params:,.0f}")
        why.append(rank_note(int(i)))
        rows.append({"id": facts.ids[i], query.rank_by: float(values[i]), "downloads": int(facts.downloads[i]),
                     "pipeline_tag": facts.text("pipeline_tag")[i], "licence": facts.text("license")[i],
                     "params": None if np.isnan(params[i]) else int(params[i]), "reasons": why})
    return {"query": query.__dict__, "matches": int(np.count_nonzero(keep)), "rows": rows}


def _rank(facts: AtlasFacts, query: SearchQuery):
    key = query.rank_by
    if key.startswith("score:"):
        metric = key[len("score:"):]
        rows = facts.atlas.metrics.filter(pc.equal(facts.atlas.metrics["metric"], metric))
        values = np.full(facts.n, np.nan)
        if rows.num_rows:
            mean = rows.group_by("id").aggregate([("value", "mean")])
            idx = facts.atlas.index_of(mean["id"])
            values[idx] = mean["value_mean"].to_numpy()
        known = ~np.isnan(values)
        method = np.full(facts.n, None, dtype=object)
        if query.use_imputed:
            _, numbers, method = _imputed(facts, metric)
            values = np.where(known, values, numbers)
        if np.isnan(values).all():
            raise InputError(f"no model has a score for metric {metric!r} (known or imputed)", where="--rank-by")

        def note(i: int) -> str:
            src = "reported" if known[i] else f"imputed by {method[i]}"
            return f"{metric} = {values[i]:.3f} ({src})"
        return values, note
    if key not in RANK_KEYS:
        raise InputError(f"cannot rank by {key!r}; choose one of {', '.join(RANK_KEYS)} or score:<metric>",
                         where="--rank-by")
    values = rank_values(facts, key)
    return values, lambda i: f"{key} = {values[i]:,.0f}"
