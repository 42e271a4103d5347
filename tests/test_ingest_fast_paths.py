"""The hub-stats reader's faster paths give what the plain paths give.

* The node query reads a file of few row groups as a pyarrow batch stream, so that every DuckDB
  thread works (``hubstats._parallel_scan``); the same file read through DuckDB's own Parquet scan
  must give the same records, evidence, metrics and issues.
* ``Atlas.build`` skips the distinct count of ids when they arrive sorted without repeats.
* The dtypes are listed once per row for the two rules that read them (``dtypes``, ``quantized``):
  both still follow their plain statements (docs/ingest.md).
"""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.atlas.assemble import _strictly_increasing
from modelatlas.errors import InputError
from modelatlas.ingest import hubstats
from modelatlas.ingest.batch import SourceBatch
from modelatlas.ingest.normalize import (
    QUANTIZED_DTYPES,
    QUANTIZED_NAME_PATTERN,
    QUANTIZED_TAGS,
)
from modelatlas.ingest.records import records_from_wire
from modelatlas.ingest.wire import WIRE_SCHEMA
from modelatlas.zoo.synthetic_hub import synthesize


def _awkward_hub(tmp_path, n: int = 3000):
    """A synthetic hub (one row group) with the rows a reader must report or repair: repeated and
    missing ids, odd ids, broken JSON, bad counts, odd tags, declared relations the files contradict."""
    path, _ = synthesize(n, 3, tmp_path / "clean.parquet")
    table = pq.read_table(path)
    cols = {name: table[name].to_pylist() for name in table.column_names}
    card = ('{"license": ["Apache 2.0"], "language": "EN", "base_model": ["a/b", "c/d"], '
            '"model-index": [{"results": [{"dataset": {"name": "d"}, "metrics": [{"name": "acc", "value": "85%"}]}]}]}')
    for i in range(0, n, 7):
        cols["tags"][i] = (cols["tags"][i] or []) + ["GGUF", "en", "License:MIT", "base_model:adapter:org/model",
                                                     "base_model:quantized:x/y", "dataset:squad", "a:b:c", "zh"]
        cols["siblings"][i] = [{"rfilename": "model.gguf"}] if i % 2 else [{"rfilename": "model.onnx"}]
    for i in range(3, n, 11):
        cols["cardData"][i] = card if i % 2 else '{"broken": '
    for i in range(5, n, 13):
        cols["safetensors"][i] = '{"parameters": {"I8": 5, "F16": null}, "total": -3}'
    for i, bad in zip(range(1, n, 401), ["", "  ", " pad/ded ", "noslash", "a/b/c", "Bad Id/x", "u/model-GGUF"]):
        cols["id"][i] = bad
    for i in range(0, n, 97):  # repeats, one of them without a time
        for values in cols.values():
            values.append(values[i])
        cols["lastModified"][-1] = None
    out = tmp_path / "awkward.parquet"
    pq.write_table(pa.table(cols, schema=table.schema), out)
    return out


def _read(path, monkeypatch, *, stream: bool):
    chosen = []
    real = hubstats._parallel_scan

    def spy(con, file, types):
        chosen.append(real(con, file, types) if stream else "raw")
        return chosen[-1]

    monkeypatch.setattr(hubstats, "_parallel_scan", spy)
    batch = hubstats.read_hub_stats(path)
    monkeypatch.setattr(hubstats, "_parallel_scan", real)
    return batch, chosen[0]


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.column_names])


def test_the_streamed_scan_reads_what_the_file_scan_reads(tmp_path, monkeypatch):
    path = _awkward_hub(tmp_path)
    streamed, how = _read(path, monkeypatch, stream=True)
    plain, _ = _read(path, monkeypatch, stream=False)
    assert how == "raw_stream"  # a one-row-group file is streamed (else the test compares a path with itself)
    assert streamed.records.equals(plain.records)
    assert streamed.evidence.equals(plain.evidence)
    assert _sorted(streamed.metrics).equals(_sorted(plain.metrics)) and plain.metrics.num_rows > 0
    assert streamed.issues == plain.issues
    kinds = {issue["kind"] for issue in plain.issues}
    assert {"duplicate_record", "missing_id", "odd_model_id", "broken_card_data", "mistyped_field",
            "relation_contradicted:only_gguf", "relation_contradicted:onnx_not_quantized"} <= kinds


def test_a_file_of_many_row_groups_is_read_by_duckdb_itself(tmp_path, monkeypatch):
    path, _ = synthesize(400, 1, tmp_path / "hub.parquet", card_text=False)
    many = tmp_path / "many.parquet"
    pq.write_table(pq.read_table(path), many, row_group_size=50)
    batch, how = _read(many, monkeypatch, stream=True)
    assert how == "raw" and batch.records.num_rows == 400


def test_the_stream_is_not_used_when_its_types_differ(tmp_path, monkeypatch):
    """INT96 times read as nanoseconds by pyarrow and as microseconds by DuckDB: the column
    expressions are built for DuckDB's types, so the file is read by DuckDB."""
    path, _ = synthesize(300, 2, tmp_path / "hub.parquet", card_text=False)
    int96 = tmp_path / "int96.parquet"
    pq.write_table(pq.read_table(path), int96, use_deprecated_int96_timestamps=True)
    batch, how = _read(int96, monkeypatch, stream=True)
    plain, _ = _read(int96, monkeypatch, stream=False)
    assert how == "raw"
    assert batch.records.equals(plain.records) and batch.records.num_rows == 300


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet="ab/Ä-", max_size=4)), max_size=8))
def test_sorted_distinct_ids_are_recognised(ids):
    expected = None not in ids and ids == sorted(set(ids))
    assert _strictly_increasing(pa.chunked_array([ids], pa.string())) == expected
    # and the same split into chunks
    assert _strictly_increasing(pa.chunked_array([ids[:3], ids[3:]], pa.string())) == expected


@pytest.mark.parametrize("chunks", [[], [[]]])
def test_no_ids_are_distinct(chunks):
    assert _strictly_increasing(pa.chunked_array(chunks, pa.string()))


_DTYPES = st.sampled_from([*QUANTIZED_DTYPES, "F16", "BF16", "F32", "F64", "I64", "BOOL"])
_TAGS = st.lists(st.one_of(st.sampled_from([*QUANTIZED_TAGS, "GGUF", "Int4", "base_model:quantized:a/b",
                                            "Base_Model:Quantized:c/d", "base_model:finetune:a/b", "en"]),
                           st.text(alphabet="abgiu4:-_ ", max_size=6)), max_size=5)
_MODEL = st.builds(lambda author, name: f"{author}/{name}", st.sampled_from(["org", "gguf-org", "x.y"]),
                   st.lists(st.sampled_from(["llama", "-", "_", ".", "gguf", "awq", "int4", "4bit", "q4_k", "Q5_K",
                                             "fp8", "w8a8", "Int8", "m"]), min_size=1, max_size=5).map("".join))


def _plain_quantized(model_id, tags, gguf, dtypes) -> bool:
    """docs/ingest.md, "quantized" (None: not known): a quantisation tag (whole tag, any case), a typed
    ``base_model:quantized:`` tag, a ``gguf`` block, a quantised dtype, or the model name."""
    lowered = [t.lower() for t in tags or []]
    if (gguf is not None or any(d in QUANTIZED_DTYPES for d in dtypes or [])
            or re.search(QUANTIZED_NAME_PATTERN, model_id.rsplit("/", 1)[-1].lower()) is not None):
        return True
    if tags is None:
        return None  # unknown tags: unknown, unless something else says so
    return any(t in QUANTIZED_TAGS for t in lowered) or any("base_model:quantized:" in t for t in lowered)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_MODEL, st.one_of(st.none(), _TAGS), st.booleans(),
                          st.one_of(st.none(), st.dictionaries(_DTYPES, st.one_of(st.none(), st.integers(0, 9)),
                                                               max_size=4))),
                min_size=1, max_size=6, unique_by=lambda row: row[0]))
def test_dtypes_and_quantized_follow_their_plain_rules(rows):
    """Tags are drawn without line breaks (the rule reads the tags as lines)."""
    table = pa.table({
        "id": [model_id for model_id, *_ in rows],
        "tags": [tags for _, tags, _, _ in rows],
        "gguf": ['{"total": 7}' if gguf else None for _, _, gguf, _ in rows],
        "safetensors": [None if params is None else json.dumps({"parameters": params}) for *_, params in rows],
    })
    wire = pa.table({name: table[name] if name in table.column_names else pa.nulls(len(rows), kind)
                     for name, kind in zip(WIRE_SCHEMA.names, WIRE_SCHEMA.types)}, schema=WIRE_SCHEMA)
    records = records_from_wire(wire, SourceBatch("test", "test")).records
    got = {r["id"]: (r["dtypes"], r["quantized"]) for r in records.select(["id", "dtypes", "quantized"]).to_pylist()}
    for model_id, tags, gguf, params in rows:
        dtypes = None if params is None else sorted(k for k, v in params.items() if v is not None)
        assert got[model_id] == (dtypes, _plain_quantized(model_id, tags, gguf if gguf else None, dtypes)), model_id


def test_damaged_data_read_through_the_stream_is_one_clear_error(tmp_path):
    """A damaged page that only the streamed node query reads (the card text) is an InputError
    naming the file and the damage, not a traceback or an internal name."""
    path, _ = synthesize(2000, 1, tmp_path / "hub.parquet")
    group = pq.ParquetFile(path).metadata.row_group(0)
    card = next(group.column(i) for i in range(group.num_columns) if group.column(i).path_in_schema == "card")
    data = bytearray(path.read_bytes())
    start = card.data_page_offset + card.total_compressed_size // 3
    data[start:start + 400] = bytes(b ^ 0x5A for b in data[start:start + 400])
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(bytes(data))
    with pytest.raises(InputError) as caught:
        hubstats.read_hub_stats(damaged)
    message = str(caught.value)
    assert "damaged.parquet" in message and "ZSTD" in message
    assert "Traceback" not in message and "raw_stream" not in message and "\n" not in message
