"""Which reader a source needs: from ``hub:``, the file's magic bytes, name and first line."""

from __future__ import annotations

from pathlib import Path

from modelatlas.errors import InputError
from modelatlas.ingest.textfile import is_gzip, open_text, require_file

#: Reader names accepted by ``--format``.
FORMATS: tuple[str, ...] = ("hf-trees", "hub-stats", "card-parents", "manual", "leaderboard", "hub")

HUB_PREFIX = "hub:"


def is_empty(path: Path) -> bool:
    """True for a file with nothing but white space (after gzip decompression)."""
    if path.stat().st_size == 0:
        return True
    with open_text(path) as fh:
        return not fh.read(65536).strip()


def detect_format(source: str) -> str:
    """Name of the reader for ``source`` (see :data:`FORMATS`).

    Raises
    ------
    InputError
        When the file is missing or its format cannot be told.
    """
    if source.startswith(HUB_PREFIX):
        return "hub"
    path = require_file(source)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1" or path.suffix.lower() == ".parquet":
        return "hub-stats"
    if path.stat().st_size == 0:
        raise InputError("the file is empty, its format cannot be detected (give --format)", path=source)
    with open_text(path) as fh:
        head = fh.read(65536).lstrip()
    if not head:
        raise InputError("the file holds only white space; its format cannot be detected (give --format)", path=source)
    if head[:1] in "[{":
        return "hf-trees"
    header = head.splitlines()[0].lower().replace('"', "").replace(" ", "")
    if header.startswith("current_model,base_model"):
        return "manual"
    if header.startswith("id,base_model") or header.startswith("model_id,base_model"):
        return "card-parents"
    if "model_name" in header.split(",") and "metadata_base_model" in header.split(","):
        return "leaderboard"
    kind = "gzip " if is_gzip(path) else ""
    raise InputError(f"cannot tell the format of this {kind}file (give --format, one of {', '.join(FORMATS)})",
                     path=source)
