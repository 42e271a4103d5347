"""Synthetic fingerprinted model families with known lineage, for tests and scaling curves.

Each family starts from a heavy-tailed random root (Student-t weights, so that fine-tuning with
Gaussian updates lowers the kurtosis, MoTHer's specialisation stage) and grows by the eight
patterns of the zoo format: ``finetune`` (dense update), ``lora`` (rank-r update per layer),
``quantized`` (int8 round trip, a leaf), ``duplicate`` (exact copy, never fine-tuned further), ``snake`` (a chain of
checkpoints drifting in one direction, consecutive in time), ``fan`` (a sweep of siblings sharing
the update direction), and ``merge`` (a convex combination of two or three earlier models).
Times grow along every edge.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from modelatlas.chart.types import ChartInput, GroundTruth, LayerBlock

#: Default pattern mix of non-root models.
DEFAULT_MIX = {"finetune": 0.3, "lora": 0.15, "quantized": 0.1, "duplicate": 0.05,
               "snake": 0.15, "fan": 0.15, "merge": 0.1}


@dataclass
class SyntheticZoo:
    models: ChartInput
    truth: GroundTruth


def _hash(v: np.ndarray) -> str:
    return hashlib.blake2b(v.tobytes(), digest_size=12).hexdigest()


def synthetic_zoo(n_models: int = 200, *, n_components: int = 4, layers: int = 3, rows: int = 16,
                  cols: int = 16, mix: dict[str, float] | None = None, seed: int = 0,
                  step: float = 0.05, documented_merges: float = 0.5, group: str = "synthetic",
                  ) -> SyntheticZoo:
    """A synthetic zoo of ``n_models`` fingerprints in ``n_components`` families.

    Parameters
    ----------
    n_models:
        Total number of models (roots included).
    n_components:
        Number of families (each has one root).
    layers, rows, cols:
        Fingerprint layout: ``layers`` blocks of ``rows`` sampled neurons of width ``cols``.
    mix:
        Probability of each non-root pattern (see :data:`DEFAULT_MIX`).
    step:
        Size of one fine-tuning update relative to the weight scale.
    documented_merges:
        Share of merges whose parents are documented (Algorithm 1's known ``P``).
    """
    rng = np.random.default_rng(seed)
    mix = dict(DEFAULT_MIX if mix is None else mix)
    names = list(mix)
    probs = np.array([mix[k] for k in names], float)
    probs /= probs.sum()
    d = layers * rows * cols
    vecs: list[np.ndarray] = []
    times: list[float] = []
    parents: list[tuple[int, ...]] = []
    relation: list[str | None] = []
    pattern: list[str] = []
    comp: list[int] = []
    quant: list[bool] = []
    documented: dict[int, tuple[int, ...]] = {}
    members: list[list[int]] = [[] for _ in range(n_components)]
    hour = 3600.0

    def add(v, t, ps, rel, pat, c, q=False):  # q: never a parent (quantised copies, duplicates)
        vecs.append(v.astype(np.float32))
        times.append(t)
        parents.append(tuple(ps))
        relation.append(rel)
        pattern.append(pat)
        comp.append(c)
        quant.append(q)
        members[c].append(len(vecs) - 1)
        return len(vecs) - 1

    def dense_update(scale):
        return rng.normal(0.0, scale, d)

    def specialise(v):  # fine-tuning trims outliers a little: kurtosis falls (MoTHer, Sec. 4.2)
        tau = 2.5 * v.std()
        return v - 0.05 * (v - np.clip(v, -tau, tau))

    def lowrank_update(rank, scale):
        parts = []
        for _ in range(layers):
            a = rng.normal(0, 1, (rows, rank))
            b = rng.normal(0, 1, (rank, cols))
            parts.append((a @ b).ravel() * scale / np.sqrt(rank))
        return np.concatenate(parts)

    for c in range(n_components):
        root = rng.standard_t(5, d) * 0.5
        add(root, rng.uniform(0, 50) * hour, (), None, "root", c)
    while len(vecs) < n_models:
        c = int(rng.integers(n_components))
        pool = [i for i in members[c] if not quant[i]]
        p = int(rng.choice(pool))
        pat = names[int(rng.choice(len(names), p=probs))]
        t0 = times[p] + rng.exponential(24) * hour + hour
        scale = step * (0.7 + 0.6 * rng.random())
        if pat == "finetune":
            add(specialise(vecs[p]) + dense_update(scale), t0, (p,), "finetune", pat, c)
        elif pat == "lora":
            add(vecs[p] + lowrank_update(int(rng.choice([1, 2, 4])), scale * 2), t0, (p,), "adapter", pat, c)
        elif pat == "quantized":
            v = vecs[p].astype(np.float64)
            q = np.abs(v).max() / 127.0
            add(np.round(v / q) * q, t0, (p,), "quantized", pat, c, q=True)
        elif pat == "duplicate":
            add(vecs[p].copy(), t0, (p,), "finetune", pat, c, q=True)
        elif pat == "snake":
            drift = dense_update(scale)
            prev, t = p, t0
            for _ in range(int(rng.integers(3, 7))):
                if len(vecs) >= n_models:
                    break
                prev = add(specialise(vecs[prev]) + drift + dense_update(scale * 0.3), t, (prev,),
                           "finetune", pat, c)
                t += rng.uniform(0.5, 2) * hour
        elif pat == "fan":
            shared = dense_update(scale)
            for _ in range(int(rng.integers(3, 7))):
                if len(vecs) >= n_models:
                    break
                add(specialise(vecs[p]) + shared + dense_update(scale * 0.6), t0 + rng.uniform(0, 48) * hour,
                    (p,), "finetune", pat, c)
        elif pat == "merge":
            if len(pool) < 2:
                continue
            k = int(min(len(pool), rng.choice([2, 3])))
            ps = tuple(int(x) for x in rng.choice(pool, size=k, replace=False))
            w = rng.dirichlet(np.full(k, 4.0))
            v = sum(wi * vecs[pi].astype(np.float64) for wi, pi in zip(w, ps))
            t = max(times[pi] for pi in ps) + rng.exponential(24) * hour + hour
            i = add(v, t, ps, "merge", pat, c)
            if rng.random() < documented_merges:
                documented[i] = ps
    vectors = np.stack(vecs)
    blocks = [LayerBlock(f"layer{i}", i * rows * cols, rows, cols) for i in range(layers)]
    models = ChartInput(
        ids=[f"c{comp[i]}/m{i}" for i in range(len(vecs))],
        vectors=vectors, layers=blocks, created_at=np.array(times),
        quantized=np.array([q and pat != "duplicate" for q, pat in zip(quant, pattern)]),
        content_hashes=[_hash(v) for v in vectors], documented_parents=documented,
        groups=np.full(len(vecs), group, dtype=object),
    )
    truth = GroundTruth(parents=list(parents), relation=relation, pattern=pattern, component=np.array(comp))
    return SyntheticZoo(models, truth)
