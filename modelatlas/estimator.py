"""The estimator protocol shared by charting and imputation methods (scikit-learn's convention).

A method takes its hyper-parameters as keyword arguments of ``__init__``, stores each under its own
name, and declares the values each may take in ``_parameter_constraints``, written with
scikit-learn's own constraint objects (:mod:`sklearn.utils._param_validation`: ``Interval``,
``StrOptions``, ``"boolean"``, types, ``None``). :meth:`Estimator.set_params` and the methods'
``chart`` / ``predict`` entry points check them; a bad value raises
:class:`~modelatlas.errors.InputError` naming the parameter (docs/architecture.md, "Parameter
validation").
"""

from __future__ import annotations

import inspect
from typing import ClassVar

from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from modelatlas.errors import InputError


class Estimator:
    """Base class of the package's methods: parameters, their validation and a short repr.

    Subclasses set :attr:`name` (the registry name) and :attr:`kind` (what the method is, for
    messages), and declare :attr:`_parameter_constraints`.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "method"
    #: Allowed values per ``__init__`` parameter, in scikit-learn's constraint language.
    _parameter_constraints: ClassVar[dict[str, list]] = {}

    def get_params(self) -> dict:
        """The method's hyper-parameters by name (scikit-learn's ``get_params``)."""
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k not in ("self", "args", "kwargs")}

    def set_params(self, **params) -> Estimator:
        """Change hyper-parameters; an unknown name or a value outside its constraints raises.

        Raises
        ------
        InputError
            Naming the parameter and the values it accepts.
        """
        valid = self.get_params()
        for key in params:
            if key not in valid:
                raise InputError(f"{self.kind} {self.name!r} has no parameter {key!r}; "
                                 f"parameters: {', '.join(sorted(valid)) or 'none'}")
        self._validate_params({**valid, **params})
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def _validate_params(self, params: dict | None = None) -> None:
        """Check ``params`` (default: the current ones) against :attr:`_parameter_constraints`.

        As in scikit-learn, a parameter without a declaration is not checked (a method written
        outside the package may declare none); every method of the package declares all of its
        parameters (``tests/test_chart_params.py``).
        """
        params = self.get_params() if params is None else params
        try:
            validate_parameter_constraints(self._parameter_constraints, params,
                                           caller_name=f"{self.kind} {self.name!r}")
        except InvalidParameterError as err:
            raise InputError(str(err)) from None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
