"""Zoo recipes: which models each named zoo holds.

- ``tiny`` / ``small`` / ``large``: mixed atlases. Each component is one pre-trained root with
  every pattern of the issue below it (:func:`mixed_component`); components cycle through the
  architectures of :data:`modelatlas.zoo.nets.ARCHITECTURES`, each root pre-trained on its own
  task universe.
- ``vthr``: MoTHer's ViT Tree Heritage Recovery shape (Sec. 6, App. A) at small scale — five
  transformer roots, and per split (full fine-tuning ``ft``, LoRA of fixed rank ``lora-f``,
  LoRA of varying ranks ``lora-v``) four children per root and four grandchildren per child, each
  on a task different from its parent's. Besides ``manifest.json`` (all splits, roots shared) the
  folder holds ``manifest-ft.json``, ``manifest-lora-f.json`` and ``manifest-lora-v.json``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelatlas.zoo.builder import ZooBuilder
from modelatlas.zoo.manifest import MANIFEST_NAME, Zoo, load_manifest

ARCH_CYCLE = ("mlp-3x64", "cnn-8-16", "bert-2x32", "mlp-3x64", "mlp-4x96", "cnn-8-16", "bert-2x32", "mlp-4x96")


@dataclass(frozen=True)
class Scale:
    """Counts and training lengths of one mixed component."""

    pretrain_steps: int
    finetune_steps: int
    children: int  # full fine-tunes of the root (at least 3: a TIES merge takes three)
    grandchildren: int  # full fine-tunes of each child
    lora_fixed: int  # LoRA children of the root with rank ``fixed_rank``
    lora_varying: int  # LoRA children with ranks drawn from ``ranks`` (each gets one LoRA child)
    quantized: int  # leaves quantised per scheme
    duplicates: int
    snake: int  # checkpoints in the run
    fan_lrs: tuple[float, ...]
    fan_seeds: int
    fixed_rank: int = 4
    ranks: tuple[int, ...] = (1, 2, 4, 8)


SCALES = {
    "tiny": Scale(pretrain_steps=250, finetune_steps=60, children=3, grandchildren=1, lora_fixed=1,
                  lora_varying=1, quantized=1, duplicates=1, snake=3, fan_lrs=(3e-4, 1e-3), fan_seeds=1),
    "small": Scale(pretrain_steps=600, finetune_steps=80, children=4, grandchildren=3, lora_fixed=3,
                   lora_varying=3, quantized=3, duplicates=2, snake=5, fan_lrs=(1e-4, 3e-4, 1e-3), fan_seeds=2),
    "large": Scale(pretrain_steps=800, finetune_steps=80, children=5, grandchildren=4, lora_fixed=4,
                   lora_varying=4, quantized=4, duplicates=3, snake=8, fan_lrs=(1e-4, 3e-4, 1e-3, 3e-3),
                   fan_seeds=3),
}
#: Components per mixed zoo.
COMPONENTS = {"tiny": 4, "small": 12, "large": 40}
FINETUNE_LRS = (3e-4, 1e-3, 3e-3)
LORA_LR = 3e-3


def _kind(architecture: str) -> str:
    from modelatlas.zoo.nets import ARCHITECTURES  # noqa: PLC0415

    return ARCHITECTURES[architecture][0]


def mixed_component(b: ZooBuilder, component: str, architecture: str, universe: int, s: Scale) -> None:
    """One root and every pattern beneath it: an FT tree (children, grandchildren), LoRA of fixed
    and varying rank, quantised leaves, duplicates, a snake, a fan and three merges."""
    from modelatlas.zoo.tasks import Task, narrow_task  # noqa: PLC0415

    kind = _kind(architecture)

    def task():
        return narrow_task(kind, universe, b.rng)

    def lr():
        return float(b.rng.choice(FINETUNE_LRS))

    steps = s.finetune_steps
    root = b.root(component, architecture, Task(kind, universe), steps=s.pretrain_steps)
    children = [b.finetune(root, f"ft-{i}", task(), steps=steps, lr=lr()) for i in range(s.children)]
    grandchildren = [b.finetune(c, f"ft-{i}.{j}", task(), steps=steps, lr=lr())
                     for i, c in enumerate(children) for j in range(s.grandchildren)]
    for i in range(s.lora_fixed):
        b.lora(root, f"lora-f{i}", task(), rank=s.fixed_rank, steps=steps, lr=LORA_LR)
    for i in range(s.lora_varying):
        rank = int(b.rng.choice(s.ranks))
        child = b.lora(root, f"lora-v{i}-r{rank}", task(), rank=rank, steps=steps, lr=LORA_LR)
        rank2 = int(b.rng.choice(s.ranks))
        b.lora(child, f"lora-v{i}-r{rank}.r{rank2}", task(), rank=rank2, steps=steps, lr=LORA_LR)
    pool = children + grandchildren
    for scheme in ("int8-row", "int4-group"):
        for q in b.rng.choice(len(pool), min(s.quantized, len(pool)), replace=False):
            b.quantize(pool[int(q)], scheme)
    for d in range(s.duplicates):
        b.duplicate(root if d == 0 else children[d % len(children)])
    b.snake(children[0], "run", task(), checkpoints=s.snake, every=max(steps // 2, 5), lr=3e-4)
    b.fan(children[1], "sweep", task(), lrs=s.fan_lrs, seeds=s.fan_seeds, steps=steps)
    b.merge(children[:2], "merge-avg", "average", weights=[0.5, 0.5])
    b.merge([children[0], children[2]], "merge-slerp", "slerp", t=float(b.rng.uniform(0.3, 0.7)))
    b.merge(children[:3], "merge-ties", "ties", base=root, weights=[1.0, 1.0, 1.0], density=0.5, lam=1.0)


def build_mixed(size: str, out, seed: int = 0, on_model: Callable[[str], None] | None = None) -> Zoo:
    """The mixed atlas ``size`` (``tiny``, ``small`` or ``large``) written to ``out``."""
    b = ZooBuilder(out, size, seed, on_model)
    for c in range(COMPONENTS[size]):
        mixed_component(b, f"c{c}", ARCH_CYCLE[c % len(ARCH_CYCLE)], universe=seed * 1000 + c, s=SCALES[size])
    return b.finish()


#: VTHR split -> (LoRA rank choices or None for full fine-tuning).
VTHR_SPLITS = {"ft": None, "lora-f": (4,), "lora-v": (1, 2, 4, 8)}


def build_vthr(out, seed: int = 0, on_model: Callable[[str], None] | None = None, *, roots: int = 5,
               children: int = 4, grandchildren: int = 4, pretrain_steps: int = 600,
               finetune_steps: int = 80) -> Zoo:
    """MoTHer's VTHR shape (Sec. 6, App. A) with ``bert-2x32`` roots; see the module docstring."""
    from modelatlas.zoo.tasks import Task, narrow_task  # noqa: PLC0415

    architecture = "bert-2x32"
    b = ZooBuilder(out, "vthr", seed, on_model)
    for r in range(roots):
        universe = seed * 1000 + r
        root = b.root(f"r{r}", architecture, Task("sequence", universe), steps=pretrain_steps)
        for split, ranks in VTHR_SPLITS.items():
            def make(parent: str, name: str, parent_task) -> tuple[str, object]:
                task = narrow_task("sequence", universe, b.rng)
                while parent_task is not None and task.classes == parent_task.classes:
                    task = narrow_task("sequence", universe, b.rng)
                extra = {"split": split}
                if ranks is None:
                    lr = float(b.rng.choice(FINETUNE_LRS))
                    return b.finetune(parent, name, task, steps=finetune_steps, lr=lr, extra=extra), task
                rank = int(b.rng.choice(ranks))
                return b.lora(parent, name, task, rank=rank, steps=finetune_steps, lr=LORA_LR, extra=extra), task

            for i in range(children):
                child, task = make(root, f"{split}-{i}", None)
                for j in range(grandchildren):
                    make(child, f"{split}-{i}.{j}", task)
    splits = {s: (lambda m, s=s: m.pattern == "root" or m.extra.get("split") == s) for s in VTHR_SPLITS}
    return b.finish(splits)


#: Zoo name -> builder ``(out, seed, on_model) -> Zoo``.
RECIPES: dict[str, Callable[..., Zoo]] = {
    "tiny": lambda out, seed=0, on_model=None: build_mixed("tiny", out, seed, on_model),
    "small": lambda out, seed=0, on_model=None: build_mixed("small", out, seed, on_model),
    "large": lambda out, seed=0, on_model=None: build_mixed("large", out, seed, on_model),
    "vthr": build_vthr,
}


def build_cached(name: str, cache_dir, seed: int = 0, size: str | None = None) -> Zoo:
    """The zoo ``name`` (a recipe, or a zoo family of ``size``) for ``seed`` under ``cache_dir``,
    built on first use.

    Meant for test fixtures: parallel workers may race, so each builds into a private folder and
    renames it into place; the loser discards its copy (both copies are identical anyway).
    """
    from modelatlas.zoo.families import FAMILIES, family_builder  # noqa: PLC0415

    cache_dir = Path(cache_dir)
    target = cache_dir / (f"{name}-{size}-seed{seed}" if name in FAMILIES else f"{name}-seed{seed}")
    if not (target / MANIFEST_NAME).is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache_dir))
        if name in FAMILIES:
            family_builder(name)(tmp, seed, size or "small")
        else:
            RECIPES[name](tmp, seed)
        try:
            os.rename(tmp, target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return load_manifest(target)
