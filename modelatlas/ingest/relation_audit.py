"""Relation audit: Hub-declared relations that the repository's own file list contradicts.

A relation is *declared* by a typed ``base_model:<relation>:<id>`` tag or a card's
``base_model_relation`` (relation rules ``typed_tag`` and ``card_relation``); relations we infer
(several bases named: merge) are not audited. The repository's file list (``siblings``) says what
it holds. A declaration is flagged when (docs/ingest.md, "Relation audit"):

* ``only_gguf``: it says ``finetune`` or ``merge`` but every weights file is GGUF / GGML — a
  llama.cpp conversion, i.e. a quantisation (GGUF LoRA adapters are declared ``adapter``, not flagged);
* ``onnx_not_quantized``: it says ``quantized`` but every weights file is ONNX and none is named as
  a quantised export (``quantized``, ``int8``, ``uint8``, ``int4``, ``q4``, ``q8``, ``bnb4``,
  ``qdq``, ...) — an export (e.g. for transformers.js), not a quantisation;
* ``no_adapter_files``: it says ``adapter`` but there is no ``adapter_config.json``, no
  ``adapter_model.*`` and no weights file named as a LoRA / adapter.

Repositories whose file list is unknown are not audited. Flags are stored as atlas issues of kind
``relation_contradicted:<reason>`` (``where`` = the model, the message names the claim, its source
and the files), so that they survive re-ingest like every reader issue; ``info``, ``lineage``,
``stats`` and the web panel read them with :func:`relation_flags`.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from modelatlas.ingest.weights_files import WEIGHT_EXTENSIONS

KIND = "relation_contradicted"
REASONS = ("only_gguf", "onnx_not_quantized", "no_adapter_files")
#: File names of ONNX exports that hold quantised weights.
QUANTIZED_ONNX_NAMES = r"(quant|int8|uint8|int4|uint4|q4|q8|bnb4|qdq|4bit|8bit)"
#: Names shown per flag.
SHOW_FILES = 3


def _weights_sql(files: str) -> str:
    pattern = r"\.(" + "|".join(ext[1:] for ext in WEIGHT_EXTENSIONS) + r")$"
    return f"list_filter({files}, lambda f: regexp_matches(lower(f), '{pattern}'))"


def audit_sql() -> str:
    """Flags as rows ``(child, reason, message)`` from tables ``_audit_claims`` (``child, parent,
    relation, relation_rule, provenance``) and ``_audit_files`` (``id, siblings``)."""
    base = r"lower(regexp_replace(f, '^.*/', ''))"
    only = lambda w, exts: (f"len({w}) > 0 AND len(list_filter({w}, lambda f: NOT regexp_matches(lower(f), "  # noqa: E731
                            f"'\\.({exts})$'))) = 0")
    show = (f"array_to_string(list_slice(w, 1, {SHOW_FILES}), ', ') || "
            f"CASE WHEN len(w) > {SHOW_FILES} THEN ', ...' ELSE '' END")
    claim = "c.child || ' declares ' || c.relation || ' of ' || c.parent || ' (' || c.declared_by || ')'"
    return f"""
    WITH declared AS (
        SELECT child, parent, relation,
               -- sorted, so that the message (and with it the issue) is the same on every ingest
               array_to_string(list_sort(list_distinct(list(
                   CASE WHEN relation_rule = 'typed_tag' THEN 'base_model:' || relation || ' tag'
                        ELSE 'card base_model_relation' END))), ' and ') AS declared_by
        FROM _audit_claims WHERE relation_rule IN ('typed_tag', 'card_relation')
        GROUP BY child, parent, relation),
    j AS (
        SELECT c.*, f.siblings AS s, {_weights_sql('f.siblings')} AS w
        FROM declared c JOIN _audit_files f ON f.id = c.child
        WHERE f.siblings IS NOT NULL)
    SELECT child, 'only_gguf' AS reason,
           {claim} || ' but its weights are only GGUF/GGML files (' || {show} || '): a quantised '
           || 'conversion, not a ' || (CASE WHEN relation = 'merge' THEN 'merge' ELSE 'fine-tune' END) AS message
    FROM j c WHERE relation IN ('finetune', 'merge') AND {only('w', 'gguf|ggml')}
    UNION ALL
    SELECT child, 'onnx_not_quantized',
           {claim} || ' but its weights are only ONNX files not named as quantised (' || {show} || '): an export, '
           || 'not a quantisation'
    FROM j c WHERE relation = 'quantized' AND {only('w', 'onnx')}
          AND len(list_filter(w, lambda f: regexp_matches(lower(f), '{QUANTIZED_ONNX_NAMES}'))) = 0
    UNION ALL
    SELECT child, 'no_adapter_files',
           {claim} || ' but the repository holds no adapter files (no adapter_config.json, adapter_model.*; '
           || CASE WHEN len(w) > 0 THEN 'weights: ' || {show} ELSE 'no weights at all' END || ')'
    FROM j c WHERE relation = 'adapter'
          AND len(list_filter(s, lambda f: {base} = 'adapter_config.json' OR starts_with({base}, 'adapter_model.')
                                           OR regexp_matches({base}, '(lora|adapter)'))) = 0
    ORDER BY child, reason, message"""


def audit_relations(con: duckdb.DuckDBPyConnection, claims: pa.Table, batch, *, files: str) -> int:
    """Add one issue per contradicted declaration to ``batch``; return how many.

    Parameters
    ----------
    con:
        A connection where ``files`` can run.
    claims:
        The parent claims (``child, parent, relation, relation_rule, provenance``).
    batch:
        The :class:`~modelatlas.ingest.batch.SourceBatch` receiving the issues.
    files:
        A query of the models' file lists (``id, siblings``), at least those of the claims'
        children (the reader passes the lists its node query carried along).
    """
    declared = claims.filter(pc.is_in(claims["relation_rule"], pa.array(["typed_tag", "card_relation"])))
    if not declared.num_rows:
        return 0
    con.register("_audit_claims", declared.select(["child", "parent", "relation", "relation_rule", "provenance"]))
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW _audit_files AS {files}")
        rows = con.sql(audit_sql()).fetchall()
    finally:
        con.execute("DROP VIEW IF EXISTS _audit_files")
        con.unregister("_audit_claims")
    for child, reason, message in dict.fromkeys(rows):
        batch.issue(f"{KIND}:{reason}", child, message)
    return len(rows)


def relation_flags(issues: pa.Table, model_id: str | None = None) -> list[dict]:
    """The audit's flags stored in an atlas's issues: ``{model, reason, message}`` per flag.

    Parameters
    ----------
    issues:
        ``Atlas.issues``.
    model_id:
        Only this model's flags (all when None).
    """
    mask = pc.starts_with(issues["kind"], KIND + ":")
    if model_id is not None:
        mask = pc.and_(mask, pc.equal(issues["where"], model_id))
    rows = issues.filter(mask).to_pylist()
    seen, out = set(), []
    for r in rows:
        key = (r["where"], r["kind"], r["message"])
        if key not in seen:  # the same claim read from two sources is one flag
            seen.add(key)
            out.append({"id": r["where"], "reason": r["kind"][len(KIND) + 1:], "message": r["message"]})
    return out


def flag_counts(issues: pa.Table) -> dict[str, int]:
    """Flags per reason (every reason listed, zeros included), and ``models`` flagged."""
    flags = relation_flags(issues)
    out = {reason: sum(1 for f in flags if f["reason"] == reason) for reason in REASONS}
    out["models"] = len({f["id"] for f in flags})
    return out
