"""The data model: nodes, edges and evidence tables, graph algorithms, and the store."""

from modelatlas.atlas.atlas import Atlas
from modelatlas.atlas.graph import AtlasGraph

__all__ = ["Atlas", "AtlasGraph"]
