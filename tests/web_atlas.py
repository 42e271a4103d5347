"""The hand-made atlas of the web-atlas tests: every feature the page shows, with known answers."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

from modelatlas import Atlas


def _when(day: int) -> datetime:
    return datetime(2023, 1, 1, tzinfo=timezone.utc).replace(day=1 + day % 28, month=1 + (day // 28) % 12)


def hand_made_atlas(fanout: int = 30) -> Atlas:
    """Two families and a singleton: finetunes, a quantisation hub, adapters, a merge, a placeholder
    parent, a predicted edge, mixed licences and tasks, creation dates spread over a year."""
    records, claims = [], []

    def model(mid, day, downloads, license=None, task="text-generation", library="transformers", datasets=None):
        records.append({"id": mid, "created_at": _when(day), "downloads": downloads, "likes": downloads // 10,
                        "license": license, "pipeline_tag": task, "library_name": library,
                        "datasets": datasets or [], "author": mid.split("/")[0]})

    def edge(parent, child, relation, provenance="hub_tag", confidence=1.0):
        claims.append({"parent": parent, "child": child, "relation": relation, "relation_rule": "typed_tag",
                       "provenance": provenance, "confidence": confidence, "source": "test"})

    model("meta-llama/Llama-2-7b-hf", 0, 900_000, "llama2", datasets=["pile"])
    model("lmsys/vicuna-7b", 20, 50_000, "llama2")
    edge("meta-llama/Llama-2-7b-hf", "lmsys/vicuna-7b", "finetune")
    model("TheBloke/vicuna-7B-GGUF", 40, 30_000, "llama2", library="gguf")
    edge("lmsys/vicuna-7b", "TheBloke/vicuna-7B-GGUF", "quantized")
    for k in range(fanout):  # a hub of sibling quantisations
        model(f"quant{k}/Llama-2-7b-q{k}", 30 + k, 10 * k, "llama2" if k % 3 else "mit", library="gguf")
        edge("meta-llama/Llama-2-7b-hf", f"quant{k}/Llama-2-7b-q{k}", "quantized")
    model("alice/chat-lora", 60, 1_200, "apache-2.0", task="text-generation", library="peft")
    edge("lmsys/vicuna-7b", "alice/chat-lora", "adapter")
    model("bob/merged-7b", 90, 700, "apache-2.0")
    edge("lmsys/vicuna-7b", "bob/merged-7b", "merge")
    edge("alice/chat-lora", "bob/merged-7b", "merge")
    model("carol/guess-ft", 120, 50, None)
    edge("bob/merged-7b", "carol/guess-ft", "finetune", provenance="predicted:weights", confidence=0.62)
    # Second family under a placeholder parent (no record of its own).
    model("stabilityai/sd-ft", 100, 5_000, "openrail", task="text-to-image", library="diffusers")
    edge("stabilityai/stable-diffusion-2-1", "stabilityai/sd-ft", "finetune")
    model("dave/sd-lora", 150, 300, "openrail", task="text-to-image", library="diffusers")
    edge("stabilityai/sd-ft", "dave/sd-lora", "adapter")
    model("erin/solo-bert", 200, 42, "apache-2.0", task="fill-mask")
    evidence = pa.Table.from_pylist(claims)
    return Atlas.build(pa.Table.from_pylist(records), evidence)

