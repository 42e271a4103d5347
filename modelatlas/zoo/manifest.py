"""The zoo manifest: typed records, validated loading and writing.

A zoo is a folder holding ``manifest.json`` and one weights file per model (DESIGN.md,
"Interfaces"). The manifest carries the ground truth of each model: its true parents, the
relation to them, whether a charting method may be told those parents, and how the model was
made. Zoo builders write it with :func:`write_manifest`; charting and benchmarks read it with
:func:`load_manifest`, which refuses a manifest that is inconsistent (missing files, unknown
relations, dangling parents, duplicate ids, cycles) with an error naming the model and field.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from modelatlas.errors import InputError
from modelatlas.strict_json import loads_strict

MANIFEST_NAME = "manifest.json"

#: Relations of a model to its parents (the atlas vocabulary, without ``unknown``).
RELATIONS = ("finetune", "adapter", "quantized", "merge")

#: How a model was made, in the zoo's words.
PATTERNS = ("root", "finetune", "lora", "quantized", "duplicate", "snake", "fan", "merge")

#: Keys of a manifest entry that map onto :class:`ZooModel` fields; every other key goes to ``extra``.
_CORE_KEYS = ("id", "path", "created_at", "parents", "relation", "documented_parents",
              "component", "architecture", "pattern")


@dataclass
class ZooModel:
    """One model of a zoo and its ground truth.

    Parameters
    ----------
    id:
        Unique model id within the zoo, e.g. ``"c0/ft-1"``.
    path:
        Absolute path of the weights file (relative to the manifest on disk).
    created_at:
        Upload time (timezone-aware, UTC); ``None`` when unknown (the manifest's ``created_at`` is
        ``null`` or absent): unknown times are data, charting then decides without them.
    parents:
        True parent ids (empty for roots); ``None`` when the lineage is unknown.
    relation:
        ``finetune``, ``adapter``, ``quantized``, ``merge``, or ``None`` for roots / unknown lineage.
    documented_parents:
        Whether a charting method may be told ``parents`` (e.g. a merge whose card names them).
    component:
        The model tree (family) the model belongs to.
    architecture:
        Architecture name; models of one architecture share tensor names and shapes.
    pattern:
        How it was made: one of :data:`PATTERNS` (``None`` for hand-written zoos that omit it).
    extra:
        Every other manifest field: task, seed, learning rate, steps, LoRA rank, quantisation
        scheme, merge method and weights, extra file paths, ...
    """

    id: str
    path: Path
    created_at: datetime | None
    parents: list[str] | None = field(default_factory=list)
    relation: str | None = None
    documented_parents: bool = False
    component: str | None = None
    architecture: str | None = None
    pattern: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Zoo:
    """A zoo: its name, the folder holding ``manifest.json``, and its models in manifest order."""

    name: str
    root: Path
    models: list[ZooModel]

    def by_id(self) -> dict[str, ZooModel]:
        """Models keyed by id."""
        return {m.id: m for m in self.models}

    def edges(self) -> list[tuple[str, str, str | None]]:
        """True ``(parent, child, relation)`` edges, in manifest order."""
        return [(p, m.id, m.relation) for m in self.models for p in (m.parents or [])]


def format_time(value: datetime) -> str:
    """An ISO-8601 UTC timestamp with a ``Z`` suffix, to the second."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: Any, where: str, path: Path) -> datetime | None:
    if text is None:
        return None  # unknown upload time (null or absent)
    if not isinstance(text, str):
        raise InputError("created_at must be an ISO-8601 string or null", path=str(path), where=where)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"created_at {text!r} is not an ISO-8601 time", path=str(path), where=where) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _model_from_entry(entry: Any, index: int, root: Path, path: Path, check_files: bool) -> ZooModel:
    if not isinstance(entry, dict):
        raise InputError("each model must be a JSON object", path=str(path), where=f"models[{index}]")
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        raise InputError("model has no string 'id'", path=str(path), where=f"models[{index}]")
    where = f"model {model_id!r}"

    def field_of(key: str, kinds: tuple[type, ...], required: bool = False) -> Any:
        if key not in entry or entry[key] is None:
            if required:
                raise InputError(f"field {key!r} is missing", path=str(path), where=where)
            return None
        value = entry[key]
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            names = "/".join(k.__name__ for k in kinds)
            raise InputError(f"field {key!r} must be {names}, not {type(value).__name__}",
                             path=str(path), where=where)
        return value

    rel_path = field_of("path", (str,), required=True)
    weights = resolve_in_zoo(root, rel_path, manifest=path, where=where, must_exist=check_files)
    parents = field_of("parents", (list,))
    if parents is not None:
        if not all(isinstance(p, str) for p in parents):
            raise InputError("field 'parents' must be a list of model ids", path=str(path), where=where)
        if len(set(parents)) != len(parents):
            raise InputError("field 'parents' names a parent twice", path=str(path), where=where)
        if model_id in parents:
            raise InputError("model lists itself as a parent", path=str(path), where=where)
    relation = field_of("relation", (str,))
    if relation is not None and relation not in RELATIONS:
        raise InputError(f"unknown relation {relation!r} (expected one of {', '.join(RELATIONS)})",
                         path=str(path), where=where)
    if relation is not None and not parents:
        raise InputError(f"relation {relation!r} given but no parents", path=str(path), where=where)
    pattern = field_of("pattern", (str,))
    if pattern is not None and pattern not in PATTERNS:
        raise InputError(f"unknown pattern {pattern!r} (expected one of {', '.join(PATTERNS)})",
                         path=str(path), where=where)
    documented = field_of("documented_parents", (bool,))
    return ZooModel(
        id=model_id,
        path=weights,
        created_at=_parse_time(entry.get("created_at"), where, path),
        parents=list(parents) if parents is not None else None,
        relation=relation,
        documented_parents=bool(documented),
        component=field_of("component", (str,)),
        architecture=field_of("architecture", (str,)),
        pattern=pattern,
        extra={k: v for k, v in entry.items() if k not in _CORE_KEYS},
    )


def resolve_in_zoo(root: Path, rel_path: object, *, manifest: Path, where: str, must_exist: bool = True) -> Path:
    """The weights file a manifest names, refused if it could lead outside the zoo folder.

    Parameters
    ----------
    root:
        The zoo folder, already resolved.
    rel_path:
        The manifest's ``path``: relative, with no ``..`` component and no drive.
    manifest, where:
        The manifest file and the model, for error messages.
    must_exist:
        Require a regular file (not a folder, FIFO or device) at the path.

    Returns
    -------
    Path
        The absolute path, symbolic links resolved, inside ``root``.

    Raises
    ------
    InputError
        An absolute path, a ``..`` component, a symbolic link that leads outside the zoo folder
        or loops, or (``must_exist``) a missing or irregular file.
    """
    def fail(message: str) -> InputError:
        return InputError(message, path=str(manifest), where=where)

    if not isinstance(rel_path, str) or not rel_path:
        raise fail("field 'path' must be a non-empty string")
    posix, windows = PurePosixPath(rel_path), PureWindowsPath(rel_path)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in posix.parts or ".." in windows.parts:
        raise fail(f"path {rel_path[:200]!r} must be relative to the zoo folder, without '..'")
    try:
        target = Path(os.path.realpath(root / rel_path, strict=True))
    except FileNotFoundError:
        if must_exist:
            raise fail(f"weights file {rel_path!r} does not exist") from None
        target = Path(os.path.realpath(root / rel_path))
    except OSError as exc:  # ELOOP: a symbolic link loop
        raise fail(f"weights file {rel_path!r} cannot be resolved ({exc.strerror})") from None
    if root not in target.parents:
        raise fail(f"path {rel_path!r} leads outside the zoo folder (through a symbolic link) to {target}")
    if must_exist and not stat.S_ISREG(os.stat(target).st_mode):
        raise fail(f"weights file {rel_path!r} is not a regular file")
    return target


def _check_graph(models: list[ZooModel], path: Path) -> None:
    ids: set[str] = set()
    for m in models:
        if m.id in ids:
            raise InputError("duplicate model id", path=str(path), where=f"model {m.id!r}")
        ids.add(m.id)
    for m in models:
        for p in m.parents or []:
            if p not in ids:
                raise InputError(f"parent {p!r} is not in the zoo", path=str(path), where=f"model {m.id!r}")
    # Iterative three-colour depth-first search over child -> parent links.
    parents = {m.id: m.parents or [] for m in models}
    state: dict[str, int] = {}
    for start in parents:
        if state.get(start):
            continue
        stack = [(start, iter(parents[start]))]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                cycle = [n for n, _ in stack[[n for n, _ in stack].index(nxt):]] + [nxt]
                raise InputError("parents form a cycle: " + " -> ".join(cycle),
                                 path=str(path), where=f"model {nxt!r}")
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(parents[nxt])))


def load_manifest(location: str | os.PathLike, *, check_files: bool = True) -> Zoo:
    """Read and validate a zoo manifest.

    Parameters
    ----------
    location:
        A zoo folder (holding ``manifest.json``) or the manifest file itself.
    check_files:
        Require every model's weights file to exist.

    Returns
    -------
    Zoo
        The zoo, models in manifest order, with absolute weight paths.

    Raises
    ------
    InputError
        Naming the manifest and the model / field at fault: unreadable JSON, missing fields, a
        ``created_at`` that is neither an ISO-8601 string nor null (null or absent: unknown time),
        absent weight files, unknown relations or patterns, parents not in the zoo, duplicate ids,
        cycles among the known edges.
    """
    path = Path(location)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise InputError("zoo manifest not found", path=str(path))
    try:
        doc = loads_strict(path.read_bytes(), path=str(path), what="zoo manifest")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=str(path)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise InputError("a zoo manifest is an object with a 'models' list", path=str(path))
    name = doc.get("name", path.parent.name)
    if not isinstance(name, str):
        raise InputError("field 'name' must be a string", path=str(path))
    root = path.parent.resolve()
    models = [_model_from_entry(e, i, root, path, check_files) for i, e in enumerate(doc["models"])]
    _check_graph(models, path)
    return Zoo(name=name, root=root, models=models)


def model_entry(model: ZooModel, root: Path, omit_unknown_times: bool = False) -> dict[str, Any]:
    """The manifest JSON object of ``model``, its path made relative to ``root``.

    An unknown upload time is written ``"created_at": null``, or left out when ``omit_unknown_times``.
    """
    path = Path(model.path)
    rel = path.relative_to(root) if path.is_absolute() else path
    entry: dict[str, Any] = {
        "id": model.id,
        "path": rel.as_posix(),
        "created_at": None if model.created_at is None else format_time(model.created_at),
        "parents": model.parents,
        "relation": model.relation,
        "documented_parents": model.documented_parents,
        "component": model.component,
        "architecture": model.architecture,
        "pattern": model.pattern,
    }
    clash = set(model.extra) & set(entry)
    if clash:
        raise InputError(f"extra fields {sorted(clash)} shadow manifest fields", where=f"model {model.id!r}")
    entry.update(model.extra)
    if model.created_at is None and omit_unknown_times:
        del entry["created_at"]
    return entry


def write_manifest(zoo: Zoo, filename: str = MANIFEST_NAME, *, omit_unknown_times: bool = False) -> Path:
    """Write ``zoo.root / filename`` (``manifest.json``) atomically and return its path.

    The zoo is validated first (without requiring the weight files), so a builder cannot write a
    manifest that :func:`load_manifest` would refuse for its graph. Unknown upload times are written
    as ``null``, or as an absent ``created_at`` when ``omit_unknown_times``.
    """
    root = Path(zoo.root)
    target = root / filename
    _check_graph(zoo.models, target)
    doc = {"name": zoo.name, "models": [model_entry(m, root, omit_unknown_times) for m in zoo.models]}
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target
