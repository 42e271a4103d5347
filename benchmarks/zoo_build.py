"""Time the zoo builders: models, bytes and seconds per zoo, and models per second.

Usage (from the repository root): PYTHONPATH=. python benchmarks/zoo_build.py [NAME ...] [--seed S] [--size SIZE]
[--keep DIR]

NAME is a zoo (tiny, small, large, vthr, minilm) or a zoo family (llama, vision, recurrent,
tabular; built at ``--size``, default small).

Builds each named zoo (default: tiny) into a temporary folder (or DIR/NAME with --keep), once —
builds are deterministic and take minutes, so there is no repetition to take a median of — and
prints one table row per zoo, with the time per model relative to the tiny zoo's built in the same
run as the baseline.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path


def build_one(name: str, out: Path, seed: int, size: str = "small") -> dict:
    import torch

    from modelatlas.zoo.families import FAMILIES, family_builder
    from modelatlas.zoo.recipes import RECIPES

    start, cpu = time.perf_counter(), time.process_time()
    if name in FAMILIES:
        zoo = family_builder(name)(out, seed, size)
    elif name == "minilm":
        from modelatlas.zoo.minilm import build_minilm

        zoo = build_minilm(out, seed)
    else:
        zoo = RECIPES[name](out, seed)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"zoo": name, "models": len(zoo.models), "components": len({m.component for m in zoo.models}),
            "MB": size / 1e6, "wall_s": wall, "cpu_s": cpu, "patterns": Counter(m.pattern for m in zoo.models),
            "torch_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["tiny"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="small", help="size of the zoo families (tiny or small)")
    parser.add_argument("--keep", type=Path, help="write the zoos to DIR/NAME instead of a temporary folder")
    args = parser.parse_args()
    names = ["tiny"] + [n for n in args.names if n != "tiny"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        for name in names:
            rows.append(build_one(name, base / name, args.seed, args.size))
            r = rows[-1]
            print(f"built {name}: {r['models']} models in {r['wall_s']:.1f} s", flush=True)
    base_rate = rows[0]["wall_s"] / rows[0]["models"]
    print("\n| zoo | models | components | MB | wall s | CPU s | s / model | vs tiny |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        per = r["wall_s"] / r["models"]
        print(f"| {r['zoo']} | {r['models']} | {r['components']} | {r['MB']:.1f} | {r['wall_s']:.1f} | "
              f"{r['cpu_s']:.1f} | {per:.3f} | {per / base_rate:.2f}x |")
    for r in rows:
        print(f"{r['zoo']}: " + ", ".join(f"{k} {v}" for k, v in sorted(r["patterns"].items())))


if __name__ == "__main__":
    main()
