"""The fingerprint store: one Parquet file of fingerprints that ``chart`` and ``identify`` read.

One row per model: the fingerprint vector, per-layer kurtosis, content hash, quantised flag, the
architecture signature, and the model's metadata (where its weights were read, upload time and
where that time came from, documented parents and relation). The layout of the vectors (selected
layers, the sampled rows of each, block offsets, fingerprint parameters) is the same for every
model of one *plan* and is kept once per plan in the Parquet footer.

A plan is the architecture signature plus the neuron choice (layer selection, neurons per layer,
seed, sampling, projection). Sampled rows are a function of (signature, layer, seed) only
(:func:`modelatlas.weights.fingerprint.sampled_rows`), so fingerprints taken today and next year
with the same parameters share a plan and are compared; models of different plans never are.
Appending to a store skips models whose id is already there and rewrites the file atomically
(Parquet files are immutable). See docs/chart.md, "Fingerprint store".
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from modelatlas.errors import InputError
from modelatlas.weights.fingerprint import Fingerprints

FORMAT = "modelatlas-fingerprint-store"
VERSION = 1
META_KEY = b"modelatlas.fingerprint_store"
#: Target bytes of fingerprint vectors per Parquet row group: small, since ``identify`` reads a few
#: dozen scattered models and decodes every row group that holds one.
ROW_GROUP_BYTES = 1 << 20

#: Errors kept in the footer, and characters of each: Arrow reads at most 100 MB of footer
#: metadata, so the list is bounded (models left out are tried again by the next run anyway).
MAX_ERRORS = 200_000
MAX_ERROR_CHARS = 300

#: Where an upload time came from (``created_at_source``); ``file_mtime`` is a flagged fallback.
TIME_SOURCES = ("manifest", "card", "hub_cache", "file_mtime")

ROW_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("plan", pa.string(), nullable=False),
    pa.field("signature_key", pa.string(), nullable=False),
    pa.field("vector", pa.binary(), nullable=False),  # little-endian float32, the plan's width
    pa.field("kurtosis", pa.list_(pa.float64())),
    pa.field("content_hash", pa.string()),
    pa.field("hash_kind", pa.string(), nullable=False),
    pa.field("quantized", pa.bool_(), nullable=False),
    pa.field("bytes_read", pa.int64()),
    pa.field("path", pa.string()),
    pa.field("format", pa.string()),
    pa.field("model_type", pa.string()),
    pa.field("created_at", pa.timestamp("us", tz="UTC")),
    pa.field("created_at_source", pa.string()),
    pa.field("documented_parents", pa.list_(pa.string())),
    pa.field("declared_relation", pa.string()),
    pa.field("quantization_schemes", pa.list_(pa.string())),
    pa.field("notes", pa.list_(pa.string())),
])


@dataclass
class ModelMeta:
    """What is known about one model besides its weights.

    Attributes
    ----------
    id:
        The model id (manifest id, Hub repo id, folder name or file path).
    path:
        The weights file or folder read.
    format:
        ``safetensors``, ``onnx``, ``gguf``, ``torch`` (None when not known).
    model_type:
        ``config.json``'s ``model_type``.
    created_at:
        Upload time, seconds since the epoch (None when unknown).
    created_at_source:
        One of :data:`TIME_SOURCES` (``file_mtime`` marks a guess), or None.
    documented_parents:
        Parents the model's card or manifest names.
    declared_relation:
        The card's ``base_model_relation`` (or the manifest's relation).
    quantization_schemes:
        Quantisation schemes the weights file declares (``int8-affine``, ``gguf:Q4_0``, ...; from its
        header, :func:`modelatlas.weights.quantization.detect_quantization`).
    notes:
        Messages about the model (e.g. the time fallback) shown wherever it is listed.
    """

    id: str
    path: str | None = None
    format: str | None = None
    model_type: str | None = None
    created_at: float | None = None
    created_at_source: str | None = None
    documented_parents: tuple[str, ...] = ()
    declared_relation: str | None = None
    quantization_schemes: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


def plan_key(fp: Fingerprints) -> str:
    """The key of a fingerprint's plan: its signature and neuron choice (16 hex digits)."""
    parts = [fp.signature_key, fp.layers, fp.n_neurons, fp.seed, fp.sampling, fp.projection]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def plan_layout(fp: Fingerprints) -> dict:
    """The layout of ``fp``'s vectors, as kept per plan in a store's footer (JSON-ready)."""
    return {"signature_key": fp.signature_key, "layer_names": list(fp.layer_names),
            "layer_offsets": [int(x) for x in fp.layer_offsets],
            "layer_rows": [[int(r) for r in rows] for rows in fp.layer_rows],
            "n_neurons": fp.n_neurons, "layers": fp.layers, "seed": fp.seed, "sampling": fp.sampling,
            "projection": fp.projection}


def _timestamp(seconds: float | None):
    if seconds is None or not math.isfinite(seconds):
        return None
    return int(round(seconds * 1e6))


def fingerprint_rows(fp: Fingerprints, metas: dict[str, ModelMeta] | None = None) -> tuple[pa.Table, dict]:
    """Store rows for the models of ``fp`` and the layout of its plan.

    Parameters
    ----------
    fp:
        Fingerprints of one plan.
    metas:
        Model id -> :class:`ModelMeta` (models without one get only their id).

    Returns
    -------
    (table, {plan key: layout})
    """
    metas = metas or {}
    key = plan_key(fp)
    n = len(fp.ids)
    m = [metas.get(i) or ModelMeta(i) for i in fp.ids]
    vectors = np.ascontiguousarray(fp.vectors, "<f4")
    vec = pa.array([row.tobytes() for row in vectors], pa.binary())
    kurt = (pa.nulls(n, pa.list_(pa.float64())) if fp.kurtosis is None else
            pa.array([list(map(float, row)) for row in np.asarray(fp.kurtosis)], pa.list_(pa.float64())))
    cols = {
        "id": pa.array(fp.ids, pa.string()), "plan": pa.array([key] * n, pa.string()),
        "signature_key": pa.array([fp.signature_key] * n, pa.string()), "vector": vec, "kurtosis": kurt,
        "content_hash": pa.array(fp.content_hashes, pa.string()),
        "hash_kind": pa.array([fp.hash_kind] * n, pa.string()),
        "quantized": pa.array(np.asarray(fp.quantized, bool)),
        "bytes_read": pa.array(np.asarray(fp.bytes_read, np.int64)),
        "path": pa.array([x.path for x in m], pa.string()),
        "format": pa.array([x.format for x in m], pa.string()),
        "model_type": pa.array([x.model_type for x in m], pa.string()),
        "created_at": pa.array([_timestamp(x.created_at) for x in m], pa.timestamp("us", tz="UTC")),
        "created_at_source": pa.array([x.created_at_source for x in m], pa.string()),
        "documented_parents": pa.array([list(x.documented_parents) for x in m], pa.list_(pa.string())),
        "declared_relation": pa.array([x.declared_relation for x in m], pa.string()),
        "quantization_schemes": pa.array([list(x.quantization_schemes) for x in m], pa.list_(pa.string())),
        "notes": pa.array([list(x.notes) for x in m], pa.list_(pa.string())),
    }
    return pa.table(cols, schema=ROW_SCHEMA), {key: plan_layout(fp)}


@dataclass
class FingerprintStore:
    """A fingerprint store in memory: the rows and the layout of every plan.

    Use :meth:`open` to read one (an absent file is an empty store), :meth:`add` to add
    fingerprints (models already present are skipped), :meth:`save` to write it back.
    ``errors`` maps the id of each model that could not be fingerprinted to why (kept in the
    footer; a later run tries the model again and drops its error when it succeeds).
    """

    rows: pa.Table
    plans: dict[str, dict]
    path: Path | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def empty(cls, path: str | Path | None = None) -> "FingerprintStore":
        return cls(ROW_SCHEMA.empty_table(), {}, Path(path) if path else None)

    @classmethod
    def open(cls, path: str | Path, *, must_exist: bool = False, plan: str | None = None) -> "FingerprintStore":
        """Read a store (only the rows of ``plan`` when given).

        Raises
        ------
        InputError
            When the file is not a fingerprint store (naming it), or is absent and ``must_exist``.
        """
        path = Path(path)
        if not path.exists():
            if must_exist:
                raise InputError("no such fingerprint store (build one with `modelatlas fingerprint "
                                 "... --out F.parquet` or `modelatlas index add`)", path=str(path))
            return cls.empty(path)
        doc = _footer(path)
        plans = doc["plans"]
        errors = doc.get("errors") if isinstance(doc.get("errors"), dict) else {}
        try:
            filters = [("plan", "=", plan)] if plan is not None else None
            rows = pq.read_table(path, filters=filters, schema=ROW_SCHEMA)
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise InputError(f"cannot read the fingerprint store ({exc})", path=str(path)) from None
        return cls(rows, plans, path, {str(k): str(v) for k, v in errors.items()})

    def __len__(self) -> int:
        return self.rows.num_rows

    @property
    def ids(self) -> set[str]:
        return set(self.rows["id"].to_pylist())

    def add(self, fp: Fingerprints, metas: dict[str, ModelMeta] | None = None) -> list[str]:
        """Add the models of ``fp`` that are not in the store yet; return their ids."""
        table, layout = fingerprint_rows(fp, metas)
        present = self.ids
        seen: set[str] = set()
        keep = []
        for i, model_id in enumerate(table["id"].to_pylist()):
            if model_id not in present and model_id not in seen:
                keep.append(i)
                seen.add(model_id)
        if not keep:
            return []
        self.plans.update(layout)
        self.rows = pa.concat_tables([self.rows, table.take(pa.array(keep, pa.int64()))])
        added = [table["id"][i].as_py() for i in keep]
        for model_id in added:
            self.errors.pop(model_id, None)
        return added

    def add_store(self, other: "FingerprintStore") -> list[str]:
        """Add the models of another store that are not in this one yet; return their ids."""
        present = self.ids
        ids = other.rows["id"].to_pylist()
        keep = [i for i, model_id in enumerate(ids) if model_id not in present]
        self.record_errors(other.errors)
        for i in keep:
            self.errors.pop(ids[i], None)
        if not keep:
            return []
        taken = other.rows.take(pa.array(keep, pa.int64()))
        self.plans.update({k: other.plans[k] for k in set(taken["plan"].to_pylist())})
        self.rows = pa.concat_tables([self.rows, taken.cast(ROW_SCHEMA)])
        return [ids[i] for i in keep]

    def record_errors(self, errors: dict[str, str]) -> None:
        """Remember why models could not be fingerprinted (models in the store are not listed)."""
        present = self.ids if errors else set()
        self.errors.update({k: v for k, v in errors.items() if k not in present})

    def save(self, path: str | Path | None = None) -> Path:
        """Write the store (to a temporary file first, then renamed over the old one)."""
        path = Path(path or self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "version": VERSION, "plans": self.plans}
        if self.errors:
            kept = list(self.errors.items())[:MAX_ERRORS]
            meta["errors"] = {k: v[:MAX_ERROR_CHARS] for k, v in kept}
        schema = ROW_SCHEMA.with_metadata({META_KEY: json.dumps(meta).encode()})
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            # float bytes do not compress; decoding zstd made candidate reads 25x slower
            compression = {name: "zstd" for name in ROW_SCHEMA.names} | {"vector": "none"}
            pq.write_table(self.rows.cast(schema), tmp, compression=compression, row_group_size=self._group_rows())
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        self.path = path
        return path

    def _group_rows(self) -> int:
        """Rows per Parquet row group: about :data:`ROW_GROUP_BYTES` of vectors, so that reading a few
        models (``identify``'s candidates, :func:`read_rows`) decodes little more than them."""
        widths = [plan_width(layout) for layout in self.plans.values()]
        return int(max(1, min(65536, ROW_GROUP_BYTES // max(4 * max(widths, default=1), 1))))

    def fingerprints(self, plan: str) -> tuple[Fingerprints, pa.Table]:
        """The models of one plan as :class:`Fingerprints`, and their store rows (same order)."""
        if plan not in self.plans:
            raise InputError(f"the store has no plan {plan!r}", path=str(self.path))
        rows = self.rows.filter(pc.equal(self.rows["plan"], plan))
        layout = self.plans[plan]
        n = rows.num_rows
        vectors = decode_vectors(rows["vector"], plan_width(layout), self.path)
        kurt = rows["kurtosis"].to_pylist()
        kurtosis = (np.array(kurt, np.float64) if n and all(k is not None for k in kurt) else None)
        fp = Fingerprints(
            ids=rows["id"].to_pylist(), signature_key=layout["signature_key"],
            layer_names=list(layout["layer_names"]), vectors=vectors, kurtosis=kurtosis,
            content_hashes=rows["content_hash"].to_pylist(),
            quantized=np.asarray(rows["quantized"].to_pylist(), bool),
            bytes_read=np.asarray(rows["bytes_read"].fill_null(0).to_pylist(), np.int64),
            layer_rows=[np.asarray(r, np.int64) for r in layout["layer_rows"]],
            layer_offsets=np.asarray(layout["layer_offsets"], np.int64),
            hash_kind=rows["hash_kind"][0].as_py() if n else "sample", n_neurons=layout["n_neurons"],
            layers=layout["layers"], seed=layout["seed"], sampling=layout["sampling"],
            projection=layout["projection"])
        return fp, rows

    def plan_counts(self) -> dict[str, int]:
        """Models per plan, in the store's order."""
        out: dict[str, int] = {}
        for key in self.rows["plan"].to_pylist():
            out[key] = out.get(key, 0) + 1
        return out


def plan_width(layout: dict) -> int:
    """Length of the fingerprint vectors of a plan."""
    return int(layout["projection"] or layout["layer_offsets"][-1])


def decode_vectors(column, width: int, path=None) -> np.ndarray:
    """``n x width`` float32 vectors from the store's ``vector`` column (raw little-endian bytes)."""
    blobs = column.to_pylist() if hasattr(column, "to_pylist") else list(column)
    out = np.empty((len(blobs), width), np.float32)
    for i, blob in enumerate(blobs):
        if blob is None or len(blob) != 4 * width:
            raise InputError(f"fingerprint {i} holds {0 if blob is None else len(blob)} bytes, not {4 * width} "
                             "(the plan's width): the store is damaged", path=str(path) if path else None)
        out[i] = np.frombuffer(blob, "<f4")
    return out


def read_rows(path: str | Path, rows: np.ndarray, columns: list[str] | None = None) -> pa.Table:
    """The store rows at positions ``rows`` (in that order), reading only their row groups."""
    rows = np.asarray(rows, np.int64)
    try:
        pf = pq.ParquetFile(path)
        sizes = np.array([pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)], np.int64)
        starts = np.concatenate(([0], np.cumsum(sizes)))
        if len(rows) and (rows.min() < 0 or rows.max() >= starts[-1]):
            raise InputError(f"row {int(rows.max())} is outside the store's {int(starts[-1])} rows", path=str(path))
        groups = sorted(set(np.searchsorted(starts, rows, side="right").tolist()))
        groups = [g - 1 for g in groups]
        table = pf.read_row_groups(groups, columns=columns) if groups else pf.schema_arrow.empty_table()
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read the fingerprint store ({exc})", path=str(path)) from None
    offset = {g: int(sum(sizes[h] for h in groups[:k])) for k, g in enumerate(groups)}
    local = [offset[int(np.searchsorted(starts, r, side="right") - 1)] + int(r - starts[
        np.searchsorted(starts, r, side="right") - 1]) for r in rows.tolist()]
    return table.take(pa.array(local, pa.int64()))


def read_plans(path: str | Path) -> dict[str, dict]:
    """The plan layouts of a store (reads the Parquet footer only)."""
    return _footer(path)["plans"]


def _footer(path: str | Path) -> dict:
    """The store's footer document: plans, and the errors of models left out (checked)."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"not a Parquet file ({exc})", path=str(path)) from None
    try:
        doc = json.loads(meta[META_KEY])
    except (KeyError, ValueError):
        raise InputError("a Parquet file but not a modelatlas fingerprint store", path=str(path)) from None
    if doc.get("format") != FORMAT or not isinstance(doc.get("plans"), dict):
        raise InputError("a Parquet file but not a modelatlas fingerprint store", path=str(path))
    if doc.get("version", 0) > VERSION:
        raise InputError(f"fingerprint store version {doc['version']} is newer than this modelatlas "
                         f"reads ({VERSION}); upgrade modelatlas", path=str(path))
    return doc


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a Parquet fingerprint store (by suffix and footer)."""
    path = Path(path)
    if not (path.is_file() and path.suffix == ".parquet"):
        return False
    try:
        read_plans(path)
    except InputError:
        return False
    return True


def fingerprint_into_store(models: list[tuple[Path, ModelMeta]], store: FingerprintStore, *,
                           n_neurons: int = 100, layers: str = "dense", seed: int = 0, sampling: str = "layer",
                           kurtosis: bool | None = None, hash_kind: str = "sample",
                           project: int | None = None, on_error: str = "skip",
                           progress=None, executor=None, batch_size: int | None = None, journal=None,
                           bar: bool = False) -> tuple[list[str], list[str]]:
    """Fingerprint the models not yet in ``store`` (by id) and add them, grouped into relatives
    (:func:`modelatlas.weights.relatives.relative_groups`: one architecture, any format).

    Parameters
    ----------
    models:
        ``(weights path or URL, metadata)`` pairs.
    store:
        The store to extend (in memory; call :meth:`FingerprintStore.save` to write it, unless a
        ``journal`` is given).
    n_neurons, layers, seed, sampling, kurtosis, hash_kind, project:
        Fingerprint parameters (:func:`modelatlas.weights.fingerprint.fingerprint_models`).
    on_error:
        ``skip`` (a model that cannot be read becomes a message and an entry of ``store.errors``)
        or ``raise``.
    progress:
        Called with the number of models of each finished batch (for progress bars).
    executor, batch_size, journal, bar:
        Where and how the work runs (:func:`modelatlas.engine.fingerprint_run.fingerprint_run`;
        default: in this process).

    Returns
    -------
    (added ids, messages)
        Messages name each model left out and why, and the models already in the store.
    """
    from modelatlas.engine.fingerprint_run import BATCH, FingerprintParams, fingerprint_run

    params = FingerprintParams(n_neurons=n_neurons, layers=layers, seed=seed, sampling=sampling, kurtosis=kurtosis,
                               hash_kind=hash_kind, project=project)
    return fingerprint_run(models, store, params=params, executor=executor, batch_size=batch_size or BATCH,
                           journal=journal, on_error=on_error, bar=bar, progress=progress)


def _drop(fp: Fingerprints, rows: list[int]) -> Fingerprints:
    from dataclasses import replace

    keep = np.setdiff1d(np.arange(len(fp.ids)), rows)
    return replace(fp, ids=[fp.ids[i] for i in keep], vectors=fp.vectors[keep],
                   kurtosis=None if fp.kurtosis is None else fp.kurtosis[keep],
                   content_hashes=[fp.content_hashes[i] for i in keep], quantized=fp.quantized[keep],
                   bytes_read=fp.bytes_read[keep])
