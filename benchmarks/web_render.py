"""Web atlas benchmark: first render in headless Chromium, and API latency under a bounded load.

Measures, on synthetic atlases (preferential-attachment forests, Hub-like fan-outs):

* first render of one 100,000-model family (sigma.js) and of a 2,000,000-model galaxy overview
  (regl-scatterplot): milliseconds from navigation start until the page has drawn its first frame
  (``performance.now()`` when the page marks itself rendered). Baseline, same run: a page only
  fetching the same answer (no decoding, no drawing), so the ratio is the cost of everything else;
* API latency: ``--requests`` requests from ``--clients`` threads on loopback, mixed endpoints,
  p50/p95 per endpoint; baseline ``/api/meta``.

Headless Chromium here has no GPU: WebGL is software-rendered (SwiftShader), so render times are
an upper bound for a desktop browser. Run once: ``python benchmarks/web_render.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from modelatlas import Atlas  # noqa: E402
from modelatlas.viz.data import AtlasView  # noqa: E402
from test_web_browser import CHROMIUM, LiveServer, launch_chromium  # noqa: E402

LICENCES = np.array(["mit", "apache-2.0", "llama2", "cc-by-4.0", "openrail", None], dtype=object)
RELATIONS = np.array(["finetune", "adapter", "quantized", "merge", "unknown"])


def synthetic_atlas(n: int, *, root_share: float, seed: int = 0) -> Atlas:
    """``n`` models; each non-root picks an earlier parent with probability biased to early models
    (rich get richer), so fan-outs are heavy-tailed like the Hub's."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    ids = np.char.add(np.char.add("org", (idx % 5000).astype(str)), np.char.add("/model-", idx.astype(str)))
    parent = (idx * rng.random(n) ** 3).astype(np.int64)
    child = idx[(rng.random(n) >= root_share) & (idx > 0)]
    records = pa.table({
        "id": ids, "downloads": (rng.pareto(1.2, n) * 10).astype(np.int64),
        "license": LICENCES[rng.integers(0, LICENCES.size, n)],
        "pipeline_tag": np.array(["text-generation", "text-to-image", None], dtype=object)[rng.integers(0, 3, n)],
        "created_at": pa.array(1_600_000_000_000_000 + idx * 40_000_000, pa.timestamp("us", tz="UTC")),
    })
    evidence = pa.table({"parent": ids[parent[child]], "child": ids[child],
                         "relation": RELATIONS[rng.integers(0, RELATIONS.size, child.size)],
                         "relation_rule": np.full(child.size, "typed_tag"), "provenance": np.full(child.size, "hub_tag"),
                         "confidence": np.ones(child.size), "source": np.full(child.size, "synthetic")})
    return Atlas.build(records, evidence)


def first_render(browser, url: str, what: str, repeats: int) -> tuple[list[float], dict[str, list[float]]]:
    """Milliseconds to the first drawn frame, and the page's own marks (data fetched, graph built)."""
    times, marks = [], {}
    for _ in range(repeats):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        page.wait_for_selector(f"body[data-rendered='{what}']", state="attached", timeout=120_000)
        times.append(page.evaluate("() => window.__atlas.renderedAt"))
        for name, at in page.evaluate("() => window.__atlas.marks").items():
            marks.setdefault(name, []).append(at)
        page.close()
    return times, marks


def model_opened(browser, url: str, model_id: str, component: int) -> float:
    """Milliseconds from navigation to a model's family drawn and its panel filled (a share URL)."""
    from urllib.parse import quote

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{url}/#c={component}&m={quote(model_id, safe='')}")
    page.wait_for_function("(id) => document.body.dataset.model === id", arg=model_id, timeout=120_000)
    ms = page.evaluate("() => performance.now()")
    page.close()
    return ms


def atlas_targets(browser, path: str, repeats: int, models: int, seed: int = 0) -> None:
    """The issue's targets on a saved atlas (e.g. ``modelatlas synth -n 200000`` ingested): galaxy
    first frame, and random models (the largest family's heaviest model among them) opened."""
    t = time.perf_counter()
    view = AtlasView(Atlas.load(path))
    print(f"loaded {view.n:,} models ({view.component_sizes.size:,} families) in {time.perf_counter() - t:.1f} s",
          flush=True)
    rng = np.random.default_rng(seed)
    picks = [int(v) for v in rng.integers(0, view.n, models)]
    biggest = view.members(0)
    picks.append(int(biggest[np.argmax(view.numeric["sub_tree_downloads"][biggest])]))
    with LiveServer(view) as site:
        drawn, marks = first_render(browser, f"{site}/", "overview", repeats)
        print(f"galaxy first frame: first visit {drawn[0]:,.0f} ms, median {statistics.median(drawn):,.0f} ms, "
              f"max {max(drawn):,.0f} ms", flush=True)
        opened = []
        for i in picks:
            ms = model_opened(browser, site, view.ids[i], int(view.component[i]))
            opened.append(ms)
            print(f"  opened {view.ids[i]} (family of {int(view.component_sizes[view.component[i]]):,}): {ms:,.0f} ms",
                  flush=True)
        print(f"model opened (family + panel): median {statistics.median(opened):,.0f} ms, max {max(opened):,.0f} ms "
              f"over {len(opened)} models", flush=True)


def fetch_only(browser, site: str, path: str, repeats: int) -> list[float]:
    """Baseline: fetching the same (binary) answer in a page, without decoding or drawing it."""
    times = []
    for _ in range(repeats):
        page = browser.new_page()
        page.goto(site + "/api/meta")
        times.append(page.evaluate(f"async () => {{ const t = performance.now(); "
                                   f"await fetch('{path}').then(r => r.arrayBuffer()); "
                                   f"return performance.now() - t; }}"))
        page.close()
    return times


def api_load(site: str, view: AtlasView, requests: int, clients: int, seed: int = 0) -> dict[str, list[float]]:
    import httpx

    rng = np.random.default_rng(seed)
    ids = view.ids[rng.integers(0, view.n, requests)]
    small = np.flatnonzero((view.component_sizes > 1) & (view.component_sizes < 2000))
    jobs = []
    for k in range(requests):
        kind = k % 5
        if kind == 0:
            jobs.append(("meta", "/api/meta"))
        elif kind == 1:
            jobs.append(("model", "/api/models/" + ids[k]))
        elif kind == 2:
            jobs.append(("search", f"/api/search?q={ids[k][:6]}&limit=10"))
        elif kind == 3:
            jobs.append(("components", f"/api/components?offset={int(rng.integers(0, 1000))}&limit=50"))
        else:
            jobs.append(("component graph (<2k)", f"/api/components/{int(rng.choice(small))}/graph"))
    out: dict[str, list[float]] = {}
    lock = threading.Lock()
    local = threading.local()

    def one(job):
        name, path = job
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=site, timeout=60)
        t = time.perf_counter()
        r = local.client.get(path)
        ms = (time.perf_counter() - t) * 1000
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
        with lock:
            out.setdefault(name, []).append(ms)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, jobs))
    return out


def answer_costs(view: AtlasView, max_nodes: int, repeats: int = 3) -> None:
    """Server side of the family answer: the JSON form built and encoded with the standard library
    (the baseline) or orjson, against the Arrow form the page reads (built and written in one go)."""
    import json

    import orjson

    from modelatlas.viz.server import _component_graph, _component_graph_arrow

    build, std, fast, arrow = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        answer = _component_graph(view, 0, max_nodes)
        t1 = time.perf_counter()
        body = json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        t2 = time.perf_counter()
        orjson.dumps(answer)
        t3 = time.perf_counter()
        stream = _component_graph_arrow(view, 0, max_nodes)
        t4 = time.perf_counter()
        build.append(t1 - t0), std.append(t2 - t1), fast.append(t3 - t2), arrow.append(t4 - t3)
    b, j, o, a = (statistics.median(v) * 1000 for v in (build, std, fast, arrow))
    print(f"family answer: JSON ({len(body) / 1e6:.1f} MB) build {b:.0f} ms + encode {j:.0f} ms (json) or "
          f"{o:.0f} ms (orjson); Arrow ({len(stream) / 1e6:.1f} MB) build + write {a:.0f} ms "
          f"({(b + j) / a:.1f}x faster than build + json)", flush=True)


def report(rows) -> None:
    """The first-render table; "first" is the first visit (the server had not built the answer)."""
    print("\n## first render (ms from navigation start; software WebGL)")
    print("| view | first visit | median | max | data in page at | graph built at | fetch only (baseline) "
          "| ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, drawn, base, marks in rows:
        m, b = statistics.median(drawn), statistics.median(base)
        at = {k: f"{statistics.median(v):,.0f}" for k, v in marks.items()}
        print(f"| {name} | {drawn[0]:,.0f} | {m:,.0f} | {max(drawn):,.0f} | {at.get('fetched', '-')} | "
              f"{at.get('built', '-')} | {b:,.0f} | {m / b:.1f}x |")


def p95(values) -> float:
    return float(np.percentile(values, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--component-nodes", type=int, default=100_000)
    ap.add_argument("--galaxy-nodes", type=int, default=2_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--family-only", action="store_true", help="skip the galaxy and the API load")
    ap.add_argument("--atlas", help="measure the galaxy's first frame and models opened on this saved atlas only")
    ap.add_argument("--models", type=int, default=10, help="with --atlas: random models to open")
    args = ap.parse_args()
    if not CHROMIUM.exists():
        sys.exit("needs Debian's chromium at /usr/bin/chromium (scripts/test-setup.sh)")
    from playwright.sync_api import sync_playwright

    if args.atlas:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            atlas_targets(browser, args.atlas, args.repeats, args.models)
            browser.close()
        return

    rows = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        t = time.perf_counter()
        family = AtlasView(synthetic_atlas(args.component_nodes, root_share=0.0, seed=1))
        print(f"built {family.n:,}-model family and its layout in {time.perf_counter() - t:.1f} s", flush=True)
        answer_costs(family, args.component_nodes)
        with LiveServer(family) as site:
            lod = args.component_nodes
            drawn, marks = first_render(browser, f"{site}/#c=0&lod={lod}", "component-0", args.repeats)
            base = fetch_only(browser, site, f"/api/components/0/graph?max_nodes={lod}&format=arrow", args.repeats)
            rows.append((f"family of {family.n:,} (sigma.js)", drawn, base, marks))
        del family
        if args.family_only:
            browser.close()
            report(rows)
            return
        t = time.perf_counter()
        galaxy = AtlasView(synthetic_atlas(args.galaxy_nodes, root_share=0.3, seed=2))
        build_s = time.perf_counter() - t
        print(f"built {galaxy.n:,}-model galaxy ({galaxy.component_sizes.size:,} families) and its layout "
              f"in {build_s:.1f} s", flush=True)
        with LiveServer(galaxy) as site:
            drawn, marks = first_render(browser, f"{site}/", "overview", args.repeats)
            base = fetch_only(browser, site, "/api/overview?max_points=300000", args.repeats)
            rows.append((f"galaxy of {galaxy.n:,}, 300,000 drawn (regl-scatterplot)", drawn, base, marks))
            latency = api_load(site, galaxy, args.requests, args.clients)
        browser.close()

    report(rows)
    print(f"\n## API latency on the {args.galaxy_nodes:,}-model atlas "
          f"({args.requests:,} requests, {args.clients} clients, loopback)")
    print("| endpoint | requests | p50 ms | p95 ms | p95 vs /api/meta |")
    print("|---|---:|---:|---:|---:|")
    ref = p95(latency["meta"])
    for name, values in latency.items():
        print(f"| {name} | {len(values)} | {statistics.median(values):.1f} | {p95(values):.1f} | "
              f"{p95(values) / ref:.1f}x |")


if __name__ == "__main__":
    main()
