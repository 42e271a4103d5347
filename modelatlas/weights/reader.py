"""``open_weights``: open any supported weights file (or a model folder) for lazy reading."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from modelatlas.errors import InputError
from modelatlas.weights.weightfile import WeightFile

#: Suffixes of files that PyTorch pickles (read only through ``torch.load(weights_only=True)``).
TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
#: Files looked for, in order, when a folder is given.
FOLDER_CANDIDATES = ("model.safetensors.index.json", "model.safetensors", "*.safetensors.index.json",
                     "*.safetensors", "*.gguf", "*.onnx", "pytorch_model.bin", "*.pt", "*.pth", "*.bin")


def open_weights(path: str | Path, *, hf_names: Iterable[str] | None = None) -> WeightFile:
    """Open a model's weights without reading tensor data.

    Parameters
    ----------
    path:
        A URL (``file://``, ``hf://``, ``s3://``, ...: :func:`modelatlas.weights.remote.open_url`), a
        ``.safetensors`` file, a ``*.safetensors.index.json`` shard index, a ``.onnx``, ``.gguf``
        or PyTorch ``.bin`` / ``.pt`` / ``.pth`` file, or a folder holding one of them (a shard
        index first, then ``model.safetensors``, then any single weights file).
    hf_names:
        GGUF files only (other formats already use checkpoint names): Hugging Face tensor names to
        expose the GGUF tensors under, e.g. a relative's; ``None`` (default): the architecture's
        canonical names; ``()``: GGUF's own names (see :class:`modelatlas.weights.gguf_file.GGUFFile`
        and ``docs/weights.md``, "Canonical tensors").

    Returns
    -------
    WeightFile
        Usable as a context manager; ``.tensors`` lists the logical tensors.

    Raises
    ------
    InputError
        Missing file, unsupported or ambiguous format, or a malformed file (named with the tensor).
    """
    from modelatlas.weights.remote import is_url, open_url

    if is_url(path):
        return open_url(str(path), hf_names=hf_names)
    path = Path(path)
    if path.is_dir():
        path = _model_file_in(path)
    if not path.is_file():  # stat only: a FIFO or device is never opened
        raise InputError("not a regular file" if path.exists() else "no such file", path=str(path))
    name = path.name.lower()
    if name.endswith(".safetensors") or name.endswith(".safetensors.index.json"):
        from modelatlas.weights.safetensors_file import SafetensorsFile
        return SafetensorsFile(path)
    magic = _magic(path)
    if name.endswith(".gguf") or magic == b"GGUF":
        from modelatlas.weights.gguf_file import GGUFFile
        return GGUFFile(path, hf_names)
    if name.endswith(".onnx"):
        from modelatlas.weights.onnx_file import ONNXFile
        return ONNXFile(path)
    if name.endswith(TORCH_SUFFIXES):
        from modelatlas.weights.torch_file import TorchFile
        return TorchFile(path)
    raise InputError("unsupported weights format (expected .safetensors, .onnx, .gguf, .bin, .pt or "
                     ".pth)", path=str(path))


def _magic(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(4)
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=str(path)) from None


def _model_file_in(folder: Path) -> Path:
    for pattern in FOLDER_CANDIDATES:
        found = sorted(folder.glob(pattern))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InputError(f"{len(found)} files match {pattern} and no shard index says how they "
                             f"fit together: {', '.join(p.name for p in found[:5])}", path=str(folder))
    raise InputError("no weights file (.safetensors, .gguf, .onnx, .bin, .pt) in this folder",
                     path=str(folder))
