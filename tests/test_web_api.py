"""The web atlas's JSON API: every endpoint, its bounds, and bad requests (unknown ids, huge
limits, path tricks) answered as JSON errors with status codes."""

from __future__ import annotations

from collections import deque

import numpy as np
import pyarrow as pa
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import pytest

from modelatlas.viz.layout import LAYOUT_TABLE
from modelatlas.viz.server import MAX_GRAPH_NODES


def _error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]
    assert "Traceback" not in response.text
    return body["error"]


def _descendants(atlas, model):
    kids = {}
    for p, c in zip(atlas.edges["parent"].to_pylist(), atlas.edges["child"].to_pylist()):
        kids.setdefault(p, []).append(c)
    seen, todo = set(), deque([model])
    while todo:
        for c in kids.get(todo.popleft(), []):
            if c not in seen:
                seen.add(c)
                todo.append(c)
    return seen


def test_meta(web_client, web_view):
    meta = web_client.get("/api/meta").json()
    assert meta["nodes"] == web_view.n == 40
    assert meta["edges"] == 38
    assert meta["components"] == 3
    assert meta["predicted_edges"] == 1
    lic = meta["colors"]["license"]
    assert lic["labels"][0] == "unknown" and sum(lic["counts"]) == 40
    assert "llama2" in lic["labels"]
    rel = meta["colors"]["relation"]
    assert dict(zip(rel["labels"], rel["counts"]))["source"] == 3
    assert meta["created_at"][0].startswith("2023-01-01")


def test_components_paged(web_client):
    page = web_client.get("/api/components", params={"limit": 2}).json()
    assert page["total"] == 3
    assert [c["size"] for c in page["components"]] == [36, 3]
    assert page["components"][0]["roots"] == ["meta-llama/Llama-2-7b-hf"]
    assert page["components"][1]["roots"] == ["stabilityai/stable-diffusion-2-1"]
    rest = web_client.get("/api/components", params={"offset": 2, "limit": 2}).json()
    assert [c["roots"] for c in rest["components"]] == [["erin/solo-bert"]]
    assert web_client.get("/api/components", params={"offset": 50}).json()["components"] == []


@pytest.mark.parametrize("params", [{"limit": 10**9}, {"limit": 0}, {"offset": -1}, {"limit": "many"}])
def test_components_bad_params(web_client, params):
    assert "invalid request" in _error(web_client.get("/api/components", params=params), 422)


def test_component_graph(web_client, web_view):
    data = web_client.get("/api/components/0/graph").json()
    nodes, edges = data["nodes"], data["edges"]
    assert data["total_nodes"] == data["shown_nodes"] == 36 and not data["truncated"]
    assert set(nodes["id"]) == {i for i, c in zip(web_view.ids, web_view.component) if c == 0}
    layout = web_view.atlas.extras[LAYOUT_TABLE].to_pydict()
    where = {i: (x, y) for i, x, y in zip(layout["id"], layout["x"], layout["y"])}
    for i, x, y in zip(nodes["id"], nodes["x"], nodes["y"]):
        assert where[i] == pytest.approx((x, y), abs=1e-3)
    pairs = {(nodes["id"][s], nodes["id"][t]) for s, t in zip(edges["source"], edges["target"])}
    assert ("bob/merged-7b", "carol/guess-ft") in pairs and len(pairs) == 35 + 1  # tree edges + one merge
    k = edges["provenance"].index("predicted:weights")
    assert edges["confidence"][k] == pytest.approx(0.62)
    lic = web_view.categories("license")
    shown_licences = {i: lic.labels[c] for i, c in zip(nodes["id"], nodes["colors"]["license"])}
    assert shown_licences["lmsys/vicuna-7b"] == "llama2" and shown_licences["carol/guess-ft"] == "unknown"


def test_component_graph_level_of_detail(web_client, web_view):
    data = web_client.get("/api/components/0/graph", params={"max_nodes": 5}).json()
    assert data["truncated"] and data["total_nodes"] == 36
    shown = set(data["nodes"]["id"])
    stdl = dict(zip(web_view.ids, web_view.numeric["sub_tree_downloads"]))
    top5 = sorted((i for i, c in zip(web_view.ids, web_view.component) if c == 0), key=lambda i: -stdl[i])[:5]
    assert set(top5) <= shown
    for mid in shown:  # closed under layout parents: every shown model hangs from its source
        p = web_view.parent[web_view.index(mid)]
        assert p < 0 or web_view.ids[p] in shown


def _arrow_family(web_client, **params):
    response = web_client.get("/api/components/0/graph", params={**params, "format": "arrow"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    return pa.ipc.open_stream(response.content).read_all()


@pytest.mark.parametrize("max_nodes", [5, 36])
def test_component_graph_arrow_is_the_json_answer(web_client, max_nodes):
    """The page reads the Arrow form; it must say exactly what the JSON form says."""
    data = web_client.get("/api/components/0/graph", params={"max_nodes": max_nodes}).json()
    table = _arrow_family(web_client, max_nodes=max_nodes)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    bounds = [float(v) for v in meta.pop("bounds").split(",")]
    assert bounds == data["bounds"]
    assert meta == {"component": "0", "total_nodes": str(data["total_nodes"]), "candidates": str(data["candidates"]),
                    "shown_nodes": str(data["shown_nodes"]), "truncated": str(data["truncated"]).lower()}
    assert table.num_rows == data["shown_nodes"] and table.to_batches()[0].num_rows == table.num_rows
    nodes = data["nodes"]
    assert table["id"].to_pylist() == nodes["id"]
    for axis in "xy":
        assert table[axis].to_numpy() == pytest.approx(np.array(nodes[axis]), abs=1e-3)
    for name in ("downloads", "sub_tree_downloads", "likes", "downloads_all_time", "descendants"):
        assert table[name].to_pylist() == nodes[name]
    created = table["created_at"].to_numpy()
    assert [None if np.isnan(t) else int(t) for t in created] == nodes["created_at"]
    for name, codes in nodes["colors"].items():
        assert table[f"color_{name}"].to_pylist() == codes
    arrow_edges = {(i, e["target"], e["relation"], e["provenance"], round(e["confidence"], 4))
                   for i, out in enumerate(table["out_edges"].to_pylist()) for e in out}
    e = data["edges"]
    json_edges = set(zip(e["source"], e["target"], e["relation"], e["provenance"], e["confidence"]))
    assert arrow_edges == json_edges and len(json_edges) == len(e["source"])


def test_component_graph_bbox_follows_the_view(web_client, web_view):
    """Zoomed into a family, the level of detail is taken among the models inside the web_view; their
    layout ancestors come along so every shown model still hangs from its source."""
    members = np.flatnonzero(web_view.component == 0)
    x, y = web_view.xy[members, 0], web_view.xy[members, 1]
    whole = web_client.get("/api/components/0/graph").json()
    assert whole["bounds"] == pytest.approx([x.min(), y.min(), x.max(), y.max()])
    assert whole["candidates"] == whole["total_nodes"] == members.size
    x0, x1 = np.quantile(x, [0.5, 1.0])
    inside = members[(x >= x0) & (x <= x1)]
    box = f"{x0},{y.min()},{x1},{y.max()}"
    part = web_client.get("/api/components/0/graph", params={"bbox": box, "max_nodes": 3}).json()
    assert part["candidates"] == inside.size > 3 and part["truncated"]
    assert part["bounds"] == whole["bounds"] and part["total_nodes"] == whole["total_nodes"]
    stdl = web_view.numeric["sub_tree_downloads"]
    heaviest = inside[np.argsort(-stdl[inside], kind="stable")[:3]]
    shown = set(part["nodes"]["id"])
    assert set(web_view.ids[heaviest]) <= shown
    for mid in shown:
        p = web_view.parent[web_view.index(mid)]
        assert p < 0 or web_view.ids[p] in shown
        assert web_view.index(mid) in set(heaviest.tolist()) or any(  # otherwise an ancestor of a chosen one
            mid in [web_view.ids[a] for a in web_view.lineage(int(h))] for h in heaviest)
    everything = web_client.get("/api/components/0/graph", params={"bbox": box}).json()
    assert not everything["truncated"] and set(web_view.ids[inside]) <= set(everything["nodes"]["id"])


@pytest.mark.parametrize("path,status", [
    ("/api/components/0/graph?bbox=0,0,1", 422),
    ("/api/components/0/graph?format=arrow&bbox=2,0,1,1", 422),
    ("/api/components/0/graph?format=pickle", 422),
    ("/api/components/99/graph?format=arrow", 404),
    ("/api/components/99/graph", 404),
    ("/api/components/-1/graph", 404),
    ("/api/components/abc/graph", 422),
    (f"/api/components/0/graph?max_nodes={MAX_GRAPH_NODES + 1}", 422),
    ("/api/components/0/graph?max_nodes=0", 422),
])
def test_component_graph_bad(web_client, path, status):
    _error(web_client.get(path), status)


def test_model_details(web_client, web_view):
    d = web_client.get("/api/models/lmsys/vicuna-7b").json()
    assert d["hub_url"] == "https://huggingface.co/lmsys/vicuna-7b"
    assert [s["id"] for s in d["lineage"]] == ["lmsys/vicuna-7b", "meta-llama/Llama-2-7b-hf"]
    assert d["lineage"][0]["relation"] == "finetune" and "relation" not in d["lineage"][1]
    assert {r: g["count"] for r, g in d["children"].items()} == {"quantized": 1, "adapter": 1, "merge": 1}
    below = _descendants(web_view.atlas, "lmsys/vicuna-7b")
    dl = dict(zip(web_view.ids, web_view.downloads))
    assert d["descendants"] == len(below)
    assert d["sub_tree_downloads"] == dl["lmsys/vicuna-7b"] + sum(dl[m] for m in below)
    assert d["metadata"]["license"] == "llama2" and "card_text" not in d["metadata"]
    assert d["inheritance"]["datasets"]["from_ancestors"] == ["pile"]
    assert d["depth"] == 1 and d["component"] == 0


def test_merge_lineage_goes_through_the_shallowest_parent(web_client):
    d = web_client.get("/api/models/bob/merged-7b").json()
    assert {p["id"]: p["relation"] for p in d["parents"]} == {"lmsys/vicuna-7b": "merge", "alice/chat-lora": "merge"}
    assert [s["id"] for s in d["lineage"]] == ["bob/merged-7b", "lmsys/vicuna-7b", "meta-llama/Llama-2-7b-hf"]
    # Inheritance looks at every ancestor, not only the lineage drawn: the merge inherits llama2
    # through vicuna and Llama-2 although its own licence (and alice's) is apache-2.0.
    lic = d["inheritance"]["license"]
    assert lic["own"] == "apache-2.0" and lic["differs"] and lic["effective"] == "apache-2.0"
    held = {a["license"]: (a["ancestor"], a["distance"]) for a in lic["ancestor_licenses"]}
    assert held["llama2"] == ("lmsys/vicuna-7b", 1)
    assert {s["ancestor"] for s in lic["stricter_ancestors"]} >= {"lmsys/vicuna-7b"}


def test_predicted_parent_and_licence_inheritance(web_client):
    d = web_client.get("/api/models/carol/guess-ft").json()
    (parent,) = d["parents"]
    assert parent["predicted"] and parent["provenance"] == "predicted:weights"
    assert d["lineage"][0]["predicted"]
    assert d["inheritance"]["license"]["own"] is None
    assert d["inheritance"]["license"]["effective"] == "apache-2.0"


def test_placeholder_source(web_client):
    d = web_client.get("/api/models/stabilityai/sd-ft").json()
    assert d["lineage"][-1]["id"] == "stabilityai/stable-diffusion-2-1"
    root = web_client.get("/api/models/stabilityai/stable-diffusion-2-1").json()
    assert root["metadata"]["placeholder"] is True and root["parents"] == []


def test_model_unknown_id_suggests(web_client):
    message = _error(web_client.get("/api/models/lmsys/vicuna-13b"), 404)
    assert "lmsys/vicuna-7b" in message  # did-you-mean suggestion


@pytest.mark.parametrize("model_id", ["../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "..%2F..%2Fetc%2Fpasswd",
                                      "a/b/c", "lmsys/vicuna-7b%00", "x" * 300, "/etc/passwd", "..", "~root/x"])
def test_model_path_tricks(web_client, model_id):
    """Never a file: the web_client may normalise '..' away (404: no such route) or the id is refused (422)."""
    r = web_client.get("/api/models/" + model_id)
    _error(r, r.status_code)
    assert r.status_code in (404, 422)


def test_search_completion(web_client):
    hits = [h["id"] for h in web_client.get("/api/search", params={"q": "vicu"}).json()["results"]]
    assert hits[:2] == ["lmsys/vicuna-7b", "TheBloke/vicuna-7B-GGUF"]  # name prefix, by downloads
    by_name = web_client.get("/api/search", params={"q": "llama-2-7b-q1", "limit": 20}).json()["results"]
    assert {h["id"] for h in by_name} == {"quant1/Llama-2-7b-q1"} | {f"quant{k}/Llama-2-7b-q{k}" for k in range(10, 20)}
    inside = web_client.get("/api/search", params={"q": "chat"}).json()["results"]
    assert [h["id"] for h in inside] == ["alice/chat-lora"]
    assert web_client.get("/api/search", params={"q": "quant", "limit": 3}).json()["results"].__len__() == 3
    assert web_client.get("/api/search", params={"q": "zzzz"}).json()["results"] == []


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "a" * 201}, {"q": "a", "limit": 51}, {"q": "a", "limit": -1}])
def test_search_bad(web_client, params):
    _error(web_client.get("/api/search", params=params), 422)


def test_overview_points(web_client, web_view):
    r = web_client.get("/api/overview", params={"color": "license", "size": "sub_tree_downloads"})
    assert r.headers["content-type"] == "application/octet-stream"
    pts = np.frombuffer(r.content, dtype="<f4").reshape(-1, 5)
    assert pts.shape[0] == web_view.n == int(r.headers["x-point-count"])
    np.testing.assert_allclose(pts[:, :2], web_view.xy, rtol=1e-5, atol=1e-3)
    lic = web_view.categories("license")
    np.testing.assert_array_equal(pts[:, 2], lic.codes)
    assert pts[:, 3].max() == pytest.approx(1.0) and pts[:, 3].min() >= 0
    np.testing.assert_array_equal(pts[:, 4], web_view.component)
    mit = web_client.get("/api/overview", params={"license": "mit"})
    assert int(mit.headers["x-point-count"]) == int(np.sum(np.asarray(lic.labels)[lic.codes] == "mit"))
    late = web_client.get("/api/overview", params={"created_from": "2023-06-01"})
    assert int(late.headers["x-point-count"]) == int(np.sum(web_view.created_at >= 1685577600))


def test_overview_bbox_follows_the_view(web_client, web_view):
    """Zoomed in, the level of detail is taken among the models inside the web_view only."""
    x, y = web_view.xy[:, 0], web_view.xy[:, 1]
    x0, x1 = np.quantile(x, [0.1, 0.6])
    y0, y1 = float(y.min()), float(y.max())
    inside = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    assert 2 < inside.size < web_view.n
    r = web_client.get("/api/overview", params={"bbox": f"{x0},{y0},{x1},{y1}"})
    assert int(r.headers["x-point-count"]) == int(r.headers["x-total-points"]) == inside.size
    pts = np.frombuffer(r.content, dtype="<f4").reshape(-1, 5)
    np.testing.assert_allclose(pts[:, :2], web_view.xy[inside], rtol=1e-5, atol=1e-3)
    r = web_client.get("/api/overview", params={"bbox": f"{x0},{y0},{x1},{y1}", "max_points": 2})
    heaviest = inside[np.argsort(-web_view.numeric["sub_tree_downloads"][inside], kind="stable")[:2]]
    pts = np.frombuffer(r.content, dtype="<f4").reshape(-1, 5)
    np.testing.assert_allclose(pts[:, :2], web_view.xy[np.sort(heaviest)], rtol=1e-5, atol=1e-3)
    assert int(r.headers["x-total-points"]) == inside.size


@pytest.mark.parametrize("params", [{"color": "card_text"}, {"size": "params"}, {"license": "no-such-licence"},
                                   {"created_from": "yesterday"}, {"color": "x" * 41}, {"bbox": "1,2,3"},
                                   {"bbox": "0,0,nan,1"}, {"bbox": "1,0,0,1"}, {"bbox": "a,b,c,d"},
                                   {"bbox": "0,0,inf,1"}])
def test_overview_bad(web_client, params):
    _error(web_client.get("/api/overview", params=params), 422)


def test_page_and_assets_are_local(web_client):
    page = web_client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert "http" not in page.text.replace('href="./', "")  # no external asset
    for tricky in ("/assets/../server.py", "/assets/%2e%2e/server.py", "/assets/..%2Fserver.py",
                   "/assets/../../../../etc/passwd"):
        r = web_client.get(tricky)
        assert r.status_code == 404 and "import" not in r.text


def test_unknown_route_and_internal_error(web_client, web_view, monkeypatch):
    _error(web_client.get("/api/nothing"), 404)
    _error(web_client.post("/api/meta"), 405)
    monkeypatch.setattr(web_view, "search", lambda *a: 1 / 0)
    assert _error(web_client.get("/api/search", params={"q": "x"}), 500) == "internal error"


def test_categories_pool_rare_values_and_unknowns():
    from modelatlas.atlas.derived import category_codes
    from modelatlas.viz.data import MAX_CATEGORIES, OTHER, _pool

    values = np.array([None, "", "unknown", "other"] * 3 + [f"v{k}" for k in range(MAX_CATEGORIES + 4)]
                      + ["v0"] * 5, dtype=object)
    cats = _pool(*category_codes(pa.array(values.tolist(), pa.string())))
    assert cats.labels[0] == "unknown" and cats.counts[0] == 9
    assert cats.labels[1] == "v0" and cats.labels[2] == "other"  # the real value "other", by count
    assert cats.labels[-1] == OTHER and len(cats.labels) == MAX_CATEGORIES + 2
    assert sum(cats.counts) == values.size
    assert [cats.labels[c] for c in cats.codes[:4]] == ["unknown", "unknown", "unknown", "other"]


def test_overview_level_of_detail(web_client, web_view):
    r = web_client.get("/api/overview", params={"max_points": 4})
    pts = np.frombuffer(r.content, dtype="<f4").reshape(-1, 5)
    assert pts.shape[0] == 4 == int(r.headers["x-point-count"]) and int(r.headers["x-total-points"]) == 40
    heaviest = np.sort(np.argsort(-web_view.numeric["sub_tree_downloads"], kind="stable")[:4])
    np.testing.assert_allclose(pts[:, :2], web_view.xy[heaviest], rtol=1e-5, atol=1e-3)
    _error(web_client.get("/api/overview", params={"max_points": 10**8}), 422)


def test_edge_lookup_matches_the_edge_table(web_view):
    edges = web_view.atlas.edges.to_pydict()
    for k, (p, c) in enumerate(zip(edges["parent"], edges["child"])):
        assert web_view.edge_id(web_view.index(p), web_view.index(c)) == k
    assert web_view.edge_id(web_view.index("erin/solo-bert"), web_view.index("lmsys/vicuna-7b")) is None


def test_children_grouped_by_relation_most_downloaded_first(web_client, monkeypatch):
    import modelatlas.viz.server as server

    monkeypatch.setattr(server, "MAX_CHILDREN_LISTED", 5)
    d = web_client.get("/api/models/meta-llama/Llama-2-7b-hf").json()
    assert {r: g["count"] for r, g in d["children"].items()} == {"quantized": 30, "finetune": 1}
    listed = d["children"]["quantized"]["models"]
    assert [m["id"] for m in listed] == [f"quant{k}/Llama-2-7b-q{k}" for k in range(29, 24, -1)]
    assert d["sub_tree_downloads"] == 900_000 + sum(10 * k for k in range(30)) + 50_000 + 30_000 + 1_200 + 700 + 50
