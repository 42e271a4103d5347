"""An incremental Hub refresh into a large atlas: in place vs the full rebuild.

Builds an atlas of ``--models`` synthetic models (default 300,000; no card text) and saves it; then
applies ``--refresh`` more models (default 1,500, with their parent claims) as a ``hub:`` crawl, two
ways, each on its own copy of the file:

* **in place** (:func:`modelatlas.atlas.update.update_in_place`, what ``modelatlas ingest hub:...``
  does with an existing atlas): one DuckDB transaction on the file;
* **rebuild** (what every ingest did before): load the whole atlas, merge, rebuild, rewrite the file.

Then the same crawl once more in place (nothing changes). Each stage's wall time and its own peak
RSS (reset per stage, as ``pipeline_2m.py`` does). The figures go to docs/BENCHMARKS.md.

Usage::

    python benchmarks/ingest_refresh.py                    # 300k + 1.5k
    python benchmarks/ingest_refresh.py --models 30000 --refresh 500
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_2m import GIB, Stages, hub_without_cards  # noqa: E402

from modelatlas.atlas.atlas import Atlas  # noqa: E402
from modelatlas.atlas.store import writing  # noqa: E402
from modelatlas.atlas.update import update_in_place  # noqa: E402
from modelatlas.ingest.batch import SourceBatch  # noqa: E402
from modelatlas.ingest.hubstats import read_hub_stats  # noqa: E402
from modelatlas.ingest.pipeline import log_rows, merge_batches  # noqa: E402


def split(batch: SourceBatch, refresh: int) -> tuple[SourceBatch, SourceBatch]:
    """The first models (by a fixed shuffle of ids) as the atlas, the last ``refresh`` as a ``hub:`` crawl."""
    ids = batch.records["id"]
    shuffled = ids.take(pc.sort_indices(pc.utf8_reverse(ids)))  # spread over authors and families
    chosen = pc.is_in(ids, value_set=shuffled.slice(0, refresh))
    base, crawl = SourceBatch(batch.source, batch.format), SourceBatch("hub:", "hub")
    base.records, crawl.records = batch.records.filter(pc.invert(chosen)), batch.records.filter(chosen)
    new_ids = crawl.records["id"]
    mine = pc.is_in(batch.evidence["child"], value_set=new_ids)
    base.evidence, crawl.evidence = batch.evidence.filter(pc.invert(mine)), batch.evidence.filter(mine)
    crawl.evidence = crawl.evidence.set_column(crawl.evidence.schema.get_field_index("source"), "source",
                                               pc.if_else(pc.is_valid(crawl.evidence["source"]), "hub:", None))
    return base, crawl


def in_place(path: Path, crawl: SourceBatch) -> dict:
    with writing(path):
        return update_in_place(path, crawl, full_crawl=False, log=log_rows([crawl]))


def rebuild(path: Path, crawl: SourceBatch) -> None:
    with writing(path):
        merge_batches(Atlas.load(path), [crawl]).save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=300_000)
    ap.add_argument("--refresh", type=int, default=1_500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base, crawl = split(read_hub_stats(hub_without_cards(folder, args.models + args.refresh, args.seed)),
                            args.refresh)
        a, b = folder / "a" / "atlas.duckdb", folder / "b" / "atlas.duckdb"
        a.parent.mkdir()
        b.parent.mkdir()
        Atlas.build(base.records, base.evidence, issues=base.issues).save(a)
        shutil.copy(a, b)
        del base
        st = Stages()
        changes = st.run("in place", in_place, a, crawl)
        again = st.run("in place, same crawl again", in_place, a, crawl)
        st.run("rebuild (load, merge, save)", rebuild, b, crawl)
        print(f"\n{args.models:,} models + {crawl.records.num_rows:,} ({crawl.evidence.num_rows:,} claims); "
              f"changes: {changes}; again: {again or 'none'}")
        print(f"{'stage':<30}{'wall s':>9}{'CPU s':>9}{'peak RSS GiB':>14}")
        for (name, s, cpu, peak) in st.rows:
            print(f"{name:<30}{s:>9.2f}{cpu:>9.2f}{peak / GIB:>14.2f}")
        if not st.resettable:
            print("(peak RSS is the running maximum: /proc/self/clear_refs is not writable here)")
        x, y = Atlas.load(a), Atlas.load(b)
        same = x.nodes.equals(y.nodes) and x.edges.equals(y.edges)
        print(f"in place == rebuild (nodes, edges): {same}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
