"""End-to-end tests of the second edition of the web atlas (issue: a galaxy people can read,
navigation that works): galaxy labels, hover and click, edges when zoomed in, small families
hidden, Back/Forward, word search, checked share URLs, help, undated models, replay duration,
keyboard and a 390 px screen. Headless Debian chromium, as tests/test_web_browser.py."""

from __future__ import annotations

import numpy as np
import pytest
import test_web_browser as base
from test_web_browser import wait_rendered, watch

# The fixtures of the first browser tests (one chromium and one server per module).
browser, page, site, real_site = base.browser, base.page, base.site, base.real_site

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def _model_screen(page, model_id):
    """Where model ``model_id`` is drawn on the galaxy, in page pixels."""
    pos = page.evaluate(f"() => fetch('/api/models/{model_id}').then((r) => r.json()).then((d) => d.position)")
    p = page.evaluate(f"() => window.__atlas.overview.screenOf({pos[0]}, {pos[1]})")
    box = page.locator("[data-testid=overview]").bounding_box()
    return box["x"] + p["x"], box["y"] + p["y"]


def test_galaxy_labels_hover_and_click_select_the_model(page, site):
    page.goto(site + "/")
    wait_rendered(page, "overview")
    labels = page.locator("#galaxy-labels .glabel.family:not([hidden])").all_inner_texts()
    assert any(t.startswith("Llama-2-7b-hf") for t in labels), labels
    assert page.locator("#galaxy-labels .glabel.singles").count() >= 1
    x, y = _model_screen(page, "lmsys/vicuna-7b")
    page.mouse.move(x - 3, y)
    page.mouse.move(x, y)
    page.wait_for_selector("[data-testid=tooltip]:not([hidden])")
    tip = page.inner_text("[data-testid=tooltip]")
    assert tip.startswith("lmsys/vicuna-7b") and "family meta-llama/Llama-2-7b-hf" in tip
    page.mouse.click(x, y)
    page.wait_for_selector("body[data-model='lmsys/vicuna-7b']", state="attached")
    assert "m=lmsys%2Fvicuna-7b" in page.evaluate("location.hash")
    assert page.inner_text("[data-testid=model-id]") == "lmsys/vicuna-7b"


def test_galaxy_draws_edges_in_view_and_hides_small_families(page, site):
    page.goto(site + "/")
    wait_rendered(page, "overview")
    # 40 models: all in view, so all 38 edges are drawn.
    page.wait_for_function("() => window.__atlas.galaxyEdges === 38", timeout=15_000)
    x, y = _model_screen(page, "lmsys/vicuna-7b")
    page.mouse.move(x, y)
    for _ in range(10):
        page.mouse.wheel(0, -500)
        page.wait_for_timeout(40)
    # Zoomed in: only the edges into the models in view.
    page.wait_for_function("() => window.__atlas.galaxyEdges > 0 && window.__atlas.galaxyEdges < 38", timeout=15_000)
    page.fill("[data-testid=min-family]", "3")
    page.press("[data-testid=min-family]", "Enter")
    page.wait_for_function("() => document.querySelector('[data-testid=status]').textContent.includes("
                           "'families under 3 models hidden')")
    assert "min=3" in page.evaluate("location.hash")
    assert page.evaluate("window.__atlas.overview.component.every((c) => c === 0 || c === 1)")


def test_back_and_forward_move_between_views(page, site):
    page.goto(site + "/")
    wait_rendered(page, "overview")
    page.click("[data-testid=families] button >> nth=0")
    wait_rendered(page, "component-0")
    page.fill("[data-testid=search]", "alice/chat-lora")
    page.press("[data-testid=search]", "Enter")
    page.wait_for_selector("body[data-model='alice/chat-lora']", state="attached")
    page.go_back()
    # polled on a timer: under load the page's animation frames (software WebGL) can starve rAF polling
    page.wait_for_function("() => !location.hash.includes('m=')", polling=100)
    assert page.url.startswith(site)
    page.go_back()
    wait_rendered(page, "overview")
    page.go_forward()
    wait_rendered(page, "component-0")
    page.go_forward()
    page.wait_for_selector("body[data-model='alice/chat-lora']", state="attached")


def test_search_words_enter_and_no_results(page, site):
    page.goto(site + "/")
    wait_rendered(page, "overview")
    page.fill("[data-testid=search]", "7b vicuna")
    page.wait_for_selector("[data-testid=suggestions] li[data-id='lmsys/vicuna-7b']")
    page.fill("[data-testid=search]", "zzzz qqq")
    page.wait_for_selector("[data-testid=suggestions] li.empty")
    assert "no model matches" in page.inner_text("[data-testid=suggestions]")
    # Enter acts at once, without waiting for the list: the best hit opens.
    page.fill("[data-testid=search]", "vicuna 7b")
    page.press("[data-testid=search]", "Enter")
    page.wait_for_selector("body[data-model]:not([data-model=''])", state="attached")
    assert page.evaluate("document.body.dataset.model") == "lmsys/vicuna-7b"


BAD_URLS = [("c=0&t=-1e20", "t=-1e20"), ("c=0&color=constructor", "color=constructor"),
            ("c=0&size=__proto__", "size=__proto__"), ("c=0&conf=2", "conf=2"), ("c=999", "c=999"),
            ("c=0&license=nope", "license=nope")]


def test_bad_share_urls_fall_back_with_a_notice(browser, site):
    for bad, shown in BAD_URLS:
        context = browser.new_context(viewport={"width": 1000, "height": 700})
        pg = context.new_page()
        problems = watch(pg, site)
        pg.goto(site + "/#" + bad)
        wait_rendered(pg, "overview" if bad == "c=999" else "component-0")
        pg.wait_for_selector("[data-testid=notice]:not([hidden])")
        assert shown in pg.inner_text("[data-testid=notice]"), bad
        assert shown not in pg.evaluate("decodeURIComponent(location.hash)"), bad
        context.close()
        assert not problems, (bad, problems)


def test_family_lists_all_its_roots(page, site):
    page.goto(site + "/#c=0")
    wait_rendered(page, "component-0")
    fam = page.evaluate("() => fetch('/api/families/0').then((r) => r.json())")
    page.wait_for_selector("[data-testid=roots]:not([hidden])")
    assert page.locator("#roots button").all_inner_texts() == fam["roots"]
    page.click(f"#roots button >> nth={len(fam['roots']) - 1}")
    page.wait_for_selector(f"body[data-model='{fam['roots'][-1]}']", state="attached")


def test_a_model_that_cannot_be_opened_says_so_and_leaves_the_url(page, site):
    page.goto(site + "/#c=0&m=nobody/nothing")
    wait_rendered(page, "component-0")
    page.wait_for_selector("[data-testid=notice]:not([hidden])")
    assert "cannot open nobody/nothing" in page.inner_text("[data-testid=notice]")
    assert "m=" not in page.evaluate("location.hash")
    assert page.locator("[data-testid=panel]").is_hidden()


def test_help_overlay_and_keyboard(page, site):
    page.goto(site + "/#c=0&m=lmsys%2Fvicuna-7b")
    page.wait_for_selector("body[data-model='lmsys/vicuna-7b']", state="attached")
    page.keyboard.press("?")
    assert page.locator("[data-testid=help]").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("[data-testid=help]").is_hidden()
    # Panel links are real links: reachable with Tab, opened with Enter, with a visible focus ring.
    link = page.locator("#panel a.model[data-id='meta-llama/Llama-2-7b-hf']").first
    link.focus()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-model='meta-llama/Llama-2-7b-hf']", state="attached")
    tags = page.locator("[data-testid=families] button").count()
    assert tags >= 2


def test_time_counts_respect_filters_and_replay_keeps_its_duration(page, site):
    page.goto(site + "/#c=0")
    wait_rendered(page, "component-0")
    all_dated = int(page.get_attribute("[data-testid=time-label]", "data-dated"))
    page.select_option("#f-license", "llama2")
    page.wait_for_function("() => location.hash.includes('license=llama2')")
    filtered = int(page.get_attribute("[data-testid=time-label]", "data-dated"))
    assert 0 < filtered < all_dated
    page.click("#play")
    page.wait_for_function("() => window.__atlas.replay", timeout=20_000)
    replay = page.evaluate("window.__atlas.replay")
    assert 4700 <= replay["ms"] <= 4800 * 1.25 and 1 <= replay["steps"] <= 60


def test_small_screen_390px(browser, site):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    pg = context.new_page()
    problems = watch(pg, site)
    pg.goto(site + "/#c=0&m=lmsys%2Fvicuna-7b")
    pg.wait_for_selector("body[data-model='lmsys/vicuna-7b']", state="attached")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    panel = pg.locator("[data-testid=panel]").bounding_box()
    graph = pg.locator("[data-testid=graph]").bounding_box()
    assert panel["width"] >= 380 and panel["y"] > 844 / 3  # a drawer along the bottom
    assert graph["width"] >= 380 and graph["height"] >= 300
    assert pg.locator("#sidebar").bounding_box()["x"] < 0  # hidden until the menu opens it
    pg.click("[data-testid=menu]")
    pg.wait_for_function("() => document.querySelector('#sidebar').getBoundingClientRect().x >= 0")
    context.close()
    assert not problems, problems


def test_llama_2_is_found_by_name_and_labelled_on_the_real_galaxy(browser, real_site):
    url, view = real_site
    context = browser.new_context(viewport={"width": 1400, "height": 850})
    pg = context.new_page()
    problems = watch(pg, url)
    pg.goto(url + "/")
    wait_rendered(pg, "overview")
    # Controls that would do nothing are not offered.
    predicted = int(view.edge_predicted.sum())
    assert pg.locator("#predicted-box").is_hidden() == (predicted == 0)
    options = pg.locator("#sidebar select option").all_inner_texts()
    assert options and not any(o.endswith("(0)") for o in options)
    pg.fill("[data-testid=search]", "llama 2")
    pg.wait_for_selector("[data-testid=suggestions] li[data-id]")
    first = pg.locator("[data-testid=suggestions] li[data-id] >> nth=0")
    assert "llama-2" in first.get_attribute("data-id").lower()
    family = view.component[view.index(first.get_attribute("data-id"))]
    labels = pg.locator("#galaxy-labels .glabel.family:not([hidden])")
    comps = labels.evaluate_all("els => els.map((e) => Number(e.dataset.component))")
    assert family in comps
    text = labels.nth(comps.index(family)).inner_text()
    assert "llama-2" in text.lower(), text
    # Its time slider: most of the family is undated (placeholders); once a time is set they stay
    # dimmed and are counted apart from the dated models shown.
    members = view.members(family)
    undated = int(np.isnan(view.created_at[members]).sum())
    assert undated > 0
    t = int(np.nanmedian(view.created_at[members]))
    pg.goto(f"{url}/#c={family}&t={t}")
    wait_rendered(pg, f"component-{family}")
    pg.wait_for_function("() => document.querySelector('[data-testid=time-label]').textContent.includes('dimmed')")
    label = pg.locator("[data-testid=time-label]")
    assert int(label.get_attribute("data-undated")) == undated
    dated = int(label.get_attribute("data-dated"))
    assert dated == int((view.created_at[members] <= t).sum())
    row = pg.evaluate("() => { const c = window.__atlas.component; "
                      "return c.data.nodes.created_at.findIndex((v) => Number.isNaN(v)); }")
    assert pg.evaluate(f"() => window.__atlas.component.nodeStyle('{row}', {{}}).color") == "#d0d0d0"
    context.close()
    assert not problems, problems
