"""Packages that are also functions of the Python API (docs/api.md).

``ma.chart(...)`` and ``ma.ingest(...)`` are the API's verbs, but ``modelatlas.chart`` and
``modelatlas.ingest`` are packages: importing one sets it as an attribute of ``modelatlas``,
replacing any function of the same name. So the package is made callable and calls the function
of the same name in :mod:`modelatlas.api`.
"""

from __future__ import annotations

import sys
import types


class CallablePackage(types.ModuleType):
    """A package whose call is :mod:`modelatlas.api`'s function of its last name."""

    def __call__(self, *args, **kwargs):
        from modelatlas import api

        return getattr(api, self.__name__.rsplit(".", 1)[-1])(*args, **kwargs)


def make_callable(name: str) -> None:
    """Make the already imported package ``name`` callable (see the module docstring)."""
    sys.modules[name].__class__ = CallablePackage
