"""Commands that fill and read an atlas: ``ingest``, ``export``, ``lineage``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from modelatlas.commands.common import (DEFAULT_ATLAS_PATH, AtlasPath, FormatOpt, JsonFlag, OutputFormatOpt,
                                        Results, emit_json, progress, resolve_format, say)
from modelatlas.ingest.hub_http import HubOptions

FormatOption = Annotated[str | None, typer.Option(
    "--format", "-f", help="Reader for every source: hf-trees, hub-stats, card-parents, manual, hub "
                           "(default: detected per source).")]


HUB_PANEL = "Live Hub (hub: sources; docs/ingest.md)"


def ingest(
    sources: Annotated[list[str], typer.Argument(help="Files to read, or hub: / hub:QUERY for the live Hub.")],
    atlas: AtlasPath = DEFAULT_ATLAS_PATH,
    fmt: FormatOption = None,
    output_format: OutputFormatOpt = None,
    as_json: JsonFlag = False,
    hub_rate: Annotated[float, typer.Option(help="Hub requests per second at most.",
                                            rich_help_panel=HUB_PANEL)] = HubOptions.rate,
    hub_connect_timeout: Annotated[float, typer.Option(help="Seconds to connect to the Hub.",
                                                       rich_help_panel=HUB_PANEL)] = HubOptions.connect_timeout,
    hub_read_timeout: Annotated[float, typer.Option(help="Seconds to wait for each part of an answer.",
                                                    rich_help_panel=HUB_PANEL)] = HubOptions.read_timeout,
    hub_max_wait: Annotated[float, typer.Option(help="Longest back-off or Retry-After wait in seconds; a server "
                                                     "asking for more ends the crawl (resumable).",
                                                rich_help_panel=HUB_PANEL)] = HubOptions.max_wait,
    hub_max_pages: Annotated[int, typer.Option(help="Page budget of a crawl (1,000 models a page), resumed runs "
                                                    "included.", rich_help_panel=HUB_PANEL)] = HubOptions.max_pages,
    since: Annotated[str | None, typer.Option(help="Refresh: only models created or modified since DATE "
                                                   "(ISO 8601, UTC unless a zone is given) or since the last "
                                                   "logged crawl of the same hub: source ('last').",
                                              metavar="DATE|last", rich_help_panel=HUB_PANEL)] = None,
) -> None:
    """Read sources into the atlas (created, or extended when it exists); print the ingest summary."""
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.atlas.store import writing
    from modelatlas.ingest.hub_api import parse_since
    from modelatlas.ingest.pipeline import ingest as run_ingest
    from modelatlas.ingest.pipeline import SUMMARY_NODE_COLUMNS, ingest_summary, refresh_in_place

    output_format = resolve_format(output_format, as_json)
    as_json = output_format == "json"
    hub_options = HubOptions(rate=hub_rate, connect_timeout=hub_connect_timeout, read_timeout=hub_read_timeout,
                             max_wait=hub_max_wait, max_pages=hub_max_pages)
    hub_since = parse_since(since) if since is not None else None
    # The writer lock spans load to save: a concurrent ingest waits instead of being overwritten.
    with writing(atlas):
        hub = any(s.startswith("hub:") for s in sources)
        # Hub crawls into an existing atlas are applied in place (docs/ingest.md, "Refreshing").
        in_place = Path(atlas).exists() and all(s.startswith("hub:") for s in sources) and fmt in (None, "hub")
        current = Atlas.load(atlas) if Path(atlas).exists() and not in_place else None
        # One bar (Rich allows one live display): sources read, or models fetched when a Hub crawl runs.
        with progress("models fetched from the Hub" if hub else "sources read", total=None if hub else len(sources),
                      enabled=not as_json) as advance:
            started = [False]

            def on_source(name: str) -> None:  # one tick per finished file source
                if started[0] and not hub:
                    advance(1)
                started[0] = True

            options = dict(on_source=on_source, on_progress=advance if hub else None,
                           checkpoint_dir=Path(atlas).parent, hub_options=hub_options, hub_since=hub_since)
            if in_place:
                batches, changes = refresh_in_place(list(sources), atlas, **options)
            else:
                merged, batches = run_ingest(list(sources), current, fmt=fmt, **options)
            if not hub:
                advance(1)
        if in_place:
            merged = Atlas.load(atlas, node_columns=SUMMARY_NODE_COLUMNS)
        else:
            with progress("saving atlas", enabled=not as_json):
                merged.save(atlas)
    summary = ingest_summary(merged, batches)
    summary["atlas_path"] = str(atlas)
    if in_place:
        summary["changes"] = changes
    if as_json:
        emit_json(summary)
        return
    out = Results(output_format)
    out.table("ingest summary",
              ["source", "format", "records", "evidence", "metrics", "duplicates", "malformed lines", "issues"],
              [[s["source"], s["format"], s["records"], s["evidence"], s["metrics"], s.get("duplicates", 0),
                s.get("malformed_lines", 0), s["issues"]] for s in summary["sources"]])
    a = summary["atlas"]
    out.line(f"atlas {atlas}: {a['nodes']:,} nodes ({a['placeholders']:,} placeholders), {a['edges']:,} edges; "
             f"issues: " + (", ".join(f"{k} {v:,}" for k, v in a["issues_by_kind"].items()) or "none"))
    for source, counts in summary.get("changes", {}).items():
        out.line(f"updated in place from {source}: " + (", ".join(f"{k} {v:,}" for k, v in counts.items())
                                                         or "no changes"))


def export(
    atlas: AtlasPath = DEFAULT_ATLAS_PATH,
    what: Annotated[str, typer.Option("--what", help="edges or nodes (graphml / gexf write both).")] = "edges",
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, parquet, graphml or gexf.")] = "csv",
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")] = Path("atlas-export.csv"),
) -> None:
    """Write the atlas's nodes or edges as CSV / Parquet, or the whole graph as GraphML / GEXF (Gephi)."""
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.errors import InputError

    if what not in ("edges", "nodes"):
        raise InputError(f"--what must be edges or nodes, not {what!r}")
    if fmt not in ("csv", "parquet", "graphml", "gexf"):
        raise InputError(f"--format must be csv, parquet, graphml or gexf, not {fmt!r}")
    loaded = Atlas.load(atlas)
    out.parent.mkdir(parents=True, exist_ok=True)
    with progress(f"writing {out}"):
        from modelatlas.viz.export import write_graph, write_table

        if fmt in ("graphml", "gexf"):
            write_graph(loaded, out, fmt)
        else:
            write_table(getattr(loaded, what), out, fmt)
    say(f"wrote {out}")


def lineage(
    model_id: Annotated[str, typer.Argument(help="Model id, e.g. meta-llama/Llama-2-7b-hf.")],
    atlas: AtlasPath = DEFAULT_ATLAS_PATH,
    tree: Annotated[bool, typer.Option("--tree", help="Draw the ancestry and descendant trees (a Rich tree on a "
                                                      "terminal, indented text otherwise; in JSON as 'trees').")]
    = False,
    depth: Annotated[int, typer.Option("--depth", min=0, help="Descendant generations drawn by --tree.")] = 2,
    max_children: Annotated[int, typer.Option("--max-children", min=1, help="Branches drawn per model by --tree "
                                              "(the rest counted).")] = 20,
    fmt: FormatOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Ancestors of a model up to every source (relation of each step), its descendants and sub_tree_downloads."""
    from modelatlas.atlas.atlas import Atlas
    from modelatlas.discover.lineage import lineage as compute

    fmt = resolve_format(fmt, as_json)
    loaded = Atlas.load(atlas)
    result = compute(loaded, model_id)
    trees = None
    if tree:
        from modelatlas.discover.lineage_tree import lineage_tree

        trees = {"ancestors": lineage_tree(loaded, model_id, "ancestors", max_children=max_children),
                 "descendants": lineage_tree(loaded, model_id, "descendants", max_depth=depth,
                                             max_children=max_children)}
    if fmt == "json":
        emit_json({**result.as_dict(), **({"trees": trees} if trees else {})})
        return
    out = Results(fmt)
    out.line(f"{result.id}{' (placeholder)' if result.placeholder else ''}: "
             f"{result.children:,} children, {result.descendants:,} descendants, "
             f"sub_tree_downloads {result.sub_tree_downloads:,}")
    if not result.sources:
        out.line("no ancestors: this model is a source")
    if trees:
        for direction, root in trees.items():
            out.tree(f"{direction} of {result.id}", _tree_lines(root))
    elif result.sources:
        out.table("paths to the sources", ["source", "parent", "child", "relation", "provenance"],
                  [[source, s["parent"], s["child"], s["relation"], s["provenance"]]
                   for source, path in result.paths.items() for s in path])
    if result.relation_flags:
        out.records("relation flags (declared relations the repositories' files contradict)",
                    result.relation_flags, ["model", "reason", "message"])


def _tree_lines(node: dict, depth: int = 0):
    """``(depth, label)`` for every model of a :func:`~modelatlas.discover.lineage_tree.lineage_tree`."""
    label = node["id"]
    if node["relation"] is not None:
        label += f"  ({node['relation']}, {node['provenance']})"
    if node["repeat"]:
        label += "  (shown above)"
    yield depth, label
    for child in node["children"]:
        yield from _tree_lines(child, depth + 1)
    if node["more"]:
        yield depth + 1, f"… {node['more']:,} more"


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("export")(export)
    app.command("lineage")(lineage)
