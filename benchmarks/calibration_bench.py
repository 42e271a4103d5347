"""Reliability of ``auto``'s confidences on held-out zoos: the shipped maps against maps fitted on
the synthetic calibration zoos alone (the baseline, fitted in the same run).

For every edge ``auto`` predicts on a zoo (no stem, families unknown, as the maps are fitted), the
confidence each table gives is compared with whether the parent set is right: mean confidence,
accuracy, expected calibration error over 5 equal-width bins (ECE, lower is better) and the top
bin. Zoos are given with ``--zoo`` (build them with ``modelatlas zoo build``; use seeds the shipped
table was not fitted on, see its ``fitted_on``). Run: ``python benchmarks/calibration_bench.py
--zoo TINY --zoo TINY1 --zoo SMALL``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelatlas.chart.calibration import CALIBRATION_SEEDS, TABLE, calibrated, fit_calibration, rule_outcomes  # noqa: E402
from modelatlas.chart.evaluate import calibration_error  # noqa: E402
from modelatlas.chart.synthetic import synthetic_zoo  # noqa: E402
from modelatlas.chart.zoo_input import load_zoo_input  # noqa: E402

BINS = 5


def summary(conf: np.ndarray, ok: np.ndarray) -> tuple[float, float, float, int, float, float]:
    ece = calibration_error(np.column_stack([conf, ok]), bins=BINS)
    top = conf >= (BINS - 1) / BINS
    return (conf.mean(), ok.mean(), ece, int(top.sum()), conf[top].mean() if top.any() else float("nan"),
            ok[top].mean() if top.any() else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", action="append", required=True)
    args = ap.parse_args()
    synthetic = [(f"seed {s}", z.models, z.truth)
                 for s, z in ((s, synthetic_zoo(300, n_components=3, seed=s)) for s in CALIBRATION_SEEDS)]
    tables = {"synthetic zoos only (baseline)": fit_calibration(synthetic)["rules"],
              "shipped (synthetic + trained)": json.loads(TABLE.read_text())["rules"]}
    print("| zoo | maps | edges | mean confidence | accuracy | ECE | ECE vs baseline | top bin n | top bin confidence | top bin accuracy |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in args.zoo:
        data = load_zoo_input(path)
        outcomes = [(kind, score, right) for kind, pairs in rule_outcomes(data.models, data.truth).items()
                    for score, right in pairs]
        ok = np.array([r for _, _, r in outcomes])
        base = None
        for name, rules in tables.items():
            conf = np.array([calibrated(kind, score, rules) for kind, score, _ in outcomes])
            mean, acc, ece, n_top, c_top, a_top = summary(conf, ok)
            base = ece if base is None else base
            print(f"| {Path(path).name} | {name} | {len(ok)} | {mean:.3f} | {acc:.3f} | {ece:.3f} | "
                  f"{ece / base:.2f}x | {n_top} | {c_top:.3f} | {a_top:.3f} |", flush=True)


if __name__ == "__main__":
    main()
