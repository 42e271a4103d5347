"""Evaluation of charting methods: the Model Atlas protocol and MoTHer's edge accuracy.

* Model Atlas (App. C.1): in every connected component a random 10% of the models, with their
  true parents, is given as a known *stem*; accuracy is the share of the other 90% whose
  predicted parent set equals the true one (a root is right when predicted as a root).
* MoTHer (Sec. 6): correct edges (placement and direction) over ground-truth edges.

Both are averaged over several seeds (mean and standard deviation), overall and per pattern
(root, finetune, lora, quantized, duplicate, snake, fan, merge), with a reliability table of the
predicted confidences.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from modelatlas.chart.base import ChartInput, ChartMethod, ChartResult
from modelatlas.chart.synthetic import GroundTruth


def sample_stem(truth: GroundTruth, *, fraction: float = 0.1, seed: int = 0) -> dict[int, tuple[int, ...]]:
    """A random ``fraction`` of each component (at least one model) with its true parents."""
    rng = np.random.default_rng(seed)
    known: dict[int, tuple[int, ...]] = {}
    for c in np.unique(truth.component):
        rows = [i for i in np.flatnonzero(truth.component == c) if truth.parents[i] is not None]
        if not rows:
            continue
        k = max(1, int(round(fraction * len(rows))))
        for i in rng.choice(rows, size=min(k, len(rows)), replace=False):
            known[int(i)] = tuple(truth.parents[int(i)])
    return known


def correct_mask(result: ChartResult, truth: GroundTruth) -> np.ndarray:
    """Per model: predicted parent set equals the true one (``False`` where truth is unknown)."""
    predicted = result.parent_sets()
    return np.array([p is not None and frozenset(p) == predicted.get(i, frozenset())
                     for i, p in enumerate(truth.parents)])


def accuracy(result: ChartResult, truth: GroundTruth, stem: dict[int, tuple[int, ...]] | None = None) -> float:
    """Model Atlas accuracy over models with known truth outside the stem."""
    ok = correct_mask(result, truth)
    rows = [i for i, p in enumerate(truth.parents) if p is not None and i not in (stem or {})]
    return float(ok[rows].mean()) if rows else float("nan")


def edge_accuracy(result: ChartResult, truth: GroundTruth) -> float:
    """MoTHer accuracy: true edges predicted with the right placement and direction ÷ true edges."""
    true_edges = {(p, c) for c, ps in enumerate(truth.parents) if ps for p in ps}
    pred = set(zip(result.parent.tolist(), result.child.tolist()))
    return len(true_edges & pred) / len(true_edges) if true_edges else float("nan")


def reliability(result: ChartResult, truth: GroundTruth, bins: int = 5) -> list[dict]:
    """Mean confidence vs. observed accuracy of predicted parent sets, in confidence bins."""
    ok = correct_mask(result, truth)
    conf: dict[int, float] = {}
    for c, v in zip(result.child.tolist(), result.confidence.tolist()):
        conf[c] = min(conf.get(c, 1.0), v)
    kids = np.array(sorted(conf), dtype=np.int64)
    if not len(kids):
        return []
    cv = np.array([conf[k] for k in kids])
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (cv >= lo) & ((cv < hi) if hi < 1 else (cv <= hi))
        if m.any():
            out.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(m.sum()),
                        "confidence": float(cv[m].mean()), "accuracy": float(ok[kids[m]].mean())})
    return out


@dataclass
class Evaluation:
    """Scores of one method on one set of models, over several seeds."""

    method: str
    accuracy: float
    accuracy_std: float
    edge_accuracy: float
    seconds: float
    per_pattern: dict[str, float] = field(default_factory=dict)
    per_seed: list[float] = field(default_factory=list)
    reliability: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def evaluate(method: ChartMethod, models: ChartInput, truth: GroundTruth, *, seeds=(0, 1, 2),
             fraction: float = 0.1, components_known: bool = True) -> Evaluation:
    """Chart ``models`` once per seed (a new stem each time) and score the predictions.

    Parameters
    ----------
    components_known:
        Give every method the true components (the paper's per-component protocol); when false
        methods must separate families themselves.
    """
    models = _with_components(models, truth if components_known else None)
    accs, edge_accs, secs = [], [], []
    pattern_ok: dict[str, list[float]] = {}
    rel: list[dict] = []
    messages: list[str] = []
    for seed in seeds:
        stem = sample_stem(truth, fraction=fraction, seed=seed)
        t0 = time.perf_counter()
        if hasattr(method, "random_state"):
            method.set_params(random_state=seed)
        result = method.chart(models, known_edges=stem)
        secs.append(time.perf_counter() - t0)
        messages = result.messages
        accs.append(accuracy(result, truth, stem))
        edge_accs.append(edge_accuracy(result, truth))
        ok = correct_mask(result, truth)
        for i, pat in enumerate(truth.pattern):
            if i not in stem and truth.parents[i] is not None and pat:
                pattern_ok.setdefault(pat, []).append(float(ok[i]))
        rel = reliability(result, truth)
    return Evaluation(method=method.name, accuracy=float(np.mean(accs)), accuracy_std=float(np.std(accs)),
                      edge_accuracy=float(np.mean(edge_accs)), seconds=float(np.median(secs)),
                      per_pattern={k: float(np.mean(v)) for k, v in sorted(pattern_ok.items())},
                      per_seed=[float(a) for a in accs], reliability=rel, messages=messages)


def _with_components(models: ChartInput, truth: GroundTruth | None) -> ChartInput:
    from dataclasses import replace

    return replace(models, components=None if truth is None else np.asarray(truth.component))
