"""The module-level functions of the Python API (``import modelatlas as ma``; docs/api.md): build an
atlas from sources, and chart models from their weights. Everything else is a method of
:class:`~modelatlas.atlas.atlas.Atlas`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from modelatlas.atlas.atlas import Atlas
from modelatlas.errors import InputError
from modelatlas.results import ChartRun


def ingest(sources: str | Path | Sequence[str | Path], *, into: Atlas | None = None, fmt: str | None = None) -> Atlas:
    """Read sources and merge them into an atlas (docs/ingest.md; the ``modelatlas ingest`` command).

    Called as ``ma.ingest(...)``: the package :mod:`modelatlas.ingest` is callable and calls this.

    Parameters
    ----------
    sources : str, pathlib.Path or a sequence of them
        Files (Hub metadata dumps, ``hf-trees`` JSONL, Model Atlas CSVs, leaderboard CSVs...) or
        ``hub:`` / ``hub:QUERY`` for the live Hub.
    into : Atlas or None, default None
        An atlas to add the sources to (it is not changed; a new atlas is returned).
    fmt : str or None, default None
        The reader for every source; detected per source when ``None``.

    Returns
    -------
    Atlas
        The merged atlas; ``atlas.extras["ingest_log"]`` has one row per source read and
        ``atlas.issues`` what was malformed or contradictory. Save it with ``atlas.save(path)``.

    Examples
    --------
    >>> import tempfile, modelatlas as ma
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = f"{folder}/parents.csv"
    ...     _ = open(path, "w").write("id,base_model\\nacme/llm-7b-chat,acme/llm-7b\\n")
    ...     atlas = ma.ingest(path)
    >>> atlas.edges.select(["parent", "child"]).to_pylist()
    [{'parent': 'acme/llm-7b', 'child': 'acme/llm-7b-chat'}]
    """
    from modelatlas.ingest.pipeline import ingest as run_ingest

    if isinstance(sources, (str, Path)):
        sources = [sources]
    atlas, _ = run_ingest([str(s) for s in sources], into, fmt=fmt)
    return atlas


def chart(models, method: str = "auto", *, stem: float = 0.0, seed: int = 0, **params) -> ChartRun:
    """Predict every model's parents from its weights (docs/chart.md; the ``modelatlas chart`` command).

    Called as ``ma.chart(...)``: the package :mod:`modelatlas.chart` is callable and calls this
    (:mod:`modelatlas.callable_package`).

    Parameters
    ----------
    models : str, pathlib.Path, Zoo, SyntheticZoo, ChartInput or a sequence of paths
        A zoo (its folder or ``manifest.json``, or a :class:`~modelatlas.zoo.manifest.Zoo`), whose
        manifest gives the true lineage for scoring; model files or Hugging Face model folders,
        fingerprinted here; a ready :class:`~modelatlas.chart.types.ChartInput`, or a
        :class:`~modelatlas.chart.synthetic.SyntheticZoo` (fingerprints with their truth).
    method : str, default "auto"
        A charting method (:func:`modelatlas.chart.method_names`).
    stem : float, default 0.0
        Share of each zoo component given with its true parents (the Model Atlas protocol uses 0.1).
    seed : int, default 0
        Seed of the stem sample.
    **params
        The method's hyper-parameters (``K=5`` for ``atlas``...).

    Returns
    -------
    modelatlas.results.ChartRun
        Predicted edges, and the accuracy where a zoo gives the truth.

    Examples
    --------
    >>> import modelatlas as ma
    >>> from modelatlas.chart.synthetic import synthetic_zoo
    >>> run = ma.chart(synthetic_zoo(40, n_components=2, seed=0), method="mother")
    >>> run.method, len(run.ids), run.to_table().column_names
    ('mother', 40, ['parent', 'child', 'relation', 'confidence'])
    >>> 0.0 <= run.accuracy <= 1.0
    True
    """
    from modelatlas.chart import get_method
    from modelatlas.chart.types import ChartInput
    from modelatlas.chart.evaluate import accuracy, sample_stem

    estimator = get_method(method, **params)
    truth, messages = None, []
    if isinstance(models, ChartInput):
        inputs = models
    elif isinstance(getattr(models, "models", None), ChartInput):  # fingerprints with their truth
        inputs, truth = models.models, getattr(models, "truth", None)
    elif _is_zoo(models):
        from modelatlas.chart.zoo_input import load_zoo_input
        from modelatlas.zoo.manifest import Zoo

        loaded = load_zoo_input(models.root if isinstance(models, Zoo) else models)
        inputs, truth, messages = loaded.models, loaded.truth, list(loaded.messages)
    else:
        inputs, messages = _fingerprinted([models] if isinstance(models, (str, Path)) else list(models))
    has_truth = truth is not None and any(p is not None for p in truth.parents)
    if stem and not has_truth:
        raise InputError("stem needs the true lineage: chart a zoo", where="stem")
    known = sample_stem(truth, fraction=stem, seed=seed) if stem else {}
    result = estimator.chart(inputs, known_edges={**inputs.documented_parents, **known})
    return ChartRun(method, list(inputs.ids), result.to_table(inputs.ids),
                    accuracy(result, truth, known) if has_truth else None, messages + result.messages)


def _is_zoo(models) -> bool:
    from modelatlas.zoo.manifest import Zoo

    if isinstance(models, Zoo):
        return True
    if not isinstance(models, (str, Path)):
        return False
    path = Path(models)
    return path.name == "manifest.json" or (path.is_dir() and (path / "manifest.json").is_file())


def _fingerprinted(paths: list) -> tuple:
    """Fingerprint the models the paths hold and read them back as charting input."""
    from modelatlas.chart.store_input import chart_input_from_paths

    loaded, _ = chart_input_from_paths(paths)
    return loaded.models, list(loaded.messages)
