"""Errors that reach users. Each names the file, model or field it is about."""

from __future__ import annotations


class ModelAtlasError(Exception):
    """Base class of every error the command line prints as a plain message (no traceback)."""


class InputError(ModelAtlasError):
    """A file or record that cannot be read as asked.

    Parameters
    ----------
    message:
        What is wrong, in words a user can act on.
    path:
        The file concerned, if any.
    where:
        A line number, model id, tensor or field name inside the file, if known.
    """

    def __init__(self, message: str, *, path: str | None = None, where: str | None = None):
        self.path = path
        self.where = where
        prefix = ""
        if path:
            prefix = f"{path}"
            if where:
                prefix += f" ({where})"
            prefix += ": "
        elif where:
            prefix = f"{where}: "
        super().__init__(prefix + message)


class UnknownModelError(ModelAtlasError):
    """A model id that is not in the atlas; suggests close matches."""

    def __init__(self, model_id: str, suggestions: list[str] | None = None):
        self.model_id = model_id
        self.suggestions = list(suggestions or [])
        msg = f"model {model_id!r} is not in the atlas"
        if self.suggestions:
            msg += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(msg)


class StoreError(ModelAtlasError):
    """An atlas store that is missing, locked or not an atlas."""


class HubError(InputError):
    """The live Hub (or the server ``HF_ENDPOINT`` names) could not be read as asked: refused,
    unreachable, too slow, looping or answering something else than a model list. ``path`` is the URL."""

    def __init__(self, message: str, *, path: str | None = None, where: str | None = None):
        self.detail = message  # without the URL prefix, so a caller can extend it
        super().__init__(message, path=path, where=where)
