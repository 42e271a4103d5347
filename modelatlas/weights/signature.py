"""Architecture signatures: which models are comparable weight for weight.

Two models are comparable when they hold the same parameter tensors under the same names with the
same logical shapes. Names are normalised across formats and wrappers: the longest dotted prefix
shared by every parameter name (``model.0.auto_model.`` of a sentence-transformers ONNX export,
``inner.`` of a wrapped export, ``bert.`` of a task model) is removed; ONNX initializers get their
PyTorch names back and ``[out, in]`` shapes (see :mod:`modelatlas.weights.onnx_file`); GGUF shapes
are reversed into PyTorch order. Integer and boolean buffers (position ids, masks) and the scale /
zero-point companions of quantised tensors are not parameters and are left out, so that a
quantised model shares its parent's signature.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from modelatlas.weights.weightfile import FLOAT_DTYPES, WeightFile


@dataclass(frozen=True)
class ArchitectureSignature:
    """Normalised parameter names and logical shapes of one model.

    Attributes
    ----------
    entries:
        ``(normalised name, shape)`` pairs, sorted by name.
    key:
        A 16-hex-digit hash of ``entries``; comparable models share it.
    file_names:
        Normalised name -> the tensor's name in its file.
    prefix:
        The shared dotted prefix that was removed ('' if none).
    """

    entries: tuple[tuple[str, tuple[int, ...]], ...]
    key: str
    file_names: dict[str, str] = field(compare=False, hash=False, repr=False)
    prefix: str = ""

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self.entries)

    def diff(self, other: "ArchitectureSignature", limit: int = 3) -> str:
        """A short human description of how two signatures differ ('' when equal)."""
        mine, theirs = self.shapes, other.shapes
        parts = []
        only_mine = sorted(mine.keys() - theirs.keys())
        only_theirs = sorted(theirs.keys() - mine.keys())
        reshaped = sorted(n for n in mine.keys() & theirs.keys() if mine[n] != theirs[n])
        if only_mine:
            parts.append(f"{len(only_mine)} tensors only in the first (e.g. {', '.join(only_mine[:limit])})")
        if only_theirs:
            parts.append(f"{len(only_theirs)} tensors only in the second (e.g. {', '.join(only_theirs[:limit])})")
        if reshaped:
            parts.append(f"{len(reshaped)} tensors differ in shape (e.g. " + ", ".join(
                f"{n} {list(mine[n])} vs {list(theirs[n])}" for n in reshaped[:limit]) + ")")
        return "; ".join(parts)


def is_parameter(info) -> bool:
    """Whether a logical tensor is a model parameter (float or dequantisable), not a buffer."""
    return info.dtype in FLOAT_DTYPES or info.quantization is not None


def common_prefix(names: list[str]) -> str:
    """The longest prefix of whole dotted components shared by all ``names`` (kept short of any name)."""
    if len(names) < 2:
        return ""
    split = [n.split(".") for n in names]
    prefix: list[str] = []
    for parts in zip(*(s[:-1] for s in split)):
        if len(set(parts)) != 1:
            break
        prefix.append(parts[0])
    return ".".join(prefix) + "." if prefix else ""


def signature(weight_file: WeightFile) -> ArchitectureSignature:
    """The architecture signature of an opened model (reads no tensor data).

    Parameters
    ----------
    weight_file:
        A model opened with :func:`modelatlas.weights.open_weights`.

    Returns
    -------
    ArchitectureSignature
    """
    params = [info for info in weight_file.tensors.values() if is_parameter(info)]
    prefix = common_prefix([p.name for p in params])
    file_names = {p.name[len(prefix):]: p.name for p in params}
    entries = tuple(sorted((p.name[len(prefix):], tuple(int(d) for d in p.shape)) for p in params))
    digest = hashlib.sha256(json.dumps([[n, list(s)] for n, s in entries]).encode()).hexdigest()
    return ArchitectureSignature(entries, digest[:16], file_names, prefix)
