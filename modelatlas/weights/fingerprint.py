"""Weight fingerprints: the Model Atlas representation of a model, read lazily.

Horwitz et al. 2025 (Model Atlas), Appendix C ("we propose to represent each model by subsampling
the full weight representation to a much smaller number of neurons ... keeping just 100 is
typically sufficient") and Appendix D ("we use 100 random neurons as model features. For Stable
Diffusion, we select these neurons exclusively from the attention layers"). A *neuron* is a row of
a weight matrix (an output unit; the 2-D view ``(shape[0], prod(shape[1:]))`` for convolutions).
For each selected layer we draw ``n_neurons`` rows at random, seeded by the architecture signature,
the layer name and ``seed``, so that every model of one signature is sampled at the same rows and
Euclidean distances between fingerprints compare like with like.

MoTHer (Horwitz et al. 2024, Sec. 4.2 and its public code) orders parent and child by the Fisher
excess kurtosis of each flattened square 2-D weight whose name holds a layer kind (ViT ``output.dense``,
LoRA ``value``, Llama ``self_attn.o_proj``, Stable Diffusion: every square layer). Kurtosis needs
the whole tensor, so it is computed only when asked (by default for the ``mother-*`` selections),
in the same pass that reads the sampled rows from it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from modelatlas.errors import InputError
from modelatlas.weights.projection import SparseProjection
from modelatlas.weights.quantization import detect_quantization
from modelatlas.weights.signature import ArchitectureSignature, common_signature, signature
from modelatlas.weights.weightfile import WeightFile

#: Attention projections across naming schemes (BERT/ViT, Llama/Mistral, GPT-2, diffusers).
ATTENTION = re.compile(r"(attn|attention|(^|[._])(q|k|v|o|qkv|out|in)_proj|(^|\.)(query|key|value)(\.|$)"
                       r"|to_(q|k|v|out))")
#: MoTHer layer kinds: substring of the layer name (square 2-D weights only).
MOTHER_KINDS = {"mother-vit": "output.dense", "mother-lora": "value", "mother-llama": "self_attn.o_proj",
                "mother-sd": ""}
LAYER_CHOICES = ("dense", "attention", *MOTHER_KINDS)


class SignatureMismatchError(InputError):
    """Models of different architecture signatures were asked to share one fingerprint space."""


def select_layers(sig: ArchitectureSignature, layers: str = "dense") -> list[str]:
    """Normalised names of the layers a selection keeps, in signature order.

    Parameters
    ----------
    sig:
        The models' signature.
    layers:
        ``dense`` (every parameter of two or more dimensions), ``attention`` (those whose name is an
        attention projection), ``mother-vit`` / ``mother-lora`` / ``mother-llama`` / ``mother-sd``
        (MoTHer's square layers of one kind), or any other string as a regular expression searched
        in the normalised names of the 2-D+ parameters.
    """
    matrices = [(name, shape) for name, shape in sig.entries if len(shape) >= 2 and 0 not in shape]
    if layers == "dense":
        return [n for n, _ in matrices]
    if layers == "attention":
        return [n for n, _ in matrices if ATTENTION.search(n)]
    if layers in MOTHER_KINDS:
        kind = MOTHER_KINDS[layers]
        return [n for n, s in matrices if len(s) == 2 and s[0] == s[1] and kind in n]
    try:
        pattern = re.compile(layers)
    except re.error as exc:
        raise InputError(f"--layers {layers!r} is neither one of {', '.join(LAYER_CHOICES)} nor a "
                         f"regular expression ({exc})") from None
    return [n for n, _ in matrices if pattern.search(n)]


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def sampled_rows(signature_key: str, layer: str, n_rows: int, n_neurons: int, seed: int) -> np.ndarray:
    """The sorted rows sampled from one layer: a function of (signature, layer, seed) only."""
    if n_neurons >= n_rows:
        return np.arange(n_rows, dtype=np.int64)
    rng = _rng(signature_key, layer, seed)
    return np.sort(rng.choice(n_rows, size=n_neurons, replace=False)).astype(np.int64)


def sample_plan(sig: ArchitectureSignature, layer_names: list[str], n_neurons: int, seed: int,
                sampling: str = "layer") -> list[tuple[str, np.ndarray]]:
    """Rows to read per layer: ``n_neurons`` per layer (``layer``), or in all (``model``).

    ``model`` draws ``n_neurons`` rows uniformly from the union of the selected layers' rows (the
    reading of Appendix D's "100 random neurons as model features"); layers that receive no row
    keep an empty row list, so that the layout is the same for every model of the signature.
    """
    shapes = sig.shapes
    if sampling == "layer":
        return [(n, sampled_rows(sig.key, n, shapes[n][0], n_neurons, seed)) for n in layer_names]
    if sampling != "model":
        raise InputError(f"sampling must be 'layer' or 'model', not {sampling!r}")
    counts = np.array([shapes[n][0] for n in layer_names], dtype=np.int64)
    total = int(counts.sum())
    picked = np.arange(total) if n_neurons >= total else np.sort(
        _rng(sig.key, "model", seed).choice(total, size=n_neurons, replace=False))
    bounds = np.concatenate(([0], np.cumsum(counts)))
    return [(n, (picked[(picked >= bounds[i]) & (picked < bounds[i + 1])] - bounds[i]).astype(np.int64))
            for i, n in enumerate(layer_names)]


@dataclass
class Fingerprints:
    """Fingerprints of models sharing one architecture signature.

    Attributes
    ----------
    ids:
        Model ids (a manifest id or the file path), one per row.
    signature_key:
        The shared :class:`ArchitectureSignature` key.
    layer_names:
        Normalised names of the selected layers, in vector order.
    vectors:
        ``(n_models, d)`` float32: sampled rows of every selected layer, concatenated (or their
        sparse random projection, see ``projection``).
    kurtosis:
        ``(n_models, n_layers)`` float64 Fisher excess kurtosis of each selected layer (NaN for a
        non-square layer), or None when not computed.
    content_hashes:
        One hash per model (see ``hash_kind``).
    quantized:
        Whether each model looks quantised (:func:`detect_quantization`).
    bytes_read:
        Bytes read from disk per model.
    layer_rows:
        The sampled rows of each layer (the same for every model).
    layer_offsets:
        Start of each layer's block in the vectors, plus the total length at the end.
    hash_kind:
        ``sample`` (hash of the fingerprint's bytes: equal for exact duplicates, at no extra
        reading) or ``full`` (:func:`content_hash` of every stored byte).
    n_neurons, layers, seed, sampling:
        The parameters used.
    skipped:
        ``(id, error)`` of models left out by ``on_error="skip"``.
    projection:
        The projected dimension when ``project`` was used (``vectors`` then has that many
        columns; ``layer_offsets`` still describes the unprojected layout), else None.
    name_sources:
        Per model, how many of its parameters got their canonical name from the file itself
        (``file``), gguf's name table (``name-table``), the ONNX graph (``graph``) or a match by
        value (``value``; see :attr:`modelatlas.weights.weightfile.WeightFile.name_sources`).
    """

    ids: list[str]
    signature_key: str
    layer_names: list[str]
    vectors: np.ndarray
    kurtosis: np.ndarray | None
    content_hashes: list[str]
    quantized: np.ndarray
    bytes_read: np.ndarray
    layer_rows: list[np.ndarray] = field(default_factory=list)
    layer_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    hash_kind: str = "sample"
    n_neurons: int = 100
    layers: str = "dense"
    seed: int = 0
    sampling: str = "layer"
    skipped: list[tuple[str, str]] = field(default_factory=list)
    projection: int | None = None
    name_sources: list[dict[str, int]] = field(default_factory=list)

    def layer_block(self, layer: str) -> np.ndarray:
        """The ``(n_models, rows × cols)`` block of the vectors that holds one layer."""
        if self.projection:
            raise InputError("projected fingerprints have no per-layer blocks; fingerprint without "
                             "projection to get them")
        i = self.layer_names.index(layer)
        return self.vectors[:, self.layer_offsets[i]:self.layer_offsets[i + 1]]


def _fisher_kurtosis(values: np.ndarray) -> float:
    """Fisher excess kurtosis of a flattened tensor (scipy's default, biased, as MoTHer's code)."""
    from scipy.stats import kurtosis as scipy_kurtosis

    return float(scipy_kurtosis(values.reshape(-1).astype(np.float64), fisher=True, bias=True))


def fingerprint_models(paths_or_files: Iterable[str | Path | WeightFile], *, ids: Sequence[str] | None = None,
                       n_neurons: int = 100, layers: str = "dense", seed: int = 0,
                       sampling: str = "layer", align: str = "exact", kurtosis: bool | None = None,
                       hash_kind: str = "sample", on_error: str = "raise",
                       project: int | None = None, reference: ArchitectureSignature | None = None) -> Fingerprints:
    """Fingerprint models of one architecture signature.

    Parameters
    ----------
    paths_or_files:
        Weights files / folders (opened and closed here) or opened :class:`WeightFile` objects.
    ids:
        Model ids, one per input (default: the paths).
    n_neurons:
        Rows sampled per selected layer (all rows when a layer has fewer), or per model.
    layers:
        Layer selection (see :func:`select_layers`).
    seed:
        Seed of the row sample (with the signature and the layer name).
    sampling:
        ``layer`` (``n_neurons`` rows from each selected layer) or ``model`` (``n_neurons`` rows in
        all, drawn uniformly from the selected layers' rows; see :func:`sample_plan`).
    align:
        ``exact``: every model must have the same signature. ``common``: compare the models on the
        tensors all of them share (same normalised name and shape); ``signature_key`` is then the
        key of that shared part. Files are opened twice (headers only the first time).
    kurtosis:
        Compute the Fisher excess kurtosis of each selected layer (reads those layers whole).
        Default: only for the ``mother-*`` selections.
    hash_kind:
        ``sample`` or ``full`` (see :class:`Fingerprints`).
    project:
        Reduce each vector to this many dimensions by a fixed sparse random projection
        (:class:`~modelatlas.weights.projection.SparseProjection`, seeded by ``seed``) as it is
        read, so that memory stays ``n_models × project``; distances are preserved to a few percent
        at 1024. Hashes and quantisation flags use the unprojected rows.
    on_error:
        ``raise`` (the first bad model stops the run) or ``skip`` (a model that cannot be read,
        or whose signature differs, is left out and listed in ``Fingerprints.skipped`` with its
        error, which names the file and tensor).
    reference:
        With ``align="common"``: the shared signature to sample from (e.g. of a whole group of
        relatives, when a batch of it is fingerprinted on its own: every batch then has the same
        plan); default: the tensors the given models share.

    Returns
    -------
    Fingerprints

    Raises
    ------
    SignatureMismatchError
        With ``align="exact"``, when the models do not share one signature: the error names the
        first odd file and how it differs. Split mixed inputs first with
        :func:`group_by_signature` (the CLI's ``--group``).
    InputError
        Unreadable files, an empty layer selection, bad parameters.

    References
    ----------
    Horwitz et al., "Charting and Navigating Hugging Face's Model Atlas" (2025), App. C ("represent
    each model by subsampling ... to a much smaller number of neurons") and App. D (100 random
    neurons; attention layers only for Stable Diffusion). Horwitz et al., "Unsupervised Model Tree
    Heritage Recovery" (ICLR 2025), Sec. 4.2 (kurtosis as the direction signal).
    """
    items = list(paths_or_files)
    if not items:
        raise InputError("no models to fingerprint")
    if n_neurons < 1:
        raise InputError(f"n_neurons must be positive, not {n_neurons}")
    if hash_kind not in ("sample", "full"):
        raise InputError(f"hash_kind must be 'sample' or 'full', not {hash_kind!r}")
    if ids is not None and len(ids) != len(items):
        raise InputError(f"{len(ids)} ids for {len(items)} models")
    if align not in ("exact", "common"):
        raise InputError(f"align must be 'exact' or 'common', not {align!r}")
    if on_error not in ("raise", "skip"):
        raise InputError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    labels = [str(ids[i]) if ids is not None else str(getattr(item, "path", item)) for i, item in enumerate(items)]
    skipped: list[tuple[str, str]] = []

    def fail(i: int, exc: Exception) -> None:
        if on_error == "raise":
            raise exc
        if not isinstance(exc, InputError):  # a file that trips a library: reported, not fatal
            exc = InputError(f"unreadable ({exc.__class__.__name__}: {exc})", path=labels[i])
        skipped.append((labels[i], str(exc)))
    if kurtosis is None:
        kurtosis = layers in MOTHER_KINDS
    from modelatlas.weights.content_hash import content_hash
    from modelatlas.weights.reader import open_weights

    ref_sig: ArchitectureSignature | None = None
    ref_path = ""
    plan: list[tuple[str, np.ndarray]] = []
    if align == "common" and reference is not None:
        ref_sig, ref_path = reference, "the shared tensors"
        names = select_layers(ref_sig, layers)
        if not names:
            raise InputError(f"layer selection {layers!r} keeps no tensor of the reference signature")
        plan = sample_plan(ref_sig, names, n_neurons, seed, sampling)
    elif align == "common":
        sigs, readable = [], []
        for i, item in enumerate(items):
            try:
                if isinstance(item, WeightFile):
                    sigs.append(signature(item))
                else:
                    with open_weights(item) as wf:
                        sigs.append(signature(wf))
                readable.append(i)
            except Exception as exc:  # noqa: BLE001 -- see fail(): re-raised unless skipping
                fail(i, exc)
        if not sigs:
            raise InputError(f"none of the {len(items)} models could be read: {skipped[0][1]}")
        items, labels = [items[i] for i in readable], [labels[i] for i in readable]
        ref_sig, ref_path = common_signature(sigs), "the shared tensors"
        names = select_layers(ref_sig, layers)
        if not names:
            raise InputError(f"layer selection {layers!r} keeps no tensor shared by all {len(items)} models")
        plan = sample_plan(ref_sig, names, n_neurons, seed, sampling)
    vectors: np.ndarray | None = None
    projection: SparseProjection | None = None
    offsets = np.zeros(1, np.int64)
    kept, kurt, hashes, quantized, nbytes, sources = [], [], [], [], [], []
    for i, item in enumerate(items):
        owned = not isinstance(item, WeightFile)
        try:
            wf = open_weights(item) if owned else item
        except Exception as exc:  # noqa: BLE001 -- see fail(): re-raised unless skipping
            fail(i, exc)
            continue
        try:
            start = 0 if owned else wf.bytes_read  # an opened file's header was read by its opener
            sig = signature(wf)
            if ref_sig is None:
                names = select_layers(sig, layers)
                if not names:
                    raise InputError(f"layer selection {layers!r} keeps no layer of this model",
                                     path=str(wf.path))
                ref_sig, ref_path = sig, str(wf.path)
                plan = sample_plan(sig, names, n_neurons, seed, sampling)
            elif align == "exact" and sig.key != ref_sig.key:
                raise SignatureMismatchError(
                    f"architecture signature {sig.key} differs from {ref_sig.key} of {ref_path}: "
                    f"{ref_sig.diff(sig)}", path=str(wf.path))
            if vectors is None:  # one matrix filled in place: no per-model copies to stack
                sizes = [rows.size * int(np.prod(ref_sig.shapes[layer][1:])) for layer, rows in plan]
                offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
                projection = SparseProjection(int(offsets[-1]), project, seed) if project else None
                vectors = np.empty((len(items), project or int(offsets[-1])), np.float32)
                buffer = np.empty(int(offsets[-1]), np.float32) if project else None
            row = buffer if projection is not None else vectors[len(kept)]
            kvals, samples = _read_model(wf, sig, plan, offsets, row, kurtosis)
            report = detect_quantization(wf, samples=samples)
            if hash_kind == "full":
                digest = content_hash(wf).model
            else:
                digest = hashlib.blake2b(memoryview(row), digest_size=16).hexdigest()
        except Exception as exc:  # noqa: BLE001 -- see fail(): re-raised unless skipping
            fail(i, exc)
            continue
        finally:
            if owned:
                wf.close()
        if projection is not None:
            vectors[len(kept)] = projection(row)
        kept.append(labels[i])
        sources.append(name_source_counts(wf, sig))
        kurt.append(kvals)
        hashes.append(digest)
        quantized.append(report.quantized)
        nbytes.append(wf.bytes_read - start)
    if not kept:
        raise InputError(f"none of the {len(items)} models could be fingerprinted; first error: "
                         f"{skipped[0][1]}")
    return Fingerprints(
        ids=kept, signature_key=ref_sig.key, layer_names=[layer for layer, _ in plan],
        vectors=vectors[:len(kept)], kurtosis=np.array(kurt, dtype=np.float64) if kurtosis else None,
        content_hashes=hashes, quantized=np.array(quantized, dtype=bool),
        bytes_read=np.array(nbytes, dtype=np.int64), layer_rows=[rows for _, rows in plan],
        layer_offsets=offsets, hash_kind=hash_kind, n_neurons=n_neurons, layers=layers, seed=seed,
        sampling=sampling, skipped=skipped, projection=project, name_sources=sources)


def name_source_counts(wf: WeightFile, sig: ArchitectureSignature) -> dict[str, int]:
    """How many of a model's parameters got their canonical name from where (``file`` and the
    labels of :attr:`WeightFile.name_sources`)."""
    counts: dict[str, int] = {}
    for name in sig.file_names.values():
        label = wf.name_sources.get(name, "file")
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def _read_model(wf: WeightFile, sig: ArchitectureSignature, plan: list[tuple[str, np.ndarray]],
                offsets: np.ndarray, out: np.ndarray, kurtosis: bool) -> tuple[list[float], dict]:
    """Fill ``out`` with one model's sampled rows; return kurtosis values and the rows by tensor."""
    kvals, samples = [], {}
    if not kurtosis:  # the rows of every layer in one request where the file is remote
        wf.prefetch({sig.file_names[layer]: rows for layer, rows in plan})
    for k, (layer, rows) in enumerate(plan):
        name = sig.file_names[layer]
        if kurtosis:
            full = wf.read(name)
            square = full.ndim == 2 and full.shape[0] == full.shape[1]
            kvals.append(_fisher_kurtosis(full) if square else np.nan)
            block = full.reshape(full.shape[0], -1)[rows]
        else:
            block = wf.read_rows(name, rows)
        samples[name] = block
        out[offsets[k]:offsets[k + 1]] = block.reshape(-1)
    return kvals, samples


def group_by_signature(paths: Iterable[str | Path]) -> dict[str, list[Path]]:
    """Split model paths by architecture signature key (reads headers only), in input order."""
    from modelatlas.weights.reader import open_weights

    groups: dict[str, list[Path]] = {}
    for path in paths:
        with open_weights(path) as wf:
            groups.setdefault(signature(wf).key, []).append(Path(path))
    return groups
