"""The two files of a resumable Hub crawl: the spool (items as JSON lines) and the checkpoint.

After every page the items are appended to the spool and flushed to disk, then the checkpoint is
replaced atomically; it records how many items and spool bytes are *committed*. The checkpoint is
the truth: on resume, bytes past ``spool_bytes`` (a page cut by a kill, a last line without its end)
are dropped and reported, and the page is fetched again, so no item is lost or counted twice. A
checkpoint that is not ours (unreadable, another format, fields missing or of the wrong type, another
query) or a spool that lost committed lines is discarded with its partner, reported with both file
names, and the crawl starts again from the first page. docs/reliability.md lists these promises.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from modelatlas.errors import InputError

CHECKPOINT_VERSION = 3
#: Checkpoint fields and their JSON types (``next`` is a URL, or null once the listing ended;
#: ``since`` the refresh's lower bound and ``started`` the server's time at the first answer, ISO 8601).
FIELDS: dict[str, tuple[type, ...]] = {
    "version": (int,), "endpoint": (str,), "query": (str,), "since": (str, type(None)),
    "next": (str, type(None)), "pages": (int,), "items": (int,), "spool_bytes": (int,), "done": (bool,),
    "seen": (list,), "started": (str, type(None)),
}
#: Fields that say which crawl a checkpoint belongs to.
IDENTITY = ("endpoint", "query", "since")


def _problem(state, expected: dict) -> str | None:
    """Why ``state`` is not a checkpoint of this crawl, or ``None``."""
    if not isinstance(state, dict):
        return f"a JSON {type(state).__name__}, not an object"
    missing = [k for k in FIELDS if k not in state]
    if missing:
        return f"fields missing: {', '.join(missing)}"
    for key, types in FIELDS.items():
        value = state[key]
        if not isinstance(value, types) or (bool in types) != isinstance(value, bool):
            return f"{key} is {value!r}"
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            return f"{key} is negative"
    if state["version"] != CHECKPOINT_VERSION:
        return f"format version {state['version']}, not {CHECKPOINT_VERSION}"
    if not all(isinstance(h, str) for h in state["seen"]) or len(state["seen"]) != state["pages"]:
        return "the list of fetched pages does not match the page count"
    for key in IDENTITY:
        if state[key] != expected[key]:
            return f"it belongs to another crawl ({key} {state.get(key)!r})"
    return None


class CrawlFiles:
    """Checkpoint and spool of one crawl in ``folder``, named after ``key`` (hidden files).

    Parameters
    ----------
    folder:
        Where both files live (the atlas's folder for ``modelatlas ingest``).
    key:
        Short hash of the endpoint and query; one crawl per key.
    report:
        ``report(kind, where, message)`` receives each repair or discard (the reader's issues).
    """

    def __init__(self, folder: str | Path, key: str, report=None):
        folder = Path(folder)
        self.checkpoint = folder / f".modelatlas-hub-{key}.checkpoint.json"
        self.spool = folder / f".modelatlas-hub-{key}.spool.jsonl"
        self._tmp = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
        self._report = report or (lambda kind, where, message: None)

    def load(self, fresh: dict) -> dict:
        """The saved state when it is sound (spool cut back to it), else ``fresh`` saved anew.

        ``fresh`` is the state of a crawl at its first page; its :data:`IDENTITY` fields must match
        a saved state for that state to be resumed.
        """
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if not self.checkpoint.exists():
            if self.spool.exists():
                self._report("hub_spool_discarded", str(self.spool),
                             f"{self.spool} has no checkpoint beside it (left by an older crawl); "
                             f"discarded it and crawled from the first page")
            return self.start(fresh)
        try:
            state = json.loads(self.checkpoint.read_bytes())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            return self._discard(fresh, f"it is not readable JSON ({exc})")
        problem = _problem(state, fresh)
        if problem:
            return self._discard(fresh, problem)
        size = self.spool.stat().st_size if self.spool.exists() else 0
        if size < state["spool_bytes"]:
            return self._discard(fresh, f"{self.spool} holds {size:,} bytes, fewer than the "
                                        f"{state['spool_bytes']:,} committed (pages were lost)")
        if size > state["spool_bytes"]:
            cut = self._cut_back(state["spool_bytes"], size)
            self._report("hub_spool_repaired", str(self.spool),
                         f"{self.spool}: dropped {cut} past the last checkpoint (a crawl stopped "
                         f"mid-page); page {state['pages'] + 1} is fetched again")
        problem = self._check_lines(state)
        if problem:
            return self._discard(fresh, problem)
        return state

    def start(self, fresh: dict) -> dict:
        """Begin a crawl: an empty spool and ``fresh`` as the checkpoint."""
        self.spool.unlink(missing_ok=True)
        self.save(fresh)
        return fresh

    def _discard(self, fresh: dict, why: str) -> dict:
        self._report("hub_checkpoint_discarded", str(self.checkpoint),
                     f"{self.checkpoint} cannot be resumed: {why}; discarded it and {self.spool.name}, "
                     f"crawled from the first page")
        return self.start(fresh)

    def _cut_back(self, keep: int, size: int) -> str:
        with open(self.spool, "rb+") as fh:
            fh.seek(keep)
            tail = fh.read()
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        lines = tail.count(b"\n")
        partial = " and a cut line" if not tail.endswith(b"\n") else ""
        return f"{size - keep:,} bytes ({lines} whole line{'s' if lines != 1 else ''}{partial})"

    def _check_lines(self, state: dict) -> str | None:
        """Why the committed spool does not hold ``state['items']`` JSON lines, or ``None``."""
        count = 0
        for n, line in self._lines(state["spool_bytes"]):
            try:
                json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                return f"{self.spool} line {n} is not JSON"
            count = n
        if count != state["items"]:
            return f"{self.spool} holds {count:,} items, the checkpoint says {state['items']:,}"
        return None

    def _lines(self, limit: int):
        if not self.spool.exists():
            return
        with open(self.spool, "rb") as fh:
            read = 0
            for n, line in enumerate(fh, 1):
                read += len(line)
                if read > limit:
                    return
                yield n, line

    def append(self, items: list, state: dict) -> None:
        """Commit one page: ``items`` onto the spool (flushed to disk), then ``state`` with the new size."""
        with open(self.spool, "ab") as fh:
            fh.seek(0, os.SEEK_END)
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
            state["spool_bytes"] = fh.tell()
        self.save(state)

    def save(self, state: dict) -> None:
        """Replace the checkpoint atomically (a kill leaves the old or the new one, never half)."""
        with open(self._tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(self._tmp, self.checkpoint)

    def items(self, state: dict):
        """``(line number, item)`` for every committed item, in order."""
        for n, line in self._lines(state["spool_bytes"]):
            try:
                item = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                raise InputError(f"line {n} is not JSON (changed while the crawl ran?); delete it and "
                                 f"{self.checkpoint.name} to crawl again", path=str(self.spool)) from None
            yield n, item

    def remove(self) -> None:
        """Delete both files (a finished crawl)."""
        for path in (self.checkpoint, self.spool, self._tmp):
            path.unlink(missing_ok=True)
