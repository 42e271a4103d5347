"""Lineage of one model: its ancestors up to every source, and the size of what descends from it.

Declared relations on the way that the repositories' own files contradict (the relation audit,
docs/ingest.md) are listed with it.

Ancestors are found by breadth-first search along the reversed edges (every ancestor once, with
its distance in steps); each source (an ancestor without parents) gets one shortest path down to
the model, step by step with the relation and provenance of each edge. Descendants are the nodes
reachable along the edges, each counted once even when merges give several paths (the rule of
:mod:`modelatlas.atlas.subtree`; the Model Atlas paper's ``sub_tree_downloads``, section 3.2, is the
model's own downloads plus its descendants').
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from modelatlas.results import TableResult


@dataclass(repr=False)
class Lineage(TableResult):
    """Result of :func:`lineage` (plain data; ``as_dict`` for JSON, ``to_table`` for the ancestors)."""

    id: str
    placeholder: bool
    parents: list[dict]
    ancestors: list[dict]
    sources: list[str]
    paths: dict[str, list[dict]]
    children: int
    descendants: int
    downloads: int
    sub_tree_downloads: int
    steps: list[dict] = field(default_factory=list)
    relation_flags: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def to_table(self) -> pa.Table:
        """The ancestors, nearest first: ``id``, ``distance``, ``placeholder``, ``source`` (no parent)."""
        sources = set(self.sources)
        return pa.table({"id": pa.array([a["id"] for a in self.ancestors], pa.string()),
                         "distance": pa.array([a["distance"] for a in self.ancestors], pa.int64()),
                         "placeholder": pa.array([a["placeholder"] for a in self.ancestors], pa.bool_()),
                         "source": pa.array([a["id"] in sources for a in self.ancestors], pa.bool_())})

    def summary(self) -> str:
        def count(n: int, word: str) -> str:
            return f"{n:,} {word}{'' if n == 1 else 's'}"

        names = ", ".join(self.sources[:3]) + (", ..." if len(self.sources) > 3 else "")
        origin = f" from {count(len(self.sources), 'source')} ({names})" if self.sources else ""
        return (f"{self.id}: {count(len(self.ancestors), 'ancestor')}{origin}, "
                f"{count(self.descendants, 'descendant')}, sub_tree_downloads {self.sub_tree_downloads:,}")


def lineage(atlas, model_id: str) -> Lineage:
    """Ancestors, paths to the sources, and descendant statistics of ``model_id``.

    Parameters
    ----------
    atlas:
        A :class:`~modelatlas.atlas.atlas.Atlas`.
    model_id:
        The model; an unknown id raises :class:`~modelatlas.errors.UnknownModelError`.

    Returns
    -------
    Lineage
    """
    i = int(atlas.index_of([model_id])[0])
    facts = atlas.facts
    g = facts.graph
    ids = atlas.nodes["id"]
    edges = atlas.edges
    relation, provenance = edges["relation"], edges["provenance"]

    def step(p: int, c: int) -> dict:
        k = facts.edge_id(p, c)
        return {"parent": ids[p].as_py(), "child": ids[c].as_py(),
                "relation": relation[k].as_py(), "provenance": provenance[k].as_py()}

    order, towards = facts.ancestors(i)
    dist = {i: 0}
    for node in order[1:]:
        dist[int(node)] = dist[int(towards[node])] + 1
    # Edges among the model and its ancestors; the graph's k-th edge is the edges table's row k.
    inside = np.asarray(order, dtype=np.int64)
    rows = np.flatnonzero(np.isin(g.child, inside) & np.isin(g.parent, inside))
    ancestor_idx = sorted((n for n in dist if n != i), key=lambda n: (dist[n], ids[n].as_py()))
    placeholder = atlas.nodes["placeholder"]
    in_deg = g.in_degree
    sources = [n for n in ancestor_idx if in_deg[n] == 0]
    paths = {}
    for s in sources:
        path, node = [], s
        while node != i:
            path.append(step(node, int(towards[node])))
            node = int(towards[node])
        paths[ids[s].as_py()] = path
    rev = g.reverse_adjacency
    return Lineage(
        id=model_id,
        placeholder=bool(placeholder[i].as_py()),
        parents=[step(int(p), i) for p in rev.indices[rev.indptr[i]:rev.indptr[i + 1]]],
        ancestors=[{"id": ids[n].as_py(), "distance": dist[n], "placeholder": bool(placeholder[n].as_py())}
                   for n in ancestor_idx],
        sources=[ids[s].as_py() for s in sources],
        paths=paths,
        children=int(g.out_degree[i]),
        descendants=int(facts.descendant_counts[i]),
        downloads=int(facts.downloads[i]),
        sub_tree_downloads=int(round(facts.sub_tree_downloads[i])),
        steps=[step(int(g.parent[k]), int(g.child[k])) for k in rows],
        relation_flags=_flags(atlas, [model_id] + [ids[n].as_py() for n in ancestor_idx]),
    )


def _flags(atlas, models: list[str]) -> list[dict]:
    """Relation-audit flags of the model and its ancestors (:mod:`modelatlas.ingest.relation_audit`)."""
    from modelatlas.ingest.relation_audit import relation_flags

    wanted = set(models)
    return [f for f in relation_flags(atlas.issues) if f["id"] in wanted]
