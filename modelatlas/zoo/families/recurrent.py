"""The ``recurrent`` family: GRU / LSTM language models, long runs and their checkpoints.

Design (docs/zoo.md, "Family recurrent"): each component pre-trains one ``gru-*`` or ``lstm-*``
language model (embedding → ``nn.GRU`` / ``nn.LSTM`` → ``proj`` → ``head`` over the vocabulary) on
twelve text domains with Adam and gradient clipping. The family is built around **runs**:
training runs saved every few to a few hundred steps (snakes), resumed from a checkpoint of another
run (a branch), their checkpoints averaged (checkpoint averaging, a merge whose card rarely names
its parents). Other derivatives keep the shared vocabulary head for every task: next-token
prediction on one domain, or classification of the domain as a *label token* at the last
position (so a classifier has the language model's shapes); by full fine-tuning (Adam, SGD with
momentum at high rates, AdamW), head-only or frozen-embedding partial fine-tuning, or LoRA on
every Linear (``proj`` and the 48-output ``head``), rank 1–32. Budgets are long more often than
not, so fine-tunes converge on their task and move far. Storage fp32 or bf16; upload clocks with
checkpoints minutes to days apart, children often uploaded before their parents, and many
unknown times (often absent from the manifest).
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

ARCHITECTURES = ("gru-1x48", "gru-2x32", "lstm-1x40")
DOMAINS = 12
DTYPES = {"fp32": 0.7, "bf16": 0.3}
METHODS = ("lm", "label", "partial", "lora")


def _task(rng: np.random.Generator, universe: int, objective: str) -> TextTask:
    if objective == "label-token":
        domains = tuple(int(d) for d in np.sort(rng.choice(40, int(rng.integers(2, 6)), replace=False)))
    else:
        domains = (int(rng.integers(0, 40)),)
    return TextTask(universe, domains, objective, temperature=round(float(rng.uniform(0.7, 1.3)), 2))


def _recipe(rng: np.random.Generator, size: draws.Size, budget: tuple[int, int] = (60, 900)):
    return draws.recipe(rng, optimizers={"adam": 0.5, "sgd": 0.3, "adamw": 0.2},
                        lr={"adam": (3e-4, 1e-2), "sgd": (0.05, 1.0), "adamw": (3e-4, 1e-2)}, budget=budget,
                        size=size, clip=0.8, schedules={"constant": 0.6, "cosine": 0.2, "warmup-constant": 0.2})


def _derive(w: LineageWriter, rng: np.random.Generator, parent: str, name: str, universe: int, size: draws.Size,
            method: str | None = None) -> str:
    method = method or draws.pick(rng, {"lm": 0.35, "label": 0.25, "partial": 0.15, "lora": 0.25})
    dtype = w.models[parent].extra.get("dtype", "fp32") if rng.random() < 0.7 else draws.dtype(rng, DTYPES)
    classify = method == "label" or (method in ("partial", "lora") and rng.random() < 0.3)
    task = _task(rng, universe, "label-token" if classify else "lm")
    if method == "lora":
        rank = int(rng.choice([1, 2, 4, 8, 16, 32]))
        recipe = _recipe(rng, size)
        return w.lora(parent, name, task, replace(recipe, optimizer="adam", lr=draws.log_uniform(rng, 1e-3, 2e-2)),
                      targets=["proj", "head"], rank=rank, alpha=float(rng.choice([rank, 2 * rank, 32])),
                      init=lora_init(rng, {"kaiming": 0.5, "gaussian": 0.3, "pissa": 0.2}, rank),
                      rslora=bool(rng.random() < 0.3), dtype=dtype, extra={"lora_placement": "all-linear"})
    trainable = None
    if method == "partial":
        trainable = [["proj", "head"], ["rnn", "proj", "head"]][int(rng.integers(2))]
    return w.finetune(parent, name, task, _recipe(rng, size), dtype=dtype, trainable=trainable)


def _run(w: LineageWriter, rng: np.random.Generator, start: str, name: str, universe: int,
         size: draws.Size) -> list[str]:
    saves = np.cumsum([draws.steps(rng, 5, 200, size) for _ in range(int(rng.integers(3, 8)))]).tolist()
    recipe = replace(_recipe(rng, size), steps=saves[-1])
    task = _task(rng, universe, "lm" if rng.random() < 0.7 else "label-token")
    return w.snake(start, name, task, recipe, saves=saves, dtype=w.models[start].extra.get("dtype", "fp32"))


def _component(w: LineageWriter, rng: np.random.Generator, component: str, universe: int, size: draws.Size,
               tiny: bool) -> None:
    architecture = str(rng.choice(ARCHITECTURES))
    pretrain = draws.recipe(rng, optimizers={"adam": 1.0}, lr={"adam": (2e-3, 8e-3)}, budget=(300, 800), size=size,
                            schedules={"constant": 0.7, "cosine": 0.3}, batches=(32, 64), clip=1.0)
    root = w.root(component, architecture, TextTask(universe, tuple(range(DOMAINS))), pretrain,
                  dtype=draws.dtype(rng, DTYPES))
    runs = [_run(w, rng, root, "run0", universe, size)]
    for r in range(1, 1 if tiny else int(rng.integers(1, 4))):  # branches resumed from a checkpoint
        start = str(rng.choice([root, *[c for run in runs for c in run]]))
        runs.append(_run(w, rng, start, f"run{r}", universe, size))
    methods = list(METHODS) if tiny else [None] * int(rng.integers(2, 6))
    starts = [root, *[c for run in runs for c in run]]
    derived = [_derive(w, rng, str(rng.choice(starts)) if i else root, f"ft{i}", universe, size, m)
               for i, m in enumerate(methods)]
    for i, d in enumerate(derived):
        if not tiny and rng.random() < 0.35:
            _derive(w, rng, d, f"ft{i}.0", universe, size)
    if tiny or rng.random() < 0.6:  # checkpoint averaging of a run's last checkpoints
        run = max(runs, key=len)
        k = min(len(run), int(rng.integers(2, 4)))
        w.merge(run[-k:], "ckpt-avg", "average", dtype=w.models[run[-1]].extra["dtype"],
                documented=bool(rng.random() < 0.2), weights=[1.0 / k] * k)
    lm_tunes = [d for d in derived if w.models[d].parents == [root] and w.models[d].extra.get("trainable") == "all"]
    if len(lm_tunes) >= 2 and rng.random() < 0.5:
        w.merge(lm_tunes[:2], "task-sum", "task_arithmetic", dtype=draws.dtype(rng, DTYPES),
                documented=bool(rng.random() < 0.5), base=root, weights=[1.0, 1.0], lam=float(rng.uniform(0.3, 1.0)))
    if tiny or rng.random() < 0.4:  # repeats of one recipe with different seeds and rates
        task, base = _task(rng, universe, "lm"), _recipe(rng, size, (30, 300))
        for k, lr in enumerate(base.lr * np.geomspace(0.5, 2.0, int(rng.integers(2, 5)))):
            w.finetune(root, f"seed{k}", task, replace(base, lr=float(lr)), dtype=w.models[root].extra["dtype"],
                       pattern="fan", sweep=f"{component}/seeds", sweep_key=float(lr),
                       extra={"sweep": f"{component}/seeds", "sweep_params": {"lr": float(lr), "repeat": k}})
    pool = [m for m in w.models if w.models[m].component == component
            and w.models[m].pattern not in ("duplicate", "quantized")]
    for q in draws.sample(rng, pool, 1 if tiny else int(rng.integers(0, 3))):
        w.quantize(q, draws.pick(rng, {"int8-row": 0.5, "int4-group": 0.5}))
    if tiny or rng.random() < 0.3:
        w.duplicate(str(rng.choice(pool)))


def time_model(rng: np.random.Generator) -> TimeModel:
    """Checkpoints minutes to days apart, children often before parents, many unknown times."""
    return TimeModel(style=draws.pick(rng, {"build-order": 0.5, "delays": 0.5}),
                     gap_minutes=(1.0, draws.log_uniform(rng, 10, 300)), delay_days=draws.log_uniform(rng, 1, 20),
                     fans=draws.pick(rng, {"burst": 0.7, "together": 0.3}),
                     checkpoint_minutes=(draws.log_uniform(rng, 1, 30), draws.log_uniform(rng, 600, 10000)),
                     child_first=float(rng.uniform(0.03, 0.15)),
                     unknown=float(rng.uniform(0.1, 0.5)) if rng.random() < 0.7 else 0.0,
                     omit_unknown=bool(rng.random() < 0.5))


def build(out, seed: int = 0, size: str = "small", on_model: Callable[[str], None] | None = None) -> Zoo:
    """The ``recurrent`` family zoo of ``size`` (``tiny`` or ``small``) for ``seed``, written to ``out``."""
    return build_family(out, "recurrent", seed, size, on_model,
                        lambda w, c, s, tiny: _component(w, w.rng, f"c{c}", seed * 1000 + c, s, tiny=tiny),
                        time_model)
