"""The ``llama`` family: decoder-only language models with Llama tensor names, trained on synthetic text.

Design (docs/zoo.md, "Family llama"): each component pre-trains one ``llama-*`` model (RMSNorm,
rotary positions, grouped-query attention in one size) on a mixture of eight text domains of its
own universe, with AdamW and warm-up then cosine. Below it, a random tree: every derivative
continues next-token prediction (the shared ``lm_head``, never replaced) on one or two domains
(seen in pre-training or new) at a drawn temperature, by one of full fine-tuning, partial
fine-tuning (one block, the MLPs, or the head and final norm), LoRA placed on ``q_proj``/``v_proj``,
on every attention projection, or on every Linear including ``lm_head``, with rank 1–64, drawn
alpha, PEFT / Gaussian / PiSSA initialisation and rsLoRA scaling, or QLoRA-like (trained against
the int4 / int8 de-quantised parent, merged into it). Derivatives may have derivatives of their
own (LoRA on fine-tunes, fine-tunes on LoRA merges). Budgets run from 20-step nudges to hundreds of
steps at high rates; optimisers AdamW, Adam or SGD with momentum. Storage is mostly bf16, drawn per
model (mixed dtypes in one lineage). A component may add a checkpointed run (snake), a learning-rate
sweep (fan), merges by averaging, task arithmetic, TIES, DARE or SLERP (documented or not),
quantised leaves and a re-upload. At ``small`` size one more component is a lone root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from modelatlas.zoo.families import draws
from modelatlas.zoo.families.skeleton import build_family
from modelatlas.zoo.family_tasks import TextTask
from modelatlas.zoo.lineage import LineageWriter, lora_init
from modelatlas.zoo.manifest import Zoo
from modelatlas.zoo.upload_times import TimeModel

ARCHITECTURES = ("llama-2x32-gqa", "llama-2x48", "llama-3x32")
PRETRAIN_DOMAINS = 8
RANKS = (1, 2, 4, 8, 16, 32, 64)
DTYPES = {"bf16": 0.5, "fp32": 0.3, "fp16": 0.2}
METHODS = ("finetune", "partial", "lora", "qlora")


def _task(rng: np.random.Generator, universe: int) -> TextTask:
    pool = np.arange(PRETRAIN_DOMAINS) if rng.random() < 0.6 else np.arange(PRETRAIN_DOMAINS, 40)
    domains = tuple(int(d) for d in np.sort(rng.choice(pool, 1 + int(rng.random() < 0.3), replace=False)))
    return TextTask(universe, domains, "lm", temperature=round(float(rng.uniform(0.6, 1.5)), 2))


def _finetune_recipe(rng: np.random.Generator, size: draws.Size):
    return draws.recipe(rng, optimizers={"adamw": 0.5, "adam": 0.3, "sgd": 0.2},
                        lr={"adamw": (1e-4, 1e-2), "adam": (1e-4, 5e-3), "sgd": (1e-2, 0.3)},
                        budget=(20, 500), size=size, clip=0.3,
                        schedules={"constant": 0.3, "cosine": 0.3, "warmup-cosine": 0.3, "warmup-constant": 0.1})


def _lora_targets(rng: np.random.Generator, w: LineageWriter, architecture: str) -> tuple[str, list[str]]:
    from modelatlas.zoo.family_nets import FAMILY_ARCHITECTURES, linear_names  # noqa: PLC0415

    module = FAMILY_ARCHITECTURES[architecture]()
    placement = draws.pick(rng, {"attention-qv": 0.4, "attention-all": 0.3, "all-linear": 0.3})
    if placement == "all-linear":
        return placement, list(linear_names(module))
    keep = ("q_proj", "v_proj") if placement == "attention-qv" else ("q_proj", "k_proj", "v_proj", "o_proj")
    return placement, [t for t in module.attention_linears if t.endswith(keep)]


def _derive(w: LineageWriter, rng: np.random.Generator, parent: str, name: str, universe: int,
            size: draws.Size, allow_qlora: bool = True, method: str | None = None) -> str:
    """One derivative of ``parent`` by ``method``, drawn when not given (see the module docstring)."""
    architecture = w.architecture(parent)
    parent_dtype = w.models[parent].extra.get("dtype", "fp32")
    dtype = parent_dtype if rng.random() < 0.6 else draws.dtype(rng, DTYPES)
    weights = {"finetune": 0.35, "partial": 0.15, "lora": 0.35, "qlora": 0.15 if allow_qlora else 0.0}
    method = method or draws.pick(rng, weights)
    task = _task(rng, universe)
    if method in ("finetune", "partial"):
        trainable = None
        if method == "partial":
            layers = int(architecture.split("-")[1].split("x")[0])
            trainable = [[f"model.layers.{layers - 1}"], [f"model.layers.{i}.mlp" for i in range(layers)],
                         ["lm_head", "model.norm"]][int(rng.integers(3))]
        return w.finetune(parent, name, task, _finetune_recipe(rng, size), dtype=dtype, trainable=trainable)
    placement, targets = _lora_targets(rng, w, architecture)
    rank = int(rng.choice(RANKS, p=np.array([2, 3, 4, 4, 3, 2, 1]) / 19))
    alpha = float(rng.choice([rank, 2 * rank, 8, 16, 32]))
    recipe = draws.recipe(rng, optimizers={"adamw": 0.8, "adam": 0.2}, lr={"adamw": (5e-4, 2e-2), "adam": (5e-4, 1e-2)},
                          budget=(30, 600), size=size, schedules={"constant": 0.4, "cosine": 0.3, "warmup-cosine": 0.3})
    return w.lora(parent, name, task, recipe, targets=targets, rank=rank, alpha=alpha,
                  init=lora_init(rng, {"kaiming": 0.6, "gaussian": 0.2, "pissa": 0.2}, rank),
                  rslora=bool(rng.random() < 0.2),
                  base_quant=draws.pick(rng, {"int4-group": 0.7, "int8-row": 0.3}) if method == "qlora" else None,
                  dtype=dtype, extra={"lora_placement": placement})


def _component(w: LineageWriter, rng: np.random.Generator, component: str, universe: int, size: draws.Size,
               tiny: bool) -> None:
    architecture = str(rng.choice(ARCHITECTURES))
    pretrain = draws.recipe(rng, optimizers={"adamw": 1.0}, lr={"adamw": (2e-3, 8e-3)}, budget=(250, 600), size=size,
                            schedules={"warmup-cosine": 0.7, "cosine": 0.3}, batches=(32, 64))
    root = w.root(component, architecture, TextTask(universe, tuple(range(PRETRAIN_DOMAINS))), pretrain,
                  dtype=draws.dtype(rng, DTYPES))
    # tiny (tests): every derivation method once, in order, so each ground-truth check has a case
    methods = list(METHODS) if tiny else [None] * int(rng.integers(2, 7))
    children = [_derive(w, rng, root, f"d{i}", universe, size, method=m) for i, m in enumerate(methods)]
    derived = list(children)
    for i, child in enumerate(children):
        for j in range(int(rng.choice([0, 1] if tiny else [0, 0, 1, 2]))):
            grand = _derive(w, rng, child, f"d{i}.{j}", universe, size, allow_qlora=False)
            derived.append(grand)
            if not tiny and rng.random() < 0.25:
                derived.append(_derive(w, rng, grand, f"d{i}.{j}.0", universe, size, allow_qlora=False))
    if tiny or rng.random() < 0.6:  # a checkpointed run of a derivative (or the root)
        start = str(rng.choice([root, *children]))
        count = int(rng.integers(2, 4 if tiny else 6))
        saves = np.cumsum([draws.steps(rng, 10, 150, size) for _ in range(count)]).tolist()
        recipe = draws.recipe(rng, optimizers={"adamw": 0.7, "adam": 0.3},
                              lr={"adamw": (3e-4, 5e-3), "adam": (3e-4, 3e-3)},
                              budget=(saves[-1], saves[-1]), size=draws.Size(1, 1.0),
                              schedules={"constant": 0.5, "cosine": 0.5})
        w.snake(start, "run", _task(rng, universe), recipe, saves=saves,
                dtype=w.models[start].extra.get("dtype", "fp32"))
    if tiny or rng.random() < 0.5:  # a learning-rate sweep on one task
        start, task = str(rng.choice([root, *children])), _task(rng, universe)
        base = _finetune_recipe(rng, size)
        low = draws.log_uniform(rng, 1e-4, 1e-3) if base.optimizer != "sgd" else draws.log_uniform(rng, 1e-2, 5e-2)
        lrs = low * np.geomspace(1, float(rng.uniform(5, 30)), 3 if tiny else int(rng.integers(3, 6)))
        for k in rng.permutation(len(lrs)):
            recipe = replace(base, lr=float(lrs[k]))
            w.finetune(start, f"sweep-{k}", task, recipe, dtype=w.models[start].extra.get("dtype", "fp32"),
                       pattern="fan", sweep=f"{component}/sweep", sweep_key=float(lrs[k]),
                       extra={"sweep": f"{component}/sweep", "sweep_params": {"lr": float(lrs[k])}})
    merge_pool = [c for c in children if w.models[c].pattern in ("finetune", "lora")]
    for m in range(int(rng.integers(1 if tiny else 0, 3)) if len(merge_pool) >= 2 else 0):
        method = draws.pick(rng, {"average": 0.2, "task_arithmetic": 0.2, "ties": 0.2, "dare": 0.2, "slerp": 0.2})
        k = 2 if method == "slerp" or len(merge_pool) == 2 else int(rng.integers(2, 4))
        parents = [merge_pool[int(i)] for i in np.sort(rng.choice(len(merge_pool), k, replace=False))]
        w.merge(parents, f"merge-{m}", method, dtype=draws.dtype(rng, DTYPES), documented=bool(rng.random() < 0.5),
                base=root, weights=[round(float(x), 3) for x in rng.uniform(0.3, 1.0, k)],
                t=float(rng.uniform(0.2, 0.8)), density=float(rng.uniform(0.2, 0.8)), lam=float(rng.uniform(0.5, 1.5)))
    pool = [root, *derived]
    for q in draws.sample(rng, pool, int(rng.integers(1 if tiny else 0, 3))):
        w.quantize(q, draws.pick(rng, {"int8-row": 0.5, "int4-group": 0.5}))
    if tiny or rng.random() < 0.4:
        w.duplicate(root)


def time_model(rng: np.random.Generator) -> TimeModel:
    """The family's upload clock: mostly build order, sometimes heavy-tailed delays; some unknown."""
    unknown = draws.pick(rng, {"none": 0.5, "some": 0.35, "all": 0.15})
    return TimeModel(style=draws.pick(rng, {"build-order": 0.6, "delays": 0.4}),
                     gap_minutes=(1.0, draws.log_uniform(rng, 30, 600)), delay_days=draws.log_uniform(rng, 2, 40),
                     fans=draws.pick(rng, {"burst": 0.6, "ladder": 0.2, "together": 0.2}),
                     checkpoint_minutes=(draws.log_uniform(rng, 2, 60), draws.log_uniform(rng, 300, 7200)),
                     child_first=0.0 if rng.random() < 0.5 else float(rng.uniform(0.01, 0.06)),
                     unknown={"none": 0.0, "some": float(rng.uniform(0.05, 0.3)), "all": 1.0}[unknown],
                     omit_unknown=bool(rng.random() < 0.5))


def build(out, seed: int = 0, size: str = "small", on_model: Callable[[str], None] | None = None) -> Zoo:
    """The ``llama`` family zoo of ``size`` (``tiny`` or ``small``) for ``seed``, written to ``out``."""

    def solo(w: LineageWriter, s: draws.Size) -> None:  # a family of one model
        w.root("solo", str(w.rng.choice(ARCHITECTURES)), TextTask(seed * 1000 + 999, tuple(range(PRETRAIN_DOMAINS))),
               draws.recipe(w.rng, optimizers={"adamw": 1.0}, lr={"adamw": (2e-3, 8e-3)}, budget=(250, 600), size=s,
                            schedules={"warmup-cosine": 1.0}), dtype=draws.dtype(w.rng, DTYPES))

    return build_family(out, "llama", seed, size, on_model,
                        lambda w, c, s, tiny: _component(w, w.rng, f"c{c}", seed * 1000 + c, s, tiny=tiny),
                        time_model, finally_=solo)
