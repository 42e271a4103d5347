"""A synthetic Hugging Face–like model ecosystem: the embedded default data set.

:func:`synthesize` writes a *hub-stats*-style Parquet file (the columns of the public
``models.parquet`` snapshot: ``id, author, createdAt, downloads, tags, cardData, config,
siblings, safetensors, gguf, ...``, plus a ``card`` column with the README text) whose statistics
follow what the papers report, and a ground-truth sidecar ``<out>.truth.parquet``.

Every number is a field of :class:`SynthParams` or :class:`Domain`, each documented with the
paper figure or section it comes from; ``docs/synthetic-hub.md`` lists them all. The generator is
vectorised numpy: 2,000,000 models take seconds, not minutes, and strings are built with
``pyarrow.compute`` chunk by chunk so memory stays modest.

How a hub is generated (:func:`generate`):

1. **Families.** A share ``parent_share`` of models declare a parent (Model Atlas §3.2: "fewer than
   30% of models specify their parent model"). They are split into families whose sizes follow a
   truncated Zipf law (heavy-tailed; Anatomy §2, Fig. 1; Model Atlas Fig. 5: "the LLM connected
   component ... includes almost a third of all models"), one root each; the remaining models are
   isolated roots. Each family has one *domain* (LLM, other NLP, discriminative vision, generative
   vision, audio, vision-language).
2. **Depth.** Each child draws a generation from its domain's depth law (Model Atlas App. A,
   Fig. 9: > 96% of CV models at depth 1, ~55% of NLP, > 5% of NLP at depth >= 5); the draws are
   dense-ranked inside the family so every level below the deepest is populated.
3. **Parents.** A child at level ``l`` picks its parent among its family's level ``l - 1`` with a
   skew toward early members (preferential attachment: heavy-tailed out-degrees). Merges (Model
   Atlas §3.2) add one or two more parents from shallower levels of the same family.
4. **Relations** are assigned once out-degrees are known: quantized models are leaves except at
   ``quantized_nonleaf_rate`` (Model Atlas App. B, Fig. 13: 99.41% of quantized models are leaves);
   the relation mix is the domain's (Model Atlas §3.2, Fig. 5).
5. **Time and traits** flow level by level from parent to child: creation times increase along
   edges except at ``time_inversion_rate`` (Model Atlas App. B, Fig. 14: 99.73%); licences drift
   from restrictive to permissive, languages from multilingual to English, cards get shorter and
   more often auto-generated (Anatomy §4).
6. **Hub artefacts.** Roots older than 2022-03-02 get the Hub's back-filled ``createdAt``
   (Anatomy §2.2, footnote 3); a share of family roots is deleted (Model Atlas App. A, "Restoring
   removed models": 1,612 of 33,870 sources), so their children reference absent ids; a few
   self-references, two-cycles and malformed ``base_model`` tags exercise ingestion's rules.

References
----------
Horwitz et al., "Charting and Navigating Hugging Face's Model Atlas", 2025 (``model-atlas.txt``).
Laufer et al., "Anatomy of a Machine Learning Ecosystem: 2 Million Models on Hugging Face", 2025
(``anatomy-of-an-ml-ecosystem.txt``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from modelatlas.ingest.normalize import MODALITY

RELATIONS = ("finetune", "adapter", "quantized", "merge")
FINETUNE, ADAPTER, QUANTIZED, MERGE, ROOT = 0, 1, 2, 3, -1

#: Licences from restrictive / commercial to permissive / copyleft (Anatomy §4.1, Fig. 8: the
#: optimal ordering puts llama / gemma / openrail licences upstream of apache-2.0 and mit).
RESTRICTIVE_LICENSES = ("llama2", "llama3", "llama3.1", "gemma", "openrail", "creativeml-openrail-m",
                        "cc-by-nc-4.0", "other")
PERMISSIVE_LICENSES = ("apache-2.0", "mit", "cc-by-4.0", "bsd-3-clause", "openrail++", "gpl-3.0",
                       "cc-by-sa-4.0", "agpl-3.0")
LICENSES = RESTRICTIVE_LICENSES + PERMISSIVE_LICENSES

#: Language codes; bit ``i`` of a model's language mask is ``LANGUAGES[i]``. English first
#: (Anatomy §2.2: over 75% of models that name a language name English; Chinese second).
LANGUAGES = ("en", "zh", "fr", "de", "es", "ru", "ja", "ko", "ar", "hi", "pt", "it", "vi", "tr")

BACKFILL_DAY = "2022-03-02"
_US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class Domain:
    """One kind of model family. Shares of children are over models that have a parent.

    Attributes
    ----------
    name:
        Domain (its modality is the ingest's, :attr:`modality`).
    pipeline_tags, library, model_type, architecture:
        Hub metadata of the family (``config`` is omitted where ``model_type`` is None, as for
        diffusers pipelines).
    family_weight, isolated_weight:
        Relative frequency among family roots and among isolated models (Anatomy §2.2, Fig. 2:
        text tasks, especially text-generation, are the most common).
    zipf_a:
        Exponent of the family-size law; smaller is heavier-tailed (LLM and diffusion families
        are the giants of Model Atlas Fig. 5).
    depth1, depth_continue:
        A child is at generation 1 with probability ``depth1``, else at ``2 + G`` where ``G`` is
        geometric with continuation probability ``depth_continue`` (Model Atlas Fig. 9).
    adapter, quantized, merge:
        Shares of the domain's children with that relation; the rest are fine-tunes (Model
        Atlas §3.2 and Fig. 5).
    log10_params:
        Range of the family's parameter count (log10).
    datasets:
        Dataset ids the domain's cards name.
    multilingual_root:
        Probability that a family root supports several languages (Anatomy §4.2).
    """

    name: str
    pipeline_tags: tuple[str, ...]
    library: str
    model_type: str | None
    architecture: str | None
    family_weight: float
    isolated_weight: float
    zipf_a: float
    depth1: float
    depth_continue: float
    adapter: float
    quantized: float
    merge: float
    log10_params: tuple[float, float]
    datasets: tuple[str, ...]
    multilingual_root: float

    @property
    def modality(self) -> str:
        """The modality the ingest gives the domain's first task (the one task map,
        :data:`modelatlas.ingest.normalize.MODALITY`)."""
        return MODALITY[self.pipeline_tags[0]]


#: Domains. Relation mixes: Model Atlas §3.2 ("Most generative models rely on parameter-efficient
#: adapters ... discriminative models almost exclusively use full fine-tuning"; quantization "rare in
#: CV models (fewer than 0.15%)", "commonplace in LLMs, constituting a large proportion of models",
#: VLMs "a balance between these extremes"; merging "about 35 times more common in NLP than in CV";
#: "audio models rarely use adapters").
DOMAINS: tuple[Domain, ...] = (
    Domain("llm", ("text-generation",), "transformers", "llama", "LlamaForCausalLM",
           0.30, 0.22, 1.75, 0.47, 0.76, 0.17, 0.33, 0.050, (8.5, 10.8),
           ("HuggingFaceH4/ultrachat_200k", "tatsu-lab/alpaca", "Open-Orca/OpenOrca"), 0.55),
    Domain("nlp", ("text-classification", "token-classification", "feature-extraction",
                          "sentence-similarity", "fill-mask", "translation", "summarization"),
           "transformers", "bert", "BertForSequenceClassification",
           0.30, 0.36, 2.2, 0.80, 0.55, 0.06, 0.03, 0.006, (7.0, 9.0),
           ("imdb", "glue", "squad", "conll2003"), 0.45),
    Domain("cv_disc", ("image-classification", "object-detection", "image-segmentation"),
           "transformers", "vit", "ViTForImageClassification",
           0.12, 0.16, 1.85, 0.985, 0.30, 0.04, 0.0008, 0.0015, (6.5, 8.8),
           ("imagefolder", "imagenet-1k", "cifar10"), 0.0),
    Domain("cv_gen", ("text-to-image", "image-to-image"), "diffusers", None, None,
           0.13, 0.10, 1.8, 0.975, 0.30, 0.80, 0.0015, 0.0015, (8.9, 10.1),
           ("imagefolder", "laion/laion2B-en"), 0.0),
    Domain("audio", ("automatic-speech-recognition", "audio-classification", "text-to-speech"),
           "transformers", "whisper", "WhisperForConditionalGeneration",
           0.08, 0.10, 2.2, 0.85, 0.40, 0.02, 0.01, 0.002, (7.5, 9.2),
           ("mozilla-foundation/common_voice_11_0", "librispeech_asr"), 0.6),
    Domain("vlm", ("image-text-to-text",), "transformers", "llava",
           "LlavaForConditionalGeneration",
           0.07, 0.06, 2.0, 0.70, 0.55, 0.20, 0.15, 0.010, (9.0, 10.5),
           ("liuhaotian/LLaVA-Instruct-150K",), 0.5),
)

@dataclass(frozen=True)
class SynthParams:
    """Parameters of the synthetic hub, each with its source (see ``docs/synthetic-hub.md``).

    Attributes
    ----------
    parent_share:
        Share of models declaring a parent. Model Atlas §3.2: "fewer than 30% of models specify
        their parent model".
    max_family_share:
        Cap on one family's size as a share of all children (Model Atlas Fig. 5: the LLM
        component holds "almost a third" of a 63k-model pool).
    parent_skew:
        A child picks the member at relative position ``u ** parent_skew`` of its parent level:
        preferential attachment, heavy-tailed out-degrees (Anatomy §2.2: FLUX.1-dev has the most
        children, thousands).
    merge_extra_two:
        Share of merges with three parents rather than two.
    quantized_nonleaf_rate:
        Share of quantized models that have children. Model Atlas App. B, Fig. 13: 99.41% are leaves.
    time_inversion_rate:
        Share of edges whose child is older than its parent. Model Atlas App. B, Fig. 14: 99.73% of
        400k pairs have the parent older.
    card_share:
        Share of models with a card. Model Atlas §4.1: "over 60% of models on HF lack any model
        card"; Anatomy §2.2.1 counts 67% with a card in 2025 (we follow the Model Atlas figure).
    card_median_chars, card_sigma, card_max_chars:
        Log-normal card length (Anatomy §2.2.1: median 2,073 characters, mean 3,576; sigma from
        mean / median = exp(sigma² / 2)), truncated at ``card_max_chars`` (the real maximum,
        18 million characters, would dominate the file without changing any statistic we check).
    card_shrink_per_level:
        Factor on the human-written card length per generation (Anatomy §4.3: documentation gets
        leaner down the tree).
    autogen_base, autogen_per_level, autogen_max:
        Probability of an auto-generated (Trainer template) card: ``base + per_level * depth``
        capped (Anatomy §4.3).
    license_given_card:
        Probability that a card states a licence (Model Atlas Fig. 6 reports licences as sparse;
        Anatomy Fig. 2 counts them over documented models).
    license_mutation, license_to_permissive:
        Per edge, the licence changes with probability ``license_mutation``; a change goes to a
        permissive / copyleft licence with probability ``license_to_permissive`` (Anatomy §4.1:
        licences drift from restrictive to permissive).
    english_only_per_edge:
        Per edge, a multilingual parent's child keeps only English (Anatomy §4.2).
    language_given_card:
        Probability that a card lists its languages.
    start, snapshot:
        Time window. Roots are created ``snapshot - Exp(root_age_years)`` (the Hub grows
        exponentially: Model Atlas §3.2, "more than 100,000 added each month").
    child_gap_beta:
        A child is created at ``t_parent + (snapshot - t_parent) * Beta(1, child_gap_beta)``.
    deleted_root_rate:
        Share of family roots missing from the file. Model Atlas App. A: 1,612 of 33,870 source
        models deleted.
    self_reference_rate, two_cycle_rate, odd_tag_rate:
        Noise that ingestion must handle (issue 2, "Bad input"): a model naming itself, pairs of
        isolated models naming each other, and malformed ``base_model`` tags (empty id or an
        unknown relation word), each per model.
    card_relation_share:
        Share of children whose card also states ``base_model_relation``.
    downloads_zero_share, downloads_sigma:
        Heavy-tailed downloads: zero with this probability, else log-normal with this sigma
        (Model Atlas App. A: for 50% of non-leaf models descendants' downloads exceed their own).
    """

    parent_share: float = 0.28
    max_family_share: float = 0.12
    parent_skew: float = 3.0
    merge_extra_two: float = 0.25
    quantized_nonleaf_rate: float = 0.004
    time_inversion_rate: float = 0.0027
    card_share: float = 0.40
    card_median_chars: float = 2073.0
    card_max_chars: int = 100_000
    card_sigma: float = 1.04
    card_shrink_per_level: float = 0.8
    autogen_base: float = 0.10
    autogen_per_level: float = 0.15
    autogen_max: float = 0.85
    license_given_card: float = 0.55
    license_mutation: float = 0.15
    license_to_permissive: float = 0.85
    english_only_per_edge: float = 0.30
    language_given_card: float = 0.6
    start: str = "2019-01-01"
    snapshot: str = "2025-03-01"
    root_age_years: float = 1.0
    child_gap_beta: float = 8.0
    deleted_root_rate: float = 0.048
    self_reference_rate: float = 1e-4
    two_cycle_rate: float = 1e-4
    odd_tag_rate: float = 1e-4
    card_relation_share: float = 0.2
    downloads_zero_share: float = 0.35
    downloads_sigma: float = 2.2
    domains: tuple[Domain, ...] = field(default=DOMAINS)


@dataclass
class SyntheticHub:
    """The generated ecosystem as numpy arrays (node ``i`` everywhere; edges as index pairs).

    ``deleted`` models are in the ground truth but not in the hub file. ``noise`` is an integer
    code per model: 0 none, 1 self-reference, 2 two-cycle, 3 malformed tag.
    """

    n: int
    seed: int
    params: SynthParams
    family: np.ndarray       # family index, -1 for isolated models
    domain: np.ndarray       # index into params.domains
    depth: np.ndarray        # generation (0 for roots)
    relation: np.ndarray     # FINETUNE.. MERGE, ROOT for roots
    edge_parent: np.ndarray
    edge_child: np.ndarray
    created_us: np.ndarray   # true creation time, microseconds since the epoch
    modified_us: np.ndarray
    downloads: np.ndarray
    downloads_all_time: np.ndarray
    likes: np.ndarray
    trending: np.ndarray
    license: np.ndarray      # index into LICENSES
    languages: np.ndarray    # bit mask over LANGUAGES
    card: np.ndarray         # has a card
    card_length: np.ndarray  # target length of the card text
    autogen: np.ndarray      # auto-generated card
    license_stated: np.ndarray
    languages_stated: np.ndarray
    dataset: np.ndarray      # index into the domain's datasets, -1 none
    arxiv: np.ndarray        # arXiv paper number, -1 none
    params_count: np.ndarray
    pipeline: np.ndarray     # index into the domain's pipeline tags
    quant_format: np.ndarray  # 0 none, 1 gguf, 2 gptq
    deleted: np.ndarray
    noise: np.ndarray
    author: np.ndarray       # author index
    cycle_partner: np.ndarray  # the other model of a two-cycle, -1 none


# ---------------------------------------------------------------------------------- generation

def _time_us(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1_000_000)


def _family_sizes(rng: np.random.Generator, n_children: int, n_max_families: int,
                  domain_p: np.ndarray, params: SynthParams) -> tuple[np.ndarray, np.ndarray]:
    """Domains and child counts of the families, summing to ``n_children``."""
    if n_children == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cap = max(2, int(params.max_family_share * n_children))
    k = min(n_children, n_max_families)
    doms = rng.choice(len(params.domains), size=k, p=domain_p)
    a = np.array([d.zipf_a for d in params.domains])[doms]
    # Truncated Zipf by inversion of the continuous Pareto tail: P(S >= s) ~ s^(1 - a).
    u = rng.random(k)
    sizes = np.minimum(np.floor(u ** (-1.0 / (a - 1.0))), cap).astype(np.int64)
    total = np.cumsum(sizes)
    f = int(np.searchsorted(total, n_children)) + 1
    if f > k:  # not enough families (tiny hubs): pad the last one
        f = k
        sizes[-1] += n_children - total[-1]
    sizes = sizes[:f].copy()
    sizes[-1] -= int(sizes.sum()) - n_children
    return doms[:f], sizes


def generate(n: int, seed: int = 0, params: SynthParams | None = None) -> SyntheticHub:
    """Generate a synthetic hub of ``n`` models (see the module docstring for the steps).

    Parameters
    ----------
    n:
        Number of models in the hub file (deleted roots come on top, in the ground truth only).
    seed:
        Seed of :func:`numpy.random.default_rng`; the result is a function of ``(n, seed, params)``.
    params:
        Parameters; :class:`SynthParams` defaults follow the papers.

    Returns
    -------
    SyntheticHub
    """
    if n < 1:
        raise ValueError("a synthetic hub needs at least one model")
    p = params or SynthParams()
    rng = np.random.default_rng(seed)
    doms = p.domains
    nd = len(doms)
    fam_w = np.array([d.family_weight for d in doms]); fam_w /= fam_w.sum()
    iso_w = np.array([d.isolated_weight for d in doms]); iso_w /= iso_w.sum()

    # 1. Families: roots, children per family; isolated models fill up to n.
    n_children = int(round(p.parent_share * n))
    fam_dom, fam_size = _family_sizes(rng, n_children, max(1, n - n_children), fam_w, p)
    n_fam = fam_dom.size
    n_deleted = int(round(p.deleted_root_rate * n_fam))
    # At most n - n_children families (see _family_sizes), so this is never negative.
    n_iso = n - n_children - (n_fam - n_deleted)
    total = n_fam + n_children + n_iso
    # Layout: [family roots | children | isolated]; shuffled at the end.
    roots = np.arange(n_fam)
    child_fam = np.repeat(np.arange(n_fam), fam_size)
    family = np.concatenate([roots, child_fam, np.full(n_iso, -1)])
    domain = np.concatenate([fam_dom, fam_dom[child_fam], rng.choice(nd, size=n_iso, p=iso_w)])

    # 2. Depth: draw per child, dense-rank inside the family.
    d1 = np.array([d.depth1 for d in doms])[domain[n_fam:n_fam + n_children]]
    cont = np.array([d.depth_continue for d in doms])[domain[n_fam:n_fam + n_children]]
    drawn = np.where(rng.random(n_children) < d1, 1, 1 + rng.geometric(1.0 - cont))
    order = np.lexsort((drawn, child_fam))  # child_fam is already sorted; keeps it stable
    d_sorted, f_sorted = drawn[order], child_fam[order]
    new_level = np.ones(n_children, dtype=bool)
    new_level[1:] = (d_sorted[1:] != d_sorted[:-1]) | (f_sorted[1:] != f_sorted[:-1])
    new_fam = np.ones(n_children, dtype=bool)
    new_fam[1:] = f_sorted[1:] != f_sorted[:-1]
    rank = np.cumsum(new_level)
    fam_base = np.maximum.accumulate(np.where(new_fam, rank - 1, 0))
    level_sorted = rank - fam_base
    child_idx = n_fam + order  # children in (family, level) order
    depth = np.zeros(total, dtype=np.int64)
    depth[child_idx] = level_sorted

    # 3. Parents. Members sorted by (family, level): roots first in each family.
    members = np.concatenate([roots, child_idx])
    mem_fam = np.concatenate([roots, f_sorted])
    mem_lvl = np.concatenate([np.zeros(n_fam, np.int64), level_sorted])
    morder = np.lexsort((mem_lvl, mem_fam))
    members, mem_fam, mem_lvl = members[morder], mem_fam[morder], mem_lvl[morder]
    max_lvl = int(mem_lvl.max(initial=0)) + 1
    key = mem_fam * max_lvl + mem_lvl
    ckey = f_sorted * max_lvl + level_sorted - 1
    start = np.searchsorted(key, ckey, side="left")
    count = np.searchsorted(key, ckey, side="right") - start
    pos = start + np.minimum((count * rng.random(n_children) ** p.parent_skew).astype(np.int64), count - 1)
    primary = members[pos]

    # Merges: extra parents from shallower levels of the same family (shared with a fine-tune
    # ancestor, as in LLM merges of two fine-tunes of one base).
    merge_p = np.array([d.merge for d in doms])[domain[child_idx]]
    fam_start = np.searchsorted(key, f_sorted * max_lvl, side="left")
    shallower = start + count - fam_start  # members at levels < own level
    # Merges need a second candidate; rescale so the realised share matches the target.
    eligible = shallower >= 2
    elig_share = np.bincount(domain[child_idx][eligible], minlength=nd) / np.maximum(
        np.bincount(domain[child_idx], minlength=nd), 1)
    merge_p = np.minimum(merge_p / np.maximum(elig_share[domain[child_idx]], 1e-9), 1.0)
    is_merge = eligible & (rng.random(n_children) < merge_p)
    m_idx = np.flatnonzero(is_merge)
    n_extra = 1 + (rng.random(m_idx.size) < p.merge_extra_two)
    extra_child = np.repeat(m_idx, n_extra)
    span = shallower[extra_child]
    ppos = pos[extra_child] - fam_start[extra_child]
    off = 1 + (rng.random(extra_child.size) * (span - 1)).astype(np.int64)
    extra_parent = members[fam_start[extra_child] + (ppos + off) % span]
    edge_child = np.concatenate([child_idx, child_idx[extra_child]])
    edge_parent = np.concatenate([primary, extra_parent])
    pairs = np.unique(np.stack([edge_child, edge_parent], axis=1), axis=0)
    edge_child, edge_parent = pairs[:, 0], pairs[:, 1]
    in_deg = np.bincount(edge_child, minlength=total)
    out_deg = np.bincount(edge_parent, minlength=total)
    parent_of = np.full(total, -1, dtype=np.int64)
    parent_of[child_idx] = primary

    # 4. Relations.
    relation = np.full(total, ROOT, dtype=np.int64)
    ch = np.arange(n_fam, n_fam + n_children)
    relation[ch] = FINETUNE
    relation[ch[in_deg[ch] > 1]] = MERGE
    single = ch[in_deg[ch] == 1]
    leaf = out_deg[single] == 0
    dch = domain[single]
    q_target = np.array([d.quantized for d in doms])
    a_target = np.array([d.adapter for d in doms])
    n_dom = np.maximum(np.bincount(dch, minlength=nd), 1)
    leaf_share = np.bincount(dch[leaf], minlength=nd) / n_dom
    u = rng.random(single.size)
    # Quantized: leaves carry the domain's share; non-leaves only at the noise rate.
    q_leaf = np.minimum(q_target / np.maximum(leaf_share, 1e-9), 1.0)
    q_non = q_target * p.quantized_nonleaf_rate / np.maximum(1.0 - leaf_share, 1e-9)
    q_prob = np.where(leaf, q_leaf[dch], q_non[dch])
    # Adapters branch less than fine-tunes (Anatomy §3): half the rate on non-leaves.
    a_non = 0.5 * a_target
    a_leaf = np.clip((a_target - (1 - leaf_share) * a_non) / np.maximum(leaf_share, 1e-9), 0, 1)
    a_prob = np.where(leaf, a_leaf[dch], a_non[dch])
    rel = np.where(u < q_prob, QUANTIZED, np.where(u < q_prob + a_prob * (1 - q_prob), ADAPTER, FINETUNE))
    relation[single] = rel

    # 5. Time and traits, level by level.
    t0, t_end = _time_us(p.start), _time_us(p.snapshot)
    year = 365.25 * _US_PER_DAY
    created = np.empty(total, dtype=np.int64)
    created[:] = np.maximum(t_end - rng.exponential(p.root_age_years * year, total), t0)
    license_ = np.empty(total, dtype=np.int64)
    n_restr = len(RESTRICTIVE_LICENSES)
    big_root = np.zeros(total, dtype=bool)
    big_root[:n_fam] = fam_size >= 20
    # Big family roots come from labs with restrictive / commercial licences more often.
    restr = rng.random(total) < np.where(big_root, 0.6, 0.15)
    license_[:] = np.where(restr, rng.integers(0, n_restr, total),
                           n_restr + _skewed(rng, total, len(PERMISSIVE_LICENSES)))
    ml = np.array([d.multilingual_root for d in doms])[domain]
    nlp_like = np.isin(domain, [i for i, d in enumerate(doms) if d.modality in ("language", "audio", "vision-language")])
    multi = rng.random(total) < ml
    extra_langs = rng.integers(1, 1 << len(LANGUAGES), total) & ((1 << len(LANGUAGES)) - 2)
    languages = np.where(nlp_like, np.where(multi, 1 | extra_langs, 1), 0).astype(np.int64)
    params_count = (10 ** rng.uniform(*np.array([d.log10_params for d in doms])[domain].T)).astype(np.int64)
    arxiv = np.where(rng.random(total) < 0.3, rng.integers(1_000, 99_999, total), -1)
    n_ds = np.array([len(d.datasets) for d in doms])[domain]
    dataset = np.where(rng.random(total) < 0.3, (rng.random(total) * n_ds).astype(np.int64), -1)
    pipeline = (rng.random(total) * np.array([len(d.pipeline_tags) for d in doms])[domain]).astype(np.int64)
    inversion = np.zeros(total, dtype=bool)
    single_child = np.zeros(total, dtype=bool)
    single_child[single] = True
    inversion[ch] = single_child[ch] & (rng.random(n_children) < p.time_inversion_rate)
    gap = rng.beta(1.0, p.child_gap_beta, total)
    back = rng.uniform(_US_PER_DAY / 24, 90 * _US_PER_DAY, total).astype(np.int64)
    mutate = rng.random(total) < p.license_mutation
    to_perm = rng.random(total) < p.license_to_permissive
    new_lic = np.where(to_perm, n_restr + _skewed(rng, total, len(PERMISSIVE_LICENSES)),
                       rng.integers(0, n_restr, total))
    eng_only = rng.random(total) < p.english_only_per_edge
    lvl_of_child = depth[child_idx]
    # Edges sorted by child level for the merge maximum.
    e_lvl = depth[edge_child]
    e_order = np.argsort(e_lvl, kind="stable")
    e_bounds = np.searchsorted(e_lvl[e_order], np.arange(1, max_lvl + 1))
    level_child_idx = child_idx[np.argsort(lvl_of_child, kind="stable")]
    lvl_sorted = np.sort(lvl_of_child)
    lbounds = np.searchsorted(lvl_sorted, np.arange(1, max_lvl + 1))
    latest = np.full(total, np.iinfo(np.int64).min)  # newest parent time; each child is in one level
    for lvl in range(1, max_lvl):
        nodes = level_child_idx[lbounds[lvl - 1]:lbounds[lvl]]
        if nodes.size == 0:
            break
        es = e_order[e_bounds[lvl - 1]:e_bounds[lvl]]
        np.maximum.at(latest, edge_child[es], created[edge_parent[es]])
        tp = latest[nodes]
        created[nodes] = np.where(inversion[nodes],
                                  created[parent_of[nodes]] - back[nodes],
                                  tp + 1 + ((t_end - tp) * gap[nodes]).astype(np.int64))
        par = parent_of[nodes]
        license_[nodes] = np.where(mutate[nodes], new_lic[nodes], license_[par])
        languages[nodes] = np.where(eng_only[nodes] & (languages[par] != 0), 1, languages[par])
        params_count[nodes] = params_count[par]
        arxiv[nodes] = np.where(rng.random(nodes.size) < 0.3, arxiv[par], -1)
        pipeline[nodes] = np.where(rng.random(nodes.size) < 0.9, pipeline[par], pipeline[nodes])
    adapters = relation == ADAPTER
    params_count[adapters] = np.maximum(params_count[adapters] // rng.integers(50, 2000, int(adapters.sum())), 1)
    modified = created + ((t_end - created) * rng.random(total) ** 2).astype(np.int64)

    # Cards: every model that declares a parent has one (base_model tags come from the card's
    # YAML); family roots mostly; isolated models fill up to the target share.
    card = np.zeros(total, dtype=bool)
    card[ch] = True
    card[:n_fam] = rng.random(n_fam) < 0.95
    need = p.card_share * n - int(card[:n_fam].sum()) - n_children
    iso = np.arange(n_fam + n_children, total)
    card[iso] = rng.random(n_iso) < np.clip(need / max(n_iso, 1), 0, 1)
    autogen = card & (depth > 0) & (rng.random(total) < np.minimum(
        p.autogen_base + p.autogen_per_level * depth, p.autogen_max))
    human_len = (p.card_median_chars * p.card_shrink_per_level ** depth
                 * np.exp(p.card_sigma * rng.standard_normal(total)))
    auto_len = rng.uniform(900, 1600, total)
    card_length = np.where(card, np.clip(np.where(autogen, auto_len, human_len), 40, p.card_max_chars), 0)
    card_length = card_length.astype(np.int64)
    license_stated = card & (rng.random(total) < p.license_given_card)
    languages_stated = card & (languages != 0) & (rng.random(total) < p.language_given_card)

    # Downloads: heavy tails; roots of big families and quantized models are popular.
    mu = np.where(depth == 0, np.where(family >= 0, 5.0, 1.5), 2.5)
    mu[:n_fam] += 0.9 * np.log1p(fam_size)
    mu = mu + np.where(relation == QUANTIZED, 1.5, 0.0)
    dl = np.exp(mu + p.downloads_sigma * rng.standard_normal(total))
    downloads = np.where(rng.random(total) < p.downloads_zero_share, 0, np.minimum(dl, 5e8)).astype(np.int64)
    downloads_all = downloads + (downloads * rng.lognormal(1.0, 0.8, total)).astype(np.int64)
    likes = np.floor(np.sqrt(downloads_all) * rng.lognormal(-2.5, 1.0, total)).astype(np.int64)
    trending = np.round(likes * rng.random(total) * 0.1, 2)

    quant_format = np.where(relation == QUANTIZED, np.where(rng.random(total) < 0.7, 1, 2), 0)

    # 6. Hub artefacts: deleted roots and noise.
    deleted = np.zeros(total, dtype=bool)
    deleted[rng.choice(n_fam, size=n_deleted, replace=False)] = True
    noise = np.zeros(total, dtype=np.int64)
    noise[iso[rng.random(n_iso) < p.self_reference_rate]] = 1
    n_cycle_pairs = int(round(p.two_cycle_rate * n / 2))
    candidates = iso[noise[iso] == 0]
    pair_nodes = rng.choice(candidates, size=min(2 * n_cycle_pairs, candidates.size) // 2 * 2, replace=False)
    noise[pair_nodes] = 2
    cycle_partner = np.full(total, -1, dtype=np.int64)
    cycle_partner[pair_nodes[0::2]] = pair_nodes[1::2]
    cycle_partner[pair_nodes[1::2]] = pair_nodes[0::2]
    free = np.flatnonzero((noise == 0) & ~deleted)
    noise[free[rng.random(free.size) < p.odd_tag_rate]] = 3
    card[noise == 1] = True
    card[noise == 2] = True

    # Shuffle rows so file order says nothing about structure, and assign authors (heavy-tailed).
    perm = rng.permutation(total)
    inv = np.empty_like(perm); inv[perm] = np.arange(total)
    # Authors: about one per four models, heavy-tailed (a few organisations own thousands).
    n_authors = max(total // 4, 1)
    author = (n_authors * rng.random(total) ** 3).astype(np.int64)
    hub = SyntheticHub(
        n=n, seed=seed, params=p, family=family, domain=domain, depth=depth, relation=relation,
        edge_parent=edge_parent, edge_child=edge_child, created_us=created, modified_us=modified,
        downloads=downloads, downloads_all_time=downloads_all, likes=likes, trending=trending,
        license=license_, languages=languages, card=card, card_length=card_length, autogen=autogen,
        license_stated=license_stated, languages_stated=languages_stated, dataset=dataset, arxiv=arxiv,
        params_count=params_count, pipeline=pipeline, quant_format=quant_format, deleted=deleted,
        noise=noise, author=author, cycle_partner=cycle_partner)
    return _permute(hub, perm, inv)


def _skewed(rng: np.random.Generator, size: int, k: int) -> np.ndarray:
    """Indices in ``[0, k)`` with a geometric-like preference for the first ones (apache-2.0, mit)."""
    return np.minimum(rng.geometric(0.45, size) - 1, k - 1)


def _permute(hub: SyntheticHub, perm: np.ndarray, inv: np.ndarray) -> SyntheticHub:
    """Reorder nodes by ``perm`` (new row ``i`` is old node ``perm[i]``), remapping references."""
    arrays = {}
    for name, value in vars(hub).items():
        if isinstance(value, np.ndarray) and value.shape == perm.shape and not name.startswith("edge_"):
            arrays[name] = value[perm]
    arrays["family"] = np.where(arrays["family"] >= 0, inv[np.maximum(arrays["family"], 0)], -1)
    arrays["cycle_partner"] = np.where(arrays["cycle_partner"] >= 0,
                                       inv[np.maximum(arrays["cycle_partner"], 0)], -1)
    out = replace(hub, edge_parent=inv[hub.edge_parent], edge_child=inv[hub.edge_child], **arrays)
    order = np.lexsort((out.edge_parent, out.edge_child))
    out.edge_parent, out.edge_child = out.edge_parent[order], out.edge_child[order]
    return out


# ---------------------------------------------------------------------------------- the hub file

#: Columns of the hub-stats ``models.parquet`` that the generator writes, plus ``card``.
HUB_STATS_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("author", pa.string()),
    pa.field("createdAt", pa.timestamp("us", tz="UTC")),
    pa.field("lastModified", pa.timestamp("us", tz="UTC")),
    pa.field("downloads", pa.int64()),
    pa.field("downloadsAllTime", pa.int64()),
    pa.field("likes", pa.int64()),
    pa.field("trendingScore", pa.float64()),
    pa.field("tags", pa.list_(pa.string())),
    pa.field("pipeline_tag", pa.string()),
    pa.field("library_name", pa.string()),
    pa.field("cardData", pa.string()),
    pa.field("config", pa.string()),
    pa.field("siblings", pa.list_(pa.struct([pa.field("rfilename", pa.string())]))),
    pa.field("safetensors", pa.string()),
    pa.field("gguf", pa.string()),
    pa.field("card", pa.string()),
])

#: Ground truth, one row per model including deleted ones (``in_file`` false).
TRUTH_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("in_file", pa.bool_(), nullable=False),
    pa.field("family_root", pa.string()),
    pa.field("domain", pa.string(), nullable=False),
    pa.field("modality", pa.string(), nullable=False),
    pa.field("generation", pa.int64(), nullable=False),
    pa.field("relation", pa.string(), nullable=False),
    pa.field("parents", pa.list_(pa.string())),
    pa.field("created_at", pa.timestamp("us", tz="UTC")),
    pa.field("license", pa.string()),
    pa.field("noise", pa.string()),
])

NOISE_KINDS = ("", "self_reference", "two_cycle", "malformed_tag")
_STEMS = {"nlp": "bert", "cv_disc": "vit", "cv_gen": "sd", "audio": "whisper", "vlm": "llava"}
_SIBLINGS = (  # by artefact kind: legacy .bin, safetensors, adapter, gguf, gptq, diffusers, diffusers LoRA
    (".gitattributes", "config.json", "pytorch_model.bin"),
    (".gitattributes", "config.json", "model.safetensors"),
    (".gitattributes", "adapter_config.json", "adapter_model.safetensors"),
    (".gitattributes", "model-Q4_K_M.gguf", "model-Q8_0.gguf"),
    (".gitattributes", "config.json", "model.safetensors", "quantize_config.json"),
    (".gitattributes", "model_index.json", "unet/diffusion_pytorch_model.safetensors"),
    (".gitattributes", "pytorch_lora_weights.safetensors"),
)
_AUTOGEN_HEAD = ("<!-- This model card has been generated automatically according to the information the "
                 "Trainer had access to. You should probably proofread and complete it, then remove this "
                 "comment. -->\n\n")
_AUTOGEN_FILL = "More information needed\n\n" * 4
_HUMAN_FILL = ("This model was trained for the task in its metadata. Evaluate it on your own data "
               "before using it.\n\n")
_FILL_UNIT = 100
assert len(_AUTOGEN_FILL) == len(_HUMAN_FILL) == _FILL_UNIT
_FILL = np.frombuffer((_AUTOGEN_FILL + _HUMAN_FILL).encode(), dtype=np.uint8).reshape(2, _FILL_UNIT)


def _repeat_units(unit: np.ndarray, reps: np.ndarray) -> pa.Array:
    """Row ``i``: fill unit ``unit[i]`` repeated ``reps[i]`` times, built in one numpy gather
    (``pc.binary_repeat`` and concatenation cost several passes over a gigabyte at 2M models)."""
    offsets = np.zeros(reps.size + 1, dtype=np.int64)
    np.cumsum(reps * _FILL_UNIT, out=offsets[1:])
    data = _FILL[np.repeat(unit, reps)].ravel()
    return pa.StringArray.from_buffers(reps.size, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))


def _s(values, mask=None) -> pa.Array:
    """A string array, null where ``mask`` is false."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.string():
        arr = pc.cast(arr, pa.string())
    if mask is not None:
        arr = pc.if_else(pa.array(np.asarray(mask, dtype=bool)), arr, pa.scalar(None, pa.string()))
    return arr


def _const(value: str, mask: np.ndarray) -> pa.Array:
    """``value`` where ``mask`` is true, null elsewhere."""
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), pa.scalar(value), pa.scalar(None, pa.string()))


def _cat(*parts) -> pa.Array:
    """Element-wise concatenation; a null part makes the result null."""
    return pc.binary_join_element_wise(*parts, "")


def _lookup(vocab, index: np.ndarray) -> pa.Array:
    return pa.array(list(vocab), pa.string()).take(pa.array(np.maximum(index, 0)))


def _rows_to_lists(columns: list[pa.Array]) -> pa.ListArray:
    """Per row, the non-null values of ``columns`` in column order, as a list array."""
    m = len(columns[0])
    valid = np.stack([np.asarray(pc.is_valid(c).to_numpy(zero_copy_only=False)) for c in columns], axis=1)
    offsets = np.zeros(m + 1, dtype=np.int32)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    # Row-major positions of the valid cells in the column-major concatenation: one take.
    positions = (np.arange(len(columns))[None, :] * m + np.arange(m)[:, None])[valid]
    values = pa.concat_arrays(columns).take(pa.array(positions))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _json_list(items: pa.ListArray) -> pa.Array:
    """``["a", "b"]`` from a list of strings (our vocabularies need no escaping)."""
    return _cat('["', pc.binary_join(items, '", "'), '"]')


class _HubView:
    """Vocabulary lookups and per-model strings shared by every chunk."""

    def __init__(self, hub: SyntheticHub):
        self.hub = hub
        doms = hub.params.domains
        self.doms = doms
        total = hub.family.size
        stems = np.array([_STEMS.get(d.name, d.name) for d in doms])
        rel_word = np.array(["ft", "lora", "GGUF", "merge", "base"])
        word = rel_word[np.where(hub.relation == ROOT, 4, hub.relation)]
        word = np.where(hub.quant_format == 2, "GPTQ", word)
        authors = _cat("user", _s(pa.array(hub.author)))
        names = _cat(_s(pa.array(stems[hub.domain])), "-", _s(pa.array(word)), "-", _s(pa.array(np.arange(total))))
        self.authors = authors
        self.ids = _cat(authors, "/", names)
        first = np.searchsorted(hub.edge_child, np.arange(total))
        self.first_edge = first
        self.in_degree = np.bincount(hub.edge_child, minlength=total)

    def parent_slot(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Index of the ``k``-th parent of each row and whether it exists."""
        has = self.in_degree[rows] > k
        e = np.minimum(self.first_edge[rows] + k, max(self.hub.edge_parent.size - 1, 0))
        return (self.hub.edge_parent[e] if self.hub.edge_parent.size else np.zeros(rows.size, np.int64)), has


def _chunk_table(view: _HubView, rows: np.ndarray, with_card_text: bool = True) -> pa.Table:
    """The hub-file rows of models ``rows`` (vectorised over the chunk)."""
    h = view.hub
    doms = view.doms
    m = rows.size
    take = pa.array(rows)
    ids = view.ids.take(take)
    dom = h.domain[rows]
    rel = h.relation[rows]
    card = h.card[rows]
    noise = h.noise[rows]
    qf = h.quant_format[rows]
    lib = np.array([d.library for d in doms])[dom]
    lib = np.where(qf == 1, "gguf", lib)
    library = _s(pa.array(lib))
    pipe_vocab = [t for d in doms for t in d.pipeline_tags]
    pipe_off = np.cumsum([0] + [len(d.pipeline_tags) for d in doms])[:-1]
    pipeline = _lookup(pipe_vocab, pipe_off[dom] + h.pipeline[rows])

    # Parents as the Hub shows them: up to three real ones, or the noise.
    rel_names = pa.array(list(RELATIONS) + ["finetune"], pa.string())
    rel_word = rel_names.take(pa.array(np.where(rel == ROOT, 4, rel)))
    slots = []
    for k in range(3):
        pidx, has = view.parent_slot(rows, k)
        slots.append((view.ids.take(pa.array(pidx)), has))
    self_ref, cyc = noise == 1, noise == 2
    partner = np.maximum(h.cycle_partner[rows], 0)
    noise_parent = pc.if_else(pa.array(self_ref), ids, view.ids.take(pa.array(partner)))
    p0_ids = pc.if_else(pa.array(self_ref | cyc), noise_parent, slots[0][0])
    slots[0] = (p0_ids, slots[0][1] | self_ref | cyc)
    base_tags = []
    for pid, has in slots:
        base_tags += [_s(_cat("base_model:", pid), has), _s(_cat("base_model:", rel_word, ":", pid), has)]
    odd = noise == 3
    odd_tag = pc.if_else(pa.array(slots[0][1]), _cat("base_model:distilled:", slots[0][0]),
                         pa.scalar("base_model:", pa.string()))
    base_tags.append(_s(odd_tag, odd))

    lic = _lookup(LICENSES, h.license[rows])
    lic_ok = h.license_stated[rows]
    lang_ok = h.languages_stated[rows]
    lang_cols = [_const(code, lang_ok & ((h.languages[rows] >> i) & 1).astype(bool))
                 for i, code in enumerate(LANGUAGES)]
    ds_vocab = [x for d in doms for x in d.datasets]
    ds_off = np.cumsum([0] + [len(d.datasets) for d in doms])[:-1]
    ds_ok = card & (h.dataset[rows] >= 0)
    ds = _lookup(ds_vocab, ds_off[dom] + h.dataset[rows])
    ax_ok = card & (h.arxiv[rows] >= 0)
    created = h.created_us[rows]
    ax = _cat("arxiv:", _s(pa.array(2000 + (created // (_US_PER_DAY * 30)) % 500)), ".",
              _s(pa.array(np.maximum(h.arxiv[rows], 0))))
    gguf_f = qf == 1
    has_st = ~gguf_f & (created >= _time_us("2023-01-01"))
    merge = rel == MERGE
    tags = _rows_to_lists(
        [library, _const("safetensors", has_st), pipeline]
        + lang_cols
        + [_const("mergekit", merge), _s(_cat("dataset:", ds), ds_ok),
           _s(ax, ax_ok), _s(_cat("license:", lic), lic_ok)]
        + base_tags
        + [_const("region:us", np.ones(m, dtype=bool))])

    # cardData (JSON) and the README front matter (YAML) from the same pieces.
    n_par = np.where(self_ref | cyc, 1, view.in_degree[rows])
    one = n_par == 1
    bm_json_list = _cat('["', pc.binary_join_element_wise(
        slots[0][0], _s(slots[1][0], slots[1][1]), _s(slots[2][0], slots[2][1]), '", "',
        null_handling="skip"), '"]')
    bm_json = pc.if_else(pa.array(one), _cat('"', p0_ids, '"'), bm_json_list)
    states_rel = (n_par == 1) & (np.random.default_rng(h.seed + 1).random(h.family.size)[rows]
                                 < h.params.card_relation_share)
    lang_list = _rows_to_lists(lang_cols)
    card_json = pc.binary_join_element_wise(
        _s(_cat('"base_model": ', bm_json), n_par > 0),
        _s(_cat('"base_model_relation": "', rel_word, '"'), states_rel & ~self_ref & ~cyc),
        _s(_cat('"license": "', lic, '"'), lic_ok),
        _s(_cat('"language": ', _json_list(lang_list)), lang_ok),
        _s(_cat('"datasets": ["', ds, '"]'), ds_ok),
        _cat('"library_name": "', library, '"'),
        _cat('"pipeline_tag": "', pipeline, '"'),
        ", ", null_handling="skip")
    card_data = _s(_cat("{", card_json, "}"), card)
    if with_card_text:
        bm_yaml = pc.if_else(pa.array(one), _cat("base_model: ", p0_ids, "\n"),
                             _cat("base_model:\n- ", pc.binary_join_element_wise(
                                 slots[0][0], _s(slots[1][0], slots[1][1]), _s(slots[2][0], slots[2][1]),
                                 "\n- ", null_handling="skip"), "\n"))
        yaml = pc.binary_join_element_wise(
            "---\n",
            _s(bm_yaml, n_par > 0),
            _s(_cat("base_model_relation: ", rel_word, "\n"), states_rel & ~self_ref & ~cyc),
            _s(_cat("license: ", lic, "\n"), lic_ok),
            _s(_cat("language:\n- ", pc.binary_join(lang_list, "\n- "), "\n"), lang_ok),
            _s(_cat("datasets:\n- ", ds, "\n"), ds_ok),
            _cat("library_name: ", library, "\n", "pipeline_tag: ", pipeline, "\n---\n\n"),
            "", null_handling="skip")
        yaml = _s(yaml, card)
        autogen = h.autogen[rows]
        head = pc.if_else(pa.array(autogen),
                          _cat(_AUTOGEN_HEAD, "# ", ids, "\n\nThis model is a fine-tuned version of [", slots[0][0],
                               "](https://huggingface.co/", slots[0][0], ") on the None dataset.\n\n"
                               "## Training procedure\n\n"),
                          _cat("# ", ids, "\n\n"))
        head = pc.if_else(pc.is_null(head), _cat("# ", ids, "\n\n"), head)
        fixed = pc.fill_null(pc.add(pc.utf8_length(yaml), pc.utf8_length(head)), 0).to_numpy()
        reps = np.maximum(h.card_length[rows] - fixed, 0) // _FILL_UNIT
        fill = _repeat_units(np.where(autogen, 0, 1), reps)
        card_text = _cat(yaml, head, fill)  # null where there is no card: yaml is

    # Weights: config, safetensors / gguf summaries and the file list.
    model_type = np.array([d.model_type or "" for d in doms])[dom]
    arch = np.array([d.architecture or "" for d in doms])[dom]
    has_config = (model_type != "") & (rel != ADAPTER) & ~gguf_f
    config = _s(_cat('{"model_type": "', pa.array(model_type), '", "architectures": ["', pa.array(arch), '"]}'),
                has_config)
    n_params = h.params_count[rows]
    dtype = np.where(qf == 2, "I32", np.where(dom == 0, "BF16", "F32"))
    st_json = _cat('{"parameters": {"', pa.array(dtype), '": ', _s(pa.array(n_params)), '}, "total": ',
                   _s(pa.array(n_params)), "}")
    safetensors = _s(st_json, has_st)
    gguf = _s(_cat('{"total": ', _s(pa.array(n_params)), ', "architecture": "',
                   pa.array(np.where(model_type == "", "flux", model_type)), '", "context_length": 4096}'), gguf_f)
    diff = np.array([d.library == "diffusers" for d in doms])[dom]
    kind = np.where(gguf_f, 3, np.where(qf == 2, 4, np.where(
        rel == ADAPTER, np.where(diff, 6, 2), np.where(diff, 5, np.where(has_st, 1, 0)))))
    templates = [list(t) + ["README.md"] * c for t in _SIBLINGS for c in (0, 1)]
    sib_type = pa.list_(pa.struct([pa.field("rfilename", pa.string())]))
    sib_vocab = pa.array([[{"rfilename": f} for f in t] for t in templates], sib_type)
    siblings = sib_vocab.take(pa.array(kind * 2 + card))

    created_out = _backfill(created, h.params)
    ts = pa.timestamp("us", tz="UTC")
    columns = {
        "id": ids,
        "author": view.authors.take(take),
        "createdAt": pa.array(created_out, ts),
        "lastModified": pa.array(np.maximum(h.modified_us[rows], created_out), ts),
        "downloads": pa.array(h.downloads[rows]),
        "downloadsAllTime": pa.array(h.downloads_all_time[rows]),
        "likes": pa.array(h.likes[rows]),
        "trendingScore": pa.array(h.trending[rows]),
        "tags": tags,
        "pipeline_tag": pipeline,
        "library_name": library,
        "cardData": card_data,
        "config": config,
        "siblings": siblings,
        "safetensors": safetensors,
        "gguf": gguf,
    }
    if with_card_text:
        columns["card"] = card_text
    return pa.table(columns, schema=_schema(with_card_text))


def _schema(with_card_text: bool) -> pa.Schema:
    return HUB_STATS_SCHEMA if with_card_text else HUB_STATS_SCHEMA.remove(HUB_STATS_SCHEMA.get_field_index("card"))


def _backfill(created_us: np.ndarray, params: SynthParams) -> np.ndarray:
    """The Hub's ``createdAt``: models older than 2022-03-02 read 2022-03-02 23:29–23:59, in order.

    Anatomy §2.2, footnote 3: creation dates were tracked from 2022-03-02 and older models were
    back-filled with that date (real records read e.g. ``2022-03-02T23:29:05Z``). The mapping
    keeps the true order so parents stay older than their children.
    """
    day = _time_us(BACKFILL_DAY)
    t0 = _time_us(params.start)
    window = (30 * 60 - 1) * 1_000_000
    start = day + (23 * 60 + 29) * 60 * 1_000_000
    old = created_us < day
    frac = (np.clip(created_us, t0, day) - t0) / max(day - t0, 1)
    return np.where(old, start + (frac * window).astype(np.int64), created_us)


def truth_table(hub: SyntheticHub, view: _HubView | None = None) -> pa.Table:
    """The generator's ground truth, one row per model (see :data:`TRUTH_SCHEMA`)."""
    view = view or _HubView(hub)
    total = hub.family.size
    counts = view.in_degree
    offsets = np.zeros(total + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    parents = pa.ListArray.from_arrays(pa.array(offsets), view.ids.take(pa.array(hub.edge_parent)))
    doms = hub.params.domains
    rel_names = pa.array(list(RELATIONS) + ["root"], pa.string())
    return pa.table({
        "id": view.ids,
        "in_file": pa.array(~hub.deleted),
        "family_root": _s(view.ids.take(pa.array(np.maximum(hub.family, 0))), hub.family >= 0),
        "domain": _lookup([d.name for d in doms], hub.domain),
        "modality": _lookup([d.modality for d in doms], hub.domain),
        "generation": pa.array(hub.depth),
        "relation": rel_names.take(pa.array(np.where(hub.relation == ROOT, 4, hub.relation))),
        "parents": parents,
        "created_at": pa.array(hub.created_us, pa.timestamp("us", tz="UTC")),
        "license": _lookup(LICENSES, hub.license),
        "noise": _s(pa.array(np.array(NOISE_KINDS)[hub.noise]), hub.noise > 0),
    }, schema=TRUTH_SCHEMA)


def truth_path(out: str | Path) -> Path:
    """Where the ground truth of the hub file ``out`` goes: ``<out>.truth.parquet``."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".parquet") + ".truth.parquet")


def write_hub(hub: SyntheticHub, out: str | Path, *, card_text: bool = True, chunk_rows: int = 250_000,
              on_chunk=None) -> tuple[Path, Path]:
    """Write the hub file and its ground truth; strings are built ``chunk_rows`` models at a time.

    With ``card_text=False`` the ``card`` column is left out, as in the real hub-stats snapshot
    (which has no README text; a card's presence still shows as ``README.md`` in ``siblings``).

    Returns
    -------
    (hub file, truth file)
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    view = _HubView(hub)
    rows = np.flatnonzero(~hub.deleted)
    tmp = out.with_name(out.name + ".tmp")
    with pq.ParquetWriter(tmp, _schema(card_text), compression="zstd") as writer:
        for lo in range(0, rows.size, chunk_rows):
            chunk = rows[lo:lo + chunk_rows]
            writer.write_table(_chunk_table(view, chunk, card_text))
            if on_chunk is not None:
                on_chunk(chunk.size)
    tmp.replace(out)
    truth = truth_path(out)
    pq.write_table(truth_table(hub, view), truth, compression="zstd")
    return out, truth


def synthesize(n: int, seed: int, out: str | Path, params: SynthParams | None = None, *,
               card_text: bool = True, on_chunk=None) -> tuple[Path, Path]:
    """Generate a hub of ``n`` models and write it (:func:`generate` then :func:`write_hub`)."""
    return write_hub(generate(n, seed, params), out, card_text=card_text, on_chunk=on_chunk)
