"""From a fingerprint store to a :class:`ChartInput`: one architecture group per plan.

Models of one plan (architecture signature + neuron choice, :mod:`modelatlas.weights.store`) were
sampled at the same rows and are compared; plans never are. Documented parents (a card's
``base_model``) become known edges when the parent is in the collection; a parent that is not is
reported, and the model is charted from its weights alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modelatlas.chart.types import LayerBlock
from modelatlas.chart.zoo_input import GroupedChartInput, stack_kurtosis
from modelatlas.weights.store import FingerprintStore


def layer_blocks(layout: dict) -> list[LayerBlock]:
    """Where each fingerprinted layer sits in the vectors of a store plan (none when projected).

    Parameters
    ----------
    layout:
        A plan layout of :class:`~modelatlas.weights.store.FingerprintStore` (``layer_names``,
        ``layer_rows``, ``layer_offsets``, ``projection``).
    """
    if layout["projection"]:
        return []
    offsets = np.asarray(layout["layer_offsets"], np.int64)
    blocks = []
    for li, name in enumerate(layout["layer_names"]):
        size = int(offsets[li + 1] - offsets[li])
        rows = len(layout["layer_rows"][li])
        if size and rows:
            blocks.append(LayerBlock(name, int(offsets[li]), rows, size // rows))
    return blocks


@dataclass
class StoreInput:
    """Charting input read from a store, with its metadata rows and messages."""

    models: GroupedChartInput
    records: list[dict]
    notes: dict[str, list[str]]
    declared: dict[str, str]
    messages: list[str] = field(default_factory=list)


def chart_input_from_store(store: FingerprintStore) -> StoreInput:
    """Every model of ``store`` as one :class:`GroupedChartInput` (groups = plans).

    Raises
    ------
    InputError
        When the store holds no model.
    """
    from modelatlas.errors import InputError

    if not len(store):
        raise InputError("the fingerprint store holds no model", path=str(store.path))
    ids, vecs, groups, kurt, quant, hashes, times, metas = [], [], [], [], [], [], [], []
    layouts: dict[str, list[LayerBlock]] = {}
    for plan in store.plan_counts():
        fp, rows = store.fingerprints(plan)
        layouts[plan] = layer_blocks(store.plans[plan])
        created = rows["created_at"].cast("int64").to_pylist()
        for r, model_id in enumerate(fp.ids):
            ids.append(model_id)
            vecs.append(np.asarray(fp.vectors[r], np.float32))
            groups.append(plan)
            kurt.append(None if fp.kurtosis is None else fp.kurtosis[r])
            quant.append(bool(fp.quantized[r]))
            hashes.append(fp.content_hashes[r])
            times.append(np.nan if created[r] is None else created[r] / 1e6)
        metas += rows.select(["id", "documented_parents", "declared_relation", "created_at", "created_at_source",
                              "model_type", "path", "format", "notes"]).to_pylist()
    width = max(len(v) for v in vecs)
    mat = np.zeros((len(vecs), width), np.float32)
    for i, v in enumerate(vecs):
        mat[i, :len(v)] = v
    index = {m: i for i, m in enumerate(ids)}
    documented: dict[int, tuple[int, ...]] = {}
    messages: list[str] = []
    for meta in metas:
        parents = meta["documented_parents"] or []
        inside = [p for p in parents if p in index and p != meta["id"]]
        missing = [p for p in parents if p not in index]
        if missing:
            messages.append(f"{meta['id']}: its card names base_model {', '.join(missing)}, which is not "
                            "among the models charted; charted from its weights alone"
                            if not inside else
                            f"{meta['id']}: base_model {', '.join(missing)} is not among the models charted")
        if inside and not missing:
            child = index[meta["id"]]
            if any(groups[index[p]] != groups[child] for p in inside):
                messages.append(f"{meta['id']}: documented parent {', '.join(inside)} has another "
                                "architecture or fingerprint plan; the edge is kept as documented")
            documented[child] = tuple(index[p] for p in inside)
    _drop_cycles(documented, ids, messages)
    models = GroupedChartInput(ids=ids, vectors=mat, layers=[], created_at=np.array(times, np.float64),
                               quantized=np.array(quant), content_hashes=hashes, documented_parents=documented,
                               groups=np.array(groups, dtype=object), kurtosis=stack_kurtosis(kurt), layouts=layouts)
    records = [{"id": m["id"], "created_at": m["created_at"], "model_type": m["model_type"], "has_weights": True,
                "placeholder": False} for m in metas]
    notes = {m["id"]: list(m["notes"] or []) for m in metas if m["notes"]}
    declared = {m["id"]: m["declared_relation"] for m in metas if m["declared_relation"]}
    return StoreInput(models, records, notes, declared, messages)


def _drop_cycles(documented: dict[int, tuple[int, ...]], ids: list[str], messages: list[str]) -> None:
    """Cards that name each other as base models (a cycle): drop one card's claim per cycle."""
    from modelatlas.chart.graph import find_cycle

    for _ in range(len(documented)):
        cycle = find_cycle(documented)
        if not cycle:
            return
        child = cycle[1]
        messages.append(f"{ids[child]}: documented parents form a cycle ({' -> '.join(ids[c] for c in cycle)}); "
                        "its card's claim is ignored")
        del documented[child]


def chart_input_from_paths(paths: list, store: FingerprintStore | None = None, *, mtime_fallback: bool = False,
                           progress=None, **fingerprint_options) -> tuple[StoreInput, list[str]]:
    """Fingerprint what ``paths`` hold into ``store`` (reusing fingerprints it has) and read the
    store back as charting input: what ``modelatlas chart PATH...`` and ``ma.chart(paths)`` chart.

    Parameters
    ----------
    paths:
        Model files, folders, zoos and fingerprint stores
        (:func:`~modelatlas.weights.discover.add_paths_to_store`).
    store:
        The store to extend in memory (the caller saves it); ``None`` for a new empty one.
    mtime_fallback, progress, **fingerprint_options:
        As in :func:`~modelatlas.weights.discover.add_paths_to_store` (e.g. ``executor=`` and
        ``bar=`` of :func:`~modelatlas.weights.store.fingerprint_into_store`).

    Returns
    -------
    (input, added ids)
        ``input.messages`` starts with what discovery said about paths and models left out.

    Raises
    ------
    InputError
        When no model could be read at all.
    """
    from modelatlas.errors import InputError
    from modelatlas.weights.discover import add_paths_to_store

    work = store if store is not None else FingerprintStore.empty()
    added, messages = add_paths_to_store([Path(p) for p in paths], work, mtime_fallback=mtime_fallback,
                                         progress=progress, **fingerprint_options)
    if not len(work):
        raise InputError("no model could be read: " + ("; ".join(messages[:3]) or "nothing given"))
    loaded = chart_input_from_store(work)
    loaded.messages[:0] = messages
    return loaded, added
