"""Web server under a bounded mixed load, a quarter of it asking for models that do not exist.

Serves a synthetic atlas (``--models``, Hub-like fan-outs) with the real ``modelatlas serve`` in its
own process on a free loopback port, then:

1. one client, ``--probes`` requests each for known and for unknown model ids: p50 / p95 / p99;
   baseline in the same run: the "did you mean" of the previous server (rapidfuzz over every id,
   timed in-process on the same unknown ids), and ``/api/meta``;
2. ``--clients`` threads sending ``--requests`` requests over mixed endpoints (meta, model, unknown
   model, search, components, a family's graph), ``--unknown-share`` of them for model ids that are
   not in the atlas: p50 / p95 / p99 per endpoint and overall, and the errors (any status
   other than 200, or 404 for an unknown id).

Bounded: a fixed number of requests, a per-request timeout and a wall-clock limit (``--seconds``);
traffic goes to 127.0.0.1 only. Run: ``python benchmarks/web_load.py`` (about 2 minutes at 200k).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from markdown_table import print_table  # noqa: E402
from web_render import synthetic_atlas  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(atlas: Path, port: int, timeout: float = 600) -> subprocess.Popen:
    import httpx

    server = subprocess.Popen([sys.executable, "-m", "modelatlas.cli", "serve", "--atlas", str(atlas),
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server stopped: {server.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/meta", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    sys.exit("the server did not answer in time")


def unknown_ids(ids: np.ndarray, n: int, rng: np.random.Generator) -> list[str]:
    """Ids a user could mistype: a real id with one character changed, dropped or appended."""
    out = []
    for model_id in rng.choice(ids, n):
        k = int(rng.integers(0, len(model_id)))
        edit = int(rng.integers(0, 3))
        out.append(model_id[:k] + "q" + model_id[k + 1:] if edit == 0 else
                   model_id[:k] + model_id[k + 1:] if edit == 1 else model_id + "-v2")
    known = set(ids.tolist())
    return [m for m in out if m not in known and m]


def percentiles(values: list[float]) -> tuple[str, str, str]:
    p = np.percentile(np.asarray(values), [50, 95, 99]) if values else (np.nan,) * 3
    return tuple(f"{v:.1f}" for v in p)


def timed_get(client, path: str) -> tuple[float, int]:
    t = time.perf_counter()
    status = client.get(path).status_code
    return (time.perf_counter() - t) * 1000, status


def probe(site: str, paths: list[str]) -> tuple[list[float], int]:
    import httpx

    with httpx.Client(base_url=site, timeout=30) as client:
        results = [timed_get(client, p) for p in paths]
    return [ms for ms, _ in results], sum(status not in (200, 404) for _, status in results)


def mixed_load(site: str, jobs: list[tuple[str, str, int]], clients: int, seconds: float):
    import httpx

    out: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    lock = threading.Lock()
    local = threading.local()
    stop = time.monotonic() + seconds

    def one(job):
        name, path, expected = job
        if time.monotonic() > stop:
            return
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=site, timeout=30)
        try:
            ms, status = timed_get(local.client, path)
        except httpx.HTTPError:
            ms, status = float("nan"), -1
        with lock:
            if status != expected:
                errors[name] = errors.get(name, 0) + 1
            else:
                out.setdefault(name, []).append(ms)

    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, jobs))
    return out, errors, time.perf_counter() - t


def main() -> None:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=200_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--unknown-share", type=float, default=0.25)
    ap.add_argument("--seconds", type=float, default=300, help="wall-clock limit of the mixed load")
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    t = time.perf_counter()
    atlas = synthetic_atlas(args.models, root_share=0.3, seed=2)
    ids = atlas.nodes["id"].to_numpy(zero_copy_only=False).astype(object)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "atlas.duckdb"
        atlas.save(path)
        port = free_port()
        server = start_server(path, port)
        print(f"{args.models:,} models saved and served (layout included) in {time.perf_counter() - t:.0f} s "
              f"on {os.cpu_count()} cores", file=sys.stderr)
        site = f"http://127.0.0.1:{port}"
        try:
            known = rng.choice(ids, args.probes).tolist()
            unknown = unknown_ids(ids, args.probes, rng)
            known_ms, known_err = probe(site, [f"/api/models/{m}" for m in known])
            unknown_ms, unknown_err = probe(site, [f"/api/models/{m}" for m in unknown])
            meta_ms, _ = probe(site, ["/api/meta"] * args.probes)
            from rapidfuzz import fuzz, process, utils

            plain = ids.tolist()
            old_ms = []
            for m in unknown[:20]:  # the old server's suggestion: a fuzzy match over every id
                t = time.perf_counter()
                process.extract(m, plain, scorer=fuzz.WRatio, processor=utils.default_process, limit=5,
                                score_cutoff=60)
                old_ms.append((time.perf_counter() - t) * 1000)
            print_table(f"One client, {args.models:,} models: model answers by whether the id exists (ms)",
                        ["request", "n", "p50", "p95", "p99", "errors"],
                        [("known id", len(known_ms), *percentiles(known_ms), known_err),
                         ("unknown id (suggestions from the sorted-key index)", len(unknown_ms),
                          *percentiles(unknown_ms), unknown_err),
                         ("baseline: /api/meta", len(meta_ms), *percentiles(meta_ms), 0),
                         ("baseline: previous suggestion, fuzzy over every id (in-process)", len(old_ms),
                          *percentiles(old_ms), 0)])

            sizes = np.asarray([r["size"] for r in httpx.get(f"{site}/api/components?limit=500").json()["components"]])
            families = np.flatnonzero((sizes > 1) & (sizes < 2000))
            jobs, mistyped = [], iter(unknown_ids(ids, 2 * args.requests, rng))
            for _ in range(args.requests):
                m = str(rng.choice(ids))
                if rng.random() < args.unknown_share:
                    jobs.append(("model (unknown id)", "/api/models/" + next(mistyped), 404))
                    continue
                kind = int(rng.integers(0, 5))
                jobs.append([("meta", "/api/meta", 200), ("model", "/api/models/" + m, 200),
                             ("search", f"/api/search?q={m.split('/')[-1][:8]}&limit=10", 200),
                             ("components", f"/api/components?offset={int(rng.integers(0, 1000))}&limit=50", 200),
                             ("family graph (<2k)", f"/api/components/{int(rng.choice(families))}/graph", 200),
                             ][kind])
            latency, errors, wall = mixed_load(site, jobs, args.clients, args.seconds)
            every = [v for values in latency.values() for v in values]
            rows = [(name, len(v), *percentiles(v), errors.get(name, 0)) for name, v in sorted(latency.items())]
            rows.append(("all", len(every), *percentiles(every), sum(errors.values())))
            unknown_count = len(latency.get("model (unknown id)", ()))
            print_table(f"Mixed load: {args.clients} clients, {len(every):,} requests in {wall:.0f} s "
                        f"({len(every) / wall:.0f}/s), {unknown_count / max(len(every), 1):.0%} of them for "
                        f"unknown ids (ms)",
                        ["endpoint", "n", "p50", "p95", "p99", "errors"], rows)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
