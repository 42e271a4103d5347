"""The data model: nodes, edges and evidence tables, graph algorithms, the derived-data layer, and the store."""

from modelatlas.atlas.atlas import Atlas
from modelatlas.atlas.derived import AtlasFacts
from modelatlas.atlas.graph import AtlasGraph

__all__ = ["Atlas", "AtlasFacts", "AtlasGraph"]
