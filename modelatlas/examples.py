"""A tiny built-in atlas for examples and doctests (docs/api.md): two invented families, small
enough to read whole, with every relation kind.

::

    acme/llm-7b ─finetune→ acme/llm-7b-chat ─quantized→ quantco/llm-7b-chat-GGUF
         │                      ├─adapter→ alice/llm-7b-chat-lora
         │                      └─merge──┐
         └─finetune→ bob/llm-7b-code ─merge→ bob/llm-7b-merge ─quantized→ quantco/llm-7b-merge-GGUF
    acme/diffusion-xl ─adapter→ carol/diffusion-xl-lora, dave/diffusion-xl-lora
                      └─finetune→ erin/diffusion-xl-anime

Ids, downloads and dates are made up.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

_LLM = {"pipeline_tag": "text-generation", "library_name": "transformers", "model_type": "llama"}
_DIFFUSION = {"pipeline_tag": "text-to-image", "library_name": "diffusers", "model_type": None}

#: (id, downloads, month of 2024, licence, params, kind, quantized)
_MODELS = (
    ("acme/llm-7b", 900_000, 1, "llama2", 7e9, _LLM, False),
    ("acme/llm-7b-chat", 400_000, 2, "llama2", 7e9, _LLM, False),
    ("quantco/llm-7b-chat-GGUF", 60_000, 3, "llama2", 7e9, _LLM, True),
    ("alice/llm-7b-chat-lora", 1_200, 4, "apache-2.0", 7e9, _LLM, False),
    ("bob/llm-7b-code", 25_000, 3, "llama2", 7e9, _LLM, False),
    ("bob/llm-7b-merge", 8_000, 5, "mit", 7e9, _LLM, False),
    ("quantco/llm-7b-merge-GGUF", 3_000, 6, None, 7e9, _LLM, True),
    ("acme/diffusion-xl", 2_000_000, 1, "openrail++", 3.5e9, _DIFFUSION, False),
    ("carol/diffusion-xl-lora", 15_000, 2, "openrail++", None, _DIFFUSION, False),
    ("dave/diffusion-xl-lora", 700, 4, None, None, _DIFFUSION, False),
    ("erin/diffusion-xl-anime", 90_000, 3, "openrail++", 3.5e9, _DIFFUSION, False),
)
_EDGES = (
    ("acme/llm-7b", "acme/llm-7b-chat", "finetune"),
    ("acme/llm-7b-chat", "quantco/llm-7b-chat-GGUF", "quantized"),
    ("acme/llm-7b-chat", "alice/llm-7b-chat-lora", "adapter"),
    ("acme/llm-7b", "bob/llm-7b-code", "finetune"),
    ("acme/llm-7b-chat", "bob/llm-7b-merge", "merge"),
    ("bob/llm-7b-code", "bob/llm-7b-merge", "merge"),
    ("bob/llm-7b-merge", "quantco/llm-7b-merge-GGUF", "quantized"),
    ("acme/diffusion-xl", "carol/diffusion-xl-lora", "adapter"),
    ("acme/diffusion-xl", "dave/diffusion-xl-lora", "adapter"),
    ("acme/diffusion-xl", "erin/diffusion-xl-anime", "finetune"),
)


def example_atlas():
    """The tiny example atlas of this module's docstring (11 models, 10 edges).

    Returns
    -------
    Atlas

    Examples
    --------
    >>> import modelatlas as ma
    >>> atlas = ma.example_atlas()
    >>> atlas.num_nodes, atlas.num_edges
    (11, 10)
    """
    from modelatlas.atlas.atlas import Atlas

    records = pa.Table.from_pylist([
        {"id": id_, "author": id_.split("/")[0], "downloads": downloads,
         "created_at": datetime(2024, month, 1, tzinfo=timezone.utc), "license": licence, "params": params,
         "quantized": quantized, "card_present": True, **kind}
        for id_, downloads, month, licence, params, kind, quantized in _MODELS])
    evidence = pa.Table.from_pylist([
        {"parent": p, "child": c, "relation": rel, "relation_rule": "typed_tag", "provenance": "hub_tag",
         "confidence": 1.0, "source": "example"} for p, c, rel in _EDGES])
    return Atlas.build(records, evidence)
