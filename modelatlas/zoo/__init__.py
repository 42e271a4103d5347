"""Zoos of real models with known lineage: the ground truth that charting is measured against.

A zoo is a folder with ``manifest.json`` and one weights file per model (DESIGN.md, "Interfaces").
:mod:`modelatlas.zoo.manifest` reads and writes manifests and needs nothing beyond the standard
library; building zoos (:mod:`modelatlas.zoo.builder`, :mod:`modelatlas.zoo.recipes`,
:mod:`modelatlas.zoo.minilm`) trains models and needs PyTorch (``pip install 'modelatlas[torch]'``).
"""

from modelatlas.zoo.manifest import Zoo, ZooModel, load_manifest, write_manifest

__all__ = ["Zoo", "ZooModel", "load_manifest", "write_manifest"]
