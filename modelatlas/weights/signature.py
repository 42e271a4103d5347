"""Architecture signatures: which models are comparable weight for weight.

Two models are comparable when they hold the same parameter tensors under the same names with the
same logical shapes. Names are normalised across formats and wrappers: a wrapper shared by every
parameter name (``model.0.auto_model.`` of a sentence-transformers ONNX export, ``inner.`` of a
wrapped export, ``module.`` of DataParallel; see ``WRAPPERS``) is removed, then a Hugging Face
base-model prefix (``bert.``, ``model.`` ...) name by name, so that a task model's body matches
its base model; ONNX initializers get their
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
        The whole-model wrapper that was removed ('' if none).
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


#: Wrappers around a whole model, removed when every parameter name starts with one (repeatedly):
#: PyTorch DataParallel / torch.compile, checkpoint dicts, PEFT, sentence-transformers exports.
WRAPPERS = ("module.", "_orig_mod.", "state_dict.", "model_state_dict.", "inner.", "base_model.model.",
            "model.0.auto_model.", "0.auto_model.", "auto_model.")
#: Hugging Face ``base_model_prefix`` values: a task model (``bert.encoder...`` + ``classifier``)
#: holds its base model under one of these; removed name by name, as transformers does when it
#: loads base weights into a task model.
BASE_MODEL_PREFIXES = ("model.", "bert.", "roberta.", "distilbert.", "vit.", "deberta.", "electra.",
                       "albert.", "mpnet.", "transformer.", "gpt_neox.", "swin.", "convnext.", "beit.",
                       "dinov2.")


def normalise_names(names: list[str]) -> tuple[dict[str, str], str]:
    """Map each file name to its normalised name; also return the whole-model wrapper removed."""
    prefix = ""
    stripped = list(names)
    while stripped:
        wrapper = next((w for w in WRAPPERS if all(n.startswith(w) and len(n) > len(w) for n in stripped)), None)
        if wrapper is None:
            break
        prefix += wrapper
        stripped = [n[len(wrapper):] for n in stripped]
    out = {}
    for raw, name in zip(names, stripped):
        base = next((b for b in BASE_MODEL_PREFIXES if name.startswith(b) and len(name) > len(b)), None)
        out[raw] = name[len(base):] if base else name
    if len(set(out.values())) < len(out):  # base prefixes would merge two tensors: keep them
        out = dict(zip(names, stripped))
    return out, prefix


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
    names, prefix = normalise_names([p.name for p in params])
    file_names = {names[p.name]: p.name for p in params}
    entries = tuple(sorted((names[p.name], tuple(int(d) for d in p.shape)) for p in params))
    return _signature(entries, file_names, prefix)


def _signature(entries, file_names: dict[str, str], prefix: str) -> ArchitectureSignature:
    digest = hashlib.sha256(json.dumps([[n, list(s)] for n, s in entries]).encode()).hexdigest()
    return ArchitectureSignature(tuple(entries), digest[:16], file_names, prefix)


def common_signature(signatures: list[ArchitectureSignature]) -> ArchitectureSignature:
    """The tensors (normalised name and shape) that every signature shares, as a signature.

    Its ``file_names`` map to the normalised names themselves: look a tensor up in each model's own
    signature. Used to compare relatives whose files differ in a few tensors (an ONNX export
    without the pooler its exporter did not need, a model with an extra head).
    """
    shared = set(signatures[0].entries)
    for sig in signatures[1:]:
        shared &= set(sig.entries)
    return _signature(sorted(shared), {n: n for n, _ in shared}, "")
