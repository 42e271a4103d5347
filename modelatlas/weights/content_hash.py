"""Content hashes: exact duplicates found by hashing stored bytes, tensor by tensor."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from modelatlas.weights.signature import normalise_names
from modelatlas.weights.weightfile import WeightFile


@dataclass(frozen=True)
class ContentHash:
    """BLAKE2b digests (32 hex digits) of a model's stored tensors.

    Attributes
    ----------
    model:
        Hash over every stored tensor's (normalised name, dtype, shape,
        digest): equal for byte-identical re-uploads, whatever the file's tensor order or wrapper.
    tensors:
        Stored tensor name -> digest of its dtype, shape and raw bytes.
    """

    model: str
    tensors: dict[str, str]


def content_hash(weight_file: WeightFile, chunk_bytes: int = 1 << 24) -> ContentHash:
    """Hash every stored tensor of ``weight_file`` by streaming its raw bytes.

    Parameters
    ----------
    weight_file:
        An opened model; every stored byte is read once (counted in ``bytes_read``).
    chunk_bytes:
        Bytes hashed per step (memory stays bounded for multi-GB tensors).

    Returns
    -------
    ContentHash
    """
    tensors = {}
    for name in sorted(weight_file.stored):
        stored = weight_file.stored[name]
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps([stored.dtype, list(stored.shape)]).encode())
        for chunk in weight_file.raw_chunks(name, chunk_bytes):
            h.update(chunk)
        tensors[name] = h.hexdigest()
    names, _ = normalise_names(list(tensors))
    records = sorted([names[n], weight_file.stored[n].dtype, list(weight_file.stored[n].shape), d]
                     for n, d in tensors.items())
    model = hashlib.blake2b(json.dumps(records).encode(), digest_size=16).hexdigest()
    return ContentHash(model, tensors)
