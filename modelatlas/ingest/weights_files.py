"""Does a repository hold model weights? Decided from its file list (``siblings``).

Model Atlas preprocessing (ANCHORS.md, "Model Atlas") keeps only repositories whose file list holds
a weight file, recognised by one of 26 extensions. The paper does not print its list; this is ours,
the same size, covering the serialisations found on the Hub (docs/ingest.md lists them with the
framework each belongs to).
"""

from __future__ import annotations

#: File-name endings that mark a weights file (lower case, with the dot).
WEIGHT_EXTENSIONS: tuple[str, ...] = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".ggml", ".onnx", ".h5", ".keras",
    ".pb", ".tflite", ".msgpack", ".npz", ".npy", ".pkl", ".pickle", ".joblib", ".mlmodel",
    ".engine", ".plan", ".nemo", ".llamafile", ".exl2", ".caffemodel", ".params",
)

assert len(WEIGHT_EXTENSIONS) == 26  # the count the Model Atlas preprocessing uses


def has_weights(filenames: list[str] | None) -> bool | None:
    """``True`` when any file name ends with a weight extension; ``None`` when the list is unknown."""
    if filenames is None:
        return None
    return any(name.lower().endswith(WEIGHT_EXTENSIONS) for name in filenames)


def has_weights_sql(column: str) -> str:
    """The same test as a DuckDB expression over a ``VARCHAR[]`` column (NULL stays NULL).

    One regular expression over the joined file list (one line per file) instead of one per file.
    """
    pattern = r"(?m)\.(" + "|".join(ext[1:] for ext in WEIGHT_EXTENSIONS) + r")$"
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE regexp_matches(lower(array_to_string({column}, chr(10))), " \
           f"'{pattern}') END"
