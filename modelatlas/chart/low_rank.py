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

The difference also tells **which end is the descendant** when the two are stored at different
precisions (:attr:`AdapterEvidence.descendant`). A child ``C = P + B A`` of a coarser-stored
parent (fp16 ``P``, fp32 ``C``) differs from it by ``B A`` up to the rounding of the *finer* dtype:
the difference is an adapter update even under the finer noise floor. Were the coarse model the
child, ``C' = round(P' + B A)`` carries the coarse dtype's rounding noise on every entry of every
adapted layer — full rank under the finer floor — since ``P' + B A`` never lands on the coarse grid.
So an adapter at the finer floor proves that the finer end was rounded last, i.e. is the
descendant. The converse is no proof: a finer child made from its parent's unrounded weights (the
fp32 master of an fp16 release) also shows the coarse noise, and a small full fine-tune can look
low rank under a coarse floor only. Such pairs are left undecided.
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
    descendant:
        ``"model"`` or ``"candidate"``: the end proven to descend from the other, because the two
        are stored at different precisions and the difference is an adapter update even under the
        finer one's noise floor (module docstring); ``None``: no proof either way.
    """

    ranks: np.ndarray
    identical: np.ndarray
    adapter_rank: int
    n_low: int
    n_full: int
    descendant: str | None = None

    @property
    def is_adapter(self) -> bool:
        """At least one clearly low-rank layer, and at least twice as many layers consistent with
        the adapter as full-rank changes (:func:`_is_adapter`)."""
        return _is_adapter(self.adapter_rank, self.n_low, self.n_full)

    @property
    def total_rank(self) -> int:
        return int(self.ranks.sum())


def adapter_evidence(x: np.ndarray, candidates: np.ndarray, layers: list[LayerBlock],
                     model_bits: int | None = None, candidate_bits: np.ndarray | None = None) -> list[AdapterEvidence]:
    """:class:`AdapterEvidence` of model ``x`` against each candidate (fingerprints, one layout).

    Ranks are counted above the noise floor of the coarser of the two storage dtypes; where the two
    differ, the ranks are counted again under the finer one's floor (the same singular values) to
    tell which end descends from the other (module docstring).

    Parameters
    ----------
    model_bits, candidate_bits:
        Significant bits of the model's storage, and of each candidate's
        (:func:`significant_bits`); read off the fingerprints when absent.
    """
    x = np.asarray(x, np.float64)
    cands = np.atleast_2d(np.asarray(candidates, np.float64))
    k, n_layers = len(cands), len(layers)
    model_bits = significant_bits(x) if model_bits is None else int(model_bits)
    candidate_bits = (np.array([significant_bits(c) for c in cands]) if candidate_bits is None
                      else np.broadcast_to(np.asarray(candidate_bits, np.int64), (k,)))
    coarse = np.minimum(model_bits, candidate_bits)
    mixed = candidate_bits != model_bits
    fine = np.maximum(model_bits, candidate_bits)[mixed]
    ranks = np.zeros((k, n_layers), np.int64)
    ranks_fine = np.zeros((int(mixed.sum()), n_layers), np.int64)
    identical = np.zeros((k, n_layers), bool)
    for li, b in enumerate(layers):
        xm = x[b.offset:b.offset + b.size].reshape(b.rows, b.cols)
        cm = cands[:, b.offset:b.offset + b.size].reshape(k, b.rows, b.cols)
        diff = cm - xm[None]
        identical[:, li] = ~np.any(diff != 0, axis=(1, 2))
        sv = np.linalg.svd(diff, compute_uv=False)
        ranks[:, li] = difference_rank(sv, rounding_sigma(xm, cm, coarse), (b.rows, b.cols))
        if mixed.any():
            ranks_fine[:, li] = difference_rank(sv[mixed], rounding_sigma(xm, cm[mixed], fine), (b.rows, b.cols))
    full = np.array([min(b.rows, b.cols) for b in layers])
    finer_end = dict(zip(np.flatnonzero(mixed).tolist(), ranks_fine))
    out = []
    for a in range(k):
        r_star, n_low, n_full = _adapter_summary(ranks[a], full)
        descendant = None
        if a in finer_end and _is_adapter(*_adapter_summary(finer_end[a], full)):
            descendant = "candidate" if candidate_bits[a] > model_bits else "model"
        out.append(AdapterEvidence(ranks=ranks[a], identical=identical[a], adapter_rank=r_star,
                                   n_low=n_low, n_full=n_full, descendant=descendant))
    return out


def _adapter_summary(ranks: np.ndarray, full: np.ndarray) -> tuple[int, int, int]:
    """``r*`` (the largest rank among layers changed at most at half their full rank), the layers
    consistent with a rank-``r*`` adapter, and the changed layers that are not."""
    clearly_low = (ranks > 0) & (2 * ranks <= full) & (full > 1)
    r_star = int(ranks[clearly_low].max()) if clearly_low.any() else 0
    consistent = (ranks > 0) & ((ranks <= r_star) | (full <= r_star))
    return r_star, int(consistent.sum()), int(((ranks > 0) & ~consistent).sum())


def _is_adapter(r_star: int, n_low: int, n_full: int) -> bool:
    """At least one clearly low-rank layer, and at least twice as many layers consistent with the
    adapter as full-rank changes (an adapter run trains at most a few modules fully, such as a new
    head; the difference between two siblings, an adapter and a fine-tune, mixes both about evenly)."""
    return r_star > 0 and n_low >= max(2 * n_full, 1)
