"""The imputation interface shared by every method, and the registry that names them.

An imputation method is a small estimator, like a charting method (:mod:`modelatlas.estimator`):
constructed with its hyper-parameters (scikit-learn's ``get_params`` / ``set_params``), it
predicts the hidden values of a :class:`~modelatlas.impute.view.TrainView` for some query nodes::

    method = get_imputer("graph_knn", k=3)
    prediction = method.predict(view, query)

Methods register under the name the command line uses (``modelatlas impute --method NAME``);
:meth:`ImputationMethod.name_for` is the name results are reported under, which may depend on the
kind of task (``global_majority`` for attributes, ``global_mean`` for metrics).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from modelatlas.estimator import Estimator
from modelatlas.errors import InputError


class ImputationMethod(Estimator):
    """Base class: an imputation method with scikit-learn-style parameters.

    Subclasses set :attr:`name`, take their hyper-parameters as keyword arguments of ``__init__``
    (stored as attributes of the same names) and implement :meth:`predict`.
    """

    kind: ClassVar[str] = "imputation method"

    def __init__(self) -> None:
        """A method without hyper-parameters (``get_params`` reads the signature of ``__init__``)."""

    def name_for(self, kind: str) -> str:
        """The name results are reported under for a task of ``kind`` (``attribute`` / ``metric``)."""
        return self.name

    def predict(self, view, query: np.ndarray):
        """Predict the task's value at ``query`` (node indices) from the values ``view`` shows.

        Returns
        -------
        modelatlas.impute.task.Prediction
        """
        raise NotImplementedError


_REGISTRY: dict[str, type[ImputationMethod]] = {}

#: Modules that register a method.
METHOD_MODULES = ("global_baseline", "hub_vote", "graph_knn", "auto")


def register(cls: type[ImputationMethod]) -> type[ImputationMethod]:
    """Class decorator: make an imputation method available by its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def imputer_names() -> list[str]:
    """Names of every registered imputation method."""
    import importlib

    for module in METHOD_MODULES:
        importlib.import_module(f"modelatlas.impute.{module}")
    return list(_REGISTRY)


def get_imputer(name: str, **params) -> ImputationMethod:
    """The imputation method called ``name``, built with ``params``.

    Parameters
    ----------
    name : str
        One of :func:`imputer_names` (``auto``, ``graph_knn``, ``hub_majority``, ``global``,
        ``component``).
    **params
        The method's hyper-parameters.

    Returns
    -------
    ImputationMethod

    Raises
    ------
    InputError
        An unknown name or parameter.

    Examples
    --------
    >>> from modelatlas.impute.base import get_imputer
    >>> get_imputer("graph_knn", k=3)
    GraphKNN(k=3)
    >>> get_imputer("auto").get_params()["inner_folds"]
    3
    """
    names = imputer_names()
    if name not in _REGISTRY:
        raise InputError(f"unknown imputation method {name!r}; choose one of {', '.join(names)}",
                         where="--method")
    return _REGISTRY[name]().set_params(**params)
