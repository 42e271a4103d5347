"""Charting benchmark: accuracy of every method on zoos, ablations, and auto's scaling curve.

Usage (from the repository root)::

    python benchmarks/chart_bench.py --zoo ZOO_DIR [--zoo ZOO_DIR ...] [--synthetic 300]
                                     [--seeds 3] [--scale 1000,3000,10000,30000,100000]

Prints (1) Model Atlas protocol accuracy, methods x zoos (mean ± std over stem seeds), (2) the
ablation rows of ``atlas`` and ``auto``, (3) per-pattern accuracy, (4) ``auto``'s reliability
table, and (5) charting time of ``auto`` on synthetic fingerprints from 1k to 100k models, with
Algorithm 1 (dense, quadratic) measured in the same run as the baseline where it fits in memory.
Times are medians of wall-clock and CPU seconds (CPU time is what the charting itself used, the
fair figure on a shared machine).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from markdown_table import print_table as _table  # noqa: E402

from modelatlas.chart import get_method  # noqa: E402
from modelatlas.chart.bench import BenchZoo, run_bench  # noqa: E402
from modelatlas.chart.evaluate import accuracy  # noqa: E402
from modelatlas.chart.synthetic import synthetic_zoo  # noqa: E402


def accuracy_tables(zoos, seeds, components_known, ablations=True):
    report = run_bench(zoos, seeds=tuple(range(seeds)), components_known=components_known,
                       with_ablations=ablations)
    names = [z.name for z in zoos]
    for key, title in (("results", "Accuracy (%), methods x zoos"), ("ablations", "Ablations (accuracy %)")):
        if not report[key]:
            continue
        cell = {(r["method"], r["zoo"]): r for r in report[key]}
        methods = list(dict.fromkeys(r["method"] for r in report[key]))
        rows = [[m] + [f"{100 * cell[(m, z)]['accuracy']:.1f} ± {100 * cell[(m, z)]['accuracy_std']:.1f}"
                       f" ({cell[(m, z)]['seconds']:.2f} s)" for z in names] for m in methods]
        _table(f"{title} — components {'known' if components_known else 'unknown'}", ["method", *names], rows)
    for z in names:
        rows = [r for r in report["results"] if r["zoo"] == z]
        pats = sorted({p for r in rows for p in r["per_pattern"]})
        _table(f"Per-pattern accuracy (%) on {z}", ["method", *pats],
               [[r["method"]] + [f"{100 * r['per_pattern'][p]:.0f}" if p in r["per_pattern"] else "-" for p in pats]
                for r in rows])
        auto = next(r for r in rows if r["method"] == "auto")
        _table(f"auto reliability on {z} (last seed)", ["confidence bin", "n", "mean confidence", "accuracy"],
               [[b["bin"], b["n"], f"{b['confidence']:.2f}", f"{b['accuracy']:.2f}"] for b in auto["reliability"]])
    return report


def _timed(fn, repeats):
    walls, cpus = [], []
    out = None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return out, float(np.median(walls)), float(np.median(cpus))


def scaling(sizes, repeats):
    header = ["models", "auto wall s", "auto CPU s", "CPU ms/model", "auto acc %",
              "atlas wall / CPU s (acc)", "peak RSS MiB"]
    _table("auto scaling on synthetic fingerprints (d = 256; exact search to 1,000 models, HNSW beyond)",
           header, [])
    for n in sizes:
        z = synthetic_zoo(n, n_components=max(4, n // 250), layers=4, rows=8, cols=8, seed=0)
        auto = get_method("auto", calibrate=False)
        res, wall, cpu = _timed(lambda: auto.chart(z.models), repeats if n <= 10_000 else 1)
        acc = accuracy(res, z.truth)
        base = "-"
        if n <= 3000:
            atlas = get_method("atlas")
            res_a, wall_a, cpu_a = _timed(lambda: atlas.chart(z.models), repeats)
            base = f"{wall_a:.2f} / {cpu_a:.2f} ({100 * accuracy(res_a, z.truth):.1f}%)"
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        row = [f"{n:,}", f"{wall:.2f}", f"{cpu:.2f}", f"{1e3 * cpu / n:.2f}", f"{100 * acc:.1f}", base, f"{rss:,.0f}"]
        print("| " + " | ".join(row) + " |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", action="append", default=[], help="zoo folder (repeatable)")
    ap.add_argument("--synthetic", type=int, default=300, help="size of a synthetic mixed zoo (0: none)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--scale", default="1000,3000,10000,30000,100000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--components-unknown", action="store_true", help="also run with families unknown")
    ap.add_argument("--no-ablations", action="store_true", help="skip the ablation rows")
    args = ap.parse_args()
    from modelatlas.chart.zoo_input import load_zoo_input

    zoos = []
    for path in args.zoo:
        data = load_zoo_input(path)
        for m in data.messages:
            print(f"note: {path}: {m}", file=sys.stderr)
        zoos.append(BenchZoo(Path(path).name, data.models, data.truth))
    if args.synthetic:
        z = synthetic_zoo(args.synthetic, seed=7)
        zoos.append(BenchZoo(f"synthetic-{args.synthetic}", z.models, z.truth))
    print("## Charting benchmark (2-core, 24 GiB machine)")
    if zoos:
        accuracy_tables(zoos, args.seeds, True, not args.no_ablations)
        if args.components_unknown:
            accuracy_tables(zoos, args.seeds, False, not args.no_ablations)
    sizes = [int(s) for s in args.scale.split(",") if s]
    if sizes:
        scaling(sizes, args.repeats)


if __name__ == "__main__":
    main()
