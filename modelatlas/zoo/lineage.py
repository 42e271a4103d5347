"""Write a family zoo: derive models pattern by pattern in any storage dtype, record the ground truth.

:class:`LineageWriter` is the zoo families' counterpart of :class:`modelatlas.zoo.builder.ZooBuilder`
without the original generator's fixed choices: every operation takes the settings the family
drew (optimiser, schedule and budget as a :class:`~modelatlas.zoo.optimise.Recipe`, trainable
layers, a fresh or shared head, LoRA placement / rank / alpha / initialisation / quantised base,
merge method, storage dtype) and records them in the manifest. A child always starts from its
parent's weights *as stored* (an fp16 parent's rounding included), as anyone downloading it would.
:meth:`LineageWriter.finish` gives upload times from a :class:`~modelatlas.zoo.upload_times.TimeModel`.

References
----------
Hu et al., "LoRA", ICLR 2022, Sec. 4.1 (``W + (alpha / r) B A``; ``A`` Kaiming-uniform, ``B`` zero).
Kalajdzievski, "A rank stabilization scaling factor for fine-tuning with LoRA", 2023 (rsLoRA:
``alpha / sqrt(r)``).
Meng et al., "PiSSA: principal singular values and singular vectors adaptation", NeurIPS 2024
(``A``, ``B`` from the top-``r`` SVD of ``W``, the residual frozen).
Dettmers et al., "QLoRA", NeurIPS 2023 (LoRA trained against a 4-bit base).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import ml_dtypes
import numpy as np

from modelatlas.zoo import merge as merging
from modelatlas.zoo.merge import State
from modelatlas.zoo.builder import save_safetensors
from modelatlas.zoo.manifest import Zoo, ZooModel, write_manifest
from modelatlas.zoo.quantize import GROUP_SIZE, dequantize, quantize
from modelatlas.zoo.upload_times import TimeModel, Upload, assign_times
from modelatlas.zoo.writer import ZooWriter


#: Storage dtypes of the families: manifest name -> numpy dtype of the stored float tensors.
DTYPES = {"fp32": np.dtype(np.float32), "fp16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16)}
LORA_INITS = ("kaiming", "gaussian", "pissa")
#: A run whose weights end farther than this from its parent (relative distance), or non-finite,
#: diverged; it is trained again at half the rate, at most ``RETRIES`` times.
DIVERGED = 3.0
RETRIES = 6


def store(state: State, dtype: str) -> State:
    """``state`` with its float tensors cast to the storage ``dtype`` (integer buffers unchanged)."""
    target = DTYPES[dtype]
    return {k: v.astype(target) if v.dtype.kind == "f" else v for k, v in state.items()}


def decode(stored: State) -> State:
    """Float32 copy of stored tensors (what a reader of the file computes with)."""
    return {k: v.astype(np.float32) if v.dtype.kind == "f" or v.dtype == DTYPES["bf16"] else v.copy()
            for k, v in stored.items()}


def lora_init(rng: np.random.Generator, weights: dict[str, float], rank: int) -> str:
    """An initialisation drawn from ``weights``; PiSSA only up to rank 8, because it needs ``rank``
    singular vectors of every target (a 10-output head has ten)."""
    from modelatlas.zoo.families.draws import pick  # noqa: PLC0415

    init = pick(rng, weights)
    return "kaiming" if init == "pissa" and rank > 8 else init


def relative_change(child: State, parent: State) -> float:
    """``‖θ_child − θ_parent‖ / ‖θ_parent‖`` over the float tensors the two share."""
    num = den = 0.0
    for k, p in parent.items():
        if p.dtype.kind == "f" and k in child:
            num += float(np.sum((child[k].astype(np.float64) - p) ** 2))
            den += float(np.sum(p.astype(np.float64) ** 2))
    return math.sqrt(num / den) if den else 0.0


@dataclass
class LineageWriter(ZooWriter):
    """Trains, derives and writes the models of one family zoo into ``out`` (parameters of
    :class:`~modelatlas.zoo.writer.ZooWriter`; ``name`` is the family)."""

    models: dict[str, ZooModel] = field(init=False, default_factory=dict)
    uploads: list[Upload] = field(init=False, default_factory=list)
    stream: ClassVar[int] = 2026

    # ----------------------------------------------------------------- helpers
    def architecture(self, model_id: str) -> str:
        """The architecture name of ``model_id``."""
        return self.models[model_id].architecture

    def module(self, model_id: str | None, architecture: str | None = None, state: State | None = None):
        """A torch module of ``model_id``'s architecture loaded with its stored weights (or ``state``)."""
        import torch  # noqa: PLC0415

        from modelatlas.zoo.family_nets import FAMILY_ARCHITECTURES  # noqa: PLC0415

        architecture = architecture or self.architecture(model_id)
        torch.manual_seed(self.new_seed())
        module = FAMILY_ARCHITECTURES[architecture]()
        state = state if state is not None else (self.states[model_id] if model_id else None)
        if state is not None:
            module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
        return module

    @staticmethod
    def state_of(module) -> State:
        """Every tensor of ``module``'s state dict (parameters and buffers) as a numpy copy."""
        return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}

    def add(self, component: str, name: str, stored: State | None, *, parents: Sequence[str], relation: str | None,
            pattern: str, architecture: str, extra: dict[str, Any], documented: bool = False,
            decoded: State | None = None, path: Path | None = None, sweep: str | None = None,
            sweep_key: float = 0.0, run: str | None = None) -> str:
        """Record one model; write ``stored`` unless ``path`` (already written) is given."""
        model_id = f"{component}/{name}"
        if model_id in self.models:
            raise ValueError(f"model {model_id!r} is built twice")
        if path is None:
            path = self.weights_path(component, name)
            save_safetensors(stored, path)
        self.states[model_id] = decoded if decoded is not None else decode(stored)
        self.models[model_id] = ZooModel(id=model_id, path=path, created_at=None, parents=list(parents),
                                         relation=relation, documented_parents=documented, component=component,
                                         architecture=architecture, pattern=pattern, extra=extra)
        self.uploads.append(Upload(model_id, tuple(parents), sweep, sweep_key, run))
        if self.on_model is not None:
            self.on_model(model_id)
        return model_id

    # ---------------------------------------------------------------- patterns
    def root(self, component: str, architecture: str, task, recipe, *, dtype: str, name: str = "root",
             extra: dict[str, Any] | None = None) -> str:
        """Pre-train ``architecture`` from random initialisation (or a component of one model)."""
        from modelatlas.zoo.optimise import train  # noqa: PLC0415

        module = self.module(None, architecture)
        acc = train(module, task, recipe, self.new_seed())
        return self.add(component, name, store(self.state_of(module), dtype), parents=[], relation=None,
                        pattern="root", architecture=architecture,
                        extra={"task": task.name, "recipe": recipe.describe(), "accuracy": acc, "dtype": dtype,
                               "init": "random", **(extra or {})})

    def _stable(self, parent: str, recipe, attempt: Callable) -> tuple[Any, Any, int]:
        """Run ``attempt(recipe) -> (state, result)`` until its weights are finite and within
        :data:`DIVERGED` of ``parent``, halving the learning rate each time (a person does not
        publish a run that blew up: they lower the rate and train again). Returns the recipe used,
        ``result`` and the number of halvings."""
        for halvings in range(RETRIES):
            state, result = attempt(recipe)
            finite = all(np.all(np.isfinite(v)) for v in state.values() if v.dtype.kind == "f")
            if finite and relative_change(state, self.states[parent]) <= DIVERGED:
                return recipe, result, halvings
            recipe = replace(recipe, lr=recipe.lr / 2)
        raise RuntimeError(f"training from {parent} diverged {RETRIES} times, down to lr {recipe.lr:g}")

    def finetune(self, parent: str, name: str, task, recipe, *, dtype: str, trainable: Sequence[str] | None = None,
                 fresh_head: bool = False, pattern: str = "finetune", sweep: str | None = None,
                 sweep_key: float = 0.0, extra: dict[str, Any] | None = None) -> str:
        """Fine-tune ``parent`` (all parameters, or the ``trainable`` prefixes: the rest stay bit-identical)."""
        from modelatlas.zoo.family_nets import init_head  # noqa: PLC0415
        from modelatlas.zoo.optimise import train  # noqa: PLC0415

        def attempt(r):
            module = self.module(parent)
            if fresh_head:
                init_head(module, self.new_seed())
            acc = train(module, task, r, self.new_seed(), trainable=trainable)
            state = self.state_of(module)
            return state, (state, acc)

        recipe, (state, acc), halvings = self._stable(parent, recipe, attempt)
        stored = store(state, dtype)
        info = {"task": task.name, "recipe": recipe.describe(), "accuracy": acc, "dtype": dtype,
                "head": "fresh" if fresh_head else "shared", "trainable": list(trainable) if trainable else "all",
                "movement": relative_change(decode(stored), self.states[parent]), **(extra or {})}
        if halvings:
            info["lr_halvings"] = halvings
        return self.add(self.models[parent].component, name, stored, parents=[parent], relation="finetune",
                        pattern=pattern, architecture=self.architecture(parent), extra=info, sweep=sweep,
                        sweep_key=sweep_key)

    def snake(self, parent: str, name: str, task, recipe, *, saves: Sequence[int], dtype: str) -> list[str]:
        """One run of ``parent`` saved at steps ``saves``: each checkpoint the child of the previous one."""
        from modelatlas.zoo.optimise import train  # noqa: PLC0415

        def attempt(r):
            module, states = self.module(parent), []
            train(module, task, r, self.new_seed(), checkpoints=saves,
                  on_checkpoint=lambda step: states.append((step, self.state_of(module))))
            return states[-1][1], states

        recipe, states, halvings = self._stable(parent, recipe, attempt)
        component, run_id, ids = self.models[parent].component, f"{self.models[parent].component}/{name}", []
        for index, (step, state) in enumerate(states):
            stored = store(state, dtype)
            previous = ids[-1] if ids else parent
            info = {"task": task.name, "recipe": recipe.describe(), "dtype": dtype, "run": run_id, "step": step,
                    "checkpoint_index": index, "movement": relative_change(decode(stored), self.states[previous])}
            if halvings:
                info["lr_halvings"] = halvings
            ids.append(self.add(component, f"{name}-step{step}", stored, parents=[previous], relation="finetune",
                                pattern="snake", architecture=self.architecture(parent), run=run_id, extra=info))
        return ids

    def lora(self, parent: str, name: str, task, recipe, *, targets: Sequence[str], rank: int, alpha: float,
             init: str = "kaiming", rslora: bool = False, base_quant: str | None = None, dtype: str = "fp32",
             extra: dict[str, Any] | None = None) -> str:
        """Train a LoRA adapter on ``targets`` of ``parent`` and publish the merged weights.

        ``init``: ``kaiming`` (PEFT's default: ``A`` Kaiming-uniform, ``B`` zero), ``gaussian``
        (``A ~ N(0, 1/r)``, ``B`` zero) or ``pissa`` (``A``, ``B`` from the top-``r`` SVD of the
        weight, the residual frozen: the merged difference has rank ≤ 2r). ``rslora`` scales by
        ``alpha / sqrt(r)`` instead of ``alpha / r``. ``base_quant`` (``int4-group``, ``int8-row``)
        trains against the parent quantised then de-quantised (QLoRA-like) and merges into that base,
        so every quantised tensor of the child carries the quantisation error.
        """
        import torch  # noqa: PLC0415

        from modelatlas.zoo.optimise import train  # noqa: PLC0415
        from modelatlas.zoo.train import LoRALinear, swap_submodule  # noqa: PLC0415

        if init not in LORA_INITS:
            raise ValueError(f"unknown LoRA initialisation {init!r}")
        if init == "pissa" and any(rank > min(self.states[parent][f"{t}.weight"].shape) for t in targets):
            raise ValueError(f"PiSSA needs rank {rank} ≤ the smallest dimension of every target")
        base_state = self.states[parent]
        if base_quant is not None:
            base_state = dequantize(quantize(base_state, base_quant))
        scaling = alpha / math.sqrt(rank) if rslora else alpha / rank

        def attempt(r):
            module = self.module(parent, state=base_state)
            gen = torch.Generator().manual_seed(self.new_seed())
            wrapped = {}
            for t in targets:
                w = LoRALinear(module.get_submodule(t), rank, alpha)
                w.scaling = scaling
                with torch.no_grad():
                    if init == "gaussian":
                        w.lora_A.normal_(0.0, 1.0 / rank, generator=gen)
                    elif init == "pissa":
                        u, s, vh = torch.linalg.svd(w.base.weight.double(), full_matrices=False)
                        root = s[:rank].sqrt() / math.sqrt(scaling)
                        w.lora_A.copy_((root[:, None] * vh[:rank]).float())
                        w.lora_B.copy_((u[:, :rank] * root[None, :]).float())
                        w.base.weight.sub_(scaling * (w.lora_B @ w.lora_A))
                wrapped[t] = w
                swap_submodule(module, t, w)
            factors = [p for w in wrapped.values() for p in (w.lora_A, w.lora_B)]
            acc = train(module, task, r, self.new_seed(), params=factors)
            merged, adapter = dict(base_state), {}
            for t, w in wrapped.items():
                a = w.lora_A.detach().numpy().astype(np.float64)
                b = w.lora_B.detach().numpy().astype(np.float64)
                residual = w.base.weight.detach().numpy().astype(np.float64)
                merged[f"{t}.weight"] = (residual + scaling * (b @ a)).astype(np.float32)
                adapter[f"base_model.model.{t}.lora_A.weight"] = a.astype(np.float32)
                adapter[f"base_model.model.{t}.lora_B.weight"] = b.astype(np.float32)
            return merged, (merged, adapter, acc)

        recipe, (merged, adapter, acc), halvings = self._stable(parent, recipe, attempt)
        component = self.models[parent].component
        adapter_path = self.weights_path(component, name, ".adapter")
        config = {"r": rank, "lora_alpha": alpha, "target_modules": list(targets), "init_lora_weights": init,
                  "use_rslora": rslora}
        save_safetensors(adapter, adapter_path, metadata={"lora_config": json.dumps(config)})
        stored = store(merged, dtype)
        info = {"task": task.name, "recipe": recipe.describe(), "accuracy": acc, "dtype": dtype, "lora_rank": rank,
                "lora_alpha": alpha, "lora_init": init, "lora_rslora": rslora, "lora_scaling": scaling,
                "lora_targets": list(targets),
                "lora_base_quant": base_quant, "adapter_path": adapter_path.relative_to(self.out).as_posix(),
                "movement": relative_change(decode(stored), self.states[parent]), **(extra or {})}
        if halvings:
            info["lr_halvings"] = halvings
        return self.add(component, name, stored, parents=[parent], relation="adapter", pattern="lora",
                        architecture=self.architecture(parent), extra=info)

    def quantize(self, parent: str, scheme: str) -> str:
        """A quantised leaf in :mod:`modelatlas.zoo.quantize`'s layouts (``int8-row``, ``int4-group``)."""
        p = self.models[parent]
        name = f"{p.id.split('/', 1)[1]}-{scheme}"
        packed = quantize(self.states[parent], scheme)
        path = self.weights_path(p.component, name)
        save_safetensors(packed, path)
        extra: dict[str, Any] = {"quant_scheme": scheme}
        if scheme == "int4-group":
            extra["quant_group"] = GROUP_SIZE
        return self.add(p.component, name, None, parents=[parent], relation="quantized", pattern="quantized",
                        architecture=p.architecture, extra=extra, decoded=dequantize(packed), path=path)

    def duplicate(self, parent: str, name: str | None = None) -> str:
        """A re-upload of ``parent``: the same bytes under another id."""
        p = self.models[parent]
        name = name or f"{p.id.split('/', 1)[1]}-reupload"
        path = self.weights_path(p.component, name)
        shutil.copyfile(p.path, path)
        return self.add(p.component, name, None, parents=[parent], relation="finetune", pattern="duplicate",
                        architecture=p.architecture, extra={"duplicate_of": parent},
                        decoded=self.states[parent], path=path)

    def merge(self, parents: Sequence[str], name: str, method: str, *, dtype: str, documented: bool,
              base: str | None = None, weights: Sequence[float] | None = None, t: float = 0.5,
              density: float = 0.5, lam: float = 1.0) -> str:
        """Merge models of one architecture by ``method`` (:data:`modelatlas.zoo.merge.METHODS`).

        ``base`` (task arithmetic, TIES, DARE) is the common ancestor the task vectors are taken
        from; it is recorded but is not a parent unless listed in ``parents``.
        """
        ps = [self.models[q] for q in parents]
        if len({q.architecture for q in ps}) != 1:
            raise ValueError(f"merge {name!r}: parents have different architectures")
        states = [self.states[q] for q in parents]
        weights = list(weights) if weights is not None else [1.0 / len(parents)] * len(parents)
        extra: dict[str, Any] = {"merge_method": method, "dtype": dtype}
        if method == "average":
            merged = merging.average(states, weights)
            extra["merge_weights"] = weights
        elif method == "slerp":
            merged = merging.slerp(states, t)
            extra["merge_t"] = t
        else:
            if base is None:
                raise ValueError(f"{method} needs the common base model")
            extra.update(merge_base=base, merge_weights=weights, merge_lambda=lam)
            if method == "task_arithmetic":
                merged = merging.task_arithmetic(self.states[base], states, weights, lam)
            elif method == "ties":
                merged = merging.ties(self.states[base], states, weights, density, lam)
                extra["merge_density"] = density
            elif method == "dare":
                drop_seed = self.new_seed()
                merged = merging.dare(self.states[base], states, weights, density, drop_seed, lam)
                extra.update(merge_density=density, merge_seed=drop_seed)
            else:
                raise ValueError(f"unknown merge method {method!r}")
        return self.add(ps[0].component, name, store(merged, dtype), parents=list(parents), relation="merge",
                        pattern="merge", architecture=ps[0].architecture, documented=documented, extra=extra)

    # ------------------------------------------------------------------ finish
    def finish(self, times: TimeModel) -> Zoo:
        """Give upload times under ``times`` and write ``manifest.json`` (models in a random order)
        and ``time-model.json`` (the time model drawn)."""
        when, flipped = assign_times(self.uploads, times, np.random.default_rng([self.seed, 77]))
        models = []
        for u in self.uploads:
            m = self.models[u.id]
            m.created_at = when[u.id]
            if u.id in flipped:
                m.extra["upload_noise"] = "child_first"
            models.append(m)
        # Listed in a random order: build order would hand charting the topological order
        # whenever times are unknown.
        order = np.random.default_rng([self.seed, 78]).permutation(len(models))
        zoo = Zoo(self.name, self.out, [models[int(i)] for i in order])
        write_manifest(zoo, omit_unknown_times=times.omit_unknown)
        (self.out / "time-model.json").write_text(json.dumps(times.describe(), indent=1) + "\n", encoding="utf-8")
        return zoo
