"""``modelatlas fingerprint``: sampled-neuron fingerprints of weights files, saved for later commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from modelatlas.commands.common import JsonFlag, console, emit_json, progress
from modelatlas.errors import InputError


def expand_inputs(paths: list[Path]) -> list[tuple[str, Path]]:
    """(id, weights path) pairs from files, model folders and zoo ``manifest.json`` files.

    A folder holding one model (a weights file or a shard index) is one model; any other folder is
    searched for manifests first, then for weights files one level down.
    """
    out: list[tuple[str, Path]] = []
    for path in paths:
        if path.name == "manifest.json" or (path.is_dir() and (path / "manifest.json").is_file()):
            out.extend(_manifest_models(path if path.is_file() else path / "manifest.json"))
        elif path.is_dir():
            out.extend(_folder_models(path))
        elif path.exists():
            out.append((str(path), path))
        else:
            raise InputError("no such file or folder", path=str(path))
    if not out:
        raise InputError("no models found in " + ", ".join(map(str, paths)))
    return out


def _manifest_models(manifest: Path) -> list[tuple[str, Path]]:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        models = data["models"]
        return [(str(m.get("id") or m["path"]), manifest.parent / m["path"]) for m in models]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"not a zoo manifest with models[].path ({exc.__class__.__name__}: {exc})",
                         path=str(manifest)) from None


def _folder_models(folder: Path) -> list[tuple[str, Path]]:
    from modelatlas.weights.reader import FOLDER_CANDIDATES

    suffixes = (".safetensors", ".gguf", ".onnx", ".bin", ".pt", ".pth")
    if any(folder.glob("*.safetensors.index.json")):
        return [(str(folder), folder)]
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(suffixes))
    if files:
        return [(str(p), p) for p in files]
    subfolders = [d for d in sorted(folder.iterdir()) if d.is_dir()
                  and any(next(d.glob(pattern), None) for pattern in FOLDER_CANDIDATES)]
    return [(str(d), d) for d in subfolders]


def fingerprint(
    paths: Annotated[list[Path], typer.Argument(help="Weights files, model folders or zoo manifest.json files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .npz (a folder with --group).")],
    neurons: Annotated[int, typer.Option("--neurons", "-n", help="Rows sampled per layer (or per model).")] = 100,
    layers: Annotated[str, typer.Option("--layers", help="dense, attention, mother-vit, mother-lora, "
                                        "mother-llama, mother-sd, or a regular expression.")] = "dense",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the row sample.")] = 0,
    sampling: Annotated[str, typer.Option("--sampling", help="layer: N rows per layer; model: N in all.")] = "layer",
    kurtosis: Annotated[Optional[bool], typer.Option("--kurtosis/--no-kurtosis",
                        help="Kurtosis of each selected layer (default: for mother-* only).")] = None,
    full_hash: Annotated[bool, typer.Option("--full-hash", help="Hash every stored byte (reads whole files).")] = False,
    group: Annotated[bool, typer.Option("--group", help="Split models by architecture signature; one file each.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fingerprint models: sampled neurons per layer, kurtosis, content hash, quantisation flag."""
    import time

    from modelatlas.weights.fingerprint import fingerprint_models, group_by_signature

    models = expand_inputs(paths)
    ids = {str(p): i for i, p in models}
    groups = group_by_signature([p for _, p in models]) if group else {"": [p for _, p in models]}
    written = []
    started = time.perf_counter()
    with progress("fingerprinting", total=len(groups), enabled=not as_json) as advance:
        for key, members in groups.items():
            fp = fingerprint_models(members, ids=[ids[str(p)] for p in members], n_neurons=neurons,
                                    layers=layers, seed=seed, sampling=sampling, kurtosis=kurtosis,
                                    hash_kind="full" if full_hash else "sample")
            if group:
                out.mkdir(parents=True, exist_ok=True)
                target = out / f"{key}.npz"
            else:
                out.parent.mkdir(parents=True, exist_ok=True)
                target = out
            fp.save(target)
            written.append({"file": str(target), "signature_key": fp.signature_key, "models": len(fp.ids),
                            "layers": len(fp.layer_names), "dimensions": int(fp.vectors.shape[1]),
                            "quantized": int(fp.quantized.sum()),
                            "duplicates": len(fp.content_hashes) - len(set(fp.content_hashes)),
                            "bytes_read": int(fp.bytes_read.sum())})
            advance()
    seconds = time.perf_counter() - started
    if as_json:
        emit_json({"outputs": written, "seconds": seconds})
        return
    for w in written:
        console.print(f"{w['file']}: {w['models']} models, signature {w['signature_key']}, "
                      f"{w['layers']} layers, {w['dimensions']:,} dimensions, {w['quantized']} quantised, "
                      f"{w['duplicates']} exact duplicates, {w['bytes_read'] / 1e6:,.1f} MB read")
    console.print(f"{sum(w['models'] for w in written)} models in {seconds:.1f} s")


def register(app: typer.Typer) -> None:
    app.command("fingerprint")(fingerprint)
