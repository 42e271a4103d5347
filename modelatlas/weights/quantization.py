"""Quantisation detection, as the Model Atlas paper proposes (Horwitz et al. 2025, Appendix C).

"Quantized models have reduced precision data types (e.g., int8 ...) and fewer unique weight
values" and App. E: "We propose using the tensor type as a reliable indicator of quantization
status." We gather every sign a file offers, cheapest first, and record each as evidence:

1. stored dtypes: I8 / U8 / F8 tensors, I32-packed weights (header only);
2. companion tensors and known naming schemes: scale / zero-point tensors; GPTQ ``qweight`` +
   ``qzeros`` + ``scales`` + ``g_idx``; AWQ (the same without ``g_idx``); bitsandbytes 4-bit
   ``absmax`` / ``quant_map`` / ``quant_state``, 8-bit ``SCB``; ONNX ``DequantizeLinear`` /
   ``MatMulInteger``; GGUF quantisation types;
3. ``quantization_config`` in a ``config.json`` beside the file;
4. few unique values per row in a small sample of the largest float matrices (dequantised
   quantisations stored as floats): the median row holds at most ``min(256, cols / 2)`` values.

Float16 / bfloat16 alone is reported (``low_precision``) but not taken as quantisation: most
modern models are trained and released in 16-bit.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from modelatlas.weights.signature import is_parameter
from modelatlas.weights.weightfile import WeightFile

#: Stored-name patterns of known quantisation schemes.
NAMING = {
    "gptq/awq": re.compile(r"(^|\.)(qweight|qzeros|g_idx)$"),
    "bitsandbytes-4bit": re.compile(r"\.(absmax|quant_map|nested_absmax|nested_quant_map|"
                                    r"quant_state\.bitsandbytes__(nf4|fp4))$"),
    "bitsandbytes-int8": re.compile(r"(^|\.)SCB$"),
}
QUANT_DTYPES = {"I8", "U8", "U4", "F8_E4M3", "F8_E5M2", "F8_E8M0"}
LOW_PRECISION = {"F16", "BF16"}


@dataclass
class QuantizationReport:
    """What a file says about quantisation.

    Attributes
    ----------
    quantized:
        True when any evidence other than 16-bit floats was found.
    schemes:
        Named schemes found (``int8-affine``, ``gptq``, ``gguf:Q4_0``, ``config:awq``,
        ``few-unique-values`` ...), sorted.
    dtypes:
        Stored dtype -> number of stored values of that dtype.
    quantized_tensors:
        Logical tensors stored quantised.
    companion_tensors:
        Stored scale / zero-point / packing tensors.
    unique_values:
        Sampled tensor -> median number of unique values per sampled row.
    config:
        ``quantization_config`` from a ``config.json`` beside the file, if any.
    low_precision:
        True when parameters are stored in float16 / bfloat16.
    evidence:
        One sentence per sign found.
    """

    quantized: bool
    schemes: list[str]
    dtypes: dict[str, int]
    quantized_tensors: list[str] = field(default_factory=list)
    companion_tensors: list[str] = field(default_factory=list)
    unique_values: dict[str, float] = field(default_factory=dict)
    config: dict | None = None
    low_precision: bool = False
    evidence: list[str] = field(default_factory=list)


def few_unique_values(rows: np.ndarray) -> tuple[float, bool]:
    """Median unique values per row, and whether that looks like a quantisation grid."""
    if rows.size == 0 or rows.shape[1] < 16:
        return float("nan"), False
    counts = [np.unique(r).size for r in rows]
    median = float(np.median(counts))
    return median, median <= min(256, rows.shape[1] / 2)


def detect_quantization(weight_file: WeightFile, *, sample_rows: int = 8, max_tensors: int = 4,
                        samples: dict[str, np.ndarray] | None = None, seed: int = 0) -> QuantizationReport:
    """Report whether and how a model is quantised.

    Parameters
    ----------
    weight_file:
        An opened model.
    sample_rows:
        Rows read from each sampled float matrix for the unique-value count (0 to skip reading).
    max_tensors:
        Largest float matrices sampled.
    samples:
        Rows already read (logical name -> float32 rows), used instead of reading more; the
        fingerprint passes the rows it read.
    seed:
        Seed of the row sample.

    Returns
    -------
    QuantizationReport
    """
    schemes: set[str] = set()
    evidence: list[str] = []
    dtypes = Counter()
    for stored in weight_file.stored.values():
        dtypes[stored.dtype] += int(np.prod(stored.shape)) if stored.shape else 1

    quantized_tensors = sorted(n for n, t in weight_file.tensors.items() if t.quantization is not None)
    companions = sorted({c for n in quantized_tensors for c in weight_file.tensors[n].quantization.companions})
    for name in quantized_tensors:
        schemes.add(weight_file.tensors[name].quantization.scheme)
    if quantized_tensors:
        evidence.append(f"{len(quantized_tensors)} tensors stored quantised "
                        f"({', '.join(sorted(schemes))})")

    params = [t for t in weight_file.tensors.values() if is_parameter(t) and t.quantization is None]
    odd = sorted(n for n, t in weight_file.tensors.items() if t.quantization is None and t.dtype in QUANT_DTYPES)
    if odd:
        schemes.add("low-bit-dtype")
        evidence.append(f"{len(odd)} tensors of dtype {', '.join(sorted({weight_file.tensors[n].dtype for n in odd}))}"
                        f" (e.g. {odd[0]})")
    packed = sorted(n for n, t in weight_file.tensors.items()
                    if t.quantization is None and t.dtype == "I32" and n.endswith("weight") and t.ndim == 2)
    if packed:
        schemes.add("int32-packed")
        evidence.append(f"{len(packed)} int32 weight matrices (packed low-bit values, e.g. {packed[0]})")
    for scheme, pattern in NAMING.items():
        hits = sorted(n for n in weight_file.stored if pattern.search(n))
        if hits:
            schemes.add(scheme)
            evidence.append(f"{len(hits)} tensors named like {scheme} (e.g. {hits[0]})")
            companions = sorted(set(companions) | set(hits))

    config = _config_beside(weight_file)
    if config is not None:
        method = config.get("quant_method") or ("bitsandbytes" if config.get("load_in_4bit")
                                                or config.get("load_in_8bit") else "unknown")
        schemes.add(f"config:{method}")
        evidence.append(f"config.json quantization_config.quant_method = {method}")

    unique_values: dict[str, float] = {}
    if samples is None:
        samples = _sample(weight_file, params, sample_rows, max_tensors, seed)
    looks = []
    for name, rows in samples.items():
        if rows.size == 0:
            continue
        median, flagged = few_unique_values(np.asarray(rows, np.float32).reshape(rows.shape[0], -1))
        if not np.isnan(median):
            unique_values[name] = median
            looks.append(flagged)
    if looks and sum(looks) * 2 > len(looks):
        schemes.add("few-unique-values")
        evidence.append(f"{sum(looks)} of {len(looks)} sampled matrices hold few unique values per row "
                        f"(median {min(unique_values.values()):.0f})")

    low_precision = any(t.dtype in LOW_PRECISION for t in params)
    return QuantizationReport(bool(schemes), sorted(schemes), dict(dtypes), quantized_tensors,
                              companions, unique_values, config, low_precision, evidence)


def _sample(weight_file: WeightFile, params, sample_rows: int, max_tensors: int, seed: int
            ) -> dict[str, np.ndarray]:
    if sample_rows <= 0:
        return {}
    matrices = sorted((t for t in params if t.ndim >= 2), key=lambda t: (-t.numel, t.name))[:max_tensors]
    rng = np.random.default_rng(seed)
    out = {}
    for t in matrices:
        rows = np.sort(rng.choice(t.rows, size=min(sample_rows, t.rows), replace=False))
        out[t.name] = weight_file.read_rows(t.name, rows)
    return out


def _config_beside(weight_file: WeightFile) -> dict | None:
    folder = weight_file.path.parent if weight_file.path.is_file() else weight_file.path
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # a broken config is not evidence either way
    q = config.get("quantization_config") if isinstance(config, dict) else None
    return q if isinstance(q, dict) else None
