"""modelatlas: chart the Model Atlas, the graph of the world's machine-learning models.

The atlas is a directed acyclic graph whose nodes are models and whose edges are weight
transformations (fine-tuning, adapters, quantization, merging). See ``docs/`` for the design and
the papers it implements (Horwitz et al., "Charting and Navigating Hugging Face's Model Atlas";
Horwitz et al., "Unsupervised Model Tree Heritage Recovery"; Laufer et al., "Anatomy of a Machine
Learning Ecosystem").
"""

from modelatlas.atlas.atlas import Atlas
from modelatlas.errors import ModelAtlasError

__version__ = "0.1.0"
__all__ = ["Atlas", "ModelAtlasError", "__version__"]
