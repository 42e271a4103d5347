"""safetensors files, single or sharded, memory-mapped and read row by row.

The header is parsed and validated first (:mod:`modelatlas.weights.safetensors_header`); tensor
data is then reached through views of a memory map (``mmap``), so reading 100 rows of a 4096 × 4096 matrix
touches 100 rows of the file. We do not use ``safetensors.safe_open`` for the data: its slices take
ranges but not row lists (one call per run of rows); a memory map over a validated header gathers
any rows in one numpy indexing step with the same safety.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Iterator

import numpy as np

from modelatlas.errors import InputError
from modelatlas.strict_json import loads_strict
from modelatlas.weights.companions import resolve
from modelatlas.weights.safetensors_header import DTYPES, HeaderEntry, read_header
from modelatlas.weights.tensors import ArrayRows, StoredTensor
from modelatlas.weights.weightfile import WeightFile, chunked


class SafetensorsFile(WeightFile):
    """One model in one safetensors file or in shards listed by ``model.safetensors.index.json``.

    Parameters
    ----------
    path:
        The ``.safetensors`` file or the ``*.safetensors.index.json`` index.
    """

    format = "safetensors"

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._where: dict[str, tuple[Path, HeaderEntry]] = {}
        self._maps: dict[Path, np.ndarray] = {}
        weight_map: dict[str, str] = {}
        if self.path.name.endswith(".json"):
            weight_map = _weight_map(self.path)
            shards = [self.path.parent / f for f in sorted(set(weight_map.values()))]
        else:
            shards = [self.path]
        for shard in shards:
            header = read_header(str(shard))
            self._count(header.data_start)
            if len(shards) == 1:
                self.metadata = dict(header.metadata)
            for name, entry in header.entries.items():
                if name in self._where:
                    raise InputError(f"tensor stored twice, also in {self._where[name][0].name}",
                                     path=str(shard), where=name)
                self._where[name] = (shard, entry)
                self.stored[name] = StoredTensor(name, entry.dtype, entry.shape, entry.end - entry.begin)
        for name, shard in weight_map.items():
            if name not in self._where or self._where[name][0].name != shard:
                raise InputError(f"weight_map places tensor {name!r} in {shard}, which does not hold it",
                                 path=str(self.path), where=name)
        for info, source in resolve(self.stored, self._raw, str(self.path)):
            self._add(info, source)

    def _memmap(self, shard: Path) -> np.ndarray:
        """The shard as a read-only uint8 array over a memory map (plain ndarray: cheap slicing)."""
        if shard not in self._maps:
            with open(shard, "rb") as fh:
                mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps[shard] = np.frombuffer(mapped, dtype=np.uint8)
        return self._maps[shard]

    def _array(self, name: str) -> np.ndarray:
        shard, entry = self._where[name]
        dtype = DTYPES[entry.dtype]
        flat = self._memmap(shard)[entry.begin:entry.end].view(dtype)
        rows = entry.shape[0] if entry.shape else 1
        cols = int(np.prod(entry.shape[1:])) if entry.shape else 1
        return flat.reshape(rows, cols)

    def _raw(self, name: str) -> ArrayRows:
        return ArrayRows(self._array(name), self._count)

    def raw_chunks(self, stored_name: str, chunk_bytes: int = 1 << 24) -> Iterator[memoryview]:
        shard, entry = self._where[stored_name]
        for chunk in chunked(self._memmap(shard)[entry.begin:entry.end], chunk_bytes):
            self._count(chunk.nbytes)
            yield chunk

    def close(self) -> None:
        super().close()
        self._maps.clear()


def _weight_map(index: Path) -> dict[str, str]:
    """The ``weight_map`` of a ``*.safetensors.index.json``, its shard files checked to exist."""
    try:
        text = index.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the shard index ({exc.strerror})", path=str(index)) from None
    data = loads_strict(text, path=str(index), what="shard index")
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise InputError("shard index has no weight_map", path=str(index), where="weight_map")
    for name, shard in weight_map.items():
        if not isinstance(shard, str):
            raise InputError(f"weight_map gives tensor {name[:80]!r} the {type(shard).__name__} "
                             f"{str(shard)[:40]}, not a shard file name", path=str(index), where="weight_map")
    files = sorted(set(weight_map.values()))
    if not all(isinstance(f, str) and f and "/" not in f and "\\" not in f and f not in (".", "..")
               for f in files):
        raise InputError("weight_map names a shard outside the index's folder", path=str(index),
                         where="weight_map")
    missing = [f for f in files if not (index.parent / f).is_file()]
    if missing:
        raise InputError(f"{len(missing)} of {len(files)} shards are missing: {', '.join(missing)}",
                         path=str(index), where="weight_map")
    return weight_map
