"""Random draws shared by the zoo families: each family passes its own ranges (docs/zoo.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from modelatlas.zoo.optimise import Recipe


@dataclass(frozen=True)
class Size:
    """How big a family zoo is: components, and a factor on every training budget."""

    components: int
    budget: float


#: ``--size`` of the families: ``tiny`` for tests (well under a minute on one core), ``small`` for the benchmark.
SIZES = {"tiny": Size(components=2, budget=0.15), "small": Size(components=6, budget=1.0)}


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A draw whose logarithm is uniform on ``[log lo, log hi]``."""
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def pick(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    """A key of ``weights`` drawn with probability proportional to its weight."""
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def steps(rng: np.random.Generator, lo: int, hi: int, size: Size) -> int:
    """A log-uniform budget in ``[lo, hi]`` steps, scaled by the size (at least 4 steps)."""
    return max(4, round(log_uniform(rng, lo, hi) * size.budget))


def recipe(rng: np.random.Generator, *, optimizers: Mapping[str, float], lr: Mapping[str, tuple[float, float]],
           budget: tuple[int, int], size: Size, schedules: Mapping[str, float],
           batches: Sequence[int] = (16, 32, 64), weight_decay: tuple[float, float] = (1e-3, 0.1),
           clip: float = 0.0) -> Recipe:
    """A training recipe: optimiser, its log-uniform learning rate, schedule, budget, batch,
    weight decay (AdamW always, SGD half the time), gradient clipping with probability ``clip``."""
    from modelatlas.zoo.optimise import Recipe  # noqa: PLC0415 - torch is optional
    opt = pick(rng, optimizers)
    schedule = pick(rng, schedules)
    decay = log_uniform(rng, *weight_decay) if opt == "adamw" or (opt == "sgd" and rng.random() < 0.5) else 0.0
    return Recipe(optimizer=opt, lr=log_uniform(rng, *lr[opt]), steps=steps(rng, *budget, size), schedule=schedule,
                  batch=int(rng.choice(batches)), warmup=float(rng.uniform(0.05, 0.3)) if "warmup" in schedule else 0.0,
                  momentum=float(rng.uniform(0.8, 0.95)), weight_decay=decay,
                  clip=float(rng.choice([0.5, 1.0])) if rng.random() < clip else None)


def sample(rng: np.random.Generator, items: Sequence[str], k: int) -> list[str]:
    """Up to ``k`` distinct items of ``items``, in the order drawn."""
    return [items[int(i)] for i in rng.choice(len(items), min(k, len(items)), replace=False)]


def dtype(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    """A storage dtype (``fp32``, ``fp16``, ``bf16``)."""
    return pick(rng, weights)
