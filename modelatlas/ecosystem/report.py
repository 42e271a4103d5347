"""Figures and the full "Anatomy" report (Laufer et al., Figures 2 and 7–11, appendix 8).

:func:`run_all` runs every analysis on an atlas and returns plain dictionaries (partial results
are kept, each failed part labelled with its error); :func:`write_report` writes them as
``report.md``, ``report.html``, ``results.json`` and PNG figures. The ``plot_*`` functions draw
one figure each from the analyses' results and are reused by the ``--plot`` options.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelatlas.errors import ModelAtlasError
from modelatlas.jsonio import dumps
from modelatlas.report_files import write_report_files

ORDER_TRAITS = ("license", "languages", "pipeline_tag")
MUTATION_TRAITS = ("license", "languages", "pipeline_tag", "library_name")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_similarity(rows: list[dict], path, *, title: str = "Genetic similarity by family configuration") -> Path:
    """Figure 7: mean similarity per configuration with 95% intervals, one panel per measure."""
    plt = _pyplot()
    measures = list(dict.fromkeys(r["measure"] for r in rows))
    fig, axes = plt.subplots(len(measures), 1, figsize=(12, 3.2 * len(measures)), squeeze=False)
    colours = {"random": "grey", "parent/child": "tab:blue", "siblings": "tab:orange",
               "grandparent/grandchild": "tab:green", "uncle/nephew": "tab:purple",
               "great-grandparent/great-grandchild": "tab:red"}
    for ax, measure in zip(axes[:, 0], measures):
        rs = [r for r in rows if r["measure"] == measure]
        x = np.arange(len(rs))
        means = np.array([r["mean"] for r in rs], dtype=float)
        err = np.array([[r["mean"] - r["low"], r["high"] - r["mean"]] for r in rs], dtype=float).T
        ax.bar(x, np.nan_to_num(means), yerr=np.nan_to_num(err), capsize=2,
               color=[colours.get(r["relation"], "black") for r in rs])
        ax.set_xticks(x, [r["configuration"] for r in rs], rotation=75, fontsize=7)
        ax.set_ylabel(f"{rs[0]['artifact']} {measure}")
    axes[0, 0].set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    axes[0, 0].legend(handles, list(colours), fontsize=7, ncol=3)
    return _save(fig, path)


def plot_counts(counts: dict, path) -> Path:
    """Table 1 as a bar chart (log scale)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    names = list(counts)
    ax.bar(names, [max(counts[k], 0.5) for k in names])
    ax.set_yscale("log")
    ax.set_ylabel("occurrences")
    ax.set_title("Family structures in the fine-tune forest")
    ax.tick_params(axis="x", rotation=30)
    return _save(fig, path)


def plot_drift(drift, ordering: dict | None, path) -> Path:
    """Figures 8, 10, 11: values on a line in the optimal order, drifts as arcs (width = traffic)."""
    plt = _pyplot()
    order = ordering["order"] if ordering else drift.values
    pos = {v: i for i, v in enumerate(order)}
    fig, ax = plt.subplots(figsize=(max(8, 0.6 * len(order)), 5))
    total = max((d["total"] for d in drift.drifts()), default=1)
    for d in drift.drifts():
        a, b = pos[d["source"]], pos[d["target"]]
        forward = a < b
        mid, r = (a + b) / 2, abs(b - a) / 2
        t = np.linspace(0, np.pi, 40)
        ys = r * np.sin(t) * (1 if forward else -1)
        ax.plot(mid + r * np.cos(t) * (-1 if forward else 1), ys, color="tab:blue" if forward else "tab:red",
                lw=0.5 + 4 * d["total"] / total, alpha=0.6)
    ax.scatter(range(len(order)), np.zeros(len(order)), s=30, color="black", zorder=3)
    ax.set_xticks(range(len(order)), order, rotation=70, fontsize=8)
    ax.set_yticks([])
    ax.set_title(f"{drift.trait} drifts (blue: along the order, red: against)")
    return _save(fig, path)


def plot_histogram(values, path, *, title: str, xlabel: str, log: bool = False) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    v = np.asarray(values, dtype=float)
    ax.hist(v[np.isfinite(v)], bins=40)
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("families")
    return _save(fig, path)


def plot_summary(summary: dict, path) -> Path:
    """Figure 2: the top values of each distribution."""
    plt = _pyplot()
    panels = ["licences", "tasks", "languages", "libraries", "datasets", "arxiv_papers"]
    fig, axes = plt.subplots(2, 4, figsize=(18, 8))
    items = [(p, [(d["value"], d["count"]) for d in summary[p]["top"][:10]]) for p in panels]
    items += [("most children", [(d["id"], d["children"]) for d in summary["most_children"][:10]]),
              ("most downloaded", [(d["id"], d["downloads"]) for d in summary["most_downloaded"][:10]])]
    for ax, (name, pairs) in zip(axes.ravel(), items):
        if pairs:
            labels, values = zip(*pairs)
            ax.barh(range(len(values))[::-1], values)
            ax.set_yticks(range(len(values))[::-1], [str(lbl)[:30] for lbl in labels], fontsize=7)
        ax.set_title(name)
    fig.tight_layout()
    return _save(fig, path)


def plot_documentation(atlas, tree, path) -> Path:
    """Figure 9: parent against child card length on fine-tune edges (log-log)."""
    from modelatlas.ecosystem.documentation import card_lengths

    plt = _pyplot()
    length, _ = card_lengths(atlas)
    u, v = tree.edge_parent, tree.child
    both = np.isfinite(length[u]) & np.isfinite(length[v])
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(length[u][both] + 1, length[v][both] + 1, s=4, alpha=0.4)
    lim = [1, max(2, np.nanmax(length) + 1) if np.isfinite(length).any() else 10]
    ax.plot(lim, lim, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parent card length (chars)")
    ax.set_ylabel("child card length (chars)")
    ax.set_title("Model card length on fine-tune edges")
    return _save(fig, path)


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def attempt(results: dict, name: str, fn):
    """Run one analysis; keep its result or label the failure (partial results stay)."""
    try:
        results[name] = fn()
    except ModelAtlasError as exc:
        results[name] = {"error": str(exc)}
    return results[name]


def run_all(atlas, *, samples: int = 5000, measures=("tfidf", "bow", "levenshtein"), top: int = 20,
            time_limit: float = 10.0, seed: int = 0, figures: Path | None = None) -> dict:
    """Every analysis of the paper on ``atlas``; figures written under ``figures`` when given."""
    from modelatlas.ecosystem.documentation import documentation
    from modelatlas.ecosystem.drift import drift_graph
    from modelatlas.ecosystem.languages import language_analysis
    from modelatlas.ecosystem.mutation import mutation_rate
    from modelatlas.ecosystem.ordering import trait_ordering
    from modelatlas.ecosystem.similarity import family_similarity, findings
    from modelatlas.ecosystem.structures import count_structures
    from modelatlas.ecosystem.summary import summary_distributions
    from modelatlas.ecosystem.tree import finetune_tree
    from modelatlas.ecosystem.virality import structural_virality, virality_summary

    tree = finetune_tree(atlas)
    res: dict = {"tree": {"models": int(tree.population.sum()), "finetune_edges": tree.num_edges,
                          "dropped_parents": tree.dropped_parents,
                          "dropped_placeholder_edges": tree.dropped_placeholder_edges},
                 "figures": {}}
    fig = (lambda name: figures / f"{name}.png") if figures else None
    counts = attempt(res, "structures", lambda: count_structures(tree))
    if fig and "error" not in counts:
        res["figures"]["structures"] = plot_counts(counts, fig("structures")).name
    for artifact in ("metadata", "card"):
        rows = attempt(res, f"similarity_{artifact}", lambda: family_similarity(
            atlas, tree, samples=samples, measures=measures, artifact=artifact, rng=seed))
        if isinstance(rows, list):
            res[f"findings_{artifact}"] = {m: findings(rows, m) for m in measures}
            if fig:
                res["figures"][f"similarity_{artifact}"] = plot_similarity(rows, fig(f"similarity_{artifact}")).name
    res["mutation"] = {}
    for trait in MUTATION_TRAITS:
        r = attempt(res["mutation"], trait, lambda: mutation_rate(atlas, tree, trait))
        r.pop("per_edge", None)
    res["drift"], res["ordering"] = {}, {}
    for trait in ORDER_TRAITS:
        drift = attempt(res["drift"], trait, lambda: drift_graph(atlas, tree, trait, top=top))
        if isinstance(drift, dict):
            res["ordering"][trait] = drift
            continue
        order = attempt(res["ordering"], trait, lambda: trait_ordering(drift, time_limit=time_limit))
        res["drift"][trait] = {"values": drift.values, "drifts": drift.drifts(), "ties": drift.ties()}
        if fig:
            res["figures"][f"drift_{trait}"] = plot_drift(drift, order if "order" in order else None,
                                                          fig(f"drift_{trait}")).name
    attempt(res, "documentation", lambda: documentation(atlas, tree))
    if fig and "error" not in res["documentation"]:
        res["figures"]["documentation"] = plot_documentation(atlas, tree, fig("documentation")).name
    attempt(res, "languages", lambda: language_analysis(atlas, tree, top=top, time_limit=time_limit))
    vir = structural_virality(tree)
    res["virality"] = virality_summary(vir, ids=atlas.nodes["id"], tree=tree)
    if fig and res["virality"]["families"]:
        res["figures"]["virality"] = plot_histogram(vir["virality"], fig("virality"), title="Structural virality",
                                                    xlabel="mean distance between models", log=True).name
    attempt(res, "summary", lambda: summary_distributions(atlas, top=top))
    if fig and "error" not in res["summary"]:
        res["figures"]["summary"] = plot_summary(res["summary"], fig("summary")).name
    return res


def _pct(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"


def to_markdown(res: dict, *, title: str = "Anatomy of an ML ecosystem — report") -> str:
    """The results of :func:`run_all` as a Markdown document."""
    out = [f"# {title}", "", f"Models: {res['tree']['models']:,}; fine-tune edges: {res['tree']['finetune_edges']:,} "
           f"(dropped: {res['tree']['dropped_parents']} extra parents, {res['tree']['dropped_placeholder_edges']} "
           "edges to placeholders).", ""]

    def section(name, body):
        out.extend([f"## {name}", "", *body, ""])

    def err(part):
        return [f"**not computed**: {part['error']}"] if isinstance(part, dict) and "error" in part else None

    def img(key):
        return ["", f"![{key}]({res['figures'][key]})"] if key in res["figures"] else []

    s = res["structures"]
    section("Family structures (Table 1)", err(s) or
            ["| structure | occurrences |", "|---|---:|", *[f"| {k} | {v:,} |" for k, v in s.items()], *img("structures")])
    for artifact in ("metadata", "card"):
        rows = res[f"similarity_{artifact}"]
        body = err(rows)
        if body is None:
            body = ["| configuration | relation | measure | n | mean | 95% CI |", "|---|---|---|---:|---:|---|"]
            body += [f"| {r['configuration']} | {r['relation']} | {r['measure']} | {r['n']} | {r['mean']:.3f} | "
                     f"[{r['low']:.3f}, {r['high']:.3f}] |" for r in rows]
            body += ["", "Findings:", ""]
            for m, f in res[f"findings_{artifact}"].items():
                body.append(f"- {m}: same family > random {f['same_family_above_random']}, siblings > parent/child "
                            f"{f['siblings_above_parent_child']}, falls with generations {f['falls_with_generations']}, "
                            f"falls with distance {f['falls_with_distance']}")
            body += img(f"similarity_{artifact}")
        section(f"Genetic similarity on {artifact} (Figure 7)", body)
    body = ["| trait | rate | observed edges | mutated |", "|---|---:|---:|---:|"]
    for trait, r in res["mutation"].items():
        body.append(f"| {trait} | {_pct(r.get('rate'))} | {r.get('observed', 0):,} | {r.get('mutated', 0):,} |"
                    if "error" not in r else f"| {trait} | not computed: {r['error']} | | |")
    section("Mutation rates (appendix 7)", body)
    body = []
    for trait, o in res["ordering"].items():
        if "error" in o:
            body.append(f"- **{trait}**: not computed: {o['error']}")
            continue
        body.append(f"- **{trait}** ({o['status']}, {o['method']}, gap {_pct(o['gap'])}): drifts explained "
                    f"{_pct(o['drifts_explained'])} of {o['drifts']}, mutations explained {_pct(o['mutations_explained'])} "
                    f"of {o['mutations']:,}. Order: {' → '.join(o['order'])}")
        body += img(f"drift_{trait}")
    section("Drifts and optimal orderings (Figures 8, 10, 11)", body)
    d = res["documentation"]
    section("Documentation (Figure 9)", err(d) or [
        f"- parent/child card length over {d['length']['pairs']:,} edges: {d['length']['parent_mean']:.0f} vs "
        f"{d['length']['child_mean']:.0f} characters (ratio of means {d['length']['ratio_of_means']:.2f}, "
        f"median ratio {d['length']['median_ratio']:.2f})",
        f"- auto-generated cards: derivatives {_pct(d['autogenerated']['derivatives']['share'])}, models with "
        f"children {_pct(d['autogenerated']['parents']['share'])}, all {_pct(d['autogenerated']['all']['share'])}",
        f"- card present: in families {_pct(d['presence']['in_family']['share'])}, outside "
        f"{_pct(d['presence']['outside_family']['share'])}", *img("documentation")])
    lang = res["languages"]
    section("Languages (Figure 10)", err(lang) or [
        f"- languages per model on {lang['specialisation']['edges']:,} edges: parent {lang['specialisation']['parent_mean']:.2f}"
        f" → child {lang['specialisation']['child_mean']:.2f}; child lists fewer on "
        f"{_pct(lang['specialisation']['fewer'])} of edges",
        (f"- English: {lang['english']['into']:,} mutations in, {lang['english']['out_of']:,} out; position "
         f"{lang['english']['position']} of {lang['english']['of']} in the optimal order") if lang.get("english")
        else f"- {lang.get('message', '')}"])
    v = res["virality"]
    section("Structural virality (appendix 8)", [
        f"- families (≥ 2 models): {v['families']:,}; single models: {v['single_node_families']:,}; deepest generation "
        f"{v['max_depth']}",
        *([f"- virality mean {v['mean']:.2f}, median {v['median']:.2f}, 90th percentile {v['p90']:.2f}, max {v['max']:.2f}"]
          if "mean" in v else []), *img("virality")])
    sm = res["summary"]
    body = err(sm)
    if body is None:
        body = []
        for panel in ("licences", "tasks", "languages", "libraries", "datasets", "arxiv_papers"):
            top = ", ".join(f"{t['value']} ({_pct(t['share'])})" for t in sm[panel]["top"][:5])
            body.append(f"- {panel}: {top or 'none'}")
        body.append("- most children: " + ", ".join(f"{t['id']} ({t['children']})" for t in sm["most_children"][:3]))
        body.append("- most downloaded: " + ", ".join(f"{t['id']} ({t['downloads']:,})" for t in sm["most_downloaded"][:3]))
        body.append(f"- arXiv categories: {sm['arxiv_categories_message']}")
        body += img("summary")
    section("Summary distributions (Figure 2)", body)
    return "\n".join(out)


def write_report(atlas, out_dir, **kwargs) -> dict:
    """Run every analysis and write ``report.md``, ``report.html``, ``results.json`` and figures."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = run_all(atlas, figures=out, **kwargs)
    write_report_files(out, to_markdown(res), "Anatomy of an ML ecosystem — report")
    (out / "results.json").write_bytes(dumps(res, indent=True))
    return res
