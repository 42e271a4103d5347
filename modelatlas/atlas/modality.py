"""Modality of every node for the per-modality statistics (Model Atlas paper, section 3.2 and
Fig. 5/9 compare vision, language, vision-and-language and audio models).

The task -> modality map lives in one place, :data:`modelatlas.ingest.normalize.MODALITY`; readers
store its result in the node column ``modality``. Here that column wins, and where it is empty
(atlases built by hand or by other readers) the same map is applied to ``pipeline_tag``. Models
without a task are grouped as ``unknown``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.ingest.normalize import MODALITY

#: Group name of models whose task (and so modality) is unknown.
UNKNOWN_MODALITY = "unknown"


def node_modality(nodes: pa.Table) -> np.ndarray:
    """Modality of every node: the ``modality`` column where set, else derived from ``pipeline_tag``.

    Returns
    -------
    numpy.ndarray of str (object), one per row of ``nodes``.
    """
    tags = pc.utf8_lower(pc.utf8_trim_whitespace(nodes["pipeline_tag"])) if nodes.num_rows else \
        pa.array([], pa.string())
    idx = pc.index_in(tags, value_set=pa.array(list(MODALITY), pa.string()))
    derived = pc.take(pa.array(list(MODALITY.values()), pa.string()), idx)
    derived = pc.if_else(pc.is_null(tags), pa.scalar(UNKNOWN_MODALITY), pc.fill_null(derived, "other"))
    if "modality" in nodes.column_names:
        derived = pc.coalesce(nodes["modality"], derived)
    return np.asarray(derived.to_numpy(zero_copy_only=False), dtype=object)
