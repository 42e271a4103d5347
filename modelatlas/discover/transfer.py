"""Models likely to transfer to a task (Model Atlas paper, section 3.3: "a branch-and-bound
strategy could prune subgraphs unlikely to yield high transfer performance").

Each model known to do task ``T`` is a seed with a quality ``q`` in (0, 1] (its score on a given
metric, min-max scaled, or its log downloads scaled by the largest). A candidate ``c`` — a model not
known to do ``T`` — scores ``max_s q(s) · decay^d(s, c)`` with ``d`` the undirected path length.
Best-first search from all seeds pops nodes in decreasing score; because every step multiplies by
``decay < 1``, a popped score bounds every node reached through it, so the search stops (prunes
the rest of the atlas) as soon as the frontier's best score cannot beat the ``limit``-th result.
"""

from __future__ import annotations

import heapq

import numpy as np
import pyarrow.compute as pc

from modelatlas.atlas.derived import AtlasFacts
from modelatlas.discover.paths import path_text
from modelatlas.errors import InputError
from modelatlas.impute.nearest_labelled import undirected


def transfer_candidates(facts: AtlasFacts, task: str, *, limit: int = 20, decay: float = 0.5,
                        metric: str | None = None) -> dict:
    """Rank models by how close they sit to strong models that do ``task``.

    Returns
    -------
    dict: ``task``, ``seeds`` (models known to do it), ``explored`` (nodes the search visited, out of
    ``nodes``) and ``rows``: id, score, nearest seed, distance, the path and a reason.
    """
    if not 0 < decay < 1:
        raise InputError(f"--decay must be between 0 and 1, not {decay}", where="--decay")
    tasks = facts.text("pipeline_tag")
    seeds = np.flatnonzero(tasks == task)
    if seeds.size == 0:
        known = sorted({t for t in tasks if t})
        raise InputError(f"no model is known to do {task!r}; tasks in this atlas: {', '.join(known[:20])}",
                         where="--task")
    quality = _quality(facts, seeds, metric)
    adj = undirected(facts.graph)
    best = np.full(facts.n, -1.0)
    came = np.full(facts.n, -1, dtype=np.int64)
    seed_of = np.full(facts.n, -1, dtype=np.int64)
    heap = [(-q, int(s), int(s), -1) for s, q in zip(seeds, quality)]
    heapq.heapify(heap)
    rows, explored = [], 0
    done = np.zeros(facts.n, dtype=bool)
    while heap:
        neg, node, seed, parent = heapq.heappop(heap)
        score = -neg
        if done[node]:
            continue
        if len(rows) >= limit and score <= rows[-1]["score"]:
            break  # bound: nothing reachable from the frontier can beat the current results
        done[node], best[node], came[node], seed_of[node] = True, score, parent, seed
        explored += 1
        if tasks[node] != task and facts.real[node]:
            rows.append(_row(facts, node, score, seed, came, quality[seeds == seed][0], task))
        for nb in adj.indices[adj.indptr[node]:adj.indptr[node + 1]]:
            if not done[nb]:
                heapq.heappush(heap, (-(score * decay), int(nb), seed, node))
    return {"task": task, "seeds": int(seeds.size), "explored": explored, "nodes": facts.n,
            "decay": decay, "quality": metric or "downloads", "rows": rows[:limit]}


def _quality(facts: AtlasFacts, seeds: np.ndarray, metric: str | None) -> np.ndarray:
    if metric is None:
        logs = np.log1p(facts.downloads[seeds])
        top = logs.max()
        return np.where(top > 0, (1 + logs) / (1 + top), 1.0)
    rows = facts.atlas.metrics.filter(pc.equal(facts.atlas.metrics["metric"], metric))
    if rows.num_rows == 0:
        raise InputError(f"no model has a score for metric {metric!r}", where="--metric")
    mean = rows.group_by("id").aggregate([("value", "mean")])
    values = np.full(facts.n, np.nan)
    values[facts.atlas.index_of(mean["id"])] = mean["value_mean"].to_numpy()
    v = values[seeds]
    lo, hi = np.nanmin(v), np.nanmax(v)
    scaled = (v - lo) / (hi - lo) if hi > lo else np.ones_like(v)
    # Seeds without a score rank below every scored seed but still count.
    return np.where(np.isnan(scaled), 0.05, 0.1 + 0.9 * scaled)


def _row(facts, node, score, seed, came, seed_quality, task) -> dict:
    chain = [int(node)]
    while came[chain[-1]] >= 0:
        chain.append(int(came[chain[-1]]))
    steps = []
    for a, b in zip(chain[::-1][:-1], chain[::-1][1:]):
        rel = facts.relation_of(a, b)
        direction = "child"
        if rel is None:
            rel, direction = facts.relation_of(b, a), "parent"
        steps.append({"parent": facts.ids[a], "child": facts.ids[b], "relation": f"{rel} ({direction})"})
    distance = len(chain) - 1
    return {"id": facts.ids[node], "score": float(score), "seed": facts.ids[seed], "distance": distance,
            "pipeline_tag": facts.text("pipeline_tag")[node], "path": path_text(steps),
            "reason": f"{distance} step(s) from {facts.ids[seed]}, which does {task} "
                      f"(quality {seed_quality:.2f}); score = quality x decay^distance"}
