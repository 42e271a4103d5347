"""modelatlas: chart the Model Atlas, the graph of the world's machine-learning models.

The atlas is a directed acyclic graph whose nodes are models and whose edges are weight
transformations (fine-tuning, adapters, quantization, merging). See ``docs/`` for the design and
the papers it implements (Horwitz et al., "Charting and Navigating Hugging Face's Model Atlas";
Horwitz et al., "Unsupervised Model Tree Heritage Recovery"; Laufer et al., "Anatomy of a Machine
Learning Ecosystem").

The Python API (docs/api.md)::

    import modelatlas as ma
    atlas = ma.ingest("hf-trees.jsonl.gz")          # or ma.Atlas.load("atlas.duckdb")
    atlas.lineage("meta-llama/Llama-2-7b-chat-hf")  # typed results: .to_table(), .to_pandas()
    atlas.stats(); atlas.search(task="text-generation", licence="mit")
    ma.chart("zoo/", method="atlas")
"""

from importlib import metadata as _metadata

from modelatlas import api, chart, ingest  # chart and ingest are callable: modelatlas.api's functions
from modelatlas.atlas.atlas import Atlas
from modelatlas.errors import InputError, ModelAtlasError, UnknownModelError
from modelatlas.examples import example_atlas

try:  # one source of truth: the installed distribution's metadata (pyproject.toml's version)
    __version__ = _metadata.version("modelatlas")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown (not installed)"
__all__ = ["Atlas", "api", "InputError", "ModelAtlasError", "UnknownModelError", "__version__", "chart",
           "example_atlas", "ingest"]
