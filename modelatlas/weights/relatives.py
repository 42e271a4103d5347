"""Which models to compare: architecture groups that hold relatives across file formats.

Charting compares models weight for weight only inside one group (Model Atlas, App. C: distances
between models of one architecture). Grouping by exact signature key (:func:`modelatlas.weights.
fingerprint.group_by_signature`) splits relatives that a file format changed a little: an ONNX
export without the pooler its graph did not use, a GGUF whose converter dropped a tensor. Here:

1. models with the same canonical signature (``docs/weights.md``, "Canonical tensors") form a group;
2. two groups join when the tensors they share (same canonical name and shape) hold at least
   ``overlap`` of the parameters of *each* (so an export missing a head joins its parent, while a
   3-layer cousin of a 6-layer model, sharing its embeddings and half its layers, does not);
3. a GGUF model whose canonical names do not meet a group is re-read under that group's names
   (:func:`modelatlas.weights.gguf_names.hf_name_map`);
4. what is still apart is matched by value (:mod:`modelatlas.weights.value_match`) against groups of
   nearly the same parameter count (within ``count_slack``; up to three groups, three members of
   each, float files first), for models of at most ``value_match_limit`` parameters (both are read
   whole); a stranger of the same architecture whose names were lost matches none and stays apart.

Each group is then fingerprinted on the tensors its members share (``align="common"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from modelatlas.errors import InputError
from modelatlas.weights.signature import ArchitectureSignature, common_signature, is_parameter, signature
from modelatlas.weights.value_match import ValueMatch, apply_value_match, match_by_value
from modelatlas.weights.weightfile import WeightFile

OVERLAP = 0.9
COUNT_SLACK = 0.02
VALUE_MATCH_LIMIT = 50_000_000
#: Candidate groups, and members of each, a model is matched by value against (each read whole).
VALUE_MATCH_TRIES = 3


@dataclass
class Member:
    """One model of a group and how to open it under the group's names."""

    path: Path | str  # a str for a URL
    signature: ArchitectureSignature
    format: str
    hf_names: tuple[str, ...] | None = None
    value_parent: Path | None = None
    value_matches: list[ValueMatch] = field(default_factory=list)

    def open(self) -> WeightFile:
        """The model opened under the group's canonical names."""
        from modelatlas.weights.reader import open_weights

        wf = open_weights(self.path, hf_names=self.hf_names)
        if self.value_matches:
            with open_weights(self.value_parent) as parent:
                apply_value_match(wf, self.value_matches, parent)
        return wf


@dataclass
class RelativeGroup:
    """Models compared with each other (one architecture, maybe several formats)."""

    members: list[Member]

    @property
    def paths(self) -> list[Path]:
        return [m.path for m in self.members]

    @property
    def key(self) -> str:
        """The signature key of the tensors every member shares."""
        return common_signature([m.signature for m in self.members]).key

    @property
    def align(self) -> str:
        """``exact`` when every member has one signature, else ``common``."""
        return "exact" if len({m.signature.key for m in self.members}) == 1 else "common"

    def open_all(self) -> list[WeightFile]:
        """Every member opened (close them after use)."""
        return [m.open() for m in self.members]


def _numel(sig: ArchitectureSignature) -> dict[tuple[str, tuple[int, ...]], int]:
    out = {}
    for name, shape in sig.entries:
        n = 1
        for d in shape:
            n *= d
        out[(name, shape)] = n
    return out


def shared_fraction(a: ArchitectureSignature, b: ArchitectureSignature) -> float:
    """The smaller of the two shares of parameters that ``a`` and ``b`` hold in common."""
    na, nb = _numel(a), _numel(b)
    shared = sum(na[e] for e in na.keys() & nb.keys())
    return min(shared / max(sum(na.values()), 1), shared / max(sum(nb.values()), 1))


def relative_groups(paths: list[str | Path], *, overlap: float = OVERLAP, count_slack: float = COUNT_SLACK,
                    value_match_limit: int = VALUE_MATCH_LIMIT,
                    on_error: Callable[[Path, InputError], None] | None = None,
                    headers: dict[str, tuple[ArchitectureSignature, str, list[str]]] | None = None
                    ) -> list[RelativeGroup]:
    """Group models into architecture groups of relatives (see the module docstring).

    Parameters
    ----------
    paths:
        Weights files or model folders.
    overlap:
        Share of each side's parameters two groups must hold in common to join.
    count_slack:
        Relative difference of parameter counts under which value matching is tried.
    value_match_limit:
        Largest model (parameters) matched by value.
    on_error:
        Called with a path and its error for an unreadable model (left out); ``None``: raise.
    headers:
        ``str(path) -> (signature, format, parameter names)`` already read (e.g. by engine tasks,
        :mod:`modelatlas.engine.fingerprint_run`); those files are not opened again here.

    Returns
    -------
    list of RelativeGroup
        In order of first appearance.
    """
    from modelatlas.weights.reader import open_weights

    members: list[Member] = []
    names: dict[Path, list[str]] = {}
    from modelatlas.weights.remote import is_url

    for p in (p if is_url(p) else Path(p) for p in paths):  # a URL stays a string (Path folds its //)
        if headers is not None and str(p) in headers:
            sig, fmt, names[p] = headers[str(p)]
            members.append(Member(p, sig, fmt))
            continue
        try:
            with open_weights(p) as wf:
                sig = signature(wf)
                members.append(Member(p, sig, wf.format))
                names[p] = [t.name for t in wf.tensors.values() if is_parameter(t)]
        except InputError as exc:
            if on_error is None:
                raise
            on_error(p, exc)
    groups: list[list[Member]] = []
    for m in members:
        home = next((g for g in groups if g[0].signature.key == m.signature.key), None)
        if home is None:
            groups.append([m])
        else:
            home.append(m)
    merged = True
    while merged:  # join groups whose shared tensors hold most of both (bounded by the group count)
        merged = False
        for i, j in ((i, j) for i in range(len(groups)) for j in range(i + 1, len(groups))):
            if _join(groups[i], groups[j], overlap, names):
                groups[i].extend(groups.pop(j))
                merged = True
                break
    _value_joins(groups, overlap, count_slack, value_match_limit)
    return [RelativeGroup(g) for g in groups]


def _join(a: list[Member], b: list[Member], overlap: float, names: dict[Path, list[str]]) -> bool:
    na, nb = _count(a[0].signature), _count(b[0].signature)
    if min(na, nb) < overlap * max(na, nb):  # renaming cannot make them share enough: no re-read
        return False
    if shared_fraction(a[0].signature, b[0].signature) >= overlap:
        return True
    for gguf_side, other in ((a, b), (b, a)):  # a GGUF re-read under the other group's names
        gguf_members = [m for m in gguf_side if m.format == "gguf"]
        ref = next((m for m in other if m.format != "gguf"), None)
        if not gguf_members or ref is None or len(gguf_members) != len(gguf_side):
            continue
        renamed = _renamed(gguf_members[0], names[ref.path])
        if renamed is not None and shared_fraction(renamed, ref.signature) >= overlap:
            for m in gguf_members:
                m.hf_names = tuple(names[ref.path])
                m.signature = _renamed(m, names[ref.path]) or m.signature
            return True
    return False


def _renamed(m: Member, hf_names: list[str]) -> ArchitectureSignature | None:
    from modelatlas.weights.reader import open_weights

    try:
        with open_weights(m.path, hf_names=hf_names) as wf:
            return signature(wf)
    except InputError:
        return None


def _count(sig: ArchitectureSignature) -> int:
    return sum(_numel(sig).values())


def _value_joins(groups: list[list[Member]], overlap: float, slack: float, limit: int) -> None:
    """Join each group to the first candidate relative its tensors match by value (bounded:
    :data:`VALUE_MATCH_TRIES` groups of nearly the same size, that many members of each)."""
    i = 0
    while i < len(groups):
        child = groups[i][0]
        n = _count(child.signature)
        candidates = [g for g in groups if g is not groups[i] and n <= limit
                      and abs(_count(g[0].signature) - n) <= slack * max(n, 1)
                      and shared_fraction(child.signature, g[0].signature) < overlap][:VALUE_MATCH_TRIES]
        found = None
        for target in candidates:
            members = sorted(target, key=lambda m: m.format == "gguf")[:VALUE_MATCH_TRIES]
            found = next((r for r in (_matched(child, parent, overlap) for parent in members) if r), None)
            if found is not None:
                break
        if found is None:
            i += 1
            continue
        parent, matches, renamed = found
        for m in groups[i]:
            m.value_parent, m.value_matches, m.signature = parent.path, matches, renamed
        target.extend(groups.pop(i))


def _matched(child: Member, parent: Member, overlap: float):
    """``(parent, matches, renamed signature)`` when the child's tensors match the parent's by value."""
    from modelatlas.weights.reader import open_weights

    with open_weights(child.path, hf_names=child.hf_names) as wf, parent.open() as pf:
        matches = match_by_value(wf, pf)
        apply_value_match(wf, matches, pf)
        renamed = signature(wf)
    return (parent, matches, renamed) if shared_fraction(renamed, parent.signature) >= overlap else None
