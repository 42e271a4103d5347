"""Reader for the Open LLM Leaderboard v2 results CSV (``open-llm-leaderboard-v2.csv``).

Per row: a model (``model_name``), six benchmark scores, and lineage hints —
``metadata_base_model`` is the model's ROOT ancestor (``Removed`` when unknown; a ``" (Merge)"``
suffix marks merge lineages) and ``metadata_generation`` its depth below that root.

Returns node records, metric rows (:data:`~modelatlas.atlas.schema.METRIC_SCHEMA`: the normalised
score of each benchmark as ``leaderboard:<benchmark>``, and their average), parent claims for
generation-1 models (the root *is* the parent) and the hints themselves. Several rows of one model
(different precisions) stay several records, which :meth:`Atlas.build` merges into one node; their
scores are kept as separate metric rows and averaged by readers of the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.atlas.schema import EVIDENCE_SCHEMA, METRIC_SCHEMA
from modelatlas.errors import InputError
from modelatlas.ingest.atlas_csv import first_broken_line
from modelatlas.ingest.textfile import require_file

SOURCE = "open-llm-leaderboard-v2"
BENCHMARKS = ("ifeval", "bbh", "math", "gpqa", "musr", "mmlu_pro")
REQUIRED = ("model_name", "metadata_base_model", "metadata_generation",
            *(f"evaluations_{b}_normalized_score" for b in BENCHMARKS))
#: Provenance of the ancestor hint when it is used as an edge for models below generation 1.
ROOT_HINT_PROVENANCE = "predicted:leaderboard_root"


@dataclass
class LeaderboardData:
    """What :func:`read_leaderboard` returns.

    Attributes
    ----------
    records:
        Node records (id, license, params, created_at, likes, pipeline_tag, library_name,
        architectures, sources).
    metrics:
        Scores in :data:`METRIC_SCHEMA`.
    evidence:
        Parent claims for generation-1 models (root = parent), relation ``merge`` for merge lineages.
    hints:
        ``id, root, generation, merged`` for every model with a known root.
    problems:
        ``(model id, message)`` for each value left out: a negative count or parameter number, a
        score that is not a finite number (reported as ``mistyped_field``).
    """

    records: pa.Table
    metrics: pa.Table
    evidence: pa.Table
    hints: pa.Table
    problems: list[tuple[str, str]] = field(default_factory=list)


def read_leaderboard(path: str | Path) -> LeaderboardData:
    """Read the leaderboard CSV.

    Raises
    ------
    InputError
        Missing file or columns, naming the file and the column.
    """
    import pyarrow.csv as pcsv

    path = require_file(path)
    # pyarrow reads a quote left open across the line's end, pairing one model's name with the next
    # line's cells; a line must parse on its own (docs/reliability.md)
    broken = first_broken_line(path)
    if broken is not None:
        raise InputError(f"line {broken[0]} is not a CSV line on its own ({broken[1]}); an unterminated quote?",
                         path=str(path))
    try:
        table = pcsv.read_csv(path)
    except pa.ArrowInvalid as exc:
        raise InputError(f"not a readable CSV ({exc})", path=str(path)) from None
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; is this the Open LLM Leaderboard v2 export?",
                         path=str(path))
    ids = pc.utf8_trim_whitespace(table["model_name"].cast(pa.string()))
    keep = pc.and_(pc.is_valid(ids), pc.not_equal(ids, ""))
    table, ids = table.filter(keep), ids.filter(keep)
    n = table.num_rows

    problems: list[tuple[str, str]] = []

    def col(name, typ=None):
        if name not in table.column_names:
            return pa.nulls(n, typ or pa.string())
        c = table[name]
        if typ is None:
            return c
        try:
            return c.cast(typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"column {name} cannot be read as {typ}: {str(exc).splitlines()[0]}",
                             path=str(path)) from None

    def in_range(name, values, lowest, highest):
        """``values`` with those outside [lowest, highest] or not finite left empty, and reported."""
        as_float = pc.cast(values, pa.float64())
        bad = pc.and_(pc.is_valid(as_float), pc.invert(pc.and_(
            pc.is_finite(as_float), pc.and_(pc.greater_equal(as_float, lowest), pc.less_equal(as_float, highest)))))
        bad = pc.fill_null(bad, False)
        for model_id, value in zip(ids.filter(bad).to_pylist(), values.filter(bad).to_pylist()):
            problems.append((model_id, f"{path.name}: {name} of {model_id!r} is {value!r}, outside "
                                       f"{lowest:g}..{highest:g}; left empty"))
        return pc.if_else(bad, pa.scalar(None, values.type), values)

    params = in_range("metadata_params_billions", col("metadata_params_billions", pa.float64()), 0, 1e8)
    records = pa.table({
        "id": ids,
        "license": col("metadata_hub_license", pa.string()),
        "params": pc.cast(pc.round(pc.multiply(params, 1e9)), pa.int64()),
        "created_at": pc.cast(pc.cast(col("metadata_upload_date", pa.string()), pa.timestamp("s")),
                              pa.timestamp("us", tz="UTC")) if "metadata_upload_date" in table.column_names
        else pa.nulls(n, pa.timestamp("us", tz="UTC")),
        "likes": in_range("metadata_hub_hearts", col("metadata_hub_hearts", pa.int64()), 0, 2**53),
        "pipeline_tag": pa.array(["text-generation"] * n, pa.string()),
        "library_name": pa.array(["transformers"] * n, pa.string()),
        "architectures": pa.array([[a] if a else None for a in col("model_architecture").to_pylist()],
                                  pa.list_(pa.string())),
        "sources": pa.array([[SOURCE]] * n, pa.list_(pa.string())),
    })
    metric_parts = []
    for b in BENCHMARKS:
        v = in_range(f"evaluations_{b}_normalized_score", col(f"evaluations_{b}_normalized_score", pa.float64()),
                     -1e6, 1e6)
        ok = pc.is_valid(v)
        metric_parts.append(pa.table({"id": ids.filter(ok), "metric": pa.array([f"leaderboard:{b}"] * pc.sum(ok).as_py(),
                                      pa.string()), "value": v.filter(ok),
                                      "source": pa.array([SOURCE] * pc.sum(ok).as_py(), pa.string())}))
    if "model_average_score" in table.column_names:
        v = in_range("model_average_score", col("model_average_score", pa.float64()), -1e6, 1e6)
        ok = pc.is_valid(v)
        k = pc.sum(ok).as_py()
        metric_parts.append(pa.table({"id": ids.filter(ok), "metric": pa.array(["leaderboard:average"] * k),
                                      "value": v.filter(ok), "source": pa.array([SOURCE] * k)}))
    metrics = pa.concat_tables(metric_parts).cast(METRIC_SCHEMA)
    hints = _hints(ids, col("metadata_base_model", pa.string()), col("metadata_generation", pa.int64()),
                   col("features_is_merged", pa.bool_()))
    first_gen = hints.filter(pc.equal(hints["generation"], 1))
    m = first_gen.num_rows
    evidence = pa.table({
        "parent": first_gen["root"], "child": first_gen["id"],
        "relation": pc.if_else(first_gen["merged"], "merge", "unknown"),
        "relation_rule": pa.array(["none"] * m, pa.string()),
        "provenance": pa.array(["hub_card"] * m, pa.string()),
        "confidence": pa.array([0.9] * m, pa.float64()), "source": pa.array([SOURCE] * m, pa.string()),
    }).cast(EVIDENCE_SCHEMA)
    return LeaderboardData(records, metrics, evidence, hints, problems)


def _hints(ids, base, generation, merged) -> pa.Table:
    text = pc.fill_null(pc.utf8_trim_whitespace(base), "")
    is_merge = pc.match_substring(text, " (Merge)")
    root = pc.utf8_trim_whitespace(pc.replace_substring(text, " (Merge)", ""))
    valid = pc.and_(pc.and_(pc.not_equal(root, ""), pc.not_equal(root, "Removed")), pc.not_equal(root, ids))
    valid = pc.and_(valid, pc.greater(pc.fill_null(generation, 0), 0))
    hints = pa.table({"id": ids, "root": root, "generation": generation,
                      "merged": pc.or_(pc.fill_null(merged, False), is_merge)}).filter(valid)
    if hints.num_rows == 0:
        return hints
    return hints.group_by("id", use_threads=False).aggregate(
        [("root", "first"), ("generation", "min"), ("merged", "max")]).rename_columns(
        ["id", "root", "generation", "merged"])


def root_hint_evidence(hints: pa.Table, known_children: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Parent claims ``root -> model`` for models below generation 1 that no lineage source gives a
    parent (``known_children``): provenance :data:`ROOT_HINT_PROVENANCE`, relation ``unknown`` and
    confidence ``1 / generation``. Such an edge shortens the true path (the root is an ancestor,
    not the parent); graph-kNN distances through it are understated, which the docs say."""
    deep = hints.filter(pc.greater(hints["generation"], 1))
    deep = deep.filter(pc.invert(pc.is_in(deep["id"], value_set=pa.array(known_children, pa.string())
                                          if not isinstance(known_children, pa.ChunkedArray)
                                          else known_children.combine_chunks())))
    m = deep.num_rows
    gen = deep["generation"].to_numpy(zero_copy_only=False).astype(np.float64)
    return pa.table({
        "parent": deep["root"], "child": deep["id"], "relation": pa.array(["unknown"] * m, pa.string()),
        "relation_rule": pa.array(["predicted"] * m, pa.string()),
        "provenance": pa.array([ROOT_HINT_PROVENANCE] * m, pa.string()),
        "confidence": pa.array(1.0 / np.maximum(gen, 1), pa.float64()),
        "source": pa.array([SOURCE] * m, pa.string()),
    }).cast(EVIDENCE_SCHEMA)


def read_leaderboard_batch(path: str | Path):
    """The leaderboard as one ingest source (``modelatlas ingest``).

    Records, scores and the generation-1 parent claims enter the atlas; the deeper root hints
    name an *ancestor*, not a parent, so they are kept as the ``leaderboard_hints`` table instead
    of being turned into edges (:func:`leaderboard_atlas` uses them where no lineage is known).
    """
    from modelatlas.ingest.batch import SourceBatch

    data = read_leaderboard(path)
    batch = SourceBatch(Path(path).name, "leaderboard", records=data.records, evidence=data.evidence,
                        metrics=data.metrics, extras={"leaderboard_hints": data.hints})
    batch.stats["models_with_root_hint"] = data.hints.num_rows
    for model_id, message in data.problems:
        batch.issue("mistyped_field", model_id, message)
    return batch


def leaderboard_atlas(path: str | Path, lineage=None):
    """An atlas of the leaderboard's models and scores, combined with a lineage atlas when given.

    Parameters
    ----------
    path:
        The leaderboard CSV.
    lineage:
        An :class:`~modelatlas.atlas.atlas.Atlas` from lineage sources (Hub trees, Model Atlas CSVs).
        Its edges win; root hints fill in only models it gives no parent.
    """
    from modelatlas.atlas.atlas import Atlas

    data = read_leaderboard(path)
    if lineage is None:
        known = data.evidence["child"]
        atlas = Atlas.build(data.records, pa.concat_tables([data.evidence, root_hint_evidence(data.hints, known)]),
                            metrics=data.metrics)
    else:
        known = pa.concat_arrays([lineage.edges["child"].combine_chunks(), data.evidence["child"].combine_chunks()])
        atlas = lineage.merged_with(data.records, pa.concat_tables(
            [data.evidence, root_hint_evidence(data.hints, known)]), metrics=data.metrics)
    return atlas
