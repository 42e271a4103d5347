"""A remote safetensors file is fingerprinted with one ranged request for the rows of all its layers
(plus the header's), not one per layer, and gives the fingerprint a local read gives (docs/scale.md)."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from modelatlas.weights.remote import MAX_RANGES, RemoteSafetensorsFile
from modelatlas.weights.store import FingerprintStore, ModelMeta, fingerprint_into_store

fsspec = pytest.importorskip("fsspec")


@pytest.fixture
def counted_ranges(monkeypatch):
    """Every ``cat_ranges`` call of the in-memory file system, as the number of ranges asked."""
    from fsspec.implementations.memory import MemoryFileSystem

    calls: list[int] = []
    original = MemoryFileSystem.cat_ranges

    def counting(self, paths, starts, ends, *args, **kwargs):
        calls.append(len(starts))
        return original(self, paths, starts, ends, *args, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "cat_ranges", counting)
    return calls


def _model(folder, name: str, layers: int, seed: int):
    rng = np.random.default_rng(seed)
    path = folder / f"{name}.safetensors"
    save_file({f"layers.{i}.weight": rng.normal(size=(48, 32)).astype(np.float32) for i in range(layers)}, str(path))
    return path


def test_all_layers_rows_in_one_request_and_the_same_fingerprint(tmp_path, counted_ranges):
    path = _model(tmp_path, "m", layers=6, seed=1)
    url = f"memory://prefetch-{tmp_path.name}/m.safetensors"
    fsspec.filesystem("memory").pipe(url, path.read_bytes())
    stores = {}
    for name, location in (("local", path), ("remote", url)):
        stores[name] = FingerprintStore.empty()
        added, messages = fingerprint_into_store([(location, ModelMeta(id="org/m"))], stores[name], n_neurons=5)
        assert added == ["org/m"], messages
    assert stores["local"].rows["vector"].to_pylist() == stores["remote"].rows["vector"].to_pylist()
    # the remote reads: rows of all six layers in one call (the header is read with cat_file)
    assert len(counted_ranges) == 1 and counted_ranges[0] >= 6


def test_prefetched_rows_equal_rows_read_one_by_one(tmp_path):
    path = _model(tmp_path, "m", layers=3, seed=2)
    url = f"memory://prefetch-{tmp_path.name}/m2.safetensors"
    fsspec.filesystem("memory").pipe(url, path.read_bytes())
    rng = np.random.default_rng(3)
    wanted = {f"layers.{i}.weight": rng.choice(48, 9) for i in range(3)}  # repeats and any order
    with RemoteSafetensorsFile(url) as one_by_one:
        expected = {n: one_by_one.read_rows(n, r) for n, r in wanted.items()}
    with RemoteSafetensorsFile(url) as ahead:
        ahead.prefetch(wanted)
        got = {n: ahead.read_rows(n, r) for n, r in wanted.items()}
        again = ahead.read_rows("layers.0.weight", wanted["layers.0.weight"])  # not held twice: read anew
    for n in wanted:
        np.testing.assert_array_equal(got[n], expected[n])
    np.testing.assert_array_equal(again, expected["layers.0.weight"])


def test_too_many_ranges_for_one_request_fall_back_to_per_layer_reads(tmp_path, counted_ranges):
    path = _model(tmp_path, "m", layers=2, seed=4)
    url = f"memory://prefetch-{tmp_path.name}/m3.safetensors"
    fsspec.filesystem("memory").pipe(url, path.read_bytes())
    with RemoteSafetensorsFile(url) as wf:
        every_other = np.arange(0, 48, 2)
        wf.prefetch({"layers.0.weight": every_other, "layers.1.weight": every_other})
        assert counted_ranges == [48]  # 24 runs each, one call
    assert 48 <= MAX_RANGES
