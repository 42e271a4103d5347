"""The small networks the zoos train, with Hugging Face style parameter names.

Parameter names follow the conventions the charting methods look for: dense layers end in
``.dense``, attention projections are BERT's ``attention.self.query/key/value`` and
``attention.output.dense`` (so the MoTHer layer kinds of Section 6.4 — query, key, value, dense —
apply). :class:`BertModel` reproduces the state-dict layout of ``transformers.BertModel`` exactly,
so that the real all-MiniLM-L6-v2 safetensors load into it (see :mod:`modelatlas.zoo.minilm`).

This module imports torch; import it only where torch is required.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

#: Number of output logits of every zoo classifier (pre-training uses all, narrow tasks a few).
NUM_CLASSES = 16


class MLP(nn.Module):
    """A multi-layer perceptron: ``encoder.layer.{i}.dense`` blocks with GELU, then ``classifier``."""

    def __init__(self, in_features: int = 32, width: int = 64, depth: int = 3, num_classes: int = NUM_CLASSES):
        super().__init__()
        dims = [in_features] + [width] * depth
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList()
        for a, b in zip(dims[:-1], dims[1:]):
            block = nn.Module()
            block.dense = nn.Linear(a, b)
            self.encoder.layer.append(block)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.encoder.layer:
            x = F.gelu(block.dense(x))
        return self.classifier(x)


class CNN(nn.Module):
    """A small convolutional classifier for 1×16×16 images: two ``features.conv{i}`` layers, then dense."""

    def __init__(self, channels: tuple[int, int] = (8, 16), hidden: int = 64, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.features = nn.Module()
        self.features.conv1 = nn.Conv2d(1, channels[0], 3, padding=1)
        self.features.conv2 = nn.Conv2d(channels[0], channels[1], 3, padding=1)
        self.classifier = nn.Module()
        self.classifier.dense = nn.Linear(channels[1] * 16, hidden)
        self.classifier.out_proj = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.features.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.features.conv2(x)), 2)
        x = F.gelu(self.classifier.dense(x.flatten(1)))
        return self.classifier.out_proj(x)


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face ``BertConfig`` that define the weights."""

    vocab_size: int = 32
    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 64
    max_position_embeddings: int = 16
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-12

    def as_dict(self) -> dict:
        return asdict(self)


class _Dense(nn.Module):
    """``dense`` (+ optional ``LayerNorm``) as in BERT's output blocks."""

    def __init__(self, a: int, b: int, eps: float | None):
        super().__init__()
        self.dense = nn.Linear(a, b)
        if eps is not None:
            self.LayerNorm = nn.LayerNorm(b, eps=eps)


class _SelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        h = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, h = x.shape
        split = lambda t: t.view(b, n, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(h // self.heads)
        if mask is not None:
            scores = scores + (1.0 - mask[:, None, None, :].to(scores.dtype)) * torch.finfo(scores.dtype).min
        return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, h)


class _Layer(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = nn.Module()
        self.attention.self = _SelfAttention(cfg)
        self.attention.output = _Dense(cfg.hidden_size, cfg.hidden_size, cfg.layer_norm_eps)
        self.intermediate = _Dense(cfg.hidden_size, cfg.intermediate_size, None)
        self.output = _Dense(cfg.intermediate_size, cfg.hidden_size, cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        a = self.attention.output
        x = a.LayerNorm(x + a.dense(self.attention.self(x, mask)))
        return self.output.LayerNorm(x + self.output.dense(F.gelu(self.intermediate.dense(x))))


class BertModel(nn.Module):
    """A BERT encoder whose ``state_dict`` names and shapes equal ``transformers.BertModel``'s.

    ``forward`` returns the last hidden states; :meth:`mean_pool` gives sentence-transformers'
    mean pooling and :meth:`cls_pool` BERT's tanh pooler over the first token.
    """

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.config = cfg
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.embeddings.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.embeddings.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.embeddings.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))
        self.pooler = _Dense(cfg.hidden_size, cfg.hidden_size, None)
        for module in self.modules():  # BERT's initialisation: N(0, 0.02), zero biases
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if isinstance(module, nn.Linear):
                    nn.init.zeros_(module.bias)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        e = self.embeddings
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = e.word_embeddings(ids) + e.position_embeddings(pos)[None] + e.token_type_embeddings.weight[0]
        x = e.LayerNorm(x)
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return x

    @staticmethod
    def mean_pool(hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return hidden.mean(1)
        m = mask[..., None].to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)

    def cls_pool(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pooler.dense(hidden[:, 0]))


class BertClassifier(BertModel):
    """:class:`BertModel` with a ``classifier`` head on the pooled first token (no name prefix)."""

    def __init__(self, cfg: BertConfig, num_classes: int = NUM_CLASSES):
        super().__init__(cfg)
        self.classifier = nn.Linear(cfg.hidden_size, num_classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.cls_pool(super().forward(ids, mask)))


#: Zoo architectures: name -> (input kind, constructor). Names are what manifests record.
ARCHITECTURES = {
    "mlp-3x64": ("vector", lambda: MLP(32, 64, 3)),
    "mlp-4x96": ("vector", lambda: MLP(32, 96, 4)),
    "cnn-8-16": ("image", lambda: CNN((8, 16), 64)),
    "bert-2x32": ("sequence", lambda: BertClassifier(BertConfig())),
}

#: LoRA target layers per architecture: square or projection matrices, as PEFT would choose.
LORA_TARGETS = {
    "mlp-3x64": ("encoder.layer.1.dense", "encoder.layer.2.dense"),
    "mlp-4x96": ("encoder.layer.1.dense", "encoder.layer.2.dense", "encoder.layer.3.dense"),
    "cnn-8-16": ("classifier.dense",),
    "bert-2x32": tuple(f"encoder.layer.{i}.attention.self.{k}" for i in range(2) for k in ("query", "value")),
}


def register_architecture(name: str, kind: str, constructor, lora_targets: tuple[str, ...]) -> None:
    """Add an architecture (e.g. one read from a real checkpoint's config) to the registries."""
    ARCHITECTURES[name] = (kind, constructor)
    LORA_TARGETS[name] = tuple(lora_targets)
