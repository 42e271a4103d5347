"""The Open LLM Leaderboard CSV as an ingest source: detected, scores kept, root hints not made edges."""

from __future__ import annotations

import csv

from modelatlas.ingest.detect import detect_format
from modelatlas.ingest.pipeline import ingest


def test_leaderboard_ingest_keeps_scores_and_only_direct_parents(shared_data, tmp_path):
    src = shared_data / "open-llm-leaderboard-v2.csv"
    with open(src, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    sample = rows[:300]
    path = tmp_path / "lb.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(sample)

    assert detect_format(str(path)) == "leaderboard"
    atlas, (batch,) = ingest([str(path)])
    names = {r["model_name"].strip() for r in sample}
    real = [r["id"] for r in atlas.nodes.to_pylist() if not r["placeholder"]]
    assert set(real) == names
    scored = {r["model_name"].strip() for r in sample if r["evaluations_ifeval_normalized_score"] not in ("", None)}
    assert set(atlas.metrics["id"].to_pylist()) == scored
    # Parents only for generation-1 models; deeper models keep their root as a hint, not an edge.
    gen1 = {r["model_name"].strip() for r in sample
            if r["metadata_generation"] == "1" and r["metadata_base_model"] not in ("", "Removed")}
    assert set(atlas.edges["child"].to_pylist()) <= gen1
    deeper = {r["model_name"].strip() for r in sample
              if r["metadata_generation"] not in ("", "0", "1") and r["metadata_base_model"] not in ("", "Removed")}
    hints = atlas.extras["leaderboard_hints"]
    assert deeper <= set(hints["id"].to_pylist())
    assert not deeper & set(atlas.edges["child"].to_pylist())
