"""Reading weights safely and lazily: safetensors (single or sharded), ONNX initializers, GGUF and
PyTorch weights-only files; dequantisation, quantisation detection, architecture signatures,
content hashes and fingerprints (sampled neurons). See ``docs/weights.md``.
"""

from modelatlas.weights.content_hash import ContentHash, content_hash
from modelatlas.weights.fingerprint import Fingerprints, SignatureMismatchError, fingerprint_models
from modelatlas.weights.quantization import QuantizationReport, detect_quantization
from modelatlas.weights.reader import open_weights
from modelatlas.weights.signature import ArchitectureSignature, signature
from modelatlas.weights.tensors import QuantInfo, StoredTensor, TensorInfo
from modelatlas.weights.weightfile import NonFiniteWeightsWarning, WeightFile

__all__ = [
    "ArchitectureSignature", "ContentHash", "Fingerprints", "NonFiniteWeightsWarning", "QuantInfo", "QuantizationReport",
    "SignatureMismatchError", "StoredTensor", "TensorInfo", "WeightFile", "content_hash",
    "detect_quantization", "fingerprint_models", "open_weights", "signature",
]
