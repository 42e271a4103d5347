"""Low-rank differences: is a model an adapter (LoRA) of a candidate parent?

A LoRA child differs from its parent by ``B A`` (rank ``r``) in every adapted layer, leaves the
other layers bit-identical, and may train a new head at full rank (docs/chart.md, "auto"). Two
things decide what "low rank" means, and neither is a constant read off a zoo:

* **The noise floor comes from the storage dtype.** Storing the child in bf16 rounds every weight
  to 8 significant bits, which turns a rank-2 difference into rank 18–39 under a fixed relative
  tolerance. The precision is read off the fingerprints themselves (are all values representable
  in bf16? in fp16?), and singular values below the spectral norm of the rounding noise
  (``σ (√rows + √cols)``, Marchenko–Pastur's edge, with ``σ`` the rounding error of the coarser
  model) are noise — provided together they hold no more energy than that noise can
  (:func:`difference_rank`).
* **Rank is judged against the adapter's own rank.** The adapter rank ``r*`` is read off the
  layers whose difference is clearly low-rank (at most half their full rank); a narrow layer whose
  full rank is at most ``r*`` (a rank-8 adapter on a 10-output head) is consistent with it, not
  evidence against.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from modelatlas.chart.types import LayerBlock

#: Significant bits of the storage formats recognised (implicit bit included).
_PRECISIONS = ((ml_dtypes.bfloat16, 8), (np.float16, 11))
_FP32_BITS = 24
#: Safety factor on the Marchenko–Pastur edge of the rounding noise.
NOISE_MARGIN = 4.0
#: Slack on the rounding noise's expected energy that the discarded singular values may hold.
TAIL_SLACK = 2.0


def significant_bits(values: np.ndarray) -> int:
    """Significant bits of the coarsest format that holds every value exactly (bf16, fp16 or fp32)."""
    v = np.asarray(values, np.float32)
    for dtype, bits in _PRECISIONS:
        with np.errstate(over="ignore", invalid="ignore"):
            if np.array_equal(v.astype(dtype).astype(np.float32), v):
                return bits
    return _FP32_BITS


def rounding_sigma(a: np.ndarray, b: np.ndarray, bits) -> np.ndarray:
    """Standard deviation of the rounding error in ``a - b`` when both are stored with ``bits``
    significant bits (uniform error of half a unit in the last place, twice).

    ``b`` may hold several matrices (``k x rows x cols``, with ``k`` values of ``bits``): one
    value per matrix.
    """
    b = np.asarray(b)
    mean_b = np.mean(b * b, axis=(-2, -1))
    rms = np.sqrt(0.5 * (np.mean(a * a) + mean_b))
    return rms * 2.0 ** (1 - np.asarray(bits, np.float64)) / np.sqrt(12.0) * np.sqrt(2.0)


def difference_rank(singular_values: np.ndarray, sigma, shape: tuple[int, int]) -> np.ndarray:
    """Rank of a difference above rounding noise of standard deviation ``sigma``.

    Singular values above ``NOISE_MARGIN · σ (√rows + √cols)`` (the noise's largest) count; and
    the ones below must hold no more than ``TAIL_SLACK`` times the noise's expected energy
    ``σ² · rows · cols`` — a fine-tune's slowly decaying spectrum crosses a coarse dtype's floor
    with far more energy below it, and is full rank, not an adapter. ``singular_values`` may be
    ``k x m`` (descending per row) with ``k`` values of ``sigma``: one rank per row.
    """
    sv = np.atleast_2d(singular_values)
    sigma = np.broadcast_to(np.asarray(sigma, np.float64), (len(sv),))
    rows, cols = shape
    floor = NOISE_MARGIN * sigma * (np.sqrt(rows) + np.sqrt(cols)) + 1e-30
    r = (sv > floor[:, None]).sum(axis=1)
    energy = np.concatenate([np.cumsum((sv * sv)[:, ::-1], axis=1)[:, ::-1], np.zeros((len(sv), 1))], axis=1)
    tail = energy[np.arange(len(sv)), r]  # the energy of the singular values from rank r on
    ok = tail <= TAIL_SLACK * sigma * sigma * rows * cols + 1e-60
    out = np.where(ok, r, sv.shape[1])
    return out if np.ndim(singular_values) == 2 else out[0]


@dataclass(frozen=True)
class AdapterEvidence:
    """How a candidate parent's difference from the model looks, layer by layer.

    Attributes
    ----------
    ranks:
        Rank of the difference per layer (0: the layer is unchanged up to rounding).
    identical:
        Layers whose sampled rows are bit-identical.
    adapter_rank:
        ``r*``: the largest rank among layers changed at most at half their full rank (0: none).
    n_low, n_full:
        Layers consistent with a rank-``r*`` adapter, and changed layers that are not.
    """

    ranks: np.ndarray
    identical: np.ndarray
    adapter_rank: int
    n_low: int
    n_full: int

    @property
    def is_adapter(self) -> bool:
        """At least one clearly low-rank layer, and at least twice as many layers consistent with
        the adapter as full-rank changes (an adapter run trains at most a few modules fully, such as
        a new head; the difference between two siblings, an adapter and a fine-tune, mixes both
        about evenly)."""
        return self.adapter_rank > 0 and self.n_low >= max(2 * self.n_full, 1)

    @property
    def total_rank(self) -> int:
        return int(self.ranks.sum())


def adapter_evidence(x: np.ndarray, candidates: np.ndarray, layers: list[LayerBlock],
                     bits: np.ndarray | None = None) -> list[AdapterEvidence]:
    """:class:`AdapterEvidence` of model ``x`` against each candidate (fingerprints, one layout).

    Parameters
    ----------
    bits:
        Per candidate, the significant bits of the coarser of the two models' storage
        (:func:`significant_bits`); read off the fingerprints when absent.
    """
    x = np.asarray(x, np.float64)
    cands = np.atleast_2d(np.asarray(candidates, np.float64))
    k, n_layers = len(cands), len(layers)
    if bits is None:
        bits_x = significant_bits(x)
        bits = [min(bits_x, significant_bits(c)) for c in cands]
    bits = np.asarray(bits)
    ranks = np.zeros((k, n_layers), np.int64)
    identical = np.zeros((k, n_layers), bool)
    for li, b in enumerate(layers):
        xm = x[b.offset:b.offset + b.size].reshape(b.rows, b.cols)
        cm = cands[:, b.offset:b.offset + b.size].reshape(k, b.rows, b.cols)
        diff = cm - xm[None]
        identical[:, li] = ~np.any(diff != 0, axis=(1, 2))
        sv = np.linalg.svd(diff, compute_uv=False)
        ranks[:, li] = difference_rank(sv, rounding_sigma(xm, cm, bits), (b.rows, b.cols))
    full = np.array([min(b.rows, b.cols) for b in layers])
    out = []
    for a in range(k):
        r = ranks[a]
        clearly_low = (r > 0) & (2 * r <= full) & (full > 1)
        r_star = int(r[clearly_low].max()) if clearly_low.any() else 0
        consistent = (r > 0) & ((r <= r_star) | (full <= r_star))
        out.append(AdapterEvidence(ranks=r, identical=identical[a], adapter_rank=r_star,
                                   n_low=int(consistent.sum()), n_full=int(((r > 0) & ~consistent).sum())))
    return out
