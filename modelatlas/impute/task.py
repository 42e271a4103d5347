"""What is imputed: a node attribute (a label) or an evaluation metric (a number).

Attributes are coded as integers (``-1`` unknown) and metrics as floats (NaN unknown), so every
method works on numpy arrays at 2 million nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.atlas.derived import AtlasFacts
from modelatlas.errors import InputError

#: The attributes of Table 1b; any other string node column works too.
PAPER_ATTRIBUTES = ("pipeline_tag", "library_name", "model_type", "license", "relation_type")


@dataclass
class ImputationTask:
    """One thing to impute over one atlas.

    Attributes
    ----------
    facts:
        The atlas and its cached arrays.
    what:
        Attribute or metric name.
    kind:
        ``"attribute"`` or ``"metric"``.
    codes:
        Attributes: class code per node, ``-1`` where unknown. Metrics: unused (empty).
    classes:
        Attributes: the label of each code.
    values:
        Metrics: the value per node, NaN where unknown. Attributes: unused (empty).
    applicable:
        Models the field applies to (``None``: all).
    """

    facts: AtlasFacts
    what: str
    kind: str
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    classes: list[str] = field(default_factory=list)
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    applicable: np.ndarray | None = None

    @property
    def open(self) -> np.ndarray:
        """Models where the value is unknown but meaningful (``relation_type`` needs a parent)."""
        out = ~self.known & self.facts.real
        return out if self.applicable is None else out & self.applicable

    @property
    def known(self) -> np.ndarray:
        return self.codes >= 0 if self.kind == "attribute" else ~np.isnan(self.values)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Labels of attribute codes (None for -1)."""
        labels = np.asarray(self.classes + [None], dtype=object)
        return labels[np.where(codes >= 0, codes, len(self.classes))]


@dataclass
class Prediction:
    """Predictions for some query nodes.

    Attributes
    ----------
    value:
        Attribute codes (int, ``-1`` = no prediction) or metric values (float, NaN = none).
    confidence:
        In ``[0, 1]``: the vote share behind a label, or ``1 / distance`` to the nearest labelled model
        for graph-based metric values.
    covered:
        True where the method had its own evidence (not the global fallback).
    """

    value: np.ndarray
    confidence: np.ndarray
    covered: np.ndarray


def metric_names(atlas) -> list[str]:
    return sorted(set(atlas.metrics["metric"].to_pylist())) if atlas.metrics.num_rows else []


def attribute_names(atlas) -> list[str]:
    names = [f.name for f in atlas.nodes.schema if pa.types.is_string(f.type) and f.name not in
             ("id", "card_text", "snapshot", "crawl_root")]
    return sorted(set(names) | {"relation_type"})


def build_task(facts: AtlasFacts, what: str) -> ImputationTask:
    """The task for ``what``: a metric in ``atlas.metrics``, ``relation_type``, or a string node column.

    Raises
    ------
    InputError
        Unknown name, or a name with no known value anywhere (nothing to learn from).
    """
    atlas = facts.atlas
    if atlas.num_nodes == 0:
        raise InputError("the atlas holds no models; nothing to impute", where="--what")
    metrics = metric_names(atlas)
    if what in metrics:
        rows = atlas.metrics.filter(pc.equal(atlas.metrics["metric"], what))
        mean = rows.group_by("id").aggregate([("value", "mean")])
        idx = pc.index_in(mean["id"], value_set=atlas.nodes["id"]).to_numpy(zero_copy_only=False)
        vals = mean["value_mean"].to_numpy()
        ok = ~np.isnan(idx.astype(np.float64))
        values = np.full(facts.n, np.nan)
        values[idx[ok].astype(np.int64)] = vals[ok]
        if np.isnan(values).all():
            raise InputError(f"metric {what!r} has no value on any model of the atlas", where="--what")
        return ImputationTask(facts, what, "metric", values=values)
    if what != "relation_type" and not (what in atlas.nodes.column_names and what in attribute_names(atlas)):
        raise InputError(f"cannot impute {what!r}: it is neither a metric of this atlas "
                         f"({', '.join(metrics[:10]) or 'none'}) nor a text attribute "
                         f"({', '.join(attribute_names(atlas))})", where="--what")
    codes, classes = facts.codes(what)
    if not (codes >= 0).any():
        raise InputError(f"attribute {what!r} is absent on every model of the atlas; nothing to learn from",
                         where="--what")
    applicable = facts.graph.in_degree > 0 if what == "relation_type" else None
    return ImputationTask(facts, what, "attribute", codes=codes.copy(), classes=list(classes),
                          applicable=applicable)
