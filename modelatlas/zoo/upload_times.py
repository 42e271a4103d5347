"""Upload-time models of the zoo families (docs/zoo.md, "Upload times of the families").

The original generator gives every child an exponential delay after its parent. Real uploads
follow other clocks too, and a charting rule on time gaps that holds under one inverts under
another (issue "Upload order varies"). A :class:`TimeModel` combines:

- ``style``: ``build-order`` (each model uploaded minutes to hours after the previously built
  one, so every parent precedes every child and gaps say little) or ``delays`` (roots spread over
  two years, each child a heavy-tailed delay after its latest parent);
- ``fans``: ``burst`` (a sweep's members uploaded minutes apart in random order), ``ladder``
  (days apart in increasing learning rate) or ``together`` (one upload, identical times);
- ``checkpoint_minutes``: the range (log-uniform) of the gap between successive checkpoints of a
  run, from minutes to days;
- ``child_first``: the share of models uploaded *before* their parent (re-uploads, mirrors);
- ``unknown``: the share of models whose time is unknown (``created_at`` null, or absent when
  ``omit_unknown``); 1 makes a zoo without times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class TimeModel:
    """How a family's models get upload times (see the module docstring)."""

    style: str = "delays"
    gap_minutes: tuple[float, float] = (2.0, 240.0)
    delay_days: float = 20.0
    fans: str = "burst"
    checkpoint_minutes: tuple[float, float] = (5.0, 7200.0)
    child_first: float = 0.0
    unknown: float = 0.0
    omit_unknown: bool = False

    def describe(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Upload:
    """What the time model needs to know of one model, in build order."""

    id: str
    parents: tuple[str, ...]
    sweep: str | None = None  # fan members share it
    sweep_key: float = 0.0  # order within a ladder (the learning rate)
    run: str | None = None  # checkpoints of one run share it


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def assign_times(uploads: Sequence[Upload], model: TimeModel,
                 rng: np.random.Generator) -> tuple[dict[str, datetime | None], set[str]]:
    """Upload times of ``uploads`` under ``model``.

    Returns
    -------
    times
        Model id -> UTC time to the second, or ``None`` when unknown.
    child_first
        Ids of the models placed before one of their parents on purpose.
    """
    members: dict[str, list[Upload]] = {}
    for u in uploads:
        if u.sweep is not None:
            members.setdefault(u.sweep, []).append(u)
    offsets: dict[str, float] = {}  # minutes after the sweep's first upload
    for group in members.values():
        if model.fans == "ladder":
            order = sorted(range(len(group)), key=lambda i: (group[i].sweep_key, i))
            step = rng.uniform(0.5, 3.0) * 1440
            offsets.update({group[i].id: rank * step for rank, i in enumerate(order)})
        elif model.fans == "burst":
            slots = np.cumsum(rng.uniform(1, 20, len(group)))
            offsets.update({u.id: float(s) for u, s in zip(group, rng.permutation(slots))})
        else:
            offsets.update({u.id: 0.0 for u in group})
    times: dict[str, datetime] = {}
    sweep_base: dict[str, datetime] = {}
    last_of_run: dict[str, datetime] = {}
    clock = EPOCH + timedelta(days=float(rng.uniform(0, 60)))
    flipped: set[str] = set()
    for u in uploads:
        if model.style == "build-order":
            clock += timedelta(minutes=_log_uniform(rng, *model.gap_minutes))
            natural = clock
        elif not u.parents:
            natural = EPOCH + timedelta(days=float(rng.uniform(0, 700)))
        else:
            delay = timedelta(days=float(rng.pareto(1.5) * model.delay_days / 2 + 0.01))
            natural = max(times[p] for p in u.parents) + delay
        if u.run is not None and u.run in last_of_run:
            natural = last_of_run[u.run] + timedelta(minutes=_log_uniform(rng, *model.checkpoint_minutes))
        elif u.sweep is not None:
            sweep_base.setdefault(u.sweep, natural)
            natural = sweep_base[u.sweep] + timedelta(minutes=offsets[u.id])
        if u.parents:
            natural = max(natural, max(times[p] for p in u.parents) + timedelta(minutes=1))
            if rng.random() < model.child_first:
                natural = min(times[p] for p in u.parents) - timedelta(hours=_log_uniform(rng, 1.0, 720.0))
                flipped.add(u.id)
        if u.run is not None:
            last_of_run[u.run] = natural
        times[u.id] = natural.replace(microsecond=0)
    unknown = {u.id for u in uploads if rng.random() < model.unknown}
    return {k: (None if k in unknown else t) for k, t in times.items()}, flipped - unknown
