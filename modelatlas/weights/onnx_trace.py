"""Hugging Face / PyTorch parameter names for anonymous ONNX initializers, traced through the graph.

PyTorch's TorchScript exporter keeps parameter names only for initializers it does not rewrite;
``MatMul`` weights (stored transposed), recurrent weights and folded constants come out anonymous
(``onnx::MatMul_470``, ``onnx::GRU_227``). Their node names keep the module scope, though:
``/model/encoder/layer.0/attention/self/query/MatMul`` computes module
``encoder.layer.0.attention.self.query``. We trace each anonymous initializer to the node that
consumes it and name it ``<module>.<parameter>`` from the node's scope, the operator and the input
slot (``MatMul`` / ``Gemm`` / ``Conv`` input 1 → ``weight``, ``Gather`` input 0 → ``weight``,
``LayerNormalization`` inputs 1 / 2 → ``weight`` / ``bias`` ...).

The scope names the module as the calls saw it, which may differ from the parameter path (a
sentence-transformers export has scopes ``/model/model.0/auto_model/...`` for parameters named
``model.0.auto_model...``; a submodule called from its grandparent loses a component). The
difference is calibrated on the initializers the exporter did name (``ScopeCalibration``).

Recurrent layers (``GRU``, ``LSTM``) store ``W [dirs, gates·h, in]``, ``R [dirs, gates·h, h]`` and
``B [dirs, 2·gates·h]`` in ONNX's gate order (GRU ``z, r, h``; LSTM ``i, o, f, c``); PyTorch stores
``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` per direction in its own
order (GRU ``r, z, n``; LSTM ``i, f, g, o``). :func:`recurrent_parameters` splits and reorders them
(ONNX operator specification, ``GRU`` and ``LSTM``; PyTorch ``torch.nn.GRU`` / ``torch.nn.LSTM``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

#: Initializer names that carry no module path (TorchScript ``onnx::Op_N``; dynamo ``val_N``).
ANONYMOUS = re.compile(r"^(onnx::|val_\d|_val_\d|initializer_?\d|const_?\d)|::")
#: (operator, input slot) -> parameter name within the module.
SLOTS = {("MatMul", 1): "weight", ("Gemm", 1): "weight", ("Gemm", 2): "bias", ("Conv", 1): "weight",
         ("Conv", 2): "bias", ("ConvTranspose", 1): "weight", ("ConvTranspose", 2): "bias",
         ("Gather", 0): "weight", ("LayerNormalization", 1): "weight", ("LayerNormalization", 2): "bias",
         ("BatchNormalization", 1): "weight", ("BatchNormalization", 2): "bias",
         ("BatchNormalization", 3): "running_mean", ("BatchNormalization", 4): "running_var",
         ("InstanceNormalization", 1): "weight", ("InstanceNormalization", 2): "bias",
         ("GroupNormalization", 1): "weight", ("GroupNormalization", 2): "bias", ("PRelu", 1): "weight"}
#: Row blocks of PyTorch's gate order, as indices of ONNX's: torch block ``i`` is ONNX block ``order[i]``.
GATE_ORDER = {"GRU": (1, 0, 2), "LSTM": (0, 2, 3, 1)}


def is_anonymous(name: str) -> bool:
    """Whether an initializer name carries no module path."""
    return bool(ANONYMOUS.search(name)) or "." not in name


def scope_of(node) -> list[str] | None:
    """The module path of a TorchScript-exported node (``/a/b.0/c/MatMul`` -> ``[a, b.0, c]``)."""
    name = node.name or ""
    if not name.startswith("/") or name.count("/") < 2:
        return None
    return [p for p in name[1:].split("/")[:-1] if p]


@dataclass
class ScopeCalibration:
    """From a node's scope to its module's parameter path, learnt from the named initializers.

    TorchScript scopes follow module *calls*: a wrapper adds a component in front
    (``/model/model.0/...`` for ``model.0...``), a submodule called from its grandparent's
    ``forward`` loses its parent (``/gate/MatMul`` for ``encoder.gate``). Each named parameter
    consumed by a scoped node gives a rewrite: the scope and the parameter path share a tail; the
    scope's head (``drop`` atoms) is replaced by the path's head (``prepend``). A scope seen with a
    named parameter maps exactly; any other scope takes the rewrite most named parameters agree on.
    """

    exact: dict[str, str] = field(default_factory=dict)
    drop: int = 0
    prepend: tuple[str, ...] = ()

    @classmethod
    def fit(cls, nodes, named_inits: set[str]) -> "ScopeCalibration":
        """Learn from every named initializer consumed in a known slot of a scoped node."""
        counts: Counter[tuple[int, tuple[str, ...]]] = Counter()
        exact: dict[str, str] = {}
        for node in nodes:
            scope = scope_of(node)
            if scope is None:
                continue
            for slot, x in enumerate(node.input):
                param = _slot(node, slot, x)
                if param is None or x not in named_inits or not x.endswith("." + param):
                    continue
                module = x[: -len(param) - 1]
                atoms, target = ".".join(scope).split("."), module.split(".")
                tail = 0
                while tail < min(len(atoms), len(target)) and atoms[-1 - tail] == target[-1 - tail]:
                    tail += 1
                if tail == 0:
                    continue
                exact[".".join(scope)] = module
                counts[(len(atoms) - tail, tuple(target[: len(target) - tail]))] += 1
        if not counts:
            return cls(exact)
        (drop, prepend), _ = counts.most_common(1)[0]
        return cls(exact, drop, prepend)

    def module(self, node) -> str | None:
        scope = scope_of(node)
        if scope is None:
            return None
        key = ".".join(scope)
        if key in self.exact:
            return self.exact[key]
        atoms = key.split(".")
        if len(atoms) <= self.drop:
            return None
        return ".".join((*self.prepend, *atoms[self.drop:]))


def _slot(node, slot: int, name: str) -> str | None:
    """The parameter a node input holds: :data:`SLOTS`, or a bias added by ``Add``."""
    if node.op_type == "Add" and name.endswith(".bias"):
        return "bias"
    return SLOTS.get((node.op_type, slot))


def traced_name(value: str, consumers: list, calibration: ScopeCalibration) -> str | None:
    """``<module>.<parameter>`` for an initializer (or its dequantised value) from its consumer."""
    found = set()
    for node in consumers:
        for slot, x in enumerate(node.input):
            param = SLOTS.get((node.op_type, slot))
            if x != value or param is None:
                continue
            module = calibration.module(node)
            if module:
                found.add(f"{module}.{param}")
    return found.pop() if len(found) == 1 else None


def recurrent_parameters(node, arrays: dict[str, np.ndarray], calibration: ScopeCalibration
                         ) -> list[tuple[str, str, np.ndarray]] | None:
    """PyTorch ``(name, stored initializer, array)`` triples of one ``GRU`` / ``LSTM`` node.

    ``None`` when the node's weights are not all initializers or do not have ONNX's shapes.
    The layer index ``k`` is the number after the operator in the node name (``GRU_1`` -> 1).
    """
    gates = len(GATE_ORDER[node.op_type])
    w_name, r_name = node.input[1], node.input[2]
    b_name = node.input[3] if len(node.input) > 3 and node.input[3] else None
    if w_name not in arrays or r_name not in arrays or (b_name and b_name not in arrays):
        return None
    W, R = arrays[w_name], arrays[r_name]
    if W.ndim != 3 or R.ndim != 3 or W.shape[1] % gates or R.shape[:2] != W.shape[:2]:
        return None
    dirs, rows = W.shape[0], W.shape[1]
    hidden = rows // gates
    B = arrays[b_name].reshape(dirs, 2 * rows) if b_name else None
    module = calibration.module(node) or node.op_type.lower()
    tail = (node.name or "").rsplit("/", 1)[-1]
    layer = int(m[1]) if (m := re.fullmatch(rf"{node.op_type}_(\d+)", tail)) else 0
    order = np.concatenate([np.arange(hidden) + hidden * g for g in GATE_ORDER[node.op_type]])
    out = []
    for d in range(dirs):
        suffix = f"_l{layer}" + ("_reverse" if d == 1 else "")
        out.append((f"{module}.weight_ih{suffix}", w_name, W[d][order]))
        out.append((f"{module}.weight_hh{suffix}", r_name, R[d][order]))
        if B is not None:
            out.append((f"{module}.bias_ih{suffix}", b_name, B[d, :rows][order]))
            out.append((f"{module}.bias_hh{suffix}", b_name, B[d, rows:][order]))
    return out
