"""``identify``: where does a model come from? Its nearest known models, most likely parent and relation.

A reference store (:mod:`modelatlas.weights.store`, built with ``modelatlas index add``) holds the
fingerprints of known models. A model is fingerprinted with the plan of the references that share
its architecture signature (same sampled rows, so distances compare like with like), its nearest
references are found by approximate search (HNSW, :class:`~modelatlas.chart.neighbors.StaticIndex`,
over a sparse random projection of the fingerprints to :data:`SEARCH_DIM` dimensions) and refined
with exact distances on their full fingerprints. The decision is ``auto``'s
(:class:`modelatlas.chart.auto.OnlineCharter`): the references are added as already-charted models
(their documented parents as known edges), then the model arrives last, and the charter's rule
cascade (duplicate, root = no known relative, quantised, LoRA, merge, fine-tune with the sibling
climb) names its parents, relation and calibrated confidence. References uploaded after the model
(when both times are known) are never its parent. Evidence: distances, which sampled tensors differ,
the rank of each layer's difference, the quantisation scheme, merge weights. See docs/identify.md.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from modelatlas.errors import InputError
from modelatlas.weights.store import decode_vectors, plan_width, read_plans, read_rows

#: Dimensions of the search vectors (fingerprints longer than this are projected for the index).
SEARCH_DIM = 256
#: Approximate neighbours re-ranked exactly per neighbour wanted (recall of the HNSW stage).
OVERFETCH = 2
#: References shown as "nearest known models".
SHOW_NEAREST = 5
_PLAN_KEY = re.compile(r"^[0-9a-f]{16}$")
_META_COLUMNS = ["id", "plan", "content_hash", "hash_kind", "quantized", "created_at", "documented_parents",
                 "quantization_schemes"]


@dataclass
class Provenance:
    """The answer of :func:`identify`.

    Attributes
    ----------
    model:
        The model identified (its id).
    verdict:
        One sentence: ``fine-tune of X``, ``no known relative``, ...
    parents:
        Most likely parents (empty: no known relative).
    relation:
        ``finetune``, ``adapter``, ``quantized``, ``merge`` (``None`` without parents).
    rule:
        ``auto``'s rule that decided (``duplicate``, ``root``, ``quantized``, ``lora``, ``merge``,
        ``nearest``, ``sibling``).
    confidence:
        Calibrated probability that the parent set is right (:mod:`modelatlas.chart.calibration`).
    nearest:
        The nearest references: id, distance, relative distance, upload time.
    evidence:
        What the decision rests on (see docs/identify.md).
    messages:
        Notes (references left out as younger, plan choices, ...).
    """

    model: str
    verdict: str
    parents: list[str] = field(default_factory=list)
    relation: str | None = None
    rule: str | None = None
    confidence: float | None = None
    nearest: list[dict] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The answer as JSON-ready data; the model's id under ``id`` (docs/cli.md, "JSON")."""
        data = dict(self.__dict__)
        return {"id": data.pop("model"), **data}


class ReferenceSearch:
    """One plan of a reference store, opened for search.

    The HNSW index over the plan's search vectors is cached beside the store
    (``STORE.ann/<plan>.hnsw`` with a ``.json`` describing the store it was built from) and rebuilt
    when the store changed.
    """

    def __init__(self, store: str | Path, plan: str, *, rebuild: bool = False, table=None):
        if not _PLAN_KEY.match(plan):
            raise InputError(f"plan key {plan!r} is not 16 hex digits", path=str(store))
        self.store = Path(store)
        self.plan = plan
        self.layout = read_plans(store)[plan]
        if table is None:
            table = read_metadata(store)
        mask = np.asarray(table["plan"].to_pylist()) == plan
        self.rows = np.flatnonzero(mask)  # store row numbers of this plan's models, in store order
        self.meta = table.filter(mask)
        self.ids: list[str] = self.meta["id"].to_pylist()
        self.position = {m: i for i, m in enumerate(self.ids)}
        created = self.meta["created_at"].cast("int64").to_pylist()
        self.times = np.array([np.nan if t is None else t / 1e6 for t in created])
        self.width = plan_width(self.layout)
        self.projection = None
        if self.width > SEARCH_DIM:
            from modelatlas.weights.projection import SparseProjection

            self.projection = SparseProjection(self.width, SEARCH_DIM, seed=0)
        self.index = self._load_or_build(rebuild)

    def _search_vector(self, v: np.ndarray) -> np.ndarray:
        return np.asarray(v, np.float32) if self.projection is None else self.projection(v)

    def _stamp(self) -> dict:
        st = self.store.stat()
        return {"store_size": st.st_size, "store_mtime_ns": st.st_mtime_ns, "models": len(self.ids),
                "search_dim": SEARCH_DIM, "width": self.width, "index": "voyager-hnsw"}

    def _load_or_build(self, rebuild: bool):
        from modelatlas.chart.neighbors import StaticIndex

        folder = self.store.with_name(self.store.name + ".ann")
        index_path, stamp_path = folder / f"{self.plan}.hnsw", folder / f"{self.plan}.json"
        stamp = self._stamp()
        dim = SEARCH_DIM if self.projection is not None else self.width
        if not rebuild and index_path.is_file() and stamp_path.is_file():
            try:
                if json.loads(stamp_path.read_text()) == stamp:
                    return StaticIndex.load(index_path, dim)
            except (ValueError, RuntimeError, OSError):
                pass  # a damaged cache is rebuilt below
        vectors = np.zeros((len(self.ids), dim), np.float32)
        pf = pq.ParquetFile(self.store)
        k = 0
        for batch in pf.iter_batches(columns=["plan", "vector"], batch_size=1024):
            mine = np.asarray(batch.column(0).to_pylist()) == self.plan
            if not mine.any():
                continue
            for v in decode_vectors(batch.column(1).filter(pa.array(mine)), self.width, self.store):
                vectors[k] = self._search_vector(v)
                k += 1
        index = StaticIndex(vectors)
        try:  # written under temporary names, then renamed: a concurrent reader sees old or new
            folder.mkdir(exist_ok=True)
            tmp_index = folder / f".{self.plan}.{os.getpid()}.hnsw"
            tmp_stamp = folder / f".{self.plan}.{os.getpid()}.json"
            index.save(tmp_index)
            tmp_stamp.write_text(json.dumps(stamp))
            os.replace(tmp_index, index_path)
            os.replace(tmp_stamp, stamp_path)
        except OSError:
            pass  # a read-only store is searched with an index held in memory
        return index

    def vectors(self, positions: np.ndarray) -> np.ndarray:
        """Full fingerprints of the plan's models at ``positions``."""
        table = read_rows(self.store, self.rows[np.asarray(positions, np.int64)], columns=["vector"])
        return decode_vectors(table["vector"], self.width, self.store)

    def nearest(self, v: np.ndarray, k: int, *, exclude: set[int] = frozenset(), before: float | None = None,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The ``k`` nearest references (positions, exact distances, their vectors), nearest first,
        and how many close ones were left out as uploaded after ``before``."""
        approx = self.index.query(self._search_vector(v), OVERFETCH * k + len(exclude))
        approx = np.array([p for p in approx.tolist() if p not in exclude], np.int64)
        younger = 0
        if before is not None and np.isfinite(before):
            late = np.isfinite(self.times[approx]) & (self.times[approx] > before)
            younger = int(late[:k].sum())
            approx = approx[~late]
        if not len(approx):
            return approx, np.zeros(0), np.zeros((0, len(v)), np.float32), younger
        vecs = self.vectors(approx)
        diff = vecs.astype(np.float64) - np.asarray(v, np.float64)
        d = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        order = np.lexsort((approx, d))[:k]
        return approx[order], d[order], vecs[order], younger


def identify(model: str | Path, store: str | Path, *, n_candidates: int = 24, rebuild: bool = False) -> Provenance:
    """Identify a model against a reference store.

    Parameters
    ----------
    model:
        A weights file or model folder (see :func:`modelatlas.weights.discover.discover_models`), or
        the id of a model in the store (identified against the others).
    store:
        The reference store (Parquet, :mod:`modelatlas.weights.store`).
    n_candidates:
        References given to the rule cascade (``auto``'s ``merge_candidates``).
    rebuild:
        Rebuild the search index even when the cached one is current.

    Returns
    -------
    Provenance

    Raises
    ------
    InputError
        An unreadable model or store, or a path holding several models.
    """
    store = Path(store)
    if not store.is_file():
        raise InputError("no such reference store (build one with `modelatlas index add PATH... --index "
                         "STORE.parquet`)", path=str(store))
    plans = read_plans(store)
    table = read_metadata(store)
    counts = dict(Counter(table["plan"].to_pylist()))
    if Path(model).exists():
        query = _read_query(Path(model), plans, counts)
    else:
        query = _stored_query(str(model), store, table)
    if isinstance(query, Provenance):
        return query
    search = ReferenceSearch(store, query.plan, rebuild=rebuild, table=table)
    exclude = {search.position[query.id]} if query.id in search.position else set()
    pos, dist, vecs, younger = search.nearest(query.vector, n_candidates, exclude=exclude, before=query.time)
    messages = list(query.messages)
    if exclude and Path(model).exists():
        messages.append(f"the store holds a model of the same id ({query.id}): taken to be this model and left out")
    if younger:
        messages.append(f"{younger} close references were uploaded after this model and cannot be its parent")
    if not len(pos):
        return Provenance(query.id, "no known relative: no reference of its architecture is older", messages=messages,
                          evidence={"plan": query.plan, "references_in_plan": len(search.ids)})
    return _decide(query, search, pos, dist, vecs, messages)


@dataclass
class _Query:
    id: str
    plan: str
    vector: np.ndarray
    quantized: bool
    content_hash: str | None
    time: float | None
    schemes: list[str]
    messages: list[str]
    hash_kind: str = "sample"
    documented: tuple[str, ...] = ()


def read_metadata(store: str | Path):
    """The store's columns that identification needs, without the fingerprint vectors."""
    try:
        return pq.read_table(store, columns=_META_COLUMNS)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the reference store ({exc})", path=str(store)) from None


def _read_query(path: Path, plans: dict, counts: dict) -> "_Query | Provenance":
    from modelatlas.weights.discover import discover_models
    from modelatlas.weights.fingerprint import fingerprint_models
    from modelatlas.weights.quantization import detect_quantization
    from modelatlas.weights.reader import open_weights
    from modelatlas.weights.signature import signature

    found = discover_models([path])
    if not found.models:
        raise InputError(found.messages[0] if found.messages else "no model here", path=str(path))
    if len(found.models) > 1:
        raise InputError(f"{len(found.models)} models here ({', '.join(m.meta.id for m in found.models[:3])}); "
                         "identify one at a time", path=str(path))
    item = found.models[0]
    with open_weights(item.weights) as wf:
        sig = signature(wf)
        schemes = list(detect_quantization(wf).schemes)
        same = [k for k, layout in plans.items() if layout["signature_key"] == sig.key]
        if not same:
            inside = _plan_inside(sig, plans, counts)
            if inside is not None:  # e.g. a fine-tune that added a task head to a reference architecture
                return _query_on_plan(wf, sig, item, inside, plans[inside], schemes)
            n_arch = len({layout["signature_key"] for layout in plans.values()})
            return Provenance(item.meta.id, "no known relative: no reference model has its architecture",
                              evidence={"signature_key": sig.key, "references": sum(counts.values()),
                                        "reference_architectures": n_arch})
    plan = max(same, key=lambda k: counts.get(k, 0))
    messages = list(item.meta.notes)
    if len(same) > 1:
        messages.append(f"{len(same)} fingerprint plans share its architecture; compared with the largest "
                        f"({counts.get(plan, 0)} models)")
    layout = plans[plan]
    fp = fingerprint_models([item.weights], ids=[item.meta.id], n_neurons=layout["n_neurons"],
                           layers=layout["layers"], seed=layout["seed"], sampling=layout["sampling"],
                           project=layout["projection"], kurtosis=False)
    if fp.layer_names != layout["layer_names"] or [int(x) for x in fp.layer_offsets] != layout["layer_offsets"]:
        raise InputError("its fingerprint does not have the reference plan's layout (a store written by another "
                         "modelatlas version?)", path=str(path))
    vector = fp.vectors[0]
    if not np.all(np.isfinite(vector)):
        raise InputError("its weights hold NaN or infinite values in the sampled rows", path=str(path))
    return _Query(item.meta.id, plan, vector, bool(fp.quantized[0]), fp.content_hashes[0], item.meta.created_at,
                  schemes, messages, documented=tuple(item.meta.documented_parents))


def _plan_inside(sig, plans: dict, counts: dict) -> str | None:
    """The largest plan whose every fingerprinted tensor the model holds under the same name and shape.

    A model that adds tensors to a reference architecture (a task head) has another signature, but
    can still be read at exactly the rows the references were sampled at (the plan keeps them).
    """
    shapes = sig.shapes
    fits = []
    for key, layout in plans.items():
        if layout["projection"] or "layer_shapes" not in layout:
            continue
        if all(tuple(shapes.get(n, ())) == tuple(s) for n, s in zip(layout["layer_names"], layout["layer_shapes"])):
            fits.append(key)
    return max(fits, key=lambda k: counts.get(k, 0)) if fits else None


def _query_on_plan(wf, sig, item, plan: str, layout: dict, schemes: list[str]) -> _Query:
    """Fingerprint an opened model at a reference plan's rows (see :func:`_plan_inside`)."""
    import hashlib

    from modelatlas.weights.quantization import detect_quantization

    offsets = layout["layer_offsets"]
    vector = np.empty(int(offsets[-1]), np.float32)
    samples = {}
    for li, name in enumerate(layout["layer_names"]):
        block = wf.read_rows(sig.file_names[name], np.asarray(layout["layer_rows"][li], np.int64))
        samples[sig.file_names[name]] = block
        vector[offsets[li]:offsets[li + 1]] = block.reshape(-1)
    if not np.all(np.isfinite(vector)):
        raise InputError("its weights hold NaN or infinite values in the sampled rows", path=str(wf.path))
    messages = list(item.meta.notes) + [
        f"compared on the {len(layout['layer_names'])} fingerprinted tensors of a reference architecture, all of "
        f"which this model holds; its own signature ({len(sig.entries)} tensors) differs, e.g. by a task head"]
    quantized = detect_quantization(wf, samples=samples).quantized
    digest = hashlib.blake2b(memoryview(vector), digest_size=16).hexdigest()
    return _Query(item.meta.id, plan, vector, quantized, digest, item.meta.created_at, schemes, messages,
                  documented=tuple(item.meta.documented_parents))


def _stored_query(model_id: str, store: Path, table) -> _Query:
    ids = table["id"].to_pylist()
    if model_id not in ids:
        from difflib import get_close_matches

        close = get_close_matches(model_id, ids, n=3)
        raise InputError("neither a file nor a model of the reference store"
                         + (f"; did you mean {', '.join(close)}?" if close else ""), where=model_id)
    r = ids.index(model_id)
    row = read_rows(store, np.array([r]), columns=["vector"])
    created = table["created_at"][r].as_py()
    width = plan_width(read_plans(store)[table["plan"][r].as_py()])
    return _Query(model_id, table["plan"][r].as_py(), decode_vectors(row["vector"], width, store)[0],
                  bool(table["quantized"][r].as_py()), table["content_hash"][r].as_py(),
                  created.timestamp() if created else None, list(table["quantization_schemes"][r].as_py() or []),
                  [], table["hash_kind"][r].as_py(),
                  tuple(table["documented_parents"][r].as_py() or ()))


def _decide(query: _Query, search: ReferenceSearch, pos, dist, vecs, messages) -> Provenance:
    from modelatlas.chart.auto import Auto, OnlineCharter, looks_quantized
    from modelatlas.chart.store_input import layer_blocks
    from modelatlas.chart.types import LayerBlock

    layout = search.layout
    blocks = layer_blocks(layout)
    method = Auto()
    if not blocks:  # projected fingerprints: one block, no per-layer rank test
        blocks = [LayerBlock("all", 0, 1, vecs.shape[1])]
        method.rules = tuple(r for r in method.rules if r != "lora")
        messages.append("the store holds projected fingerprints: no per-layer evidence, no adapter test")
    meta = search.meta.take(pos.tolist()).to_pylist()
    in_set = {search.ids[p]: i for i, p in enumerate(pos.tolist())}
    documented = {i: tuple(in_set[q] for q in (m["documented_parents"] or []) if q in in_set)
                  for i, m in enumerate(meta)}
    order = _parents_first(documented, search.times[pos])
    charter = OnlineCharter(method, vecs.shape[1], blocks, capacity=len(pos) + 1, bulk=True)
    # which models are dated: context of the confidence (chart/calibration.py); the query is last
    charter.created_at = np.append(search.times[pos], np.nan if query.time is None else float(query.time))
    empty = (np.zeros(0, np.int64), np.zeros(0))
    for i in order:
        charter.add(i, vecs[i], quantized=bool(meta[i]["quantized"]), content_hash=_hash(meta[i]),
                    parents=documented[i] or (), neighbors=empty)
    eligible, seen = [], set()
    for i in range(len(pos)):  # nearest first; quantised copies and later duplicates are never parents
        key = _hash(meta[i]) or f"v{i}"
        if not (meta[i]["quantized"] or looks_quantized(vecs[i])) and key not in seen:
            eligible.append(i)
        seen.add(key)
    q = len(pos)
    query_hash = f"{query.hash_kind}:{query.content_hash}" if query.content_hash else None
    charter.add(q, query.vector, quantized=query.quantized, content_hash=query_hash,
                neighbors=(np.array(eligible, np.int64), dist[eligible]))
    kind = charter.kind[q]
    parents = list(charter.parents.get(q, ()))
    norm_q = float(np.linalg.norm(query.vector))
    nearest = [{"id": search.ids[p], "distance": float(d),
                "relative_distance": float(d / max(norm_q, float(np.linalg.norm(vecs[i])), 1e-30)),
                "quantized": bool(meta[i]["quantized"])}
               for i, (p, d) in enumerate(zip(pos.tolist(), dist.tolist()))][:SHOW_NEAREST]
    evidence = {"plan": query.plan, "references_in_plan": len(search.ids), "matched_by": "name",
                "tensors_compared": len(layout["layer_names"]), "query_quantized": query.quantized,
                "quantization_schemes": query.schemes}
    if query.documented:
        evidence["card_base_model"] = list(query.documented)
    if not parents:
        evidence["card_agrees"] = None if not query.documented else False
        evidence["relative_distance_to_nearest"] = nearest[0]["relative_distance"] if nearest else None
        evidence["alignment_threshold"] = method.align_z
        return Provenance(query.id, "no known relative: no reference's sampled neurons match its own "
                          "(neuron alignment, docs/chart.md)", rule=kind, nearest=nearest, evidence=evidence,
                          messages=messages)
    result = charter.result()
    conf = float(result.confidence[result.child == q].min())
    relation = charter.relation[q]
    if kind == "duplicate" and meta[parents[0]]["quantized"] and documented[parents[0]]:
        # identical to a quantised reference: the same quantisation of that reference's parent
        evidence["identical_to"] = search.ids[pos[parents[0]]]
        parents, relation, kind = list(documented[parents[0]]), "quantized", "quantized"
    ids = [search.ids[pos[p]] for p in parents]
    evidence.update(_evidence(query.vector, [vecs[p] for p in parents], blocks, relation))
    evidence["distance_to_parents"] = [float(dist[p]) for p in parents]
    if query.documented:
        evidence["card_agrees"] = set(query.documented) == set(ids)
        if not evidence["card_agrees"]:
            messages.append(f"its card names {', '.join(query.documented)} as base model; the weights point to "
                            f"{', '.join(ids)}")
    verdict = {"duplicate": "an exact copy (re-upload) of", "quantized": "a quantisation of",
               "adapter": "an adapter (LoRA) of", "merge": "a merge of",
               "finetune": "a fine-tune of"}["duplicate" if kind == "duplicate" else relation]
    return Provenance(query.id, f"{verdict} {' + '.join(ids)}", parents=ids, relation=relation, rule=kind,
                      confidence=conf, nearest=nearest, evidence=evidence, messages=messages)


def _hash(row: dict) -> str | None:
    return f"{row['hash_kind']}:{row['content_hash']}" if row.get("content_hash") else None


def _parents_first(documented: dict[int, tuple[int, ...]], times: np.ndarray) -> list[int]:
    """Candidates in an order where documented parents come before their children (then by time)."""
    from graphlib import CycleError, TopologicalSorter

    t = np.where(np.isfinite(times), times, np.inf)
    by_time = sorted(documented, key=lambda i: (t[i], i))
    try:
        ts = TopologicalSorter({i: documented[i] for i in by_time})
        ts.prepare()
        out = []
        while ts.is_active():
            ready = sorted(ts.get_ready(), key=lambda i: (t[i], i))
            out += ready
            ts.done(*ready)
        return out
    except CycleError:  # cards that name each other: no known edges among the candidates then
        for i in documented:
            documented[i] = ()
        return by_time


def _evidence(x: np.ndarray, parents: list[np.ndarray], blocks, relation: str) -> dict:
    """Per-layer evidence: which sampled tensors differ, ranks of the difference, merge weights."""
    from modelatlas.chart.auto import simplex_least_squares
    from modelatlas.chart.low_rank import adapter_evidence

    out: dict = {}
    if relation == "merge":
        w = simplex_least_squares(np.stack(parents, axis=1).astype(np.float64), x.astype(np.float64))
        out["merge_weights"] = [round(float(v), 4) for v in w]
        return out
    (ev,) = adapter_evidence(x, parents[0][None], blocks)
    out["tensors_changed"] = int((~ev.identical).sum())
    out["tensors_identical"] = int(ev.identical.sum())
    if relation == "adapter":
        out["difference_rank"] = {b.name: int(r) for b, r in zip(blocks, ev.ranks) if r}
        out["adapter_rank"] = ev.adapter_rank
    return out
