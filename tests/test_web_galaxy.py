"""The galaxy's extra answers (modelatlas/viz/galaxy.py) and word search: family names from their
roots, labels, hover lookups, edges in web_view, small families hidden, words in any order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st



def _roots(web_view, c):
    members = web_view.members(c)
    return set(web_view.ids[members[web_view.parent[members] < 0]])


def test_families_are_named_by_their_roots(web_client, web_view):
    for c in range(web_view.component_sizes.size):
        fam = web_client.get(f"/api/families/{c}").json()
        assert set(fam["roots"]) == _roots(web_view, c) and fam["root_count"] == len(fam["roots"])
        stdl = web_view.numeric["sub_tree_downloads"]
        heaviest = max(fam["roots"], key=lambda r: stdl[web_view.index(r)])
        assert fam["name"].startswith(heaviest)
        assert ("more root" in fam["name"]) == (fam["root_count"] > 2)
        assert all(r in fam["name"] for r in fam["roots"][:2])
    assert web_client.get("/api/families/0").json()["name"].startswith("meta-llama/Llama-2-7b-hf")
    assert web_client.get("/api/families/99").status_code == 404


def test_labels_name_the_largest_families_and_count_single_models(web_client, web_view):
    body = web_client.get("/api/labels", params={"limit": 5}).json()
    sizes = web_view.component_sizes
    assert [f["size"] for f in body["families"]] == sorted(sizes[sizes > 1].tolist(), reverse=True)[:5]
    assert body["single_models"] == int((sizes == 1).sum()) == sum(g["count"] for g in body["singles"])
    for f in body["families"]:
        xy = web_view.xy[web_view.members(f["component"])]
        assert f["y"] == pytest.approx(xy[:, 1].max())
        assert xy[:, 0].min() - 1e-9 <= f["x"] <= xy[:, 0].max() + 1e-9
    assert web_client.get("/api/labels", params={"limit": 501}).status_code == 422


def test_hover_finds_the_model_under_the_pointer(web_client, web_view):
    for i in range(web_view.n):
        x, y = web_view.xy[i]
        hit = web_client.get("/api/at", params={"x": x + 1e-7, "y": y, "radius": 1e-3}).json()["model"]
        assert hit["id"] == web_view.ids[i]
        assert hit["family"]["component"] == int(web_view.component[i])
    far = web_client.get("/api/at", params={"x": 1e9, "y": 1e9, "radius": 1}).json()
    assert far["model"] is None
    assert web_client.get("/api/at", params={"x": "nan", "y": 0}).status_code == 422


def test_edges_in_view(web_client, web_view):
    g = web_view.graph
    whole = web_view.xy.min(0).tolist() + web_view.xy.max(0).tolist()
    r = web_client.get("/api/edges", params={"bbox": ",".join(map(str, whole))})
    seg = np.frombuffer(r.content, dtype="<f4").reshape(-1, 6)
    assert seg.shape[0] == g.num_edges == int(r.headers["x-total-edges"])
    got = {(tuple(np.round(s[:2], 3)), tuple(np.round(s[2:4], 3))) for s in seg}
    want = {(tuple(np.round(web_view.xy[p].astype(np.float32), 3)), tuple(np.round(web_view.xy[c].astype(np.float32), 3)))
            for p, c in zip(g.parent, g.child)}
    assert got == want
    assert seg[:, 5].sum() == web_view.edge_predicted.sum()
    # A rectangle around one model: only the edges into it; max_edges caps the answer.
    c = int(g.child[0])
    x, y = web_view.xy[c]
    one = np.frombuffer(web_client.get("/api/edges", params={"bbox": f"{x - 1e-6},{y - 1e-6},{x + 1e-6},{y + 1e-6}"}).content,
                        dtype="<f4").reshape(-1, 6)
    assert one.shape[0] == int((g.child == c).sum())
    capped = web_client.get("/api/edges", params={"bbox": ",".join(map(str, whole)), "max_edges": 3})
    assert len(capped.content) == 3 * 24 and int(capped.headers["x-total-edges"]) == g.num_edges


def test_overview_hides_small_families(web_client, web_view):
    sizes = web_view.component_sizes[web_view.component]
    for m in (1, 2, 4, 1000):
        r = web_client.get("/api/overview", params={"min_family": m})
        pts = np.frombuffer(r.content, dtype="<f4").reshape(-1, 5)
        assert pts.shape[0] == int((sizes >= m).sum())
        assert set(pts[:, 4].astype(int)) <= set(np.flatnonzero(web_view.component_sizes >= m))


def test_search_matches_words_in_any_order(web_client, web_view):
    a = [h["id"] for h in web_client.get("/api/search", params={"q": "7b vicuna", "limit": 50}).json()["results"]]
    b = [h["id"] for h in web_client.get("/api/search", params={"q": "vicuna 7b", "limit": 50}).json()["results"]]
    assert set(a) == set(b) and "lmsys/vicuna-7b" in a
    assert all("vicuna" in i.lower() and "7b" in i.lower() for i in a)
    exact = web_client.get("/api/search", params={"q": "alice/chat-lora"}).json()["results"]
    assert exact[0]["id"] == "alice/chat-lora" and exact[0]["family"]
    # "llama 2": the Llama-2 base first (word match, most downloads), named by its family.
    top = web_client.get("/api/search", params={"q": "llama 2"}).json()["results"][0]
    assert top["id"] == "meta-llama/Llama-2-7b-hf" and top["family"].startswith("meta-llama/Llama-2-7b-hf")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["llama", "2", "7b", "q1", "vicuna", "chat", "gguf", "the", "x"]),
                min_size=1, max_size=3))
def test_search_word_order_does_not_matter(web_view, words):
    ids = set(web_view.ids[web_view.search(" ".join(words), 50)])
    assert ids == set(web_view.ids[web_view.search(" ".join(reversed(words)), 50)])
    expected = {i for i in web_view.ids if all(w in i.lower() for w in words)}
    assert ids == expected or (len(ids) == 50 and ids <= expected)
