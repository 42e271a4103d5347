"""What every zoo writer shares (docs/zoo.md): the zoo folder, a seeded generator of its own, one
deterministic torch thread, and where a model's weights file goes.

:class:`~modelatlas.zoo.builder.ZooBuilder` (the pattern zoo) and
:class:`~modelatlas.zoo.lineage.LineageWriter` (the family zoos) extend it with their patterns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from modelatlas.zoo.merge import State


@dataclass
class ZooWriter:
    """The shared state of a zoo writer.

    Parameters
    ----------
    out:
        Zoo folder (created); weights go to ``out/models/<component>/``.
    name:
        Zoo name recorded in the manifest.
    seed:
        Seed of everything random: same seed, same bytes.
    on_model:
        Called with each model id once its weights are written (progress bars).
    """

    out: Path
    name: str
    seed: int = 0
    on_model: Callable[[str], None] | None = None
    rng: np.random.Generator = field(init=False)
    states: dict[str, State] = field(init=False, default_factory=dict)
    #: Mixed into the seed: each kind of writer draws its own stream from the same seed.
    stream: ClassVar[int] = 0

    def __post_init__(self) -> None:
        import torch  # noqa: PLC0415 - optional dependency

        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        self.out = Path(self.out).resolve()  # models' paths are absolute (ZooModel.path)
        self.out.mkdir(parents=True, exist_ok=True)
        self.rng = np.random.default_rng([self.seed, self.stream])

    def new_seed(self) -> int:
        """A fresh training seed from the zoo's generator."""
        return int(self.rng.integers(0, 2**31 - 1))

    def weights_path(self, component: str, name: str, suffix: str = "") -> Path:
        """The weights file of model ``component/name`` (``suffix``: adapter, dequantized copy)."""
        path = self.out / "models" / component / f"{name}{suffix}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
