"""From the paths a user has to models: ids, weights, upload times and documented parents.

Accepted, without a manifest (docs/chart.md, "Charting what you have"):

* a weights file (``.safetensors``, ``.gguf``, ``.onnx``, a shard index, PyTorch ``.pt`` / ``.pth``):
  one model, id = the file name without suffix; inside a model folder (below) the folder's id and
  card apply (``<folder id>:<file name>`` when it is not the file the folder would be read from);
* a Hugging Face-style model folder (``config.json`` and / or ``README.md`` beside the weights):
  one model, id = the folder name (or the repo id of a cache snapshot); weights = the shard index,
  else ``model.safetensors``, else one ``.safetensors`` / ``.onnx`` file. Several GGUF files in one
  folder are one model each (a GGUF repository holds quantisations side by side): id
  ``<folder id>:<file name>``;
* a Hugging Face cache entry ``models--org--name`` (the snapshot ``refs/main`` points to, else
  the only one) or a snapshot folder ``models--org--name/snapshots/<rev>``: id ``org/name``;
  a cache root holding ``models--*`` folders: every entry;
* a zoo folder or ``manifest.json``: its models, with the manifest's ids, times and documented
  parents;
* any other folder: the weights files in it (one model each), else its sub-folders.

Documented parents and relation come from the card's front matter (``base_model``,
``base_model_relation``, read as the ingest reads Hub cards: :func:`modelatlas.ingest.card.card_fields`).
The upload time comes, in order, from the manifest, the card's ``created_at``, or a Hub API
answer saved beside the model (``model_info.json``: ``createdAt`` / ``created_at``); the Hugging
Face cache itself records no upload time (its files carry the download time). Only with
``mtime_fallback`` is a file's modification time used, and the model is then flagged.

Problems with one path (two models in a folder, a missing shard, a pickled ``.bin``, an
unsupported file) become a message naming the file; the other paths go on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from modelatlas.errors import InputError
from modelatlas.weights.store import ModelMeta

#: Weights files a model can be charted from, by suffix.
READABLE = (".safetensors", ".gguf", ".onnx", ".pt", ".pth")
#: Pickled PyTorch files found in model folders: never unpickled (see :func:`discover_models`).
PICKLES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: Other weights formats we recognise but cannot read.
UNSUPPORTED = (".h5", ".keras", ".msgpack", ".tflite", ".pb", ".ggml", ".npz", ".nemo", ".mlmodel")
CARD_NAMES = ("README.md", "readme.md")
HUB_INFO_NAME = "model_info.json"
#: Bounds on what is read from small side files (cards, configs, saved Hub answers).
SIDE_FILE_LIMIT = 4 << 20


@dataclass
class FoundModel:
    """One model found under the user's paths: its weights and what is known about it."""

    weights: Path
    meta: ModelMeta


@dataclass
class Discovery:
    """The models found and the messages about paths that gave none."""

    models: list[FoundModel] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def discover_models(paths: list[str | Path], *, mtime_fallback: bool = False) -> Discovery:
    """Find the models under ``paths``.

    Parameters
    ----------
    paths:
        Files and folders, as listed in the module docstring.
    mtime_fallback:
        Use a weights file's modification time when no upload time is documented (marked
        ``created_at_source="file_mtime"`` and noted on the model).

    Returns
    -------
    Discovery
        Models in input order (ids made unique by the path when two paths give the same id) and one
        message per path that gave no model or lost part of one.
    """
    out = Discovery()
    for path in map(Path, paths):
        try:
            if not path.exists():
                raise InputError("no such file or folder", path=str(path))
            found = _discover(path, out.messages)
        except InputError as exc:
            out.messages.append(f"{exc}; left out")
            continue
        out.models.extend(found)
    _unique_ids(out.models)
    for m in out.models:
        if m.meta.created_at is None and mtime_fallback:
            try:
                m.meta.created_at = m.weights.stat().st_mtime
            except OSError:
                continue
            m.meta.created_at_source = "file_mtime"
            m.meta.notes.append("upload time unknown: the file's modification time is used (often the "
                                "download or copy time)")
    return out


def _discover(path: Path, messages: list[str]) -> list[FoundModel]:
    if path.is_file():
        if path.name == "manifest.json":
            return _zoo_models(path)
        found = _file_model(path, path.name.split(".")[0] or path.name)
        folder = _cache_entry(path.parent) or ((path.parent, path.parent.resolve().name)
                                               if _is_model_folder(path.parent) else None)
        if folder is not None:  # a file of a model folder: the folder's card and times apply
            meta = _folder_meta(folder[0], folder[1])
            try:
                chosen = [m.weights for m in _model_folder(folder[0], folder[1], messages)]
            except InputError:
                chosen = []
            if path not in chosen:
                meta.id = f"{folder[1]}:{path.name}"
            found.meta = meta
        return [found]
    if (path / "manifest.json").is_file():
        return _zoo_models(path / "manifest.json")
    cache = _cache_entry(path)
    if cache is not None:
        return _model_folder(cache[0], cache[1], messages)
    entries = sorted(d for d in path.iterdir() if d.is_dir() and d.name.startswith("models--"))
    if entries:  # a cache root
        found = []
        for d in entries:
            try:
                found += _discover(d, messages)
            except InputError as exc:
                messages.append(f"{exc}; left out")
        return found
    if _is_model_folder(path):
        return _model_folder(path, path.resolve().name, messages)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(READABLE))
    if files:
        return [_file_model(p, p.name.split(".")[0]) for p in files]
    found = []
    for d in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            if _is_model_folder(d) or _cache_entry(d) is not None or any(
                    p.name.lower().endswith(READABLE) for p in d.iterdir() if p.is_file()):
                found += _discover(d, messages)
        except InputError as exc:
            messages.append(f"{exc}; left out")
    if not found:
        raise InputError("no model here: no weights file, model folder, Hugging Face cache entry or "
                         "zoo manifest", path=str(path))
    return found


def _is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file() or any((path / c).is_file() for c in CARD_NAMES) or any(
        path.glob("*.safetensors.index.json"))


def _cache_entry(path: Path) -> tuple[Path, str] | None:
    """(snapshot folder, repo id) when ``path`` is a Hugging Face cache entry or one of its snapshots."""
    resolved = path.resolve()
    if resolved.parent.name == "snapshots" and resolved.parent.parent.name.startswith("models--"):
        return path, _repo_id(resolved.parent.parent.name)
    if not (path.name.startswith("models--") and (path / "snapshots").is_dir()):
        return None
    repo = _repo_id(path.name)
    ref = path / "refs" / "main"
    if ref.is_file():
        rev = _small_text(ref).strip()
        snap = path / "snapshots" / rev
        if rev not in ("", ".", "..") and "/" not in rev and "\\" not in rev and snap.is_dir():
            return snap, repo
        raise InputError(f"refs/main names snapshot {rev!r}, which is not in snapshots/", path=str(path))
    snaps = sorted(d for d in (path / "snapshots").iterdir() if d.is_dir())
    if len(snaps) == 1:
        return snaps[0], repo
    raise InputError(f"{len(snaps)} snapshots and no refs/main to say which is current: give "
                     "models--.../snapshots/<revision> itself", path=str(path))


def _repo_id(entry: str) -> str:
    parts = entry[len("models--"):].split("--")
    return "/".join(parts) if len(parts) <= 2 else parts[0] + "/" + "--".join(parts[1:])


def _model_folder(folder: Path, model_id: str, messages: list[str]) -> list[FoundModel]:
    """One HF-style model folder: its weights (see module docstring) and card metadata."""
    meta = _folder_meta(folder, model_id)
    top = sorted(p for p in folder.iterdir() if p.is_file() or p.is_symlink())
    names = {p.name.lower(): p for p in top}
    index = [p for p in top if p.name.endswith(".safetensors.index.json")]
    if len(index) > 1:
        raise InputError(f"two models in one folder: {len(index)} shard indexes "
                         f"({', '.join(p.name for p in index[:3])}); give their folders or files one by one",
                         path=str(folder))
    if index:
        return [FoundModel(_check_shards(index[0]), meta)]
    if "model.safetensors" in names:
        return [FoundModel(names["model.safetensors"], meta)]
    by_suffix: dict[str, list[Path]] = {}
    for p in top:
        suffix = next((s for s in READABLE + PICKLES + UNSUPPORTED if p.name.lower().endswith(s)), None)
        if suffix:
            by_suffix.setdefault(suffix, []).append(p)
    for suffix in (".safetensors", ".onnx"):
        files = by_suffix.get(suffix, [])
        if len(files) == 1:
            return [FoundModel(files[0], meta)]
        if len(files) > 1:
            raise InputError(f"two models in one folder: {len(files)} {suffix} files and no shard index "
                             f"({', '.join(p.name for p in files[:3])}); give them one by one", path=str(folder))
    ggufs = by_suffix.get(".gguf", [])
    if len(ggufs) == 1:
        return [FoundModel(ggufs[0], meta)]
    if ggufs:  # quantisations side by side: one model each
        out = []
        for p in ggufs:
            m = ModelMeta(**{**meta.__dict__, "id": f"{model_id}:{p.name}", "notes": list(meta.notes)})
            out.append(FoundModel(p, m))
        return out
    pickles = [p for s in PICKLES for p in by_suffix.get(s, [])]
    if pickles:
        raise InputError(f"only pickled PyTorch weights ({', '.join(p.name for p in pickles[:3])}); modelatlas "
                         "never unpickles downloaded files: convert them to safetensors (e.g. "
                         "`transformers` save_pretrained(..., safe_serialization=True)) and chart again",
                         path=str(folder))
    other = [p for s in UNSUPPORTED for p in by_suffix.get(s, [])]
    if other:
        raise InputError(f"unsupported weights format ({other[0].name}); modelatlas reads safetensors, "
                         "GGUF, ONNX and PyTorch weights-only .pt/.pth", path=str(other[0]))
    raise InputError("a model folder without weights (.safetensors, .gguf, .onnx)", path=str(folder))


def _check_shards(index: Path) -> Path:
    """The shard index, after checking that every shard it names is in the folder."""
    try:
        weight_map = json.loads(_small_text(index))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError("not a shard index (no weight_map)", path=str(index)) from None
    for shard in shards:
        if not isinstance(shard, str) or Path(shard).name != shard:
            raise InputError(f"shard {shard!r} is not a file name in this folder", path=str(index))
    missing = [s for s in shards if not (index.parent / s).exists()]
    if missing:
        raise InputError(f"{len(missing)} of {len(shards)} shards missing ({', '.join(missing[:3])})",
                         path=str(index))
    return index


def _folder_meta(folder: Path, model_id: str) -> ModelMeta:
    meta = ModelMeta(model_id, path=str(folder))
    config = folder / "config.json"
    if config.is_file():
        try:
            doc = json.loads(_small_text(config))
            if isinstance(doc, dict) and isinstance(doc.get("model_type"), str):
                meta.model_type = doc["model_type"]
        except ValueError:
            meta.notes.append(f"{config.name} is not JSON; model type unknown")
    card = next((folder / c for c in CARD_NAMES if (folder / c).is_file()), None)
    if card is not None:
        _card_meta(card, meta)
    info = next((p for p in (folder / HUB_INFO_NAME, folder.parent.parent / HUB_INFO_NAME) if p.is_file()), None)
    if meta.created_at is None and info is not None:
        try:
            doc = json.loads(_small_text(info))
            when = _time(doc.get("createdAt") or doc.get("created_at")) if isinstance(doc, dict) else None
        except ValueError:
            when = None
        if when is not None:
            meta.created_at, meta.created_at_source = when, "hub_cache"
        else:
            meta.notes.append(f"{info.name} holds no createdAt time")
    return meta


def _card_meta(card: Path, meta: ModelMeta) -> None:
    from modelatlas.ingest.card import CardDataError, card_fields, load_card_data, split_front_matter

    front, _ = split_front_matter(_small_text(card))
    if front is None:
        return
    try:
        data = load_card_data(front)
        fields = card_fields(data) if data else {}
    except CardDataError as exc:
        meta.notes.append(f"{card.name}: {exc}; documented parents unknown")
        return
    meta.documented_parents = tuple(dict.fromkeys(fields.get("base_models") or ()))
    meta.declared_relation = fields.get("base_model_relation")
    when = _time((data or {}).get("created_at"))
    if when is not None:
        meta.created_at, meta.created_at_source = when, "card"


def _time(value) -> float | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


def _small_text(path: Path) -> str:
    with open(path, "rb") as fh:
        data = fh.read(SIDE_FILE_LIMIT + 1)
    if len(data) > SIDE_FILE_LIMIT:
        raise InputError(f"larger than {SIDE_FILE_LIMIT >> 20} MiB; not a card / config / index", path=str(path))
    return data.decode("utf-8", "replace")


def _file_model(path: Path, model_id: str) -> FoundModel:
    name = path.name.lower()
    if name.endswith(".bin") or name.endswith((".pkl", ".pickle", ".ckpt")):
        raise InputError("a pickled PyTorch file; modelatlas never unpickles downloaded files: convert it "
                         "to safetensors and chart that", path=str(path))
    if name.endswith(UNSUPPORTED):
        raise InputError("unsupported weights format; modelatlas reads safetensors, GGUF, ONNX and "
                         "PyTorch weights-only .pt/.pth", path=str(path))
    if not (name.endswith(READABLE) or name.endswith(".safetensors.index.json")):
        raise InputError("not a weights file (.safetensors, .gguf, .onnx, .pt, .pth)", path=str(path))
    if name.endswith(".safetensors.index.json"):
        _check_shards(path)
        return FoundModel(path, _folder_meta(path.parent, path.parent.resolve().name))
    return FoundModel(path, ModelMeta(model_id, path=str(path)))


def _zoo_models(manifest: Path) -> list[FoundModel]:
    from modelatlas.zoo.manifest import load_manifest

    zoo = load_manifest(manifest, check_files=False)
    out = []
    for m in zoo.models:
        documented = tuple(m.parents or ()) if m.documented_parents else ()
        meta = ModelMeta(m.id, path=str(m.path), model_type=m.architecture,
                         created_at=m.created_at.timestamp() if m.created_at else None,
                         created_at_source="manifest" if m.created_at else None,
                         documented_parents=documented,
                         declared_relation=m.relation if m.documented_parents else None)
        out.append(FoundModel(Path(m.path), meta))
    return out


def _unique_ids(models: list[FoundModel]) -> None:
    """Give models that share an id (two folders of one name) their path as id instead."""
    counts: dict[str, int] = {}
    for m in models:
        counts[m.meta.id] = counts.get(m.meta.id, 0) + 1
    for m in models:
        if counts[m.meta.id] > 1:
            m.meta.notes.append(f"id {m.meta.id!r} is shared by {counts[m.meta.id]} inputs; the path is used")
            m.meta.id = os.fspath(m.weights)


def add_paths_to_store(paths: list[Path], store, *, mtime_fallback: bool = False, progress=None,
                       **fingerprint_options) -> tuple[list[str], list[str]]:
    """Add the models under ``paths`` to a fingerprint store: stores among the paths (``.parquet``)
    are merged in, the other paths found by :func:`discover_models` and fingerprinted.

    Parameters
    ----------
    paths:
        Fingerprint stores and whatever :func:`discover_models` accepts.
    store:
        The :class:`~modelatlas.weights.store.FingerprintStore` to extend (in memory).
    mtime_fallback:
        As in :func:`discover_models`.
    progress:
        ``progress(total)``: a context manager yielding ``advance(n)``, entered around the
        fingerprinting of the ``total`` models found (for a progress bar); ``None`` for none.
    **fingerprint_options:
        Passed to :func:`~modelatlas.weights.store.fingerprint_into_store`.

    Returns
    -------
    (added ids, messages)
        Messages name each path that gave no model and each model left out, and why.
    """
    from contextlib import nullcontext

    from modelatlas.weights.store import FingerprintStore, fingerprint_into_store, is_store

    paths = [Path(p) for p in paths]
    stores = [p for p in paths if p.suffix == ".parquet" and p.is_file()]
    added: list[str] = []
    for p in stores:
        if not is_store(p):
            raise InputError("a Parquet file but not a modelatlas fingerprint store", path=str(p))
        added += store.add_store(FingerprintStore.open(p, must_exist=True))
    found = discover_models([p for p in paths if p not in stores], mtime_fallback=mtime_fallback)
    messages = list(found.messages)
    if found.models:
        with progress(len(found.models)) if progress is not None else nullcontext(None) as advance:
            more_ids, more = fingerprint_into_store([(m.weights, m.meta) for m in found.models], store,
                                                    progress=advance, **fingerprint_options)
        added += more_ids
        messages += more
    return added, messages
