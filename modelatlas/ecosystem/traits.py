"""Categorical traits of models as sets (Laufer et al., section 4 and appendix 7).

A trait is a node column: single-valued (licence, task, library) or a list (languages). Each
model holds a *set* of values — empty when the column is null or blank — so one Jaccard rule
serves both kinds (appendix 7). Sets are rows of a sparse boolean matrix ``models x values``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from modelatlas.errors import ModelAtlasError

#: User-facing trait names -> node columns.
TRAITS = {"license": "license", "licence": "license", "task": "pipeline_tag", "pipeline_tag": "pipeline_tag",
          "library": "library_name", "library_name": "library_name", "language": "languages",
          "languages": "languages"}
#: The four traits of the paper, by column.
PAPER_TRAITS = ("license", "languages", "pipeline_tag", "library_name")
#: Values the drift graphs drop (section 4.1: user-defined "unknown" and "other", and empties).
UNINFORMATIVE = frozenset({"", "unknown", "other", "none", "null", "n/a"})


def trait_column(trait: str) -> str:
    """The node column of a trait name (``license``, ``task``, ``library``, ``language`` ...)."""
    try:
        return TRAITS[trait.lower()]
    except KeyError:
        raise ModelAtlasError(f"unknown trait {trait!r}; choose one of license, task, library, language") from None


@dataclass(eq=False)
class TraitSets:
    """Each model's set of values of one trait.

    Attributes
    ----------
    column:
        The node column.
    values:
        The distinct values (column index of :attr:`matrix`).
    matrix:
        ``csr_matrix`` (n_models x n_values), 1 where a model holds a value.
    """

    column: str
    values: list[str]
    matrix: sp.csr_matrix

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.matrix.indptr)

    def frequency(self) -> np.ndarray:
        """Number of models holding each value."""
        return np.asarray(self.matrix.sum(axis=0)).ravel().astype(np.int64)


def trait_sets(atlas, trait: str) -> TraitSets:
    """Read ``trait`` from every node of ``atlas`` as sets (values stripped; blanks dropped)."""
    return value_sets(atlas, trait_column(trait))


def value_sets(atlas, column: str) -> TraitSets:
    """Any string or list-of-strings node column as sets (values stripped; blanks dropped)."""
    if column not in atlas.nodes.column_names:
        raise ModelAtlasError(f"the atlas has no node column {column!r}")
    col = atlas.nodes[column].combine_chunks() if atlas.num_nodes else pa.array([], pa.string())
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        rows = pc.list_parent_indices(col).to_numpy(zero_copy_only=False)
        flat = pc.list_flatten(col)
    else:
        rows = np.arange(len(col))
        flat = col
    flat = pc.utf8_trim_whitespace(flat.cast(pa.string()))
    keep = np.asarray(pc.fill_null(pc.not_equal(flat, ""), False).to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.asarray(rows)[keep]
    encoded = pc.dictionary_encode(flat.filter(pa.array(keep)))
    values = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    m = sp.csr_matrix((np.ones(rows.size, dtype=np.int8), (rows, codes)), shape=(atlas.num_nodes, len(values)))
    m.data[:] = 1  # a value listed twice by one model is held once
    return TraitSets(column, values, m)


def require_values(sets: TraitSets, trait: str) -> None:
    """Raise a clear error when no model has any value of ``trait``."""
    if sets.matrix.nnz == 0:
        raise ModelAtlasError(f"no model in the atlas has a value for trait {trait!r} (column {sets.column!r} "
                              "is empty everywhere)")
