"""Benchmark of the "Anatomy" analyses on a 2-million-model atlas.

Targets (issue 6): structure counts < 10 s; 5,000 samples x 24 configurations with similarity
< 60 s; orderings for licence, language and task < 10 s each. Also measures how far the exact
ordering program reaches (structured and random instances of 20-100 values).

Usage::

    python benchmarks/ecosystem_2m.py                  # generates a Hub-like 2M atlas in memory
    python benchmarks/ecosystem_2m.py --atlas synth.duckdb   # an atlas from `modelatlas synth`

Prints tables of medians (over ``--repeat`` runs) with ratios against a baseline measured in the
same run: a per-anchor Python loop for the counts, the heuristic alone for the orderings.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelatlas import Atlas  # noqa: E402
from modelatlas.atlas.schema import EDGE_SCHEMA, NODE_SCHEMA, conform  # noqa: E402
from modelatlas.ecosystem.documentation import documentation  # noqa: E402
from modelatlas.ecosystem.drift import drift_graph  # noqa: E402
from modelatlas.ecosystem.mutation import mutation_rate  # noqa: E402
from modelatlas.ecosystem.ordering import heuristic_order, linear_ordering, trait_ordering  # noqa: E402
from modelatlas.ecosystem.similarity import family_similarity  # noqa: E402
from modelatlas.ecosystem.structures import count_structures  # noqa: E402
from modelatlas.ecosystem.summary import summary_distributions  # noqa: E402
from modelatlas.ecosystem.tree import finetune_tree  # noqa: E402
from modelatlas.ecosystem.virality import structural_virality  # noqa: E402

LICENSES = ["gemma", "llama3", "llama3.1", "llama2", "openrail", "creativeml-openrail-m", "cc-by-nc-4.0",
            "cc-by-nc-sa-4.0", "bigscience-openrail-m", "other", "apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0",
            "gpl-3.0", "afl-3.0", "artistic-2.0", "bsd-3-clause", "unlicense", "cc0-1.0", "wtfpl", "lgpl-3.0",
            "agpl-3.0", "mpl-2.0", "openrail++"]
TASKS = ["feature-extraction", "fill-mask", "automatic-speech-recognition", "translation", "text2text-generation",
         "text-generation", "summarization", "text-to-image", "image-to-text", "token-classification",
         "text-classification", "image-classification", "question-answering", "sentence-similarity",
         "zero-shot-classification", "audio-classification", "text-to-speech", "reinforcement-learning",
         "image-segmentation", "object-detection", "depth-estimation", "video-classification"]
LANGS = ["en", "zh", "fr", "de", "es", "ru", "ja", "ko", "pt", "it", "ar", "hi", "vi", "nl", "pl", "tr", "id",
         "th", "sv", "fa", "uk", "cs", "he", "el", "ro"]
LIBRARIES = ["transformers", "diffusers", "peft", "sentence-transformers", "gguf", "timm", "mlx", "onnx"]


def synthetic_atlas(n: int, seed: int = 0) -> Atlas:
    """A Hub-like forest: ~45% isolated models, heavy-tailed families, traits inherited with
    mutations that drift "downstream" in list order (so orderings have structure to find)."""
    rng = np.random.default_rng(seed)
    parent = np.full(n, -1, dtype=np.int64)
    has_parent = rng.random(n) < 0.55
    has_parent[:1000] = False
    idx = np.flatnonzero(has_parent)
    # preference for early (popular) models: j = floor(i * u^3)
    parent[idx] = np.floor(idx * rng.random(idx.size) ** 3).astype(np.int64)
    depth = np.zeros(n, dtype=np.int64)
    for i in idx:  # parents precede children; one pass fixes depth
        depth[i] = depth[parent[i]] + 1
    lic = rng.zipf(1.6, n) % len(LICENSES)
    task = rng.zipf(1.5, n) % len(TASKS)
    lib = rng.zipf(2.0, n) % len(LIBRARIES)
    nlang = np.minimum(rng.zipf(2.2, n), 12)
    lang_sets = [[0]] + [sorted(set(rng.choice(len(LANGS), k, replace=False).tolist())) for k in nlang[1:4096]]
    lang = rng.integers(0, len(lang_sets), n)
    for level in range(1, int(depth.max()) + 1):
        kids = np.flatnonzero(depth == level)
        p = parent[kids]
        keep = rng.random((4, kids.size)) < np.array([[0.75], [0.77], [0.9], [0.6]])
        lic[kids] = np.where(keep[0], lic[p], np.minimum(lic[p] + rng.integers(1, 8, kids.size), len(LICENSES) - 1))
        task[kids] = np.where(keep[1], task[p], np.minimum(task[p] + rng.integers(1, 6, kids.size), len(TASKS) - 1))
        lib[kids] = np.where(keep[2], lib[p], lib[kids])
        # language mutations specialise to English-only half of the time (section 4.3's drift)
        lang[kids] = np.where(keep[3], lang[p], np.where(rng.random(kids.size) < 0.5, 0, lang[kids]))
    ids = np.char.add("org", np.char.zfill(np.arange(n).astype(str), 8))
    ids = np.char.add(np.char.add(ids, "/model-"), np.arange(n).astype(str))
    languages = [[LANGS[k] for k in lang_sets[j]] for j in lang]
    tags = [[f"license:{LICENSES[a]}", TASKS[b], LIBRARIES[c], *lg] for a, b, c, lg in
            zip(lic.tolist(), task.tolist(), lib.tolist(), languages)]
    nodes = pa.table({"id": pa.array(ids.tolist()), "author": pa.array([s.split("/")[0] for s in ids.tolist()]),
                      "placeholder": pa.array(np.zeros(n, bool)),
                      "downloads": pa.array(rng.zipf(1.8, n).astype(np.int64)),
                      "likes": pa.array(rng.zipf(2.5, n).astype(np.int64) - 1),
                      "license": pa.array([LICENSES[k] for k in lic.tolist()]),
                      "pipeline_tag": pa.array([TASKS[k] for k in task.tolist()]),
                      "library_name": pa.array([LIBRARIES[k] for k in lib.tolist()]),
                      "languages": pa.array(languages, pa.list_(pa.string())),
                      "tags": pa.array(tags, pa.list_(pa.string()))})
    kids = np.flatnonzero(parent >= 0)
    m = kids.size
    edges = pa.table({"parent": pa.array(ids[parent[kids]].tolist()), "child": pa.array(ids[kids].tolist()),
                      "relation": pa.array(["finetune"] * m), "provenance": pa.array(["hub_tag"] * m),
                      "confidence": pa.array(np.ones(m))})
    order = np.argsort(ids)  # node row i must be the i-th id in sort order
    assert (order == np.arange(n)).all()
    return Atlas(conform(nodes, NODE_SCHEMA), conform(edges, EDGE_SCHEMA))


def timed(fn, repeat):
    """``((median wall s, median CPU s), last result)`` over ``repeat`` runs; CPU time is shown
    too because the shared machine's load inflates wall time."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return (statistics.median(walls), statistics.median(cpus)), out


def loop_counts(tree) -> dict:
    """Baseline: the same eight counts by a Python loop over nodes and edges."""
    k = tree.out_degree.tolist()
    par = tree.parent.tolist()
    c = dict.fromkeys(("edge", "siblings", "chain3", "star3", "fork_below", "uncle", "chain4"), 0)
    for d in k:
        c["siblings"] += d * (d - 1) // 2
        c["star3"] += d * (d - 1) * (d - 2) // 6
    for v, u in enumerate(par):
        if u < 0:
            continue
        c["edge"] += 1
        c["chain3"] += k[v]
        c["fork_below"] += k[v] * (k[v] - 1) // 2
        c["uncle"] += (k[u] - 1) * k[v]
        c["chain4"] += k[v] if par[u] >= 0 else 0
    return c


def structured_instance(n, rng, noise=0.2):
    perm = rng.permutation(n)
    w = np.zeros((n, n))
    up = perm[:, None] < perm[None, :]
    w[up] = rng.poisson(3, up.sum())
    w[~up] = rng.poisson(3 * noise, (~up).sum())
    np.fill_diagonal(w, 0)
    return w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--atlas", type=Path, help="An atlas file (e.g. from `modelatlas synth`).")
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-exactness", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    atlas = Atlas.load(args.atlas) if args.atlas else synthetic_atlas(args.n)
    print(f"atlas: {atlas.num_nodes:,} models, {atlas.num_edges:,} edges "
          f"({'loaded' if args.atlas else 'generated'} in {time.perf_counter() - t0:.1f} s)")
    t_tree, tree = timed(lambda: finetune_tree(atlas), 1)
    rows = [("fine-tune forest from the atlas", t_tree, None, f"{tree.num_edges:,} edges")]
    t_count, counts = timed(lambda: count_structures(tree), args.repeat)
    t_loop, looped = timed(lambda: loop_counts(tree), 1)
    assert all(counts[name] == value for name, value in looped.items())
    rows.append(("structure counts (8 structures, formula)", t_count, t_loop,
                 f"random pairs {counts['random_pair']:.3e}, star3 {counts['star3']:.3e}"))
    for measure in ("tfidf", "bow", "levenshtein"):
        t_sim, res = timed(lambda: family_similarity(atlas, tree, samples=args.samples, measures=(measure,),
                                                     rng=0), 1)
        n = sum(r["n"] for r in res)
        rows.append((f"{args.samples:,} samples x 25 configurations, metadata {measure}", t_sim, None, f"{n:,} pairs"))
    for trait in ("license", "languages", "pipeline_tag"):
        def run(trait=trait):
            return trait_ordering(drift_graph(atlas, tree, trait), time_limit=10)
        t_ord, res = timed(run, args.repeat)
        drift = drift_graph(atlas, tree, trait)
        t_h, _ = timed(lambda: heuristic_order(drift.orientation()), 1)
        rows.append((f"drift graph + ordering: {trait}", t_ord, t_h,
                     f"{res['status']}, drifts {100 * res['drifts_explained']:.0f}%, "
                     f"mutations {100 * res['mutations_explained']:.0f}%"))
    t_mut, res = timed(lambda: [mutation_rate(atlas, tree, t)["rate"]
                                for t in ("license", "languages", "pipeline_tag", "library_name")], args.repeat)
    rows.append(("mutation rates, 4 traits", t_mut, None, ", ".join(f"{100 * r:.1f}%" for r in res)))
    t_vir, res = timed(lambda: structural_virality(tree), args.repeat)
    rows.append(("structural virality, every family", t_vir, None, f"{int((res['sizes'] > 1).sum()):,} families"))
    has_cards = atlas.nodes["card_length"].null_count < atlas.num_nodes
    if has_cards:
        t_doc, _ = timed(lambda: documentation(atlas, tree), 1)
        rows.append(("documentation (card lengths, auto-generated, presence)", t_doc, None, ""))
    t_sum, _ = timed(lambda: summary_distributions(atlas), 1)
    rows.append(("summary distributions (Figure 2)", t_sum, None, ""))
    print("\n| step | median wall s | median CPU s | baseline wall s | note |\n|---|---:|---:|---:|---|")
    for name, (wall, cpu), base, note in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {'' if base is None else f'{base[0]:.2f}'} | {note} |")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    if args.skip_exactness:
        return
    print("\nExact ordering reach (HiGHS, time limit 10 s, max_exact 200):\n")
    print("| values | instance | status | method | seconds | gap |\n|---:|---|---|---|---:|---:|")
    rng = np.random.default_rng(1)
    for n in (20, 40, 60, 80, 100):
        for kind, w in (("structured", structured_instance(n, rng)), ("random", rng.integers(0, 10, (n, n)) * 1.0)):
            np.fill_diagonal(w, 0)
            r = linear_ordering(w, time_limit=10, max_exact=200)
            print(f"| {n} | {kind} | {r.status} | {r.method} | {r.seconds:.2f} | {100 * r.gap:.2f}% |")


if __name__ == "__main__":
    main()
