"""Quick evaluator: one charting method with fixed parameters on zoo families, per family and pattern.

Usage (from the repository root)::

    python benchmarks/chart_quick.py --families llama=LLAMA_TINY0 --families llama=LLAMA_SMALL ...
        [--synthetic 300] [--method auto] [--param fan_share=0.5] [--no-times] [--seeds 0 1] [--errors]

The "quick evaluator" of docs/BENCHMARKS.md and docs/chart.md: the Model Atlas protocol (10% stem
per component with true parents, components known; docs/chart.md) with the method's parameters
as given — nothing is fitted, so it is **not** leave-one-family-out (``modelatlas bench chart
--families`` is) and serves to compare variants of a rule in seconds. Accuracy is pooled over the
scored models of each family's zoos and stem seeds; it prints accuracy, the expected calibration
error and accuracy per pattern (right % / scored) per family, the mean and the worst family, and
with ``--errors`` what kind of wrong parent each error names (root given a parent, a non-root made
a root, the true grandparent or higher, a descendant, a sibling, a wrong merge set, other).
``--no-times`` removes every upload time and shuffles the rows, as ``bench chart --no-times``.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from modelatlas.chart import get_method  # noqa: E402
from modelatlas.chart.bench import BenchZoo, without_times  # noqa: E402
from modelatlas.chart.evaluate import (  # noqa: E402
    calibration_error,
    confidence_outcomes,
    correct_mask,
    sample_stem,
)
from modelatlas.chart.synthetic import synthetic_zoo  # noqa: E402
from modelatlas.chart.zoo_input import load_zoo_input  # noqa: E402


def error_kind(i: int, predicted: frozenset, parents: list) -> str:
    """What the wrong parent set of model ``i`` names, relative to its true lineage."""
    def ancestors(j):
        out, stack = set(), list(parents[j] or ())
        while stack:
            q = stack.pop()
            if q not in out:
                out.add(q)
                stack.extend(parents[q] or ())
        return out

    truth = set(parents[i])
    if not truth:
        return "root given a parent"
    if not predicted:
        return "made a root"
    if len(truth) > 1 or len(predicted) > 1:
        return "merge set wrong"
    q, p = next(iter(predicted)), next(iter(truth))
    if q in ancestors(p):
        return "grandparent or higher"
    if i in ancestors(q):
        return "descendant"
    return "sibling" if p in (parents[q] or ()) else "other"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", action="append", default=[], metavar="NAME=DIR",
                    help="a zoo folder and the family it belongs to (repeatable)")
    ap.add_argument("--synthetic", type=int, default=0, help="add a family of two synthetic zoos of this size")
    ap.add_argument("--method", default="auto")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="a parameter of the method (a Python literal)")
    ap.add_argument("--no-times", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="stem seeds")
    ap.add_argument("--errors", action="store_true", help="print the kinds of error")
    args = ap.parse_args(argv)
    params = {k: ast.literal_eval(v) for k, v in (p.split("=", 1) for p in args.param)}
    zoos: dict[str, list[BenchZoo]] = defaultdict(list)
    for spec in args.families:
        name, _, folder = spec.partition("=")
        data = load_zoo_input(folder)
        zoos[name].append(BenchZoo(Path(folder).name, data.models, data.truth))
    if args.synthetic:
        for seed in (7, 8):
            z = synthetic_zoo(args.synthetic, seed=seed)
            zoos["synthetic"].append(BenchZoo(f"synthetic-{seed}", z.models, z.truth))
    if not zoos:
        ap.error("give --families NAME=DIR and/or --synthetic N")

    t0 = time.perf_counter()
    right: dict[str, list[bool]] = defaultdict(list)
    by_pattern: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    outcomes: dict[str, list[np.ndarray]] = defaultdict(list)
    errors: Counter = Counter()
    for family, members in zoos.items():
        for zoo in members:
            if args.no_times:
                zoo = without_times(zoo)
            models = replace(zoo.models, components=np.asarray(zoo.truth.component))  # components known
            parents = zoo.truth.parents
            for seed in args.seeds:
                stem = sample_stem(zoo.truth, seed=seed)
                method = get_method(args.method, **params)
                if "random_state" in method.get_params():
                    method.set_params(random_state=seed)
                result = method.chart(models, known_edges=stem)
                ok, predicted = correct_mask(result, zoo.truth), result.parent_sets()
                outcomes[family].append(confidence_outcomes(result, zoo.truth, stem))
                for i, pattern in enumerate(zoo.truth.pattern):
                    if i in stem or parents[i] is None:
                        continue
                    right[family].append(bool(ok[i]))
                    by_pattern[family][pattern or "?"].append(bool(ok[i]))
                    if args.errors and not ok[i]:
                        errors[(family, pattern, error_kind(i, predicted.get(i, frozenset()), parents))] += 1

    patterns = sorted({p for f in by_pattern for p in by_pattern[f]})
    print(f"method {args.method} {params or ''} {'without' if args.no_times else 'with'} upload times, "
          f"stem seeds {args.seeds} (fixed parameters: not leave-one-family-out)")
    print("| family | accuracy % | scored | ECE | " + " | ".join(patterns) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(patterns))
    accuracy = {}
    for family in zoos:
        accuracy[family] = 100 * float(np.mean(right[family]))
        cells = [f"{100 * np.mean(v):.0f} / {len(v)}" if (v := by_pattern[family].get(p)) else "–" for p in patterns]
        ece = calibration_error(np.concatenate(outcomes[family]))
        print(f"| {family} | {accuracy[family]:.1f} | {len(right[family])} | {ece:.3f} | " + " | ".join(cells) + " |")
    worst = min(accuracy, key=accuracy.get)
    print(f"mean {np.mean(list(accuracy.values())):.1f}, worst {accuracy[worst]:.1f} ({worst}); "
          f"{time.perf_counter() - t0:.0f} s")
    if args.errors:
        for (family, pattern, kind), n in errors.most_common():
            print(f"{n:5d}  {family}  {pattern}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
