"""Approximate-neighbour libraries side by side, as charting uses them (docs/BENCHMARKS.md).

Charting and ``identify`` need an HNSW index that installs from a wheel on every platform, builds
deterministically single-threaded, grows, and saves to disk. hnswlib has no wheel on the package
index (a fresh machine without a C++ compiler cannot install it); this script measures the
candidates against it on the same vectors, in the same run:

* vectors: a forest of model fingerprints (each child its parent plus a step, steps of varied
  size, as fine-tuning trees are) and, as a control, an isotropic Gaussian cloud;
* build time (all vectors, ``--threads``), query time (every vector, k = 10), recall@10 against
  exact neighbours (blocked float64 products), and whether two single-threaded builds give the
  same neighbours (determinism).

Each library runs with the same HNSW settings (M = 16, ef_construction = 200, ef = 128).
Run: ``python benchmarks/ann_libraries.py [--n 50000 --dim 128]``; a library that is not installed
is skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from markdown_table import print_table  # noqa: E402

M, EF_CONSTRUCTION, EF, K = 16, 200, 128, 10


def fingerprint_forest(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    roots = max(1, n // 500)
    x = np.empty((n, dim), np.float32)
    x[:roots] = rng.normal(size=(roots, dim))
    parent = (np.arange(roots, n) * rng.random(n - roots) ** 2).astype(np.int64)
    step = rng.lognormal(-3, 1, size=(n - roots, 1))
    for i in range(roots, n):  # children after parents, so one pass suffices
        x[i] = x[parent[i - roots]] + step[i - roots] * rng.normal(size=dim)
    return x


def exact_neighbours(x: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    sq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    out = np.empty((len(x), k), np.int64)
    for s in range(0, len(x), block):
        d = sq[s:s + block, None] + sq[None, :] - 2.0 * (x[s:s + block].astype(np.float64) @ x.T.astype(np.float64))
        out[s:s + block] = np.argsort(d, axis=1)[:, :k]
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist())]))


def run_hnswlib(x, threads):
    import hnswlib

    index = hnswlib.Index(space="l2", dim=x.shape[1])
    index.init_index(max_elements=len(x), ef_construction=EF_CONSTRUCTION, M=M, random_seed=0)
    t = time.perf_counter()
    index.add_items(x, np.arange(len(x)), num_threads=threads)
    built = time.perf_counter() - t
    index.set_ef(EF)
    t = time.perf_counter()
    found, _ = index.knn_query(x, k=K, num_threads=threads)
    return built, time.perf_counter() - t, found.astype(np.int64)


def run_voyager(x, threads):
    from voyager import Index, Space

    index = Index(Space.Euclidean, num_dimensions=x.shape[1], M=M, ef_construction=EF_CONSTRUCTION,
                  random_seed=0, max_elements=len(x))
    t = time.perf_counter()
    index.add_items(x, np.arange(len(x)), num_threads=threads)
    built = time.perf_counter() - t
    t = time.perf_counter()
    found, _ = index.query(x, k=K, num_threads=threads, query_ef=EF)
    return built, time.perf_counter() - t, found.astype(np.int64)


def run_usearch(x, threads):
    from usearch.index import Index

    index = Index(ndim=x.shape[1], metric="l2sq", dtype="f32", connectivity=M, expansion_add=EF_CONSTRUCTION,
                  expansion_search=EF)
    t = time.perf_counter()
    index.add(np.arange(len(x)), x, threads=threads)
    built = time.perf_counter() - t
    t = time.perf_counter()
    found = index.search(x, K, threads=threads).keys
    return built, time.perf_counter() - t, found.astype(np.int64)


LIBRARIES = {"hnswlib": run_hnswlib, "voyager": run_voyager, "usearch": run_usearch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--determinism-n", type=int, default=5_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    data = {"fingerprint forest": fingerprint_forest(args.n, args.dim, rng),
            "Gaussian cloud": rng.normal(size=(args.n, args.dim)).astype(np.float32)}
    present = {name: run for name, run in LIBRARIES.items() if importlib.util.find_spec(name)}
    for name in LIBRARIES.keys() - present.keys():
        print(f"{name} is not installed: skipped", file=sys.stderr)
    for title, x in data.items():
        truth = exact_neighbours(x, K)
        rows, base = [], None
        for name, run in present.items():
            built, queried, found = run(x, args.threads)
            small = x[:args.determinism_n]
            same = np.array_equal(run(small, 1)[2], run(small, 1)[2])
            base = base or (built, queried)
            rows.append((name, f"{built:.2f}", f"{built / base[0]:.2f}x", f"{queried:.2f}", f"{queried / base[1]:.2f}x",
                         f"{recall(found, truth):.4f}", "yes" if same else "no"))
        print_table(f"{title}: {args.n:,} vectors of {args.dim}, {args.threads} threads, k = {K} "
                    f"(ratios against {rows[0][0]})",
                    ["library", "build s", "build ratio", "query all s", "query ratio", "recall@10",
                     "deterministic (1 thread)"], rows)


if __name__ == "__main__":
    main()
