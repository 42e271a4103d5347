"""Commands that draw the atlas: ``layout``, ``serve`` (the web atlas) and ``figure``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelatlas.commands.common import DEFAULT_ATLAS_PATH, AtlasPath, JsonFlag, diagnostics, emit_json, note, say


def _load_with_layout(atlas_path: Path, *, save: bool):
    """Load the atlas with a current layout: computed when missing or stale, and with ``save`` cached
    in the atlas file (``serve``); ``figure`` only reads the atlas, so it lays out in memory."""
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.atlas.store import writing
    from modelatlas.viz.layout import ensure_layout, layout_is_current

    atlas = Atlas.load(atlas_path)
    if not layout_is_current(atlas) and save:
        with writing(atlas_path):  # load again under the lock: the file may have changed meanwhile
            atlas = Atlas.load(atlas_path)
            if not layout_is_current(atlas):
                with diagnostics().status("laying out the atlas (once; cached in the atlas file)"):
                    ensure_layout(atlas)
                atlas.save(atlas_path)
    elif not layout_is_current(atlas):
        with diagnostics().status("laying out the atlas (not cached: run 'modelatlas layout' to keep it)"):
            ensure_layout(atlas)
    return atlas


def layout(atlas: AtlasPath = DEFAULT_ATLAS_PATH,
           recompute: Annotated[bool, typer.Option(help="Lay out from scratch instead of extending the "
                                                        "cached layout to new models.")] = False,
           as_json: JsonFlag = False) -> None:
    """Compute the atlas layout (radial trees per family, packed by size) and cache it in the atlas."""
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.viz.layout import LAYOUT_TABLE, compute_layout, ensure_layout

    from modelatlas.atlas.store import writing

    with writing(atlas):
        data = Atlas.load(atlas)
        before = data.extras.get(LAYOUT_TABLE)
        table = compute_layout(data) if recompute else ensure_layout(data)
        data.extras[LAYOUT_TABLE] = table
        data.save(atlas)
    kept = 0 if recompute or before is None else min(before.num_rows, table.num_rows)
    summary = {"atlas": str(atlas), "nodes": table.num_rows, "kept_from_cache": kept}
    if as_json:
        emit_json(summary)
    else:
        say(f"layout of {table.num_rows:,} models cached in {atlas}")


def serve(atlas: AtlasPath = DEFAULT_ATLAS_PATH,
          host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
          allow_host: Annotated[list[str] | None, typer.Option(
              "--allow-host", help="A host name the page may be reached by besides the loopback ones "
                                   "(repeatable); requests naming any other host are refused.")] = None) -> None:
    """Serve the web atlas: a read-only page and JSON API over ATLAS."""
    import uvicorn

    from modelatlas.viz.data import AtlasView
    from modelatlas.viz.server import create_app

    sock = _listening_socket(host, port)  # before any URL is printed: a busy port is said first
    view = AtlasView(_load_with_layout(atlas, save=True))
    if host not in ("127.0.0.1", "localhost", "::1"):
        note(f"listening on {host}: anyone who can reach it can browse the atlas", label="warning")
    allowed = [*(allow_host or []), *([host] if host not in ("0.0.0.0", "::") else [])]
    # The server's log goes to standard error too: a running server has no result to print.
    diagnostics().print(f"web atlas of {view.n:,} models at http://{host}:{port}/", markup=False)
    uvicorn.Server(uvicorn.Config(create_app(view, allow_hosts=allowed), log_level="warning")).run(sockets=[sock])


def _listening_socket(host: str, port: int):
    """A socket bound to ``host``:``port``; a busy port or unknown interface is a :class:`HostError`."""
    import errno
    import socket

    from modelatlas.errors import HostError

    try:
        family, kind, proto, _, _ = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise HostError(f"cannot listen on {host!r}: {exc.strerror}") from None
    # proto must say TCP: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on TCP sockets, and
    # with it on every keep-alive answer waited ~40 ms for a delayed ACK (benchmarks/web_load.py)
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "is in use (another server?); choose another with --port" if exc.errno == errno.EADDRINUSE \
            else f"cannot be opened: {exc.strerror}"
        raise HostError(f"port {port} on {host} {why}") from None
    return sock


def figure(kind: Annotated[str, typer.Argument(help="galaxy or component")],
           out: Annotated[Path, typer.Option("--out", "-o", help="Output file, .png or .svg.")],
           atlas: AtlasPath = DEFAULT_ATLAS_PATH,
           color: Annotated[str, typer.Option(help="Node colour: relation, license, pipeline_tag, modality, "
                                                   "library_name, model_type or author.")] = "relation",
           size: Annotated[str, typer.Option(help="Node size: downloads, sub_tree_downloads, likes, "
                                                  "downloads_all_time or descendants.")] = "downloads",
           component: Annotated[int | None, typer.Option(help="Component to draw (component kind).")] = None,
           model: Annotated[str | None, typer.Option(help="Draw this model's component.")] = None) -> None:
    """Draw a figure of the atlas (the paper's galaxy and component plots) with matplotlib."""
    from modelatlas.viz.data import AtlasView
    from modelatlas.viz.figure import draw_figure

    view = AtlasView(_load_with_layout(atlas, save=False))
    path = draw_figure(view, kind, out, color=color, size=size, component=component, model=model)
    say(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("layout")(layout)
    app.command("serve")(serve)
    app.command("figure")(figure)
