"""Weights commands: ``fingerprint`` (sampled-neuron fingerprints into a fingerprint store) and
``weights-info`` (what a weights file holds: tensors, signature, quantisation, content hash)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from modelatlas.commands.common import FormatOpt, JsonFlag, Results, emit_json, note, resolve_format
from modelatlas.engine.options import AddressOpt, EngineOpt, FallbackOpt, WorkersOpt, executor_from_options
from modelatlas.errors import InputError


def fingerprint(
    paths: Annotated[list[str], typer.Argument(help="Weights files, Hugging Face model folders or cache "
                                               "entries, folders of weights files, zoo folders / manifest.json, "
                                               "or URLs of safetensors files (file://, hf://, s3://, ...).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Fingerprint store (.parquet); extended when it exists.")],
    neurons: Annotated[int, typer.Option("--neurons", "-n", help="Rows sampled per layer (or per model).")] = 100,
    layers: Annotated[str, typer.Option("--layers", help="dense, attention, mother-vit, mother-lora, "
                                        "mother-llama, mother-sd, or a regular expression.")] = "dense",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the row sample.")] = 0,
    sampling: Annotated[str, typer.Option("--sampling", help="layer: N rows per layer; model: N in all.")] = "layer",
    kurtosis: Annotated[Optional[bool], typer.Option("--kurtosis/--no-kurtosis",
                        help="Kurtosis of each selected layer (default: for mother-* only).")] = None,
    full_hash: Annotated[bool, typer.Option("--full-hash", help="Hash every stored byte (reads whole files).")] = False,
    project: Annotated[Optional[int], typer.Option("--project", help="Reduce vectors to this many "
                       "dimensions (sparse random projection, while reading; no per-layer evidence then).")] = None,
    mtime: Annotated[bool, typer.Option("--mtime/--no-mtime", help="Without a documented upload time, record "
                                        "the weights file's modification time (flagged).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first unreadable model (default: "
                                         "leave it out and report it).")] = False,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    fallback_local: FallbackOpt = False,
    workers: WorkersOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Models per engine task.")] = 16,
    fmt: FormatOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Fingerprint models into a store: sampled neurons per layer, kurtosis, content hash, quantisation flag,
    signature and metadata. Models already in the store are not read again."""
    import time

    from modelatlas.engine.fingerprint_run import Journal
    from modelatlas.weights.discover import discover_models
    from modelatlas.weights.remote import is_url
    from modelatlas.weights.store import FingerprintStore, ModelMeta, fingerprint_into_store

    fmt = resolve_format(fmt, as_json)
    as_json = fmt == "json"
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, not {batch_size}", where="--batch-size")
    if out.suffix != ".parquet":
        raise InputError("the fingerprint store is a Parquet file: give --out NAME.parquet", path=str(out))
    store = FingerprintStore.open(out)
    before = len(store)
    found = discover_models([Path(p) for p in paths if not is_url(p)], mtime_fallback=mtime)
    models = [(m.weights, m.meta) for m in found.models] + [(u, ModelMeta(id=u, path=u)) for u in paths if is_url(u)]
    messages = list(found.messages)
    if strict and messages:
        raise InputError(messages[0])
    started = time.perf_counter()
    with executor_from_options(engine, address, fallback_local, workers) as executor:
        added, more = fingerprint_into_store(
            models, store, n_neurons=neurons, layers=layers, seed=seed,
            sampling=sampling, kurtosis=kurtosis, hash_kind="full" if full_hash else "sample", project=project,
            on_error="raise" if strict else "skip", executor=executor, batch_size=batch_size,
            journal=Journal(out), bar=not as_json)
    messages += more
    seconds = time.perf_counter() - started
    counts = store.plan_counts()
    new = set(added)
    rows = store.rows.select(["id", "plan", "quantized", "bytes_read"]).to_pylist()
    plans = [{"plan": key, "signature_key": store.plans[key]["signature_key"], "models": n,
              "added": sum(1 for r in rows if r["plan"] == key and r["id"] in new),
              "layers": len(store.plans[key]["layer_names"]),
              "dimensions": int(store.plans[key]["layer_offsets"][-1]) if not store.plans[key]["projection"]
              else int(store.plans[key]["projection"]),
              "quantized": sum(1 for r in rows if r["plan"] == key and r["quantized"])} for key, n in counts.items()]
    bytes_read = sum(r["bytes_read"] or 0 for r in rows if r["id"] in new)
    report = {"store": str(out), "models": len(store), "added": len(added), "before": before, "plans": plans,
              "bytes_read": bytes_read, "messages": messages, "seconds": seconds}
    if as_json:
        emit_json(report)
        return
    for msg in messages:
        note(msg)
    results = Results(fmt)
    results.records("fingerprint plans", plans,
                    ["plan", "signature_key", "models", "added", "layers", "dimensions", "quantized"])
    results.line(f"{out}: {len(added)} models added ({bytes_read / 1e6:,.1f} MB read), {len(store)} in all, "
                 f"{seconds:.1f} s")


def weights_info(
    path: Annotated[Path, typer.Argument(help="A weights file or model folder.")],
    tensors: Annotated[bool, typer.Option("--tensors", help="List every logical tensor.")] = False,
    full_hash: Annotated[bool, typer.Option("--hash", help="Content hash of every stored byte.")] = False,
    relative: Annotated[Optional[Path], typer.Option(
        "--relative", help="A relative (e.g. the parent) to match the tensors without a counterpart "
                           "against by value (reads both whole).")] = None,
    fmt: FormatOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Describe a weights file: format, parameters, signature key, quantisation evidence, and how
    each tensor got its canonical name (the file, a name table, the ONNX graph, or by value)."""
    from modelatlas.weights import content_hash, detect_quantization, open_weights, signature
    from modelatlas.weights.signature import is_parameter

    fmt = resolve_format(fmt, as_json)
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
    if fmt == "json":
        emit_json(info)
        return
    out = Results(fmt)
    keys = ("format", "tensors", "parameters", "signature_key", "wrapper_prefix", "quantized", "schemes", "dtypes",
            "low_precision", "content_hash", "name_sources", "canonical_names", "matched_by_name", "bytes_read")
    out.fields(str(path), [*((k, info[k]) for k in keys if k in info), *(("evidence", e) for e in info["evidence"])])
    if "tensor_list" in info:
        out.records("tensors", info["tensor_list"], ["name", "shape", "dtype", "quantization", "name_source"])
    if info.get("value_matches"):
        out.records("matched by value", info["value_matches"],
                    ["tensor", "transform", "relative_tensors", "detail", "relative_error"])
    if info.get("unmatched"):
        out.line("unmatched: " + ", ".join(info["unmatched"]))


def register(app: typer.Typer) -> None:
    app.command("fingerprint")(fingerprint)
    app.command("weights-info")(weights_info)
