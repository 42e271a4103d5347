"""Real training on the CPU: pre-training from random initialisation, full fine-tuning, LoRA.

State dicts travel as ``{name: numpy float32 array}``; modules are rebuilt for each run so that
runs are independent and deterministic for their seed (single-threaded torch).

References
----------
Hu et al., "LoRA: Low-rank adaptation of large language models", ICLR 2022, Sec. 4.1
(``W + (alpha / r) B A`` with ``A`` Kaiming-uniform, ``B`` zero; the base weights frozen).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from modelatlas.zoo.nets import ARCHITECTURES
from modelatlas.zoo.tasks import Task

State = dict[str, np.ndarray]


def build(architecture: str, state: State | None = None, seed: int = 0) -> nn.Module:
    """A fresh module of ``architecture``: random initialisation from ``seed``, then ``state`` loaded.

    A module may declare ``head_keys`` (a task head that is not part of the published model, so
    it starts fresh for each task) and ``passthrough`` (tensors of the published file that are
    not parameters, e.g. BERT's ``embeddings.position_ids``, kept as they are).
    """
    torch.manual_seed(seed)
    module = ARCHITECTURES[architecture][1]()
    if state is not None:
        skip = set(getattr(module, "passthrough", ()))
        missing, unexpected = module.load_state_dict(
            {k: torch.from_numpy(np.array(v)) for k, v in state.items() if k not in skip}, strict=False)
        missing = set(missing) - set(getattr(module, "head_keys", ()))
        if missing or unexpected:
            raise ValueError(f"{architecture}: state does not fit (missing {sorted(missing)[:3]}, "
                             f"unexpected {sorted(unexpected)[:3]})")
        module.passthrough_state = {k: state[k] for k in skip if k in state}
    return module


def state_of(module: nn.Module) -> State:
    """The published tensors of ``module`` as numpy arrays (a copy): parameters and buffers
    (float32) without the task head, plus the pass-through tensors it was loaded with."""
    head = set(getattr(module, "head_keys", ()))
    state = {k: v.detach().cpu().numpy().astype(np.float32, copy=True)
             for k, v in module.state_dict().items() if k not in head}
    state.update(getattr(module, "passthrough_state", {}))
    return state


@dataclass(frozen=True)
class RunConfig:
    """How one training run goes: task, optimiser steps, learning rate, batch size, seed."""

    task: Task
    steps: int
    lr: float
    seed: int
    batch: int = 64
    weight_decay: float = 0.0

    def describe(self) -> dict:
        return {"task": self.task.name, "steps": self.steps, "lr": self.lr, "seed": self.seed,
                "batch": self.batch, "weight_decay": self.weight_decay}


def run(module: nn.Module, cfg: RunConfig, params: Sequence[nn.Parameter] | None = None,
        checkpoints: Sequence[int] = (), on_checkpoint: Callable[[int], None] | None = None) -> float:
    """Train ``module`` (or only ``params``) with AdamW on fresh batches of ``cfg.task``.

    ``on_checkpoint(step)`` is called after each step listed in ``checkpoints``. Returns the
    accuracy on 512 held-out examples of the task.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, 11])
    params = list(module.parameters()) if params is None else list(params)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    wanted = set(checkpoints)
    module.train()
    for step in range(1, cfg.steps + 1):
        x, y = cfg.task.sample(cfg.batch, rng)
        loss = F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in wanted and on_checkpoint is not None:
            on_checkpoint(step)
    return evaluate(module, cfg.task, np.random.default_rng([cfg.seed, 12]))


@torch.no_grad()
def evaluate(module: nn.Module, task: Task, rng: np.random.Generator, n: int = 512) -> float:
    """Accuracy of ``module`` on ``n`` fresh examples of ``task``."""
    module.eval()
    x, y = task.sample(n, rng)
    acc = (module(torch.from_numpy(x)).argmax(1).numpy() == y).mean()
    module.train()
    return float(acc)


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``(alpha / r) B A`` (Hu et al., Sec. 4.1)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base, self.rank, self.scaling = base, rank, alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as PEFT initialises A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling


def swap_submodule(module: nn.Module, dotted: str, new: nn.Module) -> nn.Module:
    """Put ``new`` in place of the submodule at ``dotted``; return the old one."""
    *path, last = dotted.split(".")
    owner = module.get_submodule(".".join(path)) if path else module
    old = getattr(owner, last)
    setattr(owner, last, new)
    return old


def lora_finetune(module: nn.Module, cfg: RunConfig, targets: Sequence[str], rank: int,
                  alpha: float) -> tuple[State, float]:
    """LoRA fine-tuning of ``targets`` (all other weights frozen).

    Returns the adapter — ``{"<target>.lora_A.weight": (r, in), "<target>.lora_B.weight": (out, r)}``
    — and the accuracy; ``module`` is left unchanged (its original layers are put back).
    """
    for p in module.parameters():
        p.requires_grad_(False)
    wrapped = {t: LoRALinear(module.get_submodule(t), rank, alpha) for t in targets}
    for t, w in wrapped.items():
        swap_submodule(module, t, w)
    try:
        acc = run(module, cfg, [p for w in wrapped.values() for p in (w.lora_A, w.lora_B)])
    finally:
        for t, w in wrapped.items():
            swap_submodule(module, t, w.base)
        for p in module.parameters():
            p.requires_grad_(True)
    adapter: State = {}
    for t, w in wrapped.items():
        adapter[f"{t}.lora_A.weight"] = w.lora_A.detach().numpy().astype(np.float32, copy=True)
        adapter[f"{t}.lora_B.weight"] = w.lora_B.detach().numpy().astype(np.float32, copy=True)
    return adapter, acc


def merge_lora(state: State, adapter: State, alpha: float) -> State:
    """``state`` with each adapter folded in: ``W + (alpha / r) B A`` (float64 product, float32 result)."""
    merged = dict(state)
    for key, a in adapter.items():
        if not key.endswith(".lora_A.weight"):
            continue
        target = key[: -len(".lora_A.weight")]
        b = adapter[f"{target}.lora_B.weight"]
        delta = (alpha / a.shape[0]) * (b.astype(np.float64) @ a.astype(np.float64))
        merged[f"{target}.weight"] = (state[f"{target}.weight"] + delta).astype(np.float32)
    return merged
