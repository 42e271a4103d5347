"""Procedural data of the zoo families (docs/zoo.md, "Zoo families"): no downloads, every sample
determined by seeds, and independent of the original generator's tasks (:mod:`modelatlas.zoo.tasks`).

- :class:`TextTask` — a synthetic "text": token sequences over :data:`VOCAB` tokens from a
  first-order Markov chain whose transition logits are a universe's shared "grammar" plus a
  domain's own "style" (``logits = grammar + style_d`` scaled by ``1/temperature``). Pre-training
  mixes many domains; fine-tuning takes one (or a few). Objectives: ``lm`` (next-token prediction
  at every position) or ``label-token`` (the domain among ``k``, predicted as label token
  ``0..k-1`` at the last position by the same vocabulary head — classification without a new head).
- :class:`ImageTask` — 3×16×16 images: per universe, ten class templates (sums of random
  oriented colour gratings), drawn with random translation, contrast and noise; a task takes some
  classes and a colour / contrast shift.
- :class:`TabularTask` — 24-feature vectors: per universe a random two-layer teacher network
  labels standard-normal inputs; a task takes some classes and a random affine feature shift.

Every task has ``objective`` (``ce``, ``lm`` or ``label-token``), ``name`` and
``sample(n, rng) -> (x, y)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

VOCAB = 48
TEXT_LENGTH = 24
IMAGE_SIDE = 16
FEATURES = 24
CLASSES = 10


def _rng(*parts: int) -> np.random.Generator:
    return np.random.default_rng([int(p) for p in parts])


@lru_cache(maxsize=256)
def _transitions(universe: int, domains: tuple[int, ...], temperature: float) -> np.ndarray:
    """Cumulative transition probabilities ``(len(domains), VOCAB, VOCAB)``."""
    grammar = _rng(universe, 31).normal(0, 2.0, (VOCAB, VOCAB))
    out = []
    for d in domains:
        style = _rng(universe, 32, d).normal(0, 2.5, (VOCAB, VOCAB))
        logits = (grammar + style) / temperature
        p = np.exp(logits - logits.max(-1, keepdims=True))
        out.append(np.cumsum(p / p.sum(-1, keepdims=True), -1))
    return np.stack(out)


@dataclass(frozen=True)
class TextTask:
    """Synthetic text from domains of a universe (see the module docstring)."""

    universe: int
    domains: tuple[int, ...]
    objective: str = "lm"  # lm | label-token
    temperature: float = 1.0

    @property
    def name(self) -> str:
        return (f"text-u{self.universe}-d{'.'.join(map(str, self.domains))}-t{self.temperature:g}"
                f"-{self.objective}")

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        cum = _transitions(self.universe, self.domains, self.temperature)
        y = rng.integers(0, len(self.domains), n)
        tokens = np.empty((n, TEXT_LENGTH), np.int64)
        tokens[:, 0] = rng.integers(0, VOCAB, n)
        for i in range(1, TEXT_LENGTH):
            row = cum[y, tokens[:, i - 1]]
            tokens[:, i] = np.minimum((row < rng.random((n, 1))).sum(1), VOCAB - 1)
        return tokens, y.astype(np.int64)


@lru_cache(maxsize=64)
def _templates(universe: int) -> np.ndarray:
    r = _rng(universe, 41)
    side = np.arange(IMAGE_SIDE) / IMAGE_SIDE
    yy, xx = np.meshgrid(side, side, indexing="ij")
    out = np.zeros((CLASSES, 3, IMAGE_SIDE, IMAGE_SIDE))
    for c in range(CLASSES):
        for _ in range(3):
            theta, freq, phase = r.uniform(0, np.pi), r.uniform(0.5, 3.0), r.uniform(0, 2 * np.pi)
            colour = r.normal(0, 1, 3)
            wave = np.cos(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
            out[c] += colour[:, None, None] * wave
    return out / out.std(axis=(1, 2, 3), keepdims=True)


@dataclass(frozen=True)
class _ClassTask:
    """A classification task: some classes of a universe, maybe under a shift of its inputs."""

    universe: int
    classes: tuple[int, ...] = tuple(range(CLASSES))
    shift: int = 0
    objective: str = "ce"
    kind = ""  # the name's prefix, set by each task

    @property
    def name(self) -> str:
        return f"{self.kind}-u{self.universe}-c{'.'.join(map(str, self.classes))}-s{self.shift}"


@dataclass(frozen=True)
class ImageTask(_ClassTask):
    """Images of some template classes of a universe (see the module docstring)."""

    kind = "image"

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, len(self.classes), n)
        x = _templates(self.universe)[np.asarray(self.classes)[y]]
        gain, noise = np.ones(3), 0.8
        if self.shift:
            s = _rng(self.shift, 42)
            gain, noise = s.uniform(0.3, 1.5, 3), s.uniform(0.4, 1.4)
        dx, dy = rng.integers(-3, 4, 2)
        x = np.roll(x, (int(dy), int(dx)), axis=(2, 3)) * gain[None, :, None, None]
        x = x * rng.uniform(0.5, 1.5, (n, 1, 1, 1)) + rng.normal(0, noise, x.shape)
        return x.astype(np.float32), y.astype(np.int64)


@lru_cache(maxsize=64)
def _teacher(universe: int) -> tuple[np.ndarray, np.ndarray]:
    r = _rng(universe, 51)
    return r.normal(0, 1 / np.sqrt(FEATURES), (FEATURES, 32)) * 2.0, r.normal(0, 1 / np.sqrt(32), (32, CLASSES))


@dataclass(frozen=True)
class TabularTask(_ClassTask):
    """Teacher-labelled vectors of a universe (see the module docstring)."""

    kind = "tabular"

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        w1, w2 = _teacher(self.universe)
        x = rng.normal(0, 1, (n, FEATURES))
        logits = np.tanh(x @ w1) @ w2
        y = logits[:, list(self.classes)].argmax(1)
        if self.shift:
            s = _rng(self.shift, 52)
            x = x * s.uniform(0.5, 2.0, FEATURES) + s.normal(0, 1.0, FEATURES)
        return x.astype(np.float32), y.astype(np.int64)


def subset(rng: np.random.Generator, low: int, high: int, total: int = CLASSES) -> tuple[int, ...]:
    """A sorted random subset of ``range(total)`` of ``low..high`` elements."""
    k = int(rng.integers(low, high + 1))
    return tuple(int(c) for c in np.sort(rng.choice(total, k, replace=False)))
