"""Evaluation of charting methods: the Model Atlas protocol and MoTHer's edge accuracy.

* Model Atlas (App. C.1): in every connected component a random 10% of the models, with their
  true parents, is given as a known *stem*; accuracy is the share of the other 90% whose
  predicted parent set equals the true one (a root is right when predicted as a root).
* MoTHer (Sec. 6): correct edges (placement and direction) over ground-truth edges.

Both are averaged over several seeds (mean and standard deviation), overall and per pattern
(root, finetune, lora, quantized, duplicate, snake, fan, merge), with a reliability table and the
expected calibration error of the predicted confidences pooled over every seed. Stem models are
never scored: every method returns their edges unchanged, so counting them would lift every
method alike (the random baseline's edge accuracy reads 12.7% with the stem's edges, 2.5% without).
The caller's estimator is never modified: each seed charts with a copy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from modelatlas.chart.estimator import ChartMethod
from modelatlas.chart.types import ChartInput, ChartResult, GroundTruth


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


def edge_accuracy(result: ChartResult, truth: GroundTruth, stem: dict[int, tuple[int, ...]] | None = None) -> float:
    """MoTHer accuracy: true edges into models outside the stem predicted with the right placement
    and direction ÷ those true edges."""
    stem = stem or {}
    true_edges = {(p, c) for c, ps in enumerate(truth.parents) if ps and c not in stem for p in ps}
    pred = set(zip(result.parent.tolist(), result.child.tolist()))
    return len(true_edges & pred) / len(true_edges) if true_edges else float("nan")


def confidence_outcomes(result: ChartResult, truth: GroundTruth,
                        stem: dict[int, tuple[int, ...]] | None = None) -> np.ndarray:
    """``(confidence, right)`` of every scored model that has a predicted parent (``k x 2``).

    A model's confidence is its least confident edge (a merge is right only when every parent is);
    stem models and models of unknown truth are left out.
    """
    ok = correct_mask(result, truth)
    conf: dict[int, float] = {}
    for c, v in zip(result.child.tolist(), result.confidence.tolist()):
        conf[c] = min(conf.get(c, 1.0), v)
    kids = [k for k in sorted(conf) if k not in (stem or {}) and truth.parents[k] is not None]
    return np.array([(conf[k], float(ok[k])) for k in kids], dtype=np.float64).reshape(-1, 2)


def reliability(outcomes: np.ndarray, bins: int = 5) -> list[dict]:
    """Mean confidence vs. observed accuracy in confidence bins, from :func:`confidence_outcomes`."""
    cv, ok = outcomes[:, 0], outcomes[:, 1]
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (cv >= lo) & ((cv < hi) if hi < 1 else (cv <= hi))
        if m.any():
            out.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(m.sum()),
                        "confidence": float(cv[m].mean()), "accuracy": float(ok[m].mean())})
    return out


def calibration_error(outcomes: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: ``Σ_b (n_b / N) |accuracy_b - confidence_b|`` over equal-width
    confidence bins (Guo et al., "On Calibration of Modern Neural Networks", 2017); ``nan`` when
    nothing was predicted."""
    if not len(outcomes):
        return float("nan")
    return float(sum(r["n"] * abs(r["accuracy"] - r["confidence"]) for r in reliability(outcomes, bins))
                 / len(outcomes))


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
    calibration_error: float = float("nan")
    outcomes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    pattern_outcomes: dict[str, list[float]] = field(default_factory=dict, repr=False)
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The scores as plain values (the raw outcomes left out)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("outcomes", "pattern_outcomes")}


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
    outcomes: list[np.ndarray] = []
    messages: list[str] = []
    for seed in seeds:
        stem = sample_stem(truth, fraction=fraction, seed=seed)
        estimator = type(method)(**method.get_params())
        if "random_state" in estimator.get_params():
            estimator.set_params(random_state=seed)
        t0 = time.perf_counter()
        result = estimator.chart(models, known_edges=stem)
        secs.append(time.perf_counter() - t0)
        messages = list(dict.fromkeys(messages + result.messages))
        accs.append(accuracy(result, truth, stem))
        edge_accs.append(edge_accuracy(result, truth, stem))
        ok = correct_mask(result, truth)
        for i, pat in enumerate(truth.pattern):
            if i not in stem and truth.parents[i] is not None and pat:
                pattern_ok.setdefault(pat, []).append(float(ok[i]))
        outcomes.append(confidence_outcomes(result, truth, stem))
    pooled = np.concatenate(outcomes) if outcomes else np.zeros((0, 2))
    return Evaluation(method=method.name, accuracy=float(np.mean(accs)), accuracy_std=float(np.std(accs)),
                      edge_accuracy=float(np.mean(edge_accs)), seconds=float(np.median(secs)),
                      per_pattern={k: float(np.mean(v)) for k, v in sorted(pattern_ok.items())},
                      per_seed=[float(a) for a in accs], reliability=reliability(pooled),
                      calibration_error=calibration_error(pooled), outcomes=pooled,
                      pattern_outcomes=pattern_ok, messages=messages)


def _with_components(models: ChartInput, truth: GroundTruth | None) -> ChartInput:
    from dataclasses import replace

    return replace(models, components=None if truth is None else np.asarray(truth.component))
