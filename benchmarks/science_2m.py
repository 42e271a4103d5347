"""Science on the atlas at scale: every meta-ML statistic on a 2,000,000-model atlas.

Builds a Hub-like synthetic atlas (power-law families, deep language trees, shallow vision trees,
quantised leaves, ~1% merges, inherited licences), then times

* ``compute_statistics`` (all tables of ``modelatlas stats``), per statistic and in total;
* ``top`` by sub-tree downloads per task;
* licence forensics over the whole atlas;
* graph-kNN search (k = 6 nearest labelled of every node) for imputation;

and, as a baseline measured in the same run, the same relation-mix / quantised-leaf /
parent-older numbers in DuckDB SQL. Prints medians of ``--repeat`` runs.

Usage (from the repository root): PYTHONPATH=. python benchmarks/science_2m.py [--nodes 2000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import statistics
import time
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from modelatlas import Atlas
from modelatlas.analytics.impact import top_models
from modelatlas.analytics.statistics import STATISTICS, compute_statistics
from modelatlas.discover.licence_forensics import licence_drift
from modelatlas.impute.nearest_labelled import k_nearest_labelled

MODALITY_TASKS = {"language": ["text-generation", "text-classification", "fill-mask"],
                  "vision": ["image-to-image", "image-classification"],
                  "vision-language": ["image-text-to-text"], "audio": ["automatic-speech-recognition"]}
LICENCES = ["apache-2.0", "mit", "llama3", "gemma", "openrail", "cc-by-nc-4.0", "other", None]


def synthetic_atlas(n: int, seed: int = 0) -> Atlas:
    """A Hub-like atlas of ``n`` models (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_roots = max(1, n // 4)
    parent = np.full(n, -1, dtype=np.int64)
    idx = np.arange(n_roots, n)
    # Preferential attachment to early (popular) models: parent index ~ i * U^3.
    parent[idx] = np.minimum((idx * rng.random(idx.size) ** 3).astype(np.int64), idx - 1)
    root = np.where(parent < 0, np.arange(n), parent)
    while True:
        nxt = np.where(parent[root] >= 0, parent[root], root)
        if np.array_equal(nxt, root):
            break
        root = nxt
    mods = np.array(list(MODALITY_TASKS))
    root_mod = rng.choice(mods, n, p=[0.55, 0.3, 0.08, 0.07])
    modality = root_mod[root]
    # Vision families stay shallow: re-attach most vision children straight to their root.
    vision = (modality == "vision") & (parent >= 0)
    flat = vision & (rng.random(n) < 0.97)
    parent[flat] = root[flat]
    children = np.bincount(parent[parent >= 0], minlength=n)
    leaf = children == 0
    relation = np.where(rng.random(n) < np.where(modality == "vision", 0.7, 0.15), "adapter", "finetune")
    quant = (parent >= 0) & leaf & (rng.random(n) < np.where(modality == "vision", 0.001, 0.25))
    relation[quant] = "quantized"
    tasks = np.array([MODALITY_TASKS[m][0] for m in modality], dtype=object)
    pick = rng.random(n) < 0.2
    tasks[pick & (modality == "language")] = "text-classification"
    licence = np.array(LICENCES, dtype=object)[rng.integers(0, len(LICENCES), n)]
    inherit = (parent >= 0) & (rng.random(n) < 0.8)
    licence[inherit] = licence[root[inherit]]
    start = datetime(2022, 3, 2, tzinfo=timezone.utc).timestamp()
    created = start + np.arange(n) * (9.5e7 / n) + rng.normal(0, 3e4, n)
    ids = np.array([f"org{i % 50_000}/model-{i}" for i in range(n)], dtype=object)
    records = pa.table({
        "id": ids,
        "created_at": pa.array((created * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC")),
        "downloads": np.floor(rng.lognormal(2, 2.5, n)).astype(np.int64),
        "pipeline_tag": pa.array(tasks.tolist(), pa.string()),
        "license": pa.array(licence.tolist(), pa.string()),
        "quantized": quant,
        "card_present": rng.random(n) < 0.45,
    })
    child = np.flatnonzero(parent >= 0)
    p = parent[child]
    rel = relation[child]
    merges = child[rng.random(child.size) < 0.01]
    extra = np.maximum(merges - 1 - rng.integers(0, 50, merges.size), 0)
    ok = extra != parent[merges]
    merges, extra = merges[ok], extra[ok]
    rel = np.where(np.isin(child, merges), "merge", rel)
    all_child = np.concatenate([child, merges])
    all_parent = np.concatenate([p, extra])
    all_rel = np.concatenate([rel, np.full(merges.size, "merge")])
    m = all_child.size
    evidence = pa.table({"parent": ids[all_parent], "child": ids[all_child], "relation": all_rel,
                         "relation_rule": np.full(m, "typed_tag"), "provenance": np.full(m, "hub_tag"),
                         "confidence": np.ones(m), "source": np.full(m, "synthetic")})
    return Atlas.build(records, evidence)


def duckdb_baseline(atlas: Atlas) -> None:
    import duckdb

    con = duckdb.connect()
    con.register("nodes", atlas.nodes.select(["id", "created_at", "quantized", "pipeline_tag"]))
    con.register("edges", atlas.edges.select(["parent", "child", "relation"]))
    con.sql("""SELECT n.pipeline_tag, e.relation, count(*) FROM edges e JOIN nodes n ON n.id = e.child
               GROUP BY ALL""").fetchall()
    con.sql("""SELECT avg(CASE WHEN p.created_at < c.created_at THEN 1 ELSE 0 END)
               FROM edges e JOIN nodes p ON p.id = e.parent JOIN nodes c ON c.id = e.child""").fetchall()
    con.sql("""SELECT avg(CASE WHEN e2.parent IS NULL THEN 1 ELSE 0 END) FROM nodes n
               LEFT JOIN (SELECT DISTINCT parent FROM edges) e2 ON e2.parent = n.id WHERE n.quantized""").fetchall()
    con.close()


CPU: list[float] = []


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median wall seconds of ``repeat`` runs (the median CPU seconds go to :data:`CPU`)."""
    times, cpu, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU.append(statistics.median(cpu))
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--report", help="Also write the Markdown/HTML report of the synthetic atlas here.")
    args = ap.parse_args()
    t0 = time.perf_counter()
    atlas = synthetic_atlas(args.nodes)
    build = time.perf_counter() - t0
    print(f"synthetic atlas: {atlas.num_nodes:,} nodes, {atlas.num_edges:,} edges, built in {build:.1f} s")
    rows = []
    # A copy of the atlas object per run: no cached graph or derived-data layer (atlas.facts).
    total, stats = timed(lambda: compute_statistics(dataclasses.replace(atlas)), args.repeat)
    rows.append(("all statistics (modelatlas stats), cold caches incl. the graph", total, CPU[-1]))
    facts = atlas.facts
    for fn in STATISTICS:
        rows.append((f"  {fn.__name__} (graph arrays cached)", timed(lambda: fn(facts), args.repeat)[0], CPU[-1]))
    rows.append(("top 20 per task by sub_tree_downloads", timed(
        lambda: top_models(facts, per="task", limit=20), args.repeat)[0], CPU[-1]))
    rows.append(("licence forensics, whole atlas",
                 timed(lambda: licence_drift(facts, limit=100), args.repeat)[0], CPU[-1]))
    labelled = np.random.default_rng(1).random(atlas.num_nodes) < 0.01
    rows.append(("graph kNN search, k = 6, 1% labelled", timed(
        lambda: k_nearest_labelled(atlas.graph, labelled, 6), args.repeat)[0], CPU[-1]))
    base = timed(lambda: duckdb_baseline(atlas), args.repeat)[0]
    rows.append(("baseline: 3 statistics in DuckDB SQL", base, CPU[-1]))
    three, three_cpu = 0.0, 0.0
    for fn in STATISTICS[:3]:
        three += timed(lambda: fn(facts), args.repeat)[0]
        three_cpu += CPU[-1]
    rows.append(("ours: the same 3 statistics (numpy)", three, three_cpu))
    print(f"\n| step | median wall s ({args.repeat} runs) | median CPU s |\n|---|---|---|")
    for name, sec, cpu in rows:
        print(f"| {name} | {sec:.2f} | {cpu:.2f} |")
    print(f"\nours / DuckDB baseline for the 3 shared statistics: {three / base:.2f}x the time")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if args.report:
        from modelatlas.analytics.report import write_report

        t0 = time.perf_counter()
        write_report(atlas, args.report, title=f"Synthetic atlas, {atlas.num_nodes:,} models")
        print(f"report written to {args.report} in {time.perf_counter() - t0:.1f} s")
    head = {r["statistic"]: r["ours"] for r in stats.headline}
    print("\nheadline on the synthetic atlas:")
    for k, v in head.items():
        print(f"  {k}: {v:.4f}")


if __name__ == "__main__":
    main()
