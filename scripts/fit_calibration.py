"""Refit the confidence maps ``auto`` ships (modelatlas/chart/calibration.json).

Pools the held-out synthetic zoos (modelatlas.chart.calibration.CALIBRATION_SEEDS) with the trained
zoos given by --zoo (built with seeds the evaluation never uses, e.g. ``modelatlas zoo build small
--seed 1``), fits one isotonic map per rule and writes the table. Usage:

    python scripts/fit_calibration.py --zoo DIR --label "small, --seed 1" [--zoo DIR --label L ...] [--out FILE]

The table shipped was fitted with ``zoo build tiny`` seeds 0 and 1, the four zoo families at
``--size small --seed 0`` and at ``--size tiny --seed 1`` (its ``fitted_on`` lists them). The
benchmark never uses it: ``bench chart --families`` fits maps without the family it scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelatlas.chart.calibration import CALIBRATION_SEEDS, TABLE, fit_calibration  # noqa: E402
from modelatlas.chart.synthetic import synthetic_zoo  # noqa: E402
from modelatlas.chart.zoo_input import load_zoo_input  # noqa: E402
from modelatlas.zoo.manifest import load_manifest  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", action="append", default=[], help="a trained zoo with ground truth (repeatable)")
    ap.add_argument("--label", action="append", default=[],
                    help="how the table names each --zoo, in order (e.g. 'small, --seed 1')")
    ap.add_argument("--out", type=Path, default=TABLE)
    args = ap.parse_args()
    zoos = []
    for seed in CALIBRATION_SEEDS:
        z = synthetic_zoo(300, n_components=3, seed=seed)
        zoos.append((f"synthetic_zoo(300, n_components=3, seed={seed})", z.models, z.truth))
    for k, path in enumerate(args.zoo):
        data = load_zoo_input(path)
        label = args.label[k] if k < len(args.label) else load_manifest(path, check_files=False).name
        zoos.append((f"zoo {label}", data.models, data.truth))
    table = fit_calibration(zoos)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    for rule, m in table["rules"].items():
        print(f"{rule:10s} n={m['n']:5d}  breakpoints={len(m['x']):3d}  p from {m['y'][0]:.2f} to {m['y'][-1]:.2f}")
    print(f"wrote {args.out.name} (fitted on {len(zoos)} zoos)")


if __name__ == "__main__":
    main()
