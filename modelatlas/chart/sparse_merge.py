"""Sparsified merges (TIES, DARE) recognised from their weights.

A sparsified merge of fine-tunes ``cᵢ`` of a base ``b`` is, coordinate by coordinate, a masked and
rescaled combination of the task vectors ``τᵢ = cᵢ − b``:

- DARE (Yu et al., "Language Models are Super Mario", ICML 2024, Sec. 3) keeps each entry of
  ``τᵢ`` with probability ``p`` and rescales it by ``1/p``, times the merge weight ``λ wᵢ``;
- TIES (Yadav et al., "TIES-Merging", NeurIPS 2023, Sec. 3) trims each ``τᵢ`` to its largest
  ``p`` share of magnitudes, elects a sign per coordinate and averages the agreeing entries, times
  ``λ``.

Two signatures follow, neither of which a fine-tune, a frozen-layer child or a quantised copy has:

1. **ratio spikes**: on the coordinates where only parent ``i`` survived, ``(x − b)/τᵢ`` is one
   constant ``sᵢ`` (``λ wᵢ / p`` for DARE, ``λ`` for TIES), up to the storage rounding of ``x``;
   a fine-tune's ratios are spread continuously. Each parent's spike lies on its own coordinates.
2. **drops**: where every parent's entry was dropped, ``x`` equals ``b`` exactly although a parent
   changed that coordinate by many units in the last place, in rows where other coordinates did
   change; a descendant of a parent never lands back on the base bit for bit, and a child of the
   base with frozen layers leaves whole rows at the base.

Both are tested as counts in the narrowest window the storage precision allows against the count
a smooth density puts there, estimated from neighbouring windows of the same width (a Poisson tail
probability, Bonferroni-corrected for the windows scanned), so no threshold is read off a zoo.
docs/chart.md (rule 7) describes the test; docs/BENCHMARKS.md measures it per storage dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import poisson

from modelatlas.chart.types import LayerBlock

#: Neighbouring windows (centres in units of the half-width; adjacent windows skipped so that a
#: spike's rounding tails do not count as background).
NEIGHBOURS = np.r_[-6:-1, 2:7] * 2.0
#: Significance level of each test (ratio spike per parent, drops), after correction.
ALPHA = 1e-6
#: A coordinate counts when the parent's change is at least this many half-units in the last
#: place of the model (well above the storage rounding).
ROUNDING_MARGIN = 2.0 ** 5


@dataclass(frozen=True)
class SparseMerge:
    """A recognised sparsified merge: parent positions (in the candidate list), the scale of each
    parent's spike, and the log tail probability of the weakest of the tests (the merge's margin)."""

    parents: tuple[int, ...]
    scales: tuple[float, ...]
    log_p: float


def half_ulp(x: np.ndarray, bits: int) -> np.ndarray:
    """Half a unit in the last place of each value stored with ``bits`` significant bits (the
    largest rounding error)."""
    ax = np.abs(x)
    e = np.floor(np.log2(np.where(ax > 0, ax, 1.0)))
    return np.where(ax > 0, 2.0 ** (e - bits), 2.0 ** -149)


def cell_ids(layers: list[LayerBlock], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Per fingerprint coordinate, a global row id and column id (``-1`` outside every layer)."""
    row = np.full(dim, -1, np.int64)
    col = np.full(dim, -1, np.int64)
    base = 0
    for bl in layers:
        r, c = np.divmod(np.arange(bl.size), bl.cols)
        row[bl.offset:bl.offset + bl.size] = base + r
        col[bl.offset:bl.offset + bl.size] = base + bl.rows + c
        base += bl.rows + bl.cols
    return row, col


def _excess(count: int, neighbours: np.ndarray, windows: float) -> float:
    """Log tail probability of ``count`` under a Poisson background estimated from the neighbouring
    windows' counts (add-one), Bonferroni-corrected for ``windows`` windows scanned."""
    m = (float(neighbours.sum()) + 1.0) / len(neighbours)
    return float(poisson.logsf(count - 1, m) + np.log(max(windows, 1.0)))


def ratio_spike(d: np.ndarray, tau: np.ndarray, h: np.ndarray, usable: np.ndarray, width: float,
                row: np.ndarray, col: np.ndarray) -> tuple[float, float, np.ndarray]:
    """The sharpest spike of ``log((x − b)/τ)`` over ``usable`` coordinates.

    Only coordinates whose rounding moves the log ratio by at most ``width`` count. The densest
    window of half-width ``width`` is compared with its neighbours; its count is the number of
    distinct rows or columns it touches, whichever is fewer, so that a rank-one relation between two
    low-rank updates (constant ratio along a row) is no spike.

    Parameters
    ----------
    d, tau:
        The model's and the candidate's differences from the base.
    h:
        Half a unit in the last place of each of the model's values (:func:`half_ulp`).
    usable:
        Coordinates that may count.
    width:
        Half-width of the windows, in log ratio.
    row, col:
        Row and column ids of each coordinate (:func:`cell_ids`).

    Returns
    -------
    (log tail probability, spike scale, coordinates in the spike)
    """
    ok = usable & (tau != 0) & (d != 0)
    idx = np.flatnonzero(ok)
    r = d[idx] / tau[idx]
    keep = (r > 0) & (h[idx] / np.abs(d[idx]) <= width)
    idx, u = idx[keep], np.log(r[keep])
    if len(u) < 8:
        return 0.0, float("nan"), idx[:0]
    order = np.sort(u)
    hi = np.searchsorted(order, order + 2 * width, side="right")
    i = int(np.argmax(hi - np.arange(len(order))))
    centre = float(np.median(order[i:hi[i]]))
    coords = idx[np.abs(u - centre) <= width]
    count = min(len(np.unique(row[coords])), len(np.unique(col[coords])))
    near = (np.searchsorted(order, centre + NEIGHBOURS * width + width)
            - np.searchsorted(order, centre + NEIGHBOURS * width - width))
    windows = (order[-1] - order[0]) / (2 * width) + 1
    return _excess(count, near, windows), float(np.exp(centre)), coords


def dropped_to_base(x: np.ndarray, b: np.ndarray, taus: list[np.ndarray], h: np.ndarray,
                    usable: np.ndarray) -> float:
    """Log tail probability of the coordinates where ``x`` equals ``b`` (within its rounding)
    although a parent moved them by more than :data:`ROUNDING_MARGIN` half-units, against the
    counts at 2–6 units in the last place away from ``b`` (windows of one unit each).

    Parameters
    ----------
    x, b:
        The model and the base.
    taus:
        The parents' differences from the base.
    h:
        Half a unit in the last place of each of the model's values (:func:`half_ulp`).
    usable:
        Coordinates that may count.
    """
    big = usable & (np.max(np.abs(np.stack(taus)), axis=0) > ROUNDING_MARGIN * h)
    off, hb = x[big] - b[big], h[big]
    at_base = int(np.sum(np.abs(off) <= hb))
    near = np.array([np.sum(np.abs(off - k * 2 * hb) <= hb) for k in (-6, -5, -4, -3, -2, 2, 3, 4, 5, 6)])
    return _excess(at_base, near, 1.0)


def sparse_merge(x: np.ndarray, base: np.ndarray, candidates: np.ndarray, layers: list[LayerBlock], *,
                 bits: int, max_parents: int = 3, alpha: float = ALPHA) -> SparseMerge | None:
    """Whether ``x`` is a TIES or DARE merge of some of ``candidates`` over ``base``.

    Parents are taken greedily: of the candidates whose ratio spike is significant at ``alpha``, the
    one whose spike holds the most coordinates, then the next one on the coordinates no earlier
    parent's spike explains (a later candidate whose spike lies on an earlier parent's coordinates
    — a child or sibling that inherited them — explains nothing new). Rows where ``x`` is bit identical to the
    base or to a candidate (frozen layers, layers an adapter left alone) do not count. A merge
    needs two parents or more and significant drops to the base.

    Parameters
    ----------
    x, base:
        Fingerprints of the model and of the common ancestor the task vectors are taken from.
    candidates:
        ``k x d`` fingerprints of the possible parents.
    layers:
        The fingerprint's layer blocks (rows and columns of each sampled layer).
    bits:
        Significant bits of ``x``'s storage dtype (the rounding that blurs the spikes).

    Returns
    -------
    The merge, or ``None``.

    References
    ----------
    Yadav et al., "TIES-Merging: Resolving Interference When Merging Models", NeurIPS 2023, Sec. 3;
    Yu et al., "Language Models are Super Mario: Absorbing Abilities from Homologous Models as a
    Free Lunch", ICML 2024, Sec. 3. docs/chart.md, rule 7.
    """
    x = np.asarray(x, np.float64)
    b = np.asarray(base, np.float64)
    row, col = cell_ids(layers, len(x))
    inside = row >= 0
    d, h = x - b, half_ulp(x, bits)
    width = min(2.0 ** (5 - bits), 2.0 ** -6)
    taus = [np.asarray(c, np.float64) - b for c in candidates]
    # rows bit-identical to the base or to a candidate were inherited (frozen layers, layers an
    # adapter left alone), not merged: they are no evidence either way
    inside &= _changed_rows(x, b, row)
    for c in candidates:
        inside &= _changed_rows(x, np.asarray(c, np.float64), row)
    # cheap pre-check, vectorised over every candidate: no drops, no sparsified merge
    if not len(taus) or dropped_to_base(x, b, taus, h, inside) > np.log(alpha):
        return None
    left = inside.copy()
    picked: list[int] = []
    scales: list[float] = []
    worst = -np.inf
    while len(picked) < max_parents:
        tests = [ratio_spike(d, t, h, left, width, row, col) if k not in picked else (0.0, 0.0, None)
                 for k, t in enumerate(taus)]
        significant = [k for k, t in enumerate(tests) if t[0] <= np.log(alpha)]
        if not significant:
            break
        # the parent explains the most coordinates: a child or a merge of a parent that kept some
        # of its entries shows a spike too, on a subset of them
        j = max(significant, key=lambda k: (len(tests[k][2]), -tests[k][0]))
        picked.append(j)
        scales.append(tests[j][1])
        worst = max(worst, tests[j][0])
        left[tests[j][2]] = False
    if len(picked) < 2:
        return None
    drops = dropped_to_base(x, b, [taus[j] for j in picked], h, inside)
    if drops > np.log(alpha):
        return None
    return SparseMerge(tuple(picked), tuple(scales), max(worst, drops))


def _changed_rows(x: np.ndarray, c: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Per coordinate, whether its row differs anywhere between ``x`` and ``c``."""
    diff = (x != c) & (row >= 0)
    changed = np.zeros(int(row.max()) + 2, bool)
    changed[row[diff] + 1] = True
    return changed[row + 1]
