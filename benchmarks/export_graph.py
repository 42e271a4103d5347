"""Graph exports at Hub scale: time and peak memory of each format on a synthetic hub.

Builds an atlas of ``--models`` synthetic models (default 300,000; ``modelatlas synth`` data, no
card text) in memory, then writes it as GEXF, GraphML, CSV (nodes) and Parquet (nodes) with
:mod:`modelatlas.viz.export`, each stage's wall time and its own peak RSS (reset per stage, as
``pipeline_2m.py`` does). The figures go to docs/BENCHMARKS.md.

Usage::

    python benchmarks/export_graph.py                  # 300k models
    python benchmarks/export_graph.py --models 20000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_2m import GIB, Stages, hub_without_cards, ingest  # noqa: E402

from modelatlas.viz.export import write_graph, write_table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        atlas = ingest(hub_without_cards(folder, args.models, args.seed))
        st = Stages()
        sizes = {}
        for fmt in ("gexf", "graphml"):
            out = folder / f"atlas.{fmt}"
            st.run(f"{fmt}", write_graph, atlas, out, fmt)
            sizes[fmt] = out.stat().st_size
            out.unlink()
        for fmt in ("csv", "parquet"):
            out = folder / f"nodes.{fmt}"
            st.run(f"nodes {fmt}", write_table, atlas.nodes, out, fmt)
            sizes[f"nodes {fmt}"] = out.stat().st_size
        print(f"\n{args.models:,} models: {atlas.num_nodes:,} nodes, {atlas.num_edges:,} edges")
        print(f"{'export':<16}{'wall s':>9}{'CPU s':>9}{'peak RSS GiB':>14}{'file MiB':>10}")
        for (name, s, cpu, peak) in st.rows:
            print(f"{name:<16}{s:>9.2f}{cpu:>9.2f}{peak / GIB:>14.2f}{sizes[name] / 2**20:>10.1f}")
        if not st.resettable:
            print("(peak RSS is the running maximum: /proc/self/clear_refs is not writable here)")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
