"""``auto``: our charting method (the recommended default).

Models are charted one at a time in upload order (or, without usable times, breadth-first over the
fingerprints' minimum spanning forest from roots chosen by MoTHer's kurtosis score,
:mod:`modelatlas.chart.tree_order`); each model only looks at models charted before it,
so adding models one by one gives the same graph as charting them all at once
(:class:`OnlineCharter`). The default parent is the **nearest earlier related model**; only strong
evidence overrides it. For each model, the first rule that applies decides:

1. **known** parents (stem, documented merges) are kept;
2. **duplicate**: an earlier model with the same content hash or the same fingerprint — or whose
   fingerprint rounded to the model's own storage dtype is the model's (a copy converted to fp16
   or bf16) — is the parent;
3. candidates: the ``n_candidates`` nearest earlier models that are not quantised
   (:class:`~modelatlas.chart.neighbors.GrowingIndex`, exact then HNSW);
4. **LoRA**: of the ``lora_candidates`` nearest candidates, the one whose difference is simplest
   (lowest total rank above the storage dtype's noise floor, nearest on ties), when that
   difference is an adapter update, rank judged against the adapter's own rank
   (:mod:`modelatlas.chart.low_rank`) — relation ``adapter``. A low-rank difference is itself
   proof of kinship, so it comes before the root decision. It proves no direction, except when
   the two are stored at different precisions and the update is exact at the finer one's: the
   finer end is then the descendant, and such a candidate is dropped for every rule;
5. **root**: no candidate is related — their sampled neurons do not match their own rows in the
   model (neuron alignment, :mod:`modelatlas.chart.alignment`), a test that does not depend on how
   far training moved the weights. Unrelated candidates are dropped from the rules below, and so
   are (rule ``frozen``, :mod:`modelatlas.chart.frozen`) candidates that differ in a layer the model
   shares bit for bit with another candidate: a frozen layer is inherited, so such a candidate is
   not the parent (a sibling of one partial fine-tuning recipe);
6. **quantised** (flag, or few distinct values): the nearest related candidate, relation ``quantized``;
7. **merge**: the model is (almost) a convex combination of two or three of its
   ``merge_candidates`` nearest related earlier models (simplex-constrained least squares),
   residual below ``merge_residual`` × the nearest distance; or exactly a task-arithmetic merge
   over a charted ancestor; or a sparsified merge (TIES, DARE: :mod:`modelatlas.chart.sparse_merge`);
8. **fine-tune**: the nearest related candidate.

Then the plain fine-tune parents and roots are re-decided together (rule ``joint``,
:mod:`modelatlas.chart.joint`), and a model ``y`` charted as the child of ``x``, itself a child of
``p``, is re-attached to ``p`` when it does not carry the part of ``x``'s update that is ``x``'s own
(rule ``fans``, :mod:`modelatlas.chart.fans`: sweep siblings chained by "nearest").

There is no rule on the sign of successive updates, on step-size ratios or on time gaps: each of
those was read off one zoo generator and inverted on others (docs/chart.md, "What generalises").

Each edge gets a raw score (the margin of its rule), turned into a probability together with the
decision's context (dated or not, runner-up margin, sweep siblings, storage dtype) by one logistic
model (:mod:`modelatlas.chart.calibration`); the benchmark fits it without the family it scores
(:mod:`modelatlas.chart.families`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from itertools import combinations
from numbers import Integral, Real

import ml_dtypes
import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from modelatlas.chart.alignment import alignment_testable, alignment_z, unit_rows
from modelatlas.chart.distances import kurtosis_score, stage_from_known
from modelatlas.chart.estimator import ChartMethod, SubsetOf, register
from modelatlas.chart.frozen import copy_directions, frozen_exclusions
from modelatlas.chart.low_rank import adapter_evidence, significant_bits
from modelatlas.chart.neighbors import GrowingIndex
from modelatlas.chart.sparse_merge import ALPHA, half_ulp, sparse_merge
from modelatlas.chart.tree_order import known_parents_first, partly_timed_order, spanning_tree_order
from modelatlas.chart.types import ChartInput, ChartResult, LayerBlock
from modelatlas.errors import InputError


#: The merge rule looks for parents among this many of the convex fit's largest weights.
MERGE_SUPPORT = 6
#: Task-arithmetic merges (``OnlineCharter._task_arithmetic``): parents among this many nearest
#: related candidates, bases among the charted ancestors of the nearest few.
TASK_CANDIDATES = 16
TASK_BASES_FROM = 4
#: What "fits as well" (``OnlineCharter._as_well``) allows beyond the nested-model test: this many
#: units in the last place of the model's storage dtype, times the model's norm (exact merges
#: leave 0.4 of them: the rounding of the stored weights; docs/BENCHMARKS.md).
ROUNDING_UNITS = 1.0


@register
class Auto(ChartMethod):
    """Nearest earlier related model, overridden on strong evidence; see the module docstring.

    Parameters
    ----------
    n_candidates:
        Earlier neighbours examined per model.
    align_z:
        Neuron-alignment statistic above which a candidate counts as related (a significance level:
        the statistic is about standard normal for unrelated models).
    root_distance:
        Relative distance above which a candidate counts as unrelated, used only for fingerprint
        layouts that alignment cannot test (fewer than four sampled rows per layer).
    lora_candidates:
        Nearest candidates given the low-rank test.
    merge_residual:
        Largest residual of the convex fit, relative to the nearest distance, for a merge.
    merge_candidates:
        Earlier neighbours offered to the convex fit (merge parents can be far apart).
    merge_min_weight:
        Smallest weight of a merge parent in the convex fit.
    time_penalty:
        The ``joint`` rule's relative extra cost of a parent that comes after its child in the
        processing order (:mod:`modelatlas.chart.joint`).
    fan_share:
        The ``fans`` rule speaks only when the part of ``x``'s update that other models do not
        explain is at least this share of it (norm ratio; :mod:`modelatlas.chart.fans`).
    geometry:
        Where "nearest" is measured: ``"layer"`` (each layer scaled to unit norm) or ``"raw"``.
    order:
        ``"auto"`` (time when usable, else ``fallback``), ``"time"``, ``"tree"`` (the spanning-forest
        order of :mod:`modelatlas.chart.tree_order`) or ``"kurtosis"`` (MoTHer's score alone).
    fallback:
        The order without usable times when ``order="auto"``: ``"tree"`` or ``"kurtosis"``.
    exact_up_to:
        Exact neighbour search up to this many models, HNSW beyond.
    rules:
        Rules switched on (for the ablation table): any of ``known``, ``duplicates``, ``lora``,
        ``roots``, ``frozen``, ``quantized``, ``merges``, ``joint``, ``fans``.
    calibrate:
        Turn raw scores into calibrated probabilities.
    calibration:
        Calibration model to use (a :func:`~modelatlas.chart.calibration.fit_calibration` table);
        ``None``: the one shipped with the package.
    """

    name = "auto"
    RULES = ("known", "duplicates", "lora", "roots", "frozen", "quantized", "merges", "joint", "fans")
    ORDERS = ("auto", "time", "tree", "kurtosis")
    _parameter_constraints = {
        "n_candidates": [Interval(Integral, 1, None, closed="left")],
        "align_z": [Interval(Real, 0, None, closed="neither")],
        "root_distance": [Interval(Real, 0, None, closed="neither")],
        "lora_candidates": [Interval(Integral, 1, None, closed="left")],
        "merge_residual": [Interval(Real, 0, None, closed="neither")],
        "merge_candidates": [Interval(Integral, 2, None, closed="left")],  # a merge has two parents or more
        "merge_min_weight": [Interval(Real, 0, 1, closed="left")],
        "time_penalty": [Interval(Real, 0, None, closed="left")],
        "fan_share": [Interval(Real, 0, 1, closed="both")],
        "geometry": [StrOptions({"layer", "raw"})],
        "order": [StrOptions(set(ORDERS))],
        "fallback": [StrOptions({"tree", "kurtosis"})],
        "exact_up_to": [Interval(Integral, 0, None, closed="left")],
        "rules": [SubsetOf(RULES)],
        "calibrate": ["boolean"],
        "calibration": [dict, None],
    }

    def __init__(self, n_candidates: int = 8, align_z: float = 6.0, root_distance: float = 0.6,
                 lora_candidates: int = 8, merge_residual: float = 0.1, merge_candidates: int = 48,
                 merge_min_weight: float = 0.05, time_penalty: float = 4.0, fan_share: float = 0.25,
                 geometry: str = "layer", order: str = "auto",
                 fallback: str = "tree",
                 exact_up_to: int = 1000, rules: tuple[str, ...] = RULES, calibrate: bool = True,
                 calibration: dict | None = None):
        self.n_candidates = n_candidates
        self.align_z = align_z
        self.root_distance = root_distance
        self.lora_candidates = lora_candidates
        self.merge_residual = merge_residual
        self.merge_candidates = merge_candidates
        self.merge_min_weight = merge_min_weight
        self.time_penalty = time_penalty
        self.fan_share = fan_share
        self.geometry = geometry
        self.order = order
        self.fallback = fallback
        self.exact_up_to = exact_up_to
        self.rules = tuple(rules)
        self.calibrate = calibrate
        self.calibration = calibration

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        result = self.charter(models, known).result()
        if self.order == "auto" and not models.has_times:
            how = ("breadth-first over the fingerprints' spanning forest, from roots chosen by the kurtosis score"
                   if self.fallback == "tree" else "in kurtosis order (parents first)")
            result.messages.append(f"{len(models)} models without distinct upload times: models are decided {how}")
        return result

    def charter(self, models: ChartInput, known: dict[int, tuple[int, ...]] | None = None) -> "OnlineCharter":
        """Chart ``models`` (one architecture) and return the charter's state.

        The nearest earlier neighbours of all models are found in bulk
        (:func:`~modelatlas.chart.neighbors.earlier_neighbors`), then models are decided one by one.
        """
        from modelatlas.chart.neighbors import earlier_neighbors

        given = dict(models.documented_parents) if "known" in self.rules else {}
        given.update(known or {})
        order = self.processing_order(models, given)
        charter = OnlineCharter(self, models.vectors.shape[1], models.layers, capacity=len(models), bulk=True)
        eligible = charter.eligibility(models, order)
        k = max(self.n_candidates, self.merge_candidates)
        near, near_d = earlier_neighbors(self.geometry_of(models.vectors, models.layers), order, eligible, k,
                                         exact_up_to=self.exact_up_to)
        for i in order.tolist():
            ok = near[i] >= 0
            charter.add(i, models.vectors[i], quantized=bool(models.quantized[i]),
                        content_hash=models.content_hashes[i], parents=given.get(i),
                        neighbors=(near[i][ok], near_d[i][ok]))
        # kept for the learned pair scorer, which decodes over the same candidates (chart/pair_scorer.py)
        charter.order, charter.eligible = order, eligible
        charter.earlier = (near[:, :self.n_candidates], near_d[:, :self.n_candidates])
        charter.created_at = models.created_at  # (context of each decision, chart/calibration.py)
        if "joint" in self.rules:
            charter.decide_jointly(models, order, eligible, charter.earlier)
        if "fans" in self.rules:
            charter.unchain_fans(order)
        return charter

    def geometry_of(self, vectors: np.ndarray, layers: list[LayerBlock]) -> np.ndarray:
        """The space in which "nearest" is measured: each layer's sampled rows scaled to unit norm
        (``geometry="layer"``: a change of scale shared by siblings — weight decay, a re-normalised
        layer — moves no model towards another), or the raw fingerprints."""
        v = np.asarray(vectors, np.float32)
        if self.geometry == "raw":
            return v
        out = v.copy()
        for b in layers:
            block = out[:, b.offset:b.offset + b.size]
            norm = np.linalg.norm(block, axis=1, keepdims=True)
            block /= np.where(norm > 0, norm, 1.0)
        return out

    def related(self, vectors: np.ndarray, layers: list[LayerBlock], a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether each pair of models ``a[i], b[i]`` is related (the root rule's test)."""
        if "roots" not in self.rules:
            return np.ones(len(a), bool)
        v = np.asarray(vectors, np.float64)
        if alignment_testable(layers):
            units = unit_rows(v, layers)
            return np.array([alignment_z(units[i], units[j][None], layers)[0] >= self.align_z for i, j in zip(a, b)],
                            dtype=bool)
        d = np.linalg.norm(v[a] - v[b], axis=1)
        return d <= self.root_distance * np.maximum(np.maximum(np.linalg.norm(v[a], axis=1),
                                                               np.linalg.norm(v[b], axis=1)), 1e-300)

    def processing_order(self, models: ChartInput, known: dict[int, tuple[int, ...]] | None = None) -> np.ndarray:
        """Upload order; without usable times, breadth-first over the fingerprints' spanning forest
        from each tree's root (:mod:`modelatlas.chart.tree_order`), or (``order="kurtosis"``) the
        kurtosis order of the training stage that the known edges show (parents first: falling
        kurtosis in specialisation). The kurtosis order also picks the trees' roots. In every
        order known parents come before their children (upload times can be noisy)."""
        if self.order not in self.ORDERS or self.fallback not in ("tree", "kurtosis"):
            raise InputError(f"unknown order {self.order!r} / fallback {self.fallback!r}; use one of "
                             f"{', '.join(self.ORDERS)} / tree, kurtosis", where="order")
        order = self.order
        if order == "auto":
            order = "time" if models.has_times else self.fallback
        if order == "time":
            if np.isfinite(models.created_at).all():
                return known_parents_first(models.time_order(), known or {})
            return known_parents_first(partly_timed_order(
                self.geometry_of(models.vectors, models.layers), models.created_at, known or {},
                exact_up_to=self.exact_up_to, leaves=self.leaves(models), ancestry=self.ancestry(models),
                related=lambda a, b: self.related(models.vectors, models.layers, a, b),
                copied=self.copied(models)), known or {})
        score = kurtosis_score(models)
        sign = -1.0 if stage_from_known(score, known or {}) == "specialization" else 1.0
        by_kurtosis = np.argsort(sign * score, kind="stable")
        if order == "kurtosis":
            return known_parents_first(by_kurtosis, known or {})
        rank = np.empty(len(models), np.int64)
        rank[by_kurtosis] = np.arange(len(models))
        order = spanning_tree_order(self.geometry_of(models.vectors, models.layers), rank, known or {},
                                    related=lambda a, b: self.related(models.vectors, models.layers, a, b),
                                    exact_up_to=self.exact_up_to, leaves=self.leaves(models),
                                    copied=self.copied(models), ancestry=self.ancestry(models))
        return known_parents_first(order, known or {})

    def copied(self, models: ChartInput):
        """``copied(a, b)``: for arrays of model indices, which model of each pair the layers copied
        between them show to be upstream (the two columns of
        :func:`~modelatlas.chart.frozen.copy_directions`; rule ``frozen``), or ``None``."""
        if "frozen" not in self.rules:
            return None
        return lambda a, b: copy_directions(models.vectors, a, b, models.layers)

    def ancestry(self, models: ChartInput) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
        """Direction evidence for the spanning trees' roots (:mod:`modelatlas.chart.rooting`, tiers
        *precision* and *rounding*; rule ``lora``, ``None`` without it): ``ancestry(a, b)`` gives,
        per pair of models stored at different precisions whose difference is an adapter update,
        ``1`` where ``a[i]`` is proven (first array) or likely (second) the ancestor of ``b[i]``,
        ``-1`` the reverse — the finer end proven the descendant when the update is exact at its
        dtype, else the coarser end likely (:mod:`modelatlas.chart.low_rank`)."""
        if "lora" not in self.rules:
            return None
        bits = np.array([significant_bits(v) for v in models.vectors])
        leaves = self.leaves(models)

        def ancestry(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            proven, likely = np.zeros(len(a), np.int64), np.zeros(len(a), np.int64)
            for k in np.flatnonzero((bits[a] != bits[b]) & ~leaves[a] & ~leaves[b]).tolist():
                (ev,) = adapter_evidence(models.vectors[a[k]], models.vectors[b[k]][None], models.layers,
                                         model_bits=bits[a[k]], candidate_bits=bits[b[k]])
                if ev.descendant is not None:
                    proven[k] = 1 if ev.descendant == "candidate" else -1
                elif ev.is_adapter:  # the coarser end was likely rounded last
                    likely[k] = 1 if bits[a[k]] > bits[b[k]] else -1
            return proven, likely

        return ancestry

    def leaves(self, models: ChartInput) -> np.ndarray:
        """Which models are never parents: quantised, flagged or by the quantised rule's test
        (evidence for the spanning trees' roots, :mod:`modelatlas.chart.rooting`).

        Returns
        -------
        numpy.ndarray
            Boolean mask, one entry per model.
        """
        return np.array([bool(q) or ("quantized" in self.rules and looks_quantized(v))
                         for q, v in zip(models.quantized, models.vectors)], dtype=bool)


class OnlineCharter:
    """Charts models as they arrive (the state behind :class:`Auto`).

    ``add`` decides a model's parents from the models added before it and never revisits them.
    Quantised models and exact duplicates (same content hash or same fingerprint bytes as an
    earlier model) are leaves: never offered as candidates, as in Algorithm 1.
    """

    def __init__(self, method: Auto, dim: int, layers, *, capacity: int = 1024, bulk: bool = False):
        self.m = method
        self.layers = layers
        self.alignment_testable = alignment_testable(layers)
        self.index = None if bulk else GrowingIndex(dim, exact_up_to=method.exact_up_to)
        self.vecs = np.zeros((max(capacity, 1), dim))
        self.units = np.zeros((max(capacity, 1), unit_rows(np.zeros(dim), layers).shape[1]))
        self.bits = np.zeros(max(capacity, 1), np.int64)
        self.row: dict[int, int] = {}
        self.norm: dict[int, float] = {}
        self.parents: dict[int, tuple[int, ...]] = {}
        self.relation: dict[int, str] = {}
        self.kind: dict[int, str] = {}
        self.score: dict[int, float] = {}
        self.hashes: dict[str, int] = {}
        # set by Auto.charter: bulk neighbour lists and upload times (context for the confidences)
        self.earlier: tuple[np.ndarray, np.ndarray] | None = None
        self.created_at: np.ndarray | None = None

    def _is_quantized(self, v: np.ndarray, flagged: bool) -> bool:
        return flagged or ("quantized" in self.m.rules and looks_quantized(v))

    @staticmethod
    def _keys(v: np.ndarray, content_hash: str | None) -> tuple[list[str], list[str]]:
        """Duplicate keys: the ones a model is looked up by, and the ones it is registered under.

        Besides its exact bytes and content hash, a model is registered under its values rounded
        to fp16 and to bf16, and looked up at its own storage precision: a copy converted to a
        coarser dtype (an F16 safetensors of a dequantised GGUF) is a duplicate of its source.
        """
        def key(prefix: str, a: np.ndarray) -> str:
            return prefix + hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=16).hexdigest()

        v32 = np.asarray(v, np.float32)
        exact = [key("v:", v32)] + ([f"h:{content_hash}"] if content_hash is not None else [])
        with np.errstate(over="ignore", invalid="ignore"):
            rounded = {bits: key(f"r{bits}:", v32.astype(dtype).astype(np.float32))
                       for bits, dtype in ((8, ml_dtypes.bfloat16), (11, np.float16))}
        bits = significant_bits(v32)
        return exact + ([rounded[bits]] if bits in rounded else []), exact + list(rounded.values())

    def eligibility(self, models: ChartInput, order: np.ndarray) -> np.ndarray:
        """Which models may be candidates (neither quantised nor a duplicate of an earlier one)."""
        ok = np.ones(len(models), bool)
        seen: set[str] = set()
        for i in order.tolist():
            v = models.vectors[i]
            lookup, register = self._keys(v, models.content_hashes[i])
            if self._is_quantized(v, bool(models.quantized[i])) or (
                    "duplicates" in self.m.rules and any(k in seen for k in lookup)):
                ok[i] = False
            seen.update(register)
        return ok

    def add(self, label: int, vector: np.ndarray, *, quantized: bool = False,
            content_hash: str | None = None, parents: tuple[int, ...] | None = None,
            neighbors: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[int, ...]:
        """Chart one model; returns its predicted parents (empty for a root).

        ``neighbors`` (labels and distances of the nearest earlier eligible models, nearest
        first) may be given when computed in bulk; otherwise the growing index is asked.
        """
        v = np.asarray(vector, np.float64)
        quantized = self._is_quantized(v, quantized)
        r = len(self.row)
        if r == len(self.vecs):
            self.vecs = np.vstack([self.vecs, np.zeros_like(self.vecs)])
            self.units = np.vstack([self.units, np.zeros_like(self.units)])
            self.bits = np.concatenate([self.bits, np.zeros_like(self.bits)])
        self.vecs[r] = v
        self.units[r] = unit_rows(v, self.layers)[0]
        self.bits[r] = significant_bits(v)
        self.row[label] = r
        self.norm[label] = float(np.sqrt(v @ v))
        lookup, register = self._keys(v, content_hash)
        duplicate_of = next((self.hashes[k] for k in lookup if k in self.hashes), None)
        if "duplicates" not in self.m.rules:
            duplicate_of = None
        if neighbors is None:
            neighbors = self.index.query(self.m.geometry_of(v[None], self.layers)[0],
                                         max(self.m.n_candidates, self.m.merge_candidates))
        ps, rel, kind, score = self._decide(label, v, quantized, duplicate_of, parents, neighbors)
        if ps:
            self.parents[label] = ps
            self.relation[label] = rel
        self.kind[label] = kind
        self.score[label] = score
        for k in register:
            self.hashes.setdefault(k, label)
        if not quantized and duplicate_of is None and self.index is not None:
            self.index.add(label, self.m.geometry_of(v[None], self.layers)[0])
        return ps

    #: Kinds of decision the joint rule revisits (plain fine-tune parents and roots).
    FREE = ("nearest", "root", "first")

    def decide_jointly(self, models: ChartInput, order: np.ndarray, eligible: np.ndarray,
                       earlier: tuple[np.ndarray, np.ndarray]) -> None:
        """Re-decide the plain fine-tune parents and roots together (:mod:`modelatlas.chart.joint`),
        over each model's nearest earlier candidates (``earlier``: labels and distances, as the first
        pass saw them) and its nearest later ones."""
        from modelatlas.chart.joint import both_ways_neighbours, joint_parents

        n = len(models)
        position = np.empty(n, np.int64)
        position[order] = np.arange(n)
        free = np.array([self.kind[i] in self.FREE for i in range(n)])
        fixed = {i: self.parents.get(i, ()) for i in range(n) if not free[i]}
        neighbours = both_ways_neighbours(self.m.geometry_of(models.vectors, models.layers), position, eligible,
                                          earlier, self.m.n_candidates, exact_up_to=self.m.exact_up_to)

        def related(x, cand):
            below = self._proven_descendants(x, cand)  # neither parents nor witnesses of frozen layers
            ok = self._related(x, self.vecs[self.row[x]], cand)[0] & ~below
            out = self._frozen_out(x, cand, witness=(position[cand] < position[x]) & ~below) & ok
            return ok & ~out if (ok & ~out).any() else ok

        parents = joint_parents(position, free, eligible, fixed, neighbours, related,
                                self.m.time_penalty)
        for i in np.flatnonzero(free).tolist():
            p = parents.get(i)
            before = self.parents.get(i, ())
            if p is None:
                self.parents.pop(i, None)
                self.relation.pop(i, None)
                if before:
                    self.kind[i], self.score[i] = "root", 0.0
            elif before != (p,) and not self._descends_from(p, i):
                # (a merge's other parents are not in the forest: a choice that closes a cycle
                # through them keeps the first pass's parent)
                self.parents[i], self.relation[i] = (p,), "finetune"
                self.kind[i], self.score[i] = "joint", 1.0

    def unchain_fans(self, order: np.ndarray) -> None:
        """Re-attach to ``p`` each plain fine-tune ``y`` charted under ``x`` (itself under ``p``) that
        does not carry ``x``'s own update (:func:`modelatlas.chart.fans.unchain_fans`); the score is
        ``1 - γ``."""
        from modelatlas.chart.fans import unchain_fans

        moved = unchain_fans(order, self.parents, lambda y: self.kind.get(y) in ("nearest", "joint"),
                             lambda i: self.vecs[self.row[i]], min_share=self.m.fan_share,
                             max_others=2 * self.m.n_candidates)
        for y, (_, gamma) in moved.items():
            self.relation[y], self.kind[y], self.score[y] = "finetune", "fan", float(1.0 - max(gamma, 0.0))

    def _descends_from(self, node: int, ancestor: int) -> bool:
        """Whether ``ancestor`` is above ``node`` through the parents decided so far."""
        stack, seen = [node], set()
        while stack:
            u = stack.pop()
            if u == ancestor:
                return True
            if u not in seen:
                seen.add(u)
                stack.extend(self.parents.get(u, ()))
        return False

    def _rows(self, labels, of: str = "vecs") -> np.ndarray:
        return getattr(self, of)[[self.row[int(j)] for j in labels]]

    def _decide(self, label, v, quantized, duplicate_of, parents, neighbors):
        m, rules = self.m, self.m.rules
        if parents is not None:
            rel = "merge" if len(parents) > 1 else ("quantized" if quantized else "finetune")
            return tuple(parents), rel, "known", 1.0
        if duplicate_of is not None:
            return (duplicate_of,), "finetune", "duplicate", 1.0
        wide, wide_d = neighbors
        if not len(wide):
            return (), None, "first", 1.0
        if "lora" in rules and not quantized:
            hit, below = self._lora(label, v, wide[:m.lora_candidates], wide_d[:m.lora_candidates])
            if hit is not None:
                return hit
            if len(below):  # the model's proven descendants are not its parent
                keep = ~np.isin(wide, below)
                wide, wide_d = wide[keep], wide_d[keep]
                if not len(wide):
                    return (), None, "root", 0.0
        related, strength = self._related(label, v, wide)
        if "roots" in rules and not related.any():
            return (), None, "root", strength
        wide, wide_d = wide[related], wide_d[related]
        # (a quantised model is exempt: quantising the same frozen layer twice gives the same values)
        out = np.zeros(len(wide), bool) if quantized else self._frozen_out(label, wide)
        if out.any() and not out.all():
            wide, wide_d = wide[~out], wide_d[~out]
        cand, dist = wide[:m.n_candidates], wide_d[:m.n_candidates]
        margin = float(dist[1] / dist[0]) if len(dist) > 1 and dist[0] > 0 else 10.0
        if quantized:
            return (int(cand[0]),), "quantized", "quantized", margin
        if "merges" in rules and len(wide) >= 2:
            hit = (self._merge(v, wide[:m.merge_candidates], wide_d[:m.merge_candidates])
                   or self._task_arithmetic(v, wide) or self._sparse(v, wide))
            if hit is not None:
                return hit
        return (int(cand[0]),), "finetune", "nearest", margin

    def _related(self, label, v, cand) -> tuple[np.ndarray, float]:
        """Which candidates are related to the model, and the root rule's margin (how far the most
        related candidate is below the threshold; negative when some candidate is related)."""
        m = self.m
        if "roots" not in m.rules or not len(cand):
            return np.ones(len(cand), bool), 0.0
        if self.alignment_testable:
            z = alignment_z(self.units[self.row[label]], self._rows(cand, "units"), self.layers)
            z = np.where(np.isfinite(z), z, -np.inf)
            return z >= m.align_z, float((m.align_z - z.max()) / m.align_z)
        raw = np.linalg.norm(self._rows(cand) - v, axis=1)
        rel_d = raw / np.maximum(np.maximum(self.norm[label], [self.norm[int(j)] for j in cand]), 1e-30)
        return rel_d <= m.root_distance, float(rel_d.min() - m.root_distance)

    def _frozen_out(self, label, cand, witness=None) -> np.ndarray:
        """Candidates ruled out as the model's parent by a layer it shares bit for bit with a
        witness (default: every candidate) but not with them (:mod:`modelatlas.chart.frozen`)."""
        if "frozen" not in self.m.rules or len(cand) < 2:
            return np.zeros(len(cand), bool)
        r = self.row[label]
        return frozen_exclusions(self.vecs[r], self._rows(cand), self.layers,
                                 np.minimum(self.bits[r], self._rows(cand, "bits")), witness)

    def _proven_descendants(self, label, cand) -> np.ndarray:
        """Which candidates an adapter-shaped difference proves to descend from the model (stored
        finer, exact under their own dtype's floor: :mod:`modelatlas.chart.low_rank`); only
        candidates stored finer than the model are examined (rule ``lora``)."""
        out = np.zeros(len(cand), bool)
        if "lora" not in self.m.rules or not len(cand):
            return out
        r = self.row[label]
        finer = np.flatnonzero(self._rows(cand, "bits") > self.bits[r])
        if len(finer):
            ev = adapter_evidence(self.vecs[r], self._rows(cand[finer]), self.layers, model_bits=self.bits[r],
                                  candidate_bits=self._rows(cand[finer], "bits"))
            out[finer] = [e.descendant == "candidate" for e in ev]
        return out

    def _lora(self, label, v, cand, dist):
        """The candidate whose difference from the model is simplest (lowest total rank above the
        storage noise floor, nearest on ties), when that difference is an adapter update; the score
        is the relative rank gap to the next simplest candidate. A nearer candidate that differs by
        less (a fine-tune of the adapter's child, frozen layers) is never passed over for a farther
        adapter-shaped one. Candidates that the difference proves to be the model's descendants (an
        adapter stored finer than the model, exact under its own dtype's floor:
        :mod:`modelatlas.chart.low_rank`) are not its parent, whatever the processing order says.

        Returns
        -------
        (decision or None, labels of the candidates proven to descend from the model)
        """
        if not len(cand):
            return None, cand
        r = self.row[label]
        ev = adapter_evidence(v, self._rows(cand), self.layers, model_bits=self.bits[r],
                              candidate_bits=self._rows(cand, "bits"))
        below = np.array([e.descendant == "candidate" for e in ev])
        below_labels = cand[below]
        ev = [e for e, b in zip(ev, below) if not b]
        cand, dist = cand[~below], dist[~below]
        if not len(cand):
            return None, below_labels
        total = np.array([e.total_rank for e in ev])
        best = int(np.lexsort((dist, total))[0])
        if not ev[best].is_adapter:
            return None, below_labels
        others = np.delete(total, best)
        gap = float(min((others.min() - total[best]) / max(total[best], 1), 1.0)) if len(others) else 1.0
        return ((int(cand[best]),), "adapter", "lora", gap), below_labels

    def _merge(self, v, cand, dist):
        """The fewest earlier models (two or three) of which the model is a convex combination.

        The fit over every candidate says whether the model is a merge at all. Its parents are then
        the fewest models that fit as well (:meth:`_fewest`), drawn from that fit's largest weights
        and the parents of those that were charted as merges themselves. When candidates are merges
        of each other the combination is not unique (a merge of ``a`` and ``b`` is also one of
        ``a`` and an earlier merge of the two), and the fit picks either: the fewest parents, and
        the ingredients rather than mixtures of them, are the simplest account of the weights."""
        m = self.m
        rows = self._rows(cand)
        w, resid = simplex_least_squares(rows.T, v, residual=True)
        nearest = float(np.linalg.norm(rows - v, axis=1).min())  # the fit is in raw weights
        support = np.flatnonzero(w > m.merge_min_weight)
        limit = m.merge_residual * nearest
        if len(support) < 2 or resid > limit:
            return None
        labels = [int(cand[j]) for j in support[np.argsort(-w[support], kind="stable")][:MERGE_SUPPORT]]
        for label in list(labels):
            if self.relation.get(label) == "merge":
                labels += [p for p in self.parents[label] if p not in labels and p in self.row]
        hit = self._fewest(labels, self._rows(labels), v, self._as_well(v, resid, len(cand), limit), sum_to_one=True)
        if hit is None:
            return None
        return hit[0], "merge", "merge", float(1.0 - hit[1] / limit)

    def _task_arithmetic(self, v, cand):
        """Parents of a task-arithmetic merge ``x = b + Σ aᵢ (cᵢ - b)``, ``aᵢ >= 0`` (Ilharco et al.,
        "Editing Models with Task Arithmetic", ICLR 2023), when the model is **exactly** one.

        The base ``b`` is an ancestor (as charted so far) of the nearest candidates, and it is not a
        parent. A task-arithmetic merge whose weights sum to more than one puts the base at a
        negative weight, outside every convex combination (:meth:`_merge`). Only exact fits count
        — residual within the rounding of the storage dtype — so no threshold is read off a zoo:
        a fine-tune's fresh update is never in the span of its relatives' task vectors, while the
        sparsified merges (TIES, DARE) are never exact and are left to :meth:`_sparse`.
        """
        m = self.m
        cand = [int(c) for c in cand[:TASK_CANDIDATES]]
        bases = self._ancestors(cand[:TASK_BASES_FROM])
        if len(cand) < 2 or not bases:
            return None
        rows = self._rows(cand)
        nearest = float(np.linalg.norm(rows - v, axis=1).min())
        limit = m.merge_residual * nearest
        exact = min(self._ulps(v), limit)
        # one Gram matrix of the candidates, bases and model; each base's fit is then k x k work
        every = list(dict.fromkeys(cand + bases))
        at = {label: j for j, label in enumerate(every)}
        x = np.vstack([self._rows(every), v[None]])
        gram = x @ x.T
        for base in bases:
            others = [c for c in cand if c != base]
            if len(others) < 2:
                continue
            o, bi, vi = np.array([at[c] for c in others]), at[base], len(every)
            g = gram[np.ix_(o, o)] - gram[o, bi][:, None] - gram[bi, o][None, :] + gram[bi, bi]
            h = gram[o, vi] - gram[o, bi] - gram[bi, vi] + gram[bi, bi]
            w = nonnegative_least_squares(None, None, gram=(g, h))
            support = np.flatnonzero(w > m.merge_min_weight)
            if len(support) < 2:
                continue
            b = self.vecs[self.row[base]]
            resid = float(np.linalg.norm((self._rows(others) - b).T @ w - (v - b)))
            if resid > exact:
                continue
            labels = [others[j] for j in support[np.argsort(-w[support], kind="stable")][:MERGE_SUPPORT]]
            hit = self._fewest(labels, self._rows(labels) - b, v - b, self._as_well(v, resid, len(others), limit),
                               sum_to_one=False)
            if hit is not None:
                return hit[0], "merge", "merge", float(1.0 - hit[1] / limit)
        return None

    def _sparse(self, v, cand):
        """Parents of a sparsified merge (TIES, DARE; :mod:`modelatlas.chart.sparse_merge`): ratio
        spikes of ``x − b`` against two or more of the :data:`TASK_CANDIDATES` nearest related
        candidates' task vectors, on largely different coordinates, and coordinates dropped back to
        the base ``b`` exactly, ``b`` running over the charted ancestors of the nearest
        :data:`TASK_BASES_FROM` (docs/chart.md, rule 7). Every parent must descend from the base
        (as charted so far), none from another parent. The base is not a parent; nor is an
        earlier merge of the parents (its entries show spikes too), as in :meth:`_merge`."""
        bits = significant_bits(v)
        cand = [int(c) for c in cand[:TASK_CANDIDATES]]
        rounding = half_ulp(v, bits)
        for base in self._ancestors(cand[:TASK_BASES_FROM]):
            b = self.vecs[self.row[base]]
            if np.count_nonzero((np.abs(v - b) <= rounding) & (v != 0)) < 8:  # nothing dropped to b
                continue
            others = [c for c in cand if c != base]
            hit = sparse_merge(v, b, self._rows(others), self.layers, bits=bits)
            if hit is None:
                continue
            labels = [others[j] for j in hit.parents]
            # an earlier merge of the parents shows spikes too: the ingredients are the parents
            labels = [c for c in labels
                      if self.relation.get(c) != "merge" or not set(self.parents[c]) & set(labels)]
            # task vectors are taken from a common ancestor: every parent descends from the base,
            # and none from another parent (its task vector would contain that parent's)
            if (len(labels) >= 2 and all(self._descends_from(c, base) for c in labels)
                    and not any(self._descends_from(a, c) for a in labels for c in labels if a != c)):
                score = float(1.0 - np.exp(min(hit.log_p - np.log(ALPHA), 0.0)))
                return tuple(sorted(labels)), "merge", "merge", score
        return None

    def _as_well(self, v, resid: float, k_full: int, limit: float):
        """What a subset of ``k`` parents may leave and still fit "as well" as the fit over all
        ``k_full`` candidates that left ``resid``: the nested-model F-test at level :data:`ALPHA`
        (the extra candidates of the full fit absorb part of the rounding noise that parents stored
        in a coarser dtype than the merge's arithmetic carry, about ``(k_full - k) / d`` of its
        square), plus :data:`ROUNDING_UNITS` of the model's own rounding; never above ``limit``.
        Returns a function of ``k``."""
        from scipy.stats import f as f_distribution

        d = len(v)

        def as_well(k: int) -> float:
            extra = k_full - k
            if extra <= 0 or d <= k_full:
                return min(resid + self._ulps(v), limit)
            grow = extra * float(f_distribution.isf(ALPHA, extra, d - k_full)) / (d - k_full)
            return min(resid * np.sqrt(1.0 + grow) + self._ulps(v), limit)
        return as_well

    def _fewest(self, labels, rows, target, as_well, *, sum_to_one):
        """The smallest set (two, else three) of ``labels`` whose fit of ``target`` by ``rows``
        (their vectors) leaves at most ``as_well(k)`` for a set of ``k`` (:meth:`_as_well`), every
        weight above ``merge_min_weight``; among equals the one whose members lie farthest apart.
        Returns ``(sorted labels, residual)`` or ``None``."""
        for k in (2, 3):
            tolerance = as_well(k)
            fits = []
            for subset in combinations(range(len(labels)), k):
                ws, rs = nonnegative_least_squares(rows[list(subset)].T, target, sum_to_one=sum_to_one,
                                                   residual=True)
                if rs <= tolerance and (ws > self.m.merge_min_weight).all():
                    spread = sum(float(np.linalg.norm(rows[a] - rows[b])) for a, b in combinations(subset, 2))
                    fits.append((-spread, rs, subset))
            if fits:
                _, rs, subset = min(fits)
                return tuple(sorted(labels[j] for j in subset)), rs
        return None

    @staticmethod
    def _ulps(v) -> float:
        """What "fits as well" allows: :data:`ROUNDING_UNITS` units in the last place of the
        model's storage dtype, times its norm."""
        return ROUNDING_UNITS * 2.0 ** -significant_bits(v) * float(np.linalg.norm(v))

    def _ancestors(self, labels, depth: int = 4) -> list[int]:
        """Ancestors of ``labels`` through the parents charted so far, nearest generation first."""
        out: list[int] = []
        level = list(labels)
        for _ in range(depth):
            level = [p for x in level for p in self.parents.get(x, ()) if p not in out and p in self.row]
            level = list(dict.fromkeys(level))
            out += level
            if not level:
                break
        return out

    def result(self) -> ChartResult:
        from modelatlas.chart.calibration import confidences

        conf = (confidences(self, self.m.calibration) if self.m.calibrate
                else {c: float(np.clip(self.score[c], 0.0, 1.0)) for c in self.parents})
        return ChartResult.from_parents(self.parents, self.relation, conf)


def looks_quantized(v: np.ndarray, max_levels: int = 256) -> bool:
    """True when a fingerprint holds at most ``max_levels`` distinct values in at least 4× as many."""
    return len(v) >= 4 * max_levels and len(np.unique(v)) <= max_levels


def simplex_least_squares(a: np.ndarray, b: np.ndarray, *, residual: bool = False):
    """``argmin |a w - b|`` over the probability simplex (``w >= 0``, ``sum w = 1``); see
    :func:`nonnegative_least_squares`."""
    return nonnegative_least_squares(a, b, sum_to_one=True, residual=residual)


def nonnegative_least_squares(a: np.ndarray | None, b: np.ndarray | None, *, sum_to_one: bool = False,
                              residual: bool = False, gram: tuple[np.ndarray, np.ndarray] | None = None):
    """``argmin |a w - b|`` over ``w >= 0`` (and ``sum w = 1`` when ``sum_to_one``).

    ``gram=(aᵀa, aᵀb)`` may be given instead of ``a`` and ``b`` (then no residual).

    The tall system is reduced to its normal equations: with ``G = aᵀa = RᵀR`` (Cholesky, a tiny
    ridge for collinear columns), ``|a w - b|² = |R w - R⁻ᵀ aᵀ b|² + const``; that small system is
    solved as non-negative least squares (Lawson–Hanson, scipy), with a heavily weighted
    ``sum w = 1`` row for the simplex (the penalty form of the equality constraint). (LAPACK's QR
    of the tall matrix is pathologically slow under OpenBLAS.)

    Returns
    -------
    w, or (w, residual norm) when ``residual`` is true.
    """
    from scipy.linalg import solve_triangular
    from scipy.optimize import nnls

    g, h = gram if gram is not None else (a.T @ a, a.T @ b)
    g = g + np.eye(len(g)) * (1e-12 * max(float(np.trace(g)), 1e-300))
    r = np.linalg.cholesky(g).T
    rhs = solve_triangular(r, h, trans="T")
    if sum_to_one:
        scale = max(float(np.abs(r).max()), 1e-12) * 1e3
        r = np.vstack([r, np.full((1, len(g)), scale)])
        rhs = np.concatenate([rhs, [scale]])
    w, _ = nnls(r, rhs, maxiter=50 * len(g))
    if not residual:
        return w
    return w, float(np.linalg.norm(a @ w - b))
