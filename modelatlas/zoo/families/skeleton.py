"""The skeleton every family zoo is built by (docs/zoo.md): a lineage writer, the family's
components in order, optional extra models, then the family's upload clock."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from modelatlas.zoo.families.draws import SIZES, Size
from modelatlas.zoo.lineage import LineageWriter
from modelatlas.zoo.manifest import Zoo
from modelatlas.zoo.upload_times import TimeModel


def build_family(out, family: str, seed: int, size: str, on_model: Callable[[str], None] | None,
                 component: Callable[[LineageWriter, int, Size, bool], None],
                 time_model: Callable[[np.random.Generator], TimeModel], *, extra_components: int = 0,
                 finally_: Callable[[LineageWriter, Size], None] | None = None) -> Zoo:
    """Build the zoo of one family.

    Parameters
    ----------
    out:
        Folder the zoo is written to.
    family, seed, size:
        The family's name, the seed, and ``tiny`` or ``small`` (:data:`~modelatlas.zoo.families.draws.SIZES`).
    on_model:
        Called with each model id once written (progress).
    component:
        ``component(writer, index, size, tiny)`` writes one connected component.
    time_model:
        The family's upload clock, drawn from the writer's generator after every model is written.
    extra_components:
        Components beyond the size's count, except for ``tiny`` zoos.
    finally_:
        ``finally_(writer, size)`` writes models outside the components (``small`` zoos only).

    Returns
    -------
    Zoo
        The written zoo.
    """
    s = SIZES[size]
    tiny = size == "tiny"
    w = LineageWriter(out, family, seed, on_model)
    for c in range(s.components + (0 if tiny else extra_components)):
        component(w, c, s, tiny)
    if finally_ is not None and not tiny:
        finally_(w, s)
    return w.finish(time_model(w.rng))
