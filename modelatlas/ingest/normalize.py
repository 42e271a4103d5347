"""Normalising Hub vocabulary: licences, languages, tasks -> modality, quantisation hints.

Every rule here is data (mappings, patterns) so that the vectorised reader
(:mod:`modelatlas.ingest.records`) applies it in DuckDB over millions of rows and the same rule
reads the same in Python. docs/ingest.md gives the tables in prose.
"""

from __future__ import annotations

#: Hub ``pipeline_tag`` -> modality. Image / video *generation* from text (Stable Diffusion, Flux,
#: CogVideoX) is ``vision``: the Model Atlas paper counts it as generative computer vision
#: (section 3, "Quantization", "Fine-tuning vs. adapters"). Tasks that read images or video and
#: answer in text are ``vision-language``; audio with anything is ``audio``; ``any-to-any`` is
#: ``multimodal``. Unknown tasks give ``other``, a missing task NULL (see :func:`modality_sql`).
MODALITY: dict[str, str] = {
    # vision
    "image-classification": "vision", "object-detection": "vision", "image-segmentation": "vision",
    "depth-estimation": "vision", "image-to-image": "vision", "unconditional-image-generation": "vision",
    "video-classification": "vision", "zero-shot-image-classification": "vision-language",
    "zero-shot-object-detection": "vision-language", "mask-generation": "vision",
    "image-feature-extraction": "vision", "keypoint-detection": "vision", "image-to-3d": "vision",
    "image-to-video": "vision", "text-to-3d": "vision", "video-to-video": "vision",
    "text-to-image": "vision", "text-to-video": "vision",
    # vision + language
    "image-to-text": "vision-language",
    "image-text-to-text": "vision-language", "visual-question-answering": "vision-language",
    "document-question-answering": "vision-language",
    "video-text-to-text": "vision-language", "visual-document-retrieval": "vision-language",
    # language
    "text-generation": "language", "text2text-generation": "language", "text-classification": "language",
    "token-classification": "language", "question-answering": "language", "translation": "language",
    "summarization": "language", "fill-mask": "language", "sentence-similarity": "language",
    "feature-extraction": "language", "zero-shot-classification": "language",
    "table-question-answering": "language", "text-ranking": "language",
    # audio
    "automatic-speech-recognition": "audio", "audio-classification": "audio", "text-to-speech": "audio",
    "text-to-audio": "audio", "audio-to-audio": "audio", "voice-activity-detection": "audio",
    "audio-text-to-text": "audio",
    # multimodal
    "any-to-any": "multimodal",
    # tabular, time series
    "tabular-classification": "tabular", "tabular-regression": "tabular",
    "time-series-forecasting": "tabular",
    # reinforcement learning
    "reinforcement-learning": "rl", "robotics": "rl",
    # everything else
    "graph-ml": "other",
}

MODALITIES: tuple[str, ...] = ("vision", "language", "vision-language", "audio", "multimodal",
                               "tabular", "rl", "other")

#: Tags that say the weights are quantised (lower case, whole tag).
QUANTIZED_TAGS: tuple[str, ...] = ("gguf", "ggml", "awq", "gptq", "exl2", "bnb", "bitsandbytes",
                                   "4-bit", "8-bit", "4bit", "8bit", "int4", "int8", "fp8", "quantized",
                                   "hqq", "aqlm", "mlx-4bit", "compressed-tensors")

#: A model-name pattern (case-insensitive, on the part after the author) that says the same.
QUANTIZED_NAME_PATTERN = r"(gguf|ggml|gptq|awq|exl2|bnb|hqq|aqlm|[-_.](int[48]|[248]bit|[48]-bit|q[2-8]_k|fp8|w4a16|w8a8))"

#: safetensors dtypes that only quantised checkpoints use for weights.
QUANTIZED_DTYPES: tuple[str, ...] = ("I8", "U8", "I32", "I4", "U4", "F8_E4M3", "F8_E5M2", "F8", "F4")

#: ISO 639-1 two-letter language codes (a plain Hub tag equal to one of these is a language).
ISO639_1 = frozenset("""
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz
ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik
io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml
mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd
se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi
vo wa wo xh yi yo za zh zu""".split())

#: Licence spellings seen in cards -> the Hub's licence id.
LICENSE_ALIASES: dict[str, str] = {
    "apache 2.0": "apache-2.0", "apache2": "apache-2.0", "apache-2": "apache-2.0", "apache license 2.0": "apache-2.0",
    "mit license": "mit", "cc-by-4": "cc-by-4.0", "cc by 4.0": "cc-by-4.0", "gpl-3": "gpl-3.0",
    "llama 2": "llama2", "llama-2": "llama2", "llama 3": "llama3", "llama-3": "llama3",
}


def normalize_license(value: str | None) -> str | None:
    """The Hub licence id for a licence spelling (lower case, aliases resolved)."""
    if value is None:
        return None
    key = " ".join(str(value).strip().lower().split())
    if not key:
        return None
    return LICENSE_ALIASES.get(key, key.replace(" ", "-"))


def modality(pipeline_tag: str | None) -> str | None:
    """Modality of a Hub task; ``None`` when the task is missing, ``other`` when unknown."""
    if pipeline_tag is None:
        return None
    return MODALITY.get(pipeline_tag.strip().lower(), "other")


def _sql_map(mapping: dict[str, str]) -> str:
    keys = ", ".join("'" + k.replace("'", "''") + "'" for k in mapping)
    values = ", ".join("'" + v.replace("'", "''") + "'" for v in mapping.values())
    return f"MAP([{keys}], [{values}])"


def modality_sql(column: str) -> str:
    """:func:`modality` as a DuckDB expression."""
    return (f"CASE WHEN {column} IS NULL THEN NULL "
            f"ELSE coalesce({_sql_map(MODALITY)}[lower(trim({column}))], 'other') END")


def license_sql(column: str) -> str:
    """:func:`normalize_license` as a DuckDB expression."""
    key = f"nullif(lower(regexp_replace(trim({column}), '\\s+', ' ', 'g')), '')"
    return f"coalesce({_sql_map(LICENSE_ALIASES)}[{key}], replace({key}, ' ', '-'))"


def sql_list(values) -> str:
    """A DuckDB list literal of strings."""
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"
