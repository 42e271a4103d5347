"""End-to-end tests of the web atlas in headless Chromium (Debian's ``chromium``, driven by
Playwright; ``scripts/test-setup.sh`` installs it). The server runs in a thread on loopback."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from modelatlas.viz.data import AtlasView
from modelatlas.viz.server import create_app
from web_atlas import hand_made_atlas

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``view`` in a background thread, on a free loopback port."""

    def __init__(self, view: AtlasView):
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(create_app(view), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("web atlas server did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def launch_chromium(playwright):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium): run scripts/test-setup.sh")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site():
    with LiveServer(AtlasView(hand_made_atlas())) as url:
        yield url


@pytest.fixture(scope="module")
def real_site(hf_trees_path):
    """The atlas of the real Hub records in ../shared/data/hf-trees.jsonl.gz, via the ingest readers."""
    from modelatlas.ingest.pipeline import ingest

    atlas, _ = ingest([str(hf_trees_path)])
    view = AtlasView(atlas)
    with LiveServer(view) as url:
        yield url, view


def watch(pg, site: str) -> list[str]:
    """Collect page errors, CSP violations and requests to any other origin."""
    problems = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("request", lambda r: None if r.url.startswith(site) or r.url.startswith("data:")
          else problems.append(f"external request: {r.url}"))
    pg.add_init_script("document.addEventListener('securitypolicyviolation', "
                       "e => console.error('CSP violation ' + e.violatedDirective))")
    pg.on("console", lambda m: problems.append(m.text) if "CSP violation" in m.text else None)
    return problems


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport={"width": 1400, "height": 850})
    pg = context.new_page()
    problems = watch(pg, site)
    yield pg
    context.close()
    assert not problems, problems


def wait_rendered(page, what: str):
    page.wait_for_selector(f"body[data-rendered='{what}']", state="attached", timeout=30_000)


def legend(page) -> list[str]:
    return page.locator("[data-testid=legend] [data-label]").evaluate_all("els => els.map(e => e.dataset.label)")


def test_galaxy_search_lineage_and_licence_legend(page, site):
    page.goto(site + "/")
    wait_rendered(page, "overview")
    assert "40 models" in page.inner_text("[data-testid=status]")
    assert set(legend(page)) == {"source", "finetune", "quantized", "adapter", "merge"}

    page.fill("[data-testid=search]", "vicu")
    page.wait_for_selector("[data-testid=suggestions] li")
    options = page.locator("[data-testid=suggestions] li").evaluate_all("els => els.map(e => e.dataset.id)")
    assert options[:2] == ["lmsys/vicuna-7b", "TheBloke/vicuna-7B-GGUF"]
    page.click("[data-testid=suggestions] li >> nth=0")
    wait_rendered(page, "component-0")
    page.wait_for_selector("[data-testid=lineage] li")
    assert page.inner_text("[data-testid=model-id]") == "lmsys/vicuna-7b"
    steps = page.locator("[data-testid=lineage] li").all_inner_texts()
    assert steps[0].startswith("lmsys/vicuna-7b") and "finetune" in steps[0]
    assert steps[-1].startswith("meta-llama/Llama-2-7b-hf")

    before = legend(page)
    page.select_option("[data-testid=color]", "license")
    page.wait_for_function("() => document.querySelector('[data-testid=legend] b').textContent === 'license'")
    after = legend(page)
    assert after != before and {"llama2", "mit", "apache-2.0", "unknown"} <= set(after)
    assert "color=license" in page.url and "m=lmsys%2Fvicuna-7b" in page.url
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-atlas-component.png"))


def test_click_a_node_opens_its_panel_and_url_is_shareable(page, site):
    page.goto(site + "/#c=0&color=license")
    wait_rendered(page, "component-0")
    assert page.locator("[data-testid=color]").input_value() == "license"
    page.wait_for_timeout(300)  # sigma's first frame
    pos = page.evaluate("() => window.__atlas.component.screenPosition('bob/merged-7b')")
    box = page.locator("[data-testid=graph]").bounding_box()
    page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])
    page.wait_for_selector("[data-testid=model-id]")
    assert page.inner_text("[data-testid=model-id]") == "bob/merged-7b"
    assert "merge" in page.inner_text("[data-testid=lineage]")
    shared = page.url
    other = page.context.new_page()
    other.goto(shared)
    wait_rendered(other, "component-0")
    other.wait_for_selector("[data-testid=model-id]")
    assert other.inner_text("[data-testid=model-id]") == "bob/merged-7b"
    other.close()


def test_family_camera_is_in_the_shareable_url(page, site):
    page.goto(site + "/#c=0")
    wait_rendered(page, "component-0")
    page.evaluate("() => window.__atlas.component.renderer.getCamera().setState({x: 0.3, y: 0.6, ratio: 0.4})")
    page.wait_for_function("() => location.hash.includes('cam=')")
    assert "cam=0.3%2C0.6%2C0.4" in page.url
    other = page.context.new_page()
    other.goto(page.url)
    wait_rendered(other, "component-0")
    camera = other.evaluate("() => window.__atlas.component.renderer.getCamera().getState()")
    assert (camera["x"], camera["y"], camera["ratio"]) == pytest.approx((0.3, 0.6, 0.4))
    other.click("[data-testid=families] li >> nth=1")  # another family starts from its whole view
    wait_rendered(other, "component-1")
    assert "cam=" not in other.url
    assert other.evaluate("() => window.__atlas.component.renderer.getCamera().getState().ratio") == pytest.approx(1.0)
    other.close()


def test_family_level_of_detail_follows_zoom(page, site):
    """A family drawn 5 models of 36: zooming in fetches the heaviest models inside the view."""
    import httpx

    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/graph?" in r.url and "bbox=" in r.url else None)
    page.goto(site + "/#c=0&lod=5")
    wait_rendered(page, "component-0")
    assert "level of detail: 5 of 36 models (largest sub-trees)" in page.inner_text("#banner")
    page.evaluate("() => window.__atlas.component.renderer.getCamera().setState({x: 0.75, y: 0.5, ratio: 0.3})")
    page.wait_for_function("() => document.querySelector('#banner').textContent.includes('in view')")
    assert asked and all("max_nodes=5" in u for u in asked)
    answer = httpx.get(asked[-1].replace("format=arrow", "format=json")).json()
    assert answer["candidates"] < 36 and answer["bounds"] == page.evaluate("() => window.__atlas.component.data.bounds")
    drawn = page.evaluate("() => window.__atlas.component.data.nodes.id")
    assert sorted(drawn) == sorted(answer["nodes"]["id"])
    # the camera is where it was: the two hidden corners keep sigma's normalisation fixed
    camera = page.evaluate("() => window.__atlas.component.renderer.getCamera().getState()")
    assert (camera["x"], camera["y"], camera["ratio"]) == pytest.approx((0.75, 0.5, 0.3))


def test_filters_and_time_slider_hide_models(page, site):
    page.goto(site + "/#c=0")
    wait_rendered(page, "component-0")
    total = sum(int(t.split("(")[-1].rstrip(")")) for t in page.locator("[data-testid=legend] [data-label]").all_inner_texts())
    page.select_option("#f-license", "mit")
    page.wait_for_function("() => location.hash.includes('license=mit')")
    counts = page.locator("[data-testid=legend] [data-label]").all_inner_texts()
    assert 0 < sum(int(t.split("(")[-1].rstrip(")")) for t in counts) < total
    page.select_option("#f-license", "")
    page.locator("[data-testid=time]").fill("0")
    page.wait_for_function("() => location.hash.includes('t=')")
    label = page.inner_text("#time-label")
    assert label.startswith("2023-01-01") and " 1 dated models shown" in label


def test_overview_click_opens_a_family(page, site):
    page.goto(site + "/")
    wait_rendered(page, "overview")
    page.click("[data-testid=families] li >> nth=1")
    wait_rendered(page, "component-1")
    # Families are named by their root (all roots listed in the answer).
    name = page.evaluate("() => fetch('/api/families/1').then((r) => r.json())")["name"]
    assert f"family {name}" in page.inner_text("[data-testid=status]")
    page.click("[data-testid=home]")
    wait_rendered(page, "overview")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-atlas-galaxy.png"))


def test_galaxy_level_of_detail_follows_zoom(page, site):
    """With 5 of 40 models drawn, zooming in fetches the heaviest models inside the view."""
    import httpx

    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/api/overview" in r.url and "bbox=" in r.url else None)
    page.goto(site + "/#pts=5")
    wait_rendered(page, "overview")
    assert "level of detail: 5 of 40 models" in page.inner_text("[data-testid=status]")
    box = page.locator("[data-testid=overview]").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(50)
    page.wait_for_function("() => document.querySelector('[data-testid=status]').textContent.includes('in view')")
    bbox = page.evaluate("() => window.__atlas.bbox")
    x0, y0, x1, y1 = page.evaluate("() => window.__atlas.meta.bounds")
    assert x0 < bbox[2] and bbox[0] < x1 and y0 < bbox[3] and bbox[1] < y1  # overlaps the atlas
    assert (bbox[2] - bbox[0]) < (x1 - x0) or (bbox[3] - bbox[1]) < (y1 - y0)  # and is smaller
    assert asked and all("max_points=5" in u for u in asked)
    answer = httpx.get(asked[-1])
    shown, total = int(answer.headers["x-point-count"]), int(answer.headers["x-total-points"])
    assert total < 40
    text = page.inner_text("[data-testid=status]")
    assert (f"{shown} of {total} models in view" if shown < total else f"{shown} models in view") in text

    # The view is in the URL: opening it shows the same rectangle, at its own level of detail.
    page.wait_for_function("() => location.hash.includes('v=')")
    saved = [float(v) for v in page.evaluate("() => new URLSearchParams(location.hash.slice(1)).get('v')").split(",")]
    other = page.context.new_page()
    other.goto(page.url)
    wait_rendered(other, "overview")
    other.wait_for_function("() => document.querySelector('[data-testid=status]').textContent.includes('in view')")
    restored = other.evaluate("() => window.__atlas.bbox")
    assert restored == pytest.approx(saved, rel=0.02, abs=0.02 * (x1 - x0))
    other.close()


def non_ascii_atlas():
    """A family whose ids are not all ASCII (UTF-8 byte offsets differ from character offsets)."""
    import pyarrow as pa

    from modelatlas import Atlas

    ids = ["zoë/base", "ascii/child", "müller/ft-ü", "plain/leaf"]
    records = pa.table({"id": ids, "downloads": [10, 5, 3, 1], "license": ["mit", None, "mit", "apache-2.0"]})
    evidence = pa.table({"parent": ["zoë/base", "zoë/base", "müller/ft-ü"], "child": ids[1:],
                         "relation": ["finetune", "finetune", "quantized"], "relation_rule": ["typed_tag"] * 3,
                         "provenance": ["hub_tag", "hub_tag", "predicted:auto"], "confidence": [1.0, 1.0, 0.5],
                         "source": ["test"] * 3})
    return Atlas.build(records, evidence)


@pytest.mark.parametrize("make_atlas", [hand_made_atlas, non_ascii_atlas], ids=["hand-made", "non-ascii"])
def test_page_reads_the_family_answer_exactly(browser, make_atlas):
    """The page reads the Arrow form of /api/components/{c}/graph (web/src/family.js); what it
    decodes must be the JSON answer, field by field."""
    import httpx

    with LiveServer(AtlasView(make_atlas())) as url:
        expected = httpx.get(f"{url}/api/components/0/graph").json()
        pg = browser.new_page()
        pg.goto(url + "/#c=0")
        wait_rendered(pg, "component-0")
        got = pg.evaluate("""() => {
            const d = window.__atlas.component.data, e = d.edges, plain = (a) => Array.from(a);
            const nodes = Object.fromEntries(Object.entries(d.nodes).filter(([k]) => k !== 'colors')
                .map(([k, v]) => [k, k === 'created_at' ? plain(v).map((t) => (Number.isNaN(t) ? null : t)) : plain(v)]));
            nodes.colors = Object.fromEntries(Object.entries(d.nodes.colors).map(([k, v]) => [k, plain(v)]));
            const edges = plain(e.source).map((s, k) => [s, e.target[k], e.relationLabels[e.relation[k]],
                e.provenanceLabels[e.provenance[k]], Math.round(e.confidence[k] * 1e4) / 1e4]);
            return { total: d.total_nodes, shown: d.shown_nodes, truncated: d.truncated, nodes, edges };
        }""")
        pg.close()
    assert (got["total"], got["shown"], got["truncated"]) == \
        (expected["total_nodes"], expected["shown_nodes"], expected["truncated"])
    nodes = expected["nodes"]
    assert got["nodes"]["id"] == nodes["id"]
    for name, values in nodes.items():
        if name in ("x", "y"):
            assert got["nodes"][name] == pytest.approx(values, abs=1e-3)
        elif name != "id":
            assert got["nodes"][name] == values, name
    e = expected["edges"]
    assert sorted(map(tuple, got["edges"])) == sorted(zip(e["source"], e["target"], e["relation"], e["provenance"],
                                                          e["confidence"]))


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_hub_records(browser, real_site):
    """On the real crawl: the galaxy loads, search finds a model, its lineage panel reaches a
    source, colouring by licence changes the legend."""
    import numpy as np

    site, view = real_site
    # The most downloaded model two or more generations below a source.
    deep = np.flatnonzero(view.depth >= 2)
    target = deep[np.argmax(view.downloads[deep])]
    model_id = view.ids[target]
    path = [view.ids[i] for i in view.lineage(int(target))]
    context = browser.new_context(viewport={"width": 1400, "height": 850})
    pg = context.new_page()
    problems = watch(pg, site)
    pg.goto(site + "/")
    wait_rendered(pg, "overview")
    assert f"{view.n:,} models" in pg.inner_text("[data-testid=status]")
    pg.fill("[data-testid=search]", model_id.split("/")[1])
    pg.wait_for_selector(f"[data-testid=suggestions] li[data-id='{model_id}']")
    pg.click(f"[data-testid=suggestions] li[data-id='{model_id}']")
    wait_rendered(pg, f"component-{int(view.component[target])}")
    pg.wait_for_selector("[data-testid=lineage] li")
    assert pg.inner_text("[data-testid=model-id]") == model_id
    steps = [t.split()[0] for t in pg.locator("[data-testid=lineage] li").all_inner_texts()]
    assert steps == path and len(steps) >= 3
    assert view.graph.in_degree[view.index(steps[-1])] == 0
    before = legend(pg)
    pg.select_option("[data-testid=color]", "license")
    pg.wait_for_function("() => document.querySelector('[data-testid=legend] b').textContent === 'license'")
    after = legend(pg)
    assert after != before and "unknown" in after
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "web-atlas-real.png"))
    pg.click("[data-testid=home]")
    wait_rendered(pg, "overview")
    pg.screenshot(path=str(ARTIFACTS / "web-atlas-real-galaxy.png"))
    context.close()
    assert not problems, problems
