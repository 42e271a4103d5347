"""Fingerprinting as engine tasks: headers, then one task per batch of relatives, journalled.

1. **Headers** (one task per :data:`HEADER_BATCH` models): each model's format, declared
   quantisation, architecture signature and parameter names, from its header only.
2. **Groups** (on the driver, no reading unless a GGUF must be renamed or matched by value):
   :func:`modelatlas.weights.relatives.relative_groups` from those headers.
3. **Fingerprints** (one task per batch of at most ``batch_size`` models of one group): every batch
   of a group samples the same rows (the group's shared signature is passed to each), so a model's
   fingerprint is the same bytes whichever batch, worker or engine reads it.

A finished batch is written at once as a small fingerprint store in the journal folder beside the
store (``.NAME.parquet.parts/``); the store itself is rewritten once at the end, in batch order
(the same rows in the same order on every engine). A run that is killed loses only the batches in
flight: the next run first folds the journal into the store, then skips every model already
there. Models that cannot be read, change while read, or whose batch failed (its worker died
more often than Ray retries) are recorded in the store's ``errors`` and tried again next run;
none stops the run. See ``docs/scale.md``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from modelatlas.engine.executor import Executor, LocalExecutor, TaskFailure
from modelatlas.engine.progress import engine_progress
from modelatlas.errors import InputError
from modelatlas.weights.signature import ArchitectureSignature

#: Models per header task (headers are a few kB each: many per task keep the overhead small).
HEADER_BATCH = 256
#: Models per fingerprint task: a few MB each are read, so a task is ~0.1-1 s of reading.
BATCH = 16


@dataclass(frozen=True)
class FingerprintParams:
    """The fingerprint parameters (:func:`modelatlas.weights.fingerprint.fingerprint_models`)."""

    n_neurons: int = 100
    layers: str = "dense"
    seed: int = 0
    sampling: str = "layer"
    kurtosis: bool | None = None
    hash_kind: str = "sample"
    project: int | None = None


@dataclass
class Header:
    """What a model's header says (the result of :func:`read_headers` for one model)."""

    format: str
    schemes: tuple[str, ...]
    signature: ArchitectureSignature
    names: list[str]


@dataclass
class Batch:
    """One fingerprint task: models of one group of relatives and the plan they share."""

    index: int
    members: list  # (relatives.Member, store.ModelMeta) pairs
    align: str
    reference: ArchitectureSignature | None
    shared: dict  # normalised name -> shape of the tensors every member of the group holds
    params: FingerprintParams


def read_headers(items: list[tuple[str, str]]) -> list[tuple[str, Header | str]]:
    """Engine task: ``(location, id)`` pairs -> ``(id, Header or error message)``."""
    from modelatlas.weights.quantization import detect_quantization
    from modelatlas.weights.reader import open_weights
    from modelatlas.weights.signature import is_parameter, signature

    out = []
    for location, model_id in items:
        try:
            with open_weights(location) as wf:
                out.append((model_id, Header(wf.format, tuple(detect_quantization(wf, sample_rows=0).schemes),
                                             signature(wf),
                                             [t.name for t in wf.tensors.values() if is_parameter(t)])))
        except Exception as exc:  # noqa: BLE001 -- one unreadable model is recorded, the rest go on
            out.append((model_id, _message(exc, location)))
    return out


def fingerprint_batch(batch: Batch):
    """Engine task: fingerprint one batch into a small :class:`~modelatlas.weights.store.FingerprintStore`.

    Each model's file state (size, modification time or ETag) is taken before it is opened and
    after the batch is read; a model whose file changed is left out with an error, as are
    unreadable models and fingerprints holding NaN or infinities. The returned store holds the
    rows of the others and the errors.
    """
    from dataclasses import asdict

    from modelatlas.weights.fingerprint import fingerprint_models
    from modelatlas.weights.remote import file_state
    from modelatlas.weights.store import FingerprintStore, _drop, plan_key

    part = FingerprintStore.empty()
    errors: dict[str, str] = {}
    opened, ids, metas, before, where = [], [], {}, {}, {}
    try:
        for member, meta in batch.members:
            try:
                before[meta.id] = file_state(member.path)
                opened.append(member.open())
            except Exception as exc:  # noqa: BLE001 -- recorded, the batch goes on
                errors[meta.id] = _message(exc, member.path)
                continue
            ids.append(meta.id)
            metas[meta.id] = meta
            where[meta.id] = member.path
        fp = None
        if opened:
            try:
                fp = fingerprint_models(opened, ids=ids, on_error="skip", align=batch.align,
                                        reference=batch.reference, **asdict(batch.params))
            except InputError as exc:  # e.g. a layer selection that keeps nothing of this architecture
                errors.update({model_id: str(exc) for model_id in ids})
    finally:
        for wf in opened:
            wf.close()
    if fp is None:
        part.errors = errors
        return part
    errors.update(dict(fp.skipped))
    bad = []
    for i, model_id in enumerate(fp.ids):
        if not np.all(np.isfinite(fp.vectors[i])):
            errors[model_id] = "fingerprint holds NaN or infinite values"
            bad.append(i)
            continue
        try:
            changed = file_state(where[model_id]) != before[model_id]
        except InputError as exc:
            changed, errors[model_id] = True, str(exc)
        if changed:
            errors.setdefault(model_id, f"{where[model_id]}: changed while it was read (size or modification "
                                        "time differ before and after); fingerprint again when it is stable")
            bad.append(i)
    if bad:
        fp = _drop(fp, bad)
    if fp.ids:
        part.add(fp, metas)
        # the tensors' shapes let a model with more tensors be read at this plan's rows
        part.plans[plan_key(fp)].setdefault("layer_shapes", [list(batch.shared[n]) for n in fp.layer_names])
    part.errors = errors
    return part


def joined(parts: list):
    """One store holding the rows, plans and errors of ``parts`` in order (each model in one part).

    Added to a store in one :meth:`~modelatlas.weights.store.FingerprintStore.add_store`, so that
    folding in many batches costs one pass over the store's ids, not one per batch.
    """
    import pyarrow as pa

    from modelatlas.weights.store import ROW_SCHEMA, FingerprintStore

    plans: dict = {}
    errors: dict = {}
    for part in parts:
        for key, layout in part.plans.items():
            plans.setdefault(key, layout)
        errors.update(part.errors)
    rows = pa.concat_tables([part.rows.cast(ROW_SCHEMA) for part in parts]) if parts else ROW_SCHEMA.empty_table()
    return FingerprintStore(rows, plans, None, errors)


class Journal:
    """Finished batches of a run, one small store each, beside the store they will join.

    Parameters
    ----------
    store_path:
        The fingerprint store; the journal is the folder ``.NAME.parts`` next to it.
    """

    def __init__(self, store_path: str | Path):
        self.store_path = Path(store_path)
        self.folder = self.store_path.with_name(f".{self.store_path.name}.parts")

    def recover(self, store) -> list[str]:
        """Fold the batches a stopped run left into ``store`` (in memory); return the ids added."""
        from modelatlas.weights.store import FingerprintStore

        loaded = []
        if self.folder.is_dir():
            for part in sorted(self.folder.glob("batch-*.parquet")):
                try:
                    loaded.append(FingerprintStore.open(part))
                except InputError:  # a part is renamed into place whole, so this is not ours: skip it
                    continue
        return store.add_store(joined(loaded)) if loaded else []

    def write(self, index: int, part) -> None:
        """Keep one finished batch (written whole, then renamed into place)."""
        part.save(self.folder / f"batch-{index:08d}.parquet")

    def commit(self, store) -> None:
        """Write the store (atomically), then drop the journal it now holds."""
        store.save(self.store_path)
        shutil.rmtree(self.folder, ignore_errors=True)


def fingerprint_run(models: list[tuple[str | Path, object]], store, *, params: FingerprintParams = FingerprintParams(),
                    executor: Executor | None = None, batch_size: int = BATCH, journal: Journal | None = None,
                    on_error: str = "skip", bar: bool = False,
                    progress: Callable[[int], None] | None = None) -> tuple[list[str], list[str]]:
    """Fingerprint the models not yet in ``store`` (by id) on an engine; see the module docstring.

    Parameters
    ----------
    models:
        ``(weights location, ModelMeta)`` pairs: a path, a folder or a URL (``file://``, ``hf://``,
        ``s3://``, ...; :mod:`modelatlas.weights.remote`).
    store:
        The :class:`~modelatlas.weights.store.FingerprintStore` to extend (in memory unless a
        ``journal`` is given, which also writes it).
    params:
        Fingerprint parameters.
    executor:
        Where tasks run (default: this process).
    batch_size:
        Models per fingerprint task.
    journal:
        Write finished batches as they come, recover a stopped run's, and save the store at the end.
    on_error:
        ``skip`` (errors are recorded in ``store.errors`` and listed in the messages) or ``raise``
        (the first error stops the run, as an :class:`InputError`).
    bar:
        Draw progress bars (done / failed / rate / ETA) on standard error.
    progress:
        Also called with the number of models of each finished batch.

    Returns
    -------
    (added ids, messages)
        Messages name each model left out and why, and the models already in the store.
    """
    from modelatlas.weights.relatives import relative_groups
    from modelatlas.weights.signature import common_signature

    executor = executor or LocalExecutor()
    messages: list[str] = []
    recovered = journal.recover(store) if journal is not None else []
    if recovered:
        messages.append(f"{len(recovered)} models recovered from a stopped run's finished batches")
    present = store.ids
    again = [meta.id for _, meta in models if meta.id in present]
    if again:
        messages.append(f"{len(again)} models already in the store, not read again "
                        f"({', '.join(again[:3])}{', ...' if len(again) > 3 else ''})")
    todo = {meta.id: (str(loc) if isinstance(loc, str) else Path(loc), meta) for loc, meta in models
            if meta.id not in present}
    errors: dict[str, str] = {}

    def failed(model_id: str, message: str) -> None:
        if on_error == "raise":
            raise InputError(message)
        errors[model_id] = message

    headers: dict[str, Header] = {}
    items = [(str(loc), model_id) for model_id, (loc, _) in todo.items()]
    chunks = [items[i:i + HEADER_BATCH] for i in range(0, len(items), HEADER_BATCH)]
    label = f"({executor.name}, {executor.workers} worker{'s' * (executor.workers > 1)})"
    with engine_progress(f"reading headers {label}", len(items), enabled=bar and bool(items)) as tally:
        for i, result in executor.map_unordered(read_headers, chunks):
            if isinstance(result, TaskFailure):
                for _, model_id in chunks[i]:
                    failed(model_id, f"{todo[model_id][0]}: header task failed ({result})")
                tally.failed(len(chunks[i]))
                continue
            for model_id, header in result:
                if isinstance(header, str):
                    failed(model_id, header)
                    tally.failed()
                    continue
                meta = todo[model_id][1]
                meta.format = meta.format or header.format
                meta.quantization_schemes = header.schemes
                headers[str(todo[model_id][0])] = (header.signature, header.format, header.names)
                tally.done()
    by_location = {str(loc): meta for loc, meta in todo.values()}
    # Relatives in other formats (canonical names, docs/weights.md) share one plan, on the tensors
    # they all hold, so that `identify` compares a GGUF or ONNX copy with its safetensors parent.
    groups = relative_groups([loc for loc, meta in todo.values() if meta.id not in errors], headers=headers,
                             on_error=lambda p, exc: failed(by_location[str(p)].id, _message(exc, p)))
    batches: list[Batch] = []
    for group in groups:
        shared_sig = common_signature([m.signature for m in group.members])
        reference = shared_sig if group.align == "common" else None
        members = [(m, by_location[str(m.path)]) for m in group.members]
        for start in range(0, len(members), batch_size):
            batches.append(Batch(len(batches), members[start:start + batch_size], group.align, reference,
                                 dict(shared_sig.entries), params))
    parts: dict[int, object] = {}
    total = sum(len(b.members) for b in batches)
    with engine_progress(f"fingerprinting {label}", total, enabled=bar and bool(total)) as tally:
        for i, result in executor.map_unordered(fingerprint_batch, batches):
            batch = batches[i]
            if isinstance(result, TaskFailure):
                for _, meta in batch.members:
                    failed(meta.id, f"{meta.path or meta.id}: batch failed ({result})")
                tally.failed(len(batch.members))
            else:
                if on_error == "raise" and result.errors:
                    raise InputError(next(iter(result.errors.values())))
                if journal is not None:
                    journal.write(i, result)
                parts[i] = result
                tally.failed(len(result.errors))
                tally.done(len(batch.members) - len(result.errors))
            if progress is not None:
                progress(len(batch.members))
    # batch order: the same rows in the same order on every engine
    done = joined([parts[i] for i in sorted(parts)])
    added = recovered + store.add_store(done)
    errors.update(done.errors)
    store.record_errors(errors)
    if journal is not None and (added or errors or journal.folder.exists()):
        journal.commit(store)
    messages += [f"{message if message.startswith(f'{model_id}:') else f'{model_id}: {message}'}; left out"
                 for model_id, message in errors.items()]
    return added, messages


def _message(exc: Exception, location) -> str:
    return str(exc) if isinstance(exc, InputError) else f"{location}: unreadable ({exc.__class__.__name__}: {exc})"
