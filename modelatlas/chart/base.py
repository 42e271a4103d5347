"""The charting interface shared by every method (DESIGN.md, "Interfaces").

A method is a small estimator: constructed with its hyper-parameters, it charts a
:class:`ChartInput` and returns a :class:`ChartResult`, one row per predicted ``parent -> child``
edge with a relation and a confidence::

    method = get_method("atlas", K=5)
    result = method.chart(models, known_edges={3: (0,)})

Models are addressed by their row index in ``models``. Methods never compare models of
different architectures: :func:`architecture_groups` splits the input by signature first.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from typing import Callable, ClassVar, Mapping

import numpy as np
import pyarrow as pa

from modelatlas.errors import InputError, ModelAtlasError

#: child index -> tuple of parent indices (an empty tuple means "known root").
KnownEdges = Mapping[int, tuple[int, ...]]


@dataclass(frozen=True)
class LayerBlock:
    """Where one layer's sampled rows sit inside a fingerprint vector.

    ``vectors[:, offset : offset + rows * cols]`` reshaped to ``(rows, cols)`` is the layer's
    ``rows`` sampled neurons (rows of the weight matrix).
    """

    name: str
    offset: int
    rows: int
    cols: int

    @property
    def size(self) -> int:
        return self.rows * self.cols

    def take(self, vectors: np.ndarray) -> np.ndarray:
        """The layer's matrices, shape ``(n, rows, cols)``."""
        return vectors[:, self.offset:self.offset + self.size].reshape(len(vectors), self.rows, self.cols)


@dataclass
class ChartInput:
    """Everything a charting method may look at.

    Attributes
    ----------
    ids:
        Model ids, one per row.
    vectors:
        Fingerprints, ``n x d`` float32 (sampled neurons of every fingerprinted layer, concatenated).
    layers:
        The layout of ``vectors`` per layer (for per-layer distances, ranks and kurtosis); when
        empty the whole vector is one layer.
    created_at:
        Upload times in seconds since the epoch, ``NaN`` where unknown.
    quantized:
        Whether each model is stored quantised.
    content_hashes:
        Hash of the full weights (exact duplicates share it); ``None`` entries where unknown.
    documented_parents:
        Parents a method may be told (merges whose card names them; Algorithm 1's ``P``).
    groups:
        Architecture signature per model; models of different groups are never compared.
    kurtosis:
        Optional ``n x L`` per-layer kurtosis of the full weights (MoTHer's direction score);
        computed from the fingerprint rows when absent.
    components:
        Known families (the Model Atlas protocol charts one connected component at a time);
        ``None`` when every method must find them itself.
    """

    ids: list[str]
    vectors: np.ndarray
    layers: list[LayerBlock] = field(default_factory=list)
    created_at: np.ndarray | None = None
    quantized: np.ndarray | None = None
    content_hashes: list[str | None] | None = None
    documented_parents: dict[int, tuple[int, ...]] = field(default_factory=dict)
    groups: np.ndarray | None = None
    kurtosis: np.ndarray | None = None
    components: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) != n:
            raise InputError(f"fingerprints have shape {self.vectors.shape}, expected ({n}, d)",
                             where="vectors")
        if not self.layers:
            self.layers = [LayerBlock("all", 0, 1, self.vectors.shape[1])]
        self.created_at = (np.full(n, np.nan) if self.created_at is None
                           else np.asarray(self.created_at, dtype=np.float64))
        self.quantized = (np.zeros(n, bool) if self.quantized is None
                          else np.asarray(self.quantized, dtype=bool))
        if self.content_hashes is None:
            self.content_hashes = [None] * n
        self.groups = (np.zeros(n, dtype=object) if self.groups is None
                       else np.asarray(self.groups, dtype=object))
        for name, arr in (("created_at", self.created_at), ("quantized", self.quantized),
                          ("groups", self.groups), ("content_hashes", self.content_hashes)):
            if len(arr) != n:
                raise InputError(f"{name} has {len(arr)} entries for {n} models", where=name)
        bad = ~np.all(np.isfinite(self.vectors), axis=1)
        if bad.any():
            names = ", ".join(self.ids[i] for i in np.flatnonzero(bad)[:5])
            raise InputError(f"{int(bad.sum())} fingerprint(s) hold NaN or infinite values: {names}",
                             where="vectors")
        for child, parents in self.documented_parents.items():
            for p in parents:
                if not 0 <= p < n or p == child:
                    raise InputError(f"documented parent index {p} of model {child} is invalid",
                                     where="documented_parents")

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: np.ndarray) -> "ChartInput":
        """The models at ``rows`` (documented parents outside the subset are dropped)."""
        rows = np.asarray(rows, dtype=np.int64)
        remap = {int(r): i for i, r in enumerate(rows)}
        documented = {remap[c]: tuple(remap[p] for p in ps if p in remap)
                      for c, ps in self.documented_parents.items() if c in remap}
        return replace(
            self,
            ids=[self.ids[r] for r in rows],
            vectors=self.vectors[rows],
            created_at=self.created_at[rows],
            quantized=self.quantized[rows],
            content_hashes=[self.content_hashes[r] for r in rows],
            documented_parents=documented,
            groups=self.groups[rows],
            kurtosis=None if self.kurtosis is None else self.kurtosis[rows],
            components=None if self.components is None else self.components[rows],
        )

    @property
    def has_times(self) -> bool:
        """True when enough times are known and distinct to order models by them."""
        t = self.created_at
        known = np.isfinite(t)
        return bool(known.mean() >= 0.5 and len(np.unique(t[known])) > max(1, 0.5 * known.sum()))

    def time_order(self) -> np.ndarray:
        """Indices sorted by time; unknown times last, ties by row (stable)."""
        t = np.where(np.isfinite(self.created_at), self.created_at, np.inf)
        return np.argsort(t, kind="stable")


@dataclass
class ChartResult:
    """Predicted edges: parallel arrays of parent / child row indices with relation and confidence."""

    parent: np.ndarray
    child: np.ndarray
    relation: np.ndarray
    confidence: np.ndarray
    messages: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls) -> "ChartResult":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0))

    @classmethod
    def from_parents(cls, parents: Mapping[int, tuple[int, ...]], relations: Mapping[int, str] | None = None,
                     confidence: Mapping[int, float] | None = None) -> "ChartResult":
        """Build from ``child -> parents`` (relation and confidence per child)."""
        rows = [(p, c) for c, ps in parents.items() for p in ps]
        relations = relations or {}
        confidence = confidence or {}
        par = np.array([p for p, _ in rows], dtype=np.int64)
        chi = np.array([c for _, c in rows], dtype=np.int64)
        rel = np.array([relations.get(c, "unknown") for _, c in rows], dtype=object)
        conf = np.array([confidence.get(c, 0.5) for _, c in rows], dtype=np.float64)
        return cls(par, chi, rel, conf)

    def parent_sets(self) -> dict[int, frozenset[int]]:
        """``child -> frozenset(parents)`` for every child with at least one predicted parent."""
        out: dict[int, set[int]] = {}
        for p, c in zip(self.parent.tolist(), self.child.tolist()):
            out.setdefault(c, set()).add(p)
        return {c: frozenset(ps) for c, ps in out.items()}

    def concat(self, other: "ChartResult", rows: np.ndarray | None = None) -> "ChartResult":
        """This result plus ``other`` (whose indices are into ``rows`` when given)."""
        par, chi = other.parent, other.child
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            par, chi = rows[par], rows[chi]
        return ChartResult(np.concatenate([self.parent, par]), np.concatenate([self.child, chi]),
                           np.concatenate([self.relation, other.relation]),
                           np.concatenate([self.confidence, other.confidence]),
                           self.messages + other.messages)

    def to_table(self, ids: list[str]) -> pa.Table:
        """Edges as an Arrow table with ids: parent, child, relation, confidence."""
        ids_arr = np.asarray(ids, dtype=object)
        return pa.table({
            "parent": pa.array(ids_arr[self.parent].tolist(), pa.string()),
            "child": pa.array(ids_arr[self.child].tolist(), pa.string()),
            "relation": pa.array(self.relation.tolist(), pa.string()),
            "confidence": pa.array(self.confidence.astype(float), pa.float64()),
        })


class ChartMethod:
    """Base class: a charting method with scikit-learn-style parameters.

    Subclasses set :attr:`name`, take their hyper-parameters as keyword arguments of
    ``__init__`` (stored as attributes of the same names) and implement :meth:`chart_group`,
    which charts models of one architecture. :meth:`chart` splits the input by architecture,
    checks known edges, and concatenates the groups' results.
    """

    name: ClassVar[str] = ""

    def get_params(self) -> dict:
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self"}

    def set_params(self, **params) -> "ChartMethod":
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise InputError(f"method {self.name!r} has no parameter {key!r}; "
                                 f"parameters: {', '.join(sorted(valid)) or 'none'}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def chart(self, models: ChartInput, known_edges: KnownEdges | None = None, *, executor=None,
              block_size: int | None = None, bar: bool = False) -> ChartResult:
        """Predict every model's parents.

        Parameters
        ----------
        models:
            The models to chart.
        known_edges:
            Parents already known (e.g. the evaluation stem): ``child -> parents``; an empty tuple
            marks a known root. They are returned unchanged, with confidence 1.
        executor:
            Where the families are charted, one task each
            (:func:`modelatlas.engine.chart_run.chart_families`; default: in this process).
        block_size:
            Split a family of more models into approximate-neighbour blocks of at most this many,
            charted apart (:func:`modelatlas.chart.blocks.neighbour_blocks`; edges between blocks are
            lost). Default: no split.
        bar:
            Draw a progress bar on standard error.

        Returns
        -------
        ChartResult
            One row per predicted edge; models without a row are predicted roots.
        """
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.blas_threads):
            return self._chart(models, known_edges, executor, block_size, bar)

    #: BLAS threads while charting: the algebra is many small matrices, where OpenBLAS threads
    #: only contend (a 768 x 24 QR took 170 ms with threads and 1 ms without on the 2-core machine).
    blas_threads: ClassVar[int] = 1

    def _chart(self, models: ChartInput, known_edges: KnownEdges | None, executor=None,
               block_size: int | None = None, bar: bool = False) -> ChartResult:
        from modelatlas.chart.blocks import neighbour_blocks
        from modelatlas.engine.chart_run import FamilyTask, chart_families
        from modelatlas.engine.executor import TaskFailure

        known = check_known_edges(known_edges or {}, len(models))
        result = ChartResult.empty()
        messages: list[str] = []
        groups = architecture_groups(models)
        n_arch = len(set(map(str, models.groups)))
        if n_arch > 1:
            messages.append(f"{n_arch} architectures: charted separately, never compared")
        families = []
        for rows in groups:
            if block_size and len(rows) > block_size:
                blocks = [rows[b] for b in neighbour_blocks(models.vectors[rows], block_size)]
                messages.append(f"a family of {len(rows)} models charted in {len(blocks)} blocks of at most "
                                f"{block_size} near models (edges between blocks are not looked for)")
            else:
                blocks = [rows]
            families += [b for b in blocks if len(b) > 1]
        tasks = []
        for rows in families:
            inv = {int(g): i for i, g in enumerate(rows)}
            sub_known = {inv[c]: tuple(inv[p] for p in ps if p in inv)
                         for c, ps in known.items() if c in inv}
            tasks.append(FamilyTask(self, models.subset(rows), sub_known))
        for rows, charted in zip(families, chart_families(tasks, executor, bar=bar)):
            if isinstance(charted, TaskFailure):
                if isinstance(charted.error, ModelAtlasError):  # bad input stops the chart, on every engine
                    raise charted.error
                messages.append(f"a family of {len(rows)} models (first {models.ids[rows[0]]}) could not be "
                                f"charted ({charted}); its models are left without predicted parents")
                continue
            result = result.concat(charted, rows)
        keep = ~np.isin(result.child, np.fromiter(known, np.int64, len(known)))
        keep &= ~_edges_closing_cycles(result, known, keep, messages)
        given = ChartResult.from_parents(known, confidence={c: 1.0 for c in known})
        result = ChartResult(result.parent[keep], result.child[keep], result.relation[keep],
                             result.confidence[keep], result.messages).concat(given)
        result.messages = list(dict.fromkeys(messages + result.messages))
        return result

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        raise NotImplementedError


def architecture_groups(models: ChartInput) -> list[np.ndarray]:
    """Row indices per architecture signature (and per known component), in order of appearance."""
    keys = [str(g) for g in models.groups]
    if models.components is not None:
        keys = [f"{k}\x00{c}" for k, c in zip(keys, models.components)]
    order: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        order.setdefault(k, []).append(i)
    return [np.array(v, dtype=np.int64) for v in order.values()]


def check_known_edges(known: KnownEdges, n: int) -> dict[int, tuple[int, ...]]:
    """Validate known edges: indices in range, no self-loops, no cycles.

    Raises
    ------
    InputError
        Naming the offending model index (a cycle lists its members).
    """
    out: dict[int, tuple[int, ...]] = {}
    for c, ps in known.items():
        c = int(c)
        ps = tuple(int(p) for p in ps)
        if not 0 <= c < n or any(not 0 <= p < n for p in ps):
            raise InputError(f"known edge into model {c} names an index outside 0..{n - 1}",
                             where="known_edges")
        if c in ps:
            raise InputError(f"known edges make model {c} its own parent", where="known_edges")
        out[c] = ps
    cycle = find_cycle(out)
    if cycle:
        raise InputError("known edges contain a cycle: " + " -> ".join(map(str, cycle)),
                         where="known_edges")
    return out


def _edges_closing_cycles(result: "ChartResult", known: Mapping[int, tuple[int, ...]], keep: np.ndarray,
                          messages: list[str]) -> np.ndarray:
    """Predicted edges to drop so that predictions plus known edges stay acyclic.

    A method may constrain only part of the stem (e.g. one parent of a known merge, or a tree
    cluster that holds only one end of a known edge), so a prediction can close a cycle through
    known edges. Each such cycle loses its least confident predicted edge; known edges are
    acyclic on their own (:func:`check_known_edges`), so every cycle has a predicted edge.
    """
    drop = np.zeros(len(result.child), dtype=bool)
    while True:
        parents: dict[int, list[int]] = {c: list(ps) for c, ps in known.items()}
        edge_of: dict[tuple[int, int], int] = {}
        for e in np.flatnonzero(keep & ~drop):
            p, c = int(result.parent[e]), int(result.child[e])
            parents.setdefault(c, []).append(p)
            edge_of[(p, c)] = int(e)
        cycle = find_cycle({c: tuple(ps) for c, ps in parents.items()})
        if not cycle:
            return drop
        on_cycle = [edge_of[(a, b)] for a, b in zip(cycle, cycle[1:]) if (a, b) in edge_of]
        worst = min(on_cycle, key=lambda e: result.confidence[e])
        drop[worst] = True
        messages.append(f"predicted edge {int(result.parent[worst])} -> {int(result.child[worst])} "
                        "closed a cycle with known edges and was dropped")


def find_cycle(parents: Mapping[int, tuple[int, ...]]) -> list[int]:
    """One directed cycle in ``child -> parents`` (as a list of nodes, first repeated), or ``[]``."""
    import networkx as nx

    g = nx.DiGraph((p, c) for c, ps in parents.items() for p in ps)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return []
    return [int(a) for a, _ in cycle] + [int(cycle[0][0])]


def known_descendants(known: Mapping[int, tuple[int, ...]], node: int) -> set[int]:
    """Models below ``node`` through known edges (a new parent for ``node`` must avoid them)."""
    children: dict[int, list[int]] = {}
    for c, ps in known.items():
        for p in ps:
            children.setdefault(p, []).append(c)
    out, stack = set(), [node]
    while stack:
        for c in children.get(stack.pop(), ()):
            if c not in out:
                out.add(c)
                stack.append(c)
    return out


_REGISTRY: dict[str, Callable[..., ChartMethod]] = {}


def register(cls):
    """Class decorator: make a method available by its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def method_names() -> list[str]:
    from modelatlas.chart import _load_methods

    _load_methods()
    return list(_REGISTRY)


def get_method(name: str, **params) -> ChartMethod:
    """The charting method called ``name``, built with ``params``."""
    names = method_names()
    if name not in _REGISTRY:
        raise InputError(f"unknown charting method {name!r}; choose one of {', '.join(names)}",
                         where="--method")
    method = _REGISTRY[name]()
    return method.set_params(**params)
