"""Weights commands: ``fingerprint`` (sampled-neuron fingerprints saved for later commands) and
``weights-info`` (what a weights file holds: tensors, signature, quantisation, content hash)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from modelatlas.commands.common import JsonFlag, console, emit_json, progress
from modelatlas.errors import InputError
from modelatlas.strict_json import loads_strict


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
    from modelatlas.zoo.manifest import resolve_in_zoo

    try:
        data = loads_strict(manifest.read_bytes(), path=str(manifest), what="zoo manifest")
        models = data["models"]
        root = manifest.parent.resolve()
        return [(str(m.get("id") or m["path"]),
                 resolve_in_zoo(root, m["path"], manifest=manifest, where=f"models[{i}]", must_exist=False))
                for i, m in enumerate(models)]
    except (OSError, KeyError, TypeError, AttributeError) as exc:
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
    align: Annotated[str, typer.Option("--align", help="exact: one signature; common: the tensors all "
                                       "models share.")] = "exact",
    kurtosis: Annotated[Optional[bool], typer.Option("--kurtosis/--no-kurtosis",
                        help="Kurtosis of each selected layer (default: for mother-* only).")] = None,
    full_hash: Annotated[bool, typer.Option("--full-hash", help="Hash every stored byte (reads whole files).")] = False,
    project: Annotated[Optional[int], typer.Option("--project", help="Reduce vectors to this many "
                       "dimensions (sparse random projection, while reading).")] = None,
    group: Annotated[bool, typer.Option("--group", help="Split models by architecture signature; one file each.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first unreadable model (default: "
                                         "leave it out and report it).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fingerprint models: sampled neurons per layer, kurtosis, content hash, quantisation flag."""
    import time

    from rich.markup import escape

    from modelatlas.weights.fingerprint import fingerprint_models

    models = expand_inputs(paths)
    ids = {str(p): i for i, p in models}
    groups, skipped = _groups([p for _, p in models], group, strict)
    written = []
    started = time.perf_counter()
    with progress("fingerprinting", total=len(groups), enabled=not as_json) as advance:
        for key, members in groups.items():
            fp = fingerprint_models(members, ids=[ids[str(p)] for p in members], n_neurons=neurons,
                                    layers=layers, seed=seed, sampling=sampling, align=align, kurtosis=kurtosis,
                                    hash_kind="full" if full_hash else "sample",
                                    on_error="raise" if strict else "skip", project=project)
            skipped += fp.skipped
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
                            "bytes_read": int(fp.bytes_read.sum()),
                            "name_sources": _summed(fp.name_sources)})
            advance()
    seconds = time.perf_counter() - started
    if as_json:
        emit_json({"outputs": written, "skipped": [{"id": i, "error": e} for i, e in skipped],
                   "seconds": seconds})
        return
    for _, error in skipped:
        console.print(f"[yellow]skipped[/yellow] {escape(error)}", highlight=False)
    for w in written:
        console.print(f"{w['file']}: {w['models']} models, signature {w['signature_key']}, "
                      f"{w['layers']} layers, {w['dimensions']:,} dimensions, {w['quantized']} quantised, "
                      f"{w['duplicates']} exact duplicates, {w['bytes_read'] / 1e6:,.1f} MB read; tensor names: "
                      + ", ".join(f"{k} {v}" for k, v in w["name_sources"].items()))
    console.print(f"{sum(w['models'] for w in written)} models in {seconds:.1f} s")


def weights_info(
    path: Annotated[Path, typer.Argument(help="A weights file or model folder.")],
    tensors: Annotated[bool, typer.Option("--tensors", help="List every logical tensor.")] = False,
    full_hash: Annotated[bool, typer.Option("--hash", help="Content hash of every stored byte.")] = False,
    relative: Annotated[Optional[Path], typer.Option(
        "--relative", help="A relative (e.g. the parent) to match the tensors without a counterpart "
                           "against by value (reads both whole).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Describe a weights file: format, parameters, signature key, quantisation evidence, and how
    each tensor got its canonical name (the file, a name table, the ONNX graph, or by value)."""
    import numpy as np
    from rich.table import Table

    from modelatlas.weights import content_hash, detect_quantization, open_weights, signature
    from modelatlas.weights.signature import is_parameter

    with open_weights(path) as wf:
        sig = signature(wf)
        report = detect_quantization(wf)
        params = [t for t in wf.tensors.values() if is_parameter(t)]
        info = {"path": str(wf.path), "format": wf.format, "tensors": len(wf.tensors),
                "parameters": int(sum(t.numel for t in params)), "signature_key": sig.key,
                "wrapper_prefix": sig.prefix, "quantized": report.quantized, "schemes": report.schemes,
                "dtypes": report.dtypes, "low_precision": report.low_precision, "evidence": report.evidence,
                "metadata": {k: v for k, v in wf.metadata.items() if isinstance(v, (str, int, float, dict))}}
        if full_hash:
            info["content_hash"] = content_hash(wf).model
        if tensors:
            info["tensor_list"] = [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                                    "quantization": t.quantization.scheme if t.quantization else None}
                                   for t in wf.tensors.values()]
        from modelatlas.weights.fingerprint import name_source_counts  # noqa: PLC0415

        info["name_sources"] = name_source_counts(wf, sig)
        if wf.metadata.get("canonical_names"):
            info["canonical_names"] = wf.metadata["canonical_names"]
        if tensors:
            for entry in info["tensor_list"]:
                entry["name_source"] = wf.name_sources.get(entry["name"], "file")
        if relative is not None:
            from modelatlas.weights.value_match import match_by_value  # noqa: PLC0415

            with open_weights(relative) as other:
                theirs = signature(other).shapes
                info["value_matches"] = [
                    {"tensor": m.child, "relative_tensors": list(m.parents), "transform": m.transform,
                     "relative_error": round(m.error, 6), "detail": m.detail} for m in match_by_value(wf, other)]
            matched = {m["tensor"] for m in info["value_matches"]}
            info["matched_by_name"] = sum(theirs.get(n) == shape for n, shape in sig.entries)
            info["unmatched"] = sorted(sig.file_names[n] for n, shape in sig.entries
                                       if theirs.get(n) != shape and sig.file_names[n] not in matched)
        info["bytes_read"] = wf.bytes_read
    if as_json:
        emit_json(info)
        return
    table = Table(title=str(path), show_header=False)
    for key in ("format", "tensors", "parameters", "signature_key", "wrapper_prefix", "quantized",
                "schemes", "dtypes", "low_precision", "content_hash", "name_sources", "canonical_names",
                "matched_by_name", "bytes_read"):
        if key in info:
            value = info[key]
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v:,}" for k, v in value.items())
            elif isinstance(value, list):
                value = ", ".join(value) or "-"
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                value = f"{value:,}"
            table.add_row(key, str(value))
    for line in info["evidence"]:
        table.add_row("evidence", line)
    console.print(table)
    for t in info.get("tensor_list", []):
        console.print(f"{t['name']}  {t['shape']}  {t['dtype']}" + (f"  {t['quantization']}" if t["quantization"] else "")
                      + (f"  [{t['name_source']}]" if t["name_source"] != "file" else ""), highlight=False, markup=False)
    for m in info.get("value_matches", []):
        console.print(f"by value: {m['tensor']} = {m['transform']}({', '.join(m['relative_tensors'])})"
                      + (f" {m['detail']}" if m["detail"] else "") + f", relative error {m['relative_error']:.2g}",
                      highlight=False, markup=False)
    if info.get("unmatched"):
        console.print("unmatched: " + ", ".join(info["unmatched"]), highlight=False, markup=False)


def _summed(counts: list[dict[str, int]]) -> dict[str, int]:
    """Tensor-name sources over all models (``file``, ``name-table``, ``graph``, ``value``)."""
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return dict(sorted(total.items()))


def _groups(paths: list[Path], group: bool, strict: bool) -> tuple[dict[str, list[Path]], list]:
    """Models by signature key (one group unless ``group``); unreadable ones reported unless strict."""
    from modelatlas.weights.fingerprint import group_by_signature

    if not group:
        return {"": paths}, []
    groups: dict[str, list[Path]] = {}
    skipped = []
    for path in paths:
        try:
            key = next(iter(group_by_signature([path])))
        except InputError as exc:
            if strict:
                raise
            skipped.append((str(path), str(exc)))
            continue
        groups.setdefault(key, []).append(path)
    if not groups:
        raise InputError(f"none of the {len(paths)} models could be read; first error: {skipped[0][1]}")
    return groups, skipped


def register(app: typer.Typer) -> None:
    app.command("fingerprint")(fingerprint)
    app.command("weights-info")(weights_info)
