"""Architectures of the zoo families (docs/zoo.md, "Zoo families"), beyond the MLP / CNN / BERT of
:mod:`modelatlas.zoo.nets`, each with the tensor names of the library people publish it from:

- ``llama-*``: a decoder-only language model with ``transformers.LlamaForCausalLM``'s names
  (``model.embed_tokens``, ``model.layers.{i}.self_attn.{q,k,v,o}_proj``,
  ``mlp.{gate,up,down}_proj``, RMSNorm ``input_layernorm`` / ``post_attention_layernorm`` /
  ``model.norm``, ``lm_head``; rotary positions, grouped-query attention, no biases);
- ``resnet-bn-*``: a small ResNet with torchvision's names and BatchNorm buffers
  (``running_mean``, ``running_var``, ``num_batches_tracked``);
- ``vit-*``: ``transformers.ViTForImageClassification``'s names (``vit.embeddings.cls_token``,
  ``patch_embeddings.projection``, ``attention.attention.{query,key,value}``, ...);
- ``gru-*`` / ``lstm-*``: ``nn.GRU`` / ``nn.LSTM`` (``rnn.weight_ih_l0`` ...) between an embedding
  and a ``proj`` + ``head``, as a language model (one logit per token and position);
- ``resmlp-*``: a pre-norm residual MLP with timm's ``Mlp`` names (``stem``, ``blocks.{i}.norm``,
  ``blocks.{i}.fc1`` / ``fc2``, ``head``) for tabular inputs.

Every module maps its input to logits: ``(n, classes)`` for classifiers, ``(n, length, vocab)``
for language models. ``head_names`` names the output layer (re-initialised for a fresh head);
``attention_linears`` the attention projections (LoRA's usual placement).

This module imports torch; import it only where torch is required.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


def _rope(x: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (Llama's ``rotate_half`` form) of ``x`` ``(n, heads, length, dim)``."""
    length, dim = x.shape[-2], x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv)
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    half = dim // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


class _LlamaAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, kv_heads: int):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, hidden // heads
        self.q_proj = nn.Linear(hidden, heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(heads * self.head_dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        q = self.q_proj(x).view(n, length, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(n, length, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(n, length, self.kv_heads, self.head_dim).transpose(1, 2)
        repeat = self.heads // self.kv_heads
        k, v = k.repeat_interleave(repeat, 1), v.repeat_interleave(repeat, 1)
        out = F.scaled_dot_product_attention(_rope(q), _rope(k), v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(n, length, -1))


class _LlamaMLP(nn.Module):
    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class _LlamaLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, kv_heads: int, intermediate: int):
        super().__init__()
        self.self_attn = _LlamaAttention(hidden, heads, kv_heads)
        self.mlp = _LlamaMLP(hidden, intermediate)
        self.input_layernorm = nn.RMSNorm(hidden, eps=1e-6)
        self.post_attention_layernorm = nn.RMSNorm(hidden, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaLM(nn.Module):
    """A decoder-only language model whose ``state_dict`` names are ``LlamaForCausalLM``'s."""

    head_names = ("lm_head",)

    def __init__(self, vocab: int, hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int):
        super().__init__()
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(vocab, hidden)
        self.model.layers = nn.ModuleList(_LlamaLayer(hidden, heads, kv_heads, intermediate) for _ in range(layers))
        self.model.norm = nn.RMSNorm(hidden, eps=1e-6)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)
        for module in self.modules():  # Llama's initialisation: N(0, 0.02)
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
        self.attention_linears = tuple(f"model.layers.{i}.self_attn.{p}_proj" for i in range(layers)
                                       for p in ("q", "k", "v", "o"))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x)
        return self.lm_head(self.model.norm(x))


class _BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: two 3×3 convolutions with BatchNorm, optional downsample."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNetBN(nn.Module):
    """A two-stage ResNet for 3×16×16 images with torchvision's names (``conv1``, ``bn1``,
    ``layer{1,2}.0.*``, ``fc``) and BatchNorm running statistics as buffers."""

    head_names = ("fc",)
    attention_linears = ()

    def __init__(self, width: int, classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = nn.Sequential(_BasicBlock(width, width, 1))
        self.layer2 = nn.Sequential(_BasicBlock(width, 2 * width, 2))
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x)))))
        return self.fc(x.mean((2, 3)))


class _ViTSelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, h = x.shape
        split = lambda t: t.view(n, length, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731
        out = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)))
        return out.transpose(1, 2).reshape(n, length, h)


class _ViTLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(hidden, eps=1e-12)
        self.attention = nn.Module()
        self.attention.attention = _ViTSelfAttention(hidden, heads)
        self.attention.output = nn.Module()
        self.attention.output.dense = nn.Linear(hidden, hidden)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(hidden, intermediate)
        self.output = nn.Module()
        self.output.dense = nn.Linear(intermediate, hidden)
        self.layernorm_after = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention.output.dense(self.attention.attention(self.layernorm_before(x)))
        return x + self.output.dense(F.gelu(self.intermediate.dense(self.layernorm_after(x))))


class ViTClassifier(nn.Module):
    """A Vision Transformer for 3×16×16 images with ``ViTForImageClassification``'s names."""

    head_names = ("classifier",)

    def __init__(self, hidden: int, layers: int, heads: int, patch: int, classes: int, side: int = 16):
        super().__init__()
        patches = (side // patch) ** 2
        self.vit = nn.Module()
        self.vit.embeddings = nn.Module()
        self.vit.embeddings.cls_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.vit.embeddings.position_embeddings = nn.Parameter(torch.randn(1, patches + 1, hidden) * 0.02)
        self.vit.embeddings.patch_embeddings = nn.Module()
        self.vit.embeddings.patch_embeddings.projection = nn.Conv2d(3, hidden, patch, patch)
        self.vit.encoder = nn.Module()
        self.vit.encoder.layer = nn.ModuleList(_ViTLayer(hidden, heads, 2 * hidden) for _ in range(layers))
        self.vit.layernorm = nn.LayerNorm(hidden, eps=1e-12)
        self.classifier = nn.Linear(hidden, classes)
        self.attention_linears = tuple(f"vit.encoder.layer.{i}.attention.attention.{k}" for i in range(layers)
                                       for k in ("query", "key", "value"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.vit.embeddings
        tokens = e.patch_embeddings.projection(x).flatten(2).transpose(1, 2)
        x = torch.cat([e.cls_token.expand(len(tokens), -1, -1), tokens], 1) + e.position_embeddings
        for layer in self.vit.encoder.layer:
            x = layer(x)
        return self.classifier(self.vit.layernorm(x)[:, 0])


class RecurrentLM(nn.Module):
    """Embedding → ``nn.GRU`` / ``nn.LSTM`` (``rnn.*``) → ``proj`` (tanh) → ``head``: one logit per
    vocabulary token at each position."""

    head_names = ("head",)
    attention_linears = ()

    def __init__(self, cell: str, vocab: int, embed: int, hidden: int, layers: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(embed, hidden, num_layers=layers, batch_first=True)
        self.proj = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embedding(ids))
        return self.head(torch.tanh(self.proj(out)))


class _ResBlock(nn.Module):
    def __init__(self, width: int, ratio: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, ratio * width)
        self.fc2 = nn.Linear(ratio * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


class ResMLP(nn.Module):
    """A pre-norm residual MLP for tabular vectors: ``stem``, ``blocks.{i}.{norm,fc1,fc2}``, ``head``."""

    head_names = ("head",)
    attention_linears = ()

    def __init__(self, features: int, width: int, depth: int, ratio: int, classes: int):
        super().__init__()
        self.stem = nn.Linear(features, width)
        self.blocks = nn.ModuleList(_ResBlock(width, ratio) for _ in range(depth))
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


#: Family architectures: name -> constructor. Names are what manifests record; one name, one shape set.
FAMILY_ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "llama-2x32-gqa": lambda: LlamaLM(vocab=48, hidden=32, layers=2, heads=4, kv_heads=2, intermediate=88),
    "llama-2x48": lambda: LlamaLM(vocab=48, hidden=48, layers=2, heads=4, kv_heads=4, intermediate=128),
    "llama-3x32": lambda: LlamaLM(vocab=48, hidden=32, layers=3, heads=2, kv_heads=2, intermediate=64),
    "resnet-bn-8": lambda: ResNetBN(8, classes=10),
    "resnet-bn-12": lambda: ResNetBN(12, classes=10),
    "vit-2x32-p4": lambda: ViTClassifier(32, 2, 2, 4, classes=10),
    "vit-3x24-p4": lambda: ViTClassifier(24, 3, 2, 4, classes=10),
    "gru-1x48": lambda: RecurrentLM("gru", vocab=48, embed=24, hidden=48, layers=1),
    "gru-2x32": lambda: RecurrentLM("gru", vocab=48, embed=24, hidden=32, layers=2),
    "lstm-1x40": lambda: RecurrentLM("lstm", vocab=48, embed=24, hidden=40, layers=1),
    "resmlp-3x64": lambda: ResMLP(24, 64, 3, 2, classes=10),
    "resmlp-2x128": lambda: ResMLP(24, 128, 2, 2, classes=10),
    "resmlp-4x48": lambda: ResMLP(24, 48, 4, 3, classes=10),
}


def linear_names(module: nn.Module) -> tuple[str, ...]:
    """Dotted names of every ``nn.Linear`` of ``module``, the output head included (LoRA "all linear")."""
    return tuple(name for name, m in module.named_modules() if isinstance(m, nn.Linear))


def init_head(module: nn.Module, seed: int) -> None:
    """Re-initialise the output head (a fresh head for a new task), as ``nn.Linear`` does."""
    gen = torch.Generator().manual_seed(seed)
    for name in module.head_names:
        head = module.get_submodule(name)
        bound = 1.0 / math.sqrt(head.in_features)
        with torch.no_grad():
            head.weight.uniform_(-bound, bound, generator=gen)
            if head.bias is not None:
                head.bias.uniform_(-bound, bound, generator=gen)
