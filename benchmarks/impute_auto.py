"""Does imputation's ``auto`` keep up with the best single method it chooses from?

For every attribute of Table 1b on hf-trees and every leaderboard metric the imputation table of
docs/REPRODUCTION.md covers, runs the Table 1 protocol (hide 20% of the known values, predict them
from the rest; one split per seed) for each of auto's candidates on its own and for ``auto``, and
prints per method the mean score over seeds with its standard error, ``auto``'s choice per seed with
its inner cross-validated score, and the gap between ``auto`` and the best single method in standard
errors of that method.

    python benchmarks/impute_auto.py --data ../shared/data --seeds 5 [--only license]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from markdown_table import print_table  # noqa: E402
from modelatlas.impute.auto import BOOSTED, AutoImputer  # noqa: E402
from modelatlas.impute.evaluate import evaluate  # noqa: E402
from modelatlas.impute.global_baseline import ComponentVote, GlobalBaseline  # noqa: E402
from modelatlas.impute.graph_knn import GraphKNN  # noqa: E402
from modelatlas.impute.hub_vote import HubVote  # noqa: E402
from modelatlas.impute.task import PAPER_ATTRIBUTES, build_task  # noqa: E402

METRICS = ("leaderboard:ifeval", "leaderboard:mmlu_pro")


def methods(seed: int) -> dict:
    """auto's candidates on their own (and the global baseline), then auto."""
    return {"global": GlobalBaseline(), "component": ComponentVote(), "hub_majority": HubVote(),
            **{f"graph_knn_k{k}": GraphKNN(k) for k in (1, 3, 5)},
            BOOSTED: AutoImputer(seed, candidates=(BOOSTED,)), "auto": AutoImputer(seed)}


def run(task, seeds) -> dict:
    score = "accuracy" if task.kind == "attribute" else "mae"
    per = {name: [] for name in methods(0)}
    chosen, inner = [], []
    for seed in seeds:
        for name, method in methods(seed).items():
            row = evaluate(task, seeds=(seed,), methods=[method])["results"][0]
            per[name].append(row[score])
            if name == "auto":
                chosen.append(row["chosen"][0])
                inner.append(row["inner_score"][0])
    stats = {name: (float(np.mean(v)), float(np.std(v, ddof=1) / np.sqrt(len(v)))) for name, v in per.items()}
    singles = {k: v for k, v in stats.items() if k != "auto"}
    sign = 1 if score == "accuracy" else -1
    best = max(singles, key=lambda k: sign * singles[k][0])
    gap = sign * (stats[best][0] - stats["auto"][0])  # > 0: auto is worse
    return {"what": task.what, "score": score, "stats": stats, "best": best, "gap": gap,
            "gap_in_se": gap / stats[best][1] if stats[best][1] > 0 else float("nan"),
            "chosen": chosen, "inner": inner}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="attributes / metrics to run (default: all)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    from modelatlas.ingest.anatomy import read_hf_trees
    from modelatlas.ingest.leaderboard import leaderboard_atlas
    from modelatlas.ingest.pipeline import merge_batches

    hf = merge_batches(None, [read_hf_trees(str(args.data / "hf-trees.jsonl.gz"))])
    jobs = [("hf-trees", hf, what) for what in PAPER_ATTRIBUTES]
    lb_path = args.data / "open-llm-leaderboard-v2.csv"
    if any(m in (args.only or METRICS) for m in METRICS):
        lb = leaderboard_atlas(lb_path)
        lbhf = leaderboard_atlas(lb_path, lineage=hf)
        jobs += [(name, atlas, m) for name, atlas in (("leaderboard", lb), ("leaderboard + hf-trees", lbhf))
                 for m in METRICS]
    seeds = tuple(range(args.seeds))
    results = []
    for name, atlas, what in jobs:
        if args.only and what not in args.only:
            continue
        start = time.perf_counter()
        res = run(build_task(atlas.facts, what), seeds)
        res.update(atlas=name, seconds=round(time.perf_counter() - start, 1))
        results.append(res)
        s = res["stats"]
        fmt = "{:.3f}" if res["score"] == "accuracy" else "{:.2f}"
        cell = lambda k: f"{fmt.format(s[k][0])} ± {fmt.format(s[k][1])}"  # noqa: E731
        print_table(f"{what} on {name} ({res['score']}, mean ± SE over {len(seeds)} seeds, {res['seconds']} s)",
                    ["method", res["score"]], [(k, cell(k)) for k in s])
        print(f"best single: {res['best']}; auto - best = {-res['gap']:+.4f} "
              f"({-res['gap_in_se']:+.2f} SE); chosen: {res['chosen']}; "
              f"inner {res['score']}: {[round(x, 3) for x in res['inner']]}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
