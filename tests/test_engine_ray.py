"""The engine: Ray (local mode) equals the in-process path, resumable runs, recorded errors, bad input.

The Ray tests share one private 2-worker Ray cluster per module (a few seconds to start) and run in
one xdist group; they skip with a message when Ray is not installed (``pip install 'modelatlas[ray]'``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modelatlas.engine import LocalExecutor, TaskFailure
from modelatlas.engine.fingerprint_run import Journal
from modelatlas.weights.store import FingerprintStore, ModelMeta, fingerprint_into_store

pytestmark = pytest.mark.xdist_group("ray")


def _ray():
    return pytest.importorskip("ray", reason="the Ray engine needs Ray: pip install 'modelatlas[ray]'")


@pytest.fixture(scope="module")
def ray_executor():
    _ray()
    from modelatlas.engine import RayExecutor

    executor = RayExecutor(num_cpus=2)
    yield executor
    executor.close()


def _layers(rng, hidden):
    return {"encoder.layer.0.attention.attention.query.weight": rng.standard_normal((hidden, hidden)),
            "encoder.layer.0.attention.output.dense.weight": rng.standard_normal((hidden, hidden)),
            "encoder.layer.0.intermediate.dense.weight": rng.standard_normal((2 * hidden, hidden)),
            "encoder.layer.0.output.dense.bias": rng.standard_normal(hidden),
            "classifier.weight": rng.standard_normal((4, hidden))}


def small_zoo(folder: Path, *, families=((16, 7), (24, 6)), seed: int = 0) -> list[tuple[Path, ModelMeta]]:
    """Families of fine-tunes (each a root and children with small updates, times growing along
    edges) in two architectures, as safetensors files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    models, t = [], 1.7e9
    for f, (hidden, n) in enumerate(families):
        weights = [{k: v.astype(np.float32) for k, v in _layers(rng, hidden).items()}]
        for i in range(n):
            if i:
                parent = weights[int(rng.integers(len(weights)))]
                weights.append({k: (v + 0.02 * rng.standard_normal(v.shape)).astype(np.float32)
                                for k, v in parent.items()})
            path = folder / f"f{f}-m{i}.safetensors"
            save_file(weights[-1], path)
            t += 3600
            models.append((path, ModelMeta(id=f"org/f{f}-m{i}", path=str(path), created_at=t,
                                           created_at_source="manifest")))
    return models


def _fresh(models):
    """New metadata objects (a run fills in format and schemes)."""
    return [(p, ModelMeta(id=m.id, path=m.path, created_at=m.created_at, created_at_source=m.created_at_source))
            for p, m in models]


def _by_id(store: FingerprintStore) -> dict[str, dict]:
    return {r["id"]: r for r in store.rows.to_pylist()}


def test_ray_fingerprints_equal_in_process_byte_for_byte(tmp_path, ray_executor):
    models = small_zoo(tmp_path / "zoo")
    local, ray_store = FingerprintStore.empty(), FingerprintStore.empty()
    fingerprint_into_store(_fresh(models), local, n_neurons=5, batch_size=3)
    fingerprint_into_store(_fresh(models), ray_store, n_neurons=5, batch_size=3, executor=ray_executor)
    assert len(local) == len(models) and not local.errors
    # same rows, same order, same bytes (batches finish in any order on Ray; the store adds them in order)
    assert ray_store.rows.equals(local.rows)
    assert ray_store.plans == local.plans
    # and the same bytes as one in-process call over everything (batching changes nothing)
    whole = FingerprintStore.empty()
    fingerprint_into_store(_fresh(models), whole, n_neurons=5, batch_size=100)
    assert _by_id(whole) == _by_id(ray_store)


def test_ray_chart_equals_in_process_edge_for_edge(tmp_path, ray_executor):
    from modelatlas.chart import get_method
    from modelatlas.chart.store_input import chart_input_from_store

    store = FingerprintStore.empty()
    fingerprint_into_store(small_zoo(tmp_path / "zoo", families=((16, 9), (24, 9), (12, 8))), store,
                           n_neurons=6)
    models = chart_input_from_store(store).models
    for block_size in (None, 5):
        method = get_method("auto")
        local = method.chart(models, executor=LocalExecutor(), block_size=block_size)
        ray_result = method.chart(models, executor=ray_executor, block_size=block_size)
        local_edges, ray_edges = local.to_table(models.ids), ray_result.to_table(models.ids)
        assert local_edges.num_rows > 0
        assert ray_edges.equals(local_edges)  # parent, child, relation and confidence, row for row
    # the default path (no executor) is the in-process one
    assert get_method("auto").chart(models).to_table(models.ids).equals(
        get_method("auto").chart(models, executor=LocalExecutor()).to_table(models.ids))


def test_blocks_cover_every_model_once_and_respect_the_size():
    from modelatlas.chart.blocks import neighbour_blocks

    rng = np.random.default_rng(3)
    centres = rng.standard_normal((4, 20)) * 10
    vectors = np.concatenate([c + rng.standard_normal((50, 20)) for c in centres]).astype(np.float32)
    blocks = neighbour_blocks(vectors, 50)
    joined = np.sort(np.concatenate(blocks))
    assert (joined == np.arange(200)).all() and max(map(len, blocks)) <= 50
    # near models share a block: each well-separated cluster stays whole
    assert sorted(tuple(b // 50) == (b[0] // 50,) * len(b) for b in blocks) == [True] * len(blocks)
    assert [b.tolist() for b in neighbour_blocks(vectors, 50)] == [b.tolist() for b in blocks]
    with pytest.raises(ValueError):
        neighbour_blocks(vectors, 1)


class _Killed(Exception):
    """Stands for kill -9 of the driver between two batches."""


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_killed_run_resumes_without_duplicates(tmp_path, monkeypatch, engine, request):
    executor = LocalExecutor() if engine == "local" else request.getfixturevalue("ray_executor")
    models = small_zoo(tmp_path / "zoo")
    out = tmp_path / "fp.parquet"
    written = []
    real_write = Journal.write

    def dying_write(self, index, part):
        if len(written) == 2:
            raise _Killed
        real_write(self, index, part)
        written.append(index)

    monkeypatch.setattr(Journal, "write", dying_write)
    with pytest.raises(_Killed):
        fingerprint_into_store(_fresh(models), FingerprintStore.open(out), n_neurons=5, batch_size=2,
                               executor=executor, journal=Journal(out))
    parts = sorted(Journal(out).folder.glob("batch-*.parquet"))
    assert not out.exists() and len(parts) == 2
    kept = sum(len(FingerprintStore.open(p)) for p in parts)
    monkeypatch.setattr(Journal, "write", real_write)
    store = FingerprintStore.open(out)
    added, messages = fingerprint_into_store(_fresh(models), store, n_neurons=5, batch_size=2, executor=executor,
                                             journal=Journal(out))
    assert f"{kept} models recovered" in messages[0] and kept >= 3
    saved = FingerprintStore.open(out)
    ids = saved.rows["id"].to_pylist()
    assert sorted(ids) == sorted(m.id for _, m in models) and len(set(ids)) == len(ids) == len(added)
    assert not Journal(out).folder.exists()
    clean = FingerprintStore.empty()
    fingerprint_into_store(_fresh(models), clean, n_neurons=5)
    assert _by_id(saved) == {k: {**v} for k, v in _by_id(clean).items()}
    # a third run reads nothing
    again, messages = fingerprint_into_store(_fresh(models), saved, n_neurons=5, journal=Journal(out))
    assert again == [] and "already in the store" in messages[0]


def test_errors_are_recorded_never_fatal_and_cleared_when_fixed(tmp_path):
    models = small_zoo(tmp_path / "zoo", families=((16, 4),))
    bad = tmp_path / "zoo" / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    missing = tmp_path / "zoo" / "missing.safetensors"
    models += [(bad, ModelMeta(id="org/bad")), (missing, ModelMeta(id="org/missing"))]
    out = tmp_path / "fp.parquet"
    added, messages = fingerprint_into_store(_fresh(models), FingerprintStore.open(out), n_neurons=5,
                                             journal=Journal(out))
    assert len(added) == 4
    store = FingerprintStore.open(out)
    assert set(store.errors) == {"org/bad", "org/missing"}
    assert "bad.safetensors" in store.errors["org/bad"] and "no such file" in store.errors["org/missing"]
    assert any(m.startswith("org/missing: ") and m.endswith("; left out") for m in messages)
    # fixed: the next run tries them again and drops their errors
    rng = np.random.default_rng(1)
    save_file({k: v.astype(np.float32) for k, v in _layers(rng, 16).items()}, bad)
    added, _ = fingerprint_into_store(_fresh(models), store, n_neurons=5, journal=Journal(out))
    assert added == ["org/bad"]
    assert set(FingerprintStore.open(out).errors) == {"org/missing"}


class _DyingWorkers(LocalExecutor):
    """Runs every task but the second, whose worker 'dies' (as Ray reports after its retries)."""

    def map_unordered(self, fn, items, *, max_in_flight=None):
        for i, result in super().map_unordered(fn, items):
            yield i, (TaskFailure("WorkerCrashedError", "the worker died") if fn.__name__ == "fingerprint_batch"
                      and i == 1 else result)


def test_a_batch_whose_worker_died_is_recorded_and_the_run_goes_on(tmp_path):
    models = small_zoo(tmp_path / "zoo", families=((16, 6),))
    store = FingerprintStore.empty()
    added, messages = fingerprint_into_store(_fresh(models), store, n_neurons=5, batch_size=2,
                                             executor=_DyingWorkers())
    assert len(added) == 4 and set(store.errors) == {"org/f0-m2", "org/f0-m3"}
    assert "batch failed (WorkerCrashedError: the worker died)" in store.errors["org/f0-m2"]


def test_ray_retries_a_dead_worker_then_reports_it(ray_executor, tmp_path):
    marker = tmp_path / "died-once"

    def dies_once(x):
        if not marker.exists():
            marker.touch()
            os._exit(1)  # the worker process dies mid-task
        return x * 2

    def always_dies(x):
        os._exit(1)

    assert dict(ray_executor.map_unordered(dies_once, [21])) == {0: 42}
    failures = dict(ray_executor.map_unordered(always_dies, [1]))
    assert isinstance(failures[0], TaskFailure) and failures[0].error is None
    assert "died" in failures[0].message.lower() or "crash" in failures[0].kind.lower()


def test_a_file_that_changes_while_read_is_an_error(tmp_path, monkeypatch):
    import modelatlas.weights.fingerprint as fingerprint

    models = small_zoo(tmp_path / "zoo", families=((16, 3),))
    victim = models[1][0]
    real = fingerprint._read_model

    def read_and_touch(wf, *args, **kwargs):
        out = real(wf, *args, **kwargs)
        if Path(wf.path) == victim:  # another process rewrites the file while we read it
            st = victim.stat()
            os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        return out

    monkeypatch.setattr(fingerprint, "_read_model", read_and_touch)
    store = FingerprintStore.empty()
    added, _ = fingerprint_into_store(_fresh(models), store, n_neurons=5)
    assert sorted(added) == ["org/f0-m0", "org/f0-m2"]
    assert "changed while it was read" in store.errors["org/f0-m1"]


def test_urls_read_by_ranges_equal_local_paths(tmp_path):
    import fsspec

    models = small_zoo(tmp_path / "zoo", families=((32, 3),))
    memory = fsspec.filesystem("memory")
    remote = []
    for path, meta in models:
        url = f"memory://zoo-{tmp_path.name}/{path.name}"
        memory.pipe(url, path.read_bytes())
        remote.append((url, ModelMeta(id=meta.id, created_at=meta.created_at, created_at_source="manifest")))
    file_urls = [(path.as_uri(), m) for path, m in _fresh(models)]
    stores = {}
    for name, items in (("path", _fresh(models)), ("file", file_urls), ("memory", remote)):
        stores[name] = FingerprintStore.empty()
        fingerprint_into_store(items, stores[name], n_neurons=4)
        assert len(stores[name]) == 3 and not stores[name].errors
    vectors = {name: s.rows["vector"].to_pylist() for name, s in stores.items()}
    assert vectors["path"] == vectors["file"] == vectors["memory"]
    # range reads: the header and 4 rows of each layer, far less than the file
    size = models[0][0].stat().st_size
    assert max(stores["memory"].rows["bytes_read"].to_pylist()) < size / 3
    # an unreachable or absent URL is a recorded error naming it
    store = FingerprintStore.empty()
    gone = f"memory://zoo-{tmp_path.name}/gone.safetensors"
    fingerprint_into_store(remote[:1] + [(gone, ModelMeta(id="org/gone")),
                                         ("nosuchproto://x/y.safetensors", ModelMeta(id="org/proto"))],
                           store, n_neurons=4)
    assert gone in store.errors["org/gone"] and "no such file" in store.errors["org/gone"]
    assert "nosuchproto://x/y.safetensors" in store.errors["org/proto"]
    # a host that does not answer (no network here: DNS fails; with one, the repository is absent)
    url = "hf://modelatlas-no-such-org-7f3a/none/model.safetensors"
    added, messages = fingerprint_into_store([(url, ModelMeta(id=url))], store, n_neurons=4)
    assert added == [] and store.errors[url].startswith(url)
    assert [m for m in messages if m.startswith(url)][0].count(url) == 1


def _cli(*args, env_extra=None, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "NO_COLOR": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "modelatlas.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_an_unreachable_cluster_is_one_line_and_exit_3_unless_fallback(tmp_path):
    _ray()
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    models = small_zoo(tmp_path / "zoo", families=((16, 2),))
    args = ["fingerprint", str(models[0][0]), "--out", str(tmp_path / "fp.parquet"), "--neurons", "4",
            "--engine", "ray", "--address", f"127.0.0.1:{port}"]
    done = _cli(*args)
    assert done.returncode == 3, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "fp.parquet").exists()
    done = _cli(*args, "--fallback-local", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == 1 and "--fallback-local" in done.stderr


def _main(args: list[str]) -> int:
    from modelatlas.cli import main

    try:
        return main(args)
    except SystemExit as done:  # typer exits on success
        return int(done.code or 0)


def test_cli_engine_ray_equals_local(tmp_path, ray_executor, capsys):
    """The commands on the module's Ray connection (a process already connected keeps it)."""
    from datetime import datetime, timezone

    models = small_zoo(tmp_path / "zoo", families=((16, 5), (24, 4)))
    entries = [{"id": m.id, "path": str(p.relative_to(tmp_path / "zoo")),
                "created_at": datetime.fromtimestamp(m.created_at, timezone.utc).isoformat()} for p, m in models]
    (tmp_path / "zoo" / "manifest.json").write_text(json.dumps({"name": "t", "models": entries}))
    reports = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.parquet"
        assert _main(["fingerprint", str(tmp_path / "zoo"), "--out", str(out), "--neurons", "5",
                      "--engine", engine, "--batch-size", "2", "--json"]) == 0
        capsys.readouterr()
        assert _main(["chart", str(out), "--engine", engine, "--block-size", "4", "--json"]) == 0
        reports[engine] = (FingerprintStore.open(out).rows, json.loads(capsys.readouterr().out))
    assert reports["ray"][0].equals(reports["local"][0])
    assert reports["ray"][1]["n_edges"] == reports["local"][1]["n_edges"] > 0
    assert _main(["chart", str(out), "--address", "127.0.0.1:1"]) == 2
    assert "--engine ray" in capsys.readouterr().err


def test_store_errors_survive_a_round_trip(tmp_path):
    store = FingerprintStore.empty()
    store.record_errors({"a/b": "no such file", "c/d": "changed while it was read"})
    store.save(tmp_path / "s.parquet")
    again = FingerprintStore.open(tmp_path / "s.parquet")
    assert again.errors == store.errors and len(again) == 0
    # a model that is then fingerprinted loses its error
    models = small_zoo(tmp_path / "zoo", families=((16, 1),))
    again.record_errors({models[0][1].id: "unreachable"})
    fingerprint_into_store(_fresh(models), again, n_neurons=3)
    assert models[0][1].id not in again.errors and "a/b" in again.errors


def test_the_footer_keeps_a_bounded_list_of_errors(tmp_path, monkeypatch):
    import modelatlas.weights.store as store_module

    monkeypatch.setattr(store_module, "MAX_ERRORS", 2)
    store = FingerprintStore.empty()
    store.record_errors({f"m/{i}": "x" * 1000 for i in range(3)})
    store.save(tmp_path / "s.parquet")
    kept = FingerprintStore.open(tmp_path / "s.parquet").errors
    assert list(kept) == ["m/0", "m/1"] and {len(v) for v in kept.values()} == {store_module.MAX_ERROR_CHARS}


def test_the_progress_bar_counts_done_and_failed():
    import io

    from rich.console import Console

    from modelatlas.engine.progress import engine_progress

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, no_color=True)
    with engine_progress("fingerprinting (ray, 2 workers)", 10, console=console) as tally:
        tally.done(7)
        tally.failed(2)
        assert (tally.n_done, tally.n_failed) == (7, 2)
    with engine_progress("quiet", 3, enabled=False) as tally:
        tally.done(3)
        assert tally.n_done == 3
    rendered = out.getvalue()
    assert "9/10" in rendered and "failed 2" in rendered and "fingerprinting (ray, 2 workers)" in rendered
