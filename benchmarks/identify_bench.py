"""``identify`` benchmark: time per query and recall of the right parent against a reference store.

Usage (from the repository root)::

    python benchmarks/identify_bench.py [--synthetic 10000] [--queries 200] [--zoo ZOO_DIR ...] [--out DIR]

(1) Synthetic: a store of ``--synthetic`` fingerprints (``chart/synthetic.py`` families, 4 layers of
32 sampled neurons x 32 columns = 4,096 dimensions, every pattern), each with its documented parents
and upload time. ``--queries`` non-root models are identified against the store holding all the
others (leave-one-out: the query's own row is excluded). Reports the store write, the search-index
build (HNSW over 256-d projections, cached beside the store), the time per query (in process:
metadata read, approximate search, exact re-rank on the candidates' rows, ``auto``'s rule cascade)
and one query through the command line (a fresh process, imports included; wall and CPU seconds,
since the wall time on a shared machine says more about the neighbours than about the query).

(0) Storage: reading 48 scattered fingerprints of a 10,000 x 4,096 store with the vectors as zstd
``list<float>``, uncompressed ``list<float>`` and raw float32 bytes (the store's choice).

(2) Real: each ``--zoo`` (trained models with known lineage, e.g. ``modelatlas zoo build tiny``) is
put into a store with ``index add`` semantics (models read once, the manifest's times, no
documented parents: the references' lineage is not told), then every non-root model is identified
against all the others; recall overall and per pattern. A model counts as right when the
predicted parent set equals the true one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from markdown_table import print_table as _table  # noqa: E402

from modelatlas.chart.identify import identify  # noqa: E402
from modelatlas.weights.fingerprint import Fingerprints  # noqa: E402
from modelatlas.weights.store import FingerprintStore, ModelMeta  # noqa: E402


def _children_cpu() -> float:
    import resource

    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def synthetic(n: int, queries: int, out: Path) -> None:
    from modelatlas.chart.synthetic import synthetic_zoo

    z = synthetic_zoo(n, n_components=max(4, n // 50), layers=4, rows=32, cols=32, seed=11)
    m, truth = z.models, z.truth
    d = m.vectors.shape[1]
    fp = Fingerprints(ids=list(m.ids), signature_key="5" * 16, layer_names=[b.name for b in m.layers],
                      vectors=m.vectors, kurtosis=None, content_hashes=list(m.content_hashes),
                      quantized=m.quantized, bytes_read=np.zeros(n, np.int64), layer_rows=[np.arange(32)] * 4,
                      layer_offsets=np.arange(5, dtype=np.int64) * (d // 4), n_neurons=32)
    metas = {m.ids[i]: ModelMeta(m.ids[i], created_at=float(m.created_at[i]), created_at_source="manifest",
                                 documented_parents=tuple(m.ids[p] for p in truth.parents[i])) for i in range(n)}
    path = out / f"synthetic-{n}.parquet"
    t0 = time.perf_counter()
    store = FingerprintStore.empty(path)
    store.add(fp, metas)
    store.save()
    t_store = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    pool = [i for i, ps in enumerate(truth.parents) if ps]
    picked = rng.choice(pool, size=min(queries, len(pool)), replace=False)
    t0 = time.perf_counter()
    identify(m.ids[int(picked[0])], path, rebuild=True)
    t_build = time.perf_counter() - t0
    times, right, by_pattern = [], 0, {}
    for i in picked.tolist():
        t0 = time.perf_counter()
        answer = identify(m.ids[i], path)
        times.append(time.perf_counter() - t0)
        ok = sorted(answer.parents) == sorted(m.ids[p] for p in truth.parents[i])
        right += ok
        hit = by_pattern.setdefault(truth.pattern[i], [0, 0])
        hit[0] += ok
        hit[1] += 1
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "modelatlas.cli", "identify", m.ids[int(picked[1])], "--index", str(path),
                    "--json"], check=True, capture_output=True)
    t_cli = time.perf_counter() - t0
    cpu_cli = _children_cpu() - cpu0
    t = np.array(times)
    _table(f"identify against {n:,} synthetic fingerprints (d = {d:,}), {len(picked)} leave-one-out queries",
           ["store write s", "index build + 1st query s", "query median s", "query p95 s", "CLI query s (CPU s)",
            "recall of the right parent"],
           [[f"{t_store:.2f}", f"{t_build:.2f}", f"{np.median(t):.3f}", f"{np.percentile(t, 95):.3f}",
             f"{t_cli:.2f} ({cpu_cli:.2f})", f"{right / len(picked):.1%} ({right}/{len(picked)})"]])
    _table("recall per pattern (synthetic)", ["pattern", "right", "queries"],
           [[p, f"{a / b:.1%}", b] for p, (a, b) in sorted(by_pattern.items())])


def storage_formats(out: Path, n: int = 10000, d: int = 4096, rows: int = 48) -> None:
    """Why the store keeps vectors as raw bytes: reading ``rows`` scattered fingerprints of an
    ``n x d`` store (row groups of 64 rows) as zstd ``list<float>``, uncompressed ``list<float>``, and
    uncompressed raw float32 bytes (what the store writes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    lists = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * d), pa.array(x.reshape(-1)))
    raw = pa.array([r.tobytes() for r in x], pa.binary())
    picked = np.random.default_rng(1).choice(n, rows, replace=False)
    groups = sorted(set((picked // 64).tolist()))
    table = []
    for name, column, compression in (("list<float>, zstd", lists, "zstd"), ("list<float>, none", lists, "none"),
                                      ("raw float32 bytes, none", raw, "none")):
        path = out / "format.parquet"
        pq.write_table(pa.table({"v": column}), path, compression=compression, row_group_size=64)
        t0 = time.perf_counter()
        pq.ParquetFile(path).read_row_groups(groups, columns=["v"])
        table.append([name, f"{time.perf_counter() - t0:.3f}"])
        path.unlink()
    _table(f"reading {rows} scattered fingerprints of a {n:,} x {d:,} store", ["vector column", "seconds"], table)


def zoo(location: Path, out: Path) -> None:
    from modelatlas.weights.discover import discover_models
    from modelatlas.weights.store import fingerprint_into_store
    from modelatlas.zoo.manifest import load_manifest

    manifest = load_manifest(location, check_files=False)
    found = discover_models([location])
    for f in found.models:  # the references' lineage is not told: it is what is measured
        f.meta.documented_parents, f.meta.declared_relation = (), None
    path = out / f"{location.name}.parquet"
    path.unlink(missing_ok=True)
    store = FingerprintStore.empty(path)
    t0 = time.perf_counter()
    fingerprint_into_store([(f.weights, f.meta) for f in found.models], store)
    store.save()
    t_store = time.perf_counter() - t0
    times, right, total, by_pattern = [], 0, 0, {}
    for model in manifest.models:
        if not model.parents or model.id not in store.ids:
            continue
        t0 = time.perf_counter()
        answer = identify(model.id, path)
        times.append(time.perf_counter() - t0)
        ok = sorted(answer.parents) == sorted(model.parents)
        right += ok
        total += 1
        hit = by_pattern.setdefault(model.pattern or "-", [0, 0])
        hit[0] += ok
        hit[1] += 1
    t = np.array(times)
    _table(f"identify on the {location.name} zoo ({len(store)} trained models), every non-root model against all "
           "the others", ["fingerprint + store s", "query median s", "recall of the right parent"],
           [[f"{t_store:.1f}", f"{np.median(t):.3f}", f"{right / total:.1%} ({right}/{total})"]])
    _table(f"recall per pattern ({location.name})", ["pattern", "right", "queries"],
           [[p, f"{a / b:.1%}", b] for p, (a, b) in sorted(by_pattern.items())])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--zoo", type=Path, action="append", default=[])
    parser.add_argument("--out", type=Path, default=None, help="Folder for the stores (default: a temporary one).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        storage_formats(out)
        if args.synthetic:
            synthetic(args.synthetic, args.queries, out)
        for location in args.zoo:
            zoo(location, out)


if __name__ == "__main__":
    main()
