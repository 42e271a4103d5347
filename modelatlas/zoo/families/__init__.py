"""Zoo families: independently designed zoo generators, each a distribution over lineages.

The original zoos (``tiny``, ``small``, ``large``, ``vthr``; :mod:`modelatlas.zoo.recipes`) come
from one generator, so charting tuned on them learns that generator's habits. Each family here
draws its own settings at random per model — architecture, task design, optimiser, schedule,
budget, trainable layers, LoRA placement / rank / initialisation, merges, storage dtype, upload
clock — from ranges of its own (docs/zoo.md, "Zoo families"). Build one with
``modelatlas zoo build <family> --out DIR --seed S --size tiny|small``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from modelatlas.zoo.families.draws import SIZES

#: Family name -> (module under modelatlas.zoo.families, one-line description).
FAMILIES: dict[str, tuple[str, str]] = {
    "llama": ("llama", "decoder LMs with Llama names on synthetic text: full / partial FT, LoRA placements and "
                       "inits, QLoRA-like, merges, bf16/fp16/fp32 mixed"),
    "vision": ("vision", "ResNets with BatchNorm and ViTs transferred between image tasks: fresh heads, linear "
                         "probes, SGD/AdamW, nudges and long runs, head-only LoRA, soups, lr ladders days apart"),
    "recurrent": ("recurrent", "GRU/LSTM LMs: checkpointed runs and branches, checkpoint averaging, label-token "
                               "classifiers on the shared head, LoRA on every Linear, children before parents"),
    "tabular": ("tabular", "residual MLPs: escalating chains (nudges to half-norm runs), fresh/shared heads, LoRA "
                           "rank 1-64 on every Linear, blind TIES/DARE merges, lone roots, often no times"),
}


def family_builder(name: str) -> Callable:
    """``build(out, seed=0, size="small", on_model=None) -> Zoo`` of the family ``name``."""
    if name not in FAMILIES:
        raise KeyError(name)
    return import_module(f"modelatlas.zoo.families.{FAMILIES[name][0]}").build


__all__ = ["FAMILIES", "SIZES", "family_builder"]
