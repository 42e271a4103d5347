"""The charting estimator: base class, parameter validation and the registry of methods.

A method is a small estimator in scikit-learn's sense (DESIGN.md, "Interfaces"; docs/chart.md):
constructed with its hyper-parameters, it charts a :class:`~modelatlas.chart.types.ChartInput` and
returns a :class:`~modelatlas.chart.types.ChartResult`, one row per predicted ``parent -> child``
edge with a relation and a confidence::

    method = get_method("atlas", K=5)
    result = method.chart(models, known_edges={3: (0,)})

Every method declares the values each parameter may take in ``_parameter_constraints``, written
with scikit-learn's own constraint objects (:mod:`sklearn.utils._param_validation`: ``Interval``,
``StrOptions``, ``"boolean"``, types, ``None``), and those are checked when the method is built by
:func:`get_method`, when :meth:`ChartMethod.set_params` changes them, and again at
:meth:`ChartMethod.chart` (an attribute may have been assigned directly), as scikit-learn checks
at ``fit``. A bad value raises :class:`~modelatlas.errors.InputError` naming the parameter.

Models are addressed by their row index. Methods never compare models of different
architectures: :meth:`ChartMethod.chart` splits the input by signature first
(:func:`~modelatlas.chart.types.architecture_groups`).
"""

from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np
from sklearn.utils._param_validation import Options

from modelatlas.chart.graph import KnownEdges, check_known_edges, edges_closing_cycles, restrict_parents
from modelatlas.chart.types import ChartInput, ChartResult, architecture_groups
from modelatlas.errors import InputError, ModelAtlasError
from modelatlas.estimator import Estimator


class SubsetOf(Options):
    """Constraint: a list or tuple whose every item is one of ``options`` (e.g. ``auto``'s rules).

    scikit-learn's constraint language has no such kind and accepts only its own classes, so this
    extends :class:`~sklearn.utils._param_validation.Options` (a finite set of allowed values).
    """

    def __init__(self, options):
        super().__init__(str, set(options))
        self.order = tuple(options)

    def is_satisfied_by(self, val) -> bool:
        return isinstance(val, (list, tuple)) and all(isinstance(v, str) and v in self.options for v in val)

    def __str__(self) -> str:
        return f"a list or tuple of items among {{{', '.join(map(repr, self.order))}}}"


class ChartMethod(Estimator):
    """Base class: a charting method with scikit-learn-style parameters.

    Subclasses set :attr:`name`, take their hyper-parameters as keyword arguments of
    ``__init__`` (stored as attributes of the same names), declare each one's allowed values in
    :attr:`_parameter_constraints` and implement :meth:`chart_group`, which charts models of one
    architecture. :meth:`chart` validates the parameters, splits the input by architecture,
    checks known edges, and concatenates the groups' results.
    """

    kind: ClassVar[str] = "charting method"

    #: BLAS threads while charting: the algebra is many small matrices, where OpenBLAS threads
    #: only contend (a 768 x 24 QR took 170 ms with threads and 1 ms without on the 2-core machine).
    blas_threads: ClassVar[int] = 1

    def chart(self, models: ChartInput, known_edges: KnownEdges | None = None, *, executor=None,
              block_size: int | None = None, bar: bool = False) -> ChartResult:
        """Predict every model's parents.

        Parameters
        ----------
        models:
            The models to chart.
        known_edges:
            Parents already known (e.g. the evaluation stem): ``child -> parents``; an empty tuple
            marks a known root. They are returned unchanged, with confidence 1.
        executor:
            Where the families are charted, one task each
            (:func:`modelatlas.engine.chart_run.chart_families`; default: in this process).
        block_size:
            Split a family of more models into approximate-neighbour blocks of at most this many,
            charted apart (:func:`modelatlas.chart.blocks.neighbour_blocks`; edges between blocks are
            lost). Default: no split.
        bar:
            Draw a progress bar on standard error.

        Returns
        -------
        ChartResult
            One row per predicted edge; models without a row are predicted roots.

        Raises
        ------
        InputError
            For a parameter outside its constraints or invalid known edges.
        """
        from threadpoolctl import threadpool_limits

        self._validate_params()
        with threadpool_limits(self.blas_threads):
            return self._chart(models, known_edges, executor, block_size, bar)

    def _chart(self, models: ChartInput, known_edges: KnownEdges | None, executor=None,
               block_size: int | None = None, bar: bool = False) -> ChartResult:
        from modelatlas.chart.blocks import neighbour_blocks
        from modelatlas.engine.chart_run import FamilyTask, chart_families
        from modelatlas.engine.executor import TaskFailure

        known = check_known_edges(known_edges or {}, len(models))
        result = ChartResult.empty()
        messages: list[str] = []
        groups = architecture_groups(models)
        n_arch = len(set(map(str, models.groups)))
        if n_arch > 1:
            messages.append(f"{n_arch} architectures: charted separately, never compared")
        families = []
        for rows in groups:
            if block_size and len(rows) > block_size:
                blocks = [rows[b] for b in neighbour_blocks(models.vectors[rows], block_size)]
                messages.append(f"a family of {len(rows)} models charted in {len(blocks)} blocks of at most "
                                f"{block_size} near models (edges between blocks are not looked for)")
            else:
                blocks = [rows]
            families += [b for b in blocks if len(b) > 1]
        tasks = [FamilyTask(self, models.subset(rows), restrict_parents(known, rows)) for rows in families]
        for rows, charted in zip(families, chart_families(tasks, executor, bar=bar)):
            if isinstance(charted, TaskFailure):
                if isinstance(charted.error, ModelAtlasError):  # bad input stops the chart, on every engine
                    raise charted.error
                messages.append(f"a family of {len(rows)} models (first {models.ids[rows[0]]}) could not be "
                                f"charted ({charted}); its models are left without predicted parents")
                continue
            result = result.concat(charted, rows)
        keep = ~np.isin(result.child, np.fromiter(known, np.int64, len(known)))
        keep &= ~edges_closing_cycles(result.parent, result.child, result.confidence, known, keep, messages)
        given = ChartResult.from_parents(known, confidence={c: 1.0 for c in known})
        result = ChartResult(result.parent[keep], result.child[keep], result.relation[keep],
                             result.confidence[keep], result.messages).concat(given)
        result.messages = list(dict.fromkeys(messages + result.messages))
        return result

    def chart_group(self, models: ChartInput, known: dict[int, tuple[int, ...]]) -> ChartResult:
        """Chart models of one architecture (indices local to ``models``)."""
        raise NotImplementedError


_REGISTRY: dict[str, Callable[..., ChartMethod]] = {}


def register(cls):
    """Class decorator: make a method available by its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def method_names() -> list[str]:
    """The names of every registered charting method."""
    from modelatlas.chart import _load_methods

    _load_methods()
    return list(_REGISTRY)


def get_method(name: str, **params) -> ChartMethod:
    """The charting method called ``name``, built with ``params``.

    Raises
    ------
    InputError
        For an unknown method or parameter, or a value outside the parameter's constraints
        (e.g. ``get_method("atlas", K=-3)``).
    """
    names = method_names()
    if name not in _REGISTRY:
        raise InputError(f"unknown charting method {name!r}; choose one of {', '.join(names)}",
                         where="--method")
    method = _REGISTRY[name]()
    return method.set_params(**params)
