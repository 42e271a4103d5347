"""From a zoo folder (``manifest.json`` + weights files) to a :class:`ChartInput` and its truth.

Models are grouped into architecture groups of relatives — same canonical signature, or most
parameters shared across file formats (:func:`modelatlas.weights.relatives.relative_groups`) — and
fingerprinted per group on the tensors its members share
(:func:`modelatlas.weights.fingerprint.fingerprint_models`, 100 sampled neurons per layer); groups
are never compared. Problems that concern single models — a weights file that is absent or
unreadable, a model alone in its architecture, NaN in a fingerprint — are reported as messages
and the model is left out (its children's truth is then unknown); the rest of the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modelatlas.chart.types import ChartInput, GroundTruth, LayerBlock
from modelatlas.errors import InputError


@dataclass
class ZooInput:
    """Charting input read from a zoo, with ground truth (``None`` entries where unknown)."""

    models: ChartInput
    truth: GroundTruth | None
    records: list[dict]
    messages: list[str] = field(default_factory=list)


def load_zoo_input(location: str | Path, *, n_neurons: int = 100, layers: str = "dense",
                   seed: int = 0) -> ZooInput:
    """Read a zoo and fingerprint its models.

    Parameters
    ----------
    location:
        The zoo folder (or its ``manifest.json``).
    n_neurons, layers, seed:
        Fingerprint parameters (see :func:`modelatlas.weights.fingerprint.fingerprint_models`).

    Raises
    ------
    InputError
        When the manifest itself cannot be read or no model can be fingerprinted.
    """
    from modelatlas.chart.store_input import layer_blocks
    from modelatlas.weights.fingerprint import fingerprint_models
    from modelatlas.weights.relatives import relative_groups
    from modelatlas.weights.store import plan_layout
    from modelatlas.zoo.manifest import load_manifest

    zoo = load_manifest(location, check_files=False)
    messages: list[str] = []
    present = []
    for m in zoo.models:
        if not Path(m.path).is_file():
            messages.append(f"{m.id}: weights file {m.path} is absent; model left out")
        else:
            present.append(m)
    by_path = {str(Path(m.path)): m for m in present}
    groups = {g.key: g for g in relative_groups(
        [m.path for m in present],
        on_error=lambda p, exc: messages.append(f"{by_path[str(p)].id}: {exc}; model left out"))}
    if not groups:
        raise InputError("no model of the zoo could be read", path=str(location))
    ids: list[str] = []
    vecs: list[np.ndarray] = []
    blocks_by_group: dict[str, list[LayerBlock]] = {}
    group_of: list[str] = []
    kurt: list[np.ndarray] = []
    quant: list[bool] = []
    hashes: list[str | None] = []
    for key, group in groups.items():
        models = [by_path[str(Path(p))] for p in group.paths]
        opened = group.open_all()
        try:
            fp = fingerprint_models(opened, ids=[m.id for m in models], n_neurons=n_neurons, layers=layers,
                                    seed=seed, align=group.align)
        finally:
            for wf in opened:
                wf.close()
        blocks_by_group[key] = layer_blocks(plan_layout(fp))
        for r, m in enumerate(models):
            v = np.asarray(fp.vectors[r], np.float32)
            if not np.all(np.isfinite(v)):
                messages.append(f"{m.id}: fingerprint holds NaN or infinite values; model left out")
                continue
            ids.append(m.id)
            vecs.append(v)
            group_of.append(key)
            kurt.append(None if fp.kurtosis is None else np.asarray(fp.kurtosis[r], np.float64))
            quant.append(bool(fp.quantized[r]))
            hashes.append(fp.content_hashes[r])
    if not ids:
        raise InputError("no model of the zoo could be fingerprinted", path=str(location))
    # Rows are grouped by signature; the layout of the first group is the ChartInput's. Other
    # groups have their own layouts, handled by charting each group with its own blocks.
    models_input = _assemble(ids, vecs, group_of, blocks_by_group, kurt, quant, hashes, zoo.models)
    truth = zoo_truth(ids, zoo.models)
    records = [_record(m) for m in zoo.models if m.id in set(ids)]
    return ZooInput(models_input, truth, records, messages)


def _assemble(ids, vecs, group_of, blocks_by_group, kurt, quant, hashes, zoo_models) -> ChartInput:
    width = max(len(v) for v in vecs)
    mat = np.zeros((len(vecs), width), np.float32)
    for i, v in enumerate(vecs):
        mat[i, :len(v)] = v
    index = {m: i for i, m in enumerate(ids)}
    by_id = {m.id: m for m in zoo_models}
    times = np.array([by_id[i].created_at.timestamp() if by_id[i].created_at else np.nan for i in ids])
    documented = {}
    for i in ids:
        m = by_id[i]
        if m.documented_parents and m.parents:
            ps = tuple(index[p] for p in m.parents if p in index)
            if len(ps) == len(m.parents):
                documented[index[i]] = ps
    return GroupedChartInput(ids=ids, vectors=mat, layers=[], created_at=times, quantized=np.array(quant),
                             content_hashes=hashes, documented_parents=documented,
                             groups=np.array(group_of, dtype=object), kurtosis=stack_kurtosis(kurt),
                             layouts=blocks_by_group)


def stack_kurtosis(kurt: list[np.ndarray | None]) -> np.ndarray | None:
    """Per-model kurtosis rows as one ``n x L`` array (NaN-padded to the widest), ``None`` unless
    every model has one."""
    n_layers = max((len(k) for k in kurt if k is not None), default=0)
    if not n_layers or any(k is None for k in kurt):
        return None
    out = np.full((len(kurt), n_layers), np.nan)
    for r, k in enumerate(kurt):
        out[r, :len(k)] = k
    return out


@dataclass
class GroupedChartInput(ChartInput):
    """A :class:`ChartInput` whose architecture groups each have their own fingerprint layout."""

    layouts: dict[str, list[LayerBlock]] = field(default_factory=dict)

    def subset(self, rows: np.ndarray) -> ChartInput:
        sub = super().subset(rows)
        keys = set(map(str, sub.groups))
        if len(keys) == 1:
            key = keys.pop()
            blocks = self.layouts.get(key) or []
            width = max((b.offset + b.size for b in blocks), default=sub.vectors.shape[1])
            sub = ChartInput(ids=sub.ids, vectors=sub.vectors[:, :width], layers=list(blocks),
                             created_at=sub.created_at, quantized=sub.quantized,
                             content_hashes=sub.content_hashes, documented_parents=sub.documented_parents,
                             groups=sub.groups, kurtosis=_trim_kurtosis(sub.kurtosis, len(blocks)),
                             components=sub.components)
        return sub


def _trim_kurtosis(k: np.ndarray | None, n_layers: int) -> np.ndarray | None:
    return None if k is None else k[:, :max(n_layers, 1)]


def zoo_truth(ids: list[str], zoo_models) -> GroundTruth:
    """The manifest's lineage of the models ``ids`` (row order); ``None`` where a parent is absent."""
    index = {m: i for i, m in enumerate(ids)}
    by_id = {m.id: m for m in zoo_models}
    parents: list[tuple[int, ...] | None] = []
    for i in ids:
        m = by_id[i]
        if m.parents is None or any(p not in index for p in m.parents):
            parents.append(None)  # unknown lineage, or a parent that was left out
        else:
            parents.append(tuple(index[p] for p in m.parents))
    return GroundTruth(parents=parents, relation=[by_id[i].relation for i in ids],
                       pattern=[by_id[i].pattern for i in ids],
                       component=np.array([str(by_id[i].component) for i in ids], dtype=object))


def _record(m) -> dict:
    return {"id": m.id, "created_at": m.created_at, "model_type": m.architecture,
            "has_weights": True, "placeholder": False}
