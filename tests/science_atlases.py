"""Hand-made atlases with known answers for the science tests (issue 5)."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

from modelatlas import Atlas


def ts(month: int, day: int = 1, year: int = 2023) -> datetime:
    return datetime(year, month, day, tzinfo=timezone.utc)


def model(id_, *, downloads=0, task=None, created=None, license=None, library=None, model_type=None,
          quantized=None, card=True, card_text=None, datasets=None, tags=None, params=None, likes=0):
    return {"id": id_, "author": id_.split("/")[0], "downloads": downloads, "pipeline_tag": task,
            "created_at": created, "license": license, "library_name": library, "model_type": model_type,
            "quantized": quantized, "card_present": card, "card_text": card_text, "datasets": datasets,
            "tags": tags, "params": params, "likes": likes}


def edge(parent, child, relation="finetune", provenance="hub_tag"):
    return {"parent": parent, "child": child, "relation": relation, "relation_rule": "typed_tag",
            "provenance": provenance, "confidence": 1.0, "source": "test"}


def build(models: list[dict], edges: list[dict], metrics: list[dict] | None = None) -> Atlas:
    records = pa.Table.from_pylist(models)
    evidence = pa.Table.from_pylist(edges) if edges else None
    mt = pa.Table.from_pylist(metrics) if metrics else None
    return Atlas.build(records, evidence, metrics=mt)


def small_atlas() -> Atlas:
    """A language family with quantisations and a merge, and a vision family with adapters.

    ::

        meta/llama (100) ─ft→ a/ft1 (50) ─ft→ a/ft2 (5)
                    │            └──────┐
                    ├─merge──────────── d/merge (300) ─ft→ e/ft3 (20)
                    ├─quantized→ b/q1 (500)
                    └─quantized→ c/q2 (10)
        sd/sd (1000) ─adapter→ x/lora1 (1), x/lora2 (2), y/lora3 (3);  ─ft→ z/sdft (4, created before sd/sd)
    """
    L = dict(task="text-generation", library="transformers", model_type="llama")
    V = dict(task="image-to-image", library="diffusers", model_type="sd")
    models = [
        model("meta/llama", downloads=100, created=ts(1), license="llama2", datasets=["web"],
              card_text="---\nmodel-index:\n- name: x\n---", **L),
        model("a/ft1", downloads=50, created=ts(2), license="apache-2.0", datasets=["alpaca"], **L),
        model("a/ft2", downloads=5, created=ts(3), license="apache-2.0", **L),
        model("b/q1", downloads=500, created=ts(2), license="llama2", quantized=True, card=False, **L),
        model("c/q2", downloads=10, created=ts(3), license=None, quantized=True, card=False, **L),
        model("d/merge", downloads=300, created=ts(4), license="mit", **L),
        model("e/ft3", downloads=20, created=ts(5), license="mit", **L),
        model("sd/sd", downloads=1000, created=ts(2), license="openrail++", **V),
        model("x/lora1", downloads=1, created=ts(3), license="openrail++", **V),
        model("x/lora2", downloads=2, created=ts(3), license="openrail++", **V),
        model("y/lora3", downloads=3, created=ts(4), license=None, **V),
        model("z/sdft", downloads=4, created=ts(1), license="openrail++", card=False, **V),
    ]
    edges = [
        edge("meta/llama", "a/ft1"), edge("a/ft1", "a/ft2"),
        edge("meta/llama", "b/q1", "quantized"), edge("meta/llama", "c/q2", "quantized"),
        edge("meta/llama", "d/merge", "merge"), edge("a/ft1", "d/merge", "merge"),
        edge("d/merge", "e/ft3"),
        edge("sd/sd", "x/lora1", "adapter"), edge("sd/sd", "x/lora2", "adapter"),
        edge("sd/sd", "y/lora3", "adapter"), edge("sd/sd", "z/sdft"),
    ]
    return build(models, edges)


def planted_families(n_families: int = 30, size: int = 24, noise: float = 0.1, seed: int = 0) -> Atlas:
    """Families (a root, fine-tunes, hubs of quantised / adapter leaves) whose members share their
    root's licence, task and library except for a ``noise`` share of random values, plus a score
    that drifts little along edges: the graph carries the signal, the global majority does not."""
    import numpy as np

    rng = np.random.default_rng(seed)
    licences = ["apache-2.0", "mit", "llama2", "gemma", "cc-by-nc-4.0", "openrail"]
    tasks = ["text-generation", "text-classification", "image-to-image", "image-classification"]
    libs = ["transformers", "diffusers", "timm", "peft"]
    models, edges, metrics = [], [], []
    for f in range(n_families):
        lic, task, lib = licences[f % len(licences)], tasks[f % len(tasks)], libs[f % len(libs)]
        base_score = rng.uniform(20, 80)
        ids = [f"fam{f}/root"]
        score = {ids[0]: base_score}
        for j in range(1, size):
            parent = ids[int(rng.integers(0, max(1, j // 2)))]
            ids.append(f"fam{f}/m{j}")
            score[ids[-1]] = score[parent] + rng.normal(0, 2)
            rel = ["finetune", "quantized", "adapter"][j % 3]
            edges.append(edge(parent, ids[-1], rel))
        for j, i in enumerate(ids):
            noisy = rng.random() < noise
            models.append(model(i, downloads=int(rng.integers(1, 1000)), created=ts(1 + j % 12),
                                license=licences[int(rng.integers(len(licences)))] if noisy else lic,
                                task=task, library=lib))
            metrics.append({"id": i, "metric": "score", "value": score[i], "source": "test"})
    return build(models, edges, metrics)
