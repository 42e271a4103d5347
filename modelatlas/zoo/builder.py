"""Build a zoo: train models pattern by pattern, write their weights, record the ground truth.

:class:`ZooBuilder` offers one method per pattern of the issue (root pre-training, full
fine-tuning, LoRA, quantisation, duplicate, snake, fan, merge). Each method trains or derives
the model for real, writes its safetensors file at once and records its manifest entry; the
recipes in :mod:`modelatlas.zoo.recipes` call them. :meth:`ZooBuilder.finish` gives every model
an upload time (parents before children, with rare noise and ties, as on the Hub) and writes
``manifest.json``.

Everything random flows from one ``numpy`` generator seeded by the zoo seed, and torch runs on
one thread, so a zoo is byte-for-byte reproducible from ``(recipe, seed)``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from modelatlas.zoo import merge as merging
from modelatlas.zoo.manifest import Zoo, ZooModel, write_manifest
from modelatlas.zoo.merge import State
from modelatlas.zoo.quantize import GROUP_SIZE, dequantize, quantize
from modelatlas.zoo.writer import ZooWriter


#: Mean delay (days) between a parent's upload and its child's, per pattern.
_MEAN_DELAY_DAYS = {"finetune": 30.0, "lora": 25.0, "quantized": 8.0, "duplicate": 60.0, "merge": 20.0,
                    "fan": 14.0}
#: Fraction of parent -> child edges whose upload times are wrong (a tie or the child first).
UPLOAD_NOISE = 0.003
_EPOCH = datetime(2022, 1, 1, tzinfo=timezone.utc)


def save_safetensors(tensors: State, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write safetensors with sorted names (any numpy dtype, ``ml_dtypes.bfloat16`` included);
    ``metadata`` must have at most one key, because the Rust writer orders metadata keys at random
    and a zoo must be byte-reproducible."""
    from safetensors.numpy import save_file  # noqa: PLC0415

    if metadata is not None and len(metadata) > 1:
        raise ValueError("safetensors metadata of a zoo file takes one key (reproducible bytes)")
    save_file({k: np.ascontiguousarray(v) for k, v in sorted(tensors.items())}, str(path), metadata=metadata)


@dataclass
class _Record:
    model: ZooModel
    group: str | None = None  # models uploaded together (a fan) share a group
    delay: float | None = None  # hours after the parent, when fixed by the pattern (snakes)


@dataclass
class ZooBuilder(ZooWriter):
    """Trains and writes the models of one zoo into ``out`` (parameters of :class:`ZooWriter`, and
    ``batch``, the training batch size)."""

    batch: int = 64
    records: list[_Record] = field(init=False, default_factory=list)
    _by_id: dict[str, _Record] = field(init=False, default_factory=dict)
    stream: ClassVar[int] = 2024

    # ----------------------------------------------------------------- helpers
    def _model(self, model_id: str) -> ZooModel:
        return self._by_id[model_id].model

    def _save(self, tensors: State, path: Path, metadata: dict[str, str] | None = None) -> None:
        save_safetensors(tensors, path, metadata)

    def _add(self, component: str, name: str, state: State | None, *, parents: Sequence[str], relation: str | None,
             pattern: str, architecture: str, extra: dict[str, Any], documented: bool = False,
             group: str | None = None, delay: float | None = None, path: Path | None = None) -> str:
        model_id = f"{component}/{name}"
        if model_id in self._by_id:
            raise ValueError(f"model {model_id!r} is built twice")
        if path is None:
            path = self.weights_path(component, name)
            self._save(state, path)
        if state is not None:
            self.states[model_id] = state
        model = ZooModel(id=model_id, path=path, created_at=_EPOCH, parents=list(parents), relation=relation,
                         documented_parents=documented, component=component, architecture=architecture,
                         pattern=pattern, extra=extra)
        self.records.append(_Record(model, group, delay))
        self._by_id[model_id] = self.records[-1]
        if self.on_model is not None:
            self.on_model(model_id)
        return model_id

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    # ---------------------------------------------------------------- patterns
    def root(self, component: str, architecture: str, task, *, steps: int, lr: float = 3e-3,
             name: str = "root") -> str:
        """Pre-train a model from random initialisation on a broad task (generalisation stage)."""
        from modelatlas.zoo.train import RunConfig, build, run, state_of  # noqa: PLC0415

        cfg = RunConfig(task, steps, lr, self.new_seed(), self.batch, weight_decay=0.01)
        module = build(architecture, seed=cfg.seed)
        acc = run(module, cfg)
        return self._add(component, name, state_of(module), parents=[], relation=None, pattern="root",
                         architecture=architecture, extra={**cfg.describe(), "init": "random", "accuracy": acc})

    def finetune(self, parent: str, name: str, task, *, steps: int, lr: float, pattern: str = "finetune",
                 group: str | None = None, extra: dict[str, Any] | None = None) -> str:
        """Fully fine-tune ``parent`` on a narrower task (specialisation stage)."""
        from modelatlas.zoo.train import RunConfig, build, run, state_of  # noqa: PLC0415

        p = self._model(parent)
        cfg = RunConfig(task, steps, lr, self.new_seed(), self.batch)
        module = build(p.architecture, self.states[parent])
        acc = run(module, cfg)
        return self._add(p.component, name, state_of(module), parents=[parent], relation="finetune",
                         pattern=pattern, architecture=p.architecture, group=group,
                         extra={**cfg.describe(), "accuracy": acc, **(extra or {})})

    def lora(self, parent: str, name: str, task, *, rank: int, steps: int, lr: float,
             alpha: float | None = None, targets: Sequence[str] | None = None,
             extra: dict[str, Any] | None = None) -> str:
        """LoRA fine-tune ``parent``; store the merged weights and the adapter file.

        The adapter file uses PEFT's tensor names (``<target>.lora_A.weight`` ``(r, in)``,
        ``<target>.lora_B.weight`` ``(out, r)``, prefixed ``base_model.model.``) and records ``r``,
        ``lora_alpha`` and ``target_modules`` as JSON under the metadata key ``lora_config``.
        """
        from modelatlas.zoo.nets import LORA_TARGETS  # noqa: PLC0415
        from modelatlas.zoo.train import RunConfig, build, lora_finetune, merge_lora  # noqa: PLC0415

        p = self._model(parent)
        alpha = float(alpha if alpha is not None else 2 * rank)
        targets = tuple(targets or LORA_TARGETS[p.architecture])
        cfg = RunConfig(task, steps, lr, self.new_seed(), self.batch)
        adapter, acc = lora_finetune(build(p.architecture, self.states[parent]), cfg, targets, rank, alpha)
        adapter_path = self.weights_path(p.component, name, ".adapter")
        config = {"r": rank, "lora_alpha": alpha, "target_modules": list(targets)}
        self._save({f"base_model.model.{k}": v for k, v in adapter.items()}, adapter_path,
                   metadata={"lora_config": json.dumps(config)})
        return self._add(p.component, name, merge_lora(self.states[parent], adapter, alpha), parents=[parent],
                         relation="adapter", pattern="lora", architecture=p.architecture,
                         extra={**cfg.describe(), "accuracy": acc, "lora_rank": rank, "lora_alpha": alpha,
                                "lora_targets": list(targets), "adapter_path": self._rel(adapter_path),
                                **(extra or {})})

    def quantize(self, parent: str, scheme: str, name: str | None = None) -> str:
        """A quantised leaf of ``parent``: quantised tensors (``path``) and their de-quantised floats."""
        p = self._model(parent)
        name = name or f"{p.id.split('/', 1)[1]}-{scheme}"
        packed = quantize(self.states[parent], scheme)
        floats = dequantize(packed)
        path = self.weights_path(p.component, name)
        self._save(packed, path)
        deq_path = self.weights_path(p.component, name, ".dequantized")
        self._save(floats, deq_path)
        extra = {"quant_scheme": scheme, "dequantized_path": self._rel(deq_path)}
        if scheme == "int4-group":
            extra["quant_group"] = GROUP_SIZE
        return self._add(p.component, name, floats, parents=[parent], relation="quantized", pattern="quantized",
                         architecture=p.architecture, extra=extra, path=path)

    def duplicate(self, parent: str, name: str | None = None) -> str:
        """A re-upload of ``parent``: the same bytes under another id."""
        p = self._model(parent)
        name = name or f"{p.id.split('/', 1)[1]}-reupload"
        path = self.weights_path(p.component, name)
        shutil.copyfile(p.path, path)
        return self._add(p.component, name, self.states[parent], parents=[parent], relation="finetune",
                         pattern="duplicate", architecture=p.architecture, extra={"duplicate_of": parent},
                         path=path)

    def snake(self, parent: str, name: str, task, *, checkpoints: int, every: int, lr: float) -> list[str]:
        """One fine-tuning run of ``parent`` saved every ``every`` steps: a chain of checkpoints."""
        from modelatlas.zoo.train import RunConfig, build, run, state_of  # noqa: PLC0415

        p = self._model(parent)
        cfg = RunConfig(task, checkpoints * every, lr, self.new_seed(), self.batch)
        module = build(p.architecture, self.states[parent])
        ids: list[str] = []

        def save(step: int) -> None:
            ids.append(self._add(p.component, f"{name}-step{step}", state_of(module),
                                 parents=[ids[-1] if ids else parent], relation="finetune", pattern="snake",
                                 architecture=p.architecture, delay=float(self.rng.uniform(2, 12)),
                                 extra={**cfg.describe(), "run": f"{p.component}/{name}", "step": step,
                                        "checkpoint_index": len(ids)}))

        run(module, cfg, checkpoints=[every * (i + 1) for i in range(checkpoints)], on_checkpoint=save)
        return ids

    def fan(self, parent: str, name: str, task, *, lrs: Sequence[float], seeds: int, steps: int) -> list[str]:
        """A hyper-parameter sweep: ``len(lrs) * seeds`` siblings of ``parent`` on one task."""
        sweep = f"{self._model(parent).component}/{name}"
        ids = []
        for lr in lrs:
            for s in range(seeds):
                ids.append(self.finetune(parent, f"{name}-lr{lr:g}-s{s}", task, steps=steps, lr=lr, pattern="fan",
                                         group=sweep, extra={"sweep": sweep, "sweep_params": {"lr": lr, "repeat": s}}))
        return ids

    def merge(self, parents: Sequence[str], name: str, method: str, *, weights: Sequence[float] | None = None,
              t: float = 0.5, base: str | None = None, density: float = 0.5, lam: float = 1.0) -> str:
        """Merge two or three models of one architecture (``average``, ``slerp`` or ``ties``).

        The parents are documented (``documented_parents: true``), as a merge's model card names them.
        """
        ps = [self._model(q) for q in parents]
        if len({q.architecture for q in ps}) != 1:
            raise ValueError(f"merge {name!r}: parents have different architectures")
        states = [self.states[q] for q in parents]
        extra: dict[str, Any] = {"merge_method": method}
        if method == "average":
            weights = list(weights or [1.0 / len(parents)] * len(parents))
            merged = merging.average(states, weights)
            extra["merge_weights"] = weights
        elif method == "slerp":
            merged = merging.slerp(states, t)
            extra["merge_t"] = t
        elif method == "ties":
            if base is None:
                raise ValueError("ties needs the common base model")
            weights = list(weights or [1.0] * len(parents))
            merged = merging.ties(self.states[base], states, weights, density, lam)
            extra.update(merge_weights=weights, merge_base=base, merge_density=density, merge_lambda=lam)
        else:
            raise ValueError(f"unknown merge method {method!r}")
        return self._add(ps[0].component, name, merged, parents=list(parents), relation="merge", pattern="merge",
                         architecture=ps[0].architecture, documented=True, extra=extra)

    def external(self, component: str, name: str, path: Path, *, parents: Sequence[str], relation: str | None,
                 pattern: str, architecture: str, extra: dict[str, Any], state: State | None = None) -> str:
        """Add a model whose weights file already exists (copied into the zoo, e.g. a real checkpoint)."""
        target = self.out / "models" / component / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        return self._add(component, name, state, parents=parents, relation=relation, pattern=pattern,
                         architecture=architecture, extra=extra, path=target)

    # ------------------------------------------------------------------ finish
    def _assign_times(self) -> None:
        """Upload times: roots spread over two years; each child a random delay after its latest
        parent; a fan's members uploaded in batches (identical times); then :data:`UPLOAD_NOISE`
        of the edges made wrong (half ties, half child first), on leaves so the noise stays local."""
        rng = np.random.default_rng([self.seed, 99])
        times: dict[str, datetime] = {}
        group_delay: dict[str, float] = {}
        for rec in self.records:
            m = rec.model
            if not m.parents:
                times[m.id] = _EPOCH + timedelta(days=float(rng.uniform(0, 700)), seconds=int(rng.integers(86400)))
                continue
            start = max(times[p] for p in m.parents)
            if rec.delay is not None:
                hours = rec.delay
            elif rec.group is not None:
                if rec.group not in group_delay:
                    group_delay[rec.group] = float(rng.exponential(_MEAN_DELAY_DAYS["fan"]) * 24 + 1)
                hours = group_delay[rec.group] + float(rng.integers(0, 3))  # batches an hour apart
            else:
                hours = float(rng.exponential(_MEAN_DELAY_DAYS[m.pattern]) * 24 + 1)
            times[m.id] = (start + timedelta(hours=hours)).replace(microsecond=0)
            if rec.group is None:
                times[m.id] += timedelta(seconds=int(rng.integers(3600)))
        edges = [(p, r.model.id) for r in self.records for p in r.model.parents]
        has_child = {p for p, _ in edges}
        leaf_edges = [(p, c) for p, c in edges if c not in has_child and len(self._model(c).parents) == 1]
        n_noisy = min(len(leaf_edges), int(round(UPLOAD_NOISE * len(edges))) or (1 if len(edges) >= 20 else 0))
        for k, i in enumerate(rng.choice(len(leaf_edges), n_noisy, replace=False)):
            parent, child = leaf_edges[int(i)]
            kind = "tie" if k % 2 == 0 else "child_first"
            early = 0 if kind == "tie" else int(rng.integers(3600, 72 * 3600))
            times[child] = times[parent] - timedelta(seconds=early)
            self._model(child).extra["upload_noise"] = kind
        for rec in self.records:
            rec.model.created_at = times[rec.model.id]

    def finish(self, extra_manifests: dict[str, Callable[[ZooModel], bool]] | None = None) -> Zoo:
        """Assign upload times and write ``manifest.json`` (plus ``manifest-<key>.json`` for each
        filter of ``extra_manifests``, holding the models it accepts); return the zoo."""
        self._assign_times()
        zoo = Zoo(self.name, self.out, [r.model for r in self.records])
        write_manifest(zoo)
        for key, keep in (extra_manifests or {}).items():
            part = Zoo(f"{self.name}-{key}", self.out, [m for m in zoo.models if keep(m)])
            write_manifest(part, f"manifest-{key}.json")
        return zoo
