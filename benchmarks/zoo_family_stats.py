"""What a zoo's lineages look like in weight space: the statistics issue 11 compares generators on.

Usage (from the repository root): PYTHONPATH=. python benchmarks/zoo_family_stats.py ZOO [ZOO ...] [--json]

For each zoo folder (any generator: ``modelatlas zoo build small`` or a family), from the weights
files and the manifest's ground truth:

- ``move``: relative distance of each trained child to its parent, ``‖θc − θp‖ / ‖θp‖`` (quartiles);
- ``cos``: cosine between successive updates ``(θc − θp, θp − θg)`` along parent → child chains
  of trained models (median, 10th percentile): negative when a child partly undoes its parent's update;
- ``further``: share of those chains where the child moved further than its parent did, and the
  90th percentile of the step ratio ``‖θc − θp‖ / ‖θp − θg‖``;
- dtypes, unknown upload times, children uploaded before a parent.

Quantised files are de-quantised (``modelatlas.zoo.quantize.dequantize``) but left out of the
update statistics, as are duplicates and merges (several parents).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

TRAINED = ("finetune", "lora", "snake", "fan")


def _flat(path: Path, names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    import ml_dtypes  # noqa: F401 - registers bfloat16 with numpy, for bf16 files
    from safetensors.numpy import load_file

    from modelatlas.zoo.quantize import dequantize

    tensors = dequantize(load_file(str(path)))
    floats = {k: v for k, v in tensors.items() if v.dtype.kind == "f" or v.dtype.name == "bfloat16"}
    names = names or sorted(floats)
    return np.concatenate([floats[k].astype(np.float64).ravel() for k in names]), names


def zoo_stats(location: Path) -> dict:
    from modelatlas.zoo.manifest import load_manifest

    zoo = load_manifest(location)
    by_id = zoo.by_id()
    cache: dict[str, np.ndarray] = {}
    names: dict[str | None, list[str]] = {}

    def vec(model_id: str) -> np.ndarray:
        if model_id not in cache:
            m = by_id[model_id]
            cache[model_id], names[m.architecture] = _flat(m.path, names.get(m.architecture))
        return cache[model_id]

    moves, cosines, ratios = [], [], []
    for m in zoo.models:
        if m.pattern not in TRAINED or len(m.parents) != 1:
            continue
        p = by_id[m.parents[0]]
        step = vec(m.id) - vec(p.id)
        moves.append(np.linalg.norm(step) / np.linalg.norm(vec(p.id)))
        if p.pattern in TRAINED and len(p.parents) == 1:
            before = vec(p.id) - vec(p.parents[0])
            if np.linalg.norm(before) > 0 and np.linalg.norm(step) > 0:
                cosines.append(step @ before / np.linalg.norm(step) / np.linalg.norm(before))
                ratios.append(np.linalg.norm(step) / np.linalg.norm(before))
    times = {m.id: m.created_at for m in zoo.models}
    flipped = sum(1 for m in zoo.models for q in m.parents or []
                  if times[m.id] is not None and times[q] is not None and times[m.id] < times[q])
    q = lambda a, ps: [round(float(x), 3) for x in np.percentile(a, ps)] if len(a) else []  # noqa: E731
    return {"zoo": str(location), "models": len(zoo.models), "patterns": dict(Counter(m.pattern for m in zoo.models)),
            "dtypes": dict(Counter(m.extra.get("dtype", "-") for m in zoo.models)),
            "move_quartiles": q(moves, [0, 25, 50, 75, 100]), "chains": len(cosines),
            "cos_median_p10": q(cosines, [50, 10]), "further_share": round(float(np.mean(np.asarray(ratios) > 1)), 3)
            if ratios else None, "ratio_p90": q(ratios, [90]), "unknown_times": sum(t is None for t in times.values()),
            "child_before_parent": flipped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoos", nargs="+", type=Path)
    parser.add_argument("--json", action="store_true", help="one JSON object per zoo")
    args = parser.parse_args()
    for z in args.zoos:
        s = zoo_stats(z)
        print(json.dumps(s) if args.json else
              f"{z.name}: {s['models']} models; move {s['move_quartiles']}; successive-update cos median/p10 "
              f"{s['cos_median_p10']} over {s['chains']} chains; child moved further {s['further_share']}, "
              f"ratio p90 {s['ratio_p90']}; dtypes {s['dtypes']}; unknown times {s['unknown_times']}; "
              f"child before parent {s['child_before_parent']}")


if __name__ == "__main__":
    main()
