"""A zoo from a generator outside the package: GPT-2-style decoders, written as a third party would.

Usage (from the repository root; needs the ``torch`` extra)::

    OMP_NUM_THREADS=1 python benchmarks/heldout_zoo.py OUT_DIR SEED      # ~2 min on one core
    modelatlas bench chart --zoo OUT_DIR --seeds 2 --method auto --method atlas --method learned --no-ablations

Why it exists (docs/BENCHMARKS.md, "A zoo from outside the package"): every zoo family of
``modelatlas zoo build`` shares the package's machinery, so a habit of that machinery can pass
for a property of lineage. This script deliberately reuses nothing of ``modelatlas``: its own
model (GPT-2 tensor names and ``Conv1D`` layout, ``in x out``; tied head), its own task
(character language models of random Markov chains), its own LoRA (merged in float64 into the
float32 weights) and its own manifest, which records only what DESIGN.md's minimum asks for
(``id``, ``path``, ``parents``, ``pattern``, ``component``, ``created_at``, plus ``dtype``).
It was written and run in the fifth session *after* the session's charting choices, and no
threshold was read off it.

Per component: a root pretrained 400 steps (float32, or bfloat16 / float16 for the second), three
fine-tunes (AdamW, Adam or SGD with momentum, learning rate 10⁻⁴–10⁻²·⁵, 30–300 steps, stored
float32, bfloat16 or float16), a fine-tune of a fine-tune, LoRA of the root and of a fine-tune
(rank 2–16 on ``attn.c_attn`` or every ``Conv1D``), a run saved every 100 steps (a snake), a
learning-rate sweep of three from one fine-tune with the same data order (a fan) and an
undocumented uniform merge of two fine-tunes. Children are made from their parents' float32
training weights, not from the stored files — a release in bfloat16 and a child of its
float32 master is one way authors work. Upload times follow build order with exponential gaps;
15% are unknown.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timedelta, timezone

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

V, D, L, T = 96, 64, 2, 32  # vocabulary, width, blocks, context
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class Conv1D(nn.Module):
    """GPT-2's linear layer: weight ``in x out``."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * 0.02)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(D)
        self.attn = nn.Module()
        self.attn.c_attn, self.attn.c_proj = Conv1D(D, 3 * D), Conv1D(D, D)
        self.ln_2 = nn.LayerNorm(D)
        self.mlp = nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = Conv1D(D, 4 * D), Conv1D(4 * D, D)

    def forward(self, x):
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(D, -1)
        b, n, _ = q.shape
        q, k, v = (t.view(b, n, 4, D // 4).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, n, D)
        x = x + self.attn.c_proj(a)
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte, self.transformer.wpe = nn.Embedding(V, D), nn.Embedding(T, D)
        self.transformer.h = nn.ModuleList(Block() for _ in range(L))
        self.transformer.ln_f = nn.LayerNorm(D)
        nn.init.normal_(self.transformer.wte.weight, std=0.02)
        nn.init.normal_(self.transformer.wpe.weight, std=0.01)

    def forward(self, idx):
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.shape[1]))
        for block in self.transformer.h:
            x = block(x)
        return self.transformer.ln_f(x) @ self.transformer.wte.weight.T


def language(seed):
    """A random Markov chain over the vocabulary (sparse transitions)."""
    return torch.tensor(np.random.default_rng(seed).dirichlet(np.full(V, 0.1), V), dtype=torch.float32)


def batch(chain, n=32):
    seq = [torch.multinomial(torch.full((V,), 1.0 / V), n, replacement=True)[:, None]]
    for _ in range(T):
        seq.append(torch.multinomial(chain[seq[-1][:, 0]], 1))
    s = torch.cat(seq, 1)
    return s[:, :-1], s[:, 1:]


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def load(weights):
    model = GPT()
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    return model


def train(model, chain, steps, lr, opt="adamw", wd=0.0, params=None, save_every=None):
    params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    optimiser = {"adamw": lambda: torch.optim.AdamW(params, lr=lr, weight_decay=wd),
                 "sgd": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9),
                 "adam": lambda: torch.optim.Adam(params, lr=lr)}[opt]()
    saves = []
    for t in range(steps):
        x, y = batch(chain)
        loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if save_every and (t + 1) % save_every == 0:
            saves.append(state(model))
    return saves


def lora_merged(weights, chain, rank, steps, lr, targets):
    """Train a LoRA (alpha = 2 rank) on ``targets`` and return the merged weights."""
    model = load(weights)
    for p in model.parameters():
        p.requires_grad_(False)
    adapters = []
    for name, mod in model.named_modules():
        if isinstance(mod, Conv1D) and any(name.endswith(t) for t in targets):
            a = nn.Parameter(torch.randn(mod.weight.shape[0], rank) * 0.01)
            b = nn.Parameter(torch.zeros(rank, mod.weight.shape[1]))
            alpha = 2 * rank
            mod.forward = (lambda w0, a, b, mod: lambda x: x @ (w0 + alpha / rank * a @ b) + mod.bias)(
                mod.weight, a, b, mod)
            adapters.append((name, mod, a, b, alpha))
    train(model, chain, steps, lr, params=[p for _, _, a, b, _ in adapters for p in (a, b)])
    out = state(model)
    for name, mod, a, b, alpha in adapters:
        out[name + ".weight"] = (mod.weight.double() + alpha / rank * (a.double() @ b.double())).float()
    return out


def build(out: str, seed: int) -> int:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    os.makedirs(os.path.join(out, "models"), exist_ok=True)
    models: list[dict] = []
    clock = [datetime(2025, 3, 1, tzinfo=timezone.utc)]

    def save(name, weights, parents, pattern, comp, dtype="fp32"):
        path = f"models/{name.replace('/', '__')}.safetensors"
        save_file({k: v.to(DTYPES[dtype]).contiguous() for k, v in weights.items()}, os.path.join(out, path))
        clock[0] += timedelta(hours=float(rng.exponential(20)) + 0.2)
        models.append({"id": name, "path": path, "parents": parents, "pattern": pattern, "component": f"c{comp}",
                       "created_at": clock[0].strftime("%Y-%m-%dT%H:%M:%SZ"), "dtype": dtype})
        return name

    chains = iter([language(seed * 100 + i) for i in range(30)])
    for comp in range(2):
        root = GPT()
        train(root, next(chains), 400, 3e-3)
        root_dtype = "fp32" if comp == 0 else str(rng.choice(["fp16", "bf16"]))
        r = save(f"c{comp}/base", state(root), [], "root", comp, root_dtype)
        base = {k: v.to(DTYPES[root_dtype]).float() for k, v in state(root).items()}
        tunes = []
        for j in range(3):
            m = load(base)
            lr, steps = float(10 ** rng.uniform(-4, -2.5)), int(rng.integers(30, 300))
            train(m, next(chains), steps, lr, opt=str(rng.choice(["adamw", "adam", "sgd"])), wd=float(rng.uniform(0, 0.1)))
            dtype = str(rng.choice(["fp32", "fp16", "bf16"], p=[0.6, 0.2, 0.2]))
            tunes.append((save(f"c{comp}/ft{j}", state(m), [r], "finetune", comp, dtype), state(m)))
        m = load(tunes[0][1])
        train(m, next(chains), int(rng.integers(50, 300)), float(10 ** rng.uniform(-4, -3)))
        save(f"c{comp}/ft0-ft", state(m), [tunes[0][0]], "finetune", comp)
        for j, (parent, weights) in enumerate([(r, base), tunes[1]]):
            rank = int(rng.choice([2, 4, 8, 16]))
            targets = (["attn.c_attn"] if rng.random() < 0.5
                       else ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"])
            merged = lora_merged(weights, next(chains), rank, int(rng.integers(50, 300)),
                                 float(10 ** rng.uniform(-3.5, -2)), targets)
            save(f"c{comp}/lora{j}", merged, [parent], "lora", comp)
        m = load(base)
        previous = r
        for k, weights in enumerate(train(m, next(chains), 300, 1e-3, save_every=100)):
            previous = save(f"c{comp}/run-step{(k + 1) * 100}", weights, [previous], "snake", comp)
        chain = next(chains)
        for lr in (1e-4, 3e-4, 1e-3):  # same data order for every member
            torch.manual_seed(seed * 7 + comp)
            m = load(tunes[2][1])
            train(m, chain, 150, lr)
            save(f"c{comp}/sweep-lr{lr:g}", state(m), [tunes[2][0]], "fan", comp)
        a, b = tunes[0][1], tunes[1][1]
        save(f"c{comp}/merge", {k: (a[k] + b[k]) / 2 for k in a}, [tunes[0][0], tunes[1][0]], "merge", comp)
    for model in models:
        if rng.random() < 0.15:
            model["created_at"] = None
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump({"models": models}, fh, indent=1)
    return len(models)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="an empty folder for the zoo")
    ap.add_argument("seed", type=int)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{build(args.out, args.seed)} models in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
