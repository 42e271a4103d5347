"""Procedurally generated learning tasks: no downloads, fully determined by seeds.

Each input kind has a *universe* of :data:`UNIVERSE_CLASSES` classes, drawn from a universe seed:

- ``vector``: Gaussian clusters in an 8-d latent space pushed through a random non-linear map to
  32 features (tanh of a random linear map);
- ``image``: 1×16×16 sinusoidal gratings, one (orientation, frequency) per class, random phase;
- ``sequence``: token sequences of length 16 over 32 tokens, one random Markov chain per class.

Pre-training (generalisation) samples every class of a universe; fine-tuning tasks
(specialisation) take a few classes, relabel them ``0..k-1`` and shift the domain (feature offsets
and scales, contrast and noise, chain temperature), so that children of one parent learn different
things. Sampling is infinite: each step draws a fresh batch from a seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

UNIVERSE_CLASSES = 16
VECTOR_DIM, IMAGE_SIDE, SEQ_LEN, VOCAB = 32, 16, 16, 32


@dataclass(frozen=True)
class Task:
    """A classification task.

    Parameters
    ----------
    kind:
        ``vector``, ``image`` or ``sequence``.
    universe:
        Seed of the class universe (roots pre-trained on different universes learn different data).
    classes:
        Universe classes used, relabelled ``0..len(classes)-1``.
    shift:
        Seed of the domain shift (0: none).
    """

    kind: str
    universe: int
    classes: tuple[int, ...] = field(default_factory=lambda: tuple(range(UNIVERSE_CLASSES)))
    shift: int = 0

    @property
    def name(self) -> str:
        if len(self.classes) == UNIVERSE_CLASSES and not self.shift:
            return f"{self.kind}-u{self.universe}-all"
        return f"{self.kind}-u{self.universe}-c{'.'.join(map(str, self.classes))}-s{self.shift}"

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` examples ``(x, y)``: ``x`` float32 (vector, image) or int64 tokens (sequence)."""
        y = rng.integers(0, len(self.classes), n)
        cls = np.asarray(self.classes)[y]
        shift = np.random.default_rng([self.shift, 7]) if self.shift else None
        x = _SAMPLERS[self.kind](self.universe, cls, rng, shift)
        return x, y.astype(np.int64)


def narrow_task(kind: str, universe: int, rng: np.random.Generator, k: int = 4) -> Task:
    """A specialisation task: ``k`` random classes of the universe under a random domain shift."""
    classes = tuple(int(c) for c in np.sort(rng.choice(UNIVERSE_CLASSES, k, replace=False)))
    return Task(kind, universe, classes, shift=int(rng.integers(1, 2**31)))


@lru_cache(maxsize=64)
def _vector_universe(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.random.default_rng([seed, 1])
    centres = r.normal(0, 1.5, (UNIVERSE_CLASSES, 8))
    mix = r.normal(0, 1 / np.sqrt(8), (8, VECTOR_DIM)) * 2.0
    bias = r.normal(0, 0.5, VECTOR_DIM)
    return centres, mix, bias


def _vector(universe: int, cls: np.ndarray, rng: np.random.Generator, shift) -> np.ndarray:
    centres, mix, bias = _vector_universe(universe)
    z = centres[cls] + rng.normal(0, 0.6, (len(cls), 8))
    x = np.tanh(z @ mix + bias)
    if shift is not None:
        x = x * shift.uniform(0.6, 1.6, VECTOR_DIM) + shift.normal(0, 0.5, VECTOR_DIM)
    return x.astype(np.float32)


@lru_cache(maxsize=64)
def _image_universe(seed: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng([seed, 2])
    grid = np.arange(UNIVERSE_CLASSES)
    theta = (grid % 4) * np.pi / 4 + r.normal(0, 0.1, UNIVERSE_CLASSES)
    freq = (1.0 + grid // 4) * r.uniform(0.8, 1.2, UNIVERSE_CLASSES)
    return theta, freq


def _image(universe: int, cls: np.ndarray, rng: np.random.Generator, shift) -> np.ndarray:
    theta, freq = _image_universe(universe)
    contrast, noise = (1.0, 0.5) if shift is None else (shift.uniform(0.4, 1.2), shift.uniform(0.3, 0.9))
    side = np.arange(IMAGE_SIDE) / IMAGE_SIDE
    yy, xx = np.meshgrid(side, side, indexing="ij")
    t, f = theta[cls][:, None, None], freq[cls][:, None, None]
    phase = rng.uniform(0, 2 * np.pi, (len(cls), 1, 1))
    img = contrast * np.cos(2 * np.pi * f * (xx * np.cos(t) + yy * np.sin(t)) + phase)
    img = img + rng.normal(0, noise, img.shape)
    return img[:, None].astype(np.float32)


@lru_cache(maxsize=64)
def _sequence_universe(seed: int) -> np.ndarray:
    r = np.random.default_rng([seed, 3])
    return r.normal(0, 3.0, (UNIVERSE_CLASSES, VOCAB, VOCAB))


def _sequence(universe: int, cls: np.ndarray, rng: np.random.Generator, shift) -> np.ndarray:
    logits = _sequence_universe(universe) * (1.0 if shift is None else shift.uniform(0.6, 1.4))
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    cum = np.cumsum(probs / probs.sum(-1, keepdims=True), -1)
    tokens = np.empty((len(cls), SEQ_LEN), np.int64)
    tokens[:, 0] = rng.integers(0, VOCAB, len(cls))
    for i in range(1, SEQ_LEN):
        row = cum[cls, tokens[:, i - 1]]
        tokens[:, i] = np.minimum((row < rng.random((len(cls), 1))).sum(1), VOCAB - 1)
    return tokens


_SAMPLERS = {"vector": _vector, "image": _image, "sequence": _sequence}
