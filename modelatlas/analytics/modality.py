"""Modality of a model, derived from its task (``pipeline_tag``).

The Model Atlas paper compares computer vision, natural language, vision-and-language and audio
models (section 3.2, Fig. 5 and Fig. 9). This is the one place that maps Hub tasks to those
modalities; the node column ``modality`` wins where a reader already set it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Hub ``pipeline_tag`` -> modality. Image and video generation count as vision, as in the paper
#: (Stable Diffusion and Flux are its "generative vision" components).
PIPELINE_MODALITY: dict[str, str] = {
    **dict.fromkeys([
        "text-generation", "text2text-generation", "fill-mask", "text-classification",
        "token-classification", "question-answering", "table-question-answering",
        "zero-shot-classification", "translation", "summarization", "feature-extraction",
        "sentence-similarity", "conversational", "text-ranking", "text-retrieval"], "language"),
    **dict.fromkeys([
        "image-classification", "object-detection", "image-segmentation", "depth-estimation",
        "text-to-image", "image-to-image", "unconditional-image-generation", "video-classification",
        "text-to-video", "image-to-video", "mask-generation", "zero-shot-object-detection",
        "image-feature-extraction", "keypoint-detection", "text-to-3d", "image-to-3d",
        "video-to-video"], "vision"),
    **dict.fromkeys([
        "image-text-to-text", "visual-question-answering", "document-question-answering",
        "image-to-text", "zero-shot-image-classification", "video-text-to-text", "any-to-any",
        "visual-document-retrieval"], "vision-language"),
    **dict.fromkeys([
        "automatic-speech-recognition", "audio-classification", "text-to-speech", "text-to-audio",
        "audio-to-audio", "voice-activity-detection", "audio-text-to-text"], "audio"),
    **dict.fromkeys([
        "tabular-classification", "tabular-regression", "time-series-forecasting"], "tabular"),
    **dict.fromkeys(["reinforcement-learning", "robotics"], "reinforcement-learning"),
    "graph-ml": "graph",
}

#: Modality of a model whose task is unknown.
UNKNOWN_MODALITY = "unknown"


def modality_of(pipeline_tag: str | None) -> str:
    """The modality of one task (``"other"`` for a task outside the map, ``"unknown"`` for none)."""
    if not pipeline_tag:
        return UNKNOWN_MODALITY
    return PIPELINE_MODALITY.get(pipeline_tag, "other")


def node_modality(nodes: pa.Table) -> np.ndarray:
    """Modality of every node: the ``modality`` column where set, else derived from ``pipeline_tag``.

    Returns
    -------
    numpy.ndarray of str (object), one per row of ``nodes``.
    """
    tags = nodes["pipeline_tag"]
    keys = pa.array(list(PIPELINE_MODALITY))
    vals = pa.array(list(PIPELINE_MODALITY.values()))
    idx = pc.index_in(tags, value_set=keys)
    derived = pc.take(vals, idx)
    derived = pc.if_else(pc.is_null(tags), UNKNOWN_MODALITY, pc.fill_null(derived, "other"))
    if "modality" in nodes.column_names:
        derived = pc.coalesce(nodes["modality"], derived)
    return np.asarray(derived.to_numpy(zero_copy_only=False), dtype=object)
