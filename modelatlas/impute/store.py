"""Impute missing values and keep them beside the atlas, never over known ones.

Imputations live in the extras table ``imputations`` (one row per model and imputed field:
``id, what, kind, value, number, method, confidence``); the node and metric tables are untouched.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.impute.base import get_imputer
from modelatlas.impute.task import ImputationTask
from modelatlas.impute.view import TrainView

IMPUTATIONS = "imputations"
IMPUTATION_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("what", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("value", pa.string()),
    pa.field("number", pa.float64()),
    pa.field("method", pa.string(), nullable=False),
    pa.field("confidence", pa.float64()),
])


def make_method(name: str, k: int = 5):
    """The registered method ``name`` (:func:`~modelatlas.impute.base.get_imputer`); ``k`` is graph kNN's."""
    return get_imputer(name, **({"k": k} if name == "graph_knn" else {}))


def impute(task: ImputationTask, method: str = "auto", k: int = 5) -> pa.Table:
    """Predict ``task`` for every model where it is unknown but the graph links it to a known one.

    Models whose component holds no known value are left out (a global guess would be invented
    data, not an imputation).

    Returns
    -------
    pyarrow.Table with :data:`IMPUTATION_SCHEMA`.
    """
    facts = task.facts
    known = task.known
    view = TrainView(task, known)
    reach = view.nearest.source[:, 0] >= 0
    query = np.flatnonzero(task.open & reach)
    solver = make_method(method, k)
    pred = solver.predict(view, query) if query.size else None
    ids = facts.ids[query]
    name = solver.name_for(task.kind)
    if getattr(solver, "chosen_", None):  # auto says which method it chose, e.g. "auto (graph_knn_k3)"
        name = f"{name} ({solver.chosen_})"
    if task.kind == "attribute":
        labels = task.decode(pred.value) if query.size else np.zeros(0, dtype=object)
        value, number = pa.array(labels.tolist(), pa.string()), pa.nulls(query.size, pa.float64())
    else:
        value = pa.nulls(query.size, pa.string())
        number = pa.array(pred.value if query.size else np.zeros(0), pa.float64())
    return pa.table({
        "id": pa.array(ids.tolist(), pa.string()), "what": pa.array([task.what] * query.size, pa.string()),
        "kind": pa.array([task.kind] * query.size, pa.string()), "value": value, "number": number,
        "method": pa.array([name] * query.size, pa.string()),
        "confidence": pa.array(pred.confidence if query.size else np.zeros(0), pa.float64()),
    }, schema=IMPUTATION_SCHEMA)


def store_imputations(atlas, table: pa.Table) -> None:
    """Put ``table`` into ``atlas.extras["imputations"]``, replacing earlier rows of the same ``what``."""
    old = atlas.extras.get(IMPUTATIONS)
    if old is not None and old.num_rows:
        whats = pc.unique(table["what"]) if table.num_rows else pa.array([], pa.string())
        old = old.filter(pc.invert(pc.is_in(old["what"], value_set=whats)))
        table = pa.concat_tables([old.cast(IMPUTATION_SCHEMA), table])
    atlas.extras[IMPUTATIONS] = table
