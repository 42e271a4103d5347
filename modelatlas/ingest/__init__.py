"""Reading sources into an atlas (docs/ingest.md).

The package is callable: ``ma.ingest(sources)`` is :func:`modelatlas.api.ingest`.
"""

from modelatlas.callable_package import make_callable

make_callable(__name__)
