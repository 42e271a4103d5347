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
   quantisations stored as floats): the median row holds at most ``min(256, cols / 2)`` values;
5. values on a uniform grid (``offset + k · step``) in most sampled rows: ≤ 256 levels per row, or
   ≤ 16 levels in each group of 32 / 64 / 128 columns — integer codes times a scale, which catches
   dequantised copies of small layers whose rows are too short for the unique-value count.

Float16 / bfloat16 alone is reported (``low_precision``) but not taken as quantisation: most
modern models are trained and released in 16-bit.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from modelatlas.errors import InputError
from modelatlas.strict_json import loads_strict
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
    ordered = np.sort(rows, axis=1)
    counts = 1 + np.count_nonzero(np.diff(ordered, axis=1), axis=1)
    median = float(np.median(counts))
    return median, median <= min(256, rows.shape[1] / 2)


def _on_grid(values: np.ndarray, max_levels: int) -> bool:
    """Whether values of both signs lie on one uniform grid ``offset + k · step`` of ≤ ``max_levels``."""
    levels = np.unique(values)
    if levels.size < 3 or not levels[0] < 0 < levels[-1]:
        # weights span both signs; a one-signed narrow range sits on the float format's own grid
        return False
    gaps = np.diff(levels.astype(np.float64))
    step = gaps.min()
    if step <= 0 or (levels[-1] - levels[0]) / step > max_levels - 1 + 0.5:
        return False
    for _ in range(2):  # refine the step over all gaps: the smallest gap carries rounding error
        counts = np.maximum(np.rint(gaps / step), 1)
        step = gaps.sum() / counts.sum()
    ratios = gaps / step
    # float16 storage rounds each level by up to 2^-11 of its size; allow that much per gap
    magnitude = np.abs(levels[1:]).astype(np.float64) + np.abs(levels[:-1])
    tolerance = 0.05 + magnitude / step * 2.0 ** -11
    return bool(np.all(np.abs(ratios - np.rint(ratios)) < tolerance))


def value_grid(rows: np.ndarray, group_sizes: tuple[int, ...] = (32, 64, 128)) -> bool:
    """Whether most rows are dequantised integer codes: each row on one grid of ≤ 256 levels
    (8-bit per row / tensor), or each group of ``g`` columns on a grid of ≤ 16 levels (4-bit groups).
    Random floats fail: their smallest gap is tiny against their range."""
    if rows.size == 0 or rows.shape[1] < 16:
        return False
    hits = 0
    for row in rows:
        if _on_grid(row, 256) or any(
                rows.shape[1] % g == 0 and rows.shape[1] > g
                and all(_on_grid(part, 16) for part in row.reshape(-1, g)) for g in group_sizes):
            hits += 1
    return hits * 2 > rows.shape[0]


def detect_quantization(weight_file: WeightFile, *, sample_rows: int = 16, max_tensors: int = 8,
                        samples: dict[str, np.ndarray] | None = None, seed: int = 0) -> QuantizationReport:
    """Report whether and how a model is quantised.

    Parameters
    ----------
    weight_file:
        An opened model.
    sample_rows:
        Rows of each sampled float matrix used for the unique-value count (0: read none).
    max_tensors:
        Largest float matrices sampled.
    samples:
        Rows already read (logical name -> float32 rows), used instead of reading more (the
        first ``sample_rows`` rows of the ``max_tensors`` largest); the fingerprint passes the
        rows it read.
    seed:
        Seed of the row sample.

    Returns
    -------
    QuantizationReport

    References
    ----------
    Horwitz et al., "Charting and Navigating Hugging Face's Model Atlas" (2025), App. C
    (quantised models as leaves; detection from dtypes and unique values) and App. E (tensor type
    as the reliable indicator).
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
    looks, grids = [], []
    largest = sorted(samples, key=lambda n: -np.asarray(samples[n]).size)[:max_tensors]
    for name in largest:
        rows = np.asarray(samples[name], np.float32)
        if rows.size == 0:
            continue
        rows = rows.reshape(rows.shape[0], -1)[:max(sample_rows, 1)]
        median, flagged = few_unique_values(rows)
        if not np.isnan(median):
            unique_values[name] = median
            looks.append(flagged)
            grids.append(value_grid(rows))
    if looks and sum(looks) * 2 > len(looks):
        schemes.add("few-unique-values")
        evidence.append(f"{sum(looks)} of {len(looks)} sampled matrices hold few unique values per row "
                        f"(median {min(unique_values.values()):.0f})")
    if grids and sum(grids) * 2 > len(grids):
        schemes.add("value-grid")
        evidence.append(f"{sum(grids)} of {len(grids)} sampled matrices hold values on a uniform grid "
                        "(integer codes times a scale: dequantised)")

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
        config = loads_strict(path.read_bytes(), path=str(path))
    except (OSError, InputError):
        return None  # a broken config is not evidence either way
    q = config.get("quantization_config") if isinstance(config, dict) else None
    return q if isinstance(q, dict) else None
