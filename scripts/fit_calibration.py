"""Refit the calibration model ``auto`` ships (modelatlas/chart/calibration.json).

Charts every zoo given with ``--families FAMILY=DIR`` (the same flags as ``modelatlas bench chart
--families``), each also without upload times, plus the synthetic calibration zoos
(modelatlas.chart.calibration.CALIBRATION_SEEDS, family ``synthetic``), with ``auto``'s default
parameters under the Model Atlas protocol, and fits the logistic model of
``modelatlas.chart.calibration`` on the outcomes, every (family, dated or not) weighted alike.
Writes the table as JSON (no pickle). Usage:

    python scripts/fit_calibration.py --families llama=DIR --families vision=DIR ... [--out FILE]

Refit after any change to ``auto``'s rules (their kinds of decision, scores or context). The
benchmark never uses the shipped table: ``bench chart --families`` fits the model without the
family it scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelatlas.chart.calibration import (
    CALIBRATION_SEEDS,
    TABLE,
    Calibrator,
    fit_calibration,
)
from modelatlas.chart.synthetic import synthetic_zoo
from modelatlas.chart.zoo_input import load_zoo_input
from modelatlas.zoo.manifest import load_manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", action="append", default=[], metavar="FAMILY=DIR",
                    help="a trained zoo with ground truth and its family (repeatable)")
    ap.add_argument("--out", type=Path, default=TABLE)
    args = ap.parse_args()
    zoos = []
    for seed in CALIBRATION_SEEDS:
        z = synthetic_zoo(300, n_components=3, seed=seed)
        zoos.append(("synthetic", f"synthetic_zoo(300, n_components=3, seed={seed})", z.models, z.truth))
    for spec in args.families:
        family, sep, path = spec.rpartition("=")
        if not sep:
            sys.exit(f"--families {spec}: expected FAMILY=DIR")
        data = load_zoo_input(path)
        if data.truth is None:
            sys.exit(f"{path}: no ground truth")
        zoos.append((family, f"{family}: {load_manifest(path, check_files=False).name} ({Path(path).name})",
                     data.models, data.truth))
        print(f"charting {zoos[-1][1]}", file=sys.stderr, flush=True)
    table = fit_calibration(zoos)
    model = Calibrator.from_dict(table)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    for name, c in sorted(zip(model.names, model.coef.tolist()), key=lambda t: -abs(t[1])):
        print(f"{name:16s} {c:+.3f}")
    print(f"wrote {args.out.name} (fitted on {len(table['fitted_on'])} zoo versions, {table['n']} decisions)")


if __name__ == "__main__":
    main()
