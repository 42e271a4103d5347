"""Benchmark: reading a hub-stats-style Parquet of N rows (real hf-trees records, replicated).

Builds ``models.parquet`` from the real records of ``../shared/data/hf-trees.jsonl.gz`` (ids made
unique, each copy's ``base_model`` tags pointing at the same copy's parents so the lineage stays
realistic), then times :func:`modelatlas.ingest.hubstats.read_hub_stats` against the
straightforward way (pandas + ``json.loads`` / ``yaml``-free per-row parsing of the same columns)
on a size the baseline can finish. Prints a table; run it once, it is not a test.

Usage: python benchmarks/ingest_hub_stats.py [--rows 2000000] [--baseline-rows 100000] [--card]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from hub_records import hub_stats_table, load_records  # noqa: E402

from modelatlas.ingest.hubstats import read_hub_stats  # noqa: E402


def build(rows: int, out: Path, with_card: bool) -> None:
    recs = [r for r in load_records(ROOT.parent / "shared" / "data" / "hf-trees.jsonl.gz")
            if "created_at" in r["metadata"]]
    base = hub_stats_table(recs)
    if not with_card:
        base = base.drop_columns(["card"])
    writer = pq.ParquetWriter(out, base.schema)
    done, copy = 0, 0
    while done < rows:
        part = base.slice(0, min(base.num_rows, rows - done))
        suffix = f"-c{copy}"
        ids = pc.binary_join_element_wise(part["id"], pa.scalar(suffix), "")
        tags = part["tags"].to_pylist()
        tags = [[t + suffix if t.startswith("base_model:") else t for t in ts] for ts in tags]
        part = part.set_column(0, "id", ids).set_column(part.schema.get_field_index("tags"), "tags",
                                                         pa.array(tags, pa.list_(pa.string())))
        writer.write_table(part)
        done += part.num_rows
        copy += 1
    writer.close()


def baseline(path: Path) -> int:
    """The straightforward way: pandas rows, json.loads per cell, Python tag splitting."""
    import pandas as pd

    df = pq.read_table(path).to_pandas()
    out = []
    for row in df.itertuples(index=False):
        card = json.loads(row.cardData) if isinstance(row.cardData, str) else {}
        st = json.loads(row.safetensors) if isinstance(row.safetensors, str) else {}
        tags = list(row.tags) if row.tags is not None else []
        parents = [t.split(":")[-1] for t in tags if t.startswith("base_model:")]
        lic = next((t[8:] for t in tags if t.startswith("license:")), card.get("license"))
        out.append((row.id, lic, st.get("total"), parents))
    return len(pd.DataFrame(out))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn, *args):
    """Wall seconds, CPU seconds (all threads; independent of other load on the machine), result."""
    t, c = time.perf_counter(), _cpu()
    value = fn(*args)
    return time.perf_counter() - t, _cpu() - c, value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--baseline-rows", type=int, default=100_000)
    ap.add_argument("--card", action="store_true", help="include the README text column")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "small.parquet", Path(tmp) / "big.parquet"
        build(args.baseline_rows, small, args.card)
        read_hub_stats(small)  # warm-up: DuckDB's JSON extension, imports
        t_base, c_base, _ = timed(baseline, small)
        t_small, c_small, _ = timed(read_hub_stats, small)
        build(args.rows, big, args.card)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        t_big, c_big, batch = timed(read_hub_stats, big)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| stage | rows | wall s | CPU s | rows/s (wall) |")
    print("|---|---:|---:|---:|---:|")
    for name, rows, t, c in [("baseline pandas + json.loads", args.baseline_rows, t_base, c_base),
                             ("read_hub_stats", args.baseline_rows, t_small, c_small),
                             ("read_hub_stats", args.rows, t_big, c_big)]:
        print(f"| {name} | {rows:,} | {t:.2f} | {c:.2f} | {rows / t:,.0f} |")
    print(f"\nCPU-time ratio baseline / read_hub_stats at {args.baseline_rows:,} rows: {c_base / c_small:.1f}x "
          f"(the baseline reads only id, licence, params and parent tags); records {batch.records.num_rows:,}, "
          f"evidence {batch.evidence.num_rows:,}; peak RSS {peak:.2f} GiB (before the big read {rss_before:.2f} GiB)")


if __name__ == "__main__":
    main()
