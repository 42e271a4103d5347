"""Evaluation protocol of Table 1 (Model Atlas paper, section 4.2): hide a random share of the known
values, predict them from the rest, score; repeat over several seeds.

Attributes are scored by accuracy; metrics by MSE, MAE and Pearson correlation. Every method runs
on the same hidden sets, so the numbers compare side by side.
"""

from __future__ import annotations

import numpy as np

from modelatlas.impute.auto import AutoImputer
from modelatlas.impute.global_baseline import ComponentVote, GlobalBaseline
from modelatlas.impute.graph_knn import GraphKNN
from modelatlas.impute.hub_vote import HubVote
from modelatlas.impute.task import ImputationTask
from modelatlas.impute.view import TrainView
from modelatlas.errors import InputError

#: k values of Table 1a.
PAPER_KS = (1, 2, 3, 5)


def default_methods(kind: str, seed: int = 0) -> list:
    """The paper's baselines and methods, then ours: global, component, hub, graph kNN (k = 1, 2, 3,
    5 for metrics; 5 for attributes), auto."""
    ks = PAPER_KS if kind == "metric" else (5,)
    return [GlobalBaseline(), ComponentVote(), HubVote(), *(GraphKNN(k) for k in ks), AutoImputer(seed)]


def evaluate(task: ImputationTask, *, hide: float = 0.2, seeds=(0, 1, 2), scope: np.ndarray | None = None,
             methods=None) -> dict:
    """Score every method on hidden known values.

    Parameters
    ----------
    task:
        What to impute.
    hide:
        Share of the known values (inside ``scope``) hidden per seed.
    seeds:
        One split per seed.
    scope:
        Optional mask: only these nodes' values are hidden (e.g. one component, as the paper's
        Mistral-7B experiment); all other known values stay visible.
    methods:
        Objects with ``name_for(kind)`` and ``predict(view, query)``; default :func:`default_methods`.

    Returns
    -------
    dict: ``what``, ``kind``, ``known``, ``hidden_per_seed``, ``seeds``, ``hide`` and ``results``: one
    row per method with ``method`` (and ``k``), ``n`` (scored predictions over all seeds), the
    score(s) averaged over seeds with their standard deviation, ``coverage`` (share predicted
    from the method's own evidence rather than the global fallback) and the score on that covered
    share alone (``accuracy_covered`` / ``mae_covered``); for ``auto``, the method it chose per seed
    (``chosen``) and that method's cross-validated score on the seed's training values
    (``inner_score``: accuracy, or MAE for metrics).
    """
    if not 0 < hide < 1:
        raise InputError(f"--hide must be between 0 and 1, not {hide}", where="--hide")
    known = task.known
    pool = np.flatnonzero(known if scope is None else known & scope)
    if pool.size < 5:
        raise InputError(f"{task.what!r} is known on only {pool.size} models; at least 5 are needed to evaluate",
                         where="--what")
    n_hide = max(1, int(round(hide * pool.size)))
    per_method: dict[tuple, list[dict]] = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        hidden = np.sort(rng.choice(pool, n_hide, replace=False))
        train = known.copy()
        train[hidden] = False
        view = TrainView(task, train)
        for method in (methods if methods is not None else default_methods(task.kind, seed)):
            pred = method.predict(view, hidden)
            key = (method.name_for(task.kind), getattr(method, "k", None))
            score = _score(task, hidden, pred)
            if hasattr(method, "chosen_"):
                score["chosen"], score["inner_score"] = method.chosen_, method.inner_score_
            per_method.setdefault(key, []).append(score)
    results = []
    for (name, k), scores in per_method.items():
        row = {"method": name}
        if k is not None:
            row["k"] = k
        row["n"] = int(sum(s["n"] for s in scores))
        for choice in ("chosen", "inner_score"):
            picked = [s.pop(choice) for s in scores if choice in s]
            if picked:
                row[choice] = picked
        for metric in scores[0]:
            if metric == "n":
                continue
            vals = np.array([s[metric] for s in scores], dtype=np.float64)
            row[metric] = float(np.nanmean(vals)) if not np.isnan(vals).all() else float("nan")
            if metric in ("accuracy", "mae", "mse"):
                row[f"{metric}_std"] = float(np.nanstd(vals)) if len(vals) > 1 else 0.0
        results.append(row)
    return {"what": task.what, "kind": task.kind, "known": int(known.sum()), "hidden_per_seed": n_hide,
            "seeds": list(seeds), "hide": hide, "results": results}


def _score(task: ImputationTask, hidden: np.ndarray, pred) -> dict:
    coverage = float(np.mean(pred.covered)) if hidden.size else float("nan")
    cov = pred.covered
    nan = float("nan")
    if task.kind == "attribute":
        hit = pred.value == task.codes[hidden]
        return {"n": hidden.size, "accuracy": float(np.mean(hit)), "coverage": coverage,
                "accuracy_covered": float(np.mean(hit[cov])) if cov.any() else nan}
    truth = task.values[hidden]
    err = pred.value - truth
    corr = float("nan")
    if hidden.size > 2 and np.std(pred.value) > 0 and np.std(truth) > 0:
        corr = float(np.corrcoef(pred.value, truth)[0, 1])
    return {"n": hidden.size, "mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err))),
            "correlation": corr, "coverage": coverage,
            "mae_covered": float(np.mean(np.abs(err[cov]))) if cov.any() else nan}
