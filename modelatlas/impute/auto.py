"""Our stronger imputer (``auto``): the best of the paper's graph methods and a boosted learner,
chosen by nested cross-validation on the training values.

The paper's methods each read one signal (the hub, or the k nearest labelled models). ``auto``
adds a learner that stacks them: for every node it computes, from the *training* values only,

* graph signals — the hub vote / mean, the 1..5 nearest labelled models' vote / means and the
  distance to the nearest, the component's and the author's vote / mean, a labelled parent's value;
* the model's own metadata — the other Table 1b attributes, modality, quantisation and card flags,
  depth, in/out degree, log downloads, log parameters, creation time.

Training nodes get leave-one-out versions of the graph signals (their own value never votes for
itself), so the learner sees the same kind of evidence it will see at prediction time. The learner
is scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier` /
``Regressor`` (native missing values and categorical features). Where it predicts a rare label it
was not trained to name, the 5-NN vote stands in.

The learner does not win everywhere (a licence often follows the hub more closely than any feature
mix learnt from a few hundred examples), so ``auto`` chooses among the learner, the hub vote, the
component vote and graph kNN (k = 1, 3, 5) by ``inner_folds``-fold cross-validation over the
training values it is given: each candidate predicts every fold from the other folds, and the one
with the best score over all folds predicts the query from all training values. Only the training
values of the view take part, so under :func:`~modelatlas.impute.evaluate.evaluate` the selection
never sees the outer test fold (nested validation). An earlier version chose on one held-out fifth
(a few hundred values) and fell below the best single method (docs/REPRODUCTION.md, "Imputation").
``chosen_`` names the winner, ``inner_score_`` its cross-validated score (accuracy, or MAE for
metrics) and ``inner_scores_`` every candidate's, with the standard error over folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval

from modelatlas.errors import InputError
from modelatlas.impute.base import ImputationMethod, register
from modelatlas.impute.global_baseline import ComponentVote
from modelatlas.impute.graph_knn import GraphKNN
from modelatlas.impute.group_vote import group_mean, group_vote, row_vote
from modelatlas.impute.hub_vote import HubVote
from modelatlas.impute.task import PAPER_ATTRIBUTES, Prediction
from modelatlas.impute.view import TrainView

#: Most frequent labels the classifier names (the rest are "rare"); also the cap on metadata codes.
TOP_LABELS = 40
#: Training rows at most (a random sample beyond this keeps fitting to seconds at 2M nodes).
MAX_TRAIN = 60_000
#: Below this many training values the learner is not fitted and the 5-NN vote answers.
MIN_TRAIN = 20
#: From this many training values on, ``auto`` selects its method by cross-validation; below, the
#: first candidate answers (the learner, which falls back to the 5-NN vote under :data:`MIN_TRAIN`).
MIN_SELECT = 50
#: Training values scored across the inner folds at most (a random sample beyond this).
MAX_SELECT = 20_000
#: The learner's name among the candidates.
BOOSTED = "boosted"


@register
class AutoImputer(ImputationMethod):
    """The best of several imputation methods, chosen by cross-validation on the training values.

    Parameters
    ----------
    random_state : int, default 0
        Seed of the folds, the training sample and the learner.
    max_iter : int, default 80
        Boosting iterations of the learner.
    n_threads : int, default 1
        OpenMP threads for the learner. One by default: on a shared, oversubscribed machine
        OpenMP's spinning threads made a 12-second fit take ten minutes.
    inner_folds : int, default 3
        Folds of the selection's cross-validation (at least 2). Every training value is scored
        once whatever the number of folds, so more folds mostly cost more learner fits.
    candidates : sequence or None, default None
        Imputation methods to choose from, and ``"boosted"`` for the learner; ``None``: the learner,
        the hub vote, the component vote and graph kNN with k = 1, 3, 5. Ties go to the earlier one.

    Attributes
    ----------
    chosen_ : str
        The candidate that predicted the last query (``graph_knn_k3``, ``boosted``...).
    inner_score_ : float
        Its cross-validated accuracy (attributes) or mean absolute error (metrics); NaN when there
        were too few training values to select (:data:`MIN_SELECT`).
    inner_scores_ : dict
        Every candidate's ``{"score": ..., "se": ...}`` (standard error over the folds).
    """

    name = "auto"
    _parameter_constraints = {"random_state": [Interval(Integral, 0, None, closed="left")],
                              "max_iter": [Interval(Integral, 1, None, closed="left")],
                              "n_threads": [Interval(Integral, 1, None, closed="left")],
                              "inner_folds": [Interval(Integral, 2, None, closed="left")],
                              "candidates": [list, tuple, None]}

    def __init__(self, random_state: int = 0, max_iter: int = 80, n_threads: int = 1, inner_folds: int = 3,
                 candidates: Sequence | None = None):
        self.random_state = random_state
        self.max_iter = max_iter
        self.n_threads = n_threads
        self.inner_folds = inner_folds
        self.candidates = candidates

    def predict(self, view: TrainView, query: np.ndarray) -> Prediction:
        from threadpoolctl import threadpool_limits

        self._validate_params()
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            return self._predict(view, query)

    def _candidates(self, kind: str) -> dict:
        """Candidate name -> ``predict(view, query)``."""
        chosen_from = self.candidates if self.candidates is not None else \
            (BOOSTED, HubVote(), ComponentVote(), GraphKNN(1), GraphKNN(3), GraphKNN(5))
        out = {}
        for method in chosen_from:
            if isinstance(method, str):
                if method != BOOSTED:
                    raise InputError(f"auto's candidates are imputation methods or {BOOSTED!r}, not {method!r}")
                out[BOOSTED] = self._boosted
                continue
            name = method.name_for(kind)
            if isinstance(method, GraphKNN):
                name += f"_k{method.k}"
            out[name] = method.predict
        if not out:
            raise InputError("auto needs at least one candidate method")
        return out

    def _predict(self, view: TrainView, query: np.ndarray) -> Prediction:
        candidates = self._candidates(view.task.kind)
        train_idx = np.flatnonzero(view.train)
        if train_idx.size < max(MIN_SELECT, self.inner_folds) or query.size == 0:
            self.chosen_, self.inner_score_, self.inner_scores_ = next(iter(candidates)), float("nan"), {}
            return candidates[self.chosen_](view, query)
        scores = self._cross_validate(view, train_idx, candidates)
        better = -1.0 if view.task.kind == "attribute" else 1.0  # accuracy up, MAE down
        # min() keeps the first of equal scores: ties go to the earlier candidate.
        self.chosen_ = min(scores, key=lambda name: better * scores[name]["score"])
        self.inner_score_ = scores[self.chosen_]["score"]
        self.inner_scores_ = scores
        return candidates[self.chosen_](view, query)

    def _cross_validate(self, view: TrainView, train_idx: np.ndarray, candidates: dict) -> dict:
        """Every candidate's score over ``inner_folds`` folds of the training values: each fold is
        hidden in turn and predicted from the view's other training values only."""
        task = view.task
        rng = np.random.default_rng(self.random_state + 1)
        pool = rng.permutation(train_idx)[:MAX_SELECT]
        per_fold: dict[str, list[float]] = {name: [] for name in candidates}
        sizes = []
        for fold in np.array_split(pool, self.inner_folds):
            fold = np.sort(fold)
            inner = view.train.copy()
            inner[fold] = False
            inner_view = TrainView(task, inner)
            sizes.append(fold.size)
            for name, predict in candidates.items():
                value = predict(inner_view, fold).value
                per_fold[name].append(float(np.mean(value == task.codes[fold])) if task.kind == "attribute"
                                      else float(np.mean(np.abs(value - task.values[fold]))))
        weights = np.asarray(sizes, dtype=np.float64)
        out = {}
        for name, values in per_fold.items():
            v = np.asarray(values)
            out[name] = {"score": float(np.average(v, weights=weights)),
                         "se": float(np.std(v, ddof=1) / np.sqrt(v.size))}
        return out

    def _boosted(self, view: TrainView, query: np.ndarray) -> Prediction:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        task = view.task
        rng = np.random.default_rng(self.random_state)
        train_idx = np.flatnonzero(view.train)
        if train_idx.size > MAX_TRAIN:
            train_idx = np.sort(rng.choice(train_idx, MAX_TRAIN, replace=False))
        knn = GraphKNN(5).predict(view, query)
        if train_idx.size < MIN_TRAIN or query.size == 0:
            return knn
        features, categorical = self._features(view, np.concatenate([train_idx, query]), train_idx.size)
        # Columns with no value among the training rows carry nothing and break binning.
        used = ~np.isnan(features[: train_idx.size]).all(axis=0)
        features, categorical = features[:, used], categorical[used]
        x_train, x_query = features[: train_idx.size], features[train_idx.size:]
        if task.kind == "metric":
            model = HistGradientBoostingRegressor(max_iter=self.max_iter, categorical_features=categorical,
                                                  random_state=self.random_state)
            model.fit(x_train, task.values[train_idx])
            value = model.predict(x_query)
            return Prediction(value, knn.confidence, np.ones(query.size, dtype=bool))
        y, rare = _cap(task.codes[train_idx], task.codes[view.train])
        if np.unique(y).size < 2:
            return knn
        model = HistGradientBoostingClassifier(max_iter=self.max_iter, categorical_features=categorical,
                                               random_state=self.random_state)
        model.fit(x_train, y)
        proba = model.predict_proba(x_query)
        best = model.classes_[np.argmax(proba, axis=1)]
        conf = proba.max(axis=1)
        value = rare.decode(best)
        fallback = value < 0
        value[fallback], conf[fallback] = knn.value[fallback], knn.confidence[fallback]
        return Prediction(value.astype(np.int64), conf, np.ones(query.size, dtype=bool))

    # ------------------------------------------------------------------ features
    def _features(self, view: TrainView, rows: np.ndarray, n_train: int):
        """Feature matrix for ``rows``; the first ``n_train`` rows are training nodes (leave-one-out)."""
        task, facts = view.task, view.task.facts
        loo = np.zeros(rows.size, dtype=bool)
        loo[:n_train] = True
        cols, cat = [], []

        def add(values, categorical=False):
            cols.append(np.asarray(values, dtype=np.float64))
            cat.append(categorical)

        nearest = view.nearest
        src_plain, dist_plain = nearest.source[rows, :5], nearest.distance[rows, :5]
        shifted = nearest.without_self(5)
        src = np.where(loo[:, None], shifted.source[rows], src_plain)
        dist = np.where(loo[:, None], shifted.distance[rows], dist_plain)
        has = src >= 0
        add(np.where(has[:, 0], dist[:, 0], np.nan))
        groups = {"hub": facts.hubs, "component": facts.components, "author": facts.codes("author")[0]}
        parent_of = np.full(facts.n, -1, dtype=np.int64)
        g = facts.graph
        labelled_parent = view.train[g.parent]
        parent_of[g.child[labelled_parent]] = g.parent[labelled_parent]
        if task.kind == "metric":
            vals = np.where(has, task.values[np.maximum(src, 0)], 0.0)
            csum, ccount = np.cumsum(vals, axis=1), np.cumsum(has, axis=1)
            for k in (1, 2, 3, 5):
                add(np.where(ccount[:, k - 1] > 0, csum[:, k - 1] / np.maximum(ccount[:, k - 1], 1), np.nan))
            for name, grp in groups.items():
                plain, _ = group_mean(grp, task.values, view.train)
                left, _ = group_mean(grp, task.values, view.train, leave_one_out=True)
                add(np.where(loo, left[rows], plain[rows]))
            p = parent_of[rows]
            add(np.where(p >= 0, task.values[np.maximum(p, 0)], np.nan))
        else:
            capped, _ = _cap(task.codes, task.codes[view.train])
            labels = np.where(has, capped[np.maximum(src, 0)], -1)
            for k in (1, 5):
                label, share = row_vote(labels[:, :k])
                add(np.where(label >= 0, label, np.nan), True)
                add(share)
            for name, grp in groups.items():
                plain = group_vote(grp, capped, view.train)
                left = group_vote(grp, capped, view.train, leave_one_out=True)
                label = np.where(loo, left[0][rows], plain[0][rows])
                add(np.where(label >= 0, label, np.nan), True)
                add(np.where(loo, left[1][rows], plain[1][rows]))
                add(np.where(loo, left[2][rows], plain[2][rows]))
            p = parent_of[rows]
            add(np.where(p >= 0, capped[np.maximum(p, 0)], np.nan), True)
            add(np.where(p >= 0, capped[np.maximum(p, 0)], -1) >= 0)
        # The model's own metadata.
        for name in PAPER_ATTRIBUTES + ("modality",):
            if name == task.what:
                continue
            codes = _by_frequency(facts.codes(name)[0])
            capped = np.where(codes < TOP_LABELS, codes, TOP_LABELS)
            add(np.where(codes >= 0, capped, np.nan)[rows], True)
        for name in ("quantized", "card_present"):
            add(facts.flag(name)[rows])
        add(facts.depth[rows])
        add(g.in_degree[rows])
        add(g.out_degree[rows])
        add(np.log1p(facts.downloads[rows]))
        params = facts.atlas.column("params").astype(np.float64)[rows]
        add(np.log1p(np.where(params > 0, params, np.nan)))
        add(facts.created_at[rows] / 3.15576e7)  # years since 1970
        return np.column_stack(cols), np.array(cat)


class _Rare:
    def __init__(self, keep: np.ndarray):
        self.keep = keep

    def decode(self, capped: np.ndarray) -> np.ndarray:
        out = np.full(capped.size, -1, dtype=np.int64)
        ok = capped < self.keep.size
        out[ok] = self.keep[capped[ok]]
        return out


def _cap(codes: np.ndarray, reference: np.ndarray):
    """Recode labels by frequency in ``reference``: the :data:`TOP_LABELS` most frequent keep a code
    ``0..TOP_LABELS-1``, the rest become ``TOP_LABELS``; unknown stays -1."""
    counts = np.bincount(reference[reference >= 0], minlength=int(codes.max(initial=0)) + 1)
    keep = np.argsort(-counts, kind="stable")[:TOP_LABELS]
    keep = keep[counts[keep] > 0]
    remap = np.full(counts.size, TOP_LABELS, dtype=np.int64)
    remap[keep] = np.arange(keep.size)
    out = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    return out, _Rare(keep)


def _by_frequency(codes: np.ndarray) -> np.ndarray:
    """Recode so that 0 is the most frequent label (-1 stays)."""
    counts = np.bincount(codes[codes >= 0], minlength=int(codes.max(initial=-1)) + 1)
    if counts.size == 0:
        return codes
    rank = np.empty(counts.size, dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(counts.size)
    return np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
