"""Training runs of the zoo families: the optimiser, schedule and budget drawn per model.

Unlike :func:`modelatlas.zoo.train.run` (AdamW, constant rate, every parameter), a
:class:`Recipe` names the optimiser (SGD with momentum, Adam, AdamW with weight decay), the
schedule (constant, cosine, linear warm-up then cosine or constant, step decay), the budget, the
batch and gradient clipping, and :func:`train` may train only some parameters (partial
fine-tuning: the rest stay bit-identical, BatchNorm statistics of frozen parts included).

The objective comes from the task (:mod:`modelatlas.zoo.family_tasks`): ``ce`` (classification),
``lm`` (next token at every position) or ``label-token`` (the label as a token at the last
position).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup-cosine", "warmup-constant", "step")


@dataclass(frozen=True)
class Recipe:
    """How one run trains (recorded in the manifest as ``recipe``)."""

    optimizer: str
    lr: float
    steps: int
    batch: int = 32
    schedule: str = "constant"
    warmup: float = 0.0  # fraction of the steps
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    clip: float | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS or self.schedule not in SCHEDULES:
            raise ValueError(f"unknown optimiser {self.optimizer!r} or schedule {self.schedule!r}")

    def describe(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        if self.optimizer != "sgd":
            del out["momentum"]
        return out


def lr_factor(recipe: Recipe, step: int) -> float:
    """Multiplier of the base rate at ``step`` (1-based)."""
    warm = max(int(recipe.warmup * recipe.steps), 0)
    if recipe.schedule.startswith("warmup") and step <= warm:
        return step / max(warm, 1)
    if recipe.schedule in ("cosine", "warmup-cosine"):
        start = warm if recipe.schedule == "warmup-cosine" else 0
        progress = (step - start) / max(recipe.steps - start, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    if recipe.schedule == "step":
        return 0.1 ** int(3 * (step - 1) / max(recipe.steps, 1))  # ÷10 at one and two thirds
    return 1.0


def _optimizer(recipe: Recipe, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


def loss_of(module: nn.Module, objective: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The task's loss on one batch."""
    out = module(x)
    if objective == "ce":
        return F.cross_entropy(out, y)
    if objective == "lm":
        return F.cross_entropy(out[:, :-1].reshape(-1, out.shape[-1]), x[:, 1:].reshape(-1))
    if objective == "label-token":
        return F.cross_entropy(out[:, -1], y)
    raise ValueError(f"unknown objective {objective!r}")


@torch.no_grad()
def score(module: nn.Module, task, rng: np.random.Generator, n: int = 256) -> float:
    """Held-out accuracy: of the class (``ce``, ``label-token``) or of the next token (``lm``)."""
    was = module.training
    module.eval()
    x, y = (torch.from_numpy(a) for a in task.sample(n, rng))
    out = module(x)
    if task.objective == "lm":
        acc = (out[:, :-1].argmax(-1) == x[:, 1:]).float().mean()
    else:
        acc = ((out[:, -1] if task.objective == "label-token" else out).argmax(-1) == y).float().mean()
    module.train(was)
    return float(acc)


def train(module: nn.Module, task, recipe: Recipe, seed: int, *, trainable: Sequence[str] | None = None,
          params: Sequence[nn.Parameter] | None = None, checkpoints: Sequence[int] = (),
          on_checkpoint: Callable[[int], None] | None = None) -> float:
    """Train ``module`` on fresh batches of ``task`` following ``recipe``; return held-out accuracy.

    Parameters
    ----------
    trainable:
        Name prefixes of the parameters that train (partial fine-tuning); the others get no
        gradient and modules outside them stay in eval mode (BatchNorm statistics unchanged).
        ``None``: every parameter.
    params:
        Explicit parameters to train instead (LoRA factors); the whole module is then frozen.
    checkpoints, on_checkpoint:
        ``on_checkpoint(step)`` is called after each listed step (snakes).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 17])
    norms = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if params is not None:  # adapters: the base, its BatchNorm statistics included, stays as it is
        chosen, frozen_modules = list(params), [m for _, m in norms]
    else:
        prefixes = tuple(p + "." for p in trainable) if trainable is not None else None
        chosen = [p for n, p in module.named_parameters() if prefixes is None or n.startswith(prefixes)]
        frozen_modules = [] if prefixes is None else [m for n, m in norms if not (n + ".").startswith(prefixes)]
    for p in module.parameters():
        p.requires_grad_(False)
    for p in chosen:
        p.requires_grad_(True)
    opt = _optimizer(recipe, chosen)
    wanted = set(checkpoints)
    module.train()
    for m in frozen_modules:
        m.eval()
    for step in range(1, recipe.steps + 1):
        for group in opt.param_groups:
            group["lr"] = recipe.lr * lr_factor(recipe, step)
        x, y = task.sample(recipe.batch, rng)
        loss = loss_of(module, task.objective, torch.from_numpy(x), torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.clip is not None:
            nn.utils.clip_grad_norm_(chosen, recipe.clip)
        opt.step()
        if step in wanted and on_checkpoint is not None:
            on_checkpoint(step)
    for p in module.parameters():
        p.requires_grad_(True)
    return score(module, task, np.random.default_rng([seed, 18]))
