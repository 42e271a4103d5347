"""Impact rankings: "most influential models" by ``sub_tree_downloads`` and descendant counts
(Model Atlas paper, Appendix A: a model's own downloads plus all its descendants', each once)."""

from __future__ import annotations

import numpy as np

from modelatlas.atlas.derived import AtlasFacts
from modelatlas.errors import InputError

#: Ranking keys ``modelatlas top --by`` accepts.
RANK_KEYS = ("sub_tree_downloads", "descendants", "descendant_downloads", "downloads", "likes")


def rank_values(facts: AtlasFacts, by: str) -> np.ndarray:
    """The value each node is ranked by."""
    if by == "sub_tree_downloads":
        return facts.sub_tree_downloads
    if by == "descendants":
        return facts.descendant_counts.astype(np.float64)
    if by == "descendant_downloads":
        return facts.descendant_downloads
    if by in ("downloads", "likes"):
        return np.nan_to_num(facts.atlas.column(by).astype(np.float64))
    raise InputError(f"cannot rank by {by!r}; choose one of {', '.join(RANK_KEYS)}", where="--by")


def top_models(facts: AtlasFacts, by: str = "sub_tree_downloads", *, task: str | None = None,
               component: int | None = None, per: str | None = None, limit: int = 20,
               include_placeholders: bool = False) -> list[dict]:
    """The highest-ranked models, overall or ``limit`` per component / task.

    Parameters
    ----------
    by:
        One of :data:`RANK_KEYS`.
    task:
        Keep models with this ``pipeline_tag``.
    component:
        Keep models of this component label (0 = biggest).
    per:
        ``"component"`` or ``"task"``: rank within each group and return ``limit`` per group.
    limit:
        Rows (per group) to return.

    Returns
    -------
    list of dict: rank, id, the ranking value, downloads, sub_tree_downloads, descendants,
    pipeline_tag, component (and the group when ``per`` is given).
    """
    values = rank_values(facts, by)
    keep = np.ones(facts.n, dtype=bool) if include_placeholders else facts.real.copy()
    tasks = facts.text("pipeline_tag")
    if task is not None:
        keep &= tasks == task
        if not keep.any() and not (tasks == task).any():
            known = sorted({t for t in tasks if t})
            raise InputError(f"no model has task {task!r}; tasks in this atlas: {', '.join(known[:20])}",
                             where="--task")
    if component is not None:
        keep &= facts.components == component
    idx = np.flatnonzero(keep)
    order = idx[np.argsort(-values[idx], kind="stable")]  # ties by row, i.e. by id
    if per is None:
        groups = {None: order[:limit]}
    elif per in ("component", "task"):
        code = facts.components[order] if per == "component" else facts.codes("pipeline_tag")[0][order]
        grouped = np.argsort(code, kind="stable")  # by group, best first inside each
        first = np.r_[0, np.flatnonzero(np.diff(code[grouped])) + 1]
        rank = np.arange(grouped.size) - np.repeat(first, np.diff(np.r_[first, grouped.size]))
        picked = grouped[rank < limit]
        groups = {}
        for i in order[picked]:
            key_i = facts.components[i] if per == "component" else tasks[i]
            groups.setdefault(key_i, []).append(i)
    else:
        raise InputError(f"--per must be 'component' or 'task', not {per!r}", where="--per")
    rows = []
    for group, members in groups.items():
        for rank, i in enumerate(members, 1):
            row = {"rank": rank, "id": facts.ids[i], by: float(values[i]),
                   "downloads": int(facts.downloads[i]), "sub_tree_downloads": int(facts.sub_tree_downloads[i]),
                   "descendants": int(facts.descendant_counts[i]), "pipeline_tag": tasks[i],
                   "component": int(facts.components[i])}
            if per is not None:
                row[per] = group if per == "task" else int(group)
            rows.append(row)
    return rows
