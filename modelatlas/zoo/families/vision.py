"""The ``vision`` family: image classifiers (ResNets with BatchNorm, small ViTs) transferred between tasks.

Design (docs/zoo.md, "Family vision"): each component pre-trains one ``resnet-bn-*`` (SGD with
momentum, step or cosine decay, as ResNets are trained) or ``vit-*`` (AdamW, warm-up then cosine)
on all ten template classes of its universe. Derivatives are *transfers*: a new task (some
classes of the same universe under a colour / contrast shift, or a different universe
altogether), usually with a **fresh head** (``fc`` / ``classifier`` re-initialised, as when
``num_labels`` changes), by full fine-tuning, linear probing (head only: the whole body
bit-identical, BatchNorm statistics included), partial fine-tuning (last stage or last block and
head), or LoRA (ViT: ``query``/``value`` or every Linear including the 10-output head; ResNet: the
head ``fc`` only, a narrow layer where rank 8 is 80 % of the rank). Chains are "short nudge, then
long run": a grandchild's budget is drawn independently and often much larger, so children move
further than their parents, and a long run on a new universe partly undoes the parent's update.
Sweeps are lr × repeat grids, often uploaded days apart in increasing learning rate; merges are
model soups (uniform average of sweep members, usually undocumented) and SLERP of two fine-tunes.
A long transfer run may be saved every few hundred steps (a snake). Storage fp32 or fp16 (no
bf16); quantised leaves int8-row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from modelatlas.zoo.families import draws
from modelatlas.zoo.families.skeleton import build_family
from modelatlas.zoo.family_tasks import ImageTask, subset
from modelatlas.zoo.lineage import LineageWriter
from modelatlas.zoo.manifest import Zoo
from modelatlas.zoo.upload_times import TimeModel

ARCHITECTURES = ("resnet-bn-8", "resnet-bn-12", "vit-2x32-p4", "vit-3x24-p4")
DTYPES = {"fp32": 0.6, "fp16": 0.4}
METHODS = ("full", "probe", "partial", "lora")


def _is_vit(architecture: str) -> bool:
    return architecture.startswith("vit")


def _task(rng: np.random.Generator, universe: int, seed: int) -> ImageTask:
    if rng.random() < 0.35:  # a different universe: a new domain altogether
        universe = seed * 1000 + 500 + int(rng.integers(0, 50))
    return ImageTask(universe, subset(rng, 2, 10), shift=int(rng.integers(1, 2**31)))


def _recipe(rng: np.random.Generator, architecture: str, size: draws.Size, budget: tuple[int, int]):
    if _is_vit(architecture):
        return draws.recipe(rng, optimizers={"adamw": 0.7, "sgd": 0.3}, lr={"adamw": (1e-4, 5e-3), "sgd": (3e-3, 0.1)},
                            budget=budget, size=size, weight_decay=(0.01, 0.1),
                            schedules={"warmup-cosine": 0.5, "cosine": 0.3, "constant": 0.2})
    return draws.recipe(rng, optimizers={"sgd": 0.7, "adam": 0.3}, lr={"sgd": (3e-3, 0.2), "adam": (1e-4, 3e-3)},
                        budget=budget, size=size, weight_decay=(1e-4, 5e-3),
                        schedules={"step": 0.3, "cosine": 0.4, "constant": 0.3})


def _budget(rng: np.random.Generator) -> tuple[int, int]:
    """Nudges (20–60 steps) or long runs (150–800), drawn independently per model."""
    return (20, 60) if rng.random() < 0.4 else (150, 800)


def _derive(w: LineageWriter, rng: np.random.Generator, parent: str, name: str, universe: int, seed: int,
            size: draws.Size, method: str | None = None) -> str:
    architecture = w.architecture(parent)
    method = method or draws.pick(rng, {"full": 0.4, "probe": 0.15, "partial": 0.2, "lora": 0.25})
    dtype = draws.dtype(rng, DTYPES)
    task = _task(rng, universe, seed)
    recipe = _recipe(rng, architecture, size, _budget(rng))
    if method == "lora":
        head = "classifier" if _is_vit(architecture) else "fc"
        if _is_vit(architecture) and rng.random() < 0.6:
            layers = int(architecture.split("-")[1].split("x")[0])
            targets = [f"vit.encoder.layer.{i}.attention.attention.{k}" for i in range(layers)
                       for k in ("query", "value")]
        elif _is_vit(architecture):
            from modelatlas.zoo.family_nets import FAMILY_ARCHITECTURES, linear_names  # noqa: PLC0415

            targets = list(linear_names(FAMILY_ARCHITECTURES[architecture]()))
        else:
            targets = [head]
        rank = int(rng.choice([1, 2, 4, 8, 16]))
        return w.lora(parent, name, task, replace(recipe, lr=draws.log_uniform(rng, 1e-3, 3e-2), optimizer="adamw"),
                      targets=targets, rank=rank, alpha=float(rng.choice([rank, 2 * rank, 16])),
                      init=draws.pick(rng, {"kaiming": 0.8, "gaussian": 0.2}), dtype=dtype,
                      extra={"lora_placement": "head" if targets == [head] else "vit"})
    trainable = None
    if method == "probe":
        trainable = ["classifier" if _is_vit(architecture) else "fc"]
    elif method == "partial":
        if _is_vit(architecture):
            layers = int(architecture.split("-")[1].split("x")[0])
            trainable = [f"vit.encoder.layer.{layers - 1}", "vit.layernorm", "classifier"]
        else:
            trainable = ["layer2", "fc"]
    return w.finetune(parent, name, task, recipe, dtype=dtype, trainable=trainable,
                      fresh_head=bool(method in ("full", "probe", "partial") and rng.random() < 0.6))


def _component(w: LineageWriter, rng: np.random.Generator, component: str, universe: int, seed: int,
               size: draws.Size, tiny: bool) -> None:
    architecture = str(rng.choice(ARCHITECTURES))
    if _is_vit(architecture):
        pretrain = draws.recipe(rng, optimizers={"adamw": 1.0}, lr={"adamw": (1e-3, 4e-3)}, budget=(300, 700),
                                size=size,
                                schedules={"warmup-cosine": 1.0}, batches=(32, 64), weight_decay=(0.02, 0.1))
    else:
        pretrain = draws.recipe(rng, optimizers={"sgd": 1.0}, lr={"sgd": (0.03, 0.2)}, budget=(300, 700), size=size,
                                schedules={"step": 0.5, "cosine": 0.5}, batches=(32, 64), weight_decay=(1e-4, 1e-3))
    root = w.root(component, architecture, ImageTask(universe), pretrain, dtype=draws.dtype(rng, DTYPES))
    methods = list(METHODS) if tiny else [None] * int(rng.integers(2, 6))
    children = [_derive(w, rng, root, f"t{i}", universe, seed, size, m) for i, m in enumerate(methods)]
    for i, child in enumerate(children):
        for j in range(0 if tiny else int(rng.choice([0, 1, 1, 2]))):
            grand = _derive(w, rng, child, f"t{i}.{j}", universe, seed, size)
            if rng.random() < 0.3:
                _derive(w, rng, grand, f"t{i}.{j}.0", universe, seed, size)
    sweep = []
    if tiny or rng.random() < 0.7:  # an lr × repeat grid on one task from one start
        start, task = str(rng.choice([root, *children])), _task(rng, universe, seed)
        base = _recipe(rng, architecture, size, _budget(rng))
        lrs = base.lr * np.geomspace(0.3, 3.0, int(rng.integers(2, 5)))
        repeats = 1 if tiny else int(rng.integers(1, 3))
        fresh = bool(rng.random() < 0.5)
        for k, lr in enumerate(lrs):
            for rep in range(repeats):
                sweep.append(w.finetune(start, f"grid-lr{k}-r{rep}", task, replace(base, lr=float(lr)),
                                        dtype=w.models[start].extra["dtype"], fresh_head=fresh, pattern="fan",
                                        sweep=f"{component}/grid", sweep_key=float(lr),
                                        extra={"sweep": f"{component}/grid",
                                               "sweep_params": {"lr": float(lr), "repeat": rep}}))
    if len(sweep) >= 2 and (tiny or rng.random() < 0.5):  # a model soup of the sweep
        k = int(rng.integers(2, len(sweep) + 1))
        parents = [sweep[int(i)] for i in np.sort(rng.choice(len(sweep), k, replace=False))]
        w.merge(parents, "soup", "average", dtype=w.models[parents[0]].extra["dtype"],
                documented=bool(rng.random() < 0.3), weights=[1.0 / k] * k)
    full = [c for c in children if w.models[c].extra.get("trainable") == "all"]
    if len(full) >= 2 and rng.random() < 0.4:
        a, b = (full[int(i)] for i in rng.choice(len(full), 2, replace=False))
        w.merge([a, b], "slerp", "slerp", dtype=draws.dtype(rng, DTYPES), documented=bool(rng.random() < 0.5),
                t=float(rng.uniform(0.2, 0.8)))
    if tiny or rng.random() < 0.4:  # a long transfer run saved every few hundred steps
        start = str(rng.choice(children))
        saves = np.cumsum([draws.steps(rng, 30, 300, size) for _ in range(int(rng.integers(2, 5)))]).tolist()
        recipe = replace(_recipe(rng, architecture, size, (20, 60)), steps=saves[-1])
        w.snake(start, "epochs", _task(rng, universe, seed), recipe, saves=saves, dtype=w.models[start].extra["dtype"])
    pool = [m for m in w.models if w.models[m].component == component
            and w.models[m].pattern not in ("duplicate", "quantized")]
    for q in draws.sample(rng, pool, 1 if tiny else int(rng.integers(0, 3))):
        w.quantize(q, "int8-row")
    if tiny or rng.random() < 0.3:
        w.duplicate(str(rng.choice([root, *children])))


def time_model(rng: np.random.Generator) -> TimeModel:
    """Heavy-tailed delays, sweeps mostly days apart in increasing lr; times rarely unknown."""
    return TimeModel(style=draws.pick(rng, {"delays": 0.8, "build-order": 0.2}),
                     gap_minutes=(5.0, draws.log_uniform(rng, 60, 2000)), delay_days=draws.log_uniform(rng, 5, 60),
                     fans=draws.pick(rng, {"ladder": 0.6, "burst": 0.2, "together": 0.2}),
                     checkpoint_minutes=(60.0, 2880.0),
                     child_first=0.0 if rng.random() < 0.7 else float(rng.uniform(0.01, 0.04)),
                     unknown=0.0 if rng.random() < 0.8 else float(rng.uniform(0.02, 0.1)), omit_unknown=False)


def build(out, seed: int = 0, size: str = "small", on_model: Callable[[str], None] | None = None) -> Zoo:
    """The ``vision`` family zoo of ``size`` (``tiny`` or ``small``) for ``seed``, written to ``out``."""
    return build_family(out, "vision", seed, size, on_model,
                        lambda w, c, s, tiny: _component(w, w.rng, f"c{c}", seed * 1000 + c, seed, s, tiny=tiny),
                        time_model)
