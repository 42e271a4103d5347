"""The web atlas: a read-only JSON API over one atlas, and the page that draws it.

``create_app(view)`` returns the ASGI application (FastAPI). Every answer is bounded (page sizes and node
counts have hard caps), every input is validated (model ids against the Hub's id grammar, numbers
against ranges), no request names a file, and errors are JSON objects ``{"error": ...}`` with a
status code, never tracebacks. The page's assets are served from the package
(``modelatlas/viz/static``) and a Content-Security-Policy forbids the page any other origin.

Only requests whose ``Host`` header names a loopback address, or a host the user allowed
(``serve --allow-host``), are answered: any other is refused with 421, so a web page on another
site cannot read the API through the user's browser by rebinding its DNS name to 127.0.0.1.
Every ``GET`` also answers ``HEAD`` (headers only), as HTTP requires.

Endpoints (all ``GET`` and ``HEAD``):

``/api/meta``
    Counts, the colour and size features with their legends, the palette, the created_at range.
``/api/components?offset=&limit=``
    Components, largest first, paged (``limit`` at most 500).
``/api/components/{c}/graph?max_nodes=&format=json|arrow&bbox=``
    One component's nodes (layout, attributes, colour codes) and edges; beyond ``max_nodes``
    (at most 100,000) only the models with the largest sub-tree downloads and their ancestors;
    with ``bbox=x0,y0,x1,y1`` the heaviest among the models inside that rectangle (the page asks
    for it as the user zooms into a family too large to draw whole). ``bounds`` is the whole
    component's layout rectangle, ``candidates`` how many models the level of detail chose from.
    ``format=arrow`` gives the same answer as an Arrow IPC stream (what the page reads: no text
    to parse); JSON is the default.
``/api/models/{owner}/{name}``
    A model's metadata, lineage path to its source with the relation of each step, parents,
    children by relation, sub-tree downloads, licence and data inheritance, Hub link, and the
    relation-audit flags of the model (declared relations its files contradict).
``/api/search?q=&limit=``
    Models whose id holds every word of ``q`` in any order, ranked exact, prefix, word starts, rest
    (by downloads within a rank), each with its family's name (:meth:`AtlasView.search`).
``/api/overview?color=&size=&max_points=&bbox=&min_family=&...filters``
    Every (filtered) model as five little-endian float32 per point: x, y, colour code, size in
    [0, 1], component — the galaxy overview drawn with WebGL points; beyond ``max_points`` only
    the models with the largest sub-tree downloads (level of detail). ``bbox=x0,y0,x1,y1`` (layout
    coordinates) keeps the models inside that rectangle: the page asks for it as the user zooms in,
    so the level of detail follows the view; ``min_family`` hides families smaller than that.
``/api/families/{c}``, ``/api/labels``, ``/api/at``, ``/api/edges``
    Family names, galaxy labels, hover lookup and edges in view (:mod:`modelatlas.viz.galaxy`).
"""

# No "from __future__ import annotations": FastAPI must resolve the Annotated query types.
from dataclasses import dataclass
from datetime import datetime, timezone
from collections.abc import Iterable
from functools import lru_cache
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc  # noqa: F401  (pa.ipc)

from modelatlas.ingest.relation_audit import relation_flags
from modelatlas.jsonio import dumps
from modelatlas.viz import palette
from modelatlas.viz.data import CATEGORICAL, SIZES, AtlasView, ViewError
from modelatlas.viz.galaxy import add_galaxy_routes

STATIC = Path(__file__).resolve().parent / "static"
MAX_PAGE = 500
MAX_GRAPH_NODES = 100_000
DEFAULT_GRAPH_NODES = 30_000
#: Component answers kept in memory (each up to ~11 MB for a 100,000-model family).
GRAPH_ANSWERS_KEPT = 16
GRAPH_MEDIA_TYPES = {"json": "application/json", "arrow": "application/vnd.apache.arrow.stream"}
MAX_SEARCH = 50
MAX_OVERVIEW_POINTS = 3_000_000
MAX_CHILDREN_LISTED = 50
HUB_URL = "https://huggingface.co/"
#: The page may talk to this server only. regl (under regl-scatterplot) compiles its draw calls
#: with ``Function``, hence 'unsafe-eval'; scripts still load from this origin only.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
#: Fields of a node shown in the model panel (the card text itself is not served).
DETAIL_FIELDS = ("author", "placeholder", "created_at", "created_at_backfilled", "last_modified", "downloads",
                 "downloads_all_time", "likes", "license", "pipeline_tag", "modality", "library_name",
                 "model_type", "architectures", "languages", "datasets", "arxiv", "params", "quantized",
                 "gated", "card_present", "card_length", "sources")


#: Host names always allowed (every 127.0.0.0/8 and ``::1`` address is, too).
LOOPBACK_NAMES = ("localhost",)


def create_app(view: AtlasView, allow_hosts: Iterable[str] = ()):
    """The FastAPI application serving ``view`` (see the module docstring for the endpoints).

    Parameters
    ----------
    view:
        The atlas to serve.
    allow_hosts:
        Host names (or addresses) that requests may name in their ``Host`` header besides the
        loopback ones, e.g. the machine's name when serving on a network interface.
    """
    view.warm()
    allowed = {_host_name(h) for h in (*LOOPBACK_NAMES, *allow_hosts)}
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app = FastAPI(title="modelatlas", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ViewError)
    async def _view_error(request: Request, exc: ViewError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": f"invalid request: {problems}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        return JSONResponse({"error": "internal error"}, status_code=500)

    @app.middleware("http")
    async def _host_allow_list(request: Request, call_next):
        host = _host_name(request.headers.get("host", ""))
        if host not in allowed and not _is_loopback(host):
            return JSONResponse({"error": f"host {host[:100]!r} is not served here (serve --allow-host adds one)"},
                                status_code=421)
        return await call_next(request)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/", include_in_schema=False)
    def index():
        page = STATIC / "index.html"
        if not page.exists():
            raise ViewError("the web page is not built (run 'npm run build' in web/)", 503)
        return FileResponse(page, media_type="text/html")

    if (STATIC / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=STATIC / "assets"), name="assets")

    answers: dict[str, dict] = {}
    galaxy = add_galaxy_routes(app, view)

    @app.get("/api/meta")
    def meta():
        if "meta" not in answers:  # the atlas is read-only: compute once
            answers["meta"] = _meta(view)
        return answers["meta"]

    @app.get("/api/components")
    def components(offset: Annotated[int, Query(ge=0)] = 0,
                   limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100):
        return _components(view, offset, limit)

    @lru_cache(maxsize=GRAPH_ANSWERS_KEPT)
    def graph_body(component: int, max_nodes: int, form: str, bbox: tuple | None) -> bytes:
        # The atlas is read-only, so an answer can be kept; orjson encodes a 100,000-model family
        # about 7x faster than the standard library (benchmarks/web_render.py).
        if form == "arrow":
            return _component_graph_arrow(view, component, max_nodes, bbox)
        return orjson.dumps(_component_graph(view, component, max_nodes, bbox))

    @app.get("/api/components/{component}/graph")
    def component_graph(component: int,
                        max_nodes: Annotated[int, Query(ge=1, le=MAX_GRAPH_NODES)] = DEFAULT_GRAPH_NODES,
                        format: Literal["json", "arrow"] = "json",
                        bbox: Annotated[str | None, Query(max_length=200)] = None):
        body = graph_body(component, max_nodes, format, _bbox(bbox) if bbox is not None else None)
        return Response(body, media_type=GRAPH_MEDIA_TYPES[format])

    @app.get("/api/models/{model_id:path}")
    def model(model_id: str):
        return Response(dumps(_model(view, view.index(model_id))), media_type="application/json")

    @app.get("/api/search")
    def search(q: Annotated[str, Query(min_length=1, max_length=200)],
               limit: Annotated[int, Query(ge=1, le=MAX_SEARCH)] = 10):
        hits = view.search(q, limit)
        return {"query": q, "results": [{"id": view.ids[i], "downloads": int(view.downloads[i]),
                                         "component": int(view.component[i]),
                                         "family": galaxy.family(int(view.component[i]))["name"]}
                                        for i in hits]}

    @app.get("/api/overview")
    def overview(color: Annotated[str, Query(max_length=40)] = "relation",
                 size: Annotated[str, Query(max_length=40)] = "downloads",
                 license: Annotated[str | None, Query(max_length=200)] = None,
                 pipeline_tag: Annotated[str | None, Query(max_length=200)] = None,
                 relation: Annotated[str | None, Query(max_length=200)] = None,
                 library_name: Annotated[str | None, Query(max_length=200)] = None,
                 created_from: Annotated[str | None, Query(max_length=40)] = None,
                 created_to: Annotated[str | None, Query(max_length=40)] = None,
                 max_points: Annotated[int, Query(ge=1, le=MAX_OVERVIEW_POINTS)] = MAX_OVERVIEW_POINTS,
                 bbox: Annotated[str | None, Query(max_length=200)] = None,
                 min_family: Annotated[int, Query(ge=1, le=10**9)] = 1):
        filters = {"license": license, "pipeline_tag": pipeline_tag, "relation": relation,
                   "library_name": library_name}
        body, count, total = _overview(view, color, size, filters, created_from, created_to, max_points,
                                       _bbox(bbox) if bbox is not None else None, min_family)
        return Response(body, media_type="application/octet-stream",
                        headers={"X-Point-Count": str(count), "X-Total-Points": str(total),
                                 "Cache-Control": "no-store"})

    return _HeadAsGet(app)


class _HeadAsGet:
    """ASGI wrapper answering ``HEAD`` as the same ``GET`` without its body (RFC 9110 §9.3.2), so
    every endpoint, present or future, supports it (``curl -I``)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def headers_only(message):
            if message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def _host_name(header: str) -> str:
    """The host of a ``Host`` header, lower case, without port or brackets (``[::1]:8000`` → ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return header.rstrip(".")


def _is_loopback(host: str) -> bool:
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------- answers
def _meta(view: AtlasView) -> dict:
    created = view.created_at[np.isfinite(view.created_at)]
    return {
        "nodes": view.n,
        "edges": view.graph.num_edges,
        "components": int(view.component_sizes.size),
        "predicted_edges": int(view.edge_predicted.sum()),
        "colors": {name: {"labels": c.labels, "counts": c.counts}
                   for name, c in ((n, view.categories(n)) for n in CATEGORICAL)},
        "sizes": list(SIZES),
        "palette": palette.as_dict(),
        "created_at": [_iso(created.min()), _iso(created.max())] if created.size else None,
        "bounds": [float(view.xy[:, 0].min()), float(view.xy[:, 1].min()),
                   float(view.xy[:, 0].max()), float(view.xy[:, 1].max())] if view.n else None,
    }


def _components(view: AtlasView, offset: int, limit: int) -> dict:
    sizes = view.component_sizes
    stop = min(offset + limit, sizes.size)
    rows = []
    stdl = view.numeric["sub_tree_downloads"]
    for c in range(offset, stop):
        members = view.members(c)
        roots = members[view.parent[members] < 0]
        top = roots[np.argsort(-stdl[roots], kind="stable")][:5]
        rows.append({"component": c, "size": int(sizes[c]),
                     "roots": [view.ids[i] for i in top], "root_count": int(roots.size),
                     "downloads": int(view.downloads[members].sum())})
    return {"total": int(sizes.size), "offset": offset, "limit": limit, "components": rows}


@dataclass(frozen=True)
class _Family:
    """The part of one component an answer shows: ``members`` (node indices, ascending) and the
    edge rows ``k`` between them, with ``source``/``target`` as positions in ``members``."""

    component: int
    total: int
    candidates: int
    bounds: tuple[float, float, float, float]
    members: np.ndarray
    k: np.ndarray
    source: np.ndarray
    target: np.ndarray


def _family(view: AtlasView, component: int, max_nodes: int, bbox=None) -> _Family:
    """The models of ``component`` to show: all of them, or beyond ``max_nodes`` the heaviest
    sub-trees; with ``bbox`` (layout coordinates) the heaviest among the models inside it."""
    members = view.members(component)
    total = members.size
    xy = view.xy[members]
    bounds = tuple(float(v) for v in (*xy.min(0), *xy.max(0)))
    candidates = members
    if bbox is not None:
        candidates = members[_inside(xy, bbox)]
    stdl = view.numeric["sub_tree_downloads"]
    if candidates.size > max_nodes or bbox is not None:
        # Level of detail: the heaviest sub-trees, closed under layout parents so every shown
        # model still hangs from its source.
        keep = np.zeros(view.n, dtype=bool)
        keep[candidates[np.argsort(-stdl[candidates], kind="stable")[:max_nodes]]] = True
        frontier = np.flatnonzero(keep)
        while frontier.size:
            up = view.parent[frontier]
            up = up[(up >= 0)]
            up = up[~keep[up]]
            keep[up] = True
            frontier = up
        members = np.flatnonzero(keep)
    members = np.sort(members)
    # A component is closed under edges, so its edges are its members' out-edges.
    g = view.graph
    k = np.sort(view.out_edges(members))
    target = np.searchsorted(members, g.child[k])
    target = np.minimum(target, members.size - 1)
    k = k[members[target] == g.child[k]]  # drop edges to models the level of detail left out
    return _Family(component, int(total), int(candidates.size), bounds, members, k,
                   np.searchsorted(members, g.parent[k]), np.searchsorted(members, g.child[k]))


def _component_graph(view: AtlasView, component: int, max_nodes: int, bbox=None) -> dict:
    f = _family(view, component, max_nodes, bbox)
    members, k = f.members, f.k
    created = view.created_at[members]
    return {
        "component": component,
        "total_nodes": f.total,
        "shown_nodes": int(members.size),
        "candidates": f.candidates,
        "truncated": bool(f.candidates > max_nodes),
        "bounds": list(f.bounds),
        "nodes": {
            "id": view.ids[members].tolist(),
            "x": np.round(view.xy[members, 0], 4).tolist(),
            "y": np.round(view.xy[members, 1], 4).tolist(),
            **{name: view.numeric[name][members].astype(np.int64).tolist() for name in SIZES},
            "created_at": [None if not np.isfinite(t) else int(t) for t in created],
            "colors": {name: view.categories(name).codes[members].tolist() for name in CATEGORICAL},
        },
        "edges": {
            "source": f.source.tolist(),
            "target": f.target.tolist(),
            "relation": view.edge_relation[k].tolist(),
            "provenance": view.edge_provenance[k].tolist(),
            "confidence": np.round(view.edge_confidence[k], 4).tolist(),
        },
    }


def _component_graph_arrow(view: AtlasView, component: int, max_nodes: int, bbox=None) -> bytes:
    """The same answer as :func:`_component_graph` as one Arrow IPC stream: a row per shown model
    (ascending id), its out-edges as a list column (CSR adjacency), the counts as schema metadata.

    The page decodes it into typed arrays without parsing text; for a 100,000-model family that
    is the difference between about 11 MB of JSON to parse and a few milliseconds
    (``benchmarks/web_render.py``).
    """
    f = _family(view, component, max_nodes, bbox)
    members = f.members
    by_source = np.argsort(f.source, kind="stable")
    k = f.k[by_source]
    offsets = np.searchsorted(f.source[by_source], np.arange(members.size + 1)).astype(np.int32)
    edges = pa.StructArray.from_arrays(
        [pa.array(f.target[by_source].astype(np.int32)), view.edge_relation_codes.take(k),
         view.edge_provenance_codes.take(k), pa.array(view.edge_confidence[k].astype(np.float32))],
        names=["target", "relation", "provenance", "confidence"])
    columns = {
        "id": view.atlas.nodes["id"].take(members),
        "x": view.xy[members, 0].astype(np.float32),
        "y": view.xy[members, 1].astype(np.float32),
        **{name: view.numeric[name][members] for name in SIZES},
        "created_at": view.created_at[members],  # epoch seconds, NaN when unknown
        **{f"color_{name}": view.categories(name).codes[members] for name in CATEGORICAL},
        "out_edges": pa.ListArray.from_arrays(pa.array(offsets), edges),
    }
    # One record batch: the page reads each column as a single typed array.
    table = pa.table(columns).combine_chunks().replace_schema_metadata({
        "component": str(component), "total_nodes": str(f.total), "shown_nodes": str(members.size),
        "candidates": str(f.candidates), "truncated": "true" if f.candidates > max_nodes else "false",
        "bounds": ",".join(repr(v) for v in f.bounds)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _model(view: AtlasView, i: int) -> dict:
    row = view.node_row(i)
    details = {k: row.get(k) for k in DETAIL_FIELDS}
    tags = row.get("tags") or []
    details["tags"] = tags[:50]
    rev = view.graph.reverse_adjacency
    parents = [{"id": view.ids[p], **(view.edge_row(int(p), i) or {})}
               for p in rev.indices[rev.indptr[i]:rev.indptr[i + 1]]]
    path = view.lineage(i)
    lineage = []
    for step, node in enumerate(path):
        r = view.node_row(node) if node != i else row
        entry = {"id": view.ids[node], "license": r.get("license"), "datasets": r.get("datasets") or [],
                 "depth": int(view.depth[node])}
        if step + 1 < len(path):
            entry.update(view.edge_row(path[step + 1], node) or {})
        lineage.append(entry)
    # Children by relation, most downloaded first (vectorised: a base model may have 10^4 children).
    out = view.out_edges(np.array([i]))
    out = out[np.argsort(-view.downloads[view.graph.child[out]], kind="stable")]
    children: dict[str, dict] = {}
    for relation in dict.fromkeys(view.edge_relation[out]):
        group = out[view.edge_relation[out] == relation]
        children[relation] = {"count": int(group.size), "models": [
            {"id": view.ids[view.graph.child[k]], "downloads": int(view.downloads[view.graph.child[k]]),
             "predicted": bool(view.edge_predicted[k])} for k in group[:MAX_CHILDREN_LISTED]]}
    return {
        "id": view.ids[i],
        "hub_url": HUB_URL + view.ids[i],
        "metadata": details,
        "component": int(view.component[i]),
        "component_size": int(view.component_sizes[view.component[i]]),
        "depth": int(view.depth[i]),
        "sub_tree_downloads": int(view.numeric["sub_tree_downloads"][i]),
        "descendants": int(view.numeric["descendants"][i]),
        "position": [float(view.xy[i, 0]), float(view.xy[i, 1])],
        "parents": parents,
        "lineage": lineage,
        "children": children,
        "relation_flags": relation_flags(view.atlas.issues, view.ids[i]),
        "inheritance": view.inheritance(i),
    }


def _overview(view: AtlasView, color: str, size: str, filters: dict, created_from, created_to,
              max_points: int = MAX_OVERVIEW_POINTS, bbox: tuple[float, float, float, float] | None = None,
              min_family: int = 1):
    """Points of the galaxy (inside ``bbox`` when given, of families of at least ``min_family``
    models); beyond ``max_points`` (level of detail) the
    models with the largest sub-tree downloads, which keeps each family's upper tree.
    Returns (bytes, shown, matching)."""
    cats = view.categories(color)
    if size not in SIZES:
        raise ViewError(f"cannot size by {size!r}; choose one of {', '.join(SIZES)}", 422)
    keep = np.ones(view.n, dtype=bool)
    for name, value in filters.items():
        if value is None:
            continue
        c = view.categories(name)
        wanted = [c.labels.index(v) for v in value.split(",") if v in c.labels]
        if not wanted:
            raise ViewError(f"no {name} value {value!r} in this atlas", 422)
        keep &= np.isin(c.codes, wanted)
    for bound, op in ((created_from, np.greater_equal), (created_to, np.less_equal)):
        if bound is not None:
            keep &= op(view.created_at, _epoch(bound))
    if bbox is not None:
        keep &= _inside(view.xy, bbox)
    if min_family > 1:
        keep &= view.component_sizes[view.component] >= min_family
    idx = np.flatnonzero(keep)
    total = int(idx.size)
    if total > max_points:
        heavy = np.argsort(-view.numeric["sub_tree_downloads"][idx], kind="stable")[:max_points]
        idx = np.sort(idx[heavy])
    weight = np.log1p(view.numeric[size][idx])
    top = weight.max() if weight.size else 0.0
    points = np.empty((idx.size, 5), dtype="<f4")
    points[:, 0:2] = view.xy[idx]
    points[:, 2] = cats.codes[idx]
    points[:, 3] = weight / top if top > 0 else 0.0
    points[:, 4] = view.component[idx]
    return points.tobytes(), int(idx.size), total


def _inside(xy: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
    """Which points (rows of ``xy``) lie in the rectangle ``bbox`` = (x0, y0, x1, y1), edges included."""
    x0, y0, x1, y1 = bbox
    return (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(np.isfinite(values)) or values[0] > values[2] or values[1] > values[3]:
        raise ViewError(f"not a bounding box: {text!r} (use x0,y0,x1,y1 with x0 <= x1 and y0 <= y1)", 422)
    return values


def _epoch(text: str) -> float:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ViewError(f"not a date: {text!r} (use YYYY-MM-DD)", 422) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc).isoformat()
