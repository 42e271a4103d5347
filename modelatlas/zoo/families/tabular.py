"""The ``tabular`` family: residual MLPs on teacher-labelled vectors, escalating chains and blind merges.

Design (docs/zoo.md, "Family tabular"): many small components, some of one or two models. Each
root is a ``resmlp-*`` (pre-norm residual MLP, timm names) pre-trained with AdamW and strong
weight decay on all ten classes of a random teacher network. Derivatives classify a subset of
the classes (shared head: the first logits) or a new universe with a fresh head, and form
**escalating chains**: along a chain each budget is 1.5–4× its parent's, from 20-step nudges at
tiny rates (in bf16 often a zero difference in many tensors) to long runs that move the weights by
half their norm or more, so children move further than their parents. Methods: full fine-tuning
(AdamW with weight decay up to 0.3, Adam, SGD with momentum), partial (head only, last block, or
stem only: the rest bit-identical), LoRA on every Linear including the 10-output head, rank 1–64,
alpha 1 to 64, PEFT / Gaussian / PiSSA initialisation, and LoRA on fine-tunes. Merges are task
arithmetic, TIES and DARE of siblings, mostly undocumented. Re-uploads copy a root byte for byte.
Storage fp32 / fp16 / bf16 per model. Times are often entirely unknown (absent), otherwise build
order with learning-rate sweeps uploaded minutes apart in random order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from modelatlas.zoo.families import draws
from modelatlas.zoo.families.skeleton import build_family
from modelatlas.zoo.family_tasks import TabularTask, subset
from modelatlas.zoo.lineage import LineageWriter, lora_init
from modelatlas.zoo.manifest import Zoo
from modelatlas.zoo.upload_times import TimeModel

ARCHITECTURES = ("resmlp-3x64", "resmlp-2x128", "resmlp-4x48")
DTYPES = {"fp32": 0.4, "fp16": 0.4, "bf16": 0.2}
METHODS = ("full", "partial", "lora")


def _task(rng: np.random.Generator, universe: int, seed: int) -> tuple[TabularTask, bool]:
    """A task and whether it needs a fresh head (a new universe relabels everything)."""
    if rng.random() < 0.3:
        return TabularTask(seed * 1000 + 700 + int(rng.integers(0, 100)), shift=int(rng.integers(1, 2**31))), True
    shift = int(rng.integers(1, 2**31)) if rng.random() < 0.7 else 0
    return TabularTask(universe, subset(rng, 2, 8), shift=shift), False


def _recipe(rng: np.random.Generator, steps: int):
    r = draws.recipe(rng, optimizers={"adamw": 0.5, "adam": 0.25, "sgd": 0.25},
                     lr={"adamw": (1e-5, 1e-2), "adam": (1e-5, 5e-3), "sgd": (1e-3, 0.3)}, budget=(steps, steps),
                     size=draws.Size(1, 1.0), weight_decay=(1e-3, 0.3),
                     schedules={"constant": 0.3, "cosine": 0.3, "warmup-cosine": 0.2, "step": 0.2})
    return r


def _derive(w: LineageWriter, rng: np.random.Generator, parent: str, name: str, universe: int, seed: int,
            steps: int, method: str | None = None) -> str:
    method = method or draws.pick(rng, {"full": 0.5, "partial": 0.2, "lora": 0.3})
    task, fresh = _task(rng, universe, seed)
    dtype = draws.dtype(rng, DTYPES)
    recipe = _recipe(rng, steps)
    if method == "lora":
        from modelatlas.zoo.family_nets import FAMILY_ARCHITECTURES, linear_names  # noqa: PLC0415

        rank = int(rng.choice([1, 2, 4, 8, 16, 32, 64]))
        targets = list(linear_names(FAMILY_ARCHITECTURES[w.architecture(parent)]()))
        if rng.random() < 0.4:  # blocks only, the stem and head left out
            targets = [t for t in targets if t.startswith("blocks.")]
        return w.lora(parent, name, task, replace(recipe, lr=draws.log_uniform(rng, 1e-4, 1e-2)), targets=targets,
                      rank=rank, alpha=float(rng.choice([1, rank, 2 * rank, 64])),
                      init=lora_init(rng, {"kaiming": 0.5, "gaussian": 0.25, "pissa": 0.25}, rank),
                      rslora=bool(rng.random() < 0.25), dtype=dtype, extra={"lora_placement": "all-linear"})
    trainable = None
    if method == "partial":
        depth = int(w.architecture(parent).split("-")[1].split("x")[0])
        trainable = [["head"], [f"blocks.{depth - 1}", "head"], ["stem"]][int(rng.integers(3))]
        fresh = fresh and "head" in trainable
    return w.finetune(parent, name, task, recipe, dtype=dtype, trainable=trainable, fresh_head=fresh)


def _chain(w: LineageWriter, rng: np.random.Generator, start: str, name: str, universe: int, seed: int,
           size: draws.Size, length: int, tiny: bool, methods: list[str | None] | None = None) -> list[str]:
    """An escalating chain: each budget 1.5–4× the previous one."""
    steps = draws.steps(rng, 20, 60, size)
    ids, parent = [], start
    for k in range(length):
        method = methods[k] if methods else None
        parent = _derive(w, rng, parent, f"{name}.{k}" if k else name, universe, seed, steps, method)
        ids.append(parent)
        steps = int(min(steps * rng.uniform(1.5, 4.0), 2000 * size.budget + 20))
    return ids


def _component(w: LineageWriter, rng: np.random.Generator, component: str, universe: int, seed: int,
               size: draws.Size, tiny: bool) -> None:
    architecture = str(rng.choice(ARCHITECTURES))
    pretrain = draws.recipe(rng, optimizers={"adamw": 1.0}, lr={"adamw": (1e-3, 5e-3)}, budget=(200, 1500), size=size,
                            schedules={"cosine": 0.6, "warmup-cosine": 0.4}, weight_decay=(0.05, 0.3),
                            batches=(64, 128))
    root = w.root(component, architecture, TabularTask(universe), pretrain, dtype=draws.dtype(rng, DTYPES))
    shape = "tiny" if tiny else draws.pick(rng, {"lone": 0.15, "pair": 0.15, "tree": 0.7})
    if shape == "lone":  # a family of one model
        return
    if shape == "pair":
        _derive(w, rng, root, "only", universe, seed, draws.steps(rng, 20, 500, size))
        return
    chains = [_chain(w, rng, root, "full", universe, seed, size, 3, tiny, ["full", "lora", "partial"])] if tiny else []
    chains += [_chain(w, rng, root, f"x{i}", universe, seed, size, int(rng.integers(1, 5)), tiny)
               for i in range(0 if tiny else int(rng.integers(2, 5)))]
    firsts = [c[0] for c in chains]
    if tiny or rng.random() < 0.6:  # sweep of learning rates, one task, from the root
        task, fresh = _task(rng, universe, seed)
        base = _recipe(rng, draws.steps(rng, 40, 400, size))
        lrs = base.lr * np.geomspace(0.1, 10.0, int(rng.integers(3, 4 if tiny else 9)))
        for k, lr in enumerate(lrs):
            w.finetune(root, f"lr{k}", task, replace(base, lr=float(lr)), dtype=w.models[root].extra["dtype"],
                       fresh_head=fresh, pattern="fan", sweep=f"{component}/lrs", sweep_key=float(lr),
                       extra={"sweep": f"{component}/lrs", "sweep_params": {"lr": float(lr)}})
    if tiny or rng.random() < 0.3:  # a long run on one more task, saved as it goes
        saves = np.cumsum([draws.steps(rng, 20, 400, size) for _ in range(int(rng.integers(2, 5)))]).tolist()
        w.snake(root, "long", _task(rng, universe, seed)[0], _recipe(rng, saves[-1]), saves=saves,
                dtype=w.models[root].extra["dtype"])
    merges = 1 if tiny else (int(rng.integers(0, 3)) if len(firsts) >= 2 else 0)
    for m in range(merges):
        method = draws.pick(rng, {"task_arithmetic": 0.35, "ties": 0.35, "dare": 0.3})
        if tiny:  # the chain's first model and a sweep member
            parents = [firsts[0], f"{component}/lr0"]
        else:
            k = min(len(firsts), int(rng.integers(2, 4)))
            parents = [firsts[int(i)] for i in np.sort(rng.choice(len(firsts), k, replace=False))]
        w.merge(parents, f"merge{m}", method, dtype=draws.dtype(rng, DTYPES), documented=bool(rng.random() < 0.2),
                base=root, weights=[round(float(x), 3) for x in rng.uniform(0.3, 1.2, len(parents))],
                density=float(rng.uniform(0.1, 0.9)), lam=float(rng.uniform(0.5, 1.5)))
    pool = [root, *[c for chain in chains for c in chain]]
    for q in draws.sample(rng, pool, 1 if tiny else int(rng.integers(0, 3))):
        w.quantize(q, draws.pick(rng, {"int8-row": 0.5, "int4-group": 0.5}))
    if tiny or rng.random() < 0.4:
        w.duplicate(root)


def time_model(rng: np.random.Generator) -> TimeModel:
    """Often no times at all (absent); otherwise build order, sweeps minutes apart in random order."""
    if rng.random() < 0.4:
        return TimeModel(unknown=1.0, omit_unknown=bool(rng.random() < 0.6))
    return TimeModel(style="build-order",
                     gap_minutes=(draws.log_uniform(rng, 0.5, 5), draws.log_uniform(rng, 60, 3000)), fans="burst",
                     checkpoint_minutes=(draws.log_uniform(rng, 5, 60), draws.log_uniform(rng, 120, 4000)),
                     child_first=float(rng.uniform(0.02, 0.08)),
                     unknown=0.0 if rng.random() < 0.6 else float(rng.uniform(0.05, 0.2)), omit_unknown=True)


def build(out, seed: int = 0, size: str = "small", on_model: Callable[[str], None] | None = None) -> Zoo:
    """The ``tabular`` family zoo of ``size`` (``tiny`` or ``small``) for ``seed``, written to ``out``."""
    return build_family(out, "tabular", seed, size, on_model,
                        lambda w, c, s, tiny: _component(w, w.rng, f"c{c}", seed * 1000 + c, seed, s, tiny=tiny),
                        time_model, extra_components=4)
