"""Where the memory of a large ingest goes: RSS through the reader and ``Atlas.build``.

Generates a synthetic Hub of ``--models`` models (README text included unless ``--no-card-text``),
then reads it with the hub-stats reader and assembles the atlas while a thread samples the
process's resident memory every 50 ms. Prints, per stage, the RSS when it ended and the highest RSS
seen during it, plus what the Arrow memory pool holds (the rest of a reader's result lives in
DuckDB-allocated buffers). Baseline: the peak of the reader's own stage, measured in the same run,
so the ratio says what assembling the atlas adds on top of reading. Run: ``python
benchmarks/ingest_memory.py --models 2000000``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelatlas.atlas.atlas import Atlas  # noqa: E402
from modelatlas.ingest.hubstats import read_hub_stats  # noqa: E402
from modelatlas.zoo.synthetic_hub import generate, write_hub  # noqa: E402

GIB = 2 ** 30


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class Sampler:
    """Highest RSS per stage, sampled in a background thread."""

    def __init__(self):
        self.stage, self.peaks, self.rows = "start", {}, []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            self.peaks[self.stage] = max(self.peaks.get(self.stage, 0), rss())
            time.sleep(0.05)

    def run(self, name, fn, *args):
        self.stage = name
        t = time.perf_counter()
        out = fn(*args)
        self.peaks[name] = max(self.peaks.get(name, 0), rss())
        self.rows.append((name, time.perf_counter() - t, rss(), self.peaks[name], pa.total_allocated_bytes()))
        self.stage = "between"
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=2_000_000)
    ap.add_argument("--no-card-text", dest="card_text", action="store_false")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hub.parquet"
        write_hub(generate(args.models, 0), path, card_text=args.card_text)
        s = Sampler()
        batch = s.run("read (hub-stats reader)", read_hub_stats, path)
        s.run("assemble (Atlas.build)", lambda: Atlas.build(batch.records, batch.evidence, issues=batch.issues))
    base = s.rows[0][3]
    print(f"{args.models:,} models, card text: {'yes' if args.card_text else 'no'}")
    print("| stage | wall s | RSS at end GiB | peak RSS GiB | Arrow pool GiB | peak vs reader's |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, secs, end, peak, pool in s.rows:
        print(f"| {name} | {secs:.1f} | {end / GIB:.2f} | {peak / GIB:.2f} | {pool / GIB:.2f} | {peak / base:.2f}x |")


if __name__ == "__main__":
    main()
